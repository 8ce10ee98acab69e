//! Patch kinds: JSON merge (RFC 7386), JSON patch (RFC 6902 with Kubernetes' `test`
//! quirk), strategic merge (built-in types, from a kept table of list merge keys) and
//! server-side apply (a merge of the applied configuration).

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::registry::GroupResource;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// RFC 7386 merge patch.
pub fn merge(doc: &mut Value, patch: &Value) {
    json_patch::merge(doc, patch);
}

/// RFC 6902 JSON patch, with kube-apiserver's behaviour for `test`: testing for `null`
/// at a path whose parent exists but whose key does not succeeds.
pub fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    for op in &ops.0 {
        if let json_patch::PatchOperation::Test(t) = op
            && t.value.is_null()
        {
            let path = t.path.as_str();
            if doc.pointer(path).is_none_or(Value::is_null) {
                let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
                if doc.pointer(parent).is_some() {
                    continue;
                }
                return Err(ApiError::unprocessable(format!("test operation does not apply: is nil for {path}")));
            }
        }
        json_patch::patch(doc, std::slice::from_ref(op)).map_err(|e| {
            let msg = match op {
                json_patch::PatchOperation::Test(t) => format!("testing value {} failed: test failed", t.path.as_str()),
                _ => e.to_string(),
            };
            ApiError::unprocessable(msg)
        })?;
    }
    Ok(())
}

/// How a list field is merged by a strategic merge patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListStrategy {
    /// Replaced whole (no patch strategy).
    Atomic,
    /// Merged element by element on this key.
    MergeKey(&'static str),
    /// A list of scalars merged as a set.
    MergePrimitive,
}

/// The patch strategies of list fields of the built-in types this server serves, from the
/// `patchStrategy`/`patchMergeKey` tags of the Kubernetes API types.
pub fn list_strategy(gr: &GroupResource, path: &[&str]) -> ListStrategy {
    use ListStrategy::*;
    let dotted = path.join(".");
    match dotted.as_str() {
        "metadata.finalizers" => return MergePrimitive,
        "metadata.ownerReferences" => return MergeKey("uid"),
        _ => {}
    }
    let container_lists = ["spec.containers", "spec.initContainers", "spec.ephemeralContainers"];
    match (gr.group.as_str(), gr.resource.as_str()) {
        ("", "pods") => {
            if container_lists.contains(&dotted.as_str()) {
                return MergeKey("name");
            }
            if path.len() == 3 && container_lists.contains(&path[..2].join(".").as_str()) {
                return match path[2] {
                    "ports" => MergeKey("containerPort"),
                    "env" => MergeKey("name"),
                    "volumeMounts" => MergeKey("mountPath"),
                    "volumeDevices" => MergeKey("devicePath"),
                    _ => Atomic,
                };
            }
            match dotted.as_str() {
                "spec.volumes" | "spec.imagePullSecrets" | "spec.schedulingGates" | "spec.resourceClaims" => {
                    MergeKey("name")
                }
                "spec.hostAliases" => MergeKey("ip"),
                "spec.topologySpreadConstraints" => MergeKey("topologyKey"),
                "status.conditions" => MergeKey("type"),
                "status.podIPs" | "status.hostIPs" => MergeKey("ip"),
                _ => Atomic,
            }
        }
        ("", "services") => match dotted.as_str() {
            "spec.ports" => MergeKey("port"),
            "status.conditions" => MergeKey("type"),
            _ => Atomic,
        },
        ("", "nodes") => match dotted.as_str() {
            "status.conditions" | "status.addresses" => MergeKey("type"),
            "spec.podCIDRs" => MergePrimitive,
            _ => Atomic,
        },
        ("", "persistentvolumeclaims") | ("", "namespaces") | ("policy", "poddisruptionbudgets") => {
            match dotted.as_str() {
                "status.conditions" => MergeKey("type"),
                _ => Atomic,
            }
        }
        _ => Atomic,
    }
}

/// Applies a strategic merge patch to `doc` (a built-in object).
pub fn strategic(doc: &mut Value, patch: &Value, gr: &GroupResource) -> Result<(), ApiError> {
    let Some(p) = patch.as_object() else {
        return Err(ApiError::bad_request("strategic merge patch must be a JSON object"));
    };
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let mut path = Vec::new();
    if let Value::Object(d) = doc {
        smp_map(d, p, gr, &mut path)?;
    }
    Ok(())
}

