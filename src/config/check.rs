//! The checks of single values every section uses: required keys,
//! durations, numbers in range, addresses, URLs, networks, languages and
//! files named in the configuration. Each records its error (file, key,
//! fix) on the [`Check`] and returns `None`.

use std::net::{IpAddr, SocketAddr};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use super::{Check, NONZERO, Secret};

/// `smtp.allowed_networks` and `http.metrics_allowed_networks`: loopback.
pub const DEFAULT_ALLOWED_NETWORKS: [&str; 2] = ["127.0.0.0/8", "::1/128"];

impl Check<'_> {
    /// CIDR list at `key`; a bare address is one host (/32 or /128).
    pub(super) fn networks(&mut self, key: &str, raw: Option<&[String]>) -> Option<Vec<IpNet>> {
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

    pub(super) fn language(&mut self, key: &str, value: &str) -> Option<crate::texts::Language> {
        let lang = crate::texts::Language::parse(value);
        if lang.is_none() {
            self.error(
                key,
                format_args!("{value:?} is not a language (use \"en\" or \"fr\")"),
            );
        }
        lang
    }

    pub(super) fn required<'v>(
        &mut self,
        key: &str,
        value: &'v Option<String>,
        fix: &str,
    ) -> Option<&'v str> {
        if value.is_none() {
            self.error(key, format_args!("missing ({fix})"));
        }
        value.as_deref()
    }

    /// `raw`, or `default` when absent, as a duration of at least `min`.
    pub(super) fn duration(
        &mut self,
        key: &str,
        raw: &Option<String>,
        default: &str,
        min: Duration,
    ) -> Option<Duration> {
        self.duration_of(key, raw.as_deref().unwrap_or(default), default, min)
    }

    /// `text` parsed by humantime, at least `min`; `example` is offered in the fix.
    pub(super) fn duration_of(
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
    pub(super) fn number<T: TryFrom<i64>>(
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

    pub(super) fn socket(&mut self, key: &str, text: &str) -> Option<SocketAddr> {
        let addr = text.parse().ok();
        if addr.is_none() {
            self.error(key, format_args!("{text:?} is not an address and port (use IP:PORT, e.g. 127.0.0.1:2525 or [::1]:2525)"));
        }
        addr
    }

    /// An http(s) URL; a `base` (for links) also has no query, fragment or credentials.
    pub(super) fn web_url(&mut self, key: &str, text: &str, base: bool) -> Option<Url> {
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

    /// A mailbox by the rules SMTP reads addresses with (`mail::address`),
    /// at a domain name (not a literal); kept with its domain's A-labels,
    /// lowercased, as the SMTP door compares it. `example` is offered in
    /// the fix.
    pub(super) fn mailbox(
        &mut self,
        key: &str,
        raw: Option<&str>,
        example: &str,
    ) -> Option<Option<String>> {
        let Some(text) = raw else { return Some(None) };
        match crate::mail::address::Mailbox::parse(text) {
            Ok(m) if !m.is_literal() && is_dns_name(m.domain_ascii(), 2) => {
                Some(Some(format!("{}@{}", m.local(), m.domain_ascii())))
            }
            _ => {
                self.error(
                    key,
                    format_args!(
                        "{} is not a plain address (use e.g. \"{example}\")",
                        shown(text)
                    ),
                );
                None
            }
        }
    }

    /// A file name from the configuration: relative to the configuration's directory.
    pub(super) fn resolve(&self, file: &str) -> PathBuf {
        let path = Path::new(file);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.dir.join(path)
        }
    }

    pub(super) fn read_file(&mut self, key: &str, file: &str) -> Option<(PathBuf, Vec<u8>)> {
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
    pub(super) fn readable(&mut self, key: &str, file: &str) -> Option<PathBuf> {
        self.read_file(key, file).map(|(path, _)| path)
    }

    /// The file's bytes without the trailing newline, at least `min` of them.
    pub(super) fn secret_file(&mut self, key: &str, file: &str, min: usize) -> Option<Secret> {
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
pub(super) fn shown(text: &str) -> String {
    if text.contains('@') {
        "the value".to_owned()
    } else {
        format!("{text:?}")
    }
}

/// Dot-separated labels of letters, digits and inner '-', at least `min_labels` of them.
pub(super) fn is_dns_name(text: &str, min_labels: usize) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    text.len() <= 253 && text.split('.').count() >= min_labels && text.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

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
}
