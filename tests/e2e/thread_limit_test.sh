#!/usr/bin/env bash
# A system that will not start another thread (a pids cgroup's pids.max, as
# a systemd unit's TasksMax sets it): cairn-agent backup, cairn-restore and
# cairn-vault serve, each under every limit from one task upwards. Each
# either works (with fewer threads; the restore identical to its source) or
# stops with a clear "cannot start" error and a failure exit code. Never an
# abort (std::terminate on an uncaught std::system_error, exit 134), never a
# hang, never an io_uring request the kernel cancelled for want of a worker
# reported as a failed write.
source "$(dirname "$0")/lib.sh"

RESTORE=$BIN/restore/cairn-restore

if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  CG_ROOT=/sys/fs/cgroup  # cgroup v2
  grep -qw pids /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
    echo "+pids" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
else
  CG_ROOT=/sys/fs/cgroup/pids  # v1
fi
if ! mkdir "$CG_ROOT/cairn-e2e-probe-$$" 2>/dev/null || [[ ! -f $CG_ROOT/cairn-e2e-probe-$$/pids.max ]]; then
  rmdir "$CG_ROOT/cairn-e2e-probe-$$" 2>/dev/null || true
  echo "SKIP: no pids cgroup to create here"
  exit 77
fi
rmdir "$CG_ROOT/cairn-e2e-probe-$$"

# limited N OUT CMD...: CMD with at most N tasks (threads) in all, its
# output in OUT; prints its exit status (124: it hung for 60 s).
limited() {
  local n=$1 out=$2 cg rc=0
  shift 2
  cg=$CG_ROOT/cairn-e2e-$$-$n-$RANDOM
  mkdir "$cg"
  echo "$n" >"$cg/pids.max"
  timeout -s KILL 60 bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" "$@" \
    >"$out" 2>&1 </dev/null || rc=$?
  rmdir "$cg" 2>/dev/null || true
  echo "$rc"
}

# judged WHAT N RC OUT: the outcome is either success or a clear failure.
judged() {
  local what=$1 n=$2 rc=$3 out=$4
  if [[ $rc -eq 0 ]]; then
    return 0
  fi
  if [[ $rc -eq 134 || $rc -eq 124 || $rc -eq 137 ]] || grep -q "terminate called" "$out"; then
    fail "$what under pids.max=$n: crashed or hung (exit $rc)"
    sed 's/^/  /' "$out" | tail -5
    return 1
  fi
  if ! grep -q "cannot start" "$out"; then
    fail "$what under pids.max=$n: failed (exit $rc) without saying it could not start a thread"
    sed 's/^/  /' "$out" | tail -5
    return 1
  fi
  return 0
}

vault_with_agent finance
src=$WORK/src
make_tree "$src" 4

# --- the backup -----------------------------------------------------------
worked=()
bad=0
for n in 1 2 3 4 5 6 8 12; do
  rc=$(limited "$n" "$WORK/backup-$n.txt" "$AGENT" backup --state "$WORK/agent" "$src")
  judged "backup" "$n" "$rc" "$WORK/backup-$n.txt" || bad=1
  [[ $rc -eq 0 ]] && worked+=("$n")
  [[ $rc -ne 0 && $rc -ne 134 ]] && echo "  pids.max=$n: exit $rc: $(tail -1 "$WORK/backup-$n.txt")"
done
check "the backup works or says it cannot start a thread, under every limit" test "$bad" -eq 0
check "the backup works with a few threads (under: ${worked[*]:-none})" test "${#worked[@]}" -ge 3
check "and not when it cannot start one" grep -q "cannot start the backup's worker threads" \
  "$WORK/backup-1.txt"

# --- the restore ----------------------------------------------------------
worked=()
bad=0
for n in 1 2 3 4 6; do
  out=$WORK/restored-$n
  rc=$(limited "$n" "$WORK/restore-$n.txt" "$RESTORE" restore latest --state "$WORK/agent" --target "$out")
  judged "restore" "$n" "$rc" "$WORK/restore-$n.txt" || bad=1
  if [[ $rc -eq 0 ]]; then
    worked+=("$n")
    diff -r "$src" "$out$src" >/dev/null || { fail "restore under pids.max=$n differs from the source"; bad=1; }
  else
    echo "  pids.max=$n: exit $rc: $(tail -1 "$WORK/restore-$n.txt")"
  fi
done
check "the restore works or says it cannot start a thread, under every limit" test "$bad" -eq 0
check "the restore works with a few threads, identical to the source (under: ${worked[*]:-none})" \
  test "${#worked[@]}" -ge 2
check "a restore with one thread short of a worker says so" \
  grep -q "cannot start the restore's worker threads" "$WORK/restore-1.txt"

# --- the vault ------------------------------------------------------------
vault_stop
bad=0
serving=0
for n in 1 2 3 4 6 8 12; do
  p=$(free_port)
  # Serves until the test stops it: SIGTERM once it said it serves.
  cg=$CG_ROOT/cairn-e2e-$$-vault-$n
  mkdir "$cg"
  echo "$n" >"$cg/pids.max"
  bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" \
    "$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$p" >"$WORK/vault-$n.txt" 2>&1 &
  vpid=$!
  rc=
  for _ in $(seq 1 100); do
    if grep -q "serving agents" "$WORK/vault-$n.txt" && "$RESTORE" snapshots --state "$WORK/agent" \
      --vault "127.0.0.1:$p" >/dev/null 2>&1; then
      serving=$((serving + 1))
      kill -TERM "$vpid"
      break
    fi
    kill -0 "$vpid" 2>/dev/null || break
    sleep 0.1
  done
  for _ in $(seq 1 100); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$vpid" 2>/dev/null; then
    kill -KILL "$vpid"
    rc=124
  fi
  wait "$vpid" 2>/dev/null || rc=${rc:-$?}
  rc=${rc:-0}
  rmdir "$cg" 2>/dev/null || true
  judged "vault serve" "$n" "$rc" "$WORK/vault-$n.txt" || bad=1
  echo "  pids.max=$n: exit $rc: $(grep -v "^\s*$" "$WORK/vault-$n.txt" | tail -1 | cut -c1-160)"
done
check "the vault serves or says it cannot start a thread, under every limit" test "$bad" -eq 0
check "the vault serves once it has threads enough" test "$serving" -ge 1
check "and says which when it cannot start its store threads" \
  grep -q "cannot start the vault's store threads" "$WORK/vault-1.txt"

finish
