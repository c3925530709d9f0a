//! Error paths once the EAL is up (own process): missing devices, bad names, duplicates,
//! ownership conflicts. None of them may panic or abort.

use std::sync::Arc;

use director::dpdk::{eal, DpdkError, MbufRing, Mempool, Port, PortConf};

fn setup() {
    eal::test_init().expect("EAL test init");
}

#[test]
fn init_twice_is_ok_and_tsc_runs() {
    setup();
    // A second init, even with other arguments, reports the EAL as up.
    eal::init(&["other".to_string(), "--bogus".to_string()]).expect("already initialised");
    assert!(eal::is_initialised());
    assert!(director::dpdk::tsc_hz() > 0);
    let t0 = director::dpdk::tsc();
    let t1 = director::dpdk::tsc();
    assert!(t1 >= t0);
}

#[test]
fn probing_a_missing_device_is_an_error() {
    setup();
    let err = Port::probe_vdev("net_nosuchdriver0").expect_err("no such driver");
    assert!(matches!(err, DpdkError::Call { .. }), "{err:?}");
    assert!(
        err.to_string().contains("rte_dev_probe(net_nosuchdriver0)"),
        "{err}"
    );
    assert!(matches!(
        Port::probe_vdev(",x=1"),
        Err(DpdkError::InvalidArgument(_))
    ));
    let err = Port::by_name("net_ring_never_created").expect_err("no such port");
    assert!(err.to_string().contains("net_ring_never_created"), "{err}");
}

#[test]
fn duplicate_names_and_bad_sizes_are_errors() {
    setup();
    let _p = Mempool::new("p_dup", 32, 0, 2176).expect("first pool");
    let err = Mempool::new("p_dup", 32, 0, 2176).expect_err("same pool name");
    assert_eq!(
        err,
        DpdkError::Call {
            what: "rte_pktmbuf_pool_create(p_dup)".into(),
            errno: libc::EEXIST
        }
    );
    assert!(matches!(
        Mempool::new("p_zero", 0, 0, 2176),
        Err(DpdkError::InvalidArgument(_))
    ));
    assert!(matches!(
        Mempool::new("p_tiny", 8, 0, 16),
        Err(DpdkError::InvalidArgument(_))
    ));

    let _r = MbufRing::new("r_dup", 8).expect("first ring");
    assert!(
        matches!(MbufRing::new("r_dup", 8), Err(DpdkError::Call { errno, .. }) if errno == libc::EEXIST)
    );
    assert!(matches!(
        MbufRing::new("r_zero", 0),
        Err(DpdkError::InvalidArgument(_))
    ));
    assert!(MbufRing::new("r_this_name_is_far_too_long_for_dpdk", 8).is_err());
}

#[test]
fn pool_is_freed_only_when_all_mbufs_are_back() {
    setup();
    let pool = Mempool::new("p_free", 16, 0, 2176).expect("pool");
    drop(pool);
    // The name is free again: the pool was released.
    let pool = Mempool::new("p_free", 16, 0, 2176).expect("re-created");
    let m = director::dpdk::Mbuf::alloc(&pool).expect("mbuf");
    drop(pool);
    // An mbuf is still out: the pool must stay allocated (the name stays taken).
    assert!(Mempool::new("p_free", 16, 0, 2176).is_err());
    assert_eq!(m.len(), 0);
    drop(m);
}

#[test]
fn ring_ports_refuse_taken_rings_and_bad_queue_counts() {
    setup();
    let rx = Arc::new(MbufRing::new("r_pe_rx", 8).expect("ring"));
    let tx = Arc::new(MbufRing::new("r_pe_tx", 8).expect("ring"));
    let consumer = rx.consumer().expect("consumer");
    assert!(matches!(
        Port::from_rings("pe", std::slice::from_ref(&rx), std::slice::from_ref(&tx)),
        Err(DpdkError::Busy(_))
    ));
    drop(consumer);
    assert!(matches!(
        Port::from_rings("pe", &[], std::slice::from_ref(&tx)),
        Err(DpdkError::InvalidArgument(_))
    ));
    let mut port =
        Port::from_rings("pe", std::slice::from_ref(&rx), std::slice::from_ref(&tx)).expect("port");
    // One ring each way: two queues are more than the device has.
    let err = port
        .configure(2, 1, &PortConf::default())
        .expect_err("too many queues");
    assert!(matches!(err, DpdkError::InvalidArgument(_)), "{err:?}");
    assert!(
        matches!(port.rx_queue(0), Err(DpdkError::InvalidArgument(_))),
        "not configured"
    );
    let err = port
        .configure(
            1,
            1,
            &PortConf {
                rss: false,
                mtu: Some(10),
            },
        )
        .expect_err("MTU below the minimum");
    assert!(err.to_string().contains("MTU 10"), "{err}");
}
