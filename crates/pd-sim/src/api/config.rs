//! `/config`, `/config/replicate`, `/config/schedule`, `/config/cluster-version`,
//! `/config/placement-rule`. What `POST /config` accepts is in [`super::pd_config`];
//! what it changes, the simulation acts on where it models it (schedule limits,
//! store-down and preparing times, low-space ratio, default and per-store limits,
//! replication, cluster version) and otherwise keeps for `GET /config` to show
//! (`Cluster::pd_config`).

use axum::body::Bytes;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::error::{ApiError, ApiResult, NOT_BOOTSTRAPPED, message, ok};
use super::pd_config::{self as pc, Ty};
use super::{Ctx, bootstrapped};
use crate::format::go_duration;
use crate::model::Cluster;
use crate::model::version::Version;

/// `GET /config` shows these only when set (Go's `omitempty`).
const OMIT_EMPTY: &[(&str, &str)] = &[
    ("schedule", "store-balance-rate"),
    ("schedule", "disable-raft-learner"),
    ("schedule", "disable-remove-down-replica"),
    ("schedule", "disable-replace-offline-replica"),
    ("schedule", "disable-make-up-replica"),
    ("schedule", "disable-remove-extra-replica"),
    ("schedule", "disable-location-replacement"),
    ("schedule", "max-movable-hot-peer-size"),
    ("schedule", "slow-store-evicting-affected-store-ratio-threshold"),
    ("schedule", "store-limit-version"),
    ("schedule", "halt-scheduling"),
];

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty() || s == "false",
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// The items `POST /config` stored under `section`, over the section's rendering.
fn with_stored(c: &Cluster, section: &str, mut value: Value) -> Value {
    let prefix = format!("{section}.");
    for (path, v) in c.pd_config.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
        pc::set_path(&mut value, &path[prefix.len()..], v.clone());
    }
    for (_, key) in OMIT_EMPTY.iter().filter(|(s, _)| *s == section) {
        if value.get(key).is_some_and(is_empty_value)
            && let Some(obj) = value.as_object_mut()
        {
            obj.remove(*key);
        }
    }
    value
}

fn replication(c: &Cluster) -> Value {
    let r = &c.replication;
    let modelled = json!({
        "max-replicas": r.max_replicas,
        "location-labels": r.location_labels.join(","),
        "strictly-match-label": r.strictly_match_label.to_string(),
        "enable-placement-rules": r.enable_placement_rules.to_string(),
        "enable-placement-rules-cache": "false",
        "isolation-level": r.isolation_level,
    });
    with_stored(c, "replication", modelled)
}

fn schedule_json(c: &Cluster) -> Value {
    let k = &c.knobs;
    let modelled = json!({
        "max-snapshot-count": 64,
        "max-pending-peer-count": 64,
        "max-merge-region-size": 54,
        "max-merge-region-keys": 540000,
        "split-merge-interval": "1h0m0s",
        "switch-witness-interval": "1h0m0s",
        "enable-one-way-merge": "false",
        "enable-cross-table-merge": "true",
        "patrol-region-interval": "10ms",
        "max-store-down-time": go_duration(k.max_store_down_time),
        "max-store-preparing-time": go_duration(k.max_store_preparing_time),
        "leader-schedule-limit": k.leader_schedule_limit,
        "leader-schedule-policy": "count",
        "region-schedule-limit": k.region_schedule_limit,
        "witness-schedule-limit": 4,
        "replica-schedule-limit": k.replica_schedule_limit,
        "merge-schedule-limit": 8,
        "hot-region-schedule-limit": 4,
        "affinity-schedule-limit": 0,
        "split-scatter-schedule-limit": 4,
        "hot-region-cache-hits-threshold": 3,
        "default-store-limit": {"add-peer": k.store_limit_add_peer, "remove-peer": k.store_limit_remove_peer},
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
        "enable-heartbeat-breakdown-metrics": "true",
        "enable-heartbeat-concurrent-runner": "true",
        "schedulers-v2": c.schedulers.iter().map(|s| json!({"type": s.trim_end_matches("-scheduler"), "args": null, "disable": false, "args-payload": ""})).collect::<Vec<_>>(),
        "hot-regions-write-interval": "10m0s",
        "hot-regions-reserved-days": 7,
        "max-movable-hot-peer-size": 512,
        "enable-diagnostic": "true",
        "enable-witness": "false",
        "slow-store-evicting-affected-store-ratio-threshold": 0.3,
        "store-limit-version": "v1",
        "halt-scheduling": "false",
        "patrol-region-worker-count": 1,
        "max-affinity-merge-region-size": 0,
    });
    with_stored(c, "schedule", modelled)
}

