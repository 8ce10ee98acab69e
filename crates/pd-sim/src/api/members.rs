//! Health, membership, leader, readiness and identity endpoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::error::{ApiError, ApiResult, message, ok, parse_u64};
use super::wire::{Header, Health, MembersResponse, member};
use super::{Ctx, query_has, query_pairs};
use crate::format::{rfc3339, unix_seconds};
use crate::model::member::MemberError;

pub async fn health(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    let list: Vec<Health> = c
        .members
        .in_etcd()
        .map(|m| Health { name: &m.name, member_id: m.member_id, client_urls: &m.client_urls, health: m.running })
        .collect();
    ok(&list)
}

pub async fn ping() -> StatusCode {
    StatusCode::OK
}

pub async fn status(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    let started = ctx.serving_member(&c).map(|m| unix_seconds(c.wall(m.started_at))).unwrap_or(0);
    ok(&serde_json::json!({
        "build_ts": "2026-08-01 10:00:00",
        "version": format!("v{}", c.pd_version),
        "git_hash": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
        "start_timestamp": started,
        "kernel_type": "Classic",
    }))
}

pub async fn version(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    ok(&serde_json::json!({"version": format!("v{}", c.pd_version), "build_time": "", "hash": "", "branch": ""}))
}

pub async fn members(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    let leader = c.members.leader_member().map(member);
    let etcd_leader = c.members.etcd_leader.and_then(|id| c.members.by_id(id)).map(member);
    ok(&MembersResponse {
        header: Header { cluster_id: c.cluster_id },
        members: c.members.in_etcd().map(member).collect(),
        leader,
        etcd_leader,
    })
}

pub async fn leader(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    ok(&c.members.leader_member().map(member))
}

fn member_error(err: MemberError) -> ApiError {
    match err {
        MemberError::NotFound(_) => ApiError::Json(StatusCode::NOT_FOUND, err.to_string()),
        _ => ApiError::internal(err.to_string()),
    }
}

pub async fn delete_by_name(State(ctx): State<Ctx>, Path(name): Path<String>) -> ApiResult {
    ctx.shared
        .mutate(|c| {
            let removed = c.members.remove(&name);
            c.reconcile_members();
            removed
        })
        .map_err(member_error)?;
    ctx.shared.sync_servers().await;
    message(&format!("removed, pd: {name}"))
}

pub async fn delete_by_id(State(ctx): State<Ctx>, Path(id): Path<String>) -> ApiResult {
    let id = parse_u64(&id).map_err(ApiError::bad_request)?;
    ctx.shared
        .mutate(|c| {
            let removed = c.members.remove_by_id(id);
            c.reconcile_members();
            removed
        })
        .map_err(member_error)?;
    ctx.shared.sync_servers().await;
    message(&format!("removed, pd: {id}"))
}

pub async fn set_priority(State(ctx): State<Ctx>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let input: serde_json::Value = serde_json::from_slice(&body).map_err(|e| ApiError::Input(e.to_string()))?;
    let priority = input
        .get("leader-priority")
        .and_then(|v| v.as_f64())
        .ok_or_else(|| ApiError::bad_request("bad format leader priority"))?;
    ctx.shared.mutate(|c| c.members.set_priority(&name, priority as i64)).map_err(member_error)?;
    message("success")
}

pub async fn resign(State(ctx): State<Ctx>) -> ApiResult {
    ctx.shared.mutate(|c| {
        let delay = c.pd_leader_change_delay();
        let now = c.now;
        c.members.resign(now, delay, &mut c.rng);
    });
    message("The resign command is submitted.")
}

pub async fn transfer(State(ctx): State<Ctx>, Path(name): Path<String>) -> ApiResult {
    ctx.shared
        .mutate(|c| {
            let delay = c.pd_leader_change_delay();
            let now = c.now;
            c.members.transfer(&name, now, delay)
        })
        .map_err(member_error)?;
    message("The transfer command is submitted.")
}

pub async fn cluster(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    ok(&serde_json::json!({"id": c.cluster_id, "max_peer_count": c.replication.max_replicas}))
}

pub async fn cluster_status(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    let mut body = serde_json::Map::new();
    if let Some(t) = c.bootstrap_time {
        body.insert("raft_bootstrap_time".into(), rfc3339(c.wall(t)).into());
    }
    body.insert("is_initialized".into(), c.bootstrapped.into());
    body.insert("replication_status".into(), "".into());
    ok(&body)
}

/// `GET /pd/api/v2/ready`: 200 once this member has loaded regions (or there are none
/// to load), else 500; `?verbose` adds the reasons.
pub async fn ready(State(ctx): State<Ctx>, RawQuery(query): RawQuery) -> axum::response::Response {
    let c = ctx.shared.lock();
    let Some(m) = ctx.serving_member(&c).filter(|m| m.running) else {
        return ApiError::Text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "[PD:server:ErrServerNotStarted]server not started".into(),
        )
        .into_response();
    };
    let loaded = c.now.saturating_duration_since(m.started_at) >= c.knobs.pd_region_load;
    let ready = loaded || !c.bootstrapped;
    let status = if ready { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
    if query_has(&query_pairs(query.as_deref()), "verbose") {
        (status, Json(serde_json::json!({"region_loaded": loaded, "is_bootstrapped": c.bootstrapped}))).into_response()
    } else {
        status.into_response()
    }
}
