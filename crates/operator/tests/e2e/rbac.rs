//! The chart's RBAC against what the operator does (issue #14, item 4): the operator is
//! driven through every write path it has, every request it makes is read from
//! kube-sim's request log as (verb, API group, resource[/subresource], scope), and the
//! rules rendered in `deploy/manifests/` must allow each one and grant nothing that
//! none of them used (the few grants that no scenario can reach are listed below with
//! the reason). The rendered manifests also apply to kube-sim with kubectl.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use kube_sim::{PatchType, RequestRecord};
use serde_json::{Value, json};
use tikv_operator::playground::apply;
use tikv_operator_api::names::{ANNOTATION_SPEC_HASH, FINALIZER};
use tikv_operator_controllers::leader::{Attempt, Elector, LeaderElectionConfig};

use crate::env::{CLUSTER, Env, NS, PD_GROUP, TIKV_GROUP, expect_eq, is_operator, name, r};

/// The cluster-wide install, and the one watching a single namespace.
pub const MANIFEST: &str = "deploy/manifests/tikv-operator.yaml";
pub const NAMESPACED_MANIFEST: &str = "deploy/manifests/tikv-operator-namespaced.yaml";

/// Grants no scenario here can exercise, each with the reason it is still needed:
/// (API group, resource, verb, why). Empty: every grant is used.
const NOT_EXERCISED: &[(&str, &str, &str, &str)] = &[];

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

/// Every document of a rendered manifest file.
pub fn manifest_documents(relative: &str) -> Vec<apply::Document> {
    let path = repo_path(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    apply::parse(&path, &text).unwrap()
}

/// Where a request acts or a grant applies.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Cluster-scoped objects, or namespaced ones across every namespace.
    Cluster,
    Namespace(String),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Cluster => f.write_str("cluster"),
            Scope::Namespace(ns) => write!(f, "ns/{ns}"),
        }
    }
}

/// One kind of API request: what RBAC decides on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Call {
    pub verb: String,
    pub group: String,
    /// `plural` or `plural/subresource`.
    pub resource: String,
    pub scope: Scope,
}

impl Call {
    pub fn of(r: &RequestRecord) -> Call {
        let resource = match &r.subresource {
            Some(sub) => format!("{}/{sub}", r.resource),
            None => r.resource.clone(),
        };
        let scope = match &r.namespace {
            Some(ns) if !ns.is_empty() => Scope::Namespace(ns.clone()),
            _ => Scope::Cluster,
        };
        Call { verb: r.verb.to_string(), group: r.group.clone(), resource, scope }
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = if self.group.is_empty() { "core" } else { &self.group };
        write!(f, "{} {}/{} ({})", self.verb, group, self.resource, self.scope)
    }
}

/// One rule of a (Cluster)Role, where its binding applies it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    pub scope: Scope,
    /// `ClusterRole/tikv-operator`, for messages.
    pub role: String,
}

impl Grant {
    fn allows(&self, call: &Call) -> bool {
        let any = |list: &[String], item: &str| list.iter().any(|x| x == "*" || x == item);
        let scope_ok = match &self.scope {
            Scope::Cluster => true,
            ns => *ns == call.scope,
        };
        scope_ok
            && any(&self.groups, &call.group)
            && any(&self.resources, &call.resource)
            && any(&self.verbs, &call.verb)
    }
}

/// What the rules bound to one ServiceAccount grant it, as a manifest renders them.
#[derive(Clone, Debug)]
pub struct Rbac {
    pub grants: Vec<Grant>,
}

