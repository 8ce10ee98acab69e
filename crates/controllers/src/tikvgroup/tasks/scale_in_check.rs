//! `scale_in_check`: before the updater takes stores away, refuse up front a scale-in
//! PD could never finish (DESIGN.md section 5 item 8; the judgement is
//! [`crate::tikvgroup::scale_in_check::check`]).
//!
//! The stores judged: those of instances already set offline and not yet removed, plus
//! as many more as the scale-in needs, chosen as favourably as possible (if even those
//! could not go, no choice could). Nothing is touched while blocked: the updater starts
//! no new offline and reports `ScaleInBlocked` with the reason and what would unblock
//! it. Reads: the instances loaded, the PD cache's view (any age: this only holds
//! actions back). Writes: nothing. Outcomes: Complete; Retry while blocked (a change of
//! PD's stores or config that would release it brings the group no event).

use std::time::Duration;

use tikv_operator_api::condition::reasons;
use tikv_operator_api::names::ANNOTATION_FAILOVER;
use tikv_operator_task::{Node, Outcome, sync_task};

use crate::tikvgroup::scale_in_check::{best_case, check};
use crate::tikvgroup::state::TikvGroupState;
use crate::updater::Blocked;

/// How often a blocked scale-in is judged again.
pub const BLOCKED_RECHECK: Duration = Duration::from_secs(30);

pub fn scale_in_check() -> Node<TikvGroupState> {
    sync_task("scale_in_check", |s: &mut TikvGroupState| {
        let Some(group) = &s.pass.object else {
            return Outcome::complete("no group");
        };
        let store_id = |t: &tikv_operator_api::TiKV| t.status.as_ref()?.id.as_deref()?.parse::<u64>().ok();
        let staying: Vec<&tikv_operator_api::TiKV> =
            s.group.instances.iter().filter(|t| t.metadata.deletion_timestamp.is_none() && !t.spec.offline).collect();
        // A store being failed over leaves in its own way: its replacement is no surplus.
        let staying: Vec<&tikv_operator_api::TiKV> = staying
            .into_iter()
            .filter(|t| !t.metadata.annotations.as_ref().is_some_and(|a| a.contains_key(ANNOTATION_FAILOVER)))
            .collect();
        let surplus = staying.len().saturating_sub(usize::try_from(group.spec.replicas).unwrap_or(0));
        if surplus == 0 {
            return Outcome::complete("no scale-in");
        }
        let Some(view) = s.pass.pd().and_then(|pd| pd.cache.snapshot().view) else {
            s.group.scale_in_blocked = Some(Blocked {
                reason: reasons::PD_UNAVAILABLE,
                message: "PD has not answered: a scale-in waits until it can be judged".into(),
            });
            return Outcome::retry(BLOCKED_RECHECK, "PD has not answered");
        };
        let mut leaving: Vec<u64> = s
            .group
            .instances
            .iter()
            .filter(|t| t.spec.offline || t.metadata.deletion_timestamp.is_some())
            .filter_map(store_id)
            .collect();
        let candidates: Vec<u64> = staying.iter().filter_map(|t| store_id(t)).collect();
        leaving.extend(best_case(&view, &candidates, surplus));
        match check(&view, &leaving) {
            Ok(()) => Outcome::complete(format!("{surplus} stores may go")),
            Err(blocked) => {
                let message = blocked.message.clone();
                s.group.scale_in_blocked = Some(blocked);
                Outcome::retry(BLOCKED_RECHECK, message)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pd_registry::ClusterKey;
    use crate::testing::{FakePd, offline_context, sample_cluster, sample_tikv, sample_tikv_group};
    use tikv_operator_pd::NodeState;
    use tikv_operator_task::{OutcomeKind, Runner};

    async fn state(pd: Option<FakePd>, replicas: i32, offline: &[&str]) -> TikvGroupState {
        let ctx = offline_context();
        if let Some(pd) = pd {
            ctx.pd.insert(&ClusterKey::new("default", "basic"), "http://pd", pd.fresh_handle().await);
        }
        let mut s = TikvGroupState::new(ctx, "default", "tikv");
        s.pass = s.pass.with_object(sample_tikv_group("tikv", replicas)).with_cluster(sample_cluster("basic"));
        s.group.instances = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut t = sample_tikv(&format!("tikv-{n}"), "tikv");
                t.spec.offline = offline.contains(n);
                t.status.get_or_insert_default().id = Some((i + 1).to_string());
                t
            })
            .collect();
        s
    }

    fn four_stores() -> FakePd {
        (1..=4).fold(FakePd::bootstrapped(), |pd, id| pd.store(id, &format!("tikv-{id}:20160"), NodeState::Serving))
    }

    async fn run(s: &mut TikvGroupState) -> OutcomeKind {
        Runner::new("t", [scale_in_check()]).run("k", s).await.outcome()
    }

    #[tokio::test]
    async fn a_scale_in_pd_can_finish_passes() {
        let mut s = state(Some(four_stores()), 3, &[]).await;
        assert_eq!(run(&mut s).await, OutcomeKind::Complete);
        assert_eq!(s.group.scale_in_blocked, None);
    }

    #[tokio::test]
    async fn too_few_stores_block_counting_those_already_leaving() {
        let mut s = state(Some(four_stores()), 2, &[]).await;
        assert_eq!(run(&mut s).await, OutcomeKind::Retry);
        let blocked = s.group.scale_in_blocked.clone().unwrap();
        assert_eq!(blocked.reason, reasons::NOT_ENOUGH_STORES);
        assert!(blocked.message.starts_with("removing 2 stores would leave 2 Up stores"), "{}", blocked.message);

        // One already offline, and replicas 2: a second would leave too few as well.
        let mut s = state(Some(four_stores()), 2, &["a"]).await;
        assert_eq!(run(&mut s).await, OutcomeKind::Retry);
        assert_eq!(s.group.scale_in_blocked.unwrap().reason, reasons::NOT_ENOUGH_STORES);

        // Lowering max-replicas releases it.
        let mut s = state(Some(four_stores().replication(2, &[])), 2, &[]).await;
        assert_eq!(run(&mut s).await, OutcomeKind::Complete);
    }

    #[tokio::test]
    async fn no_scale_in_or_no_pd_view() {
        let mut s = state(None, 4, &[]).await;
        assert_eq!(run(&mut s).await, OutcomeKind::Complete, "nothing to judge");
        let mut s = state(None, 3, &[]).await;
        assert_eq!(run(&mut s).await, OutcomeKind::Retry);
        assert_eq!(s.group.scale_in_blocked.unwrap().reason, reasons::PD_UNAVAILABLE);
    }
}
