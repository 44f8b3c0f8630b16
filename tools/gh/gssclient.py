"""Real clients logging in with SASL GSSAPI (RFC 4752) to IMAP and POP3.

Every helper connects to 127.0.0.1:<port> but names the service host
`localhost` (principal imap/localhost@GH.TEST or pop/localhost@GH.TEST), and
takes <env>: the client environment of a ticket, kdc.Ccache.env or
Kdc.client_env(...) (KRB5_CONFIG, KRB5CCNAME, KRB5RCACHEDIR). Each returns a
Result:
    ok        True when the server accepted the login (IMAP tagged OK, POP3
              +OK to the AUTH), False otherwise (refused, or the client gave
              up before or during the exchange)
    answer    the server's last line to the AUTHENTICATE/AUTH command
              ("A01 NO [AUTHENTICATIONFAILED] ...", "+OK Logged in."), or ""
              when the client never got that far
    after     what the server answered to the commands sent after the login
              (text), "" when none
    output    the whole transcript (client tools: stdout + stderr)
    error     the client's own complaint ("Authentication failed. generic
              failure", a GSSError text), or None
    sent_auth True when the client sent the AUTHENTICATE/AUTH command at all
              (False: it failed locally, e.g. no ticket)
    layer_offer, server_max, layer_sent (python helpers only): the
              security layers the server offered (bit mask: 1 none, 2
              integrity, 4 confidentiality), its max buffer size, and the
              layer byte the client answered; None when not reached

Cyrus imtest / pop3test (cyrus-clients, /usr/lib/cyrus/bin):
  imtest(port, env, commands=("a1 SELECT INBOX",), sasl_ir=True,
         min_ssf=None, max_ssf=None, timeout=20) -> Result
    `imtest -m GSSAPI -p <port> localhost`; <commands> (IMAP lines, tags
    included) are written to its stdin and run after the login, then
    imtest sends its own LOGOUT at end of input. sasl_ir=True: imtest sends
    the first token on the AUTHENTICATE line when the server announces
    SASL-IR; sasl_ir=False (`imtest -i`): `AUTHENTICATE GSSAPI`, waits for
    "+ ", then sends the token. min_ssf/max_ssf: imtest -k / -l (min_ssf=1
    insists on an integrity layer; imtest itself aborts with "*" when the
    server offers none). imtest requests mutual authentication: the server
    sends its AP-REP token, imtest answers with an empty line, then the
    security-layer exchange.
  pop3test(port, env, commands=("STAT",), min_ssf=None, max_ssf=None,
           timeout=20) -> Result
    Same for POP3: `CAPA`, then `AUTH GSSAPI` without an initial response,
    "+ " and the token on its own line.
  imtest always exits 0 and, on a failed login, still runs <commands>
  unauthenticated: success is read from its output ("Authenticated." and
  the server's tagged answer), never from its exit status.

curl (Debian's curl has GSS-API: IMAP and POP3 SASL GSSAPI work):
  curl_login(proto, port, env, sasl_ir=None, timeout=20) -> Result
    `curl imap://localhost:PORT/ --login-options AUTH=GSSAPI -u :` (proto
    "imap": lists the mailboxes after login; "pop3": LIST). --resolve pins
    localhost to 127.0.0.1. curl's IMAP uses SASL-IR when the server
    announces it; its POP3 only with sasl_ir=True (--sasl-ir).
    curl does NOT request mutual authentication: the server's first answer
    is directly the wrapped 4-octet security-layer offer (no AP-REP round).

Python (python3-gssapi, in this process):
  imap_login(port, env, authzid="", layer=1, max_size=0, commands=(("SELECT",
             "INBOX"),), mutual=True, timeout=20) -> Result
    imaplib `authenticate("GSSAPI", cb)` (imaplib sends no initial
    response). After the context completes, unwraps the server's 4 octets
    and answers wrap(<layer> + <max_size> (3 octets) + <authzid>),
    layer 1 = no security layer. layer=2 (integrity) or 4 (confidentiality)
    is sent as asked even when the server did not offer it: a client that
    insists on a layer; the proxy must refuse it (Dovecot 2.3 offers only
    "none" but ignores the client's choice and lets it in). <commands>:
    imaplib calls after the login, e.g. (("SELECT", "INBOX"),).
  pop_login(port, env, authzid="", layer=1, max_size=0, commands=("STAT",),
            initial_response=False, mutual=True, timeout=20) -> Result
    poplib POP3: `AUTH GSSAPI` (initial_response=True: `AUTH GSSAPI
    <token>`, RFC 5034), the same exchange; <commands> are POP3 lines.
  sasl_login(proto, port, env, initial_response=None, ...) -> Result
    The same exchange over a plain socket for "imap" or "pop3";
    initial_response=None: IMAP SASL-IR when announced, POP3 without.
  initial_token(env, service="imap", host="localhost", mutual=True)
      -> GssInitiator
    A fresh security context and its first token, made now: .token (bytes),
    .b64 (str). Keep it, let the ticket expire, send it later with
    sasl_login(..., initiator=it) or by hand; .step(server_token) goes on.
  imap_login, pop_login and sasl_login also take initiator= (a
  GssInitiator made earlier), tls= and ssl_context= (below).
  mutual=False: no mutual authentication (like curl): the server sends no
  AP-REP token and goes straight to the security-layer offer.
  GssInitiator(env, service, host, mutual=True): .token, .step(tok),
    .complete, .wrap_layer_reply(server_wrapped, authzid, layer, max_size).

TLS: every helper takes tls=None (plain), "implicit" (IMAPS/POP3S port) or
"starttls" (STARTTLS/STLS first, then the login). The certificate is not
verified unless the python helpers get ssl_context= (curl: cafile=);
imtest/pop3test use -s / -t "" (they never verify).

The python helpers put KRB5_CONFIG, KRB5CCNAME and KRB5RCACHEDIR of <env> in
os.environ while a GSSAPI call runs (MIT reads them per call) and restore
them after; the ccache is also passed explicitly (credential store).
krb_env(env) is that context manager, for a test's own gssapi calls.
"""
import base64
import contextlib
import imaplib
import os
import poplib
import re
import socket
import ssl
import subprocess

