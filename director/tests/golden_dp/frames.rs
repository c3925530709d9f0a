//! The data-plane golden frames (`frames.txt`, written by `gen.py` with scapy): loading, lookup
//! by name, and a readable diff for mismatches. Shared by the dataplane_* test binaries.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// This directory.
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden_dp")
}

fn parse(text: &str) -> HashMap<String, Vec<u8>> {
    let mut frames = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, hex) = line
            .split_once(' ')
            .unwrap_or_else(|| panic!("frames.txt line {}: no hex", n + 1));
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .unwrap_or_else(|e| panic!("frames.txt line {}: {e}", n + 1));
        assert!(
            frames.insert(name.to_string(), bytes).is_none(),
            "frames.txt: duplicate {name}"
        );
    }
    frames
}

/// All frames by name.
pub fn all() -> &'static HashMap<String, Vec<u8>> {
    static FRAMES: OnceLock<HashMap<String, Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let path = golden_dir().join("frames.txt");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        parse(&text)
    })
}

/// The frame called `name` (panics, naming it, if gen.py does not make it).
pub fn get(name: &str) -> &'static [u8] {
    all()
        .get(name)
        .unwrap_or_else(|| panic!("no golden frame {name:?} (see golden_dp/gen.py)"))
}

/// Where two frames differ, for assertion messages.
pub fn describe_diff(got: &[u8], want: &[u8]) -> String {
    let first = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    format!(
        "lengths got {} want {}, first difference at byte {first}\n got  {}\n want {}",
        got.len(),
        want.len(),
        hex(got),
        hex(want)
    )
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Asserts `got` is golden frame `name`, byte for byte.
#[track_caller]
pub fn assert_frame(got: &[u8], name: &str) {
    let want = get(name);
    assert!(
        got == want,
        "frame differs from golden {name}: {}",
        describe_diff(got, want)
    );
}

/// A python3 that can import scapy, if any.
pub fn python_with_scapy() -> Option<&'static str> {
    ["/usr/bin/python3", "python3"].into_iter().find(|python| {
        Command::new(python)
            .args(["-c", "import scapy.all"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Re-runs gen.py and checks that frames.txt is exactly its output (skipped, loudly, without
/// scapy).
pub fn check_file_is_current() {
    let Some(python) = python_with_scapy() else {
        eprintln!(
            "SKIPPED: no python3 with scapy (apt install python3-scapy); \
             golden_dp/frames.txt not re-generated"
        );
        return;
    };
    let out = Command::new(python)
        .arg(golden_dir().join("gen.py"))
        .arg("--stdout")
        .output()
        .expect("run gen.py");
    assert!(
        out.status.success(),
        "gen.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let committed =
        std::fs::read_to_string(golden_dir().join("frames.txt")).expect("read frames.txt");
    assert!(
        generated == committed,
        "golden_dp/frames.txt is stale: run `python3 director/tests/golden_dp/gen.py`"
    );
}
