//! `tikv-operator playground`: kube-sim with simulated nodes in zones, PD and TiKV run
//! by its pods, and the operator, in one process. It applies `examples/` the way a user
//! would, shows progress live until the Cluster is Ready, and writes a kubeconfig so
//! kubectl can drive it.
//!
//! The operator itself is started by the caller ([`run`]'s `start_operator`), with
//! nothing but what a real deployment has: a kubeconfig, an HTTP proxy into the pod
//! network (where PD is) and a shutdown signal.

pub mod apply;
pub mod progress;
pub mod timing;

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::BoxFuture;
use sim_harness::{Harness, HarnessConfig};
use tokio::sync::watch;

use self::apply::{DEFAULT_NAMESPACE, Document};
use self::progress::{Changes, Observed};

/// Simulated-clock speed of `--timing fast`: Ready in seconds (the operator's timers run
/// on the same clock).
const FAST_SPEED: f64 = 20.0;
/// How often PD is looked at when the store is quiet (PD's state is not in the store).
const PD_POLL: Duration = Duration::from_millis(500);
/// Writes come in bursts; one redraw per burst.
const COALESCE: Duration = Duration::from_millis(100);
/// How long the operator gets to stop after the shutdown signal.
const OPERATOR_STOP: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, clap::Args)]
pub struct PlaygroundArgs {
    /// Where to write the kubeconfig for kubectl (overwritten only if it is one the
    /// playground wrote).
    #[arg(long, value_name = "PATH", default_value = "./playground.kubeconfig")]
    pub kubeconfig: PathBuf,
    /// fast: shortened PD timings on a clock running 20x; realistic: real PD and
    /// Kubernetes timings at real speed.
    #[arg(long, value_enum, default_value_t = Timing::Fast)]
    pub timing: Timing,
    /// Exit (code 0) once the cluster is Ready instead of serving until Ctrl-C.
    #[arg(long)]
    pub exit_when_ready: bool,
    /// Directory of manifests to apply [default: ./examples/basic, or the source tree's]
    #[arg(long, value_name = "DIR")]
    pub examples: Option<PathBuf>,
    /// Simulated nodes.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=250))]
    pub nodes: u32,
    /// Zones the nodes are spread over (zone-a, zone-b, ...).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=26))]
    pub zones: u32,
    /// Simulated seconds to wait for Ready before giving up.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    pub ready_timeout: u64,
    /// Start everything but the operator, and print the `tikv-operator run` command
    /// that drives it as its own process (run it once or twice: leader election). The
    /// simulated clock then runs at real speed, as that operator reads the system
    /// clock; `--timing fast` keeps PD's shortened timings, at real speed. Without
    /// `--exit-when-ready` a cluster not Ready is no error (start the operator later).
    #[arg(long)]
    pub no_operator: bool,
    /// Serve the operator's `/metrics`, `/healthz` and `/readyz` here (e.g.
    /// `127.0.0.1:8080`; port 0 picks a free one, printed at start).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The operator's timings: ours, or tidb-operator v2's (for comparison).
    #[arg(long, value_enum, default_value_t = timing::TimingProfile::Default)]
    pub timing_profile: timing::TimingProfile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Timing {
    Fast,
    Realistic,
}

impl Timing {
    fn harness_config(self, nodes: u32, zones: u32) -> HarnessConfig {
        match self {
            Timing::Fast => HarnessConfig { nodes, zones, speed: FAST_SPEED, ..HarnessConfig::fast() },
            Timing::Realistic => HarnessConfig { nodes, zones, speed: 1.0, ..HarnessConfig::default() },
        }
    }
}

impl PlaygroundArgs {
    /// The harness these arguments ask for: at real speed without our operator (a
    /// separate `tikv-operator run` measures ages on the system clock).
    pub fn harness_config(&self) -> HarnessConfig {
        let config = self.timing.harness_config(self.nodes, self.zones);
        match self.no_operator {
            true => HarnessConfig { speed: 1.0, ..config },
            false => config,
        }
    }
}

/// The arguments of a `tikv-operator run` that drives a playground (or any harness) as
/// its own process: its kubeconfig, the proxy into the pod network where PD is, and
/// metrics on a free local port (so that two replicas can run side by side). Leader
/// election keeps its defaults (a Lease `tikv-operator` in namespace `default`).
pub fn run_args(kubeconfig: &Path, proxy_url: &str) -> Vec<String> {
    vec![
        "run".to_owned(),
        "--kubeconfig".to_owned(),
        kubeconfig.display().to_string(),
        "--pd-proxy".to_owned(),
        proxy_url.to_owned(),
        "--metrics-addr".to_owned(),
        "127.0.0.1:0".to_owned(),
    ]
}

/// `program args...` as a shell command line (arguments quoted where needed).
pub fn command_line(program: &Path, args: &[String]) -> String {
    let quote = |word: &str| {
        let plain = !word.is_empty()
            && word.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | ':' | '=' | ','));
        if plain { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
    };
    std::iter::once(program.display().to_string().as_str())
        .chain(args.iter().map(String::as_str))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the operator needs to run against the playground.
#[derive(Clone, Debug)]
pub struct OperatorWiring {
    /// The API server, as for `tikv-operator run --kubeconfig`.
    pub kubeconfig: PathBuf,
    /// An HTTP proxy into the pod network: PD is reached through it by its Service
    /// name, as from inside a real cluster (`HTTP_PROXY`, or the PD client's explicit
    /// proxy setting).
    pub proxy_url: String,
    /// The simulated cluster's clock: it stamps every condition and timestamp the
    /// cluster writes, so the operator measures ages (minReadySeconds) on it.
    pub clock: sim_clock::SimClock,
    /// Resolves when the playground is stopping; the operator should return then.
    pub shutdown: ShutdownSignal,
}

/// Fires once, when the playground stops.
#[derive(Clone, Debug)]
pub struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// Resolves once shutdown is requested (or the playground is gone).
    pub async fn requested(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// Runs the playground until the cluster is Ready (with `--exit-when-ready`) or until
/// Ctrl-C. `start_operator` is called once, after the examples are applied; its future
/// is spawned and must return after [`OperatorWiring::shutdown`] fires. Progress goes
/// to stdout. An error means the playground failed: the operator stopped or failed, the
/// cluster was not Ready in time, or the safety watcher saw a breach.
pub async fn run(
    args: PlaygroundArgs,
    start_operator: impl FnOnce(OperatorWiring) -> BoxFuture<'static, anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let mut out = std::io::stdout();
    run_with(args, &cwd, |wiring, _| start_operator(wiring), &mut out, interrupt).await
}

/// [`run`] with its outside world passed in: the working directory, the output, what
/// interrupts it, and a `start_operator` that also sees the harness (tests stand in for
/// the operator through its store).
async fn run_with<W: Write>(
    args: PlaygroundArgs,
    cwd: &Path,
    start_operator: impl FnOnce(OperatorWiring, &Harness) -> BoxFuture<'static, anyhow::Result<()>>,
    out: &mut W,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let examples = examples_dir(args.examples.as_deref(), cwd);
    let examples = std::fs::canonicalize(&examples).unwrap_or(examples);
    let docs = apply::read_dir(&examples)?;
    let clusters = clusters_of(&docs);
    if clusters.is_empty() {
        bail!("{} defines no {}/Cluster: nothing to wait for", examples.display(), tikv_operator_api::GROUP);
    }
    let kubeconfig = std::path::absolute(cwd.join(&args.kubeconfig))
        .with_context(|| format!("resolving {}", args.kubeconfig.display()))?;
    ensure_ours_to_overwrite(&kubeconfig)?;
    let plan = Plan { examples, docs, clusters, kubeconfig };

    let started = Instant::now();
    let harness = Harness::start(args.harness_config()).await?;
    // The operator's image holds its binary, which TiKV pods copy for their preStop hook.
    crate::tools::register_simulated(&harness, tikv_operator_controllers::DEFAULT_TOOLS_IMAGE);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut session = Session { harness: &harness, out, operator: None, started };
    let result = session.run(&args, &plan, start_operator, stop_rx, interrupt).await;
    let stopped = session.stop_operator(&stop_tx).await;
    harness.shutdown().await;
    result.and(stopped)
}

/// What the playground applies and waits for, settled before anything starts.
struct Plan {
    examples: PathBuf,
    docs: Vec<Document>,
    /// The Clusters the documents create, as (namespace, name): what Ready waits for.
    clusters: Vec<(String, String)>,
    kubeconfig: PathBuf,
}

type OperatorTask = tokio::task::JoinHandle<anyhow::Result<()>>;

struct Session<'a, W> {
    harness: &'a Harness,
    out: &'a mut W,
    operator: Option<OperatorTask>,
    started: Instant,
}

/// How watching ended.
enum Ending {
    ReadyAndDone,
    Interrupted,
    Stuck,
    OperatorStopped(Result<anyhow::Result<()>, tokio::task::JoinError>),
}

impl<W: Write> Session<'_, W> {
    async fn run(
        &mut self,
        args: &PlaygroundArgs,
        plan: &Plan,
        start_operator: impl FnOnce(OperatorWiring, &Harness) -> BoxFuture<'static, anyhow::Result<()>>,
        stop: watch::Receiver<bool>,
        interrupt: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let h = self.harness;
        let (docs, kubeconfig) = (&plan.docs, &plan.kubeconfig);
        kube_sim::kubeconfig::write(kubeconfig, h.kube_sim().url())
            .with_context(|| format!("writing the kubeconfig {}", kubeconfig.display()))?;
        self.header(args, docs, kubeconfig)?;

        writeln!(self.out, "Applying {} (as kubectl apply -f would):", plan.examples.display())?;
        let kubectl = h.store().client("kubectl");
        apply::install_crds(&kubectl)?;
        apply::ensure_namespaces(&kubectl, docs)?;
        for doc in docs {
            writeln!(self.out, "  {}", apply::apply(&kubectl, doc)?)?;
        }

        if args.no_operator {
            let program = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tikv-operator"));
            let command = command_line(&program, &run_args(kubeconfig, &h.proxy_url()));
            writeln!(self.out, "\nThe operator is not started (--no-operator). Run it as its own process:")?;
            writeln!(self.out, "  {command}")?;
            writeln!(self.out, "(twice for two replicas: one leads, the other stands by)")?;
            writeln!(self.out, "\nProgress (simulated time = real time):")?;
        } else {
            let wiring = OperatorWiring {
                kubeconfig: kubeconfig.to_owned(),
                proxy_url: h.proxy_url(),
                clock: h.clock().clone(),
                shutdown: ShutdownSignal(stop),
            };
            self.operator = Some(tokio::spawn(start_operator(wiring, h)));
            writeln!(self.out, "\nOperator started. Progress (simulated time):")?;
        }

        let mut last = Observed::default();
        match self.watch(args, plan, &mut last, interrupt).await? {
            Ending::ReadyAndDone | Ending::Interrupted => {}
            Ending::Stuck => {
                bail!(
                    "the cluster is not Ready after {}s of simulated time; where it is stuck:\n{}{}",
                    args.ready_timeout,
                    progress::table(&progress::rows(&last), &last),
                    self.breaches_text()
                );
            }
            Ending::OperatorStopped(result) => {
                let why = match result {
                    Ok(Ok(())) => "the operator stopped on its own".to_owned(),
                    Ok(Err(e)) => format!("the operator failed: {e:#}"),
                    Err(e) => format!("the operator task ended abnormally: {e}"),
                };
                bail!("{why}\nlast view:\n{}{}", progress::table(&progress::rows(&last), &last), self.breaches_text());
            }
        }
        let breaches = h.watcher().breaches();
        if !breaches.is_empty() {
            bail!("the safety watcher saw {} breach(es):{}", breaches.len(), self.breaches_text());
        }
        Ok(())
    }

