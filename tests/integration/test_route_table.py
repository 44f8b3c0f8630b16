"""HAProxy's route table (issue 11): the routes the agent answered are kept in
a stick-table keyed by the SHA-256 of every input the answer depends on, so a
known session is routed without an SPOE exchange. Real haproxy 2.6, two real
gatehouse-spoa agents, slapd, memcached and stand-in mailbox servers.

"The agent was not asked" is read from the agents' NOTIFY counters
(gatehouse_spoa_notify_total, summed over both agents).
"""
import base64
import signal
import subprocess
import time

import pytest

from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import server_table, wait_for
from gh import wait as gh_wait
from gh.slapd import gen_ldif

NOTIFY = "gatehouse_spoa_notify_total"
ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@example.org"
HOME = {ALICE: "mbox1", BOB: "mbox2", CAROL: "mbox3"}


class Site:
    def __init__(self, hp, agents, conf_kw):
        self.hp, self.agents, self.conf_kw = hp, agents, conf_kw

    def get(self, path, cookie_of=None, headers=None, **kw):
        h = dict(headers or {})
        if cookie_of is not None:
            h["Cookie"] = "ZM_LOGIN_CSRF=1; ZM_AUTH_TOKEN=" + cookie_of
        return self.hp.get(path, headers=h, **kw)

    def asked(self):
        """NOTIFY frames both agents received so far."""
        return sum(a.metrics().get(NOTIFY, 0) for a in self.agents)


def start(spoa_factory, haproxy_factory, slapd, memcached, mailboxes, extra_env=None,
          memcached_opts=None, throttle=None):
    kw = dict(ldap=[slapd], memcached=[memcached], servers=server_table(mailboxes))
    if memcached_opts:
        kw["memcached_opts"] = memcached_opts
    if throttle:
        kw["throttle"] = throttle
    agents = [spoa_factory(**kw), spoa_factory(**kw)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % a.port for a in agents],
                         extra_env=extra_env)
    assert wait_for(lambda: all(a.metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1
                                for a in agents), 10)
    return Site(hp, agents, kw)


def token(slapd, mail):
    """A ZM_AUTH_TOKEN naming <mail>'s account id (not signed: the agent
    only reads the id)."""
    uuid = slapd.entry_uuid(mail)
    return "0_0123abcd_" + ("id=36:%s;exp=13:1196504658160;type=6:zimbra;" % uuid).encode().hex()


def password(mail):
    """The password of the seeded account <mail> (what the stand-in
    mailbox servers check when mbox_auth is on)."""
    return gen_ldif.password_for(mail)


def basic(user, pw="x"):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def server_of(res):
    st, _, body = res
    assert st == 200, res
    return body["server"]


def settle(site):
    """Wait until the agents' counters stop moving (health checks count
    separately; an answer may still be on its way)."""
    last = [None]

    def still():
        now = site.asked()
        same = now == last[0]
        last[0] = now
        return same
    assert wait_for(still, 5, 0.2)
    return last[0]


def test_cookie_hit_skips_agent(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                mailboxes):
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes)
    tok = token(slapd_shared, BOB)
    before = settle(site)
    assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox2"
    first = settle(site)
    assert first == before + 1                     # the first request asked
    for path in ("/zimbra/", "/service/soap/SearchRequest", "/zimbra/js/x.js?v=3"):
        assert server_of(site.get(path, cookie_of=tok)) == "mbox2", path
    assert settle(site) == first                   # ... the next ones did not
    hits, misses, used = site.hp.route_stats()
    assert hits == 3 and misses == 1 and used == 1, (hits, misses, used)
    assert wait_for(lambda: "by=table" in site.hp.log_text(), 5)
    # another cookie (another key) asks again, and lands on its own server
    assert server_of(site.get("/zimbra/", cookie_of=token(slapd_shared, CAROL))) == "mbox3"
    assert settle(site) == first + 1


