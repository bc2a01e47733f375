#!/usr/bin/env bash
# City scale on one vault: many agents (soak_agents, the real protocol) in
# many departments back up at random instants of a simulated night into one
# real cairn-vault serve. The suite runs 6 departments x 10 agents, 2
# backups each, over a 20 s night; CAIRN_LONG=1 (scripts/test --long) runs
# the city: 60 departments x 10 agents, 4 backups each, over a 10-minute
# night. Then the 02:00 burst: every agent backs up once, all within 2 s. Reports throughput, commit latency (p50, p99), the vault's RSS,
# heap, CPU and open descriptors; errors must be 0, every snapshot must be
# in the catalog, and the vault must hold no more descriptors afterwards
# than before the night.
source "$(dirname "$0")/lib.sh"
SOAK=$BIN/tests/e2e/soak_agents
if [[ ${CAIRN_LONG:-0} == 1 ]]; then
  departments=60 per=10 night=600 backups=4 chunks=64
else
  departments=6 per=10 night=20 backups=2 chunks=32
fi
ulimit -n 65536 2>/dev/null || true
port=$(free_port)
vault_init "$WORK/vault"
vault_start "$WORK/vault" "$port"
start=$(date +%s)
for d in $(seq 1 "$departments"); do
  "$VAULT" department create "dept$d" --data "$WORK/vault" >/dev/null
  for a in $(seq 1 "$per"); do
    echo "dept$d $("$VAULT" token create --department "dept$d" --data "$WORK/vault" --ttl 86400)"
  done
done >"$WORK/tokens.txt"
agents=$(wc -l <"$WORK/tokens.txt")
echo "$departments departments, $agents tokens in $(($(date +%s) - start)) s"
"$SOAK" "$WORK/tokens.txt" "$WORK/agents" "127.0.0.1:$port" "$VAULT_PID" "$night" "$backups" \
  "$chunks" 10 "$WORK/soak.json" && r=0 || r=$?
python3 -m json.tool "$WORK/soak.json"
field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d' + sys.argv[2]))" "$WORK/soak.json" "$1"; }
check "all $agents agents enrol" test "$(field '["enrolled"]')" = "$agents"
check "every backup of the night commits ($(field '["backups_ok"]') of $((agents * backups)))" \
  test "$(field '["backups_ok"]')" = $((agents * backups))
check "with no error" test "$(field '["errors"]')" = 0 -a "$r" = 0
total=0
for d in $(seq 1 "$departments"); do
  n=$("$VAULT" snapshot list --department "dept$d" --data "$WORK/vault" --json |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
  total=$((total + n))
done
check "the catalog holds every snapshot ($total)" test "$total" = $((agents * backups))
# Afterwards the vault holds one open pack per department beyond what it
# held before; no connection's socket stays.
check "no socket left open: $(field '["vault"]["sockets_start"]') before the night, $(field '["vault"]["sockets_end"]') after (descriptors $(field '["vault"]["fds_start"]') -> $(field '["vault"]["fds_end"]'), peak $(field '["vault"]["fds_peak"]'))" \
  test "$(field '["vault"]["sockets_end"]')" -le "$(field '["vault"]["sockets_start"]')"
echo "commits: p50 $(field '["commit_ms"]["p50"]') ms, p99 $(field '["commit_ms"]["p99"]') ms; vault heap $(field '["vault"]["heap_mib_start"]') -> peak $(field '["vault"]["heap_mib_peak"]') MiB, CPU $(field '["vault"]["cpu_percent_of_one_core"]')% of a core"

# The 02:00 burst: every agent's schedule fires at once (within 2 s), so
# all the sessions are open together.
"$SOAK" "$WORK/tokens.txt" "$WORK/agents" "127.0.0.1:$port" "$VAULT_PID" 2 1 "$chunks" 10 \
  "$WORK/burst.json" && r=0 || r=$?
python3 -m json.tool "$WORK/burst.json"
bfield() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval('d' + sys.argv[2]))" "$WORK/burst.json" "$1"; }
check "when all $agents agents back up at once, every backup commits with no error ($(bfield '["backups_ok"]'), p99 commit $(bfield '["commit_ms"]["p99"]') ms, peak $(bfield '["vault"]["fds_peak"]') descriptors)" \
  test "$(bfield '["backups_ok"]')" = "$agents" -a "$(bfield '["errors"]')" = 0 -a "$r" = 0
check "the vault is still serving" kill -0 "$VAULT_PID"
finish
