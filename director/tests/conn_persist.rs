//! Persistence templates: netmask grouping, reuse of the template's destination, re-arm while
//! controlling connections, invalidation when the destination is unusable, fwmark templates.

use std::net::Ipv4Addr;

use director::dataplane::conn::tcp_flags::{ACK, SYN};
use director::dataplane::conn::{
    ConnIdx, ConnState, ConnTable, Direction, LoadClass, NewConn, NewTemplate, TcpState,
    TemplateKey, Timeouts,
};
use director::model::{ForwardMethod, Protocol};

const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const PERSIST: u32 = 300;

/// The worker's persistent scheduling, with a scheduler that hands out `next_dest`.
fn connect(
    t: &mut ConnTable,
    client: Ipv4Addr,
    cport: u16,
    now: u32,
    next_dest: u32,
    usable: impl Fn(u32) -> bool,
) -> (ConnIdx, ConnIdx, bool) {
    let key = TemplateKey::for_service(Protocol::Tcp, client, 24, VIP, 443);
    let (tmpl, created) = match t.use_template(&key, PERSIST, now, |c| usable(c.dest_id())) {
        Some(tmpl) => (tmpl, false),
        None => {
            let new = NewTemplate {
                key,
                daddr: Ipv4Addr::new(192, 0, 2, next_dest as u8),
                dport: 443,
                fwd: ForwardMethod::Masq,
                dest_id: next_dest,
                service_id: 1,
                timeout: PERSIST,
            };
            (t.insert_template(new, now).unwrap(), true)
        }
    };
    let tc = *t.get(tmpl).unwrap();
    let conn = NewConn {
        proto: Protocol::Tcp,
        caddr: client,
        cport,
        vaddr: VIP,
        vport: 443,
        daddr: tc.daddr(),
        dport: tc.dport(),
        fwd: tc.forward(),
        dest_id: tc.dest_id(),
        service_id: 1,
        template: Some(tmpl),
    };
    let idx = t.insert(conn, now).unwrap();
    t.on_packet(idx, Direction::Input, SYN, now).unwrap();
    t.on_packet(idx, Direction::Input, ACK, now).unwrap();
    (idx, tmpl, created)
}

