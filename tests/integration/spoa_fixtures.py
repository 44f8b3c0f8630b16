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
# the HTTP mailbox stand-in and the HAProxy starter live in tools/gh (the demo
# and the benchmarks use them too); tests keep importing them from here
from gh.haproxy import Haproxy, write_allowed, write_pool, write_routes  # noqa: F401
from gh.mailbox import Mailbox, _MboxHandler, _QuietServer  # noqa: F401
from gh.spoa import Spoa  # noqa: F401

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
