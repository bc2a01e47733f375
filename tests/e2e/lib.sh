# Shared helpers for the end-to-end tests: real cairn-vault and cairn-agent
# processes on 127.0.0.1, each test in its own scratch directory and port.
# Sourced by tests/e2e/*_test.sh; ctest passes the binary directory as $1.
set -euo pipefail

BIN=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
VAULT=$BIN/vault/cairn-vault
AGENT=$BIN/agent/cairn-agent
WORK=$(mktemp -d /tmp/cairn-e2e.XXXXXX)
PIDS=()
PASSED=0
FAILED=0

# The scratch directory goes when every check passed, unless KEEP is set.
cleanup() {
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ $FAILED -eq 0 && -z ${KEEP:-} ]]; then rm -rf "$WORK"; else echo "kept $WORK for inspection"; fi
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

ok() { echo "PASS: $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL: $*"; FAILED=$((FAILED + 1)); }
check() {  # check "description" command...
  local what=$1; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
finish() {
  echo "$PASSED passed, $FAILED failed"
  [[ $FAILED -eq 0 ]]
}

# --- Where a vault's packs are ------------------------------------------------
# In VAULT_DIR/packs; or, with CAIRN_TEST_STORE=rados (ctest's e2e.rados.*
# entries, which tests/ceph/with-cluster runs beside a fresh Ceph cluster),
# in that cluster's pool "cairn", one namespace prefix per vault.
STORE_FLAGS=()
if [[ ${CAIRN_TEST_STORE:-local} == rados ]]; then
  STORE_FLAGS=(--store rados:cairn --ceph-user admin
    --ceph-conf "${CAIRN_CEPH_CONF:?CAIRN_TEST_STORE=rados runs under tests/ceph/with-cluster}")
fi
rados_() { timeout 60 rados --conf "$CAIRN_CEPH_CONF" -p cairn "$@"; }
# pack_prefix VAULT_DIR: the vault's namespace prefix in the pool; empty for
# a local store.
pack_prefix() { sed -n "s/^namespace_prefix = '\(.*\)'$/\1/p" "$1/vault.toml"; }
# pack_objects VAULT_DIR: "NAMESPACE OBJECT" for each of its packs in the pool.
pack_objects() {
  rados_ ls --all | awk -F'\t' -v p="$(pack_prefix "$1")" 'index($1, p) == 1 && $2 ~ /\.pack$/ {print $1, $2}'
}
# packs_dir VAULT_DIR: a directory of the vault's packs as files,
# DEPARTMENT/ID.pack: the store itself when local; else a fresh copy from the
# pool, and packs_put writes changed files back.
packs_dir() {
  if [[ -z $(pack_prefix "$1") ]]; then echo "$1/packs"; return; fi
  local out=$WORK/rados-packs/$(basename "$1") ns obj
  rm -rf "$out" && mkdir -p "$out"
  pack_objects "$1" | while read -r ns obj; do
    mkdir -p "$out/${ns##*/}" && rados_ -N "$ns" get "$obj" "$out/${ns##*/}/$obj"
  done
  echo "$out"
}
# packs_put VAULT_DIR FILE...: files of packs_dir back into the pool.
packs_put() {
  local v=$1 prefix f
  shift
  prefix=$(pack_prefix "$v")
  [[ -n $prefix ]] || return 0
  for f in "$@"; do rados_ -N "$prefix$(basename "$(dirname "$f")")" put "$(basename "$f")" "$f"; done
}
# packs_bytes VAULT_DIR: what its packs take.
packs_bytes() {
  if [[ -z $(pack_prefix "$1") ]]; then du -sb "$1/packs" | cut -f1; return; fi
  # One client for the whole sum (Debian's python3-rados): quick enough for
  # the tests that poll it while a backup runs.
  timeout 60 /usr/bin/python3 - "$CAIRN_CEPH_CONF" "$(pack_prefix "$1")" <<'EOF'
import sys, rados
with rados.Rados(conffile=sys.argv[1], name="client.admin") as cluster:
    with cluster.open_ioctx("cairn") as io:
        io.set_namespace(rados.LIBRADOS_ALL_NSPACES)
        total = 0
        for o in io.list_objects():
            if o.nspace.startswith(sys.argv[2]) and o.key.endswith(".pack"):
                io.set_namespace(o.nspace)
                total += io.stat(o.key)[0]
                io.set_namespace(rados.LIBRADOS_ALL_NSPACES)
        print(total)
EOF
}

# vault_init DIR: a new vault in DIR.
vault_init() { "$VAULT" init --data "$1" "${STORE_FLAGS[@]}" --json >"$1.init.json"; }

# vault_start DIR PORT: serve DIR on 127.0.0.1:PORT in the background; sets
# VAULT_PID. Waits until it listens.
vault_start() {
  local dir=$1 port=$2 before
  before=$(grep -c "serving agents" "$dir.log" 2>/dev/null || true)
  "$VAULT" serve --data "$dir" --listen "127.0.0.1:$port" >>"$dir.log" 2>&1 &
  VAULT_PID=$!
  PIDS+=("$VAULT_PID")
  for _ in $(seq 1 100); do
    if [[ $(grep -c "serving agents" "$dir.log" 2>/dev/null || true) -gt ${before:-0} ]]; then return 0; fi
    kill -0 "$VAULT_PID" 2>/dev/null || { echo "vault exited:"; cat "$dir.log"; return 1; }
    sleep 0.05
  done
  echo "vault did not start:"; cat "$dir.log"; return 1
}

# vault_with_agent DEPARTMENT: a new vault in $WORK/vault serving on a free
# $port, the department, and an agent enrolled in it in $WORK/agent.
vault_with_agent() {
  port=$(free_port)
  vault_init "$WORK/vault"
  vault_start "$WORK/vault" "$port"
  "$VAULT" department create "$1" --data "$WORK/vault" >/dev/null
  enroll "$WORK/vault" "$port" "$1" "$WORK/agent"
}

vault_stop() { kill -INT "$VAULT_PID" 2>/dev/null || true; wait "$VAULT_PID" 2>/dev/null || true; }

# enroll VAULT_DIR PORT DEPARTMENT STATE_DIR
enroll() {
  local token
  token=$("$VAULT" token create --department "$3" --data "$1")
  "$AGENT" enroll --vault "127.0.0.1:$2" --token "$token" --state "$4" >/dev/null
}

# json FILE KEY: a top-level field of a JSON object.
json() { python3 -c "import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if not isinstance(v,list) else len(v))" "$1" "$2"; }

# make_tree DIR MIB: a tree of small and large files with random content.
# rc_of CMD...: runs CMD with its output in $WORK/out.txt and prints its
# exit status (for `rc=$(rc_of ...)` under set -e).
rc_of() { set +e; "$@" >"$WORK/out.txt" 2>&1; local rc=$?; set -e; echo "$rc"; }

make_tree() {
  local dir=$1 mib=$2
  mkdir -p "$dir/sub/deeper" "$dir/empty"
  head -c $((mib * 1048576 / 2)) /dev/urandom >"$dir/big.bin"
  for i in $(seq 1 200); do head -c $((RANDOM % 8192 + 1)) /dev/urandom >"$dir/sub/f$i"; done
  for i in $(seq 1 50); do printf 'text file %d\n%.0s' "$i" $(seq 1 200) >"$dir/sub/deeper/t$i.txt"; done
  head -c $((mib * 1048576 / 2)) /dev/urandom >"$dir/sub/big2.bin"
  ln -s big.bin "$dir/link"
}

# storage_vault [EXTRA_TOML]: like vault_with_agent's vault, for the storage
# tests (doc/design.md section 22): $WORK/vault on a free $port with 1 MiB
# packs, GC and scrub left to the test (no schedule), department finance;
# sets V=(--data $WORK/vault). EXTRA_TOML is appended to vault.toml.
storage_vault() {
  port=$(free_port)
  vault_init "$WORK/vault"
  printf '[storage]\npack_target_bytes = 1048576\ngc_schedule = "off"\nscrub_schedule = "off"\n%b' \
    "${1:-}" >>"$WORK/vault/vault.toml"
  vault_start "$WORK/vault" "$port"
  V=(--data "$WORK/vault")
  "$VAULT" department create finance "${V[@]}" >/dev/null
}
