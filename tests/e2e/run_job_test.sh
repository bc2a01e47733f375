#!/usr/bin/env bash
# `cairn-agent run` as a service: a job queued with `cairn-vault job start`
# runs and reports a snapshot; the agent reconnects after a vault restart
# and runs the next job; SIGTERM stops it with exit 0.
source "$(dirname "$0")/lib.sh"

vault_with_agent finance
host=$(python3 -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['host'])" "$WORK/agent/agent.toml")
make_tree "$WORK/src" 4

"$AGENT" run --state "$WORK/agent" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")

# wait_log FILE PATTERN COUNT SECONDS: until PATTERN occurs COUNT times.
wait_log() {
  for _ in $(seq 1 $(($4 * 10))); do
    [[ $(grep -c "$2" "$1" 2>/dev/null || true) -ge $3 ]] && return 0
    sleep 0.1
  done
  return 1
}
check "the agent connects" wait_log "$WORK/agent.log" "connected to vault" 1 15

"$VAULT" job start --agent "$host" --path "$WORK/src" --data "$WORK/vault" --wait 60 --json \
  >"$WORK/j1.json" || true
check "the first job succeeds" test "$(json "$WORK/j1.json" ok)" = True
check "the first job reports a snapshot" test -n "$(json "$WORK/j1.json" snapshot)"

# A job for an unknown agent is refused; one for a host that is not
# connected stays queued and is listed as such.
if "$VAULT" job start --agent nobody --data "$WORK/vault" >/dev/null 2>&1; then
  fail "a job for an unknown agent is refused"
else
  ok "a job for an unknown agent is refused"
fi

vault_stop
check "the agent notices the vault going away" wait_log "$WORK/agent.log" "disconnected from vault" 1 15
vault_start "$WORK/vault" "$port"
check "the agent reconnects after the restart" wait_log "$WORK/agent.log" "connected to vault" 2 90

echo "changed" >>"$WORK/src/sub/f7"
"$VAULT" job start --agent "$host" --path "$WORK/src" --data "$WORK/vault" --wait 60 --json \
  >"$WORK/j2.json" || true
check "the second job succeeds" test "$(json "$WORK/j2.json" ok)" = True
check "the second job is a new snapshot" \
  test "$(json "$WORK/j2.json" snapshot)" != "$(json "$WORK/j1.json" snapshot)"

# A failing job (a path that does not exist) fails with a reason, and the
# agent stays ready for the next one.
if "$VAULT" job start --agent "$host" --path "$WORK/missing" --data "$WORK/vault" --wait 60 \
  --json >"$WORK/j3.json" 2>/dev/null; then
  fail "a job on a missing path fails"
else
  ok "a job on a missing path fails"
fi
"$VAULT" job start --agent "$host" --path "$WORK/src" --data "$WORK/vault" --wait 60 --json \
  >"$WORK/j4.json" || true
check "the agent runs the next job after a failed one" test "$(json "$WORK/j4.json" ok)" = True

"$VAULT" job list --data "$WORK/vault" --json >"$WORK/list.json"
check "job list shows every job" test "$(json "$WORK/list.json" jobs)" -eq 4

kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
check "SIGTERM stops the agent with exit 0 (got $rc)" test "$rc" -eq 0
check "the agent logs its stop" grep -q "stopped" "$WORK/agent.log"

"$VAULT" job start --agent "$host" --path "$WORK/src" --data "$WORK/vault" --json \
  >"$WORK/j5.json"
sleep 1
"$VAULT" job list --data "$WORK/vault" --json >"$WORK/list2.json"
check "a job for a stopped agent stays queued" python3 -c "
import json,sys
jobs=json.load(open(sys.argv[1]))['jobs']
j=[x for x in jobs if x['job']==json.load(open(sys.argv[2]))['job']][0]
sys.exit(0 if j['state']=='queued' and j['waiting_seconds']>=0.5 else 1)" "$WORK/list2.json" "$WORK/j5.json"
vault_stop
finish