#[test]
fn same_network_same_dest_and_rearm() {
    let mut t = ConnTable::with_capacity(64, Timeouts::default());
    let a = Ipv4Addr::new(198, 51, 100, 10);
    let b = Ipv4Addr::new(198, 51, 100, 77);
    let other = Ipv4Addr::new(198, 51, 101, 10);

    let (ca, ta, created) = connect(&mut t, a, 40000, 0, 1, |_| true);
    assert!(created);
    // Another client of the same /24 follows the template, even though the scheduler
    // would now pick dest 2.
    let (cb, tb, created) = connect(&mut t, b, 50000, 10, 2, |_| true);
    assert!(!created);
    assert_eq!(ta, tb);
    assert_eq!(t.get(cb).unwrap().dest_id(), 1);
    assert_eq!(t.get(cb).unwrap().daddr(), Ipv4Addr::new(192, 0, 2, 1));
    // A client of another /24 gets its own template.
    let (co, to, created) = connect(&mut t, other, 40000, 10, 2, |_| true);
    assert!(created);
    assert_ne!(to, ta);
    assert_eq!(t.get(to).unwrap().dest_id(), 2);

    let tmpl = *t.get(ta).unwrap();
    assert_eq!(tmpl.caddr(), Ipv4Addr::new(198, 51, 100, 0));
    assert_eq!((tmpl.cport(), tmpl.vaddr(), tmpl.vport()), (0, VIP, 443));
    assert_eq!(
        (tmpl.controlled(), tmpl.load_class()),
        (2, LoadClass::Persistent)
    );
    assert_eq!((tmpl.proto_label(), tmpl.state_name()), ("TCP", "NONE"));
    // Using the template at 10 restarted its timeout.
    assert_eq!(tmpl.expires(), 10 + PERSIST);
    assert_eq!(t.get(ca).unwrap().template(), Some(ta));
    assert_eq!(
        t.get(ca).unwrap().state(),
        ConnState::Tcp(TcpState::Established)
    );
    assert_eq!(t.len(), 5);
    t.check_consistency().unwrap();
    // The other network's conn goes: its template then controls nothing.
    t.remove(co).unwrap();
    assert_eq!(t.get(to).unwrap().controlled(), 0);

    // At 310 the template runs out but still controls two ESTABLISHED conns: re-armed 60 s.
    let mut expired = Vec::new();
    t.advance(310, usize::MAX, |_, c| {
        expired.push((c.dest_id(), c.load_class()))
    });
    assert_eq!(
        expired,
        [(2, LoadClass::Persistent)],
        "only the unused other-network template"
    );
    assert_eq!(t.get(ta).unwrap().expires(), 370);
    assert_eq!(
        t.lookup_template(&TemplateKey::for_service(Protocol::Tcp, b, 24, VIP, 443)),
        Some(ta)
    );

    // Still controlling at 370: again 60 s.
    t.advance(370, usize::MAX, |_, c| {
        expired.push((c.dest_id(), c.load_class()))
    });
    assert_eq!(t.get(ta).unwrap().expires(), 430);
    // The conns go; the template lives until its (re-armed) timer.
    let ra = t.remove(ca).unwrap();
    assert_eq!(
        (ra.load_class(), ra.template()),
        (LoadClass::Active, Some(ta))
    );
    t.remove(cb).unwrap();
    assert_eq!(t.get(ta).unwrap().controlled(), 0);
    t.check_consistency().unwrap();
    t.advance(429, usize::MAX, |_, c| {
        expired.push((c.dest_id(), c.load_class()))
    });
    assert_eq!(expired.len(), 1);
    t.advance(430, usize::MAX, |_, c| {
        expired.push((c.dest_id(), c.load_class()))
    });
    assert_eq!(
        expired,
        [(2, LoadClass::Persistent), (1, LoadClass::Persistent)]
    );
    assert!(t.is_empty());
    t.check_consistency().unwrap();
}

#[test]
fn unusable_dest_invalidates_template() {
    let mut t = ConnTable::with_capacity(64, Timeouts::default());
    let a = Ipv4Addr::new(198, 51, 100, 10);
    let (ca, t1, _) = connect(&mut t, a, 40000, 0, 1, |_| true);
    // Dest 1 removed/quiesced: the template is dropped from the index, a new one is made.
    let (cb, t2, created) = connect(&mut t, a, 40001, 5, 2, |d| d != 1);
    assert!(created);
    assert_ne!(t1, t2);
    assert_eq!(t.get(cb).unwrap().dest_id(), 2);
    // The old template lingers (still counted, still controlling conn a) but is unfindable.
    let old = *t.get(t1).unwrap();
    assert_eq!((old.controlled(), old.dest_id()), (1, 1));
    let key = TemplateKey::for_service(Protocol::Tcp, a, 24, VIP, 443);
    assert_eq!(t.lookup_template(&key), Some(t2));
    t.check_consistency().unwrap();

    // remove() on a template still controlling conns defers to its timer.
    assert_eq!(t.remove(t2), None);
    assert!(t.get(t2).is_some());
    assert_eq!(t.lookup_template(&key), None);
    t.check_consistency().unwrap();

    t.remove(ca).unwrap();
    t.remove(cb).unwrap();
    let mut gone = Vec::new();
    t.advance(304, usize::MAX, |_, c| gone.push(c.dest_id()));
    assert_eq!(gone, [1], "the invalidated template at its own timeout");
    t.advance(305, usize::MAX, |_, c| gone.push(c.dest_id()));
    gone.sort();
    assert_eq!(gone, [1, 2]);
    assert!(t.is_empty());
}

