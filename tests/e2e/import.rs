//! End to end: `consent-relay import` (the real binary) into the store of a
//! relay running in-process, on SQLite and on PostgreSQL (see
//! `common::backend`). A bad file is refused whole with
//! every error listed; a good one is imported once, whatever the number of
//! runs; imported grants decide the next message like any other consent.

use std::path::Path;
use std::process::Output;

use tokio::process::Command;

use crate::both_stores;
use crate::common;
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;
use consent_relay::consent::Action;
use consent_relay::store::ConsentEvent;

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");

/// Runs the binary without blocking the test's runtime, where the relay
/// runs: a relay frozen inside a transaction would hold the database lock.
async fn import(dir: &Path, file: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .arg("import")
        .arg(file)
        .args(extra)
        .arg("--config")
        .arg(dir.join("consent-relay.toml"))
        .current_dir(dir)
        .output()
        .await
        .expect("run consent-relay import")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn erase(relay: &TestRelay, email: &str) {
    consent_relay::rights::erase(
        relay.store(),
        &relay.config,
        &consent_relay::consent::identity::Identity::of(email).unwrap(),
        &consent_relay::store::Actor::new("dpo", consent_relay::store::Via::Cli),
    )
    .await
    .unwrap()
    .expect("erased");
}

async fn events(relay: &TestRelay, email: &str) -> Vec<ConsentEvent> {
    relay
        .store()
        .subject_consent(email)
        .await
        .expect("store")
        .map(|s| s.events)
        .unwrap_or_default()
}

const GOOD: &str = "email,campaign,action,at,source,evidence\n\
ann@example.net,newsletter,grant,2026-11-01T08:00:00Z,form,\"signup form v3, footer\"\n\
Bob@Example.net,newsletter,grant,2026-11-02,,\n\
bob@example.net,prospecting,withdraw,,,\n\
cy@example.net,*,withdraw,2026-10-01T12:00:00+02:00,admin,ticket 42\n";

async fn a_file_is_imported_once_and_decides_the_next_message() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let dir = relay.dir.path();
    std::fs::write(dir.join("crm.csv"), GOOD).unwrap();

    let dry = import(dir, "crm.csv", &["--dry-run"]).await;
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(
        text(&dry.stdout),
        "crm.csv: dry run: 4 would be imported, 0 already present; nothing written\n"
    );
    assert!(events(&relay, "ann@example.net").await.is_empty());

    let first = import(dir, "crm.csv", &["--source", "admin"]).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout),
        "crm.csv: 4 imported, 0 already present\n"
    );

    let ann = events(&relay, "ann@example.net").await;
    assert_eq!(ann.len(), 1);
    let e = &ann[0];
    assert_eq!(
        (e.campaign.as_str(), e.action.as_str(), e.source.as_str()),
        ("newsletter", "grant", "form")
    );
    assert_eq!(
        consent_relay::time::format_time(e.at),
        "2026-11-01T08:00:00Z"
    );
    assert_eq!(
        e.evidence.as_deref(),
        Some("signup form v3, footer; imported from crm.csv line 2")
    );
    let bob = events(&relay, "bob@example.net").await;
    assert_eq!(bob.len(), 2);
    // No `source` cell: --source.
    assert_eq!(bob[0].source, "admin");
    assert_eq!(
        bob[1].evidence.as_deref(),
        Some("imported from crm.csv line 4")
    );
    let cy = events(&relay, "cy@example.net").await;
    assert_eq!(
        consent_relay::time::format_time(cy[0].at),
        "2026-10-01T10:00:00Z"
    );

    // Again, and with the rows in another order and other spellings: nothing new.
    let again = import(dir, "crm.csv", &[]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        text(&again.stdout),
        "crm.csv: 0 imported, 4 already present\n"
    );
    std::fs::write(
        dir.join("shuffled.csv"),
        "action,email,campaign,at,source,evidence\n\
         grant,ANN@example.net ,newsletter,2026-11-01T09:00:00+01:00,form,signup form v3, footer\n",
    )
    .unwrap();
    let shuffled = import(dir, "shuffled.csv", &[]).await;
    assert!(!shuffled.status.success(), "a comma in an unquoted cell");
    std::fs::write(
        dir.join("shuffled.csv"),
        "action,email,campaign,at,source,evidence\n\
         grant,ANN@example.net ,newsletter,2026-11-01T09:00:00+01:00,form,\"signup form v3, footer\"\n\
         grant,ann@example.net,newsletter,2026-11-01T08:00:00Z,form,\"signup form v3, footer\"\n",
    )
    .unwrap();
    let shuffled = import(dir, "shuffled.csv", &[]).await;
    assert_eq!(
        text(&shuffled.stdout),
        "shuffled.csv: 0 imported, 2 already present\n"
    );
    assert_eq!(events(&relay, "ann@example.net").await.len(), 1);

    // The imported state decides, as any consent: ann granted the opt-in
    // newsletter; bob granted it but withdrew from prospecting; cy withdrew
    // from everything.
    let r = relay
        .send(
            &["ann@example.net", "bob@example.net", "cy@example.net"],
            &message("newsletter", "hello"),
        )
        .await;
    assert!(r.contains("(2 delivered, 1 suppressed)"), "{r}");
    let r = relay
        .send(
            &["ann@example.net", "bob@example.net", "cy@example.net"],
            &message("prospecting", "offer"),
        )
        .await;
    assert!(r.contains("(1 delivered, 2 suppressed)"), "{r}");

    // Erasure drops the import keys (a hash of rows naming the address).
    let mut db = common::backend::connect(relay.dir.path()).await;
    let keys = "SELECT COUNT(*) FROM consent_events WHERE import_key IS NOT NULL";
    let held: i64 = sqlx::query_scalar(keys).fetch_one(&mut db).await.unwrap();
    assert_eq!(held, 4);
    erase(&relay, "bob@example.net").await;
    let held: i64 = sqlx::query_scalar(keys).fetch_one(&mut db).await.unwrap();
    assert_eq!(held, 2);
}
both_stores!(a_file_is_imported_once_and_decides_the_next_message);

