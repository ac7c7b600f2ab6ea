//! Accepting a message (with its decisions and deliveries), leasing due
//! copies, handing leases back, and what the queue shows meanwhile.

use crate::both_stores;
use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::MessageKind;
use serde_json::json;

use super::*;

async fn accept_stores_decisions_deliveries_and_new_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let mut a = rcpt("a@example.net", Outcome::Deliver, Reason::Granted);
    a.new_subject = Some(subject(1));
    let b = rcpt("b@example.net", Outcome::Suppress, Reason::NoConsent);
    store
        .accept_message(message("m1", "news", 1000, vec![a, b]))
        .await
        .unwrap();

    let decisions = all_decisions(&store).await;
    let ids: Vec<i64> = decisions.iter().map(|d| d.id).collect();
    assert_eq!(
        serde_json::to_value(&decisions).unwrap(),
        json!([
            {"id": ids[0], "at": 1000, "message_id": "m1", "recipient": "a@example.net",
             "campaign": "news", "outcome": "deliver", "reason": "granted", "event_id": null, "stage": "accept",
             "kind": "relay", "header_message_id": "<m@example.com>"},
            {"id": ids[1], "at": 1000, "message_id": "m1", "recipient": "b@example.net",
             "campaign": "news", "outcome": "suppress", "reason": "no-consent", "event_id": null, "stage": "accept",
             "kind": "relay", "header_message_id": "<m@example.com>"},
        ])
    );
    // The new subject is named by the decision.
    assert_eq!(
        column(dir.path(), "SELECT subject_id FROM decisions ORDER BY id").await,
        vec![Some("subject-1".to_owned()), None]
    );
    let s = store.subject_by_id("subject-1").await.unwrap().unwrap();
    assert_eq!(s.address.as_deref(), Some("a@example.net"));
    assert!(store.subject_by_id("subject-2").await.unwrap().is_none());

    let queue = store.queue(10).await.unwrap();
    assert_eq!(
        serde_json::to_value(&queue).unwrap(),
        json!([{"id": queue[0].id, "message_id": "m1", "kind": "relay", "recipient": "a@example.net",
                "mail_from": "crm@example.com", "campaign": "news", "status": "queued", "attempts": 0,
                "next_attempt_at": 1000, "last_reply": null, "received_at": 1000}])
    );
    let mut depth = store.queue_depth().await.unwrap();
    depth.sort();
    assert_eq!(
        depth,
        vec![
            ("held".to_owned(), 0),
            ("queued".to_owned(), 1),
            ("sending".to_owned(), 0)
        ]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(1000));
    store.close().await;
}
both_stores!(accept_stores_decisions_deliveries_and_new_subjects);

async fn a_new_subject_for_a_known_address_names_the_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    for (id, n) in [("m1", 1), ("m2", 2)] {
        let mut a = rcpt("a@example.net", Outcome::Deliver, Reason::Granted);
        a.new_subject = Some(subject(n));
        store
            .accept_message(message(id, "news", 1000, vec![a]))
            .await
            .unwrap();
    }
    assert_eq!(
        column(dir.path(), "SELECT subject_id FROM decisions ORDER BY id").await,
        vec![Some("subject-1".to_owned()), Some("subject-1".to_owned())]
    );
    assert!(store.subject_by_id("subject-2").await.unwrap().is_none());
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM subjects").await, 1);
    store.close().await;
}
both_stores!(a_new_subject_for_a_known_address_names_the_existing_one);

async fn bodies_are_kept_only_when_something_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .accept_message(message(
            "kept",
            "news",
            1000,
            vec![rcpt("a@example.net", Outcome::Deliver, Reason::Mandatory)],
        ))
        .await
        .unwrap();
    store
        .accept_message(message(
            "dropped",
            "news",
            1000,
            vec![rcpt("b@example.net", Outcome::Suppress, Reason::NoConsent)],
        ))
        .await
        .unwrap();
    let bodies = store
        .message_bodies(&["kept".into(), "dropped".into(), "unknown".into()])
        .await
        .unwrap();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        bodies["kept"].as_slice(),
        b"Subject: kept\r\n\r\nHello\r\n".as_slice()
    );
    assert!(store.message_bodies(&[]).await.unwrap().is_empty());
    assert_eq!(store.queue(10).await.unwrap().len(), 1);
    store.close().await;
}
both_stores!(bodies_are_kept_only_when_something_is_delivered);

