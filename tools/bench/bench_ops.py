#!/usr/bin/python3
"""make bench-ops: what one login and one HTTP request cost the shared
servers, counted on a two-node cluster (gh.cluster, as `make run NODES=2`):
memcached operations (from both servers' `stats`, by command) and LDAP
searches (SRCH lines of the provider's and the replica's logs), per
login or request, for each state of the caches:

* IMAP login, account cached nowhere (memcached miss, LDAP search);
* IMAP login on the other node (memcached hit, no in-process copy);
* IMAP login again on that node (in-process copy);
* IMAP login with a wrong password (account cached);
* HTTP request naming a user in its URL, cached nowhere; on the other node
  (memcached hit); again there (HAProxy's route table: no agent);
* HTTP form login (account cached nowhere).

Every throttle counter is on (ip_max, user_max, ip_fail_max, user_fail_max,
limits high enough never to refuse), as a production site runs it. Counts,
not timings: a benchmark reports figures; it never fails.
"""
import imaplib
import os
import sys
import urllib.parse

import benchlib as bl
from gh import cluster as gh_cluster
from gh import slapd as gh_slapd
from gh import wait as gh_wait

N = 100                      # logins or requests per case
MC_STATS = ("cmd_get", "cmd_set", "incr_hits", "incr_misses", "decr_hits", "decr_misses",
            "delete_hits", "delete_misses", "cmd_touch")
THROTTLE = {"ip_max": 1000000, "ip_ttl": 3600, "user_max": 100000, "user_ttl": 3600,
            "ip_fail_max": 1000000, "user_fail_max": 100000}


def mc_counts(c):
    """Sum of memcached's command counters over the cluster's servers."""
    out = dict.fromkeys(MC_STATS, 0)
    for m in c.memcached:
        st = m.stats()
        for k in MC_STATS:
            out[k] += int(st.get(k, 0))
    return out


def searches(c):
    """LDAP searches the provider and the replica logged so far."""
    n = 0
    for s in (c.provider, c.replica):
        with open(s.log, "rb") as f:
            n += f.read().count(b" SRCH base=")
    return n


def settled(c):
    """Wait until the counters stop moving (slapd logs after answering)."""
    last = [None]

    def same():
        now = (searches(c), tuple(mc_counts(c).values()))
        ok = now == last[0]
        last[0] = now
        return ok
    gh_wait.until(same, "memcached and LDAP counters settled", 10, 0.3)
    return last[0]


def imap(node, user, pw):
    m = imaplib.IMAP4(node.addr, node.imap, timeout=15)
    try:
        m.login(user, pw)
        m.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def http_url(node, user):
    st, _, _ = node.haproxy.get("/home/%s/inbox" % user)
    return st == 200


def http_form(node, user, pw):
    body = urllib.parse.urlencode({"username": user, "password": pw}).encode()
    st, _, _ = node.haproxy.get("/", method="POST", data=body,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    return st == 200


def main():
    a = bl.args(__doc__)
    bins = {n: bl.binary(a.build, n) for n in ("gatehouse-spoa", "gatehouse-mailproxy")}
    if None in bins.values():
        print("bench-ops: gatehouse-spoa / gatehouse-mailproxy not built; run `make all`")
        return 1
    users = [u for u in gh_slapd.gen_ldif.users() if u["uid"].startswith("user")]
    pw = gh_slapd.gen_ldif.password_for
    u_imap = [u["mail"] for u in users[:N]]
    u_http = [u["mail"] for u in users[N:2 * N]]
    u_form = [u["mail"] for u in users[2 * N:3 * N]]
    with bl.Workdir("gh-bench-ops-", a.keep) as wd:
        os.chmod(wd.path, 0o755)
        tmpl = gh_slapd.SlapdTemplate(wd.sub("ldap-template"))
        mbox_ca, pems = gh_cluster.make_mbox_certs(wd.sub("mbox-certs"))
        site = wd.sub("site-certs")
        from gh import certs as gh_certs
        pem = gh_certs.make_cert(wd.sub("site-build"), ["mail.example.com", "localhost"],
                                 mbox_ca)
        os.rename(pem, os.path.join(site, "00-mail.example.com.pem"))
        c = gh_cluster.Cluster(wd.sub("cluster"), 2, tmpl, mbox_ca, pems, site, bins,
                               overrides={"throttle": THROTTLE, "log": {"level": "warning"},
                                          "memcached": {"local_ttl": "600s"}})
        try:
            c.wait_ready()
            n1, n2 = c.nodes
            # warm what every case shares: the agents' and proxies' LDAP
            # connections, the form login's Host check
            http_form(n1, u_form[0], pw(u_form[0]))
            http_form(n2, u_form[0], pw(u_form[0]))
            cases = [
                ("IMAP login, account cached nowhere", "login",
                 lambda u: imap(n1, u, pw(u)), u_imap),
                ("IMAP login, memcached hit (other node)", "login",
                 lambda u: imap(n2, u, pw(u)), u_imap),
                ("IMAP login, in-process copy", "login",
                 lambda u: imap(n2, u, pw(u)), u_imap),
                ("IMAP login, wrong password (cached)", "login",
                 lambda u: not imap(n2, u, "wrong"), u_imap),
                ("HTTP URL request, cached nowhere", "request",
                 lambda u: http_url(n1, u), u_http),
                ("HTTP URL request, memcached hit (other node)", "request",
                 lambda u: http_url(n2, u), u_http),
                ("HTTP URL request, HAProxy route table hit", "request",
                 lambda u: http_url(n2, u), u_http),
                ("HTTP form login, account cached nowhere", "login",
                 lambda u: http_form(n2, u, pw(u)), u_form[1:]),
            ]
            rows = []
            for label, unit, fn, us in cases:
                s0, _ = settled(c)
                m0 = mc_counts(c)
                ok = sum(1 for u in us if fn(u))
                s1, _ = settled(c)
                m1 = mc_counts(c)
                d = {k: m1[k] - m0[k] for k in MC_STATS}
                n = len(us)
                total = sum(d.values())
                by = ", ".join("%s %.2f" % (k, v / n) for k, v in d.items() if v)
                rows.append([label, "%d/%d" % (ok, n), "%.2f" % (total / n),
                             "%.2f" % ((s1 - s0) / n), by or "-"])
            print()
            print("Shared-server operations per %s, two nodes, every throttle counter on, "
                  "%d each (memcached `stats` deltas of both servers; slapd SRCH lines of the "
                  "provider and the replica)" % ("login or request", N))
            bl.table(["case", "as expected", "memcached ops", "LDAP searches",
                      "memcached ops by command (per login/request)"], rows)
            items = sum(int(m.stats().get("curr_items", 0)) for m in c.memcached)
            nbytes = sum(int(m.stats().get("bytes", 0)) for m in c.memcached)
            print("memcached holds %d items in %d bytes: %.0f bytes per item (routes by "
                  "name and id, throttle counters)" % (items, nbytes, nbytes / max(1, items)))
            print("(counts, not timings; figures, not a test)")
        finally:
            c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
