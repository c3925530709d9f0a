//! Memory per connection at 1M NAT entries (both keys indexed): what the table allocated and
//! what the process's RSS grew by, each divided by the entry count, must stay <= 128 bytes.
//! Also: churn (remove + insert) after that never grows the allocation.
//! Its own test binary, so no other test allocates while RSS is measured.

use std::net::Ipv4Addr;

use director::dataplane::conn::{Conn, ConnIdx, ConnTable, FlowKey, NewConn, Timeouts};
use director::model::{ForwardMethod, Protocol};

const N: usize = 1_000_000;
const BUDGET: usize = 128;

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("procfs");
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn conn(i: usize) -> NewConn<Ipv4Addr> {
    NewConn {
        proto: Protocol::Tcp,
        caddr: Ipv4Addr::from(0x0A00_0000 + (i / 50) as u32),
        cport: 1024 + (i % 50) as u16,
        vaddr: Ipv4Addr::new(203, 0, 113, 1),
        vport: 80,
        daddr: Ipv4Addr::new(192, 0, 2, (i % 200) as u8 + 1),
        dport: 8080,
        fwd: ForwardMethod::Masq,
        dest_id: (i % 200) as u32,
        service_id: 1,
        template: None,
    }
}

fn inbound(c: &NewConn<Ipv4Addr>) -> FlowKey<Ipv4Addr> {
    FlowKey::new(c.proto.number(), c.caddr, c.cport, c.vaddr, c.vport)
}

#[test]
fn one_million_nat_conns_within_budget() {
    let before = rss_bytes();
    let mut t: ConnTable = ConnTable::with_capacity(N, Timeouts::default());
    let allocated = t.memory_bytes();
    let mut ids: Vec<ConnIdx> = Vec::with_capacity(N);
    let ids_bytes = N * std::mem::size_of::<ConnIdx>();
    for i in 0..N {
        ids.push(t.insert(conn(i), 0).unwrap());
    }
    let after = rss_bytes();
    assert_eq!(t.len(), N);
    let entry = std::mem::size_of::<Conn<Ipv4Addr>>();
    let per_alloc = allocated / N;
    let per_rss = (after - before).saturating_sub(ids_bytes) / N;
    println!(
        "conn entry {entry} B; table allocated {allocated} B = {per_alloc} B/conn; \
         RSS grew {} B = {per_rss} B/conn (test's own index vector excluded)",
        after - before
    );
    assert_eq!(entry, 64, "one cache line per entry");
    assert!(per_alloc <= BUDGET, "{per_alloc} B/conn allocated");
    assert!(per_rss <= BUDGET, "{per_rss} B/conn RSS");

    // Full table: refuse, then churn half the table through remove + insert of new keys.
    assert!(t.insert(conn(N), 0).is_err());
    for (k, i) in (0..N).step_by(2).enumerate() {
        t.remove(ids[i]).unwrap();
        ids[i] = t.insert(conn(N + k), 1).unwrap();
    }
    assert_eq!(t.len(), N);
    assert_eq!(t.memory_bytes(), allocated, "the indexes grew");
    assert_eq!(t.lookup_in(&inbound(&conn(N + 7))), Some(ids[14]));
    let grown = rss_bytes().saturating_sub(after);
    assert!(grown < N, "RSS grew {grown} B during churn");
}
