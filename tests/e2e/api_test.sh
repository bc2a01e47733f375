#!/usr/bin/env bash
# The REST API against a real `cairn-vault serve --http`: the authorization
# matrix (every role, own and other department, every route, no session and
# an expired one: 0 violations), sessions and CSRF, login throttling and its
# audit, /metrics parsed by Prometheus's own parser, and bad HTTP input
# (oversized, malformed, unknown fields, `..`, a connection flood) answered
# with a 4xx while the vault keeps serving agents.
source "$(dirname "$0")/lib.sh"
# Debian's python3 (the one python3-prometheus-client installs into), whatever
# else is first on the PATH.
PY=/usr/bin/python3
if ! "$PY" -c "import prometheus_client" 2>/dev/null; then
  echo "SKIP: python3-prometheus-client is not installed (scripts/install-deps installs it)"; exit 77
fi

port=$(free_port); http=$(free_port)
"$VAULT" init --data "$WORK/vault" --json >"$WORK/init.json"
admin_pw=$(json "$WORK/init.json" admin_password)
"$VAULT" department create finance --data "$WORK/vault" >/dev/null
"$VAULT" department create health --data "$WORK/vault" >/dev/null
"$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$port" --http "127.0.0.1:$http" \
  --console-session-idle 3 >>"$WORK/vault.log" 2>&1 &
VAULT_PID=$!
PIDS+=("$VAULT_PID")
for _ in $(seq 1 100); do grep -q "REST API" "$WORK/vault.log" && break; sleep 0.05; done

enroll_host() {  # enroll_host DEPARTMENT HOST
  local t
  t=$("$VAULT" token create --department "$1" --data "$WORK/vault")
  "$AGENT" enroll --vault "127.0.0.1:$port" --token "$t" --state "$WORK/agent-$2" --host "$2" >/dev/null
}
for h in fin-main fin-r1 fin-r2 fin-r3; do enroll_host finance "$h"; done
for h in hl-main hl-r1 hl-r2 hl-r3; do enroll_host health "$h"; done
mkdir -p "$WORK/src" && echo data >"$WORK/src/f"
"$AGENT" backup --state "$WORK/agent-fin-main" "$WORK/src" >/dev/null
"$AGENT" backup --state "$WORK/agent-hl-main" "$WORK/src" >/dev/null
"$VAULT" job start --agent fin-main --data "$WORK/vault" >/dev/null
"$VAULT" job start --agent hl-main --data "$WORK/vault" >/dev/null
mkuser() {  # mkuser NAME ROLE [DEPARTMENT]
  echo "password-of-$1" | "$VAULT" user create "$1" --role "$2" ${3:+--department "$3"} \
    --password-stdin --data "$WORK/vault" >/dev/null
}
mkuser op operator finance
mkuser dr1 dr
mkuser aud auditor
mkuser victim operator health
for u in admin op dr1 aud victim; do
  "$VAULT" user token "$u" --data "$WORK/vault" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['token'])" >"$WORK/token-$u"
done

"$PY" "$(dirname "$0")/api_check.py" "$WORK" "$http" "$port" "$admin_pw" "$BIN"
