"""A running gatehouse-spoa started directly on a configuration, with its
Prometheus endpoint read back. Used by the tests and the benchmarks."""
import os
import signal
import urllib.request

from . import procs as gh_procs
from .ports import wait_listening


class Spoa:
    """A running gatehouse-spoa: .port (SPOP), .metrics_port, .proc."""

    def __init__(self, exe, conf, port, metrics_port, d):
        self.conf, self.port, self.metrics_port = conf, port, metrics_port
        self.proc = gh_procs.Proc("gatehouse-spoa", [exe, "-f", "-c", conf],
                                  os.path.join(d, "spoa-%d.log" % port))
        wait_listening(port, proc=self.proc)
        wait_listening(metrics_port, proc=self.proc)

    def metrics(self):
        """Return {metric line name: value} from the Prometheus endpoint."""
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                try:
                    out[k] = float(v)
                except ValueError:
                    pass
        return out

    def stop(self, sig=signal.SIGTERM):
        return self.proc.stop(sig=sig)
