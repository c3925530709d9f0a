//! `bench --repeat N`: the same plan run N times, each row reported as the median of its runs.
//!
//! On a shared machine one window of the same row varies by tens of percent between runs; the
//! issue's targets are defined on medians of repeated runs. Every measured quantity of a row
//! becomes the median of its values over the runs (the mean of the two middle values for an
//! even N), each quantity on its own (so `ratio` is the median of the per-run ratios, not a
//! ratio of medians). Counts that must stay exact are not averaged: `drops` is the largest
//! of the runs, `frames_checked` and `frames_bad` are sums (a wrong frame in any run stays
//! visible). `dut_bound` and `ceiling_dut_bound` take the majority of the runs; a tie counts
//! as not bound (the cautious reading: the rate may be the generator's). The headline numbers
//! keep their spread: `director_ns`, `ratio` and `mpps_core` get their smallest and largest
//! value over the runs.

use crate::measure::Row;

/// The median of `values`: the middle one, or the mean of the two middle ones for an even
/// count; 0 for none. NaNs sort last (`f64::total_cmp`).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Whether more than half of `flags` are set (a tie is not a majority).
fn majority(flags: impl Iterator<Item = bool>) -> bool {
    let (set, all) = flags.fold((0usize, 0usize), |(s, a), f| (s + usize::from(f), a + 1));
    2 * set > all
}

/// The smallest and largest of `values`.
fn spread(values: &[f64]) -> (f64, f64) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// What identifies a row of the plan.
fn key(r: &Row) -> (&str, usize, u64, usize) {
    (&r.scenario, r.size, r.conns, r.workers)
}

/// One row from the same row of several runs (`group` is not empty).
fn merge_row(group: &[&Row]) -> Row {
    let first = group[0];
    let med = |f: fn(&Row) -> f64| median(&group.iter().map(|r| f(r)).collect::<Vec<_>>());
    let values = |f: fn(&Row) -> f64| group.iter().map(|r| f(r)).collect::<Vec<_>>();
    let (director_ns_min, director_ns_max) = spread(&values(|r| r.director_ns));
    let (ratio_min, ratio_max) = spread(&values(|r| r.ratio));
    let (mpps_core_min, mpps_core_max) = spread(&values(|r| r.mpps_core));
    // Every field named (no `..`): a new field of `Row` must be given its rule here.
    Row {
        scenario: first.scenario.clone(),
        size: first.size,
        conns: first.conns,
        workers: first.workers,
        generators: first.generators,
        mpps: med(|r| r.mpps),
        mpps_core: med(|r| r.mpps_core),
        worker_cpu_share: med(|r| r.worker_cpu_share),
        gen_cpu_share: med(|r| r.gen_cpu_share),
        gen_stalled: med(|r| r.gen_stalled),
        worker_burst: med(|r| r.worker_burst),
        ceiling_mpps: med(|r| r.ceiling_mpps),
        ceiling_mpps_core: med(|r| r.ceiling_mpps_core),
        ceiling_gen_stalled: med(|r| r.ceiling_gen_stalled),
        ratio: med(|r| r.ratio),
        worker_ns: med(|r| r.worker_ns),
        director_ns_by_difference: med(|r| r.director_ns_by_difference),
        director_ns: med(|r| r.director_ns),
        director_cycles: med(|r| r.director_cycles),
        director_cycles_raw: med(|r| r.director_cycles_raw),
        probe_cpu_share: med(|r| r.probe_cpu_share),
        conns_per_s: med(|r| r.conns_per_s),
        conns_per_s_core: med(|r| r.conns_per_s_core),
        rss_bytes_per_conn: med(|r| r.rss_bytes_per_conn),
        table_bytes_per_conn: med(|r| r.table_bytes_per_conn),
        drops: group.iter().map(|r| r.drops).max().unwrap_or(0),
        dut_bound: majority(group.iter().map(|r| r.dut_bound)),
        ceiling_dut_bound: majority(group.iter().map(|r| r.ceiling_dut_bound)),
        frames_checked: group.iter().map(|r| r.frames_checked).sum(),
        frames_bad: group.iter().map(|r| r.frames_bad).sum(),
        runs: u32::try_from(group.len()).unwrap_or(u32::MAX),
        director_ns_min,
        director_ns_max,
        ratio_min,
        ratio_max,
        mpps_core_min,
        mpps_core_max,
    }
}

