//! What PD's `POST /pd/api/v1/config` accepts and refuses (tikv/pd:server/api/config.go
//! `SetConfig` and `updateConfig`, read at a186e0cc, Aug 2026), and how PD's JSON
//! decoding words a value of the wrong type. The handler is in `config.rs`.
//!
//! - A key with a dot is `<section>.<...>.<field>`; a key without one is looked up
//!   among the field names of PD's whole config, depth first in PD's field order
//!   (`FindJSONFullTagByChildTag`), so `max-replicas` means `replication.max-replicas`
//!   and `level` means `log.level`; a name found nowhere is 400 `config item <key> not
//!   found`.
//! - Settable sections: `schedule`, `replication`, `pd-server` (by their last segment,
//!   whatever sits between), `replication-mode` (by the full rest of the path),
//!   `log.level` only (`only support changing log level` otherwise),
//!   `cluster-version`, `keyspace`, `micro-service`, `controller` (top-level items
//!   only). Any other section, `label-property` included, is `config prefix <section>
//!   not found`. An unknown field of a settable section is `config item <field> not
//!   found`.
//! - Values go through Go's `encoding/json` into the section's struct: a wrong type is
//!   `json: cannot unmarshal <kind> into Go struct field <Struct>.<field> of type
//!   <type>`; booleans PD declares with `,string` (most of them) must be the strings
//!   `"true"`/`"false"`; durations must be Go duration strings; `location-labels` is one
//!   comma-joined string. Then the section's validation (`Validate`, `Deprecated`).
//! - Every error is 400 with a JSON string body. Keys are applied one by one, not
//!   atomically: a refused key leaves the keys applied before it applied (PD's order is
//!   Go's map order, random; the simulator goes in key order).

use serde_json::{Map, Value};

use crate::format::{go_duration, parse_go_duration};

/// How Go decodes into a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoType {
    U64,
    Int,
    I64,
    F64,
    Str,
    /// `bool` with the `,string` option: the JSON must be `"true"` or `"false"`.
    BoolString,
    Bool,
    /// `typeutil.Duration`: a Go duration string.
    Duration,
    /// `typeutil.StringSlice`: one comma-joined string.
    StringSlice,
    /// `[]string`.
    Strings,
    /// Maps and other values PD takes as JSON (`store-limit`, `schedulers-v2`, ...).
    Any,
}

