//! What comes back (SPEC "What comes back: bounces and complaints"), end
//! to end: the three doors (`smtp`, `cli`, `api`), a report processed once
//! whichever door and whatever crash (`once`), and a real Postfix as the
//! upstream writing its own DSN back to the relay (`postfix`).

mod api;
mod cli;
mod once;
mod postfix;
mod smtp;

use std::path::Path;

use consent_relay::config::Config;
use consent_relay::token::bounce;
use sqlx::Row as _;

use crate::common::admin::admin_config;
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;

/// The bounce domain and the complaints address of every config here.
pub const BOUNCES: &str = "bounces.test";
pub const FBL: &str = "fbl@relay.test";

/// The admin config (API token) with `[bounces]` and `[complaints]`.
pub fn feedback_config(dir: &Path, upstream: &str, bounces_extra: &str) -> String {
    admin_config(dir, upstream)
        + &format!(
            "\n[bounces]\ndomain = \"{BOUNCES}\"\n{bounces_extra}\n\n[complaints]\naddress = \"{FBL}\"\n"
        )
}

/// A relay with [`feedback_config`], sending to `sink`.
pub async fn start(sink: &Sink, bounces_extra: &str) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = feedback_config(
        dir.path(),
        &format!("smtp://{}", sink.addr()),
        bounces_extra,
    );
    TestRelay::start_with(dir, &text).await
}

/// Sends one `prospecting` (opt-out) message to `rcpt` and waits for its
/// copy; the delivery's id.
pub async fn delivered_copy(relay: &TestRelay, sink: &Sink, rcpt: &str) -> i64 {
    let before = sink.count();
    let reply = relay.send(&[rcpt], &message("prospecting", "Hello")).await;
    assert!(reply.starts_with("250"), "{reply}");
    sink.wait_for(before + 1, std::time::Duration::from_secs(10))
        .await;
    let mut c = crate::common::backend::connect(relay.dir.path()).await;
    sqlx::query("SELECT id FROM deliveries WHERE recipient = $1 ORDER BY id DESC")
        .bind(crate::common::relay::canonical(rcpt))
        .fetch_one(&mut c)
        .await
        .expect("the copy's delivery")
        .get::<i64, _>(0)
}

/// The return path of a copy: `b-TOKEN@bounces.test`.
pub fn return_path(config: &Config, delivery: i64) -> String {
    let local = bounce::local_part(&config.signing, delivery).expect("sign");
    format!("{local}@{BOUNCES}")
}

/// A DSN (RFC 3464, `crate::bounces::dsn`) for `rcpt` with `status`,
/// returning the copy's header with the relay's delivery header.
pub fn dsn(config: &Config, delivery: i64, rcpt: &str, status: &str) -> String {
    let local = bounce::local_part(&config.signing, delivery).expect("sign");
    let raw = crate::bounces::dsn(
        rcpt,
        "failed",
        status,
        &format!("550 {status} <{rcpt}>: user unknown"),
        &format!("X-Consent-Relay-Delivery: {local}\r\n"),
    );
    String::from_utf8(raw).expect("ASCII")
}

/// A message that is no report at all.
pub const NOT_A_REPORT: &str = "From: someone@example.org\r\nTo: x@bounces.test\r\n\
     Subject: lunch?\r\n\r\nAre you free on Friday?\r\n";

/// One number from the store of the test whose directory is `dir`.
pub async fn count(dir: &Path, sql: &'static str) -> i64 {
    let mut c = crate::common::backend::connect(dir).await;
    sqlx::query(sql)
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get::<i64, _>(0)
}
