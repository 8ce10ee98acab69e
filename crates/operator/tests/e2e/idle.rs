//! A Ready cluster left alone (issue #16): the operator writes nothing, to the API
//! server or to PD, and reads PD at most twice a simulated minute, its timers on the
//! simulated clock. PD reads are counted by the operator's own request metric (every
//! request its PD client sent, by method).

use std::time::Duration;

use crate::env::Env;

/// The operator's GET requests to PD so far.
fn pd_reads(env: &Env) -> f64 {
    env.metric("tikv_operator_pd_requests_total", &[("method", "GET")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_ready_cluster_costs_at_most_two_pd_reads_a_minute_and_no_write() {
    let env = Env::start_on_simulated_timers().await;
    env.wait_for("Ready with 3 PD members and 3 TiKV stores", |e| e.converged(3, 3)).await;
    env.settle(Duration::from_secs(2)).await;
    // The PD cache idles two simulated minutes after the last change or wait.
    env.let_time_pass(Duration::from_secs(150), Duration::from_secs(1)).await;

    let (api, pd, reads) = (env.api_seq(), env.pd_seq(), pd_reads(&env));
    let from = env.h.clock().now();
    env.let_time_pass(Duration::from_secs(600), Duration::from_secs(1)).await;
    let minutes = env.h.clock().now().saturating_duration_since(from).as_secs_f64() / 60.0;
    let per_minute = (pd_reads(&env) - reads) / minutes;
    eprintln!("idle: {per_minute:.2} PD reads a minute over {minutes:.1} simulated minutes");
    assert!(per_minute <= 2.0, "{per_minute:.2} PD reads a minute over {minutes:.1} idle minutes");

    let writes: Vec<String> = env
        .operator_writes(api)
        .iter()
        .map(|r| format!("{} {} {}", r.verb, r.resource_path(), r.name.as_deref().unwrap_or("-")))
        .collect();
    assert!(writes.is_empty(), "an idle cluster: the operator wrote to the API server: {writes:#?}");
    assert_eq!(env.operator_pd_log(pd), Vec::<String>::new(), "an idle cluster: the operator wrote to PD");
    env.converged(3, 3).unwrap();
    env.finish().await;
}
