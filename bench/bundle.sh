#!/usr/bin/env bash
# Packs the bench (and its examples pipeline_cost, memory_floor, memory_latency,
# syn_scaling) with every shared library they load, the dynamic loader and DPDK's mempool
# ring driver into one folder, to run on a host without DPDK installed (as the Xeon results
# in bench/results were produced):
#
#   bench/bundle.sh [DIR]            # default target/bench-bundle; builds the release binaries
#   DIR/run bench --scenarios nat ...   # on the other host (same CPU architecture)
#   DIR/run pipeline_cost nat 1000 20000000 mbuf
#   BENCH_BIN=DIR/bench.sh bench/run-hugepages.sh ...   # with hugepages (root)
#
# `run` starts the binary through the bundled loader with the bundled libraries only, and
# preloads librte_mempool_ring (EAL loads it from its plugin directory, absent there).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/target/bench-bundle}
cd "$here"
cargo build --release -p bench --bins --examples
rm -rf "$out"
mkdir -p "$out/lib"
bins=(target/release/bench target/release/examples/pipeline_cost target/release/examples/memory_floor target/release/examples/memory_latency target/release/examples/syn_scaling)
pmds=$(pkg-config --variable=pmdsdir libdpdk 2>/dev/null || true)
[ -n "$pmds" ] || pmds=$(dirname "$(find /usr/lib -name 'librte_mempool_ring.so.*' -print -quit)")
ring=$(ls "$pmds"/librte_mempool_ring.so.* | head -1)
for b in "${bins[@]}"; do
	cp "$b" "$out/"
	strip "$out/$(basename "$b")"
done
cp -L "$ring" "$out/lib/librte_mempool_ring.so"
for f in "${bins[@]}" "$ring"; do
	ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}'
done | sort -u | while read -r l; do cp -L "$l" "$out/lib/"; done
loader=$(basename "$(ls "$out"/lib/ld-linux*.so* | head -1)")
cat > "$out/run" <<RUN
#!/bin/bash
# Runs one of the bundled binaries with the bundled loader and libraries.
d=\$(cd "\$(dirname "\$0")" && pwd)
b=\${1:?usage: run bench|pipeline_cost|memory_floor|memory_latency|syn_scaling ARGS...}; shift
exec "\$d/lib/$loader" --library-path "\$d/lib" --preload "\$d/lib/librte_mempool_ring.so" "\$d/\$b" "\$@"
RUN
chmod +x "$out/run"
# For bench/run-hugepages.sh on that host: BENCH_BIN=DIR/bench.sh bench/run-hugepages.sh ...
printf '#!/bin/bash\nexec "$(dirname "$0")/run" bench "$@"\n' > "$out/bench.sh"
chmod +x "$out/bench.sh"
echo "bundle: $out ($(du -sh "$out" | cut -f1)); run with $out/run bench ..."
