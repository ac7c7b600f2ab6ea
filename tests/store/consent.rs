//! Consent events: the derived state, `*`, mail queued with an event,
//! keyed (`Idempotency-Key`) events, imports, and the grants read by
//! `consent expiring`.

use std::collections::HashSet;
use std::sync::Arc;

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{
    ImportCounts, ImportEvent, KeyedConsent, KeyedOutcome, MessageKind, StoreError,
};
use serde_json::json;

use super::*;
use crate::both_stores;

fn states(rows: &[consent_relay::store::StateRow]) -> Vec<String> {
    rows.iter()
        .map(|s| format!("{} {} {} {}", s.campaign, s.status, s.since, s.event_id))
        .collect()
}

async fn events_derive_state_per_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let before = now();
    let e1 = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&e1).unwrap(),
        json!({"id": e1.id, "subject_id": "subject-1", "campaign": "news", "action": "grant",
               "at": 100, "source": "api", "ip": "198.51.100.7", "user_agent": "agent/1",
               "evidence": "form #3", "recorded_at": e1.recorded_at})
    );
    assert!(e1.recorded_at >= before);
    // An older event is recorded but does not change the state.
    let e2 = store
        .append_consent_event(event("a@example.net", 2, "news", Action::Withdraw, 50))
        .await
        .unwrap();
    assert_eq!(e2.subject_id, "subject-1", "the address keeps its subject");
    let e3 = store
        .append_consent_event(event("a@example.net", 1, "*", Action::Withdraw, 200))
        .await
        .unwrap();
    let e4 = store
        .append_consent_event(event("a@example.net", 1, "other", Action::Request, 300))
        .await
        .unwrap();
    let got = states(&store.subject_states("subject-1").await.unwrap());
    assert_eq!(
        got,
        vec![
            format!("* withdrawn 200 {}", e3.id),
            format!("news granted 100 {}", e1.id),
            format!("other pending 300 {}", e4.id),
        ]
    );
    // A request does not take back a grant.
    let e5 = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Request, 400))
        .await
        .unwrap();
    assert!(e5.id > e4.id);
    let shown = store
        .subject_consent("a@example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.subject_id, "subject-1");
    assert_eq!(shown.address, "a@example.net");
    assert!(shown.created_at >= before);
    assert_eq!(
        states(&shown.states),
        vec![
            format!("* withdrawn 200 {}", e3.id),
            format!("news granted 100 {}", e1.id),
            format!("other pending 300 {}", e4.id),
        ]
    );
    let actions: Vec<String> = shown
        .events
        .iter()
        .map(|e| format!("{} {} {}", e.id, e.campaign, e.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            format!("{} news grant", e1.id),
            format!("{} news withdraw", e2.id),
            format!("{} * withdraw", e3.id),
            format!("{} other request", e4.id),
            format!("{} news request", e5.id),
        ]
    );
    assert!(
        store
            .subject_consent("b@example.net")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.subject_states("subject-9").await.unwrap().is_empty());
    store.close().await;
}
both_stores!(events_derive_state_per_campaign);

async fn erase_action_drops_the_campaign_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    let e = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Erase, 200))
        .await
        .unwrap();
    assert_eq!(e.action.to_string(), "erase");
    assert!(store.subject_states("subject-1").await.unwrap().is_empty());
    store.close().await;
}
both_stores!(erase_action_drops_the_campaign_state);

fn notice_to(event: &consent_relay::store::ConsentEvent) -> NewMessage {
    let mut m = message(
        &format!("confirm-{}", event.id),
        "",
        event.at,
        vec![rcpt("a@example.net", Outcome::Deliver, Reason::Mandatory)],
    );
    m.kind = MessageKind::Notice;
    m
}

async fn a_follow_up_mail_is_queued_with_its_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let e = store
        .append_consent_event_then(
            event("a@example.net", 1, "news", Action::Request, 100),
            Some(Arc::new(|e| Ok(notice_to(e)))),
        )
        .await
        .unwrap();
    let queue = store.queue(10).await.unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].message_id, format!("confirm-{}", e.id));
    assert_eq!(queue[0].kind.to_string(), "notice");
    store.close().await;
}
both_stores!(a_follow_up_mail_is_queued_with_its_event);

