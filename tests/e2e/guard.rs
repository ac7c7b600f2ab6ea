//! End to end: the reputation guard's hand controls and suppressions, on a
//! running relay with a real SMTP sink upstream and a real HTTP receiver
//! as the CRM's webhook. `consent-relay campaign pause` holds a campaign's
//! copies (mail is still accepted with 250; nothing reaches the sink;
//! `queue` and `/metrics` show them held) until `campaign resume`;
//! `reputation` shows the pause and the day's delivered count;
//! suppressions are listed and removed by the API and the command line,
//! with who and why; the CRM hears `campaign-paused` and
//! `suppression-removed`; and, through the feedback intake, `bounced`,
//! `complained` and the guard's own `campaign-paused`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use consent_relay::consent::Action;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::both_stores;
use crate::common::admin::{self, admin};
use crate::common::backend;
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::Sink;

const SECRET: &str = "guard-webhook-secret-0123456789";

/// The CRM's endpoint: keeps the body of every request whose signature
/// verifies; stops when dropped.
struct Crm {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Crm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(bodies): State<Arc<Mutex<Vec<Value>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get("x-consent-relay-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.strip_prefix("sha256="))
        .and_then(|h| hex::decode(h).ok());
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&body);
    if signature.is_none_or(|d| mac.verify_slice(&d).is_err()) {
        return StatusCode::UNAUTHORIZED;
    }
    bodies
        .lock()
        .expect("bodies")
        .push(serde_json::from_slice(&body).expect("JSON body"));
    StatusCode::OK
}

impl Crm {
    async fn start() -> Crm {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind CRM");
        let addr = listener.local_addr().expect("CRM address");
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/hooks", axum::routing::post(receive))
            .with_state(bodies.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Crm { addr, bodies, task }
    }

    /// The bodies received of this `type`.
    fn of_type(&self, kind: &str) -> Vec<Value> {
        self.bodies
            .lock()
            .expect("bodies")
            .iter()
            .filter(|b| b["type"] == kind)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, kind: &str) -> Value {
        eventually(&format!("the CRM hears {kind}"), || async {
            !self.of_type(kind).is_empty()
        })
        .await;
        self.of_type(kind).remove(0)
    }
}

/// A relay with the admin API and `[webhook]` to `crm`, sending to `sink`.
async fn start(sink: &Sink, crm: &Crm) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("webhook.secret"), format!("{SECRET}\n")).expect("secret");
    let text = admin::admin_config(dir.path(), &format!("smtp://{}", sink.addr()));
    let text = format!(
        "{text}\n[webhook]\nurl = \"http://{}/hooks\"\nsecret_file = \"webhook.secret\"\ntimeout = \"5s\"\n\
         retry_min = \"100ms\"\nretry_max = \"400ms\"\n",
        crm.addr
    );
    TestRelay::start_with(dir, &text).await
}

/// The real binary with these arguments and the relay's config, as `user`.
fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}{}",
        o.status,
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

