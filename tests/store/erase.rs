//! Erasure: every table it scrubs, what its report counts, addresses known
//! only by their mail, unknown ones, the notice and its scrub once sent.

use std::collections::HashSet;
use std::sync::Arc;

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{AttemptRecord, DeliveryStatus, ImportEvent, KeyedConsent, MessageKind};

use super::*;
use crate::both_stores;

async fn erase_scrubs_every_table_and_counts_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true).await;
    let grant = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    store
        .import_events(vec![ImportEvent {
            event: event("a@example.net", 1, "other", Action::Grant, 100),
            key: "key-a".into(),
        }])
        .await
        .unwrap();
    store
        .append_consent_event_once(KeyedConsent {
            event: event("a@example.net", 1, "third", Action::Grant, 100),
            key: "idem-a".into(),
            request_hash: "h".into(),
            status: 201,
            respond: Arc::new(|_| "{\"email\":\"a@example.net\"}".into()),
            follow_up: None,
        })
        .await
        .unwrap();
    // Sent alone to the address (body goes), queued to it (cancelled),
    // shared with another recipient (body stays), and another person's mail.
    let to_a = |id: &str| {
        message(
            id,
            "news",
            1000,
            vec![rcpt("a@example.net", Outcome::Deliver, Reason::Granted)],
        )
    };
    store.accept_message(to_a("sent")).await.unwrap();
    let claimed = store.claim_due("n1", 1000, 60_000, 10).await.unwrap();
    store
        .record_attempts(vec![AttemptRecord {
            delivery_id: claimed[0].id,
            status: DeliveryStatus::Sent,
            attempted: true,
            reply: "250 ok".into(),
            next_attempt_at: 0,
            campaign: None,
            late_decision: None,
            dsn: None,
            bounce: None,
        }])
        .await
        .unwrap();
    store.accept_message(to_a("queued")).await.unwrap();
    store
        .accept_message(message(
            "shared",
            "news",
            1000,
            vec![
                rcpt("a@example.net", Outcome::Suppress, Reason::NoConsent),
                rcpt("b@example.net", Outcome::Deliver, Reason::Granted),
            ],
        ))
        .await
        .unwrap();

    let report = store
        .erase(erasure("a@example.net", 9, None))
        .await
        .unwrap()
        .expect("something erased");
    assert_eq!(report.subject_id, "subject-1");
    assert_eq!(report.address_hash, "hash-1");
    assert!(report.event_id > grant.id);
    assert_eq!(
        (
            report.events_kept,
            report.decisions,
            report.deliveries,
            report.cancelled,
            report.bodies_removed
        ),
        (3, 3, 2, 1, 2),
        "{report:?}"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["events_kept"], 3);
    assert_eq!(json["bodies_removed"], 2);

    let d = dir.path();
    assert_eq!(
        count(d, "SELECT COUNT(*) FROM subjects WHERE address IS NOT NULL").await,
        0
    );
    assert_eq!(
        column(d, "SELECT erased_at FROM subjects WHERE id = 'subject-1'")
            .await
            .len(),
        1
    );
    assert_eq!(
        count(d, "SELECT COUNT(*) FROM subjects WHERE erased_at IS NULL").await,
        0
    );
    assert_eq!(
        count(d, "SELECT COUNT(*) FROM consent_events WHERE ip IS NOT NULL OR user_agent IS NOT NULL OR evidence IS NOT NULL OR import_key IS NOT NULL").await,
        0
    );
    assert_eq!(count(d, "SELECT COUNT(*) FROM consent_events").await, 4);
    assert_eq!(count(d, "SELECT COUNT(*) FROM consent_state").await, 0);
    assert_eq!(count(d, "SELECT COUNT(*) FROM idempotency_keys").await, 0);
    assert_eq!(
        count(
            d,
            "SELECT COUNT(*) FROM decisions WHERE recipient = 'a@example.net'"
        )
        .await
            + count(
                d,
                "SELECT COUNT(*) FROM deliveries WHERE recipient = 'a@example.net'"
            )
            .await,
        0
    );
    // Three decisions renamed, and one saying the queued copy is cancelled.
    assert_eq!(
        column(
            d,
            "SELECT message_id FROM decisions WHERE recipient = 'erased:hash-1' ORDER BY id"
        )
        .await,
        ["sent", "queued", "shared", "queued"]
            .map(|s| Some(s.to_owned()))
            .to_vec()
    );
    let cancel = all_decisions(&store).await.pop().unwrap();
    assert_eq!(
        (
            cancel.outcome.to_string(),
            cancel.reason.to_string(),
            cancel.stage.as_str(),
            cancel.event_id
        ),
        (
            "suppress".to_owned(),
            "erased".to_owned(),
            "send",
            Some(report.event_id)
        )
    );
    assert_eq!(
        column(
            d,
            "SELECT status FROM deliveries WHERE recipient = 'erased:hash-1' ORDER BY id"
        )
        .await,
        ["sent", "suppressed-late"]
            .map(|s| Some(s.to_owned()))
            .to_vec()
    );
    assert_eq!(
        column(d, "SELECT last_reply FROM deliveries ORDER BY id").await,
        vec![Some("250 ok".to_owned()), Some("erased".to_owned()), None]
    );
    let bodies = store
        .message_bodies(&["sent".into(), "queued".into(), "shared".into()])
        .await
        .unwrap();
    assert_eq!(
        bodies.keys().cloned().collect::<HashSet<_>>(),
        HashSet::from(["shared".to_owned()])
    );
    // The erase event is appended (and queued for the CRM), without proof.
    let erase_event = column(
        d,
        "SELECT action FROM consent_events ORDER BY id DESC LIMIT 1",
    )
    .await;
    assert_eq!(erase_event, vec![Some("erase".to_owned())]);
    assert_eq!(
        count(
            d,
            &format!(
                "SELECT COUNT(*) FROM webhook_outbox WHERE event_id = {}",
                report.event_id
            )
        )
        .await,
        1
    );
    // What is left: a suppression, known by its hash.
    let s = store.subject_by_id("subject-1").await.unwrap().unwrap();
    assert_eq!(s.address, None);
    assert!(
        store
            .subject_record("a@example.net")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .subject_consent("a@example.net")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .erased_hashes(&["hash-1".into(), "hash-2".into()])
            .await
            .unwrap(),
        HashSet::from(["hash-1".to_owned()])
    );
    assert!(store.erased_hashes(&[]).await.unwrap().is_empty());
    assert!(
        store
            .present_import_keys(&["key-a".into()])
            .await
            .unwrap()
            .is_empty()
    );
    // Erasing again finds nothing.
    assert!(
        store
            .erase(erasure("a@example.net", 9, None))
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}
both_stores!(erase_scrubs_every_table_and_counts_what_it_did);

