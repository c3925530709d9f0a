//! [`ConnTable::check_consistency`]: every internal invariant, checked the slow way.

use super::entry::flag;
use super::key::ConnAddr;
use super::table::ConnTable;
use super::timer::NIL;

impl<A: ConnAddr> ConnTable<A> {
    /// Checks every internal invariant (slow; for tests and debugging): counts, free list,
    /// the index and the pending reply keys, timer links, template control counts.
    pub fn check_consistency(&self) -> Result<(), String> {
        let live = self.slab.iter().filter(|c| c.is_live()).count();
        if live != self.len as usize {
            return Err(format!("len {} but {live} live entries", self.len));
        }
        let mut free = 0usize;
        let mut i = self.free_head;
        while i != NIL {
            let c = self.slab.get(i as usize).ok_or("free list out of range")?;
            if c.is_live() {
                return Err(format!("live entry {i} on the free list"));
            }
            free += 1;
            if free > self.slab.len() {
                return Err("free list loops".into());
            }
            i = c.timer.next();
        }
        if free + live != self.slab.len() {
            return Err(format!(
                "{free} free + {live} live != capacity {}",
                self.slab.len()
            ));
        }
        let hashed = self
            .slab
            .iter()
            .filter(|c| c.is_live() && c.flags & flag::UNHASHED == 0)
            .count();
        let replies = self
            .slab
            .iter()
            .filter(|c| c.is_live() && c.has_reply_key() && c.flags & flag::REPLY_PENDING == 0)
            .count();
        let parked = self
            .slab
            .iter()
            .filter(|c| c.is_live() && c.flags & flag::REPLY_PENDING != 0)
            .count();
        if parked != self.pending.len() {
            return Err(format!(
                "{parked} entries wait for their reply key, {} pending",
                self.pending.len()
            ));
        }
        for (h, i) in self.pending.iter() {
            let c = self
                .slab
                .get(i as usize)
                .ok_or("pending entry out of range")?;
            if !c.is_live() || c.flags & flag::REPLY_PENDING == 0 || !c.has_reply_key() {
                return Err(format!("pending reply key of entry {i}, not waiting"));
            }
            if c.reply_key().hash_reply(&self.seed) != h {
                return Err(format!("pending reply key of entry {i} under a wrong hash"));
            }
        }
        if self.index.len() != hashed + replies {
            return Err(format!(
                "index has {} keys, {hashed} hashed entries + {replies} NAT reply keys",
                self.index.len()
            ));
        }
        self.index.check()?;
        let mut controls = vec![0u32; self.slab.len()];
        for (idx, c) in self.iter() {
            if c.flags & flag::UNHASHED == 0
                && self.find_inbound(&c.inbound_key(), c.is_template()) != Some(idx)
            {
                return Err(format!("inbound key of {idx:?} does not resolve to it"));
            }
            if c.has_reply_key() {
                // Or to a newer connection whose pending key will take it over.
                let found = self.lookup_reply(&c.reply_key());
                let ok = found == Some(idx)
                    || found.is_some_and(|o| {
                        let n = &self.slab[o.0 as usize];
                        n.flags & flag::REPLY_PENDING != 0 && n.reply_key() == c.reply_key()
                    });
                if !ok {
                    return Err(format!("reply key of {idx:?} does not resolve to it"));
                }
            }
            if c.tmpl != NIL {
                let t = self
                    .slab
                    .get(c.tmpl as usize)
                    .ok_or("template out of range")?;
                if !t.is_live() || !t.is_template() {
                    return Err(format!("{idx:?} controlled by a non-template"));
                }
                controls[c.tmpl as usize] += 1;
            }
        }
        for (idx, c) in self.iter() {
            if c.is_template() && c.n_control != controls[idx.0 as usize] {
                return Err(format!(
                    "{idx:?} controls {} but says {}",
                    controls[idx.0 as usize], c.n_control
                ));
            }
        }
        let mut linked = vec![false; self.slab.len()];
        let mut bad = None;
        self.wheel.for_each_linked(&self.slab, |i, slot| {
            let c = &self.slab[i as usize];
            if !c.is_live() || linked[i as usize] {
                bad = Some(format!("entry {i} linked twice or while free"));
            }
            if let Some(s) = slot {
                if self.wheel.slot_of(c.timer.armed()) != s {
                    bad = Some(format!("entry {i} in the wrong slot"));
                }
            }
            linked[i as usize] = true;
        });
        if let Some(b) = bad {
            return Err(b);
        }
        if let Some((idx, _)) = self.iter().find(|(idx, _)| !linked[idx.0 as usize]) {
            return Err(format!("{idx:?} has no timer"));
        }
        Ok(())
    }
}
