//! The least-connection family's shared machinery: the kernel's scan for services of up to
//! [`SCAN_MAX`] destinations, and above that a tournament tree over the destinations that keeps
//! the kernel's choice (first in list order among the best) at the root. Each rule (lc.rs,
//! wlc.rs, sed.rs, nq.rs) is a [`Rule`]: a key per destination and a strict comparison.
//!
//! The kernel scans every destination per new connection (O(n)). That is also the cheapest
//! here for small services: a scan only reads, while a tree must be refreshed by every bind,
//! state change and unbind, writing nodes shared by all workers. In a tree each internal node holds
//! the winner of its two subtrees, compared on the live counts of [`DestLoad`]; a bind/unbind/
//! state change of a destination recomputes the nodes on its leaf-to-root path (log2 n nodes,
//! one CAS each, versioned so a stale recompute can never overwrite a fresher one). A pick reads
//! the root and checks it is still available: O(1). Ties go to the left subtree, i.e. to the
//! earlier destination in list order, exactly as the kernel's strict comparisons do, because the
//! metrics are strict weak orders (exact 128-bit cross multiplication). A change the tree's rule
//! does not read (a template; the inactive count for sed and nq) walks nothing.
//!
//! Linking: each [`DestLoad`] points at the leaf of the newest tree built over it (`tree_id`
//! only grows). A superseded tree (an older scheduler still in use during a snapshot swap) is no
//! longer refreshed, so its picks fall back to the kernel's linear scan and stay exact. Dropping
//! a scheduler unlinks its tree; an older one still alive then relinks on its next pick.

use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::Arc;

use crate::common::{Dests, NONE};
use crate::load::{TOUCHED_ACTIVE, TOUCHED_INACTIVE};
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

/// A least-connection rule: what it compares of a destination, and how.
pub(crate) trait Rule {
    /// The comparable state of an available destination (weight and counts as the rule needs
    /// them).
    type Key: Copy;
    /// nq: an idle destination ([`Rule::idle`]) is chosen outright, so a scan can stop there.
    const FIRST_IDLE: bool = false;
    /// The `load::TOUCHED_*` changes the key depends on (the active count and OVERLOAD flag
    /// always; the inactive count for lc and wlc).
    const READS: u8 = TOUCHED_ACTIVE | TOUCHED_INACTIVE;
    /// The key of a destination with `weight` and these counts.
    fn key(weight: u32, active: u32, inactive: u32) -> Self::Key;
    /// Whether `x` (later in list order) strictly beats `y` (earlier): the kernel's
    /// replacement test, so ties keep the earlier destination.
    fn beats(x: Self::Key, y: Self::Key) -> bool;
    /// nq: no active connection.
    fn idle(_k: Self::Key) -> bool {
        false
    }
}

/// The kernel's ip_vs_dest_conn_overhead: (activeconns << 8) + inactconns.
#[inline(always)]
pub(crate) fn overhead(active: u32, inactive: u32) -> u64 {
    ((active as u64) << 8) + inactive as u64
}

/// Runs `$body` with `$rule` naming `$metric`'s [`Rule`] type, so the loops below are compiled
/// once per rule instead of matching on the metric per comparison.
macro_rules! with_rule {
    ($metric:expr, $rule:ident => $body:expr) => {
        match $metric {
            Metric::Lc => {
                type $rule = crate::lc::Lc;
                $body
            }
            Metric::Wlc => {
                type $rule = crate::wlc::Wlc;
                $body
            }
            Metric::Sed => {
                type $rule = crate::sed::Sed;
                $body
            }
            Metric::Nq => {
                type $rule = crate::nq::Nq;
                $body
            }
        }
    };
}

/// A destination of a least-connection scheduler: build-time weight, live load.
pub(crate) struct Member {
    weight: u32,
    load: Arc<DestLoad>,
}

impl Member {
    /// This destination's key, None when quiesced or OVERLOADed.
    #[inline(always)]
    fn key<R: Rule>(&self) -> Option<R::Key> {
        if self.weight == 0 || self.load.is_overloaded() {
            return None;
        }
        let (active, inactive) = self.load.counts();
        Some(R::key(self.weight, active, inactive))
    }

    /// `members[i]`'s key, None also when `i` is out of range (NONE, tree padding).
    #[inline(always)]
    fn key_at<R: Rule>(members: &[Member], i: u32) -> Option<R::Key> {
        members.get(i as usize)?.key::<R>()
    }
}

fn members(dests: &Dests) -> Box<[Member]> {
    dests
        .weights
        .iter()
        .zip(dests.loads.iter())
        .map(|(&weight, load)| Member {
            weight,
            load: load.clone(),
        })
        .collect()
}

