//! Real DPDK (no NIC, no hugepages): frames through ring-backed and probed virtual ports,
//! mbuf and burst semantics, mempool exhaustion, ring ownership. EAL comes up once for this
//! test process; every test uses its own port, ring and pool names.

use std::sync::Arc;

use director::dpdk::{
    eal, DpdkError, Mbuf, MbufBurst, MbufRing, Mempool, Port, PortConf, RxQueue, TxQueue, BURST,
};

fn setup() {
    eal::test_init().expect("EAL test init");
}

fn pool(name: &str, n: u32) -> Mempool {
    Mempool::new(name, n, 0, director::dpdk::mempool::DEFAULT_DATA_ROOM).expect("mempool")
}

fn ring(name: &str, size: u32) -> Arc<MbufRing> {
    Arc::new(MbufRing::new(name, size).expect("ring"))
}

/// An Ethernet/IPv4/UDP frame whose addresses and payload depend on `tag`.
fn frame(tag: u8, payload_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xb0 ^ tag]); // dst MAC
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0xa0 ^ tag]); // src MAC
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 8 + payload_len) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        tag,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    f.extend_from_slice(&[10, 0, 0, tag, 10, 0, 1, 1]);
    f.extend_from_slice(&[0x30, tag, 0x00, 0x35, 0, (8 + payload_len) as u8, 0, 0]);
    f.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(7) ^ tag));
    f
}

fn burst_of(pool: &Mempool, frames: &[Vec<u8>]) -> MbufBurst {
    let mut b = MbufBurst::new();
    for f in frames {
        b.push(Mbuf::from_bytes(pool, f).expect("mbuf"))
            .expect("burst has room");
    }
    b
}

fn contents(b: &MbufBurst) -> Vec<Vec<u8>> {
    b.as_slice().iter().map(|m| m.data().to_vec()).collect()
}

/// Configures `n` rx and tx queues, sets them up and starts the port.
fn bring_up(port: &mut Port, n: u16, pool: &Mempool) -> (Vec<RxQueue>, Vec<TxQueue>) {
    let out = port
        .configure(n, n, &PortConf::default())
        .expect("configure");
    assert!(!out.rss_enabled);
    for q in 0..n {
        port.setup_rx_queue(q, 256, pool).expect("rx setup");
        port.setup_tx_queue(q, 256).expect("tx setup");
    }
    port.start().expect("start");
    let rx = (0..n)
        .map(|q| port.rx_queue(q).expect("rx queue"))
        .collect();
    let tx = (0..n)
        .map(|q| port.tx_queue(q).expect("tx queue"))
        .collect();
    (rx, tx)
}

#[test]
fn frames_cross_between_ring_ports_byte_identical_per_queue() {
    setup();
    let pool = pool("p_cross", 1024);
    let ab = [ring("r_ab0", 64), ring("r_ab1", 64)];
    let ba = [ring("r_ba0", 64), ring("r_ba1", 64)];
    let mut a = Port::from_rings("cross_a", &ba, &ab).expect("port a");
    let mut b = Port::from_rings("cross_b", &ab, &ba).expect("port b");
    assert_eq!(a.name(), "net_ring_cross_a");
    assert_ne!(a.id(), b.id());
    let (mut a_rx, mut a_tx) = bring_up(&mut a, 2, &pool);
    let (mut b_rx, mut b_tx) = bring_up(&mut b, 2, &pool);

    for q in 0..2usize {
        // A -> B on queue q.
        let frames: Vec<Vec<u8>> = (0..5)
            .map(|i| frame((q * 16 + i) as u8, 18 + i * 100))
            .collect();
        let mut out = burst_of(&pool, &frames);
        assert_eq!(a_tx[q].tx_burst(&mut out), 5);
        assert!(out.is_empty());
        let mut got = MbufBurst::new();
        assert_eq!(
            b_rx[1 - q].rx_burst(&mut got),
            0,
            "nothing on the other queue"
        );
        assert_eq!(b_rx[q].rx_burst(&mut got), 5);
        assert_eq!(contents(&got), frames);
        assert!(got.as_slice().iter().all(|m| m.is_contiguous()));

        // B -> A, echoing what it received.
        assert_eq!(b_tx[q].tx_burst(&mut got), 5);
        let mut back = MbufBurst::new();
        assert_eq!(a_rx[q].rx_burst(&mut back), 5);
        assert_eq!(contents(&back), frames);
        assert_eq!(a_rx[q].rx_burst(&mut back), 0, "appends nothing when empty");
        assert_eq!(back.len(), 5);
    }
    let sa = a.stats().expect("stats a");
    let sb = b.stats().expect("stats b");
    assert_eq!((sa.opackets, sa.ipackets), (10, 10));
    assert_eq!((sb.opackets, sb.ipackets), (10, 10));
    // (net_ring counts packets only, not bytes.)
    assert!(a.link_up());
    let xstats = a.xstats().expect("xstats");
    let ipackets = xstats
        .iter()
        .find(|(n, _)| n == "rx_good_packets")
        .expect("rx_good_packets");
    assert_eq!(ipackets.1, 10);
}

