//! Connection table behaviour: TCP lifecycles (NAT, DR), RST, UDP, conn_reuse, table full,
//! timer wheel order and bounded expiry, `ipvsadm -L -c` data.

use std::net::Ipv4Addr;

use director::dataplane::conn::tcp_flags::{ACK, FIN, RST, SYN};
use director::dataplane::conn::{
    ConnIdx, ConnState, ConnTable, Direction, FlowKey, InsertError, LoadChange, LoadClass, NewConn,
    TcpState, Timeouts,
};
use director::model::{ForwardMethod, Protocol};

const PSH: u8 = 0x08;
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const RS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

fn new_conn(proto: Protocol, cport: u16, fwd: ForwardMethod) -> NewConn<Ipv4Addr> {
    NewConn {
        proto,
        caddr: CLIENT,
        cport,
        vaddr: VIP,
        vport: 80,
        daddr: RS,
        dport: 8080,
        fwd,
        dest_id: 7,
        service_id: 3,
        template: None,
    }
}

fn inbound(proto: Protocol, cport: u16) -> FlowKey<Ipv4Addr> {
    FlowKey::new(proto.number(), CLIENT, cport, VIP, 80)
}

fn reply(proto: Protocol, cport: u16) -> FlowKey<Ipv4Addr> {
    FlowKey::new(proto.number(), RS, 8080, CLIENT, cport)
}

fn tcp(s: TcpState) -> ConnState {
    ConnState::Tcp(s)
}

/// Sends one packet and checks (new state, load change, seconds to expiry).
fn step(
    t: &mut ConnTable,
    idx: ConnIdx,
    dir: Direction,
    flags: u8,
    now: u32,
    want: (TcpState, LoadChange, u32),
) {
    let before = t.get(idx).unwrap().state();
    let ch = t.on_packet(idx, dir, flags, now).unwrap();
    assert_eq!(ch.old, before);
    assert_eq!(
        (ch.new, ch.load),
        (tcp(want.0), want.1),
        "{dir:?} flags {flags:#x}"
    );
    let c = t.get(idx).unwrap();
    assert_eq!(c.state_name(), want.0.name());
    assert_eq!(c.expires_in(now), want.2);
    let class = if want.0.is_active() {
        LoadClass::Active
    } else {
        LoadClass::Inactive
    };
    assert_eq!(c.load_class(), class);
    t.check_consistency().unwrap();
}

fn drain(t: &mut ConnTable, now: u32) -> Vec<(u16, LoadClass, u32)> {
    let mut out = Vec::new();
    let stats = t.advance(now, usize::MAX, |_, c| {
        out.push((c.cport(), c.load_class(), c.dest_id()))
    });
    assert!(!stats.more);
    assert_eq!(stats.expired, out.len());
    t.check_consistency().unwrap();
    out
}

