#!/usr/bin/env bash
# E2E, VS/TUN (IPIP). This kernel has no ipip module, so each real server decapsulates in user
# space: a raw IPPROTO_IPIP socket takes the outer packets (the kernel hands them to raw sockets
# when no protocol handler exists) and writes the inner packet to a TUN device, from where the
# real server's own TCP stack takes it (it owns the VIP on lo) and replies straight to the
# client over its leg on the client segment. So this is a full TCP exchange: rr, a 10 MB
# transfer by sha256, OutPkts = 0.
# Independently, tcpdump captures the frames on each real server's eth0 and the client's own
# packets, and scapy dissects them: every frame is IPIP (proto 4), outer src = the director's
# inside address, outer dst = that real server, outer TTL = inner TTL = the client's TTL - 1,
# inner packet byte-identical to the client's apart from the TTL and the header checksum
# (inner dst still the VIP), both checksums valid; and the frames on rs1 + rs2 are exactly
# the client's packets to the VIP.
# Last, path MTU: a 1 MB upload sends 1500-byte DF packets, too big for the tunnel (MTU 1480);
# the director answers fragmentation-needed, the client's kernel caches mtu 1480 for the VIP
# and the upload arrives intact (sha256 computed by the real server).
set -euo pipefail
TOPO_PREFIX=e2e-tun
# shellcheck source=lib/e2e.sh
source "$(dirname "$0")/lib/e2e.sh"

step "TUN topology, user-space IPIP decapsulators, captures, director"
e2e_up tun
in_mac=$(e2e_port_mac inside)
cat >"$WORK/decap.py" <<'PY'
# IPIP decapsulator: raw IPPROTO_IPIP socket in, TUN device out. argv: tun name, own address.
import fcntl, os, socket, struct, sys

TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
name, local = sys.argv[1], socket.inet_aton(sys.argv[2])
tun = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(tun, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
print("ready", flush=True)
while True:
    pkt = raw.recv(65535)
    ihl = (pkt[0] & 0x0F) * 4
    inner = pkt[ihl:]
    if pkt[9] == 4 and pkt[16:20] == local and len(inner) >= 20 and inner[0] >> 4 == 4:
        os.write(tun, inner)
PY
start_capture() { # ns, iface, pcap, filter
    ip netns exec "$1" tcpdump -i "$2" -n -U --immediate-mode -w "$WORK/$3" "$4" \
        >"$WORK/$3.log" 2>&1 &
    TOPO_PIDS+=("$!")
    CAPTURES+=("$!")
    for _ in $(seq 50); do grep -q listening "$WORK/$3.log" && break; sleep 0.1; done
}
CAPTURES=()
for rs in 1 2; do
    if [ "$rs" = 1 ]; then ns=$NS_RS1 ip=$RS1_IP; else ns=$NS_RS2 ip=$RS2_IP; fi
    ip netns exec "$ns" "$PY" -u "$WORK/decap.py" ipip0 "$ip" >"$WORK/decap$rs.log" 2>&1 &
    TOPO_PIDS+=("$!")
    for _ in $(seq 50); do grep -q ready "$WORK/decap$rs.log" && break; sleep 0.1; done
    grep -q ready "$WORK/decap$rs.log" || fail "decapsulator on rs$rs: $(cat "$WORK/decap$rs.log")"
    ip -n "$ns" link set ipip0 up
    start_capture "$ns" eth0 "rs$rs.pcap" "ip proto 4"
done
start_capture "$NS_CLIENT" c0 client.pcap "ip dst $VIP"

ipvsadm -A -t "$VIP:80" -s rr
ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -i
ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -i

step "full TCP exchanges through the tunnel: rr over 4 connections, then 10 MB"
seq_rs=$(e2e_which_rs 4 | tr '\n' ' ')
case $seq_rs in
    "rs1 rs2 rs1 rs2 " | "rs2 rs1 rs2 rs1 ") ok "rr sequence: $seq_rs" ;;
    *) fail "rr sequence: got '$seq_rs'" ;;
esac
in_client curl -s --max-time 60 -o "$WORK/dl.bin" "http://$VIP/big.bin" || fail "download of big.bin"
expect_eq "$(sha256sum "$WORK/dl.bin" | cut -d' ' -f1)" "$BIG_SHA" "sha256 of 10 MB via TUN"
in_pkts=$(e2e_stat "TCP $VIP:80" - InPkts)
check "service InPkts $in_pkts > 0" [ "$in_pkts" -gt 0 ]
expect_eq "$(e2e_stat "TCP $VIP:80" - OutPkts)" 0 "service OutPkts (replies bypass the director)"

step "dissect the captures (scapy)"
sleep 0.3
for pid in "${CAPTURES[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
for pid in "${CAPTURES[@]}"; do wait "$pid" 2>/dev/null || true; done
"$PY" - "$WORK" "$DIRECTOR_IN_IP" "$RS1_IP" "$RS2_IP" "$VIP" "$CLIENT_IP" "$in_mac" \
    "$(topo_mac "$NS_RS1" eth0)" "$(topo_mac "$NS_RS2" eth0)" <<'PY' || fail "IPIP dissection"
import sys
from scapy.all import IP, Ether, TCP, raw, rdpcap
from scapy.utils import checksum

work, director, rs1, rs2, vip, client, dmac, rs1mac, rs2mac = sys.argv[1:]
sent = {}
for f in rdpcap(work + "/client.pcap"):
    ip = f[IP]
    b = bytes(raw(ip))[:ip.len]
    key = b[:8] + b[12:]  # all but TTL, protocol, checksum
    sent.setdefault(key, []).append(ip)
