//! How the relay's own log lines name a recipient (`[log] recipients`):
//! by default the start of the keyed hash of the address, the hash its
//! subject and its erasure suppression are made from, which
//! `consent-relay log-hash EMAIL` prints for an operator to grep for; an
//! upstream reply in a log line has the address masked (`mail::mask`).
//! With `recipients = "clear"`, addresses and replies as they are.

use std::borrow::Cow;

use super::identity::{Identity, legacy_form};
use super::subject;
use crate::config::{Config, LogRecipients, SigningConfig};
use crate::mail::mask::mask_address;

/// Hex digits of the keyed hash that name a recipient in log lines: 64
/// bits (among a million recipients, two share it with a chance of about
/// 3 in 100 million), short enough to read and to grep for.
pub const LOG_HASH_HEX: usize = 16;

/// The start of the keyed hash of `address` under each signing key, the
/// current one first (the hash the subject and its erasure suppression
/// are made from; older log lines were written under an older key).
pub fn log_hashes(signing: &SigningConfig, address: &str) -> Vec<(String, String)> {
    let address = identity_of(address);
    let current = signing.keys.get_key_value(&signing.current);
    let others = signing
        .keys
        .iter()
        .filter(|(id, _)| **id != signing.current);
    current
        .into_iter()
        .chain(others)
        .map(|(id, key)| (id.clone(), short_hash(&key.0, &address)))
        .collect()
}

/// Any spelling names the person by their identity's hash; text that is
/// not a mailbox (only an operator's typo can reach here) by its old
/// normal form.
fn identity_of(address: &str) -> String {
    Identity::of(address)
        .map(|who| who.canonical().to_owned())
        .unwrap_or_else(|_| legacy_form(address))
}

fn short_hash(key: &[u8], identity: &str) -> String {
    let mut hash = subject::address_hash(key, identity);
    hash.truncate(LOG_HASH_HEX);
    hash
}

/// How a log line names `address`: its hash under the current key, or the
/// address itself with `[log] recipients = "clear"`. One HMAC, under the
/// current key only (a log line is written per delivery attempt).
pub fn logged_recipient<'a>(cfg: &Config, address: &'a str) -> Cow<'a, str> {
    match cfg.log.recipients {
        LogRecipients::Clear => Cow::Borrowed(address),
        LogRecipients::Hash => Cow::Owned(
            cfg.signing
                .keys
                .get(&cfg.signing.current)
                .map(|key| short_hash(&key.0, &identity_of(address)))
                .unwrap_or_default(),
        ),
    }
}

/// An upstream reply about a copy as a log line shows it: each of
/// `addresses` (the recipient's identity and the spelling the copy went
/// to) masked, unless `[log] recipients = "clear"`.
pub fn logged_reply<'a>(cfg: &Config, reply: &'a str, addresses: &[&str]) -> Cow<'a, str> {
    match cfg.log.recipients {
        LogRecipients::Clear => Cow::Borrowed(reply),
        LogRecipients::Hash => {
            let mut text = Cow::Borrowed(reply);
            for address in addresses {
                if let Cow::Owned(masked) = mask_address(&text, address) {
                    text = Cow::Owned(masked);
                }
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn log_hash_is_the_start_of_the_subject_hash_current_key_first() {
        let signing = SigningConfig {
            current: "k2".into(),
            keys: [
                ("k1".to_owned(), Secret(vec![1; 32])),
                ("k2".to_owned(), Secret(vec![2; 32])),
            ]
            .into(),
        };
        let hashes = log_hashes(&signing, " <Erin@Example.NET> ");
        let ids: Vec<&str> = hashes.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["k2", "k1"]);
        let full = subject::address_hash(&[2; 32], "erin@example.net");
        assert_eq!(hashes[0].1, full[..LOG_HASH_HEX]);
        assert_eq!(log_hashes(&signing, "erin@example.net"), hashes);
    }
}
