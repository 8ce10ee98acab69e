//! `/stores`, `/store/{id}` and their state changes.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;

use super::error::{ApiError, ApiResult, message, ok, store_id};
use super::wire::{StoresInfo, store_info};
use super::{Ctx, bootstrapped, query_get, query_has, query_pairs};
use crate::model::StoreError;
use crate::model::store::{Label, StoreState};

pub async fn list(State(ctx): State<Ctx>, RawQuery(query): RawQuery) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    let pairs = query_pairs(query.as_deref());
    let mut wanted = Vec::new();
    for (key, value) in &pairs {
        if key != "state" {
            continue;
        }
        let n: i64 = value
            .parse()
            .map_err(|_| ApiError::internal(format!("strconv.Atoi: parsing {value:?}: invalid syntax")))?;
        let state = match n {
            0 => StoreState::Up,
            1 => StoreState::Offline,
            2 => StoreState::Tombstone,
            n => return Err(ApiError::internal(format!("unknown StoreState: {n}"))),
        };
        wanted.push(state);
    }
    if wanted.is_empty() {
        wanted = vec![StoreState::Up, StoreState::Offline];
    }
    let stats = c.store_stats();
    let stores: Vec<_> = c
        .stores
        .values()
        .filter(|s| wanted.contains(&s.state()))
        .map(|s| store_info(&c, s, stats.get(&s.id).copied().unwrap_or_default()))
        .collect();
    ok(&StoresInfo { count: stores.len(), stores })
}

pub async fn get(State(ctx): State<Ctx>, Path(id): Path<String>) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    let id = store_id(&id)?;
    let store = c.stores.get(&id).ok_or(ApiError::store(StoreError::NotFound(id)))?;
    let stats = c.store_stats().get(&id).copied().unwrap_or_default();
    ok(&store_info(&c, store, stats))
}

/// `DELETE /store/{id}[?force]`: the key alone is enough for force.
pub async fn delete(State(ctx): State<Ctx>, Path(id): Path<String>, RawQuery(query): RawQuery) -> ApiResult {
    let force = query_has(&query_pairs(query.as_deref()), "force");
    ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        let id = store_id(&id)?;
        c.remove_store(id, force).map_err(ApiError::store)
    })?;
    message("The store is set as Offline.")
}

pub async fn set_state(State(ctx): State<Ctx>, Path(id): Path<String>, RawQuery(query): RawQuery) -> ApiResult {
    let pairs = query_pairs(query.as_deref());
    let state = query_get(&pairs, "state").unwrap_or("").to_owned();
    ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        let id = store_id(&id)?;
        match state.to_ascii_lowercase().as_str() {
            "up" => c.up_store(id).map_err(ApiError::store),
            "offline" => c.remove_store(id, false).map_err(ApiError::store),
            _ => Err(ApiError::bad_request(format!("invalid state {state}"))),
        }
    })?;
    message("The store's state is updated.")
}

/// `POST /store/{id}/label`: merged into the labels, or replacing them with `?force`.
pub async fn set_labels(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> ApiResult {
    let replace = query_has(&query_pairs(query.as_deref()), "force");
    let input: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&body).map_err(|e| ApiError::Input(e.to_string()))?;
    let mut labels = Vec::new();
    for (key, value) in input {
        let Some(value) = value.as_str() else {
            return Err(ApiError::Input(format!("invalid label value for key {key}")));
        };
        if key == "engine" {
            return Err(ApiError::Input("label key engine is reserved".into()));
        }
        if !valid_label(&key) || !valid_label(value) {
            return Err(ApiError::Input(format!("invalid label {key}={value}")));
        }
        labels.push(Label { key, value: value.to_owned() });
    }
    ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        let id = store_id(&id)?;
        let store = c.stores.get(&id).ok_or_else(|| ApiError::internal(invalid_store_id(id)))?;
        c.admits_version(id, &store.address, &store.version).map_err(|e| ApiError::internal(e.to_string()))?;
        let store = c.stores.get_mut(&id).ok_or_else(|| ApiError::internal(invalid_store_id(id)))?;
        if replace {
            store.labels.clear();
        }
        for label in labels {
            match store.labels.iter_mut().find(|l| l.key == label.key) {
                Some(existing) => existing.value = label.value,
                None => store.labels.push(label),
            }
        }
        c.poke();
        Ok::<_, ApiError>(())
    })?;
    message("The store's label is updated.")
}

