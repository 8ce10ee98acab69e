//! RBAC authorization, as kube-apiserver's RBAC authorizer decides: a request is allowed
//! when a ClusterRoleBinding, or a RoleBinding in the request's namespace, binds its user
//! (by name, by group, or as a ServiceAccount) to a Role or ClusterRole with a rule that
//! matches the request's attributes. Members of `system:masters` are allowed before RBAC
//! is asked, as by the real server's privileged-group authorizer.
//!
//! The attributes come from the URL as apiserver's `RequestInfoFactory` derives them
//! ([`RequestAttributes::from_request`]): the verb from the method (`get` without a name
//! is `list` or `watch`, `delete` without one `deletecollection`), the namespace of a
//! `namespaces/{name}` URL is that name, and a list or watch whose field selector pins
//! `metadata.name` names that object (so `resourceNames` rules can allow it). Roles and
//! bindings are read from the store at the moment of the request (the real authorizer
//! reads informer caches, a little behind). An aggregated ClusterRole's rules are the
//! ones the aggregation controller ([`crate::controllers`]) has written into it.
//!
//! Also as the real server: an apply that creates its object is authorized for `create`
//! as well. Not modelled: escalation prevention (creating a role or binding that grants
//! more than the creator holds), the Node authorizer, impersonation, webhook and ABAC
//! authorizers, and admission plugins that consult RBAC (OwnerReferencesPermissionEnforcement,
//! off by default in kube-apiserver anyway).

use std::collections::HashMap;

use serde_json::Value;

use super::UserInfo;
use crate::error::ApiError;
use crate::registry::{GroupResource, RBAC_GROUP};
use crate::store::{Key, Store};

/// What RBAC judges a request by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestAttributes {
    pub verb: String,
    /// A request for an API resource rather than a plain path (`/version`, `/healthz`).
    pub resource_request: bool,
    /// The URL path, for non-resource requests.
    pub path: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
}

