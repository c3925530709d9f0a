//! The per-worker connection table: a preallocated slab of [`Conn`] entries indexed by `u32`,
//! one open-addressing index (`index.rs`) mapping both inbound and NAT reply keys to slab
//! indices, and a timer wheel threaded through the entries.
//!
//! Nothing here allocates after [`ConnTable::with_capacity`]: the slab is filled with vacant
//! entries up front and the index has four slots per entry, so it never exceeds half full.
//! Both are [`HugeArray`]s: on transparent huge pages, a random lookup in a big table costs
//! cache misses but no TLB misses.
//!
//! Burst lookups are staged so that their cache misses overlap (see [`ConnTable::hash_in`]):
//! hash every key and prefetch its index slot, then prefetch each key's candidate entry, then
//! look up.

use std::net::Ipv4Addr;

use super::entry::{flag, Conn, ConnIdx, ConnState, LoadClass};
use super::index::FlowIndex;
use super::key::{random_seed, ConnAddr, FlowKey};
use super::pending::{PendingReplies, PENDING};
use super::tcp_state::{next_state, tcp_flags, Direction, StateTable, TcpState, Timeouts};
use super::timer::{TimerNode, TimerWheel, NIL};
use crate::dpdk::mem::{prefetch, prefetch_all, HugeArray};
use crate::model::{ForwardMethod, Protocol};
use crate::wire::nat::NatDeltas;

/// Seconds in one turn of the timer wheel; longer timeouts come around again.
const WHEEL_SLOTS: usize = 4096;
/// Lookups of a burst are staged in chunks of this many keys.
const BURST_CHUNK: usize = 32;

/// A key's hash in one table (from [`ConnTable::hash_in`] / [`ConnTable::hash_reply`]),
/// carried between the stages of a burst lookup. Only meaningful for the table and the key
/// kind that made it: anything else simply finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(u64);

/// The entry a key's index slot names first ([`ConnTable::prefetch_entry`]): a guess that
/// [`ConnTable::lookup_packet`] checks against the key before it walks the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate(u32);

impl Candidate {
    /// No guess.
    pub const NONE: Candidate = Candidate(NIL);
}

impl From<ConnIdx> for Candidate {
    /// A guess that entry `idx` holds the key: right or wrong, live or freed, the lookup's
    /// answer is the same (a wrong guess only costs the walk of the index).
    fn from(idx: ConnIdx) -> Self {
        Candidate(idx.0)
    }
}

/// Whether a state change moved the connection across the active/inactive line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadChange {
    /// No change of class.
    None,
    /// Was inactive, now active: the caller moves one count from InActConn to ActiveConn.
    Activated,
    /// Was active, now inactive: the caller moves one count from ActiveConn to InActConn.
    Deactivated,
}

/// Result of [`ConnTable::on_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    /// State before the packet.
    pub old: ConnState,
    /// State after the packet.
    pub new: ConnState,
    /// Active/inactive crossing the caller must apply to the destination's counters.
    pub load: LoadChange,
}

/// Why [`ConnTable::insert`] refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// Every slab entry is in use: the caller counts a drop; existing connections go on.
    TableFull,
    /// The inbound key (or, for NAT, the reply key) already belongs to another entry.
    Exists,
    /// The template given in [`NewConn::template`] is not a live template.
    BadTemplate,
}

impl std::fmt::Display for InsertError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InsertError::TableFull => "connection table full",
            InsertError::Exists => "connection key already in use",
            InsertError::BadTemplate => "no such persistence template",
        })
    }
}

impl std::error::Error for InsertError {}

/// A connection to create (after scheduling picked the destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn<A: ConnAddr> {
    /// TCP or UDP.
    pub proto: Protocol,
    /// Client address (the inbound packet's source).
    pub caddr: A,
    /// Client port.
    pub cport: u16,
    /// Virtual address (the inbound packet's destination).
    pub vaddr: A,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: A,
    /// Real server port.
    pub dport: u16,
    /// Forwarding method: Masq entries also get the reply key; Route/Tunnel only the inbound key.
    pub fwd: ForwardMethod,
    /// Destination id from the control plane's snapshot.
    pub dest_id: u32,
    /// Service id from the control plane's snapshot.
    pub service_id: u32,
    /// The persistence template that chose the destination, if any (it then controls this
    /// connection and is kept alive while the connection lives).
    pub template: Option<ConnIdx>,
}

/// Outcome of one [`ConnTable::advance`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdvanceStats {
    /// Entries removed (each was passed to the callback).
    pub expired: usize,
    /// Entries whose timer fired before their real expiry (or templates still controlling
    /// connections) and were armed again.
    pub rearmed: usize,
    /// True when the per-call limit stopped the call with due entries left.
    pub more: bool,
}

/// A worker's connection table. See the module docs.
pub struct ConnTable<A: ConnAddr = Ipv4Addr> {
    pub(super) slab: HugeArray<Conn<A>>,
    pub(super) free_head: u32,
    pub(super) len: u32,
    pub(super) index: FlowIndex,
    pub(super) wheel: TimerWheel,
    pub(super) timeouts: Timeouts,
    pub(super) seed: [u64; 4],
    /// NAT reply keys of the newest connections, not in the index yet (`pending.rs`).
    pub(super) pending: PendingReplies,
    /// Reply keys taken over from an older connection (see [`ConnTable::insert_first`]).
    takeovers: u64,
}

