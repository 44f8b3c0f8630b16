"""Kerberos (SASL GSSAPI) logins through gatehouse-mailproxy.

Real parts: an MIT KDC (gh.kdc: realms GH.TEST and OTHER.TEST), the shared
slapd, memcached, three Dovecots with a master user, and clients written by
others: Cyrus imtest/pop3test, curl, and Python's imaplib/poplib with
python3-gssapi (gh.gssclient). The proxy accepts the ticket, maps the
principal to an account, routes and throttles it like a password login, and
logs in to the Dovecot as the master user on the user's behalf.
"""
import base64
import os
import shutil
import socket
import time

import pytest

from gh import dovecot as gh_dovecot
from gh import gssclient, procs
from kdc_fixtures import *  # noqa
from mail_fixtures import *  # noqa

MASTER = "gh-master"
MASTER_PW = "Mst-9f3c1a7e-never-in-a-log"


@pytest.fixture(scope="module")
def dovecots(gh_tmp, mbox_certs):
    """The three mailbox servers, each with the master user (overrides the
    conftest fixture for this module)."""
    made = {}
    try:
        for name in ("mbox1", "mbox2", "mbox3"):
            d = os.path.join(gh_tmp, "dovecot-gss-" + name)
            os.makedirs(d)
            made[name] = gh_dovecot.Dovecot(d, name, cert=mbox_certs[name],
                                            master_users={MASTER: MASTER_PW})
        yield made
    finally:
        procs.stop_many([dv.proc for dv in made.values()])


_n = [0]


def gss_proxy(mailproxy, kdc, gh_tmp, keytab=None, ldap_opts=None, **opts):
    """A proxy accepting Kerberos logins of <kdc>'s realms (GH.TEST users
    log in as user@example.com, the [ldap] default_domain)."""
    _n[0] += 1
    kt = keytab or kdc.keytab(os.path.join(gh_tmp, "proxy-%d.keytab" % _n[0]))
    pwf = os.path.join(gh_tmp, "master-%d.pw" % _n[0])
    with open(pwf, "w") as f:
        f.write(MASTER_PW + "\n")
    os.chmod(pwf, 0o600)
    keys = {"gssapi_keytab": kt, "gssapi_realm": "GH.TEST", "master_user": MASTER,
            "master_password_file": pwf, "master_cleartext_loopback": True}
    keys.update(opts)
    lo = {"default_domain": "example.com"}
    lo.update(ldap_opts or {})
    return mailproxy(env=kdc.server_env(), ldap_opts=lo, **keys)


def no_secret_anywhere(mp):
    """The master secret is in no line the proxy wrote."""
    assert MASTER_PW not in mp.log_text()
    assert not any(MASTER_PW in l for l in mp.audit_lines())


def test_imap_clients_land_on_their_servers(mailproxy, kdc, dovecots, gh_tmp):
    mp = gss_proxy(mailproxy, kdc, gh_tmp)
    alice = kdc.kinit("alice")
    bob = kdc.kinit("bob")
    # imtest with SASL-IR (token on the AUTHENTICATE line) and mutual auth
    r = gssclient.imtest(mp.imap, alice.env, tls="starttls")
    assert r.ok, r.output
    assert "a1 OK" in r.after, r.output
    lg = dovecots["mbox1"].wait_login("alice@example.com")
    assert lg["proto"] == "imap"
    # imtest without SASL-IR: "+ " first, then the token
    r = gssclient.imtest(mp.imap, bob.env, sasl_ir=False, tls="starttls")
    assert r.ok, r.output
    assert "AUTHENTICATE GSSAPI\r\n" in r.output or "AUTHENTICATE GSSAPI\n" in r.output, r.output
    dovecots["mbox2"].wait_login("bob@example.com")
    # curl: SASL-IR, no mutual authentication (no AP-REP round)
    r = gssclient.curl_login("imap", mp.imaps, alice.env, tls="implicit")
    assert r.ok, r.output
    # Python imaplib + python3-gssapi, on IMAPS
    r = gssclient.imap_login(mp.imaps, bob.env, tls="implicit")
    assert r.ok, r
    assert r.layer_offer == gssclient.LAYER_NONE     # only "no security layer" is offered
    assert wait_for(lambda: sum("result=ok" in l for l in mp.audit_lines()) >= 4), \
        mp.audit_lines()
    assert any('user="alice@example.com"' in l and "result=ok" in l for l in mp.audit_lines())
    # the proxy knows no password of alice: Dovecot let her in through the
    # master user's PLAIN login on her behalf
    assert all(l["method"] == "PLAIN" for l in dovecots["mbox1"].logins()
               if l["user"] == "alice@example.com")
    no_secret_anywhere(mp)


