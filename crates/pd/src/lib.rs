//! PD for the operator: a typed HTTP client ([`PdClient`]) with PD's exact wire format
//! and honest error types ([`PdError`]), TLS from the cluster's client Secret
//! ([`TlsMaterial`]), and the per-cluster PD cache ([`PdCache`]) that polls PD, keeps the
//! last good view with its freshness, and turns changes into [`PdEvent`]s.
//!
//! PD is the judge of every safe step the operator takes: decode exactly what PD
//! writes, and never mistake a failure for an answer.

pub mod cache;
pub mod client;
pub mod error;
pub mod tls;
pub mod types;
pub mod units;
pub mod write;

pub use cache::{
    CacheClock, CacheConfig, Freshness, NotFresh, PdApi, PdCache, PdEvent, PdSnapshot, PdView, PollMode, StaleReason,
    TokioClock, WaitGuard,
};
pub use client::{
    DEFAULT_TIMEOUT, PdClient, PdClientBuilder, ProxySetting, RequestDone, RequestObserver, RequestOutcome,
    RetryPolicy, USER_AGENT, WriteObserver, flatten,
};
pub use error::{NotEnoughStoresReason, PdError, Subject};
pub use tls::{CertificateSummary, Fingerprint, TlsError, TlsMaterial};
pub use types::*;
pub use write::PdWrite;

/// Installs rustls's ring provider as the process default (ignored if one is installed).
/// [`PdClient`] does not need it (it names its provider), but other rustls users in the
/// same binary may.
pub fn install_default_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