/// The kernel's O(n) scan: first available destination, replaced by any later one that strictly
/// beats it. The pick of small services, and the fallback of superseded trees.
pub(crate) fn linear_scan(metric: Metric, members: &[Member]) -> Option<usize> {
    with_rule!(metric, R => scan::<R>(members))
}

#[inline(always)]
fn scan<R: Rule>(members: &[Member]) -> Option<usize> {
    let mut rest = members.iter().enumerate();
    // The first available destination, then any later one that beats the least so far.
    let (mut least, mut y) = loop {
        let (i, m) = rest.next()?;
        if let Some(x) = m.key::<R>() {
            // nq: the first idle destination, whatever follows (its rule gives the same,
            // sooner).
            if R::FIRST_IDLE && R::idle(x) {
                return Some(i);
            }
            break (i, x);
        }
    };
    for (i, m) in rest {
        let Some(x) = m.key::<R>() else {
            continue;
        };
        if R::FIRST_IDLE && R::idle(x) {
            return Some(i);
        }
        if R::beats(x, y) {
            (least, y) = (i, x);
        }
    }
    Some(least)
}

/// The rule a scan over `members` can use for `metric` with the same choices: wlc over
/// destinations whose positive weights are all equal is lc (`loh * w > doh * w` is
/// `loh > doh`, and both skip weight 0), which saves two 128-bit products per destination
/// and pick. Equal weights are the common case (ipvsadm's default weight is 1).
fn scan_metric(metric: Metric, members: &[Member]) -> Metric {
    let mut weights = members.iter().map(|m| m.weight).filter(|&w| w > 0);
    let uniform = match weights.next() {
        Some(w) => weights.all(|v| v == w),
        None => true,
    };
    if metric == Metric::Wlc && uniform {
        Metric::Lc
    } else {
        metric
    }
}

/// Services with up to this many destinations are scanned per pick, as the kernel does, and
/// keep no tree: up to here n comparisons per new connection cost less than refreshing log2 n
/// tree nodes on each of its binds, state changes and unbinds (callgrind, `benches/bind_ir.rs`:
/// even near 56 for wlc), and much less once several workers bind at once, since every tree
/// walk writes the shared nodes up to the root while a scan only reads (`benches/contend.rs`,
/// 2 threads, wlc 64: scan ~235 ns per connection, tree ~260-350 ns).
pub(crate) const SCAN_MAX: usize = 64;

static NEXT_TREE_ID: AtomicU64 = AtomicU64::new(1);

/// The tree: `nodes[1..size]` are internal nodes (heap layout), leaves `size..2 * size` are
/// implicit (leaf `size + i` is member `i`; those past the members are padding).
pub(crate) struct LeastTree {
    id: u64,
    metric: Metric,
    /// The `load::TOUCHED_*` changes this tree's rule reads.
    reads: u8,
    members: Box<[Member]>,
    /// (version << 32) | winner index (NONE = no available destination below); `nodes[0]` is
    /// unused. Its length is the tree's size.
    nodes: Box<[AtomicU64]>,
}

/// What a [`DestLoad`] links to: one leaf of one tree.
pub(crate) struct TreeLeaf {
    tree: Arc<LeastTree>,
    index: u32,
}

impl TreeLeaf {
    /// Push a change of this leaf's destination up the tree, unless the tree's rule ignores
    /// what was `touched` (`load::TOUCHED_*`).
    #[inline]
    pub fn refresh(&self, touched: u8) {
        if touched & self.tree.reads != 0 {
            self.tree.update(self.index as usize);
        }
    }
}

impl LeastTree {
    #[inline(always)]
    fn winner_of(&self, node: usize) -> u32 {
        match self.nodes.get(node) {
            Some(n) => n.load(Acquire) as u32,
            None => (node - self.nodes.len()) as u32,
        }
    }

    #[inline(always)]
    fn better<R: Rule>(&self, l: u32, r: u32) -> u32 {
        match (
            Member::key_at::<R>(&self.members, l),
            Member::key_at::<R>(&self.members, r),
        ) {
            (Some(x), Some(y)) if R::beats(y, x) => r,
            (Some(_), _) => l,
            (None, Some(_)) => r,
            (None, None) => NONE,
        }
    }

