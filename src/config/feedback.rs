//! `[bounces]` and `[complaints]` (SPEC "What comes back"): where bounces
//! and feedback-loop reports come to, which statuses are hard, the soft
//! window, the scope of a complaint, the headers every copy carries for
//! the mailbox providers, and the reputation guard's rates.
//!
//! The two sections are read here together: they share the checks of an
//! address and a domain, and the guard's rates are about both.

use std::time::Duration;

use serde::Deserialize;

use super::{Check, is_dns_name, shown};

/// `bounces.hard`: RFC 3463 statuses that mean the mailbox is gone
/// (bad mailbox, bad system, bad syntax, moved, not found, disabled).
pub const DEFAULT_HARD: &[&str] = &["5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"];
/// `bounces.soft_limit`.
pub const DEFAULT_SOFT_LIMIT: u32 = 3;
/// `bounces.soft_window`.
pub const DEFAULT_SOFT_WINDOW: &str = "30d";
/// `bounces.soft_suppress_for`.
pub const DEFAULT_SOFT_SUPPRESS_FOR: &str = "30d";
/// `bounces.max_report_size`: a DSN with the returned copy is rarely
/// more than the copy; a report bigger than this is refused at the door.
pub const DEFAULT_MAX_REPORT_SIZE: usize = 1024 * 1024;
/// `complaints.feedback_id`.
pub const DEFAULT_FEEDBACK_ID: &str = "relay";
/// `complaints.warn_rate`: Gmail's "keep it below" line.
pub const DEFAULT_WARN_RATE: &str = "0.1%";
/// `complaints.pause_rate`: Gmail's "never reach" line.
pub const DEFAULT_PAUSE_RATE: &str = "0.3%";
/// `complaints.min_volume`.
pub const DEFAULT_MIN_VOLUME: u64 = 1000;

/// What a hard bounce does to a mandatory campaign's next mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceMandatory {
    /// Suppressed like every other campaign's (the default).
    Suppress,
    /// Sent anyway (an invoice must go out, whatever the mailbox did).
    Deliver,
}

/// Which campaigns a complaint withdraws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplaintScope {
    /// Every campaign that is not mandatory (the default).
    All,
    /// Only the campaign of the copy complained about.
    Campaign,
}

#[derive(Debug, Clone)]
pub struct BouncesConfig {
    /// `b-TOKEN@<domain>` is every relayed copy's envelope sender; `None`
    /// keeps the client's (and no bounce comes back to the relay by SMTP).
    pub domain: Option<String>,
    /// Statuses (`5.X.Y`) that suppress at once.
    pub hard: Vec<String>,
    pub soft_limit: u32,
    pub soft_window: Duration,
    pub soft_suppress_for: Duration,
    pub mandatory: BounceMandatory,
    /// Bytes a report may have at the SMTP door and the API.
    pub max_report_size: usize,
}

#[derive(Debug, Clone)]
pub struct ComplaintsConfig {
    /// Where feedback loops send ARF reports (taken by the SMTP listener).
    pub address: Option<String>,
    pub scope: ComplaintScope,
    /// The SenderId of `Feedback-ID` (Gmail).
    pub feedback_id: String,
    /// `CFBL-Address` (RFC 9477), when set.
    pub cfbl_address: Option<String>,
    /// Complaints per delivered copy, as a fraction (0.001 for 0.1 %).
    pub warn_rate: f64,
    pub pause_rate: f64,
    /// Copies delivered in the day before the guard judges a campaign.
    pub min_volume: u64,
}

/// Where a rate (per copy delivered) stands against `[complaints]
/// warn_rate` and `pause_rate`: what `consent-relay reputation` prints in
/// its `mark` column and the console's campaigns view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateMark {
    /// Below `warn_rate`, or nothing delivered.
    Ok,
    /// At or above `warn_rate`, below `pause_rate`.
    Warn,
    /// At or above `pause_rate`.
    Pause,
}

impl RateMark {
    /// `ok`, `warn`, `pause`.
    pub fn as_str(self) -> &'static str {
        match self {
            RateMark::Ok => "ok",
            RateMark::Warn => "warn",
            RateMark::Pause => "pause",
        }
    }
}

impl ComplaintsConfig {
    /// Where `rate` stands (`None`: nothing was delivered, so nothing to judge).
    pub fn mark(&self, rate: Option<f64>) -> RateMark {
        match rate {
            Some(r) if r >= self.pause_rate => RateMark::Pause,
            Some(r) if r >= self.warn_rate => RateMark::Warn,
            _ => RateMark::Ok,
        }
    }
}

