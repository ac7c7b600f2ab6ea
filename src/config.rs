//! Configuration: the TOML file parsed into raw structs, then validated once
//! into the typed [`Config`] the rest of the program uses. Every error names
//! the file, the key and the fix; all errors of a file are reported together.
//! After [`Config::load`] succeeds no other module re-checks configuration.
//!
//! Knows nothing of sockets or SQL.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Bound, Range, RangeBounds};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT as BASE64;
use ipnet::IpNet;
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use url::{Host, Url};

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
    /// In file order; ids are unique.
    pub campaigns: Vec<Campaign>,
    /// Footer and page texts, FR and EN, with the file's overrides.
    pub texts: crate::texts::Texts,
    /// Non-fatal remarks (e.g. the example signing key is in use), logged at start.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub listen: SocketAddr,
    /// Implicit-TLS listener (port 465 style); needs tls_cert/tls_key.
    pub listen_tls: Option<SocketAddr>,
    /// Name in the greeting, EHLO reply, Received header, DSN Reporting-MTA.
    pub hostname: String,
    pub allowed_networks: Vec<IpNet>,
    /// Octets, the whole message as received (SIZE= is checked against it too).
    pub max_message_size: usize,
    pub max_recipients: usize,
    /// Octets of the header block (default 100 KiB).
    pub max_header_size: usize,
    /// Concurrent SMTP sessions (default 1000).
    pub max_connections: usize,
    /// Concurrent SMTP sessions from one IP address (default 100).
    pub max_connections_per_ip: usize,
    /// Header carrying the campaign id (default "X-Campaign").
    pub campaign_header: String,
    pub missing_campaign: MissingCampaign,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub users: Vec<SmtpUser>,
    pub allow_plain_auth_on_loopback: bool,
    /// Waiting for the next command (RFC 5321 4.5.3.2: at least 5 minutes).
    pub command_timeout: Duration,
    /// Waiting for the next block of DATA (RFC 5321 4.5.3.2: 3 minutes).
    pub data_timeout: Duration,
    /// Soft errors before the reply is delayed; hard errors before 421.
    pub error_limit: usize,
    /// Limits on the transport and on password guessing (issue 6).
    pub guard: SmtpGuard,
}

