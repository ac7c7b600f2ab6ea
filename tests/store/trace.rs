//! What the DPO looks a message up by, and what the console's trace shows:
//! decision rows with their message's kind and Message-ID, the filters by
//! queue id and Message-ID, the newest rows first, the message trace, and
//! each copy's attempts (written with its outcome, purged with it,
//! scrubbed at erasure).

use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::store::{
    DecisionFilter, DeliveryAttempt, DeliveryStatus, MessageKind, PurgeCutoffs, PurgeStep,
    TRACE_MAX,
};

use super::*;
use crate::both_stores;

/// A queue id as the relay makes them (a ULID).
const QUEUE_ID: &str = "01J8ZK5V3M6Q8R2T4W6Y8A0C2E";

/// `queue id recipient` of each row.
fn named(rows: &[consent_relay::store::DecisionRow]) -> Vec<String> {
    rows.iter()
        .map(|d| format!("{} {}", d.message_id, d.recipient))
        .collect()
}

/// Four messages: the CRM's `QUEUE_ID` (two recipients) and `m2` with the
/// same Message-ID, the relay's double opt-in confirmation `c1`, and `m3`
/// whose Message-ID came without angle brackets.
async fn four_messages(store: &Store) {
    store
        .accept_message(message(
            QUEUE_ID,
            "news",
            1000,
            vec![
                rcpt("a@example.net", Outcome::Deliver, Reason::Granted),
                rcpt("b@example.net", Outcome::Suppress, Reason::NoConsent),
            ],
        ))
        .await
        .unwrap();
    let mut confirm = message(
        "c1",
        "news",
        2000,
        vec![rcpt(
            "c@example.net",
            Outcome::Deliver,
            Reason::PendingConfirmation,
        )],
    );
    confirm.kind = MessageKind::Notice;
    confirm.mail_from = String::new();
    confirm.header_message_id = Some("<c1.optin@relay.test>".into());
    store.accept_message(confirm).await.unwrap();
    let again = message(
        "m2",
        "news",
        3000,
        vec![rcpt("a@example.net", Outcome::Deliver, Reason::Granted)],
    );
    store.accept_message(again).await.unwrap();
    let mut bare = message(
        "m3",
        "other",
        4000,
        vec![rcpt("a@example.net", Outcome::Deliver, Reason::Granted)],
    );
    bare.header_message_id = Some("bare@example.com".into());
    store.accept_message(bare).await.unwrap();
}

