"""No account-existence oracle, no throttle bypass (issue 10, items 1, 2, 7).

An outsider must not tell an existing account from an unknown name by the
answer, its timing or how the throttle treats it, over IMAP, POP3 and the
HTTP login form; a web form's user name counts against the same budget
however the browser encoded it; malformed Basic credentials are a 400.
"""
import base64
import imaplib
import poplib
import socket
import time
import urllib.parse

import pytest

from gh import wait as gh_wait
from mail_fixtures import *  # noqa: F401,F403 - fixtures
from mail_fixtures import client_ctx, password, proxy_servers
from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import server_table, wait_for

ADDRS = ("127.0.0.2", "127.0.0.3")   # two client addresses, as an outsider would use
UNKNOWN = "nosuch@example.com"


def _imaps_login(port, ctx, user, pw, source):
    """One IMAPS login from <source>: (answer text after the tag, seconds)."""
    class IMAPSFrom(imaplib.IMAP4_SSL):
        def _create_socket(self, timeout):
            sock = socket.create_connection((self.host, self.port), timeout,
                                            source_address=(source, 0))
            return self.ssl_context.wrap_socket(sock, server_hostname="mail.example.com")

    c = IMAPSFrom("127.0.0.1", port, ssl_context=ctx, timeout=15)
    t0 = time.monotonic()
    try:
        typ, data = c.login(user, pw)
        return typ + " " + data[0].decode(), time.monotonic() - t0
    except imaplib.IMAP4.error as e:
        msg = e.args[0]
        if isinstance(msg, bytes):
            msg = msg.decode()
        return "NO " + msg, time.monotonic() - t0
    finally:
        try:
            c.logout()
        except Exception:  # noqa: BLE001 - the proxy may have closed
            pass