def test_url_user_wins_over_warm_cookie(spoa_factory, haproxy_factory, slapd_shared,
                                        memcached, mailboxes):
    # no in-process cache: every first answer may be kept (one from that
    # cache is not), so the counts below are exact
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                 memcached_opts={"local_ttl": "0"})
    tok = token(slapd_shared, ALICE)
    for _ in range(3):                             # cold, then warm
        assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox1"
        # alice's cookie with bob's URL: bob's server, before and after
        # both keys are in the table
        assert server_of(site.get("/home/%s/Inbox" % BOB, cookie_of=tok)) == "mbox2"
        assert server_of(site.get("/service/home/~%s/Calendar" % CAROL,
                                  cookie_of=tok)) == "mbox3"
        # ActiveSync User= is part of the key too
        assert server_of(site.get("/Microsoft-Server-ActiveSync?Cmd=Sync&User=%s" % BOB,
                                  cookie_of=tok)) == "mbox2"
        assert server_of(site.get("/Microsoft-Server-ActiveSync?Cmd=Sync",
                                  cookie_of=tok)) == "mbox1"
    # four keys asked once each; ActiveSync without User= shares the key of
    # /zimbra/ (neither its path nor its query can name a user)
    hits, misses, _ = site.hp.route_stats()
    assert hits == 11 and misses == 4, (hits, misses)


def test_logins_always_ask_the_agent(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                     mailboxes):
    """The login form and SOAP AuthRequest are logins every time, with Basic
    credentials or without, even answered 200 (the stand-ins check no
    password here): never looked up in the table, never kept."""
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                 memcached_opts={"local_ttl": "0"})
    n = settle(site)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for i in range(3):
        st, _, _ = site.get("/", method="POST", data=b"username=bob%40example.com&password=x",
                            headers=form)
        assert st == 200
        hdr = dict(basic(CAROL), **form)
        assert server_of(site.get("/zimbra/", method="POST", headers=hdr,
                                  data=b"loginOp=login")) == "mbox3"
        assert server_of(site.get("/service/soap/AuthRequest", method="POST",
                                  headers=basic(CAROL), data=b"{}")) == "mbox3"
        # a login and its result: two NOTIFYs each time
        assert wait_for(lambda: site.asked() >= n + 6 * (i + 1), 5), (site.asked(), n, i)
    hits, misses, used = site.hp.route_stats()
    assert hits == 0 and misses == 0 and used == 0, (hits, misses, used)


def test_purge_reaches_the_table(spoa_factory, haproxy_factory, slapd, memcached, mailboxes,
                                 make_conf, gatehouse):
    # no in-process cache in the agents: the purge is then seen at once
    site = start(spoa_factory, haproxy_factory, slapd, memcached, mailboxes,
                 memcached_opts={"local_ttl": "0"})
    tok = token(slapd, ALICE)
    for _ in range(2):
        assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox1"
        assert server_of(site.get("/home/%s/x" % ALICE)) == "mbox1"
        assert server_of(site.get("/home/%s/x" % BOB)) == "mbox2"
    assert site.hp.route_stats()[2] == 3
    slapd.set_host("uid=alice,ou=example.com,o=gatehouse", "mbox2")
    # the table (and memcached) still say mbox1 until the purge
    assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox1"
    conf = make_conf(spoa={"haproxy_admin": site.hp.admin_sock}, **site.conf_kw)
    r = gatehouse(conf).run("purge", ALICE)
    assert r.rc == 0, r
    assert r.data["haproxy"] == [{"socket": site.hp.admin_sock, "cleared": ["mbox1"]}], r
    # the next request: the new server, for the cookie and the URL
    assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox2"
    assert server_of(site.get("/home/%s/x" % ALICE)) == "mbox2"
    # routes to other servers stayed
    n = settle(site)
    assert server_of(site.get("/home/%s/x" % BOB)) == "mbox2"
    assert settle(site) == n
    # a name no server is known for clears every route
    r = gatehouse(conf).run("purge", "nobody@example.com", json_out=False)
    assert r.rc == 0 and "haproxy %s: all routes cleared" % site.hp.admin_sock in r.stdout, r
    assert site.hp.route_stats()[2] == 0
    # a socket that does not answer is an error (exit 2), said
    bad = make_conf(spoa={"haproxy_admin": site.hp.admin_sock + ".missing"}, **site.conf_kw)
    r = gatehouse(bad).run("purge", BOB)
    assert r.rc == 2 and "error" in r.data["haproxy"][0], r


