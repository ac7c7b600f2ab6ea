//! End to end: `GET /api/v1/decisions` finds the mail a person quotes (by
//! queue id or Message-ID), says what kind each message was, and pages
//! newest first too; the access document holds each copy's attempts.

use std::time::Duration;

use crate::both_stores;
use crate::common::admin::{self, admin};
use crate::common::relay::{eventually, message};
use crate::common::sink::{Fault, Sink};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// `field` of each decision of a page.
fn each<'a>(page: &'a Value, field: &str) -> Vec<&'a str> {
    page["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|d| d[field].as_str().unwrap_or_else(|| panic!("{field}: {d}")))
        .collect()
}

async fn decisions_filter_by_queue_id_and_message_id_and_page_newest_first() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    let [first, second, third, confirmation] = admin::mail_to_look_up(&relay).await;
    let get = |query: String| {
        let relay = &relay;
        async move {
            let a = admin(
                relay,
                Method::GET,
                &format!("/api/v1/decisions?{query}"),
                None,
            )
            .await;
            assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.body);
            a.body
        }
    };

    let page = get(format!("queue_id={}", first.to_lowercase())).await;
    assert_eq!(
        each(&page, "recipient"),
        ["ann@example.net", "bob@example.net"]
    );
    assert_eq!(each(&page, "queue_id"), [first.as_str(); 2]);
    assert_eq!(each(&page, "kind"), ["relay"; 2]);
    assert_eq!(each(&page, "message_id"), ["<first@example.com>"; 2]);
    for id in [
        "second%40example.com",
        "%3Csecond%40example.com%3E",
        "%20second%40example.com%09",
    ] {
        let page = get(format!("message_id={id}")).await;
        assert_eq!(
            each(&page, "queue_id"),
            [second.as_str(), third.as_str()],
            "{id}"
        );
    }
    let page = get("message_id=second%40example.com&recipient=CAT%40example.net".into()).await;
    assert_eq!(each(&page, "queue_id"), [third.as_str()]);
    let page = get("message_id=nobody%40example.com".into()).await;
    assert_eq!(page["decisions"], serde_json::json!([]));

    // The relay's own confirmation is not the campaign's mail.
    let page = get("recipient=dan%40example.net".into()).await;
    assert_eq!(each(&page, "kind"), ["confirmation"]);
    assert_eq!(each(&page, "queue_id"), [confirmation.as_str()]);
    assert_eq!(each(&page, "reason"), ["pending-confirmation"]);

    // Newest first, page by page; the same rows as oldest first, reversed.
    let oldest: Vec<String> = each(&get("order=oldest".into()).await, "recipient")
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(oldest.len(), 5);
    let (mut seen, mut pages) = (Vec::new(), 0);
    let mut query = "order=newest&limit=2".to_owned();
    loop {
        let page = get(query.clone()).await;
        pages += 1;
        seen.extend(each(&page, "recipient").into_iter().map(str::to_owned));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("order=newest&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, oldest.into_iter().rev().collect::<Vec<_>>());
    let page = get("order=newest&message_id=second%40example.com&limit=1".into()).await;
    assert_eq!(each(&page, "queue_id"), [third.as_str()]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let page = get(format!(
        "order=newest&message_id=second%40example.com&limit=1&cursor={cursor}"
    ))
    .await;
    assert_eq!(each(&page, "queue_id"), [second.as_str()]);
    assert_eq!(page["next_cursor"], Value::Null);
}
both_stores!(decisions_filter_by_queue_id_and_message_id_and_page_newest_first);

/// A copy deferred once, then sent: the person's access document lists
/// both attempts with the upstream's replies (the address masked).
async fn the_access_document_lists_each_attempt_of_a_copy() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    sink.script([Fault::Rcpt(451, "4.2.0 <eve@example.net> mailbox busy")]);
    let r = relay
        .send(&["eve@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(15)).await;
    let export = || async {
        admin(
            &relay,
            Method::GET,
            "/api/v1/subjects/eve%40example.net",
            None,
        )
        .await
        .body
    };
    eventually("the copy is recorded as sent", || async {
        export().await["deliveries"][0]["status"] == "sent"
    })
    .await;
    let doc = export().await;
    let d = &doc["deliveries"][0];
    assert_eq!(
        (
            &d["kind"],
            &d["message_id"],
            &d["attempts"],
            &d["next_attempt"]
        ),
        (
            &"relay".into(),
            &"<m1@example.com>".into(),
            &2.into(),
            &Value::Null
        )
    );
    let log = d["attempt_log"].as_array().expect("attempt_log");
    let statuses: Vec<&str> = log.iter().map(|a| a["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["deferred", "sent"]);
    let replies: Vec<&str> = log.iter().map(|a| a["reply"].as_str().unwrap()).collect();
    assert!(
        replies[0].starts_with("451") && replies[0].contains("mailbox busy"),
        "{replies:?}"
    );
    assert!(!replies[0].contains("eve@example.net"), "{replies:?}");
    assert!(replies[1].starts_with("250"), "{replies:?}");
    assert_eq!(d["last_reply"].as_str(), Some(replies[1]));
    assert!(
        log.iter()
            .all(|a| a["at"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    assert_eq!(doc["decisions"][0]["kind"], "relay");
    assert_eq!(doc["decisions"][0]["message_id"], "<m1@example.com>");
}
both_stores!(the_access_document_lists_each_attempt_of_a_copy);
