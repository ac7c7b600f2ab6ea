//! The reputation guard's mechanics and suppressions: a pause holds the
//! campaign's queued copies and its new ones, resume queues them again,
//! drop-held ends them (bodies purgeable); sent copies count per campaign
//! per day; suppressions listed, removed with who and why; the notices
//! these changes queue for the webhook.

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{
    AttemptRecord, DeliveryStatus, NoticeKind, PurgeCutoffs, WebhookOutcome,
};
use consent_relay::time::day_of;

use super::*;
use crate::both_stores;

/// A relayed message of `campaign` to these addresses, all delivered.
fn to(id: &str, campaign: &str, addresses: &[&str]) -> consent_relay::store::NewMessage {
    let recipients = addresses
        .iter()
        .map(|a| rcpt(a, Outcome::Deliver, Reason::Mandatory))
        .collect();
    message(id, campaign, 1000, recipients)
}

/// (recipient, status) of every copy in the queue, by recipient.
async fn statuses(store: &Store) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = store
        .queue(1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.recipient, r.status.as_str().to_owned()))
        .collect();
    rows.sort();
    rows
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn a_pause_holds_the_campaigns_copies_until_resume() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .accept_message(to("m1", "news", &["a@example.net", "b@example.net"]))
        .await
        .unwrap();
    store
        .accept_message(to("p1", "promo", &["c@example.net"]))
        .await
        .unwrap();
    let paused = store
        .pause_campaign("news", &crate::operator("alice"), "too many complaints")
        .await
        .unwrap();
    assert!(paused.paused);
    assert_eq!(paused.held, 2);
    assert!(
        !store
            .pause_campaign("news", &crate::operator("bob"), "again")
            .await
            .unwrap()
            .paused,
        "a second pause changes nothing"
    );
    let pauses = store.campaign_pauses().await.unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(
        (
            pauses[0].campaign.as_str(),
            pauses[0].paused_by.as_str(),
            pauses[0].reason.as_str()
        ),
        ("news", "alice", "too many complaints")
    );
    // New mail of the paused campaign is accepted and held at once.
    store
        .accept_message(to("m2", "news", &["d@example.net"]))
        .await
        .unwrap();
    assert_eq!(
        statuses(&store).await,
        pairs(&[
            ("a@example.net", "held"),
            ("b@example.net", "held"),
            ("c@example.net", "queued"),
            ("d@example.net", "held"),
        ])
    );
    let depth = store.queue_depth().await.unwrap();
    assert!(depth.contains(&("held".to_owned(), 3)), "{depth:?}");
    // Only the other campaign's copy is leased.
    let t = now() + 1000;
    let claimed = store.claim_due("n1", t, t + 60_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].campaign, "promo");

    let resumed = store
        .resume_campaign("news", &crate::operator("alice"))
        .await
        .unwrap();
    assert_eq!(resumed.copies, 3);
    assert_eq!(resumed.pause.map(|p| p.paused_by), Some("alice".to_owned()));
    assert!(store.campaign_pauses().await.unwrap().is_empty());
    let claimed = store.claim_due("n1", t, t + 60_000, 10).await.unwrap();
    let mut got: Vec<&str> = claimed.iter().map(|c| c.recipient.as_str()).collect();
    got.sort();
    assert_eq!(got, ["a@example.net", "b@example.net", "d@example.net"]);
    // Resuming again finds nothing to do.
    let again = store
        .resume_campaign("news", &crate::operator("alice"))
        .await
        .unwrap();
    assert_eq!((again.pause, again.copies), (None, 0));
    store.close().await;
}
both_stores!(a_pause_holds_the_campaigns_copies_until_resume);

async fn drop_held_ends_the_copies_and_their_bodies_go_with_the_purge() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .accept_message(to("m1", "news", &["a@example.net"]))
        .await
        .unwrap();
    store
        .pause_campaign("news", &crate::operator("alice"), "why")
        .await
        .unwrap();
    let cutoffs = PurgeCutoffs {
        message_bodies: now() + 86_400_000,
        decisions: 0,
    };
    assert_eq!(
        store.purge_count(cutoffs).await.unwrap().message_bodies,
        0,
        "a held copy keeps its body"
    );
    let dropped = store
        .drop_held("news", &crate::operator("alice"))
        .await
        .unwrap();
    assert_eq!(dropped.copies, 1);
    assert_eq!(
        column(dir.path(), "SELECT status FROM deliveries").await,
        vec![Some("dropped".to_owned())]
    );
    assert!(
        statuses(&store).await.is_empty(),
        "a dropped copy has ended"
    );
    assert_eq!(
        store.campaign_pauses().await.unwrap().len(),
        1,
        "still paused"
    );
    assert_eq!(store.purge_count(cutoffs).await.unwrap().message_bodies, 1);
    store.close().await;
}
both_stores!(drop_held_ends_the_copies_and_their_bodies_go_with_the_purge);

