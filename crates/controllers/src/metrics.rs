//! Prometheus metrics of the controllers: per-task duration and outcome, per-pass
//! outcome, from the task runner's reports.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tikv_operator_task::{EntryStatus, OutcomeKind, TaskMetrics};

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

/// The registry and the families the runners feed.
pub struct Metrics {
    registry: Registry,
    task_duration: Family<TaskLabels, Histogram>,
    task_total: Family<TaskLabels, Counter>,
    pass_duration: Family<PassLabels, Histogram>,
    pass_total: Family<PassLabels, Counter>,
}

fn duration_buckets() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tikv_operator");
        let task_duration =
            Family::<TaskLabels, Histogram>::new_with_constructor(duration_buckets as fn() -> Histogram);
        let task_total = Family::<TaskLabels, Counter>::default();
        let pass_duration =
            Family::<PassLabels, Histogram>::new_with_constructor(duration_buckets as fn() -> Histogram);
        let pass_total = Family::<PassLabels, Counter>::default();
        registry.register("task_duration_seconds", "Duration of one task of a reconcile pass", task_duration.clone());
        registry.register("tasks", "Tasks run or skipped, by outcome", task_total.clone());
        registry.register("pass_duration_seconds", "Duration of a reconcile pass", pass_duration.clone());
        registry.register("passes", "Reconcile passes, by aggregate outcome", pass_total.clone());
        Self { registry, task_duration, task_total, pass_duration, pass_total }
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
}

impl TaskMetrics for Metrics {
    fn task_finished(&self, controller: &str, task: &str, status: EntryStatus, duration: Duration) {
        let labels = TaskLabels { controller: controller.into(), task: task.into(), status: status.as_str().into() };
        self.task_duration.get_or_create(&labels).observe(duration.as_secs_f64());
        self.task_total.get_or_create(&labels).inc();
    }

    fn pass_finished(&self, controller: &str, outcome: OutcomeKind, duration: Duration) {
        let labels = PassLabels { controller: controller.into(), outcome: outcome.as_str().into() };
        self.pass_duration.get_or_create(&labels).observe(duration.as_secs_f64());
        self.pass_total.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
