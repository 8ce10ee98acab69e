//! A listener whose connections all die with it, like a process that exits: stopping a
//! PD member or a TiKV status server must also cut pooled keep-alive connections.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::tls::TlsAcceptor;

/// A running server; dropping it closes the listener and every open connection.
#[derive(Debug)]
pub struct Served {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Served {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(addr: SocketAddr, router: Router, tls: Option<Arc<TlsAcceptor>>) -> std::io::Result<Served> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let service = TowerToHyperService::new(router.clone());
                    let tls = tls.clone();
                    connections.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        match tls {
                            None => {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                            Some(tls) => {
                                let Ok(stream) = tls.accept(stream).await else { return };
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(Served { addr, task })
}
