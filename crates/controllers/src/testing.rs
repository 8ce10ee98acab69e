//! Test support: kube-sim with our CRDs, a context over it, sample objects, and an
//! in-memory PD behind a real PD cache.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;

use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tikv_operator_api::names::{self, LABEL_GROUP};
use tikv_operator_api::{Cluster, PD, PDGroup, TiKV, TiKVGroup};
use tikv_operator_pd::{
    CacheConfig, Member, MemberHealth, Members, NodeState, NotEnoughStoresReason, PdApi, PdCache, PdError, PdWrite,
    ReplicationConfig, StateName, Store, StoreState, Subject,
};

use crate::cache::{CacheTasks, Cached};
use crate::common::{Pass, PassState};
use crate::context::{Context, FixedClock, OperatorConfig};
use crate::metrics::Metrics;
use crate::pd_registry::PdHandle;

/// The fixed "now" of unit tests.
pub fn t0() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// A context whose client points nowhere: for tasks that make no API call.
pub fn offline_context() -> Arc<Context> {
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = Client::try_from(config).unwrap();
    Arc::new(Context::new(
        client,
        OperatorConfig::default(),
        Arc::new(FixedClock::new(t0())),
        Arc::new(Metrics::default()),
    ))
}

/// kube-sim with our CRDs installed, and a context over it whose watch caches run (tasks
/// read through them, as in the operator).
pub struct TestEnv {
    pub sim: kube_sim::KubeSim,
    pub client: Client,
    pub ctx: Arc<Context>,
    /// The operator's clock (`ctx.now()`), moved only by the test.
    pub clock: Arc<FixedClock>,
    _watchers: CacheTasks,
}

impl TestEnv {
    pub async fn start() -> Self {
        tikv_operator_pd::install_default_crypto_provider();
        let sim = kube_sim::KubeSim::start(kube_sim::Config::default()).await.unwrap();
        let client = Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap();
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in tikv_operator_api::crds::all() {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
        let clock = Arc::new(FixedClock::new(t0()));
        let ctx = Arc::new(Context::new(
            client.clone(),
            OperatorConfig::default(),
            clock.clone(),
            Arc::new(Metrics::default()),
        ));
        let watchers = ctx.caches.start();
        ctx.caches.ready().await.unwrap();
        sim.requests().reset();
        Self { sim, client, ctx, clock, _watchers: watchers }
    }

    /// Runs one pass once the caches hold everything written so far (by the test or by
    /// an earlier pass), as the operator's next pass would see it after the watch event.
    pub async fn run<S: Send>(
        &self,
        runner: &tikv_operator_task::Runner<S>,
        key: &str,
        state: &mut S,
    ) -> tikv_operator_task::Report {
        self.synced().await;
        let report = runner.run(key, state).await;
        // Events go out in the background: a test sees those of its pass, and the next
        // pass's requests are its own.
        self.ctx.flush_events().await;
        report
    }

    /// Requests other than watches (what a pass with nothing to do must not make).
    pub fn requests(&self) -> Vec<String> {
        self.sim
            .requests()
            .snapshot()
            .into_iter()
            .filter(|r| r.verb != kube_sim::Verb::Watch)
            .map(|r| format!("{} {}/{}", r.verb, r.resource_path(), r.name.unwrap_or_default()))
            .collect()
    }

    /// Waits until every watch cache holds exactly what the API server holds (by name
    /// and resourceVersion): after a test writes through a raw `Api`, before a task
    /// reads. Reads the server in-process, so the request log does not see it.
    pub async fn synced(&self) {
        let started = std::time::Instant::now();
        loop {
            let stale = self.stale_caches();
            if stale.is_empty() {
                return;
            }
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "caches never caught up: {stale:?}");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    fn stale_caches(&self) -> Vec<String> {
        use k8s_openapi::api::apps::v1::ControllerRevision;
        use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
        let mut stale = Vec::new();
        self.compare::<Cluster>(false, &mut stale);
        self.compare::<PDGroup>(false, &mut stale);
        self.compare::<PD>(false, &mut stale);
        self.compare::<TiKVGroup>(false, &mut stale);
        self.compare::<TiKV>(false, &mut stale);
        self.compare::<Pod>(true, &mut stale);
        self.compare::<ConfigMap>(true, &mut stale);
        self.compare::<PersistentVolumeClaim>(true, &mut stale);
        self.compare::<Service>(true, &mut stale);
        self.compare::<ControllerRevision>(true, &mut stale);
        self.compare::<k8s_openapi::api::policy::v1::PodDisruptionBudget>(true, &mut stale);
        stale
    }

    fn compare<K: Cached>(&self, owned: bool, stale: &mut Vec<String>) {
        let versions = |items: Vec<(String, String)>| items.into_iter().collect::<BTreeMap<String, String>>();
        let cached = versions(
            K::cache(&self.ctx.caches)
                .list("default", &BTreeMap::new())
                .iter()
                .filter(|o| !owned || o.labels().get(names::LABEL_MANAGED_BY).is_some())
                .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
                .collect(),
        );
        let store = self.sim.store();
        let Some(info) = store.resource(&K::group(&()), &K::version(&()), &K::plural(&())) else {
            return stale.push(format!("{} is not served", K::plural(&())));
        };
        let mut options = kube_sim::ListOptions::default();
        if owned {
            options = options.labels(&format!("{}={}", names::LABEL_MANAGED_BY, names::MANAGED_BY_OPERATOR));
        }
        let list = store.list(&info, Some("default"), &options).unwrap();
        let server = versions(
            list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    let meta = &o["metadata"];
                    (meta["name"].as_str().unwrap().to_owned(), meta["resourceVersion"].as_str().unwrap().to_owned())
                })
                .collect(),
        );
        if cached != server {
            stale.push(format!("{}: cached {cached:?}, server {server:?}", K::plural(&())));
        }
    }

