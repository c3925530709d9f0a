//! The IPVS rate estimator and `-Z` zero points against the kernel's arithmetic.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use director::metrics::{
    DestStats, EstimatorThread, Exporter, IpvsStats, PortStatsView, RateEstimator, Rates,
    RealServerStatsView, ServiceStatsView, StatTotals, StatsKey, StatsSource, StatsTracker,
    WorkerCounters,
};
use director::model::{ForwardMethod, Protocol, ServiceKey};
use proptest::prelude::*;

fn svc(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "203.0.113.200".parse().expect("ip"),
        port,
    }
}

/// Writes one tick's traffic into worker slots 0 and 1 (split unevenly).
fn write(stats: &DestStats, conns: u64, inpkts: u64, outpkts: u64, inbytes: u64, outbytes: u64) {
    let (a, b) = (stats.slot(0), stats.slot(1));
    a.conns.add(conns / 3);
    b.conns.add(conns - conns / 3);
    a.inpkts.add(inpkts);
    b.outpkts.add(outpkts);
    a.inbytes.add(inbytes / 2);
    b.inbytes.add(inbytes - inbytes / 2);
    b.outbytes.add(outbytes);
}

#[test]
fn tracker_rates_match_kernel_figures_over_ticks() {
    let stats = Arc::new(DestStats::new(2));
    let key = StatsKey::Service(svc(80));
    let mut t = StatsTracker::new();
    t.register(key, Arc::clone(&stats));

    // (conns, inpkts, outpkts, inbytes, outbytes) per 2 s tick, and the decoded rates the
    // kernel reports after each tick: avg += ((delta << 9|4) - avg) >> 2, read back as
    // (avg + 0x1FF) >> 10 and (avg + 0xF) >> 5.
    let ticks: [([u64; 5], Rates); 4] = [
        (
            [100, 1000, 800, 1_000_000, 50_000],
            Rates {
                cps: 12,
                inpps: 125,
                outpps: 100,
                inbps: 125_000,
                outbps: 6250,
            },
        ),
        (
            [100, 1000, 800, 1_000_000, 50_000],
            Rates {
                cps: 22,
                inpps: 219,
                outpps: 175,
                inbps: 218_750,
                outbps: 10_937,
            },
        ),
        (
            [0, 0, 0, 0, 0],
            Rates {
                cps: 16,
                inpps: 164,
                outpps: 131,
                inbps: 164_062,
                outbps: 8203,
            },
        ),
        (
            [300, 3000, 10, 7, 0],
            Rates {
                cps: 50,
                inpps: 498,
                outpps: 100,
                inbps: 123_048,
                outbps: 6152,
            },
        ),
    ];
    let mut total = StatTotals::default();
    for (d, want) in ticks {
        write(&stats, d[0], d[1], d[2], d[3], d[4]);
        total = total.plus(&StatTotals {
            conns: d[0],
            inpkts: d[1],
            outpkts: d[2],
            inbytes: d[3],
            outbytes: d[4],
        });
        t.tick();
        assert_eq!(
            t.view(&key),
            Some(IpvsStats {
                counters: total,
                rates: want
            })
        );
    }
    assert_eq!(t.raw(&key), Some(total));
}

#[test]
fn zero_resets_ipvsadm_view_but_not_raw_counters() {
    let s80 = Arc::new(DestStats::new(2));
    let d80 = Arc::new(DestStats::new(2));
    let s81 = Arc::new(DestStats::new(2));
    let rs = "198.51.100.100:80".parse().expect("addr");
    let (k80, kd80, k81) = (
        StatsKey::Service(svc(80)),
        StatsKey::Dest(svc(80), rs),
        StatsKey::Service(svc(81)),
    );
    let mut t = StatsTracker::new();
    t.register(k80, Arc::clone(&s80));
    t.register(kd80, Arc::clone(&d80));
    t.register(k81, Arc::clone(&s81));
    for s in [&s80, &d80, &s81] {
        write(s, 10, 20, 30, 4000, 5000);
    }
    t.tick();

    // -Z -t 203.0.113.200:80: that service and its real server only.
    t.zero_service(&svc(80));
    assert_eq!(t.view(&k80), Some(IpvsStats::default()));
    assert_eq!(t.view(&kd80), Some(IpvsStats::default()));
    let other = t.view(&k81).expect("registered");
    assert_eq!(other.counters.conns, 10);
    assert_eq!(other.rates.cps, 1); // (10 << 9 >> 2 = 1280 + 511) >> 10

    // New traffic after -Z: ipvsadm counts from the zero point, raw keeps the full sum,
    // and the first rate after -Z only sees the post-zero delta.
    write(&s80, 2, 4, 6, 800, 1000);
    t.tick();
    let v = t.view(&k80).expect("registered");
    assert_eq!(
        v.counters,
        StatTotals {
            conns: 2,
            inpkts: 4,
            outpkts: 6,
            inbytes: 800,
            outbytes: 1000
        }
    );
    assert_eq!(
        v.rates,
        Rates {
            cps: 0,
            inpps: 0,
            outpps: 1,
            inbps: 100,
            outbps: 125
        }
    );
    assert_eq!(
        t.raw(&k80),
        Some(StatTotals {
            conns: 12,
            inpkts: 24,
            outpkts: 36,
            inbytes: 4800,
            outbytes: 6000
        })
    );

    // Prometheus reads the raw block: the -Z is invisible there.
    let exporter = Exporter::new(
        Arc::new(OneService {
            stats: Arc::clone(&s80),
        }),
        &[],
    )
    .expect("exporter");
    let text = exporter.render().expect("render");
    let line = "director_service_connections_total{service=\"TCP/203.0.113.200:80\"} 12";
    assert!(
        text.lines().any(|l| l == line),
        "{line} missing in:\n{text}"
    );

    t.zero_all();
    assert_eq!(t.view(&k81), Some(IpvsStats::default()));
    assert!(t.unregister(&kd80));
    assert!(!t.unregister(&kd80));
    t.unregister_service(&svc(80));
    assert_eq!(t.len(), 1);
}

