//! Kubernetes Events (`events.k8s.io/v1`) with repeats counted.
//!
//! kube-rs's `Recorder` counts a repeat as a series on the first Event, but its key
//! leaves out the note: every `CreatedInstance` of a group within its window was shown
//! with the first instance's name (`x4`), and a `PodDisruptionBudgetApplied` that later
//! changed the budget kept saying it was created. Here the key is the object (by UID,
//! else kind/namespace/name), type, reason, action *and* note, as client-go's correlator
//! keys on the message: the same Event again within [`SERIES_WINDOW`] patches the first
//! one's `series` (count, last seen) instead of creating another; a different note is
//! a new Event. Needs `create` and `patch` on `events.k8s.io` `events`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::Mutex;

/// How long a published Event is counted on rather than created again (kube-rs's and
/// client-go's six minutes: the series of an Event seen at least every 30 s stays one).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    /// The object's UID, or `kind/namespace/name` for a reference without one.
    object: String,
    type_: EventType,
    reason: String,
    action: String,
    note: String,
}

struct Published {
    namespace: String,
    name: String,
    count: i32,
    last: Instant,
}

/// One Event key's record: its own lock, held across the request that creates or
/// counts it, so that two passes recording the same Event at once make one while
/// Events of other keys go out in parallel.
type Slot = Arc<Mutex<Option<Published>>>;

/// Records Events as one reporting controller.
pub struct Recorder {
    client: Client,
    controller: String,
    /// Each key's slot and when it was last asked for (its window runs from then), and
    /// when slots out of their window were last forgotten.
    published: std::sync::Mutex<(Slots, Instant)>,
}

/// Each key's slot and when it was last asked for.
type Slots = HashMap<Key, (Slot, Instant)>;

/// How often slots out of their window are looked for (not on every Event: a bring-up
/// of a hundred clusters keeps thousands of slots).
const FORGET_EVERY: Duration = Duration::from_secs(30);

impl Recorder {
    pub fn new(client: Client, controller: impl Into<String>) -> Self {
        let published = std::sync::Mutex::new((HashMap::new(), Instant::now()));
        Self { client, controller: controller.into(), published }
    }

    /// The key's slot; slots out of their window and not in use are forgotten (looked
    /// for every [`FORGET_EVERY`]; a slot found out of its window is fresh again).
    fn slot(&self, key: Key) -> Slot {
        let mut guard = self.published.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (published, forgotten) = &mut *guard;
        if forgotten.elapsed() >= FORGET_EVERY {
            published.retain(|_, (slot, last)| last.elapsed() < SERIES_WINDOW || Arc::strong_count(slot) > 1);
            *forgotten = Instant::now();
        }
        let entry = published.entry(key).or_insert_with(|| (Slot::default(), Instant::now()));
        entry.1 = Instant::now();
        entry.0.clone()
    }

    /// Records the Event as seen at `at` (when it happened, not when it is sent: Events
    /// sent by several workers still sort in the order they were handed over), or
    /// counts it on the same one recorded within the window.
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
        at: Timestamp,
    ) -> Result<(), kube::Error> {
        let object = regarding.uid.clone().unwrap_or_else(|| {
            format!(
                "{}/{}/{}",
                regarding.kind.as_deref().unwrap_or_default(),
                regarding.namespace.as_deref().unwrap_or_default(),
                regarding.name.as_deref().unwrap_or_default()
            )
        });
        let key = Key { object, type_, reason: reason.into(), action: action.into(), note: note.into() };
        // Held across the request: two passes recording the same Event at once make one.
        let slot = self.slot(key);
        let mut published = slot.lock().await;
        if let Some(earlier) = published.as_mut().filter(|p| p.last.elapsed() < SERIES_WINDOW) {
            let count = earlier.count + 1;
            let api: Api<Event> = Api::namespaced(self.client.clone(), &earlier.namespace);
            let patch = json!({"series": EventSeries { count, last_observed_time: MicroTime(at) }});
            api.patch(&earlier.name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
            earlier.count = count;
            earlier.last = Instant::now();
            return Ok(());
        }
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    at.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(at)),
            type_: Some(type_.as_str().into()),
            reason: Some(reason.into()),
            action: Some(action.into()),
            note: Some(note.into()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.controller.clone()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), &event).await?;
        let name = created.metadata.name.unwrap_or_default();
        *published = Some(Published { namespace, name, count: 1, last: Instant::now() });
        Ok(())
    }
}

