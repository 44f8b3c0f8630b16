"""Run the `gatehouse` operator command against a config file.

Exit codes (DESIGN/issue 2): 0 found or done, 1 unknown or refused, 2
temporary failure or error. With --json the command prints one JSON object;
Result.data holds it (or None when stdout was not JSON).
"""
import json
import os
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def build_dir():
    """Return $GATEHOUSE_BUILD or <repo>/build."""
    return os.environ.get("GATEHOUSE_BUILD") or os.path.join(REPO, "build")


def binary(name):
    """Return the path of built binary <name> (may not exist)."""
    return os.path.join(build_dir(), name)


class Result:
    """One run: rc, stdout, stderr, data (parsed JSON or None)."""

    def __init__(self, argv, rc, stdout, stderr):
        self.argv, self.rc, self.stdout, self.stderr = argv, rc, stdout, stderr
        self.data = None
        try:
            self.data = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            self.data = None

    def get(self, key, default=None):
        """Return field <key> of the JSON answer (looking one level down in
        nested objects too)."""
        if isinstance(self.data, dict):
            if key in self.data:
                return self.data[key]
            for v in self.data.values():
                if isinstance(v, dict) and key in v:
                    return v[key]
        return default

    @property
    def source(self):
        """Where a route came from: local, memcached, ldap (or None)."""
        return self.get("source")

    @property
    def server(self):
        return self.get("server")

    @property
    def status(self):
        return self.get("status")

    def __repr__(self):
        return "Result(%s rc=%d stdout=%r stderr=%r)" % (" ".join(self.argv[-4:]), self.rc,
                                                        self.stdout[-800:], self.stderr[-1500:])


class Gatehouse:
    """The CLI bound to config <conf>."""

    def __init__(self, conf, exe=None, env=None):
        # GH_CLI_VERBOSE=1: pass -v (debug log on stderr) to every run
        self.opts = ["-v"] if os.environ.get("GH_CLI_VERBOSE") == "1" else []
        self.conf = str(conf)
        self.exe = exe or binary("gatehouse")
        self.env = env

    def run(self, *args, json_out=True, timeout=30, stdin=None):
        """Run `gatehouse -c CONF [--json] ARGS...`. Returns a Result."""
        argv = [self.exe, "-c", self.conf] + self.opts + (["--json"] if json_out else []) + \
            [str(a) for a in args]
        r = subprocess.run(argv, capture_output=True, timeout=timeout, env=self.env,
                           input=stdin.encode() if stdin is not None else None)
        return Result(argv, r.returncode, r.stdout.decode("utf-8", "replace"),
                      r.stderr.decode("utf-8", "replace"))

    def route(self, name, proto=None):
        return self.run("route", name, *(["--proto", proto] if proto else []))

    def route_id(self, ident, proto=None):
        return self.run("route", "--id", ident, *(["--proto", proto] if proto else []))

    def purge(self, *names):
        return self.run("purge", *names)

    def throttle(self, action, ip, name=None):
        return self.run("throttle", action, ip, *([name] if name else []))

    def check(self):
        return self.run("check")

    def popen_throttle_check(self, ip, name=None):
        """Start `throttle check IP [NAME]` without waiting (for races)."""
        argv = [self.exe, "-c", self.conf] + self.opts + ["--json", "throttle", "check", ip] + \
            ([name] if name else [])
        return argv, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      env=self.env)
