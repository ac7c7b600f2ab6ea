//! One operator action on one copy (`store::queue`): read the copy under
//! its row lock, check its state (and, to release it, that its campaign
//! is not paused), change it, write the audit row. A refusal is the
//! operation's answer, not a failed transaction: nothing was written.

use super::{Conn, Op, Sql, audit, outcomes};
use crate::store::rows::{Cols, parsed};
use crate::store::{
    Actor, AuditAction, DeliveryStatus, QueueAction, QueueChange, QueueError, StoreError,
};

/// What an operator's drop leaves as the copy's last reply.
const DROPPED: &str = "dropped by an operator (queue drop)";

pub(in crate::store) struct Act {
    pub action: QueueAction,
    pub delivery_id: i64,
    pub actor: Actor,
}

/// The answer: the change, or why there was none.
pub(in crate::store) type Done = Result<QueueChange, QueueError>;

impl Op for Act {
    type Out = (Done, bool);

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<(Done, bool), StoreError> {
        let id = self.delivery_id;
        // The row lock orders this with a worker leasing the copy (on any node).
        let Some(row) = c
            .fetch_optional(
                Sql::new("SELECT status, message_id, recipient FROM deliveries WHERE id = $1")
                    .push(C::FOR_UPDATE)
                    .arg(id),
            )
            .await?
        else {
            return Ok((Err(QueueError::NotFound(id)), false));
        };
        let status: DeliveryStatus = parsed(row.text(0)?, "deliveries.status")?;
        let (message_id, recipient) = (row.text(1)?, row.text(2)?);
        if !self.action.from_states().contains(&status) {
            let refused = QueueError::WrongState {
                id,
                action: self.action,
                status,
            };
            return Ok((Err(refused), false));
        }
        let campaign = c
            .fetch_one(Sql::new("SELECT campaign FROM messages WHERE id = $1").arg(&message_id))
            .await?
            .text(0)?;
        if self.action == QueueAction::Release && paused(c, &campaign).await? {
            return Ok((Err(QueueError::CampaignPaused { id, campaign }), false));
        }
        // Read before a drop scrubs an erasure notice's rows.
        let subject_id = c
            .fetch_optional(
                Sql::new(
                    "SELECT subject_id FROM decisions WHERE message_id = $1 AND recipient = $2 \
                     AND subject_id IS NOT NULL ORDER BY id LIMIT 1",
                )
                .arg(&message_id)
                .arg(&recipient),
            )
            .await?
            .map(|r| r.text(0))
            .transpose()?;
        let (set, audit_action) = match self.action {
            QueueAction::Retry => ("status = status", AuditAction::DeliveryRetry),
            QueueAction::Release => (
                "status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END",
                AuditAction::DeliveryRelease,
            ),
            QueueAction::Drop => (
                "status = 'dropped', last_reply = $4",
                AuditAction::DeliveryDrop,
            ),
        };
        let mut q = Sql::new("UPDATE deliveries SET ")
            .push(set)
            .push(", next_attempt_at = $2, updated_at = $2 WHERE id = $1 AND status = $3 RETURNING status")
            .arg(id)
            .arg(now)
            .arg(status.as_str());
        if self.action == QueueAction::Drop {
            q = q.arg(DROPPED);
        }
        let to: DeliveryStatus = parsed(c.fetch_one(q).await?.text(0)?, "deliveries.status")?;
        // A dropped erasure notice is scrubbed as a sent one is: its rows
        // named the address only until its delivery ended.
        let scrubbed =
            to == DeliveryStatus::Dropped && outcomes::scrub_erasure_notices(c, &[id]).await? > 0;
        let detail = format!("queue id {message_id}, campaign {campaign}, {status} to {to}");
        let audit_id = audit::about(
            c,
            &self.actor,
            audit_action,
            subject_id.as_deref(),
            id.to_string(),
            detail,
            now,
        )
        .await?;
        let change = QueueChange {
            delivery_id: id,
            message_id,
            campaign,
            from: status,
            to,
            audit_id,
        };
        Ok((Ok(change), scrubbed))
    }

    fn removed_personal_data((_, scrubbed): &(Done, bool)) -> bool {
        *scrubbed
    }
}

/// Whether `campaign` is paused now.
async fn paused<C: Conn>(c: &mut C, campaign: &str) -> Result<bool, StoreError> {
    c.fetch_one(
        Sql::new("SELECT EXISTS (SELECT 1 FROM campaign_pauses WHERE campaign = $1)").arg(campaign),
    )
    .await?
    .flag(0)
}
