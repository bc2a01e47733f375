#!/usr/bin/env bash
# cairn-restore end to end, real processes on 127.0.0.1: a tree holding every
# kind of entry round-trips (contents and metadata compared by treecmp.py);
# --include, --verify-only, the non-empty-target rule, symlinks in the way;
# a flipped byte in a pack names the affected files and the rest is
# restored; a crafted "../" entry is refused; the vault killed mid-restore
# leaves no temporary files.
source "$(dirname "$0")/lib.sh"

RESTORE=$BIN/restore/cairn-restore
CRAFT=$BIN/tests/e2e/craft_snapshot
TREECMP=$(dirname "$0")/treecmp.py
PATH=$PATH:/usr/sbin:/sbin

vault_with_agent finance
ST=(--state "$WORK/agent")

# --- every kind of entry --------------------------------------------------
src=$WORK/src
make_tree "$src" 8
mkdir -p "$src/empty/deeper-empty" "$src/ro" "$src/perm"
echo "read-only dir" >"$src/ro/inside"
chmod 0555 "$src/ro"
echo x >"$src/perm/setuid" && chmod 4755 "$src/perm/setuid"
echo y >"$src/perm/private" && chmod 0600 "$src/perm/private"
echo z >"$src/perm/sticky-dir-file" && mkdir "$src/perm/sticky" && chmod 1777 "$src/perm/sticky"
ln "$src/sub/f1" "$src/hard1"
ln "$src/sub/f1" "$src/sub/deeper/hard2"
ln -s /etc/passwd "$src/abs-link"
ln -s does/not/exist "$src/dangling"
mkfifo "$src/fifo"
mknod "$src/null-dev" c 1 3
truncate -s 64M "$src/sparse"
printf 'middle' | dd of="$src/sparse" bs=1 seek=$((32 * 1048576)) conv=notrunc 2>/dev/null
printf 'end' | dd of="$src/sparse" bs=1 seek=$((64 * 1048576 - 3)) conv=notrunc 2>/dev/null
: >"$src/empty-file"
xattr_ok=1
setfattr -n user.cairn -v "restore me" "$src/sub/f2" 2>/dev/null || xattr_ok=0
chown 4321:8765 "$src/sub/f3"
chown -h 4321:8765 "$src/link"
touch -h -d '2001-02-03 04:05:06.123456789' "$src/link"
touch -d '1999-12-31 23:59:59.5' "$src/sub"
touch -d '2010-05-05 05:05:05' "$src/ro"

"$AGENT" backup "${ST[@]}" "$src" --json >"$WORK/b1.json"
snap=$(json "$WORK/b1.json" snapshot)
check "backup of the rich tree" test -n "$snap"

"$RESTORE" snapshots "${ST[@]}" >"$WORK/list.txt"
check "snapshots lists it by its short ID" grep -q "${snap:0:8}" "$WORK/list.txt"
"$RESTORE" snapshots "${ST[@]}" --json >"$WORK/list.json"
check "snapshots --json counts it" test "$(json "$WORK/list.json" snapshots)" -eq 1
"$RESTORE" ls "$snap" "${src#/}/sub" "${ST[@]}" >"$WORK/ls.txt"
check "ls shows a directory's entries" grep -q " f2$" "$WORK/ls.txt"

"$RESTORE" restore latest "${ST[@]}" --target "$WORK/out" --json >"$WORK/r1.json"
check "restore succeeds" test "$(json "$WORK/r1.json" ok)" = True
python3 "$TREECMP" "$src" "$WORK/out$src" >"$WORK/cmp1.txt" || true
tail -1 "$WORK/cmp1.txt"
check "restored tree is identical: contents, modes, owners, times, links, holes, xattrs" \
  grep -q " 0 difference(s)" "$WORK/cmp1.txt"
check "diff -r agrees (regular files)" diff -r --no-dereference --exclude=fifo --exclude=null-dev "$src" "$WORK/out$src"
check "no temporary file is left" test -z "$(find "$WORK/out" -name '.cairn-restore-*')"
alloc=$(du -k "$WORK/out$src/sparse" | cut -f1)
check "the sparse file stays sparse (${alloc} KiB allocated of 64 MiB)" test "$alloc" -lt 1024
[[ $xattr_ok -eq 1 ]] && check "xattr restored" \
  test "$(getfattr --only-values -n user.cairn "$WORK/out$src/sub/f2")" = "restore me"

# --- target rules --------------------------------------------------------
set +e
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/out" >"$WORK/nonempty.txt" 2>&1
rc=$?
set -e
check "a non-empty target is refused (exit 2)" test "$rc" -eq 2
check "and the message says what to do" grep -q -- "--overwrite" "$WORK/nonempty.txt"
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/out" --overwrite >/dev/null
python3 "$TREECMP" "$src" "$WORK/out$src" >"$WORK/cmp2.txt" || true
check "--overwrite over the same tree keeps it identical" grep -q " 0 difference(s)" "$WORK/cmp2.txt"

