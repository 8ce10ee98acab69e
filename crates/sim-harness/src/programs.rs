//! Programs that simulated pods run besides `pd-server` and `tikv-server`: executables
//! of an image (the operator's own binary, say), run as a container of that image, or
//! by an `exec` preStop hook of a container that can reach them.
//!
//! A program is registered at a path in an image ([`Programs::register`]); a
//! [`ContainerRuntime`] for the image runs its containers (init containers included)
//! by the program at their command's path. A program can copy its own executable to
//! a path ([`ProgramEnv::copy_self_to`]): on an `emptyDir` volume, the pod's other
//! containers that mount the volume can then run it (this is how an init container
//! hands a tool to a container whose image lacks it). A hook's command is looked up the
//! same way, through the container's mounts, else in its image; a program found
//! nowhere fails as a missing binary does (the runtime's `stat ...: no such file or
//! directory`), which the kubelet reports as a failed hook.
//!
//! A program runs with the container's environment, on the simulated clock, and
//! reaches the cluster through an HTTP proxy that stands for the pod's network (the
//! pod's DNS search path; `localhost` is the pod). Every run is recorded with its
//! output ([`Programs::runs`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use kube_sim::cluster::runtime::{BoxFuture, strip_registry};
use kube_sim::cluster::{
    ContainerContext, ContainerExit, ContainerProcess, ContainerRuntime, Mount, MountSource, RuntimeRegistry,
    StopRequest,
};
use sim_clock::{SimClock, SimInstant};
use tokio::task::JoinHandle;

use crate::cmdline::invocation;
use crate::proxy::PodGateway;

/// A simulated executable: given how it was run, its exit code.
pub type Program = Arc<dyn Fn(ProgramEnv) -> BoxFuture<i32> + Send + Sync>;

/// What a running program gets.
pub struct ProgramEnv {
    /// `argv[0]` (the path it was run by), then its arguments.
    pub argv: Vec<String>,
    /// The container's environment.
    pub env: Vec<(String, String)>,
    pub clock: SimClock,
    /// `http://127.0.0.1:PORT`: the pod's network, as an HTTP proxy (`HTTP_PROXY`).
    pub http_proxy: String,
    pub namespace: String,
    pub pod_name: String,
    run: usize,
    programs: Arc<Programs>,
    pod_uid: String,
    mounts: Vec<Mount>,
    this: Program,
}

impl ProgramEnv {
    /// A line of output (what the program writes to stdout).
    pub fn print(&self, line: impl Into<String>) {
        let line = line.into();
        tracing::debug!(pod = %format!("{}/{}", self.namespace, self.pod_name), program = %self.argv[0], "{line}");
        if let Some(run) = self.programs.runs().get_mut(self.run) {
            run.output.push(line);
        }
    }

    /// Copies the running program's executable to `path` (as `cp /proc/self/exe path`
    /// would). On an `emptyDir` mount, other containers of the pod mounting that volume
    /// see it; a read-only volume refuses it.
    pub fn copy_self_to(&self, path: &str) -> Result<(), String> {
        match mount_at(&self.mounts, path) {
            Some((m, rel)) => match &m.source {
                MountSource::EmptyDir if !m.read_only => {
                    let key = (self.pod_uid.clone(), m.volume.clone());
                    self.programs.empty_dirs().entry(key).or_default().insert(rel, self.this.clone());
                    Ok(())
                }
                MountSource::ConfigMap { .. } | MountSource::Secret { .. } | MountSource::Projected { .. } => {
                    Err(format!("cp: cannot create regular file '{path}': Read-only file system"))
                }
                _ if m.read_only => Err(format!("cp: cannot create regular file '{path}': Read-only file system")),
                // Written where nothing else looks (the claim, the container's own layer).
                _ => Ok(()),
            },
            None => Ok(()),
        }
    }
}

/// One run of a program.
#[derive(Clone, Debug)]
pub struct ProgramRun {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// Run by a preStop hook (else as the container's process).
    pub hook: bool,
    pub argv: Vec<String>,
    pub started: SimInstant,
    pub ended: Option<SimInstant>,
    /// `None` while it runs, or when it was killed (its container stopped, or the hook's
    /// grace period ran out).
    pub exit: Option<i32>,
    pub output: Vec<String>,
}

type Files = BTreeMap<String, Program>;

