//! Destination loads kept in per-writer shares (`claim_writer_slot`): counts are the sums of
//! the shares, exact under concurrent writers, never below zero, and the thresholds see them.

use std::sync::Arc;

use sched::{claim_writer_slot, release_writer_slot, DestLoad};

/// Runs `f` on a new thread that claimed writer slot `slot` (or none).
fn on_thread(slot: Option<usize>, f: impl FnOnce() + Send) {
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(w) = slot {
                claim_writer_slot(w);
            }
            f();
            release_writer_slot();
        });
    });
}

#[test]
fn every_thread_reads_the_sum_of_the_writers_shares() {
    let load = DestLoad::with_writers(2);
    on_thread(Some(0), || {
        for _ in 0..3 {
            load.bind(true);
        }
        load.bind(false);
        load.bind(false);
    });
    on_thread(Some(1), || {
        load.bind(false);
        load.set_active(false, true);
        load.bind(false);
    });
    // An unclaimed thread (share 0) unbinds what it bound.
    on_thread(None, || {
        load.bind(true);
        load.unbind(true);
    });
    assert_eq!(load.counts(), (4, 3));
    assert_eq!((load.active(), load.inactive()), (4, 3));
    on_thread(Some(0), || {
        load.unbind(true);
        load.unbind(false);
    });
    assert_eq!(load.counts(), (3, 2));
}

#[test]
fn concurrent_writers_lose_no_update() {
    const N: u32 = 200_000;
    for claimed in [true, false] {
        let load = Arc::new(DestLoad::with_writers(2));
        std::thread::scope(|s| {
            for w in 0..2 {
                let load = &load;
                s.spawn(move || {
                    if claimed {
                        claim_writer_slot(w);
                    }
                    // Every connection but the last 10 of each thread is unbound again.
                    for k in 0..N {
                        load.bind(false);
                        load.set_active(false, true);
                        if k >= 10 {
                            load.unbind(true);
                        }
                    }
                    release_writer_slot();
                });
            }
        });
        assert_eq!(load.counts(), (20, 0), "claimed slots: {claimed}");
    }
}

#[test]
fn a_share_never_goes_below_zero() {
    let load = DestLoad::with_writers(1);
    on_thread(Some(0), || {
        // Stray unbinds and state changes (no connection counted): nothing to take.
        load.unbind(true);
        load.unbind(false);
        load.set_active(true, false);
        assert_eq!(load.counts(), (0, 1));
        load.bind(true);
        assert_eq!(load.counts(), (1, 1));
    });
    let shared = DestLoad::new();
    shared.unbind(false);
    shared.bind(false);
    assert_eq!(shared.counts(), (0, 1));
}

#[test]
fn a_writer_slot_without_a_share_writes_share_0() {
    let load = DestLoad::with_writers(1);
    on_thread(Some(5), || {
        load.bind(true);
        load.bind(false);
    });
    on_thread(Some(0), || load.bind(true));
    assert_eq!(load.counts(), (2, 1));
}

#[test]
fn thresholds_see_the_total_of_all_shares() {
    let load = DestLoad::with_writers(2);
    load.set_thresholds(3, 1);
    on_thread(Some(0), || {
        load.bind(false);
        load.bind(true);
    });
    assert!(!load.is_overloaded());
    // The third connection, bound through another share, reaches u_threshold.
    on_thread(Some(1), || load.bind(false));
    assert!(load.is_overloaded());
    // Cleared below l_threshold (1): at 0 connections, whichever shares they were in.
    on_thread(Some(1), || load.unbind(false));
    assert!(load.is_overloaded());
    on_thread(Some(0), || {
        load.unbind(true);
        load.unbind(false);
    });
    assert!(!load.is_overloaded());
    assert_eq!(load.counts(), (0, 0));
}

#[test]
fn a_writer_in_an_epoch_sees_its_own_binds_at_once_and_the_others_from_its_epoch_start() {
    let load = Arc::new(DestLoad::with_writers(2));
    std::thread::scope(|s| {
        let (to_a, from_main) = std::sync::mpsc::channel::<()>();
        let (to_main, from_a) = std::sync::mpsc::channel::<(u32, u32)>();
        let a = {
            let load = &load;
            s.spawn(move || {
                claim_writer_slot(0);
                sched::new_epoch();
                load.bind(false);
                to_main.send(load.counts()).unwrap();
                // Writer 1 binds meanwhile: not in this epoch's view...
                from_main.recv().unwrap();
                load.bind(true);
                to_main.send(load.counts()).unwrap();
                // ...but in the next one's.
                sched::new_epoch();
                to_main.send(load.counts()).unwrap();
                release_writer_slot();
            })
        };
        assert_eq!(from_a.recv().unwrap(), (0, 1));
        on_thread(Some(1), || {
            load.bind(true);
            load.bind(true);
        });
        // Every share, read by a thread without a slot.
        assert_eq!(load.counts(), (2, 1));
        to_a.send(()).unwrap();
        assert_eq!(from_a.recv().unwrap(), (1, 1));
        assert_eq!(from_a.recv().unwrap(), (3, 1));
        a.join().unwrap();
    });
}

#[test]
fn thresholds_read_every_share_within_an_epoch() {
    let load = DestLoad::with_writers(2);
    load.set_thresholds(3, 0);
    on_thread(Some(1), || {
        load.bind(false);
        load.bind(false);
    });
    on_thread(Some(0), || {
        sched::new_epoch();
        // The third connection reaches u_threshold, counted over every share (this thread's
        // picks would see writer 1's two only from its next epoch on).
        load.bind(false);
        assert!(load.is_overloaded());
    });
}

#[test]
fn persistence_templates_are_counted_in_shares_too() {
    let load = DestLoad::with_writers(2);
    on_thread(Some(0), || {
        load.bind_template();
        load.bind_template();
    });
    on_thread(Some(1), || load.bind_template());
    on_thread(None, || load.bind_template());
    assert_eq!(load.persistent(), 4);
    on_thread(Some(1), || {
        load.unbind_template();
        // A stray unbind leaves this share at zero.
        load.unbind_template();
    });
    assert_eq!(load.persistent(), 3);
    // Templates count for nothing else.
    assert_eq!(load.counts(), (0, 0));
}
