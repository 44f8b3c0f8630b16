#!/usr/bin/env python3
"""`make run`: start the whole gatehouse stack on loopback, in the foreground.

Starts, in a run directory (a new temporary one by default): memcached,
slapd seeded with the demo directory (example.com and example.org, over 1,000
users on three mailbox servers, aliases), three mailbox servers (a dovecot
and a small HTTP service that names itself, each), two gatehouse-spoa
agents, gatehouse-mailproxy and HAProxy with certs/ (certificates signed by
a demo CA are created there on first run). Prints commands to try, shows
every part's log with a prefix, and on Ctrl-C (SIGINT) or SIGTERM stops
everything it started, by PID.

The demo's users alice, bob and carol find a few messages in their INBOX.
A Kerberos KDC (MIT, realm GH.TEST) runs too: alice holds a ticket and logs
in over IMAP with GSSAPI, no password (the mail proxy logs in to her
Dovecot as its master user).
The printed commands use the demo's configuration through GATEHOUSE_CONF
(printed as an `export` line); the demo itself never reads GATEHOUSE_CONF or
./gatehouse.conf. With --conf FILE, only gatehouse's own parts (one agent on
FILE's [spoa] listen, the mail proxy, HAProxy) are started on FILE, which
is checked first: its LDAP, memcached and mailbox servers must be running.

The process plumbing is shared with the integration tests (tools/gh).
"""
import argparse
import configparser
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))

from gh import certs as gh_certs  # noqa: E402
from gh import config as gh_config  # noqa: E402
from gh import dovecot as gh_dovecot  # noqa: E402
from gh import memcached as gh_memcached  # noqa: E402
from gh import ports, procs  # noqa: E402
from gh import slapd as gh_slapd  # noqa: E402
from gh import wait as gh_wait  # noqa: E402
from gh.slapd import gen_ldif  # noqa: E402
from gh import haproxy as gh_haproxy  # noqa: E402
from gh import kdc as gh_kdc  # noqa: E402
from gh import mailbox as gh_mailbox  # noqa: E402

CERTS = os.path.join(REPO, "certs")
SITE_NAMES = {"00-mail.example.com.pem": ["mail.example.com", "localhost"],
              "mail.example.org.pem": ["mail.example.org"]}
MBOX = ("mbox1", "mbox2", "mbox3")
SEED_USERS = ("alice@example.com", "bob@example.com", "carol@example.org")
SEED_MESSAGES = (
    ("Welcome to the gatehouse demo",
     "This message is stored on {server}, the mailbox server of {user}.\n"
     "gatehouse found it there: it looked {user} up in LDAP (memcached caches\n"
     "the answer) and relayed your login to {server}.\n"),
    ("Try POP3 too",
     "The demo's mail proxy also speaks POP3 (STLS) and POP3S.\n"),
    ("Login throttling",
     "Too many logins from one address or for one account are refused for a\n"
     "while; `gatehouse throttle clear ADDRESS` or `... clear USER` lifts it.\n"),
)
# the demo's throttle limits: visible by hand, and printed
# the master user the mail proxy logs in as for Kerberos users
MASTER_USER = "gatehouse-master"
IMTEST = "/usr/lib/cyrus/bin/imtest"
DEMO_THROTTLE = {"ip_max": 200, "ip_ttl": 60, "user_max": 50, "user_ttl": 60,
                 "ip_fail_max": 20, "user_fail_max": 10}


def say(msg=""):
    print(msg, flush=True)


