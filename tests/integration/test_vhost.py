"""Allowed virtual host names from LDAP ([ldap] vhost_filter) through
`gatehouse vhost`, with real slapd and memcached: the seed directory lists
mail.<domain> and webmail.<domain> as associatedDomain of each domain entry.
"""
import pytest

from gh import keys
from gh.slapd import gen_ldif
from gh.ports import closed_port

VHOST_FILTER = "(associatedDomain=%s)"


def results(r):
    return {h["host"]: h["result"] for h in r.data["hosts"]}


@pytest.fixture
def vh(make_conf, gatehouse, slapd, memcached):
    conf = make_conf(ldap=[slapd], memcached=[memcached],
                     ldap_opts={"vhost_filter": VHOST_FILTER},
                     memcached_opts={"negative_ttl": "60"},
                     spoa={"vhosts": "static.example.net *.example.io"})
    return gatehouse(conf), slapd, memcached


def test_vhosts_from_ldap_and_config(vh):
    gh, _, _ = vh
    listed = ["mail.example.com", "webmail.example.org"]
    assert all(h in gen_ldif.vhosts(h.split(".", 1)[1]) for h in listed)
    r = gh.run("vhost", "mail.example.com", "WEBMAIL.Example.ORG:443", "mail.example.org.",
               "static.example.net", "a.b.example.io")
    assert r.rc == 0, r
    assert set(results(r).values()) == {"allowed"}, r
    r = gh.run("vhost", "evil.example.org", "example.io", "mail.example.com:99999",
               "*)(associatedDomain=*", "mail.example.com\r\nX: y")
    assert r.rc == 1, r
    assert set(results(r).values()) == {"refused"}, r
    t = gh.run("vhost", "mail.example.com", "evil.example.org", json_out=False)
    assert t.rc == 1 and "mail.example.com: allowed" in t.stdout and \
        "evil.example.org: refused" in t.stdout, t


def test_ldap_answers_cached_and_outage(vh):
    gh, slapd, memcached = vh
    assert gh.run("vhost", "mail.example.com", "nope.example.com").rc == 1
    assert memcached.get(keys.make("v:", "mail.example.com")) == "1"
    assert memcached.get(keys.make("v:", "nope.example.com")) == "0"
    slapd.stop()
    # cached answers survive the outage, both ways
    r = gh.run("vhost", "mail.example.com")
    assert r.rc == 0 and results(r)["mail.example.com"] == "allowed", r
    r = gh.run("vhost", "nope.example.com")
    assert r.rc == 1 and results(r)["nope.example.com"] == "refused", r
    # an uncached name cannot be decided: temporary failure, not refused
    r = gh.run("vhost", "webmail.example.com")
    assert r.rc == 2 and results(r)["webmail.example.com"] == "tempfail", r
    # configured names need no LDAP
    assert gh.run("vhost", "static.example.net").rc == 0


def test_without_filter_config_only(make_conf, gatehouse, slapd_shared, memcached):
    gh = gatehouse(make_conf(ldap=[slapd_shared], memcached=[memcached],
                             spoa={"vhosts": "static.example.net"}))
    r = gh.run("vhost", "mail.example.com", "static.example.net")
    assert r.rc == 1, r
    assert results(r) == {"mail.example.com": "refused", "static.example.net": "allowed"}, r
    assert memcached.get(keys.make("v:", "mail.example.com")) is None


def test_bad_filter_refused_at_load(make_conf, gatehouse, slapd_shared):
    gh = gatehouse(make_conf(ldap=[slapd_shared], ldap_opts={"vhost_filter": "(cn=%d)"}))
    r = gh.run("check", json_out=False)
    assert r.rc != 0 and "vhost_filter" in (r.stdout + r.stderr), r
