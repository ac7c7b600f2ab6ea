//! `[dkim]`: the signing domain, selector and key file of the
//! DKIM-Signature on every copy, and the warning when the relay's own
//! From does not align with it. Reads the key file to see it is PEM; the
//! key itself is loaded by [`super::load`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Check, NONZERO, SmtpConfig, is_dns_name};

/// The example `dkim.expire` offered in its fix.
const EXAMPLE_EXPIRE: &str = "7d";

#[derive(Debug, Clone)]
pub struct DkimConfig {
    pub domain: String,
    pub selector: String,
    pub private_key: PathBuf,
    /// Signature lifetime (x= tag), if any.
    pub expire: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDkim {
    domain: Option<String>,
    selector: Option<String>,
    private_key: Option<String>,
    expire: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawDkim) -> Option<DkimConfig> {
    let domain = c.required(
        "dkim.domain",
        &raw.domain,
        r#"add the signing domain, e.g. domain = "example.com""#,
    );
    if let Some(d) = domain
        && !is_dns_name(d, 2)
    {
        c.error(
            "dkim.domain",
            format_args!("{d:?} is not a domain name (use e.g. example.com)"),
        );
    }
    let selector = c.required(
        "dkim.selector",
        &raw.selector,
        r#"add e.g. selector = "relay""#,
    );
    if let Some(s) = selector
        && !is_dns_name(s, 1)
    {
        c.error(
            "dkim.selector",
            format_args!("{s:?} is not a selector (use letters, digits and '-', e.g. relay)"),
        );
    }
    let private_key = c
        .required(
            "dkim.private_key",
            &raw.private_key,
            "add the path of the PEM private key",
        )
        .and_then(|file| {
            let (path, bytes) = c.read_file("dkim.private_key", file)?;
            if !bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
                c.error(
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
        .map(|e| c.duration_of("dkim.expire", e, EXAMPLE_EXPIRE, NONZERO));
    Some(DkimConfig {
        domain: domain?.to_owned(),
        selector: selector?.to_owned(),
        private_key: private_key?,
        expire: expire.map_or(Some(None), |e| e.map(Some))?,
    })
}

/// Warns when the sending domain the config names does not align with
/// `dkim.domain` (DMARC relaxed): the relay's own mail (confirmations,
/// bounces) is From `no-reply@` / `MAILER-DAEMON@` `smtp.hostname`.
pub(super) fn alignment(c: &mut Check<'_>, smtp: &SmtpConfig, dkim: &DkimConfig) {
    use crate::mail::align::{aligned, organizational_domain};
    if !aligned(&smtp.hostname, &dkim.domain) {
        c.warnings.push(format!(
            "{}: smtp.hostname: {} does not align with dkim.domain {} (DMARC relaxed alignment: \
             organizational domains {} and {} differ); the relay's own mail (opt-in confirmations, \
             bounces) is sent From that hostname and its signature cannot pass DMARC (use a hostname under {}, \
             or a dkim.domain under {})",
            c.file,
            smtp.hostname,
            dkim.domain,
            organizational_domain(&smtp.hostname),
            organizational_domain(&dkim.domain),
            organizational_domain(&dkim.domain),
            organizational_domain(&smtp.hostname),
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::testing::*;

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
