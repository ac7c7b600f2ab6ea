//! The embedded SQLite store: WAL, `synchronous=FULL`, a pool of readers and
//! one writer task that commits the transactions of concurrent callers
//! together (group commit), so throughput is not one fsync per message.
//! When one job of a group fails, the group rolls back and each job runs
//! again in a transaction of its own, so a failing job fails alone and the
//! others still commit.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::rows::{
    self, decision_from_row, delivery_from_row, event_from_row, queue_from_row, state_from_row,
};
use super::*;
use crate::consent;

mod once;
mod retention;

/// Jobs a writer transaction can hold at most.
const MAX_GROUP: usize = 512;

/// One caller's write, run in the writer's group transaction.
enum Op {
    Accept(Box<NewMessage>),
    Record(Vec<AttemptRecord>),
    Claim {
        owner: String,
        now: i64,
        lease_until: i64,
        limit: i64,
    },
    Release(String),
    /// `webhook`: queue the event in `webhook_outbox` too.
    Consent {
        event: Box<NewConsentEvent>,
        webhook: bool,
        follow_up: Option<FollowUp>,
    },
    Erase {
        erasure: Box<Erasure>,
        webhook: bool,
    },
    ClaimWebhooks {
        owner: String,
        now: i64,
        lease_until: i64,
        limit: i64,
    },
    RecordWebhook {
        owner: String,
        outcome: WebhookOutcome,
    },
    ReleaseWebhooks(String),
    Purge(PurgeStep),
    /// Imported rows, each skipped when its key is stored.
    Import {
        rows: Vec<ImportEvent>,
        webhook: bool,
    },
    /// A consent event at most once per `Idempotency-Key`.
    ConsentOnce {
        keyed: Box<KeyedConsent>,
        webhook: bool,
    },
}

/// What an [`Op`] produced.
enum Output {
    Unit,
    Claimed(Vec<ClaimedDelivery>),
    Released(u64),
    Event(ConsentEvent),
    Erased(Option<ErasureReport>),
    Webhooks(Vec<ClaimedWebhook>),
    Purged(PurgeReport, Option<PurgeStep>),
    /// Outcomes recorded; this many erasure notices scrubbed.
    Recorded(u64),
    Imported(ImportCounts),
    Once(KeyedOutcome),
}

type Reply = oneshot::Sender<Result<Output, StoreError>>;

/// The writer answered an [`Op`] with another kind of [`Output`] (a bug).
fn wrong_kind() -> StoreError {
    StoreError::Corrupt("writer answered the wrong kind".into())
}

enum Job {
    Write(Op, Reply),
    /// Finish what is queued before this, then stop.
    Stop,
}