    fn header(&mut self, args: &PlaygroundArgs, docs: &[Document], kubeconfig: &Path) -> anyhow::Result<()> {
        let h = self.harness;
        let timing = match args.timing {
            Timing::Fast if args.no_operator => "fast PD timings at real speed (--no-operator)".to_owned(),
            Timing::Fast => format!("fast (PD's fast preset, simulated clock x{})", h.clock().speed()),
            Timing::Realistic => "realistic (real PD and Kubernetes timings, real time)".to_owned(),
        };
        let out = &mut *self.out;
        writeln!(
            out,
            "tikv-operator playground: kube-sim with {} nodes in {} zones, timing {timing}",
            args.nodes, args.zones
        )?;
        writeln!(out, "kubeconfig: {}", kubeconfig.display())?;
        writeln!(out, "\nTry, in another terminal:")?;
        writeln!(out, "  export KUBECONFIG={}", kubeconfig.display())?;
        for command in kubectl_commands(docs) {
            writeln!(out, "  {command}")?;
        }
        if let Some(pd) = docs.iter().find(|d| d.kind() == "PDGroup") {
            let service = tikv_operator_api::names::pd_client_service_name(pd.name());
            let ns = pd.namespace().unwrap_or(DEFAULT_NAMESPACE);
            writeln!(out, "  curl -x {} http://{service}.{ns}.svc:2379/pd/api/v1/stores", h.proxy_url())?;
        }
        writeln!(out)?;
        Ok(())
    }

