//! The TiKV instance controller's tasks, one concern per file.

mod conditions;
mod config_map;
mod pod;
mod store;

pub use conditions::conditions;
pub use config_map::config_map;
pub use pod::pod;
pub use store::{forget_waits, store};
