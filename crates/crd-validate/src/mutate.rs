//! What kube-apiserver does to a custom resource before validating it: pruning of unknown
//! fields (`pruning.Prune`), dropping nulls that are not allowed and have no default
//! (`PruneNonNullableNullsWithoutDefaults`) and applying defaults (`defaulting.Default`).

use serde_json::Value;

use crate::schema::{Additional, Node};

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Removes every field the schema does not specify. `root` keeps `apiVersion`, `kind` and
/// `metadata` at the top, as `x-kubernetes-embedded-resource` does for embedded objects.
pub(crate) fn prune(value: &mut Value, node: Option<&Node>, root: bool) {
    if let Some(n) = node
        && n.preserve_unknown
    {
        skip_prune(value, n, root);
        return;
    }
    match value {
        Value::Object(map) => {
            let Some(n) = node else {
                map.clear();
                return;
            };
            let embedded = root || n.embedded;
            map.retain(|key, child| {
                if embedded && META_FIELDS.contains(&key.as_str()) {
                    true
                } else if let Some(prop) = n.properties.get(key) {
                    prune(child, Some(prop), false);
                    true
                } else if let Some(additional) = &n.additional {
                    prune(child, additional.schema(), false);
                    true
                } else {
                    false
                }
            });
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            for item in items {
                prune(item, item_node, false);
            }
        }
        _ => {}
    }
}

/// Below `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known ones are pruned.
fn skip_prune(value: &mut Value, node: &Node, root: bool) {
    match value {
        Value::Object(map) => {
            let embedded = root || node.embedded;
            for (key, child) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(prop) = node.properties.get(key) {
                    prune(child, Some(prop), false);
                } else if let Some(additional) = &node.additional {
                    prune(child, additional.schema(), false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_node) = node.items.as_deref() {
                for item in items {
                    skip_prune(item, item_node, false);
                }
            }
        }
        _ => {}
    }
}

fn field_schema<'n>(node: Option<&'n Node>, key: &str) -> Option<&'n Node> {
    let node = node?;
    node.properties.get(key).or_else(|| node.additional.as_ref().and_then(Additional::schema))
}

fn drops_null(node: Option<&Node>) -> bool {
    node.is_some_and(|n| !n.nullable && n.default.is_none())
}

/// Drops object fields that are `null` although the schema neither allows null nor has a
/// default for them (those with a default get it in [`default`]).
pub(crate) fn prune_nulls(value: &mut Value, node: Option<&Node>) {
    match value {
        Value::Object(map) => {
            map.retain(|key, child| !(child.is_null() && drops_null(field_schema(node, key))));
            for (key, child) in map.iter_mut() {
                prune_nulls(child, field_schema(node, key));
            }
        }
        Value::Array(items) => {
            let item_node = node.and_then(|n| n.items.as_deref());
            for item in items {
                prune_nulls(item, item_node);
            }
        }
        _ => {}
    }
}

fn non_nullable_null(value: &Value, node: &Node) -> bool {
    value.is_null() && !node.nullable
}

/// Applies schema defaults to absent fields (and to non-nullable nulls), top-down, so that
/// defaults inside defaulted objects, list items and map values apply as well.
pub(crate) fn default(value: &mut Value, node: &Node) {
    match value {
        Value::Object(map) => {
            for (key, prop) in &node.properties {
                let Some(default) = &prop.default else {
                    continue;
                };
                match map.get_mut(key) {
                    None => {
                        map.insert(key.clone(), default.clone());
                    }
                    Some(existing) if non_nullable_null(existing, prop) => *existing = default.clone(),
                    Some(_) => {}
                }
            }
            for (key, child) in map.iter_mut() {
                if let Some(prop) = node.properties.get(key) {
                    default(child, prop);
                } else if let Some(additional) = node.additional.as_ref().and_then(Additional::schema) {
                    if non_nullable_null(child, additional)
                        && let Some(d) = &additional.default
                    {
                        *child = d.clone();
                    }
                    default(child, additional);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_node) = node.items.as_deref() else {
                return;
            };
            for item in items {
                if non_nullable_null(item, item_node)
                    && let Some(d) = &item_node.default
                {
                    *item = d.clone();
                }
                default(item, item_node);
            }
        }
        _ => {}
    }
}
