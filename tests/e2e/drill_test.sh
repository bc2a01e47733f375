#!/usr/bin/env bash
# Restore drills by hand (doc/design.md section 23), real processes on
# 127.0.0.1: a drill restores into a sandbox, runs a check, times each step
# and gets a report the vault signs; the report verifies offline and a
# tampered one does not; a failing check, a hanging check, a missed RTO and
# a corrupted snapshot each fail the drill (exit 1) with the reason; the
# sandbox is removed, and a non-empty one refused.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore

vault_with_agent finance
V=(--data "$WORK/vault")
make_tree "$WORK/src" 4
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b1.json"
snap=$(json "$WORK/b1.json" snapshot)
D=(--state "$WORK/agent")
field() { python3 -c "import json,sys; v=json.load(open(sys.argv[1]))['report']
for k in sys.argv[2].split('.'): v=v[k]
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)" "$1" "$2"; }

# --- A drill that passes ---------------------------------------------------
"$RESTORE" drill "$snap" "${D[@]}" --sandbox "$WORK/sb" --rto 1h --report "$WORK/r1.json" \
  --check "test -s .$WORK/src/big.bin && cmp -s .$WORK/src/big.bin $WORK/src/big.bin" >"$WORK/d1.txt"
rc=$?
cat "$WORK/d1.txt"
check "a drill of a sound snapshot with a passing check passes (exit 0)" test "$rc" = 0
check "its report says ok" test "$(field "$WORK/r1.json" ok)" = true
check "it names the snapshot, its host and the drill host" \
  test "$(field "$WORK/r1.json" snapshot)" = "$snap" -a -n "$(field "$WORK/r1.json" drill_host)"
check "it times first byte, restored, verified and checked" python3 -c "
import json,sys; m=json.load(open(sys.argv[1]))['report']['millis']
sys.exit(0 if m['first_byte'] <= m['restored'] <= m['verified'] <= m['checked'] == m['total'] else 1)" "$WORK/r1.json"
check "against the RTO asked for (1 h: met)" \
  test "$(field "$WORK/r1.json" rto_seconds)" = 3600 -a "$(field "$WORK/r1.json" rto_met)" = true
check "the check's exit status is kept" test "$(field "$WORK/r1.json" check.exit)" = 0
check "the manifest's digest is in it" test "$(field "$WORK/r1.json" manifest_sha256 | wc -c)" = 65
check "the sandbox is gone afterwards" test ! -e "$WORK/sb"

"$VAULT" report verify "$WORK/r1.json" "${V[@]}" >"$WORK/v1.txt"
check "the signed report verifies offline" grep -q verified "$WORK/v1.txt"
"$VAULT" audit key "${V[@]}" >"$WORK/vault.pub"
check "also with the exported public key alone" \
  "$VAULT" report verify "$WORK/r1.json" --public-key "$WORK/vault.pub"
python3 - "$WORK/r1.json" "$WORK/tampered.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["report"]["millis"]["total"] = 1  # a faster drill than it was
json.dump(r, open(sys.argv[2], "w"), indent=2)
EOF
if "$VAULT" report verify "$WORK/tampered.json" "${V[@]}" >"$WORK/v2.txt" 2>&1; then
  fail "a tampered report fails verification"
else
  check "a tampered report fails verification, saying it was changed" grep -q 'changed' "$WORK/v2.txt"
fi
python3 -c "import json; r=json.load(open('$WORK/r1.json')); json.dump(r, open('$WORK/pretty.json','w'), indent=4)"
check "a re-indented report still verifies" "$VAULT" report verify "$WORK/pretty.json" "${V[@]}"

# --- Drills that fail --------------------------------------------------------
drill_fails() {  # drill_fails NAME ARGS...: runs a drill that must exit 1
  local name=$1; shift
  local rc=0
  "$RESTORE" drill "$snap" "${D[@]}" --sandbox "$WORK/sb-$name" --report "$WORK/$name.json" "$@" \
    >"$WORK/$name.txt" 2>&1 || rc=$?
  [[ $rc == 1 ]]
}
check "a failing check fails the drill" drill_fails badcheck --check 'echo broken; exit 3'
check "with the check's exit status and output" \
  bash -c "test '$(field "$WORK/badcheck.json" check.exit)' = 3 && grep -q broken '$WORK/badcheck.json'"
start=$(date +%s)
check "a hanging check fails the drill" drill_fails hang --check 'sleep 60' --check-timeout 2
check "within its timeout" test $(($(date +%s) - start)) -lt 30
check "reported as timed out" test "$(field "$WORK/hang.json" check.timed_out)" = true
check "a missed RTO fails the drill" drill_fails slow --rto 0
check "saying so" grep -q 'RTO was missed' "$WORK/slow.json"
mkdir -p "$WORK/full" && echo x >"$WORK/full/x"
if "$RESTORE" drill "$snap" "${D[@]}" --sandbox "$WORK/full" >"$WORK/full.txt" 2>&1; then
  fail "a non-empty sandbox is refused"
else
  check "a non-empty sandbox is refused, and left alone" \
    bash -c "grep -q 'not empty' '$WORK/full.txt' && test -f '$WORK/full/x'"
fi

