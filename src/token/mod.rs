//! Link tokens: the signed, opaque part of the unsubscribe, preference and
//! opt-in links (`/u/{token}`, `/p/{token}`, `/o/{token}`) and of the
//! `mailto:unsubscribe+TOKEN@...` address. The compact return-path token
//! that names one copy (VERP) is [`bounce`].
//!
//! Owns the token format, signing and verification. Does not own what a
//! verified token may do (the web layer checks the purpose against the route
//! it came in on, or calls [`verify_for`]), and does no IO: no clock, no
//! store, no logging.
//!
//! # Format (version 1)
//!
//! ```text
//! token   = key-id "." base64url-no-pad(payload || mac)
//! payload = version (1 byte, 0x01)
//!           purpose (1 byte: 0x01 unsubscribe, 0x02 preferences, 0x03 optin)
//!           subject (16 bytes, the decoded subject id)
//!           campaign (0 to 64 ASCII bytes; empty = all campaigns)
//! mac     = HMAC-SHA256(key, "consent-relay token v1" || len(key-id) || key-id || payload)[..16]
//! ```
//!
//! `len(key-id)` is one byte. The key id is in clear so verification picks the
//! key directly; every id listed in `[signing] keys` verifies, so rotating
//! `current` leaves old mail working until the old id is removed. The key id
//! is covered by the MAC, and the prefix keeps these MACs apart from any other
//! HMAC made with the same keys (the address hashes of `subject`).
//!
//! Key ids (`[A-Za-z0-9_-]`) and base64url contain no `.`, so the first `.`
//! is the only one; the token is URL-safe and a valid mail local part. With
//! key id `k1` and a 20-character campaign it is 75 characters; with no
//! campaign (all campaigns) 49. The longest possible (32-character key id,
//! 64-character campaign) is 164. It names the subject only by its random
//! id: no address, nothing derived from one.
//!
//! Decoding is strict: non-canonical base64 (set trailing bits), padding,
//! whitespace, a wrong length or any byte changed fails. The MAC is compared
//! in constant time. Tokens do not expire; a later version can add a time
//! behind the version byte.

pub mod bounce;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::SigningConfig;

/// What a link is for. Each route accepts one purpose only: an unsubscribe
/// link from a forwarded mail must never be usable to opt in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Unsubscribe,
    Preferences,
    Optin,
}

impl Purpose {
    const ALL: [Purpose; 3] = [Purpose::Unsubscribe, Purpose::Preferences, Purpose::Optin];

