"""`make run`: the demo stack starts, every command it prints works as
printed, and SIGINT stops every process it started.

The demo is started as `make run` starts it (tools/demo/run.py), in a
temporary run directory and with a temporary certificate directory so the
checkout's certs/ is left alone.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from gh import wait as gh_wait

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(REPO, "tools", "demo", "run.py")


def _sessions_alive(sids):
    """Return [(pid, comm)] of processes whose session id is in <sids>:
    each part was started as a session leader, so this finds its children
    too (dovecot's login and mail processes, ...)."""
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces: fields after the last ')'
        rest = stat[stat.rfind(")") + 2:].split()
        if rest[0] == "Z":
            continue
        if int(rest[3]) in sids:
            left.append((int(entry), stat[stat.find("(") + 1:stat.rfind(")")]))
    return left


def _start_demo(extra=()):
    """Start the demo with run.py's arguments <extra>; yield its info. It
    runs in a directory holding a gatehouse.conf, with GATEHOUSE_CONF set,
    as after a user copied the printed configuration there or ran the
    printed export: the demo must ignore both and start its whole stack."""
    # not pytest's tmp_path: its 0700 parents keep dovecot's unprivileged
    # auth process out
    d = tempfile.mkdtemp(prefix="gh-demo-")
    os.chmod(d, 0o755)
    run_dir, certs = os.path.join(d, "run"), os.path.join(d, "certs")
    build = os.environ.get("GATEHOUSE_BUILD", os.path.join(REPO, "build"))
    with open(os.path.join(d, "gatehouse.conf"), "w") as f:
        f.write("[ldap]\nuri = ldap://127.0.0.1:1\nbase = o=stale\n")
    env = dict(os.environ, GATEHOUSE_CONF=os.path.join(d, "stale-run", "gatehouse.conf"))
    out = open(os.path.join(d, "demo.out"), "w+")
    p = subprocess.Popen([sys.executable, RUN, "--build", build, "--dir", run_dir,
                          "--certs", certs, "--users", "1000"] + list(extra),
                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=d, env=env, start_new_session=True)
    ready = os.path.join(run_dir, "ready")
    deadline = time.monotonic() + 120
    while not os.path.exists(ready) and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    info = {"proc": p, "dir": run_dir, "out": out, "certs": certs}
    try:
        out.flush()
        with open(out.name) as f:
            info["text"] = f.read()
        assert os.path.exists(ready), "demo did not start:\n" + info["text"][-4000:]
        with open(os.path.join(run_dir, "pids")) as f:
            info["pids"] = {int(line.split()[0]): line.split()[1] for line in f if line.strip()}
        yield info
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(10)
        out.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def demo():
    yield from _start_demo()


@pytest.fixture(scope="module")
def demo_cluster():
    yield from _start_demo(["--nodes", "2"])


def _commands(text):
    return [line[4:] for line in text.splitlines() if line.startswith("  $ ")]


def _exports(text):
    """The environment the printed `export NAME=VALUE` lines set."""
    env = {}
    for c in _commands(text):
        m = re.match(r"^export (\w+)=(\S+)$", c)
        if m:
            env[m.group(1)] = m.group(2)
    return env


def _run(cmd, env=None):
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30,
                       cwd=REPO, stdin=subprocess.DEVNULL, env=dict(os.environ, **(env or {})))
    return r.returncode, r.stdout + r.stderr


def test_every_part_is_running(demo):
    names = set(demo["pids"].values())
    for part in ("slapd", "memcached", "dovecot-mbox1", "dovecot-mbox2", "dovecot-mbox3",
                 "spoa1", "spoa2", "mailproxy", "haproxy", "krb5kdc"):
        assert part in names, "%s not started: %s" % (part, sorted(names))
    for pid in demo["pids"]:
        os.kill(pid, 0)   # raises when it is not running


def test_demo_ignores_local_conf_and_says_so(demo):
    """A ./gatehouse.conf and a GATEHOUSE_CONF left from an earlier run do
    not switch the demo to "gatehouse parts only": it says so and starts
    its whole stack (test_every_part_is_running)."""
    assert "gatehouse.conf is not used" in demo["text"], demo["text"][:3000]
    assert "GATEHOUSE_CONF=" in demo["text"] and "is not used by the demo" in demo["text"]


