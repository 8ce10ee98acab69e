//! Writes with kube-apiserver's semantics: create, replace, patch, delete, binding.

use std::sync::Arc;

use serde_json::{Value, json};
use sim_clock::SimInstant;

use super::{ChangeKind, Key, State, Store};
use crate::convert::{from_served, to_served, to_served_shared};
use crate::error::{ApiError, ApiResult, FieldErr};
use crate::meta;
use crate::patch::{self, PatchType};
use crate::registry::{self, GroupResource, ResourceInfo};
use crate::strategy;
use crate::validation::{self, custom, custom::FieldValidation};

/// Options of a write request.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    /// Server-side apply `force`.
    pub force: bool,
}

/// The result of a write: the object as served, and warnings for `Warning` headers.
#[derive(Clone, Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    /// The write created the object (201 over HTTP).
    pub created: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subresource {
    Status,
    Scale,
    /// `namespaces/{name}/finalize`.
    Finalize,
}

impl Subresource {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "status" => Some(Subresource::Status),
            "scale" => Some(Subresource::Scale),
            "finalize" => Some(Subresource::Finalize),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

/// `DeleteOptions`.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub propagation: Option<Propagation>,
    pub grace_period_seconds: Option<i64>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

/// `DeleteOptions` from a JSON body (also an eviction's `deleteOptions`), each field
/// falling back to the query parameter of the same name.
pub(crate) fn parse_delete_options<'a>(
    body: &Value,
    query: impl Fn(&str) -> Option<&'a str>,
) -> ApiResult<DeleteOptions> {
    let policy = body["propagationPolicy"].as_str().or_else(|| query("propagationPolicy"));
    let mut propagation = match policy {
        None => None,
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                &[FieldErr::new(
                    "propagationPolicy",
                    crate::error::FieldErrKind::NotSupported,
                    Some(json!(other)),
                    "supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"",
                )],
            ));
        }
    };
    let orphan = body["orphanDependents"].as_bool().or_else(|| query("orphanDependents").map(|v| v == "true"));
    if propagation.is_none() {
        propagation = orphan.map(|o| if o { Propagation::Orphan } else { Propagation::Background });
    }
    let grace =
        body["gracePeriodSeconds"].as_i64().or_else(|| query("gracePeriodSeconds").and_then(|g| g.parse().ok()));
    Ok(DeleteOptions {
        propagation,
        grace_period_seconds: grace,
        precondition_uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        precondition_resource_version: body["preconditions"]["resourceVersion"].as_str().map(str::to_string),
        dry_run: body["dryRun"].as_array().is_some_and(|d| d.iter().any(|x| x == "All")),
    })
}

/// The result of a delete: the object as served, and whether it is gone (or only
/// marked for deletion, waiting on finalizers or a grace period).
#[derive(Clone, Debug)]
pub struct Deleted {
    pub object: Value,
    pub finished: bool,
}

pub(crate) const ORPHAN: &str = "orphan";
pub(crate) const FOREGROUND: &str = "foregroundDeletion";
pub(crate) const CRD_CLEANUP: &str = "customresourcecleanup.apiextensions.k8s.io";

fn is_gr(info: &ResourceInfo, group: &str, resource: &str) -> bool {
    !info.custom && info.storage.group == group && info.storage.resource == resource
}

fn key_for(info: &ResourceInfo, ns: Option<&str>, name: &str) -> Key {
    Key::new(if info.namespaced { ns.unwrap_or("") } else { "" }, name)
}

fn namespaces_gr() -> GroupResource {
    GroupResource::new("", "namespaces")
}

fn crds_gr() -> GroupResource {
    GroupResource::new("apiextensions.k8s.io", "customresourcedefinitions")
}

/// The part of an object whose changes bump `metadata.generation`.
fn spec_part(info: &ResourceInfo, obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Value::Object(m) = &mut v {
        m.remove("metadata");
        m.remove("apiVersion");
        m.remove("kind");
        if !info.custom || info.status_subresource {
            m.remove("status");
        }
    }
    v
}

