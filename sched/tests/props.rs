//! Properties over all schedulers: never a quiesced or OVERLOADed destination, None exactly
//! when nothing is available (for the non-hashing ones), wrr shares, mh balance.

mod common;
use common::{flow, Service};
use proptest::prelude::*;
use sched::{SchedParams, SCHEDULER_NAMES};

/// Hashing schedulers may give None while something is available (the flow's bucket is not).
const HASHING: &[&str] = &["dh", "sh", "mh"];

fn service(weights: &[u32], overloaded: &[bool]) -> Service {
    let s = Service::with(
        &weights
            .iter()
            .enumerate()
            .map(|(i, &w)| (i as u8 + 1, w))
            .collect::<Vec<_>>(),
    );
    for (l, &o) in s.loads.iter().zip(overloaded) {
        if o {
            l.set_thresholds(1, 0);
            l.bind(false);
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn never_quiesced_or_overloaded(
        weights in proptest::collection::vec(0u32..4, 0..24),
        overloaded in proptest::collection::vec(any::<bool>(), 24),
        fallback in any::<bool>(),
        port in any::<bool>(),
    ) {
        let s = service(&weights, &overloaded);
        let w: Vec<u32> = s.specs.iter().map(|d| d.weight).collect();
        let available = |i: usize| w[i] > 0 && !s.loads[i].is_overloaded();
        let any_available = (0..w.len()).any(available);
        for name in SCHEDULER_NAMES {
            let p = SchedParams { name: (*name).into(), flag1: fallback, flag2: port, ..Default::default() };
            let sch = s.build_with(&p, None);
            for k in 0..40 {
                match sch.schedule(&flow(k)) {
                    Some(i) => prop_assert!(available(i), "{} chose {} ({:?})", name, i, w),
                    None => prop_assert!(!any_available || HASHING.contains(name), "{} gave None", name),
                }
            }
            if !any_available {
                prop_assert_eq!(sch.schedule(&flow(99)), None, "{}", name);
            }
        }
    }

    /// Over whole periods wrr's shares are the weight shares; over a long run within 1%.
    #[test]
    fn wrr_long_run_share(weights in proptest::collection::vec(1u32..20, 1..12)) {
        let s = service(&weights, &[]);
        let sch = s.build("wrr", None);
        let total: u32 = weights.iter().sum();
        let runs = 20_000usize;
        let mut counts = vec![0usize; weights.len()];
        for k in 0..runs {
            counts[sch.schedule(&flow(k as u32)).unwrap()] += 1;
        }
        for (i, c) in counts.iter().enumerate() {
            let share = *c as f64 / runs as f64;
            let want = s.specs[i].weight as f64 / total as f64;
            prop_assert!((share - want).abs() < 0.01, "dest {}: {} vs {}", i, share, want);
        }
    }

    /// mh: every dest gets its turns' share of the table, off by at most one round's turns.
    #[test]
    fn mh_balance(weights in proptest::collection::vec(1u32..8, 1..40)) {
        let s = service(&weights, &[]);
        let t = sched::bucket_table(&*s.build("mh", None)).unwrap();
        let g = s.specs.iter().map(|d| d.weight).fold(0, gcd);
        let turns: Vec<u32> = s.specs.iter().map(|d| d.weight / g).collect();
        let sum: u32 = turns.iter().sum();
        for (i, &tu) in turns.iter().enumerate() {
            let got = t.iter().filter(|d| **d == Some(i)).count() as f64;
            let ideal = 4093.0 * tu as f64 / sum as f64;
            prop_assert!((got - ideal).abs() <= tu as f64 + 1.0, "dest {}: {} vs {}", i, got, ideal);
        }
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Weights far beyond ipvsadm's 65535 and big counts must not overflow (debug builds panic on
/// overflow) in any scheduler.
#[test]
fn huge_weights_and_counts_do_not_overflow() {
    let s = service(&[u32::MAX, 1, u32::MAX - 1, 65536], &[]);
    for _ in 0..300 {
        s.loads[0].bind(true);
        s.loads[2].bind(false);
    }
    for name in SCHEDULER_NAMES {
        let sch = s.build(name, None);
        for k in 0..50 {
            let pick = sch.schedule(&flow(k));
            assert!(
                pick.is_some() || ["dh", "sh", "mh"].contains(name),
                "{name}"
            );
        }
    }
}
