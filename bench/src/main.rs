//! `bench`: runs the director's real workers on DPDK ring ports fed by a generator thread and
//! prints Mpps, cycles per packet, the ratio to the pass-through ceiling, connections/s and
//! memory per connection. See the README's "Benchmarks" section.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bench::machine::{load_average, Machine};
use bench::measure::{self, Plan, Row, Scenario};
use bench::report::{targets, Report};
use bench::rig::{Rig, RigConfig};
use bench::{flows, frame, plot, repeat, testpmd};
use clap::Parser;

/// Performance runs of the director's data plane on DPDK virtual ports.
#[derive(Parser, Debug)]
#[command(name = "bench", version)]
struct Args {
    /// Scenarios: nat, dr, tun (established flows), syn (new connections), mixed (90/10),
    /// reply (the NAT real servers' replies of established flows).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "nat,dr,tun,syn,mixed,reply"
    )]
    scenarios: Vec<String>,
    /// Frame sizes in bytes on the wire, FCS included (64..=1518).
    #[arg(long, value_delimiter = ',', default_value = "64,512,1500")]
    sizes: Vec<usize>,
    /// Live connections for nat/dr/tun/mixed (suffixes k, m).
    #[arg(long, value_delimiter = ',', default_value = "1k,100k,1m")]
    conns: Vec<String>,
    /// Also NAT at the first size with these many connections ("" for none).
    #[arg(long, value_delimiter = ',', default_value = "10m")]
    nat_extra: Vec<String>,
    /// Unique SYNs (and table size) of the syn scenario.
    #[arg(long, default_value = "2m")]
    syn_flows: String,
    /// Table room for the mixed scenario's new flows.
    #[arg(long, default_value = "2m")]
    mixed_new: String,
    /// Workers (each needs its own core besides the generator's).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Use 2 MB hugepages (EAL --in-memory; hugetlbfs must be mounted) instead of --no-huge.
    #[arg(long)]
    hugepages: bool,
    /// EAL memory in MB.
    #[arg(long, default_value_t = 512)]
    mem_mb: u32,
    /// More EAL arguments, space-separated (e.g. "-d /path/to/drivers").
    #[arg(long, allow_hyphen_values = true, default_value = "")]
    eal_args: String,
    /// Warm-up before each window, ms.
    #[arg(long, default_value_t = 200)]
    warmup_ms: u64,
    /// Measuring window, ms.
    #[arg(long, default_value_t = 1000)]
    window_ms: u64,
    /// Generator cores: one generator for all workers, or one per worker (each feeds and
    /// drains its own worker: for machines where one generator cannot keep up with several
    /// workers). The first also feeds the probe and the pass-through loop.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    gen_core: Vec<usize>,
    /// Worker cores (default: the cores after the first generator's that no generator uses,
    /// wrapping).
    #[arg(long, value_delimiter = ',')]
    worker_cores: Vec<usize>,
    /// Check one drained burst in N against the forwarding method (1: all, 0: none).
    #[arg(long, default_value_t = 64)]
    verify_every: u64,
    /// Seconds of dpdk-testpmd io forwarding as an outside reference (0: skip).
    #[arg(long, default_value_t = 5)]
    testpmd_secs: u32,
    /// Print the report as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    json: bool,
    /// Write results.md, results.json and results.png into this directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Re-renders a saved results.json (markdown on stdout, files with --out) instead of
    /// running anything.
    #[arg(long)]
    render: Option<PathBuf>,
    /// A few milliseconds of every scenario and size, every frame checked: proves the bench
    /// works (no hugepages needed); fails on any wrong frame, drop or empty measurement.
    #[arg(long)]
    smoke: bool,
    /// Runs the whole plan N times (fresh tables per row each time, as one run) and reports
    /// every row as the median of its N runs, with the spread of the headline numbers; the
    /// runs' own rows are kept in results.json (runs_detail). --smoke always runs once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
}

/// "1k", "100K", "1m", "10M" or a plain number.
fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1_000),
        Some('m') => (&t[..t.len() - 1], 1_000_000),
        _ => (&t[..], 1),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a count: {s:?} (e.g. 1000, 100k, 10m)"))?;
    let n = n * mul;
    if n == 0 || n > u64::from(u32::MAX) || n > flows::MAX_FLOWS {
        return Err(format!("count {s:?} out of range"));
    }
    Ok(n)
}

