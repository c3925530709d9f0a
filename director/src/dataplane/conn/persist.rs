//! Persistence templates (ipvsadm `-p timeout -M netmask`, IPVS's `ip_vs_sched_persist`).
//!
//! A template is a table entry keyed `<proto, client & mask, 0, vaddr, vport>` (fwmark
//! services: `<0, client & mask, 0, fwmark, 0>`) that remembers the destination chosen for a
//! client network. New connections of that network reuse it while the destination is usable;
//! the template lives for the persistence timeout after its last use and, if it still
//! controls connections then, 60 s more at a time. It counts as a persistent connection on its
//! destination (`LoadClass::Persistent`).
//!
//! The worker's flow for a persistent service:
//! 1. `key = TemplateKey::for_service(..)`; `table.use_template(&key, timeout, now, usable)`;
//! 2. on `Some(t)`: the destination is `table.get(t)`'s; on `None`: schedule, then
//!    `table.insert_template(..)` (bind it as persistent);
//! 3. `table.insert(NewConn { template: Some(t), .. })`.

use super::entry::{flag, Conn, ConnIdx};
use super::key::{ConnAddr, FlowKey};
use super::table::{ConnTable, InsertError};
use super::tcp_state::TcpState;
use super::timer::{TimerNode, NIL};
use crate::model::{ForwardMethod, Protocol};

/// The key of a persistence template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateKey<A: ConnAddr>(FlowKey<A>);

impl<A: ConnAddr> TemplateKey<A> {
    /// Template of an address/port service: `<proto, caddr & mask, 0, vaddr, vport>`.
    /// Pass `vport = 0` for a port-zero (all ports) persistent service.
    pub fn for_service(proto: Protocol, caddr: A, prefix: u8, vaddr: A, vport: u16) -> Self {
        TemplateKey(FlowKey::new(
            proto.number(),
            caddr.masked(prefix),
            0,
            vaddr,
            vport,
        ))
    }

    /// Template of a firewall-mark service: `<IPPROTO_IP, caddr & mask, 0, fwmark, 0>`.
    pub fn for_fwmark(caddr: A, prefix: u8, mark: u32) -> Self {
        TemplateKey(FlowKey::new(
            0,
            caddr.masked(prefix),
            0,
            A::from_fwmark(mark),
            0,
        ))
    }

    /// The underlying tuple.
    pub fn flow(&self) -> &FlowKey<A> {
        &self.0
    }
}

/// A persistence template to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTemplate<A: ConnAddr> {
    /// Its key.
    pub key: TemplateKey<A>,
    /// Chosen real server address.
    pub daddr: A,
    /// Chosen real server port.
    pub dport: u16,
    /// Forwarding method of that destination.
    pub fwd: ForwardMethod,
    /// Destination id.
    pub dest_id: u32,
    /// Service id.
    pub service_id: u32,
    /// Persistence timeout in seconds (`-p`).
    pub timeout: u32,
}

impl<A: ConnAddr> ConnTable<A> {
    /// The live template with key `key`, without touching it.
    pub fn lookup_template(&self, key: &TemplateKey<A>) -> Option<ConnIdx> {
        self.find_inbound(&key.0, true)
    }

    /// Finds the template for `key` and decides whether new connections may follow it:
    /// `usable` gets the template (its `dest_id`) and says whether that destination is still
    /// available. If so the template's timeout restarts (`timeout` seconds from `now`) and
    /// its index comes back. If not, the template is invalidated (unhashed; it lingers,
    /// still counted, until its timer runs out and its connections are gone) and `None`
    /// comes back, as when there is no template: the caller schedules and creates a new one.
    pub fn use_template(
        &mut self,
        key: &TemplateKey<A>,
        timeout: u32,
        now: u32,
        usable: impl FnOnce(&Conn<A>) -> bool,
    ) -> Option<ConnIdx> {
        let idx = self.lookup_template(key)?;
        let t = &mut self.slab[idx.get() as usize];
        if !usable(t) {
            self.unhash_template(idx);
            return None;
        }
        let expires = now.saturating_add(timeout);
        t.expires = expires;
        if expires < t.timer.armed() {
            self.wheel.rearm(&mut self.slab, idx.get(), expires);
        }
        Some(idx)
    }

    /// Creates a template expiring `timeout` seconds from `now`. The caller binds it on its
    /// destination as a persistent connection.
    pub fn insert_template(
        &mut self,
        new: NewTemplate<A>,
        now: u32,
    ) -> Result<ConnIdx, InsertError> {
        let k = new.key.0;
        let conn = Conn {
            caddr: k.saddr,
            vaddr: k.daddr,
            daddr: new.daddr,
            cport: 0,
            vport: k.dport,
            dport: new.dport,
            proto: k.proto,
            state: TcpState::None as u8,
            // Templates see no packets: no reply key, no activity class.
            flags: flag::LIVE | flag::TEMPLATE,
            fwd: new.fwd,
            nat: crate::wire::nat::NatDeltas::ZERO,
            dest_id: new.dest_id,
            service_id: new.service_id,
            expires: now.saturating_add(new.timeout),
            tmpl: NIL,
            n_control: 0,
            timer: TimerNode::UNLINKED,
        };
        self.insert_entry(conn, false)
    }
}
