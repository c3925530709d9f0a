#!/usr/bin/env bash
# container-check: the CI check of the container path (`make container-check`).
#
# 1. Makes sure a debian:bookworm base image exists; without a registry it is built here with
#    debootstrap from the host's apt mirror (and the host's extra CA certificates).
# 2. Builds docker/Dockerfile with podman --pull=never and checks the runtime image size.
# 3. Runs the image on DPDK virtual devices (no NIC, no hugepages):
#    - `director --help`, `director-cli -h` and `ipvsadm -h` (the symlink) run;
#    - every shared library of the binaries resolves (ldd);
#    - the daemon starts with the image's default config (EAL on net_null0), /healthz answers,
#      a service added with ipvsadm inside the container is listed back exactly, SIGTERM stops
#      it with status 0;
#    - pcap replay: VS/DR frames in from a pcap, the output pcap compared byte for byte
#      (check_pcap_replay below).
# Everything it creates (containers, images, the base it built, the build's cache mounts, temp
# dirs) is removed on exit, also on failure (KEEP_* below keep some). Exit status 0 = all
# checks passed.
#
# `scripts/container-check.sh --base-only` only makes the debian:bookworm base image and keeps
# it (for `podman build`/`podman-compose build` by hand on a host without a registry).
#
# Needs root and podman/buildah/debootstrap/runc (`scripts/setup.sh --containers`).
# Environment:
#   CONTAINERS_CONF   podman config (default: docker/containers.conf: runc, ulimits)
#   KEEP_BASE=1       keep a base image this run built (saves ~40 s next time)
#   KEEP_IMAGE=1      keep the built image (tag localhost/director:check)
#   KEEP_CACHE=1      keep the cargo cache mounts this run created (/var/tmp/buildah-cache/
#                     director-*, ~550 MB): the next build is incremental (654 s -> 314 s here)
#   REUSE_IMAGE=1     check an existing localhost/director:check instead of building (with
#                     KEEP_IMAGE=1 on the run that built it; iterating on the checks)
#   MAX_IMAGE_MB      runtime image size limit (default 250)
#   CONTEXT=worktree  build the checkout as it is instead of its last commit
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/docker/containers.conf}
BASE_LOCAL=localhost/debian:bookworm
BASE_HUB=docker.io/library/debian:bookworm
IMAGE=localhost/director:check
BINARIES=
# Where buildah keeps the Dockerfile's cache mounts (id=director-*) when run as root.
CACHE_DIRS=(/var/tmp/buildah-cache/director-target /var/tmp/buildah-cache/director-cargo-registry)
NEW_CACHES=
CTR=director-check-$$
MAX_IMAGE_MB=${MAX_IMAGE_MB:-250}

WORK=$(mktemp -d /var/tmp/director-check.XXXXXX)
BUILT_BASE=0
BUILT_IMAGE=0
FAILED=0

log() { printf '== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    FAILED=1
}

cleanup() {
    local rc=$?
    set +e
    podman rm -f -t 2 "$CTR" >/dev/null 2>&1
    if [ "$BUILT_IMAGE" = 1 ] && [ "${KEEP_IMAGE:-0}" != 1 ]; then
        podman rmi -f "$IMAGE" >/dev/null 2>&1
    fi
    # The build's cache mounts (cargo registry + target, ~550 MB): removed when this run made
    # them, so that a rebuild right after is incremental only with KEEP_CACHE=1.
    if [ "${KEEP_CACHE:-0}" != 1 ]; then
        local d
        for d in $NEW_CACHES; do rm -rf "$d"; done
    fi
    if [ "$BUILT_BASE" = 1 ] && [ "${KEEP_BASE:-0}" != 1 ]; then
        podman rmi -f "$BASE_HUB" "$BASE_LOCAL" >/dev/null 2>&1
    fi
    rm -rf "$WORK"
    if [ "$rc" = 0 ] && [ "$FAILED" = 0 ]; then
        log "container-check: OK"
    else
        echo "container-check: FAILED" >&2
        [ "$rc" = 0 ] && rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "container-check: $1 not found: run scripts/setup.sh --containers" >&2
        exit 2
    }
}

