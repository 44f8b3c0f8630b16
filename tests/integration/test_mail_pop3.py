"""gatehouse-mailproxy, POP3: poplib, curl and raw sockets through the proxy
to real dovecots."""
import base64
import poplib
import socket
import subprocess
import time

import pytest

from gh import ports
from mail_fixtures import *  # noqa: F401,F403
from mail_fixtures import LineClient, client_ctx, password, proxy_servers, wait_for

CLIENT_IP = "127.0.0.6"


def tls_ctx(mbox_certs, alpn=None):
    ctx = client_ctx(mbox_certs["ca"].cert, alpn)
    ctx.check_hostname = False
    return ctx


Raw = LineClient


def _deliver(port, user, body):
    """Put a message in <user>'s INBOX through the proxy (IMAP APPEND)."""
    import imaplib
    c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    c.login(user, password(user))
    c.append("INBOX", None, None, body)
    c.logout()


def test_pop3_user_pass_and_retr(mailproxy, dovecots):
    mp = mailproxy()
    user = "carol@example.org"
    msg = b"Subject: pop\r\n\r\n" + b"line\r\n" * 20000
    _deliver(mp.imap, user, msg)
    p = poplib.POP3("127.0.0.1", mp.pop3, timeout=10)
    p.user(user)
    p.pass_(password(user))
    n, _ = p.stat()
    assert n >= 1
    resp, lines, _ = p.retr(n)
    assert b"\r\n".join(lines) + b"\r\n" == msg
    p.quit()
    assert dovecots["mbox3"].wait_login(user)["proto"] in ("imap", "pop3")
    assert wait_for(lambda: any(l["proto"] == "pop3" and l["user"] == user
                                for l in dovecots["mbox3"].logins()))


def test_pop3_real_client_address_reaches_dovecot(mailproxy, dovecots):
    mp = mailproxy()
    r = Raw(mp.pop3, source=CLIENT_IP)
    assert r.line().startswith(b"+OK")
    user = "bob@example.com"
    r.send(b"USER %s\r\nPASS %s\r\n" % (user.encode(), password(user).encode()))
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK")
    r.send(b"QUIT\r\n")
    r.line()
    r.close()
    assert wait_for(lambda: any(lg["proto"] == "pop3" and lg["rip"] == CLIENT_IP
                                for lg in dovecots["mbox2"].logins())), \
        dovecots["mbox2"].log_text()[-2000:]


def test_pop3_stls_and_default_policy(mailproxy, mbox_certs):
    mp = mailproxy(cleartext_login=False)
    p = poplib.POP3("127.0.0.1", mp.pop3, timeout=10)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto, match="AUTH"):
        p.user("alice@example.com")
    p.stls(context=tls_ctx(mbox_certs))
    caps = p.capa()
    assert "USER" in caps and "STLS" not in caps
    p.user("alice@example.com")
    p.pass_(password("alice@example.com"))
    p.stat()
    p.quit()