    /// Requests that changed something (create, update, patch, delete), Events excluded.
    pub fn writes(&self) -> usize {
        use kube_sim::Verb::*;
        self.sim
            .requests()
            .count(|r| matches!(r.verb, Create | Update | Patch | Delete | DeleteCollection) && r.resource != "events")
    }

    /// The writes, as `verb resource/name`, Events excluded.
    pub fn write_log(&self) -> Vec<String> {
        use kube_sim::Verb::*;
        self.sim
            .requests()
            .snapshot()
            .into_iter()
            .filter(|r| matches!(r.verb, Create | Update | Patch | Delete | DeleteCollection) && r.resource != "events")
            .map(|r| format!("{} {}/{}", r.verb, r.resource_path(), r.name.unwrap_or_default()))
            .collect()
    }

    pub async fn create<K>(&self, object: K) -> K
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + Serialize
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), "default");
        let created = api.create(&PostParams::default(), &object).await.unwrap();
        self.synced().await;
        self.sim.requests().reset();
        created
    }

    pub async fn get<K>(&self, name: &str) -> K
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.client.clone(), "default").get(name).await.unwrap()
    }

    pub async fn list<K>(&self) -> Vec<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        Api::<K>::namespaced(self.client.clone(), "default").list(&Default::default()).await.unwrap().items
    }

    /// The names of the objects of kind `K`, sorted.
    pub async fn names<K>(&self) -> Vec<String>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
    {
        let mut names: Vec<String> = self.list::<K>().await.iter().map(ResourceExt::name_any).collect();
        names.sort();
        names
    }
}

impl TestEnv {
    /// The Events recorded, oldest first, as `(type, reason, message)`.
    pub async fn events(&self) -> Vec<(String, String, String)> {
        self.ctx.flush_events().await;
        let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), "default");
        let mut events = api.list(&Default::default()).await.unwrap().items;
        events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        events
            .into_iter()
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }

    /// Requests that recorded an Event (a new one, or a repeat counted on an old one).
    pub async fn event_writes(&self) -> usize {
        use kube_sim::Verb::*;
        self.ctx.flush_events().await;
        self.sim.requests().count(|r| matches!(r.verb, Create | Update | Patch) && r.resource == "events")
    }
}

/// A state with only a [`Pass`] over a PD instance, for the generic tasks.
pub struct PdOnly {
    pub pass: Pass<PD>,
}

impl PdOnly {
    pub fn new(env: &TestEnv, name: &str) -> Self {
        Self { pass: Pass::new(env.ctx.clone(), "default", name) }
    }
}

impl PassState for PdOnly {
    type Object = PD;
    fn pass(&self) -> &Pass<PD> {
        &self.pass
    }
    fn pass_mut(&mut self) -> &mut Pass<PD> {
        &mut self.pass
    }
}

/// A PDGroup controller's pass over `group`, as if loaded, with `cluster` as its Cluster.
pub fn pd_group_pass(env: &TestEnv, group: PDGroup, cluster: Option<Cluster>) -> crate::pdgroup::state::PdGroupState {
    let mut s = crate::pdgroup::state::PdGroupState::new(env.ctx.clone(), "default", &group.name_any());
    s.pass = s.pass.with_object(group);
    s.pass.cluster = cluster;
    s
}

fn from_json<T: DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).unwrap()
}

pub fn sample_cluster(name: &str) -> Cluster {
    let mut cluster: Cluster = from_json(&format!(
        r#"{{"apiVersion":"core.tikv.org/v1alpha1","kind":"Cluster","metadata":{{"name":"{name}","namespace":"default"}},"spec":{{}}}}"#
    ));
    cluster.metadata.generation = Some(1);
    cluster
}

pub fn sample_pd_group(name: &str, replicas: i32) -> PDGroup {
    let mut group: PDGroup = from_json(&format!(
        r#"{{"apiVersion":"core.tikv.org/v1alpha1","kind":"PDGroup","metadata":{{"name":"{name}","namespace":"default"}},
        "spec":{{"cluster":{{"name":"basic"}},"replicas":{replicas},
        "schedulePolicies":[{{"type":"EvenlySpread","evenlySpread":{{"topologies":[
            {{"topology":{{"topology.kubernetes.io/zone":"zone-a"}}}},
            {{"topology":{{"topology.kubernetes.io/zone":"zone-b"}}}},
            {{"topology":{{"topology.kubernetes.io/zone":"zone-c"}}}}]}}}}],
        "template":{{"spec":{{"version":"v8.5.0","resources":{{"cpu":"1","memory":"2Gi"}},
            "config":"[replication]\nmax-replicas = 3\n","volumes":[{{"name":"data","storage":"10Gi"}}]}}}}}}}}"#
    ));
    group.metadata.generation = Some(1);
    group.metadata.uid = Some(format!("uid-{name}"));
    group
}

