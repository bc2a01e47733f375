#!/usr/bin/env bash
# Backup, then an unchanged re-backup that stores about nothing, then a small
# change that stores about that much.
source "$(dirname "$0")/lib.sh"

vault_with_agent finance
make_tree "$WORK/src" 24

"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b1.json"
check "first backup reports a snapshot" test -n "$(json "$WORK/b1.json" snapshot)"
check "first backup read every file" test "$(json "$WORK/b1.json" files)" -ge 252
check "first backup stored the data" test "$(json "$WORK/b1.json" new_bytes)" -gt $((20 * 1048576))

"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b2.json"
new2=$(json "$WORK/b2.json" new_bytes)
check "unchanged re-backup stores ~0 bytes (got $new2)" test "$new2" -lt 65536
check "re-backup is a new snapshot" test "$(json "$WORK/b2.json" snapshot)" != "$(json "$WORK/b1.json" snapshot)"

echo "changed" >>"$WORK/src/sub/f7"
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b3.json"
new3=$(json "$WORK/b3.json" new_bytes)
check "one changed small file stores little (got $new3)" test "$new3" -lt 262144

"$VAULT" snapshot list --department finance --data "$WORK/vault" --json >"$WORK/list.json"
check "the vault lists three snapshots" test "$(json "$WORK/list.json" snapshots)" -eq 3
finish
