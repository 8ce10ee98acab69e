//! Many clusters under one operator process run apart from the simulators: the
//! `tikv-operator run` binary, spawned as a child against the harness (as
//! `playground --no-operator` prints it), measured from outside: peak RSS from
//! `/proc/<pid>/status`, reconcile pass durations from its `/metrics`, time to every
//! Cluster Ready from the API server.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sim_harness::Harness;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::env::{Mode, Profile, apply_all, cluster_docs, harness_config, ready_clusters, sim_now};
use crate::report::ScalePoint;
use crate::stats::Histogram;

/// PD and TiKV instances per cluster: 3 PD + 5 TiKV.
pub const TIKV_PER_CLUSTER: usize = 5;
const PASS_DURATION: &str = "tikv_operator_pass_duration_seconds";

/// The `tikv-operator` binary beside this one, built first when cargo runs us (a no-op
/// when it is up to date).
pub fn operator_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_owned());
    }
    let me = std::env::current_exe().context("locating this binary")?;
    let dir = me.parent().context("this binary's directory")?;
    let binary = dir.join("tikv-operator");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = std::process::Command::new(cargo);
        build.args(["build", "-p", "tikv-operator", "--bin", "tikv-operator"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().context("building tikv-operator")?;
        anyhow::ensure!(status.success(), "building tikv-operator failed");
    }
    anyhow::ensure!(binary.exists(), "{} not found (build it, or pass --operator PATH)", binary.display());
    Ok(binary)
}

/// Peak resident set of `pid` (VmHWM), in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm_mib(&status)
}

/// The `VmHWM:` line (kB) in MiB.
pub fn vm_hwm_mib(status: &str) -> Option<f64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: f64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// The metrics address from the operator's log line (`... addr=127.0.0.1:PORT ...`).
pub fn metrics_addr(line: &str) -> Option<String> {
    if !line.contains("serving /metrics") {
        return None;
    }
    let rest = line.split("addr=").nth(1)?;
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

struct Operator {
    child: Child,
    metrics: String,
}

async fn spawn(binary: &Path, h: &Harness, profile: Profile) -> anyhow::Result<Operator> {
    let mut args = tikv_operator::playground::run_args(h.kubeconfig_path(), &h.proxy_url());
    args.push("--leader-elect=false".to_owned());
    args.extend(profile.run_args());
    let mut child = Command::new(binary)
        .args(&args)
        .env("RUST_LOG", "warn,tikv_operator_controllers::run=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let stdout = child.stdout.take().context("the operator's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(addr) = metrics_addr(&line) {
                return Some(addr);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .context("the operator never said where it serves /metrics")?;
    // Keep draining its log so that it never blocks on a full pipe (kept with BENCH_VERBOSE).
    let keep = std::env::var_os("BENCH_VERBOSE").is_some();
    tokio::spawn(async move {
        let mut kept = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if keep {
                kept.push(line);
                if kept.len() % 100 == 0 {
                    let _ = std::fs::write("/tmp/bench-operator.log", kept.join("\n"));
                }
            }
        }
        if keep {
            let _ = std::fs::write("/tmp/bench-operator.log", kept.join("\n"));
        }
    });
    Ok(Operator { child, metrics: format!("http://{addr}/metrics") })
}

async fn scrape(url: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    Ok(client.get(url).send().await?.text().await?)
}

/// `clusters` copies of the 8-instance cluster, one per namespace, applied at once;
/// the operator started as its own process; until every Cluster is Ready or `limit`
/// (real time).
pub async fn run(
    binary: &Path,
    profile: Profile,
    mode: Mode,
    clusters: usize,
    limit: Duration,
) -> anyhow::Result<ScalePoint> {
    let pods = clusters * (3 + TIKV_PER_CLUSTER);
    let nodes = u32::try_from(pods.div_ceil(60).div_ceil(3).max(2) * 3).unwrap_or(u32::MAX);
    let h = Harness::start(harness_config(mode, nodes, 3)).await?;
    let mut docs = Vec::new();
    for i in 0..clusters {
        docs.extend(cluster_docs(&format!("bench-{i:03}"), TIKV_PER_CLUSTER)?);
    }
    apply_all(&h, &docs)?;
    let result = async {
        let start = sim_now(&h);
        let started = Instant::now();
        let mut operator = spawn(binary, &h, profile).await?;
        let pid = operator.child.id().context("the operator's pid")?;
        let mut all_ready = None;
        let mut ready = 0;
        let mut peak = None;
        while started.elapsed() < limit {
            peak = peak_rss_mib(pid).or(peak);
            ready = ready_clusters(&h);
            if ready == clusters {
                all_ready = Some(sim_now(&h) - start);
                break;
            }
            if let Ok(Some(status)) = operator.child.try_wait() {
                anyhow::bail!("the operator exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let text = scrape(&operator.metrics).await.unwrap_or_default();
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            let _ = std::fs::write(format!("/tmp/bench-metrics-{clusters}.txt"), &text);
        }
        let passes = Histogram::parse(&text, PASS_DURATION);
        peak = peak_rss_mib(pid).or(peak);
        let _ = operator.child.start_kill();
        let _ = operator.child.wait().await;
        anyhow::Ok(ScalePoint {
            profile: profile.name().to_owned(),
            clusters,
            peak_rss_mib: peak,
            pass_p50: passes.quantile(0.5).millis(),
            pass_p99: passes.quantile(0.99).millis(),
            all_ready,
            ready,
        })
    }
    .await;
    h.shutdown().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_rss_is_read_from_vm_hwm() {
        let status = "Name:\ttikv-operator\nVmPeak:\t  200000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(vm_hwm_mib(status), Some(50.0));
        assert_eq!(vm_hwm_mib("Name:\tx\n"), None);
    }

    #[test]
    fn the_metrics_address_comes_from_the_operators_log_line() {
        let line = "2026-12-05T18:00:00Z  INFO tikv_operator_controllers::run: serving /metrics, /healthz, /readyz addr=127.0.0.1:40123";
        assert_eq!(metrics_addr(line).as_deref(), Some("127.0.0.1:40123"));
        assert_eq!(metrics_addr("INFO starting controllers addr=1.2.3.4:5"), None);
    }
}
