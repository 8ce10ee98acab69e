//! `conditions`: the Cluster's status, aggregated from its groups.
//!
//! Reads: the groups loaded and what earlier tasks found. Writes: only the status being
//! built (written by `write_status`). Ready and Synced count a group only when its
//! condition was observed at the group's current generation; Progressing is their
//! negation; Paused mirrors `spec.paused` (an Event `Paused` or `Unpaused` when that
//! changes). Always Complete.

use tikv_operator_api::cluster::ComponentStatus;
use tikv_operator_api::condition::{find_condition, is_true_at, reasons, types};
use tikv_operator_task::{Node, Outcome, task};

use crate::cluster::state::ClusterState;
use crate::common::Group;

/// One component's groups summed: what exists, what is ready, what is wanted.
struct Summary {
    replicas: i32,
    ready: i32,
    desired: i32,
    all_ready: bool,
    all_synced: bool,
}

impl Summary {
    /// `PD 3/5 ready`: ready counted against what the groups want, with what exists when
    /// that differs (creation pending, or more than wanted).
    fn text(&self, kind: &str) -> String {
        let Summary { replicas, ready, desired, .. } = *self;
        if desired == 0 {
            return format!("{kind} 0 wanted ({replicas} exist, {ready} ready)");
        }
        let text = format!("{kind} {ready}/{desired} ready");
        if replicas == desired { text } else { format!("{text} ({replicas} exist)") }
    }
}

fn summary<G: Group>(
    groups: &[G],
    conditions: fn(&G) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Summary {
    Summary {
        replicas: groups.iter().map(|g| g.status().map_or(0, |s| G::group_status(s).replicas)).sum(),
        ready: groups.iter().map(|g| g.status().map_or(0, |s| G::group_status(s).ready_replicas)).sum(),
        desired: groups.iter().map(|g| g.replicas().max(0)).sum(),
        all_ready: groups.iter().all(|g| is_true_at(conditions(g), types::READY, g.meta().generation)),
        all_synced: groups.iter().all(|g| is_true_at(conditions(g), types::SYNCED, g.meta().generation)),
    }
}

/// The first group not synced at its generation, with its own reason and message, so
/// the Cluster says which group waits and why.
fn unsynced<G: Group>(groups: &[G], kind: &str) -> Option<String> {
    groups.iter().find(|g| !is_true_at(group_conditions(*g), types::SYNCED, g.meta().generation)).map(|g| {
        let name = g.meta().name.as_deref().unwrap_or_default();
        match find_condition(group_conditions(g), types::SYNCED) {
            Some(c) if c.observed_generation == g.meta().generation => {
                format!("{kind} {name} is not synced: {}: {}", c.reason, c.message)
            }
            _ => format!("{kind} {name} has not reported on its latest spec yet"),
        }
    })
}

fn group_conditions<G: Group>(group: &G) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
    group.status().map(G::conditions).unwrap_or_default()
}

pub fn conditions() -> Node<ClusterState> {
    task("conditions", |s: &mut ClusterState| Box::pin(run(s)))
}

