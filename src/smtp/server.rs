//! The SMTP listener: binds, enforces the connection limits and
//! `allowed_networks`, spawns one task per session, and drains on shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::reply::{self, Reply};
use super::session::{self, SessionContext};
use crate::config::Config;
use crate::intake::Intake;

/// A bound listener, ready to run.
pub struct SmtpServer {
    listener: TcpListener,
    ctx: Arc<SessionContext>,
}

/// Binds `[smtp] listen`.
pub async fn bind(
    config: Arc<Config>,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<SmtpServer> {
    let listener = TcpListener::bind(config.smtp.listen).await?;
    Ok(SmtpServer {
        listener,
        ctx: Arc::new(SessionContext {
            config,
            intake,
            shutdown,
        }),
    })
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

    /// Accepts sessions until shutdown, then waits up to `grace` for the
    /// sessions in progress to finish their transaction.
    pub async fn run(self, grace: Duration) {
        let cfg = self.ctx.config.clone();
        let slots = Arc::new(Semaphore::new(cfg.smtp.max_connections));
        let per_ip = Arc::new(PerIp::default());
        let mut sessions = JoinSet::new();
        let mut shutdown = self.ctx.shutdown.clone();
        tracing::info!(listen = %cfg.smtp.listen, "smtp listening");
        loop {
            let (stream, peer) = tokio::select! {
                r = self.listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!(cause = %e, "smtp accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = crate::until_shutdown(&mut shutdown) => break,
            };
            while sessions.try_join_next().is_some() {}
            let _ = stream.set_nodelay(true);
            let ip = canonical(peer.ip());
            let authorized = cfg.smtp.allowed_networks.iter().any(|n| n.contains(&ip));
            if !authorized
                && cfg.smtp.users.is_empty()
                && cfg.http.unsubscribe_mailto_domain.is_none()
            {
                // Nobody outside the allowed networks can ever send here
                // (with a mailto unsubscribe domain, anyone may write to it).
                tracing::info!(peer = %peer, "connection refused: not in allowed_networks");
                sessions.spawn(refuse(
                    stream,
                    Reply::new(
                        554,
                        "5.7.1",
                        format!("{} does not relay for {}", cfg.smtp.hostname, ip),
                    ),
                ));
                continue;
            }
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                sessions.spawn(refuse(
                    stream,
                    reply::too_many_connections(&cfg.smtp.hostname),
                ));
                continue;
            };
            let Some(ip_guard) = per_ip.enter(ip, cfg.smtp.max_connections_per_ip) else {
                sessions.spawn(refuse(
                    stream,
                    reply::too_many_connections(&cfg.smtp.hostname),
                ));
                continue;
            };
            let ctx = self.ctx.clone();
            sessions.spawn(async move {
                let _permit = permit;
                let _ip_guard = ip_guard;
                let span = tracing::info_span!("smtp", peer = %peer);
                let _ = tracing::Instrument::instrument(
                    session::run(&ctx, stream, peer, authorized),
                    span,
                )
                .await;
            });
        }
        drop(self.listener);
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
}

/// IPv4-mapped IPv6 addresses compare as IPv4 against the allowed networks.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn refuse(mut stream: TcpStream, r: Reply) {
    let mut out = Vec::new();
    r.write_to(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = stream.write_all(&out).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
