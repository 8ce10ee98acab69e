//! `cargo run --release -p tikv-operator-bench -- [--quick] [--write docs/benchmarks.md]`
//!
//! Our operator with its default timings and the same operator with tidb-operator v2's
//! timings (the v2 profile), side by side in one run against the simulators: bring-up,
//! idle requests, API writes, rolling restarts, scale-in, and many clusters under one
//! operator process. Prints a Markdown table; `--write` writes the whole page.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod env;
mod pd_count;
mod report;
mod sampler;
mod scale;
mod scenarios;
mod stats;
mod timeline;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::env::{Mode, Profile};
use crate::report::{Comparison, Machine, Report, Unit};
use crate::scenarios::{ClusterFigures, Plan};

struct Args {
    quick: bool,
    write: Option<PathBuf>,
    operator: Option<PathBuf>,
    /// Cluster counts of the scale scenario.
    scale: Option<Vec<usize>>,
    /// Skip the single-cluster scenarios.
    scale_only: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args { quick: false, write: None, operator: None, scale: None, scale_only: false };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--scale-only" => args.scale_only = true,
            "--write" => args.write = Some(it.next().context("--write needs a path")?.into()),
            "--operator" => args.operator = Some(it.next().context("--operator needs a path")?.into()),
            "--scale" => {
                let list = it.next().context("--scale needs a list (10,30,100; empty for none)")?;
                args.scale = Some(list.split(',').filter(|s| !s.is_empty()).map(str::parse).collect::<Result<_, _>>()?);
            }
            "-h" | "--help" => {
                println!(
                    "tikv-operator-bench [--quick] [--write FILE] [--scale 10,30,100] [--scale-only] [--operator PATH]"
                );
                std::process::exit(0);
            }
            _ => anyhow::bail!("unknown argument {arg} (try --help)"),
        }
    }
    Ok(args)
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

fn comparisons(ours: &ClusterFigures, v2: &ClusterFigures) -> Vec<Comparison> {
    let mut rows = Vec::new();
    let both = |f: &dyn Fn(&ClusterFigures) -> Option<f64>| (f(ours), f(v2));
    let mut row = |scenario: &str, figure: &str, unit: Unit, f: &dyn Fn(&ClusterFigures) -> Option<f64>| {
        let (o, v) = both(f);
        rows.push(Comparison::new(scenario, figure, unit, o, v));
    };
    let bring_up = "bring-up, 3 PD + 3 TiKV";
    row(bring_up, "time to Ready", Unit::Seconds, &|c| secs(c.bring_up.as_ref().map(|b| b.total)));
    row(bring_up, "of which pods starting (simulators)", Unit::Seconds, &|c| {
        secs(c.bring_up.as_ref().map(|b| b.simulators))
    });
    row(bring_up, "beyond the simulators", Unit::Seconds, &|c| secs(c.bring_up.as_ref().map(|b| b.beyond)));
    row(bring_up, "API writes (Events apart)", Unit::Count, &|c| c.bring_up.as_ref().map(|b| b.writes as f64));
    row(bring_up, "objects created + condition changes", Unit::Count, &|c| {
        c.bring_up.as_ref().map(|b| (b.creates + b.transitions) as f64)
    });
    row(bring_up, "Events", Unit::Count, &|c| c.bring_up.as_ref().map(|b| b.events as f64));
    let idle = "idle, Ready cluster";
    row(idle, "API reads (watches apart)", Unit::PerMinute, &|c| c.idle.as_ref().map(|i| i.per_minute(i.api_reads)));
    rows.push(
        Comparison::new(
            idle,
            "API writes",
            Unit::PerMinute,
            ours.idle.as_ref().map(|i| i.per_minute(i.api_writes)),
            v2.idle.as_ref().map(|i| i.per_minute(i.api_writes)),
        )
        .target("0"),
    );
    rows.push(
        Comparison::new(
            idle,
            "PD reads",
            Unit::PerMinute,
            ours.idle.as_ref().map(|i| i.per_minute(i.pd_reads)),
            v2.idle.as_ref().map(|i| i.per_minute(i.pd_reads)),
        )
        .target("<= 2/min"),
    );
    let mut row =
        |scenario: &str, figure: &str, unit: Unit, f: &dyn Fn(&ClusterFigures) -> Option<f64>, target: Option<&str>| {
            let mut c = Comparison::new(scenario, figure, unit, f(ours), f(v2));
            if let Some(t) = target {
                c = c.target(t);
            }
            rows.push(c);
        };
    row(idle, "PD writes", Unit::PerMinute, &|c| c.idle.as_ref().map(|i| i.per_minute(i.pd_writes)), Some("0"));
    for (label, pick) in [
        (
            "rolling restart, 3 TiKV",
            (|c: &ClusterFigures| c.rolling3.clone()) as fn(&ClusterFigures) -> Option<scenarios::Rolling>,
        ),
        ("rolling restart, 9 TiKV", |c: &ClusterFigures| c.rolling9.clone()),
    ] {
        row(label, "total", Unit::Seconds, &|c| secs(pick(c).map(|r| r.total)), None);
        row(
            label,
            "operator-induced idle per store",
            Unit::Seconds,
            &|c| secs(pick(c).map(|r| r.per_store)),
            Some("<= 2 s"),
        );
        row(label, "stores with every step seen", Unit::Count, &|c| pick(c).map(|r| r.complete as f64), None);
    }
    let scale_in = "scale-in, 4 -> 3 TiKV";
    row(scale_in, "total", Unit::Seconds, &|c| secs(c.scale_in.as_ref().map(|s| s.total)), None);
    row(
        scale_in,
        "of which PD moving data, pod stopping",
        Unit::Seconds,
        &|c| secs(c.scale_in.as_ref().map(|s| s.simulators)),
        None,
    );
    row(scale_in, "beyond PD's data movement", Unit::Seconds, &|c| secs(c.scale_in.as_ref().map(|s| s.beyond)), None);
    rows
}

