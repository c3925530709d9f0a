#!/usr/bin/env python3
"""Golden frames for the data-plane tests (tests/dataplane_pipeline.rs, tests/dataplane_dpdk.rs).

Every frame, inputs and expected outputs alike, is built from scratch by scapy (an independent
implementation that computes every length and checksum itself), never by patching bytes. The
tests feed `NAME.in` frames to the pipeline and compare what comes out with `NAME.out` (or
`NAME.icmp`, `NAME.arp`) byte for byte. `frames.txt` is this script's output; the tests re-run
the script (when python3 + scapy are available) to prove the file is current.

Topology (the tests build the same one):
  port 0 "outside" 02:00:00:00:00:01  203.0.113.1/24   clients C1 .10, C2 .11, VIPs .200-.205
  port 1 "inside"  02:00:00:00:01:01  198.51.100.1/24  real servers RS_A .10, RS_B .11, RS_C .12

Usage: gen.py            rewrite frames.txt next to this script
       gen.py --stdout   print the frames instead
"""
import os
import sys

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw

P0_MAC, P0_IP = "02:00:00:00:00:01", "203.0.113.1"
P1_MAC, P1_IP = "02:00:00:00:01:01", "198.51.100.1"
C1, C1_MAC = "203.0.113.10", "02:00:00:00:00:0a"
C2, C2_MAC = "203.0.113.11", "02:00:00:00:00:0b"
HOST, HOST_MAC = "203.0.113.50", "02:00:00:00:00:32"  # not configured anywhere
VIP = "203.0.113.200"  # TCP 80 rr NAT (RS_A:8080, RS_B:8080), UDP 53 NAT (RS_A:5300)
VIP_DR = "203.0.113.201"  # TCP 80 DR -> RS_A
VIP_TUN = "203.0.113.202"  # TCP 80 TUN -> RS_B
VIP_Q = "203.0.113.203"  # TCP 80, one NAT dest of weight 0 (RS_B:9090)
VIP_P = "203.0.113.204"  # TCP 443 rr -p 300 -M 255.255.255.0 (RS_A:443, RS_B:443)
VIP_U = "203.0.113.205"  # TCP 80 NAT -> RS_C:8080 (no static neighbour)
RS_A, RS_A_MAC = "198.51.100.10", "02:00:00:00:01:0a"
RS_B, RS_B_MAC = "198.51.100.11", "02:00:00:00:01:0b"
RS_C, RS_C_MAC = "198.51.100.12", "02:00:00:00:01:0c"
BCAST, ZERO_MAC = "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00"

HTTP_GET = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"
HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
DNS_Q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
DNS_R = DNS_Q[:2] + b"\x81\x80" + DNS_Q[4:6] + b"\x00\x01" + DNS_Q[8:] \
    + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x0e\x10\x00\x04\xc0\x00\x02\x01"

FRAMES = []


def frame(name, pkt):
    FRAMES.append((name, bytes(pkt)))


def pad60(pkt):
    raw = bytes(pkt)
    return raw + b"\x00" * max(0, 60 - len(raw))


class Ids:
    """IP identifications: every frame a client or server sends gets the next one."""
    n = 0x100

    @classmethod
    def next(cls):
        cls.n += 1
        return cls.n


def l4(proto, sport, dport, flags, seq, ack, payload, options):
    if proto == "udp":
        return UDP(sport=sport, dport=dport) / payload if payload else UDP(sport=sport, dport=dport)
    seg = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=64240,
              options=options or [])
    return seg / payload if payload else seg


