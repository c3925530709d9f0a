//! lblcr — Locality-Based Least-Connection with Replication (kernel ip_vs_lblcr.c).
//!
//! Per destination IP a set of destinations (newest member first). A pick uses the set's wlc
//! minimum (available members only); if there is none, or it is busy in lblc's sense, the
//! service-wide wlc choice is taken and added to the set. A set not modified for 24 h with more
//! than one member drops its most loaded member. Sets hold at most 4 members here (one atomic
//! word; a full set replaces its most loaded member), the kernel's are unbounded lists.

use crate::common::Dests;
use crate::least::{LeastPicker, Metric};
use crate::locality::{LocalityTable, EXPIRATION_SECS};
use crate::{FlowInfo, SchedError, Scheduler};

const EMPTY: u16 = u16::MAX;
const MEMBERS: usize = 4;

pub(crate) struct Lblcr {
    dests: Dests,
    picker: LeastPicker,
    table: LocalityTable,
}

fn members(word: u64) -> impl Iterator<Item = usize> {
    (0..MEMBERS)
        .map(move |k| (word >> (16 * k)) as u16)
        .filter(|&m| m != EMPTY)
        .map(usize::from)
}

fn pack(list: impl Iterator<Item = usize>) -> u64 {
    let mut word = u64::MAX;
    for (k, m) in list.take(MEMBERS).enumerate() {
        word = (word & !(0xFFFF << (16 * k))) | ((m as u64) << (16 * k));
    }
    word
}

/// One-member set.
fn single(d: usize) -> u64 {
    pack(std::iter::once(d))
}

impl Lblcr {
    /// ip_vs_dest_set_min: wlc minimum among available members, ties to the earlier member.
    fn set_min(&self, word: u64) -> Option<usize> {
        let d = &self.dests;
        members(word)
            .filter(|&m| m < d.len() && d.available(m))
            .reduce(|least, m| {
                if d.overhead(least) as u128 * d.weights[m] as u128
                    > d.overhead(m) as u128 * d.weights[least] as u128
                {
                    m
                } else {
                    least
                }
            })
    }

    /// ip_vs_dest_set_max: most loaded member with weight > 0, ties to the earlier member.
    fn set_max(&self, word: u64) -> Option<usize> {
        let d = &self.dests;
        members(word)
            .filter(|&m| m < d.len() && d.weights[m] > 0)
            .reduce(|most, m| {
                if d.overhead(most) as u128 * (d.weights[m] as u128)
                    < d.overhead(m) as u128 * d.weights[most] as u128
                {
                    m
                } else {
                    most
                }
            })
    }

    /// `word` with `d` added at the front (a full set first loses its most loaded member).
    fn with_member(&self, word: u64, d: usize) -> u64 {
        let full = members(word).count() == MEMBERS;
        let dropped = if full { self.set_max(word) } else { None };
        pack(std::iter::once(d).chain(members(word).filter(move |&x| Some(x) != dropped)))
    }
}

pub(crate) fn build(
    dests: Dests,
    prev: Option<&dyn Scheduler>,
) -> Result<Box<dyn Scheduler>, SchedError> {
    if dests.len() >= EMPTY as usize {
        return Err(SchedError::InvalidParam(format!(
            "lblcr supports at most {} destinations",
            EMPTY - 1
        )));
    }
    let prev = prev
        .and_then(|p| p.as_any())
        .and_then(|a| a.downcast_ref::<Lblcr>());
    let table = LocalityTable::new(prev.map(|p| p.table.epoch()));
    if let Some(p) = prev {
        table.copy_from(&p.table, |old| {
            let kept = members(old).filter_map(|m| dests.position(p.dests.keys.get(m)?));
            let word = pack(kept);
            (word != u64::MAX).then_some(word)
        });
    }
    let picker = LeastPicker::new(Metric::Wlc, &dests);
    Ok(Box::new(Lblcr {
        dests,
        picker,
        table,
    }))
}

impl Scheduler for Lblcr {
    fn name(&self) -> &'static str {
        "lblcr"
    }

    fn schedule(&self, flow: &FlowInfo) -> Option<usize> {
        let now = self.table.now();
        let Some(hit) = self.table.find(&flow.daddr, now) else {
            let d = self.picker.pick()?;
            self.table.insert(&flow.daddr, single(d), now);
            return Some(d);
        };
        let least = self.set_min(hit.data);
        let mut word = hit.data;
        if members(word).count() > 1 && now.saturating_sub(hit.lastmod) > EXPIRATION_SECS {
            if let Some(m) = self.set_max(word) {
                let shrunk = pack(members(word).filter(|&x| x != m));
                if self.table.update(&hit, shrunk, now) {
                    word = shrunk;
                }
            }
        }
        if let Some(d) = least.filter(|&d| !crate::lblc::busy(&self.dests, d)) {
            return Some(d);
        }
        let d = self.picker.pick()?;
        if !members(word).any(|m| m == d) {
            let grown = self.with_member(word, d);
            let hit = crate::locality::Hit { data: word, ..hit };
            self.table.update(&hit, grown, now);
        }
        Some(d)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
