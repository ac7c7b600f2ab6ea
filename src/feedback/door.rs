//! What every door (the SMTP listener, `consent-relay feedback`, `POST
//! /api/v1/feedback`) says about a report it took: one log line per
//! report, in the style of the other lines (the report's id as the queue
//! id is for a message, no address: the person is named by the delivery
//! and campaign only, whatever `[log] recipients` says).

use super::intake::Processed;

/// The log line for a report `door` took from `client` (an IP address, or
/// `-` for the command line).
pub fn log_report(p: &Processed, door: &str, client: &str, size: usize) {
    let a = &p.applied;
    tracing::info!(
        report = p.received.id,
        door,
        client,
        kind = %p.kind,
        result = %a.result,
        duplicate = p.received.duplicate,
        delivery = a.delivery_id.unwrap_or(0),
        campaign = a.campaign.as_deref().unwrap_or(""),
        events = a.events.len(),
        size,
        "report received"
    );
}
