//! Stored rows to the store's types, the same for both backends: each
//! backend reads its rows through [`Cols`], these functions make the values.

use std::collections::HashMap;

use sqlx::Row;

use super::*;
use crate::consent::{self, Source, State};

/// The column reads the mappers need, by position.
pub(super) trait Cols {
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
    /// A boolean expression (`EXISTS`): SQLite answers an integer.
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
}

macro_rules! cols {
    ($row:ty, |$r:ident, $i:ident| $flag:expr) => {
        impl Cols for $row {
            fn int(&self, i: usize) -> Result<i64, StoreError> {
                Ok(self.try_get(i)?)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
                Ok(self.try_get(i)?)
            }
            fn text(&self, i: usize) -> Result<String, StoreError> {
                Ok(self.try_get(i)?)
            }
            fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
                Ok(self.try_get(i)?)
            }
            fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(self.try_get(i)?)
            }
            fn flag(&self, $i: usize) -> Result<bool, StoreError> {
                let $r = self;
                Ok($flag)
            }
        }
    };
}
cols!(sqlx::sqlite::SqliteRow, |r, i| r.try_get::<i64, _>(i)? != 0);
cols!(sqlx::postgres::PgRow, |r, i| r.try_get::<bool, _>(i)?);

/// A stored wire name (`table.column`) as its enum.
pub(super) fn parsed<T: std::str::FromStr<Err = String>>(
    value: String,
    column: &str,
) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Builds a [`State`] from stored columns.
pub(super) fn state_from(status: &str, since: i64, event_id: i64) -> Result<State, StoreError> {
    Ok(State {
        status: parsed(status.to_owned(), "consent_state.status")?,
        since,
        event_id,
    })
}

/// The decision rows with their messages' kind and `Message-ID`, as
/// [`decision_from_row`] reads them (`d` the decisions, `m` the messages);
/// the caller adds `WHERE`, `ORDER BY`.
pub(super) const DECISIONS_SELECT: &str = "SELECT d.id, d.at, d.message_id, d.recipient, d.campaign, d.outcome, \
     d.reason, d.event_id, d.stage, m.kind, m.header_message_id \
     FROM decisions d JOIN messages m ON m.id = d.message_id";

/// A row of [`DECISIONS_SELECT`].
pub(super) fn decision_from_row(r: &impl Cols) -> Result<DecisionRow, StoreError> {
    Ok(DecisionRow {
        id: r.int(0)?,
        at: r.int(1)?,
        message_id: r.text(2)?,
        recipient: r.text(3)?,
        campaign: r.text(4)?,
        outcome: parsed(r.text(5)?, "decisions.outcome")?,
        reason: parsed(r.text(6)?, "decisions.reason")?,
        event_id: r.opt_int(7)?,
        stage: r.text(8)?,
        kind: parsed(r.text(9)?, "messages.kind")?,
        header_message_id: r.opt_text(10)?,
    })
}

/// `id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at`
pub(super) fn event_from_row(r: &impl Cols) -> Result<ConsentEvent, StoreError> {
    Ok(ConsentEvent {
        id: r.int(0)?,
        subject_id: r.text(1)?,
        campaign: r.text(2)?,
        action: parsed(r.text(3)?, "consent_events.action")?,
        at: r.int(4)?,
        source: parsed(r.text(5)?, "consent_events.source")?,
        ip: r.opt_text(6)?,
        user_agent: r.opt_text(7)?,
        evidence: r.opt_text(8)?,
        recorded_at: r.int(9)?,
    })
}

/// `campaign, status, since, event_id`
pub(super) fn state_from_row(r: &impl Cols) -> Result<StateRow, StoreError> {
    let s = state_from(&r.text(1)?, r.int(2)?, r.int(3)?)?;
    Ok(StateRow {
        campaign: r.text(0)?,
        status: s.status,
        since: s.since,
        event_id: s.event_id,
    })
}

/// The delivery rows with their messages' columns, as
/// [`delivery_from_row`] reads them (`d` the deliveries, `m` the
/// messages); the caller adds `WHERE`, `ORDER BY`.
pub(super) const DELIVERIES_SELECT: &str = "SELECT d.id, d.message_id, m.kind, m.header_message_id, m.campaign, \
     COALESCE(d.rcpt_to, d.recipient), d.status, d.attempts, d.next_attempt_at, d.last_reply, d.created_at, d.updated_at \
     FROM deliveries d JOIN messages m ON m.id = d.message_id";

/// A row of [`DELIVERIES_SELECT`], its attempts not read yet
/// (`ops::trace::attach_attempts`).
pub(super) fn delivery_from_row(r: &impl Cols) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: r.int(0)?,
        message_id: r.text(1)?,
        kind: parsed(r.text(2)?, "messages.kind")?,
        header_message_id: r.opt_text(3)?,
        campaign: r.text(4)?,
        sent_to: r.text(5)?,
        status: parsed(r.text(6)?, "deliveries.status")?,
        attempts: r.int(7)?,
        next_attempt_at: r.int(8)?,
        last_reply: r.opt_text(9)?,
        created_at: r.int(10)?,
        updated_at: r.int(11)?,
        attempt_log: Vec::new(),
    })
}

