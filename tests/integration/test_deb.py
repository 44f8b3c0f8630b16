"""The Debian package (`make deb`, debian/): what it ships, and what an
operator's install, upgrade, removal and purge do with it.

The package is built once per module with `make deb BUILD=<tmp>` (about
1.5 min on 2 busy cores: dpkg-buildpackage and lintian, whose errors and
warnings fail the build). It is installed with the real dpkg into a
throwaway root (`dpkg --root=DIR --force-not-root --force-depends
--force-script-chrootless`), with the maintainer scripts run outside a
chroot (the root has no shell) and the commands that would change this
machine (adduser, chown to a group this machine may not have, systemctl)
replaced by stubs that record their arguments; chmod and rm act for real,
under DIR ($DPKG_ROOT). Skipped without dpkg-buildpackage, debhelper or
lintian (tools/deps.sh installs them); marked slow.
"""
import glob
import os
import shutil
import stat
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("dpkg-buildpackage", "dh", "lintian")),
                       reason="needs dpkg-buildpackage, debhelper and lintian (tools/deps.sh)"),
]

BINARIES = ("gatehouse", "gatehouse-spoa", "gatehouse-mailproxy")
CONFFILES = {
    "/etc/gatehouse/gatehouse.conf",
    "/etc/gatehouse/haproxy/haproxy.cfg",
    "/etc/gatehouse/haproxy/haproxy.env",
    "/etc/gatehouse/haproxy/spoe-gatehouse.conf",
} | {
    # every error page HAProxy is configured with
    "/etc/gatehouse/haproxy/errors/" + f for f in os.listdir(os.path.join(REPO, "haproxy", "errors"))
}
# Every command of the maintainer scripts that would act on this machine:
# its exit status, as on a machine where gatehouse was never installed.
STUBS = {
    "adduser": "0", "chown": "0", "deb-systemd-invoke": "0", "systemctl": "0",
    "getent": "2",               # no user gatehouse yet
    "dpkg-statoverride": "1",    # no override
    # was-enabled defaults to true (a new install enables what dh enables);
    # debian-installed is false until the package's units were seen
    "deb-systemd-helper": '$(case "$*" in *debian-installed*) echo 1;; *) echo 0;; esac)',
}


def run(cmd, **kw):
    """Run <cmd>; return the CompletedProcess (text), failing with its output."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 120), **kw)
    assert p.returncode == 0, "%s: rc %d\n%s\n%s" % (cmd, p.returncode, p.stdout, p.stderr)
    return p


def git_status():
    """The checkout's `git status --porcelain`, or None outside git."""
    p = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--ignored"],
                       capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else None


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """Build the package with `make deb` into a fresh BUILD directory;
    return (path of gatehouse_*.deb, make's output). GH_DEB=FILE checks
    that package instead (make's output is then None)."""
    if os.environ.get("GH_DEB"):
        return os.path.abspath(os.environ["GH_DEB"]), None
    build = str(tmp_path_factory.mktemp("deb-build"))
    before = git_status()
    p = subprocess.run(["make", "-C", REPO, "BUILD=" + build, "deb"],
                       capture_output=True, text=True, timeout=900)
    out = p.stdout + p.stderr
    assert p.returncode == 0, "make deb failed:\n" + out[-6000:]
    assert git_status() == before, "make deb changed the checkout"
    debs = glob.glob(os.path.join(build, "gatehouse_*_*.deb"))
    assert len(debs) == 1, (debs, out[-3000:])
    return debs[0], out


def contents(deb_path):
    """{path: (mode string, owner/group)} of the package's data archive."""
    out = {}
    for line in run(["dpkg-deb", "-c", deb_path]).stdout.splitlines():
        f = line.split()
        path = f[5][1:].rstrip("/") or "/"
        out[path] = (f[0], f[1])
    return out


