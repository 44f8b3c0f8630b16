"""Wait for something another process writes asynchronously: a log line,
a counter, a file, a process state. Never a fixed sleep: poll the condition
until it holds or a deadline passes, then fail with a message that says what
was awaited and what was seen.
"""
import time


def poll(pred, timeout=10.0, step=0.05):
    """Call <pred>() until it returns a true value or <timeout> seconds
    pass; return its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def until(pred, what, timeout=10.0, step=0.05, seen=None):
    """Wait until <pred>() is true and return its value; otherwise raise
    AssertionError naming <what> was awaited, with <seen>() (a callable, so
    it is evaluated only on failure: a log tail, the last value) appended."""
    v = poll(pred, timeout, step)
    if v:
        return v
    msg = "timed out after %.1f s waiting for %s" % (timeout, what)
    if seen is not None:
        try:
            msg += "\nseen:\n%s" % (seen(),)
        except Exception as e:  # noqa: BLE001 - the message must still come out
            msg += "\n(could not show what was seen: %r)" % (e,)
    raise AssertionError(msg)
