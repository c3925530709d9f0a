#!/usr/bin/env bash
# E2E, VS/NAT: TCP (pages, a 10 MB transfer checked by sha256) and UDP (echo) through the VIP,
# ICMP (echo to the director and the VIP, a real server's port unreachable and RST relayed),
# ARP (the client learns the VIP from the director; the director resolves the real servers
# itself), rr alternation, wlc with weights 3:1 over 100 connections, weight 0 (no new
# connections, the established one completes) and a removed real server.
set -euo pipefail
TOPO_PREFIX=e2e-nat
# shellcheck source=lib/e2e.sh
source "$(dirname "$0")/lib/e2e.sh"

step "NAT topology, web servers, UDP echo servers, director"
e2e_up nat
for rs in 1 2; do
    if [ "$rs" = 1 ]; then ns=$NS_RS1; else ns=$NS_RS2; fi
    ip netns exec "$ns" "$PY" -c '
import socket, sys
name = sys.argv[1].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5000))
while True:
    data, addr = s.recvfrom(2048)
    s.sendto(name + b":" + data, addr)
' "rs$rs" >"$WORK/udp$rs.log" 2>&1 &
    TOPO_PIDS+=("$!")
done
# The director must find rs1's MAC by itself: capture ARP on rs1's side from the start.
ip netns exec "$NS_RS1" tcpdump -i eth0 -n -U --immediate-mode -w "$WORK/rs1-arp.pcap" arp >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
TOPO_PIDS+=("$TCPDUMP_PID")
for _ in $(seq 50); do grep -q listening "$WORK/tcpdump.log" && break; sleep 0.1; done

ipvsadm -A -t "$VIP:80" -s rr
ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -m
ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -m
ipvsadm -A -u "$VIP:5000" -s rr
ipvsadm -a -u "$VIP:5000" -r "$RS1_IP:5000" -m
ipvsadm -a -u "$VIP:5000" -r "$RS2_IP:5000" -m

step "TCP: rr alternation over 6 connections"
seq_rs=$(e2e_which_rs 6 | tr '\n' ' ')
case $seq_rs in
    "rs1 rs2 rs1 rs2 rs1 rs2 " | "rs2 rs1 rs2 rs1 rs2 rs1 ") ok "rr sequence: $seq_rs" ;;
    *) fail "rr sequence: got '$seq_rs', want rs1/rs2 alternating 6 times" ;;
esac

step "ARP"
out_mac=$(e2e_port_mac outside)
in_mac=$(e2e_port_mac inside)
expect_eq "$out_mac" "$(topo_mac "$NS_DIRECTOR" d-out)" "director outside port MAC = d-out's MAC"
vip_mac=$(ip -n "$NS_CLIENT" neigh show "$VIP" dev c0 | awk '{ print $3 }')
expect_eq "$vip_mac" "$out_mac" "client's neighbour entry for the VIP $VIP (ip neigh)"
sleep 0.3
kill -INT "$TCPDUMP_PID" 2>/dev/null || true
wait "$TCPDUMP_PID" 2>/dev/null || true
who_has=$(tcpdump -r "$WORK/rs1-arp.pcap" -n -e 2>/dev/null \
    | grep -c "^[0-9:.]* $in_mac > ff:ff:ff:ff:ff:ff, .*Request who-has $RS1_IP tell $DIRECTOR_IN_IP" || true)
if [ "$who_has" -ge 1 ]; then
    ok "director resolved rs1 itself: $who_has ARP request(s) 'who-has $RS1_IP tell $DIRECTOR_IN_IP' from $in_mac (no static neighbours in the config)"
else
    tcpdump -r "$WORK/rs1-arp.pcap" -n -e 2>/dev/null || true
    fail "no ARP request from the director ($in_mac) for $RS1_IP seen on rs1"
fi

