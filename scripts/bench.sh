#!/usr/bin/env bash
# Times `vhd convert` beside `qemu-img convert` and `cp --sparse=always` on
# the same input, in one run, and prints the ratios to cp.
#
#   scripts/bench.sh [SIZE_MiB] [RUNS]
#
# The input is a raw image of SIZE_MiB (default 4096) with 40% of its
# 1 MiB blocks filled with random data at scattered offsets. Every timing
# is the median of RUNS (default 5) runs with warm page cache.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-4096}
runs=${2:-5}
work=$(mktemp -d "${TMPDIR:-/tmp}/vhd-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

for t in qemu-img cp python3 awk; do
	command -v "$t" >/dev/null || { echo "bench: $t missing (make deps)" >&2; exit 1; }
done
# On tmpfs a sync costs nothing, so the synced rows would say nothing.
if [ "$(stat -f -c %T "$work")" = tmpfs ]; then
	echo "bench: $work is on tmpfs, where sync is free; set TMPDIR to a directory on a disk" >&2
fi
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

row() { # name seconds base [durable-base]
	awk -v n="$1" -v t="$2" -v b="$3" -v d="${4:-}" 'BEGIN{
		printf "%-36s %7.3f s  %5.2fx cp", n, t, t / b
		if (d != "") printf "  %5.2fx cp+sync", t / d
		printf "\n"}'
}

# One direction: cp, cp + fsync of the copy, vhd convert without and
# with its fsync, and qemu-img convert (whose default cache mode,
# "unsafe", does not sync either). Compare like with like: --no-sync
# and qemu-img with cp, the default (durable) vhd convert with cp+sync.
bench() { # label src srcfmt dst dstfmt
	local label=$1 src=$2 sfmt=$3 dst=$4 dfmt=$5 ext=${4##*.}
	echo
	echo "$label"
	local cp_t cps_t vn_t v_t q_t
	cp_t=$(median "$work/cp.$ext" cp --sparse=always "$src" "$work/cp.$ext")
	cps_t=$(median "$work/cp.$ext" sh -c 'cp --sparse=always "$1" "$2" && sync "$2"' sh "$src" "$work/cp.$ext")
	vn_t=$(median "$dst" "$work/vhd" convert --no-sync "$src" "$dst")
	v_t=$(median "$dst" "$work/vhd" convert "$src" "$dst")
	q_t=$(median "$work/q.$dfmt" qemu-img convert -f "$sfmt" -O "$dfmt" "$src" "$work/q.$dfmt")
	row "cp --sparse=always" "$cp_t" "$cp_t"
	row "cp --sparse=always + sync" "$cps_t" "$cp_t"
	row "vhd convert --no-sync" "$vn_t" "$cp_t"
	row "vhd convert (synced)" "$v_t" "$cp_t" "$cps_t"
	row "qemu-img convert -O $dfmt" "$q_t" "$cp_t"
}

bench "raw -> vhdx" "$work/in.img" raw "$work/out.vhdx" vhdx
"$work/vhd" convert "$work/in.img" "$work/src.vhdx"
bench "vhdx -> raw" "$work/src.vhdx" vhdx "$work/out.img" raw

cmp "$work/in.img" "$work/out.img" && echo "round trip: identical"
