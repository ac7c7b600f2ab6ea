//! What idempotent writes carry and return: imported rows with their import
//! key, API requests with their `Idempotency-Key`, and the grants that
//! `consent expiring` lists. The SQL is each backend's.

use std::sync::Arc;

use super::{ConsentEvent, NewConsentEvent, NewMessage};

/// How long an `Idempotency-Key` and its answer are kept.
pub const IDEMPOTENCY_KEEP_MS: i64 = 24 * 60 * 60 * 1000;

/// One imported row: the event, and its key (SHA-256 of the normalised row).
#[derive(Debug, Clone)]
pub struct ImportEvent {
    pub event: NewConsentEvent,
    pub key: String,
}

/// What one import batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    pub imported: u64,
    /// Rows whose key was already stored (an earlier run, or a duplicate row).
    pub present: u64,
}

/// Makes the JSON answer for the recorded event (stored with the key).
pub type Respond = Arc<dyn Fn(&ConsentEvent) -> String + Send + Sync>;

/// Mail queued with a consent event, in the event's transaction, built
/// from the event as recorded (its id, its subject): the double opt-in
/// confirmation. Either both are stored or neither, so a retried request
/// never finds its event without its mail. An `Err` (the mail cannot be
/// built) rolls the event back too.
pub type FollowUp = Arc<dyn Fn(&ConsentEvent) -> Result<NewMessage, String> + Send + Sync>;

/// A consent event recorded at most once per `Idempotency-Key`.
#[derive(Clone)]
pub struct KeyedConsent {
    pub event: NewConsentEvent,
    pub key: String,
    /// SHA-256 of the request, hex: the same key with another request is refused.
    pub request_hash: String,
    /// HTTP status of the answer.
    pub status: u16,
    pub respond: Respond,
    /// Mail to queue with the event (not on a replay).
    pub follow_up: Option<FollowUp>,
}

impl std::fmt::Debug for KeyedConsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedConsent")
            .field("event", &self.event)
            .field("key", &self.key)
            .field("request_hash", &self.request_hash)
            .field("status", &self.status)
            .field("follow_up", &self.follow_up.is_some())
            .finish_non_exhaustive()
    }
}

/// What a keyed request got.
#[derive(Debug, Clone)]
pub enum KeyedOutcome {
    /// First use of the key: the event was recorded; `body` is the stored answer.
    Recorded { event: ConsentEvent, body: String },
    /// The key was used before with the same request: its first answer.
    Replay { status: u16, body: String },
    /// The key was used before with another request.
    Mismatch,
}

/// A current grant for a campaign, for `consent expiring`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GrantRow {
    pub subject_id: String,
    pub address: String,
    /// Time of the grant the state rests on.
    pub since: i64,
    pub event_id: i64,
}
