//! Who a person is, in the store: a copy leased with the address as the
//! client wrote it, and the data step that brings a store made before the
//! identity rules to them when it opens (subjects of one mailbox merged,
//! events and decisions kept, the objection winning).

use crate::both_stores;
use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::consent::{Action, Status};
use consent_relay::store::Store;

use super::*;

async fn a_copy_is_leased_with_the_address_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let mut bob = rcpt("bob.smith@example.net", Outcome::Deliver, Reason::Granted);
    bob.rcpt_to = Some("Bob.Smith@Example.NET".into());
    let ann = rcpt("ann@example.net", Outcome::Deliver, Reason::Granted);
    store
        .accept_message(message("m1", "news", 1000, vec![bob, ann]))
        .await
        .unwrap();
    let mut leased = store.claim_due("node", 2000, 60_000, 10).await.unwrap();
    leased.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    let got: Vec<(&str, &str)> = leased
        .iter()
        .map(|d| (d.recipient.as_str(), d.rcpt_to.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("ann@example.net", "ann@example.net"),
            ("bob.smith@example.net", "Bob.Smith@Example.NET")
        ]
    );
    store.close().await;
}
both_stores!(a_copy_is_leased_with_the_address_as_written);

/// Runs each statement on this test's store.
async fn run(dir: &std::path::Path, statements: &[&str]) {
    let mut c = crate::common::backend::connect(dir).await;
    for sql in statements {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// What a store of the relay before the identity rules held: addresses
/// trimmed and lowercased as written, so one mailbox could have several
/// subjects. Ann withdrew `prospecting` as `ann@example.net.` and later
/// granted it as `ann@example.net`; Zoé is there in punycode and, apart,
/// decomposed; Bob only quoted.
const OLD_STORE: &[&str] = &[
    "INSERT INTO subjects (id, address, address_hash, key_id, created_at) VALUES \
     ('s-dot', 'ann@example.net.', 'h1', 'k1', 1), ('s-plain', 'ann@example.net', 'h2', 'k1', 2), \
     ('s-puny', 'zoé@xn--exmple-cua.net', 'h3', 'k1', 3), \
     ('s-decomposed', 'zoe\u{301}@exa\u{308}mple.net', 'h4', 'k1', 4), \
     ('s-quoted', '\"bob\"@example.net', 'h5', 'k1', 5)",
    // Events 1 to 5: ids follow the order of insertion on both backends.
    "INSERT INTO consent_events (subject_id, campaign, action, at, source, recorded_at) VALUES \
     ('s-dot', 'prospecting', 'withdraw', 10, 'api', 10)",
    "INSERT INTO consent_events (subject_id, campaign, action, at, source, recorded_at) VALUES \
     ('s-plain', 'prospecting', 'grant', 20, 'api', 20)",
    "INSERT INTO consent_events (subject_id, campaign, action, at, source, recorded_at) VALUES \
     ('s-plain', 'newsletter', 'grant', 5, 'api', 21)",
    "INSERT INTO consent_events (subject_id, campaign, action, at, source, recorded_at) VALUES \
     ('s-puny', 'newsletter', 'grant', 30, 'form', 30)",
    "INSERT INTO consent_events (subject_id, campaign, action, at, source, recorded_at) VALUES \
     ('s-decomposed', '*', 'withdraw', 40, 'one-click', 40)",
    "INSERT INTO consent_state (subject_id, campaign, status, since, event_id) VALUES \
     ('s-dot', 'prospecting', 'withdrawn', 10, 1), ('s-plain', 'prospecting', 'granted', 20, 2), \
     ('s-plain', 'newsletter', 'granted', 5, 3), ('s-puny', 'newsletter', 'granted', 30, 4), \
     ('s-decomposed', '*', 'withdrawn', 40, 5)",
    "INSERT INTO webhook_outbox (event_id, subject_id, status, attempts, next_attempt_at, created_at) \
     VALUES (1, 's-dot', 'pending', 0, 0, 10)",
    "INSERT INTO messages (id, kind, mail_from, client_ip, helo, campaign, size, body, received_at) \
     VALUES ('m1', 'relay', 'crm@example.com', '192.0.2.1', 'client.test', 'newsletter', 5, NULL, 15)",
    "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, stage, at) \
     VALUES ('m1', 'ann@example.net.', 's-dot', 'newsletter', 'deliver', 'granted', 'accept', 15)",
    "INSERT INTO deliveries (message_id, recipient, status, attempts, next_attempt_at, created_at, updated_at) \
     VALUES ('m1', 'ann@example.net.', 'queued', 0, 15, 15, 15)",
];

fn actions(events: &[consent_relay::store::ConsentEvent]) -> Vec<(String, Action)> {
    events
        .iter()
        .map(|e| (e.campaign.clone(), e.action))
        .collect()
}

async fn opening_an_old_store_merges_the_subjects_of_one_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    // The schema, empty: nothing to bring yet.
    open(dir.path(), false).await.close().await;
    run(dir.path(), OLD_STORE).await;
    let store = open(dir.path(), false).await;

    assert_eq!(
        column(
            dir.path(),
            "SELECT address FROM subjects WHERE address IS NOT NULL ORDER BY id"
        )
        .await,
        [
            Some("ann@example.net".to_owned()),
            Some("zoé@exämple.net".to_owned()),
            Some("bob@example.net".to_owned()),
        ]
    );
    // Ann: the subject already canonical stays; every event is kept, the
    // merge is recorded, and her withdrawal wins over the later grant.
    let ann = store
        .subject_consent("ann@example.net")
        .await
        .unwrap()
        .expect("ann");
    assert_eq!(ann.subject_id, "s-plain");
    let prospecting = |a: Action| ("prospecting".to_owned(), a);
    assert_eq!(
        actions(&ann.events),
        [
            prospecting(Action::Withdraw),
            prospecting(Action::Grant),
            ("newsletter".to_owned(), Action::Grant),
            ("*".to_owned(), Action::Merge),
            prospecting(Action::Withdraw),
        ]
    );
    let merge = &ann.events[3];
    assert!(
        merge
            .evidence
            .as_deref()
            .is_some_and(|e| e.contains("s-dot")),
        "{merge:?}"
    );
    let states: Vec<(&str, Status)> = ann
        .states
        .iter()
        .map(|s| (s.campaign.as_str(), s.status))
        .collect();
    assert_eq!(
        states,
        [
            ("newsletter", Status::Granted),
            ("prospecting", Status::Withdrawn)
        ]
    );
    // Her old links still lead to her; her rows name her identity, and the
    // queued copy still goes where it was addressed.
    let linked = store.subject_by_id("s-dot").await.unwrap().expect("s-dot");
    assert_eq!(
        (linked.id.as_str(), linked.address.as_deref()),
        ("s-plain", Some("ann@example.net"))
    );
    assert_eq!(
        column(
            dir.path(),
            "SELECT recipient || ' ' || subject_id FROM decisions"
        )
        .await,
        [Some("ann@example.net s-plain".to_owned())]
    );
    assert_eq!(
        column(
            dir.path(),
            "SELECT recipient || ' ' || rcpt_to FROM deliveries"
        )
        .await,
        [Some("ann@example.net ann@example.net.".to_owned())]
    );
    assert_eq!(
        column(dir.path(), "SELECT subject_id FROM webhook_outbox").await,
        [Some("s-plain".to_owned())]
    );
    let known = store
        .recipients_consent("prospecting", &["ann@example.net".to_owned()], &[vec![]])
        .await
        .unwrap();
    assert_eq!(
        known["ann@example.net"].consent.campaign.map(|s| s.status),
        Some(Status::Withdrawn)
    );
    // Zoé: the oldest of her spellings stays; the two agreed (her later
    // withdrawal from everything stands), so nothing is added.
    let zoe = store
        .subject_consent("zoé@exämple.net")
        .await
        .unwrap()
        .expect("zoé");
    assert_eq!(zoe.subject_id, "s-puny");
    assert_eq!(
        actions(&zoe.events),
        [
            ("newsletter".to_owned(), Action::Grant),
            ("*".to_owned(), Action::Withdraw),
            ("*".to_owned(), Action::Merge),
        ]
    );
    // Bob collided with no one: his address is rewritten, nothing added.
    let bob = store
        .subject_consent("bob@example.net")
        .await
        .unwrap()
        .expect("bob");
    assert_eq!((bob.subject_id.as_str(), bob.events.len()), ("s-quoted", 0));
    // Erasing a subject of the old store keeps the hash of the identity the
    // erasure names (its hash was made from an old spelling); a subject made
    // since keeps its own, made from the identity already.
    let erase = |address: &str, n: u32| consent_relay::store::Erasure {
        address: address.into(),
        new_subject: subject(n),
        source: consent_relay::consent::Source::Admin,
        at: now(),
        actor: crate::operator("dpo"),
        notice: None,
    };
    let old = store
        .erase(erase("bob@example.net", 8))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.address_hash, "hash-8");
    store
        .append_consent_event(event("new@example.net", 9, "news", Action::Grant, now()))
        .await
        .unwrap();
    let new = store
        .erase(erase("new@example.net", 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.address_hash, "hash-9");
    store.close().await;

    // Once: opening again changes nothing.
    let events = count(dir.path(), "SELECT COUNT(*) FROM consent_events").await;
    assert_eq!(events, 11);
    let again: Store = open(dir.path(), false).await;
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM consent_events").await,
        events
    );
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM store_steps").await,
        1
    );
    again.close().await;
}
both_stores!(opening_an_old_store_merges_the_subjects_of_one_mailbox);

