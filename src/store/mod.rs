//! Durable state: subjects, consent events and their derived state, accepted
//! messages, the decision log and the delivery queue. [`Store`] states what
//! the application needs, not SQL; `sqlite` is the embedded backend,
//! `postgres` the shared one (several nodes), behind the same methods.
//!
//! - this file: the interface (the types, and `Store`'s methods, which
//!   hand each write to its backend and run each read on one of its
//!   connections);
//! - `ops/`: every domain operation, written once over `ops::Conn`, the
//!   seam of what the backends do differently;
//! - `sqlite/`, `postgres/`: opening the database, how a write's
//!   transaction runs (SQLite's group-commit writer, PostgreSQL's pool),
//!   and their side of `Conn` (binding, locks, leases, multi-row inserts);
//! - `rows.rs`: stored rows to these types, the same for both;
//! - `guard.rs`, `feedback.rs`, `trace.rs`: the types and methods of what
//!   comes back (pauses, suppressions, reports) and of the message trace;
//! - `webhooks.rs`, `purge.rs`, and the console's `audit.rs`, `sessions.rs`,
//!   `overview.rs`, `person.rs`, `queue.rs`: each subject's types and
//!   methods beside this interface.
//!
//! Knows nothing of SMTP or HTML.

mod feedback;
mod idempotency;
mod ops;
mod postgres;
mod rows;
mod sqlite;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{StoreConfig, StoreUrl};
use crate::consent::policy::{Outcome, Reason, RecipientConsent};
use crate::consent::{Action, Source, Status};

pub use idempotency::{
    FollowUp, GrantRow, IDEMPOTENCY_KEEP_MS, ImportCounts, ImportEvent, KeyedConsent, KeyedOutcome,
    Respond,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
/// The single-node lock `serve` takes on a SQLite database (`migrate-store` takes it too).
pub(crate) use sqlite::take_lock as take_sqlite_lock;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Locked(String),
    #[error("{0} is not supported by this build yet")]
    Unsupported(&'static str),
    #[error("the store is shutting down")]
    Closed,
    #[error("stored value is invalid: {0}")]
    Corrupt(String),
    /// The caller asked for something the store cannot answer (the message
    /// says what and why).
    #[error("{0}")]
    Invalid(String),
    /// What is stored with an event (a [`FollowUp`] mail, a keyed answer)
    /// could not be made; the event was not stored either.
    #[error("cannot make what is stored with the event: {0}")]
    FollowUp(String),
}

pub use ops::nodes::Joined;

/// SQLite's `SQLITE_FULL` (its primary result code, 13) and PostgreSQL's
/// `disk_full` SQLSTATE.
const DISK_FULL_CODES: [&str; 2] = ["13", "53100"];

impl StoreError {
    /// The database's disk (or quota) is full: nothing was written, and
    /// the same request may succeed once there is room (the API answers
    /// `503` with `Retry-After`, the SMTP side a temporary error).
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|code| DISK_FULL_CODES.contains(&code.as_ref())),
            _ => false,
        }
    }
}

/// The mail `follow_up` builds from the recorded `event`, if any. It runs
/// inside the store's write transaction (on SQLite, on the one writer), so
/// a panic while building is caught and fails this write alone.
fn follow_up_mail(
    follow_up: Option<&FollowUp>,
    event: &ConsentEvent,
) -> Result<Option<NewMessage>, StoreError> {
    let Some(build) = follow_up else {
        return Ok(None);
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(event))) {
        Ok(built) => built.map(Some).map_err(StoreError::FollowUp),
        Err(_) => Err(StoreError::FollowUp("building the mail panicked".into())),
    }
}

/// The answer a keyed request stores with its key, made by its `respond`;
/// in the write transaction too, so a panic there fails this write alone.
fn keyed_answer(k: &KeyedConsent, event: &ConsentEvent) -> Result<String, StoreError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (k.respond)(event)))
        .map_err(|_| StoreError::FollowUp("making the stored answer panicked".into()))
}

