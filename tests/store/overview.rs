//! The console's overview: the daily rollups kept where decisions and
//! events are committed (accepts with mixed reasons, a late suppression,
//! an erasure's, withdrawals by several channels, a complaint), days with
//! nothing given as zeros, the queue now; the counts stay through erasure;
//! and migration 0011 fills them from what an older store held, to the
//! same figures.

use std::collections::BTreeMap;

use consent_relay::config::ComplaintScope;
use consent_relay::consent::policy::{Outcome, Reason};
use consent_relay::consent::{ALL_CAMPAIGNS, Action, MAILTO_EVIDENCE, Source};
use consent_relay::store::{
    AttemptRecord, Channel, ClaimedDelivery, Counts, DeliveryStatus, Door, Effect, Erasure,
    FeedbackRules, Findings, ImportEvent, KeyedConsent, LateDecision, MessageKind, NewReport,
    ReportKind, ReportResult, Target,
};
use consent_relay::time::{DAY_MS, day_of};

use super::*;
use crate::both_stores;

/// A recipient decided as intake does, with a new subject `n` when delivered.
fn decided(address: &str, n: u32, outcome: Outcome, reason: Reason) -> RecipientDecision {
    RecipientDecision {
        new_subject: (outcome == Outcome::Deliver).then(|| subject(n)),
        ..rcpt(address, outcome, reason)
    }
}

fn record(d: &ClaimedDelivery, status: DeliveryStatus, campaign: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        delivery_id: d.id,
        status,
        attempted: status != DeliveryStatus::SuppressedLate,
        reply: "250 ok".into(),
        next_attempt_at: now() + 60_000,
        campaign: campaign.map(str::to_owned),
        late_decision: None,
        dsn: None,
        bounce: None,
    }
}

fn withdraw(address: &str, n: u32, campaign: &str, source: Source, at: i64) -> NewConsentEvent {
    NewConsentEvent {
        source,
        ..event(address, n, campaign, Action::Withdraw, at)
    }
}

fn reasons(pairs: &[(Reason, i64)]) -> BTreeMap<Reason, i64> {
    pairs.iter().copied().collect()
}

fn channels(pairs: &[(Channel, i64)]) -> BTreeMap<Channel, i64> {
    pairs.iter().copied().collect()
}

