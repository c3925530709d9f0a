#!/usr/bin/env bash
# nic-setup: prepare a host for the director's DPDK data plane (real hardware).
#
#   scripts/nic-setup.sh [--dry-run] [--hugepages N] [--hugepage-size 2M|1G] [--no-mount]
#                        [--bind PCI[,PCI...]] [--unbind PCI[,PCI...] [--driver NAME]]
#                        [--noiommu] [--status]
#
#   --hugepages N       reserve N hugepages on EVERY NUMA node (per-node sysfs counters), and
#                       mount hugetlbfs on /dev/hugepages unless --no-mount or already mounted
#   --hugepage-size S   2M (default) or 1G (1G pages are best reserved on the kernel command
#                       line: default_hugepagesz=1G hugepagesz=1G hugepages=N)
#   --bind LIST         load vfio-pci, take the interfaces down, bind the devices to vfio-pci
#   --unbind LIST       give the devices back to a kernel driver (--driver, default: unbind
#                       only, then `echo PCI > /sys/bus/pci/drivers_probe` lets the kernel pick)
#   --noiommu           allow vfio without an IOMMU (enable_unsafe_noiommu_mode; VMs without
#                       vIOMMU; no DMA isolation)
#   --status            show hugepages, bound devices, NUMA locality and a core isolation hint
#   --dry-run           print every command that would change the system, change nothing
#
# Needs root (except --dry-run/--status), dpdk-devbind.py (Debian package `dpdk`).
# Examples:
#   scripts/nic-setup.sh --dry-run --hugepages 1024 --bind 0000:3b:00.0,0000:3b:00.1
#   scripts/nic-setup.sh --unbind 0000:3b:00.0 --driver ixgbe
set -euo pipefail

DRY=0
HUGEPAGES=
HP_SIZE=2M
MOUNT=1
BIND=
UNBIND=
DRIVER=
NOIOMMU=0
STATUS=0
# Overridable for tests (scripts/test-nic-setup.sh): the sysfs root and the devbind tool.
SYS=${NIC_SETUP_SYSFS:-/sys}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

die() {
    echo "nic-setup: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case $1 in
    --dry-run) DRY=1 ;;
    --hugepages) HUGEPAGES=${2:?--hugepages needs a count}; shift ;;
    --hugepage-size) HP_SIZE=${2:?--hugepage-size needs 2M or 1G}; shift ;;
    --no-mount) MOUNT=0 ;;
    --bind) BIND=${2:?--bind needs PCI addresses}; shift ;;
    --unbind) UNBIND=${2:?--unbind needs PCI addresses}; shift ;;
    --driver) DRIVER=${2:?--driver needs a kernel driver name}; shift ;;
    --noiommu) NOIOMMU=1 ;;
    --status) STATUS=1 ;;
    -h | --help) usage 0 ;;
    *) echo "nic-setup: unknown argument: $1" >&2; usage 2 ;;
    esac
    shift
done

case $HP_SIZE in
2M | 2m) HP_KB=2048 ;;
1G | 1g) HP_KB=1048576 ;;
*) die "--hugepage-size must be 2M or 1G, not $HP_SIZE" ;;
esac
if [ -n "$HUGEPAGES" ] && ! [[ $HUGEPAGES =~ ^[0-9]+$ ]]; then
    die "--hugepages must be a number, not $HUGEPAGES"
fi
if [ -z "$HUGEPAGES$BIND$UNBIND" ] && [ "$NOIOMMU" = 0 ]; then
    STATUS=1
fi
if [ "$DRY" = 0 ] && [ "$STATUS" = 0 ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or with --dry-run)"
fi

# Runs a command, or prints it under --dry-run.
run() {
    if [ "$DRY" = 1 ]; then
        echo "would run: $*"
    else
        echo "+ $*"
        "$@"
    fi
}

# Writes VALUE to a sysfs/procfs FILE, or prints it under --dry-run.
write() {
    local value=$1 file=$2
    if [ "$DRY" = 1 ]; then
        echo "would run: echo $value > $file"
    else
        echo "+ echo $value > $file"
        echo "$value" >"$file"
    fi
}

# Splits a comma-separated PCI list (checked by check_pci_list first).
pci_list() {
    echo "${1//,/ }"
}

# Exits unless every address of a comma-separated list has the form DDDD:BB:DD.F.
check_pci_list() {
    local p
    for p in $(pci_list "$1"); do
        [[ $p =~ ^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$ ]] ||
            die "not a full PCI address (DDDD:BB:DD.F): $p"
    done
}

devbind() {
    local tool=${NIC_SETUP_DEVBIND:-}
    [ -n "$tool" ] || tool=$(command -v dpdk-devbind.py || command -v dpdk-devbind || true)
    if [ -z "$tool" ]; then
        [ "$DRY" = 1 ] || die "dpdk-devbind.py not found (apt-get install dpdk)"
        tool=dpdk-devbind.py
    fi
    run "$tool" "$@"
}

numa_nodes() {
    local n
    if [ -d "$SYS/devices/system/node/node0" ]; then
        for n in "$SYS"/devices/system/node/node[0-9]*; do basename "$n"; done
    else
        echo node0
    fi
}