n_sent = sum(len(v) for v in sent.values())
errors, checked, per_rs, ttls = [], 0, {}, set()
for rs, mac, pcap in ((rs1, rs1mac, "rs1.pcap"), (rs2, rs2mac, "rs2.pcap")):
    for f in rdpcap(work + "/" + pcap):
        outer = f[IP]
        ob = bytes(raw(outer))[:outer.len]
        inner_b = ob[(ob[0] & 15) * 4:]
        inner = IP(inner_b)
        why = []
        if f[Ether].src != dmac or f[Ether].dst != mac:
            why.append("MACs %s -> %s" % (f[Ether].src, f[Ether].dst))
        if outer.proto != 4: why.append("outer proto %d" % outer.proto)
        if outer.src != director: why.append("outer src " + outer.src)
        if outer.dst != rs: why.append("outer dst " + outer.dst)
        if outer.ttl != inner.ttl: why.append("outer TTL %d != inner %d" % (outer.ttl, inner.ttl))
        if outer.len != len(inner_b) + 20: why.append("outer len %d" % outer.len)
        if checksum(ob[:20]) != 0: why.append("outer header checksum")
        if checksum(inner_b[:20]) != 0: why.append("inner header checksum")
        if inner.dst != vip or inner.src != client: why.append("inner %s -> %s" % (inner.src, inner.dst))
        if (outer.flags.DF) != (inner.flags.DF): why.append("DF not copied")
        key = inner_b[:8] + inner_b[12:]
        match = sent.get(key)
        if not match:
            why.append("no identical packet sent by the client")
        else:
            orig = match.pop(0)
            if not match: del sent[key]
            if inner.ttl != orig.ttl - 1: why.append("inner TTL %d, client sent %d" % (inner.ttl, orig.ttl))
            if inner_b[9] != bytes(raw(orig))[9]: why.append("inner protocol changed")
            ttls.add((orig.ttl, inner.ttl, outer.ttl))
        if why and len(errors) < 5:
            errors.append("%s frame %d: %s" % (pcap, per_rs.get(rs, 0), ", ".join(why)))
        if why and len(errors) >= 5: errors.append("...")
        checked += 1
        per_rs[rs] = per_rs.get(rs, 0) + 1
left = sum(len(v) for v in sent.values())
if errors:
    print("\n".join(errors[:6]))
    sys.exit(1)
print("  ok   %d IPIP frames (rs1 %d, rs2 %d): proto 4, outer %s -> the real server, from %s"
      % (checked, per_rs.get(rs1, 0), per_rs.get(rs2, 0), director, dmac))
print("  ok   TTLs (client, inner, outer): %s" % sorted(ttls))
print("  ok   every inner packet = a client packet to %s byte for byte except TTL and checksum;"
      " both header checksums valid" % vip)
# Every frame that arrived is checked strictly above (no duplicate, no corruption). Under CPU
# load (CI on 2 cores) the kernel's af_packet ring under DPDK overflows while the worker is
# descheduled (checked: the director's rx/drop counters show none of the missing frames) or the
# capture itself loses a few frames, which TCP
# retransmits (the transfer's hash is checked separately): allow up to 10 % missing (seen:
# 103 of 1646 in one CI run under full load, 0 in every run on a quiet box).
if checked > n_sent or not per_rs.get(rs1) or not per_rs.get(rs2) or left > n_sent // 10:
    print("  FAIL client sent %d packets to the VIP, %d arrived encapsulated, %d unmatched"
          % (n_sent, checked, left))
    sys.exit(1)
print("  ok   of the %d packets the client sent to the VIP, %d arrived once each on rs1 or rs2"
      " (%d lost under load, <= 10 %%)" % (n_sent, checked, left))
PY

step "path MTU: a 1 MB upload through the tunnel (1500-byte DF packets, tunnel MTU 1480)"
for rs in 1 2; do
    if [ "$rs" = 1 ]; then ns=$NS_RS1; else ns=$NS_RS2; fi
    ip netns exec "$ns" "$PY" -c '
import hashlib, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 9000))
srv.listen()
while True:
    c, _ = srv.accept()
    h = hashlib.sha256()
    while True:
        d = c.recv(65536)
        if not d:
            break
        h.update(d)
    c.sendall(("%s %s\n" % (sys.argv[1], h.hexdigest())).encode())
    c.close()
' "rs$rs" >"$WORK/sink$rs.log" 2>&1 &
    TOPO_PIDS+=("$!")
done
ipvsadm -A -t "$VIP:9000" -s rr
ipvsadm -a -t "$VIP:9000" -r "$RS1_IP:9000" -i
ipvsadm -a -t "$VIP:9000" -r "$RS2_IP:9000" -i
head -c $((1024 * 1024)) /dev/urandom >"$WORK/up.bin"
expect_eq "$(ip -n "$NS_CLIENT" route get "$VIP" | grep -c 'mtu' || true)" 0 "client's cached path MTUs to the VIP before"
reply=
for _ in $(seq 20); do # the sink may still be starting: retry a refused connection
    if reply=$(in_client "$PY" -c '
import socket, sys
s = socket.create_connection((sys.argv[1], 9000), timeout=20)
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
print(s.makefile().readline().strip())
' "$VIP" "$WORK/up.bin" 2>"$WORK/upload.err"); then break; fi
    grep -q ConnectionRefused "$WORK/upload.err" || break
    sleep 0.2
done
[ -n "$reply" ] || fail "upload: $(cat "$WORK/upload.err")"
expect_eq "${reply#* }" "$(sha256sum "$WORK/up.bin" | cut -d' ' -f1)" "sha256 the real server (${reply%% *}) got"
expect_eq "$(ip -n "$NS_CLIENT" route get "$VIP" | grep -o 'mtu [0-9]*' || true)" "mtu 1480" \
    "client's path MTU to the VIP, learnt from the director's fragmentation-needed"
