//! The reputation guard's mechanics: the copies delivered per campaign per
//! day (`campaign_days.delivered`, kept in the outcome transaction), a
//! campaign's pause (its row in `campaign_pauses` and its waiting copies
//! `held`, in one transaction), the resume and the drop of what is held,
//! and the reads `consent-relay reputation` and the delivery worker make.
//!
//! Whether a campaign's rates call for a pause is the rules' (the report
//! transaction calls [`pause`]); what is held is decided here: relayed
//! copies only (the relay's own mail, bounces and notices, is not the
//! campaign's to hold).

use std::collections::BTreeMap;

use super::webhooks::notice;
use super::{Conn, Op, Sql, Val, audit};
use crate::store::NoticeKind;
use crate::store::rows::Cols;
use crate::store::{
    Actor, AttemptRecord, AuditAction, CampaignDay, CampaignPause, DeliveryStatus, Paused,
    Released, StoreError,
};

/// Adds the copies among `records` that were just recorded `sent` to
/// their campaign's `delivered` on the day of `now`: one upsert for the
/// batch, one row per campaign (in campaign order, so two nodes updating
/// the same rows take their locks in one order).
pub(super) async fn count_delivered<C: Conn>(
    c: &mut C,
    records: &[AttemptRecord],
    recorded: &std::collections::HashSet<i64>,
    now: i64,
) -> Result<(), StoreError> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for r in records {
        if r.status == DeliveryStatus::Sent
            && let Some(campaign) = &r.campaign
            && recorded.contains(&r.delivery_id)
        {
            *counts.entry(campaign.as_str()).or_default() += 1;
        }
    }
    if counts.is_empty() {
        return Ok(());
    }
    let day = crate::time::day_of(now);
    let q = Sql::new("INSERT INTO campaign_days (campaign, day, delivered) VALUES ")
        .values(
            counts
                .iter()
                .map(|(campaign, n)| [Val::Text(campaign), Val::Int(day), Val::Int(*n)]),
        )
        .push(
            " ON CONFLICT (campaign, day) DO UPDATE SET delivered = campaign_days.delivered + excluded.delivered",
        );
    c.execute(q).await.map(drop)
}

/// Pauses `campaign` in the caller's transaction: its row in
/// `campaign_pauses` (`by`: `reputation-guard` or the operator's name),
/// its queued and deferred copies held, and, with `webhook`, the
/// `campaign-paused` notice. A campaign paused already is left as it is.
/// Copies being sent right now are not stopped here: the delivery worker
/// reads the pauses once per batch before it sends and holds them then.
pub(in crate::store) async fn pause<C: Conn>(
    c: &mut C,
    webhook: bool,
    campaign: &str,
    by: &str,
    reason: &str,
    now: i64,
) -> Result<Paused, StoreError> {
    let inserted = c
        .execute(
            Sql::new(
                "INSERT INTO campaign_pauses (campaign, paused_at, paused_by, reason) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (campaign) DO NOTHING",
            )
            .arg(campaign)
            .arg(now)
            .arg(by)
            .arg(reason),
        )
        .await?;
    if inserted == 0 {
        return Ok(Paused {
            paused: false,
            held: 0,
        });
    }
    let held = c
        .execute(
            Sql::new(
                "UPDATE deliveries SET status = 'held', updated_at = $2 \
                 WHERE status IN ('queued', 'deferred') AND EXISTS (SELECT 1 FROM messages m \
                   WHERE m.id = deliveries.message_id AND m.campaign = $1 AND m.kind = 'relay')",
            )
            .arg(campaign)
            .arg(now),
        )
        .await?;
    let payload = serde_json::json!({
        "campaign": campaign, "paused_by": by, "reason": reason,
        "paused_at": crate::time::format_time(now), "held": held,
    });
    notice(c, webhook, NoticeKind::CampaignPaused, None, &payload, now).await?;
    Ok(Paused { paused: true, held })
}

/// An operator's pause (`consent-relay campaign pause`, the console):
/// [`pause`] as a write of its own, `paused_by` the operator's name, with
/// its audit row.
pub(in crate::store) struct Pause {
    pub campaign: String,
    pub actor: Actor,
    pub reason: String,
    pub webhook: bool,
}

impl Op for Pause {
    type Out = Paused;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<Paused, StoreError> {
        let (campaign, reason) = (&self.campaign, &self.reason);
        let paused = pause(c, self.webhook, campaign, &self.actor.name, reason, now).await?;
        if paused.paused {
            let detail = format!("{reason} ({} copies held)", paused.held);
            let action = AuditAction::CampaignPause;
            audit::about(c, &self.actor, action, None, campaign, detail, now).await?;
        }
        Ok(paused)
    }

