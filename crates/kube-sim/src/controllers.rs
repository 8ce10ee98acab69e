//! What kube-controller-manager and the apiextensions server do after the fact, run in
//! the background on every committed change, each as its own named client:
//!
//! - the garbage collector: deletes dependents whose owners are all gone (background),
//!   deletes dependents of owners in foreground deletion and releases the owner when the
//!   blocking ones are gone, strips ownerReferences for orphaning deletes, and removes
//!   dangling ownerReferences when some owner remains;
//! - the namespace controller: empties a terminating namespace, then finalizes it;
//! - CRD cleanup: deletes a terminating CRD's objects, then releases the CRD;
//! - ClusterRole aggregation: a ClusterRole with an `aggregationRule` gets the rules of
//!   every other ClusterRole its selectors match (by name order, duplicates dropped).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::meta;
use crate::patch::PatchType;
use crate::registry::{GroupResource, ResourceInfo};
use crate::store::{
    Change, ChangeKind, DeleteOptions, Key, ObjRef, Propagation, ResourceRef, State, Store, StoreClient, Subresource,
};

const GC: &str = "kube-controller-manager/generic-garbage-collector";
const NAMESPACES: &str = "kube-controller-manager/namespace-controller";
const CRD_CLEANUP: &str = "kube-apiserver/apiextensions-finalizer";
const AGGREGATION: &str = "kube-controller-manager/clusterrole-aggregation-controller";

