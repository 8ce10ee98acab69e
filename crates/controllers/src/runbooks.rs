//! The controllers' runbooks (`docs/runbooks.md`), generated from their task trees: the
//! same names the reconcile reports, logs and metrics show. `tikv-operator docs
//! --out-dir docs` writes it; CI checks it is fresh.

use tikv_operator_task::outline;

/// Every controller's runbook as Markdown, in the order objects are created.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Runbooks\n\n\
         Generated from the controllers' task lists (`crates/controllers/src/*/builder.rs`) by\n\
         `cargo run -- docs --out-dir docs`; do not edit. Each pass of a controller walks its\n\
         list top to bottom: a task either lets the pass go on or ends it (wait, retry, fail);\n\
         `if <guard>` runs what is under it only when the guard holds, `stop` ends the pass\n\
         there, and `finally` runs however the pass ends. The names are the ones in the\n\
         reconcile log's `tasks` field and in the `tikv_operator_tasks_total` metric; see\n\
         [architecture.md](architecture.md) for how the controllers fit together.\n",
    );
    let sections = [
        ("Cluster", "cluster", outline(&crate::cluster::builder::tasks())),
        ("PDGroup", "pdgroup", outline(&crate::pdgroup::builder::tasks())),
        ("PD", "pd", outline(&crate::pd::builder::tasks())),
        ("TiKVGroup", "tikvgroup", outline(&crate::tikvgroup::builder::tasks())),
        ("TiKV", "tikv", outline(&crate::tikv::builder::tasks())),
    ];
    for (kind, module, tasks) in sections {
        out.push_str(&format!("\n## {kind} (`{module}`)\n\n{tasks}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_controller_has_its_runbook() {
        let text = super::markdown();
        for heading in ["## Cluster", "## PDGroup", "## PD (", "## TiKVGroup", "## TiKV ("] {
            assert!(text.contains(heading), "{heading} missing");
        }
        // Names are the task functions' names, guards the conditions'.
        assert!(text.contains("- evict_leaders\n"), "{text}");
        assert!(text.contains("- if cluster_suspended, then stop\n"), "{text}");
    }
}
