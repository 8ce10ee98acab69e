//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's algorithm
//! (`k8s.io/client-go/tools/leaderelection`), so that of several replicas only one
//! reconciles:
//!
//! - read the Lease; create it when absent;
//! - take it when we hold it, when nobody does (`holderIdentity` empty: released), or
//!   when it expired. Expiry is judged on *our* clock, as client-go does: the record
//!   must have stayed unchanged, as we observed it, for `leaseDurationSeconds` since we
//!   first saw it so. Remote timestamps (`renewTime`) are never compared with our
//!   clock, so clock skew between replicas does not matter;
//! - write with the resourceVersion we read (a replace): of two replicas racing, the
//!   second gets 409 Conflict and loses;
//! - the leader renews every retry period, and stops leading when it could not renew
//!   within the renew deadline, or sees another holder;
//! - on shutdown the leader releases the Lease (empty holder, 1 s duration), so that a
//!   standby takes over at once (client-go's `ReleaseOnCancel`).
//!
//! Every successful write feeds the [`Fence`] the time it was sent; see [`crate::fence`].
//!
//! kube-lease-manager is not used: it relies on server-side-apply conflicts.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use crate::error::{is_already_exists, is_conflict, is_not_found};
use crate::fence::Fence;

/// The settings of `tikv-operator run --leader-elect*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub lease_namespace: String,
    pub lease_name: String,
    /// Who we are in `holderIdentity`: unique per process.
    pub identity: String,
    /// How long a standby waits, after the record last changed, before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading.
    pub renew_deadline: Duration,
    /// How often the leader renews and a standby tries to acquire.
    pub retry_period: Duration,
    /// How much of the lease must be left for a write to pass the fence.
    pub fence_margin: Duration,
}

impl LeaderElectionConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period; the
    /// fence margin is what the renew deadline leaves of the lease (5 s), so the fence
    /// closes when the leader gives up renewing, with 5 s left for a write in flight
    /// (a PD call times out after 5 s).
    pub fn new(lease_namespace: impl Into<String>, lease_name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderElectionConfig {
            lease_namespace: lease_namespace.into(),
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            fence_margin: Duration::from_secs(5),
        }
    }

    /// client-go's checks: lease duration > renew deadline > retry period (with room
    /// for jitter), and a margin shorter than the lease.
    pub fn validate(&self) -> Result<(), String> {
        if self.identity.is_empty() || self.lease_name.is_empty() || self.lease_namespace.is_empty() {
            return Err("leader election needs an identity, a lease name and a namespace".into());
        }
        if self.retry_period.is_zero() {
            return Err("the retry period must be positive".into());
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(format!(
                "the lease duration ({:?}) must be longer than the renew deadline ({:?})",
                self.lease_duration, self.renew_deadline
            ));
        }
        if self.renew_deadline.as_secs_f64() <= self.retry_period.as_secs_f64() * JITTER {
            return Err(format!(
                "the renew deadline ({:?}) must be longer than {JITTER} x the retry period ({:?})",
                self.renew_deadline, self.retry_period
            ));
        }
        if self.fence_margin >= self.lease_duration {
            return Err(format!(
                "the fence margin ({:?}) must be shorter than the lease duration ({:?})",
                self.fence_margin, self.lease_duration
            ));
        }
        if self.lease_duration.as_secs() == 0 || self.lease_duration.as_secs() > i32::MAX as u64 {
            return Err("the lease duration must be a whole number of seconds, at least 1".into());
        }
        Ok(())
    }

    /// The fence this election feeds.
    pub fn fence(&self) -> Fence {
        Fence::lease(self.lease_duration, self.fence_margin)
    }
}

/// client-go's JitterFactor: a standby waits retry period x [1, 1.2) between tries.
const JITTER: f64 = 1.2;

/// This process's identity: `POD_NAME` (or the hostname) and a random suffix, so that a
/// restarted process never mistakes its predecessor's Lease for its own.
pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|n| !n.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_owned()))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "tikv-operator".to_owned());
    format!("{host}_{:08x}", rand::random::<u32>())
}

/// The outcome of one try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the Lease (just written).
    Leading,
    /// Someone else holds it, and it has not expired as we observe it.
    HeldBy(String),
    /// Another replica wrote first (409); read again next time.
    Conflict,
}

/// Why the leader stopped leading.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeadershipLost {
    #[error("another replica ({0}) holds the lease")]
    HeldBy(String),
    #[error("could not renew the lease within the renew deadline ({deadline:?}): {last}")]
    RenewDeadline { deadline: Duration, last: String },
}

/// The record as we last saw it change, and when (our clock).
#[derive(Debug)]
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

