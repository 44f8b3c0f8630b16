"""A real MIT Kerberos KDC (Debian's krb5-kdc) on a free loopback port.

One krb5kdc process serves two throwaway realms, GH.TEST (the proxy's realm;
`localhost` maps to it) and OTHER.TEST (a realm the proxy does not map), on
one free 127.0.0.1 port, UDP and TCP. Everything lives in the directory
given: krb5.conf, kdc.conf, one database per realm (kdb5_util create -s),
the replay caches (<dir>/rcache), the credential caches and keytabs. The
system's /etc/krb5.conf and /var/lib/krb5kdc are never read or written:
every command runs with KRB5_CONFIG and KRB5_KDC_PROFILE pointing into the
directory.

Kdc(d, clockskew=300, principals=True, cross_realm=True)
    Create both realms, start krb5kdc, wait until it answers. With
    <principals> the default test principals exist (passwords in PASSWORDS):
      alice@GH.TEST, bob@GH.TEST, nomail@GH.TEST (no mail account),
      carol@OTHER.TEST, and the services imap/localhost, pop/localhost
      (random keys) in BOTH realms.
    <clockskew>: [libdefaults] clockskew in seconds, for the KDC, the
    clients and the servers that use this krb5.conf (MIT's default is 300;
    a test of expired tickets wants ~2).
    <cross_realm>: krbtgt/GH.TEST@OTHER.TEST exists, so carol@OTHER.TEST
    gets a ticket for imap/localhost@GH.TEST (cross-realm) with the
    ordinary client env; the server then sees the client carol@OTHER.TEST.
  Attributes: dir, port, krb5_conf, kdc_conf, rcache_dir, proc (procs.Proc),
    realm ("GH.TEST"), other_realm ("OTHER.TEST"), clockskew, log (kdc log).
  add_principal(name, password=None, realm=None) -> "name@REALM"
    Add a principal with <password>, or a random key when None. <name> may
    carry its realm ("x@OTHER.TEST"); else <realm> or GH.TEST.
  delete_principal(name, realm=None)
  rotate_key(name, realm=None)  a new random key (kvno+1): keytabs holding
    the old key are stale.
  keytab_entries(path) -> [(kvno, "principal@REALM"), ...] (klist -k).
  kadmin(query, realm=None) -> stdout of `kadmin.local -q <query>`.
  keytab(path=None, principals=SERVICES_BOTH_REALMS, norandkey=True,
         mode=0o644) -> path
    Export the principals' keys to a keytab (`ktadd -k -norandkey`: the
    key stays the same, so several keytabs, e.g. the proxy's and a
    dovecot's, hold the same valid key). norandkey=False gives the
    principal a new random key (kvno+1) first: keytabs exported before,
    and tickets issued before, are then stale (a key rotation). Default
    path <dir>/services.keytab. Each principal: "imap/localhost@GH.TEST"
    (no realm: GH.TEST). <mode> 0644: readable by unprivileged servers
    (dovecot's auth runs as user dovecot); test keytabs only.
  kinit(user, password=None, lifetime=None, ccache=None, renewable=None)
      -> Ccache(name="FILE:...", path, principal, env)
    kinit <user> (default realm GH.TEST; password from PASSWORDS when None)
    into its own FILE ccache (default <dir>/cc/<user>@<REALM>). <lifetime>
    is kinit's -l (e.g. "5s", "10m", or an int of seconds). Raises
    KinitError (with kinit's output) when kinit fails.
  kinit_keytab(principal, keytab, ccache=None) -> Ccache (kinit -k -t)
  empty_ccache(name="empty") -> Ccache with no ticket in it (a client
    without a ticket).
  klist(ccache) -> klist's output (text) for a Ccache or a ccache name.
  client_env(ccache=None, host_realm=None, base=None) -> dict
    The environment for a client process: <base> (os.environ) plus
    KRB5_CONFIG, KRB5CCNAME (the Ccache's name; unset when None: a client
    with no ccache at all gets a fresh empty FILE ccache), KRB5RCACHEDIR.
    <host_realm> "OTHER.TEST" uses a krb5.conf whose [domain_realm] maps
    localhost to OTHER.TEST: the client asks for imap/localhost@OTHER.TEST
    (a server whose keytab lacks that key must refuse it).
  server_env(keytab=None, base=None) -> dict
    The environment for a server that accepts tickets: KRB5_CONFIG,
    KRB5RCACHEDIR (the proxy also needs its keytab path in its config);
    with <keytab> also KRB5_KTNAME=FILE:<keytab> (for servers, like
    dovecot's auth, that take it from the environment).
  krb5_conf_for(host_realm) -> path of a krb5.conf mapping localhost to
    <host_realm> (the default one for GH.TEST).
  principal(name, realm=None) -> "name@REALM".
  stop()         stop krb5kdc by PID.
  cleanup()      stop, then remove the directory.
  alive()

Surprises worth knowing (MIT krb5 1.20):
  * A replay cache is written by every acceptor (server); KRB5RCACHEDIR
    must be set and writable by the server's user, else it goes to
    /var/tmp. rcache_dir here is mode 1777.
  * ktadd without -norandkey gives the principal a new key (kvno+1): a
    ticket obtained before the export, and an earlier keytab, are then
    useless. keytab() uses -norandkey unless told otherwise.
  * Ticket lifetimes down to 1 s are granted (kinit -l 1s); with
    clockskew 2 an acceptor refuses a ticket ~end+2 s ("Ticket expired"),
    and the client cannot make a new token either.
  * The KDC and the libraries both honour [libdefaults] clockskew; an
    acceptor takes a ticket until its end time + clockskew.
"""
import os
import shutil
import socket
import subprocess

