//! Prometheus metrics of the operator, served on `/metrics` (every name below starts
//! with `tikv_operator_`; `docs/metrics.md` says what each means and what to do).
//!
//! Fed as things happen: per-task duration and outcome and per-pass outcome from the
//! task runner's reports, reconciles in flight, PD requests (through the PD client's
//! [`RequestObserver`] hook), Events recorded, build info. Computed at scrape time from
//! the watch caches and the PD caches ([`state`]): instances not Ready or not Synced and
//! for how long, operations in progress and their age, PD view age. Nothing runs
//! between scrapes for those, so an idle operator spends nothing on them.

pub mod state;

#[cfg(test)]
mod monitoring_tests;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tikv_operator_pd::{RequestDone, RequestObserver};
use tikv_operator_task::{EntryStatus, OutcomeKind, TaskDone, TaskMetrics};

use crate::context::Context;
use crate::pd_registry::ClusterKey;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    controller: String,
    task: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PassLabels {
    controller: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PdLatencyLabels {
    namespace: String,
    cluster: String,
    method: String,
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PdRequestLabels {
    namespace: String,
    cluster: String,
    method: String,
    endpoint: String,
    /// `2xx`, `4xx`, `5xx`, `timeout`, `transport`.
    outcome: String,
}

/// `type` (`Normal` or `Warning`) and `reason`.
type EventLabels = [(&'static str, String); 2];

/// The registry and the families the operator feeds.
pub struct Metrics {
    registry: Registry,
    task_duration: Family<TaskLabels, Histogram>,
    task_total: Family<TaskLabels, Counter>,
    pass_duration: Family<PassLabels, Histogram>,
    pass_total: Family<PassLabels, Counter>,
    in_flight: Family<ControllerLabels, Gauge>,
    pd_duration: Family<PdLatencyLabels, Histogram>,
    pd_requests: Family<PdRequestLabels, Counter>,
    events: Family<EventLabels, Counter>,
    /// What the scrape-time collector reads; set once the controllers start.
    context: Arc<OnceLock<Weak<Context>>>,
    /// Another receiver of every task and pass event (a tracer, a test), if set.
    task_observer: OnceLock<Arc<dyn TaskMetrics>>,
}

fn duration_buckets() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0])
}

fn pd_buckets() -> Histogram {
    Histogram::new([0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}

/// This build's version, as `tikv_operator_build_info` reports it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tikv_operator");
        let task_duration =
            Family::<TaskLabels, Histogram>::new_with_constructor(duration_buckets as fn() -> Histogram);
        let task_total = Family::<TaskLabels, Counter>::default();
        let pass_duration =
            Family::<PassLabels, Histogram>::new_with_constructor(duration_buckets as fn() -> Histogram);
        let pass_total = Family::<PassLabels, Counter>::default();
        let in_flight = Family::<ControllerLabels, Gauge>::default();
        let pd_duration = Family::<PdLatencyLabels, Histogram>::new_with_constructor(pd_buckets as fn() -> Histogram);
        let pd_requests = Family::<PdRequestLabels, Counter>::default();
        let events = Family::<EventLabels, Counter>::default();
        registry.register("task_duration_seconds", "Duration of one task of a reconcile pass", task_duration.clone());
        registry.register("tasks", "Tasks run or skipped, by outcome", task_total.clone());
        registry.register("pass_duration_seconds", "Duration of a reconcile pass", pass_duration.clone());
        registry.register(
            "passes",
            "Reconcile passes, by aggregate outcome (fail: the pass errored)",
            pass_total.clone(),
        );
        registry.register(
            "reconciles_in_flight",
            "Reconcile passes running now; at the controller's concurrency, more objects wait",
            in_flight.clone(),
        );
        registry.register(
            "pd_request_duration_seconds",
            "Duration of one HTTP request to PD (or a TiKV status server), by endpoint template",
            pd_duration.clone(),
        );
        registry.register("pd_requests", "HTTP requests to PD, by endpoint template and outcome", pd_requests.clone());
        registry.register("events", "Kubernetes Events recorded, by type and reason", events.clone());
        registry.register("build", "The operator's build", Info::new(vec![("version", VERSION)]));
        let context = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(state::StateCollector::new(context.clone())));
        Self {
            registry,
            task_duration,
            task_total,
            pass_duration,
            pass_total,
            in_flight,
            pd_duration,
            pd_requests,
            events,
            context,
            task_observer: OnceLock::new(),
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Lets the scrape-time gauges read `ctx`'s caches (the first call wins; the
    /// context is held weakly, so the metrics never keep it alive).
    pub fn attach(&self, ctx: &Arc<Context>) {
        let _ = self.context.set(Arc::downgrade(ctx));
    }

    /// Forwards every task boundary and pass (after counting it here) to `observer` as
    /// well, as the runner reports them (the first call wins), like the PD client's
    /// [`RequestObserver`] for requests.
    pub fn observe_tasks(&self, observer: Arc<dyn TaskMetrics>) {
        let _ = self.task_observer.set(observer);
    }

    /// Counts a reconcile of `controller` as running until the guard is dropped.
    pub fn reconcile_started(&self, controller: &str) -> InFlight {
        let gauge = self.in_flight.get_or_create(&ControllerLabels { controller: controller.into() }).clone();
        gauge.inc();
        InFlight(gauge)
    }

    /// Counts an Event recorded.
    pub fn event_recorded(&self, type_: &str, reason: &str) {
        let labels: EventLabels = [("type", type_.into()), ("reason", reason.into())];
        self.events.get_or_create(&labels).inc();
    }

    /// The observer to install on the PD client of `cluster`.
    pub fn pd_observer(self: &Arc<Self>, cluster: &ClusterKey) -> Arc<dyn RequestObserver> {
        Arc::new(PdRequests { metrics: Arc::downgrade(self), cluster: cluster.clone() })
    }
}

/// A reconcile counted in `reconciles_in_flight` while alive.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

struct PdRequests {
    metrics: Weak<Metrics>,
    cluster: ClusterKey,
}

impl RequestObserver for PdRequests {
    fn request_done(&self, request: &RequestDone<'_>) {
        let Some(metrics) = self.metrics.upgrade() else { return };
        let latency = PdLatencyLabels {
            namespace: self.cluster.namespace.clone(),
            cluster: self.cluster.name.clone(),
            method: request.method.into(),
            endpoint: request.endpoint.into(),
        };
        metrics.pd_duration.get_or_create(&latency).observe(request.duration.as_secs_f64());
        let labels = PdRequestLabels {
            namespace: latency.namespace,
            cluster: latency.cluster,
            method: latency.method,
            endpoint: latency.endpoint,
            outcome: request.outcome.class().into(),
        };
        metrics.pd_requests.get_or_create(&labels).inc();
    }
}

impl TaskMetrics for Metrics {
    fn task_finished(&self, controller: &str, task: &str, status: EntryStatus, duration: Duration) {
        let labels = TaskLabels { controller: controller.into(), task: task.into(), status: status.as_str().into() };
        self.task_duration.get_or_create(&labels).observe(duration.as_secs_f64());
        self.task_total.get_or_create(&labels).inc();
    }

    fn task_done(&self, done: &TaskDone<'_>) {
        self.task_finished(done.controller, done.task, done.status, done.duration);
        if let Some(observer) = self.task_observer.get() {
            observer.task_done(done);
        }
    }

    fn pass_finished(&self, controller: &str, outcome: OutcomeKind, duration: Duration) {
        let labels = PassLabels { controller: controller.into(), outcome: outcome.as_str().into() };
        self.pass_duration.get_or_create(&labels).observe(duration.as_secs_f64());
        self.pass_total.get_or_create(&labels).inc();
        if let Some(observer) = self.task_observer.get() {
            observer.pass_finished(controller, outcome, duration);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tikv_operator_pd::RequestOutcome;

    #[test]
    fn tasks_and_passes_show_in_the_exposition() {
        let metrics = Metrics::default();
        metrics.task_finished("tikv", "pod", EntryStatus::Ran(OutcomeKind::Wait), Duration::from_millis(3));
        metrics.pass_finished("tikv", OutcomeKind::Wait, Duration::from_millis(4));
        let text = metrics.encode();
        assert!(text.contains(r#"tikv_operator_tasks_total{controller="tikv",task="pod",status="wait"} 1"#), "{text}");
        assert!(text.contains(r#"tikv_operator_passes_total{controller="tikv",outcome="wait"} 1"#), "{text}");
        assert!(text.contains("tikv_operator_task_duration_seconds_bucket"));
    }

    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);

    impl TaskMetrics for Seen {
        fn task_finished(&self, _: &str, _: &str, _: EntryStatus, _: Duration) {}

        fn task_done(&self, done: &TaskDone<'_>) {
            self.0.lock().unwrap().push(format!("{} {} {} {}", done.controller, done.object, done.pass, done.task));
        }

        fn pass_finished(&self, controller: &str, outcome: OutcomeKind, _: Duration) {
            self.0.lock().unwrap().push(format!("pass {controller} {outcome}"));
        }
    }

    #[test]
    fn task_events_reach_the_observer_after_being_counted() {
        let metrics = Metrics::default();
        let seen = Arc::new(Seen::default());
        metrics.observe_tasks(seen.clone());
        let status = EntryStatus::Ran(OutcomeKind::Complete);
        let done =
            TaskDone { controller: "tikv", object: "db/a", pass: 7, task: "pod", status, duration: Duration::ZERO };
        metrics.task_done(&done);
        metrics.pass_finished("tikv", OutcomeKind::Complete, Duration::ZERO);
        assert_eq!(*seen.0.lock().unwrap(), ["tikv db/a 7 pod", "pass tikv complete"]);
        assert!(
            metrics.encode().contains(r#"tikv_operator_tasks_total{controller="tikv",task="pod",status="complete"} 1"#)
        );
    }

    #[test]
    fn build_info_names_the_version() {
        let text = Metrics::default().encode();
        assert!(text.contains(&format!("tikv_operator_build_info{{version=\"{VERSION}\"}} 1")), "{text}");
    }

    #[test]
    fn reconciles_in_flight_count_the_live_guards() {
        let metrics = Metrics::default();
        let first = metrics.reconcile_started("tikv");
        let second = metrics.reconcile_started("tikv");
        assert!(metrics.encode().contains(r#"tikv_operator_reconciles_in_flight{controller="tikv"} 2"#));
        drop(first);
        drop(second);
        assert!(metrics.encode().contains(r#"tikv_operator_reconciles_in_flight{controller="tikv"} 0"#));
    }

    #[test]
    fn pd_requests_are_labelled_by_cluster_and_endpoint_template() {
        let metrics = Arc::new(Metrics::default());
        let observer = metrics.pd_observer(&ClusterKey::new("db", "basic"));
        let done = |outcome| RequestDone {
            method: "DELETE",
            endpoint: "/pd/api/v1/store/{id}",
            outcome,
            duration: Duration::from_millis(30),
        };
        observer.request_done(&done(RequestOutcome::Answered(200)));
        observer.request_done(&done(RequestOutcome::Timeout));
        let text = metrics.encode();
        let labels = r#"namespace="db",cluster="basic",method="DELETE",endpoint="/pd/api/v1/store/{id}""#;
        assert!(text.contains(&format!("tikv_operator_pd_requests_total{{{labels},outcome=\"2xx\"}} 1")), "{text}");
        assert!(text.contains(&format!("tikv_operator_pd_requests_total{{{labels},outcome=\"timeout\"}} 1")));
        assert!(text.contains(&format!("tikv_operator_pd_request_duration_seconds_count{{{labels}}} 2")), "{text}");
        // The observer does not keep the metrics alive.
        drop(metrics);
        observer.request_done(&done(RequestOutcome::Transport));
    }

    #[test]
    fn events_are_counted_by_type_and_reason() {
        let metrics = Metrics::default();
        metrics.event_recorded("Warning", "EvictionStalled");
        let text = metrics.encode();
        assert!(text.contains(r#"tikv_operator_events_total{type="Warning",reason="EvictionStalled"} 1"#), "{text}");
    }
}
