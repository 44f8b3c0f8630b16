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
from cluster_fixtures import CLUSTER_THROTTLE, cli_of, http_login, imap_login, password
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


FAIL_OPEN = 'throttle_verdicts_total{verdict="fail_open"}'


def attempt(kind, node, user):
    """One login attempt: "admitted", "throttled" or what else happened."""
    if kind == "http":
        st = http_login(node, user)
        return {200: "admitted", 429: "throttled"}.get(st, "http %d" % st)
    res, text = imap_login(node, user)
    if res == "ok":
        return "admitted"
    return "throttled" if "Login rejected for this user" in text else text


def test_throttle_limit_holds_across_nodes(cluster):
    """K parallel logins of one account, HTTP (through HAProxy and the
    agents) and IMAP (through the mail proxies) on both nodes: the counter
    lives in the shared memcached, so exactly user_max are admitted."""
    limit = CLUSTER_THROTTLE["user_max"]
    n1, n2 = cluster.nodes
    plan = [(k, n) for k in ("http", "imap") for n in (n1, n2)] * 5      # K = 20
    for rnd in range(3):
        user = "user%04d@example.%s" % (100 + rnd * 2, "com")
        fo = cluster.metric(FAIL_OPEN)
        with cf.ThreadPoolExecutor(len(plan)) as ex:
            got = list(ex.map(lambda kn: attempt(kn[0], kn[1], user), plan))
        if cluster.metric(FAIL_OPEN) > fo:
            continue          # memcached starved on a loaded machine: proves nothing
        assert sorted(got) == ["admitted"] * limit + ["throttled"] * (len(plan) - limit), \
            list(zip([(k, n.name) for k, n in plan], got))
        # both nodes and both paths took part in the race
        r = cli_of(cluster, n2).throttle("show", user)
        assert r.get("attempts") == len(plan) and r.get("max") == limit, r
        return
    pytest.skip("machine too loaded: the throttle failed open in every round")


MC_ERRORS = 'dependency_errors_total{dependency="memcached"}'
TEMPFAIL = 'lookups_total{outcome="tempfail"}'


def mc_ops(m):
    """Operations memcached <m> has served since it started."""
    st = m.stats()
    return sum(int(st.get(k, 0)) for k in ("cmd_get", "cmd_set", "incr_hits", "incr_misses"))


