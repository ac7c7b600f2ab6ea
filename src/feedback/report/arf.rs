//! The machine-readable part of an abuse report (RFC 5965, ARF), read with
//! mail-auth's `report` module.
//!
//! We call `Feedback::parse_arf` on the `message/feedback-report` part we
//! already found rather than `Feedback::parse_rfc5322` on the whole
//! message: that would parse the message a second time, and it takes the
//! enclosed message from whichever `message/*` part comes last. mail-auth
//! drops a report whose `Feedback-Type` is not one it knows (RFC 5965's
//! registry has more, and providers add their own): such a report is kept
//! here with the type as written ([`FeedbackType::Other`]). mail-auth's
//! `Reporting-MTA` keeps a `DNS;` type written in capitals, and
//! `Original-Rcpt-To` comes with its angle brackets: both are cleaned here.

use std::net::IpAddr;

use mail_auth::report::{Feedback, FeedbackType as ArfType};

use super::fields::{Fields, unfold};

/// RFC 5965 3.1 `Feedback-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedbackType {
    /// The recipient marked the message as spam.
    Abuse,
    /// Phishing or another fraud.
    Fraud,
    Virus,
    /// The recipient marked it as not spam.
    NotSpam,
    /// An authentication failure report (RFC 6591).
    AuthFailure,
    /// `other`, or a type mail-auth does not know, lowercased as written.
    Other(String),
}

impl FeedbackType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            FeedbackType::Abuse => "abuse",
            FeedbackType::Fraud => "fraud",
            FeedbackType::Virus => "virus",
            FeedbackType::NotSpam => "not-spam",
            FeedbackType::AuthFailure => "auth-failure",
            FeedbackType::Other(s) => s,
        }
    }
}

/// What an ARF report says about the message it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub feedback_type: FeedbackType,
    /// `User-Agent` of the reporter (`Yahoo!-Mail-Feedback/2.0`).
    pub user_agent: Option<String>,
    /// `Reporting-MTA`, without its `dns;` type.
    pub reporting_mta: Option<String>,
    /// `Arrival-Date` (or `Received-Date`), seconds since the epoch.
    pub arrival_date: Option<i64>,
    /// `Original-Rcpt-To` without angle brackets. Often absent or redacted
    /// (RFC 6590: `xxxxxxxx@example.com`), so never the way to find the
    /// person; see [`super::Report::relay_header`].
    pub original_rcpt_to: Option<String>,
    /// `Original-Mail-From` without angle brackets (our VERP address when
    /// the reporter keeps it).
    pub original_mail_from: Option<String>,
    pub source_ip: Option<IpAddr>,
    /// `Incidents` (1 when absent).
    pub incidents: u32,
}

/// Reads a `message/feedback-report` body. `None` when it holds no
/// `Feedback-Type` at all (then it is not a report).
pub fn parse(body: &[u8]) -> Option<Complaint> {
    let fields = Fields::parse(body);
    let written = fields.get("Feedback-Type")?;
    let written = written
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if written.is_empty() {
        return None;
    }
    let feedback = Feedback::parse_arf(body);
    let feedback_type = match feedback.as_ref().map(|f| f.feedback_type()) {
        Some(ArfType::Abuse) => FeedbackType::Abuse,
        Some(ArfType::Fraud) => FeedbackType::Fraud,
        Some(ArfType::Virus) => FeedbackType::Virus,
        Some(ArfType::NotSpam) => FeedbackType::NotSpam,
        Some(ArfType::AuthFailure) => FeedbackType::AuthFailure,
        Some(ArfType::Other) | None => FeedbackType::Other(written),
    };
    let text = |v: Option<&str>| v.map(|s| unfold(s.as_bytes())).filter(|s| !s.is_empty());
    let Some(f) = feedback else {
        // A type mail-auth does not know: the rest from our own reading.
        return Some(Complaint {
            feedback_type,
            user_agent: text(fields.get("User-Agent")),
            reporting_mta: fields.get("Reporting-MTA").and_then(mta_name),
            arrival_date: fields
                .get("Arrival-Date")
                .or(fields.get("Received-Date"))
                .and_then(super::dsn::parse_date),
            original_rcpt_to: fields.get("Original-Rcpt-To").and_then(bare_address),
            original_mail_from: fields.get("Original-Mail-From").and_then(bare_address),
            source_ip: fields
                .get("Source-IP")
                .and_then(|s| s.split_whitespace().next().and_then(|ip| ip.parse().ok())),
            incidents: fields
                .get("Incidents")
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(1),
        });
    };
    Some(Complaint {
        feedback_type,
        user_agent: text(f.user_agent()),
        // mail-auth strips only a lowercase `dns;`: read the raw field.
        reporting_mta: fields.get("Reporting-MTA").and_then(mta_name),
        arrival_date: f.arrival_date(),
        original_rcpt_to: f.original_rcpt_to().and_then(bare_address),
        original_mail_from: f.original_mail_from().and_then(bare_address),
        source_ip: f.source_ip(),
        incidents: f.incidents(),
    })
}

/// `dns; mta.example.net` → `mta.example.net`.
fn mta_name(raw: &str) -> Option<String> {
    let name = raw.split_once(';').map_or(raw, |(_, name)| name).trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// `<erin@example.net>` → `erin@example.net`; empty → `None`.
fn bare_address(raw: &str) -> Option<String> {
    let s = raw.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
        .trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_feedback_types_are_kept_as_written() {
        let c = parse(b"Feedback-Type: Opt-Out\r\nUser-Agent: X/1\r\nReporting-MTA: DNS; mta.example\r\nOriginal-Rcpt-To: <a@b.example>\r\n").unwrap();
        assert_eq!(c.feedback_type, FeedbackType::Other("opt-out".into()));
        assert_eq!(c.reporting_mta.as_deref(), Some("mta.example"));
        assert_eq!(c.original_rcpt_to.as_deref(), Some("a@b.example"));
        assert_eq!(c.incidents, 1);
    }

    #[test]
    fn no_feedback_type_is_no_complaint() {
        assert_eq!(parse(b"User-Agent: X/1\r\n"), None);
        assert_eq!(parse(b"Feedback-Type:\r\n"), None);
        assert_eq!(parse(b""), None);
    }

    #[test]
    fn empty_recipient_is_none() {
        let c = parse(b"Feedback-Type: abuse\r\nOriginal-Rcpt-To: <>\r\n").unwrap();
        assert_eq!(c.feedback_type, FeedbackType::Abuse);
        assert_eq!(c.original_rcpt_to, None);
    }
}
