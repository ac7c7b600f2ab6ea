//! `consent-relay log`: the decision log, as a table or JSON.

use anyhow::Context as _;
use clap::Args;

use super::{open, parse_time};
use crate::config::Config;
use crate::store::DecisionFilter;
use crate::time::format_time;

#[derive(Args, Debug)]
pub struct LogArgs {
    #[arg(long)]
    pub recipient: Option<String>,
    #[arg(long)]
    pub campaign: Option<String>,
    /// RFC 3339 time, a date (2026-11-01), or an age (2h, 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many rows
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// One JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(config: &Config, a: LogArgs) -> anyhow::Result<()> {
    let since = a
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .context("--since")?;
    // An address's identity, or the `erased:HASH` that replaced one.
    let recipient = match a.recipient.as_deref() {
        Some(r) if r.starts_with("erased:") => Some(r.to_owned()),
        Some(r) => Some(super::identity(r)?.canonical().to_owned()),
        None => None,
    };
    let store = open(config).await?;
    let rows = store
        .decisions(&DecisionFilter {
            recipient,
            campaign: a.campaign,
            since,
            after_id: None,
            limit: a.limit.max(1),
        })
        .await?;
    store.close().await;
    if a.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "at": format_time(r.at), "queue_id": r.message_id,
                    "recipient": r.recipient, "campaign": r.campaign, "outcome": r.outcome,
                    "reason": r.reason, "consent_event": r.event_id, "stage": r.stage,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{:<20}  {:<26}  {:<32}  {:<16}  {:<8}  {:<20}  {:>6}  stage",
        "time", "queue id", "recipient", "campaign", "outcome", "reason", "event"
    );
    for r in rows {
        println!(
            "{:<20}  {:<26}  {:<32}  {:<16}  {:<8}  {:<20}  {:>6}  {}",
            format_time(r.at),
            r.message_id,
            r.recipient,
            r.campaign,
            r.outcome.as_str(),
            r.reason.as_str(),
            r.event_id
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into()),
            r.stage
        );
    }
    Ok(())
}
