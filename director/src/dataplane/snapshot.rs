//! Immutable configuration snapshots read by the workers.
//!
//! The control plane builds a [`Snapshot`] off the fast path (schedulers included) and publishes
//! it through [`SnapshotCell`] (arc-swap). A worker loads the current snapshot once per burst.
//! Per-destination live state that must survive reconfiguration (connection counts in
//! `sched::DestLoad`, traffic counters in `metrics::DestStats`) is kept by [`StatsRegistry`] and
//! shared by `Arc` between successive snapshots.
//!
//! The per-packet questions (which service is this IPv4 packet for, is it from a NAT real
//! server, where is destination id N) are answered by [`SmallMap`]s built with the snapshot:
//! one multiply and, nearly always, one slot read, instead of SipHash-free but still generic
//! hashing of `IpAddr` keys.

use crate::metrics::{DestStats, ServiceStats};
use crate::model::{DestConfig, Protocol, ServiceConfig, ServiceKey};
use arc_swap::ArcSwap;
use hashbrown::HashMap;
use sched::{DestLoad, DestSpec, SchedParams, Scheduler};
use std::net::IpAddr;
use std::sync::Arc;

/// A real server as the workers see it.
#[derive(Debug)]
pub struct DestRt {
    /// Stable id from the control plane (never reused while the daemon runs).
    pub id: u32,
    /// Configuration.
    pub config: DestConfig,
    /// Live connection counts (shared by all workers and by the scheduler).
    pub load: Arc<DestLoad>,
    /// Traffic counters, one slot per worker.
    pub stats: Arc<DestStats>,
    /// For a NAT real server of an IPv4 address service: the (protocol, address, port) its
    /// replies come from, one of the endpoints [`Snapshot::is_masq_source`] knows. The fast
    /// path compares a reply's source with it instead of looking the endpoint up.
    pub nat_source_v4: Option<(u8, std::net::Ipv4Addr, u16)>,
}

/// A virtual service as the workers see it.
pub struct ServiceRt {
    /// Index of this service in [`Snapshot::services`].
    pub index: u32,
    /// Configuration.
    pub config: ServiceConfig,
    /// Destinations in the kernel's order (newest first): the scheduler's indices point here.
    pub dests: Vec<Arc<DestRt>>,
    /// The scheduler, built for exactly `dests`.
    pub scheduler: Arc<dyn Scheduler>,
    /// Traffic counters, one slot per worker.
    pub stats: Arc<ServiceStats>,
}

impl std::fmt::Debug for ServiceRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceRt")
            .field("config", &self.config)
            .field("dests", &self.dests.len())
            .field("scheduler", &self.scheduler.name())
            .finish()
    }
}

/// Key of an address service: (protocol number, VIP, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VipKey {
    /// IP protocol number.
    pub proto: u8,
    /// Virtual address.
    pub addr: IpAddr,
    /// Virtual port.
    pub port: u16,
}

/// IPVS connection timeouts (`ipvsadm --set`), seconds: the control table's type.
pub use crate::control::table::Timeouts;

/// A map from `u64` keys to small values for the handful of keys of a snapshot, built once:
/// multiply-shift hashing onto a power-of-two slot array kept at most half full, linear
/// probing. Lookups read one cache line in the common case and never allocate.
#[derive(Debug, Clone)]
pub struct SmallMap<V: Copy> {
    slots: Box<[(u64, V)]>,
    shift: u32,
    len: usize,
}

/// Marks a free [`SmallMap`] slot; no key the snapshot builds has all bits set.
const FREE_KEY: u64 = u64::MAX;

impl<V: Copy + Default> SmallMap<V> {
    /// A map of `entries` (a later duplicate key replaces an earlier one).
    pub fn new(entries: &[(u64, V)]) -> Self {
        let n = (entries.len() * 2).max(8).next_power_of_two();
        let mut m = SmallMap {
            slots: vec![(FREE_KEY, V::default()); n].into_boxed_slice(),
            shift: 64 - n.trailing_zeros(),
            len: 0,
        };
        for &(k, v) in entries {
            debug_assert_ne!(k, FREE_KEY);
            let mut i = m.home(k);
            loop {
                let slot = &mut m.slots[i];
                if slot.0 == FREE_KEY {
                    *slot = (k, v);
                    m.len += 1;
                    break;
                }
                if slot.0 == k {
                    slot.1 = v;
                    break;
                }
                i = (i + 1) & (n - 1);
            }
        }
        m
    }
}

