//! The results of a run: JSON, a markdown table with the targets of the issue, and a plot.

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::measure::Row;
use crate::testpmd::TestpmdResult;

/// Everything a run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The command line.
    pub command: String,
    /// The machine.
    pub machine: Machine,
    /// One row per (scenario, size, connections).
    pub rows: Vec<Row>,
    /// The outside reference, when testpmd ran.
    pub testpmd: Option<TestpmdResult>,
    /// The targets and whether this run met them.
    pub targets: Vec<Target>,
}

/// One target of the issue, checked against this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Target {
    /// What is required.
    pub what: String,
    /// What this run measured (text).
    pub measured: String,
    /// Met, missed, or `None` when the run did not include the rows it needs.
    pub met: Option<bool>,
}

fn find<'a>(rows: &'a [Row], sc: &str, size: usize, conns: u64) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.scenario == sc && r.size == size && r.conns == conns && r.workers == 1)
}

fn target(what: &str, measured: Option<(String, bool)>) -> Target {
    match measured {
        Some((m, ok)) => Target {
            what: what.into(),
            measured: m,
            met: Some(ok),
        },
        None => Target {
            what: what.into(),
            measured: "not in this run".into(),
            met: None,
        },
    }
}

/// The targets, checked against `rows` (1 worker, 64-byte frames).
pub fn targets(rows: &[Row]) -> Vec<Target> {
    let nat = |n| find(rows, "nat", 64, n);
    let min_syn = rows
        .iter()
        .filter(|r| r.scenario == "syn" && r.size == 64 && r.workers == 1)
        .map(|r| r.conns_per_s_core)
        .reduce(f64::min);
    vec![
        target(
            "NAT 64 B, 1 K connections: >= 0.5 x the pass-through ceiling",
            nat(1_000).map(|r| (format!("{:.2} x", r.ratio), r.ratio >= 0.5)),
        ),
        target(
            "NAT 64 B, 1 M connections: >= 0.33 x the pass-through ceiling",
            nat(1_000_000).map(|r| (format!("{:.2} x", r.ratio), r.ratio >= 0.33)),
        ),
        target(
            "NAT 64 B, 1 M connections: <= 60 ns and <= 150 cycles per packet in director code",
            nat(1_000_000).map(|r| {
                (
                    format!("{:.1} ns, {:.0} cycles", r.director_ns, r.director_cycles),
                    r.director_ns <= 60.0 && r.director_cycles <= 150.0,
                )
            }),
        ),
        target(
            "New connections: >= 3 M/s per worker",
            min_syn.map(|c| (format!("{:.2} M/s", c / 1e6), c >= 3e6)),
        ),
        target(
            "10 M live connections in <= 1.3 GB (<= 128 B each)",
            rows.iter()
                .find(|r| r.conns == 10_000_000 && r.scenario != "syn")
                .map(|r| {
                    let b = r.rss_bytes_per_conn.max(r.table_bytes_per_conn);
                    (
                        format!("{b:.0} B/conn = {:.2} GB", b * 1e7 / 1e9),
                        b <= 128.0,
                    )
                }),
        ),
        target(
            "NAT 64 B: director cost at 10 M <= 1.5 x at 1 K",
            nat(10_000_000).zip(nat(1_000)).map(|(a, b)| {
                let x = a.director_cycles / b.director_cycles.max(1e-9);
                (format!("{x:.2} x"), x <= 1.5)
            }),
        ),
    ]
}