fn sent(id: i64, campaign: Option<&str>, status: DeliveryStatus) -> AttemptRecord {
    AttemptRecord {
        delivery_id: id,
        status,
        attempted: true,
        reply: "250 ok".into(),
        next_attempt_at: 0,
        campaign: campaign.map(str::to_owned),
        late_decision: None,
        dsn: None,
        bounce: None,
    }
}

async fn sent_copies_count_as_delivered_per_campaign_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .accept_message(to(
            "m1",
            "news",
            &["a@example.net", "b@example.net", "c@example.net"],
        ))
        .await
        .unwrap();
    store
        .accept_message(to("p1", "promo", &["d@example.net", "e@example.net"]))
        .await
        .unwrap();
    let t = now() + 1000;
    let mut claimed = store.claim_due("n1", t, t + 60_000, 10).await.unwrap();
    claimed.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    let id = |n: usize| claimed[n].id;
    store
        .record_attempts(vec![
            sent(id(0), Some("news"), DeliveryStatus::Sent),
            sent(id(1), Some("news"), DeliveryStatus::Sent),
            // Not sent: not counted.
            sent(id(2), Some("news"), DeliveryStatus::Deferred),
            sent(id(3), Some("promo"), DeliveryStatus::Sent),
        ])
        .await
        .unwrap();
    // A second batch adds to the same day; a record on a row no longer
    // leased (a@ again) is not counted twice.
    store
        .record_attempts(vec![
            sent(id(4), Some("promo"), DeliveryStatus::Sent),
            sent(id(0), Some("news"), DeliveryStatus::Sent),
        ])
        .await
        .unwrap();
    let today = day_of(now());
    let days = store.campaign_days(None, today - 1).await.unwrap();
    let got: Vec<(&str, i64, i64)> = days
        .iter()
        .map(|d| (d.campaign.as_str(), d.day, d.delivered))
        .collect();
    assert_eq!(got, [("news", today, 2), ("promo", today, 2)]);
    let news = store.campaign_days(Some("news"), today).await.unwrap();
    assert_eq!(news.len(), 1);
    assert_eq!(
        (news[0].hard_bounces, news[0].complaints, news[0].warned_at),
        (0, 0, None)
    );
    assert!(
        store
            .campaign_days(None, today + 1)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}
both_stores!(sent_copies_count_as_delivered_per_campaign_and_day);

/// Inserts a suppression row for `subject` as the feedback rules do.
pub(crate) async fn suppress(
    dir: &Path,
    subject: &str,
    kind: &str,
    since: i64,
    until: Option<i64>,
) {
    let mut c = common::backend::connect(dir).await;
    sqlx::query(
        "INSERT INTO suppressions (subject_id, kind, status_code, diagnostic, source, campaign, since, until_at) \
         VALUES ($1, $2, '5.1.1', '550 5.1.1 <***@example.net> unknown', 'dsn', 'news', $3, $4)",
    )
    .bind(subject)
    .bind(kind)
    .bind(since)
    .bind(until)
    .execute(&mut c)
    .await
    .expect("insert a suppression");
}

