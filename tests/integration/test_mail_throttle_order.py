"""Throttling comes first: a throttled address is refused before the user is
looked up (no LDAP or memcached lookup is spent on it), and the per-user
limit is counted on the canonical account once it is known."""
import imaplib
import re

import pytest

from mail_fixtures import *  # noqa: F401,F403 - fixtures
from mail_fixtures import password, wait_for


def _counter(text, family):
    """Sum every sample of metric <family> in Prometheus <text>."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"%s(\{[^}]*\})? ([0-9.e+]+)$" % re.escape(family), line)
        if m:
            total += float(m.group(2))
    return total


def _login(mp, user, pw):
    c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
    try:
        return c.login(user, pw)[0]
    except imaplib.IMAP4.error as e:
        return str(e)
    finally:
        try:
            c.logout()
        except Exception:  # noqa: BLE001 - the proxy may have closed
            pass


def test_throttled_address_costs_no_lookup(mailproxy):
    mp = mailproxy(throttle={"ip_max": 2, "ip_ttl": 60,
                             "ip_reject_message": "Too many logins from your address"})
    users = ["user%04d@example.%s" % (n, "com" if n % 2 == 0 else "org") for n in range(10, 16)]
    answers = [_login(mp, u, "wrong") for u in users]
    # the first two were looked up and failed at the mailbox server; the
    # other four were refused by the throttle
    assert sum("Too many logins" in a for a in answers) == 4, answers
    text = mp.metrics_text()
    assert _counter(text, "gatehouse_lookups_total") == 2, text
    assert wait_for(lambda: sum("result=throttled" in l for l in mp.audit_lines()) == 4)


def test_user_limit_counts_the_canonical_account(mailproxy):
    mp = mailproxy(throttle={"user_max": 2, "user_ttl": 60,
                             "user_reject_message": "Too many logins for this account"})
    # alice by her address, then by two aliases: one account, one budget
    assert _login(mp, "alice@example.com", password("alice@example.com")) == "OK"
    assert _login(mp, "al@example.com", password("alice@example.com")) == "OK"
    third = _login(mp, "alice@example.org", password("alice@example.com"))
    assert "Too many logins for this account" in third
    # another account is not affected
    assert _login(mp, "bob@example.com", password("bob@example.com")) == "OK"
