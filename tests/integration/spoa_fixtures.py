"""Fixtures and helpers for gatehouse-spoa and HAProxy tests.

* A raw SPOP client (HAProxy's varint, frames, typed data) to talk to the
  agent directly, as HAProxy 2.6 does.
* Stand-in mailbox servers: small threaded HTTP servers on loopback that
  answer every request with their own name (and the X-Forwarded-* they saw).
* spoa_factory: start gatehouse-spoa on a config; haproxy_factory: start
  Debian's haproxy with haproxy/haproxy.cfg, the generated pool backend and
  allowed-destination list, on free ports.

Import from tests: ``from spoa_fixtures import *`` (pytest picks up the
fixtures defined here).
"""
import base64
import http.server
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import urllib.request

import pytest

from gh import procs as gh_procs
from gh import wait as gh_wait
from gh.unixcmd import unix_cmd
from gh.cli import REPO
from gh.ports import free_port, wait_listening
from gh.slapd import gen_ldif

# --------------------------------------------------------------------------
# SPOP client


def varint(v):
    """Encode <v> as HAProxy's varint."""
    if v < 240:
        return bytes([v])
    out = [(v & 0xff) | 0xf0]
    v = (v - 240) >> 4
    while v >= 128:
        out.append((v & 0xff) | 0x80)
        v = (v - 128) >> 7
    out.append(v)
    return bytes(out)


def read_varint(b, i):
    v = b[i]
    i += 1
    if v < 240:
        return v, i
    r = 4
    while True:
        x = b[i]
        i += 1
        v += x << r
        r += 7
        if x < 128:
            return v, i


def sstr(s):
    """A SPOP string: varint length and bytes."""
    if isinstance(s, str):
        s = s.encode()
    return varint(len(s)) + s


def typed(v):
    """Encode a Python value as SPOP typed data."""
    if v is None:
        return b"\x00"
    if isinstance(v, bool):
        return b"\x11" if v else b"\x01"
    if isinstance(v, int):
        return b"\x04" + varint(v & 0xffffffffffffffff)
    if isinstance(v, tuple) and v[0] == "ip":
        packed = socket.inet_pton(socket.AF_INET6 if ":" in v[1] else socket.AF_INET, v[1])
        return (b"\x07" if len(packed) == 16 else b"\x06") + packed
    return b"\x08" + sstr(v)


def frame(ftype, payload, sid=0, fid=0, flags=1):
    body = bytes([ftype]) + struct.pack(">I", flags) + varint(sid) + varint(fid) + payload
    return struct.pack(">I", len(body)) + body


def hello(max_frame=16380, caps="pipelining,async", healthcheck=False):
    p = sstr("supported-versions") + typed("2.0") + sstr("max-frame-size") + \
        b"\x03" + varint(max_frame) + sstr("capabilities") + typed(caps)
    if healthcheck:
        p += sstr("healthcheck") + typed(True)
    else:
        p += sstr("engine-id") + typed("cd7e5f18-f22d-4ee6-996d-8670ec3d1a07")
    return frame(1, p)


def notify(sid, fid, messages):
    """messages: [(name, [(arg, value), ...]), ...]"""
    p = b""
    for name, args in messages:
        p += sstr(name) + bytes([len(args)])
        for k, v in args:
            p += sstr(k) + typed(v)
    return frame(3, p, sid, fid)


def haproxy_disconnect(status=0, msg="normal"):
    return frame(2, sstr("status-code") + b"\x03" + varint(status) + sstr("message") + typed(msg))


def decode_typed(b, i):
    t = b[i] & 0x0f
    fl = b[i] >> 4
    i += 1
    if t == 0:
        return None, i
    if t == 1:
        return bool(fl & 1), i
    if 2 <= t <= 5:
        v, i = read_varint(b, i)
        if v >= 1 << 63:
            v -= 1 << 64
        return v, i
    if t == 6:
        return socket.inet_ntop(socket.AF_INET, b[i:i + 4]), i + 4
    if t == 7:
        return socket.inet_ntop(socket.AF_INET6, b[i:i + 16]), i + 16
    n, i = read_varint(b, i)
    s = b[i:i + n]
    return (s.decode("utf-8", "replace") if t == 8 else s), i + n