const NOTES: &[&str] = &[
    "Profiles: \"ours\" is `tikv-operator run`'s defaults. \"v2\" is `--timing-profile v2`, tidb-operator v2's timings (reference notes 1.4, 2.6, \"Numbers\"; `Timing::v2()`): PD polled every 30 s whether or not a task waits on it, every store and member reported each poll, 5 s rechecks, 15 s of readiness after a TiKV restart, an uncached schedulers read on every TiKV pass. Both run the same operator build and the same manifests (`examples/basic`, minReadySeconds 0 so that the user's own wait after each instance is left out, small resource requests).",
    "Bring-up: from the operator's start (manifests applied just before) to the Cluster's Ready condition. The simulators' share is the union of every pod's time from its creation to its Ready condition (volume binding, scheduling, container start, PD and TiKV process start-up and catch-up, as kube-sim and pd-sim's fast preset time them); \"beyond\" is the rest, where no pod was starting: the operator's own work and waits.",
    "API writes per bring-up: every create, update, patch and delete the operator sent (kube-sim's request log, Events counted apart) from its start until it stopped writing. Beside it, the least a bring-up needs: the objects it created plus every condition change of its objects (sampled every 20 ms).",
    "Idle: a cluster of its own with the operator's timers on the simulated clock (40x): after Ready, 3 s of real time without an operator write and 150 s of simulated time (the PD cache's 2-minute tail of 30 s polls after anything changed, and a poll more), a window of simulated time (900 s; 300 s with --quick); API requests from kube-sim's request log (watches apart), PD requests counted by a forward proxy in front of the harness' proxy (the harness logs only PD writes). Counts are per simulated minute: what the timers cause, not how fast the operator works.",
    "Rolling restart: a TiKV config change under the default update strategy (Restart), which takes every store through the same steps as a version upgrade: evict its leaders, delete the pod, start the new one, give leaders back. Operator-induced idle is the span from the user's change to the group reporting every store updated, less every moment some store was being evicted (evict-leader entry added until pd-sim shows 0 leaders), its pod stopping (delete request until gone) or starting (new pod seen until Ready), or its leaders coming back (entry removed until half of its leaders of before are back, what a restart waits for); divided by the stores.",
    "Scale-in: 4 -> 3 stores; the span from the user's change to the group Ready with 3 stores and the pod gone, less the store's leader eviction, PD's data movement (DELETE /store until pd-sim shows Tombstone) and the pod stopping.",
    "Scale: N copies of the cluster (3 PD + 5 TiKV, one namespace each, 3 regions per PD cluster), applied at once, driven by one `tikv-operator run --leader-elect=false` process (this build) spawned against the harness, as `playground --no-operator` prints it. Peak RSS is VmHWM from /proc/<pid>/status; pass p50/p99 come from its `tikv_operator_pass_duration_seconds` histograms (every controller, interpolated within buckets 1, 5, 10, 25, 50, 100, 250, 500 ms, 1, 5 s); time to all Ready is simulated time from its start.",
];