impl RequestAttributes {
    /// A resource request (for tests and in-process checks).
    pub fn resource(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        RequestAttributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            api_version: "v1".into(),
            namespace: namespace.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    /// A request for a path outside the API resources.
    pub fn non_resource(verb: &str, path: &str) -> Self {
        RequestAttributes { verb: verb.into(), path: path.into(), ..Default::default() }
    }

    /// The attributes of an HTTP request, as kube-apiserver's request-info parser reads them.
    pub fn from_request(method: &str, path: &str, query: &HashMap<String, String>) -> Self {
        let mut info = RequestAttributes::non_resource(&method.to_ascii_lowercase(), path);
        let parts: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let mut rest: &[&str] = match parts.as_slice() {
            ["api", version, rest @ ..] if !rest.is_empty() => {
                info.api_version = version.to_string();
                rest
            }
            ["apis", group, version, rest @ ..] if !rest.is_empty() => {
                info.api_group = group.to_string();
                info.api_version = version.to_string();
                rest
            }
            _ => return info,
        };
        info.resource_request = true;
        if matches!(rest.first(), Some(&("watch" | "proxy"))) {
            if rest.len() < 2 {
                return info;
            }
            info.verb = rest[0].to_string();
            rest = &rest[1..];
        } else {
            info.verb = match method {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .into();
        }
        if rest[0] == "namespaces" && rest.len() > 1 {
            info.namespace = rest[1].to_string();
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 && info.verb != "proxy" {
            info.subresource = rest[2].to_string();
        }
        if rest.len() >= 2 {
            info.name = rest[1].to_string();
        }
        info.resource = rest[0].to_string();
        if info.name.is_empty() && info.verb == "get" {
            let watch =
                query.get("watch").is_some_and(|w| matches!(w.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"));
            info.verb = if watch { "watch" } else { "list" }.into();
            if let Some(name) = query.get("fieldSelector").and_then(|f| exact_name(f)) {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".into();
        }
        info
    }
}

/// The name a field selector requires exactly (`metadata.name=x` or `==x` among its terms).
fn exact_name(selector: &str) -> Option<String> {
    selector
        .split(',')
        .find_map(|term| {
            let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
            (k.trim() == "metadata.name" && !k.ends_with('!')).then(|| v.trim().to_string())
        })
        .filter(|n| !n.is_empty() && !n.contains('/') && n != "." && n != "..")
}

/// The outcome of [`authorize`]: allowed or not, and why (kube-apiserver's reason string:
/// the binding that allowed it, or the errors met resolving roles when denied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// Whether one `PolicyRule` allows the request.
pub fn rule_allows(rule: &Value, attrs: &RequestAttributes) -> bool {
    let verb = strings(&rule["verbs"]).any(|v| v == "*" || v == attrs.verb);
    if !verb {
        return false;
    }
    if !attrs.resource_request {
        return strings(&rule["nonResourceURLs"]).any(|u| {
            u == "*" || u == attrs.path || (u.ends_with('*') && attrs.path.starts_with(u.trim_end_matches('*')))
        });
    }
    let group = strings(&rule["apiGroups"]).any(|g| g == "*" || g == attrs.api_group);
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resource = strings(&rule["resources"]).any(|r| {
        r == "*"
            || r == combined
            || (!attrs.subresource.is_empty()
                && r.len() == attrs.subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(attrs.subresource.as_str()))
    });
    let names = &rule["resourceNames"];
    let name = names.as_array().is_none_or(Vec::is_empty) || strings(names).any(|n| n == attrs.name);
    group && resource && name
}

/// Whether a binding's subject is this user; `namespace` is the RoleBinding's namespace,
/// which a ServiceAccount subject without one defaults to ("" for ClusterRoleBindings).
pub fn subject_matches(subject: &Value, user: &UserInfo, namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(namespace);
            !ns.is_empty() && user.service_account_of() == Some((ns, name))
        }
        _ => false,
    }
}

/// Decides a request for a user that is not privileged (callers check
/// [`UserInfo::is_privileged`] first).
pub fn authorize(store: &Store, user: &UserInfo, attrs: &RequestAttributes) -> Decision {
    let st = store.lock();
    let gr = |r: &str| GroupResource::new(RBAC_GROUP, r);
    let (roles, cluster_roles) = (gr("roles"), gr("clusterroles"));
    let mut errors: Vec<String> = Vec::new();
    let mut rules_of = |role_ref: &Value, namespace: &str| -> Option<Value> {
        let name = role_ref["name"].as_str().unwrap_or_default();
        let (resource, kind, key) = match role_ref["kind"].as_str().unwrap_or_default() {
            "Role" => (&roles, "role", Key::new(namespace, name)),
            "ClusterRole" => (&cluster_roles, "clusterrole", Key::new("", name)),
            other => {
                errors.push(format!("unsupported role reference kind: {other:?}"));
                return None;
            }
        };
        match st.get(resource, &key) {
            Some(role) => Some(role["rules"].clone()),
            None => {
                errors.push(format!("{kind}.{RBAC_GROUP} \"{name}\" not found"));
                None
            }
        }
    };
    let cluster_bindings = gr("clusterrolebindings");
    for (_, binding) in st.iter(&cluster_bindings, None) {
        let Some(subject) = strings_subjects(binding).find(|s| subject_matches(s, user, "")) else { continue };
        if let Some(rules) = rules_of(&binding["roleRef"], "")
            && rules.as_array().into_iter().flatten().any(|r| rule_allows(r, attrs))
        {
            return allowed("ClusterRoleBinding", binding, "", subject);
        }
    }
    if !attrs.namespace.is_empty() {
        let role_bindings = gr("rolebindings");
        for (_, binding) in st.iter(&role_bindings, Some(&attrs.namespace)) {
            let Some(subject) = strings_subjects(binding).find(|s| subject_matches(s, user, &attrs.namespace)) else {
                continue;
            };
            if let Some(rules) = rules_of(&binding["roleRef"], &attrs.namespace)
                && rules.as_array().into_iter().flatten().any(|r| rule_allows(r, attrs))
            {
                return allowed("RoleBinding", binding, &attrs.namespace, subject);
            }
        }
    }
    let reason = match errors.len() {
        0 => String::new(),
        1 => format!("RBAC: {}", errors[0]),
        _ => format!("RBAC: [{}]", errors.join(", ")),
    };
    Decision { allowed: false, reason }
}

/// Every rule the user holds in `namespace` (cluster-wide ones included), as a
/// SelfSubjectRulesReview lists them: ClusterRoleBindings first, then the namespace's
/// RoleBindings; roles that do not exist contribute nothing.
pub fn rules_for(store: &Store, user: &UserInfo, namespace: &str) -> Vec<Value> {
    let st = store.lock();
    let gr = |r: &str| GroupResource::new(RBAC_GROUP, r);
    let role_rules = |role_ref: &Value, ns: &str| -> Vec<Value> {
        let name = role_ref["name"].as_str().unwrap_or_default();
        let found = match role_ref["kind"].as_str().unwrap_or_default() {
            "Role" => st.get(&gr("roles"), &Key::new(ns, name)),
            "ClusterRole" => st.get(&gr("clusterroles"), &Key::new("", name)),
            _ => None,
        };
        found.and_then(|r| r["rules"].as_array().cloned()).unwrap_or_default()
    };
    let mut rules = Vec::new();
    for (_, binding) in st.iter(&gr("clusterrolebindings"), None) {
        if strings_subjects(binding).any(|s| subject_matches(s, user, "")) {
            rules.extend(role_rules(&binding["roleRef"], ""));
        }
    }
    if !namespace.is_empty() {
        for (_, binding) in st.iter(&gr("rolebindings"), Some(namespace)) {
            if strings_subjects(binding).any(|s| subject_matches(s, user, namespace)) {
                rules.extend(role_rules(&binding["roleRef"], namespace));
            }
        }
    }
    rules
}

fn strings_subjects(binding: &Value) -> impl Iterator<Item = &Value> {
    binding["subjects"].as_array().into_iter().flatten()
}

fn allowed(kind: &str, binding: &Value, namespace: &str, subject: &Value) -> Decision {
    let name = crate::meta::name(binding);
    let binding_name = if namespace.is_empty() { name.to_string() } else { format!("{name}/{namespace}") };
    let subject_kind = subject["kind"].as_str().unwrap_or_default();
    let subject_name = subject["name"].as_str().unwrap_or_default();
    let who = if subject_kind == "ServiceAccount" {
        let ns = subject["namespace"].as_str().filter(|n| !n.is_empty()).unwrap_or(namespace);
        format!("{subject_kind} \"{subject_name}/{ns}\"")
    } else {
        format!("{subject_kind} \"{subject_name}\"")
    };
    Decision {
        allowed: true,
        reason: format!(
            "RBAC: allowed by {kind} \"{binding_name}\" of {} \"{}\" to {who}",
            binding["roleRef"]["kind"].as_str().unwrap_or_default(),
            binding["roleRef"]["name"].as_str().unwrap_or_default()
        ),
    }
}

/// kube-apiserver's 403 for a denied request.
pub fn forbidden(user: &UserInfo, attrs: &RequestAttributes, reason: &str) -> ApiError {
    let mut message = if !attrs.resource_request {
        format!("User {:?} cannot {} path {:?}", user.name, attrs.verb, attrs.path)
    } else {
        let resource = if attrs.subresource.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        if attrs.namespace.is_empty() {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
                user.name, attrs.verb, resource, attrs.api_group
            )
        } else {
            format!(
                "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
                user.name, attrs.verb, resource, attrs.api_group, attrs.namespace
            )
        }
    };
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let resource = if attrs.resource_request { attrs.resource.as_str() } else { "" };
    ApiError::forbidden_for(&attrs.api_group, resource, &attrs.name, &message)
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sim_clock::SimClock;

    use super::*;
    use crate::ResourceRef;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn attributes_come_from_the_url_as_the_request_info_parser_reads_them() {
        let a = |m: &str, p: &str, query: &[(&str, &str)]| RequestAttributes::from_request(m, p, &q(query));
        let r = a("GET", "/api/v1/namespaces/ns/pods", &[]);
        assert_eq!((r.verb.as_str(), r.namespace.as_str(), r.resource.as_str()), ("list", "ns", "pods"));
        assert_eq!(a("GET", "/api/v1/pods", &[("watch", "true")]).verb, "watch");
        assert_eq!(a("GET", "/api/v1/watch/namespaces/ns/pods", &[]).verb, "watch");
        let r = a("GET", "/api/v1/namespaces/ns/pods", &[("fieldSelector", "metadata.name=web-0")]);
        assert_eq!((r.verb.as_str(), r.name.as_str()), ("list", "web-0"), "a pinned name names the object");
        let r = a("POST", "/api/v1/namespaces/ns/pods/web-0/eviction", &[]);
        assert_eq!((r.verb.as_str(), r.subresource.as_str(), r.name.as_str()), ("create", "eviction", "web-0"));
        assert_eq!(a("DELETE", "/apis/apps/v1/namespaces/ns/deployments", &[]).verb, "deletecollection");
        let r = a("PATCH", "/apis/apps/v1/namespaces/ns/deployments/op/scale", &[]);
        assert_eq!((r.api_group.as_str(), r.verb.as_str(), r.subresource.as_str()), ("apps", "patch", "scale"));
        let r = a("GET", "/api/v1/namespaces/ns", &[]);
        assert_eq!((r.namespace.as_str(), r.resource.as_str(), r.name.as_str()), ("ns", "namespaces", "ns"));
        let r = a("PUT", "/api/v1/namespaces/ns/finalize", &[]);
        assert_eq!((r.namespace.as_str(), r.name.as_str(), r.subresource.as_str()), ("ns", "ns", "finalize"));
        let r = a("GET", "/api/v1/nodes/n1", &[]);
        assert_eq!((r.namespace.as_str(), r.verb.as_str()), ("", "get"));
        for path in ["/api", "/api/v1", "/apis/apps", "/apis/apps/v1", "/version", "/openapi/v3"] {
            let r = a("GET", path, &[]);
            assert!(!r.resource_request && r.verb == "get" && r.path == path, "{path}");
        }
    }

    #[test]
    fn rules_match_like_kubernetes() {
        let res = |verb: &str, group: &str, resource: &str, name: &str| {
            RequestAttributes::resource(verb, group, resource, "ns", name)
        };
        let rule = |v: Value| v;
        let pods_read = rule(json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}));
        let star = rule(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        let eviction = rule(json!({"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}));
        let any_status = rule(json!({"apiGroups": ["apps"], "resources": ["*/status"], "verbs": ["update"]}));
        let named = rule(json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"],
                                "verbs": ["get", "update", "list", "watch"]}));
        let discovery = rule(json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]}));
        let cases: &[(&Value, RequestAttributes, bool)] = &[
            (&pods_read, res("get", "", "pods", "a"), true),
            (&pods_read, res("list", "", "pods", ""), true),
            (&pods_read, res("delete", "", "pods", "a"), false),
            (&pods_read, res("get", "apps", "pods", "a"), false),
            (&pods_read, res("get", "", "pods/status", "a"), false),
            (&pods_read, res("get", "", "pods/log", "a"), false),
            (&star, res("deletecollection", "anything.io", "widgets/scale", ""), true),
            (&eviction, res("create", "", "pods/eviction", "a"), true),
            (&eviction, res("create", "", "pods", ""), false),
            (&any_status, res("update", "apps", "deployments/status", "d"), true),
            (&any_status, res("update", "apps", "deployments", "d"), false),
            (&any_status, res("update", "apps", "deployments/scale", "d"), false),
            (&named, res("get", "", "configmaps", "cfg"), true),
            (&named, res("get", "", "configmaps", "other"), false),
            (&named, res("list", "", "configmaps", ""), false),
            (&named, res("watch", "", "configmaps", "cfg"), true),
            (&named, res("create", "", "configmaps", ""), false),
            (&discovery, RequestAttributes::non_resource("get", "/apis/apps/v1"), true),
            (&discovery, RequestAttributes::non_resource("get", "/apis"), false),
            (&discovery, RequestAttributes::non_resource("get", "/version"), true),
            (&discovery, RequestAttributes::non_resource("post", "/version"), false),
            (&discovery, res("get", "", "pods", "a"), false),
            (&pods_read, RequestAttributes::non_resource("get", "/api"), false),
        ];
        for (rule, attrs, want) in cases {
            assert_eq!(rule_allows(rule, attrs), *want, "{rule} for {attrs:?}");
        }
    }

