//! End to end: each relayed copy's return path and feedback headers (SPEC
//! "What comes back"). With `[bounces] domain` the sink sees
//! `MAIL FROM:<b-TOKEN@domain>` whose token verifies to that copy's
//! delivery, also after a key rotation; without it the client's sender
//! stays. Every relayed copy carries `X-Consent-Relay-Delivery`,
//! `Feedback-ID` and, when configured, the `CFBL-*` fields, never the ones
//! the client wrote; the relay's own bounces keep the null sender.

use std::time::Duration;

use crate::both_stores;
use crate::common::backend;
use crate::common::relay::{KEY, TestRelay, config_text};
use crate::common::sink::{Fault, Received, Sink};
use consent_relay::config::SigningConfig;
use consent_relay::feedback::report::{self, DELIVERY_HEADER};
use consent_relay::mail::header::header_values;
use consent_relay::token::bounce;

/// A second signing key (32 bytes, base64).
const KEY2: &str = "c2Vjb25kLWtleS1zZWNvbmQta2V5LXNlY29uZC1rZXkh";

const FEEDBACK: &str = "\n[bounces]\ndomain = \"bounces.test\"\n\n[complaints]\n\
                        feedback_id = \"acme\"\ncfbl_address = \"fbl@relay.test\"\n";

/// A message that brings its own copies of every feedback header, folded
/// and in odd case, hoping one survives.
fn forged(campaign: &str) -> String {
    format!(
        "From: CRM <crm@example.com>\r\nTo: list@example.net\r\nSubject: News\r\n\
         Message-ID: <m1@example.com>\r\nX-Campaign: {campaign}\r\n\
         X-Consent-Relay-Delivery: b-aeaaaaaaaaabbeuv2fmsxbjr72de3ta\r\n\
         feedback-id: spoof:\r\n acme\r\nCFBL-Address: evil@example.org; report=arf\r\n\
         cfbl-feedback-id: b-forged\r\n\r\nHello\r\n"
    )
}

/// The id of the delivery to `recipient` (the only one in the test).
async fn delivery_id(relay: &TestRelay, recipient: &str) -> i64 {
    let mut c = backend::connect(relay.dir.path()).await;
    sqlx::query_scalar("SELECT id FROM deliveries WHERE recipient = $1")
        .bind(recipient)
        .fetch_one(&mut c)
        .await
        .expect("the delivery's id")
}

/// The delivery a `b-TOKEN@domain` return path names under `signing`.
fn named(signing: &SigningConfig, mail_from: &str, domain: &str) -> Option<i64> {
    let local = mail_from.strip_suffix(&format!("@{domain}"))?;
    bounce::verify(signing, bounce::token_of(local)?).ok()
}

fn header(copy: &Received, name: &str) -> Vec<String> {
    header_values(&copy.data, name)
}

fn to(got: &[Received], recipient: &str) -> Received {
    got.iter()
        .find(|r| r.rcpt_to == [recipient])
        .unwrap_or_else(|| panic!("no copy to {recipient}: {got:?}"))
        .clone()
}

