#!/usr/bin/env bash
# Consistent backups of a running system (doc/design.md section 24), with a
# real PostgreSQL under pgbench load on a btrfs file system made on a loop
# device inside the test:
#   1. a source with --pit btrfs and the CHECKPOINT hook, backed up by a
#      real job while pgbench writes: restored elsewhere, PostgreSQL starts,
#      recovers and passes pg_amcheck and pgbench's balance invariants;
#   2. the same with the stop/start hooks and no snapshot (--pit none);
#   3. the same with neither, read live while pgbench writes and the server
#      checkpoints: does the copy break? (reported: in how many of N tries);
#   4. an image file being stamped by a writer (pit_stamp.py): a reflink
#      copy shows one instant; a live read is checked the same way;
#   5. a SIGKILLed agent leaves its snapshot; the next start removes it;
#   7. MariaDB (when installed) under load, backed up from a btrfs snapshot
#      taken under FLUSH TABLES WITH READ LOCK (doc/hooks/mysql-lock):
#      restored, it starts and its balances and CHECK TABLE hold;
#   6. auto on a file system without snapshots says the backup is not
#      point-in-time, in its result, in `snapshots` and in `status`; lvm
#      says this kernel has no device-mapper.
# CAIRN_LONG=1 (scripts/test --long) makes 10 live tries instead of 2.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESTORE=$BIN/restore/cairn-restore
STAMP=$ROOT/tests/e2e/pit_stamp.py
HOOKS=$ROOT/doc/hooks
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
TRIES=2
[[ ${CAIRN_LONG:-0} == 1 ]] && TRIES=10

[[ $EUID -eq 0 ]] || { echo "SKIP: needs root (loop devices, btrfs snapshots)"; exit 77; }
command -v mkfs.btrfs >/dev/null || { echo "SKIP: mkfs.btrfs missing (scripts/install-deps installs btrfs-progs)"; exit 77; }
[[ -x $PGBIN/postgres ]] || { echo "SKIP: PostgreSQL missing (scripts/install-deps installs it)"; exit 77; }
id postgres >/dev/null 2>&1 || { echo "SKIP: no postgres user"; exit 77; }

MNT=$WORK/mnt
PGS=()  # data directories of running clusters
pit_cleanup() {
  for d in "${PGS[@]}"; do runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true; done
  pkill -f "pit_stamp.py write $MNT" 2>/dev/null || true
  pkill -KILL -f -- "--datadir=$WORK" 2>/dev/null || true
  pkill -f "sleep 3600" -u root 2>/dev/null || true
  for s in "$MNT"/pg/.cairn-pit-*; do [[ -d $s ]] && btrfs subvolume delete "$s" >/dev/null 2>&1; done
  for _ in $(seq 1 50); do umount "$MNT" 2>/dev/null && break; sleep 0.1; done
  mountpoint -q "$MNT" && umount -l "$MNT"
  cleanup
}
trap pit_cleanup EXIT
chmod 711 "$WORK"  # postgres walks through it to its data directory

truncate -s 3G "$WORK/btrfs.img"
mkfs.btrfs -q "$WORK/btrfs.img" >/dev/null 2>&1
mkdir -p "$MNT"
mount -o loop "$WORK/btrfs.img" "$MNT"
btrfs subvolume create "$MNT/pg" >/dev/null
DATA=$MNT/pg/data
SOCK=$MNT/pg/run
mkdir -p "$SOCK" && chown postgres: "$MNT/pg" "$SOCK"
runuser -u postgres -- "$PGBIN/initdb" -D "$DATA" -A trust -U postgres >"$WORK/initdb.log" 2>&1
PGPORT=$(free_port)
pg_start() {  # pg_start DATA PORT SOCKDIR LOG
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$1" -w -t 120 -l "$4" \
    -o "-p $2 -k $3 -c listen_addresses=''" start >/dev/null 2>&1
}
pg_start "$DATA" "$PGPORT" "$SOCK" "$MNT/pg/pg.log"
PGS+=("$DATA")
psql_() { runuser -u postgres -- "$PGBIN/psql" -X -q -t -A -h "$1" -p "$2" -d postgres -c "$3"; }
runuser -u postgres -- "$PGBIN/pgbench" -q -i -s 5 -h "$SOCK" -p "$PGPORT" postgres >"$WORK/pgbench-init.log" 2>&1
check "PostgreSQL runs on btrfs with pgbench's tables" test "$(psql_ "$SOCK" "$PGPORT" 'select count(*) from pgbench_branches')" = 5

