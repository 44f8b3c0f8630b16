"""Fixtures for gatehouse-mailproxy tests: the proxy in front of the real
dovecots (module-shared), the shared slapd and a memcached of the test's own.

Import in a test module with `from mail_fixtures import *  # noqa`.

mailproxy(**opts) -> MailProxy: starts gatehouse-mailproxy with IMAP, IMAPS,
POP3 and POP3S listeners on free ports, certs from proxy_certs, metrics and
an audit file; <opts> are [mailproxy] keys merged over the defaults, plus
ldap=[...], memcached=[...], servers={...}, throttle={...}, log={...} ([log]
keys), extra_listen={"imap": "[::1]:port"} for more addresses of a
listener kind, env={...} for variables added to the proxy's environment
(KRB5_CONFIG, KRB5RCACHEDIR), and ldap_opts={...} for [ldap] keys.
"""
import os
import shutil
import socket
import ssl
import time

import pytest

from gh import config as gh_config
from gh import ports, procs
from gh import wait as gh_wait
from gh.slapd import gen_ldif

__all__ = ["proxy_certs", "mailproxy", "MailProxy", "client_ctx", "password",
           "proxy_servers"]


def password(mail):
    """Return the password of the seeded account <mail>."""
    return gen_ldif.password_for(mail)


class MailProxy:
    """A running gatehouse-mailproxy. Ports: imap, imaps, pop3, pop3s,
    metrics; files: conf, log, audit."""

    def __init__(self, d, conf, exe, ports_, env=None):
        self.dir = d
        self.conf = conf
        self.imap, self.imaps, self.pop3, self.pop3s, self.metrics = ports_
        self.log = os.path.join(d, "mailproxy.log")
        self.audit = os.path.join(d, "audit.log")
        self.proc = procs.Proc("mailproxy", [exe, "-f", "-c", conf], self.log,
                               env=dict(os.environ, **env) if env else None)
        for p in (self.imap, self.imaps, self.pop3, self.pop3s):
            ports.wait_listening(p, proc=self.proc)

    def log_text(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def audit_lines(self):
        try:
            with open(self.audit, encoding="utf-8", errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def metrics_text(self):
        with socket.create_connection(("127.0.0.1", self.metrics), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                out += b
        return out.decode()

    def stop(self):
        return self.proc.stop()


class LineClient:
    """A line-oriented raw client of a mail listener (lines keep their
    CRLF), optionally from source address <source>."""

    def __init__(self, port, source=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            b = self.sock.recv(65536)
            if not b:
                raise EOFError(self.buf)
            self.buf += b
        l, self.buf = self.buf.split(b"\n", 1)
        return l + b"\n"

    def until(self, prefix):
        """Read lines up to the first that starts with <prefix>; return them."""
        out = []
        while True:
            out.append(self.line())
            if out[-1].startswith(prefix):
                return out

    def close(self):
        self.sock.close()


def client_ctx(ca, alpn=None):
    """An ssl.SSLContext trusting the test CA (file <ca>)."""
    ctx = ssl.create_default_context(cafile=ca)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


@pytest.fixture(scope="module")
def proxy_certs(gh_tmp, mbox_certs):
    """The proxy's certs/ directory: 00-mail.example.com.pem (default),
    mail.example.org.pem, wildcard.example.net.pem."""
    d = os.path.join(gh_tmp, "proxy-certs-%d" % os.getpid())
    if os.path.isdir(d):
        return d
    os.makedirs(d)
    shutil.copy(mbox_certs["mail.example.com"], os.path.join(d, "00-mail.example.com.pem"))
    shutil.copy(mbox_certs["mail.example.org"], os.path.join(d, "mail.example.org.pem"))
    shutil.copy(mbox_certs["*.example.net"], os.path.join(d, "wildcard.example.net.pem"))
    return d


def proxy_servers(dovecots):
    """[server] sections for the dovecots."""
    return gh_config.dovecot_servers(dovecots)


@pytest.fixture
def mailproxy(gh_tmp, gh_bin, make_conf, slapd_shared, dovecots, memcached, proxy_certs,
              mbox_certs):
    """Factory: mailproxy(**opts) -> MailProxy (stopped at teardown)."""
    exe = gh_bin("gatehouse-mailproxy")
    made = []

    def make(ldap=None, mc=None, servers=None, throttle=None, extra_listen=None, log=None,
             env=None, ldap_opts=None, **opts):
        ps = [ports.free_port() for _ in range(5)]
        d = os.path.join(gh_tmp, "mailproxy-%d" % ps[0])
        os.makedirs(d)
        mp = {
            "imap": "127.0.0.1:%d" % ps[0], "imaps": "127.0.0.1:%d" % ps[1],
            "pop3": "127.0.0.1:%d" % ps[2], "pop3s": "127.0.0.1:%d" % ps[3],
            "metrics": "127.0.0.1:%d" % ps[4], "certs": proxy_certs,
            "cleartext_login": True, "audit_log": os.path.join(d, "audit.log"),
            "upstream_ca": mbox_certs["ca"].cert, "threads": 2,
            "connect_timeout": "2s", "upstream_timeout": "5s",
            # the test dovecots answer failures at once (auth_failure_delay 0)
            "failure_delay": "0",
        }
        mp.update(opts)
        for k, v in (extra_listen or {}).items():
            mp[k] = mp[k] + " " + v
        conf = make_conf(ldap=[slapd_shared] if ldap is None else ldap,
                         memcached=[memcached] if mc is None else mc,
                         servers=proxy_servers(dovecots) if servers is None else servers,
                         throttle=throttle or {}, mailproxy=mp, ldap_opts=ldap_opts,
                         **({"log": log} if log else {}))
        p = MailProxy(d, conf, exe, ps, env=env)
        made.append(p)
        return p

    yield make
    procs.stop_many([p.proc for p in made])


def wait_for(pred, timeout=5.0, step=0.05):
    """Poll <pred> until true or <timeout>; returns its last value."""
    return gh_wait.poll(pred, timeout, step)


__all__.append("wait_for")