/// `[smtp]` keys that bound slow clients and password guessing.
#[derive(Debug, Clone)]
pub struct SmtpGuard {
    /// A TLS handshake (STARTTLS or implicit TLS) must finish within this (default 10s).
    pub tls_handshake_timeout: Duration,
    /// Octets per second a DATA transfer must keep up, on average (default 1024).
    pub min_data_rate: u64,
    /// Failed AUTH attempts from one IP address within `auth_failure_window`
    /// before that address is refused (default 10).
    pub auth_max_failures_per_ip: usize,
    /// Failed AUTH attempts for one user within the window before the user
    /// is locked, even with the right password (default 5).
    pub auth_max_failures_per_user: usize,
    /// How far back failures count (default 15m).
    pub auth_failure_window: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissingCampaign {
    Reject,
    /// Treat a message without the header as this campaign (an existing id).
    Campaign(String),
}

#[derive(Debug, Clone)]
pub struct SmtpUser {
    pub name: String,
    /// PHC string, argon2id.
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub target: UpstreamTarget,
    /// Pooled connections (default 4, at least 1).
    pub connections: usize,
    pub username: Option<String>,
    /// Read from password_file at load time (trailing newline stripped). Never logged.
    pub password: Option<Secret>,
    pub tls: UpstreamTls,
    /// PEM CA bundle to trust instead of the system roots (private relays).
    pub ca_file: Option<PathBuf>,
    /// Connect/command timeout (default 60s).
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// smtp://host:port (default port 25)
    Smtp { host: String, port: u16 },
    /// smtps://host:port (default port 465), implicit TLS
    Smtps { host: String, port: u16 },
    /// outbox:DIR, each copy written as DIR/<queue id>-<delivery id>.eml
    Outbox(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTls {
    Required,
    Opportunistic,
    None,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Base of every link in mail, no trailing slash in use.
    pub public_url: Url,
    /// SHA-256 digests of the API bearer tokens.
    pub admin_token_sha256: Vec<[u8; 32]>,
    pub unsubscribe_mailto_domain: Option<String>,
    /// Clients that may read `/metrics` (default: loopback only).
    pub metrics_allowed_networks: Vec<IpNet>,
    /// Requests a minute per client address on `/u`, `/p`, `/o` and
    /// `/api` (default 600; 0 turns the limit off).
    pub rate_limit: u32,
    /// Requests a client address may make at once (default 60).
    pub rate_limit_burst: u32,
    /// Time to send a request's line and headers (default 20s).
    pub header_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// Key id new tokens and new address hashes are made with.
    pub current: String,
    /// Every key id → key bytes (at least 32). Old ids keep verifying.
    pub keys: BTreeMap<String, Secret>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// Path as written (relative paths are relative to the working directory).
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreUrl {
    /// `sqlite://PATH` (or `sqlite:PATH`) or `postgres://…`; the error says
    /// what is wrong and how to write it, for the caller to prefix with the
    /// key or flag that gave it (the value itself is shown only when it
    /// cannot hold a password).
    pub fn parse(text: &str) -> Result<StoreUrl, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return match text.parse::<sqlx::postgres::PgConnectOptions>() {
                Ok(_) => Ok(StoreUrl::Postgres(text.to_owned())),
                Err(e) => Err(format!(
                    "is not a valid postgres:// url ({e}; use postgres://user@host/db)"
                )),
            };
        }
        match text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            Some("") => Err("names no file (use e.g. sqlite://consent-relay.db)".into()),
            Some(":memory:") => Err("an in-memory database would lose the queue on restart (use a file, e.g. sqlite://consent-relay.db)".into()),
            Some(path) => Ok(StoreUrl::Sqlite(PathBuf::from(path))),
            None => Err(format!(
                "{} is not a store url (use sqlite://PATH or postgres://user@host/db)",
                shown(text)
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: StoreUrl,
    /// Connections in the pool (default 8).
    pub pool_size: u32,
    /// Queue every consent event in `webhook_outbox` (`[webhook]` is set).
    pub webhook_outbox: bool,
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Backoff after each failed attempt; the last repeats. Never empty.
    pub retry_after: Vec<Duration>,
    /// After this long since the message was received, a delivery fails for good.
    pub max_age: Duration,
    /// How long a claimed delivery stays leased to a worker (default 5m).
    pub lease: Duration,
    /// Deliveries claimed per batch (default 200).
    pub batch: usize,
}

#[derive(Debug, Clone)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    pub private_key: PathBuf,
    /// Signature lifetime (x= tag), if any.
    pub expire: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: Url,
    /// Read from secret_file at load time. Never logged.
    pub secret: Secret,
    /// Whole request, connect to answer (default 10s).
    pub timeout: Duration,
    /// Wait after the first failed attempt; doubles after each (default 5s).
    pub retry_min: Duration,
    /// The longest wait between attempts (default 1h).
    pub retry_max: Duration,
    /// Subjects whose events are posted at once (default 4).
    pub concurrency: usize,
    /// PEM CA bundle to trust instead of the system roots (a private CA).
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How long a message body is kept after its last delivery ended (default 30d).
    pub message_bodies: Duration,
    /// How long decision and delivery rows are kept (default 3y).
    pub decisions: Duration,
    /// How often `serve` purges (default 1h; also once at start).
    pub purge_interval: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct ErasureConfig {
    pub notify: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    OptIn,
    OptOut,
    Mandatory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignState {
    Active,
    Inactive,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: String,
    pub label: String,
    pub policy: Policy,
    pub state: CampaignState,
    pub consent_max_age_days: Option<u32>,
    pub list_id: Option<String>,
    pub double_opt_in: bool,
    /// Display order on the preference page; defaults to the position in the file.
    pub order: i64,
    /// Language of the footer in this campaign's mail; default `[texts] default_language`.
    pub language: Option<crate::texts::Language>,
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

/// The signing key shipped in `config/consent-relay.toml`. It is public, so a
/// configuration that uses it still loads, with a warning.
pub const EXAMPLE_SIGNING_KEY: &str = "ncX+PdNjuWJjBIXtEXv2ViuBJ/jmBzdCm8JTMoQz0ow=";

/// Where [`locate`] looks when no `--config` is given, in order.
pub const DEFAULT_LOCATIONS: [&str; 2] = [
    "consent-relay.toml",
    "/etc/consent-relay/consent-relay.toml",
];

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
        let raw = deserialize(&file, text).map_err(|line| ConfigError::Invalid(vec![line]))?;
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

/// `--config` if given, else `consent-relay.toml`, else `/etc/consent-relay/consent-relay.toml`.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let candidates = DEFAULT_LOCATIONS.map(PathBuf::from);
    locate_among(explicit, &candidates)
}

/// [`locate`] over a given list of candidates (tests pass their own).
fn locate_among(explicit: Option<&Path>, candidates: &[PathBuf]) -> Result<PathBuf, ConfigError> {
    if let Some(path) = explicit {
        // Taken even when missing: `Config::load` then says it cannot be read.
        return Ok(path.to_owned());
    }
    if let Some(found) = candidates.iter().find(|p| p.exists()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(ConfigError::NotFound {
        tried: tried.join(", "),
    })
}

// ---------------------------------------------------------------------------
// The raw shape of the file. Every key is optional here so that a missing key
// is reported by `Check` together with every other problem; numbers are i64 and
// enums are strings for the same reason.

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawConfig {
    smtp: RawSmtp,
    upstream: RawUpstream,
    http: RawHttp,
    signing: RawSigning,
    store: RawStore,
    queue: RawQueue,
    dkim: Option<RawDkim>,
    webhook: Option<RawWebhook>,
    retention: RawRetention,
    erasure: RawErasure,
    texts: RawTexts,
    campaign: Vec<RawCampaign>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawTexts {
    default_language: Option<String>,
    en: BTreeMap<String, String>,
    fr: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSmtp {
    listen: Option<String>,
    listen_tls: Option<String>,
    hostname: Option<String>,
    allowed_networks: Option<Vec<String>>,
    max_message_size: Option<i64>,
    max_recipients: Option<i64>,
    max_header_size: Option<i64>,
    max_connections: Option<i64>,
    max_connections_per_ip: Option<i64>,
    campaign_header: Option<String>,
    missing_campaign: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    user: Vec<RawUser>,
    allow_plain_auth_on_loopback: Option<bool>,
    command_timeout: Option<String>,
    data_timeout: Option<String>,
    error_limit: Option<i64>,
    tls_handshake_timeout: Option<String>,
    min_data_rate: Option<i64>,
    auth_max_failures_per_ip: Option<i64>,
    auth_max_failures_per_user: Option<i64>,
    auth_failure_window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawUser {
    name: Option<String>,
    password_hash: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawUpstream {
    url: Option<String>,
    connections: Option<i64>,
    username: Option<String>,
    password_file: Option<String>,
    tls: Option<String>,
    ca_file: Option<String>,
    timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
    public_url: Option<String>,
    admin_token_sha256: Vec<String>,
    unsubscribe_mailto_domain: Option<String>,
    metrics_allowed_networks: Option<Vec<String>>,
    rate_limit: Option<i64>,
    rate_limit_burst: Option<i64>,
    header_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSigning {
    current: Option<String>,
    keys: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawStore {
    url: Option<String>,
    pool_size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawQueue {
    retry_after: Option<Vec<String>>,
    max_age: Option<String>,
    lease: Option<String>,
    batch: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawDkim {
    domain: Option<String>,
    selector: Option<String>,
    private_key: Option<String>,
    expire: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawWebhook {
    url: Option<String>,
    secret_file: Option<String>,
    timeout: Option<String>,
    retry_min: Option<String>,
    retry_max: Option<String>,
    concurrency: Option<i64>,
    ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRetention {
    message_bodies: Option<String>,
    decisions: Option<String>,
    purge_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawErasure {
    notify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawCampaign {
    id: Option<String>,
    label: Option<String>,
    policy: Option<String>,
    state: Option<String>,
    consent_max_age_days: Option<i64>,
    list_id: Option<String>,
    double_opt_in: Option<bool>,
    order: Option<i64>,
    language: Option<String>,
}

/// TOML text → raw structs. A syntax or shape error (unknown key, wrong type)
/// stops here and becomes one message line, naming the key when it can.
fn deserialize(file: &str, text: &str) -> Result<RawConfig, String> {
    let tree = DeTable::parse(text).map_err(|e| at_line(file, text, &e))?;
    toml::from_str::<RawConfig>(text).map_err(|e| {
        let key = e.span().and_then(|span| key_at(tree.get_ref(), &span, ""));
        match key {
            Some(key) => format!("{file}: {key}: {}", describe(e.message())),
            None => at_line(file, text, &e),
        }
    })
}

/// `FILE: line L, column C: message` for an error that names no key.
fn at_line(file: &str, text: &str, e: &toml::de::Error) -> String {
    let message = describe(e.message());
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{file}: line {line}, column {column}: {message}")
        }
        None => format!("{file}: {message}"),
    }
}

/// Serde's wording made to read like the other messages.
fn describe(message: &str) -> String {
    let mut message = message
        .trim()
        .replace('\n', "; ")
        .replace("expected i64", "expected an integer");
    if let Some(at) = message.find("expected struct Raw") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let known = rest
        .split_once(", expected ")
        .map_or("", |(_, known)| known);
    let known = known
        .trim_start_matches("one of ")
        .replace(" or ", ", ")
        .replace('`', "");
    format!("unknown key (known keys: {known})")
}

/// The dotted path (`smtp.lisen`, `campaign[1].policy`) of the key or value
/// that `span` points at, if any.
fn key_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if key.span() == *span || value.span() == *span {
            Some(path)
        } else {
            value_key_at(value.get_ref(), span, &path)
        }
    })
}

fn value_key_at(value: &DeValue<'_>, span: &Range<usize>, path: &str) -> Option<String> {
    match value {
        DeValue::Table(table) => key_at(table, span, path),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let path = format!("{path}[{i}]");
            if item.span() == *span {
                Some(path)
            } else {
                value_key_at(item.get_ref(), span, &path)
            }
        }),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Validation: raw → typed. Each check records its error and returns `None`;
// a section is built only when all of its checks ran.

/// Smallest duration accepted where "more than zero" is required.
const NONZERO: Duration = Duration::from_nanos(1);
/// The longest retention accepted: more is no retention limit at all (GDPR
/// Art. 5(1)(e), storage limitation).
const RETENTION_MAX: Duration = Duration::from_secs(30 * 31_557_600);

const DEFAULT_ALLOWED_NETWORKS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

const DEFAULT_RETRY_AFTER: [&str; 7] = ["30s", "2m", "10m", "30m", "1h", "2h", "4h"];

struct Check<'a> {
    /// The file as given, the prefix of every message.
    file: String,
    /// Relative file names in the configuration are relative to this.
    dir: &'a Path,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Check<'_> {
    fn error(&mut self, key: &str, what: impl Display) {
        self.errors.push(format!("{}: {key}: {what}", self.file));
    }

    fn config(&mut self, path: &Path, raw: &RawConfig) -> Option<Config> {
        let campaigns = self.campaigns(&raw.campaign);
        let campaign_ids: Vec<&str> = raw
            .campaign
            .iter()
            .filter_map(|c| c.id.as_deref())
            .collect();
        let smtp = self.smtp(&raw.smtp, &campaign_ids);
        let upstream = self.upstream(&raw.upstream);
        let http = self.http(&raw.http);
        let signing = self.signing(&raw.signing);
        let store = self.store(&raw.store).map(|s| StoreConfig {
            webhook_outbox: raw.webhook.is_some(),
            ..s
        });
        let queue = self.queue(&raw.queue);
        let dkim = raw.dkim.as_ref().map(|d| self.dkim(d));
        let webhook = raw.webhook.as_ref().map(|w| self.webhook(w));
        let retention = self.retention(&raw.retention);
        let texts = self.texts(&raw.texts);
        if let (Some(smtp), Some(Some(dkim))) = (&smtp, &dkim) {
            self.dkim_alignment(smtp, dkim);
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
            erasure: ErasureConfig {
                notify: raw.erasure.notify.unwrap_or(false),
            },
            campaigns: campaigns?,
            texts: texts?,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn smtp(&mut self, raw: &RawSmtp, campaign_ids: &[&str]) -> Option<SmtpConfig> {
        let listen = self
            .required(
                "smtp.listen",
                &raw.listen,
                r#"add e.g. listen = "127.0.0.1:2525" under [smtp]"#,
            )
            .and_then(|s| self.socket("smtp.listen", s));
        let listen_tls = raw
            .listen_tls
            .as_deref()
            .map(|s| self.socket("smtp.listen_tls", s));
        let hostname = self.required(
            "smtp.hostname",
            &raw.hostname,
            r#"add the relay's public name, e.g. hostname = "relay.example.com""#,
        );
        if let Some(name) = hostname
            && (name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            self.error(
                "smtp.hostname",
                format_args!("{name:?} is not a host name (use e.g. relay.example.com)"),
            );
        }
        let allowed_networks =
            self.networks("smtp.allowed_networks", raw.allowed_networks.as_deref());
        let max_message_size = self.number(
            "smtp.max_message_size",
            raw.max_message_size,
            26_214_400,
            1024..,
        );
        let max_recipients = self.number("smtp.max_recipients", raw.max_recipients, 1000, 1..);
        let max_header_size =
            self.number("smtp.max_header_size", raw.max_header_size, 102_400, 1024..);
        let max_connections = self.number("smtp.max_connections", raw.max_connections, 1000, 1..);
        let max_connections_per_ip = self.number(
            "smtp.max_connections_per_ip",
            raw.max_connections_per_ip,
            100,
            1..,
        );
        let campaign_header = raw.campaign_header.as_deref().unwrap_or("X-Campaign");
        if campaign_header.is_empty()
            || !campaign_header
                .bytes()
                .all(|b| (33..=126).contains(&b) && b != b':')
        {
            self.error(
                "smtp.campaign_header",
                format_args!("{campaign_header:?} is not a header name (use printable ASCII without spaces or ':', e.g. X-Campaign)"),
            );
        }
        let missing_campaign = match raw.missing_campaign.as_deref() {
            None | Some("reject") => Some(MissingCampaign::Reject),
            Some(id) if campaign_ids.contains(&id) => {
                Some(MissingCampaign::Campaign(id.to_owned()))
            }
            Some(id) => {
                self.error(
                    "smtp.missing_campaign",
                    format_args!(
                        "{id:?} is not a campaign id (use \"reject\" or one of: {})",
                        campaign_ids.join(", ")
                    ),
                );
                None
            }
        };
        let tls_cert = raw
            .tls_cert
            .as_deref()
            .map(|p| self.readable("smtp.tls_cert", p));
        let tls_key = raw
            .tls_key
            .as_deref()
            .map(|p| self.readable("smtp.tls_key", p));
        if tls_cert.is_some() != tls_key.is_some() {
            self.error(
                "smtp.tls_cert",
                "tls_cert and tls_key go together (set both, or neither)",
            );
        } else if raw.listen_tls.is_some() && tls_cert.is_none() {
            self.error(
                "smtp.listen_tls",
                "needs a certificate (set tls_cert and tls_key, or remove listen_tls)",
            );
        }
        let users = self.users(&raw.user);
        let command_timeout =
            self.duration("smtp.command_timeout", &raw.command_timeout, "5m", NONZERO);
        let data_timeout = self.duration("smtp.data_timeout", &raw.data_timeout, "3m", NONZERO);
        let error_limit = self.number("smtp.error_limit", raw.error_limit, 10, 1..);
        let guard = self.smtp_guard(raw);
        Some(SmtpConfig {
            listen: listen?,
            listen_tls: listen_tls.flatten(),
            hostname: hostname?.to_owned(),
            allowed_networks: allowed_networks?,
            max_message_size: max_message_size?,
            max_recipients: max_recipients?,
            max_header_size: max_header_size?,
            max_connections: max_connections?,
            max_connections_per_ip: max_connections_per_ip?,
            campaign_header: campaign_header.to_owned(),
            missing_campaign: missing_campaign?,
            tls_cert: tls_cert.flatten(),
            tls_key: tls_key.flatten(),
            users: users?,
            allow_plain_auth_on_loopback: raw.allow_plain_auth_on_loopback.unwrap_or(false),
            command_timeout: command_timeout?,
            data_timeout: data_timeout?,
            error_limit: error_limit?,
            guard: guard?,
        })
    }

    fn smtp_guard(&mut self, raw: &RawSmtp) -> Option<SmtpGuard> {
        let tls_handshake_timeout = self.duration(
            "smtp.tls_handshake_timeout",
            &raw.tls_handshake_timeout,
            "10s",
            NONZERO,
        );
        let min_data_rate = self.number("smtp.min_data_rate", raw.min_data_rate, 1024, 1..);
        let per_ip = self.number(
            "smtp.auth_max_failures_per_ip",
            raw.auth_max_failures_per_ip,
            10,
            1..,
        );
        let per_user = self.number(
            "smtp.auth_max_failures_per_user",
            raw.auth_max_failures_per_user,
            5,
            1..,
        );
        let window = self.duration(
            "smtp.auth_failure_window",
            &raw.auth_failure_window,
            "15m",
            NONZERO,
        );
        Some(SmtpGuard {
            tls_handshake_timeout: tls_handshake_timeout?,
            min_data_rate: min_data_rate?,
            auth_max_failures_per_ip: per_ip?,
            auth_max_failures_per_user: per_user?,
            auth_failure_window: window?,
        })
    }

    /// CIDR list at `key`; a bare address is one host (/32 or /128).
    fn networks(&mut self, key: &str, raw: Option<&[String]>) -> Option<Vec<IpNet>> {
        let texts: Vec<&str> = match raw {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => DEFAULT_ALLOWED_NETWORKS.to_vec(),
        };
        let mut nets = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            match text.parse::<IpNet>().or_else(|_| text.parse::<IpAddr>().map(IpNet::from)) {
                Ok(net) => nets.push(net.trunc()),
                Err(_) => self.error(
                    &format!("{key}[{i}]"),
                    format_args!("{text:?} is not a network (use CIDR like 10.0.0.0/8 or fd00::/8, or a single address)"),
                ),
            }
        }
        (nets.len() == texts.len()).then_some(nets)
    }

    fn users(&mut self, raw: &[RawUser]) -> Option<Vec<SmtpUser>> {
        let mut seen = HashMap::new();
        let mut users = Vec::new();
        for (i, user) in raw.iter().enumerate() {
            let at = format!("smtp.user[{i}]");
            let name = self.required(
                &format!("{at}.name"),
                &user.name,
                r#"add e.g. name = "crm""#,
            );
            if let Some(name) = name {
                if name.is_empty() {
                    self.error(&format!("{at}.name"), "is empty (give the login name)");
                } else if let Some(first) = seen.insert(name, i) {
                    self.error(
                        &format!("{at}.name"),
                        format_args!(
                            "{name:?} is already smtp.user[{first}] (names must be unique)"
                        ),
                    );
                }
            }
            let hash = self.required(
                &format!("{at}.password_hash"),
                &user.password_hash,
                "add the argon2id PHC string of the password",
            );
            if let Some(hash) = hash
                && !hash.starts_with("$argon2id$")
            {
                // The value is a password hash: not repeated in the message.
                self.error(
                    &format!("{at}.password_hash"),
                    "is not an argon2id hash (use a PHC string starting with $argon2id$)",
                );
            }
            if let (Some(name), Some(hash)) = (name, hash) {
                users.push(SmtpUser {
                    name: name.to_owned(),
                    password_hash: hash.to_owned(),
                });
            }
        }
        (users.len() == raw.len()).then_some(users)
    }

    fn upstream(&mut self, raw: &RawUpstream) -> Option<UpstreamConfig> {
        let target = self
            .required(
                "upstream.url",
                &raw.url,
                r#"add e.g. url = "smtp://mail.example.com:25" under [upstream]"#,
            )
            .and_then(|url| self.upstream_target(url));
        let connections = self.number("upstream.connections", raw.connections, 4, 1..=256);
        let password = match (&raw.username, &raw.password_file) {
            (Some(_), Some(file)) => Some(self.secret_file("upstream.password_file", file, 1)),
            (None, None) => None,
            (Some(_), None) => {
                self.error(
                    "upstream.username",
                    "needs password_file (set both, or neither)",
                );
                Some(None)
            }
            (None, Some(_)) => {
                self.error(
                    "upstream.password_file",
                    "needs username (set both, or neither)",
                );
                Some(None)
            }
        };
        let tls = match (raw.tls.as_deref(), &target) {
            (None, Some(UpstreamTarget::Smtps { .. })) => Some(UpstreamTls::Required),
            (None, Some(UpstreamTarget::Smtp { .. })) => Some(UpstreamTls::Opportunistic),
            (None, _) => Some(UpstreamTls::None),
            (Some(mode), _) => {
                let tls = match mode {
                    "required" => Some(UpstreamTls::Required),
                    "opportunistic" => Some(UpstreamTls::Opportunistic),
                    "none" => Some(UpstreamTls::None),
                    _ => {
                        self.error(
                            "upstream.tls",
                            format_args!(
                                "{mode:?} is not a TLS mode (use required, opportunistic or none)"
                            ),
                        );
                        None
                    }
                };
                match (tls, &target) {
                    (Some(UpstreamTls::None), Some(UpstreamTarget::Smtps { .. })) => self.error(
                        "upstream.tls",
                        "\"none\" contradicts smtps:// (smtps is TLS from the first byte: remove tls, or use smtp://)",
                    ),
                    (Some(UpstreamTls::Required | UpstreamTls::Opportunistic), Some(UpstreamTarget::Outbox(_))) => {
                        self.error("upstream.tls", format_args!("{mode:?} means nothing for outbox: (remove tls)"))
                    }
                    _ => {}
                }
                tls
            }
        };
        let ca_file = raw
            .ca_file
            .as_deref()
            .map(|p| self.readable("upstream.ca_file", p));
        let timeout = self.duration("upstream.timeout", &raw.timeout, "60s", NONZERO);
        Some(UpstreamConfig {
            target: target?,
            connections: connections?,
            username: raw.username.clone(),
            password: password.flatten(),
            tls: tls?,
            ca_file: ca_file.flatten(),
            timeout: timeout?,
        })
    }

    fn upstream_target(&mut self, text: &str) -> Option<UpstreamTarget> {
        const FORMS: &str = "use smtp://host[:port], smtps://host[:port] or outbox:DIR";
        if let Some(dir) = text.strip_prefix("outbox:") {
            if dir.is_empty() {
                self.error(
                    "upstream.url",
                    "\"outbox:\" names no directory (use e.g. outbox:./outbox)",
                );
                return None;
            }
            return Some(UpstreamTarget::Outbox(PathBuf::from(dir)));
        }
        let (smtps, default_port) = if text.starts_with("smtp://") {
            (false, 25)
        } else if text.starts_with("smtps://") {
            (true, 465)
        } else {
            self.error(
                "upstream.url",
                format_args!("{} is not an upstream ({FORMS})", shown(text)),
            );
            return None;
        };
        let url = Url::parse(text).ok();
        let host = url.as_ref().and_then(|u| match u.host()? {
            Host::Domain(d) => Some(d.to_owned()),
            Host::Ipv4(a) => Some(a.to_string()),
            Host::Ipv6(a) => Some(a.to_string()),
        });
        match (url, host) {
            (Some(url), _) if !url.username().is_empty() || url.password().is_some() => {
                self.error(
                    "upstream.url",
                    "holds credentials (put them in username and password_file)",
                );
                None
            }
            (Some(url), Some(host))
                if !host.is_empty()
                    && url.port() != Some(0)
                    && matches!(url.path(), "" | "/")
                    && url.query().is_none()
                    && url.fragment().is_none() =>
            {
                let port = url.port().unwrap_or(default_port);
                Some(if smtps {
                    UpstreamTarget::Smtps { host, port }
                } else {
                    UpstreamTarget::Smtp { host, port }
                })
            }
            _ => {
                self.error(
                    "upstream.url",
                    format_args!("{} is not an upstream ({FORMS})", shown(text)),
                );
                None
            }
        }
    }

    fn http(&mut self, raw: &RawHttp) -> Option<HttpConfig> {
        let listen = self.socket(
            "http.listen",
            raw.listen.as_deref().unwrap_or("127.0.0.1:8080"),
        );
        let public_url = self
            .required("http.public_url", &raw.public_url,
                r#"add the address links in mail point at, e.g. public_url = "https://relay.example.com""#,
            )
            .and_then(|u| self.web_url("http.public_url", u, true));
        let mut admin_token_sha256 = Vec::new();
        for (i, hex) in raw.admin_token_sha256.iter().enumerate() {
            match sha256_hex(hex) {
                Some(digest) => admin_token_sha256.push(digest),
                None => self.error(
                    &format!("http.admin_token_sha256[{i}]"),
                    "is not a SHA-256 digest (use 64 hex digits, e.g. from: printf %s TOKEN | sha256sum)",
                ),
            }
        }
        if let Some(domain) = raw.unsubscribe_mailto_domain.as_deref()
            && !is_dns_name(domain, 2)
        {
            self.error(
                "http.unsubscribe_mailto_domain",
                format_args!("{domain:?} is not a domain name (use e.g. unsubscribe.example.com)"),
            );
        }
        let metrics_allowed_networks = self.networks(
            "http.metrics_allowed_networks",
            raw.metrics_allowed_networks.as_deref(),
        );
        let rate_limit = self.number("http.rate_limit", raw.rate_limit, 600, 0..=1_000_000);
        let rate_limit_burst = self.number(
            "http.rate_limit_burst",
            raw.rate_limit_burst,
            60,
            1..=1_000_000,
        );
        let header_timeout =
            self.duration("http.header_timeout", &raw.header_timeout, "20s", NONZERO);
        Some(HttpConfig {
            metrics_allowed_networks: metrics_allowed_networks?,
            rate_limit: rate_limit?,
            rate_limit_burst: rate_limit_burst?,
            header_timeout: header_timeout?,
            listen: listen?,
            public_url: public_url?,
            admin_token_sha256: (admin_token_sha256.len() == raw.admin_token_sha256.len())
                .then_some(admin_token_sha256)?,
            unsubscribe_mailto_domain: raw.unsubscribe_mailto_domain.clone(),
        })
    }

    fn signing(&mut self, raw: &RawSigning) -> Option<SigningConfig> {
        const GENERATE: &str = "generate one with `openssl rand -base64 32`";
        let example = BASE64.decode(EXAMPLE_SIGNING_KEY).ok();
        let mut keys = BTreeMap::new();
        if raw.keys.is_empty() {
            self.error(
                "signing.keys",
                format_args!("no key (add keys = {{ k1 = \"...\" }} under [signing]; {GENERATE})"),
            );
        }
        for (id, text) in &raw.keys {
            let key = format!("signing.keys.{id}");
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.error(
                    &key,
                    "is not a key id (use 1 to 32 letters, digits, '-' or '_')",
                );
                continue;
            }
            // The key itself never appears in a message.
            match BASE64.decode(text) {
                Err(_) => self.error(&key, format_args!("is not base64 ({GENERATE})")),
                Ok(bytes) if bytes.len() < 32 => self.error(
                    &key,
                    format_args!(
                        "decodes to {} bytes, at least 32 are needed ({GENERATE})",
                        bytes.len()
                    ),
                ),
                Ok(bytes) => {
                    if example.as_ref() == Some(&bytes) {
                        self.warnings.push(format!(
                            "{}: {key} is the example key published in the repository: {}",
                            self.file, "generate your own with `openssl rand -base64 32`"
                        ));
                    }
                    keys.insert(id.clone(), Secret(bytes));
                }
            }
        }
        let current = self.required(
            "signing.current",
            &raw.current,
            r#"add e.g. current = "k1" under [signing]"#,
        );
        if let Some(current) = current
            && !raw.keys.is_empty()
            && !raw.keys.contains_key(current)
        {
            let ids: Vec<&str> = raw.keys.keys().map(String::as_str).collect();
            self.error(
                "signing.current",
                format_args!(
                    "{current:?} is not in signing.keys (use one of: {})",
                    ids.join(", ")
                ),
            );
        }
        (keys.len() == raw.keys.len()).then_some(())?;
        Some(SigningConfig {
            current: current?.to_owned(),
            keys,
        })
    }

    fn store(&mut self, raw: &RawStore) -> Option<StoreConfig> {
        let text = raw.url.as_deref().unwrap_or("sqlite://consent-relay.db");
        let url = StoreUrl::parse(text)
            .map_err(|what| self.error("store.url", what))
            .ok();
        let pool_size = self.number("store.pool_size", raw.pool_size, 8, 1..=256);
        Some(StoreConfig {
            url: url?,
            pool_size: pool_size?,
            webhook_outbox: false,
        })
    }

    fn queue(&mut self, raw: &RawQueue) -> Option<QueueConfig> {
        let texts: Vec<&str> = match &raw.retry_after {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => DEFAULT_RETRY_AFTER.to_vec(),
        };
        if texts.is_empty() {
            self.error(
                "queue.retry_after",
                r#"is empty (use e.g. ["30s", "2m", "10m", "1h"])"#,
            );
        }
        let retry_after: Vec<Option<Duration>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| self.duration_of(&format!("queue.retry_after[{i}]"), t, "30s", NONZERO))
            .collect();
        let max_age = self.duration("queue.max_age", &raw.max_age, "5d", NONZERO);
        let lease = self.duration("queue.lease", &raw.lease, "5m", Duration::from_secs(10));
        let batch = self.number("queue.batch", raw.batch, 200, 1..=10_000);
        let retry_after: Vec<Duration> = retry_after.into_iter().collect::<Option<_>>()?;
        Some(QueueConfig {
            retry_after: (!retry_after.is_empty()).then_some(retry_after)?,
            max_age: max_age?,
            lease: lease?,
            batch: batch?,
        })
    }

    /// Warns when the sending domain the config names does not align with
    /// `dkim.domain` (DMARC relaxed): the relay's own mail (confirmations,
    /// bounces) is From `no-reply@` / `MAILER-DAEMON@` `smtp.hostname`.
    fn dkim_alignment(&mut self, smtp: &SmtpConfig, dkim: &DkimConfig) {
        use crate::delivery::dkim::{aligned, organizational_domain};
        if !aligned(&smtp.hostname, &dkim.domain) {
            self.warnings.push(format!(
                "{}: smtp.hostname: {} does not align with dkim.domain {} (DMARC relaxed alignment: \
                 organizational domains {} and {} differ); the relay's own mail (opt-in confirmations, \
                 bounces) is sent From that hostname and its signature cannot pass DMARC (use a hostname under {}, \
                 or a dkim.domain under {})",
                self.file,
                smtp.hostname,
                dkim.domain,
                organizational_domain(&smtp.hostname),
                organizational_domain(&dkim.domain),
                organizational_domain(&dkim.domain),
                organizational_domain(&smtp.hostname),
            ));
        }
    }

    fn dkim(&mut self, raw: &RawDkim) -> Option<DkimConfig> {
        let domain = self.required(
            "dkim.domain",
            &raw.domain,
            r#"add the signing domain, e.g. domain = "example.com""#,
        );
        if let Some(d) = domain
            && !is_dns_name(d, 2)
        {
            self.error(
                "dkim.domain",
                format_args!("{d:?} is not a domain name (use e.g. example.com)"),
            );
        }
        let selector = self.required(
            "dkim.selector",
            &raw.selector,
            r#"add e.g. selector = "relay""#,
        );
        if let Some(s) = selector
            && !is_dns_name(s, 1)
        {
            self.error(
                "dkim.selector",
                format_args!("{s:?} is not a selector (use letters, digits and '-', e.g. relay)"),
            );
        }
        let private_key = self
            .required(
                "dkim.private_key",
                &raw.private_key,
                "add the path of the PEM private key",
            )
            .and_then(|file| {
                let (path, bytes) = self.read_file("dkim.private_key", file)?;
                if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
                    self.error(
                        "dkim.private_key",
                        format_args!(
                            "{} is not PEM (use a key file starting with -----BEGIN)",
                            path.display()
                        ),
                    );
                    return None;
                }
                Some(path)
            });
        let expire = raw
            .expire
            .as_deref()
            .map(|e| self.duration_of("dkim.expire", e, "7d", NONZERO));
        Some(DkimConfig {
            domain: domain?.to_owned(),
            selector: selector?.to_owned(),
            private_key: private_key?,
            expire: expire.map_or(Some(None), |e| e.map(Some))?,
        })
    }

    fn webhook(&mut self, raw: &RawWebhook) -> Option<WebhookConfig> {
        let url = self
            .required(
                "webhook.url",
                &raw.url,
                r#"add e.g. url = "https://crm.example.com/hooks/consent""#,
            )
            .and_then(|u| self.web_url("webhook.url", u, false));
        let secret = self
            .required(
                "webhook.secret_file",
                &raw.secret_file,
                "add the path of a file holding the HMAC secret",
            )
            .and_then(|file| self.secret_file("webhook.secret_file", file, 16));
        let timeout = self.duration("webhook.timeout", &raw.timeout, "10s", NONZERO);
        let retry_min = self.duration("webhook.retry_min", &raw.retry_min, "5s", NONZERO);
        let mut retry_max = self.duration("webhook.retry_max", &raw.retry_max, "1h", NONZERO);
        if let (Some(min), Some(max)) = (retry_min, retry_max)
            && max < min
        {
            retry_max = None;
            let what = format!(
                "{:?} is shorter than retry_min {:?} (make retry_max at least retry_min)",
                raw.retry_max.as_deref().unwrap_or("1h"),
                raw.retry_min.as_deref().unwrap_or("5s")
            );
            self.error("webhook.retry_max", what);
        }
        let concurrency = self.number("webhook.concurrency", raw.concurrency, 4, 1..=64);
        let ca_file = raw
            .ca_file
            .as_deref()
            .map(|p| self.readable("webhook.ca_file", p));
        Some(WebhookConfig {
            url: url?,
            secret: secret?,
            timeout: timeout?,
            retry_min: retry_min?,
            retry_max: retry_max?,
            concurrency: concurrency?,
            ca_file: ca_file.map_or(Some(None), |c| c.map(Some))?,
        })
    }

    fn retention(&mut self, raw: &RawRetention) -> Option<RetentionConfig> {
        let message_bodies = self.duration(
            "retention.message_bodies",
            &raw.message_bodies,
            "30d",
            NONZERO,
        );
        // Less than a day of decision log is a typo ("3s" for "3y"): the log
        // is what answers "why did this person get that mail?".
        let decisions = self.duration(
            "retention.decisions",
            &raw.decisions,
            "3y",
            Duration::from_secs(86_400),
        );
        let purge_interval = self.duration(
            "retention.purge_interval",
            &raw.purge_interval,
            "1h",
            Duration::from_secs(1),
        );
        let message_bodies =
            self.at_most("retention.message_bodies", message_bodies, RETENTION_MAX);
        let decisions = self.at_most("retention.decisions", decisions, RETENTION_MAX);
        let purge_interval = self.at_most(
            "retention.purge_interval",
            purge_interval,
            Duration::from_secs(86_400),
        );
        Some(RetentionConfig {
            message_bodies: message_bodies?,
            decisions: decisions?,
            purge_interval: purge_interval?,
        })
    }

    /// `value` if it is at most `max`; longer is a mistake, named with its key.
    fn at_most(&mut self, key: &str, value: Option<Duration>, max: Duration) -> Option<Duration> {
        let d = value?;
        if d > max {
            let (d, max) = (
                humantime::format_duration(d),
                humantime::format_duration(max),
            );
            self.error(key, format_args!("{d} is too long (use at most {max})"));
            return None;
        }
        Some(d)
    }

    fn language(&mut self, key: &str, value: &str) -> Option<crate::texts::Language> {
        let lang = crate::texts::Language::parse(value);
        if lang.is_none() {
            self.error(
                key,
                format_args!("{value:?} is not a language (use \"en\" or \"fr\")"),
            );
        }
        lang
    }

    fn texts(&mut self, raw: &RawTexts) -> Option<crate::texts::Texts> {
        use crate::texts::{Language, Texts, keys};
        let default_language = match raw.default_language.as_deref() {
            None => Some(Language::En),
            Some(v) => self.language("texts.default_language", v),
        };
        let mut overrides = BTreeMap::new();
        let mut ok = true;
        for (lang, table) in [(Language::En, &raw.en), (Language::Fr, &raw.fr)] {
            for (key, value) in table {
                let at = format!("texts.{lang}.{key}");
                if !keys().any(|k| k == key) {
                    let known: Vec<&str> = keys().collect();
                    self.error(
                        &at,
                        format_args!("unknown text (known texts: {})", known.join(", ")),
                    );
                    ok = false;
                } else if key.starts_with("footer") && !value.contains("{url}") {
                    self.error(&at, "must contain {url}, where the preferences link goes");
                    ok = false;
                } else {
                    overrides.insert((lang, key.clone()), value.clone());
                }
            }
        }
        ok.then_some(())?;
        Some(Texts::new(default_language?, overrides))
    }

    fn campaigns(&mut self, raw: &[RawCampaign]) -> Option<Vec<Campaign>> {
        if raw.is_empty() {
            self.error(
                "campaign",
                "no campaign is defined (add a [[campaign]] with id, label and policy)",
            );
            return None;
        }
        let mut seen = HashMap::new();
        let campaigns: Vec<Option<Campaign>> = raw
            .iter()
            .enumerate()
            .map(|(i, c)| self.campaign(i, c, &mut seen))
            .collect();
        campaigns.into_iter().collect()
    }

    fn campaign<'r>(
        &mut self,
        i: usize,
        raw: &'r RawCampaign,
        seen: &mut HashMap<&'r str, usize>,
    ) -> Option<Campaign> {
        let at = |key: &str| format!("campaign[{i}].{key}");
        let id = self.required(&at("id"), &raw.id, r#"add e.g. id = "newsletter""#);
        if let Some(id) = id {
            if id.is_empty()
                || id.len() > 64
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                self.error(
                    &at("id"),
                    format_args!(
                        "{id:?} is not a campaign id (use 1 to 64 letters, digits, '.', '_' or '-')"
                    ),
                );
            } else if let Some(first) = seen.insert(id, i) {
                self.error(
                    &at("id"),
                    format_args!(
                        "{id:?} is already the id of campaign[{first}] (ids must be unique)"
                    ),
                );
            }
        }
        let label = self.required(
            &at("label"),
            &raw.label,
            r#"add the name recipients see, e.g. label = "Newsletter""#,
        );
        if label.is_some_and(|l| l.trim().is_empty()) {
            self.error(
                &at("label"),
                "is empty (give the name recipients see, e.g. \"Newsletter\")",
            );
        }
        let policy = match self.required(
            &at("policy"),
            &raw.policy,
            "add policy = \"opt-in\", \"opt-out\" or \"mandatory\"",
        ) {
            Some("opt-in") => Some(Policy::OptIn),
            Some("opt-out") => Some(Policy::OptOut),
            Some("mandatory") => Some(Policy::Mandatory),
            Some(other) => {
                self.error(
                    &at("policy"),
                    format_args!("{other:?} is not a policy (use opt-in, opt-out or mandatory)"),
                );
                None
            }
            None => None,
        };
        let state = match raw.state.as_deref() {
            None | Some("active") => Some(CampaignState::Active),
            Some("inactive") => Some(CampaignState::Inactive),
            Some("deleted") => Some(CampaignState::Deleted),
            Some(other) => {
                self.error(
                    &at("state"),
                    format_args!("{other:?} is not a state (use active, inactive or deleted)"),
                );
                None
            }
        };
        let opt_in = policy.is_none_or(|p| p == Policy::OptIn);
        let max_age = raw.consent_max_age_days.map(|days| {
            if !opt_in {
                self.error(
                    &at("consent_max_age_days"),
                    "applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
                );
            }
            self.number(
                &at("consent_max_age_days"),
                Some(days),
                0,
                1..=i64::from(u32::MAX),
            )
        });
        if raw.double_opt_in == Some(true) && !opt_in {
            self.error(
                &at("double_opt_in"),
                "applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
            );
        }
        if let Some(list_id) = raw.list_id.as_deref()
            && !is_dot_atom(list_id)
        {
            self.error(
                &at("list_id"),
                format_args!(
                    "{list_id:?} is not a list id (use a dot-atom such as newsletter.example.com)"
                ),
            );
        }
        Some(Campaign {
            id: id?.to_owned(),
            label: label?.to_owned(),
            policy: policy?,
            state: state?,
            consent_max_age_days: max_age.map_or(Some(None), |d| d.map(Some))?,
            list_id: raw.list_id.clone(),
            double_opt_in: raw.double_opt_in.unwrap_or(false),
            order: raw.order.unwrap_or(i as i64 + 1),
            language: match raw.language.as_deref() {
                None => None,
                Some(v) => Some(self.language(&at("language"), v)?),
            },
        })
    }

    // --- single values ------------------------------------------------------

    fn required<'v>(&mut self, key: &str, value: &'v Option<String>, fix: &str) -> Option<&'v str> {
        if value.is_none() {
            self.error(key, format_args!("missing ({fix})"));
        }
        value.as_deref()
    }

    /// `raw`, or `default` when absent, as a duration of at least `min`.
    fn duration(
        &mut self,
        key: &str,
        raw: &Option<String>,
        default: &str,
        min: Duration,
    ) -> Option<Duration> {
        self.duration_of(key, raw.as_deref().unwrap_or(default), default, min)
    }

    /// `text` parsed by humantime, at least `min`; `example` is offered in the fix.
    fn duration_of(
        &mut self,
        key: &str,
        text: &str,
        example: &str,
        min: Duration,
    ) -> Option<Duration> {
        match humantime::parse_duration(text) {
            Err(_) => self.error(
                key,
                format_args!("{text:?} is not a duration (use e.g. 30s, 10m, 4h, 5d)"),
            ),
            Ok(d) if d < min && min == NONZERO => self.error(
                key,
                format_args!("{text:?} must be more than zero (use e.g. {example})"),
            ),
            Ok(d) if d < min => {
                let min = humantime::format_duration(min);
                self.error(
                    key,
                    format_args!("{text:?} is too short (use at least {min})"),
                )
            }
            Ok(d) => return Some(d),
        }
        None
    }

    /// `raw`, or `default` when absent, within `range` (`1..` or `1..=256`).
    fn number<T: TryFrom<i64>>(
        &mut self,
        key: &str,
        raw: Option<i64>,
        default: T,
        range: impl RangeBounds<i64>,
    ) -> Option<T> {
        let Some(n) = raw else { return Some(default) };
        if range.contains(&n)
            && let Ok(value) = T::try_from(n)
        {
            return Some(value);
        }
        let start = match range.start_bound() {
            Bound::Included(start) => *start,
            _ => i64::MIN,
        };
        match range.end_bound() {
            Bound::Included(end) => self.error(
                key,
                format_args!("{n} is out of range (use {start} to {end})"),
            ),
            _ => self.error(key, format_args!("{n} is too small (use at least {start})")),
        }
        None
    }

    fn socket(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        let addr = text.parse().ok();
        if addr.is_none() {
            self.error(key, format_args!("{text:?} is not an address and port (use IP:PORT, e.g. 127.0.0.1:2525 or [::1]:2525)"));
        }
        addr
    }

    /// An http(s) URL; a `base` (for links) also has no query, fragment or credentials.
    fn web_url(&mut self, key: &str, text: &str, base: bool) -> Option<Url> {
        let url = Url::parse(text).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && (!base
                    || (u.query().is_none()
                        && u.fragment().is_none()
                        && u.username().is_empty()
                        && u.password().is_none()))
        });
        if url.is_none() {
            let fix = if base {
                "use http(s)://host[:port][/path], without ?query or #fragment"
            } else {
                "use an http:// or https:// URL"
            };
            self.error(
                key,
                format_args!("{} is not a usable URL ({fix})", shown(text)),
            );
        }
        url
    }

    /// A file name from the configuration: relative to the configuration's directory.
    fn resolve(&self, file: &str) -> PathBuf {
        let path = Path::new(file);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.dir.join(path)
        }
    }

    fn read_file(&mut self, key: &str, file: &str) -> Option<(PathBuf, Vec<u8>)> {
        if file.is_empty() {
            self.error(key, "is empty (give a file path)");
            return None;
        }
        let path = self.resolve(file);
        match std::fs::read(&path) {
            Ok(bytes) => Some((path, bytes)),
            Err(e) => {
                let what = format!(
                    "cannot read {}: {e} (check the path and permissions; a relative path is relative to the directory of {})",
                    path.display(),
                    self.file
                );
                self.error(key, what);
                None
            }
        }
    }

    /// Checks that the file can be read; returns its resolved path.
    fn readable(&mut self, key: &str, file: &str) -> Option<PathBuf> {
        self.read_file(key, file).map(|(path, _)| path)
    }

    /// The file's bytes without the trailing newline, at least `min` of them.
    fn secret_file(&mut self, key: &str, file: &str, min: usize) -> Option<Secret> {
        let (path, mut bytes) = self.read_file(key, file)?;
        while bytes.last().is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            bytes.pop();
        }
        if bytes.len() < min {
            let what = format!(
                "{} holds {} bytes, at least {min} are needed (write the secret in it, e.g. from openssl rand -base64 32)",
                path.display(),
                bytes.len()
            );
            self.error(key, what);
            return None;
        }
        Some(Secret(bytes))
    }
}

/// A value for a message, unless it may hold credentials (`user:pass@`).
fn shown(text: &str) -> String {
    if text.contains('@') {
        "the value".to_owned()
    } else {
        format!("{text:?}")
    }
}

/// 64 hex digits → 32 bytes.
fn sha256_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// Dot-separated labels of letters, digits and inner '-', at least `min_labels` of them.
fn is_dns_name(text: &str, min_labels: usize) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    text.len() <= 253 && text.split('.').count() >= min_labels && text.split('.').all(label_ok)
}

/// RFC 2919 list id: a dot-atom with at least one dot (`newsletter.example.com`).
fn is_dot_atom(text: &str) -> bool {
    const SPECIALS: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    text.len() <= 255
        && text.contains('.')
        && text.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "consent-relay.toml";

    /// A small valid configuration; tests edit it with [`edit`].
    fn minimal() -> String {
        let key = BASE64.encode([7u8; 32]);
        format!(
            r#"
[smtp]
listen = "127.0.0.1:2525"
hostname = "relay.test"

[upstream]
url = "smtp://mail.test"

[http]
public_url = "https://relay.test"

[signing]
current = "k1"
keys = {{ k1 = "{key}" }}

[[campaign]]
id = "news"
label = "News"
policy = "opt-in"
"#
        )
    }

    /// `minimal()` with each `from` replaced by `to` (each must be present).
    fn edit(pairs: &[(&str, &str)]) -> String {
        let mut text = minimal();
        for (from, to) in pairs {
            assert!(text.contains(from), "{from:?} not in the minimal config");
            text = text.replacen(from, to, 1);
        }
        text
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new(FILE), text)
    }

    /// The error lines of an invalid configuration.
    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Err(ConfigError::Invalid(lines)) => lines,
            Err(other) => panic!("expected Invalid, got {other}"),
            Ok(_) => panic!("expected errors, the configuration is valid"),
        }
    }

