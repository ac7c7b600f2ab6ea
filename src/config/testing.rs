//! What the configuration's tests share: a small valid file, edits of it,
//! and the error lines a file gives.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{BASE64, Config, ConfigError};

pub(super) const FILE: &str = "consent-relay.toml";

/// A small valid configuration; tests edit it with [`edit`].
pub(super) fn minimal() -> String {
    let key = BASE64.encode([7u8; 32]);
    format!(
        r#"
[smtp]
listen = "127.0.0.1:2525"
hostname = "relay.test"

[upstream]
url = "smtp://mail.test"

[http]
public_url = "https://relay.test"
organisation = "Relay Test Ltd"
privacy_url = "https://relay.test/privacy"
contact = "dpo@relay.test"

[signing]
current = "k1"
keys = {{ k1 = "{key}" }}

[[campaign]]
id = "news"
label = "News"
policy = "opt-in"
"#
    )
}

/// `minimal()` with each `from` replaced by `to` (each must be present).
pub(super) fn edit(pairs: &[(&str, &str)]) -> String {
    let mut text = minimal();
    for (from, to) in pairs {
        assert!(text.contains(from), "{from:?} not in the minimal config");
        text = text.replacen(from, to, 1);
    }
    text
}

pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(Path::new(FILE), text)
}

/// The error lines of an invalid configuration.
pub(super) fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Err(ConfigError::Invalid(lines)) => lines,
        Err(other) => panic!("expected Invalid, got {other}"),
        Ok(_) => panic!("expected errors, the configuration is valid"),
    }
}

/// Asserts exactly one error, equal to `expected`.
pub(super) fn single_error(text: &str, expected: &str) {
    assert_eq!(errors(text), vec![expected.to_owned()]);
}

/// A fresh directory under the system temp dir, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "consent-relay-config-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
