//! One table entry ([`Conn`]: a connection or a persistence template), its index type and
//! what it counts as on its destination.

use super::key::{ConnAddr, FlowKey};
use super::tcp_state::{Direction, TcpState};
use super::timer::{TimerLinks, TimerNode, NIL};
use crate::model::{ForwardMethod, Protocol};
use crate::wire::nat::NatDeltas;

/// Entry flag bits.
pub(super) mod flag {
    /// The slab entry holds a connection or template.
    pub const LIVE: u8 = 1 << 0;
    /// A persistence template (IP_VS_CONN_F_TEMPLATE).
    pub const TEMPLATE: u8 = 1 << 1;
    /// Counted as an inactive connection (IP_VS_CONN_F_INACTIVE).
    pub const INACTIVE: u8 = 1 << 2;
    /// No server-to-client packet seen yet / none expected: DR and TUN (IP_VS_CONN_F_NOOUTPUT).
    pub const NO_OUTPUT: u8 = 1 << 3;
    /// Reachable through the reply index (NAT).
    pub const REPLY_KEY: u8 = 1 << 4;
    /// An invalidated template: no longer in the inbound index, freed when its timer runs out.
    pub const UNHASHED: u8 = 1 << 5;
    /// The reply key waits among the table's pending reply keys, not in the index yet.
    pub const REPLY_PENDING: u8 = 1 << 6;
}

/// Index of an entry in a [`ConnTable`](super::ConnTable). Valid until the entry is removed or expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnIdx(pub(crate) u32);

impl ConnIdx {
    /// The slab index.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// What a connection counts as on its destination (`sched::DestLoad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadClass {
    /// ActiveConn.
    Active,
    /// InActConn.
    Inactive,
    /// PersistConn (a persistence template).
    Persistent,
}

/// Protocol state of a connection as listings show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// A TCP connection (or TCP template, always NONE).
    Tcp(TcpState),
    /// A UDP connection or template (state "UDP").
    Udp,
    /// A firewall-mark template (protocol 0, state NONE).
    Ip,
}

impl ConnState {
    /// Name as `ipvsadm -L -c` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
            ConnState::Ip => "NONE",
        }
    }
}

/// One connection or persistence template (IPVS's `struct ip_vs_conn`): 62 bytes of fields
/// for IPv4, aligned to a 64-byte cache line so that a lookup loads one line, not two (a
/// 56-byte entry at a random slot straddles two lines three times in four; at 1 M
/// connections the profile showed the prefetches waiting for free miss buffers).
///
/// For a template the "client" is the masked client network with port 0 and the "virtual"
/// side is the service (or the fwmark as an address, with protocol 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(64))]
pub struct Conn<A: ConnAddr> {
    pub(super) caddr: A,
    pub(super) vaddr: A,
    pub(super) daddr: A,
    pub(super) cport: u16,
    pub(super) vport: u16,
    pub(super) dport: u16,
    pub(super) proto: u8,
    pub(super) state: u8,
    pub(super) flags: u8,
    pub(super) fwd: ForwardMethod,
    /// NAT: the checksum terms of the connection's rewrites (in the line's spare bytes).
    pub(super) nat: NatDeltas,
    pub(super) dest_id: u32,
    pub(super) service_id: u32,
    /// Absolute second the entry expires at (the timer may be armed earlier; never later).
    pub(super) expires: u32,
    /// Controlling template's slab index, or NIL.
    pub(super) tmpl: u32,
    /// Templates: number of connections this template controls.
    pub(super) n_control: u32,
    pub(super) timer: TimerNode,
}

impl<A: ConnAddr> TimerLinks for Conn<A> {
    fn timer(&self) -> &TimerNode {
        &self.timer
    }
    fn timer_mut(&mut self) -> &mut TimerNode {
        &mut self.timer
    }
}

impl<A: ConnAddr> Conn<A> {
    pub(super) const VACANT: Self = Conn {
        caddr: A::ZERO,
        vaddr: A::ZERO,
        daddr: A::ZERO,
        cport: 0,
        vport: 0,
        dport: 0,
        proto: 0,
        state: 0,
        flags: 0,
        fwd: ForwardMethod::Route,
        nat: NatDeltas::ZERO,
        dest_id: 0,
        service_id: 0,
        expires: 0,
        tmpl: NIL,
        n_control: 0,
        timer: TimerNode::UNLINKED,
    };

