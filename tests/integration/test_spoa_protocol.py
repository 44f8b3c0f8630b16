"""gatehouse-spoa spoken to directly over SPOP, as HAProxy 2.6 (and 3.x)
does: health-check HELLO, route lookups through real slapd and memcached,
pipelined out-of-order ACKs, DISCONNECT both ways, RST, malformed and
oversize frames, the deadline, SIGTERM draining and SIGHUP reloading.
"""
import base64
import signal
import socket
import struct
import threading
import time

import pytest

from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import (SpopClient, frame, haproxy_disconnect, hello, notify,
                           route_args, server_table, wait_for)
from gh.ports import free_port


@pytest.fixture
def agent(spoa_factory, slapd_shared, memcached, mailboxes):
    return spoa_factory(ldap=[slapd_shared], memcached=[memcached],
                        servers=server_table(mailboxes))


def ask(c, sid, args, fid=1, msg="route"):
    c.send(notify(sid, fid, [(msg, args)]))
    f = c.recv_frame()
    assert f is not None and f.type == 103, f
    assert (f.sid, f.fid) == (sid, fid)
    return f.actions()


def test_healthcheck_hello_then_close(agent):
    c = SpopClient(agent.port)
    c.send(hello(healthcheck=True))
    f = c.recv_frame()
    assert f.type == 101 and f.flags == 1 and (f.sid, f.fid) == (0, 0)
    kv = f.kv()
    assert kv == {"version": "2.0", "max-frame-size": 16380, "capabilities": "pipelining"}
    assert c.closed()


def test_hello_negotiates_smaller_frame(agent):
    c = SpopClient(agent.port)
    kv = c.handshake(max_frame=1024)
    assert kv["max-frame-size"] == 1024
    assert kv["capabilities"] == "pipelining"


def test_route_by_url_cookie_basic(agent, slapd_shared, mailboxes):
    c = SpopClient(agent.port)
    c.handshake()
    a = ask(c, 2, route_args(path="/home/alice@example.com/inbox"))
    assert a["status"] == "ok" and a["server"] == "mbox1" and a["by"] == "url"
    assert a["ip"] == "127.0.0.1" and a["port"] == mailboxes["mbox1"].port
    assert a["user"] == "alice@example.com"
    # an alias in the URL, with ~
    a = ask(c, 4, route_args(path="/service/home/~robert@example.com/Calendar"))
    assert a["server"] == "mbox2" and a["user"] == "bob@example.com"
    # the ZM_AUTH_TOKEN cookie: carol's account id
    uuid = slapd_shared.entry_uuid("carol@example.org")
    data = ("id=36:%s;exp=13:1196504658160;type=6:zimbra;" % uuid).encode().hex()
    a = ask(c, 6, route_args(path="/zimbra/", token="0_0123abcd_" + data))
    assert a["status"] == "ok" and a["server"] == "mbox3" and a["by"] == "cookie"
    # Basic credentials
    auth = "Basic " + base64.b64encode(b"bob@example.com:whatever").decode()
    a = ask(c, 8, route_args(path="/dav/", auth=auth))
    assert a["server"] == "mbox2" and a["by"] == "basic"
    # ActiveSync User=
    a = ask(c, 10, route_args(path="/Microsoft-Server-ActiveSync",
                              query="Cmd=Sync&User=alice%40example.com&DeviceId=x"))
    assert a["server"] == "mbox1" and a["by"] == "url"


def test_route_without_answer(agent):
    c = SpopClient(agent.port)
    c.handshake()
    # no user: HAProxy may keep that in its route table (keep)
    a = ask(c, 2, route_args(path="/"))
    assert a == {"status": "none", "keep": True}
    a = ask(c, 4, route_args(path="/home/nobody-here@example.com/"))
    assert a["status"] == "unknown" and "ip" not in a and "keep" not in a
    # mallory's host is not a configured server: refused, never routed
    a = ask(c, 6, route_args(path="/home/mallory@example.com/"))
    assert a["status"] == "refused" and "ip" not in a and "keep" not in a


