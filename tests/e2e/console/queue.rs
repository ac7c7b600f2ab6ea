//! `/admin/queue`: deferred, held and failed copies made through the
//! relay (an upstream that says "try later", a paused campaign, an
//! upstream that refuses), their counts and the oldest deferred copy; an
//! admin retries a deferred copy now, releases a held one (refused while
//! its campaign is paused) and drops one (confirmed), each in the audit
//! trail with their name; a viewer and a DPO are refused; a forged form
//! changes nothing; held copies page by 50.

use std::time::Duration;

use consent_relay::store::{AuditAction, Via};
use reqwest::StatusCode;

use crate::both_stores;
use crate::common::backend;
use crate::common::console::{self, ADMIN, DPO, Operator, VIEWER, audit_of, slow_retries};
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Fault, Sink};

const PATH: &str = "/admin/queue";

/// Each copy as (delivery id, status, next attempt), in the order made.
async fn copies(relay: &TestRelay) -> Vec<(i64, String, i64)> {
    let mut c = backend::connect(relay.dir.path()).await;
    sqlx::query_as("SELECT id, status, next_attempt_at FROM deliveries ORDER BY id")
        .fetch_all(&mut c)
        .await
        .expect("copies")
}

/// The rows of the page's table (between `<tbody>` and `</tbody>`).
fn rows(body: &str) -> Vec<&str> {
    let start = body.find("<tbody>").expect("a table") + "<tbody>".len();
    let end = body[start..].find("</tbody>").expect("end of table") + start;
    body[start..end]
        .split("<tr>")
        .filter(|r| r.contains("</td>") && !r.contains("colspan"))
        .collect()
}

async fn pause(admin: &mut Operator, campaign: &str) {
    let res = admin
        .submit(
            "/admin/campaigns",
            "/admin/campaigns/pause",
            &[("campaign", campaign), ("reason", "checking the list")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
}

async fn a_deferred_copy_is_shown_and_retried_now() {
    let sink = Sink::start().await;
    sink.script([Fault::Rcpt(451, "4.2.0 <ann@example.net>: mailbox busy")]);
    let mut relay = console::start_edited(&sink, slow_retries).await;
    let queue_id = relay
        .send(&["ann@example.net"], &message("prospecting", "x"))
        .await
        .split_whitespace()
        .nth(4)
        .expect("queue id")
        .to_owned();
    eventually("the copy is deferred", || async {
        copies(&relay).await.iter().any(|c| c.1 == "deferred")
    })
    .await;
    let (id, _, next) = copies(&relay).await[0].clone();
    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let page = viewer.get(PATH).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let listed = rows(&page.body);
    assert_eq!(listed.len(), 1, "{}", page.body);
    let row = listed[0];
    assert!(
        row.contains(&format!("href=\"/admin/message?id={queue_id}\"")),
        "{row}"
    );
    assert!(
        row.contains("href=\"/admin/person?address=ann%40example.net\""),
        "{row}"
    );
    assert!(
        row.contains("prospecting") && row.contains("deferred"),
        "{row}"
    );
    assert!(row.contains("451") && row.contains("mailbox busy"), "{row}");
    assert!(!row.contains("/admin/queue/retry"), "a viewer has no forms");
    // The counts and the oldest deferred copy.
    assert!(
        page.body
            .contains("<div class=\"figure\">1</div><div class=\"muted\">deferred</div>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Oldest deferred copy"), "{}", page.body);
    assert!(page.body.contains("deferred (1)") && page.body.contains("held (0)"));

    // Refused: a viewer's and a DPO's crafted post, a forged form.
    let id_text = id.to_string();
    let fields = [("id", id_text.as_str())];
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    for op in [&mut viewer, &mut dpo] {
        let res = op.submit(PATH, "/admin/queue/retry", &fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
    }
    let mut admin = Operator::signed_in(&relay, ADMIN.1).await;
    let res = admin.post("/admin/queue/retry", &fields).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = admin
        .post("/admin/queue/retry", &[("csrf", "x"), ("id", &id_text)])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(copies(&relay).await[0], (id, "deferred".into(), next));
    assert!(
        audit_of(&relay, AuditAction::DeliveryRetry)
            .await
            .is_empty()
    );
    assert_eq!(sink.count(), 0);

    // The admin's page has the button; retrying sends it now.
    let page = admin.get(PATH).await;
    assert!(rows(&page.body)[0].contains("/admin/queue/retry"));
    let res = admin.submit(PATH, "/admin/queue/retry", &fields).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let shown = admin.get(res.location()).await;
    assert!(
        shown.body.contains(&format!("Copy {id} is due now")),
        "{}",
        shown.body
    );
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["ann@example.net"]);
    let audit = audit_of(&relay, AuditAction::DeliveryRetry).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].via),
        ("alice", Via::Console)
    );
    assert_eq!(audit[0].target.as_deref(), Some(id_text.as_str()));
    // Sent now: another retry is refused, saying why.
    eventually("the copy is sent", || async {
        copies(&relay).await[0].1 == "sent"
    })
    .await;
    let res = admin.submit(PATH, "/admin/queue/retry", &fields).await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    assert!(
        res.body.contains(&format!(
            "Copy {id} is sent: this applies to a deferred copy only"
        )),
        "{}",
        res.body
    );
    let res = admin
        .submit(PATH, "/admin/queue/retry", &[("id", "999999")])
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(audit_of(&relay, AuditAction::DeliveryRetry).await.len(), 1);
    relay.stop().await;
}
both_stores!(a_deferred_copy_is_shown_and_retried_now);

