# SPDX-License-Identifier: MIT
"""SIP floods cannot take the server's memory, and what they took is given
back; RFC 3261 §18.3 framing over UDP.

5,000 unauthenticated SUBSCRIBEs used to raise the resident memory by some
120 MB (every 401 kept its transaction for Timer J, 32 s) and it stayed
there after they had ended. Requests beyond sip.max_transactions, or
sip.max_per_source from one address, get 503 with Retry-After.
"""

import socket
import threading
import time
import uuid

import pytest

from xdmslib import ALICE, metric_sum, parse_metrics, sip_port

RL_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
           b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list>'
           b'<entry uri="resource-lists/users/sip:alice@example.com/index"/></list></resource-lists>\n')


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def is_sanitized(pid):
    """True when xdmsd runs with AddressSanitizer, whose allocator keeps
    freed memory in quarantine: resident sizes then say nothing."""
    with open(f"/proc/{pid}/maps") as f:
        return "libasan" in f.read()


def subscribe(local_port, identity=None, sender="sip:cab-iwf@example.com"):
    extra = f"P-Asserted-Identity: <{identity}>\r\n" if identity else ""
    return (f"SUBSCRIBE {ALICE} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: <{sender}>;tag={uuid.uuid4().hex[:8]}\r\nTo: <{ALICE}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@flood\r\nCSeq: 1 SUBSCRIBE\r\n"
            f"Contact: <sip:flood@127.0.0.1:{local_port}>\r\nEvent: xcap-diff\r\nExpires: 600\r\n{extra}"
            "Accept: application/xcap-diff+xml\r\nContent-Type: application/resource-lists+xml\r\n"
            f"Content-Length: {len(RL_BODY)}\r\n\r\n").encode() + RL_BODY


class Flood:
    """Sends SUBSCRIBEs from a few UDP sockets and counts the answers (by
    status; NOTIFYs are answered 200 so that their transactions end)."""

    def __init__(self, port, sockets=8, source="127.0.0.1"):
        self.port = port
        self.socks = []
        for _ in range(sockets):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind((source, 0))
            s.settimeout(0.1)
            self.socks.append(s)
        self.answers = {}
        self.lock = threading.Lock()
        self.stop = False
        self.threads = [threading.Thread(target=self._read, args=(s,), daemon=True) for s in self.socks]
        for t in self.threads:
            t.start()

    def _read(self, s):
        while not self.stop:
            try:
                data, peer = s.recvfrom(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            first = data.split(b"\r\n", 1)[0]
            if first.startswith(b"SIP/2.0 "):
                key = int(first.split(b" ")[1])
            else:
                key = first.split(b" ")[0].decode()
                if key == "NOTIFY":
                    s.sendto(ok_for(data), peer)
            with self.lock:
                self.answers[key] = self.answers.get(key, 0) + 1

    def send(self, count, **kw):
        for i in range(count):
            s = self.socks[i % len(self.socks)]
            s.sendto(subscribe(s.getsockname()[1], **kw), ("127.0.0.1", self.port))
            if i % 100 == 99:
                time.sleep(0.002)  # let the server's socket buffer drain

    def answered(self):
        with self.lock:
            return sum(v for k, v in self.answers.items() if isinstance(k, int))

    def wait_answers(self, count, timeout=15):
        deadline = time.monotonic() + timeout
        while self.answered() < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.answered()

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(1)
        for s in self.socks:
            s.close()


def ok_for(req):
    head = req.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    lines = [b"SIP/2.0 200 OK"] + [h for h in head[1:] if h.split(b":")[0].strip().lower() in
                                   (b"via", b"from", b"to", b"call-id", b"cseq", b"v", b"f", b"t", b"i")]
    return b"\r\n".join(lines + [b"Content-Length: 0", b"", b""])


def test_unauthenticated_flood_holds_no_memory(start_server):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0"})
    port = sip_port(srv)
    pid = srv.proc.pid
    flood = Flood(port)
    try:
        flood.send(20)  # warm up: the first requests allocate what every request needs
        flood.wait_answers(20)
        start = rss_kb(pid)
        peak = start
        sender = threading.Thread(target=flood.send, args=(5000,))
        sender.start()
        while sender.is_alive():
            peak = max(peak, rss_kb(pid))
            time.sleep(0.02)
        answered = flood.wait_answers(5020)
        peak = max(peak, rss_kb(pid))
        assert answered >= 4500, f"only {answered} of 5020 SUBSCRIBEs were answered: {flood.answers}"
        assert set(k for k in flood.answers if isinstance(k, int)) <= {401, 503}, flood.answers
        if is_sanitized(pid):
            return
        assert peak - start < 40_000, \
            f"5,000 unauthenticated SUBSCRIBEs raised RSS from {start} kB to {peak} kB"
        deadline = time.monotonic() + 10
        while rss_kb(pid) > 2 * start and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rss_kb(pid) <= 2 * start, f"RSS after the flood: {rss_kb(pid)} kB, at the start {start} kB"
    finally:
        flood.close()
    assert srv.alive()


def test_requests_beyond_max_transactions_get_503(start_server):
    """Accepted SUBSCRIBEs keep their transaction for Timer J; the cap
    bounds how many, with 503 and Retry-After beyond it."""
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trusted_peers": "127.0.0.1",
                                 "sip.max_transactions": "100"})
    flood = Flood(sip_port(srv))
    try:
        flood.send(300, identity="sip:cab-iwf@example.com")
        flood.wait_answers(300)
        assert flood.answers.get(503, 0) >= 150 and flood.answers.get(200, 0) >= 50, \
            f"expected about 100 accepted and the rest 503, got {flood.answers}"
    finally:
        flood.close()
    assert srv.alive()
    text = srv.client().get("/metrics").body.decode()
    refused = metric_sum(parse_metrics(text), "xdms_sip_refused_total")
    assert refused and refused >= flood.answers.get(503, 0), \
        f"xdms_sip_refused_total is {refused}, but {flood.answers.get(503, 0)} 503s were received"
    assert "sip: refused" in srv.log_path.read_text(errors="replace"), "the refusals were not logged"