/// What kind of message a queue entry is. Stored (and `Display`ed) by
/// its wire name; shown to people (the log, the API, exports, JSON) by
/// [`MessageKind::shown`], which says what the relay's own mail is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Mail from a client (the CRM), relayed after the consent decision.
    Relay,
    /// A delivery status notification the relay wrote to a sender.
    Dsn,
    /// A message the relay wrote to a person itself (double opt-in
    /// confirmation): sent as stored, without consent check or bounce.
    Notice,
    /// The mail telling a person their data was erased (`[erasure] notify`):
    /// sent as stored, then its body and rows are scrubbed of the address.
    ErasureNotice,
}
crate::consent::wire_names!(MessageKind {
    Relay => "relay", Dsn => "dsn", Notice => "notice", ErasureNotice => "erasure-notice",
});

impl MessageKind {
    /// The name people read: `relay` (the CRM's mail), `confirmation`
    /// (the relay's double opt-in mail, stored as `notice`: a decision
    /// row of it says `deliver pending-confirmation` for the campaign it
    /// asks about, which is not that campaign's mail), `erasure-notice`,
    /// `dsn`.
    pub fn shown(self) -> &'static str {
        match self {
            MessageKind::Notice => "confirmation",
            other => other.as_str(),
        }
    }
}

impl serde::Serialize for MessageKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryStatus {
    Queued,
    Sending,
    Deferred,
    Sent,
    Failed,
    SuppressedLate,
    /// Its campaign is paused (the reputation guard, or an operator):
    /// waits for `campaign resume` (back to queued) or `campaign drop-held`.
    Held,
    /// Dropped while held (`campaign drop-held`): never sent.
    Dropped,
}
crate::consent::wire_names!(DeliveryStatus {
    Queued => "queued", Sending => "sending", Deferred => "deferred",
    Sent => "sent", Failed => "failed", SuppressedLate => "suppressed-late",
    Held => "held", Dropped => "dropped",
});

/// One envelope recipient's decision, as accepted.
#[derive(Debug, Clone)]
pub struct RecipientDecision {
    /// The address's canonical identity (`consent::identity`), or
    /// `erased:<hash>`.
    pub recipient: String,
    /// The address as the client wrote it, where it differs from
    /// `recipient`: the copy goes there.
    pub rcpt_to: Option<String>,
    /// The subject the decision is about: existing, or `new_subject` below.
    pub subject_id: Option<String>,
    /// A subject to create for a delivered recipient the store did not know
    /// yet (links in their copy need an id). Ignored if the address exists.
    pub new_subject: Option<NewSubject>,
    pub outcome: Outcome,
    pub reason: Reason,
    pub event_id: Option<i64>,
}

/// A subject to create: its identity is the subject module's.
pub use crate::consent::subject::NewSubject;
pub use feedback::{
    Applied, Door, Effect, FeedbackEvent, FeedbackRules, Findings, NewReport, PendingReport,
    ReceivedReport, ReportKind, ReportResult, Target, UpstreamBounce,
};

/// A message to accept: stored with its decisions and deliveries in one transaction.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: String,
    pub kind: MessageKind,
    pub mail_from: String,
    pub client_ip: String,
    pub helo: String,
    pub auth_user: Option<String>,
    pub campaign: String,
    pub header_message_id: Option<String>,
    pub body: Vec<u8>,
    pub received_at: i64,
    pub recipients: Vec<RecipientDecision>,
    /// Received with `MAIL FROM ... SMTPUTF8` (RFC 6531), or written by the
    /// relay to a non-ASCII address: delivery asks the upstream for SMTPUTF8.
    pub smtputf8: bool,
}

/// A delivery leased to this node for one attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub message_id: String,
    pub kind: MessageKind,
    /// The canonical identity the consent is read by.
    pub recipient: String,
    /// Where the copy goes: the address as the client wrote it.
    pub rcpt_to: String,
    pub mail_from: String,
    pub campaign: String,
    pub received_at: i64,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The message's `smtputf8` flag ([`NewMessage::smtputf8`]).
    pub smtputf8: bool,
}

