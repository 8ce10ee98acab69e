//! Online configuration changes: TiKV's status server (`GET`/`POST /config` on a store's
//! status address, reached with this client's transport, TLS and proxy) and PD's
//! `POST /pd/api/v1/config`. Neither binary re-reads its config file; these are the only
//! ways a running process takes a new value.

use reqwest::Method;
use serde_json::{Map, Value};
use url::Url;

use super::{Call, PdClient, decode};
use crate::error::{PdError, Result};

impl PdClient {
    /// `GET <status>/config`: the store's whole running config, nested by section.
    pub async fn store_config(&self, status_url: &str) -> Result<Value> {
        let base = parse(status_url)?;
        let answer = self.execute_on(&Call::get("/config"), Some(&base)).await?;
        decode("/config", &answer)
    }

    /// `POST <status>/config?persist=false` with dotted keys: applied at once, all or
    /// nothing. Not persisted: TiKV's config file is a read-only ConfigMap, which the
    /// operator rewrites itself, so a restart keeps the change.
    pub async fn update_store_config(&self, status_url: &str, changes: &Map<String, Value>) -> Result<()> {
        let base = parse(status_url)?;
        let call =
            Call::write(Method::POST, "/config").query("persist", "false").json_body(&Value::Object(changes.clone()));
        self.execute_on(&call, Some(&base)).await.map(drop)
    }

    /// The leaders a store counts itself (`GET <status>/metrics`,
    /// `tikv_raftstore_region_count{type="leader"}`): fresher than PD's view, which a
    /// heartbeat brings.
    pub async fn store_leader_count(&self, status_url: &str) -> Result<u64> {
        let base = parse(status_url)?;
        let answer = self.execute_on(&Call::get("/metrics"), Some(&base)).await?;
        let text = String::from_utf8_lossy(&answer.body);
        leader_count(&text).ok_or_else(|| PdError::Http {
            status: answer.status,
            path: "/metrics".into(),
            body: "no tikv_raftstore_region_count{type=\"leader\"} sample".into(),
        })
    }

    /// `GET /pd/api/v1/config` as JSON, every section.
    pub async fn pd_config_json(&self) -> Result<Value> {
        const PATH: &str = "/pd/api/v1/config";
        let answer = self.execute(&Call::get(PATH)).await?;
        decode(PATH, &answer)
    }

    /// `POST /pd/api/v1/config` with one dotted key (PD applies several keys one by one
    /// and stops at the first it refuses, so one at a time says which).
    pub async fn update_pd_config(&self, key: &str, value: &Value) -> Result<()> {
        let body = Value::Object(Map::from_iter([(key.to_string(), value.clone())]));
        let call = Call::write(Method::POST, "/pd/api/v1/config").json_body(&body);
        self.execute(&call).await.map(drop)
    }
}

fn parse(status_url: &str) -> Result<Url> {
    Url::parse(status_url).map_err(|e| PdError::Config(format!("invalid status URL {status_url:?}: {e}")))
}

/// The value of `tikv_raftstore_region_count{type="leader"}` in a Prometheus text page.
pub fn leader_count(page: &str) -> Option<u64> {
    page.lines().filter(|l| l.starts_with("tikv_raftstore_region_count{") && l.contains("type=\"leader\"")).find_map(
        |l| {
            let value: f64 = l.rsplit_once(' ')?.1.trim().parse().ok()?;
            (value >= 0.0).then_some(value as u64)
        },
    )
}

/// A TOML or JSON config as dotted keys to values (`raftstore.raft-log-gc-threshold`);
/// arrays and scalars are leaves.
pub fn flatten(value: &Value) -> Map<String, Value> {
    fn walk(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, value) in map {
                    let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                    walk(&path, value, out);
                }
            }
            _ if !prefix.is_empty() => {
                out.insert(prefix.to_string(), value.clone());
            }
            _ => {}
        }
    }
    let mut out = Map::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_leader_count_is_read_from_the_metrics_page() {
        let page = "# HELP x\ntikv_raftstore_region_count{type=\"region\"} 30\ntikv_raftstore_region_count{type=\"leader\"} 12\n";
        assert_eq!(leader_count(page), Some(12));
        assert_eq!(leader_count("tikv_raftstore_region_count{type=\"leader\"} 0"), Some(0));
        assert_eq!(leader_count("nothing here"), None);
    }

    #[test]
    fn a_config_flattens_to_dotted_keys() {
        let config = json!({"raftstore": {"raft-log-gc-threshold": 100, "x": {"y": "1s"}}, "log-level": "info", "labels": ["a"]});
        let flat = flatten(&config);
        assert_eq!(flat["raftstore.raft-log-gc-threshold"], json!(100));
        assert_eq!(flat["raftstore.x.y"], json!("1s"));
        assert_eq!(flat["log-level"], json!("info"));
        assert_eq!(flat["labels"], json!(["a"]));
        assert_eq!(flat.len(), 4);
    }
}
