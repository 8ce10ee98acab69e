//! `load_pod`: reads the instance's Pod from the watch cache. Writes nothing. Complete.

use k8s_openapi::api::core::v1::Pod;
use tikv_operator_task::{Node, Outcome, task};

use crate::common::Instance;
use crate::common::instance::{InstanceState, pod_terminating};

pub fn load_pod<S: InstanceState>() -> Node<S> {
    task("load_pod", |s: &mut S| {
        Box::pin(async move {
            let pass = s.pass();
            let Some(instance) = &pass.object else {
                return Outcome::complete("no instance");
            };
            let name = instance.pod_name();
            let pod = pass.ctx.caches.get::<Pod>(&pass.namespace, &name).map(|p| Pod::clone(&p));
            let message = match &pod {
                Some(p) if pod_terminating(p) => format!("pod {name} terminating"),
                Some(_) => format!("pod {name}"),
                None => format!("no pod {name}"),
            };
            let parts = s.parts_mut();
            parts.pod = pod;
            parts.pod_loaded = true;
            Outcome::complete(message)
        })
    })
}
