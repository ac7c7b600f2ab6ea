//! DKIM signing of each recipient's copy (RFC 6376), after rewriting: the
//! key of `[dkim]` is loaded once, and every copy gets its own
//! `DKIM-Signature` header, relaxed/relaxed, RSA-SHA256 or Ed25519-SHA256.
//!
//! `h=` names every header listed in [`SIGNED_HEADERS`] twice: mail-auth
//! signs each instance present and, for a name listed more often than it
//! occurs, an empty instance. So every listed header is over-signed: a
//! `List-Unsubscribe` (or a second `From`) added in transit breaks the
//! signature instead of riding on it.
//!
//! Alignment (DMARC, RFC 7489 3.1.1, relaxed): a signature helps DMARC only
//! when `d=` and the From domain share their organizational domain (found
//! with the public suffix list). [`aligned`] decides it; the config warns
//! when `smtp.hostname` (the From of the relay's own mail) does not align,
//! and delivery logs each copy signed for a From that does not (the copy
//! is still signed: a non-aligned signature does no harm).

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;

use crate::config::DkimConfig;

/// The headers the signature covers (and over-signs).
pub const SIGNED_HEADERS: [&str; 10] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
];

/// A signer built once from `[dkim]`.
pub struct Signer {
    inner: DkimSigner<DkimKey, Done>,
    /// `d=`.
    domain: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("Signer")
    }
}

impl Signer {
    /// Reads and checks the key. Errors name `dkim.private_key` and say
    /// what is wrong; they never contain key material.
    pub fn load(cfg: &DkimConfig) -> Result<Signer, String> {
        let path = cfg.private_key.display();
        let pem = std::fs::read(&cfg.private_key)
            .map_err(|e| format!("dkim.private_key: cannot read {path}: {e}"))?;
        let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            format!("dkim.private_key: {path} holds no PEM private key ({e}); use an RSA (2048 bits or more) or Ed25519 key")
        })?;
        let key: DkimKey = match der {
            PrivateKeyDer::Pkcs1(_) => rsa(der, &path)?,
            PrivateKeyDer::Pkcs8(ref p) => {
                // openssl genpkey writes Ed25519 as PKCS#8 v1, which only the
                // "maybe unchecked" loader accepts.
                match Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der()) {
                    Ok(k) => DkimKey::Ed25519(k),
                    Err(_) => rsa(der, &path)?,
                }
            }
            _ => {
                return Err(format!(
                    "dkim.private_key: {path} is neither an RSA nor an Ed25519 key (EC keys cannot sign DKIM)"
                ));
            }
        };
        let mut headers = Vec::with_capacity(SIGNED_HEADERS.len() * 2);
        for h in SIGNED_HEADERS {
            headers.push(h);
            headers.push(h);
        }
        let mut inner = DkimSigner::from_key(key)
            .domain(cfg.domain.clone())
            .selector(cfg.selector.clone())
            .headers(headers)
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        if let Some(expire) = cfg.expire {
            inner = inner.expiration(expire.as_secs());
        }
        let signer = Signer {
            inner,
            domain: cfg.domain.clone(),
        };
        // A key that loads but cannot sign (e.g. too short for ring) is
        // found now, not at the first delivery.
        signer
            .sign(b"From: a@example.com\r\n\r\ncheck\r\n")
            .map_err(|e| format!("dkim.private_key: {path} cannot sign: {e}"))?;
        Ok(signer)
    }

    /// The copy with its `DKIM-Signature` header prepended.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, mail_auth::Error> {
        let signature = self.inner.sign(message)?;
        let mut out = Vec::with_capacity(message.len() + 1024);
        signature.write_header(&mut out);
        out.extend_from_slice(message);
        Ok(out)
    }
}

impl Signer {
    /// `d=`, the `[dkim] domain`.
    pub fn domain(&self) -> &str {
        &self.domain
    }
}

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

fn rsa(der: PrivateKeyDer<'_>, path: &std::path::Display<'_>) -> Result<DkimKey, String> {
    RsaKey::<Sha256>::from_key_der(der)
        .map(DkimKey::Rsa)
        .map_err(|e| {
            format!(
                "dkim.private_key: {path} is not a usable RSA or Ed25519 key ({e}); RSA keys need 2048 bits or more"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::{Signer, aligned, from_domain, misaligned_from, organizational_domain};
    use crate::config::DkimConfig;

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

    #[test]
    fn a_copy_from_another_domain_is_signed_and_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key");
        let path = dir.path().join("dkim.pem");
        std::fs::write(&path, key.serialize_pem()).expect("write key");
        let signer = Signer::load(&DkimConfig {
            domain: "example.com".into(),
            selector: "relay".into(),
            private_key: path,
            expire: None,
        })
        .expect("signer");
        let foreign = b"From: crm@shop.example.org\r\nSubject: x\r\n\r\nbody\r\n";
        let own = b"From: news@news.example.com\r\nSubject: x\r\n\r\nbody\r\n";
        assert_eq!(
            misaligned_from(foreign, signer.domain()).as_deref(),
            Some("shop.example.org")
        );
        assert_eq!(misaligned_from(own, signer.domain()), None);
        let signed = signer.sign(foreign).expect("still signed");
        assert!(signed.starts_with(b"DKIM-Signature:"));
    }
}
