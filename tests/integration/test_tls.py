# SPDX-License-Identifier: MIT
"""HTTPS: xdmsd serving XCAP over TLS (libmicrohttpd + GnuTLS).

A throwaway certificate for 127.0.0.1 is made with the openssl command; the
client verifies it against that certificate, so the test proves a real TLS
handshake, not a bypass. Basic authentication is accepted over TLS (and only
there unless auth.allow_basic is set); Digest works too.
"""

import base64
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from xdmslib import PASSWORDS, doc_path, rl_doc, xdmsd_path

RL = "resource-lists"
RL_TYPE = "application/resource-lists+xml"
ALICE = "sip:alice@example.com"


@pytest.fixture
def tls_files(tmp_path):
    if not shutil.which("openssl"):
        pytest.fail("the openssl command is needed to make a test certificate (Debian package openssl)")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


@pytest.fixture
def tls_server(start_server, tls_files):
    key, cert = tls_files
    srv = start_server(settings={"http.tls_cert": str(cert), "http.tls_key": str(key)})
    ctx = ssl.create_default_context(cafile=str(cert))
    return srv, ctx


def https(srv, ctx, method, target, body=None, headers=None):
    conn = http.client.HTTPSConnection("127.0.0.1", srv.port, context=ctx, timeout=10)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.getheaders(), r.read()
    finally:
        conn.close()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_over_tls_put_and_get_byte_exact(tls_server):
    srv, ctx = tls_server
    path = doc_path(RL, ALICE)
    body = rl_doc()
    auth = {"Authorization": basic("alice", PASSWORDS[ALICE])}
    status, h, _, _ = https(srv, ctx, "PUT", path, body, {**auth, "Content-Type": RL_TYPE})
    assert status == 201, f"expected 201 for a Basic-authenticated PUT over TLS, got {status}"
    etag = h.get("etag")
    assert etag and etag.startswith('"'), f"expected a quoted ETag, got {etag!r}"
    status, h, _, got = https(srv, ctx, "GET", path, None, auth)
    assert status == 200, f"expected 200, got {status}"
    assert got == body, f"expected the PUT bytes back over TLS, got {got!r}"
    assert h.get("etag") == etag, f"expected ETag {etag}, got {h.get('etag')}"


def test_unauthenticated_over_tls_offers_digest_and_basic(tls_server):
    srv, ctx = tls_server
    status, _, headers, _ = https(srv, ctx, "GET", doc_path(RL, ALICE))
    assert status == 401, f"expected 401, got {status}"
    challenges = [v for k, v in headers if k.lower() == "www-authenticate"]
    schemes = sorted(v.split()[0] for v in challenges)
    assert schemes == ["Basic", "Digest", "Digest"], f"expected Digest (x2) and Basic challenges, got {challenges}"
    assert any('realm="example.com"' in v for v in challenges if v.startswith("Basic")), challenges


def test_wrong_basic_password_over_tls(tls_server):
    srv, ctx = tls_server
    status, _, _, _ = https(srv, ctx, "GET", doc_path(RL, ALICE),
                            headers={"Authorization": basic("alice", "not-the-password")})
    assert status == 401, f"expected 401 for a wrong Basic password, got {status}"


def test_plain_http_to_tls_port_does_not_serve(tls_server):
    srv, ctx = tls_server
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request("GET", doc_path(RL, ALICE))
        r = conn.getresponse()
        status = r.status
    except (http.client.HTTPException, ConnectionError, OSError):
        status = None
    finally:
        conn.close()
    assert status in (None, 400), f"expected the TLS port to refuse plain HTTP, got HTTP {status}"
    # And it still serves TLS afterwards.
    status, _, _, body = https(srv, ctx, "GET", "/healthz")
    assert status == 200 and body == b"ok\n", f"expected /healthz to answer over TLS after the bad client, got {status} {body!r}"


