//! The one address parser: what SMTP's `RCPT TO`, the API, the CLI and
//! imports accept as a person's mailbox (RFC 5321 4.1.2 `Mailbox`, with
//! RFC 6531's UTF-8). A dot-atom or quoted-string local part of at most 64
//! octets, `@`, a domain name (checked and mapped by IDNA, UTS #46) or an
//! address literal, at most 254 octets in all. The old routing hacks (`%`,
//! `!`, a quoted `@`) are refused, never interpreted. Pure.
//!
//! Whether non-ASCII may be used at all is the caller's: SMTP needs
//! `SMTPUTF8` for it, the API does not.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// RFC 5321 4.5.3.1.1.
pub const LOCAL_MAX: usize = 64;
/// RFC 5321 4.5.3.1.3: a path of 256 octets, less its angle brackets.
pub const ADDRESS_MAX: usize = 254;

/// Why a text is not a mailbox; the text says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("write it as name@domain")]
    NoDomain,
    #[error("% or ! routing, or an @ inside the local part, is refused")]
    Routed,
    #[error("the part before @ {0}")]
    Local(&'static str),
    #[error("the part before @ is longer than {LOCAL_MAX} octets")]
    LocalTooLong,
    #[error("the address is longer than {ADDRESS_MAX} octets")]
    TooLong,
    #[error("the domain is not a valid domain name")]
    Domain,
    #[error("the address literal is not [IPv4] or [IPv6:...]")]
    Literal,
}

/// A mailbox as written: its local part without quotes or escapes, and its
/// domain as written. `Display` gives the form to send it in: quoted only
/// where RFC 5321 needs it, case and domain as the writer had them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    local: String,
    domain: String,
    /// The domain checked: a literal in its canonical text, or a name
    /// IDNA-mapped to its A-label form, lowercased, without the final dot.
    domain_ascii: String,
}

impl Mailbox {
    /// Parses `text`: exactly a mailbox (no angle brackets, no spaces
    /// around it).
    pub fn parse(text: &str) -> Result<Mailbox, AddressError> {
        if text.len() > ADDRESS_MAX {
            return Err(AddressError::TooLong);
        }
        let (local, quoted, rest) = if let Some(q) = text.strip_prefix('"') {
            let (content, rest) = quoted_string(q)?;
            (content, true, rest)
        } else {
            match text.rfind('@') {
                Some(at) => (text[..at].to_owned(), false, &text[at..]),
                None => return Err(AddressError::NoDomain),
            }
        };
        let domain = rest.strip_prefix('@').ok_or(if quoted {
            AddressError::Local("has text after its closing quote")
        } else {
            AddressError::NoDomain
        })?;
        if local.contains(['%', '!', '@']) {
            return Err(AddressError::Routed);
        }
        if !quoted {
            check_dot_atom(&local)?;
        }
        if local.is_empty() {
            return Err(AddressError::Local("is empty"));
        }
        let m = Mailbox {
            domain_ascii: checked_domain(domain)?,
            local,
            domain: domain.to_owned(),
        };
        if m.wire_local().len() > LOCAL_MAX {
            return Err(AddressError::LocalTooLong);
        }
        Ok(m)
    }

    /// A mailbox as an SMTP parser hands it over: the local part's quotes
    /// and escapes already undone (`"a b"@x` as `a b@x`). Quoted again
    /// where needed and parsed by the same rules as [`Mailbox::parse`].
    pub fn from_unquoted(address: &str) -> Result<Mailbox, AddressError> {
        let (local, domain) = address.rsplit_once('@').ok_or(AddressError::NoDomain)?;
        if local.contains(['%', '!', '@']) {
            return Err(AddressError::Routed);
        }
        Mailbox::parse(&format!("{}@{domain}", quote_local(local)))
    }

    /// The local part, unquoted.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain as written.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The domain checked: an address literal in canonical text, or the
    /// name's A-labels, lowercased, without a final dot.
    pub fn domain_ascii(&self) -> &str {
        &self.domain_ascii
    }

