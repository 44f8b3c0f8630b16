#!/usr/bin/python3
"""make bench-mail: IMAP logins per second (50 clients, 10 s), relay MB/s (a
50 MB message FETCH) and memory per idle logged-in connection (5,000
connections), for dovecot directly, through a plain TCP relay (HAProxy in
`mode tcp`), through gatehouse-mailproxy and through nginx's mail proxy
(Debian's libnginx-mod-mail), in the same run, printed as ratios to direct
and to the relay. The load comes from build/bench/mail_load (C, poll).

* dovecot: the integration fixture (service_count = 0 for imap-login and
  imap, checked below), plus what 5,000 sessions need here (client and
  process limits, mail_max_userip_connections); one instance, only its
  users are used.
* gatehouse-mailproxy: cleartext IMAP listener, routes via slapd +
  memcached (warm: every user is logged in once before timing).
* nginx: one worker, auth_http to a `location` of the same nginx answering
  `Auth-Status: OK` with add_header + `return 204`, proxy_buffer 64k.
* relay: HAProxy 2.6 in `mode tcp` (one process, its default threads) in
  front of the same dovecot: two TCP connections relayed with no logic at
  all, the floor for any login proxy.

CPU per login: utime+stime of the proxy's processes over the login run,
divided by logins. Dovecot CPU per login: the same for every dovecot process
this bench started (its master and descendants, read from /proc, with the
CPU of children that exited during the run, which their parent reaped), for
every path: what the path costs the mailbox server. Memory: RSS (nginx: its
worker; dovecot direct: PSS of all its processes) after 5,000 logins minus
before, divided by 5,000.
Targets (issue 4): >= 0.90 of direct logins/s, <= 0.15 ms CPU per login,
>= 0.98 of direct relay throughput, <= 4 kB per idle logged-in connection;
nginx measured at 0.80 / 0.31 ms / 0.96 / 9.6 kB. Against the relay row
(issue 12): >= 0.95 x its logins/s and <= 1.15 x its CPU per login.
A benchmark reports figures; it never fails on a timing.
"""
import os
import pwd
import subprocess
import sys
import time

import benchlib as bl
from gh import dovecot as gh_dovecot
from gh import memcached as gh_memcached
from gh import slapd as gh_slapd
from gh import certs as gh_certs

NGINX = "/usr/sbin/nginx"
HAPROXY = "/usr/sbin/haproxy"
NGX_MAIL = "/usr/lib/nginx/modules/ngx_mail_module.so"
MESSAGE_MB = 50
LOGIN_CLIENTS = 50
IDLE_CONNS = 5000
LOGIN_ROUNDS = 2   # login runs per target, alternating; the best is reported

# Appended to the fixture's dovecot.conf: room for 5,000 sessions from one IP.
DOVECOT_EXTRA = """
# bench_mail.py: limits for 5,000 idle sessions from 127.0.0.1
default_client_limit = 12000
default_process_limit = 200
mail_max_userip_connections = 100000
service imap {{
  client_limit = 1000
  process_limit = 50
}}
service imap-login {{
  client_limit = 12000
  process_limit = 4
}}
service anvil {{
  client_limit = 20000
}}
service auth {{
  client_limit = 20000
}}
"""

NGINX_CONF = """\
load_module {module};
worker_processes 1;
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
daemon off;
events {{
    worker_connections {conns};
}}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen 127.0.0.1:{auth_port};
        location = /auth {{
            add_header Auth-Status OK;
            add_header Auth-Server 127.0.0.1;
            add_header Auth-Port {backend_port};
            return 204;
        }}
    }}
}}
mail {{
    auth_http 127.0.0.1:{auth_port}/auth;
    proxy_buffer 64k;
    server {{
        listen 127.0.0.1:{imap_port};
        protocol imap;
        imap_auth login plain;
    }}
}}
"""


# The plain TCP relay: no logic, two connections per session.
RELAY_CONF = """\
global
    maxconn {maxconn}
defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m
frontend imap
    bind 127.0.0.1:{port}
    maxconn {maxconn}
    default_backend dovecot
backend dovecot
    server dv 127.0.0.1:{backend_port} maxconn {maxconn}
"""


