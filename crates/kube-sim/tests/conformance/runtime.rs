//! kube-runtime against the emulator: watcher and reflector (including resume after
//! 410), a Controller with `.owns()`, the finalizer helper and the events Recorder, and
//! `await_condition`.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use crate::common::{Sim, wait_for};
use crate::custom::{Widget, install_widgets, widget};

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": "1"}})).unwrap()
}

#[tokio::test]
async fn reflector_follows_changes_and_relists_after_history_is_compacted() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default())).applied_objects();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    wait_for(10, "the initial list", || async {
        reader.get(&reflector::ObjectRef::new("a").within("default")).is_some()
    })
    .await;
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    wait_for(10, "watch events", || async { reader.state().len() == 1 && reader.state()[0].name_any() == "b" }).await;

    // Drop the watch and compact history: the watcher's resume gets 410 and it relists.
    let watches_before = s.sim.requests().count(|r| r.verb == kube_sim::Verb::List && r.resource == "configmaps");
    // Hold watch delivery so the watcher cannot have seen "c" when its watch drops.
    s.sim.faults().set_watch_delay(Duration::from_secs(3600));
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    s.sim.faults().compact();
    s.sim.faults().set_watch_delay(Duration::ZERO);
    s.sim.faults().drop_watches();
    wait_for(10, "the relist", || async {
        s.sim.requests().count(|r| r.verb == kube_sim::Verb::List && r.resource == "configmaps") > watches_before
    })
    .await;
    wait_for(10, "the reflector to catch up", || async { reader.state().len() == 2 }).await;
    task.abort();
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_gets_410_expired() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    s.sim.faults().compact();
    let mut events = api.watch(&WatchParams::default(), &a.resource_version().unwrap()).await.unwrap().boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watches_replay_history_and_see_selector_transitions() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let a = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let from = a.resource_version().unwrap();
    let wp = WatchParams::default().labels("team=x").timeout(10);
    let mut events = api.watch(&wp, &from).await.unwrap().boxed();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "x"}}})))
        .await
        .unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"data": {"v": "2"}}))).await.unwrap();
    api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"team": "y"}}})))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        match events.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(o) => {
                assert_eq!(o.labels()["team"], "y");
                kinds.push("DELETED")
            }
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
}

#[tokio::test]
async fn streaming_lists_end_initial_events_with_a_bookmark() {
    let s = Sim::start().await;
    let api: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut saw_init_done = false;
    let mut saw_a = false;
    while !saw_init_done {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next()).await.unwrap().unwrap().unwrap() {
            watcher::Event::InitApply(o) => saw_a |= o.name_any() == "a",
            watcher::Event::InitDone => saw_init_done = true,
            _ => {}
        }
    }
    assert!(saw_a);
}

struct Ctx {
    client: Client,
    recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ReconcileError(#[from] kube::Error);

async fn reconcile(w: Arc<Widget>, ctx: Arc<Ctx>) -> Result<Action, kube::runtime::finalizer::Error<ReconcileError>> {
    let ns = w.namespace().unwrap();
    let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &ns);
    let ctx2 = ctx.clone();
    finalizer(&widgets, "example.com/cleanup", w, |event| async move {
        let ctx = ctx2;
        match event {
            Finalizer::Apply(w) => {
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &w.namespace().unwrap());
                let owned = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("{}-config", w.name_any()), "ownerReferences": [w.controller_owner_ref(&()).unwrap()]},
                    "data": {"replicas": w.spec.replicas.to_string()}
                });
                cms.patch(&format!("{}-config", w.name_any()), &PatchParams::apply("widget-controller").force(), &Patch::Apply(owned)).await?;
                let widgets: Api<Widget> = Api::namespaced(ctx.client.clone(), &w.namespace().unwrap());
                let status = json!({"status": {"replicas": w.spec.replicas, "conditions": [{
                    "type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                    "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
                widgets.patch_status(&w.name_any(), &PatchParams::default(), &Patch::Merge(status)).await?;
                let ev = Event { type_: EventType::Normal, reason: "Reconciled".into(), note: Some("configmap applied".into()), action: "Apply".into(), secondary: None };
                ctx.recorder.publish(&ev, &w.object_ref(&())).await?;
                Ok(Action::await_change())
            }
            Finalizer::Cleanup(w) => {
                let ev = Event { type_: EventType::Normal, reason: "Cleanup".into(), note: None, action: "Delete".into(), secondary: None };
                ctx.recorder.publish(&ev, &w.object_ref(&())).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(_: Arc<Widget>, _: &kube::runtime::finalizer::Error<ReconcileError>, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(200))
}

#[tokio::test]
async fn controller_with_owns_finalizer_and_recorder() {
    let s = Sim::start().await;
    install_widgets(&s).await;
    let widgets: Api<Widget> = Api::default_namespaced(s.client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(s.client.clone());
    let reporter = Reporter { controller: "widget-controller".into(), instance: Some("test".into()) };
    let ctx = Arc::new(Ctx { client: s.client.clone(), recorder: Recorder::new(s.client.clone(), reporter) });
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    // A watch that must see the widget's DELETED event once the finalizer is released.
    let deleted = tokio::spawn({
        let widgets = widgets.clone();
        async move {
            let mut s = watcher(widgets, watcher::Config::default()).boxed();
            while let Some(ev) = s.try_next().await.unwrap() {
                if let watcher::Event::Delete(w) = ev {
                    return w.name_any();
                }
            }
            String::new()
        }
    });

    widgets.create(&PostParams::default(), &widget("w", 3)).await.unwrap();
    let ready = await_condition(widgets.clone(), "w", |w: Option<&Widget>| {
        w.and_then(|w| w.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready"))
    });
    tokio::time::timeout(Duration::from_secs(10), ready).await.unwrap().unwrap();
    let w = widgets.get("w").await.unwrap();
    assert_eq!(w.finalizers(), ["example.com/cleanup"]);
    assert_eq!(cms.get("w-config").await.unwrap().data.unwrap()["replicas"], "3");

    // `.owns()`: deleting the child brings it back.
    cms.delete("w-config", &DeleteParams::default()).await.unwrap();
    wait_for(10, "the child to be recreated", || async { cms.get_opt("w-config").await.unwrap().is_some() }).await;

    // The Recorder's events.k8s.io events are visible as core/v1 events (kubectl describe).
    let core_events: Api<CoreEvent> = Api::default_namespaced(s.client.clone());
    let lp = ListParams::default().fields("involvedObject.name=w,involvedObject.kind=Widget");
    let evs = core_events.list(&lp).await.unwrap().items;
    assert!(
        evs.iter()
            .any(|e| e.reason.as_deref() == Some("Reconciled") && e.message.as_deref() == Some("configmap applied")),
        "{evs:?}"
    );
    assert_eq!(evs[0].source.as_ref().and_then(|s| s.component.as_deref()), Some("widget-controller"));

    widgets.delete("w", &DeleteParams::default()).await.unwrap();
    let name = tokio::time::timeout(Duration::from_secs(10), deleted).await.unwrap().unwrap();
    assert_eq!(name, "w");
    wait_for(10, "the child to be collected", || async { cms.get_opt("w-config").await.unwrap().is_none() }).await;
    let evs = core_events.list(&lp).await.unwrap().items;
    assert!(evs.iter().any(|e| e.reason.as_deref() == Some("Cleanup")));
    task.abort();
}
