//! `consent-relay feedback [FILE]`: exit 0 stored (one line saying what it
//! changed), 65 not a report (why on stderr, nothing stored), 75 when the
//! store cannot take it (the MTA that piped it in tries again).

use std::process::Output;

use tokio::io::AsyncWriteExt as _;

use super::{NOT_A_REPORT, count, delivered_copy, dsn};
use crate::both_stores;
use crate::common::binary::BIN;
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;

/// `consent-relay feedback ARGS --config CONFIG`, `stdin` piped in.
pub async fn feedback(config: &std::path::Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = tokio::process::Command::new(BIN)
        .arg("feedback")
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(config.parent().expect("config dir"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run consent-relay feedback");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).await.expect("write stdin");
    drop(input);
    child.wait_with_output().await.expect("wait")
}

fn config_of(relay: &TestRelay) -> std::path::PathBuf {
    relay.dir.path().join("consent-relay.toml")
}

async fn a_bounce_from_stdin_or_a_file_is_stored_and_exits_0() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "").await;
    let id = delivered_copy(&relay, &sink, "ann@example.net").await;
    let out = feedback(
        &config_of(&relay),
        &[],
        dsn(&relay.config, id, "ann@example.net", "5.1.1").as_bytes(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("report ") && stdout.contains("bounce"),
        "{stdout}"
    );
    let again = relay
        .send(&["ann@example.net"], &message("prospecting", "Again"))
        .await;
    assert!(again.contains("0 delivered, 1 suppressed"), "{again}");
    // From a file, the same bytes: the same row, said so.
    let file = relay.dir.path().join("dsn.eml");
    std::fs::write(&file, dsn(&relay.config, id, "ann@example.net", "5.1.1")).expect("write");
    let out = feedback(&config_of(&relay), &[file.to_str().expect("path")], b"").await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("received before"));
    assert_eq!(
        count(
            relay.dir.path(),
            "SELECT count(*) FROM feedback_reports WHERE door = 'cli'"
        )
        .await,
        1
    );
}
both_stores!(a_bounce_from_stdin_or_a_file_is_stored_and_exits_0);

async fn a_message_that_is_not_a_report_exits_65_and_stores_nothing() {
    let sink = Sink::start().await;
    let relay = super::start(&sink, "").await;
    let out = feedback(&config_of(&relay), &[], NOT_A_REPORT.as_bytes()).await;
    assert_eq!(out.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a report"), "{stderr}");
    assert_eq!(
        count(relay.dir.path(), "SELECT count(*) FROM feedback_reports").await,
        0
    );
}
both_stores!(a_message_that_is_not_a_report_exits_65_and_stores_nothing);

#[tokio::test]
async fn a_store_that_cannot_be_opened_exits_75_to_try_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start().await;
    let text = super::feedback_config(dir.path(), &format!("smtp://{}", sink.addr()), "");
    // The database's directory is a file: the store cannot be opened.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    let url = crate::common::backend::store_url(dir.path());
    let text = text.replace(&url, &format!("sqlite://{}/relay.db", file.display()));
    assert!(text.contains("not-a-dir"), "the store url is in the config");
    let loaded = crate::common::relay::write_config(dir.path(), &text);
    let config = dir.path().join("consent-relay.toml");
    let dsn_text = dsn(&loaded, 1, "ann@example.net", "5.1.1");
    let out = feedback(&config, &[], dsn_text.as_bytes()).await;
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("try again"));
}
