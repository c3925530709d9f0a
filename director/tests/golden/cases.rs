//! Reads `golden/cases.txt` (written by `golden/gen.py` with scapy) and applies each case's
//! transform, for the `wire_*` integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use director::wire::ethernet::L2;
use director::wire::{
    arp_build, dr, icmp_build, icmp_nat, nat, parse_frame, tcp_reset, tun, DropReason, MacAddr,
    PacketMeta,
};

/// One golden case: an operation, its parameters, the input frame and scapy's expected output.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub op: String,
    pub params: BTreeMap<String, String>,
    pub input: Vec<u8>,
    pub expected: Vec<u8>,
}

pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

pub fn load() -> Vec<Case> {
    let path = golden_dir().join("cases.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    parse_cases(&text)
}

fn hex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

pub fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut current: Option<Case> = None;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            cases.extend(current.take());
            continue;
        }
        let (key, value) = line.split_once(' ').expect("key value");
        match key {
            "case" => {
                current = Some(Case {
                    name: value.to_string(),
                    op: String::new(),
                    params: BTreeMap::new(),
                    input: Vec::new(),
                    expected: Vec::new(),
                })
            }
            _ => {
                let case = current.as_mut().expect("line outside a case");
                match key {
                    "op" => case.op = value.to_string(),
                    "in" => case.input = hex(value),
                    "out" => case.expected = hex(value),
                    _ => {
                        case.params.insert(key.to_string(), value.to_string());
                    }
                }
            }
        }
    }
    cases.extend(current.take());
    cases
}

impl Case {
    fn param(&self, key: &str) -> &str {
        self.params
            .get(key)
            .unwrap_or_else(|| panic!("{}: missing {key}", self.name))
    }
    fn ip(&self, key: &str) -> Ipv4Addr {
        self.param(key).parse().expect("IPv4 address")
    }
    fn addr(&self, key: &str) -> IpAddr {
        IpAddr::V4(self.ip(key))
    }
    fn num(&self, key: &str) -> u16 {
        self.param(key).parse().expect("number")
    }
    fn mac(&self, key: &str) -> MacAddr {
        let mut mac = [0u8; 6];
        for (i, part) in self.param(key).split(':').enumerate() {
            mac[i] = u8::from_str_radix(part, 16).expect("mac");
        }
        MacAddr(mac)
    }
    fn vlan(&self, key: &str) -> Option<u16> {
        match self.param(key) {
            "none" => None,
            v => Some(v.parse().expect("tci")),
        }
    }

    /// Whether the operation transforms or quotes an input frame (ARP request and gratuitous
    /// ARP are built from parameters alone).
    pub fn has_input(&self) -> bool {
        !matches!(self.op.as_str(), "arp_request" | "garp")
    }

    /// Applies the case's operation to `input` (a copy; `input` may be any bytes).
    pub fn run_on(&self, input: &[u8]) -> Result<Vec<u8>, DropReason> {
        match self.op.as_str() {
            "arp_request" => {
                let mut out = [0u8; 64];
                let n = arp_build::request(
                    &mut out,
                    self.mac("mac"),
                    self.vlan("vlan"),
                    self.ip("sender"),
                    self.ip("target"),
                )?;
                return Ok(out[..n].to_vec());
            }
            "garp" => {
                let mut out = [0u8; 64];
                let n = arp_build::gratuitous(
                    &mut out,
                    self.mac("mac"),
                    self.vlan("vlan"),
                    self.ip("ip"),
                )?;
                return Ok(out[..n].to_vec());
            }
            _ => {}
        }
        let meta = parse_frame(input)?;
        self.apply(input, &meta)
    }

    /// Applies the case's operation to `input` with a given `meta` (which may describe
    /// another frame: the transforms must then fail cleanly, never panic).
    pub fn apply(&self, input: &[u8], meta: &PacketMeta) -> Result<Vec<u8>, DropReason> {
        assert!(self.has_input(), "{}: no input frame", self.name);
        let meta = *meta;
        let mut frame = input.to_vec();
        match self.op.as_str() {
            "dnat" => nat::dnat(&mut frame, &meta, self.addr("addr"), self.num("port"))?,
            "snat" => nat::snat(&mut frame, &meta, self.addr("addr"), self.num("port"))?,
            "dr" => dr::forward(&mut frame, &meta, self.mac("src_mac"), self.mac("dst_mac"))?,
            "tun" => {
                let mut buf = vec![0xab; tun::OUTER_HEADER_LEN];
                buf.extend_from_slice(input);
                let ident = self.num("ident");
                tun::encap(&mut buf, &meta, self.ip("src"), self.ip("dst"), ident)?;
                frame = buf;
            }
            "echo_reply" => icmp_build::echo_reply(&mut frame, &meta)?,
            "dest_unreachable" | "time_exceeded" => {
                let l2 = L2 {
                    src: self.mac("l2_src"),
                    dst: self.mac("l2_dst"),
                    vlan_tci: self.vlan("vlan"),
                };
                let offending = input.get(usize::from(meta.l3_offset)..).unwrap_or(&[]);
                let mut out = [0u8; icmp_build::MAX_ERROR_FRAME_LEN];
                let code = self.num("code") as u8;
                let n = if self.op == "time_exceeded" {
                    icmp_build::time_exceeded(&mut out, &l2, self.ip("src_ip"), offending, code)?
                } else {
                    let mtu = self.num("mtu");
                    let src = self.ip("src_ip");
                    icmp_build::dest_unreachable(&mut out, &l2, src, offending, code, mtu)?
                };
                frame = out[..n].to_vec();
            }
            "tcp_reset" => {
                let l2 = L2 {
                    src: self.mac("l2_src"),
                    dst: self.mac("l2_dst"),
                    vlan_tci: self.vlan("vlan"),
                };
                let segment = input.get(usize::from(meta.l3_offset)..).unwrap_or(&[]);
                let mut out = [0u8; tcp_reset::MAX_RESET_FRAME_LEN];
                let n = tcp_reset::build(&mut out, &l2, segment)?;
                frame = out[..n].to_vec();
            }
            "icmp_dnat" => icmp_nat::dnat(&mut frame, &meta, self.addr("addr"), self.num("port"))?,
            "icmp_snat" => icmp_nat::snat(&mut frame, &meta, self.addr("addr"), self.num("port"))?,
            "arp_reply" => arp_build::reply_in_place(&mut frame, &meta, self.mac("mac"))?,
            other => panic!("{}: unknown op {other}", self.name),
        }
        Ok(frame)
    }
}

/// First differing offset and both hex dumps, for failure messages.
pub fn describe_diff(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let hexs = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "first difference at byte {at} (lengths {} vs {})\n got: {}\nwant: {}",
        got.len(),
        want.len(),
        hexs(got),
        hexs(want)
    )
}
