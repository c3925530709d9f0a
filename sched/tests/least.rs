//! lc / wlc / sed / nq: tie-breaking, equality with the kernel's linear scan under random
//! load changes, cross-thread visibility, and tree hand-over between scheduler generations.

mod common;
use common::{flow, letters, Service};
use proptest::prelude::*;
use sched::{DestLoad, Scheduler};

/// The kernel's scans, written out plainly (reference model).
fn kernel_pick(name: &str, weights: &[u32], loads: &[&DestLoad]) -> Option<usize> {
    let oh = |i: usize| ((loads[i].active() as u64) << 8) + loads[i].inactive() as u64;
    let sed_oh = |i: usize| loads[i].active() as u64 + 1;
    let mut least: Option<usize> = None;
    for i in 0..weights.len() {
        if loads[i].is_overloaded() || weights[i] == 0 {
            continue;
        }
        if name == "nq" && loads[i].active() == 0 {
            return Some(i);
        }
        let better = match least {
            None => true,
            Some(l) => match name {
                "lc" => oh(i) < oh(l),
                "wlc" => oh(l) * weights[i] as u64 > oh(i) * weights[l] as u64,
                _ => sed_oh(l) * weights[i] as u64 > sed_oh(i) * weights[l] as u64,
            },
        };
        if better {
            least = Some(i);
        }
    }
    least
}

fn pick(s: &Service, sch: &dyn Scheduler) -> String {
    letters(&s.picks(sch, 1))
}

#[test]
fn lc_ties_go_to_the_newest_and_counts_weigh_256_to_1() {
    let s = Service::with(&[(3, 1), (2, 5), (1, 1)]); // list C B A
    let sch = s.build("lc", None);
    assert_eq!(pick(&s, &*sch), "C");
    s.load(3).bind(false); // C: 1
    assert_eq!(pick(&s, &*sch), "B");
    s.load(2).bind(true); // B: 256
    assert_eq!(pick(&s, &*sch), "A");
    for _ in 0..255 {
        s.load(1).bind(false);
    } // A: 255 < B 256, C 1
    assert_eq!(pick(&s, &*sch), "C");
    for _ in 0..255 {
        s.load(3).bind(false);
    } // C: 256 = B: tie -> earlier (C)
    assert_eq!(pick(&s, &*sch), "A");
    s.load(1).bind(false); // A: 256: three-way tie -> C
    assert_eq!(pick(&s, &*sch), "C");
}

#[test]
fn wlc_compares_overhead_per_weight_ties_to_earlier() {
    let s = Service::with(&[(3, 1), (2, 2), (1, 3)]);
    let sch = s.build("wlc", None);
    assert_eq!(pick(&s, &*sch), "C"); // all 0
    s.load(3).bind(false); // C 1/1
    assert_eq!(pick(&s, &*sch), "B");
    s.load(2).bind(false);
    s.load(2).bind(false); // B 2/2 = C 1/1
    assert_eq!(pick(&s, &*sch), "A");
    for _ in 0..3 {
        s.load(1).bind(false);
    } // A 3/3: all equal -> C
    assert_eq!(pick(&s, &*sch), "C");
    s.load(3).set_active(false, true); // C 256/1
    assert_eq!(pick(&s, &*sch), "B");
}

#[test]
fn sed_counts_active_plus_one() {
    let s = Service::with(&[(3, 1), (2, 3)]); // C w1, B w3
    let sch = s.build("sed", None);
    assert_eq!(pick(&s, &*sch), "B"); // C 1/1 > B 1/3
    s.load(2).bind(true);
    s.load(2).bind(true); // B 3/3 = C 1/1 -> C
    assert_eq!(pick(&s, &*sch), "C");
    for _ in 0..10 {
        s.load(3).bind(false); // inactive ignored by sed
    }
    assert_eq!(pick(&s, &*sch), "C");
}

