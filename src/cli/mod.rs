//! The command line: clap types and one function per subcommand, thin over
//! the store and policy. `--config` is accepted before or after the
//! subcommand.

pub mod expiring;
pub mod import;
pub mod migrate;

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, ConfigError};
use crate::consent::subject;
use crate::consent::{self, Action, Source};
use crate::server;
use crate::store::{DecisionFilter, NewConsentEvent, Store};
use crate::time::{format_time, now_ms};

/// Exit code for configuration errors (sysexits EX_CONFIG, as mail software uses).
pub const EXIT_CONFIG: i32 = 78;

#[derive(Parser, Debug)]
#[command(
    name = "consent-relay",
    version,
    about = "An SMTP relay that enforces consent"
)]
pub struct Cli {
    /// Configuration file (default: ./consent-relay.toml, then /etc/consent-relay/consent-relay.toml)
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the relay: SMTP listener and delivery
    Serve,
    /// Validate the configuration file and exit
    CheckConfig,
    /// Record or show consent
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Import consent records from a CSV file (checked whole first; a re-run adds nothing)
    Import(crate::cli::import::ImportArgs),
    /// Read the decision log: every recipient of every accepted message
    Log(LogArgs),
    /// List queued, deferred and failed deliveries with their last upstream reply
    Queue(QueueArgs),
    /// List consent events not yet accepted by the CRM's webhook, with the last error
    Webhooks(QueueArgs),
    /// Print everything held about an address as JSON (access, portability)
    Export { email: String },
    /// Erase an address (right to be forgotten); a keyed hash stays as a suppression
    Erase { email: String },
    /// Read a password from stdin (first line) and print its argon2id hash for [[smtp.user]]
    HashPassword,
    /// Remove what [retention] no longer allows to keep, and print per kind what went
    Purge {
        /// Print what would be removed, and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy every table of one store into another, empty one (e.g. SQLite to PostgreSQL), ids kept
    MigrateStore(crate::cli::migrate::MigrateArgs),
    /// Print the processing register (GDPR Art. 30) the configuration implies
    Register {
        /// JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConsentCommand {
    /// Record a grant of consent
    Grant(ChangeArgs),
    /// Record a withdrawal of consent
    Withdraw(ChangeArgs),
    /// Show the consent state and history of an address
    Show {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// List grants that expire within a window under the campaign's consent_max_age_days
    Expiring(crate::cli::expiring::ExpiringArgs),
}

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

#[derive(Args, Debug)]
pub struct QueueArgs {
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    #[arg(long)]
    pub json: bool,
}

/// An error that ends the program with a given exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: i32,
    pub message: String,
}

fn load_config(explicit: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let path = config::locate(explicit).map_err(config_exit)?;
    Config::load(&path).map_err(config_exit)
}

fn config_exit(e: ConfigError) -> anyhow::Error {
    Exit {
        code: EXIT_CONFIG,
        message: e.to_string(),
    }
    .into()
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::HashPassword = cli.command {
        // Needs no configuration.
        return hash_password();
    }
    if let Command::MigrateStore(a) = cli.command {
        // Names both stores itself; needs no configuration.
        return crate::cli::migrate::run(a).await;
    }
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => server::serve(config).await,
        Command::CheckConfig => {
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            // What `serve` reads beyond the file: the list its start and a
            // reload read too.
            crate::config::load::Loaded::load(&config).map_err(config_exit)?;
            println!(
                "{}: OK ({} campaigns)",
                config.path.display(),
                config.campaigns.len()
            );
            Ok(())
        }
        Command::Consent(c) => consent_command(&config, c).await,
        Command::Import(a) => crate::cli::import::run(&config, a).await,
        Command::Log(a) => log(&config, a).await,
        Command::Queue(a) => queue(&config, a).await,
        Command::Webhooks(a) => webhooks(&config, a).await,
        Command::Export { email } => export(&config, &email).await,
        Command::Erase { email } => erase(&config, &email).await,
        Command::HashPassword => hash_password(),
        Command::MigrateStore(a) => crate::cli::migrate::run(a).await,
        Command::Purge { dry_run } => purge(&config, dry_run).await,
        Command::Register { json } => {
            let register = crate::rights::register::register(&config);
            if json {
                println!("{}", serde_json::to_string_pretty(&register)?);
            } else {
                print!("{}", crate::rights::register::table(&register));
            }
            Ok(())
        }
    }
}

/// `purge [--dry-run]`: the purge `serve` runs every `[retention]
/// purge_interval`, run now.
async fn purge(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let r = &config.retention;
    let report = if dry_run {
        crate::rights::retention::dry_run(&store, r, now_ms()).await
    } else {
        crate::rights::retention::purge(&store, r, now_ms(), None).await
    };
    store.close().await;
    print!("{}", crate::rights::retention::summary(&report?, dry_run));
    Ok(())
}

/// `hash-password`: the first line of stdin (without its line end) as an
/// argon2id PHC string, for `[[smtp.user]] password_hash`.
fn hash_password() -> anyhow::Result<()> {
    use argon2::PasswordHasher as _;
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("no password on stdin (write it on the first line)");
    }
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?;
    println!("{hash}");
    Ok(())
}