/// PD's `UpdateStoreLabels` / `DeleteStoreLabel` error for an unknown store (a 500).
fn invalid_store_id(id: u64) -> String {
    format!("[PD:cluster:ErrInvalidStoreID]invalid store id {id}, not found")
}

/// `DELETE /store/{id}/label` with the key as a JSON string body.
pub async fn delete_label(State(ctx): State<Ctx>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let key: String = serde_json::from_slice(&body).map_err(|e| ApiError::Input(e.to_string()))?;
    if !valid_label(&key) {
        return Err(ApiError::Input(format!("invalid label key {key:?}")));
    }
    if key == "engine" {
        return Err(ApiError::Input("can't modify label key \"engine\"".into()));
    }
    let id = ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        let id = store_id(&id)?;
        let store = c.stores.get(&id).ok_or_else(|| ApiError::internal(invalid_store_id(id)))?;
        if !store.labels.iter().any(|l| l.key == key) {
            return Err(ApiError::internal(format!("the label key {key} does not exist")));
        }
        c.admits_version(id, &store.address, &store.version).map_err(|e| ApiError::internal(e.to_string()))?;
        let store = c.stores.get_mut(&id).ok_or_else(|| ApiError::internal(invalid_store_id(id)))?;
        store.labels.retain(|l| l.key != key);
        c.poke();
        Ok::<_, ApiError>(id)
    })?;
    message(&format!("The label {key} is deleted for store {id}."))
}

fn valid_label(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_./$".contains(ch))
}

pub async fn remove_tombstone(State(ctx): State<Ctx>) -> ApiResult {
    let failed = ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        Ok::<_, ApiError>(c.remove_tombstones())
    })?;
    if failed.is_empty() {
        message("Remove tombstone successfully.")
    } else {
        let ids: Vec<String> = failed.iter().map(|id| id.to_string()).collect();
        Err(ApiError::internal(format!("failed stores: {}", ids.join(", "))))
    }
}

/// `GET /stores/progress?id=N` or `?action=removing|preparing`.
pub async fn progress(State(ctx): State<Ctx>, RawQuery(query): RawQuery) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    let pairs = query_pairs(query.as_deref());
    let by_id = query_get(&pairs, "id");
    let action = query_get(&pairs, "action");
    if by_id.is_none() && action.is_none() {
        return Err(ApiError::bad_request("need query parameters"));
    }
    let stats = c.store_stats();
    let total_size: u64 = c.regions.values().map(|r| r.size_mib).sum();
    let up = c.stores.values().filter(|s| s.is_up()).count().max(1) as f64;
    let target = (total_size as f64 * c.replication.max_replicas as f64 / up * 0.9).max(1.0);
    let entries: Vec<serde_json::Value> = c
        .stores
        .values()
        .filter(|s| by_id.is_none_or(|id| id == s.id.to_string()))
        .filter_map(|s| {
            let size = stats.get(&s.id).map(|st| st.region_size).unwrap_or(0) as f64;
            let (name, progress, speed, left) = if let Some((since, initial)) = s.removing_from {
                let initial = (initial as f64).max(1.0);
                let done = (initial - size).max(0.0);
                let secs = c.now.saturating_duration_since(since).as_secs_f64().max(1.0);
                let speed = done / secs;
                let left = if speed > 0.0 { size / speed } else { f64::MAX };
                ("removing", done / initial, speed, left)
            } else if s.node_state == crate::model::store::NodeState::Preparing {
                let secs = c.now.saturating_duration_since(s.preparing_from).as_secs_f64().max(1.0);
                let speed = size / secs;
                let left = if speed > 0.0 { (target - size).max(0.0) / speed } else { f64::MAX };
                ("preparing", (size / target).min(1.0), speed, left)
            } else {
                return None;
            };
            if action.is_some_and(|a| a != name) {
                return None;
            }
            Some(serde_json::json!({
                "action": name, "store_id": s.id, "progress": progress,
                "current_speed": speed, "left_seconds": left.min(1e18),
            }))
        })
        .collect();
    match (by_id, entries.into_iter().next()) {
        (_, Some(entry)) => ok(&entry),
        (Some(id), None) => Err(ApiError::Json(
            StatusCode::NOT_FOUND,
            format!("[PD:progress:ErrProgressNotFound]no progress found for the given store ID: {id}"),
        )),
        (None, None) => Err(ApiError::Json(
            StatusCode::NOT_FOUND,
            format!("[PD:progress:ErrProgressNotFound]no progress found for the action: {}", action.unwrap_or("")),
        )),
    }
}
