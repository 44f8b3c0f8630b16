#!/usr/bin/python3
"""Deterministic seed directory for gatehouse's tests and demo.

Run as a program to write the LDIF and the dovecot passwd-files:

    tools/demo/gen_ldif.py --ldif seed.ldif --passwd-dir DIR [--users 1200]

or import it (tests do) and use users(), ldif(), passwd_file(),
password_for(). The same inputs always give the same output.

The directory
-------------
* suffix ``o=gatehouse``; one ``ou=<domain>,o=gatehouse`` per domain
  (example.com, example.org); the read-only bind entry
  ``cn=gatehouse,o=gatehouse`` (password BIND_PW). Each domain entry is also
  a domainRelatedObject whose associatedDomain values (mail.<domain>,
  webmail.<domain>) are the web host names it is served under.
* users: objectClass inetOrgPerson + inetLocalMailRecipient (misc.schema),
  ``uid`` = a DN-safe id, ``mail`` = canonical address, ``mailLocalAddress``
  = aliases, ``mailHost`` = mailbox server (mbox1, mbox2, mbox3),
  ``userPassword`` = {SSHA} of password_for(mail) with a salt derived from the
  address. entryUUID is set by slapd/slapadd itself: read it back from LDAP.
* generic users ``userNNNN@example.com`` (even NNNN) / ``@example.org`` (odd),
  mailHost ``mbox{NNNN % 3 + 1}``; every 10th has an alias
  ``aliasNNNN@<its domain>``, every 30th a second one ``otherNNNN@<other domain>``.

Named users (see NAMED): alice@example.com (mbox1; aliases al@example.com,
alice@example.org), bob@example.com (mbox2; alias robert@example.com),
carol@example.org (mbox3; alias caroline@example.org), and awkward ones:
``Dave.Upper@Example.com`` (mail stored with upper case), ``tag+box@example.com``
(a '+' in the address), a > 200-byte address (memcached key is hashed),
``juergen@example.org`` whose cn/displayName is ``Jürgen`` (see UTF-8 below),
``mallory@example.com`` on ``evil.example.net`` (not a configured server: must
be refused), ``dup1@example.com`` and ``dup2@example.org`` that share the alias
``shared@example.com`` (a lookup of it finds several entries: an error), and
``quote@example.com`` whose password holds quotes, a backslash and spaces.

UTF-8: ``mail`` and ``mailLocalAddress`` have IA5String syntax (ASCII only) in
OpenLDAP's stock schemas, and slapd rejects non-ASCII values there. So no
UTF-8 address can exist in this directory: the UTF-8 user's name lives in
cn/displayName (UTF-8 DirectoryString), and a login of ``jürgen@example.org``
must be answered "unknown" (its memcached key is hashed: not printable ASCII).
UTF8_LOGIN names that login.

Passwords: password_for(mail) (any case) gives the plain password; dovecot's
passwd-files hold it as {PLAIN} for the canonical name and for each alias
(with ``user=<canonical>`` so dovecot logs the canonical name).
"""

import argparse
import base64
import hashlib
import os
import sys

SUFFIX = "o=gatehouse"
DOMAINS = ("example.com", "example.org")
SERVERS = ("mbox1", "mbox2", "mbox3")
ROOT_DN = "cn=admin,o=gatehouse"
ROOT_PW = "rootsecret"
BIND_DN = "cn=gatehouse,o=gatehouse"
BIND_PW = "gatehouse-ro-secret"
DEFAULT_USERS = 1200

LONG_LOCAL = "long." + "x" * 200 + ".name"            # 210 bytes
LONG_MAIL = LONG_LOCAL + "@example.com"               # 222 bytes > 200: hashed key
UTF8_LOGIN = "jürgen@example.org"
EVIL_HOST = "evil.example.net"
SHARED_ALIAS = "shared@example.com"