def test_untrusted_certificate_is_rejected_by_a_verifying_client(tls_server, tls_files):
    """The server presents the configured certificate, and a client that
    trusts only the system CAs refuses it for that reason: a failed
    certificate check, not any handshake failure (a plain-HTTP port fails
    a TLS client too, with another error)."""
    srv, _ = tls_server
    _, cert = tls_files
    ctx = ssl.create_default_context()  # system CAs only: our throwaway cert is not among them
    with pytest.raises(ssl.SSLCertVerificationError) as e:
        https(srv, ctx, "GET", "/healthz")
    assert e.value.verify_code == 18, f"expected 'self-signed certificate' (18), got {e.value!r}"
    # What it presented is the configured certificate, byte for byte.
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw:
        with loose.wrap_socket(raw) as tls:
            presented = tls.getpeercert(binary_form=True)
    assert presented == ssl.PEM_cert_to_DER_cert(cert.read_text()), "the server presented another certificate"


def test_a_plain_http_port_fails_the_tls_checks(start_server):
    """The checks above fail against a server without TLS."""
    srv = start_server()
    with pytest.raises(ssl.SSLError) as e:
        https(srv, ssl.create_default_context(), "GET", "/healthz")
    assert not isinstance(e.value, ssl.SSLCertVerificationError), e.value


def read_answer(f):
    """Reads one HTTP answer (status line, head, Content-Length body) from
    the file @f; returns its status line."""
    status = f.readline()
    length = 0
    while True:
        line = f.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line in (b"\r\n", b""):
            break
    f.read(length)
    return status


def test_many_tls_connections_at_once_are_all_served(start_server, tls_files):
    """256 clients connect at once and each sends requests on its connection
    as fast as answers come (a load generator, or phones after a network
    change): every request is answered. Run by libmicrohttpd's own epoll
    thread, a daemon with 128 of these connections ready at once stopped
    serving them (see the tests below, which make that happen for sure)."""
    key, cert = tls_files
    srv = start_server(settings={"http.tls_cert": str(cert), "http.tls_key": str(key),
                                 "http.max_per_address": "1000"})
    ctx = ssl.create_default_context(cafile=str(cert))
    n, rounds = 256, 10
    # Alice's document does not exist: 404 on a connection that stays open.
    req = (f"GET {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: {basic('alice', PASSWORDS[ALICE])}\r\n\r\n").encode()
    start = threading.Barrier(n)
    failures = []

    def client(i):
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            start.wait(timeout=60)
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as ts:
                f = ts.makefile("rb")
                for _ in range(rounds):
                    ts.sendall(req)
                    status = read_answer(f)
                    if not status.startswith(b"HTTP/1.1 404"):
                        failures.append(f"client {i}: {status!r}")
                        return
        except (OSError, threading.BrokenBarrierError) as e:
            failures.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, f"{len(failures)} of {n} clients were not served: {failures[:5]}"


