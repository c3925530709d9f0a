//! Neighbour (ARP) resolution, split so that workers never lock:
//!
//! - [`NeighTable`]: an immutable snapshot workers read (`port, ip -> MAC`), an open-addressing
//!   array; a lookup allocates nothing.
//! - [`NeighManager`]: the control plane's mutable truth (static entries, learned entries with
//!   their timers, resolution retries). Workers report what they see as [`NeighEvent`]s over a
//!   bounded channel ([`event_channel`], `try_send` so a worker never blocks); the manager
//!   applies them, says which ARP requests are due, and publishes a new snapshot only when
//!   something a worker can see changed.
//! - [`PendingQueue`]: per worker, the few packets waiting for a next hop to resolve, in
//!   preallocated bounded storage.
//!
//! Entry life cycle (a simplified `net/core/neighbour.c`): a miss creates an *incomplete* entry
//! and one ARP request per retry interval is due; a reply makes it *reachable*; after the
//! reachable time it turns *stale* (still used) and is probed again; a neighbour that does not
//! answer `max_probes` requests becomes *failed* for a hold time (workers drop its packets),
//! then is forgotten. Static entries never change.
//!
//! All times are monotonic nanoseconds supplied by the caller.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crossbeam::channel::{self, Receiver, Sender};

use crate::dataplane::route::RouteTable;

/// What a worker reports to the neighbour manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighEvent {
    /// An ARP request or reply was received on `port` from `ip` at `mac` (its sender fields).
    Learned {
        /// Receiving port.
        port: u16,
        /// Sender protocol address.
        ip: Ipv4Addr,
        /// Sender hardware address.
        mac: [u8; 6],
    },
    /// A packet needs next hop `ip` on `port` and the worker's snapshot has no MAC for it.
    Miss {
        /// Output port.
        port: u16,
        /// Next hop to resolve.
        ip: Ipv4Addr,
    },
}

/// A bounded channel for [`NeighEvent`]s: workers `try_send` (dropping the event when full), the
/// control plane [`NeighManager::drain`]s the receiver.
pub fn event_channel(capacity: usize) -> (Sender<NeighEvent>, Receiver<NeighEvent>) {
    channel::bounded(capacity)
}

/// What a worker's snapshot knows about a neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Resolved: send to this MAC.
    Mac([u8; 6]),
    /// Resolution failed recently: drop the packet instead of queueing it.
    Failed,
    /// Not known (or being resolved): queue the packet and report a miss.
    Unknown,
}

/// Slot key that no (port, ip) can have: a port is 16 bits, so the top bits of a real key are 0.
const EMPTY: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: u64,
    mac: [u8; 6],
    failed: bool,
}

/// The immutable neighbour snapshot workers read.
#[derive(Debug, Clone)]
pub struct NeighTable {
    slots: Box<[Slot]>,
    /// Unique per built table: what caches of resolutions key on.
    generation: u64,
    /// `64 - log2(slots.len())`, for Fibonacci hashing.
    shift: u32,
    len: usize,
}

impl Default for NeighTable {
    /// An empty table.
    fn default() -> Self {
        Self::build(std::iter::empty(), 0)
    }
}

impl NeighTable {
    /// Builds a table from `(port, ip, resolution)`; `Unknown` entries are left out. At most half
    /// the slots are used, so a probe always ends at an empty slot.
    fn build(entries: impl Iterator<Item = (u16, Ipv4Addr, Resolution)>, hint: usize) -> Self {
        let cap = (hint * 2).next_power_of_two().max(8);
        let mut t = Self {
            slots: vec![
                Slot {
                    key: EMPTY,
                    mac: [0; 6],
                    failed: false,
                };
                cap
            ]
            .into_boxed_slice(),
            shift: 64 - cap.trailing_zeros(),
            generation: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            len: 0,
        };
        for (port, ip, res) in entries {
            let (mac, failed) = match res {
                Resolution::Mac(mac) => (mac, false),
                Resolution::Failed => ([0; 6], true),
                Resolution::Unknown => continue,
            };
            let key = key(port, ip);
            let mut i = t.home(key);
            while t.slots[i].key != EMPTY && t.slots[i].key != key {
                i = (i + 1) & (t.slots.len() - 1);
            }
            if t.slots[i].key == EMPTY {
                t.len += 1;
            }
            t.slots[i] = Slot { key, mac, failed };
        }
        t
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// Identity of this table: unique among the tables this process built, so a cache of
    /// resolutions keyed on it is never stale (a table never changes once built).
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What is known about `ip` on `port`.
    #[inline]
    pub fn resolve(&self, port: u16, ip: Ipv4Addr) -> Resolution {
        let key = key(port, ip);
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if s.key == key {
                return if s.failed {
                    Resolution::Failed
                } else {
                    Resolution::Mac(s.mac)
                };
            }
            if s.key == EMPTY {
                return Resolution::Unknown;
            }
            i = (i + 1) & mask;
        }
    }

