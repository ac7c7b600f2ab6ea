//! `consent-relay migrate-store`: a SQLite store filled by a real relay
//! (consent, a delivered message, an erasure, a webhook outbox row) is
//! copied by the real binary into PostgreSQL (a test schema, see
//! common/backend.rs; skipped without `CONSENT_RELAY_TEST_PG`), a relay on
//! PostgreSQL then decides and shows the same, new ids follow the copied
//! ones, and a second copy into the now full target is refused. The copy
//! back to SQLite, and SQLite to SQLite (always run), keep every count.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::backend;
use crate::common::relay::{TestRelay, config_text, message};
use crate::common::sink::Sink;
use consent_relay::consent::Action;
use sqlx::Connection as _;

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");

use backend::STORE_TABLES as TABLES;

fn bin(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run the binary")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Row counts per table, through sqlx's Any driver (either backend).
async fn counts(url: &str) -> Vec<(String, i64)> {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.expect("connect");
    let mut out = Vec::new();
    for t in TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {t}")))
            .fetch_one(&mut c)
            .await
            .expect("count");
        out.push(((*t).to_owned(), n));
    }
    c.close().await.expect("close");
    out
}

/// Every message's id, body and flag, in id order.
async fn bodies(url: &str) -> Vec<(String, Option<Vec<u8>>, i64)> {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.expect("connect");
    let rows: Vec<(String, Option<Vec<u8>>, i64)> = sqlx::query_as(
        "SELECT id, body, CASE WHEN smtputf8 THEN CAST(1 AS BIGINT) ELSE CAST(0 AS BIGINT) END \
         FROM messages ORDER BY id",
    )
    .fetch_all(&mut c)
    .await
    .expect("read messages");
    c.close().await.expect("close");
    assert!(
        rows.iter()
            .any(|r| r.1.as_ref().is_some_and(|b| b.len() > 20))
    );
    rows
}

/// The counts `migrate-store` printed, one `table rows` line each.
fn printed(stdout: &str) -> Vec<(String, i64)> {
    TABLES
        .iter()
        .map(|t| {
            let line = stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(t))
                .unwrap_or_else(|| panic!("no count for {t} in:\n{stdout}"));
            let n = line.split_whitespace().nth(1).expect("a count");
            ((*t).to_owned(), n.parse().expect("a number"))
        })
        .collect()
}

/// A relay on a SQLite file in `dir`, with `[webhook]` to a closed port (so
/// its outbox keeps rows), after: a grant for a@, a message to a@ and b@
/// (b@ suppressed) delivered to `sink`, and c@ granted then erased.
async fn filled_sqlite(dir: &Path, sink: &Sink) -> String {
    let sqlite = format!("sqlite://{}", dir.join("source.db").display());
    std::fs::write(
        dir.join("webhook.secret"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .expect("write secret");
    let text = config_text(dir, &format!("smtp://{}", sink.addr()), "", "")
        .replace(&backend::store_url(dir), &sqlite)
        + "\n[webhook]\nurl = \"http://127.0.0.1:1/hook\"\nsecret_file = \"webhook.secret\"\n\
           timeout = \"1s\"\nretry_min = \"1h\"\nretry_max = \"2h\"\n";
    let relay_dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        dir.join("webhook.secret"),
        relay_dir.path().join("webhook.secret"),
    )
    .expect("copy secret");
    let mut relay = TestRelay::start_with(relay_dir, &text).await;
    relay
        .consent("a@example.com", "newsletter", Action::Grant, None)
        .await;
    relay
        .consent("c@example.com", "newsletter", Action::Grant, None)
        .await;
    let reply = relay
        .send(
            &["a@example.com", "b@example.com"],
            &message("newsletter", "Hello with a body to keep\r\n"),
        )
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    let got = sink.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].rcpt_to, vec!["a@example.com".to_owned()]);
    // A soft and then a hard bounce for a@, found through the copy's own
    // header: feedback_reports, soft_bounces and suppressions get rows.
    let copy = String::from_utf8_lossy(&got[0].data).into_owned();
    let header = copy.split("\r\n\r\n").next().unwrap_or("").to_owned();
    for (status, text) in [
        ("4.2.2", "452 4.2.2 mailbox full"),
        ("5.1.1", "550 5.1.1 no such user"),
    ] {
        let raw = format!(
            "From: MAILER-DAEMON@mx.example.com\r\nSubject: failure\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
             Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: {status}\r\n\
             Diagnostic-Code: smtp; {text}\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n{header}\r\n\r\n--B--\r\n"
        );
        consent_relay::feedback::intake::receive(
            relay.store(),
            &relay.config,
            consent_relay::store::NewReport {
                door: consent_relay::store::Door::Cli,
                envelope_from: None,
                envelope_to: None,
                client_ip: None,
                raw: raw.into_bytes(),
                received_at: consent_relay::time::now_ms(),
                actor: None,
            },
        )
        .await
        .expect("a bounce taken");
    }
    relay.stop().await;
    // An operator lifted the suppression (the row stays, with who and why),
    // so a@ is still mailed after the copy.
    {
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&sqlite)
            .await
            .expect("connect");
        sqlx::query(
            "UPDATE suppressions SET removed_at = 1, removed_by = 'admin', removed_reason = 'mailbox fixed'",
        )
        .execute(&mut c)
        .await
        .expect("lift the suppression");
        c.close().await.expect("close");
    }
    let config = relay.dir.path().join("consent-relay.toml");
    ok(bin(&[
        "--config",
        config.to_str().unwrap(),
        "erase",
        "c@example.com",
    ]));
    std::fs::copy(&config, dir.join("sqlite.toml")).expect("keep the config");
    sqlite
}

