//! PostgreSQL side of the webhook outbox (see `sqlite.rs`): leases with
//! `FOR UPDATE SKIP LOCKED`, so several nodes share one outbox, and only the
//! oldest row of a subject is ever leased, so no two nodes send one
//! subject's events out of order or at once.

use std::collections::HashMap;

use sqlx::Row;

use super::super::rows::{event_from_row, webhook_from_row};
use super::super::{ClaimedWebhook, StoreError, WebhookOutcome, WebhookRow};
use std::time::Instant;

use super::{PgStore, commit};

impl PgStore {
    /// Leases the head row of each subject's outbox queue that is due (or
    /// whose lease expired), with the event as it stands now.
    pub async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedWebhook>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        // Due rows through the partial index; a row is a head when no older
        // row of its subject is left (a later event waits for the earlier
        // one, also while another node sends it). A row another node is
        // leasing right now is skipped; one it has leased meanwhile is no
        // longer `pending` when PostgreSQL rechecks it, so it is not taken.
        // Events of one subject commit in id order (the subject's row lock),
        // so an older row cannot appear after a younger one was leased.
        let mut leased = sqlx::query(
            "WITH due AS (SELECT w.event_id FROM webhook_outbox w \
                WHERE w.status = 'pending' AND w.next_attempt_at <= $3 \
                AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.subject_id = w.subject_id AND o.event_id < w.event_id) \
                ORDER BY w.next_attempt_at, w.event_id LIMIT $4 FOR UPDATE OF w SKIP LOCKED) \
             UPDATE webhook_outbox SET status = 'sending', lease_owner = $1, lease_until = $2 \
             FROM due WHERE webhook_outbox.event_id = due.event_id \
             RETURNING webhook_outbox.event_id, webhook_outbox.attempts",
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
                    "WITH expired AS (SELECT event_id FROM webhook_outbox \
                        WHERE status = 'sending' AND lease_until < $3 LIMIT $4 FOR UPDATE SKIP LOCKED) \
                     UPDATE webhook_outbox SET lease_owner = $1, lease_until = $2 \
                     FROM expired WHERE webhook_outbox.event_id = expired.event_id \
                     RETURNING webhook_outbox.event_id, webhook_outbox.attempts",
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
        let ids: Vec<i64> = attempts.keys().copied().collect();
        sqlx::query(
            "SELECT e.id, e.subject_id, e.campaign, e.action, e.at, e.source, e.ip, e.user_agent, e.evidence, \
             e.recorded_at, s.address FROM consent_events e JOIN subjects s ON s.id = e.subject_id \
             WHERE e.id = ANY($1) ORDER BY e.id",
        )
        .bind(&ids)
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

    /// Records one attempt, only on a row still leased to `owner`: a lease
    /// that expired and went to another node is that node's to record.
    pub async fn record_webhook(
        &self,
        owner: &str,
        outcome: WebhookOutcome,
    ) -> Result<(), StoreError> {
        let now = crate::now_ms();
        let (mut tx, started) = (self.pool.begin().await?, Instant::now());
        match outcome {
            WebhookOutcome::Delivered { event_id } => {
                sqlx::query("DELETE FROM webhook_outbox WHERE event_id = $1 AND lease_owner = $2")
                    .bind(event_id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
            }
            WebhookOutcome::Failed {
                event_id,
                error,
                next_attempt_at,
            } => {
                let next = next_attempt_at.max(now);
                let failed = sqlx::query(
                    "UPDATE webhook_outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = $3, \
                     last_error = $4, lease_owner = NULL, lease_until = NULL WHERE event_id = $1 AND lease_owner = $2 \
                     RETURNING subject_id",
                )
                .bind(event_id)
                .bind(owner)
                .bind(next)
                .bind(&error)
                .fetch_optional(&mut *tx)
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
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        commit(tx, started).await?;
        Ok(())
    }

    pub async fn release_webhooks(&self, owner: &str) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE webhook_outbox SET status = 'pending', lease_owner = NULL, lease_until = NULL \
             WHERE status = 'sending' AND lease_owner = $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    pub async fn webhook_outbox(&self, limit: i64) -> Result<Vec<WebhookRow>, StoreError> {
        sqlx::query(
            "SELECT event_id, subject_id, status, attempts, next_attempt_at, last_error, created_at \
             FROM webhook_outbox ORDER BY event_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(webhook_from_row)
        .collect()
    }
}
