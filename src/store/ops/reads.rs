//! The read queries: consent of a message's recipients, the queue, the
//! decision log, everything held about one address, and the lookups of
//! imports and `consent expiring`. Each runs on one connection the caller
//! gives (a reader, or a snapshot transaction where several tables must
//! agree).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{Conn, Sql, first_texts, lookup};
use crate::consent;
use crate::store::rows::{
    self, Cols, DECISIONS_SELECT, DELIVERIES_SELECT, decision_from_row, delivery_from_row,
    event_from_row, grant_from_row, held_bounce_from_row, held_message_from_row, queue_from_row,
    state_from_row,
};
use crate::store::{
    ConsentEvent, DecisionFilter, DecisionRow, DeliveryStatus, GrantRow, KnownRecipient, QueuePage,
    QueueRow, StateRow, StoreError, SubjectConsent, SubjectInfo, SubjectRecord, SubjectRow,
};

/// Consent of these addresses for `campaign`, in one round trip: live
/// subjects by address, and erased ones (whose address is gone) by the
/// keyed hash of the address.
pub(in crate::store) async fn recipients_consent<C: Conn>(
    c: &mut C,
    campaign: &str,
    addresses: &[String],
    hashes: &[Vec<String>],
    now: i64,
) -> Result<HashMap<String, KnownRecipient>, StoreError> {
    if addresses.is_empty() {
        return Ok(HashMap::new());
    }
    let all_hashes: Vec<String> = hashes.iter().flatten().cloned().collect();
    // The source of the event a state rests on (a complaint says
    // `complained`), and whether an active bounce suppression holds: an
    // indexed lookup each, for the subjects the message names.
    let rows = c
        .fetch_all(
            Sql::new(
                "SELECT s.address, s.id, s.address_hash, cs.campaign, cs.status, cs.since, cs.event_id, ce.source, \
                 EXISTS (SELECT 1 FROM suppressions su WHERE su.subject_id = s.id AND su.removed_at IS NULL \
                 AND (su.until_at IS NULL OR su.until_at > $2)) \
                 FROM subjects s LEFT JOIN consent_state cs ON cs.subject_id = s.id AND cs.campaign IN ($1, '*') \
                 LEFT JOIN consent_events ce ON ce.id = cs.event_id \
                 WHERE s.address",
            )
            .arg(campaign)
            .arg(now)
            .texts::<C>(addresses)
            .push(" OR (s.address IS NULL AND s.merged_into IS NULL AND s.address_hash")
            .texts::<C>(&all_hashes)
            .push(")"),
        )
        .await?;
    rows::known_recipients(&rows, addresses, hashes)
}

/// The earliest time a queued or deferred delivery becomes due.
pub(in crate::store) async fn next_due<C: Conn>(c: &mut C) -> Result<Option<i64>, StoreError> {
    c.fetch_one(Sql::new(
        "SELECT MIN(next_attempt_at) FROM deliveries WHERE status IN ('queued', 'deferred')",
    ))
    .await?
    .opt_int(0)
}

/// Message bodies by queue id (messages without one are left out).
pub(in crate::store) async fn message_bodies<C: Conn>(
    c: &mut C,
    ids: &[String],
) -> Result<HashMap<String, Arc<Vec<u8>>>, StoreError> {
    let mut out = HashMap::with_capacity(ids.len());
    if ids.is_empty() {
        return Ok(out);
    }
    let q = Sql::new("SELECT id, body FROM messages WHERE id").texts::<C>(ids);
    for row in c.fetch_all(q).await? {
        if let Some(body) = row.opt_bytes(1)? {
            out.insert(row.text(0)?, Arc::new(body));
        }
    }
    Ok(out)
}

/// A live subject by address: `id, address, created_at`.
async fn live_subject<C: Conn>(
    c: &mut C,
    address: &str,
) -> Result<Option<SubjectInfo>, StoreError> {
    c.fetch_optional(
        Sql::new("SELECT id, address, created_at FROM subjects WHERE address = $1").arg(address),
    )
    .await?
    .map(|r| {
        Ok(SubjectInfo {
            id: r.text(0)?,
            address: r.text(1)?,
            created_at: r.int(2)?,
        })
    })
    .transpose()
}

/// Everything about one address's consent; `None` if unknown.
pub(in crate::store) async fn subject_consent<C: Conn>(
    c: &mut C,
    address: &str,
) -> Result<Option<SubjectConsent>, StoreError> {
    let Some(s) = live_subject(c, address).await? else {
        return Ok(None);
    };
    let states = subject_states(c, &s.id).await?;
    let events = events_of(c, &s.id).await?;
    Ok(Some(SubjectConsent {
        subject_id: s.id,
        address: s.address,
        created_at: s.created_at,
        states,
        events,
    }))
}

