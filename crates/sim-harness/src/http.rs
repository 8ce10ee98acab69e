//! A small HTTP client over loopback, for the proxy's forwarding and for talking to
//! pd-sim's own endpoints.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Largest body the harness buffers (PD answers are small).
pub const BODY_LIMIT: usize = 64 << 20;

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Body>,
}

impl Default for HttpClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector),
        }
    }
}

impl HttpClient {
    pub async fn send(&self, request: Request<Body>) -> Result<Response<hyper::body::Incoming>, String> {
        self.inner.request(request).await.map_err(|e| e.to_string())
    }

    /// A whole request and answer, buffered.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let mut request =
            Request::builder().method(method).uri(url).body(Body::from(body)).map_err(|e| e.to_string())?;
        *request.headers_mut() = headers;
        let response = self.send(request).await?;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), BODY_LIMIT).await.map_err(|e| e.to_string())?;
        Ok((parts.status, parts.headers, bytes))
    }
}
