//! Schedulers: listing, and the evict-leader scheduler used before a TiKV restart.

use reqwest::Method;
use serde_json::json;

use super::{Call, PdClient, decode};
use crate::error::{Result, Subject};
use crate::types::EvictLeaderConfig;

/// PD's single evict-leader scheduler (PD 3.1/4.0 and later).
pub const EVICT_LEADER_SCHEDULER: &str = "evict-leader-scheduler";

const EVICT_LEADER_LIST: &str = "/pd/api/v1/scheduler-config/evict-leader-scheduler/list";

impl PdClient {
    /// `GET /schedulers`: names of the enabled schedulers, in PD's (random) order.
    pub async fn schedulers(&self) -> Result<Vec<String>> {
        const PATH: &str = "/pd/api/v1/schedulers";
        let answer = self.execute(&Call::get(PATH)).await?;
        let names: Option<Vec<String>> = decode(PATH, &answer)?;
        Ok(names.unwrap_or_default())
    }

    /// `POST /schedulers` `{"name":"evict-leader-scheduler","store_id":N}`: start moving
    /// leaders off the store. Adding a store that is already evicted answers 200 too.
    /// An unknown store is [`NotFound`](crate::PdError::NotFound): PD's 400 `ErrStoreNotFound`
    /// when the scheduler does not exist yet; when it does, PD's 500 whose message is the
    /// internal config call's body, which still carries `ErrStoreNotFound`.
    pub async fn add_evict_leader(&self, store_id: u64) -> Result<()> {
        let call = Call::write(Method::POST, "/pd/api/v1/schedulers")
            .subject(Subject::Store(store_id))
            .json_body(&json!({ "name": EVICT_LEADER_SCHEDULER, "store_id": store_id }));
        self.execute(&call).await.map(drop)
    }

    /// `DELETE /schedulers/evict-leader-scheduler-{id}`: stop evicting leaders from the
    /// store. Returns `false` when the store was not evicted (PD's 404, also when no
    /// evict-leader scheduler exists), `true` when it was removed.
    pub async fn remove_evict_leader(&self, store_id: u64) -> Result<bool> {
        let call = Call::write_at(
            Method::DELETE,
            "/pd/api/v1/schedulers/evict-leader-scheduler-{store_id}",
            format!("/pd/api/v1/schedulers/{EVICT_LEADER_SCHEDULER}-{store_id}"),
        )
        .subject(Subject::EvictLeader(store_id))
        .accept(&[404]);
        let answer = self.execute(&call).await?;
        Ok(answer.status != 404)
    }

    /// `GET /scheduler-config/evict-leader-scheduler/list`: the evicted stores. `None`
    /// when there is no evict-leader scheduler (PD's plain-text 404), which simply means
    /// no store is evicted.
    pub async fn evict_leader_config(&self) -> Result<Option<EvictLeaderConfig>> {
        let answer = self.execute(&Call::get(EVICT_LEADER_LIST).accept(&[404])).await?;
        if answer.status == 404 {
            return Ok(None);
        }
        decode(EVICT_LEADER_LIST, &answer).map(Some)
    }

    /// Whether the store is in the evict-leader scheduler.
    pub async fn is_evicting_leaders(&self, store_id: u64) -> Result<bool> {
        Ok(self.evict_leader_config().await?.is_some_and(|c| c.contains(store_id)))
    }
}
