//! End-to-end scenarios over HTTP (pd-api.md 11.6), the DELETE-store validation table,
//! error texts and the wire-format checklist, asserted on raw response text. Time is
//! driven with `Control::advance` on the fast preset; waits are bounded in simulated time.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::time::Duration;

use pd_sim::{Config, Control, Fault, MemberSpec, PdSim, StoreSpec};
use serde_json::Value;

struct Env {
    sim: PdSim,
    http: reqwest::Client,
    /// IDs of the stores registered by `fast`, in order (PD allocates them from the
    /// same allocator as regions, so they are not 1, 2, 3...).
    ids: Vec<u64>,
}

struct Reply {
    status: u16,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

async fn start(config: Config) -> Env {
    let sim = PdSim::start(config).await.unwrap();
    Env { sim, http: client(), ids: Vec::new() }
}

async fn fast(max_replicas: usize, stores: usize) -> Env {
    let mut env = start(Config { max_replicas, ..Config::fast() }).await;
    for n in 1..=stores {
        let id = env.ctl().register_store(&format!("tikv-{n}:20160")).await.unwrap().id;
        env.ids.push(id);
    }
    env.run(Duration::from_secs(3));
    env
}

impl Env {
    /// The n-th registered store's ID (1-based).
    fn id(&self, n: usize) -> u64 {
        self.ids[n - 1]
    }

    fn evict_body(&self, n: usize) -> String {
        format!(r#"{{"name": "evict-leader-scheduler", "store_id": {}}}"#, self.id(n))
    }

    fn ctl(&self) -> Control {
        self.sim.control()
    }

    fn run(&self, d: Duration) {
        let step = Duration::from_millis(100);
        let mut left = d;
        while !left.is_zero() {
            let s = left.min(step);
            self.ctl().advance(s);
            left -= s;
        }
    }

    async fn send(&self, method: reqwest::Method, url: String, body: Option<&str>) -> Reply {
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        Reply { status, text: response.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, format!("{}{path}", self.sim.url()), None).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, format!("{}{path}", self.sim.url()), None).await
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        self.send(reqwest::Method::POST, format!("{}{path}", self.sim.url()), Some(body)).await
    }

