//! Test support: kube-sim with our CRDs, a context over it, sample objects, and an
//! in-memory PD behind a real PD cache.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tikv_operator_api::names::{self, LABEL_GROUP};
use tikv_operator_api::{Cluster, PD, PDGroup, TiKV, TiKVGroup};
use tikv_operator_pd::{
    CacheConfig, Member, MemberHealth, Members, NodeState, PdApi, PdCache, PdError, StateName, Store, StoreState,
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
        Self { sim, client, ctx, _watchers: watchers }
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
        runner.run(key, state).await
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
}

impl TestEnv {
    /// The Events recorded, oldest first, as `(type, reason, message)`.
    pub async fn events(&self) -> Vec<(String, String, String)> {
        let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), "default");
        let mut events = api.list(&Default::default()).await.unwrap().items;
        events.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        events
            .into_iter()
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect()
    }

    /// Requests that recorded an Event (a new one, or a repeat counted on an old one).
    pub fn event_writes(&self) -> usize {
        use kube_sim::Verb::*;
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
}

/// An in-memory PD for the PD cache.
#[derive(Clone, Default)]
pub struct FakePd(Arc<Mutex<FakeState>>);

impl FakePd {
    pub const CLUSTER_ID: u64 = 7_401_234_567_890_123_456;

    /// A PD cluster with no members listed and no stores yet.
    pub fn bootstrapped() -> Self {
        let fake = FakePd::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.cluster_id = Self::CLUSTER_ID;
            s.bootstrapped = true;
        }
        fake
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

    pub fn leader(self, name: &str) -> Self {
        self.0.lock().unwrap().leader = Some(name.into());
        self
    }

    pub fn store(self, id: u64, address: &str, node_state: NodeState) -> Self {
        self.0.lock().unwrap().stores.insert(id, store(id, address, node_state));
        self
    }

    pub fn handle(&self) -> PdHandle {
        PdHandle { client: None, cache: PdCache::spawn(self.clone(), CacheConfig::default()) }
    }

    /// A handle whose cache has completed one poll.
    pub async fn fresh_handle(&self) -> PdHandle {
        let handle = self.handle();
        handle.cache.refresh().await.unwrap();
        handle
    }
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
        Ok(self.0.lock().unwrap().cluster_id)
    }

    async fn all_stores(&self) -> Result<Vec<Store>, PdError> {
        let s = self.0.lock().unwrap();
        if !s.bootstrapped {
            return Err(PdError::NotBootstrapped);
        }
        Ok(s.stores.values().cloned().collect())
    }

    async fn members(&self) -> Result<Members, PdError> {
        let s = self.0.lock().unwrap();
        let leader = s.leader.as_ref().and_then(|l| s.members.iter().find(|m| &m.name == l)).cloned();
        Ok(Members {
            cluster_id: s.cluster_id,
            members: s.members.clone(),
            leader: leader.clone(),
            etcd_leader: leader,
        })
    }

    async fn health(&self) -> Result<Vec<MemberHealth>, PdError> {
        let s = self.0.lock().unwrap();
        Ok(s.members
            .iter()
            .map(|m| MemberHealth {
                name: m.name.clone(),
                member_id: m.member_id,
                client_urls: m.client_urls.clone(),
                health: true,
            })
            .collect())
    }
}