    async fn watch(
        &mut self,
        args: &PlaygroundArgs,
        plan: &Plan,
        last: &mut Observed,
        interrupt: impl Future<Output = ()>,
    ) -> anyhow::Result<Ending> {
        let h = self.harness;
        let mut revisions = h.store().subscribe();
        let mut changes = Changes::default();
        let mut breaches_seen = 0;
        let mut ready = false;
        let deadline = h.clock().now().since_start() + Duration::from_secs(args.ready_timeout);
        tokio::pin!(interrupt);
        loop {
            *last = progress::read(h.store(), &h.pd_clusters());
            let rows = progress::rows(last);
            let now = h.clock().now().since_start();
            for line in changes.update(&rows) {
                writeln!(self.out, "[{:>7.1}s] {line}", now.as_secs_f64())?;
            }
            let breaches = h.watcher().breaches();
            for breach in breaches.iter().skip(breaches_seen) {
                writeln!(self.out, "SAFETY BREACH (must never happen): {breach}")?;
            }
            breaches_seen = breaches.len();

            if !ready && progress::clusters_ready(last, &plan.clusters) {
                ready = true;
                write!(
                    self.out,
                    "\nReady in {:.1}s (simulated {:.1}s)\n{}",
                    self.started.elapsed().as_secs_f64(),
                    now.as_secs_f64(),
                    progress::table(&rows, last)
                )?;
                if args.exit_when_ready {
                    return Ok(Ending::ReadyAndDone);
                }
                let kubeconfig = plan.kubeconfig.display();
                writeln!(self.out, "\nServing: kubectl works with KUBECONFIG={kubeconfig}. Ctrl-C stops.\n")?;
            }
            // Without our operator, one started later may still bring it to Ready.
            if !ready && now > deadline && (!args.no_operator || args.exit_when_ready) {
                return Ok(Ending::Stuck);
            }

            let slot = self.operator.as_mut();
            let operator = async {
                match slot {
                    Some(operator) => operator.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = revisions.changed() => {}
                _ = tokio::time::sleep(PD_POLL) => {}
                result = operator => {
                    self.operator = None;
                    return Ok(Ending::OperatorStopped(result));
                }
                () = &mut interrupt => {
                    writeln!(self.out, "\nInterrupted; shutting down.")?;
                    return Ok(Ending::Interrupted);
                }
            }
            tokio::time::sleep(COALESCE).await;
        }
    }

    /// Signals shutdown and waits (bounded) for the operator to return.
    async fn stop_operator(&mut self, stop: &watch::Sender<bool>) -> anyhow::Result<()> {
        let _ = stop.send(true);
        let Some(mut operator) = self.operator.take() else { return Ok(()) };
        match tokio::time::timeout(OPERATOR_STOP, &mut operator).await {
            Ok(Ok(result)) => result.context("the operator failed while stopping"),
            Ok(Err(e)) => Err(e).context("the operator task ended abnormally"),
            Err(_) => {
                operator.abort();
                bail!("the operator did not stop within {}s of the shutdown signal", OPERATOR_STOP.as_secs())
            }
        }
    }

    fn breaches_text(&self) -> String {
        let breaches = self.harness.watcher().breaches();
        if breaches.is_empty() {
            return "safety watcher: no breaches\n".to_owned();
        }
        let mut text = String::from("safety watcher breaches (must never happen):\n");
        for breach in breaches {
            text.push_str(&format!("  {breach}\n"));
        }
        text
    }
}

/// `--examples`, else `./examples/basic`, else the source tree's `examples/basic`.
fn examples_dir(arg: Option<&Path>, cwd: &Path) -> PathBuf {
    if let Some(dir) = arg {
        return cwd.join(dir);
    }
    let local = cwd.join("examples/basic");
    if local.is_dir() { local } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic") }
}

/// The Clusters the documents create, as (namespace, name).
fn clusters_of(docs: &[Document]) -> Vec<(String, String)> {
    let api_version = format!("{}/{}", tikv_operator_api::GROUP, tikv_operator_api::VERSION);
    docs.iter()
        .filter(|d| d.kind() == "Cluster" && d.api_version() == api_version)
        .map(|d| (d.namespace().unwrap_or(DEFAULT_NAMESPACE).to_owned(), d.name().to_owned()))
        .collect()
}

/// The kubectl commands worth trying against what the documents create.
fn kubectl_commands(docs: &[Document]) -> Vec<String> {
    let mut commands = vec!["kubectl get tikv-cluster".to_owned(), "kubectl get pods -o wide".to_owned()];
    let (group, ns, replicas) = docs
        .iter()
        .find(|d| d.kind() == "TiKVGroup")
        .map(|d| (d.name(), d.namespace(), d.object["spec"]["replicas"].as_i64().unwrap_or(3)))
        .unwrap_or(("tikv", None, 3));
    let ns = match ns {
        Some(ns) if ns != DEFAULT_NAMESPACE => format!(" -n {ns}"),
        _ => String::new(),
    };
    commands.push(format!("kubectl describe tikvgroup {group}{ns}"));
    commands.push(format!("kubectl scale kvg {group} --replicas {}{ns}", replicas + 2));
    // One store replaced: it leaves PD (leaders, then regions) before its pod and data go.
    commands.push(format!("kubectl delete --wait=false $(kubectl get tikv{ns} -o name | head -n 1){ns}"));
    // A node drain: evictions within the group's PodDisruptionBudget, one store at a time.
    use tikv_operator_api::names::{COMPONENT_TIKV, LABEL_COMPONENT, LABEL_GROUP};
    commands.push(format!(
        "kubectl drain $(kubectl get pods{ns} -l {LABEL_COMPONENT}={COMPONENT_TIKV},{LABEL_GROUP}={group} -o jsonpath='{{.items[0].spec.nodeName}}') --ignore-daemonsets --delete-emptydir-data"
    ));
    commands
}

/// Refuses to overwrite a file that is not a kubeconfig the playground wrote (a user's
/// `~/.kube/config` passed by mistake must survive).
fn ensure_ours_to_overwrite(path: &Path) -> anyhow::Result<()> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        Ok(text) if text.contains("name: kube-sim") && text.contains("server: http://127.0.0.1:") => Ok(()),
        Ok(_) => bail!(
            "refusing to overwrite {}: it is not a kubeconfig the playground wrote (choose another --kubeconfig)",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests;
