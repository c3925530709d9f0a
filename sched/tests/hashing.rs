//! dh / sh / mh: bucket layouts, lookups by the kernel's formulas, fallback, Maglev balance
//! and minimal disruption.

mod common;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use common::{flow, flow_from, Service};
use sched::{bucket_table, SchedError, SchedParams};

/// hash_32 as include/linux/hash.h defines it.
fn hash_32(v: u32, bits: u32) -> u32 {
    v.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

fn v4(a: &IpAddr) -> u32 {
    match a {
        IpAddr::V4(a) => u32::from(*a),
        IpAddr::V6(_) => unreachable!(),
    }
}

fn params(name: &str, flag1: bool, flag2: bool) -> SchedParams {
    SchedParams {
        name: name.into(),
        flag1,
        flag2,
        ..Default::default()
    }
}

#[test]
fn dh_layout_cycles_the_list_and_ignores_weights() {
    let s = Service::with(&[(3, 5), (2, 1), (1, 9)]);
    let sch = s.build("dh", None);
    let t = bucket_table(&*sch).expect("dh table");
    assert_eq!(t.len(), 256);
    for (i, b) in t.iter().enumerate() {
        assert_eq!(*b, Some(i % 3), "bucket {i}");
    }
    for k in 0..200u32 {
        let mut f = flow(k);
        f.daddr = IpAddr::V4(Ipv4Addr::from(0xCB00_7100 + k)); // 203.0.113.x
        let want = hash_32(v4(&f.daddr), 8) as usize % 3;
        assert_eq!(sch.schedule(&f), Some(want), "flow {k}");
    }
}

#[test]
fn dh_quiesced_or_overloaded_bucket_gives_nothing() {
    let mut s = Service::with(&[(2, 1), (1, 1)]);
    let f = |d: u32| {
        let mut f = flow(0);
        f.daddr = IpAddr::V4(Ipv4Addr::from(d));
        f
    };
    // find one daddr per destination
    let a = (0..).find(|&d| hash_32(d, 8) % 2 == 1).unwrap(); // index 1 = A
    let b = (0..).find(|&d| hash_32(d, 8).is_multiple_of(2)).unwrap();
    s.edit(1, 0);
    let sch = s.build("dh", None);
    assert_eq!(sch.schedule(&f(a)), None);
    assert_eq!(sch.schedule(&f(b)), Some(0));
    s.load(2).set_thresholds(1, 0);
    s.load(2).bind(false);
    assert_eq!(sch.schedule(&f(b)), None);
}

#[test]
fn sh_layout_takes_weight_buckets_per_visit() {
    let s = Service::with(&[(3, 2), (2, 0), (1, 3)]); // list C(2) B(0) A(3): period 6
    let sch = s.build("sh", None);
    let t: Vec<usize> = bucket_table(&*sch)
        .unwrap()
        .into_iter()
        .map(|b| b.unwrap())
        .collect();
    let period = [0, 0, 1, 2, 2, 2];
    for (i, b) in t.iter().enumerate() {
        assert_eq!(*b, period[i % 6], "bucket {i}");
    }
    assert_eq!(&t[252..], &[0, 0, 1, 2]);
}

#[test]
fn sh_lookup_by_source_and_optionally_port() {
    let s = Service::with(&[(4, 1), (3, 1), (2, 1), (1, 1)]);
    let plain = s.build_with(&params("sh", false, false), None);
    let port = s.build_with(&params("sh", false, true), None);
    let t: Vec<usize> = bucket_table(&*plain)
        .unwrap()
        .into_iter()
        .map(|b| b.unwrap())
        .collect();
    for k in 0..300u32 {
        let f = flow(k);
        assert_eq!(
            plain.schedule(&f),
            Some(t[hash_32(v4(&f.saddr), 8) as usize])
        );
        let with_port = hash_32(v4(&f.saddr).wrapping_add(f.sport as u32), 8) as usize;
        assert_eq!(port.schedule(&f), Some(t[with_port]));
    }
    // IPv6 sources fold their four words
    let a: IpAddr = "2001:db8::17".parse().unwrap();
    assert_eq!(
        plain.schedule(&flow_from(a, 1)),
        Some(t[hash_32(0x2001_0db8 ^ 0x17, 8) as usize])
    );
}

#[test]
fn sh_fallback_probes_like_the_kernel() {
    let mut s = Service::with(&[(4, 1), (3, 1), (2, 1), (1, 1)]);
    s.edit(3, 0); // C quiesced
    let strict = s.build_with(&params("sh", false, false), None);
    let fallback = s.build_with(&params("sh", true, false), None);
    let t: Vec<usize> = bucket_table(&*strict)
        .unwrap()
        .into_iter()
        .map(|b| b.unwrap())
        .collect();
    let c = s.index(3);
    let mut landed_on_c = 0;
    for k in 0..500u32 {
        let f = flow(k);
        let ihash = hash_32(v4(&f.saddr), 8);
        if t[ihash as usize] == c {
            landed_on_c += 1;
            assert_eq!(strict.schedule(&f), None);
            let want = (0..256u32)
                .map(|off| t[(((off + ihash) % 256 + ihash) & 255) as usize])
                .find(|&d| d != c);
            assert_eq!(fallback.schedule(&f), want);
            assert_ne!(want, None);
        } else {
            assert_eq!(strict.schedule(&f), Some(t[ihash as usize]));
            assert_eq!(fallback.schedule(&f), Some(t[ihash as usize]));
        }
    }
    assert!(
        landed_on_c > 50,
        "test covers the fallback path ({landed_on_c})"
    );
}

fn slot_counts(t: &[Option<usize>]) -> HashMap<usize, usize> {
    let mut m = HashMap::new();
    for d in t.iter().flatten() {
        *m.entry(*d).or_default() += 1;
    }
    m
}

#[test]
fn mh_equal_weights_get_equal_slots() {
    let s = Service::with(&(1..=10).map(|i| (i, 1)).collect::<Vec<_>>());
    let sch = s.build("mh", None);
    let t = bucket_table(&*sch).unwrap();
    assert_eq!(t.len(), 4093);
    assert!(t.iter().all(|d| d.is_some()));
    for (d, n) in slot_counts(&t) {
        assert!(n == 409 || n == 410, "dest {d}: {n} slots");
    }
}

#[test]
fn mh_weighted_slots_follow_turns() {
    // weights 2, 4, 6: gcd 2 -> turns 1, 2, 3 per round
    let s = Service::with(&[(3, 2), (2, 4), (1, 6)]);
    let sch = s.build("mh", None);
    let counts = slot_counts(&bucket_table(&*sch).unwrap());
    for (i, turns) in [(0usize, 1usize), (1, 2), (2, 3)] {
        let ideal = 4093 * turns / 6;
        assert!(
            counts[&i].abs_diff(ideal) <= 3,
            "dest {i}: {} vs {ideal}",
            counts[&i]
        );
    }
    // large weights are shifted down: 1000 and 1 -> 1000 >> (fls(1000) - 6) = 62 turns vs 1
    let s = Service::with(&[(2, 1), (1, 1000)]);
    let counts = slot_counts(&bucket_table(&*s.build("mh", None)).unwrap());
    assert!(
        counts[&0].abs_diff(4093 / 63) <= 2,
        "light dest: {}",
        counts[&0]
    );
}

#[test]
fn mh_quiesced_dest_keeps_its_slots_with_and_without_fallback() {
    let mut s = Service::with(&(1..=8).map(|i| (i, 1)).collect::<Vec<_>>());
    let before = s.build("mh", None);
    let table_before = bucket_table(&*before).unwrap();
    s.edit(5, 0);
    let strict = s.build_with(&params("mh", false, false), Some(&*before));
    let fallback = s.build_with(&params("mh", true, false), None);
    assert_eq!(
        bucket_table(&*strict).unwrap(),
        table_before,
        "slots unchanged"
    );
    let q = s.index(5);
    let (mut on_q, mut moved_elsewhere) = (0, 0);
    for k in 0..4000u32 {
        let f = flow(k);
        let was = before.schedule(&f).unwrap();
        if was == q {
            on_q += 1;
            assert_eq!(strict.schedule(&f), None);
            let fb = fallback.schedule(&f).expect("fallback finds a dest");
            assert_ne!(fb, q);
        } else {
            assert_eq!(strict.schedule(&f), Some(was));
            if fallback.schedule(&f) != Some(was) {
                moved_elsewhere += 1;
            }
        }
    }
    assert!(on_q > 300, "{on_q}");
    assert_eq!(moved_elsewhere, 0, "other flows never move");
}

#[test]
fn mh_minimal_disruption_on_removal() {
    let n = 20u8;
    let mut s = Service::with(&(1..=n).map(|i| (i, 1)).collect::<Vec<_>>());
    let before = bucket_table(&*s.build("mh", None)).unwrap();
    let ids_before: Vec<u8> = before.iter().map(|d| s.id(d.unwrap())).collect();
    s.del(7);
    let after = bucket_table(&*s.build("mh", None)).unwrap();
    let ids_after: Vec<u8> = after.iter().map(|d| s.id(d.unwrap())).collect();
    let moved_other = ids_before
        .iter()
        .zip(&ids_after)
        .filter(|(b, a)| **b != 7 && b != a)
        .count();
    let owned_by_7 = ids_before.iter().filter(|&&b| b == 7).count();
    // slots of the removed dest must move; other slots barely (Maglev: a few percent)
    assert!(owned_by_7 >= 4093 / 20);
    let frac = moved_other as f64 / 4093.0;
    assert!(
        frac < 0.02,
        "{moved_other} other slots remapped ({frac:.4})"
    );
}

#[test]
fn mh_port_flag_and_table_sizes() {
    let s = Service::with(&(1..=16).map(|i| (i, 1)).collect::<Vec<_>>());
    let with_port = s.build_with(&params("mh", false, true), None);
    let without = s.build("mh", None);
    let a: IpAddr = "198.51.100.9".parse().unwrap();
    let by_port: std::collections::HashSet<_> = (0..64)
        .map(|p| with_port.schedule(&flow_from(a, 1000 + p)))
        .collect();
    let no_port: std::collections::HashSet<_> = (0..64)
        .map(|p| without.schedule(&flow_from(a, 1000 + p)))
        .collect();
    assert_eq!(no_port.len(), 1);
    assert!(by_port.len() > 8, "{}", by_port.len());

    let small = SchedParams {
        name: "mh".into(),
        mh_table_size: Some(251),
        ..Default::default()
    };
    assert_eq!(
        bucket_table(&*s.build_with(&small, None)).unwrap().len(),
        251
    );
    let bad = SchedParams {
        name: "mh".into(),
        mh_table_size: Some(1000),
        ..Default::default()
    };
    assert!(matches!(
        sched::build(&bad, &s.specs, &s.loads, None),
        Err(SchedError::InvalidParam(_))
    ));
    let many = Service::with(&(1..=255).map(|i| (i, 1)).collect::<Vec<_>>());
    assert!(matches!(
        sched::build(&small, &many.specs, &many.loads, None),
        Err(SchedError::InvalidParam(_))
    ));
}

#[test]
fn empty_services_give_nothing() {
    let s = Service::default();
    for name in sched::SCHEDULER_NAMES {
        let sch = s.build(name, None);
        assert_eq!(sch.schedule(&flow(1)), None, "{name}");
        assert_eq!(sch.name(), *name);
    }
    let err = sched::build(&params("nope", false, false), &[], &[], None)
        .err()
        .unwrap();
    assert_eq!(err, SchedError::UnknownScheduler("nope".into()));
    assert!(err.to_string().contains("rr, wrr, lc, wlc"));
}