#[test]
fn probed_net_ring_loops_tx_back_to_rx_on_each_queue() {
    setup();
    let pool = pool("p_loop", 512);
    let mut port = Port::probe_vdev("net_ring_loop_t").expect("probe");
    assert_eq!(port.name(), "net_ring_loop_t");
    assert_eq!(port.driver_name().expect("driver"), "net_ring");
    let (mut rx, mut tx) = bring_up(&mut port, 2, &pool);
    for q in 0..2 {
        let frames: Vec<Vec<u8>> = (0..BURST).map(|i| frame(i as u8 + q as u8, 60)).collect();
        let mut out = burst_of(&pool, &frames);
        assert!(out.is_full());
        assert_eq!(tx[q].tx_burst(&mut out), BURST);
        let mut got = MbufBurst::new();
        assert_eq!(rx[q].rx_burst(&mut got), BURST);
        assert_eq!(contents(&got), frames);
        assert_eq!(rx[q].rx_burst(&mut got), 0, "a full burst receives nothing");
        assert_eq!(pool.in_use(), BURST as u32);
    }
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn tx_leftovers_stay_in_the_burst_in_order() {
    setup();
    let pool = pool("p_left", 128);
    let rx_ring = ring("r_left_rx", 8);
    let tx_ring = ring("r_left_tx", 4);
    let mut port = Port::from_rings(
        "left",
        std::slice::from_ref(&rx_ring),
        std::slice::from_ref(&tx_ring),
    )
    .expect("port");
    let (_rx, mut tx) = bring_up(&mut port, 1, &pool);
    let frames: Vec<Vec<u8>> = (0..6).map(|i| frame(i, 30)).collect();
    let mut out = burst_of(&pool, &frames);
    assert_eq!(tx[0].tx_burst(&mut out), 4);
    assert_eq!(contents(&out), frames[4..].to_vec());
    assert_eq!(tx[0].tx_burst(&mut out), 0, "tx ring full");
    assert_eq!(out.len(), 2);

    // Read the port's tx ring directly.
    let mut consumer = tx_ring.consumer().expect("tx ring consumer");
    let mut sent = MbufBurst::new();
    assert_eq!(consumer.dequeue_burst(&mut sent), 4);
    assert_eq!(contents(&sent), frames[..4].to_vec());
    assert_eq!(tx[0].tx_burst(&mut out), 2);
    assert!(out.is_empty());
    sent.clear();
    assert_eq!(consumer.dequeue_burst(&mut sent), 2);
    assert_eq!(contents(&sent), frames[4..].to_vec());
    // The rx ring is the port's: it has the consumer role.
    assert!(matches!(rx_ring.consumer(), Err(DpdkError::Busy(_))));
}

#[test]
fn mempool_exhaustion_returns_none_and_recovers() {
    setup();
    let pool = pool("p_exhaust", 8);
    assert_eq!(pool.capacity(), 8);
    let mut held: Vec<Mbuf> = (0..8)
        .map(|_| Mbuf::alloc(&pool).expect("free mbuf"))
        .collect();
    assert!(Mbuf::alloc(&pool).is_none());
    assert_eq!(pool.available(), 0);
    assert!(matches!(
        Mbuf::from_bytes(&pool, b"x"),
        Err(DpdkError::PoolExhausted(_))
    ));
    held.pop();
    assert_eq!(pool.available(), 1);
    let again = Mbuf::alloc(&pool).expect("freed mbuf is reusable");
    drop(again);
    drop(held);
    assert_eq!(pool.available(), 8);

    // Bulk allocation is all or nothing.
    let mut b = MbufBurst::new();
    assert!(matches!(
        b.alloc_from(&pool, 9),
        Err(DpdkError::PoolExhausted(_))
    ));
    assert!(b.is_empty());
    assert_eq!(pool.available(), 8);
    b.alloc_from(&pool, 8).expect("exactly the pool");
    assert_eq!((b.len(), pool.available()), (8, 0));
    drop(b);
    assert_eq!(pool.available(), 8);
}

#[test]
fn mbuf_prepend_adj_append_trim() {
    setup();
    let pool = pool("p_ops", 16);
    let payload = frame(9, 40);
    let mut m = Mbuf::from_bytes(&pool, &payload).expect("mbuf");
    assert_eq!(m.len(), payload.len());
    assert_eq!(m.pkt_len(), payload.len());
    assert_eq!(m.headroom(), director::dpdk::mempool::HEADROOM);
    let tail = m.tailroom();

    let outer = [0xaa; 20];
    m.prepend(20).expect("headroom").copy_from_slice(&outer);
    assert_eq!(&m.data()[..20], &outer);
    assert_eq!(&m.data()[20..], &payload[..]);
    assert_eq!(m.headroom(), director::dpdk::mempool::HEADROOM - 20);

    let too_much = m.headroom() + 1;
    assert_eq!(
        m.prepend(too_much).unwrap_err(),
        DpdkError::NoRoom {
            requested: too_much,
            available: too_much - 1
        }
    );
    assert_eq!(
        m.len(),
        payload.len() + 20,
        "a refused prepend changes nothing"
    );

    m.adj(20).expect("adj");
    assert_eq!(m.data(), &payload[..]);
    assert!(m.adj(payload.len() + 1).is_err());

    m.append(4)
        .expect("tailroom")
        .copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!(&m.data()[payload.len()..], &[1, 2, 3, 4]);
    assert_eq!(m.tailroom(), tail - 4);
    m.trim(4).expect("trim");
    assert_eq!(m.data(), &payload[..]);
    assert!(m.append(tail + 1).is_err());
    assert!(m.trim(payload.len() + 1).is_err());

    m.data_mut()[0] = 0xff;
    assert_eq!(m.data()[0], 0xff);
    m.set_port(7);
    assert_eq!(m.port(), 7);

    let raw = m.into_raw();
    // SAFETY: raw came from into_raw just above and is used nowhere else.
    let m = unsafe { Mbuf::from_raw(raw) };
    assert_eq!(m.data()[0], 0xff);
    drop(m);
    assert_eq!(pool.available(), 16);
}

#[test]
fn burst_push_pop_drain() {
    setup();
    let pool = pool("p_burst", 64);
    let mut b = MbufBurst::new();
    for i in 0..BURST {
        b.push(Mbuf::from_bytes(&pool, &[i as u8]).expect("mbuf"))
            .expect("room");
    }
    let extra = Mbuf::from_bytes(&pool, &[99]).expect("mbuf");
    let extra = b.push(extra).expect_err("full burst gives the mbuf back");
    assert_eq!(extra.data(), &[99]);
    assert_eq!(b.pop().expect("last").data(), &[BURST as u8 - 1]);
    let firsts: Vec<u8> = b.drain().take(3).map(|m| m.data()[0]).collect();
    assert_eq!(firsts, vec![0, 1, 2]);
    assert!(b.is_empty(), "drain empties the burst");
    drop(extra);
    assert_eq!(pool.available(), 64, "undrained mbufs were freed");
}

#[test]
fn mbuf_ring_is_fifo_with_one_consumer_and_frees_leftovers() {
    setup();
    let pool = pool("p_ring", 64);
    let r = ring("r_fifo", 5);
    assert_eq!(r.capacity(), 5);
    let frames: Vec<Vec<u8>> = (0..7).map(|i| frame(i, 10)).collect();
    let mut b = burst_of(&pool, &frames);
    assert_eq!(r.enqueue_burst(&mut b), 5);
    assert_eq!(contents(&b), frames[5..].to_vec());
    assert_eq!(r.count(), 5);
    let m = b.pop().expect("mbuf");
    let m = r.enqueue(m).expect_err("ring full");

    let mut c = r.consumer().expect("consumer");
    assert!(matches!(r.consumer(), Err(DpdkError::Busy(_))));
    let mut out = MbufBurst::new();
    assert_eq!(c.dequeue_burst(&mut out), 5);
    assert_eq!(contents(&out), frames[..5].to_vec());
    r.enqueue(m).expect("room again");
    drop(c);
    let _c2 = r.consumer().expect("consumer role released on drop");

    // Producers on other threads.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let r = Arc::clone(&r);
            let m = Mbuf::from_bytes(&pool, b"thread").expect("mbuf");
            std::thread::spawn(move || r.enqueue(m).is_ok())
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().expect("join")));
    assert_eq!(r.count(), 3);
    drop(out);
    drop(b);
    drop(_c2);
    drop(r);
    assert_eq!(pool.available(), 64, "ring drop freed the queued mbufs");
}

