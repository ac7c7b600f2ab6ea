//! End to end: consent decisions per policy, over real SMTP to a relay with
//! a real SQLite file, delivering to a real SMTP sink; and `consent-relay
//! log` (the real binary) finding them again.

use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;
use consent_relay::consent::Action;
use consent_relay::store::DecisionFilter;

const DAY: i64 = 86_400_000;

async fn reasons(relay: &TestRelay, recipient: &str) -> Vec<(String, String)> {
    relay
        .store()
        .decisions(&DecisionFilter {
            recipient: Some(recipient.into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("decisions")
        .into_iter()
        .map(|d| (d.outcome.to_string(), d.reason.to_string()))
        .collect()
}

fn pair(o: &str, r: &str) -> (String, String) {
    (o.to_owned(), r.to_owned())
}

async fn opt_in_without_grant_is_suppressed_and_with_grant_delivered() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;

    let r = relay
        .send(&["ann@example.net"], &message("newsletter", "hello"))
        .await;
    assert!(r.starts_with("250 2.0.0 queued as "), "{r}");
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");

    relay
        .consent("Ann@Example.net", "newsletter", Action::Grant, None)
        .await;
    let r = relay
        .send(&["ann@example.net"], &message("newsletter", "hello again"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");

    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["ann@example.net"]);
    assert_eq!(got[0].mail_from, "crm@example.com");
    assert_eq!(
        reasons(&relay, "ann@example.net").await,
        [pair("suppress", "no-consent"), pair("deliver", "granted")]
    );
    // Only the one delivered copy ever reaches the sink.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1);
}
both_stores!(opt_in_without_grant_is_suppressed_and_with_grant_delivered);

async fn grant_older_than_max_age_is_consent_expired() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let long_ago = consent_relay::time::now_ms() - 400 * DAY;
    relay
        .consent(
            "old@example.net",
            "newsletter",
            Action::Grant,
            Some(long_ago),
        )
        .await;
    let r = relay
        .send(&["old@example.net"], &message("newsletter", "x"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    assert_eq!(
        reasons(&relay, "old@example.net").await,
        [pair("suppress", "consent-expired")]
    );
}
both_stores!(grant_older_than_max_age_is_consent_expired);

async fn opt_out_is_delivered_unless_withdrawn() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    relay
        .consent("no@example.net", "prospecting", Action::Withdraw, None)
        .await;
    relay
        .consent("all@example.net", "*", Action::Withdraw, None)
        .await;
    let r = relay
        .send(
            &["yes@example.net", "no@example.net", "all@example.net"],
            &message("prospecting", "offer"),
        )
        .await;
    assert!(r.contains("(1 delivered, 2 suppressed)"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["yes@example.net"]);
    assert_eq!(
        reasons(&relay, "yes@example.net").await,
        [pair("deliver", "not-objected")]
    );
    assert_eq!(
        reasons(&relay, "no@example.net").await,
        [pair("suppress", "withdrawn")]
    );
    assert_eq!(
        reasons(&relay, "all@example.net").await,
        [pair("suppress", "unsubscribed-all")]
    );
}
both_stores!(opt_out_is_delivered_unless_withdrawn);

async fn mandatory_is_always_delivered() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    relay
        .consent("no@example.net", "*", Action::Withdraw, None)
        .await;
    relay
        .consent("no@example.net", "invoices", Action::Withdraw, None)
        .await;
    let r = relay
        .send(
            &["no@example.net", "new@example.net"],
            &message("invoices", "bill"),
        )
        .await;
    assert!(r.contains("(2 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        reasons(&relay, "no@example.net").await,
        [pair("deliver", "mandatory")]
    );
}
both_stores!(mandatory_is_always_delivered);

async fn unknown_inactive_deleted_and_missing_campaigns_are_refused() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    for (campaign, text) in [
        ("nope", "unknown campaign \"nope\""),
        ("old", "campaign \"old\" is inactive"),
        ("gone", "campaign \"gone\" is deleted"),
    ] {
        let r = relay
            .send(&["a@example.net"], &message(campaign, "x"))
            .await;
        assert!(r.starts_with("550 5.7.1 "), "{campaign}: {r}");
        assert!(r.contains(text), "{campaign}: {r}");
    }
    let r = relay
        .send(
            &["a@example.net"],
            "From: crm@example.com\r\nSubject: untagged\r\n\r\nx\r\n",
        )
        .await;
    assert!(
        r.starts_with("550 5.7.1 ") && r.contains("X-Campaign"),
        "{r}"
    );
    let r = relay
        .send(
            &["a@example.net"],
            "X-Campaign: prospecting\r\nX-Campaign: invoices\r\n\r\nx\r\n",
        )
        .await;
    assert!(
        r.starts_with("550 5.7.1 ") && r.contains("different campaigns"),
        "{r}"
    );
    // A "header" in the body is not the campaign header.
    let r = relay
        .send(
            &["a@example.net"],
            "Subject: s\r\n\r\nX-Campaign: prospecting\r\n",
        )
        .await;
    assert!(r.starts_with("550 5.7.1 "), "{r}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.count(), 0);
    assert!(reasons(&relay, "a@example.net").await.is_empty());
}
both_stores!(unknown_inactive_deleted_and_missing_campaigns_are_refused);

async fn a_folded_lowercase_campaign_header_is_read_and_left_out_of_the_copy() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let r = relay
        .send(
            &["a@example.net"],
            "Subject: s\r\nx-CAMPAIGN:\r\n   prospecting  \r\n\r\nbody\r\n",
        )
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let data = String::from_utf8_lossy(&got[0].data);
    assert!(!data.to_ascii_lowercase().contains("x-campaign"), "{data}");
}
both_stores!(a_folded_lowercase_campaign_header_is_read_and_left_out_of_the_copy);

async fn a_message_without_the_header_goes_to_the_missing_campaign() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "missing_campaign = \"prospecting\"", "").await;
    let r = relay
        .send(&["a@example.net"], "Subject: s\r\n\r\nbody\r\n")
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;
}
both_stores!(a_message_without_the_header_goes_to_the_missing_campaign);

async fn all_suppressed_answers_250_and_sends_nothing() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let r = relay
        .send(
            &["a@example.net", "b@example.net", "c@example.net"],
            &message("newsletter", "x"),
        )
        .await;
    assert!(r.starts_with("250 2.0.0 queued as "), "{r}");
    assert!(r.contains("(0 delivered, 3 suppressed)"), "{r}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), 0);
    assert_eq!(sink.connections(), 0);
}
both_stores!(all_suppressed_answers_250_and_sends_nothing);

async fn duplicate_recipients_get_one_decision_and_one_copy() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let r = relay
        .send(
            &["a@example.net", "A@Example.NET"],
            &message("prospecting", "x"),
        )
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1);
}
both_stores!(duplicate_recipients_get_one_decision_and_one_copy);