def test_purge_without_the_cached_route_clears_every_route(
        spoa_factory, haproxy_factory, slapd, memcached, mailboxes, make_conf, gatehouse):
    """When the cache no longer holds the route a table learned (a restarted
    memcached, an eviction, a timeout), the purge cannot tell which server
    to drop: it drops every route, never just LDAP's new server."""
    site = start(spoa_factory, haproxy_factory, slapd, memcached, mailboxes,
                 memcached_opts={"local_ttl": "0"})
    for _ in range(2):
        assert server_of(site.get("/home/%s/x" % ALICE)) == "mbox1"
    slapd.set_host("uid=alice,ou=example.com,o=gatehouse", "mbox2")
    memcached.stop()
    memcached.start()                  # empty: where alice was routed is forgotten
    assert server_of(site.get("/home/%s/x" % ALICE)) == "mbox1"   # the table keeps it
    conf = make_conf(spoa={"haproxy_admin": site.hp.admin_sock}, **site.conf_kw)
    r = gatehouse(conf).run("purge", ALICE)
    assert r.rc == 0, r
    assert r.data["haproxy"] == [{"socket": site.hp.admin_sock, "cleared": "all"}], r
    assert server_of(site.get("/home/%s/x" % ALICE)) == "mbox2"


def test_status_shows_the_table(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                mailboxes, make_conf, gatehouse):
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes)
    for _ in range(4):
        site.get("/home/%s/x" % CAROL)
    conf = make_conf(spoa={"haproxy_admin": site.hp.admin_sock}, **site.conf_kw)
    r = gatehouse(conf).run("status")
    parts = [p for p in r.data["parts"] if p["kind"] == "haproxy"]
    assert len(parts) == 1 and parts[0]["up"], r
    m = parts[0]["metrics"]
    assert m["routes"] == 1 and m["size"] == 102400 and m["hits"] == 3 and m["misses"] == 1, m
    assert abs(m["hit_rate"] - 0.75) < 1e-9, m
    t = gatehouse(conf).run("status", json_out=False)
    assert "routes=1/102400 hits=3 misses=1 hit_rate=0.750" in t.stdout, t


def test_routes_expire(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                 extra_env={"GH_ROUTE_TABLE_EXPIRE": "1s"})
    assert server_of(site.get("/home/%s/x" % BOB)) == "mbox2"
    assert site.hp.route_stats()[2] == 1
    assert wait_for(lambda: site.hp.route_stats()[2] == 0, 10)
    n = settle(site)
    assert server_of(site.get("/home/%s/x" % BOB)) == "mbox2"
    assert settle(site) == n + 1                   # asked again after the expiry


def test_full_table_still_routes(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                 mailboxes):
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                 extra_env={"GH_ROUTE_TABLE_SIZE": "2"})
    toks = {u: token(slapd_shared, u) for u in HOME}
    for _ in range(4):
        for u, srv in HOME.items():
            assert server_of(site.get("/zimbra/", cookie_of=toks[u])) == srv, u
            assert server_of(site.get("/dav/%s/Contacts/" % u)) == srv, u
    hits, misses, used = site.hp.route_stats()
    assert used <= 2 and hits + misses == 24, (hits, misses, used)


def test_table_off(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                 extra_env={"GH_ROUTE_TABLE": "off"})
    n = settle(site)
    for _ in range(3):
        assert server_of(site.get("/home/%s/x" % BOB)) == "mbox2"
    assert settle(site) == n + 3
    assert site.hp.route_stats() == (0, 0, 0)


def test_frozen_agents_warm_table(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                  mailboxes):
    """Both agents stopped (SIGSTOP): users in the table keep landing on their
    own server, at once; a user not in the table falls back to the pool."""
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes)
    toks = {u: token(slapd_shared, u) for u in HOME}
    for u, srv in HOME.items():
        assert server_of(site.get("/zimbra/", cookie_of=toks[u])) == srv
    for a in site.agents:
        a.proc.signal(signal.SIGSTOP)
    try:
        wrong, t0 = [], time.monotonic()
        for _ in range(30):
            for u, srv in HOME.items():
                got = server_of(site.get("/zimbra/", cookie_of=toks[u], timeout=5))
                if got != srv:
                    wrong.append((u, got))
        took = time.monotonic() - t0
        assert not wrong, (len(wrong), wrong[:5])
        assert took < 10, took                     # 90 requests, none waiting for SPOE
        # not in the table: the SPOE exchange times out, the pool answers
        st, _, body = site.get("/home/%s/y" % BOB, headers={"Cookie": "X=1"}, timeout=10)
        assert st == 200 and body["server"] in HOME.values()
    finally:
        for a in site.agents:
            a.proc.signal(signal.SIGCONT)