pub fn sample_tikv_group(name: &str, replicas: i32) -> TiKVGroup {
    let mut group: TiKVGroup = from_json(&format!(
        r#"{{"apiVersion":"core.tikv.org/v1alpha1","kind":"TiKVGroup","metadata":{{"name":"{name}","namespace":"default"}},
        "spec":{{"cluster":{{"name":"basic"}},"replicas":{replicas},
        "schedulePolicies":[{{"type":"EvenlySpread","evenlySpread":{{"topologies":[
            {{"topology":{{"topology.kubernetes.io/zone":"zone-a"}}}},
            {{"topology":{{"topology.kubernetes.io/zone":"zone-b"}}}},
            {{"topology":{{"topology.kubernetes.io/zone":"zone-c"}}}}]}}}}],
        "template":{{"spec":{{"version":"v8.5.0","resources":{{"cpu":"2","memory":"4Gi"}},
            "config":"[storage]\nreserve-space = \"1GB\"\n","volumes":[{{"name":"data","storage":"100Gi"}}]}}}}}}}}"#
    ));
    group.metadata.generation = Some(1);
    group.metadata.uid = Some(format!("uid-{name}"));
    group
}

fn instance_labels(group: &str, component: &str, instance: &str) -> BTreeMap<String, String> {
    [
        (names::LABEL_MANAGED_BY, names::MANAGED_BY_OPERATOR),
        (names::LABEL_CLUSTER, "basic"),
        (names::LABEL_COMPONENT, component),
        (LABEL_GROUP, group),
        (names::LABEL_INSTANCE, instance),
        (names::LABEL_INSTANCE_REVISION_HASH, "rev-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A PD instance of group `group` in zone-a, as the PDGroup would create it.
pub fn sample_pd(name: &str, group: &str) -> PD {
    use crate::common::Group;
    let mut pd = sample_pd_group(group, 3).instance_from_template(name, Some(zone("zone-a")));
    pd.metadata.namespace = Some("default".into());
    pd.metadata.labels = Some(instance_labels(group, names::COMPONENT_PD, name));
    pd.metadata.generation = Some(1);
    pd.metadata.uid = Some(format!("uid-{name}"));
    pd
}

/// A TiKV instance of group `group` in zone-a.
pub fn sample_tikv(name: &str, group: &str) -> TiKV {
    use crate::common::Group;
    let mut tikv = sample_tikv_group(group, 3).instance_from_template(name, Some(zone("zone-a")));
    tikv.metadata.namespace = Some("default".into());
    tikv.metadata.labels = Some(instance_labels(group, names::COMPONENT_TIKV, name));
    tikv.metadata.generation = Some(1);
    tikv.metadata.uid = Some(format!("uid-{name}"));
    tikv
}

pub fn zone(zone: &str) -> BTreeMap<String, String> {
    [("topology.kubernetes.io/zone".to_string(), zone.to_string())].into()
}

#[derive(Default)]
struct FakeState {
    cluster_id: u64,
    bootstrapped: bool,
    stores: BTreeMap<u64, Store>,
    members: Vec<Member>,
    leader: Option<String>,
    evicting: BTreeSet<u64>,
    replication: ReplicationConfig,
    /// While set, every read (every poll of the cache) answers this error.
    read_error: Option<PdError>,
    /// Every write, in order, as `method(arguments)`.
    writes: Vec<String>,
    /// Errors to answer the next calls of a write method with, by method name.
    failures: HashMap<&'static str, VecDeque<PdError>>,
    /// What the region checks answer.
    region_health: tikv_operator_pd::RegionHealth,
    /// Running configs of stores by status URL, and PD's.
    store_configs: HashMap<String, serde_json::Value>,
    pd_config: serde_json::Value,
    /// Dotted keys the online config APIs refuse.
    refused_keys: BTreeSet<String>,
    /// Leaders stores count on their own metrics, by status URL (0 when not set).
    metrics_leaders: HashMap<String, u64>,
    /// Members PD's `/health` reports unhealthy.
    unhealthy: BTreeSet<String>,
    /// What `GET /regions/store/{id}` answers, by store.
    store_regions: HashMap<u64, Vec<tikv_operator_pd::RegionVoters>>,
    /// Uncached `GET /schedulers` reads (timing profile v2).
    scheduler_reads: usize,
    /// The certificate each instance serves, by base URL (a handshake elsewhere fails).
    serving: HashMap<String, tikv_operator_pd::CertificateSummary>,
    /// Every serving-certificate check, as the URL asked, in order.
    certificate_checks: Vec<String>,
}

/// An in-memory PD for the PD cache, and the recording PD writer: every write is logged
/// in order ([`FakePd::write_log`]), answered as PD would (a store taken offline becomes
/// Removing, a cancel brings it back, unknown stores and members are not found), or with
/// an error scripted by [`FakePd::fail_next`].
#[derive(Clone, Default)]
pub struct FakePd(Arc<Mutex<FakeState>>);

impl FakePd {
    pub const CLUSTER_ID: u64 = 7_401_234_567_890_123_456;

    /// A PD cluster with no members listed and no stores yet, `max-replicas` 3, no
    /// location labels, placement rules on.
    pub fn bootstrapped() -> Self {
        let fake = FakePd::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.cluster_id = Self::CLUSTER_ID;
            s.bootstrapped = true;
            s.replication =
                ReplicationConfig { max_replicas: 3, enable_placement_rules: true, ..ReplicationConfig::default() };
        }
        fake
    }

    /// From now on every read fails as when PD has lost its leader (`true`), or answers
    /// again (`false`). Writes are unaffected (script them with [`FakePd::fail_next`]).
    pub fn unreachable(&self, unreachable: bool) -> &Self {
        self.0.lock().unwrap().read_error =
            unreachable.then(|| PdError::NoLeader { status: 503, message: "no leader".into() });
        self
    }

    fn read<T>(&self, f: impl FnOnce(&FakeState) -> Result<T, PdError>) -> Result<T, PdError> {
        let s = self.0.lock().unwrap();
        match &s.read_error {
            Some(error) => Err(error.clone()),
            None => f(&s),
        }
    }

    /// A store already in the evict-leader scheduler (added by someone, say an SRE).
    pub fn evicting_leaders(self, store_id: u64) -> Self {
        self.0.lock().unwrap().evicting.insert(store_id);
        self
    }

    pub fn replication(self, max_replicas: u64, location_labels: &[&str]) -> Self {
        {
            let mut s = self.0.lock().unwrap();
            s.replication.max_replicas = max_replicas;
            s.replication.location_labels = location_labels.iter().map(|l| l.to_string()).collect();
        }
        self
    }

    pub fn member(self, name: &str, id: u64) -> Self {
        self.0.lock().unwrap().members.push(Member {
            name: name.into(),
            member_id: id,
            client_urls: vec![format!("http://{name}:2379")],
            ..Member::default()
        });
        self
    }

    /// The peer URLs PD stores for member `name`.
    pub fn member_peer_urls(&self, name: &str, urls: &[&str]) -> &Self {
        if let Some(m) = self.0.lock().unwrap().members.iter_mut().find(|m| m.name == name) {
            m.peer_urls = urls.iter().map(|u| u.to_string()).collect();
        }
        self
    }

    /// PD's `/health` reports the member unhealthy (`true`) or healthy again.
    pub fn member_unhealthy(&self, name: &str, unhealthy: bool) -> &Self {
        let mut s = self.0.lock().unwrap();
        if unhealthy {
            s.unhealthy.insert(name.to_string());
        } else {
            s.unhealthy.remove(name);
        }
        drop(s);
        self
    }

    pub fn leader(self, name: &str) -> Self {
        self.0.lock().unwrap().leader = Some(name.into());
        self
    }

    pub fn store(self, id: u64, address: &str, node_state: NodeState) -> Self {
        self.0.lock().unwrap().stores.insert(id, store(id, address, node_state));
        self
    }

    /// Leaders and regions on a store.
    pub fn counts(self, id: u64, leaders: u64, regions: u64) -> Self {
        self.set_store(id, |st| (st.leader_count, st.region_count) = (leaders, regions));
        self
    }

    /// Changes a store as PD would see it change (heartbeats, PD's scheduling).
    pub fn set_store(&self, id: u64, change: impl FnOnce(&mut Store)) -> &Self {
        if let Some(store) = self.0.lock().unwrap().stores.get_mut(&id) {
            change(store);
        }
        self
    }

    /// Moves a store to `node_state` (e.g. PD finishing an offline: Removed).
    pub fn set_node_state(&self, id: u64, node_state: NodeState) -> &Self {
        self.set_store(id, |store| set_node_state(store, node_state))
    }

    /// PD forgets a store (a Tombstone purged by `remove-tombstone`).
    pub fn purge_store(&self, id: u64) -> &Self {
        self.0.lock().unwrap().stores.remove(&id);
        self
    }

    pub fn handle(&self) -> PdHandle {
        PdHandle::new(PdCache::spawn(self.clone(), CacheConfig::default()), Arc::new(self.clone()))
    }

    /// The PD writes made so far, oldest first, as `method(arguments)`: e.g.
    /// `delete_store(4)`, `delete_member_by_name(pd-1)`. Failed calls are logged too.
    pub fn write_log(&self) -> Vec<String> {
        self.0.lock().unwrap().writes.clone()
    }

    /// The next call of `method` (its [`PdWrite`] name) answers `error` and changes
    /// nothing; queued errors answer successive calls in order.
    pub fn fail_next(&self, method: &'static str, error: PdError) -> &Self {
        self.0.lock().unwrap().failures.entry(method).or_default().push_back(error);
        self
    }

    /// What PD's region checks answer from now on (a failure is scripted with
    /// [`FakePd::fail_next`]`("region_health", ..)`).
    pub fn set_region_health(&self, health: tikv_operator_pd::RegionHealth) -> &Self {
        self.0.lock().unwrap().region_health = health;
        self
    }

    /// The regions `GET /regions/store/{id}` lists for `store` (a failure is scripted
    /// with [`FakePd::fail_next`]`("store_regions", ..)`).
    pub fn set_store_regions(&self, store: u64, regions: Vec<tikv_operator_pd::RegionVoters>) -> &Self {
        self.0.lock().unwrap().store_regions.insert(store, regions);
        self
    }

    /// The running config a store's status server shows.
    pub fn store_config(self, status_url: &str, config: serde_json::Value) -> Self {
        self.0.lock().unwrap().store_configs.insert(status_url.to_string(), config);
        self
    }

    /// PD's running config.
    pub fn pd_config(self, config: serde_json::Value) -> Self {
        self.0.lock().unwrap().pd_config = config;
        self
    }

    /// Keys TiKV's and PD's online config APIs refuse (they cannot change online).
    pub fn refuse_online(self, key: &str) -> Self {
        self.0.lock().unwrap().refused_keys.insert(key.to_string());
        self
    }

    /// The leader count a store's own `/metrics` shows.
    pub fn metrics_leaders(&self, status_url: &str, leaders: u64) -> &Self {
        self.0.lock().unwrap().metrics_leaders.insert(status_url.to_string(), leaders);
        self
    }

    /// A store's running config now, by status URL.
    pub fn running_store_config(&self, status_url: &str) -> Option<serde_json::Value> {
        self.0.lock().unwrap().store_configs.get(status_url).cloned()
    }

    /// Every store's last heartbeat at `at`.
    pub fn heartbeats(self, at: Timestamp) -> Self {
        self.0.lock().unwrap().stores.values_mut().for_each(|st| st.last_heartbeat = Some(at));
        self
    }

    /// PD elects another leader (not a transfer the operator asked for: nothing logged).
    pub fn set_leader(&self, name: &str) -> &Self {
        self.0.lock().unwrap().leader = Some(name.into());
        self
    }

    /// Forgets the writes logged so far.
    pub fn clear_write_log(&self) {
        self.0.lock().unwrap().writes.clear();
    }

    /// The stores in PD's evict-leader scheduler.
    pub fn evicting(&self) -> BTreeSet<u64> {
        self.0.lock().unwrap().evicting.clone()
    }

    pub fn store_state(&self, id: u64) -> Option<NodeState> {
        self.0.lock().unwrap().stores.get(&id).map(|s| s.node_state)
    }

    /// Logs the call; answers a scripted error, or applies `effect` to the state.
    fn write<T: Send + 'static>(
        &self,
        method: &'static str,
        arguments: String,
        effect: impl FnOnce(&mut FakeState) -> Result<T, PdError>,
    ) -> BoxFuture<'static, Result<T, PdError>> {
        let result = {
            let mut s = self.0.lock().unwrap();
            s.writes.push(format!("{method}({arguments})"));
            match s.failures.get_mut(method).and_then(VecDeque::pop_front) {
                Some(error) => Err(error),
                None => effect(&mut s),
            }
        };
        Box::pin(std::future::ready(result))
    }

    /// A handle whose cache has completed one poll.
    pub async fn fresh_handle(&self) -> PdHandle {
        let handle = self.handle();
        handle.cache.refresh().await.unwrap();
        handle
    }

    /// Member `id` leaves PD's membership by someone else's hand (not logged as a write).
    pub fn remove_member(&self, id: u64) -> &Self {
        self.0.lock().unwrap().members.retain(|m| m.member_id != id);
        self
    }

    /// Member `name` joins again under a new ID (its data was lost), healthy.
    pub fn rejoin_member(&self, name: &str, id: u64) -> &Self {
        let mut s = self.0.lock().unwrap();
        s.members.retain(|m| m.name != name);
        s.members.push(Member {
            name: name.into(),
            member_id: id,
            client_urls: vec![format!("http://{name}:2379")],
            ..Member::default()
        });
        s.unhealthy.remove(name);
        drop(s);
        self
    }

    /// Uncached reads of PD's schedulers so far.
    pub fn scheduler_reads(&self) -> usize {
        self.0.lock().unwrap().scheduler_reads
    }

    /// The instance at `base` serves this certificate from now on.
    pub fn serves(&self, base: &str, certificate: tikv_operator_pd::CertificateSummary) -> &Self {
        self.0.lock().unwrap().serving.insert(base.to_owned(), certificate);
        self
    }

    /// Every serving-certificate check so far (`base` + path), in order.
    pub fn certificate_checks(&self) -> Vec<String> {
        self.0.lock().unwrap().certificate_checks.clone()
    }
}

