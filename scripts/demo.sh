#!/usr/bin/env bash
# The classic LVS walkthrough on one machine: a client, a director running on DPDK virtual
# ports (net_af_packet over veth), and two web servers, in network namespaces. The director is
# configured with ipvsadm's own commands (VS/NAT, rr); the client browses the VIP and the two
# servers take turns; then the counters, a Prometheus scrape and a Prometheus query.
#
# Usage: scripts/demo.sh [N]   (N requests, default 6). Run as root (make demo does the set-up).
# Everything it creates is removed on exit, Ctrl-C or failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-6}
BIN=${BIN:-$ROOT/target/release}
TOPO_PREFIX=${TOPO_PREFIX:-lvsdemo}
# shellcheck source=lib/topology.sh
source "$ROOT/scripts/lib/topology.sh"

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
for b in director director-cli; do
    [ -x "$BIN/$b" ] || { echo "demo: $BIN/$b missing: run 'make build' first" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/director-demo.XXXXXX)
SOCK=$WORK/director.sock
METRICS=127.0.0.1:9800
PROM_PID=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    topo_stop_director || true
    [ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null || true
    topo_down
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The walkthrough's ipvsadm, pointed at our daemon. An `ipvsadm` symlink makes it literal.
mkdir -p "$WORK/bin"
ln -s "$BIN/director-cli" "$WORK/bin/ipvsadm"
export PATH="$WORK/bin:$PATH" DIRECTOR_SOCKET=$SOCK
run() { printf '\033[36m# %s\033[0m\n' "$*"; "$@"; }

topo_log "network namespaces: client, director (DPDK), rs1, rs2"
topo_up nat
topo_start_web "$WORK"
topo_director_config "$WORK/director.toml" "$SOCK" "$METRICS"
topo_log "director on net_af_packet0 (outside, $DIRECTOR_OUT_IP) and net_af_packet1 (inside, $DIRECTOR_IN_IP)"
topo_start_director "$BIN" "$WORK/director.toml" "$WORK/director.log"

topo_log "configure the virtual service with ipvsadm (VIP $VIP:80 -> rs1, rs2; NAT, round robin)"
run ipvsadm -C
run ipvsadm -A -t "$VIP:80" -s rr
run ipvsadm -a -t "$VIP:80" -r "$RS1_IP:80" -m -w 1
run ipvsadm -a -t "$VIP:80" -r "$RS2_IP:80" -m -w 1
run ipvsadm

if command -v prometheus >/dev/null; then
    topo_log "a real Prometheus server scrapes the director every second"
    cat >"$WORK/prometheus.yml" <<PROM
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: director
    static_configs:
      - targets: ["$METRICS"]
PROM
    ip netns exec "$NS_DIRECTOR" prometheus --config.file="$WORK/prometheus.yml" \
        --storage.tsdb.path="$WORK/tsdb" --web.listen-address=127.0.0.1:9090 \
        >"$WORK/prometheus.log" 2>&1 &
    PROM_PID=$!
    TOPO_PIDS+=("$PROM_PID")
    # Wait for its first scrape, so the connection rate below covers the requests.
    for _ in $(seq 60); do
        ip netns exec "$NS_DIRECTOR" curl -s --max-time 2 "http://127.0.0.1:9090/api/v1/query" \
            --data-urlencode 'query=up{job="director"}' | grep -q '"value":\[[0-9.]*,"1"\]' && break
        sleep 0.5
    done
fi

topo_log "the client browses http://$VIP/ $N times"
fails=0
for i in $(seq "$N"); do
    if page=$(ip netns exec "$NS_CLIENT" curl -s --max-time 5 "http://$VIP/"); then
        printf '  request %d: %s\n' "$i" "$page"
    else
        printf '  request %d: FAILED\n' "$i"; fails=$((fails + 1))
    fi
done

topo_log "ipvsadm -L -n, --stats and -c"
run ipvsadm -L -n
run ipvsadm -L -n --stats
run ipvsadm -L -n -c

topo_log "Prometheus scrape of the director (excerpt)"
ip netns exec "$NS_DIRECTOR" curl -s "http://$METRICS/metrics" \
    | grep -E '^director_real_server_(connections_total|packets_total|bytes_total)' || true

if [ -n "$PROM_PID" ]; then
    topo_log "Prometheus query: per-real-server connection rate over the last 30 s"
    sleep 2
    q='sum by (real_server) (rate(director_real_server_connections_total[30s]))'
    out=$(ip netns exec "$NS_DIRECTOR" curl -s --max-time 2 \
        "http://127.0.0.1:9090/api/v1/query" --data-urlencode "query=$q" || true)
    echo "PromQL: $q"
    echo "$out" | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
    for r in d["data"]["result"]:
        print("  %-22s %.3f conn/s" % (r["metric"].get("real_server", "?"), float(r["value"][1])))
except Exception as e:
    print("  (no answer from Prometheus: %s)" % e)
'
fi

if [ "$fails" -gt 0 ]; then
    echo "demo: $fails of $N requests failed" >&2
    exit 1
fi
topo_log "done: tearing everything down"