step "TCP: 10 MB transfer"
in_client curl -s --max-time 60 -o "$WORK/dl.bin" "http://$VIP/big.bin" || fail "download of big.bin"
expect_eq "$(sha256sum "$WORK/dl.bin" | cut -d' ' -f1)" "$BIG_SHA" "sha256 of 10 MB via the VIP"
in_pkts=$(e2e_stat "TCP $VIP:80" - InPkts)
out_pkts=$(e2e_stat "TCP $VIP:80" - OutPkts)
out_bytes=$(e2e_stat "TCP $VIP:80" - OutBytes)
if [ "$in_pkts" -gt 0 ] && [ "$out_pkts" -gt 0 ] && [ "$out_bytes" -gt $((10 * 1024 * 1024)) ]; then
    ok "NAT stats: InPkts $in_pkts, OutPkts $out_pkts, OutBytes $out_bytes > 10 MiB (replies go through the director)"
else
    fail "NAT stats: InPkts $in_pkts OutPkts $out_pkts OutBytes $out_bytes"
fi

step "UDP: echo through $VIP:5000 (4 clients x 2 datagrams)"
udp_out=$(in_client "$PY" -c '
import socket, sys
vip = sys.argv[1]
for i in range(4):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    names = []
    for j in range(2):
        msg = ("ping %d.%d" % (i, j)).encode()
        s.sendto(msg, (vip, 5000))
        data, src = s.recvfrom(2048)
        name, _, echoed = data.partition(b":")
        assert echoed == msg, (echoed, msg)
        names.append(name.decode())
    print(names[0], names[1], "%s:%d" % src)
    s.close()
' "$VIP")
printf '     %s\n' "${udp_out//$'\n'/$'\n'     }"
expect_eq "$(echo "$udp_out" | awk '{ print $3 }' | sort -u)" "$VIP:5000" \
    "source of every echo (payload checked by the client)"
expect_eq "$(echo "$udp_out" | awk '$1 != $2' | wc -l)" 0 \
    "clients whose 2 datagrams went to different real servers"
udp_seq=$(echo "$udp_out" | awk '{ printf "%s ", $1 }')
case $udp_seq in
    "rs1 rs2 rs1 rs2 " | "rs2 rs1 rs2 rs1 ") ok "UDP rr sequence: $udp_seq" ;;
    *) fail "UDP rr sequence: got '$udp_seq'" ;;
esac

step "ICMP and refusals through NAT"
# -c 2 with a deadline (-w): exit 0 only when both replies came.
pings() { in_client ping -q -c 2 -i 0.2 -w 3 "$1" >/dev/null; }
check "ping the director's outside address $DIRECTOR_OUT_IP: 2 of 2 answered" pings "$DIRECTOR_OUT_IP"
check "ping the VIP $VIP: 2 of 2 answered" pings "$VIP"
ipvsadm -A -t "$VIP:82" -s rr
ipvsadm -a -t "$VIP:82" -r "$RS1_IP:82" -m
ipvsadm -A -u "$VIP:83" -s rr
ipvsadm -a -u "$VIP:83" -r "$RS1_IP:83" -m
rc=0
in_client curl -s --max-time 3 "http://$VIP:82/" || rc=$?
expect_eq "$rc" 7 "curl exit status for $VIP:82 -> rs1:82, nothing listening (7: refused, the RST came back through the director)"
# One UDP datagram from the client to $VIP:$1: "refused" (an ICMP port unreachable that
# quotes it came back), "answered" or "timeout".
udp_probe() {
    in_client "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(3)
s.send(b"x")
try:
    s.recv(16)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("timeout")
' "$VIP" "$1"
}
# The client's kernel reports the port unreachable only if the ICMP error quotes its own
# datagram (client -> VIP:83): the director must translate the quoted header as well.
refused=$(udp_probe 83)
expect_eq "$refused" refused "UDP to $VIP:83 -> rs1:83, nothing listening (rs1's port unreachable, translated back)"
# No service at all on $VIP:84: the director answers as its host kernel would (a reset,
# ICMP port unreachable), so the client is refused at once instead of timing out.
rc=0
in_client curl -s --max-time 3 "http://$VIP:84/" || rc=$?
expect_eq "$rc" 7 "curl exit status for $VIP:84, no virtual service (7: refused by the director's reset)"
refused=$(udp_probe 84)
expect_eq "$refused" refused "UDP to $VIP:84, no virtual service (the director's port unreachable)"