impl Rbac {
    /// The rules bound to the ServiceAccount `namespace/name` in `docs`: a
    /// ClusterRoleBinding applies its ClusterRole everywhere, a RoleBinding applies its
    /// Role (or ClusterRole) in the binding's namespace only.
    pub fn of(docs: &[apply::Document], namespace: &str, name: &str) -> Rbac {
        let find = |kind: &str, role: &str, ns: Option<&str>| {
            docs.iter()
                .find(|d| d.kind() == kind && d.name() == role && (kind == "ClusterRole" || d.namespace() == ns))
                .unwrap_or_else(|| panic!("no {kind} {role} in the manifest"))
        };
        let mut grants = Vec::new();
        for binding in docs.iter().filter(|d| matches!(d.kind(), "ClusterRoleBinding" | "RoleBinding")) {
            let subjects = binding.object["subjects"].as_array().cloned().unwrap_or_default();
            let bound = subjects
                .iter()
                .any(|s| s["kind"] == "ServiceAccount" && s["name"] == name && s["namespace"] == namespace);
            if !bound {
                continue;
            }
            let role_ref = &binding.object["roleRef"];
            let (kind, role) = (role_ref["kind"].as_str().unwrap(), role_ref["name"].as_str().unwrap());
            let role_doc = find(kind, role, binding.namespace());
            let scope = match binding.kind() {
                "ClusterRoleBinding" => Scope::Cluster,
                _ => Scope::Namespace(binding.namespace().unwrap().to_owned()),
            };
            for rule in role_doc.object["rules"].as_array().cloned().unwrap_or_default() {
                let strings = |key: &str| -> Vec<String> {
                    rule[key]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default()
                };
                grants.push(Grant {
                    groups: strings("apiGroups"),
                    resources: strings("resources"),
                    verbs: strings("verbs"),
                    scope: scope.clone(),
                    role: format!("{kind}/{role}"),
                });
            }
        }
        assert!(!grants.is_empty(), "nothing is bound to ServiceAccount {namespace}/{name}");
        Rbac { grants }
    }

    /// The ServiceAccount the manifest's Deployment runs as, with its namespace.
    pub fn service_account(docs: &[apply::Document]) -> (String, String) {
        let deployment = docs.iter().find(|d| d.kind() == "Deployment").expect("a Deployment");
        let sa =
            deployment.object["spec"]["template"]["spec"]["serviceAccountName"].as_str().expect("a ServiceAccount");
        (deployment.namespace().expect("a namespace").to_owned(), sa.to_owned())
    }

    pub fn allows(&self, call: &Call) -> bool {
        self.grants.iter().any(|g| g.allows(call))
    }

    /// Every (group, resource, verb) granted, with where it comes from. No rule may use
    /// wildcards: least privilege means naming each one.
    pub fn granted(&self) -> BTreeMap<(String, String, String), String> {
        let mut out = BTreeMap::new();
        for g in &self.grants {
            for list in [&g.groups, &g.resources, &g.verbs] {
                assert!(!list.iter().any(|x| x == "*"), "{}: a wildcard in {list:?}", g.role);
            }
            for group in &g.groups {
                for resource in &g.resources {
                    for verb in &g.verbs {
                        out.insert(
                            (group.clone(), resource.clone(), verb.clone()),
                            format!("{} ({})", g.role, g.scope),
                        );
                    }
                }
            }
        }
        out
    }
}

/// The distinct calls the operator made from `seq` on.
pub fn operator_calls(env: &Env, seq: u64) -> BTreeSet<Call> {
    let (records, _) = env.h.kube_sim().requests().since(seq);
    records.iter().filter(|r| is_operator(r)).map(Call::of).collect()
}

/// The calls `rbac` does not allow, and the grants no call used (less the listed
/// exceptions), as readable lines.
pub fn compare(rbac: &Rbac, calls: &BTreeSet<Call>) -> (Vec<String>, Vec<String>) {
    let denied: Vec<String> = calls.iter().filter(|c| !rbac.allows(c)).map(Call::to_string).collect();
    let used: BTreeSet<(String, String, String)> =
        calls.iter().map(|c| (c.group.clone(), c.resource.clone(), c.verb.clone())).collect();
    let excepted: BTreeSet<(String, String, String)> =
        NOT_EXERCISED.iter().map(|(g, r, v, _)| ((*g).to_owned(), (*r).to_owned(), (*v).to_owned())).collect();
    let unused: Vec<String> = rbac
        .granted()
        .into_iter()
        .filter(|(key, _)| !used.contains(key) && !excepted.contains(key))
        .map(|((g, r, v), from)| format!("{v} {}/{r} from {from}", if g.is_empty() { "core" } else { &g }))
        .collect();
    (denied, unused)
}

fn describe(calls: &BTreeSet<Call>) -> String {
    calls.iter().map(|c| format!("  {c}\n")).collect()
}

/// Ok once the operator made a `verb` request on `resource` (`group/plural` or a core
/// `plural`, with `/subresource`) from `seq` on.
fn operator_did(env: &Env, seq: u64, verb: &str, resource: &str) -> Result<(), String> {
    let (records, _) = env.h.kube_sim().requests().since(seq);
    let done = records.iter().any(|r| is_operator(r) && r.verb.to_string() == verb && r.resource_path() == resource);
    done.then_some(()).ok_or_else(|| format!("no {verb} {resource} by the operator yet"))
}

