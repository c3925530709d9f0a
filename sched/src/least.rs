//! The least-connection family's shared machinery: a tournament tree over the destinations that
//! keeps the kernel's choice (first in list order among the best) at the root.
//!
//! The kernel scans every destination per new connection (O(n)). Here each internal node holds
//! the winner of its two subtrees, compared on the live counts of [`DestLoad`]; a bind/unbind/
//! state change of a destination recomputes the nodes on its leaf-to-root path (log2 n nodes,
//! one CAS each, versioned so a stale recompute can never overwrite a fresher one). A pick reads
//! the root and checks it is still available: O(1). Ties go to the left subtree, i.e. to the
//! earlier destination in list order, exactly as the kernel's strict comparisons do, because the
//! metrics are strict weak orders (exact 64-bit cross multiplication).
//!
//! Linking: each [`DestLoad`] points at the leaf of the newest tree built over it (`tree_id`
//! only grows). A superseded tree (an older scheduler still in use during a snapshot swap) is no
//! longer refreshed, so its picks fall back to the kernel's linear scan and stay exact. Dropping
//! a scheduler unlinks its tree; an older one still alive then relinks on its next pick.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;

use crate::common::{Dests, NONE};
use crate::DestLoad;

/// Which load comparison a tree keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Metric {
    /// lc: least overhead.
    Lc,
    /// wlc: least overhead/weight.
    Wlc,
    /// sed: least (active+1)/weight.
    Sed,
    /// nq: first idle, else like sed.
    Nq,
}

/// A destination as the metrics see it.
#[derive(Clone, Copy)]
pub(crate) struct Cand<'a> {
    pub weight: u32,
    pub load: &'a DestLoad,
}

impl Cand<'_> {
    pub fn overhead(&self) -> u64 {
        ((self.load.active() as u64) << 8) + self.load.inactive() as u64
    }
}

impl Metric {
    /// Whether `x` (later in list order) strictly beats `y` (earlier).
    #[inline]
    fn beats(self, x: Cand, y: Cand) -> bool {
        match self {
            Metric::Lc => crate::lc::beats(x, y),
            Metric::Wlc => crate::wlc::beats(x, y),
            Metric::Sed => crate::sed::beats(x, y),
            Metric::Nq => crate::nq::beats(x, y),
        }
    }
}

/// The kernel's O(n) scan: first available destination, replaced by any later one that strictly
/// beats it. Reference semantics, and the fallback for superseded trees.
pub(crate) fn linear_scan(
    metric: Metric,
    weights: &[u32],
    loads: &[Arc<DestLoad>],
) -> Option<usize> {
    let mut least: Option<usize> = None;
    for i in 0..weights.len() {
        if weights[i] == 0 || loads[i].is_overloaded() {
            continue;
        }
        let x = Cand {
            weight: weights[i],
            load: &loads[i],
        };
        if metric == Metric::Nq && x.load.active() == 0 {
            return Some(i);
        }
        least = match least {
            Some(l)
                if !metric.beats(
                    x,
                    Cand {
                        weight: weights[l],
                        load: &loads[l],
                    },
                ) =>
            {
                Some(l)
            }
            _ => Some(i),
        };
    }
    least
}

static NEXT_TREE_ID: AtomicU64 = AtomicU64::new(1);

/// The tree: `nodes[1..size]` are internal nodes (heap layout), leaves are implicit.
pub(crate) struct LeastTree {
    id: u64,
    metric: Metric,
    size: usize,
    weights: Box<[u32]>,
    loads: Box<[Arc<DestLoad>]>,
    /// (version << 32) | winner index (NONE = no available destination below).
    nodes: Box<[AtomicU64]>,
}

/// What a [`DestLoad`] links to: one leaf of one tree.
pub(crate) struct TreeLeaf {
    tree: Arc<LeastTree>,
    index: u32,
}

impl TreeLeaf {
    /// Push a change of this leaf's destination up the tree.
    #[inline]
    pub fn refresh(&self) {
        self.tree.update(self.index as usize);
    }
}

impl LeastTree {
    #[inline]
    fn available(&self, i: u32) -> bool {
        i != NONE && self.weights[i as usize] > 0 && !self.loads[i as usize].is_overloaded()
    }

    #[inline]
    fn cand(&self, i: u32) -> Cand<'_> {
        Cand {
            weight: self.weights[i as usize],
            load: &self.loads[i as usize],
        }
    }

    #[inline]
    fn winner_of(&self, node: usize) -> u32 {
        if node >= self.size {
            let leaf = node - self.size;
            if leaf < self.weights.len() {
                leaf as u32
            } else {
                NONE
            }
        } else {
            self.nodes[node].load(Acquire) as u32
        }
    }

    #[inline]
    fn better(&self, l: u32, r: u32) -> u32 {
        match (self.available(l), self.available(r)) {
            (false, false) => NONE,
            (true, false) => l,
            (false, true) => r,
            (true, true) if self.metric.beats(self.cand(r), self.cand(l)) => r,
            (true, true) => l,
        }
    }

    /// Recompute one internal node from its children; returns (old winner, new winner).
    fn recompute(&self, node: usize) -> (u32, u32) {
        loop {
            let cur = self.nodes[node].load(Acquire);
            let w = self.better(self.winner_of(2 * node), self.winner_of(2 * node + 1));
            let new = (((cur >> 32) + 1) << 32) | w as u64;
            if self.nodes[node]
                .compare_exchange_weak(cur, new, AcqRel, Acquire)
                .is_ok()
            {
                return (cur as u32, w);
            }
        }
    }

    /// Leaf `leaf` changed: recompute its ancestors. Stops early once a node's winner is
    /// unchanged and is not the changed leaf (nothing above can depend on the change then).
    fn update(&self, leaf: usize) {
        let mut node = (self.size + leaf) / 2;
        while node >= 1 {
            let (old, new) = self.recompute(node);
            if old == new && new != leaf as u32 {
                return;
            }
            node /= 2;
        }
    }

    fn recompute_all(&self) {
        for node in (1..self.size).rev() {
            self.recompute(node);
        }
    }

    fn root(&self) -> u32 {
        self.winner_of(1)
    }
}