def wait_stopped(pid):
    """Waits until every thread of @pid has stopped (SIGSTOP is delivered
    asynchronously)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        states = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    states.append(f.read().rsplit(")", 1)[1].split()[0])
            except FileNotFoundError:
                pass
        if states and all(st in ("T", "t") for st in states):
            return
        time.sleep(0.01)
    pytest.fail(f"xdmsd (pid {pid}) did not stop on SIGSTOP")


def ready_at_once(srv, n, wrap=None):
    """Opens @n keep-alive connections (wrapped in TLS by @wrap), serves one
    request on each, then freezes xdmsd (SIGSTOP) while every client sends its
    second request, and lets it go: its one daemon finds all @n connections
    ready in the same instant. Returns the clients that got no answer."""
    req = (f"GET {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           f"Authorization: {basic('alice', PASSWORDS[ALICE])}\r\n\r\n").encode()
    conns = []
    failures = []

    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
            if wrap:
                s = wrap(s)
            conns.append((s, s.makefile("rb")))
        for s, f in conns:
            s.sendall(req)
            assert read_answer(f).startswith(b"HTTP/1.1 404"), "the first request on a connection was not answered"
        srv.proc.send_signal(signal.SIGSTOP)
        try:
            wait_stopped(srv.proc.pid)
            for s, _ in conns:
                s.sendall(req)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 20
        for i, (s, f) in enumerate(conns):
            try:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                status = read_answer(f)
            except OSError as e:
                status = repr(e).encode()
            if not status.startswith(b"HTTP/1.1 404"):
                failures.append(f"client {i}: {status!r}")
    finally:
        for s, f in conns:
            f.close()
            s.close()
    return failures


# 128 is the most events libmicrohttpd 0.9.75's own epoll loop takes per
# call: with exactly that many connections ready it waited again, with its
# full timeout, before serving any of them, and those clients hung.
@pytest.mark.parametrize("n", [128, 200])
def test_a_daemon_with_all_its_tls_connections_ready_at_once_serves_them(start_server, tls_files, n):
    key, cert = tls_files
    srv = start_server(settings={"http.tls_cert": str(cert), "http.tls_key": str(key), "http.threads": "1",
                                 "http.max_per_address": "1000"})
    ctx = ssl.create_default_context(cafile=str(cert))
    failures = ready_at_once(srv, n, lambda s: ctx.wrap_socket(s, server_hostname="127.0.0.1"))
    assert not failures, f"{len(failures)} of {n} TLS clients were not answered: {failures[:5]}"


@pytest.mark.parametrize("n", [128, 200])
def test_a_daemon_with_all_its_plain_connections_ready_at_once_serves_them(start_server, n):
    srv = start_server(settings={"http.threads": "1", "http.max_per_address": "1000", "auth.allow_basic": "true"})
    failures = ready_at_once(srv, n)
    assert not failures, f"{len(failures)} of {n} clients were not answered: {failures[:5]}"


def test_small_answers_on_a_kept_alive_tls_connection_are_not_held_back(tls_server):
    """Small answers over TLS leave as one record, written when libmicrohttpd
    has handed the whole answer over; the socket, which libmicrohttpd corks
    with its first answer, must be uncorked, or each such answer waits for
    the kernel's 200 ms cork timeout. Answers of every kind in turn (a small
    200, a 404, a 304 without a body, a 5 KB 200 that is not held back) take
    milliseconds each; held back, the 100 would take 20 s."""
    srv, ctx = tls_server
    auth = basic("alice", PASSWORDS[ALICE])
    big = rl_doc("x" * 5000)
    status, h, _, _ = https(srv, ctx, "PUT", doc_path(RL, ALICE), big, {"Authorization": auth, "Content-Type": RL_TYPE})
    assert status == 201, status
    etag = h["etag"]

    def get(target, extra=""):
        return (f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n{extra}\r\n").encode()
    kinds = [(get(doc_path(RL, ALICE) + "/~~/resource-lists/list/entry/@uri"), b"HTTP/1.1 200"),
             (get(doc_path(RL, ALICE) + "-missing"), b"HTTP/1.1 404"),
             (get(doc_path(RL, ALICE), f"If-None-Match: {etag}\r\n"), b"HTTP/1.1 304"),
             (get(doc_path(RL, ALICE)), b"HTTP/1.1 200")]
    rounds = 25
    with connect_tls(srv, ctx) as ts:
        f = ts.makefile("rb")
        start = time.monotonic()
        for i in range(rounds):
            for req, want in kinds:
                ts.sendall(req)
                status = read_answer(f)
                assert status.startswith(want), f"round {i}: {status!r}, expected {want!r}"
        took = time.monotonic() - start
    assert took < 10, f"{rounds * len(kinds)} answers on one connection took {took:.1f} s"


def get_alice_on(ts):
    """One request on an open TLS socket; the answer's status line."""
    ts.sendall((f"GET {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: {basic('alice', PASSWORDS[ALICE])}\r\n\r\n").encode())
    return read_answer(ts.makefile("rb"))