pub struct SqliteStore {
    readers: SqlitePool,
    writer: mpsc::Sender<Job>,
    writer_task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held while `serve` runs: one node per SQLite database.
    _lock: Option<File>,
    /// Consent events are queued in `webhook_outbox` (`[webhook]` is set).
    webhook_outbox: bool,
    /// Notified after a consent event of this process was committed.
    events: Arc<tokio::sync::Notify>,
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
        }
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(writer_loop(conn, rx));
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

    pub fn events_written(&self) -> Arc<tokio::sync::Notify> {
        self.events.clone()
    }

    async fn submit(&self, op: Op) -> Result<Output, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job::Write(op, tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn accept_message(&self, message: NewMessage) -> Result<(), StoreError> {
        self.submit(Op::Accept(Box::new(message))).await.map(drop)
    }

    pub async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<(), StoreError> {
        match self.submit(Op::Record(records)).await? {
            // A scrubbed notice leaves old pages with the address in the WAL.
            Output::Recorded(scrubbed) if scrubbed > 0 => self.checkpoint_truncate().await,
            Output::Recorded(_) => {}
            _ => return Err(wrong_kind()),
        }
        Ok(())
    }

    pub async fn purge_batch(
        &self,
        step: PurgeStep,
    ) -> Result<(PurgeReport, Option<PurgeStep>), StoreError> {
        match self.submit(Op::Purge(step)).await? {
            Output::Purged(removed, next) => Ok((removed, next)),
            _ => Err(wrong_kind()),
        }
    }

    pub async fn purge_count(&self, cutoffs: PurgeCutoffs) -> Result<PurgeReport, StoreError> {
        retention::purge_count(&self.readers, cutoffs).await
    }

    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let op = Op::Claim {
            owner: owner.to_owned(),
            now,
            lease_until,
            limit,
        };
        match self.submit(op).await? {
            Output::Claimed(c) => Ok(c),
            _ => Err(wrong_kind()),
        }
    }

    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        match self.submit(Op::Release(owner.to_owned())).await? {
            Output::Released(n) => Ok(n),
            _ => Err(wrong_kind()),
        }
    }

    pub async fn append_consent_event(
        &self,
        event: NewConsentEvent,
        follow_up: Option<FollowUp>,
    ) -> Result<ConsentEvent, StoreError> {
        let op = Op::Consent {
            event: Box::new(event),
            webhook: self.webhook_outbox,
            follow_up,
        };
        match self.submit(op).await? {
            Output::Event(e) => {
                self.events.notify_one();
                Ok(e)
            }
            _ => Err(wrong_kind()),
        }
    }

    pub async fn erase(&self, erasure: Erasure) -> Result<Option<ErasureReport>, StoreError> {
        let op = Op::Erase {
            erasure: Box::new(erasure),
            webhook: self.webhook_outbox,
        };
        let report = match self.submit(op).await? {
            Output::Erased(r) => r,
            _ => return Err(wrong_kind()),
        };
        if report.is_some() {
            self.events.notify_one();
            self.checkpoint_truncate().await;
        }
        Ok(report)
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

    pub async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedWebhook>, StoreError> {
        let op = Op::ClaimWebhooks {
            owner: owner.to_owned(),
            now,
            lease_until,
            limit,
        };
        match self.submit(op).await? {
            Output::Webhooks(c) => Ok(c),
            _ => Err(wrong_kind()),
        }
    }

    pub async fn record_webhook(
        &self,
        owner: &str,
        outcome: WebhookOutcome,
    ) -> Result<(), StoreError> {
        let op = Op::RecordWebhook {
            owner: owner.to_owned(),
            outcome,
        };
        self.submit(op).await.map(drop)
    }

    pub async fn release_webhooks(&self, owner: &str) -> Result<u64, StoreError> {
        match self.submit(Op::ReleaseWebhooks(owner.to_owned())).await? {
            Output::Released(n) => Ok(n),
            _ => Err(wrong_kind()),
        }
    }

    pub async fn webhook_outbox(&self, limit: i64) -> Result<Vec<WebhookRow>, StoreError> {
        sqlx::query(
            "SELECT event_id, subject_id, status, attempts, next_attempt_at, last_error, created_at \
             FROM webhook_outbox ORDER BY event_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(rows::webhook_from_row)
        .collect()
    }

    pub async fn close(&self) {
        let task = self.writer_task.lock().await.take();
        if let Some(task) = task {
            // Jobs queued before Stop still commit; later submits get Closed.
            if self.writer.send(Job::Stop).await.is_ok() {
                let _ = task.await;
            }
        }
        self.readers.close().await;
    }

    pub async fn recipients_consent(
        &self,
        campaign: &str,
        addresses: &[String],
        hashes: &[Vec<String>],
    ) -> Result<HashMap<String, KnownRecipient>, StoreError> {
        if addresses.is_empty() {
            return Ok(HashMap::new());
        }
        // One round trip: live subjects by address, and erased ones (whose
        // address is gone) by the keyed hash of the address.
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT s.address, s.id, s.address_hash, cs.campaign, cs.status, cs.since, cs.event_id \
             FROM subjects s LEFT JOIN consent_state cs ON cs.subject_id = s.id AND cs.campaign IN (",
        );
        q.push_bind(campaign).push(", '*') WHERE s.address IN (");
        let mut sep = q.separated(", ");
        for a in addresses {
            sep.push_bind(a);
        }
        q.push(") OR (s.address IS NULL AND s.address_hash IN (");
        let mut sep = q.separated(", ");
        sep.push_bind("");
        for h in hashes.iter().flatten() {
            sep.push_bind(h);
        }
        q.push("))");
        let rows = q.build().fetch_all(&self.readers).await?;
        rows::known_recipients(&rows, addresses, hashes)
    }

    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('queued', 'deferred')",
        )
        .fetch_one(&self.readers)
        .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn message_bodies(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Arc<Vec<u8>>>, StoreError> {
        let mut out = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(out);
        }
        let mut q = QueryBuilder::<Sqlite>::new("SELECT id, body FROM messages WHERE id IN (");
        let mut sep = q.separated(", ");
        for id in ids {
            sep.push_bind(id);
        }
        q.push(")");
        for row in q.build().fetch_all(&self.readers).await? {
            let body: Option<Vec<u8>> = row.try_get(1)?;
            if let Some(body) = body {
                out.insert(row.try_get(0)?, Arc::new(body));
            }
        }
        Ok(out)
    }

    pub async fn subject_consent(
        &self,
        address: &str,
    ) -> Result<Option<SubjectConsent>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT id, address, created_at FROM subjects WHERE address = $1")
                .bind(address)
                .fetch_optional(&self.readers)
                .await?
        else {
            return Ok(None);
        };
        let subject_id: String = row.try_get(0)?;
        let states = self.subject_states(&subject_id).await?;
        let events = sqlx::query(
            "SELECT id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at \
             FROM consent_events WHERE subject_id = $1 ORDER BY id",
        )
        .bind(&subject_id)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(SubjectConsent {
            subject_id,
            address: row.try_get(1)?,
            created_at: row.try_get(2)?,
            states,
            events,
        }))
    }

    pub async fn subject_record(&self, address: &str) -> Result<Option<SubjectRecord>, StoreError> {
        // One read transaction: one snapshot of the WAL for every table.
        let mut tx = self.readers.begin().await?;
        let subject =
            sqlx::query("SELECT id, address, created_at FROM subjects WHERE address = $1")
                .bind(address)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| {
                    Ok::<_, StoreError>(SubjectInfo {
                        id: r.try_get(0)?,
                        address: r.try_get(1)?,
                        created_at: r.try_get(2)?,
                    })
                })
                .transpose()?;
        let (mut states, mut events) = (Vec::new(), Vec::new());
        if let Some(s) = &subject {
            states = sqlx::query(
                "SELECT campaign, status, since, event_id FROM consent_state WHERE subject_id = $1 ORDER BY campaign",
            )
            .bind(&s.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(state_from_row)
            .collect::<Result<Vec<_>, _>>()?;
            events = sqlx::query(
                "SELECT id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at \
                 FROM consent_events WHERE subject_id = $1 ORDER BY id",
            )
            .bind(&s.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        }
        let decisions = sqlx::query(
            "SELECT id, at, message_id, recipient, campaign, outcome, reason, event_id, stage \
             FROM decisions WHERE recipient = $1 ORDER BY id",
        )
        .bind(address)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(decision_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let deliveries = sqlx::query(
            "SELECT d.id, d.message_id, m.campaign, d.status, d.attempts, d.last_reply, d.created_at, d.updated_at \
             FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.recipient = $1 ORDER BY d.id",
        )
        .bind(address)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        tx.rollback().await?;
        let record = SubjectRecord {
            subject,
            states,
            events,
            decisions,
            deliveries,
        };
        Ok((!record.is_empty()).then_some(record))
    }

    pub async fn subject_by_id(&self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query("SELECT id, address FROM subjects WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.readers)
            .await?;
        row.map(|r| {
            Ok(SubjectRow {
                id: r.try_get(0)?,
                address: r.try_get(1)?,
            })
        })
        .transpose()
    }

    pub async fn subject_states(&self, subject_id: &str) -> Result<Vec<StateRow>, StoreError> {
        sqlx::query(
            "SELECT campaign, status, since, event_id FROM consent_state WHERE subject_id = $1 ORDER BY campaign",
        )
        .bind(subject_id)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(state_from_row)
        .collect()
    }

    pub async fn decisions(&self, f: &DecisionFilter) -> Result<Vec<DecisionRow>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, at, message_id, recipient, campaign, outcome, reason, event_id, stage \
             FROM decisions WHERE 1 = 1",
        );
        if let Some(r) = &f.recipient {
            q.push(" AND recipient = ").push_bind(r);
        }
        if let Some(c) = &f.campaign {
            q.push(" AND campaign = ").push_bind(c);
        }
        if let Some(s) = f.since {
            q.push(" AND at >= ").push_bind(s);
        }
        if let Some(a) = f.after_id {
            q.push(" AND id > ").push_bind(a);
        }
        q.push(" ORDER BY id LIMIT ").push_bind(f.limit);
        q.build()
            .fetch_all(&self.readers)
            .await?
            .iter()
            .map(decision_from_row)
            .collect()
    }

    pub async fn queue_depth(&self) -> Result<Vec<(String, i64)>, StoreError> {
        // Two index range counts: the partial index of due rows and the
        // status index for leased ones.
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM deliveries WHERE status IN ('queued', 'deferred') GROUP BY status \
             UNION ALL SELECT 'sending', COUNT(*) FROM deliveries WHERE status = 'sending'",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub async fn queue(&self, limit: i64) -> Result<Vec<QueueRow>, StoreError> {
        sqlx::query(
            "SELECT d.id, d.message_id, m.kind, d.recipient, m.mail_from, m.campaign, d.status, \
             d.attempts, d.next_attempt_at, d.last_reply, m.received_at \
             FROM deliveries d JOIN messages m ON m.id = d.message_id \
             WHERE d.status IN ('queued', 'sending', 'deferred', 'failed') \
             ORDER BY d.id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(queue_from_row)
        .collect()
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

async fn writer_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    loop {
        jobs.clear();
        if rx.recv_many(&mut jobs, MAX_GROUP).await == 0 {
            break;
        }
        let mut group: Vec<(Op, Reply)> = Vec::with_capacity(jobs.len());
        let mut stop = false;
        for job in jobs.drain(..) {
            match job {
                Job::Write(op, reply) if !stop => group.push((op, reply)),
                Job::Write(_, reply) => drop(reply.send(Err(StoreError::Closed))),
                Job::Stop => stop = true,
            }
        }
        if !group.is_empty() {
            run_group(&mut conn, group).await;
        }
        if stop {
            rx.close();
            while let Ok(late) = rx.try_recv() {
                if let Job::Write(_, reply) = late {
                    drop(reply.send(Err(StoreError::Closed)));
                }
            }
            break;
        }
    }
    let _ = conn.close().await;
}

/// Runs every job of the group in one transaction (one fsync for all). If
/// any job fails, the group rolls back and each job runs again alone, so a
/// bad job fails by itself and the others still commit.
async fn run_group(conn: &mut SqliteConnection, group: Vec<(Op, Reply)>) {
    let now = crate::now_ms();
    let started = std::time::Instant::now();
    if group.len() > 1 {
        let together = run_together(conn, &group, now).await;
        metrics::histogram!(crate::metrics::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        match together {
            Ok(outputs) => {
                for ((_, reply), out) in group.into_iter().zip(outputs) {
                    let _ = reply.send(Ok(out));
                }
                return;
            }
            Err(e) => {
                tracing::warn!(cause = %e, jobs = group.len(), "store: group transaction failed; running its jobs one by one");
            }
        }
    }
    for (op, reply) in group {
        let started = std::time::Instant::now();
        let result = run_together(conn, std::slice::from_ref(&(op, ())), now)
            .await
            .map(|mut outs| outs.pop().unwrap_or(Output::Unit));
        metrics::histogram!(crate::metrics::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            tracing::error!(cause = %e, "store: write failed");
        }
        let _ = reply.send(result);
    }
}

/// One transaction over these ops; their outputs, in order, after the commit.
async fn run_together<R>(
    conn: &mut SqliteConnection,
    ops: &[(Op, R)],
    now: i64,
) -> Result<Vec<Output>, StoreError> {
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let mut outputs = Vec::with_capacity(ops.len());
    // The group's messages are inserted together, the other ops one by one.
    let accepts: Vec<&NewMessage> = ops
        .iter()
        .filter_map(|(op, _)| match op {
            Op::Accept(m) => Some(&**m),
            _ => None,
        })
        .collect();
    let mut result = insert_messages(conn, &accepts, now).await;
    for (op, _) in ops {
        if result.is_err() {
            break;
        }
        match op {
            Op::Accept(_) => outputs.push(Output::Unit),
            other => match run_op(conn, other, now).await {
                Ok(o) => outputs.push(o),
                Err(e) => result = Err(e),
            },
        }
    }
    if let Err(e) = result {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e);
    }
    if let Err(e) = sqlx::query("COMMIT").execute(&mut *conn).await {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e.into());
    }
    Ok(outputs)
}

async fn run_op(conn: &mut SqliteConnection, op: &Op, now: i64) -> Result<Output, StoreError> {
    Ok(match op {
        Op::Accept(m) => {
            insert_message(conn, m, now).await?;
            Output::Unit
        }
        Op::Record(records) => Output::Recorded(record(conn, records, now).await?),
        Op::Claim {
            owner,
            now: at,
            lease_until,
            limit,
        } => Output::Claimed(claim(conn, owner, *at, *lease_until, *limit).await?),
        Op::Release(owner) => {
            let r = sqlx::query(
                "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
                 lease_owner = NULL, lease_until = NULL WHERE status = 'sending' AND lease_owner = $1",
            )
            .bind(owner)
            .execute(&mut *conn)
            .await?;
            Output::Released(r.rows_affected())
        }
        Op::Consent {
            event,
            webhook,
            follow_up,
        } => {
            let event = consent_event(conn, event, *webhook, now).await?;
            queue_follow_up(conn, follow_up.as_ref(), &event, now).await?;
            Output::Event(event)
        }
        Op::Erase { erasure, webhook } => {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await?;
            let erased = erase(conn, erasure, *webhook, now).await;
            sqlx::query("PRAGMA secure_delete = FAST")
                .execute(&mut *conn)
                .await?;
            Output::Erased(erased?)
        }
        Op::ClaimWebhooks {
            owner,
            now: at,
            lease_until,
            limit,
        } => Output::Webhooks(claim_webhooks(conn, owner, *at, *lease_until, *limit).await?),
        Op::RecordWebhook { owner, outcome } => {
            record_webhook(conn, owner, outcome, now).await?;
            Output::Unit
        }
        Op::ReleaseWebhooks(owner) => {
            let r = sqlx::query(
                "UPDATE webhook_outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL \
                 WHERE status = 'sending' AND lease_owner = $1",
            )
            .bind(owner)
            .execute(&mut *conn)
            .await?;
            Output::Released(r.rows_affected())
        }
        Op::Purge(step) => {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await?;
            let purged = retention::purge_batch(conn, step).await;
            sqlx::query("PRAGMA secure_delete = FAST")
                .execute(&mut *conn)
                .await?;
            let (removed, next) = purged?;
            Output::Purged(removed, next)
        }
        Op::Import { rows, webhook } => {
            Output::Imported(once::import(conn, rows, *webhook, now).await?)
        }
        Op::ConsentOnce { keyed, webhook } => {
            Output::Once(once::consent_once(conn, keyed, *webhook, now).await?)
        }
    })
}

/// Queues the mail `follow_up` builds from `event`, in the event's
/// transaction (its failure rolls the event back).
async fn queue_follow_up(
    conn: &mut SqliteConnection,
    follow_up: Option<&FollowUp>,
    event: &ConsentEvent,
    now: i64,
) -> Result<(), StoreError> {
    match follow_up_mail(follow_up, event)? {
        Some(mail) => insert_message(conn, &mail, now).await,
        None => Ok(()),
    }
}

/// Rows per multi-row INSERT, well under SQLite's 32766 bound parameters.
const ROWS_PER_INSERT: usize = 1000;

async fn insert_message(
    conn: &mut SqliteConnection,
    m: &NewMessage,
    now: i64,
) -> Result<(), StoreError> {
    insert_messages(conn, &[m], now).await
}

/// Inserts messages with their subjects, decisions and deliveries: four
/// multi-row statements for the whole group, not four per message.
async fn insert_messages(
    conn: &mut SqliteConnection,
    messages: &[&NewMessage],
    now: i64,
) -> Result<(), StoreError> {
    for chunk in messages.chunks(ROWS_PER_INSERT / 10) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO messages (id, kind, mail_from, client_ip, helo, auth_user, campaign, \
             header_message_id, size, body, received_at, smtputf8) ",
        );
        q.push_values(chunk, |mut b, m| {
            b.push_bind(&m.id)
                .push_bind(m.kind.as_str())
                .push_bind(&m.mail_from)
                .push_bind(&m.client_ip)
                .push_bind(&m.helo)
                .push_bind(&m.auth_user)
                .push_bind(&m.campaign)
                .push_bind(&m.header_message_id)
                .push_bind(m.body.len() as i64)
                // Nothing to deliver, nothing to keep: a body may name its
                // recipients (To:, a greeting), suppressed ones included.
                .push_bind(
                    m.recipients
                        .iter()
                        .any(|r| r.outcome == Outcome::Deliver)
                        .then_some(&m.body[..]),
                )
                .push_bind(m.received_at)
                .push_bind(m.smtputf8);
        });
        q.build().execute(&mut *conn).await?;
    }

    let new_subjects: Vec<(&NewSubject, &String)> = messages
        .iter()
        .flat_map(|m| &m.recipients)
        .filter_map(|r| r.new_subject.as_ref().map(|s| (s, &r.recipient)))
        .collect();
    for chunk in new_subjects.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO subjects (id, address, address_hash, key_id, created_at) ",
        );
        q.push_values(chunk, |mut b, (s, address)| {
            b.push_bind(&s.id)
                .push_bind(*address)
                .push_bind(&s.address_hash)
                .push_bind(&s.key_id)
                .push_bind(now);
        });
        q.push(" ON CONFLICT (address) DO NOTHING");
        q.build().execute(&mut *conn).await?;
    }

    let rows: Vec<(&NewMessage, &RecipientDecision)> = messages
        .iter()
        .flat_map(|m| m.recipients.iter().map(move |r| (*m, r)))
        .collect();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) ",
        );
        q.push_values(chunk, |mut b, (m, r)| {
            b.push_bind(&m.id).push_bind(&r.recipient);
            if r.new_subject.is_some() {
                // Two messages may have made a new subject for the same
                // address at once; the one that exists is the one to name.
                b.push("(SELECT id FROM subjects WHERE address = ")
                    .push_bind_unseparated(&r.recipient)
                    .push_unseparated(")");
            } else {
                b.push_bind(&r.subject_id);
            }
            b.push_bind(&m.campaign)
                .push_bind(r.outcome.as_str())
                .push_bind(r.reason.as_str())
                .push_bind(r.event_id)
                .push_bind("accept")
                .push_bind(m.received_at);
        });
        q.build().execute(&mut *conn).await?;
    }

    let delivered: Vec<&(&NewMessage, &RecipientDecision)> = rows
        .iter()
        .filter(|(_, r)| r.outcome == Outcome::Deliver)
        .collect();
    for chunk in delivered.chunks(ROWS_PER_INSERT) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO deliveries (message_id, recipient, status, attempts, next_attempt_at, created_at, updated_at) ",
        );
        q.push_values(chunk, |mut b, (m, r)| {
            b.push_bind(&m.id)
                .push_bind(&r.recipient)
                .push_bind("queued")
                .push_bind(0i64)
                .push_bind(m.received_at)
                .push_bind(now)
                .push_bind(now);
        });
        q.build().execute(&mut *conn).await?;
    }
    Ok(())
}

