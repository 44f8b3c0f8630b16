"""The Kerberos test infrastructure works against a real server: an MIT KDC
(gh.kdc), real GSSAPI clients (gh.gssclient: Cyrus imtest/pop3test, curl,
python3-gssapi) and Dovecot 2.3's own GSSAPI (dovecot-gssapi), plus
Dovecot master-user PLAIN logins (gh.dovecot master_users) the mail proxy
will use behind a Kerberos login.
"""
import base64
import imaplib
import os
import poplib
import time

import pytest

from gh import dovecot as gh_dovecot
from gh import gssclient
from gh import kdc as gh_kdc
from gh import procs
from gh import wait as gh_wait
from kdc_fixtures import *  # noqa: F401,F403 - fixtures
from kdc_fixtures import _dir

MASTER, SECRET = "gh-master", "master-secret"
MSG = b"From: a@example.com\r\nSubject: kdc fixture\r\n\r\nhello\r\n"


def _gss_dovecot(gh_tmp, k, cert=None):
    """A dovecot with GSSAPI for GH.TEST (only) and a master user."""
    kt = k.keytab(os.path.join(_dir(gh_tmp, "kt"), "dovecot.keytab"),
                  principals=["imap/localhost@GH.TEST", "pop/localhost@GH.TEST"])
    dv = gh_dovecot.Dovecot(_dir(gh_tmp, "dv-gss"), "mbox1", nusers=3, cert=cert,
                            master_users={MASTER: SECRET},
                            gssapi=dict(keytab=kt, env=k.server_env()))
    return dv


@pytest.fixture(scope="module")
def gss(gh_tmp, kdc, mbox_certs):
    """(kdc, dovecot, alice's Ccache); alice@gh.test has one message."""
    dv = _gss_dovecot(gh_tmp, kdc, cert=mbox_certs["mbox1"])
    try:
        dv.add_user("alice", "alice-plain-pw")
        dv.deliver("alice@gh.test", MSG)
        yield kdc, dv, kdc.kinit("alice")
    finally:
        dv.stop()


def test_kinit_ccache_and_lifetime(kdc):
    cc = kdc.kinit("bob", lifetime="7m")
    assert cc.name.startswith("FILE:") and os.path.exists(cc.path)
    assert cc.env["KRB5CCNAME"] == cc.name
    out = kdc.klist(cc)
    assert "Default principal: bob@GH.TEST" in out and "krbtgt/GH.TEST@GH.TEST" in out
    with pytest.raises(gh_kdc.KinitError):
        kdc.kinit("bob", password="wrong")
    carol = kdc.kinit("carol@OTHER.TEST")
    assert "krbtgt/OTHER.TEST@OTHER.TEST" in kdc.klist(carol)
    assert "nomail@GH.TEST" in kdc.klist(kdc.kinit("nomail"))
    # nothing of the system's Kerberos is used
    for f in (kdc.krb5_conf, kdc.kdc_conf):
        assert f.startswith(kdc.dir)
    assert cc.env["KRB5RCACHEDIR"] == kdc.rcache_dir


def test_keytab_keeps_key_unless_rotated(gh_tmp, kdc):
    d = _dir(gh_tmp, "kt")
    kdc.add_principal("svc/rot")
    a = kdc.keytab(os.path.join(d, "a.keytab"), ["svc/rot"])
    b = kdc.keytab(os.path.join(d, "b.keytab"), ["svc/rot"])
    ka, kb = kdc.keytab_entries(a), kdc.keytab_entries(b)
    assert ka and ka == kb and {p for _, p in ka} == {"svc/rot@GH.TEST"}
    kdc.rotate_key("svc/rot")
    c = kdc.keytab(os.path.join(d, "c.keytab"), ["svc/rot"])
    assert {v for v, _ in kdc.keytab_entries(c)} == {ka[0][0] + 1}
    both = kdc.keytab(os.path.join(d, "both.keytab"))
    assert {p for _, p in kdc.keytab_entries(both)} == set(gh_kdc.SERVICES_BOTH_REALMS)


def test_imtest_sasl_ir_and_without(gss):
    k, dv, alice = gss
    r = gssclient.imtest(dv.imap, alice.env)
    assert r.ok, r.output
    assert "a1 OK [READ-WRITE]" in r.after and "* 1 EXISTS" in r.after
    assert "C: A01 AUTHENTICATE GSSAPI Y" in r.output      # SASL-IR: token on the line
    r = gssclient.imtest(dv.imap, alice.env, sasl_ir=False)
    assert r.ok, r.output
    assert "C: A01 AUTHENTICATE GSSAPI\n" in r.output
    assert "* 1 EXISTS" in r.after
    lg = dv.wait_login("alice@gh.test")
    assert lg["method"] == "GSSAPI"


