//! End to end: who a person is (SPEC "Who a person is"). An objection
//! recorded under one spelling of an address is honoured under every other
//! spelling of the same mailbox (punycode, decomposed Unicode, full-width,
//! a final dot, quotes), through the real SMTP listener; the API shows one
//! subject for them all and refuses what SMTP refuses, with 422; the copy
//! goes upstream as the client wrote the address.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::both_stores;
use crate::common::admin::{self, admin};
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;

/// The pairs of the issue: withdrawn under the first, mailed to the second.
const SPELLINGS: &[(&str, &str)] = &[
    ("zoé@exämple.net", "zoé@xn--exmple-cua.net"),
    ("zoé1@exämple.net", "zoe\u{301}1@exa\u{308}mple.net"),
    ("zoé2@exämple.net", "ｚｏé2@exämple.net"),
    ("zoé3@xn--exmple-cua.net", "ZOÉ3@EXÄMPLE.NET"),
    ("ann@example.net", "ann@example.net."),
    ("bob@example.net", "\"bob\"@example.net"),
    ("\"carol\"@example.net", "carol@example.net"),
    ("dave@example.net.", "Dave@Example.NET"),
];

async fn post_consent(relay: &TestRelay, email: &str, action: &str) -> admin::Answer {
    admin(
        relay,
        Method::POST,
        "/api/v1/consent",
        Some(json!({ "email": email, "campaign": "prospecting", "action": action })),
    )
    .await
}

/// Sends one `prospecting` message with SMTPUTF8; the reply to the dot.
async fn send(relay: &TestRelay, rcpts: &[&str]) -> String {
    relay
        .send_with(
            "MAIL FROM:<crm@example.com> SMTPUTF8",
            rcpts,
            &message("prospecting", "Hello"),
        )
        .await
}

async fn a_withdrawal_holds_under_every_spelling_of_the_address() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    for (withdrawn, mailed) in SPELLINGS {
        let a = post_consent(&relay, withdrawn, "withdraw").await;
        assert_eq!(a.status, 201, "{withdrawn}: {}", a.body);
        let r = send(&relay, &[mailed, "control@example.net"]).await;
        assert!(
            r.contains("(1 delivered, 1 suppressed)"),
            "withdrawn as {withdrawn:?}, mailed as {mailed:?}: {r}"
        );
    }
    let got = sink
        .wait_for(SPELLINGS.len(), Duration::from_secs(10))
        .await;
    assert!(
        got.iter().all(|m| m.rcpt_to == ["control@example.net"]),
        "{:?}",
        got.iter().map(|m| &m.rcpt_to).collect::<Vec<_>>()
    );
}
both_stores!(a_withdrawal_holds_under_every_spelling_of_the_address);

async fn the_api_shows_one_subject_for_every_spelling() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    let spellings = [
        "zoé@exämple.net",
        "zoé@xn--exmple-cua.net",
        "zoe\u{301}@exa\u{308}mple.net",
        "ｚｏé@exämple.net",
        "\"zoé\"@exämple.net.",
    ];
    let mut subjects = Vec::new();
    for s in spellings {
        let a = post_consent(&relay, s, "withdraw").await;
        assert_eq!(a.status, 201, "{s}: {}", a.body);
        subjects.push(a.body["subject_id"].clone());
    }
    assert!(subjects.iter().all(|s| *s == subjects[0]), "{subjects:?}");
    for s in spellings {
        let a = admin(&relay, Method::GET, &format!("/api/v1/subjects/{s}"), None).await;
        assert_eq!(a.status, 200, "{s}: {}", a.body);
        assert_eq!(a.body["subject"]["id"], subjects[0], "{s}");
        assert_eq!(a.body["subject"]["address"], "zoé@exämple.net", "{s}");
        assert_eq!(
            a.body["events"].as_array().map(Vec::len),
            Some(spellings.len()),
            "{s}"
        );
    }
}
both_stores!(the_api_shows_one_subject_for_every_spelling);

