//! Reports that come back, written once for both stores: storing a
//! report as received ([`Receive`]), and applying what it means
//! ([`Apply`]) in one transaction with marking it applied, so that a
//! report is applied exactly once whatever crashes, retries or nodes
//! come between. The upstream's own permanent reply to a copy goes
//! through the same rules ([`upstream_bounce`], from the outcome record).
//!
//! The rules (SPEC "What comes back"):
//! - hard: the person is suppressed for every campaign until a new grant
//!   or an operator lifts it (one active hard suppression at a time);
//! - soft: at most one counted a day per person; `soft_limit` counted
//!   days within `soft_window` suppress for `soft_suppress_for`, and the
//!   count starts again; a copy sent after the earlier soft bounces, and
//!   before this one, that no bounce came back for resets the count;
//! - complaint: a `withdraw` event (source `complaint`, the report as its
//!   proof) for `*` (scope all: every campaign that is not mandatory) or
//!   the copy's campaign; one per copy;
//! - each counts once per copy in `campaign_days` (the day the copy was
//!   sent), and a complaint has the reputation guard judge that day.

use super::consent::{EventRow, subject_event};
use super::{Conn, Op, Sql};
use crate::config::ComplaintScope;
use crate::consent::{ALL_CAMPAIGNS, Action, Source};
use crate::mail::mask::mask_address;
use crate::store::feedback::{
    Applied, Effect, FeedbackEvent, FeedbackRules, Findings, NewReport, ReceivedReport,
    ReportResult, Target,
};
use crate::store::rows::Cols;
use crate::store::{AuditAction, StoreError};
use crate::time::day_of;

/// Who pauses a campaign when the complaint rate crosses `pause_rate`.
pub(in crate::store) const GUARD: &str = "reputation-guard";

/// Stores a report as received; the same bytes again are the same row.
pub(in crate::store) struct Receive {
    pub report: Box<NewReport>,
    /// SHA-256 of the address it came to and the raw bytes, hex.
    pub digest: String,
}

impl Op for Receive {
    type Out = ReceivedReport;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<ReceivedReport, StoreError> {
        let r = &self.report;
        let inserted = c
            .fetch_optional(
                Sql::new(
                    "INSERT INTO feedback_reports (digest, door, envelope_from, envelope_to, client_ip, size, raw, received_at, state) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending') ON CONFLICT (digest) DO NOTHING RETURNING id",
                )
                .arg(&self.digest)
                .arg(r.door.as_str())
                .arg(&r.envelope_from)
                .arg(&r.envelope_to)
                .arg(&r.client_ip)
                .arg(r.raw.len() as i64)
                .arg(super::Val::Blob(Some(&r.raw)))
                .arg(r.received_at),
            )
            .await?;
        if let Some(row) = inserted {
            let id = row.int(0)?;
            if let Some(actor) = &r.actor {
                let detail = format!("{} bytes, door {}", r.raw.len(), r.door);
                super::audit::about(
                    c,
                    actor,
                    AuditAction::FeedbackSubmit,
                    None,
                    id.to_string(),
                    detail,
                    now,
                )
                .await?;
            }
            return Ok(ReceivedReport {
                id,
                duplicate: false,
                pending: true,
            });
        }
        let row = c
            .fetch_one(
                Sql::new("SELECT id, state FROM feedback_reports WHERE digest = $1")
                    .arg(&self.digest),
            )
            .await?;
        Ok(ReceivedReport {
            id: row.int(0)?,
            duplicate: true,
            pending: row.text(1)? == "pending",
        })
    }
}

/// Applies what a stored report means, and marks it applied.
pub(in crate::store) struct Apply {
    pub findings: Box<Findings>,
    /// `[webhook]` is set: a complaint's event goes to the outbox.
    pub webhook: bool,
}

