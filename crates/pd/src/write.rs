//! The write side of PD, beside the read side [`PdApi`](crate::PdApi): every change the
//! operator makes to PD goes through [`PdWrite`], implemented by [`PdClient`] and, in
//! the controllers' tests, by an in-memory fake that records each call.
//!
//! The trait is object safe (boxed futures): a cluster's writer is held as
//! `Arc<dyn PdWrite>` in the controllers' PD handle, which every task state carries, so
//! a type parameter would spread through every state and the registry. One allocation
//! per PD write is nothing beside the HTTP call it makes.

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use crate::client::PdClient;
use crate::error::Result;
use crate::types::{RegionHealth, RegionVoters};
use serde_json::{Map, Value};

/// The PD writes of the instance lifecycle, with the client's typed errors.
pub trait PdWrite: Send + Sync + 'static {
    /// `DELETE /store/{id}`, never with `force`: take the store offline (Removing, then
    /// Tombstone once its regions moved). 410 [`StoreRemoved`](crate::PdError::StoreRemoved)
    /// when it already is Tombstone.
    fn delete_store(&self, id: u64) -> BoxFuture<'_, Result<()>>;

    /// `POST /store/{id}/state?state=Up`: cancel taking the store offline. 410
    /// [`StoreRemoved`](crate::PdError::StoreRemoved) once it is Tombstone.
    fn cancel_delete_store(&self, id: u64) -> BoxFuture<'_, Result<()>>;

    /// Add the store to the evict-leader scheduler (200 also when already there).
    fn add_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<()>>;

    /// Remove the store from the evict-leader scheduler: `false` when it was not there.
    fn remove_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<bool>>;

    /// `DELETE /members/id/{id}`.
    fn delete_member_by_id(&self, id: u64) -> BoxFuture<'_, Result<()>>;

    /// `DELETE /members/name/{name}`.
    fn delete_member_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;

    /// `POST /v3/cluster/member/update`: the peer URLs PD's etcd stores for member `id`.
    fn update_member_peer_urls<'a>(&'a self, id: u64, peer_urls: &'a [String]) -> BoxFuture<'a, Result<()>>;

    /// `POST /leader/transfer/{name}`: move the PD leader to that member.
    fn transfer_leader<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>>;

    /// PD's region checks (down, pending, missing peers), read afresh right before a
    /// restart: a read, but one no cache may answer.
    fn region_health(&self) -> BoxFuture<'_, Result<RegionHealth>>;

    /// `GET /schedulers`: the schedulers' names, read uncached (as tidb-operator v2
    /// does on every TiKV reconcile; only timing profile v2 asks).
    fn schedulers(&self) -> BoxFuture<'_, Result<Vec<String>>>;

    /// `GET /regions/store/{id}`: the regions with a peer on the store and their
    /// voters, read afresh before a failover judges them: a read no cache may answer.
    fn store_regions(&self, store_id: u64) -> BoxFuture<'_, Result<Vec<RegionVoters>>>;

    /// A store's running config (`GET <status>/config`): a read of the store itself.
    fn store_config<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<Value>>;

    /// `POST <status>/config?persist=false`: change a store's config online, all keys
    /// or none.
    fn update_store_config<'a>(
        &'a self,
        status_url: &'a str,
        changes: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<()>>;

    /// The leaders a store counts itself, from its `/metrics` (a read of the store).
    fn store_leader_count<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<u64>>;

    /// `GET /pd/api/v1/config`: PD's running config.
    fn pd_config(&self) -> BoxFuture<'_, Result<Value>>;

    /// `POST /pd/api/v1/config` with one key.
    fn update_pd_config<'a>(&'a self, key: &'a str, value: &'a Value) -> BoxFuture<'a, Result<()>>;

    /// `POST /store/{id}/label` (never `force`): merge these labels into the store's;
    /// labels not named stay as they are.
    fn set_store_labels<'a>(&'a self, id: u64, labels: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<()>>;

    /// The certificate an instance serves at `base` (a PD member's client URL, a TiKV
    /// status address), from a new TLS handshake; see [`PdClient::serving_certificate`].
    /// A read.
    fn serving_certificate<'a>(
        &'a self,
        base: &'a str,
        path: &'static str,
    ) -> BoxFuture<'a, Result<crate::CertificateSummary>>;
}

impl PdWrite for PdClient {
    fn delete_store(&self, id: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(PdClient::delete_store(self, id, false))
    }

    fn cancel_delete_store(&self, id: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(PdClient::cancel_delete_store(self, id))
    }

    fn add_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(PdClient::add_evict_leader(self, store_id))
    }

    fn remove_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(PdClient::remove_evict_leader(self, store_id))
    }

    fn delete_member_by_id(&self, id: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(PdClient::delete_member_by_id(self, id))
    }

    fn delete_member_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(PdClient::delete_member_by_name(self, name))
    }

    fn update_member_peer_urls<'a>(&'a self, id: u64, peer_urls: &'a [String]) -> BoxFuture<'a, Result<()>> {
        Box::pin(PdClient::update_member_peer_urls(self, id, peer_urls))
    }

    fn transfer_leader<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(PdClient::transfer_leader(self, name))
    }

    fn region_health(&self) -> BoxFuture<'_, Result<RegionHealth>> {
        Box::pin(PdClient::region_health(self))
    }

    fn schedulers(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(PdClient::schedulers(self))
    }

    fn store_regions(&self, store_id: u64) -> BoxFuture<'_, Result<Vec<RegionVoters>>> {
        Box::pin(PdClient::store_regions(self, store_id))
    }

    fn store_config<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<Value>> {
        Box::pin(PdClient::store_config(self, status_url))
    }

    fn update_store_config<'a>(
        &'a self,
        status_url: &'a str,
        changes: &'a Map<String, Value>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(PdClient::update_store_config(self, status_url, changes))
    }

    fn store_leader_count<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(PdClient::store_leader_count(self, status_url))
    }

    fn pd_config(&self) -> BoxFuture<'_, Result<Value>> {
        Box::pin(PdClient::pd_config_json(self))
    }

    fn update_pd_config<'a>(&'a self, key: &'a str, value: &'a Value) -> BoxFuture<'a, Result<()>> {
        Box::pin(PdClient::update_pd_config(self, key, value))
    }

    fn set_store_labels<'a>(&'a self, id: u64, labels: &'a BTreeMap<String, String>) -> BoxFuture<'a, Result<()>> {
        Box::pin(PdClient::set_store_labels(self, id, labels))
    }

    fn serving_certificate<'a>(
        &'a self,
        base: &'a str,
        path: &'static str,
    ) -> BoxFuture<'a, Result<crate::CertificateSummary>> {
        Box::pin(PdClient::serving_certificate(self, base, path))
    }
}
