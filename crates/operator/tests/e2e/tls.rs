//! End-to-end TLS on and off (issue #17): `tlsCluster.enabled` is refused on a running
//! Cluster; suspended in the same update it is admitted, the operator switches
//! `status.pd` once every pod is gone, and on resume every PD and TiKV comes back with
//! the new setting, the operator's PD client following (with the client Secret when
//! TLS is on). PD runs three members: PD keeps each member's peer URL (scheme included)
//! and dials it there, so each comes back listening at its old URL and the new one,
//! PD is told the new one, and a restart drops the old; a member joining afterwards
//! reaches them all. The invariant watcher and the workload probe run throughout, and
//! no process ever starts among live peers of the other transport (the simulators'
//! record).

use serde_json::{Value, json};
use sim_harness::processes::security::Transport;
use tikv_operator_api::condition::{reasons, types};
use tikv_operator_api::names;

use crate::env::{CLUSTER, Env, NS, PD_GROUP, TIKV_GROUP, check_condition, r};

/// The test CA.
type Ca = rcgen::CertifiedIssuer<'static, rcgen::KeyPair>;

fn ca() -> Ca {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "tikv test CA");
    rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// One certificate for every component's names (server and client use), and the
/// operator's client certificate, signed by `ca`: the Secrets a user creates before
/// turning TLS on (or a renewal writes, with new certificates).
fn secrets(ca: &Ca) -> Vec<Value> {
    let leaf = |cn: &str, sans: Vec<String>| {
        let mut params = rcgen::CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let secret = |name: String, (cert, key): (String, String)| {
        json!({"metadata": {"name": name, "namespace": NS},
               "stringData": {"ca.crt": ca.pem(), "tls.crt": cert, "tls.key": key}})
    };
    let pd_names =
        vec![format!("{}.{NS}.svc", names::pd_client_service_name(PD_GROUP)), format!("*.{PD_GROUP}-pd-peer.{NS}.svc")];
    let tikv_names = vec![format!("*.{TIKV_GROUP}-tikv-peer.{NS}.svc")];
    vec![
        secret(names::cluster_tls_secret_name(PD_GROUP, "pd"), leaf("pd", pd_names)),
        secret(names::cluster_tls_secret_name(TIKV_GROUP, "tikv"), leaf("tikv", tikv_names)),
        secret(names::cluster_client_secret_name(CLUSTER), leaf("tikv-operator", Vec::new())),
    ]
}

fn create_secrets(env: &Env) -> Ca {
    let ca = ca();
    for object in secrets(&ca) {
        env.user.create(&r("secrets"), Some(NS), object).unwrap();
    }
    ca
}

const STORES_OK: [(&str, &str); 3] = [("endpoint", "/pd/api/v1/stores"), ("method", "GET"), ("outcome", "2xx")];

fn pd_url(env: &Env) -> String {
    env.get("clusters", CLUSTER).and_then(|c| c["status"]["pd"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// Every process of the cluster speaks `transport`.
fn speaking(env: &Env, transport: Transport) -> Result<(), String> {
    let cluster = env.pd().index;
    let speakers = env.h.pd_registry().speakers(cluster);
    if speakers.len() != 3 + 3 {
        return Err(format!("{} processes run: {speakers:?}", speakers.len()));
    }
    match speakers.iter().find(|(_, t)| **t != transport) {
        Some((pod, t)) => Err(format!("{pod} speaks {}", t.name())),
        None => Ok(()),
    }
}

/// Ready with `status.pd` on `scheme`, three PD and three TiKV Ready, every process on
/// `transport`, the stores Up in PD, every member stored by PD with a `scheme` peer URL.
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
    let members: Vec<_> = snapshot.members.iter().filter(|m| m.in_etcd).collect();
    let running = members.iter().filter(|m| m.running).count();
    if (members.len(), running) != (3, 3) {
        return Err(format!("{running} of {} PD members run", members.len()));
    }
    if let Some(m) = members.iter().find(|m| !m.peer_urls.iter().all(|u| u.starts_with(&format!("{scheme}://")))) {
        return Err(format!("PD stores {:?} for {}", m.peer_urls, m.name));
    }
    Ok(())
}

/// `PeerURLChanged` Events per PD instance.
fn peer_url_changes(env: &Env) -> Vec<usize> {
    let names: Vec<String> =
        env.list("pds").iter().filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned)).collect();
    names.iter().map(|n| env.events_of(n).iter().filter(|e| e.starts_with("Normal PeerURLChanged:")).count()).collect()
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
    env.wait_for_event(CLUSTER, "Normal", "TLSSwitched").await;
    assert!(!pd_url(env).starts_with(&format!("{from}://")));
    env.patch("clusters", CLUSTER, json!({"spec": {"suspendAction": {"suspendCompute": false}}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_turns_on_and_off_only_through_a_suspension_and_never_mixes() {
    let env = Env::start().await;
    env.wait_for("a plain cluster Ready", |e| ready_with(e, "http", Transport::Plain)).await;
    create_secrets(&env);
    let probe = env.start_probe();

    // Refused on a running Cluster, with the reason and what to do.
    let refused = env
        .try_patch("clusters", CLUSTER, json!({"spec": {"tlsCluster": {"enabled": true}}}))
        .expect_err("a running Cluster cannot turn TLS on");
    assert!(refused.contains("can change only while the Cluster is suspended"), "{refused}");
    assert!(refused.contains("suspendCompute: true"), "{refused}");
    assert!(env.get("clusters", CLUSTER).unwrap()["spec"]["tlsCluster"].is_null(), "nothing changed");

    switch(&env, true).await;
    env.wait_for("Ready over TLS", |e| ready_with(e, "https", Transport::Tls)).await;
    // Each member was told its new peer URL, and restarted once more to stop listening at the old.
    env.wait_for("one PeerURLChanged event per member", |e| {
        let changes = peer_url_changes(e);
        if changes == [1, 1, 1] { Ok(()) } else { Err(format!("{changes:?}")) }
    })
    .await;
    let stored: Vec<Vec<String>> =
        env.pd_snapshot().members.iter().filter(|m| m.in_etcd).map(|m| m.peer_urls.clone()).collect();
    assert!(stored.iter().flatten().all(|u| u.starts_with("https://") && u.ends_with(":2381")), "{stored:?}");
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

    // A member joining now dials the others at their stored TLS URLs, and leaves again.
    env.patch("pdgroups", PD_GROUP, json!({"spec": {"replicas": 4}}));
    env.wait_for("a fourth PD member joined over TLS and Ready", |e| {
        let members = e.try_pd_snapshot()?.members.iter().filter(|m| m.in_etcd && m.running).count();
        let group = e.get("pdgroups", PD_GROUP).ok_or("no PDGroup")?;
        let ready = group["status"]["readyReplicas"].as_i64().unwrap_or(0);
        check_condition(&group, types::READY, "True", reasons::READY)?;
        if (members, ready) == (4, 4) { Ok(()) } else { Err(format!("{members} members run, {ready} Ready")) }
    })
    .await;
    env.patch("pdgroups", PD_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("Ready over TLS with three members again", |e| ready_with(e, "https", Transport::Tls)).await;

    switch(&env, false).await;
    env.wait_for("Ready over plain HTTP", |e| ready_with(e, "http", Transport::Plain)).await;
    env.wait_for("every member's URL changed back, with an event", |e| {
        let changes = peer_url_changes(e);
        if changes.len() == 3 && changes.iter().all(|n| *n >= 1) { Ok(()) } else { Err(format!("{changes:?}")) }
    })
    .await;
    let (status, _) = env.proxied("GET", "pd-pd.default.svc:2379", "/pd/api/v1/health", None).await;
    assert_eq!(status, 200, "PD serves plain HTTP again");
    let before = reads(&env);
    env.wait_for("the operator's PD reads succeed over plain HTTP", |e| {
        if reads(e) > before { Ok(()) } else { Err(format!("{} successful store reads", reads(e))) }
    })
    .await;
    assert_eq!(mixed(&env), [], "no process started among peers of the other transport");
    env.verify_probe(&probe);
    env.finish().await;
}

/// Serving certificate serial per instance (PD and TiKV), from status.
fn serials(env: &Env) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for plural in ["pds", "tikvs"] {
        for o in env.list(plural) {
            let name = o["metadata"]["name"].as_str().unwrap_or_default().to_owned();
            let serial = o["status"]["servingCertificate"]["serialNumber"].as_str().unwrap_or_default().to_owned();
            out.push((name, serial));
        }
    }
    out
}

/// Every Pod's UID and container restarts.
fn pod_lives(env: &Env) -> Vec<(String, i64)> {
    let mut lives: Vec<(String, i64)> = env
        .list("pods")
        .iter()
        .map(|p| {
            let restarts = p["status"]["containerStatuses"][0]["restartCount"].as_i64().unwrap_or(0);
            (p["metadata"]["uid"].as_str().unwrap_or_default().to_owned(), restarts)
        })
        .collect();
    lives.sort();
    lives
}

/// Certificates rotate without a restart (issue #17): new certificates from the same CA
/// are written to every Secret of a TLS cluster; the PD and TiKV processes serve them on
/// new connections (their status shows the new serials), the operator's PD client
/// presents the new client certificate, and no Pod is recreated or restarted; the probe
/// and the invariant watcher run throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_rotate_without_restarts_and_their_expiry_is_reported() {
    let mut env = Env::start_with(|docs| {
        for doc in docs.iter_mut().filter(|d| d.kind() == "Cluster") {
            doc.object["spec"]["tlsCluster"] = json!({"enabled": true});
        }
    })
    .await;
    let ca = create_secrets(&env);
    env.restart_operator_with(|c| {
        c.certificate_check_interval = std::time::Duration::from_secs(1);
        c.client_secret_recheck = std::time::Duration::from_secs(1);
    })
    .await;
    env.wait_for("Ready over TLS", |e| ready_with(e, "https", Transport::Tls)).await;
    env.wait_for("every serving certificate reported", |e| {
        let missing: Vec<String> = serials(e).into_iter().filter(|(_, s)| s.is_empty()).map(|(n, _)| n).collect();
        if missing.is_empty() { Ok(()) } else { Err(format!("no serial yet: {missing:?}")) }
    })
    .await;
    assert!(env.metric("tikv_operator_certificate_not_after_seconds", &[]) > 0.0, "expiry is a metric");
    let probe = env.start_probe();
    let before = serials(&env);
    let lives = pod_lives(&env);
    let presented_before: std::collections::BTreeSet<String> =
        env.pd().control().presented().into_iter().filter_map(|p| p.client_serial).collect();

    for secret in secrets(&ca) {
        let name = secret["metadata"]["name"].as_str().unwrap().to_owned();
        env.patch("secrets", &name, json!({"stringData": secret["stringData"]}));
    }
    env.wait_for("every instance serving its new certificate", |e| {
        let now = serials(e);
        let same: Vec<&String> =
            now.iter().filter(|(n, s)| before.iter().any(|(bn, bs)| bn == n && bs == s)).map(|(n, _)| n).collect();
        if same.is_empty() { Ok(()) } else { Err(format!("still the old certificate: {same:?}")) }
    })
    .await;
    env.wait_for("the operator presenting its new client certificate", |e| {
        let new: Vec<String> = e
            .pd()
            .control()
            .presented()
            .into_iter()
            .filter_map(|p| p.client_serial)
            .filter(|s| !presented_before.contains(s))
            .collect();
        if new.is_empty() { Err("no request with another client certificate".into()) } else { Ok(()) }
    })
    .await;
    let reads = |e: &Env| e.metric("tikv_operator_pd_requests_total", &STORES_OK);
    let after = reads(&env);
    env.wait_for("the operator's PD reads succeeding with the new certificate", |e| {
        if reads(e) > after { Ok(()) } else { Err(format!("{} successful store reads", reads(e))) }
    })
    .await;
    assert_eq!(pod_lives(&env), lives, "no Pod was recreated or restarted");
    env.wait_for("Ready over TLS", |e| ready_with(e, "https", Transport::Tls)).await;
    env.verify_probe(&probe);
    env.finish().await;
}
