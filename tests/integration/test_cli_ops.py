"""Operator subcommands of `gatehouse` against real services: servers,
lookup-servers, memcached-servers, status, purge -f, throttle clear,
haproxy-servers (loaded by a real `haproxy -c`) and certs (list, check,
selfsigned, install, and sync/watch pushing to a running HAProxy through its
admin socket while a client holds a TLS connection open).
"""
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest

from gh import certs as gh_certs
from gh.ports import closed_port
from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from spoa_fixtures import REPO, server_table, wait_for, write_allowed, write_pool, write_routes

ALICE = "alice@example.com"


# --- health tables ---------------------------------------------------------

def test_servers_health(make_conf, gatehouse, mailboxes):
    servers = server_table(mailboxes)
    conf = make_conf(servers=servers)
    r = gatehouse(conf).run("servers")
    assert r.rc == 0, r
    assert r.data["down"] == 0 and r.data["up"] == 6, r
    names = sorted(s["name"] for s in r.data["servers"])
    assert names == ["mbox1", "mbox2", "mbox3"]
    for s in r.data["servers"]:
        assert s["up"] is True
        assert {p["proto"] for p in s["ports"]} == {"http", "https"}
    # one server down: exit 1, the reason per port
    servers["mbox9"] = {"address": "127.0.0.1", "imap": closed_port()}
    conf = make_conf(servers=servers)
    r = gatehouse(conf).run("servers")
    assert r.rc == 1, r
    bad = [s for s in r.data["servers"] if s["name"] == "mbox9"][0]
    assert bad["up"] is False and "refused" in bad["ports"][0]["error"].lower(), r
    t = gatehouse(conf).run("servers", json_out=False)
    assert t.rc == 1 and "mbox9" in t.stdout and "down" in t.stdout, t


def test_lookup_servers(make_conf, gatehouse, slapd_shared, tmp_path):
    down = "ldap://127.0.0.1:%d" % closed_port()
    conf = make_conf(ldap=[slapd_shared])
    r = gatehouse(conf).run("lookup-servers")
    assert r.rc == 0, r
    assert r.data["servers"][0]["uri"] == slapd_shared.uri and r.data["servers"][0]["up"]
    conf = make_conf(ldap=[slapd_shared, down])
    r = gatehouse(conf).run("lookup-servers")
    assert r.rc == 1, r
    assert [s["up"] for s in r.data["servers"]] == [True, False], r
    assert r.data["servers"][1]["error"], r
    # a wrong password is a refused bind, not "up"
    pw = tmp_path / "wrong.pw"
    pw.write_text("not-the-password\n")
    conf = make_conf(ldap=[slapd_shared], ldap_opts={"bind_password_file": str(pw)})
    r = gatehouse(conf).run("lookup-servers")
    assert r.rc == 1 and "credentials" in r.data["servers"][0]["error"], r


def test_memcached_servers(make_conf, gatehouse, memcached):
    conf = make_conf(memcached=[memcached, "127.0.0.1:%d" % closed_port()])
    r = gatehouse(conf).run("memcached-servers")
    assert r.rc == 1, r
    first, second = r.data["servers"]
    assert first["up"] and first["version"][0].isdigit(), r
    assert not second["up"] and second["error"], r
    assert r.data["up"] == 1 and r.data["down"] == 1
    conf = make_conf(memcached=[memcached])
    assert gatehouse(conf).run("memcached-servers").rc == 0
    # a name, as the daemons' memcached client takes it (resolved, every address tried)
    conf = make_conf(memcached=["localhost:%d" % memcached.port])
    r = gatehouse(conf).run("memcached-servers")
    assert r.rc == 0 and r.data["servers"][0]["up"], r


def test_status(spoa_factory, gatehouse, slapd_shared, memcached, mailboxes, make_conf):
    spoa = spoa_factory(ldap=[slapd_shared], memcached=[memcached],
                        servers=server_table(mailboxes))
    r = gatehouse(spoa.conf).run("status")
    assert r.rc == 0, r
    assert r.data["healthy"] is True
    kinds = {p["kind"] for p in r.data["parts"]}
    assert kinds == {"ldap", "memcached", "server", "spoa"}, r
    sp = [p for p in r.data["parts"] if p["kind"] == "spoa"][0]
    assert "route_ok_total" in sp["metrics"] and "connections" in sp["metrics"], sp
    # memcached down -> unhealthy, exit 1
    conf = make_conf(ldap=[slapd_shared], memcached=["127.0.0.1:%d" % closed_port()],
                     servers=server_table(mailboxes))
    r = gatehouse(conf).run("status")
    assert r.rc == 1 and r.data["healthy"] is False, r
    bad = [p for p in r.data["parts"] if not p["up"]]
    assert [p["kind"] for p in bad] == ["memcached"], r
    t = gatehouse(conf).run("status", json_out=False)
    assert t.rc == 1 and "UNHEALTHY" in t.stdout


