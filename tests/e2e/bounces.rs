//! End to end: what comes back, through the one intake
//! (`feedback::intake::receive`, what every door calls) into a running
//! relay's store, and what the next mail's decision is. Bounces (hard,
//! soft days, the window, the reset, the expiry, the upstream's own 5xx),
//! complaints (scope, once per copy, a new grant lifting them), forged
//! and tampered tokens, automatic replies, exactly once, erasure.

use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{TestRelay, canonical, message};
use crate::common::sink::{Fault, Sink};
use consent_relay::consent::{Action, Source};
use consent_relay::feedback::intake::{self, IntakeError};
use consent_relay::store::{DecisionFilter, Door, NewReport, ReportResult};
use consent_relay::token::bounce;
use sqlx::Row;

const DAY: i64 = 86_400_000;
pub(crate) const BOUNCES: &str = "[bounces]\ndomain = \"bounces.test\"\nsoft_limit = 2\n";

pub(crate) async fn start(sink: &Sink, extra: &str) -> TestRelay {
    TestRelay::start(sink.addr(), "", extra).await
}

/// Sends one message of `campaign` to `to`; waits for its copy at the sink
/// when it is to be delivered; returns the newest delivery id for `to`.
pub(crate) async fn sent(relay: &TestRelay, sink: &Sink, to: &str, campaign: &str) -> i64 {
    let before = sink.count();
    let r = relay.send(&[to], &message(campaign, "hello")).await;
    assert!(r.starts_with("250"), "{r}");
    sink.wait_for(before + 1, Duration::from_secs(10)).await;
    delivery_of(relay, to).await
}

async fn delivery_of(relay: &TestRelay, to: &str) -> i64 {
    let mut c = common::backend::connect(relay.dir.path()).await;
    sqlx::query("SELECT MAX(id) FROM deliveries WHERE recipient = $1")
        .bind(canonical(to))
        .fetch_one(&mut c)
        .await
        .expect("delivery")
        .try_get::<i64, _>(0)
        .expect("a delivery for the address")
}

/// The newest decision for `to`: (outcome, reason).
async fn last_decision(relay: &TestRelay, to: &str) -> (String, String) {
    let d = relay
        .store()
        .decisions(&DecisionFilter {
            recipient: Some(canonical(to)),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("decisions");
    let d = d.iter().max_by_key(|d| d.id).expect("a decision");
    (d.outcome.to_string(), d.reason.to_string())
}

/// Sends once more and says what was decided.
pub(crate) async fn next_mail(relay: &TestRelay, to: &str, campaign: &str) -> (String, String) {
    let r = relay.send(&[to], &message(campaign, "again")).await;
    assert!(r.starts_with("250"), "{r}");
    last_decision(relay, to).await
}

pub(crate) fn pair(o: &str, r: &str) -> (String, String) {
    (o.into(), r.into())
}

pub(crate) fn return_path(relay: &TestRelay, delivery: i64) -> String {
    format!(
        "{}@bounces.test",
        bounce::local_part(&relay.config.signing, delivery).expect("token")
    )
}

/// A DSN (RFC 3464) for `rcpt` with this action, status and diagnostic,
/// returning the copy's header (`returned`).
pub(crate) fn dsn(
    rcpt: &str,
    action: &str,
    status: &str,
    diagnostic: &str,
    returned: &str,
) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
         To: someone@bounces.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         I could not deliver your message.\r\n\
         --B\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         Arrival-Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n\
         \r\n\
         Final-Recipient: rfc822; {rcpt}\r\n\
         Action: {action}\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; {diagnostic}\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         {returned}\
         From: CRM <crm@example.com>\r\n\
         To: {rcpt}\r\n\
         Subject: News\r\n\
         \r\n\
         --B--\r\n"
    )
    .into_bytes()
}

pub(crate) fn hard_dsn(rcpt: &str) -> Vec<u8> {
    dsn(
        rcpt,
        "failed",
        "5.1.1",
        &format!("550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown"),
        "",
    )
}