def test_keep_only_what_a_purge_reaches(agent):
    """A route from memcached or LDAP may be kept in HAProxy's route table
    (a purge clears both); one from the in-process cache may lag a purge by
    local_ttl, and is not."""
    c = SpopClient(agent.port)
    c.handshake()
    a = ask(c, 2, route_args(path="/home/bob@example.com/"))
    assert a["status"] == "ok" and a["keep"] is True, a
    a = ask(c, 4, route_args(path="/home/bob@example.com/"))
    assert a["status"] == "ok" and "keep" not in a, a


def test_login_result_answers_in_its_own_variable(agent):
    """login-result runs in HAProxy's response phase: its answer must not
    overwrite txn.gh.status, which the access log shows as the route."""
    c = SpopClient(agent.port)
    c.handshake()
    a = ask(c, 2, [("ip", ("ip", "192.0.2.1")), ("user", "alice@example.com"),
                   ("account", "alice@example.com"), ("status", 200)], msg="login-result")
    assert a == {"result": "ok"}, a


def test_pipelined_acks(agent):
    c = SpopClient(agent.port)
    c.handshake()
    users = ["alice@example.com", "bob@example.com", "carol@example.org",
             "nobody1@example.com"] * 5
    blob = b"".join(notify(100 + 2 * i, 1, [("route", route_args(path="/home/%s/" % u))])
                    for i, u in enumerate(users))
    c.send(blob)   # all at once, as one write: many frames in one read
    seen = {}
    for _ in users:
        f = c.recv_frame()
        assert f.type == 103
        seen[f.sid] = f.actions()
    assert sorted(seen) == [100 + 2 * i for i in range(len(users))]
    for i, u in enumerate(users):
        exp = {"alice@example.com": "mbox1", "bob@example.com": "mbox2",
               "carol@example.org": "mbox3"}.get(u)
        assert seen[100 + 2 * i].get("server") == exp


def test_frames_split_across_writes(agent):
    c = SpopClient(agent.port)
    data = hello() + notify(2, 1, [("route", route_args(path="/home/alice@example.com/"))])
    for b in data:   # one byte at a time
        c.send(bytes([b]))
    assert c.recv_frame().type == 101
    f = c.recv_frame()
    assert f.type == 103 and f.actions()["server"] == "mbox1"


def test_haproxy_disconnect(agent):
    c = SpopClient(agent.port)
    c.handshake()
    c.send(haproxy_disconnect(0, "normal"))
    f = c.recv_frame()
    assert f.type == 102
    assert f.kv()["status-code"] == 0
    assert c.closed()


def test_rst_is_tolerated(agent):
    for _ in range(5):
        c = SpopClient(agent.port)
        c.handshake()
        c.send(notify(2, 1, [("route", route_args(path="/home/alice@example.com/"))]))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    c = SpopClient(agent.port)
    c.handshake()
    assert ask(c, 2, route_args(path="/home/bob@example.com/"))["server"] == "mbox2"
    assert agent.proc.alive()


@pytest.mark.parametrize("data,status", [
    (struct.pack(">I", 0), 4),                                    # zero length
    (struct.pack(">I", 3) + b"\x03\x00\x00", 4),                  # shorter than 7
    (struct.pack(">I", 100000), 3),                               # oversize
    (frame(3, b"\x05route\x01\x01x\x0c"), 4),                     # reserved type 12
    (frame(3, b"\x05route\x07\x01x\x00"), 4),                     # nb-args lies
    (frame(3, b"\xffroute"), 4),                                  # name runs past the end
    (frame(3, b"", flags=0), 10),                                 # fragment (no FIN)
    (frame(0, b""), 10),                                          # continuation frame
    (frame(42, b""), 4),                                          # unknown frame type
])
def test_malformed_frames(agent, data, status):
    c = SpopClient(agent.port)
    c.handshake()
    c.send(data)
    f = c.recv_frame()
    assert f is not None and f.type == 102, f
    assert f.kv()["status-code"] == status
    assert c.closed()
    # and the agent serves the next connection
    c = SpopClient(agent.port)
    c.handshake()
    assert ask(c, 2, route_args(path="/home/alice@example.com/"))["server"] == "mbox1"