/// What the columns mean (printed under the table).
const LEGEND: &str = "
Mpps: packets the real workers transmitted per second (wall clock). Mpps/core: Mpps divided \
by the smaller CPU share (scheduler run time / wall time) of the worker and generator threads \
during the window, i.e. what they do with cores of their own on this shared machine; `*` \
marks windows where one of them had less than 80 % of a CPU (an estimate). Ceiling: the \
pass-through loop (rx_burst -> tx_burst, nothing else) with the same generator and ports, per \
core likewise; `(gen)` = the generator, not the loop, set that rate (then it is the \
generator's ceiling). Ratio = Mpps/core / ceiling Mpps/core. Worker ns/pkt = 1000 / \
Mpps/core (I/O, worker loop and director code). Director ns and cycles: TSC read around \
`Pipeline::process` for each burst in a probe loop fed like the workers, scaled by the probe \
thread's CPU share. Conns/s/core: new connections per core-second (the populate's SYN flood; \
for mixed, the SYN tenth). RSS B/conn: process RSS growth from before the connection tables \
were made (sized to the connections) to after the flood, per connection. Bound by: workers \
when the generator found the rx ring full in most of its loops.
";

/// A per-core rate, starred when a thread had less than 80 % of a CPU (an estimate).
fn per_core(v: f64, share: f64) -> String {
    if share < 0.8 {
        format!("{v:.2}*")
    } else {
        format!("{v:.2}")
    }
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{} M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{} K", n / 1_000),
        n => n.to_string(),
    }
}

impl Report {
    /// The markdown results table, targets and reference.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!("Machine: {}\n\n", self.machine.line()));
        s.push_str(&format!("Command: `{}`\n\n", self.command));
        s.push_str(
            "| scenario | size B | conns | Mpps | Mpps/core | ceiling Mpps/core | ratio \
             | worker ns/pkt | director ns/pkt | director cycles/pkt | conns/s/core | RSS B/conn \
             | drops | CPU share worker/gen | bound by |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|\n");
        for r in &self.rows {
            let workers = if r.workers > 1 {
                format!(" ({} workers)", r.workers)
            } else {
                String::new()
            };
            s.push_str(&format!(
                "| {}{} | {} | {} | {:.2} | {} | {:.2}{} | {:.2} | {:.1} | {:.1} | {:.0} | {} \
                 | {:.0} | {} | {:.2}/{:.2} | {} |\n",
                r.scenario,
                workers,
                r.size,
                count(r.conns),
                r.mpps,
                per_core(r.mpps_core, r.worker_cpu_share.min(r.gen_cpu_share)),
                r.ceiling_mpps_core,
                if r.ceiling_dut_bound { "" } else { " (gen)" },
                r.ratio,
                r.worker_ns,
                r.director_ns,
                r.director_cycles,
                if r.conns_per_s_core > 0.0 {
                    format!("{:.2} M", r.conns_per_s_core / 1e6)
                } else {
                    "-".into()
                },
                r.rss_bytes_per_conn,
                r.drops,
                r.worker_cpu_share,
                r.gen_cpu_share,
                if r.dut_bound { "workers" } else { "generator" },
            ));
        }
        s.push_str(LEGEND);
        if let Some(t) = &self.testpmd {
            let per: Vec<String> = t.port_mpps.iter().map(|m| format!("{m:.1}")).collect();
            s.push_str(&format!(
                "\nReference, `{}`: io forwarding {} Mpps per port ({:.1} Mpps in all).\n",
                t.command,
                per.join(" / "),
                t.port_mpps.iter().sum::<f64>()
            ));
        }
        s.push_str("\n| target | measured | met |\n|---|---|:-:|\n");
        for t in &self.targets {
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                t.what,
                t.measured,
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "-",
                }
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sc: &str, conns: u64, ratio: f64, cycles: f64) -> Row {
        Row {
            scenario: sc.into(),
            size: 64,
            conns,
            workers: 1,
            mpps: ratio * 10.0,
            mpps_core: ratio * 10.0,
            worker_cpu_share: 1.0,
            gen_stalled: 0.9,
            worker_burst: 32.0,
            gen_cpu_share: 1.0,
            ceiling_mpps: 10.0,
            ceiling_mpps_core: 10.0,
            ceiling_gen_stalled: 0.1,
            ratio,
            worker_ns: 0.0,
            director_ns_by_difference: 0.0,
            director_ns: cycles / 2.6,
            director_cycles: cycles,
            director_cycles_raw: cycles,
            probe_cpu_share: 1.0,
            conns_per_s: 3.5e6,
            conns_per_s_core: 3.5e6,
            rss_bytes_per_conn: 90.0,
            table_bytes_per_conn: 88.0,
            drops: 0,
            dut_bound: true,
            ceiling_dut_bound: true,
            frames_checked: 0,
            frames_bad: 0,
        }
    }

    #[test]
    fn targets_read_the_right_rows() {
        let rows = vec![
            row("nat", 1_000, 0.6, 100.0),
            row("nat", 1_000_000, 0.3, 140.0),
            row("nat", 10_000_000, 0.3, 160.0),
            row("syn", 1_000_000, 0.3, 300.0),
        ];
        let t = targets(&rows);
        let met: Vec<Option<bool>> = t.iter().map(|t| t.met).collect();
        assert_eq!(
            met,
            vec![
                Some(true),
                Some(false),
                Some(true),
                Some(true),
                Some(true),
                Some(false)
            ]
        );
        assert_eq!(t[5].measured, "1.60 x");
        assert!(targets(&[]).iter().all(|t| t.met.is_none()));
    }

    #[test]
    fn counts_are_short() {
        assert_eq!(count(1_000), "1 K");
        assert_eq!(count(10_000_000), "10 M");
        assert_eq!(count(1_500), "1500");
    }
}
