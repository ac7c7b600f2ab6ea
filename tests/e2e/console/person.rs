//! `/admin/person`: a person's whole story after real mail through the
//! relay (consent now, events with their proof, decisions with their
//! reason, copies with the upstream's reply, suppressions), and the
//! rights actions: recorded consent decides the next message, erasure
//! needs the address typed again, export is the API's document, a
//! suppression goes only with a reason; a viewer and forged forms change
//! nothing; every change names the operator in the audit trail.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::Value;

use crate::both_stores;
use crate::bounces::BOUNCES;
use crate::common::admin::{DIGEST, call};
use crate::common::backend::connect;
use crate::common::console::{self, DPO, Operator, Shown, VIEWER, urlencode};
use crate::common::relay::{TestRelay, admin_event, canonical, eventually, message};
use crate::common::sink::{Fault, Sink};
use consent_relay::consent::{Action, Source, subject};
use consent_relay::store::{DecisionFilter, NewConsentEvent};

/// A relay with the three operators, a double opt-in campaign (`digest`)
/// and `[bounces]` (an upstream 5xx suppresses the person).
async fn start(sink: &Sink) -> TestRelay {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = console::console_config(dir.path(), &format!("smtp://{}", sink.addr()));
    TestRelay::start_with(dir, &format!("{text}{DIGEST}\n{BOUNCES}")).await
}

fn page(address: &str) -> String {
    format!("/admin/person?address={}", urlencode(address))
}

/// The queue id in a `250 … queued as ID (…)` reply.
fn queue_id(reply: &str) -> String {
    let rest = reply.split("queued as ").nth(1).expect("a queue id");
    rest.split_whitespace().next().unwrap().to_owned()
}

