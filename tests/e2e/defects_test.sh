#!/usr/bin/env bash
# The defects found when Cairn was tried as a new user would (issue 17), one
# check (or a few) each. Every one of these failed before its fix.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore
REPLICATOR=$BIN/replicator/cairn-replicator

# --- 2. A quote in --site: refused, nothing stored ------------------------
rc=$(rc_of "$VAULT" init --data "$WORK/quote" --site 'dr "west"')
check "init refuses a site name with a quote (exit 2)" test "$rc" -eq 2
check "and says which characters a name may use" grep -q "a-z 0-9" "$WORK/out.txt"
check "and stores nothing" test ! -e "$WORK/quote/vault.toml"
rc=$(rc_of "$VAULT" department create 'fin"ance' --data "$WORK/quote")
check "department create refuses it too" test "$rc" -ne 0

vault_with_agent finance
me=$(python3 -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['host'])" "$WORK/agent/agent.toml")

# --- 10. Host names that would forge log lines or drive a terminal ---------
token=$("$VAULT" token create --department finance --data "$WORK/vault")
rc=$(rc_of "$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/forged" \
  --host $'x\n2026-01-01T00:00:00.000 warning cairn-vault[1]: FORGED')
check "a host name with a newline is refused at enrolment (exit 2)" test "$rc" -eq 2
rc=$(rc_of "$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/forged" \
  --host $'\e[2J')
check "a host name with an escape is refused" test "$rc" -eq 2
check "no forged line reached the vault's log" bash -c "! grep -q '^2026-01-01T00:00:00.000 warning' '$WORK/vault.log'"
check "no escape character reached the vault's log" bash -c "! grep -qP '\\x1b' '$WORK/vault.log'"
# The token was not spent by the refusals.
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/beta" --host beta >/dev/null
check "the token still enrols a proper name afterwards" test -f "$WORK/beta/agent.toml"

# --- 1. latest is this host's own series -----------------------------------
mkdir -p "$WORK/alpha-src" "$WORK/beta-src"
echo "alpha data" >"$WORK/alpha-src/a.txt"
echo "beta data" >"$WORK/beta-src/b.txt"
"$AGENT" backup --state "$WORK/agent" "$WORK/alpha-src" --json >"$WORK/ba.json"
sleep 0.01
"$AGENT" backup --state "$WORK/beta" "$WORK/beta-src" --json >"$WORK/bb.json"
snap_a=$(json "$WORK/ba.json" snapshot)
snap_b=$(json "$WORK/bb.json" snapshot)
"$RESTORE" restore latest --state "$WORK/agent" --target "$WORK/ra" --json >"$WORK/ra.json"
check "restore latest takes this host's snapshot, not the newer one of host beta" \
  test "$(json "$WORK/ra.json" snapshot)" = "$snap_a"
check "and restores this host's data" test -f "$WORK/ra$WORK/alpha-src/a.txt"
"$RESTORE" ls latest --state "$WORK/agent" --json >"$WORK/ls.json"
check "ls latest is this host's too" test "$(json "$WORK/ls.json" snapshot)" = "$snap_a"
"$RESTORE" snapshots --state "$WORK/agent" --json >"$WORK/snaps.json"
check "snapshots lists both hosts" test "$(json "$WORK/snaps.json" snapshots)" -eq 2
"$RESTORE" restore latest --host beta --state "$WORK/agent" --target "$WORK/rb" --json >"$WORK/rb.json"
check "--host beta selects the other series explicitly" test "$(json "$WORK/rb.json" snapshot)" = "$snap_b"
"$RESTORE" restore latest --path "$WORK/beta-src" --host '*' --state "$WORK/agent" --target "$WORK/rp" --json >"$WORK/rp.json"
check "--path selects a series by its paths" test "$(json "$WORK/rp.json" snapshot)" = "$snap_b"
rc=$(rc_of "$RESTORE" restore "$snap_b" --state "$WORK/agent" --target "$WORK/ra" --in-place)
check "an in-place restore of another host's snapshot is refused (exit 2)" test "$rc" -eq 2
check "and says why" grep -q "another host" "$WORK/out.txt"
rc=$(rc_of "$RESTORE" restore "$snap_b" --state "$WORK/agent" --target "$WORK/ra" --in-place --force)
check "--force allows it" test "$rc" -eq 0

