//! The per-packet pipeline in memory (`Pipeline<VecPacket>`), frame in -> action out, against
//! frames scapy built (tests/golden_dp/gen.py): NAT/DR/TUN forwarding, connection states and
//! destination counts, per-destination statistics, expiry, persistence, quiesced and removed
//! destinations, ARP, ICMP, truncation and table-full behaviour.
//!
//! Topology (as gen.py): port 0 "outside" (203.0.113.1/24, clients and VIPs), port 1 "inside"
//! (198.51.100.1/24, real servers); see `classic()` for the services.

#[path = "golden_dp/frames.rs"]
mod frames;
#[path = "golden_dp/topo.rs"]
mod topo;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crossbeam::channel::Receiver;
use director::dataplane::conn::Timeouts as ConnTimeouts;
use director::dataplane::drop::{Drop as DpDrop, PipelineDrop};
use director::dataplane::neigh::{event_channel, NeighEvent, NeighManager, NeighTable};
use director::dataplane::netstate::NetState;
use director::dataplane::packet::{PacketBuf, VecPacket};
use director::dataplane::pipeline::{Action, Ctx, Pipeline, PipelineConfig};
use director::dataplane::snapshot::{
    ServiceInput, Snapshot, SnapshotBuilder, StatsRegistry, Timeouts,
};
use director::metrics::counters::StatTotals;
use director::metrics::WorkerCounters;
use director::wire::DropReason;
use frames::{assert_frame, get};
use topo::*;

/// The packets a pipeline generated besides the processed ones: (port, frame).
type Generated = Vec<(u16, Vec<u8>)>;

/// One pipeline with everything it reads, at a settable time.
struct Lab {
    registry: StatsRegistry,
    snap: Snapshot,
    generation: u64,
    net: NetState,
    neigh_mgr: NeighManager,
    neigh: Arc<NeighTable>,
    events: Receiver<NeighEvent>,
    pipe: Pipeline<VecPacket>,
    now_s: u32,
    now_ns: u64,
}

impl Lab {
    fn new(services: Vec<ServiceInput>) -> Self {
        Self::with(PipelineConfig::new(0, 1, 1024), services)
    }

    fn with(cfg: PipelineConfig, services: Vec<ServiceInput>) -> Self {
        let net = net_state();
        let mut neigh_mgr = neighbours(&net);
        let neigh = neigh_mgr.snapshot();
        let mut registry = StatsRegistry::new(cfg.n_workers);
        let snap = SnapshotBuilder::new(&mut registry, None)
            .build(1, &services, Timeouts::default())
            .expect("snapshot");
        let (tx, events) = event_channel(64);
        let counters = Arc::new(WorkerCounters::new(cfg.worker as u16));
        let pipe = Pipeline::new(&cfg, ConnTimeouts::default(), counters, (), Some(tx));
        Lab {
            registry,
            snap,
            generation: 1,
            net,
            neigh_mgr,
            neigh,
            events,
            pipe,
            now_s: 1000,
            now_ns: 1_000_000_000_000,
        }
    }

    /// Publishes a new configuration (the control plane's reload).
    fn reconfigure(&mut self, services: Vec<ServiceInput>) {
        self.generation += 1;
        let snap = SnapshotBuilder::new(&mut self.registry, Some(&self.snap))
            .build(self.generation, &services, Timeouts::default())
            .expect("snapshot");
        self.snap = snap;
    }

    fn send_bytes(&mut self, frame: &[u8], port: u16, steered: bool) -> Action<VecPacket> {
        let ctx = Ctx {
            snap: &self.snap,
            net: &self.net,
            neigh: &self.neigh,
            now_s: self.now_s,
            now_ns: self.now_ns,
        };
        self.pipe
            .process(VecPacket::from_frame(frame), port, &ctx, steered)
    }

    /// `frames` (frame, input port) through `process_burst` in bursts of up to 32; the
    /// outcome of each frame in order and the generated packets of each burst.
    fn send_burst(
        &mut self,
        frames: &[(Vec<u8>, u16)],
        steered: bool,
    ) -> (Vec<String>, Vec<Generated>) {
        let (mut outcomes, mut extras) = (Vec::new(), Vec::new());
        for chunk in frames.chunks(32) {
            let ctx = Ctx {
                snap: &self.snap,
                net: &self.net,
                neigh: &self.neigh,
                now_s: self.now_s,
                now_ns: self.now_ns,
            };
            let pkts = chunk
                .iter()
                .map(|(f, port)| (VecPacket::from_frame(f), *port));
            self.pipe
                .process_burst(pkts, &ctx, steered, |a, _| outcomes.push(outcome(a)));
            extras.push(self.take_extra());
        }
        (outcomes, extras)
    }

    fn send(&mut self, name: &str, port: u16) -> Action<VecPacket> {
        self.send_bytes(get(name), port, false)
    }

    /// Sends golden `NAME.in` on `port_in`; it must leave on `port_out` as `NAME.out`.
    #[track_caller]
    fn pass(&mut self, name: &str, port_in: u16, port_out: u16) {
        let a = self.send(&format!("{name}.in"), port_in);
        expect_tx(a, port_out, &format!("{name}.out"));
        assert!(self.pipe.extra.is_empty(), "{name}: nothing generated");
    }

