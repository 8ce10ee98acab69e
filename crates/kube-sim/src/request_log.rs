//! Every request the server answers (HTTP and in-process), for tests and benchmarks.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use sim_clock::SimInstant;

/// The Kubernetes verb of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        };
        f.write_str(s)
    }
}

/// One answered request.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub seq: u64,
    pub verb: Verb,
    pub group: String,
    pub version: String,
    /// The plural resource name (`pods`).
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Who asked: the User-Agent (or in-process client name), followed by
    /// ` fieldManager=<name>` when the request named a field manager.
    pub client: String,
    pub user_agent: String,
    pub field_manager: Option<String>,
    /// The HTTP status answered (200 for a watch that was opened).
    pub code: u16,
    /// When it arrived, on the simulation clock.
    pub at: SimInstant,
    /// Made through [`crate::StoreClient`] rather than HTTP.
    pub in_process: bool,
}

impl RequestRecord {
    /// `group/resource[/subresource]`, `resource` alone for the core group.
    pub fn resource_path(&self) -> String {
        let mut s =
            if self.group.is_empty() { self.resource.clone() } else { format!("{}/{}", self.group, self.resource) };
        if let Some(sub) = &self.subresource {
            s.push('/');
            s.push_str(sub);
        }
        s
    }
}

/// A cheap-to-clone handle on the log.
#[derive(Clone, Debug, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<Vec<RequestRecord>>>,
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, Vec<RequestRecord>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record(&self, mut r: RequestRecord) {
        let mut log = self.lock();
        r.seq = log.last().map(|l| l.seq + 1).unwrap_or(0);
        log.push(r);
    }

    /// How many recorded requests satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&RequestRecord) -> bool) -> usize {
        self.lock().iter().filter(|r| pred(r)).count()
    }

    /// A copy of every record so far.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.lock().clone()
    }

    /// Forgets every record (sequence numbers restart).
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// Counters by verb, resource path and client.
    pub fn counts(&self) -> BTreeMap<(Verb, String, String), usize> {
        let mut out = BTreeMap::new();
        for r in self.lock().iter() {
            *out.entry((r.verb, r.resource_path(), r.client.clone())).or_insert(0) += 1;
        }
        out
    }
}

/// The client string of a record.
pub(crate) fn client_name(user_agent: &str, field_manager: Option<&str>) -> String {
    match field_manager {
        Some(fm) if !fm.is_empty() && fm != user_agent => format!("{user_agent} fieldManager={fm}"),
        _ => user_agent.to_string(),
    }
}
