//! The operator binary's commands that run inside TiKV pods, not beside the operator:
//! `install` (the pod's init container copies the binary into an `emptyDir`, since the
//! TiKV image has no tool to wait for leaders) and `tikv-prestop` (the TiKV
//! container's preStop hook, [`crate::prestop`]).
//!
//! They run as the real binary's subcommands ([`run`]), or as a program of the
//! simulated cluster ([`simulated`], [`register_simulated`]): the same parsing and the
//! same hook, on the simulated clock and through the pod's simulated network.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use sim_harness::{Harness, Program, ProgramEnv};

use crate::prestop::{self, Proxy, TikvPrestopArgs, TokioWaiter, Waiter};

#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum PodTool {
    /// Copy this binary into DIR (the TiKV pod's init container does, for its preStop
    /// hook).
    Install {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// The TiKV pod's preStop hook: wait (bounded) until the store leads no region.
    TikvPrestop(TikvPrestopArgs),
}

/// Just the pod-side commands, for the simulated binary.
#[derive(Debug, Parser)]
#[command(name = "tikv-operator", version)]
struct ToolCli {
    #[command(subcommand)]
    tool: PodTool,
}

/// Runs a pod-side command in this process; the exit code.
pub fn run(tool: PodTool) -> i32 {
    match tool {
        PodTool::Install { dir } => match std::env::current_exe().and_then(|exe| install(&exe, &dir)) {
            Ok(to) => {
                println!("installed {}", to.display());
                0
            }
            Err(e) => {
                eprintln!("install: {e}");
                1
            }
        },
        PodTool::TikvPrestop(args) => {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("tikv-prestop: giving up: cannot start the async runtime: {e}");
                    return 0;
                }
            };
            let outcome = runtime.block_on(async {
                let waiter = TokioWaiter::default();
                prestop::run(&args, &waiter, &Proxy::System, &mut |line| println!("tikv-prestop: {line}")).await
            });
            println!("tikv-prestop: {outcome}");
            0
        }
    }
}

/// Copies the executable `exe` (the running one) into `dir` under its own file name.
fn install(exe: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let name = exe.file_name().ok_or_else(|| std::io::Error::other("the executable has no file name"))?;
    let to = dir.join(name);
    // Copied next to the target, then renamed: a hook never sees half a binary.
    let partial = dir.join(format!(".{}.partial", name.to_string_lossy()));
    std::fs::copy(exe, &partial)?;
    std::fs::rename(&partial, &to)?;
    Ok(to)
}

/// The simulated clock, for the hook's waiting.
struct SimWaiter(sim_clock::SimClock);

impl Waiter for SimWaiter {
    fn elapsed(&self) -> Duration {
        self.0.now().since_start()
    }

    fn sleep(&self, duration: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.0.sleep(duration))
    }
}

/// The binary as a program of the simulated cluster: parses its arguments as the real
/// one does and runs the pod-side commands with the simulated pod's clock, network and
/// files.
pub fn simulated() -> Program {
    Arc::new(|env: ProgramEnv| Box::pin(run_simulated(env)))
}

async fn run_simulated(env: ProgramEnv) -> i32 {
    let tool = match ToolCli::try_parse_from(&env.argv) {
        Ok(cli) => cli.tool,
        Err(e) => {
            env.print(e.to_string());
            return e.exit_code();
        }
    };
    match tool {
        PodTool::Install { dir } => {
            let name = Path::new(&env.argv[0]).file_name().map(|n| n.to_string_lossy().into_owned());
            let to = dir.join(name.unwrap_or_else(|| "tikv-operator".into()));
            match env.copy_self_to(&to.to_string_lossy()) {
                Ok(()) => {
                    env.print(format!("installed {}", to.display()));
                    0
                }
                Err(e) => {
                    env.print(format!("install: {e}"));
                    1
                }
            }
        }
        PodTool::TikvPrestop(args) => {
            let waiter = SimWaiter(env.clock.clone());
            let proxy = Proxy::Url(env.http_proxy.clone());
            let outcome = prestop::run(&args, &waiter, &proxy, &mut |line| env.print(line)).await;
            env.print(outcome.to_string());
            0
        }
    }
}

/// Puts the simulated binary where the operator's pods expect it: at
/// [`TOOLS_BINARY`](tikv_operator_controllers::tikv::render::TOOLS_BINARY) in
/// `tools_image` (any tag).
pub fn register_simulated(harness: &Harness, tools_image: &str) {
    harness.register_program(
        image_repository(tools_image),
        tikv_operator_controllers::tikv::render::TOOLS_BINARY,
        simulated(),
    );
}

/// `ghcr.io/x/y:v1` → `ghcr.io/x/y`; `localhost:5000/y` stays (a port, not a tag).
fn image_repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_parse_as_the_binary_has_them() {
        let cli = ToolCli::try_parse_from([
            "/var/lib/tikv-operator/tikv-operator",
            "tikv-prestop",
            "--pd",
            "http://pd:2379",
            "--status-addr",
            "kv-0.peer.ns.svc:20180",
            "--progress-timeout",
            "1m",
        ])
        .unwrap();
        let PodTool::TikvPrestop(args) = cli.tool else { panic!("expected tikv-prestop") };
        assert_eq!(args.pd, "http://pd:2379");
        assert_eq!(args.status_addr, "kv-0.peer.ns.svc:20180");
        assert_eq!(args.progress_timeout, Duration::from_secs(60));
        assert_eq!((args.find_timeout, args.interval), (Duration::from_secs(15), Duration::from_secs(1)));
        let cli = ToolCli::try_parse_from(["/tikv-operator", "install", "/var/lib/x"]).unwrap();
        assert_eq!(cli.tool, PodTool::Install { dir: "/var/lib/x".into() });
        assert!(ToolCli::try_parse_from(["/tikv-operator", "run"]).is_err(), "only the pod-side commands");
    }

    #[test]
    fn install_copies_the_executable_into_the_directory() {
        let root = std::env::temp_dir().join(format!("tikv-operator-install-{}", std::process::id()));
        let (bin, dir) = (root.join("bin"), root.join("prestop"));
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        let exe = bin.join("tikv-operator");
        std::fs::write(&exe, b"\x7fELF not really").unwrap();
        let to = install(&exe, &dir).unwrap();
        assert_eq!(to, dir.join("tikv-operator"));
        assert_eq!(std::fs::read(&to).unwrap(), std::fs::read(&exe).unwrap());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "no partial copy left");
        assert!(install(&exe, &root.join("missing")).is_err(), "a missing directory is an error");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn image_repositories_drop_the_tag_only() {
        assert_eq!(image_repository("ghcr.io/tikv/tikv-operator:v0.1.0"), "ghcr.io/tikv/tikv-operator");
        assert_eq!(image_repository("localhost:5000/tikv-operator"), "localhost:5000/tikv-operator");
        assert_eq!(image_repository("x/y@sha256:abc"), "x/y");
    }
}