def test_printed_commands_work_as_printed(demo):
    cmds = _commands(demo["text"])
    assert len(cmds) >= 6, demo["text"][-3000:]
    env = _exports(demo["text"])
    # the operator's commands read the printed configuration from the export
    assert env.get("GATEHOUSE_CONF") == os.path.join(demo["dir"], "gatehouse.conf"), env
    assert not [c for c in cmds if "gatehouse -c" in c], cmds
    by_kind = {}
    for c in cmds:
        rc, out = _run(c, env)
        assert rc == 0, "command failed (rc %d): %s\n%s" % (rc, c, out)
        by_kind[c] = out
    https = [o for c, o in by_kind.items() if c.startswith("curl") and "https://" in c]
    # two users on two servers, over two domains' certificates
    assert any('"server": "mbox1"' in o for o in https), https
    assert any('"server": "mbox2"' in o for o in https), https
    starttls = [o for c, o in by_kind.items() if "-starttls imap" in c]
    assert starttls and "OK Logout completed" in starttls[0], starttls
    assert "unexpected eof" not in starttls[0]     # TLS closed with close_notify
    # the mailboxes are seeded: IMAP, POP3 and imaplib fetch messages
    curl_imap = [o for c, o in by_kind.items() if "imap://" in c]
    assert curl_imap and "Subject: Welcome to the gatehouse demo" in curl_imap[0], curl_imap
    assert "mbox1, the mailbox server of alice@example.com" in curl_imap[0], curl_imap
    curl_pop3 = [o for c, o in by_kind.items() if "pop3://" in c]
    assert curl_pop3 and re.search(r"^3 \d+$", curl_pop3[0], re.M), curl_pop3
    assert "mbox2, the mailbox server of bob@example.com" in curl_pop3[0], curl_pop3
    imaplib_out = [o for c, o in by_kind.items() if "imaplib" in c]
    assert imaplib_out and "Logged in" in imaplib_out[0], imaplib_out
    assert "('OK', [b'3'])" in imaplib_out[0] and "Login throttling" in imaplib_out[0]
    # Kerberos: alice's ticket logs her in with GSSAPI, no password
    krb = [o for c, o in by_kind.items() if "-m GSSAPI" in c]
    assert krb and "Authenticated." in krb[0] and re.search(r"^a1 OK", krb[0], re.M), krb
    assert "AUTH=GSSAPI" in krb[0], krb
    route = [o for c, o in by_kind.items() if " route " in c]
    assert route and re.search(r"server\s+mbox3", route[0]), route
    # status on the printed configuration shows every part, both agents included
    status = [o for c, o in by_kind.items() if c.endswith(" status")]
    assert status and status[0].strip().endswith("healthy"), status
    assert len(re.findall(r"^spoa\s+127\.0\.0\.1:\d+\s+up", status[0], re.M)) == 2, status
    for part in ("mailproxy", "haproxy", "ldap", "memcached", "server"):
        assert re.search(r"^%s\s.*\sup\b" % part, status[0], re.M), (part, status)
    # the throttle limits are printed, and the printed show/clear commands work
    assert "Login throttle: 200 login attempts per address in 1 min, 50 per account" \
        in demo["text"], demo["text"][-3000:]
    show = [o for c, o in by_kind.items() if "throttle show" in c]
    assert show and "/ 200" in show[0] and "/ 50" in show[0], show
    clear = [o for c, o in by_kind.items() if "throttle clear" in c]
    assert clear and clear[0].count("clear done") == 2, clear


def test_no_tls_error_from_readiness_probes(demo):
    """The demo's readiness probes connect to the IMAPS and POP3S ports and
    close: that is no failed TLS handshake."""
    text = _demo_output(demo)
    assert "[mailproxy" in text
    assert "TLS handshake with the client failed" not in text, \
        [line for line in text.splitlines() if "TLS handshake" in line][:5]


def _demo_output(demo):
    demo["out"].flush()
    with open(demo["out"].name) as f:
        return f.read()


def test_logs_are_prefixed(demo):
    # each part logs on its own time (HAProxy after the requests it serves)
    for prefix in ("[haproxy", "[mailproxy", "[spoa1"):
        gh_wait.until(lambda: prefix in _demo_output(demo),
                      "%s lines in the demo output" % prefix, timeout=30,
                      seen=lambda: _demo_output(demo)[-3000:])


def _stops_everything(demo):
    p = demo["proc"]
    sids = set(demo["pids"])
    p.send_signal(signal.SIGINT)
    p.wait(60)
    assert p.returncode == 0
    deadline = time.monotonic() + 10
    left = _sessions_alive(sids)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _sessions_alive(sids)
    assert not left, "processes left after SIGINT: %s" % left


def test_sigint_stops_everything(demo):
    _stops_everything(demo)