class Frame:
    def __init__(self, raw):
        self.raw = raw
        self.type = raw[0]
        self.flags = struct.unpack(">I", raw[1:5])[0]
        self.sid, i = read_varint(raw, 5)
        self.fid, i = read_varint(raw, i)
        self.payload = raw[i:]

    def kv(self):
        """Decode a KV-list payload (HELLO, DISCONNECT)."""
        out, i, b = {}, 0, self.payload
        while i < len(b):
            n, i = read_varint(b, i)
            k = b[i:i + n].decode()
            i += n
            out[k], i = decode_typed(b, i)
        return out

    def actions(self):
        """Decode an ACK's set-var actions: {name: value}."""
        out, i, b = {}, 0, self.payload
        while i < len(b):
            act, nargs, scope = b[i], b[i + 1], b[i + 2]
            assert act == 1 and nargs == 3 and scope == 2, b[i:i + 3]
            i += 3
            n, i = read_varint(b, i)
            k = b[i:i + n].decode()
            i += n
            out[k], i = decode_typed(b, i)
        return out


class SpopClient:
    """One SPOP connection to the agent, speaking as HAProxy does."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self, timeout=None):
        """Return the next Frame, or None at EOF."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                assert 7 <= n <= 16380, "agent sent a frame of length %d" % n
                if len(self.buf) >= 4 + n:
                    raw, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return Frame(raw)
            chunk = self.sock.recv(65536)
            if not chunk:
                assert self.buf == b"", "partial frame at EOF"
                return None
            self.buf += chunk

    def handshake(self, max_frame=16380):
        self.send(hello(max_frame))
        f = self.recv_frame()
        assert f is not None and f.type == 101, f
        return f.kv()

    def closed(self, timeout=3.0):
        """Tell whether the agent closes the connection (EOF) in time."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def route_args(path="/", query="", token=None, auth=None, ip="192.0.2.7", host="mail.example.com"):
    return [("ip", ("ip", ip)), ("host", host), ("path", path), ("query", query),
            ("token", token), ("auth", auth), ("proto", "http")]


# --------------------------------------------------------------------------
# Stand-in mailbox servers


class _MboxHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _refuses(self, data):
        """With mbox_auth set, tell whether the request carries credentials
        (a login form's username/password, or Basic) that are wrong: the
        password of the seed directory's account (gen_ldif.password_for)."""
        if not getattr(self.server, "mbox_auth", False):
            return False
        user = pw = None
        auth = self.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                user, _, pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                return True
        else:
            # as a servlet reads parameters: the query string's first
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            form = urllib.parse.parse_qs(data.decode("utf-8", "replace")) \
                if self.command == "POST" and data else {}
            if "username" in query or "username" in form:
                user = (query.get("username") or form["username"])[0]
                pw = (query.get("password") or form.get("password") or [""])[0]
        return user is not None and pw != gen_ldif.password_for(user.strip())

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        body = json.dumps({"server": self.server.mbox_name, "path": self.path,
                           "xff": self.headers.get("X-Forwarded-For"),
                           "xfp": self.headers.get("X-Forwarded-Proto")}).encode()
        status = 401 if self._refuses(data) else self.server.mbox_status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Mailbox", self.server.mbox_name)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PROPFIND = do_OPTIONS = _answer

    def log_message(self, *a):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass   # health checks and aborted clients reset connections


class Mailbox:
    """A threaded HTTP server answering with its name <name>; HTTPS only
    with the certificate chain and key of PEM file <pem>."""

    def __init__(self, name, host="127.0.0.1", port=None, status=200, pem=None):
        self.name, self.host = name, host
        self.port = port or free_port(host)
        self.httpd = _QuietServer((host, self.port), _MboxHandler)
        if pem:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pem)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.httpd.mbox_name = name
        self.httpd.mbox_status = status
        self.httpd.mbox_auth = False    # True: refuse wrong passwords with 401
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mailboxes():
    """Three stand-in mailbox servers: {"mbox1": Mailbox, ...}."""
    made = {n: Mailbox(n) for n in ("mbox1", "mbox2", "mbox3")}
    yield made
    for m in made.values():
        m.stop()


