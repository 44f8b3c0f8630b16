"""The agent's auth_http endpoint behind Debian's real nginx mail proxy
(libnginx-mod-mail), unchanged, in front of the test Dovecots: IMAP and
POP3 logins land on the account's server, a throttled user gets nginx's
refusal with our message, an unknown user is refused exactly like a
refused route (same text, same Auth-Wait), LDAP down gives a temporary
failure, and bad requests get 400 and a log line. Auth-Pass never reaches
the log."""
import imaplib
import os
import poplib
import signal
import socket
import time

import pytest

from gh import ports as gh_ports
from gh import procs as gh_procs
from gh import wait as gh_wait
from mail_fixtures import password

NGINX = "/usr/sbin/nginx"
NGX_MAIL = "/usr/lib/nginx/modules/ngx_mail_module.so"

NGINX_CONF = """\
load_module {module};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
daemon off;
events {{
    worker_connections 256;
}}
mail {{
    auth_http 127.0.0.1:{auth_port}/auth;
    auth_http_timeout 20s;
    proxy_pass_error_message on;
    server {{
        listen 127.0.0.1:{imap_port};
        protocol imap;
        imap_auth login plain;
    }}
    server {{
        listen 127.0.0.1:{pop3_port};
        protocol pop3;
        pop3_auth plain;
    }}
}}
"""

SECRET_PW = "s3cret-never-logged-Zq9"


@pytest.fixture
def nginx_factory(gh_tmp):
    """Start nginx's mail proxy with auth_http at <auth_port>:
    factory(auth_port) -> object with .imap, .pop3, .error_log()."""
    if not (os.access(NGINX, os.X_OK) and os.path.exists(NGX_MAIL)):
        pytest.skip("nginx-light / libnginx-mod-mail not installed")
    made = []

    class Nginx:
        pass

    def make(auth_port):
        n = Nginx()
        n.dir = os.path.join(gh_tmp, "nginx-%d" % len(os.listdir(gh_tmp)))
        os.makedirs(n.dir)
        n.imap, n.pop3 = gh_ports.free_port(), gh_ports.free_port()
        conf = os.path.join(n.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(module=NGX_MAIL, dir=n.dir, auth_port=auth_port,
                                      imap_port=n.imap, pop3_port=n.pop3))
        n.proc = gh_procs.Proc("nginx", [NGINX, "-p", n.dir, "-c", conf, "-e",
                                         os.path.join(n.dir, "error.log")],
                               os.path.join(n.dir, "nginx.out"))
        made.append(n.proc)
        gh_ports.wait_listening(n.imap, proc=n.proc)
        gh_ports.wait_listening(n.pop3, proc=n.proc)

        def error_log():
            try:
                with open(os.path.join(n.dir, "error.log"), errors="replace") as f:
                    return f.read()
            except FileNotFoundError:
                return ""
        n.error_log = error_log
        return n

    yield make
    gh_procs.stop_many(made)


@pytest.fixture
def authsrv(spoa_factory, nginx_factory, dovecots, memcached):
    """Start an agent with auth_http and nginx in front of it:
    authsrv(ldap=[...], throttle={...}) -> (spoa, nginx)."""
    from gh import config as gh_config

    def make(ldap, throttle=None, log_level="info", ldap_opts=None):
        port = gh_ports.free_port()
        sections = {"log": {"level": log_level}}
        if ldap_opts:
            sections["ldap_opts"] = ldap_opts
        if throttle:
            sections["throttle"] = throttle
        sp = spoa_factory(ldap=ldap, memcached=[memcached],
                          servers=gh_config.dovecot_servers(dovecots),
                          spoa={"auth_http": "127.0.0.1:%d" % port}, **sections)
        gh_ports.wait_listening(port, proc=sp.proc)
        sp.auth_port = port
        return sp, nginx_factory(port)

    return make


def ask(port, headers, request_line="GET /auth HTTP/1.0"):
    """Send one auth_http request to the agent; return (status line, {header: value})."""
    raw = request_line + "\r\nHost: localhost\r\n" + "".join(
        "%s: %s\r\n" % kv for kv in headers) + "\r\n"
    return ask_raw(port, raw.encode())


