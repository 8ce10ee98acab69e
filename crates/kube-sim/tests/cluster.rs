//! The simulated cluster (scheduler, kubelets, volumes, DNS) on a running kube-sim.

// Test helpers outside `#[test]` functions panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "cluster/common.rs"]
mod common;
#[path = "cluster/dns.rs"]
mod dns;
#[path = "cluster/pods.rs"]
mod pods;
#[path = "cluster/runtime.rs"]
mod runtime;
#[path = "cluster/scheduling.rs"]
mod scheduling;
#[path = "cluster/volumes.rs"]
mod volumes;
