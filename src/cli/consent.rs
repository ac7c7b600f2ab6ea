//! `consent-relay consent grant|withdraw|show|expiring`: record a change of
//! consent by hand (source `admin` by default) or show a person's state,
//! history and suppressions.

use anyhow::{Context as _, bail};
use clap::Args;

use super::{ConsentCommand, open, parse_time};
use crate::config::Config;
use crate::consent::{self, Action, Source, subject};
use crate::store::NewConsentEvent;
use crate::time::{format_time, now_ms};

#[derive(Args, Debug)]
pub struct ChangeArgs {
    pub email: String,
    /// Campaign id, or '*' for every campaign
    #[arg(long)]
    pub campaign: String,
    /// Where the consent came from: api, form, one-click, link, preference-page, import, admin
    #[arg(long, default_value = "admin")]
    pub source: String,
    /// Proof: the text or version the person was shown, a form id, a ticket
    #[arg(long)]
    pub evidence: Option<String>,
    /// When it happened (RFC 3339, or a date); default now
    #[arg(long)]
    pub at: Option<String>,
}

pub(super) async fn run(config: &Config, c: ConsentCommand) -> anyhow::Result<()> {
    let (action, a) = match c {
        ConsentCommand::Grant(a) => (Action::Grant, a),
        ConsentCommand::Withdraw(a) => (Action::Withdraw, a),
        ConsentCommand::Show { email, json } => return show(config, &email, json).await,
        ConsentCommand::Expiring(a) => return crate::cli::expiring::run(config, a).await,
    };
    let address = super::identity(&a.email)?.canonical().to_owned();
    if a.campaign != consent::ALL_CAMPAIGNS && config.campaign(&a.campaign).is_none() {
        let ids: Vec<&str> = config.campaigns.iter().map(|c| c.id.as_str()).collect();
        bail!(
            "unknown campaign {:?} (campaigns in {}: {}, or '*' for all)",
            a.campaign,
            config.path.display(),
            ids.join(", ")
        );
    }
    let source: Source = Source::given(&a.source).map_err(|e| anyhow::anyhow!("--source: {e}"))?;
    let at = match &a.at {
        Some(t) => parse_time(t).context("--at")?,
        None => now_ms(),
    };
    let store = open(config).await?;
    let event = store
        .append_consent_event(NewConsentEvent {
            new_subject: subject::new_subject(&config.signing, &address),
            address: address.clone(),
            campaign: a.campaign.clone(),
            action,
            at,
            source,
            ip: None,
            user_agent: None,
            evidence: a.evidence,
            actor: Some(super::campaign::operator()),
        })
        .await?;
    store.close().await;
    println!(
        "recorded {} of {} for {} (event {}, source {})",
        action, a.campaign, address, event.id, source
    );
    Ok(())
}

pub(super) async fn show(config: &Config, email: &str, json: bool) -> anyhow::Result<()> {
    let address = super::identity(email)?.canonical().to_owned();
    let store = open(config).await?;
    let found = store.subject_consent(&address).await;
    let suppressions = store.suppressions_of(&address).await;
    store.close().await;
    let (found, suppressions) = (found?, suppressions?);
    let Some(s) = found else {
        bail!("no consent records for {address}");
    };
    if json {
        let mut doc = serde_json::to_value(&s)?;
        doc["suppressions"] = serde_json::to_value(&suppressions)?;
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("{} (subject {})", s.address, s.subject_id);
    println!("state:");
    if s.states.is_empty() {
        println!("  (none)");
    }
    for st in &s.states {
        println!(
            "  {:<20} {:<10} since {} (event {})",
            st.campaign,
            st.status,
            format_time(st.since),
            st.event_id
        );
    }
    println!("history:");
    for e in &s.events {
        println!(
            "  {:>6}  {}  {:<9} {:<20} source={}{}{}{}",
            e.id,
            format_time(e.at),
            e.action.as_str(),
            e.campaign,
            e.source,
            proof(" evidence", e.evidence.as_deref()),
            proof(" ip", e.ip.as_deref()),
            proof(" user_agent", e.user_agent.as_deref()),
        );
    }
    super::suppression::print_suppressions(&suppressions);
    Ok(())
}

/// ` name="value"` when the proof field is present.
fn proof(name: &str, value: Option<&str>) -> String {
    value.map(|v| format!("{name}={v:?}")).unwrap_or_default()
}