async fn suppressions_are_listed_and_removed_with_who_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true).await;
    for (n, address) in [(1, "a@example.net"), (2, "b@example.net")] {
        store
            .append_consent_event(event(address, n, "news", Action::Grant, 100))
            .await
            .unwrap();
    }
    let t = now();
    suppress(dir.path(), "subject-1", "soft", 1000, Some(2000)).await; // expired
    suppress(dir.path(), "subject-1", "hard", 3000, None).await;
    suppress(dir.path(), "subject-2", "soft", 4000, Some(t + 86_400_000)).await;

    let of_a = store.suppressions_of("a@example.net").await.unwrap();
    let got: Vec<(&str, bool)> = of_a.iter().map(|s| (s.kind.as_str(), s.active)).collect();
    assert_eq!(got, [("soft", false), ("hard", true)]);
    assert_eq!(of_a[1].status_code.as_deref(), Some("5.1.1"));
    assert_eq!(of_a[1].reason.as_str(), "bounced");
    let active = store.active_suppressions(10, None).await.unwrap();
    let got: Vec<(Option<&str>, &str)> = active
        .iter()
        .map(|a| (a.address.as_deref(), a.suppression.kind.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some("b@example.net"), "soft"),
            (Some("a@example.net"), "hard")
        ],
        "newest first, the expired one left out"
    );
    let page = store.active_suppressions(1, None).await.unwrap();
    let next = store
        .active_suppressions(10, Some(page[0].suppression.id))
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].address.as_deref(), Some("a@example.net"));
    // The export holds them too.
    let record = store
        .subject_record("a@example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.suppressions.len(), 2);

    let removed = store
        .remove_suppressions("a@example.net", &crate::operator("alice"), "mailbox fixed")
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].kind, "hard");
    assert!(!removed[0].active);
    let of_a = store.suppressions_of("a@example.net").await.unwrap();
    let hard = &of_a[1];
    assert_eq!(
        (hard.removed_by.as_deref(), hard.removed_reason.as_deref()),
        (Some("alice"), Some("mailbox fixed"))
    );
    assert!(hard.removed_at.is_some_and(|at| at >= t));
    assert!(
        store
            .remove_suppressions("a@example.net", &crate::operator("alice"), "again")
            .await
            .unwrap()
            .is_empty(),
        "nothing in force is left to remove"
    );
    assert!(
        store
            .remove_suppressions("nobody@example.net", &crate::operator("alice"), "x")
            .await
            .unwrap()
            .is_empty()
    );
    let active = store.active_suppressions(10, None).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].address.as_deref(), Some("b@example.net"));

    // The removal queued one notice, about the person (address read at send time).
    let t = now() + 1000;
    let notices = store.claim_notices("n1", t, t + 60_000, 10).await.unwrap();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind, NoticeKind::SuppressionRemoved);
    assert_eq!(notices[0].email.as_deref(), Some("a@example.net"));
    assert_eq!(notices[0].payload["subject_id"], "subject-1");
    assert_eq!(notices[0].payload["removed_by"], "alice");
    store.close().await;
}
both_stores!(suppressions_are_listed_and_removed_with_who_and_why);

async fn notices_are_leased_retried_and_removed_once_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true).await;
    store
        .pause_campaign("news", &crate::operator("alice"), "why")
        .await
        .unwrap();
    store
        .pause_campaign("promo", &crate::operator("alice"), "why")
        .await
        .unwrap();
    let rows = store.webhook_notices(10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].kind, "campaign-paused");
    let t = now() + 1000;
    let first = store.claim_notices("n1", t, t + 60_000, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].payload["campaign"], "news");
    assert_eq!(first[0].email, None);
    let second = store.claim_notices("n2", t, t + 60_000, 10).await.unwrap();
    assert_eq!(second.len(), 1, "a leased notice is not leased again");
    assert_eq!(second[0].payload["campaign"], "promo");
    store
        .record_notice(
            "n1",
            WebhookOutcome::Delivered {
                event_id: first[0].id,
            },
        )
        .await
        .unwrap();
    // Only the lease holder records.
    store
        .record_notice(
            "n1",
            WebhookOutcome::Delivered {
                event_id: second[0].id,
            },
        )
        .await
        .unwrap();
    store
        .record_notice(
            "n2",
            WebhookOutcome::Failed {
                event_id: second[0].id,
                error: "HTTP 500".into(),
                next_attempt_at: t + 5000,
            },
        )
        .await
        .unwrap();
    let rows = store.webhook_notices(10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].status.as_str(),
            rows[0].attempts,
            rows[0].last_error.as_deref()
        ),
        ("pending", 1, Some("HTTP 500"))
    );
    assert!(
        store
            .claim_notices("n1", t, t + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = store
        .claim_notices("n1", t + 5000, t + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].attempts, 1);
    // A lease that expired is taken by another node; shutdown hands back.
    let taken = store
        .claim_notices("n3", t + 70_000, t + 130_000, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(store.release_webhooks("n3").await.unwrap(), 1);
    store.close().await;
}
both_stores!(notices_are_leased_retried_and_removed_once_accepted);

async fn without_webhook_no_notice_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .pause_campaign("news", &crate::operator("alice"), "why")
        .await
        .unwrap();
    assert!(store.webhook_notices(10).await.unwrap().is_empty());
    store.close().await;
}
both_stores!(without_webhook_no_notice_is_queued);
