"""The command-line conformance matrix, driven by cli_conformance_test.sh.

argv: BIN WORK PORT DOWN_PORT. Prints PASS/FAIL lines and "N passed, N failed".
"""
import json
import os
import subprocess
import sys

BIN, WORK, PORT, DOWN = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
VAULT = f"{BIN}/vault/cairn-vault"
AGENT = f"{BIN}/agent/cairn-agent"
RESTORE = f"{BIN}/restore/cairn-restore"
REPLICATOR = f"{BIN}/replicator/cairn-replicator"
DATA = f"{WORK}/vault"
STATE = f"{WORK}/agent"
passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {what}")
    else:
        failed += 1
        print(f"FAIL: {what} {detail}")


def run(*args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(list(args), capture_output=True, env=e, timeout=60)
    return p.returncode, p.stdout, p.stderr


def json_ok(out):
    try:
        text = out.decode("utf-8")  # must be valid UTF-8
        lines = [l for l in text.splitlines() if l.strip()]
        return len(lines) == 1 and isinstance(json.loads(lines[0]), dict)
    except (UnicodeDecodeError, ValueError):
        return False


COMMANDS = {
    VAULT: ["init", "serve", "department create", "department list", "token create", "promote",
            "demote", "snapshot list", "agent list", "agent revoke", "job start", "job list",
            "report verify", "report compliance", "report monthly", "report drills"],
    AGENT: ["enroll", "backup", "run"],
    RESTORE: ["snapshots", "ls", "restore", "drill", "plan run"],
    REPLICATOR: ["enroll", "run"],
}

for binary, commands in COMMANDS.items():
    name = os.path.basename(binary)
    rc, out, _ = run(binary, "--version")
    check(f"{name} --version exits 0 and names itself", rc == 0 and out.decode().startswith(name))
    rc, out, _ = run(binary, "--help")
    check(f"{name} --help lists the exit codes", rc == 0 and b"Exit codes" in out)
    rc, out, err = run(binary, "--no-such-flag", "--json")
    check(f"{name}: an unknown flag exits 2 with a JSON error",
          rc == 2 and json_ok(out) and json.loads(out)["ok"] is False, f"rc={rc} out={out!r}")
    for command in commands:
        words = command.split()
        rc, out, _ = run(binary, *words, "--help")
        check(f"{name} {command} --help exits 0 with an example and the exit codes",
              rc == 0 and b"Example" in out and b"Exit codes" in out, f"rc={rc}")
        rc, out, err = run(binary, *words, "--bogus", "--json")
        check(f"{name} {command}: a usage error exits 2 with a JSON error",
              rc == 2 and json_ok(out), f"rc={rc} out={out!r} err={err[-200:]!r}")

# --log-level after the subcommand; -q and -v.
rc, out, _ = run(VAULT, "department", "list", "--data", DATA, "--log-level", "error", "--json")
check("--log-level is accepted after the subcommand", rc == 0 and json_ok(out))
rc, out, _ = run(VAULT, "-q", "department", "list", "--data", DATA, "--json")
check("-q is accepted", rc == 0 and json_ok(out))
# Environment variables for what users type every time.
rc, out, _ = run(VAULT, "department", "list", "--json", env={"CAIRN_DATA": DATA})
check("CAIRN_DATA stands for --data", rc == 0 and json_ok(out))
rc, out, _ = run(RESTORE, "snapshots", "--json", env={"CAIRN_STATE": STATE})
check("CAIRN_STATE stands for --state", rc == 0 and json_ok(out))

# Valid JSON from every command that reports (non-UTF-8 names in the tree).
reports = [
    [VAULT, "department", "list", "--data", DATA, "--json"],
    [VAULT, "snapshot", "list", "--department", "finance", "--data", DATA, "--json"],
    [VAULT, "agent", "list", "--data", DATA, "--json"],
    [VAULT, "job", "list", "--data", DATA, "--json"],
    [VAULT, "token", "create", "--department", "finance", "--data", DATA, "--json"],
    [RESTORE, "snapshots", "--state", STATE, "--json"],
    [RESTORE, "ls", "latest", WORK.lstrip("/") + "/src", "--state", STATE, "--json"],
    [RESTORE, "restore", "latest", "--state", STATE, "--verify-only", "--json"],
    [AGENT, "backup", "--state", STATE, f"{WORK}/src", "--json"],
]
for cmd in reports:
    rc, out, err = run(*cmd)
    check(f"{os.path.basename(cmd[0])} {cmd[1]}: exit 0 and one valid JSON object",
          rc == 0 and json_ok(out), f"rc={rc} err={err[-200:]!r}")

# Progress as JSON lines: status messages, then one summary.
def lines_ok(out):
    try:
        msgs = [json.loads(l) for l in out.decode("utf-8").splitlines() if l.strip()]
    except (UnicodeDecodeError, ValueError):
        return False
    return (len(msgs) >= 1 and msgs[-1].get("message_type") == "summary" and
            all(m.get("message_type") == "status" for m in msgs[:-1]))

rc, out, _ = run(AGENT, "backup", "--state", STATE, f"{WORK}/src", "--json-lines")
check("backup --json-lines: status lines, then a summary", rc == 0 and lines_ok(out))
rc, out, _ = run(RESTORE, "restore", "latest", "--state", STATE, "--verify-only", "--json-lines")
check("restore --json-lines: status lines, then a summary", rc == 0 and lines_ok(out))

# The documented exit codes.
rc, out, _ = run(RESTORE, "snapshots", "--state", STATE, "--vault", f"127.0.0.1:{DOWN}", "--json")
check("vault down: exit 4, with a JSON error", rc == 4 and json_ok(out), f"rc={rc}")
rc, out, _ = run(RESTORE, "restore", "ffffffff", "--state", STATE, "--verify-only", "--json")
check("a snapshot that does not exist: exit 5", rc == 5 and json_ok(out), f"rc={rc}")
rc, out, _ = run(VAULT, "snapshot", "list", "--department", "nowhere", "--data", DATA, "--json")
check("a department that does not exist: exit 5", rc == 5 and json_ok(out), f"rc={rc}")
rc, out, _ = run(VAULT, "department", "list", "--data", f"{WORK}/not-a-vault", "--json")
check("a data directory that is not a vault: exit 5", rc == 5 and json_ok(out), f"rc={rc}")

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