def parse_kv(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def cpu_seconds_reaped(pid):
    """utime+stime of <pid> plus cutime+cstime (its children that exited and
    that it reaped), in seconds; None when <pid> is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime, stime, cutime, cstime are 14-17
    return sum(int(x) for x in fields[11:15]) / bl.CLK_TCK


def pss_kb(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Target:
    """Something to measure: <name>, IMAP <port>, the PIDs whose CPU and
    memory count (callable returning a list), how memory is read."""

    def __init__(self, name, port, pids, mem="rss"):
        self.name, self.port, self.pids, self.mem = name, port, pids, mem
        self.res = {}
        self.note = ""

    def cpu(self):
        return bl.cpu_seconds_tree(self.pids())

    def memory_kb(self):
        f = pss_kb if self.mem == "pss" else bl.rss_kb
        return sum(f(p) or 0 for p in self.pids())


def write_users(path, users):
    with open(path, "w") as f:
        for u in users:
            f.write("%s %s\n" % (u["mail"], u["password"]))
    return path


def make_message(dv, user, mb):
    """Put one <mb> MB message in <user>'s maildir INBOX on dovecot <dv>."""
    nobody = pwd.getpwnam("nobody")
    root = os.path.join(dv.dir, "mail", user)
    for sub in ("", "cur", "new", "tmp"):
        p = os.path.join(root, sub)
        os.makedirs(p, exist_ok=True)
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    path = os.path.join(root, "cur", "1700000000.M1P1.bench:2,S")
    line = (b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-bench-line-"
            b"0123456789\r\n")
    head = (b"From: bench@example.com\r\nTo: %s\r\nSubject: 50 MB relay test\r\n"
            b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\nMessage-ID: <bench@example.com>\r\n"
            b"\r\n" % user.encode())
    n = (mb * 1000 * 1000) // len(line)
    with open(path, "wb") as f:
        f.write(head)
        chunk = line * 1000
        for _ in range(n // 1000):
            f.write(chunk)
    os.chown(path, nobody.pw_uid, nobody.pw_gid)
    return os.path.getsize(path)


def run_load(exe, args, timeout):
    r = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    return parse_kv(line), r


def measure_idle(exe, t, users_file, n, seconds=180):
    """Open <n> logged-in connections to <t>; return (kB per connection,
    logged in, failed, before kB, after kB)."""
    before = t.memory_kb()
    p = subprocess.Popen([exe, "--mode", "idle", "--port", str(t.port), "--users", users_file,
                          "--clients", str(n), "--seconds", str(seconds)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline().strip()   # "ready OK FAIL" (mail_load bounds the wait)
        parts = line.split()
        ok = int(parts[1]) if len(parts) == 3 else 0
        fail = int(parts[2]) if len(parts) == 3 else n
        time.sleep(1.0)
        after = t.memory_kb()
    finally:
        try:
            p.stdin.write("quit\n")
            p.stdin.close()
        except OSError:
            pass
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    per = (after - before) / ok if ok else None
    return per, ok, fail, before, after


def main():
    a = bl.args(__doc__)
    nofile = bl.raise_nofile()
    load = bl.binary(a.build, "bench/mail_load")
    if load is None:
        print("bench-mail: %s/bench/mail_load is not built; run `make all` first" % a.build)
        return 1
    mp_exe = bl.binary(a.build, "gatehouse-mailproxy")
    idle_n = min(IDLE_CONNS, max(100, nofile // 2 - 500))
    if idle_n < IDLE_CONNS:
        print("note: RLIMIT_NOFILE %d: idle test with %d connections" % (nofile, idle_n))

    with bl.Workdir("gh-bench-mail-", a.keep) as wd:
        # ---- dovecot (fixture + limits for 5,000 sessions)
        orig = gh_dovecot.CONF
        if "service_count = 0" not in orig:
            print("note: fixture dovecot lacks service_count = 0; adding it")
            extra = DOVECOT_EXTRA.replace("service imap {{", "service imap {{\n  "
                                          "service_count = 0").replace(
                "service imap-login {{", "service imap-login {{\n  service_count = 0")
        else:
            extra = DOVECOT_EXTRA
        gh_dovecot.CONF = orig + extra
        try:
            dv = gh_dovecot.Dovecot(wd.sub("dovecot"), "mbox1")
        finally:
            gh_dovecot.CONF = orig
        conf_text = open(dv.conf).read()
        print("dovecot %s: imap %d (service_count = 0 for imap-login and imap: %s)"
              % (dv.name, dv.imap, "yes" if conf_text.count("service_count = 0") >= 2 else "NO"))
        users = [u for u in gh_slapd.gen_ldif.users()
                 if u["host"] == "mbox1" and u["uid"].startswith("user")]
        users_file = write_users(os.path.join(wd.path, "users.txt"), users)
        fetch_user = users[0]
        fetch_file = write_users(os.path.join(wd.path, "fetch-user.txt"), [fetch_user])
        size = make_message(dv, fetch_user["mail"], MESSAGE_MB)
        print("%d users on %s; %.1f MB message for %s" % (len(users), dv.name, size / 1e6,
                                                         fetch_user["mail"]))

        def dovecot_pids():
            return [dv.proc.pid] + bl.children(dv.proc.pid)

        def dovecot_cpu():
            """CPU seconds of every dovecot process this bench started."""
            return sum(cpu_seconds_reaped(p) or 0.0 for p in dovecot_pids())

        direct_t = Target("dovecot direct", dv.imap, dovecot_pids, mem="pss")
        direct_t.cpu = dovecot_cpu
        targets = [direct_t]

        # ---- plain TCP relay: haproxy mode tcp in front of the same dovecot
        relay_t = None
        if not os.access(HAPROXY, os.X_OK):
            print("SKIP relay: %s not installed" % HAPROXY)
        else:
            try:
                rdir = wd.sub("relay")
                rport = bl.gh_ports.free_port()
                rconf = os.path.join(rdir, "haproxy.cfg")
                with open(rconf, "w") as f:
                    f.write(RELAY_CONF.format(port=rport, backend_port=dv.imap,
                                              maxconn=min(3 * IDLE_CONNS, nofile // 2 - 100)))
                rp = bl.gh_procs.Proc("haproxy-relay", [HAPROXY, "-db", "-f", rconf],
                                      os.path.join(rdir, "haproxy.log"))
                bl.gh_ports.wait_listening(rport, proc=rp)
                relay_t = Target("tcp relay (haproxy)", rport, lambda: [rp.pid])
                targets.append(relay_t)
            except Exception as e:  # noqa: BLE001 - skip the row, say why
                print("SKIP relay: could not start: %s" % e)

        # ---- gatehouse-mailproxy
        if mp_exe is None:
            print("SKIP gatehouse-mailproxy: %s/gatehouse-mailproxy is not built" % a.build)
        else:
            try:
                tmpl = gh_slapd.SlapdTemplate(wd.sub("ldap-template"))
                sl = gh_slapd.Slapd(wd.sub("slapd"), tmpl)
                mc = gh_memcached.Memcached(wd.sub("memcached"))
                mdir = wd.sub("mailproxy")
                cdir = os.path.join(mdir, "certs")
                os.makedirs(cdir)
                gh_certs.make_cert(cdir, ["mail.example.com"], filename="00-default")
                for fn in os.listdir(cdir):
                    if not fn.endswith(".pem"):
                        os.unlink(os.path.join(cdir, fn))
                mport = bl.gh_ports.free_port()
                servers = {n: {"address": "127.0.0.1", "imap": dv.imap, "pop3": dv.pop3}
                           for n in ("mbox1", "mbox2", "mbox3")}
                secs = bl.gh_config.sections(
                    [sl.uri], sl.bind_pw_file, [mc.address], servers,
                    {"log": {"level": "warning"},
                     "memcached": {"local_size": 65536},
                     "mailproxy": {"imap": "127.0.0.1:%d" % mport, "certs": cdir,
                                   "cleartext_login": True, "threads": 2,
                                   "max_connections": 20000}})
                conf = bl.gh_config.write(os.path.join(mdir, "gatehouse.conf"), secs)
                mp = bl.gh_procs.Proc("gatehouse-mailproxy", [mp_exe, "-f", "-c", conf],
                                      os.path.join(mdir, "mailproxy.log"))
                bl.gh_ports.wait_listening(mport, proc=mp)
                targets.append(Target("gatehouse-mailproxy", mport, lambda: [mp.pid]))
            except Exception as e:  # noqa: BLE001 - skip the row, say why
                print("SKIP gatehouse-mailproxy: could not start: %s" % e)

        # ---- nginx mail proxy
        if not (os.access(NGINX, os.X_OK) and os.path.exists(NGX_MAIL)):
            print("SKIP nginx: nginx-light / libnginx-mod-mail not installed")
        else:
            try:
                ndir = wd.sub("nginx")
                os.makedirs(os.path.join(ndir, "tmp"))
                nport, aport = bl.gh_ports.free_port(), bl.gh_ports.free_port()
                nconf = os.path.join(ndir, "nginx.conf")
                with open(nconf, "w") as f:
                    f.write(NGINX_CONF.format(module=NGX_MAIL, dir=ndir, auth_port=aport,
                                              backend_port=dv.imap, imap_port=nport,
                                              nofile=nofile,
                                              conns=min(3 * IDLE_CONNS, nofile - 100)))
                ng = bl.gh_procs.Proc("nginx", [NGINX, "-p", ndir, "-c", nconf, "-e",
                                                os.path.join(ndir, "error.log")],
                                      os.path.join(ndir, "nginx.out"))
                bl.gh_ports.wait_listening(nport, proc=ng)
                targets.append(Target("nginx mail proxy", nport,
                                      lambda: bl.children(ng.pid), mem="rss"))
            except Exception as e:  # noqa: BLE001
                print("SKIP nginx: could not start: %s" % e)

        # ---- warm-up: every user once through each target (route cache, dovecot)
        for t in targets:
            w, r = run_load(load, ["--mode", "login", "--port", t.port, "--users", users_file,
                                   "--clients", 10, "--seconds", 15, "--max", len(users)],
                            60)
            if not w.get("logins"):
                t.note = "warm-up failed: %s" % r.stderr.strip()[-300:]
                print("%s: %s" % (t.name, t.note))
            elif w.get("failures"):
                print("%s: warm-up had %d failed logins of %d: %s"
                      % (t.name, w["failures"], len(users), r.stderr.strip()[-300:]))

        # ---- logins per second: LOGIN_ROUNDS rounds, targets alternating, best kept
        for rnd in range(LOGIN_ROUNDS):
            for t in targets:
                if t.note:
                    continue
                c0, d0 = t.cpu(), dovecot_cpu()
                prof_pid = t.pids()[0] if rnd == 0 and t.name != "dovecot direct" else None
                with bl.Profile(t.name.replace(" ", "-"), prof_pid) as prof:
                    w, r = run_load(load, ["--mode", "login", "--port", t.port, "--users",
                                           users_file, "--clients", LOGIN_CLIENTS, "--seconds",
                                           a.seconds], a.seconds + 60)
                c1, d1 = t.cpu(), dovecot_cpu()
                if prof.syscalls and w.get("logins"):
                    print("%s: %.1f syscalls per login (under strace)"
                          % (t.name, prof.syscalls / w["logins"]))
                if not w.get("logins"):
                    print("%s: login run failed: %s" % (t.name, r.stderr.strip()[-300:]))
                    continue
                w["cpu_ms_per_login"] = (c1 - c0) * 1e3 / w["logins"]
                w["dv_ms_per_login"] = (d1 - d0) * 1e3 / w["logins"]
                print("round %d %-20s logins/s %6.0f  p50 %6.2f ms  p99 %6.2f ms  failures %d  "
                      "CPU %.3f ms/login  dovecot %.3f ms/login"
                      % (rnd + 1, t.name, w["rate"], w["p50_ms"], w["p99_ms"], w["failures"],
                         w["cpu_ms_per_login"], w["dv_ms_per_login"]))
                if w["rate"] > t.res.get("rate", 0):
                    t.res.update(w)
        for t in targets:
            if not t.note and "rate" not in t.res:
                t.note = "every login run failed"

        # ---- relay: 50 MB FETCH
        for t in targets:
            if t.note:
                continue
            w, r = run_load(load, ["--mode", "fetch", "--port", t.port, "--users", fetch_file,
                                   "--repeat", 5, "--seconds", 120], 180)
            if not w.get("mbps"):
                t.res["relay_err"] = r.stderr.strip()[-300:]
                print("%s: relay failed: %s" % (t.name, t.res["relay_err"]))
                continue
            t.res["mbps"] = w["mbps"]
            print("%-20s relay %.0f MB/s (%d fetches of %.1f MB)"
                  % (t.name, w["mbps"], w["fetches"], w["bytes"] / max(1, w["fetches"]) / 1e6))

        # ---- memory per idle logged-in connection
        for t in targets:
            if t.note:
                continue
            per, ok, fail, before, after = measure_idle(load, t, users_file, idle_n)
            t.res["idle_ok"], t.res["idle_fail"] = ok, fail
            t.res["kb_per_conn"] = per
            print("%-20s idle: %d logged in, %d failed; memory %d kB -> %d kB: %s kB/conn"
                  % (t.name, ok, fail, before, after, bl.fmt(per, "%.2f")))
            time.sleep(2)   # let the servers notice the closed connections

        # ---- table
        direct = targets[0].res
        relay = relay_t.res if relay_t is not None and not relay_t.note else {}
        rows = []
        for t in targets:
            r = t.res
            if t.note:
                rows.append([t.name, "FAILED: " + t.note[:60]] + [""] * 10)
                continue

            def ratio(k, base):
                if r.get(k) and base.get(k):
                    return "%.2f" % (r[k] / base[k])
                return "-"
            rows.append([t.name, bl.fmt(r.get("rate"), "%.0f"), ratio("rate", direct),
                         ratio("rate", relay),
                         bl.fmt(r.get("cpu_ms_per_login"), "%.3f"),
                         ratio("cpu_ms_per_login", relay) if t is not direct_t else "-",
                         bl.fmt(r.get("dv_ms_per_login"), "%.3f"),
                         bl.fmt(r.get("mbps"), "%.0f"), ratio("mbps", direct),
                         bl.fmt(r.get("kb_per_conn"), "%.2f"),
                         "%s/%s" % (r.get("idle_ok", "-"), idle_n),
                         bl.fmt(r.get("p99_ms"), "%.2f")])
        print()
        print("IMAP, everything on 127.0.0.1 (one 2-core machine); logins: %d clients, %ds, best of %d "
              "alternating rounds; relay: %d MB FETCH; idle: %d connections" % (LOGIN_CLIENTS, int(a.seconds),
                                                             LOGIN_ROUNDS, MESSAGE_MB, idle_n))
        bl.table(["path", "logins/s", "x direct", "x relay", "CPU ms/login", "x relay",
                  "dovecot ms/login", "relay MB/s", "x direct", "kB/idle conn", "idle ok",
                  "login p99 ms"], rows)
        print("(CPU ms/login: the path's own processes; for direct, dovecot's. dovecot "
              "ms/login: every dovecot process, for every path)")
        print()
        print("targets for gatehouse-mailproxy: >= 0.90 x direct logins/s, <= 0.15 ms CPU per "
              "login, >= 0.98 x direct relay, <= 4 kB per idle connection")
        print("nginx as measured in issue 4: 0.80 / 0.31 ms / 0.96 / 9.6 kB")
        gm = [t for t in targets if t.name == "gatehouse-mailproxy" and not t.note]
        if gm and direct:
            r = gm[0].res
            checks = []
            if r.get("rate") and direct.get("rate"):
                x = r["rate"] / direct["rate"]
                checks.append("logins %.2f x direct (%s)" % (x, "met" if x >= 0.90 else "NOT met"))
            if r.get("cpu_ms_per_login") is not None:
                x = r["cpu_ms_per_login"]
                checks.append("CPU %.3f ms/login (%s)" % (x, "met" if x <= 0.15 else "NOT met"))
            if r.get("mbps") and direct.get("mbps"):
                x = r["mbps"] / direct["mbps"]
                checks.append("relay %.2f x direct (%s)" % (x, "met" if x >= 0.98 else "NOT met"))
            if r.get("kb_per_conn") is not None:
                x = r["kb_per_conn"]
                checks.append("%.2f kB/idle conn (%s)" % (x, "met" if x <= 4 else "NOT met"))
            print("gatehouse-mailproxy: " + "; ".join(checks))
            rchecks = []
            if r.get("rate") and relay.get("rate"):
                x = r["rate"] / relay["rate"]
                rchecks.append("logins/s %.2f x relay (target >= 0.95: %s)"
                               % (x, "met" if x >= 0.95 else "NOT met"))
            if r.get("cpu_ms_per_login") and relay.get("cpu_ms_per_login"):
                x = r["cpu_ms_per_login"] / relay["cpu_ms_per_login"]
                rchecks.append("CPU per login %.2f x relay (target <= 1.15: %s)"
                               % (x, "met" if x <= 1.15 else "NOT met"))
            if rchecks:
                print("gatehouse-mailproxy against the tcp relay: " + "; ".join(rchecks))
        print("(direct dovecot: CPU and memory are dovecot's own, all processes; "
              "figures, not a test)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