def test_pop3_clients_land_on_their_servers(mailproxy, kdc, dovecots, gh_tmp):
    mp = gss_proxy(mailproxy, kdc, gh_tmp)
    alice = kdc.kinit("alice")
    bob = kdc.kinit("bob")
    r = gssclient.pop3test(mp.pop3, alice.env, tls="starttls")
    assert r.ok, r.output
    assert "+OK" in r.after, r.output
    lg = dovecots["mbox1"].wait_login("alice@example.com")
    assert lg["proto"] in ("imap", "pop3")
    assert any(l["proto"] == "pop3" and l["user"] == "alice@example.com"
               for l in dovecots["mbox1"].logins())
    # poplib, with an initial response (RFC 5034), on POP3S
    r = gssclient.pop_login(mp.pop3s, bob.env, initial_response=True, tls="implicit")
    assert r.ok, r
    assert wait_for(lambda: any(l["proto"] == "pop3" and l["user"] == "bob@example.com"
                                for l in dovecots["mbox2"].logins()))
    # curl's POP3
    r = gssclient.curl_login("pop3", mp.pop3s, alice.env, tls="implicit")
    assert r.ok, r.output
    no_secret_anywhere(mp)


def test_unknown_principal_is_a_wrong_password(mailproxy, kdc, gh_tmp):
    mp = gss_proxy(mailproxy, kdc, gh_tmp)
    # nomail@GH.TEST has a valid ticket but no mail account
    r = gssclient.imap_login(mp.imap, kdc.kinit("nomail").env, tls="starttls")
    assert not r.ok and r.sent_auth
    assert "NO [AUTHENTICATIONFAILED]" in r.answer, r
    assert wait_for(lambda: any('user="nomail"' in l and "result=unknown" in l
                                for l in mp.audit_lines())), mp.audit_lines()
    r = gssclient.pop3test(mp.pop3, kdc.kinit("nomail").env, tls="starttls")
    assert not r.ok
    assert "-ERR [AUTH] Authentication failed." in r.output, r.output


def test_other_realm_refused_unless_mapped(mailproxy, kdc, dovecots, gh_tmp):
    carol = kdc.kinit("carol@OTHER.TEST")   # cross-realm ticket for imap/localhost@GH.TEST
    mp = gss_proxy(mailproxy, kdc, gh_tmp)
    r = gssclient.imap_login(mp.imap, carol.env, tls="starttls")
    assert not r.ok and r.sent_auth
    assert "NO [AUTHENTICATIONFAILED]" in r.answer, r
    assert wait_for(lambda: "principal carol@OTHER.TEST: realm not accepted" in mp.log_text())
    assert wait_for(lambda: any("result=gssapi-refused" in l for l in mp.audit_lines()))
    # mapped to a mail domain, the same principal is carol@example.org (mbox3)
    mp2 = gss_proxy(mailproxy, kdc, gh_tmp, gssapi_realms="OTHER.TEST=example.org")
    r = gssclient.imap_login(mp2.imap, carol.env, tls="starttls")
    assert r.ok, r
    dovecots["mbox3"].wait_login("carol@example.org")
    # an instance is another principal, never the user
    kdc.add_principal("alice/admin", password="adm-pw")
    r = gssclient.imap_login(mp.imap, kdc.kinit("alice/admin", password="adm-pw").env,
                             tls="starttls")
    assert not r.ok
    assert wait_for(lambda: "principal has an instance" in mp.log_text())


