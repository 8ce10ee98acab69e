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
