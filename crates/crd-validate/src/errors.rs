//! The error types: [`FieldError`]/[`FieldErrors`] for refused objects (shaped like
//! `k8s.io/apimachinery`'s `field.Error`/`field.ErrorList`) and [`SchemaError`] for refused
//! CRDs.

use std::fmt;

use serde_json::Value;

use crate::gofmt;
use crate::path::FieldPath;

/// The kind of a [`FieldError`], one to one with kube-apiserver's `field.ErrorType`
/// (the `type` of a `StatusCause`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldErrorKind {
    /// `FieldValueNotFound`: a value that was looked up does not exist.
    NotFound,
    /// `FieldValueRequired`: a required field is missing.
    Required,
    /// `FieldValueDuplicate`: an item of a `set`/`map` list is repeated.
    Duplicate,
    /// `FieldValueInvalid`: the value breaks a constraint (bounds, pattern, a CEL rule...).
    Invalid,
    /// `FieldValueNotSupported`: the value is not one of the `enum` values.
    NotSupported,
    /// `FieldValueForbidden`: the field may not be set (or a CEL rule with that reason).
    Forbidden,
    /// `FieldValueTooLong`: a string is longer than `maxLength`.
    TooLong,
    /// `FieldValueTooMany`: more items (or properties) than `maxItems`/`maxProperties`.
    TooMany,
    /// `InternalError`.
    Internal,
    /// `FieldValueTypeInvalid`: the value has the wrong type (or `format`).
    TypeInvalid,
}

impl FieldErrorKind {
    /// The machine-readable reason, as found in a `StatusCause`'s `type`.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human-readable text kube-apiserver prints for the kind.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refused field, as kube-apiserver reports it.
///
/// `Display` gives the same text as kube-apiserver's `field.Error`, e.g.
/// `spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// Path of the field: `spec.replicas`, `spec.volumes[0].storage`, `spec.labels[app]`.
    /// Empty for errors kube-apiserver reports without a path (root-level CEL rules, the
    /// "some validation rules were not checked" notice, ...), which it prints as `<nil>`.
    pub path: String,
    /// What kind of error this is.
    pub kind: FieldErrorKind,
    /// The detail message (may be empty, e.g. for a plain `Required value`).
    pub message: String,
    /// The bad value kube-apiserver echoes after `Invalid value:` (for CEL rules this is the
    /// schema type of the node, e.g. `"object"`). `None` where kube-apiserver omits it.
    pub value: Option<Value>,
}

impl FieldError {
    fn new(path: &FieldPath, kind: FieldErrorKind, value: Option<Value>, message: impl Into<String>) -> Self {
        Self { path: path.as_str().to_owned(), kind, message: message.into(), value }
    }

    pub(crate) fn required(path: &FieldPath, message: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Required, None, message)
    }

    pub(crate) fn forbidden(path: &FieldPath, message: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Forbidden, None, message)
    }

    pub(crate) fn invalid(path: &FieldPath, value: Value, message: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::Invalid, Some(value), message)
    }

    pub(crate) fn type_invalid(path: &FieldPath, value: Value, message: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::TypeInvalid, Some(value), message)
    }

    pub(crate) fn duplicate(path: &FieldPath, value: Value) -> Self {
        Self::new(path, FieldErrorKind::Duplicate, Some(value), "")
    }

    pub(crate) fn not_found(path: &FieldPath, value: Value, message: impl Into<String>) -> Self {
        Self::new(path, FieldErrorKind::NotFound, Some(value), message)
    }

    pub(crate) fn not_supported(path: &FieldPath, value: Value, supported: &[String]) -> Self {
        let message = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| gofmt::quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(path, FieldErrorKind::NotSupported, Some(value), message)
    }

    pub(crate) fn too_long(path: &FieldPath, max: i64) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(path, FieldErrorKind::TooLong, None, format!("may not be more than {max} {unit}"))
    }

    pub(crate) fn too_many(path: &FieldPath, actual: i64, max: i64) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(path, FieldErrorKind::TooMany, Some(Value::from(actual)), format!("must have at most {max} {unit}"))
    }

    /// The text after `path: `, like `field.Error.ErrorBody()`.
    #[must_use]
    pub fn body(&self) -> String {
        let mut s = match (self.kind, &self.value) {
            (
                FieldErrorKind::Required
                | FieldErrorKind::Forbidden
                | FieldErrorKind::TooLong
                | FieldErrorKind::Internal,
                _,
            )
            | (_, None) => self.kind.as_str().to_owned(),
            (kind, Some(value)) => format!("{kind}: {}", gofmt::bad_value(value)),
        };
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "<nil>" } else { &self.path };
        write!(f, "{path}: {}", self.body())
    }
}