port=$(free_port)
vault_init "$WORK/vault"
printf '[scheduler]\nspread_seconds = 0\n' >>"$WORK/vault/vault.toml"
vault_start "$WORK/vault" "$port"
V=(--data "$WORK/vault")
"$VAULT" department create finance "${V[@]}" >/dev/null
token=$("$VAULT" token create --department finance "${V[@]}")
"$AGENT" enroll --vault "127.0.0.1:$port" --token "$token" --state "$WORK/agent" --host fin-db >/dev/null

load() {  # load SECONDS: pgbench writes in the background; sets LOAD_PID
  runuser -u postgres -- "$PGBIN/pgbench" -n -c 4 -j 2 -T "$1" -h "$SOCK" -p "$PGPORT" postgres \
    >"$WORK/pgbench-load.log" 2>&1 &
  LOAD_PID=$!
  sleep 2
}

# verify SNAPSHOT NAME: restores the data directory, starts PostgreSQL on it
# and runs the checks; prints why it failed, returns non-zero then.
verify() {
  local snap=$1 name=$2 target=$WORK/r-$2 port2 sock2 d
  rm -rf "$target"
  "$RESTORE" restore "$snap" --state "$WORK/agent" --target "$target" >"$WORK/restore-$name.log" 2>&1 ||
    { echo "restore failed: $(tail -2 "$WORK/restore-$name.log")"; return 1; }
  d=$target$DATA
  # The restored copy of a running cluster holds its postmaster.pid: a
  # restored cluster is started without it (doc/hooks/README.md).
  rm -f "$d/postmaster.pid"
  local p; p=$(dirname "$d")
  while [[ $p != "$WORK" && $p != / ]]; do chmod o+x "$p"; p=$(dirname "$p"); done
  sock2=$target/run && mkdir -p "$sock2" && chown postgres: "$sock2"
  port2=$(free_port)
  if ! pg_start "$d" "$port2" "$sock2" "$sock2/pg.log"; then
    echo "PostgreSQL did not start on the restored copy: $(tail -3 "$sock2/pg.log" 2>/dev/null | tr '\n' ' ')"
    return 1
  fi
  PGS+=("$d")
  local rc=0
  if ! runuser -u postgres -- "$PGBIN/pg_amcheck" -h "$sock2" -p "$port2" --install-missing \
       --heapallindexed postgres >"$target/amcheck.log" 2>&1; then
    echo "pg_amcheck: $(head -3 "$target/amcheck.log" | tr '\n' ' ')"; rc=1
  fi
  local same
  same=$(psql_ "$sock2" "$port2" "select (select sum(abalance) from pgbench_accounts) =
      (select coalesce(sum(delta),0) from pgbench_history) and (select sum(tbalance) from
      pgbench_tellers) = (select coalesce(sum(delta),0) from pgbench_history) and
      (select sum(bbalance) from pgbench_branches) = (select coalesce(sum(delta),0) from pgbench_history)" 2>&1) || true
  if [[ $same != t ]]; then echo "pgbench's balances disagree with its history ($same)"; rc=1; fi
  echo "history rows: $(psql_ "$sock2" "$port2" 'select count(*) from pgbench_history' 2>&1)"
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$d" -m fast -w stop >/dev/null 2>&1 || true
  return $rc
}

# --- 1. a btrfs snapshot, by a real job of a source, under load -------------
"$AGENT" run --state "$WORK/agent" >>"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
"$VAULT" policy create pg-nightly --rpo 26h "${V[@]}" >/dev/null
"$VAULT" source add --department finance --agent fin-db --policy pg-nightly --path "$DATA" \
  --pit btrfs --pre-command "PGHOST=$SOCK PGPORT=$PGPORT $HOOKS/postgresql-checkpoint" "${V[@]}" >/dev/null
"$VAULT" job start --source 1 --wait 60 --json "${V[@]}" >"$WORK/job0.json" 2>"$WORK/job0.err" || true
check "an agent runs no hook the vault sends unless its agent.toml allows it" \
  grep -q "allow_job_hooks = true" "$WORK/job0.json"
echo "allow_job_hooks = true" >>"$WORK/agent/agent.toml"
load 25
"$VAULT" job start --source 1 --wait 120 --json "${V[@]}" >"$WORK/job1.json" 2>"$WORK/job1.err" || true
wait "$LOAD_PID" || true
check "the source's job backs up the data directory while pgbench writes" test "$(json "$WORK/job1.json" ok)" = True
snap1=$(json "$WORK/job1.json" snapshot)
log1=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('log',''))" "$WORK/job1.json")
echo "job log: $log1"
check "the job's record says it read a btrfs snapshot" grep -q "point-in-time: btrfs snapshot of subvolume $MNT/pg" <<<"$log1"
check "and keeps the pre-command's exit status" grep -q "pre-command exit 0" <<<"$log1"
check "pgbench committed transactions during the backup" grep -q "number of transactions actually processed: [1-9]" "$WORK/pgbench-load.log"
"$RESTORE" snapshots --state "$WORK/agent" >"$WORK/snapshots.txt"
check "snapshots shows how the data was read (btrfs)" grep -q "${snap1:0:8} .* btrfs " "$WORK/snapshots.txt"
"$RESTORE" snapshots --state "$WORK/agent" --json >"$WORK/snapshots.json"
check "and the time the view was taken, in JSON" python3 -c "
import json,sys; s=[x for x in json.load(open(sys.argv[1]))['snapshots'] if x['id']==sys.argv[2]][0]
p=s['point_in_time']; assert p['method']=='btrfs' and p['taken'] <= s['finished'], p" "$WORK/snapshots.json" "$snap1"
check "paths are recorded as the user named them, not as the snapshot's" \
  python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['snapshots'][0]; assert s['paths']==[sys.argv[2]], s['paths']" \
  "$WORK/snapshots.json" "$DATA"