def server_table(mailboxes):
    """[server] sections for make_conf(servers=...) from Mailbox objects."""
    return {n: {"address": m.host, "http": m.port, "https": m.port} for n, m in mailboxes.items()}


# --------------------------------------------------------------------------
# gatehouse-spoa


class Spoa:
    """A running gatehouse-spoa: .port (SPOP), .metrics_port, .proc."""

    def __init__(self, exe, conf, port, metrics_port, d):
        self.conf, self.port, self.metrics_port = conf, port, metrics_port
        self.proc = gh_procs.Proc("gatehouse-spoa", [exe, "-f", "-c", conf],
                                  os.path.join(d, "spoa-%d.log" % port))
        wait_listening(port, proc=self.proc)
        wait_listening(metrics_port, proc=self.proc)

    def metrics(self):
        """Return {metric line name: value} from the Prometheus endpoint."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def stop(self, sig=signal.SIGTERM):
        return self.proc.stop(sig=sig)


@pytest.fixture
def spoa_factory(gh_bin, make_conf, gh_tmp):
    """factory(ldap=[...], memcached=[...], servers=..., spoa={...}, **secs)
    -> Spoa listening on a free port (its config written by make_conf)."""
    exe = gh_bin("gatehouse-spoa")
    made = []

    def make(port=None, spoa=None, **kw):
        port = port or free_port()
        mport = free_port()
        opts = {"listen": "127.0.0.1:%d" % port, "metrics": "127.0.0.1:%d" % mport,
                "threads": 4, "deadline": "300ms"}
        opts.update(spoa or {})
        conf = make_conf(spoa=opts, **kw)
        s = Spoa(exe, conf, port, mport, os.path.dirname(conf))
        made.append(s)
        return s

    yield make
    gh_procs.stop_many([s.proc for s in made])


# --------------------------------------------------------------------------
# HAProxy


def write_pool(path, mailboxes, admin=None):
    """Write the generated server list: backend be_pool over the mailbox
    servers' http ports, balanced by client IP hash, and backend be_admin
    over <admin> ({name: Mailbox} serving the admin ports), TLS verified with
    the server's name when HAProxy runs with GH_UPSTREAM_PROTO=https."""
    lines = ["# generated: mailbox servers for the client-IP-hash pool",
             "backend be_pool", "    balance source", "    hash-type consistent"]
    for n, m in sorted(mailboxes.items()):
        lines.append("    server %s %s:%d check inter 2s" % (n, m.host, m.port))
    lines += ["", "# generated: admin console servers (the frontend on GH_ADMIN_BIND)",
              "backend be_admin", "    balance source", "    hash-type consistent"]
    if admin:
        tls = (' ssl verify required ca-file "${GH_UPSTREAM_CA-/etc/ssl/certs/'
               'ca-certificates.crt}" sni str(%s) verifyhost %s check-sni %s')
        lines.append('.if streq("${GH_UPSTREAM_PROTO-http}",https)')
        for n, m in sorted(admin.items()):
            lines.append("    server %s %s:%d check inter 2s" % (n, m.host, m.port) +
                         tls % (n, n, n))
        lines.append(".else")
        for n, m in sorted(admin.items()):
            lines.append("    server %s %s:%d check inter 2s" % (n, m.host, m.port))
        lines.append(".endif")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_allowed(path, mailboxes):
    """Write the allowed destinations ("ip:port", one a line)."""
    with open(path, "w") as f:
        for m in mailboxes.values():
            f.write("%s:%d\n" % (m.host, m.port))