@pytest.mark.slow
def test_cluster_demo(demo_cluster):
    """`make run NODES=2`: every part of both nodes and the shared servers
    run, each node's printed commands work as printed and reach that node
    (its address), and SIGINT stops everything."""
    names = sorted(demo_cluster["pids"].values())
    for part, n in (("gatehouse-spoa", 4), ("gatehouse-mailproxy", 2), ("haproxy", 2),
                    ("memcached", 2), ("slapd", 2)):
        assert names.count(part) == n, names
    text = demo_cluster["text"]
    cmds = _commands(text)
    for addr in ("127.0.0.11", "127.0.0.12"):
        mine = [c for c in cmds if addr in c]
        assert len(mine) >= 5, text[-3000:]
        for c in mine:
            rc, out = _run(c)
            assert rc == 0, "command failed (rc %d): %s\n%s" % (rc, c, out)
    status = [c for c in cmds if c.endswith(" status")]
    assert len(status) == 2
    rc, out = _run(status[0])
    # one node's status shows both nodes' agents and mail proxies
    assert rc == 0 and out.count("127.0.0.11:") >= 3 and out.count("127.0.0.12:") >= 3, out
    _stops_everything(demo_cluster)


def _demo_python(args, cwd=None):
    """Run run.py with <args> in a Python where `import pytest` fails."""
    code = ("import runpy, sys; sys.modules['pytest'] = None; sys.argv = %r; "
            "runpy.run_path(%r, run_name='__main__')" % (["run.py"] + list(args), RUN))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=cwd or REPO, stdin=subprocess.DEVNULL)


def test_demo_and_tools_need_no_pytest():
    """The demo, the benchmarks' helpers and the process starters (tools/gh)
    import no test module and no pytest."""
    r = _demo_python(["--help"])
    assert r.returncode == 0 and "--conf" in r.stdout, r.stdout + r.stderr
    mods = sorted(f[:-3] for f in os.listdir(os.path.join(REPO, "tools", "gh"))
                  if f.endswith(".py") and f != "__init__.py")
    code = ("import sys; sys.modules['pytest'] = None; sys.path.insert(0, %r); "
            "sys.path.insert(0, %r); import benchlib; %s; print('ok')"
            % (os.path.join(REPO, "tools"), os.path.join(REPO, "tools", "bench"),
               "; ".join("import gh.%s" % m for m in mods)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd="/")
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr


def test_demo_conf_checked_before_anything_starts(tmp_path):
    """--conf FILE that the agent cannot run on (not valid, or without
    [spoa] listen) is refused with the reason before anything starts or any
    run directory is made (no "stopping 0 processes")."""
    build = os.environ.get("GATEHOUSE_BUILD", os.path.join(REPO, "build"))
    no_listen = tmp_path / "no-listen.conf"
    no_listen.write_text("[ldap]\nuri = ldap://127.0.0.1:1\nbase = o=x\n"
                         "[server mbox1]\naddress = 127.0.0.1\nhttp = 8080\n")
    bad = tmp_path / "bad.conf"
    bad.write_text("[ldap]\nuri = ldap://127.0.0.1:1\nbase = o=x\nno_such_key = 1\n")
    for conf, why in ((no_listen, "has no [spoa] listen"), (bad, "no_such_key"),
                      (tmp_path / "missing.conf", "no such file")):
        run_dir = tmp_path / ("run-" + conf.name)
        r = _demo_python(["--build", build, "--dir", str(run_dir), "--certs",
                          str(tmp_path / "certs"), "--conf", str(conf)])
        out = r.stdout + r.stderr
        assert r.returncode != 0 and why in out and str(conf) in out, out
        assert "stopping" not in out and not run_dir.exists(), out


def test_log_prefixer_never_glues_lines(tmp_path):
    """Several LogTail threads writing to one stream: every line comes out
    whole, with its own prefix."""
    import threading
    sys.path.insert(0, os.path.dirname(RUN))
    try:
        import run as demo_run
    finally:
        sys.path.remove(os.path.dirname(RUN))

    class SlowStream:
        """A stream that lets other threads run inside every write."""

        def __init__(self):
            self.parts = []

        def write(self, s):
            for i in range(0, len(s), 7):
                self.parts.append(s[i:i + 7])
                time.sleep(0)

        def flush(self):
            pass

    names = ["svc%d" % i for i in range(6)]
    for n in names:
        with open(tmp_path / n, "w") as f:
            f.write("".join("%s line %d\n" % (n, k) for k in range(300)))
    out, stop = SlowStream(), threading.Event()
    tails = [demo_run.LogTail(n, str(tmp_path / n), stop, out=out) for n in names]
    for t in tails:
        t.start()
    want = 300 * len(names)
    gh_wait.until(lambda: "".join(out.parts).count("\n") >= want, "every line printed",
                  timeout=30, seen=lambda: "".join(out.parts).count("\n"))
    stop.set()
    for t in tails:
        t.join(5)
    lines = "".join(out.parts).splitlines()
    assert len(lines) == want
    bad = [ln for ln in lines if not re.match(r"^\[(svc\d) *\] \1 line \d+$", ln)]
    assert not bad, bad[:5]
