#!/usr/bin/env bash
# The cost of a btrfs point-in-time view on a backup: the same tree on btrfs,
# backed up with --pit none and --pit btrfs, interleaved (no-change re-backups
# after a first full one each). Run as root: bench/pit_view.sh build/main
set -euo pipefail
B=${1:?build dir}
W=$(mktemp -d /tmp/pitbench.XXXXXX)
trap 'pkill -f "cairn-vault serve --data $W" || true; umount $W/mnt 2>/dev/null || true; rm -rf $W' EXIT
truncate -s 4G $W/fs.img && mkfs.btrfs -q $W/fs.img >/dev/null 2>&1 && mkdir $W/mnt && mount -o loop $W/fs.img $W/mnt
btrfs subvolume create $W/mnt/data >/dev/null
cp -a /usr/lib/x86_64-linux-gnu $W/mnt/data/lib 2>/dev/null || true
files=$(find $W/mnt/data -type f | wc -l); size=$(du -sh $W/mnt/data | cut -f1)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$B/vault/cairn-vault init --data $W/v >/dev/null; $B/vault/cairn-vault department create d --data $W/v >/dev/null
$B/vault/cairn-vault serve --data $W/v --listen 127.0.0.1:$port >$W/v.log 2>&1 &
sleep 1
for s in a b; do t=$($B/vault/cairn-vault token create --department d --data $W/v); $B/agent/cairn-agent enroll --vault 127.0.0.1:$port --token $t --state $W/$s >/dev/null; done
echo "tree: $files files, $size (a copy of /usr/lib/x86_64-linux-gnu on btrfs)"
run() { /usr/bin/time -f %e $B/agent/cairn-agent backup --state $W/$1 --pit $2 --json $W/mnt/data 2>&1 >$W/out.json | tail -1; }
echo "first full: none $(run a none) s, btrfs $(run b btrfs) s"
for i in 1 2 3 4 5; do
  sync; echo 3 >/proc/sys/vm/drop_caches
  n=$(run a none); sync; echo 3 >/proc/sys/vm/drop_caches; b=$(run b btrfs)
  hits=$(python3 -c "import json; print(json.load(open('$W/out.json'))['cache_hits'])")
  echo "no-change re-backup $i: none $n s, btrfs $b s (btrfs cache hits $hits)"
done
