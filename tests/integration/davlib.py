# SPDX-License-Identifier: MIT
"""Radicale as the CardDAV 3rd party of the IWF tests and benchmarks, and a
small CardDAV client (http.client) to change its books the way a phone would.

Radicale runs on 127.0.0.1 with an ephemeral port, htpasswd authentication
(plain passwords in a file of its own) and a temporary storage folder; its
log (level info) names every request, so a test can count what xdmsd asked.
"""

import base64
import http.client
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from iwflib import free_port

RADICALE = "/usr/bin/radicale"


def radicale_available():
    return os.access(RADICALE, os.X_OK)


class Radicale:
    def __init__(self, workdir, users):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.storage = self.dir / "storage"
        self.users = dict(users)
        self.proc = None
        self.port = None
        self.log_path = self.dir / "radicale.log"

    def add_book(self, user, book, cards, displayname=None):
        """Writes a book into the storage folder before the start:
        @cards maps file names to vCard text."""
        col = self.storage / "collection-root" / user / book
        col.mkdir(parents=True, exist_ok=True)
        props = {"tag": "VADDRESSBOOK"}
        if displayname:
            props["D:displayname"] = displayname
        (col / ".Radicale.props").write_text(json.dumps(props))
        for name, text in cards.items():
            (col / name).write_bytes(text.encode("utf-8") if isinstance(text, str) else text)

    def start(self):
        (self.dir / "users").write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
        for _ in range(20):
            self.port = free_port()
            conf = self.dir / "config"
            conf.write_text(f"""
[server]
hosts = 127.0.0.1:{self.port}
[auth]
type = htpasswd
htpasswd_filename = {self.dir / 'users'}
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = {self.storage}
[logging]
level = info
mask_passwords = True
""")
            self.log = open(self.log_path, "ab")
            self.proc = subprocess.Popen([RADICALE, "--config", str(conf)],
                                         stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.05)
            self.stop()
            if "Address already in use" not in self.log_path.read_text(errors="replace"):
                raise AssertionError(f"radicale did not start: {self.log_path.read_text(errors='replace')[-2000:]}")
        raise AssertionError("radicale found no free port")

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self):
        """(method, path) of every request Radicale logged, in order."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            m = re.search(r"\b([A-Z]+) request for '([^']*)'", line)
            if m:
                out.append((m.group(1), m.group(2)))
        return out

    def request(self, method, path, body=None, user=None, password=None, headers=None):
        """One request as @user; returns (status, headers dict (lower-case), body bytes)."""
        user = user or next(iter(self.users))
        password = password if password is not None else self.users[user]
        h = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
        h.update(headers or {})
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def put_card(self, path, text, etag=None):
        h = {"Content-Type": "text/vcard; charset=utf-8"}
        if etag:
            h["If-Match"] = etag
        return self.request("PUT", path, text.encode("utf-8"), headers=h)

    def delete(self, path):
        return self.request("DELETE", path)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            self.proc = None
            self.log.close()


# --------------------------------------------------------------------------
# generated books

def fold(line):
    """RFC 6350 §3.2: lines longer than 75 octets are folded (CRLF + space);
    never inside a UTF-8 sequence."""
    raw = line.encode("utf-8")
    out, cur = [], b""
    for ch in line:
        b = ch.encode("utf-8")
        if len(cur) + len(b) > (75 if not out else 74):
            out.append(cur)
            cur = b""
        cur += b
    out.append(cur)
    assert b"".join(out) == raw
    return "\r\n ".join(p.decode("utf-8") for p in out)


def card(lines):
    return "".join(fold(l) + "\r\n" for l in lines)


# A 1x1 PNG, for the inline photo.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()

GIVEN = ["Anna", "Björn", "Chloé", "Dmitri", "Émile", "Fatima", "Günther", "Hana", "Ingrid", "José"]
FAMILY = ["Müller", "Østergaard", "Núñez", "Ivanov", "Łukasiewicz", "Smith", "Nakamura", "O'Brien",
          "Zhang", "Dubois"]


def generated_card(i, version=None):
    """Card @i of a generated book: vCard 3.0 for even numbers, 4.0 for odd."""
    version = version or ("3.0" if i % 2 == 0 else "4.0")
    given, family = GIVEN[i % 10], FAMILY[(i // 10) % 10]
    fn = f"{given} {family} {i}"
    lines = ["BEGIN:VCARD", f"VERSION:{version}", f"UID:card-{i:04d}", f"FN:{fn}", f"N:{family};{given};;;",
             (f"TEL;TYPE=cell:+1555555{i:04d}" if version == "3.0" else f"TEL;TYPE=cell;VALUE=uri:tel:+1555555{i:04d}"),
             f"EMAIL;TYPE=work:{given.lower()}.{i}@example.com",
             # a grouped property, and a long one that must be folded
             f"item1.ADR;TYPE=home:;;{i} Long Street Name That Goes On And On;Springfield;IL;62701;USA",
             "item1.X-ABLABEL:home",
             f"NOTE:{'A note that is long enough to be folded over more than one line. ' * 2}"]
    if i == 7:
        lines.append(f"PHOTO;ENCODING=b;TYPE=PNG:{PNG}" if version == "3.0"
                     else f"PHOTO:data:image/png;base64,{PNG}")
    lines.append("END:VCARD")
    return card(lines)


def generated_book(count):
    return {f"card-{i:04d}.vcf": generated_card(i) for i in range(count)}


# --------------------------------------------------------------------------
# nginx in front of Radicale, to produce what Radicale itself does not do

class DavProxy:
    """One non-daemon nginx proxying to a Radicale on several loopback
    ports, one per behaviour (a dict name -> the body of a `location /`
    block placed before its proxy_pass). The access log keeps each
    request's port, method, path, status and body (JSON-escaped), so a
    test can see which cards a multiget asked for."""

    def __init__(self, workdir, radicale, behaviours):
        from iwflib import NGINX
        self.nginx = NGINX
        self.dir = Path(workdir)
        for d in ("logs", "tmp"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self.radicale = radicale
        self.behaviours = dict(behaviours)
        self.ports = {}
        self.proc = None

    def start(self):
        for _ in range(20):
            self.ports = {name: free_port() for name in self.behaviours}
            servers = "".join(f"""
    server {{
        listen 127.0.0.1:{self.ports[name]};
        location / {{
            {body}
            proxy_pass http://127.0.0.1:{self.radicale.port};
        }}
    }}""" for name, body in self.behaviours.items())
            conf = self.dir / "nginx.conf"
            conf.write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/logs/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format dav escape=json '$server_port $request_method $uri $status $request_body';
    access_log {self.dir}/logs/access.log dav;
    client_body_temp_path {self.dir}/tmp/body;
    proxy_temp_path {self.dir}/tmp/proxy;
    fastcgi_temp_path {self.dir}/tmp/fastcgi;
    uwsgi_temp_path {self.dir}/tmp/uwsgi;
    scgi_temp_path {self.dir}/tmp/scgi;
    client_body_buffer_size 1m;
    client_max_body_size 16m;
    proxy_http_version 1.1;
    proxy_set_header Host $http_host;
    # RFC 6578 §3.2: sync-collection is asked with Depth: 0; RFC 6352's
    # addressbook-multiget is sent with Depth: 1, so the two differ here.
    map "$request_method:$http_depth" $is_sync_report {{
        "REPORT:0" 1;
        default 0;
    }}
{servers}
}}
""")
            self.proc = subprocess.Popen([self.nginx, "-p", str(self.dir), "-c", str(conf), "-e",
                                          str(self.dir / "logs" / "error.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            up = set()
            while time.monotonic() < deadline and self.proc.poll() is None and len(up) < len(self.ports):
                for port in self.ports.values():
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        up.add(port)
                    except OSError:
                        pass
                time.sleep(0.05)
            if len(up) == len(self.ports):
                return self
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
            self.stop()
            if "Address already in use" not in err:
                raise AssertionError(f"nginx did not start: {err}")
        raise AssertionError("nginx found no free port")

    def url(self, name, path="/"):
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def requests(self, name):
        """(method, path, status, body) of every request @name answered."""
        out = []
        log = self.dir / "logs" / "access.log"
        if not log.exists():
            return out
        for line in log.read_text(errors="replace").splitlines():
            port, method, path, status, body = (line.split(" ", 4) + [""])[:5]
            if int(port) == self.ports[name]:
                out.append((method, path, int(status), body.encode().decode("unicode_escape")))
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


# --------------------------------------------------------------------------
# Apache httpd in front of Radicale, for HTTP Digest (RFC 7616)

APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"


def apache_available():
    return os.access(APACHE, os.X_OK) and os.path.exists(f"{APACHE_MODULES}/mod_auth_digest.so")


class DigestProxy:
    """A foreground Apache httpd on a loopback ephemeral port that checks
    Digest credentials (mod_auth_digest, realm @realm, @users) and passes
    the requests on to @radicale as the Radicale account @as_user (Basic,
    set after the Digest check)."""

    MODULES = ("mpm_event", "authn_core", "authn_file", "authz_core", "authz_user", "auth_digest", "headers",
               "proxy", "proxy_http")

    def __init__(self, workdir, radicale, users, as_user, realm="carddav"):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.radicale, self.users, self.as_user, self.realm = radicale, dict(users), as_user, realm
        self.proc = None
        self.port = None

    def start(self):
        import hashlib
        (self.dir / "digest").write_text("".join(
            f"{u}:{self.realm}:{hashlib.md5(f'{u}:{self.realm}:{p}'.encode()).hexdigest()}\n"
            for u, p in self.users.items()))
        os.chmod(self.dir, 0o755)
        os.chmod(self.dir / "digest", 0o644)
        basic = base64.b64encode(f"{self.as_user}:{self.radicale.users[self.as_user]}".encode()).decode()
        modules = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in self.MODULES)
        for _ in range(20):
            self.port = free_port()
            conf = self.dir / "httpd.conf"
            conf.write_text(f"""{modules}
ServerRoot "{self.dir}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile "{self.dir}/httpd.pid"
Mutex file:{self.dir} default
ErrorLog "{self.dir}/error.log"
LogFormat "%m %U %>s" dav
CustomLog "{self.dir}/access.log" dav
StartServers 1
ServerLimit 1
ThreadsPerChild 8
MaxRequestWorkers 8
<Location "/">
    AuthType Digest
    AuthName "{self.realm}"
    AuthDigestProvider file
    AuthUserFile "{self.dir}/digest"
    Require valid-user
    RequestHeader set Authorization "Basic {basic}"
    ProxyPass "http://127.0.0.1:{self.radicale.port}/"
    ProxyPassReverse "http://127.0.0.1:{self.radicale.port}/"
</Location>
""")
            self.proc = subprocess.Popen([APACHE, "-d", str(self.dir), "-f", str(conf), "-D", "FOREGROUND"],
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
            log = (self.dir / "error.log").read_text(errors="replace") if (self.dir / "error.log").exists() else ""
            self.stop()
            if "Address already in use" not in err + log:
                raise AssertionError(f"apache did not start: {err} {log[-2000:]}")
        raise AssertionError("apache found no free port")

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self):
        """(method, path, status) of every request Apache answered."""
        log = self.dir / "access.log"
        if not log.exists():
            return []
        return [(m, p, int(s)) for m, p, s in (line.split() for line in log.read_text().splitlines())]

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
