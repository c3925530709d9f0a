//! User-space IPv4 routing: connected prefixes, static routes and a default gateway, looked up by
//! longest-prefix match.
//!
//! The control plane builds a [`RouteTable`] with [`RouteTableBuilder`] and publishes it
//! (`arc_swap`); workers only read it. A built table never changes.
//!
//! Lookup is a DIR-16-8-8 table (a smaller cousin of DPDK's DIR-24-8 `rte_lpm`): a 64 Ki-entry
//! first level indexed by the top 16 bits of the destination, and 256-entry chunks for the next
//! 8 and last 8 bits, created only under prefixes longer than /16 or /24. A lookup is at most
//! three dependent array reads and never allocates. Prefixes are expanded shortest first, so a
//! longer prefix overwrites the slots of a shorter one it covers.
//!
//! Only IPv4 is implemented; the table keeps it in its own half (`v4`) so an IPv6 half can be
//! added beside it without changing the IPv4 API.

use std::fmt;
use std::net::Ipv4Addr;

/// Most routes (connected and static together) one table may hold. Bounds the memory a table
/// can take (a /32 in its own /24 costs two 1 KiB chunks).
pub const MAX_ROUTES: usize = 16_384;

/// Smallest MTU an IPv4 link may have (RFC 791).
pub const MIN_MTU: u16 = 68;

/// Where a packet to a destination goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteResult {
    /// Output port (DPDK port id).
    pub port: u16,
    /// Address to resolve with ARP: the destination itself on a connected net, else the gateway.
    pub next_hop: Ipv4Addr,
    /// The director's address on that port (the source of locally generated packets, e.g. the
    /// IPIP outer source or an ICMP error).
    pub src: Ipv4Addr,
    /// MTU of the output link.
    pub mtu: u16,
}

/// How a route was configured, as listed by [`RouteTable::routes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// A connected net (from one of the director's addresses), `proto kernel scope link`.
    Connected,
    /// A static route through a gateway on a connected net.
    Via(Ipv4Addr),
}

