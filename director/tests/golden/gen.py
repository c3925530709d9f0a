#!/usr/bin/env python3
"""Golden frames for director/src/wire, built by an independent implementation (scapy).

Every expected output is built from scratch with scapy (scapy computing all lengths and
checksums itself), never by patching the input bytes. `cases.txt` is this script's output;
`tests/wire_golden.rs` runs each transform on `in` and compares with `out` byte for byte,
and re-runs this script (when python3 + scapy are available) to prove the file is current.

Usage: gen.py            rewrite cases.txt next to this script
       gen.py --stdout   print the cases instead
"""
import os
import sys

from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, IPOption, Raw
from scapy.layers.inet import in4_chksum

CLIENT, CLIENT_MAC = "203.0.113.5", "02:00:00:00:00:05"
ROUTER, ROUTER_MAC = "203.0.113.254", "02:00:00:00:00:fe"
VIP, DIR_MAC = "192.0.2.1", "02:00:00:00:00:01"
DIP = "198.51.100.1"  # the director's address toward the real servers
RS, RS_MAC = "198.51.100.10", "02:00:00:00:00:0a"
HTTP = b"GET / HTTP/1.0\r\nHost: example\r\n\r\n"
# Router alert (RFC 2113) + NOP + end of list: 8 bytes of options, IHL 7.
ROUTER_ALERT = [IPOption(b"\x94\x04\x00\x00"), IPOption(b"\x01"), IPOption(b"\x01"),
                IPOption(b"\x01"), IPOption(b"\x00")]

CASES = []


def case(name, op, inp, out, **params):
    CASES.append((name, op, params, bytes(inp), bytes(out)))


def l2(src=ROUTER_MAC, dst=DIR_MAC, vlan=None):
    """Ethernet header, with an 802.1Q tag (PCP 5, VID `vlan`) if asked."""
    eth = Ether(src=src, dst=dst)
    return eth / Dot1Q(prio=5, vlan=vlan) if vlan is not None else eth


def tci(vlan):
    return "none" if vlan is None else str((5 << 13) | vlan)


# ---- VS/NAT ---------------------------------------------------------------------------------
def nat_cases():
    for vlan, opts, suffix in [(None, [], ""), (100, ROUTER_ALERT, "_vlan_ipopts")]:
        ip_in = dict(tos=0x10, id=0x1001, flags="DF", ttl=64, options=opts)
        def syn(dport):
            return TCP(sport=40000, dport=dport, seq=1000, flags="S", window=64240,
                       options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)])
        case("nat_in_tcp_syn" + suffix, "dnat",
             l2(vlan=vlan) / IP(src=CLIENT, dst=VIP, **ip_in) / syn(80),
             l2(vlan=vlan) / IP(src=CLIENT, dst=RS, **dict(ip_in, ttl=63)) / syn(8080),
             addr=RS, port=8080)
        data = TCP(sport=40000, dport=80, seq=1001, ack=7001, flags="PA", window=502)
        case("nat_in_tcp_data" + suffix, "dnat",
             l2(vlan=vlan) / IP(src=CLIENT, dst=VIP, **ip_in) / data / HTTP,
             l2(vlan=vlan) / IP(src=CLIENT, dst=RS, **dict(ip_in, ttl=63))
             / TCP(sport=40000, dport=8080, seq=1001, ack=7001, flags="PA", window=502) / HTTP,
             addr=RS, port=8080)
        ip_out = dict(id=0x2002, flags="DF", ttl=64, options=opts)
        case("nat_out_tcp" + suffix, "snat",
             l2(src=RS_MAC, vlan=vlan) / IP(src=RS, dst=CLIENT, **ip_out)
             / TCP(sport=8080, dport=40000, seq=7000, ack=1001, flags="SA", window=65160) / HTTP,
             l2(src=RS_MAC, vlan=vlan) / IP(src=VIP, dst=CLIENT, **dict(ip_out, ttl=63))
             / TCP(sport=80, dport=40000, seq=7000, ack=1001, flags="SA", window=65160) / HTTP,
             addr=VIP, port=80)
        dns = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
        case("nat_in_udp" + suffix, "dnat",
             l2(vlan=vlan) / IP(src=CLIENT, dst=VIP, **ip_in) / UDP(sport=5353, dport=53) / dns,
             l2(vlan=vlan) / IP(src=CLIENT, dst=RS, **dict(ip_in, ttl=63))
             / UDP(sport=5353, dport=5300) / dns,
             addr=RS, port=5300)
        case("nat_out_udp" + suffix, "snat",
             l2(src=RS_MAC, vlan=vlan) / IP(src=RS, dst=CLIENT, **ip_out)
             / UDP(sport=5300, dport=5353) / dns,
             l2(src=RS_MAC, vlan=vlan) / IP(src=VIP, dst=CLIENT, **dict(ip_out, ttl=63))
             / UDP(sport=53, dport=5353) / dns,
             addr=VIP, port=53)

    # UDP checksum 0 ("none"): a full checksum is computed. Short datagram, so the frame
    # carries Ethernet padding; garbage padding proves the checksum covers the IP payload only.
    pad = b"\xee" * 12
    case("nat_in_udp_csum0_padded", "dnat",
         bytes(l2() / IP(src=CLIENT, dst=VIP, id=7, ttl=64) / UDP(sport=5353, dport=53, chksum=0)
               / b"ping") + pad,
         bytes(l2() / IP(src=CLIENT, dst=RS, id=7, ttl=63) / UDP(sport=5353, dport=5300)
               / b"ping") + pad,
         addr=RS, port=5300)

    # A checksum that becomes 0 after the rewrite must be sent as 0xffff (RFC 768). The last
    # payload word is chosen so that the rewritten datagram sums to all ones.
    def ffff_payload(src, dst, sport, dport):
        base = b"zero-sum" + b"\x00\x00"
        pseudo = IP(src=src, dst=dst, proto=17)
        raw = bytes(UDP(sport=sport, dport=dport, chksum=0) / base)
        word = in4_chksum(17, pseudo, raw)
        payload = b"zero-sum" + word.to_bytes(2, "big")
        raw = bytes(UDP(sport=sport, dport=dport, chksum=0) / payload)
        assert in4_chksum(17, pseudo, raw) == 0, "construction failed"
        return payload

    p = ffff_payload(CLIENT, RS, 5353, 5300)
    inp = l2() / IP(src=CLIENT, dst=VIP, id=8, ttl=64) / UDP(sport=5353, dport=53) / p
    assert UDP(bytes(inp[UDP])).chksum not in (0, 0xFFFF)
    out = l2() / IP(src=CLIENT, dst=RS, id=8, ttl=63) / UDP(sport=5353, dport=5300) / p
    assert bytes(out[UDP])[6:8] == b"\xff\xff"
    case("nat_in_udp_becomes_ffff", "dnat", inp, out, addr=RS, port=5300)
    p = ffff_payload(VIP, CLIENT, 53, 5353)
    inp = l2(src=RS_MAC) / IP(src=RS, dst=CLIENT, id=9, ttl=64) / UDP(sport=5300, dport=5353,
                                                                     chksum=0) / p
    out = l2(src=RS_MAC) / IP(src=VIP, dst=CLIENT, id=9, ttl=63) / UDP(sport=53, dport=5353) / p
    assert bytes(out[UDP])[6:8] == b"\xff\xff"
    case("nat_out_udp_csum0_becomes_ffff", "snat", inp, out, addr=VIP, port=53)


