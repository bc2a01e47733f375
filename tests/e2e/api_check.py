"""The REST API checks, driven by api_test.sh. argv: WORK HTTP_PORT AGENT_PORT ADMIN_PASSWORD BIN."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

WORK, HTTP, AGENT_PORT, ADMIN_PW, BIN = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
CTX = ssl.create_default_context(cafile=f"{WORK}/vault/ca/ca.pem")
CTX.check_hostname = False
passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS: {what}")
    else:
        failed += 1
        print(f"FAIL: {what} {detail}")


def request(method, path, body=None, token=None, cookie=None, csrf=None, headers=None, raw=None):
    conn = http.client.HTTPSConnection("127.0.0.1", HTTP, context=CTX, timeout=30)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if cookie:
        h["Cookie"] = cookie
    if csrf:
        h["X-CSRF-Token"] = csrf
    data = raw
    if body is not None:
        data = json.dumps(body)
        h["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    text = r.read().decode("utf-8")
    out = (r.status, text, r.getheader("Set-Cookie"))
    conn.close()
    return out


def token(user):
    return open(f"{WORK}/token-{user}").read().strip()


TOKENS = {role: token(u) for role, u in
          {"admin": "admin", "operator": "op", "dr": "dr1", "auditor": "aud"}.items()}

# --- The authorization matrix -------------------------------------------------
# The spec, written independently of the server: which roles may use each
# route, and whether an operator is limited to its own department.
snap = {}
for d, host in (("finance", "fin-main"), ("health", "hl-main")):
    st, text, _ = request("GET", f"/api/v1/departments/{d}/snapshots", token=TOKENS["admin"])
    snap[d] = json.loads(text)["snapshots"][0]["id"]
jobs = {}
st, text, _ = request("GET", "/api/v1/jobs", token=TOKENS["admin"])
for j in json.loads(text)["jobs"]:
    jobs.setdefault(j["department"], j["job"])
agents = {}
st, text, _ = request("GET", "/api/v1/agents", token=TOKENS["admin"])
for a in json.loads(text)["agents"]:
    if a["host"].endswith(("-r1", "-r2", "-r3")):
        agents.setdefault(a["department"], []).append(a["serial"])
st, text, _ = request("POST", "/api/v1/tokens", {"label": "victim's"}, token=token("victim"))
victim_token_id = json.loads(text)["token"].split("-")[2].split(".")[0]

# --- Storage: a GC dry run asked through the API, run by the serving vault ----
st, text, _ = request("POST", "/api/v1/storage/gc", {"dry_run": True}, token=TOKENS["admin"])
check("an admin asks for a GC dry run (202)", st == 202)
gc_request = json.loads(text)["request"] if st == 202 else "0000000000000000"
state = {}
for _ in range(100):
    st, text, _ = request("GET", f"/api/v1/storage/requests/{gc_request}", token=TOKENS["admin"])
    state = json.loads(text) if st == 200 else {}
    if state.get("state") == "done":
        break
    time.sleep(0.1)
check("the serving vault runs it and answers the report",
      state.get("state") == "done" and state["result"]["ok"]
      and "departments" in state["result"]["report"])
st, text, _ = request("GET", "/api/v1/storage", token=TOKENS["auditor"])
check("GET /api/v1/storage shows space per department and the last dry run",
      st == 200 and json.loads(text)["gc_dry_run_last"] is not None
      and any(d["department"] == "finance" for d in json.loads(text)["departments"]))
st, _, _ = request("GET", "/api/v1/storage/requests/not-an-id", token=TOKENS["admin"])
check("an unknown request ID is 404", st == 404)

counter = [0]


def unique(prefix):
    counter[0] += 1
    return f"{prefix}{counter[0]}"


ALL = {"admin", "operator", "dr", "auditor"}
# (method, path template, body maker, allowed roles, operator-scoped)
ROUTES = [
    ("GET", "/api/v1/me", None, ALL, False),
    ("GET", "/api/v1/departments", None, ALL, False),
    ("POST", "/api/v1/departments", lambda d: {"name": unique("dept")}, {"admin"}, False),
    ("POST", "/api/v1/departments/{d}/tokens", lambda d: {}, {"admin", "operator"}, True),
    ("GET", "/api/v1/departments/{d}/snapshots", None, ALL, True),
    ("GET", "/api/v1/departments/{d}/snapshots/{snap}", None, ALL, True),
    # File names are the department's data: the roles that may restore.
    ("GET", "/api/v1/departments/{d}/snapshots/{snap}/tree", None, {"admin", "operator", "dr"}, True),
    # No drill host is enrolled: refused by that precondition (400) for the
    # roles that may drill.
    ("POST", "/api/v1/departments/{d}/snapshots/{snap}/drill", lambda d: {},
     {"admin", "operator", "dr"}, True),
    ("POST", "/api/v1/departments/{d}/snapshots/{snap}/restore",
     lambda d: {"agent": {"finance": "fin-main", "health": "hl-main"}[d],
                "target": f"/tmp/cairn-matrix-{unique('r')}"}, {"admin", "operator", "dr"}, True),
    ("GET", "/api/v1/agents", None, ALL, False),
    ("POST", "/api/v1/agents/{agent}/revoke", lambda d: {}, {"admin", "operator"}, True),
    ("GET", "/api/v1/jobs", None, ALL, False),
    ("POST", "/api/v1/jobs", lambda d: {"agent": {"finance": "fin-main", "health": "hl-main"}[d]},
     {"admin", "operator"}, True),
    ("GET", "/api/v1/jobs/{job}", None, ALL, True),
    ("GET", "/api/v1/replication", None, ALL, False),
    # On a primary, promote and demote are refused by their precondition
    # (400) for the roles that may use them, and by the role (403) for others.
    ("POST", "/api/v1/promote", lambda d: {"reason": "matrix"}, {"admin", "dr"}, False),
    ("POST", "/api/v1/demote", lambda d: {"reason": "matrix"}, {"admin", "dr"}, False),
    ("GET", "/api/v1/users", None, {"admin", "auditor"}, False),
    ("POST", "/api/v1/users", lambda d: {"user": unique("u"), "role": "auditor"}, {"admin"}, False),
    ("POST", "/api/v1/users/victim/disable", lambda d: {}, {"admin"}, False),
    ("POST", "/api/v1/users/victim/enable", lambda d: {}, {"admin"}, False),
    ("POST", "/api/v1/users/victim/password", lambda d: {"password": "another long password"},
     {"admin"}, False),
    ("GET", "/api/v1/tokens", None, ALL, False),
    ("POST", "/api/v1/tokens", lambda d: {"label": "matrix"}, ALL, False),
    ("DELETE", "/api/v1/tokens/{victim_token}", None, {"admin"}, False),
    ("GET", "/api/v1/audit", None, {"admin", "auditor"}, False),
    ("GET", "/api/v1/audit/verify", None, {"admin", "auditor"}, False),
    ("GET", "/api/v1/storage", None, ALL, False),
    ("GET", "/api/v1/drills", None, ALL, False),
    ("GET", "/api/v1/compliance", None, ALL, False),
    ("POST", "/api/v1/storage/gc", lambda d: {"dry_run": True}, {"admin"}, False),
    ("POST", "/api/v1/storage/scrub", lambda d: {"no_repair": True}, {"admin"}, False),
    ("GET", "/api/v1/storage/requests/{gc_request}", None, {"admin"}, False),
    ("GET", "/metrics", None, ALL, False),
]
checked = violations = wrongly_refused = 0
revoked = {"finance": 0, "health": 0}
for method, template, make_body, allowed, scoped in ROUTES:
    for role in ["admin", "operator", "dr", "auditor"]:
        for dept in (["finance", "health"] if scoped else ["finance"]):
            path = template.replace("{d}", dept).replace("{snap}", snap[dept]).replace(
                "{job}", str(jobs[dept])).replace("{victim_token}", victim_token_id).replace(
                "{gc_request}", gc_request)
            if "{agent}" in path:
                path = path.replace("{agent}", agents[dept][min(revoked[dept], 2)])
            may = role in allowed and not (scoped and role == "operator" and dept != "finance")
            body = make_body(dept) if make_body else None
            st, text, _ = request(method, path, body, token=TOKENS[role])
            checked += 1
            if may:
                # Promote/demote on a primary: allowed, refused by precondition.
                ok = 200 <= st < 300 or (template.endswith(("promote", "demote", "drill"))
                                         and st == 400)
                if not ok:
                    wrongly_refused += 1
                    print(f"  wrongly refused: {role} {method} {path} -> {st} {text[:120]}")
                elif "{agent}" in template:
                    revoked[dept] += 1
            else:
                if 200 <= st < 300 or st not in (401, 403, 404):
                    violations += 1
                    print(f"  VIOLATION: {role} {method} {path} -> {st} {text[:120]}")
                if scoped and role == "operator" and dept != "finance" and st != 404:
                    violations += 1
                    print(f"  VIOLATION (probing): {role} {method} {path} -> {st}, not 404")
        # No session at all, and a bad token.
        path = template.replace("{d}", "finance").replace("{snap}", snap["finance"]).replace(
            "{job}", str(jobs["finance"])).replace("{victim_token}", victim_token_id).replace(
            "{agent}", agents["finance"][0]).replace("{gc_request}", gc_request)
        for tok in (None, "cairn-api-0000000000000000.00"):
            st, _, _ = request(method, path, make_body("finance") if make_body else None, token=tok)
            checked += 1
            if st != 401:
                violations += 1
                print(f"  VIOLATION: {'no session' if tok is None else 'bad token'} {method} {path} -> {st}")
print(f"authorization matrix: {checked} requests, {violations} violations let through, "
      f"{wrongly_refused} allowed requests refused")
check(f"authorization matrix of {checked} requests lets 0 violations through", violations == 0)
check("and refuses none of the allowed requests", wrongly_refused == 0)
# --- A snapshot's files, a drill and a source's backup from the console ------
from urllib.parse import quote
tree = f"/api/v1/departments/finance/snapshots/{snap['finance']}/tree"
st, text, _ = request("GET", f"{tree}?path={quote(WORK + '/src')}", token=TOKENS["operator"])
entries = json.loads(text)["entries"] if st == 200 else []
check("the tree of a snapshot's directory lists its file with its size",
      any(e["name"] == "f" and e["type"] == "file" and e["size"] == 5 for e in entries), text[:200])
st, text, _ = request("GET", tree, token=TOKENS["operator"])
check("the root lists the first path component",
      st == 200 and [e["name"] for e in json.loads(text)["entries"]] == [WORK.split("/")[1]], text[:200])
st, _, _ = request("GET", f"{tree}?path={quote(WORK + '/src/f')}", token=TOKENS["operator"])
check("a path that is not a directory is 404", st == 404)
st, text, _ = request("POST", f"/api/v1/departments/finance/snapshots/{snap['finance']}/drill", {},
                      token=TOKENS["operator"])
check("a drill with no drill host is refused, saying how to enrol one",
      st == 400 and "--drill-host" in text, text[:200])
st, text, _ = request("GET", "/api/v1/audit?action=snapshot.browse", token=TOKENS["auditor"])
check("browsing is on the audit trail", st == 200 and "snapshot.browse" in text)
restore = f"/api/v1/departments/finance/snapshots/{snap['finance']}/restore"
st, text, _ = request("POST", restore, {"agent": "fin-main", "target": "relative/dir"},
                      token=TOKENS["operator"])
check("a restore into a relative path is refused", st == 400 and "absolute" in text, text[:200])
st, text, _ = request("POST", restore, {"agent": "hl-main", "target": "/tmp/x"}, token=TOKENS["admin"])
check("a restore onto another department's agent is refused", st == 404, f"{st} {text[:200]}")
st, text, _ = request("POST", restore, {"agent": "fin-main", "target": "/tmp/cairn-api-restore"},
                      token=TOKENS["operator"])
job = json.loads(text) if st == 201 else {}
check("a restore job is queued for the agent, with its snapshot and target",
      job.get("kind") == "restore" and job.get("restore_target") == "/tmp/cairn-api-restore"
      and job.get("restore_snapshot") == snap["finance"], text[:300])
st, _, _ = request("POST", "/api/v1/jobs", {"source": 999}, token=TOKENS["operator"])
check("a backup of an unknown source is 404", st == 404)

st, text, _ = request("GET", "/api/v1/departments", token=TOKENS["operator"])
check("an operator sees only its departments",
      [d["name"] for d in json.loads(text)["departments"]] == ["finance"])

# --- Sessions, CSRF, expiry ----------------------------------------------------
st, text, cookie = request("POST", "/api/v1/login", {"user": "op", "password": "password-of-op"})
check("login answers 200 with a CSRF token", st == 200 and "csrf_token" in json.loads(text))
check("the session cookie is HttpOnly, Secure and SameSite=Strict",
      cookie and "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie)
csrf = json.loads(text)["csrf_token"]
session = cookie.split(";")[0]
st, _, _ = request("GET", "/api/v1/me", cookie=session)
check("a session reads", st == 200)
st, _, _ = request("POST", "/api/v1/tokens", {"label": "x"}, cookie=session)
check("a write with the cookie but no CSRF token is refused (403)", st == 403)
st, _, _ = request("POST", "/api/v1/tokens", {"label": "x"}, cookie=session, csrf=csrf)
check("with the CSRF token it is accepted", st == 201)
time.sleep(4)  # --console-session-idle 3
st, _, _ = request("GET", "/api/v1/me", cookie=session)
check("an expired session is refused (401)", st == 401)
st, text, cookie = request("POST", "/api/v1/login", {"user": "op", "password": "password-of-op"})
session, csrf = cookie.split(";")[0], json.loads(text)["csrf_token"]
st, _, _ = request("POST", "/api/v1/logout", cookie=session, csrf=csrf)
st2, _, _ = request("GET", "/api/v1/me", cookie=session)
check("logout ends the session", st == 200 and st2 == 401)

# --- Login throttling -----------------------------------------------------------
codes = []
for i in range(20):
    st, _, _ = request("POST", "/api/v1/login", {"user": "dr1", "password": f"wrong-{i}"})
    codes.append(st)
check(f"20 wrong passwords: refused (401), then throttled (429): {codes}",
      codes[:3] == [401, 401, 401] and 429 in codes and all(c in (401, 429) for c in codes))
st, _, _ = request("POST", "/api/v1/login", {"user": "dr1", "password": "password-of-dr1"})
check("during the back-off even the right password waits (429)", st == 429)
audit = subprocess.run([f"{BIN}/vault/cairn-vault", "audit", "list", "--data", f"{WORK}/vault",
                        "--action", "user.login_failed", "--json"], capture_output=True, text=True)
failures = [e for e in json.loads(audit.stdout)["entries"] if e["object"] == "dr1"]
check(f"every failed attempt is audited ({len(failures)} entries)", len(failures) >= 20)
# The back-off doubles from 1 s per failure past the third: wait it out.
deadline = time.time() + 330
ok = False
while time.time() < deadline:
    st, _, _ = request("POST", "/api/v1/login", {"user": "dr1", "password": "password-of-dr1"})
    if st == 200:
        ok = True
        break
    time.sleep(2)
check("after the back-off the right password works", ok)

# --- /metrics -----------------------------------------------------------------------
from prometheus_client.parser import text_string_to_metric_families
st, text, _ = request("GET", "/metrics", token=TOKENS["auditor"])
try:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    parsed = True
except Exception as e:  # noqa: BLE001
    parsed, families = False, {}
    print("parse error:", e)
check("/metrics passes Prometheus's text-format parser", st == 200 and parsed)
for name in ["cairn_department_stored_bytes", "cairn_department_snapshots",
             "cairn_source_newest_snapshot_age_seconds", "cairn_vault_connections",
             "cairn_vault_index_entries", "cairn_vault_disk_free_bytes",
             "cairn_department_damaged_snapshots"]:
    check(f"/metrics has {name}", name in families or name.removesuffix("_total") in families)
stored = [s.value for s in families["cairn_department_stored_bytes"].samples
          if s.labels.get("department") == "finance"] if families else []
check("finance's stored bytes are counted", stored and stored[0] > 0)

# --- Bad HTTP input ---------------------------------------------------------------------
def raw_request(payload):
    s = CTX.wrap_socket(socket.create_connection(("127.0.0.1", HTTP), timeout=20))
    s.sendall(payload)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError, ssl.SSLError):
        pass
    s.close()
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return int(line.split()[1]) if line.startswith("HTTP/") else 0

st = raw_request(b"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 5000000\r\n\r\n" + b"x" * 100)
check(f"an oversized body is refused before it is read (413): {st}", st == 413)
st = raw_request(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
check(f"oversized headers are refused (431): {st}", st == 431)
st = raw_request(b"GET /api/../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
check(f"a '..' in the URL is refused (400): {st}", st == 400)
st = raw_request(b"GET /api/v1/%2e%2e/me HTTP/1.1\r\nHost: x\r\n\r\n")
check(f"an encoded '..' is refused (400): {st}", st == 400)
st = raw_request(b"NONSENSE\r\n\r\n")
check(f"a malformed request line is refused (400): {st}", st == 400)
st, text, _ = request("POST", "/api/v1/departments", raw="{not json", token=TOKENS["admin"],
                      headers={"Content-Type": "application/json"})
check(f"malformed JSON is refused (400): {st}", st == 400)
st, text, _ = request("POST", "/api/v1/departments", {"name": "x1", "evil": True}, token=TOKENS["admin"])
check(f"an unknown field is refused (400) and named: {st}", st == 400 and "evil" in text)
st, text, _ = request("POST", "/api/v1/departments", raw="name=x", token=TOKENS["admin"],
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
check(f"a body that is not JSON is refused (415): {st}", st == 415)
# A slow client: a request that never finishes is cut.
s = CTX.wrap_socket(socket.create_connection(("127.0.0.1", HTTP), timeout=40))
s.sendall(b"GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
t0 = time.time()
try:
    got = s.recv(65536)
except (socket.timeout, ConnectionResetError, ssl.SSLError):
    got = b""
check(f"a slow client is cut off ({time.time() - t0:.0f} s)", time.time() - t0 < 30)
s.close()
# A flood of connections, while an agent backs up.
flood = []
for _ in range(300):
    try:
        flood.append(socket.create_connection(("127.0.0.1", HTTP), timeout=5))
    except OSError:
        break
backup = subprocess.run([f"{BIN}/agent/cairn-agent", "backup", "--state", f"{WORK}/agent-fin-main",
                         f"{WORK}/src", "--json"], capture_output=True, text=True, timeout=60)
check("an agent backs up while the REST listener is flooded", backup.returncode == 0)
for c in flood:
    c.close()
time.sleep(1)
st, _, _ = request("GET", "/api/v1/me", token=TOKENS["admin"])
check("the API answers again after the flood", st == 200)

print(f"{passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
