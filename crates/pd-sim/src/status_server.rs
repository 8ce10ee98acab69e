//! A TiKV store's status server (port 20180 in real life): `/status`, `/ready`,
//! `/metrics`, `GET /config` and the online config change `POST /config`
//! ([`crate::tikv_config`]). Each store gets its own listener (port 0 at its first
//! start, the same port again after a restart); it closes while the store is killed.
//! Unknown paths answer 404 `path not found`, as TiKV's do.
//!
//! `POST /config[?persist=true|false]` (tikv/tikv:src/server/status_server/mod.rs):
//! 200 with an empty body once the change is applied; every error is 500 with a plain
//! text body: `failed to decode, error: <why>` for a body that is no flat JSON object,
//! `failed to update, error: "<why>"` for a refused key or value (nothing applied). With
//! `persist` (the default) TiKV then writes the changed keys into its config file; if
//! that fails — always, when the file is on a ConfigMap volume, which Kubernetes mounts
//! read-only — the answer is 500 `config changed, but failed to persist change due to
//! err: ...` although the change *is* applied. A `persist` that is not `true`/`false`
//! is 400. See [`ConfigFile`] for what a persisted change means after a restart.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::format::{go_duration, go_json};
use crate::model::Cluster;
use crate::model::store::{ConfigFile, Store};
use crate::shared::Shared;
use crate::tikv_config;

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
        .route("/config", get(config).post(update_config))
        .fallback(|| async { (StatusCode::NOT_FOUND, "path not found") })
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

/// A boolean query parameter as TiKV reads it (Rust's `bool::from_str`); `Err` is
/// the text of the 400 answer.
fn bool_param(query: Option<&str>, name: &str, default: bool) -> Result<bool, String> {
    let Some(value) = query.into_iter().flat_map(|q| q.split('&')).find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then_some(value)
    }) else {
        return Ok(default);
    };
    value.parse::<bool>().map_err(|e| e.to_string())
}

/// The applied config: what the process was started with plus its online changes, or a
/// default rendering. (`?full=true` shows the same: the simulator has no hidden keys.)
async fn config(State(ctx): State<StatusCtx>, RawQuery(query): RawQuery) -> Response {
    if let Err(refused) = bool_param(query.as_deref(), "full", false) {
        return text(StatusCode::BAD_REQUEST, refused);
    }
    let Some(config) = with_store(&ctx, default_config) else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], go_json(&config)).into_response()
}

/// What the status server says, as text.
fn text(status: StatusCode, body: String) -> Response {
    (status, body).into_response()
}

/// TiKV's `std::io::Error` for a write into a read-only filesystem, as `{:?}` prints it.
const READ_ONLY_FS: &str = r#"Os { code: 30, kind: ReadOnlyFilesystem, message: "Read-only file system" }"#;

/// `POST /config`: see the module docs.
async fn update_config(State(ctx): State<StatusCtx>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let persist = match bool_param(query.as_deref(), "persist", true) {
        Ok(persist) => persist,
        Err(refused) => return text(StatusCode::BAD_REQUEST, refused),
    };
    let input = match tikv_config::decode_body(&body) {
        Ok(input) => input,
        Err(why) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to decode, error: {why}")),
    };
    let changes = match tikv_config::to_changes(&input) {
        Ok(changes) => changes,
        Err(why) => {
            return text(StatusCode::INTERNAL_SERVER_ERROR, format!("failed to update, error: {:?}", why.to_string()));
        }
    };
    let id = ctx.store.load(Ordering::Acquire);
    let applied = ctx.shared.mutate(|c| {
        let rendered = c.stores.get(&id).map(|s| default_config(c, s))?;
        let store = c.stores.get_mut(&id)?;
        store.config = rendered;
        tikv_config::apply(&mut store.config, &changes);
        if !persist {
            return Some(Ok(()));
        }
        Some(match &store.config_file {
            ConfigFile::ReadOnly { .. } => Err(READ_ONLY_FS),
            ConfigFile::Writable { .. } => {
                if store.file_config.is_null() {
                    store.file_config = store.config.clone();
                } else {
                    tikv_config::apply(&mut store.file_config, &changes);
                }
                Ok(())
            }
            ConfigFile::LastConfig { .. } => Ok(()),
        })
    });
    match applied {
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Some(Ok(())) => StatusCode::OK.into_response(),
        Some(Err(io)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("config changed, but failed to persist change due to err: {io}"),
        ),
    }
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
