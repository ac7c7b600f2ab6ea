//! End to end: SMTPUTF8 (RFC 6531) from the client through the queue to the
//! upstream. A message sent with `MAIL FROM ... SMTPUTF8` keeps the flag in
//! the store and goes upstream with it when the upstream offers SMTPUTF8;
//! when it does not, a copy that needs it fails with a DSN (RFC 6533 for
//! UTF-8 addresses), and one that does not need it goes without.

use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Received, Sink, SinkOptions};
use consent_relay::store::QueueRow;

/// A UTF-8 From and Subject (raw, as RFC 6532 allows).
fn utf8_message(campaign: &str, body: &str) -> String {
    format!(
        "From: Jörg Müller <crm@example.com>\r\nTo: list@example.net\r\nSubject: Grüße aus Köln\r\nMessage-ID: <m1@example.com>\r\nX-Campaign: {campaign}\r\n\r\n{body}\r\n"
    )
}

/// Sends one message with `MAIL FROM:<from> SMTPUTF8`; it must be accepted.
async fn send_utf8(relay: &TestRelay, from: &str, rcpts: &[&str], message: &str) {
    let r = relay
        .send_with(&format!("MAIL FROM:<{from}> SMTPUTF8"), rcpts, message)
        .await;
    assert!(r.starts_with("250"), "{r}");
}

async fn sink_without_smtputf8() -> Sink {
    Sink::start_with(
        "127.0.0.1:0".parse().expect("addr"),
        SinkOptions {
            without_smtputf8: true,
            ..SinkOptions::default()
        },
    )
    .await
}

/// A sink (offering SMTPUTF8 or not) and a relay in front of it; sends one
/// message with SMTPUTF8 and returns the first thing the sink receives.
async fn relay_one(
    upstream_smtputf8: bool,
    from: &str,
    rcpt: &str,
    message: &str,
) -> (Sink, TestRelay, Received) {
    let sink = if upstream_smtputf8 {
        Sink::start().await
    } else {
        sink_without_smtputf8().await
    };
    let relay = TestRelay::start(sink.addr(), "", "").await;
    send_utf8(&relay, from, &[rcpt], message).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    (sink, relay, got[0].clone())
}

async fn queue(relay: &TestRelay) -> Vec<QueueRow> {
    relay.store().queue(100).await.expect("queue")
}

fn has_smtputf8(r: &Received) -> bool {
    r.mail_params.iter().any(|p| p == "SMTPUTF8")
}

async fn utf8_message_goes_upstream_with_smtputf8_when_offered() {
    let (_sink, _relay, got) = relay_one(
        true,
        "crm@example.com",
        "ann@example.net",
        &utf8_message("prospecting", "Hallo"),
    )
    .await;
    assert_eq!(got.rcpt_to, ["ann@example.net"]);
    assert!(has_smtputf8(&got), "{:?}", got.mail_params);
    let text = String::from_utf8(got.data.clone()).expect("UTF-8 copy");
    assert!(text.contains("Subject: Grüße aus Köln\r\n"), "{text}");
    assert!(
        text.contains("From: Jörg Müller <crm@example.com>\r\n"),
        "{text}"
    );
    // RFC 6531 4.3: the trace header names the SMTPUTF8 transaction.
    assert!(text.contains(" with UTF8SMTP id "), "{text}");
}
both_stores!(utf8_message_goes_upstream_with_smtputf8_when_offered);