fn check_body_kind(info: &ResourceInfo, body: &Value) -> ApiResult<()> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body of the request is not a JSON object"));
    }
    let kind = body["kind"].as_str().unwrap_or_default();
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    let api_version = body["apiVersion"].as_str().unwrap_or_default();
    if !api_version.is_empty() {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        if group != info.group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
    }
    Ok(())
}

/// kube-apiserver stores every object with its apiVersion and kind, taken from the
/// request's path when the body has none. Kept here too (updates keep what the object
/// was created with), so that a stored object is what its version serves and readers
/// can share it instead of copying it ([`to_served_shared`]).
fn fill_type_meta(info: &ResourceInfo, obj: &mut Value) {
    if info.shape != registry::Shape::Plain {
        return;
    }
    let Some(m) = obj.as_object_mut() else { return };
    for (field, value) in [("apiVersion", info.api_version()), ("kind", info.kind.clone())] {
        if m.get(field).and_then(Value::as_str).is_none_or(str::is_empty) {
            m.insert(field.into(), Value::String(value));
        }
    }
}

fn pod_grace_period(pod: &Value, requested: Option<i64>) -> i64 {
    let phase = pod["status"]["phase"].as_str().unwrap_or_default();
    if pod["spec"]["nodeName"].as_str().unwrap_or_default().is_empty() || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    requested.or_else(|| pod["spec"]["terminationGracePeriodSeconds"].as_i64()).unwrap_or(30).max(0)
}

fn namespace_pending(obj: &Value) -> bool {
    obj["spec"]["finalizers"].as_array().is_some_and(|f| !f.is_empty())
}

impl Store {
    fn now(&self) -> (std::time::SystemTime, SimInstant) {
        (self.shared.clock.wall(), self.shared.clock.now())
    }

