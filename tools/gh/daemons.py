"""gatehouse's own daemons (gatehouse-mailproxy, gatehouse-spoa) as test
processes: started in the foreground with -f -c CONF, log in <dir>/<name>.log,
ready when their listeners accept, stopped by PID."""
import os
import shutil
import signal

from . import cli, ports, procs


def certs_dir(d, pems):
    """Make directory <d> holding copies of the PEM files <pems> (in order:
    the first is renamed 00-default.pem so it is the default). Returns <d>."""
    os.makedirs(d, exist_ok=True)
    for i, p in enumerate(pems):
        name = "00-default.pem" if i == 0 else os.path.basename(p)
        shutil.copyfile(p, os.path.join(d, name))
        os.chmod(os.path.join(d, name), 0o600)
    return d


class Daemon:
    """A gatehouse daemon <exe_name> with config <conf>, waiting for TCP
    <listen_ports> on <host> (127.0.0.1) before returning."""

    def __init__(self, d, exe_name, conf, listen_ports=(), exe=None, env=None,
                 host="127.0.0.1"):
        self.dir = str(d)
        os.makedirs(self.dir, exist_ok=True)
        self.name = exe_name
        self.exe = exe or cli.binary(exe_name)
        self.conf = str(conf)
        self.ports = [p for p in listen_ports if p]
        self.log = os.path.join(self.dir, exe_name + ".log")
        self.env = env
        self.host = host          # the address its listeners are on
        self.proc = None
        self.start()

    def start(self):
        """Start (again) and wait until every listener accepts."""
        if self.proc is not None and self.proc.alive():
            return
        self.proc = procs.Proc(self.name, [self.exe, "-f", "-c", self.conf], self.log,
                               env=self.env)
        for p in self.ports:
            ports.wait_listening(p, self.host, proc=self.proc)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Stop by PID; returns the exit status."""
        return self.proc.stop(timeout=timeout, sig=sig) if self.proc else None

    def reload(self):
        """Send SIGHUP."""
        self.proc.signal(signal.SIGHUP)

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def log_text(self):
        try:
            with open(self.log, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class MailProxy(Daemon):
    """gatehouse-mailproxy; .imap .imaps .pop3 .pop3s are its ports."""

    def __init__(self, d, conf, imap=0, imaps=0, pop3=0, pop3s=0, **kw):
        self.imap, self.imaps, self.pop3, self.pop3s = imap, imaps, pop3, pop3s
        super().__init__(d, "gatehouse-mailproxy", conf, (imap, imaps, pop3, pop3s), **kw)


class Spoa(Daemon):
    """gatehouse-spoa; .port is its SPOP listener."""

    def __init__(self, d, conf, port, **kw):
        self.port = port
        super().__init__(d, "gatehouse-spoa", conf, (port,), **kw)
