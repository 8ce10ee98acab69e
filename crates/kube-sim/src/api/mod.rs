//! The HTTP surface: routing kube-apiserver URLs onto the store, discovery, OpenAPI,
//! Tables, watch streams, the request log and injected faults.

pub mod discovery;
pub mod openapi;
mod protobuf;
pub mod table;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::rbac::{self, RequestAttributes};
use crate::auth::{Tokens, UserInfo};
use crate::error::{ApiError, ApiResult};
use crate::faults::{FaultAction, FaultTarget};
use crate::patch::PatchType;
use crate::registry::ResourceInfo;
use crate::request_log::{DeletedObject, RequestRecord, Verb, client_name};
use crate::store::{DeleteOptions, ListOptions, Store, Subresource, WatchOptions, WriteOptions};
use crate::validation::custom::FieldValidation;

/// What the HTTP handlers share.
pub(crate) struct AppState {
    pub store: Store,
    /// The bearer tokens requests may present.
    pub tokens: Tokens,
    /// `host:port` the server listens on, for `/api`'s server addresses.
    pub addr: String,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub bookmark_interval: Duration,
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

fn json_response(code: u16, body: &Value, warnings: &[String]) -> Response {
    let mut resp = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body.to_string(),
    )
        .into_response();
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn error_response(e: &ApiError) -> Response {
    let mut resp = json_response(e.code, &e.status(), &[]);
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn text(code: StatusCode, body: &'static str) -> Response {
    (code, [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], body).into_response()
}

/// A resource URL, parsed.
struct Target {
    info: Arc<ResourceInfo>,
    ns: Option<String>,
    name: Option<String>,
    sub: Option<String>,
    legacy_watch: bool,
}

fn parse_resource(store: &Store, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (legacy_watch, rest) = match rest.first() {
        Some(&"watch") => (true, &rest[1..]),
        _ => (false, rest),
    };
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(info) = store.resource(group, version, plural).filter(|i| i.namespaced)
        && tail.len() <= 2
    {
        return Some(Target {
            info,
            ns: Some(ns.to_string()),
            name: tail.first().map(|s| s.to_string()),
            sub: tail.get(1).map(|s| s.to_string()),
            legacy_watch,
        });
    }
    let [plural, tail @ ..] = rest else { return None };
    if tail.len() > 2 {
        return None;
    }
    let info = store.resource(group, version, plural)?;
    Some(Target {
        info,
        ns: None,
        name: tail.first().map(|s| s.to_string()),
        sub: tail.get(1).map(|s| s.to_string()),
        legacy_watch,
    })
}

async fn handle(
    State(app): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    // Authentication, then authorization, before anything else (as kube-apiserver's filters).
    let access = access(&app, &method, &path, &query, &headers);
    let target = match segs.as_slice() {
        ["api", v, rest @ ..] => parse_resource(&app.store, "", v, rest),
        ["apis", g, v, rest @ ..] => parse_resource(&app.store, g, v, rest),
        _ => None,
    };
    if let Err(denied) = &access
        && target.is_none()
    {
        return error_response(&denied.0);
    }
    let reg = || app.store.registry();
    let get_only = |v: Option<Value>| -> Response {
        if method != Method::GET {
            return error_response(&ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource".to_string(),
            ));
        }
        match v {
            Some(v) => json_response(200, &v, &[]),
            None => error_response(&ApiError::no_route()),
        }
    };
    match segs.as_slice() {
        ["healthz"] | ["livez"] | ["readyz"] => return text(StatusCode::OK, "ok"),
        ["version"] => return get_only(Some(discovery::version())),
        ["api"] => return get_only(Some(discovery::api_versions(&app.addr))),
        ["apis"] => return get_only(Some(discovery::api_group_list(&reg()))),
        ["api", "v1"] => return get_only(discovery::resource_list(&reg(), "", "v1")),
        ["apis", g] => return get_only(discovery::api_group(&reg(), g)),
        ["apis", g, v] => return get_only(discovery::resource_list(&reg(), g, v)),
        ["openapi", "v3"] => return get_only(Some(openapi::index(&reg(), app.store.revision()))),
        ["openapi", "v3", "api", v] => return get_only(openapi::group_version(&reg(), "", v)),
        ["openapi", "v3", "apis", g, v] => return get_only(openapi::group_version(&reg(), g, v)),
        // (A refused request was answered above: `access` is Ok here.)
        ["apis", group @ ("authorization.k8s.io" | "authentication.k8s.io"), "v1", review]
            if method == Method::POST
                && matches!(
                    (*group, *review),
                    ("authorization.k8s.io", "selfsubjectaccessreviews" | "selfsubjectrulesreviews")
                        | ("authentication.k8s.io", "selfsubjectreviews")
                ) =>
        {
            if let Ok(user) = &access {
                let bytes = match to_bytes(body, 1 << 20).await {
                    Ok(b) => b,
                    Err(e) => return error_response(&ApiError::bad_request(format!("reading the request body: {e}"))),
                };
                let answer = match *review {
                    "selfsubjectaccessreviews" => self_subject_access_review(&app, user, &bytes),
                    "selfsubjectrulesreviews" => self_subject_rules_review(&app, user, &bytes),
                    _ => Ok(self_subject_review(user)),
                };
                return answer.unwrap_or_else(|e| error_response(&e));
            }
            return error_response(&ApiError::no_route());
        }
        _ => {}
    }
    let Some(target) = target else { return error_response(&ApiError::no_route()) };
    let user_agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("unknown").to_string();
    let field_manager = query.get("fieldManager").cloned();
    let client = client_name(&user_agent, field_manager.as_deref());
    let is_watch = target.legacy_watch || matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (&method, target.name.is_some()) {
        (&Method::GET, false) if is_watch => Verb::Watch,
        (&Method::GET, true) if is_watch => Verb::Watch,
        (&Method::GET, false) => Verb::List,
        (&Method::GET, true) => Verb::Get,
        (&Method::POST, _) => Verb::Create,
        (&Method::PUT, _) => Verb::Update,
        (&Method::PATCH, _) => Verb::Patch,
        (&Method::DELETE, true) => Verb::Delete,
        (&Method::DELETE, false) => Verb::DeleteCollection,
        _ => {
            return error_response(&ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource".to_string(),
            ));
        }
    };
    let info = target.info.clone();
    let user = match &access {
        Ok(u) => u.name.clone(),
        Err(denied) => denied.1.clone(),
    };
    let record = |code: u16| RequestRecord {
        seq: 0,
        verb,
        group: info.group.clone(),
        version: info.version.clone(),
        resource: info.plural.clone(),
        subresource: target.sub.clone(),
        namespace: target.ns.clone(),
        name: target.name.clone(),
        client: client.clone(),
        user_agent: user_agent.clone(),
        user: user.clone(),
        field_manager: field_manager.clone(),
        code,
        at: app.store.clock().now(),
        in_process: false,
        deleted: Vec::new(),
    };
    let identity = match &access {
        Ok(u) => u,
        Err(denied) => {
            app.store.shared.log.record(record(denied.0.code));
            return error_response(&denied.0);
        }
    };
    let fault = app.store.shared.faults.decide(&FaultTarget {
        verb,
        group: &info.group,
        resource: &info.plural,
        subresource: target.sub.as_deref(),
        client: &client,
    });
    if let Some(action) = fault {
        let err = match action {
            FaultAction::Conflict => ApiError::conflict(
                &info.group,
                &info.plural,
                target.name.as_deref().unwrap_or_default(),
                ApiError::MODIFIED,
            ),
            FaultAction::TooManyRequests { retry_after_seconds } => ApiError::too_many_requests(retry_after_seconds),
            FaultAction::InternalError => ApiError::internal("injected fault"),
            FaultAction::Timeout => {
                app.store.shared.log.record(record(504));
                let mut shutdown = app.shutdown.clone();
                let _ = shutdown.wait_for(|s| *s).await;
                return error_response(&ApiError::timeout(
                    "the server was unable to return a response in the time allotted",
                    1,
                ));
            }
        };
        app.store.shared.log.record(record(err.code));
        return error_response(&err);
    }
    let bytes = match to_bytes(body, 64 << 20).await {
        Ok(b) => b,
        Err(e) => {
            let err = ApiError::bad_request(format!("reading the request body: {e}"));
            app.store.shared.log.record(record(err.code));
            return error_response(&err);
        }
    };
    let req = Req { app: &app, target: &target, query: &query, headers: &headers, body: &bytes, user: identity };
    let result = match verb {
        Verb::Watch => watch::serve(&req).await,
        _ => dispatch(&req, verb),
    };
    let mut resp = result.unwrap_or_else(|e| error_response(&e));
    let mut done = record(resp.status().as_u16());
    if let Some(DeletedObjects(deleted)) = resp.extensions_mut().remove::<DeletedObjects>() {
        done.deleted = deleted;
    }
    app.store.shared.log.record(done);
    resp
}