/// `delivery_id, at, status, reply` of `delivery_attempts`: the delivery
/// and its attempt.
pub(super) fn attempt_from_row(r: &impl Cols) -> Result<(i64, DeliveryAttempt), StoreError> {
    Ok((
        r.int(0)?,
        DeliveryAttempt {
            at: r.int(1)?,
            status: parsed(r.text(2)?, "delivery_attempts.status")?,
            reply: r.text(3)?,
        },
    ))
}

/// `id, kind, campaign, received_at, body, other_recipients`
pub(super) fn held_message_from_row(r: &impl Cols) -> Result<HeldMessage, StoreError> {
    Ok(HeldMessage {
        id: r.text(0)?,
        kind: parsed(r.text(1)?, "messages.kind")?,
        campaign: r.text(2)?,
        received_at: r.int(3)?,
        body: r.opt_bytes(4)?.unwrap_or_default(),
        other_recipients: r.int(5)?,
    })
}

/// `id, about message_id, about delivery, to, status, received_at, body,
/// other_recipients`
pub(super) fn held_bounce_from_row(r: &impl Cols) -> Result<HeldBounce, StoreError> {
    let about = match (r.opt_text(1)?, r.opt_int(2)?) {
        (Some(message), Some(delivery)) => Some((message, delivery)),
        _ => None,
    };
    Ok(HeldBounce {
        id: r.text(0)?,
        other_recipients: about.as_ref().map(|_| r.int(7)).transpose()?,
        about,
        to: r.opt_text(3)?,
        status: r
            .opt_text(4)?
            .map(|s| parsed(s, "deliveries.status"))
            .transpose()?,
        created_at: r.int(5)?,
        body: r.opt_bytes(6)?,
    })
}

/// `id, message_id, kind, recipient, mail_from, campaign, status, attempts,
/// next_attempt_at, last_reply, received_at`
pub(super) fn queue_from_row(r: &impl Cols) -> Result<QueueRow, StoreError> {
    Ok(QueueRow {
        id: r.int(0)?,
        message_id: r.text(1)?,
        kind: parsed(r.text(2)?, "messages.kind")?,
        recipient: r.text(3)?,
        mail_from: r.text(4)?,
        campaign: r.text(5)?,
        status: parsed(r.text(6)?, "deliveries.status")?,
        attempts: r.int(7)?,
        next_attempt_at: r.int(8)?,
        last_reply: r.opt_text(9)?,
        received_at: r.int(10)?,
    })
}

/// `event_id, subject_id, status, attempts, next_attempt_at, last_error, created_at`
pub(super) fn webhook_from_row(r: &impl Cols) -> Result<WebhookRow, StoreError> {
    Ok(WebhookRow {
        event_id: r.int(0)?,
        subject_id: r.text(1)?,
        status: r.text(2)?,
        attempts: r.int(3)?,
        next_attempt_at: r.int(4)?,
        last_error: r.opt_text(5)?,
        created_at: r.int(6)?,
    })
}

/// `subject_id, address, since, event_id`
pub(super) fn grant_from_row(r: &impl Cols) -> Result<GrantRow, StoreError> {
    Ok(GrantRow {
        subject_id: r.text(0)?,
        address: r.text(1)?,
        since: r.int(2)?,
        event_id: r.int(3)?,
    })
}

/// What the recipients' rows say (`address, id, address_hash, campaign,
/// status, since, event_id`, live subjects joined with their state for the
/// campaign and `*`, erased subjects by hash, address NULL), per address.
pub(super) fn known_recipients(
    rows: &[impl Cols],
    addresses: &[String],
    hashes: &[Vec<String>],
) -> Result<HashMap<String, KnownRecipient>, StoreError> {
    let mut known: HashMap<String, KnownRecipient> = HashMap::with_capacity(addresses.len());
    let mut erased_hashes: Vec<String> = Vec::new();
    for row in rows {
        let Some(address) = row.opt_text(0)? else {
            erased_hashes.push(row.text(2)?);
            continue;
        };
        let entry = known.entry(address).or_default();
        entry.subject_id = Some(row.text(1)?);
        entry.consent.bounced |= row.flag(8)?;
        if let Some(c) = row.opt_text(3)? {
            let state = state_from(&row.text(4)?, row.int(5)?, row.int(6)?)?;
            let by_complaint = row.opt_text(7)?.as_deref() == Some(Source::Complaint.as_str());
            if c == consent::ALL_CAMPAIGNS {
                entry.consent.all = Some(state);
                entry.consent.all_by_complaint = by_complaint;
            } else {
                entry.consent.campaign = Some(state);
                entry.consent.campaign_by_complaint = by_complaint;
            }
        }
    }
    if !erased_hashes.is_empty() {
        for (address, hs) in addresses.iter().zip(hashes) {
            if !known.contains_key(address) && hs.iter().any(|h| erased_hashes.contains(h)) {
                known.entry(address.clone()).or_default().consent.erased = true;
            }
        }
    }
    Ok(known)
}