# --- purge -f, throttle clear ----------------------------------------------

def test_purge_from_file(make_conf, gatehouse, slapd_shared, memcached, tmp_path):
    gh = gatehouse(make_conf(ldap=[slapd_shared], memcached=[memcached]))
    assert gh.run("route", ALICE).rc == 0
    names = tmp_path / "names.txt"
    names.write_text("# moved mailboxes\n\n%s\n" % ALICE)
    r = gh.run("purge", "-f", str(names))
    assert r.rc == 0, r
    assert r.data["names"][0]["name"] == ALICE and r.data["deleted"] >= 1, r
    # purged: the next lookup asks LDAP again
    assert gh.run("route", ALICE).source == "ldap"
    r = gh.run("purge", "-f", str(tmp_path / "missing.txt"))
    assert r.rc == 2, r


def test_throttle_clear(make_conf, gatehouse, memcached):
    gh = gatehouse(make_conf(memcached=[memcached], throttle={"ip_max": 5}))
    for _ in range(3):
        gh.run("throttle", "check", "192.0.2.77")
    assert gh.run("throttle", "show", "192.0.2.77").data["attempts"] == 3
    assert gh.run("throttle", "clear", "192.0.2.77").rc == 0
    assert gh.run("throttle", "show", "192.0.2.77").data["attempts"] == 0


# --- haproxy-servers -------------------------------------------------------

def test_haproxy_servers(make_conf, gatehouse, mailboxes, tmp_path, site_certs):
    conf = make_conf(servers=server_table(mailboxes))
    out = tmp_path / "out"
    out.mkdir()
    r = gatehouse(conf).run("haproxy-servers", "-o", str(out))
    assert r.rc == 0, r
    assert len(r.data["files"]) == 4 and len(r.data["servers"]) == 3
    write_pool(str(tmp_path / "want.cfg"), mailboxes)
    write_allowed(str(tmp_path / "want.lst"), mailboxes)
    assert (out / "gatehouse-servers.cfg").read_text() == (tmp_path / "want.cfg").read_text()
    assert sorted((out / "allowed-dst.lst").read_text().splitlines()) == \
        sorted((tmp_path / "want.lst").read_text().splitlines())
    # the route table's maps: what the test fixture writes for haproxy
    write_routes(str(tmp_path / "want.map"), str(tmp_path / "want-index.map"), mailboxes)
    assert (out / "routes.map").read_text() == (tmp_path / "want.map").read_text()
    assert (out / "route-index.map").read_text() == (tmp_path / "want-index.map").read_text()
    assert not [f for f in os.listdir(out) if f.startswith(".")]   # no temp file left
    t = gatehouse(conf).run("haproxy-servers", json_out=False)
    assert t.stdout == (out / "gatehouse-servers.cfg").read_text()
    env = dict(os.environ, GH_HTTP_BIND="127.0.0.1:1", GH_HTTPS_BIND="127.0.0.1:2",
               GH_CERTS=site_certs, GH_ERRORS=os.path.join(REPO, "haproxy", "errors"),
               GH_SPOE_CONF=os.path.join(REPO, "haproxy", "spoe-gatehouse.conf"),
               GH_SPOE_PROCESSING="500ms", GH_AGENT1="127.0.0.1:3", GH_AGENT2="127.0.0.1:4",
               GH_ALLOWED_DST=str(out / "allowed-dst.lst"), GH_LOG="stdout",
               GH_ROUTES=str(out / "routes.map"), GH_ROUTE_INDEX=str(out / "route-index.map"),
               GH_HTTPS_REDIRECT="no", GH_ADMIN_SOCK=str(tmp_path / "a.sock"))
    c = subprocess.run(["/usr/sbin/haproxy", "-c", "-f",
                        os.path.join(REPO, "haproxy", "haproxy.cfg"), "-f",
                        str(out / "gatehouse-servers.cfg")], env=env, capture_output=True,
                       text=True, timeout=30)
    assert c.returncode == 0, c.stdout + c.stderr


