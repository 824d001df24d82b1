# SPDX-License-Identifier: MIT
"""SIP transport, transaction and dispatch tests against a real xdmsd.

The server runs with --set sip.listen=127.0.0.1:0 and prints
`listening sip udp ADDR:PORT` and `listening sip tcp ADDR:PORT`. Peers are
sipp (Debian package sip-tester) with the scenarios in sipp/, and a small
raw SIP client below for what sipp cannot express (retransmissions with the
same branch, malformed and oversized datagrams, TCP segmentation).
"""

import re
import shutil
import socket
import subprocess
import time
import uuid

import pytest

from xdmslib import HERE, sip_port

SIPP = shutil.which("sipp")
SCENARIOS = HERE / "sipp"

requires_sipp = pytest.mark.skipif(SIPP is None, reason="sipp (Debian package sip-tester) is not installed")


def sip_ports(srv):
    """The (udp, tcp) ports the server printed after `listening http`."""
    port = sip_port(srv)
    return port, port


@pytest.fixture
def sip_server(start_server):
    srv = start_server(users={}, settings={"sip.listen": "127.0.0.1:0", "sip.max_message": "4096"})
    srv.sip_udp, srv.sip_tcp = sip_ports(srv)
    return srv


# --------------------------------------------------------------------------
# A raw SIP client


