"""gatehouse-mailproxy, IMAP: real clients (imaplib, curl, raw sockets)
through the proxy to real dovecots, routed by the shared slapd, throttled
with a real memcached."""
import base64
import imaplib
import select
import os
import socket
import ssl
import subprocess
import time

import pytest

from gh import ports
from mail_fixtures import *  # noqa: F401,F403
from mail_fixtures import LineClient, client_ctx, password, proxy_servers, wait_for

CLIENT_IP = "127.0.0.5"   # a loopback source the proxy itself never uses


class IMAPFrom(imaplib.IMAP4):
    """imaplib from source address CLIENT_IP."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(CLIENT_IP, 0))


def tls_ctx(mbox_certs, alpn=None):
    ctx = client_ctx(mbox_certs["ca"].cert, alpn)
    ctx.check_hostname = False    # the tests connect to 127.0.0.1
    return ctx


class Raw(LineClient):
    """A line-oriented raw client that can start TLS."""

    def starttls(self, ctx, sni=None):
        self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)


def test_imap_plain_login_lands_on_right_server(mailproxy, dovecots):
    mp = mailproxy()
    for user, server in (("alice@example.com", "mbox1"), ("bob@example.com", "mbox2"),
                         ("carol@example.org", "mbox3")):
        c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
        assert b"LOGINDISABLED" not in c.welcome
        typ, _ = c.login(user, password(user))
        assert typ == "OK"
        typ, data = c.select("INBOX")
        assert typ == "OK"
        c.logout()
        lg = dovecots[server].wait_login(user)
        assert lg["proto"] == "imap"
    assert wait_for(lambda: any("result=ok" in l for l in mp.audit_lines()))
    assert not any(password("alice@example.com") in l for l in mp.audit_lines())


def test_imap_dovecot_logs_real_client_address(mailproxy, dovecots):
    mp = mailproxy()
    c = IMAPFrom("127.0.0.1", mp.imap, timeout=10)
    c.login("bob@example.com", password("bob@example.com"))
    c.logout()
    assert wait_for(lambda: any(lg["user"] == "bob@example.com" and lg["rip"] == CLIENT_IP
                                for lg in dovecots["mbox2"].logins())), \
        dovecots["mbox2"].log_text()[-2000:]


def test_imap_default_requires_tls_then_starttls_works(mailproxy, dovecots, mbox_certs):
    mp = mailproxy(cleartext_login=False)
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert b"LOGINDISABLED" in c.welcome and b"STARTTLS" in c.welcome
    assert b"AUTH=PLAIN" not in c.welcome
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        c.login("alice@example.com", password("alice@example.com"))
    c.starttls(ssl_context=tls_ctx(mbox_certs))
    caps = c.capabilities
    assert "AUTH=PLAIN" in caps and "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    typ, _ = c.login("alice@example.com", password("alice@example.com"))
    assert typ == "OK"
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    assert wait_for(lambda: any("tls=yes" in l and "result=ok" in l for l in mp.audit_lines()))


def test_imaps_login_and_starttls_refused_inside_tls(mailproxy, mbox_certs):
    mp = mailproxy(cleartext_login=False)
    c = imaplib.IMAP4_SSL("127.0.0.1", mp.imaps, ssl_context=tls_ctx(mbox_certs), timeout=10)
    assert b"STARTTLS" not in c.welcome and b"AUTH=PLAIN" in c.welcome
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        c._simple_command("STARTTLS")
    c.login("carol@example.org", password("carol@example.org"))
    assert c.select("INBOX")[0] == "OK"
    c.logout()


def test_imap_wrong_password_then_retry_and_unknown_user_same_answer(mailproxy):
    mp = mailproxy()
    r = Raw(mp.imap)
    r.line()
    r.send(b"a1 LOGIN alice@example.com wrong-password\r\n")
    bad = r.until(b"a1 ")[-1]
    assert bad.startswith(b"a1 NO ")
    r.send(b"a2 LOGIN nobody-here@example.com whatever\r\n")
    unknown = r.until(b"a2 ")[-1]
    assert unknown[3:] == bad[3:]
    r.send(b'a3 LOGIN alice@example.com "%s"\r\n' % password("alice@example.com").encode())
    assert r.until(b"a3 ")[-1].startswith(b"a3 OK")
    r.send(b"a4 SELECT INBOX\r\n")
    assert r.until(b"a4 ")[-1].startswith(b"a4 OK")
    r.close()
    assert wait_for(lambda: any("result=fail" in l for l in mp.audit_lines()))
    assert wait_for(lambda: any("result=unknown" in l for l in mp.audit_lines())), \
        mp.audit_lines()


def test_unknown_user_answered_after_failure_delay_without_blocking(mailproxy):
    """An unknown user is refused only after failure_delay (as a mailbox
    server with auth_failure_delay answers a wrong password), by the worker
    path (cache miss) and the loop path (cached negative entry) alike, with
    the wrong password's answer; other clients are served meanwhile. Like
    Dovecot's, the delay is counted from the whole second of the attempt and
    ends at a random point of the next half second: between delay - 1 s and
    delay + 0.5 s."""
    delay = 3.0
    mp = mailproxy(failure_delay="3s")
    r = Raw(mp.imap)
    r.line()
    r.send(b"a1 LOGIN alice@example.com wrong-password\r\n")
    bad = r.until(b"a1 ")[-1]
    assert bad.startswith(b"a1 NO ")
    for tag in (b"a2", b"a3"):
        t0 = time.monotonic()
        r.send(tag + b" LOGIN nobody-delayed@example.com whatever\r\n")
        # while this one waits, another client gets its answers at once
        other = Raw(mp.imap)
        assert other.line().startswith(b"* OK")
        other.send(b"x1 NOOP\r\n")
        assert other.until(b"x1 ")[-1].startswith(b"x1 OK")
        # the other client was served while this answer still waits
        assert not r.buf and not select.select([r.sock], [], [], 0)[0], \
            "the delay blocked another client"
        other.close()
        unknown = r.until(tag + b" ")[-1]
        assert time.monotonic() - t0 >= delay - 1.0 - 0.05
        assert unknown[3:] == bad[3:]
    # and the session is usable afterwards
    r.send(b'a4 LOGIN alice@example.com "%s"\r\n' % password("alice@example.com").encode())
    assert r.until(b"a4 ")[-1].startswith(b"a4 OK")
    r.close()
    assert wait_for(lambda: sum("result=unknown" in l for l in mp.audit_lines()) == 2)


def test_imap_password_with_quotes_backslashes_spaces(mailproxy):
    mp = mailproxy()
    user = "quote@example.com"
    pw = password(user)
    assert '"' in pw and "\\" in pw and " " in pw
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert c.login(user, pw)[0] == "OK"
    c.logout()
    # as a literal, and with AUTHENTICATE PLAIN (SASL-IR and continuation)
    r = Raw(mp.imap)
    r.line()
    r.send(b"a1 LOGIN {%d}\r\n" % len(user))
    assert r.line().startswith(b"+")
    r.send(user.encode() + b" {%d+}\r\n" % len(pw.encode()) + pw.encode() + b"\r\n")
    assert r.until(b"a1 ")[-1].startswith(b"a1 OK")
    r.close()
    ir = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode())
    r = Raw(mp.imap)
    r.line()
    r.send(b"a1 AUTHENTICATE PLAIN " + ir + b"\r\n")
    assert r.until(b"a1 ")[-1].startswith(b"a1 OK")
    r.close()
    r = Raw(mp.imap)
    r.line()
    r.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send(b"*\r\n")
    assert r.until(b"a1 ")[-1].startswith(b"a1 BAD")
    r.send(b"a2 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send(ir + b"\r\n")
    assert r.until(b"a2 ")[-1].startswith(b"a2 OK")
    r.close()


@pytest.mark.parametrize("tls", ["plain", "imaps", "imaps+upstream_tls"])
def test_imap_large_message_byte_identical(mailproxy, mbox_certs, tls):
    """3 MB both ways; over TLS that is ~190 records, more than one pump
    run of the relay, so the resume-after-fairness path is taken too."""
    mp = mailproxy(upstream_tls=True) if tls == "imaps+upstream_tls" else mailproxy()
    user = "dup1@example.com"
    body = os.urandom(3 * 1024 * 1024)
    msg = (b"From: a@example.com\r\nTo: %s\r\nSubject: big\r\n\r\n" % user.encode()
           + base64.encodebytes(body).replace(b"\n", b"\r\n"))
    if tls == "plain":
        c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=30)
    else:
        c = imaplib.IMAP4_SSL("127.0.0.1", mp.imaps, ssl_context=tls_ctx(mbox_certs),
                              timeout=30)
    c.login(user, password(user))
    assert c.append("INBOX", None, None, msg)[0] == "OK"
    c.select("INBOX")
    typ, data = c.search(None, "ALL")
    last = data[0].split()[-1]
    typ, data = c.fetch(last, "(BODY.PEEK[])")
    assert typ == "OK"
    assert data[0][1] == msg
    c.logout()


def test_imap_idle_through_proxy(mailproxy):
    mp = mailproxy()
    user = "dup2@example.org"
    r = Raw(mp.imap)
    r.line()
    r.send(b'a1 LOGIN %s "%s"\r\n' % (user.encode(), password(user).encode()))
    assert r.until(b"a1 ")[-1].startswith(b"a1 OK")
    r.send(b"a2 SELECT INBOX\r\n")
    r.until(b"a2 ")
    r.send(b"a3 IDLE\r\n")
    assert r.line().startswith(b"+")
    time.sleep(0.3)
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    c.login(user, password(user))
    c.append("INBOX", None, None, b"Subject: ping\r\n\r\nhello\r\n")
    c.logout()
    r.sock.settimeout(10)
    got = r.line()
    while b"EXISTS" not in got:
        got = r.line()
    r.send(b"DONE\r\n")
    assert r.until(b"a3 ")[-1].startswith(b"a3 OK")
    r.send(b"a4 LOGOUT\r\n")
    r.until(b"a4 ")
    r.close()


def test_imap_starttls_injection_gets_no_answer_inside_tls(mailproxy, mbox_certs):
    mp = mailproxy(cleartext_login=False)
    r = Raw(mp.imap)
    r.line()
    r.send(b"a STARTTLS\r\nb NOOP\r\n")
    assert r.line().startswith(b"a OK")
    r.starttls(tls_ctx(mbox_certs))
    r.sock.settimeout(1.0)
    with pytest.raises(socket.timeout):
        r.line()
    r.sock.settimeout(5)
    r.send(b"c NOOP\r\n")
    assert r.line().startswith(b"c OK")
    r.close()


def test_imap_bad_commands_then_bye(mailproxy):
    mp = mailproxy()
    r = Raw(mp.imap)
    r.line()
    r.send(b"a SELECT INBOX\r\nb FOO\r\nc BAR\r\nd NOOP\r\n")
    lines = []
    with pytest.raises(EOFError):
        while True:
            lines.append(r.line())
    assert lines[0].startswith(b"a BAD") and lines[1].startswith(b"b BAD")
    assert any(l.startswith(b"* BYE") for l in lines)
    assert not any(l.startswith(b"d ") for l in lines)


def test_imap_mailbox_server_down_is_temporary(mailproxy, dovecots):
    servers = proxy_servers(dovecots)
    servers["mbox1"]["imap"] = ports.closed_port()
    mp = mailproxy(servers=servers, upstream_retries=2)
    r = Raw(mp.imap)
    r.line()
    t0 = time.monotonic()
    r.send(b'a1 LOGIN alice@example.com "%s"\r\n' % password("alice@example.com").encode())
    ans = r.until(b"a1 ")[-1]
    assert ans.startswith(b"a1 NO [UNAVAILABLE] Mailbox server temporarily"), ans
    assert time.monotonic() - t0 < 5
    # the session stays usable and other servers still work
    r.send(b'a2 LOGIN bob@example.com "%s"\r\n' % password("bob@example.com").encode())
    assert r.until(b"a2 ")[-1].startswith(b"a2 OK")
    r.close()
    assert wait_for(lambda: any("result=tempfail" in l for l in mp.audit_lines()))


def test_imap_ldap_down_with_warm_cache(mailproxy, slapd_factory, memcached):
    sl = slapd_factory()
    mp = mailproxy(ldap=[sl])
    user = "carol@example.org"
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    c.login(user, password(user))
    c.logout()
    sl.stop()
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert c.login(user, password(user))[0] == "OK"
    c.logout()
    r = Raw(mp.imap)
    r.line()
    r.send(b"a1 LOGIN bob@example.com x\r\n")
    # issue 10 item 7: say what is unavailable (the lookup, not the mailbox)
    assert r.until(b"a1 ")[-1] == (b"a1 NO [UNAVAILABLE] Account lookup temporarily "
                                   b"unavailable, try again later.\r\n")
    r.close()
    assert wait_for(lambda: "login failed temporarily: lookup failed" in mp.log_text())


def test_imap_mailbox_server_down_with_cached_route(mailproxy, dovecots, dovecot_factory):
    """Issue 10 item 7: the mailbox server of a cached route is down: the
    client hears that the mailbox server is unavailable (not the lookup)."""
    dv = dovecot_factory("mbox1", tls=False)
    servers = proxy_servers(dovecots)
    servers["mbox1"] = {"address": "127.0.0.1", "imap": dv.imap, "pop3": dv.pop3}
    mp = mailproxy(servers=servers, upstream_retries=1)
    user = "alice@example.com"
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert c.login(user, password(user))[0] == "OK"
    c.logout()
    dv.stop()
    r = Raw(mp.imap)
    r.line()
    r.send(b'a1 LOGIN %s "%s"\r\n' % (user.encode(), password(user).encode()))
    assert r.until(b"a1 ")[-1] == (b"a1 NO [UNAVAILABLE] Mailbox server temporarily "
                                   b"unavailable, try again later.\r\n")
    r.close()
    assert wait_for(lambda: "mailbox server unreachable server=mbox1" in mp.log_text())


def test_imap_throttle_rejects_after_limit(mailproxy):
    mp = mailproxy(throttle={"ip_max": 3, "ip_ttl": 60,
                             "ip_reject_message": "Too many logins from your address"})
    user = "alice@example.com"
    for i in range(3):
        c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
        assert c.login(user, password(user))[0] == "OK"
        c.logout()
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="Too many logins"):
        c.login(user, password(user))
    assert wait_for(lambda: any("result=throttled" in l for l in mp.audit_lines()))


def test_imap_curl_client(mailproxy):
    mp = mailproxy()
    user = "bob@example.com"
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-u",
                        "%s:%s" % (user, password(user)),
                        "imap://127.0.0.1:%d/" % mp.imap], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout


def test_imap_curl_starttls(mailproxy, mbox_certs):
    mp = mailproxy(cleartext_login=False)
    user = "bob@example.com"
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--ssl-reqd", "--cacert",
                        mbox_certs["ca"].cert, "-k", "-u", "%s:%s" % (user, password(user)),
                        "imap://127.0.0.1:%d/" % mp.imap], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "INBOX" in r.stdout


def _cert_cn(mp, sni, mbox_certs, alpn=None):
    ctx = client_ctx(mbox_certs["ca"].cert, alpn)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", mp.imaps), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            cert = t.getpeercert()
            names = [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
            return names, t.selected_alpn_protocol()


def test_imaps_sni_selects_certificate(mailproxy, mbox_certs):
    mp = mailproxy()
    assert "mail.example.org" in _cert_cn(mp, "mail.example.org", mbox_certs)[0]
    assert "mail.example.org" in _cert_cn(mp, "MAIL.Example.ORG.", mbox_certs)[0]
    assert "*.example.net" in _cert_cn(mp, "imap.example.net", mbox_certs)[0]
    assert "mail.example.com" in _cert_cn(mp, "unknown.example.invalid", mbox_certs)[0]
    assert "mail.example.com" in _cert_cn(mp, None, mbox_certs)[0]


def test_imaps_alpn(mailproxy, mbox_certs):
    mp = mailproxy()
    assert _cert_cn(mp, "mail.example.com", mbox_certs, ["imap"])[1] == "imap"
    with pytest.raises(ssl.SSLError):
        _cert_cn(mp, "mail.example.com", mbox_certs, ["http/1.1"])
    # the listener stays up
    assert _cert_cn(mp, "mail.example.com", mbox_certs)[1] is None


def test_certs_dropped_in_are_served_without_restart(mailproxy, mbox_certs, gh_tmp):
    from gh import certs as gh_certs
    d = os.path.join(gh_tmp, "certs-reload-%d" % ports.free_port())
    os.makedirs(d)
    import shutil
    shutil.copy(mbox_certs["mail.example.com"], os.path.join(d, "00-default.pem"))
    mp = mailproxy(certs=d)
    assert "mail.example.com" in _cert_cn(mp, "new.example.com", mbox_certs)[0]
    # a broken file is skipped, a new one picked up
    with open(os.path.join(d, "broken.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    new = gh_certs.make_cert(os.path.join(gh_tmp, "newcert-%d" % ports.free_port()),
                             ["new.example.com"], mbox_certs["ca"])
    shutil.copy(new, os.path.join(d, "new.example.com.pem"))
    assert wait_for(lambda: "new.example.com" in _cert_cn(mp, "new.example.com", mbox_certs)[0],
                    timeout=5)
    assert wait_for(lambda: "broken.pem" in mp.log_text()), mp.log_text()[-2000:]
    os.unlink(os.path.join(d, "new.example.com.pem"))
    assert wait_for(lambda: "mail.example.com" in _cert_cn(mp, "new.example.com", mbox_certs)[0],
                    timeout=5)


def test_metrics_and_sigterm(mailproxy):
    mp = mailproxy()
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    c.login("alice@example.com", password("alice@example.com"))
    text = mp.metrics_text()
    assert "gatehouse_mail_login_ok_total 1" in text
    assert "gatehouse_mail_sessions 1" in text
    c.logout()
    assert mp.stop() == 0


def _rfc2971_max_id(claim=None):
    """The largest ID RFC 2971 allows: 30 pairs, 30-octet fields,
    1024-octet values (a 31,807-octet line with tag and CRLF); with
    <claim>, the last pair is an x-originating-ip of that address."""
    pairs = ['"%s" "%s"' % ("f%029d" % i, chr(ord("a") + i % 26) * 1024) for i in range(30)]
    if claim:
        pairs[-1] = '"x-originating-ip" "%s"' % claim
    return "(" + " ".join(pairs) + ")"


def test_imap_rfc2971_maximal_id_then_login(mailproxy, dovecots, monkeypatch):
    """Issue 10 item 5: the largest ID RFC 2971 allows got "* BYE line too
    long" and a close; it is answered, and LOGIN works on the same
    connection. The client's claims are not passed on: the mailbox server
    sees the address the proxy saw."""
    mp = mailproxy()
    user = "user0042@example.com"    # on mbox1; no other test logs it in
    # this imaplib does not know ID (RFC 2971) yet
    monkeypatch.setitem(imaplib.Commands, "ID", ("NONAUTH", "AUTH", "SELECTED"))
    c = IMAPFrom("127.0.0.1", mp.imap, timeout=10)
    assert len("a1 ID " + _rfc2971_max_id() + "\r\n") > 31800
    arg = _rfc2971_max_id(claim="192.0.2.99")
    typ, data = c._simple_command("ID", arg)
    assert typ == "OK", data
    assert c.login(user, password(user))[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    assert wait_for(lambda: any(lg["user"] == user and lg["rip"] == CLIENT_IP
                                for lg in dovecots["mbox1"].logins())), \
        dovecots["mbox1"].log_text()[-2000:]
    assert not any(lg["rip"] == "192.0.2.99" for lg in dovecots["mbox1"].logins())
    # as literals too
    r = Raw(mp.imap)
    r.line()
    r.send(b"a1 ID (" + b" ".join(b'"f%d" {1024+}\r\n' % i + b"v" * 1024 for i in range(30))
           + b")\r\n")
    assert r.until(b"a1 ")[-1].startswith(b"a1 OK")
    r.send(b"a2 NOOP\r\n")
    assert r.until(b"a2 ")[-1].startswith(b"a2 OK")
    # the longest SASL PLAIN response (255/255/1024 octets) is not cut either
    r.send(b"a3 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send(base64.b64encode(b"z" * 255 + b"\0" + b"u" * 255 + b"\0" + b"p" * 1024) + b"\r\n")
    assert r.until(b"a3 ")[-1].startswith(b"a3 NO [AUTHENTICATIONFAILED]")
    r.close()


def test_imap_overlong_line_tagged_bad_logged_and_connection_kept(mailproxy):
    """Issue 10 item 5: a line far over the limit (200 KB) gets "<tag> BAD
    line too long" and a warning naming the client, never the content; the
    connection stays usable. Past 1 MiB, or with a {n+} too
    large to skip, the client gets BYE, and that is logged too."""
    mp = mailproxy()
    user = "bob@example.com"
    r = Raw(mp.imap, source=CLIENT_IP)
    r.line()
    r.send(b"a1 LOGIN " + b"Q" * 200000 + b" x\r\n")
    ans = r.until(b"a1 ")[-1]
    assert ans == b"a1 BAD line too long\r\n", ans
    assert wait_for(lambda: "command line too long" in mp.log_text())
    logged = [l for l in mp.log_text().splitlines() if "command line too long" in l]
    assert len(logged) == 1 and CLIENT_IP in logged[0] and "QQQQ" not in logged[0]
    r.send(b'a2 LOGIN %s "%s"\r\n' % (user.encode(), password(user).encode()))
    assert r.until(b"a2 ")[-1].startswith(b"a2 OK")
    r.send(b"a3 SELECT INBOX\r\n")
    assert r.until(b"a3 ")[-1].startswith(b"a3 OK")
    r.close()

    # a non-synchronizing literal too large to skip: BYE and close
    r = Raw(mp.imap, source=CLIENT_IP)
    r.line()
    r.send(b"b1 LOGIN {99999999+}\r\n")
    assert r.line().startswith(b"* BYE")
    with pytest.raises(EOFError):
        r.line()
    r.close()
    # a line that never ends: BYE at 1 MiB, bounded
    r = Raw(mp.imap, source=CLIENT_IP)
    r.line()
    with pytest.raises((EOFError, ConnectionResetError, BrokenPipeError)):
        for _ in range(200):       # at most 3.2 MB; the proxy closes at 1 MiB
            r.send(b"x" * 16384)
        while True:
            l = r.line()
            assert l.startswith(b"* BYE"), l
    r.close()
    assert wait_for(lambda: sum("closing" in l and CLIENT_IP in l
                                for l in mp.log_text().splitlines()) >= 2)