from . import ports, procs

KRB5KDC = "/usr/sbin/krb5kdc"
KDB5_UTIL = "/usr/sbin/kdb5_util"
KADMIN_LOCAL = "/usr/sbin/kadmin.local"
KINIT = "/usr/bin/kinit"
KLIST = "/usr/bin/klist"

REALM = "GH.TEST"
OTHER_REALM = "OTHER.TEST"
MASTER_PW = "gh-kdb-master"

# default user principals and their passwords
PASSWORDS = {
    "alice@GH.TEST": "alice-krb-pw",
    "bob@GH.TEST": "bob-krb-pw",
    "nomail@GH.TEST": "nomail-krb-pw",
    "carol@OTHER.TEST": "carol-krb-pw",
}
SERVICES = ("imap/localhost", "pop/localhost")
SERVICES_BOTH_REALMS = tuple("%s@%s" % (s, r) for r in (REALM, OTHER_REALM) for s in SERVICES)

KRB5_CONF = """\
# generated by tools/gh/kdc.py
[libdefaults]
  default_realm = {realm}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  clockskew = {clockskew}
  udp_preference_limit = 1
  ignore_acceptor_hostname = false
  forwardable = false
  default_ccache_name = FILE:{dir}/cc/default
  default_keytab_name = FILE:{dir}/default.keytab
  permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
[realms]
  {realm} = {{
    kdc = 127.0.0.1:{port}
    admin_server = 127.0.0.1:{port}
  }}
  {other} = {{
    kdc = 127.0.0.1:{port}
    admin_server = 127.0.0.1:{port}
  }}
[domain_realm]
  localhost = {host_realm}
  .localhost = {host_realm}
[capaths]
  {other} = {{
    {realm} = .
  }}
"""

KDC_CONF = """\
# generated by tools/gh/kdc.py
[kdcdefaults]
  kdc_listen = 127.0.0.1:{port}
  kdc_tcp_listen = 127.0.0.1:{port}
[realms]
{realms}
[logging]
  kdc = FILE:{dir}/kdc.log
"""

REALM_CONF = """\
  {realm} = {{
    database_name = {dir}/db-{realm}/principal
    key_stash_file = {dir}/db-{realm}/stash
    acl_file = {dir}/kadm5.acl
    max_life = 10h
    max_renewable_life = 7d
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }}
"""


class KinitError(RuntimeError):
    """kinit failed; str() holds its output."""


class Ccache:
    """A credential cache file: name ("FILE:<path>"), path, principal and
    env (client_env for it)."""

    def __init__(self, name, path, principal, env):
        self.name = name
        self.path = path
        self.principal = principal
        self.env = env

    def __repr__(self):
        return "Ccache(%r, %r)" % (self.principal, self.name)


def _udp_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _lifetime(v):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return "%ds" % int(v)
    return str(v)