/// One entry of a built table, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteEntry {
    /// Network address (host bits zero).
    pub prefix: Ipv4Addr,
    /// Prefix length 0..=32.
    pub len: u8,
    /// Connected or via a gateway.
    pub kind: RouteKind,
    /// Output port.
    pub port: u16,
    /// Source address used on that port.
    pub src: Ipv4Addr,
    /// Link MTU.
    pub mtu: u16,
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// A prefix length above 32.
    InvalidPrefixLen {
        /// The length given.
        len: u8,
    },
    /// A route's prefix has bits set beyond its length (e.g. 10.0.0.1/8).
    HostBitsSet {
        /// The prefix given.
        prefix: Ipv4Addr,
        /// Its length.
        len: u8,
    },
    /// A director address that cannot be assigned (0.0.0.0, multicast, broadcast).
    InvalidAddress {
        /// The address given.
        addr: Ipv4Addr,
    },
    /// An MTU below 68.
    InvalidMtu {
        /// Port of the connected net.
        port: u16,
        /// The MTU given.
        mtu: u16,
    },
    /// The same director address configured twice.
    DuplicateAddress {
        /// The address.
        addr: Ipv4Addr,
    },
    /// The same connected net on two ports.
    ConnectedConflict {
        /// Network address.
        prefix: Ipv4Addr,
        /// Prefix length.
        len: u8,
        /// Port configured first.
        port: u16,
        /// The other port.
        other_port: u16,
    },
    /// Two routes for the same prefix.
    DuplicateRoute {
        /// Network address.
        prefix: Ipv4Addr,
        /// Prefix length.
        len: u8,
    },
    /// A gateway outside every connected net.
    GatewayNotOnLink {
        /// The route's prefix.
        prefix: Ipv4Addr,
        /// Its length.
        len: u8,
        /// The gateway.
        via: Ipv4Addr,
    },
    /// A gateway that is one of the director's own addresses (or 0.0.0.0).
    GatewayIsLocal {
        /// The gateway.
        via: Ipv4Addr,
    },
    /// More than [`MAX_ROUTES`] routes.
    TooManyRoutes {
        /// How many were configured.
        count: usize,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::InvalidPrefixLen { len } => {
                write!(f, "invalid prefix length /{len} (must be 0..=32)")
            }
            RouteError::HostBitsSet { prefix, len } => {
                write!(f, "invalid prefix {prefix}/{len}: host bits are set")
            }
            RouteError::InvalidAddress { addr } => {
                write!(f, "address {addr} cannot be assigned to a port")
            }
            RouteError::InvalidMtu { port, mtu } => {
                write!(f, "port {port}: MTU {mtu} is below the minimum {MIN_MTU}")
            }
            RouteError::DuplicateAddress { addr } => {
                write!(f, "address {addr} is configured twice")
            }
            RouteError::ConnectedConflict {
                prefix,
                len,
                port,
                other_port,
            } => write!(
                f,
                "connected net {prefix}/{len} is on port {port} and on port {other_port}"
            ),
            RouteError::DuplicateRoute { prefix, len } => {
                write!(f, "route {prefix}/{len} is configured twice")
            }
            RouteError::GatewayNotOnLink { prefix, len, via } => write!(
                f,
                "route {prefix}/{len}: gateway {via} is not on a connected net"
            ),
            RouteError::GatewayIsLocal { via } => {
                write!(
                    f,
                    "gateway {via} is not a neighbour (it is a local address)"
                )
            }
            RouteError::TooManyRoutes { count } => {
                write!(f, "{count} routes configured, at most {MAX_ROUTES} allowed")
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// A director address with its connected net, as given to the builder.
#[derive(Debug, Clone, Copy)]
struct ConnectedSpec {
    port: u16,
    addr: Ipv4Addr,
    len: u8,
    mtu: u16,
}

/// Builds a [`RouteTable`]; every check happens in [`build`](Self::build).
#[derive(Debug, Clone, Default)]
pub struct RouteTableBuilder {
    connected: Vec<ConnectedSpec>,
    routes: Vec<(Ipv4Addr, u8, Ipv4Addr)>,
}

impl RouteTableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a director address `addr/prefix_len` on `port` with the link's `mtu`; its net
    /// becomes a connected route. A second address in an already connected net of the same
    /// port is a secondary address: local, but the first address stays the source.
    pub fn connected(mut self, port: u16, addr: Ipv4Addr, prefix_len: u8, mtu: u16) -> Self {
        self.connected.push(ConnectedSpec {
            port,
            addr,
            len: prefix_len,
            mtu,
        });
        self
    }

    /// Adds a static route `prefix/len via gateway`; the gateway must be on a connected net.
    pub fn route(mut self, prefix: Ipv4Addr, len: u8, via: Ipv4Addr) -> Self {
        self.routes.push((prefix, len, via));
        self
    }

    /// Adds the default route (`0.0.0.0/0 via gateway`).
    pub fn default_gateway(self, via: Ipv4Addr) -> Self {
        self.route(Ipv4Addr::UNSPECIFIED, 0, via)
    }

    /// Validates everything and builds the lookup table.
    pub fn build(self) -> Result<RouteTable, RouteError> {
        let count = self.connected.len() + self.routes.len();
        if count > MAX_ROUTES {
            return Err(RouteError::TooManyRoutes { count });
        }
        let mut locals: Vec<(u32, u16)> = Vec::with_capacity(self.connected.len());
        let mut entries: Vec<RouteEntry> = Vec::with_capacity(count);
        for c in &self.connected {
            check_len(c.len)?;
            if c.addr.is_unspecified() || c.addr.is_multicast() || c.addr.is_broadcast() {
                return Err(RouteError::InvalidAddress { addr: c.addr });
            }
            if c.mtu < MIN_MTU {
                return Err(RouteError::InvalidMtu {
                    port: c.port,
                    mtu: c.mtu,
                });
            }
            let a = u32::from(c.addr);
            if locals.iter().any(|&(l, _)| l == a) {
                return Err(RouteError::DuplicateAddress { addr: c.addr });
            }
            locals.push((a, c.port));
            let prefix = Ipv4Addr::from(a & mask(c.len));
            match entries
                .iter()
                .find(|e| e.prefix == prefix && e.len == c.len)
            {
                Some(e) if e.port == c.port => {} // secondary address in the same net
                Some(e) => {
                    return Err(RouteError::ConnectedConflict {
                        prefix,
                        len: c.len,
                        port: e.port,
                        other_port: c.port,
                    })
                }
                None => entries.push(RouteEntry {
                    prefix,
                    len: c.len,
                    kind: RouteKind::Connected,
                    port: c.port,
                    src: c.addr,
                    mtu: c.mtu,
                }),
            }
        }
        locals.sort_unstable();
        let n_connected = entries.len();
        for &(prefix, len, via) in &self.routes {
            check_len(len)?;
            if u32::from(prefix) & !mask(len) != 0 {
                return Err(RouteError::HostBitsSet { prefix, len });
            }
            if entries.iter().any(|e| e.prefix == prefix && e.len == len) {
                return Err(RouteError::DuplicateRoute { prefix, len });
            }
            let v = u32::from(via);
            if via.is_unspecified() || locals.binary_search_by_key(&v, |&(a, _)| a).is_ok() {
                return Err(RouteError::GatewayIsLocal { via });
            }
            let link = entries[..n_connected]
                .iter()
                .filter(|e| contains(e.prefix, e.len, v))
                .max_by_key(|e| e.len)
                .copied()
                .ok_or(RouteError::GatewayNotOnLink { prefix, len, via })?;
            entries.push(RouteEntry {
                prefix,
                len,
                kind: RouteKind::Via(via),
                port: link.port,
                src: link.src,
                mtu: link.mtu,
            });
        }
        Ok(RouteTable {
            v4: Ipv4Routes::new(entries, locals),
            id: next_table_id(),
        })
    }
}

/// A number no other table built by this process has (see [`RouteTable::id`]).
fn next_table_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The routing table workers read: immutable once built.
#[derive(Debug, Clone)]
pub struct RouteTable {
    v4: Ipv4Routes,
    /// Unique per built table (clones share it): what caches of route results key on.
    id: u64,
}

impl Default for RouteTable {
    /// A table with no routes and no local addresses.
    fn default() -> Self {
        Self {
            v4: Ipv4Routes::new(Vec::new(), Vec::new()),
            id: next_table_id(),
        }
    }
}

impl RouteTable {
    /// Identity of this table's contents: unique among the tables this process built (a
    /// clone has its original's), so a cache of lookups keyed on it is never stale.
    #[inline]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Longest-prefix match for `dst`; `None` when no route covers it. A director address
    /// matches its connected net: check [`is_local`](Self::is_local) first.
    #[inline]
    pub fn lookup(&self, dst: Ipv4Addr) -> Option<RouteResult> {
        self.v4.lookup(dst)
    }

    /// The port of a director address, `None` for any other address.
    #[inline]
    pub fn is_local(&self, addr: Ipv4Addr) -> Option<u16> {
        let a = u32::from(addr);
        self.v4
            .locals
            .binary_search_by_key(&a, |&(l, _)| l)
            .ok()
            .map(|i| self.v4.locals[i].1)
    }

    /// Whether `ip` is a neighbour on `port`: inside one of the port's connected nets, and
    /// neither a director address nor the net's network/broadcast address (for nets up to /30).
    pub fn on_link(&self, port: u16, ip: Ipv4Addr) -> bool {
        let a = u32::from(ip);
        if self.is_local(ip).is_some() {
            return false;
        }
        self.v4.entries.iter().any(|e| {
            e.kind == RouteKind::Connected
                && e.port == port
                && contains(e.prefix, e.len, a)
                && (e.len > 30 || (a & !mask(e.len) != 0 && a | mask(e.len) != u32::MAX))
        })
    }

    /// All routes, connected nets first, in configuration order.
    pub fn routes(&self) -> &[RouteEntry] {
        &self.v4.entries
    }
}

/// First-level slot flag: the low bits index a chunk rather than a next hop.
const CHUNK: u32 = 1 << 31;
/// A slot no route covers.
const NONE: u32 = 0;

/// The IPv4 half: DIR-16-8-8 slots hold `CHUNK | chunk index`, or `entry index + 1`, or `NONE`.
#[derive(Clone)]
struct Ipv4Routes {
    l1: Box<[u32]>,
    l2: Vec<[u32; 256]>,
    l3: Vec<[u32; 256]>,
    entries: Vec<RouteEntry>,
    /// Director addresses with their port, sorted by address.
    locals: Vec<(u32, u16)>,
}

impl fmt::Debug for Ipv4Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ipv4Routes")
            .field("entries", &self.entries)
            .field("locals", &self.locals)
            .field("l2_chunks", &self.l2.len())
            .field("l3_chunks", &self.l3.len())
            .finish()
    }
}

