//! Director code per established packet, in memory: the real `Pipeline::process_burst` on
//! byte-vector packets, no DPDK, no generator thread. A quiet, deterministic figure for A/B
//! comparisons of pipeline changes and for callgrind (instructions per packet), next to the
//! bench binary's probe (which times the same call on mbufs fed by a generator).
//!
//! `cargo run --release -p bench --example pipeline_cost -- [nat|dr|tun|reply] CONNS PACKETS [mbuf]`
//! e.g. `... -- nat 1000 20000000`; under callgrind use a few hundred thousand packets. With
//! `mbuf` the packets are DPDK mbufs (EAL without hugepages), as in the workers. `reply`
//! times the NAT real servers' replies (real server -> client, SNAT) of established NAT
//! connections instead of the clients' packets.

use std::sync::Arc;
use std::time::Instant;

use bench::flows::{client, shuffled};
use bench::frame::{Segment, Template};
use bench::topo::{self, Method};
use director::dataplane::conn::Timeouts;
use director::dataplane::packet::{PacketBuf, VecPacket};
use director::dataplane::pipeline::{Action, Ctx, Pipeline, PipelineConfig, STAGE};
use director::dpdk::{eal, Mbuf, Mempool};
use director::metrics::WorkerCounters;

/// One burst through the pipeline, its packets moved from `pkts` to `back`; returns how many
/// were not transmitted. Not inlined, so that callgrind can count it on its own
/// (`--toggle-collect='*burst*'`).
#[inline(never)]
fn burst<P: PacketBuf>(
    pipe: &mut Pipeline<P>,
    pkts: &mut Vec<P>,
    back: &mut Vec<P>,
    ctx: &Ctx,
) -> u64 {
    let mut bad = 0;
    pipe.process_burst(pkts.drain(..).map(|p| (p, 0)), ctx, false, |a, _| match a {
        Action::Tx(_, p) => back.push(p),
        Action::Drop(_, p) | Action::Redirect(_, p) | Action::Consumed(p) => {
            bad += 1;
            back.push(p)
        }
        Action::Held => bad += 1,
    });
    bad
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.get(3).map(String::as_str) == Some("mbuf") {
        let eal_args: Vec<String> = [
            "pipeline_cost",
            "-l",
            "0",
            "--no-huge",
            "--no-shconf",
            "-m",
            "256",
            "--no-pci",
            "--no-telemetry",
            "--log-level=lib.eal:warning",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        eal::init(&eal_args).map_err(|e| format!("EAL: {e}"))?;
        let pool = Mempool::new("cost_pool", 4095, 0, 2176).map_err(|e| format!("pool: {e}"))?;
        let p2 = pool.clone();
        return run::<Mbuf>(&args, pool, move |f| {
            Mbuf::from_bytes(&p2, f).expect("the pool has room")
        });
    }
    run::<VecPacket>(&args, (), VecPacket::from_frame)
}

fn run<P: PacketBuf>(
    args: &[String],
    pool: P::Pool,
    packet: impl Fn(&[u8]) -> P,
) -> Result<(), String> {
    let mode = args.first().map(String::as_str).unwrap_or("nat");
    let (method, replies) = match mode {
        "nat" => (Method::Nat, false),
        "dr" => (Method::Dr, false),
        "tun" => (Method::Tun, false),
        "reply" => (Method::Nat, true),
        m => return Err(format!("unknown mode {m:?} (nat, dr, tun, reply)")),
    };
    let conns: u32 = args
        .get(1)
        .map_or(Ok(1000), |s| s.parse())
        .map_err(|e| format!("CONNS: {e}"))?;
    let packets: u64 = args
        .get(2)
        .map_or(Ok(10_000_000), |s| s.parse())
        .map_err(|e| format!("PACKETS: {e}"))?;

    let snap = topo::snapshot(1)?;
    let net = if replies {
        topo::net_state_routed()?
    } else {
        topo::net_state()?
    };
    let neigh = topo::neighbours(&net)?;
    let ctx = Ctx {
        snap: &snap,
        net: &net,
        neigh: &neigh,
        now_s: 1,
        now_ns: 1_000_000_000,
    };
    let counters = Arc::new(WorkerCounters::new(0));
    let cfg = PipelineConfig::new(0, 1, conns as usize);
    let mut pipe: Pipeline<P> = Pipeline::new(&cfg, Timeouts::default(), counters, pool, None);

    let syn = Template::new(method.vip(), 64, Segment::Syn)?;
    let t0 = Instant::now();
    for i in 0..u64::from(conns) {
        let (a, p) = client(i);
        match pipe.process(packet(&syn.frame(a, p)), 0, &ctx, false) {
            Action::Tx(..) => {}
            _ => return Err(format!("flow {i}: the SYN was not forwarded")),
        }
    }
    let populate = t0.elapsed();

    let ack = Template::new(method.vip(), 64, Segment::Ack)?;
    let order = shuffled(conns, 7);
    // Each connection's client ACK once, untimed: it moves the connection from SYN_RECV to
    // ESTABLISHED (a state change, which the fast path leaves to the full path), so every
    // timed packet is an established one, whatever the ratio of packets to connections (at
    // 10 M connections and 20 M packets, half of them would otherwise be first ACKs).
    // Replies: its output (client -> real server) turned around into the real server's
    // reply: addresses, ports and MACs swapped, which leaves both checksums valid.
    let mut reply_frames: Vec<u8> = Vec::new();
    if replies {
        reply_frames.reserve(conns as usize * ack.len());
    }
    for i in 0..u64::from(conns) {
        let (a, p) = client(i);
        let Action::Tx(_, out) = pipe.process(packet(&ack.frame(a, p)), 0, &ctx, false) else {
            return Err(format!("flow {i}: the ACK was not forwarded"));
        };
        if replies {
            reply_frames.extend_from_slice(&turned_around(out.data()));
        }
    }
    let mut pkts: Vec<P> = (0..STAGE)
        .map(|_| packet(&ack.frame(client(0).0, client(0).1)))
        .collect();
    let ack_len = pkts[0].len();
    let mut back: Vec<P> = Vec::with_capacity(STAGE);
    let mut next = 0usize;
    let mut spent = std::time::Duration::ZERO;
    let mut done = 0u64;
    let mut bad = 0u64;
    while done < packets {
        for p in pkts.iter_mut() {
            let flow = order[next] as usize;
            next = if next + 1 == order.len() { 0 } else { next + 1 };
            if replies {
                let f = &reply_frames[flow * ack_len..(flow + 1) * ack_len];
                p.data_mut().copy_from_slice(f);
            } else {
                let (a, port) = client(flow as u64);
                ack.write(p.data_mut(), a, port);
            }
        }
        let t = Instant::now();
        bad += burst(&mut pipe, &mut pkts, &mut back, &ctx);
        spent += t.elapsed();
        std::mem::swap(&mut pkts, &mut back);
        if pkts.len() != STAGE {
            return Err(format!("{} packets came back of {STAGE}", pkts.len()));
        }
        // A tunnelled packet came back 20 bytes longer, in its headroom: a fresh one takes
        // its place (outside the timed part), so every burst is made of plain frames.
        for p in pkts.iter_mut() {
            if p.len() != ack_len {
                *p = packet(&ack.frame(client(0).0, client(0).1));
            }
        }
        done += STAGE as u64;
    }
    if bad > 0 {
        return Err(format!("{bad} packets were not forwarded"));
    }
    let method = if replies {
        "NatReply".to_string()
    } else {
        format!("{method:?}")
    };
    println!(
        "{method} conns {conns}: populate {:.0} ns/conn; established {:.1} ns/packet over {done} packets",
        populate.as_nanos() as f64 / f64::from(conns.max(1)),
        spent.as_nanos() as f64 / done as f64
    );
    Ok(())
}

/// The frame a real server sends back for `fwd`, a client's frame as the director forwarded
/// it: MACs, IPv4 addresses and TCP ports swapped (sums of the same words: both checksums
/// stay valid).
fn turned_around(fwd: &[u8]) -> Vec<u8> {
    let mut f = fwd.to_vec();
    let (eth, ip, l4) = (0, 14, 34);
    for (a, b, n) in [(eth, eth + 6, 6), (ip + 12, ip + 16, 4), (l4, l4 + 2, 2)] {
        for k in 0..n {
            f.swap(a + k, b + k);
        }
    }
    f
}