def test_spoe_log_line_is_a_setting(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                    mailboxes):
    """The SPOE exchange log line is off by default; GH_SPOE_LOG=on turns it
    on. The access log line keeps user, server, by and route."""
    quiet = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                  extra_env={"GH_ROUTE_TABLE": "off"})
    loud = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                 extra_env={"GH_ROUTE_TABLE": "off", "GH_SPOE_LOG": "on"})
    for site in (quiet, loud):
        assert server_of(site.get("/home/%s/x" % BOB)) == "mbox2"
        assert wait_for(lambda: "user=bob@example.com server=mbox2 by=url route=ok"
                        in site.hp.log_text(), 5)
    assert wait_for(lambda: "SPOE: [gatehouse-agent]" in loud.hp.log_text(), 5)
    assert "SPOE: [gatehouse-agent]" not in quiet.hp.log_text()


def test_no_user_is_kept_too(spoa_factory, haproxy_factory, slapd_shared, memcached,
                             mailboxes):
    """A request that names no user (a login page's images) goes to the pool;
    the table knows that too, and the next one does not ask the agent."""
    site = start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes)
    n = settle(site)
    got = {server_of(site.get("/zimbra/img/logo.png")) for _ in range(3)}
    assert len(got) == 1                           # the client-IP hash: one server
    assert settle(site) == n + 1
    assert site.hp.route_stats() == (2, 1, 1)
    assert wait_for(lambda: "by=table route=none" in site.hp.log_text(), 5)
    # an unknown user is not kept (an account may appear): asked each time
    for _ in range(2):
        site.get("/home/nobody@example.com/")
    assert settle(site) == n + 3


def routes_to(site, idx):
    """Routes HAProxy's table holds to routes.map server <idx>."""
    return sum(1 for line in site.hp.admin("show table gh_routes").splitlines()
               if "gpt0=%d" % idx in line.split())


def test_purge_clears_a_route_a_request_in_flight_holds(spoa_factory, haproxy_factory, slapd,
                                                         memcached, mailboxes, make_conf,
                                                         gatehouse):
    """HAProxy's "clear table" never deletes an entry a request in flight
    holds (the one that learned the route, until it ends: a long download,
    a slow server): the purge sets it to 0 instead, and the next request
    asks the agent and goes to the new server."""
    import threading
    site = start(spoa_factory, haproxy_factory, slapd, memcached, mailboxes,
                 memcached_opts={"local_ttl": "0"})
    conf = make_conf(spoa={"haproxy_admin": site.hp.admin_sock}, **site.conf_kw)
    mailboxes["mbox2"].httpd.mbox_delay = 4
    got = {}

    def slow():
        got["res"] = site.get("/home/%s/export.tgz" % BOB, timeout=30)
        got["t"] = time.monotonic()
    t = threading.Thread(target=slow)
    t.start()
    try:
        assert wait_for(lambda: routes_to(site, 2) == 1, 10)   # learned, held
        slapd.set_host("uid=bob,ou=example.com,o=gatehouse", "mbox1")
        r = gatehouse(conf).run("purge", BOB)
        t_purged = time.monotonic()
        assert r.rc == 0, r
        assert r.data["haproxy"] == [{"socket": site.hp.admin_sock, "cleared": ["mbox2"]}], r
    finally:
        t.join(30)
    assert server_of(got["res"]) == "mbox2"        # routed before the purge
    assert got["t"] > t_purged, "the request ended before the purge: nothing was held"
    mailboxes["mbox2"].httpd.mbox_delay = 0
    assert routes_to(site, 2) == 0
    assert server_of(site.get("/home/%s/export.tgz" % BOB)) == "mbox1"


