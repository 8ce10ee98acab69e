//! `store_labels`: the store's labels in PD follow the node its Pod runs on, at run
//! time. PD's `location-labels` (its replication config) name the keys; each is read
//! from the node's labels, by the key itself or the well-known topology label for it
//! (`zone`, `region`, `host`: see [`node_label`]); the user's `server.labels` are added.
//! TiKV registers with the labels of its command line, which a restart brings back and
//! which know nothing of a node's later labels: this task puts the node's on the store.
//!
//! A location label PD has for the store is never blanked or removed: blanking it moves
//! data (PD re-places replicas by location). A node that lost such a label is reported
//! (Synced False, `LocationLabelMissing`, and a Warning Event when that is new) and PD
//! keeps its value. Labels are only ever merged in (never `force`), so labels someone
//! else set stay.
//!
//! Reads: the PD view (store and replication config), the Pod, the node from the node
//! cache. Writes: one `POST /store/{id}/label` with the labels that differ, none when
//! the store has them all. Outcomes: Complete; Wait for a Pod on a node, or a node the
//! cache holds, or PD's refusal (`StoreLabelsRefused`); Retry while the view predates
//! the operator's last PD write (it may not show labels just set); Fail on any other
//! PD error.

use std::collections::BTreeMap;

use tikv_operator_api::condition::{reasons, types};
use tikv_operator_pd::{NodeState, StaleReason};
use tikv_operator_task::{Node, Outcome, task};

use crate::cache::NodeMeta;
use crate::tikv::state::{StoreView, TikvState, ViewFreshness};

pub fn store_labels() -> Node<TikvState> {
    task("store_labels", |s: &mut TikvState| Box::pin(run(s)))
}

/// Kubernetes' well-known node labels for the usual location-label keys, tried after
/// the key itself.
const WELL_KNOWN: &[(&str, &[&str])] = &[
    ("zone", &["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"]),
    ("region", &["topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region"]),
];

/// The value of location label `key` on `node`: its own label `key`, else the
/// well-known label for it; `host` falls back to the node's name — what the TiKV
/// process itself reports (`--labels host=$(NODE_NAME)`), so a restart never flips it
/// (`kubernetes.io/hostname` may differ from the node's name).
pub fn node_label(node: &NodeMeta, key: &str) -> Option<String> {
    let labels = node.metadata.labels.as_ref();
    let get = |label: &str| labels.and_then(|l| l.get(label)).filter(|v| !v.is_empty()).cloned();
    get(key)
        .or_else(|| {
            WELL_KNOWN.iter().filter(|(k, _)| *k == key).flat_map(|(_, labels)| labels.iter()).find_map(|l| get(l))
        })
        .or_else(|| if key == "host" { node.metadata.name.clone() } else { None })
}

/// What the store's labels should be, from the node and the user's labels; and the
/// location labels the node lacks.
fn desired(
    location_labels: &[String],
    node: &NodeMeta,
    server_labels: &BTreeMap<String, String>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut labels = server_labels.clone();
    let mut missing = Vec::new();
    for key in location_labels {
        match node_label(node, key) {
            Some(value) => {
                labels.insert(key.clone(), value);
            }
            None => missing.push(key.clone()),
        }
    }
    (labels, missing)
}