fn log_json(c: &Cluster) -> Value {
    let log = json!({"level": "info", "format": "text", "disable-timestamp": false, "file": {"filename": "", "max-size": 0, "max-days": 0, "max-backups": 0}, "development": false, "disable-caller": false, "disable-stacktrace": false, "disable-error-verbose": true, "sampling": null, "error-output-path": ""});
    with_stored(c, "log", log)
}

fn pd_server_json(c: &Cluster) -> Value {
    let pd = json!({"use-region-storage": "true", "max-gap-reset-ts": "24h0m0s", "key-type": "table", "runtime-services": "", "metric-storage": "", "dashboard-address": "auto", "flow-round-by-digit": 3, "min-resolved-ts-persistence-interval": "1s", "server-memory-limit": 0, "server-memory-limit-gc-trigger": 0.7, "enable-gogc-tuner": "false", "gc-tuner-threshold": 0.6, "block-safe-point-v1": "false"});
    with_stored(c, "pd-server", pd)
}

fn replication_mode_json(c: &Cluster) -> Value {
    let mode = json!({"replication-mode": "majority", "dr-auto-sync": {"label-key": "", "primary": "", "dr": "", "primary-replicas": 0, "dr-replicas": 0, "wait-store-timeout": "1m0s", "wait-recover-timeout": "0s", "pause-region-split": "false"}});
    with_stored(c, "replication-mode", mode)
}

fn keyspace_json(c: &Cluster) -> Value {
    let keyspace = json!({"pre-alloc": null, "wait-region-split": true, "wait-region-split-timeout": "30s", "check-region-split-interval": "50ms", "meta-service-groups": null});
    with_stored(c, "keyspace", keyspace)
}

fn micro_service_json(c: &Cluster) -> Value {
    let ms = json!({"enable-scheduling-fallback": "true", "enable-tso-dynamic-switching": "false", "enable-resource-manager-fallback": "true"});
    with_stored(c, "micro-service", ms)
}

fn controller_json(c: &Cluster) -> Value {
    let controller = json!({"degraded-mode-wait-duration": "0s", "ltb-max-wait-duration": "30s", "ltb-token-rpc-max-delay": "1s", "request-unit": {"read-base-cost": 0.125, "read-per-batch-base-cost": 0.5, "read-cost-per-byte": 0.0000152587890625, "write-base-cost": 1, "write-per-batch-base-cost": 1, "write-cost-per-byte": 0.0009765625, "read-cpu-ms-cost": 0.3333333333333333}, "enable-controller-trace-log": "false", "push-metrics-address": "", "push-metrics-interval": "0s"});
    with_stored(c, "controller", controller)
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
        "log": log_json(&c),
        "tso-save-interval": "3s",
        "tso-update-physical-interval": "50ms",
        "enable-local-tso": false,
        "metric": {"job": name, "address": "", "interval": "15s"},
        "schedule": schedule_json(&c),
        "replication": replication(&c),
        "pd-server": pd_server_json(&c),
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
        "LeaderPriorityCheckInterval": go_duration(c.knobs.leader_priority_check),
        "dashboard": {"tidb-cacert-path": "", "tidb-cert-path": "", "tidb-key-path": "", "public-path-prefix": "", "internal-proxy": false, "enable-telemetry": false, "enable-experimental": false},
        "replication-mode": replication_mode_json(&c),
        "keyspace": keyspace_json(&c),
        "micro-service": micro_service_json(&c),
        "controller": controller_json(&c),
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

/// `POST /config`: see [`super::pd_config`] for what it accepts. Keys apply one at a
/// time in key order; the first refused one answers 400 and leaves the earlier ones
/// applied, as PD does. `?ttlSecond` (temporary settings for BR and Lightning) is not
/// modelled.
pub async fn update(State(ctx): State<Ctx>, body: Bytes) -> ApiResult {
    let input: Value = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(pc::body_error(&body, &e)))?;
    let input = match input {
        Value::Object(map) => map,
        // Go decodes `null` into a nil map and sets nothing.
        Value::Null => Map::new(),
        other => {
            let kind = match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "bool",
            };
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            )));
        }
    };
    ctx.shared.mutate(|c| {
        for (key, value) in &input {
            set_item(c, key, value).map_err(ApiError::bad_request)?;
        }
        c.poke();
        Ok::<(), ApiError>(())
    })?;
    message("The config is updated.")
}