    /// Sends golden `name` on `port`; it must be dropped for `reason`.
    #[track_caller]
    fn refuse(&mut self, name: &str, port: u16, reason: DpDrop) {
        let a = self.send(name, port);
        expect_drop(a, reason, name);
    }

    fn expire(&mut self) -> usize {
        let ctx = Ctx {
            snap: &self.snap,
            net: &self.net,
            neigh: &self.neigh,
            now_s: self.now_s,
            now_ns: self.now_ns,
        };
        self.pipe.expire(&ctx, 10_000)
    }

    fn service_pending(&mut self) {
        let ctx = Ctx {
            snap: &self.snap,
            net: &self.net,
            neigh: &self.neigh,
            now_s: self.now_s,
            now_ns: self.now_ns,
        };
        self.pipe.service_pending(&ctx);
    }

    /// Generated frames (port, bytes), emptying `extra`.
    fn take_extra(&mut self) -> Vec<(u16, Vec<u8>)> {
        self.pipe
            .extra
            .drain(..)
            .map(|(port, p)| (port, p.data().to_vec()))
            .collect()
    }

    fn events(&self) -> Vec<NeighEvent> {
        self.events.try_iter().collect()
    }

    /// (ActiveConn, InActConn, persistent templates) of a destination.
    fn load(&self, id: u32) -> (u32, u32, u32) {
        let (_, d) = self.snap.dest(id).expect("configured destination");
        (d.load.active(), d.load.inactive(), d.load.persistent())
    }

    fn stats(&self, id: u32) -> StatTotals {
        self.snap
            .dest(id)
            .expect("configured destination")
            .1
            .stats
            .sum()
    }

    /// Connections (not templates) as (client port, state, real server, real port).
    fn conns(&self) -> Vec<(u16, &'static str, Ipv4Addr, u16)> {
        let mut v: Vec<_> = self
            .pipe
            .conns
            .iter()
            .filter(|(_, c)| !c.is_template())
            .map(|(_, c)| (c.cport(), c.state_name(), c.daddr(), c.dport()))
            .collect();
        v.sort();
        v
    }

    fn state_of(&self, cport: u16) -> &'static str {
        self.conns()
            .into_iter()
            .find(|c| c.0 == cport)
            .map(|c| c.1)
            .unwrap_or_else(|| panic!("no connection from client port {cport}"))
    }

    fn drops(&self, reason: DpDrop) -> u64 {
        self.pipe.counters().drops[reason.index()].get()
    }
}

fn describe(a: &Action<VecPacket>) -> String {
    match a {
        Action::Tx(port, p) => format!("Tx(port {port}, {})", frames::hex(p.data())),
        Action::Redirect(w, _) => format!("Redirect(worker {w})"),
        Action::Drop(r, _) => format!("Drop({})", r.as_str()),
        Action::Consumed(_) => "Consumed".into(),
        Action::Held => "Held".into(),
    }
}

#[track_caller]
fn expect_tx(a: Action<VecPacket>, port: u16, golden: &str) {
    match a {
        Action::Tx(p, pkt) if p == port => assert_frame(pkt.data(), golden),
        other => panic!(
            "expected Tx on port {port} ({golden}), got {}",
            describe(&other)
        ),
    }
}

#[track_caller]
fn expect_drop(a: Action<VecPacket>, reason: DpDrop, what: &str) {
    match a {
        Action::Drop(r, _) if r == reason => {}
        other => panic!(
            "{what}: expected Drop({}), got {}",
            reason.as_str(),
            describe(&other)
        ),
    }
}

fn pdrop(p: PipelineDrop) -> DpDrop {
    DpDrop::Pipeline(p)
}

fn wdrop(r: DropReason) -> DpDrop {
    DpDrop::Wire(r)
}

fn len(name: &str) -> u64 {
    get(name).len() as u64
}

#[test]
fn golden_frames_are_what_gen_py_writes() {
    frames::check_file_is_current();
}