    /// The MAC of `ip` on `port`, if resolved.
    #[inline]
    pub fn lookup(&self, port: u16, ip: Ipv4Addr) -> Option<[u8; 6]> {
        match self.resolve(port, ip) {
            Resolution::Mac(mac) => Some(mac),
            _ => None,
        }
    }

    /// Number of entries (resolved and failed).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[inline]
fn key(port: u16, ip: Ipv4Addr) -> u64 {
    (u64::from(port) << 32) | u64::from(u32::from(ip))
}

/// Timers and bounds of the neighbour manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighConfig {
    /// How long a learned entry is reachable before it turns stale and is probed again.
    pub reachable_ns: u64,
    /// Time between two ARP requests for the same neighbour.
    pub retry_interval_ns: u64,
    /// Requests sent without an answer before the neighbour is marked failed.
    pub max_probes: u32,
    /// How long a failed neighbour stays failed (misses are ignored meanwhile).
    pub failed_hold_ns: u64,
    /// Most entries of all kinds; further learned entries and misses are ignored (counted).
    pub max_entries: usize,
}

impl Default for NeighConfig {
    /// 300 s reachable, 1 request/s, 3 probes, failed for 20 s, 4096 entries.
    fn default() -> Self {
        Self {
            reachable_ns: 300_000_000_000,
            retry_interval_ns: 1_000_000_000,
            max_probes: 3,
            failed_hold_ns: 20_000_000_000,
            max_entries: 4096,
        }
    }
}

/// State of one neighbour, as `ip neigh` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    /// Configured; never expires, never overridden by ARP.
    Permanent,
    /// Learned and confirmed within the reachable time.
    Reachable,
    /// Learned, reachable time over: still used, being probed.
    Stale,
    /// Being resolved after a miss; no MAC yet.
    Incomplete,
    /// Did not answer; packets to it are dropped until the hold time ends.
    Failed,
}

/// Why [`NeighManager::add_static`] refused an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighError {
    /// The address is not a neighbour on that port (outside its connected nets, or local).
    NotOnLink {
        /// Port.
        port: u16,
        /// Address.
        ip: Ipv4Addr,
    },
    /// A zero, broadcast or multicast MAC.
    InvalidMac {
        /// The MAC given.
        mac: [u8; 6],
    },
    /// The table holds `max_entries` already.
    TableFull,
}

impl fmt::Display for NeighError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NeighError::NotOnLink { port, ip } => {
                write!(f, "{ip} is not on a connected net of port {port}")
            }
            NeighError::InvalidMac { mac } => write!(
                f,
                "invalid neighbour MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
            ),
            NeighError::TableFull => write!(f, "neighbour table is full"),
        }
    }
}

impl std::error::Error for NeighError {}

/// Counters of the neighbour manager.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighStats {
    /// New entries learned, or incomplete/stale/failed ones confirmed.
    pub learned: u64,
    /// Reachable entries whose MAC changed.
    pub changed: u64,
    /// Events for addresses that are not neighbours on that port.
    pub ignored_foreign: u64,
    /// Learned events for a static entry.
    pub ignored_static: u64,
    /// Learned events with a zero/broadcast/multicast MAC.
    pub ignored_invalid: u64,
    /// Events dropped because the table was full.
    pub ignored_full: u64,
    /// Misses that started a resolution.
    pub misses: u64,
    /// ARP requests returned by [`NeighManager::due_requests`].
    pub requests: u64,
    /// Neighbours marked failed.
    pub failed: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Permanent,
    Reachable { confirmed: u64 },
    Stale { tries: u32, next_try: u64 },
    Incomplete { tries: u32, next_try: u64 },
    Failed { until: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    mac: [u8; 6],
    state: State,
}

impl Entry {
    fn resolution(&self) -> Resolution {
        match self.state {
            State::Permanent | State::Reachable { .. } | State::Stale { .. } => {
                Resolution::Mac(self.mac)
            }
            State::Failed { .. } => Resolution::Failed,
            State::Incomplete { .. } => Resolution::Unknown,
        }
    }
}