    /// Recompute one internal node from its children; returns (old winner, new winner).
    #[inline(always)]
    fn recompute<R: Rule>(&self, node: usize) -> (u32, u32) {
        let slot = &self.nodes[node];
        loop {
            let cur = slot.load(Acquire);
            let w = self.better::<R>(self.winner_of(2 * node), self.winner_of(2 * node + 1));
            let new = (((cur >> 32) + 1) << 32) | w as u64;
            if slot
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
        with_rule!(self.metric, R => {
            let mut node = (self.nodes.len() + leaf) / 2;
            while node >= 1 {
                let (old, new) = self.recompute::<R>(node);
                if old == new && new != leaf as u32 {
                    return;
                }
                node /= 2;
            }
        })
    }

    fn recompute_all(&self) {
        with_rule!(self.metric, R => {
            for node in (1..self.nodes.len()).rev() {
                self.recompute::<R>(node);
            }
        })
    }

    fn root(&self) -> u32 {
        self.winner_of(1)
    }

    fn available(&self, i: u32) -> bool {
        self.members
            .get(i as usize)
            .is_some_and(|m| m.weight > 0 && !m.load.is_overloaded())
    }
}

/// A tree and its leaves as linked from the [`DestLoad`]s; unlinks on drop.
pub(crate) struct LinkedTree {
    tree: Arc<LeastTree>,
    leaves: Box<[Arc<TreeLeaf>]>,
}

impl LinkedTree {
    /// Build the tree over `members` and link it (newest tree wins the links).
    fn new(metric: Metric, members: Box<[Member]>) -> Self {
        let size = members.len().next_power_of_two().max(2);
        let n = members.len();
        let tree = Arc::new(LeastTree {
            id: NEXT_TREE_ID.fetch_add(1, Relaxed),
            metric,
            reads: with_rule!(metric, R => R::READS),
            members,
            nodes: (0..size).map(|_| AtomicU64::new(NONE as u64)).collect(),
        });
        let leaves = (0..n)
            .map(|i| {
                Arc::new(TreeLeaf {
                    tree: tree.clone(),
                    index: i as u32,
                })
            })
            .collect();
        let linked = LinkedTree { tree, leaves };
        linked.activate();
        linked
    }

    /// Link every destination to this tree unless a newer tree holds it, then recompute all
    /// nodes from the live counts. Returns false when superseded.
    fn activate(&self) -> bool {
        let id = self.tree.id;
        for (m, leaf) in self.tree.members.iter().zip(self.leaves.iter()) {
            let load = &m.load;
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
    fn pick(&self) -> Option<usize> {
        let t = &*self.tree;
        let first = t.members.first()?;
        let owner = first.load.tree_id.load(Relaxed);
        if owner != t.id && (owner > t.id || !self.activate()) {
            return linear_scan(t.metric, &t.members);
        }
        let w = t.root();
        if t.available(w) {
            Some(w as usize)
        } else {
            // Nothing available, or a change still propagating: let the scan decide.
            linear_scan(t.metric, &t.members)
        }
    }
}

impl Drop for LinkedTree {
    fn drop(&mut self) {
        let id = self.tree.id;
        for (m, leaf) in self.tree.members.iter().zip(self.leaves.iter()) {
            let cur = m.load.link.load();
            if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, leaf)) {
                m.load.link.compare_and_swap(&cur, None);
            }
            let _ = m.load.tree_id.compare_exchange(id, 0, Relaxed, Relaxed);
        }
    }
}

/// A scheduler's way to the metric's choice: a scan for small services, else a linked tree.
pub(crate) enum LeastPicker {
    /// Up to [`SCAN_MAX`] destinations: the kernel's scan per pick, nothing kept per bind
    /// (under the rule of [`scan_metric`]).
    Scan(Metric, Box<[Member]>),
    /// More: a tree that every load change refreshes, O(1) picks.
    Tree(LinkedTree),
}

impl LeastPicker {
    /// The picker for `dests` under `metric`.
    pub fn new(metric: Metric, dests: &Dests) -> Self {
        let members = members(dests);
        if members.len() <= SCAN_MAX {
            LeastPicker::Scan(scan_metric(metric, &members), members)
        } else {
            LeastPicker::Tree(LinkedTree::new(metric, members))
        }
    }