/// The rows of `runs` (each the rows of one run of the same plan, in the plan's order)
/// merged row by row into their medians. Rows are matched by position, and every run must
/// have the same rows (scenario, size, connections, workers) in the same order; otherwise
/// an error names the first difference. No runs give no rows.
pub fn merge(runs: &[Vec<Row>]) -> Result<Vec<Row>, String> {
    let Some(first) = runs.first() else {
        return Ok(Vec::new());
    };
    for (i, run) in runs.iter().enumerate().skip(1) {
        if run.len() != first.len() {
            return Err(format!(
                "run {} has {} rows, run 1 has {}",
                i + 1,
                run.len(),
                first.len()
            ));
        }
        if let Some((a, b)) = first.iter().zip(run).find(|(a, b)| key(a) != key(b)) {
            return Err(format!(
                "run {} has row {:?} where run 1 has {:?}",
                i + 1,
                key(b),
                key(a)
            ));
        }
    }
    Ok((0..first.len())
        .map(|j| merge_row(&runs.iter().map(|run| &run[j]).collect::<Vec<_>>()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of one run whose measured values are all `v` (counts: `drops`, checked 100,
    /// `bad`), bound as told.
    fn run_row(sc: &str, v: f64, drops: u64, bad: u64, bound: bool) -> Row {
        Row {
            scenario: sc.into(),
            size: 64,
            conns: 1_000,
            workers: 1,
            generators: 1,
            mpps: v,
            mpps_core: v,
            worker_cpu_share: v,
            gen_cpu_share: v,
            gen_stalled: v,
            worker_burst: v,
            ceiling_mpps: v,
            ceiling_mpps_core: v,
            ceiling_gen_stalled: v,
            ratio: v,
            worker_ns: v,
            director_ns_by_difference: v,
            director_ns: v,
            director_cycles: v,
            director_cycles_raw: v,
            probe_cpu_share: v,
            conns_per_s: v,
            conns_per_s_core: v,
            rss_bytes_per_conn: v,
            table_bytes_per_conn: v,
            drops,
            dut_bound: bound,
            ceiling_dut_bound: !bound,
            frames_checked: 100,
            frames_bad: bad,
            runs: 1,
            director_ns_min: v,
            director_ns_max: v,
            ratio_min: v,
            ratio_max: v,
            mpps_core_min: v,
            mpps_core_max: v,
        }
    }

    /// Every median field of `r`, in declaration order.
    fn medians(r: &Row) -> Vec<f64> {
        vec![
            r.mpps,
            r.mpps_core,
            r.worker_cpu_share,
            r.gen_cpu_share,
            r.gen_stalled,
            r.worker_burst,
            r.ceiling_mpps,
            r.ceiling_mpps_core,
            r.ceiling_gen_stalled,
            r.ratio,
            r.worker_ns,
            r.director_ns_by_difference,
            r.director_ns,
            r.director_cycles,
            r.director_cycles_raw,
            r.probe_cpu_share,
            r.conns_per_s,
            r.conns_per_s_core,
            r.rss_bytes_per_conn,
            r.table_bytes_per_conn,
        ]
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[76.0, 46.0, 51.0]), 51.0);
        assert_eq!(median(&[3.0, 1.0, 4.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert_eq!(median(&[2.0, 8.0]), 5.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn odd_runs_take_the_middle_value_of_every_field() {
        let runs = vec![
            vec![
                run_row("nat", 76.0, 0, 0, true),
                run_row("dr", 1.0, 0, 0, true),
            ],
            vec![
                run_row("nat", 46.0, 0, 0, true),
                run_row("dr", 3.0, 0, 0, true),
            ],
            vec![
                run_row("nat", 51.0, 0, 0, true),
                run_row("dr", 2.0, 0, 0, true),
            ],
        ];
        let m = merge(&runs).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].scenario.as_str(), m[1].scenario.as_str()),
            ("nat", "dr")
        );
        assert_eq!(medians(&m[0]), vec![51.0; 20]);
        assert_eq!(medians(&m[1]), vec![2.0; 20]);
        assert_eq!(m[0].runs, 3);
        assert_eq!((m[0].director_ns_min, m[0].director_ns_max), (46.0, 76.0));
        assert_eq!((m[0].ratio_min, m[0].ratio_max), (46.0, 76.0));
        assert_eq!((m[0].mpps_core_min, m[0].mpps_core_max), (46.0, 76.0));
        assert_eq!((m[1].ratio_min, m[1].ratio_max), (1.0, 3.0));
    }

    #[test]
    fn even_runs_take_the_mean_of_the_middle_two() {
        let runs: Vec<Vec<Row>> = [10.0, 40.0, 20.0, 30.0]
            .iter()
            .map(|&v| vec![run_row("nat", v, 0, 0, true)])
            .collect();
        let m = merge(&runs).unwrap();
        assert_eq!(medians(&m[0]), vec![25.0; 20]);
        assert_eq!(m[0].runs, 4);
        assert_eq!((m[0].director_ns_min, m[0].director_ns_max), (10.0, 40.0));
    }

    #[test]
    fn the_ratio_is_the_median_of_the_run_ratios() {
        // Ratios 0.5, 0.2, 0.4: median 0.4; the ratio of the medians would be 6 / 12 = 0.5.
        let mut runs = Vec::new();
        for (core, ceiling) in [(5.0, 10.0), (2.0, 10.0), (6.0, 15.0)] {
            let mut r = run_row("nat", 1.0, 0, 0, true);
            r.mpps_core = core;
            r.ceiling_mpps_core = ceiling;
            r.ratio = core / ceiling;
            runs.push(vec![r]);
        }
        let m = merge(&runs).unwrap();
        assert_eq!(m[0].ratio, 0.4);
        assert_eq!((m[0].mpps_core, m[0].ceiling_mpps_core), (5.0, 10.0));
        assert_eq!((m[0].ratio_min, m[0].ratio_max), (0.2, 0.5));
    }

    #[test]
    fn exact_counts_stay_exact() {
        let runs = vec![
            vec![run_row("nat", 1.0, 3, 0, true)],
            vec![run_row("nat", 1.0, 9, 2, true)],
            vec![run_row("nat", 1.0, 0, 0, true)],
        ];
        let m = merge(&runs).unwrap();
        assert_eq!(m[0].drops, 9);
        assert_eq!(m[0].frames_checked, 300);
        assert_eq!(m[0].frames_bad, 2);
    }

    #[test]
    fn bound_flags_take_the_majority_and_a_tie_is_not_bound() {
        let rows = |flags: &[bool]| -> Vec<Vec<Row>> {
            flags
                .iter()
                .map(|&b| vec![run_row("nat", 1.0, 0, 0, b)])
                .collect()
        };
        let m = merge(&rows(&[true, false, true])).unwrap();
        assert!(m[0].dut_bound);
        assert!(!m[0].ceiling_dut_bound);
        let m = merge(&rows(&[false, true, false])).unwrap();
        assert!(!m[0].dut_bound);
        assert!(m[0].ceiling_dut_bound);
        let m = merge(&rows(&[true, false])).unwrap();
        assert!(!m[0].dut_bound);
        assert!(!m[0].ceiling_dut_bound);
    }

    #[test]
    fn one_run_is_itself() {
        let r = run_row("syn", 3.5, 1, 0, true);
        let m = merge(&[vec![r.clone()]]).unwrap();
        assert_eq!(medians(&m[0]), medians(&r));
        assert_eq!((m[0].drops, m[0].frames_checked, m[0].runs), (1, 100, 1));
        assert_eq!((m[0].ratio_min, m[0].ratio_max), (3.5, 3.5));
        assert!(merge(&[]).unwrap().is_empty());
    }

    #[test]
    fn runs_with_other_rows_are_refused() {
        let a = vec![run_row("nat", 1.0, 0, 0, true)];
        let b = vec![run_row("dr", 1.0, 0, 0, true)];
        let e = merge(&[a.clone(), b]).unwrap_err();
        assert!(e.contains("run 2 has row (\"dr\""), "{e}");
        let e = merge(&[a.clone(), vec![]]).unwrap_err();
        assert_eq!(e, "run 2 has 0 rows, run 1 has 1");
    }

    #[test]
    fn rows_from_before_repeat_still_load() {
        // A row as results.json files held it before --repeat (no runs, no spread).
        let old = r#"{"scenario":"nat","size":64,"conns":1000,"workers":1,"mpps":3.6,
            "mpps_core":7.33,"worker_cpu_share":0.5,"gen_cpu_share":0.9,"gen_stalled":0.9,
            "worker_burst":32.0,"ceiling_mpps":20.0,"ceiling_mpps_core":42.0,
            "ceiling_gen_stalled":0.1,"ratio":0.17,"worker_ns":136.0,
            "director_ns_by_difference":112.0,"director_ns":57.0,"director_cycles":148.0,
            "director_cycles_raw":150.0,"probe_cpu_share":0.98,"conns_per_s":0.0,
            "conns_per_s_core":0.0,"rss_bytes_per_conn":90.0,"table_bytes_per_conn":88.0,
            "drops":0,"dut_bound":true,"ceiling_dut_bound":false,"frames_checked":512,
            "frames_bad":0}"#;
        let r: Row = serde_json::from_str(old).unwrap();
        assert_eq!(r.runs, 1);
        assert_eq!(r.director_ns, 57.0);
        assert_eq!((r.director_ns_min, r.director_ns_max), (0.0, 0.0));
        assert_eq!((r.ratio_min, r.mpps_core_max), (0.0, 0.0));
        assert_eq!(r.frames_checked, 512);
    }
}