/// The outcome of one attempt, recorded in one transaction with what follows from it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub status: DeliveryStatus,
    /// Whether this was a real attempt upstream (counts in `attempts`).
    pub attempted: bool,
    pub reply: String,
    pub next_attempt_at: i64,
    /// The campaign a relayed copy counts for (`campaign_days.delivered`
    /// once sent); `None` for the relay's own mail.
    pub campaign: Option<String>,
    /// For `suppressed-late`: the decision row to add.
    pub late_decision: Option<LateDecision>,
    /// For `failed`: the bounce to queue to the envelope sender.
    pub dsn: Option<NewMessage>,
    /// For a relayed copy the upstream refused for good: what its reply
    /// means for the person (`[bounces]` rules, as for a DSN).
    pub bounce: Option<Box<UpstreamBounce>>,
}

#[derive(Debug, Clone)]
pub struct LateDecision {
    pub message_id: String,
    pub recipient: String,
    pub subject_id: Option<String>,
    pub campaign: String,
    pub reason: Reason,
    pub event_id: Option<i64>,
}

/// A consent event to append.
#[derive(Debug, Clone)]
pub struct NewConsentEvent {
    /// The address's canonical identity.
    pub address: String,
    /// Used when the address has no subject yet.
    pub new_subject: NewSubject,
    pub campaign: String,
    pub action: Action,
    pub at: i64,
    pub source: Source,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub evidence: Option<String>,
    /// The operator who records it (an audit row is written with it);
    /// `None` when the person acted (a page, a mail, the SMTP side) or a
    /// report did.
    pub actor: Option<Actor>,
}

/// A consent event as stored.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsentEvent {
    pub id: i64,
    pub subject_id: String,
    pub campaign: String,
    pub action: Action,
    pub at: i64,
    pub source: Source,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub evidence: Option<String>,
    pub recorded_at: i64,
}

/// One row of derived consent state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StateRow {
    pub campaign: String,
    pub status: Status,
    pub since: i64,
    pub event_id: i64,
}

/// What `consent show` prints about one address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubjectConsent {
    pub subject_id: String,
    pub address: String,
    pub created_at: i64,
    pub states: Vec<StateRow>,
    pub events: Vec<ConsentEvent>,
}

/// A subject as links name it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubjectRow {
    pub id: String,
    /// `None` once erased.
    pub address: Option<String>,
}

/// What the store holds about one recipient, for one campaign's decision.
#[derive(Debug, Clone, Default)]
pub struct KnownRecipient {
    pub subject_id: Option<String>,
    pub consent: RecipientConsent,
}

/// A row of the decision log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecisionRow {
    pub id: i64,
    pub at: i64,
    /// The queue id of the message decided.
    pub message_id: String,
    /// What the message is: the CRM's mail, or the relay's own
    /// (confirmation, erasure notice, DSN).
    pub kind: MessageKind,
    /// The message's `Message-ID` header as written (`<...>`), if it had one.
    pub header_message_id: Option<String>,
    pub recipient: String,
    pub campaign: String,
    pub outcome: Outcome,
    pub reason: Reason,
    pub event_id: Option<i64>,
    pub stage: String,
}

/// Which rows of the decision log to read, and in which order.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub recipient: Option<String>,
    pub campaign: Option<String>,
    /// Rows of this message (its queue id).
    pub queue_id: Option<String>,
    /// Rows of the messages whose `Message-ID` header is this one, given
    /// without its angle brackets (`mail::ids::message_id`); a header
    /// stored with or without them matches.
    pub message_id: Option<String>,
    pub since: Option<i64>,
    /// Rows after this id (pagination, oldest first).
    pub after_id: Option<i64>,
    /// Rows before this id (pagination, newest first).
    pub before_id: Option<i64>,
    /// The newest `limit` rows, newest first (default: the oldest, oldest first).
    pub newest_first: bool,
    pub limit: i64,
}

/// A row of the delivery queue.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueRow {
    pub id: i64,
    pub message_id: String,
    pub kind: MessageKind,
    pub recipient: String,
    pub mail_from: String,
    pub campaign: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_reply: Option<String>,
    pub received_at: i64,
}

