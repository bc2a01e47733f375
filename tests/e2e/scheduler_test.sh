#!/usr/bin/env bash
# The scheduler with real processes (doc/design.md section 20): two agents
# in two departments, in service mode, back up files and an image on their
# own under short-interval policies; the vault is SIGKILLed and restarted
# in between. Every slot is queued once, every job ends, and the snapshots
# match the done jobs exactly: nothing lost, nothing run twice. An agent
# stopped past its schedule gives missed jobs, a breached RPO in `status`
# and alerts, and all of it recovers when it returns. Retention forgets what
# falls out of keep-last; a locked image snapshot stays, even when asked.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
vault_init "$WORK/vault"
cat >>"$WORK/vault/vault.toml" <<'EOF'

[scheduler]
spread_seconds = 2
missed_after_seconds = 6
deadline_seconds = 120
retention_interval_seconds = 5

[alerts]
interval_seconds = 1
disk_free_percent = 0
agent_unseen_seconds = 0
EOF
vault_start "$WORK/vault" "$port"
V=(--data "$WORK/vault")
"$VAULT" department create finance "${V[@]}" >/dev/null
"$VAULT" department create parks "${V[@]}" >/dev/null
token=$("$VAULT" token create --department finance "${V[@]}")
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/a" --host fin-app >/dev/null
token=$("$VAULT" token create --department parks "${V[@]}")
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/b" --host parks-db >/dev/null
make_tree "$WORK/src-a" 2
make_tree "$WORK/src-b" 2
head -c $((16 << 20)) /dev/urandom >"$WORK/disk.img"

check "a policy weaker than its template is refused, naming the rule" bash -c \
  "! '$VAULT' policy create weak --template level3 --keep-daily 3 --data '$WORK/vault' 2>'$WORK/weak.err' && grep -q 'keep-daily 3; the template needs at least 14' '$WORK/weak.err'"
"$VAULT" policy create quick --schedule 'every 10s' --keep-last 2 --rpo 30s "${V[@]}" >/dev/null
"$VAULT" policy create imaged --schedule 'every 10s' --keep-last 1 --lock 1h --rpo 30s "${V[@]}" >/dev/null
"$VAULT" source add --department finance --agent fin-app --policy quick --path "$WORK/src-a" "${V[@]}" --json >"$WORK/s1.json"
"$VAULT" source add --department parks --agent parks-db --policy quick --path "$WORK/src-b" --exclude '*.tmp' "${V[@]}" --json >"$WORK/s2.json"
"$VAULT" source add --department parks --agent parks-db --policy imaged --image "$WORK/disk.img" "${V[@]}" --json >"$WORK/s3.json"
check "three sources" test "$("$VAULT" source list "${V[@]}" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["sources"]))')" = 3

"$AGENT" run --state "$WORK/a" >"$WORK/a.log" 2>&1 &
A_PID=$!
PIDS+=("$A_PID")
"$AGENT" run --state "$WORK/b" >"$WORK/b.log" 2>&1 &
B_PID=$!
PIDS+=("$B_PID")

# done_jobs SOURCE: jobs of a source that are done.
jobs_json() { "$VAULT" job list "${V[@]}" --json; }
count_jobs() {  # count_jobs SOURCE STATE
  jobs_json | python3 -c "import json,sys; print(sum(1 for j in json.load(sys.stdin)['jobs'] if j.get('source')==$1 and j['state']=='$2'))"
}
wait_for() {  # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local t=$1; shift
  for _ in $(seq 1 $((t * 5))); do "$@" && return 0; sleep 0.2; done
  return 1
}
at_least() { [[ $(count_jobs "$1" done) -ge $2 ]]; }

check "scheduled jobs run on both agents (files and image)" wait_for 60 bash -c \
  "$(declare -f count_jobs jobs_json at_least); VAULT='$VAULT'; V=(--data '$WORK/vault'); at_least 1 1 && at_least 2 1 && at_least 3 1"

# SIGKILL the vault in the middle of things, and bring it back.
kill -KILL "$VAULT_PID"
wait "$VAULT_PID" 2>/dev/null || true
sleep 1
vault_start "$WORK/vault" "$port"
check "after a SIGKILL the schedule goes on" wait_for 60 bash -c \
  "$(declare -f count_jobs jobs_json at_least); VAULT='$VAULT'; V=(--data '$WORK/vault'); at_least 1 3 && at_least 2 3 && at_least 3 3"

