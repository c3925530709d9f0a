//! ovf — Weighted Overflow (kernel ip_vs_ovf.c): the highest-weight available destination
//! whose active connections do not exceed its weight; ties go to the earlier one in list order.
//! Walks the build-time weight order to the first that qualifies.

use crate::common::{by_weight_desc, Dests};
use crate::{FlowInfo, Scheduler};

pub(crate) struct Overflow {
    dests: Dests,
    order: Box<[u32]>,
}

pub(crate) fn build(dests: Dests) -> Box<dyn Scheduler> {
    Box::new(Overflow {
        order: by_weight_desc(&dests.weights),
        dests,
    })
}

impl Scheduler for Overflow {
    fn name(&self) -> &'static str {
        "ovf"
    }

    fn schedule(&self, _flow: &FlowInfo) -> Option<usize> {
        self.order.iter().map(|&i| i as usize).find(|&i| {
            let l = &self.dests.loads[i];
            !l.is_overloaded() && l.active() <= self.dests.weights[i]
        })
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
