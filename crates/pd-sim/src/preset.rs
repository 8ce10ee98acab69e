//! Timing presets (pd-api.md 11.4) and the knobs they set. Every knob can be changed at
//! run time (`Control::update_knobs`, `PATCH /sim/knobs`). All durations are simulated
//! time; the ratios between them are what the realistic preset preserves.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::format::go_duration_serde;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// PD's and TiKV's real defaults.
    #[default]
    Realistic,
    /// Everything shortened for tests, keeping "Down far above a restart" and
    /// "eviction much faster than draining".
    Fast,
}

/// Every timing and limit knob of the simulation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Knobs {
    /// TiKV `pd-store-heartbeat-tick-interval`.
    #[serde(with = "go_duration_serde")]
    pub store_heartbeat: Duration,
    /// PD's node-state check period.
    #[serde(with = "go_duration_serde")]
    pub node_state_check: Duration,
    /// Without a heartbeat for this long an Up store shows `Disconnected` (PD: 20 s, fixed).
    #[serde(with = "go_duration_serde")]
    pub disconnected_after: Duration,
    /// PD `max-store-down-time`: `Down`, and its replicas get re-created elsewhere.
    #[serde(with = "go_duration_serde")]
    pub max_store_down_time: Duration,
    /// TiKV raftstore `max-peer-down-duration`: a region leader reports a silent peer
    /// as down after this.
    #[serde(with = "go_duration_serde")]
    pub max_peer_down_duration: Duration,
    /// PD `max-store-preparing-time`.
    #[serde(with = "go_duration_serde")]
    pub max_store_preparing_time: Duration,
    /// A tombstone record is deleted this long after its last heartbeat.
    #[serde(with = "go_duration_serde")]
    pub tombstone_gc_after: Duration,
    /// Default store limit (operations per minute) for new stores.
    pub store_limit_add_peer: f64,
    pub store_limit_remove_peer: f64,
    /// Fixed part of a region move (learner catch-up, conf changes).
    #[serde(with = "go_duration_serde")]
    pub region_move_base: Duration,
    /// Snapshot speed (TiKV `snap-io-max-bytes-per-sec`); 0 means instant.
    pub snapshot_mib_per_sec: f64,
    /// A leader transfer takes a random time in this range.
    #[serde(with = "go_duration_serde")]
    pub leader_transfer_min: Duration,
    #[serde(with = "go_duration_serde")]
    pub leader_transfer_max: Duration,
    /// Raft election after a region leader's store stopped.
    #[serde(with = "go_duration_serde")]
    pub raft_election_timeout: Duration,
    /// PD leader change (campaign after the lease) takes a random time in this range.
    #[serde(with = "go_duration_serde")]
    pub pd_leader_change_min: Duration,
    #[serde(with = "go_duration_serde")]
    pub pd_leader_change_max: Duration,
    /// Every PD member checks this often whether its leader priority is higher than the
    /// etcd leader's, and if so takes leadership (PD's `LeaderPriorityCheckInterval`:
    /// one minute, not settable in PD's config file).
    #[serde(with = "go_duration_serde")]
    pub leader_priority_check: Duration,
    /// A follower waits this long for a leader before answering 503 (PD: about 3 s).
    #[serde(with = "go_duration_serde")]
    pub no_leader_wait: Duration,
    /// A starting PD member loads regions for this long (`/pd/api/v2/ready` 500 meanwhile).
    #[serde(with = "go_duration_serde")]
    pub pd_region_load: Duration,
    /// A starting TiKV's raft peers catch up after this (`/ready` 500 meanwhile).
    #[serde(with = "go_duration_serde")]
    pub tikv_catch_up: Duration,
    /// Scheduling rounds run this often while they produce work...
    #[serde(with = "go_duration_serde")]
    pub schedule_min_interval: Duration,
    /// ...and back off ×1.3 up to this when idle.
    #[serde(with = "go_duration_serde")]
    pub schedule_max_interval: Duration,
    pub leader_schedule_limit: usize,
    pub replica_schedule_limit: usize,
    pub region_schedule_limit: usize,
    /// PD 6.1+: `DELETE /store` refuses to go below max-replicas Up stores. `false`
    /// imitates older PD, where the store goes Offline and never drains.
    pub refuse_remove_below_max_replicas: bool,
    /// PD `low-space-ratio`: a store above this fraction used receives no new replicas.
    pub low_space_ratio: f64,
}

