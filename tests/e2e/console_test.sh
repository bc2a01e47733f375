#!/usr/bin/env bash
# The web console in a real browser (doc/design.md section 16): Debian's
# chromium driven by playwright-core (tests/e2e/console.mjs) against a real
# `cairn-vault serve --http` on 127.0.0.1, a real agent that the operator
# enrols with the command the console shows, and a DR vault
# (`cairn-replicator run --http`) that a DR user promotes:
#   - each role logs in; a wrong password is refused;
#   - the admin creates a department; the operator makes an enrolment
#     token, enrols the agent with it, creates a policy (refusals inline),
#     assigns a source, runs "back up now" and watches it finish;
#   - the auditor sees compliance and the audit chain, is offered no change,
#     and the API refuses the auditor's write;
#   - the Chinese console; every page at 1280x720 and 1920x1080 without
#     overflow; focus moves with the keyboard;
#   - the DR user promotes the DR vault, with the consequence stated and
#     the reason recorded.
# Screenshots of every page go to build/main/console-screenshots/.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REPL=$BIN/replicator/cairn-replicator
if [[ ! -x /usr/bin/chromium ]]; then
  echo "SKIP: /usr/bin/chromium is not installed (scripts/install-deps installs it)"; exit 77
fi
if [[ ! -f $ROOT/web-ui/dist/index.html || ! -d $ROOT/web-ui/node_modules/playwright-core ]]; then
  echo "SKIP: the web console is not built (cd web-ui && npm ci && npm run build)"; exit 77
fi
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }

pw() { head -c 12 /dev/urandom | base64 | tr -d '/+='; }
ADMIN_PW=$(pw) OPERATOR_PW=$(pw) AUDITOR_PW=$(pw) DR_PW=$(pw)

port=$(free_port)
hport=$(free_port)
vault_init "$WORK/vault"
printf '[scheduler]\nspread_seconds = 0\n' >>"$WORK/vault/vault.toml"
echo "$ADMIN_PW" | "$VAULT" user create ui.admin --role admin --password-stdin --data "$WORK/vault" >/dev/null
"$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$port" --http "127.0.0.1:$hport" \
  >>"$WORK/vault.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "REST API and console" "$WORK/vault.log" 2>/dev/null && break; sleep 0.1; done
check "the vault serves the console" grep -q "web console: .* files" "$WORK/vault.log"

make_tree "$WORK/src" 2

# The DR site: replicates, and serves its own API and console.
"$VAULT" init --data "$WORK/dr" --site dr >/dev/null
echo "$DR_PW" | "$VAULT" user create dr.chen --role dr --password-stdin --data "$WORK/dr" >/dev/null
token=$("$VAULT" token create --replicator --data "$WORK/vault")
"$REPL" enroll --data "$WORK/dr" --source "127.0.0.1:$port" --token "$token" >/dev/null
drport=$(free_port)
drhttp=$(free_port)
"$REPL" run --data "$WORK/dr" --listen "127.0.0.1:$drport" --http "127.0.0.1:$drhttp" \
  --poll-ms 500 >>"$WORK/dr.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "REST API and console" "$WORK/dr.log" 2>/dev/null && break; sleep 0.1; done
check "the DR vault serves its console" grep -q "REST API and console" "$WORK/dr.log"

SHOTS=$BIN/console-screenshots
rm -rf "$SHOTS" && mkdir -p "$SHOTS"
ROOT=$ROOT WORK=$WORK URL="https://127.0.0.1:$hport/" DR_URL="https://127.0.0.1:$drhttp/" \
  VAULT_ADDR="127.0.0.1:$port" VAULT=$VAULT AGENT=$AGENT SHOTS=$SHOTS \
  ADMIN_PW=$ADMIN_PW OPERATOR_PW=$OPERATOR_PW AUDITOR_PW=$AUDITOR_PW DR_PW=$DR_PW \
  timeout 400 node "$ROOT/tests/e2e/console.mjs" >"$WORK/browser.txt" 2>&1 || true
cat "$WORK/browser.txt"
b_pass=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$WORK/browser.txt" | tail -1)
b_fail=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$WORK/browser.txt" | tail -1)
PASSED=$((PASSED + ${b_pass:-0}))
FAILED=$((FAILED + ${b_fail:-1}))
check "screenshots of the pages were saved" test "$(ls "$SHOTS" | wc -l)" -ge 20
finish