    /// Reads one object as `info`'s version serves it.
    pub fn get(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        let st = self.lock();
        st.get(&info.storage, &key_for(info, ns, name))
            .map(|o| to_served(info, o))
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))
    }

    /// [`get`](Self::get), shared with the store rather than copied (see
    /// [`to_served_shared`]): for the components that read an object on every pass.
    pub fn get_shared(&self, info: &ResourceInfo, ns: Option<&str>, name: &str) -> ApiResult<Arc<Value>> {
        let st = self.lock();
        st.get(&info.storage, &key_for(info, ns, name))
            .map(|o| to_served_shared(info, o))
            .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))
    }

    /// Reads a subresource: the object itself for `status`, an `autoscaling/v1` Scale for `scale`.
    pub fn get_subresource(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Subresource,
    ) -> ApiResult<Value> {
        match sub {
            Subresource::Scale => {
                let st = self.lock();
                let obj = st
                    .get(&info.storage, &key_for(info, ns, name))
                    .ok_or_else(|| ApiError::not_found(&info.group, &info.plural, name))?;
                super::scale::view(info, obj)
            }
            _ => self.get(info, ns, name),
        }
    }

    /// Creates an object (POST on the collection).
    pub fn create(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let (wall, at) = self.now();
        let mut st = self.lock();
        let out = create_locked(&mut st, info, ns, body, opts, wall, at);
        let rev = st.rev;
        drop(st);
        self.notify(rev);
        out
    }

    /// Replaces an object or one of its subresources (PUT).
    pub fn replace(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        check_body_kind_for(info, sub, &body)?;
        let at = self.shared.clock.now();
        self.update(info, ns, name, sub, opts, true, at, &mut |_| Ok(body.clone()))
    }

    /// An update as the API server makes it: worked out from the object as read, the
    /// custom resource's schema and CEL rules checked without holding the store (the
    /// costliest part, which held every other request up), then committed if the object
    /// is still the one read, or worked out again from the newer one (etcd's
    /// compare-and-swap in `GuaranteedUpdate`).
    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        opts: &WriteOptions,
        is_put: bool,
        at: SimInstant,
        mutate: &mut dyn FnMut(&Value) -> ApiResult<Value>,
    ) -> ApiResult<Written> {
        let out = loop {
            let mut st = self.lock();
            let mut staged = stage_update(&st, info, ns, name, sub, opts, is_put, mutate)?;
            // Nothing to validate (a built-in resource): committed under the same lock.
            let Some(validator) = st.validators.of(info).filter(|_| info.custom) else {
                let out = finish_update(&mut st, info, ns, name, sub, opts, at, staged);
                break (out, st.rev);
            };
            drop(st);
            validator.check(info, &mut staged.new, Some(&staged.old))?;
            let mut st = self.lock();
            let current = st.get(&info.storage, &key_for(info, ns, name));
            if current.is_some_and(|c| Arc::ptr_eq(c, &staged.old)) {
                let out = finish_update(&mut st, info, ns, name, sub, opts, at, staged);
                break (out, st.rev);
            }
        };
        self.notify(out.1);
        out.0
    }

    /// Patches an object or one of its subresources.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        kind: PatchType,
        body: &Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        if kind == PatchType::Strategic && info.custom {
            return Err(ApiError::unsupported_media_type(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
            ));
        }
        let manager = opts.field_manager.clone().unwrap_or_default();
        if kind == PatchType::Apply {
            if manager.is_empty() {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            }
            check_body_kind_for(info, sub, body)?;
        }
        let (wall, at) = self.now();
        let mut st = self.lock();
        let key = key_for(info, ns, name);
        let existing = st.get(&info.storage, &key).cloned();
        let manager_key =
            |uid: &str| (uid.to_string(), format!("{manager}{}", if sub.is_some() { "/sub" } else { "" }));
        let out = match (&existing, kind) {
            (None, PatchType::Apply) if sub.is_none() => {
                let mut obj = body.clone();
                meta::set_meta(&mut obj, "name", Some(json!(name)));
                let out = create_locked(&mut st, info, ns, obj, opts, wall, at);
                if let Ok(w) = &out {
                    st.applied.insert(manager_key(meta::uid(&w.object)), body.clone());
                }
                out
            }
            (None, _) => Err(ApiError::not_found(&info.group, &info.plural, name)),
            (Some(_), kind) if kind != PatchType::Apply => {
                drop(st);
                let gr = info.storage.clone();
                return self
                    .update(info, ns, name, sub, opts, false, at, &mut |view| patched(view, kind, body, None, &gr));
            }
            (Some(current), _) => {
                let previous = st.applied.get(&manager_key(meta::uid(current))).cloned();
                let gr = info.storage.clone();
                let out = update_locked(&mut st, info, ns, name, sub, opts, false, at, &mut |view| {
                    patched(view, kind, body, previous.as_ref(), &gr)
                });
                if kind == PatchType::Apply && out.is_ok() {
                    st.applied.insert(manager_key(meta::uid(current)), body.clone());
                }
                out
            }
        };
        let rev = st.rev;
        drop(st);
        self.notify(rev);
        out
    }

    /// Deletes an object: at once, or by marking it (finalizers, grace period, propagation).
    pub fn delete(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Deleted> {
        let (wall, at) = self.now();
        let mut st = self.lock();
        let out = delete_locked(&mut st, info, ns, name, opts, wall, at);
        let rev = st.rev;
        drop(st);
        self.notify(rev);
        out
    }

    /// `pods/{name}/binding`: assigns a pod to a node, as the scheduler does.
    pub fn bind(&self, ns: &str, pod: &str, binding: &Value) -> ApiResult<()> {
        let node = binding["target"]["name"].as_str().unwrap_or_default().to_string();
        if node.is_empty() {
            return Err(ApiError::invalid("", "Binding", pod, &[FieldErr::required("target.name", "")]));
        }
        let (wall, at) = self.now();
        let mut st = self.lock();
        let gr = GroupResource::new("", "pods");
        let key = Key::new(ns, pod);
        let current = st.get(&gr, &key).cloned().ok_or_else(|| ApiError::not_found("", "pods", pod))?;
        let assigned = current["spec"]["nodeName"].as_str().unwrap_or_default();
        if !assigned.is_empty() {
            return Err(ApiError::conflict(
                "",
                "pods/binding",
                pod,
                &format!("pod {pod} is already assigned to node \"{assigned}\""),
            ));
        }
        if meta::is_deleting(&current) {
            return Err(ApiError::conflict(
                "",
                "pods/binding",
                pod,
                &format!("pod {pod} is being deleted, cannot be assigned to a host"),
            ));
        }
        let mut new = (*current).clone();
        new["spec"]["nodeName"] = json!(node);
        let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::time(wall)});
        let conds = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
        conds.push(cond);
        new["status"]["conditions"] = Value::Array(conds);
        st.commit(&gr, &key, new, ChangeKind::Modified, at);
        let rev = st.rev;
        drop(st);
        self.notify(rev);
        Ok(())
    }
}

