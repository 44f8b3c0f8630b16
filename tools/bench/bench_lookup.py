#!/usr/bin/python3
"""make bench-lookup: route lookups per second on one core, p50/p99 latency,
for in-process cache hits, memcached hits and LDAP misses.

Starts a seeded slapd and a memcached (the integration fixtures), writes
three configs and runs build/bench/bench_lookup once per mode with one
thread. A benchmark reports figures; it never fails on a timing.
"""
import os
import subprocess
import sys

import benchlib as bl
from gh import memcached as gh_memcached
from gh import slapd as gh_slapd

MODES = [
    # mode, label, calls, target text
    ("local", "in-process hit (route_cached)", 3000000, "< 1 us per hit"),
    ("memcached", "memcached hit (local_ttl = 0)", 300000, "p99 < 100 us"),
    ("ldap", "LDAP miss (no memcached, no local cache)", 50000, "(no target)"),
]


def names_file(d, n=1000):
    """Write <n> distinct generic account names; return the path."""
    users = [u["mail"] for u in gh_slapd.gen_ldif.users() if u["uid"].startswith("user")][:n]
    path = os.path.join(d, "names.txt")
    with open(path, "w") as f:
        f.write("\n".join(users) + "\n")
    return path, len(users)


def parse(line):
    out = {}
    for tok in line.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def main():
    a = bl.args(__doc__)
    exe = bl.binary(a.build, "bench/bench_lookup")
    if exe is None:
        print("bench-lookup: %s/bench/bench_lookup is not built; run `make all` first" % a.build)
        return 1
    with bl.Workdir("gh-bench-lookup-", a.keep) as wd:
        sys.stdout.write("seeding slapd ... ")
        sys.stdout.flush()
        tmpl = gh_slapd.SlapdTemplate(wd.sub("ldap-template"))
        print("%d users in %.1f s" % (tmpl.nusers, tmpl.seed_seconds))
        sl = gh_slapd.Slapd(wd.sub("slapd"), tmpl)
        mc = gh_memcached.Memcached(wd.sub("memcached"))
        names, nnames = names_file(wd.path)
        base = {"ldap": [sl.uri], "pw": sl.bind_pw_file}

        def conf(name, memcached, mopts):
            secs = bl.gh_config.sections([sl.uri], sl.bind_pw_file, memcached, None,
                                         {"log": {"level": "warning"}, "memcached": mopts})
            return bl.gh_config.write(os.path.join(wd.path, name), secs)

        confs = {
            "local": conf("local.conf", [mc.address],
                          {"local_ttl": "600s", "local_size": 65536}),
            "memcached": conf("memcached.conf", [mc.address], {"local_ttl": "0"}),
            "ldap": conf("ldap.conf", [], {"local_ttl": "0"}),
        }
        del base
        rows, results = [], {}
        for mode, label, n, target in MODES:
            argv = [exe, "-c", confs[mode], "--mode", mode, "--n", str(n), "--threads", "1",
                    "--names", names, "--seconds", str(a.seconds)]
            try:
                r = subprocess.run(argv, capture_output=True, text=True,
                                   timeout=a.seconds + 120)
            except subprocess.TimeoutExpired:
                rows.append([label, "TIMEOUT", "-", "-", "-", "-", target])
                continue
            line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
            if not line.startswith("mode="):
                print("%s: bench_lookup failed (rc %d): %s" % (mode, r.returncode,
                                                              r.stderr[-1500:]))
                rows.append([label, "FAILED", "-", "-", "-", "-", target])
                continue
            f = parse(line)
            results[mode] = f
            src = "local %d / mc %d / ldap %d / none %d" % (
                f["src_local"], f["src_memcached"], f["src_ldap"], f["src_none"])
            rows.append([label, "%.0f" % f["rate"], "%.3f" % f["p50_us"], "%.3f" % f["p99_us"],
                         "%.3f" % f["cpu_us_per_call"], "%d/%d" % (f["errors"], f["calls"]),
                         target + "; sources: " + src])
        print()
        print("Route lookups, one thread (%d distinct names, slapd %d users, loopback)"
              % (nnames, tmpl.nusers))
        bl.table(["case", "lookups/s", "p50 us", "p99 us", "CPU us/call", "err/calls",
                  "target"], rows)
        verdict = []
        if "local" in results:
            verdict.append("in-process hit p50 %.3f us (target < 1 us): %s" % (
                results["local"]["p50_us"],
                "met" if results["local"]["p50_us"] < 1 else "NOT met"))
        if "memcached" in results:
            verdict.append("memcached hit p99 %.1f us (target < 100 us): %s" % (
                results["memcached"]["p99_us"],
                "met" if results["memcached"]["p99_us"] < 100 else "NOT met"))
        print()
        for v in verdict:
            print(v)
        print("(latencies include two clock_gettime calls, ~40 ns; figures, not a test)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
