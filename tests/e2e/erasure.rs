//! End to end: erasure leaves the address nowhere the relay wrote it down
//! about her deliveries: the upstream's reply (Postfix's wording quotes the
//! address), the bounce the relay wrote to the sender, sent or still
//! queued. And access lists the bounces about her and says what it
//! withholds (a body shared with other recipients), on both stores.

use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::admin::{self, admin};
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Fault, Sink};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::{Connection, Row};

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");
const ERIN: &str = "erin@example.net";
/// Postfix's answer for an unknown local recipient (after the code).
const POSTFIX_UNKNOWN: &str =
    "5.1.1 <erin@example.net>: Recipient address rejected: User unknown in local recipient table";
const MASKED_REPLY: &str =
    "550 5.1.1 <recipient>: Recipient address rejected: User unknown in local recipient table";

/// A message to Erin that names her in `To:`.
fn to_erin(body: &str) -> String {
    message("prospecting", body).replace("To: list@example.net", &format!("To: Erin <{ERIN}>"))
}

/// `(kind, recipient, status, last_reply)` of every delivery, oldest first.
async fn deliveries(relay: &TestRelay) -> Vec<(String, String, String, Option<String>)> {
    let mut c = common::backend::connect(relay.dir.path()).await;
    let rows = sqlx::query(
        "SELECT m.kind, d.recipient, d.status, d.last_reply FROM deliveries d \
         JOIN messages m ON m.id = d.message_id ORDER BY d.id",
    )
    .fetch_all(&mut c)
    .await
    .expect("deliveries")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    c.close().await.expect("close");
    rows
}

async fn sql(relay: &TestRelay, statement: &str, arg: &str) {
    let mut c = common::backend::connect(relay.dir.path()).await;
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .bind(arg)
        .execute(&mut c)
        .await
        .expect("statement");
    c.close().await.expect("close");
}

/// Where the store still holds `needle` (on SQLite in any case): the SQLite files (free pages and
/// WAL included, read by a child process so this process's locks stay), or
/// the PostgreSQL rows.
async fn held(relay: &TestRelay, needle: &str) -> Vec<String> {
    if common::backend::on_postgres() {
        return common::backend::rows_holding(relay.dir.path(), needle).await;
    }
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-journal"] {
        let path = format!("{}{suffix}", relay.db_path().display());
        let out = std::process::Command::new("cat")
            .arg(&path)
            .output()
            .expect("cat");
        let (bytes, needle) = (out.stdout.to_ascii_lowercase(), needle.to_lowercase());
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(path);
        }
    }
    found
}

async fn queue_listing(relay: &TestRelay) -> String {
    let out = tokio::process::Command::new(BIN)
        .args(["queue", "--config"])
        .arg(relay.dir.path().join("consent-relay.toml"))
        .output()
        .await
        .expect("run consent-relay queue");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `method /api/v1/subjects/{email}` (access or erasure), answered `expected`.
async fn subject_call(
    relay: &TestRelay,
    method: Method,
    email: &str,
    expected: StatusCode,
) -> Value {
    let a = admin(relay, method, &format!("/api/v1/subjects/{email}"), None).await;
    assert_eq!(a.status, expected, "{}", a.body);
    a.body
}

async fn export(relay: &TestRelay, email: &str) -> Value {
    subject_call(relay, Method::GET, email, StatusCode::OK).await
}

async fn erase(relay: &TestRelay, email: &str) {
    subject_call(relay, Method::DELETE, email, StatusCode::NO_CONTENT).await;
}

async fn refused_reply_and_sent_bounce_leave_with_the_erasure() {
    let sink = Sink::start().await;
    sink.script([Fault::Rcpt(550, POSTFIX_UNKNOWN)]);
    let mut relay = admin::start(&sink).await;
    let r = relay.send(&[ERIN], &to_erin("Hello Erin")).await;
    assert!(r.starts_with("250"), "{r}");
    let queue_id = r.split_whitespace().nth(4).expect("queue id").to_owned();
    // The bounce reaches the sender, naming her (it is the sender's notice).
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["crm@example.com"]);
    assert!(String::from_utf8_lossy(&got[0].data).contains(ERIN));
    eventually("the bounce's delivery is recorded", || async {
        deliveries(&relay)
            .await
            .iter()
            .any(|d| d.0 == "dsn" && d.2 == "sent")
    })
    .await;

    // Stored with the address masked from the start; the diagnostic stays.
    let rows = deliveries(&relay).await;
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2.as_str(), rows[0].3.as_deref()),
        (ERIN, "failed", Some(MASKED_REPLY))
    );

    // Access lists the bounce about her, with what it says.
    let doc = export(&relay, ERIN).await;
    let bounces = doc["bounces"].as_array().expect("bounces");
    assert_eq!(bounces.len(), 1, "{doc}");
    assert_eq!(bounces[0]["about"]["queue_id"], queue_id.as_str());
    assert_eq!(bounces[0]["to"], "crm@example.com");
    assert_eq!(bounces[0]["status"], "sent");
    let text = bounces[0]["raw"]["text"]
        .as_str()
        .expect("the bounce's text");
    assert!(
        text.contains("Final-Recipient: rfc822; erin@example.net"),
        "{text}"
    );
    // Her message, sent to her alone, is in the document too.
    assert_eq!(doc["messages"][0]["queue_id"], queue_id.as_str());
    assert!(
        doc["messages"][0]["raw"]["text"]
            .as_str()
            .unwrap()
            .contains("Hello Erin")
    );

    // A reply stored before replies were masked, as an older relay did.
    sql(
        &relay,
        "UPDATE deliveries SET last_reply = '550 5.1.1 <Erin@Example.NET>: Recipient address rejected: User unknown in local recipient table' WHERE recipient = $1",
        ERIN,
    )
    .await;
    assert!(queue_listing(&relay).await.contains("<Erin@Example.NET>"));

    erase(&relay, ERIN).await;
    assert_eq!(held(&relay, ERIN).await, Vec::<String>::new());
    assert_eq!(held(&relay, "Erin@Example.NET").await, Vec::<String>::new());
    let rows = deliveries(&relay).await;
    assert!(rows[0].1.starts_with("erased:"), "{rows:?}");
    assert_eq!(rows[0].3.as_deref(), Some(MASKED_REPLY));
    let listing = queue_listing(&relay).await;
    assert!(listing.contains(&rows[0].1), "{listing}");
    assert!(listing.contains(MASKED_REPLY), "{listing}");
    assert!(!listing.to_lowercase().contains(ERIN), "{listing}");
    relay.stop().await;
}
both_stores!(refused_reply_and_sent_bounce_leave_with_the_erasure);

