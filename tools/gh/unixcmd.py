"""One command to a UNIX-socket command line (HAProxy's runtime API and
master CLI): send it, read the answer until the other side closes."""
import socket


def unix_cmd(path, cmd, timeout=10, half_close=True):
    """Send <cmd> and a newline to the socket at <path> (or at
    "ipv4@ip:port"); return the answer
    as text. <half_close> shuts the write side so the server answers and
    closes (not for a master "reload", which re-executes the master)."""
    if path.startswith("ipv4@"):
        # HAProxy's stats socket on TCP (another node's, in a cluster)
        host, _, port = path[5:].rpartition(":")
        fam, addr = socket.AF_INET, (host, int(port))
    else:
        fam, addr = socket.AF_UNIX, path
    with socket.socket(fam) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(cmd.encode() + b"\n")
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    return out.decode("utf-8", "replace")