impl Op for Apply {
    type Out = Applied;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<Applied, StoreError> {
        let f = &self.findings;
        // The row lock orders two nodes applying one report: the second
        // finds it done.
        let row = c
            .fetch_optional(
                Sql::new(
                    "SELECT state, result, detail, delivery_id, subject_id, campaign FROM feedback_reports WHERE id = $1",
                )
                .push(C::FOR_UPDATE)
                .arg(f.report_id),
            )
            .await?
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
        if row.text(0)? == "done" {
            return Ok(Applied {
                id: f.report_id,
                result: row
                    .opt_text(1)?
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(ReportResult::Unmatched),
                detail: row.opt_text(2)?.unwrap_or_default(),
                delivery_id: row.opt_int(3)?,
                subject_id: row.opt_text(4)?,
                campaign: row.opt_text(5)?,
                events: Vec::new(),
                already: true,
            });
        }
        let mut applied = match &f.target {
            Err(why) => unmatched(f.report_id, why.clone()),
            Ok(target) => {
                let source = Origin::Report(f.report_id);
                match person(c, target, now).await? {
                    Found::Person(p) => {
                        effect(c, &p, &f.effect, source, &f.rules, self.webhook, now).await?
                    }
                    Found::Erased(delivery_id) => Applied {
                        delivery_id,
                        ..base(
                            f.report_id,
                            ReportResult::Erased,
                            "the person it names was erased: nothing about them is kept".into(),
                        )
                    },
                    Found::Nothing(why) => unmatched(f.report_id, why),
                }
            }
        };
        applied.id = f.report_id;
        // Passive reports (auto-replies, other feedback) change nothing
        // whoever they name.
        c.execute(
            Sql::new(
                "UPDATE feedback_reports SET state = 'done', kind = $2, delivery_id = $3, subject_id = $4, campaign = $5, \
                 result = $6, detail = $7, processed_at = $8 WHERE id = $1",
            )
            .arg(f.report_id)
            .arg(f.kind.as_str())
            .arg(applied.delivery_id)
            .arg(&applied.subject_id)
            .arg(&applied.campaign)
            .arg(applied.result.as_str())
            .arg(&applied.detail)
            .arg(now),
        )
        .await?;
        Ok(applied)
    }

    /// A withdrawal (outbox) or a notice was queued.
    fn wrote_events(out: &Applied) -> bool {
        !out.events.is_empty()
    }
}

/// The upstream's permanent reply to `delivery_id`, in the outcome
/// record's transaction: the same rules as a DSN, source `upstream`.
pub(in crate::store) async fn upstream_bounce<C: Conn>(
    c: &mut C,
    delivery_id: i64,
    effect: &Effect,
    rules: &FeedbackRules,
    webhook: bool,
    now: i64,
) -> Result<(), StoreError> {
    if let Found::Person(p) = person(c, &Target::Delivery(delivery_id), now).await? {
        self::effect(c, &p, effect, Origin::Upstream, rules, webhook, now).await?;
    }
    Ok(())
}

/// Where a bounce was learnt.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Report(i64),
    Upstream,
}

impl Origin {
    fn source(self) -> &'static str {
        match self {
            Origin::Report(_) => "dsn",
            Origin::Upstream => "upstream",
        }
    }
    fn report_id(self) -> Option<i64> {
        match self {
            Origin::Report(id) => Some(id),
            Origin::Upstream => None,
        }
    }
}

/// The person a report is about, with their copy when it is known.
struct Person {
    subject_id: String,
    address: String,
    delivery_id: Option<i64>,
    /// The copy's campaign ('' for mail the relay wrote itself).
    campaign: Option<String>,
    /// When the copy went out (or was last tried); the report's time
    /// without a copy.
    sent_at: i64,
}

enum Found {
    Person(Person),
    Erased(Option<i64>),
    Nothing(String),
}