def test_haproxy_servers_addresses_as_parsed(make_conf, gatehouse, tmp_path):
    """The pool lists the parsed address: a configured address may carry a
    port (ignored) or be IPv6; real haproxy must accept the file."""
    conf = make_conf(servers={"a": {"address": "192.0.2.10:9999", "http": 8080},
                              "b": {"address": "::1", "http": 8081}})
    r = gatehouse(conf).run("haproxy-servers", json_out=False)
    assert r.rc == 0, r
    assert "server a 192.0.2.10:8080 " in r.stdout and "server b ipv6@::1:8081 " in r.stdout, r
    pool = tmp_path / "pool.cfg"
    pool.write_text("defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n"
                    "  timeout server 1s\nfrontend f\n  bind 127.0.0.1:1\n"
                    "  default_backend be_pool\n" + r.stdout)
    c = subprocess.run(["/usr/sbin/haproxy", "-c", "-f", str(pool)], capture_output=True,
                       text=True, timeout=30)
    assert c.returncode == 0, c.stdout + c.stderr


def test_haproxy_servers_missing_directory_is_named(make_conf, gatehouse, tmp_path):
    """-o into a directory that does not exist (or a file) names that
    directory, not the temporary file it would have written."""
    conf = make_conf(servers={"a": {"address": "192.0.2.10", "http": 8080}})
    missing = tmp_path / "missing" / "x"
    r = gatehouse(conf).run("haproxy-servers", "-o", str(missing), json_out=False)
    assert r.rc == 2, r
    assert "%s: No such file or directory" % missing in r.stderr and ".tmp." not in r.stderr, r
    afile = tmp_path / "afile"
    afile.write_text("")
    r = gatehouse(conf).run("haproxy-servers", "-o", str(afile), json_out=False)
    assert r.rc == 2 and "%s: not a directory" % afile in r.stderr, r


def test_invalid_configuration_exits_1_everywhere(gatehouse, tmp_path):
    """The overview's exit status: 1 for a configuration that is not valid,
    whichever command reads it; the error names file, line and key."""
    bad = tmp_path / "bad.conf"
    bad.write_text("[ldap]\nuri = ldap://127.0.0.1:1\nbase = o=x\nbogus_key = 1\n")
    gh = gatehouse(str(bad))
    for args in (["route", "alice@example.com"], ["purge", "alice@example.com"],
                 ["vhost", "mail.example.com"], ["throttle", "show", "192.0.2.1"],
                 ["check"], ["servers"], ["lookup-servers"], ["memcached-servers"],
                 ["status"], ["haproxy-servers"], ["certs", "list"]):
        r = gh.run(*args, json_out=False)
        assert r.rc == 1, (args, r)
        assert "bad.conf:4" in r.stderr + r.stdout and "bogus_key" in r.stderr + r.stdout, \
            (args, r)


# --- certs: files ----------------------------------------------------------

def test_certs_install_with_separate_key_file(make_conf, gatehouse, tmp_path):
    """A certificate whose key is in FILE.key (as HAProxy and the mail
    proxy accept it) is installed with its key, and checks good there."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                    "-subj", "/CN=split.example.com", "-addext",
                    "subjectAltName=DNS:split.example.com",
                    "-keyout", str(src / "split.pem.key"), "-out", str(src / "split.pem")],
                   check=True, capture_output=True, timeout=30)
    gh = gatehouse(make_conf())
    r = gh.run("certs", "install", str(src / "split.pem"), str(dst))
    assert r.rc == 0, r
    assert (dst / "split.pem.key").read_bytes() == (src / "split.pem.key").read_bytes()
    assert oct((dst / "split.pem.key").stat().st_mode & 0o777) == "0o600"
    r = gh.run("certs", "check", str(dst / "split.pem"))
    assert r.rc == 0, r
    # a directory kept for a group (the package's certs/: 0750
    # root:gatehouse) gets files its group can read, the daemons' user
    grp = tmp_path / "grp"
    grp.mkdir()
    os.chown(grp, -1, 1)
    os.chmod(grp, 0o750)
    r = gh.run("certs", "install", str(src / "split.pem"), str(grp))
    assert r.rc == 0, r
    for f in ("split.pem", "split.pem.key"):
        st = (grp / f).stat()
        assert oct(st.st_mode & 0o777) == "0o640" and st.st_gid == 1, (f, oct(st.st_mode))



def expired_pem(path):
    """Write a self-signed PEM (cert + key) that expired yesterday."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old.example.test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=10))
            .not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("old.example.test")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return str(path)


def pem_blocks(path):
    """Return the PEM blocks of <path> as strings."""
    out, cur = [], []
    for line in open(path).read().splitlines():
        if line.startswith("-----BEGIN"):
            cur = [line]
        elif line.startswith("-----END"):
            cur.append(line)
            out.append("\n".join(cur) + "\n")
            cur = []
        elif cur:
            cur.append(line)
    return out


