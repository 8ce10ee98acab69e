//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`), as kubectl's typed
//! commands (`create namespace|configmap|secret|service|pdb`, `debug`) and client-go's
//! typed clients send them.
//!
//! A body is the 4-byte magic `k8s\0` and a `runtime.Unknown` envelope whose `typeMeta`
//! names the kind and whose `raw` holds the object's message. The message is decoded with
//! the `k8s-pb` bindings and converted to exactly the JSON a Go client would have sent for
//! the same object (Go's `encoding/json` rules: `omitempty` scalars dropped when zero,
//! pointers kept, zero times omitted, bytes in base64, quantities and int-or-strings as in
//! JSON), so validation, defaulting and storage see what they always see.
//!
//! Only the built-in kinds listed in [`decode`] are understood; any other kind, and every
//! custom resource (checked by the caller), is answered 415 as kube-apiserver does for
//! custom resources. A field that has no JSON mapping here fails the request with 400
//! naming it rather than being dropped. Responses are always JSON: clients that send
//! protobuf also accept JSON and decode by the response's `Content-Type`.
//!
//! Not covered: protobuf fields newer than the bundled 1.34 protos are skipped by the
//! decoder (prost ignores unknown fields), `contentEncoding` other than none, and
//! protobuf watch streams and responses.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1::{FieldsV1, MicroTime, Time};
use k8s_pb::apimachinery::pkg::runtime::{RawExtension, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// The media type, without parameters.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The magic number in front of every Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

/// Whether a `Content-Type` header value is Kubernetes protobuf.
pub(crate) fn is_protobuf(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(MEDIA_TYPE))
}

/// Decodes a protobuf request body into the JSON object it stands for (with `apiVersion`
/// and `kind` from the envelope).
pub(crate) fn decode(body: &[u8]) -> ApiResult<Value> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("the protobuf request body does not start with the k8s\\0 magic number")
    })?;
    let unknown = Unknown::decode(envelope)
        .map_err(|e| ApiError::bad_request(format!("error decoding the protobuf envelope: {e}")))?;
    let Unknown { type_meta, raw, content_encoding, content_type } = unknown;
    if let Some(enc) = content_encoding.filter(|e| !e.is_empty()) {
        return Err(ApiError::bad_request(format!("unsupported protobuf content encoding {enc:?}")));
    }
    if let Some(ct) = content_type.filter(|c| !c.is_empty() && !is_protobuf(c)) {
        return Err(ApiError::unsupported_media_type(format!("unsupported embedded content type {ct:?}")));
    }
    let type_meta = type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if kind.is_empty() {
        return Err(ApiError::bad_request("the protobuf envelope names no kind (typeMeta.kind is empty)"));
    }
    let raw = raw.unwrap_or_default();
    let mut obj = messages::decode_kind(&api_version, &kind, &raw)?.ok_or_else(|| {
        ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format: protobuf is not supported for {api_version}, Kind={kind} - accepted media types include: application/json, application/yaml"
        ))
    })?;
    if let Value::Object(m) = &mut obj {
        m.insert("apiVersion".into(), json!(api_version));
        m.insert("kind".into(), json!(kind));
    }
    Ok(obj)
}

/// A protobuf `SelfSubjectAccessReview` (kubectl auth can-i sends one) as the JSON of its
/// spec: `{"spec": {"resourceAttributes": {..}}}` or `{"spec": {"nonResourceAttributes": {..}}}`.
pub(crate) fn decode_self_subject_access_review(body: &[u8]) -> ApiResult<Value> {
    use k8s_pb::api::authorization::v1::SelfSubjectAccessReview;
    let review = SelfSubjectAccessReview::decode(envelope_raw(body)?.as_slice())
        .map_err(|e| ApiError::bad_request(format!("error decoding the protobuf body: {e}")))?;
    let spec = review.spec.unwrap_or_default();
    let mut out = json!({});
    if let Some(r) = spec.resource_attributes {
        let mut attrs = Map::new();
        for (k, v) in [
            ("namespace", r.namespace),
            ("verb", r.verb),
            ("group", r.group),
            ("version", r.version),
            ("resource", r.resource),
            ("subresource", r.subresource),
            ("name", r.name),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                attrs.insert(k.into(), json!(v));
            }
        }
        out["resourceAttributes"] = Value::Object(attrs);
    }
    if let Some(n) = spec.non_resource_attributes {
        out["nonResourceAttributes"] = json!({"path": n.path.unwrap_or_default(), "verb": n.verb.unwrap_or_default()});
    }
    Ok(json!({"spec": out}))
}

/// A protobuf `SelfSubjectRulesReview` (kubectl auth can-i --list) as `{"spec": {"namespace": ..}}`.
pub(crate) fn decode_self_subject_rules_review(body: &[u8]) -> ApiResult<Value> {
    use k8s_pb::api::authorization::v1::SelfSubjectRulesReview;
    let review = SelfSubjectRulesReview::decode(envelope_raw(body)?.as_slice())
        .map_err(|e| ApiError::bad_request(format!("error decoding the protobuf body: {e}")))?;
    let namespace = review.spec.and_then(|s| s.namespace).unwrap_or_default();
    Ok(json!({"spec": {"namespace": namespace}}))
}