/// `view` with a patch of `kind` applied (`previous`: what the same manager applied
/// last, for an apply patch).
fn patched(
    view: &Value,
    kind: PatchType,
    body: &Value,
    previous: Option<&Value>,
    gr: &GroupResource,
) -> ApiResult<Value> {
    let mut doc = view.clone();
    match kind {
        PatchType::Json => patch::json_patch(&mut doc, body)?,
        PatchType::Merge => patch::merge(&mut doc, body),
        PatchType::Strategic => patch::strategic(&mut doc, body, gr)?,
        PatchType::Apply => patch::apply(&mut doc, body, previous, gr),
    }
    Ok(doc)
}

fn check_body_kind_for(info: &ResourceInfo, sub: Option<Subresource>, body: &Value) -> ApiResult<()> {
    if sub == Some(Subresource::Scale) {
        if !body.is_object() {
            return Err(ApiError::bad_request("the body of the request is not a JSON object"));
        }
        return Ok(());
    }
    check_body_kind(info, body)
}

fn not_found(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::not_found(&info.group, &info.plural, name)
}

pub(crate) fn create_locked(
    st: &mut State,
    info: &ResourceInfo,
    ns: Option<&str>,
    body: Value,
    opts: &WriteOptions,
    wall: std::time::SystemTime,
    at: SimInstant,
) -> ApiResult<Written> {
    check_body_kind(info, &body)?;
    if let Some(crd) = &info.crd
        && st.get(&crds_gr(), &Key::new("", crd)).is_some_and(|c| meta::is_deleting(c))
    {
        return Err(ApiError::method_not_allowed("create not allowed while custom resource definition is terminating"));
    }
    let mut obj = from_served(info, body);
    let namespace = if info.namespaced {
        let body_ns = meta::namespace(&obj).to_string();
        let ns = match ns {
            Some(n) if !body_ns.is_empty() && body_ns != n => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            Some(n) => n.to_string(),
            None => body_ns,
        };
        if ns.is_empty() {
            return Err(ApiError::bad_request("an empty namespace may not be set during creation"));
        }
        meta::set_meta(&mut obj, "namespace", Some(json!(ns)));
        ns
    } else {
        meta::set_meta(&mut obj, "namespace", None);
        String::new()
    };
    if meta::name(&obj).is_empty()
        && let Some(prefix) = obj["metadata"]["generateName"].as_str().filter(|p| !p.is_empty()).map(str::to_string)
    {
        let mut name = format!("{prefix}{}", meta::name_suffix());
        for _ in 0..8 {
            if st.get(&info.storage, &Key::new(&namespace, &name)).is_none() {
                break;
            }
            name = format!("{prefix}{}", meta::name_suffix());
        }
        meta::set_meta(&mut obj, "name", Some(json!(name)));
    }
    let name = meta::name(&obj).to_string();
    if !meta::resource_version(&obj).is_empty() {
        return Err(ApiError::internal("resourceVersion should not be set on objects to be created"));
    }
    if info.namespaced {
        match st.get(&namespaces_gr(), &Key::new("", &namespace)) {
            None => return Err(ApiError::not_found("", "namespaces", &namespace)),
            Some(n) if meta::is_deleting(n) => {
                let mut e = ApiError::forbidden(
                    &info.group,
                    &info.plural,
                    &name,
                    &format!("unable to create new content in namespace {namespace} because it is being terminated"),
                );
                if let Some(d) = &mut e.details {
                    d["causes"] = json!([{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {namespace} is being terminated"),
                        "field": "metadata.namespace"
                    }]);
                }
                return Err(e);
            }
            Some(_) => {}
        }
    }
    {
        let m = meta::meta_mut(&mut obj);
        m.insert("uid".into(), json!(meta::new_uid()));
        m.insert("creationTimestamp".into(), json!(meta::time(wall)));
        for f in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"] {
            m.remove(f);
        }
        if info.tracks_generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
    }
    strategy::apply_defaults(info, &mut obj);
    strategy::prepare_create(info, &mut obj);
    if is_gr(info, "", "services") {
        allocate_cluster_ip(st, &mut obj).map_err(|e| ApiError::invalid(&info.group, &info.kind, &name, &[e]))?;
    }
    if is_gr(info, "", "persistentvolumeclaims") {
        super::admission::default_storage_class(st, &mut obj);
    }
    let is_crd = is_gr(info, "apiextensions.k8s.io", "customresourcedefinitions");
    if is_crd {
        prepare_crd(&mut obj, wall);
    }
    let mut warnings = Vec::new();
    if info.custom
        && let Some(schema) = &info.schema
    {
        warnings = custom::admit(&mut obj, schema, &info.kind, &info.version, opts.field_validation)?;
    }
    if info.custom {
        st.validators.validate(info, &mut obj, None)?;
    }
    let mut errs = validation::validate_create(info, &obj);
    if is_crd {
        errs.extend(validate_crd(&obj));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(&info.group, &info.kind, &name, &errs));
    }
    let key = Key::new(&namespace, &name);
    if st.get(&info.storage, &key).is_some() {
        return Err(ApiError::already_exists(&info.group, &info.plural, &name));
    }
    if opts.dry_run {
        return Ok(Written { object: to_served(info, &obj), warnings, created: true });
    }
    fill_type_meta(info, &mut obj);
    let stored = st.commit(&info.storage, &key, obj, ChangeKind::Added, at);
    if is_crd {
        st.registry.set_crd(&name, registry::from_crd(&stored));
        st.validators.set(&name, &stored);
    }
    Ok(Written { object: to_served(info, &stored), warnings, created: true })
}

