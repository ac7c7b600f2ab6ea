//! The webhook outbox: leases of each subject's oldest row only, outcomes
//! recorded by the lease holder, hand-back.

use consent_relay::store::WebhookOutcome;
use serde_json::json;

use super::*;
use crate::both_stores;

async fn outbox_leases_each_subjects_oldest_event_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true).await;
    let before = now();
    let e1 = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    let e2 = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Withdraw, 200))
        .await
        .unwrap();
    let e3 = store
        .append_consent_event(event("b@example.net", 2, "news", Action::Grant, 100))
        .await
        .unwrap();
    let outbox = store.webhook_outbox(10).await.unwrap();
    assert_eq!(outbox.len(), 3);
    let first = serde_json::to_value(&outbox[0]).unwrap();
    assert_eq!(
        first,
        json!({"event_id": e1.id, "subject_id": "subject-1", "status": "pending", "attempts": 0,
               "next_attempt_at": outbox[0].created_at, "last_error": null, "created_at": outbox[0].created_at})
    );
    assert!(outbox[0].created_at >= before);
    assert_eq!(store.webhook_outbox(1).await.unwrap().len(), 1);

    let t = now() + 1000;
    let claimed = store.claim_webhooks("n1", t, t + 60_000, 10).await.unwrap();
    let got: Vec<(i64, Option<&str>, i64)> = claimed
        .iter()
        .map(|c| (c.event.id, c.email.as_deref(), c.attempts))
        .collect();
    assert_eq!(
        got,
        vec![
            (e1.id, Some("a@example.net"), 0),
            (e3.id, Some("b@example.net"), 0)
        ]
    );
    assert_eq!(claimed[0].event.action.to_string(), "grant");
    assert_eq!(claimed[0].event.evidence.as_deref(), Some("form #3"));
    // e2 waits for e1; leased rows are not leased again.
    assert!(
        store
            .claim_webhooks("n2", t, t + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let retry = t + 5000;
    store
        .record_webhook(
            "n1",
            WebhookOutcome::Failed {
                event_id: e1.id,
                error: "HTTP 500".into(),
                next_attempt_at: retry,
            },
        )
        .await
        .unwrap();
    store
        .record_webhook("n1", WebhookOutcome::Delivered { event_id: e3.id })
        .await
        .unwrap();
    let outbox = store.webhook_outbox(10).await.unwrap();
    let rows: Vec<String> = outbox
        .iter()
        .map(|w| {
            format!(
                "{} {} {} {} {:?}",
                w.event_id, w.status, w.attempts, w.next_attempt_at, w.last_error
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            format!("{} pending 1 {retry} Some(\"HTTP 500\")", e1.id),
            // The subject's later event waits as long.
            format!("{} pending 0 {retry} None", e2.id),
        ]
    );
    assert!(
        store
            .claim_webhooks("n1", retry - 1, retry + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let claimed = store
        .claim_webhooks("n1", retry, retry + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].event.id, claimed[0].attempts), (e1.id, 1));
    // Only the lease holder records.
    store
        .record_webhook("n2", WebhookOutcome::Delivered { event_id: e1.id })
        .await
        .unwrap();
    assert_eq!(store.webhook_outbox(10).await.unwrap().len(), 2);
    // An expired lease is taken by another node, then recorded by it.
    let late = retry + 60_001;
    let taken = store
        .claim_webhooks("n2", late, late + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(
        taken.iter().map(|c| c.event.id).collect::<Vec<_>>(),
        vec![e1.id]
    );
    store
        .record_webhook("n1", WebhookOutcome::Delivered { event_id: e1.id })
        .await
        .unwrap();
    assert_eq!(store.webhook_outbox(10).await.unwrap().len(), 2);
    store
        .record_webhook("n2", WebhookOutcome::Delivered { event_id: e1.id })
        .await
        .unwrap();
    let claimed = store
        .claim_webhooks("n1", late, late + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.event.id).collect::<Vec<_>>(),
        vec![e2.id]
    );
    assert_eq!(claimed[0].event.action.to_string(), "withdraw");
    assert_eq!(store.release_webhooks("n2").await.unwrap(), 0);
    assert_eq!(store.release_webhooks("n1").await.unwrap(), 1);
    let outbox = store.webhook_outbox(10).await.unwrap();
    assert_eq!(
        outbox
            .iter()
            .map(|w| format!("{} {} {}", w.event_id, w.status, w.attempts))
            .collect::<Vec<_>>(),
        vec![format!("{} pending 0", e2.id)]
    );
    store.close().await;
}
both_stores!(outbox_leases_each_subjects_oldest_event_in_order);

async fn without_webhook_no_event_goes_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    assert!(store.webhook_outbox(10).await.unwrap().is_empty());
    assert!(
        store
            .claim_webhooks("n1", now(), now() + 1000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}
both_stores!(without_webhook_no_event_goes_to_the_outbox);

async fn events_written_is_notified_after_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true).await;
    let notify = store.events_written();
    let woken = notify.notified();
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), woken)
        .await
        .expect("woken after the event");
    store.close().await;
}
both_stores!(events_written_is_notified_after_a_commit);
