//! `cargo run -p pd-sim -- --port 2379 --preset fast --members 3 --stores 3`

use clap::Parser;
use pd_sim::{Config, Label, PdSim, Preset, StoreSpec};

#[derive(Parser, Debug)]
#[command(about = "A simulated PD cluster with TiKV stores, serving PD's HTTP API")]
struct Args {
    /// Port of the cluster address (0: any free port).
    #[arg(long, default_value_t = 2379)]
    port: u16,
    #[arg(long, value_enum, default_value_t = Preset::Realistic)]
    preset: Preset,
    /// PD members (each on its own port).
    #[arg(long, default_value_t = 3)]
    members: usize,
    #[arg(long, default_value_t = 3)]
    max_replicas: usize,
    /// Comma-separated, e.g. `zone,host`.
    #[arg(long, default_value = "")]
    location_labels: String,
    /// TiKV stores to register at start (`tikv-N:20160`, labels zone=zN%3, host=tikv-N).
    #[arg(long, default_value_t = 0)]
    stores: usize,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    #[arg(long, default_value_t = 30)]
    regions: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    let config = Config {
        preset: args.preset,
        speed: args.speed,
        port: args.port,
        members: args.members,
        max_replicas: args.max_replicas,
        location_labels: args.location_labels.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
        regions: args.regions,
        seed: args.seed,
        ..Config::default()
    };
    let sim = PdSim::start(config).await?;
    let control = sim.control();
    for n in 0..args.stores {
        let spec = StoreSpec {
            address: format!("tikv-{n}:20160"),
            labels: vec![
                Label { key: "zone".into(), value: format!("z{}", n % 3) },
                Label { key: "host".into(), value: format!("tikv-{n}") },
            ],
            ..StoreSpec::default()
        };
        let started = control.start_store(spec).await?;
        println!("store {} status {}", started.id, started.status_url);
    }
    for member in control.snapshot().members {
        if let Some(url) = control.member_url(&member.name).await {
            println!("member {} ({}) {url}", member.name, member.member_id);
        }
    }
    println!("pd-sim serving PD's API and /sim/... on {}", sim.url());
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
