#!/usr/bin/env bash
# A full disk at the vault: the agent gets a clear error, the vault keeps
# running, and nothing stored before is harmed (a restart recovers cleanly).
# The vault's data lives on a 48 MiB tmpfs in a private mount namespace.
source "$(dirname "$0")/lib.sh"

if ! unshare -m --propagation private true 2>/dev/null; then
  echo "SKIP: cannot create a mount namespace here (needs root)"; exit 77
fi
port=$(free_port)
mkdir -p "$WORK/small"
cat >"$WORK/ns.sh" <<NS
mount -t tmpfs -o size=48m tmpfs "$WORK/small"
"$VAULT" init --data "$WORK/small/vault" >/dev/null
"$VAULT" department create finance --data "$WORK/small/vault" >/dev/null
exec "$VAULT" serve --data "$WORK/small/vault" --listen "127.0.0.1:$port"
NS
unshare -m --propagation private bash "$WORK/ns.sh" >>"$WORK/vault.log" 2>&1 &
VAULT_PID=$!
PIDS+=("$VAULT_PID")
for _ in $(seq 1 100); do grep -q "serving agents" "$WORK/vault.log" && break; sleep 0.05; done
in_ns() { nsenter -t "$VAULT_PID" -m "$@"; }
token=$(in_ns "$VAULT" token create --department finance --data "$WORK/small/vault")
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/agent" >/dev/null

mkdir -p "$WORK/fits" && head -c $((4 * 1048576)) /dev/urandom >"$WORK/fits/a"
"$AGENT" backup --state "$WORK/agent" "$WORK/fits" --json >"$WORK/fits.json"
kept=$(json "$WORK/fits.json" snapshot)
check "a backup that fits succeeds" test -n "$kept"

mkdir -p "$WORK/big" && head -c $((80 * 1048576)) /dev/urandom >"$WORK/big/b"
if "$AGENT" backup --state "$WORK/agent" "$WORK/big" 2>"$WORK/full.err"; then
  fail "a backup larger than the disk succeeded"
else
  sed 's/^/  agent said: /' "$WORK/full.err"
  check "the agent reports the full disk clearly" grep -qiE "no.space|out of disk space|no_space" "$WORK/full.err"
fi
check "the vault is still running" kill -0 "$VAULT_PID"
in_ns "$VAULT" snapshot list --department finance --data "$WORK/small/vault" --json >"$WORK/list.json"
check "the earlier snapshot is intact" grep -q "$kept" "$WORK/list.json"
finish