fn smp_map(
    doc: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    gr: &GroupResource,
    path: &mut Vec<String>,
) -> Result<(), ApiError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *doc = clean_map(patch);
            return Ok(());
        }
        Some("delete") => {
            doc.clear();
            return Ok(());
        }
        Some("merge") | None => {}
        Some(other) => return Err(ApiError::bad_request(format!("Unknown patch type: {other}"))),
    }
    let mut orders: Vec<(String, Vec<Value>)> = Vec::new();
    for (k, v) in patch {
        if k == "$patch" || k == "$retainKeys" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$setElementOrder/") {
            orders.push((field.to_string(), v.as_array().cloned().unwrap_or_default()));
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = v.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(list)) = doc.get_mut(field) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        match v {
            Value::Null => {
                doc.remove(k);
            }
            Value::Object(pm) => {
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    doc.remove(k);
                    continue;
                }
                path.push(k.clone());
                match doc.get_mut(k) {
                    Some(Value::Object(dm)) => smp_map(dm, pm, gr, path)?,
                    _ => {
                        let mut fresh = Map::new();
                        smp_map(&mut fresh, pm, gr, path)?;
                        doc.insert(k.clone(), Value::Object(fresh));
                    }
                }
                path.pop();
            }
            Value::Array(pl) => {
                path.push(k.clone());
                let strategy = list_strategy(gr, &path.iter().map(String::as_str).collect::<Vec<_>>());
                let merged = match (strategy, doc.remove(k)) {
                    (ListStrategy::MergeKey(key), Some(Value::Array(dl))) => merge_keyed(dl, pl, key, gr, path)?,
                    (ListStrategy::MergeKey(key), _) => merge_keyed(Vec::new(), pl, key, gr, path)?,
                    (ListStrategy::MergePrimitive, Some(Value::Array(mut dl))) => {
                        if pl.iter().any(|x| x.get("$patch").and_then(Value::as_str) == Some("replace")) {
                            pl.iter().filter(|x| !x.is_object()).cloned().collect()
                        } else {
                            for x in pl {
                                if !dl.contains(x) {
                                    dl.push(x.clone());
                                }
                            }
                            dl
                        }
                    }
                    _ => pl.iter().filter(|x| !is_directive_element(x)).map(clean).collect(),
                };
                doc.insert(k.clone(), Value::Array(merged));
                path.pop();
            }
            scalar => {
                doc.insert(k.clone(), scalar.clone());
            }
        }
    }
    if let Some(keep) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        doc.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (field, order) in orders {
        if let Some(Value::Array(list)) = doc.get_mut(&field) {
            path.push(field.clone());
            let strategy = list_strategy(gr, &path.iter().map(String::as_str).collect::<Vec<_>>());
            path.pop();
            reorder(list, &order, strategy);
        }
    }
    Ok(())
}

fn is_directive_element(x: &Value) -> bool {
    x.as_object().is_some_and(|m| m.len() == 1 && m.contains_key("$patch"))
}

fn merge_keyed(
    mut doc: Vec<Value>,
    patch: &[Value],
    key: &str,
    gr: &GroupResource,
    path: &mut Vec<String>,
) -> Result<Vec<Value>, ApiError> {
    if patch.iter().any(|x| is_directive_element(x) && x["$patch"] == "replace") {
        return Ok(patch.iter().filter(|x| !is_directive_element(x)).map(clean).collect());
    }
    for p in patch {
        let Some(pm) = p.as_object() else {
            if !doc.contains(p) {
                doc.push(p.clone());
            }
            continue;
        };
        if is_directive_element(p) {
            continue;
        }
        let Some(kv) = pm.get(key) else {
            return Err(ApiError::bad_request(format!("map: {p} does not contain declared merge key: {key}")));
        };
        let pos = doc.iter().position(|d| d.get(key) == Some(kv));
        if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
            doc.retain(|d| d.get(key) != Some(kv));
            continue;
        }
        match pos {
            Some(i) => {
                if let Value::Object(dm) = &mut doc[i] {
                    smp_map(dm, pm, gr, path)?;
                }
            }
            None => {
                let mut fresh = Map::new();
                smp_map(&mut fresh, pm, gr, path)?;
                doc.push(Value::Object(fresh));
            }
        }
    }
    Ok(doc)
}

