#!/usr/bin/env bash
# The main job, end to end: make a 256 MiB raw disk image with a partition
# table and scattered data, convert it to a dynamic VHDX, show its info
# and allocation map, and prove the content survived the trip.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${DEMO_DIR:-demo}
mkdir -p "$out"
rm -f "$out/disk.img" "$out/disk.vhdx" "$out/disk.vhd"
vhd=./bin/vhd

# A sparse 256 MiB raw image: an MBR, then the repository's own source
# written at a few scattered offsets, the rest holes.
truncate -s 256M "$out/disk.img"
git ls-files -z | xargs -0 cat > "$out/payload"
for mib in 1 37 100 255; do
	dd if="$out/payload" of="$out/disk.img" bs=1M seek="$mib" conv=notrunc status=none
done
printf '\x55\xaa' | dd of="$out/disk.img" bs=1 seek=510 conv=notrunc status=none
rm -f "$out/payload"

set -x
$vhd convert --progress "$out/disk.img" "$out/disk.vhdx"
$vhd info "$out/disk.vhdx"
$vhd map "$out/disk.vhdx"
$vhd compare "$out/disk.img" "$out/disk.vhdx"
$vhd check "$out/disk.vhdx"
