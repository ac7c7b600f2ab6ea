//! `[http] organisation`, `privacy_url`, `contact` and `logo_file`: who is
//! asking, as every recipient page says it. GDPR Art. 13 wants the
//! controller named, its privacy notice reachable and a contact given when
//! personal data is collected (a consent change is). Each key is
//! optional, so that a first configuration runs; a file that leaves one of
//! the three texts out gets a warning naming it.
//!
//! The logo is read here, at load, and kept in memory as a `data:` URI:
//! the pages embed it, so showing it costs no request of the visitor's
//! browser to anyone (the pages' CSP allows `img-src data:` only while a
//! logo is set).

use base64::Engine as _;
use sha2::{Digest, Sha256};
use url::Url;

use super::{BASE64, Check};

/// `http.logo_file`: largest logo, in bytes. Every page carries it (base64,
/// a third more).
pub const LOGO_MAX: usize = 64 * 1024;
/// `http.organisation`: longest name, in characters.
pub const ORGANISATION_MAX: usize = 200;

/// Who is asking, as the pages say it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controller {
    /// The controller's name (`http.organisation`).
    pub organisation: Option<String>,
    /// Its privacy notice (`http.privacy_url`), http or https.
    pub privacy_url: Option<Url>,
    /// The data-protection contact (`http.contact`): a mailbox, checked by
    /// the address parser SMTP uses, its domain in A-labels, lowercased.
    pub contact: Option<String>,
    /// `http.logo_file`, read at load.
    pub logo: Option<Logo>,
}

/// A logo file, read and checked, kept as the `data:` URI the pages embed.
#[derive(Clone, PartialEq, Eq)]
pub struct Logo {
    media_type: &'static str,
    data_uri: String,
    /// A digest of the bytes, so that a reload can tell a new file.
    digest: String,
}

impl Logo {
    /// `image/png`, `image/jpeg` or `image/svg+xml`.
    pub fn media_type(&self) -> &'static str {
        self.media_type
    }

    /// `data:image/png;base64,…`
    pub fn data_uri(&self) -> &str {
        &self.data_uri
    }

    fn of(bytes: &[u8]) -> Option<Logo> {
        let media_type = media_type(bytes)?;
        let digest = Sha256::digest(bytes);
        Some(Logo {
            media_type,
            data_uri: format!("data:{media_type};base64,{}", BASE64.encode(bytes)),
            digest: digest[..6].iter().map(|b| format!("{b:02x}")).collect(),
        })
    }
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the whole URI: logs and reload diffs stay short.
        f.debug_struct("Logo")
            .field("media_type", &self.media_type)
            .field("sha256", &self.digest)
            .finish()
    }
}

/// The image type by the file's first bytes (not its name): PNG, JPEG,
/// or SVG (UTF-8 text whose first element is `<svg`, after an optional XML
/// declaration, doctype or comments).
fn media_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        return Some("image/jpeg");
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if rest.starts_with("<svg") {
            return Some("image/svg+xml");
        }
        let skipped = if rest.starts_with("<?") {
            rest.find("?>").map(|end| end + 2)
        } else if rest.starts_with("<!--") {
            rest.find("-->").map(|end| end + 3)
        } else if rest.starts_with("<!") {
            rest.find('>').map(|end| end + 1)
        } else {
            None
        }?;
        rest = rest[skipped..].trim_start();
    }
}