/// Every volume of every instance holds `size`, `"200Gi"` for TiKV and `"20Gi"` for PD.
fn volumes_grown(e: &Env) -> Result<(), String> {
    for (plural, size) in [("tikvs", "200Gi"), ("pds", "20Gi")] {
        for instance in e.names(plural) {
            for pvc in e.pvcs_of(&instance) {
                let capacity = pvc["status"]["capacity"]["storage"].as_str().unwrap_or_default();
                if capacity != size {
                    return Err(format!("{} holds {capacity}, want {size}", name(&pvc)));
                }
            }
        }
    }
    Ok(())
}

/// Every write path in one run: create (TiKV 4, revision history 0) → both groups'
/// volumes grown online (instances replaced, PVCs patched, old revisions pruned) → a
/// Service left by an older build re-applied → TiKV scale-in 4 → 3 → `kubectl delete pd`
/// of a member whose node is off (a Node read, the stuck pod deleted without grace) →
/// suspend and resume → the Cluster deleted under deletionPolicy Delete (its groups
/// deleted by the operator, then the volumes) → a TLS cluster whose client certificate
/// Secret is read, then removed around a stopped operator so that the next process
/// releases its PD instance without it (a GET confirms the Cluster is gone). Every call the operator made is allowed by
/// the cluster-wide manifest's rules, and every rule is used by some call (or listed in
/// `NOT_EXERCISED` with its reason).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_grants_exactly_the_calls_the_operator_makes() {
    let docs = manifest_documents(MANIFEST);
    let (sa_ns, sa) = Rbac::service_account(&docs);
    let rbac = Rbac::of(&docs, &sa_ns, &sa);
    for (g, r, v, why) in NOT_EXERCISED {
        assert!(
            rbac.granted().contains_key(&((*g).into(), (*r).into(), (*v).into())),
            "{v} {g}/{r} ({why}) is not granted"
        );
    }

    let mut env = Env::start_with(|docs| {
        for doc in docs.iter_mut() {
            match doc.kind() {
                "TiKVGroup" => doc.object["spec"]["replicas"] = json!(4),
                "Cluster" => doc.object["spec"]["revisionHistoryLimit"] = json!(0),
                _ => {}
            }
        }
    })
    .await;
    env.wait_for("Ready with 4 stores", |e| e.converged(3, 4)).await;

    // Online volume grow of both groups.
    let seq = env.api_seq();
    let volume = |size: &str| json!({"spec": {"template": {"spec": {"volumes": [{"name": "data", "storage": size}]}}}});
    env.patch("tikvgroups", TIKV_GROUP, volume("200Gi"));
    env.patch("pdgroups", PD_GROUP, volume("20Gi"));
    env.wait_for("every volume grown, old revisions pruned", |e| {
        volumes_grown(e)?;
        operator_did(e, seq, "delete", "apps/controllerrevisions")?;
        e.converged(3, 4)
    })
    .await;

    // A Service as an older operator build rendered it: applied again.
    let service = "pd-pd";
    let seq = env.api_seq();
    let stale = json!({"metadata": {"annotations": {ANNOTATION_SPEC_HASH: "rendered-by-an-older-build"}}});
    env.user.patch(&r("services"), Some(NS), service, None, PatchType::Merge, &stale).unwrap();
    env.wait_for("the Service re-applied", |e| operator_did(e, seq, "patch", "services")).await;

    // Scale-in: a store offline, its TiKV, pod and PVCs deleted.
    env.patch("tikvgroups", TIKV_GROUP, json!({"spec": {"replicas": 3}}));
    env.wait_for("Ready with 3 stores", |e| e.converged(3, 3)).await;

    // `kubectl delete pd` of a member whose node is off.
    let deleted = env.names("pds").into_iter().next().unwrap();
    let node = env.pod_of(&deleted).unwrap()["spec"]["nodeName"].as_str().unwrap().to_owned();
    env.h.cluster().nodes().set_powered(&node, false).unwrap();
    let member = format!("pd-{deleted}");
    env.wait_for("the member down", |e| {
        let down = e.try_pd_snapshot()?.members.iter().any(|m| m.name == member && m.in_etcd && !m.running);
        down.then_some(()).ok_or_else(|| format!("{member} still runs"))
    })
    .await;
    env.delete("pds", &deleted);
    env.wait_for("the deleted PD gone with its pod and PVC", |e| {
        if e.get("pds", &deleted).is_some() || e.pod_of(&deleted).is_some() || !e.pvcs_of(&deleted).is_empty() {
            return Err(format!("{deleted}, its pod or its PVC is still there"));
        }
        Ok(())
    })
    .await;
    env.h.cluster().nodes().set_powered(&node, true).unwrap();
    env.wait_for("Ready with a new PD member", |e| e.converged(3, 3)).await;

    // Suspend, then resume.
    env.patch("clusters", CLUSTER, json!({"spec": {"suspendAction": {"suspendCompute": true}}}));
    env.wait_for("every pod gone", |e| {
        let left = e.names("pods");
        if left.is_empty() { Ok(()) } else { Err(format!("pods left: {left:?}")) }
    })
    .await;
    env.patch("clusters", CLUSTER, json!({"spec": {"suspendAction": {"suspendCompute": false}}}));
    env.wait_for("Ready after resuming", |e| e.converged(3, 3)).await;

    // The Cluster deleted under deletionPolicy Delete: the operator deletes its groups,
    // then the instances' volumes (by label).
    env.patch("clusters", CLUSTER, json!({"spec": {"deletionPolicy": "Delete"}}));
    env.wait_for("the Cluster's spec seen", |e| {
        let cluster = e.get("clusters", CLUSTER).ok_or("no Cluster")?;
        expect_eq("observedGeneration", &cluster["status"]["observedGeneration"], &cluster["metadata"]["generation"])
    })
    .await;
    env.delete("clusters", CLUSTER);
    env.wait_for("everything of the Cluster gone, volumes included", |e| e.nothing_of_the_cluster_left()).await;

    // A TLS cluster: its client certificate Secret is read (it does not exist: Wait).
    let seq = env.api_seq();
    let kubectl = env.h.store().client("kubectl");
    let tls = json!({
        "apiVersion": "core.tikv.org/v1alpha1", "kind": "Cluster",
        "metadata": {"name": "tls", "namespace": NS},
        "spec": {"tlsCluster": {"enabled": true}},
    });
    for object in [tls, basic_pd_group("tls")] {
        apply::apply(&kubectl, &apply::Document { file: PathBuf::from("tls.yaml"), object }).unwrap();
    }
    let pd = env
        .wait_for("the TLS client Secret read, a PD instance holding its finalizer", |e| {
            operator_did(e, seq, "get", "secrets")?;
            let pd = e.list("pds").into_iter().find(|p| p["metadata"]["labels"]["tikv.org/group"] == "tls-pd");
            let pd = pd.ok_or("no PD instance yet")?;
            let finalizers = pd["metadata"]["finalizers"].as_array().cloned().unwrap_or_default();
            if finalizers.iter().any(|f| f == FINALIZER) { Ok(name(&pd)) } else { Err("no finalizer yet".into()) }
        })
        .await;

    // That Cluster removed around a stopped operator (its finalizer stripped by hand), and
    // the PD instance deleted: the next process releases it once a GET confirms that its
    // Cluster is gone.
    env.stop_operator().await;
    env.delete("clusters", "tls");
    env.patch("clusters", "tls", json!({"metadata": {"finalizers": null}}));
    env.delete("pds", &pd);
    let seq = env.api_seq();
    env.restart_operator().await;
    env.wait_for("the PD instance released without its Cluster", |e| {
        operator_did(e, seq, "get", "core.tikv.org/clusters")?;
        if e.get("pds", &pd).is_some() { Err(format!("{pd} is still there")) } else { Ok(()) }
    })
    .await;

    // Leader election as `run` does it (the e2e operator runs without): the Lease in the
    // release namespace taken, renewed and released under the operator's identity.
    let client = env.operator_client().await;
    let election = LeaderElectionConfig::new(sa_ns.clone(), "tikv-operator", "rbac-check");
    let elector = Elector::new(client, election.clone(), election.fence());
    for step in ["taken", "renewed"] {
        let attempt = elector.try_acquire_or_renew().await.expect("the Lease written");
        assert!(matches!(attempt, Attempt::Leading), "the Lease {step}: {attempt:?}");
    }
    assert!(elector.release().await.expect("the Lease released"), "the Lease was ours to release");

    let calls = operator_calls(&env, 0);
    let (denied, unused) = compare(&rbac, &calls);
    assert!(denied.is_empty(), "calls the chart's RBAC does not allow:\n{}", denied.join("\n"));
    assert!(
        unused.is_empty(),
        "granted but never used (remove, or list in NOT_EXERCISED with why):\n{}\nthe calls:\n{}",
        unused.join("\n"),
        describe(&calls)
    );
    env.finish().await;
}