def _imap_raw_answer(port, user, pw, source="127.0.0.2"):
    """One plain IMAP LOGIN: (the whole tagged answer line, seconds)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15,
                                  source_address=(source, 0)) as s:
        f = s.makefile("rb")
        f.readline()
        t0 = time.monotonic()
        s.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), pw.encode()))
        while True:
            line = f.readline()
            if not line or line.startswith(b"a "):
                return line.rstrip(b"\r\n").decode(), time.monotonic() - t0


def _pop3_answer(port, user, pw, source):
    """One POP3 USER/PASS: the answer to PASS."""
    with socket.create_connection(("127.0.0.1", port), timeout=15,
                                  source_address=(source, 0)) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"USER %s\r\n" % user.encode())
        f.readline()
        s.sendall(b"PASS %s\r\n" % pw.encode())
        return f.readline().rstrip(b"\r\n").decode()


def _failures(gh, name):
    r = gh.throttle("show", name)
    assert r.rc == 0, r
    return r.get("failures")


def _wait_failures(gh, name, n):
    gh_wait.until(lambda: _failures(gh, name) == n, "%d recorded failures for %s" % (n, name),
                  seen=lambda: gh.throttle("show", name))


def test_imaps_fail_throttle_treats_unknown_names_like_accounts(mailproxy, gatehouse,
                                                                mbox_certs):
    """11 wrong-password IMAPS logins from two addresses, user_fail_max 10:
    an account and a name that does not exist get the same 11 answers, and
    `gatehouse throttle show` counts both alike."""
    mp = mailproxy(throttle={"user_fail_max": 10, "user_fail_ttl": 600})
    gh = gatehouse(mp.conf)
    ctx = client_ctx(mbox_certs["ca"].cert)
    answers = {}
    for user in ("alice@example.com", UNKNOWN):
        answers[user] = [_imaps_login(mp.imaps, ctx, user, "wrong-pw", ADDRS[i % 2])[0]
                         for i in range(10)]
        _wait_failures(gh, user, 10)
        answers[user].append(_imaps_login(mp.imaps, ctx, user, "wrong-pw", ADDRS[0])[0])
    a, u = answers["alice@example.com"], answers[UNKNOWN]
    assert a[0].startswith("NO [AUTHENTICATIONFAILED]"), a
    assert a == u, (a, u)
    assert a[10].startswith("NO [UNAVAILABLE]"), a
    # the account's real password is refused too: the limit is the account's
    assert _imaps_login(mp.imaps, ctx, "alice@example.com", password("alice@example.com"),
                        ADDRS[1])[0].startswith("NO [UNAVAILABLE]")


def test_pop3_fail_throttle_treats_unknown_names_like_accounts(mailproxy, gatehouse):
    mp = mailproxy(throttle={"user_fail_max": 3, "user_fail_ttl": 600})
    gh = gatehouse(mp.conf)
    answers = {}
    for user in ("bob@example.com", "nosuch2@example.com"):
        answers[user] = [_pop3_answer(mp.pop3, user, "wrong-pw", ADDRS[i % 2]) for i in range(3)]
        _wait_failures(gh, user, 3)
        answers[user].append(_pop3_answer(mp.pop3, user, "wrong-pw", ADDRS[1]))
    b, u = answers["bob@example.com"], answers["nosuch2@example.com"]
    assert b[0].startswith("-ERR [AUTH]"), b
    assert b == u, (b, u)
    assert b[3] != b[0] and b[3].startswith("-ERR"), b


def test_refused_and_ambiguous_accounts_answer_like_unknown_names(mailproxy, gatehouse,
                                                                 slapd, dovecots,
                                                                 dovecot_factory):
    """An account whose mailbox host is not a configured server, and an
    alias two accounts share, answer exactly as a wrong password (text,
    failure delay, a failure counted); the log tells operators why. The
    mailbox server delays a wrong password by 2 s, the proxy its own
    refusals by the same failure_delay: both count from the whole second of
    the attempt, so each answer comes 1 to 2.5 s after it."""
    slapd.add_user("stray@example.com", "mbox-gone")
    slapd.add_user("twin1@example.com", "mbox1", aliases=["twins@example.com"])
    slapd.add_user("twin2@example.com", "mbox2", aliases=["twins@example.com"])
    slow = {"mbox1": dovecot_factory("mbox1", tls=False, failure_delay="2 secs"),
            "mbox2": dovecots["mbox2"], "mbox3": dovecots["mbox3"]}
    mp = mailproxy(ldap=[slapd], failure_delay="2s", servers=proxy_servers(slow),
                   throttle={"user_fail_max": 5, "user_fail_ttl": 600})
    gh = gatehouse(mp.conf)
    wrong, t_wrong = _imap_raw_answer(mp.imap, "alice@example.com", "wrong-pw")
    unknown, t_unknown = _imap_raw_answer(mp.imap, UNKNOWN, "x")
    assert unknown == wrong and unknown.startswith("a NO [AUTHENTICATIONFAILED]"), (unknown, wrong)
    # both wait a failure delay: the mailbox server's and the proxy's
    assert t_wrong >= 0.95 and t_unknown >= 0.95, (t_wrong, t_unknown)
    for user in ("stray@example.com", "twins@example.com"):
        answer, took = _imap_raw_answer(mp.imap, user, "x")
        assert answer == wrong, (user, answer, wrong)
        assert took >= 0.95, (user, took)
        # counted like any failed login, under the name the client gave
        # (the account's canonical name when the directory knows it)
        _wait_failures(gh, user, 1)
    log = gh_wait.until(lambda: "route refused" in mp.log_text()
                        and "route unusable" in mp.log_text() and mp.log_text(),
                        "the real reasons in the mail proxy's log",
                        seen=lambda: mp.log_text()[-3000:])
    assert "login of stray@example.com refused: route refused" in log, log[-3000:]
    assert "login of twins@example.com refused: route unusable" in log, log[-3000:]
    audit = wait_for(lambda: [l for l in mp.audit_lines() if "stray@" in l or "twins@" in l])
    assert any("result=refused" in l for l in audit) and any("result=unusable" in l for l in audit)


# HTTP: the login form and Basic credentials through the real HAProxy


def _site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes, throttle):
    kw = dict(ldap=[slapd_shared], memcached=[memcached], servers=server_table(mailboxes),
              throttle=throttle)
    agents = [spoa_factory(**kw), spoa_factory(**kw)]
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % a.port for a in agents])
    assert wait_for(lambda: all(a.metrics().get("gatehouse_spoa_healthchecks_total", 0) >= 1
                                for a in agents), 10)
    for m in mailboxes.values():
        m.httpd.mbox_auth = True
    return hp, agents


def _form_login(hp, user_field, pw):
    """POST the login form as a browser does; <user_field> is sent as given
    (already form-encoded)."""
    data = ("loginOp=login&username=%s&password=%s"
            % (user_field, urllib.parse.quote_plus(pw))).encode()
    return hp.get("/", method="POST", data=data,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})[0]


@pytest.fixture
def form_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes, make_conf,
              gatehouse):
    def make(throttle):
        hp, agents = _site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes,
                           throttle)
        gh = gatehouse(make_conf(ldap=[slapd_shared], memcached=[memcached],
                                 servers=server_table(mailboxes), throttle=throttle))
        return hp, agents, gh
    yield make
    for m in mailboxes.values():
        m.httpd.mbox_auth = False


def test_form_login_fail_throttle_treats_unknown_names_like_accounts(form_site):
    hp, agents, gh = form_site({"user_fail_max": 3, "user_fail_ttl": 600})
    codes = {}
    for user in ("carol@example.org", "nosuch3@example.org"):
        field = urllib.parse.quote_plus(user)          # carol%40example.org
        codes[user] = [_form_login(hp, field, "wrong-pw") for _ in range(3)]
        _wait_failures(gh, user, 3)
        codes[user].append(_form_login(hp, field, "wrong-pw"))
    c, u = codes["carol@example.org"], codes["nosuch3@example.org"]
    assert c == [401, 401, 401, 429], c
    assert u == c, (u, c)
    # the right password is refused too while the account is over its limit
    assert _form_login(hp, "carol%40example.org", password("carol@example.org")) == 429


def test_form_login_counts_one_account_however_encoded(form_site):
    """user_max 5: the name typed raw, percent-encoded, with spaces around
    it and as an alias all spend one account's budget."""
    hp, agents, gh = form_site({"user_max": 5, "user_ttl": 600})
    user = "user0010@example.com"
    pw = password(user)
    fields = ["user0010%40example.com", "user0010@example.com", "+user0010%40example.com+",
              "USER0010%40EXAMPLE.COM", "user0010%40example.com", "user0010%40example.com",
              "alias0010%40example.com"]
    codes = [_form_login(hp, f, pw) for f in fields]
    assert codes == [200] * 5 + [429, 429], codes
    r = gh.throttle("show", user)
    assert r.get("attempts") == 7, r