/// What to do with the Lease as read.
#[derive(Debug, PartialEq)]
enum Plan {
    Create(LeaseSpec),
    /// Replace with this spec (we are, or become, the holder).
    Write(LeaseSpec),
    HeldBy(String),
}

/// One replica's elector.
pub struct Elector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    fence: Fence,
    observed: Mutex<Option<Observed>>,
}

impl Elector {
    /// `client` must not be fenced (the elector writes the Lease while the fence is closed).
    pub fn new(client: Client, config: LeaderElectionConfig, fence: Fence) -> Self {
        let api = Api::namespaced(client, &config.lease_namespace);
        Elector { api, config, fence, observed: Mutex::new(None) }
    }

    pub fn config(&self) -> &LeaderElectionConfig {
        &self.config
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Reads the Lease and takes or renews it when allowed (client-go's
    /// `tryAcquireOrRenew`).
    pub async fn try_acquire_or_renew(&self) -> Result<Attempt, kube::Error> {
        let sent = Instant::now();
        let current = match self.api.get(&self.config.lease_name).await {
            Ok(lease) => Some(lease),
            Err(error) if is_not_found(&error) => None,
            Err(error) => return Err(error),
        };
        let now = Instant::now();
        let plan = {
            let mut observed = self.observed.lock().unwrap_or_else(PoisonError::into_inner);
            plan(
                current.as_ref().and_then(|l| l.spec.as_ref()),
                &mut observed,
                &self.config,
                now,
                jiff::Timestamp::now(),
            )
        };
        let written = match plan {
            Plan::HeldBy(holder) => return Ok(Attempt::HeldBy(holder)),
            Plan::Create(spec) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.lease_name.clone()),
                        namespace: Some(self.config.lease_namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Plan::Write(spec) => {
                let mut lease = current.unwrap_or_default();
                lease.spec = Some(spec);
                self.api.replace(&self.config.lease_name, &PostParams::default(), &lease).await
            }
        };
        match written {
            Ok(lease) => {
                self.fence.renewed(sent);
                let spec = lease.spec.unwrap_or_default();
                *self.observed.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Observed { spec, at: Instant::now() });
                Ok(Attempt::Leading)
            }
            Err(error) if is_conflict(&error) || is_already_exists(&error) => Ok(Attempt::Conflict),
            Err(error) => Err(error),
        }
    }

    /// Tries every retry period (jittered) until we lead; logs who holds it meanwhile.
    pub async fn acquire(&self) {
        let mut last_holder = None;
        loop {
            match tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(Attempt::Leading)) => {
                    tracing::info!(identity = %self.config.identity, lease = %self.lease_ref(), "acquired the lease; leading");
                    return;
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(%holder, lease = %self.lease_ref(), "standing by: another replica leads");
                        last_holder = Some(holder);
                    }
                }
                Ok(Ok(Attempt::Conflict)) => tracing::debug!("lost a race for the lease"),
                Ok(Err(error)) => tracing::warn!(%error, lease = %self.lease_ref(), "cannot read or write the lease"),
                Err(_) => tracing::warn!(lease = %self.lease_ref(), "a try for the lease timed out"),
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    /// While leading: renews every retry period; returns when leadership is lost, having
    /// closed the fence.
    pub async fn hold(&self) -> LeadershipLost {
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            if let Err(lost) = self.renew_round().await {
                self.fence.close();
                tracing::error!(reason = %lost, lease = %self.lease_ref(), "stopped leading");
                return lost;
            }
        }
    }

    /// One renewal: tries every retry period until it succeeds or the renew deadline
    /// passes (client-go's renew loop).
    async fn renew_round(&self) -> Result<(), LeadershipLost> {
        let deadline = Instant::now() + self.config.renew_deadline;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let last = match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(Attempt::Leading)) => return Ok(()),
                Ok(Ok(Attempt::HeldBy(holder))) => return Err(LeadershipLost::HeldBy(holder)),
                Ok(Ok(Attempt::Conflict)) => "the lease was changed by another writer".to_owned(),
                Ok(Err(error)) => error.to_string(),
                Err(_) => "timed out".to_owned(),
            };
            tracing::warn!(error = %last, "renewing the lease failed");
            let next = Instant::now() + self.config.retry_period;
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(LeadershipLost::RenewDeadline { deadline: self.config.renew_deadline, last });
            }
            tokio::time::sleep_until(next).await;
        }
    }

    /// Gives the Lease up (client-go's release): closes the fence, then, if we still
    /// hold it, writes an empty holder with a 1 s duration so a standby takes over at
    /// once. Returns whether it was released.
    pub async fn release(&self) -> Result<bool, kube::Error> {
        self.fence.close();
        let mut lease = match self.api.get(&self.config.lease_name).await {
            Ok(lease) => lease,
            Err(error) if is_not_found(&error) => return Ok(false),
            Err(error) => return Err(error),
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        let now = MicroTime(jiff::Timestamp::now());
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.acquire_time = Some(now.clone());
        spec.renew_time = Some(now);
        match self.api.replace(&self.config.lease_name, &PostParams::default(), &lease).await {
            Ok(_) => {
                tracing::info!(lease = %self.lease_ref(), "released the lease");
                Ok(true)
            }
            Err(error) if is_conflict(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.config.lease_namespace, self.config.lease_name)
    }
}

fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + rand::random::<f64>() * (JITTER - 1.0))
}

