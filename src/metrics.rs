//! Prometheus metrics, served at `GET /metrics` on the HTTP listener.
//!
//! The counters and histograms are recorded with the `metrics` macros where
//! things happen (SMTP sessions, intake, the store's writer, delivery, the
//! consent paths); [`install`] sets the process-wide Prometheus recorder
//! once and [`render`] writes the text exposition format, adding the queue
//! depth it is given (the caller reads it from the store at scrape time, so
//! it is right on every node that shares a database). Names follow
//! Prometheus conventions: `consent_relay_…_total` for counters, `_seconds`
//! for durations.
//!
//! Knows no other part of the relay: callers pass the labels and numbers
//! (a delivery attempt's class is `AttemptOutcome::class`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const MESSAGES_ACCEPTED: &str = "consent_relay_messages_accepted_total";
pub const MESSAGES_REFUSED: &str = "consent_relay_messages_refused_total";
pub const RECIPIENTS_DELIVERED: &str = "consent_relay_recipients_delivered_total";
pub const RECIPIENTS_SUPPRESSED: &str = "consent_relay_recipients_suppressed_total";
pub const DELIVERY_ATTEMPTS: &str = "consent_relay_delivery_attempts_total";
pub const ACCEPT_SECONDS: &str = "consent_relay_accept_duration_seconds";
pub const DELIVERY_SECONDS: &str = "consent_relay_delivery_latency_seconds";
pub const COMMIT_SECONDS: &str = "consent_relay_store_commit_duration_seconds";
pub const SMTP_CONNECTIONS: &str = "consent_relay_smtp_connections_total";
pub const SMTP_CONNECTIONS_OPEN: &str = "consent_relay_smtp_connections_open";
pub const CONSENT_EVENTS: &str = "consent_relay_consent_events_total";
pub const QUEUE_DEPTH: &str = "consent_relay_queue_depth";
pub const HTTP_CONNECTIONS_REFUSED: &str = "consent_relay_http_connections_refused_total";
pub const FEEDBACK_REPORTS: &str = "consent_relay_feedback_reports_total";
pub const BOUNCES: &str = "consent_relay_bounces_total";
pub const COMPLAINTS: &str = "consent_relay_complaints_total";
pub const SUPPRESSIONS_REMOVED: &str = "consent_relay_suppressions_removed_total";
pub const CAMPAIGN_PAUSES: &str = "consent_relay_campaign_pauses_total";
pub const CAMPAIGN_WARNINGS: &str = "consent_relay_campaign_warnings_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for this process (once; later calls,
/// as from several relays in one test process, share it).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Latencies from a millisecond (a group commit) to a day (a
        // delivery retried for hours).
        let fast = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let slow = [
            0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(ACCEPT_SECONDS.into()), &fast)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(COMMIT_SECONDS.into()), &fast))
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(DELIVERY_SECONDS.into()), &slow))
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be set (an embedding program): then
        // our handle renders only the scrape-time gauges.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(MESSAGES_ACCEPTED, "Messages accepted (250 after DATA).");
    describe_counter!(
        MESSAGES_REFUSED,
        "Messages refused after DATA or at connection, by reason."
    );
    describe_counter!(
        RECIPIENTS_DELIVERED,
        "Recipient copies the upstream accepted."
    );
    describe_counter!(
        RECIPIENTS_SUPPRESSED,
        "Recipients suppressed, by reason and stage (accept or send)."
    );
    describe_counter!(
        DELIVERY_ATTEMPTS,
        "Delivery attempts by upstream reply class (2xx, 4xx, 5xx, error)."
    );
    describe_histogram!(
        ACCEPT_SECONDS,
        metrics::Unit::Seconds,
        "From the end of DATA to the reply (decisions and the store commit)."
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        metrics::Unit::Seconds,
        "From acceptance to the upstream's 2xx for one recipient copy."
    );
    describe_histogram!(
        COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "One store write transaction (a group of callers' writes)."
    );
    describe_counter!(SMTP_CONNECTIONS, "SMTP connections taken, by listener.");
    describe_gauge!(SMTP_CONNECTIONS_OPEN, "SMTP sessions open now.");
    describe_counter!(
        CONSENT_EVENTS,
        "Consent events recorded, by source and action."
    );
    describe_counter!(
        HTTP_CONNECTIONS_REFUSED,
        "HTTP connections closed on accept, by limit (per-client or total)."
    );
    describe_counter!(
        FEEDBACK_REPORTS,
        "Reports received at a feedback door, by kind (bounce, complaint, feedback, auto-reply, none)."
    );
    describe_counter!(
        BOUNCES,
        "Bounces applied to a person, by kind (hard, soft) and campaign."
    );
    describe_counter!(COMPLAINTS, "Complaints applied to a person, by campaign.");
    describe_counter!(
        SUPPRESSIONS_REMOVED,
        "Suppressions removed by an operator (API or command line)."
    );
    describe_counter!(
        CAMPAIGN_PAUSES,
        "Campaigns paused, by campaign and by whom (reputation-guard or operator)."
    );
    describe_counter!(
        CAMPAIGN_WARNINGS,
        "Reputation guard warnings (complaint rate at warn_rate), by campaign."
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Recipient copies in the queue, by status (read at scrape time)."
    );
}

