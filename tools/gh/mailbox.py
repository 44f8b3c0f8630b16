"""Stand-in HTTP mailbox servers: small threaded HTTP servers on loopback
that answer every request with their own name (and the X-Forwarded-* they
saw). Used by the integration tests, the demo and the benchmarks."""
import base64
import http.server
import json
import ssl
import threading
import time
import urllib.parse

from .ports import free_port
from .slapd import gen_ldif


class _MboxHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _refuses(self, data):
        """With mbox_auth set, tell whether the request carries credentials
        (a login form's username/password, or Basic) that are wrong: the
        password of the seed directory's account (gen_ldif.password_for)."""
        if not getattr(self.server, "mbox_auth", False):
            return False
        if self.path.startswith(tuple(getattr(self.server, "mbox_public", ()))):
            return False          # a static file: credentials never checked
        user = pw = None
        auth = self.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                user, _, pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                return True
        else:
            # as a servlet reads parameters: the query string's first
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            form = urllib.parse.parse_qs(data.decode("utf-8", "replace")) \
                if self.command == "POST" and data else {}
            if "username" in query or "username" in form:
                user = (query.get("username") or form["username"])[0]
                pw = (query.get("password") or form.get("password") or [""])[0]
        return user is not None and pw != gen_ldif.password_for(user.strip())

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n) if n else b""
        body = json.dumps({"server": self.server.mbox_name, "path": self.path,
                           "xff": self.headers.get("X-Forwarded-For"),
                           "xfp": self.headers.get("X-Forwarded-Proto")}).encode()
        status = 401 if self._refuses(data) else self.server.mbox_status
        delay = getattr(self.server, "mbox_delay", 0)
        if delay:
            time.sleep(delay)     # a slow server, not a wait
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Mailbox", self.server.mbox_name)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PROPFIND = do_OPTIONS = _answer

    def log_message(self, *a):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass   # health checks and aborted clients reset connections


class Mailbox:
    """A threaded HTTP server answering with its name <name>; HTTPS only
    with the certificate chain and key of PEM file <pem>."""

    def __init__(self, name, host="127.0.0.1", port=None, status=200, pem=None):
        self.name, self.host = name, host
        self.port = port or free_port(host)
        self.httpd = _QuietServer((host, self.port), _MboxHandler)
        if pem:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pem)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.httpd.mbox_name = name
        self.httpd.mbox_status = status
        self.httpd.mbox_auth = False    # True: refuse wrong passwords with 401
        self.httpd.mbox_delay = 0       # seconds each answer takes
        self.httpd.mbox_public = ()     # path prefixes answered without a check
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
