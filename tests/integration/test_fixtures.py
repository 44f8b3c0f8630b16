"""Smoke tests of the fixtures themselves: the seed directory in a real
slapd, real memcached, real dovecot reached with imaplib/poplib, and the
generated gatehouse.conf. They need none of gatehouse's binaries."""
import imaplib
import os
import poplib
import socket
import ssl
import subprocess

import pytest

from gh import config as gh_config
from gh import keys as gh_keys
from gh import slapd as gh_slapd
from gh import wait as gh_wait
from gh.slapd import gen_ldif


def test_seed_data_shape():
    us = gen_ldif.users()
    assert len(us) >= 1000
    mails = [u["mail"].lower() for u in us]
    assert len(set(mails)) == len(mails)
    hosts = {u["host"] for u in us}
    assert {"mbox1", "mbox2", "mbox3"} <= hosts
    for s in ("mbox1", "mbox2", "mbox3"):
        assert sum(u["host"] == s for u in us) > 300
    assert {u["domain"] for u in us} == {"example.com", "example.org"}
    assert sum(1 for u in us if u["aliases"]) > 100
    # cross-domain aliases exist
    assert any(a.split("@")[1].lower() != u["domain"] for u in us for a in u["aliases"])
    assert len(gen_ldif.LONG_MAIL) > 200
    assert gen_ldif.password_for("AL@example.com") == "alice-pw"
    assert gen_ldif.password_for("user0007@example.org") == gen_ldif.user(
        "user0007@example.org")["password"]
    assert gen_ldif.ldif() == gen_ldif.ldif()      # deterministic


def test_passwd_files_only_hold_their_servers_users():
    text = gen_ldif.passwd_file("mbox1")
    assert "alice@example.com:{PLAIN}alice-pw:" in text
    assert "al@example.com:{PLAIN}alice-pw::::::user=alice@example.com" in text
    assert "bob@example.com" not in text
    assert "dave.upper@example.com" in gen_ldif.passwd_file("mbox2")


def test_keys_encoding():
    assert gh_keys.make("n:", "Alice@Example.com") == "gh:n:alice@example.com"
    long_key = gh_keys.make("n:", gen_ldif.LONG_MAIL)
    assert long_key.startswith("gh:n:#") and len(long_key) == 6 + 64
    assert gh_keys.make("n:", gen_ldif.UTF8_LOGIN).startswith("gh:n:#")
    assert gh_keys.make("n:", "a b@example.com").startswith("gh:n:#")


def test_slapd_seeded_and_acl(slapd_shared, ldap_template):
    assert ldap_template.seed_seconds < 10
    res = slapd_shared.search("(mail=alice@example.com)",
                              ["mail", "mailHost", "mailLocalAddress", "entryUUID"])
    assert len(res) == 1
    dn, a = res[0]
    assert dn == "uid=alice,ou=example.com,o=gatehouse"
    assert a["mailHost"] == ["mbox1"]
    assert set(a["mailLocalAddress"]) == {"al@example.com", "alice@example.org"}
    assert len(a["entryUUID"][0]) == 36
    # the default account filter of gatehouse finds aliases case-insensitively
    res = slapd_shared.search("(&(objectClass=inetOrgPerson)(|(mail=AL@EXAMPLE.COM)"
                              "(mailLocalAddress=AL@EXAMPLE.COM)))", ["mail"])
    assert [r[1]["mail"] for r in res] == [["alice@example.com"]]
    # awkward entries
    assert slapd_shared.search("(mail=dave.upper@example.com)", ["mail"])[0][1]["mail"] == \
        ["Dave.Upper@Example.com"]
    assert len(slapd_shared.search("(mailLocalAddress=%s)" % gen_ldif.SHARED_ALIAS)) == 2
    assert slapd_shared.search("(mail=mallory@example.com)", ["mailHost"])[0][1]["mailHost"] \
        == [gen_ldif.EVIL_HOST]
    assert len(slapd_shared.search("(mail=%s)" % gen_ldif.LONG_MAIL)) == 1
    assert slapd_shared.search("(mail=juergen@example.org)", ["cn"])[0][1]["cn"] == \
        ["Jürgen Müller"]
    # anonymous reads nothing; the bind DN's password file works
    r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", slapd_shared.uri, "-b",
                        "o=gatehouse", "(mail=alice@example.com)", "mail"],
                       capture_output=True, text=True, env=gh_slapd.LDAP_ENV)
    assert "alice@example.com" not in r.stdout
    r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", slapd_shared.uri, "-D",
                        gh_slapd.BIND_DN, "-w", gh_slapd.BIND_PW, "-b", "o=gatehouse",
                        "(mail=bob@example.com)", "mailHost"],
                       capture_output=True, text=True, env=gh_slapd.LDAP_ENV)
    assert r.returncode == 0 and "mailHost: mbox2" in r.stdout


