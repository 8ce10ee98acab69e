//! The report: one Markdown table of every figure for both profiles and their ratio,
//! the scale table, and the notes saying how each figure was measured.

use std::fmt::Write as _;
use std::time::Duration;

/// How a figure is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Count,
    PerMinute,
}

impl Unit {
    pub fn show(self, value: f64) -> String {
        match self {
            Unit::Seconds => format!("{value:.2} s"),
            Unit::Count => format!("{value:.0}"),
            Unit::PerMinute => format!("{value:.1}/min"),
        }
    }
}

/// One figure of one scenario, for our default timings and for the v2 profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    pub figure: String,
    pub unit: Unit,
    pub ours: Option<f64>,
    pub v2: Option<f64>,
    /// What ours must meet, if the issue sets a target.
    pub target: Option<String>,
}

impl Comparison {
    pub fn new(scenario: &str, figure: &str, unit: Unit, ours: Option<f64>, v2: Option<f64>) -> Comparison {
        Comparison { scenario: scenario.into(), figure: figure.into(), unit, ours, v2, target: None }
    }

    pub fn target(mut self, target: &str) -> Comparison {
        self.target = Some(target.into());
        self
    }

    /// v2 / ours: how many times the v2 profile's figure is ours.
    pub fn ratio(&self) -> String {
        match (self.ours, self.v2) {
            (Some(o), Some(v)) if o > 0.0 => format!("{:.1}x", v / o),
            (Some(_), Some(v)) if v > 0.0 => "ours 0".to_owned(),
            (Some(_), Some(_)) => "both 0".to_owned(),
            _ => "-".to_owned(),
        }
    }
}

