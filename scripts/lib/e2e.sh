# shellcheck shell=bash source-path=SCRIPTDIR
# shellcheck disable=SC2034 # PY, BIG_SHA, ...: used by the tests that source this file
# Shared helpers of the end-to-end tests (scripts/test-e2e-*.sh). Source it after setting
# TOPO_PREFIX; it sources topology.sh, makes a scratch dir, an `ipvsadm` for the test's daemon
# and a trap that tears everything down (also on failure) and then checks that nothing is left
# behind (namespaces, processes, the control socket, DPDK runtime files).
#
# Assertions print what they checked: "  ok   <what>" or "  FAIL <what>" (then exit 1).
# Environment: BIN (binaries, default target/release), PYTHON (with scapy, default
# /usr/bin/python3), E2E_KEEP=1 keeps the scratch dir (logs, captures) for a post-mortem.

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$E2E_ROOT/target/release}
# Debian's python3: scapy is a Debian package (a pyenv/venv python3 first in PATH lacks it).
PY=${PYTHON:-/usr/bin/python3}
# shellcheck source=topology.sh
source "$E2E_ROOT/scripts/lib/topology.sh"

[ "$(id -u)" = 0 ] || { echo "e2e: run as root (it creates network namespaces)" >&2; exit 1; }
for b in director director-cli; do
    [ -x "$BIN/$b" ] || { echo "e2e: $BIN/$b missing: run 'make build' first" >&2; exit 1; }
done

WORK=$(mktemp -d "/tmp/director-e2e-$TOPO_PREFIX.XXXXXX")
SOCK=$WORK/director.sock
CONF=$WORK/director.toml
DLOG=$WORK/director.log
BIG=$WORK/big.bin
BIG_SHA=
# The director runs with EAL's default file prefix (rte) and --no-shconf: it must leave no
# runtime files there (other prefixes belong to other programs).
E2E_DPDK_RUNTIME=/var/run/dpdk/rte
E2E_DPDK_RUNTIME_BEFORE=$(find "$E2E_DPDK_RUNTIME" -mindepth 1 2>/dev/null | sort || true)
mkdir -p "$WORK/bin"
ln -s "$BIN/director-cli" "$WORK/bin/ipvsadm"
export PATH="$WORK/bin:$PATH" DIRECTOR_SOCKET=$SOCK

ok() { printf '  \033[32mok\033[0m   %s\n' "$*"; }
fail() {
    printf '  \033[31mFAIL\033[0m %s\n' "$*"
    if [ -s "$DLOG" ]; then echo "--- director log (last 20 lines)"; tail -n 20 "$DLOG"; fi
    exit 1
}
step() { printf '\033[1m-- %s\033[0m\n' "$*"; }

