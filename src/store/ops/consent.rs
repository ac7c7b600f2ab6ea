//! Consent events: appending one (creating its subject), the derived
//! state it changes, its row in the webhook outbox, and a withdrawal's
//! count in the overview's rollups. Every insert into `consent_events`
//! goes through [`insert_event`]: an event committed without its outbox
//! row would never reach the CRM, nor a withdrawal the unsubscribe chart.

use super::accept::queue_follow_up;
use super::{Conn, Op, Sql, audit};
use crate::consent::{self, Action, Source, State};
use crate::store::rows::Cols;
use crate::store::rows::{event_from_row, state_from};
use crate::store::{AuditAction, Channel, ConsentEvent, FollowUp, NewConsentEvent, StoreError};

/// Appends an event (`webhook`: queued in the outbox too) and queues the
/// mail `follow_up` builds from it.
pub(in crate::store) struct AppendEvent {
    pub event: Box<NewConsentEvent>,
    pub webhook: bool,
    pub follow_up: Option<FollowUp>,
}

impl Op for AppendEvent {
    type Out = ConsentEvent;

    async fn run<C: Conn>(&self, c: &mut C, now: i64) -> Result<ConsentEvent, StoreError> {
        let event = consent_event(c, &self.event, self.webhook, now).await?;
        queue_follow_up(c, self.follow_up.as_ref(), &event, now).await?;
        Ok(event)
    }

    fn wrote_events(_: &ConsentEvent) -> bool {
        true
    }
}

/// Appends `e` for its address (creating the subject) and updates the
/// derived state, in the caller's transaction.
pub(super) async fn consent_event<C: Conn>(
    c: &mut C,
    e: &NewConsentEvent,
    webhook: bool,
    now: i64,
) -> Result<ConsentEvent, StoreError> {
    c.execute(
        Sql::new(
            "INSERT INTO subjects (id, address, address_hash, key_id, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (address) DO NOTHING",
        )
        .arg(&e.new_subject.id)
        .arg(&e.address)
        .arg(&e.new_subject.address_hash)
        .arg(&e.new_subject.key_id)
        .arg(now),
    )
    .await?;
    // The subject's row lock orders concurrent events about one person
    // (on any node): each reads the state the one before it wrote.
    let subject_id = c
        .fetch_one(
            Sql::new("SELECT id FROM subjects WHERE address = $1")
                .push(C::FOR_UPDATE)
                .arg(&e.address),
        )
        .await?
        .text(0)?;
    let event = subject_event(
        c,
        EventRow {
            subject_id: &subject_id,
            campaign: &e.campaign,
            action: e.action,
            at: e.at,
            source: e.source,
            ip: e.ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            evidence: e.evidence.as_deref(),
        },
        webhook,
        now,
    )
    .await?;
    if let Some(actor) = &e.actor
        && let Some(action) = AuditAction::of_consent(e.action)
    {
        let detail = format!("event {}, source {}", event.id, event.source);
        audit::about(
            c,
            actor,
            action,
            Some(&subject_id),
            &e.campaign,
            detail,
            now,
        )
        .await?;
    }
    Ok(event)
}

/// Appends `e` for a subject the caller holds (its row locked where rows
/// lock) and updates the derived state, in the caller's transaction.
pub(super) async fn subject_event<C: Conn>(
    c: &mut C,
    e: EventRow<'_>,
    webhook: bool,
    now: i64,
) -> Result<ConsentEvent, StoreError> {
    let (subject_id, campaign, action, at) = (e.subject_id, e.campaign, e.action, e.at);
    let event = insert_event(c, e, webhook, now).await?;
    let current = c
        .fetch_optional(
            Sql::new(
                "SELECT status, since, event_id FROM consent_state WHERE subject_id = $1 AND campaign = $2",
            )
            .arg(subject_id)
            .arg(campaign),
        )
        .await?
        .map(|r| state_from(&r.text(0)?, r.int(1)?, r.int(2)?))
        .transpose()?;
    match consent::apply(current, action, at, event.id) {
        Some(s) if Some(s) != current => put_state(c, subject_id, campaign, s).await?,
        Some(_) => {}
        None => {
            c.execute(
                Sql::new("DELETE FROM consent_state WHERE subject_id = $1 AND campaign = $2")
                    .arg(subject_id)
                    .arg(campaign),
            )
            .await?;
        }
    }
    Ok(event)
}

