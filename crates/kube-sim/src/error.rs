//! API errors, each rendered as the `Status` body kube-apiserver sends.

use std::fmt;

use serde_json::{Value, json};

/// One field error, shaped like apimachinery's `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldErr {
    pub field: String,
    pub kind: FieldErrKind,
    /// The offending value, shown for `Invalid` and `NotSupported` errors.
    pub value: Option<Value>,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrKind {
    Required,
    Invalid,
    Forbidden,
    NotSupported,
    Duplicate,
    TooLong,
    TypeInvalid,
}

impl FieldErrKind {
    /// The `reason` of a `StatusCause`.
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrKind::Required => "FieldValueRequired",
            FieldErrKind::Invalid => "FieldValueInvalid",
            FieldErrKind::Forbidden => "FieldValueForbidden",
            FieldErrKind::NotSupported => "FieldValueNotSupported",
            FieldErrKind::Duplicate => "FieldValueDuplicate",
            FieldErrKind::TooLong => "FieldValueTooLong",
            FieldErrKind::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    fn label(self) -> &'static str {
        match self {
            FieldErrKind::Required => "Required value",
            FieldErrKind::Invalid | FieldErrKind::TypeInvalid => "Invalid value",
            FieldErrKind::Forbidden => "Forbidden",
            FieldErrKind::NotSupported => "Unsupported value",
            FieldErrKind::Duplicate => "Duplicate value",
            FieldErrKind::TooLong => "Too long",
        }
    }
}

impl FieldErr {
    pub fn new(field: impl Into<String>, kind: FieldErrKind, value: Option<Value>, detail: impl Into<String>) -> Self {
        FieldErr { field: field.into(), kind, value, detail: detail.into() }
    }
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrKind::Required, None, detail)
    }
    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrKind::Invalid, Some(value), detail)
    }
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, FieldErrKind::Forbidden, None, detail)
    }

    /// The message without the field path, as in a `StatusCause`.
    pub fn body(&self) -> String {
        let mut s = self.kind.label().to_string();
        if let Some(v) = &self.value
            && matches!(self.kind, FieldErrKind::Invalid | FieldErrKind::TypeInvalid | FieldErrKind::NotSupported)
        {
            s.push_str(": ");
            s.push_str(&go_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Values printed the way Go's `%#v`-ish formatting in apimachinery shows them.
fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// An error answered with a `Status` body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429) and `details.retryAfterSeconds`.
    pub retry_after: Option<u64>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

/// The resource as error messages name it: `pods`, `leases.coordination.k8s.io`.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !group.is_empty() {
        d.insert("group".into(), group.into());
    }
    d.insert("kind".into(), kind.into());
    Value::Object(d)
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError { code, reason: reason.into(), message: message.into(), details: None, retry_after: None }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds `details.causes` (each `{"reason", "message"[, "field"]}`).
    pub fn with_causes(mut self, causes: Vec<Value>) -> Self {
        let d = self.details.get_or_insert_with(|| json!({}));
        d["causes"] = Value::Array(causes);
        self
    }

    /// The JSON `Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = self.details.clone();
        if let Some(secs) = self.retry_after {
            let d = details.get_or_insert_with(|| json!({}));
            d["retryAfterSeconds"] = json!(secs);
        }
        if let Some(d) = details {
            status["details"] = d;
        }
        if self.reason.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.remove("reason");
        }
        status
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", qualified(group, resource)))
            .with_details(details(group, resource, name))
    }

    /// 404 for a URL that names no resource at all.
    pub fn no_route() -> Self {
        Self::new(404, "NotFound", "the server could not find the requested resource").with_details(json!({}))
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", qualified(group, resource)))
            .with_details(details(group, resource, name))
    }

    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", qualified(group, resource)),
        )
        .with_details(details(group, resource, name))
    }

    pub const MODIFIED: &str =
        "the object has been modified; please apply your changes to the latest version and try again";

    /// 422 with one cause per field error; `kind` is the qualified kind (`Pod`, `Widget.example.com`).
    pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldErr]) -> Self {
        let qkind = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
        let list = if errs.len() == 1 {
            errs[0].to_string()
        } else {
            format!("[{}]", errs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        };
        let causes: Vec<Value> =
            errs.iter().map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field})).collect();
        let mut d = details(group, kind, name);
        d["causes"] = Value::Array(causes);
        Self::new(422, "Invalid", format!("{qkind} \"{name}\" is invalid: {list}")).with_details(d)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self::new(403, "Forbidden", format!("{} \"{name}\" is forbidden: {why}", qualified(group, resource)))
            .with_details(details(group, resource, name))
    }

    /// apimachinery's `NewForbidden`: the name is left out when the request names none,
    /// and the resource too for a non-resource path.
    pub fn forbidden_for(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = match (resource, name) {
            ("", _) => format!("forbidden: {why}"),
            (_, "") => format!("{} is forbidden: {why}", qualified(group, resource)),
            _ => format!("{} \"{name}\" is forbidden: {why}", qualified(group, resource)),
        };
        let d = if resource.is_empty() { json!({}) } else { details(group, resource, name) };
        Self::new(403, "Forbidden", message).with_details(d)
    }

    /// 401, as kube-apiserver answers a request whose credentials it cannot authenticate.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message)
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(500, "InternalError", format!("Internal error occurred: {message}"))
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        );
        e.retry_after = Some(retry_after);
        e
    }

    pub fn timeout(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(504, "Timeout", message);
        e.retry_after = Some(retry_after);
        e
    }

    /// 422 with a bare message, as kube-apiserver answers a JSON patch that does not apply.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let e = ApiError::not_found("coordination.k8s.io", "leases", "x");
        assert_eq!(e.message, "leases.coordination.k8s.io \"x\" not found");
        let s = e.status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["group"], "coordination.k8s.io");
    }

    #[test]
    fn invalid_lists_causes_like_kube_apiserver() {
        let errs = [FieldErr::invalid("metadata.name", json!("A"), "bad"), FieldErr::forbidden("spec", "nope")];
        let e = ApiError::invalid("", "Pod", "A", &errs);
        assert_eq!(
            e.message,
            "Pod \"A\" is invalid: [metadata.name: Invalid value: \"A\": bad, spec: Forbidden: nope]"
        );
        assert_eq!(e.status()["details"]["causes"][1]["reason"], "FieldValueForbidden");
        assert_eq!(e.status()["details"]["causes"][0]["message"], "Invalid value: \"A\": bad");
    }
}
