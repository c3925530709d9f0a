//! Offline replay through the full pipeline (issue 5): a capture with TCP/UDP flows to a NAT,
//! a DR and a TUN service, ARP for the VIP and hostile frames goes in through DPDK's net_pcap
//! driver; the daemon (the real binary) stops by itself when the input is exhausted; the output
//! capture is checked flow by flow by scapy (director/tests/replay/replay.py), not by our code.

use std::path::PathBuf;
use std::process::Command;

/// A python3 that can import scapy, if any.
fn python_with_scapy() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import scapy.all"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn pcap_replay_nat_dr_tun_checked_by_scapy() {
    let Some(py) = python_with_scapy() else {
        eprintln!("SKIPPED: no python3 with scapy (scripts/setup.sh installs python3-scapy)");
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/replay/replay.py");
    let dir = std::env::temp_dir().join(format!("director-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let gen = Command::new(py)
        .arg(&script)
        .args(["gen", d])
        .status()
        .unwrap();
    assert!(gen.success(), "replay.py gen failed");

    let out = Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["--config", &format!("{d}/director.toml")])
        .args(["--rules", &format!("{d}/rules")])
        .args(["--stop-when-idle", "500"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "director failed: {stderr}");
    // The drops are counted by reason: the truncated frame, the ACK without a connection and
    // the SYN to an address that is no service.
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("director: stopped:"))
        .expect("stop summary");
    assert!(summary.contains("rx 15 tx 15"), "{summary}");
    for reason in ["truncated_l3=1", "no_connection=1", "not_for_us=1"] {
        assert!(summary.contains(reason), "missing {reason} in {summary}");
    }

    let check = Command::new(py)
        .arg(&script)
        .args(["check", d])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    eprintln!("{report}");
    assert!(check.status.success(), "scapy check failed:\n{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
