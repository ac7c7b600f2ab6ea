//! Masking a recipient's address in text the relay keeps or logs about its
//! delivery: an upstream's reply quotes the address ("550 5.1.1
//! <erin@example.net>: Recipient address rejected"), and that reply is
//! stored, listed by `consent-relay queue` and logged. The rest of the
//! reply stays: it is the operator's diagnostic.
//!
//! And showing a person which address a page is about without spelling it
//! out to whoever holds the link: [`partial`] (`a•••@example.net`).

use std::borrow::Cow;

/// What replaces the address (with its angle brackets, when it had them).
pub const MASK: &str = "<recipient>";

/// `text` with every occurrence of `address` replaced by [`MASK`]:
/// compared character by character without case (so the spelling sent,
/// its lowercase form and any other case of it match); `<address>` becomes
/// [`MASK`] too, not `<<recipient>>`. Borrowed when nothing matched.
pub fn mask_address<'a>(text: &'a str, address: &str) -> Cow<'a, str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    if address.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    // Bytes of `text` copied to `out` so far.
    let mut copied = 0;
    let mut at = 0;
    while at < text.len() {
        match match_len(&text[at..], address) {
            Some(len) => {
                let (mut start, mut end) = (at, at + len);
                if text[..start].ends_with('<') && text[end..].starts_with('>') {
                    start -= 1;
                    end += 1;
                }
                out.push_str(&text[copied..start]);
                out.push_str(MASK);
                copied = end;
                at = end;
            }
            None => at += text[at..].chars().next().map_or(1, char::len_utf8),
        }
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// What a page shows of `address`: the first character of its local part,
/// `•••` (whatever the length of the rest), then `@` and the domain.
/// Quotes around a local part are not characters of it.
pub fn partial(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let first = local.trim_start_matches('"').chars().next().unwrap_or('•');
    format!("{first}•••@{domain}")
}

/// The length in bytes of the prefix of `text` that is `address` but for
/// case, if it starts with it.
fn match_len(text: &str, address: &str) -> Option<usize> {
    let mut chars = text.char_indices();
    for want in address.chars() {
        let (_, got) = chars.next()?;
        if got != want && !got.to_lowercase().eq(want.to_lowercase()) {
            return None;
        }
    }
    Some(chars.next().map_or(text.len(), |(i, _)| i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_reply_keeps_its_diagnostic() {
        let reply = "550 5.1.1 <erin@example.net>: Recipient address rejected: User unknown in local recipient table";
        assert_eq!(
            mask_address(reply, "erin@example.net"),
            "550 5.1.1 <recipient>: Recipient address rejected: User unknown in local recipient table"
        );
    }

    #[test]
    fn every_case_and_bare_forms_are_masked() {
        let reply = "550 5.1.1 Erin@Example.NET unknown; erin@example.net, ERIN@EXAMPLE.NET.";
        assert_eq!(
            mask_address(reply, "erin@example.net"),
            "550 5.1.1 <recipient> unknown; <recipient>, <recipient>."
        );
        assert_eq!(
            mask_address("550 <Zoé@Exämple.net> unknown", "zoé@exämple.net"),
            "550 <recipient> unknown"
        );
        assert_eq!(
            mask_address("550 <zoé@exämple.net>", "<ZOÉ@EXÄMPLE.NET>"),
            "550 <recipient>"
        );
    }

    #[test]
    fn a_page_shows_the_first_character_and_the_domain() {
        assert_eq!(partial("ann@example.net"), "a•••@example.net");
        assert_eq!(partial("a@example.net"), "a•••@example.net");
        assert_eq!(partial("zoé.x@exämple.net"), "z•••@exämple.net");
        assert_eq!(partial("Élodie@example.net"), "É•••@example.net");
        assert_eq!(partial("\"a b\"@example.net"), "a•••@example.net");
        assert_eq!(partial("x@[192.0.2.1]"), "x•••@[192.0.2.1]");
    }

    #[test]
    fn text_without_the_address_is_borrowed() {
        assert!(matches!(
            mask_address("250 2.0.0 ok", "erin@example.net"),
            Cow::Borrowed("250 2.0.0 ok")
        ));
        assert!(matches!(mask_address("250 ok", ""), Cow::Borrowed(_)));
        assert_eq!(
            mask_address("erin@example", "erin@example.net"),
            "erin@example"
        );
    }
}
