//! The Prometheus exporter over real HTTP: exact values, routes, and `promtool check metrics`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;

use director::metrics::{
    DestStats, Exporter, ExporterError, MetricsServer, PortStatsView, RealServerStatsView,
    ServiceStatsView, StatsSource, WorkerCounters, CONTENT_TYPE, MAX_DROP_REASONS,
};
use director::model::{ForwardMethod, Protocol, ServiceKey};

const DROP_REASONS: &[&str] = &["truncated", "bad_ipv4_checksum", "no_service"];

struct RealServer {
    addr: SocketAddr,
    forward: ForwardMethod,
    weight: u32,
    load: [u64; 3],
    overloaded: bool,
    stats: Arc<DestStats>,
}

struct Service {
    key: ServiceKey,
    stats: Arc<DestStats>,
    real_servers: Vec<RealServer>,
}

struct FakeSource {
    services: Vec<Service>,
    workers: Vec<Arc<WorkerCounters>>,
}

impl StatsSource for FakeSource {
    fn services(&self) -> Vec<ServiceStatsView> {
        self.services
            .iter()
            .map(|s| ServiceStatsView {
                key: s.key,
                scheduler: "wrr".into(),
                totals: s.stats.sum(),
                real_servers: s
                    .real_servers
                    .iter()
                    .map(|r| RealServerStatsView {
                        addr: r.addr,
                        forward: r.forward,
                        weight: r.weight,
                        active: r.load[0],
                        inactive: r.load[1],
                        persistent: r.load[2],
                        overloaded: r.overloaded,
                        totals: r.stats.sum(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn workers(&self) -> Vec<Arc<WorkerCounters>> {
        self.workers.clone()
    }

    fn ports(&self) -> Vec<PortStatsView> {
        vec![PortStatsView {
            port: 0,
            // The basic stats every PMD reports, plus a per-queue one.
            xstats: vec![
                ("rx_good_packets".into(), 5000),
                ("tx_good_packets".into(), 4900),
                ("rx_good_bytes".into(), 320_000),
                ("tx_good_bytes".into(), 310_000),
                ("rx_missed_errors".into(), 7),
                ("rx_errors".into(), 0),
                ("tx_errors".into(), 0),
                ("rx_mbuf_allocation_errors".into(), 3),
                ("rx_q0_packets".into(), 4990),
            ],
        }]
    }
}

/// Two workers write into the per-worker slots, like the data plane does.
fn traffic(stats: &DestStats, w: usize, conns: u64, pkts: (u64, u64), bytes: (u64, u64)) {
    let slot = stats.slot(w);
    slot.conns.add(conns);
    slot.inpkts.add(pkts.0);
    slot.outpkts.add(pkts.1);
    slot.inbytes.add(bytes.0);
    slot.outbytes.add(bytes.1);
}

fn fake() -> FakeSource {
    let web = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "203.0.113.200".parse().expect("ip"),
        port: 80,
    };
    let rs1 = Arc::new(DestStats::new(2));
    traffic(&rs1, 0, 10, (100, 90), (15_000, 120_000));
    traffic(&rs1, 1, 5, (50, 40), (5_000, 60_000));
    let rs2 = Arc::new(DestStats::new(2));
    traffic(&rs2, 1, 3, (30, 0), (2_000, 0));
    let web_stats = Arc::new(DestStats::new(2));
    traffic(&web_stats, 0, 10, (100, 90), (15_000, 120_000));
    traffic(&web_stats, 1, 8, (80, 40), (7_000, 60_000));
    let fwm_rs = Arc::new(DestStats::new(2));
    traffic(&fwm_rs, 0, 1, (9, 0), (900, 0));
    let fwm_stats = Arc::new(DestStats::new(2));
    traffic(&fwm_stats, 0, 1, (9, 0), (900, 0));

    let w0 = Arc::new(WorkerCounters::new(0));
    w0.rx_packets.add(1000);
    w0.rx_bytes.add(64_000);
    w0.tx_packets.add(990);
    w0.tx_bytes.add(63_000);
    w0.count_drop(0);
    w0.count_drop(2);
    w0.count_drop(2);
    w0.count_drop(7); // unnamed slot -> "other"
    w0.count_drop(999); // out of range -> "other"
    w0.redirects_sent.add(4);
    w0.redirects_received.add(6);
    w0.conns_created.add(12);
    w0.conns_expired.add(2);
    w0.conns_refused.add(1);
    w0.conn_table_size.set(10);
    w0.conn_table_capacity.set(65536);
    w0.busy_polls.add(300);
    w0.idle_polls.add(7000);
    w0.fast_path_packets.add(250);
    w0.reply_takeovers.set(3);
    let w1 = Arc::new(WorkerCounters::new(1));
    w1.rx_packets.add(20);
    w1.count_drop(1);

    FakeSource {
        services: vec![
            Service {
                key: web,
                stats: web_stats,
                real_servers: vec![
                    RealServer {
                        addr: "198.51.100.100:80".parse().expect("addr"),
                        forward: ForwardMethod::Masq,
                        weight: 3,
                        load: [4, 11, 0],
                        overloaded: false,
                        stats: rs1,
                    },
                    RealServer {
                        addr: "198.51.100.101:8080".parse().expect("addr"),
                        forward: ForwardMethod::Masq,
                        weight: 0,
                        load: [1, 2, 0],
                        overloaded: false,
                        stats: rs2,
                    },
                ],
            },
            Service {
                key: ServiceKey::Fwmark {
                    mark: 1,
                    ipv6: false,
                },
                stats: fwm_stats,
                real_servers: vec![RealServer {
                    addr: "[2001:db8::5]:0".parse().expect("addr"),
                    forward: ForwardMethod::Tunnel,
                    weight: 1,
                    load: [0, 1, 2],
                    overloaded: true,
                    stats: fwm_rs,
                }],
            },
        ],
        workers: vec![w0, w1],
    }
}

/// Sends `request` raw and returns (status line, headers, body).
fn http(addr: SocketAddr, request: &str) -> (String, Vec<String>, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(request.as_bytes()).expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let mut lines = head.split("\r\n").map(str::to_owned);
    let status = lines.next().expect("status line");
    (status, lines.collect(), body.to_owned())
}

fn get(addr: SocketAddr, path: &str) -> (String, Vec<String>, String) {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
}

/// `name{labels}` -> value, for every sample line.
fn samples(text: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (k, v) = line.rsplit_once(' ').expect("sample line");
        assert!(
            m.insert(k.to_owned(), v.to_owned()).is_none(),
            "duplicate sample {k}"
        );
    }
    m
}

fn start() -> MetricsServer {
    let exporter = Exporter::new(Arc::new(fake()), DROP_REASONS).expect("exporter");
    MetricsServer::start("127.0.0.1:0".parse().expect("addr"), Arc::new(exporter))
        .expect("start server")
}

#[test]
fn scrape_has_exact_values() {
    let server = start();
    let (status, headers, body) = get(server.local_addr(), "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains(&format!("Content-Type: {CONTENT_TYPE}")),
        "{headers:?}"
    );
    assert!(
        headers.contains(&format!("Content-Length: {}", body.len())),
        "{headers:?}"
    );
    let m = samples(&body);
    let rs1 = r#"service="TCP/203.0.113.200:80",real_server="198.51.100.100:80",forward="masq""#;
    let rs2 = r#"service="TCP/203.0.113.200:80",real_server="198.51.100.101:8080",forward="masq""#;
    let rs3 = r#"service="FWM/1",real_server="[2001:db8::5]:0",forward="tunnel""#;
    let want: Vec<(String, &str)> = vec![
        // Real server 1: summed over both worker slots.
        (
            format!("director_real_server_connections_total{{{rs1}}}"),
            "15",
        ),
        (
            format!("director_real_server_packets_total{{{rs1},direction=\"in\"}}"),
            "150",
        ),
        (
            format!("director_real_server_packets_total{{{rs1},direction=\"out\"}}"),
            "130",
        ),
        (
            format!("director_real_server_bytes_total{{{rs1},direction=\"in\"}}"),
            "20000",
        ),
        (
            format!("director_real_server_bytes_total{{{rs1},direction=\"out\"}}"),
            "180000",
        ),
        (
            format!("director_real_server_active_connections{{{rs1}}}"),
            "4",
        ),
        (
            format!("director_real_server_inactive_connections{{{rs1}}}"),
            "11",
        ),
        (
            format!("director_real_server_persistent_connections{{{rs1}}}"),
            "0",
        ),
        (format!("director_real_server_weight{{{rs1}}}"), "3"),
        (format!("director_real_server_up{{{rs1}}}"), "1"),
        (format!("director_real_server_quiesced{{{rs1}}}"), "0"),
        (format!("director_real_server_overloaded{{{rs1}}}"), "0"),
        // Real server 2: quiesced.
        (
            format!("director_real_server_connections_total{{{rs2}}}"),
            "3",
        ),
        (
            format!("director_real_server_packets_total{{{rs2},direction=\"in\"}}"),
            "30",
        ),
        (
            format!("director_real_server_packets_total{{{rs2},direction=\"out\"}}"),
            "0",
        ),
        (
            format!("director_real_server_bytes_total{{{rs2},direction=\"in\"}}"),
            "2000",
        ),
        (format!("director_real_server_weight{{{rs2}}}"), "0"),
        (format!("director_real_server_up{{{rs2}}}"), "0"),
        (format!("director_real_server_quiesced{{{rs2}}}"), "1"),
        // FWM real server: IPv6, overloaded.
        (
            format!("director_real_server_connections_total{{{rs3}}}"),
            "1",
        ),
        (
            format!("director_real_server_persistent_connections{{{rs3}}}"),
            "2",
        ),
        (format!("director_real_server_up{{{rs3}}}"), "0"),
        (format!("director_real_server_overloaded{{{rs3}}}"), "1"),
        // Services.
        (
            r#"director_service_connections_total{service="TCP/203.0.113.200:80"}"#.into(),
            "18",
        ),
        (
            r#"director_service_packets_total{service="TCP/203.0.113.200:80",direction="in"}"#
                .into(),
            "180",
        ),
        (
            r#"director_service_bytes_total{service="TCP/203.0.113.200:80",direction="out"}"#
                .into(),
            "180000",
        ),
        (
            r#"director_service_active_connections{service="TCP/203.0.113.200:80"}"#.into(),
            "5",
        ),
        (
            r#"director_service_inactive_connections{service="TCP/203.0.113.200:80"}"#.into(),
            "13",
        ),
        (
            r#"director_service_real_servers{service="TCP/203.0.113.200:80"}"#.into(),
            "2",
        ),
        (
            r#"director_service_up{service="TCP/203.0.113.200:80"}"#.into(),
            "1",
        ),
        (r#"director_service_up{service="FWM/1"}"#.into(), "0"),
        (
            r#"director_service_info{service="TCP/203.0.113.200:80",scheduler="wrr"}"#.into(),
            "1",
        ),
        // Workers.
        (
            r#"director_worker_rx_packets_total{worker="0"}"#.into(),
            "1000",
        ),
        (
            r#"director_worker_rx_packets_total{worker="1"}"#.into(),
            "20",
        ),
        (
            r#"director_worker_rx_bytes_total{worker="0"}"#.into(),
            "64000",
        ),
        (
            r#"director_worker_tx_packets_total{worker="0"}"#.into(),
            "990",
        ),
        (
            r#"director_worker_tx_bytes_total{worker="0"}"#.into(),
            "63000",
        ),
        (
            r#"director_worker_drops_total{worker="0",reason="truncated"}"#.into(),
            "1",
        ),
        (
            r#"director_worker_drops_total{worker="0",reason="bad_ipv4_checksum"}"#.into(),
            "0",
        ),
        (
            r#"director_worker_drops_total{worker="0",reason="no_service"}"#.into(),
            "2",
        ),
        (
            r#"director_worker_drops_total{worker="0",reason="other"}"#.into(),
            "2",
        ),
        (
            r#"director_worker_drops_total{worker="1",reason="bad_ipv4_checksum"}"#.into(),
            "1",
        ),
        (
            r#"director_worker_redirects_total{worker="0",direction="sent"}"#.into(),
            "4",
        ),
        (
            r#"director_worker_redirects_total{worker="0",direction="received"}"#.into(),
            "6",
        ),
        (
            r#"director_worker_connections_created_total{worker="0"}"#.into(),
            "12",
        ),
        (
            r#"director_worker_connections_expired_total{worker="0"}"#.into(),
            "2",
        ),
        (
            r#"director_worker_connections_refused_total{worker="0"}"#.into(),
            "1",
        ),
        (
            r#"director_worker_conn_table_entries{worker="0"}"#.into(),
            "10",
        ),
        (
            r#"director_worker_conn_table_capacity{worker="0"}"#.into(),
            "65536",
        ),
        (
            r#"director_worker_fast_path_packets_total{worker="0"}"#.into(),
            "250",
        ),
        (
            r#"director_worker_reply_takeovers_total{worker="0"}"#.into(),
            "3",
        ),
        (
            r#"director_worker_polls_total{worker="0",kind="busy"}"#.into(),
            "300",
        ),
        (
            r#"director_worker_polls_total{worker="0",kind="idle"}"#.into(),
            "7000",
        ),
        // Ports.
        (r#"director_port_rx_packets_total{port="0"}"#.into(), "5000"),
        (r#"director_port_rx_missed_total{port="0"}"#.into(), "7"),
        (r#"director_port_tx_bytes_total{port="0"}"#.into(), "310000"),
        (r#"director_port_rx_nombuf_total{port="0"}"#.into(), "3"),
        (
            r#"director_port_xstats_total{port="0",name="rx_q0_packets"}"#.into(),
            "4990",
        ),
        (
            r#"director_port_xstats_total{port="0",name="rx_missed_errors"}"#.into(),
            "7",
        ),
        (
            format!(
                "director_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            ),
            "1",
        ),
    ];
    for (k, v) in &want {
        assert_eq!(
            m.get(k).map(String::as_str),
            Some(*v),
            "sample {k} in:\n{body}"
        );
    }
    // Each worker exports one drop sample per named reason plus "other", nothing else.
    let drop_samples = m
        .keys()
        .filter(|k| k.starts_with("director_worker_drops_total"))
        .count();
    assert_eq!(drop_samples, 2 * (DROP_REASONS.len() + 1));
    // Every real-server counter family has exactly 3 real servers.
    let conn_samples = m
        .keys()
        .filter(|k| k.starts_with("director_real_server_connections_total{"))
        .count();
    assert_eq!(conn_samples, 3);
    server.shutdown();
}

#[test]
fn scrape_passes_promtool() {
    let server = start();
    let (_, _, body) = get(server.local_addr(), "/metrics");
    server.shutdown();
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: promtool not installed, cannot lint the exposition");
            return;
        }
        Err(e) => panic!("spawn promtool: {e}"),
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics failed: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn routes_and_errors() {
    let server = start();
    let addr = server.local_addr();
    let (status, headers, body) = get(addr, "/healthz");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "ok\n")
    );
    assert!(headers.contains(&"Connection: close".to_owned()));
    let (status, _, body) = get(addr, "/");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 404 Not Found", "not found\n")
    );
    let (status, _, _) = get(addr, "/metricsx");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, headers, _) = http(addr, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(headers.contains(&"Allow: GET, HEAD".to_owned()));
    let (status, _, _) = http(addr, "garbage\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    // A client that connects and leaves without a request does not stop the server.
    drop(TcpStream::connect(addr).expect("connect"));
    // HEAD: headers with the body's length, no body.
    let (status, headers, body) = http(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.is_empty());
    let (_, _, full) = get(addr, "/metrics?x=1");
    assert!(
        headers.contains(&format!("Content-Length: {}", full.len())),
        "{headers:?}"
    );
    server.shutdown();
    // Shut down means the port is closed.
    assert!(
        TcpStream::connect(addr).is_err(),
        "server still listening after shutdown"
    );
}

#[test]
fn drop_reason_table_is_validated() {
    let src: Arc<dyn StatsSource> = Arc::new(fake());
    let too_many: &'static [&'static str] = Box::leak(
        (0..MAX_DROP_REASONS)
            .map(|i| &*Box::leak(format!("r{i}").into_boxed_str()))
            .collect::<Vec<&str>>()
            .into_boxed_slice(),
    );
    assert_eq!(
        Exporter::new(Arc::clone(&src), too_many).err(),
        Some(ExporterError::TooManyDropReasons {
            given: MAX_DROP_REASONS,
            max: MAX_DROP_REASONS - 1
        })
    );
    assert_eq!(
        Exporter::new(Arc::clone(&src), &["a", "b", "a"]).err(),
        Some(ExporterError::BadDropReason("a"))
    );
    assert_eq!(
        Exporter::new(Arc::clone(&src), &["other"]).err(),
        Some(ExporterError::BadDropReason("other"))
    );
    assert!(Exporter::new(src, &too_many[..MAX_DROP_REASONS - 1]).is_ok());
}

#[test]
fn dashboard_uses_only_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker/grafana/director-dashboard.json"
    );
    let dashboard = std::fs::read_to_string(path).expect("read dashboard");
    let server = start();
    let (_, _, body) = get(server.local_addr(), "/metrics");
    server.shutdown();
    let exported: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut used = Vec::new();
    let mut rest = dashboard.as_str();
    while let Some(i) = rest.find("director_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        used.push(&tail[..end]);
        rest = &tail[end..];
    }
    assert!(used.len() >= 15, "dashboard queries found: {used:?}");
    for name in used {
        assert!(
            exported.contains(&name),
            "dashboard uses {name}, not exported"
        );
    }
}