def test_purge_clears_again_after_answers_in_flight(spoa_factory, haproxy_factory, slapd,
                                                    memcached, mailboxes, make_conf, gatehouse):
    """An agent answer that read memcached just before the purge deleted it
    can reach HAProxy after the purge cleared the table: the purge clears
    once more after the agents' deadline. The race is replayed: between the
    two clears the old route is put back in memcached and learned again."""
    site = start(spoa_factory, haproxy_factory, slapd, memcached, mailboxes,
                 memcached_opts={"local_ttl": "0"})
    tok = token(slapd, ALICE)
    ikey = "gh:i:" + slapd.entry_uuid(ALICE).lower()
    for _ in range(2):
        assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox1"
    stale = memcached.get(ikey)
    assert stale == "%s mbox1" % ALICE, stale
    assert routes_to(site, 1) == 1
    slapd.set_host("uid=alice,ou=example.com,o=gatehouse", "mbox2")
    # a long deadline in the CLI's configuration: the second clear comes
    # 3.25 s after the first, room enough to replay the race in between
    conf = make_conf(spoa={"haproxy_admin": site.hp.admin_sock, "deadline": "3s"},
                     **site.conf_kw)
    for rnd in range(3):
        memcached.set(ikey, stale)   # what the purge reads the old server from
        cli = gatehouse(conf)
        argv = [cli.exe, "-c", cli.conf, "--json", "purge", ALICE]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert wait_for(lambda: routes_to(site, 1) == 0 or p.poll() is not None, 10)
            t_clear = time.monotonic()
            # the answer in flight: memcached's old value, learned again
            memcached.set(ikey, stale)
            if p.poll() is not None:
                # a purge that does not wait is over at once after its clear
                assert time.monotonic() - t_clear > 3.0, \
                    "the purge ended without a second clear: %r" % (p.communicate(),)
            assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox1"
            relearned = routes_to(site, 1) == 1 and p.poll() is None
            out, err = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert p.returncode == 0, (out, err)
        memcached.delete(ikey)
        if not relearned:
            continue          # too slow to replay the race inside the window: again
        # the second clear dropped the route learned in between
        assert routes_to(site, 1) == 0
        assert server_of(site.get("/zimbra/", cookie_of=tok)) == "mbox2"
        return
    pytest.fail("could not replay the race within the purge's second-clear window")


# Basic credentials (ActiveSync, CalDAV/CardDAV: on every request). The
# stand-in mailbox servers check the password (mbox_auth): 401 when wrong.
# No in-process cache in the agents: every first answer may be kept, so the
# counts are exact.


def basic_site(spoa_factory, haproxy_factory, slapd, memcached, mailboxes, throttle=None):
    site = start(spoa_factory, haproxy_factory, slapd, memcached, mailboxes,
                 memcached_opts={"local_ttl": "0"}, throttle=throttle)
    for m in mailboxes.values():
        m.httpd.mbox_auth = True
    return site


def failures(gh, name, n):
    """Wait until the throttle holds <n> failures for <name>."""
    gh_wait.until(lambda: gh.throttle("show", name).get("failures") == n,
                  "%d recorded failures for %s" % (n, name),
                  seen=lambda: gh.throttle("show", name))


def test_basic_session_skips_agent(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                   mailboxes):
    """Good Basic credentials the mailbox server accepted: the next request
    with them is routed from the table, on the right server, without asking
    the agent (no login, no login result); URL users still come first."""
    site = basic_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes)
    good = basic(CAROL, password(CAROL))
    n = settle(site)
    eas = "/Microsoft-Server-ActiveSync?Cmd=%s&DeviceId=d1&DeviceType=SmartPhone"

    def sync():
        # ActiveSync's commands are POSTs: routed from the table too
        st, _, body = site.get(eas % "Sync", method="POST", data=b"\x03\x01\x6a\x00",
                               headers=good)
        assert st == 200 and body["server"] == "mbox3", (st, body)
    assert server_of(site.get(eas % "Ping", headers=good)) == "mbox3"
    assert settle(site) == n + 2                   # the login and its result
    sync()                                         # another request: asks too
    assert settle(site) == n + 4
    assert site.hp.route_stats() == (0, 2, 2)
    for _ in range(3):
        assert server_of(site.get(eas % "Ping", headers=good)) == "mbox3"
        sync()
    assert settle(site) == n + 4                   # ... the next ones did not ask
    assert site.hp.route_stats() == (6, 2, 2)
    assert wait_for(lambda: "server=mbox3 by=table route=ok" in site.hp.log_text(), 5)
    line = [l for l in site.hp.log_text().splitlines() if "Cmd=Sync" in l][-1]
    assert "by=table" in line and password(CAROL) not in line, line
    # the credentials are never kept in the clear: the key is a hash
    table = site.hp.admin("show table gh_routes")
    assert good["Authorization"][6:] not in table and password(CAROL) not in table, table
    # carol's credentials on bob's URL: bob's server, cold and warm (the
    # stand-in checks carol's password whatever the URL)
    for i in range(3):
        assert server_of(site.get("/dav/%s/Calendar/" % BOB, headers=good)) == "mbox2"
        assert server_of(site.get("/home/%s/Inbox" % BOB, headers=good)) == "mbox2"
        assert server_of(site.get("/dav/%s/Calendar/" % CAROL, headers=good)) == "mbox3"
    assert settle(site) == n + 4 + 3 * 2           # three new keys, asked once each
    hits, misses, used = site.hp.route_stats()
    assert (hits, misses, used) == (12, 5, 5), (hits, misses, used)