IMTEST = "/usr/lib/cyrus/bin/imtest"
POP3TEST = "/usr/lib/cyrus/bin/pop3test"
CURL = "curl"
KRB_VARS = ("KRB5_CONFIG", "KRB5CCNAME", "KRB5RCACHEDIR", "KRB5_TRACE")

LAYER_NONE, LAYER_INTEGRITY, LAYER_CONFIDENTIALITY = 1, 2, 4


class Result:
    """What a GSSAPI login attempt gave; see the module docstring."""

    def __init__(self, ok=False, answer="", after="", output="", error=None, sent_auth=False):
        self.ok = ok
        self.answer = answer
        self.after = after
        self.output = output
        self.error = error
        self.sent_auth = sent_auth
        self.layer_offer = self.server_max = self.layer_sent = None

    def _layers(self, state):
        self.layer_offer = state.get("offer")
        self.server_max = state.get("server_max")
        self.layer_sent = state.get("sent")

    def __repr__(self):
        return ("Result(ok=%r, answer=%r, error=%r, sent_auth=%r, after=%r)"
                % (self.ok, self.answer, self.error, self.sent_auth, self.after[:200]))

    def __bool__(self):
        return bool(self.ok)


# -- environment ------------------------------------------------------------

@contextlib.contextmanager
def krb_env(env):
    """Put the Kerberos variables of <env> into os.environ for the block;
    restore the previous values afterwards."""
    saved = {k: os.environ.get(k) for k in KRB_VARS}
    try:
        for k in KRB_VARS:
            if env.get(k):
                os.environ[k] = env[k]
            else:
                os.environ.pop(k, None)
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- Cyrus imtest / pop3test ------------------------------------------------

