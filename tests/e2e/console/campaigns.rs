//! `/admin/campaigns`: every configured campaign with its policy and
//! state; an admin pauses (a reason required), drops the held copies (a
//! confirmation required) and resumes, each in the audit trail with their
//! name; a viewer and a DPO see no forms and are refused a crafted post;
//! a form without this session's CSRF token changes nothing; the counts
//! and rates of 7 and 30 days come from copies delivered, bounced and
//! complained about through the relay.

use std::time::Duration;

use consent_relay::store::{AuditAction, Via};
use consent_relay::token::bounce;
use reqwest::StatusCode;

use crate::both_stores;
use crate::bounces::{BOUNCES, arf, hard_dsn, return_path, sent, take};
use crate::common::backend;
use crate::common::console::{self, ADMIN, DPO, Operator, VIEWER, audit_of};
use crate::common::relay::{eventually, message};
use crate::common::sink::Sink;

const PATH: &str = "/admin/campaigns";

/// The card of campaign `id` on the page.
pub(super) fn card<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("id=\"campaign-{id}\""))
        .unwrap_or_else(|| panic!("no card for {id}: {body}"));
    let rest = &body[at..];
    &rest[..rest.find("</section>").expect("end of the card")]
}

/// The statuses of the copies of `campaign`, in the order made.
async fn statuses(relay: &crate::common::relay::TestRelay, campaign: &str) -> Vec<String> {
    let mut c = backend::connect(relay.dir.path()).await;
    sqlx::query_scalar(
        "SELECT d.status FROM deliveries d JOIN messages m ON m.id = d.message_id \
         WHERE m.campaign = $1 ORDER BY d.id",
    )
    .bind(campaign)
    .fetch_all(&mut c)
    .await
    .expect("statuses")
}

