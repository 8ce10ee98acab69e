//! `tikv-operator-chaos --seeds N [--scenario NAME] [--seed S] [--trace-dir DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tikv_operator_chaos::{Scenario, Settings, run_seeds, summary};

/// Seeded crash and fault runs of the operator against the simulators.
#[derive(Parser, Debug)]
#[command(name = "tikv-operator-chaos")]
struct Args {
    /// Run seeds 0..N (from --first).
    #[arg(long, default_value_t = 14)]
    seeds: u64,
    /// The first seed of --seeds.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Run this one seed only (replays a failing seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Run this scenario whatever the seed picks.
    #[arg(long, value_parser = parse_scenario)]
    scenario: Option<Scenario>,
    /// Where each run's trace is written.
    #[arg(long, default_value = "target/chaos")]
    trace_dir: PathBuf,
    /// Simulated-clock speed.
    #[arg(long, default_value_t = 20.0)]
    speed: f64,
}

fn parse_scenario(name: &str) -> Result<Scenario, String> {
    Scenario::from_name(name).ok_or_else(|| {
        let all: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!("no scenario {name}; one of {}", all.join(", "))
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seeds: Vec<u64> = match args.seed {
        Some(seed) => vec![seed],
        None => (args.first..args.first + args.seeds).collect(),
    };
    let settings = Settings { speed: args.speed, trace_dir: Some(args.trace_dir), ..Settings::default() };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chaos: no runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcomes = runtime.block_on(run_seeds(&seeds, args.scenario, &settings));
    println!("{}", summary(&outcomes));
    if outcomes.iter().all(|o| o.ok()) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