# The host's Debian mirror URI for SUITE (e.g. bookworm, bookworm-security), from deb822
# .sources files or a one-line sources.list.
mirror_for() {
    local suite=$1
    python3 - "$suite" <<'EOF'
import glob, sys
suite = sys.argv[1]
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith(("#", " ")):
                k, v = line.split(":", 1)
                fields[k.strip()] = v.split()
        if "deb" in fields.get("Types", []) and suite in fields.get("Suites", []):
            print(fields["URIs"][0]); sys.exit(0)
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = [w for w in line.split() if not w.startswith("[")]
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            print(words[1]); sys.exit(0)
sys.exit(1)
EOF
}

ensure_base() {
    if podman image exists "$BASE_HUB"; then
        log "base image $BASE_HUB present"
        return
    fi
    if podman image exists "$BASE_LOCAL"; then
        podman tag "$BASE_LOCAL" "$BASE_HUB"
        log "base image $BASE_LOCAL tagged as $BASE_HUB"
        return
    fi
    need debootstrap
    local mirror security rootfs
    mirror=$(mirror_for bookworm) || { echo "no bookworm mirror in the host's apt sources" >&2; exit 2; }
    security=$(mirror_for bookworm-security) || security=http://deb.debian.org/debian-security
    rootfs=$WORK/rootfs
    log "debootstrap bookworm from $mirror (base image, ~1 min)"
    BUILT_BASE=1
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1 || {
        tail -20 "$WORK/debootstrap.log" >&2
        exit 1
    }
    cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
    # Egress proxies re-sign HTTPS: trust the host's extra CAs in the image (crates.io).
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    chroot "$rootfs" apt-get clean
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
    tar -C "$rootfs" -c . | podman import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$BASE_LOCAL" >/dev/null 2>&1
    podman tag "$BASE_LOCAL" "$BASE_HUB"
    rm -rf "$rootfs"
    log "base image built: $(podman image inspect --format '{{.Size}}' "$BASE_LOCAL" | awk '{printf "%.0f MB", $1/1e6}')"
}

# The build context: the committed tree (HEAD) in a git checkout, as CI sees it, so that work
# in progress in the checkout does not leak into the check; CONTEXT=worktree uses the checkout
# as it is (.dockerignore keeps target/ out).
build_context() {
    if [ "${CONTEXT:-head}" != worktree ] && git -C "$ROOT" rev-parse --verify -q HEAD >/dev/null; then
        mkdir -p "$WORK/context"
        git -C "$ROOT" archive --format=tar HEAD | tar -x -C "$WORK/context"
        echo "$WORK/context"
    else
        echo "$ROOT"
    fi
}

# Binaries the tree at CONTEXT defines (director/src/bin/NAME.rs or NAME/main.rs).
binaries_in() {
    local b
    for b in director director-cli; do
        if [ -e "$1/director/src/bin/$b.rs" ] || [ -e "$1/director/src/bin/$b/main.rs" ]; then
            printf '%s ' "$b"
        fi
    done
}

build_image() {
    local t0=$SECONDS context
    context=$(build_context)
    BINARIES=$(binaries_in "$context")
    BINARIES=${BINARIES% }
    [ -n "$BINARIES" ] || { fail "no director/director-cli binary in the tree yet"; exit 1; }
    [ "$BINARIES" = "director director-cli" ] ||
        log "NOTE: only '$BINARIES' exist(s) in the tree: checks of the others are SKIPPED"
    # The image builds with --locked: find a stale Cargo.lock in seconds, not after the apt stage.
    if command -v cargo >/dev/null && [ -e "$context/Cargo.lock" ]; then
        (cd "$context" && cargo metadata --locked --format-version 1 >/dev/null 2>"$WORK/lock.err") || {
            cat "$WORK/lock.err" >&2
            fail "Cargo.lock does not match the Cargo.toml files (commit the updated Cargo.lock)"
            exit 1
        }
    fi
    if [ "${REUSE_IMAGE:-0}" = 1 ] && podman image exists "$IMAGE"; then
        log "REUSE_IMAGE=1: checking the existing $IMAGE (not rebuilt)"
        return
    fi
    log "podman build from $context (release build of the workspace in the build stage)"
    BUILT_IMAGE=1
    local d
    for d in "${CACHE_DIRS[@]}"; do [ -e "$d" ] || NEW_CACHES="$NEW_CACHES $d"; done
    # --layers=false: no intermediate layer images are left behind (the cargo registry and
    # target directory still persist in the build's cache mounts).
    podman build --pull=never --layers=false --build-arg BINARIES="$BINARIES" \
        -f "$context/docker/Dockerfile" -t "$IMAGE" "$context" \
        >"$WORK/build.log" 2>&1 || {
        tail -40 "$WORK/build.log" >&2
        exit 1
    }
    log "built in $((SECONDS - t0)) s; runtime packages (ldd owners + DPDK_PMDS):"
    sed -n '/^runtime packages:/,/^\[2\/2\]/p' "$WORK/build.log" | grep '^lib' | tr '\n' ' '
    echo
}

