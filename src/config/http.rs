//! `[http]`: the listener of the pages and the API, the public URL links
//! in mail point at, the operators who may use the API and the console
//! (`[[http.operator]]`, in [`super::operator`]) and the request limits;
//! who is asking, as the pages say it, is [`super::controller`]'s.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use url::Url;

use super::controller::{Controller, RawController};
use super::operator::{self, Operator, RawOperator};
use super::{Check, NONZERO, is_dns_name};

/// `http.listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `http.rate_limit`, requests a minute per client address.
pub const DEFAULT_RATE_LIMIT: u32 = 600;
/// `http.rate_limit_burst`.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 60;
/// `http.header_timeout`.
pub const DEFAULT_HEADER_TIMEOUT: &str = "20s";
/// `http.max_connections_per_client`.
pub const DEFAULT_MAX_HTTP_CONNECTIONS_PER_CLIENT: usize = 64;
/// Connections the HTTP listener serves at once, from all clients.
pub const MAX_HTTP_CONNECTIONS: usize = 1024;

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// Base of every link in mail, no trailing slash in use.
    pub public_url: Url,
    /// Who may use the API and the console: the legacy
    /// `admin_token_sha256` digests (named `admin`, role admin), then the
    /// `[[http.operator]]` entries. Names and digests are unique.
    pub operators: Vec<Operator>,
    pub unsubscribe_mailto_domain: Option<String>,
    /// Clients that may read `/metrics` (default: loopback only).
    pub metrics_allowed_networks: Vec<IpNet>,
    /// Requests a minute per client address on `/u`, `/p`, `/o` and
    /// `/api` (default 600; 0 turns the limit off).
    pub rate_limit: u32,
    /// Requests a client address may make at once (default 60).
    pub rate_limit_burst: u32,
    /// Time to send a request's line and headers, and the longest a
    /// connection may stay open without sending one (default 20s).
    pub header_timeout: Duration,
    /// Connections one client address (IPv6: its /64) may hold open at
    /// once (default 64).
    pub max_connections_per_client: usize,
    /// Who is asking, as every recipient page says it (`organisation`,
    /// `privacy_url`, `contact`, `logo_file`).
    pub controller: Controller,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawHttp {
    listen: Option<String>,
    public_url: Option<String>,
    admin_token_sha256: Vec<String>,
    operator: Vec<RawOperator>,
    unsubscribe_mailto_domain: Option<String>,
    metrics_allowed_networks: Option<Vec<String>>,
    rate_limit: Option<i64>,
    rate_limit_burst: Option<i64>,
    header_timeout: Option<String>,
    max_connections_per_client: Option<i64>,
    organisation: Option<String>,
    privacy_url: Option<String>,
    contact: Option<String>,
    logo_file: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawHttp) -> Option<HttpConfig> {
    let listen = c.socket(
        "http.listen",
        raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN),
    );
    let public_url = c
        .required("http.public_url", &raw.public_url,
            r#"add the address links in mail point at, e.g. public_url = "https://relay.example.com""#,
        )
        .and_then(|u| c.web_url("http.public_url", u, true));
    if let Some(url) = &public_url
        && url.scheme() != "https"
    {
        c.warnings.push(format!(
            "{}: http.public_url: {url} is not https: Gmail and other mail providers only offer \
             RFC 8058 one-click unsubscribe over https (put a reverse proxy with HTTPS in front \
             and set public_url to its https:// address)",
            c.file
        ));
    }
    let operators = operator::check(c, &raw.admin_token_sha256, &raw.operator);
    if let Some(domain) = raw.unsubscribe_mailto_domain.as_deref()
        && !is_dns_name(domain, 2)
    {
        c.error(
            "http.unsubscribe_mailto_domain",
            format_args!("{domain:?} is not a domain name (use e.g. unsubscribe.example.com)"),
        );
    }
    let metrics_allowed_networks = c.networks(
        "http.metrics_allowed_networks",
        raw.metrics_allowed_networks.as_deref(),
    );
    let rate_limit = c.number(
        "http.rate_limit",
        raw.rate_limit,
        DEFAULT_RATE_LIMIT,
        0..=1_000_000,
    );
    let rate_limit_burst = c.number(
        "http.rate_limit_burst",
        raw.rate_limit_burst,
        DEFAULT_RATE_LIMIT_BURST,
        1..=1_000_000,
    );
    let header_timeout = c.duration(
        "http.header_timeout",
        &raw.header_timeout,
        DEFAULT_HEADER_TIMEOUT,
        NONZERO,
    );
    let max_connections_per_client = c.number(
        "http.max_connections_per_client",
        raw.max_connections_per_client,
        DEFAULT_MAX_HTTP_CONNECTIONS_PER_CLIENT,
        1..=MAX_HTTP_CONNECTIONS as i64,
    );
    let controller = super::controller::check(
        c,
        RawController {
            organisation: &raw.organisation,
            privacy_url: &raw.privacy_url,
            contact: &raw.contact,
            logo_file: &raw.logo_file,
        },
    );
    Some(HttpConfig {
        controller: controller?,
        max_connections_per_client: max_connections_per_client?,
        metrics_allowed_networks: metrics_allowed_networks?,
        rate_limit: rate_limit?,
        rate_limit_burst: rate_limit_burst?,
        header_timeout: header_timeout?,
        listen: listen?,
        public_url: public_url?,
        operators: operators?,
        unsubscribe_mailto_domain: raw.unsubscribe_mailto_domain.clone(),
    })
}

impl HttpConfig {
    /// The operator whose token this is (constant time over every digest).
    pub fn operator_by_token(&self, token: &[u8]) -> Option<&Operator> {
        operator::by_token(&self.operators, token)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn a_public_url_without_https_is_a_warning_not_an_error() {
        let text = edit(&[(
            "public_url = \"https://relay.test\"",
            "public_url = \"http://relay.test\"",
        )]);
        let config = parse(&text).expect("valid");
        assert_eq!(
            config.warnings,
            [
                "consent-relay.toml: http.public_url: http://relay.test/ is not https: Gmail and other \
              mail providers only offer RFC 8058 one-click unsubscribe over https (put a reverse \
              proxy with HTTPS in front and set public_url to its https:// address)"
            ]
        );
        assert!(parse(&minimal()).expect("valid").warnings.is_empty());
    }

    #[test]
    fn max_connections_per_client_is_checked() {
        let with = |n: &str| {
            edit(&[(
                "public_url = \"https://relay.test\"",
                &format!("public_url = \"https://relay.test\"\nmax_connections_per_client = {n}"),
            )])
        };
        assert_eq!(
            parse(&minimal())
                .expect("valid")
                .http
                .max_connections_per_client,
            64
        );
        assert_eq!(
            parse(&with("8"))
                .expect("valid")
                .http
                .max_connections_per_client,
            8
        );
        single_error(
            &with("0"),
            "consent-relay.toml: http.max_connections_per_client: 0 is out of range (use 1 to 1024)",
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
        let digests: Vec<[u8; 32]> = parse(&text)
            .expect("valid")
            .http
            .operators
            .iter()
            .map(|o| o.token_sha256)
            .collect();
        assert_eq!(digests, [expected]);
    }
}
