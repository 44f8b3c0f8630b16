"""Shared helpers for gatehouse's benchmarks (figures, never tests).

Reuses the process starters the integration tests use, tools/gh (slapd,
memcached, dovecot, certs, config writer, processes stopped by PID).
"""
import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tools"))

from gh import config as gh_config  # noqa: E402,F401
from gh import ports as gh_ports  # noqa: E402,F401
from gh import procs as gh_procs  # noqa: E402,F401

CLK_TCK = os.sysconf("SC_CLK_TCK")


def args(description):
    """Parse --build and --keep. Sets GATEHOUSE_BUILD for the fixtures."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="build directory holding the binaries")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each load run")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    os.environ["GATEHOUSE_BUILD"] = a.build
    return a


def raise_nofile(want=65536):
    """Raise RLIMIT_NOFILE (soft up to the hard limit, hard too when root).
    Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Workdir:
    """A temporary directory (0755, for dovecot's users) removed at the end
    unless <keep>; every fixture process is stopped by PID on exit."""

    def __init__(self, prefix, keep=False):
        self.keep = keep
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)
        self._n = 0

    def sub(self, name):
        self._n += 1
        d = os.path.join(self.path, "%s-%d" % (name, self._n))
        os.makedirs(d)
        os.chmod(d, 0o755)
        return d

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        gh_procs.stop_all()
        if self.keep:
            sys.stderr.write("benchmark files kept in %s\n" % self.path)
        else:
            shutil.rmtree(self.path, ignore_errors=True)
        return False


def binary(build, name):
    """Return <build>/<name> when executable, else None."""
    p = os.path.join(build, name)
    return p if os.access(p, os.X_OK) else None


def cpu_seconds(pid):
    """Return utime+stime of process <pid> (its threads included) in seconds,
    or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is state (field 3); utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_split(pid):
    """Return (utime, stime) of process <pid> in seconds, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_seconds_tree(pids):
    """Sum cpu_seconds() over <pids> (missing ones count 0)."""
    return sum(cpu_seconds(p) or 0.0 for p in pids)


def rss_kb(pid):
    """Return VmRSS of <pid> in kB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid):
    """Return the PIDs of every descendant of <pid>."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def table(headers, rows):
    """Print <rows> (lists of str) under <headers> as an aligned table."""
    rows = [[str(c) for c in r] for r in rows]
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
         for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w[i]) for i, h in enumerate(headers))
    print(line)
    print("  ".join("-" * x for x in w))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    sys.stdout.flush()


def fmt(v, spec="%.2f", none="-"):
    """Format <v> with <spec>, or <none> when v is None."""
    return none if v is None else spec % v


def now():
    return time.monotonic()


class Profile:
    """Optional profiling of process <pid> for the duration of a `with`
    block, printed afterwards; otherwise does nothing.
    $GH_BENCH_PERF=DIR: `perf record -g` into DIR, top of `perf report`.
    $GH_BENCH_STRACE=DIR: `strace -c -f` (syscall counts; slows the process a
    lot, so the figures of that run are meaningless). .syscalls is the total
    count afterwards."""

    def __init__(self, name, pid, top=25):
        self.dir = os.environ.get("GH_BENCH_PERF")
        self.sdir = os.environ.get("GH_BENCH_STRACE")
        self.name, self.pid, self.top = name, pid, top
        self.p = None
        self.data = None
        self.syscalls = None

    def __enter__(self):
        if self.sdir and self.pid is not None and shutil.which("strace"):
            os.makedirs(self.sdir, exist_ok=True)
            self.data = os.path.join(self.sdir, "%s.strace" % self.name)
            self.p = subprocess.Popen(["strace", "-c", "-f", "-p", str(self.pid), "-o",
                                       self.data], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            return self
        perf = shutil.which("perf")
        if not self.dir or not perf or self.pid is None:
            return self
        os.makedirs(self.dir, exist_ok=True)
        self.data = os.path.join(self.dir, "%s.perf.data" % self.name)
        self.p = subprocess.Popen([perf, "record", "-q", "-F", "999", "-g", "-p", str(self.pid),
                                   "-o", self.data], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc):
        if self.p is None:
            return False
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)
        if self.sdir:
            with open(self.data) as f:
                text = f.read()
            print("syscalls of %s (pid %d), %s:" % (self.name, self.pid, self.data))
            for ln in text.splitlines()[:self.top]:
                print("   " + ln)
            m = [ln.split() for ln in text.splitlines() if ln.strip().endswith("total")]
            if m:
                try:
                    self.syscalls = int(m[-1][3])
                except (ValueError, IndexError):
                    pass
            return False
        r = subprocess.run(["perf", "report", "-i", self.data, "--stdio", "--no-children",
                            "-g", "none", "--percent-limit", "1", "--sort", "dso,sym"],
                           capture_output=True, text=True, timeout=120)
        lines = [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
        print("perf profile of %s (pid %d), %s:" % (self.name, self.pid, self.data))
        for ln in lines[:self.top]:
            print("   " + ln)
        return False