/// The message bytes inside a protobuf body's envelope.
fn envelope_raw(body: &[u8]) -> ApiResult<Vec<u8>> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| ApiError::bad_request("missing the k8s\\0 magic number"))?;
    let unknown = Unknown::decode(envelope)
        .map_err(|e| ApiError::bad_request(format!("error decoding the protobuf envelope: {e}")))?;
    Ok(unknown.raw.unwrap_or_default())
}

/// Decodes `raw` as `T` and converts it.
fn convert<T: Message + Default + ToJson>(raw: &[u8]) -> ApiResult<Value> {
    let msg = T::decode(raw).map_err(|e| ApiError::bad_request(format!("error decoding the protobuf body: {e}")))?;
    msg.to_json("")
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// A protobuf message or scalar as its Kubernetes JSON.
trait ToJson: Sized {
    /// `path` names the value in errors (`spec.containers[0].image`).
    fn to_json(self, path: &str) -> ApiResult<Value>;
    /// Go's zero value, which `omitempty` drops.
    fn is_zero(&self) -> bool {
        false
    }
}

impl ToJson for String {
    fn to_json(self, _: &str) -> ApiResult<Value> {
        Ok(Value::String(self))
    }
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

impl ToJson for bool {
    fn to_json(self, _: &str) -> ApiResult<Value> {
        Ok(Value::Bool(self))
    }
    fn is_zero(&self) -> bool {
        !*self
    }
}

impl ToJson for i32 {
    fn to_json(self, _: &str) -> ApiResult<Value> {
        Ok(json!(self))
    }
    fn is_zero(&self) -> bool {
        *self == 0
    }
}

impl ToJson for i64 {
    fn to_json(self, _: &str) -> ApiResult<Value> {
        Ok(json!(self))
    }
    fn is_zero(&self) -> bool {
        *self == 0
    }
}

/// `bytes` fields: base64, as Go's `encoding/json` writes `[]byte`.
impl ToJson for Vec<u8> {
    fn to_json(self, _: &str) -> ApiResult<Value> {
        Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(self)))
    }
    fn is_zero(&self) -> bool {
        self.is_empty()
    }
}

fn timestamp(path: &str, seconds: i64, nanos: i32) -> ApiResult<jiff::Timestamp> {
    jiff::Timestamp::new(seconds, nanos.clamp(0, 999_999_999))
        .map_err(|e| ApiError::bad_request(format!("{path}: time out of range: {e}")))
}

/// `metav1.Time`: RFC 3339 in whole seconds, UTC; the zero time (an empty message) is null.
impl ToJson for Time {
    fn to_json(self, path: &str) -> ApiResult<Value> {
        if self.seconds.is_none() && self.nanos.is_none() {
            return Ok(Value::Null);
        }
        // Like kube-apiserver, which drops the nanoseconds JSON could not carry.
        let t = timestamp(path, self.seconds.unwrap_or_default(), 0)?;
        Ok(Value::String(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
    }
}

/// `metav1.MicroTime`: RFC 3339 with six fractional digits, UTC.
impl ToJson for MicroTime {
    fn to_json(self, path: &str) -> ApiResult<Value> {
        if self.seconds.is_none() && self.nanos.is_none() {
            return Ok(Value::Null);
        }
        let nanos = self.nanos.unwrap_or_default();
        let t = timestamp(path, self.seconds.unwrap_or_default(), nanos)?;
        let micros = t.subsec_nanosecond() / 1000;
        Ok(Value::String(format!("{}.{micros:06}Z", t.strftime("%Y-%m-%dT%H:%M:%S"))))
    }
}

impl ToJson for Quantity {
    fn to_json(self, _: &str) -> ApiResult<Value> {
        Ok(Value::String(self.string.unwrap_or_default()))
    }
}

/// `intstr.IntOrString`: type 0 is the int, type 1 the string.
impl ToJson for IntOrString {
    fn to_json(self, path: &str) -> ApiResult<Value> {
        match self.r#type.unwrap_or_default() {
            0 => Ok(json!(self.int_val.unwrap_or_default())),
            1 => Ok(Value::String(self.str_val.unwrap_or_default())),
            t => Err(ApiError::bad_request(format!("{path}: unknown IntOrString type {t}"))),
        }
    }
}

fn embedded_json(path: &str, raw: Option<Vec<u8>>) -> ApiResult<Value> {
    match raw {
        None => Ok(Value::Null),
        Some(raw) if raw.is_empty() => Ok(Value::Null),
        Some(raw) => serde_json::from_slice(&raw).map_err(|e| {
            ApiError::bad_request(format!(
                "{path}: the embedded object is not JSON ({e}); kube-sim accepts only JSON here"
            ))
        }),
    }
}

/// `managedFields[].fieldsV1`: its raw bytes are the JSON field set.
impl ToJson for FieldsV1 {
    fn to_json(self, path: &str) -> ApiResult<Value> {
        embedded_json(path, self.raw)
    }
}

/// `runtime.RawExtension` (ControllerRevision `data`): the raw JSON object.
impl ToJson for RawExtension {
    fn to_json(self, path: &str) -> ApiResult<Value> {
        embedded_json(path, self.raw)
    }
}

/// How a field is written, after Go's `encoding/json`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A non-pointer scalar tagged `omitempty`: dropped when zero. (gogo-protobuf always
    /// writes non-pointer scalars, so "" and 0 arrive for every unset one.)
    OmitEmpty,
    /// Kept whenever present: pointers, messages, required scalars.
    Keep,
}