impl Knobs {
    pub fn for_preset(preset: Preset) -> Knobs {
        match preset {
            Preset::Realistic => Knobs {
                store_heartbeat: secs(10),
                node_state_check: secs(10),
                disconnected_after: secs(20),
                max_store_down_time: secs(30 * 60),
                max_peer_down_duration: secs(10 * 60),
                max_store_preparing_time: secs(48 * 3600),
                tombstone_gc_after: secs(30 * 24 * 3600),
                store_limit_add_peer: 15.0,
                store_limit_remove_peer: 15.0,
                region_move_base: secs(1),
                snapshot_mib_per_sec: 100.0,
                leader_transfer_min: ms(50),
                leader_transfer_max: ms(500),
                raft_election_timeout: secs(10),
                pd_leader_change_min: secs(1),
                pd_leader_change_max: secs(5),
                leader_priority_check: secs(60),
                no_leader_wait: secs(3),
                pd_region_load: secs(1),
                tikv_catch_up: secs(5),
                schedule_min_interval: ms(10),
                schedule_max_interval: secs(5),
                leader_schedule_limit: 4,
                replica_schedule_limit: 64,
                region_schedule_limit: 2048,
                refuse_remove_below_max_replicas: true,
                low_space_ratio: 0.8,
            },
            Preset::Fast => Knobs {
                store_heartbeat: secs(1),
                node_state_check: ms(500),
                disconnected_after: secs(2),
                max_store_down_time: secs(30),
                max_peer_down_duration: secs(10),
                max_store_preparing_time: secs(48 * 3600),
                tombstone_gc_after: secs(30 * 24 * 3600),
                store_limit_add_peer: 600.0,
                store_limit_remove_peer: 600.0,
                region_move_base: ms(50),
                snapshot_mib_per_sec: 0.0,
                leader_transfer_min: ms(5),
                leader_transfer_max: ms(5),
                raft_election_timeout: ms(500),
                pd_leader_change_min: ms(100),
                pd_leader_change_max: ms(100),
                leader_priority_check: secs(3),
                no_leader_wait: ms(300),
                pd_region_load: ms(50),
                tikv_catch_up: ms(200),
                schedule_min_interval: ms(10),
                schedule_max_interval: ms(500),
                leader_schedule_limit: 4,
                replica_schedule_limit: 64,
                region_schedule_limit: 2048,
                refuse_remove_below_max_replicas: true,
                low_space_ratio: 0.8,
            },
        }
    }

    /// Applies a partial JSON object (kebab-case keys, Go duration strings).
    pub fn merge(&self, patch: &serde_json::Value) -> Result<Knobs, String> {
        let mut current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let (Some(target), Some(patch)) = (current.as_object_mut(), patch.as_object()) else {
            return Err("knobs patch must be a JSON object".to_owned());
        };
        for (key, value) in patch {
            if !target.contains_key(key) {
                return Err(format!("unknown knob {key:?}"));
            }
            target.insert(key.clone(), value.clone());
        }
        let knobs: Knobs = serde_json::from_value(current).map_err(|e| e.to_string())?;
        Ok(knobs.sanitised())
    }

    /// Keeps the event loop finite: every period is at least a millisecond.
    pub fn sanitised(mut self) -> Knobs {
        let floor = ms(1);
        for d in [
            &mut self.store_heartbeat,
            &mut self.node_state_check,
            &mut self.schedule_min_interval,
            &mut self.schedule_max_interval,
            &mut self.leader_priority_check,
        ] {
            *d = (*d).max(floor);
        }
        self.schedule_max_interval = self.schedule_max_interval.max(self.schedule_min_interval);
        self.leader_transfer_max = self.leader_transfer_max.max(self.leader_transfer_min);
        self.pd_leader_change_max = self.pd_leader_change_max.max(self.pd_leader_change_min);
        self
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_keep_the_ratios_that_matter() {
        for preset in [Preset::Realistic, Preset::Fast] {
            let k = Knobs::for_preset(preset);
            assert!(k.max_store_down_time > k.max_peer_down_duration * 2);
            assert!(k.disconnected_after >= k.store_heartbeat * 2);
            assert!(k.leader_transfer_max < k.region_move_base + k.leader_transfer_max);
            assert!(
                k.leader_priority_check > k.pd_leader_change_max * 10,
                "a moved leader is seen before PD moves it back"
            );
        }
    }

    #[test]
    fn a_patch_changes_only_the_named_knobs() {
        let k = Knobs::for_preset(Preset::Fast);
        let patched = k.merge(&serde_json::json!({"max-store-down-time": "1m0s", "leader-schedule-limit": 8})).unwrap();
        assert_eq!(patched.max_store_down_time, Duration::from_secs(60));
        assert_eq!(patched.leader_schedule_limit, 8);
        assert_eq!(patched.store_heartbeat, k.store_heartbeat);
        assert!(k.merge(&serde_json::json!({"nope": 1})).is_err());
    }
}
