//! The record of one pass: what ran, in what order, with what outcome, and the verdict.

use std::fmt;
use std::time::Duration;

use crate::outcome::{Outcome, OutcomeKind, TaskError};

/// Whether an entry's task ran (and how it ended) or its guard did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryStatus {
    Ran(OutcomeKind),
    Skipped,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ran(kind) => kind.as_str(),
            Self::Skipped => "skipped",
        }
    }
}

impl fmt::Display for EntryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One line of a report: a task that ran, or a guard whose condition did not hold (then
/// the entry is named after the condition and its message is `condition false`).
#[derive(Debug, Clone)]
pub struct Entry {
    name: String,
    path: Vec<String>,
    scope_ids: Vec<u32>,
    status: EntryStatus,
    message: String,
    retry_after: Option<Duration>,
    duration: Duration,
}

impl Entry {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The labels of the enclosing combinators, outermost first, e.g.
    /// `["finally", "if object_loaded"]`. Plain blocks add no label.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    pub fn depth(&self) -> usize {
        self.path.len()
    }

    pub fn status(&self) -> EntryStatus {
        self.status
    }

    /// The outcome kind, or `None` for a skipped entry.
    pub fn kind(&self) -> Option<OutcomeKind> {
        match self.status {
            EntryStatus::Ran(kind) => Some(kind),
            EntryStatus::Skipped => None,
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `after` of a `Retry` outcome.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    fn status_label(&self) -> String {
        match self.retry_after {
            Some(after) => format!("{} {}", self.status, human(after)),
            None => self.status.to_string(),
        }
    }
}

/// Why a pass ended before its last task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// An `if_break` (at its condition's name) or a `break_` (at `"break"`).
    Break { at: String },
    /// The task that failed first.
    Fail { at: String },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Break { at } => write!(f, "break at {at}"),
            Self::Fail { at } => write!(f, "fail at {at}"),
        }
    }
}

/// What the controller should do after a pass.
#[derive(Debug, Clone)]
pub enum PassResult {
    /// Every task completed or waits for a watch event: no requeue.
    Done,
    /// Some task asked to check again; the earliest `after` of the pass.
    RequeueAfter(Duration),
    /// A task failed: return the error so the controller backs off.
    Failed(TaskError),
}

/// The record of one pass.
#[derive(Debug, Clone)]
pub struct Report {
    controller: String,
    object: String,
    pass: u64,
    entries: Vec<Entry>,
    outcome: OutcomeKind,
    requeue_after: Option<Duration>,
    error: Option<TaskError>,
    stopped: Option<Stop>,
    duration: Duration,
}

impl Report {
    pub fn controller(&self) -> &str {
        &self.controller
    }

    pub fn object(&self) -> &str {
        &self.object
    }

    /// The pass number, counted per runner from 1.
    pub fn pass(&self) -> u64 {
        self.pass
    }