/// An ARF complaint (RFC 5965) whose recipient is redacted (RFC 6590);
/// the attached copy carries `returned`.
pub(crate) fn arf(returned: &str, nonce: &str) -> Vec<u8> {
    format!(
        "From: Feedback <feedback@fbl.example.org>\r\n\
         To: fbl@relay.test\r\n\
         Subject: Abuse report {nonce}\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\
         \r\n\
         --F\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an abuse report.\r\n\
         --F\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: ExampleFBL/1.0\r\n\
         Version: 1\r\n\
         Original-Rcpt-To: <xxxxxxxx@example.net>\r\n\
         Arrival-Date: Wed, 2 Dec 2026 10:00:00 +0000\r\n\
         Reporting-MTA: dns; fbl.example.org\r\n\
         \r\n\
         --F\r\n\
         Content-Type: message/rfc822\r\n\
         \r\n\
         {returned}\
         From: CRM <crm@example.com>\r\n\
         To: xxxxxxxx@example.net\r\n\
         Subject: News\r\n\
         \r\n\
         hello\r\n\
         --F--\r\n"
    )
    .into_bytes()
}

pub(crate) async fn take(relay: &TestRelay, to: Option<String>, raw: Vec<u8>) -> intake::Processed {
    intake::receive(
        relay.store(),
        &relay.config,
        NewReport {
            door: Door::Cli,
            envelope_from: Some(String::new()),
            envelope_to: to,
            client_ip: None,
            raw,
            received_at: consent_relay::time::now_ms(),
            actor: None,
        },
    )
    .await
    .expect("the intake takes the report")
}

async fn sql_i64(relay: &TestRelay, sql: &str) -> i64 {
    let mut c = common::backend::connect(relay.dir.path()).await;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .expect("query")
        .try_get::<i64, _>(0)
        .expect("an integer")
}

async fn sql_exec(relay: &TestRelay, sql: &str) {
    let mut c = common::backend::connect(relay.dir.path()).await;
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .expect("statement");
}

async fn a_hard_bounce_suppresses_every_campaign_until_a_new_grant() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    let d = sent(&relay, &sink, "ann@example.net", "newsletter").await;

    let p = take(
        &relay,
        Some(return_path(&relay, d)),
        hard_dsn("ann@example.net"),
    )
    .await;
    assert_eq!(p.applied.result, ReportResult::Hard, "{}", p.applied.detail);
    assert_eq!(p.applied.delivery_id, Some(d));
    assert!(
        !p.applied.detail.contains("ann@example.net"),
        "the stored diagnostic masks the address: {}",
        p.applied.detail
    );
    for campaign in ["newsletter", "prospecting", "invoices"] {
        assert_eq!(
            next_mail(&relay, "ann@example.net", campaign).await,
            pair("suppress", "bounced"),
            "{campaign}"
        );
    }
    // The stored suppression says why, without the address.
    let diag: String = {
        let mut c = common::backend::connect(relay.dir.path()).await;
        sqlx::query("SELECT kind || ' ' || status_code || ' ' || source || ' ' || diagnostic FROM suppressions")
            .fetch_one(&mut c)
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    };
    assert!(diag.starts_with("hard 5.1.1 dsn "), "{diag}");
    assert!(diag.contains("<recipient>"), "{diag}");
    assert!(!diag.contains("ann@example.net"), "{diag}");

    // The same bounce again changes nothing more.
    let again = take(
        &relay,
        Some(return_path(&relay, d)),
        hard_dsn("ann@example.net"),
    )
    .await;
    assert!(again.received.duplicate);
    assert!(again.applied.already);
    assert_eq!(
        sql_i64(&relay, "SELECT COUNT(*) FROM suppressions").await,
        1
    );

    // A new grant lifts it.
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    assert_eq!(
        next_mail(&relay, "ann@example.net", "newsletter").await,
        pair("deliver", "granted")
    );
}
both_stores!(a_hard_bounce_suppresses_every_campaign_until_a_new_grant);

