//! End to end: the data-protection officer's access and erasure requests,
//! through the admin API and the real binary (`export`, `erase`), against
//! the relay started in-process, on SQLite and on PostgreSQL (see
//! `common::backend`). After erasure the address is nowhere in the database
//! files (SQLite) or in any row (PostgreSQL), and later mail to it is
//! suppressed as `erased`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::admin::{self, admin};
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Fault, Sink};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, Row};

/// An event's action and its proof: ip, user agent, evidence.
type EventProof = (String, Option<String>, Option<String>, Option<String>);

const CAROL: &str = "carol@example.com";

/// A newsletter message that names its recipient in `To:`.
fn to_carol(body: &str) -> String {
    message("newsletter", body).replace("To: list@example.net", &format!("To: Carol <{CAROL}>"))
}

/// Which of the database's files hold `needle`. The bytes are read by a
/// child process (`cat`): closing a descriptor of the database file in this
/// process would drop the POSIX locks that the relay's SQLite connections,
/// in this same process, hold on it.
fn files_holding(db: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = format!("{}{suffix}", db.display());
        let out = Command::new("cat").arg(&path).output().expect("run cat");
        if out.status.success() && out.stdout.windows(needle.len()).any(|w| w == needle) {
            found.push(path);
        }
    }
    found
}

/// Where the store still holds `needle`: SQLite files (read whole, free
/// pages and WAL included), or PostgreSQL tables (see `rows_holding`).
async fn held(relay: &TestRelay, needle: &str) -> Vec<String> {
    if !common::backend::on_postgres() {
        return files_holding(&relay.db_path(), needle.as_bytes());
    }
    common::backend::rows_holding(relay.dir.path(), needle).await
}

async fn delivery_rows(relay: &TestRelay) -> Vec<(String, String, Option<String>)> {
    rows_of_kind(relay, "").await
}

/// Delivery rows (recipient, status, last reply) of messages of `kind`, or
/// of every message when `kind` is empty.
async fn rows_of_kind(relay: &TestRelay, kind: &str) -> Vec<(String, String, Option<String>)> {
    let mut c = common::backend::connect(relay.dir.path()).await;
    let rows = sqlx::query(
        "SELECT d.recipient, d.status, d.last_reply FROM deliveries d \
         JOIN messages m ON m.id = d.message_id WHERE $1 = '' OR m.kind = $1 ORDER BY d.id",
    )
    .bind(kind)
    .fetch_all(&mut c)
    .await
    .expect("deliveries")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    c.close().await.expect("close");
    rows
}

