//! The audit trail: every change an operator makes writes its row in the
//! change's transaction (consent events, erasure, suppression removal,
//! campaign pause, resume and drop-held, the queue actions), a change
//! without an operator or that changes nothing writes none, rows read
//! newest first by actor, action and subject, and no row names a person
//! by address. The queue actions themselves: retry, release, drop, and
//! their refusals.

use std::sync::Arc;

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{
    Actor, AttemptRecord, AuditAction, AuditEntry, AuditFilter, AuditRow, DeliveryStatus, Erasure,
    KeyedConsent, KeyedOutcome, QueueAction, QueueError, Via,
};

use super::*;
use crate::both_stores;

/// Every audit row, newest first.
async fn trail(store: &Store) -> Vec<AuditRow> {
    store
        .audit(&AuditFilter {
            limit: 1000,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

/// (actor, via, action, subject, target) of a row.
type Line = (
    String,
    &'static str,
    &'static str,
    Option<String>,
    Option<String>,
);

fn summary(rows: &[AuditRow]) -> Vec<Line> {
    rows.iter()
        .map(|r| {
            (
                r.actor.clone(),
                r.via.as_str(),
                r.action.as_str(),
                r.subject_id.clone(),
                r.target.clone(),
            )
        })
        .collect()
}

fn row(
    actor: &str,
    via: &'static str,
    action: &'static str,
    subject: Option<&str>,
    target: Option<&str>,
) -> Line {
    (
        actor.to_owned(),
        via,
        action,
        subject.map(str::to_owned),
        target.map(str::to_owned),
    )
}

async fn consent_events_by_an_operator_are_audited_and_read_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let alice = Actor::new("alice", Via::Console);
    let granted = store
        .append_consent_event(NewConsentEvent {
            actor: Some(alice.clone()),
            ..event("a@example.net", 1, "news", Action::Grant, 100)
        })
        .await
        .unwrap();
    // The person's own change (a page, a mail) has no operator: no row.
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Withdraw, 200))
        .await
        .unwrap();
    store
        .append_consent_event(NewConsentEvent {
            actor: Some(Actor::new("bob", Via::Api)),
            ..event("b@example.net", 2, "*", Action::Withdraw, 300)
        })
        .await
        .unwrap();
    // A keyed request: audited once, its replay writes nothing.
    let keyed = || KeyedConsent {
        event: NewConsentEvent {
            actor: Some(Actor::new("bob", Via::Api)),
            ..event("c@example.net", 3, "news", Action::Grant, 400)
        },
        key: "k1".into(),
        request_hash: "h1".into(),
        status: 201,
        respond: Arc::new(|e| format!("{{\"id\":{}}}", e.id)),
        follow_up: None,
    };
    let first = store.append_consent_event_once(keyed()).await.unwrap();
    assert!(matches!(first, KeyedOutcome::Recorded { .. }));
    let again = store.append_consent_event_once(keyed()).await.unwrap();
    assert!(matches!(again, KeyedOutcome::Replay { .. }));
    let sign_in = store
        .record_audit(AuditEntry {
            actor: alice.clone(),
            action: AuditAction::SignIn,
            subject_id: None,
            target: None,
            detail: None,
        })
        .await
        .unwrap();

    let rows = trail(&store).await;
    assert_eq!(
        summary(&rows),
        [
            row("alice", "console", "sign-in", None, None),
            row(
                "bob",
                "api",
                "consent-grant",
                Some("subject-3"),
                Some("news")
            ),
            row(
                "bob",
                "api",
                "consent-withdraw",
                Some("subject-2"),
                Some("*")
            ),
            row(
                "alice",
                "console",
                "consent-grant",
                Some("subject-1"),
                Some("news")
            ),
        ]
    );
    assert_eq!(rows[0].id, sign_in);
    assert_eq!(
        rows[3].detail.as_deref(),
        Some(format!("event {}, source api", granted.id).as_str())
    );
    assert!(
        rows.windows(2)
            .all(|w| w[0].id > w[1].id && w[0].at >= w[1].at)
    );

    let only = |f: AuditFilter| {
        let store = store.clone();
        async move {
            let rows = store.audit(&AuditFilter { limit: 100, ..f }).await.unwrap();
            rows.iter().map(|r| r.action.as_str()).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only(AuditFilter {
            actor: Some("bob".into()),
            ..AuditFilter::default()
        })
        .await,
        ["consent-grant", "consent-withdraw"]
    );
    assert_eq!(
        only(AuditFilter {
            action: Some(AuditAction::ConsentGrant),
            ..AuditFilter::default()
        })
        .await,
        ["consent-grant", "consent-grant"]
    );
    assert_eq!(
        only(AuditFilter {
            subject_id: Some("subject-1".into()),
            ..AuditFilter::default()
        })
        .await,
        ["consent-grant"]
    );
    // Paging: rows before the last id of the page before, `limit` of them.
    let page = store
        .audit(&AuditFilter {
            limit: 2,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    let next = store
        .audit(&AuditFilter {
            limit: 2,
            before_id: Some(page[1].id),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|r| r.id).collect::<Vec<_>>(),
        rows[2..].iter().map(|r| r.id).collect::<Vec<_>>()
    );
    store.close().await;
}
both_stores!(consent_events_by_an_operator_are_audited_and_read_newest_first);

async fn erasure_and_removal_are_audited_and_the_trail_never_names_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let dpo = Actor::new("dpo", Via::Console);
    store
        .append_consent_event(NewConsentEvent {
            actor: Some(dpo.clone()),
            ..event("Ann@example.net", 1, "news", Action::Grant, 100)
        })
        .await
        .unwrap();
    crate::guard::suppress(dir.path(), "subject-1", "hard", 150, None).await;
    let removed = store
        .remove_suppressions(
            "Ann@example.net",
            &dpo,
            "ann@EXAMPLE.net wrote in: <Ann@example.net> works again",
        )
        .await
        .unwrap();
    assert_eq!(removed.len(), 1);
    // Nothing in force: nothing removed, nothing recorded.
    assert!(
        store
            .remove_suppressions("Ann@example.net", &dpo, "again")
            .await
            .unwrap()
            .is_empty()
    );
    let report = store
        .erase(Erasure {
            actor: dpo.clone(),
            ..crate::erasure("Ann@example.net", 9, None)
        })
        .await
        .unwrap()
        .unwrap();
    let rows = trail(&store).await;
    let removal = removed[0].id.to_string();
    let erase_event = report.event_id.to_string();
    assert_eq!(
        summary(&rows),
        [
            row(
                "dpo",
                "console",
                "subject-erase",
                Some("subject-1"),
                Some(&erase_event)
            ),
            row(
                "dpo",
                "console",
                "suppression-remove",
                Some("subject-1"),
                Some(&removal)
            ),
            row(
                "dpo",
                "console",
                "consent-grant",
                Some("subject-1"),
                Some("news")
            ),
        ]
    );
    assert_eq!(
        rows[1].detail.as_deref(),
        Some("<recipient> wrote in: <recipient> works again"),
        "the typed reason, the address masked"
    );
    assert!(
        rows[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("events kept")),
        "{:?}",
        rows[0].detail
    );
    let texts = column(
        dir.path(),
        "SELECT lower(actor || ' ' || via || ' ' || action || ' ' || coalesce(subject_id, '') || ' ' \
         || coalesce(target, '') || ' ' || coalesce(detail, '')) FROM audit_events",
    )
    .await;
    assert_eq!(texts.len(), 3);
    for t in texts {
        let t = t.unwrap();
        assert!(!t.contains("ann@example.net"), "{t}");
    }
    store.close().await;
}
both_stores!(erasure_and_removal_are_audited_and_the_trail_never_names_the_person);

async fn campaign_actions_are_audited_when_they_change_something() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let alice = crate::operator("alice");
    let recipients = vec![rcpt("a@example.net", Outcome::Deliver, Reason::Mandatory)];
    store
        .accept_message(message("m1", "news", 1000, recipients))
        .await
        .unwrap();
    store
        .pause_campaign("news", &alice, "complaints")
        .await
        .unwrap();
    store.pause_campaign("news", &alice, "again").await.unwrap();
    store.drop_held("news", &alice).await.unwrap();
    store.drop_held("news", &alice).await.unwrap();
    store.resume_campaign("news", &alice).await.unwrap();
    store.resume_campaign("news", &alice).await.unwrap();
    let rows = trail(&store).await;
    assert_eq!(
        summary(&rows),
        [
            row("alice", "cli", "campaign-resume", None, Some("news")),
            row("alice", "cli", "campaign-drop-held", None, Some("news")),
            row("alice", "cli", "campaign-pause", None, Some("news")),
        ],
        "a pause of a paused campaign, a drop with nothing held and a resume of nothing wrote none"
    );
    let details: Vec<&str> = rows.iter().filter_map(|r| r.detail.as_deref()).collect();
    assert_eq!(
        details,
        [
            "0 held copies queued",
            "1 held copies dropped",
            "complaints (1 copies held)"
        ]
    );
    store.close().await;
}
both_stores!(campaign_actions_are_audited_when_they_change_something);

fn outcome(id: i64, status: DeliveryStatus, next: i64) -> AttemptRecord {
    AttemptRecord {
        delivery_id: id,
        status,
        attempted: status != DeliveryStatus::Held,
        reply: "451 4.3.0 later".into(),
        next_attempt_at: next,
        campaign: None,
        late_decision: None,
        dsn: None,
        bounce: None,
    }
}

/// Copy id by recipient.
async fn copies(store: &Store) -> std::collections::HashMap<String, (i64, DeliveryStatus, i64)> {
    store
        .queue(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.recipient, (r.id, r.status, r.next_attempt_at)))
        .collect()
}

