//! TOML text to the raw structs: a syntax or shape error (unknown key,
//! wrong type) becomes one message line naming the key, or the line and
//! column when no key can be named.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::RawConfig;

/// TOML text → raw structs. A syntax or shape error (unknown key, wrong type)
/// stops here and becomes one message line, naming the key when it can.
pub(super) fn deserialize(file: &str, text: &str) -> Result<RawConfig, String> {
    let tree = DeTable::parse(text).map_err(|e| at_line(file, text, &e))?;
    toml::from_str::<RawConfig>(text).map_err(|e| {
        let key = e.span().and_then(|span| key_at(tree.get_ref(), &span, ""));
        match key {
            Some(key) => format!("{file}: {key}: {}", describe(e.message())),
            None => at_line(file, text, &e),
        }
    })
}

/// `FILE: line L, column C: message` for an error that names no key.
fn at_line(file: &str, text: &str, e: &toml::de::Error) -> String {
    let message = describe(e.message());
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{file}: line {line}, column {column}: {message}")
        }
        None => format!("{file}: {message}"),
    }
}

/// Serde's wording made to read like the other messages.
fn describe(message: &str) -> String {
    let mut message = message
        .trim()
        .replace('\n', "; ")
        .replace("expected i64", "expected an integer");
    if let Some(at) = message.find("expected struct Raw") {
        message.truncate(at);
        message.push_str("expected a table");
    }
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message;
    };
    let known = rest
        .split_once(", expected ")
        .map_or("", |(_, known)| known);
    let known = known
        .trim_start_matches("one of ")
        .replace(" or ", ", ")
        .replace('`', "");
    format!("unknown key (known keys: {known})")
}

/// The dotted path (`smtp.lisen`, `campaign[1].policy`) of the key or value
/// that `span` points at, if any.
fn key_at(table: &DeTable<'_>, span: &Range<usize>, prefix: &str) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        let path = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        if key.span() == *span || value.span() == *span {
            Some(path)
        } else {
            value_key_at(value.get_ref(), span, &path)
        }
    })
}

fn value_key_at(value: &DeValue<'_>, span: &Range<usize>, path: &str) -> Option<String> {
    match value {
        DeValue::Table(table) => key_at(table, span, path),
        DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let path = format!("{path}[{i}]");
            if item.span() == *span {
                Some(path)
            } else {
                value_key_at(item.get_ref(), span, &path)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let lines = errors(&edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nlisen = \"x\"",
        )]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "consent-relay.toml: smtp.lisen: unknown key (known keys: listen, listen_tls, hostname, allowed_networks,"
            ),
            "{}",
            lines[0]
        );
        assert!(
            lines[0].contains(" error_limit,") && lines[0].ends_with(')'),
            "{}",
            lines[0]
        );

        let text = format!(
            "{}\n[[campaign]]\nid = \"b\"\nlabel = \"B\"\npolcy = \"opt-out\"\n",
            minimal()
        );
        let lines = errors(&text);
        assert!(
            lines[0].starts_with(
                "consent-relay.toml: campaign[1].polcy: unknown key (known keys: id, label, policy,"
            ),
            "{lines:?}"
        );

        let lines = errors(&format!("{}\n[smtps]\nlisten = \"x\"\n", minimal()));
        assert!(
            lines[0].starts_with(
                "consent-relay.toml: smtps: unknown key (known keys: smtp, upstream, http,"
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let lines = errors(&edit(&[(
            "hostname = \"relay.test\"",
            "hostname = \"relay.test\"\nmax_recipients = \"many\"",
        )]));
        assert_eq!(
            lines,
            [
                "consent-relay.toml: smtp.max_recipients: invalid type: string \"many\", expected an integer"
            ]
        );
        let lines = errors(&format!("erasure = true\n{}", minimal()));
        assert_eq!(
            lines,
            ["consent-relay.toml: erasure: invalid type: boolean `true`, expected a table"]
        );
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let lines = errors(&edit(&[(
            "hostname = \"relay.test\"",
            "hostname = relay.test",
        )]));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("consent-relay.toml: line 4, column 12: "),
            "{lines:?}"
        );
    }
}
