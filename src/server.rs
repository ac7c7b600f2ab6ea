//! `serve`: opens the store, binds the SMTP and HTTP listeners, starts
//! delivery, the loop over pending reports (and, with `[webhook]`, the
//! webhook dispatcher), and drains on
//! SIGTERM/SIGINT: stop accepting, let sessions finish the transaction in
//! progress and requests their answer, finish sends and webhook posts in
//! flight, hand leases back, exit 0. SIGHUP reloads what can be reloaded
//! while running ([`Running::reload`]: the SMTP certificate and the
//! configuration file, see [`crate::config::reload`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::config::load::Loaded;
use crate::config::reload::{Changes, LiveConfig};
use crate::delivery::Delivery;
use crate::delivery::node::Node;
use crate::smtp;
use crate::smtp::intake::Intake;
use crate::store::Store;
use crate::web;

/// How long sessions, requests and sends in progress get to finish on shutdown.
pub const GRACE: Duration = Duration::from_secs(20);

/// A running relay (used by `serve` and by tests in-process).
pub struct Running {
    pub smtp_addr: SocketAddr,
    /// The implicit-TLS SMTP listener (`[smtp] listen_tls`), when set.
    pub smtp_tls_addr: Option<SocketAddr>,
    /// Where the pages and one-click unsubscribe are served (`[http] listen`).
    pub http_addr: SocketAddr,
    pub store: Store,
    /// The SMTP listener's certificate, when configured (reloaded on SIGHUP).
    smtp_tls: Option<smtp::tls::ListenerTls>,
    shutdown: watch::Sender<bool>,
    smtp: JoinHandle<()>,
    http: JoinHandle<()>,
    delivery: JoinHandle<()>,
    /// `[webhook]`: posts consent events to the CRM.
    webhook: Option<JoinHandle<()>>,
    /// The `[retention]` purge, at start and every `purge_interval`.
    retention: JoinHandle<()>,
    /// Reports stored but not applied, at start and every few seconds.
    pending_reports: JoinHandle<()>,
    /// This process as a node of the queue (`[queue] node`), and its heartbeat.
    node: Arc<Node>,
    heartbeat: Option<JoinHandle<crate::delivery::node::HeartbeatEnd>>,
    /// The configuration every part reads; a reload swaps it.
    live: LiveConfig,
}

/// Starts every part of the relay; returns once the listeners are bound.
pub async fn start(config: Arc<Config>) -> anyhow::Result<Running> {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    // What `serve` reads beyond the file, the list `check-config` and a
    // reload read too: a file that does not load stops the start.
    let Loaded {
        smtp_tls,
        webhook_roots,
        // Delivery reads these again through the same functions (and
        // again on each reload, for the signer).
        dkim_key: _,
        upstream_roots: _,
    } = Loaded::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tls = smtp::tls::acceptor(&config.smtp, smtp_tls)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.path.display()))?;
    crate::metrics::install();
    let store = Store::open(&config.store, true).await.with_context(|| {
        format!(
            "{}: store.url: cannot open the store",
            config.path.display()
        )
    })?;
    // Before anything takes a lease: the name's old leases come back now.
    let node = Arc::new(
        Node::join(&store, &config.queue)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.path.display()))?,
    );
    let wake = Arc::new(Notify::new());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let live = LiveConfig::new(config.clone());
    let pending_wake = Arc::new(Notify::new());
    let intake = Intake::new(config.clone(), store.clone(), wake.clone())
        .waking_pending_reports(pending_wake.clone());
    let smtp_tls = tls.clone();
    let listener = smtp::bind(live.clone(), intake, shutdown_rx.clone(), tls)
        .await
        .with_context(|| {
            format!(
                "{}: smtp.listen: cannot listen on {} (or smtp.listen_tls on {:?})",
                config.path.display(),
                config.smtp.listen,
                config.smtp.listen_tls
            )
        })?;
    let smtp_addr = listener.local_addr()?;
    let smtp_tls_addr = listener.local_addr_tls();
    let http_listener = web::bind(
        live.clone(),
        store.clone(),
        wake.clone(),
        pending_wake.clone(),
        shutdown_rx.clone(),
    )
    .await
    .with_context(|| {
        format!(
            "{}: http.listen: cannot listen on {}",
            config.path.display(),
            config.http.listen
        )
    })?;
    let http_addr = http_listener.local_addr()?;
    let delivery = Delivery::new(live.clone(), store.clone(), wake)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.path.display()))?;
    let webhook = config
        .webhook
        .as_ref()
        .map(|w| crate::webhook::Dispatcher::new(w, webhook_roots, store.clone(), &node.name))
        .transpose()
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.path.display()))?;
    let smtp = tokio::spawn(listener.run(GRACE));
    let http = tokio::spawn(http_listener.run(GRACE));
    let webhook = webhook.map(|w| tokio::spawn(w.run(shutdown_rx.clone())));
    let retention = tokio::spawn(crate::rights::retention::run(
        live.clone(),
        store.clone(),
        shutdown_rx.clone(),
    ));
    let pending_reports = tokio::spawn(crate::feedback::pending::run(
        live.clone(),
        store.clone(),
        pending_wake,
        shutdown_rx.clone(),
    ));
    let heartbeat = Some(tokio::spawn(node.clone().heartbeat(shutdown_rx.clone())));
    let delivery = tokio::spawn(delivery.run(shutdown_rx));
    tracing::info!(smtp = %smtp_addr, http = %http_addr, store = %shown_store(&config.store.url), node = %node.name, "consent-relay started");
    Ok(Running {
        smtp_addr,
        smtp_tls_addr,
        http_addr,
        store,
        smtp_tls,
        shutdown,
        smtp,
        http,
        delivery,
        webhook,
        retention,
        pending_reports,
        node,
        heartbeat,
        live,
    })
}