check_size() {
    local mb
    mb=$(($(podman image inspect --format '{{.Size}}' "$IMAGE") / 1000000))
    log "image $IMAGE: $mb MB (limit $MAX_IMAGE_MB MB)"
    [ "$mb" -le "$MAX_IMAGE_MB" ] || fail "runtime image is $mb MB > $MAX_IMAGE_MB MB"
}

# Runs a command in a throw-away container of the image (no network, vdevs only).
in_image() {
    podman run --rm --pull=never --network=none --entrypoint "$1" "$IMAGE" "${@:2}"
}

has_bin() { [[ " $BINARIES " == *" $1 "* ]]; }

check_binaries() {
    local out cli
    if has_bin director; then
        log "director --help"
        out=$(in_image director --help 2>&1) || fail "director --help exited $?: $out"
        grep -q -- '--config' <<<"$out" || fail "director --help does not mention --config: $out"
        log "director --check on the image's default config"
        out=$(in_image director --check --config /etc/director/director.toml 2>&1) ||
            fail "default config rejected: $out"
    fi
    if has_bin director-cli; then
        log "director-cli -h / ipvsadm -h"
        for cli in director-cli ipvsadm; do
            out=$(in_image "$cli" -h 2>&1) || fail "$cli -h exited $?: $out"
            grep -q -- '--add-service' <<<"$out" || fail "$cli -h does not print ipvsadm usage: $out"
        done
        [ "$(in_image readlink /usr/local/bin/ipvsadm)" = director-cli ] ||
            fail "ipvsadm is not a symlink to director-cli"
    fi
    log "ldd (every shared library resolves)"
    out=$(in_image sh -c 'ldd /usr/local/bin/director*' 2>&1) || fail "ldd: $out"
    if grep -q 'not found' <<<"$out"; then fail "missing libraries: $(grep 'not found' <<<"$out")"; fi
    in_image test ! -e /usr/include/dpdk/rte_eal.h || fail "DPDK headers (libdpdk-dev) in the runtime image"
    in_image sh -c '! command -v cargo && ! command -v cc' >/dev/null || fail "a toolchain in the runtime image"
}

# ipvsadm inside the running daemon container.
ctr_ipvsadm() { podman exec "$CTR" ipvsadm "$@"; }

