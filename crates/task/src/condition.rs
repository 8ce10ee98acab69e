//! Named guards over the pass's state.

/// A named predicate over the state, evaluated lazily: only when the runner reaches
/// the guard that holds it, so it sees whatever earlier tasks wrote.
pub struct Condition<S> {
    name: String,
    check: Box<dyn Fn(&S) -> bool + Send + Sync>,
    negated: bool,
}

/// A named condition; the name appears in the report when its guard is skipped.
///
/// Annotate the closure's argument (`|s: &State| s.paused`): Rust cannot infer it from
/// the return type.
pub fn cond<S>(name: impl Into<String>, check: impl Fn(&S) -> bool + Send + Sync + 'static) -> Condition<S> {
    Condition { name: name.into(), check: Box::new(check), negated: false }
}

/// `!cond` is the negation, named `not <name>`.
impl<S> std::ops::Not for Condition<S> {
    type Output = Condition<S>;

    fn not(self) -> Condition<S> {
        let name = match self.name.strip_prefix("not ") {
            Some(plain) if self.negated => plain.to_owned(),
            _ => format!("not {}", self.name),
        };
        Condition { name, check: self.check, negated: !self.negated }
    }
}

impl<S> Condition<S> {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn holds(&self, state: &S) -> bool {
        (self.check)(state) != self.negated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct State {
        paused: bool,
    }

    fn paused() -> Condition<State> {
        cond("paused", |s: &State| s.paused)
    }

    #[test]
    fn holds_reads_the_state_it_is_given() {
        assert!(paused().holds(&State { paused: true }));
        assert!(!paused().holds(&State { paused: false }));
        assert_eq!(paused().name(), "paused");
    }

    #[test]
    fn negation_negates_and_renames() {
        let running = !paused();
        assert_eq!(running.name(), "not paused");
        assert!(running.holds(&State { paused: false }));
        assert!(!running.holds(&State { paused: true }));
        let again = !running;
        assert_eq!(again.name(), "paused");
        assert!(again.holds(&State { paused: true }));
    }
}
