//! `Store::person`, the console's bounded read of one person: the newest
//! rows first with the totals, who recorded each event, the message kind
//! of each decision, and an erased person found by the keyed hash.

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{PersonQuery, Via};

use super::*;
use crate::both_stores;

fn query(address: &str, hashes: &[&str], limit: i64) -> PersonQuery {
    PersonQuery {
        address: address.into(),
        hashes: hashes.iter().map(|h| h.to_string()).collect(),
        limit,
    }
}

async fn the_newest_rows_come_first_and_the_totals_say_how_many_more() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let a = "a@example.net";
    store
        .append_consent_event(event(a, 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    let by_dora = store
        .append_consent_event(NewConsentEvent {
            actor: Some(operator("dora")),
            source: Source::Admin,
            ..event(a, 1, "news", Action::Withdraw, 200)
        })
        .await
        .unwrap();
    for i in 0..5 {
        store
            .accept_message(message(
                &format!("m{i}"),
                "news",
                1000 + i,
                vec![rcpt(a, Outcome::Suppress, Reason::Withdrawn)],
            ))
            .await
            .unwrap();
    }
    store
        .accept_message(message(
            "to-b",
            "news",
            2000,
            vec![rcpt("b@example.net", Outcome::Deliver, Reason::Granted)],
        ))
        .await
        .unwrap();
    let p = store
        .person(&query(a, &["hash-1"], 3))
        .await
        .unwrap()
        .expect("a is held");
    let s = p.subject.as_ref().expect("a subject");
    assert_eq!(
        (s.id.as_str(), s.address.as_deref()),
        ("subject-1", Some(a))
    );
    assert_eq!(s.erased_at, None);
    assert_eq!(p.erased_before, None);
    assert_eq!((p.events.len(), p.events_total), (2, 2));
    assert_eq!(p.events[0].id, by_dora.id, "newest first");
    let actor = &p.recorded_by[&by_dora.id];
    assert_eq!((actor.name.as_str(), actor.via), ("dora", Via::Cli));
    assert_eq!(
        p.recorded_by.len(),
        1,
        "the person's own event has no operator"
    );
    assert_eq!((p.decisions.len(), p.decisions_total), (3, 5));
    let ids: Vec<&str> = p.decisions.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids, ["m4", "m3", "m2"]);
    assert_eq!(p.decisions[0].kind, MessageKind::Relay);
    assert_eq!(p.deliveries_total, 0);
    assert_eq!(p.states.len(), 1);
    // Only suppressed mail names b: held, without a subject.
    let b = store
        .person(&query("b@example.net", &[], 3))
        .await
        .unwrap()
        .expect("b is held");
    assert!(b.subject.is_none());
    assert_eq!((b.decisions_total, b.deliveries_total), (1, 1));
    assert!(
        store
            .person(&query("c@example.net", &["hash-9"], 3))
            .await
            .unwrap()
            .is_none()
    );
}
both_stores!(the_newest_rows_come_first_and_the_totals_say_how_many_more);

async fn an_erased_person_is_found_by_the_keyed_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let a = "a@example.net";
    store
        .append_consent_event(event(a, 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    store
        .accept_message(message(
            "m1",
            "news",
            1000,
            vec![rcpt(a, Outcome::Deliver, Reason::Granted)],
        ))
        .await
        .unwrap();
    let report = store
        .erase(erasure(a, 2, None))
        .await
        .unwrap()
        .expect("erased");
    // By address alone: nothing; by the hash: the erased subject and what
    // remains under the tag.
    assert!(store.person(&query(a, &[], 10)).await.unwrap().is_none());
    let p = store
        .person(&query(a, &["hash-1"], 10))
        .await
        .unwrap()
        .expect("the erased subject");
    let s = p.subject.as_ref().unwrap();
    assert_eq!(s.address, None);
    assert!(s.erased_at.is_some());
    // The copy not sent yet was cancelled, with a decision row saying so.
    assert_eq!((p.decisions_total, p.deliveries_total), (2, 1));
    assert_eq!(p.decisions[0].reason, Reason::Erased);
    assert!(
        p.decisions
            .iter()
            .all(|d| d.recipient.starts_with("erased:"))
    );
    assert!(
        p.events
            .iter()
            .all(|e| e.ip.is_none() && e.evidence.is_none())
    );
    let erase = p.events.iter().find(|e| e.action == Action::Erase).unwrap();
    assert_eq!(erase.id, report.event_id);
    assert_eq!(p.recorded_by[&erase.id].name, "dpo");
    // The person comes back: the live subject, and the earlier erasure noted.
    store
        .append_consent_event(event(a, 3, "news", Action::Grant, 9000))
        .await
        .unwrap();
    let p = store
        .person(&query(a, &["hash-1", "hash-3"], 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.subject.unwrap().id, "subject-3");
    assert!(p.erased_before.is_some());
    assert_eq!(p.decisions_total, 0);
}
both_stores!(an_erased_person_is_found_by_the_keyed_hash);
