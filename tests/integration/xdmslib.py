# SPDX-License-Identifier: MIT
"""Helpers for the xdmsd black-box tests.

Server   starts the real xdmsd on 127.0.0.1 with an ephemeral port and a
         temporary data directory, and stops it again.
Client   an XCAP client over http.client that answers RFC 7616 Digest
         challenges itself (SHA-256 or MD5, qop=auth), reuses the nonce with
         an incrementing nc, and counts every 401 it receives.
Response the status, the header list and the exact body bytes of one reply.

Nothing here talks to anything but 127.0.0.x.
"""

import hashlib
import http.client
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from lxml import etree

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
REPO = HERE.parent.parent

XCAP_ERROR_NS = "urn:ietf:params:xml:ns:xcap-error"
XCAP_CAPS_NS = "urn:ietf:params:xml:ns:xcap-caps"
RL_NS = "urn:ietf:params:xml:ns:resource-lists"

RL = "resource-lists"
PCC = "org.openmobilealliance.cab-pcc"
FH = "org.openmobilealliance.cab-feature-handler"
CAPS = "xcap-caps"

MIME = {
    RL: "application/resource-lists+xml",
    PCC: "application/vnd.oma.cab-pcc+xml",
    FH: "application/vnd.oma.cab-feature-handler+xml",
    CAPS: "application/xcap-caps+xml",
}

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "tel:+15555550101"
ADMIN = "sip:admin@example.com"
IWF = "sip:cab-iwf@example.com"

PASSWORDS = {
    ALICE: "alice-secret",
    BOB: "bob-secret",
    CAROL: "carol-secret",
    ADMIN: "admin-secret",
}

# The address the default test server trusts for asserted identities. Plain
# clients connect from 127.0.0.1, which is NOT trusted.
TRUSTED_PEER = "127.0.0.2"

DEFAULT_SETTINGS = {
    "auth.trusted_peers": TRUSTED_PEER,
    "auth.server_identities": IWF,
    "auth.admin_identities": ADMIN,
    # Tests of the Feature Handler document play the IWF themselves (as the
    # trusted peer); the IWF's own tests turn it on (test_iwf_*.py).
    "iwf.enabled": "false",
}

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def builddir():
    return Path(os.environ.get("XDMS_BUILDDIR") or REPO)


def xdmsd_path():
    return builddir() / "src" / "xdmsd"


def xdmsctl_path():
    return builddir() / "src" / "xdmsctl"


def data(name):
    """Bytes of a fixture copied into tests/integration/data."""
    return (DATA / name).read_bytes()


def doc_path(auid, xui, doc="index", root="/xcap-root"):
    return f"{root}/{auid}/users/{xui}/{doc}"


def global_path(auid, doc="index", root="/xcap-root"):
    return f"{root}/{auid}/global/{doc}"