async fn erasure_leaves_only_a_hashed_suppression() {
    let sink = Sink::start().await;
    let mut relay = admin::start(&sink).await;

    let grant = json!({
        "email": CAROL, "campaign": "newsletter", "action": "grant", "source": "form",
        "evidence": "newsletter form v3, Carol typed carol@example.com",
        "ip": "192.0.2.7", "user_agent": "Mozilla/5.0 (carol's phone)",
    });
    let a = admin(&relay, Method::POST, "/api/v1/consent", Some(grant)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let r = relay.send(&[CAROL], &to_carol("first")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;

    // A second copy that the upstream keeps deferring: still queued when
    // the erasure comes.
    sink.script((0..60).map(|_| Fault::Mail(451, "4.3.0 try later")));
    let r = relay.send(&[CAROL], &to_carol("second")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    eventually("the second copy is deferred", || async {
        delivery_rows(&relay)
            .await
            .iter()
            .any(|(_, s, _)| s == "deferred")
    })
    .await;

    // Access: the API and the binary give the same document.
    let a = admin(
        &relay,
        Method::GET,
        &format!("/api/v1/subjects/{CAROL}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["events"][0]["ip"], "192.0.2.7");
    assert_eq!(a.body["deliveries"].as_array().unwrap().len(), 2);
    let out = relay.cli(&["export", CAROL]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let exported: serde_json::Value = serde_json::from_slice(&out.stdout).expect("export JSON");
    assert_eq!(exported["subject"], a.body["subject"]);
    assert_eq!(exported["events"], a.body["events"]);
    assert!(
        !held(&relay, CAROL).await.is_empty(),
        "the test must see the address first"
    );

    // Erasure.
    let a = admin(
        &relay,
        Method::DELETE,
        &format!("/api/v1/subjects/{CAROL}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);

    // Checked before anything else touches the files: the erasure itself
    // leaves no copy, in the database or in the WAL.
    assert_eq!(held(&relay, CAROL).await, Vec::<String>::new());
    assert_eq!(held(&relay, "192.0.2.7").await, Vec::<String>::new());
    assert_eq!(held(&relay, "carol's phone").await, Vec::<String>::new());

    let a = admin(
        &relay,
        Method::GET,
        &format!("/api/v1/subjects/{CAROL}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = admin(
        &relay,
        Method::DELETE,
        &format!("/api/v1/subjects/{CAROL}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let out = relay.cli(&["export", CAROL]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing is held about carol@example.com")
    );
    let out = relay.cli(&["erase", CAROL]).await;
    assert_eq!(out.status.code(), Some(1));

    // The copy that was waiting is never sent; every row names the hash.
    let rows = delivery_rows(&relay).await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|(r, _, _)| r.starts_with("erased:") && r == &rows[0].0),
        "{rows:?}"
    );
    assert_eq!(rows[0].1, "sent");
    assert_eq!(
        (rows[1].1.as_str(), rows[1].2.as_deref()),
        ("suppressed-late", Some("erased"))
    );

    // Later mail to the address is suppressed as erased (even opt-out mail),
    // and is not written down by address again.
    for campaign in ["newsletter", "prospecting"] {
        let r = relay.send(&[CAROL], &message(campaign, "again")).await;
        assert!(r.contains("(0 delivered, 1 suppressed)"), "{campaign}: {r}");
    }
    let a = admin(&relay, Method::GET, "/api/v1/decisions", None).await;
    let decisions = a.body["decisions"].as_array().unwrap();
    let tail: Vec<(&str, &str)> = decisions[decisions.len() - 3..]
        .iter()
        .map(|d| (d["reason"].as_str().unwrap(), d["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tail,
        [
            ("erased", "send"),
            ("erased", "accept"),
            ("erased", "accept")
        ]
    );
    assert!(
        decisions
            .iter()
            .all(|d| d["recipient"] == rows[0].0.as_str()),
        "{decisions:?}"
    );

    // The history stays as the record that consent existed, without proof.
    let tag = rows[0].0.clone();
    let mut c = common::backend::connect(relay.dir.path()).await;
    let events: Vec<EventProof> = sqlx::query(
        "SELECT e.action, e.ip, e.user_agent, e.evidence FROM consent_events e \
         JOIN subjects s ON s.id = e.subject_id WHERE 'erased:' || s.address_hash = $1 ORDER BY e.id",
    )
    .bind(&tag)
    .fetch_all(&mut c)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect();
    assert_eq!(
        events,
        [
            ("grant".into(), None, None, None),
            ("erase".into(), None, None, None)
        ]
    );
    c.close().await.unwrap();
    // And after a checkpoint from another connection, still nowhere.
    if !common::backend::on_postgres() {
        let mut c = common::backend::connect(relay.dir.path()).await;
        let busy: i64 = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .get(0);
        assert_eq!(busy, 0);
        c.close().await.unwrap();
    }
    assert_eq!(held(&relay, CAROL).await, Vec::<String>::new());

    // A new, explicit grant makes the address known (and deliverable) again.
    let a = admin(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(json!({"email": CAROL, "campaign": "newsletter", "action": "grant"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let r = relay
        .send(&[CAROL], &message("newsletter", "welcome back"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    relay.stop().await;
}
both_stores!(erasure_leaves_only_a_hashed_suppression);

/// An address the relay only ever suppressed has no subject, yet it is in
/// the decision log: access shows it, and erasure (here by the binary)
/// leaves a hashed suppression.
async fn suppressed_only_address_can_be_exported_and_erased() {
    let sink = Sink::start().await;
    let mut relay = admin::start(&sink).await;
    let dave = "dave@example.com";
    let r = relay.send(&[dave], &message("newsletter", "hi")).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");

    let a = admin(
        &relay,
        Method::GET,
        &format!("/api/v1/subjects/{dave}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["subject"], serde_json::Value::Null);
    assert_eq!(a.body["decisions"][0]["reason"], "no-consent");
    assert_eq!(a.body["events"], json!([]));

    let out = relay.cli(&["erase", "Dave@Example.com"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("erased dave@example.com"), "{stdout}");
    assert!(stdout.contains("1 decisions"), "{stdout}");

    let a = admin(
        &relay,
        Method::GET,
        &format!("/api/v1/subjects/{dave}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Opt-out mail would have gone to a stranger; to an erased address it does not.
    let r = relay.send(&[dave], &message("prospecting", "offer")).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    let a = admin(
        &relay,
        Method::GET,
        "/api/v1/decisions?campaign=prospecting",
        None,
    )
    .await;
    assert_eq!(a.body["decisions"][0]["reason"], "erased");
    assert_eq!(held(&relay, dave).await, Vec::<String>::new());
    relay.stop().await;
}

/// A relay like `admin::start`'s, with `[erasure] notify = true` and `extra`.
async fn notifying_relay(sink: &Sink, extra: &str) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = admin::admin_config(dir.path(), &format!("smtp://{}", sink.addr()))
        + "\n[erasure]\nnotify = true\n"
        + extra;
    TestRelay::start_with(dir, &text).await
}

/// The rows of erasure notices: (recipient, status, last reply).
async fn notice_rows(relay: &TestRelay) -> Vec<(String, String, Option<String>)> {
    rows_of_kind(relay, "erasure-notice").await
}

/// Waits until the `n`th erasure notice ended as `status` and was scrubbed
/// (its rows name the erased tag, its reply keeps only its code), then until
/// the store holds `address` nowhere (see `held`); returns the notice rows.
async fn notice_scrubbed(
    relay: &TestRelay,
    n: usize,
    status: &str,
    address: &str,
) -> Vec<(String, String, Option<String>)> {
    eventually("the notice is recorded and scrubbed", || async {
        let rows = notice_rows(relay).await;
        rows.len() == n && rows[n - 1].1 == status && rows[n - 1].0.starts_with("erased:")
    })
    .await;
    let rows = notice_rows(relay).await;
    let code = if status == "sent" { "250" } else { "550" };
    assert_eq!(
        rows[n - 1].2.as_deref(),
        Some(format!("{code} (reply removed with the erased address)").as_str())
    );
    eventually("the address is nowhere in the store", || async {
        held(relay, address).await.is_empty()
    })
    .await;
    rows
}

/// With `[erasure] notify`, the API's erasure mails the person one notice;
/// once it is handed over, the address is nowhere in the store.
async fn erasure_notice_is_delivered_then_leaves_no_trace() {
    let sink = Sink::start().await;
    let mut relay = notifying_relay(&sink, "").await;
    let grant = json!({
        "email": CAROL, "campaign": "newsletter", "action": "grant", "source": "form",
        "ip": "192.0.2.7", "user_agent": "Mozilla/5.0 (carol's phone)",
    });
    let a = admin(&relay, Method::POST, "/api/v1/consent", Some(grant)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let r = relay.send(&[CAROL], &to_carol("first")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;

    let a = admin(
        &relay,
        Method::DELETE,
        &format!("/api/v1/subjects/{CAROL}"),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    let notice = &got[1];
    assert_eq!(notice.rcpt_to, [CAROL]);
    assert_eq!(notice.mail_from, "", "null sender: nothing bounces back");
    let text = String::from_utf8_lossy(&notice.data);
    assert!(
        text.contains("Subject: Your personal data has been erased\r\n"),
        "{text}"
    );
    assert!(text.contains("Content-Language: en\r\n"), "{text}");
    assert!(
        text.contains("Auto-Submitted: auto-generated\r\n"),
        "{text}"
    );
    assert!(text.contains("we have erased the personal data"), "{text}");

    let rows = notice_scrubbed(&relay, 1, "sent", CAROL).await;
    assert_eq!(held(&relay, "192.0.2.7").await, Vec::<String>::new());
    // Every decision names the same tag, the notice's too.
    let a = admin(&relay, Method::GET, "/api/v1/decisions", None).await;
    let decisions = a.body["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(
        decisions
            .iter()
            .all(|d| d["recipient"] == rows[0].0.as_str()),
        "{decisions:?}"
    );
    relay.stop().await;
}
both_stores!(erasure_notice_is_delivered_then_leaves_no_trace);

/// The binary's erasure, the notice in French (`[texts] default_language`);
/// then, after a new grant, a second erasure whose notice the upstream
/// refuses quoting the address: no bounce is made and the reply is not
/// kept, so the address is nowhere either.
async fn refused_erasure_notice_leaves_no_trace_and_no_bounce() {
    let sink = Sink::start().await;
    let mut relay = notifying_relay(&sink, "\n[texts]\ndefault_language = \"fr\"\n").await;
    let dave = "dave@example.com";
    let grant = Some(json!({"email": dave, "campaign": "newsletter", "action": "grant"}));
    let a = admin(&relay, Method::POST, "/api/v1/consent", grant.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED);
    let r = relay.send(&[dave], &message("newsletter", "news")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;
    eventually("the copy is recorded as sent", || async {
        rows_of_kind(&relay, "")
            .await
            .iter()
            .all(|(_, s, _)| s == "sent")
    })
    .await;

    let out = relay.cli(&["erase", dave]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].rcpt_to, [dave]);
    let text = String::from_utf8_lossy(&got[1].data);
    assert!(text.contains("Content-Language: fr\r\n"), "{text}");
    assert!(
        text.contains("Nous n'en gardons qu'une empreinte"),
        "{text}"
    );
    eventually("the first notice is scrubbed", || async {
        notice_rows(&relay)
            .await
            .iter()
            .all(|(r, _, _)| r.starts_with("erased:"))
    })
    .await;

    let a = admin(&relay, Method::POST, "/api/v1/consent", grant).await;
    assert_eq!(a.status, StatusCode::CREATED);
    sink.script([Fault::Rcpt(550, "5.1.1 <dave@example.com>: no such user")]);
    let out = relay.cli(&["erase", dave]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    notice_scrubbed(&relay, 2, "failed", dave).await;
    assert_eq!(sink.faults_pending(), 0);
    assert_eq!(sink.count(), 2, "no bounce for a notice");
    relay.stop().await;
}
both_stores!(refused_erasure_notice_leaves_no_trace_and_no_bounce);
both_stores!(suppressed_only_address_can_be_exported_and_erased);
