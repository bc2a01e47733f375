#!/usr/bin/env bash
# Garbage, oversized lengths and wrong versions on the wire: that connection
# is closed with a logged reason, and the vault keeps serving everyone else.
source "$(dirname "$0")/lib.sh"

vault_with_agent finance
mkdir -p "$WORK/src" && echo data >"$WORK/src/f"

send() {  # send BYTES_PRINTF_FORMAT: over TLS without a client certificate
  printf "$1" | timeout 5 openssl s_client -quiet -connect "127.0.0.1:$port" -tls1_3 \
    -CAfile "$WORK/vault/ca/ca.pem" >/dev/null 2>&1 || true
}
send 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'                # not a Cairn peer
send '\x43\x46\x02\x00\xff\xff\xff\x7f'                 # hello claiming 2 GiB
send '\x43\x46\x63\x00\x00\x00\x00\x00'                 # unknown message type
send '\x43\x46\x02\x00\x05\x00\x00\x00\x09\x00\x09\x00\x01'  # hello, protocol version 9
head -c 100000 /dev/urandom | timeout 5 bash -c "cat >/dev/tcp/127.0.0.1/$port" 2>/dev/null || true  # not even TLS

sleep 0.3
check "the vault is still running" kill -0 "$VAULT_PID"
check "the vault logged why it closed" grep -q "closing" "$WORK/vault.log"
check "bad magic is named in the log" grep -q "bad frame magic" "$WORK/vault.log"
check "the oversized length is named in the log" grep -q "exceeds the limit" "$WORK/vault.log"
check "a real agent is still served" "$AGENT" backup --state "$WORK/agent" "$WORK/src"
finish
