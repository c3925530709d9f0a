# shellcheck shell=bash
# The classic LVS topology in network namespaces, shared by the demo and the e2e tests.
#
#   client (203.0.113.10/24) --veth-- [d-out] DIRECTOR (DPDK, af_packet) [d-in] --veth-- br0
#                                                                                  |-- rs1 198.51.100.100/24
#                                                                                  `-- rs2 198.51.100.200/24
# The director's namespace has no IP addresses: DPDK answers ARP/ICMP and forwards in user
# space. Every name carries $TOPO_PREFIX so parallel/leftover runs never collide.
#
# Modes "dr" and "tun" (the real servers answer the client directly, not through the
# director): the client segment becomes a bridge (brc, in the director's namespace) that the
# client, the director's outside port and a second leg (eth1) of each real server join:
#
#   client c0 --+-- brc --+-- d-out [DIRECTOR] d-in -- br0 -- rs1 eth0 / rs2 eth0
#               |         +-- rs1 eth1 (203.0.113.101/24)
#               |         `-- rs2 eth1 (203.0.113.102/24)
# Each real server owns the VIP on lo, does not answer ARP for it (arp_ignore=1,
# arp_announce=2), and reaches the client over eth1 (connected route); it has no route via
# the director at all, so a reply can only go straight to the client.
#
# Usage: source this file, set TOPO_PREFIX (default "lvs"), call topo_up / topo_down.

TOPO_PREFIX=${TOPO_PREFIX:-lvs}
NS_CLIENT="${TOPO_PREFIX}-client"
NS_DIRECTOR="${TOPO_PREFIX}-director"
NS_RS1="${TOPO_PREFIX}-rs1"
NS_RS2="${TOPO_PREFIX}-rs2"
CLIENT_IP=203.0.113.10
DIRECTOR_OUT_IP=203.0.113.1
DIRECTOR_IN_IP=198.51.100.254
VIP=203.0.113.200
RS1_IP=198.51.100.100
RS2_IP=198.51.100.200
# dr/tun modes: the real servers' legs on the client segment.
RS1_OUT_IP=203.0.113.101
RS2_OUT_IP=203.0.113.102
TOPO_PIDS=()

topo_log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# Turns offloads off (af_packet must see whole frames with real checksums).
topo_no_offload() {
    local ns=$1 dev=$2
    ip netns exec "$ns" ethtool -K "$dev" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
}

topo_down() {
    local pid
    for pid in "${TOPO_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${TOPO_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    TOPO_PIDS=()
    local ns
    for ns in "$NS_CLIENT" "$NS_DIRECTOR" "$NS_RS1" "$NS_RS2"; do
        if ip netns list 2>/dev/null | grep -qw "$ns"; then
            # Anything still running in the namespace goes too.
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}

# Creates namespaces, links and addresses. $1: "nat" (real servers route via the director),
# "dr" (real servers own the VIP on lo and answer the client directly, through a second leg
# on the client segment) or "tun".
topo_up() {
    local mode=${1:-nat}
    topo_down
    ip netns add "$NS_CLIENT"
    ip netns add "$NS_DIRECTOR"
    ip netns add "$NS_RS1"
    ip netns add "$NS_RS2"
    local ns
    for ns in "$NS_CLIENT" "$NS_DIRECTOR" "$NS_RS1" "$NS_RS2"; do
        ip -n "$ns" link set lo up
    done
    case $mode in
        nat)
            # client <-> director outside leg
            ip link add c0 netns "$NS_CLIENT" type veth peer name d-out netns "$NS_DIRECTOR" ;;
        dr|tun)
            # client segment: a bridge the client, the director and the real servers join
            ip -n "$NS_DIRECTOR" link add brc type bridge
            ip link add c0 netns "$NS_CLIENT" type veth peer name c0-br netns "$NS_DIRECTOR"
            ip -n "$NS_DIRECTOR" link add d-out type veth peer name d-out-br
            ip link add eth1 netns "$NS_RS1" type veth peer name rs1-c netns "$NS_DIRECTOR"
            ip link add eth1 netns "$NS_RS2" type veth peer name rs2-c netns "$NS_DIRECTOR"
            local cdev
            for cdev in c0-br d-out-br rs1-c rs2-c; do
                ip -n "$NS_DIRECTOR" link set "$cdev" master brc
                ip -n "$NS_DIRECTOR" link set "$cdev" up
                topo_no_offload "$NS_DIRECTOR" "$cdev"
            done
            ip -n "$NS_DIRECTOR" link set brc up ;;
        *)
            echo "topo_up: unknown mode $mode (nat, dr or tun)" >&2
            return 1 ;;
    esac
    # director inside leg -> bridge (in the director ns, no IP) <- real servers
    ip -n "$NS_DIRECTOR" link add d-in type veth peer name d-in-br
    ip -n "$NS_DIRECTOR" link add br0 type bridge
    ip -n "$NS_DIRECTOR" link set d-in-br master br0
    ip link add eth0 netns "$NS_RS1" type veth peer name rs1-br netns "$NS_DIRECTOR"
    ip link add eth0 netns "$NS_RS2" type veth peer name rs2-br netns "$NS_DIRECTOR"
    ip -n "$NS_DIRECTOR" link set rs1-br master br0
    ip -n "$NS_DIRECTOR" link set rs2-br master br0
    local dev
    for dev in d-out d-in d-in-br rs1-br rs2-br br0; do
        ip -n "$NS_DIRECTOR" link set "$dev" up
        topo_no_offload "$NS_DIRECTOR" "$dev"
    done
    ip -n "$NS_DIRECTOR" link set d-out promisc on
    ip -n "$NS_DIRECTOR" link set d-in promisc on
    # IPv6 off on the DPDK legs: no router solicitations / DAD noise for the data plane.
    ip netns exec "$NS_DIRECTOR" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true

    ip -n "$NS_CLIENT" addr add "$CLIENT_IP/24" dev c0
    ip -n "$NS_CLIENT" link set c0 up
    topo_no_offload "$NS_CLIENT" c0
    ip -n "$NS_CLIENT" route add default via "$DIRECTOR_OUT_IP"

    local rs ip out_ip dev
    for rs in 1 2; do
        if [ "$rs" = 1 ]; then
            ns=$NS_RS1 ip=$RS1_IP out_ip=$RS1_OUT_IP
        else
            ns=$NS_RS2 ip=$RS2_IP out_ip=$RS2_OUT_IP
        fi
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip -n "$ns" link set eth0 up
        topo_no_offload "$ns" eth0
        case $mode in
            nat)
                ip -n "$ns" route add default via "$DIRECTOR_IN_IP" ;;
            dr|tun)
                # The real server owns the VIP on lo but must not answer ARP for it, and
                # accepts packets for it on any leg (DR: eth0; TUN: the decapsulated ones).
                ip -n "$ns" addr add "$VIP/32" dev lo
                ip -n "$ns" addr add "$out_ip/24" dev eth1
                ip -n "$ns" link set eth1 up
                topo_no_offload "$ns" eth1
                ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true
                for dev in all default eth0 eth1; do
                    ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$dev.arp_ignore=1"
                    ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$dev.arp_announce=2"
                    ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$dev.rp_filter=0"
                done ;;
        esac
    done
}

