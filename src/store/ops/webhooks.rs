//! The webhook outbox: only the oldest row of each subject is leased, so
//! a subject's events go out in order and never two at once (on any node:
//! PostgreSQL leases with `SKIP LOCKED`, [`Conn::LEASE_DUE_WEBHOOKS`]);
//! outcomes are recorded by the lease holder only.
//!
//! Notices (`webhook_notices`) are what the CRM hears about that is not a
//! consent event: a bounce, a removed suppression, a paused or warned
//! campaign. [`notice`] queues one in the transaction of the change it
//! tells of; they are leased, retried and handed back as the outbox rows
//! are, in no order of their own (each stands alone).

use std::collections::HashMap;

use super::{Conn, Op, Sql};
use crate::store::rows::{Cols, event_from_row, webhook_from_row};
use crate::store::{
    ClaimedNotice, ClaimedWebhook, FeedbackEvent, NoticeKind, NoticeRow, StoreError,
    WebhookOutcome, WebhookRow,
};

/// Leases the head row of each subject's outbox queue that is due (or
/// whose lease expired), with the event as it stands now.
pub(in crate::store) struct ClaimWebhooks {
    pub owner: String,
    pub now: i64,
    pub lease_until: i64,
    pub limit: i64,
}

impl Op for ClaimWebhooks {
    type Out = Vec<ClaimedWebhook>;
    const ATOMIC: bool = false;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<Self::Out, StoreError> {
        let lease = |sql| {
            Sql::new(sql)
                .arg(&self.owner)
                .arg(self.lease_until)
                .arg(self.now)
        };
        let mut leased = c
            .fetch_all(lease(C::LEASE_DUE_WEBHOOKS).arg(self.limit))
            .await?;
        let room = self.limit - leased.len() as i64;
        if room > 0 {
            // Rows of a node that stopped without handing them back.
            leased.extend(
                c.fetch_all(lease(C::LEASE_EXPIRED_WEBHOOKS).arg(room))
                    .await?,
            );
        }
        if leased.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempts: HashMap<i64, i64> = HashMap::with_capacity(leased.len());
        for r in &leased {
            attempts.insert(r.int(0)?, r.int(1)?);
        }
        let ids: Vec<i64> = attempts.keys().copied().collect();
        c.fetch_all(
            Sql::new(
                "SELECT e.id, e.subject_id, e.campaign, e.action, e.at, e.source, e.ip, e.user_agent, e.evidence, \
                 e.recorded_at, s.address FROM consent_events e JOIN subjects s ON s.id = e.subject_id WHERE e.id",
            )
            .ints::<C>(&ids)
            .push(" ORDER BY e.id"),
        )
        .await?
        .iter()
        .map(|r| {
            let event = event_from_row(r)?;
            Ok(ClaimedWebhook {
                attempts: attempts.get(&event.id).copied().unwrap_or(0),
                email: r.opt_text(10)?,
                event,
            })
        })
        .collect()
    }
}

/// Records one attempt, only on a row still leased to `owner`: a lease that
/// expired and went to another node is that node's to record.
pub(in crate::store) struct RecordWebhook {
    pub owner: String,
    pub outcome: WebhookOutcome,
}

