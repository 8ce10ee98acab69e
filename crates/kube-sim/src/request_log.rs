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
    /// The authenticated user the request acted as: `system:admin` for HTTP requests
    /// without a bearer token, the token's user otherwise (`system:serviceaccount:ns:name`),
    /// empty when the token was refused (401); an in-process client's name.
    pub user: String,
    pub field_manager: Option<String>,
    /// The HTTP status answered (200 for a watch that was opened).
    pub code: u16,
    /// When it arrived, on the simulation clock.
    pub at: SimInstant,
    /// Made through [`crate::StoreClient`] rather than HTTP.
    pub in_process: bool,
    /// What a DELETE or deletecollection deleted or marked for deletion, as its answer
    /// showed it (the audit log's response object): a deletecollection's URL does not
    /// say which objects it took. Empty for other requests.
    pub deleted: Vec<DeletedObject>,
}

/// An object a request deleted or marked for deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletedObject {
    /// Empty for a cluster-scoped object.
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl DeletedObject {
    pub(crate) fn of(object: &serde_json::Value) -> DeletedObject {
        DeletedObject {
            namespace: crate::meta::namespace(object).to_owned(),
            name: crate::meta::name(object).to_owned(),
            uid: crate::meta::uid(object).to_owned(),
        }
    }
}

impl RequestRecord {
    /// What RBAC judged (or would judge) this request by, for checking recorded requests
    /// against a set of rules with [`crate::auth::rbac::rule_allows`]. A list or watch
    /// pinned to one name by a field selector shows here without that name.
    pub fn attributes(&self) -> crate::auth::rbac::RequestAttributes {
        let name = self.name.clone().unwrap_or_default();
        let mut namespace = self.namespace.clone().unwrap_or_default();
        if self.group.is_empty() && self.resource == "namespaces" && !name.is_empty() {
            namespace = name.clone();
        }
        crate::auth::rbac::RequestAttributes {
            verb: self.verb.to_string(),
            resource_request: true,
            path: String::new(),
            api_group: self.group.clone(),
            api_version: self.version.clone(),
            namespace,
            resource: self.resource.clone(),
            subresource: self.subresource.clone().unwrap_or_default(),
            name,
        }
    }

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

/// What [`RequestLog::on_record`] calls with each new record.
pub type RecordHook = Arc<dyn Fn(&RequestRecord) + Send + Sync>;

/// Names a hook for [`RequestLog::remove_hook`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HookId(u64);

#[derive(Default)]
struct Records {
    records: Vec<RequestRecord>,
    /// The sequence number of the next record; never goes back, not even on reset.
    next_seq: u64,
}

#[derive(Default)]
struct Hooks {
    next_id: u64,
    list: Vec<(u64, RecordHook)>,
}

/// A cheap-to-clone handle on the log.
#[derive(Clone, Default)]
pub struct RequestLog {
    inner: Arc<Mutex<Records>>,
    hooks: Arc<Mutex<Hooks>>,
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (len, next_seq) = {
            let log = self.lock();
            (log.records.len(), log.next_seq)
        };
        f.debug_struct("RequestLog").field("records", &len).field("next_seq", &next_seq).finish()
    }
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, Records> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_hooks(&self) -> MutexGuard<'_, Hooks> {
        self.hooks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record(&self, mut r: RequestRecord) {
        {
            let mut log = self.lock();
            r.seq = log.next_seq;
            log.next_seq += 1;
            log.records.push(r.clone());
        }
        let hooks: Vec<RecordHook> = self.lock_hooks().list.iter().map(|(_, h)| h.clone()).collect();
        for hook in hooks {
            hook(&r);
        }
    }

    /// Calls `hook` with every request recorded from now on, synchronously: on the task
    /// that answered the request, after the store applied it and before the answer is
    /// sent (before the client can act on it). A hook must be quick and must not block;
    /// it may read the store (no store lock is held while it runs).
    pub fn on_record(&self, hook: impl Fn(&RequestRecord) + Send + Sync + 'static) -> HookId {
        let mut hooks = self.lock_hooks();
        let id = hooks.next_id;
        hooks.next_id += 1;
        hooks.list.push((id, Arc::new(hook)));
        HookId(id)
    }

    /// Stops calling a hook added with [`on_record`](Self::on_record).
    pub fn remove_hook(&self, id: HookId) {
        self.lock_hooks().list.retain(|(i, _)| *i != id.0);
    }