async fn mandatory_mail_goes_on_when_told_to() {
    let sink = Sink::start().await;
    let relay = start(
        &sink,
        "[bounces]\ndomain = \"bounces.test\"\nmandatory = \"deliver\"\n",
    )
    .await;
    let d = sent(&relay, &sink, "bob@example.net", "invoices").await;
    let p = take(
        &relay,
        Some(return_path(&relay, d)),
        hard_dsn("bob@example.net"),
    )
    .await;
    assert_eq!(p.applied.result, ReportResult::Hard);
    assert_eq!(
        next_mail(&relay, "bob@example.net", "invoices").await,
        pair("deliver", "mandatory")
    );
    assert_eq!(
        next_mail(&relay, "bob@example.net", "prospecting").await,
        pair("suppress", "bounced")
    );
}
both_stores!(mandatory_mail_goes_on_when_told_to);

async fn soft_days_within_the_window_suppress_for_a_while() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "cat@example.net";
    let d1 = sent(&relay, &sink, to, "prospecting").await;
    let soft = |rcpt: &str| dsn(rcpt, "failed", "4.2.2", "452 4.2.2 Mailbox full", "");
    let p = take(&relay, Some(return_path(&relay, d1)), soft(to)).await;
    assert_eq!(p.applied.result, ReportResult::Soft, "{}", p.applied.detail);
    // A second soft bounce the same day is not another day.
    let d2 = sent(&relay, &sink, to, "prospecting").await;
    let p = take(
        &relay,
        Some(return_path(&relay, d2)),
        dsn(to, "failed", "5.2.2", "552 5.2.2 over quota", ""),
    )
    .await;
    assert_eq!(p.applied.result, ReportResult::Soft);
    assert!(
        p.applied.detail.contains("today already"),
        "{}",
        p.applied.detail
    );
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("deliver", "not-objected")
    );

    // That day was yesterday; today's soft bounce is the second day: the
    // limit (2) is reached.
    sql_exec(&relay, "UPDATE soft_bounces SET day = day - 1").await;
    let d3 = delivery_of(&relay, to).await;
    sink.wait_for(3, Duration::from_secs(10)).await;
    let p = take(&relay, Some(return_path(&relay, d3)), soft(to)).await;
    assert_eq!(
        p.applied.result,
        ReportResult::SoftSuppressed,
        "{}",
        p.applied.detail
    );
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("suppress", "bounced")
    );
    // It expires by itself.
    sql_exec(&relay, "UPDATE suppressions SET until_at = 1").await;
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("deliver", "not-objected")
    );
}
both_stores!(soft_days_within_the_window_suppress_for_a_while);

async fn a_copy_that_did_not_bounce_resets_and_old_days_fall_out_of_the_window() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "dan@example.net";
    let soft = || dsn(to, "failed", "4.2.2", "452 4.2.2 Mailbox full", "");
    let d1 = sent(&relay, &sink, to, "prospecting").await;
    take(&relay, Some(return_path(&relay, d1)), soft()).await;
    // The soft day was two days ago, the copy sent then too.
    sql_exec(
        &relay,
        &format!(
            "UPDATE soft_bounces SET day = day - 2, sent_at = sent_at - {}",
            2 * DAY
        ),
    )
    .await;
    // Yesterday a copy went out and nothing came back.
    let good = sent(&relay, &sink, to, "prospecting").await;
    sql_exec(
        &relay,
        &format!("UPDATE deliveries SET updated_at = updated_at - {DAY} WHERE id = {good}"),
    )
    .await;
    let d3 = sent(&relay, &sink, to, "prospecting").await;
    let p = take(&relay, Some(return_path(&relay, d3)), soft()).await;
    assert_eq!(p.applied.result, ReportResult::Soft, "{}", p.applied.detail);
    assert!(
        p.applied.detail.contains("day 1 of 2"),
        "{}",
        p.applied.detail
    );

    // A soft day older than the window does not count either.
    sql_exec(
        &relay,
        &format!(
            "UPDATE soft_bounces SET day = day - 40, sent_at = sent_at - {}",
            40 * DAY
        ),
    )
    .await;
    let d4 = sent(&relay, &sink, to, "prospecting").await;
    sql_exec(
        &relay,
        &format!("UPDATE deliveries SET status = 'failed' WHERE id <> {d4} AND recipient = '{to}'"),
    )
    .await;
    let p = take(&relay, Some(return_path(&relay, d4)), soft()).await;
    assert!(
        p.applied.detail.contains("day 1 of 2"),
        "{}",
        p.applied.detail
    );
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("deliver", "not-objected")
    );
}
both_stores!(a_copy_that_did_not_bounce_resets_and_old_days_fall_out_of_the_window);

