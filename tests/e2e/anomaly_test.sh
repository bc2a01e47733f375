#!/usr/bin/env bash
# Early warning of abnormal change (doc/design.md section 20): a source
# backed up several times with ordinary edits, then once after a script
# encrypts its files (openssl enc over them, as ransomware would), raises
# the anomaly alert on that backup and on no earlier one; the last good
# snapshots before it are locked, so that nobody can forget them.
source "$(dirname "$0")/lib.sh"

vault_with_agent finance
# Text files that compress, as documents and databases' dumps do.
python3 - "$WORK/docs" <<'EOF'
import os, random, sys
root = sys.argv[1]
os.makedirs(root)
words = ("budget invoice payment account ledger audit city council parks water "
         "school permit tax report quarter total balance transfer vendor").split()
rng = random.Random(7)
for i in range(160):
    with open(os.path.join(root, f"doc{i:03}.txt"), "w") as f:
        f.write(" ".join(rng.choice(words) for _ in range(8000)))
EOF

backup() {  # backup N: one backup, its snapshot ID in $WORK/bN.json
  "$AGENT" backup --state "$WORK/agent" "$WORK/docs" --json >"$WORK/b$1.json"
}
anomalies() {
  "$VAULT" alert list --all --data "$WORK/vault" --json |
    python3 -c "import json,sys; print(sum(1 for a in json.load(sys.stdin)['alerts'] if a['rule']=='anomaly'))"
}
backup 1
for n in 2 3 4 5; do
  for f in 1 2 3; do echo "edit $n" >>"$WORK/docs/doc00$f.txt"; done
  backup $n
done
check "ordinary edits raise no anomaly" test "$(anomalies)" = 0

# The attack: every file encrypted in place.
for f in "$WORK"/docs/*.txt; do
  openssl enc -aes-256-cbc -pbkdf2 -pass pass:ransom -in "$f" -out "$f.enc" && mv "$f.enc" "$f"
done
backup 6
bad=$(json "$WORK/b6.json" snapshot)
check "the encrypted backup raises one anomaly" test "$(anomalies)" = 1
"$VAULT" alert list --data "$WORK/vault" --json >"$WORK/alerts.json"
check "the alert names the snapshot" grep -q "anomaly:$bad" "$WORK/alerts.json"
check "and says its new data no longer compresses" grep -q 'no longer compresses' "$WORK/alerts.json"
check "and the size of the change" grep -q 'new data .* usually' "$WORK/alerts.json"

"$VAULT" snapshot list --department finance --data "$WORK/vault" --json >"$WORK/snaps.json"
locked=$(python3 -c "import json,sys; print(sum(1 for s in json.load(open(sys.argv[1]))['snapshots'] if s['locked_until']))" "$WORK/snaps.json")
check "the last three good snapshots are locked" test "$locked" = 3
good=$(json "$WORK/b5.json" snapshot)
if "$VAULT" snapshot forget "$good" --department finance --data "$WORK/vault" >"$WORK/forget.out" 2>&1; then
  fail "the last good snapshot cannot be forgotten"
else
  check "the last good snapshot cannot be forgotten" grep -q 'locked until' "$WORK/forget.out"
fi
"$VAULT" audit list --data "$WORK/vault" --action snapshot.anomaly --json >"$WORK/audit.json"
check "the anomaly is in the audit trail with its figures" grep -q '"new_bytes"' "$WORK/audit.json"
finish
