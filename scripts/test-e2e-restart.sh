#!/usr/bin/env bash
# E2E, failure: the director is killed with SIGKILL and started again with the same config and
# the rules saved before with `ipvsadm -S` (director --rules FILE). The VIP stops answering while
# it is down, new connections work again within seconds of the restart, the restored rules are
# the saved ones, and at the end nothing is left behind (the trap checks namespaces, processes,
# the control socket and DPDK runtime files, the killed daemon's included).
set -euo pipefail
TOPO_PREFIX=e2e-rst
# shellcheck source=lib/e2e.sh
source "$(dirname "$0")/lib/e2e.sh"

step "NAT topology, director, rules"
e2e_up nat
ipvsadm -A -t "$VIP:80" -s wrr
ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -m
ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -m -w 2
ipvsadm -A -t "$VIP:8080" -s wlc -p 300
ipvsadm -a -t "$VIP:8080" -r "$RS1_IP:80" -m -w 3
ipvsadm -A -u "$VIP:5000" -s sh
ipvsadm -a -u "$VIP:5000" -r "$RS2_IP:5000" -m
check "the VIP answers before the crash" [ -n "$(client_get /)" ]
ipvsadm -S -n >"$WORK/rules"
sed 's/^/     /' "$WORK/rules"

step "kill -9 the director"
old_pid=$DIRECTOR_PID
kill -9 "$old_pid"
wait "$old_pid" 2>/dev/null || true
DIRECTOR_PID=
expect_eq "$(kill -0 "$old_pid" 2>/dev/null && echo alive || echo gone)" gone "director $old_pid after SIGKILL"
expect_eq "$(ip netns pids "$NS_DIRECTOR" | wc -l)" 0 "processes left in the director's namespace"
if in_client curl -s --max-time 2 -o /dev/null "http://$VIP/"; then
    fail "the VIP answered with the director dead"
else
    ok "the VIP does not answer while the director is down"
fi
if [ -S "$SOCK" ]; then echo "     (the dead daemon left its control socket behind: stale)"; fi

step "restart with the same config and --rules $WORK/rules"
DLOG=$WORK/director-restarted.log
t0=$(date +%s%N)
topo_start_director "$BIN" "$CONF" "$DLOG" --rules "$WORK/rules"
answered=
for _ in $(seq 150); do
    if page=$(in_client curl -s --max-time 1 "http://$VIP/") && [ -n "$page" ]; then
        answered=$(( ($(date +%s%N) - t0) / 1000000 ))
        break
    fi
    sleep 0.1
done
# The issue asks for "within seconds": 15 s is the deadline, the measured time is printed.
check "a new connection through the VIP answered ${answered:-never} ms after the restart began (deadline 15 s)" \
    [ -n "$answered" ]
expect_eq "$(ipvsadm -S -n | md5sum | cut -d' ' -f1)" "$(md5sum <"$WORK/rules" | cut -d' ' -f1)" \
    "md5 of ipvsadm -S -n after the restart = md5 of the saved rules"
seq_rs=$(e2e_which_rs 6 :8080/ | sort | uniq -c | awk '{ printf "%s x%s ", $2, $1 }')
expect_eq "$seq_rs" "rs1 x6 " "restored :8080 (persistent, only rs1) serves 6 connections from"
seq_rs=$(e2e_which_rs 6 | sort | uniq -c | awk '{ printf "%s x%s ", $2, $1 }')
expect_eq "$seq_rs" "rs1 x2 rs2 x4 " "restored :80 (wrr, weights 1:2) over 6 connections"
