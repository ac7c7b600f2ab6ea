//! The message trace (`/admin/message?id=`): found by the queue id of the
//! relay's reply and by the Message-ID (with or without `<>`), each
//! recipient's decision with its reason, each copy's attempts and replies.

use reqwest::StatusCode;

use crate::both_stores;
use crate::common::console::{self, Operator, VIEWER};
use crate::common::relay::{eventually, message};
use crate::common::sink::Sink;
use consent_relay::consent::Action;

async fn a_message_is_traced_by_queue_id_and_by_message_id() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    let reply = relay
        .send(
            &["Ann@Example.NET", "cy@example.net"],
            &message("newsletter", "Hello"),
        )
        .await;
    let queue_id = reply
        .split_whitespace()
        .skip_while(|w| *w != "as")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(reply.starts_with("250") && queue_id.len() == 26, "{reply}");
    eventually("the copy is delivered", || async {
        sink.messages().len() == 1
    })
    .await;
    let mut op = Operator::signed_in(&relay, VIEWER.1).await;
    let mut page = op.get(&format!("/admin/message?id={queue_id}")).await;
    // The outcome is recorded after the sink answered: wait for it.
    for _ in 0..50 {
        if page.body.contains("<span class=\"tag good\">sent</span>") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = op.get(&format!("/admin/message?id={queue_id}")).await;
    }
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains(&queue_id), "{body}");
    assert!(body.contains("the CRM&#39;s mail, relayed"), "{body}");
    assert!(body.contains("&lt;m1@example.com&gt;"), "the Message-ID");
    assert!(body.contains("<code>newsletter</code> Newsletter"));
    // Each recipient's decision and reason, by their identity.
    assert!(
        body.contains("<code>granted</code>") && body.contains("<code>no-consent</code>"),
        "{body}"
    );
    assert!(body.contains("<tr><td>ann@example.net</td>"), "{body}");
    // The copy, as the client wrote the address, with its attempt's reply.
    assert!(body.contains("Ann@Example.NET"));
    assert!(
        body.contains("<span class=\"tag good\">sent</span>"),
        "{body}"
    );
    assert!(body.contains("250"), "the upstream's reply");
    // The same by Message-ID, with or without brackets.
    for id in [
        "%3Cm1%40example.com%3E",
        "m1%40example.com",
        "%20m1%40example.com%20",
    ] {
        let by_mid = op.get(&format!("/admin/message?id={id}")).await.body;
        assert!(by_mid.contains(&queue_id), "{id}: {by_mid}");
    }
    // Unknown: said so, not an error.
    let none = op.get("/admin/message?id=nothing-like-it").await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.body.contains("No message has the id"), "{}", none.body);
    // French.
    let fr = Operator::signed_in(&relay, VIEWER.1)
        .await
        .french()
        .get(&format!("/admin/message?id={queue_id}"))
        .await
        .body;
    assert!(fr.contains("Trace d&#39;un message"), "{fr}");
    assert!(fr.contains("courriel du CRM, relayé"), "{fr}");
    relay.stop().await;
}
both_stores!(a_message_is_traced_by_queue_id_and_by_message_id);
