//! Acting on the store as a named client, the way the simulated cluster's components
//! (scheduler, kubelet, controllers) do: every call is recorded in the request log under
//! the client's name and is subject to injected faults, like an HTTP request.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{DeleteOptions, Deleted, ListOptions, Store, Subresource, WatchOptions, Watcher, WriteOptions, Written};
use crate::error::{ApiError, ApiResult};
use crate::faults::{FaultAction, FaultTarget};
use crate::patch::PatchType;
use crate::registry::ResourceInfo;
use crate::request_log::{DeletedObject, RequestRecord, Verb, client_name};

/// Names a resource: group, version and plural.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRef {
    pub group: String,
    pub version: String,
    pub plural: String,
}

impl ResourceRef {
    pub fn new(group: &str, version: &str, plural: &str) -> Self {
        ResourceRef { group: group.into(), version: version.into(), plural: plural.into() }
    }

    /// The resource of a k8s-openapi type, e.g. `ResourceRef::of::<Pod>()`.
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        Self::new(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
    }
}

/// A named client of the store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct StoreClient {
    store: Store,
    name: String,
}

impl Store {
    /// Acts as the named client (`kubelet`, `kube-scheduler`, ...).
    pub fn client(&self, name: impl Into<String>) -> StoreClient {
        StoreClient { store: self.clone(), name: name.into() }
    }
}

fn fault_error(action: FaultAction, info: &ResourceInfo, name: &str) -> ApiError {
    match action {
        FaultAction::Conflict => ApiError::conflict(&info.group, &info.plural, name, ApiError::MODIFIED),
        FaultAction::TooManyRequests { retry_after_seconds } => ApiError::too_many_requests(retry_after_seconds),
        FaultAction::InternalError => ApiError::internal("injected fault"),
        FaultAction::Timeout => ApiError::timeout("the server was unable to return a response in the time allotted", 1),
    }
}

impl StoreClient {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn info(&self, r: &ResourceRef) -> ApiResult<Arc<ResourceInfo>> {
        self.store.resource(&r.group, &r.version, &r.plural).ok_or_else(ApiError::no_route)
    }

    /// Records the call and applies faults around `f`.
    #[allow(clippy::too_many_arguments)]
    fn call<T>(
        &self,
        verb: Verb,
        r: &ResourceRef,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
        field_manager: Option<&str>,
        f: impl FnOnce(&ResourceInfo) -> ApiResult<T>,
    ) -> ApiResult<T> {
        self.call_deleting(verb, r, ns, name, sub, field_manager, f, |_| Vec::new())
    }

    /// [`call`](Self::call), recording what the answer `deleted`.
    #[allow(clippy::too_many_arguments)]
    fn call_deleting<T>(
        &self,
        verb: Verb,
        r: &ResourceRef,
        ns: Option<&str>,
        name: Option<&str>,
        sub: Option<&str>,
        field_manager: Option<&str>,
        f: impl FnOnce(&ResourceInfo) -> ApiResult<T>,
        deleted: impl FnOnce(&T) -> Vec<DeletedObject>,
    ) -> ApiResult<T> {
        let client = client_name(&self.name, field_manager);
        let at = self.store.shared.clock.now();
        let result = (|| {
            let info = self.info(r)?;
            let target = FaultTarget { verb, group: &r.group, resource: &r.plural, subresource: sub, client: &client };
            if let Some(action) = self.store.shared.faults.decide(&target) {
                return Err(fault_error(action, &info, name.unwrap_or_default()));
            }
            f(&info)
        })();
        let code = match &result {
            Ok(_) if verb == Verb::Create => 201,
            Ok(_) => 200,
            Err(e) => e.code,
        };
        self.store.shared.log.record(RequestRecord {
            seq: 0,
            verb,
            group: r.group.clone(),
            version: r.version.clone(),
            resource: r.plural.clone(),
            subresource: sub.map(str::to_string),
            namespace: ns.map(str::to_string),
            name: name.map(str::to_string),
            client,
            user_agent: self.name.clone(),
            user: self.name.clone(),
            field_manager: field_manager.map(str::to_string),
            code,
            at,
            in_process: true,
            deleted: result.as_ref().map(deleted).unwrap_or_default(),
        });
        result
    }

    pub fn get(&self, r: &ResourceRef, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        self.call(Verb::Get, r, ns, Some(name), None, None, |i| self.store.get(i, ns, name))
    }

    pub fn list(&self, r: &ResourceRef, ns: Option<&str>, opts: &ListOptions) -> ApiResult<Value> {
        self.call(Verb::List, r, ns, None, None, None, |i| self.store.list(i, ns, opts))
    }

    pub fn create(&self, r: &ResourceRef, ns: Option<&str>, obj: Value) -> ApiResult<Value> {
        let opts = self.write_options();
        self.call(Verb::Create, r, ns, None, None, Some(&self.name), |i| self.store.create(i, ns, obj, &opts))
            .map(|w| w.object)
    }

    /// PUT of the whole object (its `metadata.resourceVersion`, if set, is a precondition).
    pub fn update(&self, r: &ResourceRef, ns: Option<&str>, obj: Value) -> ApiResult<Value> {
        let name = crate::meta::name(&obj).to_string();
        let opts = self.write_options();
        self.call(Verb::Update, r, ns, Some(&name), None, Some(&self.name), |i| {
            self.store.replace(i, ns, &name, None, obj, &opts)
        })
        .map(|w| w.object)
    }