/// The registered programs, what programs copied into `emptyDir` volumes, and every
/// run; shared by the runtimes and the processes.
pub struct Programs {
    images: RwLock<Vec<(String, Files)>>,
    /// (pod UID, volume) → relative path → program.
    empty_dirs: Mutex<HashMap<(String, String), Files>>,
    runs: Mutex<Vec<ProgramRun>>,
    gateway: PodGateway,
    clock: SimClock,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The mount holding `path` (the deepest one) and the path inside its volume.
fn mount_at<'a>(mounts: &'a [Mount], path: &str) -> Option<(&'a Mount, String)> {
    let under = |m: &Mount| {
        let root = m.mount_path.trim_end_matches('/');
        path == root || path.strip_prefix(root).is_some_and(|r| r.starts_with('/'))
    };
    let m = mounts.iter().filter(|m| under(m)).max_by_key(|m| m.mount_path.trim_end_matches('/').len())?;
    let rel = path[m.mount_path.trim_end_matches('/').len()..].trim_start_matches('/');
    let rel = match &m.sub_path {
        Some(sub) => format!("{}/{rel}", sub.trim_end_matches('/')).trim_end_matches('/').to_owned(),
        None => rel.to_owned(),
    };
    Some((m, rel))
}

/// How containerd reports an executable that is not there.
fn not_found(path: &str) -> String {
    format!("exec: \"{path}\": stat {path}: no such file or directory")
}

fn image_matches(prefix: &str, image: &str) -> bool {
    image.starts_with(prefix) || strip_registry(image).starts_with(prefix)
}

impl Programs {
    pub(crate) fn new(gateway: PodGateway, clock: SimClock) -> Arc<Programs> {
        Arc::new(Programs {
            images: RwLock::default(),
            empty_dirs: Mutex::default(),
            runs: Mutex::default(),
            gateway,
            clock,
        })
    }

    fn empty_dirs(&self) -> MutexGuard<'_, HashMap<(String, String), Files>> {
        lock(&self.empty_dirs)
    }

    fn runs(&self) -> MutexGuard<'_, Vec<ProgramRun>> {
        lock(&self.runs)
    }

    /// Puts `program` at `path` in the images starting with `image_prefix` (with or
    /// without a registry host, as kube-sim matches images), and runs the containers of
    /// those images through `runtimes`.
    pub fn register(self: &Arc<Self>, runtimes: &RuntimeRegistry, image_prefix: &str, path: &str, program: Program) {
        let mut images = self.images.write().unwrap_or_else(|p| p.into_inner());
        match images.iter_mut().find(|(p, _)| p == image_prefix) {
            Some((_, files)) => {
                files.insert(path.to_owned(), program);
            }
            None => {
                images.push((image_prefix.to_owned(), BTreeMap::from([(path.to_owned(), program)])));
                runtimes.register(image_prefix, Arc::new(ProgramRuntime(self.clone())));
            }
        }
    }

    /// Every run so far, in start order.
    pub fn all_runs(&self) -> Vec<ProgramRun> {
        self.runs().clone()
    }

    /// The program at `path` of an image (the longest matching prefix's files).
    fn in_image(&self, image: &str, path: &str) -> Option<Program> {
        let images = self.images.read().unwrap_or_else(|p| p.into_inner());
        let (_, files) = images.iter().filter(|(p, _)| image_matches(p, image)).max_by_key(|(p, _)| p.len())?;
        files.get(path).cloned()
    }

    /// The program a container runs at `path`: through its mounts (what programs copied
    /// into an `emptyDir`), else in its image. Only absolute paths (no `$PATH` search).
    fn resolve(&self, ctx: &ContainerContext, path: &str) -> Option<Program> {
        if !path.starts_with('/') {
            return None;
        }
        match mount_at(&ctx.mounts, path) {
            Some((m, rel)) if m.source == MountSource::EmptyDir => {
                self.empty_dirs().get(&(ctx.pod_uid.clone(), m.volume.clone()))?.get(&rel).cloned()
            }
            Some(_) => None,
            None => self.in_image(ctx.container.image.as_deref().unwrap_or_default(), path),
        }
    }

    /// Runs `command` (`sh -c` of one simple command too) in the container of `ctx`,
    /// as an exec into it does: `Err` when the executable is not there; else its exit
    /// code. Dropping the future kills the program.
    pub async fn exec(self: &Arc<Self>, ctx: &ContainerContext, command: &[String], hook: bool) -> Result<i32, String> {
        self.run(ctx, command, hook).await.map(|(_, code)| code)
    }

    /// [`exec`](Self::exec), with the index of the run.
    async fn run(
        self: &Arc<Self>,
        ctx: &ContainerContext,
        command: &[String],
        hook: bool,
    ) -> Result<(usize, i32), String> {
        let inv = invocation(command, &[], "", &ctx.env)?;
        let program = self.resolve(ctx, &inv.program).ok_or_else(|| not_found(&inv.program))?;
        let argv: Vec<String> = std::iter::once(inv.program).chain(inv.args).collect();
        let proxy = self
            .gateway
            .open(&ctx.namespace, ctx.pod_ip)
            .await
            .map_err(|e| format!("cannot open the pod's network: {e}"))?;
        let run = {
            let mut runs = self.runs();
            runs.push(ProgramRun {
                namespace: ctx.namespace.clone(),
                pod: ctx.pod_name.clone(),
                container: ctx.container.name.clone(),
                hook,
                argv: argv.clone(),
                started: self.clock.now(),
                ended: None,
                exit: None,
                output: Vec::new(),
            });
            runs.len() - 1
        };
        let env = ProgramEnv {
            argv,
            env: ctx.env.clone(),
            clock: self.clock.clone(),
            http_proxy: proxy.url(),
            namespace: ctx.namespace.clone(),
            pod_name: ctx.pod_name.clone(),
            run,
            programs: self.clone(),
            pod_uid: ctx.pod_uid.clone(),
            mounts: ctx.mounts.clone(),
            this: program.clone(),
        };
        // Records the end, or the kill when the future is dropped first.
        let mut ended = Ended { programs: self.clone(), run, exit: None };
        let code = program(env).await;
        ended.exit = Some(code);
        drop(proxy);
        Ok((run, code))
    }

    /// The last lines of a run's output (a termination message from the logs).
    fn tail(&self, run: usize) -> String {
        let runs = self.runs();
        let lines = runs.get(run).map(|r| r.output.as_slice()).unwrap_or_default();
        let text = lines[lines.len().saturating_sub(80)..].join("\n");
        let cut = text.len().saturating_sub(2048);
        text[text.ceil_char_boundary(cut)..].to_owned()
    }
}