def test_expired_ticket_refused(mailproxy, kdc_factory, gh_tmp):
    k = kdc_factory(clockskew=2)
    mp = gss_proxy(mailproxy, k, gh_tmp)
    cc = k.kinit("alice", lifetime="3s")
    tok = gssclient.initial_token(cc.env, service="imap")   # made while the ticket is valid
    # wait until the ticket's end plus the allowed skew has passed
    deadline = time.monotonic() + 3 + 2 + 1.5
    while time.monotonic() < deadline:
        time.sleep(0.2)
    r = gssclient.sasl_login("imap", mp.imap, cc.env, initiator=tok, tls="starttls")
    assert not r.ok and r.sent_auth
    assert "NO [AUTHENTICATIONFAILED]" in r.answer, r
    assert wait_for(lambda: "expired" in mp.log_text().lower()), mp.log_text()[-2000:]


def test_kdc_down_tickets_still_work_and_passwords_unaffected(mailproxy, kdc_factory, gh_tmp):
    k = kdc_factory()
    mp = gss_proxy(mailproxy, k, gh_tmp)
    alice = k.kinit("alice")
    bob = k.kinit("bob")
    # alice's client fetches its imap/ service ticket now, while the KDC is up
    assert gssclient.imtest(mp.imap, alice.env, tls="starttls").ok
    k.stop()
    # the proxy never needs the KDC: a held service ticket still logs in
    r = gssclient.imtest(mp.imap, alice.env, tls="starttls")
    assert r.ok, r.output
    # bob has no service ticket and cannot get one: his client gives up
    r = gssclient.imtest(mp.imap, bob.env, tls="starttls")
    assert not r.ok
    # password logins go on
    import imaplib
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert c.login("carol@example.org", password("carol@example.org"))[0] == "OK"
    c.logout()


def test_keytab_unreadable_is_a_temporary_failure(mailproxy, kdc, gh_tmp):
    kt = kdc.keytab(os.path.join(gh_tmp, "vanishing.keytab"))
    mp = gss_proxy(mailproxy, kdc, gh_tmp, keytab=kt)
    os.unlink(kt)
    r = gssclient.imap_login(mp.imap, kdc.kinit("alice").env, tls="starttls")
    assert not r.ok
    assert "NO [UNAVAILABLE] Kerberos authentication temporarily unavailable" in r.answer, r
    r = gssclient.pop_login(mp.pop3, kdc.kinit("alice").env, tls="starttls")
    assert not r.ok
    assert "-ERR [SYS/TEMP] Kerberos authentication" in r.answer, r
    assert wait_for(lambda: "GSSAPI login failed: keytab" in mp.log_text()), \
        mp.log_text()[-2000:]
    import imaplib
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert c.login("alice@example.com", password("alice@example.com"))[0] == "OK"
    c.logout()


def test_throttle_applies_to_gssapi_logins(mailproxy, kdc, gh_tmp):
    mp = gss_proxy(mailproxy, kdc, gh_tmp,
                   throttle={"user_max": 2, "user_ttl": 60,
                             "user_reject_message": "Too many logins for this user"})
    bob = kdc.kinit("bob")
    for _ in range(2):
        r = gssclient.imap_login(mp.imap, bob.env, tls="starttls")
        assert r.ok, r
    r = gssclient.imap_login(mp.imap, bob.env, tls="starttls")
    assert not r.ok
    assert "Too many logins for this user" in r.answer, r
    assert wait_for(lambda: any('user="bob"' in l and "result=throttled" in l
                                for l in mp.audit_lines())), mp.audit_lines()
    # the counter is the account's: a password login of bob is throttled too
    import imaplib
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="Too many logins for this user"):
        c.login("bob@example.com", password("bob@example.com"))


def test_security_layer_insisted_on_is_refused(mailproxy, kdc, gh_tmp):
    mp = gss_proxy(mailproxy, kdc, gh_tmp)
    alice = kdc.kinit("alice")
    for layer in (gssclient.LAYER_INTEGRITY, gssclient.LAYER_CONFIDENTIALITY):
        r = gssclient.imap_login(mp.imap, alice.env, layer=layer, tls="starttls")
        assert not r.ok and r.layer_sent == layer, r
        assert "NO [AUTHENTICATIONFAILED]" in r.answer, r
    assert wait_for(lambda: "insists on a security layer" in mp.log_text())
    # imtest told to need a layer (no TLS to count on) gives up by itself ("*")
    r = gssclient.imtest(mp.imap, alice.env, min_ssf=1)
    assert not r.ok, r.output
    # another user as authorization identity is refused; one's own is fine
    r = gssclient.imap_login(mp.imap, alice.env, authzid="bob@example.com", tls="starttls")
    assert not r.ok
    assert wait_for(lambda: "may not log in as another user" in mp.log_text())
    r = gssclient.imap_login(mp.imap, alice.env, authzid="alice@example.com", tls="starttls")
    assert r.ok, r