/// Who the request acts as, if it may do what it asks: 401 for a refused token, 403 (with
/// the user's name, for the request log) when RBAC does not allow it.
fn access(
    app: &AppState,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<UserInfo, Box<(ApiError, String)>> {
    let user = app.tokens.authenticate(&app.store, headers).map_err(|e| Box::new((e, String::new())))?;
    if user.is_privileged() {
        return Ok(user);
    }
    let attrs = RequestAttributes::from_request(method.as_str(), path, query);
    let decision = rbac::authorize(&app.store, &user, &attrs);
    if decision.allowed {
        Ok(user)
    } else {
        Err(Box::new((rbac::forbidden(&user, &attrs, &decision.reason), user.name)))
    }
}

/// An apply that would create the object needs `create` too, as kube-apiserver checks
/// (with the request's name) before creating through a patch.
fn authorize_create_on_apply(req: &Req<'_>, name: &str) -> ApiResult<()> {
    let info = &req.target.info;
    let ns = req.target.ns.as_deref();
    if req.user.is_privileged() || req.app.store.get(info, ns, name).is_ok() {
        return Ok(());
    }
    let attrs = RequestAttributes {
        verb: "create".into(),
        resource_request: true,
        path: String::new(),
        api_group: info.group.clone(),
        api_version: info.version.clone(),
        namespace: ns.unwrap_or_default().into(),
        resource: info.plural.clone(),
        subresource: String::new(),
        name: name.into(),
    };
    let decision = rbac::authorize(&req.app.store, req.user, &attrs);
    if decision.allowed {
        return Ok(());
    }
    Err(ApiError::forbidden_for(&info.group, &info.plural, name, &decision.reason))
}

/// `serviceaccounts/{name}/token` (TokenRequest, `kubectl create token`): a new token for
/// an existing ServiceAccount. The token never expires here (the answer still names an
/// expiry, `spec.expirationSeconds` or an hour from now) and is bound to no object.
fn token_request(req: &Req<'_>, ns: &str, name: &str) -> ApiResult<Response> {
    let store = &req.app.store;
    store.get(&req.target.info, Some(ns), name)?;
    // kubectl sends protobuf; only `expirationSeconds` and `audiences` matter, and a body
    // that cannot be read as JSON is taken as the defaults.
    let body: Value = serde_json::from_slice(req.body).unwrap_or_else(|_| json!({}));
    let seconds = body["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
    let audiences = body["spec"]["audiences"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![json!("https://kubernetes.default.svc.cluster.local")]);
    let now = store.clock().wall();
    let expires = now + Duration::from_secs(u64::try_from(seconds).unwrap_or(3600));
    let token = req.app.tokens.issue_service_account(ns, name);
    let answer = json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": null},
        "status": {"token": token, "expirationTimestamp": crate::meta::time(expires)}
    });
    Ok(json_response(201, &answer, &[]))
}

