#!/usr/bin/env bash
# Recovery plans (doc/design.md section 23.1), real processes on 127.0.0.1:
# three systems of two departments are backed up by their own agents, and a
# plan restores them onto new targets with one state directory per
# department: priority 1 first, then the two of priority 2 side by side
# (parallel 2), each checked after the move. Every target equals its
# source, priority 1 finished before priority 2 started, and the times are
# reported; a dry run resolves without restoring; a failing check fails the
# plan (exit 1) and, with on_failure "stop", later priorities do not run; a
# bad plan exits 2 naming the file, the system and the key, and restores
# nothing.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore
TREECMP=$(dirname "$0")/treecmp.py

port=$(free_port)
vault_init "$WORK/vault"
vault_start "$WORK/vault" "$port"
V=(--data "$WORK/vault")
"$VAULT" department create finance "${V[@]}" >/dev/null
"$VAULT" department create hr "${V[@]}" >/dev/null
enroll_as() {  # enroll_as DEPARTMENT HOST STATE_DIR
  local token
  token=$("$VAULT" token create --department "$1" "${V[@]}")
  "$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --host "$2" --state "$3" >/dev/null
}
# The systems' own agents, and one restore state per department (the DR
# team's, on the machine the systems move to).
enroll_as finance fin-db "$WORK/agent-fin-db"
enroll_as finance fin-app "$WORK/agent-fin-app"
enroll_as hr hr-web "$WORK/agent-hr-web"
enroll_as finance dr-finance "$WORK/dr-fin"
enroll_as hr dr-hr "$WORK/dr-hr"

make_tree "$WORK/src-db" 3
make_tree "$WORK/src-app" 1
make_tree "$WORK/src-web" 1
echo 16 >"$WORK/src-db/PG_VERSION"
"$AGENT" backup --state "$WORK/agent-fin-db" "$WORK/src-db" --json >"$WORK/b-db.json"
"$AGENT" backup --state "$WORK/agent-fin-app" "$WORK/src-app" --json >"$WORK/b-app.json"
"$AGENT" backup --state "$WORK/agent-hr-web" "$WORK/src-web" --json >"$WORK/b-web.json"
snap_db=$(json "$WORK/b-db.json" snapshot)
snap_app=$(json "$WORK/b-app.json" snapshot)
snap_web=$(json "$WORK/b-web.json" snapshot)

# plan FILE OUT CHECK_DB ON_FAILURE: the three systems restored into OUT.
plan() {
  cat >"$1" <<EOF
name = "Finance and HR recovery"
parallel = 2
on_failure = "$4"
vaults = ["127.0.0.1:$port"]

[[system]]
name = "fin-app"
priority = 2
state = "$WORK/dr-fin"
host = "fin-app"
target = "$2/fin-app"
# A second's work after the move: priority 2 overlaps for sure.
check = 'sleep 1; test -s ".$WORK/src-app/big.bin" && test "\$CAIRN_PLAN_SYSTEM" = fin-app'

[[system]]
name = "fin-db"
priority = 1
state = "$WORK/dr-fin"
host = "fin-db"
paths = ["$WORK/src-db"]
target = "$2/fin-db"
check = '$3'
check_timeout = 60

[[system]]
name = "hr-web"
priority = 2
state = "$WORK/dr-hr"
host = "hr-web"
snapshot = "${snap_web:0:8}"
target = "$2/hr-web"
vaults = ["127.0.0.1:$port"]
check = 'sleep 1; test "\$CAIRN_PLAN_TARGET" = "$2/hr-web" && test -L ".$WORK/src-web/link"'
EOF
}
sysfield() {  # sysfield REPORT SYSTEM KEY[.KEY...]
  python3 -c "import json,sys
r=json.load(open(sys.argv[1])); v=[s for s in r['systems'] if s['name']==sys.argv[2]][0]
for k in sys.argv[3].split('.'): v=v[k]
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)" "$@"
}