check "the snapshot is gone from the subvolume after the backup" bash -c "! ls -d $MNT/pg/.cairn-pit-* 2>/dev/null"
why=$(verify "$snap1" btrfs) && r=0 || r=$?
echo "$why"
check "restored from the btrfs snapshot, PostgreSQL starts, recovers and passes pg_amcheck and the balance checks" test "$r" = 0
"$VAULT" status "${V[@]}" >"$WORK/status.txt"
check "status shows the last good snapshot was read from btrfs" grep -q "$DATA.*btrfs" "$WORK/status.txt"
kill -INT "$AGENT_PID" 2>/dev/null || true
wait "$AGENT_PID" 2>/dev/null || true

# --- 2. the stop/start hooks, no snapshot ------------------------------------
hook_env="PGBIN=$PGBIN PGDATA=$DATA PG_LOG=$MNT/pg/pg.log PG_START_OPTIONS='-p $PGPORT -k $SOCK -c listen_addresses='"
load 20
"$AGENT" backup --state "$WORK/agent" --pit none --json \
  --pre-command "$hook_env $HOOKS/postgresql-stop" --post-command "$hook_env $HOOKS/postgresql-start" \
  "$DATA" >"$WORK/hooks.json" 2>"$WORK/hooks.err" || true
wait "$LOAD_PID" || true
check "with the hooks the backup succeeds" test "$(json "$WORK/hooks.json" ok)" = True
check "the post-command started the database again" test "$(psql_ "$SOCK" "$PGPORT" 'select 1' 2>&1)" = 1
why=$(verify "$(json "$WORK/hooks.json" snapshot)" hooks) && r=0 || r=$?
echo "$why"
check "restored from the hooked backup, PostgreSQL starts and passes the checks" test "$r" = 0

