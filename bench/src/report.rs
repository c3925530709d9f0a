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
    /// One row per (scenario, size, connections): with `--repeat N`, the medians of the runs.
    pub rows: Vec<Row>,
    /// With `--repeat N` (N > 1): every run's own rows, in run order (empty otherwise and in
    /// files from before `--repeat`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_detail: Vec<Vec<Row>>,
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

/// " (median of N runs, LO-HI)" after a headline value of `r`, when it is a median; `prec`
/// decimals.
fn of_runs(r: &Row, lo: f64, hi: f64, prec: usize) -> String {
    if r.runs > 1 {
        format!(" (median of {} runs, {lo:.prec$}-{hi:.prec$})", r.runs)
    } else {
        String::new()
    }
}

/// The targets, checked against `rows` (1 worker, 64-byte frames). With repeated
/// runs the rows are medians, and so is what is judged (the measured text says so).
pub fn targets(rows: &[Row]) -> Vec<Target> {
    let nat = |n| find(rows, "nat", 64, n);
    let ratio = |r: &Row| {
        format!(
            "{:.2} x{}",
            r.ratio,
            of_runs(r, r.ratio_min, r.ratio_max, 2)
        )
    };
    let min_syn = rows
        .iter()
        .filter(|r| r.scenario == "syn" && r.size == 64 && r.workers == 1)
        .map(|r| r.conns_per_s_core)
        .reduce(f64::min);
    vec![
        target(
            "NAT 64 B, 1 K connections: >= 0.5 x the pass-through ceiling",
            nat(1_000).map(|r| (ratio(r), r.ratio >= 0.5)),
        ),
        target(
            "NAT 64 B, 1 M connections: >= 0.33 x the pass-through ceiling",
            nat(1_000_000).map(|r| (ratio(r), r.ratio >= 0.33)),
        ),
        target(
            "NAT 64 B, 1 M connections: <= 60 ns and <= 150 cycles per packet in director code",
            nat(1_000_000).map(|r| {
                (
                    format!(
                        "{:.1} ns{}, {:.0} cycles",
                        r.director_ns,
                        of_runs(r, r.director_ns_min, r.director_ns_max, 1),
                        r.director_cycles
                    ),
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

/// `value` followed by " (LO-HI)" over the runs when the row is a median of several.
fn with_spread(r: &Row, value: String, lo: f64, hi: f64, prec: usize) -> String {
    if r.runs > 1 {
        format!("{value} ({lo:.prec$}-{hi:.prec$})")
    } else {
        value
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
    /// Runs the rows are medians of (the most of any row; 1 without rows).
    pub fn runs(&self) -> u32 {
        self.rows.iter().map(|r| r.runs).max().unwrap_or(1).max(1)
    }

    /// The markdown results table, targets and reference.
    pub fn markdown(&self) -> String {
        let runs = self.runs();
        let mut s = String::new();
        s.push_str(&format!("Machine: {}\n\n", self.machine.line()));
        s.push_str(&format!("Command: `{}`\n\n", self.command));
        if runs > 1 {
            s.push_str(&format!(
                "Every row: the median of {runs} runs of the whole plan; Mpps/core, ratio and \
                 director ns/pkt add (smallest-largest) of the runs; drops: the most of one \
                 run; the targets judge the medians.\n\n"
            ));
        }
        s.push_str(
            "| scenario | size B | conns | Mpps | Mpps/core | ceiling Mpps/core | ratio \
             | worker ns/pkt | director ns/pkt | director cycles/pkt | conns/s/core | RSS B/conn \
             | drops | CPU share worker/gen | bound by |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|:-:|\n");
        for r in &self.rows {
            let workers = match (r.workers, r.generators) {
                (1, 1) => String::new(),
                (w, 1) => format!(" ({w} workers)"),
                (w, g) => format!(" ({w} workers, {g} generators)"),
            };
            s.push_str(&format!(
                "| {}{} | {} | {} | {:.2} | {} | {:.2}{} | {} | {:.1} | {} | {:.0} | {} \
                 | {:.0} | {} | {:.2}/{:.2} | {} |\n",
                r.scenario,
                workers,
                r.size,
                count(r.conns),
                r.mpps,
                with_spread(
                    r,
                    per_core(r.mpps_core, r.worker_cpu_share.min(r.gen_cpu_share)),
                    r.mpps_core_min,
                    r.mpps_core_max,
                    2
                ),
                r.ceiling_mpps_core,
                if r.ceiling_dut_bound { "" } else { " (gen)" },
                with_spread(r, format!("{:.2}", r.ratio), r.ratio_min, r.ratio_max, 2),
                r.worker_ns,
                with_spread(
                    r,
                    format!("{:.1}", r.director_ns),
                    r.director_ns_min,
                    r.director_ns_max,
                    1
                ),
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
        if runs > 1 {
            s.push_str(&format!(
                "\nTargets, judged on the medians of {runs} runs:\n"
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
            generators: 1,
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
            runs: 1,
            director_ns_min: cycles / 2.6,
            director_ns_max: cycles / 2.6,
            ratio_min: ratio,
            ratio_max: ratio,
            mpps_core_min: ratio * 10.0,
            mpps_core_max: ratio * 10.0,
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

    fn report(rows: Vec<Row>) -> Report {
        let machine: Machine = serde_json::from_value(serde_json::json!({
            "cpu": "test cpu", "cores": 2, "kernel": "6.1", "hugepages": false,
            "tsc_hz": 2_600_000_000u64, "dpdk": "22.11", "commit": "abc", "load_start": 0.0,
            "load_end": 0.0, "date": "today", "hypervisor": null
        }))
        .expect("a machine");
        Report {
            command: "bench".into(),
            machine,
            targets: targets(&rows),
            rows,
            runs_detail: Vec::new(),
            testpmd: None,
        }
    }

    #[test]
    fn one_run_prints_no_spread() {
        let md = report(vec![row("nat", 1_000, 0.6, 130.0)]).markdown();
        assert!(!md.contains("median"), "{md}");
        assert!(
            md.contains("| 6.00 | 10.00 | 0.60 | 0.0 | 50.0 | 130 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| NAT 64 B, 1 K connections: >= 0.5 x the pass-through ceiling | 0.60 x | yes |"
            ),
            "{md}"
        );
    }

    #[test]
    fn medians_print_their_spread_and_the_targets_say_so() {
        let mut r = row("nat", 1_000_000, 0.3, 130.0);
        r.runs = 3;
        (r.director_ns_min, r.director_ns_max) = (41.0, 76.25);
        (r.ratio_min, r.ratio_max) = (0.25, 0.5);
        (r.mpps_core_min, r.mpps_core_max) = (2.5, 5.0);
        let rep = report(vec![r]);
        assert_eq!(rep.runs(), 3);
        let md = rep.markdown();
        assert!(md.contains("Every row: the median of 3 runs"), "{md}");
        assert!(
            md.contains(
                "| 3.00 (2.50-5.00) | 10.00 | 0.30 (0.25-0.50) | 0.0 | 50.0 (41.0-76.2) | 130 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("Targets, judged on the medians of 3 runs:"),
            "{md}"
        );
        assert_eq!(
            rep.targets[1].measured,
            "0.30 x (median of 3 runs, 0.25-0.50)"
        );
        assert_eq!(rep.targets[1].met, Some(false));
        assert_eq!(
            rep.targets[2].measured,
            "50.0 ns (median of 3 runs, 41.0-76.2), 130 cycles"
        );
        assert_eq!(rep.targets[2].met, Some(true));
    }

    #[test]
    fn reports_from_before_repeat_still_load() {
        let text = include_str!("../results/amd-2core-vm-final/results.json");
        let rep: Report = serde_json::from_str(text).expect("the saved report");
        assert!(!rep.rows.is_empty());
        assert!(rep.rows.iter().all(|r| r.runs == 1));
        assert!(rep.runs_detail.is_empty());
        assert_eq!(rep.runs(), 1);
        // Saved again, it has no runs_detail key (single runs keep the old shape).
        let again = serde_json::to_value(&rep).unwrap();
        assert!(again.get("runs_detail").is_none());
    }

    #[test]
    fn counts_are_short() {
        assert_eq!(count(1_000), "1 K");
        assert_eq!(count(10_000_000), "10 M");
        assert_eq!(count(1_500), "1500");
    }
}