step "wlc, weights 3:1, 100 sequential connections ($VIP:8080 -> :80)"
ipvsadm -A -t "$VIP:8080" -s wlc
ipvsadm -a -t "$VIP:8080" -r "$RS1_IP:80" -m -w 3
ipvsadm -a -t "$VIP:8080" -r "$RS2_IP:80" -m -w 1
wlc=$(e2e_which_rs 100 :8080/)
n1=$(grep -c '^rs1$' <<<"$wlc" || true)
n2=$(grep -c '^rs2$' <<<"$wlc" || true)
expect_eq "$((n1 + n2))" 100 "answers over 100 connections"
# wlc sends a new connection to the least (256 * active + inactive) / weight. One at a time,
# each connection is closed (inactive) before the next, so the split is 75:25 up to ties;
# +-3 allows for a connection whose close the director had not yet seen when the next SYN
# came (it then counts as active, 256x heavier, and shifts a pick or two).
if [ "$n1" -ge 72 ] && [ "$n1" -le 78 ]; then
    ok "wlc split rs1:rs2 = $n1:$n2 (weights 3:1, want 75:25 +-3)"
else
    fail "wlc split rs1:rs2 = $n1:$n2, want 75:25 +-3"
fi
expect_eq "$(e2e_stat "TCP $VIP:8080" "$RS1_IP:80" Conns)" "$n1" "director's Conns for rs1 on :8080"
expect_eq "$(e2e_stat "TCP $VIP:8080" "$RS2_IP:80" Conns)" "$n2" "director's Conns for rs2 on :8080"

step "weight 0: no new connections, the established one completes"
e2e_slow_download 2500000 "$WORK/slow.bin" # 10 MiB at 2.5 MB/s: about 4 s
port=$(e2e_client_port 80)
dest=$(e2e_conn_dest "$port")
case $dest in
    "$RS1_IP:80") x=1 xip=$RS1_IP y=2 yip=$RS2_IP ;;
    "$RS2_IP:80") x=2 xip=$RS2_IP y=1 yip=$RS1_IP ;;
    *) fail "no connection entry for the download from client port '$port' (got '$dest')" ;;
esac
ok "the download (client port $port) is established on rs$x ($dest)"
ipvsadm -e -t "$VIP:80" -r "$xip:80" -m -w 0
ipvsadm -L -n -t "$VIP:80" | sed 's/^/     /'
hits_before=$(e2e_web_hits "$x" /)
zero=$(e2e_which_rs 10)
expect_eq "$(grep -c "^rs$y\$" <<<"$zero" || true)" 10 "new connections on rs$y after rs$x got weight 0 (of 10)"
expect_eq "$(e2e_web_hits "$x" /)" "$hits_before" "requests for / in rs$x's log after weight 0 (unchanged)"
check "the download was still running after the weight-0 checks" kill -0 "$E2E_DL_PID"
wait "$E2E_DL_PID" || fail "the download on the weight-0 server failed"
expect_eq "$(sha256sum "$WORK/slow.bin" | cut -d' ' -f1)" "$BIG_SHA" "sha256 of the download that ran on the weight-0 rs$x"
expect_eq "$(e2e_conn_dest "$port")" "$dest" "its connection entry still points to"

step "a removed real server stops getting traffic"
ipvsadm -e -t "$VIP:80" -r "$xip:80" -m -w 1
ipvsadm -d -t "$VIP:80" -r "$yip:80"
expect_eq "$(ipvsadm -L -n -t "$VIP:80" | grep -c -- "-> $yip:80" || true)" 0 "rs$y listed in TCP $VIP:80 after ipvsadm -d"
hits_before=$(e2e_web_hits "$y" /)
removed=$(e2e_which_rs 6)
expect_eq "$(grep -c "^rs$x\$" <<<"$removed" || true)" 6 "new connections on rs$x after removing rs$y (of 6)"
expect_eq "$(e2e_web_hits "$y" /)" "$hits_before" "requests for / in rs$y's log after its removal (unchanged)"
