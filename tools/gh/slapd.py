"""A real slapd (Debian's OpenLDAP) on a free loopback port.

SlapdTemplate seeds one mdb database with slapadd (once per session: fast,
no server needed); each Slapd copies that database into its own directory
and runs slapd in the foreground (`-d stats`, log in <dir>/slapd.log).
Read-only bind: BIND_DN with the password in <dir>/bind.pw; the rootdn
(ROOT_DN/ROOT_PW) may write. Anonymous users may read nothing.
"""
import base64
import os
import shutil
import subprocess
import sys
import time

from . import ports, procs

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tools", "demo"))
import gen_ldif  # noqa: E402

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMA_DIR = "/etc/ldap/schema"
SUFFIX = gen_ldif.SUFFIX
ROOT_DN = gen_ldif.ROOT_DN
ROOT_PW = gen_ldif.ROOT_PW
BIND_DN = gen_ldif.BIND_DN
BIND_PW = gen_ldif.BIND_PW
LDAP_ENV = dict(os.environ, LDAPNOINIT="1")

def copy_sparse(src, dst):
    """Copy <src> to <dst> keeping its holes: the mdb file's size is the
    database's maxsize (256 MB) of which a few MB are data, and a plain
    copy writes all of it (a whole test run wrote 10 GB and filled a disk)."""
    subprocess.run(["cp", "--sparse=always", src, dst], check=True)


CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {schema}/misc.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
{modules}sizelimit 50
database mdb
maxsize 268435456
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {dir}/db
index objectClass eq
index mail,mailLocalAddress eq
index entryUUID eq
index associatedDomain eq
access to attrs=userPassword
    by anonymous auth
    by * none
access to *
    by dn.exact="{binddn}" read
    by * none
{extra}"""


def write_conf(d, modules="", extra=""):
    """Write <d>/slapd.conf for a database in <d>/db, loading the overlay
    modules <modules> (module names) and ending the database section with
    the directives <extra>. Returns its path."""
    os.makedirs(os.path.join(d, "db"), exist_ok=True)
    path = os.path.join(d, "slapd.conf")
    with open(path, "w") as f:
        f.write(CONF.format(schema=SCHEMA_DIR, dir=d, suffix=SUFFIX, rootdn=ROOT_DN,
                            rootpw=ROOT_PW, binddn=BIND_DN,
                            modules="".join("moduleload %s\n" % m for m in modules),
                            extra=extra))
    return path


# A replication provider: syncprov keeps the change state consumers ask for;
# the rootdn (the consumers' replication identity) reads without a size limit.
PROVIDER_EXTRA = """\
index entryCSN eq
limits dn.exact="{rootdn}" size=unlimited time=unlimited
overlay syncprov
syncprov-checkpoint 10 1
syncprov-sessionlog 1000
""".format(rootdn=ROOT_DN)

# A consumer (read-only replica) of <provider>: refreshAndPersist, so that
# changes arrive as they are made; retried every second while the provider
# is away.
CONSUMER_EXTRA = """\
syncrepl rid=001
    provider={provider}
    bindmethod=simple binddn="{rootdn}" credentials={rootpw}
    searchbase="{suffix}"
    type=refreshAndPersist
    retry="1 +"
    timeout=3 network-timeout=2
