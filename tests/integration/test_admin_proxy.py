"""The admin console proxy (Zimbra's zimbraReverseProxyAdminEnabled) through
Debian's HAProxy 2.6: the frontend on GH_ADMIN_BIND serves HTTPS only, with
the SNI certificates of GH_CERTS, to the client networks of GH_ADMIN_ALLOW
(clients bind 127.0.0.x source addresses), refuses everyone else with a 403
page, and proxies to the [server]s' admin ports (backend be_admin, written
by `gatehouse haproxy-servers`); the admin paths are refused on the
user-facing ports; without GH_ADMIN_BIND there is no admin frontend.
"""
import http.client
import json
import os
import socket
import ssl

import pytest

from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import Mailbox, server_table, wait_for
from gh import wait as gh_wait
from gh.ports import free_port, wait_listening

ALLOWED = ("127.0.0.2", "127.0.1.7")
REFUSED = ("127.0.0.1", "127.0.0.3", "127.0.2.1")
PAGE = "administration console cannot be reached from here"


def _allow_file(d):
    path = os.path.join(d, "admin-allow.lst")
    with open(path, "w") as f:
        f.write("# the administrators' networks\n127.0.0.2\n127.0.1.0/24\n::1/128\n")
    return path


def _ctx(ca=None):
    if ca:
        return ssl.create_default_context(cafile=ca)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def admin_get(port, path="/zimbraAdmin/", source="127.0.0.2", sni="mail.example.com",
              ca=None):
    """GET <path> over HTTPS from <source>: (status, body text)."""
    c = http.client.HTTPSConnection("127.0.0.1", port, context=_ctx(ca), timeout=10,
                                    source_address=(source, 0))
    # server_hostname: the SNI (the TCP connection goes to 127.0.0.1)
    c.sock = _ctx(ca).wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0)),
        server_hostname=sni)
    try:
        c.request("GET", path, headers={"Host": sni})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


@pytest.fixture
def admin_boxes(mbox_certs):
    """Two stand-in admin ports (plain HTTP), answering "mboxN-admin"."""
    made = {n: Mailbox(n + "-admin") for n in ("mbox1", "mbox2")}
    yield made
    for m in made.values():
        m.stop()


@pytest.fixture
def admin_site(haproxy_factory, mailboxes, admin_boxes, gh_tmp):
    """HAProxy with the admin frontend; no agent is needed on that port."""
    def make(env=None, boxes=None, generated=None):
        port = free_port()
        e = {"GH_ADMIN_BIND": "127.0.0.1:%d" % port, "GH_ADMIN_ALLOW": _allow_file(gh_tmp)}
        e.update(env or {})
        hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % free_port()], extra_env=e,
                             admin=admin_boxes if boxes is None else boxes,
                             generated=generated)
        wait_listening(port, proc=hp.proc)
        hp.admin_port = port
        return hp
    return make


def test_allowed_networks_reach_the_admin_port(admin_site):
    hp = admin_site()
    for src in ALLOWED:
        st, body = admin_get(hp.admin_port, "/service/admin/soap/", source=src)
        assert st == 200, (src, st, body)
        data = json.loads(body)
        assert data["server"] in ("mbox1-admin", "mbox2-admin"), body
        assert data["path"] == "/service/admin/soap/"
        # the administrator's address and scheme, for the mailbox server's audit
        assert data["xff"] == src and data["xfp"] == "https", body
    assert wait_for(lambda: "admin=allowed" in hp.log_text(), 5), hp.log_text()[-2000:]


def test_other_networks_get_a_clear_refusal(admin_site):
    hp = admin_site()
    for src in REFUSED:
        for path in ("/zimbraAdmin/", "/service/admin/soap/", "/"):
            st, body = admin_get(hp.admin_port, path, source=src)
            assert st == 403 and PAGE in body, (src, path, st, body)
            assert "-admin" not in body      # no mailbox server answered
    assert wait_for(lambda: "admin=refused" in hp.log_text(), 5), hp.log_text()[-2000:]