/// What a message field holds: an optional value, a repeated field or a map.
trait FieldValue {
    fn field_json(self, path: &str, mode: Mode) -> ApiResult<Option<Value>>;
}

impl<T: ToJson> FieldValue for Option<T> {
    fn field_json(self, path: &str, mode: Mode) -> ApiResult<Option<Value>> {
        match self {
            None => Ok(None),
            Some(v) if mode == Mode::OmitEmpty && v.is_zero() => Ok(None),
            Some(v) => Ok(Some(v.to_json(path)?).filter(|v| !v.is_null())),
        }
    }
}

impl<T: ToJson> FieldValue for Vec<T> {
    fn field_json(self, path: &str, _: Mode) -> ApiResult<Option<Value>> {
        if self.is_empty() {
            return Ok(None);
        }
        let items = self.into_iter().enumerate().map(|(i, v)| v.to_json(&format!("{path}[{i}]")));
        Ok(Some(Value::Array(items.collect::<ApiResult<_>>()?)))
    }
}

impl<T: ToJson> FieldValue for BTreeMap<String, T> {
    fn field_json(self, path: &str, _: Mode) -> ApiResult<Option<Value>> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut out = Map::new();
        for (k, v) in self {
            let value = v.to_json(&format!("{path}[{k}]"))?;
            out.insert(k, value);
        }
        Ok(Some(Value::Object(out)))
    }
}

fn put(out: &mut Map<String, Value>, path: &str, key: &str, mode: Mode, v: impl FieldValue) -> ApiResult<()> {
    if let Some(v) = v.field_json(&child(path, key), mode)? {
        out.insert(key.to_string(), v);
    }
    Ok(())
}

/// A Go struct embedded with `json:",inline"`: its fields join the parent's.
fn inline<T: ToJson>(out: &mut Map<String, Value>, path: &str, v: Option<T>) -> ApiResult<()> {
    if let Some(v) = v
        && let Value::Object(fields) = v.to_json(path)?
    {
        out.extend(fields);
    }
    Ok(())
}

/// Whether a field is present at all, for [`reject`].
trait Presence {
    fn is_set(&self) -> bool;
}

impl<T> Presence for Option<T> {
    fn is_set(&self) -> bool {
        self.is_some()
    }
}

impl<T> Presence for Vec<T> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}

impl<T> Presence for BTreeMap<String, T> {
    fn is_set(&self) -> bool {
        !self.is_empty()
    }
}

/// A field this server has no JSON mapping for: refused when present.
fn reject(path: &str, field: &str, v: &impl Presence) -> ApiResult<()> {
    if v.is_set() {
        return Err(ApiError::bad_request(format!(
            "{}: field not supported in protobuf request bodies by this server; send application/json",
            child(path, field)
        )));
    }
    Ok(())
}

/// `ToJson` for k8s-pb message structs: `Type { rust_field: ["jsonName", k|o], other:
/// [inline], unmapped: [reject] }`. The struct is destructured without `..`, so a field
/// the bindings add and this table lacks fails to compile rather than being dropped.
macro_rules! to_json_impls {
    ($($($ty:ident)::+ { $($field:ident: [$($spec:tt)*]),* $(,)? })*) => {
        $(
            impl ToJson for $($ty)::+ {
                fn to_json(self, path: &str) -> ApiResult<Value> {
                    let $($ty)::+ { $($field),* } = self;
                    let mut out = Map::new();
                    $( to_json_impls!(@field out, path, $field, $($spec)*); )*
                    let _ = path;
                    Ok(Value::Object(out))
                }
            }
        )*
    };
    (@field $out:ident, $path:ident, $v:ident, $json:literal, o) => {
        put(&mut $out, $path, $json, Mode::OmitEmpty, $v)?
    };
    (@field $out:ident, $path:ident, $v:ident, $json:literal, k) => {
        put(&mut $out, $path, $json, Mode::Keep, $v)?
    };
    (@field $out:ident, $path:ident, $v:ident, inline) => {
        inline(&mut $out, $path, $v)?
    };
    (@field $out:ident, $path:ident, $v:ident, reject) => {
        reject($path, stringify!($v), &$v)?
    };
}
mod messages;

#[cfg(test)]
mod tests;
