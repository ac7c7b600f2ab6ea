//! The command line: the clap types and [`run`], which loads the
//! configuration and calls the subcommand's own file, each thin over the
//! store and the rights. `--config` is accepted before or after the
//! subcommand.

mod campaign;
mod check_config;
mod consent;
mod erase;
pub mod expiring;
mod export;
mod feedback;
mod hash_password;
pub mod import;
mod log;
mod log_hash;
pub mod migrate;
mod purge;
mod queue;
mod register;
mod reputation;
mod suppression;
mod webhooks;

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, Config, ConfigError};
use crate::server;
use crate::store::Store;
use crate::time::now_ms;

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
    Import(import::ImportArgs),
    /// Read the decision log: every recipient of every accepted message, the newest rows (printed oldest first)
    Log(log::LogArgs),
    /// Print how the relay's log lines name an address ([log] recipients = "hash"), to grep for it
    LogHash(log_hash::LogHashArgs),
    /// List queued, deferred and failed deliveries with their last upstream reply; or retry, release or drop one
    Queue(queue::QueueCommand),
    /// List consent events not yet accepted by the CRM's webhook, with the last error
    Webhooks(queue::QueueArgs),
    /// Print everything held about an address as JSON (access, portability)
    Export { email: String },
    /// Erase an address (right to be forgotten); a keyed hash stays as a suppression
    Erase { email: String },
    /// Take one bounce or complaint (a DSN or ARF report) from FILE or stdin; exit 0 stored, 65 not a report, 75 try again
    Feedback(feedback::FeedbackArgs),
    /// Read a password from stdin (first line) and print its argon2id hash for [[smtp.user]]
    HashPassword,
    /// Remove what [retention] no longer allows to keep, and print per kind what went
    Purge {
        /// Print what would be removed, and change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy every table of one store into another, empty one (e.g. SQLite to PostgreSQL), ids kept
    MigrateStore(migrate::MigrateArgs),
    /// Pause a campaign, resume it, or drop the copies it holds
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
    /// Per campaign per day: delivered, bounces, complaints and their rates, against [complaints]
    Reputation(reputation::ReputationArgs),
    /// List the suppressions in force, or remove one (with a reason)
    #[command(subcommand)]
    Suppression(suppression::SuppressionCommand),
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
    Grant(consent::ChangeArgs),
    /// Record a withdrawal of consent
    Withdraw(consent::ChangeArgs),
    /// Show the consent state and history of an address
    Show {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// List grants that expire within a window under the campaign's consent_max_age_days
    Expiring(expiring::ExpiringArgs),
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
        return hash_password::run();
    }
    if let Command::MigrateStore(a) = cli.command {
        // Names both stores itself; needs no configuration.
        return migrate::run(a).await;
    }
    let config = load_config(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => server::serve(config).await,
        Command::CheckConfig => check_config::run(&config),
        Command::Consent(c) => consent::run(&config, c).await,
        Command::Import(a) => import::run(&config, a).await,
        Command::Log(a) => log::run(&config, a).await,
        Command::LogHash(a) => log_hash::run(&config, a),
        Command::Queue(a) => queue::run(&config, a).await,
        Command::Webhooks(a) => webhooks::run(&config, a).await,
        Command::Export { email } => export::run(&config, &email).await,
        Command::Erase { email } => erase::run(&config, &email).await,
        Command::Feedback(a) => feedback::run(&config, a).await,
        Command::HashPassword => hash_password::run(),
        Command::MigrateStore(a) => migrate::run(a).await,
        Command::Purge { dry_run } => purge::run(&config, dry_run).await,
        Command::Register { json } => register::run(&config, json),
        Command::Campaign(c) => campaign::run(&config, c).await,
        Command::Reputation(a) => reputation::run(&config, a).await,
        Command::Suppression(c) => suppression::run(&config, c).await,
    }
}

pub(crate) async fn open(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.store, false).await.with_context(|| {
        format!(
            "{}: store.url: cannot open the store",
            config.path.display()
        )
    })
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

/// The person an address on the command line names (the API's parser).
pub(crate) fn identity(email: &str) -> anyhow::Result<crate::consent::identity::Identity> {
    crate::consent::identity::Identity::of(email)
        .map_err(|reason| anyhow::anyhow!("{email:?} is not an email address ({reason})"))
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