def _run_tool(argv, env, stdin_text, timeout):
    try:
        r = subprocess.run(argv, input=stdin_text, capture_output=True, text=True, env=env,
                           timeout=timeout)
        return r.stdout + r.stderr, None
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"")
        err = (e.stderr or b"")
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        if isinstance(err, bytes):
            err = err.decode("utf-8", "replace")
        return out + err, "timed out after %s s" % timeout


def _parse_cyrus(out, proto, timeout_err):
    """Read an imtest/pop3test transcript."""
    lines = out.splitlines()
    res = Result(output=out)
    res.sent_auth = any(re.match(r"C: (A01 AUTHENTICATE|AUTH) ", ln + " ") for ln in lines)
    authn = "Authenticated." in lines
    fail = [ln for ln in lines if ln.startswith("Authentication failed")]
    if proto == "imap":
        ans = [ln[3:] for ln in lines if ln.startswith("S: A01 ")]
        res.ok = authn and bool(ans) and ans[-1].startswith("A01 OK")
    else:
        # the answer to AUTH: the first +OK/-ERR line from S: after C: AUTH
        ans = []
        seen = False
        for ln in lines:
            if ln.startswith("C: AUTH "):
                seen = True
            elif seen and re.match(r"S: (\+OK|-ERR)", ln):
                ans.append(ln[3:])
                break
        res.ok = authn and bool(ans) and ans[-1].startswith("+OK")
    res.answer = ans[-1] if ans else ""
    if fail:
        res.error = fail[0]
    if timeout_err:
        res.error = (res.error + "; " if res.error else "") + timeout_err
        res.ok = False
    # what followed the login: the lines after "Security strength factor"
    # that are not imtest's own chatter
    try:
        i = next(n for n, ln in enumerate(lines) if ln.startswith("Security strength factor"))
        res.after = "\n".join(ln for ln in lines[i + 1:]
                              if not ln.startswith("C: ") and ln != "Connection closed.")
    except StopIteration:
        res.after = ""
    return res


def _tls_args(tls):
    if tls == "implicit":
        return ["-s"]
    if tls == "starttls":
        return ["-t", ""]
    if tls:
        raise ValueError("tls must be None, 'implicit' or 'starttls'")
    return []


def _cyrus(tool, proto, port, env, commands, extra, timeout):
    argv = [tool, "-m", "GSSAPI", "-p", str(port)] + extra + ["localhost"]
    stdin = "".join(c + "\r\n" for c in commands)
    out, err = _run_tool(argv, env, stdin, timeout)
    return _parse_cyrus(out, proto, err)


def _ssf_args(min_ssf, max_ssf):
    extra = []
    if min_ssf is not None:
        extra += ["-k", str(min_ssf)]
    if max_ssf is not None:
        extra += ["-l", str(max_ssf)]
    return extra


def imtest(port, env, commands=("a1 SELECT INBOX",), sasl_ir=True, min_ssf=None, max_ssf=None,
           timeout=20, tls=None):
    """Log in with Cyrus imtest -m GSSAPI; return a Result."""
    extra = _ssf_args(min_ssf, max_ssf) + _tls_args(tls)
    if not sasl_ir:
        extra.append("-i")
    return _cyrus(IMTEST, "imap", port, env, commands, extra, timeout)


def pop3test(port, env, commands=("STAT",), min_ssf=None, max_ssf=None, timeout=20, tls=None):
    """Log in with Cyrus pop3test -m GSSAPI; return a Result."""
    return _cyrus(POP3TEST, "pop3", port, env, commands,
                  _ssf_args(min_ssf, max_ssf) + _tls_args(tls), timeout)


# -- curl -------------------------------------------------------------------