impl<V: Copy> SmallMap<V> {
    #[inline(always)]
    fn home(&self, k: u64) -> usize {
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// The value of `k`.
    #[inline(always)]
    pub fn get(&self, k: u64) -> Option<V> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(k);
        loop {
            let (key, v) = self.slots[i];
            if key == k {
                return Some(v);
            }
            if key == FREE_KEY {
                return None;
            }
            i = (i + 1) & mask;
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<V: Copy + Default> Default for SmallMap<V> {
    fn default() -> Self {
        SmallMap::new(&[])
    }
}

/// A dest id without destination in `Snapshot::dest_by_id` (no service has this index).
const NO_DEST: (u32, u32) = (u32::MAX, u32::MAX);

/// Kinds of keys in [`Snapshot`]'s IPv4 endpoint map.
const KIND_VIP: u64 = 1 << 56;
const KIND_MASQ: u64 = 2 << 56;

/// An IPv4 address's bit in `Snapshot::v4_vip_bits` (a multiplicative hash of its bytes as
/// they are in memory, top 6 bits).
#[inline(always)]
fn vip_bit(a: std::net::Ipv4Addr) -> u64 {
    1 << (u32::from_ne_bytes(a.octets()).wrapping_mul(0x9e37_79b1) >> 26)
}

/// The IPv4 endpoint map's key of (protocol, address, port) for one kind.
#[inline(always)]
fn v4_key(kind: u64, proto: u8, addr: std::net::Ipv4Addr, port: u16) -> u64 {
    kind | u64::from(proto) << 48 | u64::from(port) << 32 | u64::from(u32::from(addr))
}

/// One generation of the IPVS configuration as the workers see it.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Bumped on every publish.
    pub generation: u64,
    /// Services; index = `ServiceRt::index`.
    pub services: Vec<ServiceRt>,
    /// (proto, VIP, port) -> service index. Port 0 services (persistent, all ports) are looked
    /// up with port 0 after an exact miss.
    vips: HashMap<VipKey, u32>,
    /// Every VIP address (for ARP and ICMP echo answers).
    vip_addrs: Vec<IpAddr>,
    /// (proto, real-server addr, real-server port) of NAT destinations: a packet from one of
    /// these is a reply.
    masq_sources: HashMap<VipKey, ()>,
    /// dest id -> (service index, index in the service's dests).
    dest_ids: HashMap<u32, (u32, u32)>,
    /// The per-packet form of `vips` and `masq_sources` for IPv4: `v4_key` -> service index
    /// (VIPs) or 0 (NAT sources).
    v4_endpoints: SmallMap<u32>,
    /// Whether a port-zero IPv4 service exists (only then does a miss look up port 0).
    v4_port_zero: bool,
    /// One bit per IPv4 VIP address (`vip_bit`): a clear bit means "no VIP", no probe
    /// (the fast path asks that of every NAT reply, whose destination is a client).
    v4_vip_bits: u64,
    /// The per-packet form of `dest_ids`.
    dest_slots: SmallMap<(u32, u32)>,
    /// The same indexed by dest id while the ids are dense (the control plane numbers them
    /// from 1 and never reuses one, so they are unless many were removed): one bounds check
    /// instead of a hash probe per packet. Empty when sparse; missing ids hold [`NO_DEST`].
    dest_by_id: Vec<(u32, u32)>,
    /// What the fast path counts a packet on, by dest id (alongside `dest_by_id`: empty
    /// when the ids are sparse): the service's counters and the destination, one bounds
    /// check away.
    dest_refs: Vec<Option<(Arc<ServiceStats>, Arc<DestRt>)>>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
}

impl Snapshot {
    /// The service for an inbound packet to (proto, addr, port), if any.
    #[inline(always)]
    pub fn service_for(&self, proto: u8, addr: IpAddr, port: u16) -> Option<&ServiceRt> {
        if self.vips.is_empty() {
            return None;
        }
        if let IpAddr::V4(a) = addr {
            if self.v4_vip_bits & vip_bit(a) == 0 {
                return None;
            }
            let m = &self.v4_endpoints;
            let idx = match m.get(v4_key(KIND_VIP, proto, a, port)) {
                Some(i) => i,
                None if self.v4_port_zero => m.get(v4_key(KIND_VIP, proto, a, 0))?,
                None => return None,
            };
            return self.services.get(idx as usize);
        }
        let idx = match self.vips.get(&VipKey { proto, addr, port }) {
            Some(i) => *i,
            None => *self.vips.get(&VipKey {
                proto,
                addr,
                port: 0,
            })?,
        };
        self.services.get(idx as usize)
    }

    /// Whether (proto, addr, port) is the endpoint of a NAT real server (its packets are replies).
    #[inline(always)]
    pub fn is_masq_source(&self, proto: u8, addr: IpAddr, port: u16) -> bool {
        if self.masq_sources.is_empty() {
            return false;
        }
        match addr {
            IpAddr::V4(a) => self
                .v4_endpoints
                .get(v4_key(KIND_MASQ, proto, a, port))
                .is_some(),
            IpAddr::V6(_) => self
                .masq_sources
                .contains_key(&VipKey { proto, addr, port }),
        }
    }

    /// Whether `addr` is one of the configured VIPs.
    pub fn is_vip(&self, addr: IpAddr) -> bool {
        self.vip_addrs.contains(&addr)
    }

    /// All VIP addresses.
    pub fn vip_addrs(&self) -> &[IpAddr] {
        &self.vip_addrs
    }

    /// The destination with this id if it is still configured.
    #[inline(always)]
    pub fn dest(&self, id: u32) -> Option<(&ServiceRt, &Arc<DestRt>)> {
        let (s, d) = if self.dest_by_id.is_empty() {
            self.dest_slots.get(u64::from(id))?
        } else {
            *self.dest_by_id.get(id as usize)?
        };
        let svc = self.services.get(s as usize)?;
        Some((svc, svc.dests.get(d as usize)?))
    }

    /// The destination with this id, if still configured, and its service's counters: what
    /// the fast path counts a packet on ([`Snapshot::dest`] without the service).
    #[inline(always)]
    pub fn dest_counters(&self, id: u32) -> Option<(&ServiceStats, &DestRt)> {
        if self.dest_refs.is_empty() {
            let (svc, d) = self.dest(id)?;
            return Some((&svc.stats, d));
        }
        let (s, d) = self.dest_refs.get(id as usize)?.as_ref()?;
        Some((s, d))
    }
}

impl Snapshot {
    /// Builds the per-packet maps from `vips`, `masq_sources` and `dest_ids`.
    fn index_for_packets(&mut self) {
        let mut v4 = Vec::new();
        for (k, &i) in &self.vips {
            if let IpAddr::V4(a) = k.addr {
                v4.push((v4_key(KIND_VIP, k.proto, a, k.port), i));
                self.v4_port_zero |= k.port == 0;
                self.v4_vip_bits |= vip_bit(a);
            }
        }
        for k in self.masq_sources.keys() {
            if let IpAddr::V4(a) = k.addr {
                v4.push((v4_key(KIND_MASQ, k.proto, a, k.port), 0));
            }
        }
        self.v4_endpoints = SmallMap::new(&v4);
        let ids: Vec<(u64, (u32, u32))> = self
            .dest_ids
            .iter()
            .map(|(&id, &slot)| (u64::from(id), slot))
            .collect();
        self.dest_slots = SmallMap::new(&ids);
        let max_id = ids.iter().map(|&(id, _)| id as usize).max().unwrap_or(0);
        self.dest_by_id = Vec::new();
        self.dest_refs = Vec::new();
        if !ids.is_empty() && max_id <= 4 * ids.len() + 256 {
            self.dest_by_id = vec![NO_DEST; max_id + 1];
            self.dest_refs = vec![None; max_id + 1];
            for &(id, (s, d)) in &ids {
                self.dest_by_id[id as usize] = (s, d);
                let svc = &self.services[s as usize];
                self.dest_refs[id as usize] =
                    Some((Arc::clone(&svc.stats), Arc::clone(&svc.dests[d as usize])));
            }
        }
    }
}

/// Keeps per-destination and per-service live state across snapshots.
#[derive(Debug)]
pub struct StatsRegistry {
    n_workers: usize,
    dests: HashMap<u32, (Arc<DestLoad>, Arc<DestStats>)>,
    services: HashMap<ServiceKey, Arc<ServiceStats>>,
}

impl StatsRegistry {
    /// A registry for `n_workers` workers.
    pub fn new(n_workers: usize) -> Self {
        StatsRegistry {
            n_workers,
            dests: HashMap::new(),
            services: HashMap::new(),
        }
    }

    /// Live state of a destination (created on first use).
    pub fn dest(&mut self, id: u32) -> (Arc<DestLoad>, Arc<DestStats>) {
        let n = self.n_workers;
        let e = self.dests.entry(id).or_insert_with(|| {
            (
                Arc::new(DestLoad::with_writers(n)),
                Arc::new(DestStats::new(n)),
            )
        });
        (e.0.clone(), e.1.clone())
    }

    /// Counters of a service (created on first use).
    pub fn service(&mut self, key: &ServiceKey) -> Arc<ServiceStats> {
        let n = self.n_workers;
        self.services
            .entry(*key)
            .or_insert_with(|| Arc::new(ServiceStats::new(n)))
            .clone()
    }

    /// Forgets destinations and services that are no longer configured.
    pub fn retain(&mut self, live_dests: &[u32], live_services: &[ServiceKey]) {
        // A removed destination's connections are dropped on their next packet and expire
        // without a destination to unbind from (the kernel keeps a removed dest on a trash
        // list until its connections are gone; ours has nobody left to report its counts
        // to), so its live state goes with it.
        self.dests.retain(|id, _| live_dests.contains(id));
        self.services.retain(|k, _| live_services.contains(k));
    }
}

/// One service with its destinations (newest first, with their ids), as the control plane
/// hands them to [`SnapshotBuilder`].
#[derive(Debug, Clone)]
pub struct ServiceInput {
    /// Service configuration.
    pub config: ServiceConfig,
    /// (dest id, dest config), newest first.
    pub dests: Vec<(u32, DestConfig)>,
}

/// Builds snapshots, carrying scheduler state from the previous one.
pub struct SnapshotBuilder<'a> {
    registry: &'a mut StatsRegistry,
    previous: Option<&'a Snapshot>,
}

impl<'a> SnapshotBuilder<'a> {
    /// A builder over the registry; `previous` lets stateful schedulers carry state over.
    pub fn new(registry: &'a mut StatsRegistry, previous: Option<&'a Snapshot>) -> Self {
        SnapshotBuilder { registry, previous }
    }