async fn decision_rows_say_their_kind_and_message_id_and_filter_by_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    four_messages(&store).await;

    let all = all_decisions(&store).await;
    let shown: Vec<(String, &str, Option<&str>)> = all
        .iter()
        .map(|d| {
            (
                d.message_id.clone(),
                d.kind.shown(),
                d.header_message_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (QUEUE_ID.to_owned(), "relay", Some("<m@example.com>")),
            (QUEUE_ID.to_owned(), "relay", Some("<m@example.com>")),
            (
                "c1".to_owned(),
                "confirmation",
                Some("<c1.optin@relay.test>")
            ),
            ("m2".to_owned(), "relay", Some("<m@example.com>")),
            ("m3".to_owned(), "relay", Some("bare@example.com")),
        ]
    );
    // Stored as `notice`, shown (JSON too) as what it is.
    assert_eq!(all[2].kind, MessageKind::Notice);
    assert_eq!(all[2].kind.to_string(), "notice");
    assert_eq!(
        serde_json::to_value(&all[2]).unwrap()["kind"],
        "confirmation"
    );

    let rows = |f: DecisionFilter| {
        let store = store.clone();
        async move { named(&store.decisions(&f).await.unwrap()) }
    };
    let filter = DecisionFilter {
        limit: 100,
        ..DecisionFilter::default()
    };
    assert_eq!(
        rows(DecisionFilter {
            queue_id: Some(QUEUE_ID.into()),
            ..filter.clone()
        })
        .await,
        [
            format!("{QUEUE_ID} a@example.net"),
            format!("{QUEUE_ID} b@example.net")
        ]
    );
    // A Message-ID names every message that carried it, with or without
    // brackets as stored.
    assert_eq!(
        rows(DecisionFilter {
            message_id: Some("m@example.com".into()),
            ..filter.clone()
        })
        .await,
        [
            format!("{QUEUE_ID} a@example.net"),
            format!("{QUEUE_ID} b@example.net"),
            "m2 a@example.net".to_owned()
        ]
    );
    assert_eq!(
        rows(DecisionFilter {
            message_id: Some("bare@example.com".into()),
            ..filter.clone()
        })
        .await,
        ["m3 a@example.net"]
    );
    assert_eq!(
        rows(DecisionFilter {
            message_id: Some("c1.optin@relay.test".into()),
            ..filter.clone()
        })
        .await,
        ["c1 c@example.net"]
    );
    assert!(
        rows(DecisionFilter {
            message_id: Some("nothing@example.com".into()),
            ..filter.clone()
        })
        .await
        .is_empty()
    );
    // Filters add up.
    assert_eq!(
        rows(DecisionFilter {
            message_id: Some("m@example.com".into()),
            recipient: Some("b@example.net".into()),
            ..filter.clone()
        })
        .await,
        [format!("{QUEUE_ID} b@example.net")]
    );
    assert!(
        rows(DecisionFilter {
            queue_id: Some(QUEUE_ID.into()),
            message_id: Some("bare@example.com".into()),
            ..filter.clone()
        })
        .await
        .is_empty()
    );

    // The newest first, a page at a time before the last row seen.
    let newest = DecisionFilter {
        newest_first: true,
        limit: 2,
        ..DecisionFilter::default()
    };
    assert_eq!(
        rows(newest.clone()).await,
        ["m3 a@example.net", "m2 a@example.net"]
    );
    assert_eq!(
        rows(DecisionFilter {
            before_id: Some(all[3].id),
            ..newest.clone()
        })
        .await,
        [
            "c1 c@example.net".to_owned(),
            format!("{QUEUE_ID} b@example.net")
        ]
    );
    assert_eq!(
        rows(DecisionFilter {
            before_id: Some(all[1].id),
            ..newest.clone()
        })
        .await,
        [format!("{QUEUE_ID} a@example.net")]
    );
    assert_eq!(
        rows(DecisionFilter {
            recipient: Some("a@example.net".into()),
            limit: 10,
            ..newest.clone()
        })
        .await,
        [
            "m3 a@example.net".to_owned(),
            "m2 a@example.net".to_owned(),
            format!("{QUEUE_ID} a@example.net")
        ]
    );
    // The oldest-first pages are as they were.
    assert_eq!(
        rows(DecisionFilter {
            after_id: Some(all[2].id),
            ..filter.clone()
        })
        .await,
        ["m2 a@example.net", "m3 a@example.net"]
    );
    store.close().await;
}
both_stores!(decision_rows_say_their_kind_and_message_id_and_filter_by_them);

