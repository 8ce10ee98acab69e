//! State shared by every listener, the control handle and the background driver.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use sim_clock::SimClock;
use tokio::sync::Notify;

use crate::faults::Faults;
use crate::model::Cluster;
use crate::server::{Served, serve};
use crate::tls::{PresentedLog, TlsAcceptor, TlsSlot};

pub struct Shared {
    pub clock: SimClock,
    model: Mutex<Cluster>,
    /// Wakes the background driver after a change.
    pub changed: Notify,
    faults: Mutex<Faults>,
    pub servers: tokio::sync::Mutex<Servers>,
    /// What every listener serves with when it starts (its process may change it).
    pub tls: Option<Arc<TlsAcceptor>>,
    pub host: IpAddr,
    /// The client certificate of every request over TLS, on any listener.
    pub presented: PresentedLog,
}

#[derive(Default)]
pub struct Servers {
    pub members: BTreeMap<String, Endpoint>,
    pub status: BTreeMap<u64, Endpoint>,
}

/// A listening address that survives its process: a restart binds it again.
pub struct Endpoint {
    pub addr: SocketAddr,
    pub served: Option<Served>,
    /// What the listener serves with, swappable while it runs (kept while the listener
    /// is closed and bound again; a restarted process may set other certificates, or none).
    pub tls: TlsSlot,
}

fn relock<'a, T>(result: Result<MutexGuard<'a, T>, std::sync::PoisonError<MutexGuard<'a, T>>>) -> MutexGuard<'a, T> {
    // Model updates keep it consistent between statements; a panicking test thread
    // must not take every other request down with it.
    result.unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(clock: SimClock, model: Cluster, faults: Faults, tls: Option<Arc<TlsAcceptor>>, host: IpAddr) -> Shared {
        Shared {
            clock,
            model: Mutex::new(model),
            changed: Notify::new(),
            faults: Mutex::new(faults),
            servers: tokio::sync::Mutex::new(Servers::default()),
            tls,
            host,
            presented: PresentedLog::default(),
        }
    }

    /// The model, caught up to the clock's now.
    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        let now = self.clock.now();
        let mut model = relock(self.model.lock());
        model.advance_to(now);
        model
    }

    /// Runs a change on the model and wakes the driver.
    pub fn mutate<R>(&self, change: impl FnOnce(&mut Cluster) -> R) -> R {
        let result = change(&mut self.lock());
        self.changed.notify_one();
        result
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        relock(self.faults.lock())
    }

    /// A slot holding the default material, logging into this cluster's log.
    pub fn tls_slot(&self) -> TlsSlot {
        TlsSlot::new(self.tls.clone(), self.presented.clone())
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Starts or stops listeners so they match which processes run in the model; a
    /// stopped listener is closed when this returns.
    ///
    /// The model is read once the listeners are locked: a store or member started
    /// meanwhile (its model entry and listener added under that lock) is then in both,
    /// where a model read before the lock would not know it and close its new listener.
    pub async fn sync_servers(self: &Arc<Self>) {
        let mut servers = self.servers.lock().await;
        let (members, stores) = {
            let model = self.lock();
            let members: Vec<(String, bool)> =
                model.members.list.iter().map(|m| (m.name.clone(), m.running && m.in_etcd)).collect();
            let stores: BTreeMap<u64, bool> = model.stores.values().map(|s| (s.id, s.running)).collect();
            (members, stores)
        };
        for (name, want) in members {
            let Some(endpoint) = servers.members.get_mut(&name) else { continue };
            match (want, endpoint.served.is_some()) {
                (true, false) => {
                    let router =
                        crate::api::router(crate::api::Ctx { shared: self.clone(), member: Some(name.clone()) });
                    endpoint.served = rebind(endpoint.addr, router, endpoint.tls.clone()).await;
                }
                (false, true) => {
                    if let Some(served) = endpoint.served.take() {
                        served.close().await;
                    }
                }
                _ => {}
            }
        }
        let gone: Vec<u64> = servers.status.keys().filter(|id| !stores.contains_key(id)).copied().collect();
        for id in gone {
            if let Some(served) = servers.status.remove(&id).and_then(|e| e.served) {
                served.close().await;
            }
        }
        for (id, endpoint) in servers.status.iter_mut() {
            let want = stores.get(id).copied().unwrap_or(false);
            match (want, endpoint.served.is_some()) {
                (true, false) => {
                    let router = crate::status_server::router(self.clone(), *id);
                    endpoint.served = rebind(endpoint.addr, router, endpoint.tls.clone()).await;
                }
                (false, true) => {
                    if let Some(served) = endpoint.served.take() {
                        served.close().await;
                    }
                }
                _ => {}
            }
        }
    }
}

async fn rebind(addr: SocketAddr, router: axum::Router, tls: TlsSlot) -> Option<Served> {
    match serve(addr, router, tls).await {
        Ok(served) => Some(served),
        Err(error) => {
            tracing::warn!(%addr, %error, "could not listen again on the same address");
            None
        }
    }
}