async fn json_of(relay: &TestRelay, args: &[&str]) -> Value {
    let out = ok(relay.cli_as("alice", args).await);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// The statuses `queue --json` shows for `campaign`.
async fn queued(relay: &TestRelay, campaign: &str) -> Vec<String> {
    let q = json_of(relay, &["queue", "--json"]).await;
    q.as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["campaign"] == campaign)
        .map(|r| r["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn metrics(relay: &TestRelay) -> String {
    reqwest::get(relay.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

async fn a_paused_campaign_holds_its_copies_until_resume() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    let mut relay = start(&sink, &crm).await;

    let refused = relay.cli_as("alice", &["campaign", "pause", "nope"]).await;
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("unknown campaign \"nope\"") && err.contains("prospecting, invoices"),
        "{err}"
    );

    let out = ok(relay
        .cli_as(
            "alice",
            &["campaign", "pause", "prospecting", "--reason", "complaints"],
        )
        .await);
    assert!(out.contains("paused campaign prospecting"), "{out}");
    let paused = crm.wait_for("campaign-paused").await;
    assert_eq!(paused["campaign"], "prospecting");
    assert_eq!(paused["paused_by"], "alice");
    assert_eq!(paused["reason"], "complaints");
    assert!(
        paused["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("notice-"))
    );

    // Accepted and decided as ever; the copy waits, held.
    let reply = relay
        .send(&["pat@example.org"], &message("prospecting", "Hello"))
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(queued(&relay, "prospecting").await, ["held"]);
    let text = metrics(&relay).await;
    assert!(
        text.contains("consent_relay_queue_depth{status=\"held\"} 1"),
        "{text}"
    );
    // Another campaign still goes out; then the held copy has had its chance.
    let reply = relay
        .send(&["ivy@example.org"], &message("invoices", "Invoice"))
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1, "only the invoice reached the sink");
    assert_eq!(queued(&relay, "prospecting").await, ["held"]);

    let rep = json_of(
        &relay,
        &["reputation", "--json", "--campaign", "prospecting"],
    )
    .await;
    assert_eq!(rep["paused"][0]["campaign"], "prospecting");
    assert_eq!(rep["paused"][0]["paused_by"], "alice");

    let out = ok(relay
        .cli_as("bob", &["campaign", "resume", "prospecting"])
        .await);
    assert!(out.contains("1 held copies queued"), "{out}");
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    assert!(
        got.iter()
            .any(|m| m.rcpt_to.iter().any(|r| r == "pat@example.org")),
        "the held copy went out after resume"
    );
    eventually("the day's delivered count", || async {
        let rep = json_of(&relay, &["reputation", "--json"]).await;
        rep["days"].as_array().is_some_and(|days| {
            days.iter().any(|d| {
                d["campaign"] == "prospecting" && d["delivered"] == 1 && d["paused"] == false
            })
        })
    })
    .await;
    let table = ok(relay.cli_as("bob", &["reputation"]).await);
    assert!(
        table.contains("prospecting") && table.contains("invoices"),
        "{table}"
    );
    assert!(!table.contains("PAUSED"), "{table}");
    relay.stop().await;
}
both_stores!(a_paused_campaign_holds_its_copies_until_resume);

async fn drop_held_ends_the_copies_and_the_campaign_stays_paused() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    let mut relay = start(&sink, &crm).await;
    ok(relay
        .cli_as("alice", &["campaign", "pause", "prospecting"])
        .await);
    let reply = relay
        .send(&["pat@example.org"], &message("prospecting", "Hello"))
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(queued(&relay, "prospecting").await, ["held"]);
    let out = ok(relay
        .cli_as("alice", &["campaign", "drop-held", "prospecting"])
        .await);
    assert!(
        out.contains("dropped 1 held copies") && out.contains("stays paused"),
        "{out}"
    );
    assert!(queued(&relay, "prospecting").await.is_empty());
    let record = json_of(&relay, &["export", "pat@example.org"]).await;
    assert_eq!(record["deliveries"][0]["status"], "dropped");
    ok(relay
        .cli_as("alice", &["campaign", "resume", "prospecting"])
        .await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 0, "a dropped copy is never sent");
    relay.stop().await;
}
both_stores!(drop_held_ends_the_copies_and_the_campaign_stays_paused);

/// A hard bounce of `address`'s subject, as the feedback rules store it.
async fn suppress(dir: &Path, subject_id: &str) {
    let mut c = backend::connect(dir).await;
    sqlx::query(
        "INSERT INTO suppressions (subject_id, kind, status_code, diagnostic, source, campaign, since) \
         VALUES ($1, 'hard', '5.1.1', '550 5.1.1 <***@example.org>: user unknown', 'dsn', 'prospecting', $2)",
    )
    .bind(subject_id)
    .bind(consent_relay::time::now_ms())
    .execute(&mut c)
    .await
    .expect("insert a suppression");
}

async fn suppressions_are_listed_and_removed_by_the_api_and_the_command_line() {
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    let mut relay = start(&sink, &crm).await;
    for email in ["ann@example.org", "ben@example.org"] {
        relay
            .consent(email, "newsletter", Action::Grant, None)
            .await;
        suppress(relay.dir.path(), &relay.subject_id(email).await).await;
    }

    let list = admin(&relay, Method::GET, "/api/v1/suppressions?limit=1", None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["suppressions"][0]["email"], "ben@example.org");
    assert_eq!(list.body["suppressions"][0]["kind"], "hard");
    assert_eq!(list.body["suppressions"][0]["status_code"], "5.1.1");
    assert_eq!(list.body["suppressions"][0]["reason"], "bounced");
    let cursor = list.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next = admin(
        &relay,
        Method::GET,
        &format!("/api/v1/suppressions?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(next.body["suppressions"][0]["email"], "ann@example.org");
    assert_eq!(next.body["next_cursor"], Value::Null);
    let bad = admin(&relay, Method::GET, "/api/v1/suppressions?page=2", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let listed = json_of(&relay, &["suppression", "list", "--json"]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    let shown = ok(relay
        .cli_as("alice", &["consent", "show", "ann@example.org"])
        .await);
    assert!(
        shown.contains("suppressions:")
            && shown.contains("hard bounce 5.1.1")
            && shown.contains("in force"),
        "{shown}"
    );
    let export = admin(
        &relay,
        Method::GET,
        "/api/v1/subjects/ann@example.org",
        None,
    )
    .await;
    assert_eq!(
        export.body["suppressions"][0]["diagnostic"],
        "550 5.1.1 <***@example.org>: user unknown"
    );
    assert_eq!(export.body["suppressions"][0]["active"], true);

    // A reason is required.
    let path = "/api/v1/suppressions/Ann@Example.org";
    let refused = admin(&relay, Method::DELETE, path, None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(refused.body["field"], "reason");
    let removed = admin(
        &relay,
        Method::DELETE,
        path,
        Some(json!({"reason": "the person wrote in"})),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    // The operator's name (the legacy token's operator is `admin`); it
    // was `api` while the tokens carried no name.
    assert_eq!(removed.body["removed"][0]["removed_by"], "admin");
    let again = admin(
        &relay,
        Method::DELETE,
        &format!("{path}?reason=again"),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let notice = crm.wait_for("suppression-removed").await;
    assert_eq!(notice["email"], "ann@example.org");
    assert_eq!(notice["removed_reason"], "the person wrote in");

    let refused = relay
        .cli_as("alice", &["suppression", "remove", "ben@example.org"])
        .await;
    assert!(!refused.status.success(), "--reason is required");
    let out = ok(relay
        .cli_as(
            "alice",
            &[
                "suppression",
                "remove",
                "ben@example.org",
                "--reason",
                "fixed",
            ],
        )
        .await);
    assert!(
        out.contains("removed 1 suppression(s)") && out.contains("by alice"),
        "{out}"
    );
    let none = relay
        .cli_as(
            "alice",
            &["suppression", "remove", "ben@example.org", "--reason", "x"],
        )
        .await;
    assert!(!none.status.success());
    let shown = ok(relay
        .cli_as("alice", &["consent", "show", "ben@example.org"])
        .await);
    assert!(
        shown.contains("removed") && shown.contains("by alice (fixed)"),
        "{shown}"
    );
    let list = admin(&relay, Method::GET, "/api/v1/suppressions", None).await;
    assert_eq!(list.body["suppressions"], json!([]));
    eventually("two removals heard", || async {
        crm.of_type("suppression-removed").len() == 2
    })
    .await;
    // The audit trail names who removed each, and through which door.
    let trail = relay
        .store()
        .audit(&consent_relay::store::AuditFilter {
            action: Some(consent_relay::store::AuditAction::SuppressionRemove),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let who: Vec<(&str, &str, Option<&str>)> = trail
        .iter()
        .map(|r| (r.actor.as_str(), r.via.as_str(), r.detail.as_deref()))
        .collect();
    assert_eq!(
        who,
        [
            ("alice", "cli", Some("fixed")),
            ("admin", "api", Some("the person wrote in"))
        ]
    );
    relay.stop().await;
}
both_stores!(suppressions_are_listed_and_removed_by_the_api_and_the_command_line);

async fn what_comes_back_reaches_the_crm_and_an_operator_undoes_it() {
    use crate::bounces::{BOUNCES, arf, hard_dsn, next_mail, pair, return_path, sent, take};
    use consent_relay::token::bounce;
    let sink = Sink::start().await;
    let crm = Crm::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("webhook.secret"), format!("{SECRET}\n")).expect("secret");
    let text =
        crate::common::relay::config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "");
    // One complaint among the day's few delivered copies crosses both lines.
    let text = format!(
        "{text}\n{BOUNCES}\n[complaints]\nmin_volume = 1\nwarn_rate = \"10%\"\npause_rate = \"30%\"\n\
         [webhook]\nurl = \"http://{}/hooks\"\nsecret_file = \"webhook.secret\"\nretry_min = \"100ms\"\nretry_max = \"400ms\"\n",
        crm.addr
    );
    let mut relay = TestRelay::start_with(dir, &text).await;

    // A hard bounce: the CRM hears it; an operator lifts it, mail goes again.
    let ann = "ann@example.net";
    let d = sent(&relay, &sink, ann, "prospecting").await;
    take(&relay, Some(return_path(&relay, d)), hard_dsn(ann)).await;
    let bounced = crm.wait_for("bounced").await;
    assert_eq!(bounced["email"], ann);
    assert_eq!(bounced["kind"], "hard");
    assert_eq!(bounced["status"], "5.1.1");
    assert_eq!(
        next_mail(&relay, ann, "prospecting").await,
        pair("suppress", "bounced")
    );
    ok(relay
        .cli_as(
            "alice",
            &["suppression", "remove", ann, "--reason", "new mailbox"],
        )
        .await);
    assert_eq!(
        next_mail(&relay, ann, "prospecting").await,
        pair("deliver", "not-objected")
    );

    // A complaint: withdrawn (posted as complained), and the guard pauses.
    let gus = "gus@example.net";
    let d = sent(&relay, &sink, gus, "prospecting").await;
    let header = format!(
        "X-Consent-Relay-Delivery: {}\r\n",
        bounce::local_part(&relay.config.signing, d).unwrap()
    );
    take(&relay, None, arf(&header, "1")).await;
    let complained = crm.wait_for("complained").await;
    assert_eq!(
        (
            &complained["email"],
            &complained["action"],
            &complained["source"]
        ),
        (&json!(gus), &json!("withdraw"), &json!("complaint"))
    );
    let paused = crm.wait_for("campaign-paused").await;
    assert_eq!(paused["campaign"], "prospecting");
    assert_eq!(paused["paused_by"], "reputation-guard");
    crm.wait_for("campaign-warning").await;
    let rep = json_of(
        &relay,
        &["reputation", "--json", "--campaign", "prospecting"],
    )
    .await;
    assert_eq!(rep["paused"][0]["paused_by"], "reputation-guard");
    assert!(
        rep["days"].as_array().is_some_and(|d| d
            .iter()
            .any(|d| d["complaints"] == 1 && d["mark"] == "pause")),
        "{rep}"
    );
    // Paused: the next copy is held.
    let r = relay
        .send(&["pat@example.org"], &message("prospecting", "x"))
        .await;
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(queued(&relay, "prospecting").await, ["held"]);
    relay.stop().await;
}
both_stores!(what_comes_back_reaches_the_crm_and_an_operator_undoes_it);