fn reorder(list: &mut Vec<Value>, order: &[Value], strategy: ListStrategy) {
    let position = |item: &Value| -> Option<usize> {
        order.iter().position(|o| match strategy {
            ListStrategy::MergeKey(key) => o.get(key).is_some() && o.get(key) == item.get(key),
            _ => o == item,
        })
    };
    let mut ordered: Vec<(usize, Value)> = Vec::new();
    let mut rest = Vec::new();
    for item in list.drain(..) {
        match position(&item) {
            Some(i) => ordered.push((i, item)),
            None => rest.push(item),
        }
    }
    ordered.sort_by_key(|(i, _)| *i);
    list.extend(ordered.into_iter().map(|(_, v)| v));
    list.extend(rest);
}

fn clean_map(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), clean(v))).collect()
}

/// Drops patch directives from a value being inserted whole.
fn clean(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(clean_map(m)),
        Value::Array(a) => Value::Array(a.iter().filter(|x| !is_directive_element(x)).map(clean).collect()),
        other => other.clone(),
    }
}

/// Server-side apply, simplified: the applied configuration is merged into the live
/// object (maps by key, keyed lists of built-ins by merge key, other lists replaced), and
/// fields this manager applied last time but left out now are removed.
pub fn apply(live: &mut Value, applied: &Value, previous: Option<&Value>, gr: &GroupResource) {
    if let Some(prev) = previous {
        let mut path = Vec::new();
        remove_dropped(live, prev, applied, gr, &mut path);
    }
    let mut path = Vec::new();
    apply_merge(live, applied, gr, &mut path);
}

fn apply_merge(live: &mut Value, applied: &Value, gr: &GroupResource, path: &mut Vec<String>) {
    match (live, applied) {
        (Value::Object(lm), Value::Object(am)) => {
            for (k, v) in am {
                path.push(k.clone());
                match lm.get_mut(k) {
                    Some(existing) if v.is_object() || v.is_array() => apply_merge(existing, v, gr, path),
                    _ => {
                        lm.insert(k.clone(), v.clone());
                    }
                }
                path.pop();
            }
        }
        (Value::Array(ll), Value::Array(al)) => {
            let strategy = list_strategy(gr, &path.iter().map(String::as_str).collect::<Vec<_>>());
            match strategy {
                ListStrategy::MergeKey(key) => {
                    for a in al {
                        match ll.iter_mut().find(|l| l.get(key).is_some() && l.get(key) == a.get(key)) {
                            Some(l) => apply_merge(l, a, gr, path),
                            None => ll.push(a.clone()),
                        }
                    }
                }
                ListStrategy::MergePrimitive => {
                    for a in al {
                        if !ll.contains(a) {
                            ll.push(a.clone());
                        }
                    }
                }
                ListStrategy::Atomic => *ll = al.clone(),
            }
        }
        (live, applied) => *live = applied.clone(),
    }
}

