#!/usr/bin/env bash
# Backup sessions that are begun and abandoned (a hostile agent, or agents
# killed mid-manifest) cost the vault bounded memory, are bounded in number
# per agent, and are forgotten once idle: RSS comes back down and their
# manifest spills are removed. Before the fix, ten sessions of 500,000 IDs
# took the vault from 13 MB to 263 MB of RSS, for good.
source "$(dirname "$0")/lib.sh"
ABANDON=$BIN/tests/e2e/abandon_sessions

port=$(free_port)
vault_init "$WORK/vault"
"$VAULT" department create finance --data "$WORK/vault" >/dev/null
"$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$port" --session-idle 4 >>"$WORK/vault.log" 2>&1 &
VAULT_PID=$!
PIDS+=("$VAULT_PID")
for _ in $(seq 1 100); do grep -q "serving agents" "$WORK/vault.log" && break; sleep 0.05; done
enroll "$WORK/vault" "$port" finance "$WORK/agent"

rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$VAULT_PID/status"; }
base=$(rss)
"$ABANDON" "$WORK/agent" 10 500000
after=$(rss)
spills=$(ls "$WORK/vault/sessions" | wc -l)
echo "vault RSS: $base MiB at start, $after MiB after 10 abandoned sessions of 500,000 IDs; $spills manifest spill(s)"
check "ten abandoned 16 MB manifests do not stay in the vault's memory (RSS +$((after - base)) MiB < 48)" \
  test $((after - base)) -lt 48
check "an agent holds at most 4 sessions: the idlest were forgotten ($spills spill files)" test "$spills" -le 4

gone=no
for _ in $(seq 1 100); do
  if [[ -z $(ls "$WORK/vault/sessions") ]]; then gone=yes; break; fi
  sleep 0.2
done
check "idle sessions expire and their spills are removed" test "$gone" = yes
check "the vault says it forgot them" grep -q "idle backup session(s) forgotten" "$WORK/vault.log"
later=$(rss)
echo "vault RSS after expiry: $later MiB"
check "RSS comes back down ($later MiB, started at $base MiB)" test $((later - base)) -lt 24

make_tree "$WORK/src" 2
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b.json"
check "a backup still works afterwards" test -n "$(json "$WORK/b.json" snapshot)"
finish
