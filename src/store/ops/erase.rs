//! Erasure (right to be forgotten), in one transaction, by its steps: the
//! subject loses its address but keeps its id and keyed hash (the
//! suppression); its consent events stay as the record that consent
//! existed, without their proof (IP, user agent, evidence, import keys,
//! stored API answers); an `erase` event is appended and the derived state
//! dropped. Decision and delivery rows name `erased:<address_hash>`
//! instead of the address; copies not yet sent become `suppressed-late`
//! (reply `erased`) with a decision row saying so; the upstream replies
//! stored for the address's copies (the last one and each attempt's) lose
//! the address (rows recorded before replies were stored masked); the
//! bounces about the address (DSNs to the sender, which name it) lose their
//! body, and one not sent yet is dropped; bodies of messages whose only recipient was the address are
//! removed; the reports that came back about the person (and any other
//! stored report whose raw message names the address) lose their raw
//! message and diagnostic, and their soft-bounce days go, while their
//! suppressions stay under the subject's keyed hash; the notice, if any,
//! is queued.

use super::consent::{EventRow, insert_event};
use super::import::forget;
use super::reads::dsns_about;
use super::{Conn, Op, Sql, audit, first_texts};
use crate::consent::{self, Action};
use crate::store::rows::Cols;
use crate::store::{AuditAction, Erasure, ErasureReport, StoreError};

/// Erases an address (`webhook`: the `erase` event goes to the outbox).
pub(in crate::store) struct Erase {
    pub erasure: Box<Erasure>,
    pub webhook: bool,
}

impl Op for Erase {
    type Out = Option<ErasureReport>;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<Self::Out, StoreError> {
        c.secure_delete(true).await?;
        let erased = erase(c, &self.erasure, self.webhook, now).await;
        c.secure_delete(false).await?;
        erased
    }

    fn wrote_events(report: &Self::Out) -> bool {
        report.is_some()
    }

    fn removed_personal_data(report: &Self::Out) -> bool {
        report.is_some()
    }
}