    struct Cluster {
        store: Store,
    }

    impl Cluster {
        fn new() -> Self {
            let store = Store::new(SimClock::new(1.0), 1000, 0);
            let c = Cluster { store };
            for ns in ["a", "b"] {
                c.create("", "namespaces", None, json!({"metadata": {"name": ns}}));
            }
            c
        }
        fn create(&self, group: &str, plural: &str, ns: Option<&str>, obj: Value) {
            let version = "v1";
            self.store.client("test").create(&ResourceRef::new(group, version, plural), ns, obj).unwrap();
        }
        fn role(&self, ns: Option<&str>, name: &str, rules: Value) -> &Self {
            let plural = if ns.is_some() { "roles" } else { "clusterroles" };
            self.create(RBAC_GROUP, plural, ns, json!({"metadata": {"name": name}, "rules": rules}));
            self
        }
        fn bind(&self, ns: Option<&str>, name: &str, role_kind: &str, role: &str, subjects: Value) -> &Self {
            let plural = if ns.is_some() { "rolebindings" } else { "clusterrolebindings" };
            let obj = json!({"metadata": {"name": name}, "subjects": subjects,
                             "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role}});
            self.create(RBAC_GROUP, plural, ns, obj);
            self
        }
        fn can(&self, user: &UserInfo, verb: &str, group: &str, resource: &str, ns: &str) -> bool {
            authorize(&self.store, user, &RequestAttributes::resource(verb, group, resource, ns, "x")).allowed
        }
    }

    #[test]
    fn bindings_grant_their_role_to_their_subjects_in_their_scope() {
        let c = Cluster::new();
        let pods = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]);
        c.role(None, "pod-reader", pods.clone()).role(Some("a"), "local-reader", pods);
        let op = UserInfo::service_account("a", "op");
        let other_sa = UserInfo::service_account("b", "op");
        let alice = UserInfo { name: "alice".into(), groups: vec!["devs".into(), "system:authenticated".into()] };
        assert!(!c.can(&op, "get", "", "pods", "a"), "nothing is bound yet");

