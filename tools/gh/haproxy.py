"""Debian's haproxy started with haproxy/haproxy.cfg, the generated pool
backend, allowed-destination list and route maps, on free ports, stopped by
PID. Used by the integration tests, the demo and the benchmarks."""
import json
import os
import re
import time
import urllib.error
import urllib.request

from . import procs as gh_procs
from .cli import REPO
from .ports import free_port, wait_listening
from .unixcmd import unix_cmd


def write_pool(path, mailboxes, admin=None):
    """Write the generated server list: backend be_pool over the mailbox
    servers' http ports, balanced by client IP hash, and backend be_admin
    over <admin> ({name: Mailbox} serving the admin ports), TLS verified with
    the server's name when HAProxy runs with GH_UPSTREAM_PROTO=https."""
    lines = ["# generated: mailbox servers for the client-IP-hash pool",
             "backend be_pool", "    balance source", "    hash-type consistent"]
    for n, m in sorted(mailboxes.items()):
        lines.append("    server %s %s:%d check inter 2s" % (n, m.host, m.port))
    lines += ["", "# generated: admin console servers (the frontend on GH_ADMIN_BIND)",
              "backend be_admin", "    balance source", "    hash-type consistent"]
    if admin:
        tls = (' ssl verify required ca-file "${GH_UPSTREAM_CA-/etc/ssl/certs/'
               'ca-certificates.crt}" sni str(%s) verifyhost %s check-sni %s')
        lines.append('.if streq("${GH_UPSTREAM_PROTO-http}",https)')
        for n, m in sorted(admin.items()):
            lines.append("    server %s %s:%d check inter 2s" % (n, m.host, m.port) +
                         tls % (n, n, n))
        lines.append(".else")
        for n, m in sorted(admin.items()):
            lines.append("    server %s %s:%d check inter 2s" % (n, m.host, m.port))
        lines.append(".endif")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def write_allowed(path, mailboxes):
    """Write the allowed destinations ("ip:port", one a line)."""
    with open(path, "w") as f:
        for m in mailboxes.values():
            f.write("%s:%d\n" % (m.host, m.port))


def write_routes(routes_path, index_path, mailboxes):
    """Write the route table's maps: "N ip|http|https|name" (N = 1 + the
    server's place by name) and "ip:port|name N" for each of its ports."""
    with open(routes_path, "w") as r, open(index_path, "w") as x:
        for i, (n, m) in enumerate(sorted(mailboxes.items()), 1):
            r.write("%d %s|%d|%d|%s\n" % (i, m.host, m.port, m.port, n))
            x.write("%s:%d|%s %d\n" % (m.host, m.port, n, i))