def test_pop3s_and_auth_plain(mailproxy, mbox_certs):
    mp = mailproxy(cleartext_login=False)
    user = "quote@example.com"
    pw = password(user)
    p = poplib.POP3_SSL("127.0.0.1", mp.pop3s, context=tls_ctx(mbox_certs), timeout=10)
    with pytest.raises(poplib.error_proto):
        p._shortcmd("STLS")
    p.user(user)
    p.pass_(pw)      # quotes, backslash, spaces: the rest of the line
    p.stat()
    p.quit()
    ir = base64.b64encode(b"\0" + user.encode() + b"\0" + pw.encode())
    r = Raw(mp.pop3)
    r.line()
    # cleartext refused by default
    r.send(b"AUTH PLAIN " + ir + b"\r\n")
    assert r.line().startswith(b"-ERR")
    r.close()
    mp2 = mailproxy()
    r = Raw(mp2.pop3)
    r.line()
    r.send(b"AUTH PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send(b"*\r\n")
    assert r.line().startswith(b"-ERR")
    r.send(b"AUTH PLAIN " + ir + b"\r\n")
    assert r.line().startswith(b"+OK")
    r.send(b"STAT\r\n")
    assert r.line().startswith(b"+OK")
    r.close()


def test_pop3_wrong_password_then_retry(mailproxy):
    mp = mailproxy()
    r = Raw(mp.pop3)
    r.line()
    r.send(b"USER alice@example.com\r\nPASS nope\r\n")
    assert r.line().startswith(b"+OK")
    bad = r.line()
    assert bad.startswith(b"-ERR [AUTH]")
    r.send(b"USER ghost@example.com\r\nPASS nope\r\n")
    r.line()
    assert r.line() == bad
    r.send(b"USER alice@example.com\r\nPASS %s\r\n" % password("alice@example.com").encode())
    r.line()
    assert r.line().startswith(b"+OK")
    r.send(b"STAT\r\n")
    assert r.line().startswith(b"+OK")
    r.close()


def test_pop3_stls_injection(mailproxy, mbox_certs):
    mp = mailproxy()
    r = Raw(mp.pop3)
    r.line()
    r.send(b"STLS\r\nCAPA\r\n")
    assert r.line().startswith(b"+OK")
    r.sock = tls_ctx(mbox_certs).wrap_socket(r.sock)
    r.sock.settimeout(1.0)
    with pytest.raises(socket.timeout):
        r.line()
    r.sock.settimeout(5)
    r.send(b"NOOP\r\n")
    assert r.line().startswith(b"+OK")
    r.close()


def test_pop3_mailbox_server_down(mailproxy, dovecots):
    servers = proxy_servers(dovecots)
    servers["mbox2"]["pop3"] = ports.closed_port()
    mp = mailproxy(servers=servers)
    r = Raw(mp.pop3)
    r.line()
    r.send(b"USER bob@example.com\r\nPASS %s\r\n" % password("bob@example.com").encode())
    r.line()
    assert r.line().startswith(b"-ERR [SYS/TEMP]")
    r.close()


def test_pop3_curl(mailproxy):
    mp = mailproxy()
    user = "alice@example.com"
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-u", "%s:%s" % (user, password(user)),
                        "pop3://127.0.0.1:%d/" % mp.pop3], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_pop3_overlong_line_err_logged_and_connection_kept(mailproxy):
    """Issue 10 item 5: an over-long POP3 line gets "-ERR line too long"
    and a warning (client address, no content), and the connection stays
    usable; a PASS with a 1024-octet password is not cut (RFC 2449's 255
    octets are exceeded, as Dovecot allows)."""
    mp = mailproxy()
    r = Raw(mp.pop3, source=CLIENT_IP)
    r.line()
    r.send(b"USER " + b"Z" * 200000 + b"\r\n")
    assert r.line() == b"-ERR line too long\r\n"
    assert wait_for(lambda: "command line too long" in mp.log_text())
    logged = [l for l in mp.log_text().splitlines() if "command line too long" in l]
    assert len(logged) == 1 and CLIENT_IP in logged[0] and "ZZZZ" not in logged[0]
    r.send(b"USER carol@example.org\r\n")
    assert r.line().startswith(b"+OK")
    r.send(b"PASS " + b"p" * 1024 + b"\r\n")
    assert r.line().startswith(b"-ERR [AUTH]")
    # SASL PLAIN continuation with the longest credentials SASL allows
    ir = base64.b64encode(b"\0" + b"u" * 255 + b"\0" + b"p" * 1024)
    r.send(b"AUTH PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send(ir + b"\r\n")
    assert r.line().startswith(b"-ERR [AUTH]")
    r.send(b"USER carol@example.org\r\nPASS %s\r\n" % password("carol@example.org").encode())
    assert r.line().startswith(b"+OK")
    assert r.line().startswith(b"+OK")
    r.close()


def test_pop3_lookup_and_mailbox_server_failures_told_apart(mailproxy, dovecots,
                                                            slapd_factory):
    """Issue 10 item 7: with LDAP down, an uncached user hears that the
    account lookup is unavailable; a cached user whose mailbox server is
    down hears that the mailbox server is; both with [SYS/TEMP]."""
    sl = slapd_factory()
    servers = proxy_servers(dovecots)
    servers["mbox2"]["pop3"] = ports.closed_port()
    mp = mailproxy(ldap=[sl], servers=servers, upstream_retries=1)
    r = Raw(mp.pop3)
    r.line()
    r.send(b"USER bob@example.com\r\nPASS %s\r\n" % password("bob@example.com").encode())
    r.line()
    assert r.line() == (b"-ERR [SYS/TEMP] Mailbox server temporarily unavailable, "
                        b"try again later.\r\n")
    sl.stop()
    r.send(b"USER carol@example.org\r\nPASS x\r\n")
    r.line()
    assert r.line() == (b"-ERR [SYS/TEMP] Account lookup temporarily unavailable, "
                        b"try again later.\r\n")
    # bob's route is cached: still the mailbox server
    r.send(b"USER bob@example.com\r\nPASS %s\r\n" % password("bob@example.com").encode())
    r.line()
    assert r.line().startswith(b"-ERR [SYS/TEMP] Mailbox server")
    r.close()