impl<A: ConnAddr> std::fmt::Debug for ConnTable<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnTable")
            .field("len", &self.len)
            .field("capacity", &self.slab.len())
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl<A: ConnAddr> ConnTable<A> {
    /// A table for at most `capacity` entries (connections and templates together), all
    /// memory allocated now.
    ///
    /// # Panics
    /// If the index (four slots per entry) would exceed `u32::MAX` slots, i.e. `capacity`
    /// above about 10^9; this is configuration, not input.
    pub fn with_capacity(capacity: usize, timeouts: Timeouts) -> Self {
        assert!(
            capacity < NIL as usize,
            "connection table capacity {capacity} too large"
        );
        let mut table = ConnTable {
            slab: HugeArray::new(capacity, Conn::VACANT),
            free_head: NIL,
            len: 0,
            index: FlowIndex::new(capacity),
            wheel: TimerWheel::new(WHEEL_SLOTS),
            timeouts,
            seed: random_seed(),
            pending: PendingReplies::new(),
            takeovers: 0,
        };
        table.reset_slab();
        table
    }

    /// Marks every slab entry vacant and threads the free list through them, lowest first.
    fn reset_slab(&mut self) {
        let capacity = self.slab.len();
        for (i, c) in self.slab.iter_mut().enumerate() {
            *c = Conn::VACANT;
            c.timer.set_next(if i + 1 < capacity {
                (i + 1) as u32
            } else {
                NIL
            });
        }
        self.free_head = if capacity > 0 { 0 } else { NIL };
        self.len = 0;
    }

    /// Number of live entries (connections and templates).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.slab.len()
    }

    /// How many times a new connection's reply key was already another connection's, which
    /// then lost it to the new one (see [`ConnTable::insert_first`]): replies with that
    /// tuple reach the newest connection, as in the kernel.
    pub fn reply_takeovers(&self) -> u64 {
        self.takeovers
    }

    /// The timeouts in force.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Replaces the timeouts (`ipvsadm --set`); applies from each entry's next packet on.
    pub fn set_timeouts(&mut self, timeouts: Timeouts) {
        self.timeouts = timeouts;
    }

    /// Bytes allocated by the table (slab, index, the wheel).
    pub fn memory_bytes(&self) -> usize {
        self.slab.allocated_bytes() + self.index.memory_bytes() + self.wheel.memory_bytes()
    }

    /// The live entry at `idx`.
    #[inline]
    pub fn get(&self, idx: ConnIdx) -> Option<&Conn<A>> {
        self.slab.get(idx.0 as usize).filter(|c| c.is_live())
    }

    /// Every live entry (slow path: `ipvsadm -L -c`, consistency checks).
    pub fn iter(&self) -> impl Iterator<Item = (ConnIdx, &Conn<A>)> + '_ {
        self.slab
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_live())
            .map(|(i, c)| (ConnIdx(i as u32), c))
    }

    /// The connection an inbound packet with key `key` (client -> virtual service) belongs to.
    #[inline]
    pub fn lookup_in(&self, key: &FlowKey<A>) -> Option<ConnIdx> {
        self.lookup_in_hashed(key, self.hash_in(key))
    }

    /// The NAT connection a reply packet with key `key` (real server -> client) belongs to.
    #[inline]
    pub fn lookup_reply(&self, key: &FlowKey<A>) -> Option<ConnIdx> {
        self.lookup_reply_hashed(key, self.hash_reply(key))
    }

    /// Stage 0 of a staged lookup: the hash of inbound key `key`.
    ///
    /// A burst runs each stage over all its keys before the next, so the cache misses of a
    /// stage overlap: [`ConnTable::prefetch_index`] for every key, then
    /// [`ConnTable::prefetch_entry`] (its index slot has arrived by then), then
    /// [`ConnTable::lookup_in_hashed`] / [`ConnTable::lookup_reply_hashed`].
    #[inline(always)]
    pub fn hash_in(&self, key: &FlowKey<A>) -> KeyHash {
        KeyHash(key.hash(false, &self.seed))
    }

    /// Stage 0 for a NAT reply key.
    #[inline(always)]
    pub fn hash_reply(&self, key: &FlowKey<A>) -> KeyHash {
        KeyHash(key.hash_reply(&self.seed))
    }

    /// Stage 1: starts loading the key's index slot.
    #[inline(always)]
    pub fn prefetch_index(&self, h: KeyHash) {
        self.index.prefetch(h.0);
    }

    /// Stage 2: reads the key's index slot and starts loading the entry it names (the one
    /// the key most likely resolves to), which comes back as a [`Candidate`] for
    /// [`ConnTable::lookup_packet`] to try before walking the index again.
    #[inline(always)]
    pub fn prefetch_entry(&self, h: KeyHash) -> Candidate {
        match self.index.first_candidate(h.0) {
            Some(i) => {
                if let Some(c) = self.slab.get(i as usize) {
                    prefetch_all(c);
                }
                Candidate(i)
            }
            None => Candidate::NONE,
        }
    }

    /// The connection a packet with tuple `key` (hash `h` from [`ConnTable::hash_in`])
    /// belongs to, and the packet's direction: [`Direction::Input`] if `key` is the
    /// connection's inbound key, [`Direction::Output`] if it is its NAT reply key. One probe
    /// run answers both, as the two kinds of key of a tuple hash alike.
    ///
    /// The same answers as [`ConnTable::lookup_in_hashed`] and
    /// [`ConnTable::lookup_reply_hashed`] (parked reply keys first, newest first), except
    /// where a tuple is one connection's inbound key and another's reply key at once (a real
    /// server connecting to a virtual service from its own service port, with the VIP as a
    /// NAT client): the caller decides that case by the configuration, as the full path does.
    /// `cand`, from [`ConnTable::prefetch_entry`] (or [`Candidate::NONE`]), is tried before
    /// the index: a live entry carrying `key` is the answer, inbound and reply keys being
    /// unique among live entries (a reply key only after the parked ones, which are newer).
    #[inline(always)]
    pub fn lookup_packet(
        &self,
        key: &FlowKey<A>,
        h: KeyHash,
        cand: Candidate,
    ) -> Option<(ConnIdx, Direction)> {
        self.lookup_packet_entry(key, h, cand)
            .map(|(idx, dir, _)| (idx, dir))
    }

    /// [`ConnTable::lookup_packet`] with the entry found, a live connection (not a template):
    /// the caller reads it without looking it up again.
    #[inline(always)]
    pub fn lookup_packet_entry(
        &self,
        key: &FlowKey<A>,
        h: KeyHash,
        cand: Candidate,
    ) -> Option<(ConnIdx, Direction, &Conn<A>)> {
        let slab = &self.slab;
        let guess = slab
            .get(cand.0 as usize)
            .and_then(|c| Some((c.packet_direction(key)?, c)));
        // An inbound key is never parked, and unique in the index: found, it is the answer.
        if let Some((Direction::Input, c)) = guess {
            return Some((ConnIdx(cand.0), Direction::Input, c));
        }
        if !self.pending.is_empty() {
            let parked = self.pending.find(h.0, |i| {
                let c = &slab[i as usize];
                c.has_reply_key() && c.matches_reply(key)
            });
            if let Some(i) = parked {
                return Some((ConnIdx(i), Direction::Output, &slab[i as usize]));
            }
        }
        if let Some((dir, c)) = guess {
            return Some((ConnIdx(cand.0), dir, c));
        }
        let mut dir = Direction::Input;
        self.index
            .find(h.0, |i| match slab[i as usize].packet_direction(key) {
                Some(d) => {
                    dir = d;
                    true
                }
                None => false,
            })
            .map(|i| (ConnIdx(i), dir, &slab[i as usize]))
    }

    /// [`ConnTable::lookup_in`] with the key's hash from [`ConnTable::hash_in`].
    #[inline]
    pub fn lookup_in_hashed(&self, key: &FlowKey<A>, h: KeyHash) -> Option<ConnIdx> {
        let slab = &self.slab;
        self.index
            .find(h.0, |i| slab[i as usize].matches_inbound(key, false))
            .map(ConnIdx)
    }

    /// [`ConnTable::lookup_reply`] with the key's hash from [`ConnTable::hash_reply`].
    ///
    /// The reply keys of the newest connections, not in the index yet, are looked at first:
    /// newest first, as the kernel finds the newest connection of a tuple.
    #[inline]
    pub fn lookup_reply_hashed(&self, key: &FlowKey<A>, h: KeyHash) -> Option<ConnIdx> {
        let slab = &self.slab;
        let is_it = |i: u32| {
            let c = &slab[i as usize];
            c.has_reply_key() && c.matches_reply(key)
        };
        if !self.pending.is_empty() {
            if let Some(i) = self.pending.find(h.0, is_it) {
                return Some(ConnIdx(i));
            }
        }
        self.index.find(h.0, is_it).map(ConnIdx)
    }

    /// Looks up a burst: `out[i]` = the entry for `keys[i]` ([`Direction::Input`]: inbound
    /// key, [`Direction::Output`]: reply key), staged as [`ConnTable::hash_in`] describes in
    /// chunks of 32 keys, so the cache misses of a chunk overlap instead of queueing.
    ///
    /// Only `min(keys.len(), out.len())` keys are looked up.
    pub fn lookup_burst(&self, keys: &[(Direction, FlowKey<A>)], out: &mut [Option<ConnIdx>]) {
        for (keys, out) in keys.chunks(BURST_CHUNK).zip(out.chunks_mut(BURST_CHUNK)) {
            let mut hashes = [KeyHash(0); BURST_CHUNK];
            for (h, (dir, key)) in hashes.iter_mut().zip(keys) {
                *h = match dir {
                    Direction::Input => self.hash_in(key),
                    Direction::Output => self.hash_reply(key),
                };
                self.prefetch_index(*h);
            }
            for h in hashes.iter().take(keys.len()) {
                let _ = self.prefetch_entry(*h);
            }
            for ((h, (dir, key)), o) in hashes.iter().zip(keys).zip(out.iter_mut()) {
                *o = match dir {
                    Direction::Input => self.lookup_in_hashed(key, *h),
                    Direction::Output => self.lookup_reply_hashed(key, *h),
                };
            }
        }
    }

    pub(super) fn find_inbound(&self, key: &FlowKey<A>, template: bool) -> Option<ConnIdx> {
        let h = key.hash(template, &self.seed);
        let slab = &self.slab;
        self.index
            .find(h, |i| slab[i as usize].matches_inbound(key, template))
            .map(ConnIdx)
    }

    /// Creates a connection in state NONE (TCP) / UDP, counted as inactive, expiring after
    /// the NONE / UDP timeout. The caller binds it on its destination (InActConn + 1) and then
    /// feeds the packet that created it to [`ConnTable::on_packet`], as IPVS does.
    /// [`ConnTable::insert_first`] does both steps at once.
    pub fn insert(&mut self, new: NewConn<A>, now: u32) -> Result<ConnIdx, InsertError> {
        let conn = self.new_entry(&new, now)?;
        self.insert_conn(conn, false)
    }

    /// [`ConnTable::insert`] and then [`ConnTable::on_packet`] for the packet that created
    /// the connection ([`Direction::Input`], TCP flags `tcp_flags`, ignored for UDP), in one
    /// step: the entry is created in the state that packet moves it to, with that state's
    /// expiry and timer, and the class to bind it as comes back with it ([`LoadClass::Active`]
    /// or [`LoadClass::Inactive`]; the caller counts it once, e.g. `DestLoad::bind(active)`,
    /// instead of binding it inactive and then moving it). States, expiries and counts end up
    /// exactly as with the two calls; only the timer is armed at the final expiry at once
    /// instead of firing early to be re-armed.
    ///
    /// The SYN path of a big table, so a NAT connection's reply key is not placed at once:
    /// its index slot (a cache miss: it depends on the destination just chosen) is
    /// prefetched and the key parked among the last few; it enters the index a few NAT
    /// inserts later, when its slot has arrived, or when timers run or an entry is removed.
    /// Lookups find parked keys as indexed ones. Hence one difference from
    /// [`ConnTable::insert`], which refuses a reply key another connection already has
    /// ([`InsertError::Exists`]: the same client endpoint NATed to the same real server and
    /// port through two virtual services): here the new connection takes the reply key over,
    /// as in the kernel, whose lookups find the newest connection of a tuple first; the older
    /// connection keeps its inbound key only ([`ConnTable::reply_takeovers`] counts this).
    #[inline]
    pub fn insert_first(
        &mut self,
        new: NewConn<A>,
        tcp_flags: u8,
        now: u32,
    ) -> Result<(ConnIdx, LoadClass), InsertError> {
        let mut conn = self.new_entry(&new, now)?;
        let (_, timeout) = step(&mut conn, Direction::Input, tcp_flags, &self.timeouts);
        conn.expires = now.saturating_add(timeout);
        let class = conn.load_class();
        Ok((self.insert_conn(conn, true)?, class))
    }

    /// The entry [`ConnTable::insert`] creates for `new`, not linked anywhere yet.
    #[inline(always)]
    fn new_entry(&self, new: &NewConn<A>, now: u32) -> Result<Conn<A>, InsertError> {
        let nat = new.fwd == ForwardMethod::Masq;
        let mut flags = flag::LIVE | flag::INACTIVE;
        flags |= if nat {
            flag::REPLY_KEY
        } else {
            flag::NO_OUTPUT
        };
        let tmpl = match new.template {
            None => NIL,
            Some(t) => match self.get(t) {
                Some(c) if c.is_template() => t.0,
                _ => return Err(InsertError::BadTemplate),
            },
        };
        let timeout = match new.proto {
            Protocol::Tcp => self.timeouts.tcp(TcpState::None),
            Protocol::Udp => self.timeouts.udp(),
        };
        let conn = Conn {
            caddr: new.caddr,
            vaddr: new.vaddr,
            daddr: new.daddr,
            cport: new.cport,
            vport: new.vport,
            dport: new.dport,
            proto: new.proto.number(),
            state: TcpState::None as u8,
            flags,
            fwd: new.fwd,
            nat: if nat {
                A::nat_deltas(new.vaddr, new.vport, new.daddr, new.dport)
            } else {
                NatDeltas::ZERO
            },
            dest_id: new.dest_id,
            service_id: new.service_id,
            expires: now.saturating_add(timeout),
            tmpl,
            n_control: 0,
            timer: TimerNode::UNLINKED,
        };
        Ok(conn)
    }

    /// Links a connection built by [`ConnTable::new_entry`] and counts it on its template.
    #[inline(always)]
    fn insert_conn(&mut self, conn: Conn<A>, park_reply: bool) -> Result<ConnIdx, InsertError> {
        let tmpl = conn.tmpl;
        let idx = self.insert_entry(conn, park_reply)?;
        if tmpl != NIL {
            self.slab[tmpl as usize].n_control += 1;
        }
        Ok(idx)
    }

    /// Hashes, links and arms a fully built entry. With `park_reply` a reply key goes to the
    /// pending ones (see [`ConnTable::insert_first`]), else into the index at once, refused
    /// if another connection has it.
    ///
    /// Each key's probe run is walked once: the duplicate check and the insertion are one
    /// walk (`FlowIndex::insert_unique`). The reply key's slot is prefetched first, so its
    /// load overlaps the inbound key's walk (and, parked, the next few connections).
    #[inline(always)]
    pub(super) fn insert_entry(
        &mut self,
        mut conn: Conn<A>,
        park_reply: bool,
    ) -> Result<ConnIdx, InsertError> {
        let idx = self.free_head;
        if idx == NIL {
            return Err(InsertError::TableFull);
        }
        let reply_hash = if conn.has_reply_key() {
            let h = conn.reply_key().hash_reply(&self.seed);
            self.index.prefetch(h);
            Some(h)
        } else {
            None
        };
        let template = conn.is_template();
        let in_key = conn.inbound_key();
        let in_hash = in_key.hash(template, &self.seed);
        let slab = &self.slab;
        if self
            .index
            .insert_unique(in_hash, idx, |i| {
                slab[i as usize].matches_inbound(&in_key, template)
            })
            .is_err()
        {
            return Err(InsertError::Exists);
        }
        match reply_hash {
            Some(_) if park_reply => conn.flags |= flag::REPLY_PENDING,
            Some(h) => {
                let key = conn.reply_key();
                let is_dup = |i: u32| {
                    let c = &slab[i as usize];
                    c.has_reply_key() && c.matches_reply(&key)
                };
                if self.pending.find(h, is_dup).is_some()
                    || self.index.insert_unique(h, idx, is_dup).is_err()
                {
                    // Undo the inbound key (the slab entry is untouched yet).
                    self.index.remove(in_hash, idx);
                    return Err(InsertError::Exists);
                }
            }
            None => {}
        }

        self.free_head = self.slab[idx as usize].timer.next();
        // The next insert writes the new head: start loading it now.
        if let Some(next) = self.slab.get(self.free_head as usize) {
            prefetch(next);
        }
        self.slab[idx as usize] = conn;
        self.len += 1;
        self.wheel.arm(&mut self.slab, idx, conn.expires);
        if let (Some(h), true) = (reply_hash, park_reply) {
            if self.pending.len() == PENDING {
                self.settle_oldest();
            }
            self.pending.push(h, idx);
        }
        Ok(ConnIdx(idx))
    }

    /// Moves the oldest parked reply key into the index; false if none is parked. A reply
    /// key found there already (an older connection's) is taken over: the older connection
    /// loses its reply key.
    fn settle_oldest(&mut self) -> bool {
        let Some((h, i)) = self.pending.pop_oldest() else {
            return false;
        };
        let c = &mut self.slab[i as usize];
        c.flags &= !flag::REPLY_PENDING;
        let key = c.reply_key();
        let slab = &self.slab;
        let old = self.index.insert_or_replace(h, i, |j| {
            let o = &slab[j as usize];
            o.has_reply_key() && o.matches_reply(&key)
        });
        if let Some(old) = old {
            self.slab[old as usize].flags &= !flag::REPLY_KEY;
            self.takeovers += 1;
        }
        true
    }

    /// Moves every parked reply key into the index (before anything that reads or edits
    /// the index outside lookups: expiry, removal).
    pub(super) fn settle(&mut self) {
        while self.settle_oldest() {}
    }

    /// `ConnTable::settle` for the start of a burst: the keys parked during the previous
    /// one have had their index slots loaded by now, and once they are in the index a reply
    /// lookup need not scan the parked ones (left parked, the last few keys of a quiet spell
    /// would cost every reply that scan).
    #[inline]
    pub fn settle_parked(&mut self) {
        if !self.pending.is_empty() {
            self.settle();
        }
    }

    /// Feeds one packet of connection `idx` (TCP flags byte `tcp_flags`, ignored for UDP)
    /// through the state machine and restarts its timeout. `None` if `idx` is not a live
    /// connection (templates have no packets).
    ///
    /// DR/TUN connections use the INPUT_ONLY table until an [`Direction::Output`] packet is
    /// seen, as in IPVS.
    #[inline(always)]
    pub fn on_packet(
        &mut self,
        idx: ConnIdx,
        dir: Direction,
        tcp_flags: u8,
        now: u32,
    ) -> Option<StateChange> {
        let c = self.slab.get(idx.0 as usize)?;
        if !c.is_live() || c.is_template() {
            return None;
        }
        let old = c.state();
        let load = self.on_packet_load(idx, dir, tcp_flags, now);
        let new = self.slab.get(idx.0 as usize)?.state();
        Some(StateChange { old, new, load })
    }

    /// [`ConnTable::on_packet`] for the per-packet path, which needs only the change to the
    /// destination's counts: the same state, expiry and timer updates, without assembling the
    /// states before and after (no change for a template or a free slot).
    #[inline(always)]
    pub fn on_packet_load(
        &mut self,
        idx: ConnIdx,
        dir: Direction,
        tcp_flags: u8,
        now: u32,
    ) -> LoadChange {
        match self.slab.get(idx.0 as usize) {
            Some(c) if c.is_live() && !c.is_template() => {
                self.on_found_packet(idx, dir, tcp_flags, now)
            }
            _ => LoadChange::None,
        }
    }

    /// [`ConnTable::on_packet_load`] for a connection [`ConnTable::lookup_packet`] has just
    /// returned (live, not a template), without checking that again.
    #[inline(always)]
    pub fn on_found_packet(
        &mut self,
        idx: ConnIdx,
        dir: Direction,
        tcp_flags: u8,
        now: u32,
    ) -> LoadChange {
        let Some(c) = self.slab.get_mut(idx.0 as usize) else {
            return LoadChange::None;
        };
        debug_assert!(c.is_live() && !c.is_template());
        let (load, timeout) = step(c, dir, tcp_flags, &self.timeouts);
        let expires = now.saturating_add(timeout);
        c.expires = expires;
        // Lazy timer: a later expiry is picked up when the armed slot fires; only an
        // earlier one (e.g. ESTABLISHED -> CLOSE) needs moving now.
        if expires < c.timer.armed() {
            self.wheel.rearm(&mut self.slab, idx.0, expires);
        }
        load
    }

    /// IPVS `conn_reuse_mode` 1: a SYN for a TCP connection in TIME_WAIT or CLOSE that no
    /// template controls starts a new connection. Then the old entry is removed and returned
    /// (the caller unbinds it and schedules anew); otherwise nothing happens and `None` comes
    /// back (the packet belongs to the existing connection).
    pub fn reuse_on_syn(&mut self, idx: ConnIdx, tcp_flags: u8) -> Option<Conn<A>> {
        let c = self.get(idx)?;
        let reusable = c.proto == Protocol::Tcp.number()
            && !c.is_template()
            && c.tmpl == NIL
            && tcp_flags & tcp_flags::SYN != 0
            && matches!(
                TcpState::from_u8(c.state),
                TcpState::TimeWait | TcpState::Close
            );
        if reusable {
            self.remove(idx)
        } else {
            None
        }
    }

    /// Removes entry `idx` now and returns it (the caller unbinds it per
    /// [`Conn::load_class`]). A template that still controls connections is only unhashed
    /// (new connections no longer find it) and is freed by its timer once they are gone;
    /// then, and for a stale `idx`, `None` comes back.
    pub fn remove(&mut self, idx: ConnIdx) -> Option<Conn<A>> {
        let c = self.get(idx)?;
        if c.is_template() && c.n_control > 0 {
            self.unhash_template(idx);
            return None;
        }
        self.wheel.disarm(&mut self.slab, idx.0);
        Some(self.free_entry(idx.0))
    }

    /// Empties the table (daemon shutdown, flushing a worker): every live entry, templates
    /// included, is passed to `f` with its index so the caller unbinds it, then all are
    /// freed. Slow path, O(capacity); allocates nothing.
    pub fn clear(&mut self, mut f: impl FnMut(ConnIdx, &Conn<A>)) {
        for (idx, c) in self.iter() {
            f(idx, c);
        }
        self.reset_slab();
        self.index.clear();
        self.pending.clear();
        self.wheel.clear();
    }

    /// Takes an invalidated template out of the inbound index (it lingers until its timer).
    pub(super) fn unhash_template(&mut self, idx: ConnIdx) {
        let c = self.slab[idx.0 as usize];
        if c.flags & flag::UNHASHED != 0 {
            return;
        }
        let h = c.inbound_key().hash(true, &self.seed);
        self.index.remove(h, idx.0);
        self.slab[idx.0 as usize].flags |= flag::UNHASHED;
    }

    /// Unhashes and frees an entry whose timer is already unlinked; returns its last contents.
    fn free_entry(&mut self, i: u32) -> Conn<A> {
        // Settle first: the entry's own reply key may be parked, or a parked one may be about
        // to take this entry's over.
        if self.slab[i as usize].has_reply_key() && !self.pending.is_empty() {
            self.settle();
        }
        let c = self.slab[i as usize];
        if c.flags & flag::UNHASHED == 0 {
            let h = c.inbound_key().hash(c.is_template(), &self.seed);
            self.index.remove(h, i);
        }
        if c.has_reply_key() {
            let h = c.reply_key().hash_reply(&self.seed);
            self.index.remove(h, i);
        }
        if c.tmpl != NIL {
            let t = &mut self.slab[c.tmpl as usize];
            t.n_control = t.n_control.saturating_sub(1);
        }
        let slot = &mut self.slab[i as usize];
        *slot = Conn::VACANT;
        slot.timer.set_next(self.free_head);
        self.free_head = i;
        self.len -= 1;
        c
    }

    /// Expires what is due at `now`: handles at most `max` entries whose timer fired
    /// (removing the expired ones, each passed to `on_expired` with its former index so the
    /// caller unbinds it,
    /// and re-arming those whose expiry moved on or that are templates still controlling
    /// connections, for 60 s). The rest waits for the next call; no full-table scan.
    pub fn advance(
        &mut self,
        now: u32,
        max: usize,
        mut on_expired: impl FnMut(ConnIdx, &Conn<A>),
    ) -> AdvanceStats {
        self.settle();
        let mut stats = AdvanceStats::default();
        let mut handled = 0;
        while handled < max {
            let Some(i) = self.wheel.pop_due(&mut self.slab, now) else {
                return stats;
            };
            handled += 1;
            let c = &mut self.slab[i as usize];
            if c.expires > now {
                let at = c.expires;
                self.wheel.arm(&mut self.slab, i, at);
                stats.rearmed += 1;
            } else if c.is_template() && c.n_control > 0 {
                c.expires = now.saturating_add(Timeouts::TEMPLATE_REARM);
                let at = c.expires;
                self.wheel.arm(&mut self.slab, i, at);
                stats.rearmed += 1;
            } else {
                let gone = self.free_entry(i);
                on_expired(ConnIdx(i), &gone);
                stats.expired += 1;
            }
        }
        stats.more = self.wheel.has_due(now);
        stats
    }
}