#[test]
fn nat_tcp_lifecycle_states_counts_stats_and_expiry() {
    let mut lab = Lab::new(classic());
    assert_eq!(lab.load(D_A), (0, 0, 0));

    lab.pass("nat.syn", 0, 1);
    assert_eq!(lab.conns(), vec![(40000, "SYN_RECV", RS_A, 8080)]);
    // SYN_RECV counts as active (kernel >= 4.10: "count pre-established TCP states as
    // active"); a connection is bound inactive and its first segment activates it.
    assert_eq!(lab.load(D_A), (1, 0, 0));
    assert_eq!(lab.load(D_B), (0, 0, 0));

    lab.pass("nat.synack", 1, 0);
    assert_eq!(lab.state_of(40000), "SYN_RECV");
    assert_eq!(lab.load(D_A), (1, 0, 0));

    lab.pass("nat.ack", 0, 1);
    assert_eq!(lab.state_of(40000), "ESTABLISHED");
    assert_eq!(lab.load(D_A), (1, 0, 0));

    lab.pass("nat.req", 0, 1);
    lab.pass("nat.resp", 1, 0);
    assert_eq!(lab.state_of(40000), "ESTABLISHED");
    assert_eq!(lab.load(D_A), (1, 0, 0));

    lab.pass("nat.cfin", 0, 1);
    assert_eq!(lab.state_of(40000), "CLOSE_WAIT");
    assert_eq!(lab.load(D_A), (0, 1, 0));
    lab.pass("nat.sfin", 1, 0);
    assert_eq!(lab.state_of(40000), "TIME_WAIT");
    lab.pass("nat.lastack", 0, 1);
    assert_eq!(lab.state_of(40000), "TIME_WAIT");
    assert_eq!(lab.load(D_A), (0, 1, 0));

    let ins = ["syn", "ack", "req", "cfin", "lastack"];
    let outs = ["synack", "resp", "sfin"];
    let inbytes: u64 = ins.iter().map(|s| len(&format!("nat.{s}.in"))).sum();
    let outbytes: u64 = outs.iter().map(|s| len(&format!("nat.{s}.in"))).sum();
    let want = StatTotals {
        conns: 1,
        inpkts: 5,
        outpkts: 3,
        inbytes,
        outbytes,
    };
    assert_eq!(lab.stats(D_A), want);
    assert_eq!(lab.stats(D_B), StatTotals::default());
    let (svc, _) = lab.snap.dest(D_A).expect("dest");
    assert_eq!(svc.stats.sum(), want, "service totals = its one busy dest");
    let c = lab.pipe.counters().snapshot();
    assert_eq!((c.conns_created, c.conn_table_size), (1, 1));

    // TIME_WAIT lasts 120 s from the last packet.
    lab.now_s += 119;
    assert_eq!(lab.expire(), 0);
    assert_eq!(lab.conns().len(), 1);
    lab.now_s += 1;
    assert_eq!(lab.expire(), 1);
    assert!(lab.conns().is_empty());
    assert_eq!(lab.load(D_A), (0, 0, 0), "expiry unbinds");
    let c = lab.pipe.counters().snapshot();
    assert_eq!((c.conns_expired, c.conn_table_size), (1, 0));

    // The connection is gone: a late segment has nothing to belong to.
    lab.refuse("nat.lastack.in", 0, pdrop(PipelineDrop::NoConnection));
    lab.refuse("nat.resp.in", 1, pdrop(PipelineDrop::NoConnection));
}

#[test]
fn established_connection_expires_after_the_tcp_timeout_unbinding_active() {
    let mut lab = Lab::new(classic());
    for s in ["syn", "ack"] {
        lab.pass(&format!("nat.{s}"), 0, 1);
    }
    assert_eq!(lab.load(D_A), (1, 0, 0));
    lab.now_s += 899;
    assert_eq!(lab.expire(), 0);
    lab.now_s += 1;
    assert_eq!(lab.expire(), 1);
    assert_eq!(lab.load(D_A), (0, 0, 0));
}

#[test]
fn rr_alternates_new_connections_across_clients() {
    let mut lab = Lab::new(classic());
    lab.pass("nat.syn", 0, 1); // -> RS_A
    lab.pass("rr2.syn", 0, 1); // -> RS_B
    lab.pass("rr3.syn", 0, 1); // -> RS_A
    assert_eq!(
        lab.conns(),
        vec![
            (40000, "SYN_RECV", RS_A, 8080),
            (40001, "SYN_RECV", RS_B, 8080),
            (40002, "SYN_RECV", RS_A, 8080),
        ]
    );
    assert_eq!(lab.load(D_A), (2, 0, 0));
    assert_eq!(lab.load(D_B), (1, 0, 0));
    assert_eq!((lab.stats(D_A).conns, lab.stats(D_B).conns), (2, 1));
    // A retransmitted SYN belongs to its connection: no new scheduling.
    lab.pass("rr2.syn", 0, 1);
    assert_eq!(lab.conns().len(), 3);
    assert_eq!(lab.stats(D_B).conns, 1);
    assert_eq!(lab.stats(D_B).inpkts, 2);
}

#[test]
fn udp_flow_both_ways_on_one_connection() {
    let mut lab = Lab::new(classic());
    lab.pass("udp.q", 0, 1);
    assert_eq!(lab.conns(), vec![(5353, "UDP", RS_A, 5300)]);
    assert_eq!(
        lab.load(D_UDP),
        (0, 1, 0),
        "UDP connections count as inactive"
    );
    lab.pass("udp.r", 1, 0);
    lab.pass("udp.q2", 0, 1);
    assert_eq!(lab.conns().len(), 1);
    let s = lab.stats(D_UDP);
    assert_eq!((s.conns, s.inpkts, s.outpkts), (1, 2, 1));
    assert_eq!(s.outbytes, len("udp.r.in"));
    // UDP timeout 300 s from the last packet.
    lab.now_s += 299;
    assert_eq!(lab.expire(), 0);
    lab.now_s += 1;
    assert_eq!(lab.expire(), 1);
    assert_eq!(lab.load(D_UDP), (0, 0, 0));
}

