//! Storage: StorageClasses, the PV controller (`persistentvolume-controller`: binding,
//! Released volumes), a CSI driver's external-provisioner and external-resizer, the
//! kubelet's node expansion, and the `kubernetes.io/pvc-protection` finalizer.
//!
//! Provisioning is for classes whose provisioner is [`PROVISIONER`]; Immediate claims
//! get a volume in the zone with the fewest volumes, WaitForFirstConsumer claims one in
//! the zone of the node the scheduler selected. Expansion follows CSI online expansion:
//! `Resizing` with `allocatedResourceStatuses: ControllerResizeInProgress`, then
//! `FileSystemResizePending` with `NodeResizePending` (PV capacity grown), then
//! `status.capacity` once a running pod uses the claim.
//!
//! VolumeAttributesClasses (the external-resizer's modify controller): a volume is
//! provisioned with the class its claim names (`ProvisioningFailed` while the class is
//! missing or the driver refuses it) and its claim reports it in
//! `status.currentVolumeAttributesClassName` once bound. A bound claim that names
//! another class is `modifyVolumeStatus: Pending` while that class does not exist, then
//! `InProgress` (condition `ModifyingVolume`) until the driver's `ControllerModifyVolume`
//! answers: the PV and `currentVolumeAttributesClassName` take the class, or the
//! driver's refusal makes it `Infeasible` (conditions `ModifyingVolume` and
//! `ModifyVolumeError` with its words), not retried until the claim names another
//! class; naming the current class again ends it. The simulated driver accepts the
//! parameters [`VAC_PARAMETERS`], positive integers.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};
use sim_clock::SimInstant;
use tokio::sync::watch;

use super::events::{EventType, Recorder, Source};
use super::objects::{
    NODES, PODS, PVCS, PVS, STORAGE_CLASSES, VOLUME_ATTRIBUTES_CLASSES, ZONE, get, is_terminal, list, now_time,
    pod_claims, quantity, str_of,
};
use super::{Timings, Wake, earliest};
use crate::error::ApiResult;
use crate::patch::PatchType;
use crate::store::{Change, ChangeKind, DeleteOptions, Store};

/// The CSI driver name of the simulated provisioner.
pub const PROVISIONER: &str = "csi.kube-sim.io";
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
pub const RESIZE_REFUSED: &str =
    "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize";
/// The VolumeAttributesClass parameters the simulated driver can set on a volume.
pub const VAC_PARAMETERS: &[&str] = &["iops", "throughput"];
const FS_RESIZE_PENDING: &str = "Waiting for user to (re-)start a pod to finish file system resize of volume on node.";

const PV_CONTROLLER: &str = "persistentvolume-controller";
const EXTERNAL_PROVISIONER: &str = "external-provisioner";
const EXTERNAL_RESIZER: &str = "external-resizer";
const PROTECTION: &str = "pvc-protection-controller";

/// Creates `standard` (default, WaitForFirstConsumer) and `standard-immediate`, both
/// expandable, unless classes of those names exist.
pub fn ensure_storage_classes(store: &Store) -> ApiResult<()> {
    let client = store.client("kube-sim/addon-manager");
    for (name, mode, default) in
        [("standard", "WaitForFirstConsumer", true), ("standard-immediate", "Immediate", false)]
    {
        if super::objects::get(store, STORAGE_CLASSES, None, name).is_some() {
            continue;
        }
        let mut class = json!({
            "metadata": {"name": name},
            "provisioner": PROVISIONER,
            "reclaimPolicy": "Delete",
            "volumeBindingMode": mode,
            "allowVolumeExpansion": true,
        });
        if default {
            class["metadata"]["annotations"] = json!({DEFAULT_CLASS_ANNOTATION: "true"});
        }
        client.create(&STORAGE_CLASSES.r(), None, class)?;
    }
    Ok(())
}

fn key(o: &Value) -> (String, String) {
    (str_of(o, &["metadata", "namespace"]).to_string(), str_of(o, &["metadata", "name"]).to_string())
}

fn storage(v: &Value) -> f64 {
    quantity(&v["storage"])
}

/// How often every claim and volume is synced whatever changed (the PV controller's
/// `--pvclaimbinder-sync-period`): a write that failed meanwhile is made again.
const RESYNC: std::time::Duration = std::time::Duration::from_secs(15);

struct Volumes {
    store: Store,
    /// The volumes as of the last pass.
    volumes: VolumeIndex,
    /// Each namespace's next deadline (provisioning, expansion, modification).
    due: HashMap<String, SimInstant>,
    /// When every claim and volume is synced next.
    resync: Option<SimInstant>,
    recorder: Recorder,
    timings: Timings,
    /// Claim uid to when its volume is created.
    provisioning: HashMap<String, SimInstant>,
    /// Claim uid to when the controller side of its expansion completes.
    resizing: HashMap<String, SimInstant>,
    /// Claim uid to when the node side of its expansion completes.
    node_resizing: HashMap<String, SimInstant>,
    /// Claim uid to the class its volume is being modified to, and when the driver answers.
    modifying: HashMap<String, (String, SimInstant)>,
    /// Events recorded once per claim uid, reason and detail.
    said: HashSet<(String, String, String)>,
}

struct World {
    pvcs: Vec<Arc<Value>>,
    /// Every volume, kept from pass to pass.
    volumes: VolumeIndex,
    classes: BTreeMap<String, Arc<Value>>,
    attribute_classes: BTreeMap<String, Arc<Value>>,
    nodes: Vec<Arc<Value>>,
    pods: Vec<Arc<Value>>,
    /// (namespace, claim name) to the positions in `pods` of the pods using the claim,
    /// in list order: made on the first look of the pass (most passes look at none),
    /// not by scanning every pod for every claim deleted or growing.
    users: OnceCell<HashMap<(String, String), Vec<usize>>>,
    /// The uids of the claims loaded: a volume in scope looks for its claim among them.
    claim_uids: HashSet<String>,
}

/// Every volume by name, and the volumes naming each claim: kept between passes and
/// brought up to date with the volumes that changed (re-read from the store), or read
/// whole when changes were missed. Reading and indexing every volume on every pass was
/// most of this controller's work at a few hundred volumes; so, at 800, were the scans
/// of every volume (for each unbound claim, and on each pass for those in its scope)
/// the other indexes replace.
#[derive(Default)]
struct VolumeIndex {
    pvs: BTreeMap<String, Arc<Value>>,
    /// Claim uid (`spec.claimRef.uid`) to the names of the volumes that name it: every
    /// unbound claim looks for its volume on every pass.
    by_claim: HashMap<String, BTreeSet<String>>,
    /// The names of the volumes without a claimRef, the only ones an unbound claim can
    /// bind statically.
    unclaimed: BTreeSet<String>,
    /// `spec.claimRef.namespace` (empty for none) to the names of the volumes claimed
    /// from it: a pass syncs the volumes claimed from the namespaces in its scope.
    by_namespace: HashMap<String, BTreeSet<String>>,
    /// The zone a volume was provisioned in (see [`provisioned_zone`]) to how many
    /// volumes were: a claim with no node selected is provisioned in the emptiest zone.
    per_zone: HashMap<String, usize>,
}

impl VolumeIndex {
    fn read(store: &Store) -> Self {
        let mut index = VolumeIndex::default();
        for pv in list(store, PVS, None) {
            let name = str_of(&pv, &["metadata", "name"]).to_string();
            index.put(name, Some(pv));
        }
        index
    }

