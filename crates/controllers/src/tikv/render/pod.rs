//! The TiKV Pod: `/tikv-server` pointed at the PD client Service, with its addresses,
//! data directory, config file and store labels (zone etc. from the instance's
//! topology, `host` from the node it runs on); stable DNS through hostname/subdomain; a
//! TCP readiness probe on the status port; TLS Secret mounted when on; overlay last.
//!
//! Its preStop hook keeps `tikv-server` running, bounded, until the store leads no
//! region (`tikv-operator tikv-prestop`, see the operator binary): an init container
//! of the operator's own image copies the binary into an `emptyDir` the TiKV container
//! mounts, since the TiKV image has no such tool. The grace period is long
//! ([`TERMINATION_GRACE_SECONDS`]): the hook bounds itself, and the operator deletes
//! TiKV pods with an explicit, shorter grace period.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, Lifecycle, LifecycleHandler,
    ObjectFieldSelector, Pod, PodSpec, Probe, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tikv_operator_api::TiKV;
use tikv_operator_api::names::{self, COMPONENT_TIKV};

use super::{CONFIG_DIR, CONFIG_FILE, advertise_addr, advertise_status_addr};
use crate::common::Instance;
use crate::common::render::{RenderError, apply_pod_overlay, child_meta, data_dir, image, pod_volumes, resources};

pub struct PodInputs<'a> {
    pub tikv: &'a TiKV,
    pub tls: bool,
    /// The PD client Service URL recorded on the Cluster.
    pub pd_url: &'a str,
    /// The operator's own image, which the preStop hook's binary is copied from.
    pub tools_image: &'a str,
}

/// Where the operator binary is in its image.
pub const TOOLS_BINARY: &str = "/tikv-operator";
/// Where the init container puts the binary, in both containers.
pub const PRESTOP_DIR: &str = "/var/lib/tikv-operator";
/// The init container that copies it.
pub const PRESTOP_INIT_CONTAINER: &str = "install-prestop";
/// The `emptyDir` holding it.
pub const PRESTOP_VOLUME: &str = "tikv-vol-prestop";
/// As tidb-operator v2: the hook bounds itself and the operator deletes TiKV pods with
/// an explicit grace period, so this only holds for deletions by someone else.
pub const TERMINATION_GRACE_SECONDS: i64 = 65535;

/// The hook: the copied binary waits until the store at its advertised status address
/// leads no region.
fn pre_stop(tikv: &TiKV, pd_url: &str) -> Lifecycle {
    let binary = TOOLS_BINARY.rsplit('/').next().unwrap_or(TOOLS_BINARY);
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec![
                    format!("{PRESTOP_DIR}/{binary}"),
                    "tikv-prestop".into(),
                    format!("--pd={pd_url}"),
                    format!("--status-addr={}", advertise_status_addr(tikv)),
                ]),
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

/// Store labels from the topology's well-known node labels, plus `spec.server.labels`;
/// `host` is the node, filled in by the kubelet from `$(NODE_NAME)`.
pub fn store_labels(tikv: &TiKV) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = tikv.spec.template.server.labels.clone();
    for (key, value) in tikv.topology().into_iter().flatten() {
        let label = match key.as_str() {
            "topology.kubernetes.io/zone" | "failure-domain.beta.kubernetes.io/zone" => "zone",
            "topology.kubernetes.io/region" | "failure-domain.beta.kubernetes.io/region" => "region",
            "kubernetes.io/hostname" => "host",
            _ => continue,
        };
        labels.insert(label.into(), value.clone());
    }
    labels.entry("host".into()).or_insert_with(|| "$(NODE_NAME)".into());
    labels
}

