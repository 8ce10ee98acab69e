//! TiKV's online configuration change, as its status server's `POST /config` does it
//! (tikv/tikv:src/server/status_server/mod.rs `update_config`, and the config
//! controller in tikv/tikv:src/config/mod.rs `ConfigController`, `to_config_change`).
//!
//! The body is a JSON object of dotted keys (`{"raftstore.raft-log-gc-threshold": 100}`);
//! every value is turned into text first (booleans and numbers as written, strings as
//! they are; arrays, objects and `null` are refused). Each key is then walked down
//! TiKV's tree of config structs (`tikv_online_config.txt`, read from TiKV's source):
//! a name the tree does not have is `unexpect fields: <name>`, a field or section that
//! cannot change online (`#[online_config(skip)]` or `hidden`) is `config <name> can not
//! be changed`, a value its kind cannot parse is `failed to parse: <value>`. Names in
//! these texts are TiKV's field names (snake case). Nothing is applied unless every key
//! passes, as in TiKV, where the whole change is checked before any of it is applied.
//!
//! Not modelled: TiKV's `validate()` of the changed config (range checks such as
//! `raft-log-gc-threshold >= 1`) and the parsing of enum-like strings (I/O priorities,
//! compression types), which TiKV refuses with their own texts; a log level is checked.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use serde_json::Value;

/// What a key takes: `Skip` cannot change online, the others are the value kinds of
/// TiKV's `ConfigValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Skip,
    U64,
    I32,
    U32,
    Usize,
    F64,
    Bool,
    Str,
    LogLevel,
    Size,
    Duration,
    Schedule,
}

impl Kind {
    fn parse(word: &str) -> Option<Kind> {
        Some(match word {
            "skip" => Kind::Skip,
            "u64" => Kind::U64,
            "i32" => Kind::I32,
            "u32" => Kind::U32,
            "usize" => Kind::Usize,
            "f64" => Kind::F64,
            "bool" => Kind::Bool,
            "string" => Kind::Str,
            "log-level" => Kind::LogLevel,
            "size" => Kind::Size,
            "duration" => Kind::Duration,
            "schedule" => Kind::Schedule,
            _ => return None,
        })
    }
}

/// The column families whose options the `@cf` lines of the table give.
const COLUMN_FAMILIES: [&str; 5] =
    ["rocksdb.defaultcf", "rocksdb.writecf", "rocksdb.lockcf", "rocksdb.raftcf", "raftdb.defaultcf"];

/// One key: how `tikv.toml` (and `GET /config`) spells it, and its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub toml: String,
    pub kind: Kind,
}

/// Every key by its online path (`raft_store.raft_log_gc_threshold`).
static TABLE: LazyLock<BTreeMap<String, Key>> = LazyLock::new(|| {
    let mut table = BTreeMap::new();
    for line in include_str!("tikv_online_config.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cf, rest) = match line.strip_prefix("@cf ") {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let Some((path, kind)) = rest.split_once(' ').and_then(|(p, k)| Some((p, Kind::parse(k.trim())?))) else {
            continue;
        };
        let paths: Vec<String> =
            if cf { COLUMN_FAMILIES.iter().map(|f| format!("{f}.{path}")).collect() } else { vec![path.to_owned()] };
        for path in paths {
            table.insert(tree_path(&path), Key { toml: toml_spelling(&path), kind });
        }
    }
    table
});

/// How `tikv.toml` spells a table path: the raftstore batch-system sections are
/// flattened into `raftstore` with a prefix (`raftstore.apply-pool-size`).
fn toml_spelling(path: &str) -> String {
    for pool in ["store", "apply"] {
        if let Some(field) = path.strip_prefix(&format!("raftstore.{pool}-batch-system.")) {
            return format!("raftstore.{pool}-{field}");
        }
    }
    path.to_owned()
}

/// A table path as a path of TiKV's struct fields.
fn tree_path(toml: &str) -> String {
    toml.replace("raftstore", "raft_store").replace('-', "_")
}

/// The path TiKV looks a requested key up by (its `serde_to_online_config`): TOML
/// spelling to field names, and the four raftstore pool keys that the TOML flattens
/// out of their batch-system sections put back into them.
pub fn online_path(key: &str) -> String {
    let path = tree_path(key);
    for pool in ["store", "apply"] {
        for field in ["pool_size", "max_batch_size"] {
            if path == format!("raft_store.{pool}_{field}") {
                return format!("raft_store.{pool}_batch_system.{field}");
            }
        }
    }
    path
}

/// The key at an online path, if the tree has one there.
pub fn lookup(online: &str) -> Option<&'static Key> {
    TABLE.get(online)
}

/// Whether the tree has a section (a submodule) at this online path.
fn is_section(online: &str) -> bool {
    let prefix = format!("{online}.");
    TABLE.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))
}

