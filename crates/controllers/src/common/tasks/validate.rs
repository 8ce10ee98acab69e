//! `validate_template`: the group checks the template the user edits before anything
//! is built from it, and `template_invalid`, the guard that keeps a bad template from
//! being rolled out.
//!
//! Reads: the group and its instances (loaded earlier). Checks, in order: the config is
//! TOML; it sets none of the keys the operator owns (the renderer's own list); the
//! version is not older than, nor across a major version from, what runs (the group's
//! `status.version` and its instances' versions) unless the group carries
//! `ANNOTATION_ALLOW_VERSION_CHANGE: "true"`. Each problem becomes a Synced=False finding
//! (the first shows) and is recorded for the guard. Writes: a Warning Event for the
//! first problem, and a Normal Event for an even number of PD members, each only when
//! the status read does not already say it (so a pass that finds nothing new writes
//! nothing). Outcomes: Complete when the template is valid; Wait (for the user's fix)
//! otherwise.

use kube::ResourceExt;
use tikv_operator_api::condition::{find_condition, reasons, types};
use tikv_operator_api::names::ANNOTATION_ALLOW_VERSION_CHANGE;
use tikv_operator_task::{Condition, Node, Outcome, cond, task};

use crate::common::group::GroupState;
use crate::common::render::{RenderError, render_config};
use crate::common::{Finding, Group, Instance, Object};

const NOT_ROLLED_OUT: &str = "nothing is rolled out until then";

/// What is wrong with the group's template, first problem first.
pub fn template_findings<G: Group>(group: &G, instances: &[G::Instance]) -> Vec<Finding> {
    let mut findings = Vec::new();
    match render_config(group.config(), G::RESERVED_CONFIG_KEYS, &[]) {
        Err(RenderError::InvalidConfig(error)) => findings.push(Finding {
            reason: reasons::INVALID_CONFIG,
            message: format!("spec.template.spec.config is not valid TOML ({error}): fix it; {NOT_ROLLED_OUT}"),
        }),
        Err(error) => findings.push(Finding {
            reason: reasons::INVALID_CONFIG,
            message: format!("spec.template.spec.config cannot be used ({error}): fix it; {NOT_ROLLED_OUT}"),
        }),
        Ok(rendered) if !rendered.reserved_keys_set.is_empty() => findings.push(Finding {
            reason: reasons::RESERVED_CONFIG_KEY,
            message: format!(
                "spec.template.spec.config sets {} that the operator owns: remove {}, the operator sets {} itself; {NOT_ROLLED_OUT}",
                rendered.reserved_keys_set.join(", "),
                if rendered.reserved_keys_set.len() == 1 { "it" } else { "them" },
                if rendered.reserved_keys_set.len() == 1 { "it" } else { "them" },
            ),
        }),
        Ok(_) => {}
    }
    findings.extend(version_finding(group, instances));
    findings
}

/// A version such as `v8.5.0` or `8.5.0`; `None` for anything semver cannot read (it is
/// then not compared: admission checks the form).
fn parse_version(version: &str) -> Option<semver::Version> {
    semver::Version::parse(version.strip_prefix('v').unwrap_or(version)).ok()
}

fn version_change_allowed<G: Group>(group: &G) -> bool {
    group.annotations().get(ANNOTATION_ALLOW_VERSION_CHANGE).is_some_and(|v| v == "true")
}

/// A downgrade or a change of major version from any version that runs.
fn version_finding<G: Group>(group: &G, instances: &[G::Instance]) -> Option<Finding> {
    if version_change_allowed(group) {
        return None;
    }
    let wanted_text = group.version();
    let wanted = parse_version(wanted_text)?;
    let recorded = group.status().and_then(|s| G::group_status(s).version.clone());
    let running: Vec<(String, semver::Version)> = recorded
        .into_iter()
        .chain(instances.iter().map(|i| i.version().to_string()))
        .filter_map(|text| parse_version(&text).map(|v| (text, v)))
        .collect();
    let how_to_force = format!("annotate the group with {ANNOTATION_ALLOW_VERSION_CHANGE}=true to force it");
    if let Some((newest, _)) = running.iter().filter(|(_, v)| *v > wanted).max_by(|a, b| a.1.cmp(&b.1)) {
        return Some(Finding {
            reason: reasons::VERSION_DOWNGRADE,
            message: format!(
                "spec.template.spec.version {wanted_text} is older than {newest}, which the group runs: PD and TiKV do not support downgrades in general; set it back to {newest}, or {how_to_force}; {NOT_ROLLED_OUT}"
            ),
        });
    }
    let (other, _) = running.iter().find(|(_, v)| v.major != wanted.major)?;
    Some(Finding {
        reason: reasons::VERSION_MAJOR_JUMP,
        message: format!(
            "spec.template.spec.version {wanted_text} crosses a major version from {other}, which the group runs: PD and TiKV do not support that in general; check the upgrade path and set it back to {other}, or {how_to_force}; {NOT_ROLLED_OUT}"
        ),
    })
}

