//! Records what the bench binary was built from (commit, DPDK version), so that a result
//! names the code that produced it even where the binary runs away from its checkout (a
//! copied binary, another machine without DPDK's development files).

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    println!(
        "cargo:rustc-env=BENCH_BUILD_COMMIT={}",
        run("git", &["describe", "--always", "--dirty"])
    );
    println!(
        "cargo:rustc-env=BENCH_BUILD_DPDK={}",
        run("pkg-config", &["--modversion", "libdpdk"])
    );
    // Again when the checkout moves or the sources that go into the binary change (a
    // missing path, e.g. no .git in a container build, reruns it every time: cheap).
    for p in [
        "../.git/HEAD",
        "../.git/index",
        "src",
        "../director/src",
        "../sched/src",
        "../dpdk-sys/src",
    ] {
        println!("cargo:rerun-if-changed={p}");
    }
}