/// One accepted change: where `GET /config` shows it and the value as TiKV prints it.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub toml: String,
    pub value: Value,
}

/// Why a change is refused: TiKV's error text (the controller's message, before the
/// status server wraps it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("unexpect fields: {0}")]
    Unknown(String),
    #[error("config {0} can not be changed")]
    Immutable(String),
    #[error("failed to parse: {0}")]
    Parse(String),
    #[error("invalid log level: '{0}'")]
    LogLevel(String),
}

/// The body's object as TiKV reads it (`decode_json`): every value as text.
/// `Err` is the decoding error as TiKV's status server prints it with `{:?}`.
pub fn decode_body(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("{e:?}"))?;
    let Value::Object(map) = json else { return Err(format!("{:?}", "wrong format")) };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let text = match value {
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => s,
            Value::Array(_) => return Err(format!("{:?}", "array type are not supported")),
            Value::Null | Value::Object(_) => return Err(format!("{:?}", "wrong format")),
        };
        out.insert(key, text);
    }
    Ok(out)
}

/// Checks every key and value; all of them or none (the first refusal, in key order;
/// TiKV checks in hash order, so which of several bad keys it names is arbitrary).
pub fn to_changes(input: &BTreeMap<String, String>) -> Result<Vec<Change>, ChangeError> {
    input.iter().map(|(key, value)| to_change(key, value)).collect()
}

fn to_change(key: &str, value: &str) -> Result<Change, ChangeError> {
    let online = online_path(key);
    let fields: Vec<&str> = online.split('.').collect();
    for depth in 1..=fields.len() {
        let path = fields[..depth].join(".");
        let field = fields[depth - 1];
        if let Some(found) = lookup(&path) {
            if found.kind == Kind::Skip {
                return Err(ChangeError::Immutable(field.to_owned()));
            }
            if depth < fields.len() {
                return Err(ChangeError::Unknown(fields[depth..].join(".")));
            }
            let parsed = parse_value(found.kind, value)?;
            return Ok(Change { toml: found.toml.clone(), value: parsed });
        }
        if !is_section(&path) {
            return Err(ChangeError::Unknown(field.to_owned()));
        }
    }
    // A key naming a whole section changes nothing, and TiKV accepts it.
    Ok(Change { toml: String::new(), value: Value::Null })
}

/// The value of a key of `kind` given as `text`, as `GET /config` then shows it.
fn parse_value(kind: Kind, text: &str) -> Result<Value, ChangeError> {
    let v = text.trim_matches('"');
    let bad = || ChangeError::Parse(text.to_owned());
    Ok(match kind {
        Kind::Skip => return Err(bad()),
        Kind::U64 => v.parse::<u64>().map_err(|_| bad())?.into(),
        Kind::I32 => v.parse::<i32>().map_err(|_| bad())?.into(),
        Kind::U32 => v.parse::<u32>().map_err(|_| bad())?.into(),
        Kind::Usize => v.parse::<usize>().map_err(|_| bad())?.into(),
        Kind::F64 => {
            let f = v.parse::<f64>().map_err(|_| bad())?;
            serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
        }
        Kind::Bool => v.parse::<bool>().map_err(|_| bad())?.into(),
        Kind::Str => v.into(),
        Kind::LogLevel => log_level(v).ok_or_else(|| ChangeError::LogLevel(v.to_owned()))?.into(),
        Kind::Size => size_text(parse_size(v).ok_or_else(bad)?).into(),
        Kind::Duration => duration_text(parse_duration(v).ok_or_else(bad)?).into(),
        Kind::Schedule => match serde_json::from_str::<Value>(v) {
            Ok(Value::Array(items)) => Value::Array(items.into_iter().filter(Value::is_string).collect()),
            _ => return Err(bad()),
        },
    })
}

/// TiKV's log level names (`get_level_by_string`, then printed in full).
fn log_level(text: &str) -> Option<&'static str> {
    Some(match text.to_lowercase().as_str() {
        "fatal" | "critical" => "fatal",
        "error" => "error",
        "warning" | "warn" => "warn",
        "debug" => "debug",
        "trace" => "trace",
        "info" => "info",
        _ => return None,
    })
}

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const TIB: u64 = 1 << 40;
const PIB: u64 = 1 << 50;

/// A `ReadableSize` (tikv/tikv:components/tikv_util/src/config.rs): binary units,
/// case-sensitive, `B` or no unit for bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let s = text.trim();
    if s.is_empty() || !s.is_ascii() {
        return None;
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let unit = match unit.trim() {
        "K" | "KB" | "KiB" => KIB,
        "M" | "MB" | "MiB" => MIB,
        "G" | "GB" | "GiB" => GIB,
        "T" | "TB" | "TiB" => TIB,
        "P" | "PB" | "PiB" => PIB,
        "B" | "" if number.chars().all(|c| c.is_ascii_digit()) => return number.parse().ok(),
        "B" | "" => 1,
        _ => return None,
    };
    let n: f64 = number.parse().ok()?;
    Some((n * unit as f64) as u64)
}

