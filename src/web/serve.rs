//! The HTTP listener: accepts connections on `[http] listen` and serves the
//! router over HTTP/1.1 (TLS, when wanted, is the reverse proxy's job).
//!
//! Written on hyper directly rather than `axum::serve` for three limits the
//! latter lacks: a bound on concurrent connections, a timeout on reading
//! request headers (a client that opens a connection and sends nothing is
//! dropped, idle keep-alive connections too), and a drain bounded by the
//! grace period on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tower::Service as _;

use super::limit::Limiter;
use super::{WebState, router_limited};
use crate::config::reload::{LiveConfig, PerConfig};
use crate::store::Store;

/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 1024;
/// Read buffer, and so the largest request head (tokens are < 200 bytes).
const MAX_BUF_SIZE: usize = 64 * 1024;

/// A bound HTTP listener, not yet accepting.
pub struct HttpServer {
    listener: TcpListener,
    routers: Arc<Routers>,
    shutdown: watch::Receiver<bool>,
    /// `[http] header_timeout`: time to send the request line and headers,
    /// and to send the next request on a kept-alive connection.
    header_timeout: Duration,
}

/// Binds `[http] listen`. Serving starts with [`HttpServer::run`].
pub async fn bind(
    live: LiveConfig,
    store: Store,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<HttpServer> {
    let config = live.get();
    let listener = TcpListener::bind(config.http.listen).await?;
    let limiter = Limiter::new(&config.http);
    let router = router_limited(
        WebState {
            config: config.clone(),
            store: store.clone(),
            wake: wake.clone(),
        },
        limiter.clone(),
    );
    Ok(HttpServer {
        header_timeout: config.http.header_timeout,
        listener,
        routers: Arc::new(Routers {
            live,
            store,
            wake,
            limiter,
            current: PerConfig::new(config, router),
        }),
        shutdown,
    })
}

/// The router for the configuration in use: each request is served with
/// the configuration of its arrival. Built again after a reload, with the
/// same rate limiter.
struct Routers {
    live: LiveConfig,
    store: Store,
    wake: Arc<Notify>,
    limiter: Limiter,
    current: PerConfig<Router>,
}

impl Routers {
    fn get(&self) -> Router {
        self.current.get(&self.live.get(), |config, _| {
            let state = WebState {
                config: config.clone(),
                store: self.store.clone(),
                wake: self.wake.clone(),
            };
            router_limited(state, self.limiter.clone())
        })
    }
}

impl HttpServer {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until shutdown, then lets requests in progress finish (idle
    /// connections close at once) for up to `grace`.
    pub async fn run(self, grace: Duration) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        let mut shutdown = self.shutdown.clone();
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(listen = %addr, "http listening");
        }
        loop {
            let (stream, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!(cause = %e, "http accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = crate::shutdown::until_shutdown(&mut shutdown) => break,
            };
            while connections.try_join_next().is_some() {}
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                tracing::warn!(peer = %peer, "http connection refused: too many connections");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let routers = self.routers.clone();
            let mut shutdown = self.shutdown.clone();
            let header_timeout = self.header_timeout;
            connections.spawn(async move {
                let _permit = permit;
                let service =
                    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        routers.get().call(req.map(Body::new))
                    });
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .max_buf_size(MAX_BUF_SIZE)
                    .serve_connection(TokioIo::new(stream), service);
                let mut connection = std::pin::pin!(connection);
                let result = tokio::select! {
                    r = connection.as_mut() => r,
                    _ = crate::shutdown::until_shutdown(&mut shutdown) => {
                        // Finishes the request in progress, then closes.
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(peer = %peer, cause = %e, "http connection ended");
                }
            });
        }
        drop(self.listener);
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = connections.len(),
                "http connections still open after the grace period; closing them"
            );
            connections.abort_all();
        }
    }
}