/// Event requests sent at once at most; the others wait their turn.
pub(crate) const IN_FLIGHT: usize = 8;

/// Events on their way to the API server. A pass hands its Events over and goes on: an
/// Event tells a user what was done, and waiting for it would add a round trip to every
/// pass that does something. Up to [`IN_FLIGHT`] workers send them, taken in the order
/// handed over; the rest wait in a queue as what they say (small), not as requests
/// under way.
/// [`Deliveries::flush`] waits until every Event handed over has been sent (tests,
/// shutdown).
#[derive(Default)]
pub struct Deliveries {
    queue: std::sync::Mutex<Queue>,
    pending: std::sync::atomic::AtomicUsize,
    done: tokio::sync::Notify,
}

type Job = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

#[derive(Default)]
struct Queue {
    jobs: std::collections::VecDeque<Job>,
    workers: usize,
}

impl Deliveries {
    /// Queues `send` (which makes the request when called), starting a worker if fewer
    /// than [`IN_FLIGHT`] run.
    pub fn send<F>(self: &Arc<Self>, send: impl FnOnce() -> F + Send + 'static)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        use futures::FutureExt;
        self.pending.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let start_worker = {
            let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            queue.jobs.push_back(Box::new(move || send().boxed()));
            let start = queue.workers < IN_FLIGHT;
            queue.workers += usize::from(start);
            start
        };
        if start_worker {
            tokio::spawn(self.clone().work());
        }
    }

    async fn work(self: Arc<Self>) {
        loop {
            let job = {
                let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match queue.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        queue.workers -= 1;
                        return;
                    }
                }
            };
            job().await;
            if self.pending.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                self.done.notify_waiters();
            }
        }
    }

    /// Events waiting for a worker.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).jobs.len()
    }

    /// Waits until every Event handed over so far has been sent (or failed).
    pub async fn flush(&self) {
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.pending.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use kube::api::ListParams;
    use kube::{Resource, ResourceExt};

    use super::*;
    use crate::testing::{TestEnv, sample_tikv, sample_tikv_group};

    async fn events(env: &TestEnv) -> Vec<(String, Option<i32>)> {
        let api: Api<Event> = Api::namespaced(env.client.clone(), "default");
        let mut events = api.list(&ListParams::default()).await.unwrap().items;
        events.sort_by_key(|e| e.event_time.clone().map(|t| t.0));
        events.into_iter().map(|e| (e.note.unwrap_or_default(), e.series.map(|s| s.count))).collect()
    }

    #[tokio::test]
    async fn the_same_event_is_counted_and_another_note_is_another_event() {
        let env = TestEnv::start().await;
        let group = env.create(sample_tikv_group("tikv", 3)).await;
        let recorder = Recorder::new(env.client.clone(), "tikv-operator");
        let reference = group.object_ref(&());
        for name in ["tikv-a", "tikv-b", "tikv-a"] {
            let note = format!("created tikv instance {name}");
            let at = Timestamp::now();
            recorder.publish(&reference, EventType::Normal, "CreatedInstance", "Create", &note, at).await.unwrap();
        }
        assert_eq!(
            events(&env).await,
            [("created tikv instance tikv-a".to_string(), Some(2)), ("created tikv instance tikv-b".to_string(), None)]
        );
        // Per object: the same note about another object is its own Event.
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let note = "created tikv instance tikv-a";
        let (reference, at) = (tikv.object_ref(&()), Timestamp::now());
        recorder.publish(&reference, EventType::Normal, "CreatedInstance", "Create", note, at).await.unwrap();
        assert_eq!(events(&env).await.len(), 3);
        let api: Api<Event> = Api::namespaced(env.client.clone(), "default");
        let on_tikv: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.clone()) == tikv.uid())
            .collect();
        assert_eq!(on_tikv.len(), 1);
        assert_eq!(on_tikv[0].reporting_controller.as_deref(), Some("tikv-operator"));
        assert_eq!(on_tikv[0].type_.as_deref(), Some("Normal"));
    }
}