# A failing pre-command fails the backup, the post-command still runs, and
# --on-hook-failure continue goes on crash-consistent.
"$AGENT" backup --state "$WORK/agent" --pit none --pre-command 'echo cannot quiesce; exit 3' \
  --post-command "touch $WORK/post-ran" "$DATA" >"$WORK/prefail.txt" 2>&1 && r=0 || r=$?
check "a failed pre-command fails the backup with its output" bash -c "[[ $r -ne 0 ]] && grep -q 'pre-command exit 3: cannot quiesce' $WORK/prefail.txt"
check "and the post-command runs all the same" test -f "$WORK/post-ran"
"$AGENT" backup --state "$WORK/agent" --pit none --pre-command 'exit 3' --on-hook-failure continue \
  "$DATA" >"$WORK/precont.txt" 2>&1 && r=0 || r=$?
check "--on-hook-failure continue backs up crash-consistent and says so" bash -c "[[ $r -eq 0 ]] && grep -q 'crash-consistent' $WORK/precont.txt"

# --- 3. neither: a live read while pgbench writes -----------------------------
# A busy server checkpoints while it is copied: here every 0.2 s.
broke=0
for try in $(seq 1 "$TRIES"); do
  load 15
  (for _ in $(seq 1 60); do psql_ "$SOCK" "$PGPORT" CHECKPOINT >/dev/null 2>&1 || true; sleep 0.2; done) &
  CKPT=$!
  "$AGENT" backup --state "$WORK/agent" --pit none --json "$DATA" >"$WORK/live.json" 2>/dev/null || true
  wait "$LOAD_PID" "$CKPT" || true
  if why=$(verify "$(json "$WORK/live.json" snapshot)" "live$try"); then
    echo "live try $try: the copy happened to pass ($why)"
  else
    echo "live try $try: BROKEN: $why"; broke=$((broke + 1))
  fi
done
echo "without a snapshot or hooks, the restored database failed its checks in $broke of $TRIES tries"
check "the live-read tries ran ($broke of $TRIES broken)" test "$TRIES" -gt 0

# --- 4. an image file being written: reflink against live --------------------
IMG=$MNT/pg/disk.img
python3 "$STAMP" init "$IMG" 65536
python3 "$STAMP" write "$IMG" 12 >"$WORK/stamp.txt" &
WRITER=$!
sleep 1
"$AGENT" backup --state "$WORK/agent" --image --pit reflink --json "$IMG" >"$WORK/img-reflink.json" 2>&1 || true
"$AGENT" backup --state "$WORK/agent" --image --pit none --json "$IMG" >"$WORK/img-live.json" 2>&1 || true
wait "$WRITER" || true
cat "$WORK/stamp.txt"
check "the image is backed up from a reflink copy" python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); assert d['consistency']['point_in_time']['method']=='reflink', d" "$WORK/img-reflink.json"
for kind in reflink live; do
  rm -rf "$WORK/ri-$kind"
  "$RESTORE" restore "$(json "$WORK/img-$kind.json" snapshot)" --state "$WORK/agent" --target "$WORK/ri-$kind" >/dev/null
done
python3 "$STAMP" check "$WORK/ri-reflink" >"$WORK/check-reflink.txt" && r=0 || r=$?
cat "$WORK/check-reflink.txt"
check "the restored reflink copy shows one instant" test "$r" = 0
python3 "$STAMP" check "$WORK/ri-live" >"$WORK/check-live.txt" && r=0 || r=$?
echo "live read: $(cat "$WORK/check-live.txt")"
check "the checker tells the live read of the same image (smeared: $([[ $r == 1 ]] && echo yes || echo no))" test "$r" -le 1

# --- 5. a SIGKILLed agent leaves its snapshot; the next start removes it ----
rm -f "$WORK/view-taken"
"$AGENT" backup --state "$WORK/agent" --pit btrfs --post-command "touch $WORK/view-taken; sleep 60" \
  "$DATA" >"$WORK/killed.txt" 2>&1 &
