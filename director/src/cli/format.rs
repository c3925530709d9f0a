//! ipvsadm 1.31's output formats, byte for byte: `-L` (plain, `--stats`, `--rate`,
//! `--thresholds`, `--persistent-conn`, `--tun-info`, `--exact`), `-L -c`, `-L --timeout`
//! and `-S`.
//!
//! Addresses and ports are always printed numerically: ipvsadm resolves names without `-n`,
//! director has no resolver contract, so `-L` and `-L -n` print the same.
//!
//! Sorting is ipvsadm's: services by fwmark, family, protocol, address, port; destinations
//! by address, port; each difference computed as C `int` subtraction of host-order values
//! (so 10.0.0.1 sorts after 192.168.0.1), ordered with glibc 2.36's merge sort, whose result
//! we reproduce exactly even where that comparison is not transitive.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::args::{ListFormat, ListRequest, ListWhat};
use super::libc_compat::inet_ntop6;
use super::listing::{ConnListing, DestListing, ListSnapshot, ServiceListing};
use crate::control::table::TableError;
use crate::model::{ForwardMethod, SchedFlags, ServiceConfig, ServiceKey};

/// Render a listing request. The only error is [`TableError::NoSuchService`] for a
/// one-service listing (ipvsadm prints it and exits 1).
pub fn render_list(snap: &ListSnapshot, req: &ListRequest) -> Result<String, TableError> {
    let f = &req.format;
    let mut out = String::new();
    match &req.what {
        ListWhat::All => {
            let _ = writeln!(
                out,
                "IP Virtual Server version 1.2.1 (size={})",
                snap.conn_table_size as i32
            );
            out.push_str(title(f));
            for s in sorted_services(&snap.services, f.nosort) {
                service_entry(&mut out, s, f);
            }
        }
        ListWhat::Service(key) => {
            let s = snap
                .services
                .iter()
                .find(|s| s.config.key == *key)
                .ok_or(TableError::NoSuchService)?;
            out.push_str(title(f));
            service_entry(&mut out, s, f);
        }
        ListWhat::Connections => connections(&mut out, &snap.connections, f),
        ListWhat::Timeout => {
            let t = snap.timeouts;
            let _ = writeln!(
                out,
                "Timeout (tcp tcpfin udp): {} {} {}",
                t.tcp as i32, t.tcp_fin as i32, t.udp as i32
            );
        }
        // No sync daemon runs, so ipvsadm would print no line.
        ListWhat::Daemon => {}
    }
    Ok(out)
}

/// `ipvsadm -S -n`: the rules that rebuild the configuration, sorted, no header.
pub fn render_save(snap: &ListSnapshot) -> String {
    let mut out = String::new();
    for s in sorted_services(&snap.services, false) {
        save_entry(&mut out, s);
    }
    out
}

/// ipvsadm's print_title.
fn title(f: &ListFormat) -> &'static str {
    if f.stats {
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  -> RemoteAddress:Port\n"
    } else if f.rate {
        "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n  -> RemoteAddress:Port\n"
    } else if f.thresholds {
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\n"
    } else if f.persistent_conn {
        "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\n"
    } else if f.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
    }
}

/// `addr:port` numerically, IPv6 in brackets (ipvsadm's addrport_to_anyname with -n).
fn addrport(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{}]:{port}", inet_ntop6(a)),
    }
}

/// Cut `s` to `n` bytes, as ipvsadm's `name[n] = '\0'`.
fn cut(mut s: String, n: usize) -> String {
    if s.len() > n {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn is_v6(key: &ServiceKey) -> bool {
    match key {
        ServiceKey::Addr { addr, .. } => addr.is_ipv6(),
        ServiceKey::Fwmark { ipv6, .. } => *ipv6,
    }
}

/// The service column ("TCP  10.0.0.1:80", "FWM  1", "FWM  1 IPv6").
fn service_name(key: &ServiceKey) -> String {
    match key {
        // ipvsadm prints the unsigned mark with %d.
        ServiceKey::Fwmark { mark, ipv6: false } => format!("FWM  {}", *mark as i32),
        ServiceKey::Fwmark { mark, ipv6: true } => format!("FWM  {} IPv6", *mark as i32),
        ServiceKey::Addr { proto, addr, port } => {
            let name = format!("{:<4} {}", proto.label(), addrport(addr, *port));
            if addr.is_ipv6() {
                name
            } else {
                cut(name, 33)
            }
        }
    }
}

/// The service part of a rule ("-t 10.0.0.1:80", "-f 1 -6").
fn service_rule_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Fwmark { mark, ipv6: false } => format!("-f {}", *mark as i32),
        ServiceKey::Fwmark { mark, ipv6: true } => format!("-f {} -6", *mark as i32),
        ServiceKey::Addr { proto, addr, port } => {
            let opt = match proto {
                crate::model::Protocol::Tcp => "-t",
                crate::model::Protocol::Udp => "-u",
            };
            format!("{opt} {}", addrport(addr, *port))
        }
    }
}

