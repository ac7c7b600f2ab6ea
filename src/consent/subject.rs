//! Subjects: the people consent is about. The opaque random id that links
//! carry, and the keyed hash of the address's identity
//! ([`super::identity`]) that survives erasure as a suppression.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::Sha256;

use super::identity::Identity;
use crate::config::SigningConfig;

/// A subject not stored yet: its opaque id, the keyed hash of its address
/// and the signing key id the hash was made with.
#[derive(Debug, Clone)]
pub struct NewSubject {
    pub id: String,
    pub address_hash: String,
    pub key_id: String,
}

/// A new opaque subject id: 128 random bits, base64url (22 characters).
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    // SystemRandom reads the OS generator; it fails only if the OS has none,
    // and then no secure id can be made at all.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        panic!("the operating system's random generator is unavailable");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 of an address's canonical identity under one signing key, hex.
pub fn address_hash(key: &[u8], address: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(address.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The address's hash under every configured key (an address erased under
/// an older key is still recognised).
pub fn address_hashes(signing: &SigningConfig, address: &str) -> Vec<String> {
    signing
        .keys
        .values()
        .map(|k| address_hash(&k.0, address))
        .collect()
}

/// The hashes an erased person is found by: each of the identity's
/// [`Identity::hash_forms`] (the canonical form, and the forms stores
/// erased before these rules hashed) under every configured key.
pub fn identity_hashes(signing: &SigningConfig, identity: &Identity) -> Vec<String> {
    identity
        .hash_forms()
        .into_iter()
        .flat_map(|form| address_hashes(signing, form))
        .collect()
}

/// What decision and delivery rows name instead of an erased address.
pub fn erased_tag(address_hash: &str) -> String {
    format!("erased:{address_hash}")
}

/// A subject to create for `address` (a canonical identity) if it does
/// not exist yet.
pub fn new_subject(signing: &SigningConfig, address: &str) -> NewSubject {
    let key = signing
        .keys
        .get(&signing.current)
        .map(|k| k.0.as_slice())
        .unwrap_or_default();
    NewSubject {
        id: new_id(),
        address_hash: address_hash(key, address),
        key_id: signing.current.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_compact() {
        let a = new_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, new_id());
    }

    #[test]
    fn hash_depends_on_key_and_address() {
        let h = address_hash(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1", "a@x");
        assert_eq!(h.len(), 64);
        assert_ne!(h, address_hash(b"k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2k2", "a@x"));
        assert_ne!(h, address_hash(b"k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1k1", "b@x"));
    }
}