# The MAC of interface $2 in namespace $1 (e.g. the director's DPDK legs: net_af_packet takes
# the interface's MAC).
topo_mac() {
    ip -n "$1" -o link show dev "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

# Writes the director's config to $1. $2: control socket, $3: metrics address.
topo_director_config() {
    local file=$1 sock=$2 metrics=${3:-127.0.0.1:9800} cores
    cores=$(nproc)
    local worker_core=1
    [ "$cores" -ge 2 ] || worker_core=0
    cat >"$file" <<CONF
# Generated by scripts/lib/topology.sh
[eal]
args = ["-l", "0-$((cores > 1 ? 1 : 0))", "--no-huge", "-m", "512", "--no-pci", "--no-shconf",
        "--no-telemetry", "--log-level=lib.eal:warning",
        "--vdev=net_af_packet0,iface=d-out", "--vdev=net_af_packet1,iface=d-in"]

[[port]]
name = "outside"
device = "net_af_packet0"
addresses = ["$DIRECTOR_OUT_IP/24"]

[[port]]
name = "inside"
device = "net_af_packet1"
addresses = ["$DIRECTOR_IN_IP/24"]

[workers]
lcores = [$worker_core]
idle_sleep_us = 200
mbufs = 8191

[control]
socket = "$sock"

[metrics]
listen = "$metrics"
CONF
}

# Starts the director in its namespace; waits until its control socket answers.
# $1: binary dir, $2: config, $3: log file, then extra director arguments (e.g. --rules F).
# Sets DIRECTOR_PID.
topo_start_director() {
    local bin=$1 conf=$2 log=$3 sock
    shift 3
    sock=$(sed -n 's/^socket = "\(.*\)"/\1/p' "$conf")
    ip netns exec "$NS_DIRECTOR" "$bin/director" --config "$conf" "$@" >"$log" 2>&1 &
    DIRECTOR_PID=$!
    TOPO_PIDS+=("$DIRECTOR_PID")
    for _ in $(seq 100); do
        if "$bin/director-cli" --socket "$sock" -L -n >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$DIRECTOR_PID" 2>/dev/null; then
            echo "director exited early:" >&2; cat "$log" >&2; return 1
        fi
        sleep 0.1
    done
    echo "director did not come up:" >&2; cat "$log" >&2
    return 1
}

# Stops the director with SIGTERM and waits for it.
topo_stop_director() {
    [ -n "${DIRECTOR_PID:-}" ] || return 0
    kill -TERM "$DIRECTOR_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DIRECTOR_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$DIRECTOR_PID" 2>/dev/null || true
    wait "$DIRECTOR_PID" 2>/dev/null || true
    DIRECTOR_PID=
}

# Starts a web server in each real server's namespace serving a page that names it.
# $1: scratch dir.
topo_start_web() {
    local dir=$1 rs ns
    for rs in 1 2; do
        if [ "$rs" = 1 ]; then ns=$NS_RS1; else ns=$NS_RS2; fi
        mkdir -p "$dir/www$rs"
        echo "Hello from real server rs$rs" >"$dir/www$rs/index.html"
        (cd "$dir/www$rs" && exec ip netns exec "$ns" python3 -m http.server 80 --bind 0.0.0.0) \
            >"$dir/web$rs.log" 2>&1 &
        TOPO_PIDS+=("$!")
    done
    for rs in 1 2; do
        if [ "$rs" = 1 ]; then ns=$NS_RS1; else ns=$NS_RS2; fi
        for _ in $(seq 50); do
            ip netns exec "$ns" curl -s -o /dev/null http://127.0.0.1/ && break
            sleep 0.1
        done
    done
}