/// `examples/basic`'s PDGroup, one member, in Cluster `cluster`.
fn basic_pd_group(cluster: &str) -> Value {
    let examples = repo_path("examples/basic");
    let docs = apply::read_dir(&examples).unwrap();
    let mut group = docs.into_iter().find(|d| d.kind() == "PDGroup").unwrap().object;
    group["metadata"] = json!({"name": format!("{cluster}-pd"), "namespace": NS});
    group["spec"]["cluster"]["name"] = json!(cluster);
    group["spec"]["replicas"] = json!(1);
    group
}

#[test]
fn a_grant_allows_its_verbs_on_its_resources_in_its_scope_only() {
    let grant = |scope: Scope| Grant {
        groups: vec!["".into()],
        resources: vec!["pods".into(), "pods/status".into()],
        verbs: vec!["get".into(), "list".into()],
        scope,
        role: "Role/x".into(),
    };
    let call = |verb: &str, resource: &str, scope: Scope| Call {
        verb: verb.into(),
        group: String::new(),
        resource: resource.into(),
        scope,
    };
    let ns = |n: &str| Scope::Namespace(n.into());
    let role = grant(ns("a"));
    assert!(role.allows(&call("get", "pods", ns("a"))));
    assert!(role.allows(&call("list", "pods/status", ns("a"))));
    assert!(!role.allows(&call("get", "pods", ns("b"))), "another namespace");
    assert!(!role.allows(&call("list", "pods", Scope::Cluster)), "every namespace");
    assert!(!role.allows(&call("delete", "pods", ns("a"))), "another verb");
    assert!(!role.allows(&call("get", "pods/log", ns("a"))), "another subresource");
    let cluster_role = grant(Scope::Cluster);
    assert!(cluster_role.allows(&call("list", "pods", Scope::Cluster)));
    assert!(cluster_role.allows(&call("get", "pods", ns("b"))));
    let other_group = Call { group: "apps".into(), ..call("get", "pods", ns("a")) };
    assert!(!cluster_role.allows(&other_group));
}

