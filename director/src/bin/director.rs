//! The director daemon: `director --config /etc/director/director.toml`.

use clap::Parser;
use director::control::config::Config;
use director::control::daemon::{self, DaemonOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// DPDK-based user-space IPVS director.
#[derive(Parser, Debug)]
#[command(name = "director", version, about)]
struct Args {
    /// Configuration file (TOML).
    #[arg(short, long, default_value = "/etc/director/director.toml")]
    config: PathBuf,
    /// Rules to restore at start (ipvsadm -S format); overrides control.rules.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Stop once no packet has arrived for this many milliseconds after the first one
    /// (offline pcap replay).
    #[arg(long, value_name = "MS")]
    stop_when_idle: Option<u64>,
    /// Validate the configuration and exit (touches no DPDK).
    #[arg(long)]
    check: bool,
    /// Print nothing on start and stop.
    #[arg(short, long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("director: {}: {e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    if args.check {
        println!("director: {}: ok", args.config.display());
        return ExitCode::SUCCESS;
    }
    let opts = DaemonOptions {
        rules: args.rules,
        stop_when_idle: args.stop_when_idle.map(Duration::from_millis),
        quiet: args.quiet,
    };
    match daemon::run(config, opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("director: {e}");
            ExitCode::from(1)
        }
    }
}