/// `SelfSubjectReview` (create only): who the request authenticated as (`kubectl auth whoami`).
fn self_subject_review(user: &UserInfo) -> Response {
    let review = json!({
        "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {"username": user.name, "groups": user.groups}}
    });
    json_response(201, &review, &[])
}

/// `SelfSubjectRulesReview` (create only): the rules the requesting user holds in
/// `spec.namespace` (`kubectl auth can-i --list`).
fn self_subject_rules_review(app: &AppState, user: &UserInfo, body: &[u8]) -> ApiResult<Response> {
    let review: Value = if body.starts_with(b"k8s\0") {
        protobuf::decode_self_subject_rules_review(body)?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))?
    };
    let namespace = review["spec"]["namespace"].as_str().unwrap_or_default();
    let mut rules = Vec::new();
    if user.is_privileged() {
        rules.push(json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));
        rules.push(json!({"nonResourceURLs": ["*"], "verbs": ["*"]}));
    }
    rules.extend(rbac::rules_for(&app.store, user, namespace));
    let pick = |rule: &Value, keys: &[&str]| -> Value {
        let mut out = serde_json::Map::new();
        for k in keys {
            if rule[*k].as_array().is_some_and(|a| !a.is_empty()) {
                out.insert((*k).into(), rule[*k].clone());
            }
        }
        Value::Object(out)
    };
    let has = |rule: &Value, k: &str| rule[k].as_array().is_some_and(|a| !a.is_empty());
    let resource_rules: Vec<Value> = rules
        .iter()
        .filter(|r| has(r, "resources"))
        .map(|r| pick(r, &["verbs", "apiGroups", "resources", "resourceNames"]))
        .collect();
    let non_resource_rules: Vec<Value> =
        rules.iter().filter(|r| has(r, "nonResourceURLs")).map(|r| pick(r, &["verbs", "nonResourceURLs"])).collect();
    let answer = json!({
        "kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"namespace": namespace},
        "status": {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false}
    });
    Ok(json_response(201, &answer, &[]))
}

