//! The dashboard and the alert rules in `deploy/monitoring` name only metrics the
//! operator exposes, with the suffixes their types give them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tikv_operator_pd::{RequestDone, RequestOutcome};
use tikv_operator_task::{EntryStatus, OutcomeKind, TaskMetrics};

use super::Metrics;
use crate::pd_registry::ClusterKey;

fn monitoring_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/monitoring")
}

/// Every `expr` string anywhere in the document.
fn exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The `tikv_operator_*` names in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("tikv_operator_") {
        let tail = &rest[at..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        // A name, not the tail of a longer identifier.
        let preceded = rest[..at].chars().last().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !preceded {
            names.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The sample names the exposition can carry: from each `# TYPE` line, with the
/// suffixes of its type (counters `_total`, histograms `_bucket`/`_sum`/`_count`,
/// info `_info`).
fn exposed(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else { continue };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else { continue };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
    }
    names
}

/// A registry in which every family has been fed once.
fn exercised() -> String {
    let metrics = Arc::new(Metrics::default());
    metrics.task_finished("tikv", "pod", EntryStatus::Ran(OutcomeKind::Fail), Duration::from_millis(1));
    metrics.pass_finished("tikv", OutcomeKind::Fail, Duration::from_millis(1));
    let _in_flight = metrics.reconcile_started("tikv");
    metrics.event_recorded("Warning", "EvictionStalled");
    metrics.pd_observer(&ClusterKey::new("db", "basic")).request_done(&RequestDone {
        method: "GET",
        endpoint: "/pd/api/v1/stores",
        outcome: RequestOutcome::Timeout,
        duration: Duration::from_millis(1),
    });
    metrics.encode()
}

/// The names in `referenced` the operator does not expose (and how many it named).
fn missing(referenced: &[String]) -> (Vec<String>, usize) {
    let exposed = exposed(&exercised());
    let names: BTreeSet<String> = referenced.iter().flat_map(|e| metric_names(e)).collect();
    (names.iter().filter(|n| !exposed.contains(*n)).cloned().collect(), names.len())
}

fn check(file: &str, referenced: Vec<String>) {
    let (missing, named) = missing(&referenced);
    assert!(named > 0, "{file} references no tikv_operator_ metric");
    assert!(missing.is_empty(), "{file} references metrics the operator does not expose: {missing:?}");
}

#[test]
fn every_metric_the_dashboard_uses_exists() {
    let text = std::fs::read_to_string(monitoring_dir().join("grafana-dashboard.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut found = Vec::new();
    exprs(&dashboard, &mut found);
    assert!(found.len() >= 10, "{found:?}");
    check("grafana-dashboard.json", found);
}

#[test]
fn every_metric_the_alerts_use_exists() {
    let text = std::fs::read_to_string(monitoring_dir().join("alerts.yaml")).unwrap();
    let rules: Value = serde_saphyr::from_str(&text).unwrap();
    let mut found = Vec::new();
    exprs(&rules, &mut found);
    let alerts: Vec<&str> =
        rules["groups"][0]["rules"].as_array().unwrap().iter().filter_map(|r| r["alert"].as_str()).collect();
    for wanted in ["TiKVOperatorAbsent", "TiKVOperatorReconcileErrors", "TiKVOperatorInstanceNotReady"] {
        assert!(alerts.contains(&wanted), "{alerts:?}");
    }
    assert_eq!(alerts.len(), found.len(), "every rule has an expr");
    check("alerts.yaml", found);
}

#[test]
fn names_are_extracted_with_their_suffixes_and_checked_against_the_types() {
    let names = metric_names(
        r#"histogram_quantile(0.9, rate(tikv_operator_pass_duration_seconds_bucket[5m])) / x_tikv_operator_no"#,
    );
    assert_eq!(names, BTreeSet::from(["tikv_operator_pass_duration_seconds_bucket".to_string()]));
    let exposed = exposed(&exercised());
    assert!(exposed.contains("tikv_operator_passes_total"));
    assert!(exposed.contains("tikv_operator_build_info"));
    assert!(exposed.contains("tikv_operator_operation_max_age_seconds"));
    assert!(!exposed.contains("tikv_operator_passes"), "a counter is read with its _total");
    assert!(!exposed.contains("tikv_operator_pass_duration_seconds"), "a histogram only by its series");
    let wrong = ["rate(tikv_operator_passes[5m]) + tikv_operator_no_such_gauge".to_string()];
    assert_eq!(
        missing(&wrong).0,
        ["tikv_operator_no_such_gauge".to_string(), "tikv_operator_passes".to_string()],
        "an unknown name and a counter without _total are caught"
    );
}
