"""gatehouse-mailproxy SIGHUP: every section is reloaded as one new
configuration generation ([server], [throttle], ... not only [mailproxy]);
sessions opened before keep the generation they started with; a bad file
is refused and the running configuration keeps serving."""
import imaplib
import re
import signal

from gh.config import dovecot_servers
from mail_fixtures import *  # noqa: F401,F403 - fixtures
from mail_fixtures import password, wait_for

USER = "alice@example.com"      # on mbox1


def _marker(c):
    """Return the subject of the one message in INBOX of IMAP client <c>."""
    typ, data = c.select("INBOX")
    assert typ == "OK", data
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    return data[0][1].decode().strip()


def _login(port):
    """Log alice in through the proxy: the client, or the error text."""
    c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        c.login(USER, password(USER))
    except imaplib.IMAP4.error as e:
        c.shutdown()
        return str(e)
    return c


def _point_mbox1(text, old, new):
    """Rewrite the ports of [server mbox1] in config <text> from dovecot <old> to <new>."""
    head, sec = text.split("[server mbox1]", 1)
    body, sep, rest = sec.partition("\n[")
    for k in ("imap", "pop3", "imaps", "pop3s"):
        body = re.sub(r"(?m)^%s = %d$" % (k, getattr(old, k)), "%s = %d" % (k, getattr(new, k)),
                      body)
    return head + "[server mbox1]" + body + sep + rest


def _two_mbox1(dovecots, dovecot_factory):
    """Two dovecots for mbox1 (A, B), each with a message saying which it is."""
    a, b = dovecot_factory("mbox1"), dovecot_factory("mbox1")
    a.deliver(USER, b"Subject: served-by-A\r\n\r\nA\r\n")
    b.deliver(USER, b"Subject: served-by-B\r\n\r\nB\r\n")
    servers = dovecot_servers(dict(dovecots, mbox1=a))
    return a, b, servers


def test_sighup_applies_server_and_throttle_old_session_keeps_relaying(
        mailproxy, dovecots, dovecot_factory):
    a, b, servers = _two_mbox1(dovecots, dovecot_factory)
    mp = mailproxy(servers=servers, throttle={"user_max": 100, "user_ttl": 600})
    old = _login(mp.imap)
    assert not isinstance(old, str), old
    assert _marker(old) == "Subject: served-by-A"
    # a session still before login when the reload comes
    pre = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)

    text = open(mp.conf).read()
    assert "user_max = 100" in text
    text = _point_mbox1(text, a, b).replace("user_max = 100", "user_max = 2")
    with open(mp.conf, "w") as f:
        f.write(text)
    mp.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in mp.log_text(), 10), mp.log_text()[-2000:]

    # the next login goes to the new address of mbox1 (login 2 of alice:
    # within the new limit of 2) ...
    new = _login(mp.imap)
    assert not isinstance(new, str), new
    assert _marker(new) == "Subject: served-by-B"
    # ... and the new limit applies: the third login is refused (100 before)
    third = _login(mp.imap)
    assert isinstance(third, str) and "Login rejected" in third, third
    assert wait_for(lambda: "throttled (reject-user, 3/2)" in mp.log_text())

    # the session opened before the reload still relays to A
    assert old.noop()[0] == "OK"
    assert _marker(old) == "Subject: served-by-A"
    old.logout()
    # the one still before login then finishes on its own generation:
    # the old server table and the old limit (login 4 of 100)
    pre.login(USER, password(USER))
    assert _marker(pre) == "Subject: served-by-A"
    pre.logout()
    new.logout()


def test_sighup_bad_config_refused_old_one_serves(mailproxy, dovecots, dovecot_factory):
    a, b, servers = _two_mbox1(dovecots, dovecot_factory)
    mp = mailproxy(servers=servers)
    good = open(mp.conf).read()
    # a typo and a server moved: nothing of it may apply
    with open(mp.conf, "w") as f:
        f.write(_point_mbox1(good, a, b) + "\n[throttle]\nuser_maxx = 1\n")
    mp.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload failed, keeping the running configuration" in mp.log_text(),
                    10), mp.log_text()[-2000:]
    assert "user_maxx" in mp.log_text()
    assert mp.proc.alive()
    c = _login(mp.imap)
    assert not isinstance(c, str), c
    assert _marker(c) == "Subject: served-by-A"
    c.logout()


def test_sighup_restart_only_key_is_named_and_kept(mailproxy, dovecots):
    mp = mailproxy(threads=2)
    text = open(mp.conf).read()
    listen = "127.0.0.1:%d" % mp.imap
    assert listen in text
    with open(mp.conf, "w") as f:
        f.write(text.replace("imap = " + listen, "imap = 127.0.0.1:1")
                .replace("threads = 2", "threads = 3"))
    mp.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: "configuration reloaded" in mp.log_text(), 10)
    log = mp.log_text()
    assert "[mailproxy] imap changed: it takes effect at the next restart" in log
    # applied at once: no restart needed, so no such line
    assert "[mailproxy] threads changed" not in log
    # the running listener still serves
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    assert c.login("carol@example.org", password("carol@example.org"))[0] == "OK"
    c.logout()


def _sessions(mp):
    m = re.search(r"(?m)^gatehouse_mail_sessions ([0-9.]+)$", mp.metrics_text())
    return float(m.group(1)) if m else -1


def test_sighup_applies_log_level(mailproxy):
    mp = mailproxy()
    text = open(mp.conf).read()
    assert "level = debug" in text
    with open(mp.conf, "w") as f:
        f.write(text.replace("level = debug", "level = notice"))
    mp.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: mp.log_text().count("configuration reloaded") == 1, 10)
    mark = len(mp.log_text())
    # a session that would log its close at debug level
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    c.shutdown()
    assert wait_for(lambda: _sessions(mp) == 0, 10)
    # a notice after it: everything before it is written by then
    mp.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: mp.log_text().count("configuration reloaded") == 2, 10)
    tail = mp.log_text()[mark:]
    assert " debug: " not in tail, tail
    assert " info: " not in tail, tail