# ---- VS/DR ----------------------------------------------------------------------------------
def dr_cases():
    for vlan, suffix, pad in [(None, "", b""), (100, "_vlan_padded", b"\x00" * 6)]:
        ip = dict(src=CLIENT, dst=VIP, id=0x3003, flags="DF", tos=0x28)
        seg = TCP(sport=40001, dport=80, seq=5, ack=6, flags="A") / b"x"
        case("dr_tcp" + suffix, "dr",
             bytes(l2(vlan=vlan) / IP(ttl=17, **ip) / seg) + pad,
             bytes(l2(src=DIR_MAC, dst=RS_MAC, vlan=vlan) / IP(ttl=16, **ip) / seg) + pad,
             src_mac=DIR_MAC, dst_mac=RS_MAC)


# ---- VS/TUN ---------------------------------------------------------------------------------
def tun_cases():
    variants = [
        # name, vlan, inner tos, expected outer tos, DF, padding
        ("tun_tcp_df", None, 0x28, 0x28, True, b""),
        ("tun_udp_ce_no_df", None, 0xBB, 0xBA, False, b""),  # CE -> ECT(0)
        ("tun_vlan_ect1_padded", 100, 0x01, 0x01, True, b"\x00" * 4),
    ]
    for name, vlan, tos, outer_tos, df, pad in variants:
        flags = "DF" if df else 0
        l4 = (UDP(sport=5353, dport=53) / b"abcd") if "udp" in name or pad else (
            TCP(sport=40002, dport=80, seq=1, flags="S"))
        inner_in = IP(src=CLIENT, dst=VIP, tos=tos, id=0x4004, flags=flags, ttl=30) / l4
        inner_out = IP(src=CLIENT, dst=VIP, tos=tos, id=0x4004, flags=flags, ttl=29) / l4
        outer = IP(src=DIP, dst=RS, proto=4, tos=outer_tos, id=0x0777, flags=flags, ttl=29)
        case(name, "tun",
             bytes(l2(vlan=vlan) / inner_in) + pad,
             bytes(l2(vlan=vlan) / outer / inner_out) + pad,
             src=DIP, dst=RS, ident=0x0777)


