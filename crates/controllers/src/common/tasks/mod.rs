//! Generic tasks, one per file, for every controller whose state is a
//! [`PassState`](super::PassState); the instance tasks need an
//! [`InstanceState`](super::instance::InstanceState), the group tasks a
//! [`GroupState`](super::group::GroupState).

mod cluster_not_found;
mod config_map;
mod finalizer;
mod forget;
mod group_deletion;
mod group_status;
mod instance_deletion;
mod load;
mod load_instances;
mod load_pod;
mod pdb;
mod pod;
mod pvcs;
mod release_without_cluster;
mod revision;
mod serving_certificate;
mod status;
mod suspend;
mod updater;
mod validate;

pub use cluster_not_found::{cluster_not_found, cluster_not_found_message};
pub use config_map::config_map;
pub(crate) use finalizer::set_finalizer;
pub use finalizer::{ensure_finalizer, release_finalizer};
pub use forget::forget_instance;
pub use group_deletion::group_deletion;
pub use group_status::group_status;
pub use instance_deletion::instance_deletion;
pub use load::{load_cluster, load_object};
pub use load_instances::load_instances;
pub use load_pod::load_pod;
pub use pdb::pdb;
pub use pod::{pod, run_pod};
pub use pvcs::pvcs;
pub use release_without_cluster::release_without_cluster;
pub use revision::revision;
pub use serving_certificate::{CertificateChecks, serving_certificate};
pub use status::write_status;
pub use suspend::{delete_for_suspension, group_suspended, instance_suspended, suspension_reason};
pub use updater::updater;
pub use validate::{template_findings, template_invalid, validate_template};
