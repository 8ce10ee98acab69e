//! Generic tasks, for every controller whose state is a [`PassState`](super::PassState).

mod cluster_not_found;
mod finalizer;
mod load;
mod release_without_cluster;
mod status;
mod validate;

pub use cluster_not_found::{cluster_not_found, cluster_not_found_message};
pub(crate) use finalizer::set_finalizer;
pub use finalizer::{ensure_finalizer, release_finalizer};
pub use load::{load_cluster, load_object};
pub use release_without_cluster::release_without_cluster;
pub use status::write_status;
pub use validate::{template_findings, template_invalid, validate_template};
