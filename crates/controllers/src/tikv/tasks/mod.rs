//! The TiKV instance controller's tasks, one concern per file.

mod conditions;
mod config_map;
mod confirm_unregistered;
mod delete_pod;
mod delete_pvcs;
mod down_clock;
mod evict_leaders;
mod hot_reload;
mod label_pvcs;
mod offline;
mod pod;
mod restart;
mod store;
mod store_labels;
mod suspend;
#[cfg(test)]
pub(crate) mod testkit;

pub use conditions::conditions;
pub use config_map::config_map;
pub use confirm_unregistered::confirm_unregistered;
pub use delete_pod::delete_pod;
pub use delete_pvcs::delete_pvcs;
pub use down_clock::down_clock;
pub use evict_leaders::evict_leaders;
pub use hot_reload::hot_reload;
pub use label_pvcs::label_pvcs;
pub use offline::offline;
pub use pod::pod;
pub use restart::restart;
pub use store::store;
pub use store_labels::store_labels;
pub use suspend::{hold_resume, resume_held, suspend_pod};
