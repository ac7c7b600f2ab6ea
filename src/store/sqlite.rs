//! The embedded SQLite store: WAL, `synchronous=FULL`, a pool of readers and
//! one writer task that commits the transactions of concurrent callers
//! together (group commit), so throughput is not one fsync per message.
//! Each caller's work runs under its own SAVEPOINT, so one failing job rolls
//! back alone and the others still commit.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::consent;

/// Jobs a writer transaction can hold at most.
const MAX_GROUP: usize = 512;

enum Job {
    Accept(NewMessage, oneshot::Sender<Result<(), StoreError>>),
    Record(Vec<AttemptRecord>, oneshot::Sender<Result<(), StoreError>>),
    Claim {
        owner: String,
        now: i64,
        lease_until: i64,
        limit: i64,
        reply: oneshot::Sender<Result<Vec<ClaimedDelivery>, StoreError>>,
    },
    Release(String, oneshot::Sender<Result<u64, StoreError>>),
    Consent(
        Box<NewConsentEvent>,
        oneshot::Sender<Result<ConsentEvent, StoreError>>,
    ),
    /// Finish what is queued before this, then stop.
    Stop,
}

/// What a job produced, held until the group commits.
enum Done {
    Unit(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
    Claimed(
        oneshot::Sender<Result<Vec<ClaimedDelivery>, StoreError>>,
        Result<Vec<ClaimedDelivery>, StoreError>,
    ),
    Released(
        oneshot::Sender<Result<u64, StoreError>>,
        Result<u64, StoreError>,
    ),
    Event(
        oneshot::Sender<Result<ConsentEvent, StoreError>>,
        Result<ConsentEvent, StoreError>,
    ),
}

impl Done {
    fn fail(self, err: impl Fn() -> StoreError) {
        // A receiver that went away (client disconnected) is not an error here.
        match self {
            Done::Unit(tx, _) => drop(tx.send(Err(err()))),
            Done::Claimed(tx, _) => drop(tx.send(Err(err()))),
            Done::Released(tx, _) => drop(tx.send(Err(err()))),
            Done::Event(tx, _) => drop(tx.send(Err(err()))),
        }
    }
    fn deliver(self) {
        match self {
            Done::Unit(tx, r) => drop(tx.send(r)),
            Done::Claimed(tx, r) => drop(tx.send(r)),
            Done::Released(tx, r) => drop(tx.send(r)),
            Done::Event(tx, r) => drop(tx.send(r)),
        }
    }
}

pub struct SqliteStore {
    readers: SqlitePool,
    writer: mpsc::Sender<Job>,
    writer_task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Held while `serve` runs: one node per SQLite database.
    _lock: Option<File>,
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
        }
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(writer_loop(conn, rx));
        Ok(SqliteStore {
            readers,
            writer: tx,
            writer_task: tokio::sync::Mutex::new(Some(task)),
            _lock: lock,
        })
    }

    async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(make(tx))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    pub async fn accept_message(&self, message: NewMessage) -> Result<(), StoreError> {
        self.submit(|tx| Job::Accept(message, tx)).await
    }

    pub async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<(), StoreError> {
        self.submit(|tx| Job::Record(records, tx)).await
    }

    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let owner = owner.to_owned();
        self.submit(|reply| Job::Claim {
            owner,
            now,
            lease_until,
            limit,
            reply,
        })
        .await
    }

    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.submit(|tx| Job::Release(owner, tx)).await
    }

    pub async fn append_consent_event(
        &self,
        event: NewConsentEvent,
    ) -> Result<ConsentEvent, StoreError> {
        self.submit(|tx| Job::Consent(Box::new(event), tx)).await
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
        let mut known: HashMap<String, KnownRecipient> = HashMap::with_capacity(addresses.len());
        if addresses.is_empty() {
            return Ok(known);
        }
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT s.address, s.id, cs.campaign, cs.status, cs.since, cs.event_id \
             FROM subjects s LEFT JOIN consent_state cs ON cs.subject_id = s.id AND cs.campaign IN (",
        );
        q.push_bind(campaign).push(", '*') WHERE s.address IN (");
        let mut sep = q.separated(", ");
        for a in addresses {
            sep.push_bind(a);
        }
        q.push(")");
        let rows = q.build().fetch_all(&self.readers).await?;
        for row in rows {
            let address: String = row.try_get(0)?;
            let entry = known.entry(address).or_default();
            entry.subject_id = Some(row.try_get(1)?);
            let state_campaign: Option<String> = row.try_get(2)?;
            if let Some(c) = state_campaign {
                let state = super::state_from(
                    &row.try_get::<String, _>(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                )?;
                if c == consent::ALL_CAMPAIGNS {
                    entry.consent.all = Some(state);
                } else {
                    entry.consent.campaign = Some(state);
                }
            }
        }
        // Addresses with no live subject may have been erased: only their
        // keyed hash remains.
        let unknown: Vec<(usize, &String)> = addresses
            .iter()
            .enumerate()
            .filter(|(_, a)| !known.contains_key(*a))
            .collect();
        if !unknown.is_empty() {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT address_hash FROM subjects WHERE address IS NULL AND address_hash IN (",
            );
            let mut sep = q.separated(", ");
            let mut any = false;
            for (i, _) in &unknown {
                for h in hashes.get(*i).into_iter().flatten() {
                    sep.push_bind(h);
                    any = true;
                }
            }
            q.push(")");
            if any {
                let erased: Vec<String> = q
                    .build()
                    .fetch_all(&self.readers)
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
                for (i, address) in unknown {
                    let is_erased = hashes
                        .get(i)
                        .is_some_and(|hs| hs.iter().any(|h| erased.contains(h)));
                    if is_erased {
                        known.entry(address.clone()).or_default().consent.erased = true;
                    }
                }
            }
        }
        Ok(known)
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
        let states = sqlx::query(
            "SELECT campaign, status, since, event_id FROM consent_state WHERE subject_id = $1 ORDER BY campaign",
        )
        .bind(&subject_id)
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(|r| {
            let s = super::state_from(&r.try_get::<String, _>(1)?, r.try_get(2)?, r.try_get(3)?)?;
            Ok(StateRow {
                campaign: r.try_get(0)?,
                status: s.status,
                since: s.since,
                event_id: s.event_id,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
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
            .map(|r| {
                Ok(DecisionRow {
                    id: r.try_get(0)?,
                    at: r.try_get(1)?,
                    message_id: r.try_get(2)?,
                    recipient: r.try_get(3)?,
                    campaign: r.try_get(4)?,
                    outcome: r.try_get(5)?,
                    reason: r.try_get(6)?,
                    event_id: r.try_get(7)?,
                    stage: r.try_get(8)?,
                })
            })
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
        .map(|r| {
            Ok(QueueRow {
                id: r.try_get(0)?,
                message_id: r.try_get(1)?,
                kind: r.try_get(2)?,
                recipient: r.try_get(3)?,
                mail_from: r.try_get(4)?,
                campaign: r.try_get(5)?,
                status: r.try_get(6)?,
                attempts: r.try_get(7)?,
                next_attempt_at: r.try_get(8)?,
                last_reply: r.try_get(9)?,
                received_at: r.try_get(10)?,
            })
        })
        .collect()
    }
}

fn take_lock(db: &Path) -> Result<File, StoreError> {
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

fn event_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ConsentEvent, StoreError> {
    Ok(ConsentEvent {
        id: r.try_get(0)?,
        subject_id: r.try_get(1)?,
        campaign: r.try_get(2)?,
        action: r.try_get(3)?,
        at: r.try_get(4)?,
        source: r.try_get(5)?,
        ip: r.try_get(6)?,
        user_agent: r.try_get(7)?,
        evidence: r.try_get(8)?,
        recorded_at: r.try_get(9)?,
    })
}

async fn writer_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    loop {
        jobs.clear();
        if rx.recv_many(&mut jobs, MAX_GROUP).await == 0 {
            break;
        }
        let stop = jobs.iter().position(|j| matches!(j, Job::Stop));
        if let Some(at) = stop {
            for late in jobs.drain(at..).skip(1) {
                fail_job(late, "the store is shutting down");
            }
        }
        if !jobs.is_empty() {
            run_group(&mut conn, jobs.drain(..)).await;
        }
        if stop.is_some() {
            rx.close();
            while let Ok(late) = rx.try_recv() {
                fail_job(late, "the store is shutting down");
            }
            break;
        }
    }
    let _ = conn.close().await;
}

async fn run_group(conn: &mut SqliteConnection, jobs: impl Iterator<Item = Job>) {
    let jobs: Vec<Job> = jobs.collect();
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        tracing::error!(cause = %e, "store: cannot begin a transaction");
        let msg = e.to_string();
        for job in jobs {
            fail_job(job, &msg);
        }
        return;
    }
    let now = crate::now_ms();
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = sqlx::query("SAVEPOINT job").execute(&mut *conn).await {
            let msg = e.to_string();
            fail_job(job, &msg);
            continue;
        }
        let (result_ok, d) = run_job(conn, job, now).await;
        let end = if result_ok {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        if let Err(e) = sqlx::raw_sql(end).execute(&mut *conn).await {
            tracing::error!(cause = %e, "store: savepoint failed");
        }
        done.push(d);
    }
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => done.into_iter().for_each(Done::deliver),
        Err(e) => {
            tracing::error!(cause = %e, "store: commit failed");
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            let msg = e.to_string();
            for d in done {
                d.fail(|| StoreError::Db(sqlx::Error::Protocol(msg.clone())));
            }
        }
    }
}

fn fail_job(job: Job, msg: &str) {
    let err = || StoreError::Db(sqlx::Error::Protocol(msg.to_owned()));
    match job {
        Job::Accept(_, tx) | Job::Record(_, tx) => drop(tx.send(Err(err()))),
        Job::Claim { reply, .. } => drop(reply.send(Err(err()))),
        Job::Release(_, tx) => drop(tx.send(Err(err()))),
        Job::Consent(_, tx) => drop(tx.send(Err(err()))),
        Job::Stop => {}
    }
}

/// Runs one job inside the group's transaction; `false` when its savepoint must roll back.
async fn run_job(conn: &mut SqliteConnection, job: Job, now: i64) -> (bool, Done) {
    match job {
        Job::Accept(m, tx) => {
            let r = insert_message(conn, &m, now).await;
            (r.is_ok(), Done::Unit(tx, r))
        }
        Job::Record(records, tx) => {
            let r = record(conn, &records, now).await;
            (r.is_ok(), Done::Unit(tx, r))
        }
        Job::Claim {
            owner,
            now: at,
            lease_until,
            limit,
            reply,
        } => {
            let r = claim(conn, &owner, at, lease_until, limit).await;
            (r.is_ok(), Done::Claimed(reply, r))
        }
        Job::Release(owner, tx) => {
            let r = sqlx::query(
                "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
                 lease_owner = NULL, lease_until = NULL WHERE status = 'sending' AND lease_owner = $1",
            )
            .bind(&owner)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
            .map_err(StoreError::from);
            (r.is_ok(), Done::Released(tx, r))
        }
        Job::Consent(e, tx) => {
            let r = consent_event(conn, &e, now).await;
            (r.is_ok(), Done::Event(tx, r))
        }
        Job::Stop => unreachable!("Stop is taken out of a group before it runs"),
    }
}

async fn insert_message(
    conn: &mut SqliteConnection,
    m: &NewMessage,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO messages (id, kind, mail_from, client_ip, helo, auth_user, campaign, \
         header_message_id, size, body, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&m.id)
    .bind(m.kind.as_str())
    .bind(&m.mail_from)
    .bind(&m.client_ip)
    .bind(&m.helo)
    .bind(&m.auth_user)
    .bind(&m.campaign)
    .bind(&m.header_message_id)
    .bind(m.body.len() as i64)
    .bind(&m.body[..])
    .bind(m.received_at)
    .execute(&mut *conn)
    .await?;

    let new_subjects: Vec<(&NewSubject, &String)> = m
        .recipients
        .iter()
        .filter_map(|r| r.new_subject.as_ref().map(|s| (s, &r.recipient)))
        .collect();
    if !new_subjects.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO subjects (id, address, address_hash, key_id, created_at) ",
        );
        q.push_values(&new_subjects, |mut b, (s, address)| {
            b.push_bind(&s.id)
                .push_bind(*address)
                .push_bind(&s.address_hash)
                .push_bind(&s.key_id)
                .push_bind(now);
        });
        q.push(" ON CONFLICT (address) DO NOTHING");
        q.build().execute(&mut *conn).await?;
    }

    if !m.recipients.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) ",
        );
        q.push_values(&m.recipients, |mut b, r| {
            b.push_bind(&m.id)
                .push_bind(&r.recipient)
                .push_bind(
                    r.subject_id
                        .as_ref()
                        .or(r.new_subject.as_ref().map(|s| &s.id)),
                )
                .push_bind(&m.campaign)
                .push_bind(r.outcome.as_str())
                .push_bind(r.reason.as_str())
                .push_bind(r.event_id)
                .push_bind("accept")
                .push_bind(m.received_at);
        });
        q.build().execute(&mut *conn).await?;
    }

    let delivered: Vec<&RecipientDecision> = m
        .recipients
        .iter()
        .filter(|r| r.outcome == Outcome::Deliver)
        .collect();
    if !delivered.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO deliveries (message_id, recipient, status, attempts, next_attempt_at, created_at, updated_at) ",
        );
        q.push_values(&delivered, |mut b, r| {
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
    let rows = sqlx::query(
        "UPDATE deliveries SET status = 'sending', lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT id FROM deliveries \
            WHERE (status IN ('queued', 'deferred') AND next_attempt_at <= $3) \
               OR (status = 'sending' AND lease_until < $3) \
            ORDER BY next_attempt_at LIMIT $4) \
         RETURNING id, message_id, recipient, attempts",
    )
    .bind(owner)
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
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
        });
    }
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT id, kind, mail_from, campaign, received_at FROM messages WHERE id IN (",
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
            ),
        );
    }
    for c in &mut claimed {
        let (kind, from, campaign, received_at) = meta
            .get(&c.message_id)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery {} has no message", c.id)))?;
        c.kind = *kind;
        c.mail_from.clone_from(from);
        c.campaign.clone_from(campaign);
        c.received_at = *received_at;
    }
    Ok(claimed)
}

async fn record(
    conn: &mut SqliteConnection,
    records: &[AttemptRecord],
    now: i64,
) -> Result<(), StoreError> {
    for r in records {
        let final_status = matches!(
            r.status,
            DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::SuppressedLate
        );
        sqlx::query(
            "UPDATE deliveries SET status = $1, attempts = attempts + $2, next_attempt_at = $3, \
             last_reply = $4, lease_owner = NULL, lease_until = NULL, updated_at = $5 \
             WHERE id = $6 AND status = 'sending'",
        )
        .bind(r.status.as_str())
        .bind(i64::from(r.attempted))
        .bind(if final_status { now } else { r.next_attempt_at })
        .bind(&r.reply)
        .bind(now)
        .bind(r.delivery_id)
        .execute(&mut *conn)
        .await?;
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
    Ok(())
}

async fn consent_event(
    conn: &mut SqliteConnection,
    e: &NewConsentEvent,
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
    let row = sqlx::query(
        "INSERT INTO consent_events (subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         RETURNING id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at",
    )
    .bind(&subject_id)
    .bind(&e.campaign)
    .bind(e.action.as_str())
    .bind(e.at)
    .bind(e.source.as_str())
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(&e.evidence)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    let event = event_from_row(&row)?;
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