setup_hugepages() {
    local node f total=0
    for node in $(numa_nodes); do
        f=$SYS/devices/system/node/$node/hugepages/hugepages-${HP_KB}kB/nr_hugepages
        [ -e "$f" ] || f=$SYS/kernel/mm/hugepages/hugepages-${HP_KB}kB/nr_hugepages
        [ -e "$f" ] || [ "$DRY" = 1 ] || die "no ${HP_SIZE} hugepage support ($f)"
        write "$HUGEPAGES" "$f"
        total=$((total + HUGEPAGES))
    done
    echo "hugepages: $HUGEPAGES x $HP_SIZE per node, $total in all" \
        "($((total * HP_KB / 1024)) MiB)"
    if [ "$DRY" = 0 ]; then
        for node in $(numa_nodes); do
            f=$SYS/devices/system/node/$node/hugepages/hugepages-${HP_KB}kB/nr_hugepages
            [ -e "$f" ] && [ "$(cat "$f")" -lt "$HUGEPAGES" ] &&
                echo "warning: $node got only $(cat "$f") pages (memory fragmented: reserve at boot)" >&2
        done
    fi
    if [ "$MOUNT" = 1 ]; then
        if grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
            echo "/dev/hugepages already mounted"
        else
            run mkdir -p /dev/hugepages
            run mount -t hugetlbfs -o pagesize="$HP_SIZE" nodev /dev/hugepages
        fi
    fi
}

setup_vfio() {
    if [ "$NOIOMMU" = 1 ]; then
        run modprobe vfio enable_unsafe_noiommu_mode=1
        write 1 "$SYS/module/vfio/parameters/enable_unsafe_noiommu_mode"
    elif [ -z "$(ls -A "$SYS/kernel/iommu_groups" 2>/dev/null)" ]; then
        echo "warning: no IOMMU groups: enable the IOMMU (BIOS VT-d/AMD-Vi, kernel command line" \
            "intel_iommu=on iommu=pt) or use --noiommu (no DMA isolation)" >&2
    fi
    run modprobe vfio-pci
}

bind_devices() {
    local pci dev ifname
    setup_vfio
    for pci in $(pci_list "$BIND"); do
        dev=$SYS/bus/pci/devices/$pci
        if [ ! -e "$dev" ]; then
            [ "$DRY" = 1 ] || die "no PCI device $pci"
            echo "warning: no PCI device $pci on this host" >&2
        fi
        # dpdk-devbind refuses an interface that is up (it would cut a live link).
        for ifname in "$dev"/net/*; do
            [ -e "$ifname" ] || continue
            run ip link set dev "$(basename "$ifname")" down
        done
        devbind --bind=vfio-pci "$pci"
    done
}

unbind_devices() {
    local pci
    for pci in $(pci_list "$UNBIND"); do
        if [ -n "$DRIVER" ]; then
            devbind --bind="$DRIVER" "$pci"
        else
            devbind --unbind "$pci"
            write "$pci" "$SYS/bus/pci/drivers_probe"
        fi
    done
}

cpus_of_node() {
    cat "$SYS/devices/system/node/$1/cpulist" 2>/dev/null || echo "?"
}

status() {
    local node f pci dev drv numa
    echo "== hugepages"
    for node in $(numa_nodes); do
        for f in "$SYS"/devices/system/node/"$node"/hugepages/hugepages-*/nr_hugepages; do
            [ -e "$f" ] || continue
            echo "$node $(basename "$(dirname "$f")"): $(cat "$f") reserved," \
                "$(cat "$(dirname "$f")/free_hugepages") free"
        done
    done
    grep -s hugetlbfs /proc/mounts || echo "no hugetlbfs mounted"
    echo "== NICs (PCI, driver, NUMA node, node CPUs)"
    for dev in "$SYS"/bus/pci/devices/*; do
        [ -e "$dev/class" ] || continue
        # 0x02xxxx: network controllers.
        case $(cat "$dev/class") in 0x02*) ;; *) continue ;; esac
        pci=$(basename "$dev")
        drv=$(basename "$(readlink "$dev/driver" 2>/dev/null || echo none)")
        numa=$(cat "$dev/numa_node" 2>/dev/null || echo -1)
        [ "$numa" -ge 0 ] 2>/dev/null || numa=0
        echo "$pci driver=$drv numa=node$numa cpus=$(cpus_of_node "node$numa")"
    done
    echo "== core isolation"
    local isolated
    isolated=$(cat "$SYS/devices/system/cpu/isolated" 2>/dev/null || echo '?')
    echo "isolated now: ${isolated:-none}"
    echo "hint: keep core 0 (and its sibling) for the OS and the director's control thread;"
    echo "      isolate the worker cores on the NIC's NUMA node on the kernel command line:"
    echo "      isolcpus=2-5 nohz_full=2-5 rcu_nocbs=2-5 irqaffinity=0-1"
    echo "      then EAL -l 1-5 (main lcore 1) and [workers] lcores = [2, 3, 4, 5] in director.toml"
}

[ -z "$BIND" ] || check_pci_list "$BIND"
[ -z "$UNBIND" ] || check_pci_list "$UNBIND"
[ -n "$HUGEPAGES" ] && setup_hugepages
[ -n "$UNBIND" ] && unbind_devices
if [ -n "$BIND" ]; then
    bind_devices
elif [ "$NOIOMMU" = 1 ]; then
    setup_vfio
fi
[ "$STATUS" = 1 ] && status
exit 0