    /// PUT of the status subresource.
    pub fn update_status(&self, r: &ResourceRef, ns: Option<&str>, obj: Value) -> ApiResult<Value> {
        let name = crate::meta::name(&obj).to_string();
        let opts = self.write_options();
        self.call(Verb::Update, r, ns, Some(&name), Some("status"), Some(&self.name), |i| {
            self.store.replace(i, ns, &name, Some(Subresource::Status), obj, &opts)
        })
        .map(|w| w.object)
    }

    /// Any patch kind on the object or a subresource.
    pub fn patch(
        &self,
        r: &ResourceRef,
        ns: Option<&str>,
        name: &str,
        sub: Option<Subresource>,
        kind: PatchType,
        patch: &Value,
    ) -> ApiResult<Value> {
        let opts = self.write_options();
        let sub_name = sub.map(|s| match s {
            Subresource::Status => "status",
            Subresource::Scale => "scale",
            Subresource::Finalize => "finalize",
        });
        self.call(Verb::Patch, r, ns, Some(name), sub_name, Some(&self.name), |i| {
            self.store.patch(i, ns, name, sub, kind, patch, &opts)
        })
        .map(|w: Written| w.object)
    }

    /// A JSON merge patch of the status subresource.
    pub fn patch_status(&self, r: &ResourceRef, ns: Option<&str>, name: &str, patch: &Value) -> ApiResult<Value> {
        self.patch(r, ns, name, Some(Subresource::Status), PatchType::Merge, patch)
    }

    pub fn delete(&self, r: &ResourceRef, ns: Option<&str>, name: &str, opts: &DeleteOptions) -> ApiResult<Deleted> {
        self.call_deleting(
            Verb::Delete,
            r,
            ns,
            Some(name),
            None,
            None,
            |i| self.store.delete(i, ns, name, opts),
            |d: &Deleted| vec![DeletedObject::of(&d.object)],
        )
    }

    /// `pods/binding`, as the scheduler assigns a pod to a node.
    pub fn bind(&self, ns: &str, pod: &str, node: &str) -> ApiResult<()> {
        let binding = serde_json::json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}
        });
        let r = ResourceRef::new("", "v1", "pods");
        self.call(Verb::Create, &r, Some(ns), Some(pod), Some("binding"), None, |_| self.store.bind(ns, pod, &binding))
    }

    /// `pods/eviction` with a policy/v1 Eviction carrying `delete_options` (a
    /// `DeleteOptions` object, or null).
    pub fn evict(&self, ns: &str, pod: &str, delete_options: Value) -> ApiResult<Value> {
        let mut eviction = serde_json::json!({
            "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns},
        });
        if !delete_options.is_null() {
            eviction["deleteOptions"] = delete_options;
        }
        let r = ResourceRef::new("", "v1", "pods");
        let opts = self.write_options();
        self.call(Verb::Create, &r, Some(ns), Some(pod), Some("eviction"), None, |_| {
            self.store.evict(ns, pod, &eviction, &opts).map(|e| e.status)
        })
    }

    pub fn watch(&self, r: &ResourceRef, ns: Option<&str>, opts: &WatchOptions) -> ApiResult<Watcher> {
        let info = self.info(r)?;
        self.call(Verb::Watch, r, ns, None, None, None, |_| self.store.watch(info.clone(), ns, opts))
    }

    fn write_options(&self) -> WriteOptions {
        WriteOptions { field_manager: Some(self.name.clone()), ..WriteOptions::default() }
    }

    pub fn get_typed<K: k8s_openapi::Resource + DeserializeOwned>(&self, ns: Option<&str>, name: &str) -> ApiResult<K> {
        decode(self.get(&ResourceRef::of::<K>(), ns, name)?)
    }

    /// Items of a typed list.
    pub fn list_typed<K: k8s_openapi::Resource + DeserializeOwned>(
        &self,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<Vec<K>> {
        let list = self.list(&ResourceRef::of::<K>(), ns, opts)?;
        list["items"].as_array().cloned().unwrap_or_default().into_iter().map(decode).collect()
    }

    pub fn create_typed<K: k8s_openapi::Resource + Serialize + DeserializeOwned>(
        &self,
        ns: Option<&str>,
        obj: &K,
    ) -> ApiResult<K> {
        decode(self.create(&ResourceRef::of::<K>(), ns, encode(obj)?)?)
    }

    pub fn update_typed<K: k8s_openapi::Resource + Serialize + DeserializeOwned>(
        &self,
        ns: Option<&str>,
        obj: &K,
    ) -> ApiResult<K> {
        decode(self.update(&ResourceRef::of::<K>(), ns, encode(obj)?)?)
    }

    pub fn update_status_typed<K: k8s_openapi::Resource + Serialize + DeserializeOwned>(
        &self,
        ns: Option<&str>,
        obj: &K,
    ) -> ApiResult<K> {
        decode(self.update_status(&ResourceRef::of::<K>(), ns, encode(obj)?)?)
    }
}

fn decode<K: DeserializeOwned>(v: Value) -> ApiResult<K> {
    serde_json::from_value(v).map_err(|e| ApiError::internal(format!("decoding: {e}")))
}

fn encode<K: Serialize>(obj: &K) -> ApiResult<Value> {
    serde_json::to_value(obj).map_err(|e| ApiError::bad_request(e.to_string()))
}
