# SPDX-License-Identifier: MIT
"""Helpers for the IWF tests: Feature Handler requests, waiting for their
<response>, adapters added with xdmsctl, and nginx as an HTTP 3rd party.

Everything listens on 127.0.0.1 with ephemeral ports.
"""

import hashlib
import hmac
import http.client
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from lxml import etree

from xdmslib import FH, PCC, doc_path, expect

FH_NS = "urn:oma:xml:cab:feature-handler"
PCC_NS = "urn:oma:xml:cab:pcc"
NS = {"fh": FH_NS, "pcc": PCC_NS}

RESPONSE_TIMEOUT = 30.0

# A small PCC of the local user, for imports to merge into.
LOCAL_PCC = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
             b'<pcc xmlns="urn:oma:xml:cab:pcc" pcc-type="individual"><person-details>'
             b'<name><name-entry pref="1"><display-name>Alice Local</display-name></name-entry></name>'
             b'<comm-addr><tel pref="1" tel-type="Home"><tel-nb><tel-string>tel:+15555550111</tel-string>'
             b'</tel-nb></tel></comm-addr>'
             b'</person-details></pcc>\n')


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def request_xml(kind, rid, third_party, remote_user=None, username=None, password=None, fields=None,
                merge_policy=None, source_sel=None, credential_ref=None, token=None, target=None):
    """One <import-profile> or <export-profile> element."""
    parts = [f'<{kind} id="{xml_escape(rid)}">', f'<third-party id="{xml_escape(third_party)}"/>']
    if username is not None:
        parts.append(f"<credentials><username>{xml_escape(username)}</username>"
                     f"<password>{xml_escape(password)}</password></credentials>")
    if token is not None:
        parts.append(f"<credentials><token>{xml_escape(token)}</token></credentials>")
    if credential_ref is not None:
        parts.append(f"<credentials><credential-ref>{xml_escape(credential_ref)}</credential-ref></credentials>")
    if remote_user is not None:
        parts.append(f"<remote-user>{xml_escape(remote_user)}</remote-user>")
    if fields is not None:
        parts.append(f"<fields>{fields}</fields>")
    if target is not None:
        parts.append(f"<target>{target}</target>")
    if merge_policy is not None:
        parts.append(f"<merge-policy>{merge_policy}</merge-policy>")
    if source_sel is not None:
        parts.append(f"<source-sel>{xml_escape(source_sel)}</source-sel>")
    parts.append(f"</{kind}>")
    return "".join(parts)


def fh_doc(*requests):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<cab-feature-handler xmlns="{FH_NS}">'
            + "".join(requests) + "</cab-feature-handler>\n").encode("utf-8")


def response_of(body, rid):
    """The <response> element of request @rid in a Feature Handler document, or None."""
    root = etree.fromstring(body)
    found = root.xpath(f"/fh:cab-feature-handler/*[@id='{rid}']/fh:response", namespaces=NS)
    return found[0] if found else None


def wait_response(client, xui, rid, final=True, timeout=RESPONSE_TIMEOUT):
    """Polls the user's Feature Handler document until request @rid has a
    <response> (a final one when @final). Returns (response element, body)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = expect(client.get(doc_path(FH, xui)), 200)
        last = r.body
        resp = response_of(r.body, rid)
        if resp is not None and (not final or resp.get("status") not in ("pending", "in-progress")):
            return resp, r.body
        time.sleep(0.05)
    raise AssertionError(f"request {rid} of {xui} got no {'final ' if final else ''}<response> within "
                         f"{timeout}s; the document is: {last!r}")


def wait_for(pred, what, timeout=30.0):
    """Polls @pred until it returns something true; that value, or an
    AssertionError naming @what and the last value after @timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")


def describe(resp):
    return etree.tostring(resp).decode()


def expect_response(resp, status, code):
    assert resp.get("status") == status and resp.get("code") == str(code), \
        f"expected <response status={status!r} code={code}>, got {describe(resp)}"
    return resp


def text(resp, name):
    found = resp.find(f"{{{FH_NS}}}{name}")
    return None if found is None else found.text


def add_adapter(server, aid, kind, url, *extra, check=0):
    return server.ctl("adapter", "add", aid, "--kind", kind, "--url", url, *extra, check=check)


def pcc_url(remote, user="{remote-user}"):
    return f"http://127.0.0.1:{remote.port}{doc_path(PCC, user)}"


