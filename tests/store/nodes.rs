//! Relay nodes by name: a name is taken when free or stale, held while
//! another process refreshes it, freed by a clean leave; taking it hands the
//! deliveries and webhook posts it had leased back to the queue at once.

use crate::both_stores;
use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::Joined;

use super::*;

/// The live window of these tests, in ms.
const WINDOW: i64 = 10_000;

async fn a_node_name_is_held_while_live_and_taking_it_brings_its_leases_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true).await;
    store
        .accept_message(message(
            "m1",
            "news",
            1000,
            vec![rcpt("a@example.net", Outcome::Deliver, Reason::Granted)],
        ))
        .await
        .unwrap();
    store
        .append_consent_event(event("b@example.net", 2, "news", Action::Grant, 100))
        .await
        .unwrap();
    let now = consent_relay::time::now_ms();
    // Node n1 (a process since killed) leased both for five minutes.
    assert_eq!(
        store
            .claim_due("n1", now, now + 300_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_webhooks("n1", now, now + 300_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .claim_due("n2", now, now + 300_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // n1 starts again: the name is free, its leases are due again at once.
    let t = now + 1000;
    assert_eq!(
        store.join_node("n1", "i1", t, t - WINDOW).await.unwrap(),
        Joined::Taken {
            deliveries: 1,
            webhooks: 1
        }
    );
    assert_eq!(
        store
            .claim_due("n1", t, t + 300_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .claim_webhooks("n1", t, t + 300_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // A second process with the same name while the first is live: held.
    assert_eq!(
        store
            .join_node("n1", "i2", t + 2000, t + 2000 - WINDOW)
            .await
            .unwrap(),
        Joined::Held {
            instance: "i1".into(),
            last_seen: t
        }
    );
    // Its leases were not touched.
    assert!(
        store
            .claim_due("n3", t + 2000, t + 300_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The holder's heartbeat counts; another process's does not.
    assert!(store.node_heartbeat("n1", "i1", t + 5000).await.unwrap());
    assert!(!store.node_heartbeat("n1", "i2", t + 5000).await.unwrap());
    assert!(matches!(
        store.join_node("n1", "i2", t + 14_000, t + 14_000 - WINDOW).await.unwrap(),
        Joined::Held { last_seen, .. } if last_seen == t + 5000
    ));
    // Not seen for the window: the name is free again, and the holder
    // that stopped answering has lost it.
    let later = t + 5000 + WINDOW + 1;
    assert_eq!(
        store
            .join_node("n1", "i2", later, later - WINDOW)
            .await
            .unwrap(),
        Joined::Taken {
            deliveries: 1,
            webhooks: 1
        }
    );
    assert!(!store.node_heartbeat("n1", "i1", later + 1).await.unwrap());
    // A clean leave frees it at once; other names are independent.
    store.leave_node("n1", "i2").await.unwrap();
    assert!(matches!(
        store
            .join_node("n1", "i3", later + 2, later + 2 - WINDOW)
            .await
            .unwrap(),
        Joined::Taken { .. }
    ));
    assert!(matches!(
        store
            .join_node("n2", "i4", later + 2, later + 2 - WINDOW)
            .await
            .unwrap(),
        Joined::Taken { .. }
    ));
    store.close().await;
}
both_stores!(a_node_name_is_held_while_live_and_taking_it_brings_its_leases_back);