async fn delayed_and_automatic_replies_change_nothing_and_non_reports_are_refused() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "eve@example.net";
    let d = sent(&relay, &sink, to, "prospecting").await;
    let p = take(
        &relay,
        Some(return_path(&relay, d)),
        dsn(to, "delayed", "4.4.7", "421 4.4.7 still trying", ""),
    )
    .await;
    assert_eq!(p.applied.result, ReportResult::NoChange);
    // Failed and delayed blocks in one DSN: the failure counts.
    let both = String::from_utf8(dsn(to, "delayed", "4.4.7", "try later", ""))
        .unwrap()
        .replace(
            "\r\n--B\r\nContent-Type: text/rfc822-headers",
            &format!(
                "\r\nFinal-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers"
            ),
        );
    let p = take(&relay, Some(return_path(&relay, d)), both.into_bytes()).await;
    assert_eq!(p.applied.result, ReportResult::Hard, "{}", p.applied.detail);
    relay.consent(to, "prospecting", Action::Grant, None).await;

    let vacation = b"From: Eve <eve@example.net>\r\nTo: b-x@bounces.test\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nI am away.\r\n".to_vec();
    let p = take(&relay, Some(return_path(&relay, d)), vacation).await;
    assert_eq!(p.applied.result, ReportResult::Ignored);
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("deliver", "granted")
    );

    let err = intake::receive(
        relay.store(),
        &relay.config,
        NewReport {
            door: Door::Api,
            envelope_from: None,
            envelope_to: None,
            client_ip: None,
            raw: b"From: a@example.net\r\nSubject: hi\r\n\r\njust a message\r\n".to_vec(),
            received_at: 0,
            actor: None,
        },
    )
    .await
    .expect_err("not a report");
    assert!(matches!(err, IntakeError::NotAReport(_)), "{err}");
    assert_eq!(
        sql_i64(&relay, "SELECT COUNT(*) FROM feedback_reports").await,
        3,
        "what is not a report is not kept"
    );
}
both_stores!(delayed_and_automatic_replies_change_nothing_and_non_reports_are_refused);

async fn forged_and_tampered_tokens_change_nothing_and_are_kept() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "fay@example.net";
    let d = sent(&relay, &sink, to, "prospecting").await;
    let good = return_path(&relay, d);
    // One character changed in the token.
    let mut tampered = good.clone().into_bytes();
    tampered[5] = if tampered[5] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    // A well-formed token for another delivery under another key.
    let other: consent_relay::config::SigningConfig = {
        let mut s = relay.config.signing.clone();
        s.keys.clear();
        s.keys.insert(
            "k1".into(),
            consent_relay::config::Secret(b"another-key-another-key-another!".to_vec()),
        );
        s
    };
    let forged = format!("{}@bounces.test", bounce::local_part(&other, d).unwrap());
    for to_addr in [tampered, forged, "b-nonsense@bounces.test".to_owned()] {
        let p = take(&relay, Some(to_addr.clone()), hard_dsn(to)).await;
        assert_eq!(p.applied.result, ReportResult::Unmatched, "{to_addr}");
        assert!(
            p.applied.detail.contains("return path"),
            "{}",
            p.applied.detail
        );
    }
    // Without a token, the report's From: naming the person is not enough.
    let from_only = String::from_utf8(hard_dsn(to))
        .unwrap()
        .replace("From: MAILER-DAEMON@mx.example.net", &format!("From: {to}"));
    let p = take(&relay, None, from_only.into_bytes()).await;
    assert_eq!(p.applied.result, ReportResult::Unmatched);
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("deliver", "not-objected")
    );
    assert_eq!(
        sql_i64(
            &relay,
            "SELECT COUNT(*) FROM feedback_reports WHERE result = 'unmatched' AND raw IS NOT NULL"
        )
        .await,
        4,
        "kept for the operator, with the reason"
    );
}
both_stores!(forged_and_tampered_tokens_change_nothing_and_are_kept);

