"""`gatehouse certs list` and gatehouse-mailproxy agree on which file serves
which name (issue 12): the CLI shows exactly the names the daemons' store
indexes, with the same verdicts, and the certificate `openssl s_client
-servername NAME` gets from the mail proxy's IMAPS listener is the file the
CLI says. The directory holds the cases where the CLI used to disagree:

* an IP SAN (127.0.0.1): never matched, by SNI or by the address a client
  without SNI connected to; such a client gets the default certificate;
* a valid leaf under an expired intermediate: served (clients may build
  another path), listed as good with a warning;
* an expired leaf: not served, listed as broken;
* a DNS SAN with an embedded NUL: no name (and it still rules out the CN);
* a wildcard, and names a later file repeats (the earlier file serves them).
"""
import datetime
import hashlib
import ipaddress
import os
import re
import ssl
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gh import certs as gh_certs
from gh.ports import closed_port

DEFAULT = "00-default.pem"

# SNI sent (None: no SNI) -> the file that must serve it
EXPECTED = {
    None: DEFAULT,                            # no SNI, connected to 127.0.0.1 (an IP SAN)
    "127.0.0.1": DEFAULT,                     # an address sent as SNI is no name either
    "default.example.test": DEFAULT,
    "ipsan.example.test": "ipsan.pem",
    "chain.example.test": "chain.pem",        # expired intermediate: still served
    "old.example.test": DEFAULT,              # expired leaf: not served
    "nul.example.test": DEFAULT,              # NUL in the SAN: no name
    "cn-nul.example.test": DEFAULT,           # ... and no CN fallback either
    "x.wild.example.test": "wild.pem",
    "a.b.wild.example.test": DEFAULT,         # a wildcard covers one label
    "dup.example.test": "zz-dup.pem",
    "unknown.example.test": DEFAULT,
}


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(cn, sans, key, issuer=None, days=(-1, 30), ca=False):
    """A certificate for <key> with CN <cn> and SANs <sans> (x509 objects),
    valid from/to <days> relative to now, signed by <issuer> (cert, key) or
    self-signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer[0].subject if issuer else name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(issuer[1] if issuer else key, hashes.SHA256())


def _write(path, certs, key):
    with open(path, "wb") as f:
        for c in certs:
            f.write(c.public_bytes(serialization.Encoding.PEM))
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)


def make_dir(d):
    """Fill certificate directory <d> with the cases above."""
    os.makedirs(d)
    dns = x509.DNSName
    k = _key()
    _write(os.path.join(d, DEFAULT), [_cert("default.example.test",
                                            [dns("default.example.test")], k)], k)
    k = _key()
    ip = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    _write(os.path.join(d, "ipsan.pem"),
           [_cert("ipsan.example.test", [dns("ipsan.example.test"), ip], k)], k)
    # root (valid) -> intermediate (expired yesterday) -> leaf (valid)
    rk, ik, lk = _key(), _key(), _key()
    root = _cert("agree test root", None, rk, days=(-30, 30), ca=True)
    inter = _cert("agree expired intermediate", None, ik, issuer=(root, rk), days=(-20, -1),
                  ca=True)
    leaf = _cert("chain.example.test", [dns("chain.example.test")], lk, issuer=(inter, ik),
                 days=(-2, 30))
    _write(os.path.join(d, "chain.pem"), [leaf, inter, root], lk)
    k = _key()
    _write(os.path.join(d, "old.pem"), [_cert("old.example.test", [dns("old.example.test")], k,
                                              days=(-10, -1))], k)
    k = _key()
    _write(os.path.join(d, "nul.pem"),
           [_cert("cn-nul.example.test", [dns("nul.example.test\x00.evil.example.test")], k)],
           k)
    k = _key()
    _write(os.path.join(d, "wild.pem"), [_cert("wild", [dns("*.wild.example.test")], k)], k)
    k = _key()
    _write(os.path.join(d, "zz-dup.pem"),
           [_cert("dup.example.test", [dns("default.example.test"), dns("chain.example.test"),
                                       dns("dup.example.test")], k)], k)


def served_sha1(port, sni):
    """SHA-1 (upper-case hex) of the leaf `openssl s_client` gets on <port>
    sending <sni> (None: -noservername)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    argv += ["-noservername"] if sni is None else ["-servername", sni]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    assert m, "no certificate from s_client for %r: %s" % (sni, r.stderr[-500:])
    return hashlib.sha1(ssl.PEM_cert_to_DER_cert(m.group(0))).hexdigest().upper()


