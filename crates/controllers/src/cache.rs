//! The operator's watch caches: one watcher per kind it reads, shared by every
//! controller (as its triggers) and every task (as its reads).
//!
//! Each [`Cache`] keeps a reflector store of one kind, with `managedFields` dropped
//! before anything is stored, and fans its changes out to subscribers. Owned kinds
//! (Pods, ConfigMaps, PVCs, Services, ControllerRevisions, PodDisruptionBudgets) are watched only with the
//! operator's managed-by label. Secrets are never cached. Nodes are cached by their
//! metadata alone (names and labels), for the store labels of the TiKVs on them.
//!
//! A subscriber first gets every object in the store, then each object as it changes
//! or is deleted. One that falls behind the buffer gets every object in the store again
//! rather than blocking the watcher: reconciles are level-based, so a repeated trigger
//! costs a pass, a lost one could stall an object.
//!
//! kube-runtime's own shared reflector (`reflect_shared`/`subscribe`) is not used: it
//! does not pass deletions on (a deleted Pod must trigger its instance) and blocks the
//! watcher while any subscriber lags.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerStatus, Node, PersistentVolumeClaim, Pod, PodSpec, PodStatus, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tikv_operator_api::{Cluster, PD, PDGroup, TiKV, TiKVGroup};
use tokio::sync::broadcast;

use crate::controller::{api, managed_config};

/// Changes a cache holds for its subscribers before the slowest one is told it lagged.
const BUFFER: usize = 1024;

/// What a cache can hold.
pub trait Watched: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static {}

impl<K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static> Watched for K {}

/// A namespaced kind the operator caches.
pub trait Cached: Watched + Resource<Scope = k8s_openapi::NamespaceResourceScope> {
    fn cache(caches: &Caches) -> &Cache<Self>;

    /// Drops what the operator never reads of a cached object (besides `managedFields`).
    fn slim(&mut self) {}
}

/// The nodes as the node cache holds them: names and labels only (the store labels of
/// the TiKV on a node come from them).
pub type NodeMeta = PartialObjectMeta<Node>;

/// The store of one kind and the fan-out of its changes.
pub struct Cache<K: Watched> {
    store: Store<K>,
    changes: broadcast::Sender<Change<K>>,
    /// The names in the store by namespace, kept with it: a task lists its instance's
    /// few objects, and filtering the whole store for them made every list cost as much
    /// as the store is large (hundreds of PVCs and Pods at 100 clusters).
    names: Arc<RwLock<Names>>,
}

/// Namespace (empty for cluster-scoped objects) to the names in it.
type Names = HashMap<String, BTreeSet<String>>;

/// Brings `names` in line with a watch event the store has just applied.
fn index<K: Watched>(names: &RwLock<Names>, event: &watcher::Event<K>, store: &Store<K>) {
    let mut names = names.write().unwrap_or_else(PoisonError::into_inner);
    let namespace = |o: &K| o.meta().namespace.clone().unwrap_or_default();
    match event {
        watcher::Event::Apply(object) => {
            names.entry(namespace(object)).or_default().insert(object.name_any());
        }
        watcher::Event::Delete(object) => {
            let namespace = namespace(object);
            if let Some(in_namespace) = names.get_mut(&namespace) {
                in_namespace.remove(&object.name_any());
                if in_namespace.is_empty() {
                    names.remove(&namespace);
                }
            }
        }
        watcher::Event::InitDone => {
            names.clear();
            for object in store.state() {
                names.entry(namespace(&object)).or_default().insert(object.name_any());
            }
        }
        watcher::Event::Init | watcher::Event::InitApply(_) => {}
    }
}

/// One change as the fan-out buffer holds it. The buffer keeps its last [`BUFFER`]
/// entries even once every subscriber has read them, so it holds a change by name only:
/// an object that changed again since is not kept alive twice (at 100 clusters that was
/// megabytes of superseded Pods and statuses). A deleted object is held whole: it is
/// no longer in the store, and its owner must hear of it.
#[derive(Clone)]
enum Change<K: Watched> {
    /// Changed or added: subscribers read the store's current copy. (Behind an `Arc`:
    /// the buffer's slots are allocated up front, at the size of the largest variant.)
    Applied(Arc<ObjectRef<K>>),
    /// Deleted, as last seen.
    Deleted(Arc<K>),
}

