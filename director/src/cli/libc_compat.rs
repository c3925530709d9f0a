//! The C library behaviours ipvsadm's parsing and printing rely on, in safe Rust:
//! `strtol` (base 10), `inet_aton`, glibc's `inet_ntop` for IPv6, `/etc/services` look-ups
//! and `gethostbyname` (IPv4 only).

use std::net::{Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// `strtol(s, &end, 10)` accepted only when the whole string was consumed (ipvsadm's
/// `string_to_number` test `*end == '\0' && end != s`): leading white space, an optional sign,
/// decimal digits. `None` for anything else or on overflow (ERANGE).
pub fn strtol_full(s: &str) -> Option<i64> {
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for b in digits.bytes() {
        let d = i64::from(b - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// ipvsadm's `string_to_number(s, min, max)`: the value if it is a whole number in range.
pub fn number_in(s: &str, min: i64, max: i64) -> Option<i64> {
    strtol_full(s).filter(|v| (min..=max).contains(v))
}

/// glibc `inet_aton`: `a`, `a.b`, `a.b.c` or `a.b.c.d`, each part decimal, octal (leading 0)
/// or hex (0x); anything after the address must start with white space.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let end = s.find(|c: char| c.is_ascii_whitespace()).unwrap_or(s.len());
    let parts: Vec<&str> = s[..end].split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        vals.push(c_number(p)?);
    }
    let (last, head) = vals.split_last()?;
    if head.iter().any(|&v| v > 0xff) {
        return None;
    }
    let limit: u64 = match head.len() {
        0 => 0xffff_ffff,
        1 => 0x00ff_ffff,
        2 => 0xffff,
        _ => 0xff,
    };
    if *last > limit {
        return None;
    }
    let mut addr: u64 = *last;
    for (i, v) in head.iter().enumerate() {
        addr |= v << (24 - 8 * i);
    }
    Some(Ipv4Addr::from(addr as u32))
}

/// One part of an `inet_aton` address: decimal, 0-prefixed octal or 0x-prefixed hex.
fn c_number(p: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
        (h, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    if p.is_empty() || (radix != 16 && digits.is_empty()) {
        return None;
    }
    if digits.is_empty() {
        // "0x" alone is 0 for glibc.
        return Some(0);
    }
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|&v| v <= 0xffff_ffff)
}

/// glibc `inet_ntop(AF_INET6, ...)`: lower-case hex, the longest run (>= 2) of zero groups
/// compressed (first one on ties), IPv4-mapped and IPv4-compatible forms in dotted quad.
pub fn inet_ntop6(a: &Ipv6Addr) -> String {
    let w = a.segments();
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            let len = i - start;
            if len >= 2 && best.is_none_or(|(_, l)| len > l) {
                best = Some((start, len));
            }
        } else {
            i += 1;
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some((start, len)) = best {
            if i == start {
                out.push_str(if i == 0 { "::" } else { ":" });
                i += len;
                continue;
            }
        }
        if i == 6 && best.is_some_and(|(s, l)| s == 0 && (l == 6 || (l == 5 && w[5] == 0xffff))) {
            let o = a.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            break;
        }
        out.push_str(&format!("{:x}", w[i]));
        if i < 7 {
            out.push(':');
        }
        i += 1;
    }
    out
}

/// `getservbyname(name, proto)` over `/etc/services`: the port of a service name.
pub fn service_port(name: &str, proto: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    services_lookup(&text, name, proto)
}

/// Look `name` (or an alias) up for `proto` in the text of a services(5) file.
pub fn services_lookup(text: &str, name: &str, proto: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let primary = words.next()?;
        let (port, p) = words.next()?.split_once('/')?;
        if p != proto || !(primary == name || words.any(|alias| alias == name)) {
            return None;
        }
        port.parse().ok()
    })
}

/// `gethostbyname(name)` restricted to IPv4 as ipvsadm's `host_to_addr`: the first IPv4
/// address the system resolver returns.
pub fn resolve_host_v4(name: &str) -> Option<Ipv4Addr> {
    (name, 0u16)
        .to_socket_addrs()
        .ok()?
        .find_map(|sa| match sa.ip() {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_like_ipvsadm() {
        assert_eq!(strtol_full("42"), Some(42));
        assert_eq!(strtol_full("  +7"), Some(7));
        assert_eq!(strtol_full("-0"), Some(0));
        assert_eq!(strtol_full("-5"), Some(-5));
        assert_eq!(strtol_full(""), None);
        assert_eq!(strtol_full(" "), None);
        assert_eq!(strtol_full("5 "), None);
        assert_eq!(strtol_full("0x10"), None);
        assert_eq!(strtol_full("99999999999999999999"), None);
        assert_eq!(number_in("65535", 0, 65535), Some(65535));
        assert_eq!(number_in("65536", 0, 65535), None);
    }

    #[test]
    fn inet_aton_forms() {
        assert_eq!(inet_aton("10.1.1.200"), Some(Ipv4Addr::new(10, 1, 1, 200)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("10.1.2"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(inet_aton("010.0.0.1"), Some(Ipv4Addr::new(8, 0, 0, 1)));
        assert_eq!(inet_aton("167772161"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            inet_aton("255.255.255.0"),
            Some(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(inet_aton("256.0.0.1"), None);
        assert_eq!(inet_aton("1.2.3.4.5"), None);
        assert_eq!(inet_aton("1..3"), None);
        assert_eq!(inet_aton("09.1.1.1"), None);
        assert_eq!(inet_aton("host"), None);
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn ntop6_like_glibc() {
        let f = |s: &str| inet_ntop6(&s.parse().unwrap());
        assert_eq!(f("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(f("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
        assert_eq!(f("::"), "::");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("fe80::"), "fe80::");
        assert_eq!(f("::ffff:10.0.0.1"), "::ffff:10.0.0.1");
        assert_eq!(f("::10.0.0.1"), "::10.0.0.1");
        assert_eq!(f("2001:DB8::A"), "2001:db8::a");
    }

    #[test]
    fn services_file() {
        let text = "# comment\nhttp\t\t80/tcp\t\twww # WorldWideWeb HTTP\ndomain\t\t53/udp\n";
        assert_eq!(services_lookup(text, "http", "tcp"), Some(80));
        assert_eq!(services_lookup(text, "www", "tcp"), Some(80));
        assert_eq!(services_lookup(text, "http", "udp"), None);
        assert_eq!(services_lookup(text, "domain", "udp"), Some(53));
        assert_eq!(services_lookup(text, "WorldWideWeb", "tcp"), None);
    }
}
