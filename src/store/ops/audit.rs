//! Writing and reading `audit_events`. Every operation an operator drives
//! calls [`write`] in its own transaction, so a change is never committed
//! without its row (nor a row without its change); [`Record`] is the write
//! of a row alone.

use super::{Conn, Op, Sql};
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
