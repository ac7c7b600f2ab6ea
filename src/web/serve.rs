//! The HTTP listener: accepts connections on `[http] listen` and serves the
//! router over HTTP/1.1 (TLS, when wanted, is the reverse proxy's job).
//!
//! Written on hyper directly rather than `axum::serve` for the limits the
//! latter lacks: a bound on concurrent connections, in all and per client
//! address (`[http] max_connections_per_client`, IPv6 by its /64, so one
//! client cannot hold every slot), a timeout on reading request headers
//! (a client that opens a connection and sends nothing is dropped, idle
//! keep-alive connections too: the slot is freed), and a drain bounded by
//! the grace period on shutdown. Refused connections are counted
//! (`consent_relay_http_connections_refused_total`) and logged at most
//! once a second, with how many were refused since the last line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

use super::console::session::SignInLimiter;
use super::limit::Limiter;
use super::{WebState, router_limited};
use crate::config::reload::{LiveConfig, PerConfig};
use crate::store::Store;

/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = crate::config::MAX_HTTP_CONNECTIONS;
/// Refused connections are logged at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);
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
    /// `[http] max_connections_per_client`.
    per_client: usize,
}

/// Binds `[http] listen`. Serving starts with [`HttpServer::run`].
pub async fn bind(
    live: LiveConfig,
    store: Store,
    wake: Arc<Notify>,
    pending_reports: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<HttpServer> {
    let config = live.get();
    let listener = TcpListener::bind(config.http.listen).await?;
    let limiter = Limiter::new(&config.http);
    let sign_in = SignInLimiter::default();
    let router = router_limited(
        WebState {
            config: config.clone(),
            store: store.clone(),
            wake: wake.clone(),
            pending_reports: pending_reports.clone(),
            sign_in: sign_in.clone(),
        },
        limiter.clone(),
    );
    Ok(HttpServer {
        header_timeout: config.http.header_timeout,
        per_client: config.http.max_connections_per_client,
        listener,
        routers: Arc::new(Routers {
            live,
            store,
            wake,
            pending_reports,
            limiter,
            sign_in,
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
    pending_reports: Arc<Notify>,
    limiter: Limiter,
    sign_in: SignInLimiter,
    current: PerConfig<Router>,
}

impl Routers {
    fn get(&self) -> Router {
        self.current.get(&self.live.get(), |config, _| {
            let state = WebState {
                config: config.clone(),
                store: self.store.clone(),
                wake: self.wake.clone(),
                pending_reports: self.pending_reports.clone(),
                sign_in: self.sign_in.clone(),
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
        let clients = Arc::new(Clients::new(self.per_client));
        let mut refused = Refusals::default();
        let mut flush = tokio::time::interval(REFUSAL_LOG_EVERY);
        let mut connections = JoinSet::new();
        let mut shutdown = self.shutdown.clone();
        if let Ok(addr) = self.listener.local_addr() {
            tracing::info!(listen = %addr, "http listening");
        }
        loop {
            let (stream, peer) = tokio::select! {
                _ = flush.tick() => {
                    refused.log(Instant::now(), false);
                    continue;
                }
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
            let Some(client) = clients.take(peer.ip()) else {
                refused.count(Refused::PerClient, peer.ip());
                continue;
            };
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                refused.count(Refused::Total, peer.ip());
                continue;
            };
            let _ = stream.set_nodelay(true);
            let routers = self.routers.clone();
            let mut shutdown = self.shutdown.clone();
            let header_timeout = self.header_timeout;
            connections.spawn(async move {
                let _permit = (permit, client);
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
        refused.log(Instant::now(), true);
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

/// The connections each client address holds open (IPv6: by its /64, as
/// [`crate::net::client_key`] groups them).
struct Clients {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; its count goes down when dropped.
struct ClientSlot {
    clients: Arc<Clients>,
    key: IpAddr,
}

impl Clients {
    fn new(max: usize) -> Clients {
        Clients {
            max,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for one more connection from `ip`, unless it holds its maximum.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let key = crate::net::client_key(ip);
        let mut open = self.open();
        let n = open.entry(key).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: self.clone(),
            key,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.open();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Why a connection was closed on accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Its address holds `[http] max_connections_per_client`.
    PerClient,
    /// The listener serves [`MAX_CONNECTIONS`].
    Total,
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Refused::PerClient => "per-client",
            Refused::Total => "total",
        }
    }
}

/// Connections refused since the last log line: a flood of them makes a
/// line a second, not one each.
#[derive(Default)]
struct Refusals {
    per_client: u64,
    total: u64,
    /// The address of the last refusal.
    last_peer: Option<IpAddr>,
    logged_at: Option<Instant>,
}

impl Refusals {
    fn count(&mut self, why: Refused, peer: IpAddr) {
        crate::metrics::http_connection_refused(why.as_str());
        match why {
            Refused::PerClient => self.per_client += 1,
            Refused::Total => self.total += 1,
        }
        self.last_peer = Some(peer.to_canonical());
        self.log(Instant::now(), false);
    }

    /// Logs the count, if any, unless a line was written less than
    /// [`REFUSAL_LOG_EVERY`] ago and not `force`d (the listener stops).
    fn log(&mut self, now: Instant, force: bool) {
        let refused = self.per_client + self.total;
        if refused == 0 {
            return;
        }
        if !force
            && self
                .logged_at
                .is_some_and(|at| now.saturating_duration_since(at) < REFUSAL_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            refused,
            over_client_limit = self.per_client,
            over_total_limit = self.total,
            last_peer = %self.last_peer.map(|p| p.to_string()).unwrap_or_default(),
            "http connections refused (too many connections) since the last such line"
        );
        self.per_client = 0;
        self.total = 0;
        self.logged_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_its_connections_and_gets_them_back() {
        let clients = Arc::new(Clients::new(2));
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let a = clients.take(ip).expect("first");
        let _b = clients.take(ip).expect("second");
        assert!(clients.take(ip).is_none(), "over the limit");
        // IPv6 by its /64; another address is not affected.
        let v6 = |s: &str| s.parse::<IpAddr>().expect("ip");
        let _c = clients.take(v6("2001:db8::1")).expect("v6");
        let _d = clients.take(v6("2001:db8::2")).expect("v6");
        assert!(clients.take(v6("2001:db8::3")).is_none(), "same /64");
        assert!(clients.take(v6("2001:db8:0:1::1")).is_some(), "other /64");
        drop(a);
        assert!(
            clients.take(ip).is_some(),
            "a closed connection frees its slot"
        );
    }
}
