//! End to end: the relay's TLS to its upstream (`[upstream] tls`,
//! `ca_file`, smtps://) against the sink offering STARTTLS or implicit TLS
//! with a certificate from a test CA. Whatever goes wrong with TLS, a copy
//! is never sent in clear text when TLS was asked for: the delivery is
//! deferred and the sink receives nothing.

use std::time::Duration;

use crate::common::ca::TestCa;
use crate::common::relay::{TestRelay, config_text, eventually, message};
use crate::common::sink::{Sink, SinkOptions};
use consent_relay::store::QueueRow;

const LOOPBACK: &str = "127.0.0.1:0";

/// A relay whose upstream is `url` with `tls` (`required`, ...) and the
/// test CA's certificate as `ca_file`.
async fn relay(url: &str, tls: &str, ca: &TestCa) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("upstream-ca.pem");
    ca.write(&ca_file);
    let text = config_text(dir.path(), url, "", "").replace(
        "tls = \"none\"",
        &format!("tls = \"{tls}\"\nca_file = \"{}\"", ca_file.display()),
    );
    TestRelay::start_with(dir, &text).await
}

async fn queue(relay: &TestRelay) -> Vec<QueueRow> {
    relay.store().queue(100).await.expect("queue")
}

/// Sends one prospecting mail (opt-out: delivered) to a@example.net.
async fn send(relay: &TestRelay) {
    let reply = relay
        .send(&["a@example.net"], &message("prospecting", "Hello"))
        .await;
    assert!(reply.starts_with("250"), "{reply}");
}

/// Waits until the copy was tried and deferred; returns the last reply.
async fn deferred(relay: &TestRelay) -> String {
    eventually("the copy is deferred", || async {
        queue(relay)
            .await
            .iter()
            .any(|q| q.status == "deferred" && q.attempts >= 1)
    })
    .await;
    let q = queue(relay).await;
    q[0].last_reply.clone().unwrap_or_default()
}

fn starttls(ca: &TestCa) -> SinkOptions {
    SinkOptions {
        starttls: Some(ca.server_config(&["127.0.0.1"])),
        ..SinkOptions::default()
    }
}

#[tokio::test]
async fn required_tls_with_the_ca_file_delivers_over_starttls() {
    let ca = TestCa::new("upstream CA");
    let sink = Sink::start_with(LOOPBACK.parse().expect("addr"), starttls(&ca)).await;
    let mut relay = relay(&format!("smtp://{}", sink.addr()), "required", &ca).await;
    send(&relay).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(got[0].tls, "the copy came over TLS");
    assert_eq!(got[0].rcpt_to, ["a@example.net"]);
    relay.stop().await;
}

#[tokio::test]
async fn implicit_tls_upstream_with_the_ca_file_delivers_over_tls() {
    let ca = TestCa::new("upstream CA");
    let options = SinkOptions {
        implicit_tls: Some(ca.server_config(&["127.0.0.1"])),
        ..SinkOptions::default()
    };
    let sink = Sink::start_with(LOOPBACK.parse().expect("addr"), options).await;
    let mut relay = relay(&format!("smtps://{}", sink.addr()), "required", &ca).await;
    send(&relay).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(got[0].tls, "the copy came over TLS");
    relay.stop().await;
}

#[tokio::test]
async fn required_tls_without_starttls_defers_and_sends_nothing() {
    let ca = TestCa::new("upstream CA");
    let sink = Sink::start().await;
    let mut relay = relay(&format!("smtp://{}", sink.addr()), "required", &ca).await;
    send(&relay).await;
    let reply = deferred(&relay).await;
    assert!(reply.to_lowercase().contains("tls"), "{reply}");
    assert!(sink.connections() >= 1, "the relay did connect");
    assert_eq!(sink.count(), 0, "nothing was sent in clear text");
    relay.stop().await;
}

#[tokio::test]
async fn required_tls_with_a_certificate_from_an_unknown_ca_defers() {
    let trusted = TestCa::new("the CA the relay trusts");
    let other = TestCa::new("some other CA");
    let sink = Sink::start_with(LOOPBACK.parse().expect("addr"), starttls(&other)).await;
    let mut relay = relay(&format!("smtp://{}", sink.addr()), "required", &trusted).await;
    send(&relay).await;
    let reply = deferred(&relay).await;
    assert!(reply.contains("connecting"), "{reply}");
    assert_eq!(sink.count(), 0, "nothing was sent");
    relay.stop().await;
}

