//! Idempotent writes (`store::idempotency`): imported rows skipped when
//! their key is stored, `Idempotency-Key` answers replayed, and what
//! erasure removes of them. Every event goes through the same
//! `consent_event` as any other path, so it has the same side effects.
//!
//! Several nodes may write at once (PostgreSQL): a transaction first locks
//! each key it writes ([`Conn::lock_keys`], the keys sorted, so no two
//! wait on each other), so a concurrent twin waits, then finds the key
//! stored: one event per key, the twin answered as a replay.

use std::collections::HashSet;

use super::accept::queue_follow_up;
use super::consent::consent_event;
use super::{Conn, KeySpace, Op, Sql, lookup};
use crate::store::rows::Cols;
use crate::store::{
    IDEMPOTENCY_KEEP_MS, ImportCounts, ImportEvent, KeyedConsent, KeyedOutcome, StoreError,
};

/// Appends each imported row whose key is not stored yet.
pub(in crate::store) struct Import {
    pub rows: Vec<ImportEvent>,
    pub webhook: bool,
}

impl Op for Import {
    type Out = ImportCounts;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<ImportCounts, StoreError> {
        let mut counts = ImportCounts::default();
        if self.rows.is_empty() {
            return Ok(counts);
        }
        let keys: Vec<&str> = self.rows.iter().map(|r| r.key.as_str()).collect();
        c.lock_keys(KeySpace::Import, &keys).await?;
        // Read after the locks: a concurrent import of a key has committed.
        let keys: Vec<String> = keys.into_iter().map(str::to_owned).collect();
        let mut present: HashSet<String> = lookup(
            c,
            "SELECT import_key FROM consent_events WHERE import_key",
            &keys,
        )
        .await?;
        for row in &self.rows {
            // A key stored before, or earlier in this batch (a duplicate row).
            if !present.insert(row.key.clone()) {
                counts.present += 1;
                continue;
            }
            let event = consent_event(c, &row.event, self.webhook, now).await?;
            c.execute(
                Sql::new("UPDATE consent_events SET import_key = $2 WHERE id = $1")
                    .arg(event.id)
                    .arg(&row.key),
            )
            .await?;
            counts.imported += 1;
        }
        Ok(counts)
    }

    fn wrote_events(counts: &ImportCounts) -> bool {
        counts.imported > 0
    }
}

/// Records a consent event unless its key is stored.
pub(in crate::store) struct AppendOnce {
    pub keyed: Box<KeyedConsent>,
    pub webhook: bool,
}

impl Op for AppendOnce {
    type Out = KeyedOutcome;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<KeyedOutcome, StoreError> {
        let k = &self.keyed;
        c.lock_keys(KeySpace::Idempotency, &[k.key.as_str()])
            .await?;
        c.execute(
            Sql::new("DELETE FROM idempotency_keys WHERE created_at < $1")
                .arg(now - IDEMPOTENCY_KEEP_MS),
        )
        .await?;
        let stored = c
            .fetch_optional(
                Sql::new(
                    "SELECT request_hash, status, response FROM idempotency_keys WHERE key = $1",
                )
                .arg(&k.key),
            )
            .await?;
        if let Some(r) = stored {
            if r.text(0)? != k.request_hash {
                return Ok(KeyedOutcome::Mismatch);
            }
            let status = r.int(1)?;
            return Ok(KeyedOutcome::Replay {
                status: u16::try_from(status).map_err(|_| {
                    StoreError::Corrupt(format!("idempotency_keys.status {status}"))
                })?,
                body: r.text(2)?,
            });
        }
        let event = consent_event(c, &k.event, self.webhook, now).await?;
        queue_follow_up(c, k.follow_up.as_ref(), &event, now).await?;
        let body = crate::store::keyed_answer(k, &event)?;
        c.execute(
            Sql::new(
                "INSERT INTO idempotency_keys (key, request_hash, status, response, event_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .arg(&k.key)
            .arg(&k.request_hash)
            .arg(i64::from(k.status))
            .arg(&body)
            .arg(event.id)
            .arg(now),
        )
        .await?;
        Ok(KeyedOutcome::Recorded { event, body })
    }

    fn wrote_events(_: &KeyedOutcome) -> bool {
        true
    }
}

/// Erasure: import keys (a hash of the row, address included) and stored
/// API answers (the event with its proof) go with the rest of the proof.
pub(super) async fn forget<C: Conn>(c: &mut C, subject_id: &str) -> Result<(), StoreError> {
    c.execute(
        Sql::new(
            "UPDATE consent_events SET import_key = NULL WHERE subject_id = $1 AND import_key IS NOT NULL",
        )
        .arg(subject_id),
    )
    .await?;
    c.execute(
        Sql::new(
            "DELETE FROM idempotency_keys WHERE event_id IN (SELECT id FROM consent_events WHERE subject_id = $1)",
        )
        .arg(subject_id),
    )
    .await?;
    Ok(())
}
