//! The hook through which another simulator runs "processes" in pods.
//!
//! A [`ContainerRuntime`] is registered for an image prefix (`pingcap/pd`,
//! `pingcap/tikv`); the kubelet asks it to start every container whose image it claims,
//! with a [`ContainerContext`]: the pod, the container with its environment and
//! `$(VAR)` references resolved, the pod IP (127.1.0.0/16, bindable on this machine),
//! the node, the mounts (ConfigMap and Secret files, the claim behind each PVC mount),
//! cluster DNS, the clock, and an [`ExitReporter`] to say the process died.
//!
//! The returned [`ContainerProcess`] is asked whether it is ready (when the container
//! has a readiness probe, at the probe's period), is stopped gracefully (after the
//! preStop hook) when the pod is deleted, killed when the grace period runs out, and
//! told about changed ConfigMaps of its mounts (not those mounted with `subPath`,
//! which the real kubelet does not update either). Init containers are given to the
//! runtime of their image too, and must exit (0, for the pod to go on). Containers no
//! runtime claims "run" until stopped; init containers no runtime claims succeed at
//! once.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;
use sim_clock::SimClock;
use tokio::sync::mpsc;

use super::dns::Dns;
use super::objects::{CONFIGMAPS, PVCS, SECRETS, get, str_of};
use crate::store::Store;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Starts processes for the containers whose image it claims.
pub trait ContainerRuntime: Send + Sync {
    /// Starts the process. An `Err` is a container that fails to start (exit code 128,
    /// reason `StartError`), restarted with back-off per the pod's restartPolicy.
    fn start(&self, ctx: ContainerContext) -> BoxFuture<Result<Arc<dyn ContainerProcess>, String>>;
}

/// A running process, as its runtime exposes it to the kubelet.
pub trait ContainerProcess: Send + Sync {
    /// Readiness (consulted only when the container has a readiness probe, once its
    /// `initialDelaySeconds` passed, every `periodSeconds`).
    fn ready(&self) -> bool {
        true
    }

    /// Runs an `exec` or `httpGet` preStop handler (the `lifecycle.preStop` JSON); the
    /// kubelet waits for it, within the grace period (dropping the future when that
    /// runs out). `sleep` handlers and `exec` of `sleep N` are timed by the kubelet
    /// itself and not passed here. An `Err` (the command is missing, or exited non-zero;
    /// the request failed) is a failed hook: the kubelet records a `FailedPreStopHook`
    /// Warning and stops the container all the same.
    fn pre_stop(&self, _handler: &Value) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// SIGTERM: resolves once the process exited. The kubelet calls [`kill`](Self::kill)
    /// if that takes longer than `request.grace`.
    fn stop(&self, request: StopRequest) -> BoxFuture<ContainerExit>;

    /// SIGKILL.
    fn kill(&self) {}

