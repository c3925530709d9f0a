//! What a forwarded frame must look like for each forwarding method: the generator checks
//! (a sample of) the frames the workers transmit, so a run that moved packets also proves it
//! moved them correctly.

use std::net::Ipv4Addr;

use crate::topo::{
    is_real_ip, is_real_mac, Method, NAT_RPORT, P0_MAC, P1_IP, P1_MAC, ROUTER_MAC, VIP_NAT, VPORT,
};

fn ipv4_at(f: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(f[at], f[at + 1], f[at + 2], f[at + 3])
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

/// Whether the IPv4 header at `at` (20 bytes, no options) has a valid checksum.
fn ip_checksum_ok(f: &[u8], at: usize) -> bool {
    let mut s: u32 = f[at..at + 20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

/// Whether `f` is a correct transmission, on the inside port, of a client's packet to the
/// service of `method` (source 10.0.0.0/8, destination port 80): for NAT the destination is
/// rewritten to a real server:8080; for DR only the MACs and TTL change; for TUN the packet is
/// wrapped in an outer IPv4 header from the director to a real server. MACs: from the inside
/// port to a real server. For [`Method::NatReply`], a real server's reply as the director
/// sends it to the client: on the outside port to the router, from the VIP, port 80.
pub fn forwarded_ok(method: Method, f: &[u8]) -> bool {
    if method == Method::NatReply {
        return f.len() >= 54
            && f[0..6] == ROUTER_MAC
            && f[6..12] == P0_MAC
            && be16(f, 12) == 0x0800
            && f[14] == 0x45
            && f[23] == 6
            && ip_checksum_ok(f, 14)
            && ipv4_at(f, 26) == VIP_NAT
            && be16(f, 34) == VPORT
            && f[30] == 10;
    }
    if f.len() < 54 || !is_real_mac(&f[0..6]) || f[6..12] != P1_MAC || be16(f, 12) != 0x0800 {
        return false;
    }
    match method {
        Method::Nat => {
            f[14] == 0x45
                && f[23] == 6
                && ip_checksum_ok(f, 14)
                && f[26] == 10
                && is_real_ip(ipv4_at(f, 30))
                && be16(f, 36) == NAT_RPORT
        }
        Method::Dr => {
            f[14] == 0x45
                && f[22] == 63
                && f[23] == 6
                && ip_checksum_ok(f, 14)
                && f[26] == 10
                && ipv4_at(f, 30) == method.vip()
                && be16(f, 36) == VPORT
        }
        Method::Tun => {
            f.len() >= 74
                && f[14] == 0x45
                && f[23] == 4
                && ip_checksum_ok(f, 14)
                && ipv4_at(f, 26) == P1_IP
                && is_real_ip(ipv4_at(f, 30))
                && usize::from(be16(f, 16)) == f.len() - 14
                && f[34] == 0x45
                && f[46] == 10
                && ipv4_at(f, 50) == method.vip()
                && be16(f, 56) == VPORT
        }
        Method::NatReply => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Segment, Template};
    use crate::topo;
    use director::dataplane::conn::Timeouts;
    use director::dataplane::packet::VecPacket;
    use director::dataplane::pipeline::{Action, Ctx, Pipeline, PipelineConfig};
    use director::metrics::WorkerCounters;
    use std::sync::Arc;

    /// The director's own pipeline (in memory) forwards a SYN and an ACK of each method; the
    /// check accepts its output and refuses the input and damaged copies.
    #[test]
    fn accepts_what_the_pipeline_forwards_and_nothing_else() {
        let snap = topo::snapshot(1).unwrap();
        let net = topo::net_state().unwrap();
        let neigh = topo::neighbours(&net).unwrap();
        let ctx = Ctx {
            snap: &snap,
            net: &net,
            neigh: &neigh,
            now_s: 1,
            now_ns: 1_000_000_000,
        };
        let mut p: Pipeline<VecPacket> = Pipeline::new(
            &PipelineConfig::new(0, 1, 64),
            Timeouts::default(),
            Arc::new(WorkerCounters::new(0)),
            (),
            None,
        );
        let client = Ipv4Addr::new(10, 0, 3, 4);
        for method in [Method::Nat, Method::Dr, Method::Tun] {
            for (seg, size) in [(Segment::Syn, 64), (Segment::Ack, 1500)] {
                let input = Template::new(method.vip(), size, seg)
                    .unwrap()
                    .frame(client, 5555);
                assert!(!forwarded_ok(method, &input), "{method:?}: input accepted");
                let out = match p.process(VecPacket::from_frame(&input), 0, &ctx, false) {
                    Action::Tx(1, out) => out,
                    other => panic!("{method:?} {seg:?}: {other:?}"),
                };
                let f = director::dataplane::packet::PacketBuf::data(&out).to_vec();
                assert!(forwarded_ok(method, &f), "{method:?} {seg:?} refused");
                for (i, other) in [Method::Nat, Method::Dr, Method::Tun].iter().enumerate() {
                    assert_eq!(forwarded_ok(*other, &f), *other == method, "{i}");
                }
                let mut bad = f.clone();
                bad[24] ^= 1; // IP checksum
                assert!(!forwarded_ok(method, &bad));
                let mut bad = f.clone();
                bad[0] = 0xff; // not a real server's MAC
                assert!(!forwarded_ok(method, &bad));
            }
        }
        // A real server's reply to a NAT connection: the client's frame as forwarded above,
        // answered from the real server it was sent to.
        let net = topo::net_state_routed().unwrap();
        let neigh = topo::neighbours(&net).unwrap();
        let ctx = Ctx {
            net: &net,
            neigh: &neigh,
            ..ctx
        };
        let syn = Template::new(Method::Nat.vip(), 64, Segment::Syn).unwrap();
        let Action::Tx(1, fwd) = p.process(
            VecPacket::from_frame(&syn.frame(client, 7777)),
            0,
            &ctx,
            false,
        ) else {
            panic!("the SYN was not forwarded");
        };
        let fwd = director::dataplane::packet::PacketBuf::data(&fwd).to_vec();
        let real = (0..topo::N_REAL)
            .find(|&r| ipv4_at(&fwd, 30) == topo::real_ip(r))
            .expect("sent to a real server");
        let input = Template::reply(real, 512).unwrap().frame(client, 7777);
        assert!(!forwarded_ok(Method::NatReply, &input), "input accepted");
        let out = match p.process(VecPacket::from_frame(&input), 1, &ctx, false) {
            Action::Tx(0, out) => out,
            other => panic!("reply: {other:?}"),
        };
        let f = director::dataplane::packet::PacketBuf::data(&out).to_vec();
        assert!(forwarded_ok(Method::NatReply, &f), "reply refused");
        for m in [Method::Nat, Method::Dr, Method::Tun] {
            assert!(!forwarded_ok(m, &f), "{m:?}");
        }
        let mut bad = f.clone();
        bad[24] ^= 1;
        assert!(!forwarded_ok(Method::NatReply, &bad));
    }
}