    /// Re-reads the volumes named.
    fn refresh<'a>(&mut self, store: &Store, names: impl IntoIterator<Item = &'a String>) {
        for name in names {
            self.put(name.clone(), get(store, PVS, None, name));
        }
    }

    fn put(&mut self, name: String, pv: Option<Arc<Value>>) {
        if let Some(old) = self.pvs.remove(&name) {
            unindex(&mut self.by_claim, str_of(&old, &["spec", "claimRef", "uid"]), &name);
            unindex(&mut self.by_namespace, str_of(&old, &["spec", "claimRef", "namespace"]), &name);
            if old["spec"]["claimRef"].is_null() {
                self.unclaimed.remove(&name);
            }
            if let Some(zone) = provisioned_zone(&old)
                && let Some(count) = self.per_zone.get_mut(zone)
            {
                *count -= 1;
                if *count == 0 {
                    self.per_zone.remove(zone);
                }
            }
        }
        if let Some(pv) = pv {
            let claim = str_of(&pv, &["spec", "claimRef", "uid"]).to_string();
            self.by_claim.entry(claim).or_default().insert(name.clone());
            let ns = str_of(&pv, &["spec", "claimRef", "namespace"]).to_string();
            self.by_namespace.entry(ns).or_default().insert(name.clone());
            if pv["spec"]["claimRef"].is_null() {
                self.unclaimed.insert(name.clone());
            }
            if let Some(zone) = provisioned_zone(&pv) {
                *self.per_zone.entry(zone.to_string()).or_default() += 1;
            }
            self.pvs.insert(name, pv);
        }
    }

    /// The first volume (by name) whose claimRef names the claim `uid`.
    fn of_claim(&self, uid: &str) -> Option<&Arc<Value>> {
        self.by_claim.get(uid).and_then(|names| names.first()).and_then(|name| self.pvs.get(name))
    }

    /// The volumes without a claimRef, by name.
    fn unclaimed(&self) -> impl Iterator<Item = &Arc<Value>> {
        self.unclaimed.iter().filter_map(|name| self.pvs.get(name))
    }

    /// How many volumes were provisioned in `zone`.
    fn in_zone(&self, zone: &str) -> usize {
        self.per_zone.get(zone).copied().unwrap_or(0)
    }

    /// The volumes a pass with `scope` syncs, by name: those named in its volumes and
    /// those claimed from its namespaces (every volume when it is all).
    fn in_scope(&self, scope: &Scope) -> Vec<&Arc<Value>> {
        if scope.all {
            return self.pvs.values().collect();
        }
        let mut names: BTreeSet<&str> = scope.volumes.iter().map(String::as_str).collect();
        for ns in &scope.namespaces {
            names.extend(self.by_namespace.get(ns).into_iter().flatten().map(String::as_str));
        }
        names.into_iter().filter_map(|name| self.pvs.get(name)).collect()
    }
}

/// Removes `name` from the names under `key`, and the key once it has none.
fn unindex(index: &mut HashMap<String, BTreeSet<String>>, key: &str, name: &str) {
    if let Some(names) = index.get_mut(key) {
        names.remove(name);
        if names.is_empty() {
            index.remove(key);
        }
    }
}

/// The zone a volume's node affinity pins it to as the provisioner writes it (the
/// first value of the first expression of the first term).
fn provisioned_zone(pv: &Value) -> Option<&str> {
    pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0].as_str()
}

impl World {
    fn class_name(&self, pvc: &Value) -> Option<String> {
        match pvc["spec"]["storageClassName"].as_str() {
            Some("") => None,
            Some(n) => Some(n.to_string()),
            None => self
                .classes
                .iter()
                .find(|(_, c)| c["metadata"]["annotations"][DEFAULT_CLASS_ANNOTATION] == "true")
                .map(|(n, _)| n.clone()),
        }
    }

    /// The pods in scope whose volumes use the claim, in list order.
    fn users<'a>(&'a self, pvc: &Value) -> impl Iterator<Item = &'a Value> + use<'a> {
        let users = self.users.get_or_init(|| index_users(&self.pods));
        users.get(&key(pvc)).into_iter().flatten().filter_map(|&i| self.pods.get(i)).map(|p| &**p)
    }

    fn zones(&self) -> Vec<String> {
        let mut z: Vec<String> =
            self.nodes.iter().filter_map(|n| n["metadata"]["labels"][ZONE].as_str().map(str::to_string)).collect();
        z.sort();
        z.dedup();
        z
    }
}

/// (namespace, claim name) to the positions of the pods using the claim, each pod once.
fn index_users(pods: &[Arc<Value>]) -> HashMap<(String, String), Vec<usize>> {
    let mut users: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for (i, pod) in pods.iter().enumerate() {
        let ns = str_of(pod, &["metadata", "namespace"]);
        for (_, claim) in pod_claims(pod) {
            let using = users.entry((ns.to_string(), claim)).or_default();
            if using.last() != Some(&i) {
                using.push(i);
            }
        }
    }
    users
}

impl Volumes {
    /// Every volume (the index kept, brought up to date), class and node; the claims
    /// and pods of the namespaces in `scope`.
    fn load(&mut self, scope: &Scope) -> World {
        let by_name =
            |v: Vec<Arc<Value>>| v.into_iter().map(|o| (str_of(&o, &["metadata", "name"]).to_string(), o)).collect();
        let mut volumes = std::mem::take(&mut self.volumes);
        if scope.all {
            volumes = VolumeIndex::read(&self.store);
        } else {
            volumes.refresh(&self.store, &scope.volumes);
        }
        let in_scope = |kind| match scope.all {
            true => list(&self.store, kind, None),
            false => scope.namespaces.iter().flat_map(|ns| list(&self.store, kind, Some(ns))).collect(),
        };
        let pvcs = in_scope(PVCS);
        let claim_uids = pvcs.iter().map(|p| str_of(p, &["metadata", "uid"]).to_string()).collect();
        World {
            pvcs,
            volumes,
            classes: by_name(list(&self.store, STORAGE_CLASSES, None)),
            attribute_classes: by_name(list(&self.store, VOLUME_ATTRIBUTES_CLASSES, None)),
            nodes: list(&self.store, NODES, None),
            pods: in_scope(PODS),
            users: OnceCell::new(),
            claim_uids,
        }
    }

    fn once(&mut self, source: &Source, obj: &Value, ty: EventType, reason: &str, message: &str) {
        let k = (str_of(obj, &["metadata", "uid"]).to_string(), reason.to_string(), message.to_string());
        if self.said.insert(k) {
            self.recorder.record(source, obj, ty, reason, message);
        }
    }