async fn the_copy_goes_upstream_as_the_client_wrote_the_address() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    // Two spellings of one mailbox in one envelope: one decision, one copy,
    // to the first spelling.
    let r = send(
        &relay,
        &[
            "Bob.Smith@Example.NET",
            "bob.smith@example.net",
            "\"Ann\"@Example.NET",
        ],
    )
    .await;
    assert!(r.contains("(2 delivered, 0 suppressed)"), "{r}");
    let mut got: Vec<Vec<String>> = sink
        .wait_for(2, Duration::from_secs(10))
        .await
        .into_iter()
        .map(|m| m.rcpt_to)
        .collect();
    got.sort();
    assert_eq!(got, [["Ann@Example.NET"], ["Bob.Smith@Example.NET"]]);
    // The record is the identity's; access shows where the copy went.
    let bob = consent_relay::consent::identity::Identity::of("BOB.smith@example.net").unwrap();
    let doc = consent_relay::rights::export(
        relay.store(),
        &relay.config,
        &bob,
        &consent_relay::store::Actor::new("dpo", consent_relay::store::Via::Cli),
    )
    .await
    .expect("store")
    .expect("bob is known");
    assert_eq!(doc["subject"]["address"], "bob.smith@example.net", "{doc}");
    assert_eq!(
        doc["deliveries"][0]["sent_to"], "Bob.Smith@Example.NET",
        "{doc}"
    );
    assert_eq!(doc["decisions"].as_array().map(Vec::len), Some(1), "{doc}");
}
both_stores!(the_copy_goes_upstream_as_the_client_wrote_the_address);

async fn the_api_refuses_what_smtp_refuses_with_422() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    for (bad, reason) in [
        ("a@b@c.net", "routing"),
        ("<script>@x.net", "quote it"),
        ("ann smith@x.net", "quote it"),
        ("ann@exa mple.net", "not a valid domain name"),
        ("ann", "name@domain"),
    ] {
        let a = post_consent(&relay, bad, "grant").await;
        assert_eq!(a.status, 422, "{bad}: {}", a.body);
        assert_eq!(a.body["error"], "invalid-address", "{bad}");
        assert_eq!(a.body["field"], "email", "{bad}");
        let text = a.body["message"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("email: is not an email address (") && text.contains(reason),
            "{bad}: {text}"
        );
        let mut c = relay.client().await;
        c.expect("220").await;
        c.cmd("EHLO client.test", "250").await;
        c.cmd("MAIL FROM:<crm@example.com>", "250").await;
        let r = c.cmd(&format!("RCPT TO:<{bad}>"), "5").await;
        assert!(r.starts_with("501") || r.starts_with("550"), "{bad}: {r}");
    }
    let a = admin(&relay, Method::GET, "/api/v1/subjects/a@b@c.net", None).await;
    assert_eq!(a.status, 422, "{}", a.body);
    // `"ann"@example.net` is Ann, whom SMTP's `ann@example.net` reaches.
    let a = post_consent(&relay, "\"ann\"@example.net", "withdraw").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let r = send(&relay, &["ann@example.net"]).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
}
both_stores!(the_api_refuses_what_smtp_refuses_with_422);

/// The keyed hash an erasure kept, the way the relay made it before the
/// identity rules: of the address trimmed and lowercased as written.
async fn erased_the_old_way(relay: &TestRelay, address: &str) {
    let key = &relay.config.signing.keys["k1"].0;
    let old_form = address.trim().to_lowercase();
    let hash = consent_relay::consent::subject::address_hash(key, &old_form);
    let mut db = crate::common::backend::connect(relay.dir.path()).await;
    sqlx::query(
        "INSERT INTO subjects (id, address, address_hash, key_id, created_at, erased_at) \
         VALUES ($1, NULL, $2, 'k1', 1, 1)",
    )
    .bind(format!("old-{address}"))
    .bind(hash)
    .execute(&mut db)
    .await
    .expect("insert an erased subject");
}

