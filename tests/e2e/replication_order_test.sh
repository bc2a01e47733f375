#!/usr/bin/env bash
# A source vault that lies about where it keeps its records (get_replica_order,
# doc/protocol.md), real processes on 127.0.0.1. The primary runs with
# CAIRN_TEST_LIE_IN_REPLICA_ORDER, a test-only switch that makes it answer
# wrongly:
#   short     one key too few: the pass is refused, nothing is committed,
#             and the next honest pass replicates everything;
#   not-held  a chunk of the manifest said not to be held: refused at once,
#             naming the chunk and the snapshot;
#   reverse   every key backwards (a wrong order, well formed): the keys only
#             order the requests, so every chunk is still fetched and checked
#             and every snapshot restores from the DR copy.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore
REPL=$BIN/replicator/cairn-replicator

storage_vault
enroll "$WORK/vault" "$port" finance "$WORK/agent"
# Several snapshots over many 1 MiB packs, so that storage order matters.
make_tree "$WORK/src" 6
"$AGENT" backup --state "$WORK/agent" "$WORK/src" >/dev/null
head -c 3000000 /dev/urandom >"$WORK/src/more.bin"
"$AGENT" backup --state "$WORK/agent" "$WORK/src" >/dev/null
mkdir -p "$WORK/other" && head -c 2000000 /dev/urandom >"$WORK/other/o.bin"
"$AGENT" backup --state "$WORK/agent" "$WORK/other" >/dev/null
snapshots=3

# primary_lying LIE: the primary served again, lying that way ("" for none).
primary_lying() {
  vault_stop
  if [[ -n $1 ]]; then
    CAIRN_TEST_LIE_IN_REPLICA_ORDER=$1 vault_start "$WORK/vault" "$port"
  else
    vault_start "$WORK/vault" "$port"
  fi
}
committed() { python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['committed']))" "$1"; }
# pass DR NAME: one replication pass of DR; its exit code in $rc.
pass() {
  set +e
  "$REPL" run --data "$WORK/$1" --advertise "127.0.0.1:$(free_port)" --once --json \
    >"$WORK/$2.json" 2>"$WORK/$2.log"
  rc=$?
  set -e
}
new_dr() {
  vault_init "$WORK/$1"
  "$REPL" enroll --data "$WORK/$1" --source "127.0.0.1:$port" \
    --token "$("$VAULT" token create --replicator "${V[@]}")" >/dev/null
}

# --- one key too few -------------------------------------------------------
new_dr dr1
primary_lying short
pass dr1 short
check "a short get_replica_order answer fails the pass (exit $rc)" test "$rc" -ne 0
check "and says what was wrong" grep -q "answered get_replica_order with [0-9]* keys for [0-9]* IDs" "$WORK/short.log"
check "and which snapshot it was pulling" grep -q "snapshot [0-9a-f]\{24\}" "$WORK/short.log"
check "the replicator did not crash" test "$rc" -lt 128
primary_lying ""
pass dr1 after-short
check "the next honest pass replicates all $snapshots snapshots (exit $rc)" \
  test "$rc" -eq 0 -a "$(committed "$WORK/after-short.json")" = "$snapshots"

# --- a chunk said not to be held ---------------------------------------------
new_dr dr2
primary_lying not-held
pass dr2 not-held
check "a chunk of the manifest said not held fails the pass (exit $rc)" test "$rc" -ne 0
check "naming the chunk" grep -q "the source does not hold chunk [0-9a-f]\{64\}" "$WORK/not-held.log"

# --- every key backwards ---------------------------------------------------------
new_dr dr3
primary_lying reverse
pass dr3 reverse
check "a wrong but well-formed order replicates every snapshot (exit $rc)" \
  test "$rc" -eq 0 -a "$(committed "$WORK/reverse.json")" = "$snapshots"
primary_lying ""
# The DR copy serves restores; every snapshot must verify from it alone.
vault_stop
drport=$(free_port)
"$REPL" run --data "$WORK/dr3" --listen "127.0.0.1:$drport" --poll-ms 60000 >>"$WORK/dr3.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "serving" "$WORK/dr3.log" 2>/dev/null && break; sleep 0.1; done
"$VAULT" snapshot list --department finance "${V[@]}" --json |
  python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)["snapshots"]]' >"$WORK/ids.txt"
verified=0
while read -r id; do
  if "$RESTORE" restore "$id" --state "$WORK/agent" --vault "127.0.0.1:$drport" --verify-only \
    >"$WORK/verify-$id.txt" 2>&1; then
    verified=$((verified + 1))
  else
    cat "$WORK/verify-$id.txt"
  fi
done <"$WORK/ids.txt"
check "all $snapshots snapshots verify from the DR copy ($verified did)" test "$verified" -eq "$snapshots"
finish