def ensure_site_certs(certs):
    """Create the demo CA and the site certificates in <certs> if missing.
    Returns the CA certificate path (clients trust it)."""
    demo_ca = os.path.join(certs, ".demo-ca")
    os.makedirs(certs, exist_ok=True)
    ca_crt, ca_key = os.path.join(demo_ca, "ca.crt"), os.path.join(demo_ca, "ca.key")
    if os.path.exists(ca_crt) and os.path.exists(ca_key):
        ca = gh_certs.CA(ca_crt, ca_key)
    else:
        ca = gh_certs.make_ca(demo_ca, name="gatehouse demo CA", days=3650)
        for f in os.listdir(certs):   # certificates of an older CA are useless
            if f in SITE_NAMES:
                os.unlink(os.path.join(certs, f))
    for fname, names in SITE_NAMES.items():
        dst = os.path.join(certs, fname)
        if os.path.exists(dst):
            continue
        # openssl writes .crt/.key beside the PEM: build elsewhere, copy the PEM
        scratch = tempfile.mkdtemp(prefix="gh-cert-")
        try:
            pem = gh_certs.make_cert(scratch, names, ca, days=825)
            shutil.copyfile(pem, dst)
            os.chmod(dst, 0o600)
            say("certs: created %s for %s" % (dst, ", ".join(names)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return ca.cert


# Every LogTail writes through this lock, whole lines in one write: threads
# printing to one stream must never glue two services' lines together.
_OUT_LOCK = threading.Lock()


def seed_mail(dovecots):
    """Deliver SEED_MESSAGES to each seeded user's INBOX on the Dovecot of
    <dovecots> ({server name: gh.dovecot.Dovecot}) that holds it."""
    for user in SEED_USERS:
        server = gen_ldif.NAMED[user][1]
        for i, (subject, body) in enumerate(SEED_MESSAGES, 1):
            msg = ("From: gatehouse demo <demo@example.com>\r\nTo: %s\r\n"
                   "Subject: %s\r\nDate: Thu, 26 Nov 2026 12:00:%02d +0000\r\n"
                   "Message-ID: <demo-%d.%s>\r\n\r\n%s"
                   % (user, subject, i, i, user, body.format(user=user, server=server)
                      .replace("\n", "\r\n")))
            dovecots[server].deliver(user, msg.encode(), name="demo-%d" % i)


def throttle_summary(path):
    """Describe the [throttle] limits of configuration <path> (0 = unlimited),
    with the defaults of README for keys it does not set."""
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read(path)

    def get(key, default):
        return cp.get("throttle", key, fallback=str(default)).strip()

    def dur(v):
        v = int(v) if v.isdigit() else v
        if isinstance(v, int):
            return "%d min" % (v // 60) if v % 60 == 0 and v >= 60 else "%d s" % v
        return v

    parts = []
    for what, mx, ttl, dttl in (("login attempts per address", "ip_max", "ip_ttl", 3600),
                                ("per account", "user_max", "user_ttl", 3600),
                                ("failed logins per address", "ip_fail_max", "ip_fail_ttl", 900),
                                ("per account", "user_fail_max", "user_fail_ttl", 900)):
        n = get(mx, 0)
        parts.append("%s %s" % (n if n != "0" else "unlimited", what)
                     + ("" if n == "0" else " in %s" % dur(get(ttl, dttl))))
    return ", ".join(parts)


class LogTail(threading.Thread):
    """Print new lines of <path> prefixed with [name] to <out> (stdout)
    until stopped."""

    def __init__(self, name, path, stop, out=None):
        super().__init__(daemon=True)
        self.name_, self.path, self.stop_ev = name, path, stop
        self.out = out

    def run(self):
        pos = 0
        width = 10
        while not self.stop_ev.is_set():
            try:
                with open(self.path, "rb") as f:
                    f.seek(pos)
                    data = f.read()
                    if data:
                        cut = data.rfind(b"\n") + 1
                        text = "".join("[%-*s] %s\n" % (width, self.name_, line) for line in
                                       data[:cut].decode("utf-8", "replace").splitlines())
                        out = self.out or sys.stdout
                        with _OUT_LOCK:
                            out.write(text)
                            out.flush()
                        pos += cut
            except OSError:
                pass
            self.stop_ev.wait(0.3)


def binary(build, name):
    path = os.path.join(build, name)
    if not os.access(path, os.X_OK):
        sys.exit("run: %s is not built (run make)" % path)
    return path


def start_backing(d, nusers):
    """Start slapd, memcached, a KDC, three dovecots (with the master user
    of Kerberos logins) and three HTTP mailboxes. Returns (slapd, memcached,
    dovecots, mailboxes, ca, logs, kerberos), kerberos = (Kdc, master
    password file)."""
    ca = gh_certs.make_ca(os.path.join(d, "mbox-certs"), name="gatehouse demo mailbox CA")
    say("run: seeding the directory (%d generic users + named ones)..." % nusers)
    tmpl = gh_slapd.SlapdTemplate(os.path.join(d, "ldap-template"), nusers=nusers)
    slapd = gh_slapd.Slapd(os.path.join(d, "slapd"), tmpl)
    mc = gh_memcached.Memcached(os.path.join(d, "memcached"))
    kd = os.path.join(d, "kdc")
    os.makedirs(kd)
    os.chmod(kd, 0o755)
    kdc = gh_kdc.Kdc(kd)
    master_pw = os.path.join(d, "master.pw")
    secret = os.urandom(18).hex()
    with open(master_pw, "w") as f:
        f.write(secret + "\n")
    os.chmod(master_pw, 0o600)
    dovecots = {}
    for name in MBOX:
        pem = gh_certs.make_cert(os.path.join(d, "mbox-certs"), [name, "localhost", "127.0.0.1"],
                                 ca)
        # Dovecot's own default failure delay, matched by the proxy's
        # failure_delay default: a wrong password and an unknown user look alike
        dovecots[name] = gh_dovecot.Dovecot(os.path.join(d, "dovecot-" + name), name,
                                            cert=pem, nusers=nusers, failure_delay="2 secs",
                                            master_users={MASTER_USER: secret})
    seed_mail(dovecots)
    mailboxes = {n: gh_mailbox.Mailbox(n) for n in MBOX}
    logs = [("slapd", slapd.log), ("memcached", mc.proc.log), ("kdc", kdc.log)]
    logs += [("dovecot-" + n[-1], dv.log) for n, dv in dovecots.items()]
    return slapd, mc, dovecots, mailboxes, ca, logs, (kdc, master_pw)


def demo_conf(d, slapd, mc, dovecots, mailboxes, upstream_ca, certs, kerberos=None):
    """Write the demo's gatehouse.conf (agents get a copy each with their
    own listen and metrics ports); with <kerberos> (Kdc, master password
    file) the mail proxy takes Kerberos logins of realm GH.TEST as users of
    example.com. Returns (conf path, agent confs)."""
    servers = gh_config.dovecot_servers(dovecots)
    for n, m in mailboxes.items():
        servers[n].update({"http": m.port, "https": m.port, "tls_name": "localhost"})
    mp = {
        "imap": "127.0.0.1:%d" % ports.free_port(), "imaps": "127.0.0.1:%d" % ports.free_port(),
        "pop3": "127.0.0.1:%d" % ports.free_port(), "pop3s": "127.0.0.1:%d" % ports.free_port(),
        "metrics": "127.0.0.1:%d" % ports.free_port(), "certs": certs,
        "upstream_ca": upstream_ca, "audit_log": os.path.join(d, "audit.log"),
    }
    if kerberos is not None:
        kdc, master_pw = kerberos
        mp.update({"gssapi_keytab": kdc.keytab(os.path.join(d, "kdc", "mail.keytab")),
                   "gssapi_realms": "GH.TEST=example.com", "master_user": MASTER_USER,
                   "master_password_file": master_pw,
                   # the demo's mailbox servers are on loopback
                   "master_cleartext_loopback": True})
    base = gh_config.sections(
        ldap_uris=[slapd.uri], bind_pw_file=slapd.bind_pw_file,
        memcached=["127.0.0.1:%d" % mc.port], servers=servers,
        overrides={"log": {"level": "info"}, "memcached": {"local_size": 65536},
                   "throttle": DEMO_THROTTLE,
                   "mailproxy": mp,
                   # purge and status reach HAProxy's route table
                   "spoa": {"haproxy_admin": os.path.join(d, "haproxy", "admin.sock")}})
    # the node's one configuration names both agents' metrics ([cluster]),
    # so that `gatehouse status` on it shows every part; each agent runs on
    # a copy with its own listen and metrics ports
    agent_spoa = [{"listen": "127.0.0.1:%d" % ports.free_port(),
                   "metrics": "127.0.0.1:%d" % ports.free_port(), "deadline": "400ms"}
                  for _ in (1, 2)]
    base = gh_config.merge(base, {"cluster": {
        "spoa_metrics": [a["metrics"] for a in agent_spoa]}})
    conf = gh_config.write(os.path.join(d, "gatehouse.conf"), base)
    agents = []
    for i, spoa in enumerate(agent_spoa, 1):
        a = gh_config.merge(base, {"spoa": spoa})
        agents.append((gh_config.write(os.path.join(d, "agent%d.conf" % i), a), a["spoa"]))
    return conf, agents


def print_tries(hp, mp_ports, ca, conf, cli, certs, host="127.0.0.1", node=None,
                existing=False, kerberos=None):
    """Print the commands to try; each works as printed (after the export
    line of a single node). <host> is the address of the node's listeners;
    <node> names the node of a cluster (the banner is then printed once by
    the caller, and the operator's commands take -c: a cluster has a
    configuration per node)."""
    https = hp.https_port
    alice, bob = "alice@example.com", "bob@example.com"
    pw_a, pw_b = gen_ldif.password_for(alice), gen_ldif.password_for(bob)
    res_com = "--resolve mail.example.com:%d:%s" % (https, host)
    res_org = "--resolve mail.example.org:%d:%s" % (https, host)
    imap, imaps, pop3 = mp_ports["imap"], mp_ports["imaps"], mp_ports["pop3"]
    cafile = "'%s'" % ca
    # the one-node demo's certificate names localhost; a node's names its address
    imaps_host = "localhost" if host == "127.0.0.1" else host
    gh = cli if node is None else "%s -c %s" % (cli, conf)
    tries = []
    if node is None:
        tries.append(("First, in your shell: the gatehouse command reads the demo's "
                      "configuration from GATEHOUSE_CONF",
                      "export GATEHOUSE_CONF=%s" % conf))
    tries += [
        ("HTTPS, alice's mailbox is on mbox1",
         "curl -s --cacert %s %s https://mail.example.com:%d/home/alice@example.com/inbox"
         % (cafile, res_com, https)),
        ("HTTPS with the other domain's certificate, bob's mailbox is on mbox2",
         "curl -s --cacert %s %s -u %s:%s https://mail.example.org:%d/Microsoft-Server-ActiveSync"
         % (cafile, res_org, bob, pw_b, https)),
        ("IMAP with STARTTLS (openssl)",
         "printf 'a1 CAPABILITY\\r\\na2 LOGOUT\\r\\n' | openssl s_client -quiet -ign_eof "
         "-starttls imap -connect %s:%d -servername mail.example.com -CAfile %s"
         % (host, imap, cafile)),
        # curl picks GSSAPI when it is offered and has no fallback: a
        # password login names its mechanism
        ("IMAP with curl (STARTTLS required), reads alice's first message",
         "curl -s --ssl-reqd --cacert %s --resolve mail.example.com:%d:%s "
         "--login-options AUTH=PLAIN -u %s:%s 'imap://mail.example.com:%d/INBOX;MAILINDEX=1'"
         % (cafile, imap, host, alice, pw_a, imap)),
        ("POP3 with curl (STLS required), lists bob's messages and reads the first",
         "curl -s --ssl-reqd --cacert %s --resolve mail.example.com:%d:%s "
         "--login-options AUTH=PLAIN -u %s:%s pop3://mail.example.com:%d/ && curl -s "
         "--ssl-reqd --cacert %s --resolve mail.example.com:%d:%s --login-options AUTH=PLAIN "
         "-u %s:%s pop3://mail.example.com:%d/1"
         % (cafile, pop3, host, bob, pw_b, pop3, cafile, pop3, host, bob, pw_b, pop3)),
        ("IMAPS with Python's imaplib: bob's INBOX and its subjects",
         "python3 -c \"import imaplib,ssl; c=ssl.create_default_context(cafile=%s); "
         "m=imaplib.IMAP4_SSL('%s',%d,ssl_context=c); "
         "print(m.login('%s','%s')); print(m.select('INBOX')); "
         "print(m.fetch('1:*','(BODY[HEADER.FIELDS (SUBJECT)])')); m.logout()\""
         % (repr(ca), imaps_host, imaps, bob, pw_b)),
    ]
    if kerberos is not None:
        kenv = kerberos.env
        tries.append(
            ("Kerberos: alice has a ticket (kinit alice@GH.TEST) and logs in with "
             "GSSAPI, no password (Cyrus imtest, STARTTLS)",
             "printf 'a1 SELECT INBOX\\r\\n' | KRB5_CONFIG=%s KRB5CCNAME=%s %s -m GSSAPI "
             "-t '' -p %d localhost" % (kenv["KRB5_CONFIG"], kenv["KRB5CCNAME"], IMTEST,
                                         imap)))
    tries += [
        ("Where does a user live (the operator's command)",
         "%s route carol@example.org --proto imap" % gh),
        ("Health of every part (agents, mail proxy, HAProxy, LDAP, memcached, "
         "mailbox servers) and HAProxy's route table",
         "%s status" % gh),
        ("Login counters of an address and of an account",
         "%s throttle show %s && %s throttle show %s" % (gh, host, gh, alice)),
        ("Throttled ('Login rejected')? Clear the counters of the address and the account",
         "%s throttle clear %s && %s throttle clear %s" % (gh, host, gh, alice)),
        ("After moving a mailbox: purge memcached and HAProxy's routes to the old server",
         "%s purge alice@example.com" % gh),
    ]
    if node is None:
        say()
        say("=" * 78)
        say("gatehouse is running. Try (from %s):" % REPO)
    else:
        say()
        say("-" * 78)
        say("%s (%s). Try:" % (node, host))
    for title, cmd in tries:
        say()
        say("  # " + title)
        say("  $ " + cmd)
    say()
    say("Ports on %s: HTTP %d, HTTPS %d, IMAP %d, IMAPS %d, POP3 %d, POP3S %d"
        % (host, hp.http_port, https, imap, imaps, pop3, mp_ports["pop3s"]))
    if node is not None:
        return
    say("Users: alice@example.com (mbox1), bob@example.com (mbox2), carol@example.org "
        "(mbox3)%s; password of any user: python3 tools/demo/gen_ldif.py --password USER"
        % ("" if existing else ", each with %d messages" % len(SEED_MESSAGES)))
    say("Login throttle: %s; a throttled login reads 'Login rejected': "
        "see 'throttle show' and 'throttle clear' above." % throttle_summary(conf))
    say("Certificates: drop a PEM (chain + key) into %s; HAProxy and the mail proxy "
        "serve it within seconds." % certs)
    if existing:
        say("Configuration: %s (given with --conf: one agent, the mail proxy and HAProxy "
            "run on it)   Ctrl-C stops everything." % conf)
    else:
        say("Configuration: %s (the whole node; the agents run on copies with their own "
            "ports, agent1.conf and agent2.conf)   Ctrl-C stops everything." % conf)
    say("=" * 78)
    say()


def check_existing_conf(conf, build):
    """Check configuration <conf> given with --conf before anything starts:
    `gatehouse check` must accept it and the agent needs a [spoa] listen.
    Exits with the reason otherwise. Returns (conf, parsed, listen list)."""
    if not os.path.isfile(conf):
        sys.exit("run: --conf %s: no such file" % conf)
    r = subprocess.run([binary(build, "gatehouse"), "-c", conf, "check"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        sys.exit("run: --conf %s is not valid, nothing started:\n%s"
                 % (conf, (r.stdout + r.stderr).strip()))
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read(conf)
    listen = cp.get("spoa", "listen", fallback="").split()
    if not listen:
        sys.exit("run: --conf %s has no [spoa] listen, which the agent the demo starts on "
                 "it needs; nothing started (without --conf the demo starts its own "
                 "stack)" % conf)
    say("run: --conf %s: starting only gatehouse's own parts on it: gatehouse-spoa on "
        "%s, gatehouse-mailproxy and HAProxy; the LDAP, memcached and mailbox servers "
        "it names must already run" % (conf, listen[0]))
    return conf, cp, listen


def note_ignored_confs():
    """Say that the demo does not use ./gatehouse.conf or $GATEHOUSE_CONF
    (the gatehouse command would): it starts its own stack."""
    here = os.path.abspath("gatehouse.conf")
    if os.path.exists(here):
        say("run: %s is not used: the demo starts its own stack and configuration "
            "(--conf %s starts only gatehouse's parts on it)" % (here, here))
    env = os.environ.get("GATEHOUSE_CONF")
    if env:
        say("run: GATEHOUSE_CONF=%s is not used by the demo (it is printed anew below)" % env)


def node_site_certs(d, ca, addrs):
    """Write a certs/ directory for the nodes of a cluster in <d>: the demo
    names plus every node's address, signed by the demo CA <ca>."""
    scratch = os.path.join(d, "site-certs-build")
    out = os.path.join(d, "site-certs")
    os.makedirs(out, exist_ok=True)
    for fname, names in SITE_NAMES.items():
        pem = gh_certs.make_cert(scratch, names + list(addrs), ca, days=30)
        shutil.copyfile(pem, os.path.join(out, fname))
        os.chmod(os.path.join(out, fname), 0o600)
    return out


def run_cluster(args, build, d, stop):
    """Start <args.nodes> nodes as one edge (gh.cluster, the cluster tests'
    own code), print per node the commands to try, wait for <stop>, and
    stop everything by PID."""
    from gh import cluster as gh_cluster
    cluster = None
    try:
        certs = os.path.abspath(args.certs)
        ensure_site_certs(certs)
        demo_ca = gh_certs.CA(os.path.join(certs, ".demo-ca", "ca.crt"),
                              os.path.join(certs, ".demo-ca", "ca.key"))
        addrs = [gh_cluster.node_address(i) for i in range(1, args.nodes + 1)]
        site = node_site_certs(d, demo_ca, addrs)
        say("run: seeding the directory (%d generic users + named ones)..." % args.users)
        tmpl = gh_slapd.SlapdTemplate(os.path.join(d, "ldap-template"), nusers=args.users)
        mbox_ca, pems = gh_cluster.make_mbox_certs(os.path.join(d, "mbox-certs"),
                                                   "gatehouse demo mailbox CA")
        bins = {n: binary(build, n) for n in ("gatehouse-spoa", "gatehouse-mailproxy")}
        say("run: starting %d nodes on %s" % (args.nodes, ", ".join(addrs)))
        cluster = gh_cluster.Cluster(
            d, args.nodes, tmpl, mbox_ca, pems, site, bins, nusers=args.users,
            dovecot_delay="2 secs",
            overrides={"memcached": {"retry": None, "local_ttl": None, "local_size": None},
                       "mailproxy": {"failure_delay": None},
                       "throttle": DEMO_THROTTLE})
        cluster.wait_ready()
        seed_mail(cluster.dovecots)
        cli = binary(build, "gatehouse")
        say()
        say("=" * 78)
        say("gatehouse is running as a cluster of %d nodes sharing two memcached servers "
            "(%s), an LDAP provider (%s) and its replica (%s), and three mailbox servers. "
            "Try, from %s, on any node:"
            % (args.nodes, ", ".join(m.address for m in cluster.memcached),
               cluster.provider.uri, cluster.replica.uri, REPO))
        for node in cluster.nodes:
            print_tries(node.haproxy, node.mail_ports, demo_ca.cert, node.conf, cli, site,
                        host=node.addr, node=node.name)
        say("-" * 78)
        say("Users: alice@example.com (mbox1), bob@example.com (mbox2), carol@example.org "
            "(mbox3); password of any user: python3 tools/demo/gen_ldif.py --password USER")
        say("A purge or a throttle counter on one node is seen by all; 'status' on one node "
            "shows every node. Logs and configurations: %s   Ctrl-C stops everything." % d)
        say("=" * 78)
        say()
        with open(os.path.join(d, "pids"), "w") as f:
            f.write("".join("%d %s\n" % (p.pid, p.name) for p in cluster.started))
        with open(os.path.join(d, "ready"), "w") as f:
            f.write("%d\n" % os.getpid())
        for name, path in cluster.logs():
            LogTail(name, path, stop).start()
        while not stop.is_set():
            for p in cluster.started:
                if not p.alive():
                    say("run: %s (pid %d) exited with %s; stopping" % (p.name, p.pid,
                                                                     p.returncode()))
                    stop.set()
                    break
            stop.wait(0.5)
    finally:
        stop.set()
        if cluster is not None:
            say("run: stopping %d processes" % len(cluster.started))
            cluster.stop()
        procs.stop_all()
        say("run: stopped; logs are in %s" % d)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--dir", help="run directory (default: a new temporary one)")
    ap.add_argument("--users", type=int, default=gen_ldif.DEFAULT_USERS)
    ap.add_argument("--certs", default=CERTS, help="certificate directory (default certs/)")
    ap.add_argument("--conf", help="start only gatehouse's own parts (one agent, the mail "
                    "proxy, HAProxy) on this existing configuration, whose LDAP, memcached "
                    "and mailbox servers must be running (default: start the whole demo "
                    "with its own configuration)")
    ap.add_argument("--nodes", type=int, default=1,
                    help="gatehouse nodes (2 or more: a cluster on 127.0.0.11, "
                         "127.0.0.12, ... sharing memcached, LDAP and the mailbox servers)")
    args = ap.parse_args(argv)
    build = os.path.abspath(args.build)
    existing = None
    if args.conf is not None:
        # checked before anything starts or any directory is made
        existing = check_existing_conf(os.path.abspath(args.conf), build)
    else:
        note_ignored_confs()
    d = os.path.abspath(args.dir) if args.dir else tempfile.mkdtemp(prefix="gatehouse-run-")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)   # dovecot's unprivileged processes traverse it

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    if args.nodes > 1:
        return run_cluster(args, build, d, stop)

    started = []      # Proc objects, stopped in reverse order
    mailboxes = {}
    kdc_env, alice_ticket = None, None
    tails = []
    try:
        certs = os.path.abspath(args.certs)
        ca = ensure_site_certs(certs)
        if existing is not None:
            conf, cp, listen = existing
            agents = [(conf, {"listen": listen[0]})]
            for sec in cp.sections():
                if sec.startswith("server ") and cp.has_option(sec, "http"):
                    mailboxes[sec[7:]] = type("M", (), {"host": cp.get(sec, "address"),
                                                         "port": int(cp.get(sec, "http"))})
            mp_ports = {k: int(cp.get("mailproxy", k, fallback="0:0").rsplit(":", 1)[1])
                        for k in ("imap", "imaps", "pop3", "pop3s")}
        else:
            slapd, mc, dovecots, mailboxes, mbox_ca, logs, kerberos = start_backing(d, args.users)
            started += [slapd.proc, mc.proc, kerberos[0].proc] + \
                [dv.proc for dv in dovecots.values()]
            tails += [(n, p) for n, p in logs if p]
            conf, agents = demo_conf(d, slapd, mc, dovecots, mailboxes, mbox_ca.cert, certs,
                                     kerberos)
            kdc_env = kerberos[0].server_env(base={})
            alice_ticket = kerberos[0].kinit("alice")
            parsed = configparser.ConfigParser(interpolation=None)
            parsed.read(conf)
            mp_ports = {k: int(parsed.get("mailproxy", k).rsplit(":", 1)[1])
                        for k in ("imap", "imaps", "pop3", "pop3s")}

        # two agents: a restart of one never stalls HAProxy (one on --conf)
        agent_addrs = []
        for i, (aconf, spoa) in enumerate(agents, 1):
            p = procs.Proc("spoa%d" % i, [binary(build, "gatehouse-spoa"), "-f", "-c", aconf],
                           os.path.join(d, "spoa%d.log" % i))
            started.append(p)
            tails.append(("spoa%d" % i, p.log))
            addr = spoa["listen"].split()[0]
            if addr.startswith("unix@"):
                gh_wait.until(lambda: os.path.exists(addr[5:]) or not p.alive(),
                              "agent socket %s" % addr[5:], timeout=30)
            else:
                ports.wait_listening(int(addr.rsplit(":", 1)[1]),
                                     addr.rsplit(":", 1)[0].strip("[]"), proc=p)
            agent_addrs.append(addr)
        mp = procs.Proc("mailproxy", [binary(build, "gatehouse-mailproxy"), "-f", "-c", conf],
                        os.path.join(d, "mailproxy.log"),
                        env=dict(os.environ, **kdc_env) if kdc_env else None)
        started.append(mp)
        tails.append(("mailproxy", mp.log))
        for k, port in mp_ports.items():
            if port:
                ports.wait_listening(port, proc=mp)
        hd = os.path.join(d, "haproxy")
        os.makedirs(hd, exist_ok=True)
        hp = gh_haproxy.Haproxy(hd, mailboxes, agent_addrs, certs, processing="500ms")
        started.append(hp.proc)
        tails.append(("haproxy", hp.log))
        # certificates dropped into the directory reach HAProxy through its
        # runtime API (the mail proxy watches the directory itself)
        cw = procs.Proc("certs-watch", [binary(build, "gatehouse"), "-c", conf, "certs", "watch",
                                        "--haproxy", hp.admin_sock, certs],
                        os.path.join(d, "certs-watch.log"))
        started.append(cw)
        tails.append(("certs", cw.log))

        print_tries(hp, mp_ports, ca, conf, binary(build, "gatehouse"), certs,
                    existing=existing is not None, kerberos=alice_ticket)
        # what a supervisor (or the demo's test) needs: every PID started
        with open(os.path.join(d, "pids"), "w") as f:
            f.write("".join("%d %s\n" % (p.pid, p.name) for p in started))
        with open(os.path.join(d, "ready"), "w") as f:
            f.write("%d\n" % os.getpid())
        for name, path in tails:
            t = LogTail(name, path, stop)
            t.start()
        while not stop.is_set():
            for p in started:
                if not p.alive():
                    say("run: %s (pid %d) exited with %s; stopping" % (p.name, p.pid,
                                                                     p.returncode()))
                    stop.set()
                    break
            stop.wait(0.5)
    finally:
        stop.set()
        say("run: stopping %d processes" % len(started))
        procs.stop_many(list(reversed(started)))
        for m in mailboxes.values():
            if hasattr(m, "stop"):
                m.stop()
        procs.stop_all()
        say("run: stopped; logs are in %s" % d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