    fn wrote_events(p: &Paused) -> bool {
        p.paused
    }
}

/// Lifts `campaign`'s pause and puts its held copies back in the queue,
/// due now (`deferred` for a copy tried before, as a lease handed back is).
pub(in crate::store) struct Resume {
    pub campaign: String,
    pub actor: Actor,
}

impl Op for Resume {
    type Out = Released;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<Released, StoreError> {
        let pause = c
            .fetch_optional(
                Sql::new(
                    "DELETE FROM campaign_pauses WHERE campaign = $1 \
                     RETURNING campaign, paused_at, paused_by, reason",
                )
                .arg(&self.campaign),
            )
            .await?
            .map(|r| pause_from_row(&r))
            .transpose()?;
        let copies = c
            .execute(
                Sql::new(
                    "UPDATE deliveries SET status = CASE WHEN attempts = 0 THEN 'queued' ELSE 'deferred' END, \
                     next_attempt_at = $2, updated_at = $2 \
                     WHERE status = 'held' AND EXISTS (SELECT 1 FROM messages m \
                       WHERE m.id = deliveries.message_id AND m.campaign = $1)",
                )
                .arg(&self.campaign)
                .arg(now),
            )
            .await?;
        if pause.is_some() || copies > 0 {
            let detail = format!("{copies} held copies queued");
            let action = AuditAction::CampaignResume;
            audit::about(c, &self.actor, action, None, &self.campaign, detail, now).await?;
        }
        Ok(Released { pause, copies })
    }
}

/// Ends `campaign`'s held copies as `dropped` (final: never sent, their
/// bodies purgeable as for any ended delivery). The pause stays.
pub(in crate::store) struct DropHeld {
    pub campaign: String,
    pub actor: Actor,
}

impl Op for DropHeld {
    type Out = Released;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<Released, StoreError> {
        let copies = c
            .execute(
                Sql::new(
                    "UPDATE deliveries SET status = 'dropped', next_attempt_at = $2, updated_at = $2, \
                     last_reply = 'dropped while held (campaign drop-held)' \
                     WHERE status = 'held' AND EXISTS (SELECT 1 FROM messages m \
                       WHERE m.id = deliveries.message_id AND m.campaign = $1)",
                )
                .arg(&self.campaign)
                .arg(now),
            )
            .await?;
        if copies > 0 {
            let detail = format!("{copies} held copies dropped");
            let action = AuditAction::CampaignDropHeld;
            audit::about(c, &self.actor, action, None, &self.campaign, detail, now).await?;
        }
        Ok(Released {
            pause: None,
            copies,
        })
    }
}

/// `campaign, paused_at, paused_by, reason`
fn pause_from_row(r: &impl Cols) -> Result<CampaignPause, StoreError> {
    Ok(CampaignPause {
        campaign: r.text(0)?,
        paused_at: r.int(1)?,
        paused_by: r.text(2)?,
        reason: r.text(3)?,
    })
}

/// Every paused campaign (a handful of rows at most).
pub(in crate::store) async fn pauses<C: Conn>(c: &mut C) -> Result<Vec<CampaignPause>, StoreError> {
    c.fetch_all(Sql::new(
        "SELECT campaign, paused_at, paused_by, reason FROM campaign_pauses ORDER BY campaign",
    ))
    .await?
    .iter()
    .map(pause_from_row)
    .collect()
}

/// `campaign_days` from `since_day` on, of one campaign or all, by
/// campaign then day.
pub(in crate::store) async fn campaign_days<C: Conn>(
    c: &mut C,
    campaign: Option<&str>,
    since_day: i64,
) -> Result<Vec<CampaignDay>, StoreError> {
    let mut q = Sql::new(
        "SELECT campaign, day, delivered, hard_bounces, soft_bounces, complaints, warned_at \
         FROM campaign_days WHERE day >= $1",
    )
    .arg(since_day);
    if let Some(campaign) = campaign {
        q = q.push(" AND campaign = ").bind(campaign);
    }
    c.fetch_all(q.push(" ORDER BY campaign, day"))
        .await?
        .iter()
        .map(|r| {
            Ok(CampaignDay {
                campaign: r.text(0)?,
                day: r.int(1)?,
                delivered: r.int(2)?,
                hard_bounces: r.int(3)?,
                soft_bounces: r.int(4)?,
                complaints: r.int(5)?,
                warned_at: r.opt_int(6)?,
            })
        })
        .collect()
}