/// A Pod named `name` with UID `uid` whose containers run (not Ready).
pub fn running_pod(name: &str, uid: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "uid": uid},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"running": {}}}
        ]}
    }))
    .unwrap()
}

pub fn store(id: u64, address: &str, node_state: NodeState) -> Store {
    Store {
        id,
        address: address.into(),
        peer_address: None,
        status_address: String::new(),
        labels: BTreeMap::new(),
        version: "8.5.0".into(),
        git_hash: String::new(),
        state: if node_state == NodeState::Removed { StoreState::Tombstone } else { StoreState::Up },
        node_state,
        state_name: if node_state == NodeState::Removed { StateName::Tombstone } else { StateName::Up },
        physically_destroyed: false,
        start_time: None,
        last_heartbeat: None,
        uptime: None,
        capacity_bytes: None,
        available_bytes: None,
        used_bytes: None,
        leader_count: 1,
        region_count: 1,
        leader_size: 1,
        region_size: 1,
        leader_weight: 1.0,
        region_weight: 1.0,
        learner_count: 0,
        pending_peer_count: 0,
        is_busy: false,
        pause_leader_transfer_in: false,
        pause_leader_transfer_out: false,
    }
}

impl PdApi for FakePd {
    async fn cluster_id(&self) -> Result<u64, PdError> {
        self.read(|s| Ok(s.cluster_id))
    }