def test_non_ascii_mail_is_rejected_by_slapd(slapd):
    """Why the UTF-8 user has no UTF-8 address (see gen_ldif's docstring)."""
    with pytest.raises(RuntimeError):
        slapd.add_user(gen_ldif.UTF8_LOGIN, "mbox1")


def test_slapd_stop_start_add(slapd):
    uuid = slapd.entry_uuid("carol@example.org")
    slapd.stop()
    assert not slapd.alive()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", slapd.port)) != 0
    slapd.start()
    assert slapd.entry_uuid("carol@example.org") == uuid
    dn = slapd.add_user("newbie@example.com", "mbox2", ["nb@example.org"])
    assert slapd.search("(mailLocalAddress=nb@example.org)", ["mail"])[0][0] == dn
    slapd.set_host(dn, "mbox3")
    assert slapd.search("(mail=newbie@example.com)", ["mailHost"])[0][1]["mailHost"] == ["mbox3"]


def test_slapd_copies_share_uuids(slapd_factory):
    a, b = slapd_factory(), slapd_factory()
    assert a.port != b.port
    assert a.entry_uuid("bob@example.com") == b.entry_uuid("bob@example.com")


def test_memcached_pair(memcached_pair):
    a, b = memcached_pair
    assert a.set("gh:n:x@example.com", "x@example.com mbox1")
    assert a.get("gh:n:x@example.com") == "x@example.com mbox1"
    assert b.get("gh:n:x@example.com") is None
    b.stop()
    assert not b.alive() and a.alive()
    b.start()
    assert b.get("gh:n:x@example.com") is None


def test_dovecot_imap_pop3(dovecots):
    for name, user in (("mbox1", "alice@example.com"), ("mbox2", "bob@example.com"),
                       ("mbox3", "carol@example.org")):
        dv = dovecots[name]
        c = imaplib.IMAP4("127.0.0.1", dv.imap)
        assert name.encode() in c.welcome
        assert c.login(user, gen_ldif.password_for(user))[0] == "OK"
        c.logout()
        dv.wait_login(user)
    dv = dovecots["mbox1"]
    # alias login: dovecot logs the canonical name
    c = imaplib.IMAP4("127.0.0.1", dv.imap)
    c.login("AL@example.com", "alice-pw")
    c.logout()
    # a user of another server is unknown here
    c = imaplib.IMAP4("127.0.0.1", dv.imap)
    with pytest.raises(imaplib.IMAP4.error):
        c.login("bob@example.com", "bob-pw")
    c.logout()
    # POP3, and a password with quotes, a backslash and spaces
    p = poplib.POP3("127.0.0.1", dv.pop3)
    p.user("quote@example.com")
    assert p.pass_(gen_ldif.password_for("quote@example.com")).startswith(b"+OK")
    p.quit()
    dv.wait_login("quote@example.com")


def test_dovecot_trusts_id_from_loopback(dovecots):
    dv = dovecots["mbox2"]
    c = imaplib.IMAP4("127.0.0.1", dv.imap)
    typ, _ = c.xatom("ID", '("x-originating-ip" "192.0.2.55" "x-originating-port" "40000")')
    assert typ == "OK"
    c.login("robert@example.com", "bob-pw")
    c.logout()
    # dovecot writes the login line on its own time: wait for it
    lg = gh_wait.until(lambda: [x for x in dv.logins() if x["rip"] == "192.0.2.55"],
                       "dovecot's login line with rip=192.0.2.55",
                       seen=lambda: dv.log_text()[-2000:])
    assert lg[0]["user"] == "bob@example.com"


def test_dovecot_tls(dovecots, mbox_certs):
    dv = dovecots["mbox3"]
    ctx = ssl.create_default_context(cafile=mbox_certs["ca"].cert)
    ctx.check_hostname = True
    c = imaplib.IMAP4_SSL("localhost", dv.imaps, ssl_context=ctx)
    c.login("carol@example.org", "carol-pw")
    c.logout()
    p = poplib.POP3_SSL("localhost", dv.pop3s, context=ctx)
    p.user("caroline@example.org")
    assert p.pass_("carol-pw").startswith(b"+OK")
    p.quit()
    c = imaplib.IMAP4("127.0.0.1", dv.imap)
    c.starttls(ssl_context=ssl.create_default_context(cafile=mbox_certs["ca"].cert))
    c.login("carol@example.org", "carol-pw")
    c.logout()