def test_announced_only_where_logins_are_allowed(mailproxy, kdc, gh_tmp):
    mp = gss_proxy(mailproxy, kdc, gh_tmp, cleartext_login=False)
    raw = socket.create_connection(("127.0.0.1", mp.imap), timeout=10)
    greeting = raw.recv(4096)
    assert b"AUTH=GSSAPI" not in greeting and b"LOGINDISABLED" in greeting
    raw.sendall(b"a1 AUTHENTICATE GSSAPI\r\n")
    assert b"a1 NO [PRIVACYREQUIRED]" in raw.recv(4096)
    raw.close()
    # after STARTTLS it is offered and works
    r = gssclient.imtest(mp.imap, kdc.kinit("alice").env, tls="starttls")
    assert r.ok, r.output
    assert "AUTH=GSSAPI" in r.output
    # without a keytab, nothing is announced and the mechanism is unknown
    plain = mailproxy()
    raw = socket.create_connection(("127.0.0.1", plain.imap), timeout=10)
    greeting = raw.recv(4096)
    assert b"AUTH=GSSAPI" not in greeting and b"AUTH=PLAIN" in greeting
    raw.sendall(b"a1 AUTHENTICATE GSSAPI\r\n")
    assert b"a1 NO Unsupported authentication mechanism" in raw.recv(4096)
    raw.close()


