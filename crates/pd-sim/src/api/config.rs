//! `/config`, `/config/replicate`, `/config/schedule`, `/config/cluster-version`,
//! `/config/placement-rule`.

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, message, ok};
use super::{Ctx, bootstrapped};
use crate::format::go_duration;
use crate::model::Cluster;
use crate::model::version::Version;

fn replication(c: &Cluster) -> Value {
    let r = &c.replication;
    json!({
        "max-replicas": r.max_replicas,
        "location-labels": r.location_labels.join(","),
        "strictly-match-label": r.strictly_match_label.to_string(),
        "enable-placement-rules": r.enable_placement_rules.to_string(),
        "enable-placement-rules-cache": "false",
        "isolation-level": r.isolation_level,
    })
}

fn schedule_json(c: &Cluster) -> Value {
    let k = &c.knobs;
    json!({
        "max-snapshot-count": 64,
        "max-pending-peer-count": 64,
        "max-merge-region-size": 54,
        "max-merge-region-keys": 540000,
        "split-merge-interval": "1h0m0s",
        "patrol-region-interval": "10ms",
        "max-store-down-time": go_duration(k.max_store_down_time),
        "max-store-preparing-time": go_duration(k.max_store_preparing_time),
        "leader-schedule-limit": k.leader_schedule_limit,
        "leader-schedule-policy": "count",
        "region-schedule-limit": k.region_schedule_limit,
        "replica-schedule-limit": k.replica_schedule_limit,
        "merge-schedule-limit": 8,
        "hot-region-schedule-limit": 4,
        "hot-region-cache-hits-threshold": 3,
        "store-limit": store_limits(c),
        "tolerant-size-ratio": 0,
        "low-space-ratio": k.low_space_ratio,
        "high-space-ratio": 0.7,
        "region-score-formula-version": "v2",
        "scheduler-max-waiting-operator": 5,
        "enable-remove-down-replica": "true",
        "enable-replace-offline-replica": "true",
        "enable-make-up-replica": "true",
        "enable-remove-extra-replica": "true",
        "enable-location-replacement": "true",
        "enable-debug-metrics": "false",
        "enable-joint-consensus": "true",
        "enable-tikv-split-region": "true",
        "schedulers-v2": c.schedulers.iter().map(|s| json!({"type": s.trim_end_matches("-scheduler"), "args": null, "disable": false, "args-payload": ""})).collect::<Vec<_>>(),
        "schedulers-payload": null,
        "hot-regions-write-interval": "10m0s",
        "hot-regions-reserved-days": 7,
        "enable-diagnostic": "true",
        "enable-witness": "false",
        "slow-store-evicting-affected-store-ratio-threshold": 0.3,
        "store-limit-version": "v1",
        "halt-scheduling": "false",
    })
}

fn store_limits(c: &Cluster) -> Value {
    let limits: serde_json::Map<String, Value> = c
        .stores
        .values()
        .filter(|s| !s.is_removed())
        .map(|s| {
            let (add, remove) = s.saved_limits.unwrap_or((s.add_peer.rate(), s.remove_peer.rate()));
            (s.id.to_string(), json!({"add-peer": add, "remove-peer": remove}))
        })
        .collect();
    Value::Object(limits)
}