/// A field of PD's config: a value, or a nested struct.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    Leaf(GoType),
    /// A struct: its Go type (`package.Name`) and fields.
    Struct(&'static str, &'static [(&'static str, Ty)]),
}

use GoType::*;
use Ty::{Leaf, Struct};

const STORE_LIMIT: &[(&str, Ty)] = &[("add-peer", Leaf(F64)), ("remove-peer", Leaf(F64))];

/// `sc.ScheduleConfig` (tikv/pd:pkg/schedule/config/config.go), in field order.
pub const SCHEDULE: &[(&str, Ty)] = &[
    ("max-snapshot-count", Leaf(U64)),
    ("max-pending-peer-count", Leaf(U64)),
    ("max-merge-region-size", Leaf(U64)),
    ("max-merge-region-keys", Leaf(U64)),
    ("split-merge-interval", Leaf(Duration)),
    ("switch-witness-interval", Leaf(Duration)),
    ("enable-one-way-merge", Leaf(BoolString)),
    ("enable-cross-table-merge", Leaf(BoolString)),
    ("patrol-region-interval", Leaf(Duration)),
    ("max-store-down-time", Leaf(Duration)),
    ("max-store-preparing-time", Leaf(Duration)),
    ("leader-schedule-limit", Leaf(U64)),
    ("leader-schedule-policy", Leaf(Str)),
    ("region-schedule-limit", Leaf(U64)),
    ("witness-schedule-limit", Leaf(U64)),
    ("replica-schedule-limit", Leaf(U64)),
    ("merge-schedule-limit", Leaf(U64)),
    ("hot-region-schedule-limit", Leaf(U64)),
    ("affinity-schedule-limit", Leaf(U64)),
    ("split-scatter-schedule-limit", Leaf(U64)),
    ("hot-region-cache-hits-threshold", Leaf(U64)),
    ("store-balance-rate", Leaf(F64)),
    ("default-store-limit", Struct("config.StoreLimitConfig", STORE_LIMIT)),
    ("store-limit", Leaf(Any)),
    ("tolerant-size-ratio", Leaf(F64)),
    ("low-space-ratio", Leaf(F64)),
    ("high-space-ratio", Leaf(F64)),
    ("region-score-formula-version", Leaf(Str)),
    ("scheduler-max-waiting-operator", Leaf(U64)),
    ("disable-raft-learner", Leaf(BoolString)),
    ("disable-remove-down-replica", Leaf(BoolString)),
    ("disable-replace-offline-replica", Leaf(BoolString)),
    ("disable-make-up-replica", Leaf(BoolString)),
    ("disable-remove-extra-replica", Leaf(BoolString)),
    ("disable-location-replacement", Leaf(BoolString)),
    ("enable-remove-down-replica", Leaf(BoolString)),
    ("enable-replace-offline-replica", Leaf(BoolString)),
    ("enable-make-up-replica", Leaf(BoolString)),
    ("enable-remove-extra-replica", Leaf(BoolString)),
    ("enable-location-replacement", Leaf(BoolString)),
    ("enable-debug-metrics", Leaf(BoolString)),
    ("enable-joint-consensus", Leaf(BoolString)),
    ("enable-tikv-split-region", Leaf(BoolString)),
    ("enable-heartbeat-breakdown-metrics", Leaf(BoolString)),
    ("enable-heartbeat-concurrent-runner", Leaf(BoolString)),
    ("schedulers-v2", Leaf(Any)),
    ("hot-regions-write-interval", Leaf(Duration)),
    ("hot-regions-reserved-days", Leaf(U64)),
    ("max-movable-hot-peer-size", Leaf(I64)),
    ("enable-diagnostic", Leaf(BoolString)),
    ("enable-witness", Leaf(BoolString)),
    ("slow-store-evicting-affected-store-ratio-threshold", Leaf(F64)),
    ("store-limit-version", Leaf(Str)),
    ("halt-scheduling", Leaf(BoolString)),
    ("patrol-region-worker-count", Leaf(Int)),
    ("max-affinity-merge-region-size", Leaf(U64)),
];

/// `sc.ReplicationConfig`.
pub const REPLICATION: &[(&str, Ty)] = &[
    ("max-replicas", Leaf(U64)),
    ("location-labels", Leaf(StringSlice)),
    ("strictly-match-label", Leaf(BoolString)),
    ("enable-placement-rules", Leaf(BoolString)),
    ("enable-placement-rules-cache", Leaf(BoolString)),
    ("isolation-level", Leaf(Str)),
];

/// `config.PDServerConfig` (tikv/pd:server/config/config.go).
pub const PD_SERVER: &[(&str, Ty)] = &[
    ("use-region-storage", Leaf(BoolString)),
    ("max-gap-reset-ts", Leaf(Duration)),
    ("key-type", Leaf(Str)),
    ("runtime-services", Leaf(StringSlice)),
    ("metric-storage", Leaf(Str)),
    ("dashboard-address", Leaf(Str)),
    ("flow-round-by-digit", Leaf(Int)),
    ("min-resolved-ts-persistence-interval", Leaf(Duration)),
    ("server-memory-limit", Leaf(F64)),
    ("server-memory-limit-gc-trigger", Leaf(F64)),
    ("enable-gogc-tuner", Leaf(BoolString)),
    ("gc-tuner-threshold", Leaf(F64)),
    ("block-safe-point-v1", Leaf(BoolString)),
];

const DR_AUTO_SYNC: &[(&str, Ty)] = &[
    ("label-key", Leaf(Str)),
    ("primary", Leaf(Str)),
    ("dr", Leaf(Str)),
    ("primary-replicas", Leaf(Int)),
    ("dr-replicas", Leaf(Int)),
    ("wait-store-timeout", Leaf(Duration)),
    ("wait-recover-timeout", Leaf(Duration)),
    ("pause-region-split", Leaf(BoolString)),
];

/// `config.ReplicationModeConfig`.
pub const REPLICATION_MODE: &[(&str, Ty)] =
    &[("replication-mode", Leaf(Str)), ("dr-auto-sync", Struct("config.DRAutoSyncReplicationConfig", DR_AUTO_SYNC))];

/// `config.KeyspaceConfig`.
pub const KEYSPACE: &[(&str, Ty)] = &[
    ("pre-alloc", Leaf(Strings)),
    ("wait-region-split", Leaf(Bool)),
    ("wait-region-split-timeout", Leaf(Duration)),
    ("check-region-split-interval", Leaf(Duration)),
    ("meta-service-groups", Leaf(Any)),
];

/// `config.MicroserviceConfig`.
pub const MICRO_SERVICE: &[(&str, Ty)] = &[
    ("enable-scheduling-fallback", Leaf(BoolString)),
    ("enable-tso-dynamic-switching", Leaf(BoolString)),
    ("enable-resource-manager-fallback", Leaf(BoolString)),
];

const REQUEST_UNIT: &[(&str, Ty)] = &[
    ("read-base-cost", Leaf(F64)),
    ("read-per-batch-base-cost", Leaf(F64)),
    ("read-cost-per-byte", Leaf(F64)),
    ("write-base-cost", Leaf(F64)),
    ("write-per-batch-base-cost", Leaf(F64)),
    ("write-cost-per-byte", Leaf(F64)),
    ("read-cpu-ms-cost", Leaf(F64)),
];

/// The resource manager's `ControllerConfig` (tikv/pd:pkg/mcs/resourcemanager/server/config.go).
pub const CONTROLLER: &[(&str, Ty)] = &[
    ("degraded-mode-wait-duration", Leaf(Duration)),
    ("ltb-max-wait-duration", Leaf(Duration)),
    ("ltb-token-rpc-max-delay", Leaf(Duration)),
    ("request-unit", Struct("server.RequestUnitConfig", REQUEST_UNIT)),
    ("enable-controller-trace-log", Leaf(BoolString)),
    ("push-metrics-address", Leaf(Str)),
    ("push-metrics-interval", Leaf(Duration)),
    ("ru-version-policy", Leaf(Any)),
];

const LOG_FILE: &[(&str, Ty)] =
    &[("filename", Leaf(Str)), ("max-size", Leaf(Int)), ("max-days", Leaf(Int)), ("max-backups", Leaf(Int))];

const LOG: &[(&str, Ty)] = &[
    ("level", Leaf(Str)),
    ("format", Leaf(Str)),
    ("disable-timestamp", Leaf(Bool)),
    ("file", Struct("log.FileLogConfig", LOG_FILE)),
    ("development", Leaf(Bool)),
    ("disable-caller", Leaf(Bool)),
    ("disable-stacktrace", Leaf(Bool)),
    ("disable-error-verbose", Leaf(Bool)),
    ("sampling", Leaf(Any)),
    ("error-output-path", Leaf(Str)),
];

const METRIC: &[(&str, Ty)] = &[("job", Leaf(Str)), ("address", Leaf(Str)), ("interval", Leaf(Duration))];

const SECURITY: &[(&str, Ty)] = &[
    ("cacert-path", Leaf(Str)),
    ("cert-path", Leaf(Str)),
    ("key-path", Leaf(Str)),
    ("cert-allowed-cn", Leaf(Strings)),
    ("redact-info-log", Leaf(Any)),
    ("encryption", Leaf(Any)),
];

const DASHBOARD: &[(&str, Ty)] = &[
    ("tidb-cacert-path", Leaf(Str)),
    ("tidb-cert-path", Leaf(Str)),
    ("tidb-key-path", Leaf(Str)),
    ("public-path-prefix", Leaf(Str)),
    ("temp-dir", Leaf(Str)),
    ("internal-proxy", Leaf(Bool)),
    ("enable-telemetry", Leaf(Bool)),
    ("enable-experimental", Leaf(Bool)),
    ("disable-custom-prom-addr", Leaf(Bool)),
];

/// `config.Config`'s JSON fields in PD's order (the order the child search goes in).
pub const CONFIG: &[(&str, Ty)] = &[
    ("client-urls", Leaf(Str)),
    ("peer-urls", Leaf(Str)),
    ("advertise-client-urls", Leaf(Str)),
    ("advertise-peer-urls", Leaf(Str)),
    ("name", Leaf(Str)),
    ("data-dir", Leaf(Str)),
    ("force-new-cluster", Leaf(Bool)),
    ("enable-grpc-gateway", Leaf(Bool)),
    ("initial-cluster", Leaf(Str)),
    ("initial-cluster-state", Leaf(Str)),
    ("initial-cluster-token", Leaf(Str)),
    ("join", Leaf(Str)),
    ("lease", Leaf(I64)),
    ("log", Struct("log.Config", LOG)),
    ("log-file", Leaf(Str)),
    ("log-level", Leaf(Str)),
    ("max-concurrent-tso-proxy-streamings", Leaf(Int)),
    ("tso-proxy-recv-from-client-timeout", Leaf(Duration)),
    ("tso-save-interval", Leaf(Duration)),
    ("tso-update-physical-interval", Leaf(Duration)),
    ("enable-local-tso", Leaf(Bool)),
    ("metric", Struct("metricutil.MetricConfig", METRIC)),
    ("schedule", Struct("config.ScheduleConfig", SCHEDULE)),
    ("replication", Struct("config.ReplicationConfig", REPLICATION)),
    ("pd-server", Struct("config.PDServerConfig", PD_SERVER)),
    ("cluster-version", Leaf(Str)),
    ("labels", Leaf(Any)),
    ("quota-backend-bytes", Leaf(Any)),
    ("auto-compaction-mode", Leaf(Str)),
    ("auto-compaction-retention-v2", Leaf(Str)),
    ("tick-interval", Leaf(Duration)),
    ("election-interval", Leaf(Duration)),
    ("enable-prevote", Leaf(Bool)),
    ("max-request-bytes", Leaf(U64)),
    ("security", Struct("configutil.SecurityConfig", SECURITY)),
    ("label-property", Leaf(Any)),
    ("dashboard", Struct("config.DashboardConfig", DASHBOARD)),
    ("replication-mode", Struct("config.ReplicationModeConfig", REPLICATION_MODE)),
    ("keyspace", Struct("config.KeyspaceConfig", KEYSPACE)),
    ("micro-service", Struct("config.MicroserviceConfig", MICRO_SERVICE)),
    ("controller", Struct("server.ControllerConfig", CONTROLLER)),
    ("metering", Leaf(Any)),
];

/// The full path of a field named `tag` (PD's `FindJSONFullTagByChildTag`): the first
/// match, depth first, in field order.
pub fn full_tag(fields: &[(&str, Ty)], tag: &str) -> Option<String> {
    for (name, ty) in fields {
        if *name == tag {
            return Some((*name).to_owned());
        }
        if let Struct(_, children) = ty
            && let Some(path) = full_tag(children, tag)
        {
            return Some(format!("{name}.{path}"));
        }
    }
    None
}

pub fn field<'a>(fields: &'a [(&str, Ty)], name: &str) -> Option<&'a Ty> {
    fields.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
}