def connect_tls(srv, ctx, session=None):
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port), timeout=10),
                           server_hostname="127.0.0.1", session=session)


def first_session(srv, ctx):
    """A full handshake and one answer (a TLS 1.3 server sends its tickets
    after the handshake, at the latest with the first answer); the session
    to resume, and whether that connection was itself resumed."""
    with connect_tls(srv, ctx) as ts:
        status = get_alice_on(ts)
        assert status.startswith(b"HTTP/1.1 404"), f"first connection: {status!r}"
        return ts.session, ts.session_reused


@pytest.mark.parametrize("version", ["TLSv1_3", "TLSv1_2"])
def test_a_reconnecting_client_resumes_its_tls_session(tls_server, version):
    """Phones reconnect often: with session tickets (the default) the second
    connection resumes the first one's session, with no certificate and no
    signature, and is served like any other; its tickets serve the next."""
    srv, ctx = tls_server
    ctx.maximum_version = getattr(ssl.TLSVersion, version)
    session, reused = first_session(srv, ctx)
    assert not reused, "the first connection cannot have been resumed"
    assert session is not None and session.has_ticket, f"{version}: xdmsd issued no session ticket"
    for i in range(3):
        with connect_tls(srv, ctx, session) as ts:
            assert ts.session_reused, f"{version}: reconnection {i} made a full handshake"
            assert ts.version() == version.replace("_", "."), ts.version()
            for j in range(3):  # kept alive after a resumed handshake too
                status = get_alice_on(ts)
                assert status.startswith(b"HTTP/1.1 404"), f"reconnection {i}, request {j}: {status!r}"
            session = ts.session


def test_session_tickets_can_be_turned_off(start_server, tls_files):
    key, cert = tls_files
    srv = start_server(settings={"http.tls_cert": str(cert), "http.tls_key": str(key),
                                 "http.tls_session_tickets": "false"})
    ctx = ssl.create_default_context(cafile=str(cert))
    session, _ = first_session(srv, ctx)
    assert session is None or not session.has_ticket, "a ticket was issued with http.tls_session_tickets=false"
    with connect_tls(srv, ctx, session) as ts:
        assert not ts.session_reused, "a session was resumed with http.tls_session_tickets=false"
        status = get_alice_on(ts)
        assert status.startswith(b"HTTP/1.1 404"), status


def test_a_ticket_from_before_a_restart_gets_a_full_handshake(tls_server):
    """The ticket key lives in memory: after a restart an old ticket is
    refused, and the client falls back to a full handshake and is served."""
    srv, ctx = tls_server
    session, _ = first_session(srv, ctx)
    srv.restart()
    with connect_tls(srv, ctx, session) as ts:
        assert not ts.session_reused, "a ticket issued before the restart was accepted"
        status = get_alice_on(ts)
        assert status.startswith(b"HTTP/1.1 404"), status