async fn run(s: &mut ClusterState) -> Outcome {
    {
        s.pass.status.observed_generation = s.pass.generation();
        let paused = s.pass.paused();
        let reason = if paused { reasons::PAUSED } else { reasons::UNPAUSED };
        // A pause or its end is announced once, when the status first says it (a new
        // cluster that is not paused is not "unpaused").
        let before = s.pass.reason_as_read(types::PAUSED).map(str::to_owned);
        if before.as_deref() != Some(reason) && (paused || before.is_some()) {
            let note = if paused {
                "spec.paused: the operator changes nothing in this cluster, only reports status"
            } else {
                "spec.paused cleared: the operator acts on this cluster again"
            };
            s.pass.event(reason, "Pause", note.to_string()).await;
        }
        s.pass.set_condition(
            types::PAUSED,
            paused,
            reason,
            if paused { "spec.paused: only status is reported" } else { "" },
        );
        if !s.groups_loaded {
            return Outcome::complete("groups not read");
        }
        let pd = summary(&s.pd_groups, group_conditions);
        let kv = summary(&s.tikv_groups, group_conditions);
        s.pass.status.components = vec![
            ComponentStatus { kind: "PD".into(), replicas: pd.replicas, ready_replicas: pd.ready },
            ComponentStatus { kind: "TiKV".into(), replicas: kv.replicas, ready_replicas: kv.ready },
        ];
        let has_groups = !s.pd_groups.is_empty() && !s.tikv_groups.is_empty();
        let ready = has_groups && pd.all_ready && kv.all_ready;
        let synced = has_groups && pd.all_synced && kv.all_synced && s.id_mismatch.is_none();
        if ready {
            s.pass.set_condition(types::READY, true, reasons::READY, "every group is ready");
        } else {
            s.pass.set_condition(
                types::READY,
                false,
                reasons::NOT_ALL_GROUPS_READY,
                format!("{}, {}", pd.text("PD"), kv.text("TiKV")),
            );
        }
        if let Some(mismatch) = s.id_mismatch.clone() {
            s.pass.not_synced(reasons::CLUSTER_ID_MISMATCH, mismatch);
        } else if !has_groups {
            s.pass.not_synced(reasons::NOT_ALL_GROUPS_READY, "the cluster needs a PD group and a TiKV group");
        } else if !synced {
            let first = unsynced(&s.pd_groups, "PDGroup").or_else(|| unsynced(&s.tikv_groups, "TiKVGroup"));
            s.pass.not_synced(reasons::NOT_ALL_INSTANCES_UP_TO_DATE, first.unwrap_or_default());
        }
        s.pass.set_synced("every group is synced");
        if s.pass.suspended() {
            // Nothing is rolled out while suspended; `Suspended` tells how far it got.
            s.pass.set_condition(types::PROGRESSING, false, reasons::SUSPENDED, "the cluster is suspended");
        } else {
            let progressing = !(ready && synced);
            s.pass.set_condition(
                types::PROGRESSING,
                progressing,
                if progressing { reasons::PROGRESSING } else { reasons::STABLE },
                "",
            );
        }
        Outcome::complete(format!("ready={ready} synced={synced}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{offline_context, sample_cluster, sample_pd_group, sample_tikv_group};
    use tikv_operator_api::condition::{DesiredCondition, set_condition};
    use tikv_operator_task::Runner;

    fn ready<G: Group>(mut group: G, yes: bool) -> G {
        let generation = group.meta().generation;
        let mut status = G::Status::default();
        for type_ in [types::READY, types::SYNCED] {
            set_condition(
                G::conditions_mut(&mut status),
                DesiredCondition::new(type_, yes, "x", "").observed(generation),
                crate::testing::t0(),
            );
        }
        group.set_status(status);
        group
    }

    fn run(state: &mut ClusterState) {
        futures::executor::block_on(Runner::new("test", [conditions()]).run("k", state));
    }

    fn status_of(state: &ClusterState, type_: &str) -> String {
        find_condition(&state.pass.status.conditions, type_).unwrap().status.clone()
    }

    #[tokio::test]
    async fn a_pause_and_its_end_are_announced_once() {
        let env = crate::testing::TestEnv::start().await;
        let mut cluster = sample_cluster("basic");
        cluster.spec.paused = true;
        let cluster = env.create(cluster).await;
        let pass = |cluster: tikv_operator_api::Cluster| {
            let mut state = ClusterState::new(env.ctx.clone(), "default", "basic");
            state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster);
            state
        };
        let runner = Runner::new("test", [conditions()]);
        let mut state = pass(cluster.clone());
        runner.run("k", &mut state).await;
        let as_written = |state: &ClusterState, mut cluster: tikv_operator_api::Cluster| {
            cluster.status = Some(state.pass.status.clone());
            cluster
        };
        let paused = as_written(&state, cluster.clone());
        runner.run("k", &mut pass(paused.clone())).await;
        let mut resumed = paused;
        resumed.spec.paused = false;
        let mut state = pass(resumed.clone());
        runner.run("k", &mut state).await;
        runner.run("k", &mut pass(as_written(&state, resumed))).await;
        let events: Vec<String> = env.events().await.into_iter().map(|e| e.1).collect();
        assert_eq!(events, ["Paused", "Unpaused"]);
    }

    #[tokio::test]
    async fn ready_when_every_group_is_ready_at_its_generation() {
        let mut state = ClusterState::new(offline_context(), "ns", "basic");
        let cluster = sample_cluster("basic");
        state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster);
        state.groups_loaded = true;
        state.pd_groups = vec![ready(sample_pd_group("pd", 3), true)];
        state.tikv_groups = vec![ready(sample_tikv_group("kv", 3), false)];
        run(&mut state);
        assert_eq!(status_of(&state, types::READY), "False");
        assert_eq!(status_of(&state, types::PROGRESSING), "True");

        state.tikv_groups = vec![ready(sample_tikv_group("kv", 3), true)];
        run(&mut state);
        assert_eq!(status_of(&state, types::READY), "True");
        assert_eq!(status_of(&state, types::PROGRESSING), "False");
        assert_eq!(status_of(&state, types::PAUSED), "False");

        // Suspended, nothing progresses, whatever the groups say.
        let mut suspended = state.pass.cluster.clone().unwrap_or_else(|| sample_cluster("basic"));
        suspended.spec.suspend_action = Some(tikv_operator_api::cluster::SuspendAction { suspend_compute: true });
        let unsuspended = state.pass.cluster.replace(suspended);
        state.tikv_groups = vec![ready(sample_tikv_group("kv", 3), false)];
        run(&mut state);
        assert_eq!(status_of(&state, types::PROGRESSING), "False");
        state.pass.cluster = unsuspended;
        state.tikv_groups = vec![ready(sample_tikv_group("kv", 3), true)];
        run(&mut state);
        assert_eq!(status_of(&state, types::PROGRESSING), "False");

        // A newer generation makes the group's conditions stale.
        state.tikv_groups[0].metadata.generation = Some(2);
        run(&mut state);
        assert_eq!(status_of(&state, types::READY), "False");
    }

    #[tokio::test]
    async fn not_synced_names_the_group_and_its_reason() {
        let mut state = ClusterState::new(offline_context(), "ns", "basic");
        let cluster = sample_cluster("basic");
        state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster);
        state.groups_loaded = true;
        state.pd_groups = vec![ready(sample_pd_group("pd", 3), true)];
        let mut kv = ready(sample_tikv_group("kv", 3), true);
        set_condition(
            &mut kv.status.as_mut().unwrap().common.conditions,
            DesiredCondition::new(types::SYNCED, false, reasons::VERSION_DOWNGRADE, "v8.4.0 is older than v8.5.0")
                .observed(kv.metadata.generation),
            crate::testing::t0(),
        );
        state.tikv_groups = vec![kv];
        run(&mut state);
        let synced = find_condition(&state.pass.status.conditions, types::SYNCED).unwrap();
        assert_eq!(synced.status, "False");
        assert_eq!(synced.message, "TiKVGroup kv is not synced: VersionDowngrade: v8.4.0 is older than v8.5.0");

        state.tikv_groups[0].metadata.generation = Some(7);
        state.pass.unsynced.clear();
        run(&mut state);
        let synced = find_condition(&state.pass.status.conditions, types::SYNCED).unwrap();
        assert_eq!(synced.message, "TiKVGroup kv has not reported on its latest spec yet");
    }

    /// A group whose status counts `existing` instances, `ready` of them ready.
    fn counted<G: Group>(group: G, existing: i32, ready_count: i32) -> G {
        let mut group = ready(group, existing == ready_count);
        let mut status = group.status().cloned().unwrap_or_default();
        let counts = G::group_status_mut(&mut status);
        counts.replicas = existing;
        counts.ready_replicas = ready_count;
        group.set_status(status);
        group
    }

    fn ready_message(state: &ClusterState) -> String {
        find_condition(&state.pass.status.conditions, types::READY).unwrap().message.clone()
    }

    #[tokio::test]
    async fn the_summary_counts_ready_against_what_is_wanted() {
        let mut state = ClusterState::new(offline_context(), "ns", "basic");
        let cluster = sample_cluster("basic");
        state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster);
        state.groups_loaded = true;
        // Scale-out 3 -> 5 just asked for: the groups' status still counts 3 of 3.
        state.pd_groups = vec![counted(sample_pd_group("pd", 5), 3, 3)];
        state.tikv_groups = vec![counted(sample_tikv_group("kv", 3), 3, 3), counted(sample_tikv_group("kv2", 2), 2, 1)];
        run(&mut state);
        assert_eq!(ready_message(&state), "PD 3/5 ready (3 exist), TiKV 4/5 ready");
        assert_eq!(
            state.pass.status.components,
            [
                ComponentStatus { kind: "PD".into(), replicas: 3, ready_replicas: 3 },
                ComponentStatus { kind: "TiKV".into(), replicas: 5, ready_replicas: 4 },
            ],
            "components count what exists"
        );

        // PD replicas 0 with three members left: never "PD 3/3".
        let mut pd = counted(sample_pd_group("pd", 0), 3, 3);
        pd.status.as_mut().unwrap().common.conditions.clear();
        state.pd_groups = vec![pd];
        run(&mut state);
        assert_eq!(status_of(&state, types::READY), "False");
        assert_eq!(ready_message(&state), "PD 0 wanted (3 exist, 3 ready), TiKV 4/5 ready");
    }

    #[tokio::test]
    async fn an_id_mismatch_shows_in_synced() {
        let mut state = ClusterState::new(offline_context(), "ns", "basic");
        let cluster = sample_cluster("basic");
        state.pass = state.pass.with_object(cluster.clone()).with_cluster(cluster);
        state.groups_loaded = true;
        state.id_mismatch = Some("wrong PD".into());
        run(&mut state);
        let synced = find_condition(&state.pass.status.conditions, types::SYNCED).unwrap();
        assert_eq!(synced.reason, reasons::CLUSTER_ID_MISMATCH);
    }
}
