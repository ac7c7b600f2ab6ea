//! `GET /metrics`: the Prometheus text format after real traffic (SMTP in,
//! a real sink out, a consent event through the API path's store
//! function), and closed to clients outside `metrics_allowed_networks`.
//! The recorder is process-wide, so this is one test holding
//! [`crate::ALONE`]: the SQLite run and then the PostgreSQL one (see
//! `common::backend`) run one after the other, each checking what it added.

use std::time::Duration;

use crate::common;
use crate::common::relay::{TestRelay, config_text, message};
use crate::common::sink::{Fault, Sink};
use consent_relay::consent::Action;

/// The value of the sample `name{labels}` (exact text up to the value).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_count_what_happened_and_stay_private() {
    // What earlier runs in this process counted.
    let before = consent_relay::metrics::install().render();
    let sink = Sink::start().await;
    // The first copy is deferred by a 451, then delivered.
    sink.script([Fault::Rcpt(451, "4.3.0 try later")]);
    let relay = TestRelay::start(sink.addr(), "", "").await;
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    let r = relay
        .send(
            &["ann@example.net", "bob@example.net"],
            &message("newsletter", "hello"),
        )
        .await;
    assert!(r.starts_with("250"), "{r}");
    let r = relay
        .send(&["ann@example.net"], &message("nosuchcampaign", "hello"))
        .await;
    assert!(r.starts_with("550"), "{r}");
    sink.wait_for(1, Duration::from_secs(10)).await;

    let http = reqwest::Client::new();
    // The counter moves just after the sink's 250: read until it shows.
    let mut text = String::new();
    for _ in 0..100 {
        let res = http.get(relay.url("/metrics")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        text = res.text().await.unwrap();
        let delivered = |t: &str| sample(t, "consent_relay_recipients_delivered_total");
        if delivered(&text).unwrap_or(0.0) > delivered(&before).unwrap_or(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let has = |series: &str, at_least: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"))
            - sample(&before, series).unwrap_or(0.0);
        assert!(
            v >= at_least,
            "{series} = {v}, expected >= {at_least}\n{text}"
        );
    };
    has("consent_relay_messages_accepted_total", 1.0);
    has(
        "consent_relay_messages_refused_total{reason=\"unknown_campaign\"}",
        1.0,
    );
    has(
        "consent_relay_recipients_suppressed_total{reason=\"no-consent\",stage=\"accept\"}",
        1.0,
    );
    has("consent_relay_recipients_delivered_total", 1.0);
    has("consent_relay_delivery_attempts_total{class=\"4xx\"}", 1.0);
    has("consent_relay_delivery_attempts_total{class=\"2xx\"}", 1.0);
    has(
        "consent_relay_consent_events_total{source=\"admin\",action=\"grant\"}",
        1.0,
    );
    has(
        "consent_relay_smtp_connections_total{listener=\"smtp\"}",
        2.0,
    );
    has("consent_relay_accept_duration_seconds_count", 2.0);
    has(
        "consent_relay_accept_duration_seconds_bucket{le=\"+Inf\"}",
        2.0,
    );
    has("consent_relay_store_commit_duration_seconds_count", 1.0);
    has("consent_relay_delivery_latency_seconds_count", 1.0);
    // A gauge, read from this run's store at scrape time.
    for status in ["queued", "deferred", "sending"] {
        let series = format!("consent_relay_queue_depth{{status=\"{status}\"}}");
        let v = sample(&text, &series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        assert!(v >= 0.0, "{series} = {v}\n{text}");
    }
    assert!(text.contains("# TYPE consent_relay_accept_duration_seconds histogram"));
    assert!(text.contains("# TYPE consent_relay_messages_accepted_total counter"));

    // The same relay with /metrics open to nobody: 404 like any unknown path.
    let mut relay = relay;
    relay.stop().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "").replace(
        "public_url = \"http://127.0.0.1:8080\"",
        "public_url = \"http://127.0.0.1:8080\"\nmetrics_allowed_networks = [\"192.0.2.0/24\"]",
    );
    let closed = TestRelay::start_with(dir, &text).await;
    let res = http.get(closed.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(!res.text().await.unwrap().contains("consent_relay_"));
}
#[tokio::test]
async fn metrics_count_the_traffic_and_are_closed_outside_allowed_networks() {
    let _alone = crate::ALONE.lock().await;
    metrics_count_what_happened_and_stay_private().await;
    common::backend::on_pg(metrics_count_what_happened_and_stay_private).await;
}