    /// Syncs the claims of the namespaces where a claim or pod changed or a deadline
    /// came, and the volumes that changed or are claimed from those namespaces; every
    /// claim and volume when `changes` is `None` (at start, or changes were missed), a
    /// class or node changed, or at the periodic resync. Returns when to look again.
    fn pass(&mut self, changes: Option<Vec<Arc<Change>>>) -> Option<SimInstant> {
        let now = self.store.clock().now();
        let resync = self.resync.is_none_or(|at| now >= at);
        let scope = changes.filter(|_| !resync).and_then(|changes| Scope::of(&changes));
        let scope = match scope {
            Some(mut scope) => {
                scope.namespaces.extend(self.due.iter().filter(|(_, due)| **due <= now).map(|(ns, _)| ns.clone()));
                self.due.retain(|ns, _| !scope.namespaces.contains(ns));
                scope
            }
            None => {
                self.due.clear();
                self.resync = Some(now + RESYNC);
                Scope::everything()
            }
        };
        // A volume in scope is claimed from a namespace in scope (or from none), so the
        // claims loaded say whether its claim lives.
        let world = self.load(&scope);
        if scope.all {
            let live = &world.claim_uids;
            self.provisioning.retain(|u, _| live.contains(u));
            self.resizing.retain(|u, _| live.contains(u));
            self.node_resizing.retain(|u, _| live.contains(u));
            self.modifying.retain(|u, _| live.contains(u));
            let pv_uids: HashSet<&str> =
                world.volumes.pvs.values().map(|pv| str_of(pv, &["metadata", "uid"])).collect();
            self.said.retain(|(u, _, _)| live.contains(u) || pv_uids.contains(u.as_str()));
        }
        // The claims loaded are those in scope.
        for pvc in &world.pvcs {
            if let Some(at) = self.claim(&world, pvc, now) {
                let ns = str_of(pvc, &["metadata", "namespace"]).to_string();
                let due = self.due.entry(ns).or_insert(at);
                *due = (*due).min(at);
            }
        }
        for pv in world.volumes.in_scope(&scope) {
            self.volume(&world, pv);
        }
        self.volumes = world.volumes;
        self.due.values().copied().fold(self.resync, |next, at| earliest(next, Some(at)))
    }

    fn claim(&mut self, world: &World, pvc: &Value, now: SimInstant) -> Option<SimInstant> {
        let (ns, name) = key(pvc);
        let fins = crate::meta::finalizers(pvc);
        if crate::meta::is_deleting(pvc) {
            let used = world.users(pvc).any(|p| !is_terminal(p));
            if !used && fins.iter().any(|f| f == PVC_PROTECTION) {
                let rest: Vec<String> = fins.into_iter().filter(|f| f != PVC_PROTECTION).collect();
                let patch =
                    json!({"metadata": {"finalizers": rest, "resourceVersion": pvc["metadata"]["resourceVersion"]}});
                let _ =
                    self.store.client(PROTECTION).patch(&PVCS.r(), Some(&ns), &name, None, PatchType::Merge, &patch);
            }
            return None;
        }
        if !fins.iter().any(|f| f == PVC_PROTECTION) {
            let mut all = fins.clone();
            all.push(PVC_PROTECTION.into());
            let patch = json!({"metadata": {"finalizers": all, "resourceVersion": pvc["metadata"]["resourceVersion"]}});
            let _ = self.store.client(PROTECTION).patch(&PVCS.r(), Some(&ns), &name, None, PatchType::Merge, &patch);
        }
        let volume = str_of(pvc, &["spec", "volumeName"]);
        if volume.is_empty() {
            return self.unbound(world, pvc, now);
        }
        let uid = str_of(pvc, &["metadata", "uid"]);
        match world.volumes.pvs.get(volume) {
            Some(pv) if str_of(pv, &["spec", "claimRef", "uid"]) == uid => {
                if pvc["status"]["phase"] != "Bound" {
                    self.mark_bound(pvc, pv);
                    return None;
                }
                let expansion = self.expansion(world, pvc, pv, now);
                earliest(expansion, self.modification(world, pvc, pv, now))
            }
            _ => {
                if pvc["status"]["phase"] == "Bound" {
                    let _ = self.store.client(PV_CONTROLLER).patch_status(
                        &PVCS.r(),
                        Some(&ns),
                        &name,
                        &json!({"status": {"phase": "Lost"}}),
                    );
                    self.recorder.record(
                        &Source::new(PV_CONTROLLER, PV_CONTROLLER),
                        pvc,
                        EventType::Warning,
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                    );
                }
                None
            }
        }
    }

