#!/usr/bin/env bash
# Every command of every binary keeps the command-line conventions
# (lib/base/cli.h): --help (exit 0, with examples and the exit codes),
# --version, exit 2 with a JSON error for a usage error, valid JSON on stdout
# with --json (non-UTF-8 file names included), and the documented exit codes
# for "vault down" (4) and "not found" (5).
source "$(dirname "$0")/lib.sh"
vault_with_agent finance
mkdir -p "$WORK/src"
printf 'x' >"$(printf '%s/na\xefve' "$WORK/src")"
"$AGENT" backup --state "$WORK/agent" "$WORK/src" --json >"$WORK/b.json"
down=$(free_port)
python3 "$(dirname "$0")/cli_conformance.py" "$BIN" "$WORK" "$port" "$down"