/// The control plane's neighbour state (see the module docs).
#[derive(Debug)]
pub struct NeighManager {
    cfg: NeighConfig,
    routes: Arc<RouteTable>,
    /// Keyed by (port, ip) so listings and due requests come out sorted.
    entries: BTreeMap<(u16, Ipv4Addr), Entry>,
    snapshot: Arc<NeighTable>,
    /// Something a worker can see changed since the last snapshot.
    dirty: bool,
    stats: NeighStats,
}

impl NeighManager {
    /// A manager with no entries; neighbours are accepted on the connected nets of `routes`.
    pub fn new(cfg: NeighConfig, routes: Arc<RouteTable>) -> Self {
        Self {
            cfg,
            routes,
            entries: BTreeMap::new(),
            snapshot: Arc::new(NeighTable::default()),
            dirty: false,
            stats: NeighStats::default(),
        }
    }

    /// Switches to a new routing table and forgets every entry (static ones included) that is
    /// no longer a neighbour on its port.
    pub fn set_routes(&mut self, routes: Arc<RouteTable>) {
        let before = self.entries.len();
        self.entries
            .retain(|&(port, ip), _| routes.on_link(port, ip));
        self.dirty |= self.entries.len() != before;
        self.routes = routes;
    }

    /// Adds or replaces a static (permanent) entry.
    pub fn add_static(&mut self, port: u16, ip: Ipv4Addr, mac: [u8; 6]) -> Result<(), NeighError> {
        if !valid_mac(mac) {
            return Err(NeighError::InvalidMac { mac });
        }
        if !self.routes.on_link(port, ip) {
            return Err(NeighError::NotOnLink { port, ip });
        }
        if !self.entries.contains_key(&(port, ip)) && self.entries.len() >= self.cfg.max_entries {
            return Err(NeighError::TableFull);
        }
        self.entries.insert(
            (port, ip),
            Entry {
                mac,
                state: State::Permanent,
            },
        );
        self.dirty = true;
        Ok(())
    }

    /// Removes a static entry; returns whether there was one.
    pub fn remove_static(&mut self, port: u16, ip: Ipv4Addr) -> bool {
        match self.entries.get(&(port, ip)) {
            Some(Entry {
                state: State::Permanent,
                ..
            }) => {
                self.entries.remove(&(port, ip));
                self.dirty = true;
                true
            }
            _ => false,
        }
    }

    /// Applies one worker event at time `now`.
    pub fn apply(&mut self, event: NeighEvent, now: u64) {
        match event {
            NeighEvent::Learned { port, ip, mac } => self.learn(port, ip, mac, now),
            NeighEvent::Miss { port, ip } => self.miss(port, ip, now),
        }
    }

