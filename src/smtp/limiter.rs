//! Failed AUTH attempts counted across sessions, per client IP address and
//! per user name, over a sliding window (`[smtp] auth_max_failures_per_ip`,
//! `auth_max_failures_per_user`, `auth_failure_window`). An address with too
//! many failures is refused at AUTH (and at connect when it is outside
//! `allowed_networks`); a user with too many is locked, even with the right
//! password, until the oldest counted failure leaves the window.
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
    users: Failures<String>,
}

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

    /// The user has had too many failures within the window.
    pub fn user_locked(&self, user: &str, now: Instant) -> bool {
        self.state().users.count(user, now, self.window) >= self.max_per_user
    }

    /// Counts a failed attempt from `ip`, and against `user` when the name
    /// is a configured one (unknown names are not kept: nothing to lock).
    pub fn record_failure(&self, ip: IpAddr, user: Option<&str>, now: Instant) {
        let mut s = self.state();
        s.ips.record(
            crate::net::client_key(ip),
            now,
            self.window,
            self.max_per_ip,
        );
        if let Some(user) = user {
            s.users
                .record(user.to_owned(), now, self.window, self.max_per_user);
        }
    }

    /// A successful AUTH clears the user's earlier failures (not the address's).
    pub fn record_success(&self, user: &str) {
        self.state().users.0.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> AuthLimiter {
        AuthLimiter::new(&SmtpGuard {
            tls_handshake_timeout: Duration::from_secs(10),
            min_data_rate: 1024,
            auth_max_failures_per_ip: 3,
            auth_max_failures_per_user: 2,
            auth_failure_window: Duration::from_secs(60),
        })
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
    fn a_user_is_locked_after_its_failures_and_a_success_clears_them() {
        let l = limiter();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "198.51.100.7".parse().expect("ip");
        // Failures from different addresses add up for the user.
        l.record_failure(a, Some("crm"), t0);
        assert!(!l.user_locked("crm", t0));
        l.record_failure(b, Some("crm"), t0);
        assert!(l.user_locked("crm", t0));
        assert!(!l.user_locked("other", t0));
        assert!(!l.user_locked("crm", t0 + Duration::from_secs(61)));
        l.record_success("crm");
        assert!(!l.user_locked("crm", t0));
    }
}
