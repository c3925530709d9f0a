//! fo, ovf, twos, lblc, lblcr, and DestLoad's threshold rules.

mod common;
use std::net::{IpAddr, Ipv4Addr};

use common::{flow, letters, Service};
use sched::DestLoad;

fn to(daddr: u32) -> sched::FlowInfo {
    let mut f = flow(daddr);
    f.daddr = IpAddr::V4(Ipv4Addr::from(daddr));
    f
}

#[test]
fn fo_highest_weight_ties_to_first_then_fails_over() {
    let s = Service::with(&[(4, 2), (3, 5), (2, 5), (1, 0)]); // D2 C5 B5 A0
    let sch = s.build("fo", None);
    assert_eq!(letters(&s.picks(&*sch, 2)), "CC");
    s.load(3).set_thresholds(1, 0);
    s.load(3).bind(true);
    assert_eq!(letters(&s.picks(&*sch, 1)), "B");
    s.load(2).set_thresholds(1, 0);
    s.load(2).bind(true);
    assert_eq!(letters(&s.picks(&*sch, 1)), "D");
    s.load(4).set_thresholds(1, 0);
    s.load(4).bind(true);
    assert_eq!(letters(&s.picks(&*sch, 1)), "-");
}

#[test]
fn ovf_overflows_when_active_exceeds_weight() {
    let s = Service::with(&[(3, 1), (2, 2), (1, 2)]); // C1 B2 A2
    let sch = s.build("ovf", None);
    assert_eq!(letters(&s.picks(&*sch, 1)), "B");
    s.load(2).bind(true);
    s.load(2).bind(true); // B active 2 = weight: still ok
    assert_eq!(letters(&s.picks(&*sch, 1)), "B");
    s.load(2).bind(true); // 3 > 2
    assert_eq!(letters(&s.picks(&*sch, 1)), "A");
    for _ in 0..5 {
        s.load(1).bind(false); // inactive conns do not count
    }
    assert_eq!(letters(&s.picks(&*sch, 1)), "A");
    for _ in 0..3 {
        s.load(1).bind(true);
    }
    assert_eq!(letters(&s.picks(&*sch, 1)), "C");
    s.load(3).bind(true);
    s.load(3).bind(true);
    assert_eq!(letters(&s.picks(&*sch, 1)), "-");
}

#[test]
fn twos_prefers_the_less_loaded_of_two_weighted_samples() {
    let s = Service::with(&[(3, 1), (2, 1), (1, 2)]);
    let sch = s.build("twos", None);
    let mut counts = [0usize; 3];
    for k in 0..4000 {
        counts[sch.schedule(&flow(k)).expect("dest")] += 1;
    }
    assert!(counts.iter().all(|&c| c > 400), "{counts:?}");
    // a heavily loaded destination is chosen only when both samples hit it
    for _ in 0..100 {
        s.load(1).bind(true);
    }
    let hits_a = (0..4000)
        .filter(|&k| sch.schedule(&flow(k)) == Some(s.index(1)))
        .count();
    // List order (newest first) is [3 (w1), 2 (w1), 1 = A (w2)], T = 1 + 1 + 2 + 1 = 5 and
    // r in 0..5 walks to A for r = 3, 4: P(sample = A) = 2/5, P(both) = 4/25, so over 4000
    // picks 640 expected, sigma ~ 23: the bounds are ~ +-4.5 sigma (random samples).
    assert!(hits_a > 535 && hits_a < 745, "{hits_a}");
    s.load(1).set_thresholds(1, 0);
    s.load(1).bind(true);
    assert!((0..500).all(|k| sch.schedule(&flow(k)) != Some(s.index(1))));
}

