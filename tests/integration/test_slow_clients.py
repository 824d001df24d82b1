# SPDX-License-Identifier: MIT
"""Slow clients cannot lock others out.

Connections that send their request head one byte at a time used to keep
their place until they chose to go: with http.max_connections of them,
nobody else was served. Now a connection's place depends on a complete
head within http.head_timeout, on http.max_per_address (the trusted
proxies exempt), and on a minimum body rate; every refusal is counted.
"""

import socket
import time

import pytest

from xdmslib import ALICE, MIME, RL, TRUSTED_PEER, doc_path, expect, metric_sum, parse_metrics, rl_doc

SLOW = 600
LIMIT = 500


def open_slow(count, sources):
    """Opens @count connections round-robin over @sources, each having sent
    the first byte of a request head. Connections the server refused at
    once are returned closed as well; the caller only keeps them open."""
    socks = []
    for i in range(count):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.bind((sources[i % len(sources)], 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port_of_test[0]))
            s.sendall(b"G")
        except OSError:
            pass
        socks.append(s)
    return socks


port_of_test = [0]


def served_quickly(srv, client, rounds=10, limit=3.0):
    """@client's requests are all answered, each within @limit seconds."""
    for i in range(rounds):
        t0 = time.monotonic()
        r = client.get(doc_path(RL, ALICE))
        took = time.monotonic() - t0
        assert r.status in (200, 404), f"request {i}: {r.describe()}"
        assert took < limit, f"request {i} took {took:.1f} s while slow clients held connections"
        client.close()  # a new connection every time: the one that must get a place


def metrics(srv):
    c = srv.client()
    text = c.get("/metrics").body.decode()
    c.close()
    return parse_metrics(text)


def close_all(socks):
    for s in socks:
        s.close()


def test_slow_heads_from_one_address_do_not_lock_out_others(start_server):
    """600 slow connections from one address against http.max_connections
    500 (everything else at its default): the per-address cap refuses most
    of them, and a client from another address is served throughout."""
    srv = start_server(settings={"http.max_connections": str(LIMIT)})
    port_of_test[0] = srv.port
    alice = srv.client(ALICE)
    socks = open_slow(SLOW, ["127.0.0.5"])
    try:
        served_quickly(srv, alice)
        refused = metric_sum(metrics(srv), "xdms_http_refused_connections_total", reason="per_address")
        assert refused and refused >= SLOW - 64, f"expected at least {SLOW - 64} per-address refusals, got {refused}"
    finally:
        close_all(socks)


def test_slow_heads_from_many_addresses_give_way(start_server):
    """600 slow connections spread over 20 addresses (30 each, under the
    per-address cap) fill http.max_connections; newcomers still get in
    because the oldest unfinished heads give their place (408)."""
    srv = start_server(settings={"http.max_connections": str(LIMIT)})
    port_of_test[0] = srv.port
    alice = srv.client(ALICE)
    socks = open_slow(SLOW, [f"127.0.1.{i}" for i in range(1, 21)])
    try:
        served_quickly(srv, alice)
        evicted = metric_sum(metrics(srv), "xdms_http_refused_connections_total", reason="head_timeout")
        assert evicted and evicted >= SLOW - LIMIT, f"expected {SLOW - LIMIT}+ heads to give way, got {evicted}"
    finally:
        close_all(socks)


def test_head_deadline_answers_408(start_server):
    srv = start_server(settings={"http.head_timeout": "1"})
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    t0 = time.monotonic()
    got = b""
    try:
        for ch in b"GET /xcap-root/ HTTP/1.1\r\nHost: x\r\n":
            try:
                s.sendall(bytes([ch]))
            except OSError:
                break
            s.settimeout(0.2)
            try:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            except socket.timeout:
                pass
        s.settimeout(5)
        while True:
            try:
                chunk = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
    finally:
        s.close()
    took = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 408 "), f"expected 408 after the 1 s head deadline, got {got[:200]!r}"
    assert took < 4, f"the slow head was given {took:.1f} s with http.head_timeout=1"
    n = metric_sum(metrics(srv), "xdms_http_requests_total", status="408")
    assert n and n >= 1, "the 408 was not counted"


def test_trusted_peer_is_exempt_from_the_per_address_cap(start_server):
    srv = start_server(settings={"http.max_per_address": "4"})
    socks = []
    try:
        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                                  source_address=(TRUSTED_PEER, 0)))
        trusted = srv.client(source_address=TRUSTED_PEER,
                             headers={"X-3GPP-Asserted-Identity": f"<{ALICE}>"})
        expect(trusted.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)
        for _ in range(4):
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                                  source_address=("127.0.0.7", 0)))
        got, _ = recv_all(socket.create_connection(("127.0.0.1", srv.port), timeout=5,
                                                   source_address=("127.0.0.7", 0)))
        assert got.startswith(b"HTTP/1.1 503 ") and b"Retry-After:" in got, \
            f"the 5th connection from one untrusted address: expected 503, got {got[:200]!r}"
    finally:
        close_all(socks)


def recv_all(s, timeout=5):
    s.settimeout(timeout)
    out = b""
    how = "timeout"
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                how = "closed"
                break
            out += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        how = "reset"
    finally:
        s.close()
    return out, how


def test_trickled_body_gets_408(start_server):
    """After http.head_timeout a body must average http.min_body_rate."""
    srv = start_server(settings={"http.head_timeout": "1", "http.min_body_rate": "1000"})
    body = rl_doc("slow body")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10, source_address=(TRUSTED_PEER, 0))
    s.sendall((f"PUT {doc_path(RL, ALICE)} HTTP/1.1\r\nHost: x\r\nX-3GPP-Asserted-Identity: <{ALICE}>\r\n"
               f"Content-Type: {MIME[RL]}\r\nContent-Length: {len(body)}\r\n\r\n").encode())
    t0 = time.monotonic()
    got = b""
    s.settimeout(0.25)
    for ch in body:
        try:
            s.sendall(bytes([ch]))
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
            break
        except socket.timeout:
            continue
        except OSError:
            break
        if time.monotonic() - t0 > 8:
            break
    rest, _ = recv_all(s)
    got += rest
    assert got.startswith(b"HTTP/1.1 408 "), f"expected 408 for a body at ~4 B/s, got {got[:200]!r}"
    assert time.monotonic() - t0 < 6, "the trickled body was allowed too long"
    r = srv.client(source_address=TRUSTED_PEER, headers={"X-3GPP-Asserted-Identity": f"<{ALICE}>"}).get(
        doc_path(RL, ALICE))
    assert r.status == 404, f"the trickled body was stored: {r.describe()}"
