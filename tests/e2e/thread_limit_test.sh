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

# The cgroups made here go at exit, whatever happened (lib.sh's cleanup
# kills the processes first).
CGROUPS=()
trap 'cleanup; for g in "${CGROUPS[@]}"; do rmdir "$g" 2>/dev/null || true; done' EXIT

# new_cgroup N: a fresh pids cgroup limited to N tasks; prints its path.
# Stops the test if the limit cannot be set (a command run without it
# would prove nothing).
new_cgroup() {
  local cg=$CG_ROOT/cairn-e2e-$$-$1-$RANDOM
  if ! mkdir "$cg" || ! echo "$1" >"$cg/pids.max"; then
    echo "cannot make a pids cgroup limited to $1 tasks" >&2
    exit 1
  fi
  echo "$cg"
}

# limited N OUT CMD...: CMD with at most N tasks (threads) in all, its
# output in OUT; prints its exit status (137: it hung for 30 s).
limited() {
  local n=$1 out=$2 cg rc=0
  shift 2
  cg=$(new_cgroup "$n") || exit 1
  CGROUPS+=("$cg")
  timeout -s KILL 30 bash -c 'echo $$ >"$1/cgroup.procs" || exit 99; shift; exec "$@"' _ "$cg" "$@" \
    >"$out" 2>&1 </dev/null || rc=$?
  rmdir "$cg" 2>/dev/null || true
  echo "$rc"
}

# judged WHAT N RC OUT: the outcome is either success or a clear failure:
# an exit status below 128 and a last line that says what could not start.
judged() {
  local what=$1 n=$2 rc=$3 out=$4
  if [[ $rc -eq 0 ]]; then
    return 0
  fi
  if [[ $rc -eq 99 ]]; then
    fail "$what under pids.max=$n: could not be put in its cgroup"
    return 1
  fi
  if [[ $rc -ge 124 ]] || grep -q "terminate called" "$out"; then
    fail "$what under pids.max=$n: crashed or hung (exit $rc)"
    sed 's/^/  /' "$out" | tail -5
    return 1
  fi
  if ! grep -v '^\s*$' "$out" | tail -1 | grep -q "cannot start"; then
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
# One worker and the scanner are needed (3 tasks with the main thread); the
# other workers and the stat-ahead threads are not.
worked=()
bad=0
for n in 1 2 3 4 5 6 8 12; do
  rc=$(limited "$n" "$WORK/backup-$n.txt" "$AGENT" backup --state "$WORK/agent" "$src" --json)
  judged "backup" "$n" "$rc" "$WORK/backup-$n.txt" || bad=1
  [[ $rc -eq 0 ]] && worked+=("$n")
  [[ $rc -ne 0 ]] && echo "  pids.max=$n: exit $rc: $(tail -1 "$WORK/backup-$n.txt")"
done
check "the backup works or says it cannot start a thread, under every limit" test "$bad" -eq 0
check "the backup works from 3 tasks on (it worked under: ${worked[*]:-none})" \
  test "${worked[0]:-0}" -eq 3 -a "${#worked[@]}" -eq 6
check "and not when it cannot start one" grep -q "cannot start the backup's worker threads" \
  "$WORK/backup-1.txt"
# The backup made with the fewest threads (one worker, no stat-ahead) is
# whole: restored without a limit, it equals the source.
if [[ ${#worked[@]} -gt 0 ]]; then
  fewest=$(json "$WORK/backup-${worked[0]}.txt" snapshot)
  "$RESTORE" restore "$fewest" --state "$WORK/agent" --target "$WORK/fewest" >/dev/null
  check "the backup made under pids.max=${worked[0]} restores identical to the source" \
    diff -r "$src" "$WORK/fewest$src"
fi

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
# The main thread, the signal watcher and one worker: 3 tasks.
check "the restore works from 3 tasks on, identical to the source (it worked under: ${worked[*]:-none})" \
  test "${worked[0]:-0}" -eq 3 -a "${#worked[@]}" -eq 3
check "a restore with one thread short of a worker says so" \
  grep -q "cannot start the restore's worker threads" "$WORK/restore-1.txt"

# --- the vault ------------------------------------------------------------
vault_stop
bad=0
serving=0
for n in 1 2 3 4 5 6 8 12; do
  p=$(free_port)
  # Serves until the test stops it: SIGTERM once it answers an agent.
  cg=$(new_cgroup "$n")
  CGROUPS+=("$cg")
  bash -c 'echo $$ >"$1/cgroup.procs" || exit 99; shift; exec "$@"' _ "$cg" \
    "$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$p" >"$WORK/vault-$n.txt" 2>&1 &
  vpid=$!
  PIDS+=("$vpid")
  rc=
  for _ in $(seq 1 200); do
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
# It needs the main thread, the scheduler's, the maintenance runner's, the
# monitor's and one store thread: 5 tasks.
check "the vault serves from 5 tasks on ($serving of the 4 limits from 5 up)" test "$serving" -eq 4
check "and says which when it cannot start its store threads" \
  grep -q "cannot start the vault's store threads" "$WORK/vault-4.txt"

finish