def jobs(server, *args):
    """xdmsctl jobs as a list of dicts."""
    res = server.ctl("jobs", *args, check=0)
    out = []
    for line in res.stdout.decode().splitlines():
        f = line.split("\t")
        assert len(f) == 10, f"xdmsctl jobs: expected 10 tab-separated fields, got {line!r}"
        out.append({"id": int(f[0]), "state": f[1], "kind": f[2], "xui": f[3], "request": f[4],
                    "attempts": int(f[5]), "code": int(f[6]), "created": f[7], "updated": f[8],
                    "reason": f[9]})
    return out


def free_port():
    """A loopback port nothing listens on (bound and released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# nginx as the HTTP 3rd party

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    """A non-daemon nginx with its own prefix, on a loopback ephemeral port.
    /profiles/ serves files (GET) and accepts WebDAV PUT."""

    def __init__(self, workdir, extra_locations=""):
        self.dir = Path(workdir)
        self.root = self.dir / "root"
        (self.root / "profiles").mkdir(parents=True, exist_ok=True)
        (self.dir / "logs").mkdir(exist_ok=True)
        (self.dir / "tmp").mkdir(exist_ok=True)
        self.extra = extra_locations
        self.proc = None
        self.port = None

    def start(self):
        for _ in range(20):
            self.port = free_port()
            conf = self.dir / "nginx.conf"
            conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format timed '$msec $request_time $request_method $request_uri $status';
    access_log {self.dir}/logs/access.log timed;
    client_body_temp_path {self.dir}/tmp/body;
    proxy_temp_path {self.dir}/tmp/proxy;
    fastcgi_temp_path {self.dir}/tmp/fastcgi;
    uwsgi_temp_path {self.dir}/tmp/uwsgi;
    scgi_temp_path {self.dir}/tmp/scgi;
    default_type application/xml;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location /profiles/ {{
            dav_methods PUT;
            create_full_put_path on;
            dav_access user:rw;
            client_max_body_size 1m;
        }}
        {self.extra}
    }}
}}
""")
            self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(conf), "-e",
                                          str(self.dir / "logs" / "error.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
            self.stop()
            if "Address already in use" not in err:
                raise AssertionError(f"nginx did not start: {err}")
        raise AssertionError("nginx found no free port")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def calls(self):
        """(start, end, method, uri, status) of every request nginx answered, in seconds."""
        out = []
        for line in (self.dir / "logs" / "access.log").read_text().splitlines():
            end, took, method, uri, status = line.split()
            out.append((float(end) - float(took), float(end), method, uri, int(status)))
        return out

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            self.proc.stderr.close()
            self.proc = None


def nginx_available():
    return os.access(NGINX, os.X_OK)


# --------------------------------------------------------------------------
# An HTTP 3rd party with a webhook (docs/operations.md, Subscriptions)

class WebhookThirdParty:
    """A loopback HTTP 3rd party: GET /profile/<user> serves a PCC with an
    ETag (304 on a matching If-None-Match), POST/DELETE /hooks registers and
    unregisters callbacks (the contract of docs/operations.md)."""

    def __init__(self, profile):
        self.profile = profile
        self.version = 1
        self.hooks = {}       # id -> {"callback", "secret"}
        self.unregistered = []
        self.gets = 0
        parent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _body(self):
                n = int(self.headers.get("Content-Length", "0"))
                return self.rfile.read(n)

            def do_GET(self):
                parent.gets += 1
                etag = f'"v{parent.version}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(parent.profile)))
                self.end_headers()
                self.wfile.write(parent.profile)

            def do_POST(self):
                doc = etree.fromstring(self._body())
                ns = {"w": "urn:xdmsd:xml:iwf-webhook"}
                hid = doc.xpath("string(w:id)", namespaces=ns)
                parent.hooks[hid] = {"callback": doc.xpath("string(w:callback)", namespaces=ns),
                                     "secret": doc.xpath("string(w:secret)", namespaces=ns)}
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_DELETE(self):
                doc = etree.fromstring(self._body())
                parent.unregistered.append(doc.xpath("string(w:id)", namespaces={"w": "urn:xdmsd:xml:iwf-webhook"}))
                self.send_response(204)
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def call_hook(self, hid, body=b'{"changed":true}', secret=None, signature=None):
        """POSTs to the callback of webhook @hid, signed with its secret (or
        @secret; @signature replaces the header, False leaves it out).
        Returns (status, body)."""
        hook = self.hooks[hid]
        mac = hmac.new((secret or hook["secret"]).encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json"}
        if signature is not False:
            headers["X-Xdms-Signature"] = signature or f"sha256={mac}"
        url = hook["callback"]
        rest = url.split("//", 1)[1]
        hostport, path = rest.split("/", 1)
        conn = http.client.HTTPConnection(hostport, timeout=10)
        conn.request("POST", "/" + path, body=body, headers=headers)
        r = conn.getresponse()
        out = (r.status, r.read())
        conn.close()
        return out