def test_dovecot_stop_by_pid(dovecot_factory):
    dv = dovecot_factory("mbox2", tls=False)
    assert dv.imaps == 0
    c = imaplib.IMAP4("127.0.0.1", dv.imap)
    c.login("bob@example.com", "bob-pw")
    c.logout()
    dv.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", dv.imap)) != 0


def test_config_written(make_conf, slapd_shared, memcached):
    path = make_conf(ldap=[slapd_shared], memcached=[memcached],
                     throttle={"ip_max": 10, "whitelist": ["198.51.100.0/24", "2001:db8::/32"]})
    text = open(path).read()
    assert "[ldap]" in text and slapd_shared.uri in text
    assert "servers = " + memcached.address in text
    assert "[server mbox1]" in text and "ip_max = 10" in text
    assert "whitelist = 198.51.100.0/24 2001:db8::/32" in text
    assert "bind_dn = cn=gatehouse,o=gatehouse" in text
    assert os.path.exists(slapd_shared.bind_pw_file)
    assert gh_config.render({"x": {"a": None, "b": True}}).endswith("[x]\nb = yes\n")


def test_config_accepted_by_cli(make_conf, slapd_shared, memcached, gatehouse):
    path = make_conf(ldap=[slapd_shared], memcached=[memcached], throttle={"ip_max": 10})
    r = gatehouse(path).run("check", json_out=False)
    assert r.rc == 0, r


def test_mailproxy_fixture(mailproxy_factory, slapd_shared, memcached, dovecots):
    """The mail-proxy fixture starts the daemon in front of the three
    dovecots; a login through it lands on the account's server."""
    mp = mailproxy_factory(ldap=[slapd_shared], memcached=[memcached], dovecots=dovecots)
    assert mp.alive()
    c = imaplib.IMAP4("127.0.0.1", mp.imap)
    c.login("bob@example.com", "bob-pw")
    c.logout()
    dovecots["mbox2"].wait_login("bob@example.com")


def test_spoa_fixture(spoa_factory, slapd_shared, memcached):
    sp = spoa_factory(ldap=[slapd_shared], memcached=[memcached])
    assert sp.alive()
    with socket.create_connection(("127.0.0.1", sp.port), timeout=2):
        pass


def test_dovecot_deliver_and_fetch_large(dovecot_factory):
    dv = dovecot_factory("mbox1", tls=False)
    body = b"".join(b"line %07d of a large test message ..............................\r\n"
                    % i for i in range(40000))             # ~3 MB
    msg = b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n\r\n" + body
    dv.deliver("alice@example.com", msg)
    dv.deliver("alice@example.com", b"Subject: small\r\n\r\nhello\r\n")
    c = imaplib.IMAP4("127.0.0.1", dv.imap)
    c.login("al@example.com", "alice-pw")
    typ, data = c.select("INBOX")
    assert data == [b"2"]
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == msg
    c.logout()


def test_gen_ldif_as_program(gh_tmp):
    import sys
    out = os.path.join(gh_tmp, "gen-out")
    os.makedirs(out)
    r = subprocess.run([sys.executable, os.path.join(gh_slapd.REPO, "tools", "demo",
                                                     "gen_ldif.py"),
                        "--ldif", os.path.join(out, "seed.ldif"), "--passwd-dir", out],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert open(os.path.join(out, "seed.ldif"), encoding="utf-8").read() == gen_ldif.ldif()
    assert sorted(os.listdir(out)) == ["mbox1.passwd", "mbox2.passwd", "mbox3.passwd",
                                       "seed.ldif"]


def test_children_die_with_the_test_process(gh_tmp):
    """A memcached started by a helper process is gone when that process is
    killed with SIGKILL (PR_SET_PDEATHSIG), so nothing outlives a crashed run."""
    import signal
    import sys
    import time
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
    code = ("import sys, time; sys.path.insert(0, %r)\n"
            "from gh import memcached\n"
            "m = memcached.Memcached(%r)\n"
            "print(m.proc.pid, flush=True)\n"
            "time.sleep(60)\n") % (here, os.path.join(gh_tmp, "orphan"))
    helper = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        pid = int(helper.stdout.readline())
        os.kill(helper.pid, signal.SIGKILL)
        helper.wait(5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("memcached %d outlived its parent" % pid)
    finally:
        if helper.poll() is None:
            helper.kill()