def flow(prefix, client, cmac, cport, vip, vport, rs, rsmac, rport, steps, proto="tcp",
         fwd="masq", tos=0, df=True):
    """A connection's segments. Each step is (name, 'c2s'|'s2c', flags, payload[, options]).

    `NAME.in` is the frame as it reaches the director (client side on port 0, real-server side on
    port 1), `NAME.out` what the director must send: for masq the NAT rewrite with TTL - 1 and
    new MACs; for DR the same IP packet with TTL - 1 to the real server's MAC; for TUN the
    IPIP packet (outer identification 1, 2, ... in step order, as a fresh worker 0 numbers it).
    Sequence numbers follow the payload and SYN/FIN flags.
    """
    cseq, sseq = 1000, 5000
    tun_id = 0
    for step in steps:
        name, direction, flags, payload = step[:4]
        options = step[4] if len(step) > 4 else None
        ttl = step[5] if len(step) > 5 else 64
        ipf = "DF" if df else 0
        ident = Ids.next()
        if direction == "c2s":
            seg = lambda dport: l4(proto, cport, dport, flags, cseq, sseq if "A" in flags else 0,
                                   payload, options)
            frame(f"{prefix}.{name}.in", Ether(src=cmac, dst=P0_MAC)
                  / IP(src=client, dst=vip, id=ident, flags=ipf, tos=tos, ttl=ttl) / seg(vport))
            if fwd == "masq":
                frame(f"{prefix}.{name}.out", Ether(src=P1_MAC, dst=rsmac)
                      / IP(src=client, dst=rs, id=ident, flags=ipf, tos=tos, ttl=ttl - 1)
                      / seg(rport))
            elif fwd == "dr":
                frame(f"{prefix}.{name}.out", Ether(src=P1_MAC, dst=rsmac)
                      / IP(src=client, dst=vip, id=ident, flags=ipf, tos=tos, ttl=ttl - 1)
                      / seg(vport))
            else:
                tun_id += 1
                frame(f"{prefix}.{name}.out", Ether(src=P1_MAC, dst=rsmac)
                      / IP(src=P1_IP, dst=rs, proto=4, id=tun_id, flags=ipf, tos=tos,
                           ttl=ttl - 1)
                      / IP(src=client, dst=vip, id=ident, flags=ipf, tos=tos, ttl=ttl - 1)
                      / seg(vport))
            if proto == "tcp":
                cseq += len(payload) + ("S" in flags) + ("F" in flags)
        else:
            seg = lambda sport: l4(proto, sport, cport, flags, sseq, cseq, payload, options)
            frame(f"{prefix}.{name}.in", Ether(src=rsmac, dst=P1_MAC)
                  / IP(src=rs, dst=client, id=ident, flags=ipf, ttl=ttl) / seg(rport))
            frame(f"{prefix}.{name}.out", Ether(src=P0_MAC, dst=cmac)
                  / IP(src=vip, dst=client, id=ident, flags=ipf, ttl=ttl - 1) / seg(vport))
            if proto == "tcp":
                sseq += len(payload) + ("S" in flags) + ("F" in flags)