/// ipvsadm's print_sched_flags (sh/mh names for sh/mh, flag-N otherwise); "" if none.
fn sched_flags(scheduler: &str, f: &SchedFlags) -> String {
    let names: [(bool, &str); 3] = match scheduler {
        "sh" => [(f.flag1, "sh-fallback"), (f.flag2, "sh-port"), (false, "")],
        "mh" => [(f.flag1, "mh-fallback"), (f.flag2, "mh-port"), (false, "")],
        _ => [
            (f.flag1, "flag-1"),
            (f.flag2, "flag-2"),
            (f.flag3, "flag-3"),
        ],
    };
    names
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

fn any_flag(f: &SchedFlags) -> bool {
    f.flag1 || f.flag2 || f.flag3
}

/// The persistence mask as ipvsadm shows it, `None` when it is the host mask.
fn mask_text(c: &ServiceConfig) -> Option<String> {
    if is_v6(&c.key) {
        (c.netmask_prefix != 128).then(|| c.netmask_prefix.to_string())
    } else {
        let p = u32::from(c.netmask_prefix.min(32));
        let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
        (mask != u32::MAX).then(|| std::net::Ipv4Addr::from(mask).to_string())
    }
}

/// ipvsadm's print_largenum.
fn largenum(out: &mut String, i: u64, exact: bool) {
    let _ = if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        write!(out, "{i:>width$}")
    } else if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

/// One service and its destinations (ipvsadm's print_service_entry, listing formats).
fn service_entry(out: &mut String, s: &ServiceListing, f: &ListFormat) {
    let c = &s.config;
    let name = service_name(&c.key);
    let st = &s.stats;
    if f.stats {
        let _ = write!(out, "{name:<33}");
        for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
            largenum(out, v, f.exact);
        }
    } else if f.rate {
        let _ = write!(out, "{name:<33}");
        for v in [st.cps, st.inpps, st.outpps, st.inbps, st.outbps] {
            largenum(out, v, f.exact);
        }
    } else {
        let _ = write!(out, "{name} {}", c.scheduler);
        if any_flag(&c.flags) {
            let _ = write!(out, " ({})", sched_flags(&c.scheduler, &c.flags));
        }
        if let Some(timeout) = c.persistence {
            let _ = write!(out, " persistent {timeout}");
            if let Some(m) = mask_text(c) {
                let _ = write!(out, " mask {m}");
            }
        }
        if c.one_packet {
            out.push_str(" ops");
        }
    }
    out.push('\n');
    for d in sorted_dests(&s.dests, f.nosort) {
        dest_entry(out, d, f);
    }
}

