//! End to end: the admin API under `/api/v1` over real HTTP (reqwest)
//! against the relay started in-process, with a real SQLite file and a real
//! SMTP sink. What a consent POST records is proved on the next message.

use crate::both_stores;
use crate::common::admin::{self, ADMIN_TOKEN, admin, call};
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn start() -> (Sink, TestRelay) {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    (sink, relay)
}

fn consent(email: &str, campaign: &str, action: &str) -> Value {
    json!({ "email": email, "campaign": campaign, "action": action })
}

async fn every_route_needs_the_right_bearer_token() {
    let (_sink, relay) = start().await;
    let body = consent("ann@example.com", "newsletter", "grant").to_string();
    let routes: [(Method, &str, Option<String>); 7] = [
        (Method::POST, "/api/v1/consent", Some(body.clone())),
        (
            Method::POST,
            "/api/v1/feedback",
            Some("Subject: x\r\n\r\nx\r\n".into()),
        ),
        (Method::GET, "/api/v1/subjects/ann@example.com", None),
        (Method::DELETE, "/api/v1/subjects/ann@example.com", None),
        (Method::GET, "/api/v1/decisions", None),
        (Method::GET, "/api/v1/campaigns", None),
        (Method::GET, "/api/v1/nothing-here", None),
    ];
    let mut refusals = Vec::new();
    for (method, path, b) in &routes {
        for token in [None, Some("wrong-token"), Some("")] {
            let a = call(&relay, method.clone(), path, token, b.clone()).await;
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} {token:?}"
            );
            assert_eq!(
                a.headers["www-authenticate"], "Bearer realm=\"consent-relay\"",
                "{method} {path}"
            );
            refusals.push(a.body);
        }
    }
    // Never a hint which part was wrong: every refusal is the same.
    assert!(refusals.iter().all(|b| *b == refusals[0]), "{refusals:?}");
    assert_eq!(refusals[0]["error"], "unauthorized");
    // A Basic header with the right secret is still not a bearer token.
    let res = reqwest::Client::new()
        .get(relay.url("/api/v1/campaigns"))
        .basic_auth(ADMIN_TOKEN, Some(""))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // The right token: each route answers for real (in an order where the
    // subject exists for the reads and is gone for the last one).
    let expected = [
        StatusCode::CREATED,
        // A message, but no report: read for real and refused.
        StatusCode::UNPROCESSABLE_ENTITY,
        StatusCode::OK,
        StatusCode::NO_CONTENT,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::NOT_FOUND,
    ];
    for ((method, path, b), want) in routes.iter().zip(expected) {
        let a = call(&relay, method.clone(), path, Some(ADMIN_TOKEN), b.clone()).await;
        assert_eq!(a.status, want, "{method} {path}: {:?}", a.body);
        assert_eq!(a.headers["cache-control"], "no-store");
    }
    let a = admin(&relay, Method::PUT, "/api/v1/campaigns", None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.body["error"], "method-not-allowed");
}
both_stores!(every_route_needs_the_right_bearer_token);