/// One item of `POST /config` (PD's `updateConfig`).
fn set_item(c: &mut Cluster, key: &str, value: &Value) -> Result<(), String> {
    let full = if key.contains('.') {
        key.to_owned()
    } else {
        pc::full_tag(pc::CONFIG, key).ok_or_else(|| format!("config item {key} not found"))?
    };
    let kp: Vec<&str> = full.split('.').collect();
    let last = kp.last().copied().unwrap_or_default();
    match kp[0] {
        "schedule" => set_schedule(c, last, value),
        "replication" => set_replication(c, last, value),
        "replication-mode" if kp.len() < 2 => Err(format!("cannot update config prefix {}", kp[0])),
        "replication-mode" => set_replication_mode(c, &kp[1..], value),
        "pd-server" => set_pd_server(c, last, value),
        "log" if kp.len() != 2 || kp[1] != "level" => Err("only support changing log level".into()),
        "log" => match value.as_str() {
            Some(level) if pc::legal_log_level(level) => {
                c.pd_config.insert("log.level".into(), level.into());
                Ok(())
            }
            Some(level) => Err(format!("log level {level} is illegal")),
            None => Err(format!("input value {} is illegal", pc::go_value(value))),
        },
        "cluster-version" => {
            let text = value.as_str().ok_or_else(|| format!("input value {} is illegal", pc::go_value(value)))?;
            c.cluster_version = Version::parse_pd(text)?;
            Ok(())
        }
        "keyspace" => {
            let next = merged(&keyspace_json(c), "KeyspaceConfig", pc::KEYSPACE, last, value)?;
            store_section(c, "keyspace", &keyspace_json(c), next);
            Ok(())
        }
        "micro-service" => {
            let current = micro_service_json(c);
            let next = merged(&current, "MicroserviceConfig", pc::MICRO_SERVICE, last, value)?;
            if next != current && last == "enable-resource-manager-fallback" {
                return Err(format!("cannot update config item {last} dynamically"));
            }
            store_section(c, "micro-service", &current, next);
            Ok(())
        }
        "controller" => set_controller(c, last, value),
        other => Err(format!("config prefix {other} not found")),
    }
}

/// Decodes `{key: value}` into the section `current` of struct `name` (Go's
/// `json.Unmarshal` into the existing struct). An unknown key is PD's "not found".
fn merged(current: &Value, name: &str, fields: &[(&str, Ty)], key: &str, value: &Value) -> Result<Value, String> {
    if pc::field(fields, key).is_none() {
        return Err(format!("config item {key} not found"));
    }
    let mut input = Map::new();
    input.insert(key.to_owned(), value.clone());
    decode_into(current, name, "", fields, &input)
}