class Kdc:
    """An MIT krb5kdc for GH.TEST and OTHER.TEST in directory <d>."""

    def __init__(self, d, clockskew=300, principals=True, cross_realm=True):
        self.dir = os.path.abspath(str(d))
        self.realm = REALM
        self.other_realm = OTHER_REALM
        self.clockskew = int(clockskew)
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        for sub, mode in (("cc", 0o755), ("rcache", 0o1777)):
            p = os.path.join(self.dir, sub)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, mode)
        self.rcache_dir = os.path.join(self.dir, "rcache")
        self.log = os.path.join(self.dir, "kdc.log")
        self.proc = None
        for _ in range(50):
            self.port = ports.free_port()
            if _udp_free(self.port):
                break
        else:
            raise RuntimeError("no port free for both TCP and UDP")
        self._confs = {}
        self.krb5_conf = self.krb5_conf_for(REALM)
        self.kdc_conf = os.path.join(self.dir, "kdc.conf")
        with open(self.kdc_conf, "w") as f:
            f.write(KDC_CONF.format(port=self.port, dir=self.dir, realms="".join(
                REALM_CONF.format(realm=r, dir=self.dir) for r in (REALM, OTHER_REALM))))
        with open(os.path.join(self.dir, "kadm5.acl"), "w") as f:
            f.write("*/admin@%s *\n" % REALM)
        self._env = dict(os.environ, KRB5_CONFIG=self.krb5_conf, KRB5_KDC_PROFILE=self.kdc_conf,
                         KRB5RCACHEDIR=self.rcache_dir,
                         KRB5CCNAME="FILE:" + os.path.join(self.dir, "cc", "admin"))
        self._env.pop("KRB5_KTNAME", None)
        self._env.pop("KRB5_CLIENT_KTNAME", None)
        for r in (REALM, OTHER_REALM):
            os.makedirs(os.path.join(self.dir, "db-" + r), exist_ok=True)
            self._run([KDB5_UTIL, "-r", r, "-P", MASTER_PW, "create", "-s"])
        if principals:
            for p, pw in PASSWORDS.items():
                self.add_principal(p, pw)
            for s in SERVICES_BOTH_REALMS:
                self.add_principal(s)
        if cross_realm:
            pw = "gh-cross-realm-pw"
            for r in (REALM, OTHER_REALM):
                self.kadmin("addprinc -pw %s krbtgt/%s@%s" % (pw, REALM, OTHER_REALM), realm=r)
        self.start()

    # -- configuration --------------------------------------------------

    def krb5_conf_for(self, host_realm):
        """Return the path of a krb5.conf whose [domain_realm] maps
        localhost to <host_realm> (written once)."""
        if host_realm not in self._confs:
            name = "krb5.conf" if host_realm == REALM else "krb5-%s.conf" % host_realm
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(KRB5_CONF.format(realm=REALM, other=OTHER_REALM, host_realm=host_realm,
                                         port=self.port, dir=self.dir, clockskew=self.clockskew))
            os.chmod(path, 0o644)
            self._confs[host_realm] = path
        return self._confs[host_realm]

    def principal(self, name, realm=None):
        """Return <name> with its realm: as given, or @<realm>/@GH.TEST."""
        if "@" in name:
            return name
        return "%s@%s" % (name, realm or REALM)

    # -- process --------------------------------------------------------

    def _run(self, argv, input=None, check=True, env=None):
        r = subprocess.run([str(a) for a in argv], input=input, capture_output=True, text=True,
                           env=env or self._env, timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (rc %d):\n%s%s" % (" ".join(argv), r.returncode,
                                                             r.stdout, r.stderr))
        return r

    def start(self):
        """Start krb5kdc (foreground, both realms) and wait until an AS
        request is answered."""
        if self.proc is not None and self.proc.alive():
            return
        self.proc = procs.Proc("krb5kdc", [KRB5KDC, "-n", "-r", REALM, "-r", OTHER_REALM,
                                           "-P", os.path.join(self.dir, "kdc.pid")],
                               os.path.join(self.dir, "krb5kdc.out"), env=self._env)
        ports.wait_listening(self.port, proc=self.proc, timeout=20.0)

    def stop(self):
        """Stop krb5kdc by PID."""
        if self.proc is not None:
            self.proc.stop()

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def cleanup(self):
        """Stop krb5kdc and remove the directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- principals and keytabs -----------------------------------------

    def kadmin(self, query, realm=None):
        """Run `kadmin.local -r <realm> -q <query>`; return its stdout."""
        return self._run([KADMIN_LOCAL, "-r", realm or REALM, "-q", query]).stdout

    def add_principal(self, name, password=None, realm=None):
        """Add principal <name> with <password>, or a random key; return
        its full name."""
        full = self.principal(name, realm)
        r = full.rsplit("@", 1)[1]
        if password is None:
            out = self.kadmin("addprinc -randkey %s" % full, realm=r)
        else:
            out = self.kadmin("addprinc -pw %s %s" % (password, full), realm=r)
        if "created" not in out:
            raise RuntimeError("addprinc %s: %s" % (full, out))
        return full

    def delete_principal(self, name, realm=None):
        """Delete principal <name>."""
        full = self.principal(name, realm)
        self.kadmin("delprinc -force %s" % full, realm=full.rsplit("@", 1)[1])

    def rotate_key(self, name, realm=None):
        """Give principal <name> a new random key (kvno+1)."""
        full = self.principal(name, realm)
        self.kadmin("cpw -randkey %s" % full, realm=full.rsplit("@", 1)[1])

    def keytab_entries(self, path):
        """Return [(kvno, principal)] of keytab <path>, one per key."""
        out = self._run([KLIST, "-k", path], env=self.client_env()).stdout
        res = []
        for line in out.splitlines():
            f = line.split()
            if len(f) == 2 and f[0].isdigit():
                res.append((int(f[0]), f[1]))
        return res

    def keytab(self, path=None, principals=SERVICES_BOTH_REALMS, norandkey=True, mode=0o644):
        """Export <principals> to keytab <path> (default
        <dir>/services.keytab); return the path. The file gets <mode>
        (readable by every user by default: a test-only keytab that
        dovecot's auth process, user dovecot, must read)."""
        path = os.path.abspath(path or os.path.join(self.dir, "services.keytab"))
        for p in principals:
            full = self.principal(p)
            r = full.rsplit("@", 1)[1]
            self.kadmin("ktadd -k %s %s%s" % (path, "-norandkey " if norandkey else "", full),
                        realm=r)
        os.chmod(path, mode)
        return path

    # -- tickets --------------------------------------------------------

    def _ccache(self, principal, ccache):
        path = ccache or os.path.join(self.dir, "cc", principal.replace("/", "_"))
        if path.startswith("FILE:"):
            path = path[5:]
        if os.path.exists(path):
            os.unlink(path)
        return path

    def kinit(self, user, password=None, lifetime=None, ccache=None, renewable=None):
        """kinit <user> with <password> (default from PASSWORDS) into its
        own FILE ccache; return a Ccache. <lifetime>: kinit -l."""
        full = self.principal(user)
        if password is None:
            password = PASSWORDS[full]
        path = self._ccache(full, ccache)
        argv = [KINIT, "-c", "FILE:" + path]
        if lifetime is not None:
            argv += ["-l", _lifetime(lifetime)]
        if renewable is not None:
            argv += ["-r", _lifetime(renewable)]
        argv.append(full)
        r = self._run(argv, input=password + "\n", check=False, env=self.client_env())
        if r.returncode != 0:
            raise KinitError("kinit %s failed (rc %d): %s%s" % (full, r.returncode, r.stdout,
                                                                 r.stderr))
        return Ccache("FILE:" + path, path, full, self.client_env_for("FILE:" + path))

    def kinit_keytab(self, principal, keytab, ccache=None):
        """kinit -k -t <keytab> <principal>; return a Ccache."""
        full = self.principal(principal)
        path = self._ccache(full, ccache)
        r = self._run([KINIT, "-k", "-t", keytab, "-c", "FILE:" + path, full], check=False,
                      env=self.client_env())
        if r.returncode != 0:
            raise KinitError("kinit -k %s failed: %s%s" % (full, r.stdout, r.stderr))
        return Ccache("FILE:" + path, path, full, self.client_env_for("FILE:" + path))

    def empty_ccache(self, name="empty"):
        """Return a Ccache naming a file that holds no ticket."""
        path = self._ccache(name, None)
        return Ccache("FILE:" + path, path, None, self.client_env_for("FILE:" + path))

    def klist(self, ccache):
        """Return klist's output for <ccache> (a Ccache or a name)."""
        name = ccache.name if isinstance(ccache, Ccache) else ccache
        return self._run([KLIST, "-c", name], check=False, env=self.client_env()).stdout

    # -- environments ---------------------------------------------------

    def client_env_for(self, ccname, host_realm=None, base=None):
        env = dict(os.environ if base is None else base)
        for k in ("KRB5_KTNAME", "KRB5_CLIENT_KTNAME", "KRB5_KDC_PROFILE", "KRB5_TRACE"):
            env.pop(k, None)
        env["KRB5_CONFIG"] = self.krb5_conf_for(host_realm or REALM)
        env["KRB5RCACHEDIR"] = self.rcache_dir
        env["KRB5CCNAME"] = ccname or "FILE:" + os.path.join(self.dir, "cc", "none")
        return env

    def client_env(self, ccache=None, host_realm=None, base=None):
        """Return the env for a client process using <ccache> (a Ccache or
        a ccache name); see the module docstring."""
        name = ccache.name if isinstance(ccache, Ccache) else ccache
        return self.client_env_for(name, host_realm, base)

    def server_env(self, keytab=None, base=None):
        """Return the env for a server process accepting tickets."""
        env = dict(os.environ if base is None else base)
        for k in ("KRB5CCNAME", "KRB5_KTNAME", "KRB5_CLIENT_KTNAME", "KRB5_KDC_PROFILE"):
            env.pop(k, None)
        env["KRB5_CONFIG"] = self.krb5_conf
        env["KRB5RCACHEDIR"] = self.rcache_dir
        if keytab:
            env["KRB5_KTNAME"] = "FILE:" + os.path.abspath(keytab)
        return env
