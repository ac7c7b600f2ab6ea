//! End to end: delivery upstream, retries, bounces and late suppression.

use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::{TestRelay, eventually, message};
use crate::common::sink::{Fault, ReservedPort, Sink};
use consent_relay::consent::Action;
use consent_relay::store::{DecisionFilter, QueueRow};

async fn queue(relay: &TestRelay) -> Vec<QueueRow> {
    relay.store().queue(100).await.expect("queue")
}

async fn temporary_failure_is_retried_and_delivered_once() {
    let sink = Sink::start().await;
    sink.script([Fault::Mail(451, "4.3.0 try later")]);
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let r = relay
        .send(&["a@example.net"], &message("prospecting", "x"))
        .await;
    assert!(r.starts_with("250"), "{r}");
    eventually("deferred with the upstream reply", || async {
        queue(&relay).await.iter().any(|q| {
            q.status == "deferred" && q.last_reply.as_deref().is_some_and(|r| r.contains("451"))
        })
    })
    .await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["a@example.net"]);
    eventually("queue empty after delivery", || async {
        queue(&relay).await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.count(), 1, "delivered more than once");
}
both_stores!(temporary_failure_is_retried_and_delivered_once);

async fn dropped_connection_at_data_is_retried() {
    let sink = Sink::start().await;
    sink.script([Fault::DropAtData]);
    let relay = TestRelay::start(sink.addr(), "", "").await;
    relay
        .send(&["a@example.net"], &message("prospecting", "x"))
        .await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["a@example.net"]);
}
both_stores!(dropped_connection_at_data_is_retried);

async fn permanent_failure_fails_and_bounces_to_the_sender() {
    let sink = Sink::start().await;
    sink.script([Fault::Rcpt(550, "5.1.1 no such user")]);
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let r = relay
        .send(&["gone@example.net"], &message("prospecting", "x"))
        .await;
    let queue_id = r.split_whitespace().nth(4).expect("queue id").to_owned();
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let dsn = &got[0];
    assert_eq!(dsn.mail_from, "", "a bounce has the null sender");
    assert_eq!(dsn.rcpt_to, ["crm@example.com"]);
    let text = String::from_utf8_lossy(&dsn.data);
    assert!(
        text.contains("multipart/report; report-type=delivery-status"),
        "{text}"
    );
    assert!(
        text.contains("Final-Recipient: rfc822; gone@example.net"),
        "{text}"
    );
    assert!(text.contains("Status: 5.1.1"), "{text}");
    assert!(text.contains("550 5.1.1 no such user"), "{text}");
    assert!(text.contains(&queue_id), "{text}");
    eventually("the bounce's own delivery is recorded", || async {
        queue(&relay).await.len() == 1
    })
    .await;
    let failed: Vec<QueueRow> = queue(&relay).await;
    assert_eq!(failed[0].status, "failed");
    assert_eq!(failed[0].recipient, "gone@example.net");
}
both_stores!(permanent_failure_fails_and_bounces_to_the_sender);

async fn a_failed_bounce_is_not_bounced() {
    let sink = Sink::start().await;
    sink.script([
        Fault::Rcpt(550, "5.1.1 no such user"),
        Fault::Rcpt(550, "5.1.1 sender unknown too"),
    ]);
    let relay = TestRelay::start(sink.addr(), "", "").await;
    relay
        .send(&["gone@example.net"], &message("prospecting", "x"))
        .await;
    eventually("both failed", || async {
        let q = queue(&relay).await;
        q.len() == 2 && q.iter().all(|r| r.status == "failed")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), 0);
    assert_eq!(queue(&relay).await.len(), 2);
}
both_stores!(a_failed_bounce_is_not_bounced);

async fn upstream_down_at_start_then_up_is_delivered() {
    let port = ReservedPort::new();
    let relay = TestRelay::start(port.addr(), "", "").await;
    relay
        .send(
            &["a@example.net", "b@example.net"],
            &message("prospecting", "x"),
        )
        .await;
    eventually("deferred while the upstream is down", || async {
        let q = queue(&relay).await;
        q.len() == 2 && q.iter().all(|r| r.status == "deferred" && r.attempts >= 1)
    })
    .await;
    let sink = Sink::start_reserved(port).await;
    let got = sink.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 2);
    eventually("queue empty", || async { queue(&relay).await.is_empty() }).await;
}
both_stores!(upstream_down_at_start_then_up_is_delivered);