    async fn all_stores(&self) -> Result<Vec<Store>, PdError> {
        self.read(|s| {
            if !s.bootstrapped {
                return Err(PdError::NotBootstrapped);
            }
            Ok(s.stores.values().cloned().collect())
        })
    }

    async fn members(&self) -> Result<Members, PdError> {
        self.read(|s| {
            let leader = s.leader.as_ref().and_then(|l| s.members.iter().find(|m| &m.name == l)).cloned();
            Ok(Members {
                cluster_id: s.cluster_id,
                members: s.members.clone(),
                leader: leader.clone(),
                etcd_leader: leader,
            })
        })
    }

    async fn health(&self) -> Result<Vec<MemberHealth>, PdError> {
        self.read(|s| {
            Ok(s.members
                .iter()
                .map(|m| MemberHealth {
                    name: m.name.clone(),
                    member_id: m.member_id,
                    client_urls: m.client_urls.clone(),
                    health: !s.unhealthy.contains(&m.name),
                })
                .collect())
        })
    }

    async fn evict_leader_stores(&self) -> Result<BTreeSet<u64>, PdError> {
        self.read(|s| Ok(s.evicting.clone()))
    }

    async fn replication_config(&self) -> Result<ReplicationConfig, PdError> {
        self.read(|s| Ok(s.replication.clone()))
    }
}

