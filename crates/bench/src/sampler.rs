//! What the simulators show, sampled every few milliseconds of real time: each store's
//! leaders and state in pd-sim, each pod's identity and readiness in kube-sim, and the
//! conditions of the operator's objects.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::env::{NS, TIKV_GROUP, View, is_true, name};
use serde_json::Value;

#[derive(Clone, Debug, Default)]
pub struct StoreSample {
    pub leaders: u64,
    pub state: String,
}

#[derive(Clone, Debug, Default)]
pub struct PodSample {
    pub name: String,
    pub uid: String,
    pub ready: bool,
    pub terminating: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Simulated time.
    pub at: Duration,
    pub stores: BTreeMap<u64, StoreSample>,
    /// By the pod's instance label (its name when unlabelled).
    pub pods: BTreeMap<String, PodSample>,
    pub cluster_ready: bool,
    /// The TiKV group: every replica on its update revision, ready, and the current
    /// revision caught up; and that update revision.
    pub group_done: bool,
    pub update_revision: String,
    pub tikv_instances: usize,
    /// `kind/name` → its conditions as `type=status/reason`, joined.
    pub conditions: BTreeMap<String, String>,
}

pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

pub fn take(h: &View) -> Sample {
    let mut sample = Sample { at: h.now(), ..Sample::default() };
    if let Some(pd) = h.pd.clusters().into_iter().find(|c| c.namespace == NS) {
        for s in pd.snapshot().stores {
            sample.stores.insert(s.id, StoreSample { leaders: s.leader_count, state: s.state_name });
        }
    }
    for pod in h.list(Some(NS), "pods") {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
        let terminating = !pod["metadata"]["deletionTimestamp"].is_null();
        let ready = is_true(&pod, "Ready");
        let pod_name = name(&pod).to_owned();
        let instance =
            pod["metadata"]["labels"][tikv_operator_api::names::LABEL_INSTANCE].as_str().unwrap_or(&pod_name);
        sample.pods.insert(instance.to_owned(), PodSample { name: pod_name.clone(), uid, ready, terminating });
    }
    for (kind, plural) in [
        ("Cluster", "clusters"),
        ("PDGroup", "pdgroups"),
        ("PD", "pds"),
        ("TiKVGroup", "tikvgroups"),
        ("TiKV", "tikvs"),
    ] {
        for o in h.list(Some(NS), plural) {
            let conditions = o["status"]["conditions"].as_array().map_or(String::new(), |cs| {
                cs.iter()
                    .map(|c| format!("{}={}/{}", str_of(&c["type"]), str_of(&c["status"]), str_of(&c["reason"])))
                    .collect::<Vec<_>>()
                    .join(",")
            });
            if kind == "Cluster" {
                sample.cluster_ready = is_true(&o, "Ready");
            }
            if kind == "TiKVGroup" && name(&o) == TIKV_GROUP {
                let s = &o["status"];
                let replicas = o["spec"]["replicas"].as_u64();
                sample.update_revision = str_of(&s["updateRevision"]).to_owned();
                sample.group_done = is_true(&o, "Ready")
                    && !sample.update_revision.is_empty()
                    && s["currentRevision"] == s["updateRevision"]
                    && s["updatedReplicas"].as_u64() == replicas
                    && s["readyReplicas"].as_u64() == replicas
                    && s["replicas"].as_u64() == replicas;
            }
            if kind == "TiKV" {
                sample.tikv_instances += 1;
            }
            sample.conditions.insert(format!("{kind}/{}", name(&o)), conditions);
        }
    }
    sample
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

impl Sampler {
    pub fn start(h: &View) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let store = samples.clone();
        let h = h.clone();
        let task = tokio::spawn(async move {
            loop {
                let sample = take(&h);
                store.lock().unwrap_or_else(PoisonError::into_inner).push(sample);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Sampler { samples, task }
    }

    /// Stops sampling (after one last sample) and returns every sample.
    pub fn stop(self, h: &View) -> Vec<Sample> {
        self.task.abort();
        let mut samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner));
        samples.push(take(h));
        samples
    }
}
