#!/usr/bin/env bash
# The Debian packages (packaging/, CPack): built from this build tree,
# checked with lintian, and installed into a fresh Debian 12 root made by
# mmdebstrap inside the test, where apt resolves their dependencies from
# Debian's archive. In that root (a chroot sharing this host's loopback):
# the maintainer scripts made the cairn user and /var/lib/cairn, the vault
# is initialised as cairn and served with the packaged config file; an agent
# from the agent package enrols, backs up, and cairn-restore restores the
# files. The first install is of these packages relabelled as an older
# release; the upgrade to this build keeps data and config, and a reinstall
# over an edited conffile keeps the edit. systemd is not running in the root: the
# units are checked with systemd-analyze verify on this host instead.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[[ $EUID -eq 0 ]] || { echo "SKIP: needs root (chroot)"; exit 77; }
command -v mmdebstrap >/dev/null || { echo "SKIP: mmdebstrap missing (scripts/install-deps installs it)"; exit 77; }
command -v cpack >/dev/null || { echo "SKIP: cpack missing"; exit 77; }

R=$WORK/root
# in_root_kill SIGNAL: every process whose root is $R (runuser's children
# outlive a killed runuser, so killing the chroot's PID is not enough).
in_root_kill() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/root" 2>/dev/null) == "$R" ]] && kill "-$1" "${p#/proc/}" 2>/dev/null || true
  done
}
pkg_cleanup() {
  in_root_kill KILL
  for m in proc dev/pts dev sys; do umount -l "$R/$m" 2>/dev/null || true; done
  cleanup
}
trap pkg_cleanup EXIT

