//! Remote-address patterns of `plain_acl.yml` (`whiteRemoteAddress`,
//! `globalWhiteRemoteAddresses`), in RocketMQ's notations: `*` (anyone),
//! `10.1.2.3`, `10.1.2.3,10.1.2.4`, `10.1.2.{3,4}`, `10.1.*.*`,
//! `10.1.2.1-100`. IPv6 peers match `*` and exact addresses.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrPattern {
    /// Blank: matches nobody.
    Nobody,
    Anyone,
    /// Any of these addresses.
    Exact(Vec<IpAddr>),
    /// Each IPv4 octet within its inclusive range.
    Octets([(u8, u8); 4]),
}

impl AddrPattern {
    pub fn parse(text: &str) -> Result<AddrPattern, String> {
        let t = text.trim();
        let bad = |why: &str| format!("address pattern {t:?}: {why}");
        if t.is_empty() {
            return Ok(AddrPattern::Nobody);
        }
        if t == "*" || t == "*.*.*.*" || t == "*:*:*:*:*:*:*:*" {
            return Ok(AddrPattern::Anyone);
        }
        if let Some(open) = t.find('{') {
            let prefix = &t[..open];
            let list = t[open + 1..]
                .strip_suffix('}')
                .ok_or_else(|| bad("a '{' list must end the pattern with '}'"))?;
            let addrs = list
                .split(',')
                .map(|last| parse_ip(&format!("{prefix}{}", last.trim())).map_err(|e| bad(&e)))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(AddrPattern::Exact(addrs));
        }
        if t.contains(',') {
            let addrs = t
                .split(',')
                .map(|a| parse_ip(a.trim()).map_err(|e| bad(&e)))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(AddrPattern::Exact(addrs));
        }
        if t.contains('*') || t.contains('-') {
            let parts: Vec<&str> = t.split('.').collect();
            if parts.len() != 4 {
                return Err(bad(
                    "a range needs four IPv4 parts, like 10.1.*.* or 10.1.2.1-100",
                ));
            }
            let mut octets = [(0u8, 255u8); 4];
            for (slot, part) in octets.iter_mut().zip(parts) {
                *slot = match part.split_once('-') {
                    _ if part == "*" => (0, 255),
                    Some((lo, hi)) => {
                        let lo = octet(lo).map_err(|e| bad(&e))?;
                        let hi = octet(hi).map_err(|e| bad(&e))?;
                        if lo > hi {
                            return Err(bad("a range's start is above its end"));
                        }
                        (lo, hi)
                    }
                    None => {
                        let v = octet(part).map_err(|e| bad(&e))?;
                        (v, v)
                    }
                };
            }
            return Ok(AddrPattern::Octets(octets));
        }
        Ok(AddrPattern::Exact(vec![parse_ip(t).map_err(|e| bad(&e))?]))
    }

    pub fn matches(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        match self {
            AddrPattern::Nobody => false,
            AddrPattern::Anyone => true,
            AddrPattern::Exact(list) => list.contains(&peer),
            AddrPattern::Octets(ranges) => match peer {
                IpAddr::V4(v4) => ranges
                    .iter()
                    .zip(v4.octets())
                    .all(|((lo, hi), o)| (*lo..=*hi).contains(&o)),
                IpAddr::V6(_) => false,
            },
        }
    }
}

/// An IPv4 client reaching a dual-stack socket shows up as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse::<IpAddr>()
        .map(canonical)
        .map_err(|_| format!("{s:?} is not an IP address"))
}

fn octet(s: &str) -> Result<u8, String> {
    s.trim()
        .parse::<u8>()
        .map_err(|_| format!("{s:?} is not a number from 0 to 255"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, ip: &str) -> bool {
        AddrPattern::parse(pattern)
            .unwrap()
            .matches(ip.parse().unwrap())
    }

    #[test]
    fn notations() {
        assert!(m("*", "10.0.0.1") && m("*.*.*.*", "::1"));
        assert!(!m("", "127.0.0.1"));
        assert!(m("192.168.0.1", "192.168.0.1") && !m("192.168.0.1", "192.168.0.2"));
        assert!(m("192.168.0.{1,2}", "192.168.0.2") && !m("192.168.0.{1,2}", "192.168.0.3"));
        assert!(m("10.0.0.1,10.0.0.9", "10.0.0.9") && !m("10.0.0.1,10.0.0.9", "10.0.0.5"));
        assert!(m("10.1.*.*", "10.1.200.3") && !m("10.1.*.*", "10.2.0.1"));
        assert!(m("10.1.2.1-100", "10.1.2.100") && !m("10.1.2.1-100", "10.1.2.101"));
        assert!(m("127.0.0.1", "::ffff:127.0.0.1"));
        assert!(m("::1", "::1") && !m("10.*.*.*", "::1"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "10.1.*",
            "10.1.2.300",
            "10.1.2.9-3",
            "10.1.2.{1,x}",
            "nonsense",
            "10.1.2.{1",
        ] {
            assert!(AddrPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
