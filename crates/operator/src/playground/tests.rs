#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use kube_sim::{ResourceRef, Store};
use serde_json::{Value, json};

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: PlaygroundArgs,
}

fn parse(argv: &[&str]) -> Result<PlaygroundArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("playground").chain(argv.iter().copied())).map(|c| c.args)
}

#[test]
fn defaults_are_fast_six_nodes_three_zones_a_local_kubeconfig() {
    let args = parse(&[]).unwrap();
    assert_eq!(args.kubeconfig, PathBuf::from("./playground.kubeconfig"));
    assert_eq!(args.timing, Timing::Fast);
    assert!(!args.exit_when_ready);
    assert_eq!(args.examples, None);
    assert_eq!((args.nodes, args.zones, args.ready_timeout), (6, 3, 600));
    assert!(!args.no_operator);
}

#[test]
fn every_flag_is_taken() {
    let args = parse(&[
        "--kubeconfig",
        "/tmp/k",
        "--timing",
        "realistic",
        "--exit-when-ready",
        "--examples",
        "ex",
        "--nodes",
        "9",
        "--zones",
        "2",
    ])
    .unwrap();
    assert_eq!(args.kubeconfig, PathBuf::from("/tmp/k"));
    assert_eq!(args.timing, Timing::Realistic);
    assert!(args.exit_when_ready);
    assert_eq!(args.examples, Some(PathBuf::from("ex")));
    assert_eq!((args.nodes, args.zones), (9, 2));
}

#[test]
fn nonsense_is_refused() {
    assert!(parse(&["--timing", "slow"]).is_err());
    assert!(parse(&["--zones", "0"]).is_err());
    assert!(parse(&["--nodes", "0"]).is_err());
}

#[test]
fn timings_map_to_the_harness_presets() {
    let fast = Timing::Fast.harness_config(6, 3);
    assert_eq!((fast.nodes, fast.zones, fast.speed), (6, 3, FAST_SPEED));
    assert_eq!(fast.preset, HarnessConfig::fast().preset);
    let realistic = Timing::Realistic.harness_config(6, 3);
    assert_eq!(realistic.speed, 1.0);
    assert_eq!(realistic.preset, HarnessConfig::default().preset);
}

#[test]
fn examples_come_from_the_working_directory_else_the_source_tree() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    let empty = temp_dir("examples-fallback");
    assert_eq!(examples_dir(None, &empty), source);
    std::fs::create_dir_all(empty.join("examples/basic")).unwrap();
    assert_eq!(examples_dir(None, &empty), empty.join("examples/basic"));
    assert_eq!(examples_dir(Some(Path::new("mine")), &empty), empty.join("mine"));
    std::fs::remove_dir_all(&empty).unwrap();
}

#[test]
fn the_commands_to_try_name_the_examples_objects() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic");
    let docs = apply::read_dir(&dir).unwrap();
    assert_eq!(
        kubectl_commands(&docs),
        [
            "kubectl get tikv-cluster",
            "kubectl get pods -o wide",
            "kubectl describe tikvgroup tikv",
            "kubectl scale kvg tikv --replicas 5",
            "kubectl delete --wait=false $(kubectl get tikv -o name | head -n 1)",
            "kubectl drain $(kubectl get pods -l tikv.org/component=tikv,tikv.org/group=tikv -o jsonpath='{.items[0].spec.nodeName}') --ignore-daemonsets --delete-emptydir-data"
        ]
    );
    assert_eq!(clusters_of(&docs), [("default".to_owned(), "basic".to_owned())]);
}

