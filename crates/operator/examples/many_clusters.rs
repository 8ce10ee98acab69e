//! Reconcile cost of bringing up many clusters at once: `examples/basic` applied N
//! times under distinct names into one simulated cluster (kube-sim + pd-sim), the
//! operator run in-process as the playground runs it, then the operator's API requests
//! by verb and the reconcile pass durations (p50/p90/max) once every Cluster is Ready
//! or the deadline passed.
//!
//! `cargo run -p tikv-operator --example many_clusters -- --clusters 20`
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::FutureExt;
use kube_sim::{ListOptions, Verb};
use serde_json::{Value, json};
use sim_harness::{Harness, HarnessConfig};
use tikv_operator::playground::apply;
use tikv_operator_controllers::OperatorConfig;
use tracing::Level;
use tracing::field::{Field, Visit};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};

const NS: &str = "default";

struct Args {
    clusters: usize,
    timeout: Duration,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args { clusters: 1, timeout: Duration::from_secs(600) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().with_context(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--clusters" => args.clusters = value.parse()?,
            "--timeout-secs" => args.timeout = Duration::from_secs(value.parse()?),
            _ => anyhow::bail!("unknown argument {arg} (--clusters N, --timeout-secs S)"),
        }
    }
    Ok(args)
}

/// Collects the duration of every reconcile pass from the runner's report records.
#[derive(Clone, Default)]
struct Passes(Arc<Mutex<Vec<Duration>>>);

struct DurationField(Option<String>);

impl Visit for DurationField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "duration" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// The runner's human durations back: `1.50s`, `5s`, `2.3ms`, `40µs`.
fn parse_human(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("µs") {
        (n, 1e-6)
    } else {
        (text.strip_suffix('s')?, 1.0)
    };
    number.parse::<f64>().ok().map(|n| Duration::from_secs_f64(n * scale))
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Passes {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "task" {
            return;
        }
        let mut field = DurationField(None);
        event.record(&mut field);
        if let Some(d) = field.0.as_deref().and_then(parse_human) {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).push(d);
        }
    }
}

/// `examples/basic` renamed for cluster `i`: Cluster `basic-i`, groups `pd-i`/`tikv-i`.
fn documents(i: usize) -> anyhow::Result<Vec<apply::Document>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    let mut docs = apply::read_dir(&dir)?;
    for doc in &mut docs {
        let name = doc.name().to_owned();
        doc.object["metadata"]["name"] = json!(format!("{name}-{i}"));
        if doc.kind() != "Cluster" {
            let cluster = doc.object["spec"]["cluster"]["name"].as_str().unwrap_or_default().to_owned();
            doc.object["spec"]["cluster"]["name"] = json!(format!("{cluster}-{i}"));
            doc.object["spec"]["minReadySeconds"] = json!(0);
        }
    }
    Ok(docs)
}

fn ready_clusters(h: &Harness) -> usize {
    let store = h.store();
    let Some(info) = store.resource(tikv_operator_api::GROUP, tikv_operator_api::VERSION, "clusters") else {
        return 0;
    };
    let Ok(list) = store.list(&info, Some(NS), &ListOptions::default()) else { return 0 };
    let ready = |c: &&Value| {
        c["status"]["conditions"]
            .as_array()
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
    };
    list["items"].as_array().map_or(0, |items| items.iter().filter(ready).count())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let passes = Passes::default();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(LevelFilter::WARN);
    let passes_only = passes.clone().with_filter(Targets::new().with_target("task", Level::INFO));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(passes_only).with(fmt))?;

    // Room for every pod: a cluster asks for 9 CPUs (3 × 1 PD + 3 × 2 TiKV) of 8-CPU nodes.
    let nodes = u32::try_from(3 * args.clusters.max(2)).unwrap_or(u32::MAX);
    let config =
        HarnessConfig { nodes, zones: 3, speed: 20.0, watch_delay: Duration::from_millis(50), ..HarnessConfig::fast() };
    let h = Harness::start(config).await?;
    let kubectl = h.store().client("kubectl");
    let mut docs = Vec::new();
    for i in 0..args.clusters {
        docs.extend(documents(i)?);
    }
    apply::install_crds(&kubectl)?;
    apply::ensure_namespaces(&kubectl, &docs)?;
    h.kube_sim().requests().reset();
    let started = Instant::now();
    for doc in &docs {
        apply::apply(&kubectl, doc)?;
    }

    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    }
    .boxed()
    .shared();
    let operator = OperatorConfig { pd_proxy: Some(h.proxy_url()), ..OperatorConfig::default() };
    let task = tokio::spawn(tikv_operator_controllers::run_until(h.kubeconfig_path().to_owned(), operator, shutdown));

    let mut ready = 0;
    while started.elapsed() < args.timeout {
        ready = ready_clusters(&h);
        if ready == args.clusters || task.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(15), task).await;

    let mut verbs: BTreeMap<&str, usize> = BTreeMap::new();
    for r in h.kube_sim().requests().snapshot().iter().filter(|r| !r.in_process) {
        let verb = match r.verb {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            _ if r.resource == "events" => "events",
            _ => "writes",
        };
        *verbs.entry(verb).or_default() += 1;
    }
    if std::env::var_os("MANY_CLUSTERS_DETAIL").is_some() {
        let mut detail: BTreeMap<(String, String, String), usize> = BTreeMap::new();
        for r in h.kube_sim().requests().snapshot().iter().filter(|r| !r.in_process) {
            *detail.entry((r.user_agent.clone(), r.verb.to_string(), r.resource_path())).or_default() += 1;
        }
        for ((agent, verb, resource), n) in detail {
            println!("  {n:6}  {verb:8} {resource:40} {agent}");
        }
    }
    let mut durations = passes.0.lock().unwrap_or_else(PoisonError::into_inner).clone();
    durations.sort();
    let count = |v: &str| verbs.get(v).copied().unwrap_or_default();
    println!("clusters            {} ({} Ready in {:.1} s)", args.clusters, ready, elapsed.as_secs_f64());
    println!(
        "operator requests   GET {}  LIST {}  WATCH {}  writes {}  (Events {})",
        count("GET"),
        count("LIST"),
        count("WATCH"),
        count("writes"),
        count("events")
    );
    println!(
        "passes              {}  p50 {}  p90 {}  max {}",
        durations.len(),
        ms(percentile(&durations, 0.5)),
        ms(percentile(&durations, 0.9)),
        ms(durations.last().copied().unwrap_or_default())
    );
    h.shutdown().await;
    Ok(())
}
