//! A real Postfix as the upstream (tests/common/postfix.rs), knowing only
//! `alice` at postfix.test: the copy to an unknown user is accepted, then
//! bounced by Postfix with its own DSN, written to the copy's return path
//! `b-TOKEN@bounces.test` and delivered back to the relay's SMTP listener.
//! The person ends up suppressed with reason `bounced` (in the decision
//! log) and their next mail is not sent; the copy to the known user is
//! delivered and changes nothing. In CI (`CONSENT_RELAY_REQUIRE_POSTFIX`)
//! this test runs, it does not skip.

use std::time::{Duration, Instant};

use super::{BOUNCES, count};
use crate::both_stores;
use crate::common::binary::{BIN, free_port};
use crate::common::postfix::Postfix;
use crate::common::relay::{TestRelay, message};

async fn postfix_bounces_an_unknown_user_back_and_the_person_is_suppressed_as_bounced() {
    let relay_smtp = free_port();
    let Some(pf) = Postfix::start(
        "feedback::postfix",
        "postfix.test",
        &["alice"],
        BOUNCES,
        relay_smtp,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let text = super::feedback_config(dir.path(), &format!("smtp://{}", pf.addr), "").replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{relay_smtp}\""),
        1,
    );
    let relay = TestRelay::start_with(dir, &text).await;
    let both = ["zed@postfix.test", "alice@postfix.test"];
    let r = relay.send(&both, &message("prospecting", "Hello")).await;
    assert!(r.contains("2 delivered, 0 suppressed"), "{r}");
    let done = "SELECT count(*) FROM feedback_reports WHERE door = 'smtp' AND state = 'done'";
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(relay.dir.path(), done).await < 1 {
        assert!(
            Instant::now() < deadline,
            "no DSN from Postfix came back to the relay; Postfix's log:\n{}",
            pf.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pf.delivered("alice").len(), 1, "{}", pf.log());
    // The next mail: zed suppressed as bounced, alice delivered.
    let r = relay.send(&both, &message("prospecting", "Again")).await;
    assert!(r.contains("1 delivered, 1 suppressed"), "{r}");
    let bounced = "SELECT count(*) FROM decisions WHERE reason = 'bounced'";
    assert_eq!(count(relay.dir.path(), bounced).await, 1);
    let out = tokio::process::Command::new(BIN)
        .args(["log", "--recipient", "zed@postfix.test", "--config"])
        .arg(relay.dir.path().join("consent-relay.toml"))
        .output()
        .await
        .expect("consent-relay log");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("bounced"), "{log}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pf.delivered("alice").len() < 2 {
        assert!(Instant::now() < deadline, "{}", pf.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One report only: alice's delivered copy made none.
    assert_eq!(
        count(relay.dir.path(), "SELECT count(*) FROM feedback_reports").await,
        1
    );
}
both_stores!(postfix_bounces_an_unknown_user_back_and_the_person_is_suppressed_as_bounced);
