"""memcached key encoding from DESIGN.md ("Route lookup"), for tests that
check or plant cache entries: prefix "gh:", kind, then the lower-cased key
when it is at most 200 bytes of printable ASCII without spaces, otherwise '#'
and the hex SHA-256 of it."""
import hashlib


def make(kind, key):
    """Return the memcached key for <kind> ('n:', 'i:', 'ti:', 'tu:', 'fi:',
    'fu:') and <key> (lower-cased here)."""
    k = key.encode("utf-8").lower()   # ASCII-only lower case, like the C side
    if len(k) <= 200 and all(0x21 <= b <= 0x7e for b in k):
        return "gh:" + kind + k.decode()
    return "gh:" + kind + "#" + hashlib.sha256(k).hexdigest()
