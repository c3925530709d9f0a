#!/usr/bin/env bash
# E2E, reconfiguration under traffic (issue 6): while a rate-limited 10 MB download runs, the
# rules change again and again: another service is added (and takes new connections) and
# removed, a real server is added to and removed from the download's service, the download's
# own real server gets new weights, the other one is removed and re-added, the service's
# scheduler changes (rr -> wlc -> sh -> wrr) and a UDP service comes and goes. The download
# completes with the right sha256, its connection entry keeps its real server, and only that
# real server ever saw the request (no established flow dropped or re-scheduled).
set -euo pipefail
TOPO_PREFIX=e2e-rcf
# shellcheck source=lib/e2e.sh
source "$(dirname "$0")/lib/e2e.sh"

step "NAT topology, director, TCP $VIP:80 rr over rs1, rs2"
e2e_up nat
ipvsadm -A -t "$VIP:80" -s rr
ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -m
ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -m

step "a long download, and the rules changing under it"
e2e_slow_download 2000000 "$WORK/slow.bin" # 10 MiB at 2 MB/s: about 5 s
port=$(e2e_client_port 80)
dest=$(e2e_conn_dest "$port")
case $dest in
    "$RS1_IP:80") x=1 xip=$RS1_IP yip=$RS2_IP ;;
    "$RS2_IP:80") x=2 xip=$RS2_IP yip=$RS1_IP ;;
    *) fail "no connection entry for the download from client port '$port' (got '$dest')" ;;
esac
ok "the download (client port $port) is established on rs$x ($dest)"
rounds=0 overlapped=0 new_ok=0
while [ "$rounds" -lt 4 ] && kill -0 "$E2E_DL_PID" 2>/dev/null; do
    ipvsadm -A -t "$VIP:8080" -s rr
    ipvsadm -a -t "$VIP:8080" -r "$RS1_IP:80" -m
    ipvsadm -a -t "$VIP:8080" -r "$RS2_IP:80" -m -w 2
    ipvsadm -A -u "$VIP:5000" -s rr
    ipvsadm -a -u "$VIP:5000" -r "$RS1_IP:5000" -m
    ipvsadm -E -t "$VIP:80" -s wlc
    ipvsadm -e -t "$VIP:80" -r "$xip:80" -m -w 5
    ipvsadm -a -t "$VIP:80" -r "$RS2_IP:8081" -m -w 0
    [ -n "$(client_get :8080/)" ] && new_ok=$((new_ok + 1))
    ipvsadm -d -t "$VIP:80" -r "$yip:80"
    ipvsadm -E -t "$VIP:80" -s sh
    ipvsadm -e -t "$VIP:80" -r "$xip:80" -m -w 1
    ipvsadm -d -t "$VIP:80" -r "$RS2_IP:8081"
    [ -n "$(client_get :8080/)" ] && new_ok=$((new_ok + 1))
    ipvsadm -a -t "$VIP:80" -r "$yip:80" -m
    ipvsadm -E -t "$VIP:80" -s wrr
    ipvsadm -D -u "$VIP:5000"
    ipvsadm -D -t "$VIP:8080"
    rounds=$((rounds + 1))
    if kill -0 "$E2E_DL_PID" 2>/dev/null; then overlapped=$rounds; fi
done
check "$overlapped round(s) of 16 rule changes done while the download ran" [ "$overlapped" -ge 1 ]
expect_eq "$new_ok" $((2 * rounds)) "new connections to the service added meanwhile that were answered"
wait "$E2E_DL_PID" || fail "the download failed"
expect_eq "$(sha256sum "$WORK/slow.bin" | cut -d' ' -f1)" "$BIG_SHA" "sha256 of the download"
expect_eq "$(e2e_conn_dest "$port")" "$dest" "its connection entry still points to"
expect_eq "$(e2e_web_hits 1 /big.bin)+$(e2e_web_hits 2 /big.bin)" \
    "$([ "$x" = 1 ] && echo 1+0 || echo 0+1)" "requests for /big.bin seen by rs1+rs2 (one, on rs$x)"
ipvsadm -L -n | sed 's/^/     /'
