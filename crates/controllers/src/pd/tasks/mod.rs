//! The PD instance controller's tasks, one concern per file.

mod conditions;
mod config_map;
mod hot_reload;
mod leave;
mod load_group;
mod lost_data;
mod member;
mod peer_url;
mod pod;
mod remove_data;
mod restart;
mod suspend;

pub use conditions::conditions;
pub use config_map::config_map;
pub use hot_reload::hot_reload;
pub use leave::{leave, member_left};
pub use load_group::load_group;
pub use lost_data::lost_data;
pub use member::member;
pub use peer_url::peer_url;
pub use pod::pod;
pub use remove_data::{data_removed, remove_data};
pub use restart::restart;
#[cfg(test)]
pub(crate) mod testkit;
pub use suspend::suspend_pod;
