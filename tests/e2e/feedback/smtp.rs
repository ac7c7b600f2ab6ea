//! The SMTP door: any address at the bounce domain and the complaints
//! address, from any client and without AUTH, one report per transaction,
//! at most `[bounces] max_report_size`; `250` once stored, `550 5.6.0` for
//! what is not a report.

use super::{BOUNCES, FBL, NOT_A_REPORT, count, delivered_copy, dsn, return_path};
use crate::both_stores;
use crate::common::relay::{Client, TestRelay, message};
use crate::common::sink::Sink;

/// Sends `data` to `to` with the null sender, in a fresh session; the
/// reply to the final dot.
pub async fn send_report(relay: &TestRelay, to: &str, data: &str) -> String {
    let mut c = relay.client().await;
    c.expect("220").await;
    c.cmd("EHLO mx.example.net", "250").await;
    c.cmd("MAIL FROM:<>", "250").await;
    c.cmd(&format!("RCPT TO:<{to}>"), "250").await;
    c.cmd("DATA", "354").await;
    c.write(data.as_bytes()).await;
    c.write(b".\r\n").await;
    let r = c.read_reply().await;
    c.cmd("QUIT", "221").await;
    r
}

async fn a_bounce_at_the_smtp_door_suppresses_the_person_and_their_next_mail_is_not_sent() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "").await;
    let id = delivered_copy(&relay, &sink, "ann@example.net").await;
    let r = send_report(
        &relay,
        &return_path(&relay.config, id),
        &dsn(&relay.config, id, "ann@example.net", "5.1.1"),
    )
    .await;
    assert!(r.starts_with("250 2.0.0 report "), "{r}");
    let done = "SELECT count(*) FROM feedback_reports WHERE door = 'smtp' AND state = 'done'";
    assert_eq!(count(relay.dir.path(), done).await, 1);
    let again = relay
        .send(&["ann@example.net"], &message("prospecting", "Again"))
        .await;
    assert!(again.contains("0 delivered, 1 suppressed"), "{again}");
    let bounced = "SELECT count(*) FROM decisions WHERE reason = 'bounced'";
    assert_eq!(count(relay.dir.path(), bounced).await, 1);
    assert_eq!(sink.count(), 1, "the second copy was not sent");
}
both_stores!(a_bounce_at_the_smtp_door_suppresses_the_person_and_their_next_mail_is_not_sent);

async fn an_outsider_without_auth_reaches_the_report_addresses_and_nothing_else() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // 127.0.0.1 is not an allowed network here: the test is an outsider.
    let text = super::feedback_config(dir.path(), &format!("smtp://{}", sink.addr()), "").replacen(
        "hostname = \"relay.test\"",
        "hostname = \"relay.test\"\nallowed_networks = [\"192.0.2.0/24\"]",
        1,
    );
    let relay = TestRelay::start_with(dir, &text).await;
    // A token that verifies, for a copy this relay never sent: stored, changes nothing.
    let r = send_report(
        &relay,
        &return_path(&relay.config, 999),
        &dsn(&relay.config, 999, "zed@example.net", "5.1.1"),
    )
    .await;
    assert!(r.starts_with("250 "), "{r}");
    let r = send_report(
        &relay,
        FBL,
        &dsn(&relay.config, 998, "zed@example.net", "5.1.1"),
    )
    .await;
    assert!(r.starts_with("250 "), "{r}");
    let stored =
        "SELECT count(*) FROM feedback_reports WHERE door = 'smtp' AND client_ip = '127.0.0.1'";
    assert_eq!(count(relay.dir.path(), stored).await, 2);
    let mut c = relay.client().await;
    c.expect("220").await;
    c.cmd("EHLO outsider.test", "250").await;
    c.cmd("MAIL FROM:<>", "250").await;
    c.cmd("RCPT TO:<bob@example.net>", "554").await;
    assert_eq!(sink.count(), 0, "nothing relayed for an outsider");
}
both_stores!(an_outsider_without_auth_reaches_the_report_addresses_and_nothing_else);

async fn a_report_over_max_report_size_gets_552_and_is_not_stored() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "max_report_size = 4096").await;
    let big = dsn(&relay.config, 1, "ann@example.net", "5.1.1").replace(
        "I could not deliver your message.\r\n",
        &"I could not deliver your message.\r\n".repeat(200),
    );
    assert!(big.len() > 4096);
    let r = send_report(&relay, &return_path(&relay.config, 1), &big).await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    let small = dsn(&relay.config, 1, "ann@example.net", "5.1.1");
    let r = send_report(&relay, &return_path(&relay.config, 1), &small).await;
    assert!(r.starts_with("250 "), "{r}");
    assert_eq!(
        count(relay.dir.path(), "SELECT count(*) FROM feedback_reports").await,
        1
    );
}
both_stores!(a_report_over_max_report_size_gets_552_and_is_not_stored);

async fn a_message_that_is_not_a_report_gets_550_5_6_0_and_is_not_stored() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "").await;
    let r = send_report(&relay, &format!("anything@{BOUNCES}"), NOT_A_REPORT).await;
    assert!(r.starts_with("550 5.6.0 not a report"), "{r}");
    assert_eq!(
        count(relay.dir.path(), "SELECT count(*) FROM feedback_reports").await,
        0
    );
}
both_stores!(a_message_that_is_not_a_report_gets_550_5_6_0_and_is_not_stored);

#[tokio::test]
async fn a_report_address_goes_in_a_transaction_of_its_own() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "").await;
    let mut c: Client = relay.client().await;
    c.expect("220").await;
    c.cmd("EHLO client.test", "250").await;
    c.cmd("MAIL FROM:<crm@example.com>", "250").await;
    c.cmd("RCPT TO:<ann@example.net>", "250").await;
    c.cmd(&format!("RCPT TO:<{FBL}>"), "452 4.5.3").await;
    c.cmd("RSET", "250").await;
    c.cmd("MAIL FROM:<>", "250").await;
    c.cmd(&format!("RCPT TO:<x@{BOUNCES}>"), "250").await;
    c.cmd("RCPT TO:<ann@example.net>", "452 4.5.3").await;
    c.cmd(&format!("RCPT TO:<{FBL}>"), "452 4.5.3").await;
}
