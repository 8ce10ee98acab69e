//! Errors of the controllers crate.

use tikv_operator_pd::PdError;

/// What can go wrong outside a task's expectations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("PD: {0}")]
    Pd(#[from] PdError),
    #[error("encoding {what}: {source}")]
    Encode {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Render(#[from] crate::common::render::RenderError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("serving metrics: {0}")]
    Serve(#[from] std::io::Error),
    #[error("a reconcile pass failed: {0}")]
    Pass(#[from] tikv_operator_task::TaskError),
    #[error("stopped leading: {0}")]
    LeadershipLost(#[from] crate::leader::LeadershipLost),
}

/// The status code of an API error, if the error is one.
pub fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

pub fn is_not_found(error: &kube::Error) -> bool {
    api_code(error) == Some(404)
}

/// 409: a resourceVersion precondition failed, or the object already exists.
pub fn is_conflict(error: &kube::Error) -> bool {
    api_code(error) == Some(409)
}

/// 403: refused by admission (or RBAC).
pub fn is_forbidden(error: &kube::Error) -> bool {
    api_code(error) == Some(403)
}

pub fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.is_already_exists())
}
