#!/usr/bin/env bash
# Scrub and repair from the DR copy (doc/design.md 22.4), real processes on
# 127.0.0.1: a primary with an agent's backups in 1 MiB packs, a DR vault
# that replicated them. Random bytes are flipped across the primary's packs
# (records, headers, footers); scrub must find every flip, name the
# snapshots that need a damaged record (exactly those that no longer verify),
# mark them damaged so that status and the snapshot list say so, and then,
# with the DR copy, repair all of it: every snapshot verifies again and a
# second scrub is clean. The DR site repairs itself from the primary the
# same way.
#
# 200 flips in the suite; CAIRN_LONG=1 (scripts/test --long) makes it 1000.
source "$(dirname "$0")/lib.sh"
RESTORE=$BIN/restore/cairn-restore
REPL=$BIN/replicator/cairn-replicator
FLIPS=200
[[ ${CAIRN_LONG:-0} == 1 ]] && FLIPS=1000

storage_vault '[alerts]\ninterval_seconds = 1\n'
enroll "$WORK/vault" "$port" finance "$WORK/agent"
make_tree "$WORK/src" 8
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b1.json"
head -c 2000000 /dev/urandom >"$WORK/src/more.bin"
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b2.json"
mkdir -p "$WORK/other"
head -c 1500000 /dev/urandom >"$WORK/other/o.bin"
"$AGENT" backup --state "$WORK/agent" "$WORK/other" --json >"$WORK/b3.json"
for d in x y; do
  mkdir -p "$WORK/$d"
  head -c 1500000 /dev/urandom >"$WORK/$d/$d.bin"
  "$AGENT" backup --state "$WORK/agent" "$WORK/$d" >/dev/null
done

# The DR site replicates everything, then serves (for repairs both ways).
vault_init "$WORK/dr"
token=$("$VAULT" token create --replicator "${V[@]}")
"$REPL" enroll --data "$WORK/dr" --source "127.0.0.1:$port" --token "$token" >/dev/null
drport=$(free_port)
"$REPL" run --data "$WORK/dr" --advertise "127.0.0.1:$drport" --once --json >"$WORK/r1.json" 2>"$WORK/r1.log"
"$REPL" run --data "$WORK/dr" --listen "127.0.0.1:$drport" --poll-ms 500 >>"$WORK/dr.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "serving" "$WORK/dr.log" 2>/dev/null && break; sleep 0.1; done
check "the DR copy holds the five snapshots" \
  test "$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['committed']))" "$WORK/r1.json")" = 5

verify_all() {  # verify_all STATE VAULT_FLAGS...: prints "id ok|bad" per snapshot
  local st=$1; shift
  "$VAULT" snapshot list --department finance "$@" --json | python3 -c '
import json,sys
for s in json.load(sys.stdin)["snapshots"]: print(s["id"])' | while read -r id; do
    if "$RESTORE" restore "$id" --state "$st" --verify-only >/dev/null 2>&1; then echo "$id ok"; else echo "$id bad"; fi
  done
}

# flip DIR N SEED: flips N random bytes across the packs of vault DIR, recording what each
# lands in (a record's chunk ID, or a pack's header or footer).
flip() {
  local dir
  dir=$(packs_dir "$1")
  python3 - "$dir" "$2" "$3" "$WORK/flips-$(basename "$1").json" <<'EOF'
import json, os, random, struct, sys
root, n, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
packs = []
for d in sorted(os.listdir(root)):
    for f in sorted(os.listdir(os.path.join(root, d))):
        p = os.path.join(root, d, f)
        data = open(p, "rb").read()
        count, index_offset = struct.unpack_from("<IQ", data, len(data) - 48 + 12)
        entries = []
        for i in range(count):
            e = index_offset + 48 * i
            entries.append((data[e:e + 32].hex(), *struct.unpack_from("<QI", data, e + 32)))
        packs.append((p, len(data), index_offset, entries))
hits = {"records": [], "packs": []}
changed = set()
for k in range(n):
    p, size, index_offset, entries = rng.choice(packs)
    changed.add(p)
    off = rng.randrange(size)
    if k == 0: off = size - 1 - rng.randrange(48)  # a trailer
    if k == 1: off = rng.randrange(32)             # a header
    with open(p, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
    if off < 32 or off >= index_offset:
        hits["packs"].append(os.path.relpath(p, root))  # DEPARTMENT/ID.pack, in any store's name
    else:
        for cid, start, length in entries:
            if start <= off < start + length:
                hits["records"].append(cid)
                break
hits["records"] = sorted(set(hits["records"]))
hits["packs"] = sorted(set(hits["packs"]))
json.dump(hits, open(out, "w"))
print(f"{n} flips: {len(hits['records'])} records, {len(hits['packs'])} headers or footers")
with open(out + ".changed", "w") as f:
    f.write("\n".join(sorted(changed)))
EOF
  # shellcheck disable=SC2046
  packs_put "$1" $(cat "$WORK/flips-$(basename "$1").json.changed")
}
# detected FLIPS SCRUB_JSON: every flipped record reported damaged, every
# flipped header or footer reported as a pack problem.
detected() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
hits, rep = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
damaged = {d["chunk"] for d in rep["damaged"]}
problems = " ".join(rep["pack_problems"])
missed = [r for r in hits["records"] if r not in damaged]
missed += [p for p in hits["packs"] if p not in problems]
print(f"flipped: {len(hits['records'])} records, {len(hits['packs'])} packs' headers or footers; "
      f"scrub reported {len(damaged)} damaged records, {len(rep['pack_problems'])} pack problems; "
      f"missed {len(missed)}")
sys.exit(0 if not missed else 1)
EOF
}

