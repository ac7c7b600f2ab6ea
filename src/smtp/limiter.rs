//! Failed AUTH attempts counted across sessions, per client IP address and
//! per user name from that address, over a sliding window (`[smtp]
//! auth_max_failures_per_ip`, `auth_max_failures_per_user`,
//! `auth_failure_window`). An address with too many failures is refused at
//! AUTH (and at connect when it is outside `allowed_networks`); a user with
//! too many failures from one address is locked *from that address* (even
//! with the right password) until the oldest counted failure leaves the
//! window. A user is never locked from everywhere: someone guessing from
//! one address cannot lock the CRM out. Each failure waits longer before
//! its answer than the one before from the same address ([`AuthLimiter::delay`]).
//! Addresses are grouped as [`crate::net::client_key`] groups them (IPv6 by /64).
//!
//! Pure bookkeeping: the caller passes `now`; no IO, no replies.

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::SmtpGuard;

/// Past this many tracked keys, expired ones are dropped on the next failure.
const PRUNE_ABOVE: usize = 4096;

/// The shared counters of one listener.
#[derive(Debug)]
pub struct AuthLimiter {
    window: Duration,
    max_per_ip: usize,
    max_per_user: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    ips: Failures<IpAddr>,
    /// By user name and client address.
    users: Failures<(String, IpAddr)>,
}

/// The longest wait before answering a failed AUTH.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(8);

/// The most recent failures of each key (at most `max` kept per key).
#[derive(Debug)]
struct Failures<K>(HashMap<K, VecDeque<Instant>>);

impl<K> Default for Failures<K> {
    fn default() -> Self {
        Failures(HashMap::new())
    }
}

impl<K: Eq + Hash> Failures<K> {
    fn count<Q>(&self, key: &Q, now: Instant, window: Duration) -> usize
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.0.get(key).map_or(0, |times| {
            times
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) < window)
                .count()
        })
    }

    fn record(&mut self, key: K, now: Instant, window: Duration, max: usize) {
        if self.0.len() > PRUNE_ABOVE {
            self.0.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|&t| now.saturating_duration_since(t) < window)
            });
        }
        let times = self.0.entry(key).or_default();
        times.push_back(now);
        while times.len() > max {
            times.pop_front();
        }
    }
}

impl AuthLimiter {
    pub fn new(guard: &SmtpGuard) -> AuthLimiter {
        AuthLimiter {
            window: guard.auth_failure_window,
            max_per_ip: guard.auth_max_failures_per_ip,
            max_per_user: guard.auth_max_failures_per_user,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The address has had too many failures within the window.
    pub fn ip_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.state()
            .ips
            .count(&crate::net::client_key(ip), now, self.window)
            >= self.max_per_ip
    }

    /// The user has had too many failures from `ip` within the window.
    pub fn user_locked(&self, user: &str, ip: IpAddr, now: Instant) -> bool {
        let key = (user.to_owned(), crate::net::client_key(ip));
        self.state().users.count(&key, now, self.window) >= self.max_per_user
    }

    /// Counts a failed attempt from `ip`, and against `user` from `ip`
    /// when the name is a configured one (unknown names are not kept:
    /// nothing to lock).
    pub fn record_failure(&self, ip: IpAddr, user: Option<&str>, now: Instant) {
        let key = crate::net::client_key(ip);
        let mut s = self.state();
        s.ips.record(key, now, self.window, self.max_per_ip);
        if let Some(user) = user {
            s.users
                .record((user.to_owned(), key), now, self.window, self.max_per_user);
        }
    }

    /// How long to wait before answering the failure just recorded from
    /// `ip`: `base` times the address's failures within the window (1 s,
    /// 2 s, 3 s, ...), at most [`MAX_FAILURE_DELAY`].
    pub fn delay(&self, ip: IpAddr, base: Duration, now: Instant) -> Duration {
        let n = self
            .state()
            .ips
            .count(&crate::net::client_key(ip), now, self.window);
        let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        base.saturating_mul(n).min(MAX_FAILURE_DELAY)
    }

    /// A successful AUTH clears the user's earlier failures from that
    /// address (not the address's own count).
    pub fn record_success(&self, user: &str, ip: IpAddr) {
        let key = (user.to_owned(), crate::net::client_key(ip));
        self.state().users.0.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter_guard() -> SmtpGuard {
        SmtpGuard {
            tls_handshake_timeout: Duration::from_secs(10),
            min_data_rate: 1024,
            auth_max_failures_per_ip: 3,
            auth_max_failures_per_user: 2,
            auth_failure_window: Duration::from_secs(60),
        }
    }

    fn limiter() -> AuthLimiter {
        AuthLimiter::new(&limiter_guard())
    }

    #[test]
    fn an_address_is_blocked_after_its_failures_until_they_leave_the_window() {
        let l = limiter();
        let ip: IpAddr = "192.0.2.1".parse().expect("ip");
        let other: IpAddr = "192.0.2.2".parse().expect("ip");
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(!l.ip_blocked(ip, t0), "blocked after {i}");
            l.record_failure(ip, None, t0 + Duration::from_secs(i));
        }
        assert!(l.ip_blocked(ip, t0 + Duration::from_secs(3)));
        assert!(!l.ip_blocked(other, t0 + Duration::from_secs(3)));
        // The first failure leaves the window at t0 + 60 s.
        assert!(l.ip_blocked(ip, t0 + Duration::from_secs(59)));
        assert!(!l.ip_blocked(ip, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn ipv6_addresses_of_one_64_share_their_failures() {
        let l = limiter();
        let t0 = Instant::now();
        // A client rotating through its /64 is one client.
        for host in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"] {
            l.record_failure(host.parse().expect("ip"), None, t0);
        }
        let same: IpAddr = "2001:db8:1:2:abcd::1".parse().expect("ip");
        let next: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert!(l.ip_blocked(same, t0));
        assert!(!l.ip_blocked(next, t0));
    }

    #[test]
    fn a_user_is_locked_from_one_address_only_and_a_success_clears_it() {
        let l = limiter();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "198.51.100.7".parse().expect("ip");
        // Failures from different addresses do not add up for the user.
        l.record_failure(a, Some("crm"), t0);
        l.record_failure(b, Some("crm"), t0);
        assert!(!l.user_locked("crm", a, t0));
        assert!(!l.user_locked("crm", b, t0));
        l.record_failure(a, Some("crm"), t0);
        assert!(l.user_locked("crm", a, t0), "locked from a");
        assert!(!l.user_locked("crm", b, t0), "never from everywhere");
        assert!(!l.user_locked("other", a, t0));
        assert!(!l.user_locked("crm", a, t0 + Duration::from_secs(61)));
        l.record_success("crm", a);
        assert!(!l.user_locked("crm", a, t0));
    }

    #[test]
    fn each_failure_from_an_address_waits_longer_up_to_the_maximum() {
        let l = AuthLimiter::new(&SmtpGuard {
            auth_max_failures_per_ip: 100,
            ..limiter_guard()
        });
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let base = Duration::from_secs(1);
        let mut delays = Vec::new();
        for _ in 0..10 {
            l.record_failure(a, Some("crm"), t0);
            delays.push(l.delay(a, base, t0).as_secs());
        }
        assert_eq!(delays, [1, 2, 3, 4, 5, 6, 7, 8, 8, 8]);
        l.record_failure(b, None, t0);
        assert_eq!(l.delay(b, base, t0), base, "another address starts again");
        assert_eq!(l.delay(a, base, t0 + Duration::from_secs(61)), base);
    }
}