#[test]
fn nat_tcp_full_lifecycle() {
    use Direction::{Input, Output};
    let mut t = ConnTable::with_capacity(16, Timeouts::default());
    assert_eq!(t.lookup_in(&inbound(Protocol::Tcp, 40000)), None);
    let idx = t
        .insert(new_conn(Protocol::Tcp, 40000, ForwardMethod::Masq), 0)
        .unwrap();
    {
        let c = t.get(idx).unwrap();
        assert_eq!(
            (c.state(), c.load_class(), c.expires()),
            (tcp(TcpState::None), LoadClass::Inactive, 2)
        );
        assert!(c.has_reply_key() && !c.is_input_only());
        assert_eq!(
            (c.dest_id(), c.service_id(), c.forward()),
            (7, 3, ForwardMethod::Masq)
        );
    }
    assert_eq!(t.lookup_in(&inbound(Protocol::Tcp, 40000)), Some(idx));
    assert_eq!(t.lookup_reply(&reply(Protocol::Tcp, 40000)), Some(idx));
    // The inbound key is not a reply key and vice versa.
    assert_eq!(t.lookup_reply(&inbound(Protocol::Tcp, 40000)), None);
    assert_eq!(t.lookup_in(&reply(Protocol::Tcp, 40000)), None);

    step(
        &mut t,
        idx,
        Input,
        SYN,
        0,
        (TcpState::SynRecv, LoadChange::Activated, 60),
    );
    step(
        &mut t,
        idx,
        Output,
        SYN | ACK,
        0,
        (TcpState::SynRecv, LoadChange::None, 60),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK,
        1,
        (TcpState::Established, LoadChange::None, 900),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK | PSH,
        2,
        (TcpState::Established, LoadChange::None, 900),
    );
    step(
        &mut t,
        idx,
        Output,
        ACK | PSH,
        3,
        (TcpState::Established, LoadChange::None, 900),
    );
    // Lazy timer: the entry is still armed for the NONE timeout (2 s); the slot fires and
    // re-arms it instead of expiring it.
    let s = t.advance(2, usize::MAX, |_, _| panic!("must not expire"));
    assert_eq!((s.expired, s.rearmed), (0, 1));
    // Client closes first: INPUT FIN in ESTABLISHED -> CLOSE_WAIT, no longer active.
    step(
        &mut t,
        idx,
        Input,
        FIN | ACK,
        10,
        (TcpState::CloseWait, LoadChange::Deactivated, 60),
    );
    step(
        &mut t,
        idx,
        Output,
        ACK,
        10,
        (TcpState::CloseWait, LoadChange::None, 60),
    );
    step(
        &mut t,
        idx,
        Output,
        FIN | ACK,
        11,
        (TcpState::TimeWait, LoadChange::None, 120),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK,
        11,
        (TcpState::TimeWait, LoadChange::None, 120),
    );
    assert_eq!(drain(&mut t, 130), vec![]);
    assert_eq!(t.len(), 1);
    assert_eq!(drain(&mut t, 131), vec![(40000, LoadClass::Inactive, 7)]);
    assert!(t.is_empty());
    assert_eq!(t.lookup_in(&inbound(Protocol::Tcp, 40000)), None);
    assert_eq!(t.lookup_reply(&reply(Protocol::Tcp, 40000)), None);
}

#[test]
fn nat_server_closes_first() {
    use Direction::{Input, Output};
    let mut t = ConnTable::with_capacity(4, Timeouts::default());
    let idx = t
        .insert(new_conn(Protocol::Tcp, 40001, ForwardMethod::Masq), 0)
        .unwrap();
    step(
        &mut t,
        idx,
        Input,
        SYN,
        0,
        (TcpState::SynRecv, LoadChange::Activated, 60),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK,
        0,
        (TcpState::Established, LoadChange::None, 900),
    );
    // OUTPUT FIN in ESTABLISHED -> FIN_WAIT; client's FIN then -> TIME_WAIT.
    step(
        &mut t,
        idx,
        Output,
        FIN | ACK,
        5,
        (TcpState::FinWait, LoadChange::Deactivated, 120),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK,
        5,
        (TcpState::FinWait, LoadChange::None, 120),
    );
    step(
        &mut t,
        idx,
        Input,
        FIN | ACK,
        6,
        (TcpState::TimeWait, LoadChange::None, 120),
    );
    assert_eq!(drain(&mut t, 126), vec![(40001, LoadClass::Inactive, 7)]);
}

#[test]
fn dr_input_only_lifecycle() {
    let mut t = ConnTable::with_capacity(4, Timeouts::default());
    let idx = t
        .insert(new_conn(Protocol::Tcp, 40002, ForwardMethod::Route), 100)
        .unwrap();
    {
        let c = t.get(idx).unwrap();
        assert!(c.is_input_only() && !c.has_reply_key());
    }
    // DR entries have only the inbound key.
    assert_eq!(t.lookup_in(&inbound(Protocol::Tcp, 40002)), Some(idx));
    assert_eq!(t.lookup_reply(&reply(Protocol::Tcp, 40002)), None);
    use Direction::Input;
    step(
        &mut t,
        idx,
        Input,
        SYN,
        100,
        (TcpState::SynRecv, LoadChange::Activated, 60),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK,
        100,
        (TcpState::Established, LoadChange::None, 900),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK | PSH,
        101,
        (TcpState::Established, LoadChange::None, 900),
    );
    // INPUT_ONLY: the client's FIN gives FIN_WAIT (INPUT would give CLOSE_WAIT).
    step(
        &mut t,
        idx,
        Input,
        FIN | ACK,
        102,
        (TcpState::FinWait, LoadChange::Deactivated, 120),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK,
        103,
        (TcpState::FinWait, LoadChange::None, 120),
    );
    assert_eq!(drain(&mut t, 222), vec![]);
    assert_eq!(drain(&mut t, 223), vec![(40002, LoadClass::Inactive, 7)]);
}