/// A page of the console's queue view, read in one snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueuePage {
    /// The queue now: its counts by status and its oldest deferred copy.
    pub now: QueueNow,
    /// Copies that failed for good (until the retention purge).
    pub failed: i64,
    /// The copies of the status asked for, newest first.
    pub rows: Vec<QueueRow>,
}

/// Counts of deliveries by status.
pub type QueueCounts = HashMap<String, i64>;

/// A subject as held, for access requests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubjectInfo {
    pub id: String,
    pub address: String,
    pub created_at: i64,
}

/// A delivery (one recipient's copy), for access requests and the trace.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeliveryRow {
    pub id: i64,
    /// The queue id of its message.
    pub message_id: String,
    pub kind: MessageKind,
    /// The message's `Message-ID` header as written, if it had one.
    pub header_message_id: Option<String>,
    pub campaign: String,
    /// The address the copy goes (or went) to, as the client wrote it.
    pub sent_to: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    /// When it is tried next (queued, deferred), or when it ended.
    pub next_attempt_at: i64,
    pub last_reply: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Every attempt upstream, oldest first.
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// One attempt of a copy upstream, as recorded with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryAttempt {
    pub at: i64,
    /// The outcome it was recorded with (`sent`, `deferred`, `failed`).
    pub status: DeliveryStatus,
    /// The upstream's reply, the recipient's address masked.
    pub reply: String,
}

/// Everything the store holds about one address (access and portability).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubjectRecord {
    /// `None` when the address never had a subject (e.g. only suppressed mail).
    pub subject: Option<SubjectInfo>,
    pub states: Vec<StateRow>,
    pub events: Vec<ConsentEvent>,
    pub decisions: Vec<DecisionRow>,
    pub deliveries: Vec<DeliveryRow>,
    /// The messages to the address whose body is still held.
    pub messages: Vec<HeldMessage>,
    /// The bounces (DSNs to the sender) about the copies to the address.
    pub bounces: Vec<HeldBounce>,
    /// The person's suppressions (bounces acted on), removed ones too.
    pub suppressions: Vec<Suppression>,
}

/// A message to the address, its body still held (access requests).
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldMessage {
    pub id: String,
    pub kind: MessageKind,
    pub campaign: String,
    pub received_at: i64,
    /// The message as received (its `Received:` header added).
    pub body: Vec<u8>,
    /// How many other recipients the message had (its body may name them).
    pub other_recipients: i64,
}

/// A bounce the relay wrote to a sender about a copy to the address.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HeldBounce {
    /// The bounce's own queue id.
    pub id: String,
    /// The message and the delivery it reports on; `None` for bounces
    /// written before that link was stored (found by the address in them).
    pub about: Option<(String, i64)>,
    /// The sender it is (or was) sent to, and how that delivery stands.
    pub to: Option<String>,
    pub status: Option<DeliveryStatus>,
    pub created_at: i64,
    /// `None` once removed (by `[retention]`).
    pub body: Option<Vec<u8>>,
    /// How many other recipients the reported message had (the bounce
    /// returns its header block); `None` when not known.
    pub other_recipients: Option<i64>,
}

impl SubjectRecord {
    /// Whether nothing at all is held.
    pub fn is_empty(&self) -> bool {
        self.subject.is_none() && self.decisions.is_empty() && self.deliveries.is_empty()
    }
}

/// An erasure request (right to be forgotten).
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The address's canonical identity.
    pub address: String,
    /// The suppression to keep when the address has no subject yet (only
    /// decisions name it); its `address_hash` is used, never its address.
    pub new_subject: NewSubject,
    pub source: Source,
    pub at: i64,
    /// The operator who asked (the audit row names them).
    pub actor: Actor,
    /// `[erasure] notify`: the mail telling the person, queued in the same
    /// transaction (kind `erasure-notice`, its one recipient the address).
    /// Queued only when something was erased.
    pub notice: Option<NewMessage>,
}