    /// Every task that ran or guard that was skipped, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The first entry with this name.
    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// Whether a task of this name ran.
    pub fn ran(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name && matches!(e.status, EntryStatus::Ran(_)))
    }

    /// Whether a guard of this (condition) name was skipped.
    pub fn skipped(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name == name && e.status == EntryStatus::Skipped)
    }

    /// The names of the tasks that ran, in order.
    pub fn ran_names(&self) -> Vec<&str> {
        self.entries.iter().filter(|e| matches!(e.status, EntryStatus::Ran(_))).map(|e| e.name.as_str()).collect()
    }

    /// The aggregate: the strongest outcome of all tasks that ran; `Complete` if none ran.
    pub fn outcome(&self) -> OutcomeKind {
        self.outcome
    }

    /// The earliest `after` of all `Retry` outcomes; acted on only when the aggregate is
    /// `Retry`.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }

    /// The error of the first task that failed.
    pub fn error(&self) -> Option<&TaskError> {
        self.error.as_ref()
    }

    pub fn stopped(&self) -> Option<&Stop> {
        self.stopped.as_ref()
    }

    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// What the controller should do: `Done` for Complete and Wait (await the next
    /// change), `RequeueAfter` for Retry, `Failed` for Fail (return the error, back off).
    pub fn action(&self) -> PassResult {
        match (self.outcome, &self.error, self.requeue_after) {
            (OutcomeKind::Fail, Some(error), _) => PassResult::Failed(error.clone()),
            (OutcomeKind::Fail, None, _) => PassResult::Failed(TaskError::from("task failed")),
            (OutcomeKind::Retry, _, Some(after)) => PassResult::RequeueAfter(after),
            _ => PassResult::Done,
        }
    }

    /// The entries on one line: `name:status`, with the message for anything that did not
    /// simply complete.
    pub fn compact_entries(&self) -> String {
        let parts: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                let status = e.status_label();
                let quiet = matches!(e.status, EntryStatus::Ran(OutcomeKind::Complete))
                    || e.status == EntryStatus::Skipped
                    || e.message.is_empty();
                if quiet { format!("{}:{status}", e.name) } else { format!("{}:{status} ({})", e.name, e.message) }
            })
            .collect();
        parts.join(", ")
    }

    /// Emits the report as one `tracing` event (target `task`): at info when the pass
    /// completed, waited or retries, at warn when it failed.
    pub fn log(&self) {
        let requeue_after = self.requeue_after.map(human).unwrap_or_default();
        let stopped = self.stopped.as_ref().map(Stop::to_string).unwrap_or_default();
        let duration = human(self.duration);
        let tasks = self.compact_entries();
        if let Some(error) = &self.error {
            tracing::warn!(
                target: "task",
                controller = %self.controller,
                object = %self.object,
                pass = self.pass,
                outcome = %self.outcome,
                requeue_after = %requeue_after,
                duration = %duration,
                stopped = %stopped,
                error = %error,
                tasks = %tasks,
                "reconcile pass failed"
            );
        } else {
            tracing::info!(
                target: "task",
                controller = %self.controller,
                object = %self.object,
                pass = self.pass,
                outcome = %self.outcome,
                requeue_after = %requeue_after,
                duration = %duration,
                stopped = %stopped,
                tasks = %tasks,
                "reconcile pass"
            );
        }
    }

    fn headline(&self) -> String {
        let mut line = format!("{} {} pass {}: {}", self.controller, self.object, self.pass, self.outcome);
        if let (OutcomeKind::Retry, Some(after)) = (self.outcome, self.requeue_after) {
            line.push_str(&format!(" after {}", human(after)));
        }
        if let Some(stop) = &self.stopped {
            line.push_str(&format!(", stopped by {stop}"));
        }
        line.push_str(&format!(" in {}", human(self.duration)));
        line
    }
}

/// A table with one row per entry and a header row for each combinator entered.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Row {
            task: String,
            status: String,
            duration: String,
            message: String,
        }
        let mut rows = Vec::new();
        let mut open: &[u32] = &[];
        for entry in &self.entries {
            let shared = open.iter().zip(&entry.scope_ids).take_while(|(a, b)| a == b).count();
            for (depth, label) in entry.path.iter().enumerate().skip(shared) {
                rows.push(Row {
                    task: format!("{}{label}", "  ".repeat(depth)),
                    status: String::new(),
                    duration: String::new(),
                    message: String::new(),
                });
            }
            open = &entry.scope_ids;
            let skipped = entry.status == EntryStatus::Skipped;
            rows.push(Row {
                task: format!("{}{}", "  ".repeat(entry.depth()), entry.name),
                status: entry.status_label(),
                duration: if skipped { "-".to_owned() } else { human(entry.duration) },
                message: entry.message.clone(),
            });
        }
        let width = |column: fn(&Row) -> &str, title: &str| {
            rows.iter().map(|r| column(r).chars().count()).chain([title.len()]).max().unwrap_or_default()
        };
        let task_w = width(|r| &r.task, "TASK");
        let status_w = width(|r| &r.status, "STATUS");
        let duration_w = width(|r| &r.duration, "DURATION");

        writeln!(f, "{}", self.headline())?;
        let line = |f: &mut fmt::Formatter<'_>, t: &str, s: &str, d: &str, m: &str| {
            let text = format!("{t:<task_w$}  {s:<status_w$}  {d:<duration_w$}  {m}");
            writeln!(f, "{}", text.trim_end())
        };
        line(f, "TASK", "STATUS", "DURATION", "MESSAGE")?;
        for r in &rows {
            line(f, &r.task, &r.status, &r.duration, &r.message)?;
        }
        Ok(())
    }
}