check_daemon() {
    log "daemon on net_null0 (default config, EAL without hugepages)"
    podman run -d --name "$CTR" --pull=never --network=none "$IMAGE" >/dev/null
    local ok=0
    for _ in $(seq 1 60); do
        if ! podman container inspect -f '{{.State.Running}}' "$CTR" 2>/dev/null | grep -q true; then
            break
        fi
        # bash's /dev/tcp: the runtime image has no curl.
        if podman exec "$CTR" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9800 &&
               printf "GET /healthz HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null | grep -q '^ok'; then
            ok=1
            break
        fi
        sleep 0.5
    done
    if [ "$ok" != 1 ]; then
        fail "daemon did not answer /healthz; its log:"
        podman logs "$CTR" 2>&1 | tail -30 >&2
        return
    fi
    log "ipvsadm through the control socket"
    ctr_ipvsadm -A -t 192.0.2.10:80 -s rr || fail "ipvsadm -A failed"
    ctr_ipvsadm -a -t 192.0.2.10:80 -r 192.0.2.20:80 -g -w 2 || fail "ipvsadm -a failed"
    local got want
    got=$(ctr_ipvsadm -S -n 2>&1) || fail "ipvsadm -S -n failed: $got"
    want=$'-A -t 192.0.2.10:80 -s rr\n-a -t 192.0.2.10:80 -r 192.0.2.20:80 -g -w 2'
    [ "$got" = "$want" ] || fail "ipvsadm -S -n: expected <<$want>> got <<$got>>"
    log "metrics scrape"
    got=$(podman exec "$CTR" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9800 &&
             printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3') || fail "GET /metrics failed"
    grep -q '^director_' <<<"$got" || fail "/metrics has no director_ series"
    log "SIGTERM stops the daemon cleanly"
    podman stop -t 20 "$CTR" >/dev/null
    local status
    status=$(podman container inspect -f '{{.State.ExitCode}}' "$CTR")
    [ "$status" = 0 ] || {
        fail "daemon exited $status after SIGTERM"
        podman logs "$CTR" 2>&1 | tail -30 >&2
    }
    podman rm -f "$CTR" >/dev/null
}

# ---------------------------------------------------------------------------------------------
# pcap replay: input pcap in, output pcap compared, byte for byte.
# The daemon runs in the image on a net_pcap port (rx_pcap=in.pcap, tx_pcap=out.pcap) with a
# VS/DR service restored from a rules file, and stops by itself once the input is consumed
# (--stop-when-idle). in.pcap and the expected frames are made with scapy on the host: a TCP
# SYN and an ACK of one client flow to the VIP, and a SYN to a port with no service. Expected:
# the two VIP frames leave towards the real server with only the MACs and the TTL (so also the
# IP checksum) changed, in order; nothing else leaves but gratuitous ARPs announcing the VIP.
PCAP_PMD_MAC=02:70:63:61:70:00 # DPDK's pcap PMD gives its ports this MAC ("\x02pcap\0")
# Debian's python3 (scapy is a Debian package; a pyenv/venv python3 first in PATH lacks it).
PY=${PYTHON:-/usr/bin/python3}

replay_config() {
    cat <<'TOML'
[eal]
args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--no-telemetry",
        "--log-level=lib.eal:warning",
        "--vdev=net_pcap0,rx_pcap=/data/in.pcap,tx_pcap=/data/out.pcap"]
[[port]]
name = "lan"
device = "net_pcap0"
addresses = ["192.0.2.1/24"]
[[neighbour]]
port = "lan"
addr = "192.0.2.20"
mac = "02:00:00:00:01:0a"
[workers]
lcores = [1]
mbufs = 2047
conn_table_capacity = 1024
[control]
socket = "/data/director.sock"
[metrics]
listen = "127.0.0.1:0"
TOML
}

# Writes DIR/in.pcap and DIR/expected.hex (one frame a line, hex).
replay_frames() {
    "$PY" - "$1" "$PCAP_PMD_MAC" <<'PYTHON'
import sys
from scapy.all import ARP, Ether, IP, TCP, wrpcap
data, port_mac = sys.argv[1], sys.argv[2]
client, real_server = "02:00:00:00:00:0a", "02:00:00:00:01:0a"
def frame(dport, flags, seq, ack=0):
    return (Ether(src=client, dst=port_mac) /
            IP(src="198.51.100.7", dst="192.0.2.10", ttl=64, id=1) /
            TCP(sport=40000, dport=dport, flags=flags, seq=seq, ack=ack, window=8192))
frames = [frame(80, "S", 1000), frame(80, "A", 1001, 5001), frame(81, "S", 7)]
wrpcap(f"{data}/in.pcap", frames)
with open(f"{data}/expected.hex", "w") as out:
    for f in frames[:2]:
        e = Ether(bytes(f))
        e.src, e.dst = port_mac, real_server
        e[IP].ttl -= 1
        del e[IP].chksum
        out.write(bytes(e).hex() + "\n")
    # No service on VIP:81: the director answers as its host kernel would, with a reset
    # (RST|ACK, seq 0, ack = the SYN's seq + 1; TTL 64, DF, ident 0) back to the client.
    rst = (Ether(src=port_mac, dst=client) /
           IP(src="192.0.2.10", dst="198.51.100.7", ttl=64, id=0, flags="DF") /
           TCP(sport=81, dport=40000, flags="RA", seq=0, ack=8, window=0))
    out.write(bytes(rst).hex() + "\n")
# The daemon announces a VIP with gratuitous ARP (who-has VIP tell VIP, broadcast), at a
# moment of its own choosing: such frames are accepted anywhere in the output, only this way.
garp = (Ether(src=port_mac, dst="ff:ff:ff:ff:ff:ff") /
        ARP(op=1, hwsrc=port_mac, psrc="192.0.2.10", hwdst="00:00:00:00:00:00", pdst="192.0.2.10"))
# Padded to the 60-byte Ethernet minimum, as it is sent.
open(f"{data}/garp.hex", "w").write(bytes(garp).ljust(60, b"\0").hex() + "\n")
PYTHON
}

