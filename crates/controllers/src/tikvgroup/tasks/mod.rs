//! The TiKVGroup controller's own tasks; the rest are generic group tasks.

mod peer_service;
mod upgrade_ordering;

pub use peer_service::peer_service;
pub use upgrade_ordering::{pd_upgraded, upgrade_ordering};