/// A table of already formatted cells.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        out.push_str(&line(&self.header));
        out.push_str(&line(&vec!["---".to_owned(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

pub fn comparison_table(rows: &[Comparison]) -> Table {
    let show = |unit: Unit, v: Option<f64>| v.map_or("not measured".to_owned(), |v| unit.show(v));
    Table {
        header: ["Scenario", "Figure", "ours (default)", "v2 profile", "v2 / ours", "target (ours)"]
            .map(str::to_owned)
            .to_vec(),
        rows: rows
            .iter()
            .map(|c| {
                vec![
                    c.scenario.clone(),
                    c.figure.clone(),
                    show(c.unit, c.ours),
                    show(c.unit, c.v2),
                    c.ratio(),
                    c.target.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    }
}

/// One operator process driving `clusters` clusters.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalePoint {
    pub profile: String,
    pub clusters: usize,
    /// Peak resident set (VmHWM), MiB.
    pub peak_rss_mib: Option<f64>,
    pub pass_p50: String,
    pub pass_p99: String,
    /// Simulated time from the apply to every Cluster Ready; `None` when not all were.
    pub all_ready: Option<Duration>,
    pub ready: usize,
}

pub fn scale_table(points: &[ScalePoint]) -> Table {
    let mut rows = Vec::new();
    for p in points {
        let first = points.iter().find(|q| q.profile == p.profile);
        let growth = |now: Option<f64>, base: Option<f64>| match (now, base) {
            (Some(n), Some(b)) if b > 0.0 && first.is_some_and(|f| f.clusters != p.clusters) => {
                format!(" ({:.1}x)", n / b)
            }
            _ => String::new(),
        };
        let rss = p.peak_rss_mib.map_or("-".to_owned(), |m| format!("{m:.1} MiB"));
        let rss = rss + &growth(p.peak_rss_mib, first.and_then(|f| f.peak_rss_mib));
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        let ready = match p.all_ready {
            Some(d) => {
                format!("{:.1} s", d.as_secs_f64()) + &growth(secs(Some(d)), first.and_then(|f| secs(f.all_ready)))
            }
            None => format!("{} of {} Ready", p.ready, p.clusters),
        };
        rows.push(vec![
            p.profile.clone(),
            format!("{} x 8", p.clusters),
            rss,
            p.pass_p50.clone(),
            p.pass_p99.clone(),
            ready,
        ]);
    }
    Table {
        header: ["Profile", "Clusters", "peak RSS (growth)", "pass p50", "pass p99", "time to all Ready (growth)"]
            .map(str::to_owned)
            .to_vec(),
        rows,
    }
}

/// The machine a run was made on.
#[derive(Clone, Debug, PartialEq)]
pub struct Machine {
    pub cpus: usize,
    pub memory_mib: u64,
    pub rustc: String,
    pub date: String,
}

impl Machine {
    pub fn detect() -> Machine {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let memory_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().find_map(|l| l.strip_prefix("MemTotal:").map(str::to_owned)))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let rustc = std::process::Command::new("rustc")
            .arg("-V")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned());
        let date = jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC").to_string();
        Machine { cpus, memory_mib, rustc, date }
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub command: String,
    pub machine: Machine,
    pub duration: Duration,
    /// How time was kept (which clock, which speed).
    pub modes: Vec<String>,
    pub comparisons: Vec<Comparison>,
    pub scale: Vec<ScalePoint>,
    pub notes: Vec<String>,
}

impl Report {
    /// The tables alone (stdout).
    pub fn tables(&self) -> String {
        let mut out = comparison_table(&self.comparisons).markdown();
        if !self.scale.is_empty() {
            out.push('\n');
            out.push_str(&scale_table(&self.scale).markdown());
        }
        out
    }

    /// The whole page (`--write`).
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::from("# Benchmarks\n\n");
        out.push_str(
            "Our operator with its default timings side by side with the same operator configured with \
             tidb-operator v2's timings (the \"v2 profile\"), in one run against the simulators (kube-sim, \
             pd-sim). Produced by `crates/bench`; every figure below comes from the run described here.\n\n",
        );
        let _ = writeln!(out, "Command: `{}`\n", self.command);
        let _ = writeln!(
            out,
            "Machine: {} CPUs, {} MiB memory, {}; run on {}, took {:.0} s (real time).\n",
            m.cpus,
            m.memory_mib,
            m.rustc,
            m.date,
            self.duration.as_secs_f64()
        );
        out.push_str("How time was kept:\n\n");
        for mode in &self.modes {
            let _ = writeln!(out, "- {mode}");
        }
        out.push_str("\n## Figures\n\n");
        out.push_str(&comparison_table(&self.comparisons).markdown());
        if !self.scale.is_empty() {
            out.push_str("\n## Scale: one operator process, many clusters\n\n");
            out.push_str(&scale_table(&self.scale).markdown());
        }
        if !self.notes.is_empty() {
            out.push_str("\n## How each figure is measured\n\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

/// `12.3 ms`.
pub fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            command: "cargo run --release -p tikv-operator-bench -- --quick".into(),
            machine: Machine {
                cpus: 2,
                memory_mib: 24105,
                rustc: "rustc 1.95.0".into(),
                date: "2026-12-05 18:00 UTC".into(),
            },
            duration: Duration::from_secs(42),
            modes: vec!["realistic speed".into()],
            comparisons: vec![
                Comparison::new(
                    "bring-up 3 PD + 3 TiKV",
                    "beyond the simulators",
                    Unit::Seconds,
                    Some(1.5),
                    Some(12.0),
                ),
                Comparison::new("idle", "API writes", Unit::PerMinute, Some(0.0), Some(0.0)).target("0"),
                Comparison::new("idle", "PD reads", Unit::PerMinute, Some(0.0), Some(6.0)),
                Comparison::new("scale-in", "beyond PD", Unit::Seconds, None, Some(3.0)),
            ],
            scale: vec![
                ScalePoint {
                    profile: "ours".into(),
                    clusters: 10,
                    peak_rss_mib: Some(20.0),
                    pass_p50: "0.5 ms".into(),
                    pass_p99: "9.0 ms".into(),
                    all_ready: Some(Duration::from_secs(10)),
                    ready: 10,
                },
                ScalePoint {
                    profile: "ours".into(),
                    clusters: 30,
                    peak_rss_mib: Some(40.0),
                    pass_p50: "0.6 ms".into(),
                    pass_p99: "12.0 ms".into(),
                    all_ready: None,
                    ready: 29,
                },
            ],
            notes: vec!["Writes exclude watches.".into()],
        }
    }

    #[test]
    fn ratios_say_how_many_times_ours_the_v2_figure_is() {
        let r = report();
        let ratios: Vec<String> = r.comparisons.iter().map(Comparison::ratio).collect();
        assert_eq!(ratios, ["8.0x", "both 0", "ours 0", "-"]);
    }

    #[test]
    fn the_comparison_table_renders_every_figure_for_both_profiles() {
        let text = comparison_table(&report().comparisons).markdown();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "| Scenario | Figure | ours (default) | v2 profile | v2 / ours | target (ours) |");
        assert_eq!(lines[1], "| --- | --- | --- | --- | --- | --- |");
        assert_eq!(lines[2], "| bring-up 3 PD + 3 TiKV | beyond the simulators | 1.50 s | 12.00 s | 8.0x |  |");
        assert_eq!(lines[3], "| idle | API writes | 0.0/min | 0.0/min | both 0 | 0 |");
        assert_eq!(lines[5], "| scale-in | beyond PD | not measured | 3.00 s | - |  |");
    }

    #[test]
    fn the_scale_table_shows_growth_against_the_smallest_run() {
        let text = scale_table(&report().scale).markdown();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "| ours | 10 x 8 | 20.0 MiB | 0.5 ms | 9.0 ms | 10.0 s |");
        assert_eq!(lines[3], "| ours | 30 x 8 | 40.0 MiB (2.0x) | 0.6 ms | 12.0 ms | 29 of 30 Ready |");
    }

    #[test]
    fn the_page_names_the_command_the_machine_and_the_modes() {
        let page = report().markdown();
        assert!(page.starts_with("# Benchmarks\n"));
        assert!(page.contains("Command: `cargo run --release -p tikv-operator-bench -- --quick`"));
        assert!(
            page.contains("Machine: 2 CPUs, 24105 MiB memory, rustc 1.95.0; run on 2026-12-05 18:00 UTC, took 42 s")
        );
        assert!(page.contains("- realistic speed\n"));
        assert!(page.contains("## Scale: one operator process, many clusters"));
        assert!(page.contains("- Writes exclude watches.\n"));
    }
}
