"""Routes from an auth_http service ([lookup] source = http; issue 14, item 2).

The service is a stand-in written here: Python's http.server over HTTPS with
the test CA, answering the way nginx's ngx_mail_auth_http_module documents
(Auth-Status, Auth-Server, Auth-Port, Auth-Wait) and Zimbra's route lookup
servlet answers (Auth-User with the canonical name, Auth-Cache-Alias; a
refusal is "user not found:<name>" with Auth-Wait). It counts the requests
and keeps their headers. No LDAP anywhere: the service is the only source.
"""
import http.server
import os
import ssl
import threading
import time

import pytest

from gh import ports
from gh import wait as gh_wait
from mail_fixtures import LineClient, password
from spoa_fixtures import (haproxy_factory, mailboxes, server_table, site_certs,  # noqa: F401
                           spoa_factory)

# name (as asked) -> (canonical name, server); aliases answer their account
ACCOUNTS = {
    "alice@example.com": ("alice@example.com", "mbox1"),
    "al@example.com": ("alice@example.com", "mbox1"),
    "bob@example.com": ("bob@example.com", "mbox2"),
    "carol@example.org": ("carol@example.org", "mbox3"),
}
# Auth-Protocol (Zimbra's names) -> [server] key
# account id (zimbraId) -> (canonical name, server): Auth-Method zimbraId
IDS = {"0b6c3f4e-1111-4222-8333-444455556666": ("carol@example.org", "mbox3")}
PROTO_KEY = {"imap": "imap", "imapssl": "imaps", "pop3": "pop3", "pop3ssl": "pop3s",
             "http": "http", "httpssl": "https"}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        svc = self.server.svc
        hdrs = {k: v for k, v in self.headers.items()}
        with svc.lock:
            svc.requests.append(hdrs)
        user = hdrs.get("Auth-User", "")
        out = [("Content-Length", "0")]
        if svc.http_status != 200:
            self.send_response(svc.http_status)
        else:
            self.send_response(200)
            if user in svc.refuse:
                msg, wait = svc.refuse[user]
                out += [("Auth-Status", msg)]
                if wait is not None:
                    out += [("Auth-Wait", str(wait))]
            elif hdrs.get("Auth-Method") == "zimbraId" and user in IDS:
                canon, srv = IDS[user]
                host, port = svc.where(srv, hdrs.get("Auth-Protocol", ""))
                out += [("Auth-Status", "OK"), ("Auth-Server", host), ("Auth-Port", str(port)),
                        ("Auth-User", canon)]
            elif user in svc.accounts:
                canon, srv = svc.accounts[user]
                host, port = svc.where(srv, hdrs.get("Auth-Protocol", ""))
                out += [("Auth-Status", "OK"), ("Auth-Server", host), ("Auth-Port", str(port)),
                        ("Auth-Cache-Alias", "FALSE"), ("Auth-User", canon)]
            else:
                # Zimbra's NginxLookupHandler.sendError(): the reason, and the
                # zimbraReverseProxyAuthWaitInterval (10 s by default)
                out += [("Auth-Status", "user not found:" + user), ("Auth-Wait", "10")]
        for k, v in out:
            self.send_header(k, v)
        self.end_headers()

    def log_message(self, *a):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class AuthHttp:
    """The stand-in auth_http service. <servers>: {name: {address, imap, ...}}."""

    def __init__(self, servers, certs=None, accounts=None):
        self.servers = servers
        self.accounts = dict(accounts or ACCOUNTS)
        self.refuse = {}            # name -> (Auth-Status, Auth-Wait or None)
        self.http_status = 200
        self.override = {}          # server name -> (host, port) answered instead
        self.requests = []
        self.lock = threading.Lock()
        self.port = ports.free_port()
        self.httpd = _Server(("127.0.0.1", self.port), _Handler)
        self.httpd.svc = self
        self.scheme = "http"
        if certs is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certs)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d/service/extension/nginx-lookup" % (self.scheme, self.port)

    def where(self, srv, proto):
        if srv in self.override:
            return self.override[srv]
        keys = self.servers[srv]
        return keys["address"], keys[PROTO_KEY.get(proto, "imap")]

    def asked(self, user=None):
        """Return the requests so far (for <user> only when given)."""
        with self.lock:
            return [r for r in self.requests if user is None or r.get("Auth-User") == user]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def service_factory(mbox_certs):
    made = []

    def make(servers, tls=True, **kw):
        s = AuthHttp(servers, mbox_certs["mbox1"] if tls else None, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def lookup_opts(urls, mbox_certs, **kw):
    opts = {"source": "http", "urls": urls, "timeout": "2s", "probe_interval": "300ms",
            "ca_file": mbox_certs["ca"].cert}
    opts.update(kw)
    return opts


@pytest.fixture
def proxy(mailproxy_factory, dovecots, memcached, mbox_certs):
    """factory(urls, **lookup keys) -> a mail proxy asking the service, with
    memcached, no LDAP, no in-process cache (every answer goes through
    memcached, the shared cache) and no failure delay."""

    def make(urls, **kw):
        return mailproxy_factory(memcached=[memcached], dovecots=dovecots,
                                 lookup=lookup_opts(urls, mbox_certs, **kw),
                                 memcached_opts={"local_ttl": "0"},
                                 mailproxy={"failure_delay": "0"})

    return make


def imap_login(mp, user, pw=None):
    """Log in as <user> over IMAP; return the tagged answer."""
    c = LineClient(mp.imap, timeout=15)
    try:
        c.line()
        c.send(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), (pw or password(user)).encode()))
        return c.until(b"a ")[-1]
    finally:
        c.close()


