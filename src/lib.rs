//! consent-relay: an SMTP relay that enforces consent.
//!
//! Data flows one way: `smtp` receives, `intake` reads the campaign and asks
//! `policy` for each recipient, `store` commits message, decisions and
//! deliveries in one transaction, and `delivery` sends each recipient's copy
//! upstream, each recipient's copy rendered by `rewrite` with links signed by
//! `token`. `web` serves those links (one-click unsubscribe and the pages)
//! and changes consent through the same store; `cli` reads and changes it
//! too.

pub mod cli;
pub mod config;
pub mod confirmation;
pub mod consent;
pub mod delivery;
pub mod expiring;
pub mod import;
pub mod intake;
pub mod mail;
pub mod message;
pub mod metrics;
pub mod migrate;
pub mod policy;
pub mod register;
pub mod retention;
pub mod rewrite;
pub mod rights;
pub mod server;
pub mod smtp;
pub mod store;
pub mod subject;
pub mod texts;
pub mod token;
pub mod web;
pub mod webhook;

/// What a per-client limit counts by (connections per address, AUTH
/// failures, the HTTP rate limit): an IPv4 address as is (also written
/// IPv4-mapped), an IPv6 address by its /64. One host or subscriber holds
/// a whole /64, so rotating addresses inside it gains nothing.
pub fn client_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Unix time in milliseconds: the one clock reading the store keeps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats unix milliseconds as RFC 3339 (UTC, seconds).
pub fn format_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Resolves once the shutdown flag is true (or its sender is gone).
pub async fn until_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    #[test]
    fn client_key_is_the_ipv4_address_or_the_ipv6_64() {
        let key = |s: &str| super::client_key(s.parse::<IpAddr>().expect("ip")).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::"), "2001:db8:1:2::");
        assert_eq!(key("::1"), "::");
    }
}