def test_allow_list_changes_live_through_the_runtime_api(admin_site, gh_tmp):
    hp = admin_site()
    assert admin_get(hp.admin_port, source="127.0.0.3")[0] == 403
    allow = hp.env["GH_ADMIN_ALLOW"]
    out = hp.admin("add acl %s 127.0.0.3" % allow)
    assert "rror" not in out, out
    st, body = admin_get(hp.admin_port, source="127.0.0.3")
    assert st == 200 and "-admin" in body, body


def test_routing_balanced_sticky_and_health_checked(admin_site, admin_boxes):
    hp = admin_site()
    # stickiness by source: one client stays on one server
    seen = {admin_get(hp.admin_port, source="127.0.0.2")[1] for _ in range(5)}
    servers = {json.loads(b)["server"] for b in seen}
    assert len(servers) == 1, seen
    first = servers.pop()
    # balanced: clients of the allowed /24 land on both servers
    spread = set()
    for i in range(1, 41):
        spread.add(json.loads(admin_get(hp.admin_port, source="127.0.1.%d" % i)[1])["server"])
        if len(spread) == 2:
            break
    assert spread == {"mbox1-admin", "mbox2-admin"}, spread
    # health checks: the client's server dies, it moves to the other one
    admin_boxes[first[:-len("-admin")]].stop()

    def moved():
        try:
            st, body = admin_get(hp.admin_port, source="127.0.0.2")
        except OSError:
            return None
        return st == 200 and first not in body and "-admin" in body

    gh_wait.until(moved, "127.0.0.2 moved off %s" % first, 20)


def test_admin_port_serves_sni_certificates_and_https_only(admin_site, mbox_certs):
    hp = admin_site()
    for name in ("mail.example.com", "mail.example.org"):
        # verified against the test CA with the name: the right certificate
        st, body = admin_get(hp.admin_port, sni=name, ca=mbox_certs["ca"].cert)
        assert st == 200 and "-admin" in body
    with socket.create_connection(("127.0.0.1", hp.admin_port), timeout=5,
                                  source_address=("127.0.0.2", 0)) as s:
        with _ctx().wrap_socket(s, server_hostname="mail.example.org") as t:
            assert b"mail.example.org" in t.getpeercert(binary_form=True)
    # plain HTTP gets no HTTP answer at all
    c = http.client.HTTPConnection("127.0.0.1", hp.admin_port, timeout=5,
                                   source_address=("127.0.0.2", 0))
    with pytest.raises((http.client.HTTPException, OSError)):
        c.request("GET", "/zimbraAdmin/")
        c.getresponse().read()
    c.close()


def test_no_admin_frontend_without_bind(haproxy_factory, mailboxes, admin_boxes, gh_tmp):
    for env in ({}, {"GH_ADMIN_BIND": ""}):
        hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % free_port()], extra_env=env,
                             admin=admin_boxes)
        stat = hp.admin("show stat")
        assert "fe_mail,FRONTEND" in stat and "be_admin,BACKEND" in stat, stat
        assert "fe_admin" not in stat


def test_admin_frontend_listed_when_bound(admin_site):
    hp = admin_site()
    assert "fe_admin,FRONTEND" in hp.admin("show stat")


@pytest.fixture
def user_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes, admin_boxes,
              gh_tmp):
    kw = dict(ldap=[slapd_shared], memcached=[memcached], servers=server_table(mailboxes))
    agents = [spoa_factory(**kw), spoa_factory(**kw)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % a.port for a in agents],
                         extra_env={"GH_ADMIN_BIND": "127.0.0.1:%d" % free_port(),
                                    "GH_ADMIN_ALLOW": _allow_file(gh_tmp)},
                         admin=admin_boxes)
    assert wait_for(lambda: all(a.metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1
                                for a in agents), 10)
    return hp