/// `consent show --json` and `export` of a@ under a config file.
fn views(config: &Path) -> (String, String) {
    let c = config.to_str().unwrap();
    (
        ok(bin(&[
            "--config",
            c,
            "consent",
            "show",
            "a@example.com",
            "--json",
        ])),
        ok(bin(&["--config", c, "export", "a@example.com"])),
    )
}

#[tokio::test]
async fn migrate_store_copies_sqlite_to_postgres_and_back_and_refuses_a_full_target() {
    backend::on_pg(|| async {
        let sink = Sink::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = backend::store_url(dir.path());
        let sqlite = filled_sqlite(dir.path(), &sink).await;
        // Before the counts: an export writes its audit row.
        let sqlite_views = views(&dir.path().join("sqlite.toml"));
        let before = counts(&sqlite).await;
        for (t, n) in &before {
            if t != "idempotency_keys" {
                assert!(*n > 0, "the source has no {t} row: {before:?}");
            }
        }

        let out = ok(bin(&["migrate-store", "--from", &sqlite, "--to", &pg]));
        assert_eq!(printed(&out), before, "{out}");
        assert_eq!(counts(&pg).await, before);
        assert_eq!(bodies(&pg).await, bodies(&sqlite).await);

        // The same views on PostgreSQL.
        let pg_config = std::fs::read_to_string(dir.path().join("sqlite.toml"))
            .expect("config")
            .replace(&sqlite, &pg);
        let pg_dir = tempfile::tempdir().expect("temp dir");
        std::fs::copy(
            dir.path().join("webhook.secret"),
            pg_dir.path().join("webhook.secret"),
        )
        .expect("copy secret");
        std::fs::write(pg_dir.path().join("pg.toml"), &pg_config).expect("write config");
        assert_eq!(views(&pg_dir.path().join("pg.toml")), sqlite_views);

        // A relay on PostgreSQL decides the same way, and its new rows take
        // ids after the copied ones.
        let mut relay = TestRelay::start_with(pg_dir, &pg_config).await;
        let reply = relay
            .send(
                &["a@example.com", "b@example.com", "c@example.com"],
                &message("newsletter", "Second\r\n"),
            )
            .await;
        assert!(reply.starts_with("250"), "{reply}");
        let got = sink.wait_for(2, Duration::from_secs(20)).await;
        assert_eq!(got[1].rcpt_to, vec!["a@example.com".to_owned()]);
        relay
            .consent("d@example.com", "newsletter", Action::Grant, None)
            .await;
        relay.stop().await;
        let after = counts(&pg).await;
        assert_eq!(after[1].1, before[1].1 + 1, "{after:?}");
        assert_eq!(after[4].1, before[4].1 + 3, "{after:?}");

        // A second copy into the now full store is refused, and changes nothing.
        let out = bin(&["migrate-store", "--from", &sqlite, "--to", &pg]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("not empty") && err.contains("subjects"),
            "{err}"
        );
        assert_eq!(counts(&pg).await, after);

        // And back: PostgreSQL to a new SQLite file.
        let back = format!("sqlite://{}", dir.path().join("back.db").display());
        let out = ok(bin(&["migrate-store", "--from", &pg, "--to", &back]));
        assert_eq!(printed(&out), after, "{out}");
        assert_eq!(counts(&back).await, after);
        sink.stop().await;
    })
    .await;
}

#[tokio::test]
async fn sqlite_to_sqlite_keeps_every_row_and_refuses_a_running_source() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = filled_sqlite(dir.path(), &sink).await;
    let before = counts(&sqlite).await;
    let copy = format!("sqlite://{}", dir.path().join("copy.db").display());
    let out = ok(bin(&["migrate-store", "--from", &sqlite, "--to", &copy]));
    assert_eq!(printed(&out), before, "{out}");
    assert_eq!(counts(&copy).await, before);

    // A relay serving the source holds its lock: refused, target untouched.
    let text = std::fs::read_to_string(dir.path().join("sqlite.toml")).expect("config");
    let relay_dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        dir.path().join("webhook.secret"),
        relay_dir.path().join("webhook.secret"),
    )
    .expect("copy secret");
    let mut relay = TestRelay::start_with(relay_dir, &text).await;
    let other = format!("sqlite://{}", dir.path().join("other.db").display());
    let out = bin(&["migrate-store", "--from", &sqlite, "--to", &other]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stop that serve"), "{err}");
    assert!(!dir.path().join("other.db").exists());
    relay.stop().await;

    // Bad URLs are configuration errors (exit 78).
    let out = bin(&["migrate-store", "--from", "mysql://x", "--to", &copy]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
    sink.stop().await;
}
