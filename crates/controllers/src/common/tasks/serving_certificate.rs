//! `serving_certificate`: with `tlsCluster` on, learns which certificate the instance
//! serves from a TLS handshake with it (PD: its client URL; TiKV: its status address)
//! and records it in `status.servingCertificate` (notAfter and serial). What the
//! process presents is the truth the user needs: it shows a certificate that is about
//! to expire, and that a rotated Secret reached the process (the kubelet updates the
//! mounted files about a minute after the Secret changes, and PD and TiKV reload them).
//!
//! Bounded rate: one handshake per instance when its Pod runs and the last check of
//! this Pod (by UID) is older than [`OperatorConfig::certificate_check_interval`] on
//! the operator's clock; a new Pod (a restart) is checked at once. Component Secrets
//! are not watched (DESIGN §8: no caching of Secrets), so a rotation shows within one
//! interval after the process reloads. The value goes into the status being built;
//! `write_status` writes only when it changed, so a check that finds the same
//! certificate writes nothing.
//!
//! Reads: the Pod (from the pass), the PD handle (its client trusts the cluster CA and
//! presents the client certificate). Writes nothing itself. Outcomes: Complete when
//! TLS is off (a value left from before is dropped) or there is nothing to look at
//! yet; Retry until the next check is due; a failed handshake keeps the last value and
//! is retried at the next interval (its error is in the report).
//!
//! [`OperatorConfig::certificate_check_interval`]: crate::context::OperatorConfig::certificate_check_interval

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use tikv_operator_api::ServingCertificate;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::Instance;
use crate::common::instance::{InstanceState, pod_running, pod_terminating};

/// When each instance's serving certificate was last looked at, and in which Pod.
#[derive(Debug, Default)]
pub struct CertificateChecks {
    last: Mutex<HashMap<String, (String, Timestamp)>>,
}

impl CertificateChecks {
    /// How long until `key`'s Pod `pod_uid` is due a check (zero: now).
    pub(crate) fn due_in(&self, key: &str, pod_uid: &str, now: Timestamp, interval: Duration) -> Duration {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match last.get(key) {
            Some((uid, at)) if uid == pod_uid => {
                let age = now.duration_since(*at).unsigned_abs();
                interval.saturating_sub(age)
            }
            _ => Duration::ZERO,
        }
    }

