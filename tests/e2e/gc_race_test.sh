#!/usr/bin/env bash
# The race that matters (doc/design.md section 22): real processes run
# backups, forgets and garbage collections in parallel over randomised data
# that two hosts of one department partly share, on 1 MiB packs so that GC
# retires and compacts packs all along. One more backup holds a have_chunks
# answer ("present") for a long time before it commits, while the snapshot
# that held the chunk is forgotten and GC runs. At the end every kept
# snapshot restores and verifies: 0 missing and 0 corrupt chunks.
#
# 60 s of churn in the suite; CAIRN_LONG=1 (scripts/test --long) runs 5 min.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore
HOLD=$BIN/tests/e2e/hold_commit
SECONDS_OF_CHURN=60
HOLD_SECONDS=15
if [[ ${CAIRN_LONG:-0} == 1 ]]; then SECONDS_OF_CHURN=300; HOLD_SECONDS=60; fi

storage_vault
# Two agents (each its own series: its own paths), one department's keys.
for h in a b; do enroll "$WORK/vault" "$port" finance "$WORK/agent-$h"; done

# Files both hosts copy in from time to time: chunks one host's forgotten
# snapshot and the other's kept one share.
mkdir -p "$WORK/pool"
for i in $(seq 1 8); do head -c $((100000 + RANDOM * 4)) /dev/urandom >"$WORK/pool/p$i"; done
for h in a b; do
  mkdir -p "$WORK/src-$h"
  for i in $(seq 1 30); do head -c $((RANDOM * 4 + 1)) /dev/urandom >"$WORK/src-$h/f$i"; done
done

end=$((SECONDS + SECONDS_OF_CHURN))
churn() {  # churn HOST: edit, back up, repeat until the end
  local h=$1 n=0 ok=0 bad=0
  while ((SECONDS < end)); do
    n=$((n + 1))
    for _ in 1 2 3; do head -c $((RANDOM * 8 + 1)) /dev/urandom >"$WORK/src-$h/f$((RANDOM % 40))"; done
    cp "$WORK/pool/p$((RANDOM % 8 + 1))" "$WORK/src-$h/shared$((RANDOM % 3))"
    rm -f "$WORK/src-$h/f$((RANDOM % 40))"
    if "$AGENT" backup --state "$WORK/agent-$h" "$WORK/src-$h" --json >"$WORK/churn-$h.json" 2>"$WORK/churn-$h.err"; then
      ok=$((ok + 1))
    else
      bad=$((bad + 1))
      echo "backup of host $h failed: $(cat "$WORK/churn-$h.err")" >>"$WORK/failures.txt"
    fi
  done
  echo "$ok $bad" >"$WORK/churn-$h.count"
}
forget_loop() {  # forgets random snapshots, never a host's newest
  local n=0
  while ((SECONDS < end)); do
    sleep 1
    ids=$("$VAULT" snapshot list --department finance "${V[@]}" --json | python3 -c '
import json, random, sys
snaps = json.load(sys.stdin)["snapshots"]
newest = {}
for s in snaps:
    key = (s["host"], tuple(s["paths"]))
    if key not in newest or s["time"] > newest[key]["time"]:
        newest[key] = s
keep = {s["id"] for s in newest.values()}
print(" ".join(s["id"] for s in snaps if s["id"] not in keep and random.random() < 0.5))')
    if [[ -n $ids ]]; then
      # shellcheck disable=SC2086
      "$VAULT" snapshot forget $ids --department finance "${V[@]}" >/dev/null 2>&1 && n=$((n + $(wc -w <<<"$ids")))
    fi
  done
  echo "$n" >"$WORK/forgotten.count"
}
gc_loop() {
  local runs=0 removed=0 r
  while ((SECONDS < end)); do
    if "$VAULT" gc "${V[@]}" --json >"$WORK/gc-loop.json" 2>>"$WORK/gc-loop.err"; then
      runs=$((runs + 1))
      r=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['entries_removed'])" "$WORK/gc-loop.json")
      removed=$((removed + r))
    fi
    sleep 0.5
  done
  echo "$runs $removed" >"$WORK/gc.count"
}

