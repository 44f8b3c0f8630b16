"""A hung LDAP server (slapd stopped with SIGSTOP, not killed), under
concurrent load with a mix of cached and uncached users (issue 10, item 3).

Before the fix, uncached lookups held every lookup worker for the whole
LDAP timeout, cached lookups queued behind them and missed the agent's
deadline, and HAProxy sent those users to the IP-hash pool: cached users
landed on the wrong server and uncached users on random ones. The rule:
an answer that needs only a cache never waits behind LDAP; once LDAP is
known to be unresponsive, uncached lookups fail fast as temporary failures
(HTTP 503, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP]) until a probe finds
it answering again, without a restart.

The in-process caches are off (local_ttl 0), so that cached answers come
from memcached through the lookup workers: the path that used to queue.
"""
import concurrent.futures as cf
import os
import random
import signal
import time

import pytest

from gh import ports
from mail_fixtures import LineClient, MailProxy, password, proxy_certs, proxy_servers  # noqa: F401
from spoa_fixtures import (haproxy_factory, mailboxes, server_table, site_certs,  # noqa: F401
                           spoa_factory, wait_for)

# An answer that waited behind a hung LDAP lookup takes at least the LDAP
# timeout (3 s); "did not wait" is asserted as under FAST (2 s), a margin a
# loaded machine does not eat.
LDAP_OPTS = {"timeout": "3s", "probe_interval": "300ms"}
FAST = 2.0
NO_LOCAL = {"local_ttl": "0"}
LDAP_ERRORS = 'gatehouse_dependency_errors_total{dependency="ldap"}'
POOL = 16                 # concurrent clients
ROUND_S = 25              # bound on one round of load


def user(i):
    """A seeded generic user and its mailbox server."""
    return "user%04d@%s" % (i, ("example.com", "example.org")[i % 2]), "mbox%d" % (i % 3 + 1)


# cached: warmed before the freeze; uncached: never looked up before the
# freeze (each round takes fresh ones, so none is cached by a failure)
CACHED = [user(i) for i in range(100, 124)]
UNCACHED = [[user(i) for i in range(200 + 40 * r, 240 + 40 * r)] for r in range(3)]