    /// Asserts exactly one error, equal to `expected`.
    fn single_error(text: &str, expected: &str) {
        assert_eq!(errors(text), vec![expected.to_owned()]);
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "consent-relay-config-{}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_example_parses() {
        let text = include_str!("../config/consent-relay.toml");
        let config = Config::parse(Path::new("config/consent-relay.toml"), text)
            .expect("the example is valid");
        assert_eq!(config.smtp.listen, "127.0.0.1:2525".parse().expect("addr"));
        assert_eq!(config.smtp.hostname, "relay.example.com");
        assert_eq!(config.smtp.missing_campaign, MissingCampaign::Reject);
        assert_eq!(
            config.upstream.target,
            UpstreamTarget::Outbox(PathBuf::from("./outbox"))
        );
        assert_eq!(config.upstream.tls, UpstreamTls::None);
        assert_eq!(
            config.store.url,
            StoreUrl::Sqlite(PathBuf::from("consent-relay.db"))
        );
        assert_eq!(config.http.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.queue.retry_after.len(), 7);
        assert_eq!(config.queue.max_age, Duration::from_secs(5 * 86_400));
        assert!(config.dkim.is_none() && config.webhook.is_none());
        assert_eq!(config.signing.keys["k1"].0.len(), 32);

        let ids: Vec<&str> = config.campaigns.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["newsletter", "prospecting", "invoices"]);
        let newsletter = config.campaign("newsletter").expect("newsletter");
        assert_eq!(newsletter.policy, Policy::OptIn);
        assert!(newsletter.double_opt_in);
        assert_eq!(newsletter.consent_max_age_days, Some(395));
        assert_eq!(
            newsletter.list_id.as_deref(),
            Some("newsletter.example.com")
        );
        let prospecting = config.campaign("prospecting").expect("prospecting");
        assert_eq!((prospecting.policy, prospecting.order), (Policy::OptOut, 2));
        let invoices = config.campaign("invoices").expect("invoices");
        assert_eq!(
            (invoices.policy, invoices.order, invoices.state),
            (Policy::Mandatory, 3, CampaignState::Active)
        );