#[test]
fn port_lifecycle_handles_and_name_reuse() {
    setup();
    let pool = pool("p_life", 256);
    for round in 0..2 {
        let mut port = Port::probe_vdev("net_ring_life").expect("probe (again after close)");
        assert!(matches!(
            Port::by_name("net_ring_life"),
            Err(DpdkError::Busy(_))
        ));
        let outcome = port
            .configure(
                1,
                1,
                &PortConf {
                    rss: true,
                    mtu: Some(1400),
                },
            )
            .expect("configure");
        assert!(!outcome.rss_enabled, "net_ring has no RSS");
        assert!(
            matches!(port.rx_queue(0), Err(DpdkError::InvalidArgument(_))),
            "not set up"
        );
        port.setup_rx_queue(0, 128, &pool).expect("rx setup");
        port.setup_tx_queue(0, 128).expect("tx setup");
        assert!(
            port.setup_rx_queue(1, 128, &pool).is_err(),
            "queue 1 not configured"
        );
        {
            // Polling before start is harmless: nothing arrives.
            let mut early = port.rx_queue(0).expect("rx before start");
            let mut b = MbufBurst::new();
            assert_eq!(early.rx_burst(&mut b), 0);
            let mut tx = port.tx_queue(0).expect("tx before start");
            let mut out = burst_of(&pool, &[frame(7, 10)]);
            assert_eq!(tx.tx_burst(&mut out), 0);
            assert_eq!(out.len(), 1, "unsent frame stays with the caller");
        }
        port.start().expect("start");
        assert!(port.link_up());
        assert_eq!(
            port.mac().expect("mac"),
            [0; 6],
            "net_ring reports a zero MAC"
        );
        assert!(port.promiscuous());
        port.set_promiscuous(false).expect("promiscuous off");
        assert!(!port.promiscuous());
        port.set_promiscuous(true).expect("promiscuous on");
        assert!(port.promiscuous());
        let rx = port.rx_queue(0).expect("rx");
        assert!(
            matches!(port.rx_queue(0), Err(DpdkError::Busy(_))),
            "handed out once"
        );
        assert!(
            matches!(port.stop(), Err(DpdkError::Busy(_))),
            "a handle is alive"
        );
        assert!(port.configure(1, 1, &PortConf::default()).is_err());
        let mut tx = port.tx_queue(0).expect("tx");
        let mut b = burst_of(&pool, &[frame(round, 20)]);
        assert_eq!(tx.tx_burst(&mut b), 1);
        drop((rx, tx));
        port.stop().expect("stop once handles are gone");
        assert!(!port.link_up());
        port.start().expect("restart");
        // Dropped handles gave their queues back; the looped-back frame is still queued.
        let mut rx = port.rx_queue(0).expect("rx again");
        let mut got = MbufBurst::new();
        assert_eq!(rx.rx_burst(&mut got), 1);
        assert_eq!(contents(&got), vec![frame(round, 20)]);
        // Leave one frame in the ring: closing the port must free it.
        let mut tx = port.tx_queue(0).expect("tx again");
        assert_eq!(tx.tx_burst(&mut got), 1);
        assert!(matches!(port.close(), Err(DpdkError::Busy(_))));
        // The port closes when the last handle goes.
        drop((rx, tx));
        assert_eq!(pool.in_use(), 0, "closing freed the mbuf left in the ring");
    }
}