    /// The metric's choice (the kernel's).
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        match self {
            LeastPicker::Scan(metric, members) => linear_scan(*metric, members),
            LeastPicker::Tree(tree) => tree.pick(),
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
    fn small_services_scan_and_link_nothing() {
        let d = dests(SCAN_MAX);
        let p = LeastPicker::new(Metric::Wlc, &d);
        assert!(matches!(p, LeastPicker::Scan(..)));
        assert!(d.loads.iter().all(|l| l.tree_id.load(Relaxed) == 0));
        d.loads[0].bind(false);
        assert_eq!(p.pick(), Some(1));
        let d = dests(SCAN_MAX + 1);
        assert!(matches!(
            LeastPicker::new(Metric::Wlc, &d),
            LeastPicker::Tree(..)
        ));
    }

    #[test]
    fn newest_tree_owns_the_links_and_old_one_relinks_after_drop() {
        let d = dests(5);
        let old = LinkedTree::new(Metric::Wlc, members(&d));
        assert!(d
            .loads
            .iter()
            .all(|l| l.tree_id.load(Relaxed) == old.tree.id));
        let new = LinkedTree::new(Metric::Wlc, members(&d));
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

    /// wlc over equal positive weights (zeros mixed in) scans with lc's rule and picks what
    /// the wlc rule picks, through a fixed pseudo-random sequence of load changes; unequal
    /// weights keep the wlc rule.
    #[test]
    fn uniform_weight_wlc_scans_as_lc_with_the_same_picks() {
        let with_weights = |weights: &[u32]| {
            let specs: Vec<DestSpec> = weights
                .iter()
                .enumerate()
                .map(|(i, &weight)| DestSpec {
                    addr: std::net::IpAddr::from([10, 0, 0, i as u8]),
                    port: 80,
                    weight,
                    u_threshold: 0,
                    l_threshold: 0,
                })
                .collect();
            Dests::new(&specs, &new_loads(weights.len()))
        };
        let mixed = with_weights(&[1, 2, 1]);
        assert!(matches!(
            LeastPicker::new(Metric::Wlc, &mixed),
            LeastPicker::Scan(Metric::Wlc, _)
        ));
        assert!(matches!(
            LeastPicker::new(Metric::Sed, &with_weights(&[3, 3])),
            LeastPicker::Scan(Metric::Sed, _)
        ));
        let d = with_weights(&[0, 3, 3, 0, 3, 3, 3]);
        let p = LeastPicker::new(Metric::Wlc, &d);
        let LeastPicker::Scan(Metric::Lc, members) = &p else {
            panic!("uniform weights should scan with lc's rule");
        };
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut seen = [0u32; 7];
        for step in 0..2000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let l = &d.loads[(rng >> 8) as usize % 7];
            match rng % 6 {
                0 | 1 => l.bind(rng & 64 != 0),
                2 => l.unbind(rng & 64 != 0),
                3 => l.set_active(rng & 64 != 0, rng & 128 != 0),
                4 => l.set_thresholds((rng >> 16) as u32 % 40, 0),
                _ => {}
            }
            let want = linear_scan(Metric::Wlc, members);
            assert_eq!(p.pick(), want, "step {step}");
            if let Some(i) = want {
                seen[i] += 1;
            }
        }
        // Every weighted destination was chosen at some point, the quiesced ones never.
        assert_eq!((seen[0], seen[3]), (0, 0));
        assert!([1, 2, 4, 5, 6].iter().all(|&i| seen[i] > 0), "{seen:?}");
    }

    /// Trees of every small size (padding included) against the scan, through a fixed
    /// pseudo-random sequence of binds, unbinds, state changes and thresholds; the root itself
    /// is compared, so a stale node cannot hide behind the pick's fallback.
    #[test]
    fn tree_root_equals_scan_for_small_sizes() {
        for n in 1..=SCAN_MAX + 3 {
            for metric in [Metric::Lc, Metric::Wlc, Metric::Sed, Metric::Nq] {
                let specs: Vec<DestSpec> = (0..n)
                    .map(|i| DestSpec {
                        addr: std::net::IpAddr::from([10, 0, 0, i as u8]),
                        port: 80,
                        weight: (i as u32 * 7) % 4,
                        u_threshold: 0,
                        l_threshold: 0,
                    })
                    .collect();
                let d = Dests::new(&specs, &new_loads(n));
                let t = LinkedTree::new(metric, members(&d));
                let mut rng = 0x2545_F491_4F6C_DD1Du64 ^ n as u64;
                for step in 0..300 {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let l = &d.loads[(rng >> 8) as usize % n];
                    match rng % 8 {
                        0 | 1 => l.bind(rng & 64 != 0),
                        2 => l.unbind(rng & 64 != 0),
                        3 => l.set_active(rng & 64 != 0, rng & 128 != 0),
                        4 => l.set_thresholds((rng >> 16) as u32 % 5, (rng >> 24) as u32 % 3),
                        5 => l.bind_template(),
                        _ => l.unbind_template(),
                    }
                    let want = linear_scan(metric, &t.tree.members);
                    let root = t.tree.root();
                    assert_eq!(
                        (root != NONE).then_some(root as usize),
                        want,
                        "n={n} {metric:?} step {step}"
                    );
                }
            }
        }
    }
}
