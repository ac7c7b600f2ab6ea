//! `[log]`: what the relay's own log lines say about recipients. By
//! default a recipient is named by the keyed hash of its address (the
//! start of it), and an upstream reply that quotes the address has it
//! masked; `recipients = "clear"` logs addresses and replies as they are.

use serde::Deserialize;

use super::Check;

/// `log.recipients`.
pub const DEFAULT_RECIPIENTS: &str = "hash";

/// How log lines name a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogRecipients {
    /// The first 16 hex digits (`consent::logged::LOG_HASH_HEX`) of the
    /// keyed hash of the address (`consent-relay log-hash EMAIL` prints
    /// them); replies with the address masked.
    #[default]
    Hash,
    /// The address, and replies as the upstream gave them.
    Clear,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub recipients: LogRecipients,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLog {
    recipients: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawLog) -> Option<LogConfig> {
    let recipients = match raw.recipients.as_deref().unwrap_or(DEFAULT_RECIPIENTS) {
        "hash" => LogRecipients::Hash,
        "clear" => LogRecipients::Clear,
        other => {
            c.error(
                "log.recipients",
                format_args!(
                    "{other:?} is not a choice (use \"hash\", the default, to name recipients by their keyed hash, or \"clear\" to log their addresses)"
                ),
            );
            return None;
        }
    };
    Some(LogConfig { recipients })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    #[test]
    fn recipients_are_hashed_unless_the_file_says_clear() {
        let config = parse(&minimal()).expect("valid");
        assert_eq!(config.log.recipients, LogRecipients::Hash);
        let text = format!("{}\n[log]\nrecipients = \"clear\"\n", minimal());
        assert_eq!(
            parse(&text).expect("valid").log.recipients,
            LogRecipients::Clear
        );
        let text = format!("{}\n[log]\nrecipients = \"hash\"\n", minimal());
        assert_eq!(
            parse(&text).expect("valid").log.recipients,
            LogRecipients::Hash
        );
    }

    #[test]
    fn an_unknown_choice_names_the_key_and_the_choices() {
        single_error(
            &format!("{}\n[log]\nrecipients = \"Clear\"\n", minimal()),
            "consent-relay.toml: log.recipients: \"Clear\" is not a choice (use \"hash\", the default, to name recipients by their keyed hash, or \"clear\" to log their addresses)",
        );
    }
}
