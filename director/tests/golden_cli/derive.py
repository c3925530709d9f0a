#!/usr/bin/env python3
"""Derives the golden listings from ipvsadm 1.31's printf format strings (ipvsadm.c:
print_title, print_service_entry, print_largenum, list_conn/print_conn, list_timeout),
independently of director's Rust code: Python's % operator is C's printf.

The fixture is the one in ../cli_golden.rs (FIXTURE commands and counters). The sorted order
was worked out by hand from libipvs's comparators and glibc 2.36's merge sort:
  table order: 1 TCP 10.0.0.1:80, 2 UDP 10.0.0.1:53, 3 FWM 1, 4 TCP 192.168.0.10:443,
               5 UDP 10.0.0.2:5353, 6 TCP [2001:db8::1]:80
  msort: [1,2,3] (1<2 by protocol, 2<3 by fwmark) and [4,5,6] (4<5 by protocol, 5<6 by
  family); merge: 1 vs 4: ntohl(10.0.0.1) - ntohl(192.168.0.10) wraps positive -> 4 first;
  then 1, 2 (10.0.0.1 < 10.0.0.2), 5, 6 (fwmark 0 < 1), 3.
  Dests of 4 (table order newest first: 172.16.0.1, 10.2.0.1): 0xAC100001 - 0x0A020001 is
  negative as int -> 172.16.0.1 stays first. Dests of 1: 192.168.1.1:80 before .2:8080.
Run: python3 derive.py  (rewrites the *.txt files next to it).
"""
import os

