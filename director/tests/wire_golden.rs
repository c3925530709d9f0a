//! Golden frames: each transform's output compared byte for byte with what scapy (an
//! independent implementation, director/tests/golden/gen.py) builds for the same operation.

#[path = "golden/cases.rs"]
mod cases;

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn transforms_match_scapy_byte_for_byte() {
    let cases = cases::load();
    let mut failures = Vec::new();
    for case in &cases {
        match case.run_on(&case.input) {
            Ok(got) if got == case.expected => {}
            Ok(got) => failures.push(format!(
                "{}: {}",
                case.name,
                cases::describe_diff(&got, &case.expected)
            )),
            Err(reason) => failures.push(format!("{}: refused with {reason}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn golden_cases_cover_every_operation() {
    let cases = cases::load();
    let ops: BTreeSet<&str> = cases.iter().map(|c| c.op.as_str()).collect();
    let want = [
        "arp_reply",
        "arp_request",
        "dest_unreachable",
        "dnat",
        "dr",
        "echo_reply",
        "garp",
        "icmp_dnat",
        "icmp_snat",
        "snat",
        "tcp_reset",
        "time_exceeded",
        "tun",
    ];
    assert_eq!(ops, want.into_iter().collect::<BTreeSet<_>>());
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), cases.len(), "duplicate case names");
    for required in [
        "nat_in_udp_csum0_padded",
        "nat_in_udp_becomes_ffff",
        "nat_out_udp_csum0_becomes_ffff",
        "nat_in_tcp_syn_vlan_ipopts",
        "tun_udp_ce_no_df",
        "frag_needed_vlan",
    ] {
        assert!(names.contains(required), "missing case {required}");
    }
}

/// A python3 that can import scapy, if any.
fn python_with_scapy() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import scapy.all"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn golden_file_is_what_gen_py_writes() {
    let Some(python) = python_with_scapy() else {
        eprintln!("SKIPPED: no python3 with scapy; cases.txt not re-generated");
        return;
    };
    let dir = cases::golden_dir();
    let out = Command::new(python)
        .arg(dir.join("gen.py"))
        .arg("--stdout")
        .output()
        .expect("run gen.py");
    assert!(
        out.status.success(),
        "gen.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = std::fs::read_to_string(dir.join("cases.txt")).expect("cases.txt");
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "cases.txt is stale: run `python3 director/tests/golden/gen.py`"
    );
}
