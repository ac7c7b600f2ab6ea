//! End to end: `Idempotency-Key` on `POST /api/v1/consent`, over real HTTP
//! (reqwest) against the relay started in-process, on SQLite and on
//! PostgreSQL (see `common::backend`).
//! A retry gets the first answer and records nothing; another body under the
//! same key is refused; concurrent twins make one event. A double opt-in
//! request and its confirmation mail are stored together or not at all.

use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::admin::{self, ADMIN_TOKEN};
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn post(relay: &TestRelay, key: Option<HeaderValue>, body: &str) -> Answer {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut req = client
        .post(relay.url("/api/v1/consent"))
        .bearer_auth(ADMIN_TOKEN)
        .header("Content-Type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let res = req.send().await.expect("POST");
    Answer {
        status: res.status(),
        headers: res.headers().clone(),
        text: res.text().await.unwrap(),
    }
}

fn key(k: &str) -> Option<HeaderValue> {
    Some(HeaderValue::from_str(k).unwrap())
}

async fn event_count(relay: &TestRelay, email: &str) -> usize {
    relay
        .store()
        .subject_consent(email)
        .await
        .unwrap()
        .map_or(0, |s| s.events.len())
}

async fn a_retry_replays_the_first_answer_and_records_nothing() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    let body = json!({
        "email": "ann@example.com", "campaign": "newsletter", "action": "grant",
        "source": "form", "evidence": "signup v3", "ip": "192.0.2.7",
    })
    .to_string();
    let first = post(&relay, key("order-1234"), &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert!(!first.headers.contains_key("idempotent-replayed"));
    assert_eq!(first.json()["evidence"], "signup v3");

    // The same request, byte for byte and with other spacing and member order.
    let reordered = r#"{ "action": "grant", "ip": "192.0.2.7", "evidence": "signup v3",
        "source": "form", "campaign": "newsletter", "email": "ann@example.com" }"#;
    for b in [body.as_str(), reordered] {
        let again = post(&relay, key("order-1234"), b).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.text, first.text);
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.headers["content-type"], "application/json");
    }
    assert_eq!(event_count(&relay, "ann@example.com").await, 1);

    // Another body under the same key: refused, nothing recorded.
    let other =
        json!({ "email": "ann@example.com", "campaign": "newsletter", "action": "withdraw" });
    let refused = post(&relay, key("order-1234"), &other.to_string()).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = refused.json();
    assert_eq!(e["error"], "idempotency-key-reused");
    assert_eq!(e["field"], "Idempotency-Key");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("used within 24 h with a different request body"),
        "{e}"
    );
    assert_eq!(event_count(&relay, "ann@example.com").await, 1);

    // Another key, or none: a new event each time.
    let b = post(&relay, key("order-1235"), &body).await;
    assert_eq!(b.status, StatusCode::CREATED);
    assert_ne!(b.json()["id"], first.json()["id"]);
    assert_eq!(post(&relay, None, &body).await.status, StatusCode::CREATED);
    assert_eq!(event_count(&relay, "ann@example.com").await, 3);

    // A key older than 24 h is forgotten: the key can be used again.
    let mut db = common::backend::connect(relay.dir.path()).await;
    sqlx::query(
        "UPDATE idempotency_keys SET created_at = created_at - 86400001 WHERE key = 'order-1234'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let reused = post(&relay, key("order-1234"), &other.to_string()).await;
    assert_eq!(reused.status, StatusCode::CREATED, "{}", reused.text);
    assert_eq!(reused.json()["action"], "withdraw");
    assert_eq!(event_count(&relay, "ann@example.com").await, 4);

    // Erasure removes the stored answers (they hold the proof) with the rest.
    let keys = "SELECT COUNT(*) FROM idempotency_keys";
    let held: i64 = sqlx::query_scalar(keys).fetch_one(&mut db).await.unwrap();
    assert_eq!(held, 2);
    consent_relay::rights::erase(
        relay.store(),
        &relay.config,
        &consent_relay::consent::identity::Identity::of("ann@example.com").unwrap(),
        &consent_relay::store::Actor::new("dpo", consent_relay::store::Via::Api),
    )
    .await
    .unwrap()
    .expect("erased");
    let held: i64 = sqlx::query_scalar(keys).fetch_one(&mut db).await.unwrap();
    assert_eq!(held, 0);
}
both_stores!(a_retry_replays_the_first_answer_and_records_nothing);

