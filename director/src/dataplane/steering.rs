//! Which worker owns a flow.
//!
//! Both directions of a flow must meet the same connection table. In VS/NAT the reply
//! (real server -> client) carries a different 5-tuple than the request (client -> VIP), so a
//! NIC's RSS hash (even a symmetric one) sends the two halves to different queues. The one
//! endpoint both halves share is the *client's* (address, port): it is the source of inbound
//! packets and the destination of replies. The owner of a flow is therefore a hash of the client
//! endpoint; a worker that receives a packet it does not own hands the mbuf to the owner through
//! the owner's redirect ring (see `worker`). This needs nothing from the NIC; with RSS the
//! inbound half usually lands on a random queue and roughly `1 - 1/n` of packets take one
//! ring hop, which is the price of NIC independence (counted as redirects).

use std::net::IpAddr;

/// The worker (0..n_workers) that owns flows of this client endpoint.
#[inline]
pub fn owner(client: IpAddr, client_port: u16, n_workers: usize) -> usize {
    if n_workers <= 1 {
        return 0;
    }
    let a: u64 = match client {
        IpAddr::V4(v4) => u32::from(v4) as u64,
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let hi = u64::from_be_bytes(o[..8].try_into().unwrap_or([0; 8]));
            let lo = u64::from_be_bytes(o[8..].try_into().unwrap_or([0; 8]));
            hi ^ lo.rotate_left(29)
        }
    };
    let h = (a << 16 | client_port as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // Multiply-high maps the 32 best-mixed bits onto 0..n without a division.
    (((h >> 32) * n_workers as u64) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn single_worker_owns_everything() {
        assert_eq!(owner(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1234, 1), 0);
    }

    #[test]
    fn owners_are_in_range_and_spread() {
        let mut counts = [0usize; 4];
        for i in 0..4000u32 {
            let a = IpAddr::V4(Ipv4Addr::from(0xC000_0200 + (i % 250)));
            let w = owner(a, 1024 + (i as u16), 4);
            counts[w] += 1;
        }
        for c in counts {
            assert!(c > 700 && c < 1300, "{counts:?}");
        }
    }

    #[test]
    fn same_client_same_owner() {
        let a = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(owner(a, 40000, 2), owner(a, 40000, 2));
    }
}
