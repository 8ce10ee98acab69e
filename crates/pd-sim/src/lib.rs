#![recursion_limit = "256"]
//! pd-sim: a simulated PD cluster with TiKV stores, faithful to PD's HTTP API (wire
//! format, status codes, error texts), its store state machine, region placement
//! limits and timing ratios. See `reference/pd-api.md` section 11 for the spec.
//!
//! Addresses: every PD member has its own address (answers as that member: local-only
//! paths locally, the rest "forwarded" to the leader), and the cluster has one more
//! address, [`PdSim::url`], that behaves like a Kubernetes Service in front of PD and
//! also serves the control API under `/sim/...`. Each TiKV store has its own status
//! server address ([`control::StartedStore::status_url`]).

pub mod api;
pub mod control;
pub mod faults;
pub mod format;
pub mod model;
pub mod preset;
mod server;
mod shared;
pub mod status_server;
pub mod tikv_config;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sim_clock::SimClock;
use tokio::task::JoinHandle;

pub use crate::control::{Control, ControlError, MemberSpec, StartedMember, StartedStore};
pub use crate::faults::Fault;
pub use crate::model::data::{KeyCheck, KeyProblem, Unavailable};
pub use crate::model::store::{ConfigFile, Label};
use crate::model::{Cluster, Replication, SeedSpec};
pub use crate::model::{Snapshot, StoreSpec, StoreTruth};
pub use crate::preset::{Knobs, Preset};
use crate::server::{Served, serve};
use crate::shared::Shared;
pub use crate::tls::{Presented, TlsConfig};

#[derive(Clone, Debug)]
pub struct Config {
    pub preset: Preset,
    /// Knobs replacing the preset's, if set.
    pub knobs: Option<Knobs>,
    /// The shared clock; a new one at `speed` if absent.
    pub clock: Option<SimClock>,
    pub speed: f64,
    /// Port of the cluster address (0: any).
    pub port: u16,
    pub host: IpAddr,
    /// PD members started with the cluster, named `pd-0`, `pd-1`, ... (ignored when
    /// [`member_specs`](Self::member_specs) is non-empty). 0: the cluster starts with no
    /// member, so with no leader: PD's API answers 503 until a member is added with
    /// [`Control::add_member`].
    pub members: usize,
    /// The members started with the cluster, in order, instead of `members` default
    /// ones: their names and advertised URLs (unset fields take the defaults of
    /// [`Control::add_member`]). Each still gets its own listener.
    pub member_specs: Vec<MemberSpec>,
    pub max_replicas: usize,
    pub location_labels: Vec<String>,
    /// Regions the first store bootstraps with.
    pub regions: usize,
    pub region_size_mib: u64,
    /// Default: random above 2^62 (always above 2^53).
    pub cluster_id: Option<u64>,
    pub seed: u64,
    pub tls: Option<TlsConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            preset: Preset::Realistic,
            knobs: None,
            clock: None,
            speed: 1.0,
            port: 0,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            members: 1,
            member_specs: Vec::new(),
            max_replicas: 3,
            location_labels: Vec::new(),
            regions: 30,
            region_size_mib: 1,
            cluster_id: None,
            seed: 0x9d_5eed,
            tls: None,
        }
    }
}

impl Config {
    /// The fast preset, for tests.
    pub fn fast() -> Config {
        Config { preset: Preset::Fast, ..Config::default() }
    }
}

pub struct PdSim {
    shared: Arc<Shared>,
    cluster_server: Option<Served>,
    driver: JoinHandle<()>,
}

impl PdSim {
    pub async fn start(config: Config) -> anyhow::Result<PdSim> {
        let clock = config.clock.clone().unwrap_or_else(|| SimClock::new(config.speed));
        let knobs = config.knobs.clone().unwrap_or_else(|| Knobs::for_preset(config.preset)).sanitised();
        let mut rng = StdRng::seed_from_u64(config.seed);
        let cluster_id = config.cluster_id.unwrap_or_else(|| rng.random_range((1u64 << 62)..(1u64 << 63)));
        let model = Cluster::new(
            cluster_id,
            Replication {
                max_replicas: config.max_replicas.max(1),
                location_labels: config.location_labels.clone(),
                strictly_match_label: false,
                enable_placement_rules: true,
                isolation_level: String::new(),
            },
            knobs,
            SeedSpec { regions: config.regions, region_size_mib: config.region_size_mib },
            config.seed,
            clock.now(),
            clock.wall(),
        );
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let shared = Arc::new(Shared::new(clock, model, faults::Faults::new(config.seed), tls, config.host));
        let control = Control { shared: shared.clone() };
        let router =
            api::router(api::Ctx { shared: shared.clone(), member: None }).merge(control::router(control.clone()));
        let cluster_server = serve(SocketAddr::new(config.host, config.port), router, shared.tls_slot()).await?;
        let specs = if config.member_specs.is_empty() {
            vec![MemberSpec::default(); config.members]
        } else {
            config.member_specs.clone()
        };
        for spec in specs {
            control.add_member(spec).await?;
        }
        // The initial members campaign at once (an empty cluster has nobody to elect).
        shared.mutate(|c| {
            c.members.election = Some((c.now, None));
            c.members.campaign(&mut c.rng);
        });
        let driver = tokio::spawn(drive(shared.clone()));
        Ok(PdSim { shared, cluster_server: Some(cluster_server), driver })
    }

    /// The cluster address (`http://127.0.0.1:PORT`), which also serves `/sim/...`.
    pub fn url(&self) -> String {
        let addr = self.cluster_server.as_ref().map(|s| s.addr()).unwrap_or(SocketAddr::new(self.shared.host, 0));
        format!("{}://{addr}", self.shared.scheme())
    }

    pub fn clock(&self) -> SimClock {
        self.shared.clock.clone()
    }

    pub fn control(&self) -> Control {
        Control { shared: self.shared.clone() }
    }

    /// Stops every listener (closed when this returns) and the background driver.
    pub async fn shutdown(mut self) {
        self.driver.abort();
        if let Some(served) = self.cluster_server.take() {
            served.close().await;
        }
        let mut servers = self.shared.servers.lock().await;
        let members = std::mem::take(&mut servers.members);
        let status = std::mem::take(&mut servers.status);
        for endpoint in members.into_values().chain(status.into_values()) {
            if let Some(served) = endpoint.served {
                served.close().await;
            }
        }
    }
}

impl Drop for PdSim {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Keeps the model moving when nobody asks: sleeps until the next due event, or
/// until a change wakes it.
async fn drive(shared: Arc<Shared>) {
    loop {
        let due = shared.lock().next_due();
        tokio::select! {
            _ = shared.clock.sleep_until(due) => {}
            _ = shared.changed.notified() => {}
        }
    }
}
