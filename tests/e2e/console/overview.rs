//! The overview (`/admin`): figures of today, 7 and 30 days from the daily
//! rollups, suppressions by reason, unsubscribes by channel, the queue,
//! and the charts by day (SVG, each with its figures in a table).

use reqwest::StatusCode;

use crate::both_stores;
use crate::common::console::{self, Operator, VIEWER};
use crate::common::relay::{eventually, message};
use crate::common::sink::Sink;
use consent_relay::consent::Action;

/// The cell after the row header `name` in the at-a-glance table.
fn today_of<'a>(body: &'a str, name: &str) -> &'a str {
    let row = &body[body
        .find(&format!("<td>{name}</td>"))
        .unwrap_or_else(|| panic!("no row {name}"))..];
    let cell =
        &row[row.find("<td class=\"num\">").expect("a figure") + "<td class=\"num\">".len()..];
    &cell[..cell.find("</td>").expect("end")]
}

async fn the_overview_counts_what_the_relay_did() {
    let sink = Sink::start().await;
    let mut relay = console::start(&sink).await;
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    relay
        .consent("bob@example.net", "newsletter", Action::Withdraw, None)
        .await;
    // ann delivered; bob withdrawn; cy never asked (no consent).
    let reply = relay
        .send(
            &["ann@example.net", "bob@example.net", "cy@example.net"],
            &message("newsletter", "Hello"),
        )
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    eventually("the copy is delivered", || async {
        sink.messages().len() == 1
    })
    .await;
    let mut op = Operator::signed_in(&relay, VIEWER.1).await;
    let mut page = op.get("/admin").await;
    // Delivery is recorded after the sink took the copy: wait for the count.
    for _ in 0..50 {
        if today_of(&page.body, "Copies delivered") == "1" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = op.get("/admin").await;
    }
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert_eq!(today_of(body, "Messages accepted"), "1", "{body}");
    assert_eq!(today_of(body, "Recipients to deliver"), "1");
    assert_eq!(today_of(body, "Copies delivered"), "1");
    assert_eq!(today_of(body, "Recipients suppressed"), "2");
    // bob's withdrawal, recorded by an operator (the test's admin event).
    assert_eq!(today_of(body, "Unsubscribes"), "1");
    assert!(body.contains("<code>withdrawn</code>"), "{body}");
    assert!(body.contains("<code>no-consent</code>"));
    assert!(
        body.contains("<td>operator</td>"),
        "channel of bob's withdrawal"
    );
    // Four charts, each an SVG with a title and its figures.
    assert_eq!(body.matches("<svg class=\"chart\"").count(), 4);
    assert_eq!(
        body.matches("<details><summary>Figures</summary>").count(),
        4
    );
    assert!(
        body.contains("0.3 %") && body.contains("0.1 %"),
        "the providers' lines"
    );
    // 30 days by default; 7 on asking.
    assert!(body.contains("<strong aria-current=\"true\">30 days</strong>"));
    let week = op.get("/admin?days=7").await.body;
    assert!(week.contains("<strong aria-current=\"true\">7 days</strong>"));
    // A nonsense span is the default, not an error.
    assert_eq!(op.get("/admin?days=-4").await.status, StatusCode::OK);
    // Per campaign.
    assert!(body.contains("<code>newsletter</code> Newsletter"));
    // French.
    let fr = Operator::signed_in(&relay, VIEWER.1)
        .await
        .french()
        .get("/admin")
        .await
        .body;
    assert!(
        fr.contains("Messages acceptés") && fr.contains("Taux de plainte"),
        "{fr}"
    );
    relay.stop().await;
}
both_stores!(the_overview_counts_what_the_relay_did);