async fn run(s: &mut TikvState) -> Outcome {
    let Some(id) = s.store_id() else {
        return Outcome::complete("no store ID yet");
    };
    let StoreView::Found(info, observed) = &s.store else {
        return Outcome::complete("the store is not in PD's view");
    };
    if !matches!(info.node_state, NodeState::Preparing | NodeState::Serving) {
        return Outcome::complete(format!("store {id} is {}: its labels are left as they are", info.node_state.name()));
    }
    let observed = observed.clone();
    let Some(store) = observed.view.store(id) else {
        return Outcome::complete("the store is not in PD's view");
    };
    let Some(node_name) = s.parts.pod.as_ref().and_then(|p| p.spec.as_ref()?.node_name.clone()) else {
        return Outcome::wait("the Pod is not on a node yet");
    };
    let Some(node) = s.pass.ctx.caches.nodes.node(&node_name) else {
        return Outcome::wait(format!("node {node_name} is not known (yet)"));
    };
    let server_labels = s.pass.object.as_ref().map(|t| t.spec.template.server.labels.clone()).unwrap_or_default();
    let location_labels = &observed.view.replication.location_labels;
    let (wanted, missing) = desired(location_labels, &node, &server_labels);

    // A location label the node lacks is kept in PD: blanking it would move data.
    let kept: Vec<String> =
        missing.iter().filter_map(|key| store.labels.get(key).map(|value| format!("{key}={value}"))).collect();
    if !kept.is_empty() {
        let message = format!(
            "node {node_name} has no label for location label(s) {} (nor a well-known one); store {id} keeps {} in \
             PD: blanking a location label moves data; label the node again",
            missing.join(", "),
            kept.join(", ")
        );
        if s.pass.reason_as_read(types::SYNCED) != Some(reasons::LOCATION_LABEL_MISSING) {
            s.pass.warning("LocationLabelMissing", "SetStoreLabels", message.clone()).await;
        }
        s.pass.not_synced(reasons::LOCATION_LABEL_MISSING, message);
    }

    let changes: BTreeMap<String, String> =
        wanted.into_iter().filter(|(key, value)| store.labels.get(key) != Some(value)).collect();
    if changes.is_empty() {
        return Outcome::complete(if kept.is_empty() {
            "in sync".to_string()
        } else {
            format!("kept {}", kept.join(", "))
        });
    }
    if observed.freshness == ViewFreshness::Stale(StaleReason::OlderThanLastWrite) {
        return s.pass.retry_for_fresh_view("the PD view predates the operator's last write; looking again");
    }
    let Some(pd) = s.pass.pd() else {
        return Outcome::wait("the cluster's PD is not registered");
    };
    let shown = changes.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    match pd.set_store_labels(id, &changes).await {
        Ok(()) => {}
        Err(error) if error.status() == Some(400) => {
            let message = format!("PD refused labels {shown} for store {id}: {error}");
            if s.pass.reason_as_read(types::SYNCED) != Some(reasons::STORE_LABELS_REFUSED) {
                s.pass.warning("StoreLabelsRefused", "SetStoreLabels", message.clone()).await;
            }
            s.pass.not_synced(reasons::STORE_LABELS_REFUSED, message.clone());
            return Outcome::wait(format!("{message}; waiting for the spec to change"));
        }
        Err(error) => return Outcome::fail(error),
    }
    let message = format!("set {shown} on store {id}");
    s.pass.event("StoreLabelsSet", "SetStoreLabels", message.clone()).await;
    Outcome::complete(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakePd;
    use crate::tikv::tasks::testkit::{ADDR, Kit};
    use k8s_openapi::api::core::v1::Node as KubeNode;
    use kube::Api;
    use tikv_operator_api::condition::find_condition;

    fn node(name: &str, labels: &[(&str, &str)]) -> KubeNode {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        KubeNode {
            metadata: kube::api::ObjectMeta { name: Some(name.into()), labels: Some(labels), ..Default::default() },
            ..Default::default()
        }
    }

    fn meta(labels: &[(&str, &str)]) -> NodeMeta {
        let mut m = NodeMeta {
            types: None,
            metadata: kube::api::ObjectMeta { name: Some("node-1".into()), ..Default::default() },
            _phantom: Default::default(),
        };
        m.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        m
    }

    #[test]
    fn location_labels_come_from_the_key_then_the_well_known_label() {
        let node = meta(&[("topology.kubernetes.io/zone", "z1"), ("rack", "r7"), ("kubernetes.io/hostname", "h1")]);
        assert_eq!(node_label(&node, "zone").as_deref(), Some("z1"));
        assert_eq!(node_label(&node, "rack").as_deref(), Some("r7"));
        assert_eq!(node_label(&node, "host").as_deref(), Some("node-1"), "the node's name, as TiKV reports it");
        assert_eq!(node_label(&node, "region"), None);
        let own = meta(&[("zone", "mine"), ("topology.kubernetes.io/zone", "z1")]);
        assert_eq!(node_label(&own, "zone").as_deref(), Some("mine"), "the key itself first");
        assert_eq!(node_label(&meta(&[]), "host").as_deref(), Some("node-1"), "host falls back to the node name");
        let legacy = meta(&[("failure-domain.beta.kubernetes.io/region", "r1")]);
        assert_eq!(node_label(&legacy, "region").as_deref(), Some("r1"));
    }

    /// Store 5 serving on `node-1`, PD's location labels zone and host.
    async fn kit(node_labels: &[(&str, &str)], pd: FakePd, server_labels: &[(&str, &str)]) -> Kit {
        let pd = pd.replication(3, &["zone", "host"]);
        let server: BTreeMap<String, String> =
            server_labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let kit = Kit::new(pd, |t| t.spec.template.server.labels = server).await;
        kit.status(|st| st.id = Some("5".into())).await;
        let nodes: Api<KubeNode> = Api::all(kit.env.client.clone());
        nodes.create(&Default::default(), &node("node-1", node_labels)).await.unwrap();
        kit.running_pod().await;
        nodes_synced(&kit).await;
        kit
    }

    async fn nodes_synced(kit: &Kit) {
        let nodes: Api<KubeNode> = Api::all(kit.env.client.clone());
        let live = nodes.get("node-1").await.unwrap();
        for _ in 0..5000 {
            let cached = kit.env.ctx.caches.nodes.node("node-1");
            if cached.is_some_and(|c| c.metadata.resource_version == live.metadata.resource_version) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("the node cache never caught up");
    }

    fn serving() -> FakePd {
        FakePd::bootstrapped().store(5, ADDR, NodeState::Serving)
    }

    #[tokio::test]
    async fn the_nodes_zone_and_host_and_the_users_labels_are_set_once() {
        let node_labels = [("topology.kubernetes.io/zone", "z1"), ("kubernetes.io/hostname", "h1")];
        let kit = kit(&node_labels, serving(), &[("disk", "ssd")]).await;
        let (_, report) = kit.pass([store_labels()]).await;
        assert_eq!(kit.pd.write_log(), ["set_store_labels(5, disk=ssd,host=node-1,zone=z1)"], "{report}");
        assert_eq!(report.entry("store_labels").unwrap().message(), "set disk=ssd, host=node-1, zone=z1 on store 5");
        assert_eq!(kit.writes(), Vec::<String>::new(), "no Kubernetes write but the event");

        let (_, report) = kit.pass([store_labels()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(kit.env.requests(), Vec::<String>::new(), "nothing to do, no request: {report}");
        assert_eq!(report.entry("store_labels").unwrap().message(), "in sync");
    }

    #[tokio::test]
    async fn only_the_labels_that_differ_are_sent_and_others_stay() {
        let node_labels = [("topology.kubernetes.io/zone", "z2"), ("kubernetes.io/hostname", "h1")];
        let pd = serving();
        pd.set_store(5, |st| {
            st.labels = [("zone", "z1"), ("host", "node-1"), ("team", "a")].map(|(k, v)| (k.into(), v.into())).into()
        });
        let kit = kit(&node_labels, pd, &[]).await;
        let (_, report) = kit.pass([store_labels()]).await;
        assert_eq!(kit.pd.write_log(), ["set_store_labels(5, zone=z2)"], "{report}");
        let (_, report) = kit.pass([store_labels()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
    }

    #[tokio::test]
    async fn a_node_that_lost_its_zone_is_reported_and_pd_keeps_the_label() {
        let pd = serving();
        pd.set_store(5, |st| {
            st.labels = [("zone", "z1"), ("host", "node-1")].map(|(k, v)| (k.into(), v.into())).into()
        });
        let kit = kit(&[("kubernetes.io/hostname", "h1")], pd, &[]).await;
        let runner = [store_labels(), crate::tikv::tasks::conditions()];
        let (s, report) = kit.pass(runner).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "zone is not blanked: {report}");
        let synced = find_condition(&s.pass.status.common.conditions, types::SYNCED).unwrap();
        assert_eq!((synced.status.as_str(), synced.reason.as_str()), ("False", reasons::LOCATION_LABEL_MISSING));
        assert!(synced.message.contains("store 5 keeps zone=z1 in PD"), "{}", synced.message);
        assert_eq!(report.entry("store_labels").unwrap().message(), "kept zone=z1");
        let events = kit.env.events().await;
        assert_eq!(events.iter().filter(|(_, reason, _)| reason == "LocationLabelMissing").count(), 1, "{events:?}");

        // Reported once: the next pass writes nothing at all.
        let (_, report) = kit.pass([store_labels(), crate::tikv::tasks::conditions()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(kit.env.requests(), Vec::<String>::new(), "{report}");
    }

    #[tokio::test]
    async fn a_view_older_than_the_last_write_is_looked_at_again_before_writing() {
        let kit = kit(&[("topology.kubernetes.io/zone", "z1")], serving(), &[]).await;
        let (mut s, report) = kit.pass([store_labels()]).await;
        assert_eq!(kit.pd.write_log(), ["set_store_labels(5, host=node-1,zone=z1)"], "{report}");
        // The same pass' view (from before the write) may not show what was just set.
        kit.pd.clear_write_log();
        let StoreView::Found(_, observed) = &mut s.store else { panic!("{:?}", s.store) };
        observed.freshness = ViewFreshness::Stale(StaleReason::OlderThanLastWrite);
        let report = tikv_operator_task::Runner::new("t", [store_labels()]).run("k", &mut s).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
        assert_eq!(report.entry("store_labels").unwrap().kind(), Some(tikv_operator_task::OutcomeKind::Retry));
    }

    #[tokio::test]
    async fn labels_pd_refuses_are_reported_and_a_leaving_store_is_left_alone() {
        let kit = kit(&[("topology.kubernetes.io/zone", "z1")], serving(), &[("engine", "x")]).await;
        let (s, report) = kit.pass([store_labels()]).await;
        assert_eq!(kit.pd.write_log(), ["set_store_labels(5, engine=x,host=node-1,zone=z1)"], "{report}");
        assert_eq!(s.pass.unsynced[0].reason, reasons::STORE_LABELS_REFUSED);
        assert_eq!(report.entry("store_labels").unwrap().kind(), Some(tikv_operator_task::OutcomeKind::Wait));

        kit.pd.set_node_state(5, NodeState::Removing);
        let (_, report) = kit.pass([store_labels()]).await;
        assert_eq!(kit.pd.write_log(), Vec::<String>::new(), "{report}");
    }

    #[tokio::test]
    async fn without_a_pod_on_a_known_node_nothing_is_asked() {
        let kit = Kit::new(serving().replication(3, &["zone"]), |_| {}).await;
        kit.status(|st| st.id = Some("5".into())).await;
        let (_, report) = kit.pass([store_labels()]).await;
        assert_eq!(report.entry("store_labels").unwrap().kind(), Some(tikv_operator_task::OutcomeKind::Wait));
        kit.running_pod().await;
        let (_, report) = kit.pass([store_labels()]).await;
        assert!(report.entry("store_labels").unwrap().message().contains("node node-1 is not known"), "{report}");
        assert_eq!(kit.pd.write_log(), Vec::<String>::new());
    }
}
