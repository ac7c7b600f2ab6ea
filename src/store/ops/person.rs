//! The console's read of one person ([`crate::store::Person`]): the subject
//! by address, else the erased one by its keyed hash; the newest events,
//! decisions and copies (each an indexed range, newest first, and a
//! count); every suppression; who recorded each event.

use std::collections::HashMap;

use super::{Conn, Sql, audit, reads, suppressions};
use crate::consent::subject::erased_tag;
use crate::store::rows::{
    Cols, DECISIONS_SELECT, DELIVERIES_SELECT, decision_from_row, delivery_from_row, event_from_row,
};
use crate::store::{Person, PersonQuery, PersonSubject, StoreError};

/// The subject columns [`subject_from_row`] reads.
const SUBJECT: &str =
    "SELECT id, address, address_hash, created_at, erased_at FROM subjects WHERE ";

fn subject_from_row(r: &impl Cols) -> Result<PersonSubject, StoreError> {
    Ok(PersonSubject {
        id: r.text(0)?,
        address: r.opt_text(1)?,
        address_hash: r.text(2)?,
        created_at: r.int(3)?,
        erased_at: r.opt_int(4)?,
    })
}

pub(in crate::store) async fn person<C: Conn>(
    c: &mut C,
    q: &PersonQuery,
    now: i64,
) -> Result<Option<Person>, StoreError> {
    let live = c
        .fetch_optional(Sql::new(SUBJECT).push("address = $1").arg(&q.address))
        .await?
        .map(|r| subject_from_row(&r))
        .transpose()?;
    // Erased subjects of this address, newest erasure first: the person
    // erased, or erased once and back since.
    let erased = c
        .fetch_all(
            Sql::new(SUBJECT)
                .push("address IS NULL AND merged_into IS NULL AND address_hash")
                .texts::<C>(&q.hashes)
                .push(" ORDER BY erased_at DESC, id"),
        )
        .await?
        .iter()
        .map(subject_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let (subject, erased_before) = match live {
        Some(s) => (Some(s), erased.first().and_then(|e| e.erased_at)),
        None => (erased.into_iter().next(), None),
    };
    // Decision and copy rows name an erased person by the tag of the hash.
    let recipient = match &subject {
        Some(s) if s.address.is_none() => erased_tag(&s.address_hash),
        _ => q.address.clone(),
    };
    let (decisions_total, deliveries_total) = (
        count(c, "decisions", &recipient).await?,
        count(c, "deliveries", &recipient).await?,
    );
    if subject.is_none() && decisions_total == 0 && deliveries_total == 0 {
        return Ok(None);
    }
    let mut person = Person {
        subject: None,
        erased_before,
        states: Vec::new(),
        events: Vec::new(),
        events_total: 0,
        recorded_by: HashMap::new(),
        decisions: Vec::new(),
        decisions_total,
        deliveries: Vec::new(),
        deliveries_total,
        suppressions: Vec::new(),
    };
    if let Some(s) = &subject {
        person.states = reads::subject_states(c, &s.id).await?;
        person.events = c
            .fetch_all(
                Sql::new(
                    "SELECT id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at \
                     FROM consent_events WHERE subject_id = $1 ORDER BY id DESC LIMIT $2",
                )
                .arg(&s.id)
                .arg(q.limit),
            )
            .await?
            .iter()
            .map(event_from_row)
            .collect::<Result<_, _>>()?;
        person.events_total = c
            .fetch_one(
                Sql::new("SELECT COUNT(*) FROM consent_events WHERE subject_id = $1").arg(&s.id),
            )
            .await?
            .int(0)?;
        person.recorded_by = audit::recorded_by(c, &s.id, q.limit).await?;
        person.suppressions = suppressions::suppressions_of_subject(c, &s.id, now).await?;
    }
    person.subject = subject;
    person.decisions = c
        .fetch_all(
            Sql::new(DECISIONS_SELECT)
                .push(" WHERE d.recipient = $1 ORDER BY d.id DESC LIMIT $2")
                .arg(&recipient)
                .arg(q.limit),
        )
        .await?
        .iter()
        .map(decision_from_row)
        .collect::<Result<_, _>>()?;
    person.deliveries = c
        .fetch_all(
            Sql::new(DELIVERIES_SELECT)
                .push(" WHERE d.recipient = $1 ORDER BY d.id DESC LIMIT $2")
                .arg(&recipient)
                .arg(q.limit),
        )
        .await?
        .iter()
        .map(delivery_from_row)
        .collect::<Result<_, _>>()?;
    Ok(Some(person))
}

/// Rows of `table` naming `recipient` (an indexed count).
async fn count<C: Conn>(c: &mut C, table: &str, recipient: &str) -> Result<i64, StoreError> {
    let sql = Sql::new("SELECT COUNT(*) FROM ")
        .push(table)
        .push(" WHERE recipient = $1")
        .arg(recipient);
    c.fetch_one(sql).await?.int(0)
}