async fn a_complaint_withdraws_once_and_a_new_grant_lifts_it() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "gus@example.net";
    relay.consent(to, "newsletter", Action::Grant, None).await;
    let d = sent(&relay, &sink, to, "newsletter").await;
    let header = format!(
        "X-Consent-Relay-Delivery: {}\r\n",
        bounce::local_part(&relay.config.signing, d).unwrap()
    );
    // The feedback loop's report comes to the complaints address: the
    // person is found through the relay's header in the attached copy.
    let p = take(&relay, None, arf(&header, "1")).await;
    assert_eq!(
        p.applied.result,
        ReportResult::Complaint,
        "{}",
        p.applied.detail
    );
    let events = relay.events(to).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.action, last.source, last.campaign.as_str()),
        (Action::Withdraw, Source::Complaint, "*")
    );
    let proof = last.evidence.as_deref().unwrap_or("");
    assert!(
        proof.contains("abuse")
            && proof.contains("fbl.example.org")
            && proof.contains("2026-12-02"),
        "{proof}"
    );
    assert_eq!(last.user_agent.as_deref(), Some("ExampleFBL/1.0"));
    for campaign in ["newsletter", "prospecting"] {
        assert_eq!(
            next_mail(&relay, to, campaign).await,
            pair("suppress", "complained"),
            "{campaign}"
        );
    }
    assert_eq!(
        next_mail(&relay, to, "invoices").await,
        pair("deliver", "mandatory")
    );
    // A second report about the same copy adds nothing.
    let p = take(&relay, None, arf(&header, "2")).await;
    assert!(p.applied.detail.contains("already"), "{}", p.applied.detail);
    assert_eq!(relay.events(to).await.len(), events.len());
    assert_eq!(
        sql_i64(
            &relay,
            "SELECT CAST(COALESCE(SUM(complaints), 0) AS BIGINT) FROM campaign_days"
        )
        .await,
        1
    );
    // A new grant lifts it for its campaign.
    relay.consent(to, "newsletter", Action::Grant, None).await;
    assert_eq!(
        next_mail(&relay, to, "newsletter").await,
        pair("deliver", "granted")
    );
}
both_stores!(a_complaint_withdraws_once_and_a_new_grant_lifts_it);

async fn a_complaint_with_campaign_scope_and_the_unsubscribe_link_fallback() {
    let sink = Sink::start().await;
    let relay = start(
        &sink,
        "[bounces]\ndomain = \"bounces.test\"\n[complaints]\nscope = \"campaign\"\n",
    )
    .await;
    let to = "hal@example.net";
    relay.consent(to, "newsletter", Action::Grant, None).await;
    sent(&relay, &sink, to, "newsletter").await;
    // A copy sent before the delivery header existed: the signed
    // unsubscribe link in its List-Unsubscribe names the person.
    let copy = sink.messages().last().unwrap().data.clone();
    let copy = String::from_utf8_lossy(&copy);
    let list_unsubscribe: String = copy
        .split("\r\n")
        .skip_while(|l| !l.starts_with("List-Unsubscribe:"))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with(' ') || l.starts_with('\t'))
        .map(|(_, l)| format!("{l}\r\n"))
        .collect();
    assert!(!list_unsubscribe.is_empty(), "{copy}");
    let p = take(&relay, None, arf(&list_unsubscribe, "3")).await;
    assert_eq!(
        p.applied.result,
        ReportResult::Complaint,
        "{}",
        p.applied.detail
    );
    assert_eq!(
        next_mail(&relay, to, "newsletter").await,
        pair("suppress", "complained")
    );
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("deliver", "not-objected")
    );
}
both_stores!(a_complaint_with_campaign_scope_and_the_unsubscribe_link_fallback);