#[test]
fn a_kubeconfig_the_playground_did_not_write_is_never_overwritten() {
    let dir = temp_dir("kubeconfig-guard");
    let path = dir.join("config");
    ensure_ours_to_overwrite(&path).unwrap();
    kube_sim::kubeconfig::write(&path, "http://127.0.0.1:1234").unwrap();
    ensure_ours_to_overwrite(&path).unwrap();
    std::fs::write(&path, "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n").unwrap();
    let err = ensure_ours_to_overwrite(&path).unwrap_err();
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("playground-{what}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn args(exit_when_ready: bool) -> PlaygroundArgs {
    let mut args = parse(&[]).unwrap();
    args.exit_when_ready = exit_when_ready;
    args
}

fn r(plural: &str) -> ResourceRef {
    ResourceRef::new(tikv_operator_api::GROUP, tikv_operator_api::VERSION, plural)
}

fn ready(reason: &str) -> Value {
    json!({"type": "Ready", "status": "True", "reason": reason, "message": "",
           "lastTransitionTime": "2025-01-01T00:00:00Z"})
}

/// Stands in for the operator: creates the instances and marks everything Ready, in
/// stages, through the store; then waits for the shutdown signal.
async fn mark_ready(store: Store) -> anyhow::Result<()> {
    let op = store.client("tikv-operator");
    let ns = Some("default");
    let step = || tokio::time::sleep(Duration::from_millis(150));
    for (plural, group, i, storage) in [
        ("pds", "pd", 0, "10Gi"),
        ("pds", "pd", 1, "10Gi"),
        ("tikvs", "tikv", 0, "100Gi"),
        ("tikvs", "tikv", 1, "100Gi"),
    ] {
        let spec = json!({"cluster": {"name": "basic"}, "subdomain": format!("{group}-{group}-peer"),
                          "version": "v8.5.0", "volumes": [{"name": "data", "storage": storage}]});
        let name = format!("{group}-{i}");
        op.create(&r(plural), ns, json!({"metadata": {"name": name}, "spec": spec}))?;
    }
    step().await;
    for i in 0..2 {
        let status = json!({"status": {"id": (i + 1).to_string(), "isLeader": i == 0, "conditions": [ready("Ready")]}});
        op.patch_status(&r("pds"), ns, &format!("pd-{i}"), &status)?;
        step().await;
    }
    for i in 0..2 {
        let status = json!({"status": {"id": (i + 4).to_string(), "state": "Serving", "conditions": [ready("Ready")]}});
        op.patch_status(&r("tikvs"), ns, &format!("tikv-{i}"), &status)?;
        step().await;
    }
    for (plural, name) in [("pdgroups", "pd"), ("tikvgroups", "tikv")] {
        let status = json!({"status": {"replicas": 2, "readyReplicas": 2, "conditions": [ready("Ready")]}});
        op.patch_status(&r(plural), ns, name, &status)?;
    }
    let cluster = op.get(&r("clusters"), ns, "basic")?;
    let mut condition = ready("Ready");
    condition["observedGeneration"] = cluster["metadata"]["generation"].clone();
    op.patch_status(&r("clusters"), ns, "basic", &json!({"status": {"conditions": [condition]}}))?;
    Ok(())
}

/// A `start_operator` whose operator runs `body` on the harness's store, then waits for
/// the shutdown signal and records that it saw it.
fn stand_in<F>(
    body: impl FnOnce(Store) -> F + Send + 'static,
    stopped: Arc<AtomicBool>,
) -> impl FnOnce(OperatorWiring, &Harness) -> BoxFuture<'static, anyhow::Result<()>>
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    move |wiring: OperatorWiring, harness: &Harness| {
        let store = harness.store().clone();
        let fut: BoxFuture<'static, anyhow::Result<()>> = Box::pin(async move {
            assert!(wiring.kubeconfig.is_file(), "the kubeconfig is written before the operator starts");
            assert!(wiring.proxy_url.starts_with("http://127.0.0.1:"), "{}", wiring.proxy_url);
            body(store).await?;
            wiring.shutdown.clone().requested().await;
            stopped.store(wiring.shutdown.is_requested(), Ordering::SeqCst);
            Ok(())
        });
        fut
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_the_examples_shows_progress_and_exits_once_ready() {
    let cwd = temp_dir("ready");
    let stopped = Arc::new(AtomicBool::new(false));
    let mut out = Vec::new();
    let start = stand_in(mark_ready, stopped.clone());
    run_with(args(true), &cwd, start, &mut out, std::future::pending()).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    println!("{out}");

    let kubeconfig = cwd.join("playground.kubeconfig");
    assert!(out.contains(&format!("kubeconfig: {}\n", kubeconfig.display())), "{out}");
    assert!(out.contains(&format!("export KUBECONFIG={}\n", kubeconfig.display())), "{out}");
    assert!(out.contains("  kubectl scale kvg tikv --replicas 5\n"), "{out}");
    assert!(out.contains("/pd/api/v1/stores"), "{out}");
    let applied = [
        "cluster.core.tikv.org/basic created",
        "pdgroup.core.tikv.org/pd created",
        "tikvgroup.core.tikv.org/tikv created",
    ];
    let at: Vec<usize> = applied.iter().map(|a| out.find(a).unwrap_or_else(|| panic!("{a} missing:\n{out}"))).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "applied in file order:\n{out}");
    assert!(out.contains("s] cluster   basic                (no status yet)"), "{out}");
    assert!(out.contains("s] tikv      tikv-0               no pod  Ready=?"), "{out}");
    assert!(out.contains("s] tikv      tikv-0               no pod  store 4 Serving  Ready=True"), "{out}");
    assert!(out.contains("s] pd        pd-0                 no pod  member 1 leader  Ready=True"), "{out}");
    assert!(out.contains("s] cluster   basic                Ready=True Ready"), "{out}");
    assert!(out.contains("\nReady in ") && out.contains("(simulated "), "{out}");
    assert!(!out.contains("Serving:"), "exits instead of serving:\n{out}");
    assert!(stopped.load(Ordering::SeqCst), "the operator was told to stop and returned");
    let config = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(config.contains("server: http://127.0.0.1:"), "{config}");
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_exit_when_ready_it_serves_until_interrupted() {
    let cwd = temp_dir("serve");
    let stopped = Arc::new(AtomicBool::new(false));
    let interrupted = Arc::new(tokio::sync::Notify::new());
    let ctrl_c = interrupted.clone();
    let body = move |store: Store| async move {
        mark_ready(store).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        ctrl_c.notify_one();
        Ok(())
    };
    let mut out = Vec::new();
    let interrupt = async move { interrupted.notified().await };
    run_with(args(false), &cwd, stand_in(body, stopped.clone()), &mut out, interrupt).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    let (ready, serving, interrupt) =
        (out.find("\nReady in ").unwrap(), out.find("Serving:").unwrap(), out.find("Interrupted").unwrap());
    assert!(ready < serving && serving < interrupt, "{out}");
    assert!(stopped.load(Ordering::SeqCst));
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_error_fails_the_playground_with_the_last_view() {
    let cwd = temp_dir("operator-error");
    let start = |_: OperatorWiring, _: &Harness| -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async { Err(anyhow::anyhow!("cannot reach PD")) })
    };
    let mut out = Vec::new();
    let err = run_with(args(true), &cwd, start, &mut out, std::future::pending()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("the operator failed: cannot reach PD"), "{text}");
    assert!(text.contains("cluster   basic"), "the last view:\n{text}");
    assert!(text.contains("safety watcher: no breaches"), "{text}");
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_never_ready_fails_after_the_bound_saying_where_it_is_stuck() {
    let cwd = temp_dir("stuck");
    let stopped = Arc::new(AtomicBool::new(false));
    let args = PlaygroundArgs { ready_timeout: 2, ..args(true) };
    let mut out = Vec::new();
    let idle = |_: Store| async { Ok(()) };
    let err =
        run_with(args, &cwd, stand_in(idle, stopped.clone()), &mut out, std::future::pending()).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("not Ready after 2s of simulated time"), "{text}");
    assert!(text.contains("  cluster   basic                (no status yet)"), "{text}");
    assert!(text.contains("  tikvgroup tikv                 0/3 ready  (no status yet)"), "{text}");
    assert!(stopped.load(Ordering::SeqCst), "the operator is stopped on failure too");
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[test]
fn the_playground_can_be_spawned_on_a_runtime() {
    fn assert_send<T: Send>(_: &T) {}
    let playground = run(parse(&[]).unwrap(), |_| Box::pin(async { Ok(()) }));
    assert_send(&playground);
}