async fn held_copies_are_released_once_not_paused_and_dropped_when_confirmed() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let mut admin = Operator::signed_in(&relay, ADMIN.1).await;
    pause(&mut admin, "prospecting").await;
    for to in ["ann@example.net", "ben@example.net"] {
        let r = relay.send(&[to], &message("prospecting", "x")).await;
        assert!(r.starts_with("250"), "{r}");
    }
    let held = copies(&relay).await;
    assert!(held.iter().all(|c| c.1 == "held"), "{held:?}");
    let (ann, ben) = (held[0].0.to_string(), held[1].0.to_string());
    let page = admin.get("/admin/queue?status=held").await;
    let listed = rows(&page.body);
    assert_eq!(listed.len(), 2, "{}", page.body);
    // Newest first.
    assert!(listed[0].contains("ben@example.net"), "{}", listed[0]);
    // Its campaign is paused: resuming it releases the copy, so the row
    // links there rather than offering a release that would be refused.
    assert!(
        listed[0].contains("href=\"/admin/campaigns#campaign-prospecting\"")
            && !listed[0].contains("/admin/queue/release")
            && listed[0].contains("/admin/queue/drop"),
        "{}",
        listed[0]
    );

    // Released while the campaign is paused: refused, saying what to do.
    let res = admin
        .submit(PATH, "/admin/queue/release", &[("id", &ann)])
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    assert!(
        res.body
            .contains("is held because campaign prospecting is paused: resume the campaign"),
        "{}",
        res.body
    );
    // Dropped only with the box ticked; a viewer or DPO not at all.
    let res = admin
        .submit(PATH, "/admin/queue/drop", &[("id", &ben)])
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    for token in [VIEWER.1, DPO.1] {
        let mut op = Operator::signed_in(&relay, token).await;
        let res = op
            .submit(
                PATH,
                "/admin/queue/drop",
                &[("id", &ben), ("confirm", "yes")],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        let res = op
            .submit(PATH, "/admin/queue/release", &[("id", &ann)])
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
    }
    assert!(copies(&relay).await.iter().all(|c| c.1 == "held"));
    assert!(audit_of(&relay, AuditAction::DeliveryDrop).await.is_empty());
    assert!(
        audit_of(&relay, AuditAction::DeliveryRelease)
            .await
            .is_empty()
    );
    let res = admin
        .submit(
            "/admin/queue?status=held",
            "/admin/queue/drop",
            &[("id", &ben), ("confirm", "yes"), ("status", "held")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(res.location().contains("status=held"), "{}", res.location());
    let shown = admin.get(res.location()).await;
    assert!(shown.body.contains("dropped; it will never be sent"));
    assert_eq!(rows(&shown.body).len(), 1);
    assert_eq!(copies(&relay).await[1].1, "dropped");
    let audit = audit_of(&relay, AuditAction::DeliveryDrop).await;
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].target.as_deref()),
        ("alice", Some(ben.as_str()))
    );

    // A held copy whose pause is gone (lifted in the store by hand, not
    // through resume, which would release it too) is released.
    let mut c = backend::connect(relay.dir.path()).await;
    sqlx::query("DELETE FROM campaign_pauses")
        .execute(&mut c)
        .await
        .expect("lift the pause");
    let page = admin.get("/admin/queue?status=held").await;
    assert!(rows(&page.body)[0].contains("/admin/queue/release"));
    let res = admin
        .submit(PATH, "/admin/queue/release", &[("id", &ann)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["ann@example.net"]);
    let audit = audit_of(&relay, AuditAction::DeliveryRelease).await;
    assert_eq!(audit[0].actor, "alice");
    relay.stop().await;
}
both_stores!(held_copies_are_released_once_not_paused_and_dropped_when_confirmed);