impl Default for BouncesConfig {
    fn default() -> Self {
        BouncesConfig {
            domain: None,
            hard: DEFAULT_HARD.iter().map(|s| s.to_string()).collect(),
            soft_limit: DEFAULT_SOFT_LIMIT,
            soft_window: Duration::from_secs(30 * 86_400),
            soft_suppress_for: Duration::from_secs(30 * 86_400),
            mandatory: BounceMandatory::Suppress,
            max_report_size: DEFAULT_MAX_REPORT_SIZE,
        }
    }
}

impl Default for ComplaintsConfig {
    fn default() -> Self {
        ComplaintsConfig {
            address: None,
            scope: ComplaintScope::All,
            feedback_id: DEFAULT_FEEDBACK_ID.into(),
            cfbl_address: None,
            warn_rate: 0.001,
            pause_rate: 0.003,
            min_volume: DEFAULT_MIN_VOLUME,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawBounces {
    domain: Option<String>,
    hard: Option<Vec<String>>,
    soft_limit: Option<i64>,
    soft_window: Option<String>,
    soft_suppress_for: Option<String>,
    mandatory: Option<String>,
    max_report_size: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawComplaints {
    address: Option<String>,
    scope: Option<String>,
    feedback_id: Option<String>,
    cfbl_address: Option<String>,
    warn_rate: Option<String>,
    pause_rate: Option<String>,
    min_volume: Option<i64>,
}

const DAY: Duration = Duration::from_secs(86_400);

pub(super) fn check_bounces(c: &mut Check<'_>, raw: &RawBounces) -> Option<BouncesConfig> {
    let domain = match raw.domain.as_deref() {
        None => Some(None),
        Some(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if is_dns_name(&d, 2) {
                Some(Some(d))
            } else {
                c.error(
                    "bounces.domain",
                    format_args!(
                        "{} is not a domain name (use e.g. \"bounces.example.com\", with an MX record pointing at this relay)",
                        shown(&d)
                    ),
                );
                None
            }
        }
    };
    let hard = match &raw.hard {
        None => Some(DEFAULT_HARD.iter().map(|s| s.to_string()).collect()),
        Some(list) => {
            let mut ok = Vec::with_capacity(list.len());
            let mut bad = false;
            for s in list {
                match permanent_status(s) {
                    Some(s) => ok.push(s),
                    None => {
                        bad = true;
                        c.error(
                            "bounces.hard",
                            format_args!(
                                "{} is not a permanent status (use RFC 3463 codes of class 5, e.g. \"5.1.1\"; a 4.x.x status is never hard)",
                                shown(s)
                            ),
                        );
                    }
                }
            }
            (!bad).then_some(ok)
        }
    };
    let soft_limit = c.number(
        "bounces.soft_limit",
        raw.soft_limit,
        DEFAULT_SOFT_LIMIT,
        1..=365,
    );
    let soft_window = c.duration(
        "bounces.soft_window",
        &raw.soft_window,
        DEFAULT_SOFT_WINDOW,
        DAY,
    );
    let soft_suppress_for = c.duration(
        "bounces.soft_suppress_for",
        &raw.soft_suppress_for,
        DEFAULT_SOFT_SUPPRESS_FOR,
        Duration::from_secs(3600),
    );
    let mandatory = match raw.mandatory.as_deref() {
        None | Some("suppress") => Some(BounceMandatory::Suppress),
        Some("deliver") => Some(BounceMandatory::Deliver),
        Some(other) => {
            c.error(
                "bounces.mandatory",
                format_args!(
                    "{} is not known (use \"suppress\" or \"deliver\")",
                    shown(other)
                ),
            );
            None
        }
    };
    let max_report_size = c.number(
        "bounces.max_report_size",
        raw.max_report_size,
        DEFAULT_MAX_REPORT_SIZE,
        1024..=64 * 1024 * 1024,
    );
    Some(BouncesConfig {
        domain: domain?,
        hard: hard?,
        soft_limit: soft_limit?,
        soft_window: soft_window?,
        soft_suppress_for: soft_suppress_for?,
        mandatory: mandatory?,
        max_report_size: max_report_size?,
    })
}

/// The address offered in the fix of a bad `complaints.address`.
const FBL_EXAMPLE: &str = "fbl@example.com";

pub(super) fn check_complaints(c: &mut Check<'_>, raw: &RawComplaints) -> Option<ComplaintsConfig> {
    let address = c.mailbox("complaints.address", raw.address.as_deref(), FBL_EXAMPLE);
    let cfbl_address = c.mailbox(
        "complaints.cfbl_address",
        raw.cfbl_address.as_deref(),
        FBL_EXAMPLE,
    );
    let scope = match raw.scope.as_deref() {
        None | Some("all") => Some(ComplaintScope::All),
        Some("campaign") => Some(ComplaintScope::Campaign),
        Some(other) => {
            c.error(
                "complaints.scope",
                format_args!(
                    "{} is not known (use \"all\" or \"campaign\")",
                    shown(other)
                ),
            );
            None
        }
    };
    let feedback_id = match raw.feedback_id.as_deref() {
        None => Some(DEFAULT_FEEDBACK_ID.to_owned()),
        Some(id)
            if !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
        {
            Some(id.to_owned())
        }
        Some(id) => {
            c.error(
                "complaints.feedback_id",
                format_args!(
                    "{} cannot be a Feedback-ID SenderId (use 1 to 64 letters, digits, '.', '_' or '-'; no ':')",
                    shown(id)
                ),
            );
            None
        }
    };
    let warn_rate = rate(c, "complaints.warn_rate", &raw.warn_rate, DEFAULT_WARN_RATE);
    let pause_rate = rate(
        c,
        "complaints.pause_rate",
        &raw.pause_rate,
        DEFAULT_PAUSE_RATE,
    );
    if let (Some(w), Some(p)) = (warn_rate, pause_rate)
        && w > p
    {
        c.error(
            "complaints.warn_rate",
            format_args!(
                "{} is above complaints.pause_rate {} (the warning comes before the pause: lower warn_rate)",
                percent(w),
                percent(p)
            ),
        );
    }
    let min_volume = c.number(
        "complaints.min_volume",
        raw.min_volume,
        DEFAULT_MIN_VOLUME,
        1..,
    );
    Some(ComplaintsConfig {
        address: address?,
        scope: scope?,
        feedback_id: feedback_id?,
        cfbl_address: cfbl_address?,
        warn_rate: warn_rate?,
        pause_rate: pause_rate?,
        min_volume: min_volume?,
    })
}

/// A rate as a fraction, shown as a percentage.
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    let text = format!("{p:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// `"0.1%"` as 0.001: a percentage above zero and at most 100 %.
fn rate(c: &mut Check<'_>, key: &str, raw: &Option<String>, default: &str) -> Option<f64> {
    let text = raw.as_deref().unwrap_or(default).trim();
    let parsed = text
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|p| p.is_finite() && *p > 0.0 && *p <= 100.0);
    match parsed {
        Some(p) => Some(p / 100.0),
        None => {
            c.error(
                key,
                format_args!(
                    "{} is not a rate (use a percentage above 0, e.g. \"{default}\")",
                    shown(text)
                ),
            );
            None
        }
    }
}

/// `5.X.Y`, normalised (no leading zeros); `None` for anything else.
fn permanent_status(s: &str) -> Option<String> {
    let mut parts = s.trim().split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || class != "5" {
        return None;
    }
    let num = |p: &str, max: usize| -> Option<u16> {
        (!p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    Some(format!("5.{}.{}", num(subject, 3)?, num(detail, 3)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    #[test]
    fn defaults_are_the_specs() {
        let config = parse(&minimal()).expect("valid");
        let b = &config.bounces;
        assert_eq!(b.domain, None);
        assert_eq!(b.hard, DEFAULT_HARD);
        assert_eq!(b.soft_limit, 3);
        assert_eq!(b.soft_window, Duration::from_secs(30 * 86_400));
        assert_eq!(b.soft_suppress_for, Duration::from_secs(30 * 86_400));
        assert_eq!(b.mandatory, BounceMandatory::Suppress);
        let c = &config.complaints;
        assert_eq!(c.address, None);
        assert_eq!(c.scope, ComplaintScope::All);
        assert_eq!(c.feedback_id, "relay");
        assert_eq!(c.cfbl_address, None);
        assert!((c.warn_rate - 0.001).abs() < 1e-12);
        assert!((c.pause_rate - 0.003).abs() < 1e-12);
        assert_eq!(c.min_volume, 1000);
        assert_eq!(config.retention.feedback, Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn every_key_read() {
        let text = format!(
            "{}\n[bounces]\ndomain = \"Bounces.Example.COM.\"\nhard = [\"5.1.1\", \"5.7.01\"]\nsoft_limit = 2\nsoft_window = \"7d\"\nsoft_suppress_for = \"2d\"\nmandatory = \"deliver\"\nmax_report_size = 4096\n\
             [complaints]\naddress = \"fbl@Example.com\"\nscope = \"campaign\"\nfeedback_id = \"acme-1\"\ncfbl_address = \"cfbl@example.com\"\nwarn_rate = \"0.05%\"\npause_rate = \"1%\"\nmin_volume = 10\n",
            minimal()
        );
        let config = parse(&text).expect("valid");
        let b = config.bounces;
        assert_eq!(b.domain.as_deref(), Some("bounces.example.com"));
        assert_eq!(b.hard, ["5.1.1", "5.7.1"]);
        assert_eq!(b.soft_limit, 2);
        assert_eq!(b.soft_window, Duration::from_secs(7 * 86_400));
        assert_eq!(b.soft_suppress_for, Duration::from_secs(2 * 86_400));
        assert_eq!(b.mandatory, BounceMandatory::Deliver);
        assert_eq!(b.max_report_size, 4096);
        let c = config.complaints;
        assert_eq!(c.address.as_deref(), Some("fbl@example.com"));
        assert_eq!(c.scope, ComplaintScope::Campaign);
        assert_eq!(c.feedback_id, "acme-1");
        assert_eq!(c.cfbl_address.as_deref(), Some("cfbl@example.com"));
        assert!((c.warn_rate - 0.0005).abs() < 1e-12);
        assert!((c.pause_rate - 0.01).abs() < 1e-12);
        assert_eq!(c.min_volume, 10);
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let text = format!(
            "{}\n[bounces]\ndomain = \"not a domain\"\nhard = [\"4.2.2\", \"5.1\"]\nsoft_limit = 0\nsoft_window = \"1h\"\nmandatory = \"maybe\"\n\
             [complaints]\naddress = \"nobody\"\nscope = \"some\"\nfeedback_id = \"a:b\"\nwarn_rate = \"0.5%\"\npause_rate = \"0.3\"\nmin_volume = 0\n",
            minimal()
        );
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: bounces.domain: \"not a domain\" is not a domain name (use e.g. \"bounces.example.com\", with an MX record pointing at this relay)",
                "consent-relay.toml: bounces.hard: \"4.2.2\" is not a permanent status (use RFC 3463 codes of class 5, e.g. \"5.1.1\"; a 4.x.x status is never hard)",
                "consent-relay.toml: bounces.hard: \"5.1\" is not a permanent status (use RFC 3463 codes of class 5, e.g. \"5.1.1\"; a 4.x.x status is never hard)",
                "consent-relay.toml: bounces.soft_limit: 0 is out of range (use 1 to 365)",
                "consent-relay.toml: bounces.soft_window: \"1h\" is too short (use at least 1day)",
                "consent-relay.toml: bounces.mandatory: \"maybe\" is not known (use \"suppress\" or \"deliver\")",
                "consent-relay.toml: complaints.address: \"nobody\" is not a plain address (use e.g. \"fbl@example.com\")",
                "consent-relay.toml: complaints.scope: \"some\" is not known (use \"all\" or \"campaign\")",
                "consent-relay.toml: complaints.feedback_id: \"a:b\" cannot be a Feedback-ID SenderId (use 1 to 64 letters, digits, '.', '_' or '-'; no ':')",
                "consent-relay.toml: complaints.pause_rate: \"0.3\" is not a rate (use a percentage above 0, e.g. \"0.3%\")",
                "consent-relay.toml: complaints.min_volume: 0 is too small (use at least 1)",
            ]
        );
        let text = format!(
            "{}\n[complaints]\nwarn_rate = \"0.5%\"\npause_rate = \"0.3%\"\n",
            minimal()
        );
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: complaints.warn_rate: 0.5% is above complaints.pause_rate 0.3% (the warning comes before the pause: lower warn_rate)"
            ]
        );
    }

    #[test]
    fn percentages_print_short() {
        assert_eq!(percent(0.001), "0.1%");
        assert_eq!(percent(0.003), "0.3%");
        assert_eq!(percent(0.0125), "1.25%");
        assert_eq!(percent(1.0), "100%");
    }

    #[test]
    fn rates_are_marked_against_the_lines() {
        let c = ComplaintsConfig::default();
        assert_eq!(c.mark(None), RateMark::Ok);
        assert_eq!(c.mark(Some(0.0009)), RateMark::Ok);
        assert_eq!(c.mark(Some(0.001)), RateMark::Warn);
        assert_eq!(c.mark(Some(0.0029)), RateMark::Warn);
        assert_eq!(c.mark(Some(0.003)), RateMark::Pause);
        assert_eq!(c.mark(Some(0.5)).as_str(), "pause");
    }
}
