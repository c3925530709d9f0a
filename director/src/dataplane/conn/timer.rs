//! A hashed timer wheel with 1-second slots over intrusive lists.
//!
//! Each entry of the connection slab embeds a [`TimerNode`] (next, prev, armed second); the wheel
//! only holds one list head per slot, so arming and disarming are O(1) and allocate nothing.
//! An entry armed for second `t` sits in slot `t % slots`; deadlines further away than one turn
//! of the wheel simply come around again (the owner re-arms what is not due yet).
//!
//! The wheel is lazy by design: the owner stores the real expiry in its entry and only re-arms
//! when a slot fires (or when the expiry moves *earlier* than the armed second), so a packet
//! that extends a connection costs one store.

/// "No entry" in links and list heads.
pub const NIL: u32 = u32::MAX;

/// Links of one entry in a wheel slot's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerNode {
    next: u32,
    prev: u32,
    armed: u32,
}

impl TimerNode {
    /// An unlinked node.
    pub const UNLINKED: TimerNode = TimerNode {
        next: NIL,
        prev: NIL,
        armed: 0,
    };

    /// The second this entry is armed for.
    pub fn armed(&self) -> u32 {
        self.armed
    }

    /// Next entry in the same list (also used as the slab's free-list link).
    pub(crate) fn next(&self) -> u32 {
        self.next
    }

    pub(crate) fn set_next(&mut self, next: u32) {
        self.next = next;
    }
}

/// Slab entries that carry a [`TimerNode`].
pub trait TimerLinks {
    /// The entry's links.
    fn timer(&self) -> &TimerNode;
    /// The entry's links, mutably.
    fn timer_mut(&mut self) -> &mut TimerNode;
}

/// The wheel: one list head per second slot, a cursor (the next second to fire) and the list
/// of the slot being fired (so a bounded caller can stop in the middle of a slot).
#[derive(Debug)]
pub struct TimerWheel {
    heads: Box<[u32]>,
    mask: u32,
    /// Next second whose slot has not been fired yet.
    cursor: u32,
    /// Entries of the last fired slot not handed out yet.
    firing: u32,
}

impl TimerWheel {
    /// A wheel with `slots` one-second slots, rounded up to a power of two (at least 2).
    pub fn new(slots: usize) -> Self {
        let slots = slots.clamp(2, 1 << 24).next_power_of_two();
        TimerWheel {
            heads: vec![NIL; slots].into_boxed_slice(),
            mask: (slots - 1) as u32,
            cursor: 0,
            firing: NIL,
        }
    }

    /// Unlinks everything at once (the owner frees its entries itself); the cursor stays, so
    /// later deadlines keep their meaning.
    pub fn clear(&mut self) {
        self.heads.fill(NIL);
        self.firing = NIL;
    }

    /// Number of slots (seconds in one turn).
    pub fn slots(&self) -> usize {
        self.heads.len()
    }

    /// Bytes the wheel allocated.
    pub fn memory_bytes(&self) -> usize {
        self.heads.len() * std::mem::size_of::<u32>()
    }

    /// Links unlinked entry `idx` for second `deadline` (or the next second to fire, if that
    /// has already passed). O(1).
    pub fn arm<T: TimerLinks>(&mut self, nodes: &mut [T], idx: u32, deadline: u32) {
        let armed = deadline.max(self.cursor);
        let slot = (armed & self.mask) as usize;
        let head = self.heads[slot];
        if head != NIL {
            nodes[head as usize].timer_mut().prev = idx;
        }
        *nodes[idx as usize].timer_mut() = TimerNode {
            next: head,
            prev: NIL,
            armed,
        };
        self.heads[slot] = idx;
    }

    /// Unlinks linked entry `idx`. O(1).
    pub fn disarm<T: TimerLinks>(&mut self, nodes: &mut [T], idx: u32) {
        let TimerNode { next, prev, armed } = *nodes[idx as usize].timer();
        if prev != NIL {
            nodes[prev as usize].timer_mut().next = next;
        } else {
            // Head of exactly one list: its slot's, or the one being fired.
            let slot = (armed & self.mask) as usize;
            if self.heads[slot] == idx {
                self.heads[slot] = next;
            } else {
                debug_assert_eq!(self.firing, idx, "disarm of an entry in no list");
                self.firing = next;
            }
        }
        if next != NIL {
            nodes[next as usize].timer_mut().prev = prev;
        }
        *nodes[idx as usize].timer_mut() = TimerNode::UNLINKED;
    }

    /// Moves linked entry `idx` to `deadline`. O(1).
    pub fn rearm<T: TimerLinks>(&mut self, nodes: &mut [T], idx: u32, deadline: u32) {
        self.disarm(nodes, idx);
        self.arm(nodes, idx, deadline);
    }