/// `GET /config`, answered by the member called (pd-api.md 5.1).
pub async fn full(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    let m = ctx.serving_member(&c);
    let name = m.as_ref().map(|m| m.name.clone()).unwrap_or_default();
    let client_urls = m.as_ref().map(|m| m.client_urls.join(",")).unwrap_or_default();
    let peer_urls = m.as_ref().map(|m| m.peer_urls.join(",")).unwrap_or_default();
    let initial: Vec<String> = c.members.in_etcd().map(|m| format!("{}={}", m.name, m.peer_urls.join(","))).collect();
    ok(&json!({
        "client-urls": client_urls,
        "peer-urls": peer_urls,
        "advertise-client-urls": client_urls,
        "advertise-peer-urls": peer_urls,
        "name": name,
        "data-dir": format!("/var/lib/pd/{name}"),
        "force-new-cluster": false,
        "enable-grpc-gateway": true,
        "initial-cluster": initial.join(","),
        "initial-cluster-state": "new",
        "initial-cluster-token": "pd-cluster",
        "join": "",
        "lease": 5,
        "log": {"level": "info", "format": "text", "disable-timestamp": false, "file": {"filename": "", "max-size": 0, "max-days": 0, "max-backups": 0}, "development": false, "disable-caller": false, "disable-stacktrace": false, "disable-error-verbose": true, "sampling": null, "error-output-path": ""},
        "tso-save-interval": "3s",
        "tso-update-physical-interval": "50ms",
        "enable-local-tso": false,
        "metric": {"job": name, "address": "", "interval": "15s"},
        "schedule": schedule_json(&c),
        "replication": replication(&c),
        "pd-server": {"use-region-storage": "true", "max-gap-reset-ts": "24h0m0s", "key-type": "table", "runtime-services": "", "metric-storage": "", "dashboard-address": "auto", "trace-region-flow": "true", "flow-round-by-digit": 3, "min-resolved-ts-persistence-interval": "1s", "server-memory-limit": 0, "server-memory-limit-gc-trigger": 0.7, "enable-gogc-tuner": "false", "gc-tuner-threshold": 0.6},
        "cluster-version": c.cluster_version.to_string(),
        "labels": {},
        "quota-backend-bytes": "8GiB",
        "auto-compaction-mode": "periodic",
        "auto-compaction-retention-v2": "1h",
        "TickInterval": "500ms",
        "ElectionInterval": "3s",
        "PreVote": true,
        "max-request-bytes": 157286400,
        "security": {"cacert-path": "", "cert-path": "", "key-path": "", "cert-allowed-cn": null, "SSLCABytes": null, "SSLCertBytes": null, "SSLKEYBytes": null, "redact-info-log": false, "encryption": {"data-encryption-method": "plaintext", "data-key-rotation-period": "168h0m0s", "master-key": {"type": "plaintext", "key-id": "", "region": "", "endpoint": "", "path": ""}}},
        "label-property": {},
        "WarningMsgs": null,
        "DisableStrictReconfigCheck": false,
        "HeartbeatStreamBindInterval": "1m0s",
        "LeaderPriorityCheckInterval": "1m0s",
        "dashboard": {"tidb-cacert-path": "", "tidb-cert-path": "", "tidb-key-path": "", "public-path-prefix": "", "internal-proxy": false, "enable-telemetry": false, "enable-experimental": false},
        "replication-mode": {"replication-mode": "majority", "dr-auto-sync": {"label-key": "", "primary": "", "dr": "", "primary-replicas": 0, "dr-replicas": 0, "wait-store-timeout": "1m0s", "pause-region-split": "false"}},
        "keyspace": {"pre-alloc": null, "wait-region-split": true, "wait-region-split-timeout": "30s", "check-region-split-interval": "50ms"},
        "micro-service": {"enable-scheduling-fallback": "true"},
        "controller": {"degraded-mode-wait-duration": "0s", "ltb-max-wait-duration": "30s", "ltb-token-rpc-max-delay": "1s", "request-unit": {"read-base-cost": 0.125, "read-per-batch-base-cost": 0.5, "read-cost-per-byte": 0.0000152587890625, "write-base-cost": 1, "write-per-batch-base-cost": 1, "write-cost-per-byte": 0.0009765625, "read-cpu-ms-cost": 0.3333333333333333}, "enable-controller-trace-log": "false"},
    }))
}

pub async fn replicate(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    ok(&replication(&c))
}

pub async fn schedule(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    ok(&schedule_json(&c))
}

fn parse_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Input(e.to_string()))
}