    fn unbound(&mut self, world: &World, pvc: &Value, now: SimInstant) -> Option<SimInstant> {
        let (ns, name) = key(pvc);
        let uid = str_of(pvc, &["metadata", "uid"]).to_string();
        let controller = Source::new(PV_CONTROLLER, PV_CONTROLLER);
        // A volume already made (or pre-bound) for this claim.
        if let Some(pv) = world.volumes.of_claim(&uid) {
            self.bind(pvc, pv, false);
            return None;
        }
        let class_name = world.class_name(pvc);
        let want = storage(&pvc["spec"]["resources"]["requests"]);
        let modes: Vec<String> = crate::meta::strings(&pvc["spec"]["accessModes"]);
        let selected = pvc["metadata"]["annotations"][super::scheduler::SELECTED_NODE].as_str();
        let class = class_name.as_ref().and_then(|c| world.classes.get(c));
        let wffc = class.is_some_and(|c| c["volumeBindingMode"] == "WaitForFirstConsumer");
        // Static binding: the smallest available volume of the class that fits (the
        // first by name of those as small).
        let selected_node = selected.and_then(|s| world.nodes.iter().find(|n| str_of(n, &["metadata", "name"]) == s));
        let selected_node = selected_node.map(|n| (str_of(n, &["metadata", "name"]), super::objects::labels(n)));
        let candidate = world
            .volumes
            .unclaimed()
            .filter(|pv| {
                pv["spec"]["claimRef"].is_null()
                    && !crate::meta::is_deleting(pv)
                    && pv["status"]["phase"] != "Released"
                    && pv["spec"]["storageClassName"].as_str().unwrap_or_default()
                        == class_name.as_deref().unwrap_or_default()
                    && storage(&pv["spec"]["capacity"]) >= want
                    && modes.iter().all(|m| crate::meta::strings(&pv["spec"]["accessModes"]).contains(m))
                    && (!wffc
                        || selected_node.as_ref().is_some_and(|(node, node_labels)| {
                            pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"].as_array().is_none_or(|terms| {
                                terms.iter().any(|t| super::scheduler::term_matches(t, node, node_labels))
                            })
                        }))
            })
            .min_by(|a, b| storage(&a["spec"]["capacity"]).total_cmp(&storage(&b["spec"]["capacity"])));
        if let Some(pv) = candidate {
            self.bind(pvc, pv, true);
            return None;
        }
        let Some(class) = class else {
            let message = match class_name {
                Some(c) => format!("storageclass.storage.k8s.io \"{c}\" not found"),
                None => "no persistent volumes available for this claim and no storage class is set".into(),
            };
            self.once(&controller, pvc, EventType::Warning, "FailedBinding", &message);
            return None;
        };
        if wffc && selected.is_none() {
            self.once(
                &controller,
                pvc,
                EventType::Normal,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            );
            return None;
        }
        let provisioner = str_of(class, &["provisioner"]).to_string();
        let due = match self.provisioning.get(&uid) {
            Some(due) => *due,
            None => {
                let patch = json!({"metadata": {"annotations": {
                    "volume.kubernetes.io/storage-provisioner": provisioner,
                    "volume.beta.kubernetes.io/storage-provisioner": provisioner}}});
                let _ =
                    self.store.client(PV_CONTROLLER).patch(&PVCS.r(), Some(&ns), &name, None, PatchType::Merge, &patch);
                self.once(&controller, pvc, EventType::Normal, "ExternalProvisioning", &format!(
                    "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."));
                if provisioner != PROVISIONER {
                    return None;
                }
                let source = Source::new(EXTERNAL_PROVISIONER, &provisioner);
                self.once(
                    &source,
                    pvc,
                    EventType::Normal,
                    "Provisioning",
                    &format!("External provisioner is provisioning volume for claim \"{ns}/{name}\""),
                );
                let due = now + self.timings.provision;
                self.provisioning.insert(uid.clone(), due);
                due
            }
        };
        if now < due {
            return Some(due);
        }
        let attributes = str_of(pvc, &["spec", "volumeAttributesClassName"]);
        if !attributes.is_empty() {
            let refusal = match world.attribute_classes.get(attributes) {
                None => Some(format!("volumeattributesclass.storage.k8s.io \"{attributes}\" not found")),
                Some(vac) if str_of(vac, &["driverName"]) != provisioner => Some(format!(
                    "VAC {attributes} referenced in PVC is for driver {} which does not match driver name {provisioner}",
                    str_of(vac, &["driverName"])
                )),
                Some(vac) => driver_accepts(vac).err(),
            };
            if let Some(refusal) = refusal {
                // Retried when the class appears (it never changes once made).
                let message = format!(
                    "failed to provision volume with StorageClass \"{}\": {refusal}",
                    str_of(class, &["metadata", "name"])
                );
                let source = Source::new(EXTERNAL_PROVISIONER, &provisioner);
                self.once(&source, pvc, EventType::Warning, "ProvisioningFailed", &message);
                return None;
            }
        }
        let zone = match selected {
            Some(node) => world
                .nodes
                .iter()
                .find(|n| str_of(n, &["metadata", "name"]) == node)
                .and_then(|n| n["metadata"]["labels"][ZONE].as_str().map(str::to_string)),
            None => world.zones().into_iter().min_by_key(|z| world.volumes.in_zone(z)),
        };
        self.provision(pvc, class, zone);
        self.provisioning.remove(&uid);
        None
    }

    fn provision(&mut self, pvc: &Value, class: &Value, zone: Option<String>) {
        let (ns, name) = key(pvc);
        let uid = str_of(pvc, &["metadata", "uid"]);
        let pv_name = format!("pvc-{uid}");
        let mut spec = json!({
            "capacity": {"storage": pvc["spec"]["resources"]["requests"]["storage"]},
            "accessModes": pvc["spec"]["accessModes"],
            "persistentVolumeReclaimPolicy": class["reclaimPolicy"].as_str().unwrap_or("Delete"),
            "storageClassName": class["metadata"]["name"],
            "volumeMode": pvc["spec"]["volumeMode"].as_str().unwrap_or("Filesystem"),
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns, "name": name,
                         "uid": uid, "resourceVersion": pvc["metadata"]["resourceVersion"]},
            "csi": {"driver": PROVISIONER, "volumeHandle": format!("vol-{uid}"), "fsType": "ext4"},
        });
        if let Some(attributes) = pvc["spec"]["volumeAttributesClassName"].as_str().filter(|a| !a.is_empty()) {
            spec["volumeAttributesClassName"] = json!(attributes);
        }
        if let Some(z) = &zone {
            spec["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE, "operator": "In", "values": [z]}]}]}});
        }
        let pv = json!({
            "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER,
                         "volume.kubernetes.io/provisioner-deletion-secret-name": "", "volume.kubernetes.io/provisioner-deletion-secret-namespace": ""},
                         "finalizers": [PV_PROTECTION, "external-provisioner.volume.kubernetes.io/finalizer"]},
            "spec": spec,
        });
        let source = Source::new(EXTERNAL_PROVISIONER, PROVISIONER);
        match self.store.client(EXTERNAL_PROVISIONER).create(&PVS.r(), None, pv) {
            Ok(_) => self.recorder.record(
                &source,
                pvc,
                EventType::Normal,
                "ProvisioningSucceeded",
                &format!("Successfully provisioned volume {pv_name}"),
            ),
            Err(e) => self.recorder.record(
                &source,
                pvc,
                EventType::Warning,
                "ProvisioningFailed",
                &format!(
                    "failed to provision volume with StorageClass \"{}\": {e}",
                    str_of(class, &["metadata", "name"])
                ),
            ),
        }
    }

    /// Binds both sides; `by_controller` when the controller chose the volume.
    fn bind(&mut self, pvc: &Value, pv: &Value, by_controller: bool) {
        let (ns, name) = key(pvc);
        let pv_name = str_of(pv, &["metadata", "name"]);
        let client = self.store.client(PV_CONTROLLER);
        if pv["spec"]["claimRef"].is_null() {
            let patch = json!({
                "metadata": {"annotations": {"pv.kubernetes.io/bound-by-controller": "yes"}},
                "spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": ns, "name": name,
                         "uid": pvc["metadata"]["uid"], "resourceVersion": pvc["metadata"]["resourceVersion"]}}});
            if client.patch(&PVS.r(), None, pv_name, None, PatchType::Merge, &patch).is_err() {
                return;
            }
        }
        let _ = client.patch_status(&PVS.r(), None, pv_name, &json!({"status": {"phase": "Bound"}}));
        let mut annotations = json!({"pv.kubernetes.io/bind-completed": "yes"});
        if by_controller || pv["spec"]["claimRef"].is_object() {
            annotations["pv.kubernetes.io/bound-by-controller"] = json!("yes");
        }
        let patch = json!({"metadata": {"annotations": annotations}, "spec": {"volumeName": pv_name}});
        if client.patch(&PVCS.r(), Some(&ns), &name, None, PatchType::Merge, &patch).is_ok() {
            self.mark_bound(pvc, pv);
        }
    }

    fn mark_bound(&self, pvc: &Value, pv: &Value) {
        let (ns, name) = key(pvc);
        let mut status = json!({"status": {"phase": "Bound", "accessModes": pv["spec"]["accessModes"], "capacity": pv["spec"]["capacity"]}});
        if let Some(attributes) = pv["spec"]["volumeAttributesClassName"].as_str() {
            status["status"]["currentVolumeAttributesClassName"] = json!(attributes);
        }
        let _ = self.store.client(PV_CONTROLLER).patch_status(&PVCS.r(), Some(&ns), &name, &status);
        let _ = self.store.client(PV_CONTROLLER).patch_status(
            &PVS.r(),
            None,
            str_of(pv, &["metadata", "name"]),
            &json!({"status": {"phase": "Bound"}}),
        );
    }

    fn expansion(&mut self, world: &World, pvc: &Value, pv: &Value, now: SimInstant) -> Option<SimInstant> {
        let (ns, name) = key(pvc);
        let uid = str_of(pvc, &["metadata", "uid"]).to_string();
        let request = &pvc["spec"]["resources"]["requests"]["storage"];
        let capacity = storage(&pvc["status"]["capacity"]);
        let allocated = &pvc["status"]["allocatedResources"]["storage"];
        let stage = str_of(pvc, &["status", "allocatedResourceStatuses", "storage"]).to_string();
        let pv_name = str_of(pv, &["metadata", "name"]).to_string();
        let client = self.store.client(EXTERNAL_RESIZER);
        let t = now_time(&self.store);
        match stage.as_str() {
            "" => {
                let grown = quantity(request) > capacity && quantity(request) > quantity(allocated);
                if !grown {
                    return None;
                }
                let class = world.class_name(pvc).and_then(|c| world.classes.get(&c).cloned());
                let expandable = class.as_ref().is_some_and(|c| c["allowVolumeExpansion"] == true)
                    && pv["spec"]["csi"]["driver"] == PROVISIONER;
                if !expandable {
                    self.once(
                        &Source::new(PV_CONTROLLER, "volume_expand"),
                        pvc,
                        EventType::Warning,
                        "VolumeResizeFailed",
                        RESIZE_REFUSED,
                    );
                    return None;
                }
                self.once(
                    &Source::new(PV_CONTROLLER, "volume_expand"),
                    pvc,
                    EventType::Normal,
                    "ExternalExpanding",
                    "waiting for an external controller to expand this PVC",
                );
                let source = Source::new(EXTERNAL_RESIZER, &format!("external-resizer {PROVISIONER}"));
                self.recorder.record(
                    &source,
                    pvc,
                    EventType::Normal,
                    "Resizing",
                    &format!("External resizer is resizing volume {pv_name}"),
                );
                let status = json!({"status": {
                    "conditions": [{"type": "Resizing", "status": "True", "lastProbeTime": null, "lastTransitionTime": t}],
                    "allocatedResources": {"storage": request},
                    "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"}}});
                let _ = client.patch_status(&PVCS.r(), Some(&ns), &name, &status);
                let due = now + self.timings.controller_resize;
                self.resizing.insert(uid, due);
                Some(due)
            }
            "ControllerResizeInProgress" => {
                let due = *self.resizing.entry(uid.clone()).or_insert(now + self.timings.controller_resize);
                if now < due {
                    return Some(due);
                }
                let patch = json!({"spec": {"capacity": {"storage": allocated}}});
                if client.patch(&PVS.r(), None, &pv_name, None, PatchType::Merge, &patch).is_err() {
                    return None;
                }
                let status = json!({"status": {
                    "conditions": [{"type": "FileSystemResizePending", "status": "True", "lastProbeTime": null,
                                    "lastTransitionTime": t, "message": FS_RESIZE_PENDING}],
                    "allocatedResourceStatuses": {"storage": "NodeResizePending"}}});
                let _ = client.patch_status(&PVCS.r(), Some(&ns), &name, &status);
                let source = Source::new(EXTERNAL_RESIZER, &format!("external-resizer {PROVISIONER}"));
                self.recorder.record(
                    &source,
                    pvc,
                    EventType::Normal,
                    "FileSystemResizeRequired",
                    "Require file system resize of volume on node",
                );
                self.resizing.remove(&uid);
                None
            }
            "NodeResizePending" => {
                let running = world.users(pvc).find(|p| {
                    p["status"]["phase"] == "Running"
                        && !crate::meta::is_deleting(p)
                        && world.nodes.iter().any(|n| {
                            str_of(n, &["metadata", "name"]) == str_of(p, &["spec", "nodeName"])
                                && super::nodes::node_ready(n)
                        })
                })?;
                let due = *self.node_resizing.entry(uid.clone()).or_insert(now + self.timings.node_resize);
                if now < due {
                    return Some(due);
                }
                let node = str_of(running, &["spec", "nodeName"]);
                let status = json!({"status": {"capacity": {"storage": allocated}, "conditions": null, "allocatedResourceStatuses": null}});
                let _ = self.store.client(format!("kubelet/{node}")).patch_status(&PVCS.r(), Some(&ns), &name, &status);
                let message = format!("MountVolume.NodeExpandVolume succeeded for volume \"{pv_name}\" {node}");
                let source = Source::kubelet(node);
                self.recorder.record(&source, pvc, EventType::Normal, "FileSystemResizeSuccessful", &message);
                self.recorder.record(&source, running, EventType::Normal, "FileSystemResizeSuccessful", &message);
                self.node_resizing.remove(&uid);
                None
            }
            _ => None,
        }
    }

    /// The external-resizer's modify controller and the driver's `ControllerModifyVolume`
    /// for one bound claim.
    fn modification(&mut self, world: &World, pvc: &Value, pv: &Value, now: SimInstant) -> Option<SimInstant> {
        let (ns, name) = key(pvc);
        let uid = str_of(pvc, &["metadata", "uid"]).to_string();
        let wanted = str_of(pvc, &["spec", "volumeAttributesClassName"]);
        if wanted.is_empty() || pv["spec"]["csi"]["driver"] != PROVISIONER {
            return None;
        }
        let status = &pvc["status"]["modifyVolumeStatus"];
        let client = self.store.client(EXTERNAL_RESIZER);
        let source = Source::new(EXTERNAL_RESIZER, &format!("external-resizer {PROVISIONER}"));
        if pvc["status"]["currentVolumeAttributesClassName"].as_str() == Some(wanted) {
            self.modifying.remove(&uid);
            if !status.is_null() {
                // Back to the class the volume has (after an Infeasible one): nothing to do.
                let conditions = modify_conditions(pvc, vec![]);
                let patch = json!({"status": {"modifyVolumeStatus": null, "conditions": conditions}});
                let _ = client.patch_status(&PVCS.r(), Some(&ns), &name, &patch);
            }
            return None;
        }
        let Some(vac) = world.attribute_classes.get(wanted) else {
            self.modifying.remove(&uid);
            if status["status"] != "Pending" {
                let patch = json!({"status": {"modifyVolumeStatus": {"status": "Pending"}}});
                let _ = client.patch_status(&PVCS.r(), Some(&ns), &name, &patch);
            }
            return None;
        };
        if status["status"] == "Infeasible" && status["targetVolumeAttributesClassName"] == wanted {
            return None;
        }
        match self.modifying.get(&uid).cloned() {
            Some((target, due)) if target == wanted => {
                if now < due {
                    return Some(due);
                }
                self.modifying.remove(&uid);
                let pv_name = str_of(pv, &["metadata", "name"]);
                match driver_accepts(vac) {
                    Ok(()) => {
                        let patch = json!({"spec": {"volumeAttributesClassName": wanted}});
                        if client.patch(&PVS.r(), None, pv_name, None, PatchType::Merge, &patch).is_err() {
                            return None;
                        }
                        let conditions = modify_conditions(pvc, vec![]);
                        let patch = json!({"status": {"currentVolumeAttributesClassName": wanted,
                            "modifyVolumeStatus": null, "conditions": conditions}});
                        let _ = client.patch_status(&PVCS.r(), Some(&ns), &name, &patch);
                        let message =
                            format!("external resizer modified volume {name} with vac {wanted} successfully ");
                        self.recorder.record(&source, pvc, EventType::Normal, "VolumeModifySuccessful", &message);
                    }
                    Err(error) => {
                        let t = now_time(&self.store);
                        let conditions = modify_conditions(
                            pvc,
                            vec![
                                json!({"type": "ModifyingVolume", "status": "True", "lastProbeTime": null,
                                       "lastTransitionTime": t,
                                       "message": format!("ModifyVolume failed with error{error}. Waiting for retry.")}),
                                json!({"type": "ModifyVolumeError", "status": "True", "lastProbeTime": null,
                                       "lastTransitionTime": t,
                                       "message": format!("ModifyVolume failed with error: {error}. Waiting for retry.")}),
                            ],
                        );
                        let patch = json!({"status": {"modifyVolumeStatus": {"status": "Infeasible",
                            "targetVolumeAttributesClassName": wanted}, "conditions": conditions}});
                        let _ = client.patch_status(&PVCS.r(), Some(&ns), &name, &patch);
                        self.recorder.record(&source, pvc, EventType::Warning, "VolumeModifyFailed", &error);
                    }
                }
                None
            }
            _ => {
                let conditions = modify_conditions(
                    pvc,
                    vec![json!({"type": "ModifyingVolume", "status": "True", "lastProbeTime": null,
                                "lastTransitionTime": now_time(&self.store),
                                "message": "ModifyVolume operation in progress."})],
                );
                let patch = json!({"status": {"modifyVolumeStatus": {"status": "InProgress",
                    "targetVolumeAttributesClassName": wanted}, "conditions": conditions}});
                if client.patch_status(&PVCS.r(), Some(&ns), &name, &patch).is_err() {
                    return None;
                }
                let message = format!("external resizer is modifying volume {name} with vac {wanted}");
                self.recorder.record(&source, pvc, EventType::Normal, "VolumeModify", &message);
                let due = now + self.timings.volume_modify;
                self.modifying.insert(uid, (wanted.to_string(), due));
                Some(due)
            }
        }
    }

    fn volume(&mut self, world: &World, pv: &Value) {
        let name = str_of(pv, &["metadata", "name"]);
        let client = self.store.client(PV_CONTROLLER);
        if crate::meta::is_deleting(pv) {
            if pv["status"]["phase"] != "Bound" {
                let rest: Vec<String> = crate::meta::finalizers(pv)
                    .into_iter()
                    .filter(|f| f != PV_PROTECTION && f != "external-provisioner.volume.kubernetes.io/finalizer")
                    .collect();
                let _ = client.patch(
                    &PVS.r(),
                    None,
                    name,
                    None,
                    PatchType::Merge,
                    &json!({"metadata": {"finalizers": rest}}),
                );
            }
            return;
        }
        let claim = &pv["spec"]["claimRef"];
        if claim.is_null() {
            if pv["status"]["phase"] != "Available" {
                let _ = client.patch_status(&PVS.r(), None, name, &json!({"status": {"phase": "Available"}}));
            }
            return;
        }
        let uid = str_of(claim, &["uid"]);
        if world.claim_uids.contains(uid) || uid.is_empty() {
            return;
        }
        if pv["status"]["phase"] != "Released" {
            let _ = client.patch_status(&PVS.r(), None, name, &json!({"status": {"phase": "Released"}}));
        }
        if pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" && pv["spec"]["csi"]["driver"] == PROVISIONER {
            let _ = self.store.client(EXTERNAL_PROVISIONER).delete(&PVS.r(), None, name, &DeleteOptions::default());
        }
    }
}

