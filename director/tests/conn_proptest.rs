//! Random operation sequences against a reference model: the table never gets corrupted
//! (len matches, every key resolves to its entry, internal links consistent), and the load
//! events it reports keep per-destination counters equal to what the live entries say.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use director::dataplane::conn::tcp_flags::{ACK, FIN, RST, SYN};
use director::dataplane::conn::{
    Candidate, Conn, ConnIdx, ConnTable, Direction, FlowKey, InsertError, LoadChange, LoadClass,
    NewConn, NewTemplate, TemplateKey, Timeouts,
};
use director::model::{ForwardMethod, Protocol};
use proptest::prelude::*;

const CAPACITY: usize = 12;
const FLAG_SETS: [u8; 7] = [SYN, SYN | ACK, ACK, FIN | ACK, RST, 0, ACK | 0x08];

#[derive(Debug, Clone)]
enum Op {
    Insert {
        client: u8,
        cport: u8,
        vip: u8,
        rs: u8,
        fwd: u8,
        udp: bool,
        tmpl: Option<usize>,
    },
    Template {
        client: u8,
        vip: u8,
        usable: bool,
    },
    Packet {
        pick: usize,
        output: bool,
        flags: usize,
    },
    Reuse {
        pick: usize,
        flags: usize,
    },
    Remove {
        pick: usize,
    },
    Advance {
        dt: u16,
        max: u8,
    },
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..6u8, 0..3u8, 0..2u8, 0..2u8, 0..3u8, any::<bool>(), prop::option::of(0..8usize)).prop_map(
            |(client, cport, vip, rs, fwd, udp, tmpl)| Op::Insert { client, cport, vip, rs, fwd, udp, tmpl }
        ),
        1 => (0..6u8, 0..2u8, any::<bool>()).prop_map(|(client, vip, usable)| Op::Template { client, vip, usable }),
        4 => (any::<usize>(), any::<bool>(), 0..FLAG_SETS.len())
            .prop_map(|(pick, output, flags)| Op::Packet { pick, output, flags }),
        1 => (any::<usize>(), 0..FLAG_SETS.len()).prop_map(|(pick, flags)| Op::Reuse { pick, flags }),
        1 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
        2 => (0..400u16, 0..20u8).prop_map(|(dt, max)| Op::Advance { dt, max }),
        1 => Just(Op::Clear),
    ]
}

fn client(c: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100 + c / 3, c % 3 + 1)
}
fn vip(v: u8) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, v + 1)
}

/// What the model knows about a live entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    template: bool,
    hashed: bool,
    inbound: FlowKey<Ipv4Addr>,
    reply: Option<FlowKey<Ipv4Addr>>,
    class: LoadClass,
    dest: u32,
}

#[derive(Default)]
struct Model {
    live: HashMap<ConnIdx, Entry>,
    /// Per destination: (active, inactive, persistent), as a caller would keep them.
    load: HashMap<u32, (i64, i64, i64)>,
    /// The last few entries freed (stale guesses for `lookup_packet`).
    freed: Vec<ConnIdx>,
}

impl Model {
    fn bind(&mut self, dest: u32, class: LoadClass, delta: i64) {
        let l = self.load.entry(dest).or_default();
        match class {
            LoadClass::Active => l.0 += delta,
            LoadClass::Inactive => l.1 += delta,
            LoadClass::Persistent => l.2 += delta,
        }
    }

    fn unbind(&mut self, idx: ConnIdx, c: &Conn<Ipv4Addr>) {
        let e = self
            .live
            .remove(&idx)
            .expect("table removed an entry the model does not know");
        if self.freed.len() == 4 {
            self.freed.remove(0);
        }
        self.freed.push(idx);
        assert_eq!(e.template, c.is_template());
        assert_eq!(e.inbound, c.inbound_key());
        assert_eq!(
            e.class,
            c.load_class(),
            "class drifted from the reported events"
        );
        self.bind(e.dest, e.class, -1);
    }

    fn inbound_taken(&self, key: &FlowKey<Ipv4Addr>, template: bool) -> bool {
        self.live
            .values()
            .any(|e| e.hashed && e.template == template && e.inbound == *key)
    }

    fn reply_taken(&self, key: &FlowKey<Ipv4Addr>) -> bool {
        self.live.values().any(|e| e.reply == Some(*key))
    }

    fn pick(&self, pick: usize, template: Option<bool>) -> Option<ConnIdx> {
        let mut ids: Vec<_> = self
            .live
            .iter()
            .filter(|(_, e)| template.is_none_or(|t| e.template == t))
            .map(|(i, _)| *i)
            .collect();
        ids.sort();
        (!ids.is_empty()).then(|| ids[pick % ids.len()])
    }
}

