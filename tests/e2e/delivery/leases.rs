//! The queue's leases at the store level, on both stores: two store handles
//! on one database (two nodes on PostgreSQL) claiming at once never take the
//! same row; a lease that expired is taken by the other; an outcome is
//! recorded once; hand-back makes rows due again. Times are passed in, so
//! expiry needs no waiting.

use crate::both_stores;
use crate::common;
use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{
    AttemptRecord, DeliveryStatus, MessageKind, NewMessage, RecipientDecision, Store,
};

async fn open(dir: &std::path::Path) -> Store {
    Store::open(&common::backend::store_config(dir, false), false)
        .await
        .expect("open the store")
}

/// Accepts `n` messages of `per` delivered recipients, due at `at`.
async fn accept(store: &Store, n: usize, per: usize, at: i64) {
    for i in 0..n {
        let message = NewMessage {
            id: ulid::Ulid::generate().to_string(),
            kind: MessageKind::Relay,
            mail_from: "crm@example.com".into(),
            client_ip: "127.0.0.1".into(),
            helo: "client.test".into(),
            auth_user: None,
            campaign: "invoices".into(),
            header_message_id: None,
            body: b"Subject: x\r\n\r\nx\r\n".to_vec(),
            received_at: at,
            smtputf8: false,
            recipients: (0..per)
                .map(|j| RecipientDecision {
                    recipient: format!("m{i}-r{j}@example.net"),
                    rcpt_to: None,
                    subject_id: None,
                    new_subject: None,
                    outcome: Outcome::Deliver,
                    reason: Reason::Mandatory,
                    event_id: None,
                })
                .collect(),
        };
        store.accept_message(message).await.expect("accept");
    }
}

async fn claim_all(store: &Store, owner: &str, now: i64, lease_until: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let batch = store
            .claim_due(owner, now, lease_until, 7)
            .await
            .expect("claim");
        if batch.is_empty() {
            return ids;
        }
        ids.extend(batch.iter().map(|c| c.id));
        tokio::task::yield_now().await;
    }
}

async fn two_nodes_never_take_the_same_row() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(dir.path()).await, open(dir.path()).await);
    let t = 1_000_000;
    accept(&a, 60, 5, t).await;

    // Node A takes a first batch (so it surely holds leases when it "dies"
    // below), then both claim at once until nothing is due: every row once,
    // to one node.
    let first: Vec<i64> = a
        .claim_due("node-a", t, t + 10_000, 7)
        .await
        .expect("claim")
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(first.len(), 7);
    let (rest_a, got_b) = tokio::join!(
        claim_all(&a, "node-a", t, t + 10_000),
        claim_all(&b, "node-b", t, t + 30_000)
    );
    let got_a: Vec<i64> = first.into_iter().chain(rest_a).collect();
    let mut all: Vec<i64> = got_a.iter().chain(&got_b).copied().collect();
    all.sort();
    let claimed = all.len();
    all.dedup();
    assert_eq!(claimed, all.len(), "a row was claimed twice");
    assert_eq!(all.len(), 300, "every due row claimed");

    // Node A dies holding its leases (to t + 10 s; B's run to t + 30 s).
    // Before they expire nobody takes them; after, node B does, once.
    assert!(
        claim_all(&b, "node-b", t + 9_999, t + 20_000)
            .await
            .is_empty()
    );
    let mut taken = claim_all(&b, "node-b", t + 10_001, t + 20_000).await;
    taken.sort();
    let mut held_by_a = got_a.clone();
    held_by_a.sort();
    assert_eq!(
        taken, held_by_a,
        "node B takes exactly node A's expired rows"
    );

    // Node B records every outcome; a late record from node A changes nothing.
    let sent = |id: i64| AttemptRecord {
        delivery_id: id,
        status: DeliveryStatus::Sent,
        attempted: true,
        reply: "250 ok".into(),
        next_attempt_at: 0,
        late_decision: None,
        dsn: None,
        bounce: None,
    };
    b.record_attempts(all.iter().map(|id| sent(*id)).collect())
        .await
        .expect("record");
    a.record_attempts(vec![AttemptRecord {
        status: DeliveryStatus::Deferred,
        ..sent(held_by_a[0])
    }])
    .await
    .expect("late record");
    assert!(
        a.queue(1000).await.unwrap().is_empty(),
        "nothing left to do"
    );
    a.close().await;
    b.close().await;
}
both_stores!(two_nodes_never_take_the_same_row);

async fn handed_back_leases_are_due_again() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(dir.path()).await, open(dir.path()).await);
    let t = 2_000_000;
    accept(&a, 3, 2, t).await;
    let got = claim_all(&a, "node-a", t, t + 60_000).await;
    assert_eq!(got.len(), 6);
    assert!(claim_all(&b, "node-b", t + 1, t + 60_000).await.is_empty());
    assert_eq!(
        b.release_leases("node-b").await.unwrap(),
        0,
        "only one's own"
    );
    assert_eq!(a.release_leases("node-a").await.unwrap(), 6);
    let rows = b.queue(100).await.unwrap();
    assert!(rows.iter().all(|r| r.status == "queued"), "{rows:?}");
    assert_eq!(claim_all(&b, "node-b", t + 1, t + 60_000).await.len(), 6);
    a.close().await;
    b.close().await;
}
both_stores!(handed_back_leases_are_due_again);
