//! A PD client that is not the operator, for tests: what an SRE does with `pd-ctl`
//! (`scheduler add evict-leader-scheduler 4`, `scheduler remove
//! evict-leader-scheduler-4`), sent through the proxy under its own User-Agent, so that
//! the PD write log and the safety watcher see it as someone else's write.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use serde_json::{Value, json};

use crate::proxy::{Ctx, exchange};

/// The User-Agent of [`PdCtl`] unless set otherwise.
pub const PD_CTL_USER_AGENT: &str = "pd-ctl";

/// PD's answer to a request it did not accept (or the proxy's, if PD was unreachable).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pd-ctl: {method} {path}: {status} {body}")]
pub struct PdCtlError {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: String,
}

/// pd-ctl pointed at one PD URL (`-u http://basic-pd.db.svc:2379`); cheap to clone.
#[derive(Clone)]
pub struct PdCtl {
    ctx: Arc<Ctx>,
    pd: String,
    user_agent: String,
}

impl PdCtl {
    pub(crate) fn new(ctx: Arc<Ctx>, pd_url: &str) -> PdCtl {
        PdCtl { ctx, pd: pd_url.trim_end_matches('/').to_owned(), user_agent: PD_CTL_USER_AGENT.to_owned() }
    }

    /// Acts under another User-Agent (an SRE's script, another controller).
    pub fn user_agent(mut self, user_agent: &str) -> PdCtl {
        user_agent.clone_into(&mut self.user_agent);
        self
    }

    /// `scheduler add evict-leader-scheduler <store>`.
    pub async fn evict_leader_add(&self, store: u64) -> Result<(), PdCtlError> {
        let body = json!({"name": "evict-leader-scheduler", "store_id": store});
        self.call(Method::POST, "/pd/api/v1/schedulers", Some(body)).await.map(drop)
    }

    /// `scheduler remove evict-leader-scheduler-<store>`: PD answers 404 when the store
    /// is not evicted.
    pub async fn evict_leader_remove(&self, store: u64) -> Result<(), PdCtlError> {
        let path = format!("/pd/api/v1/schedulers/evict-leader-scheduler-{store}");
        self.call(Method::DELETE, &path, None).await.map(drop)
    }

    /// `scheduler config evict-leader-scheduler`: the evicted stores (none when PD has no
    /// evict-leader scheduler).
    pub async fn evict_leader_stores(&self) -> Result<Vec<u64>, PdCtlError> {
        match self.call(Method::GET, "/pd/api/v1/scheduler-config/evict-leader-scheduler/list", None).await {
            Ok(config) => {
                let ranges = config["store-id-ranges"].as_object().cloned().unwrap_or_default();
                Ok(ranges.keys().filter_map(|k| k.parse().ok()).collect())
            }
            Err(e) if e.status == 404 => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `member leader resign`: the leader steps down and PD elects again (PD has no
    /// leader for its election delay).
    pub async fn leader_resign(&self) -> Result<(), PdCtlError> {
        self.call(Method::POST, "/pd/api/v1/leader/resign", None).await.map(drop)
    }

    /// `member leader transfer <name>`: the member `name` becomes PD's leader.
    pub async fn leader_transfer(&self, name: &str) -> Result<(), PdCtlError> {
        self.call(Method::POST, &format!("/pd/api/v1/leader/transfer/{name}"), None).await.map(drop)
    }

    /// `member delete name <name>`.
    pub async fn member_delete(&self, name: &str) -> Result<(), PdCtlError> {
        self.call(Method::DELETE, &format!("/pd/api/v1/members/name/{name}"), None).await.map(drop)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, PdCtlError> {
        let fail =
            |status: u16, body: String| PdCtlError { method: method.to_string(), path: path.to_owned(), status, body };
        let uri: http::Uri = format!("{}{path}", self.pd).parse().map_err(|e| fail(0, format!("bad URL: {e}")))?;
        let mut headers = HeaderMap::new();
        let agent = HeaderValue::from_str(&self.user_agent).map_err(|e| fail(0, format!("bad User-Agent: {e}")))?;
        headers.insert(header::USER_AGENT, agent);
        let bytes = match body {
            Some(body) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        let response = exchange(&self.ctx, None, method.clone(), &uri, headers, bytes).await;
        let status = response.status().as_u16();
        let text = axum::body::to_bytes(response.into_body(), crate::http::BODY_LIMIT)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if !(200..300).contains(&status) {
            return Err(fail(status, text));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}