struct Ended {
    programs: Arc<Programs>,
    run: usize,
    exit: Option<i32>,
}

impl Drop for Ended {
    fn drop(&mut self) {
        let now = self.programs.clock.now();
        if let Some(run) = self.programs.runs().get_mut(self.run) {
            run.ended = Some(now);
            run.exit = self.exit;
        }
    }
}

/// Runs the containers of the images that hold programs.
struct ProgramRuntime(Arc<Programs>);

/// A container whose process is a program.
struct ProgramProcess(Mutex<Option<JoinHandle<()>>>);

impl ProgramProcess {
    fn abort(&self) {
        if let Some(task) = lock(&self.0).take() {
            task.abort();
        }
    }
}

impl ContainerRuntime for ProgramRuntime {
    fn start(&self, ctx: ContainerContext) -> BoxFuture<Result<Arc<dyn ContainerProcess>, String>> {
        let programs = self.0.clone();
        Box::pin(async move {
            let command: Vec<String> = ctx.command.iter().chain(&ctx.args).cloned().collect();
            let inv = invocation(&command, &[], "", &ctx.env)?;
            if programs.resolve(&ctx, &inv.program).is_none() {
                return Err(format!(
                    "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: {}: unknown",
                    not_found(&inv.program)
                ));
            }
            let task = tokio::spawn(async move {
                let fallback = ctx.container.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
                let (code, message) = match programs.run(&ctx, &command, false).await {
                    Ok((run, code)) if code != 0 && fallback => (code, programs.tail(run)),
                    Ok((_, code)) => (code, String::new()),
                    Err(e) => (127, e),
                };
                ctx.exit.exited(code, message);
            });
            Ok(Arc::new(ProgramProcess(Mutex::new(Some(task)))) as Arc<dyn ContainerProcess>)
        })
    }
}

impl ContainerProcess for ProgramProcess {
    fn stop(&self, _request: StopRequest) -> BoxFuture<ContainerExit> {
        self.abort();
        // SIGTERM, which a program without a handler dies of.
        Box::pin(async { ContainerExit::new(143, "") })
    }

    fn kill(&self) {
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(volume: &str, path: &str, source: MountSource) -> Mount {
        Mount { volume: volume.into(), mount_path: path.into(), sub_path: None, read_only: false, source }
    }

    #[test]
    fn paths_resolve_to_the_deepest_mount() {
        let mounts = vec![
            mount("data", "/var/lib", MountSource::Other),
            mount("tools", "/var/lib/tools/", MountSource::EmptyDir),
        ];
        let (m, rel) = mount_at(&mounts, "/var/lib/tools/bin/x").unwrap();
        assert_eq!((m.volume.as_str(), rel.as_str()), ("tools", "bin/x"));
        assert_eq!(mount_at(&mounts, "/var/lib/toolsx").unwrap().0.volume, "data");
        assert!(mount_at(&mounts, "/etc/x").is_none());
        let sub = vec![Mount { sub_path: Some("a".into()), ..mount("tools", "/t", MountSource::EmptyDir) }];
        assert_eq!(mount_at(&sub, "/t/x").unwrap().1, "a/x");
    }

    #[test]
    fn images_match_with_or_without_a_registry() {
        assert!(image_matches("tikv/tikv-operator", "ghcr.io/tikv/tikv-operator:v1"));
        assert!(image_matches("ghcr.io/tikv/tikv-operator", "ghcr.io/tikv/tikv-operator:v1"));
        assert!(!image_matches("tikv/tikv-operator", "pingcap/tikv:v8"));
    }
}