/// The four keys of `[http]` this file owns, as the file gives them.
pub(super) struct RawController<'r> {
    pub organisation: &'r Option<String>,
    pub privacy_url: &'r Option<String>,
    pub contact: &'r Option<String>,
    pub logo_file: &'r Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: RawController<'_>) -> Option<Controller> {
    let organisation = raw.organisation.as_deref().map(|name| {
        let name = name.trim();
        if name.is_empty() {
            c.error(
                "http.organisation",
                "is empty (give the name of the organisation the mail comes from, e.g. \"Example Ltd\")",
            );
        } else if name.chars().count() > ORGANISATION_MAX {
            c.error(
                "http.organisation",
                format_args!("is longer than {ORGANISATION_MAX} characters (give its usual name)"),
            );
        } else {
            return Some(name.to_owned());
        }
        None
    });
    let privacy_url = raw
        .privacy_url
        .as_deref()
        .map(|u| c.web_url("http.privacy_url", u, false));
    let contact = c.mailbox("http.contact", raw.contact.as_deref(), "dpo@example.com");
    let logo = raw.logo_file.as_deref().map(|file| logo(c, file));
    if logo.is_some() && raw.organisation.is_none() {
        c.error(
            "http.logo_file",
            "needs http.organisation too (the organisation's name is the logo's text for screen readers)",
        );
    }
    let missing: Vec<&str> = [
        ("http.organisation", raw.organisation.is_none()),
        ("http.privacy_url", raw.privacy_url.is_none()),
        ("http.contact", raw.contact.is_none()),
    ]
    .into_iter()
    .filter_map(|(key, missing)| missing.then_some(key))
    .collect();
    if !missing.is_empty() {
        c.warnings.push(format!(
            "{}: {}: not set: GDPR Art. 13 wants the pages where people change their consent to \
             name the organisation, link its privacy notice and give a contact (set \
             organisation, privacy_url and contact in [http])",
            c.file,
            missing.join(", ")
        ));
    }
    Some(Controller {
        organisation: organisation.map_or(Some(None), |o| o.map(Some))?,
        privacy_url: privacy_url.map_or(Some(None), |u| u.map(Some))?,
        contact: contact?,
        logo: logo.map_or(Some(None), |l| l.map(Some))?,
    })
}