def test_pop3test(gss):
    k, dv, alice = gss
    r = gssclient.pop3test(dv.pop3, alice.env)
    assert r.ok, r.output
    assert r.answer.startswith("+OK")
    assert "+OK 1 %d" % len(MSG) in r.after


def test_curl(gss):
    k, dv, alice = gss
    r = gssclient.curl_login("imap", dv.imap, alice.env)
    assert r.ok, r.output
    assert "INBOX" in r.after
    r = gssclient.curl_login("pop3", dv.pop3, alice.env)
    assert r.ok, r.output
    assert r.after.strip() == "1 %d" % len(MSG)


def test_python_gssapi(gss):
    k, dv, alice = gss
    r = gssclient.imap_login(dv.imap, alice.env)
    assert r.ok, r
    assert "SELECT OK [b'1']" in r.after
    r = gssclient.pop_login(dv.pop3, alice.env)
    assert r.ok, r
    assert r.after.startswith("+OK 1 ")
    for proto, port in (("imap", dv.imap), ("pop3", dv.pop3)):
        for ir in (True, False):
            r = gssclient.sasl_login(proto, port, alice.env, initial_response=ir)
            assert r.ok, r.output
    r = gssclient.pop_login(dv.pop3, alice.env, initial_response=True, mutual=False)
    assert r.ok, r


def test_tls(gss):
    """Every client logs in over implicit TLS and after STARTTLS."""
    k, dv, alice = gss
    ports = {("imap", "implicit"): dv.imaps, ("imap", "starttls"): dv.imap,
             ("pop3", "implicit"): dv.pop3s, ("pop3", "starttls"): dv.pop3}
    for (proto, tls), port in ports.items():
        tool = gssclient.imtest if proto == "imap" else gssclient.pop3test
        r = tool(port, alice.env, tls=tls)
        assert r.ok and "Security strength factor: 256" in r.output, r.output
        r = gssclient.sasl_login(proto, port, alice.env, tls=tls)
        assert r.ok, r.output
        login = gssclient.imap_login if proto == "imap" else gssclient.pop_login
        r = login(port, alice.env, tls=tls)
        assert r.ok, r
        r = gssclient.curl_login(proto, port, alice.env, tls=tls)
        assert r.ok, r.output
    n = sum(1 for lg in dv.logins() if lg["method"] == "GSSAPI" and "TLS" in lg["line"])
    assert n >= 16


def test_no_ticket_fails(gss):
    k, dv, alice = gss
    empty = k.empty_ccache()
    r = gssclient.imtest(dv.imap, empty.env)
    assert not r.ok and not r.sent_auth and r.error, r.output
    r = gssclient.pop3test(dv.pop3, empty.env)
    assert not r.ok, r.output
    r = gssclient.imap_login(dv.imap, empty.env)
    assert not r.ok and not r.sent_auth and r.error, r
    r = gssclient.curl_login("imap", dv.imap, empty.env)
    assert not r.ok, r.output


def test_wrong_realm_fails(gss):
    """carol@OTHER.TEST with a ticket for imap/localhost@OTHER.TEST: the
    dovecot's keytab holds GH.TEST keys only."""
    k, dv, alice = gss
    carol = k.kinit("carol@OTHER.TEST")
    env = k.client_env(carol, host_realm="OTHER.TEST")
    r = gssclient.imtest(dv.imap, env)
    assert not r.ok and r.sent_auth and "NO" in r.answer, r.output
    r = gssclient.pop_login(dv.pop3, env)
    assert not r.ok and r.sent_auth and r.answer.startswith("-ERR"), r
    r = gssclient.imap_login(dv.imap, env)
    assert not r.ok and r.sent_auth and "AUTHENTICATIONFAILED" in r.answer, r
    gh_wait.until(lambda: "imap/localhost@OTHER.TEST not found in keytab" in dv.log_text(),
                  "dovecot's keytab complaint", seen=lambda: dv.log_text()[-2000:])
    # with the ordinary env, carol gets imap/localhost@GH.TEST across
    # realms: a valid ticket from a realm a server may refuse to map
    r = gssclient.imap_login(dv.imap, carol.env)
    assert r.ok, r
    dv.wait_login("carol@other.test")


