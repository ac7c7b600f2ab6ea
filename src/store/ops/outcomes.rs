//! Recording attempt outcomes, and what follows from them in the same
//! transaction: each real attempt's row in `delivery_attempts` (with the
//! outcome, [`Conn::set_outcomes`]), the late decision, the bounce, the
//! campaign's delivered count (`campaign_days`, for the reputation guard),
//! the late decisions' count (`daily_counts`, for the overview), and the
//! scrub of an erasure notice whose delivery ended. The upstream's reply is
//! stored with the recipient's address masked (`mail::mask`): the rest of
//! it is the operator's diagnostic, the address is already the row's.

use std::borrow::Cow;

use super::{Conn, Op, Sql, first_texts};
use crate::mail::mask::mask_address;
use crate::store::rows::Cols;
use crate::store::{AttemptRecord, DeliveryStatus, StoreError};

/// Whether an outcome is final (never tried again).
pub(in crate::store) fn is_final(status: DeliveryStatus) -> bool {
    matches!(
        status,
        DeliveryStatus::Sent
            | DeliveryStatus::Failed
            | DeliveryStatus::SuppressedLate
            | DeliveryStatus::Dropped
    )
}

/// Records a batch of outcomes; `Out` is the number of erasure notices scrubbed.
/// `webhook`: `[webhook]` is set (the notice of an upstream bounce).
pub(in crate::store) struct Record {
    pub records: Vec<AttemptRecord>,
    pub webhook: bool,
}

impl Op for Record {
    type Out = u64;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<u64, StoreError> {
        record(c, &self.records, self.webhook, now).await
    }

    fn removed_personal_data(scrubbed: &u64) -> bool {
        *scrubbed > 0
    }
}

async fn record<C: Conn>(
    c: &mut C,
    records: &[AttemptRecord],
    webhook: bool,
    now: i64,
) -> Result<u64, StoreError> {
    if records.is_empty() {
        return Ok(0);
    }
    let records = &*masked_replies(c, records).await?;
    // Only rows still leased are updated, so an outcome never overwrites a
    // later one.
    let recorded = c.set_outcomes(records, now).await?;
    // A row no longer `sending` was closed meanwhile (erased, or its lease
    // expired and another attempt owns it): its outcome is not ours to
    // record, nor a late decision or a bounce, whose text would quote an
    // address that erasure has just removed.
    for r in records.iter().filter(|r| recorded.contains(&r.delivery_id)) {
        if let Some(l) = &r.late_decision {
            c.execute(
                Sql::new(
                    "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) \
                     VALUES ($1, $2, $3, $4, 'suppress', $5, $6, 'send', $7)",
                )
                .arg(&l.message_id)
                .arg(&l.recipient)
                .arg(&l.subject_id)
                .arg(&l.campaign)
                .arg(l.reason.as_str())
                .arg(l.event_id)
                .arg(now),
            )
            .await?;
        }
        if let Some(b) = &r.bounce {
            super::feedback::upstream_bounce(c, r.delivery_id, &b.effect, &b.rules, webhook, now)
                .await?;
        }
        if let Some(dsn) = &r.dsn {
            c.insert_messages(&[dsn], now).await?;
            // The bounce names the recipient: erasure and access find it
            // by the delivery it reports on.
            c.execute(
                Sql::new("UPDATE messages SET about_delivery = $2 WHERE id = $1")
                    .arg(&dsn.id)
                    .arg(r.delivery_id),
            )
            .await?;
        }
    }
    super::guard::count_delivered(c, records, &recorded, now).await?;
    let late = records
        .iter()
        .filter(|r| recorded.contains(&r.delivery_id))
        .filter_map(|r| r.late_decision.as_ref())
        .map(|l| (l.campaign.as_str(), l.reason));
    super::rollups::count_late(c, late, now).await?;
    let ended: Vec<i64> = records
        .iter()
        .filter(|r| recorded.contains(&r.delivery_id) && is_final(r.status))
        .map(|r| r.delivery_id)
        .collect();
    scrub_erasure_notices(c, &ended).await
}

