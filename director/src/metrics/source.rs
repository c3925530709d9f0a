//! What the exporter reads at scrape time: the [`StatsSource`] trait the daemon implements and
//! the plain views it returns.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::counters::{StatTotals, WorkerCounters};
use crate::model::{ForwardMethod, ServiceKey};

/// Provider of everything `/metrics` shows. Called on the HTTP thread at every scrape, so it
/// must only read (relaxed loads, snapshot clones), never wait for a worker.
pub trait StatsSource: Send + Sync {
    /// Every virtual service with its real servers.
    fn services(&self) -> Vec<ServiceStatsView>;
    /// Every worker's counter block (the `worker` label is [`WorkerCounters::worker`]).
    fn workers(&self) -> Vec<Arc<WorkerCounters>>;
    /// Extended statistics of every DPDK port.
    fn ports(&self) -> Vec<PortStatsView>;
}

/// One virtual service at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatsView {
    /// Its identity (the `service` label, see [`service_label`]).
    pub key: ServiceKey,
    /// Scheduler name as ipvsadm spells it.
    pub scheduler: String,
    /// Raw (never zeroed) counters of the service ([`super::DestStats::sum`]).
    pub totals: StatTotals,
    /// Its real servers.
    pub real_servers: Vec<RealServerStatsView>,
}

/// One real server (IPVS destination) at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerStatsView {
    /// Address and port (the `real_server` label).
    pub addr: SocketAddr,
    /// Forwarding method (the `forward` label).
    pub forward: ForwardMethod,
    /// Configured weight (0 = quiesced).
    pub weight: u32,
    /// Active connections (`sched::DestLoad`).
    pub active: u64,
    /// Inactive connections (`sched::DestLoad`).
    pub inactive: u64,
    /// Persistence templates (`sched::DestLoad`).
    pub persistent: u64,
    /// Over its upper threshold (`IP_VS_DEST_F_OVERLOAD`, from `sched::DestLoad`).
    pub overloaded: bool,
    /// Raw (never zeroed) counters ([`super::DestStats::sum`]).
    pub totals: StatTotals,
}

impl RealServerStatsView {
    /// Whether the scheduler may pick it: weight > 0 and not overloaded.
    pub fn is_up(&self) -> bool {
        self.weight > 0 && !self.overloaded
    }
}

/// Extended statistics of one DPDK port (`rte_eth_xstats_get` names and values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatsView {
    /// DPDK port id (the `port` label).
    pub port: u16,
    /// `(xstat name, value)` pairs, e.g. `("rx_missed_errors", 3)`.
    pub xstats: Vec<(String, u64)>,
}

/// The `service` label: `"TCP/203.0.113.200:80"`, `"UDP/[2001:db8::1]:53"`, `"FWM/1"`,
/// `"FWM/1/IPv6"` (an IPv6 fwmark service, ipvsadm's `FWM  1 IPv6`).
pub fn service_label(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Addr { proto, addr, port } => {
            format!("{}/{}", proto.label(), SocketAddr::new(*addr, *port))
        }
        ServiceKey::Fwmark { mark, ipv6: false } => format!("FWM/{mark}"),
        ServiceKey::Fwmark { mark, ipv6: true } => format!("FWM/{mark}/IPv6"),
    }
}

/// The `real_server` label: `"198.51.100.100:80"`, `"[2001:db8::2]:80"`.
pub fn real_server_label(addr: IpAddr, port: u16) -> String {
    SocketAddr::new(addr, port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Protocol;

    #[test]
    fn labels() {
        let v4 = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "203.0.113.200".parse().expect("ip"),
            port: 80,
        };
        let v6 = ServiceKey::Addr {
            proto: Protocol::Udp,
            addr: "2001:db8::1".parse().expect("ip"),
            port: 53,
        };
        assert_eq!(service_label(&v4), "TCP/203.0.113.200:80");
        assert_eq!(service_label(&v6), "UDP/[2001:db8::1]:53");
        assert_eq!(
            service_label(&ServiceKey::Fwmark {
                mark: 1,
                ipv6: false
            }),
            "FWM/1"
        );
        assert_eq!(
            service_label(&ServiceKey::Fwmark {
                mark: 7,
                ipv6: true
            }),
            "FWM/7/IPv6"
        );
        let rs = real_server_label("198.51.100.100".parse().expect("ip"), 8080);
        assert_eq!(rs, "198.51.100.100:8080");
    }
}
