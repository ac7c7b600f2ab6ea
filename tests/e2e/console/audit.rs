//! `/admin/audit`: the changes operators made through the console, the
//! API and the command line, newest first, with who and through which
//! door, about whom (linked to the person while their address is held,
//! "erased" after), filtered by operator and by action, paged by 50;
//! every role reads it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_stores;
use crate::bounces::BOUNCES;
use crate::common::admin::call;
use crate::common::console::{self, ADMIN, DPO, Operator, VIEWER};
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Fault, Sink};

const PATH: &str = "/admin/audit";

/// The rows of the page's table.
fn rows(body: &str) -> Vec<&str> {
    let start = body.find("<tbody>").expect("a table") + "<tbody>".len();
    let end = body[start..].find("</tbody>").expect("end of table") + start;
    body[start..end]
        .split("<tr>")
        .filter(|r| r.contains("</td>") && !r.contains("colspan"))
        .collect()
}

/// The action each row shows (its wire name), top to bottom.
fn actions(body: &str) -> Vec<String> {
    rows(body)
        .iter()
        .map(|r| {
            let at = r.find("<code class=\"muted\">").expect("an action") + 20;
            r[at..].split('<').next().unwrap().to_owned()
        })
        .collect()
}

/// The real binary, as the Unix user `user`.
async fn cli(relay: &TestRelay, user: &str, args: &[&str]) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_consent-relay"))
        .args(args)
        .arg("--config")
        .arg(relay.dir.path().join("consent-relay.toml"))
        .current_dir(relay.dir.path())
        .env("USER", user)
        .output()
        .await
        .expect("run consent-relay");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn the_trail_shows_who_did_what_and_filters() {
    let sink = Sink::start().await;
    let mut relay = console::start_edited(&sink, |t| format!("{t}\n{BOUNCES}")).await;
    sink.script([Fault::Rcpt(550, "5.1.1 <ivy@example.net>: no such user")]);
    relay
        .send(&["ivy@example.net"], &message("prospecting", "x"))
        .await;
    eventually("ivy is suppressed", || async {
        let s = relay.store().suppressions_of("ivy@example.net").await;
        s.unwrap().iter().any(|s| s.active)
    })
    .await;

    // Alice pauses and resumes from the console; Dora lifts Ivy's suppression.
    let mut alice = Operator::signed_in(&relay, ADMIN.1).await;
    for (path, fields) in [
        (
            "/admin/campaigns/pause",
            &[("campaign", "prospecting"), ("reason", "a bad list")][..],
        ),
        (
            "/admin/campaigns/resume",
            &[("campaign", "prospecting")][..],
        ),
    ] {
        let res = alice.submit("/admin/campaigns", path, fields).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    }
    let mut dora = Operator::signed_in(&relay, DPO.1).await;
    let res = dora
        .submit(
            "/admin/suppressions",
            "/admin/suppressions/remove",
            &[("address", "ivy@example.net"), ("reason", "she wrote in")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    // Carol from the command line; Alice through the API, about Ben, then
    // erasing him.
    cli(
        &relay,
        "carol",
        &["campaign", "pause", "newsletter", "--reason", "by hand"],
    )
    .await;
    let body = json!({"email": "ben@example.net", "campaign": "newsletter", "action": "grant"});
    let res = call(
        &relay,
        Method::POST,
        "/api/v1/consent",
        Some(ADMIN.1),
        Some(body.to_string()),
    )
    .await;
    assert!(res.status.is_success(), "{}", res.body);
    let ben = relay.subject_id("ben@example.net").await;
    let res = call(
        &relay,
        Method::DELETE,
        "/api/v1/subjects/ben@example.net",
        Some(ADMIN.1),
        None,
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);

    // Every role reads it, newest first.
    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let page = viewer.get(PATH).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let shown: Vec<String> = actions(&page.body)
        .into_iter()
        .filter(|a| !a.starts_with("sign-"))
        .collect();
    assert_eq!(
        shown,
        [
            "subject-erase",
            "consent-grant",
            "campaign-pause",
            "suppression-remove",
            "campaign-resume",
            "campaign-pause"
        ],
        "{}",
        page.body
    );
    let row = |action: &str, who: &str| {
        rows(&page.body)
            .into_iter()
            .find(|r| {
                r.contains(&format!("<code class=\"muted\">{action}</code>"))
                    && r.contains(&format!("<strong>{who}</strong>"))
            })
            .unwrap_or_else(|| panic!("no {action} by {who}: {}", page.body))
            .to_owned()
    };
    let removal = row("suppression-remove", "dora");
    assert!(removal.contains(">console<") && removal.contains("suppression removed"));
    assert!(
        removal.contains("href=\"/admin/person?address=ivy%40example.net\""),
        "{removal}"
    );
    assert!(removal.contains("she wrote in"), "{removal}");
    let pause = row("campaign-pause", "carol");
    assert!(pause.contains(">command line<") && pause.contains("<code>newsletter</code>"));
    let pause = row("campaign-pause", "alice");
    assert!(
        pause.contains(">console<") && pause.contains("a bad list"),
        "{pause}"
    );
    // Ben is erased: his rows name the subject only.
    for action in ["consent-grant", "subject-erase"] {
        let r = row(action, "alice");
        assert!(r.contains(">API<"), "{r}");
        assert!(
            r.contains(&format!("<code>{ben}</code>")) && r.contains("(erased)"),
            "{r}"
        );
        assert!(!r.contains("ben@example.net"), "{r}");
    }
    assert!(!page.body.contains("ben@example.net"));

    // Filters: one operator, one action, both.
    let page = viewer.get("/admin/audit?operator=dora").await;
    assert_eq!(
        actions(&page.body),
        ["suppression-remove", "sign-in"],
        "{}",
        page.body
    );
    assert!(page.body.contains("value=\"dora\""));
    let page = viewer.get("/admin/audit?action=campaign-pause").await;
    assert_eq!(actions(&page.body), ["campaign-pause", "campaign-pause"]);
    assert!(page.body.contains("value=\"campaign-pause\" selected"));
    let page = viewer
        .get("/admin/audit?operator=carol&action=campaign-pause")
        .await;
    assert_eq!(rows(&page.body).len(), 1);
    let page = viewer.get("/admin/audit?operator=nobody").await;
    assert!(rows(&page.body).is_empty());
    assert_eq!(
        viewer.get("/admin/audit?action=nonsense").await.status,
        StatusCode::BAD_REQUEST
    );
    let mut fr = Operator::signed_in(&relay, VIEWER.1).await.french();
    let page = fr.get(PATH).await;
    assert!(page.body.contains("<h1>Journal d") && page.body.contains("ligne de commande"));
    assert!(page.body.contains("suppression retirée"));
    relay.stop().await;
}
both_stores!(the_trail_shows_who_did_what_and_filters);

async fn the_trail_pages_by_fifty_keeping_its_filter() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let mut alice = Operator::signed_in(&relay, ADMIN.1).await;
    let csrf = alice.get("/admin/campaigns").await.csrf();
    for _ in 0..51 {
        for (path, extra) in [
            ("/admin/campaigns/pause", Some(("reason", "again"))),
            ("/admin/campaigns/resume", None),
        ] {
            let mut fields = vec![("csrf", csrf.as_str()), ("campaign", "newsletter")];
            fields.extend(extra);
            let res = alice.post(path, &fields).await;
            assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
        }
    }
    let next = |body: &str| {
        let at = body.find("rel=\"next\"")?;
        let href_at = body[..at].rfind("href=\"")? + "href=\"".len();
        Some(body[href_at..].split('"').next()?.replace("&amp;", "&"))
    };
    // 102 rows: 50, 50, then the rest.
    let page = alice.get(PATH).await;
    assert_eq!(rows(&page.body).len(), 50);
    assert_eq!(actions(&page.body)[0], "campaign-resume");
    let page = alice.get(&next(&page.body).expect("a second page")).await;
    assert_eq!(rows(&page.body).len(), 50);
    assert!(page.body.contains("Newest"));
    let page = alice.get(&next(&page.body).expect("a third page")).await;
    let rest = actions(&page.body);
    assert_eq!(
        rest.iter().filter(|a| a.starts_with("campaign-")).count(),
        2,
        "{}",
        page.body
    );
    assert_eq!(next(&page.body), None);
    // The filter stays on the next page's link: 51 pauses are 50 and 1.
    let page = alice
        .get("/admin/audit?operator=alice&action=campaign-pause")
        .await;
    assert_eq!(rows(&page.body).len(), 50);
    let href = next(&page.body).expect("a next page");
    assert!(
        href.starts_with("/admin/audit?operator=alice&action=campaign-pause&before="),
        "{href}"
    );
    let page = alice.get(&href).await;
    assert_eq!(actions(&page.body), ["campaign-pause"]);
    assert_eq!(next(&page.body), None);
    relay.stop().await;
}
both_stores!(the_trail_pages_by_fifty_keeping_its_filter);
