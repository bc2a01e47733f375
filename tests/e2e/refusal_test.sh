#!/usr/bin/env bash
# Wrong CA, revoked certificate, reused and unknown tokens: refused, with a
# message a person can act on, and a non-zero exit.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
vault_init "$WORK/vault"
vault_start "$WORK/vault" "$port"
"$VAULT" department create finance --data "$WORK/vault" >/dev/null
mkdir -p "$WORK/src" && echo hello >"$WORK/src/a"

# A token works once.
token=$("$VAULT" token create --department finance --data "$WORK/vault")
check "enrolment with a fresh token works" "$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/a1"
if "$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/a2" 2>"$WORK/reuse.err"; then
  fail "a reused token was accepted"
else
  check "a reused token is refused with a reason" grep -q "already used" "$WORK/reuse.err"
fi
bogus="${token%.*}.00000000000000000000000000000000"
if "$AGENT" enroll --vault "127.0.0.1:$port" --token "$bogus" --state "$WORK/a3" 2>"$WORK/bogus.err"; then
  fail "a forged token was accepted"
else
  check "a forged token is refused" grep -qi "token" "$WORK/bogus.err"
fi

# An agent of another vault (another CA) cannot talk to this one.
port2=$(free_port)
vault_init "$WORK/other"
"$VAULT" serve --data "$WORK/other" --listen "127.0.0.1:$port2" >>"$WORK/other.log" 2>&1 &
PIDS+=($!)
sleep 0.5
"$VAULT" department create finance --data "$WORK/other" >/dev/null
enroll "$WORK/other" "$port2" finance "$WORK/foreign"
sed -i "s/127.0.0.1:$port2/127.0.0.1:$port/g" "$WORK/foreign/agent.toml"
if "$AGENT" backup --state "$WORK/foreign" "$WORK/src" 2>"$WORK/foreign.err"; then
  fail "an agent with another CA's certificate was served"
else
  ok "an agent with another CA's certificate is refused"
fi
check "and the error names the ca.pem the vault's certificate does not verify against" \
  grep -q "does not verify against $WORK/foreign/ca.pem: this identity was enrolled with another vault" \
  "$WORK/foreign.err"

# A damaged certificate file: exit 2, naming the files and what to do.
cp -r "$WORK/a1" "$WORK/damaged"
head -c 200 "$WORK/a1/cert.pem" >"$WORK/damaged/cert.pem"
rc=$(rc_of "$AGENT" backup --state "$WORK/damaged" "$WORK/src")
check "an agent whose cert.pem is damaged exits 2 (exit $rc)" test "$rc" -eq 2
check "and says which files and what to do" \
  grep -q "the identity in $WORK/damaged ($WORK/damaged/cert.pem.*enrol again" "$WORK/out.txt"

# Revocation cuts an agent off.
check "the enrolled agent can back up" "$AGENT" backup --state "$WORK/a1" "$WORK/src"
serial=$("$VAULT" agent list --data "$WORK/vault" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["agents"][0]["serial"])')
"$VAULT" agent revoke "$serial" --data "$WORK/vault" >/dev/null
if "$AGENT" backup --state "$WORK/a1" "$WORK/src" 2>"$WORK/revoked.err"; then
  fail "a revoked agent could still back up"
else
  ok "a revoked agent is refused"
fi
grep -q "revoked" "$WORK/vault.log" && ok "the vault logs the revoked certificate" || fail "no revocation in the vault log"
finish
