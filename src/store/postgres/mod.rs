//! The shared PostgreSQL store: several relay nodes use one database for
//! consent records and the queue. Each write is its own transaction on a
//! pool (PostgreSQL commits concurrent transactions together itself);
//! workers lease due deliveries with `FOR UPDATE SKIP LOCKED` and a lease
//! expiry, so two nodes never take the same row and a dead node's rows are
//! taken again once its leases expire (`conn.rs`). The operations
//! themselves are `store::ops`.

mod conn;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use super::StoreError;
use super::ops::Op;

pub struct PgStore {
    pool: PgPool,
    /// Consent events are queued in `webhook_outbox` (`[webhook]` is set).
    pub(super) webhook_outbox: bool,
    /// Notified after a consent event of this process was committed (other
    /// nodes' events are found by the dispatcher's poll).
    pub(super) events: Arc<tokio::sync::Notify>,
}

impl PgStore {
    /// Connects (TLS as the URL's `sslmode` says) and brings the schema up
    /// to date. Nodes may start together: sqlx migrates under an advisory lock.
    pub async fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(PgStore {
            pool,
            webhook_outbox: false,
            events: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Queue consent events in `webhook_outbox` from now on (`[webhook]` is set).
    pub fn with_webhook_outbox(mut self, on: bool) -> Self {
        self.webhook_outbox = on;
        self
    }

    /// Runs `op` in a transaction of its own (or, not [`Op::ATOMIC`],
    /// statement by statement); its output once committed. Commits are
    /// timed like SQLite's group commits
    /// (`consent_relay_store_commit_duration_seconds`).
    pub(super) async fn write<W: Op>(&self, op: W) -> Result<W::Out, StoreError> {
        let now = crate::time::now_ms();
        let out = if W::ATOMIC {
            let (mut tx, started) = (self.pool.begin().await?, Instant::now());
            let out = op.run(&mut *tx, now).await?;
            tx.commit().await?;
            metrics::histogram!(crate::metrics::COMMIT_SECONDS)
                .record(started.elapsed().as_secs_f64());
            out
        } else {
            let mut conn = self.pool.acquire().await?;
            op.run(&mut *conn, now).await?
        };
        // Committed: wake this process's webhook dispatcher (other nodes
        // find the rows by polling).
        if W::wrote_events(&out) {
            self.events.notify_one();
        }
        Ok(out)
    }

    /// A connection of the pool.
    pub(super) async fn reader(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A read-only transaction that sees one snapshot of every table.
    pub(super) async fn snapshot(
        &self,
    ) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
