"""Several gatehouse nodes as one edge, on one machine: the cluster that the
cluster tests (cluster_fixtures.py) and `make run NODES=N` start.

Shared by every node:
* two memcached servers (route cache and throttle counters, ketama);
* an LDAP provider (slapd with syncprov) and a real replica (a syncrepl
  consumer of it, refreshAndPersist);
* the three mailbox servers: a Dovecot (IMAP/POP3 and IMAPS/POP3S) and a
  stand-in HTTP server that names itself, each.

Each node, on its own loopback address (127.0.0.11, 127.0.0.12, ...): two
gatehouse-spoa agents, gatehouse-mailproxy and HAProxy, with one
gatehouse.conf (the CLI's and the mail proxy's) and one per agent. The
node's `[ldap] uri` lists the nearest directory first: odd nodes the
provider, even nodes the replica. `[spoa] haproxy_admin` lists every
node's HAProxy admin socket and `[cluster]` every node's metrics
endpoints, so `gatehouse purge` and `gatehouse status` run on one node
reach all of them.

The processes are the integration tests' own (gh.slapd, gh.memcached,
gh.dovecot, gh.daemons, gh.haproxy.Haproxy), started and stopped by PID.
"""
import os

from . import certs as gh_certs
from . import config as gh_config
from . import daemons as gh_daemons
from . import dovecot as gh_dovecot
from . import haproxy as gh_haproxy
from . import mailbox as gh_mailbox
from . import memcached as gh_memcached
from . import ports, procs
from . import slapd as gh_slapd
from . import wait as gh_wait

MBOX = ("mbox1", "mbox2", "mbox3")


def node_address(i):
    """Return the loopback address of node <i> (1-based): 127.0.0.1<i>."""
    return "127.0.0.%d" % (10 + i)


class Node:
    """One gatehouse node: .addr, .conf (its gatehouse.conf), .agents
    (two gh.daemons.Spoa with .metrics), .mailproxy (gh.daemons.MailProxy
    with .metrics), .haproxy (gh.haproxy.Haproxy), .admin_sock."""

    def __init__(self, i, d, addr):
        self.i, self.dir, self.addr = i, d, addr
        self.name = "node%d" % i
        os.makedirs(d, exist_ok=True)
        self.hdir = os.path.join(d, "haproxy")
        os.makedirs(self.hdir, exist_ok=True)
        # the admin socket (runtime API) the other nodes' purge and status
        # reach: a UNIX socket on node 1, TCP on the others (as a node on
        # another machine has to offer it)
        self.admin_sock = os.path.join(self.hdir, "admin.sock") if i == 1 else \
            "ipv4@%s:%d" % (addr, ports.free_port(addr))
        # every port is known before any node starts: each node's config
        # names the others' endpoints
        self.agent_ports = [ports.free_port(addr) for _ in range(2)]
        self.agent_metrics = ["%s:%d" % (addr, ports.free_port(addr)) for _ in range(2)]
        self.mail_ports = {k: ports.free_port(addr) for k in ("imap", "imaps", "pop3", "pop3s")}
        self.mail_metrics = "%s:%d" % (addr, ports.free_port(addr))
        self.conf = os.path.join(d, "gatehouse.conf")
        self.audit = os.path.join(d, "audit.log")
        self.agents, self.mailproxy, self.haproxy = [], None, None

    @property
    def imap(self):
        return self.mail_ports["imap"]

    @property
    def pop3(self):
        return self.mail_ports["pop3"]

    def procs(self):
        """The node's running processes."""
        out = [a.proc for a in self.agents]
        if self.mailproxy is not None:
            out.append(self.mailproxy.proc)
        if self.haproxy is not None:
            out.append(self.haproxy.proc)
        return out