    async fn store(&self, id: u64) -> Value {
        let reply = self.get(&format!("/pd/api/v1/store/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()
    }

    /// Advances simulated time in 100 ms steps until `check` holds, at most `max`.
    async fn eventually(&self, what: &str, max: Duration, mut check: impl AsyncFnMut(&Env) -> bool) {
        let mut waited = Duration::ZERO;
        loop {
            if check(self).await {
                return;
            }
            assert!(waited < max, "not within {max:?} of simulated time: {what}");
            self.run(Duration::from_millis(100));
            waited += Duration::from_millis(100);
        }
    }
}

fn count(v: &Value, key: &str) -> u64 {
    v["status"][key].as_u64().unwrap()
}

/// A JSON-string body exactly as PD writes it.
fn pd_string(text: &str) -> String {
    format!("\"{text}\"\n")
}

// ---- wire format ----

#[tokio::test]
async fn store_routes_answer_not_bootstrapped_until_the_first_store() {
    let env = start(Config::fast()).await;
    let not_bootstrapped =
        pd_string("[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first");
    for path in
        ["/pd/api/v1/stores", "/pd/api/v1/store/1", "/pd/api/v1/regions/check/down-peer", "/pd/api/v1/stats/region"]
    {
        let reply = env.get(path).await;
        assert_eq!((reply.status, reply.text.as_str()), (500, not_bootstrapped.as_str()), "{path}");
    }
    assert_eq!(env.get("/pd/api/v1/config/replicate").await.status, 200);
    assert_eq!(env.get("/pd/api/v1/health").await.status, 200);
    env.ctl().register_store("tikv-1:20160").await.unwrap();
    let reply = env.get("/pd/api/v1/stores").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["count"], 1);
}

#[tokio::test]
async fn a_new_store_omits_zero_enums_and_uses_pd_encodings() {
    let env = start(Config::fast()).await;
    let id = env.ctl().register_store("tikv-1:20160").await.unwrap().id;
    let reply = env.get(&format!("/pd/api/v1/store/{id}")).await;
    assert_eq!(reply.status, 200);
    assert!(reply.text.ends_with("}\n"));
    assert!(reply.text.contains("\n  \"store\": {\n"), "2-space indentation: {}", reply.text);
    assert!(!reply.text.contains("\"state\":"), "Up is omitted: {}", reply.text);
    assert!(!reply.text.contains("\"node_state\":"), "Preparing is omitted");
    assert!(reply.text.contains("\"state_name\": \"Up\""));
    assert!(reply.text.contains("\"capacity\": \"100GiB\""));
    assert!(reply.text.contains("\"leader_weight\": 1,"), "Go float: {}", reply.text);
    assert!(!reply.text.contains("physically_destroyed"));
    assert!(!reply.text.contains("pause_leader_transfer_in"));
    env.run(Duration::from_secs(2));
    let v = env.store(id).await;
    assert_eq!(v["store"]["node_state"], 1);
    let uptime = v["status"]["uptime"].as_str().unwrap();
    assert!(uptime.ends_with('s') && !uptime.contains(' '), "Go duration: {uptime}");
    let ts = v["status"]["last_heartbeat_ts"].as_str().unwrap();
    assert!(
        jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.fZ", ts).is_ok() || ts.parse::<jiff::Timestamp>().is_ok(),
        "{ts}"
    );
    assert!(v["store"]["last_heartbeat"].as_i64().unwrap() > 1_700_000_000_000_000_000);
    assert!(v["store"]["start_timestamp"].as_i64().unwrap() < 10_000_000_000);
    assert_eq!(v["store"]["version"], "8.5.0");
}

#[tokio::test]
async fn ids_above_2_pow_53_survive_as_integers() {
    let env = start(Config { members: 3, ..Config::fast() }).await;
    let truth = env.ctl().snapshot();
    assert!(truth.cluster_id > 1 << 53);
    let members = env.get("/pd/api/v1/members").await;
    assert!(members.text.contains(&format!("\"cluster_id\": {}", truth.cluster_id)), "{}", members.text);
    for m in &truth.members {
        assert!(m.member_id > 1 << 53);
        assert!(members.text.contains(&format!("\"member_id\": {}", m.member_id)));
    }
    let v = members.json();
    assert_eq!(v["header"]["cluster_id"].as_u64(), Some(truth.cluster_id));
    assert!(v["leader"]["member_id"].as_u64().is_some());
    assert_eq!(v["leader"], v["etcd_leader"]);
    let cluster = env.get("/pd/api/v1/cluster").await;
    assert!(cluster.text.contains(&format!("\"id\": {}", truth.cluster_id)));
}

#[tokio::test]
async fn config_uses_strings_where_pd_does() {
    let env = start(Config { location_labels: vec!["zone".into(), "host".into()], ..Config::fast() }).await;
    let replicate = env.get("/pd/api/v1/config/replicate").await;
    assert!(replicate.text.contains("\"location-labels\": \"zone,host\""), "{}", replicate.text);
    assert!(replicate.text.contains("\"enable-placement-rules\": \"true\""));
    assert_eq!(replicate.json()["max-replicas"], 3);
    let full = env.get("/pd/api/v1/config").await.json();
    assert_eq!(full["replication"]["location-labels"], "zone,host");
    assert_eq!(full["schedule"]["max-store-down-time"], "30s");
    assert_eq!(full["schedule"]["leader-schedule-limit"], 4);
    let reply = env.post("/pd/api/v1/config/replicate", r#"{"max-replicas": 5, "location-labels": "zone"}"#).await;
    assert_eq!((reply.status, reply.text.as_str()), (200, pd_string("The config is updated.").as_str()));
    let replicate = env.get("/pd/api/v1/config/replicate").await.json();
    assert_eq!((replicate["max-replicas"].as_u64(), replicate["location-labels"].as_str()), (Some(5), Some("zone")));
    assert_eq!(env.post("/pd/api/v1/config/replicate", "{not json").await.json()["code"], "input");
    env.ctl().register_store("tikv-1:20160").await.unwrap();
    let rules = env.get("/pd/api/v1/config/placement-rule").await.json();
    assert_eq!(rules[0]["rules"][0]["count"], 5);
    assert_eq!(rules[0]["rules"][0]["location_labels"], serde_json::json!(["zone"]));
}

/// PD's `POST /pd/api/v1/config` (tikv/pd:server/api/config.go): which items it takes,
/// with or without their section, PD's texts for everything it refuses, and what a
/// change does to the simulation and to `GET /config`.
#[tokio::test]
async fn pd_config_update_takes_and_refuses_items_as_pd_does() {
    let env = fast(3, 3).await;
    let post = async |body: &str| env.post("/pd/api/v1/config", body).await;
    let updated = pd_string("The config is updated.");
    for body in [
        r#"{"schedule.leader-schedule-limit": 8}"#,
        r#"{"region-schedule-limit": 1024}"#,
        r#"{"schedule.max-store-down-time": "1m"}"#,
        r#"{"schedule.max-merge-region-size": 20, "schedule.enable-cross-table-merge": "false"}"#,
        r#"{"schedule.default-store-limit": {"add-peer": 30}}"#,
        r#"{"max-replicas": 3, "replication.location-labels": "zone,host"}"#,
        r#"{"isolation-level": "zone"}"#,
        r#"{"log.level": "debug"}"#,
        r#"{"pd-server.flow-round-by-digit": 4}"#,
        r#"{"replication-mode.dr-auto-sync.primary-replicas": 2}"#,
        r#"{"micro-service.enable-scheduling-fallback": "false"}"#,
        r#"{"controller.ltb-max-wait-duration": "1m"}"#,
        "null",
    ] {
        let r = post(body).await;
        assert_eq!((r.status, &r.text), (200, &updated), "{body}");
    }
    let full = env.get("/pd/api/v1/config").await.json();
    let schedule = &full["schedule"];
    assert_eq!(schedule["leader-schedule-limit"], 8);
    assert_eq!(schedule["region-schedule-limit"], 1024);
    assert_eq!(schedule["max-store-down-time"], "1m0s");
    assert_eq!(schedule["max-merge-region-size"], 20);
    assert_eq!(schedule["enable-cross-table-merge"], "false");
    assert_eq!(schedule["default-store-limit"]["add-peer"], 30.0);
    assert_eq!(full["replication"]["location-labels"], "zone,host");
    assert_eq!(full["replication"]["isolation-level"], "zone");
    assert_eq!(full["log"]["level"], "debug");
    assert_eq!(full["pd-server"]["flow-round-by-digit"], 4);
    assert_eq!(full["replication-mode"]["dr-auto-sync"]["primary-replicas"], 2);
    assert_eq!(full["micro-service"]["enable-scheduling-fallback"], "false");
    assert_eq!(full["controller"]["ltb-max-wait-duration"], "1m0s");
    let knobs = env.ctl().knobs();
    assert_eq!((knobs.leader_schedule_limit, knobs.max_store_down_time), (8, Duration::from_secs(60)));
    assert_eq!(knobs.store_limit_add_peer, 30.0);

    let refused = [
        (
            r#"{"schedule.leader-schedule-limit": "8"}"#,
            "json: cannot unmarshal string into Go struct field ScheduleConfig.leader-schedule-limit of type uint64",
        ),
        (
            r#"{"schedule.leader-schedule-limit": -1}"#,
            "json: cannot unmarshal number -1 into Go struct field ScheduleConfig.leader-schedule-limit of type uint64",
        ),
        (
            r#"{"schedule.enable-cross-table-merge": false}"#,
            "json: invalid use of ,string struct tag, trying to unmarshal unquoted value into bool",
        ),
        (r#"{"schedule.max-store-down-time": 60}"#, "invalid syntax"),
        (
            r#"{"schedule.default-store-limit": 5}"#,
            "json: cannot unmarshal number into Go struct field ScheduleConfig.default-store-limit of type config.StoreLimitConfig",
        ),
        (
            r#"{"replication-mode.dr-auto-sync.dr-replicas": "2"}"#,
            "json: cannot unmarshal string into Go struct field DRAutoSyncReplicationConfig.dr-auto-sync.dr-replicas of type int",
        ),
        (r#"{"replication.location-labels": ["zone"]}"#, "invalid syntax"),
        (r#"{"replication.isolation-level": "rack"}"#, "isolation-level must be one of location-labels or empty"),
        (r#"{"schedule.low-space-ratio": 0.5}"#, "low-space-ratio should be larger than high-space-ratio"),
        (r#"{"schedule.no-such-item": 1}"#, "config item no-such-item not found"),
        (r#"{"no-such-item": 1}"#, "config item no-such-item not found"),
        (r#"{"name": "pd-9"}"#, "config prefix name not found"),
        (r#"{"security.cert-path": "/x"}"#, "config prefix security not found"),
        (r#"{"label-property.reject-leader": 1}"#, "config prefix label-property not found"),
        (r#"{"log.file.max-size": 10}"#, "only support changing log level"),
        (r#"{"log.level": "loud"}"#, "log level loud is illegal"),
        (r#"{"log.level": 3}"#, "input value 3 is illegal"),
        (r#"{"pd-server.key-type": "blob"}"#, "key-type blob is invalid"),
        (r#"{"replication-mode.replication-mode": "sync"}"#, "invalid replication mode: sync"),
        (r#"{"replication-mode.foo.bar": 1}"#, "config item [foo bar] not found"),
        (r#"{"replication-mode": "majority"}"#, "cannot update config prefix replication-mode"),
        (
            r#"{"micro-service.enable-resource-manager-fallback": "false"}"#,
            "cannot update config item enable-resource-manager-fallback dynamically",
        ),
        (
            r#"{"controller.request-unit.read-base-cost": 1}"#,
            "can't update controller child item read-base-cost, only top-level items are allowed",
        ),
        ("[1]", "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        ("", "unexpected end of JSON input"),
    ];
    for (body, text) in refused {
        let r = post(body).await;
        assert_eq!((r.status, r.text.as_str()), (400, pd_string(text).as_str()), "{body}");
    }

    // Not atomic: the items before the refused one (in PD's map order; key order here)
    // stay applied.
    let r = post(r#"{"schedule.leader-schedule-limit": 2, "schedule.zzz": 1}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(env.get("/pd/api/v1/config/schedule").await.json()["leader-schedule-limit"], 2);

    // With placement rules on, replication changes need a bootstrapped cluster.
    let fresh = start(Config::fast()).await;
    let r = fresh.post("/pd/api/v1/config", r#"{"max-replicas": 5}"#).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (
            400,
            pd_string("[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first").as_str()
        )
    );
}

#[tokio::test]
async fn errors_have_pd_statuses_and_texts() {
    let env = fast(3, 3).await;
    let reply = env.get("/pd/api/v1/store/abc").await;
    assert_eq!(reply.status, 400);
    let v = reply.json();
    assert_eq!(v["code"], "input");
    assert_eq!(v["msg"], "strconv.ParseUint: parsing \"abc\": invalid syntax");
    let reply = env.get("/pd/api/v1/store/99").await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (404, pd_string("[PD:core:ErrStoreNotFound]store 99 not found").as_str())
    );
    let reply = env.get("/pd/api/v1/nope").await;
    assert_eq!((reply.status, reply.text.as_str()), (404, "404 page not found"));
    assert_eq!(env.post("/pd/api/v1/stores", "").await.status, 405);
    let reply = env.get("/pd/api/v1/stores?state=x").await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (500, pd_string("strconv.Atoi: parsing \\\"x\\\": invalid syntax").as_str())
    );
    let reply = env.get("/pd/api/v1/stores?state=7").await;
    assert_eq!((reply.status, reply.text.as_str()), (500, pd_string("unknown StoreState: 7").as_str()));
    let reply = env.post(&format!("/pd/api/v1/store/{}/state?state=Sideways", env.id(1)), "").await;
    assert_eq!((reply.status, reply.text.as_str()), (400, pd_string("invalid state Sideways").as_str()));
    let reply = env.post(&format!("/pd/api/v1/store/{}/state?state=up", env.id(1)), "").await;
    assert_eq!((reply.status, reply.text.as_str()), (200, pd_string("The store's state is updated.").as_str()));
    let reply = env.post(&format!("/pd/api/v1/store/{}/label", env.id(1)), r#"{"engine":"tiflash"}"#).await;
    assert_eq!((reply.status, reply.json()["code"].as_str()), (400, Some("input")));
    let reply = env.post("/pd/api/v1/store/77/label", r#"{"zone":"z1"}"#).await;
    assert_eq!(reply.status, 500);
    let reply = env.post(&format!("/pd/api/v1/store/{}/label", env.id(1)), r#"{"zone":"z1"}"#).await;
    assert_eq!(reply.text, pd_string("The store's label is updated."));
    assert_eq!(env.store(env.id(1)).await["store"]["labels"], serde_json::json!([{"key": "zone", "value": "z1"}]));
    let reply = env.get("/pd/api/v1/stores/progress").await;
    assert_eq!(reply.status, 400);
    let reply = env.get("/pd/api/v1/stores/progress?id=1").await;
    assert_eq!(reply.status, 404);
}

/// tikv/pd server/api/store.go `SetStoreLabel` / `DeleteStoreLabel` and
/// server/cluster/cluster.go `UpdateStoreLabels` / `DeleteStoreLabel`: an unknown store is
/// a 500 `ErrInvalidStoreID`, a missing key a 500, `engine` a structured 400.
#[tokio::test]
async fn store_label_set_and_delete_follow_pd() {
    let env = fast(1, 1).await;
    let invalid = pd_string("[PD:cluster:ErrInvalidStoreID]invalid store id 77, not found");
    let reply = env.post("/pd/api/v1/store/77/label", r#"{"zone":"z1"}"#).await;
    assert_eq!((reply.status, reply.text.as_str()), (500, invalid.as_str()));
    let path = format!("/pd/api/v1/store/{}/label", env.id(1));
    env.post(&path, r#"{"zone":"z1","host":"h1"}"#).await;
    let reply = env.send(reqwest::Method::DELETE, format!("{}{path}", env.sim.url()), Some(r#""host""#)).await;
    let deleted = pd_string(&format!("The label host is deleted for store {}.", env.id(1)));
    assert_eq!((reply.status, reply.text.as_str()), (200, deleted.as_str()));
    assert_eq!(env.store(env.id(1)).await["store"]["labels"], serde_json::json!([{"key": "zone", "value": "z1"}]));
    let reply = env.send(reqwest::Method::DELETE, format!("{}{path}", env.sim.url()), Some(r#""host""#)).await;
    assert_eq!((reply.status, reply.text.as_str()), (500, pd_string("the label key host does not exist").as_str()));
    let reply = env.send(reqwest::Method::DELETE, format!("{}{path}", env.sim.url()), Some(r#""engine""#)).await;
    assert_eq!((reply.status, reply.json()["code"].as_str()), (400, Some("input")));
    let reply = env
        .send(reqwest::Method::DELETE, format!("{}/pd/api/v1/store/77/label", env.sim.url()), Some(r#""zone""#))
        .await;
    assert_eq!((reply.status, reply.text.as_str()), (500, invalid.as_str()));
}

#[tokio::test]
async fn evict_leader_scheduler_api_follows_pd() {
    let env = fast(3, 3).await;
    let (first, second) = (env.evict_body(1), env.evict_body(2));
    let cases = [
        (r#"{"store_id": 1}"#, 400, "missing scheduler name"),
        (r#"{"name": "foo-scheduler", "store_id": 1}"#, 400, "unknown scheduler"),
        (r#"{"name": "evict-leader-scheduler"}"#, 400, "missing store id"),
        (r#"{"name": "evict-leader-scheduler", "store_id": "1"}"#, 400, "please input a right store id"),
        (r#"{"name": "evict-leader-scheduler", "store_id": 42}"#, 400, "[PD:core:ErrStoreNotFound]store 42 not found"),
        (first.as_str(), 200, "The scheduler is created."),
        (second.as_str(), 200, "The scheduler has been applied to the store."),
        (second.as_str(), 200, "The scheduler has been applied to the store."),
        (r#"{"name": "balance-leader-scheduler"}"#, 400, "[PD:scheduler:ErrSchedulerExisted]scheduler existed"),
        // The scheduler exists: the inner config answer's body, quotes and newline included.
        (
            r#"{"name": "evict-leader-scheduler", "store_id": 42}"#,
            500,
            "\\\"[PD:core:ErrStoreNotFound]store 42 not found\\\"\\n",
        ),
    ];
    for (body, status, text) in cases {
        let reply = env.post("/pd/api/v1/schedulers", body).await;
        assert_eq!((reply.status, reply.text.as_str()), (status, pd_string(text).as_str()), "{body}");
    }
    assert_eq!(
        env.post("/pd/api/v1/schedulers", r#"{"name": "evict-leader-scheduler", "store_id": 42}"#).await.status,
        500
    );
    let list = env.get("/pd/api/v1/scheduler-config/evict-leader-scheduler/list").await.json();
    assert_eq!(list["store-id-ranges"][env.id(1).to_string()], serde_json::json!([{"start-key": "", "end-key": ""}]));
    assert_eq!(list["batch"], 3);
    assert_eq!(env.store(env.id(1)).await["status"]["pause_leader_transfer_in"], true);
    let mut orders = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let names = env.get("/pd/api/v1/schedulers").await.json();
        assert!(names.as_array().unwrap().contains(&Value::from("evict-leader-scheduler")));
        orders.insert(names.to_string());
    }
    assert!(orders.len() > 1, "scheduler order is random");
    let reply = env.delete("/pd/api/v1/schedulers/evict-leader-scheduler-9").await;
    assert_eq!((reply.status, reply.text.as_str()), (404, "null\n"));
    let reply = env.delete(&format!("/pd/api/v1/schedulers/evict-leader-scheduler-{}", env.id(1))).await;
    assert_eq!((reply.status, reply.text.as_str()), (200, "null\n"));
    let reply = env.delete("/pd/api/v1/scheduler-config/evict-leader-scheduler/delete/7").await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (404, pd_string("[PD:scheduler:ErrScheduleConfigNotExist]the config does not exist").as_str())
    );
    let reply = env.delete(&format!("/pd/api/v1/scheduler-config/evict-leader-scheduler/delete/{}", env.id(2))).await;
    assert_eq!((reply.status, reply.text.as_str()), (200, pd_string("The last store has been deleted").as_str()));
    let reply = env.get("/pd/api/v1/scheduler-config/evict-leader-scheduler/list").await;
    assert_eq!((reply.status, reply.text.as_str()), (404, "404 page not found"));
    let reply = env.delete(&format!("/pd/api/v1/schedulers/evict-leader-scheduler-{}", env.id(1))).await;
    assert_eq!((reply.status, reply.text.as_str()), (404, "null\n"));
    let reply = env.delete("/pd/api/v1/schedulers/evict-leader-scheduler").await;
    assert_eq!(
        (reply.status, reply.text.as_str()),
        (404, pd_string("[PD:scheduler:ErrSchedulerNotFound]scheduler not found").as_str())
    );
    let reply = env.post("/pd/api/v1/schedulers", &env.evict_body(3)).await;
    assert_eq!(reply.status, 200);
    let reply = env.delete("/pd/api/v1/schedulers/evict-leader-scheduler").await;
    assert_eq!((reply.status, reply.text.as_str()), (200, pd_string("The scheduler is removed.").as_str()));
    assert_eq!(env.store(env.id(3)).await["status"].get("pause_leader_transfer_in"), None);
}

// ---- DELETE /store validation table (pd-api.md 3.5) ----

#[tokio::test]
async fn delete_store_validation_table() {
    let env = fast(3, 4).await;
    let del = async |path: &str| env.delete(path).await;
    let r = del("/pd/api/v1/store/99").await;
    assert_eq!((r.status, r.text.as_str()), (404, pd_string("[PD:core:ErrStoreNotFound]store 99 not found").as_str()));
    let r = del("/pd/api/v1/store/x").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("input")));
    let r = del(&format!("/pd/api/v1/store/{}", env.id(4))).await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("The store is set as Offline.").as_str()));
    let r = del(&format!("/pd/api/v1/store/{}", env.id(4))).await;
    assert_eq!(r.status, 200, "already Offline, same force flag: idempotent");
    let r = del(&format!("/pd/api/v1/store/{}", env.id(3))).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, pd_string(&format!("[PD:core:ErrStoresNotEnough]can not remove store {} since the number of up stores would be 2 while need 3", env.id(3))).as_str())
    );
    assert!(
        !env.get(&format!("/pd/api/v1/store/{}", env.id(3))).await.text.contains("\"state\":"),
        "refused: still Up"
    );
    env.eventually("store 4 tombstone", Duration::from_secs(30), async |e| {
        e.store(e.id(4)).await["store"]["state_name"] == "Tombstone"
    })
    .await;
    let r = del(&format!("/pd/api/v1/store/{}", env.id(4))).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (410, pd_string(&format!("[PD:core:ErrStoreRemoved]store {} has been removed", env.id(4))).as_str())
    );
    let r = del(&format!("/pd/api/v1/store/{}?force=false", env.id(3))).await;
    assert_eq!(r.status, 200, "the force key alone counts");
    let v = env.store(env.id(3)).await;
    assert_eq!((v["store"]["physically_destroyed"].as_bool(), v["store"]["state"].as_u64()), (Some(true), Some(1)));
    let r = del(&format!("/pd/api/v1/store/{}?force", env.id(3))).await;
    assert_eq!(r.status, 200, "Offline with the same flag");
    let r = del(&format!("/pd/api/v1/store/{}", env.id(3))).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (
            400,
            pd_string(&format!("[PD:core:ErrStoreDestroyed]store {} has been physically destroyed", env.id(3)))
                .as_str()
        )
    );
    let r = env.post(&format!("/pd/api/v1/store/{}/state?state=Up", env.id(3)), "").await;
    assert_eq!(r.status, 400);
    let r = env.post("/pd/api/v1/store/99/state?state=Up", "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn no_store_for_region_leader_when_every_other_store_is_evicted() {
    let env = fast(1, 2).await;
    env.post("/pd/api/v1/schedulers", &env.evict_body(2)).await;
    let r = env.delete(&format!("/pd/api/v1/store/{}", env.id(1))).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (400, pd_string(&format!("[PD:core:ErrNoStoreForRegionLeader]can not remove store {} since there are no extra up store to store the leader", env.id(1))).as_str())
    );
}

// ---- scenarios (pd-api.md 11.6) ----

#[tokio::test]
async fn scenario_1_scale_out_prepares_then_serves_and_fills() {
    let env = fast(3, 3).await;
    env.eventually("fully replicated", Duration::from_secs(20), async |e| {
        e.ids.iter().all(|id| e.ctl().snapshot().store(*id).unwrap().region_count == 30)
    })
    .await;
    let new = env.ctl().register_store("tikv-4:20160").await.unwrap().id;
    let v = env.store(new).await;
    assert_eq!(v["store"].get("node_state"), None, "Preparing");
    assert_eq!(count(&v, "learner_count"), count(&v, "region_count"), "new replicas start as learners");
    env.eventually("serving with regions", Duration::from_secs(30), async |e| {
        let v = e.store(new).await;
        v["store"]["node_state"] == 1 && count(&v, "region_count") >= 20 && count(&v, "leader_count") >= 5
    })
    .await;
    let stores = env.get("/pd/api/v1/stores").await.json();
    let total: u64 = stores["stores"].as_array().unwrap().iter().map(|s| count(s, "region_count")).sum();
    assert_eq!(total, 90, "replicas conserved");
}

#[tokio::test]
async fn scenario_2_scale_in_happy_path() {
    let env = fast(3, 4).await;
    env.run(Duration::from_secs(5));
    let r = env.post("/pd/api/v1/schedulers", &env.evict_body(4)).await;
    assert_eq!(r.status, 200);
    env.eventually("leaders evicted", Duration::from_secs(10), async |e| {
        count(&e.store(e.id(4)).await, "leader_count") == 0
    })
    .await;
    assert_eq!(env.delete(&format!("/pd/api/v1/store/{}", env.id(4))).await.status, 200);
    let reply = env.get(&format!("/pd/api/v1/store/{}", env.id(4))).await;
    assert!(reply.text.contains("\"state\": 1,") && reply.text.contains("\"node_state\": 2,"), "{}", reply.text);
    assert!(reply.text.contains("\"state_name\": \"Offline\""));
    let before = count(&reply.json(), "region_count");
    assert!(before > 0);
    let offline = env.get("/pd/api/v1/regions/check/offline-peer").await.json();
    assert_eq!(offline["count"].as_u64(), Some(before));
    let progress = env.get(&format!("/pd/api/v1/stores/progress?id={}", env.id(4))).await.json();
    assert_eq!(progress["action"], "removing");
    env.eventually("drained", Duration::from_secs(60), async |e| {
        let v = e.store(e.id(4)).await;
        v["store"]["state"] == 2 && v["store"]["node_state"] == 3 && v["store"]["state_name"] == "Tombstone"
    })
    .await;
    assert_eq!(count(&env.store(env.id(4)).await, "region_count"), 0);
    let ids = |v: Value| -> Vec<u64> {
        v["stores"].as_array().unwrap().iter().map(|s| s["store"]["id"].as_u64().unwrap()).collect()
    };
    assert_eq!(ids(env.get("/pd/api/v1/stores").await.json()), env.ids[..3].to_vec(), "tombstones hidden by default");
    assert_eq!(ids(env.get("/pd/api/v1/stores?state=2").await.json()), vec![env.id(4)]);
    assert_eq!(ids(env.get("/pd/api/v1/stores?state=0&state=1&state=2").await.json()), env.ids);
    let list = env.get("/pd/api/v1/scheduler-config/evict-leader-scheduler/list").await.json();
    assert!(
        list["store-id-ranges"].get(env.id(4).to_string()).is_some(),
        "PD keeps a tombstone's eviction until the operator ends it"
    );
    assert_eq!(env.delete(&format!("/pd/api/v1/schedulers/evict-leader-scheduler-{}", env.id(4))).await.text, "null\n");
    let r = env.delete("/pd/api/v1/stores/remove-tombstone").await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("Remove tombstone successfully.").as_str()));
    assert_eq!(env.get(&format!("/pd/api/v1/store/{}", env.id(4))).await.status, 404);
    let snapshot = env.ctl().snapshot();
    assert!(snapshot.regions.iter().all(|r| r.peers.len() == 3));
}

#[tokio::test]
async fn scenario_3_scale_in_refused_then_forced_offline_forever() {
    let env = fast(3, 3).await;
    let r = env.delete(&format!("/pd/api/v1/store/{}", env.id(3))).await;
    assert_eq!(r.status, 400);
    assert!(r.text.contains("ErrStoresNotEnough"));
    assert_eq!(env.delete(&format!("/pd/api/v1/store/{}?force", env.id(3))).await.status, 200);
    env.run(Duration::from_secs(120));
    let v = env.store(env.id(3)).await;
    assert_eq!(v["store"]["state_name"], "Offline");
    assert_eq!(count(&v, "region_count"), 30, "nowhere to go");

    let old_pd = fast(3, 3).await;
    old_pd.ctl().update_knobs(&serde_json::json!({"refuse-remove-below-max-replicas": false})).unwrap();
    assert_eq!(old_pd.delete(&format!("/pd/api/v1/store/{}", old_pd.id(2))).await.status, 200);
    old_pd.run(Duration::from_secs(120));
    let v = old_pd.store(old_pd.id(2)).await;
    assert_eq!((v["store"]["node_state"].as_u64(), count(&v, "region_count")), (Some(2), 30));
}

#[tokio::test]
async fn scenario_4_cancel_scale_in() {
    let mut env = start(Config { max_replicas: 3, ..Config::fast() }).await;
    env.ctl().update_knobs(&serde_json::json!({"store-limit-add-peer": 6.0})).unwrap();
    for n in 1..=4 {
        let id = env.ctl().register_store(&format!("tikv-{n}:20160")).await.unwrap().id;
        env.ids.push(id);
    }
    env.run(Duration::from_secs(60 * 5));
    assert_eq!(env.delete(&format!("/pd/api/v1/store/{}", env.id(4))).await.status, 200);
    env.run(Duration::from_secs(2));
    assert!(env.ctl().snapshot().store(env.id(4)).unwrap().region_count > 0, "still draining");
    let r = env.post(&format!("/pd/api/v1/store/{}/state?state=Up", env.id(4)), "").await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("The store's state is updated.").as_str()));
    let v = env.store(env.id(4)).await;
    assert_eq!((v["store"].get("state"), v["store"]["node_state"].as_u64()), (None, Some(1)), "straight to Serving");
    env.ctl().update_knobs(&serde_json::json!({"store-limit-add-peer": 600.0})).unwrap();
    let r = env.post(&format!("/pd/api/v1/store/{}/state?state=Offline", env.id(4)), "").await;
    assert_eq!(r.status, 200);
    env.eventually("tombstone", Duration::from_secs(600), async |e| {
        e.store(e.id(4)).await["store"]["state_name"] == "Tombstone"
    })
    .await;
    let r = env.post(&format!("/pd/api/v1/store/{}/state?state=Up", env.id(4)), "").await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (410, pd_string(&format!("[PD:core:ErrStoreRemoved]store {} has been removed", env.id(4))).as_str())
    );
}

#[tokio::test]
async fn scenario_5_rolling_restart_of_a_store() {
    let env = fast(3, 3).await;
    env.run(Duration::from_secs(5));
    let status_url = env.ctl().status_url(env.id(1)).await.unwrap();
    let metrics = env.http.get(format!("{status_url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tikv_raftstore_region_count{type=\"region\"} 30"), "{metrics}");
    assert!(!metrics.contains("tikv_raftstore_region_count{type=\"leader\"} 0\n"));
    env.post("/pd/api/v1/schedulers", &env.evict_body(1)).await;
    env.eventually("evicted", Duration::from_secs(10), async |e| count(&e.store(e.id(1)).await, "leader_count") == 0)
        .await;
    let metrics = env.http.get(format!("{status_url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tikv_raftstore_region_count{type=\"leader\"} 0\n"));
    assert_eq!(env.get("/pd/api/v1/regions/check/down-peer").await.json()["count"], 0);

    env.ctl().stop_store(env.id(1)).await.unwrap();
    assert!(env.http.get(format!("{status_url}/status")).send().await.is_err(), "status server gone with the process");
    env.run(Duration::from_secs(3));
    assert_eq!(env.store(env.id(1)).await["store"]["state_name"], "Disconnected");
    assert_eq!(
        env.get("/pd/api/v1/regions/check/down-peer").await.json()["count"],
        0,
        "not before max-peer-down-duration"
    );
    env.run(Duration::from_secs(10));
    let down = env.get("/pd/api/v1/regions/check/down-peer").await.json();
    assert_eq!(down["count"], 30);
    assert_eq!(down["regions"][0]["down_peers"][0]["peer"]["store_id"], env.id(1));
    assert!(down["regions"][0]["down_peers"][0]["down_seconds"].as_u64().unwrap() >= 10);

    let restarted = env.ctl().restart_store(env.id(1), Some("8.5.1")).await.unwrap();
    assert_eq!(restarted.id, env.id(1));
    assert_eq!(restarted.status_url, status_url, "same status address after restart");
    let v = env.store(env.id(1)).await;
    assert_eq!((v["store"]["state_name"].as_str(), v["store"]["version"].as_str()), (Some("Up"), Some("8.5.1")));
    assert_eq!(env.get("/pd/api/v1/regions/check/down-peer").await.json()["count"], 0);
    let ready = env.http.get(format!("{status_url}/ready?verbose")).send().await.unwrap();
    assert_eq!(ready.status(), 500, "raft peers still catching up");
    env.run(Duration::from_secs(1));
    assert_eq!(env.http.get(format!("{status_url}/ready")).send().await.unwrap().status(), 200);
    env.run(Duration::from_secs(5));
    assert_eq!(count(&env.store(env.id(1)).await, "leader_count"), 0, "evicted stores receive no leaders");
    assert_eq!(env.delete(&format!("/pd/api/v1/schedulers/evict-leader-scheduler-{}", env.id(1))).await.status, 200);
    env.eventually("leaders return", Duration::from_secs(10), async |e| {
        count(&e.store(e.id(1)).await, "leader_count") >= 8
    })
    .await;
}

#[tokio::test]
async fn scenario_5b_eviction_that_never_completes() {
    let env = fast(1, 2).await;
    let led = env.ctl().snapshot().store(env.id(1)).unwrap().leader_count;
    assert!(led > 0);
    env.post("/pd/api/v1/schedulers", &env.evict_body(1)).await;
    env.run(Duration::from_secs(60));
    assert_eq!(count(&env.store(env.id(1)).await, "leader_count"), led, "max-replicas 1: no follower");

    let env = fast(3, 3).await;
    env.run(Duration::from_secs(3));
    env.ctl().stop_store(env.id(2)).await.unwrap();
    env.ctl().stop_store(env.id(3)).await.unwrap();
    env.run(Duration::from_secs(15));
    let led = count(&env.store(env.id(1)).await, "leader_count");
    env.post("/pd/api/v1/schedulers", &env.evict_body(1)).await;
    env.run(Duration::from_secs(20));
    assert!(led > 0);
    assert_eq!(count(&env.store(env.id(1)).await, "leader_count"), led, "followers down: leaders stay");
}

#[tokio::test]
async fn scenario_5c_eviction_stalled_on_a_healthy_store() {
    let env = fast(3, 3).await;
    env.run(Duration::from_secs(3));
    let stall = |id: u64, body: &'static str| {
        let env = &env;
        async move { env.post(&format!("/sim/stores/{id}/stall-leader-transfer"), body).await }
    };
    assert_eq!(stall(42, "").await.status, 404);
    assert_eq!(stall(env.id(1), "").await.status, 204, "an empty body stalls");
    assert_eq!(env.get("/sim/state").await.json()["stores"][0]["leader_transfer_stalled"], true);
    let led = count(&env.store(env.id(1)).await, "leader_count");
    assert!(led > 0);

    // Store 1 is stalled, store 2 is not: only store 2's eviction progresses.
    env.post("/pd/api/v1/schedulers", &env.evict_body(1)).await;
    env.post("/pd/api/v1/schedulers", &env.evict_body(2)).await;
    env.eventually("store 2 evicted", Duration::from_secs(10), async |e| {
        count(&e.store(e.id(2)).await, "leader_count") == 0
    })
    .await;
    let before = env.store(env.id(1)).await["status"]["last_heartbeat_ts"].clone();
    env.run(Duration::from_secs(30));
    let v = env.store(env.id(1)).await;
    assert_eq!(count(&v, "leader_count"), led, "stalled: the leaders stay");
    assert_eq!(v["store"]["state_name"], "Up");
    assert_ne!(v["status"]["last_heartbeat_ts"], before, "it heartbeats");
    let tries = (0..100).any(|_| {
        env.ctl().advance(Duration::from_millis(10));
        let ops = serde_json::to_value(env.ctl().snapshot().operators).unwrap();
        ops.as_array()
            .unwrap()
            .iter()
            .any(|op| op["kind"]["kind"] == "transfer-leader" && op["kind"]["from"] == env.id(1))
    });
    assert!(tries, "PD keeps creating transfer-leader operators from the stalled store");

    // A fourth store joins: regions balance onto it, none of store 1's leaders leave.
    let id4 = env.ctl().register_store("tikv-4:20160").await.unwrap().id;
    env.eventually("regions balanced onto store 4, store 1's too", Duration::from_secs(60), async |e| {
        count(&e.store(id4).await, "region_count") >= 20 && count(&e.store(e.id(1)).await, "region_count") < 30
    })
    .await;
    env.run(Duration::from_secs(10));
    assert_eq!(count(&env.store(env.id(1)).await, "leader_count"), led, "replica moves do not take its leaders");

    // Resumed: the eviction completes.
    assert_eq!(stall(env.id(1), r#"{"stalled": false}"#).await.status, 204);
    assert!(!env.ctl().snapshot().store(env.id(1)).unwrap().leader_transfer_stalled);
    env.eventually("store 1 evicted", Duration::from_secs(10), async |e| {
        count(&e.store(e.id(1)).await, "leader_count") == 0
    })
    .await;
}

#[tokio::test]
async fn scenario_6_pd_members_transfer_delete_add_quorum() {
    let env = start(Config { members: 3, ..Config::fast() }).await;
    let ctl = env.ctl();
    ctl.register_store("tikv-1:20160").await.unwrap();
    let leader = env.get("/pd/api/v1/leader").await.json()["name"].as_str().unwrap().to_owned();
    let other = ["pd-0", "pd-1", "pd-2"].into_iter().find(|n| *n != leader).unwrap();
    let r = env.post(&format!("/pd/api/v1/leader/transfer/{other}"), "").await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("The transfer command is submitted.").as_str()));
    env.eventually("leader moved", Duration::from_secs(5), async |e| {
        e.get("/pd/api/v1/leader").await.json()["name"] == other
    })
    .await;
    let r = env.post("/pd/api/v1/leader/transfer/nope", "").await;
    assert_eq!((r.status, r.text.as_str()), (500, pd_string("no valid pd to transfer etcd leader").as_str()));
    let r = env.post("/pd/api/v1/leader/resign", "").await;
    assert_eq!(r.text, pd_string("The resign command is submitted."));
    env.eventually("resigned", Duration::from_secs(5), async |e| {
        let name = e.get("/pd/api/v1/leader").await.json()["name"].clone();
        name.is_string() && name != other
    })
    .await;

    let victim =
        ctl.snapshot().members.iter().find(|m| Some(&m.name) != ctl.snapshot().leader.as_ref()).unwrap().name.clone();
    let victim_url = ctl.member_url(&victim).await.unwrap();
    let r = env.delete(&format!("/pd/api/v1/members/name/{victim}")).await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string(&format!("removed, pd: {victim}")).as_str()));
    let r = env.delete("/pd/api/v1/members/name/nope").await;
    assert_eq!((r.status, r.text.as_str()), (404, pd_string("not found, pd: nope").as_str()));
    assert_eq!(env.delete("/pd/api/v1/members/id/abc").await.status, 400);
    assert_eq!(env.delete("/pd/api/v1/members/id/12345").await.status, 500);
    assert!(env.http.get(format!("{victim_url}/pd/api/v1/ping")).send().await.is_err(), "a removed member exits");
    assert!(
        matches!(ctl.start_member(&victim).await, Err(pd_sim::ControlError::Member(_))),
        "removed with data cannot rejoin"
    );
    let health = env.get("/pd/api/v1/health").await.json();
    let members = env.get("/pd/api/v1/members").await.json();
    assert_eq!(health.as_array().unwrap().len(), 2);
    assert_eq!(members["members"].as_array().unwrap().len(), 2);

    let added = ctl.add_member(MemberSpec { name: Some("pd-3".into()), ..Default::default() }).await.unwrap();
    assert!(added.member_id > 1 << 53);
    assert_eq!(env.get("/pd/api/v1/health").await.json().as_array().unwrap().len(), 3);

    // Quorum loss: 2 of 3 stop.
    let names: Vec<String> = ctl.snapshot().members.iter().filter(|m| m.in_etcd).map(|m| m.name.clone()).collect();
    let survivor = names[0].clone();
    let survivor_url = ctl.member_url(&survivor).await.unwrap();
    ctl.stop_member(&names[1]).await.unwrap();
    ctl.stop_member(&names[2]).await.unwrap();
    let get = async |url: String| {
        let response = env.http.get(url).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    for path in ["/pd/api/v1/stores", "/pd/api/v1/members", "/pd/api/v1/leader", "/pd/api/v1/config/replicate"] {
        let (status, text) = get(format!("{survivor_url}{path}")).await;
        assert_eq!(
            (status, text.as_str()),
            (503, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader"),
            "{path}"
        );
    }
    let (status, text) = get(format!("{survivor_url}/pd/api/v1/health")).await;
    assert_eq!(status, 200, "health is answered locally");
    let health: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(health.as_array().unwrap().iter().filter(|m| m["health"] == true).count(), 1);
    assert_eq!(get(format!("{survivor_url}/pd/api/v2/ready")).await.0, 200);
    assert_eq!(get(format!("{survivor_url}/pd/api/v1/config")).await.0, 200);
    assert_eq!(env.get("/pd/api/v1/stores").await.status, 503, "the cluster address too");

    ctl.start_member(&names[1]).await.unwrap();
    env.eventually("leader again", Duration::from_secs(5), async |e| e.get("/pd/api/v1/leader").await.status == 200)
        .await;
    assert_eq!(get(format!("{survivor_url}/pd/api/v1/stores")).await.0, 200, "followers forward to the leader");
}

#[tokio::test]
async fn pd_leader_priority_moves_leadership_and_undoes_a_transfer_away() {
    // PD's real one-minute interval: a transfer shows long before PD undoes it.
    let knobs = pd_sim::Knobs {
        leader_priority_check: Duration::from_secs(60),
        ..pd_sim::Knobs::for_preset(pd_sim::Preset::Fast)
    };
    let env = start(Config { members: 3, knobs: Some(knobs), ..Config::fast() }).await;
    env.eventually("a leader", Duration::from_secs(1), async |e| e.get("/pd/api/v1/leader").await.status == 200).await;
    let leader = env.get("/pd/api/v1/leader").await.json()["name"].as_str().unwrap().to_owned();
    let others: Vec<&str> = ["pd-0", "pd-1", "pd-2"].into_iter().filter(|n| *n != leader).collect();
    let (preferred, other) = (others[0], others[1]);

    let r = env.post(&format!("/pd/api/v1/members/name/{preferred}"), r#"{"leader-priority": 10}"#).await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("success").as_str()));
    let members = env.get("/pd/api/v1/members").await.json();
    let shown = members["members"].as_array().unwrap().iter().find(|m| m["name"] == preferred).unwrap().clone();
    assert_eq!(shown["leader_priority"], 10);
    assert_eq!(members["leader"]["name"], leader.as_str(), "nothing moves before the next check");
    let leads = async |e: &Env, name: &str| e.get("/pd/api/v1/leader").await.json()["name"] == name;
    env.eventually("the higher priority leads", Duration::from_secs(62), async |e| leads(e, preferred).await).await;

    let r = env.post(&format!("/pd/api/v1/leader/transfer/{other}"), "").await;
    assert_eq!(r.status, 200);
    env.eventually("transferred away", Duration::from_secs(1), async |e| leads(e, other).await).await;
    env.eventually("moved back by PD", Duration::from_secs(62), async |e| leads(e, preferred).await).await;
}

#[tokio::test]
async fn a_wiped_pd_member_rejoins_with_a_new_id() {
    let env = start(Config { members: 3, ..Config::fast() }).await;
    let ctl = env.ctl();
    let old = ctl.snapshot().members.iter().find(|m| m.name == "pd-2").unwrap().member_id;
    ctl.stop_member("pd-2").await.unwrap();
    assert_eq!(env.delete("/pd/api/v1/members/name/pd-2").await.status, 200);
    ctl.wipe_member("pd-2").unwrap();
    ctl.start_member("pd-2").await.unwrap();
    let new = ctl.snapshot().members.iter().find(|m| m.name == "pd-2").unwrap().member_id;
    assert_ne!(old, new);
    let url = ctl.member_url("pd-2").await.unwrap();
    let ready = env.http.get(format!("{url}/pd/api/v2/ready?verbose")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn pd_ready_reports_region_loading_after_a_restart() {
    let env = fast(1, 1).await;
    let ctl = env.ctl();
    ctl.add_member(MemberSpec { name: Some("pd-9".into()), ..Default::default() }).await.unwrap();
    let url = ctl.member_url("pd-9").await.unwrap();
    let reply = env.http.get(format!("{url}/pd/api/v2/ready?verbose")).send().await.unwrap();
    assert_eq!(reply.status(), 500);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"region_loaded": false, "is_bootstrapped": true}));
    env.run(Duration::from_millis(100));
    assert_eq!(env.http.get(format!("{url}/pd/api/v2/ready")).send().await.unwrap().status(), 200);
}

// ---- faults, status server, control over HTTP ----

#[tokio::test]
async fn faults_fail_the_next_requests_then_clear() {
    let env = fast(3, 3).await;
    env.ctl().inject_fault(Fault {
        path: "/pd/api/v1/stores".into(),
        status: Some(503),
        body: Some("boom".into()),
        count: Some(2),
        ..Default::default()
    });
    assert_eq!(env.get("/pd/api/v1/stores").await.status, 503);
    assert_eq!(env.get(&format!("/pd/api/v1/store/{}", env.id(1))).await.status, 200, "other paths unaffected");
    assert_eq!(env.get("/pd/api/v1/stores").await.text, "boom");
    assert_eq!(env.get("/pd/api/v1/stores").await.status, 200);
}

#[tokio::test]
async fn status_server_serves_config_and_readiness() {
    let env = fast(3, 1).await;
    let started = env
        .ctl()
        .start_store(StoreSpec {
            address: "tikv-9:20160".into(),
            status_address: "tikv-9.peer.db.svc:20180".into(),
            config: Some(serde_json::json!({"server": {"graceful-shutdown-timeout": "20s"}})),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(started.status_address, "tikv-9.peer.db.svc:20180");
    assert_eq!(env.store(started.id).await["store"]["status_address"], "tikv-9.peer.db.svc:20180");
    let config: Value =
        env.http.get(format!("{}/config", started.status_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["server"]["graceful-shutdown-timeout"], "20s");
    env.ctl()
        .set_store_config(started.id, serde_json::json!({"server": {"graceful-shutdown-timeout": "30s"}}))
        .unwrap();
    let config: Value =
        env.http.get(format!("{}/config", started.status_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["server"]["graceful-shutdown-timeout"], "30s");
    assert_eq!(env.http.get(format!("{}/status", started.status_url)).send().await.unwrap().status(), 200);
    env.run(Duration::from_secs(1));
    assert_eq!(env.http.get(format!("{}/ready", started.status_url)).send().await.unwrap().status(), 200);
    let dup = env.ctl().register_store("tikv-9:20160").await;
    assert!(matches!(dup, Err(pd_sim::ControlError::StoreStart(_))));
}

/// TiKV's `POST /config` (tikv/tikv:src/server/status_server/mod.rs): changes apply
/// atomically and show on `GET /config`; `persist` decides what a restart keeps.
#[tokio::test]
async fn tikv_online_config_change_applies_refuses_and_persists_as_tikv_does() {
    let env = fast(3, 1).await;
    let start = |address: &str, file: pd_sim::ConfigFile| StoreSpec {
        address: address.into(),
        config: Some(serde_json::json!({"raftstore": {"capacity": "10GiB"}})),
        config_file: Some(file),
        ..Default::default()
    };
    let on_configmap = pd_sim::ConfigFile::ReadOnly { path: "/etc/tikv/config.toml".into() };
    let started = env.ctl().start_store(start("tikv-7:20160", on_configmap)).await.unwrap();
    let url = format!("{}/config", started.status_url);
    let post =
        async |query: &str, body: &str| env.send(reqwest::Method::POST, format!("{url}{query}"), Some(body)).await;
    let get = async || env.send(reqwest::Method::GET, url.clone(), None).await.json();

    // Applied in memory, shown as TiKV prints it.
    let r =
        post("?persist=false", r#"{"raftstore.raft-log-gc-threshold": 100, "storage.block-cache.capacity": "2GB"}"#)
            .await;
    assert_eq!((r.status, r.text.as_str()), (200, ""));
    let config = get().await;
    assert_eq!(config["raftstore"]["raft-log-gc-threshold"], 100);
    assert_eq!(config["storage"]["block-cache"]["capacity"], "2GiB");
    assert_eq!(config["raftstore"]["capacity"], "10GiB", "the rest of the started config stays");

    // Refused keys and values: 500, TiKV's text, nothing applied.
    let refused = [
        (
            r#"{"server.addr": "0.0.0.0:1", "raftstore.raft-log-gc-threshold": 5}"#,
            r#"failed to update, error: "config addr can not be changed""#,
        ),
        (r#"{"storage.data-dir": "/x"}"#, r#"failed to update, error: "config data_dir can not be changed""#),
        (r#"{"raftstore.no-such-thing": 1}"#, r#"failed to update, error: "unexpect fields: no_such_thing""#),
        (r#"{"raftstore.raft-log-gc-threshold": "many"}"#, r#"failed to update, error: "failed to parse: many""#),
        (r#"{"raftstore.raft-log-gc-threshold": [1]}"#, r#"failed to decode, error: "array type are not supported""#),
        ("not json", r#"failed to decode, error: Error("expected ident", line: 1, column: 2)"#),
    ];
    for (body, text) in refused {
        let r = post("?persist=false", body).await;
        assert_eq!((r.status, r.text.as_str()), (500, text), "{body}");
    }
    assert_eq!(get().await["raftstore"]["raft-log-gc-threshold"], 100, "nothing of a refused change applied");
    let r = post("?persist=maybe", "{}").await;
    assert_eq!((r.status, r.text.as_str()), (400, "provided string was not `true` or `false`"));

    // persist (the default) on a read-only config file: applied, but 500.
    let r = post("", r#"{"raftstore.raft-log-gc-threshold": 200}"#).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.text,
        r#"config changed, but failed to persist change due to err: Os { code: 30, kind: ReadOnlyFilesystem, message: "Read-only file system" }"#
    );
    assert_eq!(get().await["raftstore"]["raft-log-gc-threshold"], 200);

    // A restart reads the file again: none of the online changes survive it.
    env.ctl().stop_store(started.id).await.unwrap();
    let again = env.ctl().restart_store(started.id, None).await.unwrap();
    let config: Value =
        env.http.get(format!("{}/config", again.status_url)).send().await.unwrap().json().await.unwrap();
    assert!(config["raftstore"].get("raft-log-gc-threshold").is_none(), "{config}");

    // A writable config file keeps what was persisted, and only that.
    let writable = pd_sim::ConfigFile::Writable { path: "/tmp/tikv.toml".into() };
    let other = env.ctl().start_store(start("tikv-8:20160", writable)).await.unwrap();
    let url = format!("{}/config", other.status_url);
    let r = env.send(reqwest::Method::POST, url.clone(), Some(r#"{"gc.batch-keys": 256}"#)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = env.send(reqwest::Method::POST, format!("{url}?persist=false"), Some(r#"{"gc.num-threads": 3}"#)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    env.ctl().stop_store(other.id).await.unwrap();
    let again = env.ctl().restart_store(other.id, None).await.unwrap();
    let config: Value =
        env.http.get(format!("{}/config", again.status_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["gc"]["batch-keys"], 256);
    assert!(config["gc"].get("num-threads").is_none(), "{config}");
    let r = env.send(reqwest::Method::GET, format!("{}/nope", again.status_url), None).await;
    assert_eq!((r.status, r.text.as_str()), (404, "path not found"));
}

#[tokio::test]
async fn control_api_over_http() {
    let env = start(Config::fast()).await;
    let r = env
        .post(
            "/sim/stores",
            r#"{"address": "tikv-1:20160", "labels": [{"key": "zone", "value": "z1"}], "version": "8.1.0"}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json()["id"].as_u64().unwrap();
    assert_eq!(env.post(&format!("/sim/stores/{id}/stop"), "").await.status, 204);
    let r = env.post("/sim/clock", r#"{"advance": "3s"}"#).await;
    assert_eq!(r.status, 200);
    assert_eq!(env.store(id).await["store"]["state_name"], "Disconnected");
    let r = env.post(&format!("/sim/stores/{id}/start"), r#"{"version": "8.5.0"}"#).await;
    assert_eq!(r.json()["id"].as_u64(), Some(id));
    let r = env
        .send(
            reqwest::Method::PATCH,
            format!("{}/sim/knobs", env.sim.url()),
            Some(r#"{"max-store-down-time": "1m0s"}"#),
        )
        .await;
    assert_eq!(r.json()["max-store-down-time"], "1m0s");
    let r = env.send(reqwest::Method::PATCH, format!("{}/sim/knobs", env.sim.url()), Some(r#"{"bogus": 1}"#)).await;
    assert_eq!(r.status, 400);
    let state = env.get("/sim/state").await.json();
    assert_eq!(state["stores"][0]["version"], "8.5.0");
    assert_eq!(state["stores"][0]["region_count"], 30);
    let r = env.post("/sim/members", r#"{"name": "pd-extra"}"#).await;
    assert_eq!(r.json()["name"], "pd-extra");
    let r = env.post("/sim/faults", r#"{"path": "/pd/api/v1/health", "status": 500, "count": 1}"#).await;
    assert_eq!(r.status, 204);
    assert_eq!(env.get("/pd/api/v1/health").await.status, 500);
    assert_eq!(env.get("/pd/api/v1/health").await.status, 200);
}

#[tokio::test]
async fn location_labels_spread_replicas_across_zones() {
    let env = start(Config { location_labels: vec!["zone".into()], ..Config::fast() }).await;
    let mut zone1 = Vec::new();
    for (n, zone) in [(1, "z1"), (2, "z1"), (3, "z2"), (4, "z3")] {
        let spec = StoreSpec {
            address: format!("tikv-{n}:20160"),
            labels: vec![pd_sim::Label { key: "zone".into(), value: zone.into() }],
            ..Default::default()
        };
        let id = env.ctl().start_store(spec).await.unwrap().id;
        if zone == "z1" {
            zone1.push(id);
        }
    }
    env.run(Duration::from_secs(10));
    let snapshot = env.ctl().snapshot();
    for region in &snapshot.regions {
        let z1 = region.peers.iter().filter(|p| zone1.contains(&p.store_id)).count();
        assert!(z1 <= 1, "region {} has {z1} replicas in z1", region.id);
    }
}

// ---- TLS ----

struct Pki {
    ca: String,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "pd-sim test CA");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        Pki { ca: issuer.pem(), issuer }
    }

    /// (certificate PEM, key PEM)
    fn leaf(&self, cn: &str, sans: &[&str]) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn client(&self, identity: Option<(String, String)>) -> reqwest::Client {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.ca.as_bytes()).unwrap()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        reqwest::Client::builder().tls_backend_preconfigured(config).build().unwrap()
    }
}

async fn tls_sim(pki: &Pki, allowed_cn: &[&str]) -> PdSim {
    let (cert_pem, key_pem) = pki.leaf("pd", &["127.0.0.1", "localhost"]);
    let tls = pd_sim::TlsConfig {
        ca_pem: pki.ca.clone(),
        cert_pem,
        key_pem,
        cert_allowed_cn: allowed_cn.iter().map(|s| s.to_string()).collect(),
    };
    PdSim::start(Config { tls: Some(tls), ..Config::fast() }).await.unwrap()
}

#[tokio::test]
async fn tls_with_allowed_cn_requires_a_listed_client_certificate() {
    let pki = Pki::new();
    let sim = tls_sim(&pki, &["client"]).await;
    assert!(sim.url().starts_with("https://"));
    let good = pki.client(Some(pki.leaf("client", &[])));
    let health = good.get(format!("{}/pd/api/v1/health", sim.url())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let members: Value =
        good.get(format!("{}/pd/api/v1/members", sim.url())).send().await.unwrap().json().await.unwrap();
    assert!(members["members"][0]["client_urls"][0].as_str().unwrap().starts_with("https://"));
    let started = sim.control().register_store("tikv-1:20160").await.unwrap();
    assert!(started.status_url.starts_with("https://"));
    assert_eq!(good.get(format!("{}/status", started.status_url)).send().await.unwrap().status(), 200);
    assert!(
        pki.client(None).get(format!("{}/pd/api/v1/health", sim.url())).send().await.is_err(),
        "no client certificate"
    );
    let intruder = pki.client(Some(pki.leaf("intruder", &[])));
    assert!(intruder.get(format!("{}/pd/api/v1/health", sim.url())).send().await.is_err(), "CN not allowed");
}

#[tokio::test]
async fn tls_without_allowed_cn_verifies_a_client_certificate_only_if_given() {
    let pki = Pki::new();
    let sim = tls_sim(&pki, &[]).await;
    let anonymous = pki.client(None);
    assert_eq!(anonymous.get(format!("{}/pd/api/v1/ping", sim.url())).send().await.unwrap().status(), 200);
    let stranger_pki = Pki::new();
    let stranger = pki.client(Some(stranger_pki.leaf("client", &[])));
    assert!(
        stranger.get(format!("{}/pd/api/v1/ping", sim.url())).send().await.is_err(),
        "a certificate from another CA is refused"
    );
}

#[tokio::test]
async fn a_member_and_a_store_restarted_with_tls_serve_only_tls_on_the_same_address() {
    let pki = Pki::new();
    let sim = PdSim::start(Config::fast()).await.unwrap();
    let control = sim.control();
    let member = sim.control().snapshot().members[0].name.clone();
    let addr = control.member_url(&member).await.unwrap().replace("http://", "");
    let store = control.register_store("tikv-1:20160").await.unwrap();
    let status = store.status_url.replace("http://", "");
    let plain = client();
    assert_eq!(plain.get(format!("http://{addr}/pd/api/v1/ping")).send().await.unwrap().status(), 200);

    let (cert_pem, key_pem) = pki.leaf("pd", &["127.0.0.1", "localhost"]);
    let tls = pd_sim::TlsConfig { ca_pem: pki.ca.clone(), cert_pem, key_pem, cert_allowed_cn: vec![] };
    control.set_member_tls(&member, Some(&tls)).await.unwrap();
    control.set_store_tls(store.id, Some(&tls)).await.unwrap();
    let client = pki.client(Some(pki.leaf("client", &[])));
    assert_eq!(client.get(format!("https://{addr}/pd/api/v1/ping")).send().await.unwrap().status(), 200);
    assert_eq!(client.get(format!("https://{status}/status")).send().await.unwrap().status(), 200);
    // new connections get TLS; the one `plain` keeps open was handshaken before
    assert!(
        self::client().get(format!("http://{addr}/pd/api/v1/ping")).send().await.is_err(),
        "plain HTTP to a TLS listener"
    );

    // a stop and start keeps what the listener serves with; back to plain on request
    control.stop_member(&member).await.unwrap();
    control.set_member_tls(&member, None).await.unwrap();
    control.start_member(&member).await.unwrap();
    assert_eq!(plain.get(format!("http://{addr}/pd/api/v1/ping")).send().await.unwrap().status(), 200);
    assert!(client.get(format!("https://{addr}/pd/api/v1/ping")).send().await.is_err(), "TLS to a plain listener");
    control.stop_member(&member).await.unwrap();
    control.set_member_tls(&member, Some(&tls)).await.unwrap();
    control.start_member(&member).await.unwrap();
    assert_eq!(client.get(format!("https://{addr}/pd/api/v1/ping")).send().await.unwrap().status(), 200);
}

// ---- initial members, restarts on the same port ----

/// The fast preset, with no wait for a leader (a leaderless answer comes at once).
fn no_wait() -> Config {
    let knobs = pd_sim::Knobs { no_leader_wait: Duration::ZERO, ..pd_sim::Knobs::for_preset(pd_sim::Preset::Fast) };
    Config { knobs: Some(knobs), ..Config::fast() }
}

#[tokio::test]
async fn a_cluster_without_members_has_no_leader_until_one_is_added() {
    let env = start(Config { members: 0, ..no_wait() }).await;
    let ctl = env.ctl();
    assert!(ctl.snapshot().members.is_empty());
    assert_eq!(ctl.snapshot().leader, None);
    for path in ["/pd/api/v1/members", "/pd/api/v1/leader", "/pd/api/v1/stores"] {
        let r = env.get(path).await;
        assert_eq!(
            (r.status, r.text.as_str()),
            (503, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader"),
            "{path}"
        );
    }
    assert_eq!(env.get("/pd/api/v1/health").await.json(), serde_json::json!([]));

    let spec = MemberSpec {
        name: Some("basic-pd-0".into()),
        client_urls: Some(vec!["http://basic-pd-0.basic-pd-peer.db.svc:2379".into()]),
        peer_urls: Some(vec!["http://basic-pd-0.basic-pd-peer.db.svc:2380".into()]),
    };
    ctl.add_member(spec).await.unwrap();
    env.eventually("the first member is elected", Duration::from_secs(5), async |e| {
        e.get("/pd/api/v1/leader").await.status == 200
    })
    .await;
    let members = env.get("/pd/api/v1/members").await.json();
    assert_eq!(members["leader"]["name"], "basic-pd-0");
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    assert_eq!(members["members"][0]["client_urls"][0], "http://basic-pd-0.basic-pd-peer.db.svc:2379");
}

/// A member named `name` with plain client and peer URLs under `name.peer.db.svc`.
fn named_member(name: &str) -> MemberSpec {
    MemberSpec {
        name: Some(name.into()),
        client_urls: Some(vec![format!("http://{name}.peer.db.svc:2379")]),
        peer_urls: Some(vec![format!("http://{name}.peer.db.svc:2380")]),
    }
}

#[tokio::test]
async fn named_initial_members_replace_the_default_ones() {
    let config = Config {
        members: 5,
        member_specs: vec![named_member("a-pd-0"), named_member("a-pd-1"), named_member("a-pd-2")],
        ..no_wait()
    };
    let env = start(config).await;
    let ctl = env.ctl();
    let snap = ctl.snapshot();
    let names: Vec<&str> = snap.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a-pd-0", "a-pd-1", "a-pd-2"], "no pd-0, and `members` is ignored");
    assert!(snap.leader.as_deref().is_some_and(|l| l.starts_with("a-pd-")), "elected at start: {:?}", snap.leader);
    assert_eq!(snap.members[1].client_urls, ["http://a-pd-1.peer.db.svc:2379"]);
    assert_eq!(snap.members[1].peer_urls, ["http://a-pd-1.peer.db.svc:2380"]);
    for name in names {
        let url = ctl.member_url(name).await.unwrap();
        assert_eq!(env.http.get(format!("{url}/pd/api/v1/ping")).send().await.unwrap().status(), 200, "{name}");
    }
    let members = env.get("/pd/api/v1/members").await.json();
    assert_eq!(members["members"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_stopped_member_or_store_restarts_on_the_same_port_at_once() {
    let env = fast(1, 1).await;
    let ctl = env.ctl();
    let id = env.id(1);
    let status_url = ctl.status_url(id).await.unwrap();
    let member_url = ctl.member_url("pd-0").await.unwrap();
    for round in 0..10 {
        ctl.stop_member("pd-0").await.unwrap();
        assert!(env.http.get(format!("{member_url}/pd/api/v1/ping")).send().await.is_err(), "closed ({round})");
        ctl.start_member("pd-0").await.unwrap();
        assert_eq!(ctl.member_url("pd-0").await.unwrap(), member_url);
        let ping = env.http.get(format!("{member_url}/pd/api/v1/ping")).send().await.unwrap();
        assert_eq!(ping.status(), 200, "member listening again ({round})");

        ctl.stop_store(id).await.unwrap();
        assert!(env.http.get(format!("{status_url}/status")).send().await.is_err(), "closed ({round})");
        let started = ctl.restart_store(id, None).await.unwrap();
        assert_eq!(started.status_url, status_url, "the same port ({round})");
        let status = env.http.get(format!("{status_url}/status")).send().await.unwrap();
        assert_eq!(status.status(), 200, "status server listening again ({round})");
    }
}

// ---- store versions and the cluster version ----
// tikv/pd server/cluster/cluster.go `checkStoreVersion` (on every PutStore) and
// `OnStoreVersionChange` (after a PutStore or a Tombstone), pkg/versioninfo `IsCompatible`.

fn spec(address: &str, version: &str, store_id: Option<u64>) -> StoreSpec {
    StoreSpec { address: address.into(), version: version.into(), store_id, ..StoreSpec::default() }
}

/// PD's text when a store older than the cluster version registers (the double space is PD's).
fn incompatible(cluster: &str, store: &str) -> String {
    format!("version should compatible with version  {cluster}, got {store}")
}

#[tokio::test]
async fn store_versions_are_checked_against_the_cluster_version() {
    let env = fast(3, 3).await;
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("8.5.0"));
    let same = env.ctl().start_store(spec("tikv-4:20160", "8.5.0", None)).await.unwrap().id;
    let newer = env.ctl().start_store(spec("tikv-5:20160", "9.0.0", None)).await.unwrap().id;
    assert_eq!(env.store(newer).await["store"]["version"], "9.0.0");
    let err = env.ctl().start_store(spec("tikv-6:20160", "8.4.0", None)).await.unwrap_err();
    assert_eq!(err.to_string(), incompatible("8.5.0", "8.4.0"));
    assert!(env.ctl().snapshot().stores.iter().all(|s| s.address != "tikv-6:20160"), "a refused store is not recorded");
    let r = env.post("/sim/stores", r#"{"address": "tikv-6:20160", "version": "v7.5.0"}"#).await;
    assert_eq!((r.status, r.json()["error"].as_str()), (409, Some(incompatible("8.5.0", "7.5.0").as_str())));

    // The same store coming back older than the cluster version is refused and stays down.
    env.ctl().stop_store(same).await.unwrap();
    let err = env.ctl().restart_store(same, Some("8.4.0")).await.unwrap_err();
    assert_eq!(err.to_string(), incompatible("8.5.0", "8.4.0"));
    let truth = env.ctl().snapshot();
    let store = truth.store(same).unwrap();
    assert_eq!((store.running, store.version.as_str()), (false, "8.5.0"));
    env.ctl().restart_store(same, None).await.unwrap();
    assert!(env.ctl().snapshot().store(same).unwrap().running, "same version restarts");
    assert_eq!(env.ctl().snapshot().cluster_version, "8.5.0");
}

#[tokio::test]
async fn cluster_version_rises_after_a_rolling_upgrade_and_never_below_the_old_minor() {
    let env = fast(3, 3).await;
    for (n, id) in env.ids.clone().into_iter().enumerate() {
        assert_eq!(env.ctl().snapshot().cluster_version, "8.5.0", "not every store is upgraded yet ({n} are)");
        env.ctl().stop_store(id).await.unwrap();
        env.ctl().restart_store(id, Some("9.0.0")).await.unwrap();
    }
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("9.0.0"));
    assert_eq!(env.get("/pd/api/v1/config").await.json()["cluster-version"], "9.0.0");
    env.ctl().stop_store(env.id(1)).await.unwrap();
    let err = env.ctl().restart_store(env.id(1), Some("8.5.0")).await.unwrap_err();
    assert_eq!(err.to_string(), incompatible("9.0.0", "8.5.0"));
    let err = env.ctl().start_store(spec("tikv-9:20160", "8.5.0", None)).await.unwrap_err();
    assert_eq!(err.to_string(), incompatible("9.0.0", "8.5.0"));
    assert_eq!(env.ctl().snapshot().cluster_version, "9.0.0", "a refused store does not lower it");
    env.ctl().restart_store(env.id(1), None).await.unwrap();
    assert_eq!(env.ctl().snapshot().store(env.id(1)).unwrap().version, "9.0.0", "no version: the one it had");
}

#[tokio::test]
async fn cluster_version_is_the_lowest_version_of_the_stores_not_removed() {
    let env = start(Config::fast()).await;
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("0.0.0"));
    assert_eq!(env.get("/pd/api/v1/config").await.json()["cluster-version"], "0.0.0");
    let mut ids = Vec::new();
    for n in 1..=3 {
        ids.push(env.ctl().start_store(spec(&format!("tikv-{n}:20160"), "8.5.2", None)).await.unwrap().id);
    }
    assert_eq!(env.ctl().snapshot().cluster_version, "8.5.2", "the first stores set it");
    // An older patch of the same minor is admitted, and PD follows the minimum down to it.
    let old_patch = env.ctl().start_store(spec("tikv-4:20160", "v8.5.0", None)).await.unwrap().id;
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("8.5.0"));
    // A store that is down still counts; one that becomes Tombstone no longer does.
    env.ctl().stop_store(old_patch).await.unwrap();
    env.run(Duration::from_secs(3));
    assert_eq!(env.ctl().snapshot().cluster_version, "8.5.0");
    assert_eq!(env.delete(&format!("/pd/api/v1/store/{old_patch}?force")).await.status, 200);
    env.eventually("tombstone", Duration::from_secs(60), async |e| {
        e.store(old_patch).await["store"]["state_name"] == "Tombstone"
    })
    .await;
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("8.5.2"));
}

#[tokio::test]
async fn cluster_version_endpoints_follow_pd() {
    let env = fast(3, 3).await;
    let r = env.get("/pd/api/v1/config/cluster-version").await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("8.5.0").as_str()));
    let r = env.post("/pd/api/v1/config/cluster-version", r#"{"cluster-version": "v9.0.0"}"#).await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("The cluster version is updated.").as_str()));
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("9.0.0"));
    assert_eq!(env.get("/pd/api/v1/config").await.json()["cluster-version"], "9.0.0");

    // Every put of store metadata is checked: registration and label changes alike.
    let label = env.post(&format!("/pd/api/v1/store/{}/label", env.id(1)), r#"{"zone": "z1"}"#).await;
    assert_eq!((label.status, label.text.clone()), (500, pd_string(&incompatible("9.0.0", "8.5.0"))));
    env.ctl().stop_store(env.id(1)).await.unwrap();
    let err = env.ctl().restart_store(env.id(1), None).await.unwrap_err();
    assert_eq!(err.to_string(), incompatible("9.0.0", "8.5.0"));

    let r = env.post("/pd/api/v1/config/cluster-version", "{}").await;
    assert_eq!(
        (r.status, r.json()["code"].as_str(), r.json()["msg"].as_str()),
        (400, Some("input"), Some("not set cluster-version"))
    );
    let r = env.post("/pd/api/v1/config/cluster-version", "{nope").await;
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("input")));
    let r = env.post("/pd/api/v1/config/cluster-version", r#"{"cluster-version": "9.0"}"#).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["code"], "internal");
    assert_eq!(r.json()["msg"], "[PD:semver:ErrSemverNewVersion]9.0 is not in dotted-tri format");
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("9.0.0"));

    // `POST /config` takes the key too; a lower setting lets the store back in, and the
    // registration recomputes the cluster version from the stores.
    let r = env.post("/pd/api/v1/config", r#"{"cluster-version": 8}"#).await;
    assert_eq!((r.status, r.text.as_str()), (400, pd_string("input value 8 is illegal").as_str()));
    let r = env.post("/pd/api/v1/config", r#"{"cluster-version": "8.4.0"}"#).await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string("The config is updated.").as_str()));
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("8.4.0"));
    env.ctl().restart_store(env.id(1), None).await.unwrap();
    assert_eq!(env.get("/pd/api/v1/config/cluster-version").await.text, pd_string("8.5.0"));
}

#[tokio::test]
async fn member_changes_pass_etcds_strict_reconfiguration_check_with_pds_status_codes() {
    let env = start(Config { members: 3, ..Config::fast() }).await;
    let ctl = env.ctl();
    env.eventually("a leader", Duration::from_secs(5), async |e| e.get("/pd/api/v1/leader").await.status == 200).await;
    let leader = ctl.snapshot().leader.unwrap();
    let followers: Vec<String> =
        ctl.snapshot().members.iter().map(|m| m.name.clone()).filter(|n| *n != leader).collect();
    ctl.stop_member(&followers[0]).await.unwrap();

    // Removing a running member while another is down would leave one of three active.
    let r = env.delete(&format!("/pd/api/v1/members/name/{}", followers[1])).await;
    assert_eq!((r.status, r.text.as_str()), (500, pd_string("etcdserver: unhealthy cluster").as_str()));
    // A member cannot join while one is down.
    assert!(matches!(
        ctl.add_member(MemberSpec { name: Some("pd-9".into()), ..Default::default() }).await,
        Err(pd_sim::ControlError::Member(_))
    ));
    // The member that is down may go, by ID: the other two keep the quorum.
    let down = ctl.snapshot().members.iter().find(|m| m.name == followers[0]).unwrap().member_id;
    let r = env.delete(&format!("/pd/api/v1/members/id/{down}")).await;
    assert_eq!((r.status, r.text.as_str()), (200, pd_string(&format!("removed, pd: {down}")).as_str()));
    assert_eq!(env.get("/pd/api/v1/members").await.json()["members"].as_array().unwrap().len(), 2);
    // Every member runs again: a new one joins.
    ctl.add_member(MemberSpec { name: Some("pd-9".into()), ..Default::default() }).await.unwrap();
    assert_eq!(env.get("/pd/api/v1/health").await.json().as_array().unwrap().len(), 3);
}

/// etcd's gateway on a member's client URL: MemberUpdate changes the peer URLs the
/// others dial it at (in PD's members list too), with etcd's errors and wire format.
#[tokio::test]
async fn member_peer_urls_change_through_etcds_gateway() {
    let config = Config {
        member_specs: vec![named_member("a-pd-0"), named_member("a-pd-1"), named_member("a-pd-2")],
        ..no_wait()
    };
    let env = start(config).await;
    let ctl = env.ctl();
    let listed = env.post("/v3/cluster/member/list", "{}").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    let first = &listed["members"][0];
    let id = first["ID"].as_str().expect("IDs are strings").to_owned();
    assert_eq!(first["name"], "a-pd-0");
    assert_eq!(first["peerURLs"][0], "http://a-pd-0.peer.db.svc:2380");
    assert!(listed["header"]["cluster_id"].is_string() && listed["header"]["member_id"].is_string());

    let body = format!(r#"{{"ID": "{id}", "peerURLs": ["https://a-pd-0.peer.db.svc:2381"]}}"#);
    let url = ctl.member_url("a-pd-1").await.unwrap();
    let reply = env.send(reqwest::Method::POST, format!("{url}/v3/cluster/member/update"), Some(&body)).await;
    assert_eq!(reply.status, 200, "any member answers: {}", reply.text);
    assert_eq!(reply.json()["members"][0]["peerURLs"][0], "https://a-pd-0.peer.db.svc:2381");
    let members = env.get("/pd/api/v1/members").await.json();
    assert_eq!(members["members"][0]["peer_urls"][0], "https://a-pd-0.peer.db.svc:2381");
    assert_eq!(ctl.snapshot().members[0].peer_urls, ["https://a-pd-0.peer.db.svc:2381"]);

    let taken = format!(r#"{{"ID": "{id}", "peerURLs": ["http://a-pd-1.peer.db.svc:2380"]}}"#);
    let reply = env.post("/v3/cluster/member/update", &taken).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], 9);
    assert_eq!(reply.json()["error"], "etcdserver: Peer URLs already exists");
    let reply = env.post("/v3/cluster/member/update", r#"{"ID": "12", "peerURLs": ["http://x:1"]}"#).await;
    assert_eq!((reply.status, reply.json()["message"].as_str()), (404, Some("etcdserver: member not found")));

    ctl.stop_member("a-pd-1").await.unwrap();
    ctl.stop_member("a-pd-2").await.unwrap();
    let stopped = env.http.post(format!("{url}/v3/cluster/member/update")).body(body.clone()).send().await;
    assert!(stopped.is_err(), "a stopped member answers nothing");
    let url = ctl.member_url("a-pd-0").await.unwrap();
    let reply = env.send(reqwest::Method::POST, format!("{url}/v3/cluster/member/update"), Some(&body)).await;
    assert_eq!((reply.status, reply.json()["code"].as_u64()), (503, Some(14)), "no quorum: {}", reply.text);
}
