//! Gauges computed at scrape time from what the operator already holds: the watch
//! caches (instances, groups, their conditions) and the PD caches (view age, failing
//! polls). A custom collector, so nothing is kept up to date between scrapes.
//!
//! Labels are per cluster and group (`namespace`, `cluster`, `group`, `component`),
//! never per instance or pod: which instance is behind a number is in the object's
//! conditions and Events. One exception: `certificate_not_after_seconds` is per
//! instance (one series per PD or TiKV of a TLS cluster), because an alert on a
//! certificate about to expire must say which instance's, and the series is as long
//! lived as the instance.
//!
//! Ages are measured from the `lastTransitionTime` of the condition that reports the
//! state, so they count from when the condition last changed status (a reason that
//! changes while the status stays, such as `Evicting` to `EvictionStalled`, keeps the
//! age running).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, Weak};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::AtomicU64;
use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_api::{Cluster, PD, PDGroup, TiKV, TiKVGroup};

use crate::common::traits::{Group, Instance};
use crate::context::Context;

type Labels = Vec<(&'static str, String)>;
type F64Gauge = Gauge<f64, AtomicU64>;
type Samples = Vec<(Labels, f64)>;

/// One operation in progress on an instance or a group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Operation {
    /// `offline`, `leader_eviction`, `restart`, `volume_resize`, `volume_modify`,
    /// `member_removal`, `rolling_update`, `scale_in`, `failover`.
    pub name: &'static str,
    /// The condition's reason (bounded: one of `tikv_operator_api::condition::reasons`).
    pub reason: &'static str,
    /// Seconds since the condition reporting it last changed status.
    pub age: f64,
}

fn age(now: Timestamp, since: Timestamp) -> f64 {
    (now.as_millisecond() - since.as_millisecond()).max(0) as f64 / 1000.0
}

