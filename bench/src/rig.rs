//! The DPDK side of a bench process: EAL, one mbuf pool, two ring-backed ports and the
//! workers' redirect rings, made once per process.
//!
//! Port 0 ("outside") and port 1 ("inside") are `rte_eth_from_rings` ports with one rx and
//! one tx queue per worker. The generator is the wire: it enqueues on port 0's rx rings and
//! dequeues from every tx ring. Ports keep DPDK ids 0 and 1, the pipeline's port numbers.

use std::sync::Arc;

use director::dpdk::{
    eal, mempool::DEFAULT_DATA_ROOM, DpdkError, MbufBurst, MbufRing, Mempool, Port, PortConf,
    RingConsumer, BURST,
};

use crate::frame::{fill_payload, MAX_SIZE};

/// Slots of each rx ring (a NIC's rx descriptor ring).
pub const RX_RING: u32 = 1024;
/// Slots of each tx ring (room for the generator to drain late without tx drops).
pub const TX_RING: u32 = 4096;
/// Slots of each worker redirect ring.
pub const REDIRECT_RING: u32 = 4096;

/// How to bring DPDK up.
#[derive(Debug, Clone)]
pub struct RigConfig {
    /// Number of workers (queues per port).
    pub workers: usize,
    /// Use hugepages (`--in-memory`, needs hugetlbfs mounted) instead of `--no-huge`.
    pub hugepages: bool,
    /// EAL memory, MB (`-m`).
    pub mem_mb: u32,
    /// More EAL arguments (e.g. `-d DIR` to load drivers from a directory).
    pub extra_eal: Vec<String>,
}

/// The ports, rings and pool of the process.
pub struct Rig {
    /// The one mbuf pool (generator allocations, worker rx queues).
    pub pool: Mempool,
    /// Port 0 (outside) and port 1 (inside).
    pub ports: Vec<Port>,
    /// `[port][queue]`: where the generator enqueues "received" frames.
    pub rx: Vec<Vec<Arc<MbufRing>>>,
    /// Every port's tx rings (port 0's queues, then port 1's): where the generator takes
    /// transmitted frames.
    pub tx: Vec<RingConsumer>,
    /// One redirect ring per worker.
    pub redirect: Vec<Arc<MbufRing>>,
    /// Workers (= queues per port).
    pub workers: usize,
}

/// The EAL arguments for `cfg`.
pub fn eal_args(cfg: &RigConfig) -> Vec<String> {
    let mut a: Vec<String> = vec!["bench".into(), "-l".into(), "0".into()];
    if cfg.hugepages {
        a.push("--in-memory".into());
    } else {
        a.push("--no-huge".into());
        a.push("--no-shconf".into());
    }
    a.extend([
        "-m".to_string(),
        cfg.mem_mb.to_string(),
        "--no-pci".into(),
        "--no-telemetry".into(),
        "--log-level=lib.eal:warning".into(),
    ]);
    a.extend(cfg.extra_eal.iter().cloned());
    a
}

impl Rig {
    /// Initialises the EAL and builds the rig (once per process).
    pub fn new(cfg: &RigConfig) -> Result<Rig, String> {
        let err = |what: &str, e: DpdkError| format!("{what}: {e}");
        if cfg.workers == 0 {
            return Err("at least one worker".into());
        }
        eal::init(&eal_args(cfg)).map_err(|e| err("EAL init", e))?;
        let n_q = cfg.workers;
        // Every ring full at once, plus bursts in flight and per-lcore caches.
        let n_mbufs = (2 * n_q as u32 * (RX_RING + TX_RING) + n_q as u32 * REDIRECT_RING + 8192)
            .next_power_of_two()
            - 1;
        let pool = Mempool::new("bench_pool", n_mbufs, 256, DEFAULT_DATA_ROOM)
            .map_err(|e| err("mempool", e))?;
        prefill(&pool)?;
        let mut ports = Vec::new();
        let mut rx = Vec::new();
        let mut tx = Vec::new();
        for (p, name) in ["out", "in"].into_iter().enumerate() {
            let ring = |kind: &str, q: usize, size: u32| {
                MbufRing::new(&format!("b_{name}_{kind}{q}"), size)
                    .map(Arc::new)
                    .map_err(|e| err("ring", e))
            };
            let rxr = (0..n_q)
                .map(|q| ring("rx", q, RX_RING))
                .collect::<Result<Vec<_>, _>>()?;
            let txr = (0..n_q)
                .map(|q| ring("tx", q, TX_RING))
                .collect::<Result<Vec<_>, _>>()?;
            let mut port = Port::from_rings(&format!("b_{name}"), &rxr, &txr)
                .map_err(|e| err("ring port", e))?;
            if usize::from(port.id()) != p {
                return Err(format!(
                    "port {name} got DPDK id {} (another port exists in this process?)",
                    port.id()
                ));
            }
            port.configure(n_q as u16, n_q as u16, &PortConf::default())
                .map_err(|e| err("configure", e))?;
            for q in 0..n_q as u16 {
                port.setup_rx_queue(q, RX_RING as u16, &pool)
                    .map_err(|e| err("rx queue", e))?;
                port.setup_tx_queue(q, TX_RING as u16)
                    .map_err(|e| err("tx queue", e))?;
            }
            port.start().map_err(|e| err("start", e))?;
            for r in &txr {
                tx.push(r.consumer().map_err(|e| err("tx ring consumer", e))?);
            }
            rx.push(rxr);
            ports.push(port);
        }
        let redirect = (0..n_q)
            .map(|w| {
                MbufRing::new(&format!("b_redirect{w}"), REDIRECT_RING)
                    .map(Arc::new)
                    .map_err(|e| err("redirect ring", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Rig {
            pool,
            ports,
            rx,
            tx,
            redirect,
            workers: n_q,
        })
    }

    /// Frees whatever is left in the rings: transmitted frames, redirects and, when no
    /// device under test holds the queues, frames the generator left on the rx rings (they
    /// would otherwise reach the next phase's workers).
    pub fn drain(&mut self) {
        let mut b = MbufBurst::new();
        for port in self.ports.iter_mut() {
            for q in 0..port.n_rx_queues() {
                // Busy while a device under test polls it: it will take the frames.
                if let Ok(mut rxq) = port.rx_queue(q) {
                    while rxq.rx_burst(&mut b) > 0 {
                        b.clear();
                    }
                }
            }
        }
        for c in self.tx.iter_mut() {
            while c.dequeue_burst(&mut b) > 0 {
                b.clear();
            }
        }
        for r in self.redirect.iter() {
            if let Ok(mut c) = r.consumer() {
                while c.dequeue_burst(&mut b) > 0 {
                    b.clear();
                }
            }
        }
    }
}

/// Writes the payload pattern into every mbuf of the pool once (see `frame`).
fn prefill(pool: &Mempool) -> Result<(), String> {
    let mut held: Vec<MbufBurst> = Vec::new();
    loop {
        let mut b = MbufBurst::new();
        if b.alloc_from(pool, BURST).is_err() {
            // Fewer than a burst left: take them one by one.
            while let Some(m) = director::dpdk::Mbuf::alloc(pool) {
                if b.push(m).is_err() {
                    break;
                }
            }
            if b.is_empty() {
                break;
            }
        }
        for m in b.as_mut_slice() {
            let buf = m
                .append(MAX_SIZE)
                .map_err(|e| format!("mbuf too small for {MAX_SIZE}-byte frames: {e}"))?;
            fill_payload(buf);
        }
        held.push(b);
    }
    // Dropping the bursts frees every mbuf.
    Ok(())
}
