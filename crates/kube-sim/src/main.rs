//! Runs kube-sim alone until Ctrl-C.

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "An in-memory Kubernetes API server emulator")]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Simulated clock speed factor.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Node objects to create.
    #[arg(long, default_value_t = 0)]
    nodes: u32,
    /// Zones to spread the nodes over.
    #[arg(long, default_value_t = 1)]
    zones: u32,
    /// Serve the API alone: no scheduler, kubelet, volume provisioner or DNS.
    #[arg(long)]
    api_only: bool,
    /// Also serve https (a bearer-token kubeconfig for kubectl needs it).
    #[arg(long)]
    https: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = kube_sim::Config {
        port: args.port,
        kubeconfig: args.kubeconfig,
        speed: args.speed,
        nodes: args.nodes,
        zones: args.zones,
        cluster: (!args.api_only).then(kube_sim::cluster::ClusterConfig::default),
        https: args.https,
        ..kube_sim::Config::default()
    };
    let sim = kube_sim::KubeSim::start(config).await?;
    println!("kube-sim serving {} (kubeconfig {})", sim.url(), sim.kubeconfig_path().display());
    if let Some(url) = sim.https_url() {
        println!("kube-sim serving {url} too");
    }
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