        assert_eq!(
            config.warnings,
            vec![
                "config/consent-relay.toml: signing.keys.k1 is the example key published in the repository: \
                 generate your own with `openssl rand -base64 32`"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn defaults_are_applied() {
        let config = parse(&minimal()).expect("valid");
        let smtp = &config.smtp;
        assert_eq!(smtp.listen_tls, None);
        let nets: Vec<String> = smtp
            .allowed_networks
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["127.0.0.0/8", "::1/128"]);
        assert_eq!(smtp.max_message_size, 26_214_400);
        assert_eq!(smtp.max_recipients, 1000);
        assert_eq!(smtp.max_header_size, 102_400);
        assert_eq!(smtp.max_connections, 1000);
        assert_eq!(smtp.max_connections_per_ip, 100);
        assert_eq!(smtp.campaign_header, "X-Campaign");
        assert_eq!(smtp.missing_campaign, MissingCampaign::Reject);
        assert!(
            smtp.users.is_empty() && smtp.tls_cert.is_none() && !smtp.allow_plain_auth_on_loopback
        );
        assert_eq!(smtp.command_timeout, Duration::from_secs(300));
        assert_eq!(smtp.data_timeout, Duration::from_secs(180));
        assert_eq!(smtp.error_limit, 10);
        assert_eq!(smtp.guard.tls_handshake_timeout, Duration::from_secs(10));
        assert_eq!(smtp.guard.min_data_rate, 1024);
        assert_eq!(smtp.guard.auth_max_failures_per_ip, 10);
        assert_eq!(smtp.guard.auth_max_failures_per_user, 5);
        assert_eq!(smtp.guard.auth_failure_window, Duration::from_secs(900));

        let upstream = &config.upstream;
        assert_eq!(
            upstream.target,
            UpstreamTarget::Smtp {
                host: "mail.test".into(),
                port: 25
            }
        );
        assert_eq!(upstream.tls, UpstreamTls::Opportunistic);
        assert_eq!(upstream.connections, 4);
        assert!(
            upstream.username.is_none()
                && upstream.password.is_none()
                && upstream.ca_file.is_none()
        );
        assert_eq!(upstream.timeout, Duration::from_secs(60));

        assert_eq!(config.http.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert!(config.http.admin_token_sha256.is_empty());
        assert_eq!(config.http.unsubscribe_mailto_domain, None);
        assert_eq!(
            config.store.url,
            StoreUrl::Sqlite(PathBuf::from("consent-relay.db"))
        );
        assert_eq!(config.store.pool_size, 8);

        let minutes = |m: u64| Duration::from_secs(m * 60);
        assert_eq!(
            config.queue.retry_after,
            [
                Duration::from_secs(30),
                minutes(2),
                minutes(10),
                minutes(30),
                minutes(60),
                minutes(120),
                minutes(240)
            ]
        );
        assert_eq!(config.queue.max_age, Duration::from_secs(5 * 86_400));
        assert_eq!(config.queue.lease, minutes(5));
        assert_eq!(config.queue.batch, 200);
        assert_eq!(
            config.retention.message_bodies,
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            config.retention.decisions,
            Duration::from_secs(3 * 31_557_600)
        );
        assert!(!config.erasure.notify);

        let news = &config.campaigns[0];
        assert_eq!(
            (news.state, news.order, news.double_opt_in),
            (CampaignState::Active, 1, false)
        );
        assert_eq!(
            (news.consent_max_age_days, news.list_id.as_deref()),
            (None, None)
        );
        assert!(config.warnings.is_empty());
    }

    #[test]
    fn upstream_urls() {
        let target = |url: &str| {
            let config = parse(&edit(&[("smtp://mail.test", url)])).expect("valid");
            (config.upstream.target, config.upstream.tls)
        };
        assert_eq!(
            target("smtps://mail.test"),
            (
                UpstreamTarget::Smtps {
                    host: "mail.test".into(),
                    port: 465
                },
                UpstreamTls::Required
            )
        );
        assert_eq!(
            target("smtp://[::1]:2526"),
            (
                UpstreamTarget::Smtp {
                    host: "::1".into(),
                    port: 2526
                },
                UpstreamTls::Opportunistic
            )
        );
        assert_eq!(
            target("outbox:/var/spool/out"),
            (
                UpstreamTarget::Outbox("/var/spool/out".into()),
                UpstreamTls::None
            )
        );
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let lines = errors(&edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nlisen = \"x\"",
        )]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "consent-relay.toml: smtp.lisen: unknown key (known keys: listen, listen_tls, hostname, allowed_networks,"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains(" error_limit,") && lines[0].ends_with(')'),
            "{}",
            lines[0]
        );

        let text = format!(
            "{}\n[[campaign]]\nid = \"b\"\nlabel = \"B\"\npolcy = \"opt-out\"\n",
            minimal()
        );
        let lines = errors(&text);
        assert!(
            lines[0].starts_with(
                "consent-relay.toml: campaign[1].polcy: unknown key (known keys: id, label, policy,"
            ),
            "{lines:?}"
        );

        let lines = errors(&format!("{}\n[smtps]\nlisten = \"x\"\n", minimal()));
        assert!(
            lines[0].starts_with(
                "consent-relay.toml: smtps: unknown key (known keys: smtp, upstream, http,"
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let lines = errors(&edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nmax_recipients = \"many\"",
        )]));
        assert_eq!(
            lines,
            [
                "consent-relay.toml: smtp.max_recipients: invalid type: string \"many\", expected an integer"
            ]
        );
        let lines = errors(&format!("erasure = true\n{}", minimal()));
        assert_eq!(
            lines,
            ["consent-relay.toml: erasure: invalid type: boolean `true`, expected a table"]
        );
    }