async fn the_trace_shows_the_message_its_decisions_and_each_copys_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    four_messages(&store).await;
    let before = now();
    // The copy to a@ of QUEUE_ID: deferred (the reply quoting the
    // address), then sent; the others stay queued.
    let claimed = store.claim_due("n1", 1000, 60_000, 1).await.unwrap();
    assert_eq!(claimed[0].message_id, QUEUE_ID);
    let copy = claimed[0].id;
    store
        .record_attempts(vec![attempt(
            copy,
            DeliveryStatus::Deferred,
            "451 4.2.0 <a@example.net> mailbox busy",
            1500,
        )])
        .await
        .unwrap();
    let claimed = store.claim_due("n1", 1500, 60_000, 1).await.unwrap();
    assert_eq!(claimed[0].id, copy);
    store
        .record_attempts(vec![attempt(copy, DeliveryStatus::Sent, "250 2.0.0 ok", 0)])
        .await
        .unwrap();
    // An outcome on a row no longer leased is no attempt of ours.
    store
        .record_attempts(vec![attempt(copy, DeliveryStatus::Sent, "250 again", 0)])
        .await
        .unwrap();

    // By the queue id, in any case.
    let traces = store
        .message_trace(&format!(" {} ", QUEUE_ID.to_lowercase()))
        .await
        .unwrap();
    assert_eq!(traces.len(), 1);
    let t = &traces[0];
    assert_eq!(
        (
            t.queue_id.as_str(),
            t.kind,
            t.campaign.as_str(),
            t.mail_from.as_str(),
            t.client_ip.as_str(),
            t.helo.as_str(),
            t.auth_user.as_deref(),
            t.header_message_id.as_deref(),
            t.received_at,
            t.body_held,
        ),
        (
            QUEUE_ID,
            MessageKind::Relay,
            "news",
            "crm@example.com",
            "192.0.2.1",
            "client.test",
            Some("crm"),
            Some("<m@example.com>"),
            1000,
            true,
        )
    );
    assert_eq!(
        t.size,
        format!("Subject: {QUEUE_ID}\r\n\r\nHello\r\n").len() as i64
    );
    assert_eq!(
        t.decisions
            .iter()
            .map(|d| format!("{} {} {}", d.recipient, d.outcome, d.reason))
            .collect::<Vec<_>>(),
        [
            "a@example.net deliver granted",
            "b@example.net suppress no-consent"
        ]
    );
    assert_eq!(t.deliveries.len(), 1);
    let d = &t.deliveries[0];
    assert_eq!(
        (
            d.sent_to.as_str(),
            d.status,
            d.attempts,
            d.last_reply.as_deref()
        ),
        (
            "a@example.net",
            DeliveryStatus::Sent,
            2,
            Some("250 2.0.0 ok")
        )
    );
    let log: Vec<(DeliveryStatus, &str)> = d
        .attempt_log
        .iter()
        .map(|a| (a.status, a.reply.as_str()))
        .collect();
    // Stored as the last reply is: the address masked.
    assert_eq!(
        log,
        [
            (
                DeliveryStatus::Deferred,
                "451 4.2.0 <recipient> mailbox busy"
            ),
            (DeliveryStatus::Sent, "250 2.0.0 ok")
        ]
    );
    assert!(d.attempt_log.iter().all(|a| a.at >= before));
    // The person's record holds the same attempts.
    let record = store
        .subject_record("a@example.net")
        .await
        .unwrap()
        .unwrap();
    let attempts: Vec<&Vec<DeliveryAttempt>> =
        record.deliveries.iter().map(|d| &d.attempt_log).collect();
    assert_eq!(attempts[0], &d.attempt_log);
    assert!(attempts[1..].iter().all(|a| a.is_empty()));

    // By the Message-ID, with or without brackets: every message with it,
    // the newest first.
    for id in ["<m@example.com>", "  m@example.com\t"] {
        let found: Vec<String> = store
            .message_trace(id)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.queue_id)
            .collect();
        assert_eq!(found, ["m2", QUEUE_ID], "{id:?}");
    }
    let confirm = store.message_trace("c1.optin@relay.test").await.unwrap();
    assert_eq!(
        serde_json::to_value(confirm[0].kind).unwrap(),
        "confirmation"
    );
    assert_eq!(confirm[0].mail_from, "");
    assert_eq!(store.message_trace("m3").await.unwrap().len(), 1);
    for nothing in [
        "",
        "   ",
        "nothing@example.com",
        "<>",
        "01J8ZK5V3M6Q8R2T4W6Y8A0C2F",
    ] {
        assert!(
            store.message_trace(nothing).await.unwrap().is_empty(),
            "{nothing:?}"
        );
    }
    store.close().await;
}
both_stores!(the_trace_shows_the_message_its_decisions_and_each_copys_attempts);

async fn a_message_id_the_crm_reused_gives_the_newest_messages_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let many = TRACE_MAX + 3;
    for i in 0..many {
        store
            .accept_message(message(
                &format!("m{i:02}"),
                "news",
                1000 + i,
                vec![rcpt("a@example.net", Outcome::Suppress, Reason::NoConsent)],
            ))
            .await
            .unwrap();
    }
    let found: Vec<String> = store
        .message_trace("<m@example.com>")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.queue_id)
        .collect();
    let newest: Vec<String> = (3..many).rev().map(|i| format!("m{i:02}")).collect();
    assert_eq!(found, newest);
    store.close().await;
}
both_stores!(a_message_id_the_crm_reused_gives_the_newest_messages_bounded);

async fn only_real_attempts_of_leased_rows_are_logged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let ids = leased(&store, &["a@example.net", "b@example.net", "c@example.net"]).await;
    let mut held = attempt(ids[1], DeliveryStatus::Held, "held: campaign paused", 0);
    held.attempted = false;
    // One batch, one statement for its attempts: sent and failed are
    // attempts, a copy held before it was tried is not.
    store
        .record_attempts(vec![
            attempt(ids[0], DeliveryStatus::Sent, "250 ok", 0),
            held,
            attempt(ids[2], DeliveryStatus::Failed, "550 5.1.1 no", 0),
        ])
        .await
        .unwrap();
    assert_eq!(
        column(
            dir.path(),
            "SELECT d.recipient || ' ' || a.status || ' ' || a.reply FROM delivery_attempts a \
             JOIN deliveries d ON d.id = a.delivery_id ORDER BY a.id"
        )
        .await,
        [
            "a@example.net sent 250 ok",
            "c@example.net failed 550 5.1.1 no"
        ]
        .map(|s| Some(s.to_owned()))
    );
    store.close().await;
}
both_stores!(only_real_attempts_of_leased_rows_are_logged);

