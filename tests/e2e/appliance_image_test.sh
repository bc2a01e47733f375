#!/usr/bin/env bash
# The appliance image (appliance-image/build) made from this build's
# packages and booted under qemu by appliance-image/test: login prompt,
# first-boot console URL and password, data volume, the console and REST API
# on a forwarded port, an agent that backs up into it and restores, and a
# power cut. About 2.5 minutes. It runs when /dev/kvm exists, as the README
# says; without it this test says so and skips (appliance-image/test still
# runs by hand, under software emulation).
set -euo pipefail
BIN=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
skip() { echo "SKIP: $*"; echo "0 passed, 0 failed"; exit 77; }
[[ $EUID -eq 0 ]] || skip "the appliance image test needs root (loop devices, mounts)"
[[ -e /dev/kvm ]] || skip "no /dev/kvm on this machine: the appliance image is not booted here (run appliance-image/test $BIN by hand; it boots under software emulation)"
for tool in qemu-system-x86_64 mmdebstrap extlinux sfdisk cpack; do
  command -v "$tool" >/dev/null || skip "$tool is missing (scripts/install-deps installs it)"
done
exec bash "$ROOT/appliance-image/test" "$BIN"
