//! `consent-relay suppression list|remove`: the people the relay does not
//! mail because their mailbox bounced, and an operator's removal of that
//! (`--reason` required; recorded with who: `$USER`, or `admin` when
//! unset). After a removal the person's next mail is decided on consent
//! alone, and their soft bounces count from zero again.

use anyhow::bail;
use clap::{Args, Subcommand};

use super::campaign::operator;
use super::open;
use crate::config::Config;
use crate::store::Suppression;
use crate::time::format_time;

#[derive(Subcommand, Debug)]
pub enum SuppressionCommand {
    /// List the suppressions in force, newest first
    List(ListArgs),
    /// Remove the suppressions in force of an address (the removal is kept, with who and why)
    Remove(RemoveArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RemoveArgs {
    pub email: String,
    /// Why the person may be mailed again (kept with the removal)
    #[arg(long)]
    pub reason: String,
}

pub(super) async fn run(config: &Config, c: SuppressionCommand) -> anyhow::Result<()> {
    match c {
        SuppressionCommand::List(a) => list(config, a).await,
        SuppressionCommand::Remove(a) => remove(config, a).await,
    }
}

async fn list(config: &Config, a: ListArgs) -> anyhow::Result<()> {
    let store = open(config).await?;
    let rows = store.active_suppressions(a.limit.max(1), None).await;
    store.close().await;
    let rows = rows?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no suppressions in force");
        return Ok(());
    }
    println!(
        "{:>6}  {:<32}  {:<4}  {:<7}  {:<20}  {:<20}  diagnostic",
        "id", "address", "kind", "status", "since", "until"
    );
    for r in rows {
        let s = &r.suppression;
        let who = r
            .address
            .clone()
            .unwrap_or_else(|| format!("erased:{}", r.address_hash));
        println!(
            "{:>6}  {:<32}  {:<4}  {:<7}  {:<20}  {:<20}  {}",
            s.id,
            who,
            s.kind,
            s.status_code.as_deref().unwrap_or("-"),
            format_time(s.since),
            s.until.map(format_time).unwrap_or_else(|| "-".into()),
            s.diagnostic.as_deref().unwrap_or_default()
        );
    }
    Ok(())
}

async fn remove(config: &Config, a: RemoveArgs) -> anyhow::Result<()> {
    let address = super::identity(&a.email)?.canonical().to_owned();
    let reason = a.reason.trim();
    if reason.is_empty() {
        bail!("--reason: say why {address} may be mailed again");
    }
    let by = operator();
    let store = open(config).await?;
    let removed = store.remove_suppressions(&address, &by, reason).await;
    store.close().await;
    let removed = removed?;
    if removed.is_empty() {
        bail!("no suppression in force for {address}");
    }
    let by = &by.name;
    tracing::info!(address = %address, by = %by, removed = removed.len(), "suppressions removed");
    println!(
        "removed {} suppression(s) of {address} (by {by}: {reason})",
        removed.len()
    );
    Ok(())
}

/// The `suppressions:` part of `consent show`.
pub(super) fn print_suppressions(list: &[Suppression]) {
    println!("suppressions:");
    if list.is_empty() {
        println!("  (none)");
    }
    for s in list {
        let state = match (&s.removed_at, s.active) {
            (Some(at), _) => format!(
                "removed {} by {} ({})",
                format_time(*at),
                s.removed_by.as_deref().unwrap_or("?"),
                s.removed_reason.as_deref().unwrap_or("")
            ),
            (None, true) => match s.until {
                Some(u) => format!("in force until {}", format_time(u)),
                None => "in force".to_owned(),
            },
            (None, false) => "expired".to_owned(),
        };
        println!(
            "  {:>6}  {}  {:<4} bounce {:<7} source={} campaign={} reason={}: {}{}",
            s.id,
            format_time(s.since),
            s.kind,
            s.status_code.as_deref().unwrap_or("-"),
            s.source,
            s.campaign.as_deref().unwrap_or("-"),
            s.reason,
            state,
            s.diagnostic
                .as_deref()
                .map(|d| format!(" diagnostic={d:?}"))
                .unwrap_or_default()
        );
    }
}