/// The manifests bind their rules to the Deployment's ServiceAccount, and namespace
/// mode grants nothing namespaced outside the watched namespace but the Lease.
#[test]
fn the_manifests_bind_their_rules_to_the_deployments_service_account() {
    let docs = manifest_documents(MANIFEST);
    let (ns, sa) = Rbac::service_account(&docs);
    assert!(docs.iter().any(|d| d.kind() == "ServiceAccount" && d.name() == sa && d.namespace() == Some(ns.as_str())));
    assert_eq!(format!("system:serviceaccount:{ns}:{sa}"), crate::env::OPERATOR_USER);
    let rbac = Rbac::of(&docs, &ns, &sa);
    let list_pods = Call { verb: "list".into(), group: String::new(), resource: "pods".into(), scope: Scope::Cluster };
    assert!(rbac.allows(&list_pods), "cluster-wide: pods in every namespace");

    let docs = manifest_documents(NAMESPACED_MANIFEST);
    let (ns, sa) = Rbac::service_account(&docs);
    let rbac = Rbac::of(&docs, &ns, &sa);
    let watched = watched_namespace(&docs);
    assert!(!rbac.allows(&list_pods), "namespaced: no pods across namespaces");
    assert!(rbac.allows(&Call { scope: Scope::Namespace(watched.clone()), ..list_pods.clone() }));
    let cluster_wide: BTreeSet<String> =
        rbac.grants.iter().filter(|g| g.scope == Scope::Cluster).flat_map(|g| g.resources.iter().cloned()).collect();
    assert_eq!(cluster_wide, BTreeSet::from(["nodes".to_owned(), "persistentvolumes".to_owned()]));
    for g in rbac.grants.iter().filter(|g| g.scope != Scope::Cluster && g.scope != Scope::Namespace(watched.clone())) {
        assert_eq!(g.resources, ["leases"], "only the Lease outside the watched namespace: {g:?}");
    }
}

