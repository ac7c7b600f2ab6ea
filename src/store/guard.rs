//! The store's side of what comes back that is not reading a report: the
//! reputation guard's pauses and counts, suppressions made visible and
//! reversible, and the webhook notices (`webhook_notices`). The types and
//! the [`Store`] methods; the operations are `ops::guard`,
//! `ops::suppressions` and `ops::webhooks`.

use super::ops;
use super::{Actor, Store, StoreError, WebhookOutcome};
use crate::consent::policy::Reason;

/// A paused campaign (`campaign_pauses`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CampaignPause {
    pub campaign: String,
    pub paused_at: i64,
    /// `reputation-guard`, or the operator's name.
    pub paused_by: String,
    pub reason: String,
}

/// What pausing a campaign did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Paused {
    /// False when the campaign was paused already (nothing changed).
    pub paused: bool,
    /// Copies moved from queued or deferred to held.
    pub held: u64,
}

/// What resuming a campaign, or dropping its held copies, did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Released {
    /// The pause that was lifted (resume); `None` when there was none.
    pub pause: Option<CampaignPause>,
    /// Copies moved from held: queued again (resume) or dropped.
    pub copies: u64,
}

/// One campaign's day (`campaign_days`; `day` in days since the epoch, UTC).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CampaignDay {
    pub campaign: String,
    pub day: i64,
    pub delivered: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    /// When the guard warned about this day, if it did.
    pub warned_at: Option<i64>,
}

/// A suppression of a person (a hard bounce, or soft bounces over the limit).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suppression {
    pub id: i64,
    /// `hard` or `soft`.
    pub kind: String,
    /// The decision reason it gives the person's next mail.
    pub reason: Reason,
    pub status_code: Option<String>,
    /// The remote server's text, addresses masked.
    pub diagnostic: Option<String>,
    /// `dsn` (a bounce report) or `upstream` (the upstream's own 5xx).
    pub source: String,
    /// The campaign of the copy that bounced.
    pub campaign: Option<String>,
    pub since: i64,
    /// When a soft suppression expires; `None`: until a grant or removal.
    pub until: Option<i64>,
    /// Whether it is in force now (not removed, not expired).
    pub active: bool,
    pub removed_at: Option<i64>,
    pub removed_by: Option<String>,
    pub removed_reason: Option<String>,
    pub report_id: Option<i64>,
    pub delivery_id: Option<i64>,
}

/// A suppression in force, with whom it is about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActiveSuppression {
    #[serde(flatten)]
    pub suppression: Suppression,
    pub subject_id: String,
    /// `None` once the person was erased: only the keyed hash is left.
    pub address: Option<String>,
    pub address_hash: String,
}

/// What a webhook notice tells of (its `type` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    Bounced,
    SuppressionRemoved,
    CampaignPaused,
    CampaignWarning,
}
crate::consent::wire_names!(NoticeKind {
    Bounced => "bounced", SuppressionRemoved => "suppression-removed",
    CampaignPaused => "campaign-paused", CampaignWarning => "campaign-warning",
});