#[test]
fn persistence_with_netmask_sends_a_clients_network_to_one_server() {
    let mut lab = Lab::new(classic());
    for s in ["syn", "synack", "ack"] {
        let (i, o) = if s == "synack" { (1, 0) } else { (0, 1) };
        lab.pass(&format!("per1.{s}"), i, o);
    }
    // rr alone would now pick RS_B; the /24 template keeps C2 (and C1 again) on RS_A.
    lab.pass("per2.syn", 0, 1);
    lab.pass("per3.syn", 0, 1);
    assert_eq!(
        lab.conns(),
        vec![
            (41000, "ESTABLISHED", RS_A, 443),
            (41001, "SYN_RECV", RS_A, 443),
            (41002, "SYN_RECV", RS_A, 443),
        ]
    );
    let templates: Vec<(Ipv4Addr, u16, Ipv4Addr, u32)> = lab
        .pipe
        .conns
        .iter()
        .filter(|(_, c)| c.is_template())
        .map(|(_, c)| (c.caddr(), c.vport(), c.daddr(), c.controlled()))
        .collect();
    assert_eq!(
        templates,
        vec![(Ipv4Addr::new(203, 0, 113, 0), 443, RS_A, 3)],
        "one template for the client /24"
    );
    assert_eq!(lab.load(D_PA), (3, 0, 1));
    assert_eq!(lab.load(D_PB), (0, 0, 0));
    assert_eq!(lab.stats(D_PA).conns, 3);
}

#[test]
fn weight_zero_takes_no_new_connections_but_keeps_established_ones() {
    let mut lab = Lab::new(classic());
    lab.pass("w0a.syn", 0, 1); // RS_A
    lab.pass("w0a.synack", 1, 0);
    lab.pass("w0a.ack", 0, 1);
    assert_eq!(lab.load(D_A), (1, 0, 0));

    lab.reconfigure(services(0, true));
    lab.pass("w0b.syn", 0, 1); // RS_B although rr's turn
    lab.pass("w0c.syn", 0, 1); // RS_B again: RS_A is quiesced
    lab.pass("w0a.req", 0, 1); // still RS_A
    lab.pass("w0a.resp", 1, 0);
    assert_eq!(lab.state_of(42000), "ESTABLISHED");
    assert_eq!(lab.load(D_A), (1, 0, 0), "counts survive the reload");
    assert_eq!(lab.load(D_B), (2, 0, 0));
    let a = lab.stats(D_A);
    assert_eq!((a.conns, a.inpkts, a.outpkts), (1, 3, 2));
}

#[test]
fn removed_destination_drops_its_connections() {
    let mut lab = Lab::new(classic());
    lab.pass("rm.syn", 0, 1);
    lab.pass("rm.synack", 1, 0);
    lab.pass("rm.ack", 0, 1);
    lab.reconfigure(services(1, false));
    assert!(lab.snap.dest(D_A).is_none());
    lab.refuse("rm.req.in", 0, pdrop(PipelineDrop::DestRemoved));
    // RS_A:8080 is no longer a NAT real server at all: its packets are nobody's replies.
    lab.refuse("rm.resp.in", 1, pdrop(PipelineDrop::NotForUs));
    // New connections go to the remaining server.
    lab.pass("w0b.syn", 0, 1);
}

#[test]
fn all_quiesced_service_answers_port_unreachable() {
    let mut lab = Lab::new(classic());
    lab.refuse("q0.syn.in", 0, pdrop(PipelineDrop::NoDestination));
    assert!(lab.conns().is_empty());
    let extra = lab.take_extra();
    assert_eq!(extra.len(), 1, "one ICMP error");
    assert_eq!(extra[0].0, 0, "back out of the receiving port");
    assert_frame(&extra[0].1, "q0.syn.icmp");
    assert_eq!(lab.load(D_Q), (0, 0, 0));
    assert_eq!(lab.pipe.counters().conns_refused.get(), 1);
}

/// A VIP or director address where no service listens gets the host kernel's answer: a
/// reset for TCP (RST|ACK for a SYN, a bare RST at the ack of a segment with ACK, nothing
/// for a RST), ICMP port unreachable for UDP, back out of the receiving port; all counted as
/// `port_closed`, no connection made. The same through the burst path (fast path on).
#[test]
fn closed_ports_get_the_host_kernels_answer() {
    let cases = [
        ("closed.syn.in", Some("closed.syn.rst")),
        ("closed.ack.in", Some("closed.ack.rst")),
        ("closed.rst.in", None),
        ("closed.udp.in", Some("closed.udp.icmp")),
    ];
    let mut lab = Lab::new(classic());
    for (name, answer) in cases {
        lab.refuse(name, 0, pdrop(PipelineDrop::PortClosed));
        let extra = lab.take_extra();
        match answer {
            Some(want) => {
                assert_eq!(extra.len(), 1, "{name}: one answer");
                assert_eq!(extra[0].0, 0, "{name}: back out of the receiving port");
                assert_frame(&extra[0].1, want);
            }
            None => assert!(extra.is_empty(), "{name}: no answer"),
        }
    }
    assert!(lab.conns().is_empty());
    let frames: Vec<(Vec<u8>, u16)> = cases.iter().map(|(n, _)| (get(n).to_vec(), 0)).collect();
    let (outcomes, extras) = lab.send_burst(&frames, false);
    assert!(
        outcomes.iter().all(|o| o.contains("port_closed")),
        "{outcomes:?}"
    );
    let answers: Vec<&Vec<u8>> = extras.iter().flatten().map(|(_, f)| f).collect();
    let want: Vec<&[u8]> = cases.iter().filter_map(|(_, a)| a.map(get)).collect();
    assert_eq!(answers.len(), want.len());
    for (got, want) in answers.iter().zip(want) {
        assert_eq!(got.as_slice(), want);
    }
}