async fn count(relay: &TestRelay, sql: &str) -> i64 {
    let mut c = connect(relay.dir.path()).await;
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The audit rows: (actor, via, action, subject_id, target, detail).
type AuditRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

async fn audit(relay: &TestRelay) -> Vec<AuditRow> {
    let mut c = connect(relay.dir.path()).await;
    sqlx::query_as(
        "SELECT actor, via, action, subject_id, target, detail FROM audit_events ORDER BY id",
    )
    .fetch_all(&mut c)
    .await
    .expect("audit rows")
}

/// The newest decision for `to`: (outcome, reason).
async fn last_decision(relay: &TestRelay, to: &str) -> (String, String) {
    let rows = relay
        .store()
        .decisions(&DecisionFilter {
            recipient: Some(canonical(to)),
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("decisions");
    let d = rows.iter().max_by_key(|d| d.id).expect("a decision");
    (d.outcome.to_string(), d.reason.to_string())
}

/// Asserts a `303` back to the person's page whose query ends with `ending`.
fn sent_back(res: &Shown, ending: &str) {
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(res.location().ends_with(ending), "{}", res.location());
}

/// Posts the person page's consent form for `to`.
async fn record(
    op: &mut Operator,
    to: &str,
    campaign: &str,
    action: &str,
    evidence: &str,
) -> Shown {
    let fields = [
        ("address", to),
        ("campaign", campaign),
        ("action", action),
        ("evidence", evidence),
    ];
    op.submit(&page(to), "/admin/person/consent", &fields).await
}

fn pair(outcome: &str, reason: &str) -> (String, String) {
    (outcome.to_owned(), reason.to_owned())
}

/// Records a grant of `campaign` for `to` with the proof a sign-up form gives.
async fn signed_up(relay: &TestRelay, to: &str, campaign: &str) -> i64 {
    let address = canonical(to);
    let new_subject = subject::new_subject(&relay.config.signing, &address);
    let at = consent_relay::time::now_ms();
    relay
        .store()
        .append_consent_event(NewConsentEvent {
            source: Source::Form,
            ip: Some("192.0.2.7".into()),
            user_agent: Some("Firefox/130.0".into()),
            evidence: Some("sign-up form v3".into()),
            ..admin_event(&address, new_subject, campaign, Action::Grant, at)
        })
        .await
        .expect("grant")
        .id
}

/// Sends `campaign` to `to` and waits until its copies ended (sent or failed).
async fn mailed(relay: &TestRelay, to: &str, campaign: &str, ended: i64) -> String {
    let r = relay.send(&[to], &message(campaign, "hello")).await;
    assert!(r.starts_with("250"), "{r}");
    eventually("the copies end", || async {
        count(
            relay,
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('sent', 'failed') AND message_id IN \
             (SELECT id FROM messages WHERE kind = 'relay')",
        )
        .await
            >= ended
    })
    .await;
    r
}

/// Sends `campaign` to `to` while the upstream refuses them with 550 5.1.1,
/// and waits for the hard bounce that suppresses them (`n` in all).
async fn bounced(
    relay: &TestRelay,
    sink: &Sink,
    to: &str,
    campaign: &str,
    ended: i64,
    n: i64,
) -> String {
    sink.script([Fault::Rcpt(550, "5.1.1 no such user here")]);
    let reply = mailed(relay, to, campaign, ended).await;
    eventually("the hard bounce suppresses them", || async {
        count(
            relay,
            "SELECT COUNT(*) FROM suppressions WHERE kind = 'hard'",
        )
        .await
            == n
    })
    .await;
    reply
}

async fn the_page_tells_the_whole_story() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let ann = "ann@example.net";
    let grant = signed_up(&relay, ann, "newsletter").await;
    let sent = mailed(&relay, ann, "newsletter", 1).await;
    sink.script([Fault::Rcpt(550, "5.1.1 <ann@example.net>: no such user")]);
    let bounced = mailed(&relay, ann, "prospecting", 2).await;
    eventually("the hard bounce suppresses ann", || async {
        count(
            &relay,
            "SELECT COUNT(*) FROM suppressions WHERE kind = 'hard'",
        )
        .await
            == 1
    })
    .await;

    // Any spelling finds the person; a viewer reads everything.
    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let shown = viewer.get(&page("Ann@Example.NET")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let body = &shown.body;
    // Consent now: the grant it rests on, anchored in the history.
    assert!(body.contains(&format!("href=\"#event-{grant}\"")), "{body}");
    assert!(body.contains(&format!("id=\"event-{grant}\"")), "{body}");
    assert!(body.contains("granted"));
    // The event's proof.
    for proof in ["192.0.2.7", "Firefox/130.0", "sign-up form v3", "form"] {
        assert!(body.contains(proof), "{proof}: {body}");
    }
    // Decisions with their reason, each message linked to its trace.
    for reply in [&sent, &bounced] {
        let id = queue_id(reply);
        assert!(
            body.contains(&format!("href=\"/admin/message?id={id}\"")),
            "{id}: {body}"
        );
    }
    assert!(body.contains("<code>granted</code>"));
    assert!(body.contains("<code>not-objected</code>"));
    assert!(body.contains("the CRM&#39;s mail"), "{body}");
    assert!(
        body.contains("&lt;m1@example.com&gt;"),
        "the Message-ID: {body}"
    );
    // Copies: sent, and failed with the upstream's reply.
    assert!(body.contains(">sent<"), "{body}");
    assert!(body.contains(">failed<"), "{body}");
    assert!(body.contains("no such user"), "{body}");
    // The suppression, and the next mail it decides.
    assert!(body.contains("5.1.1"));
    assert!(body.contains("<code>bounced</code>"), "{body}");
    // A viewer has no forms.
    assert!(!body.contains("/admin/person/erase"), "{body}");
    assert!(!body.contains("name=\"evidence\""));
    assert!(body.contains("Your role reads only"));
    // A DPO has them.
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let body = dpo.get(&page(ann)).await.body;
    for form in [
        "/admin/person/consent",
        "/admin/person/export",
        "/admin/person/erase",
        "/admin/person/suppression",
    ] {
        assert!(body.contains(&format!("action=\"{form}\"")), "{form}");
    }

    // An unknown address, a bad one, and none: pages, not errors.
    let none = viewer.get(&page("nobody@example.net")).await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.body.contains("Nothing is held about"), "{}", none.body);
    let bad = viewer.get(&page("not an address")).await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("is not an email address"), "{}", bad.body);
    let empty = viewer.get("/admin/person").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.contains("name=\"address\""));

    // French, once.
    let mut fr = Operator::signed_in(&relay, DPO.1).await.french();
    let body = fr.get(&page(ann)).await.body;
    assert!(body.contains("<html lang=\"fr\">"));
    for text in [
        "Consentement actuel",
        "Événements de consentement",
        "Prochain courrier",
        "Ce que la personne a dit et où",
        "Saisissez de nouveau l'adresse pour confirmer",
        "Enregistré par",
    ] {
        assert!(body.contains(text), "{text}: {body}");
    }
    relay.stop().await;
}
both_stores!(the_page_tells_the_whole_story);

