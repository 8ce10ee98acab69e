//! Field paths rendered the way `k8s.io/apimachinery`'s `field.Path` renders them:
//! children joined by `.`, list indices and map keys in brackets (`spec.items[0]`,
//! `spec.labels[app]`), and the empty (nil) path shown as `<nil>`.

use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(String);

impl FieldPath {
    pub(crate) fn root() -> Self {
        Self(String::new())
    }

    pub(crate) fn new(first: &str) -> Self {
        Self(first.to_owned())
    }

    pub(crate) fn child(&self, name: &str) -> Self {
        if self.0.is_empty() { Self(name.to_owned()) } else { Self(format!("{}.{name}", self.0)) }
    }

    pub(crate) fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// Appends an already normalised relative path (the `fieldPath` of a CEL rule).
    pub(crate) fn join(&self, rel: &FieldPath) -> Self {
        if rel.0.is_empty() {
            self.clone()
        } else if self.0.is_empty() || rel.0.starts_with('[') {
            Self(format!("{}{}", self.0, rel.0))
        } else {
            Self(format!("{}.{}", self.0, rel.0))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn render(&self) -> String {
        if self.0.is_empty() { "<nil>".to_owned() } else { self.0.clone() }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}