/// The reason as one of ours, if it is one of `candidates` (labels stay bounded even if
/// a condition carries a reason we do not know).
fn known(condition: &Condition, candidates: &[&'static str]) -> Option<&'static str> {
    candidates.iter().copied().find(|r| *r == condition.reason)
}

fn false_with(conditions: &[Condition], type_: &str, reasons: &[&'static str]) -> Option<(&'static str, Timestamp)> {
    let c = find_condition(conditions, type_)?;
    (c.status == "False").then_some(())?;
    Some((known(c, reasons)?, c.last_transition_time.0))
}

/// The operations an instance's conditions say are under way.
pub fn instance_operations(conditions: &[Condition], now: Timestamp) -> Vec<Operation> {
    let mut found = Vec::new();
    let mut push = |name, hit: Option<(&'static str, Timestamp)>| {
        if let Some((reason, since)) = hit {
            found.push(Operation { name, reason, age: age(now, since) });
        }
    };
    // Offlined is False from the offline request until PD reports the store Removed,
    // whatever PD says on the way; OfflineCanceled is the end of a cancelled one.
    let offline = find_condition(conditions, types::OFFLINED)
        .filter(|c| c.status == "False" && c.reason != reasons::OFFLINE_CANCELED)
        .map(|c| (known(c, OFFLINE_REASONS).unwrap_or("Other"), c.last_transition_time.0));
    push("offline", offline);
    push(
        "leader_eviction",
        false_with(conditions, types::LEADERS_EVICTED, &[reasons::EVICTING, reasons::EVICTION_STALLED]),
    );
    push("restart", false_with(conditions, types::SYNCED, &[reasons::RESTARTING, reasons::RESTART_BLOCKED]));
    push("volume_resize", false_with(conditions, types::SYNCED, &[reasons::VOLUME_RESIZING]));
    push("volume_modify", false_with(conditions, types::SYNCED, &[reasons::VOLUME_MODIFYING]));
    push("member_removal", false_with(conditions, types::SYNCED, &[reasons::MEMBER_REMOVING]));
    found
}

const OFFLINE_REASONS: &[&str] = &[
    reasons::OFFLINE_PROCESSING,
    reasons::OFFLINE_REFUSED,
    reasons::NOT_ENOUGH_STORES,
    reasons::PD_VIEW_NOT_FRESH,
    reasons::PD_UNAVAILABLE,
];

/// The operations a group's conditions say are under way.
pub fn group_operations(conditions: &[Condition], now: Timestamp) -> Vec<Operation> {
    let mut found = Vec::new();
    let synced = |reason| false_with(conditions, types::SYNCED, &[reason]);
    if let Some((reason, since)) = synced(reasons::NOT_ALL_INSTANCES_UP_TO_DATE) {
        found.push(Operation { name: "rolling_update", reason, age: age(now, since) });
    }
    if let Some((reason, since)) = synced(reasons::SCALING_IN) {
        found.push(Operation { name: "scale_in", reason, age: age(now, since) });
    }
    if let Some(c) = find_condition(conditions, types::FAILOVER)
        && c.status == "True"
        && c.reason == reasons::FAILING_OVER
    {
        found.push(Operation {
            name: "failover",
            reason: reasons::FAILING_OVER,
            age: age(now, c.last_transition_time.0),
        });
    }
    found
}

/// How long the condition has not been True (`None`: it is True). A missing condition
/// counts from the object's creation.
pub fn not_true_for(conditions: &[Condition], type_: &str, created: Option<Timestamp>, now: Timestamp) -> Option<f64> {
    match find_condition(conditions, type_) {
        Some(c) if c.status == "True" => None,
        Some(c) => Some(age(now, c.last_transition_time.0)),
        None => Some(created.map_or(0.0, |at| age(now, at))),
    }
}

/// A count and the largest age of the things counted.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CountAge {
    pub count: u64,
    pub max_age: f64,
}

impl CountAge {
    fn add(&mut self, age: f64) {
        self.count += 1;
        self.max_age = self.max_age.max(age);
    }
}

/// Everything the collector reports, keyed by its labels (ordered, for stable output).
#[derive(Debug, Default)]
pub struct Snapshot {
    pub instances: BTreeMap<Labels, u64>,
    pub not_ready: BTreeMap<Labels, CountAge>,
    pub not_synced: BTreeMap<Labels, CountAge>,
    pub operations: BTreeMap<Labels, CountAge>,
    /// Per cluster: seconds since the PD view was read, and whether polls fail now.
    pub pd_view_age: BTreeMap<Labels, f64>,
    pub pd_poll_failing: BTreeMap<Labels, bool>,
    pub concurrency: BTreeMap<Labels, u64>,
    /// Per cluster: `spec.paused`, and whether its pods are suspended (alerts leave
    /// such clusters out: their instances are not Ready or Synced by the user's wish).
    pub paused: BTreeMap<Labels, bool>,
    pub suspended: BTreeMap<Labels, bool>,
    /// Per instance: the notAfter of the certificate it serves (Unix seconds).
    pub certificate_not_after: BTreeMap<Labels, f64>,
}

fn group_labels(namespace: String, cluster: String, group: String, component: &'static str) -> Labels {
    vec![("namespace", namespace), ("cluster", cluster), ("group", group), ("component", component.to_owned())]
}

impl Snapshot {
    /// Adds the instances of one kind.
    pub fn instances<I: Instance>(&mut self, instances: &[Arc<I>], now: Timestamp) {
        for instance in instances {
            let labels = group_labels(
                instance.namespace().unwrap_or_default(),
                instance.cluster_name(),
                instance.group(),
                I::COMPONENT,
            );
            let conditions = instance.status().map(I::conditions).unwrap_or_default();
            let created = instance.meta().creation_timestamp.as_ref().map(|t| t.0);
            *self.instances.entry(labels.clone()).or_default() += 1;
            let not_ready = self.not_ready.entry(labels.clone()).or_default();
            if let Some(age) = not_true_for(conditions, types::READY, created, now) {
                not_ready.add(age);
            }
            let not_synced = self.not_synced.entry(labels.clone()).or_default();
            if let Some(age) = not_true_for(conditions, types::SYNCED, created, now) {
                not_synced.add(age);
            }
            for op in instance_operations(conditions, now) {
                self.operation(&labels, op);
            }
            if let Some(certificate) = instance.status().and_then(I::serving_certificate) {
                let labels = vec![
                    ("namespace", instance.namespace().unwrap_or_default()),
                    ("cluster", instance.cluster_name()),
                    ("component", I::COMPONENT.to_owned()),
                    ("instance", instance.name_any()),
                ];
                self.certificate_not_after.insert(labels, certificate.not_after.0.as_second() as f64);
            }
        }
    }

    /// Adds the groups of one kind.
    pub fn groups<G: Group>(&mut self, groups: &[Arc<G>], now: Timestamp) {
        for group in groups {
            let labels = group_labels(
                group.namespace().unwrap_or_default(),
                group.cluster_name(),
                group.name_any(),
                G::COMPONENT,
            );
            let conditions = group.status().map(G::conditions).unwrap_or_default();
            for op in group_operations(conditions, now) {
                self.operation(&labels, op);
            }
        }
    }

    /// Adds the Clusters' pause and suspension.
    pub fn clusters(&mut self, clusters: &[Arc<Cluster>]) {
        for cluster in clusters {
            let labels = vec![("namespace", cluster.namespace().unwrap_or_default()), ("cluster", cluster.name_any())];
            let suspended = cluster.spec.suspend_action.as_ref().is_some_and(|a| a.suspend_compute);
            self.paused.insert(labels.clone(), cluster.spec.paused);
            self.suspended.insert(labels, suspended);
        }
    }

    fn operation(&mut self, labels: &Labels, op: Operation) {
        let mut labels = labels.clone();
        labels.push(("operation", op.name.to_owned()));
        labels.push(("reason", op.reason.to_owned()));
        self.operations.entry(labels).or_default().add(op.age);
    }

    /// Reads everything from the context's caches.
    pub fn of(ctx: &Context) -> Self {
        let now = ctx.now();
        let mut snapshot = Snapshot::default();
        let caches = &ctx.caches;
        snapshot.instances::<TiKV>(&caches.tikvs.store().state(), now);
        snapshot.instances::<PD>(&caches.pds.store().state(), now);
        snapshot.groups::<TiKVGroup>(&caches.tikv_groups.store().state(), now);
        snapshot.groups::<PDGroup>(&caches.pd_groups.store().state(), now);
        snapshot.clusters(&caches.clusters.store().state());
        for (key, handle) in ctx.pd.handles() {
            let labels = vec![("namespace", key.namespace.clone()), ("cluster", key.name.clone())];
            let pd = handle.cache.snapshot();
            if let Some(age) = handle.cache.view_age() {
                snapshot.pd_view_age.insert(labels.clone(), age.as_secs_f64());
            }
            snapshot.pd_poll_failing.insert(labels, pd.last_error.is_some());
        }
        let c = ctx.config.concurrency;
        for (controller, limit) in [
            (crate::cluster::NAME, c.cluster),
            (crate::pdgroup::NAME, c.pd_group),
            (crate::pd::NAME, c.pd),
            (crate::tikvgroup::NAME, c.tikv_group),
            (crate::tikv::NAME, c.tikv),
        ] {
            snapshot.concurrency.insert(vec![("controller", controller.to_owned())], u64::from(limit));
        }
        snapshot
    }

    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let count = |map: &BTreeMap<Labels, CountAge>| map.iter().map(|(l, v)| (l.clone(), v.count as f64)).collect();
        let oldest = |map: &BTreeMap<Labels, CountAge>| {
            map.iter().filter(|(_, v)| v.count > 0).map(|(l, v)| (l.clone(), v.max_age)).collect()
        };
        let flag =
            |map: &BTreeMap<Labels, bool>| map.iter().map(|(l, v)| (l.clone(), f64::from(u8::from(*v)))).collect();
        let families: [(&str, &str, Samples); 12] = [
            (
                "instances",
                "PD and TiKV instances, per group",
                self.instances.iter().map(|(l, v)| (l.clone(), *v as f64)).collect(),
            ),
            ("instances_not_ready", "Instances whose Ready condition is not True", count(&self.not_ready)),
            (
                "instance_not_ready_max_age_seconds",
                "How long the longest not-Ready instance of the group has been so",
                oldest(&self.not_ready),
            ),
            ("instances_not_synced", "Instances whose Synced condition is not True", count(&self.not_synced)),
            (
                "instance_not_synced_max_age_seconds",
                "How long the longest not-Synced instance of the group has been so",
                oldest(&self.not_synced),
            ),
            (
                "operations_in_progress",
                "Operations under way (offline, eviction, restart, ...)",
                count(&self.operations),
            ),
            (
                "operation_max_age_seconds",
                "Age of the oldest operation of its kind under way in the group",
                oldest(&self.operations),
            ),
            (
                "pd_view_age_seconds",
                "Seconds since the last successful poll of the cluster's PD",
                self.pd_view_age.iter().map(|(l, v)| (l.clone(), *v)).collect(),
            ),
            (
                "pd_poll_failing",
                "1 while the polls of the cluster's PD fail (the last good view is kept, stale)",
                flag(&self.pd_poll_failing),
            ),
            ("cluster_paused", "1 while the Cluster's spec.paused is set", flag(&self.paused)),
            ("cluster_suspended", "1 while the Cluster's pods are suspended (suspendAction)", flag(&self.suspended)),
            (
                "certificate_not_after_seconds",
                "When the TLS certificate the instance serves expires (Unix seconds), as last seen in a handshake",
                self.certificate_not_after.iter().map(|(l, v)| (l.clone(), *v)).collect(),
            ),
        ];
        for (name, help, values) in families {
            gauge_family(&mut encoder, name, help, values)?;
        }
        let limits = self.concurrency.iter().map(|(l, v)| (l.clone(), *v as f64)).collect();
        gauge_family(&mut encoder, "reconcile_concurrency", "Reconciles a controller runs at once, at most", limits)
    }
}

fn gauge_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: Samples,
) -> Result<(), std::fmt::Error> {
    let family = Family::<Labels, F64Gauge>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    family.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// The collector registered with the operator's registry.
#[derive(Debug)]
pub(crate) struct StateCollector {
    context: Arc<OnceLock<Weak<Context>>>,
}

impl StateCollector {
    pub(crate) fn new(context: Arc<OnceLock<Weak<Context>>>) -> Self {
        Self { context }
    }
}

impl Collector for StateCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        match self.context.get().and_then(Weak::upgrade) {
            Some(ctx) => Snapshot::of(&ctx).encode(encoder),
            // Before the controllers start: the families with no samples.
            None => Snapshot::default().encode(encoder),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use crate::testing::{sample_tikv, sample_tikv_group};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use tikv_operator_api::TiKVStatus;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn condition(type_: &str, status: &str, reason: &str, since: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: Time(at(since)),
            observed_generation: None,
        }
    }

    #[test]
    fn an_instance_reports_its_offline_and_eviction_with_their_ages() {
        let conditions = vec![
            condition(types::OFFLINED, "False", reasons::OFFLINE_PROCESSING, 1_000),
            condition(types::LEADERS_EVICTED, "False", reasons::EVICTION_STALLED, 1_500),
            condition(types::SYNCED, "False", reasons::RESTARTING, 1_900),
        ];
        let ops = instance_operations(&conditions, at(2_000));
        assert_eq!(
            ops,
            vec![
                Operation { name: "offline", reason: reasons::OFFLINE_PROCESSING, age: 1_000.0 },
                Operation { name: "leader_eviction", reason: reasons::EVICTION_STALLED, age: 500.0 },
                Operation { name: "restart", reason: reasons::RESTARTING, age: 100.0 },
            ]
        );
    }

    #[test]
    fn finished_or_cancelled_operations_are_not_in_progress() {
        let conditions = vec![
            condition(types::OFFLINED, "False", reasons::OFFLINE_CANCELED, 1_000),
            condition(types::LEADERS_EVICTED, "True", reasons::EVICTED, 1_500),
            condition(types::SYNCED, "True", reasons::SYNCED, 1_900),
        ];
        assert_eq!(instance_operations(&conditions, at(2_000)), vec![]);
        let done = vec![condition(types::OFFLINED, "True", reasons::OFFLINE_COMPLETED, 1_000)];
        assert_eq!(instance_operations(&done, at(2_000)), vec![]);
    }

    #[test]
    fn groups_report_rolling_updates_scale_ins_and_failovers() {
        let conditions = vec![
            condition(types::SYNCED, "False", reasons::NOT_ALL_INSTANCES_UP_TO_DATE, 100),
            condition(types::FAILOVER, "True", reasons::FAILING_OVER, 150),
        ];
        let ops = group_operations(&conditions, at(200));
        assert_eq!(
            ops,
            vec![
                Operation { name: "rolling_update", reason: reasons::NOT_ALL_INSTANCES_UP_TO_DATE, age: 100.0 },
                Operation { name: "failover", reason: reasons::FAILING_OVER, age: 50.0 },
            ]
        );
        let idle = vec![condition(types::FAILOVER, "False", reasons::NO_STORE_DOWN, 150)];
        assert_eq!(group_operations(&idle, at(200)), vec![]);
    }

    #[test]
    fn not_ready_counts_from_the_transition_or_from_creation() {
        let ready = vec![condition(types::READY, "True", reasons::READY, 10)];
        assert_eq!(not_true_for(&ready, types::READY, Some(at(0)), at(100)), None);
        let not_ready = vec![condition(types::READY, "False", reasons::POD_NOT_READY, 40)];
        assert_eq!(not_true_for(&not_ready, types::READY, Some(at(0)), at(100)), Some(60.0));
        assert_eq!(not_true_for(&[], types::READY, Some(at(30)), at(100)), Some(70.0));
    }

    #[test]
    fn the_serving_certificate_s_expiry_is_reported_per_instance() {
        let mut served = sample_tikv("tikv-aaaaaa", "tikv");
        served.status = Some(TiKVStatus {
            serving_certificate: Some(tikv_operator_api::ServingCertificate {
                not_after: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at(1_900_000_000)),
                serial_number: "0a".into(),
            }),
            ..TiKVStatus::default()
        });
        let plain = sample_tikv("tikv-bbbbbb", "tikv");
        let mut snapshot = Snapshot::default();
        snapshot.instances::<TiKV>(&[Arc::new(served), Arc::new(plain)], at(100));
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::with_prefix("tikv_operator");
        registry.register_collector(Box::new(Fixed(snapshot)));
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let series: Vec<&str> =
            text.lines().filter(|l| l.starts_with("tikv_operator_certificate_not_after_seconds{")).collect();
        assert_eq!(
            series,
            vec![
                r#"tikv_operator_certificate_not_after_seconds{namespace="default",cluster="basic",component="tikv",instance="tikv-aaaaaa"} 1900000000.0"#
            ],
            "only instances that serve a certificate: {text}"
        );
    }

    #[test]
    fn a_snapshot_aggregates_per_group_never_per_instance() {
        let mut ready = sample_tikv("tikv-aaaaaa", "tikv");
        ready.status = Some(TiKVStatus::default());
        ready.status.as_mut().unwrap().common.conditions = vec![
            condition(types::READY, "True", reasons::READY, 0),
            condition(types::SYNCED, "True", reasons::SYNCED, 0),
        ];
        let mut leaving = sample_tikv("tikv-bbbbbb", "tikv");
        leaving.status = Some(TiKVStatus::default());
        leaving.status.as_mut().unwrap().common.conditions = vec![
            condition(types::READY, "False", reasons::STORE_NOT_UP, 50),
            condition(types::SYNCED, "True", reasons::SYNCED, 0),
            condition(types::OFFLINED, "False", reasons::OFFLINE_PROCESSING, 40),
        ];
        let mut group = sample_tikv_group("tikv", 2);
        group.status.get_or_insert_default().common.conditions =
            vec![condition(types::SYNCED, "False", reasons::SCALING_IN, 40)];
        let mut snapshot = Snapshot::default();
        let mut paused = crate::testing::sample_cluster("basic");
        paused.spec.paused = true;
        snapshot.clusters(&[Arc::new(paused)]);
        snapshot.instances::<TiKV>(&[Arc::new(ready), Arc::new(leaving)], at(100));
        snapshot.groups::<TiKVGroup>(&[Arc::new(group)], at(100));
        let metrics = Metrics::default();
        let mut text = String::new();
        let mut registry = prometheus_client::registry::Registry::with_prefix("tikv_operator");
        registry.register_collector(Box::new(Fixed(snapshot)));
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        let group = r#"namespace="default",cluster="basic",group="tikv",component="tikv""#;
        for line in [
            format!("tikv_operator_instances{{{group}}} 2.0"),
            format!("tikv_operator_instances_not_ready{{{group}}} 1.0"),
            format!("tikv_operator_instance_not_ready_max_age_seconds{{{group}}} 50.0"),
            format!("tikv_operator_instances_not_synced{{{group}}} 0.0"),
            format!(
                "tikv_operator_operations_in_progress{{{group},operation=\"offline\",reason=\"OfflineProcessing\"}} 1.0"
            ),
            format!(
                "tikv_operator_operation_max_age_seconds{{{group},operation=\"offline\",reason=\"OfflineProcessing\"}} 60.0"
            ),
            format!("tikv_operator_operations_in_progress{{{group},operation=\"scale_in\",reason=\"ScalingIn\"}} 1.0"),
            r#"tikv_operator_cluster_paused{namespace="default",cluster="basic"} 1.0"#.to_string(),
            r#"tikv_operator_cluster_suspended{namespace="default",cluster="basic"} 0.0"#.to_string(),
        ] {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("tikv-bbbbbb"), "no per-instance label");
        assert!(!text.contains("instance_not_synced_max_age_seconds{"), "no age without a not-synced instance");
        // Before the controllers start, the families are there with no samples.
        assert!(metrics.encode().contains("# TYPE tikv_operator_operations_in_progress gauge"));
    }

    #[tokio::test]
    async fn the_operator_s_metrics_read_its_caches_and_pd_views_at_scrape_time() {
        let env = crate::testing::TestEnv::start().await;
        env.create(sample_tikv("tikv-aaaaaa", "tikv")).await;
        let pd = crate::testing::FakePd::bootstrapped().member("pd-0", 1).leader("pd-0");
        env.ctx.pd.insert(&crate::pd_registry::ClusterKey::new("default", "basic"), "http://pd", pd.handle());
        let mut polled = env.ctx.pd.subscribe();
        let _ = polled.recv().await;
        env.synced().await;
        env.ctx.metrics.attach(&env.ctx);
        let text = env.ctx.metrics.encode();
        let group = r#"namespace="default",cluster="basic",group="tikv",component="tikv""#;
        assert!(text.contains(&format!("tikv_operator_instances{{{group}}} 1.0")), "{text}");
        assert!(text.contains(&format!("tikv_operator_instances_not_ready{{{group}}} 1.0")), "{text}");
        assert!(text.contains(r#"tikv_operator_pd_poll_failing{namespace="default",cluster="basic"} 0.0"#), "{text}");
        assert!(text.contains(r#"tikv_operator_pd_view_age_seconds{namespace="default",cluster="basic"}"#), "{text}");
        assert!(text.contains(r#"tikv_operator_reconcile_concurrency{controller="tikv"} 4.0"#), "{text}");
        assert!(env.requests().is_empty(), "a scrape reads caches only: {:?}", env.requests());
    }

    #[derive(Debug)]
    struct Fixed(Snapshot);

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            self.0.encode(encoder)
        }
    }
}