def write_routes(routes_path, index_path, mailboxes):
    """Write the route table's maps: "N ip|http|https|name" (N = 1 + the
    server's place by name) and "ip:port|name N" for each of its ports."""
    with open(routes_path, "w") as r, open(index_path, "w") as x:
        for i, (n, m) in enumerate(sorted(mailboxes.items()), 1):
            r.write("%d %s|%d|%d|%s\n" % (i, m.host, m.port, m.port, n))
            x.write("%s:%d|%s %d\n" % (m.host, m.port, n, i))


class Haproxy:
    """A running haproxy: .http_port, .https_port, .proc, .log, .admin_sock."""

    def __init__(self, d, mailboxes, agents, certs_dir, processing="500ms", extra_env=None,
                 extra_cfg=None, master=False, host="127.0.0.1", admin=None, generated=None):
        self.d = d
        self.host = host     # its listeners' address (a node of a cluster has its own)
        self.http_port, self.https_port = free_port(host), free_port(host)
        # <generated>: a directory `gatehouse haproxy-servers -o` wrote;
        # otherwise the twins above write the same files from <mailboxes>
        # (and <admin>, the admin console's servers)
        gd = generated or d
        pool = os.path.join(gd, "gatehouse-servers.cfg")
        allowed = os.path.join(gd, "allowed-dst.lst")
        self.routes = os.path.join(gd, "routes.map")
        self.route_index = os.path.join(gd, "route-index.map")
        if generated is None:
            write_pool(pool, mailboxes, admin)
            write_allowed(allowed, mailboxes)
            write_routes(self.routes, self.route_index, mailboxes)
        env = dict(os.environ)
        env.update({
            "GH_HTTP_BIND": "%s:%d" % (host, self.http_port),
            "GH_HTTPS_BIND": "%s:%d" % (host, self.https_port),
            "GH_CERTS": certs_dir,
            "GH_ERRORS": os.path.join(REPO, "haproxy", "errors"),
            "GH_SPOE_CONF": os.path.join(REPO, "haproxy", "spoe-gatehouse.conf"),
            "GH_SPOE_PROCESSING": processing,
            "GH_AGENT1": agents[0],
            "GH_AGENT2": agents[1] if len(agents) > 1 else agents[0],
            "GH_ALLOWED_DST": allowed,
            "GH_ROUTES": self.routes,
            "GH_ROUTE_INDEX": self.route_index,
            "GH_LOG": "stdout",
            "GH_HTTPS_REDIRECT": "no",
            "GH_ADMIN_SOCK": os.path.join(d, "admin.sock"),
        })
        env.update(extra_env or {})
        self.env = env
        argv = ["/usr/sbin/haproxy", "-db", "-f", os.path.join(REPO, "haproxy", "haproxy.cfg"),
                "-f", pool]
        if extra_cfg:
            # e.g. a second "global" section (nbthread) for one test
            extra = os.path.join(d, "extra.cfg")
            with open(extra, "w") as f:
                f.write(extra_cfg)
            argv += ["-f", extra]
        self.admin_sock = env["GH_ADMIN_SOCK"]   # runtime API (level admin)
        self.master_sock = None
        if master:
            # master-worker mode with the master CLI, as Debian runs it
            self.master_sock = os.path.join(d, "master.sock")
            argv += ["-W", "-S", self.master_sock]
        self.log = os.path.join(d, "haproxy.log")
        self.proc = gh_procs.Proc("haproxy", argv, self.log, env=env)
        wait_listening(self.http_port, host, proc=self.proc)
        wait_listening(self.https_port, host, proc=self.proc)

    def url(self, path, https=False):
        if https:
            return "https://%s:%d%s" % (self.host, self.https_port, path)
        return "http://%s:%d%s" % (self.host, self.http_port, path)

    def get(self, path, headers=None, method="GET", data=None, timeout=10):
        """Plain HTTP request through haproxy: (status, headers, parsed body or text)."""
        req = urllib.request.Request(self.url(path), headers=headers or {}, method=method,
                                     data=data)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read()
                st, hd = r.status, r.headers
        except urllib.error.HTTPError as e:
            body, st, hd = e.read(), e.code, e.headers
        try:
            return st, hd, json.loads(body)
        except ValueError:
            return st, hd, body.decode("utf-8", "replace")

    def master_cmd(self, cmd, timeout=20.0):
        """Send <cmd> to the master CLI; return its answer. While a reload
        re-executes the master its socket refuses or resets connections for
        a moment: a read-only command is tried again until <timeout>; a
        "reload" whose connection the re-executing master resets has been
        taken, and is never sent twice."""
        end = time.monotonic() + timeout
        while True:
            try:
                return self._master_once(cmd)
            except (ConnectionRefusedError, FileNotFoundError):
                pass                      # nothing was sent: always safe to retry
            except (ConnectionResetError, BrokenPipeError):
                if cmd == "reload":
                    return ""
            if time.monotonic() > end:
                raise AssertionError("master CLI of haproxy did not answer %r within %.0f s"
                                     % (cmd, timeout))
            time.sleep(0.05)

    def _master_once(self, cmd):
        return unix_cmd(self.master_sock, cmd, half_close=cmd != "reload")

    def master_reloads(self):
        """Return how often the master has reloaded (from "show proc")."""
        for line in self.master_cmd("show proc").splitlines():
            f = line.split()
            if len(f) > 2 and f[1] == "master" and f[2].isdigit():
                return int(f[2])
        return -1

    def admin(self, cmd, timeout=10):
        """Send <cmd> to the admin socket (runtime API); return the answer."""
        return unix_cmd(self.admin_sock, cmd, timeout=timeout, half_close=False)

    def route_stats(self):
        """Return (hits, misses, used) of the route table."""
        st = {}
        for line in self.admin("show table gh_route_stats").splitlines():
            m = re.search(r"key=(\d+) .*http_req_cnt=(\d+)", line)
            if m:
                st[int(m.group(1))] = int(m.group(2))
        used = re.search(r"used:(\d+)", self.admin("show table gh_routes"))
        return st.get(1, 0), st.get(2, 0), int(used.group(1)) if used else -1

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")


