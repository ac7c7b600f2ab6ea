//! The store's conformance suite: every public [`Store`] operation, called
//! directly (no SMTP, no HTTP), each test run on SQLite and on PostgreSQL
//! (`CONSENT_RELAY_TEST_PG`, see `tests/common/backend.rs`). What one
//! backend does, the other must do too: the same rows, the same counts,
//! the same JSON.

// The suite uses only the store part of the shared test helpers.
#[path = "../common/backend.rs"]
pub mod backend;
mod common {
    pub use super::backend;
}

mod accept;
mod audit;
mod consent;
mod erase;
mod guard;
mod identity;
mod nodes;
mod outcomes;
mod overview;
mod person;
mod purge;
mod queue_view;
mod reads;
mod trace;
mod webhooks;

use std::path::Path;

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::consent::{Action, Source};
use consent_relay::store::{
    AttemptRecord, DecisionFilter, DeliveryStatus, Erasure, MessageKind, NewConsentEvent,
    NewMessage, NewSubject, RecipientDecision, Store,
};

/// Opens this test's store (`webhook`: consent events go to the outbox).
pub async fn open(dir: &Path, webhook: bool) -> Store {
    Store::open(&common::backend::store_config(dir, webhook), false)
        .await
        .expect("open the store")
}

/// A made-up subject `subject-{n}` with hash `hash-{n}`.
pub fn subject(n: impl std::fmt::Display) -> NewSubject {
    NewSubject {
        id: format!("subject-{n}"),
        address_hash: format!("hash-{n}"),
        key_id: "k1".into(),
    }
}

/// A recipient's decision as intake makes it.
pub fn rcpt(address: &str, outcome: Outcome, reason: Reason) -> RecipientDecision {
    RecipientDecision {
        recipient: address.into(),
        rcpt_to: None,
        subject_id: None,
        new_subject: None,
        outcome,
        reason,
        event_id: None,
    }
}

/// A relayed message `id` of `campaign`, received at `at`.
pub fn message(
    id: &str,
    campaign: &str,
    at: i64,
    recipients: Vec<RecipientDecision>,
) -> NewMessage {
    NewMessage {
        id: id.into(),
        kind: MessageKind::Relay,
        mail_from: "crm@example.com".into(),
        client_ip: "192.0.2.1".into(),
        helo: "client.test".into(),
        auth_user: Some("crm".into()),
        campaign: campaign.into(),
        header_message_id: Some("<m@example.com>".into()),
        body: format!("Subject: {id}\r\n\r\nHello\r\n").into_bytes(),
        received_at: at,
        recipients,
        smtputf8: false,
    }
}

/// A real attempt's outcome for delivery `id`, tried again at `next`.
pub fn attempt(id: i64, status: DeliveryStatus, reply: &str, next: i64) -> AttemptRecord {
    AttemptRecord {
        delivery_id: id,
        status,
        attempted: true,
        reply: reply.into(),
        next_attempt_at: next,
        campaign: None,
        late_decision: None,
        dsn: None,
        bounce: None,
    }
}

/// Accepts one message `m1` to these addresses (all delivered) and leases
/// its copies; their ids, by address.
pub async fn leased(store: &Store, addresses: &[&str]) -> Vec<i64> {
    let recipients = addresses
        .iter()
        .map(|a| rcpt(a, Outcome::Deliver, Reason::Mandatory))
        .collect();
    store
        .accept_message(message("m1", "news", 1000, recipients))
        .await
        .unwrap();
    let mut claimed = store.claim_due("n1", 1000, 60_000, 10).await.unwrap();
    claimed.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    claimed.iter().map(|c| c.id).collect()
}

/// An erasure of `address` at 5000 by an admin (`subject(n)` if it has none).
pub fn erasure(address: &str, n: u32, notice: Option<NewMessage>) -> Erasure {
    Erasure {
        address: address.into(),
        new_subject: subject(n),
        source: Source::Admin,
        at: 5000,
        actor: operator("dpo"),
        notice,
    }
}

/// The mail telling a@example.net of its erasure (`notice1`, at 6000).
pub fn erasure_notice() -> NewMessage {
    let mut notice = message(
        "notice1",
        "",
        6000,
        vec![rcpt("a@example.net", Outcome::Deliver, Reason::Mandatory)],
    );
    notice.kind = MessageKind::ErasureNotice;
    notice
}

/// An operator acting from the command line, the audit rows' actor.
pub fn operator(name: &str) -> consent_relay::store::Actor {
    consent_relay::store::Actor::new(name, consent_relay::store::Via::Cli)
}

/// A consent event for `address` (subject `subject(n)` if new).
pub fn event(address: &str, n: u32, campaign: &str, action: Action, at: i64) -> NewConsentEvent {
    NewConsentEvent {
        address: address.into(),
        new_subject: subject(n),
        campaign: campaign.into(),
        action,
        at,
        source: Source::Api,
        ip: Some("198.51.100.7".into()),
        user_agent: Some("agent/1".into()),
        evidence: Some("form #3".into()),
        actor: None,
    }
}

/// Every decision row, oldest first.
pub async fn all_decisions(store: &Store) -> Vec<consent_relay::store::DecisionRow> {
    store
        .decisions(&DecisionFilter {
            limit: 1000,
            ..DecisionFilter::default()
        })
        .await
        .expect("decisions")
}

/// The rows of `sql` (one text or integer column, as text) in this test's store.
pub async fn column(dir: &Path, sql: &str) -> Vec<Option<String>> {
    use sqlx::Row;
    let mut c = common::backend::connect(dir).await;
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|r| {
            r.try_get::<Option<String>, _>(0)
                .or_else(|_| {
                    r.try_get::<Option<i64>, _>(0)
                        .map(|v| v.map(|v| v.to_string()))
                })
                .expect("a text or integer column")
        })
        .collect()
}

/// The one integer `sql` returns (a count).
pub async fn count(dir: &Path, sql: &str) -> i64 {
    let v = column(dir, sql).await;
    assert_eq!(v.len(), 1, "{sql}");
    v[0].as_deref()
        .expect("a value")
        .parse()
        .expect("an integer")
}

pub fn now() -> i64 {
    consent_relay::time::now_ms()
}
