//! Configuration: the TOML file parsed into raw structs, then validated once
//! into the typed [`Config`] the rest of the program uses. Every error names
//! the file, the key and the fix; all errors of a file are reported together.
//! After [`Config::load`] succeeds no other module re-checks configuration.
//!
//! Here: the [`Config`] type, its error, the entry points ([`Config::load`],
//! [`Config::parse`], [`locate`]) and the [`Check`] that collects every
//! error. Each TOML section has its own file with its raw struct, its check
//! (raw to typed), its defaults as named constants and its tests, as
//! `[smtp]` in [`smtp`]. What `serve` reads beyond the file (key and
//! certificate files) is [`load`]; the configuration in use while running,
//! and what a reload changes, is [`reload`].
//!
//! Knows nothing of sockets or SQL, and of no module that uses it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT as BASE64;
use serde::Deserialize;

mod campaign;
mod check;
mod controller;
mod dkim;
mod erasure;
mod feedback;
mod http;
mod label;
pub mod load;
mod locate;
mod log;
mod operator;
mod queue;
pub mod reload;
mod retention;
mod signing;
mod smtp;
mod store;
mod syntax;
#[cfg(test)]
mod testing;
mod texts;
mod upstream;
mod webhook;

pub use campaign::{Campaign, CampaignState, Policy};
pub use controller::{Controller, LOGO_MAX, Logo};
pub use dkim::DkimConfig;
pub use erasure::ErasureConfig;
pub use feedback::{
    BounceMandatory, BouncesConfig, ComplaintScope, ComplaintsConfig, RateMark,
    percent as rate_percent,
};
pub use http::{HttpConfig, MAX_HTTP_CONNECTIONS};
pub use label::{LABEL_MAX, Label};
pub use locate::{DEFAULT_LOCATIONS, locate};
pub use log::{LogConfig, LogRecipients};
pub use operator::{LEGACY_ADMIN, Operator, Role};
pub use queue::QueueConfig;
pub use retention::RetentionConfig;
pub use signing::{EXAMPLE_SIGNING_KEY, SigningConfig};
pub use smtp::{MissingCampaign, SmtpConfig, SmtpGuard, SmtpUser};
pub use store::{StoreConfig, StoreUrl};
pub use upstream::{UpstreamConfig, UpstreamTarget, UpstreamTls};
pub use webhook::WebhookConfig;

use check::{is_dns_name, shown};

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    pub smtp: SmtpConfig,
    pub upstream: UpstreamConfig,
    pub http: HttpConfig,
    pub signing: SigningConfig,
    pub store: StoreConfig,
    pub queue: QueueConfig,
    pub dkim: Option<DkimConfig>,
    pub webhook: Option<WebhookConfig>,
    pub retention: RetentionConfig,
    pub erasure: ErasureConfig,
    /// `[bounces]`: the return path and the bounce rules.
    pub bounces: BouncesConfig,
    /// `[complaints]`: feedback loops, the headers for them, the reputation guard.
    pub complaints: ComplaintsConfig,
    pub log: LogConfig,
    /// In file order; ids are unique.
    pub campaigns: Vec<Campaign>,
    /// Footer and page texts, FR and EN, with the file's overrides.
    pub texts: crate::texts::Texts,
    /// Non-fatal remarks (e.g. the example signing key is in use), logged at start.
    pub warnings: Vec<String>,
}

/// Bytes that must never be printed: Debug shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Every problem found in a configuration file, each naming file, key and fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "{path}: cannot read the file: {source} (pass --config FILE, or create consent-relay.toml)"
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no configuration file found (looked for {tried}); pass --config FILE")]
    NotFound { tried: String },
    /// One or more problems; each line is `file: key: what is wrong (fix)`.
    #[error("{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