/// Go's decoding of a JSON object into a struct that already holds `current`: known
/// fields are decoded by their types (type errors name the innermost struct and the
/// field's path), unknown ones ignored, `null` changes nothing.
fn decode_into(
    current: &Value,
    name: &str,
    prefix: &str,
    fields: &[(&str, Ty)],
    input: &Map<String, Value>,
) -> Result<Value, String> {
    let mut next = current.clone();
    for (key, value) in input {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match pc::field(fields, key) {
            None => {}
            Some(Ty::Leaf(ty)) => {
                if let Some(decoded) = pc::decode(*ty, (name, &path), value)? {
                    pc::set_path(&mut next, key, decoded);
                }
            }
            Some(Ty::Struct(go_type, children)) => match value {
                Value::Null => {}
                Value::Object(inner) => {
                    let inner_name = go_type.rsplit('.').next().unwrap_or(go_type);
                    let sub = decode_into(&current[key.as_str()], inner_name, &path, children, inner)?;
                    pc::set_path(&mut next, key, sub);
                }
                other => {
                    let kind = match other {
                        Value::Array(_) => "array",
                        Value::String(_) => "string",
                        Value::Number(_) => "number",
                        _ => "bool",
                    };
                    return Err(format!(
                        "json: cannot unmarshal {kind} into Go struct field {name}.{path} of type {go_type}"
                    ));
                }
            },
        }
    }
    Ok(next)
}

/// Keeps every item of `next` that differs from `current` for `GET /config` to show.
fn store_section(c: &mut Cluster, section: &str, current: &Value, next: Value) {
    let (Some(before), Value::Object(after)) = (current.as_object(), next) else { return };
    for (key, value) in after {
        if before.get(&key) != Some(&value) {
            c.pd_config.insert(format!("{section}.{key}"), value);
        }
    }
}

/// Schedule items the simulation acts on: they become knobs.
const SCHEDULE_KNOBS: &[&str] = &[
    "max-store-down-time",
    "max-store-preparing-time",
    "leader-schedule-limit",
    "region-schedule-limit",
    "replica-schedule-limit",
    "low-space-ratio",
];

fn set_schedule(c: &mut Cluster, key: &str, value: &Value) -> Result<(), String> {
    let current = schedule_json(c);
    let next = merged(&current, "ScheduleConfig", pc::SCHEDULE, key, value)?;
    if next == current {
        return Ok(());
    }
    pc::validate_schedule(&next)?;
    let mut knobs = Map::new();
    for k in SCHEDULE_KNOBS {
        knobs.insert((*k).to_owned(), next[*k].clone());
    }
    let limit = |k: &str| next["default-store-limit"][k].as_f64().unwrap_or_default();
    knobs.insert("store-limit-add-peer".into(), limit("add-peer").into());
    knobs.insert("store-limit-remove-peer".into(), limit("remove-peer").into());
    let knobs = c.knobs.merge(&Value::Object(knobs))?;
    c.set_knobs(knobs);
    if let Some(limits) = next["store-limit"].as_object() {
        let now = c.now;
        for (id, limit) in limits {
            let Some(store) = id.parse::<u64>().ok().and_then(|id| c.stores.get_mut(&id)) else { continue };
            // Go decodes a map element afresh: a rate the entry leaves out is 0.
            let (add, remove) =
                (limit["add-peer"].as_f64().unwrap_or(0.0), limit["remove-peer"].as_f64().unwrap_or(0.0));
            match &mut store.saved_limits {
                Some(saved) => *saved = (add, remove),
                None => {
                    store.add_peer.set_rate(add, now);
                    store.remove_peer.set_rate(remove, now);
                }
            }
        }
    }
    let modelled = |k: &str| SCHEDULE_KNOBS.contains(&k) || matches!(k, "default-store-limit" | "store-limit");
    let stored: Value = next
        .as_object()
        .map(|m| Value::Object(m.iter().filter(|(k, _)| !modelled(k)).map(|(k, v)| (k.clone(), v.clone())).collect()))
        .unwrap_or(Value::Null);
    store_section(c, "schedule", &current, stored);
    Ok(())
}

