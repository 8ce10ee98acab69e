//! `tikv-operator`: runs TiKV clusters on Kubernetes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::FutureExt;
use tikv_operator::parse_duration;
use tikv_operator::playground::timing::{SimulatedClock, TimingProfile};
use tikv_operator::playground::{self, PlaygroundArgs};
use tikv_operator::tools::{self, PodTool};
use tikv_operator_api::crds;
use tikv_operator_controllers::leader::{LeaderElectionConfig, default_identity};
use tikv_operator_controllers::telemetry::LogFormat;
use tikv_operator_controllers::{Concurrency, OperatorConfig, RunConfig};

#[derive(Parser)]
#[command(name = "tikv-operator", version, about = "A Kubernetes operator for TiKV clusters (PD + TiKV)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator against a cluster (in-cluster config, or a kubeconfig).
    Run(Box<RunArgs>),
    /// Kubernetes (kube-sim), PD and TiKV (pd-sim) and the operator in one process,
    /// with examples/ applied: a cluster to watch and drive with kubectl.
    Playground(PlaygroundArgs),
    /// Print the CustomResourceDefinitions of the five resources as YAML.
    Crds {
        /// Write one file per CRD into this directory instead of printing them.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Write the generated documentation: the API reference (`api.md`, from the CRDs)
    /// and the controllers' runbooks (`runbooks.md`, from their task lists).
    Docs {
        #[arg(long, value_name = "DIR", default_value = "docs")]
        out_dir: PathBuf,
    },
    /// Run inside TiKV pods.
    #[command(flatten)]
    Tool(PodTool),
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Args)]
struct RunArgs {
    /// Kubeconfig file; without it the in-cluster (or inferred) configuration is used.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "TIKV_OPERATOR_NAMESPACE")]
    namespace: Option<String>,
    /// Reconcile concurrency of every controller, unless overridden below.
    #[arg(long, default_value_t = 4)]
    concurrency: u16,
    /// Concurrency of the Cluster controller.
    #[arg(long)]
    concurrency_cluster: Option<u16>,
    /// Concurrency of the PDGroup controller.
    #[arg(long)]
    concurrency_pdgroup: Option<u16>,
    /// Concurrency of the PD instance controller.
    #[arg(long)]
    concurrency_pd: Option<u16>,
    /// Concurrency of the TiKVGroup controller.
    #[arg(long)]
    concurrency_tikvgroup: Option<u16>,
    /// Concurrency of the TiKV instance controller.
    #[arg(long)]
    concurrency_tikv: Option<u16>,
    /// The operator's timings: ours, or tidb-operator v2's (requeues, PD polls,
    /// readiness delays), to compare the two; the flags below override either.
    #[arg(long, value_enum, default_value_t = TimingProfile::Default)]
    timing_profile: TimingProfile,
    /// PD poll interval while something waits on PD (e.g. `1s`, `500ms`, or seconds)
    /// [default: 1s; v2: 30s].
    #[arg(long, value_parser = parse_duration)]
    pd_poll_fast: Option<Duration>,
    /// PD poll interval for two minutes after PD last changed or was waited on
    /// [default: 30s; v2: 30s].
    #[arg(long, value_parser = parse_duration)]
    pd_poll_slow: Option<Duration>,
    /// PD poll interval of a cluster nobody waits on
    /// [default: 90s; v2: 30s].
    #[arg(long, value_parser = parse_duration)]
    pd_poll_idle: Option<Duration>,
    /// HTTP proxy for PD requests (default: the environment's HTTP_PROXY, if any).
    #[arg(long, value_name = "URL")]
    pd_proxy: Option<String>,
    /// Log records as text or as JSON lines (filter with RUST_LOG).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    log_format: Format,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    metrics_addr: SocketAddr,
    /// The operator's own image, from which TiKV pods copy its binary for their preStop
    /// hook [default: this version's release image].
    #[arg(long, value_name = "IMAGE")]
    tools_image: Option<String>,
    #[command(flatten)]
    leader: LeaderArgs,
    /// On SIGTERM, how long reconciles in flight get to finish before the lease is
    /// released anyway (keep it below the pod's terminationGracePeriodSeconds).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    shutdown_grace: Duration,
}

/// Leader election on a coordination.k8s.io/v1 Lease (client-go's algorithm and defaults).
#[derive(Args)]
struct LeaderArgs {
    /// Run the controllers only while holding the Lease, so that replicas never
    /// reconcile at once (`--leader-elect=false` for a single replica).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, default_value = "tikv-operator")]
    leader_elect_lease_name: String,
    /// Namespace of the Lease [default: $POD_NAMESPACE, else --namespace, else default].
    #[arg(long, env = "POD_NAMESPACE")]
    leader_elect_namespace: Option<String>,
    /// How long a standby waits after the leader's last renewal before taking over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading (and exits).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    leader_elect_renew_deadline: Duration,
    /// How often the leader renews and a standby tries to acquire.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    leader_elect_retry_period: Duration,
    /// Lease time that must be left for a PD or Kubernetes write to be sent
    /// [default: lease duration - renew deadline].
    #[arg(long, value_parser = parse_duration)]
    leader_elect_fence_margin: Option<Duration>,
}