/// The Service IP range: loopback only, never a routable range.
const SERVICE_CIDR: &str = "127.2.0.0/16";

fn allocate_cluster_ip(st: &mut State, obj: &mut Value) -> Result<(), FieldErr> {
    let spec = &mut obj["spec"];
    if spec["type"] == "ExternalName" {
        return Ok(());
    }
    let ip = spec["clusterIP"].as_str().unwrap_or_default().to_string();
    if ip.is_empty() {
        let n = st.next_cluster_ip;
        st.next_cluster_ip += 1;
        let ip = format!("127.2.{}.{}", (n >> 8) & 0xff, n & 0xff);
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
        return Ok(());
    }
    let in_range = ip.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.octets()[..2] == [127, 2]);
    if ip != "None" && !in_range {
        return Err(FieldErr::invalid(
            "spec.clusterIPs",
            json!([ip]),
            format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {SERVICE_CIDR}"
            ),
        ));
    }
    if spec["clusterIPs"].is_null() {
        spec["clusterIPs"] = json!([ip]);
    }
    Ok(())
}

fn prepare_crd(obj: &mut Value, wall: std::time::SystemTime) {
    let mut fins = meta::finalizers(obj);
    if !fins.iter().any(|f| f == CRD_CLEANUP) {
        fins.push(CRD_CLEANUP.into());
    }
    meta::set_finalizers(obj, &fins);
    let mut names = obj["spec"]["names"].clone();
    if names["singular"].is_null()
        && let Some(k) = names["kind"].as_str()
    {
        names["singular"] = json!(k.to_lowercase());
    }
    if names["listKind"].is_null()
        && let Some(k) = names["kind"].as_str()
    {
        names["listKind"] = json!(format!("{k}List"));
    }
    obj["spec"]["names"] = names.clone();
    let stored: Vec<Value> = obj["spec"]["versions"]
        .as_array()
        .map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect())
        .unwrap_or_default();
    let t = meta::time(wall);
    obj["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": t, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": t, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ],
        "storedVersions": stored
    });
}

