//! What the five controllers share at run time: the per-controller data handed to
//! kube-runtime, turning a pass's report into a requeue decision, the failure backoff,
//! and the watch configuration of owned kinds (the watches themselves are in [`crate::cache`]).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt};
use kube::runtime::controller::Action;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use tikv_operator_api::names::{LABEL_MANAGED_BY, MANAGED_BY_OPERATOR};
use tikv_operator_task::{FailureBackoff, PassResult, Runner};

use crate::context::Context;
use crate::error::Error;

/// Handed to every reconcile of one controller.
pub struct ControllerData<S> {
    pub ctx: Arc<Context>,
    pub runner: Runner<S>,
    pub backoff: FailureBackoff,
    /// The error each failing object last announced (one Warning per new error, not
    /// one per retry); cleared when a pass succeeds.
    announced: Mutex<HashMap<String, String>>,
}

impl<S: Send> ControllerData<S> {
    pub fn new(ctx: Arc<Context>, runner: Runner<S>) -> Arc<Self> {
        let runner = runner.with_metrics(ctx.metrics.clone());
        Arc::new(Self { ctx, runner, backoff: FailureBackoff::new(), announced: Mutex::default() })
    }

    /// Runs one pass over `state`, logs its report and maps it to what kube-runtime
    /// should do: Complete/Wait await the next event, Retry requeues at the earliest
    /// `after`, Fail returns the error (and [`error_policy`] backs off).
    pub async fn pass(&self, key: &str, state: &mut S) -> Result<Action, Error> {
        let _in_flight = self.ctx.metrics.reconcile_started(self.runner.controller());
        let report = self.runner.run(key, state).await;
        report.log();
        match report.action() {
            PassResult::Done => {
                self.succeeded(key);
                Ok(Action::await_change())
            }
            PassResult::RequeueAfter(after) => {
                self.succeeded(key);
                Ok(Action::requeue(self.ctx.clock.real_duration(after)))
            }
            PassResult::Failed(error) => Err(Error::Pass(error)),
        }
    }
}

impl<S> ControllerData<S> {
    fn succeeded(&self, key: &str) {
        self.backoff.on_success(key);
        self.announced.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Whether `error` is new for `key` (and remembers it as announced).
    fn newly_failing(&self, key: &str, error: &str) -> bool {
        let mut announced = self.announced.lock().unwrap_or_else(PoisonError::into_inner);
        if announced.get(key).is_some_and(|e| e == error) {
            return false;
        }
        announced.insert(key.to_owned(), error.to_owned());
        true
    }
}

/// Failed passes back off per object: 1 s doubling to 60 s, on the operator's clock. An error the object did not
/// fail with last time is announced by one Warning Event (`ReconcileFailed`); the same
/// error again is only retried.
pub fn error_policy<K, S>(object: Arc<K>, error: &Error, data: Arc<ControllerData<S>>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let key = format!(
        "{}/{}",
        object.meta().namespace.as_deref().unwrap_or_default(),
        object.meta().name.as_deref().unwrap_or_default()
    );
    let delay = data.backoff.on_failure(&key);
    tracing::warn!(%error, object = %key, retry_in = ?delay, "reconcile failed");
    let message = error.to_string();
    if data.newly_failing(&key, &message) {
        let reference = object.object_ref(&());
        let ctx = data.ctx.clone();
        // The policy is synchronous; the Event is recorded beside it.
        tokio::spawn(async move { ctx.warning(&reference, "ReconcileFailed", "Reconcile", message).await });
    }
    Action::requeue(data.ctx.clock.real_duration(delay))
}

/// The key of a pass: `namespace/name`.
pub fn key_of<K: Resource>(object: &K) -> (String, String) {
    (object.meta().namespace.clone().unwrap_or_default(), object.meta().name.clone().unwrap_or_default())
}

/// An Api over the watched namespace, or all namespaces.
pub fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Only objects with the operator's managed-by label (and more `labels`, if given).
pub fn managed_config(labels: &str) -> watcher::Config {
    let mut selector = format!("{LABEL_MANAGED_BY}={MANAGED_BY_OPERATOR}");
    if !labels.is_empty() {
        selector.push(',');
        selector.push_str(labels);
    }
    watcher::Config::default().labels(&selector)
}

/// Drives a controller's output stream, logging what failed to even start a pass.
pub async fn drain<T: Debug, E: Debug>(stream: impl Stream<Item = Result<T, E>>) {
    stream
        .for_each(|result| async move {
            if let Err(error) = result {
                tracing::debug!(?error, "controller stream error");
            }
        })
        .await;
}

/// A future every controller stops on; cloneable, `Send + Sync` as kube-runtime needs.
pub type Shutdown = futures::future::Shared<futures::future::BoxFuture<'static, ()>>;

/// The PD events of every registered cluster, as a stream (lagged events are skipped:
/// the slow poll and watch events still bring every object back eventually).
pub fn pd_events(ctx: &Context) -> impl Stream<Item = crate::pd_registry::ClusterPdEvent> + Send + 'static {
    let receiver = ctx.pd.subscribe();
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => return Some((event, receiver)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "PD events were dropped; relying on polls and watches");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_is_announced_once_until_the_error_changes_or_a_pass_succeeds() {
        let data = ControllerData::new(crate::testing::offline_context(), Runner::<()>::new("tikv", []));
        assert!(data.newly_failing("ns/a", "PD unavailable"));
        assert!(!data.newly_failing("ns/a", "PD unavailable"), "a retry of the same error is quiet");
        assert!(data.newly_failing("ns/b", "PD unavailable"), "per object");
        assert!(data.newly_failing("ns/a", "conflict"), "a new error is announced");
        data.succeeded("ns/a");
        assert!(data.newly_failing("ns/a", "conflict"), "failing again after a success is news");
    }

    #[tokio::test]
    async fn the_policy_records_one_warning_per_new_error() {
        let env = crate::testing::TestEnv::start().await;
        let tikv = Arc::new(env.create(crate::testing::sample_tikv("tikv-a", "tikv")).await);
        let data = ControllerData::new(env.ctx.clone(), Runner::<()>::new("tikv", []));
        let failed = |message: &str| Error::Pass(tikv_operator_task::TaskError::from(message));
        for message in ["PD unavailable", "PD unavailable", "PD unavailable", "conflict"] {
            error_policy(tikv.clone(), &failed(message), data.clone());
        }
        let expected = [
            (
                "Warning".to_string(),
                "ReconcileFailed".to_string(),
                "a reconcile pass failed: PD unavailable".to_string(),
            ),
            ("Warning".to_string(), "ReconcileFailed".to_string(), "a reconcile pass failed: conflict".to_string()),
        ];
        // The policy records beside itself: wait for both.
        for _ in 0..500 {
            if env.events().await.len() >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut events = env.events().await;
        events.sort();
        assert_eq!(events, expected);
    }
}
