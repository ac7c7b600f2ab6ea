//! End to end: `[retention]` and the processing register. The relay runs
//! in-process on SQLite and on PostgreSQL (see `common::backend`) with the
//! test sink as upstream; rows are
//! aged by purging "in the future" (the purge takes its clock reading), or by
//! a retention of a second with the real binary and `serve`'s own purge.
//! Checks exactly what is gone and what stays: consent events and the bodies
//! of mail not yet delivered always stay.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{
    TestRelay, admin_event, config_text, eventually, message, write_config,
};
use crate::common::sink::{Fault, Sink};
use consent_relay::consent::Action;
use consent_relay::consent::{policy, subject};
use consent_relay::rights::retention;
use consent_relay::store::{
    AttemptRecord, DeliveryStatus, MessageKind, NewMessage, PurgeReport, RecipientDecision, Store,
};
use sqlx::{AnyConnection, Connection, Row};

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");
const DAY: i64 = 86_400_000;

fn cli(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(dir.join("consent-relay.toml"))
        .current_dir(dir)
        .output()
        .expect("run consent-relay")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `message()` with its own Message-ID, so its row can be found.
fn tagged(campaign: &str, tag: &str) -> String {
    message(campaign, tag).replace("<m1@example.com>", &format!("<{tag}@example.com>"))
}

/// The test's store: `db` is the relay's SQLite path, whose directory also
/// names the PostgreSQL schema of a `pg` run.
async fn connect(db: &Path) -> AnyConnection {
    common::backend::connect(db.parent().expect("the store is in the test dir")).await
}

/// Message-ID tag → whether the message still holds its body.
async fn bodies(db: &Path) -> Vec<(String, bool)> {
    let mut c = connect(db).await;
    let rows = sqlx::query(
        "SELECT header_message_id, CAST(CASE WHEN body IS NULL THEN 0 ELSE 1 END AS BIGINT) FROM messages WHERE kind = 'relay' ORDER BY header_message_id",
    )
    .fetch_all(&mut c)
    .await
    .expect("messages")
    .iter()
    .map(|r| {
        let id: String = r.get(0);
        let tag = id.trim_matches(['<', '>']).trim_end_matches("@example.com");
        (tag.to_owned(), r.get::<i64, _>(1) == 1)
    })
    .collect();
    c.close().await.expect("close");
    rows
}

/// Rows per table: messages, decisions, deliveries, consent events, subjects.
async fn counts(db: &Path) -> [i64; 5] {
    let mut c = connect(db).await;
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM messages), (SELECT COUNT(*) FROM decisions), \
         (SELECT COUNT(*) FROM deliveries), (SELECT COUNT(*) FROM consent_events), \
         (SELECT COUNT(*) FROM subjects)",
    )
    .fetch_one(&mut c)
    .await
    .expect("counts");
    let out = [0, 1, 2, 3, 4].map(|i| row.get::<i64, _>(i));
    c.close().await.expect("close");
    out
}

async fn statuses(db: &Path) -> Vec<String> {
    let mut c = connect(db).await;
    let rows = sqlx::query("SELECT status FROM deliveries ORDER BY id")
        .fetch_all(&mut c)
        .await
        .expect("deliveries")
        .iter()
        .map(|r| r.get(0))
        .collect();
    c.close().await.expect("close");
    rows
}

