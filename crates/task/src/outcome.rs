//! What a task says about itself when it returns, and the error it carries on failure.

use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The result of running one task.
///
/// | outcome    | meaning                                        | the runner                         |
/// |------------|------------------------------------------------|------------------------------------|
/// | `Complete` | done, nothing pending                          | runs the next task                 |
/// | `Wait`     | a precondition is unmet; a watch event re-triggers us | runs the next task; no requeue |
/// | `Retry`    | check again after `after`                      | runs the next task; requeue at the earliest `after` |
/// | `Fail`     | unexpected error                               | stops the rest of the pass, except `finally` tasks |
#[derive(Debug, Clone)]
pub enum Outcome {
    Complete(String),
    Wait(String),
    Retry { after: Duration, message: String },
    Fail(TaskError),
}

impl Outcome {
    pub fn complete(message: impl Into<String>) -> Self {
        Self::Complete(message.into())
    }

    /// `message` should name the event that will re-trigger the pass.
    pub fn wait(message: impl Into<String>) -> Self {
        Self::Wait(message.into())
    }

    pub fn retry(after: Duration, message: impl Into<String>) -> Self {
        Self::Retry { after, message: message.into() }
    }

    /// Accepts any error, a `String`, a `&str`, an `anyhow::Error` or a [`TaskError`].
    pub fn fail(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self::Fail(TaskError::new(error))
    }

    pub fn kind(&self) -> OutcomeKind {
        match self {
            Self::Complete(_) => OutcomeKind::Complete,
            Self::Wait(_) => OutcomeKind::Wait,
            Self::Retry { .. } => OutcomeKind::Retry,
            Self::Fail(_) => OutcomeKind::Fail,
        }
    }

    /// The human-readable message; for `Fail`, the error with its causes.
    pub fn message(&self) -> String {
        match self {
            Self::Complete(m) | Self::Wait(m) | Self::Retry { message: m, .. } => m.clone(),
            Self::Fail(e) => e.to_string(),
        }
    }
}

/// The kind of an [`Outcome`], without its payload.
///
/// The order is the aggregation order of a pass: the pass's kind is the `max` of its
/// tasks' kinds, so Fail beats Retry beats Wait beats Complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutcomeKind {
    Complete,
    Wait,
    Retry,
    Fail,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Wait => "wait",
            Self::Retry => "retry",
            Self::Fail => "fail",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The error of a failed task.
///
/// Cheap to clone (the error is shared), so a [`Report`](crate::Report) can hand it out.
/// `Display` prints the whole cause chain (`outer: cause: root`); because the chain is
/// already in the message, [`Error::source`] returns `None`. Use [`TaskError::inner`] or
/// [`TaskError::downcast_ref`] to inspect the original error.
#[derive(Clone)]
pub struct TaskError(Arc<dyn Error + Send + Sync + 'static>);

impl TaskError {
    /// Wraps an error; a `TaskError` passed in is kept as is, not wrapped twice.
    pub fn new(error: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        match error.into().downcast::<TaskError>() {
            Ok(already) => *already,
            Err(other) => Self(Arc::from(other)),
        }
    }

    pub fn inner(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.0
    }

    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TaskError").field(&self.to_string()).finish()
    }
}

impl Error for TaskError {}

impl From<String> for TaskError {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for TaskError {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

impl From<Box<dyn Error + Send + Sync>> for TaskError {
    fn from(error: Box<dyn Error + Send + Sync>) -> Self {
        Self::new(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped {
        context: &'static str,
        cause: std::io::Error,
    }

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.context)
        }
    }

    impl Error for Wrapped {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.cause)
        }
    }

    #[test]
    fn constructors_build_the_matching_variant() {
        assert!(matches!(Outcome::complete("done"), Outcome::Complete(m) if m == "done"));
        assert!(matches!(Outcome::wait("pod ready"), Outcome::Wait(m) if m == "pod ready"));
        let retry = Outcome::retry(Duration::from_secs(3), "pd busy");
        assert!(matches!(
            retry,
            Outcome::Retry { after, ref message } if after == Duration::from_secs(3) && message == "pd busy"
        ));
        assert!(matches!(Outcome::fail("boom"), Outcome::Fail(e) if e.to_string() == "boom"));
    }

    #[test]
    fn kind_and_message_follow_the_variant() {
        let cases = [
            (Outcome::complete("a"), OutcomeKind::Complete, "a"),
            (Outcome::wait("b"), OutcomeKind::Wait, "b"),
            (Outcome::retry(Duration::from_secs(1), "c"), OutcomeKind::Retry, "c"),
            (Outcome::fail("d"), OutcomeKind::Fail, "d"),
        ];
        for (outcome, kind, message) in cases {
            assert_eq!(outcome.kind(), kind);
            assert_eq!(outcome.message(), message);
        }
    }

    #[test]
    fn every_pair_aggregates_to_the_stronger_kind() {
        use OutcomeKind::*;
        let by_strength = [Complete, Wait, Retry, Fail];
        for (i, a) in by_strength.iter().enumerate() {
            for (j, b) in by_strength.iter().enumerate() {
                let expected = by_strength[i.max(j)];
                assert_eq!((*a).max(*b), expected, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn kind_displays_lowercase_and_pads() {
        assert_eq!(OutcomeKind::Retry.to_string(), "retry");
        assert_eq!(format!("[{:<6}]", OutcomeKind::Fail), "[fail  ]");
    }

    #[test]
    fn task_error_from_strings() {
        assert_eq!(TaskError::from("plain").to_string(), "plain");
        assert_eq!(TaskError::from(String::from("owned")).to_string(), "owned");
    }

    #[test]
    fn task_error_displays_the_whole_chain_and_has_no_source() {
        let error = TaskError::new(Wrapped { context: "patch pod", cause: std::io::Error::other("connection reset") });
        assert_eq!(error.to_string(), "patch pod: connection reset");
        assert!(error.source().is_none());
        assert_eq!(format!("{error:?}"), r#"TaskError("patch pod: connection reset")"#);
    }

    #[test]
    fn task_error_keeps_the_original_for_downcasting() {
        let error = TaskError::new(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        let io = error.downcast_ref::<std::io::Error>();
        assert_eq!(io.map(|e| e.kind()), Some(std::io::ErrorKind::NotFound));
        assert!(error.inner().is::<std::io::Error>());
    }

    #[test]
    fn task_error_is_not_wrapped_twice() {
        let first = TaskError::new(std::io::Error::other("disk"));
        let again = TaskError::new(first.clone());
        assert!(again.downcast_ref::<std::io::Error>().is_some());
        let Outcome::Fail(via_outcome) = Outcome::fail(first) else {
            panic!("expected Fail");
        };
        assert!(via_outcome.downcast_ref::<std::io::Error>().is_some());
    }
}