/// A bounce about her still queued (the sender's server defers it) when
/// she is erased is dropped, never sent; one written before bounces were
/// linked to their delivery is found by the address in it.
async fn queued_bounce_about_her_is_dropped() {
    let sink = Sink::start().await;
    let mut faults = vec![Fault::Rcpt(550, POSTFIX_UNKNOWN)];
    faults.extend((0..60).map(|_| Fault::Mail(451, "4.3.0 try later")));
    sink.script(faults);
    let mut relay = admin::start(&sink).await;
    let r = relay.send(&[ERIN], &to_erin("Hello Erin")).await;
    assert!(r.starts_with("250"), "{r}");
    eventually("the bounce is deferred", || async {
        deliveries(&relay)
            .await
            .iter()
            .any(|d| d.0 == "dsn" && d.2 == "deferred")
    })
    .await;
    // As a bounce written before this relay version stored the link.
    sql(
        &relay,
        "UPDATE messages SET about_delivery = NULL WHERE kind = $1",
        "dsn",
    )
    .await;
    let doc = export(&relay, ERIN).await;
    let bounces = doc["bounces"].as_array().expect("bounces");
    assert_eq!(bounces.len(), 1, "{doc}");
    assert_eq!(bounces[0]["about"], Value::Null);
    assert_eq!(bounces[0]["status"], "deferred");
    let withheld = doc["withheld"].as_array().expect("withheld");
    assert!(
        withheld
            .iter()
            .any(|w| w["item"] == "bounce" && w["queue_id"] == bounces[0]["queue_id"]),
        "{doc}"
    );

    erase(&relay, ERIN).await;
    assert_eq!(held(&relay, ERIN).await, Vec::<String>::new());
    let rows = deliveries(&relay).await;
    let bounce = rows
        .iter()
        .find(|d| d.0 == "dsn")
        .expect("the bounce's row");
    assert_eq!(
        (bounce.2.as_str(), bounce.3.as_deref()),
        ("suppressed-late", Some("erased"))
    );
    assert_eq!(sink.count(), 0, "{:?}", sink.messages());
    relay.stop().await;
}
both_stores!(queued_bounce_about_her_is_dropped);

/// Access gives the body of a message sent to her alone, and lists the one
/// shared with another recipient as withheld, with why; and the log lines,
/// with the hash that names her in them.
async fn export_says_what_it_withholds_and_why() {
    let sink = Sink::start().await;
    let mut relay = admin::start(&sink).await;
    let alone = relay.send(&[ERIN], &to_erin("for Erin alone")).await;
    let shared = relay
        .send(&[ERIN, "frank@example.net"], &to_erin("for Erin and Frank"))
        .await;
    let id = |r: &str| r.split_whitespace().nth(4).expect("queue id").to_owned();
    let (alone, shared) = (id(&alone), id(&shared));
    sink.wait_for(3, Duration::from_secs(10)).await;

    let doc = export(&relay, ERIN).await;
    let messages = doc["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 1, "{doc}");
    assert_eq!(messages[0]["queue_id"], alone.as_str());
    assert!(
        messages[0]["raw"]["text"]
            .as_str()
            .unwrap()
            .contains("for Erin alone")
    );
    assert!(!doc.to_string().contains("for Erin and Frank"), "{doc}");
    let withheld = doc["withheld"].as_array().expect("withheld");
    let message = withheld
        .iter()
        .find(|w| w["item"] == "message")
        .expect("the shared message is listed");
    assert_eq!(message["queue_id"], shared.as_str());
    let reason = message["reason"].as_str().unwrap();
    assert!(reason.contains("1 other recipient"), "{reason}");
    let logs = withheld
        .iter()
        .find(|w| w["item"] == "log lines")
        .expect("the log lines are listed");
    let out = std::process::Command::new(BIN)
        .args(["log-hash", ERIN, "--config"])
        .arg(relay.dir.path().join("consent-relay.toml"))
        .output()
        .expect("run log-hash");
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(hash.len(), 16, "{hash:?}");
    assert!(logs["reason"].as_str().unwrap().contains(&hash), "{logs}");
    relay.stop().await;
}
both_stores!(export_says_what_it_withholds_and_why);