/// A commit that fails (here a trigger stands in for a full disk) answers
/// 451 4.3.0 and leaves nothing half-written; the next message goes through.
async fn failed_commit_answers_451_and_writes_nothing() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let mut db = common::backend::connect(relay.dir.path()).await;
    let (fail, unfail): (&[&str], &str) = if common::backend::on_postgres() {
        (
            &[
                "CREATE FUNCTION fail_deliveries() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$",
                "CREATE TRIGGER fail_deliveries BEFORE INSERT ON deliveries \
                 FOR EACH ROW EXECUTE FUNCTION fail_deliveries()",
            ],
            "DROP TRIGGER fail_deliveries ON deliveries",
        )
    } else {
        (
            &[
                "CREATE TRIGGER fail_deliveries BEFORE INSERT ON deliveries \
               BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
            ],
            "DROP TRIGGER fail_deliveries",
        )
    };
    for sql in fail {
        sqlx::query(*sql).execute(&mut db).await.unwrap();
    }
    let r = relay
        .send(&["a@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    let dir = relay.dir.path().to_owned();
    let count = |table: &'static str| {
        let dir = dir.clone();
        async move {
            let mut db = common::backend::connect(&dir).await;
            let n: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                    .fetch_one(&mut db)
                    .await
                    .unwrap();
            n
        }
    };
    assert_eq!(count("messages").await, 0);
    assert_eq!(count("decisions").await, 0);
    assert_eq!(count("subjects").await, 0);
    sqlx::query(unfail).execute(&mut db).await.unwrap();
    let r = relay
        .send(&["a@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.starts_with("250"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(count("messages").await, 1);
}
both_stores!(failed_commit_answers_451_and_writes_nothing);

/// Concurrent messages to the same new recipient create one subject, and
/// every decision names a subject that exists.
async fn concurrent_messages_share_one_new_subject() {
    let sink = Sink::start().await;
    let relay = std::sync::Arc::new(TestRelay::start(sink.addr(), "", "").await);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let relay = relay.clone();
        tasks.push(tokio::spawn(async move {
            relay
                .send(
                    &["same@example.net", &format!("other{i}@example.net")],
                    &message("prospecting", "x"),
                )
                .await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().starts_with("250"));
    }
    sink.wait_for(16, Duration::from_secs(10)).await;
    let mut db = common::backend::connect(relay.dir.path()).await;
    let subjects: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM subjects WHERE address = 'same@example.net'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(subjects, 1);
    let dangling: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM decisions d WHERE d.subject_id IS NULL \
         OR NOT EXISTS (SELECT 1 FROM subjects s WHERE s.id = d.subject_id)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(dangling, 0);
}
both_stores!(concurrent_messages_share_one_new_subject);

/// An erased address is known only by its keyed hash: mail to it is
/// suppressed as `erased` under any policy but mandatory.
async fn erased_address_is_suppressed_by_its_hash() {
    use base64::Engine;
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let key = base64::engine::general_purpose::STANDARD
        .decode(common::relay::KEY)
        .unwrap();
    let hash = consent_relay::consent::subject::address_hash(&key, "gone@example.net");
    let mut db = common::backend::connect(relay.dir.path()).await;
    sqlx::query(
        "INSERT INTO subjects (id, address, address_hash, key_id, created_at, erased_at) \
         VALUES ('erasedsubjectid0000000', NULL, $1, 'k1', 0, 0)",
    )
    .bind(&hash)
    .execute(&mut db)
    .await
    .unwrap();
    let r = relay
        .send(&["Gone@Example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    // Written down by its hash, not by the address the person had erased.
    assert_eq!(
        reasons(&relay, &format!("erased:{hash}")).await,
        [pair("suppress", "erased")]
    );
    assert_eq!(reasons(&relay, "gone@example.net").await, []);
    let r = relay
        .send(&["gone@example.net"], &message("invoices", "x"))
        .await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    // The mandatory copy did not bring the address back.
    let r = relay
        .send(&["gone@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
}
both_stores!(erased_address_is_suppressed_by_its_hash);

/// Rows of `consent-relay log --json`, the command having succeeded.
fn log_rows(o: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("log --json")
}

/// `field` of each row.
fn each<'a>(rows: &'a [serde_json::Value], field: &str) -> Vec<&'a str> {
    rows.iter()
        .map(|r| r[field].as_str().unwrap_or_else(|| panic!("{field}: {r}")))
        .collect()
}

/// `consent-relay log` finds the mail a person quotes (by the queue id of
/// the 250 reply, or by its Message-ID, brackets or not), says what kind
/// each message was, and shows the newest rows, saying when older ones
/// match too; bad values are refused with a message.
async fn log_finds_mail_by_queue_id_or_message_id_newest_rows_first() {
    let sink = Sink::start().await;
    let relay = common::admin::start(&sink).await;
    let [first, second, third, confirmation] = common::admin::mail_to_look_up(&relay).await;

    let rows = log_rows(
        &relay
            .cli(&["log", "--queue-id", &first.to_lowercase(), "--json"])
            .await,
    );
    assert_eq!(
        each(&rows, "recipient"),
        ["ann@example.net", "bob@example.net"]
    );
    assert_eq!(each(&rows, "queue_id"), [first.as_str(), first.as_str()]);
    assert_eq!(each(&rows, "kind"), ["relay", "relay"]);
    assert_eq!(each(&rows, "message_id"), ["<first@example.com>"; 2]);

    let rows = log_rows(
        &relay
            .cli(&["log", "--message-id", " second@example.com ", "--json"])
            .await,
    );
    assert_eq!(each(&rows, "queue_id"), [second.as_str(), third.as_str()]);
    let o = relay
        .cli(&["log", "--message-id", "<second@example.com>"])
        .await;
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("kind") && lines[0].contains("message-id"),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[1].contains(&second) && lines[2].contains(&third),
        "{text}"
    );
    assert!(
        lines[1..]
            .iter()
            .all(|l| l.contains("<second@example.com>")),
        "{text}"
    );

    // The relay's own double opt-in mail says what it is.
    let o = relay.cli(&["log", "--recipient", "Dan@Example.net"]).await;
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().nth(1).unwrap_or_default();
    assert!(
        line.contains(&confirmation)
            && line.contains(" confirmation ")
            && line.contains("digest")
            && line.contains("pending-confirmation")
            && line.contains(".optin@relay.test>"),
        "{text}"
    );
    let rows = log_rows(
        &relay
            .cli(&["log", "--queue-id", &confirmation, "--json"])
            .await,
    );
    assert_eq!(each(&rows, "kind"), ["confirmation"]);

    // The newest rows, printed oldest first; the note goes to stderr.
    let o = relay.cli(&["log", "--limit", "2", "--json"]).await;
    assert_eq!(
        each(&log_rows(&o), "recipient"),
        ["cat@example.net", "dan@example.net"]
    );
    let note = String::from_utf8_lossy(&o.stderr);
    assert!(note.contains("showing the newest 2 rows"), "{note}");
    for args in [&["log", "--json"][..], &["log", "--limit", "5", "--json"]] {
        let o = relay.cli(args).await;
        let rows = log_rows(&o);
        assert_eq!(
            each(&rows, "recipient"),
            [
                "ann@example.net",
                "bob@example.net",
                "ann@example.net",
                "cat@example.net",
                "dan@example.net"
            ],
            "{args:?}"
        );
        let ids: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    for (args, says) in [
        (
            &["log", "--queue-id", "nope"][..],
            "--queue-id \"nope\" is not a queue id",
        ),
        (
            &["log", "--message-id", "<a@example.com"],
            "--message-id \"<a@example.com\" opens with <",
        ),
        (
            &["log", "--message-id", "  "],
            "--message-id \"  \" is empty",
        ),
        (&["log", "--message-id", "a b@example.com"], "white space"),
        (&["log", "--limit", "0"], "--limit"),
    ] {
        let o = relay.cli(args).await;
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{args:?}: {err}");
    }
}
both_stores!(log_finds_mail_by_queue_id_or_message_id_newest_rows_first);