    /// The files of the ConfigMaps/Secrets mounted without `subPath` changed.
    fn config_changed(&self, _mounts: Vec<Mount>) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

#[derive(Clone, Debug)]
pub struct StopRequest {
    /// What is left of the grace period after the preStop hook.
    pub grace: Duration,
    pub reason: StopReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The pod is being deleted.
    PodDeleted,
    /// The pod or its node is gone (force deletion, node removed, cluster shutdown).
    Killed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerExit {
    pub code: i32,
    pub message: String,
}

impl ContainerExit {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        ContainerExit { code, message: message.into() }
    }
}

/// Tells the kubelet that the process exited on its own (crash or completion).
#[derive(Clone, Debug)]
pub struct ExitReporter {
    pub(crate) tx: mpsc::UnboundedSender<super::kubelet::Msg>,
    pub(crate) uid: String,
    pub(crate) container: String,
    pub(crate) generation: u64,
}

impl ExitReporter {
    pub fn exited(&self, code: i32, message: impl Into<String>) {
        let _ = self.tx.send(super::kubelet::Msg::Exited {
            uid: self.uid.clone(),
            container: self.container.clone(),
            generation: self.generation,
            exit: ContainerExit::new(code, message),
        });
    }
}

/// What a started container gets.
#[derive(Clone)]
pub struct ContainerContext {
    pub namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    /// The pod as it was when the container started.
    pub pod: Arc<Pod>,
    pub container: Container,
    /// `command` and `args` with `$(VAR)` references expanded, as the kubelet does.
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// `env` and `envFrom` resolved (fieldRef, ConfigMap and Secret keys), in order.
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub pod_ip: Ipv4Addr,
    pub host_ip: Ipv4Addr,
    pub node: String,
    /// How often this container restarted before this start.
    pub restart_count: u32,
    pub exit: ExitReporter,
    pub dns: Dns,
    pub clock: SimClock,
}

impl std::fmt::Debug for ContainerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerContext")
            .field("pod", &format!("{}/{}", self.namespace, self.pod_name))
            .field("container", &self.container.name)
            .field("pod_ip", &self.pod_ip)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ContainerContext {
    /// The content of a file at an absolute path inside the container, if a ConfigMap,
    /// Secret or projected volume provides it.
    pub fn read_file(&self, path: &str) -> Option<String> {
        read_file(&self.mounts, path)
    }

    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The claim mounted at a path (or a parent of it).
    pub fn claim_at(&self, path: &str) -> Option<&ClaimRef> {
        self.mounts.iter().filter(|m| under(path, &m.mount_path)).find_map(|m| match &m.source {
            MountSource::Claim(c) => Some(c),
            _ => None,
        })
    }
}

fn under(path: &str, mount: &str) -> bool {
    let mount = mount.trim_end_matches('/');
    path == mount || path.strip_prefix(mount).is_some_and(|r| r.starts_with('/'))
}

pub(crate) fn read_file(mounts: &[Mount], path: &str) -> Option<String> {
    // Later mounts shadow earlier ones, and deeper ones shallower ones.
    let mut best: Option<(&Mount, usize)> = None;
    for m in mounts {
        if under(path, &m.mount_path) && best.is_none_or(|(_, l)| m.mount_path.len() >= l) {
            best = Some((m, m.mount_path.len()));
        }
    }
    let (m, _) = best?;
    let files = m.source.files()?;
    let rel = path[m.mount_path.trim_end_matches('/').len()..].trim_start_matches('/');
    match &m.sub_path {
        Some(sub) if rel.is_empty() => files.get(sub.as_str()).cloned(),
        Some(sub) => files.get(&format!("{}/{rel}", sub.trim_end_matches('/'))).cloned(),
        None => files.get(rel).cloned(),
    }
}

/// One volume mount of the container, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Mount {
    pub volume: String,
    pub mount_path: String,
    pub sub_path: Option<String>,
    pub read_only: bool,
    pub source: MountSource,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    /// The bound PersistentVolume.
    pub volume_name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum MountSource {
    /// Files by path relative to the volume root.
    ConfigMap {
        name: String,
        files: BTreeMap<String, String>,
    },
    Secret {
        name: String,
        files: BTreeMap<String, String>,
    },
    Projected {
        files: BTreeMap<String, String>,
    },
    Claim(ClaimRef),
    EmptyDir,
    Other,
}

impl MountSource {
    pub fn files(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            MountSource::ConfigMap { files, .. }
            | MountSource::Secret { files, .. }
            | MountSource::Projected { files } => Some(files),
            _ => None,
        }
    }
}

type Registration = (String, Arc<dyn ContainerRuntime>);

/// The registered runtimes, by image prefix; cheap to clone, shared with the kubelet.
#[derive(Clone, Default)]
pub struct RuntimeRegistry {
    inner: Arc<RwLock<Vec<Registration>>>,
}

impl RuntimeRegistry {
    /// Claims images starting with `image_prefix`, with or without a registry host
    /// (`pingcap/pd` matches `pingcap/pd:v8.5.0` and `docker.io/pingcap/pd:v8.5.0`).
    /// The longest matching prefix wins.
    pub fn register(&self, image_prefix: &str, runtime: Arc<dyn ContainerRuntime>) {
        let mut v = self.inner.write().unwrap_or_else(|p| p.into_inner());
        v.retain(|(p, _)| p != image_prefix);
        v.push((image_prefix.to_string(), runtime));
    }

    pub fn unregister(&self, image_prefix: &str) {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).retain(|(p, _)| p != image_prefix);
    }

    pub fn for_image(&self, image: &str) -> Option<Arc<dyn ContainerRuntime>> {
        let short = strip_registry(image);
        let v = self.inner.read().unwrap_or_else(|p| p.into_inner());
        v.iter()
            .filter(|(p, _)| image.starts_with(p.as_str()) || short.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, r)| r.clone())
    }
}

/// `registry.example:5000/pingcap/pd:v1` → `pingcap/pd:v1`; `docker.io/library/x` → `x`.
pub fn strip_registry(image: &str) -> &str {
    let rest = match image.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => rest,
        _ => image,
    };
    rest.strip_prefix("library/").unwrap_or(rest)
}

/// Why a container cannot be created yet (`CreateContainerConfigError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

fn decode_secret(v: &Value) -> String {
    let raw = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default()).unwrap_or_default();
    String::from_utf8_lossy(&raw).into_owned()
}

