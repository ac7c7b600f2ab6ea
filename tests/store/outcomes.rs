//! Recording attempt outcomes: sent, deferred, failed with its bounce,
//! suppressed-late with its decision, outcomes on rows no longer leased.

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{DeliveryStatus, LateDecision, MessageKind};
use serde_json::json;

use super::*;
use crate::both_stores;

async fn outcomes_set_status_attempts_and_reply() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let ids = leased(&store, &["a@example.net", "b@example.net", "c@example.net"]).await;
    let mut dsn = message(
        "bounce1",
        "",
        2000,
        vec![rcpt("crm@example.com", Outcome::Deliver, Reason::Mandatory)],
    );
    dsn.kind = MessageKind::Dsn;
    dsn.mail_from = String::new();
    let mut failed = attempt(ids[2], DeliveryStatus::Failed, "550 no such user", 0);
    failed.dsn = Some(dsn);
    let before = now();
    store
        .record_attempts(vec![
            attempt(ids[0], DeliveryStatus::Sent, "250 ok", 0),
            attempt(ids[1], DeliveryStatus::Deferred, "451 later", 7000),
            failed,
        ])
        .await
        .unwrap();

    let queue = store.queue(10).await.unwrap();
    // Sent rows leave the queue; failed ones stay listed; the bounce is queued.
    let rows: Vec<String> = queue
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {:?}",
                r.recipient, r.kind, r.status, r.attempts, r.message_id, r.last_reply
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            "b@example.net relay deferred 1 m1 Some(\"451 later\")",
            "c@example.net relay failed 1 m1 Some(\"550 no such user\")",
            "crm@example.com dsn queued 0 bounce1 None",
        ]
    );
    assert_eq!(queue[0].next_attempt_at, 7000);
    // A final outcome is due never again: its time is when it ended.
    assert!(queue[1].next_attempt_at >= before);
    let record = store
        .subject_record("a@example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.deliveries.len(), 1);
    let d = &record.deliveries[0];
    assert_eq!(
        (d.status.to_string(), d.attempts, d.last_reply.as_deref()),
        ("sent".to_owned(), 1, Some("250 ok"))
    );
    assert!(d.updated_at >= before);
    let mut depth = store.queue_depth().await.unwrap();
    depth.sort();
    assert_eq!(
        depth,
        vec![
            ("deferred".to_owned(), 1),
            ("held".to_owned(), 0),
            ("queued".to_owned(), 1),
            ("sending".to_owned(), 0)
        ]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(2000));
    store.record_attempts(vec![]).await.unwrap();
    store.close().await;
}
both_stores!(outcomes_set_status_attempts_and_reply);

async fn suppressed_late_adds_its_decision_and_unattempted_copies_keep_their_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let ids = leased(&store, &["a@example.net"]).await;
    let mut late = attempt(ids[0], DeliveryStatus::SuppressedLate, "withdrawn", 0);
    late.attempted = false;
    late.late_decision = Some(LateDecision {
        message_id: "m1".into(),
        recipient: "a@example.net".into(),
        subject_id: None,
        campaign: "news".into(),
        reason: Reason::Withdrawn,
        event_id: Some(42),
    });
    store.record_attempts(vec![late]).await.unwrap();
    let decisions = all_decisions(&store).await;
    assert_eq!(decisions.len(), 2);
    let d = serde_json::to_value(&decisions[1]).unwrap();
    assert_eq!(d["recipient"], json!("a@example.net"));
    assert_eq!(d["outcome"], json!("suppress"));
    assert_eq!(d["reason"], json!("withdrawn"));
    assert_eq!(d["event_id"], json!(42));
    assert_eq!(d["stage"], json!("send"));
    assert_eq!(d["campaign"], json!("news"));
    let record = store
        .subject_record("a@example.net")
        .await
        .unwrap()
        .unwrap();
    let delivery = serde_json::to_value(&record.deliveries[0]).unwrap();
    assert_eq!(delivery["status"], json!("suppressed-late"));
    assert_eq!(delivery["attempts"], json!(0));
    assert_eq!(delivery["campaign"], json!("news"));
    assert!(store.queue(10).await.unwrap().is_empty());
    store.close().await;
}
both_stores!(suppressed_late_adds_its_decision_and_unattempted_copies_keep_their_count);

async fn an_outcome_on_a_row_no_longer_leased_is_ignored_with_its_bounce() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let ids = leased(&store, &["a@example.net"]).await;
    assert_eq!(store.release_leases("n1").await.unwrap(), 1);
    let mut failed = attempt(ids[0], DeliveryStatus::Failed, "550 no", 0);
    failed.dsn = Some(message(
        "bounce1",
        "",
        2000,
        vec![rcpt("crm@example.com", Outcome::Deliver, Reason::Mandatory)],
    ));
    failed.late_decision = Some(LateDecision {
        message_id: "m1".into(),
        recipient: "a@example.net".into(),
        subject_id: None,
        campaign: "news".into(),
        reason: Reason::Withdrawn,
        event_id: None,
    });
    store.record_attempts(vec![failed]).await.unwrap();
    let queue = store.queue(10).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(
        (
            queue[0].status.to_string(),
            queue[0].attempts,
            queue[0].last_reply.clone()
        ),
        ("queued".to_owned(), 0, None)
    );
    assert_eq!(all_decisions(&store).await.len(), 1);
    assert!(
        store
            .message_bodies(&["bounce1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}
both_stores!(an_outcome_on_a_row_no_longer_leased_is_ignored_with_its_bounce);

/// The upstream quotes the address as the copy was sent (the client's
/// spelling, here its punycode domain), not as the identity is stored:
/// the stored reply has both masked.
async fn a_stored_reply_has_the_spelling_sent_masked_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let mut zoe = rcpt("zoé@exämple.net", Outcome::Deliver, Reason::Mandatory);
    zoe.rcpt_to = Some("Zoé@XN--EXMPLE-CUA.NET".into());
    store
        .accept_message(message("m1", "news", 1000, vec![zoe]))
        .await
        .unwrap();
    let claimed = store.claim_due("n1", 1000, 60_000, 10).await.unwrap();
    store
        .record_attempts(vec![attempt(
            claimed[0].id,
            DeliveryStatus::Deferred,
            "450 4.2.0 <Zoé@XN--EXMPLE-CUA.NET>: mailbox busy, and zoé@exämple.net too",
            7000,
        )])
        .await
        .unwrap();
    let queue = store.queue(10).await.unwrap();
    assert_eq!(
        queue[0].last_reply.as_deref(),
        Some("450 4.2.0 <recipient>: mailbox busy, and <recipient> too")
    );
    store.close().await;
}
both_stores!(a_stored_reply_has_the_spelling_sent_masked_too);
