#!/usr/bin/env bash
# Times `vhd convert` beside `qemu-img convert` and `cp --sparse=always` on
# the same input, in one run, and prints the ratios to cp.
#
#   scripts/bench.sh [SIZE_MiB] [RUNS]
#
# The input is a raw image of SIZE_MiB (default 4096) with 40% of its
# 1 MiB blocks filled with random data at scattered offsets. Every timing
# is the median of RUNS (default 3) runs with warm page cache.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-4096}
runs=${2:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/vhd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

for t in qemu-img cp python3 awk; do
	command -v "$t" >/dev/null || { echo "bench: $t missing (make deps)" >&2; exit 1; }
done
go build -o "$work/vhd" ./cmd/vhd

# Input: 40% of the blocks, chosen by a fixed seed, hold random data.
python3 - "$work/in.img" "$size_mib" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(42)
with open(path, "wb") as f:
    f.truncate(mib << 20)
    for b in sorted(rnd.sample(range(mib), mib * 4 // 10)):
        f.seek(b << 20)
        f.write(os.urandom(1 << 20))
PY
data=$(du -B1 "$work/in.img" | cut -f1)
echo "input: ${size_mib} MiB raw, $((data >> 20)) MiB of data"

# median SECONDS of running "$@" $runs times, removing $out before each run.
median() {
	local out=$1; shift
	local times=()
	for _ in $(seq "$runs"); do
		rm -f "$out"
		sync
		local s e
		s=$(date +%s.%N)
		"$@" >/dev/null
		e=$(date +%s.%N)
		times+=("$(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.3f", b-a}')")
	done
	printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((runs + 1) / 2))p"
}

row() { # name seconds base
	awk -v n="$1" -v t="$2" -v b="$3" \
		'BEGIN{printf "%-34s %8.3f s  %5.2fx cp\n", n, t, t / b}'
}

echo
echo "raw -> vhdx"
cp_t=$(median "$work/cp.img" cp --sparse=always "$work/in.img" "$work/cp.img")
vhd_t=$(median "$work/out.vhdx" "$work/vhd" convert "$work/in.img" "$work/out.vhdx")
qemu_t=$(median "$work/q.vhdx" qemu-img convert -f raw -O vhdx "$work/in.img" "$work/q.vhdx")
row "cp --sparse=always (raw)" "$cp_t" "$cp_t"
row "vhd convert" "$vhd_t" "$cp_t"
row "qemu-img convert -O vhdx" "$qemu_t" "$cp_t"
"$work/vhd" convert "$work/in.img" "$work/src.vhdx"

echo
echo "vhdx -> raw"
cp_t=$(median "$work/cp.vhdx" cp --sparse=always "$work/src.vhdx" "$work/cp.vhdx")
vhd_t=$(median "$work/out.img" "$work/vhd" convert "$work/src.vhdx" "$work/out.img")
qemu_t=$(median "$work/q.img" qemu-img convert -f vhdx -O raw "$work/src.vhdx" "$work/q.img")
row "cp --sparse=always (vhdx)" "$cp_t" "$cp_t"
row "vhd convert" "$vhd_t" "$cp_t"
row "qemu-img convert -O raw" "$qemu_t" "$cp_t"

cmp "$work/in.img" "$work/out.img" && echo "round trip: identical"