#[test]
fn worker_threads_register_for_an_lcore_id() {
    setup();
    let ids: Vec<(Option<u32>, u32, Option<u32>)> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let before = eal::lcore_id();
                let id = eal::register_thread().expect("register");
                let after = eal::lcore_id();
                eal::unregister_thread();
                assert_eq!(eal::lcore_id(), None, "unregistered");
                (before, id, after)
            })
        })
        .map(|h| h.join().expect("join"))
        .collect();
    for (before, id, after) in &ids {
        assert_eq!(*before, None, "a plain thread has no lcore id");
        assert_eq!(*after, Some(*id));
        assert_ne!(*id, 0, "lcore 0 is the EAL main lcore");
    }
    // With a cache, a registered thread allocates and frees through it.
    let pool = Mempool::new(
        "p_cache",
        256,
        32,
        director::dpdk::mempool::DEFAULT_DATA_ROOM,
    )
    .expect("pool with cache");
    let in_use = std::thread::spawn(move || {
        eal::register_thread().expect("register");
        let mut b = MbufBurst::new();
        b.alloc_from(&pool, BURST).expect("alloc");
        let used = pool.in_use();
        drop(b);
        (used, pool.in_use())
    })
    .join()
    .expect("join");
    assert_eq!(in_use, (BURST as u32, 0));
}

