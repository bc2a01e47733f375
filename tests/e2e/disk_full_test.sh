#!/usr/bin/env bash
# A full disk at the vault: the agent gets a clear error, the vault keeps
# running, and nothing stored before is harmed (a restart recovers cleanly).
# The space the failed backup took is given back at once. A full disk under
# the agent's state directory: the backup still completes.
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

# The agent's own state directory on a full disk (a 400 KiB tmpfs in another
# private mount namespace): its file cache cannot be written. The backup
# still completes, with warnings (exit 3) that say so, and restores.
mkdir -p "$WORK/tiny" "$WORK/many"
for i in $(seq 1 3000); do echo "file $i" >"$WORK/many/f$i"; done
token=$(in_ns "$VAULT" token create --department finance --data "$WORK/small/vault")
cat >"$WORK/tiny.sh" <<TINY
mount -t tmpfs -o size=400k tmpfs "$WORK/tiny"
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/tiny/agent" >/dev/null
"$AGENT" backup --state "$WORK/tiny/agent" "$WORK/many" >"$WORK/tiny.out" 2>"$WORK/tiny.err"
echo \$? >"$WORK/tiny.rc"
"$BIN/restore/cairn-restore" restore latest --state "$WORK/tiny/agent" --target "$WORK/tiny-restore" \
  >/dev/null 2>"$WORK/tiny-restore.err"
echo \$? >"$WORK/tiny-restore.rc"
TINY
unshare -m --propagation private bash "$WORK/tiny.sh"
sed 's/^/  agent said: /' "$WORK/tiny.err"
check "a backup whose state directory is full completes with warnings (exit $(cat "$WORK/tiny.rc"))" \
  test "$(cat "$WORK/tiny.rc")" -eq 3
check "the warning names the full file system and says the backup went on" \
  grep -q "file cache not updated (lmdb commit: the file system of $WORK/tiny/agent/lmdb is full.*the backup goes on" \
  "$WORK/tiny.err"
check "and that backup restores whole (exit $(cat "$WORK/tiny-restore.rc"))" \
  diff -r "$WORK/many" "$WORK/tiny-restore$WORK/many"
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
# The failed backup's unflushed pack data is cut back at once: a backup that
# fits succeeds without a restart or a collection.
mkdir -p "$WORK/after" && head -c $((4 * 1048576)) /dev/urandom >"$WORK/after/c"
check "the full disk's space comes back: a backup that fits succeeds again" \
  "$AGENT" backup --state "$WORK/agent" "$WORK/after"

finish
