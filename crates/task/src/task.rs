//! The unit of work: a named step that reads and writes the pass's state.

use futures::future::BoxFuture;

use crate::node::Node;
use crate::outcome::Outcome;

/// One named step of a reconcile pass.
///
/// Implement it on a struct when a task deserves its own file; use [`task`] or
/// [`sync_task`] for a closure. The future borrows the state for as long as it runs,
/// so a task may await while holding `&mut S` (which needs `S: Send`).
pub trait Task<S>: Send + Sync {
    /// The name shown in reports, logs and metrics; keep it stable and domain-named.
    fn name(&self) -> &str;

    fn run<'a>(&'a self, state: &'a mut S) -> BoxFuture<'a, Outcome>;
}

/// A task whose body is asynchronous.
///
/// ```
/// use tikv_operator_task::{task, Node, Outcome};
///
/// struct State { n: u32 }
///
/// let bump: Node<State> = task("bump", |s: &mut State| {
///     Box::pin(async move {
///         s.n += 1;
///         Outcome::complete("bumped")
///     })
/// });
/// ```
pub fn task<S, F>(name: impl Into<String>, body: F) -> Node<S>
where
    F: for<'a> Fn(&'a mut S) -> BoxFuture<'a, Outcome> + Send + Sync + 'static,
{
    Node::task(AsyncFnTask { name: name.into(), body })
}

/// A task whose body is synchronous.
pub fn sync_task<S, F>(name: impl Into<String>, body: F) -> Node<S>
where
    F: Fn(&mut S) -> Outcome + Send + Sync + 'static,
{
    Node::task(SyncFnTask { name: name.into(), body })
}

struct AsyncFnTask<F> {
    name: String,
    body: F,
}

impl<S, F> Task<S> for AsyncFnTask<F>
where
    F: for<'a> Fn(&'a mut S) -> BoxFuture<'a, Outcome> + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(&'a self, state: &'a mut S) -> BoxFuture<'a, Outcome> {
        (self.body)(state)
    }
}

struct SyncFnTask<F> {
    name: String,
    body: F,
}

impl<S, F> Task<S> for SyncFnTask<F>
where
    F: Fn(&mut S) -> Outcome + Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn run<'a>(&'a self, state: &'a mut S) -> BoxFuture<'a, Outcome> {
        Box::pin(futures::future::ready((self.body)(state)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Runner;

    #[derive(Default)]
    struct State {
        n: u32,
    }

    /// A task written as a struct, the way a task with its own file looks.
    struct Double;

    impl Task<State> for Double {
        fn name(&self) -> &str {
            "double"
        }

        fn run<'a>(&'a self, state: &'a mut State) -> BoxFuture<'a, Outcome> {
            Box::pin(async move {
                state.n *= 2;
                Outcome::complete(format!("n is {}", state.n))
            })
        }
    }

    #[tokio::test]
    async fn closure_struct_and_sync_tasks_all_run_against_the_state() {
        let runner = Runner::new(
            "test",
            [
                task("bump", |s: &mut State| {
                    Box::pin(async move {
                        s.n += 1;
                        Outcome::complete("bumped")
                    })
                }),
                Node::task(Double),
                sync_task("add_ten", |s: &mut State| {
                    s.n += 10;
                    Outcome::complete(format!("n is {}", s.n))
                }),
            ],
        );
        let mut state = State::default();
        let report = runner.run("k", &mut state).await;
        assert_eq!(state.n, 12);
        assert_eq!(report.ran_names(), ["bump", "double", "add_ten"]);
        assert_eq!(report.entry("add_ten").map(|e| e.message()), Some("n is 12"));
    }

    #[tokio::test]
    async fn an_async_task_may_hold_the_state_across_awaits() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let rx = std::sync::Mutex::new(Some(rx));
        let runner = Runner::new(
            "test",
            [
                task("yield_then_write", |s: &mut State| {
                    Box::pin(async move {
                        tokio::task::yield_now().await;
                        s.n = 5;
                        Outcome::complete("")
                    })
                }),
                task("receive", move |s: &mut State| {
                    let rx = rx.lock().unwrap().take();
                    Box::pin(async move {
                        match rx {
                            Some(rx) => match rx.await {
                                Ok(v) => {
                                    s.n += v;
                                    Outcome::complete("received")
                                }
                                Err(_) => Outcome::fail("sender dropped"),
                            },
                            None => Outcome::fail("already received"),
                        }
                    })
                }),
            ],
        );
        let sender = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.send(37)
        });
        let mut state = State::default();
        let report = runner.run("k", &mut state).await;
        assert_eq!(sender.await.unwrap(), Ok(()));
        assert_eq!(state.n, 42);
        assert_eq!(report.entry("receive").map(|e| e.message()), Some("received"));
    }
}
