//! Instruction counts of the new-connection path's load updates, for callgrind (deterministic,
//! unlike wall time on a shared machine). Each step is its own non-inlined function so
//! `callgrind_annotate --inclusive=yes` shows its cost per call.
//!
//! ```text
//! cargo bench -p sched --bench bind_ir --no-run   # prints the binary's path
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out <binary> wlc 4 100000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | grep bind_ir::
//! ```
//!
//! Arguments: scheduler name (default wlc), destinations (default 4), connections (default
//! 100000), weights `mixed` (1, 2, 3, 4, 1, ...; the default) or `equal` (all 1). A steady
//! state of 1000 live connections: each new one is picked and bound active in one update (its
//! SYN's first state, as the pipeline binds it, `DestLoad::bind(true)`); every 16th is bound
//! inactive and then activated instead (`bind(false)` + `set_active`, the two-step way, for
//! comparison); the oldest live one is unbound.

use std::collections::VecDeque;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use sched::{build, new_loads, DestLoad, DestSpec, FlowInfo, SchedParams, Scheduler};

#[inline(never)]
fn step_pick(s: &dyn Scheduler, flow: &FlowInfo) -> Option<usize> {
    s.schedule(flow)
}

#[inline(never)]
fn step_bind_active(l: &DestLoad) {
    l.bind(true);
}

#[inline(never)]
fn step_bind(l: &DestLoad) {
    l.bind(false);
}

#[inline(never)]
fn step_activate(l: &DestLoad) {
    l.set_active(false, true);
}

#[inline(never)]
fn step_unbind(l: &DestLoad) {
    l.unbind(true);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let name = args.first().map_or("wlc", String::as_str);
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4);
    let conns: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let equal = args.get(3).is_some_and(|a| a == "equal");
    let specs: Vec<DestSpec> = (0..n)
        .map(|i| DestSpec {
            addr: IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i as u32)),
            port: 80,
            weight: if equal { 1 } else { 1 + (i as u32 % 4) },
            u_threshold: 0,
            l_threshold: 0,
        })
        .collect();
    let loads = new_loads(n);
    let params = SchedParams {
        name: name.into(),
        ..Default::default()
    };
    let s = build(&params, &specs, &loads, None).expect("build");
    let mut live = VecDeque::with_capacity(1001);
    let mut picks = vec![0u64; n];
    for k in 0..conns as u32 {
        let flow = FlowInfo {
            saddr: IpAddr::V4(Ipv4Addr::from(0xC633_6400 ^ k.wrapping_mul(2_654_435_761))),
            sport: 1024 + k as u16,
            daddr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            dport: 80,
        };
        let Some(d) = step_pick(&*s, black_box(&flow)) else {
            continue;
        };
        picks[d] += 1;
        if k % 16 == 0 {
            step_bind(&loads[d]);
            step_activate(&loads[d]);
        } else {
            step_bind_active(&loads[d]);
        }
        live.push_back(d);
        if live.len() > 1000 {
            let old = live.pop_front().expect("non-empty");
            step_unbind(&loads[old]);
        }
    }
    let w = if equal { "equal" } else { "mixed" };
    println!("{name} n={n} conns={conns} weights {w}: picks per destination: {picks:?}");
}
