//! This relay as a node of the queue: its `[queue] node` name is the owner
//! of every lease it takes (deliveries and webhook posts), so the same name
//! after a restart finds the leases a killed process left and hands them
//! back to the queue at once, instead of waiting for `[queue] lease`.
//!
//! At start the node joins under its name. A name another process refreshed
//! within the live window (twice `node_heartbeat`) may still be in use:
//! the node watches it for one window, and refuses to start if it was
//! refreshed meanwhile (two live nodes must not share a name: each would
//! hand back the other's leases), or takes it once it went stale (a
//! process killed with `kill -9`). While running, a heartbeat refreshes the
//! name; a clean shutdown frees it. On SQLite the store's lock already
//! proves no other process uses the database: the name is taken at once.

use std::time::Duration;

use anyhow::bail;
use tokio::sync::watch;

use crate::config::QueueConfig;
use crate::store::{Joined, Store};

/// The node this process runs as.
pub struct Node {
    pub name: String,
    /// This process (a ULID): tells its own row from another's.
    instance: String,
    heartbeat: Duration,
    store: Store,
}

impl Node {
    /// Joins under `[queue] node`; waits up to one live window while the
    /// name's holder may be dead. The error names the key and the fix.
    pub async fn join(store: &Store, queue: &QueueConfig) -> anyhow::Result<Node> {
        let name = queue.node.clone();
        let instance = ulid::Ulid::generate().to_string();
        let window = queue.node_heartbeat.saturating_mul(2);
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let mut watched: Option<(String, i64)> = None;
        loop {
            let now = crate::time::now_ms();
            let live_since = if store.single_node() {
                i64::MAX
            } else {
                now.saturating_sub(window_ms)
            };
            match store.join_node(&name, &instance, now, live_since).await? {
                Joined::Taken {
                    deliveries,
                    webhooks,
                } => {
                    tracing::info!(
                        node = %name,
                        reclaimed_deliveries = deliveries,
                        reclaimed_webhooks = webhooks,
                        "node joined; leases this name held went back to the queue"
                    );
                    return Ok(Node {
                        name,
                        instance,
                        heartbeat: queue.node_heartbeat,
                        store: store.clone(),
                    });
                }
                Joined::Held {
                    instance: holder,
                    last_seen,
                } => {
                    let ago = Duration::from_millis(now.saturating_sub(last_seen).max(0) as u64);
                    if watched
                        .as_ref()
                        .is_some_and(|(i, t)| *i != holder || *t != last_seen)
                    {
                        bail!(
                            "queue.node: another running consent-relay holds the node name {name:?} \
                             (seen {} ago): give each node its own name ([queue] node = \"...\", \
                             default the hostname), or stop the other process first",
                            humantime::format_duration(Duration::from_secs(ago.as_secs()))
                        );
                    }
                    if watched.is_none() {
                        tracing::warn!(
                            node = %name,
                            seen_ms_ago = ago.as_millis() as u64,
                            "the node name was in use moments ago; waiting up to {} to see whether that process is alive",
                            humantime::format_duration(window)
                        );
                    }
                    watched = Some((holder, last_seen));
                    let stale_in = Duration::from_millis(
                        (last_seen.saturating_add(window_ms) - now).max(0) as u64,
                    );
                    let step = (queue.node_heartbeat / 2).max(Duration::from_millis(50));
                    tokio::time::sleep(step.min(stale_in + Duration::from_millis(10))).await;
                }
            }
        }
    }

    /// Refreshes the name every `node_heartbeat` until `shutdown`, or until
    /// another process has taken the name (this one was not seen for twice
    /// `node_heartbeat`): that process handed this one's leases back to the
    /// queue when it started, so going on would send copies twice. The
    /// caller stops the relay then ([`HeartbeatEnd::NameLost`]).
    pub async fn heartbeat(
        self: std::sync::Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
    ) -> HeartbeatEnd {
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = crate::shutdown::until_shutdown(&mut shutdown) => return HeartbeatEnd::Shutdown,
            }
            match self
                .store
                .node_heartbeat(&self.name, &self.instance, crate::time::now_ms())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(
                        node = %self.name,
                        "queue.node: another process took this node's name (this one was not seen \
                         for twice node_heartbeat): stopping, so that no copy is sent twice; \
                         give each node its own name"
                    );
                    return HeartbeatEnd::NameLost;
                }
                Err(e) => tracing::warn!(node = %self.name, cause = %e, "node heartbeat failed"),
            }
        }
    }

    /// Frees the name (a clean shutdown: a restart takes it at once).
    pub async fn leave(&self) {
        if let Err(e) = self.store.leave_node(&self.name, &self.instance).await {
            tracing::warn!(node = %self.name, cause = %e, "cannot free the node name");
        }
    }
}

/// Why [`Node::heartbeat`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatEnd {
    /// The relay is shutting down.
    Shutdown,
    /// Another process holds the name now: the relay must stop.
    NameLost,
}