fn remove_dropped(live: &mut Value, prev: &Value, now: &Value, gr: &GroupResource, path: &mut Vec<String>) {
    match (live, prev) {
        (Value::Object(lm), Value::Object(pm)) => {
            for (k, pv) in pm {
                path.push(k.clone());
                match now.get(k) {
                    None => {
                        lm.remove(k);
                    }
                    Some(nv) => {
                        if let Some(lv) = lm.get_mut(k) {
                            remove_dropped(lv, pv, nv, gr, path);
                        }
                    }
                }
                path.pop();
            }
        }
        (Value::Array(ll), Value::Array(pl)) => {
            let strategy = list_strategy(gr, &path.iter().map(String::as_str).collect::<Vec<_>>());
            let now_list = now.as_array().cloned().unwrap_or_default();
            match strategy {
                ListStrategy::MergeKey(key) => {
                    for p in pl {
                        let Some(kv) = p.get(key) else { continue };
                        match now_list.iter().find(|n| n.get(key) == Some(kv)) {
                            None => ll.retain(|l| l.get(key) != Some(kv)),
                            Some(n) => {
                                if let Some(l) = ll.iter_mut().find(|l| l.get(key) == Some(kv)) {
                                    remove_dropped(l, p, n, gr, path);
                                }
                            }
                        }
                    }
                }
                ListStrategy::MergePrimitive => {
                    for p in pl {
                        if !now_list.contains(p) {
                            ll.retain(|l| l != p);
                        }
                    }
                }
                ListStrategy::Atomic => {}
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> GroupResource {
        GroupResource::new("", "pods")
    }

    #[test]
    fn json_patch_test_for_null_on_a_missing_key_succeeds() {
        let mut doc = json!({"metadata": {"name": "a"}});
        let patch = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["x"]}
        ]);
        json_patch(&mut doc, &patch).unwrap();
        assert_eq!(doc["metadata"]["finalizers"], json!(["x"]));
    }

    #[test]
    fn json_patch_failed_test_is_unprocessable() {
        let mut doc = json!({"metadata": {"finalizers": ["x"]}});
        let patch = json!([{"op": "test", "path": "/metadata/finalizers/0", "value": "y"}]);
        let err = json_patch(&mut doc, &patch).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
        let missing_parent = json!([{"op": "test", "path": "/spec/x", "value": null}]);
        assert_eq!(json_patch(&mut doc, &missing_parent).unwrap_err().code, 422);
    }

    #[test]
    fn merge_patch_null_deletes() {
        let mut doc = json!({"a": {"b": 1, "c": 2}});
        merge(&mut doc, &json!({"a": {"b": null}}));
        assert_eq!(doc, json!({"a": {"c": 2}}));
    }

    #[test]
    fn strategic_merges_containers_and_env_by_name() {
        let mut doc = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch =
            json!({"spec": {"containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}]}});
        strategic(&mut doc, &patch, &pods()).unwrap();
        assert_eq!(doc["spec"]["containers"][0]["image"], "a:2");
        assert_eq!(
            doc["spec"]["containers"][0]["env"],
            json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}])
        );
        assert_eq!(doc["spec"]["containers"][1]["name"], "b");
    }

    #[test]
    fn strategic_delete_and_replace_directives() {
        let mut doc = json!({"spec": {"volumes": [{"name": "a"}, {"name": "b"}], "tolerations": [{"key": "t"}]},
                             "metadata": {"finalizers": ["f1"], "labels": {"x": "1", "y": "2"}}});
        let patch = json!({
            "spec": {"volumes": [{"name": "a", "$patch": "delete"}], "tolerations": [{"key": "u"}]},
            "metadata": {"finalizers": ["f2"], "labels": {"$patch": "replace", "z": "3"}}
        });
        strategic(&mut doc, &patch, &pods()).unwrap();
        assert_eq!(doc["spec"]["volumes"], json!([{"name": "b"}]));
        assert_eq!(doc["spec"]["tolerations"], json!([{"key": "u"}]), "tolerations have no merge key");
        assert_eq!(doc["metadata"]["finalizers"], json!(["f1", "f2"]));
        assert_eq!(doc["metadata"]["labels"], json!({"z": "3"}));
    }

    #[test]
    fn strategic_list_replace_and_primitive_delete_and_order() {
        let mut doc =
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "metadata": {"finalizers": ["x", "y"]}});
        let patch = json!({
            "spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "i"}]},
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}
        });
        strategic(&mut doc, &patch, &pods()).unwrap();
        assert_eq!(doc["spec"]["containers"], json!([{"name": "b"}, {"name": "a", "image": "i"}]));
        assert_eq!(doc["metadata"]["finalizers"], json!(["y"]));
        let replace = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}});
        strategic(&mut doc, &replace, &pods()).unwrap();
        assert_eq!(doc["spec"]["containers"], json!([{"name": "c"}]));
    }

    #[test]
    fn apply_removes_fields_the_manager_dropped() {
        let gr = GroupResource::new("", "configmaps");
        let mut live = json!({"data": {"a": "1", "b": "2", "other": "x"}});
        let prev = json!({"data": {"a": "1", "b": "2"}});
        let now = json!({"data": {"a": "3"}});
        apply(&mut live, &now, Some(&prev), &gr);
        assert_eq!(live, json!({"data": {"a": "3", "other": "x"}}));
    }
}