def largenum(i, exact=False):
    if exact:
        n = len("%d" % i)
        return "%*d" % (9 if n <= 8 else n + 1, i)
    if i < 100000000: return "%9d" % i
    if i < 1000000000: return "%8dK" % (i // 1000)
    if i < 100000000000: return "%8dM" % (i // 1000000)
    if i < 100000000000000: return "%8dG" % (i // 1000000000)
    return "%8dT" % (i // 1000000000000)

Z = dict(conns=0, inpkts=0, outpkts=0, inbytes=0, outbytes=0, cps=0, inpps=0, outpps=0, inbps=0, outbps=0)
def st(**kw):
    d = dict(Z); d.update(kw); return d

# (name, sched-line suffix, rule, stats, dests); dest = (name, fwd, weight, u, l, active, inact, persist, stats)
SERVICES = [
    ("TCP  192.168.0.10:443", "wrr persistent 600 mask 255.255.255.0",
     "-A -t 192.168.0.10:443 -s wrr -p 600 -M 255.255.255.0", "-t 192.168.0.10:443", st(),
     [("172.16.0.1:443", "Route", 0, 0, 0, 0, 0, 0, st()),
      ("10.2.0.1:443", "Route", 5, 0, 0, 0, 0, 0, st())]),
    ("TCP  10.0.0.1:80", "wlc persistent 360",
     "-A -t 10.0.0.1:80 -s wlc -p 360", "-t 10.0.0.1:80",
     st(conns=15, inpkts=120, outpkts=100, inbytes=8000, outbytes=123456789012,
        cps=2, inpps=30, outpps=25, inbps=123456789, outbps=1500000000),
     [("192.168.1.1:80", "Masq", 1, 0, 0, 3, 12, 2,
       st(conns=10, inpkts=80, outpkts=70, inbytes=5000, outbytes=100000000000,
          cps=1, inpps=20, outpps=15, inbps=99999999, outbps=100000000)),
      ("192.168.1.2:8080", "Masq", 2, 100, 50, 1, 0, 1,
       st(conns=5, inpkts=40, outpkts=30, inbytes=3000, outbytes=23456789012,
          cps=1, inpps=10, outpps=10, inbps=2000, outbps=4000))]),
    ("UDP  10.0.0.1:53", "rr", "-A -u 10.0.0.1:53 -s rr", "-u 10.0.0.1:53",
     st(conns=7, inpkts=7, outpkts=7, inbytes=420, outbytes=980),
     [("192.168.1.1:53", "Route", 1, 0, 0, 0, 5, 0,
       st(conns=7, inpkts=7, outpkts=7, inbytes=420, outbytes=980))]),
    ("UDP  10.0.0.2:5353", "lc ops", "-A -u 10.0.0.2:5353 -s lc -o", "-u 10.0.0.2:5353", st(),
     [("192.168.1.5:5353", "Masq", 3, 0, 0, 0, 0, 0, st())]),
    ("TCP  [2001:db8::1]:80", "rr", "-A -t [2001:db8::1]:80 -s rr", "-t [2001:db8::1]:80", st(),
     [("[2001:db8::10]:80", "Masq", 1, 0, 0, 0, 0, 0, st())]),
    ("FWM  1", "sh (sh-fallback,sh-port)", "-A -f 1 -s sh -b sh-fallback,sh-port", "-f 1",
     st(inbytes=123456789012345),
     [("192.168.1.3:0", "Tunnel", 1, 0, 0, 0, 0, 0, st(inbytes=123456789012345))]),
]
SWITCH = {"Masq": "-m", "Route": "-g", "Tunnel": "-i"}
HEADER = "IP Virtual Server version %d.%d.%d (size=%d)\n" % (1, 2, 1, 4096)

def title(kind):
    if kind == "stats":
        return "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
    if kind == "rate":
        return "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
    if kind == "thresholds":
        return "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
    if kind == "persistent-conn":
        return "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n" % (
            "Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
    if kind == "tun-info":
        return ("Prot LocalAddress:Port Scheduler Flags\n"
                "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
    return ("Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")

def service(s, kind, exact=False, nosort=False):
    name, sched, _, _, sst, dests = s
    if kind == "stats":
        out = "%-33s" % name + "".join(largenum(sst[k], exact) for k in
                                      ("conns", "inpkts", "outpkts", "inbytes", "outbytes")) + "\n"
    elif kind == "rate":
        out = "%-33s" % name + "".join(largenum(sst[k], exact) for k in
                                      ("cps", "inpps", "outpps", "inbps", "outbps")) + "\n"
    else:
        out = "%s %s\n" % (name, sched)
    for (dn, fwd, w, u, l, act, ina, per, dst) in (reversed(dests) if nosort else dests):
        if kind == "stats":
            out += "  -> %-28s" % dn + "".join(largenum(dst[k], exact) for k in
                                              ("conns", "inpkts", "outpkts", "inbytes", "outbytes")) + "\n"
        elif kind == "rate":
            out += "  -> %-28s %8u %8u %8u" % (dn, dst["cps"], dst["inpps"], dst["outpps"]) + \
                largenum(dst["inbps"], exact) + largenum(dst["outbps"], exact) + "\n"
        elif kind == "thresholds":
            out += "  -> %-28s %-10u %-10u %-10u %-10u\n" % (dn, u, l, act, ina)
        elif kind == "persistent-conn":
            out += "  -> %-28s %-9u %-11u %-10u %-10u\n" % (dn, w, per, act, ina)
        elif kind == "tun-info":
            out += "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n" % (
                dn, fwd, "ipip" if fwd == "Tunnel" else "n/a", w, act, ina)
        else:
            out += "  -> %-28s %-7s %-6d %-10u %-10u\n" % (dn, fwd, w, act, ina)
    return out

def listing(kind, exact=False):
    return HEADER + title(kind) + "".join(service(s, kind, exact) for s in SERVICES)

def save():
    out = ""
    for (_, _, rule, svc, _, dests) in SERVICES:
        out += rule + "\n"
        for (dn, fwd, w, *_rest) in dests:
            line = "-a %s -r %s %s -w %d" % (svc, dn, SWITCH[fwd], w)
            if fwd == "Tunnel":
                line += " --tun-type %s" % "ipip"
            out += line + "\n"
    return out

CONNS = [("TCP", 897, "ESTABLISHED", "10.0.0.2:40000", "10.0.0.1:80", "192.168.1.1:80"),
         ("IP", 359, "NONE", "10.0.0.2:0", "10.0.0.1:80", "192.168.1.1:80"),
         ("UDP", 299, "UDP", "10.0.0.2:5353", "10.0.0.1:53", "192.168.1.1:53"),
         ("TCP", 65, "SYN_RECV", "[2001:db8::99]:1234", "[2001:db8::1]:80", "[2001:db8::10]:80")]

def conns(pc=False):
    out = "IPVS connection entries\n"
    if pc:
        out += "pro expire %-11s %-18s %-18s %-18s %-16s %s\n" % (
            "state", "source", "virtual", "destination", "pe name", "pe_data")
    else:
        out += "pro expire %-11s %-18s %-18s %s\n" % ("state", "source", "virtual", "destination")
    for (p, e, s, c, v, d) in CONNS:
        out += "%-3s %-6s %-11s %-18s %-18s %s\n" % (p, "%02d:%02d" % (e // 60, e % 60), s, c, v, d)
    return out

FILES = {
    "list_n.txt": listing("plain"),
    "list_stats.txt": listing("stats"),
    "list_stats_exact.txt": listing("stats", exact=True),
    "list_rate.txt": listing("rate"),
    "list_thresholds.txt": listing("thresholds"),
    "list_persistent_conn.txt": listing("persistent-conn"),
    "list_tun_info.txt": listing("tun-info"),
    "list_service.txt": title("plain") + service(SERVICES[1], "plain"),
    "list_nosort_tcp80.txt": title("plain") + service(SERVICES[1], "plain", nosort=True),
    "list_conn.txt": conns(),
    "list_conn_persistent.txt": conns(pc=True),
    "timeout.txt": "Timeout (tcp tcpfin udp): %d %d %d\n" % (1000, 120, 60),
    "save.txt": save(),
}

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    for name, text in FILES.items():
        with open(os.path.join(here, name), "w") as f:
            f.write(text)
