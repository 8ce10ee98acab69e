//! The JSON names of the k8s-pb message fields, for the kinds [`decode_kind`] accepts.
//!
//! Each entry maps a field of the k8s-pb struct to its Kubernetes JSON name and how Go's
//! `encoding/json` writes it: `o` for a non-pointer scalar tagged `omitempty` (dropped when
//! zero), `k` for everything kept when present (pointers, messages, lists, maps, required
//! scalars); `inline` for a struct embedded with `json:",inline"`; `reject` for a field
//! with no JSON counterpart in Kubernetes 1.33. The table was derived mechanically from
//! the k8s-pb 0.9 structs and the Kubernetes Go API types (field names, pointer-ness,
//! `omitempty`); the compiler checks it covers every field of every struct.

use k8s_pb::api::apps::v1 as appsv1;
use k8s_pb::api::coordination::v1 as coordinationv1;
use k8s_pb::api::core::v1 as corev1;
use k8s_pb::api::events::v1 as eventsv1;
use k8s_pb::api::policy::v1 as policyv1;
use k8s_pb::api::policy::v1beta1 as policyv1beta1;
use k8s_pb::api::storage::v1 as storagev1;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::{Map, Value};

use super::{Mode, ToJson, convert, inline, put, reject};
use crate::error::ApiResult;

/// The object in `raw`, for the kinds protobuf bodies are accepted for; `None` for others.
pub(super) fn decode_kind(api_version: &str, kind: &str, raw: &[u8]) -> ApiResult<Option<Value>> {
    let value = match (api_version, kind) {
        ("v1", "Namespace") => convert::<corev1::Namespace>(raw)?,
        ("v1", "Pod") => convert::<corev1::Pod>(raw)?,
        ("v1", "Service") => convert::<corev1::Service>(raw)?,
        ("v1", "ConfigMap") => convert::<corev1::ConfigMap>(raw)?,
        ("v1", "Secret") => convert::<corev1::Secret>(raw)?,
        ("v1", "PersistentVolumeClaim") => convert::<corev1::PersistentVolumeClaim>(raw)?,
        ("v1", "PersistentVolume") => convert::<corev1::PersistentVolume>(raw)?,
        ("v1", "Node") => convert::<corev1::Node>(raw)?,
        ("v1", "Event") => convert::<corev1::Event>(raw)?,
        ("v1", "Binding") => convert::<corev1::Binding>(raw)?,
        ("apps/v1", "ControllerRevision") => convert::<appsv1::ControllerRevision>(raw)?,
        ("policy/v1", "PodDisruptionBudget") => convert::<policyv1::PodDisruptionBudget>(raw)?,
        ("policy/v1", "Eviction") => convert::<policyv1::Eviction>(raw)?,
        ("policy/v1beta1", "Eviction") => convert::<policyv1beta1::Eviction>(raw)?,
        ("coordination.k8s.io/v1", "Lease") => convert::<coordinationv1::Lease>(raw)?,
        ("events.k8s.io/v1", "Event") => convert::<eventsv1::Event>(raw)?,
        ("storage.k8s.io/v1", "StorageClass") => convert::<storagev1::StorageClass>(raw)?,
        // client-go encodes DeleteOptions under the group version it deletes from.
        (v, "DeleteOptions") if v == "v1" || v.ends_with("/v1") => convert::<metav1::DeleteOptions>(raw)?,
        _ => return Ok(None),
    };
    Ok(Some(value))
}