fn configmap_files(cm: &Value, items: &Value) -> BTreeMap<String, String> {
    let data = |k: &str| cm["data"][k].as_str().map(str::to_string);
    match items.as_array() {
        Some(items) if !items.is_empty() => {
            items.iter().filter_map(|i| Some((i["path"].as_str()?.to_string(), data(i["key"].as_str()?)?))).collect()
        }
        _ => cm["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().into()))
            .collect(),
    }
}

fn secret_files(secret: &Value, items: &Value) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> =
        secret["data"].as_object().into_iter().flatten().map(|(k, v)| (k.clone(), decode_secret(v))).collect();
    for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
        all.insert(k.clone(), v.as_str().unwrap_or_default().into());
    }
    match items.as_array() {
        Some(items) if !items.is_empty() => items
            .iter()
            .filter_map(|i| Some((i["path"].as_str()?.to_string(), all.get(i["key"].as_str()?)?.clone())))
            .collect(),
        _ => all,
    }
}

/// A volume's source, read from the store; `Err` names what is missing, worded as the
/// kubelet's `FailedMount` message.
pub(crate) fn resolve_volume(store: &Store, pod: &Value, volume: &Value) -> Result<MountSource, String> {
    let ns = str_of(pod, &["metadata", "namespace"]);
    let vname = str_of(volume, &["name"]);
    let failed = |what: String| format!("MountVolume.SetUp failed for volume \"{vname}\" : {what}");
    if let Some(cm) = volume.get("configMap") {
        let name = str_of(cm, &["name"]);
        return match get(store, CONFIGMAPS, Some(ns), name) {
            Some(obj) => Ok(MountSource::ConfigMap { name: name.into(), files: configmap_files(&obj, &cm["items"]) }),
            None if cm["optional"] == true => Ok(MountSource::ConfigMap { name: name.into(), files: BTreeMap::new() }),
            None => Err(failed(format!("configmap \"{name}\" not found"))),
        };
    }
    if let Some(s) = volume.get("secret") {
        let name = str_of(s, &["secretName"]);
        return match get(store, SECRETS, Some(ns), name) {
            Some(obj) => Ok(MountSource::Secret { name: name.into(), files: secret_files(&obj, &s["items"]) }),
            None if s["optional"] == true => Ok(MountSource::Secret { name: name.into(), files: BTreeMap::new() }),
            None => Err(failed(format!("secret \"{name}\" not found"))),
        };
    }
    if let Some(p) = volume.get("projected") {
        let mut files = BTreeMap::new();
        for src in p["sources"].as_array().into_iter().flatten() {
            if let Some(cm) = src.get("configMap") {
                let name = str_of(cm, &["name"]);
                match get(store, CONFIGMAPS, Some(ns), name) {
                    Some(obj) => files.extend(configmap_files(&obj, &cm["items"])),
                    None if cm["optional"] == true => {}
                    None => return Err(failed(format!("configmap \"{name}\" not found"))),
                }
            } else if let Some(s) = src.get("secret") {
                let name = str_of(s, &["name"]);
                match get(store, SECRETS, Some(ns), name) {
                    Some(obj) => files.extend(secret_files(&obj, &s["items"])),
                    None if s["optional"] == true => {}
                    None => return Err(failed(format!("secret \"{name}\" not found"))),
                }
            }
        }
        return Ok(MountSource::Projected { files });
    }
    let claim = volume["persistentVolumeClaim"]["claimName"]
        .as_str()
        .map(str::to_string)
        .or_else(|| volume.get("ephemeral").map(|_| format!("{}-{vname}", str_of(pod, &["metadata", "name"]))));
    if let Some(claim) = claim {
        let Some(pvc) = get(store, PVCS, Some(ns), &claim) else {
            return Err(format!(
                "Unable to attach or mount volumes: unmounted volumes=[{vname}]: error processing PVC {ns}/{claim}: PVC is not bound"
            ));
        };
        if pvc["status"]["phase"] != "Bound" {
            return Err(format!(
                "Unable to attach or mount volumes: unmounted volumes=[{vname}]: error processing PVC {ns}/{claim}: PVC is not bound"
            ));
        }
        return Ok(MountSource::Claim(ClaimRef {
            namespace: ns.into(),
            name: claim,
            uid: str_of(&pvc, &["metadata", "uid"]).into(),
            volume_name: str_of(&pvc, &["spec", "volumeName"]).into(),
        }));
    }
    if volume.get("emptyDir").is_some() {
        return Ok(MountSource::EmptyDir);
    }
    Ok(MountSource::Other)
}

/// The mounts of one container, from the already-resolved volumes.
pub(crate) fn container_mounts(container: &Value, volumes: &BTreeMap<String, MountSource>) -> Vec<Mount> {
    container["volumeMounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let volume = str_of(m, &["name"]).to_string();
            Mount {
                source: volumes.get(&volume).cloned().unwrap_or(MountSource::Other),
                volume,
                mount_path: str_of(m, &["mountPath"]).into(),
                sub_path: m["subPath"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
                read_only: m["readOnly"] == true,
            }
        })
        .collect()
}

