#!/usr/bin/env bash
# GC and compaction killed at random points (doc/design.md 22.3): each round
# backs up a changed tree, forgets all but the newest two snapshots, then
# runs `cairn-vault gc` (which holds the store itself: no serve) and
# SIGKILLs it: in odd rounds right after a random one of its steps that
# change the store (a sweep batch committed, a compaction pack written, a
# pack retired, retired files removed: CAIRN_TEST_KILL_GC_AT_STEP; after the
# last when the run has fewer), in even rounds after a random delay within
# the time a run takes (such a run may finish first). Then the vault
# must open and every kept snapshot verify: 0 lost, 0 corrupt. Garbage may
# remain until the next run.
#
# 12 rounds in the suite; CAIRN_LONG=1 (scripts/test --long) runs 120.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore
ROUNDS=12
[[ ${CAIRN_LONG:-0} == 1 ]] && ROUNDS=120

storage_vault
enroll "$WORK/vault" "$port" finance "$WORK/agent"
make_tree "$WORK/src" 8

round_data() {  # a changed tree and a backup; all but the newest two forgotten
  for _ in 1 2 3; do head -c $((RANDOM * 20 + 1)) /dev/urandom >"$WORK/src/sub/f$((RANDOM % 200 + 1))"; done
  head -c $((RANDOM * 60 + 200000)) /dev/urandom >"$WORK/src/big.bin"
  "$AGENT" backup --state "$WORK/agent" "$WORK/src" >/dev/null
  old=$("$VAULT" snapshot list --department finance "${V[@]}" --json |
    python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)["snapshots"][2:]))')
  # shellcheck disable=SC2086
  [[ -z $old ]] || "$VAULT" snapshot forget $old --department finance "${V[@]}" >/dev/null
}
for _ in 1 2 3; do round_data; done

# How long one run takes here, to spread the kill points over it.
vault_stop
"$VAULT" gc "${V[@]}" --dry-run >/dev/null  # warm
vault_start "$WORK/vault" "$port"
round_data
vault_stop
t0=$(date +%s%N)
"$VAULT" gc "${V[@]}" --json >"$WORK/gc-timed.json"
run_ms=$((($(date +%s%N) - t0) / 1000000))
echo "one GC run takes ${run_ms} ms here: $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['entries_removed'], 'entries removed,', r['packs_compacted'], 'packs compacted')" "$WORK/gc-timed.json")"

killed=0
finished=0
step_rounds=0
step_kills=0
lost=0
for round in $(seq 1 "$ROUNDS"); do
  vault_start "$WORK/vault" "$port"
  round_data
  vault_stop
  if ((round % 2 == 1)); then
    step=$((RANDOM % 5 + 1))
    where="at step $step"
    rc=0
    CAIRN_TEST_KILL_GC_AT_STEP=$step "$VAULT" gc "${V[@]}" >"$WORK/gc-$round.out" 2>&1 || rc=$?
    step_rounds=$((step_rounds + 1))
    if ((rc == 137)); then
      killed=$((killed + 1))
      step_kills=$((step_kills + 1))
    else
      finished=$((finished + 1))
      echo "round $round: GC was not killed at step $step (exit $rc): $(tail -2 "$WORK/gc-$round.out")"
    fi
  else
    delay_ms=$((RANDOM % (run_ms + run_ms / 5 + 1)))
    where="after ${delay_ms} ms"
    "$VAULT" gc "${V[@]}" >"$WORK/gc-$round.out" 2>&1 &
    gc_pid=$!
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    if kill -KILL "$gc_pid" 2>/dev/null; then killed=$((killed + 1)); else finished=$((finished + 1)); fi
    wait "$gc_pid" 2>/dev/null || true
  fi
  # The vault opens (recovery finishes what the kill cut) and every kept
  # snapshot verifies.
  vault_start "$WORK/vault" "$port"
  while read -r id; do
    if ! "$RESTORE" restore "$id" --state "$WORK/agent" --verify-only >"$WORK/v.txt" 2>&1; then
      lost=$((lost + 1))
      echo "round $round (killed $where): snapshot $id: $(tail -2 "$WORK/v.txt")"
    fi
  done < <("$VAULT" snapshot list --department finance "${V[@]}" --json |
    python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)["snapshots"]]')
  vault_stop
done
echo "$ROUNDS rounds: $killed GC runs killed mid-run, $finished finished before the kill; snapshots failing verification: $lost"
check "GC was killed at its step in every step round ($step_kills of $step_rounds)" test "$step_kills" = "$step_rounds"
check "every kept snapshot verified after every kill: 0 lost, 0 corrupt" test "$lost" = 0
"$VAULT" gc "${V[@]}" --json >"$WORK/gc-final.json"
"$VAULT" scrub "${V[@]}" >"$WORK/scrub-final.txt" || true
check "a last GC and scrub find the store sound" grep -q 'every record read back whole' "$WORK/scrub-final.txt"
finish
