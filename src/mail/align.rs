//! DMARC alignment (RFC 7489 3.1.1, relaxed): whether a DKIM `d=` domain
//! and a From domain share their organizational domain, found with the
//! public suffix list. Pure: reads header bytes and names, no keys, no IO.
//! The config warns with it when `smtp.hostname` does not align with
//! `dkim.domain`; delivery logs each message whose From does not.

/// The message's From domain when it does not align with `dkim_domain`
/// (relaxed); `None` when it aligns or there is no From address.
pub fn misaligned_from(message: &[u8], dkim_domain: &str) -> Option<String> {
    from_domain(message).filter(|from| !aligned(from, dkim_domain))
}

/// The organizational domain: the registrable domain by the public suffix
/// list (`news.shop.example.co.uk` → `example.co.uk`), lower case; the
/// name itself when the list does not know it.
pub fn organizational_domain(domain: &str) -> String {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    match psl::domain_str(&d) {
        Some(org) => org.to_owned(),
        None => d,
    }
}

/// DMARC relaxed alignment: both names have the same organizational domain.
pub fn aligned(from_domain: &str, dkim_domain: &str) -> bool {
    organizational_domain(from_domain) == organizational_domain(dkim_domain)
}

/// The domain of the message's first From address.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let address = parsed.from()?.first()?.address()?;
    let (_, domain) = address.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{aligned, from_domain, organizational_domain};

    #[test]
    fn organizational_domains_follow_the_public_suffix_list() {
        assert_eq!(
            organizational_domain("news.shop.example.co.uk"),
            "example.co.uk"
        );
        assert_eq!(organizational_domain("Relay.Example.COM."), "example.com");
        assert_eq!(organizational_domain("example.com"), "example.com");
    }

    #[test]
    fn relaxed_alignment() {
        assert!(aligned("news.example.com", "example.com"));
        assert!(aligned("example.com", "mail.example.com"));
        assert!(aligned("a.example.co.uk", "b.example.co.uk"));
        assert!(!aligned("example.org", "example.com"));
        // Two registrations under one public suffix do not align.
        assert!(!aligned("shop-a.co.uk", "shop-b.co.uk"));
    }

    #[test]
    fn from_domain_reads_the_from_header() {
        let m = b"Subject: x\r\nFrom: \"Shop\" <News@Shop.Example>\r\n\r\nbody\r\n";
        assert_eq!(from_domain(m).as_deref(), Some("Shop.Example"));
        assert_eq!(from_domain(b"Subject: no from\r\n\r\nbody\r\n"), None);
    }
}
