//! A description of the machine and build a run happened on, for the results files.

use serde::{Deserialize, Serialize};
use std::process::Command;

/// Where and how a run was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// `lscpu` model name.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// Hypervisor vendor from `lscpu`, if virtualised.
    pub hypervisor: Option<String>,
    /// `uname -r`.
    pub kernel: String,
    /// `pkg-config --modversion libdpdk`.
    pub dpdk: String,
    /// Whether the run used hugepages.
    pub hugepages: bool,
    /// TSC frequency (Hz) as DPDK measured it.
    pub tsc_hz: u64,
    /// /proc/loadavg (1 min) when the run started: other work on the machine.
    pub load_start: f64,
    /// /proc/loadavg (1 min) when the run ended.
    pub load_end: f64,
    /// `git describe --always --dirty` of the checkout.
    pub commit: String,
    /// UTC time of the run (`date -u`).
    pub date: String,
}

fn run(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The commit the binary was built from, and the checkout's where the run happens if that
/// differs (a binary copied elsewhere, or sources changed since the build).
fn commit(here: &str) -> String {
    let built = env!("BENCH_BUILD_COMMIT");
    if here == built || here == "unknown" {
        built.to_string()
    } else {
        format!("{built} (checkout where it ran: {here})")
    }
}

fn lscpu_field(lscpu: &str, key: &str) -> Option<String> {
    lscpu
        .lines()
        .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

impl Machine {
    /// Describes this machine now (`load_end` is filled at the end of the run).
    pub fn describe(hugepages: bool, tsc_hz: u64) -> Machine {
        let lscpu = run("lscpu", &[]);
        Machine {
            cpu: lscpu_field(&lscpu, "Model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            hypervisor: lscpu_field(&lscpu, "Hypervisor vendor"),
            kernel: run("uname", &["-r"]),
            dpdk: match run("pkg-config", &["--modversion", "libdpdk"]) {
                v if v == "unknown" => format!("{} (built against)", env!("BENCH_BUILD_DPDK")),
                v => v,
            },
            hugepages,
            tsc_hz,
            load_start: load_average(),
            load_end: f64::NAN,
            commit: commit(&run("git", &["describe", "--always", "--dirty"])),
            date: run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        }
    }

    /// One line for the results table.
    pub fn line(&self) -> String {
        format!(
            "{} ({} cores{}), Linux {}, DPDK {}, {}, TSC {:.2} GHz, load average {:.1} -> {:.1}, \
             commit {}, {}",
            self.cpu,
            self.cores,
            self.hypervisor
                .as_ref()
                .map(|h| format!(", {h} guest"))
                .unwrap_or_default(),
            self.kernel,
            self.dpdk,
            if self.hugepages {
                "2 MB hugepages"
            } else {
                "no hugepages (--no-huge)"
            },
            self.tsc_hz as f64 / 1e9,
            self.load_start,
            self.load_end,
            self.commit,
            self.date
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lscpu_fields_are_found_by_key() {
        let text = "Architecture:   x86_64\nModel name:     AMD EPYC\nHypervisor vendor: KVM\n";
        assert_eq!(lscpu_field(text, "Model name").as_deref(), Some("AMD EPYC"));
        assert_eq!(
            lscpu_field(text, "Hypervisor vendor").as_deref(),
            Some("KVM")
        );
        assert_eq!(lscpu_field(text, "Vendor ID"), None);
    }
}
