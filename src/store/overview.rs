//! What the console's overview shows, per day and per campaign: messages
//! accepted, recipients delivered and suppressed (by reason, at accept and
//! late), unsubscribes by channel, copies delivered, bounces and
//! complaints, and the queue now. The types and [`Store::overview`]; the
//! counts are the daily rollups `ops::rollups` keeps in the transactions
//! that make what they count (`daily_counts`, migration 0011) and
//! `campaign_days` (the reputation guard's), so the read never scans the
//! decision log, whatever its size.

use std::collections::BTreeMap;

use super::{Store, StoreError, ops};
use crate::consent::Source;
use crate::consent::policy::Reason;

/// The longest range [`Store::overview`] reads at once (days).
pub const OVERVIEW_MAX_DAYS: i64 = 3660;

/// How an unsubscribe (a withdraw event) came: its source, except that a
/// mail to the `mailto:` address of `List-Unsubscribe` (RFC 2369), stored
/// with source `one-click`, is `mail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// RFC 8058 one-click from the mail client, or the unsubscribe page's button.
    OneClick,
    /// A mail to the `mailto:` address of `List-Unsubscribe` (RFC 2369).
    Mail,
    PreferencePage,
    Link,
    Form,
    Api,
    /// An operator (CLI, console).
    Admin,
    Import,
    /// A spam complaint (feedback loop).
    Complaint,
}
crate::consent::wire_names!(Channel {
    OneClick => "one-click", Mail => "mail", PreferencePage => "preference-page",
    Link => "link", Form => "form", Api => "api", Admin => "admin", Import => "import",
    Complaint => "complaint",
});

impl Channel {
    /// The channel of an event from `source` with this `evidence`.
    pub fn of(source: Source, evidence: Option<&str>) -> Channel {
        match source {
            Source::OneClick
                if evidence.is_some_and(|e| e.starts_with(crate::consent::MAILTO_EVIDENCE)) =>
            {
                Channel::Mail
            }
            Source::OneClick => Channel::OneClick,
            Source::PreferencePage => Channel::PreferencePage,
            Source::Link => Channel::Link,
            Source::Form => Channel::Form,
            Source::Api => Channel::Api,
            Source::Admin => Channel::Admin,
            Source::Import => Channel::Import,
            Source::Complaint => Channel::Complaint,
        }
    }
}

/// What one day (or a range of days) counts, for one campaign or all.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Messages accepted (the CRM's mail; the relay's own bounces and
    /// notices are not counted), on the day received.
    pub accepted: i64,
    /// Recipients decided `deliver` at accept.
    pub to_deliver: i64,
    /// Recipients suppressed at accept, by reason.
    pub suppressed: BTreeMap<Reason, i64>,
    /// Copies suppressed at send (consent changed after accept, or the
    /// person was erased), by reason, on the day decided.
    pub suppressed_late: BTreeMap<Reason, i64>,
    /// Withdraw events by channel, on the day they happened (campaign `*`:
    /// "unsubscribe from all").
    pub unsubscribes: BTreeMap<Channel, i64>,
    /// Copies the upstream took, on the day sent.
    pub delivered: i64,
    /// Bounces and complaints, on the day their copy was sent.
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
}

impl Counts {
    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.accepted += other.accepted;
        self.to_deliver += other.to_deliver;
        for (into, from) in [
            (&mut self.suppressed, &other.suppressed),
            (&mut self.suppressed_late, &other.suppressed_late),
        ] {
            for (reason, n) in from {
                *into.entry(*reason).or_default() += n;
            }
        }
        for (channel, n) in &other.unsubscribes {
            *self.unsubscribes.entry(*channel).or_default() += n;
        }
        self.delivered += other.delivered;
        self.hard_bounces += other.hard_bounces;
        self.soft_bounces += other.soft_bounces;
        self.complaints += other.complaints;
    }

    /// Recipients suppressed at accept and late, every reason.
    pub fn suppressed_total(&self) -> i64 {
        self.suppressed
            .values()
            .chain(self.suppressed_late.values())
            .sum()
    }

    /// Unsubscribes, every channel.
    pub fn unsubscribes_total(&self) -> i64 {
        self.unsubscribes.values().sum()
    }

    /// Bounces (hard and soft) per copy delivered; `None` when none was.
    pub fn bounce_rate(&self) -> Option<f64> {
        rate(self.hard_bounces + self.soft_bounces, self.delivered)
    }

    /// Complaints per copy delivered (what `[complaints] warn_rate` and
    /// `pause_rate` judge); `None` when none was delivered.
    pub fn complaint_rate(&self) -> Option<f64> {
        rate(self.complaints, self.delivered)
    }
}

fn rate(n: i64, delivered: i64) -> Option<f64> {
    (delivered > 0).then(|| n as f64 / delivered as f64)
}

/// One day of the overview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OverviewDay {
    /// Days since the epoch, UTC (`time::day_of`, `time::format_day`).
    pub day: i64,
    /// Every campaign together (and `*`, the unsubscribes from all).
    pub all: Counts,
    /// Per campaign, those that counted anything that day: a campaign
    /// absent from a day counted zero.
    pub campaigns: BTreeMap<String, Counts>,
}

/// The oldest copy waiting for another attempt after a temporary failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OldestDeferred {
    pub delivery_id: i64,
    pub message_id: String,
    /// When the copy was queued (its age is now minus this).
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_reply: Option<String>,
}

/// The queue now.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueueNow {
    pub queued: i64,
    pub deferred: i64,
    pub sending: i64,
    /// Copies of a paused campaign.
    pub held: i64,
    pub oldest_deferred: Option<OldestDeferred>,
}

/// The overview of a range of days, read in one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Overview {
    pub from_day: i64,
    pub to_day: i64,
    /// Every day of the range, oldest first, days without anything
    /// included (all zeros), so a chart has no holes.
    pub days: Vec<OverviewDay>,
    pub queue: QueueNow,
}

impl Overview {
    /// Every campaign together, from `since_day` to the end of the range
    /// ("today", "7 days", "30 days" of one read).
    pub fn total(&self, since_day: i64) -> Counts {
        let mut total = Counts::default();
        for d in self.days.iter().filter(|d| d.day >= since_day) {
            total.add(&d.all);
        }
        total
    }

    /// Per campaign, from `since_day` to the end of the range.
    pub fn campaign_totals(&self, since_day: i64) -> BTreeMap<String, Counts> {
        let mut totals: BTreeMap<String, Counts> = BTreeMap::new();
        for d in self.days.iter().filter(|d| d.day >= since_day) {
            for (campaign, counts) in &d.campaigns {
                totals.entry(campaign.clone()).or_default().add(counts);
            }
        }
        totals
    }
}

impl Store {
    /// The overview from `from_day` to `to_day` (days since the epoch,
    /// UTC, both included; at most [`OVERVIEW_MAX_DAYS`]), and the queue
    /// now, in one snapshot. A few indexed reads of the rollups, whatever
    /// the decision log holds.
    pub async fn overview(&self, from_day: i64, to_day: i64) -> Result<Overview, StoreError> {
        if from_day > to_day || to_day - from_day >= OVERVIEW_MAX_DAYS {
            return Err(StoreError::Invalid(format!(
                "overview days {from_day}..={to_day}: the first must not be after the last, \
                 and the range at most {OVERVIEW_MAX_DAYS} days"
            )));
        }
        snapshot!(self, c => ops::rollups::overview(c, from_day, to_day))
    }
}
