//! Typed PD errors, classified from the status code and PD's own error texts.
//!
//! PD writes most errors as a JSON string carrying a normalized prefix such as
//! `[PD:core:ErrStoreNotFound]store 42 not found`, some as a structured
//! `{"code":"input","msg":...}` object, and the leader-forwarding middleware as
//! plain text. The classifier reads all three; the variants are what controllers act on.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What a call was about, so a 404 can say which thing is missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A call not about one particular object.
    None,
    Store(u64),
    MemberName(String),
    MemberId(u64),
    /// The evict-leader entry of a store.
    EvictLeader(u64),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::None => f.write_str("object"),
            Subject::Store(id) => write!(f, "store {id}"),
            Subject::MemberName(name) => write!(f, "PD member {name}"),
            Subject::MemberId(id) => write!(f, "PD member with ID {id}"),
            Subject::EvictLeader(id) => write!(f, "evict-leader entry of store {id}"),
        }
    }
}

/// Why the remaining stores cannot take over from a store being removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotEnoughStoresReason {
    /// `ErrStoresNotEnough`: fewer Up stores than max-replicas would remain.
    /// The numbers are parsed from PD's message when present.
    Replicas { up_stores_after: Option<u64>, max_replicas: Option<u64> },
    /// `ErrNoStoreForRegionLeader`: every remaining Up store is evicting leaders.
    NoLeaderTarget,
}

/// An error from a PD call. Cheap to clone (the transport error is shared), so the
/// PD cache can keep the last one and hand it to every consumer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PdError {
    /// The store or member does not exist (404, or PD's "not found" texts).
    #[error("{subject} not found in PD: {message}")]
    NotFound { subject: Subject, message: String },

    /// The store is Tombstone/Removed (410 `ErrStoreRemoved`, PD 5.x `ErrStoreTombstone`);
    /// nothing can bring it back.
    #[error("store {store_id} has been removed (tombstone): {message}")]
    StoreRemoved { store_id: u64, message: String },

    /// The store was deleted with `force` before (400 `ErrStoreDestroyed`).
    #[error("store {store_id} has been physically destroyed: {message}")]
    StoreDestroyed { store_id: u64, message: String },

    /// PD refused to take a store offline because the rest could not hold the data
    /// (400 `ErrStoresNotEnough` or `ErrNoStoreForRegionLeader`).
    #[error("not enough stores: {message}")]
    NotEnoughStores { reason: NotEnoughStoresReason, message: String },

    /// No TiKV has bootstrapped the cluster yet (500 `ErrNotBootstrapped`).
    #[error("TiKV cluster not bootstrapped yet")]
    NotBootstrapped,

    /// PD has no serving leader right now: 503 `redirect finds no leader`, or the
    /// other leader-change errors of the forwarding layer (`redirect to not leader`,
    /// `server not started`, `redirect failed`). Transient during every leader change.
    #[error("PD has no serving leader (HTTP {status}): {message}")]
    NoLeader { status: u16, message: String },

    /// Leader transfer to a member name PD does not know (500 `no valid pd to transfer etcd leader`).
    #[error("no PD member named {name} to transfer the leader to: {message}")]
    UnknownTransferTarget { name: String, message: String },

    /// PD did not answer within the call's timeout.
    #[error("PD call {path} to {endpoint} timed out after {timeout:?}")]
    Timeout { endpoint: String, path: String, timeout: Duration },

    /// Connecting to PD or exchanging the request failed.
    #[error("PD call {path} to {endpoint} failed: {source}")]
    Transport {
        endpoint: String,
        path: String,
        #[source]
        source: Arc<reqwest::Error>,
    },

    /// PD answered 2xx with a body we could not decode.
    #[error("cannot decode PD's answer to {path}: {message}; body starts with: {excerpt}")]
    Decode { path: String, message: String, excerpt: String },

    /// The path is unknown to this PD (plain-text `404 page not found`), usually an older PD.
    #[error("PD does not serve {path} (404 page not found): the PD version may be too old")]
    EndpointNotFound { path: String },

    /// Any other non-2xx answer.
    #[error("PD answered HTTP {status} to {path}: {body}")]
    Http { status: u16, path: String, body: String },

    /// The PD cache's poll task is gone (it panicked or was stopped).
    #[error("the PD cache stopped polling")]
    CacheStopped,

    /// The client could not be built (bad URL, bad TLS material, ...).
    #[error("invalid PD client configuration: {0}")]
    Config(String),

    /// Refused before sending: this operator replica is not (or may no longer be) the
    /// leader, so another may be writing (leader-election fencing).
    #[error("not the leader: {0}; the PD write was not sent")]
    NotLeader(String),
}

pub type Result<T, E = PdError> = std::result::Result<T, E>;

