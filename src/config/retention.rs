//! `[retention]`: how long message bodies and the decision log are kept
//! (GDPR Art. 5(1)(e)), and how often `serve` purges.

use std::time::Duration;

use serde::Deserialize;

use super::{Check, NONZERO};

/// `retention.message_bodies`.
pub const DEFAULT_MESSAGE_BODIES: &str = "30d";
/// `retention.decisions`.
pub const DEFAULT_DECISIONS: &str = "3y";
/// `retention.purge_interval`.
pub const DEFAULT_PURGE_INTERVAL: &str = "1h";
/// `retention.feedback`: raw bounces and complaints as received.
pub const DEFAULT_FEEDBACK: &str = "30d";

/// The longest retention accepted: more is no retention limit at all (GDPR
/// Art. 5(1)(e), storage limitation).
const RETENTION_MAX: Duration = Duration::from_secs(30 * 31_557_600);

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// How long a message body is kept after its last delivery ended (default 30d).
    pub message_bodies: Duration,
    /// How long decision and delivery rows are kept (default 3y).
    pub decisions: Duration,
    /// How often `serve` purges (default 1h; also once at start).
    pub purge_interval: Duration,
    /// How long a received report's raw message is kept (default 30d);
    /// what it changed stays as long as the suppression or event it made.
    pub feedback: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRetention {
    message_bodies: Option<String>,
    decisions: Option<String>,
    purge_interval: Option<String>,
    feedback: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawRetention) -> Option<RetentionConfig> {
    let message_bodies = c.duration(
        "retention.message_bodies",
        &raw.message_bodies,
        DEFAULT_MESSAGE_BODIES,
        NONZERO,
    );
    // Less than a day of decision log is a typo ("3s" for "3y"): the log
    // is what answers "why did this person get that mail?".
    let decisions = c.duration(
        "retention.decisions",
        &raw.decisions,
        DEFAULT_DECISIONS,
        Duration::from_secs(86_400),
    );
    let purge_interval = c.duration(
        "retention.purge_interval",
        &raw.purge_interval,
        DEFAULT_PURGE_INTERVAL,
        Duration::from_secs(1),
    );
    let feedback = c.duration(
        "retention.feedback",
        &raw.feedback,
        DEFAULT_FEEDBACK,
        NONZERO,
    );
    let feedback = at_most(c, "retention.feedback", feedback, RETENTION_MAX);
    let message_bodies = at_most(c, "retention.message_bodies", message_bodies, RETENTION_MAX);
    let decisions = at_most(c, "retention.decisions", decisions, RETENTION_MAX);
    let purge_interval = at_most(
        c,
        "retention.purge_interval",
        purge_interval,
        Duration::from_secs(86_400),
    );
    Some(RetentionConfig {
        message_bodies: message_bodies?,
        decisions: decisions?,
        purge_interval: purge_interval?,
        feedback: feedback?,
    })
}

/// `value` if it is at most `max`; longer is a mistake, named with its key.
fn at_most(
    c: &mut Check<'_>,
    key: &str,
    value: Option<Duration>,
    max: Duration,
) -> Option<Duration> {
    let d = value?;
    if d > max {
        let (d, max) = (
            humantime::format_duration(d),
            humantime::format_duration(max),
        );
        c.error(key, format_args!("{d} is too long (use at most {max})"));
        return None;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

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
}
