#!/usr/bin/env bash
# setup.sh: install what building and testing the director needs (Debian 12).
#
#   scripts/setup.sh               build + test packages (DPDK, clang, scapy, tcpdump, ...)
#   scripts/setup.sh --containers  also podman, buildah, debootstrap, runc, podman-compose
#
# Idempotent: when every package is already installed it does not touch apt (well under a
# second). Runs apt as root, through sudo when not root. Checks that cargo exists and that
# pkg-config finds DPDK. Exit status 0 = ready to `make build` / `make test`.
set -euo pipefail

PACKAGES=(
    libdpdk-dev dpdk dpdk-dev pkg-config libclang-dev clang build-essential
    iproute2 iputils-ping ethtool python3-scapy tcpdump tshark curl socat
    prometheus libpcap-dev python3 procps psmisc
)
CONTAINER_PACKAGES=(podman buildah debootstrap runc podman-compose)

usage() {
    echo "usage: $0 [--containers]" >&2
    exit 2
}

want=("${PACKAGES[@]}")
for arg in "$@"; do
    case "$arg" in
        --containers) want+=("${CONTAINER_PACKAGES[@]}") ;;
        -h | --help) usage ;;
        *) echo "setup.sh: unknown argument: $arg" >&2; usage ;;
    esac
done

# Packages of the list that dpkg does not report as installed (one dpkg query for all).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${want[@]}" 2>/dev/null |
    awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
missing=()
for pkg in "${want[@]}"; do
    if ! grep -qxF "$pkg" <<<"$installed"; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} > 0)); then
    if [[ $(id -u) -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "setup.sh: installing ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    echo "setup.sh: all ${#want[@]} packages already installed"
fi

if ! pkg-config --exists libdpdk; then
    echo "setup.sh: pkg-config does not find libdpdk after installing libdpdk-dev" >&2
    exit 1
fi

if ! command -v cargo >/dev/null 2>&1; then
    cat >&2 <<'EOF'
setup.sh: cargo not found. Install Rust (stable) with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
    . "$HOME/.cargo/env"
EOF
    exit 1
fi

echo "setup.sh: ready (DPDK $(pkg-config --modversion libdpdk), $(cargo --version))"