# mail -> (uid, mailHost, aliases, password or None for the derived one, cn)
NAMED = {
    "alice@example.com": ("alice", "mbox1", ["al@example.com", "alice@example.org"],
                          "alice-pw", "Alice Example"),
    "bob@example.com": ("bob", "mbox2", ["robert@example.com"], "bob-pw", "Bob Example"),
    "carol@example.org": ("carol", "mbox3", ["caroline@example.org"], "carol-pw",
                          "Carol Example"),
    "Dave.Upper@Example.com": ("dave", "mbox2", ["DUpper@Example.org"], "dave-pw",
                               "Dave Upper"),
    "tag+box@example.com": ("tagbox", "mbox3", [], "tag-pw", "Tag Box"),
    LONG_MAIL: ("longname", "mbox1", [], "long-pw", "Long Name"),
    "juergen@example.org": ("juergen", "mbox2", [], "juergen-pw", "Jürgen Müller"),
    "mallory@example.com": ("mallory", EVIL_HOST, [], "mallory-pw", "Mallory Evil"),
    "dup1@example.com": ("dup1", "mbox1", [SHARED_ALIAS], "dup1-pw", "Dup One"),
    "dup2@example.org": ("dup2", "mbox2", [SHARED_ALIAS], "dup2-pw", "Dup Two"),
    "quote@example.com": ("quote", "mbox1", [], 'q "uo" \\te d', "Quote Person"),
}


def password_for(mail):
    """Return the plain password of the account or alias <mail> (any case)."""
    key = mail.lower()
    for m, spec in NAMED.items():
        if m.lower() == key or key in (a.lower() for a in spec[2]):
            return spec[3]
    for u in _generic_cache():
        if u["mail"] == key or key in u["aliases"]:
            return u["password"]
    return "pw-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def ssha(password, mail):
    """Return the {SSHA} value of <password> with a salt derived from <mail>."""
    salt = hashlib.sha256(("salt:" + mail.lower()).encode()).digest()[:8]
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


_GENERIC = {}


def _generic(n):
    out = []
    for i in range(n):
        dom = DOMAINS[i % 2]
        other = DOMAINS[(i + 1) % 2]
        mail = "user%04d@%s" % (i, dom)
        aliases = []
        if i % 10 == 0:
            aliases.append("alias%04d@%s" % (i, dom))
        if i % 30 == 0:
            aliases.append("other%04d@%s" % (i, other))
        out.append({
            "uid": "user%04d" % i,
            "mail": mail,
            "domain": dom,
            "host": SERVERS[i % 3],
            "aliases": aliases,
            "password": "pw-" + hashlib.sha256(mail.encode()).hexdigest()[:12],
            "cn": "User %04d" % i,
        })
    return out


def _generic_cache(n=DEFAULT_USERS):
    if n not in _GENERIC:
        _GENERIC[n] = _generic(n)
    return _GENERIC[n]


def users(n=DEFAULT_USERS):
    """Return every user as a dict: uid, dn, mail (as stored), domain, host,
    aliases (as stored), password (plain), cn. Named users come first."""
    out = []
    for mail, (uid, host, aliases, pw, cn) in NAMED.items():
        out.append({"uid": uid, "mail": mail, "domain": mail.split("@", 1)[1].lower(),
                    "host": host, "aliases": list(aliases), "password": pw, "cn": cn})
    out.extend(dict(u, aliases=list(u["aliases"])) for u in _generic_cache(n))
    for u in out:
        u["dn"] = "uid=%s,ou=%s,%s" % (u["uid"], u["domain"], SUFFIX)
    return out


def user(mail, n=DEFAULT_USERS):
    """Return the user whose mail or alias is <mail> (any case), or None."""
    key = mail.lower()
    for u in users(n):
        if u["mail"].lower() == key or key in (a.lower() for a in u["aliases"]):
            return u
    return None


def _attr(name, value):
    """One LDIF line, base64 when the value is not safe ASCII."""
    safe = value.isascii() and value == value.strip() and not value.startswith((":", "<")) \
        and all(32 <= ord(c) < 127 for c in value)
    if safe:
        return "%s: %s" % (name, value)
    return "%s:: %s" % (name, base64.b64encode(value.encode("utf-8")).decode())