# The held answer: a chunk only one snapshot references, asked for, then
# that snapshot forgotten and GC run while the backup holds the answer.
mkdir -p "$WORK/heldsrc"
head -c 40000 /dev/urandom >"$WORK/heldsrc/held.bin"
"$AGENT" backup --state "$WORK/agent-a" "$WORK/heldsrc" --json >"$WORK/heldsrc.json"
held_src=$(json "$WORK/heldsrc.json" snapshot)
"$HOLD" "$WORK/agent-a" "$WORK/heldsrc/held.bin" "$HOLD_SECONDS" >"$WORK/hold.out" 2>"$WORK/hold.err" &
hold_pid=$!
PIDS+=("$hold_pid")
sleep 2
"$VAULT" snapshot forget "$held_src" --department finance "${V[@]}" >/dev/null

churn a & pa=$!
churn b & pb=$!
forget_loop & pf=$!
gc_loop & pg=$!
PIDS+=("$pa" "$pb" "$pf" "$pg")
hold_rc=0
wait "$hold_pid" || hold_rc=$?
wait "$pa" "$pb" "$pf" "$pg"

read -r ok_a bad_a <"$WORK/churn-a.count"
read -r ok_b bad_b <"$WORK/churn-b.count"
read -r gc_runs gc_removed <"$WORK/gc.count"
echo "churn: ${SECONDS_OF_CHURN}s, backups $((ok_a + ok_b)) committed, $((bad_a + bad_b)) failed;" \
  "$(cat "$WORK/forgotten.count") snapshots forgotten; $gc_runs GC runs removed $gc_removed chunks"
[[ -f $WORK/failures.txt ]] && head -5 "$WORK/failures.txt"
check "backups committed on both hosts" test "$ok_a" -gt 2 -a "$ok_b" -gt 2
check "GC ran many times beside them" test "$gc_runs" -gt 3
check "and removed garbage" test "$gc_removed" -gt 0
check "the held backup committed after its long hold" test "$hold_rc" = 0
check "it was told the chunk was present, and never sent it" grep -q '^present ' "$WORK/hold.out"
held=$(cut -d' ' -f2 "$WORK/hold.out")
"$VAULT" gc "${V[@]}" --json >"$WORK/gc-final.json"
"$VAULT" audit list "${V[@]}" --action storage.gc --json >"$WORK/gc-audit.json"
waited=$(python3 -c "
import json,sys
print(max((e['details'].get('fence_seconds', 0) for e in json.load(open(sys.argv[1]))['entries']), default=0))" "$WORK/gc-audit.json")
echo "longest fence wait of a GC run: ${waited}s"
check "a GC run waited for the held backup (the fence)" \
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= $HOLD_SECONDS - 4 else 1)" "$waited"

# Every kept snapshot restores whole.
"$VAULT" snapshot list --department finance "${V[@]}" --json >"$WORK/final.json"
total=0
damaged=0
while read -r id; do
  total=$((total + 1))
  if ! "$RESTORE" restore "$id" --state "$WORK/agent-a" --verify-only >"$WORK/v.txt" 2>&1; then
    damaged=$((damaged + 1))
    echo "snapshot $id: $(tail -3 "$WORK/v.txt")"
  fi
done < <(python3 -c "
import json,sys
for s in json.load(open(sys.argv[1]))['snapshots']: print(s['id'])" "$WORK/final.json")
echo "kept snapshots verified: $total, with missing or corrupt chunks: $damaged"
check "every kept snapshot verifies: 0 missing, 0 corrupt" test "$damaged" = 0
check "the held snapshot is among them" grep -q "$held" "$WORK/final.json"
for h in a b; do
  rm -rf "$WORK/out-$h"
  newest=$(python3 -c "
import json,sys
s=[s for s in json.load(open(sys.argv[1]))['snapshots'] if s['paths']==[sys.argv[2]]]
print(s[0]['id'] if s else 'none')" "$WORK/final.json" "$WORK/src-$h")
  "$RESTORE" restore "$newest" --state "$WORK/agent-$h" --target "$WORK/out-$h" >/dev/null 2>&1 || true
  check "host $h's newest snapshot restores its tree byte for byte" \
    diff -r "$WORK/src-$h" "$WORK/out-$h$WORK/src-$h"
done
finish
