//! End to end: who acts. Operators of `[[http.operator]]` with their
//! roles on the API over real HTTP (a viewer only reads, a dpo changes
//! people but posts no reports, an admin does all; refusals are `403`
//! JSON and record nothing), the token's operator named as the actor of
//! each change and export, the legacy token as `admin`; the command line
//! (the real binary) names `$USER`; and after an erasure no audit row
//! names the person.

use consent_relay::store::{AuditFilter, AuditRow};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_stores;
use crate::common::admin::{ADMIN_TOKEN, admin_config, call, sha256_hex};
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;

const ADA: &str = "token-of-ada-0b7c";
const DORA: &str = "token-of-dora-91e2";
const VIC: &str = "token-of-vic-4d5a";

/// A relay whose API knows the legacy admin token and three operators.
async fn start(sink: &Sink) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut text = admin_config(dir.path(), &format!("smtp://{}", sink.addr()));
    for (name, token, role) in [
        ("ada", ADA, "admin"),
        ("dora", DORA, "dpo"),
        ("vic", VIC, "viewer"),
    ] {
        text.push_str(&format!(
            "\n[[http.operator]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\n",
            sha256_hex(token)
        ));
    }
    TestRelay::start_with(dir, &text).await
}

/// Every audit row, newest first.
async fn trail(relay: &TestRelay) -> Vec<AuditRow> {
    relay
        .store()
        .audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit rows")
}

/// (actor, via, action) of each row.
fn who(rows: &[AuditRow]) -> Vec<(&str, &str, &str)> {
    rows.iter()
        .map(|r| (r.actor.as_str(), r.via.as_str(), r.action.as_str()))
        .collect()
}

fn grant(email: &str) -> Option<String> {
    Some(json!({"email": email, "campaign": "newsletter", "action": "grant"}).to_string())
}

const NOT_A_REPORT: &str = "From: a@example.net\r\nSubject: hi\r\n\r\njust mail\r\n";