async fn claim(
    conn: &mut SqliteConnection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    // Rows whose lease expired (a worker that stopped without handing back)
    // are due again as well.
    // Due rows first, through the partial index; then rows whose lease
    // expired (a worker that stopped without handing back).
    let mut rows = sqlx::query(
        "UPDATE deliveries SET status = 'sending', lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM deliveries \
            WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $3 \
            ORDER BY next_attempt_at LIMIT $4) \
         RETURNING id, message_id, recipient, attempts",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let room = limit - rows.len() as i64;
    if room > 0 {
        rows.extend(
            sqlx::query(
                "UPDATE deliveries SET lease_owner = $1, lease_until = $2, updated_at = $3 \
                 WHERE id IN (SELECT id FROM deliveries WHERE status = 'sending' AND lease_until < $3 LIMIT $4) \
                 RETURNING id, message_id, recipient, attempts",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(room)
            .fetch_all(&mut *conn)
            .await?,
        );
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut claimed: Vec<ClaimedDelivery> = Vec::with_capacity(rows.len());
    let mut message_ids: Vec<String> = Vec::new();
    for r in &rows {
        let message_id: String = r.try_get(1)?;
        if !message_ids.contains(&message_id) {
            message_ids.push(message_id.clone());
        }
        claimed.push(ClaimedDelivery {
            id: r.try_get(0)?,
            message_id,
            kind: MessageKind::Relay,
            recipient: r.try_get(2)?,
            mail_from: String::new(),
            campaign: String::new(),
            received_at: 0,
            attempts: r.try_get(3)?,
            smtputf8: false,
        });
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT id, kind, mail_from, campaign, received_at, smtputf8 FROM messages WHERE id IN (",
    );
    let mut sep = q.separated(", ");
    for id in &message_ids {
        sep.push_bind(id);
    }
    q.push(")");
    let mut meta = HashMap::new();
    for r in q.build().fetch_all(&mut *conn).await? {
        let id: String = r.try_get(0)?;
        let kind: String = r.try_get(1)?;
        let kind: MessageKind = kind
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("messages.kind: {e}")))?;
        meta.insert(
            id,
            (
                kind,
                r.try_get::<String, _>(2)?,
                r.try_get::<String, _>(3)?,
                r.try_get::<i64, _>(4)?,
                r.try_get::<bool, _>(5)?,
            ),
        );
    }
    for c in &mut claimed {
        let (kind, from, campaign, received_at, smtputf8) = meta
            .get(&c.message_id)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery {} has no message", c.id)))?;
        c.kind = *kind;
        c.mail_from.clone_from(from);
        c.campaign.clone_from(campaign);
        c.received_at = *received_at;
        c.smtputf8 = *smtputf8;
    }
    Ok(claimed)
}

async fn record(
    conn: &mut SqliteConnection,
    records: &[AttemptRecord],
    now: i64,
) -> Result<u64, StoreError> {
    if records.is_empty() {
        return Ok(0);
    }
    // One statement for the whole batch; only rows still leased are
    // updated, so an outcome never overwrites a later one.
    let mut q = QueryBuilder::<Sqlite>::new(
        "UPDATE deliveries SET status = v.column2, attempts = attempts + v.column3, \
         next_attempt_at = v.column4, last_reply = v.column5, lease_owner = NULL, lease_until = NULL, updated_at = ",
    );
    q.push_bind(now).push(" FROM (");
    q.push_values(records, |mut b, r| {
        let final_status = matches!(
            r.status,
            DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::SuppressedLate
        );
        b.push_bind(r.delivery_id)
            .push_bind(r.status.as_str())
            .push_bind(i64::from(r.attempted))
            .push_bind(if final_status { now } else { r.next_attempt_at })
            .push_bind(&r.reply);
    });
    q.push(") AS v WHERE deliveries.id = v.column1 AND deliveries.status = 'sending' RETURNING id");
    let recorded: std::collections::HashSet<i64> =
        retention::first_column(&q.build().fetch_all(&mut *conn).await?)?
            .into_iter()
            .collect();
    // A row no longer `sending` was closed meanwhile (erased, or its lease
    // expired and another attempt owns it): its outcome is not ours to
    // record, nor a late decision or a bounce, whose text would quote an
    // address that erasure has just removed.
    for r in records.iter().filter(|r| recorded.contains(&r.delivery_id)) {
        if let Some(l) = &r.late_decision {
            sqlx::query(
                "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) \
                 VALUES ($1, $2, $3, $4, 'suppress', $5, $6, 'send', $7)",
            )
            .bind(&l.message_id)
            .bind(&l.recipient)
            .bind(&l.subject_id)
            .bind(&l.campaign)
            .bind(l.reason.as_str())
            .bind(l.event_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(dsn) = &r.dsn {
            insert_message(conn, dsn, now).await?;
        }
    }
    let ended: Vec<i64> = records
        .iter()
        .filter(|r| {
            recorded.contains(&r.delivery_id)
                && matches!(
                    r.status,
                    DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::SuppressedLate
                )
        })
        .map(|r| r.delivery_id)
        .collect();
    retention::scrub_erasure_notices(conn, &ended).await
}

async fn consent_event(
    conn: &mut SqliteConnection,
    e: &NewConsentEvent,
    webhook: bool,
    now: i64,
) -> Result<ConsentEvent, StoreError> {
    sqlx::query(
        "INSERT INTO subjects (id, address, address_hash, key_id, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (address) DO NOTHING",
    )
    .bind(&e.new_subject.id)
    .bind(&e.address)
    .bind(&e.new_subject.address_hash)
    .bind(&e.new_subject.key_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let subject_id: String = sqlx::query("SELECT id FROM subjects WHERE address = $1")
        .bind(&e.address)
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let event = insert_event(
        conn,
        EventRow {
            subject_id: &subject_id,
            campaign: &e.campaign,
            action: e.action,
            at: e.at,
            source: e.source,
            ip: e.ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            evidence: e.evidence.as_deref(),
        },
        webhook,
        now,
    )
    .await?;
    let current = sqlx::query(
        "SELECT status, since, event_id FROM consent_state WHERE subject_id = $1 AND campaign = $2",
    )
    .bind(&subject_id)
    .bind(&e.campaign)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| super::state_from(&r.try_get::<String, _>(0)?, r.try_get(1)?, r.try_get(2)?))
    .transpose()?;
    match consent::apply(current, e.action, e.at, event.id) {
        Some(s) if Some(s) != current => {
            sqlx::query(
                "INSERT INTO consent_state (subject_id, campaign, status, since, event_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (subject_id, campaign) DO UPDATE SET status = excluded.status, since = excluded.since, event_id = excluded.event_id",
            )
            .bind(&subject_id)
            .bind(&e.campaign)
            .bind(s.status.as_str())
            .bind(s.since)
            .bind(s.event_id)
            .execute(&mut *conn)
            .await?;
        }
        Some(_) => {}
        None => {
            sqlx::query("DELETE FROM consent_state WHERE subject_id = $1 AND campaign = $2")
                .bind(&subject_id)
                .bind(&e.campaign)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(event)
}

/// Erasure, in the caller's transaction. The subject keeps its id and
/// keyed hash (the suppression) but loses its address; its consent events
/// stay as the record that consent existed, without their proof (IP, user
/// agent, evidence); an `erase` event is appended and the derived state
/// dropped. Decision and delivery rows name `erased:<address_hash>` instead
/// of the address; copies not yet sent become `suppressed-late`
/// (reply `erased`) with a decision row saying so; bodies of messages whose
/// only recipient was the address are removed.
async fn erase(
    conn: &mut SqliteConnection,
    e: &Erasure,
    webhook: bool,
    now: i64,
) -> Result<Option<ErasureReport>, StoreError> {
    let live = sqlx::query("SELECT id, address_hash FROM subjects WHERE address = $1")
        .bind(&e.address)
        .fetch_optional(&mut *conn)
        .await?;
    let (subject_id, address_hash) = match live {
        Some(r) => {
            let id: String = r.try_get(0)?;
            sqlx::query("UPDATE subjects SET address = NULL, erased_at = $2 WHERE id = $1")
                .bind(&id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            (id, r.try_get::<String, _>(1)?)
        }
        None => {
            let known: i64 = sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM decisions WHERE recipient = $1) \
                 OR EXISTS (SELECT 1 FROM deliveries WHERE recipient = $1)",
            )
            .bind(&e.address)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
            if known == 0 {
                return Ok(None);
            }
            let s = &e.new_subject;
            sqlx::query(
                "INSERT INTO subjects (id, address, address_hash, key_id, created_at, erased_at) \
                 VALUES ($1, NULL, $2, $3, $4, $4)",
            )
            .bind(&s.id)
            .bind(&s.address_hash)
            .bind(&s.key_id)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            (s.id.clone(), s.address_hash.clone())
        }
    };
    let events_kept = sqlx::query(
        "UPDATE consent_events SET ip = NULL, user_agent = NULL, evidence = NULL WHERE subject_id = $1",
    )
    .bind(&subject_id)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    once::forget(conn, &subject_id).await?;
    let event_id = insert_event(
        conn,
        EventRow {
            subject_id: &subject_id,
            campaign: consent::ALL_CAMPAIGNS,
            action: Action::Erase,
            at: e.at,
            source: e.source,
            ip: None,
            user_agent: None,
            evidence: None,
        },
        webhook,
        now,
    )
    .await?
    .id;
    sqlx::query("DELETE FROM consent_state WHERE subject_id = $1")
        .bind(&subject_id)
        .execute(&mut *conn)
        .await?;
    let tag = crate::subject::erased_tag(&address_hash);
    // Copies not sent yet are never sent. A copy being sent right now
    // cannot be called back, but its row is closed too: the worker records
    // outcomes only on rows still `sending`, so it can never be retried to
    // the tag that replaces the address.
    let cancelled = sqlx::query(
        "UPDATE deliveries SET status = 'suppressed-late', last_reply = 'erased', recipient = $2, \
         lease_owner = NULL, lease_until = NULL, next_attempt_at = $3, updated_at = $3 \
         WHERE recipient = $1 AND status IN ('queued', 'deferred', 'sending') RETURNING message_id",
    )
    .bind(&e.address)
    .bind(&tag)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    for r in &cancelled {
        let message_id: String = r.try_get(0)?;
        sqlx::query(
            "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) \
             SELECT id, $2, $3, campaign, 'suppress', 'erased', $4, 'send', $5 FROM messages WHERE id = $1",
        )
        .bind(&message_id)
        .bind(&tag)
        .bind(&subject_id)
        .bind(event_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    let deliveries = sqlx::query("UPDATE deliveries SET recipient = $2 WHERE recipient = $1")
        .bind(&e.address)
        .bind(&tag)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        + cancelled.len() as u64;
    let decisions = sqlx::query("UPDATE decisions SET recipient = $2 WHERE recipient = $1")
        .bind(&e.address)
        .bind(&tag)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    // A body may name its recipient (To:, a greeting). Removed when the
    // address was its only recipient and nothing is left to send; a body
    // shared with other recipients stays until `[retention]` purges it.
    let bodies_removed = sqlx::query(
        "UPDATE messages SET body = NULL WHERE body IS NOT NULL \
         AND id IN (SELECT message_id FROM decisions WHERE recipient = $1) \
         AND NOT EXISTS (SELECT 1 FROM decisions o WHERE o.message_id = messages.id AND o.recipient <> $1) \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
             AND d.status IN ('queued', 'sending', 'deferred'))",
    )
    .bind(&tag)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if let Some(notice) = &e.notice {
        // Its one row names the address until its delivery ends; the
        // subject lets the scrub put the erased tag in its place.
        let mut notice = notice.clone();
        for r in &mut notice.recipients {
            r.subject_id = Some(subject_id.clone());
            r.new_subject = None;
            r.event_id = Some(event_id);
        }
        insert_message(conn, &notice, now).await?;
    }
    Ok(Some(ErasureReport {
        subject_id,
        address_hash,
        event_id,
        events_kept,
        decisions,
        deliveries,
        cancelled: cancelled.len() as u64,
        bodies_removed,
    }))
}

/// A consent event row to insert.
struct EventRow<'a> {
    subject_id: &'a str,
    campaign: &'a str,
    action: Action,
    at: i64,
    source: Source,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
    evidence: Option<&'a str>,
}

/// Appends one consent event, in the caller's transaction, and with
/// `webhook` (`[webhook]` is set) queues it in `webhook_outbox` in the same
/// transaction. Every insert into `consent_events` goes through here (or a
/// batched twin that writes the outbox rows as well): an event committed
/// without its outbox row would never reach the CRM. After the commit, the
/// `SqliteStore` method that submitted the op wakes the dispatcher
/// (`events.notify_one()`).
async fn insert_event(
    conn: &mut SqliteConnection,
    e: EventRow<'_>,
    webhook: bool,
    now: i64,
) -> Result<ConsentEvent, StoreError> {
    let row = sqlx::query(
        "INSERT INTO consent_events (subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at",
    )
    .bind(e.subject_id)
    .bind(e.campaign)
    .bind(e.action.as_str())
    .bind(e.at)
    .bind(e.source.as_str())
    .bind(e.ip)
    .bind(e.user_agent)
    .bind(e.evidence)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let event = event_from_row(&row)?;
    if webhook {
        sqlx::query(
            "INSERT INTO webhook_outbox (event_id, subject_id, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, 'pending', 0, $3, $3)",
        )
        .bind(event.id)
        .bind(e.subject_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(event)
}

/// Leases the head row of each subject's outbox queue that is due (or
/// whose lease expired), with the event as it stands now.
async fn claim_webhooks(
    conn: &mut SqliteConnection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<ClaimedWebhook>, StoreError> {
    // Due rows through the partial index; a row is a head when no older
    // row of its subject is left (a later event waits for the earlier one).
    let mut leased = sqlx::query(
        "UPDATE webhook_outbox SET status = 'sending', lease_owner = $1, lease_until = $2 \
         WHERE event_id IN (SELECT w.event_id FROM webhook_outbox w \
            WHERE w.status = 'pending' AND w.next_attempt_at <= $3 \
            AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.subject_id = w.subject_id AND o.event_id < w.event_id) \
            ORDER BY w.next_attempt_at, w.event_id LIMIT $4) \
         RETURNING event_id, attempts",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let room = limit - leased.len() as i64;
    if room > 0 {
        // Rows of a node that stopped without handing them back.
        leased.extend(
            sqlx::query(
                "UPDATE webhook_outbox SET lease_owner = $1, lease_until = $2 \
                 WHERE event_id IN (SELECT event_id FROM webhook_outbox \
                    WHERE status = 'sending' AND lease_until < $3 LIMIT $4) \
                 RETURNING event_id, attempts",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(room)
            .fetch_all(&mut *conn)
            .await?,
        );
    }
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    let mut attempts: HashMap<i64, i64> = HashMap::with_capacity(leased.len());
    for r in &leased {
        attempts.insert(r.try_get(0)?, r.try_get(1)?);
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT e.id, e.subject_id, e.campaign, e.action, e.at, e.source, e.ip, e.user_agent, e.evidence, \
         e.recorded_at, s.address FROM consent_events e JOIN subjects s ON s.id = e.subject_id WHERE e.id IN (",
    );
    let mut sep = q.separated(", ");
    for id in attempts.keys() {
        sep.push_bind(*id);
    }
    q.push(") ORDER BY e.id");
    q.build()
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let event = event_from_row(r)?;
            Ok(ClaimedWebhook {
                attempts: attempts.get(&event.id).copied().unwrap_or(0),
                email: r.try_get(10)?,
                event,
            })
        })
        .collect()
}

/// Records one attempt, only on a row still leased to `owner`: a lease that
/// expired and went to another node is that node's to record.
async fn record_webhook(
    conn: &mut SqliteConnection,
    owner: &str,
    outcome: &WebhookOutcome,
    now: i64,
) -> Result<(), StoreError> {
    match outcome {
        WebhookOutcome::Delivered { event_id } => {
            sqlx::query("DELETE FROM webhook_outbox WHERE event_id = $1 AND lease_owner = $2")
                .bind(event_id)
                .bind(owner)
                .execute(&mut *conn)
                .await?;
        }
        WebhookOutcome::Failed {
            event_id,
            error,
            next_attempt_at,
        } => {
            let next = (*next_attempt_at).max(now);
            let failed = sqlx::query(
                "UPDATE webhook_outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = $3, \
                 last_error = $4, lease_owner = NULL, lease_until = NULL WHERE event_id = $1 AND lease_owner = $2 \
                 RETURNING subject_id",
            )
            .bind(event_id)
            .bind(owner)
            .bind(next)
            .bind(error)
            .fetch_optional(&mut *conn)
            .await?;
            // The subject's later events wait as long (they cannot go
            // first), so they do not count as due in the meantime.
            if let Some(r) = failed {
                sqlx::query(
                    "UPDATE webhook_outbox SET next_attempt_at = $2 \
                     WHERE subject_id = $1 AND status = 'pending' AND next_attempt_at < $2",
                )
                .bind(r.try_get::<String, _>(0)?)
                .bind(next)
                .execute(&mut *conn)
                .await?;
            }
        }
    }
    Ok(())
}
