//! Lists: selectors, resourceVersion semantics, and `limit`/`continue` pagination over a
//! consistent snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use super::{Key, Store};
use crate::convert::{to_served, to_served_shared};
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::selectors::{FieldSelector, LabelSelector};

/// List query parameters.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

impl ListOptions {
    pub fn labels(mut self, selector: &str) -> Self {
        self.label_selector = Some(selector.into());
        self
    }
    pub fn fields(mut self, selector: &str) -> Self {
        self.field_selector = Some(selector.into());
        self
    }
}

fn encode_continue(rev: u64, key: &Key) -> String {
    let start = format!("{}/{}\u{0}", key.namespace, key.name);
    let token = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(u64, Key)> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| bad(&e.to_string()))?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| bad(&e.to_string()))?;
    if v["v"] != "meta.k8s.io/v1" {
        return Err(bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"));
    }
    let rev = v["rv"].as_u64().ok_or_else(|| bad("incorrect encoded start resourceVersion"))?;
    let start = v["start"].as_str().unwrap_or_default().trim_end_matches('\u{0}');
    let (ns, name) = start.split_once('/').unwrap_or(("", start));
    Ok((rev, Key::new(ns, name)))
}

type Snapshot = BTreeMap<Key, Arc<Value>>;

pub(crate) fn parse_rv(rv: &str) -> ApiResult<u64> {
    rv.parse().map_err(|_| ApiError::bad_request(format!("Invalid value: \"{rv}\": invalid resource version")))
}

impl Store {
    /// Every object of a resource (in `ns`, or all namespaces) at the current revision,
    /// in key order, as `info`'s version serves them, shared with the store rather than
    /// copied (see [`to_served_shared`]). What an informer cache gives the simulated
    /// components, which read the whole resource on every change they wake for.
    pub fn list_shared(&self, info: &ResourceInfo, ns: Option<&str>) -> Vec<Arc<Value>> {
        let ns = if info.namespaced { ns.filter(|n| !n.is_empty()) } else { None };
        let st = self.lock();
        st.iter(&info.storage, ns).map(|(_, o)| to_served_shared(info, o)).collect()
    }

    /// Lists objects as `info`'s version serves them.
    pub fn list(&self, info: &ResourceInfo, ns: Option<&str>, opts: &ListOptions) -> ApiResult<Value> {
        let labels = LabelSelector::parse(opts.label_selector.as_deref().unwrap_or(""))?;
        let fields = FieldSelector::parse(opts.field_selector.as_deref().unwrap_or(""), info)?;
        let ns = if info.namespaced { ns.filter(|n| !n.is_empty()) } else { None };
        let st = self.lock();
        let (rev, snapshot, after): (u64, Option<Snapshot>, Option<Key>) = if let Some(token) =
            opts.continue_token.as_deref().filter(|t| !t.is_empty())
        {
            let (rev, after) = decode_continue(token)?;
            let snap = if rev == st.rev {
                None
            } else {
                Some(st.state_at(&info.storage, rev).map_err(|_| {
                        ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retry with the inconsistent list")
                    })?)
            };
            (rev, snap, Some(after))
        } else {
            match opts.resource_version.as_deref().filter(|r| !r.is_empty()) {
                None | Some("0") => (st.rev, None, None),
                Some(rv) => {
                    let n = parse_rv(rv)?;
                    if opts.resource_version_match.as_deref() == Some("Exact") {
                        if n > st.rev {
                            return Err(ApiError::timeout(
                                format!("Too large resource version: {n}, current: {}", st.rev),
                                1,
                            ));
                        }
                        (n, Some(st.state_at(&info.storage, n)?), None)
                    } else if n > st.rev {
                        return Err(ApiError::timeout(
                            format!("Too large resource version: {n}, current: {}", st.rev),
                            1,
                        ));
                    } else {
                        (st.rev, None, None)
                    }
                }
            }
        };
        let matches = |k: &Key, o: &Value| {
            ns.is_none_or(|n| k.namespace == n)
                && after.as_ref().is_none_or(|a| k > a)
                && labels.matches_object(o)
                && fields.matches(info, o)
        };
        let mut items = Vec::new();
        let mut last_key = None;
        let mut remaining = 0usize;
        let limit = opts.limit.filter(|l| *l > 0);
        let mut visit = |k: &Key, o: &Arc<Value>| {
            if !matches(k, o) {
                return;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                return;
            }
            items.push(to_served(info, o));
            last_key = Some(k.clone());
        };
        match &snapshot {
            Some(map) => map.iter().for_each(|(k, o)| visit(k, o)),
            None => st.iter(&info.storage, ns).for_each(|(k, o)| visit(k, o)),
        }
        drop(st);
        let mut metadata = json!({"resourceVersion": rev.to_string()});
        if remaining > 0
            && let Some(k) = &last_key
        {
            metadata["continue"] = json!(encode_continue(rev, k));
            if labels.is_empty() && fields.is_empty() {
                metadata["remainingItemCount"] = json!(remaining);
            }
        }
        Ok(json!({
            "kind": format!("{}List", info.kind),
            "apiVersion": info.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_lists_are_the_served_lists_sharing_the_stored_objects() {
        let store = Store::new(sim_clock::SimClock::new(1.0), 1000, 0);
        let c = store.client("test");
        let r = |group: &str, version: &str, plural: &str| super::super::ResourceRef::new(group, version, plural);
        c.create(&r("", "v1", "namespaces"), None, json!({"metadata": {"name": "ns"}})).unwrap();
        // Without apiVersion and kind, as a component's own writes often are.
        c.create(&r("", "v1", "configmaps"), Some("ns"), json!({"metadata": {"name": "a"}, "data": {"k": "v"}}))
            .unwrap();
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}});
        c.create(&r("", "v1", "configmaps"), Some("ns"), body).unwrap();
        let cms = store.resource("", "v1", "configmaps").unwrap();
        let shared = store.list_shared(&cms, Some("ns"));
        let listed = store.list(&cms, Some("ns"), &ListOptions::default()).unwrap();
        let shared_values: Vec<Value> = shared.iter().map(|o| Value::clone(o)).collect();
        assert_eq!(json!(shared_values), listed["items"]);
        assert_eq!(shared[0]["kind"], "ConfigMap");
        let st = store.lock();
        for o in &shared {
            let stored = st.get(&cms.storage, &Key::new("ns", crate::meta::name(o))).unwrap();
            assert!(Arc::ptr_eq(o, stored), "{o}");
        }
        drop(st);
        assert_eq!(store.list_shared(&cms, None).len(), 2);
        assert_eq!(*store.get_shared(&cms, Some("ns"), "a").unwrap(), store.get(&cms, Some("ns"), "a").unwrap());
        assert_eq!(store.get_shared(&cms, Some("ns"), "c").unwrap_err().code, 404);
    }

    #[test]
    fn continue_tokens_round_trip() {
        let k = Key::new("default", "a");
        let t = encode_continue(42, &k);
        assert_eq!(decode_continue(&t).unwrap(), (42, k));
        assert_eq!(decode_continue("garbage!").unwrap_err().code, 400);
    }
}
