//! The SMTP listener: binds, enforces the connection limits and
//! `allowed_networks`, spawns one task per session, and drains on shutdown.
//! Does the TLS handshakes: after STARTTLS, and on the implicit-TLS
//! listener (`[smtp] listen_tls`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::limiter::AuthLimiter;
use super::reply::{self, Reply};
use super::session::{self, Ended, SessionContext, Start};
use super::tls::ListenerTls;
use crate::config::Config;
use crate::config::reload::LiveConfig;
use crate::smtp::intake::Intake;

/// A bound listener, ready to run.
pub struct SmtpServer {
    listener: TcpListener,
    /// `[smtp] listen_tls`: TLS from the first byte.
    listener_tls: Option<TcpListener>,
    /// What every session shares; each session gets it with the
    /// configuration in use when it starts.
    ctx: Arc<SessionContext>,
    /// The configuration in use (swapped by a reload).
    live: LiveConfig,
}

/// Binds `[smtp] listen` (and `listen_tls` when set). `tls` is the
/// acceptor of [`super::tls::acceptor`]: STARTTLS is offered with it.
pub async fn bind(
    live: LiveConfig,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
    tls: Option<ListenerTls>,
) -> std::io::Result<SmtpServer> {
    let tls = tls.map(|t| t.acceptor);
    let config = live.get();
    let listener = TcpListener::bind(config.smtp.listen).await?;
    let listener_tls = match (config.smtp.listen_tls, &tls) {
        (Some(addr), Some(_)) => Some(TcpListener::bind(addr).await?),
        _ => None,
    };
    Ok(SmtpServer {
        listener,
        listener_tls,
        ctx: Arc::new(SessionContext {
            auth_limiter: Arc::new(AuthLimiter::new(&config.smtp.guard)),
            config,
            intake,
            shutdown,
            tls,
        }),
        live,
    })
}

/// Accepts on the implicit-TLS listener, or never when there is none.
async fn accept_tls(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Counts sessions per client address.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

struct PerIpGuard {
    map: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut m = self.map.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl PerIp {
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIpGuard> {
        let ip = crate::net::client_key(ip);
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PerIpGuard {
            map: self.clone(),
            ip,
        })
    }
}

impl SmtpServer {
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The implicit-TLS listener's address, when there is one.
    pub fn local_addr_tls(&self) -> Option<SocketAddr> {
        self.listener_tls.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Accepts sessions until shutdown, then waits up to `grace` for the
    /// sessions in progress to finish their transaction.
    pub async fn run(self, grace: Duration) {
        let limits = Limits {
            slots: Arc::new(Semaphore::new(self.ctx.config.smtp.max_connections)),
            per_ip: Arc::new(PerIp::default()),
        };
        let mut sessions = JoinSet::new();
        let mut shutdown = self.ctx.shutdown.clone();
        // `listen_tls` only when an implicit-TLS listener is configured: a
        // log line carries values an operator reads, not Rust's `None`.
        match self.local_addr_tls() {
            Some(tls) => {
                tracing::info!(listen = %self.ctx.config.smtp.listen, listen_tls = %tls, starttls = self.ctx.tls.is_some(), "smtp listening")
            }
            None => {
                tracing::info!(listen = %self.ctx.config.smtp.listen, starttls = self.ctx.tls.is_some(), "smtp listening")
            }
        }
        loop {
            let (stream, peer, implicit_tls) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok((s, p)) => (s, p, false),
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
                r = accept_tls(self.listener_tls.as_ref()) => match r {
                    Ok((s, p)) => (s, p, true),
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                },
                _ = crate::shutdown::until_shutdown(&mut shutdown) => break,
            };
            while sessions.try_join_next().is_some() {}
            self.take(stream, peer, implicit_tls, &limits, &mut sessions);
        }
        drop(self.listener);
        drop(self.listener_tls);
        drain(sessions, grace).await;
    }

    /// Spawns the session of a connection just accepted, or the refusal
    /// that answers it.
    fn take(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        implicit_tls: bool,
        limits: &Limits,
        sessions: &mut JoinSet<()>,
    ) {
        // The session keeps the configuration of its start to its end.
        let cfg = self.live.get();
        let _ = stream.set_nodelay(true);
        // IPv4-mapped IPv6 as IPv4, so it matches IPv4 allowed networks.
        let ip = peer.ip().to_canonical();
        let authorized = cfg.smtp.allowed_networks.iter().any(|n| n.contains(&ip));
        let (permit, ip_guard) = match self.admit(&cfg, peer, authorized, limits) {
            Ok(admitted) => admitted,
            Err(r) => {
                let tls = implicit_tls.then(|| self.ctx.tls.clone()).flatten();
                sessions.spawn(refuse(stream, tls, r));
                return;
            }
        };
        let ctx = Arc::new(self.ctx.with_config(cfg));
        let listener = if implicit_tls { "smtps" } else { "smtp" };
        metrics::counter!(crate::metrics::SMTP_CONNECTIONS, "listener" => listener).increment(1);
        sessions.spawn(async move {
            let _permit = permit;
            let _ip_guard = ip_guard;
            let _open = crate::metrics::OpenSession::open();
            let span = tracing::info_span!("smtp", peer = %peer, tls = implicit_tls);
            tracing::Instrument::instrument(
                serve_connection(ctx, stream, peer, authorized, implicit_tls),
                span,
            )
            .await;
        });
    }

    /// A connection slot and a place in its address's count, or the reply
    /// that refuses the connection (outside the allowed networks with no
    /// way to send, blocked for AUTH failures, or over a limit).
    fn admit(
        &self,
        cfg: &Config,
        peer: SocketAddr,
        authorized: bool,
        limits: &Limits,
    ) -> Result<(OwnedSemaphorePermit, PerIpGuard), Reply> {
        let ip = peer.ip().to_canonical();
        if !authorized && cfg.smtp.users.is_empty() && !session::open_to_anyone(cfg) {
            // Nobody outside the allowed networks can ever send here
            // (with a mailto unsubscribe domain or a report address,
            // anyone may write to those).
            tracing::info!(peer = %peer, "connection refused: not in allowed_networks");
            crate::metrics::refused("network");
            return Err(Reply::new(
                554,
                "5.7.1",
                format!("{} does not relay for {}", cfg.smtp.hostname, ip),
            ));
        }
        if !authorized && self.ctx.auth_limiter.ip_blocked(ip, Instant::now()) {
            // Password guessing from outside: nothing else to do here
            // for the window (clients in allowed_networks still connect,
            // and are refused at AUTH only).
            tracing::info!(peer = %peer, "connection refused: too many authentication failures");
            return Err(reply::auth_blocked(&cfg.smtp.hostname));
        }
        let Ok(permit) = limits.slots.clone().try_acquire_owned() else {
            crate::metrics::refused("too_many_connections");
            return Err(reply::too_many_connections(&cfg.smtp.hostname));
        };
        let Some(ip_guard) = limits.per_ip.enter(ip, cfg.smtp.max_connections_per_ip) else {
            crate::metrics::refused("too_many_connections_from_ip");
            return Err(reply::too_many_connections(&cfg.smtp.hostname));
        };
        Ok((permit, ip_guard))
    }
}

/// The listener's connection limits: `max_connections` in all, and
/// `max_connections_per_ip` per client address.
struct Limits {
    slots: Arc<Semaphore>,
    per_ip: Arc<PerIp>,
}

/// EMFILE and the like: back off instead of spinning.
async fn accept_failed(e: std::io::Error) {
    tracing::warn!(cause = %e, "smtp accept failed");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Waits up to `grace` for the sessions to end; then closes the rest.
async fn drain(mut sessions: JoinSet<()>, grace: Duration) {
    let drained = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = sessions.len(),
            "smtp sessions still open after the grace period; closing them"
        );
        sessions.abort_all();
    }
}