def metric(text, name):
    """Return the value of sample <name> in Prometheus <text> (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def run_round(one, items):
    """Run one(item) for every item on POOL threads; bounded in time.
    Returns [(item, result)]."""
    random.Random(7).shuffle(items)
    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(POOL) as ex:
        futs = [(it, ex.submit(one, it)) for it in items]
        out = [(it, f.result(timeout=max(1.0, ROUND_S - (time.monotonic() - t0))))
               for it, f in futs]
    assert time.monotonic() - t0 < ROUND_S
    return out


# --------------------------------------------------------------------------
# HTTP through HAProxy and two gatehouse-spoa agents


def test_http_hung_ldap(spoa_factory, haproxy_factory, slapd, memcached, mailboxes):
    kw = dict(ldap=[slapd], memcached=[memcached], servers=server_table(mailboxes),
              ldap_opts=LDAP_OPTS, memcached_opts=NO_LOCAL)
    agents = [spoa_factory(**kw), spoa_factory(**kw)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % a.port for a in agents],
                         processing="500ms")
    assert wait_for(lambda: all(a.metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1
                                for a in agents), 10)

    def get(u):
        t0 = time.monotonic()
        st, hd, body = hp.get("/home/%s/inbox" % u, timeout=15)
        return st, body.get("server") if isinstance(body, dict) else None, \
            time.monotonic() - t0

    # warm the cache (memcached) for CACHED, through both agents
    for u, srv in CACHED:
        st, got, _ = get(u)
        assert (st, got) == (200, srv), u

    slapd.proc.signal(signal.SIGSTOP)
    try:
        lat = {}
        for rnd in range(2):
            # round 0 starts at once (LDAP not yet known to be down: the
            # uncached lookups are the first to hang); round 1 runs once
            # the agents know (fail fast)
            items = [("c",) + c for c in CACHED * 3] + [("u",) + u for u in UNCACHED[rnd]]
            res = run_round(lambda it: get(it[1]), items)
            misrouted = [(it, r) for it, r in res if it[0] == "c" and r[:2] != (200, it[2])]
            assert not misrouted, ("round %d: cached users misrouted" % rnd, misrouted[:5],
                                   len(misrouted))
            wrong = [(it, r) for it, r in res if it[0] == "u" and r[0] != 503]
            assert not wrong, ("round %d: uncached users not 503" % rnd, wrong[:5], len(wrong))
            lat[rnd] = max(r[2] for it, r in res if it[0] == "u")
            if rnd == 0:
                # both agents have seen LDAP fail
                assert wait_for(lambda: all(
                    a.metrics().get(LDAP_ERRORS, 0) >= 1 for a in agents), 10)
        # once known down, uncached users are answered at once (not after
        # the LDAP timeout)
        assert lat[1] < FAST, lat
    finally:
        slapd.proc.signal(signal.SIGCONT)

    # recovery without a restart: a probe finds LDAP answering again
    fresh = UNCACHED[2]
    assert wait_for(lambda: all(get(u)[:2] == (200, srv) for u, srv in fresh[:3]), 15)
    for u, srv in fresh[3:10] + CACHED[:3]:
        assert get(u)[:2] == (200, srv), u
    assert all(a.proc.alive() for a in agents)


# --------------------------------------------------------------------------
# IMAP and POP3 through gatehouse-mailproxy


@pytest.fixture
def mailproxy_hung(gh_tmp, gh_bin, make_conf, slapd, dovecots, memcached, proxy_certs,
                   mbox_certs):
    """gatehouse-mailproxy on the test's own slapd, short LDAP timeout, no
    in-process cache, two lookup threads."""
    exe = gh_bin("gatehouse-mailproxy")
    ps = [ports.free_port() for _ in range(5)]
    d = os.path.join(gh_tmp, "mailproxy-hung-%d" % ps[0])
    os.makedirs(d)
    mp = {"imap": "127.0.0.1:%d" % ps[0], "imaps": "127.0.0.1:%d" % ps[1],
          "pop3": "127.0.0.1:%d" % ps[2], "pop3s": "127.0.0.1:%d" % ps[3],
          "metrics": "127.0.0.1:%d" % ps[4], "certs": proxy_certs,
          "cleartext_login": True, "audit_log": os.path.join(d, "audit.log"),
          "upstream_ca": mbox_certs["ca"].cert, "threads": 2,
          "connect_timeout": "2s", "upstream_timeout": "10s", "failure_delay": "0"}
    conf = make_conf(ldap=[slapd], memcached=[memcached], servers=proxy_servers(dovecots),
                     ldap_opts=LDAP_OPTS, memcached_opts=NO_LOCAL, mailproxy=mp)
    p = MailProxy(d, conf, exe, ps)
    yield p
    p.stop()


def command(c, data, prefix):
    """Send <data> on LineClient <c>; return the first answer line that
    starts with <prefix>."""
    c.send(data + b"\r\n")
    return c.until(prefix)[-1]


def imap_login(mp, u):
    """Log in as <u> over IMAP; return the tagged answer."""
    c = LineClient(mp.imap, timeout=15)
    try:
        c.line()
        return command(c, b'a LOGIN "%s" "%s"' % (u.encode(), password(u).encode()), b"a ")
    finally:
        c.close()


def pop3_login(mp, u):
    """Log in as <u> over POP3; return the answer to PASS."""
    c = LineClient(mp.pop3, timeout=15)
    try:
        c.line()
        command(c, b"USER " + u.encode(), b"")
        return command(c, b"PASS " + password(u).encode(), b"")
    finally:
        c.close()


def test_mail_hung_ldap(mailproxy_hung, slapd):
    mp = mailproxy_hung
    cached = CACHED[:8]
    for u, _ in cached:
        assert imap_login(mp, u).startswith(b"a OK"), u

    def one(it):
        kind, proto, u = it
        t0 = time.monotonic()
        ans = imap_login(mp, u) if proto == "imap" else pop3_login(mp, u)
        return ans, time.monotonic() - t0

    slapd.proc.signal(signal.SIGSTOP)
    try:
        lat = {}
        for rnd in range(2):
            items = [("c", p, u) for u, _ in cached for p in ("imap", "pop3")] * 2
            items += [("u", "imap" if i % 2 else "pop3", u)
                      for i, (u, _) in enumerate(UNCACHED[rnd][:16])]
            res = run_round(one, items)
            bad = [(it, r) for it, r in res if it[0] == "c" and
                   not r[0].startswith(b"a OK" if it[1] == "imap" else b"+OK")]
            assert not bad, ("round %d: cached logins failed" % rnd, bad[:5], len(bad))
            # and never waited behind a hung lookup (which takes the 3 s
            # LDAP timeout, twice: the search, then the reconnect's bind)
            slow = max(r[1] for it, r in res if it[0] == "c")
            assert slow < FAST, ("round %d: a cached login waited" % rnd, slow)
            # the temporary-failure codes; the human text after them may change
            bad = [(it, r) for it, r in res if it[0] == "u" and
                   not r[0].startswith(b"a NO [UNAVAILABLE]" if it[1] == "imap"
                                       else b"-ERR [SYS/TEMP]")]
            assert not bad, ("round %d: uncached logins not tempfail" % rnd, bad[:5], len(bad))
            lat[rnd] = max(r[1] for it, r in res if it[0] == "u")
            if rnd == 0:
                assert wait_for(lambda: metric(mp.metrics_text(), LDAP_ERRORS) >= 1, 10)
        assert lat[1] < FAST, lat
    finally:
        slapd.proc.signal(signal.SIGCONT)

    fresh = [u for u, _ in UNCACHED[2][:4]]
    assert wait_for(lambda: imap_login(mp, fresh[0]).startswith(b"a OK"), 15)
    for u in fresh[1:]:
        assert imap_login(mp, u).startswith(b"a OK"), u
        assert pop3_login(mp, u).startswith(b"+OK"), u
    assert mp.proc.alive()