def cli_owner(files, sni):
    """The file `certs list` says serves <sni>: exact name, then a
    one-label wildcard, then the default."""
    good = [f for f in files if f["ok"]]
    if sni is not None:
        for f in good:
            if sni.lower() in f["names"]:
                return f["file"]
        if "." in sni:
            wild = "*." + sni.lower().split(".", 1)[1]
            for f in good:
                if wild in f["names"]:
                    return f["file"]
    return [f["file"] for f in good if f["default"]][0]


def test_cli_and_mailproxy_agree(mailproxy_factory, gatehouse, gh_tmp):
    d = os.path.join(str(gh_tmp), "agree-certs-%d" % closed_port())
    make_dir(d)
    mp = mailproxy_factory(ldap=["ldap://127.0.0.1:%d" % closed_port()],
                           mailproxy={"certs": d, "imap": None, "pop3": None, "pop3s": None})
    r = gatehouse(mp.conf).run("certs", "list")   # the DIR of [mailproxy] certs
    assert r.rc == 1, r                           # old.pem is broken
    files = {f["file"]: f for f in r.data["files"]}
    assert sorted(files) == sorted([DEFAULT, "chain.pem", "ipsan.pem", "nul.pem", "old.pem",
                                    "wild.pem", "zz-dup.pem"]), r

    # what the CLI says, case by case
    assert files[DEFAULT]["default"] and files[DEFAULT]["names"] == ["default.example.test"]
    assert files["ipsan.pem"]["names"] == ["ipsan.example.test"], files["ipsan.pem"]
    assert files["ipsan.pem"]["ip_sans"] == ["127.0.0.1"]
    assert any("never matched" in w for w in files["ipsan.pem"]["warnings"])
    assert files["chain.pem"]["ok"], files["chain.pem"]
    assert any("chain certificate 2" in w and "expired" in w
               for w in files["chain.pem"]["warnings"]), files["chain.pem"]
    assert not files["old.pem"]["ok"] and "expired" in files["old.pem"]["error"]
    assert files["nul.pem"]["ok"] and files["nul.pem"]["names"] == [], files["nul.pem"]
    assert files["wild.pem"]["names"] == ["*.wild.example.test"]
    assert files["zz-dup.pem"]["names"] == ["dup.example.test"], files["zz-dup.pem"]
    assert {(s["name"], s["by"]) for s in files["zz-dup.pem"]["shadowed"]} == {
        ("default.example.test", DEFAULT), ("chain.example.test", "chain.pem")}

    # the CLI's answer and the mail proxy's, for every name
    by_sha1 = {f["sha1"]: name for name, f in files.items() if f["ok"]}
    assert len(by_sha1) == 6
    for sni, want in EXPECTED.items():
        assert cli_owner(r.data["files"], sni) == want, (sni, "CLI")
        got = by_sha1.get(served_sha1(mp.imaps, sni), "a certificate not in certs list")
        assert got == want, (sni, "mail proxy")

    # the text form shows the same
    t = gatehouse(mp.conf).run("certs", "list", json_out=False)
    assert "ip sans    127.0.0.1" in t.stdout, t.stdout
    assert "shadowed   chain.example.test (served by chain.pem)" in t.stdout, t.stdout


def test_check_agrees_with_store(gatehouse, tmp_path):
    """`certs check` gives the store's verdict: a file the daemons serve
    passes (warnings printed), a file they skip is refused."""
    d = str(tmp_path / "c")
    make_dir(d)
    gh = gatehouse(tmp_path / "none.conf")
    r = gh.run("certs", "check", os.path.join(d, "chain.pem"))
    assert r.rc == 0 and r.data["names"] == ["chain.example.test"], r
    assert "expired" in " ".join(r.data["warnings"]), r
    r = gh.run("certs", "check", os.path.join(d, "old.pem"))
    assert r.rc == 1 and "expired" in r.data["error"], r
    t = gh.run("certs", "check", os.path.join(d, "chain.pem"), json_out=False)
    assert t.rc == 0 and "warning: chain certificate 2" in t.stdout, t
    # install takes the served file, with its warning on stderr
    dst = tmp_path / "dst"
    dst.mkdir()
    r = gh.run("certs", "install", os.path.join(d, "chain.pem"), str(dst))
    assert r.rc == 0 and (dst / "chain.pem").exists(), r
    assert "warning: chain certificate 2" in r.stderr, r
    # an IP-only self-signed file made by gh.certs: no name, served as default only
    ip = gh_certs.make_cert(str(tmp_path / "ip"), ["127.0.0.5"])
    r = gh.run("certs", "check", ip)
    assert r.rc == 0 and r.data["names"] == [] and r.data["ip_sans"] == ["127.0.0.5"], r
