#!/usr/bin/env bash
# The audit trail catches every kind of tampering: on copies of a real
# vault's data directory, an entry is edited (with and without a fixed-up
# hash), deleted, inserted, reordered, the whole tail rewritten, or the log
# truncated after a checkpoint; `cairn-vault audit verify` exits 1 and names
# the first broken entry each time, and the untouched copy verifies.
source "$(dirname "$0")/lib.sh"

vault_with_agent finance
for i in $(seq 1 70); do "$VAULT" department create "d$i" --data "$WORK/vault" >/dev/null; done
mkdir -p "$WORK/src" && echo data >"$WORK/src/f"
"$AGENT" backup --state "$WORK/agent" "$WORK/src" >/dev/null
# A restore and a browse: who, what and where go on the trail.
RESTORE=$BIN/restore/cairn-restore
"$RESTORE" restore latest --target "$WORK/restored" --state "$WORK/agent" >/dev/null
"$RESTORE" ls latest --state "$WORK/agent" >/dev/null
"$VAULT" audit key --data "$WORK/vault" >"$WORK/audit.pub"
vault_stop

"$VAULT" audit verify --data "$WORK/vault" --json >"$WORK/clean.json"
check "the untouched trail verifies" python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['ok'] else 1)" "$WORK/clean.json"
entries=$(json "$WORK/clean.json" entries)
check "it holds every action ($entries entries, checkpoints $(json "$WORK/clean.json" checkpoints))" test "$entries" -ge 75
check "the restore is recorded with its target" grep -q "\"action\":\"restore.restore\".*\"target\":\"$WORK/restored\"" "$WORK/vault/audit/log"
for action in vault.init department.create token.create agent.enroll snapshot.commit restore.browse audit.checkpoint; do
  check "the trail records $action" grep -q "\"action\":\"$action\"" "$WORK/vault/audit/log"
done

# tamper KIND: a copy of the vault with its log changed one way.
tamper() {
  local kind=$1 dir=$WORK/t-$1
  rm -rf "$dir"; cp -a "$WORK/vault" "$dir"
  python3 - "$dir/audit/log" "$kind" <<'PY'
import hashlib, json, sys
path, kind = sys.argv[1], sys.argv[2]
lines = open(path).read().splitlines()
def rehash(line, prev=None):
    obj = json.loads(line)
    if prev is not None:
        line = line.replace('"prev":"%s"' % obj["prev"], '"prev":"%s"' % prev)
    body = line[:line.rindex(',"hash":"')]
    h = hashlib.sha256(body.encode()).hexdigest()
    return body + ',"hash":"%s"}' % h, h
if kind == "edit":          # a changed field, hash left alone
    lines[9] = lines[9].replace('"d', '"x', 1)
elif kind == "edit-rehash":  # a changed field and its own hash recomputed
    lines[9], _ = rehash(lines[9].replace('"object":"d', '"object":"x', 1))
elif kind == "rewrite-tail":  # an edit, and every later entry re-chained
    prev = None
    for i in range(9, len(lines)):
        line = lines[i].replace('"object":"d', '"object":"x', 1) if i == 9 else lines[i]
        lines[i], prev = rehash(line, prev)
elif kind == "delete":
    del lines[20]
elif kind == "insert":
    lines.insert(21, lines[20])
elif kind == "reorder":
    lines[30], lines[31] = lines[31], lines[30]
elif kind == "truncate":     # everything after the last checkpoint goes
    last = max(i for i, l in enumerate(lines) if '"audit.checkpoint"' in l)
    lines = lines[:last + 1]
open(path, "w").write("\n".join(lines) + "\n")
PY
  set +e
  "$VAULT" audit verify --data "$dir" --public-key "$WORK/audit.pub" --json >"$dir.json" 2>"$dir.err"
  echo $? >"$dir.rc"
  set -e
}
for kind in edit edit-rehash rewrite-tail delete insert reorder truncate; do
  tamper "$kind"
  rc=$(cat "$WORK/t-$kind.rc")
  first=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d.get('first_broken',{}).get('seq','-'))" "$WORK/t-$kind.json")
  echo "$kind: exit $rc, first broken entry $first: $(cat "$WORK/t-$kind.err")"
  check "$kind is caught (exit 1, names entry $first)" test "$rc" -eq 1 -a "$first" != "-"
done
check "an edit names the edited entry (10)" grep -q '"seq":10' "$WORK/t-edit.json"
check "a deletion names the entry after the gap" grep -q '"seq":21' "$WORK/t-delete.json"
# A key that is not the vault's does not verify the checkpoints.
"$VAULT" init --data "$WORK/other" >/dev/null
"$VAULT" audit key --data "$WORK/other" >"$WORK/other.pub"
set +e; "$VAULT" audit verify --data "$WORK/vault" --public-key "$WORK/other.pub" >/dev/null 2>&1; rc=$?; set -e
check "another vault's key does not verify this trail" test "$rc" -eq 1
finish
