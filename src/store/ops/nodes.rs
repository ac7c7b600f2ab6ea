//! Relay nodes by name (`[queue] node`, the owner name of their leases):
//! joining (the name is taken unless another process refreshed it within
//! the live window; the leases the name held are handed back to the queue
//! in the same transaction), the heartbeat, and leaving on shutdown.

use super::{Conn, Op, Sql};
use crate::store::StoreError;
use crate::store::rows::Cols as _;

/// What joining under a name found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    /// The name is this process's now; the leases it held (a previous
    /// process of this node, killed) went back to the queue.
    Taken { deliveries: u64, webhooks: u64 },
    /// Another process holds the name, last seen at `last_seen` (ms).
    Held { instance: String, last_seen: i64 },
}

/// Hands the deliveries leased to `owner` back to the queue.
pub(super) async fn release_deliveries<C: Conn>(c: &mut C, owner: &str) -> Result<u64, StoreError> {
    c.execute(
        Sql::new(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
             lease_owner = NULL, lease_until = NULL WHERE status = 'sending' AND lease_owner = $1",
        )
        .arg(owner),
    )
    .await
}

/// Hands the webhook rows (outbox and notices) leased to `owner` back.
pub(super) async fn release_webhooks<C: Conn>(c: &mut C, owner: &str) -> Result<u64, StoreError> {
    let mut released = 0;
    for table in ["webhook_outbox", "webhook_notices"] {
        released += c
            .execute(
                Sql::new("UPDATE ")
                    .push(table)
                    .push(
                        " SET status = 'pending', lease_owner = NULL, lease_until = NULL \
                         WHERE status = 'sending' AND lease_owner = $1",
                    )
                    .arg(owner),
            )
            .await?;
    }
    Ok(released)
}

/// Takes `name` for `instance` unless another instance refreshed it at or
/// after `live_since` (ms), then hands back the leases the name held.
pub(in crate::store) struct Join {
    pub name: String,
    pub instance: String,
    pub now: i64,
    pub live_since: i64,
}

impl Op for Join {
    type Out = Joined;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<Joined, StoreError> {
        // One statement decides: a concurrent start under the same name
        // waits for this row and then sees it live.
        let taken = c
            .execute(
                Sql::new(
                    "INSERT INTO nodes (name, instance, started_at, last_seen) VALUES ($1, $2, $3, $3) \
                     ON CONFLICT (name) DO UPDATE SET instance = excluded.instance, \
                     started_at = excluded.started_at, last_seen = excluded.last_seen \
                     WHERE nodes.last_seen < $4 OR nodes.instance = excluded.instance",
                )
                .arg(&self.name)
                .arg(&self.instance)
                .arg(self.now)
                .arg(self.live_since),
            )
            .await?;
        if taken == 0 {
            let row = c
                .fetch_one(
                    Sql::new("SELECT instance, last_seen FROM nodes WHERE name = $1")
                        .arg(&self.name),
                )
                .await?;
            return Ok(Joined::Held {
                instance: row.text(0)?,
                last_seen: row.int(1)?,
            });
        }
        Ok(Joined::Taken {
            deliveries: release_deliveries(c, &self.name).await?,
            webhooks: release_webhooks(c, &self.name).await?,
        })
    }
}

/// Refreshes `name`'s last-seen time, if `instance` still holds it;
/// returns the rows updated (0: another process took the name).
pub(in crate::store) struct Heartbeat {
    pub name: String,
    pub instance: String,
    pub now: i64,
}

impl Op for Heartbeat {
    type Out = u64;
    const ATOMIC: bool = false;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<u64, StoreError> {
        c.execute(
            Sql::new("UPDATE nodes SET last_seen = $3 WHERE name = $1 AND instance = $2")
                .arg(&self.name)
                .arg(&self.instance)
                .arg(self.now),
        )
        .await
    }
}

/// Frees `name` (a clean shutdown), if `instance` still holds it.
pub(in crate::store) struct Leave {
    pub name: String,
    pub instance: String,
}

impl Op for Leave {
    type Out = u64;
    const ATOMIC: bool = false;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<u64, StoreError> {
        c.execute(
            Sql::new("DELETE FROM nodes WHERE name = $1 AND instance = $2")
                .arg(&self.name)
                .arg(&self.instance),
        )
        .await
    }
}
