//! `bench --smoke` runs every scenario (nat, dr, tun, syn, mixed, reply) and frame size (64,
//! 512, 1500) for a few milliseconds with the real workers, without hugepages, checking every
//! forwarded frame. This test runs it and reads its JSON report: every row is there, moved
//! packets, and every frame the workers sent was what its forwarding method must produce.
//! Nothing here depends on speed.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A bound on a hung run (not a measurement): the child is killed after it.
const HANG: Duration = Duration::from_secs(600);

#[test]
fn smoke_run_covers_every_scenario_and_size_with_correct_frames() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--smoke", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bench");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for bench") {
            break s;
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bench --smoke still running after {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("bench output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(status.success(), "bench --smoke failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the JSON report on stdout");
    let rows = report["rows"].as_array().expect("rows");
    let mut seen = Vec::new();
    for r in rows {
        let scenario = r["scenario"].as_str().unwrap().to_string();
        let size = r["size"].as_u64().unwrap();
        let conns = r["conns"].as_u64().unwrap();
        let id = format!("{scenario} {size} B");
        assert_eq!(r["workers"], 1, "{id}");
        let want_conns = if scenario == "syn" { 20_000 } else { 1_000 };
        assert_eq!(conns, want_conns, "{id}");
        assert!(r["mpps"].as_f64().unwrap() > 0.0, "{id}: no packets");
        assert!(
            r["ceiling_mpps"].as_f64().unwrap() > 0.0,
            "{id}: no ceiling"
        );
        assert!(
            r["director_cycles"].as_f64().unwrap() > 0.0,
            "{id}: no probe"
        );
        // New connections are timed in the SYN flood and in mixed traffic (a 1 K populate is
        // too short to time: reported as 0).
        let cps = r["conns_per_s"].as_f64().unwrap();
        if scenario == "syn" || scenario == "mixed" {
            assert!(cps > 0.0, "{id}: no connections");
        } else {
            assert_eq!(cps, 0.0, "{id}");
        }
        assert!(
            r["frames_checked"].as_u64().unwrap() > 0,
            "{id}: nothing checked"
        );
        assert_eq!(r["frames_bad"], 0, "{id}: wrong frames");
        assert_eq!(r["drops"], 0, "{id}: drops");
        seen.push((scenario, size));
    }
    let mut want = Vec::new();
    for s in ["nat", "dr", "tun", "syn", "mixed", "reply"] {
        for size in [64, 512, 1500] {
            want.push((s.to_string(), size));
        }
    }
    assert_eq!(seen, want);
    assert_eq!(report["machine"]["hugepages"], false);
    assert!(report["machine"]["tsc_hz"].as_u64().unwrap() > 0);
    assert_eq!(report["targets"].as_array().unwrap().len(), 6);
    assert!(stderr.contains("smoke ok (18 rows)"), "{stderr}");
}

/// With two workers and one generator per worker (`--gen-core` with two cores), every
/// scenario still moves packets, and every frame each worker sent is right: each generator
/// feeds only its own worker's flows (the workers share the machine's two cores with them
/// here, so the rates mean nothing).
#[test]
fn smoke_run_with_a_generator_per_worker() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args([
            "--smoke",
            "--json",
            "--workers",
            "2",
            "--gen-core",
            "0,1",
            "--worker-cores",
            "1,0",
            "--testpmd-secs",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the JSON report on stdout");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 18);
    for r in rows {
        let id = format!("{} {} B", r["scenario"], r["size"]);
        assert_eq!(r["workers"], 2, "{id}");
        assert_eq!(r["generators"], 2, "{id}");
        assert!(r["mpps"].as_f64().unwrap() > 0.0, "{id}: no packets");
        assert!(r["frames_checked"].as_u64().unwrap() > 0, "{id}");
        assert_eq!(r["frames_bad"], 0, "{id}: wrong frames");
        assert_eq!(r["drops"], 0, "{id}: drops");
    }
}

#[test]
fn a_generator_count_other_than_one_or_one_per_worker_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--smoke", "--workers", "3", "--gen-core", "0,1"])
        .output()
        .expect("run bench");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--gen-core: one core, or one per worker (3 workers), not 2"),
        "{stderr}"
    );
}