/// `SelfSubjectAccessReview` (create only, never stored): may the requesting user do
/// what `spec` describes? `kubectl auth can-i` asks this.
fn self_subject_access_review(app: &AppState, user: &UserInfo, body: &[u8]) -> ApiResult<Response> {
    let mut review: Value = if body.starts_with(b"k8s\0") {
        protobuf::decode_self_subject_access_review(body)?
    } else {
        serde_json::from_slice(body)
            .or_else(|_| {
                std::str::from_utf8(body)
                    .map_err(|e| e.to_string())
                    .and_then(|s| serde_saphyr::from_str::<Value>(s).map_err(|e| e.to_string()))
            })
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))?
    };
    let spec = &review["spec"];
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let attrs = if let Some(r) = spec.get("resourceAttributes").filter(|r| r.is_object()) {
        RequestAttributes {
            verb: str_of(&r["verb"]),
            resource_request: true,
            api_group: str_of(&r["group"]),
            api_version: str_of(&r["version"]),
            namespace: str_of(&r["namespace"]),
            resource: str_of(&r["resource"]),
            subresource: str_of(&r["subresource"]),
            name: str_of(&r["name"]),
            path: String::new(),
        }
    } else if let Some(n) = spec.get("nonResourceAttributes").filter(|n| n.is_object()) {
        RequestAttributes::non_resource(n["verb"].as_str().unwrap_or_default(), n["path"].as_str().unwrap_or_default())
    } else {
        return Err(ApiError::invalid(
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            "",
            &[crate::error::FieldErr::invalid(
                "spec.resourceAttributes",
                Value::Null,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )],
        ));
    };
    let (allowed, reason) = if user.is_privileged() {
        (true, String::new())
    } else {
        let d = rbac::authorize(&app.store, user, &attrs);
        (d.allowed, d.reason)
    };
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectAccessReview");
    review["metadata"] = json!({"creationTimestamp": null});
    review["status"] = status;
    Ok(json_response(201, &review, &[]))
}

/// What a DELETE or deletecollection deleted, passed from `dispatch` to the request log.
#[derive(Clone)]
struct DeletedObjects(Vec<DeletedObject>);

fn with_deleted(mut resp: Response, deleted: Vec<DeletedObject>) -> Response {
    resp.extensions_mut().insert(DeletedObjects(deleted));
    resp
}

pub(crate) struct Req<'a> {
    app: &'a AppState,
    target: &'a Target,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a [u8],
    user: &'a UserInfo,
}