#[test]
fn segments_without_connection_and_ttl_1_are_dropped() {
    let mut lab = Lab::new(classic());
    lab.refuse("nc.ack.in", 0, pdrop(PipelineDrop::NoConnection));
    lab.refuse("ttl1.syn.in", 0, wdrop(DropReason::TtlExceeded));
    // A reply from a NAT real server without a connection.
    lab.refuse("nat.synack.in", 1, pdrop(PipelineDrop::NoConnection));
    // Not for any service, not from a NAT real server, not for the director.
    lab.refuse("echo.foreign.in", 0, pdrop(PipelineDrop::NotForUs));
    lab.refuse("nat.syn.out", 1, pdrop(PipelineDrop::NotForUs));
}

#[test]
fn every_truncation_of_a_valid_frame_is_dropped() {
    let names = [
        "nat.syn.in",
        "nat.req.in",
        "nat.synack.in",
        "udp.q.in",
        "udp.r.in",
        "dr.syn.in",
        "tun.syn.in",
        "echo.vip.in",
        "icmpc.in",
        "icmprs.in",
        "arp.dip.in",
    ];
    let mut lab = Lab::new(classic());
    // Connections exist, so truncated non-SYN segments are tried against them.
    for s in ["syn", "synack", "ack"] {
        let (i, o) = if s == "synack" { (1, 0) } else { (0, 1) };
        lab.pass(&format!("nat.{s}"), i, o);
    }
    lab.pass("udp.q", 0, 1);
    for name in names {
        let frame = get(name);
        let from_inside = ["nat.synack", "udp.r", "icmprs", "arp.dip"];
        let port = u16::from(from_inside.iter().any(|p| name.starts_with(p)));
        for cut in 0..frame.len() {
            match lab.send_bytes(&frame[..cut], port, false) {
                Action::Drop(_, _) => {}
                other => panic!("{name} cut to {cut} bytes: {}", describe(&other)),
            }
        }
        lab.take_extra();
    }
    assert_eq!(
        lab.conns().len(),
        2,
        "no connection created by a truncated frame"
    );
}

#[test]
fn full_table_refuses_new_flows_and_keeps_old_ones() {
    let mut lab = Lab::with(PipelineConfig::new(0, 1, 2), classic());
    lab.pass("full1.syn", 0, 1);
    lab.pass("full2.syn", 0, 1);
    lab.refuse("full3.syn.in", 0, pdrop(PipelineDrop::ConnTableFull));
    assert_eq!(lab.pipe.counters().conns_refused.get(), 1);
    lab.pass("full1.synack", 1, 0);
    lab.pass("full1.ack", 0, 1);
    assert_eq!(lab.conns().len(), 2);
    assert_eq!(lab.pipe.counters().conn_table_capacity.get(), 2);
}

#[test]
fn dr_rewrites_only_macs_and_ttl() {
    let mut lab = Lab::new(classic());
    lab.pass("dr.syn", 0, 1);
    lab.pass("dr.ack", 0, 1);
    lab.pass("dr.req", 0, 1);
    // DR connections use the INPUT_ONLY table: no reply is ever seen.
    assert_eq!(lab.conns(), vec![(48000, "ESTABLISHED", RS_A, 80)]);
    assert_eq!(lab.load(D_DR), (1, 0, 0));
    let s = lab.stats(D_DR);
    assert_eq!((s.conns, s.inpkts, s.outpkts), (1, 3, 0));
}

#[test]
fn tun_encapsulates_and_answers_frag_needed_when_too_big() {
    let mut lab = Lab::new(classic());
    lab.pass("tun.syn", 0, 1);
    lab.pass("tun.ack", 0, 1);
    lab.pass("tun.fits", 0, 1);
    let a = lab.send("tun.big.in", 0);
    expect_drop(a, wdrop(DropReason::FragNeeded), "tun.big.in");
    let extra = lab.take_extra();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].0, 0);
    assert_frame(&extra[0].1, "tun.big.icmp");
    // DF clear: the outer packet would need fragmenting, which the data plane does not do.
    lab.refuse("tun.bignodf.in", 0, wdrop(DropReason::PacketTooBig));
    assert!(lab.take_extra().is_empty());
    assert_eq!(lab.conns(), vec![(49000, "ESTABLISHED", RS_B, 80)]);
}

#[test]
fn arp_answers_for_vips_and_own_addresses_on_the_right_port() {
    let mut lab = Lab::new(classic());
    expect_tx(lab.send("arp.vip.in", 0), 0, "arp.vip.out");
    expect_tx(lab.send("arp.dip.in", 1), 1, "arp.dip.out");
    // Known static neighbours: nothing to learn.
    assert_eq!(lab.events(), vec![]);
    lab.refuse("arp.foreign.in", 0, pdrop(PipelineDrop::ArpIgnored));
    assert_eq!(
        lab.events(),
        vec![NeighEvent::Learned {
            port: 0,
            ip: HOST,
            mac: HOST_MAC
        }],
        "a neighbour's request teaches its address"
    );
    // The VIP lives behind port 0: not answered on port 1.
    lab.refuse("arp.vip_on_port1.in", 1, pdrop(PipelineDrop::ArpIgnored));
    // Port 1's address is not answered on port 0 (the request is off-net there).
    let mut on_wrong_port = get("arp.dip.in").to_vec();
    on_wrong_port[6..12].copy_from_slice(&C1_MAC);
    let a = lab.send_bytes(&on_wrong_port, 0, false);
    expect_drop(a, pdrop(PipelineDrop::ArpIgnored), "arp.dip.in on port 0");
}