/// The namespace the namespaced manifest's Deployment watches (`--namespace=`).
pub fn watched_namespace(docs: &[apply::Document]) -> String {
    let deployment = docs.iter().find(|d| d.kind() == "Deployment").expect("a Deployment");
    let args = deployment.object["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap();
    args.iter()
        .find_map(|a| a.as_str()?.strip_prefix("--namespace="))
        .expect("--namespace in the Deployment's args")
        .to_owned()
}

/// `kubectl apply -f` of each rendered manifest into an empty kube-sim creates every
/// object in it (`kubectl get -f` finds them all), and applying it again changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_manifests_apply_to_kube_sim_with_kubectl() {
    for manifest in [MANIFEST, NAMESPACED_MANIFEST] {
        let sim = kube_sim::KubeSim::start(kube_sim::Config::default()).await.unwrap();
        let cache =
            std::env::temp_dir().join(format!("kubectl-cache-rbac-{}-{}", std::process::id(), sim.addr().port()));
        let file = repo_path(manifest);
        let kubectl = |args: &[&str]| {
            let out = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(sim.kubeconfig_path())
                .arg("--cache-dir")
                .arg(&cache)
                .args(args)
                .arg("-f")
                .arg(&file)
                .output()
                .expect("kubectl runs");
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(out.status.success(), "kubectl {args:?} -f {manifest}:\n{text}");
            text
        };
        let docs = manifest_documents(manifest);
        // kube-sim serves no OpenAPI documents for kubectl to validate against.
        let applied = kubectl(&["apply", "--validate=false"]);
        assert_eq!(applied.lines().filter(|l| l.ends_with(" created")).count(), docs.len(), "{manifest}:\n{applied}");
        let found = kubectl(&["get", "-o", "name"]);
        assert_eq!(found.lines().count(), docs.len(), "{manifest}: kubectl get -f finds every object:\n{found}");
        for doc in &docs {
            let kind = doc.kind().to_lowercase();
            assert!(
                found.lines().any(|l| l.starts_with(&kind) && l.ends_with(&format!("/{}", doc.name()))),
                "{manifest}: no {kind}/{} in\n{found}",
                doc.name()
            );
        }
        // Applied again: nothing changes.
        let again = kubectl(&["apply", "--validate=false"]);
        assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{manifest}: applied again:\n{again}");
        sim.shutdown().await;
        let _ = std::fs::remove_dir_all(&cache);
    }
}

/// The operator watching one namespace (`--namespace`, as the namespaced manifest runs
/// it) brings `examples/basic` there to Ready, and every call it made is allowed by
/// the namespaced manifest's rules: a Role in that namespace, the small ClusterRole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_namespace_mode_the_operator_needs_only_the_namespaced_rules() {
    let docs = manifest_documents(NAMESPACED_MANIFEST);
    let (sa_ns, sa) = Rbac::service_account(&docs);
    let rbac = Rbac::of(&docs, &sa_ns, &sa);
    let watched = watched_namespace(&docs);

    let env = Env::start_in_namespace(&watched).await;
    env.wait_for(&format!("Ready in namespace {watched}"), |e| e.cluster_ready_in(&watched, 3, 3)).await;
    let calls = operator_calls(&env, 0);
    let (denied, _) = compare(&rbac, &calls);
    assert!(denied.is_empty(), "calls the namespaced RBAC does not allow:\n{}", denied.join("\n"));
    let elsewhere: Vec<String> = calls
        .iter()
        .filter(|c| matches!(&c.scope, Scope::Namespace(ns) if *ns != watched))
        .map(Call::to_string)
        .collect();
    assert!(elsewhere.is_empty(), "calls outside namespace {watched}: {elsewhere:#?}");
    env.finish().await;
}

/// Every argument the manifests' Deployments pass is one `tikv-operator run` accepts
/// (clap refuses an unknown flag or a bad value before it gets to the `--help` after
/// them).
#[test]
fn the_deployments_args_are_what_tikv_operator_run_accepts() {
    for manifest in [MANIFEST, NAMESPACED_MANIFEST] {
        let docs = manifest_documents(manifest);
        let deployment = docs.iter().find(|d| d.kind() == "Deployment").expect("a Deployment");
        let container = &deployment.object["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(args.first(), Some(&"run"), "{manifest}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tikv-operator"))
            .args(&args)
            .arg("--help")
            .env("POD_NAME", "tikv-operator-0")
            .env("POD_NAMESPACE", "tikv-operator")
            .output()
            .unwrap();
        assert!(out.status.success(), "{manifest}: tikv-operator {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}