"""


class SlapdTemplate:
    """A database seeded from gen_ldif (<nusers> generic users) in <d>."""

    def __init__(self, d, nusers=gen_ldif.DEFAULT_USERS):
        self.dir = str(d)
        self.nusers = nusers
        os.makedirs(self.dir, exist_ok=True)
        self.ldif = os.path.join(self.dir, "seed.ldif")
        gen_ldif.write_all(self.ldif, None, nusers)
        conf = write_conf(self.dir)
        t = time.monotonic()
        r = subprocess.run([SLAPADD, "-q", "-f", conf, "-l", self.ldif], capture_output=True,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError("slapadd failed: %s" % r.stderr[-3000:])
        self.seed_seconds = time.monotonic() - t


class Slapd:
    """A running slapd with a copy of <template>'s database in <d>. With
    <role> "provider" it serves replicas (syncprov); with a Slapd as
    <provider> it is a read-only replica of it (syncrepl consumer), started
    empty and filled by replication (wait_replicated())."""

    def __init__(self, d, template, port=None, role=None, provider=None):
        self.dir = str(d)
        self.template = template
        self.provider = provider
        os.makedirs(os.path.join(self.dir, "db"), exist_ok=True)
        modules, extra = (), ""
        if provider is not None:
            modules = ("syncprov",) if role == "provider" else ()
            extra = CONSUMER_EXTRA.format(provider=provider.uri, rootdn=ROOT_DN,
                                          rootpw=ROOT_PW, suffix=SUFFIX)
        # a replica starts from the same seed (same entryUUIDs and CSNs), so
        # its first refresh only compares
        copy_sparse(os.path.join(template.dir, "db", "data.mdb"),
                    os.path.join(self.dir, "db", "data.mdb"))
        if role == "provider":
            modules, extra = ("syncprov",), extra + PROVIDER_EXTRA
        self.conf = write_conf(self.dir, modules, extra)
        self.port = port or ports.free_port()
        self.uri = "ldap://127.0.0.1:%d" % self.port
        self.log = os.path.join(self.dir, "slapd.log")
        self.bind_pw_file = os.path.join(self.dir, "bind.pw")
        with open(self.bind_pw_file, "w") as f:
            f.write(BIND_PW + "\n")
        os.chmod(self.bind_pw_file, 0o600)
        self.proc = None
        self.start()

    def start(self):
        """Start slapd (again) on the same port and database."""
        if self.proc is not None and self.proc.alive():
            return
        self.proc = procs.Proc("slapd", [SLAPD, "-f", self.conf, "-h", self.uri + "/",
                                         "-d", "stats"], self.log)
        ports.wait_listening(self.port, proc=self.proc)

    def wait_replicated(self, mail, timeout=20.0):
        """Wait until this replica holds the entry of <mail>; returns the
        search result."""
        from . import wait
        return wait.until(lambda: self.search("(mail=%s)" % mail,
                                              ["mail", "mailHost", "entryUUID"]),
                          "%s replicated to %s" % (mail, self.uri), timeout, 0.1)

    def stop(self):
        """Stop slapd by PID (SIGTERM, then SIGKILL)."""
        if self.proc is not None:
            self.proc.stop()

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def search(self, flt, attrs=(), base=SUFFIX, root=False):
        """Run ldapsearch (bound as BIND_DN, or the rootdn when <root>) and
        return a list of (dn, {attr: [values]}) with UTF-8 decoded values."""
        dn, pw = (ROOT_DN, ROOT_PW) if root else (BIND_DN, BIND_PW)
        r = subprocess.run(["ldapsearch", "-LLL", "-x", "-o", "ldif-wrap=no", "-H", self.uri,
                            "-D", dn, "-w", pw, "-b", base, flt] + list(attrs),
                           capture_output=True, env=LDAP_ENV, timeout=20)
        if r.returncode not in (0, 4):   # 4 = size limit exceeded
            raise RuntimeError("ldapsearch %s: rc %d %s" % (flt, r.returncode,
                                                           r.stderr.decode("utf-8", "replace")))
        return parse_ldif(r.stdout.decode("utf-8"))

    def entry_uuid(self, mail):
        """Return the entryUUID of the account whose mail is <mail>."""
        res = self.search("(mail=%s)" % mail, ["entryUUID"])
        if len(res) != 1:
            raise LookupError("%d entries for %s" % (len(res), mail))
        return res[0][1]["entryUUID"][0]

    def modify(self, ldif_text, add=False):
        """Apply <ldif_text> with ldapmodify (ldapadd when <add>) as rootdn."""
        tool = "ldapadd" if add else "ldapmodify"
        r = subprocess.run([tool, "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PW],
                           input=ldif_text.encode("utf-8"), capture_output=True, env=LDAP_ENV,
                           timeout=20)
        if r.returncode != 0:
            raise RuntimeError("%s: rc %d %s" % (tool, r.returncode,
                                                 r.stderr.decode("utf-8", "replace")))

    def add_user(self, mail, host, aliases=(), uid=None, password="added-pw"):
        """Add an account <mail> on <host> with <aliases>. Returns its DN."""
        local, domain = mail.split("@", 1)
        u = {"uid": uid or "added-" + local.lower().replace("+", "-"), "mail": mail,
             "domain": domain.lower(), "host": host, "aliases": list(aliases),
             "password": password, "cn": "Added " + local}
        u["dn"] = "uid=%s,ou=%s,%s" % (u["uid"], u["domain"], SUFFIX)
        self.modify(gen_ldif.entry_ldif(u), add=True)
        return u["dn"]

    def set_host(self, dn, host):
        """Change the mailHost of entry <dn>."""
        self.modify("dn: %s\nchangetype: modify\nreplace: mailHost\nmailHost: %s\n" % (dn, host))

    def delete(self, dn):
        """Delete entry <dn>."""
        r = subprocess.run(["ldapdelete", "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PW,
                            dn], capture_output=True, env=LDAP_ENV, timeout=20)
        if r.returncode != 0:
            raise RuntimeError("ldapdelete %s: %s" % (dn, r.stderr.decode()))


def parse_ldif(text):
    """Parse ldapsearch -LLL -o ldif-wrap=no output into [(dn, {attr: [v]})]."""
    out = []
    for block in text.strip().split("\n\n"):
        dn, attrs = None, {}
        for line in block.splitlines():
            if not line or line.startswith("#"):
                continue
            if ":: " in line:
                k, v = line.split(":: ", 1)
                v = base64.b64decode(v).decode("utf-8", "replace")
            elif ": " in line:
                k, v = line.split(": ", 1)
            else:
                k, v = line.rstrip(":"), ""
            if k == "dn":
                dn = v
            else:
                attrs.setdefault(k, []).append(v)
        if dn is not None:
            out.append((dn, attrs))
    return out