/// One connection: plain (with STARTTLS) or TLS from the first byte.
async fn serve_connection(
    ctx: Arc<SessionContext>,
    stream: TcpStream,
    peer: SocketAddr,
    authorized: bool,
    implicit_tls: bool,
) {
    let Some(acceptor) = ctx.tls.clone() else {
        session::run(&ctx, stream, peer, authorized, Start::Plain).await;
        return;
    };
    let (stream, start) = if implicit_tls {
        (stream, Start::ImplicitTls)
    } else {
        match session::run(&ctx, stream, peer, authorized, Start::Plain).await {
            Ended::Closed => return,
            Ended::StartTls(stream) => (stream, Start::AfterStartTls),
        }
    };
    // The handshake has its own short bound: a client that never finishes
    // it does not hold a slot for the whole command timeout.
    let timeout = ctx.config.smtp.guard.tls_handshake_timeout;
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            // The session's span was opened before STARTTLS: every line
            // from here on says TLS.
            tracing::Span::current().record("tls", true);
            // A fresh session: nothing read before the handshake survives,
            // and EHLO is required again (RFC 3207 4.2).
            session::run(&ctx, tls, peer, authorized, start).await;
        }
        Ok(Err(e)) => tracing::info!(peer = %peer, cause = %e, "tls handshake failed"),
        Err(_) => tracing::info!(peer = %peer, "tls handshake timed out"),
    }
}

/// Answers `r` and closes; on the implicit-TLS listener (`tls` set) the
/// answer goes over TLS, as the client expects nothing else there.
async fn refuse(mut stream: TcpStream, tls: Option<TlsAcceptor>, r: Reply) {
    let mut out = Vec::new();
    r.write_to(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        match tls {
            Some(acceptor) => {
                if let Ok(mut stream) = acceptor.accept(stream).await {
                    let _ = stream.write_all(&out).await;
                    let _ = stream.shutdown().await;
                }
            }
            None => {
                let _ = stream.write_all(&out).await;
                let _ = stream.shutdown().await;
            }
        }
    })
    .await;
}
