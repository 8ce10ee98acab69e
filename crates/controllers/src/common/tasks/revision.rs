//! `revision`: makes sure the ControllerRevision of the current template exists and
//! history stays within the Cluster's `revisionHistoryLimit`. Writes ControllerRevisions
//! (only when the template changed or history overflows). Complete, or Fail.

use tikv_operator_task::{Node, Outcome, task};

use crate::common::Group;
use crate::common::group::GroupState;
use crate::revision::{ensure_revision, revision_name};

pub fn revision<S: GroupState>() -> Node<S> {
    task("revision", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let (Some(group), Some(cluster)) = (&pass.object, &pass.cluster) else {
                return Outcome::complete("nothing loaded");
            };
            let current = <S::G as Group>::common_status(&pass.status).current_revision.clone();
            let keep: Vec<&str> = current.iter().map(String::as_str).collect();
            match ensure_revision(&pass.ctx, group, cluster.spec.revision_history_limit, &keep).await {
                Ok(sync) => {
                    let name = revision_name(group);
                    let message =
                        if sync.created { format!("created revision {name}") } else { format!("revision {name}") };
                    let status = <S::G as Group>::common_status_mut(&mut s.pass_mut().status);
                    status.update_revision = Some(name.clone());
                    status.current_revision.get_or_insert_with(|| name.clone());
                    s.group_mut().update_revision = Some(name);
                    Outcome::complete(message)
                }
                Err(error) => Outcome::fail(error),
            }
        })
    })
}