async fn a_copy_goes_with_a_return_path_and_headers_naming_its_delivery() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "");
    text.push_str(FEEDBACK);
    let relay = TestRelay::start_with(dir, &text).await;
    let r = relay
        .send(&["ann@example.net"], &forged("prospecting"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    // Mandatory mail too: it is a relayed copy like any other.
    let r = relay.send(&["bob@example.net"], &forged("invoices")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    for (recipient, campaign) in [
        ("ann@example.net", "prospecting"),
        ("bob@example.net", "invoices"),
    ] {
        let copy = to(&got, recipient);
        let id = delivery_id(&relay, recipient).await;
        assert_eq!(
            named(&relay.config.signing, &copy.mail_from, "bounces.test"),
            Some(id),
            "{}",
            copy.mail_from
        );
        let local = copy.mail_from.split('@').next().expect("local part");
        assert!(local.len() <= 64, "{local}");
        // One of each, ours.
        assert_eq!(header(&copy, DELIVERY_HEADER), [local]);
        assert_eq!(header(&copy, "Feedback-ID"), [format!("{campaign}:acme")]);
        assert_eq!(
            header(&copy, "CFBL-Address"),
            ["fbl@relay.test; report=arf"]
        );
        assert_eq!(header(&copy, "CFBL-Feedback-ID"), [local]);
    }
}
both_stores!(a_copy_goes_with_a_return_path_and_headers_naming_its_delivery);

async fn without_a_bounce_domain_the_clients_sender_stays() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    relay
        .send(&["ann@example.net"], &forged("prospecting"))
        .await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].mail_from, "crm@example.com");
    // The headers are there all the same (the default SenderId), the
    // CFBL fields only with an address.
    let id = delivery_id(&relay, "ann@example.net").await;
    let delivery = header(&got[0], DELIVERY_HEADER);
    assert_eq!(delivery.len(), 1, "{delivery:?}");
    let token = bounce::token_of(&delivery[0]).expect("b-TOKEN");
    assert_eq!(bounce::verify(&relay.config.signing, token), Ok(id));
    assert_eq!(header(&got[0], "Feedback-ID"), ["prospecting:relay"]);
    assert!(header(&got[0], "CFBL-Address").is_empty());
    assert!(header(&got[0], "CFBL-Feedback-ID").is_empty());

    // Then a bounce comes to the client, not to the relay: the copy,
    // returned whole in its DSN, names the delivery to the report reader.
    let mut dsn = b"From: MAILER-DAEMON@mx.example\r\nTo: crm@example.com\r\n\
        Subject: Undelivered Mail\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\r\n\r\n\
        --r\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n\
        Final-Recipient: rfc822; ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
        --r\r\nContent-Type: message/rfc822\r\n\r\n"
        .to_vec();
    dsn.extend_from_slice(&got[0].data);
    dsn.extend_from_slice(b"\r\n--r--\r\n");
    let read = report::read(&dsn);
    let token = read.delivery_token().and_then(bounce::token_of);
    assert_eq!(
        token.map(|t| bounce::verify(&relay.config.signing, t)),
        Some(Ok(id))
    );
}
both_stores!(without_a_bounce_domain_the_clients_sender_stays);

async fn the_relays_own_bounce_keeps_the_null_sender() {
    let sink = Sink::start().await;
    sink.script([Fault::Rcpt(550, "5.1.1 no such user")]);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "");
    text.push_str(FEEDBACK);
    let relay = TestRelay::start_with(dir, &text).await;
    relay
        .send(&["gone@example.net"], &forged("prospecting"))
        .await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let dsn = &got[0];
    assert_eq!(dsn.rcpt_to, ["crm@example.com"], "to the client's sender");
    assert_eq!(dsn.mail_from, "", "a bounce has the null sender");
    assert!(header(dsn, DELIVERY_HEADER).is_empty());
    let text = String::from_utf8_lossy(&dsn.data);
    assert!(text.contains("Status: 5.1.1\r\n"), "{text}");
}
both_stores!(the_relays_own_bounce_keeps_the_null_sender);

/// `[signing]` of the test config, as the relay reads it.
fn signing_line(current: &str, keys: &str) -> String {
    format!("current = \"{current}\"\nkeys = {{ {keys} }}")
}

async fn a_token_made_before_a_key_rotation_still_verifies() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let before = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "") + FEEDBACK;
    let k1 = format!("k1 = \"{KEY}\"");
    let old = signing_line("k1", &k1);
    assert!(before.contains(&old), "the test config's [signing]");
    let mut relay = TestRelay::start_with(dir, &before).await;
    relay
        .send(&["ann@example.net"], &forged("prospecting"))
        .await;
    let first = sink.wait_for(1, Duration::from_secs(10)).await[0].clone();
    let first_id = delivery_id(&relay, "ann@example.net").await;
    let only_k1 = relay.config.signing.clone();
    relay.stop().await;

    // A new current key; the old one kept for what was signed with it.
    let dir = std::mem::replace(&mut relay.dir, tempfile::tempdir().expect("temp dir"));
    let rotated = before.replace(&old, &signing_line("k2", &format!("{k1}, k2 = \"{KEY2}\"")));
    let relay = TestRelay::start_with(dir, &rotated).await;
    relay
        .send(&["bob@example.net"], &forged("prospecting"))
        .await;
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    let second = to(&got, "bob@example.net");
    let second_id = delivery_id(&relay, "bob@example.net").await;
    let signing = &relay.config.signing;
    assert_eq!(
        named(signing, &first.mail_from, "bounces.test"),
        Some(first_id)
    );
    assert_eq!(
        named(signing, &second.mail_from, "bounces.test"),
        Some(second_id)
    );
    // Signed with the new key: the old key alone does not verify it.
    assert_eq!(named(&only_k1, &second.mail_from, "bounces.test"), None);
}
both_stores!(a_token_made_before_a_key_rotation_still_verifies);
