//! Region listings and checks.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::error::{ApiError, ApiResult, JSON_CONTENT_TYPE, ok, parse_u64};
use super::wire::{RegionsInfo, region};
use super::{Ctx, bootstrapped, query_get, query_has, query_pairs};
use crate::format::go_json;
use crate::model::Cluster;
use crate::model::region::Region;

/// Region lists are written as pre-encoded bytes upstream; the content type follows.
fn region_list(c: &Cluster, regions: Vec<&Region>) -> ApiResult {
    let infos: Vec<_> = regions.iter().map(|r| region(c, r)).collect();
    let body = go_json(&RegionsInfo { count: infos.len(), regions: Some(infos) });
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], body).into_response())
}

pub async fn all(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    region_list(&c, c.regions.values().collect())
}

pub async fn count(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    ok(&RegionsInfo { count: c.regions.len(), regions: None })
}

pub async fn by_store(State(ctx): State<Ctx>, Path(id): Path<String>, RawQuery(query): RawQuery) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    let id = parse_u64(&id).map_err(ApiError::bad_request)?;
    let pairs = query_pairs(query.as_deref());
    let kind = query_get(&pairs, "type").unwrap_or("all");
    let matches = |r: &Region| -> Result<bool, ApiError> {
        let Some(peer) = r.peer_on(id) else { return Ok(false) };
        Ok(match kind {
            "all" => true,
            "leader" => r.leader == Some(id),
            "follower" => r.leader != Some(id) && !peer.learner,
            "learner" => peer.learner,
            "witness" => false,
            "pending" => c.pending_peers(r).iter().any(|p| p.store_id == id),
            other => return Err(ApiError::bad_request(format!("unknown type: {other}"))),
        })
    };
    let mut list = Vec::new();
    for r in c.regions.values() {
        if matches(r)? {
            list.push(r);
        }
    }
    region_list(&c, list)
}

/// `/regions/check/{kind}`: down-peer, offline-peer, pending-peer, miss-peer,
/// extra-peer, learner-peer, empty-region.
pub async fn check(State(ctx): State<Ctx>, Path(kind): Path<String>) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    let max = c.replication.max_replicas;
    let offline = |s: u64| c.stores.get(&s).is_some_and(|st| st.is_removing());
    let filter: Box<dyn Fn(&Region) -> bool> = match kind.as_str() {
        "down-peer" => Box::new(|r| !c.down_peers(r).is_empty()),
        "offline-peer" => Box::new(move |r| r.peers.iter().any(|p| offline(p.store_id))),
        "pending-peer" => Box::new(|r| !c.pending_peers(r).is_empty()),
        "miss-peer" => Box::new(move |r| r.voter_count() < max),
        "extra-peer" => Box::new(move |r| r.peers.len() > max),
        "learner-peer" => Box::new(|r| r.peers.iter().any(|p| p.learner)),
        "empty-region" => Box::new(|r| r.size_mib == 0),
        _ => return Err(ApiError::Text(StatusCode::NOT_FOUND, super::error::PAGE_NOT_FOUND.into())),
    };
    region_list(&c, c.regions.values().filter(|r| filter(r)).collect())
}

/// `/stats/region` over the whole key space (key ranges are not modelled).
pub async fn stats(State(ctx): State<Ctx>, RawQuery(query): RawQuery) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    let count_only = query_has(&query_pairs(query.as_deref()), "count");
    let mut leader_count: BTreeMap<String, u64> = BTreeMap::new();
    let mut peer_count: BTreeMap<String, u64> = BTreeMap::new();
    let mut leader_size: BTreeMap<String, u64> = BTreeMap::new();
    let mut leader_keys: BTreeMap<String, u64> = BTreeMap::new();
    let mut peer_size: BTreeMap<String, u64> = BTreeMap::new();
    let mut peer_keys: BTreeMap<String, u64> = BTreeMap::new();
    for r in c.regions.values() {
        if let Some(l) = r.leader {
            *leader_count.entry(l.to_string()).or_default() += 1;
            *leader_size.entry(l.to_string()).or_default() += r.size_mib;
            *leader_keys.entry(l.to_string()).or_default() += r.keys;
        }
        for p in &r.peers {
            *peer_count.entry(p.store_id.to_string()).or_default() += 1;
            *peer_size.entry(p.store_id.to_string()).or_default() += r.size_mib;
            *peer_keys.entry(p.store_id.to_string()).or_default() += r.keys;
        }
    }
    let size: u64 = c.regions.values().map(|r| r.size_mib).sum();
    let keys: u64 = c.regions.values().map(|r| r.keys).sum();
    let empty = c.regions.values().filter(|r| r.size_mib == 0).count();
    if count_only {
        return ok(&serde_json::json!({"count": c.regions.len(), "empty_count": empty,
            "store_leader_count": leader_count, "store_peer_count": peer_count}));
    }
    ok(&serde_json::json!({
        "count": c.regions.len(), "empty_count": empty, "storage_size": size, "user_storage_size": size,
        "user_columnar_storage_size": 0, "storage_keys": keys,
        "store_leader_count": leader_count, "store_peer_count": peer_count,
        "store_leader_size": leader_size, "store_leader_keys": leader_keys,
        "store_peer_size": peer_size, "store_peer_keys": peer_keys,
        "store_write_rate_bytes": {}, "store_write_rate_keys": {},
    }))
}
