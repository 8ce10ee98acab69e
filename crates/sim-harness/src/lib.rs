//! sim-harness: PD and TiKV running inside kube-sim's pods, as `pd-server` and
//! `tikv-server` would, the HTTP proxy through which an unmodified operator reaches
//! them, and the safety-invariant watcher every end-to-end test runs with.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use sim_harness::{Harness, HarnessConfig};
//! let harness = Harness::start(HarnessConfig { speed: 10.0, ..HarnessConfig::fast() }).await?;
//! // Run the operator with KUBECONFIG=harness.kubeconfig_path() and
//! // HTTP_PROXY=harness.proxy_url(); create Cluster/PDGroup/TiKVGroup objects...
//! harness.watcher().assert_none();
//! harness.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! - [`processes`]: the container runtime for `pingcap/pd` and `pingcap/tikv` images;
//! - [`network`]: DNS, kube-proxy and the routing table from pod addresses to the
//!   simulated processes' real listeners;
//! - [`proxy`]: the HTTP forward proxy (absolute-form requests and `CONNECT`);
//! - [`pd_ctl`]: another PD client than the operator (an SRE with pd-ctl);
//! - [`programs`]: other executables the pods run (a preStop hook's tool), by path;
//! - [`invariants`]: the [`SafetyWatcher`];
//! - [`clusters`]: the PD clusters the pods formed and what each PVC holds (a store's
//!   data is destroyed in pd-sim when its volume is deleted);
//! - [`probe`]: the [`WorkloadProbe`], writes through the regions and a check that none
//!   was lost;
//! - [`harness`]: [`Harness::start`] wires it all.

pub mod clusters;
pub mod cmdline;
mod datadirs;
pub mod harness;
mod http;
pub mod invariants;
pub mod network;
pub mod pd_ctl;
pub mod probe;
pub mod processes;
pub mod programs;
pub mod proxy;

pub use clusters::{DataDir, Instance, MixedStart, PdCluster, PdClusters};
pub use harness::{Harness, HarnessConfig};
pub use invariants::{Breach, Invariant, SafetyWatcher, WatcherConfig};
pub use network::{NetError, Network, Route, Target};
pub use pd_ctl::{PdCtl, PdCtlError};
pub use probe::{ProbeConfig, ProbeRefusal, ProbeReport, ProbeVerdict, ProbeWrite, WorkloadProbe};
pub use processes::{ProcessSettings, Processes};
pub use programs::{Program, ProgramEnv, ProgramRun, Programs};
pub use proxy::{PdWrite, PdWriteLog, Proxy};
