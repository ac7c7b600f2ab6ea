//! `[upstream]`: where delivery sends each copy (an SMTP relay or an
//! outbox directory), its pool, credentials and TLS. Knows nothing of
//! connections: delivery reads the checked values.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::{Host, Url};

use super::{Check, NONZERO, Secret, shown};

/// `upstream.connections`.
pub const DEFAULT_CONNECTIONS: usize = 4;
/// `upstream.timeout`.
pub const DEFAULT_TIMEOUT: &str = "60s";
/// The port of `smtp://` without one.
pub const DEFAULT_SMTP_PORT: u16 = 25;
/// The port of `smtps://` without one.
pub const DEFAULT_SMTPS_PORT: u16 = 465;

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

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawUpstream {
    url: Option<String>,
    connections: Option<i64>,
    username: Option<String>,
    password_file: Option<String>,
    tls: Option<String>,
    ca_file: Option<String>,
    timeout: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawUpstream) -> Option<UpstreamConfig> {
    let target = c
        .required(
            "upstream.url",
            &raw.url,
            r#"add e.g. url = "smtp://mail.example.com:25" under [upstream]"#,
        )
        .and_then(|url| target(c, url));
    let connections = c.number(
        "upstream.connections",
        raw.connections,
        DEFAULT_CONNECTIONS,
        1..=256,
    );
    let password = match (&raw.username, &raw.password_file) {
        (Some(_), Some(file)) => Some(c.secret_file("upstream.password_file", file, 1)),
        (None, None) => None,
        (Some(_), None) => {
            c.error(
                "upstream.username",
                "needs password_file (set both, or neither)",
            );
            Some(None)
        }
        (None, Some(_)) => {
            c.error(
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
                    c.error(
                        "upstream.tls",
                        format_args!(
                            "{mode:?} is not a TLS mode (use required, opportunistic or none)"
                        ),
                    );
                    None
                }
            };
            match (tls, &target) {
                (Some(UpstreamTls::None), Some(UpstreamTarget::Smtps { .. })) => c.error(
                    "upstream.tls",
                    "\"none\" contradicts smtps:// (smtps is TLS from the first byte: remove tls, or use smtp://)",
                ),
                (Some(UpstreamTls::Required | UpstreamTls::Opportunistic), Some(UpstreamTarget::Outbox(_))) => {
                    c.error("upstream.tls", format_args!("{mode:?} means nothing for outbox: (remove tls)"))
                }
                _ => {}
            }
            tls
        }
    };
    let ca_file = raw
        .ca_file
        .as_deref()
        .map(|p| c.readable("upstream.ca_file", p));
    let timeout = c.duration("upstream.timeout", &raw.timeout, DEFAULT_TIMEOUT, NONZERO);
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

fn target(c: &mut Check<'_>, text: &str) -> Option<UpstreamTarget> {
    const FORMS: &str = "use smtp://host[:port], smtps://host[:port] or outbox:DIR";
    if let Some(dir) = text.strip_prefix("outbox:") {
        if dir.is_empty() {
            c.error(
                "upstream.url",
                "\"outbox:\" names no directory (use e.g. outbox:./outbox)",
            );
            return None;
        }
        return Some(UpstreamTarget::Outbox(PathBuf::from(dir)));
    }
    let (smtps, default_port) = if text.starts_with("smtp://") {
        (false, DEFAULT_SMTP_PORT)
    } else if text.starts_with("smtps://") {
        (true, DEFAULT_SMTPS_PORT)
    } else {
        c.error(
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
            c.error(
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
            c.error(
                "upstream.url",
                format_args!("{} is not an upstream ({FORMS})", shown(text)),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;
    use crate::config::{Config, ConfigError, Secret};

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
}
