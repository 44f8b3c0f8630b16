"""Log floods (issue 10, item 6): a peer that opens thousands of malformed
connections must not write a log line each. Warnings a peer causes at will
are rate-limited per kind ([log] rate_limit lines per rate_limit_interval),
and what was suppressed is reported as "<kind>: N similar messages
suppressed" once the window is over, even when the flood has stopped.

Each test floods one daemon with garbage connections (bounded in count and
time), then checks that the log grew by a number of lines bounded by the
rate (not by the connections), and that printed + suppressed accounts for
every connection exactly.
"""
import re
import signal
import socket
import time

from spoa_fixtures import *  # noqa: F401,F403 - fixtures
from mail_fixtures import *  # noqa: F401,F403 - fixtures

BURST = 5
INTERVAL_S = 2
LOG = {"level": "info", "rate_limit": BURST, "rate_limit_interval": "%ds" % INTERVAL_S}
FLOOD = 2000
FLOOD_TIME_S = 60.0
SLACK = 10   # other lines a run may write (startup, reload notices...)


def read_log(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read().splitlines()


def until_closed(sock, timeout=5.0):
    """Read from <sock> until the daemon closes it."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, socket.timeout, TimeoutError):
        pass


def flood(port, payload, wait_greeting=False):
    """Open up to FLOOD connections to <port>, each sending <payload> and
    waiting for the daemon to close it; stop at FLOOD_TIME_S. Returns
    (connections made, seconds taken)."""
    start = time.monotonic()
    n = 0
    while n < FLOOD and time.monotonic() - start < FLOOD_TIME_S:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            if wait_greeting:
                s.recv(4096)
            s.sendall(payload)
            until_closed(s)
        n += 1
    return n, time.monotonic() - start


def accounting(lines, shown, kind):
    """Return (lines matching <shown>, summaries of <kind>, total suppressed)."""
    printed = sum(1 for l in lines if shown in l)
    counts = [int(m.group(1)) for m in
              (re.search(r" %s: (\d+) similar messages? suppressed \(at most %d per %d s\)"
                         % (re.escape(kind), BURST, INTERVAL_S), l) for l in lines) if m]
    return printed, len(counts), sum(counts)


def check_flood(log_path, before, n, elapsed, shown, kind, least=500):
    """Wait for the last window's summary, then check the bounds: <n>
    connections (at least <least>) in <elapsed> s, each logged <shown> or
    counted under <kind>."""
    assert n >= least, "only %d connections in %.0f s" % (n, elapsed)
    # windows are at least INTERVAL_S long and follow each other
    windows = int(elapsed // INTERVAL_S) + 2
    deadline = time.monotonic() + INTERVAL_S + 10
    while True:
        lines = read_log(log_path)[before:]
        printed, nsum, suppressed = accounting(lines, shown, kind)
        if printed + suppressed >= n or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    tail = "\n".join(lines[-20:])
    # every connection is accounted for: written or counted, never both
    assert printed + suppressed == n, (printed, suppressed, n, tail)
    assert nsum >= 1 and suppressed > 0, tail
    assert printed <= BURST * windows, (printed, windows, tail)
    # the log grew with the rate, not with the connections
    assert len(lines) <= BURST * windows + nsum + SLACK, (len(lines), n, tail)
    if n >= 500:
        assert len(lines) < n // 10, (len(lines), n)


def test_spoa_garbage_connections(spoa_factory):
    agent = spoa_factory(log=LOG)
    log_path = agent.proc.log
    before = len(read_log(log_path))
    # an HTTP request where a HAPROXY-HELLO should be: a frame "too big"
    n, elapsed = flood(agent.port, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    check_flood(log_path, before, n, elapsed, ": disconnecting: ", "spop-error")
    # the agent still serves HAProxy
    c = SpopClient(agent.port)
    assert c.handshake()["version"] == "2.0"
    c.close()


def test_mailproxy_garbage_commands(mailproxy):
    mp = mailproxy(max_bad_commands=1, log=LOG)
    before = len(read_log(mp.log))
    n, elapsed = flood(mp.imap, b"\x16\x03\x01 garbage\r\n", wait_greeting=True)
    check_flood(mp.log, before, n, elapsed, ": too many bad commands", "bad-commands")
    # the proxy still answers, and the next window writes again
    with socket.create_connection(("127.0.0.1", mp.imap), timeout=5) as s:
        assert s.recv(4096).startswith(b"* OK")
        s.sendall(b"a1 BOGUS\r\n")
        until_closed(s)
    assert wait_for(lambda: sum(": too many bad commands" in l
                                for l in read_log(mp.log)[before:]) >= 1)


def test_mailproxy_tls_garbage_is_its_own_kind(mailproxy):
    """Failed TLS handshakes are limited under their own kind: a flood of
    them leaves the bad-command budget untouched."""
    mp = mailproxy(max_bad_commands=1, log=LOG)
    # the fixture's readiness probes of the imaps and pop3s ports connect and
    # close without a byte: no failed handshake (logged at debug only)
    before = len(read_log(mp.log))
    start = time.monotonic()
    n = 0
    while n < 300 and time.monotonic() - start < FLOOD_TIME_S:
        with socket.create_connection(("127.0.0.1", mp.imaps), timeout=5) as s:
            s.sendall(b"not a TLS client hello\r\n" * 4)
            until_closed(s)
        n += 1
    with socket.create_connection(("127.0.0.1", mp.imap), timeout=5) as s:
        s.recv(4096)
        s.sendall(b"a1 BOGUS\r\n")
        until_closed(s)
    lines = read_log(mp.log)[before:]
    assert sum(": too many bad commands" in l for l in lines) == 1, lines[-20:]
    check_flood(mp.log, before, n, time.monotonic() - start,
                "TLS handshake with the client failed", "tls-handshake", least=200)


def test_spoa_reload_applies_the_rate_limit(spoa_factory):
    """rate_limit = 0 writes every line; SIGHUP with a limit applies it."""
    agent = spoa_factory(log=dict(LOG, rate_limit=0))
    garbage = b"GET / HTTP/1.0\r\n\r\n"
    before = len(read_log(agent.proc.log))
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as s:
            s.sendall(garbage)
            until_closed(s)
    assert wait_for(lambda: sum(": disconnecting: " in l
                                for l in read_log(agent.proc.log)[before:]) == 30)
    text = open(agent.conf).read()
    assert "rate_limit = 0\n" in text
    with open(agent.conf, "w") as f:
        f.write(text.replace("rate_limit = 0\n", "rate_limit = %d\n" % BURST))
    agent.proc.signal(signal.SIGHUP)
    assert wait_for(lambda: any("configuration reloaded" in l for l in read_log(agent.proc.log)))
    before = len(read_log(agent.proc.log))
    start = time.monotonic()
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as s:
            s.sendall(garbage)
            until_closed(s)
    check_flood(agent.proc.log, before, 30, time.monotonic() - start, ": disconnecting: ",
                "spop-error", least=30)