# --- A dry run: validated and resolved, nothing restored ------------------
plan "$WORK/plan.toml" "$WORK/new" 'test "$(cat .'"$WORK"'/src-db/PG_VERSION)" = 16' stop
rc=0
"$RESTORE" plan run "$WORK/plan.toml" --dry-run --json >"$WORK/dry.json" || rc=$?
check "a dry run of a good plan exits 0" test "$rc" = 0
check "it resolves each system's snapshot (latest of its host, or the prefix given)" \
  test "$(sysfield "$WORK/dry.json" fin-db snapshot)" = "$snap_db" \
  -a "$(sysfield "$WORK/dry.json" fin-app snapshot)" = "$snap_app" \
  -a "$(sysfield "$WORK/dry.json" hr-web snapshot)" = "$snap_web"
check "in run order: priority 1, then 2 in file order" test "$(python3 -c "import json,sys
print(' '.join(s['name'] for s in json.load(open(sys.argv[1]))['systems']))" "$WORK/dry.json")" = "fin-db fin-app hr-web"
check "and restores nothing" test ! -e "$WORK/new"
"$RESTORE" plan run "$WORK/plan.toml" --dry-run >"$WORK/dry.txt"
cat "$WORK/dry.txt"
check "the dry run's text names each snapshot and says nothing was restored" \
  bash -c "grep -q 'fin-db: snapshot $snap_db of fin-db' '$WORK/dry.txt' && grep -q 'dry run: nothing restored' '$WORK/dry.txt'"

down=$(free_port)
rc=0
"$RESTORE" plan run "$WORK/plan.toml" --dry-run --vault "127.0.0.1:$down" --json >"$WORK/down.json" || rc=$?
check "--vault sends every system to that vault: none answers, so each fails (exit 1)" \
  bash -c "test $rc = 1 && test '$(json "$WORK/down.json" failed)' = 3 && grep -q '127.0.0.1:$down' '$WORK/down.json'"

# --- The plan: three systems, priorities 1, 2, 2, parallel 2 ----------------
rc=0
"$RESTORE" plan run "$WORK/plan.toml" --json >"$WORK/run.json" || rc=$?
check "a plan of three systems passes (exit 0)" test "$rc" = 0
check "its report says ok and names the plan" \
  test "$(json "$WORK/run.json" ok)" = True -a "$(json "$WORK/run.json" plan)" = "Finance and HR recovery"
