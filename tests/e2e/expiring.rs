//! End to end: `consent-relay consent expiring` (the real binary) over the
//! store of a relay running in-process, and the re-permission path: the
//! CRM's re-opt-in mail goes through the relay, the recipient confirms at
//! the copy's `[[OPTIN_URL]]` over real HTTP, and the renewed grant takes
//! them off the list.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{TestRelay, message};
use crate::common::sink::Sink;
use consent_relay::consent::Action;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_consent-relay");
const DAY_MS: i64 = 86_400_000;

/// Runs the binary without blocking the test's runtime, where the relay runs.
async fn run(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(dir.join("consent-relay.toml"))
        .output()
        .await
        .expect("run consent-relay")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn expiring_json(dir: &Path, within: &str) -> Vec<Value> {
    let out = run(
        dir,
        &[
            "consent",
            "expiring",
            "--campaign",
            "newsletter",
            "--within",
            within,
            "--json",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("a JSON array")
}

fn addresses(rows: &[Value]) -> Vec<&str> {
    rows.iter()
        .map(|r| r["address"].as_str().unwrap())
        .collect()
}

async fn expiring_lists_old_grants_and_a_confirmed_re_opt_in_takes_them_off() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let dir = relay.dir.path();
    // newsletter: consent_max_age_days = 395.
    let now = consent_relay::time::now_ms();
    let grant = |who: &'static str, days_ago: i64| {
        let relay = &relay;
        async move {
            relay
                .consent(
                    who,
                    "newsletter",
                    Action::Grant,
                    Some(now - days_ago * DAY_MS),
                )
                .await
        }
    };
    grant("old@example.net", 400).await; // expired 5 days ago
    grant("soon@example.net", 380).await; // expires in 15 days
    grant("later@example.net", 300).await; // in 95 days
    grant("fresh@example.net", 0).await;
    grant("quit@example.net", 390).await;
    relay
        .consent(
            "quit@example.net",
            "*",
            Action::Withdraw,
            Some(now - 10 * DAY_MS),
        )
        .await;
    relay
        .consent(
            "gone@example.net",
            "newsletter",
            Action::Withdraw,
            Some(now - 500 * DAY_MS),
        )
        .await;

    let rows = expiring_json(dir, "30d").await;
    assert_eq!(addresses(&rows), ["old@example.net", "soon@example.net"]);
    assert_eq!(rows[0]["expired"], true);
    assert_eq!(rows[1]["expired"], false);
    assert_eq!(rows[1]["campaign"], "newsletter");
    let since = consent_relay::rights::time(now - 380 * DAY_MS);
    let expires = consent_relay::rights::time(now + 15 * DAY_MS);
    assert_eq!(rows[1]["granted_since"], since.as_str());
    assert_eq!(rows[1]["expires_at"], expires.as_str());
    assert_eq!(
        addresses(&expiring_json(dir, "100d").await),
        ["old@example.net", "soon@example.net", "later@example.net"]
    );

    let table = run(
        dir,
        &[
            "consent",
            "expiring",
            "--campaign",
            "newsletter",
            "--within",
            "30d",
        ],
    )
    .await;
    let table = text(&table.stdout);
    assert!(
        table.starts_with("newsletter: 2 grants expire by "),
        "{table}"
    );
    assert!(table.contains("(1 already expired)"), "{table}");
    let old = table
        .lines()
        .find(|l| l.starts_with("old@example.net"))
        .unwrap();
    assert!(old.ends_with("expired"), "{old}");
    let soon = table
        .lines()
        .find(|l| l.starts_with("soon@example.net"))
        .unwrap();
    assert!(soon.ends_with("expiring"), "{soon}");

    // The CRM mails the re-opt-in to the expiring list; the copy carries
    // the recipient's opt-in link.
    let body = "Stay with us: [[OPTIN_URL]]";
    let r = relay
        .send(
            &["soon@example.net", "old@example.net"],
            &message("newsletter", body),
        )
        .await;
    // An expired grant no longer reaches anyone with this campaign.
    assert!(r.contains("(1 delivered, 1 suppressed)"), "{r}");
    let copy = sink.wait_for(1, Duration::from_secs(10)).await.remove(0);
    assert_eq!(copy.rcpt_to, ["soon@example.net"]);
    let copy = text(&copy.data);
    let start = copy.find("http://127.0.0.1:8080/o/").expect("opt-in link");
    let path: String = copy[start + "http://127.0.0.1:8080".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let url = relay.url(&path);
    let client = reqwest::Client::new();
    let page = client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let before = relay
        .store()
        .subject_consent("soon@example.net")
        .await
        .unwrap()
        .unwrap();
    // One click on the page's button.
    let done = client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("confirm=1")
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), reqwest::StatusCode::OK);
    let after = relay
        .store()
        .subject_consent("soon@example.net")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.events.len(), before.events.len() + 1);
    let fresh = after.events.last().unwrap();
    assert_eq!(
        (
            fresh.action.as_str(),
            fresh.source.as_str(),
            fresh.campaign.as_str()
        ),
        ("grant", "link", "newsletter")
    );
    let state = after
        .states
        .iter()
        .find(|s| s.campaign == "newsletter")
        .unwrap();
    assert_eq!(state.event_id, fresh.id);
    assert!(state.since >= now, "since renewed: {} < {now}", state.since);

    // Off the list; the expired one stays until they grant again.
    assert_eq!(
        addresses(&expiring_json(dir, "30d").await),
        ["old@example.net"]
    );
}
both_stores!(expiring_lists_old_grants_and_a_confirmed_re_opt_in_takes_them_off);

async fn a_campaign_without_max_age_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text_ = common::relay::config_text(dir.path(), "smtp://127.0.0.1:9", "", "");
    std::fs::write(dir.path().join("consent-relay.toml"), text_).unwrap();
    let out = run(
        dir.path(),
        &["consent", "expiring", "--campaign", "prospecting"],
    )
    .await;
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(
        err.contains("consent-relay.toml: campaign[1].consent_max_age_days: not set for campaign \"prospecting\", so its grants never expire (set consent_max_age_days = 395 under its [[campaign]]"),
        "{err}"
    );
    let out = run(dir.path(), &["consent", "expiring", "--campaign", "nope"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown campaign \"nope\""),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        dir.path(),
        &[
            "consent",
            "expiring",
            "--campaign",
            "newsletter",
            "--within",
            "soon",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--within: \"soon\" is not a duration"),
        "{}",
        text(&out.stderr)
    );
}
both_stores!(a_campaign_without_max_age_is_an_error_naming_the_key);
