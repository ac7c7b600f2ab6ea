//! `consent-relay reputation [--campaign ID] [--days N] [--json]`: the
//! reputation guard's table, per campaign per day (UTC): copies
//! delivered, hard and soft bounces, complaints, their rates per copy
//! delivered, the complaint rate marked against `[complaints] warn_rate`
//! and `pause_rate`, and whether the campaign is paused.

use clap::Args;

use super::open;
use crate::config::{Config, rate_percent};
use crate::store::{CampaignDay, CampaignPause};
use crate::time::{day_of, format_day};
use crate::time::{format_time, now_ms};

#[derive(Args, Debug)]
pub struct ReputationArgs {
    /// One campaign only
    #[arg(long)]
    pub campaign: Option<String>,
    /// Days to show, today included
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(i64).range(1..=3660))]
    pub days: i64,
    #[arg(long)]
    pub json: bool,
}

/// A count per copy delivered; none when nothing was delivered.
fn rate(n: i64, delivered: i64) -> Option<f64> {
    (delivered > 0).then(|| n as f64 / delivered as f64)
}

/// Where a day's complaint rate stands against the configured lines.
fn mark(config: &Config, d: &CampaignDay) -> &'static str {
    config
        .complaints
        .mark(rate(d.complaints, d.delivered))
        .as_str()
}

fn shown(rate: Option<f64>) -> String {
    rate.map(rate_percent).unwrap_or_else(|| "-".to_owned())
}

pub(super) async fn run(config: &Config, a: ReputationArgs) -> anyhow::Result<()> {
    if let Some(id) = &a.campaign {
        super::campaign::known_campaign(config, id, &[])?;
    }
    let since = day_of(now_ms()) - (a.days - 1);
    let store = open(config).await?;
    let days = store.campaign_days(a.campaign.as_deref(), since).await;
    let pauses = store.campaign_pauses().await;
    store.close().await;
    let (days, pauses) = (days?, pauses?);
    let paused = |c: &str| pauses.iter().find(|p| p.campaign == c);
    if a.json {
        print_json(config, &days, &pauses, a.campaign.as_deref())?;
        return Ok(());
    }
    println!(
        "complaints: warn at {}, pause at {} (once {} copies were delivered that day)",
        rate_percent(config.complaints.warn_rate),
        rate_percent(config.complaints.pause_rate),
        config.complaints.min_volume
    );
    for p in pauses
        .iter()
        .filter(|p| a.campaign.as_deref().is_none_or(|c| c == p.campaign))
    {
        println!(
            "PAUSED {} since {} by {}: {}",
            p.campaign,
            format_time(p.paused_at),
            p.paused_by,
            p.reason
        );
    }
    if days.is_empty() {
        println!(
            "no deliveries, bounces or complaints in the last {} days",
            a.days
        );
        return Ok(());
    }
    println!(
        "{:<20}  {:<10}  {:>9}  {:>6} {:>8}  {:>6} {:>8}  {:>10} {:>8}  {:<5}  paused",
        "campaign",
        "day",
        "delivered",
        "hard",
        "rate",
        "soft",
        "rate",
        "complaints",
        "rate",
        "mark"
    );
    for d in &days {
        println!(
            "{:<20}  {:<10}  {:>9}  {:>6} {:>8}  {:>6} {:>8}  {:>10} {:>8}  {:<5}  {}",
            d.campaign,
            format_day(d.day),
            d.delivered,
            d.hard_bounces,
            shown(rate(d.hard_bounces, d.delivered)),
            d.soft_bounces,
            shown(rate(d.soft_bounces, d.delivered)),
            d.complaints,
            shown(rate(d.complaints, d.delivered)),
            mark(config, d),
            if paused(&d.campaign).is_some() {
                "yes"
            } else {
                "no"
            }
        );
    }
    Ok(())
}

fn print_json(
    config: &Config,
    days: &[CampaignDay],
    pauses: &[CampaignPause],
    only: Option<&str>,
) -> anyhow::Result<()> {
    let days: Vec<serde_json::Value> = days
        .iter()
        .map(|d| {
            serde_json::json!({
                "campaign": d.campaign, "day": format_day(d.day), "delivered": d.delivered,
                "hard_bounces": d.hard_bounces, "hard_bounce_rate": rate(d.hard_bounces, d.delivered),
                "soft_bounces": d.soft_bounces, "soft_bounce_rate": rate(d.soft_bounces, d.delivered),
                "complaints": d.complaints, "complaint_rate": rate(d.complaints, d.delivered),
                "mark": mark(config, d),
                "warned_at": d.warned_at.map(format_time),
                "paused": pauses.iter().any(|p| p.campaign == d.campaign),
            })
        })
        .collect();
    let pauses: Vec<serde_json::Value> = pauses
        .iter()
        .filter(|p| only.is_none_or(|c| c == p.campaign))
        .map(|p| {
            serde_json::json!({
                "campaign": p.campaign, "paused_at": format_time(p.paused_at),
                "paused_by": p.paused_by, "reason": p.reason,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "warn_rate": config.complaints.warn_rate,
        "pause_rate": config.complaints.pause_rate,
        "min_volume": config.complaints.min_volume,
        "days": days,
        "paused": pauses,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