impl Op for RecordWebhook {
    type Out = ();

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<(), StoreError> {
        let owner = &self.owner;
        match &self.outcome {
            WebhookOutcome::Delivered { event_id } => {
                c.execute(
                    Sql::new("DELETE FROM webhook_outbox WHERE event_id = $1 AND lease_owner = $2")
                        .arg(*event_id)
                        .arg(owner),
                )
                .await?;
            }
            WebhookOutcome::Failed {
                event_id,
                error,
                next_attempt_at,
            } => {
                let next = (*next_attempt_at).max(now);
                let failed = c
                    .fetch_optional(
                        Sql::new(
                            "UPDATE webhook_outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = $3, \
                             last_error = $4, lease_owner = NULL, lease_until = NULL WHERE event_id = $1 AND lease_owner = $2 \
                             RETURNING subject_id",
                        )
                        .arg(*event_id)
                        .arg(owner)
                        .arg(next)
                        .arg(error),
                    )
                    .await?;
                // The subject's later events wait as long (they cannot go
                // first), so they do not count as due in the meantime.
                if let Some(r) = failed {
                    let subject_id = r.text(0)?;
                    c.execute(
                        Sql::new(
                            "UPDATE webhook_outbox SET next_attempt_at = $2 \
                             WHERE subject_id = $1 AND status = 'pending' AND next_attempt_at < $2",
                        )
                        .arg(&subject_id)
                        .arg(next),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }
}

/// Hands the webhook leases of `owner` back.
pub(in crate::store) struct ReleaseWebhooks(pub String);

impl Op for ReleaseWebhooks {
    type Out = u64;
    const ATOMIC: bool = false;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<u64, StoreError> {
        super::nodes::release_webhooks(c, &self.0).await
    }
}

/// The outbox, oldest first.
pub(in crate::store) async fn outbox<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<WebhookRow>, StoreError> {
    c.fetch_all(
        Sql::new(
            "SELECT event_id, subject_id, status, attempts, next_attempt_at, last_error, created_at \
             FROM webhook_outbox ORDER BY event_id LIMIT $1",
        )
        .arg(limit),
    )
    .await?
    .iter()
    .map(webhook_from_row)
    .collect()
}

/// Queues the notice `kind` (with `webhook`: `[webhook]` is set; else
/// nothing) in the caller's transaction, so it is posted if and only if
/// the change it tells of commits. `payload` is the JSON object posted
/// (with `type`, `id`, `email` and `timestamp` added at send time); it
/// must hold no address: `subject_id` names the person, whose address is
/// read when the notice is sent (`null` once erased). Ops that call it
/// return true from [`Op::wrote_events`] so this process's dispatcher wakes.
pub(in crate::store) async fn notice<C: Conn>(
    c: &mut C,
    webhook: bool,
    kind: NoticeKind,
    subject_id: Option<&str>,
    payload: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    if !webhook {
        return Ok(());
    }
    c.execute(
        Sql::new(
            "INSERT INTO webhook_notices (kind, subject_id, payload, status, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
        )
        .arg(kind.as_str())
        .arg(subject_id)
        .arg(payload.to_string().as_str())
        .arg(now),
    )
    .await
    .map(drop)
}

/// Queues the notices of what a report (or the upstream's own 5xx) made
/// happen, in its transaction: `bounced`, `campaign-warning` and
/// `campaign-paused` (the payload is the event's fields, `day` also as a
/// `date`). A complaint's withdrawal is a consent event: it goes through
/// the outbox already (posted as type `complained`).
pub(in crate::store) async fn feedback_notices<C: Conn>(
    c: &mut C,
    webhook: bool,
    events: &[FeedbackEvent],
    now: i64,
) -> Result<(), StoreError> {
    for e in events {
        let (kind, subject_id) = match e {
            FeedbackEvent::Bounced { subject_id, .. } => (NoticeKind::Bounced, Some(subject_id)),
            FeedbackEvent::CampaignWarning { .. } => (NoticeKind::CampaignWarning, None),
            FeedbackEvent::CampaignPaused { .. } => (NoticeKind::CampaignPaused, None),
            FeedbackEvent::Complained { .. } => continue,
        };
        let mut payload = serde_json::to_value(e)
            .map_err(|e| StoreError::Corrupt(format!("feedback event as JSON: {e}")))?;
        if let Some(o) = payload.as_object_mut() {
            o.remove("event");
            if let Some(day) = o.get("day").and_then(serde_json::Value::as_i64) {
                o.insert("date".into(), crate::time::format_day(day).into());
            }
            if kind == NoticeKind::CampaignPaused {
                o.insert("paused_by".into(), super::feedback::GUARD.into());
            }
        }
        notice(
            c,
            webhook,
            kind,
            subject_id.map(String::as_str),
            &payload,
            now,
        )
        .await?;
    }
    Ok(())
}

/// What a leased notice row returns: `id, attempts, kind, payload, address`.
const NOTICE_RETURNING: &str = ") RETURNING id, attempts, kind, payload, \
     (SELECT address FROM subjects WHERE subjects.id = webhook_notices.subject_id)";

/// Leases due notices (then those whose lease expired), oldest first.
pub(in crate::store) struct ClaimNotices {
    pub owner: String,
    pub now: i64,
    pub lease_until: i64,
    pub limit: i64,
}

impl Op for ClaimNotices {
    type Out = Vec<ClaimedNotice>;
    const ATOMIC: bool = false;

    async fn run<C: Conn>(&self, c: &mut C, _: i64) -> Result<Self::Out, StoreError> {
        let mut claimed = Vec::new();
        for due in [
            "status = 'pending' AND next_attempt_at <= $3",
            // Rows of a node that stopped without handing them back.
            "status = 'sending' AND lease_until < $3",
        ] {
            let room = self.limit - claimed.len() as i64;
            if room <= 0 {
                break;
            }
            let q = Sql::new(
                "UPDATE webhook_notices SET status = 'sending', lease_owner = $1, lease_until = $2 \
                 WHERE id IN (SELECT id FROM webhook_notices WHERE ",
            )
            .push(due)
            .push(" ORDER BY id LIMIT $4")
            .push(C::SKIP_LOCKED)
            .push(NOTICE_RETURNING)
            .arg(&self.owner)
            .arg(self.lease_until)
            .arg(self.now)
            .arg(room);
            for r in c.fetch_all(q).await? {
                let kind = r.text(2)?;
                claimed.push(ClaimedNotice {
                    id: r.int(0)?,
                    attempts: r.int(1)?,
                    kind: kind
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("webhook_notices.kind: {e}")))?,
                    payload: serde_json::from_str(&r.text(3)?).map_err(|e| {
                        StoreError::Corrupt(format!("webhook_notices.payload: {e}"))
                    })?,
                    email: r.opt_text(4)?,
                });
            }
        }
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }
}

/// Records one notice attempt, only on a row still leased to `owner`
/// (`WebhookOutcome`'s `event_id` is the notice's id).
pub(in crate::store) struct RecordNotice {
    pub owner: String,
    pub outcome: WebhookOutcome,
}

impl Op for RecordNotice {
    type Out = ();

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<(), StoreError> {
        let q = match &self.outcome {
            WebhookOutcome::Delivered { event_id } => {
                Sql::new("DELETE FROM webhook_notices WHERE id = $1 AND lease_owner = $2")
                    .arg(*event_id)
                    .arg(&self.owner)
            }
            WebhookOutcome::Failed {
                event_id,
                error,
                next_attempt_at,
            } => Sql::new(
                "UPDATE webhook_notices SET status = 'pending', attempts = attempts + 1, next_attempt_at = $3, \
                 last_error = $4, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
            )
            .arg(*event_id)
            .arg(&self.owner)
            .arg((*next_attempt_at).max(now))
            .arg(error),
        };
        c.execute(q).await.map(drop)
    }
}

/// The notices waiting, oldest first.
pub(in crate::store) async fn notices<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<NoticeRow>, StoreError> {
    c.fetch_all(
        Sql::new(
            "SELECT id, kind, subject_id, status, attempts, next_attempt_at, last_error, created_at \
             FROM webhook_notices ORDER BY id LIMIT $1",
        )
        .arg(limit),
    )
    .await?
    .iter()
    .map(|r| {
        Ok(NoticeRow {
            id: r.int(0)?,
            kind: r.text(1)?,
            subject_id: r.opt_text(2)?,
            status: r.text(3)?,
            attempts: r.int(4)?,
            next_attempt_at: r.int(5)?,
            last_error: r.opt_text(6)?,
            created_at: r.int(7)?,
        })
    })
    .collect()
}