#[derive(Debug)]
enum Action {
    Delete { who: &'static str, info: Arc<ResourceInfo>, key: Key, uid: String, propagation: Propagation },
    StripOwners { info: Arc<ResourceInfo>, key: Key, uids: Vec<String> },
    RemoveFinalizer { who: &'static str, info: Arc<ResourceInfo>, key: Key, finalizer: String },
    FinalizeNamespace { name: String },
    SetClusterRoleRules { name: String, rules: Vec<Value> },
}

fn res_ref(info: &ResourceInfo) -> ResourceRef {
    ResourceRef::new(&info.group, &info.version, &info.plural)
}

fn ns_opt(key: &Key) -> Option<&str> {
    if key.namespace.is_empty() { None } else { Some(&key.namespace) }
}

/// Runs the controllers until `shutdown` flips.
pub(crate) async fn run(store: Store, garbage_collection: bool, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut rx = store.subscribe();
    let mut last = store.revision();
    loop {
        rx.borrow_and_update();
        let actions = plan(&store, &mut last, garbage_collection);
        for a in actions {
            execute(&store, a);
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

fn plan(store: &Store, last: &mut u64, gc: bool) -> Vec<Action> {
    let (changes, rev) = match store.changes_since(*last) {
        Some(c) => c,
        None => (full_scan(store), store.revision()),
    };
    *last = rev;
    let st = store.lock();
    let mut actions = Vec::new();
    if gc {
        for c in &changes {
            plan_gc(&st, c, &mut actions);
        }
    }
    plan_namespaces(&st, &mut actions);
    plan_crds(&st, &mut actions);
    let cluster_roles = GroupResource::new(crate::registry::RBAC_GROUP, "clusterroles");
    if changes.iter().any(|c| c.gr == cluster_roles) {
        plan_aggregation(&st, &mut actions);
    }
    actions
}

/// After compaction: treat every object as just modified.
fn full_scan(store: &Store) -> Vec<Arc<Change>> {
    let st = store.lock();
    let at = store.clock().now();
    let rev = st.rev;
    let mut out = Vec::new();
    for (gr, m) in st.objects.iter() {
        for o in m.values() {
            out.push(Arc::new(Change {
                rev,
                gr: gr.clone(),
                kind: ChangeKind::Modified,
                old: None,
                new: o.clone(),
                at,
            }));
        }
    }
    out
}

fn info_of(st: &State, gr: &GroupResource) -> Option<Arc<ResourceInfo>> {
    st.registry.any_version(gr)
}

fn owner_exists(st: &State, uid: &str) -> bool {
    st.get_uid(uid).is_some()
}

fn plan_gc(st: &State, c: &Change, actions: &mut Vec<Action>) {
    let obj = &c.new;
    let uid = meta::uid(obj).to_string();
    match c.kind {
        ChangeKind::Deleted => {
            // The dependents of a deleted object, and owners waiting on it in foreground.
            for dep in st.dependents.get(&uid).into_iter().flatten() {
                plan_dependent(st, dep, actions);
            }
            for owner in meta::owner_uids(obj) {
                plan_foreground_owner(st, &owner, actions);
            }
        }
        ChangeKind::Added | ChangeKind::Modified => {
            let Some(current) = st.get_uid(&uid) else { return };
            if !meta::owner_uids(current).is_empty() {
                let r = ObjRef { gr: c.gr.clone(), key: Key::new(meta::namespace(current), meta::name(current)) };
                plan_dependent(st, &r, actions);
            }
            if meta::is_deleting(current) {
                let fins = meta::finalizers(current);
                if fins.iter().any(|f| f == crate::store::ORPHAN) {
                    plan_orphan(st, c, current, actions);
                }
                if fins.iter().any(|f| f == crate::store::FOREGROUND) {
                    plan_foreground_owner(st, &uid, actions);
                }
            }
        }
    }
}

/// A dependent whose owners may be gone: delete it if all are, strip dangling ones otherwise.
fn plan_dependent(st: &State, dep: &ObjRef, actions: &mut Vec<Action>) {
    let Some(obj) = st.get(&dep.gr, &dep.key) else { return };
    let Some(info) = info_of(st, &dep.gr) else { return };
    let refs = obj["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
    if refs.is_empty() {
        return;
    }
    let dangling: Vec<String> =
        refs.iter().filter_map(|r| r["uid"].as_str()).filter(|u| !owner_exists(st, u)).map(str::to_string).collect();
    if dangling.is_empty() {
        // Owners in foreground deletion take their dependents with them.
        let waiting = refs.iter().filter_map(|r| r["uid"].as_str()).all(|u| {
            st.get_uid(u).is_some_and(|o| {
                meta::is_deleting(o) && meta::finalizers(o).iter().any(|f| f == crate::store::FOREGROUND)
            })
        });
        if waiting && !meta::is_deleting(obj) {
            actions.push(Action::Delete {
                who: GC,
                info,
                key: dep.key.clone(),
                uid: meta::uid(obj).into(),
                propagation: Propagation::Foreground,
            });
        }
        return;
    }
    if dangling.len() == refs.len() {
        if !meta::is_deleting(obj) {
            actions.push(Action::Delete {
                who: GC,
                info,
                key: dep.key.clone(),
                uid: meta::uid(obj).into(),
                propagation: Propagation::Background,
            });
        }
    } else {
        actions.push(Action::StripOwners { info, key: dep.key.clone(), uids: dangling });
    }
}

fn plan_orphan(st: &State, c: &Change, owner: &Value, actions: &mut Vec<Action>) {
    let uid = meta::uid(owner).to_string();
    for dep in st.dependents.get(&uid).into_iter().flatten() {
        if let Some(info) = info_of(st, &dep.gr) {
            actions.push(Action::StripOwners { info, key: dep.key.clone(), uids: vec![uid.clone()] });
        }
    }
    if let Some(info) = info_of(st, &c.gr) {
        actions.push(Action::RemoveFinalizer {
            who: GC,
            info,
            key: Key::new(meta::namespace(owner), meta::name(owner)),
            finalizer: crate::store::ORPHAN.into(),
        });
    }
}

/// An owner in foreground deletion: delete its dependents; release it once none of those
/// that block owner deletion remain.
fn plan_foreground_owner(st: &State, uid: &str, actions: &mut Vec<Action>) {
    let Some(owner_ref) = st.uids.get(uid) else { return };
    let Some(owner) = st.get(&owner_ref.gr, &owner_ref.key) else { return };
    if !meta::is_deleting(owner) || !meta::finalizers(owner).iter().any(|f| f == crate::store::FOREGROUND) {
        return;
    }
    let mut blocking = false;
    for dep in st.dependents.get(uid).into_iter().flatten() {
        let Some(d) = st.get(&dep.gr, &dep.key) else { continue };
        let blocks = d["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["uid"] == uid && r["blockOwnerDeletion"] == true);
        blocking |= blocks;
        if !meta::is_deleting(d)
            && let Some(info) = info_of(st, &dep.gr)
        {
            actions.push(Action::Delete {
                who: GC,
                info,
                key: dep.key.clone(),
                uid: meta::uid(d).into(),
                propagation: Propagation::Foreground,
            });
        }
    }
    if !blocking && let Some(info) = info_of(st, &owner_ref.gr) {
        actions.push(Action::RemoveFinalizer {
            who: GC,
            info,
            key: owner_ref.key.clone(),
            finalizer: crate::store::FOREGROUND.into(),
        });
    }
}

fn plan_namespaces(st: &State, actions: &mut Vec<Action>) {
    let ns_gr = GroupResource::new("", "namespaces");
    for (key, ns) in st.iter(&ns_gr, None) {
        if !meta::is_deleting(ns) {
            continue;
        }
        let mut remaining = 0;
        for (gr, _) in st.objects.iter() {
            let Some(info) = info_of(st, gr) else { continue };
            if !info.namespaced {
                continue;
            }
            for (k, o) in st.iter(gr, Some(&key.name)) {
                remaining += 1;
                if !meta::is_deleting(o) {
                    actions.push(Action::Delete {
                        who: NAMESPACES,
                        info: info.clone(),
                        key: k.clone(),
                        uid: meta::uid(o).into(),
                        propagation: Propagation::Background,
                    });
                }
            }
        }
        if remaining == 0 && ns["spec"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|x| x == "kubernetes")) {
            actions.push(Action::FinalizeNamespace { name: key.name.clone() });
        }
    }
}

fn plan_crds(st: &State, actions: &mut Vec<Action>) {
    let crd_gr = GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions");
    for (key, crd) in st.iter(&crd_gr, None) {
        if !meta::is_deleting(crd) || !meta::finalizers(crd).iter().any(|f| f == crate::store::CRD_CLEANUP) {
            continue;
        }
        let gr = GroupResource::new(
            crd["spec"]["group"].as_str().unwrap_or_default(),
            crd["spec"]["names"]["plural"].as_str().unwrap_or_default(),
        );
        let mut remaining = 0;
        if let Some(info) = info_of(st, &gr) {
            for (k, o) in st.iter(&gr, None) {
                remaining += 1;
                if !meta::is_deleting(o) {
                    actions.push(Action::Delete {
                        who: CRD_CLEANUP,
                        info: info.clone(),
                        key: k.clone(),
                        uid: meta::uid(o).into(),
                        propagation: Propagation::Background,
                    });
                }
            }
        }
        if remaining == 0
            && let Some(info) = info_of(st, &crd_gr)
        {
            actions.push(Action::RemoveFinalizer {
                who: CRD_CLEANUP,
                info,
                key: key.clone(),
                finalizer: crate::store::CRD_CLEANUP.into(),
            });
        }
    }
}

fn plan_aggregation(st: &State, actions: &mut Vec<Action>) {
    let gr = GroupResource::new(crate::registry::RBAC_GROUP, "clusterroles");
    for (key, role) in st.iter(&gr, None) {
        let Some(selectors) = role["aggregationRule"]["clusterRoleSelectors"].as_array() else { continue };
        let mut rules: Vec<Value> = Vec::new();
        for selector in selectors {
            let selector = crate::selectors::LabelSelector::from_object(selector);
            // `iter` walks in name order, as the real controller sorts.
            for (other_key, other) in st.iter(&gr, None) {
                if other_key.name == key.name || !selector.matches_object(other) {
                    continue;
                }
                for rule in other["rules"].as_array().into_iter().flatten() {
                    if !rules.contains(rule) {
                        rules.push(rule.clone());
                    }
                }
            }
        }
        let current: Vec<Value> = role["rules"].as_array().cloned().unwrap_or_default();
        if current != rules {
            actions.push(Action::SetClusterRoleRules { name: key.name.clone(), rules });
        }
    }
}

fn execute(store: &Store, action: Action) {
    // Errors (the object changed or is gone) are expected races; the next change replans.
    let result = match action {
        Action::Delete { who, info, key, uid, propagation } => store
            .client(who)
            .delete(
                &res_ref(&info),
                ns_opt(&key),
                &key.name,
                &DeleteOptions { propagation: Some(propagation), precondition_uid: Some(uid), ..Default::default() },
            )
            .map(|_| ()),
        Action::StripOwners { info, key, uids } => strip_owners(&store.client(GC), &info, &key, &uids),
        Action::RemoveFinalizer { who, info, key, finalizer } => {
            remove_finalizer(&store.client(who), &info, &key, &finalizer)
        }
        Action::FinalizeNamespace { name } => finalize_namespace(store, &name),
        Action::SetClusterRoleRules { name, rules } => store
            .client(AGGREGATION)
            .patch(
                &ResourceRef::new(crate::registry::RBAC_GROUP, "v1", "clusterroles"),
                None,
                &name,
                None,
                PatchType::Merge,
                &json!({"rules": rules}),
            )
            .map(|_| ()),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "controller action did not apply");
    }
}

fn strip_owners(client: &StoreClient, info: &ResourceInfo, key: &Key, uids: &[String]) -> crate::ApiResult<()> {
    let r = res_ref(info);
    let obj = client.store().get(info, ns_opt(key), &key.name)?;
    let refs: Vec<Value> = obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| !uids.iter().any(|u| o["uid"] == u.as_str()))
        .cloned()
        .collect();
    let patch =
        json!({"metadata": {"ownerReferences": if refs.is_empty() { Value::Null } else { Value::Array(refs) }}});
    client.patch(&r, ns_opt(key), &key.name, None, PatchType::Merge, &patch).map(|_| ())
}

fn remove_finalizer(client: &StoreClient, info: &ResourceInfo, key: &Key, finalizer: &str) -> crate::ApiResult<()> {
    let obj = client.store().get(info, ns_opt(key), &key.name)?;
    let Some(i) = meta::finalizers(&obj).iter().position(|f| f == finalizer) else { return Ok(()) };
    let patch = json!([
        {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": finalizer},
        {"op": "remove", "path": format!("/metadata/finalizers/{i}")}
    ]);
    client.patch(&res_ref(info), ns_opt(key), &key.name, None, PatchType::Json, &patch).map(|_| ())
}

fn finalize_namespace(store: &Store, name: &str) -> crate::ApiResult<()> {
    let client = store.client(NAMESPACES);
    let r = ResourceRef::new("", "v1", "namespaces");
    let ns = client.store().get(&*namespace_info(store)?, None, name)?;
    let fins: Vec<Value> =
        ns["spec"]["finalizers"].as_array().into_iter().flatten().filter(|f| *f != "kubernetes").cloned().collect();
    let patch = json!({"spec": {"finalizers": fins}});
    client.patch(&r, None, name, Some(Subresource::Finalize), PatchType::Merge, &patch).map(|_| ())
}

fn namespace_info(store: &Store) -> crate::ApiResult<Arc<ResourceInfo>> {
    store.resource("", "v1", "namespaces").ok_or_else(crate::ApiError::no_route)
}