    /// Applies the events queued in `rx` (at most as many as were queued on entry, so busy
    /// workers cannot keep this call going); returns how many.
    pub fn drain(&mut self, rx: &Receiver<NeighEvent>, now: u64) -> usize {
        let mut n = 0;
        for _ in 0..rx.len() {
            match rx.try_recv() {
                Ok(ev) => {
                    self.apply(ev, now);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        n
    }

    fn learn(&mut self, port: u16, ip: Ipv4Addr, mac: [u8; 6], now: u64) {
        if !valid_mac(mac) {
            self.stats.ignored_invalid += 1;
            return;
        }
        if !self.routes.on_link(port, ip) {
            self.stats.ignored_foreign += 1;
            return;
        }
        let full = self.entries.len() >= self.cfg.max_entries;
        let reachable = State::Reachable { confirmed: now };
        match self.entries.get_mut(&(port, ip)) {
            Some(Entry {
                state: State::Permanent,
                ..
            }) => self.stats.ignored_static += 1,
            Some(e) => {
                let was_reachable = matches!(e.state, State::Reachable { .. });
                if e.mac != mac
                    || matches!(e.state, State::Incomplete { .. } | State::Failed { .. })
                {
                    self.dirty = true;
                }
                if was_reachable {
                    if e.mac != mac {
                        self.stats.changed += 1;
                    }
                } else {
                    self.stats.learned += 1;
                }
                *e = Entry {
                    mac,
                    state: reachable,
                };
            }
            None if full => self.stats.ignored_full += 1,
            None => {
                self.entries.insert(
                    (port, ip),
                    Entry {
                        mac,
                        state: reachable,
                    },
                );
                self.stats.learned += 1;
                self.dirty = true;
            }
        }
    }

    fn miss(&mut self, port: u16, ip: Ipv4Addr, now: u64) {
        if self.entries.contains_key(&(port, ip)) {
            // Being resolved, failed (hold time), or resolved after the worker's snapshot.
            return;
        }
        if !self.routes.on_link(port, ip) {
            self.stats.ignored_foreign += 1;
            return;
        }
        if self.entries.len() >= self.cfg.max_entries {
            self.stats.ignored_full += 1;
            return;
        }
        self.entries.insert(
            (port, ip),
            Entry {
                mac: [0; 6],
                state: State::Incomplete {
                    tries: 0,
                    next_try: now,
                },
            },
        );
        self.stats.misses += 1;
    }

    /// Runs the timers up to `now` and returns the ARP requests to send now, sorted by
    /// (port, ip): at most one per neighbour per retry interval. A neighbour that did not answer
    /// `max_probes` requests becomes failed; a failed one is forgotten after the hold time.
    pub fn due_requests(&mut self, now: u64) -> Vec<(u16, Ipv4Addr)> {
        let cfg = self.cfg;
        let mut due = Vec::new();
        let mut forget = Vec::new();
        for (&k, e) in self.entries.iter_mut() {
            if let State::Reachable { confirmed } = e.state {
                if now >= confirmed.saturating_add(cfg.reachable_ns) {
                    e.state = State::Stale {
                        tries: 0,
                        next_try: now,
                    };
                }
            }
            match &mut e.state {
                State::Stale { tries, next_try } | State::Incomplete { tries, next_try } => {
                    if now < *next_try {
                        continue;
                    }
                    if *tries >= cfg.max_probes {
                        e.state = State::Failed {
                            until: now.saturating_add(cfg.failed_hold_ns),
                        };
                        self.stats.failed += 1;
                        self.dirty = true;
                    } else {
                        *tries += 1;
                        *next_try = now.saturating_add(cfg.retry_interval_ns);
                        due.push(k);
                    }
                }
                State::Failed { until } if now >= *until => forget.push(k),
                _ => {}
            }
        }
        for k in forget {
            self.entries.remove(&k);
            self.dirty = true;
        }
        self.stats.requests += due.len() as u64;
        due
    }

    /// The snapshot for workers; rebuilt only when something they can see changed since the
    /// previous call, else the same `Arc`.
    pub fn snapshot(&mut self) -> Arc<NeighTable> {
        if self.dirty {
            let table = NeighTable::build(
                self.entries
                    .iter()
                    .map(|(&(port, ip), e)| (port, ip, e.resolution())),
                self.entries.len(),
            );
            self.snapshot = Arc::new(table);
            self.dirty = false;
        }
        Arc::clone(&self.snapshot)
    }

    /// State and MAC (if known) of one neighbour.
    pub fn state(&self, port: u16, ip: Ipv4Addr) -> Option<(NeighState, Option<[u8; 6]>)> {
        self.entries.get(&(port, ip)).map(|e| {
            let state = match e.state {
                State::Permanent => NeighState::Permanent,
                State::Reachable { .. } => NeighState::Reachable,
                State::Stale { .. } => NeighState::Stale,
                State::Incomplete { .. } => NeighState::Incomplete,
                State::Failed { .. } => NeighState::Failed,
            };
            let mac = match e.resolution() {
                Resolution::Mac(mac) => Some(mac),
                _ => None,
            };
            (state, mac)
        })
    }

    /// Number of entries of all states.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counters so far.
    pub fn stats(&self) -> NeighStats {
        self.stats
    }
}

/// A unicast, non-zero MAC.
fn valid_mac(mac: [u8; 6]) -> bool {
    mac != [0; 6] && mac[0] & 1 == 0
}

/// How long a packet may wait for its next hop by default (3 s).
pub const PENDING_TIMEOUT_NS: u64 = 3_000_000_000;

/// What [`PendingQueue::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// The first packet for this next hop: report a [`NeighEvent::Miss`].
    NewHop,
    /// Added behind packets already waiting for this next hop.
    Appended,
}

#[derive(Debug, Clone, Copy)]
struct Hop {
    port: u16,
    ip: Ipv4Addr,
    /// When the first packet arrived; all of the hop's packets expire together.
    since: u64,
    /// Packets of the hop are at `head..len` of its slots.
    head: usize,
    len: usize,
    in_use: bool,
}

/// Per-worker packets waiting for ARP: at most `per_hop` packets for each of at most `max_hops`
/// next hops, in storage allocated once by [`new`](Self::new).
#[derive(Debug)]
pub struct PendingQueue<T> {
    hops: Box<[Hop]>,
    /// `per_hop` slots per hop, hop `i` at `i * per_hop..`.
    pkts: Box<[Option<T>]>,
    per_hop: usize,
    timeout_ns: u64,
    hops_used: usize,
    queued: usize,
}

impl<T> PendingQueue<T> {
    /// An empty queue for `max_hops` next hops of `per_hop` packets each; packets older than
    /// `timeout_ns` are handed back by [`expire`](Self::expire).
    pub fn new(max_hops: usize, per_hop: usize, timeout_ns: u64) -> Self {
        let free = Hop {
            port: 0,
            ip: Ipv4Addr::UNSPECIFIED,
            since: 0,
            head: 0,
            len: 0,
            in_use: false,
        };
        Self {
            hops: vec![free; max_hops].into_boxed_slice(),
            pkts: (0..max_hops * per_hop).map(|_| None).collect(),
            per_hop,
            timeout_ns,
            hops_used: 0,
            queued: 0,
        }
    }

    /// Queues `pkt` for next hop `ip` on `port`; gives it back when that hop already holds
    /// `per_hop` packets or all `max_hops` hops are taken (the caller drops and counts it).
    pub fn push(&mut self, port: u16, ip: Ipv4Addr, pkt: T, now: u64) -> Result<Queued, T> {
        let mut free = None;
        for (i, h) in self.hops.iter().enumerate() {
            if h.in_use && h.port == port && h.ip == ip {
                if h.len == self.per_hop {
                    return Err(pkt);
                }
                self.pkts[i * self.per_hop + h.len] = Some(pkt);
                self.hops[i].len += 1;
                self.queued += 1;
                return Ok(Queued::Appended);
            }
            if !h.in_use && free.is_none() {
                free = Some(i);
            }
        }
        let Some(i) = free.filter(|_| self.per_hop > 0) else {
            return Err(pkt);
        };
        self.hops[i] = Hop {
            port,
            ip,
            since: now,
            head: 0,
            len: 1,
            in_use: true,
        };
        self.pkts[i * self.per_hop] = Some(pkt);
        self.hops_used += 1;
        self.queued += 1;
        Ok(Queued::NewHop)
    }

    /// Hands back the packets whose next hop `table` resolves, as `(port, packet, mac)`: each
    /// hop's packets in arrival order, hops in slot order. Packets not taken (iterator dropped
    /// early) stay queued.
    pub fn take_resolved<'a>(
        &'a mut self,
        table: &'a NeighTable,
    ) -> impl Iterator<Item = (u16, T, [u8; 6])> + 'a {
        Drain {
            q: self,
            slot: 0,
            cur: None,
            pick: move |h: &Hop| table.lookup(h.port, h.ip),
        }
    }

