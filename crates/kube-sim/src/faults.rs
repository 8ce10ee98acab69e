//! Fault injection: failing chosen requests, delaying and dropping watches, compacting history.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::request_log::Verb;
use crate::store::Store;

/// What a matching request gets instead of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// 409 Conflict, as for a stale resourceVersion.
    Conflict,
    /// 429 TooManyRequests with `Retry-After`.
    TooManyRequests { retry_after_seconds: u64 },
    /// 500 InternalError.
    InternalError,
    /// No answer at all: the request hangs until the client gives up (in-process
    /// clients get 504 Timeout at once, as they cannot hang).
    Timeout,
}

/// Which requests fail, how often and how.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    pub verb: Option<Verb>,
    /// Plural (`pods`) or qualified (`widgets.example.com`) resource name.
    pub resource: Option<String>,
    pub subresource: Option<String>,
    /// A substring of the request's client string (User-Agent, field manager).
    pub client: Option<String>,
    /// The fraction of matching requests that fail, 0.0 to 1.0.
    pub fraction: f64,
    pub action: FaultAction,
    /// Stop after failing this many requests.
    pub limit: Option<u64>,
}

impl FaultRule {
    /// Every request fails this way, until narrowed with the builder methods.
    pub fn new(action: FaultAction) -> Self {
        FaultRule { verb: None, resource: None, subresource: None, client: None, fraction: 1.0, action, limit: None }
    }
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.into());
        self
    }
    pub fn subresource(mut self, sub: &str) -> Self {
        self.subresource = Some(sub.into());
        self
    }
    pub fn client(mut self, client: &str) -> Self {
        self.client = Some(client.into());
        self
    }
    pub fn fraction(mut self, fraction: f64) -> Self {
        self.fraction = fraction;
        self
    }
    pub fn times(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }
}

/// The request a fault rule is matched against.
pub(crate) struct FaultTarget<'a> {
    pub verb: Verb,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    pub client: &'a str,
}

#[derive(Debug)]
struct Rules {
    rules: Vec<(u64, FaultRule, u64)>,
    next_id: u64,
    rng: StdRng,
}

#[derive(Clone, Debug)]
pub(crate) struct FaultRules {
    inner: Arc<Mutex<Rules>>,
}

impl FaultRules {
    pub fn new(seed: u64) -> Self {
        FaultRules {
            inner: Arc::new(Mutex::new(Rules { rules: vec![], next_id: 0, rng: StdRng::seed_from_u64(seed) })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rules> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fault this request suffers, if any (rules are tried in insertion order).
    pub fn decide(&self, t: &FaultTarget<'_>) -> Option<FaultAction> {
        let mut r = self.lock();
        let Rules { rules, rng, .. } = &mut *r;
        for (_, rule, used) in rules.iter_mut() {
            let qualified = format!("{}.{}", t.resource, t.group);
            let matches = rule.verb.is_none_or(|v| v == t.verb)
                && rule.resource.as_deref().is_none_or(|x| x == t.resource || x == qualified)
                && rule.subresource.as_deref().is_none_or(|x| Some(x) == t.subresource)
                && rule.client.as_deref().is_none_or(|x| t.client.contains(x))
                && rule.limit.is_none_or(|l| *used < l);
            if matches && rng.random_bool(rule.fraction.clamp(0.0, 1.0)) {
                *used += 1;
                return Some(rule.action);
            }
        }
        None
    }
}

/// Handle for injecting faults into a running [`crate::KubeSim`].
#[derive(Clone, Debug)]
pub struct Faults {
    pub(crate) store: Store,
}

/// Identifies an injected rule, for [`Faults::remove`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultId(u64);

impl Faults {
    fn rules(&self) -> &FaultRules {
        &self.store.shared.faults
    }

    /// Starts failing matching requests.
    pub fn inject(&self, rule: FaultRule) -> FaultId {
        let mut r = self.rules().lock();
        let id = r.next_id;
        r.next_id += 1;
        r.rules.push((id, rule, 0));
        FaultId(id)
    }

    /// How many requests a rule has failed so far.
    pub fn hits(&self, id: FaultId) -> u64 {
        self.rules().lock().rules.iter().find(|(i, _, _)| *i == id.0).map(|(_, _, n)| *n).unwrap_or(0)
    }

    pub fn remove(&self, id: FaultId) {
        self.rules().lock().rules.retain(|(i, _, _)| *i != id.0);
    }

    pub fn clear(&self) {
        self.rules().lock().rules.clear();
    }

    /// Restarts the random sequence that picks which matching requests fail.
    pub fn seed(&self, seed: u64) {
        self.rules().lock().rng = StdRng::seed_from_u64(seed);
    }

    /// Delays every watch event (HTTP and in-process) by this simulated duration after
    /// its write, as informers lag behind the store on a real cluster.
    pub fn set_watch_delay(&self, delay: Duration) {
        self.store.set_watch_delay(delay);
    }

    /// Closes every open watch; clients reconnect from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.store.drop_watches();
    }

    /// Forgets all watch history: watches and exact lists from an older
    /// resourceVersion then get 410 Gone.
    pub fn compact(&self) {
        self.store.compact();
    }
}