KILLED=$!
for _ in $(seq 1 100); do [[ -f $WORK/view-taken ]] && break; sleep 0.1; done
kill -KILL "$KILLED"; wait "$KILLED" 2>/dev/null || true
pkill -f "touch $WORK/view-taken; sleep 60" 2>/dev/null || true
check "a SIGKILLed agent leaves its btrfs snapshot behind" bash -c "ls -d $MNT/pg/.cairn-pit-* >/dev/null 2>&1"
check "and its record in the state directory" bash -c "ls $WORK/agent/pit/* >/dev/null 2>&1"
"$AGENT" backup --state "$WORK/agent" --pit btrfs "$DATA" >"$WORK/after-kill.txt" 2>&1 || true
check "the next start says it removed the snapshot" grep -q "removed what a killed backup left: btrfs snapshot $MNT/pg/.cairn-pit-" "$WORK/after-kill.txt"
check "and it is gone" bash -c "! ls -d $MNT/pg/.cairn-pit-* 2>/dev/null && [[ -z \$(ls $WORK/agent/pit) ]]"

# --- 6. where no method applies ----------------------------------------------
mkdir -p "$WORK/plain" && echo data >"$WORK/plain/f"
fs=$(stat -f -c %T "$WORK/plain")
"$AGENT" backup --state "$WORK/agent" "$WORK/plain" >"$WORK/plain.txt" 2>&1 || true
check "auto on $fs says the backup is not point-in-time" grep -q "not point-in-time" "$WORK/plain.txt"
"$RESTORE" snapshots --state "$WORK/agent" >"$WORK/snapshots2.txt"
check "and snapshots shows it as read live" grep -q " live .*$WORK/plain" "$WORK/snapshots2.txt"
"$VAULT" source add --department finance --agent fin-db --policy pg-nightly --path "$WORK/plain" "${V[@]}" >/dev/null
"$VAULT" status "${V[@]}" >"$WORK/status2.txt"
check "and status too" grep -q "$WORK/plain.*live (not point-in-time)" "$WORK/status2.txt"
"$AGENT" backup --state "$WORK/agent" --pit btrfs "$WORK/plain" >"$WORK/notbtrfs.txt" 2>&1 && r=0 || r=$?
check "--pit btrfs on $fs is refused, naming the file system" bash -c "[[ $r -ne 0 ]] && grep -q 'is on .*, not btrfs' $WORK/notbtrfs.txt"
LOOP=$(findmnt -n -o SOURCE "$MNT")
"$AGENT" backup --state "$WORK/agent" --image --pit lvm "$LOOP" >"$WORK/lvm.txt" 2>&1 && r=0 || r=$?
if grep -q "device-mapper, which this kernel does not have" "$WORK/lvm.txt"; then
  echo "SKIP: LVM snapshots: this kernel has no device-mapper ($(head -1 "$WORK/lvm.txt"))"
  check "--pit lvm says the kernel has no device-mapper, and fails" test "$r" -ne 0
else
  check "--pit lvm on a loop device is refused (not a logical volume)" bash -c "[[ $r -ne 0 ]] && grep -q 'not a device-mapper' $WORK/lvm.txt"
fi
# --- 7. MariaDB with the lock hooks and a btrfs snapshot -----------------------
if [[ -x /usr/sbin/mariadbd ]] && id mysql >/dev/null 2>&1; then
  btrfs subvolume create "$MNT/my" >/dev/null
  mkdir -p "$MNT/my/run" && chown mysql: "$MNT/my" "$MNT/my/run"
  mariadb-install-db --datadir="$MNT/my/data" --user=mysql --auth-root-authentication-method=normal \
    --skip-test-db >"$WORK/my-install.log" 2>&1
  my_start() {  # my_start DATADIR SOCKDIR
    setsid /usr/sbin/mariadbd --no-defaults --datadir="$1" --socket="$2/sock" --pid-file="$2/pid" \
      --skip-networking --user=mysql --log-error="$2/err.log" </dev/null >/dev/null 2>&1 &
    disown
    for _ in $(seq 1 150); do [[ -S $2/sock ]] && return 0; sleep 0.2; done
    return 1
  }
  my_start "$MNT/my/data" "$MNT/my/run"
  MYSQL_OPTIONS="--socket=$MNT/my/run/sock -uroot"
  my() { mariadb --socket="$1/sock" -uroot -N -B -e "$2" cairn; }
  mariadb $MYSQL_OPTIONS -e "CREATE DATABASE cairn"
  my "$MNT/my/run" "CREATE TABLE acc (id INT PRIMARY KEY, bal BIGINT) ENGINE=InnoDB;
    CREATE TABLE moves (n BIGINT AUTO_INCREMENT PRIMARY KEY, amount INT) ENGINE=InnoDB;
    INSERT INTO acc VALUES (1, 100000000), (2, 0)"
  # Transfers from account 1 to 2, each logged in moves, in one transaction.
  python3 -c "
