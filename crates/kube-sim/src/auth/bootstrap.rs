//! The default ClusterRoles and ClusterRoleBindings kube-apiserver creates at start
//! (its RBAC bootstrap policy) that matter here: `cluster-admin` for `system:masters`,
//! and what every authenticated user may do (`system:discovery`, `system:basic-user`,
//! `system:public-info-viewer`). The user-facing aggregated roles (`admin`, `edit`,
//! `view`) and the controllers' roles are not created; the real server also re-creates
//! these if deleted, which this one does not.

use serde_json::{Value, json};

use super::{AUTHENTICATED_GROUP, MASTERS_GROUP};

fn meta(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    })
}

/// The bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let role = |name: &str, rules: Value| json!({"metadata": meta(name), "rules": rules});
    vec![
        role(
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                   {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        ),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                        "/openapi/*", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
        ),
        role(
            "system:basic-user",
            json!([{"apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                   {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]),
        ),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                    "verbs": ["get"]}]),
        ),
    ]
}

/// The bootstrap ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    let group = |name: &str| json!({"apiGroup": crate::registry::RBAC_GROUP, "kind": "Group", "name": name});
    let binding = |name: &str, subjects: Vec<Value>| {
        json!({"metadata": meta(name),
               "roleRef": {"apiGroup": crate::registry::RBAC_GROUP, "kind": "ClusterRole", "name": name},
               "subjects": subjects})
    };
    vec![
        binding("cluster-admin", vec![group(MASTERS_GROUP)]),
        binding("system:discovery", vec![group(AUTHENTICATED_GROUP)]),
        binding("system:basic-user", vec![group(AUTHENTICATED_GROUP)]),
        binding("system:public-info-viewer", vec![group(AUTHENTICATED_GROUP), group("system:unauthenticated")]),
    ]
}
