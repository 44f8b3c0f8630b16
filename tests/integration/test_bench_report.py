"""The benchmark report (tools/bench/report.py): the bench scripts' own
table-saving path (benchlib --report) feeds it, and it writes report.md and
report.html naming every row, with one real PNG chart per benchmark.
Pure Python, no server: the tables are shaped like the scripts print them."""
import base64
import os
import re
import struct
import subprocess
import sys
import zlib

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(REPO, "tools", "bench")
PNG_SIG = b"\x89PNG\r\n\x1a\n"

# bench -> (title, headers, rows, lines printed after the table), as the
# scripts print them (same headers, same cell formats)
TABLES = {
    "bench_http": (
        "HTTP through HAProxy 2.6, wrk -t2 -c32, 3s each",
        ["config", "req/s", "p50 ms", "p99 ms", "haproxy CPU us/req",
         "agent CPU us/answer", "table hit rate", "errors/requests"],
        [["plain HAProxy", "21000", "1.200", "4.100", "38.0", "-", "-", "0/63000"],
         ["gatehouse, route table warm", "20500", "1.250", "4.300", "39.5", "-", "0.999",
          "0/61500"],
         ["gatehouse, table misses", "15000", "1.900", "6.000", "52.0", "3.10", "0.000",
          "0/45000"]],
        ["ratio warm/plain req/s: 0.98 (target >= 0.95): met"]),
    "bench_mail": (
        "IMAP, everything on 127.0.0.1 (one 2-core machine)",
        ["path", "logins/s", "x direct", "x relay", "CPU ms/login", "x relay",
         "dovecot ms/login", "relay MB/s", "x direct", "kB/idle conn", "idle ok",
         "login p99 ms"],
        [["dovecot direct", "2400", "1.00", "1.10", "0.400", "-", "0.400", "900", "1.00",
          "60.00", "2000/2000", "9.00"],
         ["tcp relay", "2200", "0.92", "1.00", "0.080", "1.00", "0.410", "880", "0.98",
          "3.10", "2000/2000", "9.50"],
         ["gatehouse-mailproxy", "2150", "0.90", "0.98", "0.090", "1.12", "0.410", "885",
          "0.98", "3.50", "2000/2000", "9.70"],
         ["nginx mail proxy", "1900", "0.79", "0.86", "0.310", "3.88", "0.420", "860",
          "0.96", "9.60", "2000/2000", "12.00"]],
        ["targets for gatehouse-mailproxy: >= 0.90 x direct logins/s",
         "gatehouse-mailproxy: logins 0.90 x direct (met)"]),
    "bench_lookup": (
        "Route lookups, one thread (1000 distinct names, slapd 200 users, loopback)",
        ["case", "lookups/s", "p50 us", "p99 us", "CPU us/call", "err/calls", "target"],
        [["in-process cache hit", "4000000", "0.210", "0.400", "0.240", "0/5000000",
          "p50 < 1 us"],
         ["memcached hit", "30000", "30.000", "60.000", "9.000", "0/100000", "p99 < 100 us"],
         ["LDAP miss (no memcached, no local cache)", "FAILED", "-", "-", "-", "-",
          "(no target)"]],
        ["in-process hit p50 0.210 us (target < 1 us): met"]),
    "bench_ops": (
        "Shared-server operations per login or request, two nodes",
        ["case", "as expected", "memcached ops", "LDAP searches",
         "memcached ops by command (per login/request)"],
        [["IMAP login, account cached nowhere", "20/20", "7.00", "1.00", "get 3.00, incr 4.00"],
         ["IMAP login, in-process copy", "20/20", "4.00", "0.00", "incr 4.00"]],
        ["(counts, not timings; figures, not a test)"]),
}


def save(directory, bench, title, headers, rows, notes):
    """Run a bench script's reporting path in a child process: benchlib.args()
    with --report, a title line, benchlib.table(), the lines after it, exit."""
    code = (
        "import sys; sys.path.insert(0, %r); import benchlib as bl\n"
        "sys.argv = [%r, '--report', %r]\n"
        "bl.args('x')\n"
        "print('warm-up line, not the title')\n"
        "print()\n"
        "print(%r)\n"
        "bl.table(%r, %r)\n"
        "print()\n"
        "for n in %r: print(n)\n" % (BENCH, os.path.join(BENCH, bench + ".py"), directory,
                                     title, headers, rows, notes))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert headers[0] in r.stdout   # the table is still printed
    return r


def png_size(data):
    """Check the PNG signature and IHDR chunk; return (width, height)."""
    assert data[:8] == PNG_SIG
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    w, h = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    return w, h


def test_bench_report(tmp_path):
    d = str(tmp_path / "bench-report")
    for bench, (title, headers, rows, notes) in TABLES.items():
        save(d, bench, title, headers, rows, notes)
        assert os.path.exists(os.path.join(d, bench + ".json"))

    # the saved JSON is what the script printed: title, table, lines after it
    import json
    with open(os.path.join(d, "bench_mail.json")) as f:
        doc = json.load(f)
    assert doc["bench"] == "bench_mail"
    assert doc["tables"][0]["title"] == TABLES["bench_mail"][0]
    assert doc["tables"][0]["headers"] == TABLES["bench_mail"][1]
    assert doc["tables"][0]["rows"] == TABLES["bench_mail"][2]
    assert doc["notes"] == TABLES["bench_mail"][3]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC$", doc["date"])

    r = subprocess.run([sys.executable, os.path.join(BENCH, "report.py"), d],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "python3-matplotlib missing" not in r.stderr, "install python3-matplotlib"
    with open(os.path.join(d, "report.md")) as f:
        md = f.read()
    with open(os.path.join(d, "report.html")) as f:
        page = f.read()
    assert "2-core machine; figures, not a test" in md
    for bench, (title, headers, rows, notes) in TABLES.items():
        for row in rows:
            assert row[0] in md, row[0]
            assert row[0] in page, row[0]
        for n in notes:
            assert n in md
        # one chart per benchmark, referenced by the Markdown, embedded in the HTML
        assert md.count("](%s.png)" % bench) == 1
        with open(os.path.join(d, bench + ".png"), "rb") as f:
            data = f.read()
        w, h = png_size(data)
        assert w >= 300 and h >= 150 and len(data) > 5000, (bench, w, h, len(data))
    embedded = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(embedded) == len(TABLES)
    for e in embedded:
        png_size(base64.b64decode(e))


def test_bench_report_empty(tmp_path):
    """No results: a clear message and a non-zero exit, no empty report."""
    r = subprocess.run([sys.executable, os.path.join(BENCH, "report.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no benchmark results" in r.stdout
    assert not os.path.exists(tmp_path / "report.md")


def test_bench_table_without_report(tmp_path, monkeypatch):
    """Without --report or $BENCH_REPORT_DIR the scripts write nothing."""
    monkeypatch.delenv("BENCH_REPORT_DIR", raising=False)
    code = ("import sys; sys.path.insert(0, %r); import benchlib as bl\n"
            "sys.argv = ['bench_x.py']; a = bl.args('x'); assert a.report is None\n"
            "bl.table(['a', 'b'], [['r', '1']])\n" % BENCH)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert os.listdir(tmp_path) == []
