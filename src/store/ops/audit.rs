//! Writing and reading `audit_events`. Every operation an operator drives
//! calls [`write`] in its own transaction, so a change is never committed
//! without its row (nor a row without its change); [`Record`] is the write
//! of a row alone.

use std::collections::HashMap;

use super::{Conn, Op, Sql};
use crate::consent::Source;
use crate::mail::mask::mask_address;
use crate::store::rows::{Cols, parsed};
use crate::store::{Actor, AuditAction, AuditEntry, AuditFilter, AuditRow, StoreError};

/// Appends one audit row at `now`, in the caller's transaction; its id.
pub(in crate::store) async fn write<C: Conn>(
    c: &mut C,
    e: &AuditEntry,
    now: i64,
) -> Result<i64, StoreError> {
    c.fetch_one(
        Sql::new(
            "INSERT INTO audit_events (at, actor, via, action, subject_id, target, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .arg(now)
        .arg(&e.actor.name)
        .arg(e.actor.via.as_str())
        .arg(e.action.as_str())
        .arg(&e.subject_id)
        .arg(&e.target)
        .arg(&e.detail),
    )
    .await?
    .int(0)
}

/// [`write`] for an operator's change about one person.
pub(in crate::store) async fn about<C: Conn>(
    c: &mut C,
    actor: &Actor,
    action: AuditAction,
    subject_id: Option<&str>,
    target: impl Into<String>,
    detail: String,
    now: i64,
) -> Result<i64, StoreError> {
    let entry = AuditEntry {
        actor: actor.clone(),
        action,
        subject_id: subject_id.map(str::to_owned),
        target: Some(target.into()),
        detail: Some(detail),
    };
    write(c, &entry, now).await
}

/// Text an operator typed (a reason), with the person's address masked:
/// the row must not name them once they are erased.
pub(in crate::store) fn typed(text: &str, address: &str) -> String {
    mask_address(text, address).into_owned()
}

/// The detail of a consent event's row: it names the event, so the
/// event's proof can say who recorded it ([`recorded_by`] reads it back).
pub(in crate::store) fn event_detail(event_id: i64, source: Source) -> String {
    format!("event {event_id}, source {source}")
}

/// The event a row of [`recorded_by`]'s actions names: an erasure's
/// target, a consent row's [`event_detail`].
fn event_named(action: AuditAction, target: Option<&str>, detail: Option<&str>) -> Option<i64> {
    let text = match action {
        AuditAction::SubjectErase => target?,
        _ => detail?.strip_prefix("event ")?.split(',').next()?,
    };
    text.trim().parse().ok()
}

/// Who recorded the consent events of `subject_id` an operator made (the
/// newest `limit` such rows), by event id.
pub(in crate::store) async fn recorded_by<C: Conn>(
    c: &mut C,
    subject_id: &str,
    limit: i64,
) -> Result<HashMap<i64, Actor>, StoreError> {
    let actions: Vec<String> = [
        AuditAction::ConsentGrant,
        AuditAction::ConsentWithdraw,
        AuditAction::ConsentRequest,
        AuditAction::ConsentConfirm,
        AuditAction::SubjectErase,
    ]
    .iter()
    .map(|a| a.as_str().to_owned())
    .collect();
    let rows = c
        .fetch_all(
            Sql::new(
                "SELECT action, actor, via, target, detail FROM audit_events WHERE subject_id = ",
            )
            .bind(subject_id)
            .push(" AND action")
            .texts::<C>(&actions)
            .push(" ORDER BY id DESC LIMIT ")
            .bind(limit),
        )
        .await?;
    let mut out = HashMap::new();
    for r in &rows {
        let action: AuditAction = parsed(r.text(0)?, "audit_events.action")?;
        let (target, detail) = (r.opt_text(3)?, r.opt_text(4)?);
        if let Some(event) = event_named(action, target.as_deref(), detail.as_deref()) {
            let actor = Actor::new(r.text(1)?, parsed(r.text(2)?, "audit_events.via")?);
            out.insert(event, actor);
        }
    }
    Ok(out)
}

/// [`Store::record_audit`](crate::store::Store::record_audit).
pub(in crate::store) struct Record(pub Box<AuditEntry>);

impl Op for Record {
    type Out = i64;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<i64, StoreError> {
        write(c, &self.0, now).await
    }
}

/// The rows `f` selects, newest first.
pub(in crate::store) async fn rows<C: Conn>(
    c: &mut C,
    f: &AuditFilter,
) -> Result<Vec<AuditRow>, StoreError> {
    let mut q = Sql::new(
        "SELECT id, at, actor, via, action, subject_id, target, detail FROM audit_events WHERE 1 = 1",
    );
    if let Some(actor) = &f.actor {
        q = q.push(" AND actor = ").bind(actor);
    }
    if let Some(action) = f.action {
        q = q.push(" AND action = ").bind(action.as_str());
    }
    if let Some(subject) = &f.subject_id {
        q = q.push(" AND subject_id = ").bind(subject);
    }
    if let Some(before) = f.before_id {
        q = q.push(" AND id < ").bind(before);
    }
    let rows = c
        .fetch_all(q.push(" ORDER BY id DESC LIMIT ").bind(f.limit))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.int(0)?,
                at: r.int(1)?,
                actor: r.text(2)?,
                via: parsed(r.text(3)?, "audit_events.via")?,
                action: parsed(r.text(4)?, "audit_events.action")?,
                subject_id: r.opt_text(5)?,
                target: r.opt_text(6)?,
                detail: r.opt_text(7)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_a_row_names_is_read_back() {
        let detail = event_detail(42, Source::Admin);
        assert_eq!(
            event_named(AuditAction::ConsentGrant, Some("news"), Some(&detail)),
            Some(42)
        );
        assert_eq!(
            event_named(AuditAction::SubjectErase, Some("7"), Some("3 events kept")),
            Some(7)
        );
        assert_eq!(
            event_named(AuditAction::ConsentGrant, Some("news"), None),
            None
        );
        assert_eq!(
            event_named(
                AuditAction::ConsentWithdraw,
                None,
                Some("an operator's words")
            ),
            None
        );
    }
}