def test_lintian_clean_and_checkout_untouched(deb):
    path, out = deb
    if out is None:
        p = subprocess.run(["lintian", "--fail-on", "error,warning", path],
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stdout + p.stderr
        return
    # `make deb` runs lintian --fail-on error,warning: nothing reported
    # but what debian/gatehouse.lintian-overrides explains
    assert "lintian --fail-on error,warning" in out
    assert "\nE: " not in out and "\nW: " not in out, out[-3000:]


def test_files_modes_owners(deb):
    c = contents(deb[0])
    for b in BINARIES:
        assert c["/usr/sbin/" + b] == ("-rwxr-xr-x", "root/root"), b
    assert not any(p.startswith("/usr/local") for p in c)
    # private keys: never world-readable, even before the postinst runs
    assert c["/etc/gatehouse/certs"] == ("drwxr-x---", "root/root")
    assert c["/etc/gatehouse/gatehouse.conf"][1] == "root/root"
    for f in CONFFILES:
        assert f in c, f
    for u in ("gatehouse-mailproxy.service", "gatehouse-spoa@.service"):
        assert c["/lib/systemd/system/" + u] == ("-rw-r--r--", "root/root"), u


def test_control_conffiles_and_depends(deb):
    d = deb[0]
    conffiles = run(["sh", "-c", "dpkg-deb --ctrl-tarfile '%s' | tar -xOf - ./conffiles" % d])
    assert set(conffiles.stdout.split()) == CONFFILES
    depends = run(["dpkg-deb", "-f", d, "Depends"]).stdout
    for lib in ("haproxy", "openssl", "adduser", "libldap", "libmemcached", "libev",
                "libssl", "libinih", "libbsd"):
        assert lib in depends, (lib, depends)
    assert "liblber" not in depends   # linked --as-needed


def test_units_name_installed_paths(deb, tmp_path):
    run(["dpkg-deb", "-x", deb[0], str(tmp_path)])
    for u in ("gatehouse-mailproxy.service", "gatehouse-spoa@.service"):
        text = (tmp_path / "lib/systemd/system" / u).read_text()
        assert "/usr/local" not in text
        name = u.split(".")[0].rstrip("@")
        assert "ExecStart=/usr/sbin/%s -c /etc/gatehouse/gatehouse.conf -f" % name in text
        assert "ExecStartPre=/usr/sbin/%s -c /etc/gatehouse/gatehouse.conf -t" % name in text
        assert "User=gatehouse" in text
    # the manual install's units keep /usr/local/sbin
    src = open(os.path.join(REPO, "tools/systemd/gatehouse-mailproxy.service")).read()
    assert "ExecStart=/usr/local/sbin/gatehouse-mailproxy" in src


class Root:
    """A throwaway root that the real dpkg installs into, with stubbed
    maintainer-script commands that log to <dir>/stubs.log."""

    def __init__(self, base):
        self.dir = os.path.join(base, "root")
        for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"):
            os.makedirs(os.path.join(self.dir, d))
        for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
            open(os.path.join(self.dir, f), "w").close()
        self.log = os.path.join(base, "stubs.log")
        self.stubs = os.path.join(base, "stubs")
        os.makedirs(self.stubs)
        for name, rc in STUBS.items():
            self.stub(name, rc)

    def stub(self, name, rc):
        """(Re)write the stub <name>: log its arguments, exit <rc>."""
        p = os.path.join(self.stubs, name)
        with open(p, "w") as fp:
            fp.write('#!/bin/sh\necho "%s $*" >> %s\nexit %s\n' % (name, self.log, rc))
        os.chmod(p, 0o755)

    def path(self, p):
        return os.path.join(self.dir, p.lstrip("/"))

    def dpkg(self, *args):
        env = dict(os.environ, PATH=self.stubs + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        return run(["dpkg", "--root=" + self.dir, "--force-not-root", "--force-depends",
                    "--force-script-chrootless", "--force-confold", *args], env=env)

    def status(self):
        p = subprocess.run(["dpkg-query", "--root=" + self.dir, "-W",
                            "-f=${db:Status-Abbrev}|${Conffiles}", "gatehouse"],
                           capture_output=True, text=True)
        return p.stdout

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as fp:
            lines = fp.read().splitlines()
        os.unlink(self.log)
        return lines


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_install_check_upgrade_remove_purge(deb, tmp_path, mbox_certs):
    r = Root(str(tmp_path))
    conf = r.path("/etc/gatehouse/gatehouse.conf")

    # install, as `dpkg -i` does: unpack, then the postinst
    r.dpkg("-i", deb[0])
    assert r.status().startswith("ii ")
    listed = {line.split()[0] for line in r.status().split("|", 1)[1].strip().splitlines()}
    assert listed == CONFFILES
    calls = r.calls()
    adduser = [c for c in calls if c.startswith("adduser ")]
    assert len(adduser) == 1 and "--system" in adduser[0] and "--group" in adduser[0] \
        and adduser[0].endswith(" gatehouse"), calls
    assert "chown root:gatehouse %s" % conf in calls, calls
    assert "chown root:gatehouse %s" % r.path("/etc/gatehouse/certs") in calls, calls
    assert mode(conf) == 0o640
    assert mode(r.path("/etc/gatehouse/certs")) == 0o750
    for b in BINARIES:
        assert mode(r.path("/usr/sbin/" + b)) == 0o755
    # not enabled or started (the shipped configuration names example
    # servers); and under $DPKG_ROOT no script touches this machine's systemd
    assert not any(c.startswith(("systemctl", "deb-systemd-invoke")) for c in calls), calls
    assert not any(" enable " in c for c in calls), calls

    # the installed binaries check the installed configuration
    spoa = r.path("/usr/sbin/gatehouse-spoa")
    mp = r.path("/usr/sbin/gatehouse-mailproxy")
    cli = r.path("/usr/sbin/gatehouse")
    assert "is valid" in run([spoa, "-t", "-c", conf]).stdout
    assert "configuration OK" in run([mp, "-t", "-c", conf]).stdout
    run([cli, "-c", conf, "check"])
    # ... and -t does check it: the same file with a misspelt key fails
    broken = str(tmp_path / "broken.conf")
    with open(conf) as src, open(broken, "w") as dst:
        dst.write(src.read().replace("#level = info", "levle = info", 1))
    for b in (spoa, mp):
        p = subprocess.run([b, "-t", "-c", broken], capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and "levle" in p.stderr, (b, p.stdout, p.stderr)

    # HAProxy accepts the installed haproxy.cfg with the installed
    # haproxy.env (its paths moved under the root), the server list the
    # installed CLI writes from the installed gatehouse.conf, and a
    # certificate dropped into certs/
    hdir = r.path("/etc/gatehouse/haproxy")
    run([cli, "-c", conf, "haproxy-servers", "-o", hdir])
    shutil.copy(mbox_certs["mail.example.com"], r.path("/etc/gatehouse/certs/00-default.pem"))
    env = dict(os.environ)
    with open(os.path.join(hdir, "haproxy.env")) as fp:
        for line in fp:
            line = line.strip()
            if line and not line.startswith("#"):
                k, v = line.split("=", 1)
                env[k] = v.strip('"').replace("/etc/gatehouse", r.path("/etc/gatehouse"))
    assert env["CONFIG"] == os.path.join(hdir, "haproxy.cfg")
    extra = env["EXTRAOPTS"].split()
    assert extra[-2:] == ["-f", os.path.join(hdir, "gatehouse-servers.cfg")]
    p = subprocess.run(["haproxy", "-c", "-f", env["CONFIG"]] + extra[-2:], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr

    # upgrade (the same version again: unpack over, postinst configure with
    # the old version): the operator's edit of a conffile is kept, and so
    # are the owners and modes
    with open(conf, "a") as fp:
        fp.write("\n# edited by the operator\n")
    r.stub("getent", "0")    # the user exists now
    r.dpkg("-i", deb[0])
    assert r.status().startswith("ii ")
    assert open(conf).read().endswith("# edited by the operator\n")
    calls = r.calls()
    assert "getent passwd gatehouse" in calls
    assert not any(c.startswith("adduser ") for c in calls), calls
    assert "chown root:gatehouse %s" % conf in calls, calls
    assert mode(conf) == 0o640 and mode(r.path("/etc/gatehouse/certs")) == 0o750
    # an upgrade does not restart the daemons (the operator does, one by one)
    assert not any("restart" in c for c in calls), calls

    # remove: programs go, conffiles stay
    r.dpkg("-r", "gatehouse")
    assert r.status().startswith("rc ")
    for b in BINARIES:
        assert not os.path.exists(r.path("/usr/sbin/" + b))
    assert os.path.exists(conf) and os.path.exists(os.path.join(hdir, "haproxy.cfg"))
    assert r.calls() == []   # nothing to stop or disable under $DPKG_ROOT

    # purge: conffiles go; the keys in certs/ and the generated files stay
    r.dpkg("--purge", "gatehouse")
    assert r.status() == ""
    for f in CONFFILES:
        assert not os.path.exists(r.path(f)), f
    assert os.path.exists(r.path("/etc/gatehouse/certs/00-default.pem"))
    assert os.path.exists(os.path.join(hdir, "gatehouse-servers.cfg"))
