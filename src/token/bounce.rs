//! Return-path tokens (VERP, SPEC "What comes back"): the `TOKEN` of a
//! copy's envelope sender `b-TOKEN@<bounces domain>`, naming the delivery a
//! bounce is about. A mail system writes its DSN to that address, so the
//! relay learns which copy failed without trusting anything in the bounce
//! but the address it came to.
//!
//! The link tokens (the parent module) are too long for a local part
//! (RFC 5321 4.5.3.1.1: at most 64 octets) and name a person, not a copy;
//! this one is compact and names a delivery only.
//!
//! # Format (version 1)
//!
//! ```text
//! token   = base32-lowercase-no-pad(version || delivery || mac)   31 characters
//! version = 1 byte, 0x01
//! delivery = the delivery's id, 8 bytes big-endian
//! mac     = HMAC-SHA256(key, "consent-relay bounce v1" || version || delivery)[..10]
//! ```
//!
//! `b-` and 31 characters make a 33-octet local part. The token carries no
//! key id (it would not fit with the longest ids): verification tries every
//! key in `[signing] keys`, so a bounce for a copy signed before a rotation
//! still verifies while the old key is listed. The 80-bit MAC makes a forged
//! token one chance in 2^80 per key; a bounce carries no secret worth more.
//! Base32 survives a mail system that changes the case of a local part: the
//! token is read case-insensitively. Decoding is strict otherwise (length,
//! alphabet, trailing bits), the MAC compared in constant time. Pure: no
//! clock, no store, no IO.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::SigningConfig;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"consent-relay bounce v1";
const MAC_LEN: usize = 10;
const PAYLOAD_LEN: usize = 1 + 8;
/// Characters of a token: 19 bytes in base32 without padding.
pub const TOKEN_LEN: usize = ((PAYLOAD_LEN + MAC_LEN) * 8).div_ceil(5);
/// What starts the local part of a return path.
pub const PREFIX: &str = "b-";

/// Why a return-path token was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BounceTokenError {
    #[error("not a return-path token (b- and {TOKEN_LEN} base32 characters)")]
    Malformed,
    #[error("return-path token version {0} is not known to this relay")]
    UnsupportedVersion(u8),
    #[error("return-path token signature does not verify under any configured key")]
    BadSignature,
    #[error("the signing key [signing] current is not among [signing] keys")]
    NoCurrentKey,
}

/// The token for the copy `delivery`, signed with `[signing] current`.
pub fn sign(signing: &SigningConfig, delivery: i64) -> Result<String, BounceTokenError> {
    let key = signing
        .keys
        .get(&signing.current)
        .ok_or(BounceTokenError::NoCurrentKey)?;
    let mut bytes = Vec::with_capacity(PAYLOAD_LEN + MAC_LEN);
    bytes.push(VERSION);
    bytes.extend_from_slice(&delivery.to_be_bytes());
    let tag = mac(&key.0, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..MAC_LEN]);
    Ok(BASE32_NOPAD.encode(&bytes).to_ascii_lowercase())
}

/// The local part of the return path for `delivery`: `b-TOKEN`.
pub fn local_part(signing: &SigningConfig, delivery: i64) -> Result<String, BounceTokenError> {
    Ok(format!("{PREFIX}{}", sign(signing, delivery)?))
}

/// The delivery a token names, if it verifies under one of the keys.
/// Never panics, whatever the input.
pub fn verify(signing: &SigningConfig, token: &str) -> Result<i64, BounceTokenError> {
    if token.len() != TOKEN_LEN || !token.is_ascii() {
        return Err(BounceTokenError::Malformed);
    }
    let bytes = BASE32_NOPAD
        .decode(token.to_ascii_uppercase().as_bytes())
        .map_err(|_| BounceTokenError::Malformed)?;
    if bytes.len() != PAYLOAD_LEN + MAC_LEN {
        return Err(BounceTokenError::Malformed);
    }
    if bytes[0] != VERSION {
        return Err(BounceTokenError::UnsupportedVersion(bytes[0]));
    }
    let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
    // Every key is tried (the token has no key id); each comparison is in
    // constant time, and which key matched is not revealed.
    let verified = signing.keys.values().fold(false, |ok, key| {
        mac(&key.0, payload).verify_truncated_left(tag).is_ok() | ok
    });
    if !verified {
        return Err(BounceTokenError::BadSignature);
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&payload[1..]);
    Ok(i64::from_be_bytes(id))
}