async fn person<C: Conn>(c: &mut C, target: &Target, now: i64) -> Result<Found, StoreError> {
    match target {
        Target::Delivery(id) => {
            let Some(row) = c
                .fetch_optional(
                    Sql::new(
                        "SELECT d.recipient, d.updated_at, m.campaign, s.id FROM deliveries d \
                         JOIN messages m ON m.id = d.message_id \
                         LEFT JOIN subjects s ON s.address = d.recipient WHERE d.id = $1",
                    )
                    .arg(*id),
                )
                .await?
            else {
                return Ok(Found::Nothing(format!(
                    "it names delivery {id}, which the relay does not hold (purged, or never sent)"
                )));
            };
            let Some(subject_id) = row.opt_text(3)? else {
                return Ok(Found::Erased(Some(*id)));
            };
            lock_subject(c, &subject_id).await?;
            Ok(Found::Person(Person {
                subject_id,
                address: row.text(0)?,
                delivery_id: Some(*id),
                campaign: Some(row.text(2)?).filter(|c| !c.is_empty()),
                sent_at: row.int(1)?,
            }))
        }
        Target::Subject {
            subject_id,
            campaign,
        } => {
            // A merged subject's links lead to the one it was merged into.
            let mut id = subject_id.clone();
            for _ in 0..8 {
                let Some(row) = c
                    .fetch_optional(
                        Sql::new("SELECT address, merged_into FROM subjects WHERE id = $1")
                            .arg(&id),
                    )
                    .await?
                else {
                    return Ok(Found::Nothing(
                        "its unsubscribe link names a person the relay does not hold".into(),
                    ));
                };
                if let Some(next) = row.opt_text(1)? {
                    id = next;
                    continue;
                }
                let Some(address) = row.opt_text(0)? else {
                    return Ok(Found::Erased(None));
                };
                lock_subject(c, &id).await?;
                return Ok(Found::Person(Person {
                    subject_id: id,
                    address,
                    delivery_id: None,
                    campaign: campaign.clone(),
                    sent_at: now,
                }));
            }
            Ok(Found::Nothing(
                "its unsubscribe link names a chain of merged subjects too long to follow".into(),
            ))
        }
    }
}

/// Orders concurrent writers about one person (PostgreSQL).
async fn lock_subject<C: Conn>(c: &mut C, subject_id: &str) -> Result<(), StoreError> {
    c.fetch_optional(
        Sql::new("SELECT id FROM subjects WHERE id = $1")
            .push(C::FOR_UPDATE)
            .arg(subject_id),
    )
    .await?;
    Ok(())
}

fn base(id: i64, result: ReportResult, detail: String) -> Applied {
    Applied {
        id,
        result,
        detail,
        delivery_id: None,
        subject_id: None,
        campaign: None,
        events: Vec::new(),
        already: false,
    }
}

fn unmatched(id: i64, why: String) -> Applied {
    base(id, ReportResult::Unmatched, why)
}

/// What one effect does to one person.
async fn effect<C: Conn>(
    c: &mut C,
    p: &Person,
    effect: &Effect,
    origin: Origin,
    rules: &FeedbackRules,
    webhook: bool,
    now: i64,
) -> Result<Applied, StoreError> {
    let id = origin.report_id().unwrap_or(0);
    let mut out = Applied {
        delivery_id: p.delivery_id,
        subject_id: Some(p.subject_id.clone()),
        campaign: p.campaign.clone(),
        ..base(id, ReportResult::NoChange, String::new())
    };
    match effect {
        Effect::Hard { status, diagnostic } => {
            let detail = diagnosis(Some(status), diagnostic.as_deref(), &p.address);
            hard(c, p, status, diagnostic.as_deref(), origin, now, &mut out).await?;
            out.detail = format!("{detail}; {}", out.detail);
            count_bounce(c, p, Tally::Hard, origin).await?;
        }
        Effect::Soft { status, diagnostic } => {
            let detail = diagnosis(status.as_deref(), diagnostic.as_deref(), &p.address);
            soft(
                c,
                p,
                status.as_deref(),
                diagnostic.as_deref(),
                origin,
                rules,
                now,
                &mut out,
            )
            .await?;
            out.detail = format!("{detail}; {}", out.detail);
            count_bounce(c, p, Tally::Soft, origin).await?;
        }
        Effect::NoChange { why } => {
            out.result = ReportResult::NoChange;
            out.detail = why.clone();
        }
        Effect::Recorded { what } => {
            out.result = ReportResult::Recorded;
            out.detail = what.clone();
        }
        Effect::Ignored { why } => {
            out.result = ReportResult::Ignored;
            out.detail = why.clone();
        }
        Effect::Complaint {
            feedback_type,
            evidence,
            user_agent,
        } => {
            complaint(
                c,
                p,
                feedback_type,
                evidence,
                user_agent.as_deref(),
                rules,
                webhook,
                now,
                &mut out,
            )
            .await?;
        }
    }
    super::webhooks::feedback_notices(c, webhook, &out.events, now).await?;
    Ok(out)
}