/// The store's URL as the start log shows it: `sqlite://PATH`, or the
/// PostgreSQL URL without its password.
fn shown_store(url: &crate::config::StoreUrl) -> String {
    match url {
        crate::config::StoreUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        crate::config::StoreUrl::Postgres(text) => match url::Url::parse(text) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(None);
                }
                u.to_string()
            }
            Err(_) => "postgres://(unreadable)".to_owned(),
        },
    }
}

impl Running {
    /// Reloads, without dropping a connection, what can change while
    /// running: the `[smtp] tls_cert`/`tls_key` files, then the
    /// configuration file ([`Running::reload_config`]). A pair that does not
    /// load is logged and the pair in use stays.
    pub fn reload(&self) {
        if let Some(tls) = &self.smtp_tls {
            match tls.reload() {
                Ok(()) => tracing::info!("tls certificate reloaded"),
                Err(e) => tracing::error!(
                    cause = %e,
                    "tls certificate not reloaded; the previous one stays in use"
                ),
            }
        }
        self.reload_config();
    }

    /// Reads the configuration file again and, if it passes what
    /// `check-config` checks (the file, then [`Loaded::load`]), puts it in use for every new session,
    /// request, delivery batch and purge. A file that does not pass is
    /// refused whole: each problem is logged (`FILE: key: what (fix)`) and
    /// the configuration in use stays. Keys only read at start are named
    /// in a warning. Returns whether the new file is in use.
    pub fn reload_config(&self) -> bool {
        let old = self.live.get();
        let new = match Config::load(&old.path).and_then(|new| Loaded::load(&new).map(|_| new)) {
            Ok(new) => new,
            Err(e) => {
                for line in e.to_string().lines() {
                    tracing::error!("{line}");
                }
                tracing::error!("configuration not reloaded; the previous one stays in use");
                return false;
            }
        };
        for w in &new.warnings {
            tracing::warn!("{w}");
        }
        let changes = Changes::between(&old, &new);
        if !changes.restart.is_empty() {
            tracing::warn!(
                keys = %changes.restart.join(", "),
                "changed keys that only a restart puts in use (their old values stay until then): {}",
                changes.restart.join(", ")
            );
        }
        self.live.set(Arc::new(new));
        tracing::info!(changed = %changes.summary(), "configuration reloaded");
        true
    }

    /// Resolves if another process took this node's name (see
    /// `Node::heartbeat`); pending otherwise, for as long as it runs.
    pub async fn name_lost(&mut self) {
        use crate::delivery::node::HeartbeatEnd;
        match self.heartbeat.as_mut() {
            Some(h) => {
                let end = h.await;
                self.heartbeat = None;
                if matches!(end, Ok(HeartbeatEnd::NameLost)) {
                    return;
                }
                std::future::pending().await
            }
            None => std::future::pending().await,
        }
    }

    /// Drains and stops everything.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        // Both listeners drain at once (each within GRACE); the store
        // closes only after the last request that could write to it.
        let _ = self.smtp.await;
        let _ = self.http.await;
        if tokio::time::timeout(GRACE, self.delivery).await.is_err() {
            tracing::warn!("delivery did not stop within the grace period");
        }
        if let Some(webhook) = self.webhook
            && tokio::time::timeout(GRACE, webhook).await.is_err()
        {
            tracing::warn!("webhooks did not stop within the grace period");
        }
        // A purge stops after the batch in progress.
        if tokio::time::timeout(GRACE, self.retention).await.is_err() {
            tracing::warn!("the retention purge did not stop within the grace period");
        }
        // A round applies the batch in progress, then stops.
        if tokio::time::timeout(GRACE, self.pending_reports)
            .await
            .is_err()
        {
            tracing::warn!("the pending reports loop did not stop within the grace period");
        }
        if let Some(heartbeat) = self.heartbeat {
            let _ = heartbeat.await;
        }
        // Leases are handed back: the name is free for the next start.
        self.node.leave().await;
        self.store.close().await;
        tracing::info!("consent-relay stopped");
    }
}

/// Runs until SIGTERM or SIGINT; SIGHUP reloads.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    let mut running = start(Arc::new(config)).await?;
    loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::Reload => {
                    tracing::info!("SIGHUP: reloading");
                    running.reload();
                }
                Signal::Shutdown => break,
            },
            () = running.name_lost() => {
                running.stop().await;
                anyhow::bail!(
                    "queue.node: another process took this node's name; stopped so that no copy \
                     is sent twice (give each node its own name)"
                );
            }
        }
    }
    tracing::info!("shutting down");
    running.stop().await;
    Ok(())
}

/// What a signal asks of `serve`.
enum Signal {
    /// SIGTERM or SIGINT.
    Shutdown,
    /// SIGHUP.
    Reload,
}

/// The signals `serve` listens to, installed before the relay starts so
/// that none is missed (an early SIGHUP would otherwise kill the process).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Shutdown,
            _ = self.int.recv() => Signal::Shutdown,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::shown_store;
    use crate::config::StoreUrl;

    #[test]
    fn the_start_log_shows_the_store_url_without_its_password() {
        assert_eq!(
            shown_store(&StoreUrl::Sqlite("/var/lib/relay.db".into())),
            "sqlite:///var/lib/relay.db"
        );
        assert_eq!(
            shown_store(&StoreUrl::Postgres(
                "postgres://relay:s3cret@db.example:5432/relay?sslmode=require".into()
            )),
            "postgres://relay@db.example:5432/relay?sslmode=require"
        );
        assert_eq!(
            shown_store(&StoreUrl::Postgres("postgres://relay@db/relay".into())),
            "postgres://relay@db/relay"
        );
    }
}