async fn an_admin_pauses_drops_and_resumes_a_campaign() {
    let sink = Sink::start().await;
    let mut relay = console::start_edited(&sink, |t| {
        t.replacen(
            "label = \"Newsletter\"",
            "label = { en = \"Newsletter\", fr = \"Lettre d'information\" }",
            1,
        )
    })
    .await;
    let mut admin = Operator::signed_in(&relay, ADMIN.1).await;
    let page = admin.get(PATH).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for (id, label) in [
        ("newsletter", "Newsletter"),
        ("prospecting", "Offers"),
        ("invoices", "Invoices"),
        ("old", "Old"),
        ("gone", "Gone"),
    ] {
        assert!(card(&page.body, id).contains(label), "{id}");
        assert!(card(&page.body, id).contains("/admin/campaigns/pause"));
    }
    let news = card(&page.body, "newsletter");
    assert!(news.contains("opt-in (mailed once they agreed)"), "{news}");
    assert!(news.contains("consent lasts 395 days"), "{news}");
    assert!(news.contains("tag good\">active<"), "{news}");
    assert!(
        news.contains("label: en “Newsletter”, fr “Lettre d&#39;information”"),
        "{news}"
    );
    assert!(card(&page.body, "invoices").contains("mandatory"));
    assert!(card(&page.body, "old").contains(">inactive<"));
    assert!(card(&page.body, "gone").contains(">deleted<"));
    assert!(!page.body.contains(">paused<"));

    // A pause needs a reason.
    let res = admin
        .submit(
            PATH,
            "/admin/campaigns/pause",
            &[("campaign", "prospecting"), ("reason", "  ")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert!(relay.store().campaign_pauses().await.unwrap().is_empty());
    let res = admin
        .submit(
            PATH,
            "/admin/campaigns/pause",
            &[
                ("campaign", "prospecting"),
                ("reason", "complaints from a list"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let shown = admin.get(res.location()).await;
    assert!(
        shown
            .body
            .contains("Campaign <code>prospecting</code> paused; 0 copies held."),
        "{}",
        shown.body
    );
    let pauses = relay.store().campaign_pauses().await.unwrap();
    assert_eq!(
        (pauses[0].paused_by.as_str(), pauses[0].reason.as_str()),
        ("alice", "complaints from a list")
    );
    let audit = audit_of(&relay, AuditAction::CampaignPause).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].via),
        ("alice", Via::Console)
    );
    assert_eq!(audit[0].target.as_deref(), Some("prospecting"));

    // Still accepted; the copy is held, and the card says so.
    let reply = relay
        .send(&["pat@example.org"], &message("prospecting", "Hello"))
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(statuses(&relay, "prospecting").await, ["held"]);
    let page = admin.get(PATH).await;
    let c = card(&page.body, "prospecting");
    assert!(c.contains("tag bad\">paused<"), "{c}");
    assert!(
        c.contains("<strong>alice</strong>: complaints from a list"),
        "{c}"
    );
    assert!(c.contains("resumed: <strong>1</strong>"), "{c}");
    assert!(c.contains("/admin/campaigns/resume"), "{c}");
    assert!(!c.contains("/admin/campaigns/pause"), "{c}");

    // Dropping needs the box ticked; then the copy is never sent.
    let res = admin
        .submit(
            PATH,
            "/admin/campaigns/drop-held",
            &[("campaign", "prospecting")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert_eq!(statuses(&relay, "prospecting").await, ["held"]);
    let res = admin
        .submit(
            PATH,
            "/admin/campaigns/drop-held",
            &[("campaign", "prospecting"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let shown = admin.get(res.location()).await;
    assert!(
        shown
            .body
            .contains("1 held copies of <code>prospecting</code> dropped"),
        "{}",
        shown.body
    );
    assert_eq!(statuses(&relay, "prospecting").await, ["dropped"]);
    let audit = audit_of(&relay, AuditAction::CampaignDropHeld).await;
    assert_eq!(audit[0].actor, "alice");
    assert_eq!(relay.store().campaign_pauses().await.unwrap().len(), 1);

    // Resume: the next held copy goes out.
    relay
        .send(&["quinn@example.org"], &message("prospecting", "Hello"))
        .await;
    assert_eq!(statuses(&relay, "prospecting").await, ["dropped", "held"]);
    let res = admin
        .submit(
            PATH,
            "/admin/campaigns/resume",
            &[("campaign", "prospecting")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(
        res.location().contains("done=resumed"),
        "{}",
        res.location()
    );
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["quinn@example.org"]);
    assert!(relay.store().campaign_pauses().await.unwrap().is_empty());
    let audit = audit_of(&relay, AuditAction::CampaignResume).await;
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].via),
        ("alice", Via::Console)
    );
    // Resuming what is not paused changes nothing, and says so.
    let res = admin
        .submit(
            PATH,
            "/admin/campaigns/resume",
            &[("campaign", "prospecting")],
        )
        .await;
    assert!(
        res.location().contains("done=not-paused"),
        "{}",
        res.location()
    );
    assert_eq!(audit_of(&relay, AuditAction::CampaignResume).await.len(), 1);
    // In French too.
    let mut fr = Operator::signed_in(&relay, ADMIN.1).await.french();
    let page = fr.get(PATH).await;
    assert!(page.body.contains("<html lang=\"fr\">"));
    assert!(
        card(&page.body, "prospecting").contains("opt-out (envoi sauf opposition)"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Mettre en pause"));
    // The label a French reader sees.
    assert!(
        card(&page.body, "newsletter")
            .contains("<h2 id=\"h-newsletter\">Lettre d&#39;information <code>"),
        "{}",
        page.body
    );
    relay.stop().await;
}
both_stores!(an_admin_pauses_drops_and_resumes_a_campaign);

async fn only_an_admin_acts_and_a_forged_form_changes_nothing() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    let actions: [(&str, &[(&str, &str)]); 3] = [
        (
            "/admin/campaigns/pause",
            &[("campaign", "prospecting"), ("reason", "r")],
        ),
        ("/admin/campaigns/resume", &[("campaign", "prospecting")]),
        (
            "/admin/campaigns/drop-held",
            &[("campaign", "prospecting"), ("confirm", "yes")],
        ),
    ];
    for token in [VIEWER.1, DPO.1] {
        let mut op = Operator::signed_in(&relay, token).await;
        let page = op.get(PATH).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(card(&page.body, "prospecting").contains("Offers"));
        assert!(!page.body.contains("/admin/campaigns/pause"), "{token}");
        assert!(!page.body.contains("/admin/campaigns/resume"), "{token}");
        // Their own session's token, a crafted post: refused by role.
        for (path, fields) in actions {
            let res = op.submit(PATH, path, fields).await;
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{token} {path}");
            assert!(res.body.contains("Your role does not allow this"));
        }
    }
    let mut admin = Operator::signed_in(&relay, ADMIN.1).await;
    for (path, fields) in actions {
        let res = admin.post(path, fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "no token: {path}");
        let mut wrong = vec![("csrf", "not-the-token")];
        wrong.extend_from_slice(fields);
        let res = admin.post(path, &wrong).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "wrong token: {path}");
        assert!(res.body.contains("Nothing was changed"));
    }
    assert!(relay.store().campaign_pauses().await.unwrap().is_empty());
    for action in [
        AuditAction::CampaignPause,
        AuditAction::CampaignResume,
        AuditAction::CampaignDropHeld,
    ] {
        assert!(audit_of(&relay, action).await.is_empty());
    }
    // A campaign that is not configured (nor paused) is named as such.
    let res = admin
        .submit(
            PATH,
            "/admin/campaigns/pause",
            &[("campaign", "nope"), ("reason", "r")],
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.body.contains("No such campaign"), "{}", res.body);
    relay.stop().await;
}
both_stores!(only_an_admin_acts_and_a_forged_form_changes_nothing);

async fn counts_and_rates_of_seven_and_thirty_days() {
    let sink = Sink::start().await;
    let mut relay = console::start_edited(&sink, |t| format!("{t}\n{BOUNCES}")).await;
    let mut copies = Vec::new();
    for to in [
        "ann@example.net",
        "ben@example.net",
        "cid@example.net",
        "dan@example.net",
    ] {
        copies.push(sent(&relay, &sink, to, "prospecting").await);
    }
    // Every copy's outcome is recorded (the sink saw the last one first).
    eventually("4 copies counted delivered", || async {
        let days = relay.store().campaign_days(Some("prospecting"), 0).await;
        days.unwrap().iter().map(|d| d.delivered).sum::<i64>() == 4
    })
    .await;
    // Ann's mailbox does not exist; Ben complains.
    take(
        &relay,
        Some(return_path(&relay, copies[0])),
        hard_dsn("ann@example.net"),
    )
    .await;
    let header = format!(
        "X-Consent-Relay-Delivery: {}\r\n",
        bounce::local_part(&relay.config.signing, copies[1]).unwrap()
    );
    take(&relay, None, arf(&header, "1")).await;
    // Ten days ago (before this relay ran): in the 30 days, not in the 7.
    let day = consent_relay::time::day_of(consent_relay::time::now_ms()) - 10;
    let mut c = backend::connect(relay.dir.path()).await;
    sqlx::query(
        "INSERT INTO campaign_days (campaign, day, delivered, hard_bounces, soft_bounces, complaints) \
         VALUES ('prospecting', $1, 6, 0, 1, 0)",
    )
    .bind(day)
    .execute(&mut c)
    .await
    .expect("an older day");

    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let page = viewer.get(PATH).await;
    let c = card(&page.body, "prospecting");
    let row = |period: &str| {
        let at = c.find(period).unwrap_or_else(|| panic!("{period}: {c}"));
        let rest = &c[at..];
        rest[..rest.find("</tr>").expect("end of row")].to_owned()
    };
    // 4 delivered, 1 hard bounce, 1 complaint: 25 % each, above the
    // default pause line (0.3 %; the guard waits for 1000 copies a day).
    let week = row(">7 days<");
    assert!(
        week.contains(
            "<td class=\"num\">4</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">1</td>"
        ),
        "{week}"
    );
    assert!(week.contains("25%"), "{week}");
    assert!(week.contains("tag bad\">pause line<"), "{week}");
    // 10 delivered, 1 hard and 1 soft bounce, 1 complaint: 20 % and 10 %.
    let month = row(">30 days<");
    assert!(
        month.contains(
            "<td class=\"num\">10</td><td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">1</td>"
        ),
        "{month}"
    );
    assert!(month.contains("20%") && month.contains("10%"), "{month}");
    // Nothing delivered elsewhere: no rate.
    assert!(card(&page.body, "newsletter").contains("<td class=\"num\">—</td>"));
    assert!(
        page.body.contains("warns at <strong>0.1%</strong>"),
        "{}",
        page.body
    );
    let mut fr = Operator::signed_in(&relay, VIEWER.1).await.french();
    let page = fr.get(PATH).await;
    let c = card(&page.body, "prospecting");
    assert!(
        c.contains("25\u{202f}%") && c.contains("seuil de pause"),
        "{c}"
    );
    assert!(c.contains(">7 jours<"), "{c}");
    relay.stop().await;
}
both_stores!(counts_and_rates_of_seven_and_thirty_days);