fn plan(a: &Args) -> Result<Plan, String> {
    let scenarios = a
        .scenarios
        .iter()
        .map(|s| Scenario::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    for &s in &a.sizes {
        if !(frame::MIN_SIZE..=frame::MAX_SIZE).contains(&s) {
            return Err(format!(
                "size {s} outside {}..={}",
                frame::MIN_SIZE,
                frame::MAX_SIZE
            ));
        }
    }
    if a.sizes.is_empty() || scenarios.is_empty() {
        return Err("nothing to run".into());
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if a.workers == 0 {
        return Err("--workers must be at least 1".into());
    }
    if a.gen_core.is_empty() || (a.gen_core.len() != 1 && a.gen_core.len() != a.workers) {
        return Err(format!(
            "--gen-core: one core, or one per worker ({} workers), not {}",
            a.workers,
            a.gen_core.len()
        ));
    }
    let dut_cores: Vec<Option<usize>> = if a.worker_cores.is_empty() {
        let first = a.gen_core[0];
        (1..=cores)
            .map(|k| (first + k) % cores)
            .filter(|c| !a.gen_core.contains(c))
            .chain((0..cores).cycle())
            .take(a.workers)
            .map(Some)
            .collect()
    } else {
        a.worker_cores.iter().map(|&c| Some(c)).collect()
    };
    if a.workers + a.gen_core.len() > cores {
        eprintln!(
            "bench: {} workers + {} generator(s) on {cores} cores: threads share cores, \
             numbers are not per-core figures",
            a.workers,
            a.gen_core.len()
        );
    }
    let mut p = Plan {
        scenarios,
        sizes: a.sizes.clone(),
        conns: a
            .conns
            .iter()
            .map(|c| parse_count(c))
            .collect::<Result<_, _>>()?,
        nat_extra: a
            .nat_extra
            .iter()
            .filter(|c| !c.is_empty())
            .map(|c| parse_count(c))
            .collect::<Result<_, _>>()?,
        syn_flows: parse_count(&a.syn_flows)?,
        mixed_new: parse_count(&a.mixed_new)?,
        warmup: Duration::from_millis(a.warmup_ms),
        window: Duration::from_millis(a.window_ms),
        gen_cores: a.gen_core.iter().map(|&c| Some(c)).collect(),
        dut_cores,
        verify_every: a.verify_every,
        patience: Duration::from_secs(120),
    };
    if a.smoke {
        p.conns = vec![1_000];
        p.nat_extra = Vec::new();
        p.syn_flows = 20_000;
        // Room for every new flow of the three 35 ms windows at any rate a generator reaches
        // (a tenth of 50 Mpps is 175 K per window): each size must create connections.
        p.mixed_new = 1_000_000;
        p.warmup = Duration::from_millis(5);
        p.window = Duration::from_millis(30);
        p.verify_every = 1;
    }
    Ok(p)
}

fn run_all(rig: &mut Rig, p: &Plan) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for &sc in &p.scenarios {
        if sc == Scenario::Syn {
            eprintln!("bench: {} ({} flows)", sc.name(), p.syn_flows);
            rows.extend(measure::syn(rig, p)?);
            continue;
        }
        for &n in &p.conns {
            eprintln!("bench: {} with {n} connections", sc.name());
            rows.extend(measure::established(rig, p, sc, n)?);
        }
    }
    if !p.nat_extra.is_empty() {
        let one = Plan {
            sizes: p.sizes[..1].to_vec(),
            ..p.clone()
        };
        for &n in &p.nat_extra {
            eprintln!("bench: nat with {n} connections, {} B", one.sizes[0]);
            rows.extend(measure::established(rig, &one, Scenario::Nat, n)?);
        }
    }
    Ok(rows)
}

/// How many times to run the plan: `--repeat`, but once for `--smoke`.
fn repeats(a: &Args) -> u32 {
    if a.smoke && a.repeat > 1 {
        eprintln!("bench: --smoke runs once, --repeat {} ignored", a.repeat);
        return 1;
    }
    a.repeat
}

/// Runs the plan `n` times; each run's rows, and whether a run failed (the runs before it
/// are kept and reported, nothing after it is run).
fn run_repeated(rig: &mut Rig, p: &Plan, n: u32) -> (Vec<Vec<Row>>, bool) {
    let mut runs = Vec::new();
    for i in 1..=n {
        if n > 1 {
            eprintln!("bench: run {i} of {n}");
        }
        match run_all(rig, p) {
            Ok(rows) => runs.push(rows),
            Err(e) => {
                eprintln!("bench: {e}");
                if n > 1 {
                    eprintln!("bench: run {i} of {n} failed");
                }
                return (runs, true);
            }
        }
    }
    (runs, false)
}

/// What makes a smoke run fail: a wrong frame, a drop, a silent scenario.
fn smoke_failures(rows: &[Row], p: &Plan) -> Vec<String> {
    let mut bad = Vec::new();
    let expected = p.scenarios.iter().map(|s| {
        if *s == Scenario::Syn {
            1
        } else {
            p.conns.len()
        }
    });
    let want: usize = expected.sum::<usize>() * p.sizes.len();
    if rows.len() != want {
        bad.push(format!("{} rows, expected {want}", rows.len()));
    }
    for r in rows {
        let id = format!("{} {} B {} conns", r.scenario, r.size, r.conns);
        if r.mpps <= 0.0 || r.ceiling_mpps <= 0.0 || r.director_cycles <= 0.0 {
            bad.push(format!("{id}: nothing measured ({r:?})"));
        }
        if r.frames_checked == 0 || r.frames_bad > 0 {
            bad.push(format!(
                "{id}: {} of {} frames wrong",
                r.frames_bad, r.frames_checked
            ));
        }
        if r.drops > 0 {
            bad.push(format!("{id}: {} drops", r.drops));
        }
    }
    bad
}

/// Prints the report and writes its files into `out`.
fn publish(report: &Report, args: &Args) -> Result<(), String> {
    let md = report.markdown();
    let json = serde_json::to_string_pretty(report).map_err(|e| format!("JSON: {e}"))?;
    if args.json {
        eprintln!("{md}");
        println!("{json}");
    } else {
        println!("{md}");
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(dir.join("results.md"), &md))
            .and_then(|_| std::fs::write(dir.join("results.json"), &json))
            .map_err(|e| format!("writing {}: {e}", dir.display()))?;
        let title = format!(
            "director bench: {}, {} cores, {}{}",
            report.machine.cpu,
            report.machine.cores,
            if report.machine.hugepages {
                "hugepages"
            } else {
                "no hugepages"
            },
            match report.runs() {
                1 => String::new(),
                n => format!(", medians of {n} runs"),
            }
        );
        plot::draw(&dir.join("results.png"), &title, &report.rows)?;
    }
    Ok(())
}