fn dest_entry(out: &mut String, d: &DestListing, f: &ListFormat) {
    let c = &d.config;
    let name = addrport(&c.addr, c.port);
    let name = if c.addr.is_ipv6() {
        name
    } else {
        cut(name, 28)
    };
    let st = &d.stats;
    let weight = c.weight as i32;
    let _ = if f.stats {
        let _ = write!(out, "  -> {name:<28}");
        for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
            largenum(out, v, f.exact);
        }
        writeln!(out)
    } else if f.rate {
        let _ = write!(
            out,
            "  -> {name:<28} {:>8} {:>8} {:>8}",
            st.cps, st.inpps, st.outpps
        );
        largenum(out, st.inbps, f.exact);
        largenum(out, st.outbps, f.exact);
        writeln!(out)
    } else if f.thresholds {
        writeln!(
            out,
            "  -> {name:<28} {:<10} {:<10} {:<10} {:<10}",
            c.u_threshold, c.l_threshold, d.active_conns, d.inact_conns
        )
    } else if f.persistent_conn {
        writeln!(
            out,
            "  -> {name:<28} {:<9} {:<11} {:<10} {:<10}",
            c.weight, d.persist_conns, d.active_conns, d.inact_conns
        )
    } else if f.tun_info {
        let info = if c.forward == ForwardMethod::Tunnel {
            "ipip"
        } else {
            "n/a"
        };
        writeln!(
            out,
            "  -> {name:<28} {:<7} {info:<13} {weight:<6} {:<10} {:<10}",
            c.forward.label(),
            d.active_conns,
            d.inact_conns
        )
    } else {
        writeln!(
            out,
            "  -> {name:<28} {:<7} {weight:<6} {:<10} {:<10}",
            c.forward.label(),
            d.active_conns,
            d.inact_conns
        )
    };
}

/// One service as `-S` rules.
fn save_entry(out: &mut String, s: &ServiceListing) {
    let c = &s.config;
    let svc = service_rule_name(&c.key);
    let _ = write!(out, "-A {svc} -s {}", c.scheduler);
    if let Some(timeout) = c.persistence {
        let _ = write!(out, " -p {timeout}");
        if let Some(m) = mask_text(c) {
            let _ = write!(out, " -M {m}");
        }
    }
    if c.one_packet {
        out.push_str(" -o");
    }
    if any_flag(&c.flags) {
        let _ = write!(out, " -b {}", sched_flags(&c.scheduler, &c.flags));
    }
    out.push('\n');
    for d in sorted_dests(&s.dests, false) {
        let dc = &d.config;
        let (switch, tun) = match dc.forward {
            ForwardMethod::Masq => ("-m", ""),
            ForwardMethod::Tunnel => ("-i", " --tun-type ipip"),
            ForwardMethod::Route => ("-g", ""),
        };
        let _ = writeln!(
            out,
            "-a {svc} -r {} {switch} -w {}{tun}",
            addrport(&dc.addr, dc.port),
            dc.weight as i32
        );
    }
}

/// `-L -c` (ipvsadm's list_conn / print_conn).
fn connections(out: &mut String, conns: &[ConnListing], f: &ListFormat) {
    out.push_str("IPVS connection entries\n");
    out.push_str(if f.persistent_conn {
        "pro expire state       source             virtual            destination        pe name          pe_data\n"
    } else {
        "pro expire state       source             virtual            destination\n"
    });
    for c in conns {
        let expire = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            c.proto,
            expire,
            c.state,
            addrport(&c.client.0, c.client.1),
            addrport(&c.virt.0, c.virt.1),
            addrport(&c.dest.0, c.dest.1)
        );
    }
}

