"""The fixtures fail the session when a stopped process's log holds a
sanitizer report (what `make check-asan` relies on for the daemons)."""
import sys

from gh import procs


def test_report_in_a_log_is_recorded(tmp_path):
    before = len(procs.sanitizer_reports)
    p = procs.Proc("fake-daemon", [sys.executable, "-c",
                                   "print('x.c:1:2: runtime error: signed integer overflow')"],
                   tmp_path / "fake.log")
    p.popen.wait(10)
    p.stop()
    try:
        assert len(procs.sanitizer_reports) == before + 1
        name, pid, log, text = procs.sanitizer_reports[-1]
        assert name == "fake-daemon" and "signed integer overflow" in text
    finally:
        del procs.sanitizer_reports[before:]   # deliberate: not a real report


def test_clean_log_is_not_recorded(tmp_path):
    before = len(procs.sanitizer_reports)
    p = procs.Proc("clean", [sys.executable, "-c", "print('all fine')"], tmp_path / "c.log")
    p.popen.wait(10)
    p.stop()
    assert len(procs.sanitizer_reports) == before