/// Fills the store through its operations, as a relay does: on `today`,
/// news mail to five (two delivered, three suppressed), one of the two
/// copies sent and complained about, the other suppressed late; a bounce
/// (the relay's own mail, not counted); withdrawals by API (plain and
/// keyed), one-click, mail, import and a complaint; the day before, promo
/// mail to two (one deferred); two days before, an unsubscribe from all
/// on the preference page. Returns the id of the deferred copy.
async fn fill(store: &Store, today: i64) -> i64 {
    let t = today * DAY_MS + 1000;
    let y = t - DAY_MS;
    store
        .accept_message(message(
            "m1",
            "news",
            t,
            vec![
                decided("a@example.net", 1, Outcome::Deliver, Reason::Granted),
                decided("b@example.net", 2, Outcome::Deliver, Reason::Granted),
                decided("c@example.net", 0, Outcome::Suppress, Reason::NoConsent),
                decided("d@example.net", 0, Outcome::Suppress, Reason::Withdrawn),
                decided("e@example.net", 0, Outcome::Suppress, Reason::NoConsent),
            ],
        ))
        .await
        .unwrap();
    store
        .accept_message(message(
            "m2",
            "promo",
            y,
            vec![
                decided("f@example.net", 3, Outcome::Deliver, Reason::Mandatory),
                decided("g@example.net", 0, Outcome::Suppress, Reason::Bounced),
            ],
        ))
        .await
        .unwrap();
    let mut dsn = message(
        "dsn1",
        "",
        t,
        vec![rcpt("crm@example.com", Outcome::Deliver, Reason::Mandatory)],
    );
    dsn.kind = MessageKind::Dsn;
    store.accept_message(dsn).await.unwrap();

    let at = now();
    let mut claimed = store.claim_due("n1", at, at + 60_000, 10).await.unwrap();
    claimed.sort_by(|a, b| a.recipient.cmp(&b.recipient));
    let [a, b, crm, f] = &claimed[..] else {
        panic!("four copies due: {claimed:?}")
    };
    let mut late = record(b, DeliveryStatus::SuppressedLate, None);
    late.late_decision = Some(LateDecision {
        message_id: "m1".into(),
        recipient: b.recipient.clone(),
        subject_id: None,
        campaign: "news".into(),
        reason: Reason::Withdrawn,
        event_id: None,
    });
    store
        .record_attempts(vec![
            record(a, DeliveryStatus::Sent, Some("news")),
            late,
            record(crm, DeliveryStatus::Sent, None),
            record(f, DeliveryStatus::Deferred, Some("promo")),
        ])
        .await
        .unwrap();

    for e in [
        withdraw("b@example.net", 2, "news", Source::Api, t),
        withdraw("c@example.net", 4, "news", Source::OneClick, t),
        NewConsentEvent {
            evidence: Some(format!("{MAILTO_EVIDENCE} from <c@example.net>")),
            ..withdraw("c@example.net", 4, ALL_CAMPAIGNS, Source::OneClick, t)
        },
        withdraw(
            "f@example.net",
            3,
            ALL_CAMPAIGNS,
            Source::PreferencePage,
            y - DAY_MS,
        ),
        // Not unsubscribes.
        event("h@example.net", 5, "news", Action::Grant, t),
        event("h@example.net", 5, "news", Action::Request, t),
    ] {
        store.append_consent_event(e).await.unwrap();
    }
    store
        .import_events(vec![ImportEvent {
            event: withdraw("i@example.net", 6, "news", Source::Import, t),
            key: "row-1".into(),
        }])
        .await
        .unwrap();
    let keyed = KeyedConsent {
        event: withdraw("j@example.net", 7, "news", Source::Api, t),
        key: "key-1".into(),
        request_hash: "hash".into(),
        status: 201,
        respond: std::sync::Arc::new(|e| e.id.to_string()),
        follow_up: None,
    };
    store
        .append_consent_event_once(keyed.clone())
        .await
        .unwrap();
    // A replay records nothing, and counts nothing.
    store.append_consent_event_once(keyed).await.unwrap();

    let report = store
        .receive_report(NewReport {
            door: Door::Cli,
            envelope_from: None,
            envelope_to: None,
            client_ip: None,
            raw: b"an ARF report".to_vec(),
            received_at: at,
            actor: None,
        })
        .await
        .unwrap();
    let applied = store
        .apply_report(Findings {
            report_id: report.id,
            kind: ReportKind::Complaint,
            target: Ok(Target::Delivery(a.id)),
            effect: Effect::Complaint {
                feedback_type: "abuse".into(),
                evidence: "report 1".into(),
                user_agent: None,
            },
            rules: FeedbackRules {
                soft_limit: 3,
                soft_window_days: 7,
                soft_suppress_ms: 7 * DAY_MS,
                scope: ComplaintScope::All,
                warn_rate: 0.001,
                pause_rate: 0.003,
                min_volume: 1000,
            },
        })
        .await
        .unwrap();
    assert_eq!(applied.result, ReportResult::Complaint, "{applied:?}");
    f.id
}

