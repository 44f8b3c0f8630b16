"""HTTP(S) routed per user: Debian's haproxy 2.6 with haproxy/haproxy.cfg and
spoe-gatehouse.conf, two real gatehouse-spoa agents, real slapd and
memcached, and stand-in mailbox servers that answer with their own name.
"""
import base64
import http.client
import signal
import socket
import ssl
import time

import pytest

from gh import keys

from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import server_table, wait_for


class Site:
    def __init__(self, hp, agents, mailboxes):
        self.hp, self.agents, self.mailboxes = hp, agents, mailboxes

    def get(self, path, **kw):
        return self.hp.get(path, **kw)


def start_site(spoa_factory, haproxy_factory, slapd, memcached, mailboxes,
               processing="500ms", throttle=None, spoa=None, extra_cfg=None, ldap_opts=None,
               memcached_opts=None):
    kw = dict(ldap=[slapd], memcached=[memcached], servers=server_table(mailboxes))
    if memcached_opts:
        kw["memcached_opts"] = memcached_opts
    if throttle:
        kw["throttle"] = throttle
    if ldap_opts:
        kw["ldap_opts"] = ldap_opts
    agents = [spoa_factory(spoa=spoa, **kw), spoa_factory(spoa=spoa, **kw)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % a.port for a in agents],
                         processing=processing, extra_cfg=extra_cfg)
    site = Site(hp, agents, mailboxes)
    # wait until both agents passed HAProxy's spop-check
    assert wait_for(lambda: all(a.metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1
                                for a in agents), 10)
    return site


@pytest.fixture
def site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    return start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes)


def basic(user, pw="x"):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def test_route_by_url(site):
    st, hd, body = site.get("/home/alice@example.com/inbox")
    assert st == 200 and body["server"] == "mbox1"
    assert body["xff"] == "127.0.0.1" and body["xfp"] == "http"
    st, hd, body = site.get("/service/home/~robert@example.com/Calendar")
    assert body["server"] == "mbox2"
    st, hd, body = site.get("/dav/carol@example.org/Contacts/")
    assert body["server"] == "mbox3"


def test_route_by_cookie(site, slapd_shared):
    uuid = slapd_shared.entry_uuid("bob@example.com")
    tok = "0_0123abcd_" + ("id=36:%s;exp=13:1196504658160;type=6:zimbra;" % uuid).encode().hex()
    st, hd, body = site.get("/zimbra/", headers={"Cookie": "ZM_LOGIN_CSRF=1; ZM_AUTH_TOKEN=" + tok})
    assert st == 200 and body["server"] == "mbox2"


def test_route_by_basic(site):
    st, hd, body = site.get("/Microsoft-Server-ActiveSync?Cmd=Ping", headers=basic("carol@example.org"))
    assert st == 200 and body["server"] == "mbox3"


def test_unknown_user_goes_to_ip_hash_pool(site):
    seen = set()
    for path in ("/", "/home/nobody@example.com/", "/zimbra/css/x.css"):
        st, hd, body = site.get(path)
        assert st == 200
        seen.add(body["server"])
    # one client address: the same pool member every time
    assert len(seen) == 1 and seen <= {"mbox1", "mbox2", "mbox3"}


def test_access_log_carries_route(site):
    site.get("/home/alice@example.com/x")
    assert wait_for(lambda: "user=alice@example.com server=mbox1 by=url route=ok"
                    in site.hp.log_text(), 5), site.hp.log_text()[-2000:]


def _sni_cn(port, name):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            der = t.getpeercert(binary_form=True)
            alpn = t.selected_alpn_protocol()
    # the CN is in the DER; checking for the name is enough here
    return der, alpn


def test_https_sni_two_domains(site, mbox_certs):
    for name in ("mail.example.com", "mail.example.org"):
        der, _ = _sni_cn(site.hp.https_port, name)
        assert name.encode() in der
    ctx = ssl.create_default_context(cafile=mbox_certs["ca"].cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", site.hp.https_port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="mail.example.org") as t:
            assert t.selected_alpn_protocol() == "h2"
    # HTTP/1.1 over TLS, routed, X-Forwarded-Proto https
    ctx.set_alpn_protocols(["http/1.1"])
    conn = http.client.HTTPSConnection("127.0.0.1", site.hp.https_port, context=ctx, timeout=5)
    conn.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", site.hp.https_port)),
                                server_hostname="mail.example.com")
    conn.request("GET", "/home/bob@example.com/", headers={"Host": "mail.example.com"})
    r = conn.getresponse()
    body = r.read().decode()
    assert r.status == 200 and '"mbox2"' in body and '"xfp": "https"' in body


