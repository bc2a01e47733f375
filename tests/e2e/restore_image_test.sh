#!/usr/bin/env bash
# Image restore, real processes on 127.0.0.1: an image snapshot (whole
# extents, then rsync deltas) restores byte for byte to a new file and, with
# --in-place, over a stale copy while transferring and writing at most 2% of
# the image (the failback path); a block device target when loop devices
# can be made.
source "$(dirname "$0")/lib.sh"

RESTORE=$BIN/restore/cairn-restore
PATH=$PATH:/usr/sbin:/sbin
MIB=128

vault_with_agent finance
ST=(--state "$WORK/agent")

img=$WORK/disk.img
head -c $((MIB * 1048576)) /dev/urandom >"$img"
# Two all-zero extents in the middle: holes.
dd if=/dev/zero of="$img" bs=4M seek=10 count=2 conv=notrunc 2>/dev/null
"$AGENT" backup "${ST[@]}" --image "$img" --json >"$WORK/b1.json"
snap1=$(json "$WORK/b1.json" snapshot)
cp "$img" "$WORK/v1.img"
# Rewrite 1% of the 4 KiB blocks at random.
python3 - "$img" <<'PY'
import os, random, sys
path = sys.argv[1]
blocks = os.path.getsize(path) // 4096
with open(path, "r+b") as f:
    for b in random.Random(5).sample(range(blocks), blocks // 100):
        f.seek(b * 4096)
        f.write(os.urandom(4096))
PY
"$AGENT" backup "${ST[@]}" --image "$img" --json >"$WORK/b2.json"
check "second backup sent deltas" test "$(json "$WORK/b2.json" extents_delta)" -gt 0

"$RESTORE" restore latest "${ST[@]}" --target "$WORK/new.img" --json >"$WORK/r1.json"
check "image restores to a new file" cmp "$img" "$WORK/new.img"
check "the restore says it wrote an image" test "$(json "$WORK/r1.json" image_target)" = True
"$RESTORE" restore "$snap1" "${ST[@]}" --target "$WORK/first.img" >/dev/null
check "the first version restores too" cmp "$WORK/v1.img" "$WORK/first.img"
alloc=$(du -k "$WORK/first.img" | cut -f1)
# st_blocks also counts the file system's own blocks for a file's extent
# tree (one 4 KiB block once a fragmented file has more than 4 extents): 1 MiB
# of slack, far below the 8 MiB of holes.
check "its all-zero extents stay holes (${alloc} KiB allocated)" test "$alloc" -le $(((MIB - 7) * 1024))

set +e
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/new.img" >"$WORK/exists.txt" 2>&1
rc=$?
set -e
check "an existing image target needs --in-place or --overwrite (exit 2)" test "$rc" -eq 2

# Failback: the stale copy (the previous version) brought up to date in place.
cp "$WORK/v1.img" "$WORK/stale.img"
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/stale.img" --in-place --json >"$WORK/r2.json"
check "in-place restore over the stale copy is byte-identical" cmp "$img" "$WORK/stale.img"
size=$((MIB * 1048576))
recv=$(json "$WORK/r2.json" bytes_received)
sent=$(json "$WORK/r2.json" bytes_sent)
wrote=$(json "$WORK/r2.json" bytes_written)
echo "in place: received $recv, sent $sent, wrote $wrote of $size bytes"
check "in place transfers at most 2% of the image ($((recv + sent)) bytes)" \
  test $(((recv + sent) * 50)) -le "$size"
check "in place writes at most 2% of the image ($wrote bytes)" test $((wrote * 50)) -le "$size"
# The stale copy is the version the deltas were made against: the vault
# answers with its stored deltas, so no signature is sent (about 100 bytes
# per extent, where a signature is 20 KiB: 0.5% of the image).
check "the failback sent no signatures ($sent bytes)" test $((sent * 1000)) -le "$size"
# The two extents that were holes in the stale copy have data now: they are
# fetched whole, not asked for as deltas against a signature of zeros (a
# 20 KiB signature each, and work for the vault). Every extent costs one
# request of about 100 bytes.
extents=$((MIB / 4))
check "no signature of zeros was sent ($sent bytes for $extents extents)" \
  test "$sent" -le $((extents * 200))

# The other direction: back to the first snapshot (stored whole) in place.
"$RESTORE" restore "$snap1" "${ST[@]}" --target "$WORK/stale.img" --in-place --json >"$WORK/r3.json"
check "in place back to the first version is byte-identical" cmp "$WORK/v1.img" "$WORK/stale.img"
recv=$(json "$WORK/r3.json" bytes_received)
check "and transfers at most 2% ($recv bytes)" test $((recv * 50)) -le "$size"
sent=$(json "$WORK/r3.json" bytes_sent)
check "going back, signatures are sent: no stored chain leads there ($sent bytes)" \
  test $((sent * 1000)) -gt "$size"

# --overwrite replaces the file whole.
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/stale.img" --overwrite >/dev/null
check "--overwrite restores the image whole" cmp "$img" "$WORK/stale.img"

"$RESTORE" restore latest "${ST[@]}" --verify-only >"$WORK/v.txt"
check "--verify-only passes on the image" grep -q "no damage" "$WORK/v.txt"

# The vault dies in the middle of an image restore to a new file: exit 4,
# the error says the target is as it was, and it is (no file, no temporary).
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/cut.img" >"$WORK/cut.txt" 2>&1 &
restore_pid=$!
for _ in $(seq 1 500); do
  partial=$(find "$WORK" -maxdepth 1 -name '.cairn-restore-*' -exec du -k {} + 2>/dev/null | cut -f1)
  [[ ${partial:-0} -gt 4096 ]] && break
  sleep 0.01
done
kill -KILL "$VAULT_PID"
wait "$VAULT_PID" 2>/dev/null || true
set +e
wait "$restore_pid"
rc=$?
set -e
check "a restore that loses its vault exits 4 (exit $rc)" test "$rc" -eq 4
check "its error names the vault and says the target is as it was" \
  grep -q "lost the connection to the vault at 127.0.0.1:$port.*the target is as it was" "$WORK/cut.txt"
check "and it is: no image at the target" test ! -e "$WORK/cut.img"
check "and no temporary left beside it" \
  test -z "$(find "$WORK" -maxdepth 1 -name '.cairn-restore-*')"
vault_start "$WORK/vault" "$port"

# The vault dies in the middle of a verification: exit 4, and the error says
# nothing was written. The restore is paused once it has used 80 ms of CPU
# (past setup, into the stream; it needs several times that for 128 MiB), so
# the vault dies mid-stream however fast this machine is, then resumed.
"$RESTORE" restore latest "${ST[@]}" --verify-only >"$WORK/vcut.txt" 2>&1 &
restore_pid=$!
python3 - "$restore_pid" <<'PY'
import os, signal, sys, time
pid = int(sys.argv[1])
tick = os.sysconf("SC_CLK_TCK")
deadline = time.time() + 30
while time.time() < deadline:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        break
    if (int(fields[11]) + int(fields[12])) / tick >= 0.08:
        os.kill(pid, signal.SIGSTOP)
        break
    time.sleep(0.001)
PY
kill -KILL "$VAULT_PID"
wait "$VAULT_PID" 2>/dev/null || true
kill -CONT "$restore_pid" 2>/dev/null || true
set +e
wait "$restore_pid"
rc=$?
set -e
check "a verification that loses its vault exits 4 (exit $rc)" test "$rc" -eq 4
check "its error says nothing was written" \
  grep -q "lost the connection to the vault at 127.0.0.1:$port.*nothing was written" "$WORK/vcut.txt"
check "and no chunk is called damaged: a delta base the vault could not send is the lost vault" \
  test -z "$(grep DAMAGED "$WORK/vcut.txt")"
vault_start "$WORK/vault" "$port"

# A block device target, when this machine lets the test make a loop device.
if command -v losetup >/dev/null && cp "$WORK/v1.img" "$WORK/loop.img" &&
  loopdev=$(losetup --find --show "$WORK/loop.img" 2>/dev/null); then
  set +e
  "$RESTORE" restore latest "${ST[@]}" --target "$loopdev" >"$WORK/dev.txt" 2>&1
  rc=$?
  set -e
  check "a block device needs --in-place or --overwrite" test "$rc" -eq 2
  "$RESTORE" restore latest "${ST[@]}" --target "$loopdev" --in-place --json >"$WORK/r4.json"
  sync
  check "in-place restore to a block device is byte-identical" cmp "$img" "$loopdev"
  losetup -d "$loopdev"
else
  echo "NOTE: no loop device here; the block-device target is not exercised"
fi

finish