def curl_login(proto, port, env, sasl_ir=None, timeout=20, tls=None, cafile=None):
    """Log in with curl's SASL GSSAPI to imap:// or pop3://; return a
    Result (after = curl's stdout: the mailbox or message list)."""
    scheme = proto + ("s" if tls == "implicit" else "")
    argv = [CURL, "-sS", "-v", "--max-time", str(timeout),
            "--resolve", "localhost:%d:127.0.0.1" % port,
            "%s://localhost:%d/" % (scheme, port), "--login-options", "AUTH=GSSAPI", "-u", ":"]
    if tls == "starttls":
        argv.append("--ssl-reqd")
    if tls:
        argv += ["--cacert", cafile] if cafile else ["-k"]
    if sasl_ir is True:
        argv.append("--sasl-ir")
    try:
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return Result(error="curl timed out")
    lines = r.stderr.splitlines()
    res = Result(output=r.stdout + r.stderr, after=r.stdout)
    sent = [n for n, ln in enumerate(lines)
            if re.match(r"> (A\d+ AUTHENTICATE GSSAPI|AUTH GSSAPI)\b", ln)]
    res.sent_auth = bool(sent)
    if sent:
        tag = lines[sent[0]].split()[1] if proto == "imap" else None
        for ln in lines[sent[0] + 1:]:
            if proto == "imap" and ln.startswith("< %s " % tag):
                res.answer = ln[2:]
                break
            if proto != "imap" and re.match(r"< (\+OK|-ERR)", ln):
                res.answer = ln[2:]
                break
    res.ok = r.returncode == 0 and (res.answer.startswith(tag + " OK") if proto == "imap" and sent
                                    else res.answer.startswith("+OK"))
    if r.returncode != 0:
        res.error = "curl exit %d: %s" % (r.returncode,
                                          " ".join(ln for ln in lines if ln.startswith("curl:")))
    return res


# -- python3-gssapi ---------------------------------------------------------

class GssInitiator:
    """A GSSAPI initiator for <service>@<host> with the ticket of <env>;
    .token is its first token, made at construction."""

    def __init__(self, env, service="imap", host="localhost", mutual=True):
        import gssapi
        self.env = dict(env)
        flags = [gssapi.RequirementFlag.out_of_sequence_detection]
        if mutual:
            flags.append(gssapi.RequirementFlag.mutual_authentication)
        with krb_env(self.env):
            store = {"ccache": env["KRB5CCNAME"]} if env.get("KRB5CCNAME") else None
            creds = gssapi.Credentials(usage="initiate", store=store) if store else None
            name = gssapi.Name("%s@%s" % (service, host), gssapi.NameType.hostbased_service)
            self.ctx = gssapi.SecurityContext(name=name, creds=creds, usage="initiate",
                                              flags=flags)
            self.token = self.ctx.step() or b""
        self.b64 = base64.b64encode(self.token).decode()

    @property
    def complete(self):
        return self.ctx.complete

    def step(self, token):
        """Feed the server's <token> (bytes); return the next token (b""
        when none)."""
        with krb_env(self.env):
            return self.ctx.step(token) or b""

    def wrap_layer_reply(self, wrapped, authzid="", layer=LAYER_NONE, max_size=0):
        """Unwrap the server's 4 octets <wrapped>; return (offer_byte,
        server_max, reply) where reply = wrap(layer, max_size, authzid)."""
        with krb_env(self.env):
            plain = self.ctx.unwrap(wrapped).message
            if len(plain) != 4:
                raise ValueError("server's security layer message is %d octets, not 4"
                                 % len(plain))
            offer, smax = plain[0], int.from_bytes(plain[1:4], "big")
            msg = bytes([layer]) + int(max_size).to_bytes(3, "big") + authzid.encode()
            return offer, smax, self.ctx.wrap(msg, False).message


def initial_token(env, service="imap", host="localhost", mutual=True):
    """Return a GssInitiator whose first token (.token/.b64) is made now."""
    return GssInitiator(env, service, host, mutual)


def _sasl_steps(init, challenge, authzid, layer, max_size, state):
    """One SASL GSSAPI client step: the server's <challenge> (bytes) ->
    the client's response (bytes)."""
    if not init.complete:
        return init.step(challenge)
    if not challenge and not state.get("wrapped"):
        return b""
    state["wrapped"] = True
    offer, smax, reply = init.wrap_layer_reply(challenge, authzid, layer, max_size)
    state["offer"], state["server_max"], state["sent"] = offer, smax, layer
    return reply


