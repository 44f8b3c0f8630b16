"""Fixtures for gatehouse's integration tests.

Everything runs on 127.0.0.1 free high ports in one temporary directory
(kept when GH_KEEP=1), and every process is stopped by its PID: by the
fixture's finalizer, and by an atexit hook if pytest itself dies.

Session:   gh_tmp, ldap_template, mbox_certs
Module:    slapd_shared, dovecots
Function:  slapd, memcached, memcached_pair, slapd_factory, memcached_factory,
           dovecot_factory, make_conf, gatehouse, gh_bin, mailproxy_factory,
           spoa_factory
"""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the process starters the tests share with the demo and the benchmarks (gh)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

from gh import certs as gh_certs  # noqa: E402
from gh import cli as gh_cli  # noqa: E402
from gh import config as gh_config  # noqa: E402
from gh import daemons as gh_daemons  # noqa: E402
from gh import dovecot as gh_dovecot  # noqa: E402
from gh import ports as gh_ports  # noqa: E402
from gh import memcached as gh_memcached  # noqa: E402
from gh import procs as gh_procs  # noqa: E402
from gh import slapd as gh_slapd  # noqa: E402

_counter = [0]


def _subdir(base, prefix):
    _counter[0] += 1
    d = os.path.join(base, "%s-%d" % (prefix, _counter[0]))
    os.makedirs(d)
    os.chmod(d, 0o755)
    return d


def _remove_stale_dirs():
    """Remove /tmp/gh-it-* directories left by runs that were killed (their
    "owner" file names a PID that no longer exists and is over 6 hours
    old). Never touches a directory whose owner still runs, a recent one,
    or one without an owner file."""
    import glob
    import time
    for d in glob.glob(os.path.join(tempfile.gettempdir(), "gh-it-*")):
        try:
            if time.time() - os.stat(os.path.join(d, "owner")).st_mtime < 6 * 3600:
                continue
            with open(os.path.join(d, "owner")) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        try:
            os.kill(pid, 0)
            continue
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            continue


def pytest_configure(config):
    """Register the marks of this suite."""
    config.addinivalue_line("markers", "slow: starts a whole cluster (test_cluster.py); "
                            "-m 'not slow' leaves it out")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Note when the test's setup began: its processes start from here."""
    import time
    item._gh_t0 = time.monotonic()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Append the log tails of the processes a failed test used to its
    report, so that a flake can be diagnosed from the CI output alone."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and hasattr(item, "_gh_t0"):
        tails = gh_procs.tails_since(item._gh_t0)
        if tails:
            rep.sections.append(("gatehouse process logs (%s)" % rep.when, tails))


def pytest_sessionfinish(session, exitstatus):
    """Fail the run when a stopped process's log holds a sanitizer report."""
    gh_procs.stop_all()
    if gh_procs.sanitizer_reports:
        for name, pid, log, text in gh_procs.sanitizer_reports:
            sys.stderr.write("\nSANITIZER REPORT from %s (pid %d, log %s):\n%s\n"
                             % (name, pid, log, text))
        session.exitstatus = 1