impl LeaderArgs {
    fn into_config(self, namespace: Option<&str>) -> Option<LeaderElectionConfig> {
        if !self.leader_elect {
            return None;
        }
        let lease_namespace = self
            .leader_elect_namespace
            .filter(|n| !n.is_empty())
            .or_else(|| namespace.map(str::to_owned))
            .unwrap_or_else(|| "default".to_owned());
        Some(LeaderElectionConfig {
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
            fence_margin: self
                .leader_elect_fence_margin
                .unwrap_or(self.leader_elect_lease_duration.saturating_sub(self.leader_elect_renew_deadline)),
            ..LeaderElectionConfig::new(lease_namespace, self.leader_elect_lease_name, default_identity())
        })
    }
}

impl RunArgs {
    // Settings without a flag keep their defaults (none today).
    #[allow(clippy::needless_update)]
    fn into_config(self) -> RunConfig {
        let all = self.concurrency;
        let concurrency = Concurrency {
            cluster: self.concurrency_cluster.unwrap_or(all),
            pd_group: self.concurrency_pdgroup.unwrap_or(all),
            pd: self.concurrency_pd.unwrap_or(all),
            tikv_group: self.concurrency_tikvgroup.unwrap_or(all),
            tikv: self.concurrency_tikv.unwrap_or(all),
        };
        let leader_election = self.leader.into_config(self.namespace.as_deref());
        let mut timing = self.timing_profile.timing();
        timing.pd_poll_fast = self.pd_poll_fast.unwrap_or(timing.pd_poll_fast);
        timing.pd_poll_slow = self.pd_poll_slow.unwrap_or(timing.pd_poll_slow);
        timing.pd_poll_idle = self.pd_poll_idle.unwrap_or(timing.pd_poll_idle);
        RunConfig {
            leader_election,
            shutdown_grace: self.shutdown_grace,
            kubeconfig: self.kubeconfig,
            operator: OperatorConfig {
                namespace: self.namespace,
                concurrency,
                timing,
                pd_proxy: self.pd_proxy,
                tools_image: self
                    .tools_image
                    .unwrap_or_else(|| tikv_operator_controllers::DEFAULT_TOOLS_IMAGE.to_owned()),
                ..OperatorConfig::default()
            },
            log_format: match self.log_format {
                Format::Text => LogFormat::Text,
                Format::Json => LogFormat::Json,
            },
            metrics_addr: Some(self.metrics_addr),
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let result = runtime.block_on(tikv_operator_controllers::run(args.into_config()));
            // Whatever is left (a lost leader's dropped reconciles) must not delay the exit.
            runtime.shutdown_timeout(Duration::from_secs(1));
            result.context("running the operator")?;
        }
        Command::Playground(args) => {
            // The progress view owns stdout; the operator logs warnings and errors to stderr.
            tikv_operator_controllers::telemetry::init_stderr("warn");
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let metrics_addr = args.metrics_addr;
            let timing = args.timing_profile.timing();
            runtime.block_on(playground::run(args, |wiring| {
                let operator = OperatorConfig { pd_proxy: Some(wiring.proxy_url), timing, ..OperatorConfig::default() };
                // The simulators' clock: the operator's timers run at their speed.
                let clock = Arc::new(SimulatedClock::new(wiring.clock));
                let shutdown = wiring.shutdown.requested().boxed().shared();
                async move {
                    let Some(addr) = metrics_addr else {
                        return Ok(tikv_operator_controllers::run_until_with_clock(
                            wiring.kubeconfig,
                            operator,
                            clock,
                            shutdown,
                        )
                        .await?);
                    };
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("binding --metrics-addr {addr}"))?;
                    if let Ok(bound) = listener.local_addr() {
                        eprintln!("Operator metrics: http://{bound}/metrics (/healthz, /readyz)");
                    }
                    Ok(tikv_operator_controllers::run_until_serving(
                        wiring.kubeconfig,
                        operator,
                        clock,
                        listener,
                        shutdown,
                    )
                    .await?)
                }
                .boxed()
            }))?;
        }
        Command::Crds { out_dir: None } => {
            let yaml = crds::all_to_yaml().context("rendering the CRDs as YAML")?;
            std::io::stdout().lock().write_all(yaml.as_bytes()).context("writing the CRDs")?;
        }
        Command::Tool(tool) => std::process::exit(tools::run(tool)),
        Command::Docs { out_dir } => {
            std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
            let pages = [
                ("api.md", tikv_operator_api::reference::markdown()),
                ("runbooks.md", tikv_operator_controllers::runbooks::markdown()),
            ];
            for (name, text) in pages {
                let path = out_dir.join(name);
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            }
        }
        Command::Crds { out_dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in crds::all() {
                let path = dir.join(crds::file_name(&crd));
                let yaml = crds::to_yaml(&crd).context("rendering a CRD as YAML")?;
                std::fs::write(&path, yaml).with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_controller_concurrency_overrides_the_default() {
        let cli = Cli::parse_from([
            "tikv-operator",
            "run",
            "--concurrency",
            "3",
            "--concurrency-tikv",
            "8",
            "--pd-poll-slow",
            "10s",
        ]);
        let Command::Run(args) = cli.command else { panic!("expected run") };
        let config = args.into_config();
        assert_eq!(config.operator.concurrency.pd, 3);
        assert_eq!(config.operator.concurrency.tikv, 8);
        assert_eq!(config.operator.timing.pd_poll_slow, Duration::from_secs(10));
        assert_eq!(config.operator.timing.pd_poll_fast, Duration::from_secs(1), "the profile's");
        assert_eq!(config.operator.tools_image, tikv_operator_controllers::DEFAULT_TOOLS_IMAGE);
    }

    #[test]
    fn the_timing_profile_is_ours_unless_v2_is_asked_for_and_flags_override_it() {
        let cli = Cli::parse_from(["tikv-operator", "run"]);
        let Command::Run(args) = cli.command else { panic!("expected run") };
        assert_eq!(args.into_config().operator.timing, tikv_operator_controllers::Timing::default());
        let cli = Cli::parse_from(["tikv-operator", "run", "--timing-profile", "v2", "--pd-poll-idle", "2m"]);
        let Command::Run(args) = cli.command else { panic!("expected run") };
        let timing = args.into_config().operator.timing;
        assert_eq!(timing.pd_poll_idle, Duration::from_secs(120));
        assert_eq!(
            tikv_operator_controllers::Timing { pd_poll_idle: Duration::from_secs(30), ..timing },
            tikv_operator_controllers::Timing::v2()
        );
        assert!(Cli::try_parse_from(["tikv-operator", "run", "--timing-profile", "v1"]).is_err());
        let cli = Cli::parse_from(["tikv-operator", "playground", "--timing-profile", "v2"]);
        let Command::Playground(args) = cli.command else { panic!("expected playground") };
        assert_eq!(args.timing_profile, TimingProfile::V2);
        let cli = Cli::parse_from(["tikv-operator", "playground"]);
        let Command::Playground(args) = cli.command else { panic!("expected playground") };
        assert_eq!(args.timing_profile, TimingProfile::Default);
    }

    #[test]
    fn leader_election_is_on_by_default_with_client_gos_timings() {
        let cli = Cli::parse_from(["tikv-operator", "run", "--namespace", "tikv", "--leader-elect-namespace", ""]);
        let Command::Run(args) = cli.command else { panic!("expected run") };
        let election = args.into_config().leader_election.unwrap();
        assert_eq!(election.lease_name, "tikv-operator");
        assert_eq!(election.lease_namespace, "tikv", "--namespace when no lease namespace is given");
        assert_eq!(election.lease_duration, Duration::from_secs(15));
        assert_eq!(election.renew_deadline, Duration::from_secs(10));
        assert_eq!(election.retry_period, Duration::from_secs(2));
        assert_eq!(election.fence_margin, Duration::from_secs(5));
        election.validate().unwrap();

        let cli = Cli::parse_from([
            "tikv-operator",
            "run",
            "--leader-elect-namespace",
            "ops",
            "--leader-elect-lease-duration",
            "3s",
            "--leader-elect-renew-deadline",
            "2s",
            "--leader-elect-retry-period",
            "500ms",
        ]);
        let Command::Run(args) = cli.command else { panic!("expected run") };
        let election = args.into_config().leader_election.unwrap();
        assert_eq!((election.lease_namespace.as_str(), election.fence_margin), ("ops", Duration::from_secs(1)));
        election.validate().unwrap();

        let cli = Cli::parse_from(["tikv-operator", "run", "--leader-elect=false"]);
        let Command::Run(args) = cli.command else { panic!("expected run") };
        assert!(args.into_config().leader_election.is_none());
    }

    #[test]
    fn the_pod_side_tools_are_subcommands_of_the_binary() {
        let cli = Cli::parse_from(["tikv-operator", "run", "--tools-image", "registry.local/op:dev"]);
        let Command::Run(args) = cli.command else { panic!("expected run") };
        assert_eq!(args.into_config().operator.tools_image, "registry.local/op:dev");
        let cli = Cli::parse_from(["/var/lib/tikv-operator/tikv-operator", "install", "/var/lib/tikv-operator"]);
        assert!(matches!(cli.command, Command::Tool(PodTool::Install { .. })));
        let cli =
            Cli::parse_from(["tikv-operator", "tikv-prestop", "--pd", "http://pd:2379", "--status-addr", "kv:20180"]);
        assert!(matches!(cli.command, Command::Tool(PodTool::TikvPrestop(_))));
    }
}
