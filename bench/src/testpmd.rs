//! The outside reference: `dpdk-testpmd` in io forwarding mode on two `net_null` devices,
//! run as a separate process for a few seconds (stopped with SIGINT through `timeout`).

use serde::{Deserialize, Serialize};
use std::process::Command;

/// What testpmd reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestpmdResult {
    /// The command run.
    pub command: String,
    /// Median Rx-pps of each port over the stats periods after the first, in Mpps.
    pub port_mpps: Vec<f64>,
}

/// The command line for `secs` seconds.
pub fn command(secs: u32, hugepages: bool) -> Vec<String> {
    let mem = if hugepages {
        "--in-memory"
    } else {
        "--no-huge"
    };
    format!(
        "timeout -s INT {secs} dpdk-testpmd -l 0-1 {mem} -m 512 --no-pci --no-shconf \
         --vdev=net_null0 --vdev=net_null1 -- --forward-mode=io --stats-period 1 --tx-first \
         --total-num-mbufs=16384"
    )
    .split_whitespace()
    .map(String::from)
    .collect()
}

/// Median Rx-pps per port (in port order of appearance), skipping each port's first sample.
pub fn parse(output: &str) -> Vec<f64> {
    let mut ports: Vec<Vec<f64>> = Vec::new();
    let mut port: Option<usize> = None;
    for line in output.lines() {
        if let Some(rest) = line.split("NIC statistics for port").nth(1) {
            port = rest
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<usize>().ok());
            continue;
        }
        let (Some(p), Some(rest)) = (port, line.trim_start().strip_prefix("Rx-pps:")) else {
            continue;
        };
        if let Some(v) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            if ports.len() <= p {
                ports.resize(p + 1, Vec::new());
            }
            ports[p].push(v / 1e6);
        }
    }
    ports
        .into_iter()
        .map(|mut v| {
            if v.len() > 1 {
                v.remove(0);
            }
            v.sort_by(|a, b| a.total_cmp(b));
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        })
        .collect()
}

/// Runs testpmd if it is installed; `None` when it is not or it printed no statistics.
pub fn run(secs: u32, hugepages: bool) -> Option<TestpmdResult> {
    let cmd = command(secs, hugepages);
    let out = Command::new(&cmd[0]).args(&cmd[1..]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let port_mpps = parse(&text);
    if port_mpps.is_empty() {
        return None;
    }
    Some(TestpmdResult {
        command: cmd.join(" "),
        port_mpps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_per_port_skip_the_first_period() {
        let out = "\
  ######################## NIC statistics for port 0  ########################
  Rx-pps:      1000000          Rx-bps:            0
  Tx-pps:      9000000          Tx-bps:            0
  ######################## NIC statistics for port 1  ########################
  Rx-pps:      2000000          Rx-bps:            0
  ######################## NIC statistics for port 0  ########################
  Rx-pps:     20000000          Rx-bps:            0
  ######################## NIC statistics for port 1  ########################
  Rx-pps:     21000000          Rx-bps:            0
  ######################## NIC statistics for port 0  ########################
  Rx-pps:     18000000          Rx-bps:            0
  ######################## NIC statistics for port 0  ########################
  Rx-pps:     19000000          Rx-bps:            0
";
        assert_eq!(parse(out), vec![19.0, 21.0]);
        assert!(parse("no statistics").is_empty());
    }
}
