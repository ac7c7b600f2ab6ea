//! DKIM signing of each recipient's copy (RFC 6376), after rewriting: the
//! key of `[dkim]` is loaded once, and every copy gets its own
//! `DKIM-Signature` header, relaxed/relaxed, RSA-SHA256 or Ed25519-SHA256.
//!
//! `h=` names every header listed in [`SIGNED_HEADERS`] twice: mail-auth
//! signs each instance present and, for a name listed more often than it
//! occurs, an empty instance. So every listed header is over-signed: a
//! `List-Unsubscribe` (or a second `From`) added in transit breaks the
//! signature instead of riding on it. The feedback headers are listed too
//! (RFC 9477 3.2 requires `CFBL-Address` and `CFBL-Feedback-ID` to be
//! signed; `Feedback-ID` and the relay's delivery header name the copy in
//! what comes back, so nobody on the way may add or change one).
//!
//! Alignment (DMARC, RFC 7489 3.1.1, relaxed): a signature helps DMARC only
//! when `d=` and the From domain share their organizational domain (found
//! with the public suffix list). [`crate::mail::align::aligned`] decides it; the config warns
//! when `smtp.hostname` (the From of the relay's own mail) does not align,
//! and delivery logs each copy signed for a From that does not (the copy
//! is still signed: a non-aligned signature does no harm).

use mail_auth::common::crypto::DkimKey;
use mail_auth::common::headers::HeaderWriter as _;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};

use crate::config::DkimConfig;
use crate::rewrite::FEEDBACK_FIELDS;

/// The headers the signature covers (and over-signs), with the feedback
/// headers ([`FEEDBACK_FIELDS`]).
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
    /// Reads the key ([`crate::config::load::dkim_key`], which checks it
    /// signs). Errors name `dkim.private_key` and say what is wrong; they
    /// never contain key material.
    pub fn load(cfg: &DkimConfig) -> Result<Signer, String> {
        Ok(Signer::new(cfg, crate::config::load::dkim_key(cfg)?))
    }

    /// The signer of `[dkim]` with `key`, as [`crate::config::load::dkim_key`]
    /// read it.
    pub fn new(cfg: &DkimConfig, key: DkimKey) -> Signer {
        let names = SIGNED_HEADERS.iter().chain(&FEEDBACK_FIELDS);
        let mut headers = Vec::with_capacity((SIGNED_HEADERS.len() + FEEDBACK_FIELDS.len()) * 2);
        for &h in names {
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
        Signer {
            inner,
            domain: cfg.domain.clone(),
        }
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

#[cfg(test)]
mod tests {
    use super::Signer;
    use crate::config::DkimConfig;
    use crate::mail::align::misaligned_from;

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
