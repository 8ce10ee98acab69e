//! `tikv-operator`: runs TiKV clusters on Kubernetes.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tikv_operator_api::crds;

#[derive(Parser)]
#[command(name = "tikv-operator", version, about = "A Kubernetes operator for TiKV clusters (PD + TiKV)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of the five resources as YAML.
    Crds {
        /// Write one file per CRD into this directory instead of printing them.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crds { out_dir: None } => {
            let yaml = crds::all_to_yaml().context("rendering the CRDs as YAML")?;
            std::io::stdout().lock().write_all(yaml.as_bytes()).context("writing the CRDs")?;
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