# --in-place over a restored tree that has drifted: only what differs moves.
out=$WORK/out$src
printf 'drift' | dd of="$out/big.bin" bs=1 seek=100000 conv=notrunc 2>/dev/null
truncate -s 3000000 "$out/sub/big2.bin"
rm "$out/sub/f5" && ln -s /etc/hostname "$out/sub/f5"
chmod 0777 "$out/sub/f6"
# Small files (slices of group records): one rewritten at the same size,
# one grown, one shrunk.
head -c "$(stat -c %s "$out/sub/f7")" /dev/urandom | dd of="$out/sub/f7" conv=notrunc 2>/dev/null
printf 'more' >>"$out/sub/deeper/t3.txt"
truncate -s 5 "$out/sub/deeper/t4.txt"
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/out" --in-place --json >"$WORK/inplace.json"
python3 "$TREECMP" "$src" "$out" >"$WORK/cmp-inplace.txt" || true
tail -1 "$WORK/cmp-inplace.txt"
check "--in-place brings a drifted tree back identical" grep -q " 0 difference(s)" "$WORK/cmp-inplace.txt"
recv=$(json "$WORK/inplace.json" bytes_received)
total=$(json "$WORK/inplace.json" bytes)
echo "in place: received $recv of $total bytes"
check "--in-place fetched a fraction of the tree ($recv of $total bytes)" test $((recv * 2)) -lt "$total"

