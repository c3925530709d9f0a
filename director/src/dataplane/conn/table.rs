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

use super::entry::{flag, fwd_to_u8, Conn, ConnIdx, ConnState};
use super::index::FlowIndex;
use super::key::{random_seed, ConnAddr, FlowKey};
use super::tcp_state::{next_state, tcp_flags, Direction, StateTable, TcpState, Timeouts};
use super::timer::{TimerNode, TimerWheel, NIL};
use crate::dpdk::mem::{prefetch, prefetch_all, HugeArray};
use crate::model::{ForwardMethod, Protocol};

/// Seconds in one turn of the timer wheel; longer timeouts come around again.
const WHEEL_SLOTS: usize = 4096;
/// Lookups of a burst are staged in chunks of this many keys.
const BURST_CHUNK: usize = 32;

/// A key's hash in one table (from [`ConnTable::hash_in`] / [`ConnTable::hash_reply`]),
/// carried between the stages of a burst lookup. Only meaningful for the table and the key
/// kind that made it: anything else simply finds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyHash(u64);

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
    /// the key most likely resolves to).
    #[inline(always)]
    pub fn prefetch_entry(&self, h: KeyHash) {
        if let Some(c) = self
            .index
            .first_candidate(h.0)
            .and_then(|i| self.slab.get(i as usize))
        {
            prefetch_all(c);
        }
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
    #[inline]
    pub fn lookup_reply_hashed(&self, key: &FlowKey<A>, h: KeyHash) -> Option<ConnIdx> {
        let slab = &self.slab;
        self.index
            .find(h.0, |i| {
                let c = &slab[i as usize];
                c.has_reply_key() && c.matches_reply(key)
            })
            .map(ConnIdx)
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
                self.prefetch_entry(*h);
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
    pub fn insert(&mut self, new: NewConn<A>, now: u32) -> Result<ConnIdx, InsertError> {
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
            fwd: fwd_to_u8(new.fwd),
            dest_id: new.dest_id,
            service_id: new.service_id,
            expires: now.saturating_add(timeout),
            tmpl,
            n_control: 0,
            timer: TimerNode::UNLINKED,
        };
        let idx = self.insert_entry(conn)?;
        if tmpl != NIL {
            self.slab[tmpl as usize].n_control += 1;
        }
        Ok(idx)
    }

    /// Hashes, links and arms a fully built entry.
    pub(super) fn insert_entry(&mut self, conn: Conn<A>) -> Result<ConnIdx, InsertError> {
        if self.free_head == NIL {
            return Err(InsertError::TableFull);
        }
        let template = conn.is_template();
        let in_key = conn.inbound_key();
        let in_hash = in_key.hash(template, &self.seed);
        if self.find_inbound(&in_key, template).is_some() {
            return Err(InsertError::Exists);
        }
        let reply_hash = if conn.has_reply_key() {
            let key = conn.reply_key();
            let h = self.hash_reply(&key);
            if self.lookup_reply_hashed(&key, h).is_some() {
                return Err(InsertError::Exists);
            }
            Some(h.0)
        } else {
            None
        };

        let idx = self.free_head;
        self.free_head = self.slab[idx as usize].timer.next();
        // The next insert writes the new head: start loading it now.
        if let Some(next) = self.slab.get(self.free_head as usize) {
            prefetch(next);
        }
        self.slab[idx as usize] = conn;
        self.len += 1;
        self.index.insert(in_hash, idx);
        if let Some(h) = reply_hash {
            self.index.insert(h, idx);
        }
        self.wheel.arm(&mut self.slab, idx, conn.expires);
        Ok(ConnIdx(idx))
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
        let c = self.slab.get_mut(idx.0 as usize)?;
        if !c.is_live() || c.is_template() {
            return None;
        }
        let old = c.state();
        let mut load = LoadChange::None;
        let timeout = if c.proto == Protocol::Tcp.number() {
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
            self.timeouts.tcp(to)
        } else {
            self.timeouts.udp()
        };
        let expires = now.saturating_add(timeout);
        c.expires = expires;
        let new = c.state();
        // Lazy timer: a later expiry is picked up when the armed slot fires; only an
        // earlier one (e.g. ESTABLISHED -> CLOSE) needs moving now.
        if expires < c.timer.armed() {
            self.wheel.rearm(&mut self.slab, idx.0, expires);
        }
        Some(StateChange { old, new, load })
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
