//! Conformance of kube-sim with unmodified kube-rs and the installed kubectl.

// Test helpers outside `#[test]` functions panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "conformance/common.rs"]
mod common;
#[path = "conformance/crud.rs"]
mod crud;
#[path = "conformance/custom.rs"]
mod custom;
#[path = "conformance/eviction.rs"]
mod eviction;
#[path = "conformance/faults.rs"]
mod faults;
#[path = "conformance/kubectl.rs"]
mod kubectl;
#[path = "conformance/lifecycle.rs"]
mod lifecycle;
#[path = "conformance/protobuf.rs"]
mod protobuf;
#[path = "conformance/rbac.rs"]
mod rbac;
#[path = "conformance/runtime.rs"]
mod runtime;