/// What an erasure did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErasureReport {
    pub subject_id: String,
    /// The keyed hash kept as a suppression.
    pub address_hash: String,
    /// The `erase` event appended.
    pub event_id: i64,
    /// Consent events kept as the record that consent existed, proof removed.
    pub events_kept: u64,
    /// Decision rows whose recipient is now `erased:<address_hash>`.
    pub decisions: u64,
    /// Delivery rows whose recipient is now `erased:<address_hash>`.
    pub deliveries: u64,
    /// Copies to the address not sent yet (queued, deferred, or being
    /// sent), now `suppressed-late`.
    pub cancelled: u64,
    /// Messages to the address alone whose body was removed.
    pub bodies_removed: u64,
    /// Stored upstream replies that quoted the address, now masked.
    pub replies_scrubbed: u64,
    /// Bounces (DSNs to the sender) about the address, their bodies removed.
    pub bounces: u64,
    /// Of those, the ones not sent yet, now never sent (`suppressed-late`).
    pub bounces_dropped: u64,
}

/// The store, over one backend.
#[derive(Clone)]
pub enum Store {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PgStore>),
}

/// Runs `$e` with `$c` a connection of whichever backend this is.
macro_rules! read {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Store::Sqlite(s) => {
                let mut conn = s.reader().await?;
                let $c = &mut *conn;
                $e.await
            }
            Store::Postgres(s) => {
                let mut conn = s.reader().await?;
                let $c = &mut *conn;
                $e.await
            }
        }
    };
}

/// [`read!`] in a read-only transaction: one snapshot of every table.
macro_rules! snapshot {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Store::Sqlite(s) => {
                let mut tx = s.snapshot().await?;
                let out = {
                    let $c = &mut *tx;
                    $e.await?
                };
                tx.rollback().await?;
                Ok(out)
            }
            Store::Postgres(s) => {
                let mut tx = s.snapshot().await?;
                let out = {
                    let $c = &mut *tx;
                    $e.await?
                };
                tx.rollback().await?;
                Ok(out)
            }
        }
    };
}

// After the macros above, which they use.
mod audit;
mod guard;
mod overview;
mod person;
mod purge;
mod queue;
mod sessions;
mod trace;
mod webhooks;
pub use audit::{Actor, AuditAction, AuditEntry, AuditFilter, AuditRow, Via};
pub use guard::{
    ActiveSuppression, CampaignDay, CampaignPause, ClaimedNotice, NoticeKind, NoticeRow, Paused,
    Released, Suppression,
};
pub use overview::{
    Channel, Counts, OVERVIEW_MAX_DAYS, OldestDeferred, Overview, OverviewDay, QueueNow,
};
pub use person::{Person, PersonQuery, PersonSubject};
pub use purge::{PurgeCutoffs, PurgeReport, PurgeStep};
pub use queue::{QueueAction, QueueChange, QueueError};
pub use sessions::{OperatorSession, SessionRules, TOUCH_EVERY_MS};
pub use trace::{MessageTrace, TRACE_MAX};
pub use webhooks::{ClaimedWebhook, WebhookOutcome, WebhookRow};

impl Store {
    /// Opens the store named by `[store] url` and brings its schema up to date.
    /// `exclusive` takes the single-node lock (SQLite: one `serve` per
    /// database); PostgreSQL takes none, several nodes share it.
    /// Then brings what older versions stored to the identity rules, once
    /// (`ops::identity`).
    pub async fn open(config: &StoreConfig, exclusive: bool) -> Result<Store, StoreError> {
        let store = match &config.url {
            StoreUrl::Sqlite(path) => Store::Sqlite(Arc::new(
                SqliteStore::open(path, config.pool_size, exclusive)
                    .await?
                    .with_webhook_outbox(config.webhook_outbox),
            )),
            StoreUrl::Postgres(url) => Store::Postgres(Arc::new(
                PgStore::open(url, config.pool_size)
                    .await?
                    .with_webhook_outbox(config.webhook_outbox),
            )),
        };
        let step = ops::identity::BringToIdentity {
            webhook: store.webhook(),
        };
        let report = store.write(step).await?;
        if report != ops::identity::IdentityReport::default() {
            tracing::info!(
                step = ops::identity::STEP,
                rewritten = report.rewritten,
                merged = report.merged,
                objections_kept = report.objections_kept,
                unparsable = report.unparsable,
                "store: addresses brought to the identity rules (subjects of one mailbox merged)"
            );
        }
        Ok(store)
    }

