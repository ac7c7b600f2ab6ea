//! The audit trail: who (an operator, by name, and through which door)
//! changed what, for the controller's accountability (GDPR Art. 5(2)):
//! who erased this person, who removed that suppression, who paused a
//! campaign or dropped a copy. One `audit_events` row per change, written
//! by the store operation that makes the change, in its transaction; and
//! rows for what changes nothing in the store but must be shown (a
//! sign-in, a refused one, an export), by [`Store::record_audit`].
//!
//! A row names the person by subject id only, never by address: after
//! an erasure the trail still shows what was done, and to which subject,
//! without naming them. Free text an operator typed (a reason) is kept
//! with the person's address masked.
//!
//! The types and the [`Store`] methods; the writes are `ops::audit`.

use super::ops;
use super::{Store, StoreError};
use crate::consent::{Action, Source};

/// Through which door an operator acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// `/admin`, signed in.
    Console,
    /// `/api/v1`, with a bearer token.
    Api,
    /// `consent-relay` on the host.
    Cli,
}
crate::consent::wire_names!(Via { Console => "console", Api => "api", Cli => "cli" });

impl Via {
    /// The source a consent event an operator records through this door
    /// carries (`api` for the API, `admin` for the console and the CLI).
    pub fn source(self) -> Source {
        match self {
            Via::Api => Source::Api,
            Via::Console | Via::Cli => Source::Admin,
        }
    }
}

/// Who made a change: an operator's name (`[[http.operator]]` for the
/// console and the API, the CLI's `$USER`) and the door.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Actor {
    pub name: String,
    pub via: Via,
}

impl Actor {
    pub fn new(name: impl Into<String>, via: Via) -> Actor {
        Actor {
            name: name.into(),
            via,
        }
    }
}

/// What an audit row records (a closed set; wire names as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// A grant recorded for a person; target: the campaign.
    ConsentGrant,
    /// A withdrawal; target: the campaign (or `*`).
    ConsentWithdraw,
    /// A double opt-in request (the confirmation mail sent); target: the campaign.
    ConsentRequest,
    /// A confirmation recorded by an operator; target: the campaign.
    ConsentConfirm,
    /// One run of `consent-relay import`; detail: the counts.
    ConsentImport,
    /// An erasure; target: the `erase` event's id.
    SubjectErase,
    /// Everything held about a person, handed out (access, portability).
    SubjectExport,
    /// A person's suppressions removed; target: their ids; detail: the reason.
    SuppressionRemove,
    /// Target: the campaign; detail: the reason and the copies held.
    CampaignPause,
    /// Target: the campaign; detail: the copies queued again.
    CampaignResume,
    /// Target: the campaign; detail: the copies dropped.
    CampaignDropHeld,
    /// A deferred copy made due now; target: the delivery id.
    DeliveryRetry,
    /// A held copy queued again; target: the delivery id.
    DeliveryRelease,
    /// A waiting copy ended as `dropped`; target: the delivery id.
    DeliveryDrop,
    /// A report posted to `/api/v1/feedback`; target: the report's id.
    FeedbackSubmit,
    SignIn,
    /// A sign-in whose token matched no operator.
    SignInRefused,
    SignOut,
}
crate::consent::wire_names!(AuditAction {
    ConsentGrant => "consent-grant", ConsentWithdraw => "consent-withdraw",
    ConsentRequest => "consent-request", ConsentConfirm => "consent-confirm",
    ConsentImport => "consent-import",
    SubjectErase => "subject-erase", SubjectExport => "subject-export",
    SuppressionRemove => "suppression-remove",
    CampaignPause => "campaign-pause", CampaignResume => "campaign-resume",
    CampaignDropHeld => "campaign-drop-held",
    DeliveryRetry => "delivery-retry", DeliveryRelease => "delivery-release",
    DeliveryDrop => "delivery-drop",
    FeedbackSubmit => "feedback-submit",
    SignIn => "sign-in", SignInRefused => "sign-in-refused", SignOut => "sign-out",
});

impl AuditAction {
    /// Every action, in the order above (for a filter's choices).
    pub const ALL: [AuditAction; 18] = [
        AuditAction::ConsentGrant,
        AuditAction::ConsentWithdraw,
        AuditAction::ConsentRequest,
        AuditAction::ConsentConfirm,
        AuditAction::ConsentImport,
        AuditAction::SubjectErase,
        AuditAction::SubjectExport,
        AuditAction::SuppressionRemove,
        AuditAction::CampaignPause,
        AuditAction::CampaignResume,
        AuditAction::CampaignDropHeld,
        AuditAction::DeliveryRetry,
        AuditAction::DeliveryRelease,
        AuditAction::DeliveryDrop,
        AuditAction::FeedbackSubmit,
        AuditAction::SignIn,
        AuditAction::SignInRefused,
        AuditAction::SignOut,
    ];

    /// The action recording a consent event of this kind by an operator;
    /// `None` for a merge, which only the store's identity step writes.
    pub(super) fn of_consent(action: Action) -> Option<AuditAction> {
        match action {
            Action::Grant => Some(AuditAction::ConsentGrant),
            Action::Withdraw => Some(AuditAction::ConsentWithdraw),
            Action::Request => Some(AuditAction::ConsentRequest),
            Action::Confirm => Some(AuditAction::ConsentConfirm),
            Action::Erase => Some(AuditAction::SubjectErase),
            Action::Merge => None,
        }
    }
}

/// A row to record with [`Store::record_audit`] (for what changes nothing
/// else in the store). Never an address in `target` or `detail`.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub actor: Actor,
    pub action: AuditAction,
    /// The person it is about (a subject id).
    pub subject_id: Option<String>,
    /// What it acted on: a campaign id, a delivery id, an event id…
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// A row of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    /// The operator's name.
    pub actor: String,
    pub via: Via,
    pub action: AuditAction,
    pub subject_id: Option<String>,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// Which audit rows to read, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// One operator's rows (exact name).
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub subject_id: Option<String>,
    /// Rows older than this id (paging: the last id of the page before).
    pub before_id: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// Records what changed nothing else in the store (a sign-in, a
    /// refused one, a sign-out, an export); returns the row's id.
    pub async fn record_audit(&self, entry: AuditEntry) -> Result<i64, StoreError> {
        self.write(ops::audit::Record(Box::new(entry))).await
    }

    /// The audit trail, newest first, as `filter` says.
    pub async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        read!(self, c => ops::audit::rows(c, filter))
    }
}