for i in range(60000):
    a = i % 7 + 1
    print(f'START TRANSACTION; UPDATE acc SET bal = bal - {a} WHERE id = 1; '
          f'UPDATE acc SET bal = bal + {a} WHERE id = 2; INSERT INTO moves (amount) VALUES ({a}); COMMIT;')
" 2>/dev/null | mariadb $MYSQL_OPTIONS cairn >"$WORK/my-load.log" 2>&1 &
  MYLOAD=$!
  sleep 2
  lock_env="MYSQL_OPTIONS='$MYSQL_OPTIONS' CAIRN_MYSQL_LOCK_DIR=$WORK/mylock"
  "$AGENT" backup --state "$WORK/agent" --pit btrfs --json \
    --pre-command "$lock_env $HOOKS/mysql-lock" --post-command "$lock_env $HOOKS/mysql-unlock" \
    "$MNT/my/data" >"$WORK/my.json" 2>"$WORK/my.err" || true
  moved_then=$(my "$MNT/my/run" "SELECT COUNT(*) FROM moves")
  kill "$MYLOAD" 2>/dev/null || true
  wait "$MYLOAD" 2>/dev/null || true
  check "MariaDB's data directory is backed up from a btrfs snapshot under the read lock" python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); c=d['consistency']
assert d['ok'] and c['point_in_time']['method']=='btrfs', d
assert 'locked' in c['pre']['output_tail'] and 'unlocked' in c['post']['output_tail'], c" "$WORK/my.json"
  rm -rf "$WORK/r-my"
  "$RESTORE" restore "$(json "$WORK/my.json" snapshot)" --state "$WORK/agent" --target "$WORK/r-my" >/dev/null
  rd=$WORK/r-my$MNT/my/data
  rm -f "$rd"/*.pid
  p=$(dirname "$rd"); while [[ $p != "$WORK" ]]; do chmod o+x "$p"; p=$(dirname "$p"); done
  mkdir -p "$WORK/r-my/run" && chown mysql: "$WORK/r-my/run"
  if my_start "$rd" "$WORK/r-my/run"; then
    same=$(my "$WORK/r-my/run" "SELECT (SELECT SUM(bal) FROM acc) = 100000000 AND
      (SELECT bal FROM acc WHERE id = 2) = (SELECT COALESCE(SUM(amount), 0) FROM moves)")
    checked=$(my "$WORK/r-my/run" "CHECK TABLE acc, moves" | awk '{print $NF}' | sort -u | tr '\n' ' ')
    moved=$(my "$WORK/r-my/run" "SELECT COUNT(*) FROM moves")
    echo "restored MariaDB: $moved transfers (the live server had $moved_then after the backup); CHECK TABLE: $checked"
    check "restored, MariaDB starts, its balances match its log, and CHECK TABLE says OK" \
      bash -c "[[ '$same' == 1 && '$checked' == 'OK ' && $moved -gt 0 ]]"
    mariadb --socket="$WORK/r-my/run/sock" -uroot -e "SHUTDOWN" 2>/dev/null || true
  else
    fail "MariaDB did not start on the restored copy: $(tail -3 "$WORK/r-my/run/err.log")"
  fi
  mariadb $MYSQL_OPTIONS -e "SHUTDOWN" 2>/dev/null || true
else
  echo "SKIP: MariaDB is not installed (scripts/install-deps installs mariadb-server)"
fi
finish