impl Ipv4Routes {
    fn new(entries: Vec<RouteEntry>, locals: Vec<(u32, u16)>) -> Self {
        let mut t = Self {
            l1: vec![NONE; 1 << 16].into_boxed_slice(),
            l2: Vec::new(),
            l3: Vec::new(),
            entries,
            locals,
        };
        let mut order: Vec<usize> = (0..t.entries.len()).collect();
        order.sort_by_key(|&i| t.entries[i].len);
        for i in order {
            let e = t.entries[i];
            // `i + 1` fits: at most MAX_ROUTES entries.
            t.insert(u32::from(e.prefix), e.len, i as u32 + 1);
        }
        t
    }

    /// Writes `value` into every slot under `prefix/len`. Called shortest prefix first, so a
    /// chunk below a slot only exists once a longer prefix has split it.
    fn insert(&mut self, prefix: u32, len: u8, value: u32) {
        let top = (prefix >> 16) as usize;
        if len <= 16 {
            let n = 1usize << (16 - len);
            self.l1[top..top + n].fill(value);
            return;
        }
        let c2 = split(&mut self.l1[top], &mut self.l2);
        let mid = ((prefix >> 8) & 0xff) as usize;
        if len <= 24 {
            let n = 1usize << (24 - len);
            self.l2[c2][mid..mid + n].fill(value);
            return;
        }
        let c3 = split(&mut self.l2[c2][mid], &mut self.l3);
        let low = (prefix & 0xff) as usize;
        let n = 1usize << (32 - len);
        self.l3[c3][low..low + n].fill(value);
    }

