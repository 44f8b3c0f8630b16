"""Free loopback ports and waiting for a listener.

Ports are drawn at random below the kernel's ephemeral range, so that an
outgoing connection (which takes an ephemeral port) can never grab a port a
fixture is about to listen on. A port is also claimed in a directory all
processes share (/tmp/gh-ports/<port> holding the claimer's PID) between the
moment it is found free and the end of the claiming process, so that the
demo's process, the test process and a second test run on the same machine
never hand out the same port while a server is still starting on it.
"""
import atexit
import os
import random
import socket
import tempfile
import time

_handed_out = set()
_rng = random.SystemRandom()
_CLAIMS = os.path.join(tempfile.gettempdir(), "gh-ports")
_claimed = []


def _claim(port):
    """Claim <port> for this process; False when a live process holds it."""
    path = os.path.join(_CLAIMS, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or "0")
                if pid > 0:
                    os.kill(pid, 0)
                    return False          # a live process holds it
            except ProcessLookupError:
                pass                      # its claimer is gone: take it over
            except (OSError, ValueError):
                return False
            try:
                os.unlink(path)
            except OSError:
                return False
            continue
        with os.fdopen(fd, "w") as f:
            f.write("%d\n" % os.getpid())
        _claimed.append(path)
        return True
    return False


@atexit.register
def _release_claims():
    """Remove this process's claims at exit."""
    for path in _claimed:
        try:
            with open(path) as f:
                if f.read().strip() != str(os.getpid()):
                    continue
            os.unlink(path)
        except OSError:
            pass


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_LOW = 20000
_HIGH = max(_LOW + 1000, min(_ephemeral_low(), 65536)) - 1


def _can_bind(fam, host, port):
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def free_port(host="127.0.0.1"):
    """Return a TCP port on <host> that is free now and was not handed out
    before in this process (so two fixtures never get the same one)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    os.makedirs(_CLAIMS, mode=0o1777, exist_ok=True)
    for _ in range(500):
        port = _rng.randint(_LOW, _HIGH)
        if port not in _handed_out and _can_bind(fam, host, port) and _claim(port):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def closed_port(host="127.0.0.1"):
    """Return a port where nothing listens (connections are refused)."""
    return free_port(host)


def wait_listening(port, host="127.0.0.1", timeout=10.0, proc=None):
    """Wait until a TCP connect to <host>:<port> succeeds. Raise
    RuntimeError after <timeout> seconds, or at once when <proc> (a Proc)
    has exited."""
    deadline = time.monotonic() + timeout
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        try:
            with socket.socket(fam, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                return
        except OSError:
            pass
        if proc is not None and not proc.alive():
            raise RuntimeError("%s exited (rc %s) before listening on %s:%d; log %s:\n%s"
                               % (proc.name, proc.returncode(), host, port, proc.log,
                                  proc.log_tail()))
        if time.monotonic() > deadline:
            raise RuntimeError("nothing listening on %s:%d after %.1fs" % (host, port, timeout))
        time.sleep(0.02)