async fn each_role_may_do_what_it_says_and_every_change_names_its_operator() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let ann = "/api/v1/subjects/ann@example.com";
    let refused = |a: &crate::common::admin::Answer, role: &str, needs: &str| {
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
        assert_eq!(a.body["error"], "forbidden", "{}", a.body);
        assert_eq!(a.body["role"], role, "{}", a.body);
        let message = a.body["message"].as_str().unwrap_or_default();
        assert!(
            message.ends_with(&format!("(needs role {needs})")),
            "{message}"
        );
    };

    // A viewer reads, and changes nothing.
    let read = call(&relay, Method::GET, "/api/v1/campaigns", Some(VIC), None).await;
    assert_eq!(read.status, StatusCode::OK);
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(VIC),
        grant("ann@example.com"),
    )
    .await;
    refused(&a, "viewer", "admin or dpo");
    let a = call(&relay, Method::DELETE, ann, Some(VIC), None).await;
    refused(&a, "viewer", "admin or dpo");
    let removal = Some(json!({"reason": "x"}).to_string());
    let a = call(
        &relay,
        Method::DELETE,
        "/api/v1/suppressions/ann@example.com",
        Some(VIC),
        removal,
    )
    .await;
    refused(&a, "viewer", "admin or dpo");
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/feedback",
        Some(VIC),
        Some(NOT_A_REPORT.into()),
    )
    .await;
    refused(&a, "viewer", "admin");

    // A dpo changes people, but posts no reports.
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(DORA),
        grant("ann@example.com"),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let subject = a.body["subject_id"]
        .as_str()
        .expect("a subject id")
        .to_owned();
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/feedback",
        Some(DORA),
        Some(NOT_A_REPORT.into()),
    )
    .await;
    refused(&a, "dpo", "admin");
    let a = call(&relay, Method::GET, ann, Some(DORA), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = call(&relay, Method::DELETE, ann, Some(DORA), None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);

    // An admin may post a report (this one is not a report: refused as
    // such, not by role, and stored nothing).
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/feedback",
        Some(ADA),
        Some(NOT_A_REPORT.into()),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    // The legacy token is the operator `admin`; a viewer's export is audited too.
    let a = call(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(ADMIN_TOKEN),
        grant("bob@example.com"),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let a = call(
        &relay,
        Method::GET,
        "/api/v1/subjects/bob@example.com",
        Some(VIC),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    let rows = trail(&relay).await;
    assert_eq!(
        who(&rows),
        [
            ("vic", "api", "subject-export"),
            ("admin", "api", "consent-grant"),
            ("dora", "api", "subject-erase"),
            ("dora", "api", "subject-export"),
            ("dora", "api", "consent-grant"),
        ],
        "refused requests recorded nothing"
    );
    let about_ann: Vec<Option<&str>> = rows[2..].iter().map(|r| r.subject_id.as_deref()).collect();
    assert_eq!(about_ann, [Some(subject.as_str()); 3]);
    assert_eq!(rows[4].target.as_deref(), Some("newsletter"));
    // Erased: the trail still says what was done to whom, by subject id only.
    let text: Value = serde_json::to_value(&rows).expect("rows as JSON");
    assert!(
        !text.to_string().to_lowercase().contains("ann@example.com"),
        "{text}"
    );
    relay.stop().await;
}
both_stores!(each_role_may_do_what_it_says_and_every_change_names_its_operator);

/// The binary as `carol`; its stdout, or the test fails with its stderr.
async fn carol(relay: &TestRelay, args: &[&str]) -> String {
    let out = relay.cli_as("carol", args).await;
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn the_command_line_names_its_user_as_the_actor() {
    let sink = Sink::start().await;
    let mut relay = TestRelay::start(sink.addr(), "", "").await;
    let dir = relay.dir.path().to_owned();
    carol(
        &relay,
        &[
            "consent",
            "grant",
            "ann@example.net",
            "--campaign",
            "newsletter",
        ],
    )
    .await;
    std::fs::write(
        dir.join("crm.csv"),
        "email,campaign,action\nben@example.net,newsletter,grant\ncy@example.net,newsletter,grant\n",
    )
    .unwrap();
    carol(&relay, &["import", "crm.csv"]).await;
    // The same file again imports nothing: no row.
    carol(&relay, &["import", "crm.csv"]).await;
    carol(&relay, &["export", "ann@example.net"]).await;
    carol(
        &relay,
        &["campaign", "pause", "prospecting", "--reason", "complaints"],
    )
    .await;
    // A copy of the paused campaign is held; released only once the
    // campaign is not paused; dropped by hand.
    let reply = relay
        .send(
            &["dan@example.net"],
            &crate::common::relay::message("prospecting", "Offer\r\n"),
        )
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    let queue = relay.store().queue(10).await.unwrap();
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0].status.as_str(), "held");
    let id = queue[0].id.to_string();
    let refused = relay.cli_as("carol", &["queue", "release", &id]).await;
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&format!(
            "delivery {id} is held because campaign prospecting is paused"
        )),
        "{err}"
    );
    let out = carol(&relay, &["queue", "drop", &id]).await;
    assert!(
        out.contains(&format!("delivery {id} (queue id ")) && out.ends_with("held to dropped\n"),
        "{out}"
    );
    let again = relay.cli_as("carol", &["queue", "retry", &id]).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains(&format!(
            "delivery {id} is dropped: retry applies to deferred copies only"
        )),
        "{again:?}"
    );
    // The listing still takes its flags.
    assert_eq!(carol(&relay, &["queue", "--json"]).await.trim(), "[]");
    carol(&relay, &["campaign", "resume", "prospecting"]).await;
    carol(&relay, &["erase", "ann@example.net"]).await;
    let rows = trail(&relay).await;
    assert_eq!(
        who(&rows),
        [
            ("carol", "cli", "subject-erase"),
            ("carol", "cli", "campaign-resume"),
            ("carol", "cli", "delivery-drop"),
            ("carol", "cli", "campaign-pause"),
            ("carol", "cli", "subject-export"),
            ("carol", "cli", "consent-import"),
            ("carol", "cli", "consent-grant"),
        ]
    );
    assert_eq!(rows[2].target.as_deref(), Some(id.as_str()));
    assert_eq!(
        rows[5].detail.as_deref(),
        Some("2 events imported from crm.csv (0 already present)")
    );
    assert_eq!(
        rows[3].detail.as_deref(),
        Some("complaints (0 copies held)")
    );
    assert_eq!(rows[0].subject_id, rows[6].subject_id);
    relay.stop().await;
}
both_stores!(the_command_line_names_its_user_as_the_actor);