# check WHAT CMD...: ok if CMD succeeds, else fail.
check() {
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

# expect_eq GOT WANT WHAT
expect_eq() {
    if [ "$1" = "$2" ]; then ok "$3: $1"; else fail "$3: got '$1', want '$2'"; fi
}

# Tears down (trap) and verifies nothing is left; keeps the first failing exit status.
e2e_cleanup() {
    local rc=$? left=0 pids pid
    trap - EXIT INT TERM
    pids=("${TOPO_PIDS[@]}")
    topo_stop_director || true
    topo_down
    step "teardown: nothing left behind"
    for ns in "$NS_CLIENT" "$NS_DIRECTOR" "$NS_RS1" "$NS_RS2"; do
        if ip netns list | grep -qw "$ns"; then
            echo "  FAIL namespace $ns still exists"; left=1
        fi
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then echo "  FAIL process $pid still runs"; left=1; fi
    done
    if [ -e "$SOCK" ]; then echo "  FAIL control socket $SOCK still exists"; left=1; fi
    if [ "$(find "$E2E_DPDK_RUNTIME" -mindepth 1 2>/dev/null | sort || true)" != "$E2E_DPDK_RUNTIME_BEFORE" ]; then
        echo "  FAIL new files under $E2E_DPDK_RUNTIME"; left=1
    fi
    if [ "$left" = 0 ]; then
        ok "no namespace $TOPO_PREFIX-*, none of the ${#pids[@]} processes started, no control socket, no DPDK runtime files"
    fi
    if [ -n "${E2E_KEEP:-}" ]; then echo "  (E2E_KEEP: scratch dir kept: $WORK)"; else rm -rf "$WORK"; fi
    if [ "$rc" = 0 ] && [ "$left" != 0 ]; then rc=1; fi
    exit "$rc"
}
trap e2e_cleanup EXIT
trap 'exit 130' INT TERM

# Builds the topology in $1 mode, starts the web servers (index.html names the server, and
# big.bin, the same 10 MB of random bytes on both) and the director (extra args: "$@").
e2e_up() {
    local mode=$1
    shift
    topo_up "$mode"
    head -c $((10 * 1024 * 1024)) /dev/urandom >"$BIG"
    BIG_SHA=$(sha256sum "$BIG" | cut -d' ' -f1)
    mkdir -p "$WORK/www1" "$WORK/www2"
    ln "$BIG" "$WORK/www1/big.bin"
    ln "$BIG" "$WORK/www2/big.bin"
    topo_start_web "$WORK"
    topo_director_config "$CONF" "$SOCK"
    if grep -q '^\[\[neighbour\]\]' "$CONF"; then fail "the generated config has static neighbours"; fi
    topo_start_director "$BIN" "$CONF" "$DLOG" "$@"
}

# The MAC the director reports for its port named $1 (outside/inside), from its start log.
e2e_port_mac() {
    sed -n "s/^director: port $1 (.*) id [0-9]* mac \\([0-9a-f:]*\\) .*/\\1/p" "$DLOG" | tail -n 1
}

# Runs a command in the client's namespace.
in_client() { ip netns exec "$NS_CLIENT" "$@"; }

# GETs http://$VIP[:port]/$path from the client, prints the body; $1: "port/path" suffix.
client_get() { in_client curl -s --max-time 5 "http://$VIP$1"; }

# Prints "rs1"/"rs2" for each of $1 fresh connections to http://$VIP$2 (default /), one a line
# (curl runs once; HTTP/1.0 with Connection: close makes each URL its own TCP connection).
e2e_which_rs() {
    local n=$1 path=${2:-/} urls=()
    for _ in $(seq "$n"); do urls+=("http://$VIP$path"); done
    # --retry: a SYN lost in the kernel's af_packet ring while the worker is descheduled (a
    # loaded CI box) must not cost the request; each URL still gives exactly one answer.
    in_client curl -s --max-time 10 --retry 3 --retry-delay 0 -0 -H 'Connection: close' \
        "${urls[@]}" \
        | sed -n 's/^Hello from real server \(rs[12]\)$/\1/p'
}

# Number of requests for $2 (a path) in real server $1's web log.
e2e_web_hits() { grep -c "\"GET $2 " "$WORK/web$1.log" || true; }

# Field $3 (Conns, InPkts, OutPkts, InBytes, OutBytes) of `ipvsadm -L -n --stats --exact`:
# $1 the service ("TCP 203.0.113.200:80"), $2 one of its real servers ("a.b.c.d:port") or "-"
# for the service line itself.
e2e_stat() {
    local svc=$1 rs=$2 field=$3 col
    case $field in
        Conns) col=3 ;; InPkts) col=4 ;; OutPkts) col=5 ;; InBytes) col=6 ;; OutBytes) col=7 ;;
        *) fail "e2e_stat: unknown field $field" ;;
    esac
    ipvsadm -L -n --stats --exact | awk -v svc="$svc" -v rs="$rs" -v c="$col" '
        $1 != "->" { cur = $1 " " $2; if (rs == "-" && cur == svc) { print $c; exit } }
        $1 == "->" && rs != "-" && cur == svc && $2 == rs { print $c; exit }'
}

# Starts a download of big.bin from the client in the background at $1 bytes/s into $2;
# sets E2E_DL_PID and waits until the connection is established; prints nothing.
e2e_slow_download() {
    local rate=$1 out=$2
    in_client curl -s --max-time 60 --limit-rate "$rate" -o "$out" "http://$VIP/big.bin" &
    E2E_DL_PID=$!
    TOPO_PIDS+=("$E2E_DL_PID")
    for _ in $(seq 100); do
        [ -s "$out" ] && return 0
        sleep 0.1
    done
    fail "slow download did not start"
}

# The client port of the (one) established connection to the VIP on port $1.
e2e_client_port() {
    in_client ss -tnH state established "( dport = :$1 )" \
        | awk '{ split($3, a, ":"); print a[2]; exit }'
}

# The real server ("a.b.c.d:port") of the director's connection entry from client port $1.
e2e_conn_dest() {
    ipvsadm -L -n -c | awk -v s="$CLIENT_IP:$1" '$4 == s { print $6; exit }'
}
