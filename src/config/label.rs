//! A campaign's `label`, the name recipients see: one text for every
//! language (`label = "Newsletter"`) or one per language (`label = { en =
//! "Newsletter", fr = "la Lettre d'information" }`), and which one a
//! visitor gets.

use std::collections::BTreeMap;

use crate::texts::Language;

use super::Check;

/// Longest label, in characters: a name, not a paragraph.
pub const LABEL_MAX: usize = 200;

/// The name of a campaign as recipients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// The same text in every language.
    One(String),
    /// A text per language, at least one.
    PerLanguage(BTreeMap<Language, String>),
}

impl Label {
    /// The label in `lang`; else in `fallback`; else the first one given
    /// (English before French).
    pub fn get(&self, lang: Language, fallback: Language) -> &str {
        match self {
            Label::One(text) => text,
            Label::PerLanguage(by) => by
                .get(&lang)
                .or_else(|| by.get(&fallback))
                .or_else(|| by.values().next())
                .map_or("", String::as_str),
        }
    }

    /// Whether the file gives it per language.
    pub fn is_per_language(&self) -> bool {
        matches!(self, Label::PerLanguage(_))
    }
}

impl From<&str> for Label {
    fn from(text: &str) -> Label {
        Label::One(text.to_owned())
    }
}

const EXAMPLE: &str =
    r#"e.g. label = "Newsletter" or label = { en = "Newsletter", fr = "Lettre d'information" }"#;

/// `campaign[i].label` (at `key`): a text, or a table of texts by language.
pub(super) fn check(c: &mut Check<'_>, key: &str, raw: &Option<toml::Value>) -> Option<Label> {
    let Some(raw) = raw else {
        c.error(
            key,
            r#"missing (add the name recipients see, e.g. label = "Newsletter")"#,
        );
        return None;
    };
    match raw {
        toml::Value::String(text) => text_of(c, key, text).map(|t| Label::One(t.to_owned())),
        toml::Value::Table(table) if table.is_empty() => {
            c.error(
                key,
                format_args!("is an empty table (give a text per language, {EXAMPLE})"),
            );
            None
        }
        toml::Value::Table(table) => {
            let mut by = BTreeMap::new();
            for (lang, value) in table {
                let at = format!("{key}.{lang}");
                let lang = c.language(&at, lang);
                let text = match value {
                    toml::Value::String(text) => text_of(c, &at, text),
                    _ => {
                        c.error(&at, format_args!("must be a text ({EXAMPLE})"));
                        None
                    }
                };
                if let (Some(lang), Some(text)) = (lang, text) {
                    by.insert(lang, text.to_owned());
                }
            }
            (by.len() == table.len()).then_some(Label::PerLanguage(by))
        }
        _ => {
            c.error(
                key,
                format_args!("must be a text or a table of texts by language ({EXAMPLE})"),
            );
            None
        }
    }
}

fn text_of<'t>(c: &mut Check<'_>, key: &str, text: &'t str) -> Option<&'t str> {
    if text.trim().is_empty() {
        c.error(
            key,
            "is empty (give the name recipients see, e.g. \"Newsletter\")",
        );
        None
    } else if text.chars().count() > LABEL_MAX {
        c.error(
            key,
            format_args!("is longer than {LABEL_MAX} characters (give a short name)"),
        );
        None
    } else {
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    fn with_label(label: &str) -> String {
        edit(&[("label = \"News\"", &format!("label = {label}"))])
    }

    #[test]
    fn a_label_is_one_text_or_one_per_language() {
        let config = parse(&minimal()).expect("valid");
        let news = &config.campaigns[0].label;
        assert_eq!(news, &Label::One("News".into()));
        assert_eq!(news.get(Language::Fr, Language::En), "News");

        let text = with_label(r#"{ en = "Newsletter", fr = "la Lettre d'information" }"#);
        let config = parse(&text).expect("valid");
        let label = &config.campaigns[0].label;
        assert!(label.is_per_language());
        assert_eq!(label.get(Language::En, Language::Fr), "Newsletter");
        assert_eq!(
            label.get(Language::Fr, Language::En),
            "la Lettre d'information"
        );

        // A language without a label falls back, then to the first given.
        let text = with_label(r#"{ fr = "Lettre" }"#);
        let label = parse(&text).expect("valid").campaigns[0].label.clone();
        assert_eq!(label.get(Language::En, Language::En), "Lettre");
        let both = Label::PerLanguage(BTreeMap::from([
            (Language::En, "News".to_owned()),
            (Language::Fr, "Lettre".to_owned()),
        ]));
        assert_eq!(both.get(Language::Fr, Language::En), "Lettre");
    }

    #[test]
    fn bad_labels_name_the_key_and_the_fix() {
        assert_eq!(
            errors(&with_label(r#"{ de = "Rundbrief", fr = "", en = 3 }"#)),
            [
                "consent-relay.toml: campaign[0].label.de: \"de\" is not a language (use \"en\" or \"fr\")",
                "consent-relay.toml: campaign[0].label.en: must be a text (e.g. label = \"Newsletter\" or label = { en = \"Newsletter\", fr = \"Lettre d'information\" })",
                "consent-relay.toml: campaign[0].label.fr: is empty (give the name recipients see, e.g. \"Newsletter\")",
            ]
        );
        single_error(
            &with_label("{}"),
            "consent-relay.toml: campaign[0].label: is an empty table (give a text per language, e.g. label = \"Newsletter\" or label = { en = \"Newsletter\", fr = \"Lettre d'information\" })",
        );
        single_error(
            &with_label("3"),
            "consent-relay.toml: campaign[0].label: must be a text or a table of texts by language (e.g. label = \"Newsletter\" or label = { en = \"Newsletter\", fr = \"Lettre d'information\" })",
        );
        single_error(
            &with_label(&format!("\"{}\"", "x".repeat(201))),
            "consent-relay.toml: campaign[0].label: is longer than 200 characters (give a short name)",
        );
        single_error(
            &edit(&[("label = \"News\"\n", "")]),
            "consent-relay.toml: campaign[0].label: missing (add the name recipients see, e.g. label = \"Newsletter\")",
        );
    }
}