@pytest.fixture(scope="session")
def gh_tmp():
    """The session's temporary directory (0755 so dovecot's unprivileged
    processes can traverse it). Removed at the end unless GH_KEEP=1;
    directories of earlier killed runs are removed at the start."""
    _remove_stale_dirs()
    d = tempfile.mkdtemp(prefix="gh-it-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "owner"), "w") as f:
        f.write("%d\n" % os.getpid())
    yield d
    gh_procs.stop_all()
    if os.environ.get("GH_KEEP") != "1":
        shutil.rmtree(d, ignore_errors=True)
    else:
        sys.stderr.write("\nintegration files kept in %s\n" % d)


@pytest.fixture(scope="session")
def ldap_template(gh_tmp):
    """A seeded mdb database (gen_ldif, slapadd): gh.slapd.SlapdTemplate."""
    return gh_slapd.SlapdTemplate(os.path.join(gh_tmp, "ldap-template"))


@pytest.fixture(scope="session")
def mbox_certs(gh_tmp):
    """Certificates: {"ca": gh.certs.CA, "mbox1".."mbox3": PEM signed by the
    CA for that server name, "mail.example.com", "mail.example.org",
    "*.example.net": PEMs signed by the CA, "dir": the directory}."""
    d = os.path.join(gh_tmp, "certs")
    ca = gh_certs.make_ca(d)
    out = {"ca": ca, "dir": d}
    for name in ("mbox1", "mbox2", "mbox3"):
        out[name] = gh_certs.make_cert(d, [name, "localhost", "127.0.0.1"], ca)
    out["mail.example.com"] = gh_certs.make_cert(d, ["mail.example.com"], ca)
    out["mail.example.org"] = gh_certs.make_cert(d, ["mail.example.org"], ca)
    out["*.example.net"] = gh_certs.make_cert(d, ["*.example.net", "example.net"], ca)
    for p in list(out.values()):
        if isinstance(p, str) and p.endswith(".pem"):
            os.chmod(p, 0o644)   # dovecot's config parser reads them as root; tests too
    return out


@pytest.fixture
def slapd_factory(gh_tmp, ldap_template):
    """Call to start another slapd with a fresh copy of the seed data:
    factory(port=None) -> gh.slapd.Slapd. All are stopped at teardown."""
    made = []

    def make(port=None):
        s = gh_slapd.Slapd(_subdir(gh_tmp, "slapd"), ldap_template, port=port)
        made.append(s)
        return s

    yield make
    gh_procs.stop_many([s.proc for s in made])


@pytest.fixture
def slapd(slapd_factory):
    """A slapd of its own for this test (may be stopped, modified)."""
    return slapd_factory()


@pytest.fixture(scope="module")
def slapd_shared(gh_tmp, ldap_template):
    """A slapd shared by one module's tests: do not stop or modify it."""
    s = gh_slapd.Slapd(_subdir(gh_tmp, "slapd-shared"), ldap_template)
    yield s
    s.stop()


@pytest.fixture
def memcached_factory(gh_tmp):
    """Call to start a memcached: factory() -> gh.memcached.Memcached."""
    made = []

    def make(port=None):
        m = gh_memcached.Memcached(_subdir(gh_tmp, "memcached"), port=port)
        made.append(m)
        return m

    yield make
    for m in made:
        m.stop()


@pytest.fixture
def memcached(memcached_factory):
    """One empty memcached of this test's own."""
    return memcached_factory()


@pytest.fixture
def memcached_pair(memcached_factory):
    """Two memcached servers: [Memcached, Memcached]."""
    return [memcached_factory(), memcached_factory()]


@pytest.fixture
def dovecot_factory(gh_tmp, mbox_certs):
    """Call to start a dovecot: factory(name, tls=True, failure_delay="0")
    -> gh.dovecot.Dovecot (name is a mailbox server: mbox1, mbox2, mbox3;
    failure_delay is Dovecot's auth_failure_delay, e.g. "1 secs")."""
    made = []

    def make(name, tls=True, failure_delay="0"):
        dv = gh_dovecot.Dovecot(_subdir(gh_tmp, "dovecot-" + name), name,
                                cert=mbox_certs[name] if tls else None,
                                failure_delay=failure_delay)
        made.append(dv)
        return dv

    yield make
    gh_procs.stop_many([dv.proc for dv in made])


@pytest.fixture(scope="module")
def dovecots(gh_tmp, mbox_certs):
    """Three dovecots, one per mailbox server, shared by a module:
    {"mbox1": Dovecot, "mbox2": ..., "mbox3": ...}. Do not stop them; use
    dovecot_factory for a server a test kills."""
    made = {}
    try:
        for name in ("mbox1", "mbox2", "mbox3"):
            made[name] = gh_dovecot.Dovecot(_subdir(gh_tmp, "dovecot-" + name), name,
                                            cert=mbox_certs[name])
        yield made
    finally:
        gh_procs.stop_many([dv.proc for dv in made.values()])


@pytest.fixture
def make_conf(gh_tmp):
    """Write a gatehouse.conf: make_conf(ldap=[Slapd or uri...],
    memcached=[Memcached or "ip:port"...], servers=None (ROUTE_SERVERS) or
    {name: keys}, **sections) -> path. Keyword sections (throttle={...},
    memcached_opts={...} for [memcached] keys, ldap_opts={...}, spoa={...},
    mailproxy={...}, log={...}) are merged over the defaults."""

    def make(ldap=(), memcached=(), servers=None, memcached_opts=None, ldap_opts=None,
             **secs):
        uris, pwfile = [], None
        for s in ldap:
            if isinstance(s, str):
                uris.append(s)
            else:
                uris.append(s.uri)
                pwfile = pwfile or s.bind_pw_file
        if pwfile is None and uris:
            pwfile = os.path.join(gh_tmp, "bind.pw")
            with open(pwfile, "w") as f:
                f.write(gh_slapd.BIND_PW + "\n")
        mcs = [m if isinstance(m, str) else m.address for m in memcached]
        overrides = dict(secs)
        if memcached_opts:
            overrides["memcached"] = memcached_opts
        if ldap_opts:
            overrides["ldap"] = ldap_opts
        secs_all = gh_config.sections(uris, pwfile, mcs, servers, overrides)
        d = _subdir(gh_tmp, "conf")
        return gh_config.write(os.path.join(d, "gatehouse.conf"), secs_all)

    return make


@pytest.fixture(scope="session")
def gh_bin():
    """Return the path of a built binary, skipping the test when it is
    missing: gh_bin("gatehouse")."""

    def find(name):
        p = gh_cli.binary(name)
        if not os.access(p, os.X_OK):
            pytest.skip("%s not built (GATEHOUSE_BUILD=%s)" % (name, gh_cli.build_dir()))
        return p

    return find


@pytest.fixture
def gatehouse(gh_bin):
    """Bind the CLI to a config: gatehouse(conf_path) -> gh.cli.Gatehouse."""
    exe = gh_bin("gatehouse")
    return lambda conf: gh_cli.Gatehouse(conf, exe=exe)


@pytest.fixture
def mailproxy_factory(gh_tmp, gh_bin, mbox_certs, make_conf):
    """Start gatehouse-mailproxy: factory(ldap=[Slapd], memcached=[...],
    dovecots={name: Dovecot}, mailproxy={extra [mailproxy] keys},
    throttle={...}, **other sections) -> gh.daemons.MailProxy with .imap,
    .imaps, .pop3, .pop3s ports and .conf. Its certs/ holds the
    mail.example.com (default), mail.example.org and *.example.net PEMs,
    signed by mbox_certs["ca"]. cleartext_login is on unless overridden."""
    exe = gh_bin("gatehouse-mailproxy")
    made = []

    def make(ldap=(), memcached=(), dovecots=None, servers=None, mailproxy=None, **secs):
        d = _subdir(gh_tmp, "mailproxy")
        cdir = gh_daemons.certs_dir(os.path.join(d, "certs"), [
            mbox_certs["mail.example.com"], mbox_certs["mail.example.org"],
            mbox_certs["*.example.net"]])
        p = {k: gh_ports.free_port() for k in ("imap", "imaps", "pop3", "pop3s")}
        keys = {k: "127.0.0.1:%d" % v for k, v in p.items()}
        keys.update({"certs": cdir, "cleartext_login": True, "upstream_ca": mbox_certs["ca"].cert})
        keys.update(mailproxy or {})
        for k in ("imap", "imaps", "pop3", "pop3s"):
            if keys.get(k) is None:
                p[k] = 0
        if servers is None and dovecots is not None:
            servers = gh_config.dovecot_servers(dovecots)
        conf = make_conf(ldap=ldap, memcached=memcached, servers=servers, mailproxy=keys,
                         **secs)
        mp = gh_daemons.MailProxy(d, conf, exe=exe, **p)
        made.append(mp)
        return mp

    yield make
    gh_procs.stop_many([m.proc for m in made])


@pytest.fixture
def spoa_factory(gh_tmp, gh_bin, make_conf):
    """Start gatehouse-spoa: factory(ldap=[...], memcached=[...],
    servers=None, spoa={extra [spoa] keys}, **sections) ->
    gh.daemons.Spoa with .port (its SPOP listener) and .conf."""
    exe = gh_bin("gatehouse-spoa")
    made = []

    def make(ldap=(), memcached=(), servers=None, spoa=None, **secs):
        d = _subdir(gh_tmp, "spoa")
        port = gh_ports.free_port()
        keys = {"listen": "127.0.0.1:%d" % port, "threads": 2}
        keys.update(spoa or {})
        conf = make_conf(ldap=ldap, memcached=memcached, servers=servers, spoa=keys, **secs)
        sp = gh_daemons.Spoa(d, conf, port, exe=exe)
        made.append(sp)
        return sp

    yield make
    gh_procs.stop_many([s.proc for s in made])
