#!/usr/bin/env python3
"""Offline pcap replay check for the director (independent of the code under test: scapy).

  replay.py gen DIR    writes DIR/in.pcap, DIR/director.toml, DIR/rules
  replay.py check DIR  reads DIR/out.pcap and checks every flow; exit 1 on any mismatch

Topology (one DPDK pcap port carrying both sides):
  client 203.0.113.10 (02:00:00:00:00:0c), director 203.0.113.1 + 198.51.100.254,
  NAT TCP 203.0.113.200:80 -> 198.51.100.100:8080, NAT UDP 203.0.113.200:53 -> 198.51.100.100:5353,
  DR  TCP 203.0.113.201:80 -> 198.51.100.101, TUN TCP 203.0.113.202:80 -> 198.51.100.102.
"""
import sys
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw, rdpcap, wrpcap  # noqa: E402

DIR_MAC = "02:00:00:00:00:d1"  # overridden: net_pcap's MAC is read from the output
CLIENT_MAC = "02:00:00:00:00:0c"
RS_MAC = {"198.51.100.100": "02:00:00:00:01:00", "198.51.100.101": "02:00:00:00:01:01",
          "198.51.100.102": "02:00:00:00:01:02"}
CLIENT = "203.0.113.10"


def frames():
    """The input capture, in order."""
    out = []
    bcast = "ff:ff:ff:ff:ff:ff"
    # ARP for the NAT VIP from the client.
    out.append(Ether(src=CLIENT_MAC, dst=bcast) / ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT,
                                                       pdst="203.0.113.200"))
    # NAT TCP: SYN, SYN-ACK from the RS, ACK + data, reply data.
    c = Ether(src=CLIENT_MAC, dst=DIR_MAC)
    r = Ether(src=RS_MAC["198.51.100.100"], dst=DIR_MAC)
    out.append(c / IP(src=CLIENT, dst="203.0.113.200", ttl=64) / TCP(sport=40000, dport=80, flags="S", seq=1000))
    out.append(r / IP(src="198.51.100.100", dst=CLIENT, ttl=64) / TCP(sport=8080, dport=40000, flags="SA", seq=5000, ack=1001))
    out.append(c / IP(src=CLIENT, dst="203.0.113.200", ttl=64) / TCP(sport=40000, dport=80, flags="PA", seq=1001, ack=5001) / Raw(b"GET / HTTP/1.0\r\n\r\n"))
    out.append(r / IP(src="198.51.100.100", dst=CLIENT, ttl=64) / TCP(sport=8080, dport=40000, flags="PA", seq=5001, ack=1019) / Raw(b"HTTP/1.0 200 OK\r\n\r\nhello"))
    # NAT UDP with checksum, and one with checksum 0.
    out.append(c / IP(src=CLIENT, dst="203.0.113.200", ttl=64) / UDP(sport=5555, dport=53) / Raw(b"query-1"))
    u = c / IP(src=CLIENT, dst="203.0.113.200", ttl=64) / UDP(sport=5556, dport=53, chksum=0) / Raw(b"query-2")
    out.append(u)
    out.append(Ether(src=RS_MAC["198.51.100.100"], dst=DIR_MAC) / IP(src="198.51.100.100", dst=CLIENT, ttl=64) / UDP(sport=5353, dport=5555) / Raw(b"answer-1"))
    # DR and TUN: SYN + ACK each.
    for vip, sport in (("203.0.113.201", 41000), ("203.0.113.202", 42000)):
        out.append(c / IP(src=CLIENT, dst=vip, ttl=64, tos=0x2b, flags="DF") / TCP(sport=sport, dport=80, flags="S", seq=7))
        out.append(c / IP(src=CLIENT, dst=vip, ttl=64, tos=0x2b, flags="DF") / TCP(sport=sport, dport=80, flags="A", seq=8, ack=1))
    # Hostile: a truncated frame, a TCP ACK with no connection, a SYN to no service.
    out.append(Ether(bytes(c / IP(src=CLIENT, dst="203.0.113.200") / TCP(sport=1, dport=80))[:30]))
    out.append(c / IP(src=CLIENT, dst="203.0.113.200", ttl=64) / TCP(sport=43000, dport=80, flags="A"))
    out.append(c / IP(src=CLIENT, dst="203.0.113.250", ttl=64) / TCP(sport=43001, dport=80, flags="S"))
    return out


