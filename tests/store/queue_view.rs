//! The console's queue view reads: one status at a time (deferred, held,
//! failed), newest first, paged by id, with the queue's counts (failed
//! ones too) and its oldest deferred copy; held copies per campaign. Any
//! other status is refused.

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{DeliveryStatus, StoreError};

use super::*;
use crate::both_stores;

fn to(id: &str, campaign: &str, addresses: &[&str]) -> NewMessage {
    let recipients = addresses
        .iter()
        .map(|a| rcpt(a, Outcome::Deliver, Reason::Mandatory))
        .collect();
    message(id, campaign, 1000, recipients)
}

/// The recipients of a page, top to bottom.
fn recipients(rows: &[consent_relay::store::QueueRow]) -> Vec<&str> {
    rows.iter().map(|r| r.recipient.as_str()).collect()
}

async fn the_queue_view_pages_one_status_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .accept_message(to(
            "n1",
            "news",
            &["a@example.net", "b@example.net", "c@example.net"],
        ))
        .await
        .unwrap();
    let mut claimed = store.claim_due("n1", 1000, 60_000, 10).await.unwrap();
    claimed.sort_by_key(|c| c.id);
    let far = now() + 3_600_000;
    store
        .record_attempts(vec![
            attempt(claimed[0].id, DeliveryStatus::Deferred, "451 later", far),
            attempt(claimed[1].id, DeliveryStatus::Deferred, "452 full", far),
            attempt(claimed[2].id, DeliveryStatus::Failed, "550 no such user", 0),
        ])
        .await
        .unwrap();
    store
        .pause_campaign("promo", &crate::operator("alice"), "checking")
        .await
        .unwrap();
    store
        .accept_message(to("p1", "promo", &["d@example.net", "e@example.net"]))
        .await
        .unwrap();
    store
        .accept_message(to("o1", "other", &["f@example.net"]))
        .await
        .unwrap();

    let page = store
        .queue_page(DeliveryStatus::Deferred, None, 10)
        .await
        .unwrap();
    assert_eq!(recipients(&page.rows), ["b@example.net", "a@example.net"]);
    assert_eq!(page.rows[0].last_reply.as_deref(), Some("452 full"));
    assert_eq!(page.rows[0].campaign, "news");
    assert_eq!(page.rows[0].attempts, 1);
    assert_eq!(
        (
            page.now.queued,
            page.now.deferred,
            page.now.held,
            page.failed
        ),
        (1, 2, 2, 1)
    );
    let oldest = page.now.oldest_deferred.expect("a deferred copy");
    assert_eq!(oldest.delivery_id, claimed[0].id);
    // Paged by id: one at a time.
    let first = store
        .queue_page(DeliveryStatus::Deferred, None, 1)
        .await
        .unwrap();
    assert_eq!(recipients(&first.rows), ["b@example.net"]);
    let next = store
        .queue_page(DeliveryStatus::Deferred, Some(first.rows[0].id), 1)
        .await
        .unwrap();
    assert_eq!(recipients(&next.rows), ["a@example.net"]);
    let end = store
        .queue_page(DeliveryStatus::Deferred, Some(next.rows[0].id), 1)
        .await
        .unwrap();
    assert!(end.rows.is_empty());
    let held = store
        .queue_page(DeliveryStatus::Held, None, 10)
        .await
        .unwrap();
    assert_eq!(recipients(&held.rows), ["e@example.net", "d@example.net"]);
    let failed = store
        .queue_page(DeliveryStatus::Failed, None, 10)
        .await
        .unwrap();
    assert_eq!(recipients(&failed.rows), ["c@example.net"]);
    let by_campaign = store.held_by_campaign().await.unwrap();
    assert_eq!(by_campaign.len(), 1);
    assert_eq!(by_campaign["promo"], 2);
    for status in [DeliveryStatus::Queued, DeliveryStatus::Sent] {
        let refused = store.queue_page(status, None, 10).await;
        assert!(
            matches!(&refused, Err(StoreError::Invalid(m)) if m.contains("only deferred, held and failed")),
            "{refused:?}"
        );
    }
    store.close().await;
}
both_stores!(the_queue_view_pages_one_status_newest_first);
