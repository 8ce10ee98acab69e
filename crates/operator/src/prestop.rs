//! `tikv-operator tikv-prestop`: the TiKV pod's preStop hook. When someone else than
//! the operator deletes a TiKV pod (a user, a node drain), the operator adds an
//! evict-leader entry for its store as soon as it sees the pod terminating; this hook
//! keeps `tikv-server` running meanwhile, and returns once the store leads no region,
//! so that the store stops without leaving its regions leaderless for an election.
//!
//! It finds the store in PD by its advertised status address (`GET /pd/api/v1/stores`,
//! Tombstone included, retried for `--find-timeout`; a Tombstone store is not waited
//! for), then reads the store's own `/metrics` (the
//! `tikv_raftstore_region_count{type="leader"}` gauge, fresher than PD's view) every
//! `--interval` until it is 0. It never holds a pod forever: it gives up, saying why,
//! when the count has not fallen for `--progress-timeout`, when `/metrics` failed
//! [`METRICS_FAILURES`] times in a row, or when PD does not list the store. It exits 0
//! either way: a failed hook only makes the kubelet record an event, and TiKV then
//! stops as it would have.
//!
//! All waiting goes through a [`Waiter`], so the simulation runs the hook on its
//! clock; the HTTP clients follow a [`Proxy`] setting.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tikv_operator_pd::{PdClient, RetryPolicy, StoreState};

use crate::parse_duration;

/// `/metrics` failing this many times in a row ends the wait.
pub const METRICS_FAILURES: u32 = 5;
/// Timeout of each HTTP request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const LEADER_GAUGE: &str = "tikv_raftstore_region_count";

#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct TikvPrestopArgs {
    /// PD's URL (the Cluster's PD Service URL).
    #[arg(long, value_name = "URL")]
    pub pd: String,
    /// The store's advertised status address, as PD lists it; its `/metrics` are read
    /// there.
    #[arg(long, value_name = "HOST:PORT")]
    pub status_addr: String,
    /// Give up when the store's leader count has not fallen for this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub progress_timeout: Duration,
    /// Give up when PD has not listed the store for this long.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub find_timeout: Duration,
    /// Between two reads of PD or of `/metrics`.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// The clock the hook waits on.
pub trait Waiter: Send + Sync {
    /// Time since a fixed moment (monotonic).
    fn elapsed(&self) -> Duration;
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// The machine's clock.
#[derive(Debug)]
pub struct TokioWaiter(tokio::time::Instant);

impl Default for TokioWaiter {
    fn default() -> Self {
        TokioWaiter(tokio::time::Instant::now())
    }
}

impl Waiter for TokioWaiter {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// How the hook's HTTP clients reach PD and the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proxy {
    /// `HTTP_PROXY`/`NO_PROXY` from the environment, as any client in the pod.
    System,
    Direct,
    Url(String),
}

/// How the wait ended; the hook says it and exits 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The store leads no region.
    LeadersGone {
        store: u64,
    },
    /// PD has the store as Tombstone: it serves nothing.
    Tombstone {
        store: u64,
    },
    /// The leader count did not fall below `leaders` for `stalled_for`.
    Stalled {
        store: u64,
        leaders: u64,
        stalled_for: Duration,
    },
    MetricsUnavailable {
        store: u64,
        error: String,
    },
    /// PD answered, but listed no store at this status address.
    StoreNotFound {
        status_addr: String,
        waited: Duration,
    },
    /// PD did not answer (the last error).
    PdUnavailable {
        error: String,
        waited: Duration,
    },
    /// The arguments or the HTTP client setup are unusable.
    Unusable {
        error: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::LeadersGone { store } => write!(f, "store {store} leads no region: tikv-server may stop"),
            Outcome::Tombstone { store } => write!(f, "store {store} is Tombstone: nothing to wait for"),
            Outcome::Stalled { store, leaders, stalled_for } => write!(
                f,
                "giving up: store {store} still leads {leaders} regions and none moved for {}s",
                stalled_for.as_secs()
            ),
            Outcome::MetricsUnavailable { store, error } => {
                write!(f, "giving up: store {store}'s /metrics failed {METRICS_FAILURES} times in a row, last: {error}")
            }
            Outcome::StoreNotFound { status_addr, waited } => {
                write!(
                    f,
                    "giving up: PD lists no store with status address {status_addr} (looked for {}s)",
                    waited.as_secs()
                )
            }
            Outcome::PdUnavailable { error, waited } => {
                write!(f, "giving up: PD did not answer for {}s, last: {error}", waited.as_secs())
            }
            Outcome::Unusable { error } => write!(f, "giving up: {error}"),
        }
    }
}