/// The token in the local part of an address at the bounce domain
/// (`b-TOKEN`, the prefix in any case); `None` for any other local part.
pub fn token_of(local_part: &str) -> Option<&str> {
    let prefix = local_part.get(..PREFIX.len())?;
    prefix
        .eq_ignore_ascii_case(PREFIX)
        .then(|| &local_part[PREFIX.len()..])
}

fn mac(key: &[u8], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(DOMAIN);
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn signing(current: &str, keys: &[(&str, u8)]) -> SigningConfig {
        SigningConfig {
            current: current.into(),
            keys: keys
                .iter()
                .map(|(id, b)| ((*id).to_owned(), Secret(vec![*b; 32])))
                .collect(),
        }
    }

    #[test]
    fn a_token_names_its_delivery_and_fits_a_local_part() {
        let s = signing("k1", &[("k1", 1)]);
        for id in [1, 42, 9_007_199_254_740_993, i64::MAX] {
            let t = sign(&s, id).unwrap();
            assert_eq!(t.len(), TOKEN_LEN);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "{t}"
            );
            assert_eq!(verify(&s, &t), Ok(id));
            let local = local_part(&s, id).unwrap();
            assert!(local.len() <= 64, "{local}");
            assert_eq!(token_of(&local), Some(t.as_str()));
        }
        assert_ne!(sign(&s, 1).unwrap(), sign(&s, 2).unwrap());
    }

    #[test]
    fn a_token_is_read_in_any_case() {
        let s = signing("k1", &[("k1", 1)]);
        let t = sign(&s, 7).unwrap();
        assert_eq!(verify(&s, &t.to_ascii_uppercase()), Ok(7));
        assert_eq!(token_of(&format!("B-{t}")), Some(t.as_str()));
        assert_eq!(token_of("unsubscribe+x"), None);
        assert_eq!(token_of("b"), None);
    }

    #[test]
    fn a_token_made_before_a_rotation_verifies_while_its_key_is_listed() {
        let before = signing("k1", &[("k1", 1)]);
        let t = sign(&before, 9).unwrap();
        let rotated = signing("k2", &[("k1", 1), ("k2", 2)]);
        assert_eq!(verify(&rotated, &t), Ok(9));
        assert_eq!(verify(&rotated, &sign(&rotated, 9).unwrap()), Ok(9));
        let removed = signing("k2", &[("k2", 2)]);
        assert_eq!(verify(&removed, &t), Err(BounceTokenError::BadSignature));
    }

    #[test]
    fn tampered_forged_and_malformed_tokens_are_refused() {
        let s = signing("k1", &[("k1", 1)]);
        let t = sign(&s, 5).unwrap();
        // Each character changed in turn.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(b).unwrap();
            assert!(verify(&s, &changed).is_err(), "{changed}");
        }
        // Another key's token.
        let other = sign(&signing("k1", &[("k1", 3)]), 5).unwrap();
        assert_eq!(verify(&s, &other), Err(BounceTokenError::BadSignature));
        for bad in [
            "",
            "b-",
            &t[1..],
            &format!("{t}a"),
            "é".repeat(16).as_str(),
            "00000000000000000000000000000000"[..31].as_ref(),
        ] {
            assert!(verify(&s, bad).is_err(), "{bad:?}");
        }
        // Version 2 is named as such, before any key is tried.
        let mut v2 = vec![2u8];
        v2.extend_from_slice(&[0; 18]);
        let v2 = BASE32_NOPAD.encode(&v2).to_ascii_lowercase();
        assert_eq!(
            verify(&s, &v2),
            Err(BounceTokenError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn no_current_key_is_an_error_not_a_panic() {
        let s = signing("gone", &[("k1", 1)]);
        assert_eq!(sign(&s, 1), Err(BounceTokenError::NoCurrentKey));
    }
}