#[test]
fn rst_closes_and_expires_early() {
    let mut t = ConnTable::with_capacity(4, Timeouts::default());
    let idx = t
        .insert(new_conn(Protocol::Tcp, 40003, ForwardMethod::Masq), 0)
        .unwrap();
    use Direction::{Input, Output};
    step(
        &mut t,
        idx,
        Input,
        SYN,
        0,
        (TcpState::SynRecv, LoadChange::Activated, 60),
    );
    step(
        &mut t,
        idx,
        Input,
        ACK,
        0,
        (TcpState::Established, LoadChange::None, 900),
    );
    assert_eq!(drain(&mut t, 2), vec![]); // re-armed for 900
                                          // RST from the server: -> CLOSE (10 s), which is earlier than the armed 900 s.
    step(
        &mut t,
        idx,
        Output,
        RST | ACK,
        50,
        (TcpState::Close, LoadChange::Deactivated, 10),
    );
    assert_eq!(drain(&mut t, 59), vec![]);
    assert_eq!(drain(&mut t, 60), vec![(40003, LoadClass::Inactive, 7)]);

    // RST in SYN_RECV from the client keeps SYN_RECV (kernel table); a segment without
    // SYN/FIN/ACK/RST closes.
    let idx = t
        .insert(new_conn(Protocol::Tcp, 40004, ForwardMethod::Masq), 100)
        .unwrap();
    step(
        &mut t,
        idx,
        Input,
        SYN,
        100,
        (TcpState::SynRecv, LoadChange::Activated, 60),
    );
    step(
        &mut t,
        idx,
        Input,
        RST,
        100,
        (TcpState::SynRecv, LoadChange::None, 60),
    );
    step(
        &mut t,
        idx,
        Input,
        PSH,
        101,
        (TcpState::Close, LoadChange::Deactivated, 10),
    );
}

#[test]
fn dr_output_packet_switches_to_output_table() {
    // A DR conn that does see a server packet leaves INPUT_ONLY, as in IPVS.
    let mut t = ConnTable::with_capacity(2, Timeouts::default());
    let idx = t
        .insert(new_conn(Protocol::Tcp, 40005, ForwardMethod::Tunnel), 0)
        .unwrap();
    use Direction::{Input, Output};
    step(
        &mut t,
        idx,
        Input,
        SYN,
        0,
        (TcpState::SynRecv, LoadChange::Activated, 60),
    );
    step(
        &mut t,
        idx,
        Output,
        SYN | ACK,
        0,
        (TcpState::SynRecv, LoadChange::None, 60),
    );
    assert!(!t.get(idx).unwrap().is_input_only());
    step(
        &mut t,
        idx,
        Input,
        ACK,
        0,
        (TcpState::Established, LoadChange::None, 900),
    );
    step(
        &mut t,
        idx,
        Input,
        FIN,
        1,
        (TcpState::CloseWait, LoadChange::Deactivated, 60),
    );
}

