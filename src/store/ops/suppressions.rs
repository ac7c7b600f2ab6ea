//! Suppressions made visible and reversible: a person's suppressions
//! (`consent show`, the export), the active ones of everyone (`GET
//! /api/v1/suppressions`, `suppression list`), and their removal by an
//! operator, kept with who and why. Which rows are active is one rule,
//! [`ACTIVE`], the one decide() reads too: not removed, and not expired.
//!
//! The rows themselves are written by the feedback rules (a hard bounce,
//! soft bounces over the limit); a new grant lifts them there.

use super::webhooks::notice;
use super::{Conn, Op, Sql, audit};
use crate::store::NoticeKind;
use crate::store::rows::Cols;
use crate::store::{ActiveSuppression, Actor, AuditAction, StoreError, Suppression};

/// A suppression row `s` in force at `$1` (now).
pub(in crate::store) const ACTIVE: &str =
    "s.removed_at IS NULL AND (s.until_at IS NULL OR s.until_at > $1)";

/// The columns [`suppression_from_row`] reads, from `suppressions s`.
const COLUMNS: &str = "s.id, s.kind, s.status_code, s.diagnostic, s.source, s.campaign, s.since, \
     s.until_at, s.removed_at, s.removed_by, s.removed_reason, s.report_id, s.delivery_id";

/// [`COLUMNS`] as a row, in force or not at `now`.
fn suppression_from_row(r: &impl Cols, now: i64) -> Result<Suppression, StoreError> {
    let until = r.opt_int(7)?;
    let removed_at = r.opt_int(8)?;
    Ok(Suppression {
        id: r.int(0)?,
        kind: r.text(1)?,
        reason: crate::consent::policy::Reason::Bounced,
        status_code: r.opt_text(2)?,
        diagnostic: r.opt_text(3)?,
        source: r.text(4)?,
        campaign: r.opt_text(5)?,
        since: r.int(6)?,
        until,
        active: removed_at.is_none() && until.is_none_or(|u| u > now),
        removed_at,
        removed_by: r.opt_text(9)?,
        removed_reason: r.opt_text(10)?,
        report_id: r.opt_int(11)?,
        delivery_id: r.opt_int(12)?,
    })
}

/// Every suppression of the live subject of `address`, removed and
/// expired ones too, oldest first.
pub(in crate::store) async fn suppressions_of<C: Conn>(
    c: &mut C,
    address: &str,
    now: i64,
) -> Result<Vec<Suppression>, StoreError> {
    let rows = c
        .fetch_all(
            Sql::new("SELECT ")
                .push(COLUMNS)
                .push(
                    " FROM suppressions s JOIN subjects sub ON sub.id = s.subject_id \
                     WHERE sub.address = $1 ORDER BY s.id",
                )
                .arg(address),
        )
        .await?;
    rows.iter().map(|r| suppression_from_row(r, now)).collect()
}

/// The suppressions in force at `now`, newest first, `limit` of them,
/// those older than the row `before` (paging).
pub(in crate::store) async fn active<C: Conn>(
    c: &mut C,
    now: i64,
    limit: i64,
    before: Option<i64>,
) -> Result<Vec<ActiveSuppression>, StoreError> {
    let mut q = Sql::new("SELECT ")
        .push(COLUMNS)
        .push(", sub.id, sub.address, sub.address_hash FROM suppressions s JOIN subjects sub ON sub.id = s.subject_id WHERE ")
        .push(ACTIVE)
        .arg(now);
    if let Some(before) = before {
        q = q.push(" AND s.id < ").bind(before);
    }
    let rows = c
        .fetch_all(q.push(" ORDER BY s.id DESC LIMIT ").bind(limit))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ActiveSuppression {
                suppression: suppression_from_row(r, now)?,
                subject_id: r.text(13)?,
                address: r.opt_text(14)?,
                address_hash: r.text(15)?,
            })
        })
        .collect()
}

/// Removes the suppressions in force of the live subject of `address`
/// (`by`: the operator, `reason`: why), forgets its soft bounces so the
/// count starts again, and with `webhook` queues `suppression-removed`.
/// Returns the rows removed (none: nothing was in force).
pub(in crate::store) struct Remove {
    pub address: String,
    /// Recorded as `removed_by`, and as the audit row's actor.
    pub actor: Actor,
    pub reason: String,
    pub webhook: bool,
}

impl Op for Remove {
    type Out = Vec<Suppression>;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<Vec<Suppression>, StoreError> {
        // The subject's row lock orders this with the rules writing a new
        // suppression for the same person (on any node).
        let Some(subject) = c
            .fetch_optional(
                Sql::new("SELECT id FROM subjects WHERE address = $1")
                    .push(C::FOR_UPDATE)
                    .arg(&self.address),
            )
            .await?
        else {
            return Ok(Vec::new());
        };
        let subject_id = subject.text(0)?;
        let rows = c
            .fetch_all(
                // ACTIVE and COLUMNS without the alias (RETURNING names the
                // table's own columns).
                Sql::new(
                    "UPDATE suppressions SET removed_at = $1, removed_by = $2, removed_reason = $3 \
                     WHERE removed_at IS NULL AND (until_at IS NULL OR until_at > $1) AND subject_id = $4 \
                     RETURNING id, kind, status_code, diagnostic, source, campaign, since, until_at, \
                     removed_at, removed_by, removed_reason, report_id, delivery_id",
                )
                .arg(now)
                    .arg(&self.actor.name)
                    .arg(&self.reason)
                    .arg(&subject_id),
            )
            .await?;
        let removed = rows
            .iter()
            .map(|r| suppression_from_row(r, now))
            .collect::<Result<Vec<_>, _>>()?;
        if removed.is_empty() {
            return Ok(removed);
        }
        c.execute(Sql::new("DELETE FROM soft_bounces WHERE subject_id = $1").arg(&subject_id))
            .await?;
        let payload = serde_json::json!({
            "subject_id": subject_id,
            "removed": removed.iter().map(|s| serde_json::json!({
                "id": s.id, "kind": s.kind, "status_code": s.status_code,
                "since": crate::time::format_time(s.since),
            })).collect::<Vec<_>>(),
            "removed_by": self.actor.name, "removed_reason": self.reason,
            "removed_at": crate::time::format_time(now),
        });
        notice(
            c,
            self.webhook,
            NoticeKind::SuppressionRemoved,
            Some(&subject_id),
            &payload,
            now,
        )
        .await?;
        let ids: Vec<String> = removed.iter().map(|s| s.id.to_string()).collect();
        let detail = audit::typed(&self.reason, &self.address);
        audit::about(
            c,
            &self.actor,
            AuditAction::SuppressionRemove,
            Some(&subject_id),
            ids.join(", "),
            detail,
            now,
        )
        .await?;
        Ok(removed)
    }

    fn wrote_events(removed: &Vec<Suppression>) -> bool {
        !removed.is_empty()
    }
}