/// The same file imported twice at the same moment (two processes, as on
/// two nodes): every row is imported once, by one of them.
async fn two_imports_at_once_import_each_row_once() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let dir = relay.dir.path();
    let mut csv = String::from("email,campaign,action,at\n");
    for n in 0..1_500 {
        csv.push_str(&format!("p{n}@example.net,newsletter,grant,2026-11-01\n"));
    }
    std::fs::write(dir.join("crm.csv"), csv).unwrap();

    let (a, b) = tokio::join!(import(dir, "crm.csv", &[]), import(dir, "crm.csv", &[]));
    let mut imported = 0;
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", text(&out.stderr));
        let line = text(&out.stdout);
        let counts: Vec<u64> = line
            .trim_start_matches("crm.csv: ")
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        assert_eq!(counts.len(), 2, "{line}");
        assert_eq!(counts[0] + counts[1], 1_500, "{line}");
        imported += counts[0];
    }
    assert_eq!(imported, 1_500, "{}{}", text(&a.stdout), text(&b.stdout));
    for n in [0, 999, 1_000, 1_499] {
        assert_eq!(events(&relay, &format!("p{n}@example.net")).await.len(), 1);
    }
}
both_stores!(two_imports_at_once_import_each_row_once);

async fn a_bad_file_lists_every_error_and_imports_nothing() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let dir = relay.dir.path();
    // An erased person stays erased: an old list cannot bring them back.
    relay
        .consent("gone@example.net", "newsletter", Action::Grant, None)
        .await;
    erase(&relay, "gone@example.net").await;
    std::fs::write(
        dir.join("bad.csv"),
        "email,campaign,action,at\n\
         ok@example.net,newsletter,grant,\n\
         nobody,newsletter,grant,\n\
         ok2@example.net,weekly,grant,\n\
         ok3@example.net,newsletter,optin,2026-13-01\n\
         gone@example.net,newsletter,grant,\n",
    )
    .unwrap();
    let out = import(dir, "bad.csv", &[]).await;
    assert_eq!(out.status.code(), Some(65), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "bad.csv:3: column email: \"nobody\" is not an email address (write it as name@domain)",
            &format!(
                "bad.csv:4: column campaign: \"weekly\" is not a campaign in {} (use one of: newsletter, prospecting, invoices, old, or '*' to withdraw from all)",
                dir.join("consent-relay.toml").display()
            ),
            "bad.csv:5: column action: \"optin\" is not an action (use grant or withdraw)",
            "bad.csv:5: column at: \"2026-13-01\" is not an RFC 3339 time (write 2026-11-01T08:00:00Z, 2026-11-01T09:00:00+01:00 or 2026-11-01)",
            "consent-relay: bad.csv: 4 errors on 3 lines; nothing imported (fix them and run the import again)",
        ]
    );
    assert!(events(&relay, "ok@example.net").await.is_empty());

    // Fixed but for the erased row: refused too, by the store's check.
    std::fs::write(
        dir.join("bad.csv"),
        "email,campaign,action\nok@example.net,newsletter,grant\ngone@example.net,newsletter,grant\n",
    )
    .unwrap();
    let out = import(dir, "bad.csv", &[]).await;
    assert_eq!(out.status.code(), Some(65));
    assert!(
        text(&out.stderr).starts_with(
            "bad.csv:3: column email: gone@example.net was erased (right to be forgotten); remove the row"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(events(&relay, "ok@example.net").await.is_empty());
    assert!(events(&relay, "gone@example.net").await.is_empty());

    let out = import(dir, "missing.csv", &[]).await;
    assert_eq!(out.status.code(), Some(65));
    assert!(text(&out.stderr).contains("missing.csv: cannot read"));
}
both_stores!(a_bad_file_lists_every_error_and_imports_nothing);
