//! Who a person is (SPEC "Who a person is"): the canonical identity of a
//! mailbox, the one form consent records are stored, found and hashed by.
//! Every spelling that could reach the same mailbox has the same identity,
//! so an objection recorded under one is honoured under all:
//!
//! - the domain without its final dot, IDNA-mapped (UTS #46) and stored as
//!   U-labels, lowercased (`xn--exmple-cua.net` and `EXÄMPLE.net` are
//!   `exämple.net`); address literals stay literals (`[192.0.2.1]`,
//!   `[IPv6:2001:db8::1]`);
//! - the local part without quotes where RFC 5321 does not need them,
//!   NFC, then compatibility case folding with default-ignorable code
//!   points removed (NFKC_Casefold: `ＡＮＮ`, `Ann` and `ann` are one).
//!
//! The identity is for finding the person only: mail goes to the address
//! as it was written ([`Identity::spelling`]). Pure.

use std::borrow::Cow;

use icu_casemap::CaseMapper;
use icu_normalizer::{ComposingNormalizer, DecomposingNormalizer};
use icu_properties::CodePointSetData;
use icu_properties::props::DefaultIgnorableCodePoint;
use idna::uts46::{AsciiDenyList, Hyphens, Uts46};

use crate::mail::address::{AddressError, Mailbox, quote_local};

/// One mailbox's identity, with the spelling it was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    canonical: String,
    spelling: String,
    /// Other forms an erased person's keyed hash may have been made from
    /// (see [`Identity::hash_forms`]).
    older: Vec<String>,
}

impl Identity {
    /// The identity of an address as a person or a CRM typed it (API, CLI,
    /// imports): blanks around it and one pair of angle brackets are
    /// dropped; what is left must be a mailbox ([`Mailbox::parse`]).
    pub fn of(text: &str) -> Result<Identity, AddressError> {
        let t = text.trim();
        let t = t
            .strip_prefix('<')
            .and_then(|x| x.strip_suffix('>'))
            .unwrap_or(t);
        Ok(Identity::of_mailbox(&Mailbox::parse(t)?, t))
    }

    /// The identity of a parsed mailbox; `written` is the text it was
    /// parsed from (for [`Identity::hash_forms`]).
    pub fn of_mailbox(m: &Mailbox, written: &str) -> Identity {
        let local = fold_local(m.local());
        let local = quote_local(&local);
        let canonical = format!("{local}@{}", canonical_domain(m));
        let spelling = m.to_string();
        let mut older = Vec::new();
        for form in [
            format!("{local}@{}", m.domain_ascii()),
            legacy_form(written),
            legacy_form(&spelling),
            legacy_form(&format!("{}@{}", m.local(), m.domain())),
        ] {
            if form != canonical && !older.contains(&form) {
                older.push(form);
            }
        }
        // Stores before these rules kept the final dot as written: a
        // person erased as `ann@example.net.` is the mailbox mailed as
        // `ann@example.net`.
        if !m.is_literal() {
            let dotted: Vec<String> = std::iter::once(&canonical)
                .chain(&older)
                .filter(|form| !form.ends_with('.'))
                .map(|form| format!("{form}."))
                .collect();
            for form in dotted {
                if !older.contains(&form) {
                    older.push(form);
                }
            }
        }
        Identity {
            canonical,
            spelling,
            older,
        }
    }

    /// The form consent records are stored and compared in.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The address as written (quotes only where needed): where mail goes.
    pub fn spelling(&self) -> &str {
        &self.spelling
    }

    /// What an erased person's keyed hash may have been made from: the
    /// canonical form (every erasure since these rules), then the forms
    /// stores held before them (trimmed and lowercased as written, see
    /// [`legacy_form`]) and the A-label spelling of the domain, each also
    /// with the final dot those stores kept. A lookup checks them all: the
    /// objection wins.
    pub fn hash_forms(&self) -> Vec<&str> {
        std::iter::once(self.canonical.as_str())
            .chain(self.older.iter().map(String::as_str))
            .collect()
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.canonical)
    }
}

/// The form addresses were stored and hashed in before these rules:
/// trimmed, without angle brackets, lowercased. Only for reading what such
/// stores hold (the keyed hashes of people erased then, the merge of their
/// subjects); never for a new record.
pub fn legacy_form(address: &str) -> String {
    address
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase()
}

/// The domain as stored: a literal as the parser wrote it, a name as
/// U-labels (lowercase: the A-labels it comes from are).
fn canonical_domain(m: &Mailbox) -> String {
    if m.is_literal() {
        return m.domain_ascii().to_owned();
    }
    let (unicode, result) = Uts46::new().to_unicode(
        m.domain_ascii().as_bytes(),
        AsciiDenyList::EMPTY,
        Hyphens::Allow,
    );
    match result {
        Ok(()) => unicode.into_owned(),
        // Only for an A-label that decodes to nothing valid, which the
        // parser refused already: keep the checked ASCII form.
        Err(_) => m.domain_ascii().to_owned(),
    }
}