ADMIN_PATHS = ("/zimbraAdmin", "/zimbraAdmin/", "/zimbraAdmin/public/blank.html",
               "/ZimbraAdmin/", "/zimbraAdmin;jsessionid=1", "/carbonioAdmin/",
               "/service/admin/soap", "/service/admin/soap/AuthRequest",
               "//service//admin/soap", "/service/./admin/soap", "/./zimbraAdmin/",
               "/service/%61dmin/soap", "/%7aimbraAdmin/", "/service/admin%2Fsoap",
               "/home/x/../../service/admin/soap")


def _user_get(hp, path, https, source="127.0.0.2"):
    if https:
        c = http.client.HTTPSConnection("127.0.0.1", hp.https_port, context=_ctx(), timeout=10,
                                        source_address=(source, 0))
    else:
        c = http.client.HTTPConnection("127.0.0.1", hp.http_port, timeout=10,
                                       source_address=(source, 0))
    try:
        c.request("GET", path, headers={"Host": "mail.example.com"})
        r = c.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        c.close()


def test_admin_paths_refused_on_user_ports(user_site):
    # even from an allowed admin network: the console is only on its own port
    for https in (False, True):
        for path in ADMIN_PATHS:
            st, body = _user_get(user_site, path, https)
            assert st == 403 and PAGE in body, (https, path, st, body)
        # a path that does not decode cannot be checked
        st, body = _user_get(user_site, "/service/%61dmin%zz/soap", https)
        assert st == 400 and "server" not in body, body
    # user paths still routed, "admin" in a user's own names too
    for path, server in (("/home/alice@example.com/inbox", "mbox1"),
                         ("/home/bob@example.com/admin/notes", "mbox2"),
                         ("/service/home/alice@example.com/zimbraAdmin.txt", "mbox1")):
        st, body = _user_get(user_site, path, True)
        assert st == 200 and json.loads(body)["server"] == server, (path, body)


@pytest.fixture
def tls_admin_boxes(mbox_certs):
    made = {n: Mailbox(n + "-admin", pem=mbox_certs[n]) for n in ("mbox1", "mbox2")}
    yield made
    for m in made.values():
        m.stop()


def _generate(gatehouse, make_conf, mailboxes, boxes, d, tls_names=None):
    servers = server_table(mailboxes)
    for n, m in boxes.items():
        servers[n]["admin"] = m.port
        if tls_names and n in tls_names:
            servers[n]["tls_name"] = tls_names[n]
    os.makedirs(d)
    r = gatehouse(make_conf(servers=servers)).run("haproxy-servers", "-o", d)
    assert r.rc == 0, r
    return d


def test_generated_admin_backend_over_verified_tls(admin_site, mailboxes, tls_admin_boxes,
                                                   gatehouse, make_conf, mbox_certs, gh_tmp):
    # the file `gatehouse haproxy-servers` writes, loaded by HAProxy as is
    d = _generate(gatehouse, make_conf, mailboxes, tls_admin_boxes,
                  os.path.join(gh_tmp, "gen-%d" % free_port()))
    hp = admin_site(env={"GH_UPSTREAM_PROTO": "https",
                         "GH_UPSTREAM_CA": mbox_certs["ca"].cert}, generated=d)
    # the stand-ins speak only TLS: an answer proves a verified TLS hop
    seen = set()
    for i in range(1, 41):
        st, body = admin_get(hp.admin_port, source="127.0.1.%d" % i)
        assert st == 200, body
        seen.add(json.loads(body)["server"])
        if len(seen) == 2:
            break
    assert seen == {"mbox1-admin", "mbox2-admin"}


def test_generated_admin_backend_checks_the_tls_name(admin_site, mailboxes, tls_admin_boxes,
                                                     gatehouse, make_conf, mbox_certs, gh_tmp):
    # mbox1's tls_name is not the name its certificate carries: never used
    d = _generate(gatehouse, make_conf, mailboxes, {"mbox1": tls_admin_boxes["mbox1"]},
                  os.path.join(gh_tmp, "gen-%d" % free_port()),
                  tls_names={"mbox1": "mbox2"})
    hp = admin_site(env={"GH_UPSTREAM_PROTO": "https",
                         "GH_UPSTREAM_CA": mbox_certs["ca"].cert}, generated=d)
    st, body = admin_get(hp.admin_port, source="127.0.0.2")
    assert st == 503 and "-admin" not in body, body