impl std::error::Error for FieldError {}

/// Every error found in one object, in the order kube-apiserver would list them.
///
/// `Display` joins them like kube-apiserver's aggregate: one error alone, several as
/// `[a, b]`, identical messages once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// The errors in order.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// How many errors there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none (never the case for an `Err` from [`crate::CrdValidator::validate`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether some error is reported at exactly this path (`"spec.replicas"`; `""` for
    /// errors without a path).
    #[must_use]
    pub fn contains_path(&self, path: &str) -> bool {
        self.0.iter().any(|e| e.path == path)
    }

    /// The errors reported at exactly this path.
    #[must_use]
    pub fn at(&self, path: &str) -> Vec<&FieldError> {
        self.0.iter().filter(|e| e.path == path).collect()
    }

    /// Whether some error of this kind is reported at this path.
    #[must_use]
    pub fn contains(&self, path: &str, kind: FieldErrorKind) -> bool {
        self.0.iter().any(|e| e.path == path && e.kind == kind)
    }

    /// The paths, in order.
    #[must_use]
    pub fn paths(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.path.as_str()).collect()
    }

    /// The detail messages ([`FieldError::message`]), in order.
    #[must_use]
    pub fn messages(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.message.as_str()).collect()
    }

    /// Each error's full text (`path: body`), in order.
    #[must_use]
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut seen: Vec<String> = Vec::new();
        for e in &self.0 {
            let s = e.to_string();
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        match seen.as_slice() {
            [] => Ok(()),
            [one] => f.write_str(one),
            many => write!(f, "[{}]", many.join(", ")),
        }
    }
}

impl std::error::Error for FieldErrors {}

impl From<Vec<FieldError>> for FieldErrors {
    fn from(v: Vec<FieldError>) -> Self {
        Self(v)
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a FieldErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Why a CRD was refused: what kube-apiserver would say when the CRD is applied.
///
/// Paths are CRD paths as kube-apiserver prints them, e.g.
/// `spec.versions[0].schema.openAPIV3Schema.properties[spec].type`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// The schema breaks a rule for CRD schemas: not structural (a node without `type`,
    /// `$ref`, `additionalProperties` beside `properties`, metadata restricted beyond
    /// `name`/`generateName`, ...), a forbidden keyword (`uniqueItems`, a default inside
    /// `metadata`), an inconsistent list/map extension, an invalid `pattern` or `default`...
    #[error("{path}: {kind}: {message}")]
    NonStructural {
        /// Where in the CRD.
        path: String,
        /// How kube-apiserver classifies it (`Required value`, `Forbidden`, ...).
        kind: FieldErrorKind,
        /// What is wrong.
        message: String,
    },
    /// An `x-kubernetes-validations` rule (or its `messageExpression`, `fieldPath`, ...)
    /// does not compile or may not be used where it is.
    #[error("{path}: rule {rule:?}: {message}")]
    CelCompile {
        /// Where in the CRD, e.g. `...properties[spec].x-kubernetes-validations[0].rule`.
        path: String,
        /// The rule's expression.
        rule: String,
        /// The compiler's complaint.
        message: String,
    },
    /// Several problems; every one of them is listed (none of them is `Multiple`).
    #[error("{}", display_list(.0))]
    Multiple(Vec<SchemaError>),
}

fn display_list(errors: &[SchemaError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

impl SchemaError {
    /// Every single problem (flattening [`SchemaError::Multiple`]).
    #[must_use]
    pub fn problems(&self) -> Vec<&SchemaError> {
        match self {
            Self::Multiple(all) => all.iter().flat_map(SchemaError::problems).collect(),
            single => vec![single],
        }
    }

    /// The CRD path of a single problem (`None` for [`SchemaError::Multiple`]).
    #[must_use]
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::NonStructural { path, .. } | Self::CelCompile { path, .. } => Some(path),
            Self::Multiple(_) => None,
        }
    }

    pub(crate) fn from_list(mut list: Vec<SchemaError>) -> Option<Self> {
        match list.len() {
            0 => None,
            1 => list.pop(),
            _ => Some(Self::Multiple(list)),
        }
    }
}