    #[test]
    fn optional_sections_are_checked() {
        let dir = TempDir::new("dkim");
        std::fs::write(dir.0.join("dkim.pem"), "not a key\n").expect("write key");
        std::fs::write(dir.0.join("short.secret"), "tiny\n").expect("write secret");
        let text = format!(
            "{}\n[dkim]\ndomain = \"example\"\nselector = \"re lay\"\nprivate_key = \"dkim.pem\"\nexpire = \"0s\"\n\
             [webhook]\nurl = \"ftp://crm.test\"\nsecret_file = \"short.secret\"\n",
            minimal()
        );
        let path = dir.0.join("relay.toml");
        let Err(ConfigError::Invalid(lines)) = Config::parse(&path, &text) else {
            panic!("expected Invalid")
        };
        let (file, dir) = (path.display(), dir.0.display());
        assert_eq!(
            lines,
            [
                format!(
                    "{file}: dkim.domain: \"example\" is not a domain name (use e.g. example.com)"
                ),
                format!(
                    "{file}: dkim.selector: \"re lay\" is not a selector (use letters, digits and '-', e.g. relay)"
                ),
                format!(
                    "{file}: dkim.private_key: {dir}/dkim.pem is not PEM (use a key file starting with -----BEGIN)"
                ),
                format!("{file}: dkim.expire: \"0s\" must be more than zero (use e.g. 7d)"),
                format!(
                    "{file}: webhook.url: \"ftp://crm.test\" is not a usable URL (use an http:// or https:// URL)"
                ),
                format!(
                    "{file}: webhook.secret_file: {dir}/short.secret holds 4 bytes, at least 16 are needed \
                     (write the secret in it, e.g. from openssl rand -base64 32)"
                ),
            ]
        );
    }

