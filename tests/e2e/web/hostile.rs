//! End to end: the HTTP listener against hostile clients. A per-IP rate
//! limit on the link pages and the API (`429` with `Retry-After`, other
//! addresses and `/healthz` unaffected), a client sending its headers one
//! byte at a time is cut after `[http] header_timeout`, and enumerated
//! tokens (well formed, random) change nothing and get exactly the answer
//! a tampered token gets. On SQLite and on PostgreSQL (see `common::backend`).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::both_stores;
use crate::common::relay::{TestRelay, config_text, message};
use crate::common::sink::Sink;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use consent_relay::consent::Action;
use consent_relay::token::Purpose;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A relay with `http_extra` added to `[http]`.
async fn start(http_extra: &str) -> (Sink, TestRelay) {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "").replace(
        "public_url = \"http://127.0.0.1:8080\"",
        &format!("public_url = \"http://127.0.0.1:8080\"\n{http_extra}"),
    );
    let relay = TestRelay::start_with(dir, &text).await;
    (sink, relay)
}

/// A client whose connections come from `from` (any 127/8 address is
/// loopback on Linux).
fn client_from(from: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from.parse::<IpAddr>().expect("ip"))
        .build()
        .expect("client")
}

const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

async fn one_click(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(ONE_CLICK)
        .send()
        .await
        .expect("request")
}

