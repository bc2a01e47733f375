#!/usr/bin/env bash
# Alerts and the audit trail leaving the vault, against a real
# `cairn-vault serve` configured by vault.toml:
#  - a syslog collector on 127.0.0.1, stopped twice for a while during
#    activity and started again, receives every audit entry once, in order,
#    each a well-formed RFC 5424 message carrying its sequence number and hash;
#  - an agent that goes quiet and a job nobody takes fire alerts, which
#    resolve when the agent comes back and runs the job; both reach a
#    webhook that was down when they fired (retried with back-off), the
#    audit trail, syslog and `cairn-vault alert list`;
#  - a configuration file with a mistake is refused, naming key and line.
source "$(dirname "$0")/lib.sh"
COLLECT="/usr/bin/python3 $(dirname "$0")/collectors.py"

wait_for() {  # wait_for SECONDS command...: until the command succeeds
  local t=$1; shift
  for _ in $(seq 1 $((t * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
lines() { [[ -f $1 ]] && wc -l <"$1" || echo 0; }
at_least() { test "$(lines "$1")" -ge "$2"; }  # at_least FILE N: FILE has N lines

port=$(free_port); sport=$(free_port); wport=$(free_port)
vault_init "$WORK/vault"

# A mistake in the file: serve refuses it and names the key and its line.
cp "$WORK/vault/vault.toml" "$WORK/good.toml"
printf '\n[alerts]\ndisk_free_percnt = 5\n' >>"$WORK/vault/vault.toml"
set +e
"$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$port" >"$WORK/bad.out" 2>&1
rc=$?
set -e
echo "bad config: exit $rc: $(cat "$WORK/bad.out")"
check "a misspelt key is refused (exit 2)" test "$rc" -eq 2
n=$(grep -n disk_free_percnt "$WORK/vault/vault.toml" | cut -d: -f1)
check "the message names the key and its line ($n)" grep -q "line $n: unknown key 'disk_free_percnt' in \[alerts\]" "$WORK/bad.out"
set +e
"$VAULT" serve --data "$WORK/vault" --config "$WORK/none.toml" >"$WORK/none.out" 2>&1
rc=$?
set -e
check "serve --config FILE refuses a missing file (exit $rc)" test "$rc" -ne 0
check "... and says so" grep -q "no configuration file $WORK/none.toml" "$WORK/none.out"

cp "$WORK/good.toml" "$WORK/vault/vault.toml"
cat >>"$WORK/vault/vault.toml" <<TOML

[syslog]
target = "127.0.0.1:$sport"

[webhook]
url = "http://127.0.0.1:$wport/cairn-hook"

[alerts]
interval_seconds = 1
agent_unseen_seconds = 4
job_missed_seconds = 3
disk_free_percent = 0
TOML

$COLLECT syslog "$sport" "$WORK/syslog.txt" & SYSLOG_PID=$!; PIDS+=("$SYSLOG_PID")
vault_start "$WORK/vault" "$port"
check "serve says where the trail goes" grep -q "forwarding the audit trail to syslog at 127.0.0.1:$sport" "$WORK/vault.log"

"$VAULT" department create finance --data "$WORK/vault" >/dev/null
enroll "$WORK/vault" "$port" finance "$WORK/agent"
host=$(python3 -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['host'])" "$WORK/agent/agent.toml")
mkdir -p "$WORK/src" && echo data >"$WORK/src/f"
"$AGENT" backup --state "$WORK/agent" "$WORK/src" >/dev/null

# Activity while the collector comes and goes.
for round in 1 2; do
  for i in $(seq 1 15); do "$VAULT" department create "r$round-a$i" --data "$WORK/vault" >/dev/null; done
  kill -TERM "$SYSLOG_PID"; wait "$SYSLOG_PID" || true
  for i in $(seq 1 15); do "$VAULT" department create "r$round-b$i" --data "$WORK/vault" >/dev/null; done
  sleep 1.5
  $COLLECT syslog "$sport" "$WORK/syslog.txt" & SYSLOG_PID=$!; PIDS+=("$SYSLOG_PID")
done
check "serve logged the collector going away" grep -q "audit forwarding to syslog collector.*retrying" "$WORK/vault.log"

# The agent goes quiet: its alert fires. A job for it waits: that one too.
check "the unseen agent fires an alert" wait_for 20 grep -q "alert agent_unseen:.* fired" "$WORK/vault.log"
"$VAULT" job start --agent "$host" --path "$WORK/src" --data "$WORK/vault" >/dev/null
check "the job nobody takes fires an alert" wait_for 20 grep -q "alert job_missed:.* fired" "$WORK/vault.log"
"$VAULT" alert list --data "$WORK/vault" --json >"$WORK/firing.json"
check "alert list shows both firing" test "$(json "$WORK/firing.json" alerts)" -eq 2
"$VAULT" alert list --data "$WORK/vault"

# The webhook receiver starts only now: the vault has been retrying.
sleep 2
$COLLECT webhook "$wport" "$WORK/hook.txt" & HOOK_PID=$!; PIDS+=("$HOOK_PID")
check "the webhook receives both alerts once it is up" wait_for 60 at_least "$WORK/hook.txt" 2

# The agent comes back and runs the job: both resolve.
"$AGENT" run --state "$WORK/agent" >"$WORK/agent.log" 2>&1 & AGENT_PID=$!; PIDS+=("$AGENT_PID")
check "the job runs" wait_for 30 grep -q "job 1 done" "$WORK/vault.log"
check "both alerts resolve" wait_for 20 bash -c "test \$(grep -c 'alert .* resolved' '$WORK/vault.log') -ge 2"
check "the webhook receives the resolutions" wait_for 30 at_least "$WORK/hook.txt" 4
kill -TERM "$AGENT_PID"; wait "$AGENT_PID" || true
python3 - "$WORK/hook.txt" <<'PY' && ok "webhook payloads: fire then resolve for each, with rule, summary and site" || fail "webhook payloads"
import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
for e in events:
    print("webhook:", e["event"], e["rule"], "-", e["summary"])
    assert e["site"] and e["summary"] and e["audit_seq"] > 0 and e["key"]
by_key = {}
for e in events:
    by_key.setdefault(e["key"], []).append(e["event"])
assert sorted(r.split(":")[0] for r in by_key) == ["agent_unseen", "job_missed"], by_key
assert all(v == ["alert.fire", "alert.resolve"] for v in by_key.values()), by_key
PY
"$VAULT" alert list --data "$WORK/vault" --all --json >"$WORK/all.json"
check "alert list --all shows them resolved" python3 -c "
import json,sys; a=json.load(open(sys.argv[1]))['alerts']
sys.exit(0 if len(a)==2 and not any(x['firing'] for x in a) else 1)" "$WORK/all.json"
check "the trail records fire and resolve" test "$(grep -c '"action":"alert\.\(fire\|resolve\)"' "$WORK/vault/audit/log")" -eq 4

# Every entry reached syslog, once, in order (wait for the tail to go out).
check "syslog catches up with the trail" wait_for 30 bash -c "test \$(wc -l <'$WORK/syslog.txt') -ge \$(wc -l <'$WORK/vault/audit/log')"
vault_stop
kill -TERM "$SYSLOG_PID"; wait "$SYSLOG_PID" || true
python3 - "$WORK/syslog.txt" "$WORK/vault/audit/log" <<'PY' && ok "syslog holds every entry once, in order, as stored" || fail "syslog delivery"
import json, re, sys
got = open(sys.argv[1]).read().splitlines()
log = open(sys.argv[2]).read().splitlines()
seqs = [int(re.search(r' seq="(\d+)"', m).group(1)) for m in got]
print(f"syslog: {len(got)} messages for {len(log)} entries; first {seqs[:3]}, last {seqs[-3:]}")
assert seqs == list(range(1, len(log) + 1)), "missing or duplicated: %s" % sorted(set(range(1, len(log) + 1)) ^ set(seqs))[:10]
for m, line in zip(got, log):
    entry = json.loads(line)
    assert m.endswith(" " + line), "MSG is not the stored line"
    assert f'hash="{entry["hash"]}"' in m and f' {entry["action"][:32]} [' in m
PY

# Over TLS (RFC 5425): the collector's certificate from a CA the file names.
# First a CA that did not sign it: nothing goes, entries wait; then the
# right one: everything after the earlier cursor goes, once.
openssl req -x509 -newkey ed25519 -nodes -days 2 -subj "/CN=Test Collector CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -x509 -newkey ed25519 -nodes -days 2 -subj "/CN=Wrong CA" \
  -keyout "$WORK/wrong.key" -out "$WORK/wrong.pem" 2>/dev/null
openssl req -newkey ed25519 -nodes -subj "/CN=collector" -addext "subjectAltName=IP:127.0.0.1" \
  -keyout "$WORK/col.key" -out "$WORK/col.csr" 2>/dev/null
openssl x509 -req -in "$WORK/col.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
  -days 2 -copy_extensions copy -out "$WORK/col.pem" 2>/dev/null
tls_config() {
  python3 - "$WORK/vault/vault.toml" "$1" <<'PY'
import re, sys
path, ca = sys.argv[1], sys.argv[2]
text = open(path).read()
text = re.sub(r'\[syslog\]\ntarget = "([^"]+)"\n(transport = "tls"\nca = "[^"]*"\n)?',
              lambda m: '[syslog]\ntarget = "%s"\ntransport = "tls"\nca = "%s"\n' % (m.group(1), ca), text)
open(path, "w").write(text)
PY
}
: >"$WORK/syslog.txt"
$COLLECT syslog "$sport" "$WORK/syslog.txt" "$WORK/col.pem" "$WORK/col.key" 2>"$WORK/tls-collector.err" &
SYSLOG_PID=$!; PIDS+=("$SYSLOG_PID")
tls_config "$WORK/wrong.pem"
before=$(cut -d' ' -f1 "$WORK/vault/audit/syslog.cursor")  # delivered so far
vault_start "$WORK/vault" "$port"
for i in $(seq 1 5); do "$VAULT" department create "tls-$i" --data "$WORK/vault" >/dev/null; done
check "a collector the CA does not vouch for is refused, and said so" \
  wait_for 20 grep -q "audit forwarding to syslog collector 127.0.0.1:$sport (TLS):.*certificate" "$WORK/vault.log"
grep "(TLS):" "$WORK/vault.log" | head -1
check "... and gets nothing" test "$(lines "$WORK/syslog.txt")" -eq 0
vault_stop
tls_config "$WORK/ca.pem"
vault_start "$WORK/vault" "$port"
check "with the right CA the waiting entries go over TLS" \
  wait_for 30 bash -c "test \$(wc -l <'$WORK/syslog.txt') -ge \$(( \$(wc -l <'$WORK/vault/audit/log') - $before ))"
vault_stop
kill -TERM "$SYSLOG_PID"; wait "$SYSLOG_PID" || true
python3 - "$WORK/syslog.txt" "$before" "$WORK/vault/audit/log" <<'PY' && ok "TLS: every later entry once, in order" || fail "TLS delivery"
import re, sys
seqs = [int(re.search(r' seq="(\d+)"', m).group(1)) for m in open(sys.argv[1])]
total = len(open(sys.argv[3]).read().splitlines())
print(f"TLS syslog: entries {seqs[:1]}..{seqs[-1:]} ({len(seqs)}) of {total}")
assert seqs == list(range(int(sys.argv[2]) + 1, total + 1)), seqs
PY
finish
