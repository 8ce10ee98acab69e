//! Starting a simulator, clients on it, and driving simulated time.

use std::time::Duration;

use pd_sim::model::store::NodeState as SimNodeState;
use pd_sim::{Config, Control, Knobs, PdSim, Preset};
use tikv_operator_pd::{PdClient, PdError, RetryPolicy};

/// Simulated time runs a million times slower than real time: it moves only by `advance`.
pub const FROZEN: f64 = 1e-6;
/// One step of simulated time while waiting for a condition.
pub const STEP: Duration = Duration::from_millis(100);
/// A real-time bound on waiting for the PD cache (never reached when things work).
pub const REAL_BOUND: Duration = Duration::from_secs(20);

/// The fast preset, with a frozen clock and a follower that answers 503 at once when
/// there is no leader (PD waits about 3 s; the simulator's wait is in simulated time).
pub fn config() -> Config {
    let knobs = Knobs { no_leader_wait: Duration::ZERO, ..Knobs::for_preset(Preset::Fast) };
    Config { speed: FROZEN, knobs: Some(knobs), ..Config::fast() }
}

/// No retries (each call shows exactly what PD answered), no system proxy.
pub fn client_for<I, S>(urls: I) -> PdClient
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    PdClient::builder(urls)
        .retry(RetryPolicy { max_retries: 0, ..RetryPolicy::default() })
        .system_proxy(false)
        .build()
        .unwrap()
}

pub struct Env {
    pub sim: PdSim,
    pub client: PdClient,
    /// IDs of the stores registered by [`Env::with_stores`], in order.
    pub ids: Vec<u64>,
}

impl Env {
    pub async fn start(config: Config) -> Env {
        let sim = PdSim::start(config).await.unwrap();
        let client = client_for([sim.url()]);
        Env { sim, client, ids: Vec::new() }
    }

    /// `stores` stores on a cluster with `max_replicas`, every region fully replicated
    /// and every store Serving.
    pub async fn with_stores(max_replicas: usize, stores: usize) -> Env {
        Self::with_stores_and(Config { max_replicas, ..config() }, stores).await
    }

    pub async fn with_stores_and(config: Config, stores: usize) -> Env {
        let mut env = Env::start(config).await;
        for n in 1..=stores {
            env.add_store(n).await;
        }
        env.settle().await;
        env
    }

    pub async fn add_store(&mut self, n: usize) -> u64 {
        let id = self.ctl().register_store(&format!("tikv-{n}:20160")).await.unwrap().id;
        self.ids.push(id);
        id
    }

    /// The n-th registered store's ID (1-based).
    pub fn id(&self, n: usize) -> u64 {
        self.ids[n - 1]
    }

    pub fn ctl(&self) -> Control {
        self.sim.control()
    }

    /// Advances simulated time in steps, processing every event on the way.
    pub fn run(&self, by: Duration) {
        let mut left = by;
        while !left.is_zero() {
            let step = left.min(STEP);
            self.ctl().advance(step);
            left -= step;
        }
    }

    /// Waits (in simulated time, at most `max`) until every region has its replicas,
    /// no operator runs and every running store is Serving.
    pub async fn settle(&self) {
        self.eventually("the cluster settles", Duration::from_secs(120), async |env| {
            let s = env.ctl().snapshot();
            let up = s.stores.iter().filter(|st| st.running && st.node_state == SimNodeState::Serving).count();
            let want = s.max_replicas.min(up);
            up == s.stores.len()
                && s.operators.is_empty()
                && s.regions.iter().all(|r| r.peers.iter().filter(|p| !p.learner).count() == want)
        })
        .await;
    }

    /// Advances simulated time in steps until `check` holds, at most `max` of it.
    pub async fn eventually(&self, what: &str, max: Duration, mut check: impl AsyncFnMut(&Env) -> bool) {
        let mut waited = Duration::ZERO;
        loop {
            if check(self).await {
                return;
            }
            assert!(waited < max, "not within {max:?} of simulated time: {what}");
            self.run(STEP);
            waited += STEP;
        }
    }

    /// Member names other than the simulator's leader.
    pub fn followers(&self) -> Vec<String> {
        let s = self.ctl().snapshot();
        s.members.iter().filter(|m| m.in_etcd && Some(&m.name) != s.leader.as_ref()).map(|m| m.name.clone()).collect()
    }
}

/// Shows the error in the assertion message.
#[track_caller]
pub fn expect_err<T: std::fmt::Debug>(result: Result<T, PdError>, what: &str) -> PdError {
    match result {
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
        Err(error) => error,
    }
}
