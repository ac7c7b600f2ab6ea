//! `[signing]`: the keys tokens and address hashes are made and checked
//! with, and which one makes new ones.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;

use super::{BASE64, Check, Secret};

/// The signing key shipped in `config/consent-relay.toml`. It is public, so a
/// configuration that uses it still loads, with a warning.
pub const EXAMPLE_SIGNING_KEY: &str = "ncX+PdNjuWJjBIXtEXv2ViuBJ/jmBzdCm8JTMoQz0ow=";

#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// Key id new tokens and new address hashes are made with.
    pub current: String,
    /// Every key id → key bytes (at least 32). Old ids keep verifying.
    pub keys: BTreeMap<String, Secret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSigning {
    current: Option<String>,
    keys: BTreeMap<String, String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawSigning) -> Option<SigningConfig> {
    const GENERATE: &str = "generate one with `openssl rand -base64 32`";
    let example = BASE64.decode(EXAMPLE_SIGNING_KEY).ok();
    let mut keys = BTreeMap::new();
    if raw.keys.is_empty() {
        c.error(
            "signing.keys",
            format_args!("no key (add keys = {{ k1 = \"...\" }} under [signing]; {GENERATE})"),
        );
    }
    for (id, text) in &raw.keys {
        let key = format!("signing.keys.{id}");
        if id.is_empty()
            || id.len() > 32
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            c.error(
                &key,
                "is not a key id (use 1 to 32 letters, digits, '-' or '_')",
            );
            continue;
        }
        // The key itself never appears in a message.
        match BASE64.decode(text) {
            Err(_) => c.error(&key, format_args!("is not base64 ({GENERATE})")),
            Ok(bytes) if bytes.len() < 32 => c.error(
                &key,
                format_args!(
                    "decodes to {} bytes, at least 32 are needed ({GENERATE})",
                    bytes.len()
                ),
            ),
            Ok(bytes) => {
                if example.as_ref() == Some(&bytes) {
                    c.warnings.push(format!(
                        "{}: {key} is the example key published in the repository: {}",
                        c.file, "generate your own with `openssl rand -base64 32`"
                    ));
                }
                keys.insert(id.clone(), Secret(bytes));
            }
        }
    }
    let current = c.required(
        "signing.current",
        &raw.current,
        r#"add e.g. current = "k1" under [signing]"#,
    );
    if let Some(current) = current
        && !raw.keys.is_empty()
        && !raw.keys.contains_key(current)
    {
        let ids: Vec<&str> = raw.keys.keys().map(String::as_str).collect();
        c.error(
            "signing.current",
            format_args!(
                "{current:?} is not in signing.keys (use one of: {})",
                ids.join(", ")
            ),
        );
    }
    (keys.len() == raw.keys.len()).then_some(())?;
    Some(SigningConfig {
        current: current?.to_owned(),
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    #[test]
    fn missing_signing_section() {
        let text = minimal();
        let start = text.find("[signing]").expect("signing");
        let end = text.find("[[campaign]]").expect("campaign");
        let text = format!("{}{}", &text[..start], &text[end..]);
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: signing.keys: no key (add keys = { k1 = \"...\" } under [signing]; \
                 generate one with `openssl rand -base64 32`)",
                "consent-relay.toml: signing.current: missing (add e.g. current = \"k1\" under [signing])",
            ]
        );
    }

    #[test]
    fn short_or_bad_signing_key() {
        let add_key = |id: &str, value: &str| {
            edit(&[(
                "keys = { k1 = ",
                &format!("keys = {{ {id} = \"{value}\", k1 = "),
            )])
        };
        single_error(
            &add_key("k2", &BASE64.encode([1u8; 16])),
            "consent-relay.toml: signing.keys.k2: decodes to 16 bytes, at least 32 are needed \
             (generate one with `openssl rand -base64 32`)",
        );
        // The error never repeats the key.
        single_error(
            &add_key("k2", "not base64!"),
            "consent-relay.toml: signing.keys.k2: is not base64 (generate one with `openssl rand -base64 32`)",
        );
        single_error(
            &add_key("\"k 2\"", &BASE64.encode([1u8; 32])),
            "consent-relay.toml: signing.keys.k 2: is not a key id (use 1 to 32 letters, digits, '-' or '_')",
        );
        // Padding is optional; old keys stay listed.
        let unpadded = BASE64.encode([2u8; 32]).trim_end_matches('=').to_owned();
        let text = add_key("k2", &unpadded).replacen("current = \"k1\"", "current = \"k2\"", 1);
        let config = parse(&text).expect("valid");
        assert_eq!(config.signing.current, "k2");
        assert_eq!(config.signing.keys["k2"], Secret(vec![2; 32]));
        assert_eq!(config.signing.keys["k1"], Secret(vec![7; 32]));
    }

    #[test]
    fn current_must_be_a_key() {
        single_error(
            &edit(&[("current = \"k1\"", "current = \"k9\"")]),
            "consent-relay.toml: signing.current: \"k9\" is not in signing.keys (use one of: k1)",
        );
    }
}