def test_requests_sent_ahead_in_separate_records_are_all_answered(tls_server):
    """A client that sends its next requests before the answers (each in a
    TLS record of its own, so that one socket read brings several records)
    gets every answer, in order: what a read brought beyond the record
    being decrypted is kept for the next read, and not forgotten when the
    socket itself has nothing more to say."""
    srv, ctx = tls_server
    auth = basic("alice", PASSWORDS[ALICE])
    n = 40
    with connect_tls(srv, ctx) as ts:
        # One write per request: one record each, all in the socket at once.
        for i in range(n):
            ts.sendall((f"GET {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        f"Authorization: {auth}\r\n\r\n").encode())
        f = ts.makefile("rb")
        for i in range(n):
            status = read_answer(f)
            assert status.startswith(b"HTTP/1.1 404"), f"answer {i} of {n}: {status!r}"
    # A PUT whose head and body come in separate records, the body in many.
    body = rl_doc("x" * 50_000)
    with connect_tls(srv, ctx) as ts:
        ts.sendall((f"PUT {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: {auth}\r\nContent-Type: {RL_TYPE}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode())
        for k in range(0, len(body), 700):
            ts.sendall(body[k:k + 700])
        status = read_answer(ts.makefile("rb"))
        assert status.startswith(b"HTTP/1.1 201"), f"the PUT sent in {len(body) // 700 + 1} records: {status!r}"
    status, _, _, got = https(srv, ctx, "GET", doc_path(RL, ALICE), None, {"Authorization": auth})
    assert status == 200 and got == body, f"GET after the PUT: {status}, {len(got)} bytes of {len(body)}"
    # A PUT (which waits for the store's commit) with a GET sent right
    # behind it: the GET's record waits, read or not, until the PUT is done.
    body2 = rl_doc("y" * 3000)
    with connect_tls(srv, ctx) as ts:
        ts.sendall((f"PUT {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: {auth}\r\nContent-Type: {RL_TYPE}\r\n"
                    f"Content-Length: {len(body2)}\r\n\r\n").encode() + body2)
        ts.sendall((f"GET {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Authorization: {auth}\r\n\r\n").encode())
        f = ts.makefile("rb")
        status = read_answer(f)
        assert status.startswith(b"HTTP/1.1 200"), f"the PUT: {status!r}"
        status = f.readline()
        length = 0
        while (line := f.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        got = f.read(length)
        assert status.startswith(b"HTTP/1.1 200") and got == body2, \
            f"the GET sent behind the PUT: {status!r}, {len(got)} bytes of {len(body2)}"


def test_a_ticket_key_file_keeps_tickets_across_a_restart_and_between_instances(start_server, tls_files, tmp_path):
    """With http.tls_ticket_key_file the master key is made once (mode
    0600) and read at every start: a ticket issued before a restart resumes
    after it, and a second instance with the same file (another shard behind
    a balancer that passes TLS through) accepts the first one's tickets."""
    key, cert = tls_files
    key_file = tmp_path / "tickets.key"
    settings = {"http.tls_cert": str(cert), "http.tls_key": str(key), "http.tls_ticket_key_file": str(key_file)}
    srv = start_server(settings=settings)
    ctx = ssl.create_default_context(cafile=str(cert))
    session, _ = first_session(srv, ctx)
    mode = key_file.stat().st_mode & 0o777
    assert mode == 0o600, f"the ticket key file has mode {mode:o}"
    assert key_file.stat().st_size == 64, f"the ticket key file has {key_file.stat().st_size} bytes"
    made = key_file.read_bytes()
    srv.restart()
    assert key_file.read_bytes() == made, "the restart made a new key instead of reading the file"
    with connect_tls(srv, ctx, session) as ts:
        assert ts.session_reused, "a ticket from before the restart made a full handshake"
        status = get_alice_on(ts)
        assert status.startswith(b"HTTP/1.1 404"), status
    other = start_server(settings=settings)
    with connect_tls(other, ctx, session) as ts:
        assert ts.session_reused, "the second instance with the same key file did not resume"
        status = get_alice_on(ts)
        assert status.startswith(b"HTTP/1.1 404"), status


def test_a_ticket_key_file_of_the_wrong_size_stops_the_start(tls_files, tmp_path):
    key, cert = tls_files
    key_file = tmp_path / "tickets.key"
    key_file.write_bytes(b"x" * 32)
    res = subprocess.run([str(xdmsd_path()), "--data-dir", str(tmp_path / "data"), "--http", "127.0.0.1:0",
                          "--set", f"http.tls_cert={cert}", "--set", f"http.tls_key={key}",
                          "--set", f"http.tls_ticket_key_file={key_file}"],
                         capture_output=True, timeout=30)
    assert res.returncode != 0, f"xdmsd started with a 32-byte ticket key: {res.stderr!r}"
    assert b"http.tls_ticket_key_file" in res.stderr and b"not 64 bytes" in res.stderr, res.stderr
    assert b"listening" not in res.stderr, res.stderr
