//! Listings compared byte for byte with golden files derived from ipvsadm 1.31's format
//! strings (see golden_cli/derive.py, which does not use director's code).
//!
//! The table is built by parsing ipvsadm command lines and executing them as the daemon
//! does ([`director::control::execute`]); counters and connections are overlaid the way the
//! daemon fills them in.

use std::net::IpAddr;

use director::cli::args::{parse, Command, Invocation};
use director::cli::listing::{ConnListing, ListSnapshot, Stats};
use director::control::execute;
use director::control::table::IpvsTable;
use director::model::{Protocol, ServiceKey};

/// The fixture, in insertion order (see derive.py for the sorted order).
const FIXTURE: &[&str] = &[
    "-A -t 10.0.0.1:80 -p",
    "-a -t 10.0.0.1:80 -r 192.168.1.1:80 -m",
    "-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 2 -x 100 -y 50",
    "-A -u 10.0.0.1:53 -s rr",
    "-a -u 10.0.0.1:53 -r 192.168.1.1",
    "-A -f 1 -s sh -b sh-fallback,sh-port",
    "-a -f 1 -r 192.168.1.3 -i",
    "-A -t 192.168.0.10:443 -s wrr -p 600 -M 255.255.255.0",
    "-a -t 192.168.0.10:443 -r 10.2.0.1 -g -w 5",
    "-a -t 192.168.0.10:443 -r 172.16.0.1:8443 -w 0",
    "-A -u 10.0.0.2:5353 -s lc -o",
    "-a -u 10.0.0.2:5353 -r 192.168.1.5 -m -w 3",
    "-A -t [2001:db8::1]:80 -s rr",
    "-a -t [2001:db8::1]:80 -r 2001:db8::10 -m",
    "--set 1000 0 60",
];

fn command(line: &str) -> Command {
    let argv: Vec<String> = std::iter::once("ipvsadm")
        .chain(line.split_whitespace())
        .map(String::from)
        .collect();
    match parse(&argv, false) {
        Ok(Invocation::Run(c)) => c,
        other => panic!("{line}: {other:?}"),
    }
}