fn logo(c: &mut Check<'_>, file: &str) -> Option<Logo> {
    const KEY: &str = "http.logo_file";
    let (path, bytes) = c.read_file(KEY, file)?;
    if bytes.len() > LOGO_MAX {
        c.error(
            KEY,
            format_args!(
                "{} holds {} bytes, more than the {LOGO_MAX} a logo may have (every page \
                 carries it: use a smaller PNG or JPEG, or an SVG)",
                path.display(),
                bytes.len()
            ),
        );
        return None;
    }
    let logo = Logo::of(&bytes);
    if logo.is_none() {
        c.error(
            KEY,
            format_args!(
                "{} is not a PNG, JPEG or SVG image (convert the logo to one of these)",
                path.display()
            ),
        );
    }
    logo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::*;

    const HTTP: &str = "public_url = \"https://relay.test\"";

    fn with(keys: &str) -> String {
        // The minimal file's three texts, replaced by `keys`.
        let text = minimal();
        let start = text.find("organisation = ").expect("organisation");
        let end = text.find("[signing]").expect("signing");
        format!("{}{keys}\n\n{}", &text[..start], &text[end..])
    }

    #[test]
    fn the_three_texts_are_read_and_checked() {
        let config = parse(&minimal()).expect("valid");
        let who = &config.http.controller;
        assert_eq!(who.organisation.as_deref(), Some("Relay Test Ltd"));
        assert_eq!(
            who.privacy_url.as_ref().map(Url::as_str),
            Some("https://relay.test/privacy")
        );
        assert_eq!(who.contact.as_deref(), Some("dpo@relay.test"));
        assert!(who.logo.is_none() && config.warnings.is_empty());

        let text = with(
            "organisation = \"  Ex & Co  \"\nprivacy_url = \"http://ex.test/p?lang=fr#data\"\ncontact = \"DPO@Exämple.test\"",
        );
        let who = parse(&text).expect("valid").http.controller;
        assert_eq!(who.organisation.as_deref(), Some("Ex & Co"));
        assert_eq!(
            who.privacy_url.as_ref().map(Url::as_str),
            Some("http://ex.test/p?lang=fr#data")
        );
        assert_eq!(who.contact.as_deref(), Some("DPO@xn--exmple-cua.test"));

        assert_eq!(
            errors(&with(
                "organisation = \" \"\nprivacy_url = \"ftp://ex.test/privacy\"\ncontact = \"dpo at example\""
            )),
            [
                "consent-relay.toml: http.organisation: is empty (give the name of the organisation the mail comes from, e.g. \"Example Ltd\")",
                "consent-relay.toml: http.privacy_url: \"ftp://ex.test/privacy\" is not a usable URL (use an http:// or https:// URL)",
                "consent-relay.toml: http.contact: \"dpo at example\" is not a plain address (use e.g. \"dpo@example.com\")",
            ]
        );
        single_error(
            &with(&format!("organisation = \"{}\"", "x".repeat(201))),
            "consent-relay.toml: http.organisation: is longer than 200 characters (give its usual name)",
        );
        single_error(
            &with("contact = \"dpo@[192.0.2.1]\""),
            "consent-relay.toml: http.contact: the value is not a plain address (use e.g. \"dpo@example.com\")",
        );
    }

    #[test]
    fn leaving_them_out_is_a_warning_naming_the_keys() {
        let config = parse(&with("")).expect("valid without them");
        assert_eq!(config.http.controller, Controller::default());
        assert_eq!(
            config.warnings,
            [
                "consent-relay.toml: http.organisation, http.privacy_url, http.contact: not set: \
              GDPR Art. 13 wants the pages where people change their consent to name the \
              organisation, link its privacy notice and give a contact (set organisation, \
              privacy_url and contact in [http])"
            ]
        );
        let config = parse(&with(
            "organisation = \"Ex\"\nprivacy_url = \"https://ex.test/\"",
        ))
        .expect("valid");
        assert_eq!(config.warnings.len(), 1);
        assert!(
            config.warnings[0].starts_with("consent-relay.toml: http.contact: not set: GDPR"),
            "{:?}",
            config.warnings
        );
    }

    /// A configuration in `dir` whose `[http] logo_file` is `file`.
    fn with_logo(dir: &TempDir, file: &str, bytes: &[u8]) -> String {
        std::fs::write(dir.0.join(file), bytes).expect("write logo");
        edit(&[(
            HTTP,
            &format!("{HTTP}\nlogo_file = \"{}\"", dir.0.join(file).display()),
        )])
    }

    #[test]
    fn a_logo_is_read_sniffed_and_embedded() {
        let dir = TempDir::new("logo");
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let logo = parse(&with_logo(&dir, "logo.png", png))
            .expect("valid")
            .http
            .controller
            .logo
            .expect("logo");
        assert_eq!(logo.media_type(), "image/png");
        assert_eq!(
            logo.data_uri(),
            format!("data:image/png;base64,{}", BASE64.encode(png))
        );
        assert!(!format!("{logo:?}").contains("base64"));
        // By content, not by name.
        let svg = "\u{feff}<?xml version=\"1.0\"?>\n<!-- made by hand -->\n<!DOCTYPE svg>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        let logo = parse(&with_logo(&dir, "logo.png", svg.as_bytes()))
            .expect("valid")
            .http
            .controller
            .logo
            .expect("logo");
        assert_eq!(logo.media_type(), "image/svg+xml");
        let jpeg = [0xff, 0xd8, 0xff, 0xe0, 0, 0x10];
        let logo = parse(&with_logo(&dir, "logo.jpg", &jpeg))
            .expect("valid")
            .http
            .controller
            .logo;
        assert_eq!(logo.map(|l| l.media_type()), Some("image/jpeg"));
    }

    #[test]
    fn a_bad_logo_names_the_key_and_the_fix() {
        let dir = TempDir::new("bad-logo");
        let path = |f: &str| dir.0.join(f).display().to_string();
        single_error(
            &with_logo(&dir, "logo.gif", b"GIF89a...."),
            &format!(
                "consent-relay.toml: http.logo_file: {} is not a PNG, JPEG or SVG image (convert the logo to one of these)",
                path("logo.gif")
            ),
        );
        single_error(
            &with_logo(&dir, "page.svg", b"<html><svg/></html>"),
            &format!(
                "consent-relay.toml: http.logo_file: {} is not a PNG, JPEG or SVG image (convert the logo to one of these)",
                path("page.svg")
            ),
        );
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(LOGO_MAX + 1, 0);
        single_error(
            &with_logo(&dir, "big.png", &big),
            &format!(
                "consent-relay.toml: http.logo_file: {} holds 65537 bytes, more than the 65536 a logo may have (every page carries it: use a smaller PNG or JPEG, or an SVG)",
                path("big.png")
            ),
        );
        let missing = edit(&[(HTTP, &format!("{HTTP}\nlogo_file = \"nope.png\""))]);
        let lines = errors(&missing);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("consent-relay.toml: http.logo_file: cannot read nope.png: "),
            "{lines:?}"
        );
        // Without a name, the logo would have no text for screen readers.
        let mut text = with_logo(&dir, "logo.png", b"\x89PNG\r\n\x1a\n");
        text = text.replacen("organisation = \"Relay Test Ltd\"\n", "", 1);
        single_error(
            &text,
            "consent-relay.toml: http.logo_file: needs http.organisation too (the organisation's name is the logo's text for screen readers)",
        );
    }
}