to_json_impls! {
    corev1::Namespace { metadata: ["metadata", k], spec: ["spec", k], status: ["status", k] }
    corev1::Pod { metadata: ["metadata", k], spec: ["spec", k], status: ["status", k] }
    corev1::Service { metadata: ["metadata", k], spec: ["spec", k], status: ["status", k] }
    corev1::ConfigMap { metadata: ["metadata", k], immutable: ["immutable", k], data: ["data", k],
        binary_data: ["binaryData", k] }
    corev1::Secret { metadata: ["metadata", k], immutable: ["immutable", k], data: ["data", k],
        string_data: ["stringData", k], r#type: ["type", o] }
    corev1::PersistentVolumeClaim { metadata: ["metadata", k], spec: ["spec", k], status: ["status", k] }
    corev1::PersistentVolume { metadata: ["metadata", k], spec: ["spec", k], status: ["status", k] }
    corev1::Node { metadata: ["metadata", k], spec: ["spec", k], status: ["status", k] }
    corev1::Event { metadata: ["metadata", k], involved_object: ["involvedObject", k], reason: ["reason", o],
        message: ["message", o], source: ["source", k], first_timestamp: ["firstTimestamp", k],
        last_timestamp: ["lastTimestamp", k], count: ["count", o], r#type: ["type", o],
        event_time: ["eventTime", k], series: ["series", k], action: ["action", o], related: ["related", k],
        reporting_component: ["reportingComponent", k], reporting_instance: ["reportingInstance", k] }
    corev1::Binding { metadata: ["metadata", k], target: ["target", k] }
    appsv1::ControllerRevision { metadata: ["metadata", k], data: ["data", k], revision: ["revision", k] }
    policyv1::PodDisruptionBudget { metadata: ["metadata", k], spec: ["spec", k], status: ["status", k] }
    policyv1::Eviction { metadata: ["metadata", k], delete_options: ["deleteOptions", k] }
    policyv1beta1::Eviction { metadata: ["metadata", k], delete_options: ["deleteOptions", k] }
    coordinationv1::Lease { metadata: ["metadata", k], spec: ["spec", k] }
    eventsv1::Event { metadata: ["metadata", k], event_time: ["eventTime", k], series: ["series", k],
        reporting_controller: ["reportingController", o], reporting_instance: ["reportingInstance", o],
        action: ["action", o], reason: ["reason", o], regarding: ["regarding", o], related: ["related", k],
        note: ["note", o], r#type: ["type", o], deprecated_source: ["deprecatedSource", o],
        deprecated_first_timestamp: ["deprecatedFirstTimestamp", k],
        deprecated_last_timestamp: ["deprecatedLastTimestamp", k], deprecated_count: ["deprecatedCount", o] }
    storagev1::StorageClass { metadata: ["metadata", k], provisioner: ["provisioner", k],
        parameters: ["parameters", k], reclaim_policy: ["reclaimPolicy", k], mount_options: ["mountOptions", k],
        allow_volume_expansion: ["allowVolumeExpansion", k], volume_binding_mode: ["volumeBindingMode", k],
        allowed_topologies: ["allowedTopologies", k] }
    metav1::DeleteOptions { grace_period_seconds: ["gracePeriodSeconds", k], preconditions: ["preconditions", k],
        orphan_dependents: ["orphanDependents", k], propagation_policy: ["propagationPolicy", k],
        dry_run: ["dryRun", k],
        ignore_store_read_error_with_cluster_breaking_potential: ["ignoreStoreReadErrorWithClusterBreakingPotential", k] }
    metav1::ObjectMeta { name: ["name", o], generate_name: ["generateName", o], namespace: ["namespace", o],
        self_link: ["selfLink", o], uid: ["uid", o], resource_version: ["resourceVersion", o],
        generation: ["generation", o], creation_timestamp: ["creationTimestamp", k],
        deletion_timestamp: ["deletionTimestamp", k],
        deletion_grace_period_seconds: ["deletionGracePeriodSeconds", k], labels: ["labels", k],
        annotations: ["annotations", k], owner_references: ["ownerReferences", k], finalizers: ["finalizers", k],
        managed_fields: ["managedFields", k] }
    corev1::NamespaceSpec { finalizers: ["finalizers", k] }
    corev1::NamespaceStatus { phase: ["phase", o], conditions: ["conditions", k] }
    corev1::PodSpec { volumes: ["volumes", k], init_containers: ["initContainers", k],
        containers: ["containers", k], ephemeral_containers: ["ephemeralContainers", k],
        restart_policy: ["restartPolicy", o],
        termination_grace_period_seconds: ["terminationGracePeriodSeconds", k],
        active_deadline_seconds: ["activeDeadlineSeconds", k], dns_policy: ["dnsPolicy", o],
        node_selector: ["nodeSelector", k], service_account_name: ["serviceAccountName", o],
        service_account: ["serviceAccount", o],
        automount_service_account_token: ["automountServiceAccountToken", k], node_name: ["nodeName", o],
        host_network: ["hostNetwork", o], host_pid: ["hostPID", o], host_ipc: ["hostIPC", o],
        share_process_namespace: ["shareProcessNamespace", k], security_context: ["securityContext", k],
        image_pull_secrets: ["imagePullSecrets", k], hostname: ["hostname", o], subdomain: ["subdomain", o],
        affinity: ["affinity", k], scheduler_name: ["schedulerName", o], tolerations: ["tolerations", k],
        host_aliases: ["hostAliases", k], priority_class_name: ["priorityClassName", o], priority: ["priority", k],
        dns_config: ["dnsConfig", k], readiness_gates: ["readinessGates", k],
        runtime_class_name: ["runtimeClassName", k], enable_service_links: ["enableServiceLinks", k],
        preemption_policy: ["preemptionPolicy", k], overhead: ["overhead", o],
        topology_spread_constraints: ["topologySpreadConstraints", k],
        set_hostname_as_fqdn: ["setHostnameAsFQDN", k], os: ["os", k], host_users: ["hostUsers", k],
        scheduling_gates: ["schedulingGates", k], resource_claims: ["resourceClaims", k],
        resources: ["resources", k], hostname_override: ["hostnameOverride", k], workload_ref: [reject] }
    corev1::PodStatus { observed_generation: ["observedGeneration", o], phase: ["phase", o],
        conditions: ["conditions", k], message: ["message", o], reason: ["reason", o],
        nominated_node_name: ["nominatedNodeName", o], host_ip: ["hostIP", o], host_ips: ["hostIPs", k],
        pod_ip: ["podIP", o], pod_ips: ["podIPs", k], start_time: ["startTime", k],
        init_container_statuses: ["initContainerStatuses", k], container_statuses: ["containerStatuses", k],
        qos_class: ["qosClass", o], ephemeral_container_statuses: ["ephemeralContainerStatuses", k],
        resize: ["resize", o], resource_claim_statuses: ["resourceClaimStatuses", k],
        extended_resource_claim_status: ["extendedResourceClaimStatus", k],
        allocated_resources: ["allocatedResources", o], resources: ["resources", k] }
    corev1::ServiceSpec { ports: ["ports", k], selector: ["selector", k], cluster_ip: ["clusterIP", o],
        cluster_ips: ["clusterIPs", k], r#type: ["type", o], external_ips: ["externalIPs", k],
        session_affinity: ["sessionAffinity", o], load_balancer_ip: ["loadBalancerIP", o],
        load_balancer_source_ranges: ["loadBalancerSourceRanges", k], external_name: ["externalName", o],
        external_traffic_policy: ["externalTrafficPolicy", o], health_check_node_port: ["healthCheckNodePort", o],
        publish_not_ready_addresses: ["publishNotReadyAddresses", o],
        session_affinity_config: ["sessionAffinityConfig", k], ip_families: ["ipFamilies", k],
        ip_family_policy: ["ipFamilyPolicy", k],
        allocate_load_balancer_node_ports: ["allocateLoadBalancerNodePorts", k],
        load_balancer_class: ["loadBalancerClass", k], internal_traffic_policy: ["internalTrafficPolicy", k],
        traffic_distribution: ["trafficDistribution", k] }
    corev1::ServiceStatus { load_balancer: ["loadBalancer", k], conditions: ["conditions", k] }
    corev1::PersistentVolumeClaimSpec { access_modes: ["accessModes", k], selector: ["selector", k],
        resources: ["resources", k], volume_name: ["volumeName", o], storage_class_name: ["storageClassName", k],
        volume_mode: ["volumeMode", k], data_source: ["dataSource", k], data_source_ref: ["dataSourceRef", k],
        volume_attributes_class_name: ["volumeAttributesClassName", k] }
    corev1::PersistentVolumeClaimStatus { phase: ["phase", o], access_modes: ["accessModes", k],
        capacity: ["capacity", o], conditions: ["conditions", k], allocated_resources: ["allocatedResources", o],
        allocated_resource_statuses: ["allocatedResourceStatuses", k],
        current_volume_attributes_class_name: ["currentVolumeAttributesClassName", k],
        modify_volume_status: ["modifyVolumeStatus", k] }
    corev1::PersistentVolumeSpec { capacity: ["capacity", o], persistent_volume_source: [inline],
        access_modes: ["accessModes", k], claim_ref: ["claimRef", k],
        persistent_volume_reclaim_policy: ["persistentVolumeReclaimPolicy", o],
        storage_class_name: ["storageClassName", o], mount_options: ["mountOptions", k],
        volume_mode: ["volumeMode", k], node_affinity: ["nodeAffinity", k],
        volume_attributes_class_name: ["volumeAttributesClassName", k] }
    corev1::PersistentVolumeStatus { phase: ["phase", o], message: ["message", o], reason: ["reason", o],
        last_phase_transition_time: ["lastPhaseTransitionTime", k] }
    corev1::NodeSpec { pod_cidr: ["podCIDR", o], pod_cid_rs: ["podCIDRs", k], provider_id: ["providerID", o],
        unschedulable: ["unschedulable", o], taints: ["taints", k], config_source: ["configSource", k],
        external_id: ["externalID", o] }
    corev1::NodeStatus { capacity: ["capacity", o], allocatable: ["allocatable", o], phase: ["phase", o],
        conditions: ["conditions", k], addresses: ["addresses", k], daemon_endpoints: ["daemonEndpoints", k],
        node_info: ["nodeInfo", k], images: ["images", k], volumes_in_use: ["volumesInUse", k],
        volumes_attached: ["volumesAttached", k], config: ["config", k], runtime_handlers: ["runtimeHandlers", k],
        features: ["features", k], declared_features: ["declaredFeatures", k] }
    corev1::ObjectReference { kind: ["kind", o], namespace: ["namespace", o], name: ["name", o], uid: ["uid", o],
        api_version: ["apiVersion", o], resource_version: ["resourceVersion", o], field_path: ["fieldPath", o] }
    corev1::EventSource { component: ["component", o], host: ["host", o] }
    corev1::EventSeries { count: ["count", o], last_observed_time: ["lastObservedTime", k] }
    policyv1::PodDisruptionBudgetSpec { min_available: ["minAvailable", k], selector: ["selector", k],
        max_unavailable: ["maxUnavailable", k], unhealthy_pod_eviction_policy: ["unhealthyPodEvictionPolicy", k] }
    policyv1::PodDisruptionBudgetStatus { observed_generation: ["observedGeneration", o],
        disrupted_pods: ["disruptedPods", k], disruptions_allowed: ["disruptionsAllowed", k],
        current_healthy: ["currentHealthy", k], desired_healthy: ["desiredHealthy", k],
        expected_pods: ["expectedPods", k], conditions: ["conditions", k] }
    coordinationv1::LeaseSpec { holder_identity: ["holderIdentity", k],
        lease_duration_seconds: ["leaseDurationSeconds", k], acquire_time: ["acquireTime", k],
        renew_time: ["renewTime", k], lease_transitions: ["leaseTransitions", k], strategy: ["strategy", k],
        preferred_holder: ["preferredHolder", k] }
    eventsv1::EventSeries { count: ["count", k], last_observed_time: ["lastObservedTime", k] }
    corev1::TopologySelectorTerm { match_label_expressions: ["matchLabelExpressions", k] }
    metav1::Preconditions { uid: ["uid", k], resource_version: ["resourceVersion", k] }
    metav1::OwnerReference { api_version: ["apiVersion", k], kind: ["kind", k], name: ["name", k], uid: ["uid", k],
        controller: ["controller", k], block_owner_deletion: ["blockOwnerDeletion", k] }
    metav1::ManagedFieldsEntry { manager: ["manager", o], operation: ["operation", o],
        api_version: ["apiVersion", o], time: ["time", k], fields_type: ["fieldsType", o],
        fields_v1: ["fieldsV1", k], subresource: ["subresource", o] }
    corev1::NamespaceCondition { r#type: ["type", k], status: ["status", k],
        last_transition_time: ["lastTransitionTime", k], reason: ["reason", o], message: ["message", o] }
    corev1::Volume { name: ["name", k], volume_source: [inline] }
    corev1::Container { name: ["name", k], image: ["image", o], command: ["command", k], args: ["args", k],
        working_dir: ["workingDir", o], ports: ["ports", k], env_from: ["envFrom", k], env: ["env", k],
        resources: ["resources", k], resize_policy: ["resizePolicy", k], restart_policy: ["restartPolicy", k],
        restart_policy_rules: ["restartPolicyRules", k], volume_mounts: ["volumeMounts", k],
        volume_devices: ["volumeDevices", k], liveness_probe: ["livenessProbe", k],
        readiness_probe: ["readinessProbe", k], startup_probe: ["startupProbe", k], lifecycle: ["lifecycle", k],
        termination_message_path: ["terminationMessagePath", o],
        termination_message_policy: ["terminationMessagePolicy", o], image_pull_policy: ["imagePullPolicy", o],
        security_context: ["securityContext", k], stdin: ["stdin", o], stdin_once: ["stdinOnce", o],
        tty: ["tty", o] }
    corev1::EphemeralContainer { ephemeral_container_common: [inline],
        target_container_name: ["targetContainerName", o] }
    corev1::PodSecurityContext { se_linux_options: ["seLinuxOptions", k], windows_options: ["windowsOptions", k],
        run_as_user: ["runAsUser", k], run_as_group: ["runAsGroup", k], run_as_non_root: ["runAsNonRoot", k],
        supplemental_groups: ["supplementalGroups", k], supplemental_groups_policy: ["supplementalGroupsPolicy", k],
        fs_group: ["fsGroup", k], sysctls: ["sysctls", k], fs_group_change_policy: ["fsGroupChangePolicy", k],
        seccomp_profile: ["seccompProfile", k], app_armor_profile: ["appArmorProfile", k],
        se_linux_change_policy: ["seLinuxChangePolicy", k] }
    corev1::LocalObjectReference { name: ["name", o] }
    corev1::Affinity { node_affinity: ["nodeAffinity", k], pod_affinity: ["podAffinity", k],
        pod_anti_affinity: ["podAntiAffinity", k] }
    corev1::Toleration { key: ["key", o], operator: ["operator", o], value: ["value", o], effect: ["effect", o],
        toleration_seconds: ["tolerationSeconds", k] }
    corev1::HostAlias { ip: ["ip", k], hostnames: ["hostnames", k] }
    corev1::PodDnsConfig { nameservers: ["nameservers", k], searches: ["searches", k], options: ["options", k] }
    corev1::PodReadinessGate { condition_type: ["conditionType", k] }
    corev1::TopologySpreadConstraint { max_skew: ["maxSkew", k], topology_key: ["topologyKey", k],
        when_unsatisfiable: ["whenUnsatisfiable", k], label_selector: ["labelSelector", k],
        min_domains: ["minDomains", k], node_affinity_policy: ["nodeAffinityPolicy", k],
        node_taints_policy: ["nodeTaintsPolicy", k], match_label_keys: ["matchLabelKeys", k] }
    corev1::PodOs { name: ["name", k] }
    corev1::PodSchedulingGate { name: ["name", k] }
    corev1::PodResourceClaim { name: ["name", k], resource_claim_name: ["resourceClaimName", k],
        resource_claim_template_name: ["resourceClaimTemplateName", k] }
    corev1::ResourceRequirements { limits: ["limits", o], requests: ["requests", o], claims: ["claims", k] }
    corev1::PodCondition { r#type: ["type", k], observed_generation: ["observedGeneration", o],
        status: ["status", k], last_probe_time: ["lastProbeTime", k],
        last_transition_time: ["lastTransitionTime", k], reason: ["reason", o], message: ["message", o] }
    corev1::HostIp { ip: ["ip", k] }
    corev1::PodIp { ip: ["ip", k] }
    corev1::ContainerStatus { name: ["name", k], state: ["state", k], last_state: ["lastState", k],
        ready: ["ready", k], restart_count: ["restartCount", k], image: ["image", k], image_id: ["imageID", k],
        container_id: ["containerID", o], started: ["started", k], allocated_resources: ["allocatedResources", o],
        resources: ["resources", k], volume_mounts: ["volumeMounts", k], user: ["user", k],
        allocated_resources_status: ["allocatedResourcesStatus", k], stop_signal: ["stopSignal", k] }
    corev1::PodResourceClaimStatus { name: ["name", k], resource_claim_name: ["resourceClaimName", k] }
    corev1::PodExtendedResourceClaimStatus { request_mappings: ["requestMappings", k],
        resource_claim_name: ["resourceClaimName", k] }
    corev1::ServicePort { name: ["name", o], protocol: ["protocol", o], app_protocol: ["appProtocol", k],
        port: ["port", k], target_port: ["targetPort", k], node_port: ["nodePort", o] }
    corev1::SessionAffinityConfig { client_ip: ["clientIP", k] }
    corev1::LoadBalancerStatus { ingress: ["ingress", k] }
    metav1::Condition { r#type: ["type", k], status: ["status", k], observed_generation: ["observedGeneration", o],
        last_transition_time: ["lastTransitionTime", k], reason: ["reason", k], message: ["message", k] }
    metav1::LabelSelector { match_labels: ["matchLabels", k], match_expressions: ["matchExpressions", k] }
    corev1::VolumeResourceRequirements { limits: ["limits", o], requests: ["requests", o] }
    corev1::TypedLocalObjectReference { api_group: ["apiGroup", k], kind: ["kind", k], name: ["name", k] }
    corev1::TypedObjectReference { api_group: ["apiGroup", k], kind: ["kind", k], name: ["name", k],
        namespace: ["namespace", k] }
    corev1::PersistentVolumeClaimCondition { r#type: ["type", k], status: ["status", k],
        last_probe_time: ["lastProbeTime", k], last_transition_time: ["lastTransitionTime", k],
        reason: ["reason", o], message: ["message", o] }
    corev1::ModifyVolumeStatus { target_volume_attributes_class_name: ["targetVolumeAttributesClassName", o],
        status: ["status", k] }
    corev1::PersistentVolumeSource { gce_persistent_disk: ["gcePersistentDisk", k],
        aws_elastic_block_store: ["awsElasticBlockStore", k], host_path: ["hostPath", k],
        glusterfs: ["glusterfs", k], nfs: ["nfs", k], rbd: ["rbd", k], iscsi: ["iscsi", k], cinder: ["cinder", k],
        cephfs: ["cephfs", k], fc: ["fc", k], flocker: ["flocker", k], flex_volume: ["flexVolume", k],
        azure_file: ["azureFile", k], vsphere_volume: ["vsphereVolume", k], quobyte: ["quobyte", k],
        azure_disk: ["azureDisk", k], photon_persistent_disk: ["photonPersistentDisk", k],
        portworx_volume: ["portworxVolume", k], scale_io: ["scaleIO", k], local: ["local", k],
        storageos: ["storageos", k], csi: ["csi", k] }
    corev1::VolumeNodeAffinity { required: ["required", k] }
    corev1::Taint { key: ["key", k], value: ["value", o], effect: ["effect", k], time_added: ["timeAdded", k] }
    corev1::NodeConfigSource { config_map: ["configMap", k] }
    corev1::NodeCondition { r#type: ["type", k], status: ["status", k],
        last_heartbeat_time: ["lastHeartbeatTime", k], last_transition_time: ["lastTransitionTime", k],
        reason: ["reason", o], message: ["message", o] }
    corev1::NodeAddress { r#type: ["type", k], address: ["address", k] }
    corev1::NodeDaemonEndpoints { kubelet_endpoint: ["kubeletEndpoint", k] }
    corev1::NodeSystemInfo { machine_id: ["machineID", k], system_uuid: ["systemUUID", k], boot_id: ["bootID", k],
        kernel_version: ["kernelVersion", k], os_image: ["osImage", k],
        container_runtime_version: ["containerRuntimeVersion", k], kubelet_version: ["kubeletVersion", k],
        kube_proxy_version: ["kubeProxyVersion", k], operating_system: ["operatingSystem", k],
        architecture: ["architecture", k], swap: ["swap", k] }
    corev1::ContainerImage { names: ["names", k], size_bytes: ["sizeBytes", o] }
    corev1::AttachedVolume { name: ["name", k], device_path: ["devicePath", k] }
    corev1::NodeConfigStatus { assigned: ["assigned", k], active: ["active", k],
        last_known_good: ["lastKnownGood", k], error: ["error", o] }
    corev1::NodeRuntimeHandler { name: ["name", k], features: ["features", k] }
    corev1::NodeFeatures { supplemental_groups_policy: ["supplementalGroupsPolicy", k] }
    corev1::TopologySelectorLabelRequirement { key: ["key", k], values: ["values", k] }
    corev1::VolumeSource { host_path: ["hostPath", k], empty_dir: ["emptyDir", k],
        gce_persistent_disk: ["gcePersistentDisk", k], aws_elastic_block_store: ["awsElasticBlockStore", k],
        git_repo: ["gitRepo", k], secret: ["secret", k], nfs: ["nfs", k], iscsi: ["iscsi", k],
        glusterfs: ["glusterfs", k], persistent_volume_claim: ["persistentVolumeClaim", k], rbd: ["rbd", k],
        flex_volume: ["flexVolume", k], cinder: ["cinder", k], cephfs: ["cephfs", k], flocker: ["flocker", k],
        downward_api: ["downwardAPI", k], fc: ["fc", k], azure_file: ["azureFile", k], config_map: ["configMap", k],
        vsphere_volume: ["vsphereVolume", k], quobyte: ["quobyte", k], azure_disk: ["azureDisk", k],
        photon_persistent_disk: ["photonPersistentDisk", k], projected: ["projected", k],
        portworx_volume: ["portworxVolume", k], scale_io: ["scaleIO", k], storageos: ["storageos", k],
        csi: ["csi", k], ephemeral: ["ephemeral", k], image: ["image", k] }
    corev1::ContainerPort { name: ["name", o], host_port: ["hostPort", o], container_port: ["containerPort", k],
        protocol: ["protocol", o], host_ip: ["hostIP", o] }
    corev1::EnvFromSource { prefix: ["prefix", o], config_map_ref: ["configMapRef", k],
        secret_ref: ["secretRef", k] }
    corev1::EnvVar { name: ["name", k], value: ["value", o], value_from: ["valueFrom", k] }
    corev1::ContainerResizePolicy { resource_name: ["resourceName", k], restart_policy: ["restartPolicy", k] }
    corev1::ContainerRestartRule { action: ["action", o], exit_codes: ["exitCodes", k] }
    corev1::VolumeMount { name: ["name", k], read_only: ["readOnly", o],
        recursive_read_only: ["recursiveReadOnly", k], mount_path: ["mountPath", k], sub_path: ["subPath", o],
        mount_propagation: ["mountPropagation", k], sub_path_expr: ["subPathExpr", o] }
    corev1::VolumeDevice { name: ["name", k], device_path: ["devicePath", k] }
    corev1::Probe { handler: [inline], initial_delay_seconds: ["initialDelaySeconds", o],
        timeout_seconds: ["timeoutSeconds", o], period_seconds: ["periodSeconds", o],
        success_threshold: ["successThreshold", o], failure_threshold: ["failureThreshold", o],
        termination_grace_period_seconds: ["terminationGracePeriodSeconds", k] }
    corev1::Lifecycle { post_start: ["postStart", k], pre_stop: ["preStop", k], stop_signal: ["stopSignal", k] }
    corev1::SecurityContext { capabilities: ["capabilities", k], privileged: ["privileged", k],
        se_linux_options: ["seLinuxOptions", k], windows_options: ["windowsOptions", k],
        run_as_user: ["runAsUser", k], run_as_group: ["runAsGroup", k], run_as_non_root: ["runAsNonRoot", k],
        read_only_root_filesystem: ["readOnlyRootFilesystem", k],
        allow_privilege_escalation: ["allowPrivilegeEscalation", k], proc_mount: ["procMount", k],
        seccomp_profile: ["seccompProfile", k], app_armor_profile: ["appArmorProfile", k] }
    corev1::EphemeralContainerCommon { name: ["name", k], image: ["image", o], command: ["command", k],
        args: ["args", k], working_dir: ["workingDir", o], ports: ["ports", k], env_from: ["envFrom", k],
        env: ["env", k], resources: ["resources", k], resize_policy: ["resizePolicy", k],
        restart_policy: ["restartPolicy", k], restart_policy_rules: ["restartPolicyRules", k],
        volume_mounts: ["volumeMounts", k], volume_devices: ["volumeDevices", k],
        liveness_probe: ["livenessProbe", k], readiness_probe: ["readinessProbe", k],
        startup_probe: ["startupProbe", k], lifecycle: ["lifecycle", k],
        termination_message_path: ["terminationMessagePath", o],
        termination_message_policy: ["terminationMessagePolicy", o], image_pull_policy: ["imagePullPolicy", o],
        security_context: ["securityContext", k], stdin: ["stdin", o], stdin_once: ["stdinOnce", o],
        tty: ["tty", o] }
    corev1::SeLinuxOptions { user: ["user", o], role: ["role", o], r#type: ["type", o], level: ["level", o] }
    corev1::WindowsSecurityContextOptions { gmsa_credential_spec_name: ["gmsaCredentialSpecName", k],
        gmsa_credential_spec: ["gmsaCredentialSpec", k], run_as_user_name: ["runAsUserName", k],
        host_process: ["hostProcess", k] }
    corev1::Sysctl { name: ["name", k], value: ["value", k] }
    corev1::SeccompProfile { r#type: ["type", k], localhost_profile: ["localhostProfile", k] }
    corev1::AppArmorProfile { r#type: ["type", k], localhost_profile: ["localhostProfile", k] }
    corev1::NodeAffinity {
        required_during_scheduling_ignored_during_execution: ["requiredDuringSchedulingIgnoredDuringExecution", k],
        preferred_during_scheduling_ignored_during_execution: ["preferredDuringSchedulingIgnoredDuringExecution", k] }
    corev1::PodAffinity {
        required_during_scheduling_ignored_during_execution: ["requiredDuringSchedulingIgnoredDuringExecution", k],
        preferred_during_scheduling_ignored_during_execution: ["preferredDuringSchedulingIgnoredDuringExecution", k] }
    corev1::PodAntiAffinity {
        required_during_scheduling_ignored_during_execution: ["requiredDuringSchedulingIgnoredDuringExecution", k],
        preferred_during_scheduling_ignored_during_execution: ["preferredDuringSchedulingIgnoredDuringExecution", k] }
    corev1::PodDnsConfigOption { name: ["name", o], value: ["value", k] }
    corev1::ResourceClaim { name: ["name", k], request: ["request", o] }
    corev1::ContainerState { waiting: ["waiting", k], running: ["running", k], terminated: ["terminated", k] }
    corev1::VolumeMountStatus { name: ["name", k], mount_path: ["mountPath", k], read_only: ["readOnly", o],
        recursive_read_only: ["recursiveReadOnly", k] }
    corev1::ContainerUser { linux: ["linux", k] }
    corev1::ResourceStatus { name: ["name", k], resources: ["resources", k] }
    corev1::ContainerExtendedResourceRequest { container_name: ["containerName", k],
        resource_name: ["resourceName", k], request_name: ["requestName", k] }
    corev1::ClientIpConfig { timeout_seconds: ["timeoutSeconds", k] }
    corev1::LoadBalancerIngress { ip: ["ip", o], hostname: ["hostname", o], ip_mode: ["ipMode", k],
        ports: ["ports", k] }
    metav1::LabelSelectorRequirement { key: ["key", k], operator: ["operator", k], values: ["values", k] }
    corev1::GcePersistentDiskVolumeSource { pd_name: ["pdName", k], fs_type: ["fsType", o],
        partition: ["partition", o], read_only: ["readOnly", o] }
    corev1::AwsElasticBlockStoreVolumeSource { volume_id: ["volumeID", k], fs_type: ["fsType", o],
        partition: ["partition", o], read_only: ["readOnly", o] }
    corev1::HostPathVolumeSource { path: ["path", k], r#type: ["type", k] }
    corev1::GlusterfsPersistentVolumeSource { endpoints: ["endpoints", k], path: ["path", k],
        read_only: ["readOnly", o], endpoints_namespace: ["endpointsNamespace", k] }
    corev1::NfsVolumeSource { server: ["server", k], path: ["path", k], read_only: ["readOnly", o] }
    corev1::RbdPersistentVolumeSource { monitors: ["monitors", k], image: ["image", k], fs_type: ["fsType", o],
        pool: ["pool", o], user: ["user", o], keyring: ["keyring", o], secret_ref: ["secretRef", k],
        read_only: ["readOnly", o] }
    corev1::IscsiPersistentVolumeSource { target_portal: ["targetPortal", k], iqn: ["iqn", k], lun: ["lun", k],
        iscsi_interface: ["iscsiInterface", o], fs_type: ["fsType", o], read_only: ["readOnly", o],
        portals: ["portals", k], chap_auth_discovery: ["chapAuthDiscovery", o],
        chap_auth_session: ["chapAuthSession", o], secret_ref: ["secretRef", k],
        initiator_name: ["initiatorName", k] }
    corev1::CinderPersistentVolumeSource { volume_id: ["volumeID", k], fs_type: ["fsType", o],
        read_only: ["readOnly", o], secret_ref: ["secretRef", k] }
    corev1::CephFsPersistentVolumeSource { monitors: ["monitors", k], path: ["path", o], user: ["user", o],
        secret_file: ["secretFile", o], secret_ref: ["secretRef", k], read_only: ["readOnly", o] }
    corev1::FcVolumeSource { target_ww_ns: ["targetWWNs", k], lun: ["lun", k], fs_type: ["fsType", o],
        read_only: ["readOnly", o], wwids: ["wwids", k] }
    corev1::FlockerVolumeSource { dataset_name: ["datasetName", o], dataset_uuid: ["datasetUUID", o] }
    corev1::FlexPersistentVolumeSource { driver: ["driver", k], fs_type: ["fsType", o],
        secret_ref: ["secretRef", k], read_only: ["readOnly", o], options: ["options", k] }
    corev1::AzureFilePersistentVolumeSource { secret_name: ["secretName", k], share_name: ["shareName", k],
        read_only: ["readOnly", o], secret_namespace: ["secretNamespace", k] }
    corev1::VsphereVirtualDiskVolumeSource { volume_path: ["volumePath", k], fs_type: ["fsType", o],
        storage_policy_name: ["storagePolicyName", o], storage_policy_id: ["storagePolicyID", o] }
    corev1::QuobyteVolumeSource { registry: ["registry", k], volume: ["volume", k], read_only: ["readOnly", o],
        user: ["user", o], group: ["group", o], tenant: ["tenant", o] }
    corev1::AzureDiskVolumeSource { disk_name: ["diskName", k], disk_uri: ["diskURI", k],
        caching_mode: ["cachingMode", k], fs_type: ["fsType", k], read_only: ["readOnly", k], kind: ["kind", k] }
    corev1::PhotonPersistentDiskVolumeSource { pd_id: ["pdID", k], fs_type: ["fsType", o] }
    corev1::PortworxVolumeSource { volume_id: ["volumeID", k], fs_type: ["fsType", o], read_only: ["readOnly", o] }
    corev1::ScaleIoPersistentVolumeSource { gateway: ["gateway", k], system: ["system", k],
        secret_ref: ["secretRef", k], ssl_enabled: ["sslEnabled", o], protection_domain: ["protectionDomain", o],
        storage_pool: ["storagePool", o], storage_mode: ["storageMode", o], volume_name: ["volumeName", o],
        fs_type: ["fsType", o], read_only: ["readOnly", o] }
    corev1::LocalVolumeSource { path: ["path", k], fs_type: ["fsType", k] }
    corev1::StorageOsPersistentVolumeSource { volume_name: ["volumeName", o],
        volume_namespace: ["volumeNamespace", o], fs_type: ["fsType", o], read_only: ["readOnly", o],
        secret_ref: ["secretRef", k] }
    corev1::CSIPersistentVolumeSource { driver: ["driver", k], volume_handle: ["volumeHandle", k],
        read_only: ["readOnly", o], fs_type: ["fsType", o], volume_attributes: ["volumeAttributes", k],
        controller_publish_secret_ref: ["controllerPublishSecretRef", k],
        node_stage_secret_ref: ["nodeStageSecretRef", k], node_publish_secret_ref: ["nodePublishSecretRef", k],
        controller_expand_secret_ref: ["controllerExpandSecretRef", k],
        node_expand_secret_ref: ["nodeExpandSecretRef", k] }
    corev1::NodeSelector { node_selector_terms: ["nodeSelectorTerms", k] }
    corev1::ConfigMapNodeConfigSource { namespace: ["namespace", k], name: ["name", k], uid: ["uid", o],
        resource_version: ["resourceVersion", o], kubelet_config_key: ["kubeletConfigKey", k] }
    corev1::DaemonEndpoint { port: ["Port", k] }
    corev1::NodeSwapStatus { capacity: ["capacity", k] }
    corev1::NodeRuntimeHandlerFeatures { recursive_read_only_mounts: ["recursiveReadOnlyMounts", k],
        user_namespaces: ["userNamespaces", k] }
    corev1::EmptyDirVolumeSource { medium: ["medium", o], size_limit: ["sizeLimit", k] }
    corev1::GitRepoVolumeSource { repository: ["repository", k], revision: ["revision", o],
        directory: ["directory", o] }
    corev1::SecretVolumeSource { secret_name: ["secretName", o], items: ["items", k],
        default_mode: ["defaultMode", k], optional: ["optional", k] }
    corev1::IscsiVolumeSource { target_portal: ["targetPortal", k], iqn: ["iqn", k], lun: ["lun", k],
        iscsi_interface: ["iscsiInterface", o], fs_type: ["fsType", o], read_only: ["readOnly", o],
        portals: ["portals", k], chap_auth_discovery: ["chapAuthDiscovery", o],
        chap_auth_session: ["chapAuthSession", o], secret_ref: ["secretRef", k],
        initiator_name: ["initiatorName", k] }
    corev1::GlusterfsVolumeSource { endpoints: ["endpoints", k], path: ["path", k], read_only: ["readOnly", o] }
    corev1::PersistentVolumeClaimVolumeSource { claim_name: ["claimName", k], read_only: ["readOnly", o] }
    corev1::RbdVolumeSource { monitors: ["monitors", k], image: ["image", k], fs_type: ["fsType", o],
        pool: ["pool", o], user: ["user", o], keyring: ["keyring", o], secret_ref: ["secretRef", k],
        read_only: ["readOnly", o] }
    corev1::FlexVolumeSource { driver: ["driver", k], fs_type: ["fsType", o], secret_ref: ["secretRef", k],
        read_only: ["readOnly", o], options: ["options", k] }
    corev1::CinderVolumeSource { volume_id: ["volumeID", k], fs_type: ["fsType", o], read_only: ["readOnly", o],
        secret_ref: ["secretRef", k] }
    corev1::CephFsVolumeSource { monitors: ["monitors", k], path: ["path", o], user: ["user", o],
        secret_file: ["secretFile", o], secret_ref: ["secretRef", k], read_only: ["readOnly", o] }
    corev1::DownwardAPIVolumeSource { items: ["items", k], default_mode: ["defaultMode", k] }
    corev1::AzureFileVolumeSource { secret_name: ["secretName", k], share_name: ["shareName", k],
        read_only: ["readOnly", o] }
    corev1::ConfigMapVolumeSource { local_object_reference: [inline], items: ["items", k],
        default_mode: ["defaultMode", k], optional: ["optional", k] }
    corev1::ProjectedVolumeSource { sources: ["sources", k], default_mode: ["defaultMode", k] }
    corev1::ScaleIoVolumeSource { gateway: ["gateway", k], system: ["system", k], secret_ref: ["secretRef", k],
        ssl_enabled: ["sslEnabled", o], protection_domain: ["protectionDomain", o],
        storage_pool: ["storagePool", o], storage_mode: ["storageMode", o], volume_name: ["volumeName", o],
        fs_type: ["fsType", o], read_only: ["readOnly", o] }
    corev1::StorageOsVolumeSource { volume_name: ["volumeName", o], volume_namespace: ["volumeNamespace", o],
        fs_type: ["fsType", o], read_only: ["readOnly", o], secret_ref: ["secretRef", k] }
    corev1::CSIVolumeSource { driver: ["driver", k], read_only: ["readOnly", k], fs_type: ["fsType", k],
        volume_attributes: ["volumeAttributes", k], node_publish_secret_ref: ["nodePublishSecretRef", k] }
    corev1::EphemeralVolumeSource { volume_claim_template: ["volumeClaimTemplate", k] }
    corev1::ImageVolumeSource { reference: ["reference", o], pull_policy: ["pullPolicy", o] }
    corev1::ConfigMapEnvSource { local_object_reference: [inline], optional: ["optional", k] }
    corev1::SecretEnvSource { local_object_reference: [inline], optional: ["optional", k] }
    corev1::EnvVarSource { field_ref: ["fieldRef", k], resource_field_ref: ["resourceFieldRef", k],
        config_map_key_ref: ["configMapKeyRef", k], secret_key_ref: ["secretKeyRef", k],
        file_key_ref: ["fileKeyRef", k] }
    corev1::ContainerRestartRuleOnExitCodes { operator: ["operator", o], values: ["values", k] }
    corev1::ProbeHandler { exec: ["exec", k], http_get: ["httpGet", k], tcp_socket: ["tcpSocket", k],
        grpc: ["grpc", k] }
    corev1::LifecycleHandler { exec: ["exec", k], http_get: ["httpGet", k], tcp_socket: ["tcpSocket", k],
        sleep: ["sleep", k] }
    corev1::Capabilities { add: ["add", k], drop: ["drop", k] }
    corev1::PreferredSchedulingTerm { weight: ["weight", k], preference: ["preference", k] }
    corev1::PodAffinityTerm { label_selector: ["labelSelector", k], namespaces: ["namespaces", k],
        topology_key: ["topologyKey", k], namespace_selector: ["namespaceSelector", k],
        match_label_keys: ["matchLabelKeys", k], mismatch_label_keys: ["mismatchLabelKeys", k] }
    corev1::WeightedPodAffinityTerm { weight: ["weight", k], pod_affinity_term: ["podAffinityTerm", k] }
    corev1::ContainerStateWaiting { reason: ["reason", o], message: ["message", o] }
    corev1::ContainerStateRunning { started_at: ["startedAt", k] }
    corev1::ContainerStateTerminated { exit_code: ["exitCode", k], signal: ["signal", o], reason: ["reason", o],
        message: ["message", o], started_at: ["startedAt", k], finished_at: ["finishedAt", k],
        container_id: ["containerID", o] }
    corev1::LinuxContainerUser { uid: ["uid", k], gid: ["gid", k], supplemental_groups: ["supplementalGroups", k] }
    corev1::ResourceHealth { resource_id: ["resourceID", k], health: ["health", o] }
    corev1::PortStatus { port: ["port", k], protocol: ["protocol", k], error: ["error", k] }
    corev1::SecretReference { name: ["name", o], namespace: ["namespace", o] }
    corev1::NodeSelectorTerm { match_expressions: ["matchExpressions", k], match_fields: ["matchFields", k] }
    corev1::KeyToPath { key: ["key", k], path: ["path", k], mode: ["mode", k] }
    corev1::DownwardAPIVolumeFile { path: ["path", k], field_ref: ["fieldRef", k],
        resource_field_ref: ["resourceFieldRef", k], mode: ["mode", k] }
    corev1::VolumeProjection { secret: ["secret", k], downward_api: ["downwardAPI", k],
        config_map: ["configMap", k], service_account_token: ["serviceAccountToken", k],
        cluster_trust_bundle: ["clusterTrustBundle", k], pod_certificate: ["podCertificate", k] }
    corev1::PersistentVolumeClaimTemplate { metadata: ["metadata", k], spec: ["spec", k] }
    corev1::ObjectFieldSelector { api_version: ["apiVersion", o], field_path: ["fieldPath", k] }
    corev1::ResourceFieldSelector { container_name: ["containerName", o], resource: ["resource", k],
        divisor: ["divisor", k] }
    corev1::ConfigMapKeySelector { local_object_reference: [inline], key: ["key", k], optional: ["optional", k] }
    corev1::SecretKeySelector { local_object_reference: [inline], key: ["key", k], optional: ["optional", k] }
    corev1::FileKeySelector { volume_name: ["volumeName", k], path: ["path", k], key: ["key", k],
        optional: ["optional", k] }
    corev1::ExecAction { command: ["command", k] }
    corev1::HttpGetAction { path: ["path", o], port: ["port", k], host: ["host", o], scheme: ["scheme", o],
        http_headers: ["httpHeaders", k] }
    corev1::TcpSocketAction { port: ["port", k], host: ["host", o] }
    corev1::GrpcAction { port: ["port", k], service: ["service", k] }
    corev1::SleepAction { seconds: ["seconds", k] }
    corev1::NodeSelectorRequirement { key: ["key", k], operator: ["operator", k], values: ["values", k] }
    corev1::SecretProjection { local_object_reference: [inline], items: ["items", k], optional: ["optional", k] }
    corev1::DownwardAPIProjection { items: ["items", k] }
    corev1::ConfigMapProjection { local_object_reference: [inline], items: ["items", k], optional: ["optional", k] }
    corev1::ServiceAccountTokenProjection { audience: ["audience", o], expiration_seconds: ["expirationSeconds", k],
        path: ["path", k] }
    corev1::ClusterTrustBundleProjection { name: ["name", k], signer_name: ["signerName", k],
        label_selector: ["labelSelector", k], optional: ["optional", k], path: ["path", k] }
    corev1::PodCertificateProjection { signer_name: ["signerName", o], key_type: ["keyType", o],
        max_expiration_seconds: ["maxExpirationSeconds", k], credential_bundle_path: ["credentialBundlePath", o],
        key_path: ["keyPath", o], certificate_chain_path: ["certificateChainPath", o],
        user_annotations: ["userAnnotations", k] }
    corev1::HttpHeader { name: ["name", k], value: ["value", k] }
}