/// What a pass syncs: the claims of `namespaces` and the volumes named in `volumes` or
/// claimed from `namespaces` (`all`: every claim and volume).
struct Scope {
    all: bool,
    namespaces: HashSet<String>,
    volumes: HashSet<String>,
}

impl Scope {
    fn everything() -> Self {
        Scope { all: true, namespaces: HashSet::new(), volumes: HashSet::new() }
    }

    /// What `changes` can affect; `None` when it is everything (a class or a node
    /// changed: any claim may now bind, provision or grow differently).
    fn of(changes: &[Arc<Change>]) -> Option<Self> {
        let mut scope = Scope { all: false, namespaces: HashSet::new(), volumes: HashSet::new() };
        for c in changes {
            match c.gr.resource.as_str() {
                "persistentvolumeclaims" | "pods" => {
                    scope.namespaces.insert(str_of(&c.new, &["metadata", "namespace"]).to_string());
                }
                "persistentvolumes" => {
                    scope.volumes.insert(str_of(&c.new, &["metadata", "name"]).to_string());
                    for pv in c.old.iter().chain([&c.new]) {
                        let ns = str_of(pv, &["spec", "claimRef", "namespace"]);
                        if !ns.is_empty() {
                            scope.namespaces.insert(ns.to_string());
                        }
                    }
                }
                _ => return None,
            }
        }
        Some(scope)
    }
}