/// `metadata.labels['app']`-style field paths of the downward API.
fn field_ref(pod: &Value, path: &str) -> String {
    if let Some(rest) = path.strip_prefix("metadata.labels['").and_then(|r| r.strip_suffix("']")) {
        return str_of(pod, &["metadata", "labels", rest]).into();
    }
    if let Some(rest) = path.strip_prefix("metadata.annotations['").and_then(|r| r.strip_suffix("']")) {
        return str_of(pod, &["metadata", "annotations", rest]).into();
    }
    let parts: Vec<&str> = path.split('.').collect();
    match path {
        "status.podIPs" => str_of(pod, &["status", "podIP"]).into(),
        _ => str_of(pod, &parts).into(),
    }
}

/// The container's environment, as the kubelet builds it (`envFrom` first, then `env`).
pub(crate) fn resolve_env(store: &Store, pod: &Value, container: &Value) -> Result<Vec<(String, String)>, ConfigError> {
    let ns = str_of(pod, &["metadata", "namespace"]);
    let mut out: Vec<(String, String)> = Vec::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = str_of(from, &["prefix"]);
        let (res, r, decode) = if let Some(r) = from.get("configMapRef") {
            (CONFIGMAPS, r, false)
        } else if let Some(r) = from.get("secretRef") {
            (SECRETS, r, true)
        } else {
            continue;
        };
        let name = str_of(r, &["name"]);
        match get(store, res, Some(ns), name) {
            Some(obj) => {
                for (k, v) in obj["data"].as_object().into_iter().flatten() {
                    let v = if decode { decode_secret(v) } else { v.as_str().unwrap_or_default().into() };
                    out.push((format!("{prefix}{k}"), v));
                }
            }
            None if r["optional"] == true => {}
            None => {
                let kind = if decode { "secret" } else { "configmap" };
                return Err(ConfigError(format!("{kind} \"{name}\" not found")));
            }
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = str_of(e, &["name"]).to_string();
        let from = &e["valueFrom"];
        let value = if let Some(v) = e["value"].as_str() {
            expand(v, &out)
        } else if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
            field_ref(pod, path)
        } else if let Some(r) = from.get("configMapKeyRef").or_else(|| from.get("secretKeyRef")) {
            let secret = from.get("secretKeyRef").is_some();
            let (res, kind) = if secret { (SECRETS, "secret") } else { (CONFIGMAPS, "configmap") };
            let obj_name = str_of(r, &["name"]);
            let key = str_of(r, &["key"]);
            match get(store, res, Some(ns), obj_name).and_then(|o| o["data"].get(key).cloned()) {
                Some(v) if secret => decode_secret(&v),
                Some(v) => v.as_str().unwrap_or_default().into(),
                None if r["optional"] == true => continue,
                None => {
                    return Err(ConfigError(format!("couldn't find key {key} in {kind} {ns}/{obj_name}")));
                }
            }
        } else {
            String::new()
        };
        out.push((name, value));
    }
    Ok(out)
}

/// `$(VAR)` expansion of command, args and env values; `$$` escapes a `$`.
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
            && let Some((_, v)) = env.iter().rev().find(|(k, _)| k == &body[..end])
        {
            out.push_str(v);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_and_library_are_stripped() {
        assert_eq!(strip_registry("docker.io/pingcap/pd:v8"), "pingcap/pd:v8");
        assert_eq!(strip_registry("localhost:5000/pingcap/tikv"), "pingcap/tikv");
        assert_eq!(strip_registry("pingcap/pd"), "pingcap/pd");
        assert_eq!(strip_registry("docker.io/library/busybox"), "busybox");
    }

    #[test]
    fn variable_references_expand() {
        let env = vec![("POD".to_string(), "pd-0".to_string())];
        assert_eq!(expand("--name=$(POD) $(NOPE) $$(POD)", &env), "--name=pd-0 $(NOPE) $(POD)");
    }

    #[test]
    fn files_are_read_through_mounts_and_sub_paths() {
        let files: BTreeMap<String, String> = [("pd.toml".to_string(), "x = 1".to_string())].into();
        let dir = Mount {
            volume: "config".into(),
            mount_path: "/etc/pd".into(),
            sub_path: None,
            read_only: true,
            source: MountSource::ConfigMap { name: "pd".into(), files: files.clone() },
        };
        let file = Mount { mount_path: "/etc/other/pd.toml".into(), sub_path: Some("pd.toml".into()), ..dir.clone() };
        let mounts = vec![dir, file];
        assert_eq!(read_file(&mounts, "/etc/pd/pd.toml").as_deref(), Some("x = 1"));
        assert_eq!(read_file(&mounts, "/etc/other/pd.toml").as_deref(), Some("x = 1"));
        assert_eq!(read_file(&mounts, "/etc/pd/missing"), None);
        assert_eq!(read_file(&mounts, "/etc/pdx/pd.toml"), None);
    }
}