async fn queue_actions_retry_release_and_drop_one_copy_each_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let admin = Actor::new("admin", Via::Console);
    let mut a = rcpt("a@example.net", Outcome::Deliver, Reason::Mandatory);
    a.new_subject = Some(subject(1));
    let recipients = vec![
        a,
        rcpt("b@example.net", Outcome::Deliver, Reason::Mandatory),
        rcpt("c@example.net", Outcome::Deliver, Reason::Mandatory),
        rcpt("d@example.net", Outcome::Deliver, Reason::Mandatory),
    ];
    store
        .accept_message(message("m1", "news", 1000, recipients))
        .await
        .unwrap();
    let claimed = store
        .claim_due("n1", now(), now() + 60_000, 10)
        .await
        .unwrap();
    let id = |who: &str| claimed.iter().find(|c| c.recipient == who).unwrap().id;
    let later = now() + 3_600_000;
    store
        .record_attempts(vec![
            outcome(id("a@example.net"), DeliveryStatus::Deferred, later),
            outcome(id("b@example.net"), DeliveryStatus::Sent, 0),
        ])
        .await
        .unwrap();
    // c and d are being sent when the campaign is paused; d is held by
    // the worker while paused, the resume queues it; c is held by the
    // worker after the resume: held, its campaign not paused.
    store.pause_campaign("news", &admin, "why").await.unwrap();
    let refused = store
        .queue_action(QueueAction::Release, id("c@example.net"), &admin)
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        format!(
            "delivery {} is sending: release applies to held copies only",
            id("c@example.net")
        )
    );
    store
        .record_attempts(vec![outcome(id("d@example.net"), DeliveryStatus::Held, 0)])
        .await
        .unwrap();
    let paused = store
        .queue_action(QueueAction::Release, id("d@example.net"), &admin)
        .await
        .unwrap_err();
    assert!(matches!(&paused, QueueError::CampaignPaused { campaign, .. } if campaign == "news"));
    assert_eq!(
        paused.to_string(),
        format!(
            "delivery {} is held because campaign news is paused: resume the campaign (or drop the copy)",
            id("d@example.net")
        )
    );
    store.resume_campaign("news", &admin).await.unwrap();
    store
        .record_attempts(vec![outcome(id("c@example.net"), DeliveryStatus::Held, 0)])
        .await
        .unwrap();
    let before = trail(&store).await.len();

    let t = now();
    let retried = store
        .queue_action(QueueAction::Retry, id("a@example.net"), &admin)
        .await
        .unwrap();
    assert_eq!(
        (retried.from, retried.to),
        (DeliveryStatus::Deferred, DeliveryStatus::Deferred)
    );
    let (_, status, next) = copies(&store).await["a@example.net"];
    assert_eq!(status, DeliveryStatus::Deferred);
    assert!((t..t + 60_000).contains(&next), "due now, not in an hour");
    let released = store
        .queue_action(QueueAction::Release, id("c@example.net"), &admin)
        .await
        .unwrap();
    assert_eq!(
        (released.from, released.to),
        (DeliveryStatus::Held, DeliveryStatus::Queued)
    );
    let dropped = store
        .queue_action(QueueAction::Drop, id("d@example.net"), &admin)
        .await
        .unwrap();
    assert_eq!(dropped.to, DeliveryStatus::Dropped);
    assert_eq!(
        column(
            dir.path(),
            &format!(
                "SELECT last_reply FROM deliveries WHERE id = {}",
                id("d@example.net")
            )
        )
        .await,
        vec![Some("dropped by an operator (queue drop)".to_owned())]
    );
    // Only due copies are leased: a and c now, the dropped d never.
    let due = store
        .claim_due("n1", now() + 1000, now() + 60_000, 10)
        .await
        .unwrap();
    let mut got: Vec<&str> = due.iter().map(|c| c.recipient.as_str()).collect();
    got.sort();
    assert_eq!(got, ["a@example.net", "c@example.net"]);

    // Wrong states and unknown copies change nothing and record nothing.
    let sent = store
        .queue_action(QueueAction::Drop, id("b@example.net"), &admin)
        .await
        .unwrap_err();
    assert_eq!(
        sent.to_string(),
        format!(
            "delivery {} is sent: drop applies to queued, deferred or held copies only",
            id("b@example.net")
        )
    );
    let twice = store
        .queue_action(QueueAction::Drop, id("d@example.net"), &admin)
        .await
        .unwrap_err();
    assert!(matches!(
        twice,
        QueueError::WrongState {
            status: DeliveryStatus::Dropped,
            ..
        }
    ));
    let gone = store
        .queue_action(QueueAction::Retry, 999_999, &admin)
        .await
        .unwrap_err();
    assert_eq!(gone.to_string(), "delivery 999999 does not exist");

    let rows = trail(&store).await;
    assert_eq!(rows.len(), before + 3);
    let (a_id, c_id, d_id) = (
        id("a@example.net").to_string(),
        id("c@example.net").to_string(),
        id("d@example.net").to_string(),
    );
    assert_eq!(
        summary(&rows[..3]),
        [
            row("admin", "console", "delivery-drop", None, Some(&d_id)),
            row("admin", "console", "delivery-release", None, Some(&c_id)),
            row(
                "admin",
                "console",
                "delivery-retry",
                Some("subject-1"),
                Some(&a_id)
            ),
        ]
    );
    assert_eq!(rows[0].id, dropped.audit_id);
    assert_eq!(
        rows[0].detail.as_deref(),
        Some("queue id m1, campaign news, queued to dropped")
    );
    store.close().await;
}
both_stores!(queue_actions_retry_release_and_drop_one_copy_each_with_its_row);

async fn a_dropped_erasure_notice_is_scrubbed_as_a_sent_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    crate::erase::erased_with_notice(&store).await;
    let queue = store.queue(10).await.unwrap();
    assert_eq!(queue[0].recipient, "a@example.net");
    store
        .queue_action(QueueAction::Drop, queue[0].id, &crate::operator("dpo"))
        .await
        .unwrap();
    crate::erase::assert_notice_scrubbed(dir.path()).await;
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM messages WHERE body IS NOT NULL"
        )
        .await,
        0
    );
    store.close().await;
}
both_stores!(a_dropped_erasure_notice_is_scrubbed_as_a_sent_one);
