//! A TiKV store as PD records it: metadata, the state / node-state pair, heartbeats,
//! limits. Leader and region counts are not here: they are derived from the regions.

use std::time::Duration;

use serde::Serialize;
use sim_clock::SimInstant;

use super::limit::TokenBucket;
use crate::preset::Knobs;

/// The deprecated `metapb.StoreState`, derived from the node state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StoreState {
    Up = 0,
    Offline = 1,
    Tombstone = 2,
}

impl StoreState {
    pub fn name(self) -> &'static str {
        match self {
            StoreState::Up => "Up",
            StoreState::Offline => "Offline",
            StoreState::Tombstone => "Tombstone",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum NodeState {
    Preparing = 0,
    Serving = 1,
    Removing = 2,
    Removed = 3,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Label {
    pub key: String,
    pub value: String,
}

/// Where a TiKV process's config file (its `cfg_path`) is, which decides what
/// `POST /config` with `persist=true` (the default) does (tikv/tikv:src/config/mod.rs
/// `ConfigController::update_impl` writes the changed keys into that file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ConfigFile {
    /// `--config` on a read-only filesystem, as every ConfigMap or Secret volume is in
    /// Kubernetes: the write fails (EROFS) after the change was applied in memory, and
    /// the status server answers 500.
    ReadOnly { path: String },
    /// `--config` on a writable filesystem: the change is written into the file and the
    /// next start of the process reads it back.
    Writable { path: String },
    /// No `--config`: TiKV points `cfg_path` at `<data-dir>/last_tikv.toml`. The write
    /// succeeds, but every start overwrites that file with the config it started with
    /// (`validate_and_persist_config`), so the change does not outlive the process.
    LastConfig { path: String },
}

impl Default for ConfigFile {
    fn default() -> Self {
        ConfigFile::LastConfig { path: "/var/lib/tikv/last_tikv.toml".to_owned() }
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pub id: u64,
    pub address: String,
    pub peer_address: String,
    pub status_address: String,
    pub version: String,
    pub git_hash: String,
    pub deploy_path: String,
    pub labels: Vec<Label>,
    pub node_state: NodeState,
    pub physically_destroyed: bool,
    pub capacity: u64,
    /// When the current (or last) TiKV process started.
    pub start_time: SimInstant,
    pub last_heartbeat: Option<SimInstant>,
    /// Whether a TiKV process is running for this store (PD itself only sees heartbeats).
    pub running: bool,
    pub stopped_at: Option<SimInstant>,
    pub next_heartbeat: SimInstant,
    pub add_peer: TokenBucket,
    pub remove_peer: TokenBucket,
    /// Limits saved by `DELETE /store`, restored by `state=Up`.
    pub saved_limits: Option<(f64, f64)>,
    pub leader_weight: f64,
    pub region_weight: f64,
    /// The TiKV process's applied config, served on its status `/config`: what it
    /// started with, plus the online changes since (Null: a default rendering).
    pub config: serde_json::Value,
    /// The config file of the current (or last) process.
    pub config_file: ConfigFile,
    /// The config the next start reads when nobody hands it a new one (a restart
    /// through the control API): the last start's, plus changes persisted into a
    /// writable config file.
    pub file_config: serde_json::Value,
    /// How many times a TiKV process started for this store.
    pub starts: u64,
    /// Region size when removal started, for `/stores/progress`.
    pub removing_from: Option<(SimInstant, u64)>,
    pub preparing_from: SimInstant,
}

impl Store {
    pub fn state(&self) -> StoreState {
        match self.node_state {
            NodeState::Preparing | NodeState::Serving => StoreState::Up,
            NodeState::Removing => StoreState::Offline,
            NodeState::Removed => StoreState::Tombstone,
        }
    }

    /// Up in PD's sense: node state Preparing or Serving, whatever the heartbeats say.
    pub fn is_up(&self) -> bool {
        self.state() == StoreState::Up
    }

    pub fn is_removing(&self) -> bool {
        self.node_state == NodeState::Removing
    }

    pub fn is_removed(&self) -> bool {
        self.node_state == NodeState::Removed
    }

    pub fn is_tiflash(&self) -> bool {
        self.labels.iter().any(|l| l.key == "engine" && l.value == "tiflash")
    }

    pub fn since_heartbeat(&self, now: SimInstant) -> Duration {
        now.saturating_duration_since(self.last_heartbeat.unwrap_or(self.start_time))
    }

    pub fn is_disconnected(&self, now: SimInstant, knobs: &Knobs) -> bool {
        self.since_heartbeat(now) > knobs.disconnected_after
    }

    pub fn is_down(&self, now: SimInstant, knobs: &Knobs) -> bool {
        self.since_heartbeat(now) > knobs.max_store_down_time
    }

    /// `state_name`: the state, with Down and Disconnected overriding Up.
    pub fn state_name(&self, now: SimInstant, knobs: &Knobs) -> &'static str {
        let state = self.state();
        if state == StoreState::Up {
            if self.is_down(now, knobs) {
                return "Down";
            }
            if self.is_disconnected(now, knobs) {
                return "Disconnected";
            }
        }
        state.name()
    }

    /// May receive new replicas: Up, heartbeating, not in the removal path.
    pub fn accepts_replicas(&self, now: SimInstant, knobs: &Knobs) -> bool {
        self.is_up() && !self.is_disconnected(now, knobs) && !self.physically_destroyed && !self.is_tiflash()
    }

    pub fn uptime(&self) -> Option<Duration> {
        let hb = self.last_heartbeat?;
        let up = hb.saturating_duration_since(self.start_time);
        (!up.is_zero()).then_some(up)
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|l| l.key == key).map(|l| l.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::Preset;

    fn store(node_state: NodeState) -> Store {
        let t0 = SimInstant::default();
        Store {
            id: 1,
            address: "a:20160".into(),
            peer_address: String::new(),
            status_address: String::new(),
            version: "8.5.0".into(),
            git_hash: String::new(),
            deploy_path: String::new(),
            labels: vec![],
            node_state,
            physically_destroyed: false,
            capacity: 100 << 30,
            start_time: t0,
            last_heartbeat: Some(t0),
            running: true,
            stopped_at: None,
            next_heartbeat: t0,
            add_peer: TokenBucket::new(15.0, t0),
            remove_peer: TokenBucket::new(15.0, t0),
            saved_limits: None,
            leader_weight: 1.0,
            region_weight: 1.0,
            config: serde_json::Value::Null,
            config_file: ConfigFile::default(),
            file_config: serde_json::Value::Null,
            starts: 1,
            removing_from: None,
            preparing_from: t0,
        }
    }

    #[test]
    fn state_name_overrides_up_with_disconnected_then_down() {
        let knobs = Knobs::for_preset(Preset::Realistic);
        let s = store(NodeState::Serving);
        let t0 = SimInstant::default();
        assert_eq!(s.state_name(t0 + Duration::from_secs(20), &knobs), "Up");
        assert_eq!(s.state_name(t0 + Duration::from_secs(21), &knobs), "Disconnected");
        assert_eq!(s.state_name(t0 + Duration::from_secs(1801), &knobs), "Down");
    }

    #[test]
    fn offline_and_tombstone_never_show_down() {
        let knobs = Knobs::for_preset(Preset::Realistic);
        let late = SimInstant::default() + Duration::from_secs(86_400);
        assert_eq!(store(NodeState::Removing).state_name(late, &knobs), "Offline");
        assert_eq!(store(NodeState::Removed).state_name(late, &knobs), "Tombstone");
        assert_eq!(store(NodeState::Preparing).state(), StoreState::Up);
    }
}
