//! `[smtp]`: the listener, its limits, its users and its TLS files; the
//! keys against slow clients and password guessing are in [`guard`].
//! Knows nothing of sockets: the listener reads the checked values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::{Check, NONZERO};

mod guard;

pub use guard::SmtpGuard;

/// `smtp.max_message_size`: 25 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 26_214_400;
/// `smtp.max_recipients`.
pub const DEFAULT_MAX_RECIPIENTS: usize = 1000;
/// `smtp.max_header_size`: 100 KiB.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 102_400;
/// `smtp.max_line_length`: 64 KiB, CRLF excluded.
pub const DEFAULT_MAX_LINE_LENGTH: usize = 65_536;
/// The smallest `smtp.max_line_length`: RFC 5321's text line (1000 octets
/// with its CRLF), which every client may send.
pub const MIN_MAX_LINE_LENGTH: usize = 998;
/// `smtp.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// `smtp.max_connections_per_ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 100;
/// `smtp.campaign_header`.
pub const DEFAULT_CAMPAIGN_HEADER: &str = "X-Campaign";
/// `smtp.command_timeout` (RFC 5321 4.5.3.2).
pub const DEFAULT_COMMAND_TIMEOUT: &str = "5m";
/// `smtp.data_timeout` (RFC 5321 4.5.3.2).
pub const DEFAULT_DATA_TIMEOUT: &str = "3m";
/// `smtp.error_limit`.
pub const DEFAULT_ERROR_LIMIT: usize = 10;

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
    /// Octets of one body line, CRLF excluded (default 64 KiB). Lines over
    /// 998 are taken and their part re-encoded in the copies.
    pub max_line_length: usize,
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

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSmtp {
    listen: Option<String>,
    listen_tls: Option<String>,
    hostname: Option<String>,
    allowed_networks: Option<Vec<String>>,
    max_message_size: Option<i64>,
    max_recipients: Option<i64>,
    max_header_size: Option<i64>,
    max_line_length: Option<i64>,
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
pub(super) struct RawUser {
    name: Option<String>,
    password_hash: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawSmtp, campaign_ids: &[&str]) -> Option<SmtpConfig> {
    let listen = c
        .required(
            "smtp.listen",
            &raw.listen,
            r#"add e.g. listen = "127.0.0.1:2525" under [smtp]"#,
        )
        .and_then(|s| c.socket("smtp.listen", s));
    let listen_tls = raw
        .listen_tls
        .as_deref()
        .map(|s| c.socket("smtp.listen_tls", s));
    let hostname = c.required(
        "smtp.hostname",
        &raw.hostname,
        r#"add the relay's public name, e.g. hostname = "relay.example.com""#,
    );
    if let Some(name) = hostname
        && (name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        c.error(
            "smtp.hostname",
            format_args!("{name:?} is not a host name (use e.g. relay.example.com)"),
        );
    }
    let allowed_networks = c.networks("smtp.allowed_networks", raw.allowed_networks.as_deref());
    let max_message_size = c.number(
        "smtp.max_message_size",
        raw.max_message_size,
        DEFAULT_MAX_MESSAGE_SIZE,
        1024..,
    );
    let max_recipients = c.number(
        "smtp.max_recipients",
        raw.max_recipients,
        DEFAULT_MAX_RECIPIENTS,
        1..,
    );
    let max_header_size = c.number(
        "smtp.max_header_size",
        raw.max_header_size,
        DEFAULT_MAX_HEADER_SIZE,
        1024..,
    );
    let max_line_length = max_line_length(c, raw.max_line_length, max_message_size);
    let max_connections = c.number(
        "smtp.max_connections",
        raw.max_connections,
        DEFAULT_MAX_CONNECTIONS,
        1..,
    );
    let max_connections_per_ip = c.number(
        "smtp.max_connections_per_ip",
        raw.max_connections_per_ip,
        DEFAULT_MAX_CONNECTIONS_PER_IP,
        1..,
    );
    let campaign_header = raw
        .campaign_header
        .as_deref()
        .unwrap_or(DEFAULT_CAMPAIGN_HEADER);
    if campaign_header.is_empty()
        || !campaign_header
            .bytes()
            .all(|b| (33..=126).contains(&b) && b != b':')
    {
        c.error(
            "smtp.campaign_header",
            format_args!("{campaign_header:?} is not a header name (use printable ASCII without spaces or ':', e.g. X-Campaign)"),
        );
    }
    let missing_campaign = match raw.missing_campaign.as_deref() {
        None | Some("reject") => Some(MissingCampaign::Reject),
        Some(id) if campaign_ids.contains(&id) => Some(MissingCampaign::Campaign(id.to_owned())),
        Some(id) => {
            c.error(
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
        .map(|p| c.readable("smtp.tls_cert", p));
    let tls_key = raw
        .tls_key
        .as_deref()
        .map(|p| c.readable("smtp.tls_key", p));
    if tls_cert.is_some() != tls_key.is_some() {
        c.error(
            "smtp.tls_cert",
            "tls_cert and tls_key go together (set both, or neither)",
        );
    } else if raw.listen_tls.is_some() && tls_cert.is_none() {
        c.error(
            "smtp.listen_tls",
            "needs a certificate (set tls_cert and tls_key, or remove listen_tls)",
        );
    }
    let users = users(c, &raw.user);
    let command_timeout = c.duration(
        "smtp.command_timeout",
        &raw.command_timeout,
        DEFAULT_COMMAND_TIMEOUT,
        NONZERO,
    );
    let data_timeout = c.duration(
        "smtp.data_timeout",
        &raw.data_timeout,
        DEFAULT_DATA_TIMEOUT,
        NONZERO,
    );
    let error_limit = c.number(
        "smtp.error_limit",
        raw.error_limit,
        DEFAULT_ERROR_LIMIT,
        1..,
    );
    let guard = guard::check(c, raw);
    Some(SmtpConfig {
        listen: listen?,
        listen_tls: listen_tls.flatten(),
        hostname: hostname?.to_owned(),
        allowed_networks: allowed_networks?,
        max_message_size: max_message_size?,
        max_recipients: max_recipients?,
        max_header_size: max_header_size?,
        max_line_length: max_line_length?,
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

/// `smtp.max_line_length`: at least RFC 5321's 998, at most the message.
fn max_line_length(
    c: &mut Check<'_>,
    raw: Option<i64>,
    max_message_size: Option<usize>,
) -> Option<usize> {
    let key = "smtp.max_line_length";
    let n = c.number(
        key,
        raw,
        DEFAULT_MAX_LINE_LENGTH,
        MIN_MAX_LINE_LENGTH as i64..,
    )?;
    match max_message_size {
        Some(max) if raw.is_some() && n > max => {
            c.error(
                key,
                format_args!(
                    "{n} is larger than smtp.max_message_size ({max}); use at most that, or raise max_message_size"
                ),
            );
            None
        }
        _ => Some(n),
    }
}

fn users(c: &mut Check<'_>, raw: &[RawUser]) -> Option<Vec<SmtpUser>> {
    let mut seen = HashMap::new();
    let mut users = Vec::new();
    for (i, user) in raw.iter().enumerate() {
        let at = format!("smtp.user[{i}]");
        let name = c.required(
            &format!("{at}.name"),
            &user.name,
            r#"add e.g. name = "crm""#,
        );
        if let Some(name) = name {
            if name.is_empty() {
                c.error(&format!("{at}.name"), "is empty (give the login name)");
            } else if let Some(first) = seen.insert(name, i) {
                c.error(
                    &format!("{at}.name"),
                    format_args!("{name:?} is already smtp.user[{first}] (names must be unique)"),
                );
            }
        }
        let hash = c.required(
            &format!("{at}.password_hash"),
            &user.password_hash,
            "add the argon2id PHC string of the password",
        );
        if let Some(hash) = hash
            && !hash.starts_with("$argon2id$")
        {
            // The value is a password hash: not repeated in the message.
            c.error(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

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
    fn max_line_length_has_a_default_and_a_range() {
        let config = parse(&minimal()).expect("valid");
        assert_eq!(config.smtp.max_line_length, 65_536);
        let set = |v: &str| {
            edit(&[(
                "hostname = \"relay.test\"",
                &format!("hostname = \"relay.test\"\n{v}"),
            )])
        };
        let config = parse(&set("max_line_length = 998")).expect("valid");
        assert_eq!(config.smtp.max_line_length, 998);
        single_error(
            &set("max_line_length = 997"),
            "consent-relay.toml: smtp.max_line_length: 997 is too small (use at least 998)",
        );
        single_error(
            &set("max_message_size = 10000\nmax_line_length = 20000"),
            "consent-relay.toml: smtp.max_line_length: 20000 is larger than smtp.max_message_size (10000); use at most that, or raise max_message_size",
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
}