    /// Whether the domain is an address literal (`[192.0.2.1]`).
    pub fn is_literal(&self) -> bool {
        self.domain_ascii.starts_with('[')
    }

    /// The local part as sent: bare when a dot-atom, else quoted.
    fn wire_local(&self) -> Cow<'_, str> {
        quote_local(&self.local)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.wire_local(), self.domain)
    }
}

/// A local part as RFC 5321 writes it: bare when it is a dot-atom, else a
/// quoted-string with `"` and `\` escaped.
pub fn quote_local(local: &str) -> Cow<'_, str> {
    if check_dot_atom(local).is_ok() {
        return Cow::Borrowed(local);
    }
    let mut q = String::with_capacity(local.len() + 2);
    q.push('"');
    for c in local.chars() {
        if matches!(c, '"' | '\\') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    Cow::Owned(q)
}

/// RFC 5321 `atext`, and RFC 6531's UTF-8 beyond ASCII.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || !c.is_ascii() && !is_control(c)
}

/// C0, DEL and C1 controls, which no part of an address may hold.
fn is_control(c: char) -> bool {
    c.is_control()
}

/// `Dot-string`: atoms of `atext` joined by single dots.
fn check_dot_atom(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::Local("is empty"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::Local(
            "has a dot at its start or end, or two in a row (quote it)",
        ));
    }
    if local.chars().any(is_control) {
        return Err(AddressError::Local("holds a control character"));
    }
    if local.chars().any(|c| c != '.' && !is_atext(c)) {
        return Err(AddressError::Local(
            "holds a space or one of ()<>[]:;@\\,\" (quote it)",
        ));
    }
    Ok(())
}

/// A `Quoted-string` after its opening quote: its content, unescaped, and
/// what follows the closing quote.
fn quoted_string(s: &str) -> Result<(String, &str), AddressError> {
    let mut content = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((content, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e)) if (' '..='~').contains(&e) => content.push(e),
                _ => {
                    return Err(AddressError::Local(
                        "has a \\ that escapes nothing printable",
                    ));
                }
            },
            c if is_control(c) => {
                return Err(AddressError::Local("holds a control character"));
            }
            c => content.push(c),
        }
    }
    Err(AddressError::Local(
        "has an opening quote without its closing one",
    ))
}

