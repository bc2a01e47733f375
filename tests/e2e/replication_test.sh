#!/usr/bin/env bash
# Replication and failover end to end. The primary vault, the DR site
# (cairn-replicator serving the DR vault) and an agent are three hosts:
# network namespaces created here, joined by a bridge in a fourth
# (10.77.N.1 primary, .2 DR, .3 agent; N varies per run). Where namespaces
# cannot be made (not root, no iproute2), the test says so and exits 77.
#
# Covers: full and incremental replication (bytes counted); the replicator
# killed mid-transfer and resumed without refetching what was durable; the
# primary's link cut mid-transfer and restored; continuous mode's lag; the
# primary killed, then a byte-identical restore from the DR site; a DR
# vault refusing backups until promoted; a flipped byte in a DR pack caught
# by verification; an agent certificate refused as a replicator and a
# replicator certificate refused as an agent.
source "$(dirname "$0")/lib.sh"

RESTORE=$BIN/restore/cairn-restore
REPL=$BIN/replicator/cairn-replicator
TREECMP=$(dirname "$0")/treecmp.py
PATH=$PATH:/usr/sbin:/sbin

if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null || ! ip netns add "cairn-probe-$$" 2>/dev/null; then
  echo "SKIP: cannot create network namespaces here (needs root and iproute2)"; exit 77
fi
ip netns del "cairn-probe-$$"