    #[inline]
    fn lookup(&self, dst: Ipv4Addr) -> Option<RouteResult> {
        let a = u32::from(dst);
        let mut slot = self.l1[(a >> 16) as usize];
        if slot & CHUNK != 0 {
            slot = self.l2[(slot & !CHUNK) as usize][((a >> 8) & 0xff) as usize];
            if slot & CHUNK != 0 {
                slot = self.l3[(slot & !CHUNK) as usize][(a & 0xff) as usize];
            }
        }
        let e = self.entries.get((slot as usize).wrapping_sub(1))?;
        Some(RouteResult {
            port: e.port,
            next_hop: match e.kind {
                RouteKind::Connected => dst,
                RouteKind::Via(gw) => gw,
            },
            src: e.src,
            mtu: e.mtu,
        })
    }
}

/// Returns the chunk under `slot`, first creating one that inherits the slot's value.
fn split(slot: &mut u32, chunks: &mut Vec<[u32; 256]>) -> usize {
    if *slot & CHUNK != 0 {
        return (*slot & !CHUNK) as usize;
    }
    chunks.push([*slot; 256]);
    let idx = chunks.len() - 1;
    // At most one chunk per route, so the index stays far below CHUNK.
    *slot = CHUNK | idx as u32;
    idx
}

fn check_len(len: u8) -> Result<(), RouteError> {
    if len > 32 {
        Err(RouteError::InvalidPrefixLen { len })
    } else {
        Ok(())
    }
}

/// Netmask of a prefix length 0..=32.
fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn contains(prefix: Ipv4Addr, len: u8, a: u32) -> bool {
    a & mask(len) == u32::from(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn chunks_inherit_shorter_prefix() {
        let t = RouteTableBuilder::new()
            .connected(0, ip("10.0.0.1"), 8, 1500)
            .route(ip("10.1.2.128"), 25, ip("10.0.0.2"))
            .build()
            .unwrap();
        // 10.1.2.0/24 was split twice; the halves outside the /25 still see the /8.
        assert_eq!(t.v4.l2.len(), 1);
        assert_eq!(t.v4.l3.len(), 1);
        assert_eq!(
            t.lookup(ip("10.1.2.127")).unwrap().next_hop,
            ip("10.1.2.127")
        );
        assert_eq!(t.lookup(ip("10.1.2.128")).unwrap().next_hop, ip("10.0.0.2"));
        assert_eq!(t.lookup(ip("10.1.3.1")).unwrap().next_hop, ip("10.1.3.1"));
    }

    #[test]
    fn mask_edges() {
        assert_eq!(mask(0), 0);
        assert_eq!(mask(1), 0x8000_0000);
        assert_eq!(mask(24), 0xffff_ff00);
        assert_eq!(mask(32), u32::MAX);
    }
}