    /// Hands back the packets of every hop that has waited `timeout_ns` or more at `now`, for
    /// the caller to drop and count.
    pub fn expire(&mut self, now: u64) -> impl Iterator<Item = T> + '_ {
        let timeout = self.timeout_ns;
        Drain {
            q: self,
            slot: 0,
            cur: None,
            pick: move |h: &Hop| (now.saturating_sub(h.since) >= timeout).then_some(()),
        }
        .map(|(_, pkt, ())| pkt)
    }

    /// Packets queued.
    pub fn len(&self) -> usize {
        self.queued
    }

    /// Whether no packet is queued.
    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Next hops with packets queued.
    pub fn hops(&self) -> usize {
        self.hops_used
    }
}

/// Takes the packets of the hops `pick` selects, one at a time, freeing each hop once empty.
struct Drain<'q, T, M, F> {
    q: &'q mut PendingQueue<T>,
    slot: usize,
    /// `pick`'s answer for the hop at `slot`, once asked.
    cur: Option<M>,
    pick: F,
}

impl<T, M: Copy, F: FnMut(&Hop) -> Option<M>> Iterator for Drain<'_, T, M, F> {
    type Item = (u16, T, M);

    fn next(&mut self) -> Option<Self::Item> {
        while self.q.hops_used > 0 && self.slot < self.q.hops.len() {
            let h = self.q.hops[self.slot];
            if !h.in_use {
                self.slot += 1;
                self.cur = None;
                continue;
            }
            let m = match self.cur {
                Some(m) => m,
                None => match (self.pick)(&h) {
                    Some(m) => {
                        self.cur = Some(m);
                        m
                    }
                    None => {
                        self.slot += 1;
                        continue;
                    }
                },
            };
            let pkt = self.q.pkts[self.slot * self.q.per_hop + h.head].take();
            let hop = &mut self.q.hops[self.slot];
            hop.head += 1;
            if hop.head == hop.len {
                hop.in_use = false;
                self.q.hops_used -= 1;
            }
            if let Some(pkt) = pkt {
                self.q.queued -= 1;
                return Some((h.port, pkt, m));
            }
        }
        None
    }
}
