//! A TiKV store's status server (port 20180 in real life): `/status`, `/ready`,
//! `/metrics` and `/config`. Each store gets its own listener (port 0 at its first
//! start, the same port again after a restart); it closes while the store is killed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::format::{go_duration, go_json};
use crate::model::Cluster;
use crate::model::store::Store;
use crate::shared::Shared;

#[derive(Clone)]
struct StatusCtx {
    shared: Arc<Shared>,
    /// The store this listener belongs to; 0 until its registration completes.
    store: Arc<AtomicU64>,
}

pub fn router(shared: Arc<Shared>, store: u64) -> Router {
    router_for(shared, Arc::new(AtomicU64::new(store)))
}

pub(crate) fn router_for(shared: Arc<Shared>, store: Arc<AtomicU64>) -> Router {
    Router::new()
        .route("/status", get(|| async { StatusCode::OK }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/config", get(config))
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .with_state(StatusCtx { shared, store })
}

fn with_store<T>(ctx: &StatusCtx, f: impl FnOnce(&Cluster, &Store) -> T) -> Option<T> {
    let id = ctx.store.load(Ordering::Acquire);
    let c = ctx.shared.lock();
    let store = c.stores.get(&id)?;
    Some(f(&c, store))
}

/// Connected to PD (a PD leader exists) and raft peers caught up after the start.
async fn ready(State(ctx): State<StatusCtx>, RawQuery(query): RawQuery) -> Response {
    let verbose = query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "verbose" || p.starts_with("verbose=")));
    let state = with_store(&ctx, |c, s| {
        let connected = s.running && c.members.leader.is_some();
        let caught_up = s.running && c.now.saturating_duration_since(s.start_time) >= c.knobs.tikv_catch_up;
        (connected, caught_up)
    });
    let (connected, caught_up) = state.unwrap_or((false, false));
    let status = if connected && caught_up { StatusCode::OK } else { StatusCode::INTERNAL_SERVER_ERROR };
    if verbose {
        let body = json!({"connected_to_pd": connected, "raft_peers_caught_up": caught_up});
        (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
    } else {
        status.into_response()
    }
}

async fn metrics(State(ctx): State<StatusCtx>) -> Response {
    let Some((leaders, regions)) = with_store(&ctx, |c, s| {
        let stats = c.store_stats().get(&s.id).copied().unwrap_or_default();
        (stats.leader_count, stats.region_count)
    }) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let body = format!(
        "# HELP tikv_raftstore_region_count Number of regions collected in region_collection_observer\n\
         # TYPE tikv_raftstore_region_count gauge\n\
         tikv_raftstore_region_count{{type=\"leader\"}} {leaders}\n\
         tikv_raftstore_region_count{{type=\"region\"}} {regions}\n"
    );
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// The applied config: what the process was started with, or a default rendering.
async fn config(State(ctx): State<StatusCtx>) -> Response {
    let Some(config) = with_store(&ctx, default_config) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], go_json(&config)).into_response()
}

fn default_config(c: &Cluster, s: &Store) -> serde_json::Value {
    if !s.config.is_null() {
        return s.config.clone();
    }
    let labels: serde_json::Map<String, serde_json::Value> =
        s.labels.iter().map(|l| (l.key.clone(), l.value.clone().into())).collect();
    let endpoints: Vec<String> = c.members.in_etcd().flat_map(|m| m.client_urls.clone()).collect();
    json!({
        "log-level": "info",
        "server": {
            "addr": "0.0.0.0:20160",
            "advertise-addr": s.address,
            "status-addr": "0.0.0.0:20180",
            "advertise-status-addr": s.status_address,
            "labels": labels,
            "graceful-shutdown-timeout": "20s",
        },
        "storage": {"data-dir": "/var/lib/tikv", "engine": "raft-kv"},
        "pd": {"endpoints": endpoints},
        "raftstore": {
            "pd-heartbeat-tick-interval": "1m",
            "pd-store-heartbeat-tick-interval": go_duration(c.knobs.store_heartbeat),
            "max-peer-down-duration": go_duration(c.knobs.max_peer_down_duration),
        },
        "security": {"ca-path": "", "cert-path": "", "key-path": "", "cert-allowed-cn": []},
    })
}
