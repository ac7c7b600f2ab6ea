//! PostgreSQL side of idempotent writes (see `sqlite/once.rs`, the same
//! statements in the same order): imported rows skipped when their key is
//! stored, `Idempotency-Key` answers replayed, the grants `consent expiring`
//! reads, and what erasure removes of them. Every event goes through the
//! same `consent_event` as any other path, so it has the same side effects.
//!
//! Several nodes may write at once: a transaction first takes an advisory
//! lock on each key it writes (the keys sorted, so no two wait on each
//! other), so a concurrent twin waits, then finds the key stored: one event
//! per key, the twin answered as a replay.

use std::collections::HashSet;

use sqlx::{PgConnection, Row};

use std::time::Instant;

use super::{PgStore, commit, consent_event};
use crate::consent;
use crate::store::rows::grant_from_row;
use crate::store::{
    GrantRow, IDEMPOTENCY_KEEP_MS, ImportCounts, ImportEvent, KeyedConsent, KeyedOutcome,
    StoreError,
};

/// Advisory lock spaces (first key of `pg_advisory_xact_lock(int, int)`).
const IMPORT_KEY_LOCK: i32 = 0x6372_0001;
const IDEMPOTENCY_KEY_LOCK: i32 = 0x6372_0002;

impl PgStore {
    pub async fn import_events(&self, rows: Vec<ImportEvent>) -> Result<ImportCounts, StoreError> {
        let now = crate::now_ms();
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        let counts = import(&mut tx, &rows, self.webhook_outbox, now).await?;
        commit(tx, started).await?;
        if counts.imported > 0 {
            self.events.notify_one();
        }
        Ok(counts)
    }

    pub async fn append_consent_event_once(
        &self,
        keyed: KeyedConsent,
    ) -> Result<KeyedOutcome, StoreError> {
        let now = crate::now_ms();
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        let outcome = consent_once(&mut tx, &keyed, self.webhook_outbox, now).await?;
        commit(tx, started).await?;
        self.events.notify_one();
        Ok(outcome)
    }

    pub async fn present_import_keys(
        &self,
        keys: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        self.lookup(
            "SELECT import_key FROM consent_events WHERE import_key = ANY($1)",
            keys,
        )
        .await
    }

    pub async fn erased_hashes(&self, hashes: &[String]) -> Result<HashSet<String>, StoreError> {
        self.lookup(
            "SELECT address_hash FROM subjects WHERE address IS NULL AND address_hash = ANY($1)",
            hashes,
        )
        .await
    }

    /// The first column of `select` for `values` (bound as one array).
    async fn lookup(
        &self,
        select: &'static str,
        values: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        if values.is_empty() {
            return Ok(found);
        }
        for row in sqlx::query(select)
            .bind(values)
            .fetch_all(&self.pool)
            .await?
        {
            found.insert(row.try_get(0)?);
        }
        Ok(found)
    }

    pub async fn grants_since_before(
        &self,
        campaign: &str,
        cutoff: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        // A grant an "unsubscribe from all" came after does not count (as
        // `policy::decide` reads it), nor one of an erased subject.
        sqlx::query(
            "SELECT s.id, s.address, cs.since, cs.event_id FROM consent_state cs \
             JOIN subjects s ON s.id = cs.subject_id \
             LEFT JOIN consent_state a ON a.subject_id = cs.subject_id AND a.campaign = $3 \
             WHERE cs.campaign = $1 AND cs.status = 'granted' AND cs.since <= $2 \
             AND s.address IS NOT NULL \
             AND NOT (a.status IS NOT NULL AND a.status = 'withdrawn' \
                 AND (a.since > cs.since OR (a.since = cs.since AND a.event_id > cs.event_id))) \
             ORDER BY cs.since, s.address",
        )
        .bind(campaign)
        .bind(cutoff)
        .bind(consent::ALL_CAMPAIGNS)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(grant_from_row)
        .collect()
    }
}

/// Locks these keys for the rest of the transaction (in one order).
async fn lock_keys(conn: &mut PgConnection, space: i32, keys: &[&str]) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, hashtext(k)) \
         FROM (SELECT DISTINCT k FROM UNNEST($2::text[]) AS k ORDER BY k) AS sorted",
    )
    .bind(space)
    .bind(keys)
    .fetch_all(&mut *conn)
    .await?;
    Ok(())
}

/// Appends each row whose key is not stored yet, in the caller's transaction.
async fn import(
    conn: &mut PgConnection,
    rows: &[ImportEvent],
    webhook: bool,
    now: i64,
) -> Result<ImportCounts, StoreError> {
    let mut counts = ImportCounts::default();
    if rows.is_empty() {
        return Ok(counts);
    }
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    lock_keys(conn, IMPORT_KEY_LOCK, &keys).await?;
    // Read after the locks: a concurrent import of a key has committed.
    let mut present: HashSet<String> = HashSet::new();
    for r in sqlx::query("SELECT import_key FROM consent_events WHERE import_key = ANY($1)")
        .bind(&keys)
        .fetch_all(&mut *conn)
        .await?
    {
        present.insert(r.try_get(0)?);
    }
    for row in rows {
        // A key stored before, or earlier in this batch (a duplicate row).
        if !present.insert(row.key.clone()) {
            counts.present += 1;
            continue;
        }
        let event = consent_event(conn, &row.event, webhook, now).await?;
        sqlx::query("UPDATE consent_events SET import_key = $2 WHERE id = $1")
            .bind(event.id)
            .bind(&row.key)
            .execute(&mut *conn)
            .await?;
        counts.imported += 1;
    }
    Ok(counts)
}

/// Records the event unless the key is stored, in the caller's transaction.
async fn consent_once(
    conn: &mut PgConnection,
    k: &KeyedConsent,
    webhook: bool,
    now: i64,
) -> Result<KeyedOutcome, StoreError> {
    lock_keys(conn, IDEMPOTENCY_KEY_LOCK, &[k.key.as_str()]).await?;
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(now - IDEMPOTENCY_KEEP_MS)
        .execute(&mut *conn)
        .await?;
    let stored =
        sqlx::query("SELECT request_hash, status, response FROM idempotency_keys WHERE key = $1")
            .bind(&k.key)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(r) = stored {
        let hash: String = r.try_get(0)?;
        if hash != k.request_hash {
            return Ok(KeyedOutcome::Mismatch);
        }
        let status: i64 = r.try_get(1)?;
        return Ok(KeyedOutcome::Replay {
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("idempotency_keys.status {status}")))?,
            body: r.try_get(2)?,
        });
    }
    let event = consent_event(conn, &k.event, webhook, now).await?;
    super::queue_follow_up(conn, k.follow_up.as_ref(), &event, now).await?;
    let body = crate::store::keyed_answer(k, &event)?;
    sqlx::query(
        "INSERT INTO idempotency_keys (key, request_hash, status, response, event_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.key)
    .bind(&k.request_hash)
    .bind(i64::from(k.status))
    .bind(&body)
    .bind(event.id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(KeyedOutcome::Recorded { event, body })
}

/// Erasure: import keys (a hash of the row, address included) and stored
/// API answers (the event with its proof) go with the rest of the proof.
pub(super) async fn forget(conn: &mut PgConnection, subject_id: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE consent_events SET import_key = NULL WHERE subject_id = $1 AND import_key IS NOT NULL",
    )
    .bind(subject_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE event_id IN (SELECT id FROM consent_events WHERE subject_id = $1)",
    )
    .bind(subject_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
