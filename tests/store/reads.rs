//! The read queries: everything about one address, the decision log and its
//! filter.

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::DecisionFilter;
use serde_json::json;

use super::*;
use crate::both_stores;

async fn subject_record_holds_everything_about_one_address() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let before = now();
    let grant = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    store
        .accept_message(message(
            "m1",
            "news",
            1000,
            vec![
                rcpt("a@example.net", Outcome::Deliver, Reason::Granted),
                rcpt("b@example.net", Outcome::Suppress, Reason::NoConsent),
            ],
        ))
        .await
        .unwrap();
    let record = store
        .subject_record("a@example.net")
        .await
        .unwrap()
        .unwrap();
    let subject = record.subject.as_ref().unwrap();
    assert!(subject.created_at >= before);
    let delivery = &record.deliveries[0];
    assert!(delivery.created_at >= before);
    let decision_id = record.decisions[0].id;
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        json!({
            "subject": {"id": "subject-1", "address": "a@example.net", "created_at": subject.created_at},
            "states": [{"campaign": "news", "status": "granted", "since": 100, "event_id": grant.id}],
            "events": [{"id": grant.id, "subject_id": "subject-1", "campaign": "news", "action": "grant",
                        "at": 100, "source": "api", "ip": "198.51.100.7", "user_agent": "agent/1",
                        "evidence": "form #3", "recorded_at": grant.recorded_at}],
            "decisions": [{"id": decision_id, "at": 1000, "message_id": "m1", "recipient": "a@example.net",
                           "campaign": "news", "outcome": "deliver", "reason": "granted", "event_id": null,
                           "stage": "accept", "kind": "relay", "header_message_id": "<m@example.com>"}],
            "deliveries": [{"id": delivery.id, "message_id": "m1", "campaign": "news", "sent_to": "a@example.net", "status": "queued",
                            "attempts": 0, "last_reply": null, "created_at": delivery.created_at,
                            "updated_at": delivery.created_at, "kind": "relay",
                            "header_message_id": "<m@example.com>", "next_attempt_at": 1000,
                            "attempt_log": []}],
            // The body is held; b@ was a recipient too (access withholds it).
            "messages": [{"id": "m1", "kind": "relay", "campaign": "news", "received_at": 1000,
                          "body": b"Subject: m1\r\n\r\nHello\r\n".to_vec(), "other_recipients": 1}],
            "bounces": [],
            "suppressions": [],
        })
    );
    // Known only by a decision: no subject, no state.
    let b = store
        .subject_record("b@example.net")
        .await
        .unwrap()
        .unwrap();
    assert!(b.subject.is_none() && b.states.is_empty() && b.events.is_empty());
    assert_eq!(b.decisions.len(), 1);
    assert!(b.deliveries.is_empty());
    assert!(
        store
            .subject_record("c@example.net")
            .await
            .unwrap()
            .is_none()
    );
    store.close().await;
}
both_stores!(subject_record_holds_everything_about_one_address);

async fn decisions_filter_by_recipient_campaign_time_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    for (id, campaign, at) in [
        ("m1", "news", 1000),
        ("m2", "other", 2000),
        ("m3", "news", 3000),
    ] {
        store
            .accept_message(message(
                id,
                campaign,
                at,
                vec![
                    rcpt("a@example.net", Outcome::Deliver, Reason::Granted),
                    rcpt("b@example.net", Outcome::Suppress, Reason::Withdrawn),
                ],
            ))
            .await
            .unwrap();
    }
    let ids = |f: DecisionFilter| {
        let store = store.clone();
        async move {
            store
                .decisions(&f)
                .await
                .unwrap()
                .iter()
                .map(|d| format!("{} {}", d.message_id, d.recipient))
                .collect::<Vec<_>>()
        }
    };
    let all = DecisionFilter {
        limit: 100,
        ..DecisionFilter::default()
    };
    assert_eq!(ids(all.clone()).await.len(), 6);
    assert_eq!(
        ids(DecisionFilter {
            recipient: Some("b@example.net".into()),
            ..all.clone()
        })
        .await,
        vec!["m1 b@example.net", "m2 b@example.net", "m3 b@example.net"]
    );
    assert_eq!(
        ids(DecisionFilter {
            campaign: Some("other".into()),
            ..all.clone()
        })
        .await,
        vec!["m2 a@example.net", "m2 b@example.net"]
    );
    assert_eq!(
        ids(DecisionFilter {
            since: Some(2000),
            campaign: Some("news".into()),
            ..all.clone()
        })
        .await,
        vec!["m3 a@example.net", "m3 b@example.net"]
    );
    let rows = store.decisions(&all).await.unwrap();
    assert_eq!(
        ids(DecisionFilter {
            after_id: Some(rows[3].id),
            ..all.clone()
        })
        .await,
        vec!["m3 a@example.net", "m3 b@example.net"]
    );
    assert_eq!(
        ids(DecisionFilter {
            limit: 1,
            recipient: Some("a@example.net".into()),
            after_id: Some(rows[0].id),
            ..all.clone()
        })
        .await,
        vec!["m2 a@example.net"]
    );
    let reasons: Vec<String> = rows
        .iter()
        .map(|d| format!("{}/{}", d.outcome, d.reason))
        .collect();
    assert_eq!(
        reasons[..2],
        [
            "deliver/granted".to_owned(),
            "suppress/withdrawn".to_owned()
        ]
    );
    store.close().await;
}
both_stores!(decisions_filter_by_recipient_campaign_time_and_page);