async fn utf8_message_fails_with_a_bounce_when_the_upstream_lacks_smtputf8() {
    let sink = sink_without_smtputf8().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    send_utf8(
        &relay,
        "crm@example.com",
        &["ann@example.net"],
        &utf8_message("prospecting", "Hallo"),
    )
    .await;
    // Only the bounce arrives: the copy itself never went upstream.
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let dsn = &got[0];
    assert_eq!(dsn.mail_from, "");
    assert_eq!(dsn.rcpt_to, ["crm@example.com"]);
    // Its envelope and own header are ASCII: it needs no SMTPUTF8 and the
    // returned UTF-8 header travels as message/global-headers (RFC 6533).
    assert!(!has_smtputf8(dsn), "{:?}", dsn.mail_params);
    let text = String::from_utf8(dsn.data.clone()).expect("UTF-8 bounce");
    assert!(
        text.contains("Content-Type: message/global-delivery-status\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Final-Recipient: utf-8; ann@example.net\r\n"),
        "{text}"
    );
    assert!(text.contains("Status: 5.6.9\r\n"), "{text}");
    assert!(
        text.contains("550 5.6.9 upstream does not support SMTPUTF8"),
        "{text}"
    );
    assert!(
        text.contains("Content-Type: message/global-headers\r\n"),
        "{text}"
    );
    assert!(text.contains("Subject: Grüße aus Köln\r\n"), "{text}");
    eventually("the copy failed for good", || async {
        let q = queue(&relay).await;
        q.iter().any(|r| {
            r.recipient == "ann@example.net"
                && r.status == "failed"
                && r.last_reply.as_deref().is_some_and(|x| x.contains("5.6.9"))
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1, "only the bounce reached the upstream");
}
both_stores!(utf8_message_fails_with_a_bounce_when_the_upstream_lacks_smtputf8);

async fn ascii_messages_never_carry_the_parameter() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let r = relay
        .send(
            &["ann@example.net"],
            &message("prospecting", "Grüße im Text"),
        )
        .await;
    assert!(r.starts_with("250"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(!has_smtputf8(&got[0]), "{:?}", got[0].mail_params);
    // An 8-bit body asks for 8BITMIME only.
    assert_eq!(got[0].mail_params, ["BODY=8BITMIME"]);
    let text = String::from_utf8_lossy(&got[0].data);
    assert!(text.contains(" with ESMTP id "), "{text}");
}
both_stores!(ascii_messages_never_carry_the_parameter);

async fn the_flag_is_stored_and_passed_on_for_an_ascii_message_too() {
    // Nothing in the copy needs SMTPUTF8: only the stored flag asks for it.
    let (_sink, _relay, got) = relay_one(
        true,
        "crm@example.com",
        "ann@example.net",
        &message("prospecting", "plain"),
    )
    .await;
    assert_eq!(got.mail_params, ["SMTPUTF8"]);
}
both_stores!(the_flag_is_stored_and_passed_on_for_an_ascii_message_too);

async fn an_ascii_message_sent_with_smtputf8_needs_no_smtputf8_upstream() {
    let (_sink, _relay, got) = relay_one(
        false,
        "crm@example.com",
        "ann@example.net",
        &message("prospecting", "plain"),
    )
    .await;
    assert_eq!(got.rcpt_to, ["ann@example.net"]);
    assert!(got.mail_params.is_empty(), "{:?}", got.mail_params);
}
both_stores!(an_ascii_message_sent_with_smtputf8_needs_no_smtputf8_upstream);

async fn utf8_recipient_is_delivered_with_smtputf8() {
    let (_sink, relay, got) = relay_one(
        true,
        "crm@example.com",
        "jörg@example.net",
        &utf8_message("prospecting", "Hallo"),
    )
    .await;
    assert_eq!(got.rcpt_to, ["jörg@example.net"]);
    assert!(has_smtputf8(&got), "{:?}", got.mail_params);
    // The recipient has a subject and signed links like anyone else.
    let subject = relay.subject_id("jörg@example.net").await;
    let text = String::from_utf8_lossy(&got.data);
    assert!(text.contains("List-Unsubscribe: "), "{text}");
    assert!(!subject.is_empty());
}
both_stores!(utf8_recipient_is_delivered_with_smtputf8);

async fn utf8_recipient_fails_with_a_utf8_bounce_when_the_upstream_lacks_smtputf8() {
    let (_sink, _relay, got) = relay_one(
        false,
        "crm@example.com",
        "jörg@example.net",
        &message("prospecting", "plain"),
    )
    .await;
    assert_eq!(got.rcpt_to, ["crm@example.com"]);
    let text = String::from_utf8(got.data).expect("UTF-8 bounce");
    assert!(
        text.contains("Final-Recipient: utf-8; jörg@example.net\r\n"),
        "{text}"
    );
    assert!(text.contains("Status: 5.6.7\r\n"), "{text}");
    assert!(
        text.contains("553 5.6.7 upstream does not support SMTPUTF8"),
        "{text}"
    );
    assert!(
        text.contains("<jörg@example.net>. The relay gave up"),
        "{text}"
    );
}
both_stores!(utf8_recipient_fails_with_a_utf8_bounce_when_the_upstream_lacks_smtputf8);

async fn a_utf8_sender_gets_its_bounce_with_smtputf8() {
    // The copy fails upstream (550); the bounce goes to a UTF-8 address,
    // so it needs SMTPUTF8 itself, which this upstream offers.
    let sink = Sink::start().await;
    sink.script([common::sink::Fault::Rcpt(550, "5.1.1 no such user")]);
    let relay = TestRelay::start(sink.addr(), "", "").await;
    send_utf8(
        &relay,
        "büro@example.com",
        &["gone@example.net"],
        &message("prospecting", "plain"),
    )
    .await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let dsn = &got[0];
    assert_eq!(dsn.rcpt_to, ["büro@example.com"]);
    assert!(has_smtputf8(dsn), "{:?}", dsn.mail_params);
    let text = String::from_utf8(dsn.data.clone()).expect("UTF-8 bounce");
    assert!(text.contains("To: <büro@example.com>\r\n"), "{text}");
    assert!(
        text.contains("Final-Recipient: utf-8; gone@example.net\r\n"),
        "{text}"
    );
}
both_stores!(a_utf8_sender_gets_its_bounce_with_smtputf8);

async fn the_outbox_writes_a_utf8_copy() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let text =
        common::relay::config_text(dir.path(), &format!("outbox:{}", outbox.display()), "", "")
            .replace("tls = \"none\"\n", "");
    let relay = TestRelay::start_with(dir, &text).await;
    send_utf8(
        &relay,
        "crm@example.com",
        &["jörg@example.net"],
        &utf8_message("prospecting", "Hallo"),
    )
    .await;
    let eml = || {
        std::fs::read_dir(&outbox)
            .ok()?
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .map(|e| e.path())
    };
    eventually("the copy is written", || async { eml().is_some() }).await;
    let text = std::fs::read_to_string(eml().expect("file")).expect("UTF-8 file");
    assert!(
        text.starts_with("Return-Path: <crm@example.com>\r\nDelivered-To: jörg@example.net\r\n"),
        "{text}"
    );
    assert!(text.contains("Subject: Grüße aus Köln\r\n"), "{text}");
}
both_stores!(the_outbox_writes_a_utf8_copy);