# --- 12. A --target that is a symbolic link --------------------------------
mkdir -p "$WORK/real"
ln -s "$WORK/real" "$WORK/link"
rc=$(rc_of "$RESTORE" restore latest --state "$WORK/agent" --target "$WORK/link")
check "a symlink target is refused (exit 2)" test "$rc" -eq 2
check "nothing was written through it" test -z "$(ls -A "$WORK/real")"
rc=$(rc_of "$RESTORE" restore latest --state "$WORK/agent" --target "$WORK/link" --follow-symlink)
check "--follow-symlink restores where it points" test -f "$WORK/real$WORK/alpha-src/a.txt"

# --- 13. --zstd-level out of range ------------------------------------------
rc=$(rc_of "$AGENT" backup --state "$WORK/agent" --zstd-level -7 "$WORK/alpha-src")
check "--zstd-level -7 is a usage error (exit 2)" test "$rc" -eq 2

# --- 8. --image is a flag; flags in any order --------------------------------
head -c 8388608 /dev/urandom >"$WORK/disk.img"
"$AGENT" backup --state "$WORK/agent" --image --json "$WORK/disk.img" >"$WORK/img.json"
check "backup --state S --image --json IMG backs up IMG" test -n "$(json "$WORK/img.json" snapshot)"
rc=$(rc_of "$AGENT" backup --state "$WORK/agent" --image "$WORK/disk.img" "$WORK/alpha-src")
check "--image IMG DIR refuses DIR as an image (exit 2)" test "$rc" -eq 2
"$AGENT" backup --json "$WORK/alpha-src" --state "$WORK/agent" >"$WORK/order.json"
check "--json before --state works" test -n "$(json "$WORK/order.json" snapshot)"

# --- 5. Two agents on one state directory -----------------------------------
"$AGENT" run --state "$WORK/agent" >"$WORK/run1.log" 2>&1 &
run1=$!
PIDS+=("$run1")
for _ in $(seq 1 100); do grep -q "connected to vault" "$WORK/run1.log" && break; sleep 0.05; done
rc=$(rc_of "$AGENT" run --state "$WORK/agent")
check "a second cairn-agent run on the same state is refused" test "$rc" -eq 2
check "and names the one running" grep -q "pid $run1" "$WORK/out.txt"
rc=$(rc_of "$AGENT" backup --state "$WORK/agent" "$WORK/alpha-src")
check "a backup beside it is refused too" test "$rc" -eq 2
kill -TERM "$run1"; wait "$run1" || true

# --- 6. job start for a host that is also a DR site's replicator -------------
"$VAULT" init --data "$WORK/dr" --site dr >/dev/null
rtoken=$("$VAULT" token create --replicator --data "$WORK/vault")
"$REPLICATOR" enroll --data "$WORK/dr" --source "127.0.0.1:$port" --token "$rtoken" --host "$me" >/dev/null
rc=$(rc_of "$VAULT" job start --agent "$me" --data "$WORK/vault")
check "job start finds the agent of a host that also has a replicator certificate" test "$rc" -eq 0