async fn the_upstreams_own_5xx_goes_through_the_same_rules() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "ivy@example.net";
    sink.script([Fault::Rcpt(550, "5.1.1 <ivy@example.net>: no such user")]);
    let r = relay.send(&[to], &message("prospecting", "x")).await;
    assert!(r.starts_with("250"), "{r}");
    common::relay::eventually("the hard bounce is recorded", || async {
        sql_i64(
            &relay,
            "SELECT COUNT(*) FROM suppressions WHERE kind = 'hard' AND source = 'upstream' AND status_code = '5.1.1'",
        )
        .await
            == 1
    })
    .await;
    assert_eq!(
        next_mail(&relay, to, "prospecting").await,
        pair("suppress", "bounced")
    );
}
both_stores!(the_upstreams_own_5xx_goes_through_the_same_rules);

async fn a_report_stored_but_not_applied_is_applied_once_later() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "jay@example.net";
    let d = sent(&relay, &sink, to, "prospecting").await;
    // Stored, then the process died before applying it.
    let stored = relay
        .store()
        .receive_report(NewReport {
            door: Door::Smtp,
            envelope_from: Some(String::new()),
            envelope_to: Some(return_path(&relay, d)),
            client_ip: Some("127.0.0.1".into()),
            raw: hard_dsn(to),
            received_at: consent_relay::time::now_ms(),
            actor: None,
        })
        .await
        .unwrap();
    assert!(stored.pending && !stored.duplicate);
    let done = intake::process_pending(relay.store(), &relay.config, 100)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].applied.result, ReportResult::Hard);
    assert!(
        intake::process_pending(relay.store(), &relay.config, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // The same bytes at a door now: the stored row, applied already.
    let p = take(&relay, Some(return_path(&relay, d)), hard_dsn(to)).await;
    assert!(p.received.duplicate && p.applied.already);
    assert_eq!(
        sql_i64(&relay, "SELECT COUNT(*) FROM suppressions").await,
        1
    );
}
both_stores!(a_report_stored_but_not_applied_is_applied_once_later);

async fn erasure_keeps_the_suppression_and_drops_the_raw_reports() {
    let sink = Sink::start().await;
    let relay = start(&sink, BOUNCES).await;
    let to = "kim@example.net";
    let d = sent(&relay, &sink, to, "prospecting").await;
    take(&relay, Some(return_path(&relay, d)), hard_dsn(to)).await;
    // An unmatched report that quotes the address.
    take(&relay, None, hard_dsn(to)).await;
    consent_relay::rights::erase(
        relay.store(),
        &relay.config,
        &consent_relay::consent::identity::Identity::of(to).unwrap(),
        &consent_relay::store::Actor::new("dpo", consent_relay::store::Via::Cli),
    )
    .await
    .expect("erased");
    assert_eq!(
        sql_i64(
            &relay,
            "SELECT COUNT(*) FROM feedback_reports WHERE raw IS NOT NULL"
        )
        .await,
        0
    );
    assert_eq!(
        sql_i64(
            &relay,
            "SELECT COUNT(*) FROM suppressions WHERE removed_at IS NULL"
        )
        .await,
        1
    );
    let r = relay.send(&[to], &message("prospecting", "again")).await;
    assert!(r.starts_with("250"), "{r}");
    let mut c = common::backend::connect(relay.dir.path()).await;
    let row = sqlx::query("SELECT outcome, reason FROM decisions ORDER BY id DESC LIMIT 1")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let (o, r): (String, String) = (row.try_get(0).unwrap(), row.try_get(1).unwrap());
    assert_eq!((o, r), pair("suppress", "erased"));
}
both_stores!(erasure_keeps_the_suppression_and_drops_the_raw_reports);