def _imap_raw(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    return s, f


def test_bad_tokens_get_a_clear_answer(mailproxy, kdc, gh_tmp):
    mp = gss_proxy(mailproxy, kdc, gh_tmp)
    s, f = _imap_raw(mp.imap)
    # garbage in valid base64: the Kerberos library refuses it
    s.sendall(b"a1 AUTHENTICATE GSSAPI " + base64.b64encode(b"\x60\x03garbage") + b"\r\n")
    assert f.readline().startswith(b"a1 NO [AUTHENTICATIONFAILED]")
    # not base64
    s.sendall(b"a2 AUTHENTICATE GSSAPI\r\n")
    assert f.readline().startswith(b"+ ")
    s.sendall(b"!!not-base64!!\r\n")
    assert f.readline().startswith(b"a2 NO [AUTHENTICATIONFAILED]")
    # cancelled by the client
    s.sendall(b"a3 AUTHENTICATE GSSAPI\r\n")
    assert f.readline().startswith(b"+ ")
    s.sendall(b"*\r\n")
    assert f.readline().startswith(b"a3 BAD")
    # a response line over the limit: BAD, and the session goes on
    s.sendall(b"a4 AUTHENTICATE GSSAPI\r\n")
    assert f.readline().startswith(b"+ ")
    s.sendall(b"A" * 40000 + b"\r\n")
    line = f.readline()
    assert line.startswith(b"a4 BAD") or line.startswith(b"* BAD"), line
    s.sendall(b"a5 NOOP\r\n")
    assert f.readline().startswith(b"a5 OK")
    s.close()
    assert wait_for(lambda: "GSSAPI login refused" in mp.log_text())
    assert wait_for(lambda: "GSSAPI: response not base64" in mp.log_text())
    # still serving
    assert gssclient.imap_login(mp.imap, kdc.kinit("alice").env, tls="starttls").ok


def test_master_credential_never_in_cleartext(mailproxy, kdc, gh_tmp, gh_bin, make_conf):
    exe = gh_bin("gatehouse-mailproxy")
    pwf = os.path.join(gh_tmp, "master-check.pw")
    with open(pwf, "w") as f:
        f.write(MASTER_PW + "\n")
    kt = kdc.keytab(os.path.join(gh_tmp, "check.keytab"))
    base = {"imap": "127.0.0.1:1", "gssapi_keytab": kt, "gssapi_realm": "GH.TEST",
            "master_user": MASTER, "master_password_file": pwf}
    import subprocess

    def check(mp_keys, servers=None):
        conf = make_conf(ldap=["ldap://127.0.0.1:1"], mailproxy=mp_keys,
                         servers=servers)
        return subprocess.run([exe, "-t", "-c", conf], capture_output=True, text=True,
                              timeout=20)
    # without TLS to the mailbox servers and without the loopback permission
    r = check(dict(base))
    assert r.returncode != 0 and "set upstream_tls = yes" in r.stderr, r.stderr
    # the loopback permission does not cover a server elsewhere
    r = check(dict(base, master_cleartext_loopback=True),
              servers={"far": {"address": "192.0.2.10", "imap": 143}})
    assert r.returncode != 0 and "is not on loopback" in r.stderr, r.stderr
    # with TLS, or loopback servers and the permission, it starts
    assert check(dict(base, upstream_tls=True)).returncode == 0
    r = check(dict(base, master_cleartext_loopback=True),
              servers={"near": {"address": "127.0.0.1", "imap": 143}})
    assert r.returncode == 0, r.stderr
    # an unreadable secret file is refused at start, and never echoed
    os.chmod(pwf, 0)
    shutil.move(pwf, pwf + ".gone")
    r = check(dict(base, upstream_tls=True))
    assert r.returncode != 0 and "master_password_file" in r.stderr
    assert MASTER_PW not in r.stderr + r.stdout


def test_upstream_tls_master_login(mailproxy, kdc, dovecots, gh_tmp):
    # the shipping setup: the master login over TLS to the mailbox servers
    mp = gss_proxy(mailproxy, kdc, gh_tmp, upstream_tls=True, master_cleartext_loopback=False)
    r = gssclient.imtest(mp.imaps, kdc.kinit("alice").env, tls="implicit")
    assert r.ok, r.output
    assert any(l["user"] == "alice@example.com" for l in dovecots["mbox1"].logins())
    no_secret_anywhere(mp)


def test_blocked_kerberos_step_does_not_stall_the_loop(mailproxy, kdc, gh_tmp):
    # a keytab that is a FIFO: reading it blocks until someone writes
    fifo = os.path.join(gh_tmp, "blocking.keytab")
    os.mkfifo(fifo)
    mp = gss_proxy(mailproxy, kdc, gh_tmp, keytab=fifo, upstream_timeout="3s")
    import threading
    res = {}
    t = threading.Thread(target=lambda: res.update(
        r=gssclient.imap_login(mp.imap, kdc.kinit("alice").env, timeout=30)))
    t.start()
    try:
        assert wait_for(lambda: "-> gssapi" in mp.log_text(), 10)
        # the worker is stuck in the keytab; the event loop answers everyone else
        import imaplib
        for user in ("carol@example.org", "bob@example.com"):
            c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=5)
            assert c.login(user, password(user))[0] == "OK"
            c.logout()
        # the stuck login ends with a temporary failure after upstream_timeout
        t.join(20)
        assert not t.is_alive()
        assert "NO [UNAVAILABLE] Kerberos authentication" in res["r"].answer, res
        assert "Kerberos step timeout" in mp.log_text()
    finally:
        # release a stuck worker: a writer that closes at once gives it EOF
        _release_fifo(fifo)
        t.join(5)


def _release_fifo(fifo):
    """Open and close <fifo> for writing while someone waits to read it
    (ENXIO: no reader left)."""
    for _ in range(10):
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return
        time.sleep(0.05)


def test_reload_with_broken_kerberos_settings_is_refused(mailproxy, kdc, gh_tmp):
    import signal
    mp = gss_proxy(mailproxy, kdc, gh_tmp)
    good = open(mp.conf).read()
    with open(mp.conf, "w") as f:
        f.write(good.replace("master_user = %s" % MASTER, "master_user ="))
    mp.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed, keeping the running configuration" in mp.log_text(),
                    10), mp.log_text()[-2000:]
    assert "gssapi_keytab needs" in mp.log_text()
    assert gssclient.imap_login(mp.imap, kdc.kinit("alice").env, tls="starttls").ok