def _ssl_ctx(ctx):
    if ctx is not None:
        return ctx
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _gss_error(e):
    return "%s: %s" % (type(e).__name__, e)


def imap_login(port, env, authzid="", layer=LAYER_NONE, max_size=0,
               commands=(("SELECT", "INBOX"),), mutual=True, timeout=20, initiator=None,
               tls=None, ssl_context=None):
    """Log in with imaplib AUTHENTICATE GSSAPI; return a Result."""
    res = Result()
    try:
        init = initiator or GssInitiator(env, "imap", "localhost", mutual)
    except Exception as e:  # noqa: BLE001 - a GSSError: no ticket, no KDC
        res.error = _gss_error(e)
        return res
    state = {"first": True}

    def cb(challenge):
        if state.pop("first", False):
            return init.token
        return _sasl_steps(init, challenge, authzid, layer, max_size, state)

    try:
        if tls == "implicit":
            m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=_ssl_ctx(ssl_context),
                                  timeout=timeout)
        else:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=timeout)
            if tls == "starttls":
                m.starttls(_ssl_ctx(ssl_context))
    except (OSError, imaplib.IMAP4.error) as e:
        res.error = "connect: %s" % e
        return res
    try:
        res.sent_auth = True
        try:
            try:
                typ, data = m.authenticate("GSSAPI", cb)
            finally:
                res._layers(state)
            res.ok = typ == "OK"
            res.answer = "%s %s" % (typ, b" ".join(d for d in data if d).decode(errors="replace"))
        except imaplib.IMAP4.error as e:
            res.answer = "NO %s" % e
            return res
        except Exception as e:  # noqa: BLE001 - a GSSError in the callback
            res.error = _gss_error(e)
            return res
        after = []
        for cmd in commands:
            typ, data = getattr(m, cmd[0].lower())(*cmd[1:])
            after.append("%s %s %r" % (cmd[0], typ, data))
        res.after = "\n".join(after)
        return res
    finally:
        try:
            m.logout()
        except Exception:  # noqa: BLE001 - the server may have closed
            try:
                m.shutdown()
            except Exception:  # noqa: BLE001
                pass


def pop_login(port, env, authzid="", layer=LAYER_NONE, max_size=0, commands=("STAT",),
              initial_response=False, mutual=True, timeout=20, initiator=None,
              tls=None, ssl_context=None):
    """Log in with poplib and AUTH GSSAPI; return a Result."""
    res = Result()
    try:
        init = initiator or GssInitiator(env, "pop", "localhost", mutual)
    except Exception as e:  # noqa: BLE001
        res.error = _gss_error(e)
        return res
    try:
        if tls == "implicit":
            p = poplib.POP3_SSL("127.0.0.1", port, context=_ssl_ctx(ssl_context),
                                timeout=timeout)
        else:
            p = poplib.POP3("127.0.0.1", port, timeout=timeout)
            if tls == "starttls":
                p.stls(_ssl_ctx(ssl_context))
    except (OSError, poplib.error_proto) as e:
        res.error = "connect: %s" % e
        return res
    state = {}
    try:
        if initial_response:
            p._putcmd("AUTH GSSAPI " + init.b64)
        else:
            p._putcmd("AUTH GSSAPI")
        res.sent_auth = True
        first = not initial_response
        while True:
            line, _ = p._getline()
            line = line.decode("utf-8", "replace")
            if line.startswith("+OK") or line.startswith("-ERR"):
                res.answer = line
                res.ok = line.startswith("+OK")
                res._layers(state)
                break
            if not (line == "+" or line.startswith("+ ")):
                res.answer = line
                res.error = "unexpected line"
                break
            chal = base64.b64decode(line[2:]) if len(line) > 2 else b""
            if first:
                out, first = init.token, False
            else:
                try:
                    out = _sasl_steps(init, chal, authzid, layer, max_size, state)
                except Exception as e:  # noqa: BLE001 - GSSError: cancel
                    res.error = _gss_error(e)
                    p._putcmd("*")
                    continue
            p._putcmd(base64.b64encode(out).decode())
        if res.ok:
            after = []
            for cmd in commands:
                try:
                    after.append(p._shortcmd(cmd).decode("utf-8", "replace"))
                except poplib.error_proto as e:
                    after.append(str(e))
            res.after = "\n".join(after)
        return res
    except (OSError, poplib.error_proto) as e:
        res.error = (res.error + "; " if res.error else "") + "%s" % e
        return res
    finally:
        try:
            p.quit()
        except Exception:  # noqa: BLE001
            try:
                p.close()
            except Exception:  # noqa: BLE001
                pass