#[test]
fn udp_state_and_timeout() {
    let mut timeouts = Timeouts::default();
    let mut t = ConnTable::with_capacity(4, timeouts);
    let idx = t
        .insert(new_conn(Protocol::Udp, 5353, ForwardMethod::Masq), 0)
        .unwrap();
    assert_eq!(t.lookup_in(&inbound(Protocol::Udp, 5353)), Some(idx));
    assert_eq!(t.lookup_in(&inbound(Protocol::Tcp, 5353)), None);
    assert_eq!(t.lookup_reply(&reply(Protocol::Udp, 5353)), Some(idx));
    let ch = t.on_packet(idx, Direction::Input, SYN, 0).unwrap();
    assert_eq!(
        (ch.old, ch.new, ch.load),
        (ConnState::Udp, ConnState::Udp, LoadChange::None)
    );
    let c = t.get(idx).unwrap();
    assert_eq!(
        (c.state_name(), c.proto_label(), c.expires(), c.load_class()),
        ("UDP", "UDP", 300, LoadClass::Inactive)
    );
    // A reply at 200 extends to 500.
    t.on_packet(idx, Direction::Output, 0, 200).unwrap();
    assert_eq!(drain(&mut t, 300), vec![]);
    assert_eq!(drain(&mut t, 499), vec![]);
    assert_eq!(drain(&mut t, 500), vec![(5353, LoadClass::Inactive, 7)]);

    // ipvsadm --set 0 0 30: the udp timeout applies from the next packet on.
    let idx = t
        .insert(new_conn(Protocol::Udp, 5354, ForwardMethod::Route), 1000)
        .unwrap();
    timeouts.apply_set(0, 0, 30);
    t.set_timeouts(timeouts);
    t.on_packet(idx, Direction::Input, 0, 1000).unwrap();
    assert_eq!(t.get(idx).unwrap().expires(), 1030);
    assert_eq!(drain(&mut t, 1030), vec![(5354, LoadClass::Inactive, 7)]);
}

#[test]
fn conn_reuse_mode_expires_time_wait_on_syn() {
    let mut t = ConnTable::with_capacity(4, Timeouts::default());
    let idx = t
        .insert(new_conn(Protocol::Tcp, 40010, ForwardMethod::Masq), 0)
        .unwrap();
    use Direction::{Input, Output};
    t.on_packet(idx, Input, SYN, 0).unwrap();
    t.on_packet(idx, Input, ACK, 0).unwrap();
    // Established: a SYN is not a new connection.
    assert_eq!(t.reuse_on_syn(idx, SYN), None);
    t.on_packet(idx, Input, FIN | ACK, 1).unwrap();
    t.on_packet(idx, Output, FIN | ACK, 1).unwrap();
    assert_eq!(t.get(idx).unwrap().state(), tcp(TcpState::TimeWait));
    // TIME_WAIT: an ACK is not a reuse, a SYN is.
    assert_eq!(t.reuse_on_syn(idx, ACK), None);
    let old = t.reuse_on_syn(idx, SYN).expect("reused");
    assert_eq!(
        (old.cport(), old.load_class(), old.state()),
        (40010, LoadClass::Inactive, tcp(TcpState::TimeWait))
    );
    assert_eq!(t.lookup_in(&inbound(Protocol::Tcp, 40010)), None);
    assert_eq!(t.lookup_reply(&reply(Protocol::Tcp, 40010)), None);
    t.check_consistency().unwrap();
    // The caller schedules anew: same key, fresh entry.
    let idx2 = t
        .insert(new_conn(Protocol::Tcp, 40010, ForwardMethod::Masq), 2)
        .unwrap();
    let ch = t.on_packet(idx2, Input, SYN, 2).unwrap();
    assert_eq!(
        (ch.new, ch.load),
        (tcp(TcpState::SynRecv), LoadChange::Activated)
    );

    // CLOSE (after RST) is reusable too.
    t.on_packet(idx2, Input, ACK, 2).unwrap();
    t.on_packet(idx2, Input, RST, 3).unwrap();
    assert_eq!(t.get(idx2).unwrap().state(), tcp(TcpState::Close));
    assert!(t.reuse_on_syn(idx2, SYN | ACK).is_some());
    assert!(t.is_empty());
    // UDP never.
    let u = t
        .insert(new_conn(Protocol::Udp, 1, ForwardMethod::Masq), 0)
        .unwrap();
    assert_eq!(t.reuse_on_syn(u, SYN), None);
}

