//! Stores: list, get, take offline, cancel, labels, tombstone cleanup.

use std::collections::BTreeMap;

use reqwest::Method;

use super::{Call, PdClient, decode};
use crate::error::{PdError, Result, Subject};
use crate::types::{Store, StoreInfoWire, StoreState, StoresWire};

const STORES: &str = "/pd/api/v1/stores";
const STORE: &str = "/pd/api/v1/store/{id}";
const STORE_LABEL: &str = "/pd/api/v1/store/{id}/label";

fn store_path(id: u64) -> String {
    format!("/pd/api/v1/store/{id}")
}

fn to_store(path: &str, wire: StoreInfoWire) -> Result<Store> {
    wire.into_store().map_err(|message| PdError::Decode { path: path.to_owned(), message, excerpt: String::new() })
}

impl PdClient {
    /// `GET /stores` with the given states (`?state=0&state=1...`). An empty slice
    /// means PD's default, Up and Offline: **Tombstone stores are then hidden**.
    /// Before the first TiKV bootstrapped the cluster this is
    /// [`PdError::NotBootstrapped`]; the PD cache reads that as "no stores yet".
    pub async fn stores(&self, states: &[StoreState]) -> Result<Vec<Store>> {
        let mut call = Call::get(STORES);
        for state in states {
            call = call.query("state", state.code().to_string());
        }
        let answer = self.execute(&call).await?;
        let wire: StoresWire = decode(STORES, &answer)?;
        wire.stores.unwrap_or_default().into_iter().map(|s| to_store(STORES, s)).collect()
    }

    /// Every store PD has a record of, Tombstone included.
    pub async fn all_stores(&self) -> Result<Vec<Store>> {
        self.stores(&[StoreState::Up, StoreState::Offline, StoreState::Tombstone]).await
    }

    /// `GET /store/{id}`; a Tombstone store is still returned until its record is removed.
    pub async fn store(&self, id: u64) -> Result<Store> {
        let path = store_path(id);
        let answer = self.execute(&Call::get_at(STORE, path.clone()).subject(Subject::Store(id))).await?;
        to_store(&path, decode(&path, &answer)?)
    }

    /// `DELETE /store/{id}` (with `?force` when `force`): take the store offline. PD
    /// answers 200 again for a store already Offline. Typed refusals:
    /// [`PdError::NotFound`], [`PdError::StoreRemoved`] (410),
    /// [`PdError::NotEnoughStores`], [`PdError::StoreDestroyed`].
    ///
    /// `force` marks the store physically destroyed: it can never come back Up. Use it
    /// only for a store whose data is gone.
    pub async fn delete_store(&self, id: u64, force: bool) -> Result<()> {
        let mut call = Call::write_at(Method::DELETE, STORE, store_path(id)).subject(Subject::Store(id));
        if force {
            // PD checks only that the key is present.
            call = call.query("force", "true");
        }
        self.execute(&call).await.map(drop)
    }

    /// `POST /store/{id}/state?state=Up`: cancel taking the store offline (Removing goes
    /// back to Serving). 200 also when already Up; 410 [`PdError::StoreRemoved`] once
    /// it is Tombstone.
    pub async fn cancel_delete_store(&self, id: u64) -> Result<()> {
        let call = Call::write_at(Method::POST, "/pd/api/v1/store/{id}/state", format!("{}/state", store_path(id)))
            .subject(Subject::Store(id))
            .query("state", "Up");
        self.execute(&call).await.map(drop)
    }

    /// `POST /store/{id}/label`: merge these labels into the store's labels. The key
    /// `engine` is reserved by PD.
    pub async fn set_store_labels(&self, id: u64, labels: &BTreeMap<String, String>) -> Result<()> {
        let body = serde_json::to_value(labels).map_err(|e| PdError::Config(e.to_string()))?;
        let call = Call::write_at(Method::POST, STORE_LABEL, format!("{}/label", store_path(id)))
            .subject(Subject::Store(id))
            .json_body(&body);
        self.execute(&call).await.map(drop)
    }

    /// `DELETE /store/{id}/label` with the key as a JSON string body.
    pub async fn delete_store_label(&self, id: u64, key: &str) -> Result<()> {
        let call = Call::write_at(Method::DELETE, STORE_LABEL, format!("{}/label", store_path(id)))
            .subject(Subject::Store(id))
            .json_body(&serde_json::Value::String(key.to_owned()));
        self.execute(&call).await.map(drop)
    }

    /// `DELETE /stores/remove-tombstone`: delete the records of Removed stores that
    /// hold no region. When some still hold regions PD answers 500 `failed stores: ...`
    /// ([`PdError::Http`]).
    pub async fn remove_tombstones(&self) -> Result<()> {
        self.execute(&Call::write(Method::DELETE, "/pd/api/v1/stores/remove-tombstone")).await.map(drop)
    }
}