    /// IP protocol number (6, 17; 0 for firewall-mark templates).
    pub fn proto(&self) -> u8 {
        self.proto
    }
    /// Protocol as `ipvsadm -L -c` prints it: "TCP", "UDP", "IP".
    pub fn proto_label(&self) -> &'static str {
        match self.proto {
            6 => Protocol::Tcp.label(),
            17 => Protocol::Udp.label(),
            _ => "IP",
        }
    }
    /// Client address (masked client network for templates).
    pub fn caddr(&self) -> A {
        self.caddr
    }
    /// Client port (0 for templates).
    pub fn cport(&self) -> u16 {
        self.cport
    }
    /// Virtual address (the fwmark as an address for fwmark templates).
    pub fn vaddr(&self) -> A {
        self.vaddr
    }
    /// Virtual port.
    pub fn vport(&self) -> u16 {
        self.vport
    }
    /// Real server address.
    pub fn daddr(&self) -> A {
        self.daddr
    }
    /// The checksum terms of a NAT connection's rewrites (zero for others, and for IPv6).
    #[inline(always)]
    pub fn nat_deltas(&self) -> &NatDeltas {
        &self.nat
    }
    /// Real server port.
    pub fn dport(&self) -> u16 {
        self.dport
    }
    /// Destination id (checked by the worker against its snapshot).
    pub fn dest_id(&self) -> u32 {
        self.dest_id
    }
    /// Service id.
    pub fn service_id(&self) -> u32 {
        self.service_id
    }
    /// Forwarding method.
    #[inline(always)]
    pub fn forward(&self) -> ForwardMethod {
        self.fwd
    }
    /// Whether this is a persistence template.
    pub fn is_template(&self) -> bool {
        self.flags & flag::TEMPLATE != 0
    }
    /// Whether the entry is reachable by its reply key (NAT).
    pub fn has_reply_key(&self) -> bool {
        self.flags & flag::REPLY_KEY != 0
    }
    /// Whether the entry sees only client-to-server packets so far (DR/TUN; IPVS's NOOUTPUT).
    pub fn is_input_only(&self) -> bool {
        self.flags & flag::NO_OUTPUT != 0
    }
    /// What the entry counts as on its destination.
    pub fn load_class(&self) -> LoadClass {
        if self.is_template() {
            LoadClass::Persistent
        } else if self.flags & flag::INACTIVE != 0 {
            LoadClass::Inactive
        } else {
            LoadClass::Active
        }
    }
    /// Protocol state.
    pub fn state(&self) -> ConnState {
        match self.proto {
            6 => ConnState::Tcp(TcpState::from_u8(self.state)),
            17 => ConnState::Udp,
            _ => ConnState::Ip,
        }
    }
    /// State name as `ipvsadm -L -c` prints it.
    pub fn state_name(&self) -> &'static str {
        self.state().name()
    }
    /// Absolute second the entry expires at.
    pub fn expires(&self) -> u32 {
        self.expires
    }
    /// Seconds left at `now` (0 once due).
    pub fn expires_in(&self, now: u32) -> u32 {
        self.expires.saturating_sub(now)
    }
    /// The controlling persistence template.
    pub fn template(&self) -> Option<ConnIdx> {
        (self.tmpl != NIL).then_some(ConnIdx(self.tmpl))
    }
    /// Templates: how many connections it controls.
    pub fn controlled(&self) -> u32 {
        self.n_control
    }

    pub(super) fn is_live(&self) -> bool {
        self.flags & flag::LIVE != 0
    }

    /// The inbound key (for templates: the template key).
    pub fn inbound_key(&self) -> FlowKey<A> {
        FlowKey::new(self.proto, self.caddr, self.cport, self.vaddr, self.vport)
    }

    /// The reply key `(proto, real server, client)`, meaningful when [`Conn::has_reply_key`].
    pub fn reply_key(&self) -> FlowKey<A> {
        FlowKey::new(self.proto, self.daddr, self.dport, self.caddr, self.cport)
    }

    #[inline(always)]
    pub(super) fn matches_inbound(&self, k: &FlowKey<A>, template: bool) -> bool {
        self.caddr == k.saddr
            && self.vaddr == k.daddr
            && self.cport == k.sport
            && self.vport == k.dport
            && self.proto == k.proto
            && self.is_template() == template
    }

    /// Which of this entry's keys a packet with tuple `k` carries: its inbound key
    /// ([`Direction::Input`]) or its NAT reply key ([`Direction::Output`]); `None` for
    /// neither, and for a template or a vacant entry.
    #[inline(always)]
    pub(super) fn packet_direction(&self, k: &FlowKey<A>) -> Option<Direction> {
        if !self.is_live() {
            None
        } else if self.matches_inbound(k, false) {
            Some(Direction::Input)
        } else if self.has_reply_key() && self.matches_reply(k) {
            Some(Direction::Output)
        } else {
            None
        }
    }

    #[inline(always)]
    pub(super) fn matches_reply(&self, k: &FlowKey<A>) -> bool {
        self.daddr == k.saddr
            && self.caddr == k.daddr
            && self.dport == k.sport
            && self.cport == k.dport
            && self.proto == k.proto
    }
}