#[test]
fn unresolved_next_hop_holds_the_packet_until_arp_resolves_it() {
    let mut lab = Lab::new(classic());
    match lab.send("unres.syn.in", 0) {
        Action::Held => {}
        other => panic!("expected Held, got {}", describe(&other)),
    }
    let extra = lab.take_extra();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].0, 1);
    assert_frame(&extra[0].1, "arp.rs_c.request");
    assert_eq!(lab.events(), vec![NeighEvent::Miss { port: 1, ip: RS_C }]);
    lab.neigh_mgr
        .apply(NeighEvent::Miss { port: 1, ip: RS_C }, lab.now_ns);
    assert_eq!(lab.load(D_U), (1, 0, 0), "scheduled before the wait");

    // Nothing resolved yet: still held.
    lab.service_pending();
    assert!(lab.take_extra().is_empty());

    // The reply: consumed, reported, applied by the control plane, published.
    match lab.send("arp.rs_c.reply", 1) {
        Action::Consumed(_) => {}
        other => panic!("expected Consumed, got {}", describe(&other)),
    }
    let events = lab.events();
    assert_eq!(
        events,
        vec![NeighEvent::Learned {
            port: 1,
            ip: RS_C,
            mac: RS_C_MAC
        }]
    );
    lab.now_ns += 1_000_000;
    lab.neigh_mgr.apply(events[0], lab.now_ns);
    lab.neigh = lab.neigh_mgr.snapshot();
    lab.service_pending();
    let extra = lab.take_extra();
    assert_eq!(extra.len(), 1);
    assert_eq!(extra[0].0, 1);
    assert_frame(&extra[0].1, "unres.syn.out");
}

#[test]
fn held_packets_are_dropped_after_the_arp_timeout() {
    let mut lab = Lab::new(classic());
    assert!(matches!(lab.send("unres.syn.in", 0), Action::Held));
    lab.take_extra();
    lab.now_ns += 3_000_000_000;
    lab.service_pending();
    assert!(lab.take_extra().is_empty());
    assert_eq!(lab.drops(pdrop(PipelineDrop::NeighUnresolved)), 1);
}

#[test]
fn icmp_echo_for_vip_and_director_address() {
    let mut lab = Lab::new(classic());
    expect_tx(lab.send("echo.vip.in", 0), 0, "echo.vip.out");
    expect_tx(lab.send("echo.dip.in", 0), 0, "echo.dip.out");
}

#[test]
fn icmp_errors_follow_their_nat_connection_both_ways() {
    let mut lab = Lab::new(classic());
    for s in ["syn", "synack", "ack"] {
        let (i, o) = if s == "synack" { (1, 0) } else { (0, 1) };
        lab.pass(&format!("nat.{s}"), i, o);
    }
    let before = lab.stats(D_A);
    lab.pass("icmpc", 0, 1);
    lab.pass("icmprs", 1, 0);
    assert_eq!(
        lab.state_of(40000),
        "ESTABLISHED",
        "ICMP errors do not move TCP state"
    );
    assert_eq!(lab.load(D_A), (1, 0, 0));
    let after = lab.stats(D_A);
    assert_eq!(after.inpkts - before.inpkts, 1);
    assert_eq!(after.outpkts - before.outpkts, 1);
    // About a connection that does not exist: dropped.
    let mut lab = Lab::new(classic());
    lab.refuse("icmpc.in", 0, pdrop(PipelineDrop::IcmpNoConnection));
    lab.refuse("icmprs.in", 1, pdrop(PipelineDrop::IcmpNoConnection));
}

#[test]
fn flows_owned_by_another_worker_are_redirected_to_it() {
    // Worker 0 of 2: the client endpoint's hash decides, in both directions.
    let cfg = PipelineConfig::new(0, 2, 64);
    let mut lab = Lab::with(cfg, classic());
    let owner = |client: Ipv4Addr, port: u16| {
        director::dataplane::steering::owner(IpAddr::V4(client), port, 2)
    };
    let flows = [
        ("nat", C1, 40000u16),
        ("rr2", C2, 40001),
        ("rr3", C1, 40002),
    ];
    for (name, client, port) in flows {
        let theirs = owner(client, port) != 0;
        let a = lab.send(&format!("{name}.syn.in"), 0);
        match (theirs, a) {
            (true, Action::Redirect(1, _)) => {}
            (false, Action::Tx(1, _)) => {}
            (_, other) => panic!(
                "{name}: owner {} got {}",
                owner(client, port),
                describe(&other)
            ),
        }
    }
    // A steered frame is processed wherever it lands.
    let a = lab.send_bytes(get("st1.syn.in"), 0, true);
    assert!(matches!(a, Action::Tx(1, _)), "{}", describe(&a));
}