async fn an_address_known_only_by_its_mail_becomes_a_suppression() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    assert!(
        store
            .erase(erasure("nobody@example.net", 7, None))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM subjects").await, 0);
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM consent_events").await,
        0
    );
    store
        .accept_message(message(
            "m1",
            "news",
            1000,
            vec![rcpt("c@example.net", Outcome::Suppress, Reason::NoConsent)],
        ))
        .await
        .unwrap();
    let report = store
        .erase(erasure("c@example.net", 7, None))
        .await
        .unwrap()
        .expect("known by its decision");
    assert_eq!(
        (report.subject_id.as_str(), report.address_hash.as_str()),
        ("subject-7", "hash-7")
    );
    assert_eq!(
        (
            report.events_kept,
            report.decisions,
            report.deliveries,
            report.cancelled,
            report.bodies_removed
        ),
        (0, 1, 0, 0, 0)
    );
    let s = store.subject_by_id("subject-7").await.unwrap().unwrap();
    assert_eq!(s.address, None);
    assert_eq!(
        column(dir.path(), "SELECT recipient FROM decisions").await,
        vec![Some("erased:hash-7".to_owned())]
    );
    store.close().await;
}
both_stores!(an_address_known_only_by_its_mail_becomes_a_suppression);

/// a@example.net (subject-1, hash-1) granted, then erased with the
/// notice `notice1` queued to it.
pub(crate) async fn erased_with_notice(store: &Store) -> consent_relay::store::ErasureReport {
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    store
        .erase(erasure("a@example.net", 9, Some(erasure_notice())))
        .await
        .unwrap()
        .unwrap()
}

/// The notice's rows name the erased subject, not the address.
pub(crate) async fn assert_notice_scrubbed(d: &Path) {
    assert_eq!(
        column(d, "SELECT recipient FROM decisions").await,
        vec![Some("erased:hash-1".to_owned())]
    );
    assert_eq!(
        column(d, "SELECT recipient FROM deliveries").await,
        vec![Some("erased:hash-1".to_owned())]
    );
}

async fn the_notice_is_queued_then_scrubbed_once_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let report = erased_with_notice(&store).await;
    let queue = store.queue(10).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(
        (
            queue[0].kind.to_string(),
            queue[0].recipient.as_str(),
            queue[0].message_id.as_str()
        ),
        ("erasure-notice".to_owned(), "a@example.net", "notice1")
    );
    assert_eq!(
        column(dir.path(), "SELECT subject_id FROM decisions").await,
        vec![Some("subject-1".to_owned())]
    );
    assert_eq!(
        count(
            dir.path(),
            &format!(
                "SELECT COUNT(*) FROM decisions WHERE event_id = {}",
                report.event_id
            )
        )
        .await,
        1
    );
    let claimed = store.claim_due("n1", 6000, 60_000, 10).await.unwrap();
    assert_eq!(claimed[0].kind, MessageKind::ErasureNotice);
    store
        .record_attempts(vec![AttemptRecord {
            delivery_id: claimed[0].id,
            status: DeliveryStatus::Sent,
            attempted: true,
            reply: "250 2.0.0 ok for <a@example.net>".into(),
            next_attempt_at: 0,
            campaign: None,
            late_decision: None,
            dsn: None,
            bounce: None,
        }])
        .await
        .unwrap();
    let d = dir.path();
    assert_notice_scrubbed(d).await;
    assert_eq!(
        column(d, "SELECT last_reply FROM deliveries").await,
        vec![Some(
            "250 (reply removed with the erased address)".to_owned()
        )]
    );
    assert!(
        store
            .message_bodies(&["notice1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .subject_record("a@example.net")
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}
both_stores!(the_notice_is_queued_then_scrubbed_once_sent);