def gen(d):
    wrpcap(f"{d}/in.pcap", frames())
    with open(f"{d}/rules", "w") as f:
        f.write("-A -t 203.0.113.200:80 -s rr\n")
        f.write("-a -t 203.0.113.200:80 -r 198.51.100.100:8080 -m -w 1\n")
        f.write("-A -u 203.0.113.200:53 -s rr\n")
        f.write("-a -u 203.0.113.200:53 -r 198.51.100.100:5353 -m -w 1\n")
        f.write("-A -t 203.0.113.201:80 -s rr\n")
        f.write("-a -t 203.0.113.201:80 -r 198.51.100.101:80 -g -w 1\n")
        f.write("-A -t 203.0.113.202:80 -s rr\n")
        f.write("-a -t 203.0.113.202:80 -r 198.51.100.102:80 -i -w 1\n")
    neigh = "".join(
        f'[[neighbour]]\nport = "pcap"\naddr = "{ip}"\nmac = "{mac}"\n\n' for ip, mac in RS_MAC.items())
    neigh += f'[[neighbour]]\nport = "pcap"\naddr = "{CLIENT}"\nmac = "{CLIENT_MAC}"\n\n'
    with open(f"{d}/director.toml", "w") as f:
        f.write(f"""[eal]
args = ["-l", "0", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry",
        "--log-level=lib.eal:warning", "--vdev=net_pcap0,rx_pcap={d}/in.pcap,tx_pcap={d}/out.pcap"]

[[port]]
name = "pcap"
device = "net_pcap0"
addresses = ["203.0.113.1/24", "198.51.100.254/24"]

{neigh}
[workers]
lcores = [0]
mbufs = 2047
conn_table_capacity = 1024
idle_sleep_us = 100

[control]
socket = "{d}/director.sock"

[metrics]
listen = "127.0.0.1:0"
""")


failures = []