/// How TiKV prints a size: the largest binary unit that divides it, `0KiB` for zero.
pub fn size_text(bytes: u64) -> String {
    if bytes == 0 {
        return "0KiB".to_owned();
    }
    for (unit, name) in [(PIB, "PiB"), (TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes.is_multiple_of(unit) {
            return format!("{}{name}", bytes / unit);
        }
    }
    format!("{bytes}B")
}

const US: u64 = 1;
const MS: u64 = 1_000 * US;
const SECOND: u64 = 1_000 * MS;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// A `ReadableDuration`: units `d h m s ms us` in that order (`1h30m`, `500ms`), no
/// bare numbers; microsecond resolution.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let s = text.trim();
    if !s.is_ascii() {
        return None;
    }
    let mut left = s.as_bytes();
    let mut last_unit = DAY + 1;
    let mut micros = 0f64;
    while let Some(idx) = left.iter().position(|c| b"dhmsu".contains(c)) {
        let (number, rest) = left.split_at(idx);
        let unit = if rest.starts_with(b"ms") {
            left = &left[idx + 2..];
            MS
        } else if rest.starts_with(b"us") {
            left = &left[idx + 2..];
            US
        } else {
            let unit = match rest[0] {
                b'd' => DAY,
                b'h' => HOUR,
                b'm' => MINUTE,
                b's' => SECOND,
                _ => return None,
            };
            left = &left[idx + 1..];
            unit
        };
        if unit >= last_unit {
            return None;
        }
        let n: f64 = std::str::from_utf8(number).ok()?.trim().parse().ok()?;
        micros += n * unit as f64;
        last_unit = unit;
    }
    if !left.is_empty() || micros.is_sign_negative() {
        return None;
    }
    let micros = micros as u64;
    Some(Duration::new(micros / SECOND, ((micros % SECOND) * 1_000) as u32))
}

/// How TiKV prints a duration (`1h30m`, `10s`, `1s500ms`, `0s`).
pub fn duration_text(d: Duration) -> String {
    let mut left = d.as_micros() as u64;
    let mut out = String::new();
    for (unit, name) in [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s"), (MS, "ms")] {
        if left >= unit {
            out.push_str(&format!("{}{name}", left / unit));
            left %= unit;
        }
    }
    if left > 0 {
        out.push_str(&format!("{left}us"));
    }
    if out.is_empty() { "0s".to_owned() } else { out }
}

