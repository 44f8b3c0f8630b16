"""Manual pages: generated from the README, so the configuration reference
and gatehouse.conf(5) cannot drift apart.

* the committed man/ pages are exactly what `make man` (tools/man/mkman.py)
  generates from README.md and tools/man/*.md;
* gatehouse.conf(5) documents exactly the keys the loader knows
  (`gatehouse config keys`, read from cfg.c's keyword table), both ways;
* every page renders without a warning (groff -man -ww).
"""
import json
import os
import re
import subprocess
import sys

import pytest

from gh.cli import REPO, build_dir

MAN = os.path.join(REPO, "man")
PAGES = ("gatehouse.8", "gatehouse-spoa.8", "gatehouse-mailproxy.8", "gatehouse.conf.5")


def _documented_keys(text):
    """{(section, key)} of the tagged paragraphs under the [section]
    subsections of a gatehouse.conf(5) text ([server NAME] gives "server")."""
    keys, section = set(), None
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r'^\.S[SH] "(.*)"$', line)
        if m:
            sm = re.match(r"^\[(\w+)(?: NAME)?\]$", m.group(1))
            section = sm.group(1) if sm else None
            continue
        if section and line == ".TP" and i + 1 < len(lines):
            for k in re.findall(r"\\fB([^\\]+)\\fR", lines[i + 1]):
                keys.add((section, k))
    return keys


def test_committed_pages_are_generated(tmp_path):
    subprocess.run([sys.executable, os.path.join(REPO, "tools", "man", "mkman.py"),
                    "--out", str(tmp_path)], check=True)
    for page in PAGES:
        with open(os.path.join(MAN, page)) as f:
            committed = f.read()
        with open(os.path.join(tmp_path, page)) as f:
            fresh = f.read()
        assert committed == fresh, "man/%s differs from its sources: run make man" % page


def test_conf_page_documents_exactly_the_known_keys():
    cli = os.path.join(build_dir(), "gatehouse")
    if not os.access(cli, os.X_OK):
        pytest.skip("gatehouse is not built")
    r = subprocess.run([cli, "--json", "config", "keys"], capture_output=True, text=True,
                       check=True, timeout=30)
    known = {(k["section"], k["key"]) for k in json.loads(r.stdout)}
    assert ("log", "target") in known and ("server", "address") in known, known
    with open(os.path.join(MAN, "gatehouse.conf.5")) as f:
        documented = _documented_keys(f.read())
    assert not known - documented, "keys the loader knows, missing from README's " \
        "configuration reference: %s" % sorted(known - documented)
    assert not documented - known, "keys README documents that the loader does not " \
        "know: %s" % sorted(documented - known)


def test_documented_keys_parser():
    """The page parser finds a key, a multi-key tag and [server NAME]."""
    text = ('.SS "[log]"\n.TP\n\\fBtarget\\fR\nx\n.SS "[server NAME]"\n.TP\n'
            '\\fBhttp\\fR, \\fBhttps\\fR\ny\n.SH "SEE ALSO"\n.TP\n\\fBnot\\fR\n')
    assert _documented_keys(text) == {("log", "target"), ("server", "http"),
                                      ("server", "https")}


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_warnings(page):
    r = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(MAN, page)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r.stderr