def expect(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def csum_ok(pkt):
    """Recompute IP and L4 checksums with scapy and compare with what the director sent."""
    ip = pkt[IP]
    fresh = IP(bytes(ip))
    del fresh.chksum
    ok = IP(bytes(fresh)).chksum == ip.chksum
    l4 = ip.payload
    if isinstance(l4, (TCP, UDP)) and not (isinstance(l4, UDP) and l4.chksum == 0):
        f = IP(bytes(ip))
        del f[f.payload.__class__].chksum
        ok = ok and IP(bytes(f))[l4.__class__].chksum == l4.chksum
    return ok


def check(d):
    out = rdpcap(f"{d}/out.pcap")
    print(f"{len(out)} frames out")
    arp = [p for p in out if ARP in p and p[ARP].op == 2]
    expect(len(arp) == 1 and arp[0][ARP].psrc == "203.0.113.200" and arp[0][ARP].pdst == CLIENT
           and arp[0].dst == CLIENT_MAC, "ARP reply for the VIP to the client")
    ipo = [p for p in out if IP in p]

    def find(**kw):
        res = []
        for p in ipo:
            ok = True
            for k, v in kw.items():
                if k == "proto":
                    ok = ok and p[IP].proto == v
                elif k in ("sport", "dport"):
                    l4 = p[IP].payload
                    ok = ok and hasattr(l4, k) and getattr(l4, k) == v
                else:
                    ok = ok and getattr(p[IP], k) == v
            if ok:
                res.append(p)
        return res

    # NAT inbound: dst rewritten to the RS, MAC of the RS, TTL 63, checksums right.
    nat_in = find(dst="198.51.100.100", sport=40000, dport=8080)
    expect(len(nat_in) == 2, f"NAT TCP: 2 inbound segments to 198.51.100.100:8080 (got {len(nat_in)})")
    for p in nat_in:
        expect(p.dst == RS_MAC["198.51.100.100"] and p[IP].src == CLIENT and p[IP].ttl == 63
               and csum_ok(p), f"NAT TCP in: {p[TCP].flags} MAC/addresses/TTL/checksums")
    nat_out = find(src="203.0.113.200", dst=CLIENT, sport=80, dport=40000)
    expect(len(nat_out) == 2, f"NAT TCP: 2 replies from the VIP to the client (got {len(nat_out)})")
    for p in nat_out:
        expect(p.dst == CLIENT_MAC and p[IP].ttl == 63 and csum_ok(p),
               f"NAT TCP out: {p[TCP].flags} MAC/TTL/checksums")
    if len(nat_out) == 2:
        expect(bytes(nat_out[1][TCP].payload) == b"HTTP/1.0 200 OK\r\n\r\nhello", "NAT TCP payload untouched")
    # UDP
    u1 = find(dst="198.51.100.100", sport=5555, dport=5353)
    expect(len(u1) == 1 and csum_ok(u1[0]) and bytes(u1[0][UDP].payload) == b"query-1", "NAT UDP in, checksum right")
    u2 = find(dst="198.51.100.100", sport=5556, dport=5353)
    expect(len(u2) == 1 and u2[0][UDP].chksum != 0 and csum_ok(u2[0]),
           "NAT UDP with checksum 0 -> full checksum computed (IPVS rule)")
    ur = find(src="203.0.113.200", dst=CLIENT, sport=53, dport=5555)
    expect(len(ur) == 1 and csum_ok(ur[0]) and bytes(ur[0][UDP].payload) == b"answer-1", "NAT UDP reply from the VIP")
    # DR: IP unchanged but TTL, MAC of the RS.
    dr = find(dst="203.0.113.201", sport=41000)
    expect(len(dr) == 2, f"DR: 2 segments forwarded (got {len(dr)})")
    for p in dr:
        expect(p.dst == RS_MAC["198.51.100.101"] and p[IP].src == CLIENT and p[IP].ttl == 63
               and p[TCP].dport == 80 and csum_ok(p), "DR: only MAC + TTL changed")
    # TUN: IPIP to the RS, outer per IPVS, inner untouched but TTL.
    tun = [p for p in ipo if p[IP].proto == 4]
    expect(len(tun) == 2, f"TUN: 2 IPIP frames (got {len(tun)})")
    for p in tun:
        o, i = p[IP], p[IP].payload
        expect(o.src == "198.51.100.254" and o.dst == "198.51.100.102" and p.dst == RS_MAC["198.51.100.102"],
               "TUN outer src = director inside address, dst = RS, MAC of RS")
        # Inner TOS 0x2b = DSCP 10 + ECN CE: the outer copies the DSCP and, as IPVS
        # (ip_tunnel_ecn_encap), turns CE into ECT(0): 0x2a. The inner header keeps 0x2b.
        expect(o.ttl == 63 and i.ttl == 63 and o.tos == 0x2a and i.tos == 0x2b and o.flags.DF
               and i.dst == "203.0.113.202" and i[TCP].dport == 80 and csum_ok(p),
               "TUN outer TTL = inner TTL after decrement, DSCP copied, CE -> ECT(0), DF copied, inner dst = VIP")
    # Nothing else: the hostile frames produced nothing but an ICMP port unreachable? (SYN to
    # an address that is no service is not ours: dropped silently.)
    stray = [p for p in ipo if p not in nat_in + nat_out + u1 + u2 + ur + dr + tun]
    expect(len(stray) == 0, f"no other IP frame forwarded (got {[p.summary() for p in stray]})")
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    {"gen": gen, "check": check}[sys.argv[1]](sys.argv[2])
