//! SQLite side of idempotent writes (`store::idempotency`): imported rows
//! skipped when their key is stored, `Idempotency-Key` answers replayed, the
//! grants `consent expiring` reads, and what erasure removes of them. Every
//! event goes through the same `consent_event` as any other path, so it has
//! the same side effects.

use std::collections::HashSet;

use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::{Op, Output, SqliteStore, consent_event, wrong_kind};
use crate::consent;
use crate::store::rows::grant_from_row;
use crate::store::{
    GrantRow, IDEMPOTENCY_KEEP_MS, ImportCounts, ImportEvent, KeyedConsent, KeyedOutcome,
    StoreError,
};

/// Values bound per `IN (...)` lookup.
const LOOKUP_CHUNK: usize = 500;

impl SqliteStore {
    pub async fn import_events(&self, rows: Vec<ImportEvent>) -> Result<ImportCounts, StoreError> {
        let op = Op::Import {
            rows,
            webhook: self.webhook_outbox,
        };
        match self.submit(op).await? {
            Output::Imported(c) => {
                if c.imported > 0 {
                    self.events.notify_one();
                }
                Ok(c)
            }
            _ => Err(wrong_kind()),
        }
    }

    pub async fn append_consent_event_once(
        &self,
        keyed: KeyedConsent,
    ) -> Result<KeyedOutcome, StoreError> {
        let op = Op::ConsentOnce {
            keyed: Box::new(keyed),
            webhook: self.webhook_outbox,
        };
        match self.submit(op).await? {
            Output::Once(o) => {
                self.events.notify_one();
                Ok(o)
            }
            _ => Err(wrong_kind()),
        }
    }

    pub async fn present_import_keys(
        &self,
        keys: &[String],
    ) -> Result<HashSet<String>, StoreError> {
        self.lookup(
            "SELECT import_key FROM consent_events WHERE import_key IN (",
            keys,
        )
        .await
    }

    pub async fn erased_hashes(&self, hashes: &[String]) -> Result<HashSet<String>, StoreError> {
        self.lookup(
            "SELECT address_hash FROM subjects WHERE address IS NULL AND address_hash IN (",
            hashes,
        )
        .await
    }

    /// The first column of `select` for `values`, bound in chunks.
    async fn lookup(&self, select: &str, values: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(select);
            let mut sep = q.separated(", ");
            for v in chunk {
                sep.push_bind(v);
            }
            q.push(")");
            for row in q.build().fetch_all(&self.readers).await? {
                found.insert(row.try_get(0)?);
            }
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
        .fetch_all(&self.readers)
        .await?
        .iter()
        .map(grant_from_row)
        .collect()
    }
}

/// Appends each row whose key is not stored yet, in the caller's transaction.
pub(super) async fn import(
    conn: &mut SqliteConnection,
    rows: &[ImportEvent],
    webhook: bool,
    now: i64,
) -> Result<ImportCounts, StoreError> {
    let mut counts = ImportCounts::default();
    for row in rows {
        let present = sqlx::query("SELECT 1 FROM consent_events WHERE import_key = $1")
            .bind(&row.key)
            .fetch_optional(&mut *conn)
            .await?
            .is_some();
        if present {
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
pub(super) async fn consent_once(
    conn: &mut SqliteConnection,
    k: &KeyedConsent,
    webhook: bool,
    now: i64,
) -> Result<KeyedOutcome, StoreError> {
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
pub(super) async fn forget(
    conn: &mut SqliteConnection,
    subject_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE consent_events SET import_key = NULL WHERE subject_id = $1 AND import_key IS NOT NULL")
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