fn check(t: &ConnTable, m: &Model) {
    t.check_consistency().unwrap();
    assert_eq!(t.len(), m.live.len());
    for (idx, e) in &m.live {
        let c = t.get(*idx).expect("model entry not live in table");
        assert_eq!(c.inbound_key(), e.inbound);
        assert_eq!(c.load_class(), e.class);
        if e.template {
            let key =
                TemplateKey::for_service(Protocol::Tcp, e.inbound.saddr, 24, e.inbound.daddr, 80);
            if e.hashed {
                assert_eq!(t.lookup_template(&key), Some(*idx));
            } else {
                assert_ne!(t.lookup_template(&key), Some(*idx));
            }
        } else {
            assert_eq!(t.lookup_in(&e.inbound), Some(*idx));
            if let Some(r) = e.reply {
                assert_eq!(t.lookup_reply(&r), Some(*idx));
            }
            // One probe run for either direction, whatever the guess: none, the index's,
            // the right entry, other live entries, freed ones.
            let mut guesses: Vec<Candidate> = vec![Candidate::NONE, Candidate::from(*idx)];
            guesses.extend(m.live.keys().take(3).map(|&i| Candidate::from(i)));
            guesses.extend(m.freed.iter().map(|&i| Candidate::from(i)));
            let keys = [(e.inbound, Direction::Input)]
                .into_iter()
                .chain(e.reply.map(|r| (r, Direction::Output)));
            for (key, dir) in keys {
                let h = t.hash_in(&key);
                let mut tried = guesses.clone();
                tried.push(t.prefetch_entry(h));
                for g in tried {
                    assert_eq!(
                        t.lookup_packet(&key, h, g),
                        Some((*idx, dir)),
                        "{key:?} {g:?}"
                    );
                }
            }
            // A tuple no entry has: nothing, whatever the guess.
            let absent = FlowKey {
                sport: 60_000,
                ..e.inbound
            };
            let h = t.hash_in(&absent);
            assert_eq!(t.lookup_packet(&absent, h, Candidate::from(*idx)), None);
        }
    }
    // The counters a caller keeps from the events equal what the live entries say.
    let mut want: HashMap<u32, (i64, i64, i64)> = HashMap::new();
    for e in m.live.values() {
        let l = want.entry(e.dest).or_default();
        match e.class {
            LoadClass::Active => l.0 += 1,
            LoadClass::Inactive => l.1 += 1,
            LoadClass::Persistent => l.2 += 1,
        }
    }
    for (dest, l) in &m.load {
        assert_eq!(
            *l,
            want.get(dest).copied().unwrap_or_default(),
            "dest {dest}"
        );
    }
}