    /// Runs the write `op` on this backend, which wakes the webhook
    /// dispatcher once it committed consent events.
    async fn write<W: ops::Op>(&self, op: W) -> Result<W::Out, StoreError>
    where
        sqlite::Job: From<sqlite::Pending<W>>,
    {
        match self {
            Store::Sqlite(s) => s.write(op).await,
            Store::Postgres(s) => s.write(op).await,
        }
    }

    /// Consent events are queued in `webhook_outbox` (`[webhook]` is set).
    fn webhook(&self) -> bool {
        match self {
            Store::Sqlite(s) => s.webhook_outbox,
            Store::Postgres(s) => s.webhook_outbox,
        }
    }

    fn events(&self) -> &Arc<tokio::sync::Notify> {
        match self {
            Store::Sqlite(s) => &s.events,
            Store::Postgres(s) => &s.events,
        }
    }

    /// Consent known for these addresses (canonical identities), for one campaign.
    /// `hashes` holds, per address, its keyed hashes under every signing key
    /// (an erased address is only known by its hash).
    pub async fn recipients_consent(
        &self,
        campaign: &str,
        addresses: &[String],
        hashes: &[Vec<String>],
    ) -> Result<HashMap<String, KnownRecipient>, StoreError> {
        if addresses.is_empty() {
            return Ok(HashMap::new());
        }
        let now = crate::time::now_ms();
        read!(self, c => ops::reads::recipients_consent(c, campaign, addresses, hashes, now))
    }

    /// Stores a report as received, before anything is read from it; the
    /// same bytes again give the row they made. Returns after the commit.
    pub async fn receive_report(&self, report: NewReport) -> Result<ReceivedReport, StoreError> {
        use sha2::Digest as _;
        // The same bytes to the same address are one report (a door's
        // retry, a report sent twice); to another return path, another.
        let mut h = sha2::Sha256::new();
        h.update(report.envelope_to.as_deref().unwrap_or("").to_lowercase());
        h.update([0]);
        h.update(&report.raw);
        let digest = hex::encode(h.finalize());
        self.write(ops::feedback::Receive {
            report: Box::new(report),
            digest,
        })
        .await
    }

    /// Applies what a stored report was found to mean, once: a report
    /// applied before (by any node) changes nothing more.
    pub async fn apply_report(&self, findings: Findings) -> Result<Applied, StoreError> {
        let webhook = self.webhook();
        self.write(ops::feedback::Apply {
            findings: Box::new(findings),
            webhook,
        })
        .await
    }

    /// Removes the raw messages of reports applied before `cutoff`, up to
    /// `batch` of them in one transaction; how many it removed.
    pub async fn purge_reports(&self, cutoff: i64, batch: i64) -> Result<u64, StoreError> {
        self.write(ops::feedback::PurgeReports { cutoff, batch })
            .await
    }

    /// Reports stored but not applied (a crash between), oldest first.
    pub async fn pending_reports(&self, limit: i64) -> Result<Vec<PendingReport>, StoreError> {
        read!(self, c => ops::reads::pending_reports(c, limit))
    }

    /// Stores a message, its decisions and its deliveries in one transaction.
    /// Returns only after the commit.
    pub async fn accept_message(&self, message: NewMessage) -> Result<(), StoreError> {
        self.write(ops::accept::Accept(Box::new(message))).await
    }