fn fixture_table() -> IpvsTable {
    let mut t = IpvsTable::new();
    for line in FIXTURE {
        let r = execute(&mut t, &command(line), ListSnapshot::from_table);
        assert!(r.ok, "{line}: {}", r.error);
    }
    t
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Counters as the daemon would report them (values chosen to hit every print_largenum
/// range); must match derive.py.
fn with_counters(t: &IpvsTable) -> ListSnapshot {
    let mut snap = ListSnapshot::from_table(t);
    let addr_key = |proto, addr: &str, port| ServiceKey::Addr {
        proto,
        addr: ip(addr),
        port,
    };
    for s in &mut snap.services {
        let key = s.config.key;
        if key == addr_key(Protocol::Tcp, "10.0.0.1", 80) {
            s.stats = Stats {
                conns: 15,
                inpkts: 120,
                outpkts: 100,
                inbytes: 8000,
                outbytes: 123_456_789_012,
                cps: 2,
                inpps: 30,
                outpps: 25,
                inbps: 123_456_789,
                outbps: 1_500_000_000,
            };
        } else if key == addr_key(Protocol::Udp, "10.0.0.1", 53) {
            s.stats = Stats {
                conns: 7,
                inpkts: 7,
                outpkts: 7,
                inbytes: 420,
                outbytes: 980,
                ..Stats::default()
            };
        } else if matches!(key, ServiceKey::Fwmark { mark: 1, .. }) {
            s.stats.inbytes = 123_456_789_012_345;
        }
        for d in &mut s.dests {
            match (d.config.addr.to_string().as_str(), d.config.port) {
                ("192.168.1.1", 80) => {
                    d.stats = Stats {
                        conns: 10,
                        inpkts: 80,
                        outpkts: 70,
                        inbytes: 5000,
                        outbytes: 100_000_000_000,
                        cps: 1,
                        inpps: 20,
                        outpps: 15,
                        inbps: 99_999_999,
                        outbps: 100_000_000,
                    };
                    (d.active_conns, d.inact_conns, d.persist_conns) = (3, 12, 2);
                }
                ("192.168.1.2", 8080) => {
                    d.stats = Stats {
                        conns: 5,
                        inpkts: 40,
                        outpkts: 30,
                        inbytes: 3000,
                        outbytes: 23_456_789_012,
                        cps: 1,
                        inpps: 10,
                        outpps: 10,
                        inbps: 2000,
                        outbps: 4000,
                    };
                    (d.active_conns, d.inact_conns, d.persist_conns) = (1, 0, 1);
                }
                ("192.168.1.1", 53) => {
                    d.stats = Stats {
                        conns: 7,
                        inpkts: 7,
                        outpkts: 7,
                        inbytes: 420,
                        outbytes: 980,
                        ..Stats::default()
                    };
                    d.inact_conns = 5;
                }
                ("192.168.1.3", 0) => d.stats.inbytes = 123_456_789_012_345,
                _ => {}
            }
        }
    }
    let conn =
        |proto: &str, expires, state: &str, c: (&str, u16), v: (&str, u16), d: (&str, u16)| {
            ConnListing {
                proto: proto.into(),
                client: (ip(c.0), c.1),
                virt: (ip(v.0), v.1),
                dest: (ip(d.0), d.1),
                state: state.into(),
                expires,
            }
        };
    snap.connections = vec![
        conn(
            "TCP",
            897,
            "ESTABLISHED",
            ("10.0.0.2", 40000),
            ("10.0.0.1", 80),
            ("192.168.1.1", 80),
        ),
        conn(
            "IP",
            359,
            "NONE",
            ("10.0.0.2", 0),
            ("10.0.0.1", 80),
            ("192.168.1.1", 80),
        ),
        conn(
            "UDP",
            299,
            "UDP",
            ("10.0.0.2", 5353),
            ("10.0.0.1", 53),
            ("192.168.1.1", 53),
        ),
        conn(
            "TCP",
            65,
            "SYN_RECV",
            ("2001:db8::99", 1234),
            ("2001:db8::1", 80),
            ("2001:db8::10", 80),
        ),
    ];
    snap
}

fn golden(name: &str) -> String {
    let path = format!("{}/tests/golden_cli/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Run `args` against the fixture with counters; returns stdout.
fn run(args: &str) -> String {
    let mut t = fixture_table();
    let cmd = if args.is_empty() {
        match parse(&["ipvsadm".to_string()], false) {
            Ok(Invocation::Run(c)) => c,
            other => panic!("{other:?}"),
        }
    } else {
        command(args)
    };
    let r = execute(&mut t, &cmd, with_counters);
    assert!(r.ok, "{args}: {}", r.error);
    assert_eq!(r.exit_code, 0);
    r.output
}

#[track_caller]
fn check(args: &str, file: &str) {
    let got = run(args);
    let want = golden(file);
    assert!(
        got == want,
        "ipvsadm {args} differs from {file}\n--- got ---\n{got}--- want ---\n{want}"
    );
}

#[test]
fn list_numeric() {
    check("-L -n", "list_n.txt");
    check("-ln", "list_n.txt");
    check("--list --numeric --sort", "list_n.txt");
}

#[test]
fn list_without_n_is_numeric_too() {
    check("-L", "list_n.txt");
    check("", "list_n.txt");
}

#[test]
fn list_stats() {
    check("-L -n --stats", "list_stats.txt");
    check("-L -n --stats --exact", "list_stats_exact.txt");
    check("-Ln --stats -X", "list_stats_exact.txt");
}

#[test]
fn list_rate() {
    check("-L -n --rate", "list_rate.txt");
}

#[test]
fn list_thresholds() {
    check("-L -n --thresholds", "list_thresholds.txt");
}

#[test]
fn list_persistent_conn() {
    check("-L -n --persistent-conn", "list_persistent_conn.txt");
}

#[test]
fn list_tun_info() {
    check("-L -n --tun-info", "list_tun_info.txt");
}

#[test]
fn list_one_service_and_nosort() {
    check("-L -n -t 10.0.0.1:80", "list_service.txt");
    check("-L -n -t 10.0.0.1:http", "list_service.txt");
    check("-L -n -t 10.0.0.1:80 --nosort", "list_nosort_tcp80.txt");
}

#[test]
fn list_connections() {
    check("-L -n -c", "list_conn.txt");
    check("-lnc", "list_conn.txt");
    check("-L -n -c --persistent-conn", "list_conn_persistent.txt");
}

#[test]
fn list_timeout() {
    check("-L --timeout", "timeout.txt");
}

#[test]
fn save() {
    check("-S", "save.txt");
    check("-S -n", "save.txt");
    assert_eq!(fixture_table().save(), golden("save.txt"));
}

#[test]
fn daemon_listing_is_empty_without_sync_daemon() {
    assert_eq!(run("-L --daemon"), "");
}

#[test]
fn listing_a_missing_service_exits_1() {
    let mut t = fixture_table();
    let r = execute(&mut t, &command("-L -n -t 10.9.9.9:80"), with_counters);
    assert!(!r.ok);
    assert_eq!((r.error.as_str(), r.exit_code), ("No such service", 1));
    assert_eq!(r.output, "");
}