impl Config {
    /// Reads and validates the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Validates TOML text; `path` is used in messages and to resolve files it names.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let raw =
            syntax::deserialize(&file, text).map_err(|line| ConfigError::Invalid(vec![line]))?;
        let mut check = Check {
            file,
            dir: path.parent().unwrap_or(Path::new("")),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let config = check.config(path, &raw);
        match config {
            Some(config) if check.errors.is_empty() => Ok(config),
            _ => {
                if check.errors.is_empty() {
                    // Every `None` above comes with an error; this keeps a bug from passing silently.
                    check.error("(file)", "invalid configuration (please report this)");
                }
                Err(ConfigError::Invalid(check.errors))
            }
        }
    }

    /// The campaign with this id, in any state.
    pub fn campaign(&self, id: &str) -> Option<&Campaign> {
        self.campaigns.iter().find(|c| c.id == id)
    }
}

// ---------------------------------------------------------------------------
// The raw shape of the file. Every key is optional here so that a missing key
// is reported by `Check` together with every other problem; numbers are i64 and
// enums are strings for the same reason. Each section's raw struct is in its file.

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    smtp: smtp::RawSmtp,
    upstream: upstream::RawUpstream,
    http: http::RawHttp,
    signing: signing::RawSigning,
    store: store::RawStore,
    queue: queue::RawQueue,
    dkim: Option<dkim::RawDkim>,
    webhook: Option<webhook::RawWebhook>,
    retention: retention::RawRetention,
    erasure: erasure::RawErasure,
    bounces: feedback::RawBounces,
    complaints: feedback::RawComplaints,
    log: log::RawLog,
    texts: texts::RawTexts,
    campaign: Vec<campaign::RawCampaign>,
}

// ---------------------------------------------------------------------------
// Validation: raw → typed. Each check records its error and returns `None`;
// a section is built only when all of its checks ran.

/// Smallest duration accepted where "more than zero" is required.
const NONZERO: Duration = Duration::from_nanos(1);

/// The errors and warnings of one file, collected while its sections check
/// themselves.
struct Check<'a> {
    /// The file as given, the prefix of every message.
    file: String,
    /// Relative file names in the configuration are relative to this.
    dir: &'a Path,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Check<'_> {
    fn error(&mut self, key: &str, what: impl std::fmt::Display) {
        self.errors.push(format!("{}: {key}: {what}", self.file));
    }

    /// Every section, each checked by its own file; all run, so that every
    /// error of the file is reported at once.
    fn config(&mut self, path: &Path, raw: &RawConfig) -> Option<Config> {
        let campaigns = campaign::check(self, &raw.campaign);
        let campaign_ids = campaign::ids(&raw.campaign);
        let smtp = smtp::check(self, &raw.smtp, &campaign_ids);
        let upstream = upstream::check(self, &raw.upstream);
        let http = http::check(self, &raw.http);
        let signing = signing::check(self, &raw.signing);
        let store = store::check(self, &raw.store, raw.webhook.is_some());
        let queue = queue::check(self, &raw.queue);
        let dkim = raw.dkim.as_ref().map(|d| dkim::check(self, d));
        let webhook = raw.webhook.as_ref().map(|w| webhook::check(self, w));
        let retention = retention::check(self, &raw.retention);
        let texts = texts::check(self, &raw.texts);
        let log = log::check(self, &raw.log);
        let bounces = feedback::check_bounces(self, &raw.bounces);
        let complaints = feedback::check_complaints(self, &raw.complaints);
        if let (Some(smtp), Some(Some(dkim))) = (&smtp, &dkim) {
            dkim::alignment(self, smtp, dkim);
        }
        Some(Config {
            path: path.to_owned(),
            smtp: smtp?,
            upstream: upstream?,
            http: http?,
            signing: signing?,
            store: store?,
            queue: queue?,
            dkim: dkim.map_or(Some(None), |d| d.map(Some))?,
            webhook: webhook.map_or(Some(None), |w| w.map(Some))?,
            retention: retention?,
            erasure: erasure::check(&raw.erasure),
            bounces: bounces?,
            complaints: complaints?,
            log: log?,
            campaigns: campaigns?,
            texts: texts?,
            warnings: std::mem::take(&mut self.warnings),
        })
    }
}

#[cfg(test)]
mod tests;