/// Waits as the module says; `say` gets a line for each step worth logging.
pub async fn run(
    args: &TikvPrestopArgs,
    waiter: &dyn Waiter,
    proxy: &Proxy,
    say: &mut (dyn FnMut(String) + Send),
) -> Outcome {
    tikv_operator_pd::install_default_crypto_provider();
    let (pd, http) = match clients(args, proxy) {
        Ok(clients) => clients,
        Err(error) => return Outcome::Unusable { error },
    };
    let store = match find_store(args, &pd, waiter).await {
        Ok((store, StoreState::Tombstone)) => return Outcome::Tombstone { store },
        Ok((store, _)) => store,
        Err(outcome) => return outcome,
    };
    say(format!("store {store} (status address {}): waiting until it leads no region", args.status_addr));
    wait_for_no_leaders(args, store, &http, waiter, say).await
}

fn clients(args: &TikvPrestopArgs, proxy: &Proxy) -> Result<(PdClient, reqwest::Client), String> {
    let no_retry = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
    let mut pd = PdClient::builder([args.pd.as_str()]).timeout(REQUEST_TIMEOUT).retry(no_retry);
    let mut http = reqwest::Client::builder()
        .user_agent(tikv_operator_pd::USER_AGENT)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT);
    match proxy {
        Proxy::System => {}
        Proxy::Direct => {
            pd = pd.system_proxy(false);
            http = http.no_proxy();
        }
        Proxy::Url(url) => {
            pd = pd.proxy(url).map_err(|e| e.to_string())?;
            http = http.proxy(reqwest::Proxy::all(url).map_err(|e| format!("proxy {url:?}: {e}"))?);
        }
    }
    let pd = pd.build().map_err(|e| e.to_string())?;
    let http = http.build().map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    Ok((pd, http))
}

/// The store PD lists at the status address (its ID and state), looked for until
/// `find_timeout`. A Tombstone record of an earlier store at the same address counts
/// only when no live store is there.
async fn find_store(args: &TikvPrestopArgs, pd: &PdClient, waiter: &dyn Waiter) -> Result<(u64, StoreState), Outcome> {
    let started = waiter.elapsed();
    loop {
        let last_error = match pd.all_stores().await {
            Ok(stores) => {
                let here = stores.iter().filter(|s| s.status_address == args.status_addr);
                match here.min_by_key(|s| s.state == StoreState::Tombstone) {
                    Some(store) => return Ok((store.id, store.state)),
                    None => None,
                }
            }
            Err(e) => Some(e.to_string()),
        };
        let waited = waiter.elapsed().saturating_sub(started);
        if waited >= args.find_timeout {
            return Err(match last_error {
                Some(error) => Outcome::PdUnavailable { error, waited },
                None => Outcome::StoreNotFound { status_addr: args.status_addr.clone(), waited },
            });
        }
        waiter.sleep(args.interval).await;
    }
}

async fn wait_for_no_leaders(
    args: &TikvPrestopArgs,
    store: u64,
    http: &reqwest::Client,
    waiter: &dyn Waiter,
    say: &mut (dyn FnMut(String) + Send),
) -> Outcome {
    let url = format!("http://{}/metrics", args.status_addr);
    // The lowest count seen, and when it was first seen.
    let mut lowest: Option<(u64, Duration)> = None;
    let mut failures = 0;
    loop {
        match leader_count(http, &url).await {
            Ok(0) => return Outcome::LeadersGone { store },
            Ok(leaders) => {
                failures = 0;
                let now = waiter.elapsed();
                match lowest {
                    Some((low, since)) if leaders >= low => {
                        let stalled_for = now.saturating_sub(since);
                        if stalled_for >= args.progress_timeout {
                            return Outcome::Stalled { store, leaders: low, stalled_for };
                        }
                    }
                    _ => {
                        say(format!("store {store} leads {leaders} regions"));
                        lowest = Some((leaders, now));
                    }
                }
            }
            Err(error) => {
                failures += 1;
                say(format!("store {store}'s /metrics: {error}"));
                if failures >= METRICS_FAILURES {
                    return Outcome::MetricsUnavailable { store, error };
                }
            }
        }
        waiter.sleep(args.interval).await;
    }
}