class Haproxy:
    """A running haproxy: .http_port, .https_port, .proc, .log, .admin_sock."""

    def __init__(self, d, mailboxes, agents, certs_dir, processing="500ms", extra_env=None,
                 extra_cfg=None, master=False, host="127.0.0.1", admin=None, generated=None):
        self.d = d
        self.host = host     # its listeners' address (a node of a cluster has its own)
        self.http_port, self.https_port = free_port(host), free_port(host)
        # <generated>: a directory `gatehouse haproxy-servers -o` wrote;
        # otherwise the twins above write the same files from <mailboxes>
        # (and <admin>, the admin console's servers)
        gd = generated or d
        pool = os.path.join(gd, "gatehouse-servers.cfg")
        allowed = os.path.join(gd, "allowed-dst.lst")
        self.routes = os.path.join(gd, "routes.map")
        self.route_index = os.path.join(gd, "route-index.map")
        if generated is None:
            write_pool(pool, mailboxes, admin)
            write_allowed(allowed, mailboxes)
            write_routes(self.routes, self.route_index, mailboxes)
        env = dict(os.environ)
        env.update({
            "GH_HTTP_BIND": "%s:%d" % (host, self.http_port),
            "GH_HTTPS_BIND": "%s:%d" % (host, self.https_port),
            "GH_CERTS": certs_dir,
            "GH_ERRORS": os.path.join(REPO, "haproxy", "errors"),
            "GH_SPOE_CONF": os.path.join(REPO, "haproxy", "spoe-gatehouse.conf"),
            "GH_SPOE_PROCESSING": processing,
            "GH_AGENT1": agents[0],
            "GH_AGENT2": agents[1] if len(agents) > 1 else agents[0],
            "GH_ALLOWED_DST": allowed,
            "GH_ROUTES": self.routes,
            "GH_ROUTE_INDEX": self.route_index,
            "GH_LOG": "stdout",
            "GH_HTTPS_REDIRECT": "no",
            "GH_ADMIN_SOCK": os.path.join(d, "admin.sock"),
        })
        env.update(extra_env or {})
        self.env = env
        argv = ["/usr/sbin/haproxy", "-db", "-f", os.path.join(REPO, "haproxy", "haproxy.cfg"),
                "-f", pool]
        if extra_cfg:
            # e.g. a second "global" section (nbthread) for one test
            extra = os.path.join(d, "extra.cfg")
            with open(extra, "w") as f:
                f.write(extra_cfg)
            argv += ["-f", extra]
        self.admin_sock = env["GH_ADMIN_SOCK"]   # runtime API (level admin)
        self.master_sock = None
        if master:
            # master-worker mode with the master CLI, as Debian runs it
            self.master_sock = os.path.join(d, "master.sock")
            argv += ["-W", "-S", self.master_sock]
        self.log = os.path.join(d, "haproxy.log")
        self.proc = gh_procs.Proc("haproxy", argv, self.log, env=env)
        wait_listening(self.http_port, host, proc=self.proc)
        wait_listening(self.https_port, host, proc=self.proc)

    def url(self, path, https=False):
        if https:
            return "https://%s:%d%s" % (self.host, self.https_port, path)
        return "http://%s:%d%s" % (self.host, self.http_port, path)

    def get(self, path, headers=None, method="GET", data=None, timeout=10):
        """Plain HTTP request through haproxy: (status, headers, parsed body or text)."""
        req = urllib.request.Request(self.url(path), headers=headers or {}, method=method,
                                     data=data)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                body = r.read()
                st, hd = r.status, r.headers
        except urllib.error.HTTPError as e:
            body, st, hd = e.read(), e.code, e.headers
        try:
            return st, hd, json.loads(body)
        except ValueError:
            return st, hd, body.decode("utf-8", "replace")

    def master_cmd(self, cmd, timeout=20.0):
        """Send <cmd> to the master CLI; return its answer. While a reload
        re-executes the master its socket refuses or resets connections for
        a moment: a read-only command is tried again until <timeout>; a
        "reload" whose connection the re-executing master resets has been
        taken, and is never sent twice."""
        end = time.monotonic() + timeout
        while True:
            try:
                return self._master_once(cmd)
            except (ConnectionRefusedError, FileNotFoundError):
                pass                      # nothing was sent: always safe to retry
            except (ConnectionResetError, BrokenPipeError):
                if cmd == "reload":
                    return ""
            if time.monotonic() > end:
                raise AssertionError("master CLI of haproxy did not answer %r within %.0f s"
                                     % (cmd, timeout))
            time.sleep(0.05)

    def _master_once(self, cmd):
        return unix_cmd(self.master_sock, cmd, half_close=cmd != "reload")

    def master_reloads(self):
        """Return how often the master has reloaded (from "show proc")."""
        for line in self.master_cmd("show proc").splitlines():
            f = line.split()
            if len(f) > 2 and f[1] == "master" and f[2].isdigit():
                return int(f[2])
        return -1

    def admin(self, cmd, timeout=10):
        """Send <cmd> to the admin socket (runtime API); return the answer."""
        return unix_cmd(self.admin_sock, cmd, timeout=timeout, half_close=False)

    def route_stats(self):
        """Return (hits, misses, used) of the route table."""
        st = {}
        for line in self.admin("show table gh_route_stats").splitlines():
            m = re.search(r"key=(\d+) .*http_req_cnt=(\d+)", line)
            if m:
                st[int(m.group(1))] = int(m.group(2))
        used = re.search(r"used:(\d+)", self.admin("show table gh_routes"))
        return st.get(1, 0), st.get(2, 0), int(used.group(1)) if used else -1

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")