async fn failed_copies_have_no_actions_and_held_ones_page_by_fifty() {
    let sink = Sink::start().await;
    sink.script([Fault::Rcpt(550, "5.1.1 <gone@example.net>: no such user")]);
    let mut relay = console::start(&sink).await;
    relay
        .send(&["gone@example.net"], &message("prospecting", "x"))
        .await;
    eventually("the copy failed", || async {
        copies(&relay).await.iter().any(|c| c.1 == "failed")
    })
    .await;
    let mut admin = Operator::signed_in(&relay, ADMIN.1).await;
    let page = admin.get("/admin/queue?status=failed").await;
    let listed = rows(&page.body);
    assert_eq!(listed.len(), 1, "{}", page.body);
    assert!(listed[0].contains("550 5.1.1"), "{}", listed[0]);
    assert!(!listed[0].contains("<form"), "a failed copy has no actions");
    assert!(page.body.contains("failed (1)"), "{}", page.body);

    // 55 held copies: 50 on the first page, newest first, then 5.
    pause(&mut admin, "newsletter").await;
    let rcpts: Vec<String> = (0..55).map(|i| format!("p{i:02}@example.org")).collect();
    let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    for r in &rcpts {
        relay
            .consent(r, "newsletter", consent_relay::consent::Action::Grant, None)
            .await;
    }
    let reply = relay.send(&rcpts, &message("newsletter", "x")).await;
    assert!(reply.starts_with("250"), "{reply}");
    let page = admin.get("/admin/queue?status=held").await;
    let first = rows(&page.body);
    assert_eq!(first.len(), 50);
    assert!(first[0].contains("p54@example.org"), "{}", first[0]);
    assert!(first[49].contains("p05@example.org"), "{}", first[49]);
    assert!(page.body.contains("held (55)"));
    let at = page.body.find("rel=\"next\"").expect("a next page");
    let href_at = page.body[..at].rfind("href=\"").expect("its link") + "href=\"".len();
    let href = page.body[href_at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    assert!(
        href.starts_with("/admin/queue?status=held&before="),
        "{href}"
    );
    let page = admin.get(&href).await;
    let second = rows(&page.body);
    assert_eq!(second.len(), 5, "{}", page.body);
    assert!(second[4].contains("p00@example.org"));
    assert!(!page.body.contains("rel=\"next\""));
    assert!(page.body.contains("Newest"));
    // Bad paging or status: a clear refusal.
    assert_eq!(
        admin.get("/admin/queue?status=sent").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        admin.get("/admin/queue?before=x").await.status,
        StatusCode::BAD_REQUEST
    );
    relay.stop().await;
}
both_stores!(failed_copies_have_no_actions_and_held_ones_page_by_fifty);
