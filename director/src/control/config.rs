//! The daemon's TOML configuration.
//!
//! Everything is validated here, before DPDK is touched, and every error names the key that is
//! wrong and what was expected. Example (see `docker/director.toml` for a full one):
//!
//! ```toml
//! [eal]
//! args = ["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--no-shconf",
//!         "--vdev=net_af_packet0,iface=dpdk-out", "--vdev=net_af_packet1,iface=dpdk-in"]
//!
//! [[port]]
//! name = "outside"
//! device = "net_af_packet0"
//! addresses = ["203.0.113.1/24"]
//!
//! [[port]]
//! name = "inside"
//! device = "net_af_packet1"
//! addresses = ["198.51.100.254/24"]
//!
//! [[route]]
//! prefix = "0.0.0.0/0"
//! via = "203.0.113.254"
//!
//! [[neighbour]]
//! port = "inside"
//! addr = "198.51.100.100"
//! mac = "02:00:00:00:01:00"
//!
//! [workers]
//! lcores = [1]
//! conn_table_capacity = 1048576
//! idle_sleep_us = 100
//!
//! [control]
//! socket = "/run/director/director.sock"
//! rules = "/etc/director/rules"
//!
//! [metrics]
//! listen = "127.0.0.1:9800"
//! ```

use serde::Deserialize;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// A configuration error: which key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `port[1].addresses[0]`.
    pub key: String,
    /// What was wrong / expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config: {}", self.message)
        } else {
            write!(f, "config: {}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// Raw TOML layout (private): parsed, then validated into [`Config`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    eal: RawEal,
    #[serde(default)]
    port: Vec<RawPort>,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    neighbour: Vec<RawNeighbour>,
    #[serde(default)]
    workers: RawWorkers,
    #[serde(default)]
    control: RawControl,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEal {
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: String,
    device: String,
    #[serde(default)]
    addresses: Vec<String>,
    mtu: Option<u16>,
    #[serde(default)]
    rx_desc: Option<u16>,
    #[serde(default)]
    tx_desc: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    prefix: String,
    via: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbour {
    port: String,
    addr: String,
    mac: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWorkers {
    lcores: Option<Vec<usize>>,
    conn_table_capacity: Option<usize>,
    idle_sleep_us: Option<u64>,
    mbufs: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<PathBuf>,
    rules: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

/// One IPv4 address with its prefix length, as `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    /// The address.
    pub addr: Ipv4Addr,
    /// Prefix length 0..=32.
    pub prefix_len: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/len` (or a bare address, taken as /32).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("expected an IPv4 address like 192.0.2.1/24, got {s:?}"))?;
        let prefix_len = match l {
            None => 32,
            Some(l) => match l.trim().parse::<u8>() {
                Ok(n) if n <= 32 => n,
                _ => return Err(format!("expected a prefix length 0..32 in {s:?}")),
            },
        };
        Ok(Ipv4Cidr { addr, prefix_len })
    }
}

/// A DPDK port as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Name used in routes, neighbours and metrics labels.
    pub name: String,
    /// DPDK device: a vdev name given in the EAL args (`net_ring0`), a full vdev string to
    /// probe (`net_af_packet0,iface=veth0`), or a PCI address (`0000:01:00.0`).
    pub device: String,
    /// The director's own addresses on this port (answered for in ARP and ICMP echo).
    pub addresses: Vec<Ipv4Cidr>,
    /// Port MTU (default 1500).
    pub mtu: u16,
    /// RX descriptors per queue.
    pub rx_desc: u16,
    /// TX descriptors per queue.
    pub tx_desc: u16,
}

/// A static route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteConfig {
    /// Destination prefix (`0.0.0.0/0` for the default route).
    pub prefix: Ipv4Cidr,
    /// Gateway; must be on a connected network of some port.
    pub via: Ipv4Addr,
}

/// A static neighbour (ARP) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighbourConfig {
    /// Index into [`Config::ports`].
    pub port: usize,
    /// IPv4 address.
    pub addr: Ipv4Addr,
    /// MAC address.
    pub mac: [u8; 6],
}

/// The validated daemon configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Extra EAL arguments (program name excluded).
    pub eal_args: Vec<String>,
    /// Ports, in port-id order of the data plane.
    pub ports: Vec<PortConfig>,
    /// Static routes.
    pub routes: Vec<RouteConfig>,
    /// Static neighbours.
    pub neighbours: Vec<NeighbourConfig>,
    /// CPU cores the workers are pinned to (one worker per entry).
    pub worker_lcores: Vec<usize>,
    /// Connection-table capacity per worker.
    pub conn_table_capacity: usize,
    /// How long an idle worker sleeps after a run of empty polls (0 = pure busy polling).
    pub idle_sleep_us: u64,
    /// Mbufs in the packet pool.
    pub mbufs: u32,
    /// Control socket path.
    pub socket: PathBuf,
    /// Optional rules file (ipvsadm -S format) restored at start.
    pub rules: Option<PathBuf>,
    /// Metrics listen address.
    pub metrics_listen: SocketAddr,
}

/// Default control socket path.
pub const DEFAULT_SOCKET: &str = "/run/director/director.sock";
/// Default Prometheus listen address (loopback only).
pub const DEFAULT_METRICS: &str = "127.0.0.1:9800";

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("expected a MAC like 02:00:00:00:00:01, got {s:?}"));
    }
    for (i, p) in parts.iter().enumerate() {
        mac[i] = u8::from_str_radix(p, 16)
            .map_err(|_| format!("expected a MAC like 02:00:00:00:00:01, got {s:?}"))?;
    }
    Ok(mac)
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("", format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text)
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let key = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_default();
            err(key, msg)
        })?;
        Config::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Config, ConfigError> {
        if raw.port.is_empty() {
            return Err(err("port", "at least one [[port]] is required"));
        }
        let mut ports = Vec::with_capacity(raw.port.len());
        for (i, p) in raw.port.iter().enumerate() {
            let key = format!("port[{i}]");
            if p.name.is_empty() {
                return Err(err(format!("{key}.name"), "must not be empty"));
            }
            if ports.iter().any(|q: &PortConfig| q.name == p.name) {
                return Err(err(
                    format!("{key}.name"),
                    format!("duplicate port name {:?}", p.name),
                ));
            }
            if p.device.is_empty() {
                return Err(err(format!("{key}.device"), "must not be empty"));
            }
            let mut addresses = Vec::new();
            for (j, a) in p.addresses.iter().enumerate() {
                addresses
                    .push(Ipv4Cidr::parse(a).map_err(|m| err(format!("{key}.addresses[{j}]"), m))?);
            }
            let mtu = p.mtu.unwrap_or(1500);
            if !(68..=9600).contains(&mtu) {
                return Err(err(format!("{key}.mtu"), "expected 68..9600"));
            }
            ports.push(PortConfig {
                name: p.name.clone(),
                device: p.device.clone(),
                addresses,
                mtu,
                rx_desc: p.rx_desc.unwrap_or(1024),
                tx_desc: p.tx_desc.unwrap_or(1024),
            });
        }
        let port_index = |name: &str, key: &str| {
            ports
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| err(key, format!("no [[port]] named {name:?}")))
        };
        let on_connected = |ip: Ipv4Addr| {
            ports.iter().any(|p| {
                p.addresses.iter().any(|c| {
                    let mask = if c.prefix_len == 0 {
                        0
                    } else {
                        u32::MAX << (32 - c.prefix_len)
                    };
                    u32::from(c.addr) & mask == u32::from(ip) & mask
                })
            })
        };
        let mut routes = Vec::new();
        for (i, r) in raw.route.iter().enumerate() {
            let key = format!("route[{i}]");
            let prefix = Ipv4Cidr::parse(&r.prefix).map_err(|m| err(format!("{key}.prefix"), m))?;
            let via: Ipv4Addr = r.via.parse().map_err(|_| {
                err(
                    format!("{key}.via"),
                    format!("expected an IPv4 gateway, got {:?}", r.via),
                )
            })?;
            if !on_connected(via) {
                return Err(err(
                    format!("{key}.via"),
                    format!("gateway {via} is not on a connected network of any port"),
                ));
            }
            routes.push(RouteConfig { prefix, via });
        }
        let mut neighbours = Vec::new();
        for (i, n) in raw.neighbour.iter().enumerate() {
            let key = format!("neighbour[{i}]");
            let port = port_index(&n.port, &format!("{key}.port"))?;
            let addr: Ipv4Addr = n.addr.parse().map_err(|_| {
                err(
                    format!("{key}.addr"),
                    format!("expected an IPv4 address, got {:?}", n.addr),
                )
            })?;
            let mac = parse_mac(&n.mac).map_err(|m| err(format!("{key}.mac"), m))?;
            neighbours.push(NeighbourConfig { port, addr, mac });
        }
        let worker_lcores = raw.workers.lcores.clone().unwrap_or_else(|| vec![1]);
        if worker_lcores.is_empty() {
            return Err(err("workers.lcores", "at least one core is required"));
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        for (i, c) in worker_lcores.iter().enumerate() {
            if *c >= ncpu.max(1024) {
                return Err(err(format!("workers.lcores[{i}]"), "no such CPU"));
            }
        }
        let conn_table_capacity = raw.workers.conn_table_capacity.unwrap_or(1 << 20);
        if conn_table_capacity < 16 {
            return Err(err("workers.conn_table_capacity", "expected at least 16"));
        }
        let metrics_text = raw
            .metrics
            .listen
            .clone()
            .unwrap_or_else(|| DEFAULT_METRICS.to_string());
        let metrics_listen: SocketAddr = metrics_text.parse().map_err(|_| {
            err(
                "metrics.listen",
                format!("expected ADDR:PORT like 127.0.0.1:9800, got {metrics_text:?}"),
            )
        })?;
        Ok(Config {
            eal_args: raw.eal.args,
            ports,
            routes,
            neighbours,
            worker_lcores,
            conn_table_capacity,
            idle_sleep_us: raw.workers.idle_sleep_us.unwrap_or(100),
            mbufs: raw.workers.mbufs.unwrap_or(16383),
            socket: raw
                .control
                .socket
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
            rules: raw.control.rules,
            metrics_listen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[eal]
args = ["--no-huge"]
[[port]]
name = "outside"
device = "net_ring0"
addresses = ["203.0.113.1/24"]
[[port]]
name = "inside"
device = "net_ring1"
addresses = ["198.51.100.254/24"]
[[route]]
prefix = "0.0.0.0/0"
via = "203.0.113.254"
[[neighbour]]
port = "inside"
addr = "198.51.100.100"
mac = "02:00:00:00:01:00"
[workers]
lcores = [0]
"#;

    #[test]
    fn parses_a_full_config() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.ports.len(), 2);
        assert_eq!(c.ports[1].addresses[0].prefix_len, 24);
        assert_eq!(c.routes[0].via, Ipv4Addr::new(203, 0, 113, 254));
        assert_eq!(c.neighbours[0].port, 1);
        assert_eq!(c.neighbours[0].mac, [2, 0, 0, 0, 1, 0]);
        assert_eq!(c.metrics_listen.to_string(), DEFAULT_METRICS);
        assert_eq!(c.socket, PathBuf::from(DEFAULT_SOCKET));
    }

    #[test]
    fn errors_name_the_key() {
        let bad = GOOD.replace("198.51.100.254/24", "198.51.100.254/33");
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e.key, "port[1].addresses[0]");
        let bad = GOOD.replace("via = \"203.0.113.254\"", "via = \"192.0.2.1\"");
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e.key, "route[0].via");
        assert!(e.message.contains("not on a connected network"));
        let bad = GOOD.replace("port = \"inside\"", "port = \"nowhere\"");
        assert_eq!(Config::parse(&bad).unwrap_err().key, "neighbour[0].port");
        let bad = GOOD.replace("02:00:00:00:01:00", "02:00:00:00:01");
        assert_eq!(Config::parse(&bad).unwrap_err().key, "neighbour[0].mac");
        let bad = format!("{GOOD}\n[metrics]\nlisten = \"nope\"\n");
        assert_eq!(Config::parse(&bad).unwrap_err().key, "metrics.listen");
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_line() {
        let bad = format!("{GOOD}\n[control]\nsokcet = \"/tmp/x\"\n");
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.message.contains("sokcet"), "{e}");
        assert!(e.key.starts_with("line "), "{e}");
    }

    #[test]
    fn no_port_is_an_error() {
        assert_eq!(Config::parse("").unwrap_err().key, "port");
    }
}
