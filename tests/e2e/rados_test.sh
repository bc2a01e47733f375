#!/usr/bin/env bash
# The vault's packs in a Ceph pool (doc/design.md section 26), beside a real
# single-node cluster on bluestore (tests/ceph/cluster), so that the OSD can
# be killed and come back with its data. Covers: init's clear refusals (no
# such pool, an unknown Ceph user); the packs and the department registry in
# the vault's own namespaces; the plug pulled on the cluster (SIGKILL of the
# OSD) in the middle of a backup: a clear error within the configured
# timeout, the vault keeps serving, no committed snapshot lost, and the
# backup completes when the OSD returns; a vault restart over the same pool.
# The rest of the data path on RADOS runs as ctest's e2e.rados.* entries.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESTORE=$BIN/restore/cairn-restore
command -v ceph-osd >/dev/null || { echo "SKIP: Ceph is not installed (scripts/install-deps)"; exit 77; }
CEPH=$WORK/ceph
rados_cleanup() { "$ROOT/tests/ceph/cluster" stop "$CEPH" >/dev/null 2>&1 || true; cleanup; }
trap rados_cleanup EXIT
start=$(date +%s.%N)
"$ROOT/tests/ceph/cluster" start "$CEPH" bluestore >/dev/null
check "a single-node cluster (bluestore) accepts writes after $(python3 -c "import time; print(round(time.time() - $start, 1))") s" true
export CAIRN_CEPH_CONF=$CEPH/ceph.conf

# init refuses what cannot work, before it writes anything.
"$VAULT" init --data "$WORK/bad1" --store rados:nosuchpool --ceph-conf "$CAIRN_CEPH_CONF" --ceph-user admin \
  >"$WORK/bad1.txt" 2>&1 && r=0 || r=$?
cat "$WORK/bad1.txt"
check "init refuses a pool the cluster does not have, saying so" \
  bash -c "[[ $r != 0 ]] && grep -q 'no pool \"nosuchpool\"' $WORK/bad1.txt && [[ ! -e $WORK/bad1 ]]"
"$VAULT" init --data "$WORK/bad2" --store rados:cairn --ceph-conf "$CAIRN_CEPH_CONF" --ceph-user nobody \
  >"$WORK/bad2.txt" 2>&1 && r=0 || r=$?
cat "$WORK/bad2.txt"
check "and a Ceph user it cannot authenticate as" \
  bash -c "[[ $r != 0 ]] && grep -q 'no keyring for client.nobody' $WORK/bad2.txt && [[ ! -e $WORK/bad2 ]]"

port=$(free_port)
"$VAULT" init --data "$WORK/vault" --store rados:cairn --ceph-conf "$CAIRN_CEPH_CONF" --ceph-user admin \
  --json >"$WORK/init.json"
check "init puts the packs in the pool, under a prefix of its own" \
  bash -c "grep -q '\"pack_store\":\"rados:cairn/v-' $WORK/init.json"
# Operations give up after 8 s, so that a dead OSD fails a backup quickly.
sed -i 's/^\[pack_store\]$/[pack_store]\nop_timeout_seconds = 8/' "$WORK/vault/vault.toml"
vault_start "$WORK/vault" "$port"
check "serve says where the packs are" grep -q "packs in rados:cairn/v-" "$WORK/vault.log"
"$VAULT" department create finance --data "$WORK/vault" >/dev/null
enroll "$WORK/vault" "$port" finance "$WORK/agent"
make_tree "$WORK/src" 20
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b1.json"
s1=$(json "$WORK/b1.json" snapshot)
prefix=$(pack_prefix "$WORK/vault")
rados_ ls --all >"$WORK/objects.txt"
check "the packs are objects in the department's namespace" grep -q "^${prefix}1	0000000000000001.pack" "$WORK/objects.txt"
check "and the department is registered" grep -q "^${prefix}departments	1$" "$WORK/objects.txt"

# The plug pulled on the cluster in the middle of a backup.
make_tree "$WORK/big" 300
base=$(packs_bytes "$WORK/vault")
started=$(date +%s)
"$AGENT" backup --state "$WORK/agent" "$WORK/big" --json >"$WORK/cut.json" 2>"$WORK/cut.err" &
agent_pid=$!
for _ in $(seq 1 400); do
  [[ $(($(packs_bytes "$WORK/vault") - base)) -gt $((20 * 1048576)) ]] && break
  sleep 0.05
done
"$ROOT/tests/ceph/cluster" kill-osd "$CEPH"
killed=$(date +%s)
wait "$agent_pid" && r=0 || r=$?
took=$(($(date +%s) - killed))
cat "$WORK/cut.err"
check "with the OSD killed mid-backup the backup fails (exit $r, $took s after the kill)" \
  bash -c "[[ $r != 0 ]] && [[ $took -le 60 ]]"
check "saying the cluster did not answer" grep -qi "ceph cluster did not answer\|timed out" "$WORK/cut.err" "$WORK/vault.log"
check "the vault keeps serving" kill -0 "$VAULT_PID"

"$ROOT/tests/ceph/cluster" start-osd "$CEPH"
for _ in $(seq 1 300); do rados_ put cairn-probe "$CEPH/probe" 2>/dev/null && break; sleep 0.2; done
"$AGENT" backup --state "$WORK/agent" "$WORK/big" --json >"$WORK/rerun.json" 2>"$WORK/rerun.err" && r=0 || r=$?
cat "$WORK/rerun.err"
check "when the OSD returns the backup completes" test "$r" = 0
"$RESTORE" restore "$s1" --state "$WORK/agent" --verify-only >"$WORK/v1.txt" 2>&1 || true
check "the snapshot committed before the kill is intact" grep -q "no damage" "$WORK/v1.txt"
"$RESTORE" restore latest --state "$WORK/agent" --target "$WORK/out" >/dev/null 2>&1 || true
check "and the new one restores byte for byte" diff -r "$WORK/big" "$WORK/out$WORK/big"

# A restart over the same pool: the catalog and index are local, the packs
# are where they were.
vault_stop
vault_start "$WORK/vault" "$port"
rm -rf "$WORK/out"
"$RESTORE" restore "$s1" --state "$WORK/agent" --target "$WORK/out" >/dev/null 2>&1 || true
check "after a vault restart the first snapshot restores byte for byte" diff -r "$WORK/src" "$WORK/out$WORK/src"
finish