def ask_raw(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        buf = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            buf += b
    head = buf.decode("latin-1").split("\r\n\r\n")[0].split("\r\n")
    return head[0], dict(line.split(": ", 1) for line in head[1:] if ": " in line)


def nginx_headers(user, proto="imap", attempt=1, pw=SECRET_PW, method="plain", ip="127.0.0.1"):
    """What nginx sends (ngx_mail_auth_http_module)."""
    return [("Auth-Method", method), ("Auth-User", user), ("Auth-Pass", pw),
            ("Auth-Protocol", proto), ("Auth-Login-Attempt", str(attempt)),
            ("Client-IP", ip), ("Client-Host", "[UNAVAILABLE]")]


def imap_login(port, user, pw):
    c = imaplib.IMAP4("127.0.0.1", port, timeout=15)
    try:
        return c.login(user, pw)[0]
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        try:
            c.logout()
        except Exception:  # noqa: BLE001 - nginx may have closed
            pass


def pop3_login(port, user, pw):
    c = poplib.POP3("127.0.0.1", port, timeout=15)
    try:
        c.user(user)
        return c.pass_(pw).decode()
    except poplib.error_proto as e:
        return str(e)
    finally:
        try:
            c.quit()
        except Exception:  # noqa: BLE001
            pass


def test_imap_and_pop3_logins_land_on_the_right_server(authsrv, slapd_shared, dovecots):
    sp, ng = authsrv([slapd_shared])
    for user, server in (("alice@example.com", "mbox1"), ("bob@example.com", "mbox2"),
                         ("carol@example.org", "mbox3")):
        assert imap_login(ng.imap, user, password(user)) == "OK"
        assert dovecots[server].wait_login(user)["proto"] == "imap"
    user = "bob@example.com"
    assert pop3_login(ng.pop3, user, password(user)).startswith("+OK")
    gh_wait.until(lambda: any(lg["user"] == user and lg["proto"] == "pop3"
                              for lg in dovecots["mbox2"].logins()),
                  "bob's POP3 login on mbox2", seen=lambda: dovecots["mbox2"].log_text()[-800:])
    gh_wait.until(lambda: "pop3 login of bob@example.com" in sp.log_text(),
                  "the agent's log line", seen=lambda: sp.log_text()[-800:])
    for user in ("alice@example.com", "bob@example.com", "carol@example.org"):
        assert password(user) not in sp.log_text()


def test_unknown_user_is_refused_like_a_refused_route(authsrv, slapd_shared):
    sp, ng = authsrv([slapd_shared])
    # mallory exists but lives on a server not in the table; nobody does not exist
    answers = [ask(sp.auth_port, nginx_headers(u)) for u in
               ("nobody-here@example.com", "mallory@example.com")]
    for status, h in answers:
        assert status.startswith("HTTP/1.0 200")
        assert h["Auth-Status"] == "Invalid login or password"
        assert h["Auth-Wait"] == "3"
        assert "Auth-Server" not in h
    assert answers[0][1] == answers[1][1]
    # through nginx: the client sees the same refusal
    got = imap_login(ng.imap, "nobody-here@example.com", "whatever")
    assert "Invalid login or password" in got
    assert SECRET_PW not in sp.log_text()


def test_throttled_user_gets_our_message_through_nginx(authsrv, slapd_shared):
    msg = "Too many logins for this account, try later"
    sp, ng = authsrv([slapd_shared], throttle={"user_max": 2, "user_ttl": 60,
                                               "user_reject_message": msg})
    user = "carol@example.org"
    assert imap_login(ng.imap, user, password(user)) == "OK"
    assert imap_login(ng.imap, user, password(user)) == "OK"
    got = imap_login(ng.imap, user, password(user))
    assert msg in got
    # the alias shares the account's budget; POP3 too
    got = pop3_login(ng.pop3, "caroline@example.org", password(user))
    assert msg in got
    gh_wait.until(lambda: "throttled (reject-user" in sp.log_text(), "the throttle log line",
                  seen=lambda: sp.log_text()[-800:])


def test_ldap_down_is_a_temporary_failure(authsrv, slapd):
    sp, ng = authsrv([slapd])
    slapd.stop()
    got = imap_login(ng.imap, "carol@example.org", password("carol@example.org"))
    assert "[UNAVAILABLE]" in got
    got = pop3_login(ng.pop3, "bob@example.com", password("bob@example.com"))
    assert "[SYS/TEMP]" in got
    # no Auth-Wait: nginx closes the session instead of letting the client retry
    status, h = ask(sp.auth_port, nginx_headers("alice@example.com"))
    assert h["Auth-Status"].startswith("[UNAVAILABLE]")
    assert "Auth-Wait" not in h
    assert "Auth-Server" not in h


def test_hung_ldap_answers_cached_users_and_fails_the_others_in_time(authsrv, slapd):
    """slapd stopped with SIGSTOP (hung, not refusing): a cached user is
    still routed at once, an uncached one gets a temporary failure once the
    LDAP timeout is over, well within nginx's auth_http_timeout."""
    sp, ng = authsrv([slapd], ldap_opts={"timeout": "1s"})
    status, h = ask(sp.auth_port, nginx_headers("alice@example.com"))
    assert h["Auth-Status"] == "OK"
    slapd.proc.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        status, h = ask(sp.auth_port, nginx_headers("carol@example.org"))
        took = time.monotonic() - t0
        assert h["Auth-Status"].startswith("[UNAVAILABLE]"), h
        assert took < 5.0, took
        t0 = time.monotonic()
        status, h = ask(sp.auth_port, nginx_headers("alice@example.com"))
        assert h["Auth-Status"] == "OK"
        assert time.monotonic() - t0 < 1.0
        got = imap_login(ng.imap, "bob@example.com", password("bob@example.com"))
        assert "[UNAVAILABLE]" in got
    finally:
        slapd.proc.signal(signal.SIGCONT)
    assert sp.proc.alive()


def test_protocol_details(authsrv, slapd_shared):
    sp, _ = authsrv([slapd_shared])
    port = sp.auth_port
    # a route: Auth-Server is an IP address, the port the protocol's
    status, h = ask(port, nginx_headers("alice@example.com", "pop3"))
    assert h["Auth-Status"] == "OK" and h["Auth-Server"] == "127.0.0.1"
    assert int(h["Auth-Port"]) > 0
    # %-escaped Auth-User (nginx escapes spaces and %) is decoded
    status, h2 = ask(port, nginx_headers("alice%40example.com", "pop3"))
    assert h2["Auth-Port"] == h["Auth-Port"]
    # SMTP is refused clearly, with an SMTP code and no Auth-Wait
    status, h = ask(port, nginx_headers("alice@example.com", "smtp"))
    assert h["Auth-Status"] == "Protocol not served by this proxy"
    assert h["Auth-Error-Code"].startswith("554")
    assert "Auth-Wait" not in h
    # APOP / CRAM-MD5 would need the cleartext password back
    status, h = ask(port, nginx_headers("alice@example.com", method="cram-md5"))
    assert h["Auth-Status"].startswith("Authentication method not supported")
    # from the tenth attempt of a session on, no Auth-Wait: nginx closes it
    status, h = ask(port, nginx_headers("nobody-here@example.com", attempt=9))
    assert h["Auth-Wait"] == "3"
    status, h = ask(port, nginx_headers("nobody-here@example.com", attempt=10))
    assert h["Auth-Status"] == "Invalid login or password" and "Auth-Wait" not in h


@pytest.mark.parametrize("raw, why", [
    (b"POST /auth HTTP/1.0\r\nAuth-User: a\r\n\r\n", "not a GET request"),
    (b"GET /auth HTTP/1.0\r\nAuth-Method: plain\r\nAuth-User: a@example.com\r\n"
     b"Auth-Protocol: imap\r\nClient-IP: not-an-ip\r\n\r\n", "a bad Client-IP"),
    (b"GET /auth HTTP/1.0\r\nAuth-Method: plain\r\nAuth-Protocol: imap\r\n"
     b"Client-IP: 127.0.0.1\r\n\r\n", "missing"),
    (b"GET /auth HTTP/1.0\r\n" + b"X-Filler: x\r\n" * 65 + b"\r\n", "too many header lines"),
    (b"GET /auth HTTP/1.0\r\nAuth-Pass: " + SECRET_PW.encode() + b"\r\nX: " +
     b"y" * 17000 + b"\r\n\r\n", "over 16384 bytes"),
])
def test_bad_requests_get_400_and_a_log_line(authsrv, slapd_shared, raw, why):
    sp, _ = authsrv([slapd_shared])
    status, _ = ask_raw(sp.auth_port, raw)
    assert status.startswith("HTTP/1.0 400")
    gh_wait.until(lambda: why in sp.log_text(), "the 400 log line",
                  seen=lambda: sp.log_text()[-800:])
    assert SECRET_PW not in sp.log_text()
    # the agent still serves
    status, h = ask(sp.auth_port, nginx_headers("bob@example.com"))
    assert h["Auth-Status"] == "OK"
