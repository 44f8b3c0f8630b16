"""Real memcached servers on free loopback ports, and a tiny text-protocol
client for checking keys from tests."""
import os
import socket

from . import ports, procs

MEMCACHED = "/usr/bin/memcached"


class Memcached:
    """One memcached on 127.0.0.1:<port>, log in <d>/memcached-<port>.log."""

    def __init__(self, d, port=None):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or ports.free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.log = os.path.join(self.dir, "memcached-%d.log" % self.port)
        self.proc = None
        self.start()

    def start(self):
        """Start (again, empty) on the same port."""
        if self.proc is not None and self.proc.alive():
            return
        argv = [MEMCACHED, "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "32",
                "-c", "1024", "-t", "2"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]
        self.proc = procs.Proc("memcached", argv, self.log)
        ports.wait_listening(self.port, proc=self.proc)

    def stop(self):
        """Stop by PID. SIGKILL: memcached keeps nothing worth a clean
        shutdown, and SIGTERM costs 0.7 s."""
        if self.proc is not None:
            self.proc.kill()

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def _cmd(self, line, want_value=False):
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
            s.sendall(line.encode() + b"\r\n")
            buf = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if not want_value and buf.endswith(b"\r\n"):
                    break
                if want_value and (buf.endswith(b"END\r\n") or buf.startswith(b"ERROR")
                                   or buf.startswith(b"CLIENT_ERROR")):
                    break
            return buf

    def get(self, key):
        """Return the value of <key> as text, or None when absent."""
        buf = self._cmd("get " + key, want_value=True)
        if not buf.startswith(b"VALUE "):
            return None
        header, rest = buf.split(b"\r\n", 1)
        n = int(header.split()[3])
        return rest[:n].decode("utf-8", "replace")

    def set(self, key, value, ttl=0):
        """Store <value> under <key>."""
        data = value.encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
            s.sendall(b"set %s 0 %d %d\r\n%s\r\n" % (key.encode(), ttl, len(data), data))
            return s.recv(100).startswith(b"STORED")

    def delete(self, key):
        return self._cmd("delete " + key).startswith(b"DELETED")

    def flush(self):
        """Empty the cache."""
        return self._cmd("flush_all").startswith(b"OK")

    def stats(self):
        """Return the 'stats' counters as a dict of strings."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=3) as s:
            s.sendall(b"stats\r\n")
            buf = b""
            while not buf.endswith(b"END\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        out = {}
        for line in buf.decode().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "STAT":
                out[parts[1]] = parts[2]
        return out


def find_key(servers, key):
    """Return (server, value) for the first of <servers> holding <key>, or
    (None, None)."""
    for m in servers:
        if m.alive():
            v = m.get(key)
            if v is not None:
                return m, v
    return None, None