MSS = [("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]
HANDSHAKE = [("syn", "c2s", "S", b"", MSS), ("synack", "s2c", "SA", b"", MSS),
             ("ack", "c2s", "A", b"")]
LIFECYCLE = HANDSHAKE + [("req", "c2s", "PA", HTTP_GET), ("resp", "s2c", "PA", HTTP_OK),
                         ("cfin", "c2s", "FA", b""), ("sfin", "s2c", "FA", b""),
                         ("lastack", "c2s", "A", b"")]


def owner(client, port, n_workers):
    """steering::owner: the worker owning flows of a client endpoint."""
    a = int.from_bytes(bytes(int(x) for x in client.split(".")), "big")
    h = (((a << 16) | port) * 0x9E3779B97F4A7C15) & (2**64 - 1)
    return ((h >> 32) * n_workers) >> 32


def first_port(client, start, want_owner):
    return next(p for p in range(start, start + 1000) if owner(client, p, 2) == want_owner)


def nat_cases():
    flow("nat", C1, C1_MAC, 40000, VIP, 80, RS_A, RS_A_MAC, 8080, LIFECYCLE)
    # rr alternation: the next two new connections go to RS_B, then RS_A again.
    flow("rr2", C2, C2_MAC, 40001, VIP, 80, RS_B, RS_B_MAC, 8080, HANDSHAKE[:1])
    flow("rr3", C1, C1_MAC, 40002, VIP, 80, RS_A, RS_A_MAC, 8080, HANDSHAKE[:1])
    flow("udp", C1, C1_MAC, 5353, VIP, 53, RS_A, RS_A_MAC, 5300,
         [("q", "c2s", "", DNS_Q), ("r", "s2c", "", DNS_R), ("q2", "c2s", "", DNS_Q)],
         proto="udp")
    # Persistence with a /24 netmask: both clients stick to the first choice, RS_A.
    flow("per1", C1, C1_MAC, 41000, VIP_P, 443, RS_A, RS_A_MAC, 443, HANDSHAKE)
    flow("per2", C2, C2_MAC, 41001, VIP_P, 443, RS_A, RS_A_MAC, 443, HANDSHAKE[:1])
    flow("per3", C1, C1_MAC, 41002, VIP_P, 443, RS_A, RS_A_MAC, 443, HANDSHAKE[:1])
    # Weight 0: w0a established on RS_A, then RS_A quiesced.
    flow("w0a", C1, C1_MAC, 42000, VIP, 80, RS_A, RS_A_MAC, 8080,
         HANDSHAKE + [("req", "c2s", "PA", HTTP_GET), ("resp", "s2c", "PA", HTTP_OK)])
    flow("w0b", C2, C2_MAC, 42001, VIP, 80, RS_B, RS_B_MAC, 8080, HANDSHAKE[:1])
    flow("w0c", C2, C2_MAC, 42002, VIP, 80, RS_B, RS_B_MAC, 8080, HANDSHAKE[:1])
    # Destination removed under an established connection.
    flow("rm", C1, C1_MAC, 43000, VIP, 80, RS_A, RS_A_MAC, 8080,
         HANDSHAKE + [("req", "c2s", "PA", HTTP_GET), ("resp", "s2c", "PA", HTTP_OK)])
    flow("nc", C1, C1_MAC, 45000, VIP, 80, RS_A, RS_A_MAC, 8080, [("ack", "c2s", "A", b"")])
    flow("ttl1", C1, C1_MAC, 46000, VIP, 80, RS_A, RS_A_MAC, 8080,
         [("syn", "c2s", "S", b"", MSS, 1)])
    # Table full (capacity 2): full1 -> RS_A, full2 -> RS_B, full3 refused.
    flow("full1", C1, C1_MAC, 47000, VIP, 80, RS_A, RS_A_MAC, 8080, HANDSHAKE)
    flow("full2", C1, C1_MAC, 47001, VIP, 80, RS_B, RS_B_MAC, 8080, HANDSHAKE[:1])
    flow("full3", C1, C1_MAC, 47002, VIP, 80, RS_A, RS_A_MAC, 8080, HANDSHAKE[:1])
    # ARP pending: RS_C has no neighbour entry. pend0..4: five new flows waiting for it.
    flow("unres", C1, C1_MAC, 50000, VIP_U, 80, RS_C, RS_C_MAC, 8080, HANDSHAKE[:1])
    for i in range(5):
        flow(f"pend{i}", C1, C1_MAC, 50100 + i, VIP_U, 80, RS_C, RS_C_MAC, 8080, HANDSHAKE[:1])
    # conn_reuse_mode 1: a SYN on a TIME_WAIT connection's tuple is a new connection, which
    # rr sends to the next server.
    flow("reuse", C1, C1_MAC, 40500, VIP, 80, RS_A, RS_A_MAC, 8080, LIFECYCLE)
    flow("reuse2", C1, C1_MAC, 40500, VIP, 80, RS_B, RS_B_MAC, 8080, HANDSHAKE[:1])


def quiesced_cases():
    flow("q0", C1, C1_MAC, 44000, VIP_Q, 80, RS_B, RS_B_MAC, 9090, HANDSHAKE[:1])
    syn = Ether(bytes(next(f for n, f in FRAMES if n == "q0.syn.in")))
    offending = bytes(syn[IP])
    frame("q0.syn.icmp", Ether(src=P0_MAC, dst=C1_MAC)
          / IP(src=VIP_Q, dst=C1, tos=0xC0, ttl=64, id=0, flags=0)
          / ICMP(type=3, code=3) / Raw(offending))


def dr_tun_cases():
    flow("dr", C1, C1_MAC, 48000, VIP_DR, 80, RS_A, RS_A_MAC, 80,
         HANDSHAKE[:1] + [("ack", "c2s", "A", b""), ("req", "c2s", "PA", HTTP_GET)], fwd="dr")
    # Port 1 has MTU 1500, so the tunnel MTU is 1480: "fits" is 1480 bytes of IP, "big" 1500.
    body = (bytes(range(256)) * 6)[:1460]
    flow("tun", C1, C1_MAC, 49000, VIP_TUN, 80, RS_B, RS_B_MAC, 80,
         HANDSHAKE[:1] + [("ack", "c2s", "A", b""), ("fits", "c2s", "PA", body[:1440]),
                          ("big", "c2s", "PA", body)],
         fwd="tun", tos=0x10)
    fits = Ether(bytes(next(f for n, f in FRAMES if n == "tun.fits.in")))
    big = Ether(bytes(next(f for n, f in FRAMES if n == "tun.big.in")))
    assert fits[IP].len == 1480 and big[IP].len == 1500 and big[IP].flags == "DF"
    FRAMES[:] = [(n, f) for n, f in FRAMES if n != "tun.big.out"]  # never sent
    frame("tun.big.icmp", Ether(src=P0_MAC, dst=C1_MAC)
          / IP(src=P0_IP, dst=C1, tos=0xC0 | (0x10 & 0x1E), ttl=64, id=0, flags=0)
          / ICMP(type=3, code=4, nexthopmtu=1480) / Raw(bytes(big[IP])[:548]))
    # The same size with DF clear: the tunnel would have to fragment; dropped.
    nodf = big.copy()
    nodf[IP].flags = 0
    nodf[IP].chksum = None
    frame("tun.bignodf.in", nodf)


def arp_cases():
    frame("arp.vip.in", pad60(Ether(src=C1_MAC, dst=BCAST)
                              / ARP(op=1, hwsrc=C1_MAC, psrc=C1, hwdst=ZERO_MAC, pdst=VIP)))
    frame("arp.vip.out", pad60(Ether(src=P0_MAC, dst=C1_MAC)
                               / ARP(op=2, hwsrc=P0_MAC, psrc=VIP, hwdst=C1_MAC, pdst=C1)))
    frame("arp.dip.in", Ether(src=RS_A_MAC, dst=BCAST)
          / ARP(op=1, hwsrc=RS_A_MAC, psrc=RS_A, hwdst=ZERO_MAC, pdst=P1_IP))
    frame("arp.dip.out", Ether(src=P1_MAC, dst=RS_A_MAC)
          / ARP(op=2, hwsrc=P1_MAC, psrc=P1_IP, hwdst=RS_A_MAC, pdst=RS_A))
    frame("arp.foreign.in", pad60(Ether(src=HOST_MAC, dst=BCAST)
                                  / ARP(op=1, hwsrc=HOST_MAC, psrc=HOST, hwdst=ZERO_MAC,
                                        pdst="203.0.113.99")))
    frame("arp.vip_on_port1.in", pad60(Ether(src=RS_A_MAC, dst=BCAST)
                                       / ARP(op=1, hwsrc=RS_A_MAC, psrc=RS_A, hwdst=ZERO_MAC,
                                             pdst=VIP)))
    frame("arp.rs_c.request", pad60(Ether(src=P1_MAC, dst=BCAST)
                                    / ARP(op=1, hwsrc=P1_MAC, psrc=P1_IP, hwdst=ZERO_MAC,
                                          pdst=RS_C)))
    frame("arp.rs_c.reply", pad60(Ether(src=RS_C_MAC, dst=P1_MAC)
                                  / ARP(op=2, hwsrc=RS_C_MAC, psrc=RS_C, hwdst=P1_MAC,
                                        pdst=P1_IP)))


def icmp_cases():
    data = bytes(range(48))
    for name, dst in [("vip", VIP), ("dip", P0_IP)]:
        frame(f"echo.{name}.in", Ether(src=C1_MAC, dst=P0_MAC)
              / IP(src=C1, dst=dst, id=0x4242, flags="DF", ttl=61) / ICMP(type=8, id=7, seq=1)
              / data)
        frame(f"echo.{name}.out", Ether(src=P0_MAC, dst=C1_MAC)
              / IP(src=dst, dst=C1, id=0x4242, flags="DF", ttl=64) / ICMP(type=0, id=7, seq=1)
              / data)
    frame("echo.foreign.in", Ether(src=C1_MAC, dst=P0_MAC)
          / IP(src=C1, dst="203.0.113.99", ttl=61) / ICMP(type=8, id=7, seq=2) / data)

    # The client (or a router before it) reports a reply of the NAT flow "nat" unreachable:
    # to the real server, outer destination and quoted source rewritten.
    def reply(src, sport):
        return IP(src=src, dst=C1, id=0x5151, flags="DF", ttl=63) \
            / TCP(sport=sport, dport=40000, seq=5001, ack=1001, flags="PA") / HTTP_OK

    frame("icmpc.in", Ether(src=C1_MAC, dst=P0_MAC)
          / IP(src=C1, dst=VIP, id=0x6161, ttl=64, tos=0xC0) / ICMP(type=3, code=3)
          / Raw(bytes(reply(VIP, 80))))
    frame("icmpc.out", Ether(src=P1_MAC, dst=RS_A_MAC)
          / IP(src=C1, dst=RS_A, id=0x6161, ttl=63, tos=0xC0) / ICMP(type=3, code=3)
          / Raw(bytes(reply(RS_A, 8080))))

    # The real server reports a forwarded request undeliverable (here: fragmentation needed):
    # to the client, outer source and quoted destination rewritten to the VIP.
    def request(dst, dport):
        return IP(src=C1, dst=dst, id=0x7171, flags="DF", ttl=63) \
            / TCP(sport=40000, dport=dport, seq=1001, ack=5001, flags="PA") / HTTP_GET

    frame("icmprs.in", Ether(src=RS_A_MAC, dst=P1_MAC)
          / IP(src=RS_A, dst=C1, id=0x8181, ttl=64, tos=0xC0)
          / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(bytes(request(RS_A, 8080))))
    frame("icmprs.out", Ether(src=P0_MAC, dst=C1_MAC)
          / IP(src=VIP, dst=C1, id=0x8181, ttl=63, tos=0xC0)
          / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(bytes(request(VIP, 80))))


def closed_port_cases():
    # A VIP or director address where no service listens: answered as the director's host
    # kernel would (IPVS hands it to the local stack): a SYN gets RST|ACK (seq 0, ack = its
    # seq + 1; TTL 64, DF, ident 0), a segment with ACK a bare RST at its ack, a UDP datagram
    # ICMP port unreachable. A RST gets nothing.
    frame("closed.syn.in", Ether(src=C1_MAC, dst=P0_MAC)
          / IP(src=C1, dst=VIP, id=Ids.next(), flags="DF", ttl=64)
          / TCP(sport=45000, dport=81, seq=777, flags="S", window=64240,
                options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]))
    frame("closed.syn.rst", Ether(src=P0_MAC, dst=C1_MAC)
          / IP(src=VIP, dst=C1, id=0, flags="DF", ttl=64)
          / TCP(sport=81, dport=45000, seq=0, ack=778, flags="RA", window=0))
    frame("closed.ack.in", Ether(src=C1_MAC, dst=P0_MAC)
          / IP(src=C1, dst=P0_IP, id=Ids.next(), flags="DF", ttl=64)
          / TCP(sport=45001, dport=22, seq=5, ack=99, flags="PA", window=502) / HTTP_GET)
    frame("closed.ack.rst", Ether(src=P0_MAC, dst=C1_MAC)
          / IP(src=P0_IP, dst=C1, id=0, flags="DF", ttl=64)
          / TCP(sport=22, dport=45001, seq=99, ack=0, flags="R", window=0))
    frame("closed.rst.in", pad60(Ether(src=C1_MAC, dst=P0_MAC)
                                 / IP(src=C1, dst=VIP, id=Ids.next(), ttl=64)
                                 / TCP(sport=45002, dport=81, seq=1, ack=1, flags="RA")))
    udp = IP(src=C1, dst=VIP, id=Ids.next(), ttl=64) / UDP(sport=45003, dport=54) / DNS_Q
    frame("closed.udp.in", Ether(src=C1_MAC, dst=P0_MAC) / udp)
    frame("closed.udp.icmp", Ether(src=P0_MAC, dst=C1_MAC)
          / IP(src=VIP, dst=C1, tos=0xC0, ttl=64, id=0, flags=0)
          / ICMP(type=3, code=3) / Raw(bytes(udp)))


def dpdk_cases():
    # Steering: a flow owned by each of two workers (steering::owner, checked by the tests).
    p0 = first_port(C1, 51000, 0)
    p1 = first_port(C1, 51000, 1)
    flow("st0", C1, C1_MAC, p0, VIP, 80, RS_A, RS_A_MAC, 8080, HANDSHAKE)
    flow("st1", C1, C1_MAC, p1, VIP, 80, RS_B, RS_B_MAC, 8080, HANDSHAKE)
    # Many clients, connected one after the other: rr alternates RS_A, RS_B.
    for i in range(24):
        client, cmac = (C1, C1_MAC) if i % 3 else (C2, C2_MAC)
        rs, rsmac = (RS_A, RS_A_MAC) if i % 2 == 0 else (RS_B, RS_B_MAC)
        flow(f"many{i}", client, cmac, 52000 + 7 * i, VIP, 80, rs, rsmac, 8080,
             HANDSHAKE + [("req", "c2s", "PA", HTTP_GET), ("resp", "s2c", "PA", HTTP_OK)])


def garp_cases():
    # Worker 0 announces every VIP when it starts, out of the port its route uses (port 0).
    for vip in [VIP, VIP_DR, VIP_TUN, VIP_Q, VIP_P, VIP_U]:
        frame(f"garp.{vip}", pad60(Ether(src=P0_MAC, dst=BCAST)
                                   / ARP(op=1, hwsrc=P0_MAC, psrc=vip, hwdst=ZERO_MAC, pdst=vip)))


def render():
    nat_cases()
    quiesced_cases()
    dr_tun_cases()
    arp_cases()
    icmp_cases()
    dpdk_cases()
    garp_cases()
    closed_port_cases()
    names = [n for n, _ in FRAMES]
    assert len(names) == len(set(names)), "duplicate frame names"
    lines = ["# Generated by gen.py (scapy): do not edit. One frame per line: NAME HEX.", ""]
    lines += [f"{name} {raw.hex()}" for name, raw in FRAMES]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    text = render()
    if "--stdout" in sys.argv[1:]:
        sys.stdout.write(text)
    else:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frames.txt")
        with open(path, "w") as f:
            f.write(text)
