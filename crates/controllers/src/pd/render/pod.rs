//! The PD Pod: `/pd-server` with the member's name, URLs, data directory, config file
//! and membership flag; stable DNS through hostname/subdomain; a TCP readiness probe on
//! the client port (works with and without TLS); TLS Secret mounted when on; the
//! overlay merged last.

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tikv_operator_api::PD;
use tikv_operator_api::names::{self, COMPONENT_PD};

use super::{CONFIG_DIR, CONFIG_FILE, Membership, PeerUrls, advertise_client_url, scheme};
use crate::common::Instance;
use crate::common::render::{RenderError, apply_pod_overlay, child_meta, data_dir, image, pod_volumes, resources};

pub struct PodInputs<'a> {
    pub pd: &'a PD,
    pub tls: bool,
    pub membership: &'a Membership,
    pub peer: &'a PeerUrls,
}

pub fn pod(inputs: &PodInputs<'_>) -> Result<Pod, RenderError> {
    let pd = inputs.pd;
    let group = pd.group();
    if group.is_empty() {
        return Err(RenderError::NoGroup);
    }
    let name = pd.pod_name();
    let ports = &pd.spec.template.server.ports;
    let s = scheme(inputs.tls);
    let command = vec![
        "/pd-server".to_string(),
        format!("--name={name}"),
        format!("--data-dir={}", data_dir(pd)),
        format!("--client-urls={s}://0.0.0.0:{}", ports.client),
        format!("--advertise-client-urls={}", advertise_client_url(pd, inputs.tls)),
        format!("--peer-urls={}", inputs.peer.listen.join(",")),
        format!("--advertise-peer-urls={}", inputs.peer.advertise),
        format!("--config={CONFIG_DIR}/{CONFIG_FILE}"),
        inputs.membership.flag(),
    ];
    let certificates = inputs.tls || inputs.peer.needs_certificates();
    let tls_secret = certificates.then(|| names::cluster_tls_secret_name(&group, COMPONENT_PD));
    let (volumes, mounts) = pod_volumes(pd, &name, CONFIG_DIR, tls_secret);
    let container = Container {
        name: COMPONENT_PD.into(),
        image: Some(image(pd.image(), "pingcap/pd", pd.version())),
        command: Some(command),
        // The kubelet then reports the last log lines of a crash in lastState.terminated.message.
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ports: Some(
            [ContainerPort { name: Some("client".into()), container_port: ports.client, ..ContainerPort::default() }]
                .into_iter()
                .chain(inputs.peer.listen_ports().into_iter().zip(["peer", "peer-next"]).map(|(port, name)| {
                    ContainerPort { name: Some(name.into()), container_port: port, ..ContainerPort::default() }
                }))
                .collect(),
        ),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(ports.client), host: None }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(5),
            ..Probe::default()
        }),
        resources: resources(pd.resources()),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let meta = child_meta(pd, name.clone());
    let mut pod = Pod {
        metadata: meta,
        spec: Some(PodSpec {
            hostname: Some(name.clone()),
            subdomain: Some(pd.spec.subdomain.clone()),
            node_selector: pd.topology().cloned(),
            containers: vec![container],
            volumes: Some(volumes),
            ..PodSpec::default()
        }),
        status: None,
    };
    apply_pod_overlay(&mut pod, pd.overlay())?;
    Ok(pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sample_pd;
    use serde_json::json;

    fn render(pd: &PD, tls: bool) -> Pod {
        let membership = Membership::Join("http://pd-pd-x.pd-pd-peer.default.svc:2379".into());
        let peer = super::super::peer_urls(pd, tls, None);
        pod(&PodInputs { pd, tls, membership: &membership, peer: &peer }).unwrap()
    }

    fn command(pod: &Pod) -> Vec<String> {
        pod.spec.as_ref().unwrap().containers[0].command.clone().unwrap()
    }

    #[test]
    fn flags_urls_dns_and_probe() {
        let pod = render(&sample_pd("pd-abc123", "pd"), false);
        assert_eq!(pod.metadata.name.as_deref(), Some("pd-pd-abc123"));
        assert_eq!(
            command(&pod),
            [
                "/pd-server",
                "--name=pd-pd-abc123",
                "--data-dir=/var/lib/pd",
                "--client-urls=http://0.0.0.0:2379",
                "--advertise-client-urls=http://pd-pd-abc123.pd-pd-peer.default.svc:2379",
                "--peer-urls=http://0.0.0.0:2380",
                "--advertise-peer-urls=http://pd-pd-abc123.pd-pd-peer.default.svc:2380",
                "--config=/etc/pd/config.toml",
                "--join=http://pd-pd-x.pd-pd-peer.default.svc:2379",
            ]
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pd-pd-abc123"));
        assert_eq!(spec.subdomain.as_deref(), Some("pd-pd-peer"));
        assert_eq!(spec.node_selector.as_ref().unwrap()["topology.kubernetes.io/zone"], "zone-a");
        let container = &spec.containers[0];
        assert_eq!(container.image.as_deref(), Some("pingcap/pd:v8.5.0"));
        assert!(container.readiness_probe.as_ref().unwrap().tcp_socket.is_some());
        assert_eq!(container.resources.as_ref().unwrap().limits, container.resources.as_ref().unwrap().requests);
        let volumes: Vec<&str> = spec.volumes.as_ref().unwrap().iter().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["tikv-vol-data", "tikv-vol-config"]);
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.controller), ("PD", Some(true)));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()[names::LABEL_INSTANCE], "pd-abc123");
    }

    #[test]
    fn tls_switches_to_https_and_mounts_the_secret() {
        let pod = render(&sample_pd("pd-abc123", "pd"), true);
        let command = command(&pod);
        assert!(command.contains(&"--client-urls=https://0.0.0.0:2379".to_string()));
        assert!(
            command.contains(&"--advertise-peer-urls=https://pd-pd-abc123.pd-pd-peer.default.svc:2380".to_string())
        );
        let spec = pod.spec.unwrap();
        let tls = spec.volumes.unwrap().into_iter().find(|v| v.name == "tikv-vol-tls").unwrap();
        assert_eq!(tls.secret.unwrap().secret_name.as_deref(), Some("pd-pd-cluster-secret"));
    }

    #[test]
    fn while_pd_dials_a_member_at_its_old_tls_url_it_keeps_that_listener_and_its_certificates() {
        let pd = sample_pd("pd-abc123", "pd");
        let membership = Membership::Join("http://pd-pd-x.pd-pd-peer.default.svc:2379".into());
        let stored = "https://pd-pd-abc123.pd-pd-peer.default.svc:2380";
        let peer = super::super::peer_urls(&pd, false, Some(stored));
        let pod = pod(&PodInputs { pd: &pd, tls: false, membership: &membership, peer: &peer }).unwrap();
        let command = command(&pod);
        assert!(command.contains(&"--client-urls=http://0.0.0.0:2379".to_string()), "clients are plain already");
        assert!(command.contains(&"--peer-urls=https://0.0.0.0:2380,http://0.0.0.0:2381".to_string()), "{command:?}");
        assert!(command.contains(&"--advertise-peer-urls=http://pd-pd-abc123.pd-pd-peer.default.svc:2381".to_string()));
        let spec = pod.spec.unwrap();
        let ports: Vec<(String, i32)> = spec.containers[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| (p.name.unwrap(), p.container_port))
            .collect();
        assert_eq!(ports, [("client".into(), 2379), ("peer".into(), 2380), ("peer-next".into(), 2381)]);
        let tls = spec.volumes.unwrap().into_iter().find(|v| v.name == "tikv-vol-tls");
        assert!(tls.is_some(), "the old TLS listener serves the mounted certificates");
    }

    #[test]
    fn the_overlay_is_merged_last() {
        let mut pd = sample_pd("pd-abc123", "pd");
        pd.spec.template.overlay = Some(
            serde_json::from_value(json!({"pod": {"spec": {
                "tolerations": [{"key": "dedicated", "operator": "Exists"}],
                "containers": [{"name": "pd", "env": [{"name": "X", "value": "1"}]}]
            }}}))
            .unwrap(),
        );
        let pod = render(&pd, false);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.tolerations.unwrap()[0].key.as_deref(), Some("dedicated"));
        let env = spec.containers[0].env.as_ref().unwrap();
        assert!(env.iter().any(|e| e.name == "X"));
        assert_eq!(spec.containers[0].command.as_ref().unwrap()[0], "/pd-server");
    }
}
