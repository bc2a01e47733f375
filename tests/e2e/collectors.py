#!/usr/bin/python3
"""Test collectors for notify_test.sh, on 127.0.0.1.

  collectors.py syslog PORT OUT [CERT KEY]
                                  an RFC 6587 octet-counting syslog receiver:
                                  appends every RFC 5424 message to OUT, one
                                  per line. SIGTERM stops it the way a
                                  collector stops: it half-closes its
                                  connections, takes what is still in flight,
                                  then closes. With CERT and KEY it speaks
                                  TLS (RFC 5425).
  collectors.py webhook PORT OUT  an HTTP receiver: appends each POST body to
                                  OUT, one per line, and answers 204.
"""
import http.server
import re
import select
import signal
import socket
import ssl
import sys

RFC5424 = re.compile(
    r'^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[cairn@32473 [^\]]*(?:\\\][^\]]*)*\]) (.*)$', re.S)


def syslog(port, out, cert=None, key=None):
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGTERM, stop)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(8)
    conns = {}
    with open(out, "a") as f:
        while not stopping:
            ready, _, _ = select.select([listener] + list(conns), [], [], 0.05)
            for s in ready:
                if s is listener:
                    c, _ = listener.accept()
                    if cert:
                        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                        ctx.load_cert_chain(cert, key)
                        try:
                            c = ctx.wrap_socket(c, server_side=True)
                        except (ssl.SSLError, OSError) as e:
                            print("collector: TLS handshake failed:", e, file=sys.stderr)
                            c.close()
                            continue
                    conns[c] = b""
                    continue
                try:
                    data = s.recv(65536)
                except ssl.SSLError:
                    data = b""
                if not data:
                    s.close()
                    del conns[s]
                    continue
                conns[s] = frames(conns[s] + data, f)
        listener.close()
        for c in list(conns):
            c.shutdown(socket.SHUT_WR)
        # Drain what is in flight until every peer closes or it goes quiet.
        while conns:
            ready, _, _ = select.select(list(conns), [], [], 0.3)
            if not ready:
                break
            for s in ready:
                data = s.recv(65536)
                if not data:
                    s.close()
                    del conns[s]
                else:
                    conns[s] = frames(conns[s] + data, f)
        for c in conns:
            c.close()


def frames(buf, f):
    while True:
        sp = buf.find(b" ")
        if sp < 0:
            return buf
        length = int(buf[:sp])
        if len(buf) < sp + 1 + length:
            return buf
        msg = buf[sp + 1:sp + 1 + length].decode()
        buf = buf[sp + 1 + length:]
        if not RFC5424.match(msg):
            raise SystemExit("not an RFC 5424 message: " + msg[:200])
        f.write(msg.replace("\n", "\\n") + "\n")
        f.flush()


def webhook(port, out):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with open(out, "a") as f:
                f.write(body.decode() + "\n")
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    {"syslog": syslog, "webhook": webhook}[sys.argv[1]](int(sys.argv[2]), *sys.argv[3:])