impl<K: Watched> Change<K> {
    /// What a subscriber passes on: the store's copy now (`None` when the object was
    /// deleted since, whose deletion comes next), or the deleted object.
    fn resolve(self, store: &Store<K>) -> Option<Arc<K>> {
        match self {
            Change::Applied(key) => store.get(key.as_ref()),
            Change::Deleted(object) => Some(object),
        }
    }
}

type Driver = BoxFuture<'static, ()>;

impl<K: Cached> Cache<K> {
    /// The cache and the future that drives its watcher (nothing is requested until it
    /// is polled).
    fn new(client: &Client, namespace: Option<&str>, config: watcher::Config) -> (Self, Driver) {
        Self::from_events(watcher(api::<K>(client, namespace), config).default_backoff().modify(K::slim))
    }
}

impl Cache<NodeMeta> {
    /// Every node's metadata, annotations dropped: memory grows with the nodes' names
    /// and labels only (nodes carry large annotations the operator never reads).
    fn nodes(client: &Client) -> (Self, Driver) {
        let events = watcher(Api::<NodeMeta>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .modify(|node| node.metadata.annotations = None);
        Self::from_events(events)
    }

    /// The node's metadata, if the cache holds it.
    pub fn node(&self, name: &str) -> Option<Arc<NodeMeta>> {
        self.store.get(&ObjectRef::new(name))
    }
}

impl<K: Watched> Cache<K> {
    /// The cache fed by a stream of watch events.
    fn from_events(
        events: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    ) -> (Self, Driver) {
        let (store, mut writer) = reflector::store();
        let (changes, _) = broadcast::channel(BUFFER);
        let names = Arc::new(RwLock::new(Names::new()));
        let (reader, sender, index_names) = (store.clone(), changes.clone(), names.clone());
        let events = events.modify(strip::<K>);
        let driver = async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let event = match event {
                    Ok(event) => event,
                    Err(error) => {
                        tracing::debug!(%error, kind = %K::kind(&()), "watch error; the watcher retries");
                        continue;
                    }
                };
                // A relist replaces the store: objects deleted while the watch was down
                // vanish from it without a Delete event, yet their owners must hear of it.
                let before = matches!(event, watcher::Event::InitDone).then(|| reader.state());
                writer.apply_watcher_event(&event);
                index(&index_names, &event, &reader);
                if let Some(before) = before {
                    for gone in before.into_iter().filter(|o| reader.get(&ObjectRef::from(o.as_ref())).is_none()) {
                        let _ = sender.send(Change::Deleted(gone));
                    }
                }
                // Sending fails only while nobody subscribes, which loses nothing: a
                // subscriber starts from the whole store.
                match event {
                    watcher::Event::Apply(object) => {
                        let _ = sender.send(Change::Applied(key_of(&object)));
                    }
                    watcher::Event::Delete(object) => {
                        let _ = sender.send(Change::Deleted(Arc::new(object)));
                    }
                    // A (re)list is complete and now in the store: everything may have changed.
                    watcher::Event::InitDone => {
                        for object in reader.state() {
                            let _ = sender.send(Change::Applied(key_of(object.as_ref())));
                        }
                    }
                    watcher::Event::Init | watcher::Event::InitApply(_) => {}
                }
            }
        }
        .boxed();
        (Self { store, changes, names }, driver)
    }

    /// The reflector store (what kube-runtime's Controller looks objects up in).
    pub fn store(&self) -> &Store<K> {
        &self.store
    }

    /// Every object in the store, then every object that changes or is deleted.
    pub fn subscribe(&self) -> impl Stream<Item = Arc<K>> + Send + 'static {
        let changes = self.changes.subscribe();
        let pending: VecDeque<Arc<K>> = self.store.state().into();
        futures::stream::unfold(
            (changes, self.store.clone(), pending),
            |(mut changes, store, mut pending)| async move {
                loop {
                    if let Some(object) = pending.pop_front() {
                        return Some((object, (changes, store, pending)));
                    }
                    match changes.recv().await {
                        Ok(change) => {
                            if let Some(object) = change.resolve(&store) {
                                return Some((object, (changes, store, pending)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, kind = %K::kind(&()), "a subscriber fell behind; replaying the store");
                            pending = store.state().into();
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// The objects in `namespace` whose labels include all of `labels`, by name.
    pub fn list(&self, namespace: &str, labels: &BTreeMap<String, String>) -> Vec<Arc<K>> {
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        let Some(in_namespace) = names.get(namespace) else {
            return Vec::new();
        };
        in_namespace
            .iter()
            .filter_map(|name| self.get(namespace, name))
            .filter(|o| labels.iter().all(|(k, v)| o.labels().get(k).is_some_and(|have| have == v)))
            .collect()
    }
}

/// The object's name and namespace: what the fan-out buffer keeps of a change.
fn key_of<K: Watched>(object: &K) -> Arc<ObjectRef<K>> {
    let key = ObjectRef::new(&object.name_any());
    Arc::new(match object.meta().namespace.as_deref() {
        Some(namespace) => key.within(namespace),
        None => key,
    })
}

fn strip<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// What the operator reads of a Pod: its metadata, its node, its containers' command and
/// arguments (a PD member's initial cluster or join URLs), and of its status the phase,
/// conditions, start time and its containers' states (readiness, crash loops). The rest
/// — volumes, probes, environment, resources, affinity; images, IDs and addresses in the
/// status — is most of a Pod and is never read from the cache (Pods are compared by
/// their recorded intent and labels, and only ever patched on their metadata, never
/// written back whole).
fn slim_pod(pod: &mut Pod) {
    if let Some(spec) = pod.spec.take() {
        let containers = spec
            .containers
            .into_iter()
            .map(|c| Container { name: c.name, command: c.command, args: c.args, ..Default::default() })
            .collect();
        pod.spec = Some(PodSpec { node_name: spec.node_name, containers, ..Default::default() });
    }
    if let Some(status) = pod.status.take() {
        let containers = status.container_statuses.map(|statuses| {
            statuses
                .into_iter()
                .map(|c| ContainerStatus {
                    name: c.name,
                    state: c.state,
                    last_state: c.last_state,
                    ready: c.ready,
                    restart_count: c.restart_count,
                    started: c.started,
                    ..Default::default()
                })
                .collect()
        });
        pod.status = Some(PodStatus {
            phase: status.phase,
            conditions: status.conditions,
            start_time: status.start_time,
            reason: status.reason,
            message: status.message,
            container_statuses: containers,
            ..Default::default()
        });
    }
}

// ConfigMaps, Services, PodDisruptionBudgets and ControllerRevisions are written whole
// from what the operator renders and compared by the hash it records on them
// (`apply::apply`), or listed by name (revisions): only their metadata is read.

fn slim_config_map(config_map: &mut ConfigMap) {
    (config_map.data, config_map.binary_data) = (None, None);
}

fn slim_service(service: &mut Service) {
    (service.spec, service.status) = (None, None);
}

fn slim_pdb(pdb: &mut PodDisruptionBudget) {
    (pdb.spec, pdb.status) = (None, None);
}

fn slim_revision(revision: &mut ControllerRevision) {
    revision.data = None;
}

/// Every cache of the operator, built once and held by the [`Context`](crate::Context).
pub struct Caches {
    pub clusters: Cache<Cluster>,
    pub pd_groups: Cache<PDGroup>,
    pub pds: Cache<PD>,
    pub tikv_groups: Cache<TiKVGroup>,
    pub tikvs: Cache<TiKV>,
    pub pods: Cache<Pod>,
    pub config_maps: Cache<ConfigMap>,
    pub pvcs: Cache<PersistentVolumeClaim>,
    pub services: Cache<Service>,
    pub revisions: Cache<ControllerRevision>,
    pub pdbs: Cache<PodDisruptionBudget>,
    /// Every node (cluster-scoped, metadata only), whatever the watched namespace.
    pub nodes: Cache<NodeMeta>,
    drivers: Mutex<Vec<Driver>>,
}

/// The running watchers; dropping this stops them.
pub struct CacheTasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for CacheTasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

impl Caches {
    /// The caches over `namespace` (all namespaces with `None`); nothing is watched
    /// until [`Caches::start`].
    pub fn new(client: &Client, namespace: Option<&str>) -> Self {
        let mut drivers = Vec::new();
        fn cache<K: Cached>(
            drivers: &mut Vec<Driver>,
            client: &Client,
            namespace: Option<&str>,
            config: watcher::Config,
        ) -> Cache<K> {
            let (cache, driver) = Cache::new(client, namespace, config);
            drivers.push(driver);
            cache
        }
        let all = watcher::Config::default;
        let owned = || managed_config("");
        let (nodes, nodes_driver) = Cache::nodes(client);
        drivers.push(nodes_driver);
        Self {
            clusters: cache(&mut drivers, client, namespace, all()),
            pd_groups: cache(&mut drivers, client, namespace, all()),
            pds: cache(&mut drivers, client, namespace, all()),
            tikv_groups: cache(&mut drivers, client, namespace, all()),
            tikvs: cache(&mut drivers, client, namespace, all()),
            pods: cache(&mut drivers, client, namespace, owned()),
            config_maps: cache(&mut drivers, client, namespace, owned()),
            pvcs: cache(&mut drivers, client, namespace, owned()),
            services: cache(&mut drivers, client, namespace, owned()),
            revisions: cache(&mut drivers, client, namespace, owned()),
            pdbs: cache(&mut drivers, client, namespace, owned()),
            nodes,
            drivers: Mutex::new(drivers),
        }
    }

    /// Starts every watcher (the first call only; later calls start nothing).
    pub fn start(&self) -> CacheTasks {
        let drivers = std::mem::take(&mut *self.drivers.lock().unwrap_or_else(PoisonError::into_inner));
        CacheTasks(drivers.into_iter().map(tokio::spawn).collect())
    }

    /// Resolves once every cache has listed its kind once.
    pub async fn ready(&self) -> Result<(), reflector::store::WriterDropped> {
        futures::try_join!(
            self.clusters.store.wait_until_ready(),
            self.pd_groups.store.wait_until_ready(),
            self.pds.store.wait_until_ready(),
            self.tikv_groups.store.wait_until_ready(),
            self.tikvs.store.wait_until_ready(),
            self.pods.store.wait_until_ready(),
            self.config_maps.store.wait_until_ready(),
            self.pvcs.store.wait_until_ready(),
            self.services.store.wait_until_ready(),
            self.revisions.store.wait_until_ready(),
            self.pdbs.store.wait_until_ready(),
            self.nodes.store.wait_until_ready(),
        )?;
        Ok(())
    }

    /// The cached object, `None` if the cache does not hold it.
    pub fn get<K: Cached>(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        K::cache(self).get(namespace, name)
    }

    /// The cached objects of `namespace` carrying all of `labels`, by name.
    pub fn list<K: Cached>(&self, namespace: &str, labels: &BTreeMap<String, String>) -> Vec<Arc<K>> {
        K::cache(self).list(namespace, labels)
    }
}

macro_rules! cached {
    ($($kind:ty => $field:ident $(slimmed by $slim:path)?),+ $(,)?) => {
        $(impl Cached for $kind {
            fn cache(caches: &Caches) -> &Cache<Self> {
                &caches.$field
            }
            $(fn slim(&mut self) {
                $slim(self)
            })?
        })+
    };
}

cached! {
    Cluster => clusters,
    PDGroup => pd_groups,
    PD => pds,
    TiKVGroup => tikv_groups,
    TiKV => tikvs,
    Pod => pods slimmed by slim_pod,
    ConfigMap => config_maps slimmed by slim_config_map,
    PersistentVolumeClaim => pvcs,
    Service => services slimmed by slim_service,
    ControllerRevision => revisions slimmed by slim_revision,
    PodDisruptionBudget => pdbs slimmed by slim_pdb,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestEnv, sample_pd, sample_tikv};
    use kube::Api;
    use kube::api::{DeleteParams, PostParams};
    use tikv_operator_api::names::{LABEL_GROUP, LABEL_MANAGED_BY, MANAGED_BY_OPERATOR};

    fn config_map(name: &str, managed: bool) -> ConfigMap {
        let mut labels = BTreeMap::from([("app".to_string(), name.to_string())]);
        if managed {
            labels.insert(LABEL_MANAGED_BY.into(), MANAGED_BY_OPERATOR.into());
        }
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(labels),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn managed_fields_are_dropped_before_caching_and_passing_on() {
        let mut pd = sample_pd("pd-a", "pd");
        pd.metadata.managed_fields = Some(vec![Default::default()]);
        let events = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(pd.clone())),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(pd)),
        ]);
        let (cache, driver) = Cache::<PD>::from_events(events);
        let mut changes = Box::pin(cache.subscribe());
        driver.await;
        cache.store().wait_until_ready().await.unwrap();
        assert_eq!(cache.get("default", "pd-a").unwrap().metadata.managed_fields, None);
        assert_eq!(changes.next().await.unwrap().metadata.managed_fields, None, "at InitDone");
        assert_eq!(changes.next().await.unwrap().metadata.managed_fields, None, "on Apply");
    }

    #[tokio::test]
    async fn a_cached_pod_keeps_its_node_commands_metadata_and_the_status_the_operator_reads() {
        use crate::common::pod_status::{fixtures, pod_problem};
        let env = TestEnv::start().await;
        let tikv = env.create(sample_tikv("tikv-a", "tikv")).await;
        let mut pod = crate::tikv::render::pod(&crate::tikv::render::PodInputs {
            tikv: &tikv,
            tls: false,
            pd_url: "http://pd",
            tools_image: "tools",
        })
        .unwrap();
        pod.spec.as_mut().unwrap().node_name = Some("node-1".into());
        let created = env.create(pod).await;
        assert!(created.spec.as_ref().unwrap().volumes.is_some(), "the rendered pod has volumes");
        env.synced().await;

        let cached: Arc<Pod> = env.ctx.caches.get("default", &created.name_any()).unwrap();
        let spec = cached.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("node-1"));
        let container = &spec.containers[0];
        assert_eq!(container.command, created.spec.as_ref().unwrap().containers[0].command);
        assert_eq!((container.image.as_ref(), spec.volumes.as_ref(), spec.affinity.as_ref()), (None, None, None));
        assert_eq!(cached.metadata.labels, created.metadata.labels);
        assert_eq!(cached.metadata.annotations, created.metadata.annotations);
        assert_eq!(cached.metadata.uid, created.metadata.uid);

        // The status: what readiness and the crash-loop report read stays, the rest goes.
        let mut looping = fixtures::crash_looping("CrashLoopBackOff", 1, Some("bind: address in use"));
        let status = looping.status.as_mut().unwrap();
        status.pod_ip = Some("10.0.0.1".into());
        status.container_statuses.as_mut().unwrap()[0].image = "pingcap/pd:v8.5.0".into();
        let problem = pod_problem(&looping);
        slim_pod(&mut looping);
        assert_eq!(pod_problem(&looping), problem, "the same crash loop is reported");
        let status = looping.status.as_ref().unwrap();
        assert_eq!((status.pod_ip.as_ref(), status.container_statuses.as_ref().unwrap()[0].image.as_str()), (None, ""));
        assert_eq!(status.container_statuses.as_ref().unwrap()[0].restart_count, 4);
        let mut unschedulable = fixtures::unschedulable();
        let before = pod_problem(&unschedulable);
        slim_pod(&mut unschedulable);
        assert_eq!(pod_problem(&unschedulable), before, "and the scheduler's reason");
    }

    #[tokio::test]
    async fn kinds_compared_by_their_recorded_hash_are_cached_by_their_metadata() {
        use k8s_openapi::api::core::v1::ServiceSpec;
        let env = TestEnv::start().await;
        let mut ours = config_map("ours", true);
        ours.data = Some(BTreeMap::from([("config.toml".to_string(), "x = 1".to_string())]));
        ours.metadata.annotations = Some(BTreeMap::from([("hash".to_string(), "abc".to_string())]));
        let created = env.create(ours).await;
        let mut service = Service {
            metadata: config_map("svc", true).metadata,
            spec: Some(ServiceSpec { cluster_ip: Some("None".into()), ..Default::default() }),
            ..Default::default()
        };
        service.metadata.name = Some("svc".into());
        env.create(service).await;
        env.synced().await;

        let cached: Arc<ConfigMap> = env.ctx.caches.get("default", "ours").unwrap();
        assert_eq!((cached.data.as_ref(), cached.binary_data.as_ref()), (None, None));
        assert_eq!(cached.metadata.annotations, created.metadata.annotations, "the recorded hash stays");
        assert_eq!(cached.metadata.resource_version, created.metadata.resource_version);
        let cached: Arc<Service> = env.ctx.caches.get("default", "svc").unwrap();
        assert_eq!((cached.spec.as_ref(), cached.status.as_ref()), (None, None));

        let mut pdb = PodDisruptionBudget {
            spec: Some(Default::default()),
            status: Some(Default::default()),
            ..Default::default()
        };
        slim_pdb(&mut pdb);
        assert_eq!((pdb.spec, pdb.status), (None, None));
        let mut revision = ControllerRevision {
            data: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(serde_json::json!({"a": 1}))),
            revision: 3,
            ..Default::default()
        };
        slim_revision(&mut revision);
        assert_eq!((revision.data, revision.revision), (None, 3), "the revision number is what is read");
    }

    #[tokio::test]
    async fn a_change_is_passed_on_as_the_stores_own_copy() {
        let events = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(sample_pd("pd-a", "pd"))),
        ]);
        let (cache, driver) = Cache::<PD>::from_events(events);
        let mut changes = Box::pin(cache.subscribe());
        driver.await;
        let passed = changes.next().await.unwrap();
        let stored = cache.get("default", "pd-a").unwrap();
        assert!(Arc::ptr_eq(&passed, &stored), "one copy of the object, not two");
    }

    #[tokio::test]
    async fn a_superseded_version_is_not_kept_alive_by_the_fan_out() {
        let (events, feed) = futures::channel::mpsc::unbounded();
        let (cache, driver) = Cache::<PD>::from_events(feed);
        let mut late = Box::pin(cache.subscribe());
        let driver = tokio::spawn(driver);
        let mut pd = sample_pd("pd-a", "pd");
        let mut applied = |version: &str| {
            pd.metadata.resource_version = Some(version.into());
            Ok(watcher::Event::Apply(pd.clone()))
        };
        let wait_for = |version: &'static str| {
            let cache = &cache;
            async move {
                let stored = async {
                    while cache.get("default", "pd-a").and_then(|p| p.metadata.resource_version.clone()).as_deref()
                        != Some(version)
                    {
                        tokio::task::yield_now().await;
                    }
                };
                let waited = tokio::time::timeout(std::time::Duration::from_secs(10), stored).await;
                assert!(waited.is_ok(), "the store never held version {version}");
            }
        };
        for event in [Ok(watcher::Event::Init), Ok(watcher::Event::InitDone), applied("1")] {
            events.unbounded_send(event).unwrap();
        }
        wait_for("1").await;
        let first = Arc::downgrade(&cache.get("default", "pd-a").unwrap());
        events.unbounded_send(applied("2")).unwrap();
        wait_for("2").await;
        assert!(first.upgrade().is_none(), "version 1 is freed although a subscriber has not read its change");

        let seen = late.next().await.unwrap();
        assert_eq!(seen.metadata.resource_version.as_deref(), Some("2"), "the change reads the current copy");
        drop(events);
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn a_change_to_an_object_deleted_since_is_skipped_and_the_deletion_passed_on() {
        let events = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitDone),
            Ok(watcher::Event::Apply(sample_pd("pd-a", "pd"))),
            Ok(watcher::Event::Delete(sample_pd("pd-a", "pd"))),
            Ok(watcher::Event::Apply(sample_pd("pd-b", "pd"))),
        ]);
        let (cache, driver) = Cache::<PD>::from_events(events);
        let mut changes = Box::pin(cache.subscribe());
        driver.await;
        let deleted = changes.next().await.unwrap();
        assert_eq!(deleted.name_any(), "pd-a", "the deletion, once");
        assert!(cache.get("default", "pd-a").is_none());
        assert_eq!(changes.next().await.unwrap().name_any(), "pd-b");
    }

    #[tokio::test]
    async fn an_object_deleted_while_the_watch_was_down_is_passed_on_at_the_relist() {
        let (a, b) = (sample_pd("pd-a", "pd"), sample_pd("pd-b", "pd"));
        let events = futures::stream::iter([
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(a.clone())),
            Ok(watcher::Event::InitApply(b.clone())),
            Ok(watcher::Event::InitDone),
            // The watch broke; the relist no longer finds pd-b.
            Ok(watcher::Event::Init),
            Ok(watcher::Event::InitApply(a)),
            Ok(watcher::Event::InitDone),
        ]);
        let (cache, driver) = Cache::<PD>::from_events(events);
        let mut changes = Box::pin(cache.subscribe());
        driver.await;
        let mut seen = Vec::new();
        for _ in 0..3 {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), changes.next()).await;
            seen.push(next.unwrap().unwrap().name_any());
        }
        // Read after the relist: the first list's pd-b is skipped (it is gone from the
        // store), its deletion is not.
        assert_eq!(seen, ["pd-a", "pd-b", "pd-a"], "the first list, pd-b gone, then the relist");
        assert!(cache.get("default", "pd-b").is_none());
        let more = tokio::time::timeout(std::time::Duration::from_millis(50), changes.next()).await;
        assert!(more.is_err(), "nothing else: {more:?}");
    }

    #[tokio::test]
    async fn objects_are_read_by_name_and_by_labels() {
        let env = TestEnv::start().await;
        let created = env.create(sample_pd("pd-a", "pd")).await;
        env.create(sample_pd("pd-b", "other")).await;
        env.create(sample_tikv("tikv-a", "pd")).await;

        let pd: Arc<PD> = env.ctx.caches.get("default", "pd-a").unwrap();
        assert_eq!(pd.resource_version(), created.resource_version());
        assert!(env.ctx.caches.get::<PD>("default", "pd-c").is_none());
        assert!(env.ctx.caches.get::<PD>("elsewhere", "pd-a").is_none(), "namespaced");

        let of_group = BTreeMap::from([(LABEL_GROUP.to_string(), "pd".to_string())]);
        let names: Vec<String> = env.ctx.caches.list::<PD>("default", &of_group).iter().map(|p| p.name_any()).collect();
        assert_eq!(names, ["pd-a"], "other groups and other kinds are not listed");
        assert_eq!(env.ctx.caches.list::<PD>("default", &BTreeMap::new()).len(), 2);
        assert_eq!(env.ctx.caches.list::<TiKV>("default", &of_group).len(), 1);
        assert!(env.ctx.caches.list::<PD>("elsewhere", &BTreeMap::new()).is_empty());
    }

    #[tokio::test]
    async fn a_list_follows_additions_deletions_and_relists_by_namespace() {
        let in_namespace = |name: &str, namespace: &str| {
            let mut pd = sample_pd(name, "pd");
            pd.metadata.namespace = Some(namespace.into());
            pd
        };
        let listed = |cache: &Cache<PD>, namespace: &str| -> Vec<String> {
            cache.list(namespace, &BTreeMap::new()).iter().map(|p| p.name_any()).collect()
        };
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let (cache, driver) = Cache::<PD>::from_events(rx);
        let mut changes = Box::pin(cache.subscribe());
        let driver = tokio::spawn(driver);
        let send = |event| tx.unbounded_send(Ok(event)).unwrap();
        // A change is passed on once the store and the names hold it.
        let mut seen = async |name: &str| loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(5), changes.next()).await;
            if next.unwrap().unwrap().name_any() == name {
                break;
            }
        };
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(in_namespace("pd-b", "a")));
        send(watcher::Event::InitApply(in_namespace("pd-c", "b")));
        send(watcher::Event::InitDone);
        send(watcher::Event::Apply(in_namespace("pd-a", "a")));
        seen("pd-a").await;
        assert_eq!(listed(&cache, "a"), ["pd-a", "pd-b"], "by name");
        assert_eq!(listed(&cache, "b"), ["pd-c"]);

        send(watcher::Event::Delete(in_namespace("pd-b", "a")));
        seen("pd-b").await;
        assert_eq!(listed(&cache, "a"), ["pd-a"]);

        // The watch broke; the relist finds pd-c moved on and a new pd-d.
        send(watcher::Event::Init);
        send(watcher::Event::InitApply(in_namespace("pd-d", "a")));
        send(watcher::Event::InitDone);
        seen("pd-d").await;
        assert_eq!(listed(&cache, "a"), ["pd-d"], "what the relist found, nothing older");
        assert!(listed(&cache, "b").is_empty());
        drop(tx);
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn owned_kinds_are_cached_only_with_the_managed_by_label() {
        let env = TestEnv::start().await;
        let api: Api<ConfigMap> = Api::namespaced(env.client.clone(), "default");
        api.create(&PostParams::default(), &config_map("ours", true)).await.unwrap();
        api.create(&PostParams::default(), &config_map("users", false)).await.unwrap();
        env.synced().await;
        assert!(env.ctx.caches.get::<ConfigMap>("default", "ours").is_some());
        assert!(env.ctx.caches.get::<ConfigMap>("default", "users").is_none());
    }

    #[tokio::test]
    async fn caches_are_ready_only_once_started_and_listed() {
        let env = TestEnv::start().await;
        env.create(sample_pd("pd-a", "pd")).await;
        let caches = Caches::new(&env.client, Some("default"));
        let not_started = tokio::time::timeout(std::time::Duration::from_millis(50), caches.ready()).await;
        assert!(not_started.is_err(), "not ready before started");
        assert!(caches.get::<PD>("default", "pd-a").is_none());
        let _tasks = caches.start();
        caches.ready().await.unwrap();
        assert!(caches.get::<PD>("default", "pd-a").is_some(), "ready means listed");
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_store_then_changes_and_deletions() {
        let env = TestEnv::start().await;
        env.create(sample_pd("pd-a", "pd")).await;
        let mut changes = Box::pin(env.ctx.caches.pds.subscribe());
        assert_eq!(changes.next().await.unwrap().name_any(), "pd-a", "what the store holds first");

        env.create(sample_pd("pd-b", "pd")).await;
        assert_eq!(changes.next().await.unwrap().name_any(), "pd-b");
        let api: Api<PD> = Api::namespaced(env.client.clone(), "default");
        api.delete("pd-a", &DeleteParams::default()).await.unwrap();
        let deleted = changes.next().await.unwrap();
        assert_eq!(deleted.name_any(), "pd-a", "a deletion is passed on (it triggers the owner)");
        env.synced().await;
        assert!(env.ctx.caches.get::<PD>("default", "pd-a").is_none());
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_gets_the_whole_store_again() {
        let env = TestEnv::start().await;
        let mut changes = Box::pin(env.ctx.caches.pds.subscribe());
        // Overflow the buffer while nobody reads.
        for _ in 0..=BUFFER {
            let _ = env.ctx.caches.pds.changes.send(Change::Deleted(Arc::new(sample_pd("noise", "pd"))));
        }
        env.create(sample_pd("pd-a", "pd")).await;
        let replayed = changes.next().await.unwrap();
        assert_eq!(replayed.name_any(), "pd-a", "the lag is answered with the store, not lost");
    }
}
