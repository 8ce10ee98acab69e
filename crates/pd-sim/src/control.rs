//! The simulator's control API: the in-process [`Control`] handle, mirrored over HTTP
//! under `/sim/...` on the cluster address.
//!
//! Mapping from Kubernetes (for kube-sim): a pod starting `tikv-server` with advertise
//! address X is [`Control::start_store`] with `address: X` and, when its PVC already
//! holds a store ID, `store_id: Some(id)` (the same store comes back, possibly with a new
//! `version`); without one, PD allocates a new ID, which the caller keeps with the PVC.
//! The pod stopping is [`Control::stop_store`]. PD pods map to `add_member` (a fresh
//! data directory joins), `stop_member` / `start_member` (same data) and `wipe_member`
//! (PVC deleted).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::faults::Fault;
use crate::model::data::{KeyCheck, Unavailable};
use crate::model::member::MemberError;
use crate::model::{Snapshot, StoreError, StoreSpec, StoreStartError};
use crate::preset::Knobs;
use crate::server::serve;
use crate::shared::{Endpoint, Shared};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    StoreStart(#[from] StoreStartError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Member(#[from] MemberError),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl ControlError {
    fn status(&self) -> StatusCode {
        match self {
            ControlError::Store(StoreError::NotFound(_)) | ControlError::Member(MemberError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            ControlError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ControlError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ControlError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::CONFLICT,
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": self.to_string()});
        if let ControlError::Unavailable(why) = &self
            && let (Some(body), Ok(serde_json::Value::Object(fields))) =
                (body.as_object_mut(), serde_json::to_value(why))
        {
            body.extend(fields);
        }
        (self.status(), Json(body)).into_response()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartedStore {
    pub id: u64,
    /// Where the simulator serves this store's status API.
    pub status_url: String,
    /// The address PD shows as `status_address`.
    pub status_address: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberSpec {
    pub name: Option<String>,
    /// Advertised client URLs; default: the member's own listener URL.
    pub client_urls: Option<Vec<String>>,
    pub peer_urls: Option<Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartedMember {
    pub name: String,
    pub member_id: u64,
    /// This member's own address (answers as this member).
    pub url: String,
}

/// The in-process control handle; cheap to clone.
#[derive(Clone)]
pub struct Control {
    pub(crate) shared: Arc<Shared>,
}

impl Control {
    fn url(&self, addr: SocketAddr) -> String {
        format!("{}://{addr}", self.shared.scheme())
    }

    /// A TiKV process starts (see the module doc for the Kubernetes mapping).
    pub async fn start_store(&self, spec: StoreSpec) -> Result<StartedStore, ControlError> {
        let shared = &self.shared;
        let mut servers = shared.servers.lock().await;
        let previous = spec.store_id.and_then(|id| servers.status.get(&id)).map(|e| (e.addr, e.tls.clone()));
        // A restart keeps what the listener served with until its process says otherwise
        // ([`set_store_tls`](Self::set_store_tls)); a new store starts with the default.
        let tls = previous.as_ref().map_or_else(|| shared.tls_slot(), |(_, tls)| tls.clone());
        let cell = Arc::new(AtomicU64::new(spec.store_id.unwrap_or(0)));
        let router = crate::status_server::router_for(shared.clone(), cell.clone());
        let served = match previous {
            Some((addr, _)) => match serve(addr, router.clone(), tls.clone()).await {
                Ok(served) => served,
                Err(_) => serve(SocketAddr::new(shared.host, 0), router, tls.clone()).await?,
            },
            None => serve(SocketAddr::new(shared.host, 0), router, tls.clone()).await?,
        };
        let addr = served.addr();
        let mut spec = spec;
        if spec.status_address.is_empty() {
            spec.status_address = addr.to_string();
        }
        let id = shared.mutate(|c| c.start_store(spec))?;
        cell.store(id, Ordering::Release);
        let status_address = shared.lock().stores.get(&id).map(|s| s.status_address.clone()).unwrap_or_default();
        servers.status.insert(id, Endpoint { addr, served: Some(served), tls });
        Ok(StartedStore { id, status_url: self.url(addr), status_address })
    }

    /// Convenience: a new store at `address` with default labels and version.
    pub async fn register_store(&self, address: &str) -> Result<StartedStore, ControlError> {
        self.start_store(StoreSpec { address: address.to_owned(), ..Default::default() }).await
    }

    /// The same store's process starts again (same ID), optionally with a new version.
    pub async fn restart_store(&self, id: u64, version: Option<&str>) -> Result<StartedStore, ControlError> {
        let address = self.shared.lock().stores.get(&id).map(|s| s.address.clone()).ok_or(StoreError::NotFound(id))?;
        let spec = StoreSpec {
            address,
            store_id: Some(id),
            version: version.unwrap_or_default().to_owned(),
            ..Default::default()
        };
        self.start_store(spec).await
    }

    /// The TiKV process stops (pod deleted or crashed): heartbeats stop, its status
    /// server goes away (its listener is closed when this returns, so a restart can bind
    /// the same port at once).
    pub async fn stop_store(&self, id: u64) -> Result<(), ControlError> {
        self.shared.mutate(|c| c.stop_store(id))?;
        self.shared.sync_servers().await;
        Ok(())
    }

    /// Replaces the store's config, both the running one shown on its status `/config`
    /// and the one its next start reads, as if its config file had said so when the
    /// process started (a test's shortcut; real TiKV never re-reads its file).
    pub fn set_store_config(&self, id: u64, config: serde_json::Value) -> Result<(), ControlError> {
        self.shared.mutate(|c| {
            let store = c.stores.get_mut(&id).ok_or(StoreError::NotFound(id))?;
            store.config = config.clone();
            store.file_config = config;
            Ok(())
        })
    }

    /// Stalls (or, with `false`, resumes) leader transfers away from store `id`, as when
    /// a TiKV under evict-leader does not let its leaders go (tikv/tikv#7949): the
    /// transfer-leader operators PD creates keep failing, so evict-leader makes no
    /// progress on it, while the store stays Up, heartbeats and takes part in everything
    /// else. The setting outlives restarts of the store's process.
    pub fn set_leader_transfer_stalled(&self, id: u64, stalled: bool) -> Result<(), ControlError> {
        self.shared.mutate(|c| {
            if !c.stores.contains_key(&id) {
                return Err(StoreError::NotFound(id).into());
            }
            if stalled {
                c.stalled_leader_transfers.insert(id);
            } else {
                c.stalled_leader_transfers.remove(&id);
            }
            Ok(())
        })
    }

    /// A new PD member joins with an empty data directory. The first member of a cluster
    /// started without any bootstraps it, and is elected leader after PD's leader-change
    /// delay.
    pub async fn add_member(&self, spec: MemberSpec) -> Result<StartedMember, ControlError> {
        let shared = &self.shared;
        let mut servers = shared.servers.lock().await;
        let name = match spec.name {
            Some(name) => name,
            None => {
                let taken: Vec<String> = shared.lock().members.list.iter().map(|m| m.name.clone()).collect();
                (0..).map(|i| format!("pd-{i}")).find(|n| !taken.contains(n)).unwrap_or_default()
            }
        };
        let router = crate::api::router(crate::api::Ctx { shared: shared.clone(), member: Some(name.clone()) });
        let tls = shared.tls_slot();
        let served = serve(SocketAddr::new(shared.host, 0), router, tls.clone()).await?;
        let addr = served.addr();
        let url = self.url(addr);
        let client_urls = spec.client_urls.unwrap_or_else(|| vec![url.clone()]);
        let peer_urls = spec.peer_urls.unwrap_or_else(|| vec![format!("{}://{name}:2380", shared.scheme())]);
        let member_id = shared.mutate(|c| c.add_member(name.clone(), peer_urls, client_urls))?;
        servers.members.insert(name.clone(), Endpoint { addr, served: Some(served), tls });
        Ok(StartedMember { name, member_id, url })
    }

    /// The member's client listener serves with `tls` (PEM material, or plain HTTP with
    /// `None`) on new connections from now on; open connections keep theirs. What a
    /// simulated `pd-server` does when it starts with its `[security]` settings and
    /// client URL scheme (its listener's connections were closed when the old process
    /// stopped), and when its certificate files change while it runs. The setting
    /// outlives stops and starts of the member.
    pub async fn set_member_tls(&self, name: &str, tls: Option<&crate::TlsConfig>) -> Result<(), ControlError> {
        let acceptor =
            tls.map(crate::tls::acceptor).transpose().map_err(|e| ControlError::BadRequest(format!("{e:#}")))?;
        let servers = self.shared.servers.lock().await;
        let endpoint = servers.members.get(name).ok_or_else(|| MemberError::NotFound(name.to_owned()))?;
        endpoint.tls.set(acceptor);
        Ok(())
    }

    /// The store's status server serves with `tls` (or plain with `None`) on new
    /// connections from now on, as a TiKV process started with its `[security]` settings
    /// does, or one whose certificate files changed (see
    /// [`set_member_tls`](Self::set_member_tls)).
    pub async fn set_store_tls(&self, id: u64, tls: Option<&crate::TlsConfig>) -> Result<(), ControlError> {
        let acceptor =
            tls.map(crate::tls::acceptor).transpose().map_err(|e| ControlError::BadRequest(format!("{e:#}")))?;
        let servers = self.shared.servers.lock().await;
        let endpoint = servers.status.get(&id).ok_or(StoreError::NotFound(id))?;
        endpoint.tls.set(acceptor);
        Ok(())
    }

    /// Every request served over TLS so far, with the client certificate it presented.
    pub fn presented(&self) -> Vec<crate::Presented> {
        self.shared.presented.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The PD process stops; its data stays. Its listener is closed when this returns,
    /// so [`start_member`](Self::start_member) can bind the same port at once.
    pub async fn stop_member(&self, name: &str) -> Result<(), ControlError> {
        self.shared.mutate(|c| {
            c.members.stop(name)?;
            c.reconcile_members();
            Ok::<_, MemberError>(())
        })?;
        self.shared.sync_servers().await;
        Ok(())
    }

    /// A member of the initial cluster that has not started yet (its process never
    /// ran): it counts in the membership but not as started for etcd's reconfiguration
    /// checks until [`start_member`](Self::start_member).
    pub async fn unstart_member(&self, name: &str) -> Result<(), ControlError> {
        self.shared.mutate(|c| {
            c.members.unstart(name)?;
            c.reconcile_members();
            Ok::<_, MemberError>(())
        })?;
        self.shared.sync_servers().await;
        Ok(())
    }

    /// The PD process starts again with whatever data it has (see `Members::start`).
    pub async fn start_member(&self, name: &str) -> Result<(), ControlError> {
        self.shared.mutate(|c| {
            let new_id = c.alloc_member_id();
            let now = c.now;
            c.members.start(name, now, new_id)?;
            c.reconcile_members();
            Ok::<_, MemberError>(())
        })?;
        self.shared.sync_servers().await;
        Ok(())
    }

    /// The member's data directory is deleted (it must be stopped).
    pub fn wipe_member(&self, name: &str) -> Result<(), ControlError> {
        Ok(self.shared.mutate(|c| c.members.wipe(name))?)
    }

    pub async fn member_url(&self, name: &str) -> Option<String> {
        self.shared.servers.lock().await.members.get(name).map(|e| self.url(e.addr))
    }

    pub async fn status_url(&self, store: u64) -> Option<String> {
        self.shared.servers.lock().await.status.get(&store).map(|e| self.url(e.addr))
    }

    pub fn knobs(&self) -> Knobs {
        self.shared.lock().knobs.clone()
    }

    pub fn set_knobs(&self, knobs: Knobs) {
        self.shared.mutate(|c| c.set_knobs(knobs));
    }

    /// Applies a partial knobs object (kebab-case keys, Go duration strings).
    pub fn update_knobs(&self, patch: &serde_json::Value) -> Result<Knobs, ControlError> {
        self.shared.mutate(|c| {
            let next = c.knobs.merge(patch).map_err(ControlError::BadRequest)?;
            c.set_knobs(next.clone());
            Ok(next)
        })
    }

    pub fn set_speed(&self, speed: f64) {
        self.shared.clock.set_speed(speed);
        self.shared.changed.notify_one();
    }

    /// Jumps simulated time forward and processes everything due meanwhile.
    pub fn advance(&self, by: Duration) {
        self.shared.clock.advance(by);
        drop(self.shared.lock());
        self.shared.changed.notify_one();
    }

    pub fn inject_fault(&self, fault: Fault) {
        self.shared.faults().add(fault);
    }

    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Ground truth: stores with counts, regions, members, schedulers, operators.
    pub fn snapshot(&self) -> Snapshot {
        self.shared.lock().snapshot()
    }

    // ---- the data path (a TiKV client's writes and reads; see `model::data`) ----

    /// A client writes `key` (an encoded key, compared as PD shows region keys: upper-case
    /// hex) through the region owning it: acknowledged once raft commits it, refused when
    /// the region cannot commit now.
    pub fn put(&self, key: &str) -> Result<(), Unavailable> {
        self.shared.mutate(|c| c.put_key(key)).map(|_| ())
    }

    /// Which of `keys` no quorum of their region holds any more (lost), and which a
    /// quorum holds but cannot serve now (unreadable).
    pub fn check(&self, keys: &[String]) -> KeyCheck {
        self.shared.lock().check_keys(keys.iter().map(String::as_str))
    }

    /// The store's data directory is destroyed (its PVC and volume deleted): every
    /// replica on it is lost, its process (if running) stops, and its ID never starts
    /// again.
    pub async fn destroy_store_data(&self, id: u64) -> Result<(), ControlError> {
        self.shared.mutate(|c| c.destroy_store_data(id))?;
        self.shared.sync_servers().await;
        Ok(())
    }
}

/// `/sim/...` routes for the cluster address.
pub fn router(control: Control) -> Router {
    Router::new()
        .route("/sim/state", get(|State(c): State<Control>| async move { Json(c.snapshot()) }))
        .route("/sim/stores", post(http_start_store))
        .route("/sim/stores/{id}/stop", post(http_stop_store))
        .route("/sim/stores/{id}/start", post(http_restart_store))
        .route("/sim/stores/{id}/config", axum::routing::put(http_store_config))
        .route("/sim/stores/{id}/stall-leader-transfer", post(http_stall_leader_transfer))
        .route("/sim/stores/{id}/destroy", post(http_destroy_store))
        .route("/sim/kv/put", post(http_put))
        .route("/sim/kv/check", post(http_check))
        .route("/sim/members", post(http_add_member))
        .route("/sim/members/{name}/stop", post(http_stop_member))
        .route("/sim/members/{name}/start", post(http_start_member))
        .route("/sim/members/{name}/wipe", post(http_wipe_member))
        .route("/sim/knobs", get(|State(c): State<Control>| async move { Json(c.knobs()) }).patch(http_knobs))
        .route("/sim/clock", post(http_clock))
        .route("/sim/faults", get(http_faults).post(http_add_fault).delete(http_clear_faults))
        .with_state(control)
}

fn body_json<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ControlError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ControlError::BadRequest(e.to_string()))
}

async fn http_start_store(State(c): State<Control>, body: Bytes) -> Result<Json<StartedStore>, ControlError> {
    let spec: StoreSpec = body_json(&body)?;
    Ok(Json(c.start_store(spec).await?))
}

async fn http_stop_store(State(c): State<Control>, Path(id): Path<u64>) -> Result<StatusCode, ControlError> {
    c.stop_store(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RestartBody {
    version: Option<String>,
}

async fn http_restart_store(
    State(c): State<Control>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Json<StartedStore>, ControlError> {
    let input: RestartBody = body_json(&body)?;
    Ok(Json(c.restart_store(id, input.version.as_deref()).await?))
}

async fn http_store_config(
    State(c): State<Control>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    let config: serde_json::Value = body_json(&body)?;
    c.set_store_config(id, config)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(default)]
struct StallBody {
    stalled: bool,
}

impl Default for StallBody {
    fn default() -> Self {
        StallBody { stalled: true }
    }
}

/// Body `{"stalled": true|false}`; an empty body stalls.
async fn http_stall_leader_transfer(
    State(c): State<Control>,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    let input: StallBody = body_json(&body)?;
    c.set_leader_transfer_stalled(id, input.stalled)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn http_destroy_store(State(c): State<Control>, Path(id): Path<u64>) -> Result<StatusCode, ControlError> {
    c.destroy_store_data(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct PutBody {
    key: String,
}

/// Body `{"key": "..."}`: 204 when acknowledged; 503 with `{"error", "reason", ...}`
/// (the [`Unavailable`] fields) when refused.
async fn http_put(State(c): State<Control>, body: Bytes) -> Result<StatusCode, ControlError> {
    let input: PutBody = body_json(&body)?;
    c.put(&input.key)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct CheckBody {
    keys: Vec<String>,
}

/// Body `{"keys": [...]}`; answers a [`KeyCheck`].
async fn http_check(State(c): State<Control>, body: Bytes) -> Result<Json<KeyCheck>, ControlError> {
    let input: CheckBody = body_json(&body)?;
    Ok(Json(c.check(&input.keys)))
}

async fn http_add_member(State(c): State<Control>, body: Bytes) -> Result<Json<StartedMember>, ControlError> {
    let spec: MemberSpec = body_json(&body)?;
    Ok(Json(c.add_member(spec).await?))
}

async fn http_stop_member(State(c): State<Control>, Path(name): Path<String>) -> Result<StatusCode, ControlError> {
    c.stop_member(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn http_start_member(State(c): State<Control>, Path(name): Path<String>) -> Result<StatusCode, ControlError> {
    c.start_member(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn http_wipe_member(State(c): State<Control>, Path(name): Path<String>) -> Result<StatusCode, ControlError> {
    c.wipe_member(&name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn http_knobs(State(c): State<Control>, body: Bytes) -> Result<Json<Knobs>, ControlError> {
    let patch: serde_json::Value = body_json(&body)?;
    Ok(Json(c.update_knobs(&patch)?))
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ClockBody {
    speed: Option<f64>,
    /// A Go duration string, e.g. "30s".
    advance: Option<String>,
}

async fn http_clock(State(c): State<Control>, body: Bytes) -> Result<Json<serde_json::Value>, ControlError> {
    let input: ClockBody = body_json(&body)?;
    if let Some(speed) = input.speed {
        c.set_speed(speed);
    }
    if let Some(text) = input.advance {
        let by = crate::format::parse_go_duration(&text)
            .ok_or_else(|| ControlError::BadRequest(format!("bad duration {text:?}")))?;
        c.advance(by);
    }
    let clock = &c.shared.clock;
    Ok(Json(serde_json::json!({"speed": clock.speed(), "now_ms": clock.now().since_start().as_millis() as u64})))
}

async fn http_faults(State(c): State<Control>) -> Json<Vec<Fault>> {
    Json(c.shared.faults().list())
}

async fn http_add_fault(State(c): State<Control>, body: Bytes) -> Result<StatusCode, ControlError> {
    let fault: Fault = body_json(&body)?;
    c.inject_fault(fault);
    Ok(StatusCode::NO_CONTENT)
}

async fn http_clear_faults(State(c): State<Control>) -> StatusCode {
    c.clear_faults();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use crate::{Config, PdSim};

    async fn post(url: String, body: Value) -> (u16, Value) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    /// A store starting while the listeners are synced for another change keeps its
    /// status server (a sync that read the model before the store was added closed
    /// it, and the starting TiKV could never tell PD its status address).
    #[tokio::test]
    async fn a_store_started_during_a_listener_sync_keeps_its_status_server() {
        let sim = PdSim::start(Config::fast()).await.unwrap();
        let control = sim.control();
        let shared = control.shared.clone();
        // The sync queues behind a store's start, which adds the store to the model and
        // its listener under the listeners' lock (done here by hand while holding it).
        let mut held = shared.servers.lock().await;
        let sync = tokio::spawn({
            let shared = shared.clone();
            async move { shared.sync_servers().await }
        });
        tokio::task::yield_now().await;
        let spec = crate::model::StoreSpec { address: "tikv-1:20160".into(), ..Default::default() };
        let id = shared.mutate(|c| c.start_store(spec)).unwrap();
        let addr = std::net::SocketAddr::new(shared.host, 0);
        held.status.insert(id, crate::shared::Endpoint { addr, served: None, tls: shared.tls_slot() });
        drop(held);
        sync.await.unwrap();
        assert!(shared.servers.lock().await.status.contains_key(&id), "the new store's listener is kept");
        control.set_store_tls(id, None).await.expect("its status server is there");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn the_data_path_over_http() {
        let sim = PdSim::start(Config { regions: 3, ..Config::fast() }).await.unwrap();
        let url = sim.url();
        let control = sim.control();
        let (status, body) = post(format!("{url}/sim/kv/put"), json!({"key": "01"})).await;
        assert_eq!((status, &body["reason"]), (503, &json!("no-region")), "{body}");
        let mut ids = Vec::new();
        for n in 1..=3 {
            ids.push(control.register_store(&format!("tikv-{n}:20160")).await.unwrap().id);
        }
        control.advance(Duration::from_secs(3));
        assert_eq!(post(format!("{url}/sim/kv/put"), json!({"key": "01"})).await.0, 204);
        let (status, body) = post(format!("{url}/sim/kv/check"), json!({"keys": ["01", "02"]})).await;
        assert_eq!(status, 200);
        assert_eq!(body["checked"], 2);
        assert_eq!(body["lost"], json!([{"key": "02", "region": null, "reason": "never committed"}]));
        assert_eq!(body["unreadable"], json!([]));
        for id in &ids[..2] {
            let (status, _) = post(format!("{url}/sim/stores/{id}/destroy"), json!({})).await;
            assert_eq!(status, 204);
        }
        assert_eq!(control.check(&["01".to_owned()]).lost.len(), 1);
        let (status, body) = post(format!("{url}/sim/kv/put"), json!({"key": "03"})).await;
        assert_eq!(status, 503, "{body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("region")), "{body}");
        assert_eq!(post(format!("{url}/sim/stores/999/destroy"), json!({})).await.0, 404);
        sim.shutdown().await;
    }
}