def test_basic_with_crlf_in_user_is_a_bad_request(spoa_factory, haproxy_factory, slapd_shared,
                                                  memcached, mailboxes):
    hp, agents = _site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes, {})
    try:
        bad = base64.b64encode(b"alice\r\n@example.com:pw").decode()
        st = hp.get("/dav/", headers={"Authorization": "Basic " + bad})[0]
        assert st == 400, st
        st = hp.get("/", headers={"Authorization": "Basic not*base64"})[0]
        assert st == 400, st
        gh_wait.until(lambda: any("malformed credentials" in a.proc.log_tail(20000)
                                  for a in agents),
                      "the agent's log line for malformed credentials")
        # good credentials still pass (the stand-in checks the password)
        good = base64.b64encode(("alice@example.com:%s" % password("alice@example.com"))
                                .encode()).decode()
        st, hd, body = hp.get("/dav/", headers={"Authorization": "Basic " + good})
        assert st == 200 and body["server"] == "mbox1", (st, body)
    finally:
        for m in mailboxes.values():
            m.httpd.mbox_auth = False


def _basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def test_basic_login_counts_under_its_own_user(form_site):
    """The mailbox server checks Basic credentials whatever the URL names:
    the login is counted under the Basic user (spaces around it trimmed),
    not under the URL's made-up users."""
    hp, agents, gh = form_site({"user_fail_max": 3, "user_fail_ttl": 600})
    hdr = _basic("carol@example.org ", "wrong-pw")
    codes = [hp.get("/home/decoy%d@example.org/" % i, headers=hdr)[0] for i in range(3)]
    assert codes == [401] * 3, codes
    _wait_failures(gh, "carol@example.org", 3)
    assert hp.get("/home/decoy9@example.org/", headers=hdr)[0] == 429
    # an unusable Basic user is a bad request, not a login counted under nothing
    assert hp.get("/dav/", headers=_basic("car ol@example.org", "x"))[0] == 400