check_pcap_replay() {
    if ! "$PY" -c 'import scapy' 2>/dev/null; then
        log "SKIPPED (not passed): pcap replay needs python3-scapy ($PY)"
        return
    fi
    log "pcap replay: VS/DR frames through the daemon in the image"
    local data=$WORK/replay out got
    mkdir -p "$data"
    replay_config >"$data/replay.toml"
    printf '%s\n' '-A -t 192.0.2.10:80 -s rr' '-a -t 192.0.2.10:80 -r 192.0.2.20:80 -g -w 1' \
        >"$data/rules"
    replay_frames "$data"
    if ! out=$(timeout 60 podman run --rm --pull=never --network=none -v "$data:/data" \
        "$IMAGE" --config /data/replay.toml --rules /data/rules --stop-when-idle 500 2>&1); then
        fail "replay run failed: $out"
        return
    fi
    grep -qi "mac $PCAP_PMD_MAC" <<<"$out" ||
        log "note: no port with mac $PCAP_PMD_MAC in the daemon's log: $(grep -i mac <<<"$out")"
    [ -s "$data/out.pcap" ] || {
        fail "no out.pcap written; daemon output: $out"
        return
    }
    # Every frame out, in order, as hex; gratuitous ARPs for the VIP counted apart.
    got=$("$PY" -c 'import sys
from scapy.all import rdpcap
for p in rdpcap(sys.argv[1]): print(bytes(p).hex())' "$data/out.pcap")
    local garps
    garps=$(grep -cxFf "$data/garp.hex" <<<"$got" || true)
    got=$(grep -vxFf "$data/garp.hex" <<<"$got" || true)
    if [ "$got" = "$(cat "$data/expected.hex")" ]; then
        log "pcap replay: out.pcap = expected ($(wc -l <"$data/expected.hex") frames, byte-exact;" \
            "+ $garps gratuitous ARP for the VIP)"
    else
        fail "pcap replay: out.pcap differs from the expected frames (< expected, > got)"
        diff "$data/expected.hex" <(echo "$got") >&2 || true
        echo "daemon output: $out" >&2
    fi
}
# ---------------------------------------------------------------------------------------------

main() {
    [ "$(id -u)" = 0 ] || { echo "container-check: run as root" >&2; exit 2; }
    need podman
    need python3
    local free_gb
    free_gb=$(df -P --block-size=1G /var/lib 2>/dev/null | awk 'NR==2 {print $4}')
    [ "${free_gb:-0}" -ge 4 ] || { echo "container-check: need >= 4 GB free (have ${free_gb:-?})" >&2; exit 2; }
    ensure_base
    if [ "${1:-}" = --base-only ]; then
        BUILT_BASE=0 # keep it: that was the point
        return
    fi
    build_image
    check_size
    check_binaries
    if has_bin director && has_bin director-cli; then
        check_daemon
        check_pcap_replay
    else
        log "SKIPPED (not passed): daemon, ipvsadm-over-socket, metrics and pcap checks need both binaries"
    fi
    [ "$FAILED" = 0 ]
}

main "$@"
