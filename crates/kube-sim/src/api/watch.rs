//! Watch over HTTP: a chunked stream of JSON watch events, one per line, with bookmarks,
//! `timeoutSeconds`, Table rendering for kubectl, and fault-driven drops.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Req, table};
use crate::error::ApiResult;
use crate::store::{WatchEvent, wire_line};

/// Without `timeoutSeconds`, kube-apiserver closes a watch after a random 30 to 60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

pub(super) async fn serve(req: &Req<'_>) -> ApiResult<Response> {
    let store = req.app.store.clone();
    let info = req.target.info.clone();
    let ns = req.target.ns.clone();
    let mut watcher = store.watch(info.clone(), ns.as_deref(), &req.watch_options())?;
    let timeout =
        req.q("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()).map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = req.q("allowWatchBookmarks") == Some("true");
    let as_table = req.wants_table();
    let include = req.include_object();
    let interval = req.app.bookmark_interval;
    let mut shutdown = req.app.shutdown.clone();
    let mut dropped = store.drop_signal();
    dropped.borrow_and_update();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        let mut first = true;
        loop {
            let event = tokio::select! {
                ev = watcher.next() => match ev { Some(ev) => ev, None => break },
                _ = ticker.tick(), if bookmarks => match watcher.bookmark() { Some(b) => b, None => continue },
                _ = tokio::time::sleep_until(deadline) => break,
                _ = dropped.changed() => break,
                _ = shutdown.wait_for(|s| *s) => break,
                _ = tx.closed() => break,
            };
            let is_error = matches!(event, WatchEvent::Error(_));
            let mut bytes = if as_table
                && matches!(event, WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_))
            {
                let obj = event.object();
                let rv = obj["metadata"]["resourceVersion"].as_str().unwrap_or_default();
                let object =
                    table::table(&info, std::slice::from_ref(obj), rv, None, include, first, store.clock().wall());
                first = false;
                wire_line(event.type_name(), &object)
            } else {
                event.to_json()
            };
            bytes.push(b'\n');
            if tx.send(Bytes::from(bytes)).await.is_err() || is_error {
                break;
            }
        }
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx)) });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        Body::from_stream(stream),
    )
        .into_response())
}
