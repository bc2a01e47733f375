#!/usr/bin/env bash
# Scheduled restore drills at the DR site (doc/design.md section 23.3), real
# processes on 127.0.0.1: a primary serving with its scheduler, a DR site
# replicating continuously, the source's agent (host fin-db) and a drill host
# enrolled with --drill-host (host dr-drill) that reads from the DR site.
#   - with no drill host, the due drill is recorded as missed, with how to
#     enrol one;
#   - once a drill host runs, the policy drives a drill on its own: it reads
#     the snapshot from the DR site, recomputes every chunk ID from the
#     sandbox's disk, runs the policy's check, and the primary signs and
#     keeps the report (scheduled, its job, read at the DR site, RTO met);
#   - the report verifies offline and a tampered one does not;
#   - the drill is not repeated before the policy's frequency has passed;
#   - compliance shows the drill fresh and read at the DR site;
#   - the sandbox is gone afterwards.
source "$(dirname "$0")/lib.sh"
REPL=$BIN/replicator/cairn-replicator

port=$(free_port)
vault_init "$WORK/vault"
# Retry a drill that could not run after 2 s (an hour by default).
printf '[scheduler]\nspread_seconds = 0\ndrill_retry_seconds = 2\nmissed_after_seconds = 60\n' \
  >>"$WORK/vault/vault.toml"
vault_start "$WORK/vault" "$port"
V=(--data "$WORK/vault")
"$VAULT" department create finance "${V[@]}" >/dev/null
token=$("$VAULT" token create --department finance "${V[@]}")
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/src-agent" \
  --host fin-db >/dev/null
make_tree "$WORK/src" 4
echo "the database" >"$WORK/src/PG_VERSION"

# The DR site, replicating every 300 ms.
vault_init "$WORK/dr"
token=$("$VAULT" token create --replicator "${V[@]}")
"$REPL" enroll --data "$WORK/dr" --source "127.0.0.1:$port" --token "$token" >/dev/null
drport=$(free_port)
"$REPL" run --data "$WORK/dr" --advertise "127.0.0.1:$drport" --once >/dev/null 2>"$WORK/r0.log"
"$REPL" run --data "$WORK/dr" --listen "127.0.0.1:$drport" --poll-ms 300 >>"$WORK/dr.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "serving" "$WORK/dr.log" 2>/dev/null && break; sleep 0.1; done

"$VAULT" policy create drilled --drill-every 1h --rto 1h \
  --drill-check "test -s .$WORK/src/PG_VERSION" "${V[@]}" >/dev/null
"$VAULT" source add --department finance --agent fin-db --policy drilled --path "$WORK/src" \
  "${V[@]}" >/dev/null
"$AGENT" backup --state "$WORK/src-agent" "$WORK/src" --json >"$WORK/b1.json"
snap=$(json "$WORK/b1.json" snapshot)

jobs_json() { "$VAULT" job list "${V[@]}" --json; }
drill_jobs() {  # drill_jobs STATE: how many drill jobs are in STATE
  jobs_json | python3 -c "
import json,sys; js=json.load(sys.stdin)['jobs']
print(sum(1 for j in js if j.get('kind')=='drill' and j['state']==sys.argv[1]))" "$1"
}

# --- no drill host yet: missed, with the reason ------------------------------
for _ in $(seq 1 100); do [[ $(drill_jobs missed) -ge 1 ]] && break; sleep 0.1; done
check "with no drill host, the due drill is recorded as missed" test "$(drill_jobs missed)" -ge 1
jobs_json | python3 -c "
import json,sys; js=[j for j in json.load(sys.stdin)['jobs'] if j.get('kind')=='drill']
print(js[0].get('message',''))" >"$WORK/missed.txt"
cat "$WORK/missed.txt"
check "saying how to enrol a drill host" grep -q -- "--drill-host" "$WORK/missed.txt"
"$VAULT" audit list "${V[@]}" --json >"$WORK/audit0.json" 2>/dev/null || true
check "and the miss is on the audit trail" grep -q '"job.missed"' "$WORK/audit0.json"

# --- a drill host at the DR site ---------------------------------------------
token=$("$VAULT" token create --department finance --drill-host "${V[@]}")
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/drill-agent" \
  --host dr-drill >/dev/null
"$VAULT" agent list "${V[@]}" --json >"$WORK/agents.json"
check "the agent list marks the drill host" python3 -c "
import json,sys; a=json.load(open(sys.argv[1]))['agents']
sys.exit(0 if [x['host'] for x in a if x['drill_host']] == ['dr-drill'] else 1)" "$WORK/agents.json"
# Wait until the DR site holds the snapshot, then start the drill host.
for _ in $(seq 1 100); do
  "$VAULT" snapshot list --department finance --data "$WORK/dr" 2>/dev/null | grep -q "${snap:0:8}" && break
  sleep 0.1
