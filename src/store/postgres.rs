//! The shared PostgreSQL store: several relay nodes use one database for
//! consent records and the queue. Each operation is its own transaction on
//! a pool (PostgreSQL commits concurrent transactions together itself);
//! workers lease due deliveries with `FOR UPDATE SKIP LOCKED` and a lease
//! expiry, so two nodes never take the same row and a dead node's rows are
//! taken again once its leases expire.
//!
//! The operations follow `sqlite.rs` one for one, in the same order, with
//! the same meaning; lists are bound as arrays (`= ANY($1)`, `UNNEST`).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use super::rows::{
    self, decision_from_row, delivery_from_row, event_from_row, queue_from_row, state_from_row,
};
use super::*;
use crate::consent;

mod once;
mod retention;
mod webhooks;

pub struct PgStore {
    pool: PgPool,
    /// Consent events are queued in `webhook_outbox` (`[webhook]` is set).
    webhook_outbox: bool,
    /// Notified after a consent event of this process was committed (other
    /// nodes' events are found by the dispatcher's poll).
    events: Arc<tokio::sync::Notify>,
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

    pub fn events_written(&self) -> Arc<tokio::sync::Notify> {
        self.events.clone()
    }

    pub async fn accept_message(&self, message: NewMessage) -> Result<(), StoreError> {
        let now = crate::now_ms();
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        insert_messages(&mut tx, &[&message], now).await?;
        commit(tx, started).await?;
        Ok(())
    }

    pub async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<(), StoreError> {
        let now = crate::now_ms();
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        record(&mut tx, &records, now).await?;
        commit(tx, started).await?;
        Ok(())
    }

    pub async fn purge_batch(
        &self,
        step: PurgeStep,
    ) -> Result<(PurgeReport, Option<PurgeStep>), StoreError> {
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        // One node runs each batch: a node purging at the same time waits
        // here, then finds what the first removed already gone (no two
        // batches delete the same rows in different orders, so no deadlock).
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(retention::PURGE_LOCK)
            .execute(&mut *tx)
            .await?;
        let purged = retention::purge_batch(&mut tx, &step).await?;
        commit(tx, started).await?;
        Ok(purged)
    }

