//! How PD writes answers: JSON (indented, trailing newline), JSON strings for most
//! messages and errors, pingcap/errcode objects for input errors, plain text from the
//! middleware.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::format::go_json;
use crate::model::StoreError;

pub const JSON_CONTENT_TYPE: &str = "application/json; charset=UTF-8";
pub const NOT_BOOTSTRAPPED: &str =
    "[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first";
pub const NO_LEADER: &str = "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader";
pub const PAGE_NOT_FOUND: &str = "404 page not found";

#[derive(Debug)]
pub enum ApiError {
    /// A JSON string body.
    Json(StatusCode, String),
    /// A plain-text body (middleware errors, unknown routes).
    Text(StatusCode, String),
    /// pingcap/errcode `{"code":"input",...}`, 400.
    Input(String),
    /// pingcap/errcode `{"code":"internal",...}`, 500.
    Internal(String),
    /// The JSON `null` with this status.
    Null(StatusCode),
}

pub type ApiResult = Result<Response, ApiError>;

impl ApiError {
    pub fn not_bootstrapped() -> ApiError {
        ApiError::Json(StatusCode::INTERNAL_SERVER_ERROR, NOT_BOOTSTRAPPED.to_owned())
    }

    pub fn no_leader() -> ApiError {
        ApiError::Text(StatusCode::SERVICE_UNAVAILABLE, NO_LEADER.to_owned())
    }

    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::Json(StatusCode::BAD_REQUEST, msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> ApiError {
        ApiError::Json(StatusCode::INTERNAL_SERVER_ERROR, msg.into())
    }

    /// PD's store-error mapping (`DELETE /store`, `state=...`).
    pub fn store(err: StoreError) -> ApiError {
        let status = match err {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Removed(_) => StatusCode::GONE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::Json(status, err.to_string())
    }
}

#[derive(Serialize)]
struct ErrCode<'a> {
    code: &'a str,
    msg: &'a str,
    data: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<Vec<String>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Json(status, msg) => json(status, &msg),
            ApiError::Null(status) => json(status, &serde_json::Value::Null),
            ApiError::Text(status, text) => {
                (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
            }
            ApiError::Input(msg) => errcode(StatusCode::BAD_REQUEST, "input", &msg, None),
            ApiError::Internal(msg) => errcode(StatusCode::INTERNAL_SERVER_ERROR, "internal", &msg, Some(vec![])),
        }
    }
}

fn errcode(status: StatusCode, code: &str, msg: &str, stack: Option<Vec<String>>) -> Response {
    let body = ErrCode { code, msg, data: serde_json::json!({}), stack };
    let mut response = json(status, &body);
    if let Ok(value) = HeaderValue::from_str(code) {
        response.headers_mut().insert("TiDB-Error-Code", value);
    }
    response
}

/// A JSON body the way PD renders it.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    (status, [(header::CONTENT_TYPE, JSON_CONTENT_TYPE)], go_json(value)).into_response()
}

pub fn ok<T: Serialize + ?Sized>(value: &T) -> ApiResult {
    Ok(json(StatusCode::OK, value))
}

/// A 200 whose body is a JSON string.
pub fn message(msg: &str) -> ApiResult {
    ok(msg)
}

/// Go's `strconv.ParseUint` error text, for a bad numeric path parameter.
pub fn parse_u64(text: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|e| {
        let why = if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        format!("strconv.ParseUint: parsing {text:?}: {why}")
    })
}

/// `{id}` of `/store/{id}...`: a bad one is a structured input error.
pub fn store_id(text: &str) -> Result<u64, ApiError> {
    parse_u64(text).map_err(ApiError::Input)
}
