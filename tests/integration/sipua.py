# SPDX-License-Identifier: MIT
"""A small SIP subscriber (user agent) for the notifier tests.

It speaks just enough RFC 3261 over UDP or TCP on 127.0.0.1 to SUBSCRIBE,
refresh and unsubscribe in one dialog, and to receive NOTIFYs and answer them
(200 by default, or any status / silence the test asks for). sipp covers the
scripted flows; this client lets a test read and parse every body.
"""

import hashlib
import re
import socket
import time
import uuid
import xml.etree.ElementTree as ET

DIFF_NS = "urn:ietf:params:xml:ns:xcap-diff"
RL_BODY = """<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list>
{entries}
  </list>
</resource-lists>
"""


def rl_body(*uris):
    return RL_BODY.format(entries="\n".join(f'    <entry uri="{u}"/>' for u in uris)).encode()


def digest_authorization(challenge, username, password, uri, method="SUBSCRIBE",
                         cnonce="0a4f113b", nc="00000001"):
    """An RFC 7616 Authorization value (qop=auth) answering the WWW-Authenticate
    @challenge; returns (the header value, the response digest)."""
    chal = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge))
    algo = chal["algorithm"]
    h = hashlib.sha256 if algo == "SHA-256" else hashlib.md5

    def hx(x):
        return h(x.encode()).hexdigest()

    ha1 = hx(f"{username}:{chal['realm']}:{password}")
    ha2 = hx(f"{method}:{uri}")
    response = hx(f"{ha1}:{chal['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    auth = (f'Digest username="{username}", realm="{chal["realm"]}", nonce="{chal["nonce"]}", uri="{uri}", '
            f'response="{response}", algorithm={algo}, qop=auth, nc={nc}, cnonce="{cnonce}", '
            f'opaque="{chal["opaque"]}"')
    return auth, response


class Message:
    """A parsed SIP request or response."""

    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
        parts = self.start.split(" ", 2)
        if parts[0] == "SIP/2.0":
            self.status = int(parts[1])
            self.method = None
        else:
            self.status = None
            self.method = parts[0]

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name, default=None):
        values = self.all(name)
        return values[0] if values else default

    def cseq(self):
        return int(self.header("CSeq").split()[0])

    def diff(self):
        """The xcap-diff body as an ElementTree root."""
        return ET.fromstring(self.body)

    def documents(self):
        return [d.attrib for d in self.diff().findall(f"{{{DIFF_NS}}}document")]

    def __repr__(self):
        return f"<SIP {self.start!r} {self.raw[:1500]!r}>"


def split_messages(data):
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        m = re.search(rb"\r\n(?:Content-Length|l):\s*(\d+)", data[:end + 2], re.I)
        total = end + 4 + (int(m.group(1)) if m else 0)
        if len(data) < total:
            break
        out.append(Message(data[:total]))
        data = data[total:]
    return out, data


class Subscriber:
    """One subscriber with its own socket (UDP, or a TCP connection to the server)."""

    def __init__(self, port, aor="sip:alice@example.com", transport="UDP", listen_port=0):
        self.port = port
        self.aor = aor
        self.transport = transport
        self.tag = "t" + uuid.uuid4().hex[:10]
        self.call_id = uuid.uuid4().hex + "@127.0.0.1"
        self.cseq = 0
        self.remote_tag = None
        self.inbox = []
        self.buf = b""
        self.auto_answer = 200  # None: leave NOTIFYs unanswered
        self.received = []  # every datagram or TCP chunk, raw, in order
        if transport == "UDP":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", listen_port))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.local_port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()

    def send(self, data):
        if self.transport == "UDP":
            self.sock.sendto(data, ("127.0.0.1", self.port))
        else:
            self.sock.sendall(data)

    def _read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            if self.transport == "UDP":
                data, _ = self.sock.recvfrom(65536)
                self.received.append(data)
                return [Message(data)]
            chunk = self.sock.recv(65536)
            self.received.append(chunk)
            if not chunk:
                raise ConnectionError("server closed the TCP connection")
            msgs, self.buf = split_messages(self.buf + chunk)
            return msgs
        except socket.timeout:
            return []

    def _answer(self, req, status):
        lines = [f"SIP/2.0 {status} {'OK' if status == 200 else 'Whatever'}"]
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for v in req.all(name):
                lines.append(f"{name}: {v}")
        lines.append("Content-Length: 0")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def pump(self, timeout):
        """Reads for up to @timeout seconds, answering NOTIFYs; returns what came."""
        got = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for m in self._read(min(left, 0.2)):
                if m.method == "NOTIFY" and self.auto_answer:
                    self._answer(m, self.auto_answer)
                got.append(m)
                self.inbox.append(m)
            if got and timeout == 0:
                break
        return got

    def wait(self, pred, timeout=5.0, what="message"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, m in enumerate(self.inbox):
                if pred(m):
                    del self.inbox[i]
                    return m
            for m in self._read(min(0.2, max(0.01, deadline - time.monotonic()))):
                if m.method == "NOTIFY" and self.auto_answer:
                    self._answer(m, self.auto_answer)
                self.inbox.append(m)
        raise AssertionError(f"no {what} within {timeout}s; inbox: {self.inbox!r}")

    def response(self, timeout=5.0):
        return self.wait(lambda m: m.status is not None and m.header("CSeq", "").endswith("SUBSCRIBE"),
                         timeout, "SUBSCRIBE response")

    def notify(self, timeout=5.0):
        return self.wait(lambda m: m.method == "NOTIFY", timeout, "NOTIFY")

    def no_notify(self, timeout=1.5):
        self.pump(timeout)
        notes = [m for m in self.inbox if m.method == "NOTIFY"]
        assert not notes, f"unexpected NOTIFY: {notes!r}"

    def subscribe(self, body=None, expires=600, event="xcap-diff", mode=None, extra=(),
                  content_type="application/resource-lists+xml", accept="application/xcap-diff+xml",
                  request_uri=None):
        self.cseq += 1
        ev = event + (f";diff-processing={mode}" if mode else "")
        to = f"<{self.aor}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")
        branch = "z9hG4bK-" + uuid.uuid4().hex[:12]
        lines = [
            f"SUBSCRIBE {request_uri or self.aor} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} 127.0.0.1:{self.local_port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <{self.aor}>;tag={self.tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} SUBSCRIBE",
            f"Contact: <sip:sub@127.0.0.1:{self.local_port};transport={self.transport.lower()}>",
            f"Event: {ev}",
        ]
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if accept:
            lines.append(f"Accept: {accept}")
        lines += list(extra)
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body or b'')}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        resp = self.response()
        if resp.status == 200 and not self.remote_tag:
            m = re.search(r";tag=([^;>\s]+)", resp.header("To"))
            self.remote_tag = m.group(1)
        return resp