    pub(crate) fn checked(&self, key: &str, pod_uid: &str, now: Timestamp) {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned(), (pod_uid.to_owned(), now));
    }

    /// Forgets `key` (TLS off, instance gone).
    pub fn forget(&self, key: &str) {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

pub fn serving_certificate<S: InstanceState>() -> Node<S> {
    task("serving_certificate", |s: &mut S| Box::pin(run(s)))
}

async fn run<S: InstanceState>(s: &mut S) -> Outcome {
    let key = s.pass().key();
    let ctx = s.pass().ctx.clone();
    if !s.pass().tls_enabled() {
        ctx.certificate_checks.forget(&key);
        let recorded = <S::I as Instance>::serving_certificate_mut(&mut s.pass_mut().status);
        return match recorded.take() {
            Some(_) => Outcome::complete("TLS is off: the serving certificate is no longer reported"),
            None => Outcome::complete("TLS is off"),
        };
    }
    let Some(instance) = s.pass().object.clone() else {
        return Outcome::complete("no instance");
    };
    let Some(pod) = s.parts().pod.as_ref().filter(|p| pod_running(p) && !pod_terminating(p)) else {
        return Outcome::complete("the pod is not running: nothing serves a certificate yet");
    };
    let pod_uid = pod.uid().unwrap_or_default();
    let Some(pd) = s.pass().pd() else {
        return Outcome::complete("the cluster's PD client is not registered yet");
    };
    let interval = ctx.config.certificate_check_interval;
    let now = ctx.now();
    let due_in = ctx.certificate_checks.due_in(&key, &pod_uid, now, interval);
    if !due_in.is_zero() {
        return Outcome::retry(due_in, "serving certificate checked recently");
    }
    let (url, path) = instance.tls_endpoint();
    let result = pd.serving_certificate(&url, path).await;
    ctx.certificate_checks.checked(&key, &pod_uid, now);
    match result {
        Ok(seen) => {
            let value = ServingCertificate { not_after: Time(seen.not_after), serial_number: seen.serial_number };
            let recorded = <S::I as Instance>::serving_certificate_mut(&mut s.pass_mut().status);
            let message = if recorded.as_ref() == Some(&value) {
                format!("serves the same certificate (notAfter {})", value.not_after.0)
            } else {
                format!("serves certificate {} (notAfter {})", value.serial_number, value.not_after.0)
            };
            *recorded = Some(value);
            Outcome::retry(interval, message)
        }
        Err(error) => Outcome::retry(interval, format!("could not look at the certificate {url} serves: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd::state::PdState;
    use crate::testing::{FakePd, TestEnv, running_pod, sample_cluster, sample_pd};
    use crate::tikv::state::TikvState;
    use tikv_operator_api::cluster::TlsCluster;
    use tikv_operator_pd::CertificateSummary;
    use tikv_operator_task::{OutcomeKind, Runner};

    fn summary(serial: &str, not_after: &str) -> CertificateSummary {
        CertificateSummary { not_after: not_after.parse().unwrap(), serial_number: serial.into() }
    }

    fn tls_cluster() -> tikv_operator_api::Cluster {
        let mut cluster = sample_cluster("basic");
        cluster.spec.tls_cluster = Some(TlsCluster { enabled: true });
        cluster
    }

    const URL: &str = "https://pd-pd-aaaaaa.pd-pd-peer.default.svc:2379";

    /// A PD instance whose pod runs, in a TLS cluster whose PD is the fake.
    fn pd_state(env: &TestEnv, pd: &FakePd, cluster: tikv_operator_api::Cluster) -> PdState {
        let key = crate::pd_registry::ClusterKey::new("default", "basic");
        if env.ctx.pd.get(&key).is_none() {
            env.ctx.pd.insert(&key, "https://pd", pd.handle());
        }
        let mut state = PdState::new(env.ctx.clone(), "default", "pd-aaaaaa");
        state.pass = state.pass.with_object(sample_pd("pd-aaaaaa", "pd")).with_cluster(cluster);
        state.parts.pod = Some(running_pod("pd-pd-aaaaaa", "uid-1"));
        state.parts.pod_loaded = true;
        state
    }

    #[tokio::test]
    async fn a_running_instance_is_checked_once_per_interval_and_a_new_pod_at_once() {
        let env = TestEnv::start().await;
        let pd = FakePd::bootstrapped();
        pd.serves(URL, summary("0a", "2031-01-02T00:00:00Z"));
        let runner = Runner::new("test", [serving_certificate::<PdState>()]);

        let mut state = pd_state(&env, &pd, tls_cluster());
        let report = runner.run("k", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Retry, "{report}");
        let seen = state.pass.status.serving_certificate.clone().unwrap();
        assert_eq!(
            (seen.serial_number.as_str(), seen.not_after.0.to_string().as_str()),
            ("0a", "2031-01-02T00:00:00Z")
        );
        assert_eq!(pd.certificate_checks(), vec![format!("{URL}/pd/api/v1/ping")]);

        // Within the interval: no handshake, the value stays.
        env.clock.advance(Duration::from_secs(60));
        let mut state = pd_state(&env, &pd, tls_cluster());
        state.pass.status.serving_certificate = Some(seen.clone());
        let report = runner.run("k", &mut state).await;
        assert_eq!(report.entry("serving_certificate").unwrap().message(), "serving certificate checked recently");
        assert_eq!(pd.certificate_checks().len(), 1);

        // The interval passed: the rotated certificate is seen.
        env.clock.advance(env.ctx.config.certificate_check_interval);
        pd.serves(URL, summary("0b", "2032-01-02T00:00:00Z"));
        runner.run("k", &mut state).await;
        assert_eq!(state.pass.status.serving_certificate.as_ref().unwrap().serial_number, "0b");
        assert_eq!(pd.certificate_checks().len(), 2);

        // A new Pod (a restart) is looked at at once.
        state.parts.pod = Some(running_pod("pd-pd-aaaaaa", "uid-2"));
        runner.run("k", &mut state).await;
        assert_eq!(pd.certificate_checks().len(), 3);
    }

    #[tokio::test]
    async fn a_failed_handshake_keeps_the_last_value_and_nothing_is_checked_without_a_running_pod() {
        let env = TestEnv::start().await;
        let pd = FakePd::bootstrapped();
        let runner = Runner::new("test", [serving_certificate::<PdState>()]);
        let mut state = pd_state(&env, &pd, tls_cluster());
        let before =
            ServingCertificate { not_after: Time("2030-01-01T00:00:00Z".parse().unwrap()), serial_number: "01".into() };
        state.pass.status.serving_certificate = Some(before.clone());
        let report = runner.run("k", &mut state).await;
        let entry = report.entry("serving_certificate").unwrap();
        assert_eq!(entry.kind(), Some(OutcomeKind::Retry));
        assert!(entry.message().starts_with("could not look at the certificate"), "{}", entry.message());
        assert_eq!(state.pass.status.serving_certificate, Some(before));

        let mut state = pd_state(&env, &pd, tls_cluster());
        state.parts.pod = None;
        let report = runner.run("k2", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete);
        assert_eq!(pd.certificate_checks().len(), 1, "only the first pass looked");
    }

    #[tokio::test]
    async fn tls_off_drops_the_value_and_looks_at_nothing() {
        let env = TestEnv::start().await;
        let pd = FakePd::bootstrapped();
        let runner = Runner::new("test", [serving_certificate::<TikvState>()]);
        let key = crate::pd_registry::ClusterKey::new("default", "basic");
        env.ctx.pd.insert(&key, "http://pd", pd.handle());
        let mut state = TikvState::new(env.ctx.clone(), "default", "tikv-aaaaaa");
        let mut tikv = crate::testing::sample_tikv("tikv-aaaaaa", "tikv");
        tikv.status = Some(tikv_operator_api::TiKVStatus {
            serving_certificate: Some(ServingCertificate {
                not_after: Time("2030-01-01T00:00:00Z".parse().unwrap()),
                serial_number: "01".into(),
            }),
            ..Default::default()
        });
        state.pass = state.pass.with_object(tikv).with_cluster(sample_cluster("basic"));
        state.parts.pod = Some(running_pod("tikv-tikv-aaaaaa", "uid-1"));
        let report = runner.run("k", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete);
        assert_eq!(state.pass.status.serving_certificate, None);
        assert!(pd.certificate_checks().is_empty());
    }

    #[tokio::test]
    async fn tikv_is_asked_at_its_status_address() {
        let env = TestEnv::start().await;
        let pd = FakePd::bootstrapped();
        let runner = Runner::new("test", [serving_certificate::<TikvState>()]);
        let key = crate::pd_registry::ClusterKey::new("default", "basic");
        env.ctx.pd.insert(&key, "https://pd", pd.handle());
        let mut state = TikvState::new(env.ctx.clone(), "default", "tikv-aaaaaa");
        state.pass =
            state.pass.with_object(crate::testing::sample_tikv("tikv-aaaaaa", "tikv")).with_cluster(tls_cluster());
        state.parts.pod = Some(running_pod("tikv-tikv-aaaaaa", "uid-1"));
        runner.run("k", &mut state).await;
        let checks = pd.certificate_checks();
        assert_eq!(checks.len(), 1);
        assert!(
            checks[0].starts_with("https://tikv-tikv-aaaaaa.") && checks[0].ends_with(":20180/status"),
            "{checks:?}"
        );
    }
}