    fn byte(self) -> u8 {
        match self {
            Purpose::Unsubscribe => 1,
            Purpose::Preferences => 2,
            Purpose::Optin => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<Purpose> {
        Purpose::ALL.into_iter().find(|p| p.byte() == byte)
    }

    /// The wire name used by the spec, logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Unsubscribe => "unsubscribe",
            Purpose::Preferences => "preferences",
            Purpose::Optin => "optin",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The opaque subject id: 22 characters of base64url (16 bytes).
    pub subject_id: String,
    /// The campaign id; `None` means all campaigns (never `Some("*")`).
    pub campaign: Option<String>,
    pub purpose: Purpose,
}

/// Why a token could not be made or was refused. Never carries the token, a
/// key or a subject id (a caller passing an address by mistake must not get
/// it logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not shaped like a token: no key id, bad base64, wrong length, ...
    #[error("the token is malformed")]
    Malformed,
    /// Made by a newer (or unknown) format.
    #[error("the token has unsupported version {version}")]
    UnsupportedVersion { version: u8 },
    /// The key id is well formed but not in `[signing] keys` (removed too
    /// early after a rotation, or a token from another installation).
    #[error("the token's key id {key_id:?} is not in signing.keys")]
    UnknownKey { key_id: String },
    /// The MAC does not match: tampered, or signed with another key.
    #[error("the token's signature does not match")]
    BadSignature,
    /// Verified, but for another purpose than the route expects.
    #[error("the token is for {found}, not {expected}")]
    WrongPurpose { expected: Purpose, found: Purpose },
    /// `sign` was given a subject id that is not 22 characters of base64url.
    #[error("the subject id is not 22 characters of base64url")]
    InvalidSubjectId,
    /// `sign` was given a campaign that is not a campaign id (or was `"*"`:
    /// all campaigns is `None`).
    #[error("{campaign:?} is not a campaign id")]
    InvalidCampaign { campaign: String },
}

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"consent-relay token v1";
const SUBJECT_LEN: usize = 16;
const SUBJECT_ID_LEN: usize = 22;
const CAMPAIGN_MAX: usize = 64;
const KEY_ID_MAX: usize = 32;
const MAC_LEN: usize = 16;
/// Version, purpose, subject.
const HEADER_LEN: usize = 2 + SUBJECT_LEN;
const DECODED_MIN: usize = HEADER_LEN + MAC_LEN;
const DECODED_MAX: usize = HEADER_LEN + CAMPAIGN_MAX + MAC_LEN;
/// Anything longer is refused before decoding.
const TOKEN_MAX: usize = KEY_ID_MAX + 1 + (DECODED_MAX * 4).div_ceil(3);

/// Signs `claims` with the key `signing.current`.
///
/// Fails if the subject id or campaign is not well formed, or if `current`
/// is not among the keys (a validated configuration never allows that).
pub fn sign(signing: &SigningConfig, claims: &Claims) -> Result<String, TokenError> {
    let key_id = signing.current.as_str();
    let key = key(signing, key_id)?;
    if !is_key_id(key_id) {
        return Err(TokenError::UnknownKey {
            key_id: key_id.to_owned(),
        });
    }
    let subject = decode_subject_id(&claims.subject_id).ok_or(TokenError::InvalidSubjectId)?;
    let campaign = match &claims.campaign {
        None => "",
        Some(c) if is_campaign_id(c) => c.as_str(),
        Some(c) => {
            return Err(TokenError::InvalidCampaign {
                campaign: c.clone(),
            });
        }
    };

    let mut bytes = Vec::with_capacity(HEADER_LEN + campaign.len() + MAC_LEN);
    bytes.push(VERSION);
    bytes.push(claims.purpose.byte());
    bytes.extend_from_slice(&subject);
    bytes.extend_from_slice(campaign.as_bytes());
    let mac = mac(key, key_id, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&mac[..MAC_LEN]);

    Ok(format!("{key_id}.{}", URL_SAFE_NO_PAD.encode(&bytes)))
}

/// Checks `token` against every key in `signing.keys` (by its key id) and
/// returns what it says. Never panics, whatever the input.
pub fn verify(signing: &SigningConfig, token: &str) -> Result<Claims, TokenError> {
    if token.len() > TOKEN_MAX {
        return Err(TokenError::Malformed);
    }
    let (key_id, encoded) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if !is_key_id(key_id) {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Malformed)?;
    if !(DECODED_MIN..=DECODED_MAX).contains(&bytes.len()) {
        return Err(TokenError::Malformed);
    }
    // The version decides how the rest is read, so it is checked first; it
    // reveals nothing about the key.
    if bytes[0] != VERSION {
        return Err(TokenError::UnsupportedVersion { version: bytes[0] });
    }
    let key = key(signing, key_id)?;
    let (payload, tag) = bytes.split_at(bytes.len() - MAC_LEN);
    // Constant-time comparison of the first MAC_LEN bytes.
    mac(key, key_id, payload)
        .verify_truncated_left(tag)
        .map_err(|_| TokenError::BadSignature)?;

    // Authentic from here on; the checks below only keep `Claims` well
    // formed should a future signer write something this one does not know.
    let purpose = Purpose::from_byte(payload[1]).ok_or(TokenError::Malformed)?;
    let subject_id = URL_SAFE_NO_PAD.encode(&payload[2..HEADER_LEN]);
    let campaign = match &payload[HEADER_LEN..] {
        [] => None,
        raw => {
            let campaign = std::str::from_utf8(raw).map_err(|_| TokenError::Malformed)?;
            if !is_campaign_id(campaign) {
                return Err(TokenError::Malformed);
            }
            Some(campaign.to_owned())
        }
    };
    Ok(Claims {
        subject_id,
        campaign,
        purpose,
    })
}

/// [`verify`], then refuses a token made for another purpose than
/// `expected`. What each route should call.
pub fn verify_for(
    signing: &SigningConfig,
    token: &str,
    expected: Purpose,
) -> Result<Claims, TokenError> {
    let claims = verify(signing, token)?;
    if claims.purpose != expected {
        return Err(TokenError::WrongPurpose {
            expected,
            found: claims.purpose,
        });
    }
    Ok(claims)
}

/// The MAC state over domain, key id and payload, ready to finalize or verify.
/// The key bytes of `key_id`.
fn key<'a>(signing: &'a SigningConfig, key_id: &str) -> Result<&'a [u8], TokenError> {
    signing
        .keys
        .get(key_id)
        .map(|k| k.0.as_slice())
        .ok_or_else(|| TokenError::UnknownKey {
            key_id: key_id.to_owned(),
        })
}

