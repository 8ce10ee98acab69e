//! `load_group`: the PD group (is it bootstrapped?) and its instances (the initial
//! members, or the members to join).
//!
//! Reads: the PDGroup named by the instance's group label, and the PD instances with
//! that group label. Writes: nothing. Complete; Wait when the group is missing (its
//! creation re-triggers the instance through the owner); Fail on API errors.

use kube::Api;
use kube::api::ListParams;
use tikv_operator_api::names::COMPONENT_PD;
use tikv_operator_api::{PD, PDGroup};
use tikv_operator_task::{Node, Outcome, task};

use crate::common::instance::pod_selector;
use crate::common::{Instance, Object};
use crate::pd::state::PdState;

pub fn load_group() -> Node<PdState> {
    task("load_group", |s: &mut PdState| {
        Box::pin(async move {
            let Some(pd) = &s.pass.object else {
                return Outcome::complete("no instance");
            };
            let (group_name, cluster) = (pd.group(), pd.cluster_name());
            let groups: Api<PDGroup> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
            let peers: Api<PD> = Api::namespaced(s.pass.ctx.client.clone(), &s.pass.namespace);
            let selector = pod_selector(&cluster, COMPONENT_PD, &group_name);
            let params = ListParams::default().labels(&selector);
            match futures::try_join!(groups.get_opt(&group_name), peers.list(&params)) {
                Ok((Some(group), peers)) => {
                    s.group = Some(group);
                    s.peers = peers.items;
                    Outcome::complete(format!("group {group_name}, {} members", s.peers.len()))
                }
                Ok((None, _)) => Outcome::wait(format!("PD group {group_name} does not exist")),
                Err(error) => Outcome::fail(error),
            }
        })
    })
}