def login_load(cluster, users, on_done=None, workers=4):
    """Log every one of <users> in once, alternating nodes and paths (IMAP,
    HTTP form), <workers> at a time; <on_done>(count) is called after each.
    Returns [(kind, node, user, outcome)]."""
    import threading
    lock, done = threading.Lock(), [0]
    jobs = [(("imap", "http")[i % 2], cluster.nodes[(i // 2) % 2], u)
            for i, u in enumerate(users)]

    def one(job):
        out = attempt(job[0], job[1], job[2])
        with lock:
            done[0] += 1
            n = done[0]
        if on_done is not None:
            on_done(n)
        return (job[0], job[1].name, job[2], out)

    with cf.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, jobs))


def test_memcached_server_lost_under_load(cluster):
    """One of the two memcached servers is killed while logins run on both
    nodes: no login fails (routes come from LDAP, throttling of its keys
    starts again from zero); once it is back it is used again, with no
    restart of any gatehouse daemon."""
    victim = cluster.memcached[0]
    users = ["user%04d@example.%s" % (i, "com" if i % 2 == 0 else "org")
             for i in range(200, 320)]
    errors0 = cluster.metric(MC_ERRORS)
    tempfail0 = cluster.metric(TEMPFAIL)
    # it serves the cluster (ketama gives it part of the keys)
    assert all(r[3] == "admitted" for r in login_load(cluster, users[:10]))
    assert mc_ops(victim) > 0

    def kill_at(n):
        if n == 30:
            victim.stop()
    try:
        res = login_load(cluster, users, kill_at)
        bad = [r for r in res if r[3] != "admitted"]
        assert not bad, bad
        assert not victim.alive()
        # the loss was felt (the daemons saw memcached errors), yet no
        # lookup failed
        assert cluster.metric(MC_ERRORS) > errors0
        assert cluster.metric(TEMPFAIL) == tempfail0
    finally:
        victim.start()                   # empty, on the same port
        t0 = time.monotonic()
    # back: within [memcached] retry (2 s) the daemons use it again
    more = iter(["user%04d@example.%s" % (i, "com" if i % 2 == 0 else "org")
                 for i in range(320, 1200)])
    seen = []

    def used_again():
        res = login_load(cluster, [next(more) for _ in range(8)])
        seen.extend(r for r in res if r[3] != "admitted")
        return mc_ops(victim) > 0
    gh_wait.until(used_again, "the restarted memcached used again", 30, 0.2,
                  seen=lambda: victim.stats())
    assert not seen, seen
    print("memcached used again %.1f s after its restart" % (time.monotonic() - t0))
    # [memcached] retry is 2 s: each worker's handle tries it again then
    assert time.monotonic() - t0 < 12


def http_server_of(node, user):
    """The mailbox server <node>'s HAProxy sends <user>'s URL to."""
    st, _, body = node.haproxy.get("/home/%s/inbox" % user)
    return body["server"] if st == 200 and isinstance(body, dict) else "status %d" % st


def test_ldap_provider_lost(cluster):
    """The LDAP provider stops: both nodes look accounts up in the replica
    (node 1 lists the provider first, node 2 the replica), with no failed
    lookup. An account added on the provider reaches the replica by
    syncrepl, and is routable through both nodes from the replica alone."""
    prov, repl = cluster.provider, cluster.replica
    n1, n2 = cluster.nodes
    assert cluster.ldap_uris(n1)[0] == prov.uri and cluster.ldap_uris(n2)[0] == repl.uri
    tempfail0 = cluster.metric(TEMPFAIL)
    new = "cluster.new@example.com"
    try:
        prov.stop()
        # uncached accounts, on both nodes, both paths: all found
        users = ["user%04d@example.%s" % (i, "com" if i % 2 == 0 else "org")
                 for i in range(600, 640)]
        res = login_load(cluster, users)
        assert all(r[3] == "admitted" for r in res), [r for r in res if r[3] != "admitted"]
        for node, i in zip(cluster.nodes, (641, 643)):
            r = cli_of(cluster, node).route("user%04d@example.org" % i, "imap")
            assert r.rc == 0 and r.source == "ldap" and r.server == "mbox%d" % (i % 3 + 1), r
        assert cluster.metric(TEMPFAIL) == tempfail0
        # the provider comes back; an account is added there
        prov.start()
        cluster.dovecots["mbox2"].add_user(new, "new-pw")
        prov.add_user(new, "mbox2", password="new-pw")
        repl.wait_replicated(new)
        prov.stop()
        # routable through both nodes with only the replica up
        for node in cluster.nodes:
            assert http_server_of(node, new) == "mbox2"
            assert imap_login(node, new, "new-pw") == ("ok", None)
        logins = [lg for lg in cluster.dovecots["mbox2"].logins() if lg["user"] == new]
        assert len(logins) == 2, logins
        assert cluster.metric(TEMPFAIL) == tempfail0
    finally:
        prov.start()


def imap_lands_on(cluster, node, user, pw):
    """Log <user> in through <node>'s mail proxy; return the mailbox server
    whose Dovecot logged the login."""
    before = {n: len([x for x in dv.logins() if x["user"] == user])
              for n, dv in cluster.dovecots.items()}
    cli_of(cluster, node).throttle("clear", user)     # polls must not hit user_max
    res = imap_login(node, user, pw)
    assert res == ("ok", None), res

    def landed():
        for n, dv in cluster.dovecots.items():
            if len([x for x in dv.logins() if x["user"] == user]) > before[n]:
                return n
        return None
    # the Dovecot's log line follows its answer
    return gh_wait.until(landed, "a Dovecot logging the login of %s" % user, 5)


def test_purge_on_one_node_reaches_both(cluster):
    """A mailbox moves; `gatehouse purge` run once, on node 2, is felt on
    both nodes' HTTP and IMAP paths: memcached is cleared, each HAProxy's
    route table loses its routes to the old server, and each daemon's
    in-process copy expires within [memcached] local_ttl (2 s here)."""
    user, pw, dn = "carol@example.org", password("carol@example.org"), \
        "uid=carol,ou=example.org,o=gatehouse"
    n1, n2 = cluster.nodes
    # warm every cache on both nodes: memcached, local copies, route tables
    for node in cluster.nodes:
        for _ in range(2):
            assert http_server_of(node, user) == "mbox3"
        assert imap_lands_on(cluster, node, user, pw) == "mbox3"
        assert node.haproxy.route_stats()[0] >= 1            # a table hit
    cluster.provider.set_host(dn, "mbox1")
    cluster.dovecots["mbox1"].add_user(user, pw)
    gh_wait.until(lambda: cluster.replica.search("(mail=%s)" % user, ["mailHost"])[0][1]
                  ["mailHost"] == ["mbox1"], "the move replicated", 20)
    try:
        # without a purge, both nodes keep the old server (memcached ttl 1 h)
        for node in cluster.nodes:
            assert http_server_of(node, user) == "mbox3"
        r = cli_of(cluster, n2).purge(user)
        assert r.rc == 0, r
        assert sorted(h["socket"] for h in r.data["haproxy"]) == \
            sorted([n1.admin_sock, n2.admin_sock]), r
        # the old server's routes go; every route when the purge's own cache
        # read found nothing (a memcached read timing out on a loaded machine:
        # test_route_table covers both answers deterministically)
        assert all(h.get("cleared") in (["mbox3"], "all") for h in r.data["haproxy"]), r
        t0 = time.monotonic()
        for node in cluster.nodes:
            gh_wait.until(lambda: http_server_of(node, user) == "mbox1",
                          "%s routes %s's URL to mbox1" % (node.name, user), 10, 0.2)
            gh_wait.until(lambda: imap_lands_on(cluster, node, user, pw) == "mbox1",
                          "%s logs %s in on mbox1" % (node.name, user), 10, 0.2)
        # local_ttl 2 s bounds the stale copies; allow a loaded machine 3 s more
        assert time.monotonic() - t0 < 5.0
    finally:
        cluster.provider.set_host(dn, "mbox3")
        gh_wait.until(lambda: cluster.replica.search("(mail=%s)" % user, ["mailHost"])[0][1]
                      ["mailHost"] == ["mbox3"], "the move back replicated", 20)
        cli_of(cluster, n1).purge(user)
        cli_of(cluster, n1).throttle("clear", user)