# --- 7. Valid JSON whatever the file names -----------------------------------
bad=$(printf '%s/caf\xe9-\x80' "$WORK/alpha-src")
echo "latin-1" >"$bad"
"$AGENT" backup --state "$WORK/agent" "$WORK/alpha-src" --json >"$WORK/b7.json"
"$RESTORE" ls latest "${WORK#/}/alpha-src" --state "$WORK/agent" --json >"$WORK/ls7.json"
check "ls --json of a non-UTF-8 name is valid JSON whose name gives the bytes back" python3 -c "
import json,sys,os
d=json.load(open(sys.argv[1]))
names=[e['name'].encode('utf-8','surrogateescape') for e in d['entries']]
sys.exit(0 if os.path.basename(os.fsencode(sys.argv[2])) in names else 1)" "$WORK/ls7.json" "$bad"
"$RESTORE" snapshots --state "$WORK/agent" --json >"$WORK/s7.json"
check "snapshots --json is valid JSON with RFC 3339 times" python3 -c "
import json,sys,datetime
d=json.load(open(sys.argv[1]))
datetime.datetime.fromisoformat(d['snapshots'][0]['time'].replace('Z','+00:00'))" "$WORK/s7.json"
check "no number is printed with an exponent" python3 -c "
import json,sys
lits=[]
for f in sys.argv[1:]: json.load(open(f), parse_float=lambda t: lits.append(t))
sys.exit(1 if any('e' in t.lower() for t in lits) else 0)" "$WORK/b7.json" "$WORK/s7.json" "$WORK/ra.json"
timeout 3 "$AGENT" run --state "$WORK/agent" --json-log --paths "$bad" 2>"$WORK/jl.txt" || true
check "--json-log lines are valid JSON with a non-UTF-8 path in them" python3 -c "
import json,sys
lines=[l for l in open(sys.argv[1],'rb').read().split(b'\n') if l]
[json.loads(l.decode('utf-8')) for l in lines]
sys.exit(0 if lines else 1)" "$WORK/jl.txt"

# --- 3. A vault that accepts TCP and never speaks TLS -----------------------
silent=$(free_port)
python3 -c "
import socket,time,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1',int(sys.argv[1]))); s.listen(8)
conns=[]
while True: conns.append(s.accept())" "$silent" &
PIDS+=($!)
sleep 0.3
start=$(date +%s)
rc=$(rc_of "$RESTORE" snapshots --state "$WORK/agent" --vault "127.0.0.1:$silent")
took=$(( $(date +%s) - start ))
check "a silent vault is given up on in ${took} s (under 20)" test "$took" -lt 20
check "with exit 4 (no vault reachable)" test "$rc" -eq 4
check "and a message naming its address" grep -q "127.0.0.1:$silent" "$WORK/out.txt"

# --- 4. Ctrl-C during a restore leaves no temporary files --------------------
make_tree "$WORK/big" 96
"$AGENT" backup --state "$WORK/agent" "$WORK/big" >/dev/null
"$RESTORE" restore latest --state "$WORK/agent" --path "$WORK/big" --target "$WORK/int" --connections 1 >"$WORK/int.txt" 2>&1 &
rpid=$!
# In the directories it makes, a restore writes files under their own names.
for _ in $(seq 1 200); do
  [[ -n $(find "$WORK/int" -name 'big.bin' 2>/dev/null) ]] && break
  sleep 0.01
done
kill -INT "$rpid"
set +e; wait "$rpid"; rc=$?; set -e
check "an interrupted restore exits 130" test "$rc" -eq 130
check "and leaves no temporary file" test -z "$(find "$WORK/int" -name '.cairn-restore-*')"
half=$(find "$WORK/int" -name 'sub' -prune -o -name 'big.bin' -print)
check "nor a half-written file (big.bin is gone or whole)" \
  bash -c "[[ -z '$half' ]] || cmp -s '$half' '$WORK/big/big.bin'"
# What a SIGKILL would leave is swept by the next restore.
mkdir -p "$WORK/int/sub"
echo junk >"$WORK/int/sub/.cairn-restore-999999-7"
"$RESTORE" restore latest --state "$WORK/agent" --path "$WORK/big" --target "$WORK/int" --overwrite >/dev/null 2>&1
check "a later --overwrite removes a killed restore's leftovers" test -z "$(find "$WORK/int" -name '.cairn-restore-*')"

# --- 11. The vault's paths never reach a client ------------------------------
for p in "$WORK"/vault/packs/*/*.pack; do : >"$p"; done
rc=$(rc_of "$RESTORE" restore latest --state "$WORK/agent" --path "$WORK/alpha-src" --verify-only)
check "a restore over emptied packs reports damage (exit 1)" test "$rc" -eq 1
check "without naming the vault's files" bash -c "! grep -q '/packs/' '$WORK/out.txt'"
finish