def leaf_der(path):
    return ssl.PEM_cert_to_DER_cert(pem_blocks(path)[0])


def test_certs_files(gatehouse, mbox_certs, tmp_path):
    gh = gatehouse(tmp_path / "none.conf")   # no config needed with explicit paths
    d = tmp_path / "certs"
    d.mkdir()
    # selfsigned: one PEM, names as SANs, good for check
    ss = d / "b-self.pem"
    r = gh.run("certs", "selfsigned", "self.example.test", "alt.example.test", "127.0.0.1",
               "-o", str(ss), "--days", "5", json_out=False)
    assert r.rc == 0, r
    assert oct(os.stat(ss).st_mode & 0o777) == "0o600"
    r = gh.run("certs", "check", str(ss))
    # an IP SAN is listed apart: the daemons never choose a certificate by it
    assert r.rc == 0 and r.data["names"] == ["self.example.test", "alt.example.test"], r
    assert r.data["ip_sans"] == ["127.0.0.1"], r
    # good CA-signed file: install it
    r = gh.run("certs", "install", mbox_certs["mail.example.org"], str(d))
    assert r.rc == 0 and os.path.exists(d / "mail.example.org.pem"), r
    # key mismatch
    bad = tmp_path / "mismatch.pem"
    blocks = pem_blocks(mbox_certs["mail.example.com"])
    other_key = pem_blocks(mbox_certs["mail.example.org"])[-1]
    bad.write_text("".join(blocks[:-1]) + other_key)
    r = gh.run("certs", "install", str(bad), str(d))
    assert r.rc == 1 and "key does not match" in r.data["error"], r
    assert "refused" in r.stderr
    # expired
    old = expired_pem(tmp_path / "old.pem")
    r = gh.run("certs", "install", old, str(d))
    assert r.rc == 1 and "expired" in r.data["error"], r
    # chain order: leaf, key, then a CA that did not sign it: the daemons
    # serve it (TLS 1.3 clients accept any order), so a warning
    other_ca = gh_certs.make_ca(str(tmp_path / "ca2"), name="another CA")
    wrong = tmp_path / "wrongchain.pem"
    wrong.write_text(blocks[0] + open(other_ca.cert).read() + blocks[-1])
    r = gh.run("certs", "check", str(wrong))
    assert r.rc == 0 and "chain order" in r.data["warnings"][0], r
    assert not os.path.exists(d / "mismatch.pem") and not os.path.exists(d / "old.pem")
    # list: names, expiry, issuer, default = alphabetically first good file
    shutil.copy(old, d / "a-old.pem")
    r = gh.run("certs", "list", str(d))
    assert r.rc == 1, r   # a broken file is listed
    files = {f["file"]: f for f in r.data["files"]}
    assert not files["a-old.pem"]["ok"] and "expired" in files["a-old.pem"]["error"]
    assert files["b-self.pem"]["default"] is True
    assert files["mail.example.org.pem"]["default"] is False
    assert files["mail.example.org.pem"]["issuer"] == "CN=gatehouse test CA"
    assert files["mail.example.org.pem"]["names"] == ["mail.example.org"]
    assert files["b-self.pem"]["not_after"].endswith("Z")
    t = gh.run("certs", "list", str(d), json_out=False)
    assert "b-self.pem  (default)" in t.stdout and "BROKEN" in t.stdout, t


# --- certs: HAProxy runtime API --------------------------------------------

