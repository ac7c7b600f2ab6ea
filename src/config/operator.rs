//! `[[http.operator]]`: who may use the API and the console, under which
//! name and with which role; and the legacy `[http] admin_token_sha256`,
//! whose digests are operators named `admin` with the role `admin`.
//!
//! Owns the token check (SHA-256 of the presented token against every
//! digest, in constant time) and what each role may do. Knows nothing of
//! HTTP: the API and the console ask [`super::HttpConfig::operator_by_token`]
//! and the [`Role`] helpers.

use std::collections::HashMap;

use serde::Deserialize;

use super::Check;

/// The name the legacy `admin_token_sha256` digests sign in under.
pub const LEGACY_ADMIN: &str = "admin";

/// Longest operator name, in characters.
const MAX_NAME: usize = 64;

/// What an operator may do. Wire names `admin`, `dpo`, `viewer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything: people, rights, the queue, campaigns, feedback.
    Admin,
    /// People and their rights (consent, export, erasure, suppressions),
    /// decisions, the register; no queue, campaign or feedback actions.
    Dpo,
    /// Reads only.
    Viewer,
}

impl Role {
    /// The wire name, as in the TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Dpo => "dpo",
            Role::Viewer => "viewer",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        [Role::Admin, Role::Dpo, Role::Viewer]
            .into_iter()
            .find(|r| r.as_str() == text)
    }

    /// Record or withdraw consent, export, erase, remove a suppression.
    pub fn may_change_people(self) -> bool {
        matches!(self, Role::Admin | Role::Dpo)
    }

    /// Retry, release or drop queued copies; pause and resume campaigns
    /// (and drop their held copies); submit feedback reports.
    pub fn may_run_queue(self) -> bool {
        matches!(self, Role::Admin)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One person or system allowed in, known by the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Shown in the audit trail and in logs: letters, digits, `.`, `_`,
    /// `-`, `@`; unique among the file's operators.
    pub name: String,
    pub token_sha256: [u8; 32],
    pub role: Role,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawOperator {
    name: Option<String>,
    token_sha256: Option<String>,
    role: Option<String>,
}

/// The operators of `[[http.operator]]`, after those of the legacy
/// `admin_token_sha256` list; `None` when any entry is wrong (each error
/// recorded).
pub(super) fn check(
    c: &mut Check<'_>,
    legacy: &[String],
    raw: &[RawOperator],
) -> Option<Vec<Operator>> {
    let mut operators = Vec::new();
    let mut ok = true;
    // digest → the key that first gave it.
    let mut digests: HashMap<[u8; 32], String> = HashMap::new();
    let mut seen_digest = |c: &mut Check<'_>, key: &str, digest: [u8; 32]| -> bool {
        if let Some(first) = digests.get(&digest) {
            c.error(
                key,
                format_args!(
                    "is the same digest as {first} (give each operator a token of its own)"
                ),
            );
            return false;
        }
        digests.insert(digest, key.to_owned());
        true
    };
    for (i, hex) in legacy.iter().enumerate() {
        let key = format!("http.admin_token_sha256[{i}]");
        match sha256_hex(hex) {
            Some(digest) if seen_digest(c, &key, digest) => operators.push(Operator {
                name: LEGACY_ADMIN.to_owned(),
                token_sha256: digest,
                role: Role::Admin,
            }),
            Some(_) => ok = false,
            None => {
                c.error(&key, NOT_A_DIGEST);
                ok = false;
            }
        }
    }
    // name → index of its entry.
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, one) in raw.iter().enumerate() {
        let at = |key: &str| format!("http.operator[{i}].{key}");
        let name = c
            .required(&at("name"), &one.name, r#"add e.g. name = "alice""#)
            .and_then(|name| checked_name(c, &at("name"), name));
        let name = name.and_then(|name| {
            let lower = name.to_lowercase();
            if !legacy.is_empty() && lower == LEGACY_ADMIN {
                c.error(
                    &at("name"),
                    format_args!(
                        "{name:?} is the name of the http.admin_token_sha256 tokens (rename this operator, or move those digests into [[http.operator]] entries)"
                    ),
                );
                return None;
            }
            if let Some(first) = names.insert(lower, i) {
                c.error(
                    &at("name"),
                    format_args!(
                        "{name:?} is already the name of http.operator[{first}] (names must be unique, regardless of case)"
                    ),
                );
                return None;
            }
            Some(name)
        });
        let digest = c
            .required(
                &at("token_sha256"),
                &one.token_sha256,
                "add the SHA-256 of the operator's token, e.g. from: printf %s TOKEN | sha256sum",
            )
            .and_then(|hex| {
                let digest = sha256_hex(hex);
                if digest.is_none() {
                    c.error(&at("token_sha256"), NOT_A_DIGEST);
                }
                digest
            })
            .filter(|digest| seen_digest(c, &at("token_sha256"), *digest));
        let role = c
            .required(
                &at("role"),
                &one.role,
                r#"add role = "admin", "dpo" or "viewer""#,
            )
            .and_then(|text| {
                let role = Role::parse(text);
                if role.is_none() {
                    c.error(
                        &at("role"),
                        format_args!("{text:?} is not a role (use admin, dpo or viewer)"),
                    );
                }
                role
            });
        match (name, digest, role) {
            (Some(name), Some(token_sha256), Some(role)) => operators.push(Operator {
                name: name.to_owned(),
                token_sha256,
                role,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(operators)
}

const NOT_A_DIGEST: &str =
    "is not a SHA-256 digest (use 64 hex digits, e.g. from: printf %s TOKEN | sha256sum)";

/// A name that prints as itself in a log line and an HTML page: 1 to 64
/// letters, digits, `.`, `_`, `-` or `@`, no space or control character.
fn checked_name<'n>(c: &mut Check<'_>, key: &str, name: &'n str) -> Option<&'n str> {
    let fits = |ch: char| ch.is_alphanumeric() || "._-@".contains(ch);
    if name.is_empty() || name.chars().count() > MAX_NAME || !name.chars().all(fits) {
        c.error(
            key,
            format_args!(
                "{name:?} is not an operator name (use 1 to {MAX_NAME} letters, digits, '.', '_', '-' or '@', without spaces)"
            ),
        );
        return None;
    }
    Some(name)
}

/// 64 hex digits → 32 bytes.
fn sha256_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// The operator whose digest is the SHA-256 of `token`. Every digest is
/// compared in full, without an early exit, and the match is selected
/// by masks rather than a branch, so the time taken tells nothing about
/// which bytes or which operator matched. Digests are unique (checked
/// above), so at most one matches.
pub(super) fn by_token<'o>(operators: &'o [Operator], token: &[u8]) -> Option<&'o Operator> {
    let digest = ring::digest::digest(&ring::digest::SHA256, token);
    // 1 + the index of the match, or 0.
    let mut found = 0usize;
    for (i, operator) in operators.iter().enumerate() {
        let diff = digest
            .as_ref()
            .iter()
            .zip(&operator.token_sha256)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        let hit = usize::from(std::hint::black_box(diff) == 0);
        found |= hit.wrapping_neg() & (i + 1);
    }
    found.checked_sub(1).and_then(|i| operators.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    fn hex(token: &str) -> String {
        ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The minimal file with `http` lines added to `[http]` and `tail`
    /// (e.g. `[[http.operator]]` entries) at the end.
    fn with(http: &str, tail: &str) -> String {
        let mut text = edit(&[(
            "public_url = \"https://relay.test\"",
            &format!("public_url = \"https://relay.test\"\n{http}"),
        )]);
        text.push_str(tail);
        text
    }

    fn entry(name: &str, token: &str, role: &str) -> String {
        format!(
            "\n[[http.operator]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\n",
            hex(token)
        )
    }

    #[test]
    fn operators_are_read_with_their_roles_after_the_legacy_tokens() {
        let text = with(
            &format!("admin_token_sha256 = [\"{}\"]", hex("old")),
            &(entry("alice", "a", "dpo") + &entry("bob.viewer", "b", "viewer")),
        );
        let config = parse(&text).expect("valid");
        let got: Vec<(&str, Role)> = config
            .http
            .operators
            .iter()
            .map(|o| (o.name.as_str(), o.role))
            .collect();
        assert_eq!(
            got,
            [
                ("admin", Role::Admin),
                ("alice", Role::Dpo),
                ("bob.viewer", Role::Viewer)
            ]
        );
        let http = &config.http;
        assert_eq!(
            http.operator_by_token(b"old").map(|o| o.role),
            Some(Role::Admin)
        );
        assert_eq!(
            http.operator_by_token(b"a").map(|o| o.name.as_str()),
            Some("alice")
        );
        assert_eq!(
            http.operator_by_token(b"b").map(|o| o.name.as_str()),
            Some("bob.viewer")
        );
        assert_eq!(http.operator_by_token(b"c"), None);
        assert_eq!(http.operator_by_token(b""), None);
    }

    #[test]
    fn tokens_match_their_digest_only() {
        let d = ring::digest::digest(&ring::digest::SHA256, b"secret");
        let digest: [u8; 32] = d.as_ref().try_into().expect("32 bytes");
        let op = |name: &str, token_sha256| Operator {
            name: name.to_owned(),
            token_sha256,
            role: Role::Admin,
        };
        let ops = [op("zero", [0; 32]), op("real", digest)];
        assert_eq!(
            by_token(&ops, b"secret").map(|o| o.name.as_str()),
            Some("real")
        );
        assert_eq!(by_token(&ops[1..], b"secreT"), None);
        assert_eq!(by_token(&[], b"secret"), None);
    }

    #[test]
    fn roles_say_what_they_may_do() {
        assert!(Role::Admin.may_change_people() && Role::Admin.may_run_queue());
        assert!(Role::Dpo.may_change_people() && !Role::Dpo.may_run_queue());
        assert!(!Role::Viewer.may_change_people() && !Role::Viewer.may_run_queue());
        assert_eq!(Role::Dpo.to_string(), "dpo");
    }

    #[test]
    fn every_wrong_entry_names_its_key_and_fix() {
        let bad = "\n[[http.operator]]\nname = \"carol smith\"\ntoken_sha256 = \"abc\"\nrole = \"root\"\n\
                   \n[[http.operator]]\ntoken_sha256 = \"not-hex\"\n";
        let text = with(
            "",
            &(entry("alice", "a", "dpo") + &entry("Alice", "a", "viewer") + bad),
        );
        assert_eq!(
            errors(&text),
            [
                "consent-relay.toml: http.operator[1].name: \"Alice\" is already the name of http.operator[0] (names must be unique, regardless of case)",
                "consent-relay.toml: http.operator[1].token_sha256: is the same digest as http.operator[0].token_sha256 (give each operator a token of its own)",
                "consent-relay.toml: http.operator[2].name: \"carol smith\" is not an operator name (use 1 to 64 letters, digits, '.', '_', '-' or '@', without spaces)",
                "consent-relay.toml: http.operator[2].token_sha256: is not a SHA-256 digest (use 64 hex digits, e.g. from: printf %s TOKEN | sha256sum)",
                "consent-relay.toml: http.operator[2].role: \"root\" is not a role (use admin, dpo or viewer)",
                "consent-relay.toml: http.operator[3].name: missing (add e.g. name = \"alice\")",
                "consent-relay.toml: http.operator[3].token_sha256: is not a SHA-256 digest (use 64 hex digits, e.g. from: printf %s TOKEN | sha256sum)",
                "consent-relay.toml: http.operator[3].role: missing (add role = \"admin\", \"dpo\" or \"viewer\")",
            ]
        );
    }

    #[test]
    fn names_unfit_for_a_log_are_refused() {
        for name in ["", "a\\u0007b", "a\\nb", "a\\\"b", "<b>", &"x".repeat(65)] {
            let text = with("", &entry(name, "t", "admin"));
            let lines = errors(&text);
            assert_eq!(lines.len(), 1, "{name:?}: {lines:?}");
            assert!(
                lines[0].starts_with("consent-relay.toml: http.operator[0].name: ")
                    && lines[0].ends_with("is not an operator name (use 1 to 64 letters, digits, '.', '_', '-' or '@', without spaces)"),
                "{name:?}: {lines:?}"
            );
        }
        let text = with("", &entry("rené-dpo@example.org", "t", "dpo"));
        assert_eq!(
            parse(&text).expect("valid").http.operators[0].name,
            "rené-dpo@example.org"
        );
    }

    #[test]
    fn a_legacy_token_and_an_operator_share_neither_digest_nor_name() {
        let legacy = format!("admin_token_sha256 = [\"{}\"]", hex("t"));
        single_error(
            &with(&legacy, &entry("alice", "t", "viewer")),
            "consent-relay.toml: http.operator[0].token_sha256: is the same digest as http.admin_token_sha256[0] (give each operator a token of its own)",
        );
        single_error(
            &with(&legacy, &entry("Admin", "u", "viewer")),
            "consent-relay.toml: http.operator[0].name: \"Admin\" is the name of the http.admin_token_sha256 tokens (rename this operator, or move those digests into [[http.operator]] entries)",
        );
        // Without legacy tokens, "admin" is a name like any other.
        let config = parse(&with("", &entry("admin", "u", "viewer"))).expect("valid");
        assert_eq!(config.http.operators[0].role, Role::Viewer);
        single_error(
            &with(
                &format!("admin_token_sha256 = [\"{}\", \"{}\"]", hex("t"), hex("t")),
                "",
            ),
            "consent-relay.toml: http.admin_token_sha256[1]: is the same digest as http.admin_token_sha256[0] (give each operator a token of its own)",
        );
    }

    #[test]
    fn an_unknown_operator_key_is_refused() {
        let text = with("", &(entry("alice", "a", "dpo") + "password = \"x\"\n"));
        single_error(
            &text,
            "consent-relay.toml: http.operator[0].password: unknown key (known keys: name, token_sha256, role)",
        );
    }
}
