"""gatehouse-mailproxy, IMAP: real clients (imaplib, curl) through the proxy
to real dovecots, routed by the shared slapd."""
import imaplib
import socket
import subprocess

import pytest

from mail_fixtures import *  # noqa: F401,F403
from mail_fixtures import password


def test_imap_plain_login_lands_on_right_server(mailproxy, dovecots):
    mp = mailproxy()
    for user, server in (("alice@example.com", "mbox1"), ("bob@example.com", "mbox2"),
                         ("carol@example.org", "mbox3")):
        c = imaplib.IMAP4("127.0.0.1", mp.imap, timeout=10)
        assert b"LOGINDISABLED" not in c.welcome
        typ, _ = c.login(user, password(user))
        assert typ == "OK"
        typ, data = c.select("INBOX")
        assert typ == "OK"
        c.logout()
        lg = dovecots[server].wait_login(user)
        assert lg["proto"] == "imap"
    assert any("result=ok" in l for l in mp.audit_lines())
