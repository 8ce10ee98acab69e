//! End-to-end TLS on and off (issue #17): `tlsCluster.enabled` is refused on a running
//! Cluster; suspended in the same update it is admitted, the operator switches
//! `status.pd` once every pod is gone, and on resume every PD and TiKV comes back with
//! the new setting, the operator's PD client following (with the client Secret when
//! TLS is on). PD runs one member, as the procedure asks (PD keeps its members' peer
//! URLs, scheme included). The invariant watcher is on throughout, and no process ever
//! starts among live peers of the other transport (the simulators' record).

use serde_json::{Value, json};
use sim_harness::processes::security::Transport;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names;

use crate::env::{CLUSTER, Env, NS, PD_GROUP, TIKV_GROUP, check_condition, r};

/// CA, one certificate for every component's names (server and client use), and the
/// operator's client certificate: the Secrets a user creates before turning TLS on.
fn create_secrets(env: &Env) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "tikv test CA");
    let issuer = rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
    let leaf = |cn: &str, sans: Vec<String>| {
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let secret = |name: String, (cert, key): (String, String)| {
        json!({"metadata": {"name": name, "namespace": NS},
               "stringData": {"ca.crt": issuer.pem(), "tls.crt": cert, "tls.key": key}})
    };
    let pd_names =
        vec![format!("{}.{NS}.svc", names::pd_client_service_name(PD_GROUP)), format!("*.{PD_GROUP}-pd-peer.{NS}.svc")];
    let tikv_names = vec![format!("*.{TIKV_GROUP}-tikv-peer.{NS}.svc")];
    for object in [
        secret(names::cluster_tls_secret_name(PD_GROUP, "pd"), leaf("pd", pd_names)),
        secret(names::cluster_tls_secret_name(TIKV_GROUP, "tikv"), leaf("tikv", tikv_names)),
        secret(names::cluster_client_secret_name(CLUSTER), leaf("tikv-operator", Vec::new())),
    ] {
        env.user.create(&r("secrets"), Some(NS), object).unwrap();
    }
}

const STORES_OK: [(&str, &str); 3] = [("endpoint", "/pd/api/v1/stores"), ("method", "GET"), ("outcome", "2xx")];

fn pd_url(env: &Env) -> String {
    env.get("clusters", CLUSTER).and_then(|c| c["status"]["pd"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// Every process of the cluster speaks `transport`.
fn speaking(env: &Env, transport: Transport) -> Result<(), String> {
    let cluster = env.pd().index;
    let speakers = env.h.pd_registry().speakers(cluster);
    if speakers.len() != 4 {
        return Err(format!("{} processes run: {speakers:?}", speakers.len()));
    }
    match speakers.iter().find(|(_, t)| **t != transport) {
        Some((pod, t)) => Err(format!("{pod} speaks {}", t.name())),
        None => Ok(()),
    }
}

/// Ready with `status.pd` on `scheme`, one PD and three TiKV Ready, every process on
/// `transport`, the stores Up in PD.
fn ready_with(env: &Env, scheme: &str, transport: Transport) -> Result<(), String> {
    let cluster = env.get("clusters", CLUSTER).ok_or("no Cluster")?;
    check_condition(&cluster, types::READY, "True", reasons::READY)?;
    check_condition(&cluster, types::SYNCED, "True", reasons::SYNCED)?;
    check_condition(&cluster, types::SUSPENDED, "False", reasons::UNSUSPENDED)?;
    let url = pd_url(env);
    if !url.starts_with(&format!("{scheme}://")) {
        return Err(format!("status.pd is {url}"));
    }
    speaking(env, transport)?;
    let snapshot = env.try_pd_snapshot()?;
    let up = snapshot.stores.iter().filter(|s| s.running && s.state_name == "Up").count();
    if up != 3 {
        return Err(format!("{up} stores Up"));
    }
    Ok(())
}

fn gone(env: &Env) -> Result<(), String> {
    let pods = env.list("pods");
    if pods.is_empty() { Ok(()) } else { Err(format!("{} pods left", pods.len())) }
}

fn mixed(env: &Env) -> Vec<sim_harness::MixedStart> {
    env.h.pd_registry().mixed_starts()
}

/// Turns TLS to `on` the allowed way: suspend and change in one update, wait for every
/// pod to go and `status.pd` to switch, resume.
async fn switch(env: &Env, on: bool) {
    let (from, to) = if on { ("http", "https") } else { ("https", "http") };
    env.patch(
        "clusters",
        CLUSTER,
        json!({"spec": {"suspendAction": {"suspendCompute": true}, "tlsCluster": {"enabled": on}}}),
    );
    env.wait_for("every pod gone, status.pd switched", |e| {
        gone(e)?;
        let url = pd_url(e);
        if url.starts_with(&format!("{to}://")) { Ok(()) } else { Err(format!("status.pd still {url}")) }
    })
    .await;
    assert!(env.has_event(CLUSTER, "Normal", "TLSSwitched"), "the switch is announced");
    assert!(!pd_url(env).starts_with(&format!("{from}://")));
    env.patch("clusters", CLUSTER, json!({"spec": {"suspendAction": {"suspendCompute": false}}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_turns_on_and_off_only_through_a_suspension_and_never_mixes() {
    let env = Env::start_with(|docs| {
        for doc in docs.iter_mut().filter(|d| d.kind() == "PDGroup") {
            doc.object["spec"]["replicas"] = json!(1);
        }
    })
    .await;
    env.wait_for("a plain cluster Ready", |e| ready_with(e, "http", Transport::Plain)).await;
    create_secrets(&env);

    // Refused on a running Cluster, with the reason and what to do.
    let refused = env
        .try_patch("clusters", CLUSTER, json!({"spec": {"tlsCluster": {"enabled": true}}}))
        .expect_err("a running Cluster cannot turn TLS on");
    assert!(refused.contains("can change only while the Cluster is suspended"), "{refused}");
    assert!(refused.contains("suspendCompute: true"), "{refused}");
    assert!(env.get("clusters", CLUSTER).unwrap()["spec"]["tlsCluster"].is_null(), "nothing changed");

    switch(&env, true).await;
    env.wait_for("Ready over TLS", |e| ready_with(e, "https", Transport::Tls)).await;
    let cluster: Value = env.get("clusters", CLUSTER).unwrap();
    assert_eq!(cluster["status"]["pd"], "https://pd-pd.default.svc:2379");
    assert_eq!(mixed(&env), [], "no process started among peers of the other transport");
    let (status, _) = env.proxied("GET", "pd-pd.default.svc:2379", "/pd/api/v1/health", None).await;
    assert_ne!(status, 200, "PD serves only TLS now");
    let reads = |e: &Env| e.metric("tikv_operator_pd_requests_total", &STORES_OK);
    let before = reads(&env);
    env.wait_for("the operator's PD reads succeed over TLS", |e| {
        if reads(e) > before { Ok(()) } else { Err(format!("{} successful store reads", reads(e))) }
    })
    .await;

    switch(&env, false).await;
    env.wait_for("Ready over plain HTTP", |e| ready_with(e, "http", Transport::Plain)).await;
    let (status, _) = env.proxied("GET", "pd-pd.default.svc:2379", "/pd/api/v1/health", None).await;
    assert_eq!(status, 200, "PD serves plain HTTP again");
    let before = reads(&env);
    env.wait_for("the operator's PD reads succeed over plain HTTP", |e| {
        if reads(e) > before { Ok(()) } else { Err(format!("{} successful store reads", reads(e))) }
    })
    .await;
    assert_eq!(mixed(&env), [], "no process started among peers of the other transport");
    env.finish().await;
}