/// Two nodes opening one old store at once bring it to the rules once.
async fn two_stores_opening_at_once_merge_once() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), false).await.close().await;
    run(dir.path(), OLD_STORE).await;
    let (a, b) = tokio::join!(open(dir.path(), false), open(dir.path(), false));
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM consent_events WHERE action = 'merge'"
        )
        .await,
        2
    );
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM consent_events").await,
        8
    );
    a.close().await;
    b.close().await;
}
both_stores!(two_stores_opening_at_once_merge_once);

/// An erasure by the admin of `address` (an identity), its suppression
/// `subject(n)` when it has no subject.
/// A store made empty, then given `statements` as an older relay would
/// have written them, opened again (brought to the identity rules).
async fn old_store(statements: &[&str]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path(), false).await.close().await;
    run(dir.path(), statements).await;
    let store = open(dir.path(), false).await;
    (dir, store)
}

fn erasure_of(address: &str, n: u32) -> consent_relay::store::Erasure {
    consent_relay::store::Erasure {
        address: address.into(),
        new_subject: subject(n),
        source: consent_relay::consent::Source::Admin,
        at: now(),
        actor: crate::operator("dpo"),
        notice: None,
    }
}

/// A store before the identity rules also held decisions naming an address
/// with no subject (a recipient suppressed for want of consent gets none):
/// Carl, written `Carl@Example.NET.`, stored lowercased with the dot.
/// Erasing him by his identity, after the store was brought to the rules,
/// finds those rows and leaves his address in none of them.
async fn an_old_decision_without_a_subject_is_found_by_erasure() {
    let (dir, store) = old_store(&[
            "INSERT INTO subjects (id, address, address_hash, key_id, created_at) VALUES \
             ('s-ann', 'ann@example.net', 'h1', 'k1', 1)",
            "INSERT INTO messages (id, kind, mail_from, client_ip, helo, campaign, size, body, received_at) \
             VALUES ('m1', 'relay', 'crm@example.com', '192.0.2.1', 'client.test', 'prospecting', 5, 'Hi Carl', 15)",
            "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, stage, at) \
             VALUES ('m1', 'carl@example.net.', NULL, 'prospecting', 'suppress', 'no-consent', 'accept', 15)",
    ])
    .await;
    let erased = store
        .erase(erasure_of("carl@example.net", 7))
        .await
        .unwrap();
    assert!(erased.is_some(), "decisions name Carl: he is held");
    assert_eq!(
        column(dir.path(), "SELECT recipient FROM decisions").await,
        [Some("erased:hash-7".to_owned())]
    );
    store.close().await;
}
both_stores!(an_old_decision_without_a_subject_is_found_by_erasure);

