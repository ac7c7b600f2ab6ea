//! `[texts]`: the default language of footers and pages, and the file's
//! overrides of the built-in texts (see [`crate::texts`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Check;

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTexts {
    default_language: Option<String>,
    en: BTreeMap<String, String>,
    fr: BTreeMap<String, String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawTexts) -> Option<crate::texts::Texts> {
    use crate::texts::{Language, Texts, keys};
    let default_language = match raw.default_language.as_deref() {
        None => Some(Language::En),
        Some(v) => c.language("texts.default_language", v),
    };
    let mut overrides = BTreeMap::new();
    let mut ok = true;
    for (lang, table) in [(Language::En, &raw.en), (Language::Fr, &raw.fr)] {
        for (key, value) in table {
            let at = format!("texts.{lang}.{key}");
            if !keys().any(|k| k == key) {
                let known: Vec<&str> = keys().collect();
                c.error(
                    &at,
                    format_args!("unknown text (known texts: {})", known.join(", ")),
                );
                ok = false;
            } else if key.starts_with("footer") && !value.contains("{url}") {
                c.error(&at, "must contain {url}, where the preferences link goes");
                ok = false;
            } else {
                overrides.insert((lang, key.clone()), value.clone());
            }
        }
    }
    ok.then_some(())?;
    Some(Texts::new(default_language?, overrides))
}