async fn over_the_rate_limit_gets_429_with_retry_after_and_only_that_address() {
    let (_sink, relay) = start("rate_limit = 1\nrate_limit_burst = 5").await;
    let me = client_from("127.0.0.1");
    let mut codes = Vec::new();
    for _ in 0..12 {
        let res = me
            .get(relay.url("/u/not-a-token"))
            .send()
            .await
            .expect("get");
        codes.push(res.status());
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = res
                .headers()
                .get("retry-after")
                .expect("Retry-After")
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!((1..=60).contains(&retry), "Retry-After: {retry}");
            let body = res.text().await.expect("body");
            assert!(body.contains("<html"), "an error page: {body}");
        }
    }
    assert_eq!(&codes[..5], &[StatusCode::BAD_REQUEST; 5], "{codes:?}");
    assert!(
        codes[5..]
            .iter()
            .all(|c| *c == StatusCode::TOO_MANY_REQUESTS),
        "{codes:?}"
    );
    // The same address on the other limited routes: one quota for all.
    for path in ["/p/x", "/o/x", "/api/v1/campaigns"] {
        let res = me.get(relay.url(path)).send().await.expect("get");
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert!(res.headers().contains_key("retry-after"), "{path}");
    }
    let api = me
        .get(relay.url("/api/v1/campaigns"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        api.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..]),
        "the API answers 429 in JSON"
    );
    // Not limited: liveness, from the same address.
    for _ in 0..20 {
        let res = me.get(relay.url("/healthz")).send().await.expect("get");
        assert_eq!(res.status(), StatusCode::OK);
    }
    // Another client address is not affected.
    let other = client_from("127.0.0.2");
    let res = other
        .get(relay.url("/u/not-a-token"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
both_stores!(over_the_rate_limit_gets_429_with_retry_after_and_only_that_address);

async fn a_one_click_over_the_limit_changes_nothing() {
    let (_sink, relay) = start("rate_limit = 1\nrate_limit_burst = 2").await;
    let email = "lim@example.net";
    relay
        .consent(email, "newsletter", Action::Grant, None)
        .await;
    let id = relay.subject_id(email).await;
    let me = client_from("127.0.0.1");
    for _ in 0..2 {
        me.get(relay.url("/healthz")).send().await.expect("get");
        me.get(relay.url("/u/not-a-token"))
            .send()
            .await
            .expect("get");
    }
    let token = relay.token(Purpose::Unsubscribe, &id, Some("newsletter"));
    let res = one_click(&me, &relay.url(&format!("/u/{token}"))).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = relay
        .send(&[email], &message("newsletter", "still subscribed"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
}
both_stores!(a_one_click_over_the_limit_changes_nothing);

async fn headers_sent_one_byte_at_a_time_are_cut_at_the_header_timeout() {
    let (_sink, relay) = start("header_timeout = \"1s\"\nrate_limit = 0").await;
    // A fast client is served.
    let res = client_from("127.0.0.1")
        .get(relay.url("/healthz"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::OK);

    let stream = tokio::net::TcpStream::connect(relay.http_addr)
        .await
        .expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: relay.test\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(200)
    );
    let closed = Arc::new(AtomicBool::new(false));
    let reader = {
        let closed = closed.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            let _ = rd.read_to_end(&mut got).await;
            closed.store(true, Ordering::SeqCst);
            got
        })
    };
    // 240 bytes at 20 ms each would take about 5 s: the server must cut
    // the connection long before the headers are complete.
    let mut sent = 0;
    for b in request.as_bytes() {
        if closed.load(Ordering::SeqCst) || wr.write_all(&[*b]).await.is_err() {
            break;
        }
        sent += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the server closed the connection")
        .expect("reader");
    assert!(
        sent < request.len(),
        "the whole request ({sent} bytes) was sent before the server cut it"
    );
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains(" 200 "),
        "a slow request was not served: {text}"
    );
}
both_stores!(headers_sent_one_byte_at_a_time_are_cut_at_the_header_timeout);

/// A well-formed unsubscribe token for the newsletter with a random
/// subject and a random MAC.
fn random_token(rng: &ring::rand::SystemRandom) -> String {
    use ring::rand::SecureRandom as _;
    let mut subject = [0u8; 16];
    let mut mac = [0u8; 16];
    rng.fill(&mut subject).expect("random");
    rng.fill(&mut mac).expect("random");
    let mut payload = vec![1u8, 1u8];
    payload.extend_from_slice(&subject);
    payload.extend_from_slice(b"newsletter");
    payload.extend_from_slice(&mac);
    format!("k1.{}", URL_SAFE_NO_PAD.encode(payload))
}

async fn enumerated_tokens_change_nothing_and_look_like_a_bad_token() {
    let (_sink, relay) = start("rate_limit = 0").await;
    let email = "enum@example.net";
    relay
        .consent(email, "newsletter", Action::Grant, None)
        .await;
    let id = relay.subject_id(email).await;
    let events_before = relay
        .store()
        .subject_consent(email)
        .await
        .expect("store")
        .map(|s| s.events.len());

    // The answer to a tampered token: the reference.
    let good = relay.token(Purpose::Unsubscribe, &id, Some("newsletter"));
    let mut tampered: Vec<char> = good.chars().collect();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let client = client_from("127.0.0.1");
    let reference = one_click(&client, &relay.url(&format!("/u/{tampered}"))).await;
    let (ref_status, ref_body) = (reference.status(), reference.text().await.expect("body"));
    assert!(ref_status.is_client_error(), "{ref_status}");
    let ref_get = client
        .get(relay.url(&format!("/u/{tampered}")))
        .send()
        .await
        .expect("get");
    let (ref_get_status, ref_get_body) = (ref_get.status(), ref_get.text().await.expect("body"));

    let rng = ring::rand::SystemRandom::new();
    for i in 0..200 {
        let token = random_token(&rng);
        let url = relay.url(&format!("/u/{token}"));
        let (status, body) = if i % 2 == 0 {
            let res = one_click(&client, &url).await;
            (res.status(), res.text().await.expect("body"))
        } else {
            let res = client.get(&url).send().await.expect("get");
            (res.status(), res.text().await.expect("body"))
        };
        if i % 2 == 0 {
            assert_eq!((status, &body), (ref_status, &ref_body), "{token}");
        } else {
            assert_eq!((status, &body), (ref_get_status, &ref_get_body), "{token}");
        }
    }
    let events_after = relay
        .store()
        .subject_consent(email)
        .await
        .expect("store")
        .map(|s| s.events.len());
    assert_eq!(events_before, events_after, "no consent event was added");
    let r = relay
        .send(&[email], &message("newsletter", "still subscribed"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
}
both_stores!(enumerated_tokens_change_nothing_and_look_like_a_bad_token);