# ---- ICMP built by the director -------------------------------------------------------------
def icmp_build_cases():
    for vlan, opts, suffix in [(None, [], ""), (100, ROUTER_ALERT, "_vlan_ipopts")]:
        ip = dict(tos=0x00, id=0x5005, flags="DF", options=opts)
        data = bytes(range(56))
        case("echo_reply" + suffix, "echo_reply",
             l2(src=CLIENT_MAC, vlan=vlan) / IP(src=CLIENT, dst=VIP, ttl=52, **ip)
             / ICMP(type=8, id=0x77, seq=3) / data,
             l2(src=DIR_MAC, dst=CLIENT_MAC, vlan=vlan) / IP(src=VIP, dst=CLIENT, ttl=64, **ip)
             / ICMP(type=0, id=0x77, seq=3) / data)

    # Port unreachable about a UDP datagram to a service with no destination.
    offending = IP(src=CLIENT, dst=VIP, id=0x6006, ttl=60, tos=0x2B) / UDP(sport=5353, dport=53) \
        / b"query"
    case("port_unreachable", "dest_unreachable",
         l2() / offending,
         l2(src=DIR_MAC, dst=ROUTER_MAC) / IP(src=VIP, dst=CLIENT, tos=0xC0 | (0x2B & 0x1E), ttl=64,
                                              id=0, flags=0)
         / ICMP(type=3, code=3) / Raw(bytes(offending)),
         l2_src=DIR_MAC, l2_dst=ROUTER_MAC, vlan=tci(None), src_ip=VIP, code=3, mtu=0)

    # Fragmentation needed about a 1500-byte DF segment: quote cut to 576 - 28 bytes.
    big = IP(src=CLIENT, dst=VIP, id=0x7007, flags="DF", ttl=60) \
        / TCP(sport=40003, dport=80, seq=9, ack=1, flags="A") / (bytes(range(256)) * 6)[:1460]
    assert len(big) == 1500
    case("frag_needed_vlan", "dest_unreachable",
         l2(vlan=100) / big,
         l2(src=DIR_MAC, dst=ROUTER_MAC, vlan=100)
         / IP(src=VIP, dst=CLIENT, tos=0xC0, ttl=64, id=0, flags=0)
         / ICMP(type=3, code=4, nexthopmtu=1480) / Raw(bytes(big)[:548]),
         l2_src=DIR_MAC, l2_dst=ROUTER_MAC, vlan=tci(100), src_ip=VIP, code=4, mtu=1480)

    # Time exceeded about a packet with TTL 1 and IP options (quoted whole, options included).
    dying = IP(src=CLIENT, dst=VIP, id=0x8008, ttl=1, options=ROUTER_ALERT) \
        / TCP(sport=40004, dport=80, flags="S")
    case("time_exceeded", "time_exceeded",
         l2() / dying,
         l2(src=DIR_MAC, dst=ROUTER_MAC) / IP(src=DIP, dst=CLIENT, tos=0xC0, ttl=64, id=0, flags=0)
         / ICMP(type=11, code=0) / Raw(bytes(dying)),
         l2_src=DIR_MAC, l2_dst=ROUTER_MAC, vlan=tci(None), src_ip=DIP, code=0)


# ---- TCP resets for closed ports ------------------------------------------------------------
def tcp_reset_cases():
    # A SYN to a VIP port without a service: RST|ACK, seq 0, ack = seq + 1 (Linux's reset:
    # TTL 64, DF, ident 0, window 0). The SYN's options are not echoed.
    syn = IP(src=CLIENT, dst=VIP, id=0xa00a, flags="DF", ttl=60, tos=0x10) \
        / TCP(sport=40005, dport=81, seq=123456789, flags="S", window=64240,
              options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)])
    case("tcp_reset_syn", "tcp_reset",
         l2() / syn,
         l2(src=DIR_MAC, dst=ROUTER_MAC) / IP(src=VIP, dst=CLIENT, ttl=64, id=0, flags="DF")
         / TCP(sport=81, dport=40005, seq=0, ack=123456790, flags="RA", window=0),
         l2_src=DIR_MAC, l2_dst=ROUTER_MAC, vlan=tci(None))
    # A data segment with ACK (and IP options, on a tagged port): a bare RST at its ack.
    data = IP(src=CLIENT, dst=VIP, id=0xb00b, ttl=60, options=ROUTER_ALERT) \
        / TCP(sport=40006, dport=8443, seq=1000, ack=0xfffffff0, flags="PA", window=502) / HTTP
    case("tcp_reset_ack_vlan_ipopts", "tcp_reset",
         l2(vlan=100) / data,
         l2(src=DIR_MAC, dst=ROUTER_MAC, vlan=100)
         / IP(src=VIP, dst=CLIENT, ttl=64, id=0, flags="DF")
         / TCP(sport=8443, dport=40006, seq=0xfffffff0, ack=0, flags="R", window=0),
         l2_src=DIR_MAC, l2_dst=ROUTER_MAC, vlan=tci(100))