/// The heading under which a page's earlier, hand-written measurements are kept.
const EARLIER: &str = "## Earlier measurements";

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    tikv_operator_pd::install_default_crypto_provider();
    tikv_operator_controllers::telemetry::init_stderr("error");
    let started = Instant::now();
    let mode = Mode::REALISTIC_SPEED;
    let plan = if args.quick {
        Plan { idle_window: Duration::from_secs(300), rolling3: true, scale_in: false, rolling9: false }
    } else {
        Plan { idle_window: Duration::from_secs(900), rolling3: true, scale_in: true, rolling9: true }
    };
    let mut figures = Vec::new();
    if !args.scale_only {
        for profile in Profile::BOTH {
            if args.quick && profile == Profile::V2 {
                figures.push(ClusterFigures::default());
                continue;
            }
            eprintln!(
                "[{:>5.0}s] single-cluster scenarios, profile {}",
                started.elapsed().as_secs_f64(),
                profile.name()
            );
            figures.push(scenarios::run(profile, mode, plan).await);
        }
    } else {
        figures = vec![ClusterFigures::default(), ClusterFigures::default()];
    }
    let scale_counts = args.scale.clone().unwrap_or_else(|| if args.quick { Vec::new() } else { vec![10, 30, 100] });
    let mut scale = Vec::new();
    let mut problems: Vec<String> = figures.iter().flat_map(|f| f.problems.clone()).collect();
    if !scale_counts.is_empty() {
        let binary = scale::operator_binary(args.operator.as_deref())?;
        for profile in Profile::BOTH {
            if args.quick && profile == Profile::V2 {
                continue;
            }
            for &n in &scale_counts {
                eprintln!(
                    "[{:>5.0}s] scale: {n} clusters, profile {}",
                    started.elapsed().as_secs_f64(),
                    profile.name()
                );
                match scale::run(&binary, profile, mode, n, Duration::from_secs(900)).await {
                    Ok(point) => scale.push(point),
                    Err(e) => problems.push(format!("scale {n} ({}): {e:#}", profile.name())),
                }
            }
        }
    }
    let mut command = String::from("cargo run --release -p tikv-operator-bench --");
    for a in std::env::args().skip(1) {
        command.push(' ');
        command.push_str(&a);
    }
    let mut notes: Vec<String> = NOTES.iter().map(|s| (*s).to_owned()).collect();
    notes.extend(problems.iter().map(|p| format!("Not measured: {p}")));
    let report = Report {
        command,
        machine: Machine::detect(),
        duration: started.elapsed(),
        modes: vec![mode.describe(), Mode::SIMULATED_TIMERS.describe()],
        comparisons: comparisons(&figures[0], &figures[1]),
        scale,
        notes,
    };
    println!("{}", report.tables());
    for p in &problems {
        eprintln!("problem: {p}");
    }
    if let Some(path) = &args.write {
        // Earlier measurements kept below the generated part stay.
        let kept = std::fs::read_to_string(path).ok().and_then(|old| old.find(EARLIER).map(|at| old[at..].to_owned()));
        let page = report.markdown() + &kept.map(|k| format!("\n{k}")).unwrap_or_default();
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
