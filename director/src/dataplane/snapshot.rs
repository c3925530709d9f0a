//! Immutable configuration snapshots read by the workers.
//!
//! The control plane builds a [`Snapshot`] off the fast path (schedulers included) and publishes
//! it through [`SnapshotCell`] (arc-swap). A worker loads the current snapshot once per burst.
//! Per-destination live state that must survive reconfiguration (connection counts in
//! `sched::DestLoad`, traffic counters in `metrics::DestStats`) is kept by [`StatsRegistry`] and
//! shared by `Arc` between successive snapshots.

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
    /// Connection timeouts.
    pub timeouts: Timeouts,
}

impl Snapshot {
    /// The service for an inbound packet to (proto, addr, port), if any.
    #[inline]
    pub fn service_for(&self, proto: u8, addr: IpAddr, port: u16) -> Option<&ServiceRt> {
        if self.vips.is_empty() {
            return None;
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
    #[inline]
    pub fn is_masq_source(&self, proto: u8, addr: IpAddr, port: u16) -> bool {
        !self.masq_sources.is_empty()
            && self
                .masq_sources
                .contains_key(&VipKey { proto, addr, port })
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
    #[inline]
    pub fn dest(&self, id: u32) -> Option<(&ServiceRt, &Arc<DestRt>)> {
        let (s, d) = *self.dest_ids.get(&id)?;
        let svc = self.services.get(s as usize)?;
        Some((svc, svc.dests.get(d as usize)?))
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
        let e = self
            .dests
            .entry(id)
            .or_insert_with(|| (Arc::new(DestLoad::new()), Arc::new(DestStats::new(n))));
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
                dests.push(Arc::new(DestRt {
                    id: *id,
                    config: d.clone(),
                    load,
                    stats,
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
