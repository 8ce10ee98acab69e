//! Custom resources of tikv-operator, API group `core.tikv.org`, version `v1alpha1`.
//!
//! - [`Cluster`]: the TiKV cluster as a whole (pause, suspend, TLS, policies).
//! - [`PDGroup`] / [`TiKVGroup`]: desired replicas and an instance template.
//! - [`PD`] / [`TiKV`]: one instance each, owned by its group.
//!
//! Everything a controller matches on by name (labels, annotations, finalizer,
//! condition types and reasons) is a constant here, so it is spelled once.

pub mod cluster;
pub mod common;
pub mod condition;
pub mod crds;
pub mod names;
pub mod pd;
pub mod reference;
pub mod tikv;

pub use cluster::{Cluster, ClusterSpec, ClusterStatus};
pub use common::*;
pub use pd::{PD, PDGroup, PDGroupSpec, PDSpec, PDStatus, PDTemplate, PDTemplateSpec};
pub use tikv::{TiKV, TiKVGroup, TiKVGroupSpec, TiKVSpec, TiKVStatus, TiKVTemplate, TiKVTemplateSpec};

/// API group of every custom resource of the operator.
pub const GROUP: &str = "core.tikv.org";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