done
"$AGENT" run --state "$WORK/drill-agent" --drill-sandbox "$WORK/drills" >"$WORK/drill-agent.log" 2>&1 &
PIDS+=("$!")

drills_json() { "$VAULT" report drills "${V[@]}" --json; }
for _ in $(seq 1 600); do
  [[ $(drills_json | python3 -c "import json,sys; print(len(json.load(sys.stdin)['drills']))") -ge 1 ]] && break
  sleep 0.1
done
drills_json | python3 -c "import json,sys; json.dump(json.load(sys.stdin)['drills'][0], open(sys.argv[1],'w'), indent=2)" "$WORK/report.json"
field() { python3 -c "import json,sys; v=json.load(open(sys.argv[1]))['report']
for k in sys.argv[2].split('.'): v=v[k]
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)" "$1" "$2"; }
check "the policy drove a drill on its own, which passed" test "$(field "$WORK/report.json" ok)" = true
check "of the newest snapshot, on the drill host" \
  test "$(field "$WORK/report.json" snapshot)" = "$snap" -a "$(field "$WORK/report.json" drill_host)" = dr-drill
check "marked scheduled, with its job and source" \
  test "$(field "$WORK/report.json" scheduled)" = true -a "$(field "$WORK/report.json" source)" = 1
check "read at the DR site ($(field "$WORK/report.json" served_by))" \
  test "$(field "$WORK/report.json" read_site)" = dr -a "$(field "$WORK/report.json" served_by)" = "127.0.0.1:$drport"
check "every chunk ID recomputed from the sandbox's disk" python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))['report']
sys.exit(0 if r['read_back']['chunks'] > 0 and r['read_back']['bytes'] >= r['bytes'] else 1)" "$WORK/report.json"
check "the policy's check ran and passed" test "$(field "$WORK/report.json" check.exit)" = 0
check "against the policy's RTO (1 h: met)" \
  test "$(field "$WORK/report.json" rto_met)" = true -a "$(field "$WORK/report.json" rto_source)" = "policy drilled"
check "the report verifies offline" "$VAULT" report verify "$WORK/report.json" "${V[@]}"
python3 - "$WORK/report.json" "$WORK/tampered.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["report"]["read_site"] = "primary"  # claims a different copy was proven
json.dump(r, open(sys.argv[2], "w"))
EOF
check "a tampered report does not" bash -c "! '$VAULT' report verify '$WORK/tampered.json' --data '$WORK/vault' >/dev/null 2>&1"
for _ in $(seq 1 50); do [[ $(drill_jobs done) -ge 1 ]] && break; sleep 0.1; done
check "the drill job is done" test "$(drill_jobs done)" = 1
check "the sandbox is gone" bash -c "test -z \"\$(ls -A '$WORK/drills')\""

# --- not again before the policy's frequency ---------------------------------
sleep 4
check "no second drill within the hour" test "$(drill_jobs done)" = 1 -a "$(drill_jobs queued)" = 0
"$VAULT" report compliance "${V[@]}" --json >"$WORK/compliance.json"
check "compliance: the drill is fresh, read at the DR site, RTO met" python3 -c "
import json,sys; s=json.load(open(sys.argv[1]))['sources'][0]
d=s['last_drill']
sys.exit(0 if s['drill_fresh'] is True and d['read_site']=='dr' and d['rto_met'] is True
         and s['scheduled_drills']['done']==1 and s['scheduled_drills']['missed']>=1 else 1)" "$WORK/compliance.json"

# --- the printable monthly report --------------------------------------------
month=$(date -u +%Y-%m)
"$VAULT" report monthly --department finance --month "$month" --out "$WORK/monthly.html" "${V[@]}" >"$WORK/m.txt"
check "a monthly report is written" grep -q "wrote $WORK/monthly.html" "$WORK/m.txt"
check "it lists this month's drill, read at the DR site" \
  bash -c "grep -q '<code>$snap</code>' '$WORK/monthly.html' && grep -q '<td>dr</td>' '$WORK/monthly.html'"
check "it verifies offline" "$VAULT" report verify "$WORK/monthly.html" "${V[@]}"
sed 's/0 of 1 protected/1 of 1 protected/' "$WORK/monthly.html" >"$WORK/monthly-tampered.html"
if cmp -s "$WORK/monthly.html" "$WORK/monthly-tampered.html"; then
  sed 's/passed/PASSED/' "$WORK/monthly.html" >"$WORK/monthly-tampered.html"
fi
if "$VAULT" report verify "$WORK/monthly-tampered.html" "${V[@]}" >"$WORK/mv.txt" 2>&1; then
  fail "a changed page does not verify"
else
  check "a changed page does not verify, saying so" grep -q "page was changed" "$WORK/mv.txt"
fi
if "$VAULT" report monthly --department finance --month 2026-13 "${V[@]}" >"$WORK/bad.txt" 2>&1; then
  fail "a bad month is refused"
else
  check "a bad month is refused clearly" grep -q "is not a month" "$WORK/bad.txt"
fi

finish
