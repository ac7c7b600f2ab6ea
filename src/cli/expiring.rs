//! `consent-relay consent expiring --campaign ID --within 30d [--json]`: the
//! people whose grant for an opt-in campaign expires within a window under
//! its `consent_max_age_days` (and those whose grant already expired), so
//! the CRM can send them a re-permission mail while it can still reach them.
//! A click on that mail's `[[OPTIN_URL]]` records a fresh grant, which
//! renews `since` and takes the person off this list.

use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::cli::{EXIT_CONFIG, Exit};
use crate::config::Config;
use crate::rights;
use crate::store::{Store, StoreError};
use crate::time::format_time;

const DAY_MS: i64 = 86_400_000;

#[derive(Args, Debug)]
pub struct ExpiringArgs {
    /// Campaign id (one with consent_max_age_days)
    #[arg(long)]
    pub campaign: String,
    /// How far ahead to look: 30d, 2weeks, 72h
    #[arg(long, default_value = "30d")]
    pub within: String,
    /// One JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

/// A grant that expires within the window (or has expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiring {
    pub address: String,
    pub subject_id: String,
    /// When the grant was given (or last renewed).
    pub since: i64,
    pub expires_at: i64,
    /// Already past `expires_at`: mail of the campaign is suppressed
    /// (`consent-expired`) until the person grants again.
    pub expired: bool,
    pub event_id: i64,
}

/// Grants for a campaign whose maximum age is `max_age_days` that expire by
/// `now + within_ms`, oldest first.
pub async fn list(
    store: &Store,
    campaign: &str,
    max_age_days: u32,
    within_ms: i64,
    now: i64,
) -> Result<Vec<Expiring>, StoreError> {
    let max_age = i64::from(max_age_days) * DAY_MS;
    let rows = store
        .grants_since_before(campaign, now + within_ms - max_age)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Expiring {
            expires_at: r.since + max_age,
            // As `policy::decide` reads it.
            expired: now.saturating_sub(r.since) > max_age,
            address: r.address,
            subject_id: r.subject_id,
            since: r.since,
            event_id: r.event_id,
        })
        .collect())
}

/// `consent expiring`.
pub async fn run(config: &Config, a: ExpiringArgs) -> anyhow::Result<()> {
    let Some((index, campaign)) = config
        .campaigns
        .iter()
        .enumerate()
        .find(|(_, c)| c.id == a.campaign)
    else {
        let ids: Vec<&str> = config.campaigns.iter().map(|c| c.id.as_str()).collect();
        anyhow::bail!(
            "unknown campaign {:?} (campaigns in {}: {})",
            a.campaign,
            config.path.display(),
            ids.join(", ")
        );
    };
    let Some(days) = campaign.consent_max_age_days else {
        return Err(Exit {
            code: EXIT_CONFIG,
            message: format!(
                "{}: campaign[{index}].consent_max_age_days: not set for campaign {:?}, so its grants never expire (set consent_max_age_days = 395 under its [[campaign]], an opt-in campaign)",
                config.path.display(),
                campaign.id
            ),
        }
        .into());
    };
    let within = humantime::parse_duration(a.within.trim())
        .map_err(|_| {
            anyhow::anyhow!(
                "--within: {:?} is not a duration (use e.g. 30d, 2weeks, 72h)",
                a.within
            )
        })?
        .min(Duration::from_secs(100 * 365 * 86_400));
    let now = crate::time::now_ms();
    let store = crate::cli::open(config).await?;
    let rows = list(&store, &campaign.id, days, within.as_millis() as i64, now).await;
    store.close().await;
    let rows = rows?;
    if a.json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "address": r.address, "subject_id": r.subject_id, "campaign": campaign.id,
                    "granted_since": rights::time(r.since), "expires_at": rights::time(r.expires_at),
                    "expired": r.expired, "event_id": r.event_id,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let expired = rows.iter().filter(|r| r.expired).count();
    println!(
        "{}: {} grants expire by {} under consent_max_age_days = {days} ({expired} already expired)",
        campaign.id,
        rows.len(),
        format_time(now + within.as_millis() as i64),
    );
    if rows.is_empty() {
        return Ok(());
    }
    println!(
        "{:<40}  {:<20}  {:<20}  state",
        "address", "granted since", "expires at"
    );
    for r in &rows {
        println!(
            "{:<40}  {:<20}  {:<20}  {}",
            r.address,
            format_time(r.since),
            format_time(r.expires_at),
            if r.expired { "expired" } else { "expiring" }
        );
    }
    Ok(())
}
