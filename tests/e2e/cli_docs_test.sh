#!/usr/bin/env bash
# Man pages and bash completion are generated from the commands' own --help
# (scripts/gen-cli-docs), so they cannot drift from the flags.
source "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
"$ROOT/scripts/gen-cli-docs" "$BIN" "$WORK/docs" >"$WORK/gen.txt"
cat "$WORK/gen.txt"
pages=$(ls "$WORK/docs/man1" | wc -l)
check "a man page for every command and subcommand ($pages)" test "$pages" -ge 25
check "man renders one" bash -c "man -l '$WORK/docs/man1/cairn-restore-restore.1' 2>/dev/null | grep -q -- '--in-place'"
for c in cairn-vault cairn-agent cairn-restore cairn-replicator; do
  check "the $c completion is valid bash" bash -n "$WORK/docs/bash-completion/$c"
done
complete_of() {  # complete_of COMMAND WORDS...: the candidates for the last word
  bash -c 'source "$1"; shift; cmd=$1; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1));
           _${cmd//-/_}; echo "${COMPREPLY[*]}"' _ "$WORK/docs/bash-completion/$1" "$@"
}
check "cairn-vault dep<TAB> completes department" test "$(complete_of cairn-vault dep)" = department
check "cairn-restore restore --in<TAB> offers --in-place and --include" \
  bash -c "[[ '$(complete_of cairn-restore restore --in)' == *--in-place* && '$(complete_of cairn-restore restore --in)' == *--include* ]]"
finish
