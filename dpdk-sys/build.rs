//! Builds the DPDK bindings: pkg-config finds the system DPDK (libdpdk-dev), cc compiles the C
//! shim for DPDK's `static inline` functions, bindgen generates the Rust declarations.

use std::env;
use std::path::PathBuf;
use std::process::{exit, Command};

/// Flag every C compilation of DPDK headers needs beyond `pkg-config --cflags`.
const EXTRA_CFLAGS: &[&str] = &["-DALLOW_EXPERIMENTAL_API"];

/// The one line a build without DPDK fails with.
const NOT_FOUND: &str = "DPDK (libdpdk-dev) not found by pkg-config: run scripts/setup.sh";

fn main() {
    // First, before any other output, so that a missing DPDK gives one clear error line.
    let mut clang_args = raw_cflags().unwrap_or_else(|| fail(NOT_FOUND));
    clang_args.extend(EXTRA_CFLAGS.iter().map(|s| s.to_string()));

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/shim.c");

    // Links librte_* with the flags of `pkg-config --libs libdpdk` (shared: EAL loads the
    // driver plugins itself) and emits rerun-if-env-changed for PKG_CONFIG_* variables.
    if pkg_config::Config::new()
        .cargo_metadata(true)
        .probe("libdpdk")
        .is_err()
    {
        fail(NOT_FOUND);
    }
    // rte_eth_from_rings lives in the net_ring driver, which pkg-config does not list. It is
    // the same file EAL loads as a plugin (a symlink into pmds-23.0), so it is loaded once.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");

    let mut build = cc::Build::new();
    build.file("shim/shim.c").include("shim").warnings(false);
    for flag in &clang_args {
        build.flag(flag);
    }
    build.compile("dpdk_shim");

    let bindings = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(&clang_args)
        .allowlist_function("rte_.*|shim_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|RING_F_.*|SOCKET_ID_ANY|LCORE_ID_ANY")
        // Packed struct with a flexible array member: derive(Debug) cannot be generated.
        .no_debug("rte_flow_item_gtp_psc")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .prepend_enum_name(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed on the DPDK headers: {e}")));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs to OUT_DIR");
}

/// The unmodified `pkg-config --cflags libdpdk` tokens: DPDK's headers need its
/// `-include rte_config.h` and `-march=...`, which the pkg-config crate does not report.
/// `None` when pkg-config or libdpdk is missing.
fn raw_cflags() -> Option<Vec<String>> {
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_owned());
    let output = Command::new(pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
    )
}

/// Fails the build with one error line (`cargo::error`, shown as `error: dpdk-sys@...: MSG`).
fn fail(msg: &str) -> ! {
    println!("cargo::error={msg}");
    exit(0)
}