# --- Compliance: the policy's RTO and drill frequency against the drills ---
host=$(python3 -c "import tomllib,sys; print(tomllib.load(open(sys.argv[1],'rb'))['host'])" "$WORK/agent/agent.toml")
"$VAULT" policy create docs --schedule daily --rpo 26h --rto 1h --drill-every 7d "${V[@]}" >/dev/null
"$VAULT" source add --department finance --agent "$host" --policy docs --path "$WORK/src" "${V[@]}" >/dev/null
"$RESTORE" drill "$snap" "${D[@]}" --sandbox "$WORK/sb-pol" --report "$WORK/pol.json" >/dev/null 2>&1
check "a drill takes the RTO from the snapshot's policy" \
  test "$(field "$WORK/pol.json" rto_source)" = "policy docs" -a "$(field "$WORK/pol.json" rto_seconds)" = 3600
"$VAULT" report compliance "${V[@]}" --json >"$WORK/comp1.json"
comp() { python3 -c "import json,sys; s=[x for x in json.load(open(sys.argv[1]))['sources'] if x['policy']=='docs'][0]
v=s
for k in sys.argv[2].split('.'): v=v[k]
print(json.dumps(v))" "$1" "$2"; }
check "compliance: RPO met by the newest good snapshot" test "$(comp "$WORK/comp1.json" rpo_state)" = '"met"'
check "compliance: RTO met by the last drill, which is fresh" \
  test "$(comp "$WORK/comp1.json" last_drill.rto_met)" = true -a "$(comp "$WORK/comp1.json" drill_fresh)" = true
check "compliance: the source is compliant" test "$(comp "$WORK/comp1.json" compliant)" = true
"$VAULT" policy edit docs --rto 1s "${V[@]}" >/dev/null
drill_fails slowpol --check 'sleep 2'
"$VAULT" report compliance "${V[@]}" --json >"$WORK/comp2.json"
check "a slow drill misses the policy's RTO, and the source is not compliant" \
  test "$(comp "$WORK/comp2.json" last_drill.rto_met)" = false -a "$(comp "$WORK/comp2.json" compliant)" = false
"$VAULT" report compliance "${V[@]}" --csv >"$WORK/comp.csv"
check "compliance as CSV, a row per source" test "$(grep -c docs "$WORK/comp.csv")" = 1

# A corrupted snapshot: one byte flipped inside the big file's first chunk.
vault_stop
python3 - "$WORK/vault/packs" <<'EOF'
import os, sys
root = sys.argv[1]
packs = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
p = max(packs, key=os.path.getsize)
with open(p, "r+b") as f:
    f.seek(4096)
    b = f.read(1)
    f.seek(4096)
    f.write(bytes([b[0] ^ 0x10]))
EOF
vault_start "$WORK/vault" "$port"
check "a drill of a corrupted snapshot fails" drill_fails corrupt
check "and names the damaged file" grep -q 'big' "$WORK/corrupt.json"

# --- An ext4 image: fsck, a read-only loop mount, a listing, the check in it --
PATH=$PATH:/usr/sbin:/sbin
if command -v mkfs.ext4 >/dev/null && [[ $(id -u) -eq 0 ]] && losetup -f >/dev/null 2>&1; then
  mkdir -p "$WORK/fsdata/etc"
  for i in $(seq 1 40); do head -c 5000 /dev/urandom >"$WORK/fsdata/f$i"; done
  echo "db01" >"$WORK/fsdata/etc/hostname"
  mkfs.ext4 -q -F -d "$WORK/fsdata" "$WORK/disk.img" 32M
  "$AGENT" backup --state "$WORK/agent" --image "$WORK/disk.img" --json >"$WORK/img.json"
  isnap=$(json "$WORK/img.json" snapshot)
  "$RESTORE" drill "$isnap" "${D[@]}" --sandbox "$WORK/sb-img" --report "$WORK/img-drill.json" \
    --check 'test "$(cat etc/hostname)" = db01' >"$WORK/img-drill.txt" 2>&1
  rc=$?
  cat "$WORK/img-drill.txt"
  check "a drill of an ext4 image passes" test "$rc" = 0
  check "after e2fsck found it clean" test "$(field "$WORK/img-drill.json" filesystem.fsck.exit)" = 0
  check "and a read-only loop mount listed its files" \
    test "$(field "$WORK/img-drill.json" filesystem.files)" -ge 41 -a "$(field "$WORK/img-drill.json" filesystem.type)" = ext4
  check "the check ran inside the mounted file system" test "$(field "$WORK/img-drill.json" check.exit)" = 0
  check "nothing stays mounted" bash -c "! grep -q '$WORK/sb-img' /proc/mounts"
  # A file system damaged before the backup: the drill's fsck finds it.
  cp "$WORK/disk.img" "$WORK/bad.img"
  dd if=/dev/zero of="$WORK/bad.img" bs=4096 seek=1 count=1 conv=notrunc status=none
  "$AGENT" backup --state "$WORK/agent" --image "$WORK/bad.img" --json >"$WORK/bad.json"
  bsnap=$(json "$WORK/bad.json" snapshot)
  rc=0
  "$RESTORE" drill "$bsnap" "${D[@]}" --sandbox "$WORK/sb-bad" --report "$WORK/bad-drill.json" \
    >"$WORK/bad-drill.txt" 2>&1 || rc=$?
  check "a drill of an image whose file system is damaged fails" test "$rc" = 1
  check "saying the file system check found errors" grep -q 'check found errors' "$WORK/bad-drill.json"
else
  echo "SKIP (part): the ext4 image drill needs root, mkfs.ext4 and a loop device"
fi

"$VAULT" report drills "${V[@]}" >"$WORK/drills.txt"
check "the vault keeps every report" test "$(wc -l <"$WORK/drills.txt")" -ge 5
"$VAULT" audit list "${V[@]}" --action drill.report --json >"$WORK/audit.json"
check "each drill is in the audit trail" \
  test "$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['entries']))" "$WORK/audit.json")" -ge 5
finish