#[test]
fn thresholds_set_and_clear_like_the_kernel() {
    let l = DestLoad::new();
    l.set_thresholds(4, 0);
    for _ in 0..3 {
        l.bind(false);
    }
    assert!(!l.is_overloaded());
    l.bind(true); // total 4 >= 4
    assert!(l.is_overloaded());
    l.bind_template(); // templates do not count, flag stays
    assert_eq!((l.active(), l.inactive(), l.persistent()), (1, 3, 1));
    l.unbind(false); // 3*4 = 12 < 4*3 = 12? no -> stays
    assert!(l.is_overloaded());
    l.unbind(false); // 2*4 = 8 < 12 -> cleared
    assert!(!l.is_overloaded());

    let l = DestLoad::new();
    l.set_thresholds(3, 2);
    for _ in 0..3 {
        l.bind(true);
    }
    assert!(l.is_overloaded());
    l.unbind(true); // 2 < 2? no
    assert!(l.is_overloaded());
    l.unbind(true); // 1 < 2
    assert!(!l.is_overloaded());

    // -e: raising the upper threshold or removing it clears; lowering does not
    let l = DestLoad::new();
    l.set_thresholds(2, 0);
    l.bind(true);
    l.bind(true);
    assert!(l.is_overloaded());
    l.set_thresholds(1, 0);
    assert!(l.is_overloaded());
    l.set_thresholds(5, 0);
    assert!(!l.is_overloaded());
    // no thresholds: any unbind clears
    l.set_thresholds(2, 0);
    l.bind(true);
    assert!(l.is_overloaded());
    l.set_thresholds(0, 0);
    assert!(!l.is_overloaded());
    // saturating counters, crossing the active line
    l.unbind(false);
    assert_eq!(l.inactive(), 0);
    l.set_active(true, false);
    assert_eq!((l.active(), l.inactive()), (2, 1));
}

#[test]
fn lblc_keeps_locality_until_the_cached_dest_is_busy() {
    let s = Service::with(&[(3, 2), (2, 2), (1, 2)]);
    let sch = s.build("lblc", None);
    let d1 = sch.schedule(&to(0xCB00_7101)).unwrap();
    assert_eq!(d1, 0, "wlc choice on a miss (all idle: first)");
    s.loads[d1].bind(true);
    // same destination IP sticks even though others are now less loaded
    assert_eq!(sch.schedule(&to(0xCB00_7101)), Some(d1));
    // another destination IP gets the wlc choice
    let d2 = sch.schedule(&to(0xCB00_7102)).unwrap();
    assert_ne!(d2, d1);
    // busy: active (3) > weight (2) while another is below half its weight -> rescheduled
    s.loads[d1].bind(true);
    s.loads[d1].bind(true);
    let again = sch.schedule(&to(0xCB00_7101)).unwrap();
    assert_ne!(again, d1);
    assert_eq!(
        sch.schedule(&to(0xCB00_7101)),
        Some(again),
        "new choice cached"
    );
    // quiesce the cached dest: a rebuild keeps the cache, the entry gets rescheduled
    let mut s2 = s.clone();
    let cached_id = s2.id(again);
    s2.edit(cached_id, 0);
    let sch2 = s2.build("lblc", Some(&*sch));
    assert_ne!(sch2.schedule(&to(0xCB00_7101)), Some(again));
    // rebuild with an unchanged list: locality survives
    let sch3 = s.build("lblc", Some(&*sch));
    assert_eq!(sch3.schedule(&to(0xCB00_7102)), Some(d2));
}

#[test]
fn lblcr_grows_a_set_when_its_members_are_busy() {
    let s = Service::with(&[(3, 1), (2, 1), (1, 1)]);
    let sch = s.build("lblcr", None);
    let vip = to(0xCB00_7105);
    let first = sch.schedule(&vip).unwrap();
    s.loads[first].bind(true);
    assert_eq!(sch.schedule(&vip), Some(first), "set member reused");
    s.loads[first].bind(true); // active 2 > weight 1, others idle -> busy
    let second = sch.schedule(&vip).unwrap();
    assert_ne!(second, first);
    // now the set is {second, first}: its least loaded member is used
    assert_eq!(sch.schedule(&vip), Some(second));
    s.loads[second].bind(true);
    s.loads[second].bind(true);
    s.loads[second].bind(true); // second busier than first
    let third = sch.schedule(&vip).unwrap();
    assert!(
        third != first && third != second,
        "both members busy -> a third joins"
    );
    // OVERLOADed members are never used: only `first` is left, and it is not busy any more
    // (no destination is below half its weight)
    for (i, l) in s.loads.iter().enumerate() {
        if i != first {
            l.set_thresholds(1, 0);
            l.bind(true);
            assert!(l.is_overloaded());
        }
    }
    assert_eq!(sch.schedule(&vip), Some(first));
    s.loads[first].set_thresholds(1, 0);
    s.loads[first].bind(true);
    assert_eq!(sch.schedule(&vip), None);
}