cpack --config "$BIN/CPackConfig.cmake" -B "$WORK/pkgs" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log"; fail "cpack"; finish; }
debs=("$WORK"/pkgs/*.deb)
check "four packages are built" test "${#debs[@]}" -eq 4
for d in "${debs[@]}"; do
  echo "$(basename "$d"): $(dpkg-deb -f "$d" Depends)"
done
for d in "${debs[@]}"; do dpkg-deb -c "$d"; done >"$WORK/contents.txt"
dpkg-deb --ctrl-tarfile "$WORK"/pkgs/cairn-vault_*.deb | tar -xO ./conffiles >"$WORK/conffiles.txt"
check "the vault package carries the console, its unit and its conffile" bash -c "
  grep -q ./usr/share/cairn/web/index.html $WORK/contents.txt &&
  grep -q ./lib/systemd/system/cairn-vault.service $WORK/contents.txt &&
  grep -qx /etc/cairn/vault.toml $WORK/conffiles.txt"
check "every command has its man page and bash completion" bash -c "
  for c in vault agent replicator restore; do
    grep -q ./usr/share/man/man1/cairn-\$c.1.gz $WORK/contents.txt &&
    grep -q ./usr/share/bash-completion/completions/cairn-\$c $WORK/contents.txt || exit 1
  done"
check "no package bundles a copy of a library" bash -c "! grep -E '\.so(\.[0-9]+)*$' $WORK/contents.txt"
if command -v lintian >/dev/null; then
  lintian --suppress-tags-from-file "$ROOT/packaging/lintian-explained" "${debs[@]}" >"$WORK/lintian.txt" 2>&1 || true
  cat "$WORK/lintian.txt"
  check "lintian finds no error and no warning that packaging/lintian-explained does not explain" \
    bash -c "! grep -E '^(E|W): ' $WORK/lintian.txt"
fi
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$WORK/units"
  for d in "${debs[@]}"; do dpkg-deb -x "$d" "$WORK/units/x"; done
  SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no "$WORK"/units/x/lib/systemd/system/*.service \
    >"$WORK/units.txt" 2>&1 && r=0 || r=$?
  grep -v "Failed to .* /usr/bin/cairn-\|is not executable\|No such file or directory" "$WORK/units.txt" >"$WORK/units2.txt" || true
  cat "$WORK/units2.txt"
  check "systemd-analyze verify finds nothing wrong in the units" test ! -s "$WORK/units2.txt"
fi

# An older release to upgrade from: these packages relabelled 0.0.9~old,
# whose vault.toml lacks the [storage] section that 0.1.0 added.
mkdir -p "$WORK/old"
for d in "${debs[@]}"; do
  x=$WORK/old/x
  rm -rf "$x" && dpkg-deb -R "$d" "$x"
  sed -i 's/^Version: .*/Version: 0.0.9~old/' "$x/DEBIAN/control"
  [[ -f $x/etc/cairn/vault.toml ]] && sed -i '/^\[storage\]/,$d' "$x/etc/cairn/vault.toml"
  dpkg-deb -b -Zxz "$x" "$WORK/old/" >/dev/null
done
rm -rf "$WORK/old/x"

# A fresh Debian 12 root.
mmdebstrap --variant=apt --quiet bookworm "$R" http://deb.debian.org/debian >"$WORK/mmdebstrap.log" 2>&1 ||
  { tail -5 "$WORK/mmdebstrap.log"; fail "mmdebstrap a Debian 12 root"; finish; }
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp "${debs[@]}" "$R/tmp/"
mkdir -p "$R/tmp/old" && cp "$WORK"/old/*.deb "$R/tmp/old/"
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
in_root sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/old/cairn-*.deb' \
  >"$WORK/install.log" 2>&1 && r=0 || r=$?
tail -3 "$WORK/install.log"
check "apt installs the four (older) packages and their dependencies into a fresh Debian 12 root" test "$r" = 0
check "the maintainer scripts made the cairn system user" in_root getent passwd cairn
check "and /var/lib/cairn, owned by it" test "$(stat -c %u:%a "$R/var/lib/cairn")" = "$(in_root id -u cairn):750"

port=$(free_port)
hport=$(free_port)
in_root runuser -u cairn -- cairn-vault init --data /var/lib/cairn/vault --json >"$WORK/init.json"
check "the vault is initialised as the cairn user" test "$(json "$WORK/init.json" ok)" = True
in_root runuser -u cairn -- cairn-vault serve --data /var/lib/cairn/vault --config /etc/cairn/vault.toml \
  --listen "0.0.0.0:$port" --http "127.0.0.1:$hport" >"$WORK/serve.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "REST API and console" "$WORK/serve.log" && break; sleep 0.1; done
check "it serves with the packaged config, and the console from the package" grep -q "web console: .*/usr/share/cairn/web" "$WORK/serve.log"
in_root runuser -u cairn -- cairn-vault department create finance --data /var/lib/cairn/vault >/dev/null
token=$(in_root runuser -u cairn -- cairn-vault token create --department finance --data /var/lib/cairn/vault)
in_root cairn-agent enroll --vault "127.0.0.1:$port" --token "$token" --state /var/lib/cairn/agent --host fin-srv >/dev/null
mkdir -p "$R/srv/data" && head -c 3000000 /dev/urandom >"$R/srv/data/a.bin" && echo hello >"$R/srv/data/b.txt"
check "an agent of a vault listening on 0.0.0.0 keeps the address it enrolled with" \
  grep -q "127.0.0.1:$port" "$R/var/lib/cairn/agent/agent.toml"
in_root cairn-agent backup --state /var/lib/cairn/agent /srv/data >"$WORK/backup.txt" 2>&1 && r=0 || r=$?
check "the packaged agent backs up" bash -c "[[ $r == 0 ]] && grep -q '^snapshot ' $WORK/backup.txt"
in_root cairn-restore restore latest --state /var/lib/cairn/agent --target /srv/restored >/dev/null 2>&1 || true
check "and cairn-restore restores the same files" diff -r "$R/srv/data" "$R/srv/restored/srv/data"

# An upgrade from 0.0.9~old to this build, with the vault serving: data and
# config stay; the unedited conffile becomes the new release's.
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/cairn-*.deb' \
  >"$WORK/upgrade.log" 2>&1 && r=0 || r=$?
tail -2 "$WORK/upgrade.log"
check "the packages upgrade from 0.0.9~old to $(dpkg-deb -f "${debs[0]}" Version)" \
  bash -c "[[ $r == 0 ]] && [[ \$(chroot $R dpkg-query -W -f '\${Version}' cairn-vault) == $(dpkg-deb -f "${debs[0]}" Version) ]]"
check "the unedited conffile is the new release's" grep -q '^\[storage\]' "$R/etc/cairn/vault.toml"
in_root_kill TERM
wait 2>/dev/null || true
for _ in $(seq 1 100); do pgrep -f "cairn-vault serve --data /var/lib/cairn/vault" >/dev/null || break; sleep 0.1; done
PIDS=()
in_root runuser -u cairn -- cairn-vault serve --data /var/lib/cairn/vault --config /etc/cairn/vault.toml \
  --listen "0.0.0.0:$port" --http "127.0.0.1:$hport" >"$WORK/serve2.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do grep -q "REST API and console" "$WORK/serve2.log" && break; sleep 0.1; done
echo more >"$R/srv/data/c.txt"
in_root cairn-agent backup --state /var/lib/cairn/agent /srv/data >"$WORK/backup2.txt" 2>&1 && r=0 || r=$?
check "the upgraded vault serves the same data: the agent backs up again" \
  bash -c "[[ $r == 0 ]] && grep -q '^snapshot ' $WORK/backup2.txt"
in_root runuser -u cairn -- cairn-vault snapshot list --department finance --data /var/lib/cairn/vault >"$WORK/list.txt" 2>&1
check "and both snapshots are listed" test "$(grep -c fin-srv "$WORK/list.txt")" = 2

# A reinstall over an edited conffile keeps the edit.
echo "# edited by the city's admin" >>"$R/etc/cairn/vault.toml"
in_root sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall -o Dpkg::Options::=--force-confold /tmp/cairn-*.deb' \
  >"$WORK/reinstall.log" 2>&1 && r=0 || r=$?
check "installing the packages over themselves succeeds" test "$r" = 0
check "the edited conffile is kept" grep -q "edited by the city's admin" "$R/etc/cairn/vault.toml"

# A data directory of a newer format is refused, saying so.
sed -i 's/^format = .*/format = 99/' "$R/var/lib/cairn/vault/vault.toml"
in_root runuser -u cairn -- cairn-vault snapshot list --department finance --data /var/lib/cairn/vault >"$WORK/newer.txt" 2>&1 && r=0 || r=$?
cat "$WORK/newer.txt"
check "a vault refuses a data directory written by a newer format, and says so" \
  bash -c "[[ $r != 0 ]] && grep -q 'newer Cairn' $WORK/newer.txt"
finish