def test_agents_killed_then_back(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      processing="400ms")
    ports = [a.port for a in site.agents]
    for a in site.agents:
        a.stop(sig=signal.SIGKILL)
    for _ in range(5):
        t0 = time.monotonic()
        st, hd, body = site.get("/home/alice@example.com/")
        assert st == 200 and body["server"] in ("mbox1", "mbox2", "mbox3")
        assert time.monotonic() - t0 < 2.0
    # agents return on the same ports: routing resumes
    kw = dict(ldap=[slapd_shared], memcached=[memcached], servers=server_table(mailboxes))
    site.agents = [spoa_factory(port=p, **kw) for p in ports]

    def routed():
        return all(site.get("/home/bob@example.com/")[2]["server"] == "mbox2" for _ in range(4))
    assert wait_for(routed, 15)


def test_agents_frozen(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      processing="400ms")
    for a in site.agents:
        a.proc.signal(signal.SIGSTOP)
    try:
        for _ in range(3):
            t0 = time.monotonic()
            st, hd, body = site.get("/home/alice@example.com/")
            assert st == 200 and body["server"] in ("mbox1", "mbox2", "mbox3")
            assert time.monotonic() - t0 < 2.0
    finally:
        for a in site.agents:
            a.proc.signal(signal.SIGCONT)

    def routed():
        return site.get("/home/carol@example.org/")[2]["server"] == "mbox3"
    assert wait_for(routed, 15)


def test_throttle_429(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      throttle={"ip_max": 3, "ip_ttl": 60})
    codes = []
    for i in range(6):
        st, hd, body = site.get("/", method="POST",
                                data=b"loginOp=login&username=alice%40example.com&password=x",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        codes.append(st)
        if st == 429:
            assert int(hd["Retry-After"]) >= 1
    # the counter is shared through memcached: both agents count together
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429, 429], codes
    # a plain page is not a login: still served
    assert site.get("/zimbra/img/logo.png")[0] == 200


def test_oversize_message_is_an_error_not_a_storm(spoa_factory, haproxy_factory, slapd_shared,
                                                  memcached, mailboxes):
    # The agent offers 1024-byte frames: a request whose route message is
    # bigger fails at once (st=3) and the pool serves it; no reconnect loop.
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      spoa={"max_frame_size": 1024})
    before = sum(a.metrics()["gatehouse_spoa_connections_total"] for a in site.agents)
    for _ in range(3):
        t0 = time.monotonic()
        st, hd, body = site.get("/home/alice@example.com/", headers={"X-Pad": "y",
                                "Cookie": "ZM_AUTH_TOKEN=0_ab_" + "66" * 1500})
        assert st == 200 and body["server"] in ("mbox1", "mbox2", "mbox3")
        assert time.monotonic() - t0 < 1.0
    time.sleep(0.5)
    after = sum(a.metrics()["gatehouse_spoa_connections_total"] for a in site.agents)
    assert after - before < 12, (before, after)
    # HAProxy writes its log line after the response
    assert wait_for(lambda: "spoe_err=3" in site.hp.log_text()
                    or "spoe_err=259" in site.hp.log_text(), 5), site.hp.log_text()[-2000:]
    # small requests still go through the agent
    assert site.get("/home/alice@example.com/")[2]["server"] == "mbox1"


def test_refuses_destination_outside_server_table(spoa_factory, haproxy_factory, slapd_shared,
                                                  memcached, mailboxes):
    # The agent's table knows a server that the allowed list does not:
    # HAProxy must refuse to go there.
    extra = dict(server_table(mailboxes))
    extra["mbox3"] = {"address": "127.0.0.1", "http": 9, "https": 9}
    agents = [spoa_factory(ldap=[slapd_shared], memcached=[memcached], servers=extra)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % agents[0].port])
    assert wait_for(lambda: agents[0].metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1, 10)
    st, hd, body = hp.get("/home/carol@example.org/")
    assert st == 503
    assert hp.get("/home/alice@example.com/")[2]["server"] == "mbox1"