# Agent B stops past its schedule: missed jobs, a breached RPO, alerts.
kill -TERM "$B_PID"
wait "$B_PID" 2>/dev/null || true
check "a stopped agent's jobs are missed" wait_for 40 bash -c \
  "$(declare -f count_jobs jobs_json); VAULT='$VAULT'; V=(--data '$WORK/vault'); [[ \$(count_jobs 2 missed) -ge 1 ]]"
rpo_of() {  # rpo_of SOURCE
  "$VAULT" status "${V[@]}" --json | python3 -c "import json,sys; print(next(s['rpo'] for s in json.load(sys.stdin)['sources'] if s['source']==$1))"
}
check "status shows the stopped agent's RPO breached" wait_for 40 bash -c \
  "$(declare -f rpo_of); VAULT='$VAULT'; V=(--data '$WORK/vault'); [[ \$(rpo_of 2) == breached ]]"
"$VAULT" status "${V[@]}" --json >"$WORK/status-breached.json"
check "status names the missed job's reason" grep -q 'missed: agent parks-db was not connected' "$WORK/status-breached.json"
check "status keeps the other agent's RPO met" test "$(rpo_of 1)" = met
check "an RPO alert fires for the stopped agent" wait_for 10 bash -c \
  "'$VAULT' alert list --data '$WORK/vault' --all --json | grep -q 'rpo_breached:2'"
check "a missed-job alert fires" wait_for 10 bash -c "'$VAULT' alert list --data '$WORK/vault' --all --json | grep -q '\"rule\":\"job_missed\"'"

"$AGENT" run --state "$WORK/b" >>"$WORK/b.log" 2>&1 &
B_PID=$!
PIDS+=("$B_PID")
check "when the agent returns its RPO is met again" wait_for 60 bash -c \
  "$(declare -f rpo_of); VAULT='$VAULT'; V=(--data '$WORK/vault'); [[ \$(rpo_of 2) == met && \$(rpo_of 3) == met ]]"
check "and the RPO alert resolves" wait_for 10 bash -c \
  "! '$VAULT' alert list --data '$WORK/vault' --json | grep -q 'rpo_breached:2'"

# Let everything settle: stop the agents after their running jobs, then
# the vault, and count.
sleep 3
kill -TERM "$A_PID" "$B_PID"
wait "$A_PID" "$B_PID" 2>/dev/null || true
sleep 1
vault_stop
"$VAULT" job list "${V[@]}" --json >"$WORK/jobs.json"
"$VAULT" audit list "${V[@]}" --json >"$WORK/audit.json"
for d in finance parks; do "$VAULT" snapshot list --department $d "${V[@]}" --json >"$WORK/snaps-$d.json"; done
python3 - "$WORK" >"$WORK/counts.txt" <<'EOF'
import json, sys, collections
w = sys.argv[1]
jobs = json.load(open(f"{w}/jobs.json"))["jobs"]
entries = json.load(open(f"{w}/audit.json"))["entries"]
snaps = [s for d in ("finance", "parks") for s in json.load(open(f"{w}/snaps-{d}.json"))["snapshots"]]
sched = [e for e in entries if e["action"] == "job.schedule"]
slots = collections.Counter((e["details"]["source"], e["details"]["slot"]) for e in sched)
forgotten = {e["object"] for e in entries if e["action"] == "snapshot.forget"}
done = [j for j in jobs if j["state"] == "done"]
done_snaps = {j["snapshot"] for j in done}
live = {s["id"] for s in snaps}
states = collections.Counter(j["state"] for j in jobs)
print("jobs", len(jobs), dict(states))
print("slots_unique", all(n == 1 for n in slots.values()), "scheduled", len(sched))
print("every_job_scheduled", len(sched) == len(jobs))
print("none_pending", states["queued"] + states["sent"] == 0)
print("done_snapshots_distinct", len(done_snaps) == len(done))
print("snapshots_are_done_jobs", live | forgotten == done_snaps and not (live & forgotten))
print("per_source", {s: sum(1 for j in done if j["source"] == s) for s in (1, 2, 3)})
print("image_live", sum(1 for s in snaps if s["kind"] == "image"), "image_done", sum(1 for j in done if j["source"] == 3))
print("files_live", {h: sum(1 for s in snaps if s["host"] == h and s["kind"] != "image") for h in ("fin-app", "parks-db")})
EOF
cat "$WORK/counts.txt"
check "each slot was queued once" grep -q 'slots_unique True' "$WORK/counts.txt"
check "every job came from a slot" grep -q 'every_job_scheduled True' "$WORK/counts.txt"
check "no job is left queued or sent" grep -q 'none_pending True' "$WORK/counts.txt"
check "each done job made its own snapshot" grep -q 'done_snapshots_distinct True' "$WORK/counts.txt"
check "the snapshots (live and forgotten) are exactly the done jobs'" grep -q 'snapshots_are_done_jobs True' "$WORK/counts.txt"
img_live=$(sed -n 's/^image_live \([0-9]*\) image_done \([0-9]*\)$/\1/p' "$WORK/counts.txt")
img_done=$(sed -n 's/^image_live \([0-9]*\) image_done \([0-9]*\)$/\2/p' "$WORK/counts.txt")
check "locked image snapshots all stay ($img_live of $img_done) despite keep-last 1" test "$img_live" = "$img_done"
check "keep-last 2 left two file snapshots per host" grep -q "files_live {'fin-app': 2, 'parks-db': 2}" "$WORK/counts.txt"