/// The claim's conditions other than the modify controller's, then `added`.
fn modify_conditions(pvc: &Value, added: Vec<Value>) -> Vec<Value> {
    let kept = pvc["status"]["conditions"].as_array().into_iter().flatten();
    let kept = kept.filter(|c| c["type"] != "ModifyingVolume" && c["type"] != "ModifyVolumeError").cloned();
    kept.chain(added).collect()
}

/// The simulated driver's check of a class's parameters (`CreateVolume` and
/// `ControllerModifyVolume` refuse others with InvalidArgument).
fn driver_accepts(vac: &Value) -> Result<(), String> {
    let Some(parameters) = vac["parameters"].as_object() else { return Ok(()) };
    for (key, value) in parameters {
        if !VAC_PARAMETERS.contains(&key.as_str()) {
            return Err(format!(
                "rpc error: code = InvalidArgument desc = parameter {key:?} is not supported by {PROVISIONER} \
                 (supported: {})",
                VAC_PARAMETERS.join(", ")
            ));
        }
        if value.as_str().and_then(|v| v.parse::<u64>().ok()).is_none_or(|v| v == 0) {
            return Err(format!(
                "rpc error: code = InvalidArgument desc = parameter {key} must be a positive integer, not {value}"
            ));
        }
    }
    Ok(())
}

/// Whether a pod's change can change how its claims are used: a pod appears or goes,
/// its claims or node change, it starts terminating, or its phase changes (a finished
/// pod uses no claim; a running one lets a file system grow). Its other status changes
/// (conditions, containers) cannot.
fn pod_use_changed(c: &Change) -> bool {
    let Some(old) = &c.old else { return true };
    let differs = |path: &[&str]| str_of(old, path) != str_of(&c.new, path);
    c.kind != ChangeKind::Modified
        || differs(&["status", "phase"])
        || differs(&["spec", "nodeName"])
        || differs(&["metadata", "deletionTimestamp"])
        || old["spec"]["volumes"] != c.new["spec"]["volumes"]
}