class _Lines:
    """Read CRLF lines from a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("connection closed")
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("utf-8", "replace")


def sasl_login(proto, port, env, initial_response=None, authzid="", layer=LAYER_NONE,
               max_size=0, mutual=True, timeout=20, initiator=None, transcript=None,
               tls=None, ssl_context=None):
    """Log in with SASL GSSAPI over a plain socket ("imap" or "pop3");
    return a Result whose output is the transcript. <initiator>: a
    GssInitiator made earlier (initial_token) instead of a fresh one."""
    res = Result()
    service = "imap" if proto == "imap" else "pop"
    try:
        init = initiator or GssInitiator(env, service, "localhost", mutual)
    except Exception as e:  # noqa: BLE001
        res.error = _gss_error(e)
        return res
    tr = transcript if transcript is not None else []
    state = {}
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls == "implicit":
            s = _ssl_ctx(ssl_context).wrap_socket(s, server_hostname="localhost")
    except OSError as e:
        res.error = "connect: %s" % e
        return res
    rd = _Lines(s)

    def send(text):
        tr.append("C: " + text)
        s.sendall(text.encode() + b"\r\n")

    def recv():
        ln = rd.line()
        tr.append("S: " + ln)
        return ln

    try:
        greet = recv()
        if tls == "starttls":
            send("S1 STARTTLS" if proto == "imap" else "STLS")
            while True:
                ln = recv()
                if not ln.startswith("* "):
                    break
            if not (ln.startswith("S1 OK") or ln.startswith("+OK")):
                res.answer = ln
                res.error = "STARTTLS refused"
                return res
            s = _ssl_ctx(ssl_context).wrap_socket(s, server_hostname="localhost")
            rd.sock, rd.buf, greet = s, b"", ""
        if proto == "imap":
            caps = greet
            if "CAPABILITY" not in greet:
                send("C1 CAPABILITY")
                while True:
                    ln = recv()
                    caps += " " + ln
                    if ln.startswith("C1 "):
                        break
            ir = ("SASL-IR" in caps) if initial_response is None else initial_response
            send("A1 AUTHENTICATE GSSAPI" + (" " + (init.b64 or "=") if ir else ""))
        else:
            ir = bool(initial_response)
            send("AUTH GSSAPI" + (" " + (init.b64 or "=") if ir else ""))
        res.sent_auth = True
        first = not ir
        while True:
            ln = recv()
            if proto == "imap" and ln.startswith("* "):
                continue
            if ln == "+" or ln.startswith("+ "):
                chal = base64.b64decode(ln[2:]) if len(ln) > 2 else b""
                if first:
                    out, first = init.token, False
                else:
                    try:
                        out = _sasl_steps(init, chal, authzid, layer, max_size, state)
                    except Exception as e:  # noqa: BLE001
                        res.error = _gss_error(e)
                        send("*")
                        continue
                send(base64.b64encode(out).decode())
                continue
            res.answer = ln
            res.ok = ln.startswith("A1 OK") if proto == "imap" else ln.startswith("+OK")
            res._layers(state)
            break
        send("A9 LOGOUT" if proto == "imap" else "QUIT")
        try:
            recv()
        except (OSError, ConnectionError):
            pass
    except (OSError, ConnectionError) as e:
        res.error = (res.error + "; " if res.error else "") + str(e)
    finally:
        s.close()
        res.output = "\n".join(tr)
    return res