#[test]
fn one_arp_request_per_next_hop_and_a_bounded_wait_queue() {
    let mut lab = Lab::new(classic());
    for i in 0..4 {
        let a = lab.send(&format!("pend{i}.syn.in"), 0);
        assert!(matches!(a, Action::Held), "pend{i}: {}", describe(&a));
    }
    let extra = lab.take_extra();
    assert_eq!(extra.len(), 1, "one ARP request for four waiting packets");
    assert_frame(&extra[0].1, "arp.rs_c.request");
    assert_eq!(lab.events(), vec![NeighEvent::Miss { port: 1, ip: RS_C }]);
    // Four packets per next hop wait; the fifth is dropped (and its hop reported again).
    lab.refuse("pend4.syn.in", 0, pdrop(PipelineDrop::NeighUnresolved));
    assert!(lab.take_extra().is_empty());
    assert_eq!(lab.events(), vec![NeighEvent::Miss { port: 1, ip: RS_C }]);
    // Resolution releases the four in arrival order.
    let learned = NeighEvent::Learned {
        port: 1,
        ip: RS_C,
        mac: RS_C_MAC,
    };
    lab.neigh_mgr.apply(learned, lab.now_ns);
    lab.neigh = lab.neigh_mgr.snapshot();
    lab.service_pending();
    let extra = lab.take_extra();
    assert_eq!(extra.len(), 4);
    for (i, (port, frame)) in extra.iter().enumerate() {
        assert_eq!(*port, 1);
        assert_frame(frame, &format!("pend{i}.syn.out"));
    }
    // Resolved now: no more waiting.
    lab.pass("unres.syn", 0, 1);
}

#[test]
fn syn_on_a_time_wait_connection_starts_a_new_one() {
    let mut lab = Lab::new(classic());
    for (step, i, o) in [
        ("syn", 0, 1),
        ("synack", 1, 0),
        ("ack", 0, 1),
        ("req", 0, 1),
        ("resp", 1, 0),
        ("cfin", 0, 1),
        ("sfin", 1, 0),
        ("lastack", 0, 1),
    ] {
        lab.pass(&format!("reuse.{step}"), i, o);
    }
    assert_eq!(lab.state_of(40500), "TIME_WAIT");
    assert_eq!(lab.load(D_A), (0, 1, 0));
    lab.pass("reuse2.syn", 0, 1); // rescheduled: rr's next is RS_B
    assert_eq!(lab.conns(), vec![(40500, "SYN_RECV", RS_B, 8080)]);
    assert_eq!(lab.load(D_A), (0, 0, 0), "the old entry was unbound");
    assert_eq!(lab.load(D_B), (1, 0, 0));
}

#[test]
fn persistence_template_outlives_its_connections_then_expires() {
    let mut lab = Lab::new(classic());
    lab.pass("per1.syn", 0, 1);
    assert_eq!(lab.load(D_PA), (1, 0, 1));
    // The connection expires after SYN_RECV's 60 s; the template (300 s) stays, so a new
    // client of the network still goes to RS_A.
    lab.now_s += 60;
    assert_eq!(lab.expire(), 1);
    assert_eq!(lab.load(D_PA), (0, 0, 1));
    lab.pass("per2.syn", 0, 1);
    lab.now_s += 60;
    assert_eq!(lab.expire(), 1);
    // The template's own timeout runs from its last use (per2's SYN).
    lab.now_s += 239;
    assert_eq!(lab.expire(), 0);
    assert_eq!(lab.load(D_PA), (0, 0, 1));
    lab.now_s += 1;
    assert_eq!(lab.expire(), 1);
    assert_eq!(lab.load(D_PA), (0, 0, 0));
    assert!(lab.pipe.conns.is_empty());
}

#[test]
fn flush_unbinds_every_connection() {
    let mut lab = Lab::new(classic());
    lab.pass("nat.syn", 0, 1);
    lab.pass("rr2.syn", 0, 1);
    lab.pass("udp.q", 0, 1);
    lab.pass("per1.syn", 0, 1);
    lab.pipe.flush(&lab.snap);
    assert!(lab.pipe.conns.is_empty());
    for id in [D_A, D_B, D_UDP, D_PA] {
        assert_eq!(lab.load(id), (0, 0, 0), "dest {id}");
    }
    assert_eq!(lab.pipe.counters().conn_table_size.get(), 0);
}

/// A comparable record of an action (port and bytes, or the drop reason).
fn outcome(a: Action<VecPacket>) -> String {
    describe(&a)
}

