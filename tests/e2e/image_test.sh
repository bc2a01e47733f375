#!/usr/bin/env bash
# Image mode: an ext4 image file backed up whole, then again after 1% of its
# 4 KiB blocks were rewritten at random; the second backup must cost about
# the rewritten blocks (rsync deltas), not the 4 MiB extents that hold them.
source "$(dirname "$0")/lib.sh"

PATH=$PATH:/usr/sbin:/sbin
if ! command -v mkfs.ext4 >/dev/null || ! command -v debugfs >/dev/null; then
  echo "SKIP: e2fsprogs not installed"; exit 77
fi

MIB=256
EXTENT=$((4 * 1048576))
BLOCK=4096

vault_with_agent finance

# A 256 MiB ext4 file system holding ~200 MiB of random data.
img=$WORK/disk.img
truncate -s ${MIB}M "$img"
mkfs.ext4 -F -q "$img"
head -c $((200 * 1048576)) /dev/urandom >"$WORK/payload.bin"
debugfs -w -R "write $WORK/payload.bin payload.bin" "$img" >/dev/null 2>&1
rm -f "$WORK/payload.bin"

"$AGENT" backup --state "$WORK/agent" --image "$img" --json >"$WORK/b1.json"
total=$(json "$WORK/b1.json" extents_total)
holes=$(json "$WORK/b1.json" extents_hole)
new1=$(json "$WORK/b1.json" new_bytes)
echo "first backup: $total extents, $holes holes, $new1 bytes sent"
check "first backup reports a snapshot" test -n "$(json "$WORK/b1.json" snapshot)"
check "first backup covers the image ($total extents)" test "$total" -eq $((MIB * 1048576 / EXTENT))
check "first backup sends the non-zero extents whole" \
  test "$new1" -ge $(((total - holes) * EXTENT))
check "first backup sends no delta" test "$(json "$WORK/b1.json" extents_delta)" -eq 0

"$AGENT" backup --state "$WORK/agent" --image "$img" --json >"$WORK/b2.json"
new2=$(json "$WORK/b2.json" new_bytes)
check "unchanged re-backup sends ~0 bytes (got $new2)" test "$new2" -lt 65536
check "unchanged re-backup changes no extent" test "$(json "$WORK/b2.json" extents_changed)" -eq 0

# Rewrite 1% of the 4 KiB blocks at random, in extents that are not holes (a
# block written into a hole makes a new extent, which is sent whole).
mapfile -t data_extents < <(python3 - "$img" "$EXTENT" <<'PY'
import sys
path, extent = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    i = 0
    while True:
        chunk = f.read(extent)
        if not chunk:
            break
        if chunk.count(0) != len(chunk):
            print(i)
        i += 1
PY
)
blocks_per_extent=$((EXTENT / BLOCK))
want=$((MIB * 1048576 / BLOCK / 100))
declare -A written=() touched=()
while [[ ${#written[@]} -lt $want ]]; do
  x=${data_extents[$((RANDOM % ${#data_extents[@]}))]}
  b=$((x * blocks_per_extent + (RANDOM % blocks_per_extent)))
  [[ -n ${written[$b]:-} ]] && continue
  written[$b]=1
  touched[$x]=1
  dd if=/dev/urandom of="$img" bs=$BLOCK seek=$b count=1 conv=notrunc status=none
done
blocks=${#written[@]}
changed=${#touched[@]}

"$AGENT" backup --state "$WORK/agent" --image "$img" --json >"$WORK/b3.json"
new3=$(json "$WORK/b3.json" new_bytes)
delta3=$(json "$WORK/b3.json" delta_bytes)
whole=$((changed * EXTENT))
written_bytes=$((blocks * BLOCK))
echo "1% rewrite: $blocks blocks of 4 KiB ($written_bytes bytes) in $changed extents"
echo "  sent $new3 bytes ($delta3 in $(json "$WORK/b3.json" extents_delta) deltas);" \
  "whole extents would cost $whole bytes" \
  "($(python3 -c "print(f'{100*$new3/$whole:.2f}% of it, {$new3/$written_bytes:.2f}x the bytes written')"))"
check "every changed extent was seen ($(json "$WORK/b3.json" extents_changed) of $changed)" \
  test "$(json "$WORK/b3.json" extents_changed)" -eq "$changed"
check "every changed extent went as a delta" test "$(json "$WORK/b3.json" extents_delta)" -eq "$changed"
check "second backup costs <= 1/10 of whole extents ($new3 vs $whole)" test $((new3 * 10)) -le "$whole"
check "second backup costs a small multiple of the bytes written ($new3 vs $written_bytes)" \
  test "$new3" -le $((written_bytes * 2)) -a "$new3" -ge "$written_bytes"

"$VAULT" snapshot list --department finance --data "$WORK/vault" --json >"$WORK/list.json"
check "the vault lists three snapshots" test "$(json "$WORK/list.json" snapshots)" -eq 3
# The vault knows each delta's base (put_delta_record), so GC keeps bases
# by itself, not only through the agent's manifest (doc/design.md 22.2).
"$VAULT" gc --data "$WORK/vault" --dry-run --json >"$WORK/gc.json"
check "the vault tracks the base of every delta it stores ($(json "$WORK/gc.json" delta_records))" \
  test "$(json "$WORK/gc.json" delta_records)" -ge "$changed"
finish