def rl_doc(display="Bob", uri="sip:bob@example.com", name="friends"):
    """A small valid resource-lists document."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<resource-lists xmlns="{RL_NS}">\n'
        f'  <list name="{name}">\n'
        f'    <entry uri="{uri}"><display-name>{display}</display-name></entry>\n'
        "  </list>\n"
        "</resource-lists>\n"
    ).encode("utf-8")


# --------------------------------------------------------------------------
# Responses


class Response:
    def __init__(self, method, target, status, reason, headers, body):
        self.method = method
        self.target = target
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), wire order
        self.body = body

    def all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header(self, name):
        """The value of a header sent once; None when absent. A header sent
        more than once is an error of its own, reported with the response."""
        values = self.all(name)
        assert len(values) <= 1, f"header {name} sent {len(values)} times: {self.describe()}"
        return values[0] if values else None

    @property
    def etag(self):
        return self.header("ETag")

    @property
    def content_type(self):
        return self.header("Content-Type")

    def describe(self, limit=600):
        body = self.body if len(self.body) <= limit else self.body[:limit] + b"..."
        hdrs = "; ".join(f"{k}: {v}" for k, v in self.headers)
        return f"{self.method} {self.target} -> {self.status} {self.reason} [{hdrs}] body={body!r}"

    def __repr__(self):
        return f"<Response {self.describe(200)}>"


def expect(resp, status):
    """Asserts the status and returns the response (for chaining)."""
    assert resp.status == status, f"expected HTTP {status}, got {resp.status}: {resp.describe()}"
    return resp


ETAG_RE = re.compile(r'^"[^"\\]+"$')


def expect_etag(resp):
    etag = resp.etag
    assert etag is not None and ETAG_RE.match(etag), \
        f'expected a quoted strong ETag like "x", got {etag!r}: {resp.describe()}'
    return etag


def unquote(etag):
    assert etag.startswith('"') and etag.endswith('"'), etag
    return etag[1:-1]


# --------------------------------------------------------------------------
# Digest (RFC 7616)

_TOKEN_RE = re.compile(r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)\s*')


def parse_challenge(value):
    """Parses one WWW-Authenticate header value holding one challenge:
    returns (scheme, {param: value}) with lower-case parameter names."""
    m = _TOKEN_RE.match(value)
    if not m:
        raise ValueError(f"no auth scheme in {value!r}")
    scheme = m.group(1)
    pos = m.end()
    params = {}
    n = len(value)
    while pos < n:
        while pos < n and value[pos] in " \t,":
            pos += 1
        if pos >= n:
            break
        m = _TOKEN_RE.match(value, pos)
        if not m or m.end() >= n or value[m.end()] != "=":
            raise ValueError(f"bad auth-param at {pos} in {value!r}")
        key = m.group(1).lower()
        pos = m.end() + 1
        while pos < n and value[pos] in " \t":
            pos += 1
        if pos < n and value[pos] == '"':
            pos += 1
            out = []
            while pos < n and value[pos] != '"':
                if value[pos] == "\\" and pos + 1 < n:
                    pos += 1
                out.append(value[pos])
                pos += 1
            if pos >= n:
                raise ValueError(f"unterminated quoted-string in {value!r}")
            pos += 1
            params[key] = "".join(out)
        else:
            m = _TOKEN_RE.match(value, pos)
            if not m:
                raise ValueError(f"bad auth-param value at {pos} in {value!r}")
            params[key] = m.group(1)
            pos = m.end()
    return scheme, params


def digest_challenges(resp):
    """The Digest challenges of a 401, in header order."""
    out = []
    for v in resp.all("WWW-Authenticate"):
        scheme, params = parse_challenge(v)
        if scheme.lower() == "digest":
            out.append(params)
    return out


_HASHES = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}


def _q(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Client:
    """An XCAP client. username/password None = send no credentials.

    request() sends the request; when credentials are set and a challenge is
    known, it answers it proactively (same nonce, next nc). A 401 is counted
    in .unauthorized, its challenge is taken (the requested algorithm), and
    the request is sent once more. .sent lists (method, target, status) of
    every request that went on the wire.
    """

    def __init__(self, server, username=None, password=None, algorithm="SHA-256",
                 source_address=None, headers=None, timeout=30.0):
        self.server = server
        self.username = username
        self.password = password
        self.algorithm = algorithm
        self.source_address = source_address
        self.default_headers = dict(headers or {})
        self.timeout = timeout
        self.unauthorized = 0
        self.stale_seen = 0
        self.sent = []
        self.challenge = None
        self.nc = 0
        self._conn = None
        self._conn_port = None

    # -- connection
    def _connection(self):
        port = self.server.port
        if self._conn is None or self._conn_port != port:
            self.close()
            src = (self.source_address, 0) if self.source_address else None
            self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=self.timeout,
                                                    source_address=src)
            self._conn_port = port
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def _send(self, method, target, body, headers):
        for attempt in (0, 1):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                for k, v in headers.items():
                    conn.putheader(k, v)
                if body is not None or method in ("PUT", "POST", "PATCH"):
                    conn.putheader("Content-Length", str(len(body or b"")))
                conn.endheaders(body if body else None)
                r = conn.getresponse()
                data = r.read()
                resp = Response(method, target, r.status, r.reason, r.getheaders(), data)
                if r.will_close:
                    self.close()
                return resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 1 or not reused:
                    raise

    # -- digest
    def _pick(self, resp):
        for ch in digest_challenges(resp):
            if ch.get("algorithm", "MD5").upper() == self.algorithm.upper():
                return ch
        return None

    def authorization(self, method, target):
        """The Authorization value for the next request (uses the next nc)."""
        ch = self.challenge
        assert ch is not None, "no Digest challenge known yet"
        h = _HASHES[self.algorithm.upper()]

        def hx(s):
            return h(s.encode("utf-8")).hexdigest()

        self.nc += 1
        nc = f"{self.nc:08x}"
        cnonce = secrets.token_hex(8)
        ha1 = hx(f"{self.username}:{ch['realm']}:{self.password}")
        ha2 = hx(f"{method}:{target}")
        response = hx(f"{ha1}:{ch['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        parts = [
            f"username={_q(self.username)}",
            f"realm={_q(ch['realm'])}",
            f"nonce={_q(ch['nonce'])}",
            f"uri={_q(target)}",
            f"algorithm={ch.get('algorithm', 'MD5')}",
            f"response={_q(response)}",
            "qop=auth",
            f"nc={nc}",
            f"cnonce={_q(cnonce)}",
        ]
        if "opaque" in ch:
            parts.append(f"opaque={_q(ch['opaque'])}")
        return "Digest " + ", ".join(parts)

    def request(self, method, target, body=None, headers=None, content_type=None):
        hdrs = dict(self.default_headers)
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        resp = None
        for _ in (0, 1):
            h = dict(hdrs)
            if self.password is not None and self.challenge is not None:
                h["Authorization"] = self.authorization(method, target)
            resp = self._send(method, target, body, h)
            self.sent.append((method, target, resp.status))
            if resp.status != 401:
                return resp
            self.unauthorized += 1
            if self.password is None:
                return resp
            ch = self._pick(resp)
            if ch is None:
                return resp
            if ch.get("stale", "").lower() == "true":
                self.stale_seen += 1
            self.challenge = ch
            self.nc = 0
        return resp

    # -- shorthands
    def get(self, target, headers=None):
        return self.request("GET", target, headers=headers)

    def head(self, target, headers=None):
        return self.request("HEAD", target, headers=headers)

    def delete(self, target, headers=None):
        return self.request("DELETE", target, headers=headers)

    def put(self, target, body, content_type, headers=None):
        return self.request("PUT", target, body=body, headers=headers, content_type=content_type)

    def put_doc(self, auid, xui, body, doc="index", headers=None):
        return self.put(doc_path(auid, xui, doc), body, MIME[auid], headers=headers)


# --------------------------------------------------------------------------
# Processes

LISTEN_RE = re.compile(rb"listening http 127\.0\.0\.1:(\d+)")


class Server:
    """One xdmsd process on a temporary data directory."""

    def __init__(self, workdir, name="xdmsd", sync=False, settings=None, config_file=None,
                 data_dir=None, env=None):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{name}.stderr.log"
        self.stdout_path = self.workdir / f"{name}.stdout.log"
        self.sync = sync
        self.settings = dict(settings or {})
        self.config_file = config_file
        self.env = dict(env or {})  # extra environment variables for xdmsd
        self.proc = None
        self.port = None
        self.exit_codes = []
        self._reader = None
        self._log_lock = threading.Lock()

    # -- users, before start (or while running: xdmsctl works on a live store)
    def ctl(self, *args, check=None, input=None, timeout=30):
        exe = xdmsctl_path()
        assert exe.exists(), f"{exe} does not exist (build it first)"
        cmd = [str(exe), "--data-dir", str(self.data_dir), *args]
        res = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout)
        if check is not None:
            assert res.returncode == check, (
                f"{' '.join(cmd)}: expected exit {check}, got {res.returncode}; "
                f"stdout={res.stdout!r} stderr={res.stderr!r}")
        return res

    def add_user(self, xui, password, realm=None):
        args = []
        if realm is not None:
            args += ["--set", f"auth.realm={realm}"]
        self.ctl(*args, "user", "add", xui, password, check=0)

    # -- lifecycle
    def command(self):
        cmd = [str(xdmsd_path())]
        if self.config_file:
            cmd += ["-c", str(self.config_file)]
        cmd += ["--data-dir", str(self.data_dir), "--http", "127.0.0.1:0",
                "--set", f"store.sync={'true' if self.sync else 'false'}"]
        for k, v in self.settings.items():
            cmd += ["--set", f"{k}={v}"]
        return cmd

    def _log(self, data):
        with self._log_lock, open(self.log_path, "ab") as f:
            f.write(data)

    def start(self):
        assert self.proc is None, "server already running"
        exe = xdmsd_path()
        assert exe.exists(), f"{exe} does not exist (build it first)"
        cmd = self.command()
        self._log(f"\n==== start: {' '.join(cmd)}\n".encode())
        out = open(self.stdout_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.PIPE, env={**os.environ, **self.env})
        finally:
            out.close()
        found = threading.Event()
        port = []
        proc = self.proc

        def drain():
            for line in iter(proc.stderr.readline, b""):
                self._log(line)
                if not found.is_set():
                    m = LISTEN_RE.search(line)
                    if m:
                        port.append(int(m.group(1)))
                        found.set()
            proc.stderr.close()

        self._reader = threading.Thread(target=drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not found.is_set():
            if proc.poll() is not None:
                self._reader.join(2)
                self.proc = None
                raise AssertionError(
                    f"xdmsd exited with {proc.returncode} before listening:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self._kill_proc(proc)
                self.proc = None
                raise AssertionError(
                    f"xdmsd did not print 'listening http 127.0.0.1:PORT' within "
                    f"{START_TIMEOUT}s:\n{self.log_tail()}")
            found.wait(0.05)
        self.port = port[0]
        return self

    def _kill_proc(self, proc):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(STOP_TIMEOUT)
        if self._reader:
            self._reader.join(2)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM, wait; kills after STOP_TIMEOUT. Asserts exit code 0."""
        proc = self.proc
        assert proc is not None, "server not running"
        self.proc = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._kill_proc(proc)
            self._log(b"==== did not exit after SIGTERM; killed\n")
            raise AssertionError(
                f"xdmsd did not exit within {STOP_TIMEOUT}s of SIGTERM:\n{self.log_tail()}")
        if self._reader:
            self._reader.join(5)
        self.exit_codes.append(rc)
        self._log(f"==== exit code {rc}\n".encode())
        if check:
            assert rc == 0, f"xdmsd exited with {rc} after SIGTERM, expected 0:\n{self.log_tail()}"
        return rc

    def kill9(self):
        proc = self.proc
        assert proc is not None, "server not running"
        self.proc = None
        proc.send_signal(signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)
        if self._reader:
            self._reader.join(5)
        self._log(b"==== killed with SIGKILL\n")

    def restart(self):
        self.stop()
        return self.start()

    def changes(self):
        """The change feed (store/changes.c), read with mdb_dump: a list of
        {"seq", "time", "sel", "prev", "new", "detail"} in sequence order.
        Works while the server runs (a read transaction) and while it is down."""
        res = subprocess.run(["mdb_dump", "-s", "changes", str(self.data_dir)], capture_output=True,
                             timeout=30)
        assert res.returncode == 0, f"mdb_dump: {res.stderr!r}"
        lines = res.stdout.decode().splitlines()
        body = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
        out = []
        for key, val in zip(body[0::2], body[1::2]):
            v = bytes.fromhex(val.strip())
            prev_len, new_len = v[2], v[3]
            sel_len = int.from_bytes(v[4:6], "big")
            detail_len = int.from_bytes(v[6:10], "big")
            p = 18
            sel = v[p:p + sel_len].decode()
            p += sel_len + 1
            prev = v[p:p + prev_len].decode()
            p += prev_len + 1
            new = v[p:p + new_len].decode()
            p += new_len + 1
            out.append({"seq": int(key.strip(), 16), "time": int.from_bytes(v[10:18], "big"), "sel": sel,
                        "prev": prev, "new": new,
                        "detail": v[p:p + detail_len].decode() if v[1] & 1 else None})
        return out

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def alive(self):
        """True when the process runs and /healthz answers 200."""
        if not self.running:
            return False
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def client(self, xui=None, password=None, username=None, **kw):
        """A Digest client for a known user (username defaults to the XUI)."""
        if xui is not None and password is None:
            password = PASSWORDS[xui]
        return Client(self, username=username or xui, password=password, **kw)

    def log_tail(self, lines=150):
        try:
            text = self.log_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stdout_text(self):
        try:
            return self.stdout_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""


