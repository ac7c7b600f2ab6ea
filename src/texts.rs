//! Every text a recipient reads, in English and French: the footer added to
//! mail and the words of the pages. Each can be overridden in the TOML file
//! (`[texts.en]`, `[texts.fr]`); the version of the texts in force is kept
//! as proof with every consent change made on a page. Pure.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

/// A language the relay speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Language {
    En,
    Fr,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Fr];

    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    pub fn parse(s: &str) -> Option<Language> {
        match s {
            "en" => Some(Language::En),
            "fr" => Some(Language::Fr),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header value (RFC 9110
    /// 12.5.4: quality values honoured, `fr-CA` counts as `fr`), or `default`.
    pub fn negotiate(accept: Option<&str>, default: Language) -> Language {
        let Some(accept) = accept else {
            return default;
        };
        let mut best: Option<(f32, Language)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            if let Some(lang) = Language::parse(primary)
                && q > 0.0
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(default, |(_, l)| l)
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// (key, English, French). `{url}`, `{label}` and the like are filled in by
/// the code that uses the text; HTML texts are HTML.
const DEFAULTS: &[(&str, &str, &str)] = &[
    (
        "footer_text",
        "You receive this message from us. To choose what you receive, or to unsubscribe: {url}",
        "Vous recevez ce message de notre part. Pour choisir ce que vous recevez, ou vous désabonner : {url}",
    ),
    (
        "footer_html",
        "<p style=\"font-size:12px;color:#555\">You receive this message from us. <a href=\"{url}\">Choose what you receive, or unsubscribe</a>.</p>",
        "<p style=\"font-size:12px;color:#555\">Vous recevez ce message de notre part. <a href=\"{url}\">Choisir ce que vous recevez, ou vous désabonner</a>.</p>",
    ),
];

/// The keys that `[texts.en]` and `[texts.fr]` may override.
pub fn keys() -> impl Iterator<Item = &'static str> {
    DEFAULTS.iter().map(|(k, _, _)| *k)
}

/// The texts in force: defaults, with the configuration's overrides.
#[derive(Debug, Clone)]
pub struct Texts {
    pub default_language: Language,
    overrides: BTreeMap<(Language, String), String>,
    version: String,
}

impl Default for Texts {
    fn default() -> Self {
        Texts::new(Language::En, BTreeMap::new())
    }
}

impl Texts {
    /// `overrides` keys must be among [`keys`] (the configuration checks).
    pub fn new(
        default_language: Language,
        overrides: BTreeMap<(Language, String), String>,
    ) -> Texts {
        // The version names exactly the words shown: proof of what a person
        // read when they changed their consent.
        let mut h = Sha256::new();
        for (k, en, fr) in DEFAULTS {
            h.update(k.as_bytes());
            h.update(en.as_bytes());
            h.update(fr.as_bytes());
        }
        for ((lang, key), value) in &overrides {
            h.update(lang.code().as_bytes());
            h.update(key.as_bytes());
            h.update(value.as_bytes());
        }
        let digest = h.finalize();
        let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Texts {
            default_language,
            overrides,
            version,
        }
    }

    /// The text for `key` in `lang`; empty for an unknown key.
    pub fn get(&self, lang: Language, key: &str) -> &str {
        if let Some(v) = self.overrides.get(&(lang, key.to_owned())) {
            return v;
        }
        DEFAULTS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, en, fr)| match lang {
                Language::En => en,
                Language::Fr => fr,
            })
    }

    /// A short digest of every text in force (defaults and overrides).
    pub fn version(&self) -> &str {
        &self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_honours_quality_and_regions() {
        let en = Language::En;
        assert_eq!(Language::negotiate(None, en), Language::En);
        assert_eq!(
            Language::negotiate(Some("fr-CA,fr;q=0.9,en;q=0.8"), en),
            Language::Fr
        );
        assert_eq!(
            Language::negotiate(Some("en;q=0.5, fr;q=0.9"), en),
            Language::Fr
        );
        assert_eq!(
            Language::negotiate(Some("de, it"), Language::Fr),
            Language::Fr
        );
        assert_eq!(Language::negotiate(Some("fr;q=0"), en), Language::En);
        assert_eq!(
            Language::negotiate(Some("garbage;;;q=x,,"), en),
            Language::En
        );
    }

    #[test]
    fn overrides_win_and_change_the_version() {
        let plain = Texts::default();
        let mut o = BTreeMap::new();
        o.insert(
            (Language::Fr, "footer_text".to_owned()),
            "Se désabonner : {url}".to_owned(),
        );
        let custom = Texts::new(Language::Fr, o);
        assert_eq!(
            custom.get(Language::Fr, "footer_text"),
            "Se désabonner : {url}"
        );
        assert_eq!(
            custom.get(Language::En, "footer_text"),
            plain.get(Language::En, "footer_text")
        );
        assert_ne!(plain.version(), custom.version());
        assert_eq!(plain.get(Language::En, "no-such-key"), "");
    }

    #[test]
    fn every_default_has_both_languages_and_a_url() {
        for (k, en, fr) in DEFAULTS {
            assert!(!en.is_empty() && !fr.is_empty(), "{k}");
            if k.starts_with("footer") {
                assert!(en.contains("{url}") && fr.contains("{url}"), "{k}");
            }
        }
    }
}