# ---- ICMP errors about NAT connections ------------------------------------------------------
def icmp_nat_cases():
    body = bytes(range(200))

    def reply(src, sport):
        """A reply of the NAT flow toward the client, as sent from `src:sport`."""
        return IP(src=src, dst=CLIENT, id=0x9009, flags="DF", ttl=1) \
            / TCP(sport=sport, dport=40000, seq=5000, ack=1001, flags="PA") / body

    # From the client side (a router) about a reply the director sent: VIP -> RS.
    for name, icmp, quote_len in [
        ("icmp_dnat_time_exceeded_full_quote", ICMP(type=11, code=0), 20 + 20 + 64),
        ("icmp_dnat_frag_needed_short_quote", ICMP(type=3, code=4, nexthopmtu=1400), 28),
    ]:
        case(name, "icmp_dnat",
             l2() / IP(src=ROUTER, dst=VIP, tos=0xC0, id=0, ttl=250) / icmp
             / Raw(bytes(reply(VIP, 80))[:quote_len]),
             l2() / IP(src=ROUTER, dst=RS, tos=0xC0, id=0, ttl=249) / icmp
             / Raw(bytes(reply(RS, 8080))[:quote_len]),
             addr=RS, port=8080)

    # From the real server about a packet the director forwarded to it: RS -> VIP.
    def request(dst, dport):
        return IP(src=CLIENT, dst=dst, id=0xA00A, ttl=63) / UDP(sport=5353, dport=dport) / b"hello"

    for vlan, suffix in [(None, ""), (100, "_vlan")]:
        case("icmp_snat_port_unreachable_udp" + suffix, "icmp_snat",
             l2(src=RS_MAC, vlan=vlan) / IP(src=RS, dst=CLIENT, tos=0xC0, id=0, ttl=64)
             / ICMP(type=3, code=3) / Raw(bytes(request(RS, 5300))),
             l2(src=RS_MAC, vlan=vlan) / IP(src=VIP, dst=CLIENT, tos=0xC0, id=0, ttl=63)
             / ICMP(type=3, code=3) / Raw(bytes(request(VIP, 53))),
             addr=VIP, port=53)


# ---- ARP ------------------------------------------------------------------------------------
def arp_cases():
    def pad60(frame):
        frame = bytes(frame)
        return frame + b"\x00" * max(0, 60 - len(frame))

    for vlan, suffix in [(None, ""), (100, "_vlan")]:
        case("arp_reply" + suffix, "arp_reply",
             pad60(l2(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff", vlan=vlan)
                   / ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst="00:00:00:00:00:00", pdst=VIP)),
             pad60(l2(src=DIR_MAC, dst=CLIENT_MAC, vlan=vlan)
                   / ARP(op=2, hwsrc=DIR_MAC, psrc=VIP, hwdst=CLIENT_MAC, pdst=CLIENT)),
             mac=DIR_MAC)
        case("arp_request" + suffix, "arp_request", b"",
             pad60(l2(src=DIR_MAC, dst="ff:ff:ff:ff:ff:ff", vlan=vlan)
                   / ARP(op=1, hwsrc=DIR_MAC, psrc=DIP, hwdst="00:00:00:00:00:00", pdst=RS)),
             mac=DIR_MAC, vlan=tci(vlan), sender=DIP, target=RS)
    case("gratuitous_arp", "garp", b"",
         pad60(l2(src=DIR_MAC, dst="ff:ff:ff:ff:ff:ff")
               / ARP(op=1, hwsrc=DIR_MAC, psrc=VIP, hwdst="00:00:00:00:00:00", pdst=VIP)),
         mac=DIR_MAC, vlan=tci(None), ip=VIP)


def render():
    nat_cases()
    dr_cases()
    tun_cases()
    icmp_build_cases()
    tcp_reset_cases()
    icmp_nat_cases()
    arp_cases()
    lines = ["# Generated by gen.py (scapy): do not edit. One case per block:",
             "# case NAME / op OP / parameters / in HEX (- = none) / out HEX.", ""]
    for name, op, params, inp, out in CASES:
        lines.append(f"case {name}")
        lines.append(f"op {op}")
        for key, value in params.items():
            lines.append(f"{key} {value}")
        lines.append(f"in {inp.hex() if inp else '-'}")
        lines.append(f"out {out.hex()}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    text = render()
    if "--stdout" in sys.argv[1:]:
        sys.stdout.write(text)
    else:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.txt")
        with open(path, "w") as f:
            f.write(text)