#[test]
fn full_table_refuses_new_and_keeps_old() {
    let mut t = ConnTable::with_capacity(3, Timeouts::default());
    let ids: Vec<_> = (0..3)
        .map(|i| {
            t.insert(new_conn(Protocol::Tcp, 1000 + i, ForwardMethod::Masq), 0)
                .unwrap()
        })
        .collect();
    assert_eq!(t.len(), 3);
    assert_eq!(
        t.insert(new_conn(Protocol::Tcp, 2000, ForwardMethod::Masq), 0),
        Err(InsertError::TableFull)
    );
    assert_eq!(t.lookup_in(&inbound(Protocol::Tcp, 2000)), None);
    for (i, &idx) in ids.iter().enumerate() {
        assert_eq!(
            t.lookup_in(&inbound(Protocol::Tcp, 1000 + i as u16)),
            Some(idx)
        );
        assert!(t.on_packet(idx, Direction::Input, SYN, 1).is_some());
    }
    let removed = t.remove(ids[1]).unwrap();
    assert_eq!(
        (removed.cport(), removed.load_class()),
        (1001, LoadClass::Active)
    );
    assert_eq!(t.remove(ids[1]), None, "stale index");
    let again = t
        .insert(new_conn(Protocol::Tcp, 2000, ForwardMethod::Masq), 1)
        .unwrap();
    assert_eq!(again, ids[1], "slab slot reused");
    t.check_consistency().unwrap();
    assert_eq!(t.capacity(), 3);

    // A zero-capacity table refuses everything without panicking.
    let mut z: ConnTable = ConnTable::with_capacity(0, Timeouts::default());
    assert_eq!(
        z.insert(new_conn(Protocol::Tcp, 1, ForwardMethod::Masq), 0),
        Err(InsertError::TableFull)
    );
    assert_eq!(z.advance(100, 10, |_, _| {}).expired, 0);
}

#[test]
fn duplicate_keys_are_refused() {
    let mut t = ConnTable::with_capacity(8, Timeouts::default());
    t.insert(new_conn(Protocol::Tcp, 1, ForwardMethod::Masq), 0)
        .unwrap();
    assert_eq!(
        t.insert(new_conn(Protocol::Tcp, 1, ForwardMethod::Route), 0),
        Err(InsertError::Exists)
    );
    // Same client endpoint to another VIP NATed to the same real server: the reply key
    // would be ambiguous.
    let other_vip = NewConn {
        vaddr: Ipv4Addr::new(203, 0, 113, 2),
        ..new_conn(Protocol::Tcp, 1, ForwardMethod::Masq)
    };
    assert_eq!(t.insert(other_vip, 0), Err(InsertError::Exists));
    // With DR there is no reply key, so that is fine.
    let dr = NewConn {
        fwd: ForwardMethod::Route,
        ..other_vip
    };
    assert!(t.insert(dr, 0).is_ok());
    assert_eq!(t.len(), 2);
    t.check_consistency().unwrap();
}

#[test]
fn timer_wheel_expires_in_deadline_order() {
    // Inserted with a 100 s UDP timeout, then each touched once under a 10 s timeout: every
    // touch moves the expiry earlier than the armed second (an eager re-arm).
    let mut timeouts = Timeouts::default();
    timeouts.set_udp(100);
    let mut t = ConnTable::with_capacity(64, timeouts);
    let ids: Vec<_> = (0..50u16)
        .map(|i| {
            t.insert(new_conn(Protocol::Udp, i, ForwardMethod::Masq), 0)
                .unwrap()
        })
        .collect();
    timeouts.set_udp(10);
    t.set_timeouts(timeouts);
    // At second s, conn (7 s) % 50 is touched: expiry order is not slab order.
    let perm = |s: u32| (s * 7 % 50) as u16;
    let mut log = Vec::new();
    for now in 0..=70u32 {
        if now < 50 {
            t.on_packet(ids[perm(now) as usize], Direction::Input, 0, now)
                .unwrap();
        }
        t.advance(now, usize::MAX, |_, c| log.push((now, c.cport())));
        t.check_consistency().unwrap();
    }
    let want: Vec<_> = (0..50u32).map(|s| (s + 10, perm(s))).collect();
    assert_eq!(log, want);
    assert!(t.is_empty());
}