/// Sets `a.b.c` in a nested JSON object.
fn set_dotted(config: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    let mut at = config;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !at.is_object() {
            *at = serde_json::json!({});
        }
        at = at.as_object_mut().unwrap().entry(part.to_string()).or_insert_with(|| serde_json::json!({}));
    }
    if !at.is_object() {
        *at = serde_json::json!({});
    }
    at.as_object_mut().unwrap().insert(parts[parts.len() - 1].to_string(), value);
}

fn store_not_found(id: u64) -> PdError {
    PdError::NotFound {
        subject: Subject::Store(id),
        message: format!("[PD:core:ErrStoreNotFound]store {id} not found"),
    }
}

fn store_removed(id: u64) -> PdError {
    PdError::StoreRemoved { store_id: id, message: format!("[PD:core:ErrStoreRemoved]store {id} has been removed") }
}

fn set_node_state(store: &mut Store, node_state: NodeState) {
    store.node_state = node_state;
    (store.state, store.state_name) = match node_state {
        NodeState::Removing => (StoreState::Offline, StateName::Offline),
        NodeState::Removed => (StoreState::Tombstone, StateName::Tombstone),
        _ => (StoreState::Up, StateName::Up),
    };
}

impl PdWrite for FakePd {
    fn delete_store(&self, id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.write("delete_store", id.to_string(), move |s| {
            let up = |st: &Store| matches!(st.node_state, NodeState::Preparing | NodeState::Serving);
            let up_after = s.stores.values().filter(|st| st.id != id && up(st)).count() as u64;
            let max_replicas = s.replication.max_replicas;
            let store = s.stores.get_mut(&id).ok_or_else(|| store_not_found(id))?;
            if store.node_state == NodeState::Removed {
                return Err(store_removed(id));
            }
            if up(store) && up_after < max_replicas {
                return Err(PdError::NotEnoughStores {
                    reason: NotEnoughStoresReason::Replicas {
                        up_stores_after: Some(up_after),
                        max_replicas: Some(max_replicas),
                    },
                    message: format!(
                        "[PD:core:ErrStoresNotEnough]can not remove store {id} since the number of up stores would be {up_after} while need {max_replicas}"
                    ),
                });
            }
            set_node_state(store, NodeState::Removing);
            Ok(())
        })
    }

    fn cancel_delete_store(&self, id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.write("cancel_delete_store", id.to_string(), move |s| {
            let store = s.stores.get_mut(&id).ok_or_else(|| store_not_found(id))?;
            match store.node_state {
                NodeState::Removed => return Err(store_removed(id)),
                NodeState::Removing => set_node_state(store, NodeState::Serving),
                _ => {}
            }
            Ok(())
        })
    }