def entry_ldif(u):
    """Return the LDIF of user dict <u> (as from users())."""
    cn = u["cn"]
    sn = cn.split()[-1]
    lines = [
        "dn: " + u["dn"],
        "objectClass: inetOrgPerson",
        "objectClass: inetLocalMailRecipient",
        _attr("uid", u["uid"]),
        _attr("cn", cn),
        _attr("sn", sn),
        _attr("displayName", cn),
        _attr("mail", u["mail"]),
    ]
    lines += [_attr("mailLocalAddress", a) for a in u["aliases"]]
    lines.append(_attr("mailHost", u["host"]))
    lines.append(_attr("userPassword", ssha(u["password"], u["mail"])))
    return "\n".join(lines) + "\n"


def vhosts(domain):
    """Return the virtual host names the directory lists for <domain>."""
    return ("mail." + domain, "webmail." + domain)


def base_ldif():
    """Return the LDIF of the suffix, the domain OUs and the bind entry."""
    parts = ["dn: %s\nobjectClass: organization\no: gatehouse\n" % SUFFIX]
    for d in DOMAINS:
        # the web host names each domain is served under, as Zimbra keeps them
        # in zimbraVirtualHostname; [ldap] vhost_filter = (associatedDomain=%s)
        parts.append("dn: ou=%s,%s\nobjectClass: organizationalUnit\n"
                     "objectClass: domainRelatedObject\nou: %s\n%s"
                     % (d, SUFFIX, d, "".join("associatedDomain: %s\n" % h
                                              for h in vhosts(d))))
    parts.append("dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
                 "cn: gatehouse\ndescription: read-only bind for gatehouse\n%s\n"
                 % (BIND_DN, _attr("userPassword", ssha(BIND_PW, BIND_DN))))
    return "\n".join(parts)


def ldif(n=DEFAULT_USERS):
    """Return the whole seed LDIF (base entries and every user)."""
    return base_ldif() + "\n" + "\n".join(entry_ldif(u) for u in users(n))


def passwd_file(host, n=DEFAULT_USERS):
    """Return dovecot passwd-file text for mailbox server <host>: one line per
    login name (canonical and aliases, lower case) of that server's users."""
    lines = []
    for u in users(n):
        if u["host"] != host:
            continue
        canon = u["mail"].lower()
        for name in [canon] + [a.lower() for a in u["aliases"]]:
            if ":" in name or ":" in u["password"]:
                continue
            extra = "" if name == canon else "user=" + canon
            lines.append("%s:{PLAIN}%s::::::%s" % (name, u["password"], extra))
    return "\n".join(lines) + "\n"


def write_all(ldif_path=None, passwd_dir=None, n=DEFAULT_USERS):
    """Write the LDIF to <ldif_path> and passwd-files <passwd_dir>/<server>.passwd."""
    if ldif_path:
        with open(ldif_path, "w", encoding="utf-8") as f:
            f.write(ldif(n))
    if passwd_dir:
        os.makedirs(passwd_dir, exist_ok=True)
        for host in SERVERS:
            p = os.path.join(passwd_dir, host + ".passwd")
            with open(p, "w", encoding="utf-8") as f:
                f.write(passwd_file(host, n))
            os.chmod(p, 0o644)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ldif", help="write the seed LDIF here ('-' for stdout)")
    ap.add_argument("--passwd-dir", help="write <server>.passwd dovecot files here")
    ap.add_argument("--users", type=int, default=DEFAULT_USERS, help="generic users")
    ap.add_argument("--password", metavar="MAIL", help="print the password of account MAIL")
    a = ap.parse_args(argv)
    if a.password:
        print(password_for(a.password))
        return 0
    if not a.ldif and not a.passwd_dir:
        ap.error("nothing to do: give --ldif and/or --passwd-dir")
    if a.ldif == "-":
        sys.stdout.write(ldif(a.users))
        write_all(None, a.passwd_dir, a.users)
    else:
        write_all(a.ldif, a.passwd_dir, a.users)
    return 0


if __name__ == "__main__":
    sys.exit(main())