async fn erase<C: Conn>(
    c: &mut C,
    e: &Erasure,
    webhook: bool,
    now: i64,
) -> Result<Option<ErasureReport>, StoreError> {
    let Some((subject_id, address_hash)) = take_subject(c, e, now).await? else {
        return Ok(None);
    };
    let events_kept = c
        .execute(
            Sql::new(
                "UPDATE consent_events SET ip = NULL, user_agent = NULL, evidence = NULL WHERE subject_id = $1",
            )
            .arg(&subject_id),
        )
        .await?;
    forget(c, &subject_id).await?;
    let event_id = insert_event(
        c,
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
    c.execute(Sql::new("DELETE FROM consent_state WHERE subject_id = $1").arg(&subject_id))
        .await?;
    let tag = crate::consent::subject::erased_tag(&address_hash);
    // Read while the rows still name the address.
    let replies_scrubbed = scrub_replies(c, &e.address).await?;
    let bounces = dsns_about(c, &e.address).await?;
    let cancelled = cancel_unsent(c, &e.address, &tag, &subject_id, event_id, now).await?;
    let deliveries = c
        .execute(
            Sql::new("UPDATE deliveries SET recipient = $2, rcpt_to = NULL WHERE recipient = $1")
                .arg(&e.address)
                .arg(&tag),
        )
        .await?
        + cancelled;
    let decisions = c
        .execute(
            Sql::new("UPDATE decisions SET recipient = $2 WHERE recipient = $1")
                .arg(&e.address)
                .arg(&tag),
        )
        .await?;
    let bounces_dropped = erase_bounces(c, &bounces, &e.address, event_id, now).await?;
    let bodies_removed = remove_bodies(c, &tag).await?;
    scrub_reports(c, &subject_id, &e.address).await?;
    if let Some(notice) = &e.notice {
        // Its one row names the address until its delivery ends; the
        // subject lets the scrub put the erased tag in its place.
        let mut notice = notice.clone();
        for r in &mut notice.recipients {
            r.subject_id = Some(subject_id.clone());
            r.new_subject = None;
            r.event_id = Some(event_id);
        }
        c.insert_messages(&[&notice], now).await?;
    }
    let report = ErasureReport {
        subject_id,
        address_hash,
        event_id,
        events_kept,
        decisions,
        deliveries,
        cancelled,
        bodies_removed,
        replies_scrubbed,
        bounces: bounces.len() as u64,
        bounces_dropped,
    };
    let detail = format!(
        "{} events kept without proof, {} decisions, {} deliveries, {} copies cancelled, {} bodies removed, {} bounces",
        report.events_kept,
        report.decisions,
        report.deliveries,
        report.cancelled,
        report.bodies_removed,
        report.bounces
    );
    let target = event_id.to_string();
    audit::about(
        c,
        &e.actor,
        AuditAction::SubjectErase,
        Some(&report.subject_id),
        target,
        detail,
        now,
    )
    .await?;
    Ok(Some(report))
}

/// The subject of the address, its address removed: the live one, or a
/// new suppression when only decisions or deliveries name the address;
/// `None` when nothing does.
async fn take_subject<C: Conn>(
    c: &mut C,
    e: &Erasure,
    now: i64,
) -> Result<Option<(String, String)>, StoreError> {
    let live = c
        .fetch_optional(
            Sql::new("SELECT id FROM subjects WHERE address = $1")
                .push(C::FOR_UPDATE)
                .arg(&e.address),
        )
        .await?;
    if let Some(r) = live {
        let id = r.text(0)?;
        // A subject made before the identity rules may hold the hash of the
        // address as it was written then: it gets the hash of the identity
        // under the current key, which every spelling finds. Later ones
        // hold that already (under the key of their time) and keep it.
        let s = &e.new_subject;
        let hash = c
            .fetch_one(
                Sql::new(
                    "UPDATE subjects SET address = NULL, erased_at = $2, \
                     address_hash = CASE WHEN created_at < (SELECT done_at FROM store_steps WHERE name = $5) \
                         THEN $3 ELSE address_hash END, \
                     key_id = CASE WHEN created_at < (SELECT done_at FROM store_steps WHERE name = $5) \
                         THEN $4 ELSE key_id END \
                     WHERE id = $1 RETURNING address_hash",
                )
                .arg(&id)
                .arg(now)
                .arg(&s.address_hash)
                .arg(&s.key_id)
                .arg(super::identity::STEP),
            )
            .await?
            .text(0)?;
        return Ok(Some((id, hash)));
    }
    let known = c
        .fetch_one(
            Sql::new(
                "SELECT EXISTS (SELECT 1 FROM decisions WHERE recipient = $1) \
                 OR EXISTS (SELECT 1 FROM deliveries WHERE recipient = $1)",
            )
            .arg(&e.address),
        )
        .await?
        .flag(0)?;
    if !known {
        return Ok(None);
    }
    let s = &e.new_subject;
    c.execute(
        Sql::new(
            "INSERT INTO subjects (id, address, address_hash, key_id, created_at, erased_at) \
             VALUES ($1, NULL, $2, $3, $4, $4)",
        )
        .arg(&s.id)
        .arg(&s.address_hash)
        .arg(&s.key_id)
        .arg(now),
    )
    .await?;
    Ok(Some((s.id.clone(), s.address_hash.clone())))
}

/// Closes the copies to `address` not sent yet, each with a decision row
/// saying so; returns how many.
async fn cancel_unsent<C: Conn>(
    c: &mut C,
    address: &str,
    tag: &str,
    subject_id: &str,
    event_id: i64,
    now: i64,
) -> Result<u64, StoreError> {
    // Copies not sent yet are never sent. A copy being sent right now (on
    // any node) cannot be called back, but its row is closed too: the
    // worker records outcomes only on rows still `sending`, so it can
    // never be retried to the tag that replaces the address.
    let cancelled = c
        .fetch_all(
            Sql::new(
                "UPDATE deliveries SET status = 'suppressed-late', last_reply = 'erased', recipient = $2, rcpt_to = NULL, \
                 lease_owner = NULL, lease_until = NULL, next_attempt_at = $3, updated_at = $3 \
                 WHERE recipient = $1 AND status IN ('queued', 'deferred', 'sending', 'held') RETURNING message_id",
            )
            .arg(address)
            .arg(tag)
            .arg(now),
        )
        .await?;
    for r in &cancelled {
        let message_id = r.text(0)?;
        c.execute(
            Sql::new(
                "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) \
                 SELECT id, $2, $3, campaign, 'suppress', 'erased', $4, 'send', $5 FROM messages WHERE id = $1",
            )
            .arg(&message_id)
            .arg(tag)
            .arg(subject_id)
            .arg(event_id)
            .arg(now),
        )
        .await?;
    }
    count_cancelled(c, &first_texts(&cancelled)?, now).await?;
    Ok(cancelled.len() as u64)
}

/// Counts the relayed copies among these (a message id per copy) as
/// suppressed late, reason `erased` (the overview's rollups; the relay's
/// own mail is not counted there).
async fn count_cancelled<C: Conn>(
    c: &mut C,
    message_ids: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let mut campaigns = std::collections::HashMap::new();
    for chunk in message_ids.chunks(C::LIST_CHUNK) {
        let q = Sql::new("SELECT id, campaign FROM messages WHERE kind = 'relay' AND id")
            .texts::<C>(chunk);
        for r in c.fetch_all(q).await? {
            campaigns.insert(r.text(0)?, r.text(1)?);
        }
    }
    let late = message_ids
        .iter()
        .filter_map(|id| campaigns.get(id))
        .map(|campaign| (campaign.as_str(), crate::consent::policy::Reason::Erased));
    super::rollups::count_late(c, late, now).await
}

/// Masks the address in the stored replies of its copies, the last one
/// and each attempt's (what the upstream answered, which may quote it:
/// Postfix's "550 5.1.1 <erin@example.net>: Recipient address rejected");
/// replies are stored masked since `outcomes` does it, rows recorded
/// before are scrubbed here. Returns how many replies changed.
async fn scrub_replies<C: Conn>(c: &mut C, address: &str) -> Result<u64, StoreError> {
    let last = mask_replies(
        c,
        Sql::new(
            "SELECT id, last_reply, rcpt_to FROM deliveries \
             WHERE recipient = $1 AND last_reply LIKE '%@%'",
        )
        .arg(address),
        "UPDATE deliveries SET last_reply = $2 WHERE id = $1",
        address,
    )
    .await?;
    let attempts = mask_replies(
        c,
        Sql::new(
            "SELECT a.id, a.reply, d.rcpt_to FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE d.recipient = $1 AND a.reply LIKE '%@%'",
        )
        .arg(address),
        "UPDATE delivery_attempts SET reply = $2 WHERE id = $1",
        address,
    )
    .await?;
    Ok(last + attempts)
}

/// Masks `address`, and the spelling the copy went to where the row names
/// one, in the replies `select` reads (`id, reply, spelling`); `update`
/// (`$1` the id, `$2` the reply) writes each changed one back. Returns how
/// many changed.
async fn mask_replies<C: Conn>(
    c: &mut C,
    select: Sql<'_>,
    update: &'static str,
    address: &str,
) -> Result<u64, StoreError> {
    let rows = c.fetch_all(select).await?;
    let mut scrubbed = 0;
    for r in &rows {
        let reply = r.text(1)?;
        let masked = crate::mail::mask::mask_address(&reply, address).into_owned();
        let masked = match r.opt_text(2)? {
            Some(spelling) => crate::mail::mask::mask_address(&masked, &spelling).into_owned(),
            None => masked,
        };
        if masked != reply {
            c.execute(Sql::new(update).arg(r.int(0)?).arg(&*masked))
                .await?;
            scrubbed += 1;
        }
    }
    Ok(scrubbed)
}

/// The bounces about the address (see `reads::dsns_about`): their bodies
/// go; one not sent yet to the sender is dropped (`suppressed-late`, reply
/// `erased`, with a decision row saying so), as the copies to the address
/// are; the replies of their deliveries (and of their attempts) lose the
/// address too. Returns how many were dropped.
async fn erase_bounces<C: Conn>(
    c: &mut C,
    bounces: &[String],
    address: &str,
    event_id: i64,
    now: i64,
) -> Result<u64, StoreError> {
    if bounces.is_empty() {
        return Ok(0);
    }
    let dropped = first_texts(
        &c.fetch_all(
            Sql::new(
                "UPDATE deliveries SET status = 'suppressed-late', last_reply = 'erased', \
                 lease_owner = NULL, lease_until = NULL, next_attempt_at = $1, updated_at = $1 \
                 WHERE status IN ('queued', 'deferred', 'sending', 'held') AND message_id",
            )
            .arg(now)
            .texts::<C>(bounces)
            .push(" RETURNING message_id"),
        )
        .await?,
    )?;
    for message_id in &dropped {
        // The decision row names the sender the bounce was for, and the
        // erase event that ended it.
        c.execute(
            Sql::new(
                "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) \
                 SELECT d.message_id, d.recipient, NULL, '', 'suppress', 'erased', $2, 'send', $3 \
                 FROM deliveries d WHERE d.message_id = $1",
            )
            .arg(message_id)
            .arg(event_id)
            .arg(now),
        )
        .await?;
    }
    mask_replies(
        c,
        Sql::new(
            "SELECT id, last_reply, CAST(NULL AS TEXT) FROM deliveries WHERE last_reply LIKE '%@%' AND message_id",
        )
        .texts::<C>(bounces),
        "UPDATE deliveries SET last_reply = $2 WHERE id = $1",
        address,
    )
    .await?;
    mask_replies(
        c,
        Sql::new(
            "SELECT a.id, a.reply, CAST(NULL AS TEXT) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE a.reply LIKE '%@%' AND d.message_id",
        )
        .texts::<C>(bounces),
        "UPDATE delivery_attempts SET reply = $2 WHERE id = $1",
        address,
    )
    .await?;
    c.execute(
        Sql::new("UPDATE messages SET body = NULL WHERE body IS NOT NULL AND id")
            .texts::<C>(bounces),
    )
    .await?;
    Ok(dropped.len() as u64)
}

/// Removes the bodies of messages whose only recipient was the address
/// (now `tag`) and that have nothing left to send. A body may name its
/// recipient (To:, a greeting); one shared with other recipients stays
/// until `[retention]` purges it.
async fn remove_bodies<C: Conn>(c: &mut C, tag: &str) -> Result<u64, StoreError> {
    c.execute(
        Sql::new(
            "UPDATE messages SET body = NULL WHERE body IS NOT NULL \
             AND id IN (SELECT message_id FROM decisions WHERE recipient = $1) \
             AND NOT EXISTS (SELECT 1 FROM decisions o WHERE o.message_id = messages.id AND o.recipient <> $1) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.id \
                 AND d.status IN ('queued', 'sending', 'deferred', 'held'))",
        )
        .arg(tag),
    )
    .await
}

/// The reports that came back about the person lose their raw message
/// and diagnostic (what they changed stays); a stored report that names
/// no one but whose raw message holds the address loses it too. The
/// suppressions stay: the subject keeps its keyed hash.
async fn scrub_reports<C: Conn>(
    c: &mut C,
    subject_id: &str,
    address: &str,
) -> Result<(), StoreError> {
    c.execute(
        Sql::new("UPDATE feedback_reports SET raw = NULL, detail = NULL WHERE subject_id = $1")
            .arg(subject_id),
    )
    .await?;
    c.execute(Sql::new("DELETE FROM soft_bounces WHERE subject_id = $1").arg(subject_id))
        .await?;
    let needle = address.to_lowercase().into_bytes();
    let mut after = 0i64;
    loop {
        let rows = c
            .fetch_all(
                Sql::new(
                    "SELECT id, raw FROM feedback_reports WHERE subject_id IS NULL AND raw IS NOT NULL AND id > $1 \
                     ORDER BY id LIMIT 200",
                )
                .arg(after),
            )
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.int(0)?;
        let mut naming = Vec::new();
        for row in &rows {
            let raw = row.opt_bytes(1)?.unwrap_or_default().to_ascii_lowercase();
            if raw.windows(needle.len()).any(|w| w == needle.as_slice()) {
                naming.push(row.int(0)?);
            }
        }
        if !naming.is_empty() {
            c.execute(
                Sql::new("UPDATE feedback_reports SET raw = NULL, detail = NULL WHERE id")
                    .ints::<C>(&naming),
            )
            .await?;
        }
    }
    Ok(())
}
