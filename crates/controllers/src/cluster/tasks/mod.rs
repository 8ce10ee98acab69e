//! The Cluster controller's tasks, one concern per file.

mod cluster_id;
mod conditions;
mod deletion;
mod load_groups;
mod pd;
mod replication;
mod suspended;

pub use cluster_id::cluster_id;
pub use conditions::conditions;
pub use deletion::{delete_groups, drop_pd};
pub use load_groups::{fresh_groups, load_groups};
pub use pd::{pd_url, register_pd};
pub use replication::replication;
pub use suspended::suspended;