def test_basic_accepted_unchecked_is_no_pass(spoa_factory, haproxy_factory, slapd_shared,
                                             memcached, mailboxes, make_conf, gatehouse):
    """A wrong password a mailbox server answered 200 where it checks none
    (a static file) is kept for that very request only: the same
    credentials on a request that checks them still ask the agent, and
    their failures are counted until the throttle refuses them."""
    site = basic_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      throttle={"user_fail_max": 2, "user_fail_ttl": 600})
    for m in mailboxes.values():
        m.httpd.mbox_public = ("/zimbra/img/",)
    gh = gatehouse(make_conf(**site.conf_kw))
    bad = basic(CAROL, "wrong-pw")
    eas = "/Microsoft-Server-ActiveSync?Cmd=Sync&DeviceId=d1&DeviceType=SmartPhone"
    n = settle(site)
    for i in range(2):
        assert server_of(site.get("/zimbra/img/logo.png", headers=bad)) == "mbox3"
        st = site.get(eas, method="POST", data=b"\x03\x01\x6a\x00", headers=bad)[0]
        assert st == 401, st
        failures(gh, CAROL, i + 1)
    assert settle(site) == n + 6                   # the logo once, the two Syncs
    assert site.get(eas, method="POST", data=b"\x03\x01\x6a\x00", headers=bad)[0] == 429


def test_basic_wrong_password_is_never_kept(spoa_factory, haproxy_factory, slapd_shared,
                                            memcached, mailboxes, make_conf, gatehouse):
    """Every wrong password reaches the agent and is counted, until the
    throttle refuses it; a refused (throttled) good password is not kept
    either: it asks again."""
    site = basic_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      throttle={"user_fail_max": 3, "user_fail_ttl": 600})
    gh = gatehouse(make_conf(**site.conf_kw))
    bad = basic(CAROL, "wrong-pw")
    n = settle(site)
    for i in range(3):
        assert site.get("/dav/", headers=bad)[0] == 401
        failures(gh, CAROL, i + 1)
    assert settle(site) == n + 6
    # a refused login is answered by HAProxy (429): no result to send back
    assert site.get("/dav/", headers=bad)[0] == 429
    assert settle(site) == n + 7
    # the right password, never seen: refused by the throttle, not kept
    good = basic(CAROL, password(CAROL))
    for i in range(2):
        assert site.get("/dav/", headers=good)[0] == 429
        assert settle(site) == n + 8 + i
    hits, misses, used = site.hp.route_stats()
    assert hits == 0 and used == 0, (hits, misses, used)