struct OneService {
    stats: Arc<DestStats>,
}

impl StatsSource for OneService {
    fn services(&self) -> Vec<ServiceStatsView> {
        vec![ServiceStatsView {
            key: svc(80),
            scheduler: "wlc".into(),
            totals: self.stats.sum(),
            real_servers: vec![RealServerStatsView {
                addr: "198.51.100.100:80".parse().expect("addr"),
                forward: ForwardMethod::Masq,
                weight: 1,
                active: 0,
                inactive: 0,
                persistent: 0,
                overloaded: false,
                totals: self.stats.sum(),
            }],
        }]
    }
    fn workers(&self) -> Vec<Arc<WorkerCounters>> {
        Vec::new()
    }
    fn ports(&self) -> Vec<PortStatsView> {
        Vec::new()
    }
}

#[test]
fn estimator_thread_ticks_and_stops() {
    let stats = Arc::new(DestStats::new(1));
    stats.slot(0).conns.add(1000);
    let tracker = Arc::new(Mutex::new(StatsTracker::new()));
    let key = StatsKey::Total;
    tracker
        .lock()
        .expect("lock")
        .register(key, Arc::clone(&stats));
    stats.slot(0).conns.add(1000);
    let thread =
        EstimatorThread::spawn(Arc::clone(&tracker), Duration::from_millis(5)).expect("spawn");
    // Wait (not a timed assertion: the deadline only bounds a hang) for ticks to happen.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (ticks, rates) = loop {
        let t = tracker.lock().expect("lock");
        let seen = (t.ticks(), t.view(&key).expect("registered").rates);
        drop(t);
        if seen.0 >= 3 || Instant::now() > deadline {
            break seen;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(ticks >= 3, "estimator thread did not tick");
    // The thread saw a delta of 1000 conns on its first tick and 0 afterwards.
    let mut want = RateEstimator::new(StatTotals::default());
    want.update(&StatTotals {
        conns: 1000,
        ..StatTotals::default()
    });
    for _ in 1..ticks {
        want.update(&StatTotals {
            conns: 1000,
            ..StatTotals::default()
        });
    }
    assert_eq!(rates, want.rates());
    assert!(
        rates.cps < 125,
        "the rate decays after the first tick (125 cps)"
    );
    thread.stop();
    // Stopped and joined: no tick happens any more.
    let before = tracker.lock().expect("lock").ticks();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(tracker.lock().expect("lock").ticks(), before);
}

/// Reference model: floor division by 4 in i128 (no shifts), kernel read-back rounding.
fn reference(deltas: &[[u64; 5]]) -> Rates {
    let mut avg = [0i128; 5];
    let scale = [512i128, 512, 512, 16, 16];
    for d in deltas {
        for i in 0..5 {
            let rate = i128::from(d[i]) * scale[i];
            avg[i] += (rate - avg[i]).div_euclid(4);
        }
    }
    let pkt = |a: i128| ((a + 511) / 1024) as u64;
    let byt = |a: i128| ((a + 15) / 32) as u64;
    Rates {
        cps: pkt(avg[0]),
        inpps: pkt(avg[1]),
        outpps: pkt(avg[2]),
        inbps: byt(avg[3]),
        outbps: byt(avg[4]),
    }
}

proptest! {
    #[test]
    fn estimator_matches_reference_model(
        deltas in prop::collection::vec(prop::array::uniform5(0u64..(1 << 40)), 1..40)
    ) {
        let mut e = RateEstimator::new(StatTotals::default());
        let mut now = StatTotals::default();
        for d in &deltas {
            now = now.plus(&StatTotals {
                conns: d[0], inpkts: d[1], outpkts: d[2], inbytes: d[3], outbytes: d[4],
            });
            e.update(&now);
        }
        prop_assert_eq!(e.rates(), reference(&deltas));
    }
}
