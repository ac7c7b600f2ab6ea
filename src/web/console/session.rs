//! Who is at the console: sign-in with an operator's token, the session
//! cookie that follows, the CSRF token every form carries, and sign-out.
//!
//! The token is checked against `[[http.operator]]` (and the API's
//! `admin_token_sha256`, operators named `admin`) in constant time. A
//! session is 256 random bits in a cookie (`HttpOnly`, `SameSite=Strict`,
//! `Secure` and the `__Secure-` prefix when `public_url` is https, path
//! the console's); the store keeps only its SHA-256, with the operator's
//! name and the session's CSRF token ([`crate::store::OperatorSession`]).
//! The role is read from the configuration at each request. Sign-in is
//! rate-limited per client address ([`SignInLimiter`]), on top of the
//! listener's limit, and each attempt is in the audit trail.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::HttpConfig;
use crate::store::SessionRules;

/// A session ends after this long without a request.
pub const IDLE: i64 = 30 * 60 * 1000;
/// And after this long in all, however busy.
pub const LIFETIME: i64 = 12 * 60 * 60 * 1000;
/// Sign-in attempts per client address: a minute's quota and burst.
const SIGN_IN_PER_MINUTE: u32 = 10;
const SIGN_IN_BURST: u32 = 5;

pub const RULES: SessionRules = SessionRules {
    idle_ms: IDLE,
    lifetime_ms: LIFETIME,
};

/// 256 random bits, base64url: a session id or a CSRF token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // SystemRandom reads the OS generator; it fails only if the OS has none,
    // and then no secret can be made at all.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        panic!("the operating system's random generator is unavailable");
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a session id: its SHA-256, hex.
pub fn id_hash(id: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, id.as_bytes()))
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    // The length is not secret (every token is 43 characters).
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The cookie: its name (the `__Secure-` prefix over https, which a
/// browser keeps from being set by a plain-http page) and path.
pub struct Cookie {
    pub name: &'static str,
    pub path: String,
    pub secure: bool,
}

impl Cookie {
    pub fn of(http: &HttpConfig) -> Cookie {
        let secure = http.public_url.scheme() == "https";
        Cookie {
            name: if secure {
                "__Secure-consent-relay-console"
            } else {
                "consent-relay-console"
            },
            path: format!("{}/admin", super::base_path(http)),
            secure,
        }
    }

    /// `Set-Cookie` for a new session `id`.
    pub fn set(&self, id: &str) -> String {
        format!(
            "{}={id}; Path={}; HttpOnly; SameSite=Strict{}; Max-Age={}",
            self.name,
            self.path,
            if self.secure { "; Secure" } else { "" },
            LIFETIME / 1000
        )
    }

    /// `Set-Cookie` that removes it (sign-out, or a session that ended).
    pub fn clear(&self) -> String {
        format!(
            "{}=; Path={}; HttpOnly; SameSite=Strict{}; Max-Age=0",
            self.name,
            self.path,
            if self.secure { "; Secure" } else { "" },
        )
    }

    /// The session id the request's `Cookie` headers carry, if any.
    pub fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name)
            .map(|(_, value)| value.trim())
            .filter(|v| !v.is_empty() && v.len() <= 64)
    }
}

/// The sign-in rate limit, per client address (IPv6 by its /64); it lives
/// as long as the HTTP listener, across configuration reloads.
#[derive(Clone)]
pub struct SignInLimiter(Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl Default for SignInLimiter {
    fn default() -> Self {
        let quota =
            Quota::per_minute(NonZeroU32::new(SIGN_IN_PER_MINUTE).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(SIGN_IN_BURST).unwrap_or(NonZeroU32::MIN));
        SignInLimiter(Arc::new(RateLimiter::keyed(quota)))
    }
}

impl SignInLimiter {
    /// Whether `ip` may try now (counts the attempt).
    pub fn allow(&self, ip: IpAddr) -> bool {
        let limiter = &self.0;
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&crate::net::client_key(ip)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(id_hash(&a).len(), 64);
        assert_ne!(id_hash(&a), id_hash(&b));
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &b));
        assert!(!same_secret(&a, &a[..42]));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let cookie = Cookie {
            name: "consent-relay-console",
            path: "/admin".into(),
            secure: false,
        };
        let mut h = HeaderMap::new();
        assert_eq!(cookie.read(&h), None);
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; consent-relay-console=xyz; b=2"),
        );
        assert_eq!(cookie.read(&h), Some("xyz"));
        let set = cookie.set("xyz");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"),
            "{set}"
        );
        let secure = Cookie {
            secure: true,
            ..cookie
        };
        assert!(secure.set("xyz").contains("; Secure"));
        assert!(secure.clear().contains("Max-Age=0"));
    }

    #[test]
    fn sign_in_is_limited_per_address() {
        let limiter = SignInLimiter::default();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let allowed = (0..20).filter(|_| limiter.allow(ip)).count();
        assert_eq!(allowed, SIGN_IN_BURST as usize);
        assert!(limiter.allow("192.0.2.8".parse().unwrap()));
    }
}