fn bool_value(v: &Value) -> Option<bool> {
    v.as_bool().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// Applies replication keys; validation errors are 500 like PD's.
fn apply_replication(c: &mut Cluster, input: &serde_json::Map<String, Value>) -> Result<(), ApiError> {
    let mut next = c.replication.clone();
    for (key, value) in input {
        let bad = || ApiError::internal(format!("invalid value for {key}: {value}"));
        match key.as_str() {
            "max-replicas" => {
                let n = value.as_u64().filter(|n| *n > 0).ok_or_else(bad)?;
                next.max_replicas = n as usize;
            }
            "location-labels" => {
                let text = value.as_str().ok_or_else(bad)?;
                next.location_labels =
                    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
            }
            "strictly-match-label" => next.strictly_match_label = bool_value(value).ok_or_else(bad)?,
            "enable-placement-rules" => next.enable_placement_rules = bool_value(value).ok_or_else(bad)?,
            "isolation-level" => next.isolation_level = value.as_str().ok_or_else(bad)?.to_owned(),
            "enable-placement-rules-cache" => {}
            _ => return Err(ApiError::bad_request(format!("config item {key} not found"))),
        }
    }
    c.replication = next;
    c.poke();
    Ok(())
}

pub async fn set_replicate(State(ctx): State<Ctx>, body: Bytes) -> ApiResult {
    let input = parse_body(&body)?;
    ctx.shared.mutate(|c| apply_replication(c, &input))?;
    message("The config is updated.")
}

/// `POST /config` with a partial object: replication keys and the schedule keys the
/// simulation models (`schedule.` prefixes accepted).
pub async fn update(State(ctx): State<Ctx>, body: Bytes) -> ApiResult {
    let input = parse_body(&body)?;
    ctx.shared.mutate(|c| {
        let mut replication = serde_json::Map::new();
        let mut knobs = serde_json::Map::new();
        for (key, value) in &input {
            let key = key.trim_start_matches("replication.").trim_start_matches("schedule.");
            match key {
                "max-replicas"
                | "location-labels"
                | "strictly-match-label"
                | "isolation-level"
                | "enable-placement-rules" => {
                    replication.insert(key.to_owned(), value.clone());
                }
                "cluster-version" => {
                    let text = value
                        .as_str()
                        .ok_or_else(|| ApiError::bad_request(format!("input value {value} is illegal")))?;
                    c.cluster_version = Version::parse_pd(text).map_err(ApiError::bad_request)?;
                }
                "max-store-down-time"
                | "leader-schedule-limit"
                | "region-schedule-limit"
                | "replica-schedule-limit"
                | "max-store-preparing-time"
                | "low-space-ratio" => {
                    knobs.insert(key.to_owned(), value.clone());
                }
                _ => return Err(ApiError::bad_request(format!("config item {key} not found"))),
            }
        }
        apply_replication(c, &replication)?;
        let next = c.knobs.merge(&Value::Object(knobs)).map_err(ApiError::bad_request)?;
        c.set_knobs(next);
        Ok(())
    })?;
    message("The config is updated.")
}

/// `GET /config/cluster-version`: a JSON string such as `"8.5.0"`.
pub async fn cluster_version(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    ok(&c.cluster_version.to_string())
}

/// `POST /config/cluster-version` with `{"cluster-version": "8.5.0"}`: sets it as given
/// (PD checks nothing but the syntax); the next store registration or Tombstone
/// recomputes it from the stores.
pub async fn set_cluster_version(State(ctx): State<Ctx>, body: Bytes) -> ApiResult {
    let input: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&body).map_err(|e| ApiError::Input(e.to_string()))?;
    let text = input.get("cluster-version").ok_or_else(|| ApiError::Input("not set cluster-version".into()))?;
    let version = Version::parse_pd(text).map_err(ApiError::Internal)?;
    ctx.shared.mutate(|c| c.cluster_version = version);
    message("The cluster version is updated.")
}

/// With placement rules on, the default rule mirrors the replication config.
pub async fn placement_rules(State(ctx): State<Ctx>) -> ApiResult {
    let c = ctx.shared.lock();
    bootstrapped(&c)?;
    if !c.replication.enable_placement_rules {
        return Err(ApiError::Json(
            axum::http::StatusCode::PRECONDITION_FAILED,
            "[PD:placement:ErrPlacementDisabled]placement rules feature is disabled".into(),
        ));
    }
    let mut rule = json!({
        "group_id": "pd", "id": "default", "start_key": "", "end_key": "", "role": "voter",
        "is_witness": false, "count": c.replication.max_replicas,
    });
    if !c.replication.location_labels.is_empty()
        && let Some(obj) = rule.as_object_mut()
    {
        obj.insert("location_labels".into(), json!(c.replication.location_labels));
    }
    ok(&json!([{"group_id": "pd", "group_index": 0, "group_override": false, "rules": [rule]}]))
}