#[test]
fn nq_prefers_first_idle_else_sed() {
    let s = Service::with(&[(3, 1), (2, 1), (1, 10)]);
    let sch = s.build("nq", None);
    assert_eq!(pick(&s, &*sch), "C");
    s.load(3).bind(true);
    assert_eq!(pick(&s, &*sch), "B"); // first idle, though A has a bigger weight
    s.load(2).bind(true);
    assert_eq!(pick(&s, &*sch), "A");
    s.load(1).bind(true); // none idle: sed C 2/1, B 2/1, A 2/10 -> A
    assert_eq!(pick(&s, &*sch), "A");
    s.load(3).unbind(true); // C idle again
    assert_eq!(pick(&s, &*sch), "C");
}

#[test]
fn worker_a_binds_worker_b_avoids() {
    // 20 destinations are scanned, 80 have a tree
    for (n, name) in [20u8, 80]
        .into_iter()
        .flat_map(|n| ["lc", "wlc", "sed", "nq"].map(|name| (n, name)))
    {
        let s = Service::with(&(1..=n).map(|i| (i, 1)).collect::<Vec<_>>());
        let sch = s.build(name, None);
        let first = sch.schedule(&flow(0)).expect("dest");
        std::thread::scope(|sc| {
            // worker A: the chosen destination gets busy
            sc.spawn(|| {
                for _ in 0..3 {
                    s.loads[first].bind(true);
                }
            })
            .join()
            .expect("worker A");
            // worker B: its next pick avoids it
            let b = sc
                .spawn(|| sch.schedule(&flow(1)))
                .join()
                .expect("worker B");
            assert_ne!(b, Some(first), "{name} n={n}");
            assert_eq!(
                b,
                kernel_pick(
                    name,
                    &vec![1; n as usize],
                    &s.loads.iter().map(|l| &**l).collect::<Vec<_>>()
                )
            );
        });
        for _ in 0..3 {
            s.loads[first].unbind(true);
        }
    }
}