    /// Builds the snapshot for `services` (an error names the service whose scheduler failed).
    pub fn build(
        self,
        generation: u64,
        services: &[ServiceInput],
        timeouts: Timeouts,
    ) -> Result<Snapshot, String> {
        let mut snap = Snapshot {
            generation,
            timeouts,
            ..Snapshot::default()
        };
        for (si, input) in services.iter().enumerate() {
            let cfg = &input.config;
            let mut dests = Vec::with_capacity(input.dests.len());
            let mut specs = Vec::with_capacity(input.dests.len());
            let mut loads = Vec::with_capacity(input.dests.len());
            for (di, (id, d)) in input.dests.iter().enumerate() {
                let (load, stats) = self.registry.dest(*id);
                load.set_thresholds(d.u_threshold, d.l_threshold);
                specs.push(DestSpec {
                    addr: d.addr,
                    port: d.port,
                    weight: d.weight,
                    u_threshold: d.u_threshold,
                    l_threshold: d.l_threshold,
                });
                loads.push(load.clone());
                let nat_source_v4 = match (cfg.key, d.addr) {
                    (ServiceKey::Addr { proto, .. }, IpAddr::V4(a))
                        if d.forward == crate::model::ForwardMethod::Masq =>
                    {
                        Some((proto.number(), a, d.port))
                    }
                    _ => None,
                };
                dests.push(Arc::new(DestRt {
                    id: *id,
                    config: d.clone(),
                    load,
                    stats,
                    nat_source_v4,
                }));
                snap.dest_ids.insert(*id, (si as u32, di as u32));
            }
            let params = SchedParams {
                name: cfg.scheduler.clone(),
                flag1: cfg.flags.flag1,
                flag2: cfg.flags.flag2,
                flag3: cfg.flags.flag3,
                mh_table_size: None,
            };
            let prev = self.previous.and_then(|p| {
                p.services
                    .iter()
                    .find(|s| s.config.key == cfg.key && s.config.scheduler == cfg.scheduler)
            });
            let scheduler = sched::build(
                &params,
                &specs,
                &loads,
                prev.map(|p| p.scheduler.as_ref() as &dyn Scheduler),
            )
            .map_err(|e| format!("{:?}: {e}", cfg.key))?;
            match cfg.key {
                ServiceKey::Addr { proto, addr, port } => {
                    snap.vips.insert(
                        VipKey {
                            proto: proto.number(),
                            addr,
                            port,
                        },
                        si as u32,
                    );
                    if !snap.vip_addrs.contains(&addr) {
                        snap.vip_addrs.push(addr);
                    }
                    for d in &input.dests {
                        if d.1.forward == crate::model::ForwardMethod::Masq {
                            snap.masq_sources.insert(
                                VipKey {
                                    proto: proto.number(),
                                    addr: d.1.addr,
                                    port: d.1.port,
                                },
                                (),
                            );
                        }
                    }
                }
                // Firewall marks come from netfilter in the kernel; a DPDK data plane has no
                // mark source, so fwmark services are configuration-only (listed, saved,
                // restored) and match no packets. See README "Limitations".
                ServiceKey::Fwmark { .. } => {}
            }
            snap.services.push(ServiceRt {
                index: si as u32,
                config: cfg.clone(),
                dests,
                scheduler: Arc::from(scheduler),
                stats: self.registry.service(&cfg.key),
            });
        }
        snap.index_for_packets();
        let live: Vec<u32> = snap.dest_ids.keys().copied().collect();
        let keys: Vec<ServiceKey> = services.iter().map(|s| s.config.key).collect();
        self.registry.retain(&live, &keys);
        Ok(snap)
    }
}

/// The published snapshot: workers `load()` it, the control plane `store()`s new ones.
pub type SnapshotCell = ArcSwap<Snapshot>;

/// A protocol number to the model's protocol (TCP/UDP only).
pub fn protocol_of(number: u8) -> Option<Protocol> {
    match number {
        6 => Some(Protocol::Tcp),
        17 => Some(Protocol::Udp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ForwardMethod, SchedFlags};
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn small_map_finds_every_key_and_nothing_else() {
        // Keys that differ only in high bits, low bits, or both; one duplicate.
        let mut entries: Vec<(u64, u32)> = (0..100u64)
            .map(|i| (i << 40 | i, i as u32))
            .chain((0..100u64).map(|i| (i + 7, 1000 + i as u32)))
            .collect();
        entries.push((7, 5));
        let m = SmallMap::new(&entries);
        assert_eq!(m.len(), 200);
        for i in 1..100u64 {
            assert_eq!(m.get(i << 40 | i), Some(i as u32));
        }
        assert_eq!(m.get(7), Some(5));
        for i in 1..100u64 {
            assert_eq!(m.get(i + 7), Some(1000 + i as u32));
        }
        assert_eq!(m.get(1 << 50), None);
        assert_eq!(SmallMap::<u32>::default().get(0), None);
    }

    fn svc(key: ServiceKey, dests: Vec<(u32, DestConfig)>) -> ServiceInput {
        ServiceInput {
            config: ServiceConfig {
                key,
                scheduler: "rr".into(),
                flags: SchedFlags::default(),
                persistence: None,
                netmask_prefix: 32,
                one_packet: false,
            },
            dests,
        }
    }

    fn dest(addr: IpAddr, port: u16, forward: ForwardMethod) -> DestConfig {
        DestConfig {
            addr,
            port,
            forward,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        }
    }

    #[test]
    fn per_packet_queries_match_the_configuration() {
        let vip = Ipv4Addr::new(203, 0, 113, 1);
        let rs = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        let v6: IpAddr = "2001:db8::1".parse::<Ipv6Addr>().unwrap().into();
        let addr = |proto, addr, port| ServiceKey::Addr { proto, addr, port };
        let services = vec![
            svc(
                addr(Protocol::Tcp, IpAddr::V4(vip), 80),
                vec![
                    (7, dest(rs(1), 8080, ForwardMethod::Masq)),
                    (9, dest(rs(2), 80, ForwardMethod::Route)),
                ],
            ),
            svc(
                addr(Protocol::Udp, IpAddr::V4(vip), 0),
                vec![(11, dest(rs(3), 0, ForwardMethod::Masq))],
            ),
            svc(addr(Protocol::Tcp, v6, 443), vec![]),
        ];
        let mut reg = StatsRegistry::new(1);
        let snap = SnapshotBuilder::new(&mut reg, None)
            .build(1, &services, Timeouts::default())
            .unwrap();
        let idx = |s: Option<&ServiceRt>| s.map(|s| s.index);
        assert_eq!(idx(snap.service_for(6, IpAddr::V4(vip), 80)), Some(0));
        assert_eq!(idx(snap.service_for(6, IpAddr::V4(vip), 81)), None);
        // Port-zero service: any port of its protocol.
        assert_eq!(idx(snap.service_for(17, IpAddr::V4(vip), 53)), Some(1));
        assert_eq!(idx(snap.service_for(17, IpAddr::V4(vip), 0)), Some(1));
        assert_eq!(idx(snap.service_for(6, rs(1), 80)), None);
        assert_eq!(idx(snap.service_for(6, v6, 443)), Some(2));
        assert_eq!(idx(snap.service_for(6, v6, 80)), None);
        // NAT sources: Masq destinations only, exact protocol and port.
        assert!(snap.is_masq_source(6, rs(1), 8080));
        assert!(!snap.is_masq_source(6, rs(1), 80));
        assert!(!snap.is_masq_source(17, rs(1), 8080));
        assert!(!snap.is_masq_source(6, rs(2), 80));
        assert!(snap.is_masq_source(17, rs(3), 0));
        // Each NAT destination carries the endpoint its replies come from (one that
        // is_masq_source knows); other methods none.
        let ip4 = |i: u8| Ipv4Addr::new(10, 0, 0, i);
        let nat_source = |id| snap.dest_counters(id).unwrap().1.nat_source_v4;
        assert_eq!(nat_source(7), Some((6, ip4(1), 8080)));
        assert_eq!(nat_source(9), None);
        assert_eq!(nat_source(11), Some((17, ip4(3), 0)));
        for (p, a, port) in [nat_source(7).unwrap(), nat_source(11).unwrap()] {
            assert!(snap.is_masq_source(p, IpAddr::V4(a), port));
        }
        // A VIP endpoint is not a NAT source and the reverse.
        assert!(!snap.is_masq_source(6, IpAddr::V4(vip), 80));
        assert_eq!(idx(snap.service_for(6, rs(1), 8080)), None);
        // The VIP filter: a clear bit answers "no VIP" at once; an address sharing the VIP's
        // bit is still looked up, and found to be none.
        assert_ne!(snap.v4_vip_bits & vip_bit(vip), 0);
        let twin = (1..u32::MAX)
            .map(|i| Ipv4Addr::from(u32::from(vip).wrapping_add(i)))
            .find(|&a| vip_bit(a) == vip_bit(vip))
            .unwrap();
        assert_eq!(idx(snap.service_for(6, IpAddr::V4(twin), 80)), None);
        for i in 0..1000u32 {
            let a = Ipv4Addr::from(0x0a00_0000 + i);
            assert_eq!(idx(snap.service_for(6, IpAddr::V4(a), 80)), None);
        }
        for (id, s, addr) in [(7, 0, rs(1)), (9, 0, rs(2)), (11, 1, rs(3))] {
            let (sv, d) = snap.dest(id).expect("configured");
            assert_eq!((sv.index, d.id, d.config.addr), (s, id, addr));
        }
        assert!(snap.dest(8).is_none());
        assert!(snap.dest(0).is_none());
        assert!(snap.dest(12).is_none());
        assert!(snap.dest(u32::MAX).is_none());
    }

    /// Sparse dest ids (many destinations removed over time) are found through the hash map,
    /// dense ones through the vector: the same answers.
    #[test]
    fn dest_lookup_by_sparse_and_dense_ids() {
        let rs = |i: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
        let addr = |port| ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            port,
        };
        for ids in [[3u32, 4, 5], [5, 700_000, 4_000_000_000]] {
            let services = vec![svc(
                addr(80),
                ids.iter()
                    .enumerate()
                    .map(|(i, &id)| (id, dest(rs(i as u8 + 1), 80, ForwardMethod::Masq)))
                    .collect(),
            )];
            let mut reg = StatsRegistry::new(1);
            let snap = SnapshotBuilder::new(&mut reg, None)
                .build(1, &services, Timeouts::default())
                .unwrap();
            assert_eq!(snap.dest_by_id.is_empty(), ids[2] > 1000, "{ids:?}");
            assert_eq!(snap.dest_refs.is_empty(), ids[2] > 1000, "{ids:?}");
            for (i, &id) in ids.iter().enumerate() {
                let (sv, d) = snap.dest(id).expect("configured");
                assert_eq!((sv.index, d.id, d.config.addr), (0, id, rs(i as u8 + 1)));
                assert!(snap.dest(id + 1).is_none() || ids.contains(&(id + 1)));
                // The fast path's form: the same destination and the service's counters.
                let (st, d2) = snap.dest_counters(id).expect("configured");
                assert!(std::ptr::eq(st, &*sv.stats) && std::ptr::eq(d2, &**d));
                assert_eq!(
                    snap.dest_counters(id + 1).is_none(),
                    snap.dest(id + 1).is_none()
                );
            }
            assert!(snap.dest(0).is_none() && snap.dest(2).is_none());
            assert!(snap.dest_counters(0).is_none() && snap.dest_counters(2).is_none());
        }
    }
}