/// The text exposition: the process's counters and histograms, then the
/// queue depth (held copies too), `(status, copies)` as the store counts them now; `None`
/// when it could not be read (the gauge is then left out).
pub fn render(queue_depth: Option<&[(String, i64)]>) -> String {
    let mut out = install().render();
    if let Some(depth) = queue_depth {
        out.push_str(&format!(
            "# HELP {QUEUE_DEPTH} Recipient copies in the queue, by status (read at scrape time).\n# TYPE {QUEUE_DEPTH} gauge\n"
        ));
        for status in ["queued", "deferred", "sending", "held"] {
            let n = depth
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            out.push_str(&format!("{QUEUE_DEPTH}{{status=\"{status}\"}} {n}\n"));
        }
    }
    out
}

/// A message refused; `reason` is one word from a closed set.
pub fn refused(reason: &'static str) {
    metrics::counter!(MESSAGES_REFUSED, "reason" => reason).increment(1);
}

/// A report received at a feedback door; `kind` is its wire name.
pub fn feedback_report(kind: &str) {
    metrics::counter!(FEEDBACK_REPORTS, "kind" => kind.to_owned()).increment(1);
}

/// A bounce applied to a person; `kind` is `hard` or `soft`.
pub fn bounce(kind: &str, campaign: &str) {
    metrics::counter!(BOUNCES, "kind" => kind.to_owned(), "campaign" => campaign.to_owned())
        .increment(1);
}

/// A complaint applied to a person.
pub fn complaint(campaign: &str) {
    metrics::counter!(COMPLAINTS, "campaign" => campaign.to_owned()).increment(1);
}

/// The `by` label of a pause by the reputation guard.
pub const PAUSED_BY_GUARD: &str = "reputation-guard";
/// The `by` label of a pause by any operator (names make no label values).
pub const PAUSED_BY_OPERATOR: &str = "operator";

/// A campaign paused; `by` is [`PAUSED_BY_GUARD`] or anything else,
/// counted as [`PAUSED_BY_OPERATOR`].
pub fn campaign_paused(campaign: &str, by: &str) {
    let by = if by == PAUSED_BY_GUARD {
        PAUSED_BY_GUARD
    } else {
        PAUSED_BY_OPERATOR
    };
    metrics::counter!(CAMPAIGN_PAUSES, "campaign" => campaign.to_owned(), "by" => by).increment(1);
}

/// A reputation guard warning about a campaign's day.
pub fn campaign_warning(campaign: &str) {
    metrics::counter!(CAMPAIGN_WARNINGS, "campaign" => campaign.to_owned()).increment(1);
}

/// An HTTP connection closed on accept; `limit` is `per-client` or `total`.
pub fn http_connection_refused(limit: &'static str) {
    metrics::counter!(HTTP_CONNECTIONS_REFUSED, "limit" => limit).increment(1);
}

/// Counts an SMTP session in [`SMTP_CONNECTIONS_OPEN`] while it lives.
pub struct OpenSession(());

impl OpenSession {
    pub fn open() -> OpenSession {
        metrics::gauge!(SMTP_CONNECTIONS_OPEN).increment(1.0);
        OpenSession(())
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        metrics::gauge!(SMTP_CONNECTIONS_OPEN).decrement(1.0);
    }
}
