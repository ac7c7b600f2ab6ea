//! The embedded SQLite store: WAL, `synchronous=FULL`, a pool of readers and
//! one writer task that commits the transactions of concurrent callers
//! together (group commit, `writer.rs`). The operations themselves are
//! `store::ops`; this module opens the database, hands writes to the
//! writer, and truncates the WAL after personal data was removed.

mod conn;
mod writer;

use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::mpsc;

use super::StoreError;
use super::ops::Op;
use writer::Task;
pub(super) use writer::{Job, Pending};

pub struct SqliteStore {
    readers: SqlitePool,
    writer: mpsc::Sender<Task>,
    writer_task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held while `serve` runs: one node per SQLite database.
    _lock: Option<File>,
    /// Consent events are queued in `webhook_outbox` (`[webhook]` is set).
    pub(super) webhook_outbox: bool,
    /// Notified after a consent event of this process was committed.
    pub(super) events: Arc<tokio::sync::Notify>,
}

impl SqliteStore {
    pub async fn open(path: &Path, pool_size: u32, exclusive: bool) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Locked(format!("cannot create {}: {e}", dir.display())))?;
        }
        let lock = if exclusive {
            Some(take_lock(path)?)
        } else {
            None
        };
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            // Deleted and rewritten cells are zeroed where that costs no
            // extra I/O (FAST; ON everywhere costs a fifth of the accept
            // rate, bench/README.md). An erasure runs with ON, so the pages
            // it touches keep no copy of the address.
            .pragma("secure_delete", "fast")
            .foreign_keys(true);
        let readers = SqlitePoolOptions::new()
            .max_connections(pool_size.max(2))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&readers).await?;
        let mut conn = SqliteConnection::connect_with(&options).await?;
        if exclusive {
            // Only one node uses a SQLite database (the lock above), so rows
            // left `sending` by a killed process are ours to hand back.
            sqlx::query(
                "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
                 lease_owner = NULL, lease_until = NULL WHERE status = 'sending'",
            )
            .execute(&mut conn)
            .await?;
            sqlx::query(
                "UPDATE webhook_outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL \
                 WHERE status = 'sending'",
            )
            .execute(&mut conn)
            .await?;
            sqlx::query(
                "UPDATE webhook_notices SET status = 'pending', lease_owner = NULL, lease_until = NULL \
                 WHERE status = 'sending'",
            )
            .execute(&mut conn)
            .await?;
        }
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(writer::writer_loop(conn, rx));
        Ok(SqliteStore {
            readers,
            writer: tx,
            writer_task: tokio::sync::Mutex::new(Some(task)),
            _lock: lock,
            webhook_outbox: false,
            events: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Queue consent events in `webhook_outbox` from now on (`[webhook]` is set).
    pub fn with_webhook_outbox(mut self, on: bool) -> Self {
        self.webhook_outbox = on;
        self
    }

    /// Runs `op` on the writer, in its group transaction; its output once
    /// committed.
    pub(super) async fn write<W: Op>(&self, op: W) -> Result<W::Out, StoreError>
    where
        Job: From<Pending<W>>,
    {
        let (pending, answer) = Pending::new(op);
        self.writer
            .send(Task::Write(Job::from(pending)))
            .await
            .map_err(|_| StoreError::Closed)?;
        let out = answer.await.map_err(|_| StoreError::Closed)??;
        // Committed: wake the webhook dispatcher before the checkpoint,
        // which may wait for readers up to the busy timeout.
        if W::wrote_events(&out) {
            self.events.notify_one();
        }
        if W::removed_personal_data(&out) {
            self.checkpoint_truncate().await;
        }
        Ok(out)
    }

    /// A reader connection.
    pub(super) async fn reader(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        Ok(self.readers.acquire().await?)
    }

    /// A read transaction: one snapshot of the WAL for every table.
    pub(super) async fn snapshot(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.readers.begin().await?)
    }

    /// Copies the WAL into the database and truncates it. After an erasure
    /// the WAL still holds the pages as they were (with the address), and
    /// SQLite reuses a WAL file from its start without clearing what lies
    /// beyond. Waits (busy timeout) for readers and the writer to let go.
    async fn checkpoint_truncate(&self) {
        match sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.readers)
            .await
        {
            Ok(row) if row.try_get::<i64, _>(0).ok() == Some(0) => {}
            Ok(_) => tracing::warn!(
                "store: WAL checkpoint after erasure was blocked; old pages stay in the WAL until the next checkpoint"
            ),
            Err(e) => tracing::warn!(cause = %e, "store: WAL checkpoint after erasure failed"),
        }
    }

    pub async fn close(&self) {
        let task = self.writer_task.lock().await.take();
        if let Some(task) = task {
            // Jobs queued before Stop still commit; later submits get Closed.
            if self.writer.send(Task::Stop).await.is_ok() {
                let _ = task.await;
            }
        }
        self.readers.close().await;
    }
}

pub(crate) fn take_lock(db: &Path) -> Result<File, StoreError> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Locked(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(format!(
            "{} is in use by another consent-relay serve (lock {}); run one relay per SQLite database, or use PostgreSQL for several nodes",
            db.display(),
            lock_path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Locked(format!(
            "cannot lock {}: {e}",
            lock_path.display()
        ))),
    }
}