/// The established-flow fast path changes nothing but speed: every golden frame (and damaged
/// copies: flipped bits, TTL 1, truncations), sent in several rounds on both ports with time
/// advancing and expiry in between, gives the same action and bytes, the same generated
/// packets, connection table, destination loads and statistics and drop counters with the
/// fast path on as with every frame on the full path. Also proves the fast path ran.
/// Every golden frame, damaged copies of each, on both ports, through a pipeline with the
/// fast path and one without, as worker `worker` of `n_workers` (frames `steered` or not),
/// the fast one frame by frame or in bursts: the same actions, bytes, connections, loads,
/// statistics and drops. The third round runs with destination D_A removed (its
/// connections' packets must go to the full path's classification). Returns the fast
/// pipeline's fast-path hits.
fn fast_and_full_paths_agree(worker: usize, n_workers: usize, steered: bool, burst: bool) -> u64 {
    let mut names: Vec<&String> = frames::all().keys().collect();
    names.sort();
    let mut frames_in: Vec<Vec<u8>> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let f = get(n).to_vec();
        frames_in.push(f.clone());
        let mut flipped = f.clone();
        let at = (i * 7) % f.len();
        flipped[at] ^= 0x10;
        frames_in.push(flipped);
        if f.len() > 22 {
            let mut ttl1 = f.clone();
            ttl1[22] = 1;
            frames_in.push(ttl1);
        }
        frames_in.push(f[..f.len() - 1 - i % 8.min(f.len() - 1)].to_vec());
    }
    let with_ports: Vec<(Vec<u8>, u16)> = frames_in
        .iter()
        .flat_map(|f| [(f.clone(), 0u16), (f.clone(), 1)])
        .collect();
    let mut fast_cfg = PipelineConfig::new(worker, n_workers, 1024);
    fast_cfg.fast_path = true;
    let mut full_cfg = fast_cfg.clone();
    full_cfg.fast_path = false;
    let mut fast = Lab::with(fast_cfg, classic());
    let mut full = Lab::with(full_cfg, classic());
    let what = format!("worker {worker}/{n_workers}, steered {steered}, burst {burst}");
    for round in 0..4u32 {
        if round == 2 {
            fast.reconfigure(services(1, false));
            full.reconfigure(services(1, false));
        }
        if burst {
            let (a, extra_a) = fast.send_burst(&with_ports, steered);
            let mut b = Vec::new();
            let mut extra_b = Vec::new();
            for chunk in with_ports.chunks(32) {
                for (f, port) in chunk {
                    b.push(outcome(full.send_bytes(f, *port, steered)));
                }
                extra_b.push(full.take_extra());
            }
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert_eq!(a, b, "{what}: round {round}, frame {i}");
            }
            assert_eq!(a.len(), b.len());
            assert_eq!(extra_a, extra_b, "{what}: round {round}: extra");
        } else {
            for (i, (f, port)) in with_ports.iter().enumerate() {
                let a = outcome(fast.send_bytes(f, *port, steered));
                let b = outcome(full.send_bytes(f, *port, steered));
                assert_eq!(a, b, "{what}: round {round}, frame {i}, port {port}");
                assert_eq!(fast.take_extra(), full.take_extra(), "frame {i}: extra");
            }
        }
        for lab in [&mut fast, &mut full] {
            lab.now_s += 40 * (round + 1);
            lab.now_ns += 40_000_000_000 * u64::from(round + 1);
        }
        assert_eq!(
            fast.expire(),
            full.expire(),
            "{what}: round {round}: expired"
        );
        let listing = |lab: &Lab| {
            let mut v: Vec<_> = lab
                .pipe
                .conns
                .iter()
                .map(|(_, c)| format!("{c:?}"))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            listing(&fast),
            listing(&full),
            "{what}: round {round}: connections"
        );
        for id in [D_A, D_B, D_UDP, D_DR, D_TUN, D_Q, D_PA, D_PB, D_U] {
            if fast.snap.dest(id).is_none() {
                continue;
            }
            assert_eq!(
                fast.load(id),
                full.load(id),
                "{what}: round {round}: load of {id}"
            );
            assert_eq!(
                fast.stats(id),
                full.stats(id),
                "{what}: round {round}: stats of {id}"
            );
        }
        let drops = |lab: &Lab| {
            lab.pipe
                .counters()
                .drops
                .iter()
                .map(|c| c.get())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            drops(&fast),
            drops(&full),
            "{what}: round {round}: drop counters"
        );
    }
    assert_eq!(full.pipe.fast_path_hits(), 0);
    fast.pipe.fast_path_hits()
}

#[test]
fn fast_path_gives_exactly_the_full_paths_results() {
    for burst in [false, true] {
        let hits = fast_and_full_paths_agree(0, 1, false, burst);
        assert!(hits >= 10, "the fast path took only {hits} frames");
    }
    // With two workers: frames of the other worker's clients are redirected, by both paths
    // alike; steered frames are this worker's whoever their client is.
    for (worker, steered, burst) in [
        (0, false, false),
        (1, false, true),
        (0, true, true),
        (1, true, false),
    ] {
        fast_and_full_paths_agree(worker, 2, steered, burst);
    }
    // The fast path did take frames: the golden NAT segments of established flows.
    let mut lab = Lab::new(classic());
    lab.pass("nat.syn", 0, 1);
    lab.pass("nat.synack", 1, 0);
    let hits_before = lab.pipe.fast_path_hits();
    lab.pass("nat.ack", 0, 1);
    lab.pass("nat.req", 0, 1);
    lab.pass("nat.resp", 1, 0);
    assert_eq!(
        lab.pipe.fast_path_hits(),
        hits_before + 3,
        "the client's ACK and request and the server's reply took the fast path"
    );
    // VS/TUN too (the bytes are the golden encapsulation), but not a packet over the
    // tunnel's MTU: the full path answers it.
    lab.pass("tun.syn", 0, 1);
    let hits_before = lab.pipe.fast_path_hits();
    lab.pass("tun.ack", 0, 1);
    lab.pass("tun.fits", 0, 1);
    let _ = lab.send("tun.big.in", 0);
    assert_eq!(lab.pipe.fast_path_hits(), hits_before + 2, "TUN");
}