/// A notice leased to this node for one webhook attempt.
#[derive(Debug, Clone)]
pub struct ClaimedNotice {
    pub id: i64,
    pub kind: NoticeKind,
    /// The JSON object as queued.
    pub payload: serde_json::Value,
    /// The address of the person it is about; `None` if none or erased.
    pub email: Option<String>,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// A notice waiting in `webhook_notices`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoticeRow {
    pub id: i64,
    pub kind: String,
    pub subject_id: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl Store {
    /// Pauses `campaign` (`paused_by`: the operator's name, who is the
    /// audit row's actor): its queued and deferred copies are held, and
    /// its new ones will be, on every node, until
    /// [`Store::resume_campaign`]. A campaign paused already stays as it
    /// was (`paused` false, no audit row).
    pub async fn pause_campaign(
        &self,
        campaign: &str,
        actor: &Actor,
        reason: &str,
    ) -> Result<Paused, StoreError> {
        let paused = self
            .write(ops::guard::Pause {
                campaign: campaign.to_owned(),
                actor: actor.clone(),
                reason: reason.to_owned(),
                webhook: self.webhook(),
            })
            .await?;
        if paused.paused {
            crate::metrics::campaign_paused(campaign, crate::metrics::PAUSED_BY_OPERATOR);
        }
        Ok(paused)
    }

    /// Lifts `campaign`'s pause; its held copies are due now. An audit
    /// row names `actor` when anything changed.
    pub async fn resume_campaign(
        &self,
        campaign: &str,
        actor: &Actor,
    ) -> Result<Released, StoreError> {
        self.write(ops::guard::Resume {
            campaign: campaign.to_owned(),
            actor: actor.clone(),
        })
        .await
    }

    /// Ends `campaign`'s held copies as `dropped` (never sent); the pause
    /// stays. An audit row names `actor` when copies were dropped.
    pub async fn drop_held(&self, campaign: &str, actor: &Actor) -> Result<Released, StoreError> {
        self.write(ops::guard::DropHeld {
            campaign: campaign.to_owned(),
            actor: actor.clone(),
        })
        .await
    }

    /// The paused campaigns.
    pub async fn campaign_pauses(&self) -> Result<Vec<CampaignPause>, StoreError> {
        read!(self, c => ops::guard::pauses(c))
    }

    /// `campaign_days` from `since_day` on (one campaign, or all).
    pub async fn campaign_days(
        &self,
        campaign: Option<&str>,
        since_day: i64,
    ) -> Result<Vec<CampaignDay>, StoreError> {
        read!(self, c => ops::guard::campaign_days(c, campaign, since_day))
    }

    /// Every suppression of the person `address` (canonical identity)
    /// names, removed and expired ones too, oldest first.
    pub async fn suppressions_of(&self, address: &str) -> Result<Vec<Suppression>, StoreError> {
        let now = crate::time::now_ms();
        read!(self, c => ops::suppressions::suppressions_of(c, address, now))
    }

    /// The suppressions in force, newest first: `limit` of them, older
    /// than the row `before` when given.
    pub async fn active_suppressions(
        &self,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<ActiveSuppression>, StoreError> {
        let now = crate::time::now_ms();
        read!(self, c => ops::suppressions::active(c, now, limit, before))
    }

    /// Removes the suppressions in force of the person `address`
    /// (canonical identity) names, recording the actor's name as
    /// `removed_by`, the `reason`, and an audit row; the next mail to
    /// them is decided on consent alone. Returns what was removed (empty:
    /// nothing was in force, and nothing is recorded).
    pub async fn remove_suppressions(
        &self,
        address: &str,
        actor: &Actor,
        reason: &str,
    ) -> Result<Vec<Suppression>, StoreError> {
        let removed = self
            .write(ops::suppressions::Remove {
                address: address.to_owned(),
                actor: actor.clone(),
                reason: reason.to_owned(),
                webhook: self.webhook(),
            })
            .await?;
        if !removed.is_empty() {
            metrics::counter!(crate::metrics::SUPPRESSIONS_REMOVED).increment(removed.len() as u64);
        }
        Ok(removed)
    }

    /// Leases up to `limit` due webhook notices to `owner` until `lease_until`.
    pub async fn claim_notices(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedNotice>, StoreError> {
        self.write(ops::webhooks::ClaimNotices {
            owner: owner.to_owned(),
            now,
            lease_until,
            limit,
        })
        .await
    }

    /// Records a notice attempt (the outcome's `event_id` is the notice's
    /// id) on a row still leased to `owner`.
    pub async fn record_notice(
        &self,
        owner: &str,
        outcome: WebhookOutcome,
    ) -> Result<(), StoreError> {
        self.write(ops::webhooks::RecordNotice {
            owner: owner.to_owned(),
            outcome,
        })
        .await
    }

    /// The webhook notices waiting, oldest first.
    pub async fn webhook_notices(&self, limit: i64) -> Result<Vec<NoticeRow>, StoreError> {
        read!(self, c => ops::webhooks::notices(c, limit))
    }
}