        // A ClusterRole through a RoleBinding: only in the binding's namespace; a
        // ServiceAccount subject without a namespace is the binding's namespace's.
        c.bind(Some("a"), "op-pods", "ClusterRole", "pod-reader", json!([{"kind": "ServiceAccount", "name": "op"}]));
        assert!(c.can(&op, "get", "", "pods", "a"));
        assert!(!c.can(&op, "get", "", "pods", "b"));
        assert!(!c.can(&op, "list", "", "pods", ""), "a list across namespaces needs a ClusterRoleBinding");
        assert!(!c.can(&other_sa, "get", "", "pods", "a"), "same name, other namespace");
        assert!(!c.can(&op, "delete", "", "pods", "a"));

        // Groups, Users, and a Role in the binding's namespace.
        c.bind(Some("a"), "devs", "Role", "local-reader", json!([{"kind": "Group", "name": "devs"}]));
        assert!(c.can(&alice, "list", "", "pods", "a"));
        c.bind(Some("b"), "alice", "Role", "missing", json!([{"kind": "User", "name": "alice"}]));
        let denied = authorize(&c.store, &alice, &RequestAttributes::resource("get", "", "pods", "b", "x"));
        assert_eq!(
            denied,
            Decision { allowed: false, reason: "RBAC: role.rbac.authorization.k8s.io \"missing\" not found".into() }
        );

