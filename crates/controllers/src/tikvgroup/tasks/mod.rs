//! The TiKVGroup controller's own tasks; the rest are generic group tasks.

mod failover;
mod peer_service;
mod scale_in_check;
mod upgrade_ordering;

pub use failover::failover;
pub use peer_service::peer_service;
pub use scale_in_check::scale_in_check;
pub use upgrade_ordering::{pd_upgraded, upgrade_ordering};