/// client-go's decision on the record as read (`current`), updating what we observed.
fn plan(
    current: Option<&LeaseSpec>,
    observed: &mut Option<Observed>,
    config: &LeaderElectionConfig,
    now: Instant,
    wall: jiff::Timestamp,
) -> Plan {
    let me = config.identity.as_str();
    let ours = |old: Option<&LeaseSpec>| {
        let held_by_us = old.and_then(|o| o.holder_identity.as_deref()) == Some(me);
        let transitions = old.and_then(|o| o.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(me.to_owned()),
            lease_duration_seconds: Some(config.lease_duration.as_secs().try_into().unwrap_or(i32::MAX)),
            acquire_time: match held_by_us {
                true => old.and_then(|o| o.acquire_time.clone()),
                false => Some(MicroTime(wall)),
            },
            renew_time: Some(MicroTime(wall)),
            lease_transitions: Some(if held_by_us { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }
    };
    let Some(current) = current else {
        return Plan::Create(LeaseSpec { lease_transitions: Some(0), ..ours(None) });
    };
    if observed.as_ref().is_none_or(|o| o.spec != *current) {
        *observed = Some(Observed { spec: current.clone(), at: now });
    }
    let holder = current.holder_identity.as_deref().unwrap_or_default();
    if !holder.is_empty() && holder != me {
        let duration = Duration::from_secs(current.lease_duration_seconds.unwrap_or(0).max(0) as u64);
        let seen_since = observed.as_ref().map_or(now, |o| o.at);
        if seen_since + duration > now {
            return Plan::HeldBy(holder.to_owned());
        }
    }
    Plan::Write(ours(Some(current)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(identity: &str) -> LeaderElectionConfig {
        LeaderElectionConfig::new("kube-system", "tikv-operator", identity)
    }

    fn held(holder: &str, seconds: i32, transitions: i32) -> LeaseSpec {
        let at = MicroTime(jiff::Timestamp::from_second(1_700_000_000).unwrap());
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(at.clone()),
            renew_time: Some(at),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    const WALL: jiff::Timestamp = jiff::Timestamp::UNIX_EPOCH;

    #[test]
    fn the_defaults_are_client_gos_and_valid() {
        let c = config("a");
        assert_eq!(
            (c.lease_duration, c.renew_deadline, c.retry_period, c.fence_margin),
            (Duration::from_secs(15), Duration::from_secs(10), Duration::from_secs(2), Duration::from_secs(5))
        );
        c.validate().unwrap();
        let bad = LeaderElectionConfig { renew_deadline: Duration::from_secs(15), ..c.clone() };
        assert!(bad.validate().unwrap_err().contains("longer than the renew deadline"));
        let bad = LeaderElectionConfig { retry_period: Duration::from_secs(9), ..c.clone() };
        assert!(bad.validate().unwrap_err().contains("retry period"));
        let bad = LeaderElectionConfig { fence_margin: Duration::from_secs(15), ..c };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn an_absent_lease_is_created_with_us_as_holder() {
        let mut observed = None;
        let Plan::Create(spec) = plan(None, &mut observed, &config("a"), Instant::now(), WALL) else { panic!() };
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, Some(MicroTime(WALL)));
        assert_eq!(spec.renew_time, Some(MicroTime(WALL)));
    }

    #[test]
    fn another_holder_is_waited_out_on_our_clock_not_its_timestamps() {
        let t = Instant::now();
        let mut observed = None;
        let c = config("b");
        // Its renewTime is years old; what counts is that we just saw the record.
        let lease = held("a", 15, 3);
        assert_eq!(plan(Some(&lease), &mut observed, &c, t, WALL), Plan::HeldBy("a".into()));
        assert_eq!(plan(Some(&lease), &mut observed, &c, t + Duration::from_secs(14), WALL), Plan::HeldBy("a".into()));
        // A renewal (the record changed) restarts our count.
        let renewed = LeaseSpec { renew_time: Some(MicroTime(WALL)), ..lease.clone() };
        let at = t + Duration::from_secs(14);
        assert_eq!(plan(Some(&renewed), &mut observed, &c, at, WALL), Plan::HeldBy("a".into()));
        let later = at + Duration::from_secs(14);
        assert_eq!(plan(Some(&renewed), &mut observed, &c, later, WALL), Plan::HeldBy("a".into()));
        // Unchanged for a whole lease duration: expired, taken with one more transition.
        let Plan::Write(spec) = plan(Some(&renewed), &mut observed, &c, at + Duration::from_secs(15), WALL) else {
            panic!("expired")
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, Some(MicroTime(WALL)));
    }

    #[test]
    fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let lease = held("a", 15, 3);
        let mut observed = None;
        let Plan::Write(spec) = plan(Some(&lease), &mut observed, &config("a"), Instant::now(), WALL) else { panic!() };
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.acquire_time, lease.acquire_time);
        assert_eq!(spec.renew_time, Some(MicroTime(WALL)));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let released = LeaseSpec { holder_identity: Some(String::new()), ..held("", 1, 2) };
        let mut observed = None;
        let Plan::Write(spec) = plan(Some(&released), &mut observed, &config("b"), Instant::now(), WALL) else {
            panic!()
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn the_identity_names_the_pod_and_differs_per_process() {
        let (a, b) = (default_identity(), default_identity());
        assert_ne!(a, b);
        assert!(a.len() > 9 && a.as_bytes()[a.len() - 9] == b'_', "{a}");
    }

    async fn sim() -> (kube_sim::KubeSim, Client) {
        tikv_operator_pd::install_default_crypto_provider();
        let sim = kube_sim::KubeSim::start(kube_sim::Config::default()).await.unwrap();
        let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
        (sim, client)
    }

    fn fast(identity: &str) -> LeaderElectionConfig {
        LeaderElectionConfig {
            lease_duration: Duration::from_secs(2),
            renew_deadline: Duration::from_millis(1500),
            retry_period: Duration::from_millis(200),
            fence_margin: Duration::from_millis(500),
            ..LeaderElectionConfig::new("default", "tikv-operator", identity)
        }
    }

    async fn lease(client: &Client) -> LeaseSpec {
        let api: Api<Lease> = Api::namespaced(client.clone(), "default");
        api.get("tikv-operator").await.unwrap().spec.unwrap()
    }

    #[tokio::test]
    async fn against_the_api_server_one_leads_the_other_stands_by_then_takes_over_a_release() {
        let (_sim, client) = sim().await;
        let a = Elector::new(client.clone(), fast("a"), fast("a").fence());
        let b = Elector::new(client.clone(), fast("b"), fast("b").fence());
        assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
        assert!(a.fence().check().is_ok());
        assert_eq!(b.try_acquire_or_renew().await.unwrap(), Attempt::HeldBy("a".into()));
        assert!(b.fence().check().is_err());
        assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading, "renewed");
        let spec = lease(&client).await;
        assert_eq!((spec.holder_identity.as_deref(), spec.lease_transitions), (Some("a"), Some(0)));

        assert!(a.release().await.unwrap());
        assert!(a.fence().check().is_err(), "released: fenced");
        assert_eq!(lease(&client).await.holder_identity.as_deref(), Some(""));
        assert_eq!(b.try_acquire_or_renew().await.unwrap(), Attempt::Leading, "taken at once");
        let spec = lease(&client).await;
        assert_eq!((spec.holder_identity.as_deref(), spec.lease_transitions), (Some("b"), Some(1)));
        assert!(!a.release().await.unwrap(), "a does not release what b holds");
    }

    #[tokio::test]
    async fn a_write_on_a_stale_read_conflicts_and_loses() {
        let (_sim, client) = sim().await;
        let a = Elector::new(client.clone(), fast("a"), fast("a").fence());
        assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
        let api: Api<Lease> = Api::namespaced(client.clone(), "default");
        let mut stale = api.get("tikv-operator").await.unwrap();
        assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
        stale.spec.as_mut().unwrap().holder_identity = Some("b".into());
        let error = api.replace("tikv-operator", &PostParams::default(), &stale).await.unwrap_err();
        assert!(is_conflict(&error), "{error}");
    }

    #[tokio::test]
    async fn a_leader_that_sees_another_holder_stops_and_closes_its_fence() {
        let (_sim, client) = sim().await;
        let a = Elector::new(client.clone(), fast("a"), fast("a").fence());
        assert_eq!(a.try_acquire_or_renew().await.unwrap(), Attempt::Leading);
        let api: Api<Lease> = Api::namespaced(client.clone(), "default");
        let mut lease = api.get("tikv-operator").await.unwrap();
        lease.spec.as_mut().unwrap().holder_identity = Some("b".into());
        api.replace("tikv-operator", &PostParams::default(), &lease).await.unwrap();
        assert_eq!(a.hold().await, LeadershipLost::HeldBy("b".into()));
        assert_eq!(a.fence().check(), Err(crate::fence::NotLeader::Stopped));
    }
}