tag=$$
NET=10.77.$((tag % 200 + 20))
P=cp-$tag; D=cd-$tag; A=ca-$tag; BR=cb-$tag
netns_cleanup() {
  for ns in $P $D $A $BR; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap 'netns_cleanup; cleanup' EXIT
ip netns add $BR
ip netns exec $BR ip link add br0 type bridge
ip netns exec $BR ip link set br0 up
i=0
for ns in $P $D $A; do
  i=$((i + 1))
  ip netns add "$ns"
  ip link add "v$i-$tag" type veth peer name "b$i-$tag"
  ip link set "v$i-$tag" netns "$ns"
  ip link set "b$i-$tag" netns $BR
  ip netns exec $BR ip link set "b$i-$tag" master br0
  ip netns exec $BR ip link set "b$i-$tag" up
  ip netns exec "$ns" ip addr add "$NET.$i/24" dev "v$i-$tag"
  ip netns exec "$ns" ip link set "v$i-$tag" up
  ip netns exec "$ns" ip link set lo up
done
PRIMARY=$NET.1:7420
DRADDR=$NET.2:7420
inP() { ip netns exec $P "$@"; }
inD() { ip netns exec $D "$@"; }
inA() { ip netns exec $A "$@"; }

# --- the primary, an agent, a first backup --------------------------------
"$VAULT" init --data "$WORK/primary" --site primary --host $NET.1 >/dev/null
"$VAULT" department create finance --data "$WORK/primary" >/dev/null
start_primary() {
  local before
  before=$(grep -c "serving agents" "$WORK/primary.log" 2>/dev/null || true)
  # Not through inP: $! must be the process itself, not a subshell.
  ip netns exec $P "$VAULT" serve --data "$WORK/primary" --listen $PRIMARY >>"$WORK/primary.log" 2>&1 &
  PRIMARY_PID=$!
  PIDS+=("$PRIMARY_PID")
  for _ in $(seq 1 100); do
    [[ $(grep -c "serving agents" "$WORK/primary.log" 2>/dev/null || true) -gt ${before:-0} ]] && return 0
    sleep 0.05
  done
  echo "primary did not start"; cat "$WORK/primary.log"; return 1
}
start_primary
check "the agent host reaches the primary through the bridge" \
  inA bash -c "exec 3<>/dev/tcp/$NET.1/7420"
inA "$AGENT" enroll --vault $PRIMARY --state "$WORK/agent" \
  --token "$("$VAULT" token create --department finance --data "$WORK/primary")" >/dev/null
src=$WORK/src
make_tree "$src" 16
inA "$AGENT" backup --state "$WORK/agent" "$src" --json >"$WORK/b1.json"
check "first backup to the primary" test -n "$(json "$WORK/b1.json" snapshot)"

# --- the DR site ----------------------------------------------------------
"$VAULT" init --data "$WORK/dr" --site dr --host $NET.2 >/dev/null
token=$("$VAULT" token create --replicator --data "$WORK/primary")
inD "$REPL" enroll --data "$WORK/dr" --source $PRIMARY --token "$token" >/dev/null
RUN=(run --data "$WORK/dr" --advertise $DRADDR)
inD "$REPL" "${RUN[@]}" --once --json >"$WORK/r1.json" 2>"$WORK/r1.log" || cat "$WORK/r1.log"
new1=$(json "$WORK/b1.json" new_bytes)
got1=$(json "$WORK/r1.json" bytes)
echo "full replication: $got1 record bytes for $new1 new bytes at the backup"
check "full replication commits the snapshot" test "$(json "$WORK/r1.json" snapshots)" -eq 1
check "and fetches about what the backup stored" \
  test "$got1" -ge $((new1 * 9 / 10)) -a "$got1" -le $((new1 * 11 / 10 + 65536))
check "its escrowed keys are wrapped at the DR site" \
  test "$("$VAULT" department list --data "$WORK/dr")" = "$("$VAULT" department list --data "$WORK/primary")"

# Incremental: 1% of the files change.
for f in $(find "$src/sub" -type f | sort | awk 'NR % 100 == 1'); do printf 'changed' >>"$f"; done
inA "$AGENT" backup --state "$WORK/agent" "$src" --json >"$WORK/b2.json"
inD "$REPL" "${RUN[@]}" --once --json >"$WORK/r2.json" 2>>"$WORK/r1.log"
new2=$(json "$WORK/b2.json" new_bytes)
got2=$(json "$WORK/r2.json" bytes)
echo "incremental replication: $got2 record bytes for $new2 new bytes at the backup"
check "incremental pass transfers only the new chunks" test "$got2" -le $((new2 + 65536)) -a "$got2" -gt 0
check "and counts the rest as present" test "$(json "$WORK/r2.json" chunks_present)" -gt 0

# --- killed mid-transfer, then resumed -----------------------------------
mkdir -p "$src/big" && head -c $((160 * 1048576)) /dev/urandom >"$src/big/blob.bin"
inA "$AGENT" backup --state "$WORK/agent" "$src" --json >"$WORK/b3.json"
new3=$(json "$WORK/b3.json" new_bytes)
ip netns exec $D "$REPL" "${RUN[@]}" --once --json --limit-rate 20M >"$WORK/r3a.json" 2>>"$WORK/r1.log" &
rpid=$!
sleep 5
kill -KILL $rpid 2>/dev/null || true
wait $rpid 2>/dev/null || true
inD "$REPL" "${RUN[@]}" --once --json >"$WORK/r3b.json" 2>>"$WORK/r1.log"
got3=$(json "$WORK/r3b.json" bytes)
echo "after a kill at ~5 s: the resumed pass fetched $got3 of $new3 new bytes"
check "the resumed pass commits the snapshot" test "$(json "$WORK/r3b.json" snapshots)" -eq 1
check "and does not refetch what was made durable before the kill" test "$got3" -lt $((new3 * 3 / 4))

# --- continuous mode, a network cut, the lag -----------------------------
ip netns exec $D "$REPL" "${RUN[@]}" --listen $DRADDR --json --limit-rate 25M --poll-ms 200 \
  --deadline-ms 2000 >"$WORK/cont.json" 2>"$WORK/cont.log" &
CONT_PID=$!
PIDS+=("$CONT_PID")
for _ in $(seq 1 100); do grep -q "serving on" "$WORK/cont.log" && break; sleep 0.05; done
head -c $((120 * 1048576)) /dev/urandom >"$src/big/blob2.bin"
inA "$AGENT" backup --state "$WORK/agent" "$src" --json >"$WORK/b4.json"
snap4=$(json "$WORK/b4.json" snapshot)
sleep 1.5
ip netns exec $BR ip link set "b1-$tag" down  # the primary's cable
echo "link to the primary cut for 5 s (the replicator's deadline is 2 s)"
sleep 5
ip netns exec $BR ip link set "b1-$tag" up
echo "link restored"
replicated() { grep -q "\"$1\"" "$WORK/cont.json"; }
for _ in $(seq 1 600); do replicated "$snap4" && break; sleep 0.1; done
check "after the cut the continuous replicator resumes and commits $snap4" replicated "$snap4"
check "the cut failed a pass, which was retried" grep -q "replication pass failed" "$WORK/cont.log"
check "and the failure names the source it lost" \
  grep -q "replication pass failed.*lost the connection to the source vault at" "$WORK/cont.log"

# Lag from a backup's commit to the DR commit, continuous mode.
printf 'one more' >"$src/sub/f1"
inA "$AGENT" backup --state "$WORK/agent" "$src" --json >"$WORK/b5.json"
snap5=$(json "$WORK/b5.json" snapshot)
for _ in $(seq 1 300); do replicated "$snap5" && break; sleep 0.1; done
lag=$(python3 -c "
import json,sys
for l in open('$WORK/cont.json'):
    r = json.loads(l)
    if '$snap5' in r.get('committed', []): print(r['last_lag_seconds'])" | tail -1)
echo "lag of $snap5: ${lag:-none} s"
check "continuous mode replicates a new snapshot within 10 s (lag ${lag:-none} s)" \
  python3 -c "import sys; sys.exit(0 if '$lag' and float('$lag') < 10 else 1)"

# --- refusals -------------------------------------------------------------
# An agent certificate asking to replicate.
mkdir -p "$WORK/fake/replicator"
cp "$WORK/agent/"{agent.toml,cert.pem,key.pem,ca.pem} "$WORK/fake/replicator/"
: >"$WORK/fake/replicator/department.keys"
"$VAULT" init --data "$WORK/fake-dr" --site dr2 >/dev/null
cp -r "$WORK/fake/replicator" "$WORK/fake-dr/"
set +e
inD "$REPL" run --data "$WORK/fake-dr" --once >"$WORK/fake.txt" 2>&1
rc=$?
set -e
check "an agent certificate is refused as a replicator" test "$rc" -ne 0
check "with the reason" grep -q "not allowed for a certificate of role agent" "$WORK/fake.txt"
# A replicator certificate asking to back up.
mkdir -p "$WORK/fake-agent"
cp "$WORK/dr/replicator/"{cert.pem,key.pem,ca.pem} "$WORK/fake-agent/"
cp "$WORK/agent/"{agent.toml,department.keys} "$WORK/fake-agent/"
set +e
inA "$AGENT" backup --state "$WORK/fake-agent" "$src/sub" >"$WORK/fake2.txt" 2>&1
rc=$?
set -e
check "a replicator certificate is refused as an agent" test "$rc" -ne 0
check "with the reason" grep -q "not allowed for a certificate of role replicator" "$WORK/fake2.txt"

# --- the primary is lost --------------------------------------------------
kill -KILL "$PRIMARY_PID"
wait "$PRIMARY_PID" 2>/dev/null || true
echo "primary killed (SIGKILL)"
check "the agent now knows the DR address" grep -q "$DRADDR" "$WORK/agent/agent.toml"
inA "$RESTORE" restore latest --state "$WORK/agent" --target "$WORK/from-dr" --json >"$WORK/rr.json"
check "a restore with the primary gone is served by the DR site" test "$(json "$WORK/rr.json" vault)" = "$DRADDR"
python3 "$TREECMP" "$src" "$WORK/from-dr$src" >"$WORK/cmp.txt" || true
tail -1 "$WORK/cmp.txt"
check "and is identical to the source" grep -q " 0 difference(s)" "$WORK/cmp.txt"

set +e
inA "$AGENT" backup --state "$WORK/agent" "$src/sub" >"$WORK/refused.txt" 2>&1
rc=$?
set -e
check "the DR vault refuses backups before promotion" test "$rc" -ne 0
check "and says how to promote" grep -q "cairn-vault promote" "$WORK/refused.txt"
"$VAULT" promote --data "$WORK/dr" --by "e2e test" --reason "primary lost" >/dev/null
check "the promotion is logged with who and when" grep -q "promoted by e2e test" "$WORK/dr/promotions.log"
inA "$AGENT" backup --state "$WORK/agent" "$src/sub" --json >"$WORK/b6.json"
check "after promotion the agent backs up to the DR site" test -n "$(json "$WORK/b6.json" snapshot)"

# --- failback: the primary returns and pulls back what the DR site took ---
snap6=$(json "$WORK/b6.json" snapshot)
rtoken=$("$VAULT" token create --replicator --data "$WORK/dr")
inP "$REPL" enroll --data "$WORK/primary" --source $DRADDR --token "$rtoken" >/dev/null
inP "$REPL" run --data "$WORK/primary" --source $DRADDR --once --json >"$WORK/back.json" 2>"$WORK/back.log" \
  || cat "$WORK/back.log"
check "failback replicates the DR-made snapshot $snap6 to the primary" \
  grep -q "\"$snap6\"" "$WORK/back.json"
back_bytes=$(json "$WORK/back.json" bytes)
check "fetching only its new chunks ($back_bytes bytes)" test "$back_bytes" -lt 1048576
start_primary
inA "$AGENT" backup --state "$WORK/agent" "$src/sub" --json >"$WORK/b7.json"
check "agents go back to the primary once it serves again" \
  grep -q "snapshot $(json "$WORK/b7.json" snapshot) committed" "$WORK/primary.log"
"$VAULT" demote --data "$WORK/dr" --by "e2e test" >/dev/null
check "the DR vault is demoted, and that is logged" grep -q "demoted by e2e test" "$WORK/dr/promotions.log"

# --- a flipped byte in a DR pack ----------------------------------------
pack=$(ls -S "$WORK"/dr/packs/*/*.pack | head -1)
python3 - "$pack" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(0, 2); size = f.tell(); f.seek(size // 2); b = f.read(1)
    f.seek(size // 2); f.write(bytes([b[0] ^ 0x10]))
EOF
set +e
inA "$RESTORE" restore "$snap5" --state "$WORK/agent" --vault $DRADDR --verify-only >"$WORK/verify.txt" 2>&1
rc=$?
set -e
check "verification at the DR site catches a flipped byte" test "$rc" -eq 1
check "and names what it damages" grep -q "DAMAGED" "$WORK/verify.txt"

finish
