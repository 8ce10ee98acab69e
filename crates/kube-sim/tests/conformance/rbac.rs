//! Identities and RBAC: a ServiceAccount token is refused until a binding grants it,
//! with kube-apiserver's 401/403 bodies, through kube-rs and kubectl; and the kinds a
//! Helm chart applies (ServiceAccount, Deployment, Roles and bindings).

use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use crate::common::{Sim, api_err};

const RBAC: &str = "rbac.authorization.k8s.io/v1";

async fn client_for(s: &Sim, token: &str) -> (Client, std::path::PathBuf) {
    let path = s.dir.path().join(format!("kubeconfig-{}", &token[token.len().saturating_sub(8)..]));
    s.sim.write_kubeconfig_with_token(&path, token).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    (Client::try_from(config).unwrap(), path)
}

/// kubectl with only the given kubeconfig (Sim::kubectl passes the administrator's).
fn kubectl_as(s: &Sim, kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(s.dir.path().join("kubectl-cache-token"))
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_is_forbidden_until_a_role_binding_grants_it() {
    let s = Sim::start_with(kube_sim::Config { https: true, ..Default::default() }).await;
    s.apply_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: ops}\n");
    let sas: Api<ServiceAccount> = Api::namespaced(s.client.clone(), "ops");
    sas.create(&PostParams::default(), &obj(json!({"metadata": {"name": "op"}}))).await.unwrap();
    let token = s.sim.service_account_token("ops", "op");
    let (client, kubeconfig) = client_for(&s, &token).await;
    let user = "system:serviceaccount:ops:op";

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "ops");
    let denied = api_err(cms.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((denied.code, denied.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        denied.message,
        format!(
            "configmaps is forbidden: User \"{user}\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"ops\""
        )
    );

    s.apply_yaml(&format!(
        "apiVersion: {RBAC}\nkind: Role\nmetadata: {{name: cm, namespace: ops}}\n\
         rules: [{{apiGroups: [''], resources: [configmaps], verbs: [get, list, watch, create]}}]\n---\n\
         apiVersion: {RBAC}\nkind: RoleBinding\nmetadata: {{name: op-cm, namespace: ops}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm}}\n\
         subjects: [{{kind: ServiceAccount, name: op}}]\n"
    ));
    assert!(cms.list(&ListParams::default()).await.unwrap().items.is_empty());
    cms.create(&PostParams::default(), &obj(json!({"metadata": {"name": "c"}}))).await.unwrap();
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    assert_eq!(api_err(elsewhere.list(&ListParams::default()).await.unwrap_err()).code, 403);
    let deleted = api_err(cms.delete("c", &Default::default()).await.unwrap_err());
    assert_eq!(
        deleted.message,
        format!(
            "configmaps \"c\" is forbidden: User \"{user}\" cannot delete resource \"configmaps\" in API group \"\" in the namespace \"ops\""
        )
    );

    // The request log names who asked.
    let mine: Vec<(String, u16)> = s
        .sim
        .requests()
        .snapshot()
        .iter()
        .filter(|r| r.user == user)
        .map(|r| (format!("{} {}", r.verb, r.namespace.clone().unwrap_or_default()), r.code))
        .collect();
    assert_eq!(
        mine,
        [
            ("list ops".to_string(), 403),
            ("list ops".to_string(), 200),
            ("create ops".to_string(), 201),
            ("list default".to_string(), 403),
            ("delete ops".to_string(), 403),
        ]
    );
    assert!(s.sim.requests().snapshot().iter().any(|r| r.user == "system:admin" && r.resource == "serviceaccounts"));

    // kubectl with the token (over https: client-go sends tokens only over TLS):
    // discovery works for any authenticated user, RBAC decides the rest, and
    // `auth can-i` asks the server with a SelfSubjectAccessReview.
    let out = kubectl_as(&s, &kubeconfig, &["get", "configmaps", "-n", "ops", "-o", "name"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "configmap/c", "{}", String::from_utf8_lossy(&out.stderr));
    let pods = kubectl_as(&s, &kubeconfig, &["get", "pods", "-n", "ops"]);
    assert!(!pods.status.success());
    let stderr = String::from_utf8_lossy(&pods.stderr);
    assert!(
        stderr.contains(&format!(
            "Error from server (Forbidden): pods is forbidden: User \"{user}\" cannot list resource \"pods\" in API group \"\" in the namespace \"ops\""
        )),
        "{stderr}"
    );
    let can = |what: &[&str]| {
        let mut args = vec!["auth", "can-i"];
        args.extend_from_slice(what);
        String::from_utf8_lossy(&kubectl_as(&s, &kubeconfig, &args).stdout).trim().to_string()
    };
    assert_eq!(can(&["list", "configmaps", "-n", "ops"]), "yes");
    assert_eq!(can(&["delete", "configmaps", "-n", "ops"]), "no");
    assert_eq!(can(&["list", "pods", "-n", "ops"]), "no");
    assert_eq!(s.kubectl_ok(&["auth", "can-i", "delete", "nodes"]).trim(), "yes", "no token: the administrator");
    let whoami = kubectl_as(&s, &kubeconfig, &["auth", "whoami", "-o", "json"]);
    let whoami: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], user);
    assert_eq!(whoami["status"]["userInfo"]["groups"][1], "system:serviceaccounts:ops");
    let list = kubectl_as(&s, &kubeconfig, &["auth", "can-i", "--list", "-n", "ops"]);
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(list.lines().any(|l| l.starts_with("configmaps ") && l.contains("[get list watch create]")), "{list}");
    assert!(list.lines().any(|l| l.contains("[/api/*]") && l.contains("[get]")), "{list}");
    let reviews: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let review =
        obj(json!({"spec": {"resourceAttributes": {"namespace": "ops", "verb": "watch", "resource": "configmaps"}}}));
    let answer = reviews.create(&PostParams::default(), &review).await.unwrap();
    assert_eq!(answer.status.map(|s| s.allowed), Some(true));

    // A TokenRequest (`kubectl create token`) issues a token for the same identity.
    let issued = s.kubectl_ok(&["create", "token", "op", "-n", "ops"]);
    let (by_request, _) = client_for(&s, issued.trim()).await;
    assert_eq!(
        Api::<ConfigMap>::namespaced(by_request, "ops").list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let missing = s.kubectl(&["create", "token", "nobody", "-n", "ops"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("serviceaccounts \"nobody\" not found"));

    // A token that is not registered, or whose ServiceAccount is gone, is refused.
    let (stranger, _) = client_for(&s, "not-a-token").await;
    let refused =
        api_err(Api::<ConfigMap>::namespaced(stranger, "ops").list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        (refused.code, refused.reason.as_str(), refused.message.as_str()),
        (401, "Unauthorized", "Unauthorized")
    );
    let logged = s.sim.requests().snapshot().into_iter().rev().find(|r| r.code == 401).map(|r| r.user);
    assert_eq!(logged.as_deref(), Some(""), "a refused token has no user");
    sas.delete("op", &Default::default()).await.unwrap();
    assert_eq!(api_err(cms.list(&ListParams::default()).await.unwrap_err()).code, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scope_needs_a_cluster_role_binding() {
    let s = Sim::start().await;
    s.sim.add_token("t-ops", "ops-person", &["ops-team"]);
    let (client, _) = client_for(&s, "t-ops").await;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let denied = api_err(nodes.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        denied.message,
        "nodes is forbidden: User \"ops-person\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
    );
    s.apply_yaml(&format!(
        "apiVersion: {RBAC}\nkind: ClusterRole\nmetadata: {{name: node-reader}}\n\
         rules: [{{apiGroups: [''], resources: [nodes], verbs: [get, list, watch]}}]\n---\n\
         apiVersion: {RBAC}\nkind: ClusterRoleBinding\nmetadata: {{name: ops-nodes}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-reader}}\n\
         subjects: [{{kind: Group, name: ops-team}}]\n"
    ));
    nodes.list(&ListParams::default()).await.unwrap();
    // A watch is authorized when it starts.
    let cms: Api<ConfigMap> = Api::all(client);
    let watch = cms.watch(&Default::default(), "0").await;
    assert_eq!(api_err(watch.err().expect("refused")).code, 403);

    // A binding's roleRef never changes; kubectl shows the server's refusal.
    let moved = s.kubectl_stdin(
        &["apply", "-f", "-"],
        Some(&format!(
            "apiVersion: {RBAC}\nkind: ClusterRoleBinding\nmetadata: {{name: ops-nodes}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}\n\
             subjects: [{{kind: Group, name: ops-team}}]\n"
        )),
    );
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert!(!moved.status.success() && stderr.contains("cannot change roleRef"), "{stderr}");
    let table = s.kubectl_ok(&["get", "clusterrolebindings", "ops-nodes", "-o", "wide"]);
    assert!(table.contains("ClusterRole/node-reader") && table.contains("ops-team"), "{table}");
    let bootstrap = s.kubectl_ok(&["get", "clusterroles", "-o", "name"]);
    assert!(bootstrap.contains("clusterrole.rbac.authorization.k8s.io/cluster-admin"), "{bootstrap}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_defaulted_validated_and_scaled() {
    let s = Sim::start().await;
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: op}\n\
        spec:\n  replicas: 2\n  selector: {matchLabels: {app: op}}\n  template:\n    metadata: {labels: {app: op}}\n\
        \x20   spec: {serviceAccountName: op, containers: [{name: op, image: 'tikv-operator:1'}]}\n---\n\
        apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: op}\n";
    s.apply_yaml(deployment);
    let d: serde_json::Value = serde_json::from_str(&s.kubectl_ok(&["get", "deploy", "op", "-o", "json"])).unwrap();
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["status"], json!({}));
    let table = s.kubectl_ok(&["get", "deploy", "op", "-o", "wide"]);
    assert!(table.contains("0/2") && table.contains("tikv-operator:1") && table.contains("app=op"), "{table}");
    s.kubectl_ok(&["scale", "deploy", "op", "--replicas=3"]);
    let scale = s.kubectl_ok(&["get", "--raw", "/apis/apps/v1/namespaces/default/deployments/op/scale"]);
    let scale: serde_json::Value = serde_json::from_str(&scale).unwrap();
    assert_eq!((scale["spec"]["replicas"].as_i64(), scale["status"]["selector"].as_str()), (Some(3), Some("app=op")));
    assert!(s.kubectl_ok(&["get", "sa"]).contains("op"));
    let bad =
        s.kubectl_stdin(&["apply", "-f", "-"], Some(&deployment.replace("{labels: {app: op}}", "{labels: {app: x}}")));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && stderr.contains("`selector` does not match template `labels`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_side_apply_that_creates_needs_create_too() {
    let s = Sim::start().await;
    s.sim.add_token("t-applier", "applier", &[]);
    let (client, _) = client_for(&s, "t-applier").await;
    s.apply_yaml(&format!(
        "apiVersion: {RBAC}\nkind: Role\nmetadata: {{name: cm-patch}}\n\
         rules: [{{apiGroups: [''], resources: [configmaps], verbs: [get, patch]}}]\n---\n\
         apiVersion: {RBAC}\nkind: RoleBinding\nmetadata: {{name: applier}}\n\
         roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-patch}}\n\
         subjects: [{{kind: User, name: applier}}]\n"
    ));
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let pp = kube::api::PatchParams::apply("applier");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1"}});
    let denied = api_err(cms.patch("cfg", &pp, &kube::api::Patch::Apply(&cm)).await.unwrap_err());
    assert_eq!((denied.code, denied.message.as_str()), (403, "configmaps \"cfg\" is forbidden: "));
    // Once the object exists, patch alone is enough.
    s.kubectl_ok(&["create", "configmap", "cfg"]);
    cms.patch("cfg", &pp, &kube::api::Patch::Apply(&cm)).await.unwrap();
    // A merge patch of a missing object is a 404, not a create.
    let missing = cms.patch("nope", &Default::default(), &kube::api::Patch::Merge(json!({"data": {"a": "1"}}))).await;
    assert_eq!(api_err(missing.unwrap_err()).code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregated_cluster_role_collects_the_rules_of_the_roles_it_selects() {
    let s = Sim::start().await;
    s.apply_yaml(&format!(
        "apiVersion: {RBAC}\nkind: ClusterRole\nmetadata: {{name: tikv-view}}\n\
         aggregationRule: {{clusterRoleSelectors: [{{matchLabels: {{aggregate-to-tikv-view: 'true'}}}}]}}\n---\n\
         apiVersion: {RBAC}\nkind: ClusterRole\nmetadata: {{name: b-part, labels: {{aggregate-to-tikv-view: 'true'}}}}\n\
         rules: [{{apiGroups: [''], resources: [pods], verbs: [get]}}]\n---\n\
         apiVersion: {RBAC}\nkind: ClusterRole\nmetadata: {{name: a-part, labels: {{aggregate-to-tikv-view: 'true'}}}}\n\
         rules: [{{apiGroups: [''], resources: [services], verbs: [list]}}, {{apiGroups: [''], resources: [pods], verbs: [get]}}]\n"
    ));
    let want = json!([{"apiGroups": [""], "resources": ["services"], "verbs": ["list"]},
                      {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(s.client.clone());
    crate::common::wait_for(10, "the aggregated rules", || async {
        let role = roles.get("tikv-view").await.unwrap();
        serde_json::to_value(role.rules.unwrap_or_default()).unwrap() == want
    })
    .await;
    let writer = s
        .sim
        .requests()
        .snapshot()
        .into_iter()
        .rev()
        .find(|r| r.name.as_deref() == Some("tikv-view") && r.verb == kube_sim::Verb::Patch);
    assert_eq!(writer.map(|r| r.user), Some("kube-controller-manager/clusterrole-aggregation-controller".into()));
}
