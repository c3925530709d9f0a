//! The IPVS configuration model shared by the control plane, the CLI and the data plane.
//!
//! These are *configuration* types (what `ipvsadm -A/-a` set), not data-plane state.
//! The control plane owns an `IpvsTable`-like structure built from them (see `control::table`)
//! and publishes immutable snapshots for the workers.

use std::net::IpAddr;

/// Transport protocol of a virtual service (ipvsadm `-t`, `-u`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (IPPROTO_TCP = 6).
    Tcp,
    /// UDP (IPPROTO_UDP = 17).
    Udp,
}

impl Protocol {
    /// IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
    /// Name as ipvsadm prints it in listings ("TCP", "UDP").
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// Identity of a virtual service: `-t/-u addr:port` or `-f fwmark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// An address/port service.
    Addr {
        /// TCP or UDP.
        proto: Protocol,
        /// Virtual IP (VIP).
        addr: IpAddr,
        /// Virtual port (0 only allowed for persistent services).
        port: u16,
    },
    /// A firewall-mark service (`-f N`); `ipv6` is ipvsadm's `-6`.
    Fwmark {
        /// The mark (> 0).
        mark: u32,
        /// Address family of the service.
        ipv6: bool,
    },
}

/// How packets reach a real server (ipvsadm `-g`, `-i`, `-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ForwardMethod {
    /// VS/DR, "Route" in listings (`-g`, ipvsadm's default).
    #[default]
    Route,
    /// VS/TUN, IP-in-IP, "Tunnel" in listings (`-i`).
    Tunnel,
    /// VS/NAT, "Masq" in listings (`-m`).
    Masq,
}

impl ForwardMethod {
    /// Name as ipvsadm prints it in `-L` ("Route", "Tunnel", "Masq").
    pub fn label(self) -> &'static str {
        match self {
            ForwardMethod::Route => "Route",
            ForwardMethod::Tunnel => "Tunnel",
            ForwardMethod::Masq => "Masq",
        }
    }
    /// Lower-case name used in metrics labels ("route", "tunnel", "masq").
    pub fn metric_label(self) -> &'static str {
        match self {
            ForwardMethod::Route => "route",
            ForwardMethod::Tunnel => "tunnel",
            ForwardMethod::Masq => "masq",
        }
    }
}

/// Scheduler flags (`-b`): flag-1/2/3 aliases of sh/mh flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedFlags {
    /// IP_VS_SVC_F_SCHED1 (sh-fallback / mh-fallback / flag-1).
    pub flag1: bool,
    /// IP_VS_SVC_F_SCHED2 (sh-port / mh-port / flag-2).
    pub flag2: bool,
    /// IP_VS_SVC_F_SCHED3 (flag-3).
    pub flag3: bool,
}

/// Configuration of one virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler name as ipvsadm spells it (`-s`, default "wlc").
    pub scheduler: String,
    /// Scheduler flags (`-b`).
    pub flags: SchedFlags,
    /// Persistence timeout in seconds (`-p`); `None` = not persistent.
    pub persistence: Option<u32>,
    /// Persistence netmask as a prefix length (`-M`), 32 (v4) / 128 (v6) by default.
    pub netmask_prefix: u8,
    /// One-packet scheduling (`-o`, UDP/fwmark only).
    pub one_packet: bool,
}

/// Configuration of one real server (destination) of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestConfig {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (service port when omitted; for -g/-i forced to the service port).
    pub port: u16,
    /// Forwarding method.
    pub forward: ForwardMethod,
    /// Weight 0..=65535; 0 = quiesced.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
}