for pair in fin-db:src-db fin-app:src-app hr-web:src-web; do
  name=${pair%%:*} src=$WORK/${pair#*:}
  check "$name: the target holds exactly the source" \
    bash -c "python3 '$TREECMP' '$src' '$WORK/new/$name$src' >'$WORK/cmp-$name.txt'"
  check "$name: passed, its check exited 0" \
    test "$(sysfield "$WORK/run.json" "$name" status)" = passed -a "$(sysfield "$WORK/run.json" "$name" check.exit)" = 0
done
check "each system restored its own host's snapshot" \
  test "$(sysfield "$WORK/run.json" fin-db snapshot)" = "$snap_db" \
  -a "$(sysfield "$WORK/run.json" fin-app snapshot_host)" = fin-app \
  -a "$(sysfield "$WORK/run.json" hr-web snapshot_host)" = hr-web
check "files and bytes per system" python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
sys.exit(0 if all(s['files'] >= 250 and s['bytes'] > 0 for s in r['systems']) else 1)" "$WORK/run.json"
check "priority 1 finished before either system of priority 2 started" python3 -c "
import json,sys; s={x['name']: x for x in json.load(open(sys.argv[1]))['systems']}
sys.exit(0 if s['fin-db']['finished'] <= min(s['fin-app']['started'], s['hr-web']['started']) else 1)" "$WORK/run.json"
check "the two systems of priority 2 ran side by side (parallel 2)" python3 -c "
import json,sys; s={x['name']: x for x in json.load(open(sys.argv[1]))['systems']}
a, b = s['fin-app'], s['hr-web']
sys.exit(0 if max(a['started'], b['started']) < min(a['finished'], b['finished']) else 1)" "$WORK/run.json"
check "the time per system (restore + check = total) and the plan's total are reported" python3 -c "
import json,sys; r=json.load(open(sys.argv[1])); s=r['systems']
per = all(x['seconds_restore'] > 0 and abs(x['seconds_restore'] + x['seconds_check'] - x['seconds_total']) < 0.01 for x in s)
checks = all(x['seconds_check'] >= 1 for x in s if x['name'] != 'fin-db')
# The plan took at least priority 1 plus the longer of priority 2.
longest2 = max(x['seconds_total'] for x in s if x['priority'] == 2)
total = r['total_seconds'] >= s[0]['seconds_total'] + longest2 - 0.01 and r['started'] <= s[0]['started']
sys.exit(0 if per and checks and total and r['finished'] >= s[-1]['finished'] else 1)" "$WORK/run.json"
check "the check saw CAIRN_PLAN_SYSTEM and CAIRN_PLAN_TARGET" \
  test "$(sysfield "$WORK/run.json" hr-web check.exit)" = 0
check "a restore of the plan's targets is on the vault's audit trail" \
  bash -c "'$VAULT' audit list ${V[*]} --json | grep -q '$WORK/new/fin-db'"

# The text report: a line per system as it finishes, a table, the total.
plan "$WORK/plan-text.toml" "$WORK/text" 'true' stop
rc=0
"$RESTORE" plan run "$WORK/plan-text.toml" >"$WORK/run.txt" || rc=$?
cat "$WORK/run.txt"
check "the text report: one line per system, a table, the total time" bash -c "
  test $rc = 0 && test \$(grep -c '^  passed ' '$WORK/run.txt') = 3 &&
  grep -q '^SYSTEM .*RESTORE .*CHECK .*TOTAL' '$WORK/run.txt' &&
  grep -Eq '^total [0-9.]+ s .*3 passed, 0 failed, 0 skipped' '$WORK/run.txt'"

# --- A failing check fails the plan ----------------------------------------
plan "$WORK/plan-bad-check.toml" "$WORK/badcheck" 'echo database will not start; exit 3' stop
rc=0
"$RESTORE" plan run "$WORK/plan-bad-check.toml" --json >"$WORK/badcheck.json" || rc=$?
check "a failing check fails the plan (exit 1)" test "$rc" = 1
check "the report says which system and why" \
  test "$(json "$WORK/badcheck.json" ok)" = False \
  -a "$(sysfield "$WORK/badcheck.json" fin-db failure)" = "check failed: exit 3"
check "with the check's output" grep -q 'database will not start' "$WORK/badcheck.json"
check "on_failure stop: priority 2 does not run" \
  bash -c "test '$(sysfield "$WORK/badcheck.json" fin-app status)' = skipped -a \
    '$(sysfield "$WORK/badcheck.json" hr-web status)' = skipped -a ! -e '$WORK/badcheck/fin-app'"
plan "$WORK/plan-continue.toml" "$WORK/cont" 'exit 3' continue
rc=0
"$RESTORE" plan run "$WORK/plan-continue.toml" --json >"$WORK/cont.json" || rc=$?
check "on_failure continue: priority 2 still runs, and the plan still fails" \
  test "$rc" = 1 -a "$(sysfield "$WORK/cont.json" fin-app status)" = passed \
  -a "$(sysfield "$WORK/cont.json" hr-web status)" = passed -a "$(json "$WORK/cont.json" failed)" = 1
plan "$WORK/plan-hang.toml" "$WORK/hang" 'sleep 60' stop
sed -i 's/^check_timeout = 60$/check_timeout = 2/' "$WORK/plan-hang.toml"
start=$(date +%s)
rc=0
"$RESTORE" plan run "$WORK/plan-hang.toml" --json >"$WORK/hang.json" || rc=$?
check "a hanging check is killed at its timeout and fails the system" \
  test "$rc" = 1 -a $(($(date +%s) - start)) -lt 30 \
  -a "$(sysfield "$WORK/hang.json" fin-db failure)" = "check timed out after 2 s"

# --- Bad plans: exit 2, a clear message, nothing restored ------------------
bad_plan() {  # bad_plan NAME EXPECTED_MESSAGE: runs $WORK/NAME.toml, must exit 2
  local rc=0
  "$RESTORE" plan run "$WORK/$1.toml" >"$WORK/$1.out" 2>"$WORK/$1.err" || rc=$?
  cat "$WORK/$1.err"
  [[ $rc == 2 ]] && grep -qF -- "$2" "$WORK/$1.err" && [[ ! -e $WORK/$1 ]]
}
plan "$WORK/unknown-key.toml" "$WORK/unknown-key" 'true' stop
sed -i 's/^check_timeout = 60$/chek_timeout = 60/' "$WORK/unknown-key.toml"
line=$(grep -n '^chek_timeout' "$WORK/unknown-key.toml" | cut -d: -f1)
check "an unknown key: exit 2 naming the file, line, system and key; nothing restored" \
  bad_plan unknown-key "$WORK/unknown-key.toml line $line: system 'fin-db': unknown key 'chek_timeout'"
plan "$WORK/dup.toml" "$WORK/dup" 'true' stop
sed -i 's/^name = "hr-web"$/name = "fin-app"/' "$WORK/dup.toml"
check "a duplicate system name: exit 2" bad_plan dup "system 'fin-app': key 'name': a second system of this name"
plan "$WORK/prio.toml" "$WORK/prio" 'true' stop
sed -i '0,/^priority = 2$/s//priority = 0/' "$WORK/prio.toml"
check "a bad priority: exit 2" bad_plan prio "system 'fin-app': key 'priority' must be a whole number from 1 to 1000"
plan "$WORK/missing.toml" "$WORK/missing" 'true' stop
sed -i "\|^target = \"$WORK/missing/hr-web\"$|d" "$WORK/missing.toml"
check "a missing target: exit 2" bad_plan missing "system 'hr-web': key 'target' is missing"
plan "$WORK/full.toml" "$WORK/full" 'true' stop
mkdir -p "$WORK/full/hr-web" && echo keep >"$WORK/full/hr-web/old"
rc=0
"$RESTORE" plan run "$WORK/full.toml" >"$WORK/full.out" 2>"$WORK/full.err" || rc=$?
check "a target that is not empty: exit 2, and nothing is restored (priority 1 neither)" bash -c "
  test $rc = 2 && grep -q \"system 'hr-web': key 'target': $WORK/full/hr-web is not empty\" '$WORK/full.err' &&
  test ! -e '$WORK/full/fin-db' && test \"\$(cat '$WORK/full/hr-web/old')\" = keep"
plan "$WORK/nostate.toml" "$WORK/nostate" 'true' stop
sed -i "s|^state = \"$WORK/dr-hr\"$|state = \"$WORK/nowhere\"|" "$WORK/nostate.toml"
check "a state directory that is not enrolled: exit 2" \
  bad_plan nostate "system 'hr-web': key 'state': $WORK/nowhere is not an enrolled agent state directory"
printf 'name = "x"\n[[system]\n' >"$WORK/syntax.toml"
check "TOML that does not parse: exit 2 with its line" bad_plan syntax "$WORK/syntax.toml line 2: not valid TOML"
rc=0
"$RESTORE" plan run "$WORK/unknown-key.toml" --json >"$WORK/bad.json" 2>/dev/null || rc=$?
check "with --json, a bad plan is one JSON error on stdout" \
  test "$rc" = 2 -a "$(json "$WORK/bad.json" ok)" = False -a "$(json "$WORK/bad.json" error)" = invalid_argument
rc=0
"$RESTORE" plan run "$WORK/no-such-plan.toml" >/dev/null 2>"$WORK/noplan.err" || rc=$?
check "a plan file that does not exist: exit 5" bash -c "test $rc = 5 && grep -q no-such-plan '$WORK/noplan.err'"

# A snapshot that does not exist: the plan does not start (on_failure stop).
plan "$WORK/nosnap.toml" "$WORK/nosnap" 'true' stop
sed -i 's/^snapshot = ".*"$/snapshot = "ffffffff"/' "$WORK/nosnap.toml"
rc=0
"$RESTORE" plan run "$WORK/nosnap.toml" --json >"$WORK/nosnap.json" || rc=$?
check "a snapshot that cannot be resolved fails its system, and nothing else starts" \
  bash -c "test $rc = 1 && test '$(sysfield "$WORK/nosnap.json" hr-web status)' = failed &&
    grep -q 'no snapshot ffffffff' '$WORK/nosnap.json' &&
    test '$(sysfield "$WORK/nosnap.json" fin-db status)' = skipped && test ! -e '$WORK/nosnap'"
finish
