//! `consent-relay queue`: deliveries not yet ended and those that failed,
//! with their last upstream reply; `queue retry|release|drop DELIVERY`:
//! an operator's hand on one copy (`store::queue`), recorded in the audit
//! trail under `$USER` ([`super::campaign::operator`]).

use clap::{Args, Subcommand};

use super::open;
use crate::config::Config;
use crate::store::QueueAction;
use crate::time::format_time;

/// `queue [--limit N] [--json]`, or one of its actions.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct QueueCommand {
    #[command(subcommand)]
    pub action: Option<QueueActionCommand>,
    #[command(flatten)]
    pub list: QueueArgs,
}

#[derive(Subcommand, Debug)]
pub enum QueueActionCommand {
    /// Make a deferred copy due now (its next attempt is not waited for)
    Retry { delivery: i64 },
    /// Queue a held copy again, due now (its campaign must not be paused)
    Release { delivery: i64 },
    /// End a queued, deferred or held copy as dropped (never sent)
    Drop { delivery: i64 },
}

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(config: &Config, c: QueueCommand) -> anyhow::Result<()> {
    let (action, delivery) = match c.action {
        None => return list(config, c.list).await,
        Some(QueueActionCommand::Retry { delivery }) => (QueueAction::Retry, delivery),
        Some(QueueActionCommand::Release { delivery }) => (QueueAction::Release, delivery),
        Some(QueueActionCommand::Drop { delivery }) => (QueueAction::Drop, delivery),
    };
    let by = super::campaign::operator();
    let store = open(config).await?;
    let done = store.queue_action(action, delivery, &by).await;
    store.close().await;
    let d = done?;
    tracing::info!(delivery = d.delivery_id, queue_id = %d.message_id, action = %action, by = %by.name, "queue: copy changed");
    println!(
        "delivery {} (queue id {}, campaign {}): {} to {}",
        d.delivery_id, d.message_id, d.campaign, d.from, d.to
    );
    Ok(())
}

async fn list(config: &Config, a: QueueArgs) -> anyhow::Result<()> {
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