async fn a_follow_up_that_fails_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let failed = store
        .append_consent_event_then(
            event("a@example.net", 1, "news", Action::Request, 100),
            Some(Arc::new(|_| Err("no template".to_owned()))),
        )
        .await;
    assert!(
        matches!(failed, Err(StoreError::FollowUp(ref m)) if m == "no template"),
        "{failed:?}"
    );
    let panicked = store
        .append_consent_event_then(
            event("a@example.net", 1, "news", Action::Request, 100),
            Some(Arc::new(|_| panic!("boom"))),
        )
        .await;
    assert!(
        matches!(panicked, Err(StoreError::FollowUp(_))),
        "{panicked:?}"
    );
    assert!(
        store
            .subject_consent("a@example.net")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.queue(10).await.unwrap().is_empty());
    for table in ["subjects", "consent_events", "consent_state", "messages"] {
        assert_eq!(
            count(dir.path(), &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    // The store still writes.
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    store.close().await;
}
both_stores!(a_follow_up_that_fails_leaves_nothing);

fn keyed(key: &str, hash: &str) -> KeyedConsent {
    KeyedConsent {
        event: event("a@example.net", 1, "news", Action::Grant, 100),
        key: key.into(),
        request_hash: hash.into(),
        status: 201,
        respond: Arc::new(|e| format!("{{\"id\":{}}}", e.id)),
        follow_up: None,
    }
}

async fn a_keyed_event_is_recorded_once_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let first = store
        .append_consent_event_once(keyed("k1", "h1"))
        .await
        .unwrap();
    let KeyedOutcome::Recorded { event, body } = first else {
        panic!("{first:?}");
    };
    assert_eq!(body, format!("{{\"id\":{}}}", event.id));
    assert_eq!(event.action.to_string(), "grant");
    let replay = store
        .append_consent_event_once(keyed("k1", "h1"))
        .await
        .unwrap();
    let KeyedOutcome::Replay {
        status,
        body: again,
    } = replay
    else {
        panic!("{replay:?}");
    };
    assert_eq!((status, again), (201, body));
    let other = store
        .append_consent_event_once(keyed("k1", "h2"))
        .await
        .unwrap();
    assert!(matches!(other, KeyedOutcome::Mismatch), "{other:?}");
    // Another key is another event, with its follow-up mail.
    let mut with_mail = keyed("k2", "h1");
    with_mail.follow_up = Some(Arc::new(|e| Ok(notice_to(e))));
    let second = store.append_consent_event_once(with_mail).await.unwrap();
    assert!(matches!(second, KeyedOutcome::Recorded { .. }));
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM consent_events").await,
        2
    );
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM idempotency_keys").await,
        2
    );
    assert_eq!(store.queue(10).await.unwrap().len(), 1);
    // A failing answer leaves neither event nor key.
    let mut broken = keyed("k3", "h1");
    broken.respond = Arc::new(|_| panic!("no answer"));
    assert!(matches!(
        store.append_consent_event_once(broken).await,
        Err(StoreError::FollowUp(_))
    ));
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM consent_events").await,
        2
    );
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM idempotency_keys").await,
        2
    );
    store.close().await;
}
both_stores!(a_keyed_event_is_recorded_once_and_replayed);

fn imported(address: &str, n: u32, key: &str, at: i64) -> ImportEvent {
    let mut e = event(address, n, "news", Action::Grant, at);
    e.source = Source::Import;
    ImportEvent {
        event: e,
        key: key.into(),
    }
}

async fn imports_skip_rows_whose_key_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let counts = store
        .import_events(vec![
            imported("a@example.net", 1, "key-a", 100),
            imported("b@example.net", 2, "key-b", 100),
            imported("a@example.net", 1, "key-a", 100),
        ])
        .await
        .unwrap();
    assert_eq!(
        counts,
        ImportCounts {
            imported: 2,
            present: 1
        }
    );
    let again = store
        .import_events(vec![
            imported("a@example.net", 1, "key-a", 100),
            imported("c@example.net", 3, "key-c", 100),
        ])
        .await
        .unwrap();
    assert_eq!(
        again,
        ImportCounts {
            imported: 1,
            present: 1
        }
    );
    assert_eq!(
        store.import_events(vec![]).await.unwrap(),
        ImportCounts::default()
    );
    let present = store
        .present_import_keys(&["key-a".into(), "key-c".into(), "key-z".into()])
        .await
        .unwrap();
    assert_eq!(
        present,
        HashSet::from(["key-a".to_owned(), "key-c".to_owned()])
    );
    assert!(store.present_import_keys(&[]).await.unwrap().is_empty());
    let shown = store
        .subject_consent("b@example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown.events.len(), 1);
    assert_eq!(shown.events[0].source.to_string(), "import");
    assert_eq!(
        states(&shown.states),
        vec![format!("news granted 100 {}", shown.events[0].id)]
    );
    // Many keys at once (more than one lookup's worth).
    let keys: Vec<String> = (0..1200).map(|i| format!("many-{i}")).collect();
    assert!(store.present_import_keys(&keys).await.unwrap().is_empty());
    store.close().await;
}
both_stores!(imports_skip_rows_whose_key_is_stored);

async fn grants_before_a_cutoff_leave_out_unsubscribed_all_and_erased() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let a = store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    // Withdrawn from all after the grant: no longer counts.
    store
        .append_consent_event(event("b@example.net", 2, "news", Action::Grant, 100))
        .await
        .unwrap();
    store
        .append_consent_event(event("b@example.net", 2, "*", Action::Withdraw, 150))
        .await
        .unwrap();
    // Withdrawn from all before the grant: the grant counts.
    store
        .append_consent_event(event("c@example.net", 3, "*", Action::Withdraw, 50))
        .await
        .unwrap();
    let c = store
        .append_consent_event(event("c@example.net", 3, "news", Action::Grant, 90))
        .await
        .unwrap();
    // Too recent, another campaign, erased.
    store
        .append_consent_event(event("d@example.net", 4, "news", Action::Grant, 500))
        .await
        .unwrap();
    store
        .append_consent_event(event("e@example.net", 5, "other", Action::Grant, 100))
        .await
        .unwrap();
    store
        .append_consent_event(event("f@example.net", 6, "news", Action::Grant, 100))
        .await
        .unwrap();
    store
        .erase(consent_relay::store::Erasure {
            address: "f@example.net".into(),
            new_subject: subject(60),
            source: Source::Admin,
            at: 200,
            actor: crate::operator("dpo"),
            notice: None,
        })
        .await
        .unwrap();
    let grants = store.grants_since_before("news", 100).await.unwrap();
    assert_eq!(
        serde_json::to_value(&grants).unwrap(),
        json!([
            {"subject_id": "subject-3", "address": "c@example.net", "since": 90, "event_id": c.id},
            {"subject_id": "subject-1", "address": "a@example.net", "since": 100, "event_id": a.id},
        ])
    );
    assert!(
        store
            .grants_since_before("news", 89)
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await;
}
both_stores!(grants_before_a_cutoff_leave_out_unsubscribed_all_and_erased);
