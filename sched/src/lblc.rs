//! lblc — Locality-Based Least-Connection (kernel ip_vs_lblc.c).
//!
//! Per destination IP a cached destination (table in `locality.rs`). A cached destination is
//! reused when it has weight > 0, is not OVERLOADed and is not "overloaded" in lblc's sense
//! (activeconns > weight while some destination has activeconns * 2 < weight); otherwise the
//! wlc choice (the O(1) tree of `least.rs`) is taken and cached. (The kernel does not test the
//! threshold OVERLOAD flag on cache hits; we do, so -x is a hard limit for every scheduler.)
//! The cache survives rebuilds: entries are remapped to the new destination indices, entries
//! of deleted destinations are dropped.

use crate::common::Dests;
use crate::least::{LeastPicker, Metric};
use crate::locality::LocalityTable;
use crate::{FlowInfo, Scheduler};

pub(crate) struct Lblc {
    dests: Dests,
    picker: LeastPicker,
    table: LocalityTable,
}

/// lblc/lblcr's is_overloaded: more active connections than weight while another destination
/// is below half its weight.
pub(crate) fn busy(dests: &Dests, d: usize) -> bool {
    dests.loads[d].active() > dests.weights[d]
        && (0..dests.len()).any(|i| (dests.loads[i].active() as u64) * 2 < dests.weights[i] as u64)
}

pub(crate) fn build(dests: Dests, prev: Option<&dyn Scheduler>) -> Box<dyn Scheduler> {
    let prev = prev
        .and_then(|p| p.as_any())
        .and_then(|a| a.downcast_ref::<Lblc>());
    let table = LocalityTable::new(prev.map(|p| p.table.epoch()));
    if let Some(p) = prev {
        table.copy_from(&p.table, |old| {
            let key = p.dests.keys.get(old as usize)?;
            dests.position(key).map(|i| i as u64)
        });
    }
    let picker = LeastPicker::new(Metric::Wlc, &dests);
    Box::new(Lblc {
        dests,
        picker,
        table,
    })
}

impl Scheduler for Lblc {
    fn name(&self) -> &'static str {
        "lblc"
    }

    fn schedule(&self, flow: &FlowInfo) -> Option<usize> {
        let now = self.table.now();
        if let Some(hit) = self.table.find(&flow.daddr, now) {
            let d = hit.data as usize;
            if d < self.dests.len() && self.dests.available(d) && !busy(&self.dests, d) {
                return Some(d);
            }
        }
        let d = self.picker.pick()?;
        self.table.insert(&flow.daddr, d as u64, now);
        Some(d)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