fn mac(key: &[u8], key_id: &str, payload: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(DOMAIN);
    // Callers checked is_key_id, so the length is 1..=32 and fits a byte.
    mac.update(&[key_id.len() as u8]);
    mac.update(key_id.as_bytes());
    mac.update(payload);
    mac
}

fn decode_subject_id(id: &str) -> Option<[u8; SUBJECT_LEN]> {
    if id.len() != SUBJECT_ID_LEN {
        return None;
    }
    // Strict decoding: only the canonical spelling of 16 bytes is accepted,
    // so verify gives back exactly the id that was signed.
    URL_SAFE_NO_PAD.decode(id).ok()?.try_into().ok()
}

/// 1 to 32 of `[A-Za-z0-9_-]`, as `[signing] keys` requires.
fn is_key_id(id: &str) -> bool {
    (1..=KEY_ID_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// 1 to 64 of `[A-Za-z0-9._-]`, as `[[campaign]] id` requires.
fn is_campaign_id(id: &str) -> bool {
    (1..=CAMPAIGN_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::Secret;

    const SUBJECT: &str = "AAECAwQFBgcICQoLDA0ODw"; // bytes 0..16

    fn signing(current: &str, keys: &[(&str, u8)]) -> SigningConfig {
        SigningConfig {
            current: current.to_owned(),
            keys: keys
                .iter()
                .map(|&(id, fill)| (id.to_owned(), Secret(vec![fill; 32])))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn claims(purpose: Purpose, campaign: Option<&str>) -> Claims {
        Claims {
            subject_id: SUBJECT.to_owned(),
            campaign: campaign.map(str::to_owned),
            purpose,
        }
    }

    /// Every purpose, with and without campaigns of several lengths (so the
    /// base64 ends on every possible boundary).
    fn all_claims() -> Vec<Claims> {
        let campaigns = [
            None,
            Some("n"),
            Some("ne"),
            Some("newsletter-2026.spring"),
            Some("spring_sale.2026-fr"),
            Some("a.b-c_D9"),
        ];
        let mut all = Vec::new();
        for purpose in Purpose::ALL {
            for campaign in campaigns {
                all.push(claims(purpose, campaign));
            }
        }
        let longest = "x".repeat(CAMPAIGN_MAX);
        all.push(claims(Purpose::Optin, Some(&longest)));
        all
    }

    #[test]
    fn round_trip_for_every_purpose_with_and_without_campaign() {
        let keys = signing("k1", &[("k1", 7)]);
        for claims in all_claims() {
            let token = sign(&keys, &claims).expect("sign");
            assert_eq!(verify(&keys, &token), Ok(claims.clone()), "{token}");
            assert_eq!(
                verify_for(&keys, &token, claims.purpose),
                Ok(claims.clone())
            );
        }
    }

    #[test]
    fn subject_ids_round_trip_exactly() {
        let keys = signing("k1", &[("k1", 7)]);
        for subject_id in ["_____________________w", "-AAAAAAAAAAAAAAAAAAAAA", SUBJECT] {
            let claims = Claims {
                subject_id: subject_id.to_owned(),
                campaign: None,
                purpose: Purpose::Preferences,
            };
            let token = sign(&keys, &claims).expect("sign");
            assert_eq!(
                verify(&keys, &token).expect("verify").subject_id,
                subject_id
            );
        }
    }

    #[test]
    fn old_key_verifies_until_removed() {
        let old = signing("k1", &[("k1", 1)]);
        let claims = claims(Purpose::Unsubscribe, Some("news"));
        let token = sign(&old, &claims).expect("sign");
        assert!(token.starts_with("k1."), "{token}");

        let rotated = signing("k2", &[("k1", 1), ("k2", 2)]);
        assert_eq!(verify(&rotated, &token), Ok(claims.clone()));
        let fresh = sign(&rotated, &claims).expect("sign");
        assert!(fresh.starts_with("k2."), "{fresh}");
        assert_eq!(verify(&rotated, &fresh), Ok(claims.clone()));

        let retired = signing("k2", &[("k2", 2)]);
        assert_eq!(
            verify(&retired, &token),
            Err(TokenError::UnknownKey {
                key_id: "k1".into()
            })
        );
        assert_eq!(verify(&retired, &fresh), Ok(claims));
    }

    #[test]
    fn a_key_id_bound_to_other_bytes_fails() {
        // Same id, different key bytes (e.g. a key replaced in place).
        let claims = claims(Purpose::Unsubscribe, None);
        let token = sign(&signing("k1", &[("k1", 1)]), &claims).expect("sign");
        assert_eq!(
            verify(&signing("k1", &[("k1", 9)]), &token),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn the_key_id_is_signed() {
        // Two ids holding the same bytes: relabelling the token still fails.
        let keys = signing("k1", &[("k1", 5), ("k2", 5)]);
        let token = sign(&keys, &claims(Purpose::Optin, Some("news"))).expect("sign");
        let relabelled = token.replacen("k1.", "k2.", 1);
        assert_eq!(verify(&keys, &relabelled), Err(TokenError::BadSignature));
    }

    #[test]
    fn different_keys_give_different_tokens() {
        let claims = claims(Purpose::Unsubscribe, Some("news"));
        let a = sign(&signing("k1", &[("k1", 1)]), &claims).expect("sign");
        let b = sign(&signing("k1", &[("k1", 2)]), &claims).expect("sign");
        let c = sign(&signing("k2", &[("k2", 1)]), &claims).expect("sign");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(
            a.split_once('.').map(|p| p.1),
            c.split_once('.').map(|p| p.1),
            "the key id is part of the MAC"
        );
    }

    #[test]
    fn purposes_and_campaigns_give_different_tokens() {
        let keys = signing("k1", &[("k1", 1)]);
        let mut seen = std::collections::HashSet::new();
        for claims in all_claims() {
            assert!(seen.insert(sign(&keys, &claims).expect("sign")));
        }
    }

    #[test]
    fn wrong_purpose_is_refused() {
        let keys = signing("k1", &[("k1", 1)]);
        let token = sign(&keys, &claims(Purpose::Unsubscribe, Some("news"))).expect("sign");
        assert_eq!(
            verify_for(&keys, &token, Purpose::Optin),
            Err(TokenError::WrongPurpose {
                expected: Purpose::Optin,
                found: Purpose::Unsubscribe
            })
        );
    }

    #[test]
    fn typical_token_is_short_and_url_safe() {
        let keys = signing("k1", &[("k1", 1)]);
        let campaign = "spring-sale.2026_fr1";
        assert_eq!(campaign.len(), 20);
        let token = sign(&keys, &claims(Purpose::Unsubscribe, Some(campaign))).expect("sign");
        assert_eq!(token.len(), 75, "{token}");
        let all = sign(&keys, &claims(Purpose::Preferences, None)).expect("sign");
        assert_eq!(all.len(), 49, "{all}");

        let long_id = "k".repeat(KEY_ID_MAX);
        let keys = signing(&long_id, &[(&long_id, 1)]);
        let longest = sign(&keys, &claims(Purpose::Optin, Some(&"c".repeat(64)))).expect("sign");
        assert_eq!(longest.len(), TOKEN_MAX);
        assert_eq!(verify(&keys, &longest).map(|_| ()), Ok(()));

        for token in [token, all, longest] {
            assert!(
                token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{token}"
            );
            assert_eq!(token.matches('.').count(), 1);
            assert!(!token.starts_with('.') && !token.ends_with('.'));
        }
    }

    #[test]
    fn token_carries_no_address() {
        // Only the subject id goes in, so no address can come out; check
        // the obvious anyway.
        let keys = signing("k1", &[("k1", 1)]);
        let token = sign(&keys, &claims(Purpose::Unsubscribe, Some("news"))).expect("sign");
        assert!(!token.contains('@'));
        assert!(!token.contains(SUBJECT));
        assert!(!token.contains("news"));
    }

    #[test]
    fn sign_refuses_bad_claims() {
        let keys = signing("k1", &[("k1", 1)]);
        for subject_id in [
            "",
            "ann@example.com",
            "AAECAwQFBgcICQoLDA0ODw==",
            "AAECAwQFBgcICQoLDA0OD",
            "AAECAwQFBgcICQoLDA0ODx", // non-canonical trailing bits
            "AAECAwQFBgcICQoLDA0OD+",
            "AAECAwQFBgcICQoLDA0ODwAA",
        ] {
            let bad = Claims {
                subject_id: subject_id.to_owned(),
                ..claims(Purpose::Unsubscribe, None)
            };
            assert_eq!(
                sign(&keys, &bad),
                Err(TokenError::InvalidSubjectId),
                "{subject_id}"
            );
        }
        let too_long = "c".repeat(65);
        for campaign in ["", "*", "news letter", "news/1", "é", too_long.as_str()] {
            assert_eq!(
                sign(&keys, &claims(Purpose::Unsubscribe, Some(campaign))),
                Err(TokenError::InvalidCampaign {
                    campaign: campaign.to_owned()
                })
            );
        }
        let err = sign(&keys, &claims(Purpose::Unsubscribe, Some("*"))).expect_err("star");
        assert_eq!(err.to_string(), "\"*\" is not a campaign id");
    }

    #[test]
    fn sign_refuses_a_current_key_that_is_not_listed() {
        let keys = signing("k9", &[("k1", 1)]);
        assert_eq!(
            sign(&keys, &claims(Purpose::Unsubscribe, None)),
            Err(TokenError::UnknownKey {
                key_id: "k9".into()
            })
        );
    }

    /// Every single-byte change, every truncation, every extension by one
    /// character and every deletion of one character of valid tokens fails,
    /// without panicking.
    #[test]
    fn every_mutation_of_a_valid_token_fails() {
        // k2 is listed too, so changing "k1" to "k2" reaches the MAC check.
        let keys = signing("k1", &[("k1", 1), ("k2", 2), ("k", 3), ("k12", 4)]);
        let mut checked = 0usize;
        let mut must_fail = |candidate: &[u8], original: &str| {
            if let Ok(text) = std::str::from_utf8(candidate)
                && text != original
            {
                assert!(verify(&keys, text).is_err(), "{text:?} from {original:?}");
                checked += 1;
            }
        };
        for claims in all_claims() {
            let token = sign(&keys, &claims).expect("sign");
            assert!(verify(&keys, &token).is_ok());
            let bytes = token.as_bytes();
            for i in 0..bytes.len() {
                let mut changed = bytes.to_vec();
                for value in 0..=u8::MAX {
                    changed[i] = value;
                    must_fail(&changed, &token);
                }
                // A multi-byte character in place of one byte.
                let multi = [&bytes[..i], "é".as_bytes(), &bytes[i + 1..]].concat();
                must_fail(&multi, &token);
                let deleted = [&bytes[..i], &bytes[i + 1..]].concat();
                must_fail(&deleted, &token);
            }
            for len in 0..bytes.len() {
                must_fail(&bytes[..len], &token);
                must_fail(&bytes[bytes.len() - len..], &token);
            }
            for i in 0..=bytes.len() {
                for extra in b"Aa0-_.=%\n \0" {
                    let inserted = [&bytes[..i], &[*extra], &bytes[i..]].concat();
                    must_fail(&inserted, &token);
                }
            }
            for suffix in ["A", "AA", "AAA", "AAAA", "=", "==", "%3D", "/", "?x=1"] {
                must_fail(format!("{token}{suffix}").as_bytes(), &token);
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    #[test]
    fn garbage_never_panics() {
        let keys = signing("k1", &[("k1", 1)]);
        let fixed = [
            "",
            ".",
            "..",
            "k1",
            "k1.",
            ".AAAA",
            "k1..",
            "k1.=",
            "k1.A",
            "k1.AA",
            "k1.AAA",
            "k1.AAAA",
            "k 1.AAAA",
            "é.AAAA",
            "k1.é",
            "k1.\u{0}",
            "unsubscribe+k1.AAAA@example.com",
        ];
        for input in fixed {
            assert!(verify(&keys, input).is_err(), "{input:?}");
        }
        let huge = format!("k1.{}", "A".repeat(1 << 20));
        assert_eq!(verify(&keys, &huge), Err(TokenError::Malformed));
        assert_eq!(
            verify(&keys, &format!("{}.AAAA", "k".repeat(33))),
            Err(TokenError::Malformed)
        );

        // Well-formed envelopes around random bytes, and random text.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let len = (next() % (DECODED_MAX as u64 + 8)) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let token = format!("k1.{}", URL_SAFE_NO_PAD.encode(&bytes));
            assert!(verify(&keys, &token).is_err(), "{token}");
            let text = String::from_utf8_lossy(&bytes);
            assert!(verify(&keys, &text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn errors_say_what_failed() {
        let keys = signing("k1", &[("k1", 1)]);
        let token = sign(&keys, &claims(Purpose::Unsubscribe, None)).expect("sign");
        let (_, encoded) = token.split_once('.').expect("dot");
        let mut bytes = URL_SAFE_NO_PAD.decode(encoded).expect("base64");

        assert_eq!(
            verify(&keys, &token.replacen("k1.", "old.", 1)),
            Err(TokenError::UnknownKey {
                key_id: "old".into()
            })
        );
        assert_eq!(
            verify(&keys, &format!("{token}=")),
            Err(TokenError::Malformed)
        );
        assert_eq!(verify(&keys, "k1"), Err(TokenError::Malformed));

        bytes[0] = 2;
        let future = format!("k1.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(
            verify(&keys, &future),
            Err(TokenError::UnsupportedVersion { version: 2 })
        );
        bytes[0] = VERSION;
        bytes[1] = Purpose::Optin.byte();
        let tampered = format!("k1.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(verify(&keys, &tampered), Err(TokenError::BadSignature));
        assert_eq!(
            TokenError::UnknownKey {
                key_id: "old".into()
            }
            .to_string(),
            "the token's key id \"old\" is not in signing.keys"
        );
    }

    #[test]
    fn an_authentic_token_with_an_unknown_purpose_is_malformed() {
        // Only a signer with the key can make this; a future purpose byte
        // must still not be read as one of today's.
        let keys = signing("k1", &[("k1", 1)]);
        let key = &keys.keys["k1"].0;
        let mut bytes = vec![VERSION, 9];
        bytes.extend_from_slice(&[0; SUBJECT_LEN]);
        let tag = mac(key, "k1", &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        let token = format!("k1.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert_eq!(verify(&keys, &token), Err(TokenError::Malformed));
    }
}
