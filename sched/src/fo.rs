//! fo — Weighted Fail Over (kernel ip_vs_fo.c): the available destination with the highest
//! weight; ties go to the earlier one in list order. The order by weight is fixed at build, so
//! a pick walks it to the first destination that is not OVERLOADed (O(1) unless overloaded).

use crate::common::{by_weight_desc, Dests};
use crate::{FlowInfo, Scheduler};

pub(crate) struct FailOver {
    dests: Dests,
    order: Box<[u32]>,
}

pub(crate) fn build(dests: Dests) -> Box<dyn Scheduler> {
    Box::new(FailOver {
        order: by_weight_desc(&dests.weights),
        dests,
    })
}

impl Scheduler for FailOver {
    fn name(&self) -> &'static str {
        "fo"
    }

    fn schedule(&self, _flow: &FlowInfo) -> Option<usize> {
        self.order
            .iter()
            .map(|&i| i as usize)
            .find(|&i| !self.dests.loads[i].is_overloaded())
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