/// NFC, then NFKC_Casefold: NFKD, full case folding, default-ignorable
/// code points removed, NFKC; repeated until it holds (folding can expose
/// another fold, e.g. after a compatibility decomposition).
fn fold_local(local: &str) -> String {
    let nfc = ComposingNormalizer::new_nfc().normalize(local);
    let mut s = nfc.into_owned();
    for _ in 0..3 {
        let next = nfkc_casefold(&s);
        if next == s {
            break;
        }
        s = next;
    }
    s
}

fn nfkc_casefold(s: &str) -> String {
    let decomposed = DecomposingNormalizer::new_nfkd().normalize(s);
    let folded: Cow<'_, str> = CaseMapper::new().fold_string(&decomposed);
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let kept: String = folded.chars().filter(|c| !ignorable.contains(*c)).collect();
    ComposingNormalizer::new_nfkc()
        .normalize(&kept)
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> String {
        Identity::of(text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .canonical
    }

    #[test]
    fn every_spelling_of_the_issue_is_one_person() {
        let zoe = id("zoé@exämple.net");
        assert_eq!(zoe, "zoé@exämple.net");
        for s in [
            "zoé@xn--exmple-cua.net",
            "zoe\u{301}@exa\u{308}mple.net",
            "ｚｏé@exämple.net",
            "ZOÉ@EXÄMPLE.NET",
            "Zoé@XN--EXMPLE-CUA.NET.",
            "\"zoé\"@exämple.net",
            " <zoé@exämple.net> ",
        ] {
            assert_eq!(id(s), zoe, "{s:?}");
        }
        let ann = id("ann@example.net");
        for s in [
            "ann@example.net.",
            "ANN@Example.NET",
            "\"ann\"@example.net",
            "\"a\\nn\"@example.net",
            "a\u{ad}nn@example.net",
            "ＡＮＮ@example.net",
        ] {
            assert_eq!(id(s), ann, "{s:?}");
        }
    }

    #[test]
    fn the_fold_is_full_case_folding() {
        assert_eq!(id("STRASSE@example.de"), id("straße@example.de"));
        assert_eq!(id("ΣΊΣΥΦΟΣ@example.gr"), id("σίσυφος@example.gr"));
        assert_eq!(id("ﬁ@example.net"), "fi@example.net");
    }

    #[test]
    fn distinct_mailboxes_stay_distinct() {
        assert_ne!(id("ann@example.net"), id("anne@example.net"));
        assert_ne!(id("ann@example.net"), id("ann@example.org"));
        assert_ne!(id("ann.smith@example.net"), id("annsmith@example.net"));
        assert_ne!(id("ann+news@example.net"), id("ann@example.net"));
    }

    #[test]
    fn quotes_stay_where_needed_and_literals_stay_literals() {
        assert_eq!(id("\"Ann Smith\"@example.net"), "\"ann smith\"@example.net");
        assert_eq!(id("ann@[192.0.2.1]"), "ann@[192.0.2.1]");
        assert_eq!(id("Ann@[IPv6:2001:DB8::1]"), "ann@[IPv6:2001:db8::1]");
    }

    #[test]
    fn the_spelling_is_kept_for_delivery() {
        let i = Identity::of("Bob.Smith@Example.NET").unwrap();
        assert_eq!(i.canonical(), "bob.smith@example.net");
        assert_eq!(i.spelling(), "Bob.Smith@Example.NET");
        assert_eq!(
            Identity::of("\"bob\"@x.net").unwrap().spelling(),
            "bob@x.net"
        );
    }

    #[test]
    fn older_forms_cover_stores_from_before() {
        let i = Identity::of("Zoé@XN--EXMPLE-CUA.NET").unwrap();
        let forms = i.hash_forms();
        assert_eq!(forms[0], "zoé@exämple.net");
        assert!(forms.contains(&"zoé@xn--exmple-cua.net"));
        assert_eq!(
            Identity::of("ann@example.net").unwrap().hash_forms(),
            ["ann@example.net", "ann@example.net."]
        );
        assert!(forms.contains(&"zoé@xn--exmple-cua.net."));
        assert_eq!(
            Identity::of("ann@[192.0.2.1]").unwrap().hash_forms(),
            ["ann@[192.0.2.1]"]
        );
        let quoted = Identity::of("\"Ann\"@example.net").unwrap();
        assert!(quoted.hash_forms().contains(&"\"ann\"@example.net"));
        assert_eq!(legacy_form(" <Ann@Example.COM> "), "ann@example.com");
    }

    #[test]
    fn the_identity_is_stable() {
        for s in ["zoé@exämple.net", "\"a b\"@x.net", "ǅ@x.net", "ᾈ@x.net"] {
            let once = id(s);
            assert_eq!(id(&once), once, "{s:?}");
        }
    }
}
