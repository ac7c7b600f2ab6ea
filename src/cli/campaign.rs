//! `consent-relay campaign pause|resume|drop-held ID`: the operator's hand
//! on the reputation guard. A paused campaign's messages are still
//! accepted and decided; its copies are held (on every node) until
//! `resume` puts them back in the queue, due now, or `drop-held` ends them
//! as `dropped` (the campaign stays paused). Who did it is `$USER`, or
//! `admin` when unset ([`operator`]): the audit row's actor, via cli.

use anyhow::bail;
use clap::{Args, Subcommand};

use super::open;
use crate::config::Config;
use crate::store::{Actor, Via};
use crate::time::format_time;

#[derive(Subcommand, Debug)]
pub enum CampaignCommand {
    /// Pause a campaign: its copies are held until `campaign resume`
    Pause(PauseArgs),
    /// Lift a campaign's pause: its held copies go out, due now
    Resume { id: String },
    /// End a paused campaign's held copies as dropped (never sent); it stays paused
    DropHeld { id: String },
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    pub id: String,
    /// Why (kept with the pause, shown by `reputation`)
    #[arg(long, default_value = "paused by an operator")]
    pub reason: String,
}

/// Who an operator's change from the command line is recorded under
/// (the audit row's actor, `removed_by`, `paused_by`): `$USER`, or
/// `admin` when unset, via cli.
pub(super) fn operator() -> Actor {
    let name = std::env::var("USER")
        .ok()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "admin".to_owned());
    Actor::new(name, Via::Cli)
}

/// Refuses an id that is not a configured campaign (nor, for `paused_ok`,
/// one paused now, whose campaign may have left the configuration since).
pub(super) fn known_campaign(config: &Config, id: &str, paused: &[String]) -> anyhow::Result<()> {
    if config.campaign(id).is_some() || paused.iter().any(|p| p == id) {
        return Ok(());
    }
    let ids: Vec<&str> = config.campaigns.iter().map(|c| c.id.as_str()).collect();
    bail!(
        "unknown campaign {id:?} (campaigns in {}: {})",
        config.path.display(),
        ids.join(", ")
    )
}

pub(super) async fn run(config: &Config, c: CampaignCommand) -> anyhow::Result<()> {
    let store = open(config).await?;
    let result = run_on(&store, config, c).await;
    store.close().await;
    result
}

async fn run_on(
    store: &crate::store::Store,
    config: &Config,
    c: CampaignCommand,
) -> anyhow::Result<()> {
    let by = operator();
    match c {
        CampaignCommand::Pause(a) => {
            known_campaign(config, &a.id, &[])?;
            if a.reason.trim().is_empty() {
                bail!("--reason: say why the campaign is paused");
            }
            let p = store.pause_campaign(&a.id, &by, a.reason.trim()).await?;
            if !p.paused {
                println!("campaign {} was paused already; nothing changed", a.id);
                return Ok(());
            }
            tracing::info!(campaign = %a.id, by = %by.name, held = p.held, "campaign paused");
            println!(
                "paused campaign {} ({} copies held); `consent-relay campaign resume {}` sends them",
                a.id, p.held, a.id
            );
        }
        CampaignCommand::Resume { id } => {
            known_campaign(config, &id, &paused(store).await?)?;
            let r = store.resume_campaign(&id, &by).await?;
            let Some(pause) = r.pause else {
                if r.copies > 0 {
                    println!(
                        "campaign {id} was not paused; {} held copies queued",
                        r.copies
                    );
                } else {
                    println!("campaign {id} is not paused; nothing changed");
                }
                return Ok(());
            };
            tracing::info!(campaign = %id, by = %by.name, at = %format_time(crate::time::now_ms()), paused_by = %pause.paused_by, queued = r.copies, "campaign resumed");
            println!(
                "resumed campaign {id} (paused {} by {}: {}); {} held copies queued",
                format_time(pause.paused_at),
                pause.paused_by,
                pause.reason,
                r.copies
            );
        }
        CampaignCommand::DropHeld { id } => {
            known_campaign(config, &id, &paused(store).await?)?;
            let r = store.drop_held(&id, &by).await?;
            tracing::info!(campaign = %id, by = %by.name, dropped = r.copies, "held copies dropped");
            println!("dropped {} held copies of campaign {id}", r.copies);
            if paused(store).await?.contains(&id) {
                println!(
                    "campaign {id} stays paused; `consent-relay campaign resume {id}` lifts the pause"
                );
            }
        }
    }
    Ok(())
}

async fn paused(store: &crate::store::Store) -> anyhow::Result<Vec<String>> {
    Ok(store
        .campaign_pauses()
        .await?
        .into_iter()
        .map(|p| p.campaign)
        .collect())
}