async fn recorded_consent_decides_the_next_message() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let bob = "bob@example.net";
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let form = page(bob);
    // Not known yet: the page offers to record consent all the same.
    assert!(dpo.get(&form).await.body.contains("Nothing is held about"));
    let res = record(
        &mut dpo,
        bob,
        "prospecting",
        "withdraw",
        "phone call of 3 March, ticket 4411",
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let event = relay.events(bob).await.pop().expect("the withdrawal");
    assert_eq!(
        res.location(),
        format!(
            "/admin/person?address=bob%40example.net&done=withdrawn&event={}",
            event.id
        )
    );
    assert_eq!(event.action, Action::Withdraw);
    assert_eq!(event.source, Source::Admin);
    assert_eq!(
        event.evidence.as_deref(),
        Some("phone call of 3 March, ticket 4411")
    );
    let r = relay.send(&[bob], &message("prospecting", "x")).await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    assert_eq!(
        last_decision(&relay, bob).await,
        pair("suppress", "withdrawn")
    );
    // A grant for an opt-in campaign lets its next message go.
    let res = record(
        &mut dpo,
        bob,
        "newsletter",
        "grant",
        "asked in writing, letter of 4 March",
    )
    .await;
    assert!(
        res.location().contains("done=granted"),
        "{}",
        res.location()
    );
    let r = relay.send(&[bob], &message("newsletter", "x")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    assert_eq!(last_decision(&relay, bob).await, pair("deliver", "granted"));
    // A double opt-in campaign: a request, and the relay mails the link.
    let before = sink.count();
    let res = record(&mut dpo, bob, "digest", "grant", "asked at the desk").await;
    assert!(
        res.location().contains("done=requested"),
        "{}",
        res.location()
    );
    let got = sink.wait_for(before + 2, Duration::from_secs(10)).await;
    let confirmation = got
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .find(|m| m.contains("/o/"))
        .expect("the confirmation mail");
    assert!(confirmation.contains("Weekly digest"), "{confirmation}");
    assert_eq!(
        relay.events(bob).await.last().unwrap().action,
        Action::Request
    );
    // Refused and recorded nothing: no evidence, a grant for '*', an unknown campaign.
    let events = relay.events(bob).await.len();
    for (campaign, action, evidence, problem) in [
        ("newsletter", "grant", " ", "evidence"),
        ("*", "grant", "x", "grant-for-all"),
        ("nope", "withdraw", "x", "campaign"),
    ] {
        let res = record(&mut dpo, bob, campaign, action, evidence).await;
        sent_back(&res, &format!("problem={problem}"));
    }
    assert_eq!(relay.events(bob).await.len(), events);
    // The page names the operator on each event, and the audit trail too.
    let shown = dpo.get(&page(bob)).await.body;
    assert!(
        shown.contains("<strong>dora</strong> <span class=\"muted\">(console)</span>"),
        "{shown}"
    );
    let rows = audit(&relay).await;
    let consent: Vec<_> = rows
        .iter()
        .filter(|r| r.2.starts_with("consent-"))
        .map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str(), r.4.as_deref()))
        .collect();
    assert_eq!(
        consent,
        [
            ("dora", "console", "consent-withdraw", Some("prospecting")),
            ("dora", "console", "consent-grant", Some("newsletter")),
            ("dora", "console", "consent-request", Some("digest")),
        ]
    );
    relay.stop().await;
}
both_stores!(recorded_consent_decides_the_next_message);