pub(crate) async fn run(store: Store, timings: Timings, shutdown: watch::Receiver<bool>) {
    let mut wake = Wake::keeping_changes(
        &store,
        shutdown,
        &["persistentvolumeclaims", "persistentvolumes", "pods", "storageclasses", "volumeattributesclasses", "nodes"],
    )
    .only(|c| c.gr.resource != "pods" || pod_use_changed(c));
    let mut volumes = Volumes {
        recorder: Recorder::new(&store),
        store,
        volumes: VolumeIndex::default(),
        due: HashMap::new(),
        resync: None,
        timings,
        provisioning: HashMap::new(),
        resizing: HashMap::new(),
        node_resizing: HashMap::new(),
        modifying: HashMap::new(),
        said: HashSet::new(),
    };
    let mut next = None;
    while wake.wait(next, std::future::pending()).await {
        let changes = wake.take_changes();
        let Some(passed) = super::on_own_thread(volumes, move |v| v.pass(changes)).await else { return };
        (volumes, next) = passed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResourceRef;

    fn controller() -> Volumes {
        let store = Store::new(sim_clock::SimClock::new(1.0), 1000, 0);
        let c = store.client("test");
        for ns in ["a", "b"] {
            c.create(&ResourceRef::new("", "v1", "namespaces"), None, json!({"metadata": {"name": ns}})).unwrap();
        }
        Volumes {
            recorder: Recorder::new(&store),
            store,
            volumes: VolumeIndex::default(),
            due: HashMap::new(),
            resync: None,
            timings: Timings::default(),
            provisioning: HashMap::new(),
            resizing: HashMap::new(),
            node_resizing: HashMap::new(),
            modifying: HashMap::new(),
            said: HashSet::new(),
        }
    }

    fn protected(v: &Volumes, ns: &str) -> bool {
        let claim = v.store.client("test").get(&PVCS.r(), Some(ns), "data").unwrap();
        crate::meta::finalizers(&claim).iter().any(|f| f == PVC_PROTECTION)
    }

    #[test]
    fn a_pass_syncs_the_namespaces_that_changed_and_every_claim_at_the_resync() {
        let mut v = controller();
        assert_eq!(v.pass(None), v.resync, "nothing due but the resync");
        let rev = v.store.revision();
        for ns in ["a", "b"] {
            let claim = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "",
                "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
            v.store.client("test").create(&PVCS.r(), Some(ns), claim).unwrap();
        }
        let (changes, _) = v.store.changes_since(rev).unwrap();
        let in_a: Vec<Arc<Change>> =
            changes.into_iter().filter(|c| str_of(&c.new, &["metadata", "namespace"]) == "a").collect();
        v.pass(Some(in_a));
        assert!(protected(&v, "a"));
        assert!(!protected(&v, "b"), "a change in a syncs nothing in b");
        v.store.clock().advance(RESYNC);
        v.pass(Some(Vec::new()));
        assert!(protected(&v, "b"), "the periodic resync syncs every claim");
    }

    #[test]
    fn a_volume_made_between_passes_is_found_through_the_changes_and_bound() {
        let mut v = controller();
        let claim = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "",
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        let created = v.store.client("test").create(&PVCS.r(), Some("a"), claim).unwrap();
        v.pass(None);
        let rev = v.store.revision();
        let pv = json!({"metadata": {"name": "pv-static"}, "spec": {"storageClassName": "",
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "claimRef": {"namespace": "a", "name": "data", "uid": created["metadata"]["uid"]},
            "hostPath": {"path": "/tmp/x"}}});
        v.store.client("test").create(&PVS.r(), None, pv).unwrap();
        let (changes, _) = v.store.changes_since(rev).unwrap();
        v.pass(Some(changes));
        let claim = v.store.client("test").get(&PVCS.r(), Some("a"), "data").unwrap();
        assert_eq!(claim["spec"]["volumeName"], "pv-static", "the index kept from the first pass learned of it");
    }

    #[test]
    fn a_class_or_node_change_scopes_everything_a_volume_change_its_claims_namespace() {
        let change = |resource: &str, old: Option<Value>, new: Value| {
            Arc::new(Change {
                rev: 1,
                gr: crate::registry::GroupResource::new("", resource),
                kind: ChangeKind::Modified,
                old: old.map(Arc::new),
                new: Arc::new(new),
                at: sim_clock::SimClock::new(1.0).now(),
            })
        };
        assert!(Scope::of(&[change("storageclasses", None, json!({}))]).is_none());
        assert!(Scope::of(&[change("nodes", None, json!({}))]).is_none());
        let released = json!({"metadata": {"name": "pv-1"}, "spec": {}});
        let bound = json!({"metadata": {"name": "pv-1"}, "spec": {"claimRef": {"namespace": "a"}}});
        let scope = Scope::of(&[change("persistentvolumes", Some(bound), released)]).unwrap();
        assert_eq!((scope.namespaces, scope.volumes), (HashSet::from(["a".into()]), HashSet::from(["pv-1".into()])));
    }

    #[test]
    fn a_claim_finds_the_first_volume_by_name_that_names_it_as_volumes_come_and_go() {
        let pv = |claim: Option<&str>| {
            let claim_ref = claim.map(|uid| json!({"uid": uid})).unwrap_or(Value::Null);
            Arc::new(json!({"spec": {"claimRef": claim_ref}}))
        };
        let mut index = VolumeIndex::default();
        for (name, claim) in [("pv-c", Some("u1")), ("pv-a", Some("u2")), ("pv-b", Some("u1")), ("pv-d", None)] {
            index.put(name.into(), Some(pv(claim)));
        }
        let first = |index: &VolumeIndex, uid: &str| {
            let scanned = index.pvs.iter().find(|(_, pv)| str_of(pv, &["spec", "claimRef", "uid"]) == uid);
            let found = index.of_claim(uid);
            assert_eq!(found, scanned.map(|(_, pv)| pv), "{uid}");
            scanned.map(|(name, _)| name.clone())
        };
        assert_eq!(first(&index, "u1").as_deref(), Some("pv-b"));
        assert_eq!(first(&index, "u2").as_deref(), Some("pv-a"));
        assert_eq!(first(&index, "u3"), None);
        // pv-b deleted, pv-a released then claimed by u1: the index follows.
        index.put("pv-b".into(), None);
        assert_eq!(first(&index, "u1").as_deref(), Some("pv-c"));
        index.put("pv-a".into(), Some(pv(Some("u1"))));
        assert_eq!(first(&index, "u1").as_deref(), Some("pv-a"));
        assert_eq!(first(&index, "u2"), None, "no volume names u2 any more");
        assert!(!index.by_claim.contains_key("u2"));
    }

    /// A volume: its claimRef (namespace, uid) if any, its zone if provisioned in one.
    fn volume(claim: Option<(&str, &str)>, zone: Option<&str>) -> Arc<Value> {
        let mut pv = json!({"spec": {}});
        if let Some((ns, uid)) = claim {
            pv["spec"]["claimRef"] = json!({"namespace": ns, "uid": uid});
        }
        if let Some(zone) = zone {
            pv["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": ZONE, "operator": "In", "values": [zone]}]}]}});
        }
        Arc::new(pv)
    }

    /// What a pass synced before the index: every volume, filtered.
    fn has_volume(scope: &Scope, name: &str, pv: &Value) -> bool {
        scope.all
            || scope.volumes.contains(name)
            || scope.namespaces.contains(str_of(pv, &["spec", "claimRef", "namespace"]))
    }

    /// The index's answers against scans of every volume.
    fn check(index: &VolumeIndex) {
        let unclaimed: Vec<&Arc<Value>> = index.pvs.values().filter(|pv| pv["spec"]["claimRef"].is_null()).collect();
        assert_eq!(index.unclaimed().collect::<Vec<_>>(), unclaimed);
        for zone in ["zone-a", "zone-b", "zone-c"] {
            let scanned = index.pvs.values().filter(|pv| provisioned_zone(pv) == Some(zone)).count();
            assert_eq!(index.in_zone(zone), scanned, "{zone}");
        }
        let scopes = [
            Scope::everything(),
            Scope { all: false, namespaces: HashSet::from(["a".into()]), volumes: HashSet::new() },
            Scope { all: false, namespaces: HashSet::from(["b".into()]), volumes: HashSet::from(["pv-1".into()]) },
            Scope { all: false, namespaces: HashSet::new(), volumes: HashSet::from(["pv-3".into(), "nope".into()]) },
            Scope { all: false, namespaces: HashSet::from(["".into()]), volumes: HashSet::new() },
        ];
        for scope in scopes {
            let scanned: Vec<&Arc<Value>> =
                index.pvs.iter().filter(|(name, pv)| has_volume(&scope, name, pv)).map(|(_, pv)| pv).collect();
            assert_eq!(index.in_scope(&scope), scanned, "{:?} {:?}", scope.namespaces, scope.volumes);
        }
        let names = |index: &HashMap<String, BTreeSet<String>>| index.values().map(BTreeSet::len).sum::<usize>();
        assert_eq!(names(&index.by_namespace), index.pvs.len(), "each volume under one namespace");
        assert!(index.by_namespace.values().all(|names| !names.is_empty()), "no namespace left empty");
    }

    #[test]
    fn volumes_move_in_and_out_of_the_unclaimed_namespace_and_zone_indexes_as_they_change() {
        let mut index = VolumeIndex::default();
        index.put("pv-3".into(), Some(volume(None, Some("zone-a"))));
        index.put("pv-1".into(), Some(volume(Some(("a", "u1")), Some("zone-a"))));
        index.put("pv-2".into(), Some(volume(None, None)));
        index.put("pv-4".into(), Some(volume(Some(("b", "u4")), Some("zone-b"))));
        check(&index);
        assert_eq!(index.unclaimed.iter().collect::<Vec<_>>(), ["pv-2", "pv-3"]);
        assert_eq!(index.in_zone("zone-a"), 2);
        // pv-3 claimed from b: no longer available, synced with b.
        index.put("pv-3".into(), Some(volume(Some(("b", "u3")), Some("zone-a"))));
        check(&index);
        assert!(!index.unclaimed.contains("pv-3"));
        assert!(index.by_namespace["b"].contains("pv-3"));
        // pv-1 released (claimRef removed): available again, no longer claimed from a.
        index.put("pv-1".into(), Some(volume(None, Some("zone-a"))));
        check(&index);
        assert!(index.unclaimed.contains("pv-1"));
        assert!(!index.by_namespace.contains_key("a"), "nothing claimed from a any more");
        // pv-4 and pv-2 deleted: gone from every index.
        index.put("pv-4".into(), None);
        index.put("pv-2".into(), None);
        check(&index);
        assert!(!index.unclaimed.contains("pv-2"));
        assert!(index.by_namespace.values().all(|names| !names.contains("pv-4")));
        assert_eq!((index.in_zone("zone-a"), index.in_zone("zone-b")), (2, 0));
        assert!(!index.per_zone.contains_key("zone-b"));
        // Deleting what is not there changes nothing.
        index.put("pv-9".into(), None);
        check(&index);
    }

    #[test]
    fn a_claims_users_are_the_pods_in_scope_naming_it_each_once_in_list_order() {
        let pod = |ns: &str, name: &str, claims: &[&str]| {
            let volumes: Vec<Value> = claims
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": c}}))
                .collect();
            Arc::new(json!({"metadata": {"namespace": ns, "name": name}, "spec": {"volumes": volumes}}))
        };
        let ephemeral = json!({"metadata": {"namespace": "a", "name": "e"},
            "spec": {"volumes": [{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {}}}]}});
        let pods = vec![
            pod("a", "p1", &["data", "data"]),
            pod("b", "p2", &["data"]),
            pod("a", "p3", &["logs", "data"]),
            Arc::new(ephemeral),
            pod("a", "p4", &[]),
        ];
        let world = World {
            pvcs: Vec::new(),
            volumes: VolumeIndex::default(),
            classes: BTreeMap::new(),
            attribute_classes: BTreeMap::new(),
            nodes: Vec::new(),
            pods,
            users: OnceCell::new(),
            claim_uids: HashSet::new(),
        };
        for (ns, claim) in [("a", "data"), ("b", "data"), ("a", "logs"), ("a", "e-scratch"), ("c", "data")] {
            let pvc = json!({"metadata": {"namespace": ns, "name": claim}});
            let scanned: Vec<&Value> = world
                .pods
                .iter()
                .map(|p| &**p)
                .filter(|p| {
                    str_of(p, &["metadata", "namespace"]) == ns && pod_claims(p).iter().any(|(_, c)| c == claim)
                })
                .collect();
            assert_eq!(world.users(&pvc).collect::<Vec<_>>(), scanned, "{ns}/{claim}");
        }
        let names = |ns: &str, claim: &str| {
            let pvc = json!({"metadata": {"namespace": ns, "name": claim}});
            world.users(&pvc).map(|p| str_of(p, &["metadata", "name"]).to_string()).collect::<Vec<_>>()
        };
        assert_eq!(names("a", "data"), ["p1", "p3"]);
        assert_eq!(names("a", "e-scratch"), ["e"]);
    }

    #[test]
    fn a_claim_binds_the_smallest_unclaimed_volume_that_fits_the_first_by_name_of_equals() {
        let mut v = controller();
        let c = v.store.client("test");
        let pv = |name: &str, size: &str, claim: Value| {
            json!({"metadata": {"name": name}, "spec": {"storageClassName": "", "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"], "claimRef": claim, "hostPath": {"path": "/tmp/x"}}})
        };
        let claimed = json!({"namespace": "b", "name": "other", "uid": "elsewhere"});
        for (name, size, claim) in [
            ("pv-e", "5Gi", Value::Null),
            ("pv-d", "2Gi", Value::Null),
            ("pv-b", "2Gi", Value::Null),
            ("pv-a", "1Gi", claimed),
            ("pv-c", "512Mi", Value::Null),
        ] {
            c.create(&PVS.r(), None, pv(name, size, claim)).unwrap();
        }
        let claim = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "",
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        c.create(&PVCS.r(), Some("a"), claim).unwrap();
        v.pass(None);
        let claim = c.get(&PVCS.r(), Some("a"), "data").unwrap();
        assert_eq!(claim["spec"]["volumeName"], "pv-b", "not the claimed pv-a, the too small pv-c, pv-d or pv-e");
        let bound = c.get(&PVS.r(), None, "pv-b").unwrap();
        assert_eq!(bound["spec"]["claimRef"]["uid"], claim["metadata"]["uid"]);
    }

    #[test]
    fn a_claim_with_no_node_selected_is_provisioned_in_the_zone_with_fewest_volumes() {
        let mut v = controller();
        ensure_storage_classes(&v.store).unwrap();
        let c = v.store.client("test");
        for (node, zone) in [("n1", "zone-a"), ("n2", "zone-b"), ("n3", "zone-c"), ("n4", "zone-a")] {
            let node = json!({"metadata": {"name": node, "labels": {ZONE: zone}}});
            c.create(&NODES.r(), None, node).unwrap();
        }
        for (name, zone) in [("pv-1", "zone-a"), ("pv-2", "zone-c"), ("pv-3", "zone-b"), ("pv-4", "zone-a")] {
            let mut pv = Value::clone(&volume(None, Some(zone)));
            pv["metadata"] = json!({"name": name});
            pv["spec"]["capacity"] = json!({"storage": "1Gi"});
            pv["spec"]["accessModes"] = json!(["ReadWriteOnce"]);
            pv["spec"]["storageClassName"] = json!("other");
            pv["spec"]["hostPath"] = json!({"path": "/tmp/x"});
            c.create(&PVS.r(), None, pv).unwrap();
        }
        let claim = json!({"metadata": {"name": "data"}, "spec": {"storageClassName": "standard-immediate",
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        let uid = c.create(&PVCS.r(), Some("a"), claim).unwrap()["metadata"]["uid"].clone();
        v.pass(None);
        v.store.clock().advance(v.timings.provision);
        v.pass(None);
        let made = c.get(&PVS.r(), None, &format!("pvc-{}", uid.as_str().unwrap())).unwrap();
        assert_eq!(provisioned_zone(&made), Some("zone-b"), "zone-b and zone-c have one each, zone-b sorts first");
    }
}
