//! What the store takes and gives about reports that come back (SPEC
//! "What comes back"): a report as received at a door, what a report was
//! found to mean (by `feedback::intake`, purely), and what applying it
//! changed. The operations are `ops::feedback`.

use crate::config::ComplaintScope;

/// Where a report came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Door {
    /// The SMTP listener (the bounce domain, `[complaints] address`).
    Smtp,
    /// `consent-relay feedback [FILE]`.
    Cli,
    /// `POST /api/v1/feedback`.
    Api,
}
crate::consent::wire_names!(Door { Smtp => "smtp", Cli => "cli", Api => "api" });

/// A report as received, before anything is read from it.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub door: Door,
    pub envelope_from: Option<String>,
    /// The address it came to (the return path `b-TOKEN@<domain>`).
    pub envelope_to: Option<String>,
    pub client_ip: Option<String>,
    pub raw: Vec<u8>,
    pub received_at: i64,
    /// The operator who submitted it (`/api/v1/feedback`, `consent-relay
    /// feedback`): a stored report gets an audit row; `None` for mail.
    pub actor: Option<super::Actor>,
}

/// A report stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedReport {
    pub id: i64,
    /// The same bytes were received before: this is that row.
    pub duplicate: bool,
    /// Not yet applied.
    pub pending: bool,
}

/// A report stored but not yet applied (a crash came between).
#[derive(Debug, Clone)]
pub struct PendingReport {
    pub id: i64,
    pub envelope_to: Option<String>,
    pub raw: Vec<u8>,
}

/// What kind of report it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    Bounce,
    Complaint,
    /// An ARF report of another feedback type (`not-spam`, `virus`, ...).
    Feedback,
    AutoReply,
}
crate::consent::wire_names!(ReportKind {
    Bounce => "bounce", Complaint => "complaint", Feedback => "feedback", AutoReply => "auto-reply",
});

/// Whom a report is about: the copy (from a verified return-path token
/// or the relay's delivery header), or, for copies sent before those,
/// the person and campaign of the signed unsubscribe link in the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Delivery(i64),
    Subject {
        subject_id: String,
        campaign: Option<String>,
    },
}

/// What a report means for the person it is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A status in `[bounces] hard`: suppress at once.
    Hard {
        status: String,
        diagnostic: Option<String>,
    },
    /// Any other failure: a soft day.
    Soft {
        status: Option<String>,
        diagnostic: Option<String>,
    },
    /// Delayed, relayed, delivered: nothing changes.
    NoChange { why: String },
    /// `abuse` or `fraud`: a withdrawal with the report as its proof.
    Complaint {
        feedback_type: String,
        /// The proof: report id, reporting MTA, arrival date, feedback type.
        evidence: String,
        /// The reporter's `User-Agent`.
        user_agent: Option<String>,
    },
    /// Another feedback type: kept, not acted on.
    Recorded { what: String },
    /// An automatic reply: kept, not acted on.
    Ignored { why: String },
}

/// The rules of `[bounces]` and `[complaints]`, in the units the store uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeedbackRules {
    pub soft_limit: u32,
    pub soft_window_days: i64,
    pub soft_suppress_ms: i64,
    pub scope: ComplaintScope,
    pub warn_rate: f64,
    pub pause_rate: f64,
    pub min_volume: u64,
}

impl FeedbackRules {
    pub fn of(config: &crate::config::Config) -> FeedbackRules {
        let b = &config.bounces;
        let c = &config.complaints;
        FeedbackRules {
            soft_limit: b.soft_limit,
            soft_window_days: (b.soft_window.as_secs() / 86_400).max(1) as i64,
            soft_suppress_ms: i64::try_from(b.soft_suppress_for.as_millis()).unwrap_or(i64::MAX),
            scope: c.scope,
            warn_rate: c.warn_rate,
            pause_rate: c.pause_rate,
            min_volume: c.min_volume,
        }
    }
}

/// A stored report, read: what to apply.
#[derive(Debug, Clone)]
pub struct Findings {
    pub report_id: i64,
    pub kind: ReportKind,
    /// Whom it is about, or why that is not known (kept for the operator).
    pub target: Result<Target, String>,
    pub effect: Effect,
    pub rules: FeedbackRules,
}

/// The upstream's own permanent reply to a copy, judged by the same rules
/// as a DSN (recorded with the attempt's outcome).
#[derive(Debug, Clone)]
pub struct UpstreamBounce {
    pub effect: Effect,
    pub rules: FeedbackRules,
}

/// What applying a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportResult {
    /// The person was suppressed (or already was) for a hard bounce.
    Hard,
    /// A soft day counted (or one was already counted that day).
    Soft,
    /// The soft day that reached `soft_limit`: suppressed for a while.
    SoftSuppressed,
    /// A withdrawal by complaint (or one was already recorded for the copy).
    Complaint,
    NoChange,
    Recorded,
    Ignored,
    /// It names no copy or person the relay holds, or its token does not
    /// verify: nothing changed.
    Unmatched,
    /// The person was erased: nothing about them is kept.
    Erased,
}
crate::consent::wire_names!(ReportResult {
    Hard => "hard", Soft => "soft", SoftSuppressed => "soft-suppressed", Complaint => "complaint",
    NoChange => "no-change", Recorded => "recorded", Ignored => "ignored", Unmatched => "unmatched",
    Erased => "erased",
});

/// Something a report made happen, for logs, metrics and webhooks.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum FeedbackEvent {
    Bounced {
        subject_id: String,
        campaign: String,
        /// `hard` or `soft` (a soft suppression).
        kind: String,
        status: Option<String>,
        suppression_id: i64,
    },
    Complained {
        subject_id: String,
        campaign: String,
        event_id: i64,
    },
    CampaignWarning {
        campaign: String,
        day: i64,
        delivered: i64,
        complaints: i64,
        rate: f64,
    },
    CampaignPaused {
        campaign: String,
        day: i64,
        delivered: i64,
        complaints: i64,
        rate: f64,
    },
}

/// What applying a report did, and whether this call did it.
#[derive(Debug, Clone)]
pub struct Applied {
    pub id: i64,
    pub result: ReportResult,
    pub detail: String,
    pub delivery_id: Option<i64>,
    pub subject_id: Option<String>,
    pub campaign: Option<String>,
    pub events: Vec<FeedbackEvent>,
    /// Another call (another node, a retry) applied it already; nothing
    /// was done this time.
    pub already: bool,
}