async fn max_age_fails_the_delivery_with_a_bounce() {
    let port = ReservedPort::new();
    let relay = TestRelay::start(port.addr(), "", "max_age = \"1s\"").await;
    relay
        .send(&["a@example.net"], &message("prospecting", "x"))
        .await;
    eventually("failed after max_age", || async {
        queue(&relay)
            .await
            .iter()
            .any(|r| r.recipient == "a@example.net" && r.status == "failed")
    })
    .await;
    // The bounce waits in the queue for the upstream like any copy.
    let sink = Sink::start_reserved(port).await;
    let got = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].rcpt_to, ["crm@example.com"]);
    assert!(String::from_utf8_lossy(&got[0].data).contains("Status: 4.4.7"));
}
both_stores!(max_age_fails_the_delivery_with_a_bounce);

async fn withdrawal_between_accept_and_send_is_suppressed_late() {
    let port = ReservedPort::new();
    let relay = TestRelay::start(port.addr(), "", "").await;
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    let r = relay
        .send(
            &["ann@example.net", "bob@example.net"],
            &message("prospecting", "x"),
        )
        .await;
    assert!(r.contains("(2 delivered, 0 suppressed)"), "{r}");
    eventually("deferred", || async {
        queue(&relay)
            .await
            .iter()
            .filter(|r| r.status == "deferred")
            .count()
            == 2
    })
    .await;
    relay
        .consent("ann@example.net", "prospecting", Action::Withdraw, None)
        .await;
    let sink = Sink::start_reserved(port).await;
    let got = sink.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].rcpt_to, ["bob@example.net"]);
    eventually("queue empty", || async { queue(&relay).await.is_empty() }).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.count(), 1);
    let log = relay
        .store()
        .decisions(&DecisionFilter {
            recipient: Some("ann@example.net".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let rows: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|d| (d.outcome.as_str(), d.reason.as_str(), d.stage.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            ("deliver", "not-objected", "accept"),
            ("suppress", "withdrawn", "send")
        ]
    );
    assert!(
        log[1].event_id.is_some(),
        "late decision names its consent event"
    );
}
both_stores!(withdrawal_between_accept_and_send_is_suppressed_late);

async fn upstream_connections_are_reused() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    for i in 0..5 {
        let rcpts: Vec<String> = (0..4).map(|j| format!("r{i}-{j}@example.net")).collect();
        let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
        relay.send(&rcpts, &message("prospecting", "x")).await;
    }
    sink.wait_for(20, Duration::from_secs(10)).await;
    // Two pooled connections in the test config.
    assert!(
        sink.connections() <= 2,
        "{} connections",
        sink.connections()
    );
}
both_stores!(upstream_connections_are_reused);

async fn outbox_writes_one_file_per_copy() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let text =
        common::relay::config_text(dir.path(), &format!("outbox:{}", outbox.display()), "", "")
            .replace("tls = \"none\"\n", "");
    let relay = TestRelay::start_with(dir, &text).await;
    relay
        .send(
            &["a@example.net", "b@example.net"],
            &message("prospecting", "hello"),
        )
        .await;
    eventually("two files", || async {
        std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                    .count()
                    == 2
            })
            .unwrap_or(false)
    })
    .await;
    for e in std::fs::read_dir(&outbox).unwrap().filter_map(Result::ok) {
        if e.path().extension().is_some_and(|x| x == "eml") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            assert!(
                text.starts_with("Return-Path: <crm@example.com>\r\nDelivered-To: "),
                "{text}"
            );
            assert!(text.contains("\r\n\r\nhello\r\n"));
            assert!(!text.contains("X-Campaign"));
        }
    }
}
both_stores!(outbox_writes_one_file_per_copy);

async fn shutdown_hands_leases_back_and_restart_delivers() {
    let port = ReservedPort::new();
    let mut relay = TestRelay::start(port.addr(), "", "").await;
    relay
        .send(&["a@example.net"], &message("prospecting", "x"))
        .await;
    eventually("deferred", || async {
        queue(&relay).await.iter().any(|r| r.status == "deferred")
    })
    .await;
    let dir_path = relay.dir.path().to_owned();
    relay.stop().await;
    let sink = Sink::start_reserved(port).await;
    let text = std::fs::read_to_string(dir_path.join("consent-relay.toml")).unwrap();
    let dir = std::mem::replace(&mut relay.dir, tempfile::tempdir().unwrap());
    let relay2 = TestRelay::start_with(dir, &text).await;
    sink.wait_for(1, Duration::from_secs(15)).await;
    eventually("queue empty", || async { queue(&relay2).await.is_empty() }).await;
}
both_stores!(shutdown_hands_leases_back_and_restart_delivers);