/// The records with the recipient's address masked in their replies; the
/// recipients are read only for replies that may hold one (an `@`).
async fn masked_replies<'r, C: Conn>(
    c: &mut C,
    records: &'r [AttemptRecord],
) -> Result<Cow<'r, [AttemptRecord]>, StoreError> {
    let ids: Vec<i64> = records
        .iter()
        .filter(|r| r.reply.contains('@'))
        .map(|r| r.delivery_id)
        .collect();
    if ids.is_empty() {
        return Ok(Cow::Borrowed(records));
    }
    let mut recipients = std::collections::HashMap::with_capacity(ids.len());
    for row in c
        .fetch_all(
            Sql::new("SELECT id, recipient, rcpt_to FROM deliveries WHERE id").ints::<C>(&ids),
        )
        .await?
    {
        recipients.insert(row.int(0)?, (row.text(1)?, row.opt_text(2)?));
    }
    let mut out = Cow::Borrowed(records);
    for (i, r) in records.iter().enumerate() {
        let Some((recipient, rcpt_to)) = recipients.get(&r.delivery_id) else {
            continue;
        };
        // The identity and, when the client wrote it otherwise, the
        // spelling the copy went to (which is what the upstream quotes).
        let masked = mask_address(&r.reply, recipient);
        let masked = match rcpt_to {
            Some(spelling) => Cow::Owned(mask_address(&masked, spelling).into_owned()),
            None => masked,
        };
        if let Cow::Owned(masked) = masked {
            out.to_mut()[i].reply = masked;
        }
    }
    Ok(out)
}

/// Scrubs the erasure notices among these deliveries, whose outcome was
/// just recorded as final: the copy was handed over (or never will be),
/// so the address goes from the notice's rows as it went from every other
/// row at erasure. Their decision and delivery rows name
/// `erased:<address_hash>` of the erased subject, the upstream's replies
/// (the last one and each attempt's, which may quote the address) keep
/// only their code, and the body goes.
/// Returns the number of notices scrubbed.
pub(super) async fn scrub_erasure_notices<C: Conn>(
    c: &mut C,
    final_ids: &[i64],
) -> Result<u64, StoreError> {
    if final_ids.is_empty() {
        return Ok(0);
    }
    let messages = first_texts(
        &c.fetch_all(
            Sql::new(
                "SELECT DISTINCT d.message_id FROM deliveries d JOIN messages m ON m.id = d.message_id \
                 WHERE m.kind = 'erasure-notice' AND d.id",
            )
            .ints::<C>(final_ids),
        )
        .await?,
    )?;
    if messages.is_empty() {
        return Ok(0);
    }
    c.secure_delete(true).await?;
    let result = scrub(c, &messages).await;
    c.secure_delete(false).await?;
    result?;
    Ok(messages.len() as u64)
}

async fn scrub<C: Conn>(c: &mut C, messages: &[String]) -> Result<(), StoreError> {
    for id in messages {
        // The notice's decision row names the erased subject (erase() set it).
        c.execute(
            Sql::new(
                "UPDATE decisions SET recipient = 'erased:' || \
                 (SELECT address_hash FROM subjects s WHERE s.id = decisions.subject_id) \
                 WHERE message_id = $1 AND subject_id IS NOT NULL",
            )
            .arg(id),
        )
        .await?;
        c.execute(
            Sql::new(
                "UPDATE deliveries SET recipient = \
                 (SELECT recipient FROM decisions WHERE decisions.message_id = deliveries.message_id LIMIT 1), rcpt_to = NULL, \
                 last_reply = substr(last_reply, 1, 3) || ' (reply removed with the erased address)' \
                 WHERE message_id = $1",
            )
            .arg(id),
        )
        .await?;
        c.execute(
            Sql::new(
                "UPDATE delivery_attempts SET reply = substr(reply, 1, 3) || ' (reply removed with the erased address)' \
                 WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id = $1)",
            )
            .arg(id),
        )
        .await?;
        c.execute(Sql::new("UPDATE messages SET body = NULL WHERE id = $1").arg(id))
            .await?;
    }
    Ok(())
}
