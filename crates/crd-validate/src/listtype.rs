//! `x-kubernetes-list-type: set|map` uniqueness (`listtype.ValidateListSetsAndMaps`).

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::errors::FieldError;
use crate::gofmt;
use crate::path::FieldPath;
use crate::schema::Node;

pub(crate) fn validate(node: &Node, value: &Value, path: &FieldPath, out: &mut Vec<FieldError>) {
    match value {
        Value::Object(map) => {
            if let Some(additional) = node.additional_schema() {
                for (key, child) in map {
                    validate(additional, child, &path.key(key), out);
                }
            }
            for (key, child) in map {
                if let Some(prop) = node.properties.get(key) {
                    validate(prop, child, &path.child(key), out);
                }
            }
        }
        Value::Array(items) => {
            match node.list_type.as_deref() {
                Some("set") => {
                    for i in duplicate_indices(items.iter().map(gofmt::canonical_json)) {
                        out.push(FieldError::duplicate(&path.index(i), items[i].clone()));
                    }
                }
                Some("map") => validate_map_list(node, items, path, out),
                _ => {}
            }
            if let Some(item_node) = node.items.as_deref() {
                for (i, item) in items.iter().enumerate() {
                    validate(item_node, item, &path.index(i), out);
                }
            }
        }
        _ => {}
    }
}

/// The index of the second occurrence of every repeated key.
fn duplicate_indices(keys: impl Iterator<Item = String>) -> Vec<usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut duplicates = Vec::new();
    for (i, key) in keys.enumerate() {
        let count = seen.entry(key).or_insert(0);
        *count += 1;
        if *count == 2 {
            duplicates.push(i);
        }
    }
    duplicates
}

fn validate_map_list(node: &Node, items: &[Value], path: &FieldPath, out: &mut Vec<FieldError>) {
    if let Some((i, item)) = items.iter().enumerate().find(|(_, x)| !x.is_null() && !x.is_object()) {
        out.push(FieldError::invalid(&path.index(i), item.clone(), "must be an object for an array of list-type map"));
        return;
    }
    if items.len() <= 1 {
        return;
    }
    // The key of each item: the key fields it has (a missing one counts as "unspecified").
    let keys: Vec<Map<String, Value>> = items
        .iter()
        .map(|item| {
            let mut key = Map::new();
            if let Some(obj) = item.as_object() {
                for field in &node.list_map_keys {
                    if let Some(v) = obj.get(field) {
                        key.insert(field.clone(), v.clone());
                    }
                }
            }
            key
        })
        .collect();
    let canonical = keys.iter().map(|k| gofmt::canonical_json(&Value::Object(k.clone())));
    for i in duplicate_indices(canonical) {
        out.push(FieldError::duplicate(&path.index(i), Value::Object(keys[i].clone())));
    }
}
