//! `consent-relay log`: the decision log, as a table or JSON. The newest
//! `--limit` rows that match, printed oldest first (the newest last, as a
//! log reads); when older rows match too, stderr says so.

use anyhow::Context as _;
use clap::Args;

use super::{open, parse_time};
use crate::config::Config;
use crate::mail::ids;
use crate::store::{DecisionFilter, DecisionRow};
use crate::time::format_time;

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Rows about this address (any spelling), or the erased:HASH that replaced an erased one
    #[arg(long, value_name = "EMAIL")]
    pub recipient: Option<String>,
    /// Rows of this campaign
    #[arg(long, value_name = "ID")]
    pub campaign: Option<String>,
    /// Rows of one message: the queue id of the relay's reply ("250 2.0.0 queued as ID")
    #[arg(long, value_name = "ID")]
    pub queue_id: Option<String>,
    /// Rows of the messages whose Message-ID header is this one (with or without < >)
    #[arg(long, value_name = "ID")]
    pub message_id: Option<String>,
    /// RFC 3339 time, a date (2026-11-01), or an age (2h, 7d)
    #[arg(long)]
    pub since: Option<String>,
    /// Show the newest N matching rows, printed oldest first (newest last);
    /// when more match, stderr says so
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub limit: i64,
    /// One JSON array instead of a table (the rows of GET /api/v1/decisions)
    #[arg(long)]
    pub json: bool,
}

pub(super) async fn run(config: &Config, a: LogArgs) -> anyhow::Result<()> {
    let filter = filter(&a)?;
    let store = open(config).await?;
    let mut rows = store.decisions(&filter).await?;
    store.close().await;
    // One row more than shown tells whether older rows match too.
    let more = rows.len() as i64 > a.limit;
    rows.truncate(a.limit as usize);
    rows.reverse();
    if more {
        eprintln!(
            "log: showing the newest {} rows; older ones match too (raise --limit, or narrow with \
             --since, --recipient, --campaign, --queue-id or --message-id)",
            a.limit
        );
    }
    if a.json {
        let out: Vec<serde_json::Value> = rows.iter().map(crate::rights::decision).collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_table(&rows);
    Ok(())
}

/// The store's filter for these arguments, each value checked.
fn filter(a: &LogArgs) -> anyhow::Result<DecisionFilter> {
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
    let checked = |flag: &str, value: &Option<String>, read: fn(&str) -> Result<String, &str>| {
        value
            .as_deref()
            .map(|v| read(v).map_err(|reason| anyhow::anyhow!("{flag} {v:?} {reason}")))
            .transpose()
    };
    Ok(DecisionFilter {
        recipient,
        campaign: a.campaign.clone(),
        queue_id: checked("--queue-id", &a.queue_id, ids::queue_id)?,
        message_id: checked("--message-id", &a.message_id, ids::message_id)?,
        since,
        newest_first: true,
        limit: a.limit.saturating_add(1),
        ..DecisionFilter::default()
    })
}

fn print_table(rows: &[DecisionRow]) {
    println!(
        "{:<20}  {:<26}  {:<14}  {:<32}  {:<16}  {:<8}  {:<20}  {:>6}  {:<6} message-id",
        "time", "queue id", "kind", "recipient", "campaign", "outcome", "reason", "event", "stage"
    );
    for r in rows {
        println!(
            "{:<20}  {:<26}  {:<14}  {:<32}  {:<16}  {:<8}  {:<20}  {:>6}  {:<6} {}",
            format_time(r.at),
            r.message_id,
            r.kind.shown(),
            r.recipient,
            r.campaign,
            r.outcome.as_str(),
            r.reason.as_str(),
            r.event_id
                .map(|e| e.to_string())
                .unwrap_or_else(|| "-".into()),
            r.stage,
            r.header_message_id.as_deref().unwrap_or("-"),
        );
    }
}
