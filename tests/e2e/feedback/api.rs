//! `POST /api/v1/feedback`: the raw message as the body; 202 stored (with
//! what it changed), 422 not a report, 413 over `[bounces]
//! max_report_size`, 401 without the bearer token.

use reqwest::StatusCode;

use super::{NOT_A_REPORT, count, delivered_copy, dsn};
use crate::both_stores;
use crate::common::admin::{ADMIN_TOKEN, Answer};
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;

/// POSTs `raw` as `message/rfc822` with `token`.
pub async fn post(relay: &TestRelay, token: Option<&str>, raw: &str) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client
        .post(relay.url("/api/v1/feedback"))
        .header("Content-Type", "message/rfc822")
        .body(raw.to_owned());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.expect("API request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    }
}

async fn a_report_posted_is_202_and_suppresses_the_person() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "max_report_size = 4096").await;
    let id = delivered_copy(&relay, &sink, "ann@example.net").await;
    let raw = dsn(&relay.config, id, "ann@example.net", "5.1.1");
    let a = post(&relay, None, &raw).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(relay.dir.path(), "SELECT count(*) FROM feedback_reports").await,
        0
    );
    let a = post(&relay, Some(ADMIN_TOKEN), &raw).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["kind"], "bounce", "{}", a.body);
    assert_eq!(a.body["duplicate"], false);
    assert!(a.body["id"].as_i64().is_some(), "{}", a.body);
    assert!(
        a.body["result"].is_string() && a.body["detail"].is_string(),
        "{}",
        a.body
    );
    let again = relay
        .send(&["ann@example.net"], &message("prospecting", "Again"))
        .await;
    assert!(again.contains("0 delivered, 1 suppressed"), "{again}");
    let a = post(&relay, Some(ADMIN_TOKEN), NOT_A_REPORT).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert_eq!(a.body["error"], "not-a-report");
    let big = raw.replace("I could not deliver your message.\r\n", &"x".repeat(5000));
    let a = post(&relay, Some(ADMIN_TOKEN), &big).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        count(relay.dir.path(), "SELECT count(*) FROM feedback_reports").await,
        1
    );
}
both_stores!(a_report_posted_is_202_and_suppresses_the_person);