#[tokio::test]
async fn required_tls_with_a_certificate_for_another_name_defers() {
    let ca = TestCa::new("upstream CA");
    let options = SinkOptions {
        starttls: Some(ca.server_config(&["mx.elsewhere.test"])),
        ..SinkOptions::default()
    };
    let sink = Sink::start_with(LOOPBACK.parse().expect("addr"), options).await;
    let mut relay = relay(&format!("smtp://{}", sink.addr()), "required", &ca).await;
    send(&relay).await;
    deferred(&relay).await;
    assert_eq!(sink.count(), 0, "nothing was sent");
    relay.stop().await;
}

/// Opportunistic means "TLS when the upstream offers it". Once STARTTLS
/// was offered and the certificate does not verify, the relay defers
/// rather than going back to clear text: falling back would let anyone on
/// the path downgrade every session (and expose upstream AUTH).
#[tokio::test]
async fn opportunistic_tls_with_a_bad_certificate_defers_without_clear_text() {
    let trusted = TestCa::new("the CA the relay trusts");
    let other = TestCa::new("some other CA");
    let sink = Sink::start_with(LOOPBACK.parse().expect("addr"), starttls(&other)).await;
    let mut relay = relay(
        &format!("smtp://{}", sink.addr()),
        "opportunistic",
        &trusted,
    )
    .await;
    send(&relay).await;
    deferred(&relay).await;
    assert_eq!(sink.count(), 0, "nothing was sent in clear text");
    relay.stop().await;
}

#[tokio::test]
async fn opportunistic_tls_without_starttls_delivers_in_clear() {
    let ca = TestCa::new("upstream CA");
    let sink = Sink::start().await;
    let mut relay = relay(&format!("smtp://{}", sink.addr()), "opportunistic", &ca).await;
    send(&relay).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(!got[0].tls);
    relay.stop().await;
}

/// A reply line sent right after `220` to STARTTLS, before the handshake
/// (a man in the middle's injection, CVE-2011-0411 style), must not be
/// taken as the answer to anything sent over TLS: every reply the relay
/// acts on comes from inside TLS.
#[tokio::test]
async fn replies_buffered_before_starttls_are_discarded() {
    let ca = TestCa::new("upstream CA");
    let options = SinkOptions {
        starttls: Some(ca.server_config(&["127.0.0.1"])),
        inject_after_starttls: Some("250 2.0.0 injected before the handshake\r\n"),
        ..SinkOptions::default()
    };
    let sink = Sink::start_with(LOOPBACK.parse().expect("addr"), options).await;
    let mut relay = relay(&format!("smtp://{}", sink.addr()), "required", &ca).await;
    send(&relay).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(got[0].tls);
    // Delivered rows leave the queue; a shifted reply would have left the
    // copy deferred (a 250 where 354 was expected) and the sink waiting.
    eventually("the delivery is done", || async {
        queue(&relay).await.is_empty()
    })
    .await;
    assert_eq!(sink.count(), 1);
    relay.stop().await;
}

/// A relay with upstream `tls` and AUTH credentials (`[upstream] username`,
/// `password_file`), upstream at `url`.
async fn relay_with_auth(url: &str, tls: &str) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("upstream.password"), "s3cret-upstream\n").expect("password");
    let text = config_text(dir.path(), url, "", "").replace(
        "tls = \"none\"",
        &format!(
            "tls = \"{tls}\"\nusername = \"relay\"\npassword_file = \"{}\"",
            dir.path().join("upstream.password").display()
        ),
    );
    TestRelay::start_with(dir, &text).await
}

fn auth_without_tls() -> SinkOptions {
    SinkOptions {
        auth: Some(("relay".into(), "s3cret-upstream".into())),
        ..SinkOptions::default()
    }
}

/// `opportunistic` against an upstream that offers AUTH but no STARTTLS
/// (or had it stripped): the password is never sent in clear; the copy is
/// deferred. With `tls = "none"`, the admin's explicit choice, it is.
#[tokio::test]
async fn opportunistic_tls_never_sends_the_password_in_clear() {
    let sink = Sink::start_with(LOOPBACK.parse().expect("addr"), auth_without_tls()).await;
    let mut relay = relay_with_auth(&format!("smtp://{}", sink.addr()), "opportunistic").await;
    send(&relay).await;
    let reply = deferred(&relay).await;
    assert!(reply.to_lowercase().contains("starttls"), "{reply}");
    assert_eq!(sink.count(), 0);
    relay.stop().await;

    let mut relay = relay_with_auth(&format!("smtp://{}", sink.addr()), "none").await;
    send(&relay).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(!got[0].tls);
    assert_eq!(got[0].auth_user.as_deref(), Some("relay"));
    relay.stop().await;
}