async fn erasure_needs_the_address_typed_again() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let carol = "carol@example.net";
    signed_up(&relay, carol, "newsletter").await;
    bounced(&relay, &sink, carol, "prospecting", 1, 1).await;
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let form = page(carol);
    let wrong = dpo
        .submit(
            &form,
            "/admin/person/erase",
            &[("address", carol), ("confirm", "someone@example.net")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    sent_back(&wrong, "problem=confirm");
    let shown = dpo.get(wrong.location()).await.body;
    assert!(shown.contains("nothing was erased"), "{shown}");
    assert!(
        relay
            .store()
            .subject_consent(&canonical(carol))
            .await
            .unwrap()
            .is_some(),
        "erased after a wrong confirmation"
    );
    // Another spelling of the same mailbox confirms.
    let right = dpo
        .submit(
            &form,
            "/admin/person/erase",
            &[("address", carol), ("confirm", " Carol@Example.NET ")],
        )
        .await;
    sent_back(&right, "done=erased");
    assert!(
        relay
            .store()
            .subject_consent(&canonical(carol))
            .await
            .unwrap()
            .is_none()
    );
    // The page says so, and shows what remains: the hash, the suppression.
    let shown = dpo.get(right.location()).await.body;
    assert!(shown.contains("The person was erased"), "{shown}");
    assert!(shown.contains("was erased on"), "{shown}");
    assert!(
        shown.contains("stays suppressed (reason erased; mandatory mail still goes)"),
        "what remains, and what still goes: {shown}"
    );
    assert!(shown.contains("5.1.1"), "the kept suppression: {shown}");
    assert!(
        shown.contains(
            "1 suppression in force (besides the erasure, which keeps out all but mandatory mail)"
        ),
        "the count says the erasure keeps mail out: {shown}"
    );
    assert!(
        shown.contains("<code>erased</code>"),
        "the next mail: {shown}"
    );
    assert!(
        !shown.contains("sign-up form v3"),
        "the proof stayed: {shown}"
    );
    assert!(!shown.contains("action=\"/admin/person/erase\""));
    // The audit row names the operator, never the address.
    let rows = audit(&relay).await;
    let erased: Vec<_> = rows.iter().filter(|r| r.2 == "subject-erase").collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(
        (erased[0].0.as_str(), erased[0].1.as_str()),
        ("dora", "console")
    );
    assert!(erased[0].3.is_some(), "the subject is named");
    for r in &rows {
        let text = format!("{r:?}");
        assert!(
            !text.contains("carol"),
            "an audit row names the address: {text}"
        );
    }
    relay.stop().await;
}
both_stores!(erasure_needs_the_address_typed_again);

async fn export_is_the_apis_document_as_a_download() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let dan = "dan@example.net";
    signed_up(&relay, dan, "newsletter").await;
    mailed(&relay, dan, "newsletter", 1).await;
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let res = dpo
        .submit(&page(dan), "/admin/person/export", &[("address", dan)])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(
        res.headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let disposition = res.headers[CONTENT_DISPOSITION].to_str().unwrap();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let doc: Value = serde_json::from_str(&res.body).expect("JSON");
    assert_eq!(doc["address"], "dan@example.net");
    assert_eq!(doc["events"][0]["evidence"], "sign-up form v3");
    assert_eq!(doc["events"][0]["ip"], "192.0.2.7");
    assert_eq!(doc["decisions"][0]["reason"], "granted");
    // The API's document, field for field (but for what the export adds
    // to the audit trail, which neither holds).
    let api = call(
        &relay,
        reqwest::Method::GET,
        "/api/v1/subjects/dan%40example.net",
        Some(DPO.1),
        None,
    )
    .await;
    assert_eq!(api.status, StatusCode::OK);
    assert_eq!(api.body, doc);
    let exports: Vec<_> = audit(&relay)
        .await
        .into_iter()
        .filter(|r| r.2 == "subject-export")
        .map(|r| (r.0, r.1))
        .collect();
    assert_eq!(
        exports,
        [
            ("dora".to_owned(), "console".to_owned()),
            ("dora".to_owned(), "api".to_owned())
        ]
    );
    // Nothing held: back to the page, nothing recorded.
    let res = dpo
        .submit(
            &page("nobody@example.net"),
            "/admin/person/export",
            &[("address", "nobody@example.net")],
        )
        .await;
    sent_back(&res, "problem=nothing-held");
    assert_eq!(
        count(
            &relay,
            "SELECT COUNT(*) FROM audit_events WHERE action = 'subject-export'"
        )
        .await,
        2
    );
    relay.stop().await;
}
both_stores!(export_is_the_apis_document_as_a_download);

async fn a_suppression_goes_only_with_a_reason() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let eve = "eve@example.net";
    bounced(&relay, &sink, eve, "prospecting", 1, 1).await;
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let form = page(eve);
    let res = dpo
        .submit(
            &form,
            "/admin/person/suppression",
            &[("address", eve), ("reason", "  ")],
        )
        .await;
    sent_back(&res, "problem=reason");
    assert_eq!(
        count(
            &relay,
            "SELECT COUNT(*) FROM suppressions WHERE removed_at IS NULL"
        )
        .await,
        1
    );
    let res = dpo
        .submit(
            &form,
            "/admin/person/suppression",
            &[
                ("address", eve),
                ("reason", "mailbox fixed, she called on 5 March"),
            ],
        )
        .await;
    sent_back(&res, "done=unsuppressed");
    let shown = dpo.get(res.location()).await.body;
    assert!(
        shown.contains("<strong>dora</strong>: mailbox fixed, she called on 5 March"),
        "{shown}"
    );
    let r = relay.send(&[eve], &message("prospecting", "x")).await;
    assert!(r.contains("(1 delivered, 0 suppressed)"), "{r}");
    let removal: Vec<_> = audit(&relay)
        .await
        .into_iter()
        .filter(|r| r.2 == "suppression-remove")
        .collect();
    assert_eq!(removal.len(), 1);
    assert_eq!(
        (removal[0].0.as_str(), removal[0].1.as_str()),
        ("dora", "console")
    );
    // Nothing in force any more: said, nothing recorded.
    let res = dpo
        .submit(
            &form,
            "/admin/person/suppression",
            &[("address", eve), ("reason", "again")],
        )
        .await;
    sent_back(&res, "problem=no-suppression");
    relay.stop().await;
}
both_stores!(a_suppression_goes_only_with_a_reason);