    /// Unlinks and returns one entry from a slot whose second is `<= now`, firing slots in
    /// time order; `None` once every slot up to `now` has been emptied. Entries of a slot
    /// come out in no particular order, and an entry armed for a later turn of the wheel can
    /// come out too: the caller checks its real expiry and re-arms what is not due.
    ///
    /// Each call visits at most one turn of slots, however far `now` jumped.
    pub fn pop_due<T: TimerLinks>(&mut self, nodes: &mut [T], now: u32) -> Option<u32> {
        loop {
            if self.firing != NIL {
                let idx = self.firing;
                self.firing = nodes[idx as usize].timer().next;
                if self.firing != NIL {
                    nodes[self.firing as usize].timer_mut().prev = NIL;
                }
                *nodes[idx as usize].timer_mut() = TimerNode::UNLINKED;
                return Some(idx);
            }
            if self.cursor > now {
                return None;
            }
            // After a long pause only the last turn needs visiting: every slot is in it.
            if now - self.cursor > self.mask {
                self.cursor = now - self.mask;
            }
            let slot = (self.cursor & self.mask) as usize;
            self.firing = self.heads[slot];
            self.heads[slot] = NIL;
            self.cursor += 1;
        }
    }

    /// Whether a slot up to `now` still holds entries (only answers for the slot being
    /// fired and the cursor's; meant for "did the bounded caller stop early").
    pub fn has_due(&self, now: u32) -> bool {
        self.firing != NIL
            || (self.cursor <= now
                && (self.cursor..=now.min(self.cursor.saturating_add(self.mask)))
                    .any(|t| self.heads[(t & self.mask) as usize] != NIL))
    }

    /// Visits every linked entry (slow; consistency checks).
    pub fn for_each_linked<T: TimerLinks>(
        &self,
        nodes: &[T],
        mut f: impl FnMut(u32, Option<usize>),
    ) {
        for (slot, &head) in self.heads.iter().enumerate() {
            let mut i = head;
            while i != NIL {
                f(i, Some(slot));
                i = nodes[i as usize].timer().next;
            }
        }
        let mut i = self.firing;
        while i != NIL {
            f(i, None);
            i = nodes[i as usize].timer().next;
        }
    }

    /// The slot second `t` maps to.
    pub fn slot_of(&self, t: u32) -> usize {
        (t & self.mask) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct Item(TimerNode);
    impl TimerLinks for Item {
        fn timer(&self) -> &TimerNode {
            &self.0
        }
        fn timer_mut(&mut self) -> &mut TimerNode {
            &mut self.0
        }
    }

    fn drain(w: &mut TimerWheel, nodes: &mut [Item], now: u32) -> Vec<u32> {
        let mut v = Vec::new();
        while let Some(i) = w.pop_due(nodes, now) {
            v.push(i);
        }
        v
    }

    #[test]
    fn fires_in_time_order_and_not_before() {
        let mut w = TimerWheel::new(8);
        let mut nodes = vec![Item(TimerNode::UNLINKED); 4];
        w.arm(&mut nodes, 0, 5);
        w.arm(&mut nodes, 1, 3);
        w.arm(&mut nodes, 2, 4);
        w.arm(&mut nodes, 3, 3);
        assert_eq!(drain(&mut w, &mut nodes, 2), Vec::<u32>::new());
        let mut at3 = drain(&mut w, &mut nodes, 3);
        at3.sort();
        assert_eq!(at3, [1, 3]);
        assert_eq!(drain(&mut w, &mut nodes, 10), [2, 0]);
    }

    #[test]
    fn disarm_from_middle_head_and_firing_list() {
        let mut w = TimerWheel::new(8);
        let mut nodes = vec![Item(TimerNode::UNLINKED); 4];
        for i in 0..4 {
            w.arm(&mut nodes, i, 1);
        }
        // List is 3,2,1,0: remove the head and a middle one.
        w.disarm(&mut nodes, 3);
        w.disarm(&mut nodes, 1);
        let first = w.pop_due(&mut nodes, 1).unwrap();
        assert_eq!(first, 2);
        // 0 is now in the firing list; disarming it there must work.
        w.disarm(&mut nodes, 0);
        assert_eq!(w.pop_due(&mut nodes, 1), None);
    }

    #[test]
    fn far_deadlines_come_around_and_long_pauses_are_bounded() {
        let mut w = TimerWheel::new(4);
        let mut nodes = vec![Item(TimerNode::UNLINKED); 2];
        w.arm(&mut nodes, 0, 9); // two turns ahead: slot 1
        w.arm(&mut nodes, 1, 2);
        // At t=1 slot 1 fires and hands out entry 0 early; the owner would re-arm it.
        assert_eq!(drain(&mut w, &mut nodes, 1), [0]);
        assert_eq!(nodes[0].0.armed(), 0);
        w.arm(&mut nodes, 0, 9);
        // Jump far ahead: both come out, cursor skips to the last turn.
        let mut all = drain(&mut w, &mut nodes, 1_000_000);
        all.sort();
        assert_eq!(all, [0, 1]);
        // A deadline already in the past is armed for the next second to fire.
        w.arm(&mut nodes, 1, 5);
        assert_eq!(nodes[1].0.armed(), 1_000_001);
        assert!(!w.has_due(1_000_000));
        assert!(w.has_due(1_000_001));
    }
}
