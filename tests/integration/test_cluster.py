"""Several gatehouse nodes as one edge (issue 13): two complete nodes
(HAProxy, two agents, mail proxy each, on 127.0.0.11 and 127.0.0.12) over
two shared memcached servers, an LDAP provider and its syncrepl replica, and
three Dovecot mailbox servers (cluster_fixtures.cluster).

Marked slow (the module's cluster takes a few seconds to start); they run in
`make integration`, and `-m "not slow"` leaves them out.
"""
import concurrent.futures as cf
import time

import pytest

from cluster_fixtures import *  # noqa: F401,F403 - fixtures
from cluster_fixtures import cli_of, http_login, imap_login, password
from gh import wait as gh_wait

pytestmark = pytest.mark.slow


def parts_by_kind(r):
    out = {}
    for p in r.data["parts"]:
        out.setdefault(p["kind"], {})[p["name"]] = p
    return out


def test_status_shows_the_whole_cluster(cluster):
    n1, n2 = cluster.nodes
    r = cli_of(cluster, n1).run("status")
    assert r.rc == 0 and r.data["healthy"] is True, r
    k = parts_by_kind(r)
    # every node's two agents and mail proxy, by their metrics endpoints
    assert set(k["spoa"]) == {a for n in cluster.nodes for a in n.agent_metrics}, r
    assert set(k["mailproxy"]) == {n1.mail_metrics, n2.mail_metrics}, r
    assert set(k["haproxy"]) == {n1.admin_sock, n2.admin_sock}, r
    assert set(k["memcached"]) == {m.address for m in cluster.memcached}, r
    assert set(k["ldap"]) == {cluster.provider.uri, cluster.replica.uri}, r
    assert all(p["up"] for kind in k.values() for p in kind.values()), r
    # node 2's first agent stops: node 1's status says so, and names it
    a = n2.agents[0]
    a.stop()
    try:
        r = cli_of(cluster, n1).run("status")
        assert r.rc == 1 and r.data["healthy"] is False, r
        k = parts_by_kind(r)
        assert k["spoa"][a.metrics]["up"] is False, r
        assert sum(not p["up"] for kind in k.values() for p in kind.values()) == 1, r
        t = cli_of(cluster, n1).run("status", json_out=False)
        assert "spoa       %-36s down" % a.metrics in t.stdout, t
    finally:
        a.start()
