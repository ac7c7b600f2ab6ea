//! The webhook outbox (`webhook_outbox`): consent events leased to this
//! node for the CRM, how an attempt ended, the outbox as listed. The types
//! and the [`Store`] methods; the operations are `ops::webhooks`.

use std::sync::Arc;

use super::ops;
use super::{ConsentEvent, Store, StoreError};

/// A consent event leased to this node for one webhook attempt.
#[derive(Debug, Clone)]
pub struct ClaimedWebhook {
    /// The event as stored now (without its proof once the subject was erased).
    pub event: ConsentEvent,
    /// The subject's address; `None` once erased.
    pub email: Option<String>,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// How one webhook attempt ended.
#[derive(Debug, Clone)]
pub enum WebhookOutcome {
    /// The CRM answered 2xx: the row leaves the outbox.
    Delivered { event_id: i64 },
    /// Anything else: tried again at `next_attempt_at`.
    Failed {
        event_id: i64,
        error: String,
        next_attempt_at: i64,
    },
}

/// A row of the webhook outbox (consent events not yet accepted by the CRM).
#[derive(Debug, Clone, serde::Serialize)]
pub struct WebhookRow {
    pub event_id: i64,
    pub subject_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Leases up to `limit` due webhook rows to `owner` until `lease_until`:
    /// only the oldest row of each subject, so a subject's events go out in
    /// order (a later one waits until the earlier one was accepted).
    pub async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedWebhook>, StoreError> {
        self.write(ops::webhooks::ClaimWebhooks {
            owner: owner.to_owned(),
            now,
            lease_until,
            limit,
        })
        .await
    }

    /// Records a webhook attempt on a row still leased to `owner`.
    pub async fn record_webhook(
        &self,
        owner: &str,
        outcome: WebhookOutcome,
    ) -> Result<(), StoreError> {
        self.write(ops::webhooks::RecordWebhook {
            owner: owner.to_owned(),
            outcome,
        })
        .await
    }

    /// Hands webhook leases held by `owner` back (shutdown).
    pub async fn release_webhooks(&self, owner: &str) -> Result<u64, StoreError> {
        self.write(ops::webhooks::ReleaseWebhooks(owner.to_owned()))
            .await
    }

    /// The webhook outbox, oldest first.
    pub async fn webhook_outbox(&self, limit: i64) -> Result<Vec<WebhookRow>, StoreError> {
        read!(self, c => ops::webhooks::outbox(c, limit))
    }

    /// Notified after this process committed a consent event (the webhook
    /// dispatcher wakes on it; events of other processes are polled).
    pub fn events_written(&self) -> Arc<tokio::sync::Notify> {
        self.events().clone()
    }
}