def pop3_login(mp, user):
    c = LineClient(mp.pop3, timeout=15)
    try:
        c.line()
        c.send(b"USER " + user.encode() + b"\r\n")
        c.line()
        c.send(b"PASS " + password(user).encode() + b"\r\n")
        return c.line()
    finally:
        c.close()


def closed_url():
    """An https URL nothing listens on."""
    return "https://127.0.0.1:%d/lookup" % ports.free_port()


def test_mail_routes_by_the_service_cached_and_purged(proxy, service_factory, dovecots,
                                                      memcached, gatehouse):
    svc = service_factory(server_table_of(dovecots))
    mp = proxy([svc.url])

    # IMAP and POP3 land on the server the service names (each dovecot
    # holds only its own users: a login elsewhere would fail)
    assert imap_login(mp, "bob@example.com").startswith(b"a OK"), mp.log_text()[-2000:]
    dovecots["mbox2"].wait_login("bob@example.com")
    req = svc.asked("bob@example.com")
    assert len(req) == 1
    h = req[0]
    assert h["Auth-Method"] == "plain" and h["Auth-Protocol"] == "imap"
    assert h.get("Auth-Login-Attempt") == "1"
    # the password is not sent unless [lookup] send_password says so
    assert h.get("Auth-Pass", "") == ""
    assert password("bob@example.com") not in repr(h)
    assert memcached.get("gh:n:bob@example.com") == "bob@example.com mbox2"

    # answers are cached exactly like LDAP's: the service is asked once
    for _ in range(3):
        assert imap_login(mp, "bob@example.com").startswith(b"a OK")
    assert pop3_login(mp, "bob@example.com").startswith(b"+OK")
    assert len(svc.asked("bob@example.com")) == 1

    # an alias: Zimbra's Auth-User names the account; both names are cached
    assert imap_login(mp, "al@example.com", password("alice@example.com")).startswith(b"a OK")
    dovecots["mbox1"].wait_login("alice@example.com")
    assert memcached.get("gh:n:al@example.com") == "alice@example.com mbox1"
    assert memcached.get("gh:n:alice@example.com") == "alice@example.com mbox1"

    # the CLI reads the same cache; purge removes the entries: asked again
    gh = gatehouse(mp.conf)
    r = gh.route("bob@example.com", "imap")
    assert r.rc == 0 and r.server == "mbox2", r
    r = gh.purge("bob@example.com")
    assert r.rc == 0, r
    assert memcached.get("gh:n:bob@example.com") is None
    assert imap_login(mp, "bob@example.com").startswith(b"a OK")
    assert len(svc.asked("bob@example.com")) == 2

    # an uncached name asked through the CLI goes to the service too
    r = gh.route("carol@example.org", "pop3")
    assert r.rc == 0 and r.server == "mbox3" and r.source == "http", r
    assert svc.asked("carol@example.org")[-1]["Auth-Protocol"] == "pop3"

    # a lookup by account id asks with Zimbra's Auth-Method zimbraId
    uid = "0B6C3F4E-1111-4222-8333-444455556666"
    r = gh.route_id(uid, "imap")
    assert r.rc == 0 and r.server == "mbox3", r
    h = svc.asked(uid.lower())
    assert len(h) == 1 and h[0]["Auth-Method"] == "zimbraId"
    assert memcached.get("gh:i:" + uid.lower()) == "carol@example.org mbox3"