/// Everything held about one address; `None` if nothing is.
pub(in crate::store) async fn subject_record<C: Conn>(
    c: &mut C,
    address: &str,
) -> Result<Option<SubjectRecord>, StoreError> {
    let subject = live_subject(c, address).await?;
    let (mut states, mut events) = (Vec::new(), Vec::new());
    if let Some(s) = &subject {
        states = subject_states(c, &s.id).await?;
        events = events_of(c, &s.id).await?;
    }
    let decisions = c
        .fetch_all(
            Sql::new(DECISIONS_SELECT)
                .push(" WHERE d.recipient = $1 ORDER BY d.id")
                .arg(address),
        )
        .await?
        .iter()
        .map(decision_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let mut deliveries = c
        .fetch_all(
            Sql::new(DELIVERIES_SELECT)
                .push(" WHERE d.recipient = $1 ORDER BY d.id")
                .arg(address),
        )
        .await?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    super::trace::attach_attempts(c, &mut deliveries).await?;
    let messages = c
        .fetch_all(
            Sql::new(
                "SELECT m.id, m.kind, m.campaign, m.received_at, m.body, \
                 (SELECT COUNT(DISTINCT o.recipient) FROM decisions o WHERE o.message_id = m.id AND o.recipient <> $1) \
                 FROM messages m WHERE m.body IS NOT NULL \
                 AND m.id IN (SELECT message_id FROM decisions WHERE recipient = $1) ORDER BY m.received_at, m.id",
            )
            .arg(address),
        )
        .await?
        .iter()
        .map(held_message_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let bounce_ids = dsns_about(c, address).await?;
    let bounces = c
        .fetch_all(
            Sql::new(
                "SELECT m.id, d.message_id, d.id, b.recipient, b.status, m.received_at, m.body, \
                 (SELECT COUNT(DISTINCT o.recipient) FROM decisions o WHERE o.message_id = d.message_id AND o.recipient <> $1) \
                 FROM messages m LEFT JOIN deliveries d ON d.id = m.about_delivery \
                 LEFT JOIN deliveries b ON b.message_id = m.id WHERE m.id",
            )
            .arg(address)
            .texts::<C>(&bounce_ids)
            .push(" ORDER BY m.id"),
        )
        .await?
        .iter()
        .map(held_bounce_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let suppressions = match &subject {
        Some(_) => super::suppressions::suppressions_of(c, address, crate::time::now_ms()).await?,
        None => Vec::new(),
    };
    let record = SubjectRecord {
        suppressions,
        subject,
        states,
        events,
        decisions,
        deliveries,
        messages,
        bounces,
    };
    Ok((!record.is_empty()).then_some(record))
}

/// The bounces (DSNs to the sender) about the copies to `address`: by the
/// delivery each reports on, and, for bounces written before that link
/// was stored, by the address in their body. Queue ids.
pub(in crate::store) async fn dsns_about<C: Conn>(
    c: &mut C,
    address: &str,
) -> Result<Vec<String>, StoreError> {
    let mut ids = first_texts(
        &c.fetch_all(
            Sql::new(
                "SELECT m.id FROM messages m JOIN deliveries d ON d.id = m.about_delivery \
                 WHERE m.kind = 'dsn' AND d.recipient = $1 ORDER BY m.id",
            )
            .arg(address),
        )
        .await?,
    )?;
    let needle = address.to_lowercase().into_bytes();
    if needle.is_empty() {
        return Ok(ids);
    }
    for r in c
        .fetch_all(Sql::new(
            "SELECT id, body FROM messages WHERE kind = 'dsn' AND about_delivery IS NULL AND body IS NOT NULL",
        ))
        .await?
    {
        let body = r.opt_bytes(1)?.unwrap_or_default().to_ascii_lowercase();
        if body.windows(needle.len()).any(|w| w == needle) {
            ids.push(r.text(0)?);
        }
    }
    Ok(ids)
}

/// The subject a link names, by its opaque id; for a subject merged into
/// another (two spellings of one mailbox), the one it was merged into.
pub(in crate::store) async fn subject_by_id<C: Conn>(
    c: &mut C,
    id: &str,
) -> Result<Option<SubjectRow>, StoreError> {
    c.fetch_optional(
        Sql::new(
            "SELECT s.id, s.address FROM subjects l JOIN subjects s ON s.id = COALESCE(l.merged_into, l.id) \
             WHERE l.id = $1",
        )
        .arg(id),
    )
        .await?
        .map(|r| {
            Ok(SubjectRow {
                id: r.text(0)?,
                address: r.opt_text(1)?,
            })
        })
        .transpose()
}

/// Current consent state of a subject, every campaign (and `*`).
pub(in crate::store) async fn subject_states<C: Conn>(
    c: &mut C,
    subject_id: &str,
) -> Result<Vec<StateRow>, StoreError> {
    c.fetch_all(
        Sql::new(
            "SELECT campaign, status, since, event_id FROM consent_state WHERE subject_id = $1 ORDER BY campaign",
        )
        .arg(subject_id),
    )
    .await?
    .iter()
    .map(state_from_row)
    .collect()
}

async fn events_of<C: Conn>(c: &mut C, subject_id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
    c.fetch_all(
        Sql::new(
            "SELECT id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at \
             FROM consent_events WHERE subject_id = $1 ORDER BY id",
        )
        .arg(subject_id),
    )
    .await?
    .iter()
    .map(event_from_row)
    .collect()
}

/// The decision log, filtered: the oldest rows first, or the newest
/// first (`newest_first`). Each filter is an indexed lookup (recipient,
/// campaign, message, and the Message-ID through its index on `messages`).
pub(in crate::store) async fn decisions<C: Conn>(
    c: &mut C,
    f: &DecisionFilter,
) -> Result<Vec<DecisionRow>, StoreError> {
    let forms = f.message_id.as_deref().map(crate::mail::ids::stored_forms);
    let mut q = Sql::new(DECISIONS_SELECT).push(" WHERE 1 = 1");
    if let Some(r) = &f.recipient {
        q = q.push(" AND d.recipient = ").bind(r);
    }
    if let Some(campaign) = &f.campaign {
        q = q.push(" AND d.campaign = ").bind(campaign);
    }
    if let Some(id) = &f.queue_id {
        q = q.push(" AND d.message_id = ").bind(id);
    }
    if let Some([bracketed, bare]) = &forms {
        q = q
            .push(
                " AND d.message_id IN (SELECT h.id FROM messages h WHERE h.header_message_id IN (",
            )
            .bind(bracketed)
            .push(", ")
            .bind(bare)
            .push("))");
    }
    if let Some(s) = f.since {
        q = q.push(" AND d.at >= ").bind(s);
    }
    if let Some(a) = f.after_id {
        q = q.push(" AND d.id > ").bind(a);
    }
    if let Some(b) = f.before_id {
        q = q.push(" AND d.id < ").bind(b);
    }
    q = q
        .push(if f.newest_first {
            " ORDER BY d.id DESC LIMIT "
        } else {
            " ORDER BY d.id LIMIT "
        })
        .bind(f.limit);
    c.fetch_all(q)
        .await?
        .iter()
        .map(decision_from_row)
        .collect()
}

/// How many copies are queued, deferred, being sent and held, by status
/// (held through its partial index).
pub(in crate::store) async fn queue_depth<C: Conn>(
    c: &mut C,
) -> Result<Vec<(String, i64)>, StoreError> {
    // Two index range counts: the partial index of due rows and the
    // status index for leased ones.
    c.fetch_all(Sql::new(
        "SELECT status, COUNT(*) FROM deliveries WHERE status IN ('queued', 'deferred') GROUP BY status \
         UNION ALL SELECT 'sending', COUNT(*) FROM deliveries WHERE status = 'sending' \
         UNION ALL SELECT 'held', COUNT(*) FROM deliveries WHERE status = 'held'",
    ))
    .await?
    .iter()
    .map(|r| Ok((r.text(0)?, r.int(1)?)))
    .collect()
}

/// The columns [`queue_from_row`] reads, from `deliveries d` and `messages m`.
const QUEUE_ROW: &str = "SELECT d.id, d.message_id, m.kind, d.recipient, m.mail_from, m.campaign, \
     d.status, d.attempts, d.next_attempt_at, d.last_reply, m.received_at \
     FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE ";

/// Deliveries not yet final (queued, sending, deferred, held) and failed ones.
pub(in crate::store) async fn queue<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<QueueRow>, StoreError> {
    c.fetch_all(
        Sql::new(QUEUE_ROW)
            .push(
                "d.status IN ('queued', 'sending', 'deferred', 'held', 'failed') \
                 ORDER BY d.id LIMIT $1",
            )
            .arg(limit),
    )
    .await?
    .iter()
    .map(queue_from_row)
    .collect()
}

/// The predicate of the partial index `deliveries_attention` (migration
/// 0015), word for word: both planners use a partial index only when the
/// query states its predicate (SQLite does not infer it from
/// `status = $1`, nor PostgreSQL from a parameter).
const ATTENTION: &str = "d.status IN ('deferred', 'held', 'failed')";

/// The console's queue view: the copies in `status` (one of
/// `deliveries_attention`'s: deferred, held, failed), newest first, older
/// than the copy `before` when given; the queue's counts beside them.
pub(in crate::store) async fn queue_page<C: Conn>(
    c: &mut C,
    status: DeliveryStatus,
    before: Option<i64>,
    limit: i64,
) -> Result<QueuePage, StoreError> {
    let mut q = Sql::new(QUEUE_ROW)
        .push(ATTENTION)
        .push(" AND d.status = $1")
        .arg(status.as_str());
    if let Some(before) = before {
        q = q.push(" AND d.id < ").bind(before);
    }
    let rows = c
        .fetch_all(q.push(" ORDER BY d.id DESC LIMIT ").bind(limit))
        .await?
        .iter()
        .map(queue_from_row)
        .collect::<Result<_, _>>()?;
    let failed = c
        .fetch_one(
            Sql::new("SELECT COUNT(*) FROM deliveries d WHERE ")
                .push(ATTENTION)
                .push(" AND d.status = 'failed'"),
        )
        .await?
        .int(0)?;
    Ok(QueuePage {
        now: super::rollups::queue_now(c).await?,
        failed,
        rows,
    })
}

/// Held copies per campaign (through `deliveries_held`).
pub(in crate::store) async fn held_by_campaign<C: Conn>(
    c: &mut C,
) -> Result<HashMap<String, i64>, StoreError> {
    c.fetch_all(Sql::new(
        "SELECT m.campaign, COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.message_id \
         WHERE d.status = 'held' GROUP BY m.campaign",
    ))
    .await?
    .iter()
    .map(|r| Ok((r.text(0)?, r.int(1)?)))
    .collect()
}

/// Which of these import keys are stored.
pub(in crate::store) async fn present_import_keys<C: Conn>(
    c: &mut C,
    keys: &[String],
) -> Result<HashSet<String>, StoreError> {
    lookup(
        c,
        "SELECT import_key FROM consent_events WHERE import_key",
        keys,
    )
    .await
}

/// Which of these address hashes are of erased subjects.
pub(in crate::store) async fn erased_hashes<C: Conn>(
    c: &mut C,
    hashes: &[String],
) -> Result<HashSet<String>, StoreError> {
    lookup(
        c,
        "SELECT address_hash FROM subjects WHERE address IS NULL AND merged_into IS NULL AND address_hash",
        hashes,
    )
    .await
}

/// Current grants for `campaign` given at or before `cutoff`.
pub(in crate::store) async fn grants_since_before<C: Conn>(
    c: &mut C,
    campaign: &str,
    cutoff: i64,
) -> Result<Vec<GrantRow>, StoreError> {
    // A grant an "unsubscribe from all" came after does not count (as
    // `policy::decide` reads it), nor one of an erased subject.
    c.fetch_all(
        Sql::new(
            "SELECT s.id, s.address, cs.since, cs.event_id FROM consent_state cs \
             JOIN subjects s ON s.id = cs.subject_id \
             LEFT JOIN consent_state a ON a.subject_id = cs.subject_id AND a.campaign = $3 \
             WHERE cs.campaign = $1 AND cs.status = 'granted' AND cs.since <= $2 \
             AND s.address IS NOT NULL \
             AND NOT (a.status IS NOT NULL AND a.status = 'withdrawn' \
                 AND (a.since > cs.since OR (a.since = cs.since AND a.event_id > cs.event_id))) \
             ORDER BY cs.since, s.address",
        )
        .arg(campaign)
        .arg(cutoff)
        .arg(consent::ALL_CAMPAIGNS),
    )
    .await?
    .iter()
    .map(grant_from_row)
    .collect()
}

/// Reports stored but not yet applied, oldest first.
pub(in crate::store) async fn pending_reports<C: Conn>(
    c: &mut C,
    limit: i64,
) -> Result<Vec<crate::store::PendingReport>, StoreError> {
    c.fetch_all(
        Sql::new(
            "SELECT id, envelope_to, raw FROM feedback_reports WHERE state = 'pending' \
             ORDER BY received_at, id LIMIT $1",
        )
        .arg(limit),
    )
    .await?
    .iter()
    .map(|r| {
        Ok(crate::store::PendingReport {
            id: r.int(0)?,
            envelope_to: r.opt_text(1)?,
            raw: r.opt_bytes(2)?.unwrap_or_default(),
        })
    })
    .collect()
}
