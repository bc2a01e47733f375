#!/usr/bin/env bash
# Garbage collection and compaction end to end (doc/design.md section 22):
# real processes on 127.0.0.1. Backups of a changing tree fill 1 MiB packs;
# forgetting the older snapshots makes garbage; `cairn-vault gc --dry-run`
# says what a run would free and changes nothing; `cairn-vault gc` (handed to
# the serving vault) frees it, compacting sparse packs; the kept snapshot
# still restores byte for byte; a second run finds nothing; without serve
# the command runs GC itself.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore

storage_vault
enroll "$WORK/vault" "$port" finance "$WORK/agent"

make_tree "$WORK/src" 6
backup() {
  "$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b$1.json"
}
backup 1
# New content in most files: the next backups store new chunks.
head -c 3145728 /dev/urandom >"$WORK/src/big.bin"
for i in $(seq 1 120); do head -c $((RANDOM % 8192 + 1)) /dev/urandom >"$WORK/src/sub/f$i"; done
backup 2
head -c 3145728 /dev/urandom >"$WORK/src/sub/big2.bin"
backup 3
s1=$(json "$WORK/b1.json" snapshot)
s2=$(json "$WORK/b2.json" snapshot)
s3=$(json "$WORK/b3.json" snapshot)

field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

"$VAULT" gc "${V[@]}" --dry-run --json >"$WORK/dry0.json"
check "with nothing forgotten, a dry run finds nothing to remove" \
  test "$(field "$WORK/dry0.json" entries_removed)" = 0

"$VAULT" snapshot forget "$s1" "$s2" --department finance "${V[@]}" >/dev/null
before=$(packs_bytes "$WORK/vault")
"$VAULT" gc "${V[@]}" --dry-run --json >"$WORK/dry.json"
"$VAULT" gc "${V[@]}" --dry-run >"$WORK/dry.txt"
check "a dry run finds the forgotten snapshots' chunks" \
  test "$(field "$WORK/dry.json" entries_removed)" -gt 5
check "a dry run says what it would free" test "$(field "$WORK/dry.json" bytes_freed)" -gt 1000000
check "a dry run shows space per department" grep -q 'finance' "$WORK/dry.txt"
check "a dry run changes nothing" test "$(packs_bytes "$WORK/vault")" = "$before"

"$VAULT" gc "${V[@]}" --json >"$WORK/gc.json"
after=$(packs_bytes "$WORK/vault")
echo "packs: $before bytes before, $after after; $(cat "$WORK/gc.json")"
check "GC removes what the dry run counted" \
  test "$(field "$WORK/gc.json" entries_removed)" = "$(field "$WORK/dry.json" entries_removed)"
check "GC retires packs" test "$(field "$WORK/gc.json" packs_retired)" -gt 0
check "GC frees disk space" test "$after" -lt $((before - 1000000))
check "the serving vault ran it (the log says so)" grep -q 'garbage collection:' "$WORK/vault.log"

"$RESTORE" restore "$s3" --state "$WORK/agent" --verify-only >"$WORK/verify.txt"
check "the kept snapshot verifies after GC" grep -q "no damage" "$WORK/verify.txt"
"$RESTORE" restore "$s3" --state "$WORK/agent" --target "$WORK/out" >/dev/null
check "and restores byte for byte" diff -r "$WORK/src" "$WORK/out$WORK/src"

"$VAULT" gc "${V[@]}" --json >"$WORK/gc2.json"
check "a second run finds nothing more" test "$(field "$WORK/gc2.json" entries_removed)" = 0

# A backup after GC: the file cache still vouches only for kept chunks.
echo "after gc" >"$WORK/src/new.txt"
backup 4
check "a backup after GC commits" test -n "$(json "$WORK/b4.json" snapshot)"
"$RESTORE" restore latest --state "$WORK/agent" --verify-only >"$WORK/verify4.txt"
check "and verifies" grep -q "no damage" "$WORK/verify4.txt"

"$VAULT" audit list "${V[@]}" --action storage.gc --json >"$WORK/audit.json"
check "each run is in the audit trail" \
  test "$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['entries']))" "$WORK/audit.json")" = 2

vault_stop
"$VAULT" gc "${V[@]}" --json >"$WORK/gc3.json"
check "without serve, the command runs GC itself" test "$(field "$WORK/gc3.json" entries_removed)" = 0
if "$VAULT" gc --data "$WORK/nothing-here" >"$WORK/bad.txt" 2>&1; then
  fail "GC of a directory that holds no vault fails"
else
  check "GC of a directory that holds no vault fails, saying why" grep -qi 'vault' "$WORK/bad.txt"
fi
finish