fn validate_crd(crd: &Value) -> Vec<FieldErr> {
    let mut errs = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    if meta::name(crd) != format!("{plural}.{group}") {
        errs.push(FieldErr::invalid(
            "metadata.name",
            json!(meta::name(crd)),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if spec["names"]["kind"].as_str().unwrap_or_default().is_empty() {
        errs.push(FieldErr::required("spec.names.kind", ""));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldErr::invalid(
            "spec.versions",
            json!([]),
            "must have exactly one version marked as storage version",
        ));
    } else if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        errs.push(FieldErr::invalid(
            "spec.versions",
            Value::Array(versions.clone()),
            "must have exactly one version marked as storage version",
        ));
    }
    let scope = spec["scope"].as_str().unwrap_or_default();
    if scope != "Namespaced" && scope != "Cluster" {
        errs.push(FieldErr::new(
            "spec.scope",
            crate::error::FieldErrKind::NotSupported,
            Some(json!(scope)),
            "supported values: \"Cluster\", \"Namespaced\"",
        ));
    }
    errs
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn update_locked(
    st: &mut State,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Option<Subresource>,
    opts: &WriteOptions,
    is_put: bool,
    at: SimInstant,
    mutate: &mut dyn FnMut(&Value) -> ApiResult<Value>,
) -> ApiResult<Written> {
    let mut staged = stage_update(st, info, ns, name, sub, opts, is_put, mutate)?;
    if info.custom {
        st.validators.validate(info, &mut staged.new, Some(&staged.old))?;
    }
    finish_update(st, info, ns, name, sub, opts, at, staged)
}

/// An update worked out up to the custom resource's schema and CEL validation.
struct Staged {
    /// The object as stored when the update was worked out.
    old: Arc<Value>,
    new: Value,
    warnings: Vec<String>,
}

/// The first part of an update: the new object from the old and the request, with the
/// checks that come before validation (names, resourceVersion precondition, structural
/// schema). Reads the state only.
#[allow(clippy::too_many_arguments)]
fn stage_update(
    st: &State,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Option<Subresource>,
    opts: &WriteOptions,
    is_put: bool,
    mutate: &mut dyn FnMut(&Value) -> ApiResult<Value>,
) -> ApiResult<Staged> {
    let key = key_for(info, ns, name);
    let gr = info.storage.clone();
    let old = st.get(&gr, &key).cloned().ok_or_else(|| not_found(info, name))?;
    let view = match sub {
        Some(Subresource::Scale) => super::scale::view(info, &old)?,
        _ => to_served(info, &old),
    };
    let new_view = mutate(&view)?;
    if !new_view.is_object() {
        return Err(ApiError::bad_request("the body of the request is not a JSON object"));
    }
    let body_name = meta::name(&new_view);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if info.namespaced {
        let body_ns = meta::namespace(&new_view);
        if !body_ns.is_empty() && body_ns != key.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let body_rv = meta::resource_version(&new_view).to_string();
    if body_rv.is_empty() {
        if is_put && info.custom {
            let kind = if sub == Some(Subresource::Scale) { "Scale" } else { info.kind.as_str() };
            let group = if sub == Some(Subresource::Scale) { "autoscaling" } else { info.group.as_str() };
            return Err(ApiError::invalid(
                group,
                kind,
                name,
                &[FieldErr::invalid("metadata.resourceVersion", json!("0x0"), "must be specified for an update")],
            ));
        }
    } else if body_rv != meta::resource_version(&old) {
        return Err(ApiError::conflict(&info.group, &info.plural, name, ApiError::MODIFIED));
    }
    let mut new = match sub {
        Some(Subresource::Scale) => super::scale::apply(info, &old, &new_view)?,
        _ => from_served(info, new_view),
    };
    match sub {
        Some(Subresource::Status) => {
            let mut merged = (*old).clone();
            match new.get("status").cloned() {
                Some(s) if !s.is_null() => merged["status"] = s,
                _ => {
                    if let Some(m) = merged.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            new = merged;
        }
        Some(Subresource::Finalize) => {
            let mut merged = (*old).clone();
            merged["spec"]["finalizers"] = new["spec"]["finalizers"].clone();
            new = merged;
        }
        Some(Subresource::Scale) => {}
        None => {
            if info.status_subresource
                && let Some(m) = new.as_object_mut()
            {
                match old.get("status") {
                    Some(s) => {
                        m.insert("status".into(), s.clone());
                    }
                    None => {
                        m.remove("status");
                    }
                }
            }
        }
    }
    {
        let old_meta = old["metadata"].clone();
        let m = meta::meta_mut(&mut new);
        for f in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] {
            match old_meta.get(f) {
                Some(v) => {
                    m.insert(f.into(), v.clone());
                }
                None => {
                    m.remove(f);
                }
            }
        }
        m.insert("name".into(), json!(name));
        if info.namespaced {
            m.insert("namespace".into(), json!(key.namespace));
        } else {
            m.remove("namespace");
        }
        m.remove("selfLink");
        m.remove("managedFields");
        m.insert("resourceVersion".into(), old_meta["resourceVersion"].clone());
    }
    if let Some(m) = new.as_object_mut() {
        m.insert("apiVersion".into(), old["apiVersion"].clone());
        m.insert("kind".into(), old["kind"].clone());
    }
    strategy::apply_defaults(info, &mut new);
    if is_gr(info, "", "services") {
        for f in ["clusterIP", "clusterIPs"] {
            if new["spec"][f].is_null() && !old["spec"][f].is_null() {
                new["spec"][f] = old["spec"][f].clone();
            }
        }
    }
    let mut warnings = Vec::new();
    if info.custom
        && let Some(schema) = &info.schema
    {
        warnings = custom::admit(&mut new, schema, &info.kind, &info.version, opts.field_validation)?;
    }
    Ok(Staged { old, new, warnings })
}

/// The rest of an update, once validated: the checks against the stored object, then
/// the commit (or nothing, when nothing changed).
#[allow(clippy::too_many_arguments)]
fn finish_update(
    st: &mut State,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    sub: Option<Subresource>,
    opts: &WriteOptions,
    at: SimInstant,
    staged: Staged,
) -> ApiResult<Written> {
    let Staged { old, mut new, warnings } = staged;
    let key = key_for(info, ns, name);
    let gr = info.storage.clone();
    let mut errs = Vec::new();
    if meta::is_deleting(&old) {
        let old_fins = meta::finalizers(&old);
        let added: Vec<String> = meta::finalizers(&new).into_iter().filter(|f| !old_fins.contains(f)).collect();
        if !added.is_empty() {
            errs.push(FieldErr::forbidden(
                "metadata.finalizers",
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                ),
            ));
        }
    }
    errs.extend(validation::validate_update(info, &old, &new));
    if is_gr(info, "", "persistentvolumeclaims") && sub.is_none() {
        super::admission::claim_resize(st, name, &old, &new)?;
    }
    if is_gr(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        errs.extend(validate_crd(&new));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(&info.group, &info.kind, name, &errs));
    }
    if info.tracks_generation && spec_part(info, &old) != spec_part(info, &new) {
        let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        meta::set_meta(&mut new, "generation", Some(json!(g)));
    }
    let served = |o: &Value| -> ApiResult<Value> {
        match sub {
            Some(Subresource::Scale) => super::scale::view(info, o),
            _ => Ok(to_served(info, o)),
        }
    };
    if new == *old {
        return Ok(Written { object: served(&old)?, warnings, created: false });
    }
    if opts.dry_run {
        return Ok(Written { object: served(&new)?, warnings, created: false });
    }
    // An update removing the last finalizer of an object due for deletion deletes it;
    // one that leaves a pod in graceful termination (no finalizers, or a grace period
    // still running) keeps it for the kubelet's final delete.
    let is_ns = is_gr(info, "", "namespaces");
    let released = meta::is_deleting(&new)
        && meta::finalizers(&new).is_empty()
        && if is_ns {
            !namespace_pending(&new)
        } else {
            !meta::finalizers(&old).is_empty()
                && new["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
        };
    if released {
        let last = st.commit_delete(&gr, &key, new, at);
        after_delete(st, info, &last);
        return Ok(Written { object: served(&last)?, warnings, created: false });
    }
    let stored = st.commit(&gr, &key, new, ChangeKind::Modified, at);
    if is_gr(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        st.registry.set_crd(name, registry::from_crd(&stored));
        st.validators.set(name, &stored);
    }
    Ok(Written { object: served(&stored)?, warnings, created: false })
}

/// Bookkeeping once an object is gone: a CRD takes its resources (and any objects left) with it.
fn after_delete(st: &mut State, info: &ResourceInfo, last: &Value) {
    if is_gr(info, "apiextensions.k8s.io", "customresourcedefinitions") {
        let name = meta::name(last);
        let grs: Vec<GroupResource> =
            st.registry.all().iter().filter(|r| r.crd.as_deref() == Some(name)).map(|r| r.storage.clone()).collect();
        st.registry.remove_crd(name);
        st.validators.remove(name);
        for gr in grs {
            st.objects.remove(&gr);
        }
    }
}

pub(crate) fn delete_locked(
    st: &mut State,
    info: &ResourceInfo,
    ns: Option<&str>,
    name: &str,
    opts: &DeleteOptions,
    wall: std::time::SystemTime,
    at: SimInstant,
) -> ApiResult<Deleted> {
    let key = key_for(info, ns, name);
    let gr = info.storage.clone();
    let old = st.get(&gr, &key).cloned().ok_or_else(|| not_found(info, name))?;
    if let Some(uid) = &opts.precondition_uid
        && uid != meta::uid(&old)
    {
        return Err(ApiError::conflict(
            &info.group,
            &info.plural,
            name,
            &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::uid(&old)),
        ));
    }
    if let Some(rv) = &opts.precondition_resource_version
        && rv != meta::resource_version(&old)
    {
        return Err(ApiError::conflict(
            &info.group,
            &info.plural,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta::resource_version(&old)
            ),
        ));
    }
    if is_gr(info, "", "namespaces") && ["default", "kube-system", "kube-public"].contains(&name) {
        return Err(ApiError::forbidden("", "namespaces", name, "this namespace may not be deleted"));
    }
    let is_pod = is_gr(info, "", "pods");
    let grace = if is_pod { pod_grace_period(&old, opts.grace_period_seconds) } else { 0 };
    let view = |o: &Value| to_served(info, o);
    if meta::is_deleting(&old) {
        let current = old["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if is_pod && grace < current && !opts.dry_run {
            let mut new = (*old).clone();
            if grace == 0 && meta::finalizers(&new).is_empty() {
                let last = st.commit_delete(&gr, &key, new, at);
                return Ok(Deleted { object: view(&last), finished: true });
            }
            meta::set_meta(&mut new, "deletionGracePeriodSeconds", Some(json!(grace)));
            let ts = meta::time(wall + std::time::Duration::from_secs(grace as u64));
            meta::set_meta(&mut new, "deletionTimestamp", Some(json!(ts)));
            let stored = st.commit(&gr, &key, new, ChangeKind::Modified, at);
            return Ok(Deleted { object: view(&stored), finished: false });
        }
        return Ok(Deleted { object: view(&old), finished: false });
    }
    let mut new = (*old).clone();
    let mut fins = meta::finalizers(&new);
    match opts.propagation {
        Some(Propagation::Orphan) if !fins.iter().any(|f| f == ORPHAN) => fins.push(ORPHAN.into()),
        Some(Propagation::Foreground) if !fins.iter().any(|f| f == FOREGROUND) => fins.push(FOREGROUND.into()),
        _ => {}
    }
    let is_ns = is_gr(info, "", "namespaces");
    if !fins.is_empty() || grace > 0 || (is_ns && namespace_pending(&new)) {
        meta::set_finalizers(&mut new, &fins);
        let ts = meta::time(wall + std::time::Duration::from_secs(grace as u64));
        meta::set_meta(&mut new, "deletionTimestamp", Some(json!(ts)));
        meta::set_meta(&mut new, "deletionGracePeriodSeconds", Some(json!(grace)));
        if let Some(g) = new["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
            meta::set_meta(&mut new, "generation", Some(json!(g + 1)));
        }
        if is_ns {
            new["status"]["phase"] = json!("Terminating");
        }
        if opts.dry_run {
            return Ok(Deleted { object: view(&new), finished: false });
        }
        let stored = st.commit(&gr, &key, new, ChangeKind::Modified, at);
        return Ok(Deleted { object: view(&stored), finished: false });
    }
    if opts.dry_run {
        return Ok(Deleted { object: view(&old), finished: true });
    }
    let last = st.commit_delete(&gr, &key, new, at);
    after_delete(st, info, &last);
    Ok(Deleted { object: view(&last), finished: true })
}