fn run(ops: Vec<Op>) {
    let mut t: ConnTable = ConnTable::with_capacity(CAPACITY, Timeouts::default());
    let mut m = Model::default();
    let mut now = 0u32;
    let mut next_dest = 100u32;
    for op in ops {
        match op {
            Op::Insert {
                client: c,
                cport,
                vip: v,
                rs,
                fwd,
                udp,
                tmpl,
            } => {
                let fwd = [
                    ForwardMethod::Route,
                    ForwardMethod::Tunnel,
                    ForwardMethod::Masq,
                ][fwd as usize];
                let proto = if udp { Protocol::Udp } else { Protocol::Tcp };
                let template = tmpl.and_then(|p| m.pick(p, Some(true)));
                let new = NewConn {
                    proto,
                    caddr: client(c),
                    cport: 1000 + u16::from(cport),
                    vaddr: vip(v),
                    vport: 80,
                    daddr: Ipv4Addr::new(192, 0, 2, rs + 1),
                    dport: 8080,
                    fwd,
                    dest_id: u32::from(rs),
                    service_id: u32::from(v),
                    template,
                };
                let inbound = FlowKey::new(proto.number(), new.caddr, new.cport, new.vaddr, 80);
                let reply = (fwd == ForwardMethod::Masq)
                    .then(|| FlowKey::new(proto.number(), new.daddr, 8080, new.caddr, new.cport));
                let want = if m.live.len() == CAPACITY {
                    Err(InsertError::TableFull)
                } else if m.inbound_taken(&inbound, false)
                    || reply.is_some_and(|r| m.reply_taken(&r))
                {
                    Err(InsertError::Exists)
                } else {
                    Ok(())
                };
                let got = t.insert(new, now);
                assert_eq!(got.map(|_| ()), want);
                if let Ok(idx) = got {
                    let e = Entry {
                        template: false,
                        hashed: true,
                        inbound,
                        reply,
                        class: LoadClass::Inactive,
                        dest: new.dest_id,
                    };
                    assert!(m.live.insert(idx, e).is_none());
                    m.bind(e.dest, e.class, 1);
                }
            }
            Op::Template {
                client: c,
                vip: v,
                usable,
            } => {
                let key = TemplateKey::for_service(Protocol::Tcp, client(c), 24, vip(v), 80);
                let before = t.lookup_template(&key);
                let found = t.use_template(&key, 100, now, |_| usable);
                match (before, found) {
                    (Some(b), Some(f)) => assert!(usable && b == f),
                    (Some(b), None) => {
                        assert!(!usable);
                        m.live.get_mut(&b).unwrap().hashed = false;
                    }
                    (None, Some(_)) => panic!("use_template found what lookup did not"),
                    (None, None) => {}
                }
                if found.is_none() {
                    next_dest += 1;
                    let new = NewTemplate {
                        key,
                        daddr: Ipv4Addr::new(192, 0, 2, 200),
                        dport: 8080,
                        fwd: ForwardMethod::Masq,
                        dest_id: next_dest,
                        service_id: 0,
                        timeout: 100,
                    };
                    match t.insert_template(new, now) {
                        Ok(idx) => {
                            let e = Entry {
                                template: true,
                                hashed: true,
                                inbound: *key.flow(),
                                reply: None,
                                class: LoadClass::Persistent,
                                dest: next_dest,
                            };
                            m.live.insert(idx, e);
                            m.bind(next_dest, LoadClass::Persistent, 1);
                        }
                        Err(e) => {
                            assert_eq!(e, InsertError::TableFull);
                            assert_eq!(m.live.len(), CAPACITY);
                        }
                    }
                }
            }
            Op::Packet {
                pick,
                output,
                flags,
            } => {
                let Some(idx) = m.pick(pick, Some(false)) else {
                    continue;
                };
                let dir = if output {
                    Direction::Output
                } else {
                    Direction::Input
                };
                let ch = t.on_packet(idx, dir, FLAG_SETS[flags], now).unwrap();
                let e = m.live.get_mut(&idx).unwrap();
                let dest = e.dest;
                match ch.load {
                    LoadChange::None => {}
                    LoadChange::Activated => {
                        assert_eq!(e.class, LoadClass::Inactive);
                        e.class = LoadClass::Active;
                        m.bind(dest, LoadClass::Inactive, -1);
                        m.bind(dest, LoadClass::Active, 1);
                    }
                    LoadChange::Deactivated => {
                        assert_eq!(e.class, LoadClass::Active);
                        e.class = LoadClass::Inactive;
                        m.bind(dest, LoadClass::Active, -1);
                        m.bind(dest, LoadClass::Inactive, 1);
                    }
                }
            }
            Op::Reuse { pick, flags } => {
                let Some(idx) = m.pick(pick, Some(false)) else {
                    continue;
                };
                if let Some(old) = t.reuse_on_syn(idx, FLAG_SETS[flags]) {
                    assert!(FLAG_SETS[flags] & SYN != 0);
                    m.unbind(idx, &old);
                }
            }
            Op::Remove { pick } => {
                let Some(idx) = m.pick(pick, None) else {
                    continue;
                };
                match t.remove(idx) {
                    Some(old) => m.unbind(idx, &old),
                    None => {
                        // Only a template still controlling conns is kept (unhashed).
                        let c = t.get(idx).unwrap();
                        assert!(c.is_template() && c.controlled() > 0);
                        m.live.get_mut(&idx).unwrap().hashed = false;
                    }
                }
            }
            Op::Advance { dt, max } => {
                now += u32::from(dt);
                let mut gone = Vec::new();
                let limit = if max == 0 {
                    usize::MAX
                } else {
                    usize::from(max)
                };
                let stats = t.advance(now, limit, |i, c| gone.push((i, *c)));
                assert!(gone.len() <= limit);
                assert_eq!(stats.expired, gone.len());
                for (i, c) in gone {
                    assert!(c.expires() <= now, "expired early");
                    m.unbind(i, &c);
                }
                if !stats.more {
                    for (_, c) in t.iter() {
                        assert!(c.expires() > now, "due entry left behind: {c:?}");
                    }
                }
            }
            Op::Clear => {
                let mut gone = Vec::new();
                t.clear(|i, c| gone.push((i, *c)));
                assert_eq!(gone.len(), m.live.len());
                for (i, c) in gone {
                    m.unbind(i, &c);
                }
            }
        }
        check(&t, &m);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]
    #[test]
    fn random_operations_keep_the_table_consistent(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
