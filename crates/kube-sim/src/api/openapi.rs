//! A minimal OpenAPI v3 surface: the index, and per group-version documents with a path
//! per resource (whose write operations declare `fieldValidation`, which is how kubectl
//! learns it may leave validation to the server) and a schema per kind carrying
//! `x-kubernetes-group-version-kind`. Built-in schemas are permissive; custom resources
//! get their CRD's schema.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceInfo};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

pub fn index(reg: &Registry, revision: u64) -> Value {
    let mut paths = Map::new();
    for (group, versions) in reg.groups() {
        for v in versions {
            let p = gv_path(&group, &v);
            paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=R{revision}")}));
        }
    }
    json!({"paths": paths})
}

fn schema_name(r: &ResourceInfo) -> String {
    let group = if r.group.is_empty() { "core".to_string() } else { r.group.clone() };
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), r.version, r.kind)
}

fn gvk(r: &ResourceInfo) -> Value {
    json!({"group": r.group, "version": r.version, "kind": r.kind})
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(r: &ResourceInfo, action: &str, schema_ref: &str, write: bool) -> Value {
    let mut params = vec![param("pretty")];
    if write {
        params.extend([param("dryRun"), param("fieldManager"), param("fieldValidation")]);
    }
    let mut op = json!({
        "operationId": format!("{action}{}", r.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": schema_ref}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk(r),
    });
    if write {
        op["requestBody"] = json!({"content": {"*/*": {"schema": {"$ref": schema_ref}}}, "required": true});
    }
    op
}

fn object_meta_schema() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn kind_schema(r: &ResourceInfo) -> Value {
    let mut schema = match (&r.schema, r.custom) {
        (Some(s), true) => s.clone(),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    if let Value::Object(m) = &mut schema {
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(p) = props {
            p.insert("apiVersion".into(), json!({"type": "string"}));
            p.insert("kind".into(), json!({"type": "string"}));
            p.insert(
                "metadata".into(),
                json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]}),
            );
        }
        m.insert("x-kubernetes-group-version-kind".into(), json!([gvk(r)]));
    }
    schema
}

pub fn group_version(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources = reg.in_group_version(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".into(), object_meta_schema());
    for r in &resources {
        let name = schema_name(r);
        let sref = format!("#/components/schemas/{name}");
        let base = format!("/{}", gv_path(group, version));
        let collection = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        paths.insert(
            collection.clone(),
            json!({"get": operation(r, "list", &sref, false), "post": operation(r, "post", &sref, true)}),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(r, "get", &sref, false),
                "put": operation(r, "put", &sref, true),
                "patch": operation(r, "patch", &sref, true),
                "delete": operation(r, "delete", &sref, false),
            }),
        );
        if r.status_subresource {
            paths.insert(
                format!("{collection}/{{name}}/status"),
                json!({"get": operation(r, "get", &sref, false), "put": operation(r, "put", &sref, true), "patch": operation(r, "patch", &sref, true)}),
            );
        }
        schemas.insert(name, kind_schema(r));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas}
    }))
}