def raw_exchange_ex(port, data, timeout=10.0, source="127.0.0.1"):
    """Sends raw bytes and reads until the server closes the connection or
    @timeout passes. Returns (bytes received, how) where how is "closed"
    (orderly close), "reset" (connection reset) or "timeout" (the server
    kept the connection open without closing it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    chunks = []
    how = "timeout"
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not chunk:
                how = "closed"
                break
            chunks.append(chunk)
    finally:
        s.close()
    return b"".join(chunks), how


def raw_exchange(port, data, timeout=10.0, source="127.0.0.1"):
    """raw_exchange_ex without the way the exchange ended."""
    return raw_exchange_ex(port, data, timeout, source)[0]


def parse_raw_response(raw):
    """(status, headers list, body bytes) of one raw HTTP/1.1 response."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no end of headers in {raw[:300]!r}"
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers.append((k.decode().strip(), v.decode().strip()))
    return status, headers, body


# --------------------------------------------------------------------------
# XML checks

_schemas = {}


def schema(name):
    if name not in _schemas:
        _schemas[name] = etree.XMLSchema(etree.parse(str(DATA / name)))
    return _schemas[name]


def expect_xcap_error(resp, child, need_phrase=False):
    """Asserts a 409 application/xcap-error+xml body that validates against
    the RFC 4825 schema and holds exactly one child named @child (None =
    any child). Returns the child element."""
    assert resp.status == 409, f"expected HTTP 409 <{child}>, got {resp.status}: {resp.describe()}"
    assert resp.content_type == "application/xcap-error+xml", \
        f"expected Content-Type application/xcap-error+xml, got {resp.content_type!r}: {resp.describe()}"
    try:
        root = etree.fromstring(resp.body, etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as e:
        raise AssertionError(f"409 body is not well-formed XML ({e}): {resp.describe()}")
    assert root.tag == f"{{{XCAP_ERROR_NS}}}xcap-error", \
        f"expected root {{{XCAP_ERROR_NS}}}xcap-error, got {root.tag}: {resp.describe()}"
    children = [c for c in root if isinstance(c.tag, str)]
    assert len(children) == 1, \
        f"expected exactly one child of <xcap-error>, got {[c.tag for c in children]}: {resp.describe()}"
    s = schema("xcap-error.xsd")
    assert s.validate(etree.ElementTree(root)), \
        f"409 body does not validate against xcap-error.xsd: {s.error_log}: {resp.describe()}"
    got = etree.QName(children[0]).localname
    if child is not None:
        assert children[0].tag == f"{{{XCAP_ERROR_NS}}}{child}", \
            f"expected <{child}> in <xcap-error>, got <{got}>: {resp.describe()}"
    if need_phrase:
        phrase = children[0].get("phrase")
        assert phrase, f"expected a non-empty phrase attribute on <{got}>, got {phrase!r}: {resp.describe()}"
    return children[0]


# --------------------------------------------------------------------------
# Prometheus text format

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """[(name, {label: value}, float)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = {}
        if m.group(2):
            pos = 0
            s = m.group(2)
            while pos < len(s):
                lm = _LABEL_RE.match(s, pos)
                assert lm and lm.end() > pos, f"bad labels in {line!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def metric_sum(samples, name, **labels):
    """Sum of the samples called @name whose labels include @labels; None
    when there is none."""
    vals = [v for n, ls, v in samples
            if n == name and all(ls.get(k) == val for k, val in labels.items())]
    return sum(vals) if vals else None


SIP_LISTEN_RE = re.compile(r"listening sip (udp|tcp) 127\.0\.0\.1:(\d+)")


def sip_port(srv, timeout=5.0):
    """The SIP port a server printed after `listening http` (UDP and TCP share it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = dict(SIP_LISTEN_RE.findall(srv.log_path.read_text(errors="replace")))
        if "udp" in found and "tcp" in found:
            assert found["udp"] == found["tcp"], found
            return int(found["udp"])
        time.sleep(0.05)
    raise AssertionError(f"no 'listening sip udp/tcp' lines within {timeout}s:\n{srv.log_tail()}")