/// Old and new generations of one service stay exact while both are alive, and the old one
/// after the new one is dropped: with 4 destinations (scanned) and 80 (a tree each, the old one
/// superseded, then relinked).
#[test]
fn superseded_scheduler_stays_exact_and_relinks_after_drop() {
    for n in [4u8, 80] {
        let s = Service::with(&(1..=n).map(|i| (i, 1 + i as u32 % 4)).collect::<Vec<_>>());
        let loads: Vec<&DestLoad> = s.loads.iter().map(|l| &**l).collect();
        let weights: Vec<u32> = s.specs.iter().map(|d| d.weight).collect();
        let old = s.build("wlc", None);
        let new = s.build("wlc", Some(&*old));
        for (k, i) in [0usize, 1, 1, 3, 2, 2, 0].into_iter().enumerate() {
            s.loads[i].bind(k % 2 == 0);
            let want = kernel_pick("wlc", &weights, &loads);
            assert_eq!(
                old.schedule(&flow(0)),
                want,
                "n={n} old generation, step {k}"
            );
            assert_eq!(
                new.schedule(&flow(0)),
                want,
                "n={n} new generation, step {k}"
            );
        }
        drop(new);
        for (k, i) in [3usize, 3, 0, 1, 2, 1].into_iter().enumerate() {
            s.loads[i].unbind(k % 2 == 0);
            assert_eq!(
                old.schedule(&flow(0)),
                kernel_pick("wlc", &weights, &loads),
                "n={n} after drop, step {k}"
            );
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Bind(usize, bool),
    Unbind(usize, bool),
    Cross(usize, bool),
    Thresholds(usize, u32, u32),
    Template(usize, bool),
}

fn op(n: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..n, any::<bool>()).prop_map(|(i, a)| Op::Bind(i, a)),
        2 => (0..n, any::<bool>()).prop_map(|(i, a)| Op::Unbind(i, a)),
        2 => (0..n, any::<bool>()).prop_map(|(i, a)| Op::Cross(i, a)),
        1 => (0..n, 0u32..6, 0u32..4).prop_map(|(i, u, l)| Op::Thresholds(i, u, l.min(u))),
        1 => (0..n, any::<bool>()).prop_map(|(i, b)| Op::Template(i, b)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Picks (a scan up to 64 destinations, the O(1) tree above) always return what the
    /// kernel's scan would, after any sequence of load changes, for sizes that exercise
    /// padding in the tree.
    #[test]
    fn tree_equals_kernel_scan(
        weights in proptest::collection::vec(0u32..5, 1..90),
        ops in proptest::collection::vec(op(90), 1..120),
        name in prop::sample::select(vec!["lc", "wlc", "sed", "nq"]),
    ) {
        let s = Service::with(&weights.iter().enumerate().map(|(i, &w)| (i as u8 + 1, w)).collect::<Vec<_>>());
        let w: Vec<u32> = s.specs.iter().map(|d| d.weight).collect();
        let loads: Vec<&DestLoad> = s.loads.iter().map(|l| &**l).collect();
        let sch = s.build(name, None);
        let n = w.len();
        for o in ops {
            match o {
                Op::Bind(i, a) => loads[i % n].bind(a),
                Op::Unbind(i, a) => loads[i % n].unbind(a),
                Op::Cross(i, a) => loads[i % n].set_active(!a, a),
                Op::Thresholds(i, u, l) => loads[i % n].set_thresholds(u, l),
                Op::Template(i, true) => loads[i % n].bind_template(),
                Op::Template(i, false) => loads[i % n].unbind_template(),
            }
            prop_assert_eq!(sch.schedule(&flow(0)), kernel_pick(name, &w, &loads));
        }
    }
}

/// Four threads bind/unbind/cross concurrently (each only unbinds what it bound); afterwards the
/// lock-free tree must agree with the kernel's scan, and every pick along the way must be an
/// available destination.
#[test]
fn concurrent_updates_leave_an_exact_tree() {
    let weights: Vec<(u8, u32)> = (1..=80).map(|i| (i, 1 + (i as u32 % 3))).collect();
    let s = Service::with(&weights);
    for i in [3usize, 17, 40] {
        s.loads[i].set_thresholds(40, 10);
    }
    let w: Vec<u32> = s.specs.iter().map(|d| d.weight).collect();
    for name in ["lc", "wlc", "sed", "nq"] {
        let sch = s.build(name, None);
        std::thread::scope(|sc| {
            for t in 0..4u64 {
                let (s, sch, w) = (&s, &sch, &w);
                sc.spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                    let mut mine: Vec<(usize, bool)> = Vec::new();
                    for _ in 0..20_000 {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        match rng % 4 {
                            0 | 1 => {
                                if let Some(i) = sch.schedule(&flow(0)) {
                                    assert!(w[i] > 0, "quiesced pick");
                                    let active = rng & 16 != 0;
                                    s.loads[i].bind(active);
                                    mine.push((i, active));
                                }
                            }
                            2 => {
                                if let Some((i, a)) = mine.pop() {
                                    s.loads[i].unbind(a);
                                }
                            }
                            _ => {
                                if let Some(c) = mine.last_mut() {
                                    s.loads[c.0].set_active(c.1, !c.1);
                                    c.1 = !c.1;
                                }
                            }
                        }
                    }
                });
            }
        });
        let loads: Vec<&DestLoad> = s.loads.iter().map(|l| &**l).collect();
        assert_eq!(
            sch.schedule(&flow(0)),
            kernel_pick(name, &w, &loads),
            "{name}"
        );
        // drain everything: all counts back to 0, still exact
        for l in &s.loads {
            while l.active() > 0 {
                l.unbind(true);
            }
            while l.inactive() > 0 {
                l.unbind(false);
            }
        }
        assert_eq!(
            sch.schedule(&flow(0)),
            kernel_pick(name, &w, &loads),
            "{name} drained"
        );
    }
}