/// The kind of a JSON value as Go's decoder names it in type errors.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A JSON number as PD re-encodes it: it decoded the body into `any`, so every number
/// went through a float64 (`8`, `-1`, `1.5`, `1e+21`).
pub fn go_number(n: &serde_json::Number) -> String {
    let f = n.as_f64().unwrap_or_default();
    if f == 0.0 {
        return "0".to_owned();
    }
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        return match text.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => text,
        };
    }
    if f.fract() == 0.0 { format!("{}", f as i128) } else { format!("{f}") }
}

/// `%v` of a value PD decoded into `any` (for `input value %v is illegal`).
pub fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            format!("map[{}]", map.iter().map(|(k, v)| format!("{k}:{}", go_value(v))).collect::<Vec<_>>().join(" "))
        }
    }
}

/// Go's `time.ParseDuration` error for a string it refuses.
fn duration_error(s: &str) -> String {
    let has_unit = s.chars().any(|c| c.is_ascii_alphabetic() || c == 'µ' || c == 'μ');
    if !has_unit && s.chars().any(|c| c.is_ascii_digit()) && s != "0" {
        return format!("time: missing unit in duration {s:?}");
    }
    if let Some(start) = s.find(|c: char| c.is_alphabetic()) {
        let unit: String = s[start..].chars().take_while(|c| !(c.is_ascii_digit() || *c == '.')).collect();
        if !["ns", "us", "µs", "μs", "ms", "s", "m", "h"].contains(&unit.as_str()) {
            return format!("time: unknown unit {unit:?} in duration {s:?}");
        }
    }
    format!("time: invalid duration {s:?}")
}

