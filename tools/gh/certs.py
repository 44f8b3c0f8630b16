"""Certificates for tests, made with the openssl CLI (EC P-256: fast).

make_ca() makes a CA; make_cert() makes a leaf for some DNS names, signed by
that CA (or self-signed without one), and writes one PEM file holding the
certificate, its chain and the key (the format certs/ expects).
"""
import ipaddress
import os
import subprocess


def _run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv[:3]), r.stderr[-2000:]))


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


class CA:
    """A CA: <cert> and <key> paths."""

    def __init__(self, cert, key):
        self.cert = cert
        self.key = key


def make_ca(d, name="gatehouse test CA", days=30):
    """Create a CA in directory <d>. Returns a CA."""
    os.makedirs(d, exist_ok=True)
    base = os.path.join(d, "ca")
    key, cert = base + ".key", base + ".crt"
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-nodes", "-keyout", key, "-out", cert, "-days", str(days), "-subj", "/CN=" + name,
          "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return CA(cert, key)


def make_cert(d, names, ca=None, days=30, filename=None):
    """Create a certificate for DNS <names> (the first is the CN) in <d>,
    signed by <ca> (a CA) or self-signed. Writes <filename or first name>.pem
    (cert, chain, key) and .crt/.key next to it. Returns the PEM path."""
    os.makedirs(d, exist_ok=True)
    stem = filename or names[0].replace("*", "wildcard")
    base = os.path.join(d, stem)
    key, crt, pem = base + ".key", base + ".crt", base + ".pem"
    san = "subjectAltName=" + ",".join(("IP:" if _is_ip(n) else "DNS:") + n for n in names)
    subj = "/CN=" + names[0]
    if ca is None:
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", key, "-out", crt, "-days", str(days), "-subj", subj,
              "-addext", san, "-addext", "basicConstraints=CA:FALSE"])
        chain = []
    else:
        csr, ext = base + ".csr", base + ".ext"
        _run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-nodes", "-keyout", key, "-out", csr, "-subj", subj])
        with open(ext, "w") as f:
            f.write(san + "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        _run(["openssl", "x509", "-req", "-in", csr, "-out", crt, "-extfile", ext,
              "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-days", str(days)])
        chain = [ca.cert]
        os.unlink(csr)
        os.unlink(ext)
    with open(pem, "w") as out:
        for p in [crt] + chain + [key]:
            with open(p) as f:
                out.write(f.read())
    os.chmod(pem, 0o600)
    return pem