impl Req<'_> {
    fn q(&self, k: &str) -> Option<&str> {
        self.query.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    fn content_type(&self) -> &str {
        self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json")
    }

    fn accept(&self) -> &str {
        self.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn wants_table(&self) -> bool {
        self.accept().split(',').next().is_some_and(|first| first.contains("as=Table"))
    }

    fn include_object(&self) -> table::IncludeObject {
        match self.q("includeObject") {
            Some("None") => table::IncludeObject::None,
            Some("Object") => table::IncludeObject::Object,
            _ => table::IncludeObject::Metadata,
        }
    }

    fn body_json(&self) -> ApiResult<Value> {
        let ct = self.content_type();
        // Built-in kinds accept protobuf, custom resources only JSON/YAML, as in kube-apiserver.
        if protobuf::is_protobuf(ct) && !self.target.info.custom {
            return protobuf::decode(self.body);
        }
        if ct.contains("protobuf") || ct.contains("cbor") {
            return Err(ApiError::unsupported_media_type("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".to_string()));
        }
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the body of the request is empty"));
        }
        match serde_json::from_slice(self.body) {
            Ok(v) => Ok(v),
            Err(e) if ct.contains("yaml") => {
                let s = std::str::from_utf8(self.body).map_err(|_| ApiError::bad_request(e.to_string()))?;
                serde_saphyr::from_str::<Value>(s)
                    .map_err(|y| ApiError::bad_request(format!("error converting YAML to JSON: {y}")))
            }
            Err(e) => Err(ApiError::bad_request(format!("error decoding the request body: {e}"))),
        }
    }

    fn write_options(&self) -> ApiResult<WriteOptions> {
        Ok(WriteOptions {
            dry_run: self.query.get("dryRun").is_some_and(|v| v == "All"),
            field_manager: self.q("fieldManager").map(str::to_string),
            field_validation: FieldValidation::parse(self.q("fieldValidation").unwrap_or(""))?,
            force: self.q("force") == Some("true"),
        })
    }

    fn list_options(&self) -> ListOptions {
        ListOptions {
            label_selector: self.q("labelSelector").map(str::to_string),
            field_selector: self.q("fieldSelector").map(str::to_string),
            resource_version: self.q("resourceVersion").map(str::to_string),
            resource_version_match: self.q("resourceVersionMatch").map(str::to_string),
            limit: self.q("limit").and_then(|l| l.parse().ok()),
            continue_token: self.q("continue").map(str::to_string),
        }
    }

    fn watch_options(&self) -> WatchOptions {
        let mut field_selector = self.q("fieldSelector").map(str::to_string);
        if let Some(name) = &self.target.name {
            let pin = format!("metadata.name={name}");
            field_selector = Some(match field_selector {
                Some(f) => format!("{f},{pin}"),
                None => pin,
            });
        }
        WatchOptions {
            resource_version: self.q("resourceVersion").map(str::to_string),
            label_selector: self.q("labelSelector").map(str::to_string),
            field_selector,
            send_initial_events: self.q("sendInitialEvents").map(|v| v == "true"),
        }
    }

    fn delete_options(&self) -> ApiResult<DeleteOptions> {
        let body: Value = if self.body.is_empty() { json!({}) } else { self.body_json()? };
        let mut opts = crate::store::parse_delete_options(&body, |k| self.q(k))?;
        opts.dry_run |= self.query.get("dryRun").is_some_and(|v| v == "All");
        Ok(opts)
    }

    fn one_table(&self, obj: &Value) -> Value {
        let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or_default();
        table::table(
            &self.target.info,
            std::slice::from_ref(obj),
            rv,
            None,
            self.include_object(),
            true,
            self.app.store.clock().wall(),
        )
    }
}

/// Kinds whose deletion answers with the deleted object rather than a `Status`
/// (`ReturnDeletedObject` in their kube-apiserver storage).
fn returns_deleted_object(info: &ResourceInfo) -> bool {
    !info.custom
        && matches!(
            (info.storage.group.as_str(), info.storage.resource.as_str()),
            ("", "pods") | ("", "services") | ("storage.k8s.io", "storageclasses")
        )
}

