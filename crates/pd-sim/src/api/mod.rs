//! PD's HTTP API. One router per address: a PD member's own address (answers as that
//! member, forwarding to the leader) or the cluster address (answers as the leader, or
//! as any running member for local-only paths, like a Kubernetes Service in front of PD).

mod config;
pub mod error;
mod etcd_gateway;
mod members;
pub mod pd_config;
mod regions;
mod schedulers;
mod stores;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use self::error::{ApiError, PAGE_NOT_FOUND};
use crate::model::Cluster;
use crate::model::member::Member;
use crate::shared::Shared;

#[derive(Clone)]
pub struct Ctx {
    pub shared: Arc<Shared>,
    /// The member whose address was called; `None` for the cluster address.
    pub member: Option<String>,
}

impl Ctx {
    /// The member answering a local-only path.
    fn serving_member(&self, c: &Cluster) -> Option<Member> {
        match &self.member {
            Some(name) => c.members.by_name(name).cloned(),
            None => {
                c.members.leader_member().or_else(|| c.members.list.iter().find(|m| m.running && m.in_etcd)).cloned()
            }
        }
    }
}

pub fn router(ctx: Ctx) -> Router {
    let v1 = Router::new()
        .route("/health", get(members::health))
        .route("/ping", get(members::ping))
        .route("/status", get(members::status))
        .route("/version", get(members::version))
        .route("/members", get(members::members))
        .route("/members/name/{name}", delete(members::delete_by_name).post(members::set_priority))
        .route("/members/id/{id}", delete(members::delete_by_id))
        .route("/leader", get(members::leader))
        .route("/leader/resign", post(members::resign))
        .route("/leader/transfer/{name}", post(members::transfer))
        .route("/cluster", get(members::cluster))
        .route("/cluster/status", get(members::cluster_status))
        .route("/stores", get(stores::list))
        .route("/stores/remove-tombstone", delete(stores::remove_tombstone))
        .route("/stores/progress", get(stores::progress))
        .route("/store/{id}", get(stores::get).delete(stores::delete))
        .route("/store/{id}/state", post(stores::set_state))
        .route("/store/{id}/label", post(stores::set_labels).delete(stores::delete_label))
        .route("/schedulers", get(schedulers::list).post(schedulers::create))
        .route("/schedulers/{name}", delete(schedulers::delete))
        .route("/scheduler-config/evict-leader-scheduler/list", get(schedulers::evict_config))
        .route("/scheduler-config/evict-leader-scheduler/config", post(schedulers::evict_config_update))
        .route("/scheduler-config/evict-leader-scheduler/delete/{id}", delete(schedulers::evict_delete_store))
        .route("/config", get(config::full).post(config::update))
        .route("/config/replicate", get(config::replicate).post(config::set_replicate))
        .route("/config/schedule", get(config::schedule))
        .route("/config/cluster-version", get(config::cluster_version).post(config::set_cluster_version))
        .route("/config/placement-rule", get(config::placement_rules))
        .route("/regions", get(regions::all))
        .route("/regions/count", get(regions::count))
        .route("/regions/store/{id}", get(regions::by_store))
        .route("/regions/check/{kind}", get(regions::check))
        .route("/stats/region", get(regions::stats));
    Router::new()
        .nest("/pd/api/v1", v1)
        .route("/pd/api/v2/ready", get(members::ready))
        .route("/v3/cluster/member/list", post(etcd_gateway::member_list))
        .route("/v3/cluster/member/update", post(etcd_gateway::member_update))
        .route("/health", get(members::health))
        .route("/ping", get(members::ping))
        .fallback(not_found)
        .layer(from_fn_with_state(ctx.clone(), gate))
        .with_state(ctx)
}

async fn not_found() -> Response {
    ApiError::Text(StatusCode::NOT_FOUND, PAGE_NOT_FOUND.to_owned()).into_response()
}

/// Paths PD always answers itself, never forwarding to the leader.
fn is_local(method: &Method, path: &str) -> bool {
    matches!(
        path,
        "/pd/api/v1/health" | "/pd/api/v1/ping" | "/pd/api/v1/status" | "/pd/api/v1/version" | "/health" | "/ping"
    ) || path.starts_with("/pd/api/v2/")
        // etcd's gateway: the member called proposes to raft itself.
        || path.starts_with("/v3/")
        || (path == "/pd/api/v1/config" && method == Method::GET)
}

/// Fault injection, then PD's redirect rule: non-local paths need a leader; without
/// one, wait up to `no-leader-wait` and answer 503 plain text.
async fn gate(State(ctx): State<Ctx>, request: Request, next: Next) -> Response {
    let shared = &ctx.shared;
    let decision = shared.faults().decide(request.method().as_str(), request.uri().path(), ctx.member.as_deref());
    if let Some(latency) = decision.latency {
        shared.clock.sleep(latency).await;
    }
    if let Some((status, body)) = decision.answer {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, body).into_response();
    }
    if is_local(request.method(), request.uri().path()) {
        return next.run(request).await;
    }
    let follower_may_handle =
        request.headers().get("PD-Allow-follower-handle").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
    let wait = shared.lock().knobs.no_leader_wait;
    let deadline = shared.clock.now() + wait;
    loop {
        let leader = {
            let c = shared.lock();
            c.members.leader.is_some() || (follower_may_handle && ctx.serving_member(&c).is_some_and(|m| m.running))
        };
        if leader {
            return next.run(request).await;
        }
        let now = shared.clock.now();
        if now >= deadline {
            return ApiError::no_leader().into_response();
        }
        shared.clock.sleep((deadline - now).min(Duration::from_millis(20))).await;
    }
}

/// Routes that need cluster state answer 500 until the first store bootstraps it.
fn bootstrapped(c: &Cluster) -> Result<(), ApiError> {
    if c.bootstrapped { Ok(()) } else { Err(ApiError::not_bootstrapped()) }
}

/// The pairs of a raw query string, percent-decoded.
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_has(pairs: &[(String, String)], key: &str) -> bool {
    pairs.iter().any(|(k, _)| k == key)
}

fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode() {
        let pairs = query_pairs(Some("state=0&state=1&force&x=a%2Cb"));
        assert_eq!(pairs.len(), 4);
        assert!(query_has(&pairs, "force"));
        assert_eq!(query_get(&pairs, "x"), Some("a,b"));
    }

    #[test]
    fn local_paths_are_the_documented_ones() {
        assert!(is_local(&Method::GET, "/pd/api/v1/health"));
        assert!(is_local(&Method::GET, "/pd/api/v1/config"));
        assert!(!is_local(&Method::POST, "/pd/api/v1/config"));
        assert!(is_local(&Method::GET, "/pd/api/v2/ready"));
        assert!(!is_local(&Method::GET, "/pd/api/v1/members"));
        assert!(!is_local(&Method::GET, "/pd/api/v1/stores"));
    }
}
