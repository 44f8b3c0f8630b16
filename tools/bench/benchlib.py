"""Shared helpers for gatehouse's benchmarks (figures, never tests).

Reuses the process starters the integration tests use, tools/gh (slapd,
memcached, dovecot, certs, config writer, processes stopped by PID).
"""
import argparse
import atexit
import datetime
import json
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
    ap.add_argument("--report", default=os.environ.get("BENCH_REPORT_DIR") or None,
                    help="also save the tables and the lines after them as "
                         "DIR/<benchmark>.json for tools/bench/report.py "
                         "(default $BENCH_REPORT_DIR)")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    os.environ["GATEHOUSE_BUILD"] = a.build
    if a.report:
        report_start(a.report, os.path.splitext(os.path.basename(sys.argv[0]))[0])
    return a


class _Tee:
    """Stdout wrapper: writes through and keeps a copy of every line."""

    def __init__(self, out):
        self.out, self.lines, self._part = out, [], ""

    def write(self, s):
        self._part += s
        *done, self._part = self._part.split("\n")
        self.lines.extend(done)
        return self.out.write(s)

    def flush(self):
        self.out.flush()

    def __getattr__(self, name):
        return getattr(self.out, name)


_report = None   # the running benchmark's recorder (one per process)


def report_start(directory, bench):
    """Record every table() of this run, with the line printed before it (its
    title) and every line printed after the first table (ratios, targets),
    into <directory>/<bench>.json at exit (or at report_save())."""
    global _report
    os.makedirs(directory, exist_ok=True)
    tee = sys.stdout if isinstance(sys.stdout, _Tee) else _Tee(sys.stdout)
    sys.stdout = tee
    _report = {"path": os.path.join(directory, bench + ".json"), "tee": tee,
               "start": len(tee.lines), "bench": bench, "tables": [], "after": None,
               "date": datetime.datetime.now(datetime.timezone.utc)
               .strftime("%Y-%m-%d %H:%M UTC")}
    atexit.register(report_save)


def report_save():
    """Write the recorded tables as JSON (when report_start() ran and a
    table was printed); return the file's path or None."""
    global _report
    r, _report = _report, None
    if r is None or not r["tables"]:
        return None
    if r["tee"]._part:
        r["tee"].lines.append(r["tee"]._part)
        r["tee"]._part = ""
    notes = [ln.rstrip() for ln in r["tee"].lines[r["after"]:] if ln.strip()]
    doc = {"bench": r["bench"], "date": r["date"], "tables": r["tables"], "notes": notes}
    tmp = r["path"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, r["path"])
    return r["path"]


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
    """Print <rows> (lists of str) under <headers> as an aligned table (and
    record it when report_start() ran)."""
    rows = [[str(c) for c in r] for r in rows]
    if _report is not None:
        sys.stdout.flush()
        seen = [ln for ln in _report["tee"].lines[_report["start"]:] if ln.strip()]
        _report["tables"].append({"title": seen[-1].strip() if seen else "",
                                  "headers": [str(h) for h in headers], "rows": rows})
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
         for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w[i]) for i, h in enumerate(headers))
    print(line)
    print("  ".join("-" * x for x in w))
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    sys.stdout.flush()
    if _report is not None and _report["after"] is None:
        _report["after"] = len(_report["tee"].lines)


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
