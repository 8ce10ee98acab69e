//! etcd's gRPC gateway, which PD's embedded etcd serves on every client URL
//! (`enable-grpc-gateway`, on by default in PD's config): JSON over HTTP for etcd's v3
//! API, answered by the member called (a membership change is a raft proposal, so it
//! needs a quorum, not PD's leader). Only the cluster service's member calls are here:
//! `POST /v3/cluster/member/list` and `POST /v3/cluster/member/update`.
//!
//! Wire format (grpc-gateway v1 with `OrigName`): the proto's field names (`ID`,
//! `peerURLs`, `clientURLs`, `cluster_id`, ...), 64-bit integers as JSON strings (a
//! number is accepted on input), empty fields left out. Errors are
//! `{"error": m, "code": <gRPC code>, "message": m}` with the gateway's HTTP status for
//! that code (NotFound 404, FailedPrecondition and InvalidArgument 400, Unavailable 503).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::Ctx;
use crate::model::Cluster;
use crate::model::member::{Member, MemberError};

/// gRPC status codes the member calls answer with.
const INVALID_ARGUMENT: u16 = 3;
const NOT_FOUND: u16 = 5;
const FAILED_PRECONDITION: u16 = 9;
const UNAVAILABLE: u16 = 14;

/// A gateway error: the HTTP status and the gRPC status behind it.
fn error(err: &MemberError) -> Response {
    let (status, code) = match err {
        MemberError::IdNotFound(_) | MemberError::NotFound(_) => (StatusCode::NOT_FOUND, NOT_FOUND),
        MemberError::PeerUrlsExist => (StatusCode::BAD_REQUEST, FAILED_PRECONDITION),
        MemberError::BadUrls => (StatusCode::BAD_REQUEST, INVALID_ARGUMENT),
        _ => (StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE),
    };
    let message = err.to_string();
    (status, Json(json!({"error": message, "code": code, "message": message}))).into_response()
}

fn bad_body(message: String) -> Response {
    let body = json!({"error": message, "code": INVALID_ARGUMENT, "message": message});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

#[derive(Serialize)]
struct GatewayMember<'a> {
    #[serde(rename = "ID")]
    id: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(rename = "peerURLs", skip_serializing_if = "<[String]>::is_empty")]
    peer_urls: &'a [String],
    #[serde(rename = "clientURLs", skip_serializing_if = "<[String]>::is_empty")]
    client_urls: &'a [String],
}

fn gateway_member(m: &Member) -> GatewayMember<'_> {
    // A member that never ran has not published its name and client URLs.
    let (name, client_urls): (&str, &[String]) = if m.started { (&m.name, &m.client_urls) } else { ("", &[]) };
    GatewayMember { id: m.member_id.to_string(), name, peer_urls: &m.peer_urls, client_urls }
}

/// etcd's response header. Its cluster ID is etcd's, not PD's (PD keeps its own in a key).
fn header(ctx: &Ctx, c: &Cluster) -> Value {
    let member = ctx.serving_member(c).map(|m| m.member_id).unwrap_or_default();
    json!({
        "cluster_id": (c.cluster_id ^ 0x5eed_e7cd).to_string(),
        "member_id": member.to_string(),
        "raft_term": "2",
    })
}

fn members_body(ctx: &Ctx, c: &Cluster) -> Value {
    let members: Vec<GatewayMember<'_>> = c.members.in_etcd().map(gateway_member).collect();
    json!({"header": header(ctx, c), "members": members})
}

/// `POST /v3/cluster/member/list`.
pub async fn member_list(State(ctx): State<Ctx>) -> Response {
    let c = ctx.shared.lock();
    if !c.members.has_quorum() {
        return error(&MemberError::NoQuorum);
    }
    Json(members_body(&ctx, &c)).into_response()
}

/// `POST /v3/cluster/member/update` with `{"ID": "<id>", "peerURLs": [...]}`.
pub async fn member_update(State(ctx): State<Ctx>, body: Bytes) -> Response {
    let input: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_body(format!("invalid character in request body: {e}")),
    };
    let id = match input.get("ID") {
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(Value::Number(n)) => n.as_u64(),
        _ => Some(0),
    };
    let Some(id) = id else { return bad_body("bad ID: not a uint64".into()) };
    let urls: Vec<String> = input
        .get("peerURLs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|u| u.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if let Err(err) = ctx.shared.mutate(|c| c.members.update_peer_urls(id, urls)) {
        return error(&err);
    }
    let c = ctx.shared.lock();
    Json(members_body(&ctx, &c)).into_response()
}