vault_start "$WORK/vault" "$port"
locked=$(python3 -c "import json,sys; print(next(s['id'] for s in json.load(open(sys.argv[1]))['snapshots'] if s['kind']=='image'))" "$WORK/snaps-parks.json")
if "$VAULT" snapshot forget "$locked" --department parks "${V[@]}" >"$WORK/forget.out" 2>&1; then
  fail "forgetting a locked snapshot is refused"
else
  check "forgetting a locked snapshot is refused, with its date" grep -q 'locked until' "$WORK/forget.out"
fi
"$VAULT" snapshot forget --apply-retention --dry-run "${V[@]}" >"$WORK/dry.out"
check "a dry run names the rule that keeps each snapshot" grep -q 'keep .*last' "$WORK/dry.out"
check "and the lock" grep -q 'locked until' "$WORK/dry.out"

# A policy's bandwidth limit slows the backup, and a running job's progress
# shows in the API while it runs.
vault_stop
http=$(free_port)
"$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$port" --http "127.0.0.1:$http" >>"$WORK/vault.log" 2>&1 &
VAULT_PID=$!
PIDS+=("$VAULT_PID")
wait_for 20 grep -q 'REST API' "$WORK/vault.log"
admin=$(json "$WORK/vault.init.json" admin_user)
"$VAULT" user token "$admin" "${V[@]}" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['token'])" >"$WORK/token"
"$VAULT" source remove 1 "${V[@]}" >/dev/null
"$VAULT" policy create slow --schedule 'every 30s' --bandwidth 1M "${V[@]}" >/dev/null
make_tree "$WORK/big" 6
"$VAULT" source add --department finance --agent fin-app --policy slow --path "$WORK/big" "${V[@]}" --json >"$WORK/s4.json"
slow=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['source']['source'])" "$WORK/s4.json")
"$AGENT" run --state "$WORK/a" >>"$WORK/a.log" 2>&1 &
A_PID=$!
PIDS+=("$A_PID")
progress() {
  python3 - "$WORK" "$http" "$slow" <<'EOF'
import http.client, json, ssl, sys
w, port, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context(cafile=f"{w}/vault/ca/ca.pem")
ctx.check_hostname = False
c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
c.request("GET", "/api/v1/jobs", headers={"Authorization": "Bearer " + open(f"{w}/token").read().strip()})
jobs = json.loads(c.getresponse().read())["jobs"]
for j in jobs:
    if j.get("source") == source and j["state"] == "sent" and "progress" in j and j["progress"]["bytes_done"] > 0:
        print(json.dumps(j["progress"]))
        sys.exit(0)
sys.exit(1)
EOF
}
check "a running job's progress shows in the API" wait_for 60 bash -c "$(declare -f progress); WORK='$WORK'; http=$http; slow=$slow; progress >'$WORK/progress.json'"
cat "$WORK/progress.json"
check "the slow job finishes" wait_for 60 bash -c \
  "$(declare -f count_jobs jobs_json at_least); VAULT='$VAULT'; V=(--data '$WORK/vault'); at_least $slow 1"
took=$(jobs_json | python3 -c "
import json, sys, datetime
def t(s): return datetime.datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp()
j = next(j for j in json.load(sys.stdin)['jobs'] if j.get('source') == $slow and j['state'] == 'done')
print(int(t(j['finished']) - t(j['sent'])))")
check "6 MiB at 1 MB/s took at least 4 s (took ${took} s)" test "$took" -ge 4
finish