/// One packet through the state machine of connection `c` (not a template): moves its state
/// and INACTIVE / NO_OUTPUT flags, returns the active/inactive crossing and the timeout of
/// the new state. DR/TUN connections use the INPUT_ONLY table until an
/// [`Direction::Output`] packet is seen, as in IPVS.
#[inline(always)]
fn step<A: ConnAddr>(
    c: &mut Conn<A>,
    dir: Direction,
    tcp_flags: u8,
    timeouts: &Timeouts,
) -> (LoadChange, u32) {
    if c.proto != Protocol::Tcp.number() {
        return (LoadChange::None, timeouts.udp());
    }
    // Nearly every segment: a plain ACK in ESTABLISHED, which every table leaves there (a
    // test checks the tables), on a connection whose NO_OUTPUT flag it does not change.
    if c.state == TcpState::Established as u8
        && tcp_flags & (tcp_flags::RST | tcp_flags::SYN | tcp_flags::FIN | tcp_flags::ACK)
            == tcp_flags::ACK
        && (dir == Direction::Input || c.flags & flag::NO_OUTPUT == 0)
    {
        return (LoadChange::None, timeouts.tcp(TcpState::Established));
    }
    let table = if c.flags & flag::NO_OUTPUT != 0 {
        if dir == Direction::Output {
            c.flags &= !flag::NO_OUTPUT;
            StateTable::Output
        } else {
            StateTable::InputOnly
        }
    } else {
        match dir {
            Direction::Input => StateTable::Input,
            Direction::Output => StateTable::Output,
        }
    };
    let from = TcpState::from_u8(c.state);
    let to = next_state(table, tcp_flags, from);
    let mut load = LoadChange::None;
    if to != from {
        let inactive = c.flags & flag::INACTIVE != 0;
        if inactive && to.is_active() {
            c.flags &= !flag::INACTIVE;
            load = LoadChange::Activated;
        } else if !inactive && !to.is_active() {
            c.flags |= flag::INACTIVE;
            load = LoadChange::Deactivated;
        }
        c.state = to as u8;
    }
    (load, timeouts.tcp(to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::conn::tcp_state::tcp_flags::{ACK, FIN, RST, SYN};

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
    const RS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    fn new_conn(proto: Protocol, cport: u16, fwd: ForwardMethod) -> NewConn<Ipv4Addr> {
        NewConn {
            proto,
            caddr: CLIENT,
            cport,
            vaddr: VIP,
            vport: 80,
            daddr: RS,
            dport: 8080,
            fwd,
            dest_id: 7,
            service_id: 3,
            template: None,
        }
    }

    /// `insert_first` leaves each entry exactly as `insert` + `on_packet` do (state, flags,
    /// expiry, keys), returns the class the pair would have bound plus moved it to, and arms
    /// the timer at the final expiry.
    #[test]
    fn insert_first_equals_insert_then_on_packet() {
        let mut timeouts = Timeouts::default();
        timeouts.set_udp(77);
        let flag_sets = [SYN, SYN | ACK, SYN | FIN, ACK, FIN, RST, RST | SYN, 0, 0x08];
        let fwds = [
            ForwardMethod::Masq,
            ForwardMethod::Route,
            ForwardMethod::Tunnel,
        ];
        let mut cport = 1000;
        for proto in [Protocol::Tcp, Protocol::Udp] {
            for fwd in fwds {
                for flags in flag_sets {
                    cport += 1;
                    let new = new_conn(proto, cport, fwd);
                    let mut a = ConnTable::with_capacity(4, timeouts);
                    let ia = a.insert(new, 50).unwrap();
                    let before = a.get(ia).unwrap().load_class();
                    assert_eq!(before, LoadClass::Inactive);
                    let ch = a.on_packet(ia, Direction::Input, flags, 50).unwrap();
                    let mut b = ConnTable::with_capacity(4, timeouts);
                    let (ib, class) = b.insert_first(new, flags, 50).unwrap();
                    let (ca, cb) = (*a.get(ia).unwrap(), *b.get(ib).unwrap());
                    let what = format!("{proto:?} {fwd:?} flags {flags:#x}");
                    // A NAT reply key is parked at first (and only then flagged so).
                    let parked = fwd == ForwardMethod::Masq;
                    assert_eq!(cb.flags & flag::REPLY_PENDING != 0, parked, "{what}");
                    let cb_flags = cb.flags & !flag::REPLY_PENDING;
                    assert_eq!(
                        Conn {
                            timer: cb.timer,
                            ..ca
                        },
                        Conn {
                            flags: cb_flags,
                            ..cb
                        },
                        "{what}"
                    );
                    assert_eq!(class, ca.load_class(), "{what}");
                    assert_eq!(
                        class == LoadClass::Active,
                        ch.load == LoadChange::Activated,
                        "{what}"
                    );
                    assert_eq!(cb.timer.armed(), cb.expires, "{what}");
                    assert_eq!(b.lookup_in(&ca.inbound_key()), Some(ib), "{what}");
                    let reply = b.lookup_reply(&ca.reply_key());
                    assert_eq!(reply, (fwd == ForwardMethod::Masq).then_some(ib), "{what}");
                    b.check_consistency().unwrap();
                    // Nothing fires before the real expiry: no early pop and re-arm.
                    let early = b.advance(cb.expires - 1, usize::MAX, |_, _| {});
                    assert_eq!((early.expired, early.rearmed), (0, 0), "{what}");
                    let mut gone = Vec::new();
                    b.advance(cb.expires, usize::MAX, |i, c| gone.push((i, *c)));
                    assert_eq!(gone.len(), 1, "{what}");
                    assert_eq!(gone[0].0, ib);
                    assert!(b.is_empty());
                }
            }
        }
    }

    /// A SYN's first state per forwarding method: SYN_RECV, active, 60 s.
    #[test]
    fn insert_first_of_a_syn_is_an_active_syn_recv() {
        let mut t = ConnTable::with_capacity(8, Timeouts::default());
        for (port, fwd) in [(1, ForwardMethod::Masq), (2, ForwardMethod::Route)] {
            let (i, class) = t
                .insert_first(new_conn(Protocol::Tcp, port, fwd), SYN, 10)
                .unwrap();
            assert_eq!(class, LoadClass::Active);
            let c = t.get(i).unwrap();
            assert_eq!(c.state_name(), "SYN_RECV");
            assert_eq!(c.expires(), 70);
            assert_eq!(c.is_input_only(), fwd == ForwardMethod::Route);
        }
        let (_, class) = t
            .insert_first(new_conn(Protocol::Udp, 3, ForwardMethod::Masq), 0, 10)
            .unwrap();
        assert_eq!(class, LoadClass::Inactive);
        t.check_consistency().unwrap();
    }

    /// A refused insert changes nothing: a duplicate reply key (`insert`) also takes back the
    /// inbound key that was already placed; full tables and bad templates are refused first.
    #[test]
    fn refused_inserts_leave_the_table_as_it_was() {
        let mut t = ConnTable::with_capacity(2, Timeouts::default());
        let first = t
            .insert_first(new_conn(Protocol::Tcp, 1, ForwardMethod::Masq), SYN, 0)
            .unwrap()
            .0;
        // Same client endpoint to another VIP, NATed to the same real server: a new inbound
        // key but the same reply key, refused by `insert` whether the first one's reply key
        // is still parked or in the index.
        let other_vip = NewConn {
            vaddr: Ipv4Addr::new(203, 0, 113, 2),
            ..new_conn(Protocol::Tcp, 1, ForwardMethod::Masq)
        };
        assert_eq!(t.pending.len(), 1);
        assert_eq!(t.insert(other_vip, 0), Err(InsertError::Exists));
        t.settle();
        assert_eq!(t.insert(other_vip, 0), Err(InsertError::Exists));
        let in_key = FlowKey::new(6, CLIENT, 1, other_vip.vaddr, 80);
        assert_eq!(t.lookup_in(&in_key), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.index.len(), 2);
        t.check_consistency().unwrap();
        // Same inbound key with another real server: refused on the inbound key.
        let same_in = NewConn {
            daddr: Ipv4Addr::new(192, 0, 2, 11),
            ..new_conn(Protocol::Tcp, 1, ForwardMethod::Masq)
        };
        assert_eq!(t.insert_first(same_in, SYN, 0), Err(InsertError::Exists));
        assert_eq!(t.index.len(), 2);
        // The free slot is still there for a good one.
        let dr = NewConn {
            fwd: ForwardMethod::Route,
            ..other_vip
        };
        let (second, _) = t.insert_first(dr, SYN, 0).unwrap();
        assert_ne!(second, first);
        let third = new_conn(Protocol::Tcp, 3, ForwardMethod::Masq);
        assert_eq!(t.insert_first(third, SYN, 0), Err(InsertError::TableFull));
        t.remove(second).unwrap();
        let bad = NewConn {
            template: Some(first),
            ..third
        };
        assert_eq!(t.insert_first(bad, SYN, 0), Err(InsertError::BadTemplate));
        assert_eq!(t.len(), 1);
        t.check_consistency().unwrap();
    }

    /// The start of a burst settles every parked reply key: each is found by the index then.
    #[test]
    fn settle_parked_indexes_every_parked_key() {
        let mut t = ConnTable::with_capacity(64, Timeouts::default());
        let idx: Vec<ConnIdx> = (0..PENDING as u16 - 2)
            .map(|port| {
                let new = new_conn(Protocol::Tcp, 100 + port, ForwardMethod::Masq);
                t.insert_first(new, SYN, 0).unwrap().0
            })
            .collect();
        assert_eq!(t.pending.len(), idx.len());
        t.settle_parked();
        assert!(t.pending.is_empty());
        assert_eq!(t.index.len(), 2 * idx.len());
        for &j in &idx {
            let c = *t.get(j).unwrap();
            assert_eq!(c.flags & flag::REPLY_PENDING, 0);
            assert_eq!(t.lookup_reply(&c.reply_key()), Some(j));
            assert_eq!(t.lookup_in(&c.inbound_key()), Some(j));
        }
        t.check_consistency().unwrap();
        // Nothing parked: nothing to do.
        t.settle_parked();
        assert_eq!(t.index.len(), 2 * idx.len());
    }

    /// A parked reply key is found at once, enters the index after `PENDING` more NAT
    /// inserts (in FIFO order), and on removal or timers.
    #[test]
    fn parked_reply_keys_are_found_and_settle_in_order() {
        let mut t = ConnTable::with_capacity(64, Timeouts::default());
        let n = PENDING as u16 + 3;
        let mut idx = Vec::new();
        for port in 0..n {
            let new = new_conn(Protocol::Tcp, 100 + port, ForwardMethod::Masq);
            let (i, _) = t.insert_first(new, SYN, 0).unwrap();
            idx.push(i);
            let c = *t.get(i).unwrap();
            assert_eq!(t.lookup_reply(&c.reply_key()), Some(i));
            // Every inbound key at once; reply keys beyond the last PENDING in the index.
            let settled = (port as usize + 1).saturating_sub(PENDING);
            assert_eq!(t.pending.len(), port as usize + 1 - settled);
            assert_eq!(t.index.len(), port as usize + 1 + settled);
            for (k, &j) in idx.iter().enumerate() {
                let waiting = t.get(j).unwrap().flags & flag::REPLY_PENDING != 0;
                assert_eq!(waiting, k >= settled, "port {port}, entry {k}");
            }
            t.check_consistency().unwrap();
        }
        // DR connections have no reply key: nothing parked, nothing settled.
        let before = t.pending.len();
        t.insert_first(new_conn(Protocol::Tcp, 999, ForwardMethod::Route), SYN, 0)
            .unwrap();
        assert_eq!(t.pending.len(), before);
        // Removing a parked one settles all first, then frees it with its keys.
        let last = *idx.last().unwrap();
        let gone = t.remove(last).unwrap();
        assert!(t.pending.is_empty());
        assert_eq!(t.lookup_reply(&gone.reply_key()), None);
        assert_eq!(t.lookup_in(&gone.inbound_key()), None);
        t.check_consistency().unwrap();
        // Timers settle what is parked before they run.
        let (i, _) = t
            .insert_first(new_conn(Protocol::Tcp, 1000, ForwardMethod::Masq), SYN, 0)
            .unwrap();
        assert_eq!(t.pending.len(), 1);
        let stats = t.advance(1, usize::MAX, |_, _| {});
        assert_eq!(stats.expired, 0);
        assert!(t.pending.is_empty());
        let c = *t.get(i).unwrap();
        assert_eq!(t.lookup_reply(&c.reply_key()), Some(i));
        t.check_consistency().unwrap();
        // Expiry of everything leaves an empty index.
        let mut expired = 0;
        t.advance(10_000, usize::MAX, |_, _| expired += 1);
        assert_eq!(expired, n as usize + 1);
        assert!(t.is_empty());
        assert_eq!(t.index.len(), 0);
        t.check_consistency().unwrap();
    }

    /// `insert_first` gives a reply key another connection has to the new connection,
    /// whether the older key is in the index or still parked, as the kernel finds the newest
    /// connection of a tuple; the older connection keeps its inbound key and loses the reply
    /// key for good.
    #[test]
    fn insert_first_takes_a_reply_key_over() {
        let mut t = ConnTable::with_capacity(32, Timeouts::default());
        let vip2 = Ipv4Addr::new(203, 0, 113, 2);
        for (port, settled) in [(7, true), (8, false)] {
            let old = new_conn(Protocol::Tcp, port, ForwardMethod::Masq);
            let (a, _) = t.insert_first(old, SYN, 0).unwrap();
            if settled {
                t.settle();
            }
            let reply = t.get(a).unwrap().reply_key();
            let newer = NewConn { vaddr: vip2, ..old };
            let (b, _) = t.insert_first(newer, SYN, 0).unwrap();
            assert_eq!(t.lookup_reply(&reply), Some(b));
            assert_eq!(t.lookup_in(&old.inbound()), Some(a));
            t.check_consistency().unwrap();
            t.settle();
            assert_eq!(t.lookup_reply(&reply), Some(b));
            assert!(!t.get(a).unwrap().has_reply_key());
            assert!(t.get(b).unwrap().has_reply_key());
            t.check_consistency().unwrap();
            // The newer one gone, the tuple belongs to nobody; the older one lives on.
            t.remove(b).unwrap();
            assert_eq!(t.lookup_reply(&reply), None);
            assert_eq!(t.lookup_in(&old.inbound()), Some(a));
            let gone = t.remove(a).unwrap();
            assert!(!gone.has_reply_key());
            assert!(t.is_empty());
            assert_eq!(t.index.len(), 0);
            t.check_consistency().unwrap();
        }
        assert_eq!(t.reply_takeovers(), 2);
    }

    /// Random `insert_first` / `insert` / remove / packet / timer sequences over a few client
    /// ports, two VIPs and two real servers (so reply keys collide often) against a model
    /// of the kernel's order: the newest connection with a reply tuple owns it, an older one
    /// that lost it never gets it back, `insert` refuses a tuple someone owns. Every key of
    /// the model resolves as the model says, after every step.
    #[test]
    fn random_sequences_match_a_newest_first_model() {
        use std::collections::{BTreeMap, HashMap};
        type Tuple = (u8, Ipv4Addr, u16, Ipv4Addr, u16);
        let tuple = |k: &FlowKey<Ipv4Addr>| (k.proto, k.saddr, k.sport, k.daddr, k.dport);
        const CAP: usize = 12;
        let mut t = ConnTable::with_capacity(CAP, Timeouts::default());
        // model: live entries, the owner of each reply tuple
        let mut live: BTreeMap<ConnIdx, (FlowKey<Ipv4Addr>, FlowKey<Ipv4Addr>)> = BTreeMap::new();
        let mut owner: HashMap<Tuple, ConnIdx> = HashMap::new();
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut now = 0;
        for step in 0..20_000 {
            let r = rnd(100);
            if r < 45 {
                let new = NewConn {
                    cport: 1 + rnd(6) as u16,
                    vaddr: Ipv4Addr::new(203, 0, 113, 1 + rnd(2) as u8),
                    daddr: Ipv4Addr::new(192, 0, 2, 10 + rnd(2) as u8),
                    fwd: if rnd(4) == 0 {
                        ForwardMethod::Route
                    } else {
                        ForwardMethod::Masq
                    },
                    ..new_conn(Protocol::Tcp, 0, ForwardMethod::Masq)
                };
                let in_key = new.inbound();
                let reply = FlowKey::new(6, new.daddr, new.dport, new.caddr, new.cport);
                let nat = new.fwd == ForwardMethod::Masq;
                let eager = rnd(4) == 0;
                let exists = live.values().any(|(k, _)| *k == in_key)
                    || (eager && nat && owner.contains_key(&tuple(&reply)));
                let want = if live.len() == CAP {
                    Err(InsertError::TableFull)
                } else if exists {
                    Err(InsertError::Exists)
                } else {
                    Ok(())
                };
                let got = if eager {
                    t.insert(new, now)
                } else {
                    t.insert_first(new, SYN, now).map(|(i, _)| i)
                };
                assert_eq!(got.map(|_| ()), want, "step {step}");
                if let Ok(i) = got {
                    live.insert(i, (in_key, reply));
                    if nat {
                        owner.insert(tuple(&reply), i);
                    }
                }
            } else if r < 70 {
                let Some(&i) = live.keys().nth(rnd(live.len().max(1) as u64) as usize) else {
                    continue;
                };
                let gone = t.remove(i).expect("live");
                let (_, reply) = live.remove(&i).unwrap();
                let owned = owner.get(&tuple(&reply)) == Some(&i);
                assert_eq!(gone.has_reply_key(), owned, "step {step}");
                if owned {
                    owner.remove(&tuple(&reply));
                }
            } else if r < 90 {
                if let Some(&i) = live.keys().nth(rnd(live.len().max(1) as u64) as usize) {
                    let out = owner.values().any(|&o| o == i) && rnd(2) == 0;
                    let dir = if out {
                        Direction::Output
                    } else {
                        Direction::Input
                    };
                    t.on_packet(i, dir, [SYN, ACK, FIN][rnd(3) as usize], now)
                        .expect("live");
                }
            } else if r < 97 {
                now += 1 + rnd(3) as u32;
                t.advance(now, usize::MAX, |i, c| {
                    let (_, reply) = live.remove(&i).expect("expired entry was live");
                    if owner.get(&tuple(&reply)) == Some(&i) {
                        owner.remove(&tuple(&reply));
                    } else {
                        assert!(!c.has_reply_key());
                    }
                });
            } else {
                t.settle();
            }
            assert_eq!(t.len(), live.len());
            for (&i, (in_key, reply)) in &live {
                assert_eq!(t.lookup_in(in_key), Some(i), "step {step}");
                let owns = owner.get(&tuple(reply)).copied();
                assert_eq!(t.lookup_reply(reply), owns, "step {step}");
                // The one-probe lookup agrees, whatever entry it is given as a guess (this
                // one, which may have lost the reply tuple, the owner, none).
                for guess in [Candidate::from(i), Candidate::NONE]
                    .into_iter()
                    .chain(owns.map(Candidate::from))
                {
                    let h = t.hash_in(in_key);
                    let got = t.lookup_packet(in_key, h, guess);
                    assert_eq!(got, Some((i, Direction::Input)), "step {step}");
                    let h = t.hash_in(reply);
                    let got = t.lookup_packet(reply, h, guess);
                    assert_eq!(got, owns.map(|o| (o, Direction::Output)), "step {step}");
                }
            }
            if step % 7 == 0 {
                t.check_consistency().unwrap();
            }
        }
        assert!(
            t.reply_takeovers() > 100,
            "{} takeovers",
            t.reply_takeovers()
        );
    }

    impl NewConn<Ipv4Addr> {
        fn inbound(&self) -> FlowKey<Ipv4Addr> {
            FlowKey::new(
                self.proto.number(),
                self.caddr,
                self.cport,
                self.vaddr,
                self.vport,
            )
        }
    }
}
