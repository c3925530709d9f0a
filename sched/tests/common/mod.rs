//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use sched::{build, DestLoad, DestSpec, FlowInfo, SchedParams, Scheduler};

/// Destination "192.0.2.<id>:80" with weight `w`.
pub fn spec(id: u8, w: u32) -> DestSpec {
    DestSpec {
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, id)),
        port: 80,
        weight: w,
        u_threshold: 0,
        l_threshold: 0,
    }
}

/// A service's configuration as control keeps it: specs newest first + their live loads.
#[derive(Clone, Default)]
pub struct Service {
    pub specs: Vec<DestSpec>,
    pub loads: Vec<Arc<DestLoad>>,
}

impl Service {
    pub fn with(weights: &[(u8, u32)]) -> Self {
        let mut s = Service::default();
        for &(id, w) in weights.iter().rev() {
            s.add(id, w);
        }
        s
    }
    /// ipvsadm -a: new destination at the head.
    pub fn add(&mut self, id: u8, w: u32) {
        self.specs.insert(0, spec(id, w));
        self.loads.insert(0, Arc::new(DestLoad::new()));
    }
    /// ipvsadm -e: change a weight.
    pub fn edit(&mut self, id: u8, w: u32) {
        let i = self.index(id);
        self.specs[i].weight = w;
    }
    /// ipvsadm -d.
    pub fn del(&mut self, id: u8) {
        let i = self.index(id);
        self.specs.remove(i);
        self.loads.remove(i);
    }
    pub fn index(&self, id: u8) -> usize {
        self.specs
            .iter()
            .position(|s| s.addr == spec(id, 0).addr)
            .expect("known dest")
    }
    pub fn id(&self, i: usize) -> u8 {
        match self.specs[i].addr {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(_) => unreachable!(),
        }
    }
    pub fn load(&self, id: u8) -> &DestLoad {
        &self.loads[self.index(id)]
    }
    pub fn build(&self, name: &str, prev: Option<&dyn Scheduler>) -> Box<dyn Scheduler> {
        let p = SchedParams {
            name: name.into(),
            ..Default::default()
        };
        build(&p, &self.specs, &self.loads, prev).expect("build")
    }
    pub fn build_with(&self, p: &SchedParams, prev: Option<&dyn Scheduler>) -> Box<dyn Scheduler> {
        build(p, &self.specs, &self.loads, prev).expect("build")
    }
    /// `n` picks as destination ids (0 = no destination).
    pub fn picks(&self, s: &dyn Scheduler, n: usize) -> Vec<u8> {
        (0..n)
            .map(|k| s.schedule(&flow(k as u32)).map_or(0, |i| self.id(i)))
            .collect()
    }
}

/// A flow from client 198.51.100.x / 203.0.113.y varying with `k`, to VIP 192.0.2.200:80.
pub fn flow(k: u32) -> FlowInfo {
    FlowInfo {
        saddr: IpAddr::V4(Ipv4Addr::from(
            0xC633_6400u32.wrapping_add(k.wrapping_mul(2654435761)),
        )),
        sport: (1024 + k % 60000) as u16,
        daddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)),
        dport: 80,
    }
}

/// A flow from a given client address.
pub fn flow_from(saddr: IpAddr, sport: u16) -> FlowInfo {
    FlowInfo {
        saddr,
        sport,
        daddr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)),
        dport: 80,
    }
}

/// Ids as a compact string, e.g. [3,2,1] -> "CBA" with 1 = 'A'; 0 -> '-'.
pub fn letters(ids: &[u8]) -> String {
    ids.iter()
        .map(|&i| if i == 0 { '-' } else { (b'A' + i - 1) as char })
        .collect()
}