    /// How many recorded requests satisfy `pred`.
    pub fn count(&self, pred: impl Fn(&RequestRecord) -> bool) -> usize {
        self.lock().records.iter().filter(|r| pred(r)).count()
    }

    /// A copy of every record so far.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.lock().records.clone()
    }

    /// The records with a sequence number of at least `seq` (those still kept: a reset
    /// forgets older ones), and the sequence number to ask from next time. Costs the
    /// number of records returned, not the size of the log.
    pub fn since(&self, seq: u64) -> (Vec<RequestRecord>, u64) {
        let log = self.lock();
        let first = log.records.first().map(|r| r.seq).unwrap_or(log.next_seq);
        let skip = usize::try_from(seq.saturating_sub(first)).unwrap_or(usize::MAX).min(log.records.len());
        (log.records[skip..].to_vec(), log.next_seq)
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// Forgets every record; sequence numbers keep counting up, so a reader using
    /// [`since`](Self::since) neither misses nor repeats records.
    pub fn reset(&self) {
        self.lock().records.clear();
    }

    /// Counters by verb, resource path and client.
    pub fn counts(&self) -> BTreeMap<(Verb, String, String), usize> {
        let mut out = BTreeMap::new();
        for r in self.lock().records.iter() {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn rec(name: &str) -> RequestRecord {
        RequestRecord {
            seq: 0,
            verb: Verb::Delete,
            group: String::new(),
            version: "v1".into(),
            resource: "pods".into(),
            subresource: None,
            namespace: Some("ns".into()),
            name: Some(name.into()),
            client: "test".into(),
            user_agent: "test".into(),
            user: "test".into(),
            field_manager: None,
            code: 200,
            at: SimInstant::default(),
            in_process: true,
            deleted: Vec::new(),
        }
    }

    fn names(records: &[RequestRecord]) -> Vec<String> {
        records.iter().map(|r| r.name.clone().unwrap_or_default()).collect()
    }

    #[test]
    fn a_record_gives_the_attributes_rbac_judges() {
        let mut r = rec("web-0");
        r.verb = Verb::Create;
        r.subresource = Some("eviction".into());
        let a = r.attributes();
        assert_eq!(a, crate::auth::rbac::RequestAttributes::resource("create", "", "pods/eviction", "ns", "web-0"));
        let rule = serde_json::json!({"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]});
        assert!(crate::auth::rbac::rule_allows(&rule, &a));
        r.resource = "namespaces".into();
        r.namespace = None;
        assert_eq!(r.attributes().namespace, "web-0", "a namespace is in its own namespace");
    }

    #[test]
    fn since_returns_what_is_new_and_sequence_numbers_survive_a_reset() {
        let log = RequestLog::default();
        let (records, next) = log.since(0);
        assert!(records.is_empty() && next == 0);
        log.record(rec("a"));
        log.record(rec("b"));
        let (records, next) = log.since(0);
        assert_eq!((names(&records), next), (vec!["a".to_owned(), "b".to_owned()], 2));
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1]);
        let (records, next) = log.since(1);
        assert_eq!((names(&records), next), (vec!["b".to_owned()], 2));
        let (records, next) = log.since(2);
        assert!(records.is_empty() && next == 2);
        assert!(log.since(7).0.is_empty());

        log.reset();
        assert_eq!(log.count(|_| true), 0);
        log.record(rec("c"));
        let (records, next) = log.since(2);
        assert_eq!((names(&records), next), (vec!["c".to_owned()], 3));
        assert_eq!(records[0].seq, 2, "numbers go on after a reset");
        assert_eq!(names(&log.since(0).0), ["c"], "older records are gone");
        assert_eq!(log.next_seq(), 3);
    }

    #[test]
    fn hooks_see_each_record_as_it_is_made_until_removed() {
        let log = RequestLog::default();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let (s, c) = (seen.clone(), calls.clone());
        let inner = log.clone();
        let id = log.on_record(move |r| {
            // The record is already in the log when the hook runs.
            assert_eq!(inner.since(r.seq).0.first().map(|x| x.seq), Some(r.seq));
            s.lock().unwrap_or_else(|p| p.into_inner()).push((r.seq, r.name.clone()));
            c.fetch_add(1, Ordering::SeqCst);
        });
        log.record(rec("a"));
        log.record(rec("b"));
        log.remove_hook(id);
        log.record(rec("c"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(seen, [(0, Some("a".to_owned())), (1, Some("b".to_owned()))]);
    }
}
