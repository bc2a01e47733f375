#!/usr/bin/env bash
# Console logins with a person's client certificate, against a real
# `cairn-vault serve --http`:
#  - `cairn-vault user cert` issues one from the vault's CA: it logs its
#    account in, and the login is audited with its method;
#  - an agent's certificate from the same CA never logs anyone in, even when
#    its host name is an account's name (refused, audited);
#  - a city CA imported with `cairn-vault ca import` logs people in by CN
#    after a restart; a certificate from a CA nobody imported fails the TLS
#    handshake's verification and logs nobody in.
source "$(dirname "$0")/lib.sh"

port=$(free_port); http=$(free_port)
"$VAULT" init --data "$WORK/vault" --json >"$WORK/init.json"
"$VAULT" department create finance --data "$WORK/vault" >/dev/null
serve() {
  "$VAULT" serve --data "$WORK/vault" --listen "127.0.0.1:$port" --http "127.0.0.1:$http" \
    >>"$WORK/vault.log" 2>&1 &
  VAULT_PID=$!
  PIDS+=("$VAULT_PID")
  for _ in $(seq 1 100); do
    [[ $(grep -c "REST API" "$WORK/vault.log") -ge $1 ]] && return 0
    sleep 0.05
  done
  return 1
}
serve 1
mkuser() { echo "password-of-$1-long" | "$VAULT" user create "$1" --role "$2" --password-stdin --data "$WORK/vault" >/dev/null; }
mkuser li.wei auditor
mkuser fin-srv-07 admin   # an account named like the agent's host, on purpose

# login CERT KEY: prints "STATUS BODY" of POST /api/v1/login with the
# certificate, then GET /api/v1/me with the session it got.
login() {
  /usr/bin/python3 - "$WORK/vault/ca/ca.pem" "$http" "$1" "$2" <<'PY'
import http.client, json, ssl, sys
ca, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
try:
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("POST", "/api/v1/login")
    r = c.getresponse()
    body = r.read().decode()
    me = ""
    cookie = r.getheader("Set-Cookie")
    if r.status == 200 and cookie:
        c.request("GET", "/api/v1/me", headers={"Cookie": cookie.split(";")[0]})
        me = c.getresponse().read().decode()
    print(r.status, body, me)
except (ssl.SSLError, ConnectionError, OSError) as e:
    print("tls-refused", e)
PY
}

# 1. A person's certificate from the vault's CA.
openssl req -new -newkey ed25519 -nodes -keyout "$WORK/li.key" -subj "/CN=li.wei" \
  -out "$WORK/li.csr" 2>/dev/null
"$VAULT" user cert li.wei --csr "$WORK/li.csr" --days 30 --data "$WORK/vault" >"$WORK/li.pem"
openssl x509 -in "$WORK/li.pem" -noout -subject
out=$(login "$WORK/li.pem" "$WORK/li.key"); echo "person: $out"
check "a person's certificate logs its account in" grep -q '^200 .*"user":"li.wei".*"role":"auditor"' <<<"$out"
check "the login is audited with its method" \
  grep -q '"action":"user.login".*"object":"li.wei".*"method":"certificate"' "$WORK/vault/audit/log"
check "issuing it was audited" grep -q '"action":"user.certificate".*"object":"li.wei"' "$WORK/vault/audit/log"

# 2. An agent's certificate: same CA, a host named like an admin account.
t=$("$VAULT" token create --department finance --data "$WORK/vault")
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$t" --state "$WORK/agent" --host fin-srv-07 >/dev/null
out=$(login "$WORK/agent/cert.pem" "$WORK/agent/key.pem"); echo "agent: $out"
check "an agent's certificate logs nobody in (401)" grep -q '^401 .*not a person' <<<"$out"
check "the refusal is audited" \
  grep -q '"action":"user.login_failed".*"object":"fin-srv-07".*"method":"certificate"' "$WORK/vault/audit/log"

# 3. The city's CA: not trusted until imported (and serve restarted).
openssl req -x509 -newkey ed25519 -nodes -days 2 -subj "/CN=City People CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -keyout "$WORK/city.key" -out "$WORK/city.pem" 2>/dev/null
openssl req -new -newkey ed25519 -nodes -keyout "$WORK/zhang.key" -subj "/CN=li.wei" \
  -out "$WORK/zhang.csr" 2>/dev/null
openssl x509 -req -in "$WORK/zhang.csr" -CA "$WORK/city.pem" -CAkey "$WORK/city.key" \
  -CAcreateserial -days 2 -out "$WORK/zhang.pem" 2>/dev/null
out=$(login "$WORK/zhang.pem" "$WORK/zhang.key"); echo "city, not imported: $out"
check "a certificate from a CA nobody imported logs nobody in" bash -c "! grep -q '^200' <<<'$out'"
set +e
"$VAULT" ca import "$WORK/vault/ca/ca.pem" --data "$WORK/vault" >"$WORK/own.out" 2>&1; rc=$?
set -e
check "importing the vault's own CA is refused (exit $rc)" test "$rc" -eq 2
"$VAULT" ca import "$WORK/city.pem" --data "$WORK/vault"
check "the import is audited" grep -q '"action":"ca.import"' "$WORK/vault/audit/log"
vault_stop
serve 2
out=$(login "$WORK/zhang.pem" "$WORK/zhang.key"); echo "city, imported: $out"
check "after the import, the city's certificate logs its CN's account in" \
  grep -q '^200 .*"user":"li.wei"' <<<"$out"
set +e
"$VAULT" ca import "$WORK/li.csr" --data "$WORK/vault" >"$WORK/bad.out" 2>&1; rc=$?
set -e
echo "bad import: exit $rc: $(cat "$WORK/bad.out")"
check "a file that is no certificate is refused" test "$rc" -ne 0
finish
