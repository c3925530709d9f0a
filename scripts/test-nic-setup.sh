#!/usr/bin/env bash
# Test of scripts/nic-setup.sh --dry-run and --status against a fake sysfs tree (2 NUMA nodes,
# an IOMMU group, one NIC on node 1 with a kernel interface): the exact commands it would run.
# Needs no root and changes nothing on the host.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

for n in 0 1; do
    mkdir -p "$T/devices/system/node/node$n/hugepages/hugepages-2048kB"
    echo 0 >"$T/devices/system/node/node$n/hugepages/hugepages-2048kB/nr_hugepages"
    echo 0 >"$T/devices/system/node/node$n/hugepages/hugepages-2048kB/free_hugepages"
done
echo 0-7 >"$T/devices/system/node/node0/cpulist"
echo 8-15 >"$T/devices/system/node/node1/cpulist"
mkdir -p "$T/kernel/iommu_groups/42" "$T/devices/system/cpu"
echo 10-15 >"$T/devices/system/cpu/isolated"
dev=$T/bus/pci/devices/0000:3b:00.0
mkdir -p "$dev/net/enp59s0f0" "$T/bus/pci/drivers/ixgbe"
echo 0x020000 >"$dev/class"
echo 1 >"$dev/numa_node"
ln -s ../../drivers/ixgbe "$dev/driver"

fails=0
check() {
    local name=$1 want=$2 got=$3
    if [ "$got" = "$want" ]; then
        echo "ok   $name"
    else
        echo "FAIL $name"
        diff <(echo "$want") <(echo "$got") || true
        fails=$((fails + 1))
    fi
}
nic() { NIC_SETUP_SYSFS=$T NIC_SETUP_DEVBIND=devbind "$ROOT/scripts/nic-setup.sh" "$@" 2>&1; }

check "dry-run hugepages + bind" "would run: echo 512 > $T/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages
would run: echo 512 > $T/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages
hugepages: 512 x 2M per node, 1024 in all (2048 MiB)
would run: modprobe vfio-pci
would run: ip link set dev enp59s0f0 down
would run: devbind --bind=vfio-pci 0000:3b:00.0" \
    "$(nic --dry-run --no-mount --hugepages 512 --bind 0000:3b:00.0)"

check "dry-run unbind to a kernel driver" "would run: devbind --bind=ixgbe 0000:3b:00.0" \
    "$(nic --dry-run --unbind 0000:3b:00.0 --driver ixgbe)"

check "dry-run unbind, kernel picks" "would run: devbind --unbind 0000:3b:00.0
would run: echo 0000:3b:00.0 > $T/bus/pci/drivers_probe" \
    "$(nic --dry-run --unbind 0000:3b:00.0)"

check "dry-run noiommu" "would run: modprobe vfio enable_unsafe_noiommu_mode=1
would run: echo 1 > $T/module/vfio/parameters/enable_unsafe_noiommu_mode
would run: modprobe vfio-pci" "$(nic --dry-run --noiommu)"

check "bad PCI address refused" "nic-setup: not a full PCI address (DDDD:BB:DD.F): 3b:00.0
exit 1" "$(nic --dry-run --bind 0000:3b:00.0,3b:00.0 || echo "exit $?")"
check "bad hugepage count refused" "nic-setup: --hugepages must be a number, not 1k
exit 1" "$(nic --dry-run --hugepages 1k || echo "exit $?")"

status=$(nic --status)
check "status: NIC line" "0000:3b:00.0 driver=ixgbe numa=node1 cpus=8-15" \
    "$(grep '^0000:' <<<"$status")"
check "status: hugepage lines" "node0 hugepages-2048kB: 0 reserved, 0 free
node1 hugepages-2048kB: 0 reserved, 0 free" "$(grep '^node' <<<"$status")"
check "status: isolated cores" "isolated now: 10-15" "$(grep '^isolated' <<<"$status")"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "nic-setup: all checks passed"