async fn bodies_go_after_delivery_and_undelivered_ones_stay() {
    let sink = Sink::start().await;
    let mut relay = TestRelay::start(sink.addr(), "", "").await;
    let db = relay.db_path();
    relay
        .consent("ann@example.com", "newsletter", Action::Grant, None)
        .await;

    // m1: delivered to ann, suppressed for bob.
    let r = relay
        .send(
            &["ann@example.com", "bob@example.com"],
            &tagged("newsletter", "m1"),
        )
        .await;
    assert!(r.contains("(1 delivered, 1 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;
    // m2: every recipient suppressed: nothing to send, so no body is kept.
    let r = relay
        .send(&["bob@example.com"], &tagged("newsletter", "m2"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    // m3: the upstream keeps deferring it.
    sink.script((0..60).map(|_| Fault::Mail(451, "4.3.0 try later")));
    let r = relay
        .send(&["ann@example.com"], &tagged("newsletter", "m3"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    eventually("m3 is deferred", || async {
        statuses(&db).await == ["sent", "deferred"]
    })
    .await;
    assert_eq!(
        bodies(&db).await,
        [
            ("m1".into(), true),
            ("m2".into(), false),
            ("m3".into(), true)
        ]
    );

    let before = counts(&db).await;
    let store = relay.store().clone();
    let r = &relay.config.retention;
    let now = consent_relay::time::now_ms();
    // Within 30 days of the delivery, nothing goes.
    let p = retention::purge(&store, r, now + 29 * DAY, None)
        .await
        .unwrap();
    assert!(p.is_empty(), "{p:?}");
    // After them: m1's body, not m3's (still to deliver); no row at all.
    let would = retention::dry_run(&store, r, now + 31 * DAY).await.unwrap();
    let p = retention::purge(&store, r, now + 31 * DAY, None)
        .await
        .unwrap();
    let expected = PurgeReport {
        message_bodies: 1,
        ..PurgeReport::default()
    };
    assert_eq!((would, p), (expected, expected));
    assert_eq!(
        bodies(&db).await,
        [
            ("m1".into(), false),
            ("m2".into(), false),
            ("m3".into(), true)
        ]
    );
    assert_eq!(counts(&db).await, before);
    relay.stop().await;
}
both_stores!(bodies_go_after_delivery_and_undelivered_ones_stay);

async fn old_decisions_and_deliveries_go_and_consent_events_stay() {
    let sink = Sink::start().await;
    let mut relay = TestRelay::start(sink.addr(), "", "").await;
    let db = relay.db_path();
    relay
        .consent("ann@example.com", "newsletter", Action::Grant, None)
        .await;
    relay
        .consent("bob@example.com", "prospecting", Action::Withdraw, None)
        .await;
    for (rcpts, campaign, tag) in [
        (
            &["ann@example.com", "bob@example.com"][..],
            "newsletter",
            "m1",
        ),
        (&["bob@example.com"][..], "prospecting", "m2"),
        (&["carl@example.com"][..], "invoices", "m3"),
    ] {
        let r = relay.send(rcpts, &tagged(campaign, tag)).await;
        assert!(r.starts_with("250"), "{r}");
    }
    sink.wait_for(2, Duration::from_secs(10)).await;
    eventually("both copies are recorded as sent", || async {
        statuses(&db).await == ["sent", "sent"]
    })
    .await;
    // 3 messages, 4 decisions, 2 deliveries, 2 consent events, 3 subjects
    // (ann, bob, and carl who got an invoice).
    assert_eq!(counts(&db).await, [3, 4, 2, 2, 3]);

    let store = relay.store().clone();
    let r = &relay.config.retention;
    let now = consent_relay::time::now_ms();
    let p = retention::purge(&store, r, now + 2 * 365 * DAY, None)
        .await
        .unwrap();
    assert_eq!(p.decisions + p.deliveries + p.messages, 0, "{p:?}");
    assert_eq!(p.message_bodies, 2, "m1 and m3 were delivered; m2 had none");

    let later = now + 4 * 365 * DAY;
    let would = retention::dry_run(&store, r, later).await.unwrap();
    let p = retention::purge(&store, r, later, None).await.unwrap();
    let expected = PurgeReport {
        message_bodies: 0,
        decisions: 4,
        deliveries: 2,
        messages: 3,
    };
    assert_eq!((would, p), (expected, expected));
    // Consent events are proof until erasure; subjects carry them.
    assert_eq!(counts(&db).await, [0, 0, 0, 2, 3]);
    let again = retention::dry_run(&store, r, later).await.unwrap();
    assert!(again.is_empty(), "{again:?}");

    // Later mail still sees the consent.
    let r = relay
        .send(&["ann@example.com"], &tagged("newsletter", "m4"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    relay.stop().await;
}
both_stores!(old_decisions_and_deliveries_go_and_consent_events_stay);

/// A relay keeping bodies one second after delivery, purging every `interval`.
async fn one_second_bodies(sink: &Sink, interval: &str) -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "")
        + &format!("\n[retention]\nmessage_bodies = \"1s\"\npurge_interval = \"{interval}\"\n");
    TestRelay::start_with(dir, &text).await
}

/// An invoice to carl, tagged `tag`.
async fn send_invoice(relay: &TestRelay, tag: &str) {
    let r = relay
        .send(&["carl@example.com"], &tagged("invoices", tag))
        .await;
    assert!(r.starts_with("250"), "{r}");
}

/// The binary's `purge` and `purge --dry-run`, then `serve`'s own purge
/// running every second: with a one-second body retention, each
/// delivered message's body goes, the one still deferred stays.
async fn purge_command_and_serve_purge_remove_delivered_bodies() {
    let sink = Sink::start().await;
    let mut relay = one_second_bodies(&sink, "1d").await;
    let db = relay.db_path();
    send_invoice(&relay, "m1").await;
    sink.wait_for(1, Duration::from_secs(10)).await;
    eventually("m1 is recorded as sent", || async {
        statuses(&db).await == ["sent"]
    })
    .await;
    let dir = relay.dir.path().to_owned();
    eventually("the dry run sees m1's body", || async {
        cli(&dir, &["purge", "--dry-run"])
            .stdout
            .starts_with(b"message bodies: 1 would be removed\n")
    })
    .await;
    assert_eq!(
        stdout(&cli(&dir, &["purge", "--dry-run"])),
        "message bodies: 1 would be removed\ndecisions: 0 would be removed\n\
         deliveries: 0 would be removed\nmessages: 0 would be removed\n"
    );
    assert_eq!(bodies(&db).await, [("m1".into(), true)], "a dry run");
    assert_eq!(
        stdout(&cli(&dir, &["purge"])),
        "message bodies: 1 removed\ndecisions: 0 removed\ndeliveries: 0 removed\nmessages: 0 removed\n"
    );
    assert_eq!(bodies(&db).await, [("m1".into(), false)]);
    assert!(stdout(&cli(&dir, &["purge"])).starts_with("message bodies: 0 removed\n"));
    relay.stop().await;

    // serve purges at start and every purge_interval.
    let mut relay = one_second_bodies(&sink, "1s").await;
    let db = relay.db_path();
    // None on SQLite (a new file); on PostgreSQL the test's schema is the
    // same, with m1 from above.
    let mut expected = bodies(&db).await;
    send_invoice(&relay, "m3").await;
    sink.wait_for(2, Duration::from_secs(10)).await;
    sink.script((0..60).map(|_| Fault::Mail(451, "4.3.0 try later")));
    send_invoice(&relay, "m4").await;
    expected.extend([("m3".into(), false), ("m4".into(), true)]);
    eventually("serve's purge removes m3's body", || async {
        bodies(&db).await == expected
    })
    .await;
    // Stops cleanly, purge task included.
    relay.stop().await;
}
both_stores!(purge_command_and_serve_purge_remove_delivered_bodies);

/// Gap closed: a copy whose recipient was erased while it was being sent
/// fails afterwards; its outcome and its bounce (which would quote the
/// address) are not recorded. The store alone, no delivery worker.
async fn a_copy_failing_after_erasure_bounces_without_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(dir.path(), "smtp://127.0.0.1:9", "", ""),
    );
    let store = Store::open(&config.store, false).await.unwrap();
    let erin = "erin@example.com";
    let now = consent_relay::time::now_ms();
    let new_message = |id: &str, kind, from: &str, to: &str, body: &str| NewMessage {
        id: id.into(),
        kind,
        mail_from: from.into(),
        client_ip: "127.0.0.1".into(),
        helo: "client.test".into(),
        auth_user: None,
        campaign: if kind == MessageKind::Relay {
            "prospecting".into()
        } else {
            String::new()
        },
        header_message_id: None,
        body: body.as_bytes().to_vec(),
        received_at: now,
        recipients: vec![RecipientDecision {
            recipient: to.into(),
            rcpt_to: None,
            subject_id: None,
            new_subject: Some(subject::new_subject(&config.signing, to)),
            outcome: policy::Outcome::Deliver,
            reason: policy::Reason::NotObjected,
            event_id: None,
        }],
        smtputf8: false,
    };
    store
        .accept_message(new_message(
            "01JM0000000000000000000001",
            MessageKind::Relay,
            "crm@example.com",
            erin,
            &format!("To: {erin}\r\nSubject: offer\r\n\r\nhello\r\n"),
        ))
        .await
        .unwrap();
    let claimed = store
        .claim_due("node", now, now + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    let report = consent_relay::rights::erase(
        &store,
        &config,
        &consent_relay::consent::identity::Identity::of(erin).unwrap(),
        &consent_relay::store::Actor::new("dpo", consent_relay::store::Via::Cli),
    )
    .await
    .unwrap()
    .expect("erased");
    assert_eq!(report.cancelled, 1);

    // The worker's outcome arrives: failed, with a bounce quoting erin.
    let dsn = new_message(
        "01JM0000000000000000000002",
        MessageKind::Dsn,
        "",
        "crm@example.com",
        &format!("Subject: Undelivered\r\n\r\nFinal-Recipient: rfc822; {erin}\r\n"),
    );
    store
        .record_attempts(vec![AttemptRecord {
            delivery_id: claimed[0].id,
            status: DeliveryStatus::Failed,
            attempted: true,
            reply: format!("550 5.1.1 <{erin}> no such user"),
            next_attempt_at: now,
            campaign: None,
            late_decision: None,
            dsn: Some(dsn),
            bounce: None,
        }])
        .await
        .unwrap();
    store.close().await;

    let db = dir.path().join("relay.db");
    let mut c = connect(&db).await;
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query("SELECT m.kind, d.status, d.last_reply FROM deliveries d JOIN messages m ON m.id = d.message_id")
            .fetch_all(&mut c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    assert_eq!(
        rows,
        [(
            "relay".into(),
            "suppressed-late".into(),
            Some("erased".into())
        )]
    );
    if common::backend::on_postgres() {
        c.close().await.unwrap();
        assert_eq!(
            common::backend::rows_holding(dir.path(), erin).await,
            Vec::<String>::new()
        );
        return;
    }
    let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut c)
        .await;
    c.close().await.unwrap();
    for suffix in ["", "-wal"] {
        let bytes = std::fs::read(format!("{}{suffix}", db.display())).unwrap_or_default();
        assert!(
            !bytes.windows(erin.len()).any(|w| w == erin.as_bytes()),
            "relay.db{suffix} holds the address"
        );
    }
}
both_stores!(a_copy_failing_after_erasure_bounces_without_the_address);

async fn register_lists_every_campaign_with_its_legal_basis() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webhook.secret"), "0123456789abcdef0123").unwrap();
    let text = config_text(dir.path(), "smtp://mail.example.net:2525", "", "")
        + "\n[webhook]\nurl = \"https://crm.example.com/hooks/consent\"\nsecret_file = \"webhook.secret\"\n\
           \n[retention]\nmessage_bodies = \"7d\"\n\
           \n[[campaign]]\nid = \"digest\"\nlabel = \"Weekly digest\"\npolicy = \"opt-in\"\ndouble_opt_in = true\n";
    std::fs::write(dir.path().join("consent-relay.toml"), text).unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&cli(dir.path(), &["register", "--json"]))).unwrap();
    assert_eq!(json["relay"], "relay.test");
    let activities = json["activities"].as_array().unwrap();
    let by_id = |id: &str| {
        activities
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing"))
    };
    let ids: Vec<&str> = activities
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "newsletter",
            "prospecting",
            "invoices",
            "old",
            "gone",
            "digest",
            "relay:decision-log",
            "relay:consent-proof"
        ]
    );
    let n = by_id("newsletter");
    assert_eq!(
        (&n["purpose"], &n["legal_basis"], &n["article"]),
        (
            &"Newsletter".into(),
            &"consent".into(),
            &"GDPR Art. 6(1)(a)".into()
        )
    );
    assert_eq!(n["consent_max_age_days"], 395);
    assert_eq!(
        n["retention"],
        "message bodies 7days after delivery ends; decisions and deliveries 3years"
    );
    assert_eq!(
        n["recipients"],
        serde_json::json!([
            "upstream relay smtp://mail.example.net:2525",
            "CRM webhook https://crm.example.com/hooks/consent"
        ])
    );
    let d = by_id("digest");
    assert_eq!(
        (&d["policy"], &d["legal_basis"], &d["consent_max_age_days"]),
        (
            &"opt-in, double opt-in".into(),
            &"consent".into(),
            &serde_json::Value::Null
        )
    );
    let p = by_id("prospecting");
    assert_eq!(
        (&p["legal_basis"], &p["article"]),
        (&"legitimate interest".into(), &"GDPR Art. 6(1)(f)".into())
    );
    let i = by_id("invoices");
    assert_eq!(
        (&i["legal_basis"], &i["article"]),
        (&"contract".into(), &"GDPR Art. 6(1)(b)".into())
    );
    assert_eq!(by_id("old")["state"], "inactive");
    assert_eq!(
        by_id("relay:decision-log")["retention"],
        "3years (decisions and deliveries)"
    );
    assert_eq!(
        by_id("relay:consent-proof")["recipients"],
        serde_json::json!(["CRM webhook https://crm.example.com/hooks/consent"])
    );

    let table = stdout(&cli(dir.path(), &["register"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "Processing register of the relay relay.test");
    assert!(lines[2].starts_with("id "), "{table}");
    assert!(lines[2].contains("legal basis"), "{table}");
    let invoices = lines.iter().find(|l| l.starts_with("invoices ")).unwrap();
    assert!(invoices.contains("contract, GDPR Art. 6(1)(b)"), "{table}");
    // Columns line up: every row's legal basis starts where the header's does.
    let col = lines[2].find("legal basis").unwrap();
    for l in lines[3..].iter().take_while(|l| !l.is_empty()) {
        assert!(
            ["consent", "legitimate", "contract", "legal obligation"]
                .iter()
                .any(|b| l[col..].starts_with(b)),
            "{l}"
        );
    }
    // The controller (Art. 30(1)(a)), not configured here: the register
    // says which keys to set rather than leaving the lines out.
    assert_eq!(
        json["controller"],
        serde_json::json!({"organisation": null, "contact": null, "privacy_url": null})
    );
    assert_eq!(
        &lines[lines.len() - 3..],
        [
            "Controller: not configured (set [http] organisation)",
            "Data-protection contact: not configured (set [http] contact)",
            "Privacy notice: not configured (set [http] privacy_url)",
        ],
        "{table}"
    );
}
both_stores!(register_lists_every_campaign_with_its_legal_basis);

async fn register_names_the_controller_and_its_contact() {
    let dir = tempfile::tempdir().unwrap();
    let public = "public_url = \"http://127.0.0.1:8080\"";
    let text = config_text(dir.path(), "smtp://mail.example.net:2525", "", "");
    assert!(text.contains(public), "config_text changed");
    let text = text.replacen(
        public,
        &format!(
            "{public}\norganisation = \"Example Ltd\"\ncontact = \"DPO@Example.COM\"\n\
             privacy_url = \"https://example.com/privacy\""
        ),
        1,
    );
    std::fs::write(dir.path().join("consent-relay.toml"), text).unwrap();

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&cli(dir.path(), &["register", "--json"]))).unwrap();
    assert_eq!(
        json["controller"],
        serde_json::json!({
            "organisation": "Example Ltd",
            "contact": "DPO@example.com",
            "privacy_url": "https://example.com/privacy"
        })
    );
    let table = stdout(&cli(dir.path(), &["register"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        &lines[lines.len() - 4..],
        [
            "",
            "Controller: Example Ltd",
            "Data-protection contact: DPO@example.com",
            "Privacy notice: https://example.com/privacy",
        ],
        "{table}"
    );
}
both_stores!(register_names_the_controller_and_its_contact);

/// Two nodes (two store handles on one database) purge at the same time,
/// over more rows than one batch takes: every row goes exactly once between
/// them (their reports add up to the dry run's), neither fails, nothing
/// purgeable is left, and the consent events stay.
async fn two_nodes_purging_at_once_remove_each_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text(dir.path(), "smtp://127.0.0.1:9", "", ""),
    );
    let a = Store::open(&config.store, false).await.unwrap();
    let b = Store::open(&config.store, false).await.unwrap();
    let kept = "kept@example.com";
    a.append_consent_event(admin_event(
        kept,
        subject::new_subject(&config.signing, kept),
        "newsletter",
        Action::Grant,
        1_000,
    ))
    .await
    .unwrap();

    // More than two purge batches (2000 rows) of each kind: per message,
    // one recipient delivered (its copy then sent) and one suppressed.
    const MESSAGES: usize = 2_600;
    let now = consent_relay::time::now_ms();
    let decision = |to: String, outcome, reason| RecipientDecision {
        new_subject: Some(subject::new_subject(&config.signing, &to)),
        recipient: to,
        rcpt_to: None,
        subject_id: None,
        outcome,
        reason,
        event_id: None,
    };
    for i in 0..MESSAGES {
        [&a, &b][i % 2]
            .accept_message(NewMessage {
                id: format!("01JM{i:022}"),
                kind: MessageKind::Relay,
                mail_from: "crm@example.com".into(),
                client_ip: "127.0.0.1".into(),
                helo: "client.test".into(),
                auth_user: None,
                campaign: "prospecting".into(),
                header_message_id: Some(format!("<m{i}@example.com>")),
                body: format!("Subject: offer {i}\r\n\r\nhello\r\n").into_bytes(),
                received_at: now,
                recipients: vec![
                    decision(
                        format!("r{i}@example.net"),
                        policy::Outcome::Deliver,
                        policy::Reason::NotObjected,
                    ),
                    decision(
                        format!("s{i}@example.net"),
                        policy::Outcome::Suppress,
                        policy::Reason::Withdrawn,
                    ),
                ],
                smtputf8: false,
            })
            .await
            .unwrap();
    }
    loop {
        let claimed = a.claim_due("node-a", now, now + 60_000, 500).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        a.record_attempts(
            claimed
                .iter()
                .map(|d| AttemptRecord {
                    delivery_id: d.id,
                    status: DeliveryStatus::Sent,
                    attempted: true,
                    reply: "250 2.0.0 ok".into(),
                    next_attempt_at: now,
                    campaign: None,
                    late_decision: None,
                    dsn: None,
                    bounce: None,
                })
                .collect(),
        )
        .await
        .unwrap();
    }
    let db = dir.path().join("relay.db");
    let n = MESSAGES as i64;
    assert_eq!(counts(&db).await, [n, 2 * n, n, 1, 2 * n + 1]);

    let r = &config.retention;
    let later = now + 4 * 365 * DAY;
    let would = retention::dry_run(&a, r, later).await.unwrap();
    assert_eq!(
        would,
        PurgeReport {
            message_bodies: MESSAGES as u64,
            decisions: 2 * MESSAGES as u64,
            deliveries: MESSAGES as u64,
            messages: MESSAGES as u64,
        }
    );
    let (pa, pb) = tokio::join!(
        retention::purge(&a, r, later, None),
        retention::purge(&b, r, later, None)
    );
    let (pa, pb) = (pa.expect("node a purges"), pb.expect("node b purges"));
    let mut both = pa;
    both.add(&pb);
    assert_eq!(both, would, "a: {pa:?}, b: {pb:?}");
    let left = retention::dry_run(&b, r, later).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    // Subjects stay (they carry consent and proof); so does the event.
    assert_eq!(counts(&db).await, [0, 0, 0, 1, 2 * n + 1]);
    a.close().await;
    b.close().await;
}
both_stores!(two_nodes_purging_at_once_remove_each_row_once);
