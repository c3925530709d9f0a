//! Why the data plane dropped a packet: the wire layer's reasons plus the pipeline's own.
//!
//! One counter per reason per worker (`metrics::WorkerCounters::drops`), indexed by
//! [`Drop::index`]; [`drop_reason_names`] gives the metric labels in index order.

use crate::wire::DropReason;

/// Pipeline-level drop reasons (after a frame parsed fine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PipelineDrop {
    /// Not addressed to a virtual service, not a NAT reply, not for the director itself.
    NotForUs,
    /// TCP segment without SYN and without a connection (IPVS never schedules those).
    NoConnection,
    /// The service has no available real server (all quiesced, overloaded or none).
    NoDestination,
    /// The connection's real server was removed (IPVS drops; expire_nodest_conn=0).
    DestRemoved,
    /// The connection table is full: new flows are refused, old ones keep working.
    ConnTableFull,
    /// No route toward the destination.
    NoRoute,
    /// The next hop did not answer ARP (or its pending queue was full / timed out).
    NeighUnresolved,
    /// The TX queue did not take the packet.
    TxFull,
    /// The owner worker's redirect ring was full.
    RedirectFull,
    /// ARP that is not for one of our addresses or VIPs (ignored, counted).
    ArpIgnored,
    /// ICMP error about a flow we do not track.
    IcmpNoConnection,
    /// ICMP message for us that we do not answer.
    IcmpIgnored,
    /// A first fragment of a TCP/UDP packet (no reassembly in the data plane).
    FirstFragment,
    /// TCP or UDP for a VIP or director address where no virtual service listens (answered
    /// with a reset or ICMP port unreachable, as the host kernel would).
    PortClosed,
}

impl PipelineDrop {
    /// Every pipeline reason, in index order.
    pub const ALL: [PipelineDrop; 14] = [
        PipelineDrop::NotForUs,
        PipelineDrop::NoConnection,
        PipelineDrop::NoDestination,
        PipelineDrop::DestRemoved,
        PipelineDrop::ConnTableFull,
        PipelineDrop::NoRoute,
        PipelineDrop::NeighUnresolved,
        PipelineDrop::TxFull,
        PipelineDrop::RedirectFull,
        PipelineDrop::ArpIgnored,
        PipelineDrop::IcmpNoConnection,
        PipelineDrop::IcmpIgnored,
        PipelineDrop::FirstFragment,
        PipelineDrop::PortClosed,
    ];

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            PipelineDrop::NotForUs => "not_for_us",
            PipelineDrop::NoConnection => "no_connection",
            PipelineDrop::NoDestination => "no_destination",
            PipelineDrop::DestRemoved => "dest_removed",
            PipelineDrop::ConnTableFull => "conn_table_full",
            PipelineDrop::NoRoute => "no_route",
            PipelineDrop::NeighUnresolved => "neigh_unresolved",
            PipelineDrop::TxFull => "tx_full",
            PipelineDrop::RedirectFull => "redirect_full",
            PipelineDrop::ArpIgnored => "arp_ignored",
            PipelineDrop::IcmpNoConnection => "icmp_no_connection",
            PipelineDrop::IcmpIgnored => "icmp_ignored",
            PipelineDrop::FirstFragment => "first_fragment",
            PipelineDrop::PortClosed => "port_closed",
        }
    }
}

/// A drop of either kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Drop {
    /// Refused by the wire layer (parse or transform).
    Wire(DropReason),
    /// Refused by the pipeline.
    Pipeline(PipelineDrop),
}

impl Drop {
    /// Counter index: wire reasons first, then pipeline reasons.
    #[inline]
    pub fn index(self) -> usize {
        match self {
            Drop::Wire(r) => r.index(),
            Drop::Pipeline(p) => DropReason::ALL.len() + p as usize,
        }
    }

    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Drop::Wire(r) => r.as_str(),
            Drop::Pipeline(p) => p.as_str(),
        }
    }
}

impl From<DropReason> for Drop {
    fn from(r: DropReason) -> Self {
        Drop::Wire(r)
    }
}

impl From<PipelineDrop> for Drop {
    fn from(p: PipelineDrop) -> Self {
        Drop::Pipeline(p)
    }
}

/// Metric labels of every drop reason, in counter-index order.
pub fn drop_reason_names() -> Vec<&'static str> {
    DropReason::ALL
        .iter()
        .map(|r| r.as_str())
        .chain(PipelineDrop::ALL.iter().map(|p| p.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_fit_the_counters() {
        let names = drop_reason_names();
        assert!(names.len() < crate::metrics::counters::MAX_DROP_REASONS);
        for (i, p) in PipelineDrop::ALL.iter().enumerate() {
            assert_eq!(Drop::Pipeline(*p).index(), DropReason::ALL.len() + i);
            assert_eq!(names[Drop::Pipeline(*p).index()], p.as_str());
        }
        for r in DropReason::ALL {
            assert_eq!(names[Drop::Wire(r).index()], r.as_str());
        }
    }
}
