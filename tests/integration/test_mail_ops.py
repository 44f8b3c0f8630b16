"""gatehouse-mailproxy operations: pipelining, half-close, limits, SIGHUP
reload, IPv6 listener, handshake abuse."""
import imaplib
import signal
import socket
import time

import pytest

from gh import ports
from mail_fixtures import *  # noqa: F401,F403
from mail_fixtures import password, wait_for


def _read_until(sock, marker, timeout=10):
    sock.settimeout(timeout)
    buf = b""
    while marker not in buf:
        b = sock.recv(65536)
        if not b:
            break
        buf += b
    return buf


def test_imap_pipelined_login_and_commands(mailproxy):
    mp = mailproxy()
    user = "alice@example.com"
    with socket.create_connection(("127.0.0.1", mp.imap), timeout=10) as s:
        _read_until(s, b"\r\n")
        s.sendall(b'a LOGIN %s "%s"\r\nb SELECT INBOX\r\nc LOGOUT\r\n'
                  % (user.encode(), password(user).encode()))
        out = _read_until(s, b"c OK")
    assert b"a OK" in out and b"b OK" in out and b"c OK" in out
    assert out.index(b"a OK") < out.index(b"b OK") < out.index(b"c OK")


def test_pop3_pipelined_and_half_close(mailproxy):
    mp = mailproxy()
    user = "bob@example.com"
    with socket.create_connection(("127.0.0.1", mp.pop3), timeout=10) as s:
        _read_until(s, b"\r\n")
        s.sendall(b"USER %s\r\nPASS %s\r\nSTAT\r\nQUIT\r\n"
                  % (user.encode(), password(user).encode()))
        s.shutdown(socket.SHUT_WR)       # half-close: answers must still arrive
        out = _read_until(s, b"never-there")
    lines = out.split(b"\r\n")
    assert lines[0].startswith(b"+OK") and lines[1].startswith(b"+OK")
    assert lines[2].startswith(b"+OK") and lines[3].startswith(b"+OK")


def _sessions(mp):
    for line in mp.metrics_text().splitlines():
        if line.startswith("gatehouse_mail_sessions "):
            return int(float(line.split()[1]))
    return None


def test_max_connections(mailproxy):
    mp = mailproxy(max_connections=2)
    # the fixture's readiness probes must be gone before the slots are counted
    assert wait_for(lambda: _sessions(mp) == 0)
    a = socket.create_connection(("127.0.0.1", mp.imap), timeout=5)
    b = socket.create_connection(("127.0.0.1", mp.imap), timeout=5)
    assert _read_until(a, b"\r\n").startswith(b"* OK")
    assert _read_until(b, b"\r\n").startswith(b"* OK")
    c = socket.create_connection(("127.0.0.1", mp.imap), timeout=5)
    assert _read_until(c, b"\r\n").startswith(b"* BYE")
    a.close()
    assert wait_for(lambda: _connect_greeting(mp.imap).startswith(b"* OK"))
    b.close()
    c.close()


def _connect_greeting(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        return _read_until(s, b"\r\n")


def test_sighup_reloads_settings(mailproxy):
    mp = mailproxy(greeting_imap="first greeting")
    assert b"first greeting" in _connect_greeting(mp.imap)
    text = open(mp.conf).read().replace("first greeting", "second greeting")
    # a setting that needs a restart is kept, and the log says so
    text = text.replace("cleartext_login = yes", "cleartext_login = yes\nupstream_verify = no")
    open(mp.conf, "w").write(text)
    mp.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: b"second greeting" in _connect_greeting(mp.imap))
    assert wait_for(lambda: "upstream_verify changed: it takes effect at the next restart"
                    in mp.log_text())


def test_ipv6_listener(mailproxy):
    try:
        port = ports.free_port("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    mailproxy(extra_listen={"imap": "[::1]:%d" % port})
    c = imaplib.IMAP4("::1", port, timeout=10)
    assert c.login("carol@example.org", password("carol@example.org"))[0] == "OK"
    c.logout()


def test_handshake_timeout_and_garbage(mailproxy):
    mp = mailproxy(handshake_timeout="1s")
    s = socket.create_connection(("127.0.0.1", mp.imaps), timeout=5)
    t0 = time.monotonic()
    assert _read_until(s, b"x", timeout=5) == b""      # closed, nothing sent
    assert time.monotonic() - t0 < 4
    s.close()
    s = socket.create_connection(("127.0.0.1", mp.imaps), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = _read_until(s, b"never", timeout=5)
    except ConnectionResetError:
        data = b""                                         # closed with a reset: fine
    assert b"HTTP" not in data and b"GET" not in data      # nothing reflected
    s.close()
    # still serving
    assert _connect_greeting(mp.imap).startswith(b"* OK")


def test_http_request_on_imap_port_not_reflected(mailproxy):
    mp = mailproxy()
    with socket.create_connection(("127.0.0.1", mp.imap), timeout=5) as s:
        _read_until(s, b"\r\n")
        s.sendall(b"GET /<script>alert(1)</script> HTTP/1.1\r\nHost: evil\r\n"
                  b"Cookie: secret\r\n\r\n")
        out = _read_until(s, b"never", timeout=5)
    assert b"<script>" not in out and b"secret" not in out
    assert b"* BYE" in out


def test_upstream_tls_verified(mailproxy, dovecots):
    mp = mailproxy(upstream_tls=True, upstream_verify=True)
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert c.login("alice@example.com", password("alice@example.com"))[0] == "OK"
    assert c.select("INBOX")[0] == "OK"
    c.logout()
    with socket.create_connection(("127.0.0.1", mp.pop3), timeout=10) as s:
        _read_until(s, b"\r\n")
        s.sendall(b"USER bob@example.com\r\nPASS %s\r\nQUIT\r\n"
                  % password("bob@example.com").encode())
        out = _read_until(s, b"never")
    assert out.count(b"+OK") == 3, out


def test_upstream_tls_bad_certificate_is_temporary(mailproxy, dovecots, gh_tmp):
    from gh import certs as gh_certs
    other_ca = gh_certs.make_ca(gh_tmp + "/other-ca-%d" % ports.free_port())
    mp = mailproxy(upstream_tls=True, upstream_verify=True, upstream_ca=other_ca.cert)
    with socket.create_connection(("127.0.0.1", mp.imap), timeout=10) as s:
        _read_until(s, b"\r\n")
        s.sendall(b'a LOGIN alice@example.com "%s"\r\n' % password("alice@example.com").encode())
        try:
            out = _read_until(s, b"\r\n")
        except socket.timeout:
            raise AssertionError(mp.log_text()[-3000:])
    assert b"a NO [UNAVAILABLE]" in out, mp.log_text()[-3000:]
    assert wait_for(lambda: "certificate verification failed" in mp.log_text()), \
        mp.log_text()[-3000:]