/// Decodes `value` into a field of type `ty`, as Go's `json.Unmarshal` would after PD
/// re-encoded it. `Ok(None)`: JSON `null`, which leaves the field as it is. `Ok(Some)`:
/// the value as `GET /config` then shows it. `Err`: PD's error text. `at` is the
/// struct's name and the field's path in it, for type errors.
pub fn decode(ty: GoType, at: (&str, &str), value: &Value) -> Result<Option<Value>, String> {
    let type_error = |go_type: &str, what: String| {
        format!("json: cannot unmarshal {what} into Go struct field {}.{} of type {go_type}", at.0, at.1)
    };
    let kind = json_kind(value).to_owned();
    if value.is_null() && !matches!(ty, Duration | StringSlice) {
        return Ok(None);
    }
    Ok(Some(match ty {
        U64 | Int | I64 => {
            let go_type = match ty {
                U64 => "uint64",
                Int => "int",
                _ => "int64",
            };
            let Value::Number(n) = value else { return Err(type_error(go_type, kind)) };
            let text = go_number(n);
            let parsed = match ty {
                U64 => text.parse::<u64>().ok().map(Value::from),
                _ => text.parse::<i64>().ok().map(Value::from),
            };
            parsed.ok_or_else(|| type_error(go_type, format!("number {text}")))?
        }
        F64 => match value {
            Value::Number(n) => Value::Number(n.clone()),
            _ => return Err(type_error("float64", kind)),
        },
        Str => match value {
            Value::String(s) => Value::String(s.clone()),
            _ => return Err(type_error("string", kind)),
        },
        Bool => match value {
            Value::Bool(b) => Value::Bool(*b),
            _ => return Err(type_error("bool", kind)),
        },
        BoolString => match value {
            Value::String(s) if s == "true" || s == "false" => Value::String(s.clone()),
            Value::String(s) => {
                return Err(format!("json: invalid use of ,string struct tag, trying to unmarshal {s:?} into bool"));
            }
            _ => {
                return Err(
                    "json: invalid use of ,string struct tag, trying to unmarshal unquoted value into bool".into()
                );
            }
        },
        Duration => {
            let Value::String(s) = value else { return Err("invalid syntax".into()) };
            let d = parse_go_duration(s).filter(|_| !s.trim().is_empty()).ok_or_else(|| duration_error(s))?;
            Value::String(go_duration(d))
        }
        StringSlice => {
            let Value::String(s) = value else { return Err("invalid syntax".into()) };
            Value::String(s.clone())
        }
        Strings => match value {
            Value::Array(items) if items.iter().all(|i| i.is_string() || i.is_null()) => value.clone(),
            Value::Array(items) => {
                let bad = items.iter().find(|i| !i.is_string()).map(json_kind).unwrap_or("array");
                return Err(type_error("string", bad.to_owned()));
            }
            _ => return Err(type_error("[]string", kind)),
        },
        Any => value.clone(),
    }))
}