def test_haproxy_servers_output_with_and_without_admin_ports(gatehouse, make_conf):
    servers = {"mbox2": {"address": "127.0.0.1", "http": 8080, "admin": 7071},
               "mbox1": {"address": "::1", "http": 8081, "admin": 6071,
                         "tls_name": "mbox1.internal"},
               "mbox3": {"address": "127.0.0.3", "http": 8082},
               "store4": {"address": "127.0.0.4", "imap": 143}}
    gh = gatehouse(make_conf(servers=servers))
    r = gh.run("haproxy-servers", json_out=False)
    assert r.rc == 0, r
    pool, _, admin = r.stdout.partition("backend be_admin\n")
    assert "server mbox3 127.0.0.3:8082" in pool and "be_pool" in pool
    assert admin.startswith("    balance source\n    hash-type consistent\n"), admin
    lines = admin.splitlines()
    tls = lines.index('.if streq("${GH_UPSTREAM_PROTO-http}",https)')
    plain = lines.index(".else")
    assert lines[-1] == ".endif"
    assert lines[tls + 1].startswith("    server mbox1 ipv6@::1:6071 check inter 2s ssl "
                                     "verify required ca-file")
    assert "sni str(mbox1.internal) verifyhost mbox1.internal check-sni mbox1.internal" \
        in lines[tls + 1]
    assert lines[tls + 2].startswith("    server mbox2 127.0.0.1:7071 check inter 2s ssl ")
    assert lines[plain + 1:-1] == ["    server mbox1 ipv6@::1:6071 check inter 2s",
                                   "    server mbox2 127.0.0.1:7071 check inter 2s"]
    # servers without an admin port (mbox3, store4) are not admin servers
    assert "mbox3" not in admin and "store4" not in admin
    j = gh.run("haproxy-servers")
    assert j.rc == 0 and j.data["admin"] == [
        {"name": "mbox1", "address": "::1", "port": 6071},
        {"name": "mbox2", "address": "127.0.0.1", "port": 7071}], j
    # admin ports are never route destinations
    del servers["store4"]
    for s in servers.values():
        s.pop("admin", None)
    r = gatehouse(make_conf(servers=servers)).run("haproxy-servers", json_out=False)
    assert r.rc == 0 and r.stdout.rstrip().endswith(
        "backend be_admin\n    balance source\n    hash-type consistent"), r.stdout
    assert ".if" not in r.stdout


def test_haproxy_servers_allowed_dst_excludes_admin_ports(gatehouse, make_conf, gh_tmp):
    d = os.path.join(gh_tmp, "gen-%d" % free_port())
    os.makedirs(d)
    servers = {"mbox1": {"address": "127.0.0.1", "http": 8080, "https": 8443, "admin": 7071}}
    r = gatehouse(make_conf(servers=servers)).run("haproxy-servers", "-o", d, json_out=False)
    assert r.rc == 0, r
    with open(os.path.join(d, "allowed-dst.lst")) as f:
        assert f.read().split() == ["127.0.0.1:8080", "127.0.0.1:8443"]
    with open(os.path.join(d, "route-index.map")) as f:
        assert "7071" not in f.read()


def test_haproxy_servers_refuses_an_unsafe_tls_name(gatehouse, make_conf):
    servers = {"mbox1": {"address": "127.0.0.1", "http": 8080, "admin": 7071,
                         "tls_name": "x ssl verify none"}}
    r = gatehouse(make_conf(servers=servers)).run("haproxy-servers", json_out=False)
    assert r.rc == 1 and "tls_name" in r.stderr, r
