//! The `[retention]` purge: its dry-run counts and its batches, step by step.

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{AttemptRecord, DeliveryStatus, PurgeCutoffs, PurgeReport, PurgeStep};

use super::*;
use crate::both_stores;

async fn purge_counts_then_removes_what_ended_before_the_cutoffs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let to = |id: &str, address: &str, outcome| {
        message(
            id,
            "news",
            1000,
            vec![rcpt(address, outcome, Reason::Mandatory)],
        )
    };
    store
        .accept_message(to("done", "a@example.net", Outcome::Deliver))
        .await
        .unwrap();
    let claimed = store.claim_due("n1", 1000, 60_000, 10).await.unwrap();
    store
        .record_attempts(vec![AttemptRecord {
            delivery_id: claimed[0].id,
            status: DeliveryStatus::Sent,
            attempted: true,
            reply: "250 ok".into(),
            next_attempt_at: 0,
            late_decision: None,
            dsn: None,
            bounce: None,
        }])
        .await
        .unwrap();
    store
        .accept_message(to("pending", "b@example.net", Outcome::Deliver))
        .await
        .unwrap();
    store
        .accept_message(to("dropped", "c@example.net", Outcome::Suppress))
        .await
        .unwrap();
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();

    // Nothing ended before a cut-off in the past.
    let past = PurgeCutoffs {
        message_bodies: 0,
        decisions: 0,
    };
    assert_eq!(
        store.purge_count(past).await.unwrap(),
        PurgeReport::default()
    );

    let later = now() + 86_400_000;
    let cutoffs = PurgeCutoffs {
        message_bodies: later,
        decisions: later,
    };
    let expected = PurgeReport {
        message_bodies: 1,
        decisions: 3,
        deliveries: 1,
        messages: 2,
    };
    assert_eq!(store.purge_count(cutoffs).await.unwrap(), expected);

    let (bodies, next) = store.purge_batch(PurgeStep::first(cutoffs)).await.unwrap();
    assert_eq!(
        bodies,
        PurgeReport {
            message_bodies: 1,
            ..PurgeReport::default()
        }
    );
    assert_eq!(next, Some(PurgeStep::Decisions { cutoff: later }));
    let (decisions, next) = store.purge_batch(next.unwrap()).await.unwrap();
    assert_eq!(
        decisions,
        PurgeReport {
            decisions: 3,
            messages: 1,
            ..PurgeReport::default()
        }
    );
    assert_eq!(
        next,
        Some(PurgeStep::Deliveries {
            cutoff: later,
            after: 0
        })
    );
    let (deliveries, next) = store.purge_batch(next.unwrap()).await.unwrap();
    assert_eq!(
        deliveries,
        PurgeReport {
            deliveries: 1,
            messages: 1,
            ..PurgeReport::default()
        }
    );
    assert_eq!(next, None);
    let mut total = PurgeReport::default();
    for r in [bodies, decisions, deliveries] {
        total.add(&r);
    }
    assert_eq!(total, expected);

    assert_eq!(
        store.purge_count(cutoffs).await.unwrap(),
        PurgeReport::default()
    );
    let (again, _) = store.purge_batch(PurgeStep::first(cutoffs)).await.unwrap();
    assert!(again.is_empty());
    // What is still to send stays, and consent records are never purged.
    assert_eq!(
        column(dir.path(), "SELECT id FROM messages").await,
        vec![Some("pending".to_owned())]
    );
    assert_eq!(
        store
            .message_bodies(&["pending".into()])
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.queue(10).await.unwrap().len(), 1);
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM consent_events").await,
        1
    );
    store.close().await;
}
both_stores!(purge_counts_then_removes_what_ended_before_the_cutoffs);

async fn purge_of_bodies_keeps_rows_younger_than_the_decision_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .accept_message(message(
            "m1",
            "news",
            1000,
            vec![rcpt("a@example.net", Outcome::Deliver, Reason::Mandatory)],
        ))
        .await
        .unwrap();
    let claimed = store.claim_due("n1", 1000, 60_000, 10).await.unwrap();
    store
        .record_attempts(vec![AttemptRecord {
            delivery_id: claimed[0].id,
            status: DeliveryStatus::Failed,
            attempted: true,
            reply: "550 no".into(),
            next_attempt_at: 0,
            late_decision: None,
            dsn: None,
            bounce: None,
        }])
        .await
        .unwrap();
    let cutoffs = PurgeCutoffs {
        message_bodies: now() + 86_400_000,
        decisions: 0,
    };
    assert_eq!(
        store.purge_count(cutoffs).await.unwrap(),
        PurgeReport {
            message_bodies: 1,
            ..PurgeReport::default()
        }
    );
    let mut step = Some(PurgeStep::first(cutoffs));
    let mut total = PurgeReport::default();
    while let Some(s) = step {
        let (r, next) = store.purge_batch(s).await.unwrap();
        total.add(&r);
        step = next;
    }
    assert_eq!(
        total,
        PurgeReport {
            message_bodies: 1,
            ..PurgeReport::default()
        }
    );
    assert_eq!(all_decisions(&store).await.len(), 1);
    assert!(
        store
            .message_bodies(&["m1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}
both_stores!(purge_of_bodies_keeps_rows_younger_than_the_decision_cutoff);