    #[test]
    fn webhook_section_is_checked() {
        let dir = TempDir::new("webhook");
        std::fs::write(dir.0.join("webhook.secret"), "0123456789abcdef\n").expect("write secret");
        std::fs::write(dir.0.join("empty.secret"), "\n").expect("write secret");
        let path = dir.0.join("relay.toml");
        let with = |section: &str| format!("{}\n[webhook]\n{section}", minimal());

        let bad = with(
            "url = \"crm.test/hook\"\nsecret_file = \"empty.secret\"\ntimeout = \"soon\"\n\
             retry_min = \"0s\"\nconcurrency = 0\n",
        );
        let Err(ConfigError::Invalid(lines)) = Config::parse(&path, &bad) else {
            panic!("expected Invalid")
        };
        let (file, dir_shown) = (path.display(), dir.0.display());
        assert_eq!(
            lines,
            [
                format!(
                    "{file}: webhook.url: \"crm.test/hook\" is not a usable URL (use an http:// or https:// URL)"
                ),
                format!(
                    "{file}: webhook.secret_file: {dir_shown}/empty.secret holds 0 bytes, at least 16 are needed \
                     (write the secret in it, e.g. from openssl rand -base64 32)"
                ),
                format!(
                    "{file}: webhook.timeout: \"soon\" is not a duration (use e.g. 30s, 10m, 4h, 5d)"
                ),
                format!("{file}: webhook.retry_min: \"0s\" must be more than zero (use e.g. 5s)"),
                format!("{file}: webhook.concurrency: 0 is out of range (use 1 to 64)"),
            ]
        );

        let missing = with("retry_min = \"1m\"\nretry_max = \"30s\"\nca_file = \"missing.pem\"\n");
        let Err(ConfigError::Invalid(mut lines)) = Config::parse(&path, &missing) else {
            panic!("expected Invalid")
        };
        let ca = lines.pop().expect("ca_file line");
        assert!(
            ca.starts_with(&format!(
                "{file}: webhook.ca_file: cannot read {dir_shown}/missing.pem: "
            )),
            "{ca}"
        );
        assert_eq!(
            lines,
            [
                format!(
                    "{file}: webhook.url: missing (add e.g. url = \"https://crm.example.com/hooks/consent\")"
                ),
                format!(
                    "{file}: webhook.secret_file: missing (add the path of a file holding the HMAC secret)"
                ),
                format!(
                    "{file}: webhook.retry_max: \"30s\" is shorter than retry_min \"1m\" (make retry_max at least retry_min)"
                ),
            ]
        );

        let good = with(
            "url = \"http://127.0.0.1:9000/hook\"\nsecret_file = \"webhook.secret\"\nretry_max = \"10m\"\n",
        );
        let config = Config::parse(&path, &good).expect("valid");
        let webhook = config.webhook.expect("webhook");
        assert_eq!(webhook.url.as_str(), "http://127.0.0.1:9000/hook");
        assert_eq!(webhook.timeout, Duration::from_secs(10));
        assert_eq!(webhook.retry_min, Duration::from_secs(5));
        assert_eq!(webhook.retry_max, Duration::from_secs(600));
        assert_eq!(webhook.concurrency, 4);
        assert!(config.store.webhook_outbox);
        assert!(!parse(&minimal()).expect("valid").store.webhook_outbox);
    }