class Cluster:
    """<n> gatehouse nodes sharing two memcached servers, an LDAP provider
    and its replica, three Dovecots and three HTTP mailbox servers, all
    started in <d>.

    <template>: a gh.slapd.SlapdTemplate (the seed directory); <mbox_ca>:
    a gh.certs.CA and <mbox_pems> {mbox name: PEM} for the Dovecots' TLS;
    <site_certs>: the certs/ directory HAProxy and the mail proxies serve;
    <bins>: {"gatehouse-spoa": path, "gatehouse-mailproxy": path};
    <overrides>: sections merged over every node's configuration;
    <dovecot_delay>: Dovecot's auth_failure_delay."""

    def __init__(self, d, n, template, mbox_ca, mbox_pems, site_certs, bins,
                 overrides=None, dovecot_delay="0", nusers=None):
        self.dir = d
        self.started = []          # Proc objects, stopped in reverse order
        self.mailboxes = {}
        try:
            self.memcached = [gh_memcached.Memcached(os.path.join(d, "memcached-%d" % k))
                              for k in (1, 2)]
            self.started += [m.proc for m in self.memcached]
            self.provider = gh_slapd.Slapd(os.path.join(d, "ldap-provider"), template,
                                           role="provider")
            self.started.append(self.provider.proc)
            self.replica = gh_slapd.Slapd(os.path.join(d, "ldap-replica"), template,
                                          provider=self.provider)
            self.started.append(self.replica.proc)
            self.dovecots = {}
            for name in MBOX:
                kw = {"nusers": nusers} if nusers else {}
                self.dovecots[name] = gh_dovecot.Dovecot(
                    os.path.join(d, "dovecot-" + name), name, cert=mbox_pems[name],
                    failure_delay=dovecot_delay, **kw)
                self.started.append(self.dovecots[name].proc)
            self.mailboxes = {name: gh_mailbox.Mailbox(name) for name in MBOX}
            self.nodes = [Node(i, os.path.join(d, "node%d" % i), node_address(i))
                          for i in range(1, n + 1)]
            for node in self.nodes:
                self._write_confs(node, mbox_ca, site_certs, overrides)
            for node in self.nodes:
                self._start_node(node, bins, site_certs)
        except BaseException:
            self.stop()
            raise

    # ------------------------------------------------------------------

    def servers(self):
        """The [server] sections: each Dovecot's mail ports and its HTTP
        stand-in's port."""
        out = gh_config.dovecot_servers(self.dovecots)
        for name, m in self.mailboxes.items():
            out[name].update({"http": m.port, "https": m.port, "tls_name": "localhost"})
        return out

    def ldap_uris(self, node):
        """The directory URIs of <node>, nearest first."""
        uris = [self.provider.uri, self.replica.uri]
        return uris if node.i % 2 == 1 else uris[::-1]

    def _sections(self, node, mbox_ca, site_certs, overrides):
        mp = {k: "%s:%d" % (node.addr, p) for k, p in node.mail_ports.items()}
        mp.update({"metrics": node.mail_metrics, "certs": site_certs,
                   "cleartext_login": True, "upstream_ca": mbox_ca.cert,
                   "audit_log": node.audit, "threads": 2, "failure_delay": "0",
                   "connect_timeout": "2s", "upstream_timeout": "5s"})
        base = gh_config.sections(
            ldap_uris=self.ldap_uris(node), bind_pw_file=self.provider.bind_pw_file,
            memcached=[m.address for m in self.memcached], servers=self.servers(),
            overrides={
                "log": {"level": "info"},
                "memcached": {"retry": "2", "local_ttl": "2s", "local_size": 4096},
                "mailproxy": mp,
                "spoa": {"haproxy_admin": [x.admin_sock for x in self.nodes]},
                "cluster": {
                    "spoa_metrics": [a for x in self.nodes for a in x.agent_metrics],
                    "mailproxy_metrics": [x.mail_metrics for x in self.nodes]},
            })
        return gh_config.merge(base, overrides)

    def _write_confs(self, node, mbox_ca, site_certs, overrides):
        secs = self._sections(node, mbox_ca, site_certs, overrides)
        gh_config.write(node.conf, secs)
        node.agent_confs = []
        for k in range(2):
            a = gh_config.merge(secs, {"spoa": {
                "listen": "%s:%d" % (node.addr, node.agent_ports[k]),
                "metrics": node.agent_metrics[k], "threads": 2, "deadline": "400ms"}})
            node.agent_confs.append(
                gh_config.write(os.path.join(node.dir, "agent%d.conf" % (k + 1)), a))

    def _start_node(self, node, bins, site_certs):
        for k in range(2):
            a = gh_daemons.Spoa(os.path.join(node.dir, "agent%d" % (k + 1)),
                                node.agent_confs[k], node.agent_ports[k],
                                exe=bins["gatehouse-spoa"], host=node.addr)
            a.metrics = node.agent_metrics[k]
            node.agents.append(a)
            self.started.append(a.proc)
        mp = gh_daemons.MailProxy(os.path.join(node.dir, "mailproxy"), node.conf,
                                  exe=bins["gatehouse-mailproxy"], host=node.addr,
                                  **node.mail_ports)
        mp.metrics = node.mail_metrics
        node.mailproxy = mp
        self.started.append(mp.proc)
        node.haproxy = gh_haproxy.Haproxy(
            node.hdir, self.mailboxes,
            ["%s:%d" % (node.addr, p) for p in node.agent_ports], site_certs,
            processing="500ms", host=node.addr,
            extra_env={"GH_ADMIN_SOCK": node.admin_sock})
        self.started.append(node.haproxy.proc)

    # ------------------------------------------------------------------

    def wait_ready(self, timeout=15.0):
        """Wait until every HAProxy has seen both of its agents answer (a
        health check each), so that no request goes to the pool."""
        import urllib.request

        def agents_checked():
            for node in self.nodes:
                for a in node.agents:
                    with urllib.request.urlopen("http://%s/metrics" % a.metrics,
                                                timeout=5) as r:
                        if b"gatehouse_spoa_healthchecks_total" not in r.read():
                            return False
            return True
        gh_wait.until(agents_checked, "every agent health-checked by its HAProxy", timeout)

    def metric(self, needle):
        """Sum, over every agent and mail proxy of every node, the samples
        whose line contains <needle> (a metric name with its labels, e.g.
        'throttle_verdicts_total{verdict="fail_open"}')."""
        import urllib.request
        total = 0.0
        for node in self.nodes:
            for ep in node.agent_metrics + [node.mail_metrics]:
                with urllib.request.urlopen("http://%s/metrics" % ep, timeout=5) as r:
                    for line in r.read().decode().splitlines():
                        if needle in line and not line.startswith("#"):
                            total += float(line.rsplit(" ", 1)[1])
        return total

    def logs(self):
        """[(name, log path)] of every process, for a human or a failure."""
        out = [("memcached%d" % (k + 1), m.log) for k, m in enumerate(self.memcached)]
        out += [("ldap-prov", self.provider.log), ("ldap-repl", self.replica.log)]
        out += [("dovecot-%s" % n[-1], dv.log) for n, dv in self.dovecots.items()]
        for node in self.nodes:
            out += [("%s-spoa%d" % (node.name, k + 1), a.log)
                    for k, a in enumerate(node.agents)]
            if node.mailproxy is not None:
                out.append(("%s-mail" % node.name, node.mailproxy.log))
            if node.haproxy is not None:
                out.append(("%s-hap" % node.name, node.haproxy.log))
        return out

    def stop(self):
        """Stop every process started, by PID, newest first."""
        procs.stop_many(list(reversed(self.started)))
        for m in self.mailboxes.values():
            m.stop()
        self.mailboxes = {}


def make_mbox_certs(d, ca_name="gatehouse cluster mailbox CA"):
    """Create a CA and a certificate per mailbox server in <d>: (CA,
    {mbox name: PEM})."""
    ca = gh_certs.make_ca(d, name=ca_name)
    return ca, {n: gh_certs.make_cert(d, [n, "localhost", "127.0.0.1"], ca) for n in MBOX}