pub fn pod(inputs: &PodInputs<'_>) -> Result<Pod, RenderError> {
    let tikv = inputs.tikv;
    let group = tikv.group();
    if group.is_empty() {
        return Err(RenderError::NoGroup);
    }
    let name = tikv.pod_name();
    let ports = &tikv.spec.template.server.ports;
    let labels = store_labels(tikv).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let command = vec![
        "/tikv-server".to_string(),
        format!("--pd={}", inputs.pd_url),
        format!("--addr=0.0.0.0:{}", ports.client),
        format!("--advertise-addr={}", advertise_addr(tikv)),
        format!("--status-addr=0.0.0.0:{}", ports.status),
        format!("--advertise-status-addr={}", advertise_status_addr(tikv)),
        format!("--data-dir={}", data_dir(tikv)),
        format!("--config={CONFIG_DIR}/{CONFIG_FILE}"),
        format!("--labels={labels}"),
    ];
    let tls_secret = inputs.tls.then(|| names::cluster_tls_secret_name(&group, COMPONENT_TIKV));
    let (mut volumes, mut mounts) = pod_volumes(tikv, &name, CONFIG_DIR, tls_secret);
    volumes.push(Volume {
        name: PRESTOP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    });
    let prestop_mount =
        VolumeMount { name: PRESTOP_VOLUME.into(), mount_path: PRESTOP_DIR.into(), ..VolumeMount::default() };
    mounts.push(prestop_mount.clone());
    let install = Container {
        name: PRESTOP_INIT_CONTAINER.into(),
        image: Some(inputs.tools_image.to_owned()),
        command: Some(vec![TOOLS_BINARY.into(), "install".into(), PRESTOP_DIR.into()]),
        // The TiKV container's resources: an init container without them would make the
        // pod Burstable, and as much as TiKV's asks no more of the node.
        resources: resources(tikv.resources()),
        volume_mounts: Some(vec![prestop_mount]),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Container::default()
    };
    let container = Container {
        name: COMPONENT_TIKV.into(),
        image: Some(image(tikv.image(), "pingcap/tikv", tikv.version())),
        command: Some(command),
        // The kubelet then reports the last log lines of a crash in lastState.terminated.message.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        env: Some(vec![EnvVar {
            name: "NODE_NAME".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector { field_path: "spec.nodeName".into(), api_version: None }),
                ..EnvVarSource::default()
            }),
        }]),
        ports: Some(vec![
            ContainerPort { name: Some("client".into()), container_port: ports.client, ..ContainerPort::default() },
            ContainerPort { name: Some("status".into()), container_port: ports.status, ..ContainerPort::default() },
        ]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(ports.status), host: None }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(5),
            ..Probe::default()
        }),
        resources: resources(tikv.resources()),
        volume_mounts: Some(mounts),
        lifecycle: Some(pre_stop(tikv, inputs.pd_url)),
        ..Container::default()
    };
    let meta = child_meta(tikv, name.clone());
    let mut pod = Pod {
        metadata: meta,
        spec: Some(PodSpec {
            hostname: Some(name),
            subdomain: Some(tikv.spec.subdomain.clone()),
            node_selector: tikv.topology().cloned(),
            termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
            init_containers: Some(vec![install]),
            containers: vec![container],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
        status: None,
    };
    apply_pod_overlay(&mut pod, tikv.overlay())?;
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_tikv;

    fn render(tikv: &TiKV, tls: bool) -> Pod {
        let inputs = PodInputs {
            tikv,
            tls,
            pd_url: "http://pd-pd.default.svc:2379",
            tools_image: "ghcr.io/tikv/tikv-operator:v9.9.9",
        };
        pod(&inputs).unwrap()
    }

    #[test]
    fn flags_labels_dns_and_probe() {
        let pod = render(&sample_tikv("tikv-abc123", "tikv"), false);
        let spec = pod.spec.as_ref().unwrap();
        let container = &spec.containers[0];
        assert_eq!(
            container.command.as_ref().unwrap(),
            &[
                "/tikv-server",
                "--pd=http://pd-pd.default.svc:2379",
                "--addr=0.0.0.0:20160",
                "--advertise-addr=tikv-tikv-abc123.tikv-tikv-peer.default.svc:20160",
                "--status-addr=0.0.0.0:20180",
                "--advertise-status-addr=tikv-tikv-abc123.tikv-tikv-peer.default.svc:20180",
                "--data-dir=/var/lib/tikv",
                "--config=/etc/tikv/config.toml",
                "--labels=host=$(NODE_NAME),zone=zone-a",
            ]
        );
        assert_eq!(container.env.as_ref().unwrap()[0].name, "NODE_NAME");
        assert_eq!(spec.hostname.as_deref(), Some("tikv-tikv-abc123"));
        assert_eq!(spec.subdomain.as_deref(), Some("tikv-tikv-peer"));
        assert_eq!(
            container.readiness_probe.as_ref().unwrap().tcp_socket.as_ref().unwrap().port,
            IntOrString::Int(20180)
        );
        assert_eq!(container.image.as_deref(), Some("pingcap/tikv:v8.5.0"));
    }

    /// The init container copies the operator binary into the emptyDir the TiKV
    /// container runs its preStop hook from, against PD and the store's advertised
    /// status address; the grace period leaves the hook room.
    #[test]
    fn the_pre_stop_hook_runs_the_copied_operator_binary() {
        let pod = render(&sample_tikv("tikv-abc123", "tikv"), false);
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.termination_grace_period_seconds, Some(65535));
        let volume = spec.volumes.as_ref().unwrap().iter().find(|v| v.name == PRESTOP_VOLUME).unwrap();
        assert!(volume.empty_dir.is_some());

        let [install] = spec.init_containers.as_deref().unwrap() else { panic!("one init container") };
        assert_eq!(install.name, PRESTOP_INIT_CONTAINER);
        assert_eq!(install.image.as_deref(), Some("ghcr.io/tikv/tikv-operator:v9.9.9"));
        assert_eq!(install.command.as_ref().unwrap(), &["/tikv-operator", "install", "/var/lib/tikv-operator"]);
        let mounts = |c: &Container| -> Vec<(String, String)> {
            c.volume_mounts.iter().flatten().map(|m| (m.name.clone(), m.mount_path.clone())).collect()
        };
        let prestop = (PRESTOP_VOLUME.to_string(), PRESTOP_DIR.to_string());
        assert_eq!(mounts(install), std::slice::from_ref(&prestop));
        let container = &spec.containers[0];
        assert!(mounts(container).contains(&prestop));
        assert!(container.resources.is_some());
        assert_eq!(install.resources, container.resources, "the pod stays Guaranteed");

        let hook = container.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap();
        assert_eq!(
            hook.exec.as_ref().unwrap().command.as_ref().unwrap(),
            &[
                "/var/lib/tikv-operator/tikv-operator",
                "tikv-prestop",
                "--pd=http://pd-pd.default.svc:2379",
                "--status-addr=tikv-tikv-abc123.tikv-tikv-peer.default.svc:20180",
            ]
        );
    }

    #[test]
    fn user_store_labels_join_the_topology_ones() {
        let mut tikv = sample_tikv("tikv-abc123", "tikv");
        tikv.spec.template.server.labels.insert("disk".into(), "ssd".into());
        tikv.spec.topology.get_or_insert_default().insert("kubernetes.io/hostname".into(), "node-7".into());
        let labels = store_labels(&tikv);
        assert_eq!(labels["disk"], "ssd");
        assert_eq!(labels["host"], "node-7");
        assert_eq!(labels["zone"], "zone-a");
    }

    #[test]
    fn tls_mounts_the_group_secret() {
        let pod = render(&sample_tikv("tikv-abc123", "tikv"), true);
        let volumes = pod.spec.unwrap().volumes.unwrap();
        let tls = volumes.iter().find(|v| v.name == "tikv-vol-tls").unwrap();
        assert_eq!(tls.secret.as_ref().unwrap().secret_name.as_deref(), Some("tikv-tikv-cluster-secret"));
    }
}