async fn an_erased_person_stays_suppressed_under_every_spelling() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    // Erased before the identity rules, under the punycode spelling.
    erased_the_old_way(&relay, "Erin@XN--EXMPLE-CUA.NET").await;
    // Erased now, under one spelling.
    let a = post_consent(&relay, "frank@exämple.net", "grant").await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = admin(
        &relay,
        Method::DELETE,
        "/api/v1/subjects/FRANK@xn--exmple-cua.net.",
        None,
    )
    .await;
    assert_eq!(a.status, 204, "{}", a.body);
    for mailed in [
        "erin@exämple.net",
        "ERIN@xn--exmple-cua.net",
        "frank@exämple.net",
        "ｆｒａｎｋ@exämple.net",
    ] {
        let r = send(&relay, &[mailed, "control@example.net"]).await;
        assert!(r.contains("(1 delivered, 1 suppressed)"), "{mailed}: {r}");
    }
    let rows: Value = admin(&relay, Method::GET, "/api/v1/decisions?limit=100", None)
        .await
        .body;
    let suppressed: Vec<&Value> = rows["decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|d| d["outcome"] == "suppress")
        .collect();
    assert_eq!(suppressed.len(), 4, "{rows}");
    assert!(
        suppressed.iter().all(|d| d["reason"] == "erased"
            && d["recipient"]
                .as_str()
                .is_some_and(|r| r.starts_with("erased:"))),
        "{rows}"
    );
}
both_stores!(an_erased_person_stays_suppressed_under_every_spelling);

/// The command line finds the person by any spelling, and refuses what is
/// not a mailbox with the parser's reason.
async fn the_command_line_uses_the_same_identity() {
    let dir = tempfile::tempdir().unwrap();
    let text = crate::common::relay::config_text(dir.path(), "smtp://127.0.0.1:9", "", "");
    std::fs::write(dir.path().join("consent-relay.toml"), text).unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
            .args(args)
            .arg("--config")
            .arg(dir.path().join("consent-relay.toml"))
            .output()
            .expect("run consent-relay");
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.success(), out, err)
    };
    let withdraw = [
        "consent",
        "withdraw",
        "ann@example.net.",
        "--campaign",
        "prospecting",
    ];
    let (ok, out, err) = run(&withdraw);
    assert!(ok && out.contains("for ann@example.net "), "{out}{err}");
    let (ok, out, err) = run(&["consent", "show", "\"ANN\"@Example.NET"]);
    assert!(ok && out.contains("withdrawn"), "{out}{err}");
    let (ok, out, err) = run(&["consent", "grant", "a@b@c.net", "--campaign", "newsletter"]);
    assert!(
        !ok && err.contains("\"a@b@c.net\" is not an email address (% or ! routing"),
        "{out}{err}"
    );
    let (ok, out, err) = run(&["erase", "Ann@EXAMPLE.net"]);
    assert!(ok && out.contains("erased ann@example.net "), "{out}{err}");
}
both_stores!(the_command_line_uses_the_same_identity);

/// Erased before the identity rules under the spelling with the final dot
/// (`DELETE /api/v1/subjects/erin@example.net.`, as the CRM wrote her):
/// the hash kept is of `erin@example.net.`; mail to `erin@example.net`
/// (the same mailbox: Postfix strips the dot) stays suppressed.
async fn an_old_erasure_under_the_final_dot_holds_without_it() {
    let sink = Sink::start().await;
    let relay = admin::start(&sink).await;
    erased_the_old_way(&relay, "erin@example.net.").await;
    erased_the_old_way(&relay, "gina@xn--exmple-cua.net.").await;
    for mailed in ["erin@example.net", "Erin@Example.NET", "gina@exämple.net"] {
        let r = send(&relay, &[mailed, "control@example.net"]).await;
        assert!(r.contains("(1 delivered, 1 suppressed)"), "{mailed}: {r}");
    }
}
both_stores!(an_old_erasure_under_the_final_dot_holds_without_it);
