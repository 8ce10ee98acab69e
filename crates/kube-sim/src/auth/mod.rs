//! Who a request acts as (authentication) and whether it may (RBAC authorization, see
//! [`rbac`]).
//!
//! Authentication follows kube-apiserver with a static token file (`--token-auth-file`):
//! a request with `Authorization: Bearer <token>` acts as the user registered for that
//! token ([`Tokens::add`]), and an unknown token is answered 401. A request with no
//! bearer token acts as the cluster's administrator (`system:admin` in `system:masters`),
//! which is what a kubeconfig with admin credentials gives on a real cluster: so every
//! caller that presents nothing keeps full access, and only token holders are checked by
//! RBAC.
//!
//! ServiceAccount tokens ([`Tokens::issue_service_account`], also issued over the API by
//! `serviceaccounts/{name}/token`, as `kubectl create token` asks) stand in for the JWTs a
//! real cluster issues through TokenRequest (and mounts into pods); they never expire and
//! are bound to no pod. They authenticate as
//! `system:serviceaccount:<namespace>:<name>` with groups `system:serviceaccounts`,
//! `system:serviceaccounts:<namespace>` and `system:authenticated`, and, like the real
//! ServiceAccount authenticator with its lookup, only while that ServiceAccount exists.

pub mod bootstrap;
pub mod rbac;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use http::HeaderMap;

use crate::error::ApiError;
use crate::registry::GroupResource;
use crate::store::{Key, Store};

/// The user the server acts as for a request that presents no bearer token.
pub const ADMIN_USER: &str = "system:admin";
/// Members are allowed everything, before RBAC is asked (kube-apiserver's privileged group).
pub const MASTERS_GROUP: &str = "system:masters";
/// Every authenticated user is in it.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// An authenticated identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The identity of requests without a bearer token.
    pub fn admin() -> Self {
        UserInfo { name: ADMIN_USER.into(), groups: vec![MASTERS_GROUP.into(), AUTHENTICATED_GROUP.into()] }
    }

    /// A ServiceAccount's identity, as its tokens authenticate.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        UserInfo {
            name: service_account_user(namespace, name),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED_GROUP.into(),
            ],
        }
    }

    /// In `system:masters`: authorized for everything without consulting RBAC.
    pub fn is_privileged(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS_GROUP)
    }

    /// The namespace and name of the ServiceAccount this user is, if it is one.
    pub fn service_account_of(&self) -> Option<(&str, &str)> {
        parse_service_account_user(&self.name)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

fn parse_service_account_user(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (ns, name) = rest.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

#[derive(Clone, Debug)]
enum Holder {
    User(UserInfo),
    ServiceAccount { namespace: String, name: String },
}

/// The bearer tokens the server accepts. Cheap to clone; clones share the set.
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    inner: Arc<Mutex<HashMap<String, Holder>>>,
}

impl Tokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Holder>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a token for `user` in `groups` (one line of a static token file);
    /// `system:authenticated` is added as the real server adds it to every authenticated
    /// user. Registering a token again replaces its user.
    pub fn add(&self, token: &str, user: &str, groups: &[&str]) {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.into());
        }
        self.lock().insert(token.into(), Holder::User(UserInfo { name: user.into(), groups }));
    }

    /// A new token for the ServiceAccount `namespace/name` (each call gives another one,
    /// as each TokenRequest does). It authenticates only while the ServiceAccount exists.
    pub fn issue_service_account(&self, namespace: &str, name: &str) -> String {
        let token = format!("kube-sim-sa.{namespace}.{name}.{:032x}", rand::random::<u128>());
        self.lock().insert(token.clone(), Holder::ServiceAccount { namespace: namespace.into(), name: name.into() });
        token
    }

    /// Forgets a token: requests presenting it are answered 401 from now on.
    pub fn revoke(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Who the request's headers authenticate as: the administrator without a bearer
    /// token, the token's user with a known one, 401 otherwise.
    pub fn authenticate(&self, store: &Store, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
        let Some(token) = bearer_token(headers) else { return Ok(UserInfo::admin()) };
        let holder = self.lock().get(token).cloned().ok_or_else(ApiError::unauthorized)?;
        match holder {
            Holder::User(user) => Ok(user),
            Holder::ServiceAccount { namespace, name } => {
                let gr = GroupResource::new("", "serviceaccounts");
                if store.lock().get(&gr, &Key::new(&namespace, &name)).is_none() {
                    return Err(ApiError::unauthorized());
                }
                Ok(UserInfo::service_account(&namespace, &name))
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, as client-go's bearer token
/// authenticator reads it (scheme case-insensitive); other schemes carry no token.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use sim_clock::SimClock;

    use super::*;

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(http::header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn no_token_is_the_administrator_and_a_bad_token_is_refused() {
        let store = Store::new(SimClock::new(1.0), 100, 0);
        let tokens = Tokens::default();
        tokens.add("t1", "alice", &["devs"]);
        let admin = tokens.authenticate(&store, &headers(None)).unwrap();
        assert!(admin.is_privileged() && admin.name == ADMIN_USER);
        assert_eq!(tokens.authenticate(&store, &headers(Some("Basic dTpw"))).unwrap(), UserInfo::admin());
        let alice = tokens.authenticate(&store, &headers(Some("bearer t1"))).unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, ["devs", AUTHENTICATED_GROUP]);
        let err = tokens.authenticate(&store, &headers(Some("Bearer nope"))).unwrap_err();
        assert_eq!(err.code, 401);
        assert_eq!(
            err.status(),
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        );
        tokens.revoke("t1");
        assert_eq!(tokens.authenticate(&store, &headers(Some("Bearer t1"))).unwrap_err().code, 401);
    }

    #[test]
    fn a_service_account_token_works_while_its_account_exists() {
        let store = Store::new(SimClock::new(1.0), 100, 0);
        let tokens = Tokens::default();
        let token = tokens.issue_service_account("ops", "op");
        assert_ne!(token, tokens.issue_service_account("ops", "op"), "each request issues a new token");
        let h = headers(Some(&format!("Bearer {token}")));
        assert_eq!(tokens.authenticate(&store, &h).unwrap_err().code, 401, "no such ServiceAccount yet");
        let admin = store.client("test");
        let ns = crate::ResourceRef::new("", "v1", "namespaces");
        admin.create(&ns, None, serde_json::json!({"metadata": {"name": "ops"}})).unwrap();
        let sa = crate::ResourceRef::new("", "v1", "serviceaccounts");
        admin.create(&sa, Some("ops"), serde_json::json!({"metadata": {"name": "op"}})).unwrap();
        let user = tokens.authenticate(&store, &h).unwrap();
        assert_eq!(user.name, "system:serviceaccount:ops:op");
        assert_eq!(user.groups, ["system:serviceaccounts", "system:serviceaccounts:ops", AUTHENTICATED_GROUP]);
        assert_eq!(user.service_account_of(), Some(("ops", "op")));
        assert!(!user.is_privileged());
    }
}