#[test]
fn advance_does_bounded_work() {
    let mut timeouts = Timeouts::default();
    timeouts.set_udp(10);
    let mut t = ConnTable::with_capacity(128, timeouts);
    for i in 0..100u16 {
        t.insert(new_conn(Protocol::Udp, i, ForwardMethod::Masq), 0)
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut rounds = Vec::new();
    loop {
        let s = t.advance(10, 30, |_, c| seen.push(c.cport()));
        t.check_consistency().unwrap();
        rounds.push((s.expired, s.more));
        if !s.more {
            break;
        }
    }
    assert_eq!(rounds, [(30, true), (30, true), (30, true), (10, false)]);
    seen.sort();
    assert_eq!(seen, (0..100).collect::<Vec<u16>>());
    // max = 0 does nothing.
    t.insert(new_conn(Protocol::Udp, 1, ForwardMethod::Masq), 0)
        .unwrap();
    assert_eq!(t.advance(50, 0, |_, _| {}).expired, 0);
    assert_eq!(t.len(), 1);
}

#[test]
fn removal_between_bounded_advances() {
    // Entries left in a half-fired slot can still be removed or touched.
    let mut timeouts = Timeouts::default();
    timeouts.set_udp(5);
    let mut t = ConnTable::with_capacity(16, timeouts);
    let ids: Vec<_> = (0..10u16)
        .map(|i| {
            t.insert(new_conn(Protocol::Udp, i, ForwardMethod::Masq), 0)
                .unwrap()
        })
        .collect();
    let mut gone = Vec::new();
    assert!(t.advance(5, 3, |_, c| gone.push(c.cport())).more);
    let left: Vec<_> = ids
        .iter()
        .copied()
        .filter(|&i| t.get(i).is_some())
        .collect();
    assert_eq!(left.len(), 7);
    t.remove(left[0]).unwrap();
    t.on_packet(left[1], Direction::Input, 0, 5).unwrap(); // now expires at 10
    t.check_consistency().unwrap();
    t.advance(5, usize::MAX, |_, c| gone.push(c.cport()));
    assert_eq!(gone.len(), 3 + 5);
    assert_eq!(t.len(), 1);
    assert_eq!(drain(&mut t, 10).len(), 1);
}

#[test]
fn burst_lookup_matches_single_lookups() {
    let mut t = ConnTable::with_capacity(256, Timeouts::default());
    for i in 0..100u16 {
        let fwd = if i % 3 == 0 {
            ForwardMethod::Route
        } else {
            ForwardMethod::Masq
        };
        t.insert(new_conn(Protocol::Tcp, i, fwd), 0).unwrap();
    }
    let keys: Vec<_> = (0..150u16)
        .flat_map(|i| {
            [
                (Direction::Input, inbound(Protocol::Tcp, i)),
                (Direction::Output, reply(Protocol::Tcp, i)),
            ]
        })
        .collect();
    let mut out = vec![None; keys.len()];
    t.lookup_burst(&keys, &mut out);
    let mut hits = 0;
    for ((dir, key), got) in keys.iter().zip(&out) {
        let want = match dir {
            Direction::Input => t.lookup_in(key),
            Direction::Output => t.lookup_reply(key),
        };
        assert_eq!(*got, want, "{dir:?} {key:?}");
        hits += usize::from(got.is_some());
    }
    // 100 inbound hits + 66 NAT reply hits.
    assert_eq!(hits, 166);
}

#[test]
fn listing_fields_for_ipvsadm() {
    let mut t = ConnTable::with_capacity(8, Timeouts::default());
    let a = t
        .insert(new_conn(Protocol::Tcp, 40000, ForwardMethod::Masq), 0)
        .unwrap();
    t.on_packet(a, Direction::Input, SYN, 0).unwrap();
    t.on_packet(a, Direction::Input, ACK, 3).unwrap();
    let b = t
        .insert(new_conn(Protocol::Udp, 5353, ForwardMethod::Route), 1)
        .unwrap();
    t.on_packet(b, Direction::Input, 0, 1).unwrap();
    let mut rows: Vec<String> = t
        .iter()
        .map(|(_, c)| {
            let left = c.expires_in(4);
            format!(
                "{:<3} {:02}:{:02}  {:<11} {}:{} {}:{} {}:{}",
                c.proto_label(),
                left / 60,
                left % 60,
                c.state_name(),
                c.caddr(),
                c.cport(),
                c.vaddr(),
                c.vport(),
                c.daddr(),
                c.dport()
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            "TCP 14:59  ESTABLISHED 198.51.100.10:40000 203.0.113.1:80 192.0.2.10:8080",
            "UDP 04:57  UDP         198.51.100.10:5353 203.0.113.1:80 192.0.2.10:8080",
        ]
    );
}