/// Sets the derived state of (subject, campaign).
pub(super) async fn put_state<C: Conn>(
    c: &mut C,
    subject_id: &str,
    campaign: &str,
    s: State,
) -> Result<(), StoreError> {
    c.execute(
        Sql::new(
            "INSERT INTO consent_state (subject_id, campaign, status, since, event_id) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (subject_id, campaign) DO UPDATE SET status = excluded.status, since = excluded.since, event_id = excluded.event_id",
        )
        .arg(subject_id)
        .arg(campaign)
        .arg(s.status.as_str())
        .arg(s.since)
        .arg(s.event_id),
    )
    .await?;
    Ok(())
}

/// A consent event row to insert.
pub(super) struct EventRow<'a> {
    pub subject_id: &'a str,
    pub campaign: &'a str,
    pub action: Action,
    pub at: i64,
    pub source: Source,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub evidence: Option<&'a str>,
}

/// Appends one consent event, in the caller's transaction, and with
/// `webhook` (`[webhook]` is set) queues it in `webhook_outbox` in the same
/// transaction; a withdrawal counts in `daily_counts` (by its channel, on
/// the day it happened). After the commit, the store wakes this process's dispatcher
/// ([`Op::wrote_events`]); other nodes find the row by polling.
pub(super) async fn insert_event<C: Conn>(
    c: &mut C,
    e: EventRow<'_>,
    webhook: bool,
    now: i64,
) -> Result<ConsentEvent, StoreError> {
    let row = c
        .fetch_one(
            Sql::new(
                "INSERT INTO consent_events (subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 RETURNING id, subject_id, campaign, action, at, source, ip, user_agent, evidence, recorded_at",
            )
            .arg(e.subject_id)
            .arg(e.campaign)
            .arg(e.action.as_str())
            .arg(e.at)
            .arg(e.source.as_str())
            .arg(e.ip)
            .arg(e.user_agent)
            .arg(e.evidence)
            .arg(now),
        )
        .await?;
    let event = event_from_row(&row)?;
    if e.action == Action::Withdraw {
        let channel = Channel::of(e.source, e.evidence);
        super::rollups::count_unsubscribe(c, e.campaign, channel, e.at).await?;
    }
    if matches!(e.action, Action::Grant | Action::Confirm) {
        lift_suppressions(c, e.subject_id, &event, now).await?;
    }
    if webhook {
        c.execute(
            Sql::new(
                "INSERT INTO webhook_outbox (event_id, subject_id, status, attempts, next_attempt_at, created_at) \
                 VALUES ($1, $2, 'pending', 0, $3, $3)",
            )
            .arg(event.id)
            .arg(e.subject_id)
            .arg(now),
        )
        .await?;
    }
    Ok(event)
}

/// A new grant (or confirmation) says the mailbox takes mail again: it
/// lifts the person's bounce suppressions made before it, and the soft
/// bounces counted so far. An imported grant older than a suppression
/// lifts nothing.
async fn lift_suppressions<C: Conn>(
    c: &mut C,
    subject_id: &str,
    event: &ConsentEvent,
    now: i64,
) -> Result<(), StoreError> {
    let reason = format!("a new {} (consent event {})", event.action, event.id);
    c.execute(
        Sql::new(
            "UPDATE suppressions SET removed_at = $3, removed_by = 'grant', removed_reason = $4 \
             WHERE subject_id = $1 AND removed_at IS NULL AND since <= $2",
        )
        .arg(subject_id)
        .arg(event.at)
        .arg(now)
        .arg(&reason),
    )
    .await?;
    c.execute(
        Sql::new("DELETE FROM soft_bounces WHERE subject_id = $1 AND sent_at <= $2")
            .arg(subject_id)
            .arg(event.at),
    )
    .await?;
    Ok(())
}