def server_table_of(dovecots):
    """{name: {address, imap, imaps, pop3, pop3s}} as the mail proxy's table."""
    from gh import config as gh_config
    return gh_config.dovecot_servers(dovecots)


def test_second_url_when_first_is_down(proxy, service_factory, dovecots):
    svc = service_factory(server_table_of(dovecots))
    mp = proxy([closed_url(), svc.url])
    assert imap_login(mp, "carol@example.org").startswith(b"a OK"), mp.log_text()[-2000:]
    dovecots["mbox3"].wait_login("carol@example.org")
    assert len(svc.asked("carol@example.org")) == 1


def test_service_down_nothing_cached_is_a_temporary_failure(proxy, service_factory, dovecots):
    svc = service_factory(server_table_of(dovecots))
    mp = proxy([closed_url()])
    ans = imap_login(mp, "alice@example.com")
    assert ans.startswith(b"a NO [UNAVAILABLE]"), ans
    assert pop3_login(mp, "alice@example.com").startswith(b"-ERR [SYS/TEMP]")
    assert gh_wait.poll(lambda: "auth_http lookup service unavailable" in mp.log_text(), 5)
    assert not svc.asked()

    # an HTTP error is no answer either
    svc.http_status = 503
    mp2 = proxy([svc.url])
    assert imap_login(mp2, "alice@example.com").startswith(b"a NO [UNAVAILABLE]")
    assert svc.asked("alice@example.com")
    # the service back: a probe finds it, without a restart
    svc.http_status = 200
    assert gh_wait.poll(lambda: imap_login(mp2, "alice@example.com").startswith(b"a OK"), 10)


def test_auth_wait_bounds_the_refusal(proxy, service_factory, dovecots, memcached):
    svc = service_factory(server_table_of(dovecots))
    svc.refuse["bob@example.com"] = ("Invalid login or password", 2)
    svc.refuse["carol@example.org"] = ("Invalid login or password", 0)
    mp = proxy([svc.url])

    # refused like an unknown name (the same answer), cached for Auth-Wait
    ans = imap_login(mp, "bob@example.com")
    unknown = imap_login(mp, "nobody@example.com")
    assert ans.startswith(b"a NO [AUTHENTICATIONFAILED]"), ans
    assert ans == unknown
    assert memcached.get("gh:n:bob@example.com") == "-"
    assert imap_login(mp, "bob@example.com").startswith(b"a NO [AUTHENTICATIONFAILED]")
    assert len(svc.asked("bob@example.com")) == 1
    # Zimbra's "user not found" comes with Auth-Wait 10: cached too
    assert memcached.get("gh:n:nobody@example.com") == "-"

    # after Auth-Wait (2 s, less than negative_ttl) the service is asked again
    del svc.refuse["bob@example.com"]
    assert gh_wait.poll(lambda: memcached.get("gh:n:bob@example.com") is None, 6)
    assert imap_login(mp, "bob@example.com").startswith(b"a OK")
    assert len(svc.asked("bob@example.com")) == 2

    # Auth-Wait 0: not cached at all, every login asks
    for _ in range(2):
        assert imap_login(mp, "carol@example.org").startswith(b"a NO")
    assert len(svc.asked("carol@example.org")) == 2
    assert memcached.get("gh:n:carol@example.org") is None