        // A ClusterRoleBinding works everywhere, including across namespaces (its
        // ServiceAccount subjects must name their namespace: validation refuses others).
        c.bind(
            None,
            "all-pods",
            "ClusterRole",
            "pod-reader",
            json!([{"kind": "ServiceAccount", "name": "op", "namespace": "b"}]),
        );
        assert!(!subject_matches(&json!({"kind": "ServiceAccount", "name": "op"}), &op, ""));
        assert!(c.can(&other_sa, "list", "", "pods", ""));
        assert!(c.can(&other_sa, "get", "", "pods", "a"));
        assert!(!c.can(&op, "list", "", "pods", ""));
        let allowed = authorize(&c.store, &other_sa, &RequestAttributes::resource("list", "", "pods", "", ""));
        assert_eq!(
            allowed.reason,
            "RBAC: allowed by ClusterRoleBinding \"all-pods\" of ClusterRole \"pod-reader\" to ServiceAccount \"op/b\""
        );
    }

    #[test]
    fn denials_read_like_kube_apiserver() {
        let sa = UserInfo::service_account("ns", "op");
        let cases = [
            (
                RequestAttributes::resource("create", "", "pods/eviction", "ns", "web-0"),
                "pods \"web-0\" is forbidden: User \"system:serviceaccount:ns:op\" cannot create resource \"pods/eviction\" in API group \"\" in the namespace \"ns\"",
                json!({"name": "web-0", "kind": "pods"}),
            ),
            (
                RequestAttributes::resource("list", "apps", "deployments", "", ""),
                "deployments.apps is forbidden: User \"system:serviceaccount:ns:op\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope",
                json!({"group": "apps", "kind": "deployments"}),
            ),
            (
                RequestAttributes::non_resource("get", "/metrics"),
                "forbidden: User \"system:serviceaccount:ns:op\" cannot get path \"/metrics\"",
                json!({}),
            ),
        ];
        for (attrs, message, details) in cases {
            let status = forbidden(&sa, &attrs, "").status();
            assert_eq!(
                status,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                       "reason": "Forbidden", "details": details, "code": 403})
            );
        }
        let with_reason = forbidden(&sa, &RequestAttributes::resource("get", "", "pods", "ns", "p"), "RBAC: x");
        assert!(with_reason.message.ends_with("in the namespace \"ns\": RBAC: x"));
    }
}
