//! `/schedulers` and the evict-leader scheduler's config (pd-api.md section 4).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand::seq::SliceRandom;

use super::error::{ApiError, ApiResult, PAGE_NOT_FOUND, message, ok, parse_u64};
use super::{Ctx, bootstrapped};
use crate::format::go_json;
use crate::model::{Cluster, DEFAULT_SCHEDULERS, EVICT_LEADER, EvictLeader, StoreError};

const DEFAULT_BATCH: usize = 3;

/// Names in random order, as PD's map iteration gives them.
pub async fn list(State(ctx): State<Ctx>) -> ApiResult {
    let names = ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        let mut names: Vec<String> = c.schedulers.iter().cloned().collect();
        if c.evict_leader.is_some() {
            names.push(EVICT_LEADER.to_owned());
        }
        names.shuffle(&mut c.rng);
        Ok::<_, ApiError>(names)
    })?;
    ok(&names)
}

fn read_body(body: &Bytes) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Input(e.to_string()))
}

fn store_id_field(input: &serde_json::Map<String, serde_json::Value>) -> Result<u64, ApiError> {
    let value = input.get("store_id").ok_or_else(|| ApiError::bad_request("missing store id"))?;
    value
        .as_f64()
        .filter(|f| *f >= 0.0 && f.fract() == 0.0)
        .map(|f| f as u64)
        .ok_or_else(|| ApiError::bad_request("please input a right store id"))
}

/// Adds a store to evict-leader. `Ok(true)` when the scheduler was created.
fn evict_add(c: &mut Cluster, store: u64) -> Result<bool, ApiError> {
    let exists = c.evict_leader.is_some();
    if !c.stores.contains_key(&store) {
        let text = StoreError::NotFound(store).to_string();
        return Err(if exists { ApiError::internal(text) } else { ApiError::bad_request(text) });
    }
    let evict = c.evict_leader.get_or_insert_with(|| EvictLeader { stores: Default::default(), batch: DEFAULT_BATCH });
    evict.stores.insert(store);
    c.poke();
    Ok(!exists)
}

pub async fn create(State(ctx): State<Ctx>, body: Bytes) -> ApiResult {
    let input = read_body(&body)?;
    let name =
        input.get("name").and_then(|v| v.as_str()).ok_or_else(|| ApiError::bad_request("missing scheduler name"))?;
    let name = name.to_owned();
    let created = ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        if name == EVICT_LEADER {
            let store = store_id_field(&input)?;
            // With the scheduler in place PD posts to its config handler and answers 500
            // with that answer's whole body as the message (server/handler.go
            // `RedirectSchedulerUpdate`, apiutil `checkResponse`).
            return evict_add(c, store).map_err(|e| match e {
                ApiError::Json(StatusCode::INTERNAL_SERVER_ERROR, msg) => ApiError::internal(go_json(&msg)),
                other => other,
            });
        }
        if !DEFAULT_SCHEDULERS.contains(&name.as_str()) {
            return Err(ApiError::bad_request("unknown scheduler"));
        }
        if !c.schedulers.insert(name.clone()) {
            return Err(ApiError::bad_request("[PD:scheduler:ErrSchedulerExisted]scheduler existed"));
        }
        c.poke();
        Ok(true)
    })?;
    message(if created { "The scheduler is created." } else { "The scheduler has been applied to the store." })
}

/// Removes one store from evict-leader; `Ok(true)` when it was the last one.
fn evict_remove(c: &mut Cluster, store: u64) -> Result<bool, ApiError> {
    let not_exist = || {
        ApiError::Json(
            StatusCode::NOT_FOUND,
            "[PD:scheduler:ErrScheduleConfigNotExist]the config does not exist".into(),
        )
    };
    let evict = c.evict_leader.as_mut().ok_or_else(not_exist)?;
    if !evict.stores.remove(&store) {
        return Err(not_exist());
    }
    let last = evict.stores.is_empty();
    if last {
        c.evict_leader = None;
    }
    c.poke();
    Ok(last)
}

/// `DELETE /schedulers/{name}`: `evict-leader-scheduler-<id>` removes one store and
/// always answers `null` with the inner status; a bare name removes the scheduler.
pub async fn delete(State(ctx): State<Ctx>, Path(name): Path<String>) -> ApiResult {
    ctx.shared.mutate(|c| {
        bootstrapped(c)?;
        if let Some(id) = name.strip_prefix("evict-leader-scheduler-") {
            let status = match parse_u64(id) {
                Err(_) => StatusCode::BAD_REQUEST,
                Ok(id) => match evict_remove(c, id) {
                    Ok(_) => StatusCode::OK,
                    Err(_) => StatusCode::NOT_FOUND,
                },
            };
            return Err(ApiError::Null(status));
        }
        let not_found =
            || ApiError::Json(StatusCode::NOT_FOUND, "[PD:scheduler:ErrSchedulerNotFound]scheduler not found".into());
        if name == EVICT_LEADER {
            c.evict_leader.take().ok_or_else(not_found)?;
        } else if !c.schedulers.remove(&name) {
            return Err(not_found());
        }
        c.poke();
        Ok(())
    })?;
    message("The scheduler is removed.")
}

pub async fn evict_config(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    let Some(evict) = c.evict_leader.as_ref() else {
        return Err(ApiError::Text(StatusCode::NOT_FOUND, PAGE_NOT_FOUND.into()));
    };
    let ranges: serde_json::Map<String, serde_json::Value> =
        evict.stores.iter().map(|id| (id.to_string(), serde_json::json!([{"start-key": "", "end-key": ""}]))).collect();
    ok(&serde_json::json!({"store-id-ranges": ranges, "batch": evict.batch}))
}

pub async fn evict_config_update(State(ctx): State<Ctx>, body: Bytes) -> ApiResult {
    let input = read_body(&body)?;
    ctx.shared.mutate(|c| {
        if c.evict_leader.is_none() {
            return Err(ApiError::Text(StatusCode::NOT_FOUND, PAGE_NOT_FOUND.into()));
        }
        if let Some(batch) = input.get("batch") {
            let batch = batch
                .as_f64()
                .filter(|b| b.fract() == 0.0 && (1.0..=100.0).contains(b))
                .ok_or_else(|| ApiError::bad_request("batch must be an integer in [1, 100]"))?;
            if let Some(evict) = c.evict_leader.as_mut() {
                evict.batch = batch as usize;
            }
        }
        if input.contains_key("store_id") {
            let store = store_id_field(&input)?;
            evict_add(c, store)?;
        }
        Ok(())
    })?;
    message("The scheduler has been applied to the store.")
}

pub async fn evict_delete_store(State(ctx): State<Ctx>, Path(id): Path<String>) -> ApiResult {
    let id = parse_u64(&id).map_err(ApiError::bad_request)?;
    let last = ctx.shared.mutate(|c| {
        if c.evict_leader.is_none() {
            return Err(ApiError::Text(StatusCode::NOT_FOUND, PAGE_NOT_FOUND.into()));
        }
        evict_remove(c, id)
    })?;
    if last { message("The last store has been deleted") } else { ok(&serde_json::Value::Null) }
}
