//! Cross-check of the PD client (`PdClient`, `PdError`, `TlsMaterial`, `PdCache`) against
//! a running pd-sim: every client call and every typed error, over real HTTP.
//!
//! The simulator's clock runs at a millionth of real time, so simulated time moves only
//! when a test calls `Control::advance`: every state change the tests wait for is
//! driven explicitly and bounded in simulated time, and no test sleeps to synchronise.
//! The PD cache polls on tokio's real clock; waits on its events are bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "against_pd_sim/common.rs"]
mod common;

#[path = "against_pd_sim/cache.rs"]
mod cache;
#[path = "against_pd_sim/faults.rs"]
mod faults;
#[path = "against_pd_sim/members.rs"]
mod members;
#[path = "against_pd_sim/regions.rs"]
mod regions;
#[path = "against_pd_sim/schedulers.rs"]
mod schedulers;
#[path = "against_pd_sim/stores.rs"]
mod stores;
#[path = "against_pd_sim/tls.rs"]
mod tls;