/// `5.1.1: smtp; 550 5.1.1 <recipient>: unknown user`, the address masked.
fn diagnosis(status: Option<&str>, diagnostic: Option<&str>, address: &str) -> String {
    let status = status.unwrap_or("no status");
    match diagnostic {
        Some(d) => format!("{status}: {}", mask_address(d, address)),
        None => status.to_owned(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn hard<C: Conn>(
    c: &mut C,
    p: &Person,
    status: &str,
    diagnostic: Option<&str>,
    origin: Origin,
    now: i64,
    out: &mut Applied,
) -> Result<(), StoreError> {
    out.result = ReportResult::Hard;
    if let Some(row) = c
        .fetch_optional(
            Sql::new(
                "SELECT id FROM suppressions WHERE subject_id = $1 AND kind = 'hard' AND removed_at IS NULL",
            )
            .arg(&p.subject_id),
        )
        .await?
    {
        out.detail = format!("already suppressed (suppression {})", row.int(0)?);
        return Ok(());
    }
    let sid = suppress(
        c,
        p,
        "hard",
        Some(status.to_owned()),
        diagnostic,
        origin,
        None,
        now,
    )
    .await?;
    out.detail = format!("suppressed for every campaign (suppression {sid})");
    out.events.push(FeedbackEvent::Bounced {
        subject_id: p.subject_id.clone(),
        campaign: p.campaign.clone().unwrap_or_default(),
        kind: "hard".into(),
        status: Some(status.to_owned()),
        suppression_id: sid,
    });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn soft<C: Conn>(
    c: &mut C,
    p: &Person,
    status: Option<&str>,
    diagnostic: Option<&str>,
    origin: Origin,
    rules: &FeedbackRules,
    now: i64,
    out: &mut Applied,
) -> Result<(), StoreError> {
    out.result = ReportResult::Soft;
    let day = day_of(now);
    let counted = c
        .execute(
            Sql::new(
                "INSERT INTO soft_bounces (subject_id, day, sent_at, report_id, delivery_id) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (subject_id, day) DO NOTHING",
            )
            .arg(&p.subject_id)
            .arg(day)
            .arg(p.sent_at)
            .arg(origin.report_id())
            .arg(p.delivery_id),
        )
        .await?
        > 0;
    if !counted {
        out.detail = "a soft bounce was counted for this person today already".into();
        return Ok(());
    }
    // A copy that went out after earlier soft-bounced ones, and before
    // this one, with no bounce back: the mailbox took mail in between.
    if let Some(delivery_id) = p.delivery_id {
        let good = c
            .fetch_one(
                Sql::new(
                    "SELECT MAX(d.updated_at) FROM deliveries d WHERE d.recipient = $1 AND d.status = 'sent' \
                     AND d.id <> $2 AND d.updated_at < $3 \
                     AND NOT EXISTS (SELECT 1 FROM soft_bounces b WHERE b.delivery_id = d.id) \
                     AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.delivery_id = d.id) \
                     AND NOT EXISTS (SELECT 1 FROM feedback_reports f WHERE f.delivery_id = d.id \
                         AND f.result IN ('hard', 'soft', 'soft-suppressed'))",
                )
                .arg(&p.address)
                .arg(delivery_id)
                .arg(p.sent_at),
            )
            .await?
            .opt_int(0)?;
        if let Some(good) = good {
            c.execute(
                Sql::new("DELETE FROM soft_bounces WHERE subject_id = $1 AND sent_at < $2")
                    .arg(&p.subject_id)
                    .arg(good),
            )
            .await?;
        }
    }
    let since_day = day - rules.soft_window_days + 1;
    let days = c
        .fetch_one(
            Sql::new("SELECT COUNT(*) FROM soft_bounces WHERE subject_id = $1 AND day >= $2")
                .arg(&p.subject_id)
                .arg(since_day),
        )
        .await?
        .int(0)?;
    let limit = i64::from(rules.soft_limit);
    if days < limit {
        out.detail = format!(
            "soft bounce day {days} of {limit} within {} days",
            rules.soft_window_days
        );
        return Ok(());
    }
    let until = now.saturating_add(rules.soft_suppress_ms);
    let sid = suppress(
        c,
        p,
        "soft",
        status.map(str::to_owned),
        diagnostic,
        origin,
        Some(until),
        now,
    )
    .await?;
    // The count starts again once the suppression ends.
    c.execute(Sql::new("DELETE FROM soft_bounces WHERE subject_id = $1").arg(&p.subject_id))
        .await?;
    out.result = ReportResult::SoftSuppressed;
    out.detail = format!(
        "{days} soft bounce days within {} days: suppressed until {} (suppression {sid})",
        rules.soft_window_days,
        crate::time::format_time(until)
    );
    out.events.push(FeedbackEvent::Bounced {
        subject_id: p.subject_id.clone(),
        campaign: p.campaign.clone().unwrap_or_default(),
        kind: "soft".into(),
        status: status.map(str::to_owned),
        suppression_id: sid,
    });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn suppress<C: Conn>(
    c: &mut C,
    p: &Person,
    kind: &str,
    status: Option<String>,
    diagnostic: Option<&str>,
    origin: Origin,
    until: Option<i64>,
    now: i64,
) -> Result<i64, StoreError> {
    let diagnostic = diagnostic.map(|d| mask_address(d, &p.address).into_owned());
    c.fetch_one(
        Sql::new(
            "INSERT INTO suppressions (subject_id, kind, status_code, diagnostic, source, report_id, delivery_id, campaign, since, until_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .arg(&p.subject_id)
        .arg(kind)
        .arg(&status)
        .arg(&diagnostic)
        .arg(origin.source())
        .arg(origin.report_id())
        .arg(p.delivery_id)
        .arg(&p.campaign)
        .arg(now)
        .arg(until),
    )
    .await?
    .int(0)
}

/// Counts a bounce in the copy's campaign day, once per copy.
async fn count_bounce<C: Conn>(
    c: &mut C,
    p: &Person,
    tally: Tally,
    origin: Origin,
) -> Result<(), StoreError> {
    let (Some(campaign), Some(delivery_id)) = (&p.campaign, p.delivery_id) else {
        return Ok(());
    };
    let earlier = c
        .fetch_optional(
            Sql::new(
                "SELECT 1 FROM feedback_reports WHERE delivery_id = $1 AND state = 'done' \
                 AND result IN ('hard', 'soft', 'soft-suppressed') AND id <> $2",
            )
            .arg(delivery_id)
            .arg(origin.report_id().unwrap_or(0)),
        )
        .await?;
    if earlier.is_some() {
        return Ok(());
    }
    count(c, campaign, day_of(p.sent_at), tally).await
}

/// What a campaign day counts from reports.
#[derive(Debug, Clone, Copy)]
enum Tally {
    Hard,
    Soft,
    Complaint,
}

/// Adds one to the `tally` of (campaign, day).
async fn count<C: Conn>(
    c: &mut C,
    campaign: &str,
    day: i64,
    tally: Tally,
) -> Result<(), StoreError> {
    let text = match tally {
        Tally::Hard => {
            "INSERT INTO campaign_days (campaign, day, hard_bounces) VALUES ($1, $2, 1) \
             ON CONFLICT (campaign, day) DO UPDATE SET hard_bounces = campaign_days.hard_bounces + 1"
        }
        Tally::Soft => {
            "INSERT INTO campaign_days (campaign, day, soft_bounces) VALUES ($1, $2, 1) \
             ON CONFLICT (campaign, day) DO UPDATE SET soft_bounces = campaign_days.soft_bounces + 1"
        }
        Tally::Complaint => {
            "INSERT INTO campaign_days (campaign, day, complaints) VALUES ($1, $2, 1) \
             ON CONFLICT (campaign, day) DO UPDATE SET complaints = campaign_days.complaints + 1"
        }
    };
    c.execute(Sql::new(text).arg(campaign).arg(day)).await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn complaint<C: Conn>(
    c: &mut C,
    p: &Person,
    feedback_type: &str,
    evidence: &str,
    user_agent: Option<&str>,
    rules: &FeedbackRules,
    webhook: bool,
    now: i64,
    out: &mut Applied,
) -> Result<(), StoreError> {
    out.result = ReportResult::Complaint;
    if let Some(delivery_id) = p.delivery_id
        && let Some(row) = c
            .fetch_optional(
                Sql::new(
                    "SELECT id FROM feedback_reports WHERE delivery_id = $1 AND state = 'done' AND result = 'complaint'",
                )
                .arg(delivery_id),
            )
            .await?
    {
        out.detail = format!(
            "a complaint about this copy was recorded already (report {})",
            row.int(0)?
        );
        return Ok(());
    }
    let campaign = match (rules.scope, &p.campaign) {
        (ComplaintScope::Campaign, Some(campaign)) => campaign.as_str(),
        _ => ALL_CAMPAIGNS,
    };
    let event = subject_event(
        c,
        EventRow {
            subject_id: &p.subject_id,
            campaign,
            action: Action::Withdraw,
            at: now,
            source: Source::Complaint,
            ip: None,
            user_agent,
            evidence: Some(evidence),
        },
        webhook,
        now,
    )
    .await?;
    out.detail = format!(
        "{feedback_type} complaint: withdrawn from {} (consent event {})",
        if campaign == ALL_CAMPAIGNS {
            "every campaign that is not mandatory".to_owned()
        } else {
            format!("campaign {campaign}")
        },
        event.id
    );
    out.events.push(FeedbackEvent::Complained {
        subject_id: p.subject_id.clone(),
        campaign: campaign.to_owned(),
        event_id: event.id,
    });
    if let Some(copy_campaign) = &p.campaign {
        let day = day_of(p.sent_at);
        count(c, copy_campaign, day, Tally::Complaint).await?;
        judge(c, copy_campaign, day, rules, now, &mut out.events).await?;
    }
    Ok(())
}

/// The reputation guard on one campaign day, after a complaint counted:
/// at `warn_rate` a warning (once a day), at `pause_rate` the pause, both
/// once `min_volume` copies of that day were delivered.
async fn judge<C: Conn>(
    c: &mut C,
    campaign: &str,
    day: i64,
    rules: &FeedbackRules,
    now: i64,
    events: &mut Vec<FeedbackEvent>,
) -> Result<(), StoreError> {
    let row = c
        .fetch_one(
            Sql::new(
                "SELECT delivered, complaints, warned_at FROM campaign_days WHERE campaign = $1 AND day = $2",
            )
            .arg(campaign)
            .arg(day),
        )
        .await?;
    let (delivered, complaints, warned) = (row.int(0)?, row.int(1)?, row.opt_int(2)?.is_some());
    if delivered <= 0 || (delivered as u64) < rules.min_volume {
        return Ok(());
    }
    let rate = complaints as f64 / delivered as f64;
    if rate >= rules.warn_rate && !warned {
        c.execute(
            Sql::new("UPDATE campaign_days SET warned_at = $3 WHERE campaign = $1 AND day = $2")
                .arg(campaign)
                .arg(day)
                .arg(now),
        )
        .await?;
        events.push(FeedbackEvent::CampaignWarning {
            campaign: campaign.to_owned(),
            day,
            delivered,
            complaints,
            rate,
        });
    }
    if rate >= rules.pause_rate {
        let reason = format!(
            "complaint rate {} ({complaints} of {delivered} delivered on {}) reached the pause rate {}",
            crate::config::rate_percent(rate),
            crate::time::format_day(day),
            crate::config::rate_percent(rules.pause_rate)
        );
        // The notice goes with the event (`effect`), which says why.
        if super::guard::pause(c, false, campaign, GUARD, &reason, now)
            .await?
            .paused
        {
            events.push(FeedbackEvent::CampaignPaused {
                campaign: campaign.to_owned(),
                day,
                delivered,
                complaints,
                rate,
            });
        }
    }
    Ok(())
}

/// `[retention] feedback`: raw messages of reports applied before the
/// cut-off are removed, a batch at a time (what each changed stays);
/// `Out` is how many, fewer than the batch when done.
pub(in crate::store) struct PurgeReports {
    pub cutoff: i64,
    pub batch: i64,
}

impl Op for PurgeReports {
    type Out = u64;

    async fn run<C: Conn>(&self, c: &mut C, _now: i64) -> Result<u64, StoreError> {
        c.secure_delete(true).await?;
        let purged = c
            .execute(
                Sql::new(
                    "UPDATE feedback_reports SET raw = NULL WHERE id IN (SELECT id FROM feedback_reports \
                     WHERE raw IS NOT NULL AND received_at < $1 AND state = 'done' ORDER BY received_at LIMIT $2)",
                )
                .arg(self.cutoff)
                .arg(self.batch),
            )
            .await;
        c.secure_delete(false).await?;
        purged
    }

    fn removed_personal_data(purged: &u64) -> bool {
        *purged > 0
    }
}