    fn add_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.write("add_evict_leader", store_id.to_string(), move |s| {
            if !s.stores.contains_key(&store_id) {
                return Err(store_not_found(store_id));
            }
            s.evicting.insert(store_id);
            Ok(())
        })
    }

    fn remove_evict_leader(&self, store_id: u64) -> BoxFuture<'_, Result<bool, PdError>> {
        self.write("remove_evict_leader", store_id.to_string(), move |s| Ok(s.evicting.remove(&store_id)))
    }

    fn delete_member_by_id(&self, id: u64) -> BoxFuture<'_, Result<(), PdError>> {
        self.write("delete_member_by_id", id.to_string(), move |s| {
            let before = s.members.len();
            s.members.retain(|m| m.member_id != id);
            if s.members.len() == before {
                return Err(PdError::NotFound {
                    subject: Subject::MemberId(id),
                    message: "etcdserver: member not found".into(),
                });
            }
            Ok(())
        })
    }

    fn update_member_peer_urls<'a>(&'a self, id: u64, peer_urls: &'a [String]) -> BoxFuture<'a, Result<(), PdError>> {
        let urls = peer_urls.to_vec();
        self.write("update_member_peer_urls", format!("{id}, {}", urls.join(",")), move |s| {
            match s.members.iter_mut().find(|m| m.member_id == id) {
                Some(member) => {
                    member.peer_urls = urls;
                    Ok(())
                }
                None => Err(PdError::NotFound {
                    subject: Subject::MemberId(id),
                    message: "etcdserver: member not found".into(),
                }),
            }
        })
    }

    fn delete_member_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), PdError>> {
        self.write("delete_member_by_name", name.to_owned(), move |s| {
            let before = s.members.len();
            s.members.retain(|m| m.name != name);
            if s.members.len() == before {
                return Err(PdError::NotFound {
                    subject: Subject::MemberName(name.to_owned()),
                    message: format!("not found, pd: {name}"),
                });
            }
            Ok(())
        })
    }

    fn transfer_leader<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<(), PdError>> {
        self.write("transfer_leader", name.to_owned(), move |s| {
            if !s.members.iter().any(|m| m.name == name) {
                return Err(PdError::UnknownTransferTarget {
                    name: name.to_owned(),
                    message: "no valid pd to transfer etcd leader".into(),
                });
            }
            s.leader = Some(name.to_owned());
            Ok(())
        })
    }

    fn region_health(&self) -> BoxFuture<'_, Result<tikv_operator_pd::RegionHealth, PdError>> {
        // A read: answered, or failed as scripted, but not logged.
        let scripted = self.0.lock().unwrap().failures.get_mut("region_health").and_then(VecDeque::pop_front);
        let health = match scripted {
            Some(error) => Err(error),
            None => self.read(|s| Ok(s.region_health.clone())),
        };
        Box::pin(async move { health })
    }

    fn store_regions(&self, store_id: u64) -> BoxFuture<'_, Result<Vec<tikv_operator_pd::RegionVoters>, PdError>> {
        // A read: answered, or failed as scripted, but not logged.
        let scripted = self.0.lock().unwrap().failures.get_mut("store_regions").and_then(VecDeque::pop_front);
        let regions = match scripted {
            Some(error) => Err(error),
            None => self.read(|s| Ok(s.store_regions.get(&store_id).cloned().unwrap_or_default())),
        };
        Box::pin(async move { regions })
    }

    fn store_config<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<serde_json::Value, PdError>> {
        let config = self.read(|s| {
            s.store_configs.get(status_url).cloned().ok_or_else(|| PdError::Http {
                status: 404,
                path: "/config".into(),
                body: "path not found".into(),
            })
        });
        Box::pin(async move { config })
    }

    fn update_store_config<'a>(
        &'a self,
        status_url: &'a str,
        changes: &'a serde_json::Map<String, serde_json::Value>,
    ) -> BoxFuture<'a, Result<(), PdError>> {
        let arguments = format!("{status_url}, {}", serde_json::Value::Object(changes.clone()));
        self.write("update_store_config", arguments, move |s| {
            if let Some(key) = changes.keys().find(|k| s.refused_keys.contains(*k)) {
                return Err(PdError::Http {
                    status: 500,
                    path: "/config".into(),
                    body: format!("failed to update, error: \"config {key} can not be changed\""),
                });
            }
            let config = s.store_configs.entry(status_url.to_string()).or_insert_with(|| serde_json::json!({}));
            for (key, value) in changes {
                set_dotted(config, key, value.clone());
            }
            Ok(())
        })
    }

    fn store_leader_count<'a>(&'a self, status_url: &'a str) -> BoxFuture<'a, Result<u64, PdError>> {
        let count = self.read(|s| Ok(s.metrics_leaders.get(status_url).copied().unwrap_or(0)));
        Box::pin(async move { count })
    }

    fn pd_config(&self) -> BoxFuture<'_, Result<serde_json::Value, PdError>> {
        let config = self.read(|s| Ok(s.pd_config.clone()));
        Box::pin(async move { config })
    }

    fn update_pd_config<'a>(
        &'a self,
        key: &'a str,
        value: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<(), PdError>> {
        self.write("update_pd_config", format!("{key}={value}"), move |s| {
            if s.refused_keys.contains(key) {
                return Err(PdError::Http {
                    status: 400,
                    path: "/pd/api/v1/config".into(),
                    body: format!("\"config item {key} not found\""),
                });
            }
            set_dotted(&mut s.pd_config, key, value.clone());
            Ok(())
        })
    }

    fn set_store_labels<'a>(
        &'a self,
        id: u64,
        labels: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), PdError>> {
        let arguments = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        self.write("set_store_labels", format!("{id}, {arguments}"), move |s| {
            if labels.contains_key("engine") {
                return Err(PdError::Http {
                    status: 400,
                    path: format!("/pd/api/v1/store/{id}/label"),
                    body: "\"label key engine is reserved by PD\"".into(),
                });
            }
            let store = s.stores.get_mut(&id).ok_or_else(|| store_not_found(id))?;
            store.labels.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(())
        })
    }

    fn schedulers(&self) -> BoxFuture<'_, Result<Vec<String>, PdError>> {
        self.0.lock().unwrap().scheduler_reads += 1;
        let names = self.read(|s| Ok(s.evicting.iter().map(|id| format!("evict-leader-scheduler-{id}")).collect()));
        Box::pin(async move { names })
    }

    fn serving_certificate<'a>(
        &'a self,
        base: &'a str,
        path: &'static str,
    ) -> BoxFuture<'a, Result<tikv_operator_pd::CertificateSummary, PdError>> {
        let result = {
            let mut s = self.0.lock().unwrap();
            s.certificate_checks.push(format!("{base}{path}"));
            s.serving.get(base).cloned().ok_or_else(|| PdError::Config(format!("{base}: handshake failed")))
        };
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tikv_operator_pd::Freshness;

    #[tokio::test]
    async fn the_fake_pd_records_every_write_in_order_and_answers_as_pd() {
        let pd = FakePd::bootstrapped()
            .member("pd-0", 1)
            .member("pd-1", 2)
            .leader("pd-0")
            .store(4, "tikv-a:20160", NodeState::Serving)
            .store(5, "tikv-b:20160", NodeState::Removed)
            .replication(0, &[]);
        let handle = pd.handle();
        handle.add_evict_leader(4).await.unwrap();
        handle.delete_store(4).await.unwrap();
        assert_eq!(pd.store_state(4), Some(NodeState::Removing));
        handle.cancel_delete_store(4).await.unwrap();
        assert_eq!(pd.store_state(4), Some(NodeState::Serving));
        assert!(handle.remove_evict_leader(4).await.unwrap());
        assert!(!handle.remove_evict_leader(4).await.unwrap(), "no entry left");
        assert!(matches!(handle.delete_store(5).await, Err(PdError::StoreRemoved { store_id: 5, .. })));
        assert!(handle.delete_store(9).await.unwrap_err().is_not_found());
        // As PD: the last Up store cannot go while max-replicas needs it.
        let refused = FakePd::bootstrapped().store(1, "tikv-a:20160", NodeState::Serving).handle();
        assert!(matches!(refused.delete_store(1).await, Err(PdError::NotEnoughStores { .. })));
        handle.transfer_leader("pd-1").await.unwrap();
        handle.delete_member_by_name("pd-0").await.unwrap();
        handle.delete_member_by_id(2).await.unwrap();
        assert!(handle.delete_member_by_id(2).await.unwrap_err().is_not_found());
        assert_eq!(
            pd.write_log(),
            [
                "add_evict_leader(4)",
                "delete_store(4)",
                "cancel_delete_store(4)",
                "remove_evict_leader(4)",
                "remove_evict_leader(4)",
                "delete_store(5)",
                "delete_store(9)",
                "transfer_leader(pd-1)",
                "delete_member_by_name(pd-0)",
                "delete_member_by_id(2)",
                "delete_member_by_id(2)",
            ]
        );
        assert!(pd.evicting().is_empty());
    }

    #[tokio::test]
    async fn the_fake_pd_answers_scripted_errors_in_order_then_as_pd() {
        let pd = FakePd::bootstrapped().store(4, "tikv-a:20160", NodeState::Removing);
        pd.fail_next("cancel_delete_store", store_removed(4))
            .fail_next("cancel_delete_store", PdError::NoLeader { status: 503, message: "no leader".into() })
            .fail_next(
                "add_evict_leader",
                PdError::Http { status: 500, path: "/pd/api/v1/schedulers".into(), body: "scheduler existed".into() },
            );
        let handle = pd.handle();
        let error = handle.cancel_delete_store(4).await.unwrap_err();
        assert_eq!(error.status(), Some(410));
        assert_eq!(pd.store_state(4), Some(NodeState::Removing), "a failed write changes nothing");
        let error = handle.cancel_delete_store(4).await.unwrap_err();
        assert!(error.is_retryable() && error.status() == Some(503), "{error:?}");
        handle.cancel_delete_store(4).await.unwrap();
        assert_eq!(pd.store_state(4), Some(NodeState::Serving));
        let error = handle.add_evict_leader(4).await.unwrap_err();
        assert!(error.to_string().contains("scheduler existed"), "{error}");
        assert!(pd.evicting().is_empty());
        assert_eq!(
            pd.write_log(),
            ["cancel_delete_store(4)", "cancel_delete_store(4)", "cancel_delete_store(4)", "add_evict_leader(4)"]
        );
    }

    #[tokio::test]
    async fn a_write_through_the_handle_makes_the_cached_view_stale_until_the_next_poll() {
        let pd = FakePd::bootstrapped().store(4, "tikv-a:20160", NodeState::Serving).replication(0, &[]);
        let handle = pd.fresh_handle().await;
        assert_eq!(handle.cache.snapshot().freshness, Freshness::Fresh);
        handle.delete_store(4).await.unwrap();
        assert!(handle.cache.fresh_view().is_err(), "the view predates the write");
        let view = handle.cache.refresh().await.unwrap();
        assert_eq!(view.stores.get(&4).map(|s| s.node_state), Some(NodeState::Removing));
        assert_eq!(handle.cache.snapshot().freshness, Freshness::Fresh);
    }

    #[tokio::test]
    async fn the_cache_reads_the_fakes_evict_leader_entries_and_replication_config() {
        let pd = FakePd::bootstrapped()
            .store(4, "tikv-a:20160", NodeState::Serving)
            .store(5, "tikv-b:20160", NodeState::Serving)
            .evicting_leaders(5)
            .replication(1, &["zone"]);
        let handle = pd.fresh_handle().await;
        handle.add_evict_leader(4).await.unwrap();
        let view = handle.cache.refresh().await.unwrap();
        assert_eq!(view.evict_leader_stores, BTreeSet::from([4, 5]));
        assert_eq!(
            (view.replication.max_replicas, view.replication.location_labels.as_slice()),
            (1, &["zone".to_string()][..])
        );
    }
}