/// An address as ipvsadm's comparators see it: four host-order words (IPv4 in the first).
fn words(addr: &IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(*a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

/// C's `int r = a - b` for unsigned 32-bit values.
fn diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// Address difference as ipvsadm computes it; `v6` is the first operand's family.
fn addr_diff(a: &IpAddr, b: &IpAddr, v6: bool) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let n = if v6 { 4 } else { 1 };
    (0..n)
        .map(|i| diff(wa[i], wb[i]))
        .find(|&r| r != 0)
        .unwrap_or(0)
}

/// libipvs ipvs_cmp_services.
fn cmp_services(a: &ServiceListing, b: &ServiceListing) -> i32 {
    // (fwmark, af, protocol, address, port) as the kernel reports them; a fwmark
    // service has protocol TCP (ipvsadm sends it) and address 0.
    fn fields(k: &ServiceKey) -> (u32, u32, u32, IpAddr, u16) {
        const AF_INET: u32 = 2;
        const AF_INET6: u32 = 10;
        let af = if is_v6(k) { AF_INET6 } else { AF_INET };
        match k {
            ServiceKey::Fwmark { mark, ipv6 } => {
                let zero = if *ipv6 {
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
                };
                (*mark, af, 6, zero, 0)
            }
            ServiceKey::Addr { proto, addr, port } => {
                (0, af, u32::from(proto.number()), *addr, *port)
            }
        }
    }
    let (fa, fb) = (fields(&a.config.key), fields(&b.config.key));
    let r = diff(fa.0, fb.0);
    if r != 0 {
        return r;
    }
    let r = diff(fa.1, fb.1);
    if r != 0 {
        return r;
    }
    let r = diff(fa.2, fb.2);
    if r != 0 {
        return r;
    }
    let r = addr_diff(&fa.3, &fb.3, fa.1 == 10);
    if r != 0 {
        return r;
    }
    i32::from(fa.4) - i32::from(fb.4)
}

/// libipvs ipvs_cmp_dests.
fn cmp_dests(a: &DestListing, b: &DestListing) -> i32 {
    let r = addr_diff(&a.config.addr, &b.config.addr, a.config.addr.is_ipv6());
    if r != 0 {
        return r;
    }
    i32::from(a.config.port) - i32::from(b.config.port)
}

fn sorted_services(v: &[ServiceListing], nosort: bool) -> Vec<&ServiceListing> {
    let mut refs: Vec<&ServiceListing> = v.iter().collect();
    if !nosort {
        glibc_msort(&mut refs, |a, b| cmp_services(a, b));
    }
    refs
}

fn sorted_dests(v: &[DestListing], nosort: bool) -> Vec<&DestListing> {
    let mut refs: Vec<&DestListing> = v.iter().collect();
    if !nosort {
        glibc_msort(&mut refs, |a, b| cmp_dests(a, b));
    }
    refs
}

/// glibc 2.36 qsort's merge sort (msort_with_tmp): split at n/2, sort both halves, merge
/// taking from the left while `cmp(left, right) <= 0`. Reproduces its order exactly, also
/// for comparators that are not transitive (ipvsadm's wrap-around address difference).
pub fn glibc_msort<T: Copy>(v: &mut [T], cmp: impl Fn(&T, &T) -> i32 + Copy) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    glibc_msort(&mut v[..n1], cmp);
    glibc_msort(&mut v[n1..], cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            merged.push(v[i]);
            i += 1;
        } else {
            merged.push(v[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&v[i..n1]);
    merged.extend_from_slice(&v[j..n]);
    v.copy_from_slice(&merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn largenum_scales_like_ipvsadm() {
        let f = |i: u64, exact: bool| {
            let mut s = String::new();
            largenum(&mut s, i, exact);
            s
        };
        assert_eq!(f(0, false), "        0");
        assert_eq!(f(99_999_999, false), " 99999999");
        assert_eq!(f(100_000_000, false), "  100000K");
        assert_eq!(f(999_999_999, false), "  999999K");
        assert_eq!(f(1_000_000_000, false), "    1000M");
        assert_eq!(f(99_999_999_999, false), "   99999M");
        assert_eq!(f(100_000_000_000, false), "     100G");
        assert_eq!(f(123_456_789_012_345, false), "     123T");
        assert_eq!(f(12345, true), "    12345");
        assert_eq!(f(123_456_789, true), " 123456789");
        assert_eq!(f(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    fn msort_matches_glibc_on_a_non_transitive_order() {
        // 10.0.0.1 > 192.168.0.1 (wrap), 192.168.0.1 > 128.0.0.1, 128.0.0.1 > 10.0.0.1.
        let a: Vec<IpAddr> = ["10.0.0.1", "192.168.0.1", "128.0.0.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut v = a.clone();
        glibc_msort(&mut v, |x, y| addr_diff(x, y, false));
        // n1 = 1: [10.0.0.1] | sort([192.168.0.1, 128.0.0.1]) = [128.0.0.1, 192.168.0.1];
        // merge: 10.0.0.1 vs 128.0.0.1 -> 10 - 128 < 0 -> 10.0.0.1 first.
        let s: Vec<String> = v.iter().map(|a| a.to_string()).collect();
        assert_eq!(s, vec!["10.0.0.1", "128.0.0.1", "192.168.0.1"]);
        let mut w = vec![a[1], a[0]];
        glibc_msort(&mut w, |x, y| addr_diff(x, y, false));
        assert_eq!(w, vec![a[1], a[0]]);
    }
}