def test_notify_before_hello_and_bad_hello(agent):
    c = SpopClient(agent.port)
    c.send(notify(2, 1, [("route", route_args())]))
    f = c.recv_frame()
    assert f.type == 102 and f.kv()["status-code"] == 4
    c = SpopClient(agent.port)
    c.send(frame(1, b"\x12supported-versions\x08\x031.0\x0emax-frame-size\x03\xfc\xf0\x06"
                    b"\x0ccapabilities\x08\x00"))
    f = c.recv_frame()
    assert f.type == 102 and f.kv()["status-code"] == 8


def test_oversize_notify_after_smaller_negotiation(agent):
    c = SpopClient(agent.port)
    c.handshake(max_frame=512)
    c.send(notify(2, 1, [("route", route_args(path="/home/" + "a" * 600 + "/"))]))
    f = c.recv_frame()
    assert f.type == 102 and f.kv()["status-code"] == 3


class SilentLdap:
    """A TCP listener that accepts and never answers (a frozen LDAP)."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                s, _ = self.sock.accept()
                self.conns.append(s)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(2)
        for s in self.conns:
            s.close()
        self.sock.close()


def test_deadline_answers_tempfail_while_ldap_hangs(spoa_factory, memcached, mailboxes):
    # A lookup still waiting for LDAP at the deadline is a temporary
    # failure (HAProxy: 503), not "timeout" (the IP-hash pool, which would
    # send the user to a wrong server).
    frozen = SilentLdap()
    try:
        ag = spoa_factory(ldap=["ldap://127.0.0.1:%d" % frozen.port], memcached=[memcached],
                          servers=server_table(mailboxes), ldap_opts={"timeout": "5s"},
                          spoa={"deadline": "300ms"})
        c = SpopClient(ag.port)
        c.handshake()
        t0 = time.monotonic()
        c.send(notify(2, 1, [("route", route_args(path="/home/alice@example.com/"))]))
        f = c.recv_frame(timeout=3)
        took = time.monotonic() - t0
        assert f.type == 103 and f.actions()["status"] == "tempfail" and "ip" not in f.actions()
        assert 0.25 < took < 1.5, took
        # a request naming no user is answered at once meanwhile
        c.send(notify(4, 1, [("route", route_args(path="/"))]))
        assert c.recv_frame(timeout=1).actions() == {"status": "none", "keep": True}
        assert ag.metrics()["gatehouse_spoa_deadline_total"] >= 1
    finally:
        frozen.close()


def test_deadline_answers_a_found_route(spoa_factory, memcached, mailboxes):
    # A login whose route is cached but whose form user name needs the
    # frozen LDAP: at the deadline the route found is answered (the
    # throttle part fails open as "timeout"), never the IP-hash pool.
    from gh import keys
    frozen = SilentLdap()
    try:
        memcached.set(keys.make("n:", "alice@example.com"), "alice@example.com mbox1", 60)
        ag = spoa_factory(ldap=["ldap://127.0.0.1:%d" % frozen.port], memcached=[memcached],
                          servers=server_table(mailboxes), ldap_opts={"timeout": "5s"},
                          memcached_opts={"local_ttl": "0"}, spoa={"deadline": "300ms"})
        c = SpopClient(ag.port)
        c.handshake()
        args = route_args(path="/home/alice@example.com/") + [("user", "nobody-cached@example.com")]
        t0 = time.monotonic()
        c.send(notify(2, 1, [("login", args)]))
        f = c.recv_frame(timeout=3)
        assert 0.25 < time.monotonic() - t0 < 1.5
        a = f.actions()
        assert a["status"] == "ok" and a["server"] == "mbox1", a
        assert a["port"] == mailboxes["mbox1"].port
        assert a["reason"] == "timeout" and a["throttled"] is False, a
    finally:
        frozen.close()


def test_sigterm_drains(spoa_factory, memcached, mailboxes):
    # A frozen directory keeps the request in flight when SIGTERM comes.
    frozen = SilentLdap()
    try:
        ag = spoa_factory(ldap=["ldap://127.0.0.1:%d" % frozen.port], memcached=[memcached],
                          servers=server_table(mailboxes), ldap_opts={"timeout": "5s"},
                          spoa={"deadline": "800ms"})
        c = SpopClient(ag.port)
        c.handshake()
        idle = SpopClient(ag.port)
        idle.handshake()
        c.send(notify(2, 1, [("route", route_args(path="/home/carol@example.org/"))]))
        # SIGTERM only once the agent holds the request
        assert wait_for(lambda: ag.metrics().get("gatehouse_spoa_notify_total", 0) >= 1, 5)
        ag.proc.signal(signal.SIGTERM)
        # the idle connection is told at once
        f = idle.recv_frame(timeout=3)
        assert f.type == 102 and f.kv()["status-code"] == 0
        # the busy one gets its answer first, then the goodbye
        f = c.recv_frame(timeout=3)
        assert f.type == 103 and f.sid == 2 and f.actions()["status"] == "tempfail"
        f = c.recv_frame(timeout=3)
        assert f.type == 102 and f.kv()["status-code"] == 0
        assert wait_for(lambda: not ag.proc.alive(), 5)
        assert ag.proc.returncode() == 0
    finally:
        frozen.close()


def test_sighup_reloads(spoa_factory, memcached, mailboxes, slapd_shared):
    ag = spoa_factory(ldap=[slapd_shared], memcached=[memcached],
                      servers=server_table(mailboxes))
    c = SpopClient(ag.port)
    c.handshake()
    assert ask(c, 2, route_args(path="/home/alice@example.com/"))["port"] == mailboxes["mbox1"].port
    # move mbox1 to another port in the config, then SIGHUP
    text = open(ag.conf).read().replace("http = %d" % mailboxes["mbox1"].port, "http = 1")
    open(ag.conf, "w").write(text)
    ag.proc.signal(signal.SIGHUP)

    def moved():
        a = ask(c, 4, route_args(path="/home/alice@example.com/"))
        return a.get("port") == 1
    assert wait_for(moved, 5)
    # a broken file is refused and the running configuration kept
    open(ag.conf, "a").write("\n[nonsense]\nx = 1\n")
    ag.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed, keeping the running configuration"
                    in ag.proc.log_tail(), 5), ag.proc.log_tail()
    assert ask(c, 6, route_args(path="/home/alice@example.com/"))["port"] == 1
    assert ag.proc.alive()


def test_sighup_keeps_restart_only_keys_and_counters(spoa_factory, memcached, mailboxes,
                                                     slapd_shared):
    """A reload names what only a restart changes and keeps serving on the
    running listener; the library counters go on from where they were."""
    ag = spoa_factory(ldap=[slapd_shared], memcached=[memcached],
                      servers=server_table(mailboxes), spoa={"threads": 2})
    c = SpopClient(ag.port)
    c.handshake()
    for sid in (2, 4, 6):
        assert ask(c, sid, route_args(path="/home/alice@example.com/"))["port"] == \
            mailboxes["mbox1"].port
    key = "gatehouse_queue_submitted_total"

    def lookups(m):
        return sum(v for k, v in m.items() if k.startswith("gatehouse_lookups_total"))
    before = ag.metrics()
    assert lookups(before) >= 3, before
    text = open(ag.conf).read()
    listen = "listen = 127.0.0.1:%d" % ag.port
    assert listen in text and "threads = 2" in text
    open(ag.conf, "w").write(text.replace(listen, "listen = 127.0.0.1:1")
                             .replace("threads = 2", "threads = 3"))
    ag.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in ag.proc.log_tail(), 5), ag.proc.log_tail()
    log = ag.proc.log_tail()
    assert "[spoa] listen changed: it takes effect at the next restart" in log, log
    assert "[spoa] threads changed" not in log       # applied: a new job queue
    # still served on the running listener, by the new generation
    assert ask(c, 8, route_args(path="/home/alice@example.com/"))["port"] == \
        mailboxes["mbox1"].port
    after = ag.metrics()
    assert lookups(after) >= lookups(before) + 1, (before, after)
    assert after.get(key, 0) >= before.get(key, 0)