def test_security_layer_choice(gss):
    """The python client answers the layer it is told to, whatever the
    server offered (a client insisting on integrity or confidentiality).
    Dovecot 2.3 offers "none" only and ignores the client's choice (it
    lets such a client in); the proxy must refuse it. imtest with -k 1
    gives up on its own."""
    k, dv, alice = gss
    r = gssclient.sasl_login("imap", dv.imap, alice.env)
    assert r.ok and r.layer_offer == gssclient.LAYER_NONE and r.layer_sent == 1, r
    for layer in (gssclient.LAYER_INTEGRITY, gssclient.LAYER_CONFIDENTIALITY):
        r = gssclient.sasl_login("imap", dv.imap, alice.env, layer=layer, max_size=65536)
        assert r.layer_offer == gssclient.LAYER_NONE and r.layer_sent == layer, r.output
        r = gssclient.imap_login(dv.imap, alice.env, layer=layer, max_size=65536)
        assert r.layer_offer == gssclient.LAYER_NONE and r.layer_sent == layer, r
        r = gssclient.pop_login(dv.pop3, alice.env, layer=layer, max_size=65536)
        assert r.layer_offer == gssclient.LAYER_NONE and r.layer_sent == layer, r
    r = gssclient.imtest(dv.imap, alice.env, min_ssf=1)
    assert not r.ok and "too weak" in (r.error or ""), r.output
    assert "C: *" in r.output           # imtest cancelled the exchange


def test_replayed_token_refused(gss):
    """A token is accepted once; the replay cache (in the KDC's directory,
    KRB5RCACHEDIR) refuses it the second time."""
    k, dv, alice = gss
    it = gssclient.initial_token(alice.env, "imap")
    assert gssclient.sasl_login("imap", dv.imap, alice.env, initiator=it).ok
    r = gssclient.sasl_login("imap", dv.imap, alice.env, initiator=it)
    assert not r.ok and r.answer.startswith("A1 NO"), r.output
    gh_wait.until(lambda: "Request is a replay" in dv.log_text(), "dovecot: replay",
                  seen=lambda: dv.log_text()[-1500:])
    assert any(f.endswith(".rcache2") for f in os.listdir(k.rcache_dir))


def test_expired_ticket_token_refused(gh_tmp, kdc_factory):
    """clockskew 2 s and a 3 s ticket: a token made while the ticket was
    valid and sent after end time + skew is refused."""
    k = kdc_factory(clockskew=2)
    dv = _gss_dovecot(gh_tmp, k)
    try:
        cc = k.kinit("alice", lifetime=3)
        fresh = gssclient.initial_token(cc.env, "imap")
        held = gssclient.initial_token(cc.env, "imap")
        t_end = time.time() + 3 + 2 + 1
        assert gssclient.sasl_login("imap", dv.imap, cc.env, initiator=fresh).ok
        gh_wait.until(lambda: time.time() > t_end, "the ticket's end + clockskew", timeout=15)
        r = gssclient.sasl_login("imap", dv.imap, cc.env, initiator=held)
        assert not r.ok and r.answer.startswith("A1 NO"), r.output
        gh_wait.until(lambda: "Ticket expired" in dv.log_text(), "dovecot: ticket expired",
                      seen=lambda: dv.log_text()[-1500:])
        with pytest.raises(Exception, match="(?i)expired"):   # no new token either
            gssclient.initial_token(cc.env, "imap")
    finally:
        procs.stop_many([dv.proc])


def _plain(authz, authc, pw):
    return ("%s\0%s\0%s" % (authz, authc, pw)).encode()


def test_master_user_plain(gss):
    k, dv, alice = gss
    m = imaplib.IMAP4("127.0.0.1", dv.imap, timeout=10)
    try:
        typ, _ = m.authenticate("PLAIN", lambda _: _plain("alice", MASTER, SECRET))
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK"
    finally:
        m.logout()
    dv.wait_login("alice")
    m = imaplib.IMAP4("127.0.0.1", dv.imap, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            m.authenticate("PLAIN", lambda _: _plain("alice", MASTER, "wrong"))
        with pytest.raises(imaplib.IMAP4.error):   # pass = yes: the user must exist
            m.authenticate("PLAIN", lambda _: _plain("nosuchuser", MASTER, SECRET))
    finally:
        m.logout()
    p = poplib.POP3("127.0.0.1", dv.pop3, timeout=10)
    try:
        ok = p._shortcmd("AUTH PLAIN " + base64.b64encode(_plain("alice", MASTER, SECRET))
                         .decode())
        assert ok.startswith(b"+OK")
        assert p.stat()[0] == 0         # "alice", not alice@gh.test's mailbox
    finally:
        p.quit()
    p = poplib.POP3("127.0.0.1", dv.pop3, timeout=10)
    try:
        with pytest.raises(poplib.error_proto):
            p._shortcmd("AUTH PLAIN " + base64.b64encode(_plain("alice", MASTER, "bad"))
                        .decode())
    finally:
        p.quit()
    assert sum(1 for lg in dv.logins() if lg["user"] == "alice" and lg["method"] == "PLAIN") >= 2