async fn a_viewer_and_forged_forms_change_nothing() {
    let sink = Sink::start().await;
    let mut relay = start(&sink).await;
    let fay = "fay@example.net";
    signed_up(&relay, fay, "newsletter").await;
    bounced(&relay, &sink, fay, "prospecting", 1, 1).await;
    let form = page(fay);
    let actions: [(&str, &[(&str, &str)]); 4] = [
        (
            "/admin/person/consent",
            &[
                ("address", fay),
                ("campaign", "newsletter"),
                ("action", "withdraw"),
                ("evidence", "x"),
            ],
        ),
        ("/admin/person/export", &[("address", fay)]),
        ("/admin/person/erase", &[("address", fay), ("confirm", fay)]),
        (
            "/admin/person/suppression",
            &[("address", fay), ("reason", "x")],
        ),
    ];
    let state = |relay: &TestRelay| {
        let dir = relay.dir.path().to_owned();
        async move {
            let mut c = connect(&dir).await;
            let mut out = Vec::new();
            for sql in [
                "SELECT COUNT(*) FROM consent_events",
                "SELECT COUNT(*) FROM subjects WHERE address IS NOT NULL",
                "SELECT COUNT(*) FROM suppressions WHERE removed_at IS NULL",
                "SELECT COUNT(*) FROM audit_events",
            ] {
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                out.push(n);
            }
            out
        }
    };
    let mut viewer = Operator::signed_in(&relay, VIEWER.1).await;
    let mut dpo = Operator::signed_in(&relay, DPO.1).await;
    let before = state(&relay).await;
    for (path, fields) in actions {
        // A viewer with a good token: refused for the role.
        let res = viewer.submit(&form, path, fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}: {}", res.body);
        assert!(res.body.contains("Your role does not allow this"), "{path}");
        // A DPO without the token, or with another: refused as forged.
        let res = dpo.post(path, fields).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            res.body.contains("did not come from this console"),
            "{path}"
        );
        let mut forged = vec![("csrf", "not-the-token")];
        forged.extend_from_slice(fields);
        let res = dpo.post(path, &forged).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        state(&relay).await,
        before,
        "a refused form changed the store"
    );
    relay.stop().await;
}
both_stores!(a_viewer_and_forged_forms_change_nothing);