    #[test]
    fn smtp_users() {
        let users = "hostname = \"relay.test\"\n\
            [[smtp.user]]\nname = \"crm\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA\"\n\
            [[smtp.user]]\nname = \"crm\"\npassword_hash = \"plain\"\n";
        assert_eq!(
            errors(&edit(&[("hostname = \"relay.test\"\n", users)])),
            [
                "consent-relay.toml: smtp.user[1].name: \"crm\" is already smtp.user[0] (names must be unique)",
                "consent-relay.toml: smtp.user[1].password_hash: is not an argon2id hash (use a PHC string starting with $argon2id$)",
            ]
        );
        let one = users
            .split("[[smtp.user]]\nname = \"crm\"\npassword_hash = \"plain\"")
            .next()
            .expect("first");
        let config = parse(&edit(&[("hostname = \"relay.test\"\n", one)])).expect("valid");
        assert_eq!(config.smtp.users.len(), 1);
        assert_eq!(config.smtp.users[0].name, "crm");
    }

    #[test]
    fn tls_files_go_together() {
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nlisten_tls = \"0.0.0.0:465\"",
        )]);
        single_error(
            &text,
            "consent-relay.toml: smtp.listen_tls: needs a certificate (set tls_cert and tls_key, or remove listen_tls)",
        );
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\ntls_key = \"/nonexistent/key.pem\"",
        )]);
        let lines = errors(&text);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "consent-relay.toml: smtp.tls_key: cannot read /nonexistent/key.pem: "
            ),
            "{lines:?}"
        );
        assert_eq!(
            lines[1],
            "consent-relay.toml: smtp.tls_cert: tls_cert and tls_key go together (set both, or neither)"
        );
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let lines = errors(&edit(&[(
            "hostname = \"relay.test\"",
            "hostname = relay.test",
        )]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("consent-relay.toml: line 4, column 12: "),
            "{lines:?}"
        );
    }

    #[test]
    fn duplicate_campaign_id() {
        let text = format!(
            "{}\n[[campaign]]\nid = \"news\"\nlabel = \"Again\"\npolicy = \"opt-out\"\n",
            minimal()
        );
        single_error(
            &text,
            "consent-relay.toml: campaign[1].id: \"news\" is already the id of campaign[0] (ids must be unique)",
        );
    }

    #[test]
    fn bad_campaign_fields() {
        let text = edit(&[("policy = \"opt-in\"", "policy = \"optin\"")]);
        single_error(
            &text,
            "consent-relay.toml: campaign[0].policy: \"optin\" is not a policy (use opt-in, opt-out or mandatory)",
        );

        let text = edit(&[(
            "policy = \"opt-in\"",
            "policy = \"opt-out\"\nconsent_max_age_days = 30\ndouble_opt_in = true",
        )]);
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: campaign[0].consent_max_age_days: applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
                "consent-relay.toml: campaign[0].double_opt_in: applies only to opt-in campaigns (remove it, or use policy = \"opt-in\")",
            ]
        );

        let text = edit(&[(
            "id = \"news\"",
            "id = \"*\"\nstate = \"paused\"\nlist_id = \"news\"",
        )]);
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: campaign[0].id: \"*\" is not a campaign id (use 1 to 64 letters, digits, '.', '_' or '-')",
                "consent-relay.toml: campaign[0].state: \"paused\" is not a state (use active, inactive or deleted)",
                "consent-relay.toml: campaign[0].list_id: \"news\" is not a list id (use a dot-atom such as newsletter.example.com)",
            ]
        );

        let text = minimal();
        let text = &text[..text.find("[[campaign]]").expect("campaign")];
        single_error(
            text,
            "consent-relay.toml: campaign: no campaign is defined (add a [[campaign]] with id, label and policy)",
        );
    }

    #[test]
    fn bad_cidr() {
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nallowed_networks = [\"10.0.0.0/8\", \"10.1.0.0/33\", \"192.0.2.7\"]",
        )]);
        single_error(
            &text,
            "consent-relay.toml: smtp.allowed_networks[1]: \"10.1.0.0/33\" is not a network (use CIDR like 10.0.0.0/8 or fd00::/8, or a single address)",
        );
        // A bare address is one host.
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nallowed_networks = [\"192.0.2.7\", \"2001:db8::1\"]",
        )]);
        let nets: Vec<String> = parse(&text)
            .expect("valid")
            .smtp
            .allowed_networks
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["192.0.2.7/32", "2001:db8::1/128"]);
    }

    #[test]
    fn bad_duration() {
        let text = format!(
            "{}\n[queue]\nretry_after = [\"30s\", \"2m\", \"5 minutes please\"]\nlease = \"5s\"\n",
            minimal()
        );
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: queue.retry_after[2]: \"5 minutes please\" is not a duration (use e.g. 30s, 10m, 4h, 5d)",
                "consent-relay.toml: queue.lease: \"5s\" is too short (use at least 10s)",
            ]
        );
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\ncommand_timeout = \"0s\"",
        )]);
        single_error(
            &text,
            "consent-relay.toml: smtp.command_timeout: \"0s\" must be more than zero (use e.g. 5m)",
        );
        // Lower than RFC 5321's 5 minutes is allowed.
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\ncommand_timeout = \"30s\"",
        )]);
        assert_eq!(
            parse(&text).expect("valid").smtp.command_timeout,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn retention_bounds() {
        let config = parse(&minimal()).expect("valid");
        assert_eq!(config.retention.purge_interval, Duration::from_secs(3600));
        let text = format!(
            "{}\n[retention]\nmessage_bodies = \"0s\"\ndecisions = \"3s\"\npurge_interval = \"2d\"\n",
            minimal()
        );
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: retention.message_bodies: \"0s\" must be more than zero (use e.g. 30d)",
                "consent-relay.toml: retention.decisions: \"3s\" is too short (use at least 1day)",
                "consent-relay.toml: retention.purge_interval: 2days is too long (use at most 1day)",
            ]
        );
        let text = format!(
            "{}\n[retention]\nmessage_bodies = \"200y\"\ndecisions = \"31y\"\n",
            minimal()
        );
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: retention.message_bodies: 200years is too long (use at most 30years)",
                "consent-relay.toml: retention.decisions: 31years is too long (use at most 30years)",
            ]
        );
        let text = format!(
            "{}\n[retention]\nmessage_bodies = \"1s\"\ndecisions = \"10y\"\npurge_interval = \"1s\"\n",
            minimal()
        );
        let r = parse(&text).expect("valid").retention;
        assert_eq!(r.message_bodies, Duration::from_secs(1));
        assert_eq!(r.purge_interval, Duration::from_secs(1));
    }

    #[test]
    fn bad_upstream_url() {
        single_error(
            &edit(&[("smtp://mail.test", "http://mail.test")]),
            "consent-relay.toml: upstream.url: \"http://mail.test\" is not an upstream \
             (use smtp://host[:port], smtps://host[:port] or outbox:DIR)",
        );
        single_error(
            &edit(&[("smtp://mail.test", "smtp://user:secret@mail.test")]),
            "consent-relay.toml: upstream.url: holds credentials (put them in username and password_file)",
        );
        single_error(
            &edit(&[("smtp://mail.test", "outbox:")]),
            "consent-relay.toml: upstream.url: \"outbox:\" names no directory (use e.g. outbox:./outbox)",
        );
        single_error(
            &edit(&[(
                "url = \"smtp://mail.test\"",
                "url = \"smtps://mail.test\"\ntls = \"none\"",
            )]),
            "consent-relay.toml: upstream.tls: \"none\" contradicts smtps:// (smtps is TLS from the first byte: remove tls, or use smtp://)",
        );
        single_error(
            &edit(&[("https://relay.test", "https://relay.test/?a=b")]),
            "consent-relay.toml: http.public_url: \"https://relay.test/?a=b\" is not a usable URL \
             (use http(s)://host[:port][/path], without ?query or #fragment)",
        );
    }

    #[test]
    fn store_urls() {
        let store = |url: &str| {
            parse(&format!("{}\n[store]\nurl = \"{url}\"\n", minimal())).map(|c| c.store.url)
        };
        assert_eq!(
            store("sqlite:/var/lib/relay.db").expect("valid"),
            StoreUrl::Sqlite("/var/lib/relay.db".into())
        );
        assert_eq!(
            store("postgresql://relay@db/consent").expect("valid"),
            StoreUrl::Postgres("postgresql://relay@db/consent".into())
        );
        let Err(ConfigError::Invalid(lines)) = store("sqlite://:memory:") else {
            panic!("memory accepted")
        };
        assert_eq!(
            lines,
            [
                "consent-relay.toml: store.url: an in-memory database would lose the queue on restart (use a file, e.g. sqlite://consent-relay.db)"
            ]
        );
        let Err(ConfigError::Invalid(lines)) = store("mysql://root:hunter2@db/x") else {
            panic!("mysql accepted")
        };
        assert_eq!(
            lines,
            [
                "consent-relay.toml: store.url: the value is not a store url (use sqlite://PATH or postgres://user@host/db)"
            ]
        );
    }

    #[test]
    fn missing_signing_section() {
        let text = minimal();
        let start = text.find("[signing]").expect("signing");
        let end = text.find("[[campaign]]").expect("campaign");
        let text = format!("{}{}", &text[..start], &text[end..]);
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: signing.keys: no key (add keys = { k1 = \"...\" } under [signing]; \
                 generate one with `openssl rand -base64 32`)",
                "consent-relay.toml: signing.current: missing (add e.g. current = \"k1\" under [signing])",
            ]
        );
    }

    #[test]
    fn short_or_bad_signing_key() {
        let add_key = |id: &str, value: &str| {
            edit(&[(
                "keys = { k1 = ",
                &format!("keys = {{ {id} = \"{value}\", k1 = "),
            )])
        };
        single_error(
            &add_key("k2", &BASE64.encode([1u8; 16])),
            "consent-relay.toml: signing.keys.k2: decodes to 16 bytes, at least 32 are needed \
             (generate one with `openssl rand -base64 32`)",
        );
        // The error never repeats the key.
        single_error(
            &add_key("k2", "not base64!"),
            "consent-relay.toml: signing.keys.k2: is not base64 (generate one with `openssl rand -base64 32`)",
        );
        single_error(
            &add_key("\"k 2\"", &BASE64.encode([1u8; 32])),
            "consent-relay.toml: signing.keys.k 2: is not a key id (use 1 to 32 letters, digits, '-' or '_')",
        );
        // Padding is optional; old keys stay listed.
        let unpadded = BASE64.encode([2u8; 32]).trim_end_matches('=').to_owned();
        let text = add_key("k2", &unpadded).replacen("current = \"k1\"", "current = \"k2\"", 1);
        let config = parse(&text).expect("valid");
        assert_eq!(config.signing.current, "k2");
        assert_eq!(config.signing.keys["k2"], Secret(vec![2; 32]));
        assert_eq!(config.signing.keys["k1"], Secret(vec![7; 32]));
    }

    #[test]
    fn current_must_be_a_key() {
        single_error(
            &edit(&[("current = \"k1\"", "current = \"k9\"")]),
            "consent-relay.toml: signing.current: \"k9\" is not in signing.keys (use one of: k1)",
        );
    }

    #[test]
    fn missing_campaign_must_name_a_campaign() {
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nmissing_campaign = \"newsleter\"",
        )]);
        single_error(
            &text,
            "consent-relay.toml: smtp.missing_campaign: \"newsleter\" is not a campaign id (use \"reject\" or one of: news)",
        );
        let text = edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nmissing_campaign = \"news\"",
        )]);
        assert_eq!(
            parse(&text).expect("valid").smtp.missing_campaign,
            MissingCampaign::Campaign("news".into())
        );
    }

    #[test]
    fn admin_tokens_are_decoded() {
        let digest = "00ff".repeat(16);
        let text = edit(&[(
            "public_url = \"https://relay.test\"",
            &format!(
                "public_url = \"https://relay.test\"\nadmin_token_sha256 = [\"{digest}\", \"abc\"]"
            ),
        )]);
        single_error(
            &text,
            "consent-relay.toml: http.admin_token_sha256[1]: is not a SHA-256 digest (use 64 hex digits, e.g. from: printf %s TOKEN | sha256sum)",
        );
        let text = edit(&[(
            "public_url = \"https://relay.test\"",
            &format!("public_url = \"https://relay.test\"\nadmin_token_sha256 = [\"{digest}\"]"),
        )]);
        let expected: [u8; 32] = std::array::from_fn(|i| if i % 2 == 0 { 0 } else { 0xff });
        assert_eq!(
            parse(&text).expect("valid").http.admin_token_sha256,
            [expected]
        );
    }

    #[test]
    fn several_errors_are_reported_together() {
        let text = r#"
[smtp]
listen = "localhost:25"
hostname = "relay test"
max_recipients = 0

[upstream]
url = "smtp://mail.test"
connections = 1000

[http]
public_url = "ftp://relay.test"

[signing]
current = "k1"
keys = { k1 = "c2hvcnQ=" }

[[campaign]]
id = "news"
label = ""
policy = "optin"
"#;
        assert_eq!(
            errors(text),
            [
                "consent-relay.toml: campaign[0].label: is empty (give the name recipients see, e.g. \"Newsletter\")",
                "consent-relay.toml: campaign[0].policy: \"optin\" is not a policy (use opt-in, opt-out or mandatory)",
                "consent-relay.toml: smtp.listen: \"localhost:25\" is not an address and port (use IP:PORT, e.g. 127.0.0.1:2525 or [::1]:2525)",
                "consent-relay.toml: smtp.hostname: \"relay test\" is not a host name (use e.g. relay.example.com)",
                "consent-relay.toml: smtp.max_recipients: 0 is too small (use at least 1)",
                "consent-relay.toml: upstream.connections: 1000 is out of range (use 1 to 256)",
                "consent-relay.toml: http.public_url: \"ftp://relay.test\" is not a usable URL (use http(s)://host[:port][/path], without ?query or #fragment)",
                "consent-relay.toml: signing.keys.k1: decodes to 5 bytes, at least 32 are needed (generate one with `openssl rand -base64 32`)",
            ]
        );
    }

    #[test]
    fn password_file_is_read_relative_to_the_config() {
        let dir = TempDir::new("password");
        std::fs::create_dir_all(dir.0.join("secrets")).expect("mkdir");
        std::fs::write(dir.0.join("secrets/upstream.password"), "s3cret\r\n")
            .expect("write password");
        std::fs::write(dir.0.join("webhook.secret"), "0123456789abcdef\n").expect("write secret");
        let text = edit(&[(
            "url = \"smtp://mail.test\"",
            "url = \"smtp://mail.test\"\nusername = \"relay\"\npassword_file = \"secrets/upstream.password\"",
        )]);
        let text = format!(
            "{text}\n[webhook]\nurl = \"https://crm.test/hook\"\nsecret_file = \"webhook.secret\"\n"
        );
        let path = dir.0.join("consent-relay.toml");
        std::fs::write(&path, text).expect("write config");

        let config = Config::load(&path).expect("valid");
        assert_eq!(config.upstream.username.as_deref(), Some("relay"));
        assert_eq!(config.upstream.password, Some(Secret(b"s3cret".to_vec())));
        let webhook = config.webhook.expect("webhook");
        assert_eq!(webhook.secret, Secret(b"0123456789abcdef".to_vec()));
        assert_eq!(format!("{:?}", webhook.secret), "Secret(16 bytes)");
    }

    #[test]
    fn unreadable_password_file() {
        let dir = TempDir::new("unreadable");
        let path = dir.0.join("consent-relay.toml");
        let text = edit(&[(
            "url = \"smtp://mail.test\"",
            "url = \"smtp://mail.test\"\nusername = \"relay\"\npassword_file = \"missing.password\"",
        )]);
        std::fs::write(&path, text).expect("write config");
        let Err(ConfigError::Invalid(lines)) = Config::load(&path) else {
            panic!("expected Invalid")
        };
        let file = path.display();
        let missing = dir.0.join("missing.password");
        assert_eq!(lines.len(), 1, "{lines:?}");
        let expected_start = format!(
            "{file}: upstream.password_file: cannot read {}: ",
            missing.display()
        );
        assert!(lines[0].starts_with(&expected_start), "{lines:?}");
        assert!(
            lines[0].ends_with(&format!("(check the path and permissions; a relative path is relative to the directory of {file})")),
            "{lines:?}"
        );

        let text = edit(&[(
            "url = \"smtp://mail.test\"",
            "url = \"smtp://mail.test\"\nusername = \"relay\"",
        )]);
        single_error(
            &text,
            "consent-relay.toml: upstream.username: needs password_file (set both, or neither)",
        );
    }

    #[test]
    fn unreadable_config_file() {
        let dir = TempDir::new("nofile");
        let path = dir.0.join("absent.toml");
        let err = Config::load(&path).expect_err("missing file");
        assert!(matches!(err, ConfigError::Unreadable { .. }));
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read the file: ", path.display())),
            "{err}"
        );
    }

    #[test]
    fn locate_order() {
        let dir = TempDir::new("locate");
        let first = dir.0.join("consent-relay.toml");
        let second = dir.0.join("etc.toml");
        std::fs::write(&second, "").expect("write");
        let candidates = [first.clone(), second.clone()];

        let explicit = dir.0.join("not-there.toml");
        assert_eq!(
            locate_among(Some(&explicit), &candidates).expect("explicit"),
            explicit
        );
        assert_eq!(locate_among(None, &candidates).expect("second"), second);
        std::fs::write(&first, "").expect("write");
        assert_eq!(locate_among(None, &candidates).expect("first"), first);

        let none = [dir.0.join("a.toml"), dir.0.join("b.toml")];
        let err = locate_among(None, &none).expect_err("nothing there");
        assert_eq!(
            err.to_string(),
            format!(
                "no configuration file found (looked for {}, {}); pass --config FILE",
                none[0].display(),
                none[1].display()
            )
        );
        let explicit = Path::new("/x/y.toml");
        assert_eq!(locate(Some(explicit)).expect("explicit"), explicit);
    }

    #[test]
    fn dkim_domain_not_aligned_with_the_hostname_is_a_warning() {
        let dir = TempDir::new("dkim-align");
        std::fs::write(
            dir.0.join("dkim.pem"),
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
        )
        .expect("write key");
        let path = dir.0.join("relay.toml");
        let with = |hostname: &str, domain: &str| {
            let text = format!(
                "{}\n[dkim]\ndomain = \"{domain}\"\nselector = \"relay\"\nprivate_key = \"dkim.pem\"\n",
                minimal().replace(
                    "hostname = \"relay.test\"",
                    &format!("hostname = \"{hostname}\"")
                )
            );
            Config::parse(&path, &text).expect("valid").warnings
        };
        let warnings = with("relay.shop.example.co.uk", "example.com");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert!(
            w.starts_with(&format!("{}: smtp.hostname: relay.shop.example.co.uk does not align with dkim.domain example.com", path.display()))
                && w.contains("example.co.uk and example.com differ"),
            "{w}"
        );
        assert!(with("relay.example.com", "example.com").is_empty());
        assert!(with("relay.example.com", "mail.example.com").is_empty());
    }
}
