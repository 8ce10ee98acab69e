//! Roles and bindings, validated as kube-apiserver's RBAC registry does: policy rules
//! are resource rules or non-resource rules (the latter only in ClusterRoles), bindings
//! refer to a role in `rbac.authorization.k8s.io` and name valid subjects, and a
//! binding's `roleRef` never changes (delete and re-create it instead).

use serde_json::{Value, json};

use crate::error::{FieldErr, FieldErrKind};
use crate::registry::RBAC_GROUP;

fn len(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

fn not_supported(field: String, value: &Value, supported: &[&str]) -> FieldErr {
    let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    FieldErr::new(
        field,
        FieldErrKind::NotSupported,
        Some(if value.is_null() { json!("") } else { value.clone() }),
        format!("supported values: {}", list.join(", ")),
    )
}

fn path_segment_errors(field: &str, name: &str) -> Option<FieldErr> {
    if name == "." || name == ".." {
        return Some(FieldErr::invalid(field, json!(name), format!("may not be '{name}'")));
    }
    for bad in ["/", "%"] {
        if name.contains(bad) {
            return Some(FieldErr::invalid(field, json!(name), format!("may not contain '{bad}'")));
        }
    }
    None
}

/// Rules of a Role (`namespaced`) or ClusterRole.
pub fn validate_role(obj: &Value, namespaced: bool) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
        let path = |f: &str| format!("rules[{i}].{f}");
        if len(&rule["verbs"]) == 0 {
            errs.push(FieldErr::required(path("verbs"), "verbs must contain at least one value"));
        }
        if len(&rule["nonResourceURLs"]) > 0 {
            let urls = rule["nonResourceURLs"].clone();
            if namespaced {
                errs.push(FieldErr::invalid(
                    path("nonResourceURLs"),
                    urls.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if len(&rule["apiGroups"]) > 0 || len(&rule["resources"]) > 0 || len(&rule["resourceNames"]) > 0 {
                errs.push(FieldErr::invalid(
                    path("nonResourceURLs"),
                    urls,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if len(&rule["apiGroups"]) == 0 {
            errs.push(FieldErr::required(path("apiGroups"), "resource rules must supply at least one api group"));
        }
        if len(&rule["resources"]) == 0 {
            errs.push(FieldErr::required(path("resources"), "resource rules must supply at least one resource"));
        }
        if len(&rule["resourceNames"]) > 0 && len(&rule["resources"]) > 1 {
            errs.push(FieldErr::required(path("resourceNames"), "resource names cannot apply to multiple resources"));
        }
    }
    errs
}

/// A RoleBinding (`namespaced`) or ClusterRoleBinding.
pub fn validate_binding(obj: &Value, namespaced: bool) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let role_ref = &obj["roleRef"];
    if role_ref["apiGroup"].as_str() != Some(RBAC_GROUP) {
        errs.push(not_supported("roleRef.apiGroup".into(), &role_ref["apiGroup"], &[RBAC_GROUP]));
    }
    let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
    if !kinds.iter().any(|k| role_ref["kind"].as_str() == Some(k)) {
        errs.push(not_supported("roleRef.kind".into(), &role_ref["kind"], kinds));
    }
    match role_ref["name"].as_str().unwrap_or_default() {
        "" => errs.push(FieldErr::required("roleRef.name", "")),
        name => errs.extend(path_segment_errors("roleRef.name", name)),
    }
    for (i, subject) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
        let path = |f: &str| format!("subjects[{i}].{f}");
        let name = subject["name"].as_str().unwrap_or_default();
        let group = subject["apiGroup"].as_str().unwrap_or_default();
        if name.is_empty() {
            errs.push(FieldErr::required(path("name"), ""));
        }
        match subject["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                if !name.is_empty() && !super::names::is_subdomain(name) {
                    errs.push(FieldErr::invalid(path("name"), json!(name), super::names::SUBDOMAIN_MSG));
                }
                if !group.is_empty() {
                    errs.push(not_supported(path("apiGroup"), &json!(group), &[""]));
                }
                if !namespaced && subject["namespace"].as_str().unwrap_or_default().is_empty() {
                    errs.push(FieldErr::required(path("namespace"), ""));
                }
            }
            kind @ ("User" | "Group") => {
                if name.is_empty() {
                    let what = if kind == "User" { "user" } else { "group" };
                    errs.push(FieldErr::invalid(path("name"), json!(""), format!("{what} name cannot be empty")));
                }
                if group != RBAC_GROUP {
                    errs.push(not_supported(path("apiGroup"), &json!(group), &[RBAC_GROUP]));
                }
            }
            _ => errs.push(not_supported(path("kind"), &subject["kind"], &["ServiceAccount", "User", "Group"])),
        }
    }
    errs
}

pub fn validate_binding_update(old: &Value, new: &Value, namespaced: bool) -> Vec<FieldErr> {
    let mut errs = validate_binding(new, namespaced);
    if old["roleRef"] != new["roleRef"] {
        errs.push(FieldErr::invalid("roleRef", new["roleRef"].clone(), "cannot change roleRef"));
    }
    errs
}

/// The v1 defaults: a binding's `roleRef.apiGroup`, and each subject's `apiGroup` by kind.
pub fn default_binding(obj: &mut Value) {
    if let Some(role_ref) = obj.get_mut("roleRef").and_then(Value::as_object_mut)
        && role_ref.get("apiGroup").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        role_ref.insert("apiGroup".into(), json!(RBAC_GROUP));
    }
    for subject in obj.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(s) = subject.as_object_mut() else { continue };
        if s.get("apiGroup").and_then(Value::as_str).is_some_and(|g| !g.is_empty()) {
            continue;
        }
        match s.get("kind").and_then(Value::as_str) {
            Some("User" | "Group") => {
                s.insert("apiGroup".into(), json!(RBAC_GROUP));
            }
            // Its group is the core group, "", which the real server omits on output
            // (`omitempty`), so a re-applied binding compares equal.
            Some("ServiceAccount") => {
                s.remove("apiGroup");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errs: &[FieldErr]) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn rules_are_either_resource_or_non_resource_rules() {
        let role = json!({"rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            {"resources": ["pods", "secrets"], "resourceNames": ["a"]},
            {"nonResourceURLs": ["/metrics"], "apiGroups": [""], "verbs": ["get"]}
        ]});
        assert_eq!(
            fields(&validate_role(&role, true)),
            [
                "rules[1].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resourceNames: Required value: resource names cannot apply to multiple resources",
                "rules[2].nonResourceURLs: Invalid value: [\"/metrics\"]: namespaced rules cannot apply to non-resource URLs",
                "rules[2].nonResourceURLs: Invalid value: [\"/metrics\"]: rules cannot apply to both regular resources and non-resource URLs",
            ]
        );
        let metrics = json!({"rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]});
        assert!(validate_role(&metrics, false).is_empty());
    }

    #[test]
    fn bindings_are_defaulted_checked_and_keep_their_role() {
        let mut b = json!({"roleRef": {"kind": "Role", "name": "r"},
                           "subjects": [{"kind": "ServiceAccount", "name": "op"}, {"kind": "Group", "name": "devs"}]});
        default_binding(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], RBAC_GROUP);
        assert!(b["subjects"][0].get("apiGroup").is_none(), "{b}");
        assert_eq!(b["subjects"][1]["apiGroup"], RBAC_GROUP);
        assert!(validate_binding(&b, true).is_empty());
        assert_eq!(
            fields(&validate_binding(&b, false)),
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "subjects[0].namespace: Required value",
            ]
        );
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("other");
        let errs = validate_binding_update(&b, &changed, true);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "roleRef");
        assert!(errs[0].detail.contains("cannot change roleRef"));
        let bad = json!({"roleRef": {"apiGroup": "x", "kind": "Role", "name": ""}, "subjects": [{"kind": "Robot", "name": "r"}]});
        assert_eq!(
            fields(&validate_binding(&bad, true)),
            [
                "roleRef.apiGroup: Unsupported value: \"x\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.name: Required value",
                "subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
    }
}
