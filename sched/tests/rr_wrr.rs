//! Exact rr and wrr sequences, with add/edit/delete in between (kernel semantics).

mod common;
use common::{letters, Service};

#[test]
fn rr_walks_newest_first_and_keeps_cursor_across_add() {
    let mut s = Service::default();
    let mut sch = s.build("rr", None);
    assert_eq!(s.picks(&*sch, 1), vec![0], "no destination yet");
    for id in 1..=3 {
        s.add(id, 1);
        sch = s.build("rr", Some(&*sch));
    }
    // list C B A
    assert_eq!(letters(&s.picks(&*sch, 5)), "CBACB");
    // cursor on B; a new D at the head does not move it
    s.add(4, 1);
    sch = s.build("rr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 6)), "ADCBAD");
}

#[test]
fn rr_delete_of_cursor_moves_to_previous() {
    let mut s = Service::with(&[(4, 1), (3, 1), (2, 1), (1, 1)]); // list D C B A
    let mut sch = s.build("rr", None);
    assert_eq!(letters(&s.picks(&*sch, 3)), "DCB");
    s.del(2); // cursor was on B -> moves to C
    sch = s.build("rr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 4)), "ADCA");
    s.del(1); // cursor on A (last) -> previous is C
    sch = s.build("rr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 3)), "DCD");
}

#[test]
fn rr_skips_quiesced_and_overloaded() {
    let mut s = Service::with(&[(3, 1), (2, 0), (1, 1)]);
    let sch = s.build("rr", None);
    assert_eq!(letters(&s.picks(&*sch, 4)), "CACA");
    s.load(1).set_thresholds(1, 0);
    s.load(1).bind(false); // A reaches its upper threshold
    assert!(s.load(1).is_overloaded());
    assert_eq!(letters(&s.picks(&*sch, 3)), "CCC");
    s.load(3).set_thresholds(1, 0);
    s.load(3).bind(false);
    assert_eq!(letters(&s.picks(&*sch, 2)), "--");
    s.load(1).unbind(false);
    assert_eq!(letters(&s.picks(&*sch, 2)), "AA");
    s.edit(1, 0);
    let sch = s.build("rr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 1)), "-");
}

#[test]
fn wrr_reference_example_4_3_2() {
    // A=4, B=3, C=2 added in that order: list C B A, cw = 1 after the adds.
    let mut s = Service::default();
    let mut sch = s.build("wrr", None);
    for (id, w) in [(1, 4), (2, 3), (3, 2)] {
        s.add(id, w);
        sch = s.build("wrr", Some(&*sch));
    }
    let seq = letters(&s.picks(&*sch, 3 + 9 * 3));
    assert_eq!(&seq[..3], "CBA");
    for period in seq.as_bytes()[3..].chunks(9) {
        assert_eq!(std::str::from_utf8(period).unwrap(), "ABACBACBA");
    }
}

#[test]
fn wrr_built_at_once_starts_at_max_weight() {
    let s = Service::with(&[(3, 2), (2, 3), (1, 4)]); // list C B A built at once: cw = mw = 4
    let sch = s.build("wrr", None);
    assert_eq!(letters(&s.picks(&*sch, 18)), "ABACBACBAABACBACBA");
}

#[test]
fn wrr_gcd_2_with_edit_and_delete() {
    // list C(2) B(4) A(6): di = 2, mw = 5; levels 5, 3, 1.
    let mut s = Service::with(&[(3, 2), (2, 4), (1, 6)]);
    let mut sch = s.build("wrr", None);
    assert_eq!(letters(&s.picks(&*sch, 12)), "ABACBAABACBA");
    assert_eq!(letters(&s.picks(&*sch, 2)), "AB"); // cl = B, cw = 3
                                                   // edit A to 8: di = 2, mw = 7 (levels 7 5 3 1), cw = (3/2)*2+1 = 3, back to the head
    s.edit(1, 8);
    sch = s.build("wrr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 5 + 7 + 7)), "BACBAAABACBAAABACBA");
    // state: cl = A, cw = 1. Delete B: cw = (1/2)*2+1 = 1
    s.del(2);
    sch = s.build("wrr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 2 + 5 + 5)), "CAAAACAAAACA");
}

#[test]
fn wrr_cw_above_new_max_resets_to_mw() {
    let mut s = Service::with(&[(2, 1), (1, 5)]); // list B(1) A(5): mw = 5
    let mut sch = s.build("wrr", None);
    assert_eq!(letters(&s.picks(&*sch, 1)), "A"); // cw = 5
    s.edit(1, 2); // mw = 2 < cw -> cw = 2
    sch = s.build("wrr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 6)), "ABAABA");
}

#[test]
fn wrr_overload_and_all_quiesced() {
    let mut s = Service::with(&[(2, 1), (1, 3)]);
    let sch = s.build("wrr", None);
    s.load(1).set_thresholds(1, 0);
    s.load(1).bind(true);
    assert_eq!(letters(&s.picks(&*sch, 3)), "BBB");
    s.load(2).set_thresholds(1, 0);
    s.load(2).bind(true);
    assert_eq!(letters(&s.picks(&*sch, 2)), "--");
    s.load(2).unbind(true);
    assert_eq!(letters(&s.picks(&*sch, 2)), "BB");
    s.edit(1, 0);
    s.edit(2, 0);
    let sch = s.build("wrr", Some(&*sch));
    assert_eq!(letters(&s.picks(&*sch, 2)), "--");
}

#[test]
fn wrr_rebuild_without_change_keeps_position() {
    let s = Service::with(&[(3, 2), (2, 3), (1, 4)]);
    let sch = s.build("wrr", None);
    assert_eq!(letters(&s.picks(&*sch, 4)), "ABAC");
    let sch = s.build("wrr", Some(&*sch)); // e.g. another service was edited
    assert_eq!(letters(&s.picks(&*sch, 5)), "BACBA");
    let rr = s.build("rr", None);
    assert_eq!(letters(&s.picks(&*rr, 2)), "CB");
    let rr = s.build("rr", Some(&*rr));
    assert_eq!(letters(&s.picks(&*rr, 2)), "AC");
}
