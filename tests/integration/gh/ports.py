"""Free loopback ports and waiting for a listener."""
import socket
import time

_handed_out = set()


def free_port(host="127.0.0.1"):
    """Return a TCP port on <host> that is free now and was not handed out
    before in this process (so two fixtures never get the same one)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(200):
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _handed_out and port >= 1024:
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