def test_answer_outside_the_server_table_is_refused(proxy, service_factory, dovecots,
                                                    memcached):
    svc = service_factory(server_table_of(dovecots))
    # mbox2's address with a port that is not its IMAP port
    svc.override["mbox2"] = ("127.0.0.1", ports.free_port())
    mp = proxy([svc.url])
    ans = imap_login(mp, "bob@example.com")
    assert ans.startswith(b"a NO"), ans
    assert gh_wait.poll(lambda: "not a configured server" in mp.log_text(), 5)
    assert memcached.get("gh:n:bob@example.com") is None


def test_http_routes_through_haproxy(spoa_factory, haproxy_factory, service_factory,
                                     memcached, mailboxes, mbox_certs):
    table = server_table(mailboxes)
    svc = service_factory(table)
    kw = dict(memcached=[memcached], servers=table,
              lookup=lookup_opts([svc.url], mbox_certs))
    agent = spoa_factory(**kw)
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % agent.port])

    def get(u):
        st, hd, body = hp.get("/home/%s/inbox" % u, timeout=15)
        return st, body.get("server") if isinstance(body, dict) else body

    assert gh_wait.poll(lambda: get("carol@example.org") == (200, "mbox3"), 10)
    assert get("bob@example.com") == (200, "mbox2")
    assert get("bob@example.com") == (200, "mbox2")
    h = svc.asked("bob@example.com")
    assert len(h) == 1 and h[0]["Auth-Protocol"] == "http"
    assert memcached.get("gh:n:bob@example.com") == "bob@example.com mbox2"
    m = agent.metrics()
    assert m.get('gatehouse_lookups_total{outcome="http"}', 0) >= 2, m


def test_password_sent_only_when_asked_and_only_over_https(proxy, service_factory, dovecots):
    """[lookup] send_password: the mail proxy hands the login's password to
    the service (Auth-Pass), over https only unless allow_plain_http; a
    refusal of a login that carried its password is not cached (it may be
    about the password: cached, a wrong password would lock the name out)."""
    svc = service_factory(server_table_of(dovecots))
    mp = proxy([svc.url], send_password=True)
    bob = "bob@example.com"
    assert imap_login(mp, bob).startswith(b"a OK"), mp.log_text()[-2000:]
    h = svc.asked(bob)[-1]
    assert h.get("Auth-Pass") == password(bob), h
    assert h.get("Client-IP") == "127.0.0.1", h
    assert password(bob) not in mp.log_text()
    # a wrong password the service refuses: refused, and asked again next time
    carol = "carol@example.org"
    svc.refuse[carol] = ("Invalid login or password", 2)
    assert imap_login(mp, carol, "wrong").startswith(b"a NO")
    n = len(svc.asked(carol))
    del svc.refuse[carol]
    assert imap_login(mp, carol).startswith(b"a OK"), mp.log_text()[-2000:]
    assert len(svc.asked(carol)) == n + 1
    # an http:// service never gets the password without allow_plain_http
    plain = service_factory(server_table_of(dovecots), tls=False)
    mp2 = proxy([plain.url], send_password=True)
    assert imap_login(mp2, "alice@example.com").startswith(b"a OK"), mp2.log_text()[-2000:]
    h = plain.asked("alice@example.com")[-1]
    assert h.get("Auth-Pass", "") == "", h
