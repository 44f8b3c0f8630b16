"""Fixtures for Kerberos (GSSAPI) tests: a real MIT KDC (gh.kdc).

Import in a test module with `from kdc_fixtures import *  # noqa`.

kdc          module-scoped gh.kdc.Kdc (realms GH.TEST and OTHER.TEST, the
             default principals, clockskew 300); do not stop it.
kdc_factory  function-scoped factory(**kw) -> gh.kdc.Kdc of the test's own
             (e.g. clockskew=2); all are stopped at teardown.
"""
import os

import pytest

from gh import kdc as gh_kdc
from gh import procs

__all__ = ["kdc", "kdc_factory"]

_n = [0]


def _dir(base, prefix):
    _n[0] += 1
    d = os.path.join(base, "%s-%d" % (prefix, _n[0]))
    os.makedirs(d)
    os.chmod(d, 0o755)
    return d


@pytest.fixture(scope="module")
def kdc(gh_tmp):
    """A KDC shared by one module's tests."""
    k = gh_kdc.Kdc(_dir(gh_tmp, "kdc"))
    try:
        yield k
    finally:
        k.stop()


@pytest.fixture
def kdc_factory(gh_tmp):
    """factory(**kw) -> a Kdc of this test's own; stopped at teardown."""
    made = []

    def make(**kw):
        k = gh_kdc.Kdc(_dir(gh_tmp, "kdc"), **kw)
        made.append(k)
        return k
    try:
        yield make
    finally:
        procs.stop_many([k.proc for k in made])
