"""HAProxy options beyond the default path: verified TLS to the mailbox
servers (GH_UPSTREAM_PROTO=https, GH_UPSTREAM_CA) and Zimbra's mail modes
(GH_MAIL_MODE), with Debian's haproxy, two real agents, slapd and memcached.
"""
import http.client
import ssl
import threading

import pytest

import spoa_fixtures
from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import wait_for
from gh import certs as gh_certs
from gh.ports import free_port


class TlsMailbox:
    """A stand-in mailbox server that only speaks HTTPS, with <pem>."""

    def __init__(self, name, pem):
        self.name, self.host = name, "127.0.0.1"
        self.port = free_port()
        self.httpd = spoa_fixtures._QuietServer((self.host, self.port),
                                                spoa_fixtures._MboxHandler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.httpd.mbox_name = name
        self.httpd.mbox_status = 200
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _start(spoa_factory, haproxy_factory, slapd, memcached, mailboxes, env):
    servers = {n: {"address": m.host, "http": m.port, "https": m.port}
               for n, m in mailboxes.items()}
    kw = dict(ldap=[slapd], memcached=[memcached], servers=servers)
    agents = [spoa_factory(**kw), spoa_factory(**kw)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % a.port for a in agents],
                         extra_env=env)
    assert wait_for(lambda: all(a.metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1
                                for a in agents), 10)
    return hp


def _request(hp, path, https=False, method="GET", body=None):
    if https:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", hp.https_port, context=ctx, timeout=10)
    else:
        c = http.client.HTTPConnection("127.0.0.1", hp.http_port, timeout=10)
    try:
        headers = {"Host": "mail.example.com"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, r.getheader("Location"), r.read().decode("utf-8", "replace")
    finally:
        c.close()


@pytest.fixture
def tls_mailboxes(mbox_certs):
    made = {n: TlsMailbox(n, mbox_certs[n]) for n in ("mbox1", "mbox2", "mbox3")}
    yield made
    for m in made.values():
        m.stop()


def test_upstream_tls_verified_with_server_name(spoa_factory, haproxy_factory, slapd_shared,
                                                memcached, tls_mailboxes, mbox_certs):
    hp = _start(spoa_factory, haproxy_factory, slapd_shared, memcached, tls_mailboxes,
                {"GH_UPSTREAM_PROTO": "https", "GH_UPSTREAM_CA": mbox_certs["ca"].cert})
    # the stand-ins speak only TLS: an answer proves HAProxy used TLS
    st, _, body = _request(hp, "/home/alice@example.com/inbox")
    assert st == 200 and '"server": "mbox1"' in body, body
    st, _, body = _request(hp, "/home/bob@example.com/inbox")
    assert st == 200 and '"server": "mbox2"' in body, body


def test_upstream_tls_untrusted_certificate_refused(spoa_factory, haproxy_factory, slapd_shared,
                                                    memcached, tls_mailboxes, gh_tmp):
    other = gh_certs.make_ca(gh_tmp + "/other-ca-%d" % free_port(), name="someone else")
    hp = _start(spoa_factory, haproxy_factory, slapd_shared, memcached, tls_mailboxes,
                {"GH_UPSTREAM_PROTO": "https", "GH_UPSTREAM_CA": other.cert})
    st, _, body = _request(hp, "/home/alice@example.com/inbox")
    assert st == 503 and "mbox1" not in body


def test_upstream_tls_wrong_server_name_refused(spoa_factory, haproxy_factory, slapd_shared,
                                                memcached, mbox_certs):
    # mbox1 presents mbox2's (valid, trusted) certificate: the name check fails
    boxes = {"mbox1": TlsMailbox("mbox1", mbox_certs["mbox2"])}
    try:
        hp = _start(spoa_factory, haproxy_factory, slapd_shared, memcached, boxes,
                    {"GH_UPSTREAM_PROTO": "https", "GH_UPSTREAM_CA": mbox_certs["ca"].cert})
        st, _, body = _request(hp, "/home/alice@example.com/inbox")
        assert st == 503 and "mbox1" not in body
    finally:
        boxes["mbox1"].stop()


@pytest.fixture
def mode_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes):
    def make(mode):
        return _start(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                      {"GH_MAIL_MODE": mode})
    return make


def test_mode_redirect(mode_site):
    hp = mode_site("redirect")
    st, loc, _ = _request(hp, "/home/alice@example.com/inbox")
    assert st == 301 and loc == "https://mail.example.com/home/alice@example.com/inbox"
    st, _, body = _request(hp, "/home/alice@example.com/inbox", https=True)
    assert st == 200 and '"server": "mbox1"' in body


def test_mode_https_refuses_plain(mode_site):
    hp = mode_site("https")
    st, _, _ = _request(hp, "/home/alice@example.com/inbox")
    assert st == 403
    st, _, body = _request(hp, "/home/alice@example.com/inbox", https=True)
    assert st == 200 and '"server": "mbox1"' in body


def test_mode_http_redirects_https(mode_site):
    hp = mode_site("http")
    st, loc, _ = _request(hp, "/home/alice@example.com/inbox", https=True)
    assert st == 301 and loc.startswith("http://mail.example.com/")
    st, _, body = _request(hp, "/home/alice@example.com/inbox")
    assert st == 200 and '"server": "mbox1"' in body


def test_mode_mixed_logins_over_https_only(mode_site):
    hp = mode_site("mixed")
    st, loc, _ = _request(hp, "/", method="POST", body="username=alice%40example.com&password=x")
    assert st == 302 and loc.startswith("https://mail.example.com/")
    st, _, body = _request(hp, "/home/alice@example.com/inbox")
    assert st == 200 and '"server": "mbox1"' in body


def test_mode_both_is_the_default(mode_site):
    hp = mode_site("both")
    assert _request(hp, "/home/alice@example.com/inbox")[0] == 200
    assert _request(hp, "/home/alice@example.com/inbox", https=True)[0] == 200