def test_basic_known_session_then_wrong_password(spoa_factory, haproxy_factory, slapd_shared,
                                                 memcached, mailboxes, make_conf, gatehouse):
    """After a successful Basic request, the same user with a wrong password
    asks the agent (another key) and is counted; the known session is not a
    login and keeps working while the account is over its failure limit,
    until the mailbox server refuses it (a changed password): then it is
    dropped from the table and the next request asks the agent again."""
    site = basic_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      throttle={"user_fail_max": 2, "user_fail_ttl": 600})
    gh = gatehouse(make_conf(**site.conf_kw))
    good, bad = basic(ALICE, password(ALICE)), basic(ALICE, "wrong-pw")
    n = settle(site)
    assert server_of(site.get("/dav/", headers=good)) == "mbox1"
    assert settle(site) == n + 2
    assert server_of(site.get("/dav/", headers=good)) == "mbox1"
    assert settle(site) == n + 2                   # a table hit
    for i in range(2):
        assert site.get("/dav/", headers=bad)[0] == 401
        failures(gh, ALICE, i + 1)
        assert settle(site) == n + 4 + 2 * i       # each asked
    assert site.get("/dav/", headers=bad)[0] == 429
    assert settle(site) == n + 7                   # a login, no result (429)
    # the known session: from the table, not counted, not throttled
    assert server_of(site.get("/dav/", headers=good)) == "mbox1"
    assert settle(site) == n + 7
    assert site.hp.route_stats()[2] == 1
    # the mailbox server now refuses it: answered, then forgotten
    mailboxes["mbox1"].httpd.mbox_status = 401
    assert site.get("/dav/", headers=good)[0] == 401
    assert settle(site) == n + 7                   # that one was still a hit
    # ... so the next one is a login again, and the throttle decides
    assert site.get("/dav/", headers=good)[0] == 429
    assert settle(site) == n + 8


def test_basic_purge(spoa_factory, haproxy_factory, slapd, memcached, mailboxes, make_conf,
                     gatehouse):
    """`gatehouse purge` clears known Basic sessions too: the next request
    with the same credentials asks the agent and goes to the new server."""
    site = basic_site(spoa_factory, haproxy_factory, slapd, memcached, mailboxes)
    good = basic(ALICE, password(ALICE))
    for _ in range(2):
        assert server_of(site.get("/dav/", headers=good)) == "mbox1"
    assert site.hp.route_stats() == (1, 1, 1)
    slapd.set_host("uid=alice,ou=example.com,o=gatehouse", "mbox2")
    assert server_of(site.get("/dav/", headers=good)) == "mbox1"   # the table still
    conf = make_conf(spoa={"haproxy_admin": site.hp.admin_sock}, **site.conf_kw)
    r = gatehouse(conf).run("purge", ALICE)
    assert r.rc == 0, r
    assert r.data["haproxy"] == [{"socket": site.hp.admin_sock, "cleared": ["mbox1"]}], r
    assert site.hp.route_stats()[2] == 0
    n = settle(site)
    assert server_of(site.get("/dav/", headers=good)) == "mbox2"
    assert settle(site) == n + 2
    assert server_of(site.get("/dav/", headers=good)) == "mbox2"
    assert settle(site) == n + 2                   # learned again


def test_basic_slow_login_straddling_a_purge(spoa_factory, haproxy_factory, slapd, memcached,
                                             mailboxes, make_conf, gatehouse):
    """A Basic login whose response comes after a purge (ActiveSync's Ping
    waits minutes) must not bring back the route the agent read before the
    purge: only a quick response is kept."""
    import threading
    site = basic_site(spoa_factory, haproxy_factory, slapd, memcached, mailboxes)
    good = basic(ALICE, password(ALICE))
    conf = make_conf(spoa={"haproxy_admin": site.hp.admin_sock, "deadline": "300ms"},
                     **site.conf_kw)
    mailboxes["mbox1"].httpd.mbox_delay = 4
    n = settle(site)
    got = {}

    def slow():
        got["res"] = site.get("/dav/", headers=good, timeout=30)
        got["t"] = time.monotonic()
    t = threading.Thread(target=slow)
    t.start()
    try:
        # the agent answered (mbox1, read from LDAP and memcached): the
        # request now waits at the mailbox server
        assert wait_for(lambda: site.asked() >= n + 1, 10)
        slapd.set_host("uid=alice,ou=example.com,o=gatehouse", "mbox2")
        r = gatehouse(conf).run("purge", ALICE)
        t_purged = time.monotonic()
        assert r.rc == 0, r
    finally:
        t.join(30)
    assert server_of(got["res"]) == "mbox1"        # routed before the purge
    assert got["t"] > t_purged, "the response came before the purge ended: no race replayed"
    mailboxes["mbox1"].httpd.mbox_delay = 0
    assert routes_to(site, 1) == 0
    # the next request asks the agent and goes to the new server
    n = settle(site)
    assert server_of(site.get("/dav/", headers=good)) == "mbox2"
    assert settle(site) == n + 2
    assert server_of(site.get("/dav/", headers=good)) == "mbox2"
    assert settle(site) == n + 2                   # a quick one is kept