async fn the_overview_counts_what_was_committed_by_day_and_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let today = day_of(now());
    let deferred = fill(&store, today).await;

    let o = store.overview(today - 3, today).await.unwrap();
    assert_eq!((o.from_day, o.to_day), (today - 3, today));
    let days: Vec<i64> = o.days.iter().map(|d| d.day).collect();
    assert_eq!(days, [today - 3, today - 2, today - 1, today], "no holes");
    assert_eq!(o.days[0].all, Counts::default());
    assert!(o.days[0].campaigns.is_empty());

    let news_today = Counts {
        accepted: 1,
        to_deliver: 2,
        suppressed: reasons(&[(Reason::NoConsent, 2), (Reason::Withdrawn, 1)]),
        suppressed_late: reasons(&[(Reason::Withdrawn, 1)]),
        unsubscribes: channels(&[
            (Channel::Api, 2),
            (Channel::OneClick, 1),
            (Channel::Import, 1),
        ]),
        delivered: 1,
        complaints: 1,
        ..Counts::default()
    };
    let all_today = Counts {
        unsubscribes: channels(&[
            (Channel::Api, 2),
            (Channel::OneClick, 1),
            (Channel::Import, 1),
            (Channel::Mail, 1),
            (Channel::Complaint, 1),
        ]),
        ..news_today.clone()
    };
    let today_row = &o.days[3];
    assert_eq!(today_row.all, all_today);
    assert_eq!(today_row.campaigns["news"], news_today);
    assert_eq!(
        today_row.campaigns[ALL_CAMPAIGNS].unsubscribes,
        channels(&[(Channel::Mail, 1), (Channel::Complaint, 1)]),
        "unsubscribes from all are campaign *"
    );
    assert_eq!(
        today_row.campaigns.keys().collect::<Vec<_>>(),
        ["*", "news"],
        "the relay's own mail counts for no campaign"
    );
    assert_eq!(today_row.all.complaint_rate(), Some(1.0));
    assert_eq!(today_row.all.bounce_rate(), Some(0.0));
    assert_eq!(today_row.all.suppressed_total(), 4);
    assert_eq!(today_row.all.unsubscribes_total(), 6);

    let promo = Counts {
        accepted: 1,
        to_deliver: 1,
        suppressed: reasons(&[(Reason::Bounced, 1)]),
        ..Counts::default()
    };
    assert_eq!(o.days[2].all, promo);
    assert_eq!(o.days[2].campaigns["promo"], promo);
    assert_eq!(o.days[2].all.complaint_rate(), None, "nothing delivered");
    assert_eq!(
        o.days[1].campaigns[ALL_CAMPAIGNS].unsubscribes,
        channels(&[(Channel::PreferencePage, 1)]),
        "an unsubscribe counts on the day it happened"
    );

    let week = o.total(today - 3);
    assert_eq!((week.accepted, week.to_deliver, week.delivered), (2, 3, 1));
    assert_eq!(week.unsubscribes_total(), 7);
    assert_eq!(o.total(today), all_today);
    let per_campaign = o.campaign_totals(today - 1);
    assert_eq!(
        per_campaign.keys().collect::<Vec<_>>(),
        ["*", "news", "promo"]
    );
    assert_eq!(per_campaign["promo"], promo);

    assert_eq!(
        (
            o.queue.queued,
            o.queue.deferred,
            o.queue.sending,
            o.queue.held
        ),
        (0, 1, 0, 0)
    );
    let oldest = o.queue.oldest_deferred.as_ref().expect("a deferred copy");
    assert_eq!(
        (oldest.delivery_id, oldest.message_id.as_str()),
        (deferred, "m2")
    );
    assert!(oldest.created_at <= now() && oldest.created_at > now() - 60_000);

    // Erasure cancels the person's queued copy (a late suppression,
    // counted) and leaves every count: they are not personal data.
    store
        .accept_message(message(
            "m3",
            "news",
            today * DAY_MS + 2000,
            vec![decided(
                "k@example.net",
                8,
                Outcome::Deliver,
                Reason::Granted,
            )],
        ))
        .await
        .unwrap();
    store
        .erase(Erasure {
            address: "k@example.net".into(),
            new_subject: subject(8),
            source: Source::Admin,
            at: now(),
            actor: crate::operator("dpo"),
            notice: None,
        })
        .await
        .unwrap()
        .expect("erased");
    let after = store.overview(today - 3, today).await.unwrap();
    let news = &after.days[3].campaigns["news"];
    assert_eq!((news.accepted, news.to_deliver), (2, 3));
    assert_eq!(
        news.suppressed_late,
        reasons(&[(Reason::Withdrawn, 1), (Reason::Erased, 1)])
    );
    assert_eq!(after.days[..3], o.days[..3]);
    store.close().await;
}
both_stores!(the_overview_counts_what_was_committed_by_day_and_campaign);

async fn an_upgraded_store_gets_its_history_from_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    let today = day_of(now());
    fill(&store, today).await;
    let live = store.overview(today - 3, today).await.unwrap();
    store.close().await;

    // The store as a relay before migration 0011 left it: the same rows,
    // no rollups.
    let mut c = common::backend::connect(dir.path()).await;
    for sql in [
        "DROP TABLE daily_counts",
        "DROP INDEX campaign_days_day",
        "DROP INDEX deliveries_deferred",
        "DELETE FROM _sqlx_migrations WHERE version = 11",
    ] {
        sqlx::query(sql).execute(&mut c).await.expect(sql);
    }
    drop(c);

    let store = open(dir.path(), false).await;
    let upgraded = store.overview(today - 3, today).await.unwrap();
    assert_eq!(upgraded, live, "the backfill counts what live counting did");
    // And counting goes on from there.
    store
        .accept_message(message(
            "m9",
            "news",
            today * DAY_MS + 3000,
            vec![decided(
                "z@example.net",
                0,
                Outcome::Suppress,
                Reason::Erased,
            )],
        ))
        .await
        .unwrap();
    let next = store.overview(today, today).await.unwrap();
    assert_eq!(next.days[0].campaigns["news"].accepted, 2);
    assert_eq!(next.days[0].all.suppressed[&Reason::Erased], 1);
    store.close().await;
}
both_stores!(an_upgraded_store_gets_its_history_from_the_migration);

async fn the_overview_refuses_a_range_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false).await;
    for (from, to) in [(10, 9), (0, consent_relay::store::OVERVIEW_MAX_DAYS)] {
        let e = store.overview(from, to).await.expect_err("refused");
        assert!(e.to_string().contains("overview days"), "{e}");
    }
    let one = store.overview(20_000, 20_000).await.unwrap();
    assert_eq!(one.days.len(), 1);
    assert_eq!(one.queue.oldest_deferred, None);
    store.close().await;
}
both_stores!(the_overview_refuses_a_range_it_cannot_read);
