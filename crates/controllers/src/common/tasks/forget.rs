//! `forget_instance`: an instance that is gone leaves nothing in the operator's memory —
//! its PD wait (which keeps the cluster's PD cache polling fast) and the time of its
//! last serving-certificate check. Writes nothing. Always Complete.

use tikv_operator_task::{Node, Outcome, sync_task};

use crate::common::PassState;

pub fn forget_instance<S: PassState>() -> Node<S> {
    sync_task("forget_instance", |s: &mut S| {
        let key = s.pass().key();
        s.pass().ctx.pd_waits.done(&key);
        s.pass().ctx.certificate_checks.forget(&key);
        Outcome::complete("")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakePd, PdOnly, TestEnv};
    use std::time::Duration;
    use tikv_operator_task::{OutcomeKind, Runner};

    #[tokio::test]
    async fn a_gone_instance_leaves_no_wait_and_no_certificate_check_behind() {
        let env = TestEnv::start().await;
        let mut state = PdOnly::new(&env, "pd-abc123");
        let ctx = state.pass.ctx.clone();
        let key = state.pass.key();
        let handle = FakePd::bootstrapped().fresh_handle().await;
        ctx.pd_waits.waiting(&key, &handle.cache, "a member to join");
        let now = ctx.now();
        ctx.certificate_checks.checked(&key, "uid-1", now);
        let hour = Duration::from_secs(3600);
        assert!(ctx.pd_waits.is_waiting(&key));
        assert!(!ctx.certificate_checks.due_in(&key, "uid-1", now, hour).is_zero());

        let report = Runner::new("t", [forget_instance()]).run("k", &mut state).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert!(!ctx.pd_waits.is_waiting(&key), "the wait is released");
        assert!(ctx.certificate_checks.due_in(&key, "uid-1", now, hour).is_zero(), "the check is forgotten");
        assert!(env.requests().is_empty(), "writes nothing: {:?}", env.requests());
    }
}
