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
    """Start the demo with run.py's arguments <extra>; yield its info."""
    # not pytest's tmp_path: its 0700 parents keep dovecot's unprivileged
    # auth process out
    d = tempfile.mkdtemp(prefix="gh-demo-")
    os.chmod(d, 0o755)
    run_dir, certs = os.path.join(d, "run"), os.path.join(d, "certs")
    build = os.environ.get("GATEHOUSE_BUILD", os.path.join(REPO, "build"))
    out = open(os.path.join(d, "demo.out"), "w+")
    p = subprocess.Popen([sys.executable, RUN, "--build", build, "--dir", run_dir,
                          "--certs", certs, "--conf", os.path.join(d, "no-such.conf"),
                          "--users", "1000"] + list(extra),
                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         cwd=REPO, start_new_session=True)
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


def _run(cmd):
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30,
                       cwd=REPO, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def test_every_part_is_running(demo):
    names = set(demo["pids"].values())
    for part in ("slapd", "memcached", "dovecot-mbox1", "dovecot-mbox2", "dovecot-mbox3",
                 "spoa1", "spoa2", "mailproxy", "haproxy"):
        assert part in names, "%s not started: %s" % (part, sorted(names))
    for pid in demo["pids"]:
        os.kill(pid, 0)   # raises when it is not running


def test_printed_commands_work_as_printed(demo):
    cmds = _commands(demo["text"])
    assert len(cmds) >= 6, demo["text"][-3000:]
    by_kind = {}
    for c in cmds:
        rc, out = _run(c)
        assert rc == 0, "command failed (rc %d): %s\n%s" % (rc, c, out)
        by_kind[c] = out
    https = [o for c, o in by_kind.items() if c.startswith("curl") and "https://" in c]
    # two users on two servers, over two domains' certificates
    assert any('"server": "mbox1"' in o for o in https), https
    assert any('"server": "mbox2"' in o for o in https), https
    starttls = [o for c, o in by_kind.items() if "-starttls imap" in c]
    assert starttls and "OK Logout completed" in starttls[0], starttls
    assert "unexpected eof" not in starttls[0]     # TLS closed with close_notify
    curl_imap = [o for c, o in by_kind.items() if "imap://" in c]
    assert curl_imap and "INBOX" in curl_imap[0], curl_imap
    imaplib_out = [o for c, o in by_kind.items() if "imaplib" in c]
    assert imaplib_out and "Logged in" in imaplib_out[0], imaplib_out
    route = [o for c, o in by_kind.items() if " route " in c]
    assert route and re.search(r"server\s+mbox3", route[0]), route


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
