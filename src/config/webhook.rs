//! `[webhook]`: where consent events are posted, the HMAC secret, and the
//! timing of attempts. Reads the secret file; knows nothing of HTTP.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{Check, NONZERO, Secret};

/// `webhook.timeout`.
pub const DEFAULT_TIMEOUT: &str = "10s";
/// `webhook.retry_min`.
pub const DEFAULT_RETRY_MIN: &str = "5s";
/// `webhook.retry_max`.
pub const DEFAULT_RETRY_MAX: &str = "1h";
/// `webhook.concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// Octets a `webhook.secret_file` must hold at least.
pub const MIN_SECRET_LEN: usize = 16;

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

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawWebhook {
    url: Option<String>,
    secret_file: Option<String>,
    timeout: Option<String>,
    retry_min: Option<String>,
    retry_max: Option<String>,
    concurrency: Option<i64>,
    ca_file: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawWebhook) -> Option<WebhookConfig> {
    let url = c
        .required(
            "webhook.url",
            &raw.url,
            r#"add e.g. url = "https://crm.example.com/hooks/consent""#,
        )
        .and_then(|u| c.web_url("webhook.url", u, false));
    let secret = c
        .required(
            "webhook.secret_file",
            &raw.secret_file,
            "add the path of a file holding the HMAC secret",
        )
        .and_then(|file| c.secret_file("webhook.secret_file", file, MIN_SECRET_LEN));
    let timeout = c.duration("webhook.timeout", &raw.timeout, DEFAULT_TIMEOUT, NONZERO);
    let retry_min = c.duration(
        "webhook.retry_min",
        &raw.retry_min,
        DEFAULT_RETRY_MIN,
        NONZERO,
    );
    let mut retry_max = c.duration(
        "webhook.retry_max",
        &raw.retry_max,
        DEFAULT_RETRY_MAX,
        NONZERO,
    );
    if let (Some(min), Some(max)) = (retry_min, retry_max)
        && max < min
    {
        retry_max = None;
        let what = format!(
            "{:?} is shorter than retry_min {:?} (make retry_max at least retry_min)",
            raw.retry_max.as_deref().unwrap_or(DEFAULT_RETRY_MAX),
            raw.retry_min.as_deref().unwrap_or(DEFAULT_RETRY_MIN)
        );
        c.error("webhook.retry_max", what);
    }
    let concurrency = c.number(
        "webhook.concurrency",
        raw.concurrency,
        DEFAULT_CONCURRENCY,
        1..=64,
    );
    let ca_file = raw
        .ca_file
        .as_deref()
        .map(|p| c.readable("webhook.ca_file", p));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;
    use crate::config::{Config, ConfigError};

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
}
