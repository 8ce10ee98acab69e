//! The PD instance controller's tasks, one concern per file.

mod conditions;
mod config_map;
mod hot_reload;
mod load_group;
mod member;
mod pod;
mod restart;
mod suspend;

pub use conditions::conditions;
pub use config_map::config_map;
pub use hot_reload::hot_reload;
pub use load_group::load_group;
pub use member::{forget_waits, member};
pub use pod::pod;
pub use restart::restart;
pub use suspend::suspend_pod;
