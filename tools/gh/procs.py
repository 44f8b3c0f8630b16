"""Start and stop processes by PID, with cleanup even when a test fails.

Every Proc registers itself; stop_all() (called by the session fixture and
by atexit) stops whatever is still running, each by its own PID.
"""
import atexit
import os
import signal as _signal
import subprocess
import time

_live = []
# Every Proc ever started in this run, for the log tails of a failed test.
_all = []

# Sanitizer reports found in the logs of stopped processes: (name, pid,
# excerpt). The test session fails when any is found (see conftest.py), so
# `make check-asan` catches a leak or an overflow in a daemon even when no
# test saw the daemon misbehave.
sanitizer_reports = []
_SANITIZER_MARKS = (b"ERROR: AddressSanitizer", b"ERROR: LeakSanitizer", b"runtime error:")

try:
    import ctypes
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:   # pragma: no cover
    _libc = None


def _die_with_parent():
    """In the child: get SIGTERM when the test process dies, even by
    SIGKILL, so that no server outlives the test run."""
    if _libc is not None:
        _libc.prctl(1, int(_signal.SIGTERM), 0, 0, 0)   # PR_SET_PDEATHSIG


class Proc:
    """A child process whose stdout and stderr go to <log>."""

    def __init__(self, name, argv, log, env=None, cwd=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log = str(log)
        self._logf = open(self.log, "ab")
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._logf,
                                      stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                      start_new_session=True,
                                      preexec_fn=_die_with_parent)
        self.pid = self.popen.pid
        self.started = time.monotonic()
        self.stopped = None
        _live.append(self)
        _all.append(self)

    def alive(self):
        """Return True while the process runs."""
        return self.popen.poll() is None

    def returncode(self):
        """Return the exit status, or None while running."""
        return self.popen.poll()

    def log_tail(self, n=4000):
        """Return the last <n> bytes of the log as text."""
        try:
            with open(self.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def signal(self, sig):
        """Send <sig> to the process (by PID) if it still runs."""
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout=5.0, sig=_signal.SIGTERM):
        """Stop the process by PID: <sig>, then SIGKILL after <timeout> s.
        Returns the exit status."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
                os.kill(self.pid, _signal.SIGCONT)   # in case a test froze it
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        if self in _live:
            _live.remove(self)
        if self.stopped is None:
            self.stopped = time.monotonic()
        if not self._logf.closed:
            self._logf.close()
            self._scan_sanitizer()
        return self.popen.returncode

    def _scan_sanitizer(self):
        """Record sanitizer reports in this process's log."""
        try:
            with open(self.log, "rb") as f:
                data = f.read()
        except OSError:
            return
        for mark in _SANITIZER_MARKS:
            i = data.find(mark)
            if i >= 0:
                sanitizer_reports.append((self.name, self.pid, self.log,
                                          data[i:i + 1500].decode("utf-8", "replace")))
                return

    def kill(self):
        """Stop the process at once with SIGKILL."""
        return self.stop(sig=_signal.SIGKILL)


def tails_since(t0, n=3000, limit=12):
    """Return the log tails (<n> bytes each) of the processes that ran at
    some time after monotonic time <t0>: the ones a test started or used.
    At most <limit> processes, newest first."""
    used = [p for p in _all if p.stopped is None or p.stopped >= t0]
    out = []
    for p in reversed(used[-limit:]):
        state = "running" if p.alive() else "exited %s" % p.returncode()
        out.append("---- %s (pid %d, %s) %s ----\n%s"
                   % (p.name, p.pid, state, p.log, p.log_tail(n).rstrip()))
    if len(used) > limit:
        out.append("(%d older processes not shown)" % (len(used) - limit))
    return "\n".join(out)


def wait_pidfile_gone(pid, timeout=5.0):
    """Wait until process <pid> (not our child) is gone; SIGKILL it after
    <timeout>."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_many(plist, timeout=5.0):
    """Stop the Procs in <plist> together: SIGTERM to each (by PID), then
    wait for each (SIGKILL after <timeout>). Faster than one after another
    for servers that take a second to stop (dovecot)."""
    plist = [p for p in plist if p is not None]
    for p in plist:
        try:
            p.signal(_signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in plist:
        try:
            p.stop(timeout=timeout)
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


def stop_all():
    """Stop every process still registered."""
    stop_many(list(reversed(_live)), timeout=3.0)


atexit.register(stop_all)