def test_form_login_counts_the_query_user_and_refuses_two_users(form_site):
    """A servlet reads username from the query string first: that name is
    counted, and a login whose query and body name different users is 400."""
    hp, agents, gh = form_site({"user_fail_max": 3, "user_fail_ttl": 600})
    ct = {"Content-Type": "application/x-www-form-urlencoded"}
    st = hp.get("/?username=carol%40example.org", method="POST", headers=ct,
                data=b"username=decoy%40example.org&password=wrong-pw")[0]
    assert st == 400, st
    codes = [hp.get("/?username=carol%40example.org", method="POST", headers=ct,
                    data=b"loginOp=login&password=wrong-pw")[0] for _ in range(3)]
    assert codes == [401] * 3, codes
    _wait_failures(gh, "carol@example.org", 3)
    assert hp.get("/?username=carol%40example.org", method="POST", headers=ct,
                  data=b"loginOp=login&password=wrong-pw")[0] == 429


def test_sasl_authzid_counts_against_the_authentication_identity(mailproxy, gatehouse):
    """AUTHENTICATE PLAIN with another authorization identity: the mailbox
    server checks the authcid's password, so the authcid's budget is spent
    (the authzid cannot be used to spare the victim's counter)."""
    mp = mailproxy(throttle={"user_fail_max": 2, "user_fail_ttl": 600})
    gh = gatehouse(mp.conf)

    def plain(authzid, authcid, pw):
        with socket.create_connection(("127.0.0.1", mp.imap), timeout=15) as s:
            f = s.makefile("rb")
            f.readline()
            tok = base64.b64encode(("%s\0%s\0%s" % (authzid, authcid, pw)).encode())
            s.sendall(b"a AUTHENTICATE PLAIN " + tok + b"\r\n")
            while True:
                line = f.readline()
                if not line or line.startswith(b"a "):
                    return line.decode()

    first = [plain("bob@example.com", "carol@example.org", "wrong-pw") for _ in range(2)]
    assert all(a.startswith("a NO ") for a in first), first
    _wait_failures(gh, "carol@example.org", 2)
    assert _failures(gh, "bob@example.com") == 0
    third = plain("bob@example.com", "carol@example.org", "wrong-pw")
    assert third.startswith("a NO [UNAVAILABLE]"), third


def test_failure_delay_varies_like_dovecots(mailproxy):
    """A fixed delay would tell the proxy's refusals from Dovecot's, whose
    delay depends on the clock and its half-second check: eight unknown-name
    logins at once are answered within [delay - 1, delay + 0.5] s, not all
    at the same moment."""
    import concurrent.futures as cf
    mp = mailproxy(failure_delay="2s")
    with cf.ThreadPoolExecutor(8) as ex:
        got = list(ex.map(lambda i: _imap_raw_answer(mp.imap, "nobody%d@example.com" % i, "x"),
                          range(8)))
    times = sorted(t for _, t in got)
    assert all(a.startswith("a NO [AUTHENTICATIONFAILED]") for a, _ in got), got
    assert times[0] >= 0.95, times
    assert times[-1] - times[0] > 0.05, times