fn dispatch(req: &Req<'_>, verb: Verb) -> ApiResult<Response> {
    let store = &req.app.store;
    let t = req.target;
    let info = &*t.info;
    let ns = t.ns.as_deref();
    let name = t.name.as_deref().unwrap_or_default();
    let sub = match t.sub.as_deref() {
        None => None,
        Some("binding") if verb == Verb::Create && !info.custom && info.plural == "pods" => {
            let body = req.body_json()?;
            store.bind(ns.unwrap_or_default(), name, &body)?;
            return Ok(json_response(
                201,
                &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                &[],
            ));
        }
        Some("token") if verb == Verb::Create && !info.custom && info.plural == "serviceaccounts" => {
            return token_request(req, ns.unwrap_or_default(), name);
        }
        Some("eviction") if verb == Verb::Create && !info.custom && info.plural == "pods" => {
            let evicted = store.evict(ns.unwrap_or_default(), name, &req.body_json()?, &req.write_options()?)?;
            return Ok(json_response(201, &evicted.status, &evicted.warnings));
        }
        Some(s) => {
            let parsed = Subresource::parse(s).ok_or_else(ApiError::no_route)?;
            let allowed = match parsed {
                Subresource::Status => info.status_subresource,
                Subresource::Scale => info.scale.is_some(),
                Subresource::Finalize => !info.custom && info.plural == "namespaces" && verb == Verb::Update,
            };
            if !allowed {
                return Err(ApiError::no_route());
            }
            Some(parsed)
        }
    };
    if sub.is_some() && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch) {
        return Err(ApiError::method_not_allowed("the server does not allow this method on the requested resource"));
    }
    match verb {
        Verb::Get => {
            let obj = match sub {
                Some(s) => store.get_subresource(info, ns, name, s)?,
                None => store.get(info, ns, name)?,
            };
            if req.wants_table() && sub.is_none() {
                return Ok(json_response(200, &req.one_table(&obj), &[]));
            }
            Ok(json_response(200, &obj, &[]))
        }
        Verb::List => {
            let list = store.list(info, ns, &req.list_options())?;
            if req.wants_table() {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let rv = list["metadata"]["resourceVersion"].as_str().unwrap_or_default();
                let cont = list["metadata"]["continue"].as_str();
                let t = table::table(info, &items, rv, cont, req.include_object(), true, store.clock().wall());
                return Ok(json_response(200, &t, &[]));
            }
            Ok(json_response(200, &list, &[]))
        }
        Verb::Create => {
            let w = store.create(info, ns, req.body_json()?, &req.write_options()?)?;
            Ok(json_response(201, &w.object, &w.warnings))
        }
        Verb::Update => {
            let w = store.replace(info, ns, name, sub, req.body_json()?, &req.write_options()?)?;
            Ok(json_response(if w.created { 201 } else { 200 }, &w.object, &w.warnings))
        }
        Verb::Patch => {
            let kind = PatchType::from_content_type(req.content_type()).ok_or_else(|| {
                ApiError::unsupported_media_type(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
                    if info.custom { "" } else { ", application/strategic-merge-patch+json" }
                ))
            })?;
            let opts = req.write_options()?;
            let body = req.body_json()?;
            if kind == PatchType::Apply && sub.is_none() {
                authorize_create_on_apply(req, name)?;
            }
            let w = store.patch(info, ns, name, sub, kind, &body, &opts)?;
            Ok(json_response(if w.created { 201 } else { 200 }, &w.object, &w.warnings))
        }
        Verb::Delete => {
            let d = store.delete(info, ns, name, &req.delete_options()?)?;
            let deleted = vec![DeletedObject::of(&d.object)];
            if d.finished && !returns_deleted_object(info) {
                let mut details = json!({"name": name, "kind": info.plural, "uid": d.object["metadata"]["uid"]});
                if !info.group.is_empty() {
                    details["group"] = json!(info.group);
                }
                let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
                return Ok(with_deleted(json_response(200, &status, &[]), deleted));
            }
            Ok(with_deleted(json_response(200, &d.object, &[]), deleted))
        }
        Verb::DeleteCollection => {
            let opts = req.delete_options()?;
            let list = store.list(info, ns, &req.list_options())?;
            let mut items = Vec::new();
            for item in list["items"].as_array().into_iter().flatten() {
                let n = crate::meta::name(item);
                let item_ns = crate::meta::namespace(item);
                match store.delete(info, if item_ns.is_empty() { None } else { Some(item_ns) }, n, &opts) {
                    Ok(d) => items.push(d.object),
                    Err(e) if e.code == 404 => {}
                    // What was deleted before the failure stays deleted, and recorded.
                    Err(e) => {
                        return Ok(with_deleted(error_response(&e), items.iter().map(DeletedObject::of).collect()));
                    }
                }
            }
            let deleted = items.iter().map(DeletedObject::of).collect();
            let mut out = list.clone();
            out["items"] = Value::Array(items);
            Ok(with_deleted(json_response(200, &out, &[]), deleted))
        }
        Verb::Watch => Err(ApiError::method_not_allowed("watch")),
    }
}