fn render(path: &std::path::Path, args: &Args) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut report: Report =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    report.targets = targets(&report.rows);
    publish(&report, args)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.render {
        return match render(path, &args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let p = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::from(2);
        }
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let load_start = load_average();
    // testpmd first: with hugepages, this process's EAL would hold them all afterwards.
    let reference = if args.testpmd_secs > 0 && !args.smoke {
        eprintln!(
            "bench: dpdk-testpmd io forwarding for {} s",
            args.testpmd_secs
        );
        let r = testpmd::run(args.testpmd_secs, args.hugepages);
        if r.is_none() {
            eprintln!("bench: dpdk-testpmd not available or printed no statistics");
        }
        r
    } else {
        None
    };
    let cfg = RigConfig {
        workers: args.workers,
        hugepages: args.hugepages,
        mem_mb: args.mem_mb,
        extra_eal: args.eal_args.split_whitespace().map(String::from).collect(),
    };
    let mut rig = match Rig::new(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut machine = Machine::describe(args.hugepages, director::dpdk::tsc_hz());
    machine.load_start = load_start;
    let (runs, failed) = run_repeated(&mut rig, &p, repeats(&args));
    if runs.is_empty() {
        return ExitCode::FAILURE;
    }
    let rows = match repeat::merge(&runs) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    machine.load_end = load_average();
    let report = Report {
        command,
        machine,
        targets: targets(&rows),
        rows,
        runs_detail: if runs.len() > 1 { runs } else { Vec::new() },
        testpmd: reference,
    };
    if let Err(e) = publish(&report, &args) {
        eprintln!("bench: {e}");
        return ExitCode::FAILURE;
    }
    if failed {
        eprintln!(
            "bench: reported the medians of the {} complete runs only",
            report.runs()
        );
        return ExitCode::FAILURE;
    }
    let wrong: u64 = report.rows.iter().map(|r| r.frames_bad).sum();
    if wrong > 0 {
        eprintln!("bench: {wrong} forwarded frames were wrong");
        return ExitCode::FAILURE;
    }
    if args.smoke {
        let bad = smoke_failures(&report.rows, &p);
        if !bad.is_empty() {
            for b in &bad {
                eprintln!("bench: smoke: {b}");
            }
            return ExitCode::FAILURE;
        }
        eprintln!("bench: smoke ok ({} rows)", report.rows.len());
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_with_suffixes() {
        assert_eq!(parse_count("1k"), Ok(1_000));
        assert_eq!(parse_count("100K"), Ok(100_000));
        assert_eq!(parse_count("10m"), Ok(10_000_000));
        assert_eq!(parse_count("1234"), Ok(1234));
        assert!(parse_count("0").is_err());
        assert!(parse_count("5g").is_err());
        assert!(parse_count("m").is_err());
    }

    #[test]
    fn repeat_defaults_to_one_refuses_zero_and_smoke_runs_once() {
        let args = |a: &[&str]| Args::try_parse_from([&["bench"], a].concat());
        assert_eq!(repeats(&args(&[]).unwrap()), 1);
        assert_eq!(repeats(&args(&["--repeat", "5"]).unwrap()), 5);
        assert!(args(&["--repeat", "0"]).is_err());
        assert_eq!(repeats(&args(&["--smoke", "--repeat", "3"]).unwrap()), 1);
    }
}