async fn claims_lease_due_rows_once_and_expired_leases_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let mut m = message(
        "m1",
        "news",
        1000,
        vec![
            rcpt("a@example.net", Outcome::Deliver, Reason::Mandatory),
            rcpt("b@example.net", Outcome::Deliver, Reason::Mandatory),
        ],
    );
    m.smtputf8 = true;
    store.accept_message(m).await.unwrap();
    store
        .accept_message(message(
            "later",
            "news",
            5000,
            vec![rcpt("c@example.net", Outcome::Deliver, Reason::Mandatory)],
        ))
        .await
        .unwrap();

    // Not due yet.
    assert!(
        store
            .claim_due("n1", 999, 2000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut claimed = store.claim_due("n1", 1000, 2000, 10).await.unwrap();
    claimed.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    assert_eq!(claimed.len(), 2);
    let c = &claimed[0];
    assert_eq!(
        (
            c.message_id.as_str(),
            c.kind,
            c.recipient.as_str(),
            c.mail_from.as_str()
        ),
        ("m1", MessageKind::Relay, "a@example.net", "crm@example.com")
    );
    assert_eq!(
        (c.campaign.as_str(), c.received_at, c.attempts, c.smtputf8),
        ("news", 1000, 0, true)
    );
    assert_eq!(claimed[1].recipient, "b@example.net");
    // Leased: nobody else takes them while the lease holds.
    assert!(
        store
            .claim_due("n2", 1500, 3000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut depth = store.queue_depth().await.unwrap();
    depth.sort();
    assert_eq!(
        depth,
        vec![
            ("held".to_owned(), 0),
            ("queued".to_owned(), 1),
            ("sending".to_owned(), 2)
        ]
    );
    // `limit` bounds a claim; an expired lease is taken by another owner.
    let again = store.claim_due("n2", 2001, 9000, 1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 0);
    let rest = store.claim_due("n2", 2001, 9000, 10).await.unwrap();
    let mut ids: Vec<&str> = again
        .iter()
        .chain(&rest)
        .map(|c| c.recipient.as_str())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["a@example.net", "b@example.net"]);
    assert_eq!(store.next_due().await.unwrap(), Some(5000));

    // Hand-back: only the owner's, and they are due again.
    assert_eq!(store.release_leases("n1").await.unwrap(), 0);
    assert_eq!(store.release_leases("n2").await.unwrap(), 2);
    let statuses: Vec<String> = store
        .queue(10)
        .await
        .unwrap()
        .iter()
        .map(|r| format!("{}:{}", r.recipient, r.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            "a@example.net:queued",
            "b@example.net:queued",
            "c@example.net:queued"
        ]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(1000));
    store.close().await;
}
both_stores!(claims_lease_due_rows_once_and_expired_leases_again);

async fn recipients_consent_reads_state_per_address_and_erased_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 10))
        .await
        .unwrap();
    store
        .append_consent_event(event("a@example.net", 1, "*", Action::Withdraw, 20))
        .await
        .unwrap();
    store
        .append_consent_event(event("b@example.net", 2, "other", Action::Grant, 10))
        .await
        .unwrap();
    store
        .append_consent_event(event("gone@example.net", 3, "news", Action::Grant, 10))
        .await
        .unwrap();
    store
        .erase(consent_relay::store::Erasure {
            address: "gone@example.net".into(),
            new_subject: subject(99),
            source: Source::Admin,
            at: 30,
            actor: crate::operator("dpo"),
            notice: None,
        })
        .await
        .unwrap()
        .unwrap();
    let addresses: Vec<String> = [
        "a@example.net",
        "b@example.net",
        "gone@example.net",
        "new@example.net",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let hashes = vec![
        vec!["hash-1".to_owned()],
        vec!["hash-2".to_owned()],
        vec!["old-key-hash".to_owned(), "hash-3".to_owned()],
        vec!["hash-new".to_owned()],
    ];
    let known = store
        .recipients_consent("news", &addresses, &hashes)
        .await
        .unwrap();
    assert_eq!(known.len(), 3, "{known:?}");
    let a = &known["a@example.net"];
    assert_eq!(a.subject_id.as_deref(), Some("subject-1"));
    let campaign = a.consent.campaign.unwrap();
    assert_eq!(
        (campaign.status.to_string(), campaign.since),
        ("granted".to_owned(), 10)
    );
    let all = a.consent.all.unwrap();
    assert_eq!(
        (all.status.to_string(), all.since),
        ("withdrawn".to_owned(), 20)
    );
    assert!(!a.consent.erased);
    let b = &known["b@example.net"];
    assert_eq!(b.subject_id.as_deref(), Some("subject-2"));
    assert!(b.consent.campaign.is_none() && b.consent.all.is_none() && !b.consent.erased);
    let gone = &known["gone@example.net"];
    assert!(gone.subject_id.is_none() && gone.consent.erased);
    assert!(gone.consent.campaign.is_none());
    assert!(
        store
            .recipients_consent("news", &[], &[])
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}
both_stores!(recipients_consent_reads_state_per_address_and_erased_hashes);
