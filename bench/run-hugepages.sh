#!/usr/bin/env bash
# Runs the bench with 2 MB hugepages and puts the machine back as it was afterwards (also on
# failure or Ctrl-C): reserves HUGEPAGES pages (default 512 = 1 GB), mounts hugetlbfs on
# /dev/hugepages if nothing is mounted there, runs `bench --hugepages` (EAL --in-memory, so no
# files are left in hugetlbfs) with the given arguments, then unmounts what it mounted and
# restores the previous page count. Needs root.
#
#   bench/run-hugepages.sh --out bench/results/hugepages
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BENCH_BIN:-$here/../target/release/bench}
pages=${HUGEPAGES:-512}
[ -x "$bin" ] || { echo "run-hugepages: build first: cargo build --release -p bench" >&2; exit 2; }
old=$(cat /proc/sys/vm/nr_hugepages)
mounted=0
cleanup() {
	if [ "$mounted" = 1 ]; then umount /dev/hugepages || echo "run-hugepages: umount failed" >&2; fi
	echo "$old" > /proc/sys/vm/nr_hugepages
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "$pages" > /proc/sys/vm/nr_hugepages
got=$(cat /proc/sys/vm/nr_hugepages)
if [ "$got" -lt "$pages" ]; then
	echo "run-hugepages: only $got of $pages hugepages could be reserved (memory fragmented?)" >&2
	exit 1
fi
if ! mountpoint -q /dev/hugepages; then
	mkdir -p /dev/hugepages
	mount -t hugetlbfs nodev /dev/hugepages
	mounted=1
fi
"$bin" --hugepages "$@"