impl PdError {
    /// Transient classes worth trying again later (with backoff): no leader, timeouts,
    /// transport failures, and 5xx answers PD gives for internal (etcd) trouble.
    /// Typed refusals (not found, removed, not enough stores, not bootstrapped) are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            PdError::NoLeader { .. } | PdError::Timeout { .. } | PdError::Transport { .. } => true,
            PdError::Http { status, .. } => *status >= 500 && *status != 501,
            _ => false,
        }
    }

    /// True for [`PdError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, PdError::NotFound { .. })
    }

    /// The HTTP status PD answered with, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            PdError::NotFound { .. } | PdError::EndpointNotFound { .. } => Some(404),
            PdError::StoreRemoved { .. } => Some(410),
            PdError::StoreDestroyed { .. } | PdError::NotEnoughStores { .. } => Some(400),
            PdError::NotBootstrapped | PdError::UnknownTransferTarget { .. } => Some(500),
            PdError::NoLeader { status, .. } | PdError::Http { status, .. } => Some(*status),
            PdError::Timeout { .. }
            | PdError::Transport { .. }
            | PdError::Decode { .. }
            | PdError::CacheStopped
            | PdError::Config(_)
            | PdError::NotLeader(_) => None,
        }
    }
}

const EXCERPT_LEN: usize = 512;

/// The first bytes of a body, for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(EXCERPT_LEN)];
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if body.len() > EXCERPT_LEN {
        text.push('…');
    }
    text
}

/// The message of an error body: a JSON string, the `msg` of a structured error, or
/// the plain text, trimmed.
pub(crate) fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if trimmed.starts_with('"') {
        if let Ok(message) = serde_json::from_str::<String>(trimmed) {
            return message;
        }
    } else if trimmed.starts_with('{')
        && let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(trimmed)
        && let Some(serde_json::Value::String(message)) = object.get("msg")
    {
        return message.clone();
    }
    excerpt(trimmed.as_bytes())
}

/// Texts of the forwarding layer while PD changes leader (tikv/pd pkg/errs, apiutil middleware).
const LEADER_CHANGE_MARKERS: &[&str] = &[
    "ErrRedirectNoLeader",
    "redirect finds no leader",
    "ErrRedirectToNotLeader",
    "redirect to not leader",
    "ErrServerNotStarted",
    "[PD:apiutil:ErrRedirect]",
    "ErrLeaderNil",
    "ErrEtcdLeaderNotFound",
];

/// Turns a non-2xx answer into a typed error.
pub(crate) fn classify(status: u16, body: &[u8], subject: &Subject, path: &str) -> PdError {
    let message = error_message(body);
    let has = |marker: &str| message.contains(marker);

    if status == 503 || LEADER_CHANGE_MARKERS.iter().any(|m| has(m)) {
        return PdError::NoLeader { status, message };
    }
    if has("ErrNotBootstrapped") || has("not bootstrapped") {
        return PdError::NotBootstrapped;
    }
    if status == 410 || has("ErrStoreRemoved") || has("ErrStoreTombstone") {
        let store_id = subject_store(subject).or_else(|| number_after(&message, "store ")).unwrap_or(0);
        return PdError::StoreRemoved { store_id, message };
    }
    if has("ErrStoreDestroyed") {
        let store_id = subject_store(subject).or_else(|| number_after(&message, "store ")).unwrap_or(0);
        return PdError::StoreDestroyed { store_id, message };
    }
    if has("ErrStoresNotEnough") {
        let reason = NotEnoughStoresReason::Replicas {
            up_stores_after: number_after(&message, "would be "),
            max_replicas: number_after(&message, "while need "),
        };
        return PdError::NotEnoughStores { reason, message };
    }
    if has("ErrNoStoreForRegionLeader") {
        return PdError::NotEnoughStores { reason: NotEnoughStoresReason::NoLeaderTarget, message };
    }
    if has("no valid pd to transfer etcd leader") {
        let name = match subject {
            Subject::MemberName(name) => name.clone(),
            _ => String::new(),
        };
        return PdError::UnknownTransferTarget { name, message };
    }
    if has("ErrStoreNotFound") || has("ErrInvalidStoreID") {
        let subject = match subject {
            Subject::None => number_after(&message, "store ").map_or(Subject::None, Subject::Store),
            other => other.clone(),
        };
        return PdError::NotFound { subject, message };
    }
    if status == 404 && message.starts_with("404 page not found") {
        return PdError::EndpointNotFound { path: path.to_owned() };
    }
    if status == 404 && *subject != Subject::None {
        return PdError::NotFound { subject: subject.clone(), message };
    }
    // etcd's answer when removing a member ID it does not know.
    if matches!(subject, Subject::MemberId(_)) && has("member not found") {
        return PdError::NotFound { subject: subject.clone(), message };
    }
    PdError::Http { status, path: path.to_owned(), body: message }
}

fn subject_store(subject: &Subject) -> Option<u64> {
    match subject {
        Subject::Store(id) | Subject::EvictLeader(id) => Some(*id),
        _ => None,
    }
}