pub fn validate_template<S: GroupState>() -> Node<S> {
    task("validate_template", |s: &mut S| {
        Box::pin(async move {
            let Some(group) = s.pass().object.clone() else {
                return Outcome::complete("no group");
            };
            if let Some(note) = group.replicas_note() {
                let read_ready = group.status().and_then(|st| find_condition(S::G::conditions(st), types::READY));
                if !read_ready.is_some_and(|c| c.message.contains(&note)) {
                    s.pass().event(reasons::EVEN_REPLICAS, "Validate", note).await;
                }
            }
            let findings = template_findings(&group, &s.group().instances);
            let Some(first) = findings.first().cloned() else {
                return Outcome::complete("template is valid");
            };
            let pass = s.pass_mut();
            for finding in &findings {
                pass.not_synced(finding.reason, finding.message.clone());
            }
            if !pass.reported(types::SYNCED, false, first.reason, &first.message) {
                pass.warning(first.reason, "Validate", first.message.clone()).await;
            }
            let reasons: Vec<&str> = findings.iter().map(|f| f.reason).collect();
            s.group_mut().template_findings = findings;
            Outcome::wait(format!("template not rolled out ({}); waiting for the user to fix it", reasons.join(", ")))
        })
    })
}

/// `validate_template` found a problem: nothing is built from this template.
pub fn template_invalid<S: GroupState>() -> Condition<S> {
    cond("template_invalid", |s: &S| !s.group().template_findings.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdgroup::state::PdGroupState;
    use crate::testing::{TestEnv, sample_cluster, sample_pd, sample_pd_group, sample_tikv, sample_tikv_group};
    use crate::tikvgroup::state::TikvGroupState;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as K8sCondition;
    use tikv_operator_api::condition::{DesiredCondition, set_condition};
    use tikv_operator_api::{PDGroup, TiKVGroup};
    use tikv_operator_task::{OutcomeKind, Runner};

    fn reasons_of(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.reason).collect()
    }

    fn pd_group(config: &str, version: &str) -> PDGroup {
        let mut group = sample_pd_group("pd", 3);
        group.spec.template.spec.config = config.into();
        group.spec.template.spec.version = version.into();
        group
    }

    fn tikv_group(config: &str, version: &str) -> TiKVGroup {
        let mut group = sample_tikv_group("tikv", 3);
        group.spec.template.spec.config = config.into();
        group.spec.template.spec.version = version.into();
        group
    }

    fn running_version(mut group: PDGroup, version: &str) -> PDGroup {
        group.status.get_or_insert_default().group.version = Some(version.into());
        group
    }

    #[test]
    fn a_valid_template_has_no_findings() {
        assert_eq!(template_findings(&sample_pd_group("pd", 3), &[]), []);
        assert_eq!(template_findings(&sample_tikv_group("tikv", 3), &[sample_tikv("tikv-a", "tikv")]), []);
        // An upgrade within the major version is what upgrades are.
        let group = running_version(pd_group("", "v8.5.1"), "v8.5.0");
        assert_eq!(template_findings(&group, &[sample_pd("pd-a", "pd")]), []);
    }

    #[test]
    fn config_that_is_not_toml_is_invalid_config() {
        let findings = template_findings(&pd_group("[replication\nmax-replicas = 3", "v8.5.0"), &[]);
        assert_eq!(reasons_of(&findings), [reasons::INVALID_CONFIG]);
        let message = &findings[0].message;
        assert!(message.starts_with("spec.template.spec.config is not valid TOML ("), "{message}");
        assert!(message.ends_with("): fix it; nothing is rolled out until then"), "{message}");
    }

    #[test]
    fn operator_owned_keys_are_named_from_the_renderers_lists() {
        let findings = template_findings(&pd_group("name = \"x\"\nclient-urls = \"http://y\"\n", "v8.5.0"), &[]);
        assert_eq!(
            findings,
            [Finding {
                reason: reasons::RESERVED_CONFIG_KEY,
                message: "spec.template.spec.config sets name, client-urls that the operator owns: remove them, \
                          the operator sets them itself; nothing is rolled out until then"
                    .into(),
            }]
        );
        let findings = template_findings(&tikv_group("[server]\naddr = \"0.0.0.0:20160\"\n", "v8.5.0"), &[]);
        assert_eq!(
            findings[0].message,
            "spec.template.spec.config sets server.addr that the operator owns: remove it, the operator sets it \
             itself; nothing is rolled out until then"
        );
        let findings = template_findings(&tikv_group("[storage]\ndata-dir = \"/x\"\n", "v8.5.0"), &[]);
        assert_eq!(reasons_of(&findings), [reasons::RESERVED_CONFIG_KEY]);
        assert!(findings[0].message.contains("storage.data-dir"));
        // TiKV's `name` is not PD's: each group checks its own list.
        assert_eq!(template_findings(&tikv_group("[pd]\nretry-interval = \"300ms\"\n", "v8.5.0"), &[]), []);
    }

    #[test]
    fn a_downgrade_is_refused_against_the_status_and_against_any_instance() {
        let group = running_version(pd_group("", "v8.4.0"), "v8.5.0");
        let findings = template_findings(&group, &[]);
        assert_eq!(
            findings,
            [Finding {
                reason: reasons::VERSION_DOWNGRADE,
                message: "spec.template.spec.version v8.4.0 is older than v8.5.0, which the group runs: PD and TiKV \
                          do not support downgrades in general; set it back to v8.5.0, or annotate the group with \
                          core.tikv.org/allow-unsupported-version-change=true to force it; nothing is rolled out \
                          until then"
                    .into(),
            }]
        );

        // No version recorded yet (never fully rolled out), but an instance runs a newer one.
        let group = pd_group("", "8.4.0");
        let mut newer = sample_pd("pd-b", "pd");
        newer.spec.template.version = "v8.5.2".into();
        let findings = template_findings(&group, &[sample_pd("pd-a", "pd"), newer]);
        assert_eq!(reasons_of(&findings), [reasons::VERSION_DOWNGRADE]);
        assert!(findings[0].message.contains("8.4.0 is older than v8.5.2"), "{}", findings[0].message);
    }

    #[test]
    fn a_major_jump_is_refused_and_both_are_allowed_with_the_annotation() {
        let group = running_version(pd_group("", "v9.0.0"), "v8.5.0");
        let findings = template_findings(&group, &[]);
        assert_eq!(reasons_of(&findings), [reasons::VERSION_MAJOR_JUMP]);
        assert_eq!(
            findings[0].message,
            "spec.template.spec.version v9.0.0 crosses a major version from v8.5.0, which the group runs: PD and TiKV \
             do not support that in general; check the upgrade path and set it back to v8.5.0, or annotate the group \
             with core.tikv.org/allow-unsupported-version-change=true to force it; nothing is rolled out until then"
        );
        // Down across a major version is a downgrade first.
        let group = running_version(pd_group("", "v7.5.0"), "v8.5.0");
        assert_eq!(reasons_of(&template_findings(&group, &[])), [reasons::VERSION_DOWNGRADE]);

        for version in ["v9.0.0", "v7.5.0"] {
            let mut group = running_version(pd_group("", version), "v8.5.0");
            group.annotations_mut().insert(ANNOTATION_ALLOW_VERSION_CHANGE.into(), "true".into());
            assert_eq!(template_findings(&group, &[]), [], "{version} allowed explicitly");
            group.annotations_mut().insert(ANNOTATION_ALLOW_VERSION_CHANGE.into(), "yes".into());
            assert_eq!(template_findings(&group, &[]).len(), 1, "only \"true\" allows");
        }
    }

    #[test]
    fn versions_semver_cannot_read_are_not_compared_and_problems_add_up() {
        let group = running_version(pd_group("", "nightly"), "v8.5.0");
        assert_eq!(template_findings(&group, &[]), []);
        let group = running_version(pd_group("", "v8.4.0"), "latest");
        assert_eq!(template_findings(&group, &[]), []);
        let group = running_version(pd_group("name = 1", "v8.4.0"), "v8.5.0");
        assert_eq!(
            reasons_of(&template_findings(&group, &[])),
            [reasons::RESERVED_CONFIG_KEY, reasons::VERSION_DOWNGRADE]
        );
    }

    #[test]
    fn even_pd_members_are_noted_with_the_quorum_arithmetic() {
        let note = |replicas| sample_pd_group("pd", replicas).replicas_note();
        assert_eq!(
            note(4).as_deref(),
            Some("4 members tolerate 1 failure, as 3 do: an odd number of PD members uses every member")
        );
        assert_eq!(
            note(2).as_deref(),
            Some("2 members tolerate 0 failures, as 1 do: an odd number of PD members uses every member")
        );
        assert_eq!(note(3), None);
        assert_eq!(note(0), None);
        assert_eq!(sample_tikv_group("tikv", 4).replicas_note(), None);
    }

    fn state(env: &TestEnv, group: PDGroup) -> PdGroupState {
        let mut s = PdGroupState::new(env.ctx.clone(), "default", "pd");
        s.pass = s.pass.with_object(group).with_cluster(sample_cluster("basic"));
        s.group.instances_loaded = true;
        s
    }

    fn with_condition(mut group: PDGroup, type_: &str, status: bool, reason: &str, message: &str) -> PDGroup {
        let conditions: &mut Vec<K8sCondition> = &mut group.status.get_or_insert_default().common.conditions;
        set_condition(conditions, DesiredCondition::new(type_, status, reason, message), crate::testing::t0());
        group
    }

    #[tokio::test]
    async fn a_new_problem_is_reported_and_announced_once() {
        let env = TestEnv::start().await;
        // Created, then given the status a previous pass wrote (creation drops status).
        let group = running_version(env.create(pd_group("", "v8.4.0")).await, "v8.5.0");
        let runner = Runner::new("t", [validate_template()]);

        let mut s = state(&env, group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(
            report.entry("validate_template").unwrap().message(),
            "template not rolled out (VersionDowngrade); waiting for the user to fix it"
        );
        assert_eq!(reasons_of(&s.group.template_findings), [reasons::VERSION_DOWNGRADE]);
        assert_eq!(s.pass.unsynced, s.group.template_findings);
        let events = env.events().await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].0, "Warning");
        assert_eq!(events[0].1, reasons::VERSION_DOWNGRADE);
        assert_eq!(events[0].2, s.group.template_findings[0].message);
        assert_eq!(env.write_log(), Vec::<String>::new(), "the task itself writes no object");

        // The status already says it: no second Event.
        let message = s.group.template_findings[0].message.clone();
        let reported = with_condition(group.clone(), types::SYNCED, false, reasons::VERSION_DOWNGRADE, &message);
        let mut s = state(&env, reported);
        assert_eq!(env.run(&runner, "k", &mut s).await.outcome(), OutcomeKind::Wait);
        assert_eq!(env.events().await.len(), 1);
        assert_eq!(env.event_writes().await, 1);

        // Another problem is news: another Event (its note differs).
        let mut other = with_condition(group, types::SYNCED, false, reasons::VERSION_DOWNGRADE, &message);
        other.spec.template.spec.version = "v8.3.0".into();
        let mut s = state(&env, other);
        env.run(&runner, "k", &mut s).await;
        assert_eq!(env.event_writes().await, 2);
    }

    #[tokio::test]
    async fn a_valid_template_completes_and_even_members_are_announced_once() {
        let env = TestEnv::start().await;
        let group = env.create(sample_pd_group("pd", 4)).await;
        let runner = Runner::new("t", [validate_template()]);
        let mut s = state(&env, group.clone());
        let report = env.run(&runner, "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Complete, "{report}");
        assert_eq!(report.entry("validate_template").unwrap().message(), "template is valid");
        assert!(s.group.template_findings.is_empty() && s.pass.unsynced.is_empty());
        let events = env.events().await;
        assert_eq!(
            events,
            [(
                "Normal".to_string(),
                reasons::EVEN_REPLICAS.to_string(),
                "4 members tolerate 1 failure, as 3 do: an odd number of PD members uses every member".to_string()
            )]
        );

        // Once the Ready message carries the note, it is not announced again.
        let noted =
            with_condition(group, types::READY, true, reasons::READY, &format!("4 of 4 ready; {}", events[0].2));
        env.run(&runner, "k", &mut state(&env, noted)).await;
        assert_eq!(env.events().await.len(), 1);
        assert_eq!(env.writes(), 0);
    }

    #[tokio::test]
    async fn the_tikv_group_is_validated_the_same_way() {
        let env = TestEnv::start().await;
        let group = env.create(tikv_group("[server\n", "v8.5.0")).await;
        let mut s = TikvGroupState::new(env.ctx.clone(), "default", "tikv");
        s.pass = s.pass.with_object(group);
        let report = env.run(&Runner::new("t", [validate_template()]), "k", &mut s).await;
        assert_eq!(report.outcome(), OutcomeKind::Wait, "{report}");
        assert_eq!(reasons_of(&s.group.template_findings), [reasons::INVALID_CONFIG]);
        assert_eq!(env.events().await.len(), 1);
    }
}
