//! What every recipient page says around its own content: who is asking
//! (the logo, the organisation, its privacy notice and contact: `[http]
//! organisation`, `privacy_url`, `contact`, `logo_file`; GDPR Art. 13),
//! and, on a page reached by a link, which address it is about, masked
//! (`a•••@example.net`). What is not configured is left out; the page
//! works without it. Pure: HTML fragments, every value escaped.

use std::fmt::Write as _;

use super::html::{Words, escape};

/// The page's heading, then the address it is about (when it has one).
pub(super) fn heading(w: Words<'_>, title: &str) -> String {
    let mut out = format!("<h1>{title}</h1>\n");
    if let Some(address) = w.address {
        let _ = writeln!(
            out,
            "<p class=\"about\">{}</p>",
            w.get("page_address").replace("{address}", &escape(address))
        );
    }
    out
}

/// The logo, above everything, named by the organisation.
pub(super) fn logo(w: Words<'_>) -> String {
    let (Some(logo), Some(name)) = (&w.controller.logo, &w.controller.organisation) else {
        return String::new();
    };
    format!(
        "<p class=\"logo\"><img src=\"{}\" alt=\"{}\"></p>\n",
        escape(logo.data_uri()),
        escape(name)
    )
}

/// The organisation, its privacy notice and its contact; nothing when
/// none is configured.
pub(super) fn footer(w: Words<'_>) -> String {
    let who = w.controller;
    let mut lines = Vec::new();
    if let Some(name) = &who.organisation {
        lines.push(
            w.get("page_controller")
                .replace("{organisation}", &escape(name)),
        );
    }
    if let Some(url) = &who.privacy_url {
        lines.push(format!(
            "<a href=\"{}\" rel=\"noreferrer\">{}</a>",
            escape(url.as_str()),
            w.get("page_privacy_link")
        ));
    }
    if let Some(contact) = &who.contact {
        let link = format!(
            "<a href=\"mailto:{}\">{}</a>",
            escape(&mailto(contact)),
            escape(contact)
        );
        lines.push(w.get("page_contact").replace("{contact}", &link));
    }
    if lines.is_empty() {
        return String::new();
    }
    let mut out = String::from("<footer>\n");
    for line in lines {
        let _ = writeln!(out, "<p>{line}</p>");
    }
    out.push_str("</footer>\n");
    out
}

/// An address as the path of a `mailto:` URI (RFC 6068 2): every octet but
/// letters, digits and `@ . - _ +` percent-encoded.
fn mailto(address: &str) -> String {
    let mut out = String::with_capacity(address.len());
    for b in address.bytes() {
        if b.is_ascii_alphanumeric() || b"@.-_+".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Controller;
    use crate::texts::{Language, Texts};

    #[test]
    fn the_footer_says_what_is_configured_and_escapes_it() {
        let texts = Texts::default();
        let mut who = Controller::default();
        fn w<'a>(texts: &'a Texts, who: &'a Controller, lang: Language) -> Words<'a> {
            Words {
                texts,
                lang,
                controller: who,
                address: None,
            }
        }
        assert_eq!(footer(w(&texts, &who, Language::En)), "");
        assert_eq!(logo(w(&texts, &who, Language::En)), "");
        who.organisation = Some("Ex & <Co>".into());
        who.privacy_url = Some(url::Url::parse("https://ex.test/p?a=1&b=2").expect("url"));
        who.contact = Some("d'po+x@ex.test".into());
        assert_eq!(
            footer(w(&texts, &who, Language::En)),
            "<footer>\n<p>Data controller: Ex &amp; &lt;Co&gt;</p>\n\
             <p><a href=\"https://ex.test/p?a=1&amp;b=2\" rel=\"noreferrer\">Privacy notice</a></p>\n\
             <p>Questions about your data: <a href=\"mailto:d%27po+x@ex.test\">d&#39;po+x@ex.test</a></p>\n\
             </footer>\n"
        );
        let fr = footer(w(&texts, &who, Language::Fr));
        assert!(fr.contains("<p>Responsable du traitement\u{a0}: Ex &amp; &lt;Co&gt;</p>"));
        assert!(fr.contains(">Politique de confidentialité</a>"));
        assert_eq!(mailto("zoé@ex.test"), "zo%C3%A9@ex.test");
    }

    #[test]
    fn the_heading_names_the_address_when_the_page_has_one() {
        let texts = Texts::default();
        let who = Controller::default();
        let mut w = Words {
            texts: &texts,
            lang: Language::Fr,
            controller: &who,
            address: None,
        };
        assert_eq!(heading(w, "Titre"), "<h1>Titre</h1>\n");
        w.address = Some("a•••@<ex>.net");
        assert_eq!(
            heading(w, "Titre"),
            "<h1>Titre</h1>\n<p class=\"about\">Cette page concerne l&#39;adresse a•••@&lt;ex&gt;.net.</p>\n"
        );
    }
}
