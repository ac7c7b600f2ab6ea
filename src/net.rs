//! Who a client is, for the per-client limits of both listeners (SMTP
//! connections and AUTH failures, the HTTP rate limit). Pure.

use std::net::{IpAddr, Ipv6Addr};

/// What a per-client limit counts by (connections per address, AUTH
/// failures, the HTTP rate limit): an IPv4 address as is (also written
/// IPv4-mapped), an IPv6 address by its /64. One host or subscriber holds
/// a whole /64, so rotating addresses inside it gains nothing.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
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
