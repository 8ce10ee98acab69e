//! Why an instance's Pod does not run, as the scheduler and the kubelet report it: a
//! Pod the scheduler cannot place, a container crash-looping with the message it
//! died with. Read by both instance controllers' `conditions`, so a stuck instance
//! says why in its Ready condition instead of a bare "pod is not ready".
//!
//! The crash message is `lastState.terminated.message` (the process's last words: the
//! kubelet fills it from the termination-message file, or from the log tail with
//! `terminationMessagePolicy: FallbackToLogsOnError`, which our containers set),
//! falling back to the termination `reason` and exit code.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tikv_operator_api::condition::{reasons, types};

use super::instance::{InstanceState, pod_terminating};

/// What keeps a Pod from running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PodProblem {
    /// `PodScheduled=False`, reason `Unschedulable`: the scheduler's message.
    Unschedulable { message: String },
    /// A container that exited with an error and waits to be restarted (in
    /// `CrashLoopBackOff`, or just before its restart).
    CrashLoop { container: String, restarts: i32, exit_code: i32, reason: String, message: String },
}

impl PodProblem {
    /// The Ready/Running reason and message, when nothing more specific is known.
    pub fn condition(&self) -> (&'static str, String) {
        match self {
            PodProblem::Unschedulable { message } => {
                (reasons::UNSCHEDULABLE, format!("pod cannot be scheduled: {message}"))
            }
            PodProblem::CrashLoop { .. } => (reasons::POD_NOT_RUNNING, self.crash_summary()),
        }
    }

    /// "container pd crash-loops (3 restarts, exit code 1): <its message>".
    pub fn crash_summary(&self) -> String {
        match self {
            PodProblem::CrashLoop { container, restarts, exit_code, reason, message } => {
                let said = if message.trim().is_empty() { reason.as_str() } else { message.trim() };
                format!("container {container} crash-loops ({restarts} restarts, exit code {exit_code}): {said}")
            }
            PodProblem::Unschedulable { message } => message.clone(),
        }
    }
}

/// The problem of a Pod that is not terminating, if the scheduler or the kubelet
/// report one.
pub fn pod_problem(pod: &Pod) -> Option<PodProblem> {
    if pod_terminating(pod) {
        return None;
    }
    let status = pod.status.as_ref()?;
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"));
    if let Some(condition) = unschedulable {
        return Some(PodProblem::Unschedulable { message: condition.message.clone().unwrap_or_default() });
    }
    status.container_statuses.iter().flatten().find_map(crash_loop)
}

fn crash_loop(c: &ContainerStatus) -> Option<PodProblem> {
    let waiting = c.state.as_ref()?.waiting.as_ref()?;
    let last = c.last_state.as_ref()?.terminated.as_ref()?;
    let backing_off = waiting.reason.as_deref() == Some("CrashLoopBackOff");
    if !backing_off && last.exit_code == 0 {
        return None;
    }
    Some(PodProblem::CrashLoop {
        container: c.name.clone(),
        restarts: c.restart_count,
        exit_code: last.exit_code,
        reason: last.reason.clone().unwrap_or_default(),
        message: last.message.clone().unwrap_or_default(),
    })
}

/// Ready and Running False with the Pod's problem, if it has one; `classify` may give
/// a component-specific reason and message (a PD member refused by its cluster).
/// Call after `set_running` and `set_ready`.
pub fn report_pod_problem<S: InstanceState>(s: &mut S, classify: fn(&PodProblem) -> Option<(&'static str, String)>) {
    let Some(problem) = s.parts().pod.as_ref().and_then(pod_problem) else { return };
    let (reason, message) = classify(&problem).unwrap_or_else(|| problem.condition());
    let pass = s.pass_mut();
    pass.set_condition(types::RUNNING, false, reason, message.clone());
    pass.set_condition(types::READY, false, reason, message);
}

/// Pod statuses as the scheduler and the kubelet write them, for tests.
#[cfg(test)]
pub mod fixtures {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStateWaiting, PodCondition, PodStatus,
    };

    /// A Pod whose `pd` container waits (`waiting` reason) after exiting with `exit_code`.
    pub fn crash_looping(waiting: &str, exit_code: i32, message: Option<&str>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Running".into()),
                container_statuses: Some(vec![ContainerStatus {
                    name: "pd".into(),
                    restart_count: 4,
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(waiting.into()),
                            message: Some("back-off 40s restarting failed container".into()),
                        }),
                        ..Default::default()
                    }),
                    last_state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code,
                            reason: Some("Error".into()),
                            message: message.map(Into::into),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Pod::default()
        }
    }

    /// A Pod the scheduler cannot place.
    pub fn unschedulable() -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                conditions: Some(vec![PodCondition {
                    type_: "PodScheduled".into(),
                    status: "False".into(),
                    reason: Some("Unschedulable".into()),
                    message: Some("0/3 nodes are available: 3 Insufficient cpu.".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Pod::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{crash_looping, unschedulable};
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning};

    #[test]
    fn an_unschedulable_pod_gives_the_schedulers_message() {
        let problem = pod_problem(&unschedulable()).unwrap();
        assert_eq!(
            problem.condition(),
            (reasons::UNSCHEDULABLE, "pod cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu.".into())
        );
    }

    #[test]
    fn a_crash_loop_gives_the_last_termination_message_or_reason() {
        let problem = pod_problem(&crash_looping("CrashLoopBackOff", 1, Some("boom\n"))).unwrap();
        assert_eq!(
            problem.condition(),
            (reasons::POD_NOT_RUNNING, "container pd crash-loops (4 restarts, exit code 1): boom".into())
        );
        let problem = pod_problem(&crash_looping("CrashLoopBackOff", 137, None)).unwrap();
        assert_eq!(problem.crash_summary(), "container pd crash-loops (4 restarts, exit code 137): Error");
        // Between back-offs (waiting to restart after an error) it still counts.
        assert!(pod_problem(&crash_looping("ContainerCreating", 1, Some("boom"))).is_some());
    }

    #[test]
    fn a_running_starting_or_terminating_pod_has_no_problem() {
        // Restarted after a clean exit, waiting for its image: not a crash.
        assert_eq!(pod_problem(&crash_looping("ContainerCreating", 0, None)), None);
        // Running again after an earlier crash: readiness decides, not the old crash.
        let mut pod = crash_looping("CrashLoopBackOff", 1, Some("boom"));
        let statuses = pod.status.as_mut().unwrap().container_statuses.as_mut().unwrap();
        statuses[0].state =
            Some(ContainerState { running: Some(ContainerStateRunning::default()), ..Default::default() });
        assert_eq!(pod_problem(&pod), None);
        // Going away: its crashes no longer matter.
        let mut pod = crash_looping("CrashLoopBackOff", 1, Some("boom"));
        pod.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH));
        assert_eq!(pod_problem(&pod), None);
        assert_eq!(pod_problem(&Pod::default()), None);
    }
}
