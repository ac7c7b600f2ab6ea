//! `consent-relay webhooks`: consent events and notices (bounces, removed
//! suppressions, paused campaigns) not yet accepted by the CRM's webhook,
//! with the last error.

use super::open;
use super::queue::QueueArgs;
use crate::config::Config;
use crate::time::format_time;

/// `webhooks`: the webhook outbox, oldest first.
pub(super) async fn run(config: &Config, a: QueueArgs) -> anyhow::Result<()> {
    let store = open(config).await?;
    let rows = store.webhook_outbox(a.limit.max(1)).await;
    let notices = store.webhook_notices(a.limit.max(1)).await;
    store.close().await;
    let (rows, notices) = (rows?, notices?);
    if a.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "event": r.event_id, "subject_id": r.subject_id, "status": r.status,
                    "attempts": r.attempts, "next_attempt": format_time(r.next_attempt_at),
                    "queued": format_time(r.created_at), "last_error": r.last_error,
                })
            })
            .chain(notices.iter().map(|n| {
                serde_json::json!({
                    "notice": n.id, "type": n.kind, "subject_id": n.subject_id, "status": n.status,
                    "attempts": n.attempts, "next_attempt": format_time(n.next_attempt_at),
                    "queued": format_time(n.created_at), "last_error": n.last_error,
                })
            }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if config.webhook.is_none() {
        eprintln!(
            "note: {} has no [webhook] section; new consent events are not queued",
            config.path.display()
        );
    }
    if !notices.is_empty() {
        println!(
            "{:>8}  {:<20}  {:<8}  {:>8}  {:<20}  last error",
            "notice", "type", "status", "attempts", "next attempt"
        );
        for n in &notices {
            println!(
                "{:>8}  {:<20}  {:<8}  {:>8}  {:<20}  {}",
                n.id,
                n.kind,
                n.status,
                n.attempts,
                format_time(n.next_attempt_at),
                n.last_error.as_deref().unwrap_or_default()
            );
        }
    }
    if rows.is_empty() {
        println!("webhook outbox is empty");
        return Ok(());
    }
    println!(
        "{:>8}  {:<24}  {:<8}  {:>8}  {:<20}  last error",
        "event", "subject", "status", "attempts", "next attempt"
    );
    for r in rows {
        println!(
            "{:>8}  {:<24}  {:<8}  {:>8}  {:<20}  {}",
            r.event_id,
            r.subject_id,
            r.status,
            r.attempts,
            format_time(r.next_attempt_at),
            r.last_error.unwrap_or_default()
        );
    }
    Ok(())
}