async fn bad_json_gets_400_naming_the_field() {
    let (_sink, relay) = start().await;
    let cases: [(Value, &str, &str); 7] = [
        (
            consent("ann@example.com", "newsletter", "grnat"),
            "action",
            "grnat",
        ),
        (
            json!({"email": 5, "campaign": "newsletter", "action": "grant"}),
            "email",
            "integer",
        ),
        (
            consent("ann@example.com", "nope", "grant"),
            "campaign",
            "not a configured campaign",
        ),
        (
            consent("ann@example.com", "gone", "grant"),
            "campaign",
            "not a configured campaign",
        ),
        (
            consent("ann@example.com", "*", "grant"),
            "campaign",
            "withdraw only",
        ),
        (
            json!({"email": "ann@example.com", "campaign": "newsletter", "action": "grant", "source": "web"}),
            "source",
            "one-click",
        ),
        (
            json!({"email": "ann@example.com", "campaign": "newsletter", "action": "grant", "at": "2999-01-01T00:00:00Z"}),
            "at",
            "future",
        ),
    ];
    for (body, field, words) in cases {
        let a = admin(&relay, Method::POST, "/api/v1/consent", Some(body.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.body["field"], field, "{body}: {}", a.body);
        let m = a.body["message"].as_str().unwrap();
        assert!(
            m.starts_with(&format!("{field}: ")) && m.contains(words),
            "{m}"
        );
    }
    // A missing or unknown field is named in the message.
    let a = admin(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(json!({"email": "ann@example.com", "action": "grant"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body["message"].as_str().unwrap().contains("`campaign`"),
        "{}",
        a.body
    );
    let mut typo = consent("ann@example.com", "newsletter", "grant");
    typo["evidense"] = json!("form v2");
    let a = admin(&relay, Method::POST, "/api/v1/consent", Some(typo)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body["message"].as_str().unwrap().contains("`evidense`"),
        "{}",
        a.body
    );
    // Not JSON at all.
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(ADMIN_TOKEN),
        Some("{\"email\":".into()),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"], "bad-request");
    // Nothing was recorded by any of these.
    let a = admin(
        &relay,
        Method::GET,
        "/api/v1/subjects/ann@example.com",
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.body["error"], "not-found");
}
both_stores!(bad_json_gets_400_naming_the_field);

async fn oversize_body_gets_413() {
    let (_sink, relay) = start().await;
    let mut body = consent("ann@example.com", "newsletter", "grant");
    body["evidence"] = json!("x".repeat(70 * 1024));
    let a = admin(&relay, Method::POST, "/api/v1/consent", Some(body.clone())).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.body["error"], "too-large");
    // Without the token it is refused before the body matters.
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/consent",
        None,
        Some(body.to_string()),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Under the limit, generous evidence is kept.
    body["evidence"] = json!("x".repeat(60 * 1024));
    let a = admin(&relay, Method::POST, "/api/v1/consent", Some(body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
}
both_stores!(oversize_body_gets_413);

async fn consent_posted_decides_the_next_message() {
    let (sink, relay) = start().await;
    let news = message("newsletter", "hello");
    let r = relay.send(&["ann@example.com"], &news).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");

    let grant = json!({
        "email": " <Ann@Example.com>", "campaign": "newsletter", "action": "grant",
        "source": "form", "evidence": "signup form v3", "ip": "2001:db8::1",
        "user_agent": "Mozilla/5.0", "at": "2026-11-01T09:00:00+01:00",
    });
    let a = admin(&relay, Method::POST, "/api/v1/consent", Some(grant)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let e = &a.body;
    assert_eq!(
        (
            &e["action"],
            &e["campaign"],
            &e["source"],
            &e["ip"],
            &e["user_agent"],
            &e["evidence"]
        ),
        (
            &json!("grant"),
            &json!("newsletter"),
            &json!("form"),
            &json!("2001:db8::1"),
            &json!("Mozilla/5.0"),
            &json!("signup form v3")
        )
    );
    assert_eq!(e["at"], "2026-11-01T08:00:00.000Z");
    let r = relay.send(&["ann@example.com"], &news).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, std::time::Duration::from_secs(10)).await;

    let a = admin(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(consent("ann@example.com", "*", "withdraw")),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["source"], "api");
    let r = relay.send(&["ann@example.com"], &news).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");

    // Double opt-in: a grant is recorded as a request, answered 202, and
    // does not let mail through yet.
    let a = admin(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(consent("bob@example.com", "digest", "grant")),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["action"], "request");
    let r = relay
        .send(&["bob@example.com"], &message("digest", "weekly"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");

    // The access document holds all of it.
    let a = admin(
        &relay,
        Method::GET,
        "/api/v1/subjects/ANN@example.com",
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let d = &a.body;
    assert_eq!(d["subject"]["address"], "ann@example.com");
    let actions: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["grant", "withdraw"]);
    assert_eq!(d["events"][0]["ip"], "2001:db8::1");
    let states: Vec<(&str, &str)> = d["consent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["campaign"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [("*", "withdrawn"), ("newsletter", "granted")]);
    let reasons: Vec<&str> = d["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["no-consent", "granted", "unsubscribed-all"]);
    assert_eq!(d["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(d["deliveries"][0]["campaign"], "newsletter");

    let a = admin(
        &relay,
        Method::GET,
        "/api/v1/decisions?recipient=bob%40example.com",
        None,
    )
    .await;
    assert_eq!(a.body["decisions"][0]["reason"], "pending-confirmation");
    assert_eq!(a.body["next_cursor"], Value::Null);
}
both_stores!(consent_posted_decides_the_next_message);

async fn decisions_are_listed_page_by_page_with_a_cursor_and_bad_queries_get_400() {
    let (_sink, relay) = start().await;
    let rcpts: Vec<String> = (0..5).map(|i| format!("p{i}@example.com")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let r = relay.send(&rcpts, &message("prospecting", "offer")).await;
    assert!(r.contains("(5 delivered, 0 suppressed)"), "{r}");
    relay
        .send(&["x@example.com"], &message("newsletter", "n"))
        .await;

    let mut seen = Vec::new();
    let mut path = "/api/v1/decisions?campaign=prospecting&limit=2".to_owned();
    let mut pages = 0;
    loop {
        let a = admin(&relay, Method::GET, &path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        pages += 1;
        for d in a.body["decisions"].as_array().unwrap() {
            assert_eq!(d["campaign"], "prospecting");
            seen.push(d["recipient"].as_str().unwrap().to_owned());
        }
        match a.body["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/decisions?campaign=prospecting&limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, rcpts);

    let a = admin(&relay, Method::GET, "/api/v1/decisions", None).await;
    assert_eq!(a.body["decisions"].as_array().unwrap().len(), 6);
    let a = admin(
        &relay,
        Method::GET,
        "/api/v1/decisions?since=2999-01-01",
        None,
    )
    .await;
    assert_eq!(a.body["decisions"], json!([]));
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=abc", "cursor"),
        ("since=soon", "since"),
        ("recipent=a", "recipent"),
        ("queue_id=abc", "queue_id"),
        ("queue_id=", "queue_id"),
        ("message_id=", "message_id"),
        ("message_id=%3Ca%40example.com", "message_id"),
        ("message_id=a%20b%40example.com", "message_id"),
        ("order=sideways", "order"),
        ("order=newest&cursor=x", "cursor"),
    ] {
        let a = admin(
            &relay,
            Method::GET,
            &format!("/api/v1/decisions?{query}"),
            None,
        )
        .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(a.body["field"], field, "{query}");
    }
}
both_stores!(decisions_are_listed_page_by_page_with_a_cursor_and_bad_queries_get_400);

async fn campaigns_are_listed_with_their_policies() {
    let (_sink, relay) = start().await;
    let a = admin(&relay, Method::GET, "/api/v1/campaigns", None).await;
    assert_eq!(a.status, StatusCode::OK);
    let list = a.body["campaigns"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "newsletter",
            "prospecting",
            "invoices",
            "old",
            "gone",
            "digest"
        ]
    );
    assert_eq!(
        list[0],
        json!({"id": "newsletter", "label": "Newsletter", "policy": "opt-in", "state": "active",
               "order": list[0]["order"], "list_id": "newsletter.example.com",
               "double_opt_in": false, "consent_max_age_days": 395})
    );
    assert_eq!(
        (&list[2]["policy"], &list[3]["state"], &list[4]["state"]),
        (&json!("mandatory"), &json!("inactive"), &json!("deleted"))
    );
    assert_eq!(list[5]["double_opt_in"], true);
}
both_stores!(campaigns_are_listed_with_their_policies);

/// Double opt-in end to end: the API's grant is a request (202), the relay
/// mails the opt-in link itself, `GET` on it changes nothing, `POST`
/// confirms, and only then is the campaign's mail delivered.
async fn double_opt_in_mails_the_link_and_waits_for_the_click() {
    let (sink, relay) = start().await;
    let a = admin(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(consent("Bob@Example.com", "digest", "grant")),
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(a.body["action"], "request");

    let mail = sink.wait_for(1, std::time::Duration::from_secs(10)).await;
    // To the address as it was written (the record is bob@example.com's).
    assert_eq!(mail[0].rcpt_to, ["Bob@Example.com"]);
    assert_eq!(mail[0].mail_from, "");
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail[0].data)
        .expect("a message");
    assert_eq!(parsed.subject(), Some("Please confirm: Weekly digest"));
    let text = parsed.body_text(0).expect("a text body").into_owned();
    let start = text
        .find("http://127.0.0.1:8080/o/")
        .expect("the opt-in link");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let path = link.trim_start_matches("http://127.0.0.1:8080");

    let digest = message("digest", "this week");
    let r = relay.send(&["bob@example.com"], &digest).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");

    let client = reqwest::Client::new();
    let page = client.get(relay.url(path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Weekly digest"));
    let r = relay.send(&["bob@example.com"], &digest).await;
    assert!(
        r.contains("(0 delivered, 1 suppressed)"),
        "GET changed consent: {r}"
    );

    let res = client
        .post(relay.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("confirm=1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let r = relay.send(&["bob@example.com"], &digest).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");

    let a = admin(
        &relay,
        Method::GET,
        "/api/v1/subjects/bob@example.com",
        None,
    )
    .await;
    let actions: Vec<&str> = a.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["request", "confirm"]);
    let reasons: Vec<&str> = a.body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "pending-confirmation",
            "pending-confirmation",
            "pending-confirmation",
            "granted"
        ]
    );
}
both_stores!(double_opt_in_mails_the_link_and_waits_for_the_click);
