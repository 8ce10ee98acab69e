//! A listener whose connections all die with it, like a process that exits: stopping a
//! PD member or a TiKV status server must also cut pooled keep-alive connections.

use std::net::SocketAddr;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::tls::{Presented, TlsSlot, serial_hex};

/// A running server; dropping it closes the listener and every open connection soon
/// after (the serving task is aborted); [`close`](Served::close) returns once they are.
#[derive(Debug)]
pub struct Served {
    addr: SocketAddr,
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
}

impl Served {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listener and every open connection, and returns once the listening
    /// socket is closed, so the address can be bound again at once (a process that
    /// exited has released its port).
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take()
            && stop.send(()).is_ok()
        {
            // The task ends after aborting and awaiting every connection, and drops
            // the listener on its way out.
            let _ = (&mut self.task).await;
        } else {
            // An aborted task's handle resolves only after its future (which owns the
            // listener) has been dropped.
            self.task.abort();
            let _ = (&mut self.task).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(addr: SocketAddr, router: Router, tls: TlsSlot) -> std::io::Result<Served> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let router = router.clone();
                    // The material of this moment: a reload reaches the next handshake.
                    let acceptor = tls.current();
                    let slot = tls.clone();
                    connections.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        match acceptor {
                            None => {
                                let service = TowerToHyperService::new(router);
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                            Some(acceptor) => {
                                let Ok(stream) = acceptor.accept(stream).await else { return };
                                let client_serial = stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|certs| certs.first())
                                    .and_then(|cert| serial_hex(cert.as_ref()));
                                let observed = tower::ServiceExt::map_request(router, move |req: http::Request<_>| {
                                    slot.record(Presented {
                                        listener: addr,
                                        method: req.method().to_string(),
                                        path: req.uri().path().to_owned(),
                                        client_serial: client_serial.clone(),
                                    });
                                    req
                                });
                                let service = TowerToHyperService::new(observed);
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        connections.shutdown().await;
    });
    Ok(Served { addr, task, stop: Some(stop) })
}