def test_failed_logins_are_counted(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                   mailboxes):
    # Every mailbox refuses the credentials (401): the responses are fed
    # back as login-result, and after ip_fail_max failures logins get 429.
    for m in mailboxes.values():
        m.httpd.mbox_status = 401
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      throttle={"ip_fail_max": 2, "ip_fail_ttl": 60})
    codes = [site.get("/dav/", headers=basic("alice@example.com", "wrong"))[0] for _ in range(5)]
    assert codes[:2] == [401, 401] and 429 in codes[2:4] and codes[-1] == 429, codes


def test_strict_hosts(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      spoa={"strict_hosts": "yes", "vhosts": "mail.example.com *.example.net"})
    for host, ok in (("mail.example.com", True), ("webmail.example.net", True),
                     ("mail.example.com:443", True), ("evil.example.org", False)):
        st, hd, body = site.get("/home/alice@example.com/", headers={"Host": host})
        if ok:
            assert st == 200 and body["server"] == "mbox1", host
        else:
            assert st == 421, host


def test_strict_hosts_from_ldap(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                mailboxes):
    """[ldap] vhost_filter: the allowed names are the directory's
    (associatedDomain of the domain entries), next to the configured ones;
    the second request for an allowed name is answered from HAProxy's route
    table (the agents are not asked again), a refused one asks again. No
    in-process cache: an answer from it is never kept, and the count of
    checks would depend on which agent answered."""
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      spoa={"strict_hosts": "yes", "vhosts": "static.example.net"},
                      ldap_opts={"vhost_filter": "(associatedDomain=%s)"},
                      memcached_opts={"local_ttl": "0"})
    for _ in range(2):
        for host, ok in (("mail.example.com", True), ("webmail.example.org:8080", True),
                         ("static.example.net", True), ("evil.example.org", False),
                         ("example.com", False)):
            st, hd, body = site.get("/home/alice@example.com/", headers={"Host": host})
            if ok:
                assert st == 200 and body["server"] == "mbox1", host
            else:
                assert st == 421, host
    m = [a.metrics() for a in site.agents]
    assert sum(x.get('gatehouse_vhost_checks_total{outcome="refused"}', 0) for x in m) == 4
    assert sum(x.get('gatehouse_vhost_checks_total{outcome="allowed"}', 0) for x in m) == 3
    assert memcached.get(keys.make("v:", "mail.example.com")) == "1"


def test_haproxy_two_threads(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    site = start_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      extra_cfg="global\n    nbthread 2\n")
    import concurrent.futures as cf
    users = [("alice@example.com", "mbox1"), ("bob@example.com", "mbox2"),
             ("carol@example.org", "mbox3")] * 20

    def one(u):
        return site.get("/home/%s/" % u[0])[2]["server"] == u[1]
    with cf.ThreadPoolExecutor(8) as ex:
        assert all(ex.map(one, users))


def test_haproxy_reload_under_load(spoa_factory, haproxy_factory, slapd_shared, memcached,
                                   mailboxes):
    import threading
    kw = dict(ldap=[slapd_shared], memcached=[memcached], servers=server_table(mailboxes))
    agents = [spoa_factory(**kw), spoa_factory(**kw)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % a.port for a in agents], master=True)
    assert wait_for(lambda: hp.get("/home/alice@example.com/")[2]["server"] == "mbox1", 10)
    results, stop = [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                st, hd, body = hp.get("/home/bob@example.com/", timeout=5)
                results.append((st, body.get("server") if isinstance(body, dict) else body))
            except Exception as e:  # noqa: BLE001 - a failed request is the finding
                results.append(("exc", repr(e)))
    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: len(results) >= 10, 10), results
        for i in (1, 2):
            hp.master_cmd("reload")
            # the master has re-executed and forked its new worker, which
            # serves the load while the old one finishes
            assert wait_for(lambda: hp.master_reloads() >= i, 20)
            n = len(results)
            assert wait_for(lambda: len(results) >= n + 10, 10), results[-5:]
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    procs = hp.master_cmd("show proc")
    assert "worker" in procs and any(l.split()[2:3] == ["2"] for l in procs.splitlines()
                                     if "master" in l), procs
    assert len(results) > 20
    bad = [r for r in results if r[0] != 200]
    assert not bad, bad[:5]
    # after the reloads requests are routed by the agent again
    assert wait_for(lambda: hp.get("/home/bob@example.com/")[2]["server"] == "mbox2", 10)
    assert hp.proc.alive()
