//! The API reference (`docs/api.md`), generated from the CRDs' OpenAPI schemas, whose
//! descriptions are the types' doc comments: one section a resource, one row a field.
//! `tikv-operator docs --out-dir docs` writes it; CI checks it is fresh.

use serde_json::Value;

/// The whole reference as Markdown.
pub fn markdown() -> String {
    let mut out = String::from(
        "# API reference\n\n\
         Generated from the types' doc comments by `cargo run -- docs --out-dir docs`; do not edit.\n\
         Every resource is in the API group `core.tikv.org`, version `v1alpha1`. A field\n\
         path uses `[]` for a list item and `{}` for a map value. Rules a schema cannot\n\
         say are CEL rules, listed under their object and checked at admission.\n",
    );
    for crd in crate::crds::all() {
        let crd = serde_json::to_value(&crd).unwrap_or_default();
        resource(&crd, &mut out);
    }
    out
}

fn resource(crd: &Value, out: &mut String) {
    let names = &crd["spec"]["names"];
    let kind = names["kind"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let short: Vec<&str> = names["shortNames"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    out.push_str(&format!("\n## {kind}\n\n"));
    let scope = crd["spec"]["scope"].as_str().unwrap_or_default();
    let mut aka = format!("`{plural}`");
    for name in &short {
        aka.push_str(&format!(", `{name}`"));
    }
    out.push_str(&format!("{scope}; `kubectl get` names: {aka}.\n"));
    let Some(version) = crd["spec"]["versions"].as_array().and_then(|v| v.first()) else { return };
    let schema = &version["schema"]["openAPIV3Schema"];
    for part in ["spec", "status"] {
        let Some(part_schema) = schema["properties"].get(part) else { continue };
        if let Some(description) = part_schema["description"].as_str() {
            out.push_str(&format!("\n### `{part}`\n\n{}\n", one_line(description)));
        } else {
            out.push_str(&format!("\n### `{part}`\n"));
        }
        rules(part, part_schema, out);
        out.push_str("\n| Field | Type | Description |\n|---|---|---|\n");
        fields(part, part_schema, out);
    }
}

fn fields(path: &str, schema: &Value, out: &mut String) {
    let required: Vec<&str> = schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, field) in properties {
            let field_path = format!("{path}.{name}");
            let mut description = field["description"].as_str().map(one_line).unwrap_or_default();
            if required.contains(&name.as_str()) {
                description = join(&["**Required.**", &description]);
            }
            description = join(&[&description, &constraints(field)]);
            out.push_str(&format!("| `{field_path}` | {} | {} |\n", type_of(field), escape(&description)));
            descend(&field_path, field, out);
        }
    }
}

/// Into objects, list items and map values; rows for the CEL rules of nested objects
/// are listed with their field.
fn descend(path: &str, field: &Value, out: &mut String) {
    if field["properties"].is_object() {
        fields(path, field, out);
    } else if field["items"]["properties"].is_object() {
        fields(&format!("{path}[]"), &field["items"], out);
    } else if field["additionalProperties"]["properties"].is_object() {
        fields(&format!("{path}{{}}"), &field["additionalProperties"], out);
    }
}

fn rules(path: &str, schema: &Value, out: &mut String) {
    let mut lines = Vec::new();
    collect_rules(path, schema, &mut lines);
    if lines.is_empty() {
        return;
    }
    out.push_str("\nRules checked at admission:\n\n");
    for line in lines {
        out.push_str(&format!("- {line}\n"));
    }
}

fn collect_rules(path: &str, schema: &Value, lines: &mut Vec<String>) {
    for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
        let message = rule["message"].as_str().or(rule["rule"].as_str()).unwrap_or_default();
        lines.push(format!("`{path}`: {}", one_line(message)));
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, field) in properties {
            let field_path = format!("{path}.{name}");
            collect_rules(&field_path, field, lines);
            collect_rules(&format!("{field_path}[]"), &field["items"], lines);
            collect_rules(&format!("{field_path}{{}}"), &field["additionalProperties"], lines);
        }
    }
}

fn type_of(field: &Value) -> String {
    if field["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return "integer or string".into();
    }
    match field["type"].as_str() {
        Some("array") => format!("list of {}", type_of(&field["items"])),
        Some("object") if field["additionalProperties"].is_object() => {
            format!("map of {}", type_of(&field["additionalProperties"]))
        }
        Some(kind) => match field["format"].as_str() {
            Some(format) => format!("{kind} ({format})"),
            None => kind.to_owned(),
        },
        None if field["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true) => "any".into(),
        None => "object".into(),
    }
}

fn constraints(field: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(values) = field["enum"].as_array() {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", plain(v))).collect();
        parts.push(format!("One of {}.", values.join(", ")));
    }
    if !field["default"].is_null() {
        parts.push(format!("Default `{}`.", plain(&field["default"])));
    }
    for (key, words) in [
        ("minimum", "Minimum"),
        ("maximum", "Maximum"),
        ("minLength", "Minimum length"),
        ("maxLength", "Maximum length"),
        ("minItems", "Minimum items"),
        ("maxItems", "Maximum items"),
    ] {
        if let Some(value) = field.get(key).filter(|v| !v.is_null()) {
            parts.push(format!("{words} {}.", plain(value)));
        }
    }
    if let Some(pattern) = field["pattern"].as_str() {
        parts.push(format!("Pattern `{pattern}`."));
    }
    parts.join(" ")
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) => {
            format!("{}", n.as_f64().unwrap_or_default() as i64)
        }
        other => other.to_string(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn join(parts: &[&str]) -> String {
    parts.iter().filter(|p| !p.is_empty()).copied().collect::<Vec<_>>().join(" ")
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_and_documented_field_is_in_the_reference() {
        let text = markdown();
        for kind in ["Cluster", "PDGroup", "PD", "TiKVGroup", "TiKV"] {
            assert!(text.contains(&format!("\n## {kind}\n")), "{kind} missing");
        }
        // A nested field, its doc comment, its default and a list item path.
        assert!(text.contains("| `spec.failover.afterDown` |"), "{text}");
        assert!(text.contains("| `spec.replicas` | integer (int32) |"), "{text}");
        assert!(text.contains("`status.conditions[].type`"), "{text}");
    }

    #[test]
    fn every_field_has_a_description() {
        let text = markdown();
        let undocumented: Vec<&str> = text.lines().filter(|line| line.ends_with("|  |")).collect();
        assert!(undocumented.is_empty(), "fields without a doc comment:\n{}", undocumented.join("\n"));
    }

    #[test]
    fn types_and_constraints_read_as_words() {
        let field = serde_json::json!({"type": "array", "items": {"type": "string"}, "maxItems": 3});
        assert_eq!(type_of(&field), "list of string");
        assert_eq!(constraints(&field), "Maximum items 3.");
        let field = serde_json::json!({"type": "string", "enum": ["Restart", "HotReload"], "default": "Restart"});
        assert_eq!(constraints(&field), "One of `Restart`, `HotReload`. Default `Restart`.");
        let field = serde_json::json!({"type": "object", "additionalProperties": {"type": "string"}});
        assert_eq!(type_of(&field), "map of string");
        assert_eq!(escape("a|b"), "a\\|b");
    }
}