#[test]
fn null_port_mac_promiscuous_and_rx_from_its_pool() {
    setup();
    let pool = pool("p_null", 512);
    let mut port = Port::probe_vdev("net_null_t,size=60").expect("probe net_null");
    let mac = port.mac().expect("mac");
    assert_ne!(mac, [0; 6]);
    assert_eq!(
        mac[0] & 0x03,
        0x02,
        "random MAC: locally administered unicast"
    );
    let (mut rx, mut tx) = bring_up(&mut port, 1, &pool);
    // net_null has no promiscuous switch: a clear error, state unchanged.
    let err = port.set_promiscuous(false).expect_err("ENOTSUP");
    assert_eq!(
        err,
        DpdkError::Call {
            what: "rte_eth_promiscuous_disable(net_null_t)".into(),
            errno: 95
        }
    );
    assert!(err.to_string().contains("Operation not supported"), "{err}");
    // net_null receives packets of `size` bytes allocated from the queue's pool.
    let mut got = MbufBurst::new();
    assert_eq!(rx[0].rx_burst(&mut got), BURST);
    assert!(got.as_slice().iter().all(|m| m.len() == 60));
    assert_eq!(pool.in_use(), BURST as u32);
    assert_eq!(
        tx[0].tx_burst(&mut got),
        BURST,
        "net_null swallows everything"
    );
    assert_eq!(pool.in_use(), 0);
    let st = port.stats().expect("stats");
    assert_eq!((st.ipackets, st.opackets), (BURST as u64, BURST as u64));
}

#[test]
fn handles_can_move_to_worker_threads() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Mbuf>();
    send::<MbufBurst>();
    send::<RxQueue>();
    send::<TxQueue>();
    send::<Port>();
    send::<director::dpdk::RingConsumer>();
    send_sync::<Mempool>();
    send_sync::<MbufRing>();
}