/// The API took addresses before the one parser that it now refuses:
/// `john..doe@example.net` (a double dot), whose events hold the person's
/// IP address. The data step gives it the form SMTP and the API take it in
/// (quoted, as the refusal says), so that access and erasure can reach it.
async fn an_old_address_the_parser_refuses_unquoted_is_brought_quoted() {
    let (dir, store) = old_store(&[
            "INSERT INTO subjects (id, address, address_hash, key_id, created_at) VALUES \
             ('s-john', 'john..doe@example.net', 'h1', 'k1', 1)",
            "INSERT INTO consent_events (subject_id, campaign, action, at, source, ip, recorded_at) VALUES \
             ('s-john', 'newsletter', 'grant', 10, 'api', '198.51.100.7', 10)",
    ])
    .await;
    let who = consent_relay::consent::identity::Identity::of("\"john..doe\"@example.net").unwrap();
    let erased = store
        .erase(erasure_of(who.canonical(), 7))
        .await
        .unwrap()
        .expect("john is held");
    assert_eq!(erased.subject_id, "s-john");
    assert_eq!(
        column(dir.path(), "SELECT ip FROM consent_events").await,
        [None, None]
    );
    store.close().await;
}
both_stores!(an_old_address_the_parser_refuses_unquoted_is_brought_quoted);
