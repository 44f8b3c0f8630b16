"""Fixtures for the cluster tests: two gatehouse nodes as one edge
(gh.cluster.Cluster, the same code `make run NODES=2` starts).

Import in a test module with `from cluster_fixtures import *  # noqa`.

cluster (module scope) -> gh.cluster.Cluster with .nodes (two, on 127.0.0.11
and 127.0.0.12), .memcached (two), .provider and .replica (slapd),
.dovecots and .mailboxes (mbox1..mbox3). A test that stops a shared server
starts it again before it ends (restart() below), so the next test finds
the whole cluster.
"""
import base64
import imaplib
import os
import shutil
import urllib.parse

import pytest

from gh import cli as gh_cli
from gh import cluster as gh_cluster
from gh.slapd import gen_ldif

__all__ = ["cluster", "CLUSTER_THROTTLE", "imap_login", "http_login", "password",
           "cli_of", "basic"]

# user_max: the limit the cross-node throttle test races for
CLUSTER_THROTTLE = {"user_max": 6, "user_ttl": 600}


def password(mail):
    """Return the seeded password of <mail>."""
    return gen_ldif.password_for(mail)


@pytest.fixture(scope="module")
def cluster(gh_tmp, gh_bin, ldap_template, mbox_certs):
    """Two nodes, two memcached servers, an LDAP provider and its replica,
    three mailbox servers: gh.cluster.Cluster (stopped at the end of the
    module)."""
    bins = {n: gh_bin(n) for n in ("gatehouse-spoa", "gatehouse-mailproxy", "gatehouse")}
    d = os.path.join(gh_tmp, "cluster-%d" % os.getpid())
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    site = os.path.join(d, "site-certs")
    os.makedirs(site, exist_ok=True)
    shutil.copy(mbox_certs["mail.example.com"], os.path.join(site, "00-mail.example.com.pem"))
    shutil.copy(mbox_certs["mail.example.org"], os.path.join(site, "mail.example.org.pem"))
    c = gh_cluster.Cluster(d, 2, ldap_template, mbox_certs["ca"],
                           {n: mbox_certs[n] for n in gh_cluster.MBOX}, site, bins,
                           overrides={"throttle": CLUSTER_THROTTLE,
                                      "memcached": {"timeout": "1s"}})
    c.gatehouse_exe = bins["gatehouse"]
    try:
        c.wait_ready()
        yield c
    finally:
        c.stop()


def cli_of(cluster, node):
    """The `gatehouse` command bound to <node>'s configuration."""
    return gh_cli.Gatehouse(node.conf, exe=cluster.gatehouse_exe)


def imap_login(node, user, pw=None, timeout=15):
    """Log in as <user> over IMAP through <node>'s mail proxy. Returns
    ("ok", None) or ("no", the server's text)."""
    m = imaplib.IMAP4(node.addr, node.imap, timeout=timeout)
    try:
        m.login(user, pw if pw is not None else password(user))
        m.logout()
        return "ok", None
    except imaplib.IMAP4.error as e:
        return "no", str(e)
    finally:
        try:
            m.shutdown()
        except OSError:
            pass


def basic(user, pw):
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def http_login(node, user, pw=None):
    """POST the web login form for <user> through <node>'s HAProxy. Returns
    the HTTP status (200 admitted, 429 throttled)."""
    body = urllib.parse.urlencode({"username": user,
                                   "password": pw if pw is not None else password(user)})
    st, _, _ = node.haproxy.get("/", method="POST", data=body.encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    return st