def test_one_source_is_capped_trusted_peers_are_not(start_server):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trusted_peers": "127.0.0.2",
                                 "sip.trust_from": "true", "notify.max_per_user": "1000",
                                 "sip.max_per_source": "20"})
    port = sip_port(srv)
    flood = Flood(port, source="127.0.0.1")
    trusted = Flood(port, source="127.0.0.2")
    try:
        flood.send(100, sender=ALICE)
        flood.wait_answers(100)
        assert flood.answers.get(503, 0) >= 50 and 0 < flood.answers.get(200, 0) <= 20, \
            f"one untrusted source: expected at most 20 accepted and 503s, got {flood.answers}"
        trusted.send(100, identity="sip:cab-iwf@example.com")
        trusted.wait_answers(100)
        assert trusted.answers.get(503, 0) == 0 and trusted.answers.get(200, 0) >= 90, \
            f"a trusted peer is exempt from sip.max_per_source, got {trusted.answers}"
    finally:
        flood.close()
        trusted.close()


def ask(port, data, timeout=3.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    try:
        s.sendto(data.replace(b"LOCALPORT", str(s.getsockname()[1]).encode()), ("127.0.0.1", port))
        return s.recv(65536)
    except socket.timeout:
        return b""
    finally:
        s.close()


def options(content_length, body=b"", version="SIP/2.0"):
    return (f"OPTIONS {ALICE} {version}\r\nVia: SIP/2.0/UDP 127.0.0.1:LOCALPORT;branch=z9hG4bK"
            f"{uuid.uuid4().hex[:16]};rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=a1\r\n"
            f"To: <{ALICE}>\r\nCall-ID: {uuid.uuid4().hex}@t\r\nCSeq: 1 OPTIONS\r\n"
            f"Content-Length: {content_length}\r\n\r\n").encode() + body


@pytest.mark.parametrize("length,body,status", [
    ("500", b"abc", 400),                      # larger than the datagram
    ("-5", b"abc", 400),                       # negative
    ("99999999999999999999999", b"abc", 400),  # overflowing
    ("5x", b"abcde", 400),                     # not a number
    ("1", b"abc", 200),                        # smaller: the rest is dropped
], ids=["larger", "negative", "overflow", "garbage", "smaller"])
def test_udp_content_length(start_server, length, body, status):
    """RFC 3261 §18.3."""
    srv = start_server(users={}, settings={"sip.listen": "127.0.0.1:0"})
    got = ask(sip_port(srv), options(length, body))
    assert got.startswith(b"SIP/2.0 %d " % status), f"Content-Length {length}: expected {status}, got {got[:200]!r}"


def test_other_sip_version_is_505(start_server):
    srv = start_server(users={}, settings={"sip.listen": "127.0.0.1:0"})
    got = ask(sip_port(srv), options("0", version="SIP/9.0"))
    assert got.startswith(b"SIP/2.0 505 "), f"SIP/9.0: expected 505, got {got[:200]!r}"
