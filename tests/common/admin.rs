//! The admin API's fixtures: a relay whose config holds the SHA-256 of a
//! known bearer token and a double opt-in campaign, and a JSON client.

use std::path::Path;
use std::time::Duration;

use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;

use super::relay::{TestRelay, config_text};
use super::sink::Sink;

/// The bearer token the test configs accept.
pub const ADMIN_TOKEN: &str = "test-admin-token-5f1c9b7e";

/// A double opt-in campaign, added to the usual ones.
pub const DIGEST: &str = r#"
[[campaign]]
id = "digest"
label = "Weekly digest"
policy = "opt-in"
double_opt_in = true
"#;

/// Lowercase hex SHA-256 of `s`, as `admin_token_sha256` holds it.
pub fn sha256_hex(s: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The usual test config, plus the admin token's digest and [`DIGEST`].
pub fn admin_config(dir: &Path, upstream: &str) -> String {
    let public = "public_url = \"http://127.0.0.1:8080\"";
    let text = config_text(dir, upstream, "", "").replace(
        public,
        &format!(
            "{public}\nadmin_token_sha256 = [\"{}\"]",
            sha256_hex(ADMIN_TOKEN)
        ),
    );
    assert!(text.contains("admin_token_sha256"), "config_text changed");
    text + DIGEST
}

/// A relay with the admin API open to [`ADMIN_TOKEN`], sending to `sink`.
pub async fn start(sink: &Sink) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = admin_config(dir.path(), &format!("smtp://{}", sink.addr()));
    TestRelay::start_with(dir, &text).await
}

/// An answer: status, headers and the body as JSON (`Null` when empty).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// One API call; `token` goes in `Authorization: Bearer`.
pub async fn call(
    relay: &TestRelay,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Answer {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let mut req = client.request(method, relay.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/json").body(b);
    }
    let res = req.send().await.expect("API request");
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// A call with the right token.
pub async fn admin(relay: &TestRelay, method: Method, path: &str, body: Option<Value>) -> Answer {
    call(
        relay,
        method,
        path,
        Some(ADMIN_TOKEN),
        body.map(|b| b.to_string()),
    )
    .await
}

/// The mail the decision-log tests look up, on a relay of [`start`]: three
/// prospecting messages, to ann and bob (`<first@example.com>`), to ann and
/// to cat (both `<second@example.com>`), then the relay's own double opt-in
/// confirmation to dan (campaign `digest`). Their queue ids, in that order
/// (the confirmation's last).
pub async fn mail_to_look_up(relay: &TestRelay) -> [String; 4] {
    use super::relay::{message_with_id, queue_id_of};
    let mut ids = Vec::new();
    for (rcpts, message_id) in [
        (
            &["ann@example.net", "bob@example.net"][..],
            "<first@example.com>",
        ),
        (&["ann@example.net"][..], "<second@example.com>"),
        (&["cat@example.net"][..], "<second@example.com>"),
    ] {
        let reply = relay
            .send(rcpts, &message_with_id("prospecting", message_id, "x"))
            .await;
        ids.push(queue_id_of(&reply));
    }
    let a = admin(
        relay,
        Method::POST,
        "/api/v1/consent",
        Some(serde_json::json!({"email": "dan@example.net", "campaign": "digest", "action": "grant"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let confirmation = relay
        .store()
        .decisions(&consent_relay::store::DecisionFilter {
            recipient: Some("dan@example.net".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("decisions");
    assert_eq!(confirmation.len(), 1);
    ids.push(confirmation[0].message_id.clone());
    ids.try_into().expect("four queue ids")
}