/// The decimal number right after the first `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<u64> {
    let start = text.find(prefix)? + prefix.len();
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(status: u16, body: &str, subject: Subject) -> PdError {
        classify(status, body.as_bytes(), &subject, "/pd/api/v1/x")
    }

    #[test]
    fn store_not_found_is_typed() {
        let e = c(404, "\"[PD:core:ErrStoreNotFound]store 42 not found\"\n", Subject::Store(42));
        assert!(matches!(e, PdError::NotFound { subject: Subject::Store(42), .. }), "{e:?}");
        assert!(!e.is_retryable());
        // Label update on an unknown store is a 500 with another code.
        let e = c(500, "\"[PD:cluster:ErrInvalidStoreID]invalid store id 7, not found\"\n", Subject::Store(7));
        assert!(matches!(e, PdError::NotFound { subject: Subject::Store(7), .. }), "{e:?}");
    }

    #[test]
    fn store_removed_410_both_codes() {
        let e = c(410, "\"[PD:core:ErrStoreRemoved]store 5 has been removed\"\n", Subject::Store(5));
        assert!(matches!(e, PdError::StoreRemoved { store_id: 5, .. }), "{e:?}");
        let e = c(410, "\"[PD:core:ErrStoreTombstone]store 6 has been removed\"\n", Subject::None);
        assert!(matches!(e, PdError::StoreRemoved { store_id: 6, .. }), "{e:?}");
    }

    #[test]
    fn stores_not_enough_parses_numbers() {
        let e = c(
            400,
            "\"[PD:core:ErrStoresNotEnough]can not remove store 4 since the number of up stores would be 2 while need 3\"\n",
            Subject::Store(4),
        );
        match e {
            PdError::NotEnoughStores { reason, .. } => {
                assert_eq!(reason, NotEnoughStoresReason::Replicas { up_stores_after: Some(2), max_replicas: Some(3) })
            }
            other => panic!("{other:?}"),
        }
        let e = c(
            400,
            "\"[PD:core:ErrNoStoreForRegionLeader]can not remove store 4 since there are no extra up store to store the leader\"\n",
            Subject::Store(4),
        );
        assert!(matches!(e, PdError::NotEnoughStores { reason: NotEnoughStoresReason::NoLeaderTarget, .. }));
        let e = c(400, "\"[PD:core:ErrStoreDestroyed]store 4 has been physically destroyed\"\n", Subject::Store(4));
        assert!(matches!(e, PdError::StoreDestroyed { store_id: 4, .. }));
    }

    /// tikv/pd server/api/scheduler.go `CreateScheduler` with the evict-leader scheduler in
    /// place: the internal config call's body becomes the 500's message, quotes included.
    #[test]
    fn evict_leader_add_of_an_unknown_store_through_the_existing_scheduler_is_not_found() {
        let body = "\"\\\"[PD:core:ErrStoreNotFound]store 9 not found\\\"\\n\"\n";
        let e = c(500, body, Subject::Store(9));
        assert!(matches!(e, PdError::NotFound { subject: Subject::Store(9), .. }), "{e:?}");
    }

    #[test]
    fn not_bootstrapped() {
        let e = c(
            500,
            "\"[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first\"\n",
            Subject::None,
        );
        assert!(matches!(e, PdError::NotBootstrapped));
        assert!(!e.is_retryable());
    }

    #[test]
    fn leader_change_texts_are_no_leader_and_retryable() {
        for (status, body) in [
            (503, "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader\n"),
            (500, "[PD:apiutil:ErrRedirectToNotLeader]redirect to not leader\n"),
            (500, "[PD:server:ErrServerNotStarted]server not started\n"),
            (500, "[PD:apiutil:ErrRedirect]redirect failed\n"),
            (503, "\"[PD:etcd:ErrEtcdKVGet]etcd unavailable\"\n"),
        ] {
            let e = c(status, body, Subject::None);
            assert!(matches!(e, PdError::NoLeader { .. }), "{body}: {e:?}");
            assert!(e.is_retryable());
        }
    }

    #[test]
    fn member_errors() {
        let e = c(404, "\"not found, pd: pd-3\"\n", Subject::MemberName("pd-3".into()));
        assert!(matches!(e, PdError::NotFound { subject: Subject::MemberName(ref n), .. } if n == "pd-3"));
        let e = c(500, "\"no valid pd to transfer etcd leader\"\n", Subject::MemberName("pd-9".into()));
        assert!(matches!(e, PdError::UnknownTransferTarget { ref name, .. } if name == "pd-9"));
        let e = c(500, "\"etcdserver: member not found\"\n", Subject::MemberId(77));
        assert!(matches!(e, PdError::NotFound { subject: Subject::MemberId(77), .. }));
    }

    #[test]
    fn plain_404_is_endpoint_not_found_and_structured_errors_read_msg() {
        let e = c(404, "404 page not found\n", Subject::Store(1));
        assert!(matches!(e, PdError::EndpointNotFound { .. }), "{e:?}");
        let body = "{\n  \"code\": \"input\",\n  \"msg\": \"strconv.ParseUint: parsing \\\"abc\\\": invalid syntax\",\n  \"data\": {}\n}\n";
        match c(400, body, Subject::None) {
            PdError::Http { status: 400, body, .. } => assert!(body.starts_with("strconv.ParseUint")),
            other => panic!("{other:?}"),
        }
        let e = c(500, "\"failed stores: 5, 7\"\n", Subject::None);
        assert!(matches!(e, PdError::Http { status: 500, ref body, .. } if body == "failed stores: 5, 7"));
        assert!(e.is_retryable());
    }
}
