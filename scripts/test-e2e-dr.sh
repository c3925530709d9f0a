#!/usr/bin/env bash
# E2E, VS/DR (gatewaying): the real servers own the VIP on lo (arp_ignore=1, arp_announce=2)
# and answer the client straight over their leg on the client segment. Checks rr, a 10 MB
# transfer by sha256, that the director saw only inbound packets (OutPkts = 0, InPkts > 0),
# and, from a capture on the client, that every reply came from a real server's MAC and none
# from the director's.
set -euo pipefail
TOPO_PREFIX=e2e-dr
# shellcheck source=lib/e2e.sh
source "$(dirname "$0")/lib/e2e.sh"

step "DR topology (client segment on a bridge with the real servers' second legs), director"
e2e_up dr
out_mac=$(e2e_port_mac outside)
rs1_mac=$(topo_mac "$NS_RS1" eth1)
rs2_mac=$(topo_mac "$NS_RS2" eth1)
# Headers of every packet the client receives from the VIP (snaplen 64: MACs and IP are enough).
ip netns exec "$NS_CLIENT" tcpdump -i c0 -n -s 64 -U --immediate-mode -w "$WORK/client.pcap" \
    "tcp and src host $VIP" >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
TOPO_PIDS+=("$TCPDUMP_PID")
for _ in $(seq 50); do grep -q listening "$WORK/tcpdump.log" && break; sleep 0.1; done

ipvsadm -A -t "$VIP:80" -s rr
ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -g
ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -g

step "rr over 4 connections, then 10 MB"
seq_rs=$(e2e_which_rs 4 | tr '\n' ' ')
case $seq_rs in
    "rs1 rs2 rs1 rs2 " | "rs2 rs1 rs2 rs1 ") ok "rr sequence: $seq_rs" ;;
    *) fail "rr sequence: got '$seq_rs'" ;;
esac
in_client curl -s --max-time 60 -o "$WORK/dl.bin" "http://$VIP/big.bin" || fail "download of big.bin"
expect_eq "$(sha256sum "$WORK/dl.bin" | cut -d' ' -f1)" "$BIG_SHA" "sha256 of 10 MB via DR"

step "the director saw only the inbound half"
in_pkts=$(e2e_stat "TCP $VIP:80" - InPkts)
out_pkts=$(e2e_stat "TCP $VIP:80" - OutPkts)
ipvsadm -L -n --stats --exact | sed 's/^/     /'
check "service InPkts $in_pkts > 0" [ "$in_pkts" -gt 0 ]
expect_eq "$out_pkts" 0 "service OutPkts"
expect_eq "$(e2e_stat "TCP $VIP:80" "$RS1_IP:80" OutPkts)/$(e2e_stat "TCP $VIP:80" "$RS2_IP:80" OutPkts)" \
    0/0 "OutPkts of rs1/rs2"
expect_eq "$(ip -n "$NS_CLIENT" neigh show "$VIP" dev c0 | awk '{ print $3 }')" "$out_mac" \
    "client's neighbour entry for the VIP (the director's outside port)"

sleep 0.3
kill -INT "$TCPDUMP_PID" 2>/dev/null || true
wait "$TCPDUMP_PID" 2>/dev/null || true
# "<src mac> <dst mac>" of each reply frame, counted.
macs=$(tcpdump -r "$WORK/client.pcap" -n -e 2>/dev/null | awk '{ print $2 }' | sort | uniq -c)
echo "$macs" | awk '{ printf "     %6d replies from MAC %s\n", $1, $2 }'
total=$(echo "$macs" | awk '{ s += $1 } END { print s + 0 }')
from_rs=$(echo "$macs" | awk -v a="$rs1_mac" -v b="$rs2_mac" '$2 == a || $2 == b { s += $1 } END { print s + 0 }')
from_rs1=$(echo "$macs" | awk -v a="$rs1_mac" '$2 == a { print $1 }')
from_rs2=$(echo "$macs" | awk -v a="$rs2_mac" '$2 == a { print $1 }')
check "client captured $total frames from the VIP (> 1000)" [ "$total" -gt 1000 ]
expect_eq "$from_rs" "$total" "frames from the VIP sent by rs1 ($rs1_mac) or rs2 ($rs2_mac), none by the director ($out_mac)"
check "both real servers answered directly (rs1 ${from_rs1:-0}, rs2 ${from_rs2:-0} frames)" \
    [ "${from_rs1:-0}" -gt 0 -a "${from_rs2:-0}" -gt 0 ]