# A symlink planted where a restored directory goes must not be followed.
mkdir -p "$WORK/outside" "$WORK/trap"
first=${src#/}; first=${first%%/*}  # the first component of the source path
ln -s "$WORK/outside" "$WORK/trap/$first"
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/trap" --overwrite >/dev/null
check "nothing was written through the planted symlink" test -z "$(ls -A "$WORK/outside")"
check "the symlink was replaced by the restored directory" test -d "$WORK/trap/$first" -a ! -L "$WORK/trap/$first"

# --- --include ----------------------------------------------------------
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/inc" --include "${src#/}/sub/deeper" >/dev/null
check "--include restores the chosen directory" test -f "$WORK/inc$src/sub/deeper/t1.txt"
check "--include leaves the rest out" test ! -e "$WORK/inc$src/big.bin" -a ! -e "$WORK/inc$src/sub/f1"

# --- verify-only --------------------------------------------------------
"$RESTORE" restore latest "${ST[@]}" --verify-only >"$WORK/v1.txt"
check "--verify-only passes clean" grep -q "no damage" "$WORK/v1.txt"

# --- a flipped byte in a pack -------------------------------------------
vault_stop
pack=$(ls -S "$(packs_dir "$WORK/vault")"/*/*.pack | head -1)  # the largest: holds big.bin's data
cp "$pack" "$WORK/pack.bak"
python3 - "$pack" <<'EOF'
import sys
path = sys.argv[1]
with open(path, "r+b") as f:
    f.seek(0, 2)
    size = f.tell()
    off = size // 3
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x01]))
EOF
packs_put "$WORK/vault" "$pack"
vault_start "$WORK/vault" "$port"
set +e
"$RESTORE" restore latest "${ST[@]}" --verify-only --json >"$WORK/v2.json" 2>/dev/null
rc_verify=$?
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/dmg" --json >"$WORK/r2.json" 2>"$WORK/r2.err"
rc_restore=$?
set -e
check "--verify-only reports the damage (exit 1)" test "$rc_verify" -eq 1
check "restore over damage exits 1" test "$rc_restore" -eq 1
damaged=$(python3 -c "import json; d=json.load(open('$WORK/r2.json'))['damaged']; print(' '.join(p for x in d for p in x['paths']))")
echo "damaged: $damaged"
check "the damaged file is named" test -n "$damaged"
python3 "$TREECMP" "$src" "$WORK/dmg$src" >"$WORK/cmp3.txt" || true
other=$(grep -v -e "difference(s)" "$WORK/cmp3.txt" | grep -v -F -f <(for p in $damaged; do echo "${p#${src#/}/}"; done) || true)
check "everything else is restored identical" test -z "$other"
for p in $damaged; do
  check "damaged $p is kept aside as .cairn-damaged" test -f "$WORK/dmg/$p.cairn-damaged"
done
vault_stop
cp "$WORK/pack.bak" "$pack"
packs_put "$WORK/vault" "$pack"
vault_start "$WORK/vault" "$port"

# --- a crafted "../" entry ----------------------------------------------
crafted=$("$CRAFT" "$WORK/agent" "../../escape")
rc=$(rc_of "$RESTORE" restore "$crafted" "${ST[@]}" --target "$WORK/craft/a/b")
cat "$WORK/out.txt"
check "a crafted ../ entry fails the restore (exit 1)" test "$rc" -eq 1
check "and is reported by name" grep -q 'invalid entry name "../../escape"' "$WORK/out.txt"
check "nothing escaped the target" test ! -e "$WORK/craft/escape" -a ! -e "$WORK/craft/a/escape"
check "the rest of that snapshot is restored" test "$(cat "$WORK/craft/a/b/good.txt")" = hello
for name in "a/b" ".." "."; do
  crafted=$("$CRAFT" "$WORK/agent" "$name")
  rc_of "$RESTORE" restore "$crafted" "${ST[@]}" --target "$WORK/craft-$RANDOM" >/dev/null
  check "crafted entry name '$name' is refused" grep -q "invalid entry name" "$WORK/out.txt"
done

# A slice (a small file packed in a shared group record) that reaches past
# its group's end: that file is damage, its neighbour in the group is not.
crafted=$("$CRAFT" "$WORK/agent" --slice-past-group)
rc=$(rc_of "$RESTORE" restore "$crafted" "${ST[@]}" --target "$WORK/slice")
cat "$WORK/out.txt"
check "a slice past its group's end fails the restore (exit 1)" test "$rc" -eq 1
check "and is reported as that file's damage" \
  test "$(grep -A1 'the tree takes a slice up to byte 18' "$WORK/out.txt" | tail -1)" = \
  "  affects out.txt"
check "the other slice of the group is restored" test "$(cat "$WORK/slice/in.txt")" = world
check "so is the rest of the snapshot" test "$(cat "$WORK/slice/good.txt")" = hello

# --- a target file system too small ------------------------------------
# 12 MiB of data against a 6 MiB tmpfs in a private mount namespace: a new
# target is refused before anything is restored; --overwrite over a part
# fills the disk, says so and keeps what was restored whole.
if unshare -m --propagation private true 2>/dev/null; then
  mkdir -p "$WORK/fullsrc" "$WORK/full"
  for i in 1 2 3; do head -c $((4 * 1048576)) /dev/urandom >"$WORK/fullsrc/f$i"; done
  "$AGENT" backup "${ST[@]}" "$WORK/fullsrc" >/dev/null
  cat >"$WORK/full.sh" <<FULL
mount -t tmpfs -o size=6m tmpfs "$WORK/full"
"$RESTORE" restore latest ${ST[*]} --target "$WORK/full/new" >"$WORK/full-new.txt" 2>&1
echo \$? >"$WORK/full-new.rc"
"$RESTORE" restore latest ${ST[*]} --target "$WORK/full/part" --include '*/f1' >/dev/null 2>&1
"$RESTORE" restore latest ${ST[*]} --target "$WORK/full/part" --overwrite >"$WORK/full-over.txt" 2>&1
echo \$? >"$WORK/full-over.rc"
find "$WORK/full" -type f | sort >"$WORK/full-files.txt"
FULL
  unshare -m --propagation private bash "$WORK/full.sh"
  cat "$WORK/full-new.txt" "$WORK/full-over.txt"
  check "a restore to a new target too small for it fails (exit $(cat "$WORK/full-new.rc"))" \
    test "$(cat "$WORK/full-new.rc")" -eq 1
  check "before writing, with both figures" \
    grep -q "has 6.0 MiB free, and the files selected need 12.0 MiB; nothing was restored" \
    "$WORK/full-new.txt"
  check "the overwrite that fills the disk fails (exit $(cat "$WORK/full-over.rc"))" \
    test "$(cat "$WORK/full-over.rc")" -eq 1
  check "and says the target's file system is full and what is kept" \
    grep -q "the target's file system is full (.*No space left on device); the files restored whole are kept" \
    "$WORK/full-over.txt"
  check "no temporary is left on the full disk" test -z "$(grep cairn-restore "$WORK/full-files.txt")"
else
  echo "NOTE: no mount namespace here; the full target is not exercised"
fi

# --- the vault killed mid-restore ---------------------------------------
head -c $((400 * 1048576)) /dev/urandom >"$WORK/bigsrc.bin"
mkdir -p "$WORK/bigsrc" && mv "$WORK/bigsrc.bin" "$WORK/bigsrc/"
"$AGENT" backup "${ST[@]}" "$WORK/bigsrc" >/dev/null
set +e
"$RESTORE" restore latest "${ST[@]}" --target "$WORK/killed" --connections 1 >"$WORK/killed.txt" 2>&1 &
rpid=$!
# In a directory the restore made, the file is written under its own name.
for _ in $(seq 1 100); do
  [[ -n $(find "$WORK/killed" -name 'bigsrc.bin' 2>/dev/null) ]] && break
  sleep 0.02
done
kill -KILL "$VAULT_PID"
wait "$rpid"
rc=$?
set -e
cat "$WORK/killed.txt"
check "a restore whose vault dies fails as unreachable (exit 4)" test "$rc" -eq 4
check "with a message naming the vault" grep -q "127.0.0.1:$port" "$WORK/killed.txt"
check "and leaves no temporary file" test -z "$(find "$WORK/killed" -name '.cairn-restore-*')"
check "nor the half-written file" test -z "$(find "$WORK/killed" -name 'bigsrc.bin')"

finish