/// The domain checked, as [`Mailbox::domain_ascii`] gives it.
fn checked_domain(domain: &str) -> Result<String, AddressError> {
    if let Some(literal) = domain.strip_prefix('[') {
        let inner = literal.strip_suffix(']').ok_or(AddressError::Literal)?;
        return address_literal(inner).ok_or(AddressError::Literal);
    }
    let name = domain.strip_suffix('.').unwrap_or(domain);
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || is_control(c)) {
        return Err(AddressError::Domain);
    }
    let ascii = Uts46::new()
        .to_ascii(
            name.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Allow,
            DnsLength::Verify,
        )
        .map_err(|_| AddressError::Domain)?;
    // Mapping may turn a full stop look-alike into a final dot.
    if ascii.is_empty() || ascii.ends_with('.') {
        return Err(AddressError::Domain);
    }
    Ok(ascii.into_owned())
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 4.1.3), in canonical
/// text: the IPv6 tag and address as `Ipv6Addr` writes them.
fn address_literal(inner: &str) -> Option<String> {
    if let Some(v6) = inner
        .get(..5)
        .filter(|t| t.eq_ignore_ascii_case("IPv6:"))
        .map(|_| &inner[5..])
    {
        return v6.parse::<Ipv6Addr>().ok().map(|a| format!("[IPv6:{a}]"));
    }
    // Dotted quad only (`Ipv4Addr` refuses leading zeros and short forms).
    inner.parse::<Ipv4Addr>().ok().map(|a| format!("[{a}]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Mailbox {
        Mailbox::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn plain_and_utf8_mailboxes_parse() {
        let m = ok("Bob.Smith+tag@Example.NET");
        assert_eq!((m.local(), m.domain()), ("Bob.Smith+tag", "Example.NET"));
        assert_eq!(m.domain_ascii(), "example.net");
        assert_eq!(m.to_string(), "Bob.Smith+tag@Example.NET");
        assert_eq!(ok("zoé@exämple.net").domain_ascii(), "xn--exmple-cua.net");
        assert_eq!(ok("ann@example.net.").domain_ascii(), "example.net");
        assert_eq!(ok("ann@example.net.").to_string(), "ann@example.net.");
    }

    #[test]
    fn quotes_are_removed_where_not_needed() {
        let m = ok("\"ann\"@example.net");
        assert_eq!(m.local(), "ann");
        assert_eq!(m.to_string(), "ann@example.net");
        let spaced = ok("\"ann smith\"@example.net");
        assert_eq!(spaced.local(), "ann smith");
        assert_eq!(spaced.to_string(), "\"ann smith\"@example.net");
        let escaped = ok(r#""a\"b"@example.net"#);
        assert_eq!(escaped.local(), "a\"b");
        assert_eq!(escaped.to_string(), r#""a\"b"@example.net"#);
        assert_eq!(
            Mailbox::from_unquoted("ann smith@example.net").unwrap(),
            spaced
        );
        assert_eq!(
            Mailbox::from_unquoted("ann@example.net").unwrap(),
            ok("ann@example.net")
        );
    }

    #[test]
    fn address_literals_are_kept_as_literals() {
        assert_eq!(ok("ann@[192.0.2.1]").domain_ascii(), "[192.0.2.1]");
        assert_eq!(
            ok("ann@[ipv6:2001:DB8:0::1]").domain_ascii(),
            "[IPv6:2001:db8::1]"
        );
        assert!(ok("ann@[192.0.2.1]").is_literal());
        for bad in ["ann@[192.0.2]", "ann@[example.net]", "ann@[192.0.2.1"] {
            assert_eq!(Mailbox::parse(bad), Err(AddressError::Literal), "{bad}");
        }
    }

    #[test]
    fn what_smtp_refuses_everyone_refuses() {
        let cases: &[(&str, AddressError)] = &[
            ("a@b@c.net", AddressError::Routed),
            ("\"a@b\"@c.net", AddressError::Routed),
            ("user%other.example@relay.example", AddressError::Routed),
            ("host!user@relay.example", AddressError::Routed),
            ("ann", AddressError::NoDomain),
            ("ann@", AddressError::Domain),
            ("@example.net", AddressError::Local("is empty")),
            ("ann@exa mple.net", AddressError::Domain),
            ("ann@ex_ample.net", AddressError::Domain),
            ("ann@<script>.net", AddressError::Domain),
            ("ann@.", AddressError::Domain),
            ("ann@example..net", AddressError::Domain),
        ];
        for (text, want) in cases {
            assert_eq!(Mailbox::parse(text).as_ref(), Err(want), "{text}");
        }
        for text in [
            "<script>@x.net",
            "a nn@x.net",
            "ann.@x.net",
            ".ann@x.net",
            "a..nn@x.net",
            "a\tb@x.net",
            "a\u{7f}b@x.net",
            "a\u{85}b@x.net",
            "\"a\u{1}b\"@x.net",
            "\"ann@x.net",
            "\"ann\"x@x.net",
            "a(b)@x.net",
        ] {
            assert!(
                matches!(Mailbox::parse(text), Err(AddressError::Local(_))),
                "{text:?}: {:?}",
                Mailbox::parse(text)
            );
        }
    }

    #[test]
    fn lengths_are_bounded() {
        let local = "a".repeat(64);
        ok(&format!("{local}@x.net"));
        assert_eq!(
            Mailbox::parse(&format!("{local}a@x.net")),
            Err(AddressError::LocalTooLong)
        );
        let domain = format!(
            "{}.{}.{}.net",
            "d".repeat(63),
            "e".repeat(63),
            "f".repeat(63)
        );
        assert_eq!(
            Mailbox::parse(&format!("{local}@{domain}")),
            Err(AddressError::TooLong)
        );
        assert_eq!(
            Mailbox::parse(&format!("ann@{}.net", "d".repeat(64))),
            Err(AddressError::Domain)
        );
    }
}