/// `export EMAIL`: the same JSON document as `GET /api/v1/subjects/{email}`.
async fn export(config: &Config, email: &str) -> anyhow::Result<()> {
    let store = open(config).await?;
    let doc = crate::rights::export(&store, email).await;
    store.close().await;
    let Some(doc) = doc? else {
        bail!("nothing is held about {}", subject::normalise(email));
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// `erase EMAIL`: as `DELETE /api/v1/subjects/{email}`, source `admin`.
async fn erase(config: &Config, email: &str) -> anyhow::Result<()> {
    let address = subject::normalise(email);
    let store = open(config).await?;
    let report = crate::rights::erase(&store, config, &address, Source::Admin).await;
    store.close().await;
    let Some(r) = report? else {
        bail!("nothing is held about {address}; nothing erased");
    };
    println!(
        "erased {address} (subject {}): {} consent events kept without proof, {} decisions and {} deliveries now name erased:{}, {} queued copies cancelled, {} message bodies removed",
        r.subject_id,
        r.events_kept,
        r.decisions,
        r.deliveries,
        r.address_hash,
        r.cancelled,
        r.bodies_removed
    );
    Ok(())
}

pub(crate) async fn open(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.store, false).await.with_context(|| {
        format!(
            "{}: store.url: cannot open the store",
            config.path.display()
        )
    })
}

async fn consent_command(config: &Config, c: ConsentCommand) -> anyhow::Result<()> {
    let (action, a) = match c {
        ConsentCommand::Grant(a) => (Action::Grant, a),
        ConsentCommand::Withdraw(a) => (Action::Withdraw, a),
        ConsentCommand::Show { email, json } => return show(config, &email, json).await,
        ConsentCommand::Expiring(a) => return crate::cli::expiring::run(config, a).await,
    };
    let address = subject::normalise(&a.email);
    if !address.contains('@') {
        bail!("{:?} is not an email address", a.email);
    }
    if a.campaign != consent::ALL_CAMPAIGNS && config.campaign(&a.campaign).is_none() {
        let ids: Vec<&str> = config.campaigns.iter().map(|c| c.id.as_str()).collect();
        bail!(
            "unknown campaign {:?} (campaigns in {}: {}, or '*' for all)",
            a.campaign,
            config.path.display(),
            ids.join(", ")
        );
    }
    let source: Source = a
        .source
        .parse()
        .map_err(|e| anyhow::anyhow!("--source: {e}"))?;
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
        })
        .await?;
    store.close().await;
    println!(
        "recorded {} of {} for {} (event {}, source {})",
        action, a.campaign, address, event.id, source
    );
    Ok(())
}

async fn show(config: &Config, email: &str, json: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let address = subject::normalise(email);
    let found = store.subject_consent(&address).await?;
    store.close().await;
    let Some(s) = found else {
        bail!("no consent records for {address}");
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
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
    Ok(())
}

/// ` name="value"` when the proof field is present.
fn proof(name: &str, value: Option<&str>) -> String {
    value.map(|v| format!("{name}={v:?}")).unwrap_or_default()
}

async fn log(config: &Config, a: LogArgs) -> anyhow::Result<()> {
    let since = a
        .since
        .as_deref()
        .map(parse_time)
        .transpose()
        .context("--since")?;
    let store = open(config).await?;
    let rows = store
        .decisions(&DecisionFilter {
            recipient: a.recipient.as_deref().map(subject::normalise),
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

async fn queue(config: &Config, a: QueueArgs) -> anyhow::Result<()> {
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

/// `webhooks`: the webhook outbox, oldest first.
async fn webhooks(config: &Config, a: QueueArgs) -> anyhow::Result<()> {
    let store = open(config).await?;
    let rows = store.webhook_outbox(a.limit.max(1)).await?;
    store.close().await;
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

/// RFC 3339 (`2026-11-01T08:00:00Z`, `2026-11-01T09:00:00+01:00`), a date
/// (`2026-11-01`, midnight UTC), or an age before now (`2h`, `7d`).
pub fn parse_time(s: &str) -> anyhow::Result<i64> {
    crate::time::parse_time_or_age(s, now_ms()).ok_or_else(|| {
        anyhow::anyhow!(
            "{:?} is not a time (use 2026-11-01, 2026-11-01T08:00:00Z, or an age like 2h or 7d)",
            s.trim()
        )
    })
}

/// Whether logs should be JSON (stdout is not a terminal).
pub fn json_logs() -> bool {
    !std::io::stdout().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1000);
        let ago = parse_time("1h").unwrap();
        assert!((now_ms() - ago - 3_600_000).abs() < 5_000);
        assert!(parse_time("yesterday").is_err());
        // The same times as the API takes, offsets included.
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00").unwrap(), 1000);
    }

    #[test]
    fn config_goes_before_or_after_the_subcommand() {
        let a = Cli::try_parse_from(["consent-relay", "--config", "x.toml", "queue"]).unwrap();
        let b = Cli::try_parse_from(["consent-relay", "queue", "--config", "x.toml"]).unwrap();
        assert_eq!(a.config, b.config);
        assert_eq!(a.config, Some(PathBuf::from("x.toml")));
    }
}