/// Short, readable durations: `5s`, `1.50s`, `2.3ms`, `40µs`.
pub(crate) fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        if d.subsec_nanos() == 0 { format!("{}s", d.as_secs()) } else { format!("{:.2}s", d.as_secs_f64()) }
    } else if d >= Duration::from_millis(1) {
        if d.subsec_nanos().is_multiple_of(1_000_000) {
            format!("{}ms", d.as_millis())
        } else {
            format!("{:.1}ms", d.as_secs_f64() * 1e3)
        }
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// Collects entries while the runner walks the tree.
#[derive(Default)]
pub(crate) struct Recorder {
    entries: Vec<Entry>,
    error: Option<TaskError>,
    stopped: Option<Stop>,
    next_scope: u32,
}

/// Where in the tree an entry sits; see [`Entry::path`].
#[derive(Clone, Default)]
pub(crate) struct Place {
    path: Vec<String>,
    scope_ids: Vec<u32>,
}

impl Recorder {
    /// A new place nested in `parent` under `label`, with an id distinct from every
    /// other scope of the pass so the table can tell two adjacent same-named guards apart.
    pub(crate) fn enter(&mut self, parent: &Place, label: String) -> Place {
        self.next_scope += 1;
        let mut place = parent.clone();
        place.path.push(label);
        place.scope_ids.push(self.next_scope);
        place
    }

    pub(crate) fn ran(&mut self, name: &str, place: &Place, outcome: Outcome, duration: Duration) {
        let message = outcome.message();
        let retry_after = match &outcome {
            Outcome::Retry { after, .. } => Some(*after),
            _ => None,
        };
        let status = EntryStatus::Ran(outcome.kind());
        if let Outcome::Fail(error) = outcome {
            self.error.get_or_insert(error);
        }
        self.push(name, place, status, message, retry_after, duration);
    }

    pub(crate) fn skipped(&mut self, condition: &str, place: &Place) {
        let message = "condition false".to_owned();
        self.push(condition, place, EntryStatus::Skipped, message, None, Duration::ZERO);
    }

    /// Keeps the first reason the pass stopped.
    pub(crate) fn stop(&mut self, stop: Stop) {
        self.stopped.get_or_insert(stop);
    }

    fn push(
        &mut self,
        name: &str,
        place: &Place,
        status: EntryStatus,
        message: String,
        retry_after: Option<Duration>,
        duration: Duration,
    ) {
        self.entries.push(Entry {
            name: name.to_owned(),
            path: place.path.clone(),
            scope_ids: place.scope_ids.clone(),
            status,
            message,
            retry_after,
            duration,
        });
    }

    pub(crate) fn finish(self, controller: &str, object: &str, pass: u64, duration: Duration) -> Report {
        let outcome = self.entries.iter().filter_map(Entry::kind).max().unwrap_or(OutcomeKind::Complete);
        let requeue_after = self.entries.iter().filter_map(|e| e.retry_after).min();
        Report {
            controller: controller.to_owned(),
            object: object.to_owned(),
            pass,
            entries: self.entries,
            outcome,
            requeue_after,
            error: self.error,
            stopped: self.stopped,
            duration,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Metadata, Subscriber, span};

    use super::*;
    use crate::testing::*;
    use crate::{finally, if_, if_break};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// A failed pass with nesting, built entry by entry so durations are fixed.
    fn sample() -> Report {
        let mut r = Recorder::default();
        let top = Place::default();
        r.ran("load_instance", &top, Outcome::complete("loaded"), ms(2));
        r.skipped("paused", &top);
        let pod_retry = Outcome::retry(Duration::from_secs(5), "pod not ready");
        r.ran("pod", &top, pod_retry, us(340));
        r.ran("store", &top, Outcome::wait("store up"), us(20));
        r.stop(Stop::Fail { at: "write_status".into() });
        let fin = r.enter(&top, "finally".into());
        let guard = r.enter(&fin, "if instance_loaded".into());
        r.ran("conditions", &guard, Outcome::complete("computed"), us(15));
        let conflict = Outcome::fail("conflict");
        r.ran("write_status", &guard, conflict, Duration::from_millis(1500));
        r.finish("tikv", "default/basic-tikv-0", 7, ms(4))
    }

    #[test]
    fn aggregates_come_from_the_entries() {
        let report = sample();
        assert_eq!(report.controller(), "tikv");
        assert_eq!(report.object(), "default/basic-tikv-0");
        assert_eq!(report.pass(), 7);
        assert_eq!(report.outcome(), OutcomeKind::Fail);
        assert_eq!(report.requeue_after(), Some(Duration::from_secs(5)));
        assert_eq!(report.error().map(|e| e.to_string()), Some("conflict".into()));
        assert_eq!(report.duration(), ms(4));
    }

    #[test]
    fn entries_keep_order_names_nesting_statuses_and_messages() {
        let report = sample();
        let rows: Vec<(&str, usize, EntryStatus, &str)> =
            report.entries().iter().map(|e| (e.name(), e.depth(), e.status(), e.message())).collect();
        use OutcomeKind::*;
        assert_eq!(
            rows,
            [
                ("load_instance", 0, EntryStatus::Ran(Complete), "loaded"),
                ("paused", 0, EntryStatus::Skipped, "condition false"),
                ("pod", 0, EntryStatus::Ran(Retry), "pod not ready"),
                ("store", 0, EntryStatus::Ran(Wait), "store up"),
                ("conditions", 2, EntryStatus::Ran(Complete), "computed"),
                ("write_status", 2, EntryStatus::Ran(Fail), "conflict"),
            ]
        );
        let entry = report.entry("write_status").unwrap();
        assert_eq!(entry.path(), ["finally", "if instance_loaded"]);
        assert_eq!(entry.kind(), Some(Fail));
        assert_eq!(entry.duration(), Duration::from_millis(1500));
        assert_eq!(report.entry("paused").and_then(Entry::kind), None);
    }

    #[test]
    fn lookups_tell_ran_from_skipped() {
        let report = sample();
        assert!(report.ran("pod"));
        assert!(!report.skipped("pod"));
        assert!(report.skipped("paused"));
        assert!(!report.ran("paused"));
        assert!(report.entry("missing").is_none());
        assert_eq!(report.ran_names(), ["load_instance", "pod", "store", "conditions", "write_status"]);
    }

    #[test]
    fn displays_as_an_aligned_indented_table() {
        let expected = "\
tikv default/basic-tikv-0 pass 7: fail, stopped by fail at write_status in 4ms
TASK                  STATUS    DURATION  MESSAGE
load_instance         complete  2ms       loaded
paused                skipped   -         condition false
pod                   retry 5s  340µs     pod not ready
store                 wait      20µs      store up
finally
  if instance_loaded
    conditions        complete  15µs      computed
    write_status      fail      1.50s     conflict
";
        assert_eq!(sample().to_string(), expected);
    }

    #[test]
    fn headline_of_a_retry_pass_names_the_requeue() {
        let mut r = Recorder::default();
        let retry = Outcome::retry(Duration::from_secs(3), "later");
        r.ran("pod", &Place::default(), retry, us(1));
        let report = r.finish("pd", "ns/pd-0", 2, us(9));
        let headline = report.to_string().lines().next().map(str::to_owned);
        assert_eq!(headline.as_deref(), Some("pd ns/pd-0 pass 2: retry after 3s in 9µs"));
    }

    #[test]
    fn adjacent_guards_with_the_same_name_get_separate_headers() {
        let mut r = Recorder::default();
        let top = Place::default();
        let first = r.enter(&top, "if loaded".into());
        r.ran("a", &first, Outcome::complete(""), us(1));
        let second = r.enter(&top, "if loaded".into());
        r.ran("b", &second, Outcome::complete(""), us(1));
        let text = r.finish("c", "o", 1, us(2)).to_string();
        let headers = text.lines().filter(|l| *l == "if loaded").count();
        assert_eq!(headers, 2, "{text}");
    }

    #[test]
    fn display_of_a_real_pass_names_every_task_and_status() {
        let mut trace = Trace::with_flags(&["loaded"]);
        let report = run_on(
            &mut trace,
            [
                step("load"),
                if_break(is("paused"), []),
                retries("pod", 5),
                waits("store"),
                finally([if_(is("loaded"), [fails("write_status")])]),
            ],
        );
        let text = report.to_string();
        for (task, status) in [
            ("load", "complete"),
            ("paused", "skipped"),
            ("pod", "retry 5s"),
            ("store", "wait"),
            ("write_status", "fail"),
        ] {
            let row = text
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{task} ")))
                .unwrap_or_else(|| panic!("no row for {task} in\n{text}"));
            assert!(row.contains(status), "{row}");
        }
        assert!(text.contains("\n  if loaded\n    write_status "), "{text}");
    }

    #[test]
    fn compact_entries_fit_one_line() {
        assert_eq!(
            sample().compact_entries(),
            "load_instance:complete, paused:skipped, pod:retry 5s (pod not ready), \
             store:wait (store up), conditions:complete, write_status:fail (conflict)"
        );
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(human(Duration::from_secs(60)), "60s");
        assert_eq!(human(Duration::from_millis(1500)), "1.50s");
        assert_eq!(human(ms(250)), "250ms");
        assert_eq!(human(us(2340)), "2.3ms");
        assert_eq!(human(us(40)), "40µs");
        assert_eq!(human(Duration::ZERO), "0µs");
    }

    #[test]
    fn action_maps_each_aggregate() {
        let report = |outcome: Outcome| {
            let mut r = Recorder::default();
            r.ran("t", &Place::default(), outcome, us(1));
            r.finish("c", "o", 1, us(1))
        };
        let secs = Duration::from_secs;
        assert!(matches!(report(Outcome::complete("")).action(), PassResult::Done));
        assert!(matches!(report(Outcome::wait("")).action(), PassResult::Done));
        assert!(matches!(
            report(Outcome::retry(secs(8), "")).action(),
            PassResult::RequeueAfter(d) if d == secs(8)
        ));
        assert!(matches!(
            report(Outcome::fail("x")).action(),
            PassResult::Failed(e) if e.to_string() == "x"
        ));
    }

    #[derive(Debug)]
    struct Captured {
        level: Level,
        target: String,
        fields: BTreeMap<String, String>,
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Captured>>>);

    struct Fields<'a>(&'a mut BTreeMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }

        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

        fn event(&self, event: &Event<'_>) {
            let mut fields = BTreeMap::new();
            event.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(Captured {
                level: *event.metadata().level(),
                target: event.metadata().target().to_owned(),
                fields,
            });
        }

        fn enter(&self, _: &span::Id) {}

        fn exit(&self, _: &span::Id) {}
    }

    fn logged(report: &Report) -> Vec<Captured> {
        let capture = Capture::default();
        tracing::subscriber::with_default(capture.clone(), || report.log());
        std::mem::take(&mut *capture.0.lock().unwrap())
    }

    #[test]
    fn a_failed_pass_logs_one_warning_with_its_fields() {
        let events = logged(&sample());
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event.level, Level::WARN);
        assert_eq!(event.target, "task");
        let field = |name: &str| event.fields.get(name).map(String::as_str);
        assert_eq!(field("controller"), Some("tikv"));
        assert_eq!(field("object"), Some("default/basic-tikv-0"));
        assert_eq!(field("pass"), Some("7"));
        assert_eq!(field("outcome"), Some("fail"));
        assert_eq!(field("requeue_after"), Some("5s"));
        assert_eq!(field("duration"), Some("4ms"));
        assert_eq!(field("error"), Some("conflict"));
        assert_eq!(field("stopped"), Some("fail at write_status"));
        assert_eq!(field("tasks"), Some(sample().compact_entries().as_str()));
    }

    #[test]
    fn a_pass_that_did_not_fail_logs_one_info_record() {
        let (report, _) = run([step("a"), retries("b", 2)]);
        let events = logged(&report);
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event.level, Level::INFO);
        assert_eq!(event.target, "task");
        let field = |name: &str| event.fields.get(name).map(String::as_str);
        assert_eq!(field("outcome"), Some("retry"));
        assert_eq!(field("requeue_after"), Some("2s"));
        assert_eq!(field("tasks"), Some("a:complete, b:retry 2s (b retries)"));
        assert_eq!(field("error"), None);
    }
}
