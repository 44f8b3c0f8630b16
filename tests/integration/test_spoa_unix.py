"""The agents on UNIX sockets ([spoa] listen = unix@/path): HAProxy on the
same machine reaches them without the TCP stack (cheaper for both on every
SPOE exchange). Real haproxy 2.6, two gatehouse-spoa agents, slapd,
memcached and stand-in mailbox servers.
"""
import os
import signal
import socket
import stat
import subprocess

from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import server_table, wait_for, free_port

NOTIFY = "gatehouse_spoa_notify_total"
BOB = "bob@example.com"


def unix_agent(spoa_factory, path, **kw):
    """An agent listening on TCP (for the fixture's readiness check) and on
    the UNIX socket <path>."""
    port = free_port()
    return spoa_factory(port=port, spoa={"listen": "127.0.0.1:%d unix@%s" % (port, path)}, **kw)


def test_haproxy_asks_agents_over_unix_sockets(spoa_factory, haproxy_factory, slapd_shared,
                                               memcached, mailboxes, gh_tmp):
    kw = dict(ldap=[slapd_shared], memcached=[memcached], servers=server_table(mailboxes))
    paths = [os.path.join(gh_tmp, "spoa-u%d-%d.sock" % (i, free_port())) for i in (1, 2)]
    agents = [unix_agent(spoa_factory, p, **kw) for p in paths]
    for p in paths:
        st = os.stat(p)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660, oct(st.st_mode)
    # every request asks an agent: no route table
    hp = haproxy_factory(mailboxes, ["unix@" + p for p in paths],
                         extra_env={"GH_ROUTE_TABLE": "off"})
    assert wait_for(lambda: all(a.metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1
                                for a in agents), 10)
    n0 = sum(a.metrics().get(NOTIFY, 0) for a in agents)
    for _ in range(4):
        st, _, body = hp.get("/home/%s/inbox" % BOB)
        assert st == 200 and body["server"] == "mbox2", (st, body)
    assert wait_for(lambda: sum(a.metrics().get(NOTIFY, 0) for a in agents) >= n0 + 4, 5)
    assert "server=mbox2 by=url route=ok" in hp.log_text()
    # the socket file goes when the agent stops
    agents[0].stop()
    assert not os.path.exists(paths[0])


def test_stale_socket_file_is_replaced_other_files_are_not(spoa_factory, slapd_shared, memcached,
                                                           mailboxes, gh_tmp, make_conf, gh_bin):
    kw = dict(ldap=[slapd_shared], memcached=[memcached], servers=server_table(mailboxes))
    path = os.path.join(gh_tmp, "spoa-stale-%d.sock" % free_port())
    a = unix_agent(spoa_factory, path, **kw)
    a.stop(sig=signal.SIGKILL)              # leaves its socket file behind
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    a = unix_agent(spoa_factory, path, **kw)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(path)                     # the new agent took the path over
    finally:
        c.close()
    a.stop()
    # a file that is not a socket is never removed: the agent refuses to start
    with open(path, "w") as f:
        f.write("keep me\n")
    conf = make_conf(spoa={"listen": "unix@%s" % path, "metrics": "127.0.0.1:%d" % free_port()},
                     **kw)
    r = subprocess.run([gh_bin("gatehouse-spoa"), "-f", "-c", conf], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0 and "File exists" in r.stderr, r
    assert open(path).read() == "keep me\n"


def test_listen_unix_path_must_be_absolute(make_conf, gh_bin):
    conf = make_conf(spoa={"listen": "unix@relative.sock"})
    r = subprocess.run([gh_bin("gatehouse-spoa"), "-t", "-c", conf], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0 and "unix@/path" in r.stderr, r