def request(method, branch=None, call_id=None, transport="UDP", via_port=5999, extra=(), body=b"",
            content_length=None, cseq=1):
    branch = branch or "z9hG4bK-" + uuid.uuid4().hex[:12]
    call_id = call_id or uuid.uuid4().hex
    lines = [
        f"{method} sip:xdms@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/{transport} 127.0.0.1:{via_port};branch={branch};rport",
        "Max-Forwards: 70",
        "From: <sip:alice@example.com>;tag=a1",
        "To: <sip:xdms@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        *extra,
        f"Content-Length: {len(body) if content_length is None else content_length}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class SipResponse:
    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        parts = lines[0].split(" ", 2)
        assert parts[0] == "SIP/2.0", f"not a SIP response: {raw!r}"
        self.status = int(parts[1])
        self.headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def header(self, name):
        values = self.all(name)
        assert len(values) == 1, f"expected one {name} header, got {values}: {self.raw!r}"
        return values[0]

    def __repr__(self):
        return repr(self.raw)


def split_responses(data):
    """Splits a TCP byte stream into complete responses (Content-Length framed)."""
    out = []
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        m = re.search(rb"\r\nContent-Length:\s*(\d+)", data[:end + 2], re.I)
        total = end + 4 + (int(m.group(1)) if m else 0)
        if len(data) < total:
            break
        out.append(SipResponse(data[:total]))
        data = data[total:]
    return out, data


class UdpPeer:
    def __init__(self, port):
        self.port = port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.local_port = self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendto(data, ("127.0.0.1", self.port))

    def recv(self, timeout=3.0):
        """The next response, or None after @timeout seconds."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65536)
        except socket.timeout:
            return None
        return SipResponse(data)

    def ask(self, data, timeout=3.0):
        self.send(data)
        resp = self.recv(timeout)
        assert resp is not None, f"no answer within {timeout}s to {data[:80]!r}"
        return resp

    def close(self):
        self.sock.close()


@pytest.fixture
def udp(sip_server):
    peer = UdpPeer(sip_server.sip_udp)
    yield peer
    peer.close()


def tcp_exchange(port, chunks, want, pause=0.2, timeout=5.0):
    """Sends @chunks with a pause between them and reads @want responses."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    got = []
    try:
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(pause)
            s.sendall(chunk)
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            if not data:
                break
            buf += data
            more, buf = split_responses(buf)
            got += more
    finally:
        s.close()
    return got


def server_log_count(srv, pattern):
    return len(re.findall(pattern, srv.log_path.read_text(errors="replace")))


# --------------------------------------------------------------------------
# sipp


def run_sipp(srv, scenario, transport):
    port = srv.sip_udp if transport == "u1" else srv.sip_tcp
    cmd = [SIPP, "-sf", str(SCENARIOS / scenario), "-m", "1", "-t", transport, "-i", "127.0.0.1", "-p", "0",
           "-nostdin", "-timeout", "10", "-timeout_error", "-max_recv_loops", "1000", f"127.0.0.1:{port}"]
    res = subprocess.run(cmd, capture_output=True, timeout=30, cwd=srv.workdir)
    assert res.returncode == 0, (
        f"sipp {scenario} over {transport} failed with exit {res.returncode}:\n"
        f"{res.stdout.decode(errors='replace')[-3000:]}\n{res.stderr.decode(errors='replace')[-2000:]}")


@requires_sipp
@pytest.mark.parametrize("transport", ["u1", "t1"])
@pytest.mark.parametrize("scenario", [
    "options.xml", "subscribe_presence.xml", "subscribe_xcap_diff.xml", "message.xml", "unknown_method.xml",
    "invite.xml",
])
def test_sipp_scenarios(sip_server, scenario, transport):
    run_sipp(sip_server, scenario, transport)


# --------------------------------------------------------------------------
# Headers and status codes, checked one by one


def test_listening_lines_share_one_port(sip_server):
    assert sip_server.sip_udp == sip_server.sip_tcp != 0


def test_options_headers(udp):
    resp = udp.ask(request("OPTIONS", call_id="opt-1"))
    assert resp.status == 200, resp
    assert resp.header("Allow") == "OPTIONS, SUBSCRIBE"
    assert resp.header("Allow-Events") == "xcap-diff"
    assert resp.header("Accept") == "application/resource-lists+xml"
    assert resp.header("Content-Length") == "0"
    assert resp.header("Server").startswith("xdmsd/")
    assert resp.header("Call-ID") == "opt-1"
    assert resp.header("CSeq") == "1 OPTIONS"
    assert resp.header("From") == "<sip:alice@example.com>;tag=a1"
    assert re.fullmatch(r"<sip:xdms@127\.0\.0\.1>;tag=\S+", resp.header("To")), resp
    # RFC 3581: rport filled in with the port the request came from.
    assert f"rport={udp.local_port}" in resp.header("Via"), resp


def test_response_goes_to_source_port_with_rport(udp):
    # The Via names port 9, where nobody listens; rport makes the answer
    # come back to the socket the request was sent from (RFC 3581).
    resp = udp.ask(request("OPTIONS", via_port=9))
    assert resp.status == 200, resp


def test_all_vias_are_copied(udp):
    data = request("OPTIONS", extra=["Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-proxy"])
    resp = udp.ask(data)
    vias = resp.all("Via")
    assert len(vias) == 2 and vias[1] == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-proxy", resp


def test_subscribe_other_package_is_489(udp):
    resp = udp.ask(request("SUBSCRIBE", extra=["Event: presence", "Expires: 600"]))
    assert resp.status == 489, resp
    assert resp.header("Allow-Events") == "xcap-diff"


def test_subscribe_without_event_is_489(udp):
    resp = udp.ask(request("SUBSCRIBE", extra=["Expires: 600"]))
    assert resp.status == 489, resp
    assert resp.header("Allow-Events") == "xcap-diff"


def test_subscribe_xcap_diff_compact_event_reaches_the_notifier(udp):
    # The notifier answers (here: no trusted identity, so a Digest challenge).
    resp = udp.ask(request("SUBSCRIBE", extra=["o: xcap-diff;diff-processing=aggregate"]))
    assert resp.status == 401, resp
    assert resp.all("WWW-Authenticate")[0].startswith("Digest realm=\"example.com\""), resp


@pytest.mark.parametrize("method", ["MESSAGE", "PUBLISH", "REFER", "INFO", "UPDATE", "PRACK", "REGISTER",
                                    "NOTIFY"])
def test_known_methods_are_405_with_allow(udp, method):
    resp = udp.ask(request(method))
    assert resp.status == 405, resp
    assert resp.header("Allow") == "OPTIONS, SUBSCRIBE"


def test_unknown_method_is_501(udp):
    assert udp.ask(request("FOO")).status == 501


def test_require_is_420(udp):
    resp = udp.ask(request("OPTIONS", extra=["Require: 100rel"]))
    assert resp.status == 420, resp
    assert resp.header("Unsupported") == "100rel"


def test_response_matching_nothing_is_dropped(udp):
    udp.send(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-nothing\r\n"
             b"From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 NOTIFY\r\n"
             b"Content-Length: 0\r\n\r\n")
    assert udp.recv(0.5) is None
    assert udp.ask(request("OPTIONS")).status == 200


# --------------------------------------------------------------------------
# Transactions


def test_retransmitted_options_gets_the_same_answer(sip_server, udp):
    data = request("OPTIONS", branch="z9hG4bK-retrans-1", call_id="retrans-1")
    first = udp.ask(data)
    second = udp.ask(data)
    assert first.status == second.status == 200
    assert first.raw == second.raw, f"a retransmission must get the identical answer:\n{first}\n{second}"
    # A later transaction's log line marks the point by which any line for
    # the retransmission would have been written (one receiving thread).
    assert udp.ask(request("OPTIONS", call_id="retrans-marker")).status == 200
    deadline = time.monotonic() + 10
    while server_log_count(sip_server, r"OPTIONS \S+ from udp/\S+ call-id retrans-marker ") == 0:
        assert time.monotonic() < deadline, f"the marker transaction was not logged:\n{sip_server.log_tail()}"
        time.sleep(0.02)
    assert server_log_count(sip_server, r"OPTIONS \S+ from udp/\S+ call-id retrans-1 ") == 1, \
        f"expected one transaction for the retransmitted OPTIONS:\n{sip_server.log_tail()}"


def test_new_branch_is_a_new_transaction(udp):
    a = udp.ask(request("OPTIONS", call_id="nb-1"))
    b = udp.ask(request("OPTIONS", call_id="nb-1", cseq=2))
    assert a.header("To") != b.header("To"), "each transaction gets its own To tag"


def test_invite_405_is_retransmitted_until_ack(udp):
    branch = "z9hG4bK-inv-" + uuid.uuid4().hex[:8]
    invite = request("INVITE", branch=branch, call_id="inv-noack")
    first = udp.ask(invite)
    assert first.status == 405, first
    assert first.header("Allow") == "OPTIONS, SUBSCRIBE"
    # No ACK: Timer G (T1 = 500 ms) retransmits the final answer.
    again = udp.recv(2.0)
    assert again is not None and again.status == 405, "the IST must retransmit 405 until the ACK"


def test_invite_ack_is_absorbed(udp):
    branch = "z9hG4bK-inv-" + uuid.uuid4().hex[:8]
    resp = udp.ask(request("INVITE", branch=branch, call_id="inv-ack"))
    assert resp.status == 405, resp
    ack = ("ACK sip:xdms@127.0.0.1 SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch};rport\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\n"
           f"To: {resp.header('To')}\r\nCall-ID: inv-ack\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n").encode()
    udp.send(ack)
    # Nothing answers an ACK, and the 405 is not sent again.
    late = udp.recv(1.5)
    assert late is None, f"expected silence after the ACK, got {late}"
    assert udp.ask(request("OPTIONS")).status == 200


def test_stray_ack_is_ignored(udp):
    udp.send(request("ACK", call_id="stray-ack"))
    assert udp.recv(0.5) is None
    assert udp.ask(request("OPTIONS")).status == 200


# --------------------------------------------------------------------------
# Bad input


def test_malformed_datagram_is_dropped(udp):
    udp.send(b"this is not SIP\r\n\r\n")
    udp.send(b"\x00\xff" * 50)
    assert udp.recv(0.5) is None
    assert udp.ask(request("OPTIONS")).status == 200


def test_broken_headers_get_400(udp):
    data = (b"OPTIONS sip:xdms@127.0.0.1 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-broken\r\n"
            b"From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:xdms@127.0.0.1>\r\n"
            b"Call-ID: broken-1\r\nCSeq: notanumber OPTIONS\r\nThis line has no colon\r\n\r\n")
    resp = udp.ask(data)
    assert resp.status == 400, resp
    assert resp.header("Call-ID") == "broken-1"
    assert re.search(r";tag=\S+", resp.header("To")), resp
    assert udp.ask(request("OPTIONS")).status == 200


def test_oversized_datagram_is_dropped(udp):
    big = request("OPTIONS", extra=["X-Padding: " + "a" * 5000])  # sip.max_message = 4096
    udp.send(big)
    assert udp.recv(0.7) is None, "a datagram above sip.max_message must be dropped"
    assert udp.ask(request("OPTIONS")).status == 200


def test_oversized_tcp_message_gets_513_and_close(sip_server):
    body = b"x" * 5000
    got = tcp_exchange(sip_server.sip_tcp, [request("MESSAGE", transport="TCP", body=body,
                                                     extra=["Content-Type: text/plain"])], want=1)
    assert [r.status for r in got] == [513], got


def test_tcp_missing_content_length_gets_400(sip_server):
    data = request("OPTIONS", transport="TCP").replace(b"Content-Length: 0\r\n", b"")
    got = tcp_exchange(sip_server.sip_tcp, [data], want=1)
    assert [r.status for r in got] == [400], got


# --------------------------------------------------------------------------
# TCP framing


def test_tcp_two_messages_in_one_segment(sip_server):
    a = request("OPTIONS", transport="TCP", call_id="seg-a")
    b = request("SUBSCRIBE", transport="TCP", call_id="seg-b", extra=["Event: presence"])
    got = tcp_exchange(sip_server.sip_tcp, [a + b], want=2)
    assert [(r.status, r.header("Call-ID")) for r in got] == [(200, "seg-a"), (489, "seg-b")], got


def test_tcp_message_split_across_segments(sip_server):
    body = b"hello, split world"
    data = request("MESSAGE", transport="TCP", call_id="split-1", body=body, extra=["Content-Type: text/plain"])
    cut1, cut2 = 20, len(data) - 5  # inside the request line, inside the body
    got = tcp_exchange(sip_server.sip_tcp, [data[:cut1], data[cut1:cut2], data[cut2:]], want=1)
    assert [(r.status, r.header("Call-ID")) for r in got] == [(405, "split-1")], got


def test_tcp_keepalive_ping_and_several_requests(sip_server):
    s = socket.create_connection(("127.0.0.1", sip_server.sip_tcp), timeout=5)
    try:
        s.sendall(b"\r\n\r\n")  # RFC 5626 ping: answered by CRLF
        assert s.recv(2) == b"\r\n"
        for i in range(3):
            s.sendall(request("OPTIONS", transport="TCP", call_id=f"ka-{i}"))
            buf = b""
            while True:
                got, buf = split_responses(buf + s.recv(65536))
                if got:
                    break
            assert got[0].status == 200 and got[0].header("Call-ID") == f"ka-{i}"
    finally:
        s.close()