#[test]
fn controlled_conns_are_not_reused_on_syn() {
    let mut t = ConnTable::with_capacity(8, Timeouts::default());
    let (c, _, _) = connect(&mut t, Ipv4Addr::new(198, 51, 100, 1), 1, 0, 1, |_| true);
    t.on_packet(c, Direction::Input, 0x04, 1).unwrap(); // RST -> CLOSE
    assert_eq!(t.get(c).unwrap().state(), ConnState::Tcp(TcpState::Close));
    assert_eq!(t.reuse_on_syn(c, SYN), None);
    assert!(t.get(c).is_some());
}

#[test]
fn fwmark_templates() {
    let mut t: ConnTable = ConnTable::with_capacity(8, Timeouts::default());
    let key = TemplateKey::for_fwmark(Ipv4Addr::new(198, 51, 100, 99), 16, 5);
    assert_eq!(key.flow().proto, 0);
    assert_eq!(key.flow().saddr, Ipv4Addr::new(198, 51, 0, 0));
    assert_eq!(key.flow().daddr, Ipv4Addr::new(0, 0, 0, 5));
    let new = NewTemplate {
        key,
        daddr: Ipv4Addr::new(192, 0, 2, 3),
        dport: 0,
        fwd: ForwardMethod::Tunnel,
        dest_id: 9,
        service_id: 4,
        timeout: 360,
    };
    let idx = t.insert_template(new, 0).unwrap();
    let c = t.get(idx).unwrap();
    assert_eq!(
        (c.proto_label(), c.state_name(), c.expires_in(0)),
        ("IP", "NONE", 360)
    );
    // Found from another client of the same /16, not from another mark.
    let same = TemplateKey::for_fwmark(Ipv4Addr::new(198, 51, 7, 1), 16, 5);
    assert_eq!(t.use_template(&same, 360, 100, |_| true), Some(idx));
    assert_eq!(t.get(idx).unwrap().expires(), 460);
    assert_eq!(
        t.lookup_template(&TemplateKey::for_fwmark(
            Ipv4Addr::new(198, 51, 7, 1),
            16,
            6
        )),
        None
    );
    // A template is not a connection: a packet lookup with the same tuple misses it.
    assert_eq!(t.lookup_in(key.flow()), None);
    assert_eq!(t.on_packet(idx, Direction::Input, SYN, 1), None);
    // Same key twice is refused.
    assert!(t.insert_template(new, 0).is_err());
    t.check_consistency().unwrap();
}

#[test]
fn clear_reports_everything_including_controlling_templates() {
    let mut t = ConnTable::with_capacity(16, Timeouts::default());
    let (c1, tm, _) = connect(&mut t, Ipv4Addr::new(198, 51, 100, 1), 1, 0, 1, |_| true);
    let (c2, _, _) = connect(&mut t, Ipv4Addr::new(198, 51, 100, 2), 2, 0, 1, |_| true);
    // remove() defers a template that still controls conns...
    assert_eq!(t.remove(tm), None);
    assert_eq!(t.len(), 3);
    // ...clear() does not.
    let mut seen = Vec::new();
    t.clear(|i, c| seen.push((i, c.load_class())));
    seen.sort_by_key(|(i, _)| *i);
    let mut want = vec![
        (c1, LoadClass::Active),
        (c2, LoadClass::Active),
        (tm, LoadClass::Persistent),
    ];
    want.sort_by_key(|(i, _)| *i);
    assert_eq!(seen, want);
    assert!(t.is_empty());
    t.check_consistency().unwrap();
    assert_eq!(
        t.advance(10_000, usize::MAX, |_, _| panic!("nothing left"))
            .expired,
        0
    );
    // Usable again, at full capacity.
    for i in 0..16u16 {
        let new = NewConn {
            proto: Protocol::Udp,
            caddr: Ipv4Addr::new(198, 51, 100, 1),
            cport: i,
            vaddr: VIP,
            vport: 53,
            daddr: Ipv4Addr::new(192, 0, 2, 1),
            dport: 53,
            fwd: ForwardMethod::Route,
            dest_id: 1,
            service_id: 1,
            template: None,
        };
        t.insert(new, 10_000).unwrap();
    }
    t.check_consistency().unwrap();
    assert_eq!(t.len(), 16);
}