@pytest.fixture
def site_certs(gh_tmp, mbox_certs):
    """A certs/ directory for haproxy: mail.example.com (default, loaded
    first) and mail.example.org."""
    d = os.path.join(gh_tmp, "site-certs-%d" % free_port())
    os.makedirs(d)
    shutil.copy(mbox_certs["mail.example.com"], os.path.join(d, "00-mail.example.com.pem"))
    shutil.copy(mbox_certs["mail.example.org"], os.path.join(d, "mail.example.org.pem"))
    return d


@pytest.fixture
def haproxy_factory(gh_tmp, site_certs):
    """factory(mailboxes, agents=["ip:port", ...], processing="500ms", extra_env=None,
    extra_cfg=None, master=False, admin=None ({name: Mailbox} of the admin
    console), generated=None (a `gatehouse haproxy-servers -o` directory))
    -> Haproxy."""
    made = []

    def make(mailboxes, agents, processing="500ms", extra_env=None, extra_cfg=None,
             master=False, admin=None, generated=None):
        d = os.path.join(gh_tmp, "haproxy-%d" % free_port())
        os.makedirs(d)
        h = Haproxy(d, mailboxes, agents, site_certs, processing, extra_env, extra_cfg, master,
                    admin=admin, generated=generated)
        made.append(h)
        return h

    yield make
    gh_procs.stop_many([h.proc for h in made])


def wait_for(pred, timeout=10.0, step=0.1):
    """Poll <pred>() until true or <timeout>; return its last value."""
    return gh_wait.poll(pred, timeout, step)