async fn bad_keys_get_400_naming_the_header() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    let body = json!({ "email": "bo@example.com", "campaign": "newsletter", "action": "grant" })
        .to_string();
    let long = "k".repeat(256);
    for k in [
        HeaderValue::from_str(&long).unwrap(),
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        HeaderValue::from_static(""),
    ] {
        let a = post(&relay, Some(k.clone()), &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{k:?}");
        let e = a.json();
        assert_eq!(e["field"], "Idempotency-Key", "{e}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .contains("send 1 to 255 printable ASCII characters"),
            "{e}"
        );
    }
    assert_eq!(event_count(&relay, "bo@example.com").await, 0);
    let a = post(&relay, key(&"k".repeat(255)), &body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
}
both_stores!(bad_keys_get_400_naming_the_header);

async fn concurrent_twins_make_one_event_and_one_confirmation_mail() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    // `digest` is double opt-in: 202, and the relay mails the link once.
    let body =
        json!({ "email": "cy@example.com", "campaign": "digest", "action": "grant" }).to_string();
    let answers = futures_join(&relay, &body, 12).await;
    for a in &answers {
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
        assert_eq!(a.text, answers[0].text);
    }
    let replays = answers
        .iter()
        .filter(|a| a.headers.contains_key("idempotent-replayed"))
        .count();
    assert_eq!(replays, answers.len() - 1);
    assert_eq!(event_count(&relay, "cy@example.com").await, 1);
    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail[0].rcpt_to, ["cy@example.com"]);
    // A later retry sends no second confirmation either.
    assert_eq!(
        post(&relay, key("signup-cy"), &body).await.status,
        StatusCode::ACCEPTED
    );
    // Once the queue is empty, every mail queued has reached the sink.
    common::relay::eventually("the queue is empty", || async {
        relay.store().queue(10).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(sink.count(), 1);
}
both_stores!(concurrent_twins_make_one_event_and_one_confirmation_mail);

/// `n` identical requests with the key `signup-cy`, all in flight at once.
async fn futures_join(relay: &TestRelay, body: &str, n: usize) -> Vec<Answer> {
    let mut tasks = tokio::task::JoinSet::new();
    let url = relay.url("");
    for _ in 0..n {
        let (body, url) = (body.to_owned(), url.clone());
        tasks.spawn(async move {
            let res = reqwest::Client::new()
                .post(format!("{url}/api/v1/consent"))
                .bearer_auth(ADMIN_TOKEN)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", "signup-cy")
                .body(body)
                .send()
                .await
                .expect("POST");
            Answer {
                status: res.status(),
                headers: res.headers().clone(),
                text: res.text().await.unwrap(),
            }
        });
    }
    let mut out = Vec::new();
    while let Some(a) = tasks.join_next().await {
        out.push(a.unwrap());
    }
    out
}

/// Makes the store refuse to queue any relay-written notice (the double
/// opt-in mail), as a full disk would at that moment; `false` lifts it.
async fn refuse_notices(relay: &TestRelay, refuse: bool) {
    let mut db = common::backend::connect(relay.dir.path()).await;
    let statements: &[&str] = match (common::backend::on_postgres(), refuse) {
        (false, true) => &["CREATE TRIGGER refuse_notice BEFORE INSERT ON messages \
             WHEN NEW.kind = 'notice' BEGIN SELECT RAISE(ABORT, 'no space left on device'); END"],
        (false, false) => &["DROP TRIGGER refuse_notice"],
        (true, true) => &[
            "CREATE FUNCTION refuse_notice() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.kind = 'notice' THEN RAISE EXCEPTION 'no space left on device'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER refuse_notice BEFORE INSERT ON messages \
             FOR EACH ROW EXECUTE FUNCTION refuse_notice()",
        ],
        (true, false) => &["DROP TRIGGER refuse_notice ON messages"],
    };
    for s in statements {
        sqlx::query(*s).execute(&mut db).await.expect(s);
    }
    sqlx::Connection::close(db).await.unwrap();
}

/// The double opt-in request and its confirmation mail are one write: when
/// the mail cannot be queued, the request is not recorded either (500), so
/// a retry with the same key records both and the person gets the mail —
/// never a replayed 202 with no mail ever sent.
async fn a_request_whose_mail_cannot_be_queued_is_not_recorded() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    let body =
        json!({ "email": "dee@example.com", "campaign": "digest", "action": "grant" }).to_string();
    refuse_notices(&relay, true).await;
    for k in [key("signup-dee"), None] {
        let a = post(&relay, k, &body).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.text);
    }
    assert_eq!(event_count(&relay, "dee@example.com").await, 0);
    assert!(relay.store().queue(10).await.unwrap().is_empty());

    refuse_notices(&relay, false).await;
    let a = post(&relay, key("signup-dee"), &body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.text);
    assert!(!a.headers.contains_key("idempotent-replayed"));
    assert_eq!(a.json()["action"], "request");
    assert_eq!(event_count(&relay, "dee@example.com").await, 1);
    let mail = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mail[0].rcpt_to, ["dee@example.com"]);
    // The retry of that one is a replay, with no second mail.
    let again = post(&relay, key("signup-dee"), &body).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert!(again.headers.contains_key("idempotent-replayed"));
    common::relay::eventually("the queue is empty", || async {
        relay.store().queue(10).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(sink.count(), 1);
}
both_stores!(a_request_whose_mail_cannot_be_queued_is_not_recorded);

/// A follow-up mail that cannot be built (an error, or a panic inside the
/// store's write) fails that write alone: no event is stored, and the
/// store goes on taking writes.
async fn a_follow_up_that_fails_or_panics_stores_nothing_and_the_store_goes_on() {
    use common::relay::{admin_event, test_subject};
    use consent_relay::consent::{Action, Source};
    use consent_relay::store::{FollowUp, NewConsentEvent, Store, StoreError};
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(&common::backend::store_config(dir.path(), false), false)
        .await
        .expect("store");
    let event = |n: u32| NewConsentEvent {
        source: Source::Api,
        ..admin_event(
            &format!("p{n}@example.com"),
            test_subject(n),
            "newsletter",
            Action::Request,
            consent_relay::time::now_ms(),
        )
    };
    let failing: FollowUp = Arc::new(|_| Err("no template".into()));
    let panicking: FollowUp = Arc::new(|_| panic!("a bug while building the mail"));
    for (n, follow_up) in [(1, failing), (2, panicking)] {
        let e = store
            .append_consent_event_then(event(n), Some(follow_up))
            .await
            .expect_err("the write fails");
        assert!(matches!(e, StoreError::FollowUp(_)), "{e}");
        let held = store
            .subject_consent(&format!("p{n}@example.com"))
            .await
            .expect("read");
        assert!(held.is_none(), "p{n}: {held:?}");
    }
    // The writer is still there.
    let e = store
        .append_consent_event(event(3))
        .await
        .expect("a later write");
    assert_eq!(e.subject_id, "subject-3");
    assert!(store.queue(10).await.expect("queue").is_empty());
    store.close().await;
}
both_stores!(a_follow_up_that_fails_or_panics_stores_nothing_and_the_store_goes_on);
