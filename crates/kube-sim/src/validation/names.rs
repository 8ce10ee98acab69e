//! Object name rules: RFC 1123 subdomains for most kinds, labels or RFC 1035 labels for some.

use serde_json::{Value, json};

use crate::error::FieldErr;
use crate::registry::ResourceInfo;

pub(crate) const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn is_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

fn is_dns1035(s: &str) -> bool {
    is_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

enum Rule {
    Subdomain,
    Label,
    Dns1035,
    /// Events and the like: only path-segment safety.
    PathSegment,
}

fn rule(info: &ResourceInfo) -> Rule {
    if info.custom {
        return Rule::PathSegment;
    }
    match (info.storage.group.as_str(), info.storage.resource.as_str()) {
        ("", "namespaces") => Rule::Label,
        ("", "services") => Rule::Dns1035,
        ("", "events") => Rule::PathSegment,
        // Roles and bindings are named like `system:discovery`.
        (crate::registry::RBAC_GROUP, _) => Rule::PathSegment,
        _ => Rule::Subdomain,
    }
}

/// `metadata.name` errors for a new object.
pub fn validate_object_name(info: &ResourceInfo, obj: &Value) -> Vec<FieldErr> {
    let name = crate::meta::name(obj);
    if name.is_empty() {
        return vec![FieldErr::required("metadata.name", "name or generateName is required")];
    }
    let mut errs = Vec::new();
    let bad_segment = name == "." || name == ".." || name.contains('/') || name.contains('%');
    if bad_segment {
        errs.push(FieldErr::invalid("metadata.name", json!(name), "may not contain '/' or '%' or be '.' or '..'"));
        return errs;
    }
    let (ok, msg, max) = match rule(info) {
        Rule::Subdomain => (is_subdomain(name), SUBDOMAIN_MSG, 253),
        Rule::Label => (is_label(name), LABEL_MSG, 63),
        Rule::Dns1035 => (is_dns1035(name), DNS1035_MSG, 63),
        Rule::PathSegment => (true, "", 0),
    };
    if !ok {
        if name.len() > max {
            errs.push(FieldErr::invalid(
                "metadata.name",
                json!(name),
                format!("must be no more than {max} characters"),
            ));
        } else {
            errs.push(FieldErr::invalid("metadata.name", json!(name), msg));
        }
    }
    if info.custom && !is_subdomain(name) {
        errs.push(FieldErr::invalid("metadata.name", json!(name), SUBDOMAIN_MSG));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(plural: &str) -> ResourceInfo {
        crate::registry::builtins().into_iter().find(|r| r.plural == plural && r.group.is_empty()).unwrap()
    }

    #[test]
    fn subdomains_labels_and_dns1035() {
        assert!(validate_object_name(&info("configmaps"), &json!({"metadata": {"name": "a.b-c"}})).is_empty());
        let errs = validate_object_name(&info("configmaps"), &json!({"metadata": {"name": "Bad_Name"}}));
        assert!(
            errs[0]
                .to_string()
                .starts_with("metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain")
        );
        assert!(!validate_object_name(&info("namespaces"), &json!({"metadata": {"name": "a.b"}})).is_empty());
        assert!(!validate_object_name(&info("services"), &json!({"metadata": {"name": "1abc"}})).is_empty());
        assert_eq!(
            validate_object_name(&info("pods"), &json!({"metadata": {}}))[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }
}