# --- A few flips: scrub names exactly the snapshots that need them. ----
vault_stop
flip "$WORK/vault" 3 7
vault_start "$WORK/vault" "$port"
"$VAULT" scrub "${V[@]}" --no-repair --json >"$WORK/s1.json" || true
check "scrub detects the three flips" detected "$WORK/flips-vault.json" "$WORK/s1.json"
verify_all "$WORK/agent" "${V[@]}" >"$WORK/verify1.txt"
named_ok() {
  python3 - "$WORK/s1.json" "$WORK/verify1.txt" <<'EOF'
import json, sys
named = {s["snapshot"] for s in json.load(open(sys.argv[1]))["damaged_snapshots"]}
lines = [l.split() for l in open(sys.argv[2])]
bad = {i for i, v in lines if v == "bad"}
print(f"named damaged: {sorted(named)}; failing verification: {sorted(bad)} of {len(lines)}")
sys.exit(0 if named == bad and bad and len(bad) < len(lines) else 1)
EOF
}
check "it names exactly the snapshots that no longer verify, and no other" named_ok
"$VAULT" snapshot list --department finance "${V[@]}" --json >"$WORK/list1.json"
"$VAULT" snapshot list --department finance "${V[@]}" >"$WORK/list1.txt"
check "the snapshot list marks them damaged" grep -q 'DAMAGED' "$WORK/list1.txt"
"$VAULT" alert list "${V[@]}" >"$WORK/alerts.txt"
for _ in $(seq 1 40); do grep -q "damaged chunks" "$WORK/alerts.txt" && break; sleep 0.5; "$VAULT" alert list "${V[@]}" >"$WORK/alerts.txt"; done
check "the storage_damaged alert fires" grep -q "damaged chunks" "$WORK/alerts.txt"

# Repair from the DR copy: the primary enrols as a replicator at the DR site.
rtoken=$("$VAULT" token create --replicator --data "$WORK/dr")
"$REPL" enroll --data "$WORK/vault" --source "127.0.0.1:$drport" --token "$rtoken" >/dev/null
"$VAULT" scrub "${V[@]}" --json >"$WORK/s2.json" || true
check "scrub repairs them from the DR copy" \
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['repaired']==len(r['damaged'])>0 and not r['unrepaired'] else 1)" "$WORK/s2.json"
verify_all "$WORK/agent" "${V[@]}" >"$WORK/verify2.txt"
check "every snapshot verifies again" test "$(grep -c ' bad' "$WORK/verify2.txt" || true)" = 0
"$VAULT" snapshot list --department finance "${V[@]}" --json >"$WORK/list2.json"
check "and none is marked damaged any more" \
  python3 -c "import json,sys; sys.exit(0 if not any(s.get('damaged') for s in json.load(open(sys.argv[1]))['snapshots']) else 1)" "$WORK/list2.json"
"$VAULT" audit list "${V[@]}" --action snapshot --json >"$WORK/audit.json"
check "damage and repair are in the audit trail" \
  bash -c "grep -q snapshot.damaged '$WORK/audit.json' && grep -q snapshot.repaired '$WORK/audit.json'"

# --- Many flips: detected 100%, repaired 100%. ----------------------------
vault_stop
flip "$WORK/vault" "$FLIPS" 1
vault_start "$WORK/vault" "$port"
"$VAULT" scrub "${V[@]}" --no-repair --json >"$WORK/s3.json" || true
check "scrub without repair detects 100% of $FLIPS flips" detected "$WORK/flips-vault.json" "$WORK/s3.json"
"$VAULT" scrub "${V[@]}" --json >"$WORK/s4.json" || true
"$VAULT" scrub "${V[@]}" >"$WORK/s5.txt" || true
python3 -c "
import json,sys
r = json.load(open(sys.argv[1]))
print(f\"repaired {r['repaired']} of {len(r['damaged'])} damaged records, {r['packs_rebuilt']} packs rebuilt, unrepaired {len(r['unrepaired'])}, {r['rate_bytes_per_second']/1e6:.0f} MB/s\")" "$WORK/s4.json"
check "scrub repairs 100% from the DR copy" \
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['repaired']==len(r['damaged'])>0 and not r['unrepaired'] else 1)" "$WORK/s4.json"
check "a second scrub is clean" grep -q 'every record read back whole' "$WORK/s5.txt"
verify_all "$WORK/agent" "${V[@]}" >"$WORK/verify3.txt"
check "every snapshot verifies" test "$(grep -c ' bad' "$WORK/verify3.txt" || true)" = 0

# The DR site repairs itself from the primary.
flip "$WORK/dr" 30 2
"$VAULT" scrub --data "$WORK/dr" --json >"$WORK/s3.json" || true
check "the DR site detects damage in its own packs" detected "$WORK/flips-dr.json" "$WORK/s3.json"
check "and repairs it from the primary" \
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r['repaired']==len(r['damaged']) and not r['unrepaired'] else 1)" "$WORK/s3.json"
"$VAULT" scrub --data "$WORK/dr" >"$WORK/s4.txt" || true
check "after which the DR copy scrubs clean" grep -q 'every record read back whole' "$WORK/s4.txt"
finish