    pub async fn purge_count(&self, cutoffs: PurgeCutoffs) -> Result<PurgeReport, StoreError> {
        let mut tx = self.read_snapshot().await?;
        let report = retention::purge_count(&mut tx, cutoffs).await?;
        tx.rollback().await?;
        Ok(report)
    }

    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        claim(&mut conn, owner, now, lease_until, limit).await
    }

    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
             lease_owner = NULL, lease_until = NULL WHERE status = 'sending' AND lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn append_consent_event(
        &self,
        event: NewConsentEvent,
        follow_up: Option<FollowUp>,
    ) -> Result<ConsentEvent, StoreError> {
        let now = crate::now_ms();
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        let event = consent_event(&mut tx, &event, self.webhook_outbox, now).await?;
        queue_follow_up(&mut tx, follow_up.as_ref(), &event, now).await?;
        commit(tx, started).await?;
        self.events.notify_one();
        Ok(event)
    }

    pub async fn erase(&self, erasure: Erasure) -> Result<Option<ErasureReport>, StoreError> {
        let now = crate::now_ms();
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        let report = erase(&mut tx, &erasure, self.webhook_outbox, now).await?;
        commit(tx, started).await?;
        if report.is_some() {
            self.events.notify_one();
        }
        Ok(report)
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
        let all_hashes: Vec<&String> = hashes.iter().flatten().collect();
        let rows = sqlx::query(
            "SELECT s.address, s.id, s.address_hash, cs.campaign, cs.status, cs.since, cs.event_id \
             FROM subjects s LEFT JOIN consent_state cs ON cs.subject_id = s.id AND cs.campaign IN ($1, '*') \
             WHERE s.address = ANY($2) OR (s.address IS NULL AND s.address_hash = ANY($3))",
        )
        .bind(campaign)
        .bind(addresses)
        .bind(&all_hashes)
        .fetch_all(&self.pool)
        .await?;
        rows::known_recipients(&rows, addresses, hashes)
    }

    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('queued', 'deferred')",
        )
        .fetch_one(&self.pool)
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
        let rows = sqlx::query("SELECT id, body FROM messages WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
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
        // One snapshot for the subject, its state and its events.
        let mut tx = self.read_snapshot().await?;
        let Some(row) =
            sqlx::query("SELECT id, address, created_at FROM subjects WHERE address = $1")
                .bind(address)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let subject_id: String = row.try_get(0)?;
        let states = states_of(&mut tx, &subject_id).await?;
        let events = events_of(&mut tx, &subject_id).await?;
        tx.rollback().await?;
        Ok(Some(SubjectConsent {
            subject_id,
            address: row.try_get(1)?,
            created_at: row.try_get(2)?,
            states,
            events,
        }))
    }

    pub async fn subject_record(&self, address: &str) -> Result<Option<SubjectRecord>, StoreError> {
        // One read transaction: one snapshot for every table.
        let mut tx = self.read_snapshot().await?;
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
            states = states_of(&mut tx, &s.id).await?;
            events = events_of(&mut tx, &s.id).await?;
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
            .fetch_optional(&self.pool)
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
        let mut conn = self.pool.acquire().await?;
        states_of(&mut conn, subject_id).await
    }

    pub async fn decisions(&self, f: &DecisionFilter) -> Result<Vec<DecisionRow>, StoreError> {
        let mut q = QueryBuilder::<Postgres>::new(
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
            .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
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
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(queue_from_row)
        .collect()
    }

    /// A read-only transaction that sees one snapshot of every table.
    async fn read_snapshot(&self) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Commits a write transaction begun at `started`, timed like SQLite's
/// group commits (`consent_relay_store_commit_duration_seconds`).
async fn commit(tx: sqlx::Transaction<'_, Postgres>, started: Instant) -> Result<(), StoreError> {
    tx.commit().await?;
    metrics::histogram!(crate::metrics::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
    Ok(())
}

async fn states_of(conn: &mut PgConnection, subject_id: &str) -> Result<Vec<StateRow>, StoreError> {
    sqlx::query(
        "SELECT campaign, status, since, event_id FROM consent_state WHERE subject_id = $1 ORDER BY campaign",
    )
    .bind(subject_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(state_from_row)
    .collect()
}

async fn events_of(
    conn: &mut PgConnection,
    subject_id: &str,
) -> Result<Vec<ConsentEvent>, StoreError> {
    sqlx::query(
        "SELECT id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at \
         FROM consent_events WHERE subject_id = $1 ORDER BY id",
    )
    .bind(subject_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(event_from_row)
    .collect()
}

/// Queues the mail `follow_up` builds from `event`, in the event's
/// transaction (its failure rolls the event back).
async fn queue_follow_up(
    conn: &mut PgConnection,
    follow_up: Option<&FollowUp>,
    event: &ConsentEvent,
    now: i64,
) -> Result<(), StoreError> {
    match follow_up_mail(follow_up, event)? {
        Some(mail) => insert_messages(conn, &[&mail], now).await,
        None => Ok(()),
    }
}

/// Inserts messages with their subjects, decisions and deliveries: four
/// statements, each binding its columns as arrays, however many rows.
async fn insert_messages(
    conn: &mut PgConnection,
    messages: &[&NewMessage],
    now: i64,
) -> Result<(), StoreError> {
    let mut q = QueryBuilder::<Postgres>::new(
        "INSERT INTO messages (id, kind, mail_from, client_ip, helo, auth_user, campaign, \
         header_message_id, size, body, received_at, smtputf8) ",
    );
    q.push_values(messages, |mut b, m| {
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

    // Sorted by address: two transactions creating some of the same
    // subjects take the unique index's locks in one order (no deadlock).
    let mut new_subjects: Vec<(&NewSubject, &String)> = messages
        .iter()
        .flat_map(|m| &m.recipients)
        .filter_map(|r| r.new_subject.as_ref().map(|s| (s, &r.recipient)))
        .collect();
    new_subjects.sort_by(|a, b| a.1.cmp(b.1));
    new_subjects.dedup_by(|a, b| a.1 == b.1);
    if !new_subjects.is_empty() {
        let (ids, addresses, hashes, key_ids) = new_subjects.iter().fold(
            (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
            |mut v, (s, address)| {
                v.0.push(s.id.as_str());
                v.1.push(address.as_str());
                v.2.push(s.address_hash.as_str());
                v.3.push(s.key_id.as_str());
                v
            },
        );
        sqlx::query(
            "INSERT INTO subjects (id, address, address_hash, key_id, created_at) \
             SELECT id, address, address_hash, key_id, $5 \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS v (id, address, address_hash, key_id) \
             ORDER BY address ON CONFLICT (address) DO NOTHING",
        )
        .bind(&ids)
        .bind(&addresses)
        .bind(&hashes)
        .bind(&key_ids)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }

    let rows: Vec<(&NewMessage, &RecipientDecision)> = messages
        .iter()
        .flat_map(|m| m.recipients.iter().map(move |r| (*m, r)))
        .collect();
    if !rows.is_empty() {
        // A new subject is named by its address: two messages may have
        // made one for the same address at once, and the one that exists
        // is the one to name.
        sqlx::query(
            "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) \
             SELECT v.message_id, v.recipient, \
               CASE WHEN v.new THEN (SELECT id FROM subjects WHERE address = v.recipient) ELSE v.subject_id END, \
               v.campaign, v.outcome, v.reason, v.event_id, 'accept', v.at \
             FROM UNNEST($1::text[], $2::text[], $3::bool[], $4::text[], $5::text[], $6::text[], $7::text[], \
               $8::bigint[], $9::bigint[]) WITH ORDINALITY \
               AS v (message_id, recipient, new, subject_id, campaign, outcome, reason, event_id, at, n) \
             ORDER BY v.n",
        )
        .bind(rows.iter().map(|(m, _)| m.id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.recipient.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.new_subject.is_some()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.subject_id.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(m, _)| m.campaign.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.outcome.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.reason.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|(_, r)| r.event_id).collect::<Vec<_>>())
        .bind(rows.iter().map(|(m, _)| m.received_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }

    let delivered: Vec<&(&NewMessage, &RecipientDecision)> = rows
        .iter()
        .filter(|(_, r)| r.outcome == Outcome::Deliver)
        .collect();
    if !delivered.is_empty() {
        sqlx::query(
            "INSERT INTO deliveries (message_id, recipient, status, attempts, next_attempt_at, created_at, updated_at) \
             SELECT v.message_id, v.recipient, 'queued', 0, v.next_attempt_at, $4, $4 \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY \
               AS v (message_id, recipient, next_attempt_at, n) \
             ORDER BY v.n",
        )
        .bind(delivered.iter().map(|(m, _)| m.id.as_str()).collect::<Vec<_>>())
        .bind(delivered.iter().map(|(_, r)| r.recipient.as_str()).collect::<Vec<_>>())
        .bind(delivered.iter().map(|(m, _)| m.received_at).collect::<Vec<_>>())
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Leases due rows, then rows whose lease expired (a node that died or
/// stopped without handing back). `SKIP LOCKED`: rows another node is
/// taking right now are left to it, never waited for or taken twice.
async fn claim(
    conn: &mut PgConnection,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut rows = sqlx::query(
        "WITH due AS (SELECT id FROM deliveries \
            WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $3 \
            ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED), \
         claimed AS (UPDATE deliveries d SET status = 'sending', lease_owner = $1, lease_until = $2, updated_at = $3 \
            FROM due WHERE d.id = due.id RETURNING d.id, d.message_id, d.recipient, d.attempts) \
         SELECT c.id, c.message_id, c.recipient, c.attempts, m.kind, m.mail_from, m.campaign, m.received_at, m.smtputf8 \
         FROM claimed c JOIN messages m ON m.id = c.message_id",
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
                "WITH expired AS (SELECT id FROM deliveries \
                    WHERE status = 'sending' AND lease_until < $3 LIMIT $4 FOR UPDATE SKIP LOCKED), \
                 claimed AS (UPDATE deliveries d SET lease_owner = $1, lease_until = $2, updated_at = $3 \
                    FROM expired WHERE d.id = expired.id RETURNING d.id, d.message_id, d.recipient, d.attempts) \
                 SELECT c.id, c.message_id, c.recipient, c.attempts, m.kind, m.mail_from, m.campaign, m.received_at, m.smtputf8 \
                 FROM claimed c JOIN messages m ON m.id = c.message_id",
            )
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(room)
            .fetch_all(&mut *conn)
            .await?,
        );
    }
    rows.iter()
        .map(|r| {
            let kind: String = r.try_get(4)?;
            Ok(ClaimedDelivery {
                id: r.try_get(0)?,
                message_id: r.try_get(1)?,
                kind: kind
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("messages.kind: {e}")))?,
                recipient: r.try_get(2)?,
                mail_from: r.try_get(5)?,
                campaign: r.try_get(6)?,
                received_at: r.try_get(7)?,
                attempts: r.try_get(3)?,
                smtputf8: r.try_get(8)?,
            })
        })
        .collect()
}

async fn record(
    conn: &mut PgConnection,
    records: &[AttemptRecord],
    now: i64,
) -> Result<u64, StoreError> {
    if records.is_empty() {
        return Ok(0);
    }
    // One statement for the whole batch; only rows still leased are
    // updated, so an outcome never overwrites a later one.
    let final_status = |r: &AttemptRecord| {
        matches!(
            r.status,
            DeliveryStatus::Sent | DeliveryStatus::Failed | DeliveryStatus::SuppressedLate
        )
    };
    let recorded: std::collections::HashSet<i64> = sqlx::query(
        "UPDATE deliveries SET status = v.status, attempts = attempts + v.attempted, \
         next_attempt_at = v.next_attempt_at, last_reply = v.reply, lease_owner = NULL, lease_until = NULL, updated_at = $6 \
         FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[]) \
           AS v (id, status, attempted, next_attempt_at, reply) \
         WHERE deliveries.id = v.id AND deliveries.status = 'sending' RETURNING deliveries.id",
    )
    .bind(records.iter().map(|r| r.delivery_id).collect::<Vec<_>>())
    .bind(records.iter().map(|r| r.status.as_str()).collect::<Vec<_>>())
    .bind(records.iter().map(|r| i64::from(r.attempted)).collect::<Vec<_>>())
    .bind(
        records
            .iter()
            .map(|r| if final_status(r) { now } else { r.next_attempt_at })
            .collect::<Vec<_>>(),
    )
    .bind(records.iter().map(|r| r.reply.as_str()).collect::<Vec<_>>())
    .bind(now)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
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
            insert_messages(conn, &[dsn], now).await?;
        }
    }
    let ended: Vec<i64> = records
        .iter()
        .filter(|r| recorded.contains(&r.delivery_id) && final_status(r))
        .map(|r| r.delivery_id)
        .collect();
    retention::scrub_erasure_notices(conn, &ended).await
}

async fn consent_event(
    conn: &mut PgConnection,
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
    // The subject's row lock orders concurrent events about one person
    // (on any node): each reads the state the one before it wrote.
    let subject_id: String = sqlx::query("SELECT id FROM subjects WHERE address = $1 FOR UPDATE")
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

/// Erasure, in the caller's transaction: the same result as SQLite's (see
/// `sqlite.rs` `erase`). The subject keeps its id and keyed hash but loses
/// its address; its events lose their proof; decision and delivery rows
/// name `erased:<address_hash>`; copies not yet sent become
/// `suppressed-late`; bodies of messages to the address alone are removed.
async fn erase(
    conn: &mut PgConnection,
    e: &Erasure,
    webhook: bool,
    now: i64,
) -> Result<Option<ErasureReport>, StoreError> {
    let live = sqlx::query("SELECT id, address_hash FROM subjects WHERE address = $1 FOR UPDATE")
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
            let known: bool = sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM decisions WHERE recipient = $1) \
                 OR EXISTS (SELECT 1 FROM deliveries WHERE recipient = $1)",
            )
            .bind(&e.address)
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
            if !known {
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
    // Copies not sent yet are never sent; a copy being sent (on any node)
    // is closed too: outcomes are recorded only on rows still `sending`.
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
        insert_messages(conn, &[&notice], now).await?;
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
/// transaction. Every insert into `consent_events` goes through here: an
/// event committed without its outbox row would never reach the CRM. After
/// the commit, the `PgStore` method wakes this process's dispatcher
/// (`events.notify_one()`); other nodes find the row by polling.
async fn insert_event(
    conn: &mut PgConnection,
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