def served_der(port, sni):
    """The leaf certificate (DER) HAProxy serves on <port> for <sni>."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            return t.getpeercert(binary_form=True)


class Held:
    """A TLS connection held open to HAProxy, usable for HTTP/1.1 requests."""

    def __init__(self, port):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["http/1.1"])
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                 server_hostname="mail.example.com")

    def request(self):
        """Send one keep-alive request; return the status line."""
        self.s.sendall(b"GET /health HTTP/1.1\r\nHost: mail.example.com\r\n"
                       b"Content-Length: 0\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = self.s.recv(4096)
            assert d, "held connection closed by haproxy"
            buf += d
        head, _, rest = buf.partition(b"\r\n\r\n")
        clen = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                clen = int(v.strip())
        while len(rest) < clen:
            d = self.s.recv(4096)
            assert d
            rest += d
        return head.split(b"\r\n")[0].decode()

    def close(self):
        self.s.close()


@pytest.fixture
def tls_site(spoa_factory, haproxy_factory, slapd_shared, memcached, mailboxes, site_certs):
    kw = dict(ldap=[slapd_shared], memcached=[memcached], servers=server_table(mailboxes))
    agent = spoa_factory(**kw)
    hp = haproxy_factory(mailboxes, ["127.0.0.1:%d" % agent.port])
    return hp, site_certs


def test_certs_sync_haproxy(tls_site, gatehouse, mbox_certs, tmp_path):
    hp, d = tls_site
    gh = gatehouse(tmp_path / "none.conf")
    default = leaf_der(os.path.join(d, "00-mail.example.com.pem"))
    held = Held(hp.https_port)
    assert held.request().startswith("HTTP/1.1 ")
    # nothing to do at first
    r = gh.run("certs", "sync", "--haproxy", hp.admin_sock, d)
    assert r.rc == 0 and r.data["added"] == [] and r.data["unchanged"] == 2, r
    # drop a new file in (installed, so atomically), push it
    new = gh_certs.make_cert(str(tmp_path / "new"), ["new.example.test"], mbox_certs["ca"])
    assert served_der(hp.https_port, "new.example.test") == default
    assert gh.run("certs", "install", new, d).rc == 0
    r = gh.run("certs", "sync", "--haproxy", hp.admin_sock, d)
    assert r.rc == 0 and r.data["added"] == ["new.example.test.pem"], r
    assert served_der(hp.https_port, "new.example.test") == leaf_der(new)
    assert held.request().startswith("HTTP/1.1 ")
    # replace it with a new certificate for the same name
    repl = gh_certs.make_cert(str(tmp_path / "repl"), ["new.example.test"], mbox_certs["ca"])
    spaced = tmp_path / "new.example.test.pem"   # blank lines between the blocks
    spaced.write_text("\n\n".join(pem_blocks(repl)) + "\n")
    assert gh.run("certs", "install", str(spaced), d).rc == 0
    r = gh.run("certs", "sync", "--haproxy", hp.admin_sock, d)
    assert r.rc == 0 and r.data["updated"] == ["new.example.test.pem"], r
    assert served_der(hp.https_port, "new.example.test") == leaf_der(repl)
    assert leaf_der(repl) != leaf_der(new)
    # a broken file in the directory is skipped with its reason, not pushed
    shutil.copy(expired_pem(tmp_path / "old.pem"), os.path.join(d, "old.pem"))
    r = gh.run("certs", "sync", "--haproxy", hp.admin_sock, d)
    assert r.rc == 1 and r.data["errors"][0]["file"] == "old.pem", r
    assert "expired" in r.data["errors"][0]["error"]
    os.unlink(os.path.join(d, "old.pem"))
    # remove it
    os.unlink(os.path.join(d, "new.example.test.pem"))
    r = gh.run("certs", "sync", "--haproxy", hp.admin_sock, d)
    assert r.rc == 0 and r.data["removed"] == ["new.example.test.pem"], r
    assert served_der(hp.https_port, "new.example.test") == default
    assert held.request().startswith("HTTP/1.1 ")
    held.close()
    # HAProxy unreachable: exit 2
    r = gh.run("certs", "sync", "--haproxy", str(tmp_path / "nosock"), d)
    assert r.rc == 2 and r.data["ok"] is False, r


def test_certs_watch_haproxy(tls_site, gh_bin, mbox_certs, tmp_path):
    hp, d = tls_site
    default = leaf_der(os.path.join(d, "00-mail.example.com.pem"))
    held = Held(hp.https_port)
    log = open(tmp_path / "watch.log", "w")
    w = subprocess.Popen([gh_bin("gatehouse"), "-c", str(tmp_path / "none.conf"), "--json",
                          "certs", "watch", "--haproxy", hp.admin_sock, d],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        # the first report: the watch is set up and the first sync done
        assert wait_for(lambda: open(tmp_path / "watch.log").read().strip(), 10)
        new = gh_certs.make_cert(str(tmp_path / "w"), ["watched.example.test"],
                                 mbox_certs["ca"])
        shutil.copy(new, os.path.join(d, "watched.pem"))   # a plain copy, not atomic
        assert wait_for(lambda: served_der(hp.https_port, "watched.example.test") ==
                        leaf_der(new), 5), open(tmp_path / "watch.log").read()
        assert held.request().startswith("HTTP/1.1 ")
        os.unlink(os.path.join(d, "watched.pem"))
        assert wait_for(lambda: served_der(hp.https_port, "watched.example.test") ==
                        default, 5), open(tmp_path / "watch.log").read()
        assert held.request().startswith("HTTP/1.1 ")
    finally:
        w.send_signal(signal.SIGTERM)
        rc = w.wait(timeout=5)
        log.close()
        held.close()
    assert rc == 0
