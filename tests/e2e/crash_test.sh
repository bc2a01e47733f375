#!/usr/bin/env bash
# SIGKILL the vault in the middle of a backup: it restarts cleanly, earlier
# snapshots are intact, and the re-run completes without re-sending what the
# vault already holds durably.
source "$(dirname "$0")/lib.sh"

vault_with_agent finance
mkdir -p "$WORK/small" && echo "first" >"$WORK/small/f"
"$AGENT" backup --state "$WORK/agent" "$WORK/small" --json >"$WORK/first.json"
first=$(json "$WORK/first.json" snapshot)

make_tree "$WORK/src" 400
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/cut.json" 2>"$WORK/cut.err" &
agent_pid=$!
# Kill once the vault has stored something, but before the backup ends.
for _ in $(seq 1 200); do
  stored=$(packs_bytes "$WORK/vault")
  [[ $stored -gt $((60 * 1048576)) ]] && break
  sleep 0.05
done
kill -KILL "$VAULT_PID"
wait "$VAULT_PID" 2>/dev/null || true
if wait "$agent_pid"; then
  fail "the agent reported success although the vault died"
else
  ok "the agent fails when the vault dies mid-backup"
fi
check "its error names the vault and what to do" \
  grep -q "lost the connection to the vault at 127.0.0.1:$port.*run the backup again" "$WORK/cut.json" "$WORK/cut.err"

vault_start "$WORK/vault" "$port"
check "the vault restarts after SIGKILL" kill -0 "$VAULT_PID"
check "recovery refused no pack" bash -c "! grep -q 'damaged pack' '$WORK/vault.log'"
"$VAULT" snapshot list --department finance --data "$WORK/vault" --json >"$WORK/list.json"
check "the earlier snapshot is still there" grep -q "$first" "$WORK/list.json"

"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/rerun.json"
check "the re-run completes" test -n "$(json "$WORK/rerun.json" snapshot)"
new=$(json "$WORK/rerun.json" new_bytes)
total=$(json "$WORK/rerun.json" bytes)
check "the re-run did not re-send what was stored ($new of $total bytes new)" test "$new" -lt $((total - 50 * 1048576))

# The agent killed instead, after its first flush (every 256 MiB): the re-run
# does not send again what that flush made durable.
make_tree "$WORK/src2" 400
base=$(packs_bytes "$WORK/vault")
"$AGENT" backup --state "$WORK/agent" "$WORK/src2" --json >"$WORK/cut2.json" 2>"$WORK/cut2.err" &
agent_pid=$!
for _ in $(seq 1 400); do
  stored=$(packs_bytes "$WORK/vault")
  [[ $((stored - base)) -gt $((300 * 1048576)) ]] && break
  sleep 0.05
done
kill -KILL "$agent_pid"
wait "$agent_pid" 2>/dev/null || true
"$AGENT" backup --state "$WORK/agent" "$WORK/src2" --json >"$WORK/rerun2.json"
new=$(json "$WORK/rerun2.json" new_bytes)
total=$(json "$WORK/rerun2.json" bytes)
check "after an agent kill the re-run skips the flushed part ($new of $total bytes new)" test "$new" -lt $((total - 200 * 1048576))
check "the vault kept serving through the agent's death" kill -0 "$VAULT_PID"
finish