#[test]
fn without_the_operator_the_clock_runs_at_real_speed() {
    let args = parse(&["--no-operator"]).unwrap();
    assert!(args.no_operator);
    let config = args.harness_config();
    assert_eq!(config.speed, 1.0, "a separate operator reads the system clock");
    assert_eq!(config.preset, HarnessConfig::fast().preset, "--timing fast keeps PD's fast preset");
    assert_eq!(parse(&[]).unwrap().harness_config().speed, FAST_SPEED, "the usual playground is unchanged");
}

#[test]
fn the_run_command_is_a_shell_line() {
    let args = run_args(Path::new("/tmp/my dir/k"), "http://127.0.0.1:4000");
    assert_eq!(
        command_line(Path::new("/bin/tikv-operator"), &args),
        "/bin/tikv-operator run --kubeconfig '/tmp/my dir/k' --pd-proxy http://127.0.0.1:4000 --metrics-addr 127.0.0.1:0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_operator_prints_the_run_command_and_starts_none() {
    let cwd = temp_dir("no-operator");
    let mut out = Vec::new();
    let args = PlaygroundArgs { no_operator: true, ready_timeout: 1, ..args(true) };
    let start = |_: OperatorWiring, _: &Harness| -> BoxFuture<'static, anyhow::Result<()>> {
        panic!("--no-operator starts no operator")
    };
    let err = run_with(args, &cwd, start, &mut out, std::future::pending()).await.unwrap_err();
    assert!(format!("{err:#}").contains("not Ready after 1s"), "{err:#}");
    let out = String::from_utf8(out).unwrap();
    let kubeconfig = cwd.join("playground.kubeconfig");
    let line = out.lines().find(|l| l.contains(" run --kubeconfig ")).unwrap_or_else(|| panic!("{out}"));
    let expected = format!(" run --kubeconfig {} --pd-proxy http://127.0.0.1:", kubeconfig.display());
    assert!(line.contains(&expected), "{line}");
    assert!(line.ends_with(" --metrics-addr 127.0.0.1:0"), "{line}");
    assert!(out.contains("fast PD timings at real speed"), "{out}");
    std::fs::remove_dir_all(&cwd).unwrap();
}