/// A scheduler's handle on its tree: picks, links, and unlinks on drop.
pub(crate) struct LeastPicker {
    tree: Arc<LeastTree>,
    leaves: Box<[Arc<TreeLeaf>]>,
}

impl LeastPicker {
    /// Build the tree over `dests` and link it (newest tree wins the links).
    pub fn new(metric: Metric, dests: &Dests) -> Self {
        let size = dests.len().next_power_of_two().max(2);
        let tree = Arc::new(LeastTree {
            id: NEXT_TREE_ID.fetch_add(1, Relaxed),
            metric,
            size,
            weights: dests.weights.clone(),
            loads: dests.loads.clone(),
            nodes: (0..size).map(|_| AtomicU64::new(NONE as u64)).collect(),
        });
        let leaves = (0..dests.len())
            .map(|i| {
                Arc::new(TreeLeaf {
                    tree: tree.clone(),
                    index: i as u32,
                })
            })
            .collect();
        let picker = LeastPicker { tree, leaves };
        picker.activate();
        picker
    }

    /// Link every destination to this tree unless a newer tree holds it, then recompute all
    /// nodes from the live counts. Returns false when superseded.
    fn activate(&self) -> bool {
        let id = self.tree.id;
        for (load, leaf) in self.tree.loads.iter().zip(self.leaves.iter()) {
            loop {
                let cur = load.link.load();
                match cur.as_ref() {
                    Some(c) if c.tree.id > id => return false,
                    Some(c) if c.tree.id == id => break,
                    _ => {}
                }
                let prev = load.link.compare_and_swap(&cur, Some(leaf.clone()));
                let same = match (prev.as_ref(), cur.as_ref()) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if same {
                    break;
                }
            }
            load.tree_id.fetch_max(id, Relaxed);
        }
        self.tree.recompute_all();
        true
    }

    /// The metric's choice, O(1) while this tree is the linked one, else the linear scan.
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        let t = &*self.tree;
        let first = t.loads.first()?;
        let owner = first.tree_id.load(Relaxed);
        if owner != t.id && (owner > t.id || !self.activate()) {
            return linear_scan(t.metric, &t.weights, &t.loads);
        }
        let w = t.root();
        if t.available(w) {
            Some(w as usize)
        } else {
            // Nothing available, or a change still propagating: let the scan decide.
            linear_scan(t.metric, &t.weights, &t.loads)
        }
    }
}

impl Drop for LeastPicker {
    fn drop(&mut self) {
        let id = self.tree.id;
        for (load, leaf) in self.tree.loads.iter().zip(self.leaves.iter()) {
            let cur = load.link.load();
            if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, leaf)) {
                load.link.compare_and_swap(&cur, None);
            }
            let _ = load.tree_id.compare_exchange(id, 0, Relaxed, Relaxed);
        }
    }
}

/// lc, wlc, sed and nq: a tree and a name.
pub(crate) struct LeastSched {
    name: &'static str,
    picker: LeastPicker,
}

impl LeastSched {
    pub fn boxed(name: &'static str, metric: Metric, dests: &Dests) -> Box<dyn crate::Scheduler> {
        Box::new(LeastSched {
            name,
            picker: LeastPicker::new(metric, dests),
        })
    }
}

impl crate::Scheduler for LeastSched {
    fn name(&self) -> &'static str {
        self.name
    }

    #[inline]
    fn schedule(&self, _flow: &crate::FlowInfo) -> Option<usize> {
        self.picker.pick()
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_loads, DestSpec};

    fn dests(n: usize) -> Dests {
        let specs: Vec<DestSpec> = (0..n)
            .map(|i| DestSpec {
                addr: std::net::IpAddr::from([10, 0, 0, i as u8]),
                port: 80,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0,
            })
            .collect();
        Dests::new(&specs, &new_loads(n))
    }

    #[test]
    fn newest_tree_owns_the_links_and_old_one_relinks_after_drop() {
        let d = dests(5);
        let old = LeastPicker::new(Metric::Wlc, &d);
        assert!(d
            .loads
            .iter()
            .all(|l| l.tree_id.load(Relaxed) == old.tree.id));
        let new = LeastPicker::new(Metric::Wlc, &d);
        assert!(d
            .loads
            .iter()
            .all(|l| l.tree_id.load(Relaxed) == new.tree.id));
        assert!(!old.activate(), "an older tree cannot steal the links");
        d.loads[0].bind(true);
        // the new tree's root moved on its own (O(1) path), the old tree's did not
        assert_eq!(new.tree.root(), 1);
        assert_eq!(old.tree.root(), 0);
        assert_eq!(old.pick(), Some(1), "old tree falls back to the exact scan");
        drop(new);
        assert!(d
            .loads
            .iter()
            .all(|l| l.tree_id.load(Relaxed) == 0 && l.link.load().is_none()));
        assert_eq!(old.pick(), Some(1));
        assert!(
            d.loads
                .iter()
                .all(|l| l.tree_id.load(Relaxed) == old.tree.id),
            "relinked"
        );
        d.loads[1].bind(true);
        assert_eq!(old.tree.root(), 2);
    }
}
