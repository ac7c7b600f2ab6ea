//! `consent-relay queue`: deliveries not yet ended and those that failed,
//! with their last upstream reply.

use clap::Args;

use super::open;
use crate::config::Config;
use crate::time::format_time;

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(config: &Config, a: QueueArgs) -> anyhow::Result<()> {
    let store = open(config).await?;
    let rows = store.queue(a.limit.max(1)).await?;
    store.close().await;
    if a.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "delivery": r.id, "queue_id": r.message_id, "kind": r.kind,
                    "recipient": r.recipient, "sender": r.mail_from, "campaign": r.campaign,
                    "status": r.status, "attempts": r.attempts,
                    "next_attempt": format_time(r.next_attempt_at),
                    "received": format_time(r.received_at), "last_reply": r.last_reply,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("queue is empty");
        return Ok(());
    }
    println!(
        "{:>8}  {:<26}  {:<32}  {:<9}  {:>8}  {:<20}  last reply",
        "delivery", "queue id", "recipient", "status", "attempts", "next attempt"
    );
    for r in rows {
        println!(
            "{:>8}  {:<26}  {:<32}  {:<9}  {:>8}  {:<20}  {}",
            r.id,
            r.message_id,
            r.recipient,
            r.status.as_str(),
            r.attempts,
            format_time(r.next_attempt_at),
            r.last_reply.unwrap_or_default()
        );
    }
    Ok(())
}