/// Sets `value` at the dotted `path` of `target`, merging objects as Go merges a JSON
/// object into an existing map.
pub fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut at = target;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(obj) = at.as_object_mut() else { return };
        if parts.peek().is_none() {
            match (obj.get_mut(part), value) {
                (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                (_, value) => {
                    obj.insert(part.to_owned(), value);
                }
            }
            return;
        }
        at = obj.entry(part.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    }
}

pub fn get_path<'a>(target: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(target, |at, part| at.get(part))
}

/// Go's message for a body `json.Unmarshal` cannot decode into a map.
pub fn body_error(body: &[u8], e: &serde_json::Error) -> String {
    if e.is_eof() || body.iter().all(u8::is_ascii_whitespace) {
        return "unexpected end of JSON input".to_owned();
    }
    if e.is_data() {
        let kind = serde_json::from_slice::<Value>(body).map(|v| json_kind(&v)).unwrap_or("value");
        return format!("json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}");
    }
    let column = e.column().saturating_sub(1);
    let line = body.split(|b| *b == b'\n').nth(e.line().saturating_sub(1)).unwrap_or(body);
    let c = line.get(column).map(|b| *b as char).unwrap_or(' ');
    format!("invalid character {c:?} looking for beginning of value")
}

/// PD's label-key format (tikv/pd:pkg/schedule/config/util.go).
fn valid_label_key(key: &str) -> bool {
    let key = key.strip_prefix('$').unwrap_or(key);
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
    let mut chars = key.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    first_ok && key.chars().all(ok) && key.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

const LABEL_KEY_FORMAT: &str = "^[$]?[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$";

fn f64_at(section: &Value, key: &str) -> f64 {
    section[key].as_f64().unwrap_or_default()
}

/// `ScheduleConfig.Validate` and `Deprecated` on the config as it would be.
pub fn validate_schedule(s: &Value) -> Result<(), String> {
    for (key, name) in
        [("add-peer", "default-store-limit.add-peer"), ("remove-peer", "default-store-limit.remove-peer")]
    {
        let v = s["default-store-limit"][key].as_f64().unwrap_or_default();
        if !v.is_finite() || v < 0.0 {
            return Err(format!("{name} should be finite and non-negative"));
        }
    }
    if f64_at(s, "tolerant-size-ratio") < 0.0 {
        return Err("tolerant-size-ratio should be non-negative".into());
    }
    let (low, high) = (f64_at(s, "low-space-ratio"), f64_at(s, "high-space-ratio"));
    if !(0.0..=1.0).contains(&low) {
        return Err("low-space-ratio should between 0 and 1".into());
    }
    if !(0.0..=1.0).contains(&high) {
        return Err("high-space-ratio should between 0 and 1".into());
    }
    if low <= high {
        return Err("low-space-ratio should be larger than high-space-ratio".into());
    }
    let policy = s["leader-schedule-policy"].as_str().unwrap_or_default();
    if policy != "count" && policy != "size" {
        return Err(format!("leader-schedule-policy {policy} is invalid"));
    }
    if f64_at(s, "slow-store-evicting-affected-store-ratio-threshold") == 0.0 {
        return Err("slow-store-evicting-affected-store-ratio-threshold is not set".into());
    }
    let workers = s["patrol-region-worker-count"].as_i64().unwrap_or(1);
    if !(1..=8).contains(&workers) {
        return Err("patrol-region-worker-count should be between 1 and 8".into());
    }
    for key in [
        "disable-raft-learner",
        "disable-remove-down-replica",
        "disable-replace-offline-replica",
        "disable-make-up-replica",
        "disable-remove-extra-replica",
        "disable-location-replacement",
    ] {
        if s[key] == "true" {
            return Err(format!("{key} has already been deprecated"));
        }
    }
    if f64_at(s, "store-balance-rate") != 0.0 {
        return Err("store-balance-rate has already been deprecated".into());
    }
    Ok(())
}

/// `ReplicationConfig.Validate`.
pub fn validate_replication(r: &Value) -> Result<(), String> {
    let labels: Vec<&str> =
        r["location-labels"].as_str().unwrap_or_default().split(',').filter(|s| !s.is_empty()).collect();
    for label in &labels {
        if !valid_label_key(label) {
            return Err(format!("{label} does not match format {LABEL_KEY_FORMAT:?}"));
        }
    }
    let isolation = r["isolation-level"].as_str().unwrap_or_default();
    if !isolation.is_empty() && !labels.contains(&isolation) {
        return Err("isolation-level must be one of location-labels or empty".into());
    }
    Ok(())
}

/// `PDServerConfig.Validate` (the dashboard address is checked by the caller).
pub fn validate_pd_server(p: &Value) -> Result<(), String> {
    let key_type = p["key-type"].as_str().unwrap_or_default();
    if !["table", "raw", "txn"].contains(&key_type) {
        return Err(format!("key-type {key_type} is invalid"));
    }
    if p["flow-round-by-digit"].as_i64().unwrap_or_default() < 0 {
        return Err("[PD:server:ErrConfiguration]flow round by digit cannot be negative number".into());
    }
    let ranges = [
        ("server-memory-limit", 0.0, 0.99, "0", "0.99"),
        ("server-memory-limit-gc-trigger", 0.5, 0.99, "0.5", "0.99"),
        ("gc-tuner-threshold", 0.0, 0.9, "0", "0.9"),
    ];
    for (key, min, max, min_text, max_text) in ranges {
        let v = f64_at(p, key);
        if v < min || v > max {
            return Err(format!("{key} should between {min_text} and {max_text}"));
        }
    }
    Ok(())
}

/// PD's `logutil.IsLevelLegal`.
pub fn legal_log_level(level: &str) -> bool {
    matches!(level.to_lowercase().as_str(), "fatal" | "error" | "warn" | "warning" | "debug" | "info")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unqualified_names_resolve_in_pds_field_order() {
        assert_eq!(full_tag(CONFIG, "max-replicas").as_deref(), Some("replication.max-replicas"));
        assert_eq!(full_tag(CONFIG, "leader-schedule-limit").as_deref(), Some("schedule.leader-schedule-limit"));
        assert_eq!(full_tag(CONFIG, "level").as_deref(), Some("log.level"));
        assert_eq!(full_tag(CONFIG, "primary").as_deref(), Some("replication-mode.dr-auto-sync.primary"));
        assert_eq!(full_tag(CONFIG, "add-peer").as_deref(), Some("schedule.default-store-limit.add-peer"));
        assert_eq!(full_tag(CONFIG, "name").as_deref(), Some("name"));
        assert_eq!(full_tag(CONFIG, "no-such-thing"), None);
    }

    #[test]
    fn values_decode_as_go_does_or_fail_with_gos_words() {
        let at = ("ScheduleConfig", "leader-schedule-limit");
        assert_eq!(decode(U64, at, &json!(8)).unwrap(), Some(json!(8)));
        assert_eq!(decode(U64, at, &json!(8.0)).unwrap(), Some(json!(8)));
        assert_eq!(
            decode(U64, at, &json!("8")).unwrap_err(),
            "json: cannot unmarshal string into Go struct field ScheduleConfig.leader-schedule-limit of type uint64"
        );
        assert_eq!(
            decode(U64, at, &json!(-1)).unwrap_err(),
            "json: cannot unmarshal number -1 into Go struct field ScheduleConfig.leader-schedule-limit of type uint64"
        );
        assert_eq!(
            decode(U64, at, &json!(1.5)).unwrap_err().split(" into").next(),
            Some("json: cannot unmarshal number 1.5")
        );
        assert_eq!(decode(U64, at, &Value::Null).unwrap(), None);
        let at = ("ReplicationConfig", "enable-placement-rules");
        assert_eq!(decode(BoolString, at, &json!("false")).unwrap(), Some(json!("false")));
        assert_eq!(
            decode(BoolString, at, &json!(false)).unwrap_err(),
            "json: invalid use of ,string struct tag, trying to unmarshal unquoted value into bool"
        );
        assert_eq!(
            decode(BoolString, at, &json!("no")).unwrap_err(),
            "json: invalid use of ,string struct tag, trying to unmarshal \"no\" into bool"
        );
        let at = ("ScheduleConfig", "max-store-down-time");
        assert_eq!(decode(Duration, at, &json!("1h")).unwrap(), Some(json!("1h0m0s")));
        assert_eq!(decode(Duration, at, &json!(60)).unwrap_err(), "invalid syntax");
        assert_eq!(decode(Duration, at, &json!("60")).unwrap_err(), "time: missing unit in duration \"60\"");
        assert_eq!(decode(Duration, at, &json!("1x")).unwrap_err(), "time: unknown unit \"x\" in duration \"1x\"");
        let at = ("ReplicationConfig", "location-labels");
        assert_eq!(decode(StringSlice, at, &json!("zone,host")).unwrap(), Some(json!("zone,host")));
        assert_eq!(decode(StringSlice, at, &json!(["zone"])).unwrap_err(), "invalid syntax");
    }

    #[test]
    fn numbers_and_values_print_as_go_prints_them() {
        let n = |v: Value| go_number(v.as_number().unwrap());
        assert_eq!(n(json!(8)), "8");
        assert_eq!(n(json!(-1)), "-1");
        assert_eq!(n(json!(1.5)), "1.5");
        assert_eq!(n(json!(1e21)), "1e+21");
        assert_eq!(go_value(&json!(true)), "true");
        assert_eq!(go_value(&json!(null)), "<nil>");
        assert_eq!(go_value(&json!([1, "a"])), "[1 a]");
    }

    #[test]
    fn bodies_pd_cannot_read_get_gos_messages() {
        let err = |b: &[u8]| body_error(b, &serde_json::from_slice::<Map<String, Value>>(b).unwrap_err());
        assert_eq!(err(b""), "unexpected end of JSON input");
        assert_eq!(err(b"{\"a\": "), "unexpected end of JSON input");
        assert_eq!(err(b"[1]"), "json: cannot unmarshal array into Go value of type map[string]interface {}");
        assert_eq!(err(b"xyz"), "invalid character 'x' looking for beginning of value");
    }

    #[test]
    fn validation_follows_pds_rules() {
        let schedule = json!({
            "default-store-limit": {"add-peer": 15.0, "remove-peer": 15.0}, "tolerant-size-ratio": 0.0,
            "low-space-ratio": 0.8, "high-space-ratio": 0.7, "leader-schedule-policy": "count",
            "slow-store-evicting-affected-store-ratio-threshold": 0.3, "patrol-region-worker-count": 1,
        });
        assert_eq!(validate_schedule(&schedule), Ok(()));
        let with = |key: &str, v: Value| {
            let mut s = schedule.clone();
            s[key] = v;
            validate_schedule(&s)
        };
        assert_eq!(
            with("low-space-ratio", json!(0.6)),
            Err("low-space-ratio should be larger than high-space-ratio".into())
        );
        assert_eq!(with("leader-schedule-policy", json!("most")), Err("leader-schedule-policy most is invalid".into()));
        assert_eq!(
            with("disable-raft-learner", json!("true")),
            Err("disable-raft-learner has already been deprecated".into())
        );
        let replication = json!({"location-labels": "zone,host", "isolation-level": "rack"});
        assert_eq!(
            validate_replication(&replication),
            Err("isolation-level must be one of location-labels or empty".into())
        );
        assert!(
            validate_replication(&json!({"location-labels": "-zone"})).unwrap_err().contains("does not match format")
        );
        assert_eq!(validate_replication(&json!({"location-labels": "zone,host", "isolation-level": "zone"})), Ok(()));
        let pd = json!({"key-type": "table", "server-memory-limit": 0.0, "server-memory-limit-gc-trigger": 0.7, "gc-tuner-threshold": 0.6});
        assert_eq!(validate_pd_server(&pd), Ok(()));
        let mut bad = pd.clone();
        bad["key-type"] = json!("blob");
        assert_eq!(validate_pd_server(&bad), Err("key-type blob is invalid".into()));
        assert!(legal_log_level("WARN") && !legal_log_level("trace"));
    }
}