/// Writes the changes into a config shown as JSON (kebab-case sections).
pub fn apply(config: &mut Value, changes: &[Change]) {
    for change in changes.iter().filter(|c| !c.toml.is_empty()) {
        if !config.is_object() {
            *config = Value::Object(serde_json::Map::new());
        }
        let mut at = &mut *config;
        let mut parts = change.toml.split('.').peekable();
        while let Some(part) = parts.next() {
            let Some(obj) = at.as_object_mut() else { break };
            if parts.peek().is_none() {
                obj.insert(part.to_owned(), change.value.clone());
                break;
            }
            let next = obj.entry(part.to_owned()).or_insert_with(|| Value::Object(serde_json::Map::new()));
            if !next.is_object() {
                *next = Value::Object(serde_json::Map::new());
            }
            at = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(pairs: &[(&str, &str)]) -> Result<Vec<Change>, ChangeError> {
        to_changes(&pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn the_table_has_the_keys_operators_change_most() {
        let online = |k: &str| lookup(&online_path(k)).map(|key| key.kind);
        assert_eq!(online("raftstore.raft-log-gc-threshold"), Some(Kind::U64));
        assert_eq!(online("storage.block-cache.capacity"), Some(Kind::Size));
        assert_eq!(online("server.graceful-shutdown-timeout"), Some(Kind::Duration));
        assert_eq!(online("rocksdb.writecf.max-write-buffer-number"), Some(Kind::I32));
        assert_eq!(online("raftdb.defaultcf.titan.blob-run-mode"), Some(Kind::Str));
        assert_eq!(online("log.level"), Some(Kind::LogLevel));
        assert_eq!(online("raftstore.apply-pool-size"), Some(Kind::Usize));
        for fixed in ["server.addr", "storage.data-dir", "raftstore.capacity", "server.labels", "storage.reserve-space"]
        {
            assert_eq!(online(fixed), Some(Kind::Skip), "{fixed}");
        }
        assert!(TABLE.len() > 700, "{}", TABLE.len());
    }

    #[test]
    fn accepted_values_are_shown_as_tikv_prints_them() {
        let changes = change(&[
            ("raftstore.raft-log-gc-threshold", "100"),
            ("storage.block-cache.capacity", "2GB"),
            ("raftstore.raft-log-gc-tick-interval", "\"90s\""),
            ("gc.enable-compaction-filter", "false"),
            ("log.level", "WARNING"),
            ("raftstore.apply-pool-size", "4"),
        ])
        .unwrap();
        let shown: BTreeMap<&str, &Value> = changes.iter().map(|c| (c.toml.as_str(), &c.value)).collect();
        assert_eq!(shown["raftstore.raft-log-gc-threshold"], 100);
        assert_eq!(shown["storage.block-cache.capacity"], "2GiB");
        assert_eq!(shown["raftstore.raft-log-gc-tick-interval"], "1m30s");
        assert_eq!(shown["gc.enable-compaction-filter"], false);
        assert_eq!(shown["log.level"], "warn");
        assert_eq!(shown["raftstore.apply-pool-size"], 4, "the TOML spelling, not the online path");
    }

    #[test]
    fn refusals_name_the_field_as_tikv_does() {
        let err = |k: &str, v: &str| change(&[(k, v)]).unwrap_err().to_string();
        assert_eq!(err("server.addr", "0.0.0.0:1"), "config addr can not be changed");
        assert_eq!(err("storage.data-dir", "/x"), "config data_dir can not be changed");
        assert_eq!(err("pd.endpoints", "x"), "config pd can not be changed");
        assert_eq!(err("raftstore.capacity", "1GB"), "config capacity can not be changed");
        assert_eq!(err("server.no-such-key", "1"), "unexpect fields: no_such_key");
        assert_eq!(err("nonsense", "1"), "unexpect fields: nonsense");
        assert_eq!(err("raftstore.raft-log-gc-threshold.x", "1"), "unexpect fields: x");
        assert_eq!(err("raftstore.raft-log-gc-threshold", "lots"), "failed to parse: lots");
        assert_eq!(err("storage.block-cache.capacity", "2gb"), "failed to parse: 2gb");
        assert_eq!(err("raftstore.raft-log-gc-tick-interval", "10"), "failed to parse: 10");
        assert_eq!(err("log.level", "loud"), "invalid log level: 'loud'");
        // One bad key refuses the whole change.
        assert!(change(&[("raftstore.raft-log-gc-threshold", "100"), ("server.addr", "x")]).is_err());
        // A whole section is accepted and changes nothing.
        assert_eq!(change(&[("server", "1")]).unwrap()[0].toml, "");
    }

    #[test]
    fn bodies_decode_as_tikv_reads_them() {
        let body = br#"{"a": 1, "b": true, "c": "2GB", "d": 1.5}"#;
        let decoded = decode_body(body).unwrap();
        assert_eq!(decoded["a"], "1");
        assert_eq!(decoded["b"], "true");
        assert_eq!(decoded["c"], "2GB");
        assert_eq!(decoded["d"], "1.5");
        assert_eq!(decode_body(br#"{"a": [1]}"#).unwrap_err(), "\"array type are not supported\"");
        assert_eq!(decode_body(br#"{"a": null}"#).unwrap_err(), "\"wrong format\"");
        assert_eq!(decode_body(b"[]").unwrap_err(), "\"wrong format\"");
        assert_eq!(decode_body(b"").unwrap_err(), "Error(\"EOF while parsing a value\", line: 1, column: 0)");
    }

    #[test]
    fn sizes_and_durations_round_trip_like_tikv() {
        assert_eq!(parse_size("2GB"), Some(2 << 30));
        assert_eq!(parse_size("1.5KiB"), Some(1536));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("10kb"), None);
        assert_eq!(size_text(1536), "1536B");
        assert_eq!(size_text(3 << 20), "3MiB");
        assert_eq!(size_text(0), "0KiB");
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("200us"), Some(Duration::from_micros(200)));
        assert_eq!(parse_duration("30m1h"), None, "units out of order");
        assert_eq!(parse_duration("30"), None);
        assert_eq!(duration_text(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(duration_text(Duration::from_secs(90_000)), "1d1h");
        assert_eq!(duration_text(Duration::ZERO), "0s");
    }

    #[test]
    fn changes_land_at_their_toml_path() {
        let mut config = serde_json::json!({"raftstore": {"capacity": "10GiB"}});
        apply(&mut config, &change(&[("raftstore.raft-log-gc-threshold", "7"), ("server", "x")]).unwrap());
        assert_eq!(config, serde_json::json!({"raftstore": {"capacity": "10GiB", "raft-log-gc-threshold": 7}}));
    }
}