fn set_replication(c: &mut Cluster, key: &str, value: &Value) -> Result<(), String> {
    let current = replication(c);
    let next = merged(&current, "ReplicationConfig", pc::REPLICATION, key, value)?;
    if next == current {
        return Ok(());
    }
    pc::validate_replication(&next)?;
    let rules = |v: &Value| v["enable-placement-rules"] == "true";
    if (rules(&next) || rules(&current)) && !c.bootstrapped {
        return Err(NOT_BOOTSTRAPPED.to_owned());
    }
    let default_rule_changes =
        ["max-replicas", "location-labels", "isolation-level"].iter().any(|k| next[*k] != current[*k]);
    let max_replicas = next["max-replicas"].as_u64().unwrap_or_default();
    if rules(&next) && default_rule_changes && max_replicas == 0 {
        return Err("[PD:placement:ErrRuleContent]invalid rule content, invalid count 0".into());
    }
    let r = &mut c.replication;
    r.max_replicas = max_replicas as usize;
    r.location_labels = next["location-labels"]
        .as_str()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    r.strictly_match_label = next["strictly-match-label"] == "true";
    r.enable_placement_rules = rules(&next);
    r.isolation_level = next["isolation-level"].as_str().unwrap_or_default().to_owned();
    let cache = "enable-placement-rules-cache";
    if next[cache] != current[cache] {
        c.pd_config.insert(format!("replication.{cache}"), next[cache].clone());
    }
    Ok(())
}

fn set_replication_mode(c: &mut Cluster, path: &[&str], value: &Value) -> Result<(), String> {
    let current = replication_mode_json(c);
    if pc::field(pc::REPLICATION_MODE, path[0]).is_none() {
        return Err(format!("config item [{}] not found", path.join(" ")));
    }
    let mut input = value.clone();
    for key in path.iter().rev() {
        input = json!({ *key: input });
    }
    let Value::Object(input) = input else { return Ok(()) };
    let next = decode_into(&current, "ReplicationModeConfig", "", pc::REPLICATION_MODE, &input)?;
    if next == current {
        return Ok(());
    }
    let mode = next["replication-mode"].as_str().unwrap_or_default();
    if !["majority", "dr-auto-sync"].contains(&mode.to_lowercase().as_str()) {
        return Err(format!("invalid replication mode: {mode}"));
    }
    store_section(c, "replication-mode", &current, next);
    Ok(())
}

fn set_pd_server(c: &mut Cluster, key: &str, value: &Value) -> Result<(), String> {
    let current = pd_server_json(c);
    let mut next = merged(&current, "PDServerConfig", pc::PD_SERVER, key, value)?;
    if next == current {
        return Ok(());
    }
    pc::validate_pd_server(&next)?;
    let address = next["dashboard-address"].as_str().unwrap_or_default().to_owned();
    if address != current["dashboard-address"] && address != "auto" && address != "none" {
        let url = if address.starts_with("http") { address.clone() } else { format!("http://{address}") };
        if !c.members.in_etcd().any(|m| m.client_urls.contains(&url)) {
            return Err(format!("dashboard address {url} is not the client url of any member"));
        }
        next["dashboard-address"] = url.into();
    }
    store_section(c, "pd-server", &current, next);
    Ok(())
}

/// PD forwards these to its resource manager, top-level items only.
fn set_controller(c: &mut Cluster, key: &str, value: &Value) -> Result<(), String> {
    match pc::full_tag(pc::CONTROLLER, key) {
        None => Err(format!("controller config item {key} not found")),
        Some(full) if full != key => {
            Err(format!("can't update controller child item {key}, only top-level items are allowed"))
        }
        Some(_) => {
            let current = controller_json(c);
            let next = merged(&current, "ControllerConfig", pc::CONTROLLER, key, value)
                .map_err(|e| format!("failed to update controller config: {e}"))?;
            store_section(c, "controller", &current, next);
            Ok(())
        }
    }
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