async fn leader_count(http: &reqwest::Client, url: &str) -> Result<u64, String> {
    let response = http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status}"));
    }
    leaders_in(&text).ok_or_else(|| format!("GET {url}: no {LEADER_GAUGE}{{type=\"leader\"}} sample"))
}

/// The value of `tikv_raftstore_region_count{type="leader"}` in Prometheus text format
/// (labels in any order, the value an integer or a float).
pub fn leaders_in(metrics: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let rest = line.trim().strip_prefix(LEADER_GAUGE)?.strip_prefix('{')?;
        let (labels, value) = rest.split_once('}')?;
        labels.split(',').any(|l| l.trim() == "type=\"leader\"").then_some(())?;
        let value: f64 = value.split_whitespace().next()?.parse().ok()?;
        (value.is_finite() && value >= 0.0).then_some(value as u64)
    })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::routing::get;

    use super::*;

    /// Virtual time: a sleep moves it on at once.
    #[derive(Default)]
    struct FakeWaiter(AtomicU64);

    impl Waiter for FakeWaiter {
        fn elapsed(&self) -> Duration {
            Duration::from_millis(self.0.load(Ordering::SeqCst))
        }
        fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
            self.0.fetch_add(u64::try_from(duration.as_millis()).unwrap(), Ordering::SeqCst);
            Box::pin(tokio::task::yield_now())
        }
    }

    /// One answer of the fake: a status and a body.
    type Reply = (u16, String);

    /// PD's `/stores` and the store's `/metrics` on one listener; each endpoint answers
    /// its script in order, repeating the last answer.
    #[derive(Clone, Default)]
    struct Script {
        stores: Arc<Mutex<VecDeque<Reply>>>,
        metrics: Arc<Mutex<VecDeque<Reply>>>,
        metrics_reads: Arc<AtomicU64>,
    }

    fn next(queue: &Mutex<VecDeque<Reply>>) -> impl IntoResponse + use<> {
        let mut q = queue.lock().unwrap();
        let (status, body) = if q.len() > 1 { q.pop_front().unwrap() } else { q.front().cloned().unwrap() };
        (StatusCode::from_u16(status).unwrap(), body)
    }

    /// Starts the fake; returns the hook's arguments for it.
    async fn serve(script: &Script) -> TikvPrestopArgs {
        let router = Router::new()
            .route("/pd/api/v1/stores", get(|State(s): State<Script>| async move { next(&s.stores) }))
            .route(
                "/metrics",
                get(|State(s): State<Script>| async move {
                    s.metrics_reads.fetch_add(1, Ordering::SeqCst);
                    next(&s.metrics)
                }),
            )
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TikvPrestopArgs {
            pd: format!("http://{addr}"),
            status_addr: addr.to_string(),
            progress_timeout: Duration::from_secs(30),
            find_timeout: Duration::from_secs(15),
            interval: Duration::from_secs(1),
        }
    }

    fn stores(ids_and_addrs: &[(u64, &str)]) -> Reply {
        let stores: Vec<serde_json::Value> = ids_and_addrs
            .iter()
            .map(|(id, addr)| serde_json::json!({"store": {"id": id, "status_address": addr, "state_name": "Up"}}))
            .collect();
        (200, serde_json::json!({"count": stores.len(), "stores": stores}).to_string())
    }

    fn leaders(n: u64) -> Reply {
        let body = format!(
            "# HELP {LEADER_GAUGE} Number of regions\n# TYPE {LEADER_GAUGE} gauge\n\
             {LEADER_GAUGE}{{type=\"region\"}} 30\n{LEADER_GAUGE}{{type=\"leader\"}} {n}\n"
        );
        (200, body)
    }

    async fn run_against(
        script: &Script,
        tweak: impl FnOnce(&mut TikvPrestopArgs),
    ) -> (Outcome, Vec<String>, Duration) {
        let mut args = serve(script).await;
        tweak(&mut args);
        let waiter = FakeWaiter::default();
        let mut said = Vec::new();
        let outcome = run(&args, &waiter, &Proxy::Direct, &mut |line| said.push(line)).await;
        (outcome, said, waiter.elapsed())
    }

    fn script(stores: Vec<Reply>, metrics: Vec<Reply>) -> Script {
        Script {
            stores: Arc::new(Mutex::new(stores.into())),
            metrics: Arc::new(Mutex::new(metrics.into())),
            ..Script::default()
        }
    }

    /// The status address the fake's script must list: filled in once it listens.
    async fn with_own_store(metrics: Vec<Reply>) -> (Script, TikvPrestopArgs) {
        let s = script(vec![], metrics);
        let args = serve(&s).await;
        *s.stores.lock().unwrap() = vec![stores(&[(1, "elsewhere:20180"), (4, &args.status_addr)])].into();
        (s, args)
    }

    async fn run_with(args: &TikvPrestopArgs) -> (Outcome, Vec<String>, Duration) {
        let waiter = FakeWaiter::default();
        let mut said = Vec::new();
        let outcome = run(args, &waiter, &Proxy::Direct, &mut |line| said.push(line)).await;
        (outcome, said, waiter.elapsed())
    }

    #[tokio::test]
    async fn waits_while_the_leaders_fall_and_returns_at_none() {
        let counts = [12, 12, 9, 9, 9, 4, 1, 0].map(leaders).to_vec();
        let (s, args) = with_own_store(counts).await;
        let (outcome, said, _) = run_with(&args).await;
        assert_eq!(outcome, Outcome::LeadersGone { store: 4 });
        assert_eq!(outcome.to_string(), "store 4 leads no region: tikv-server may stop");
        assert_eq!(
            said[1..],
            [
                "store 4 leads 12 regions",
                "store 4 leads 9 regions",
                "store 4 leads 4 regions",
                "store 4 leads 1 regions"
            ]
        );
        assert_eq!(s.metrics_reads.load(Ordering::SeqCst), 8, "one read per interval until none");
    }

    #[tokio::test]
    async fn gives_up_when_no_leader_moved_for_the_progress_timeout() {
        let (_, args) = with_own_store(vec![leaders(7), leaders(5), leaders(6)]).await;
        let (outcome, _, waited) = run_with(&args).await;
        assert_eq!(outcome, Outcome::Stalled { store: 4, leaders: 5, stalled_for: Duration::from_secs(30) });
        assert_eq!(waited, Duration::from_secs(31), "30 s after the count last fell (5, one read in)");
        assert!(outcome.to_string().contains("still leads 5 regions and none moved for 30s"));
    }

    #[tokio::test]
    async fn metrics_failing_in_a_row_end_the_wait_but_a_few_do_not() {
        let bad = (503, String::new());
        let no_gauge = (200, "process_cpu_seconds_total 3\n".to_owned());
        let flaky = vec![leaders(3), bad.clone(), no_gauge.clone(), leaders(2), bad.clone(), leaders(0)];
        let (_, args) = with_own_store(flaky).await;
        assert_eq!(run_with(&args).await.0, Outcome::LeadersGone { store: 4 });

        let (_, args) = with_own_store(vec![leaders(3), no_gauge, bad]).await;
        let (outcome, said, _) = run_with(&args).await;
        let Outcome::MetricsUnavailable { store: 4, error } = &outcome else { panic!("{outcome:?}") };
        assert!(error.ends_with("503 Service Unavailable"), "{error}");
        assert!(said.iter().any(|l| l.contains("no tikv_raftstore_region_count{type=\"leader\"} sample")), "{said:?}");
        assert_eq!(said.iter().filter(|l| l.contains("/metrics")).count(), METRICS_FAILURES as usize);
    }

    #[tokio::test]
    async fn an_unreachable_status_server_is_a_metrics_failure() {
        // PD lists the store at an address where nothing listens.
        let s = script(vec![stores(&[(4, "127.0.0.1:9")])], vec![]);
        let (outcome, _, _) = run_against(&s, |a| a.status_addr = "127.0.0.1:9".into()).await;
        assert!(matches!(outcome, Outcome::MetricsUnavailable { store: 4, .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn the_store_is_looked_for_in_pd_until_it_is_listed() {
        let s = script(vec![], vec![leaders(0)]);
        let args = serve(&s).await;
        let own = args.status_addr.clone();
        *s.stores.lock().unwrap() =
            vec![(500, "no leader".into()), stores(&[(1, "a:1")]), stores(&[(1, "a:1"), (7, &own)])].into();
        let (outcome, said, waited) = run_with(&args).await;
        assert_eq!(outcome, Outcome::LeadersGone { store: 7 });
        assert_eq!(waited, Duration::from_secs(2));
        assert_eq!(said[0], format!("store 7 (status address {own}): waiting until it leads no region"));
    }

    #[tokio::test]
    async fn a_store_pd_does_not_list_or_a_pd_that_does_not_answer_ends_the_wait() {
        let s = script(vec![stores(&[(1, "other:20180")])], vec![leaders(3)]);
        let (outcome, _, waited) = run_against(&s, |_| {}).await;
        let Outcome::StoreNotFound { waited: w, .. } = &outcome else { panic!("{outcome:?}") };
        assert_eq!((*w, waited), (Duration::from_secs(15), Duration::from_secs(15)));
        assert_eq!(s.metrics_reads.load(Ordering::SeqCst), 0);

        let s = script(vec![(503, "no leader".into())], vec![]);
        let (outcome, _, _) = run_against(&s, |a| a.find_timeout = Duration::from_secs(3)).await;
        let Outcome::PdUnavailable { error, waited } = &outcome else { panic!("{outcome:?}") };
        assert_eq!(*waited, Duration::from_secs(3));
        assert!(outcome.to_string().starts_with("giving up: PD did not answer for 3s"), "{outcome}: {error}");

        let s = script(vec![], vec![]);
        let (outcome, _, _) = run_against(&s, |a| {
            a.pd = "http://127.0.0.1:9".into();
            a.find_timeout = Duration::from_secs(2);
        })
        .await;
        assert!(matches!(outcome, Outcome::PdUnavailable { .. }), "{outcome:?}");

        let (outcome, _, _) = run_against(&s, |a| a.pd = "not a url at all".into()).await;
        assert!(matches!(outcome, Outcome::Unusable { .. }), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_tombstone_store_is_not_waited_for_but_a_live_one_at_its_address_is() {
        let s = script(vec![], vec![leaders(0)]);
        let args = serve(&s).await;
        let addr = args.status_addr.clone();
        let tombstone =
            serde_json::json!({"store": {"id": 4, "status_address": addr, "state": 2, "state_name": "Tombstone"}});
        let live = serde_json::json!({"store": {"id": 9, "status_address": addr, "state_name": "Up"}});
        let body = |stores: Vec<serde_json::Value>| (200, serde_json::json!({"stores": stores}).to_string());
        *s.stores.lock().unwrap() = vec![body(vec![tombstone.clone()])].into();
        let (outcome, _, waited) = run_with(&args).await;
        assert_eq!((outcome, waited), (Outcome::Tombstone { store: 4 }, Duration::ZERO));
        assert_eq!(s.metrics_reads.load(Ordering::SeqCst), 0);
        *s.stores.lock().unwrap() = vec![body(vec![tombstone, live])].into();
        assert_eq!(run_with(&args).await.0, Outcome::LeadersGone { store: 9 });
    }

    #[test]
    fn the_leader_gauge_is_read_whatever_its_label_order_and_number_format() {
        assert_eq!(leaders_in(&leaders(12).1), Some(12));
        assert_eq!(leaders_in("tikv_raftstore_region_count{instance=\"x\", type=\"leader\"} 3e1\n"), Some(30));
        assert_eq!(leaders_in("tikv_raftstore_region_count{type=\"region\"} 3\n"), None);
        assert_eq!(leaders_in("tikv_raftstore_region_count_total{type=\"leader\"} 3\n"), None);
        assert_eq!(leaders_in("tikv_raftstore_region_count{type=\"leader\"} NaN\n"), None);
    }
}