async fn attempts_are_purged_with_their_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let ids = leased(&store, &["done@example.net", "waiting@example.net"]).await;
    store
        .record_attempts(vec![
            attempt(ids[0], DeliveryStatus::Sent, "250 ok", 0),
            attempt(
                ids[1],
                DeliveryStatus::Deferred,
                "451 later",
                9_000_000_000_000,
            ),
        ])
        .await
        .unwrap();
    let later = now() + 86_400_000;
    let cutoffs = PurgeCutoffs {
        message_bodies: later,
        decisions: later,
    };
    let mut step = Some(PurgeStep::first(cutoffs));
    while let Some(s) = step {
        step = store.purge_batch(s).await.unwrap().1;
    }
    // The ended copy went with its attempts; the waiting one keeps its own.
    assert_eq!(
        column(
            dir.path(),
            "SELECT d.recipient || ' ' || a.reply FROM delivery_attempts a \
             JOIN deliveries d ON d.id = a.delivery_id"
        )
        .await,
        [Some("waiting@example.net 451 later".to_owned())]
    );
    assert_eq!(
        count(dir.path(), "SELECT COUNT(*) FROM delivery_attempts").await,
        1
    );
    store.close().await;
}
both_stores!(attempts_are_purged_with_their_delivery);

async fn erasure_masks_the_address_in_attempts_and_the_notice_keeps_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    store
        .append_consent_event(event("a@example.net", 1, "news", Action::Grant, 100))
        .await
        .unwrap();
    let copy = leased(&store, &["a@example.net"]).await[0];
    store
        .record_attempts(vec![attempt(
            copy,
            DeliveryStatus::Deferred,
            "451 <a@example.net> busy",
            2000,
        )])
        .await
        .unwrap();
    // A reply stored unmasked (as by a tool, or before replies were masked).
    let mut db = crate::backend::connect(dir.path()).await;
    sqlx::query(
        "INSERT INTO delivery_attempts (delivery_id, at, status, reply) \
         VALUES ($1, 1500, 'deferred', '452 quota of a@example.net exceeded')",
    )
    .bind(copy)
    .execute(&mut db)
    .await
    .unwrap();
    let report = store
        .erase(erasure("a@example.net", 9, Some(erasure_notice())))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.replies_scrubbed, 1);
    assert_eq!(
        column(
            dir.path(),
            "SELECT reply FROM delivery_attempts ORDER BY id"
        )
        .await,
        ["451 <recipient> busy", "452 quota of <recipient> exceeded"].map(|s| Some(s.to_owned()))
    );
    // The notice: deferred, then sent; once its copy ended, every reply of
    // it keeps only its code, as its last reply does.
    let notice = store.claim_due("n1", 6000, 60_000, 10).await.unwrap();
    assert_eq!(notice[0].kind, MessageKind::ErasureNotice);
    store
        .record_attempts(vec![attempt(
            notice[0].id,
            DeliveryStatus::Deferred,
            "421 later, A@example.NET",
            6000,
        )])
        .await
        .unwrap();
    let notice = store.claim_due("n1", 6000, 60_000, 10).await.unwrap();
    store
        .record_attempts(vec![attempt(
            notice[0].id,
            DeliveryStatus::Sent,
            "250 ok for someone",
            0,
        )])
        .await
        .unwrap();
    assert_eq!(
        column(
            dir.path(),
            &format!(
                "SELECT reply FROM delivery_attempts WHERE delivery_id = {} ORDER BY id",
                notice[0].id
            )
        )
        .await,
        [
            "421 (reply removed with the erased address)",
            "250 (reply removed with the erased address)"
        ]
        .map(|s| Some(s.to_owned()))
    );
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM delivery_attempts WHERE lower(reply) LIKE '%a@example.net%'"
        )
        .await,
        0
    );
    store.close().await;
}
both_stores!(erasure_masks_the_address_in_attempts_and_the_notice_keeps_their_codes);