    /// Leases up to `limit` due deliveries to `owner` until `lease_until`.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.write(ops::accept::ClaimDue {
            owner: owner.to_owned(),
            now,
            lease_until,
            limit,
        })
        .await
    }

    /// The earliest time a queued or deferred delivery becomes due.
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        read!(self, c => ops::reads::next_due(c))
    }

    /// Message bodies by queue id.
    pub async fn message_bodies(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Arc<Vec<u8>>>, StoreError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        read!(self, c => ops::reads::message_bodies(c, ids))
    }

    /// Records attempt outcomes (one transaction per batch, grouped).
    pub async fn record_attempts(&self, records: Vec<AttemptRecord>) -> Result<(), StoreError> {
        self.write(ops::outcomes::Record {
            records,
            webhook: self.webhook(),
        })
        .await
        .map(drop)
    }

    /// Takes the node name `name` for this process (`instance`) unless
    /// another process refreshed it at or after `live_since`; once taken,
    /// the leases the name held go back to the queue at once.
    pub async fn join_node(
        &self,
        name: &str,
        instance: &str,
        now: i64,
        live_since: i64,
    ) -> Result<Joined, StoreError> {
        self.write(ops::nodes::Join {
            name: name.to_owned(),
            instance: instance.to_owned(),
            now,
            live_since,
        })
        .await
    }

    /// Refreshes the node name's last-seen time; `false` when `instance`
    /// no longer holds it.
    pub async fn node_heartbeat(
        &self,
        name: &str,
        instance: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.write(ops::nodes::Heartbeat {
            name: name.to_owned(),
            instance: instance.to_owned(),
            now,
        })
        .await
        .map(|n| n > 0)
    }

    /// Frees the node name (a clean shutdown), if `instance` holds it.
    pub async fn leave_node(&self, name: &str, instance: &str) -> Result<(), StoreError> {
        self.write(ops::nodes::Leave {
            name: name.to_owned(),
            instance: instance.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Whether this store takes one node only (SQLite, under its lock):
    /// then no other live process can hold a node name.
    pub fn single_node(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    /// Hands leases held by `owner` back to the queue (shutdown).
    pub async fn release_leases(&self, owner: &str) -> Result<u64, StoreError> {
        self.write(ops::accept::ReleaseLeases(owner.to_owned()))
            .await
    }

    /// Appends a consent event and updates the derived state in the same transaction.
    pub async fn append_consent_event(
        &self,
        event: NewConsentEvent,
    ) -> Result<ConsentEvent, StoreError> {
        self.append_consent_event_then(event, None).await
    }

    /// [`Store::append_consent_event`], and queues the mail `follow_up`
    /// builds from the recorded event in the same transaction.
    pub async fn append_consent_event_then(
        &self,
        event: NewConsentEvent,
        follow_up: Option<FollowUp>,
    ) -> Result<ConsentEvent, StoreError> {
        let (source, action) = (event.source.as_str(), event.action.as_str());
        let op = ops::consent::AppendEvent {
            event: Box::new(event),
            webhook: self.webhook(),
            follow_up,
        };
        let recorded: ConsentEvent = self.write(op).await?;
        metrics::counter!(crate::metrics::CONSENT_EVENTS, "source" => source, "action" => action)
            .increment(1);
        Ok(recorded)
    }

    /// Everything about one address's consent; `None` if unknown.
    pub async fn subject_consent(
        &self,
        address: &str,
    ) -> Result<Option<SubjectConsent>, StoreError> {
        snapshot!(self, c => ops::reads::subject_consent(c, address))
    }

    /// The subject a link names, by its opaque id.
    pub async fn subject_by_id(&self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        read!(self, c => ops::reads::subject_by_id(c, id))
    }

    /// Current consent state of a subject, every campaign (and `*`).
    pub async fn subject_states(&self, subject_id: &str) -> Result<Vec<StateRow>, StoreError> {
        read!(self, c => ops::reads::subject_states(c, subject_id))
    }

    pub async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<DecisionRow>, StoreError> {
        read!(self, c => ops::reads::decisions(c, filter))
    }

    /// Everything held about one address (its canonical identity), read in one snapshot;
    /// `None` if nothing is.
    pub async fn subject_record(&self, address: &str) -> Result<Option<SubjectRecord>, StoreError> {
        snapshot!(self, c => ops::reads::subject_record(c, address))
    }

    /// Erases an address in one transaction (see `ErasureReport`); `None`
    /// if the store holds nothing about it.
    pub async fn erase(&self, erasure: Erasure) -> Result<Option<ErasureReport>, StoreError> {
        self.write(ops::erase::Erase {
            erasure: Box::new(erasure),
            webhook: self.webhook(),
        })
        .await
    }

    /// How many copies are queued, deferred, being sent and held, by status.
    pub async fn queue_depth(&self) -> Result<Vec<(String, i64)>, StoreError> {
        read!(self, c => ops::reads::queue_depth(c))
    }

    /// Deliveries not yet final (queued, sending, deferred, held) and failed ones.
    pub async fn queue(&self, limit: i64) -> Result<Vec<QueueRow>, StoreError> {
        read!(self, c => ops::reads::queue(c, limit))
    }

    /// The console's queue view: `limit` copies in `status` (deferred,
    /// held or failed), newest first, older than the copy `before` when
    /// given, with the queue's counts (failed ones too) and its oldest
    /// deferred copy.
    pub async fn queue_page(
        &self,
        status: DeliveryStatus,
        before: Option<i64>,
        limit: i64,
    ) -> Result<QueuePage, StoreError> {
        if !matches!(
            status,
            DeliveryStatus::Deferred | DeliveryStatus::Held | DeliveryStatus::Failed
        ) {
            return Err(StoreError::Invalid(format!(
                "queue page of {status} copies: only deferred, held and failed ones are paged"
            )));
        }
        snapshot!(self, c => ops::reads::queue_page(c, status, before, limit))
    }

    /// Copies held (their campaign paused), per campaign.
    pub async fn held_by_campaign(&self) -> Result<HashMap<String, i64>, StoreError> {
        read!(self, c => ops::reads::held_by_campaign(c))
    }

    /// Appends imported events, each unless its import key is stored; one
    /// transaction per call, so callers pass batches.
    pub async fn import_events(&self, rows: Vec<ImportEvent>) -> Result<ImportCounts, StoreError> {
        self.write(ops::import::Import {
            rows,
            webhook: self.webhook(),
        })
        .await
    }

    /// Which of these import keys are stored.
    pub async fn present_import_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        read!(self, c => ops::reads::present_import_keys(c, keys))
    }

    /// Which of these address hashes are of erased subjects.
    pub async fn erased_hashes(
        &self,
        hashes: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        read!(self, c => ops::reads::erased_hashes(c, hashes))
    }

    /// Appends a consent event unless its `Idempotency-Key` is stored, and
    /// stores the key with the answer in the same transaction.
    pub async fn append_consent_event_once(
        &self,
        keyed: KeyedConsent,
    ) -> Result<KeyedOutcome, StoreError> {
        let (source, action) = (keyed.event.source.as_str(), keyed.event.action.as_str());
        let op = ops::import::AppendOnce {
            keyed: Box::new(keyed),
            webhook: self.webhook(),
        };
        let outcome: KeyedOutcome = self.write(op).await?;
        if matches!(outcome, KeyedOutcome::Recorded { .. }) {
            metrics::counter!(crate::metrics::CONSENT_EVENTS, "source" => source, "action" => action)
                .increment(1);
        }
        Ok(outcome)
    }

    /// Current grants for `campaign` given at or before `cutoff` (oldest
    /// first), not overridden by a later "unsubscribe from all".
    pub async fn grants_since_before(
        &self,
        campaign: &str,
        cutoff: i64,
    ) -> Result<Vec<GrantRow>, StoreError> {
        read!(self, c => ops::reads::grants_since_before(c, campaign, cutoff))
    }

    /// Closes the store: the writer finishes what it holds, connections close.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
            Store::Postgres(s) => s.close().await,
        }
    }
}

#[cfg(test)]
mod disk_full_tests {
    use std::borrow::Cow;

    use super::StoreError;

    /// A database error with this code, as a backend reports it.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "coded"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn coded(code: &'static str) -> StoreError {
        StoreError::Db(sqlx::Error::Database(Box::new(Coded(code))))
    }

    #[test]
    fn sqlite_full_and_postgres_disk_full_are_a_full_store() {
        assert!(coded("13").is_full(), "SQLITE_FULL");
        assert!(coded("53100").is_full(), "PostgreSQL disk_full");
        assert!(!coded("5").is_full(), "SQLITE_BUSY");
        assert!(!coded("23505").is_full(), "unique violation");
        assert!(!StoreError::Closed.is_full());
    }
}
