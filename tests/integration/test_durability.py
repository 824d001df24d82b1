# SPDX-License-Identifier: MIT
"""Durability: documents and ETags survive a restart and a kill -9; a
queued write is applied even when its client went away."""

import socket
import time

import pytest

from test_flush_order import STRACE, Tracer
from xdmslib import (ADMIN, ALICE, BOB, CAROL, FH, MIME, PCC, RL, data, doc_path, expect,
                     expect_etag, global_path, rl_doc)


def test_restart_keeps_documents_and_etags(start_server):
    srv = start_server(sync=True)
    docs = {
        doc_path(RL, ALICE): (RL, ALICE, rl_doc("alice")),
        doc_path(RL, ALICE, "sub/dir/doc.xml"): (RL, ALICE, rl_doc("nested")),
        doc_path(PCC, ALICE): (PCC, ALICE, data("pcc-alice.xml")),
        doc_path(FH, ALICE): (FH, ALICE, data("fh-requests.xml")),
        doc_path(PCC, CAROL): (PCC, CAROL, data("pcc-mediatek-style.xml")),
        doc_path(RL, BOB): (RL, BOB, rl_doc("bob")),
        global_path(RL): (RL, ADMIN, rl_doc("global")),
    }
    etags = {}
    for path, (auid, who, body) in docs.items():
        etags[path] = expect_etag(expect(srv.client(who).put(path, body, MIME[auid]), 201))
    # A deleted document stays deleted.
    gone = doc_path(RL, ALICE, "gone")
    expect(srv.client(ALICE).put(gone, rl_doc("gone"), MIME[RL]), 201)
    expect(srv.client(ALICE).delete(gone), 200)

    srv.restart()

    for path, (auid, who, body) in docs.items():
        r = expect(srv.client(who).get(path), 200)
        assert r.body == body, f"{path}: body changed across the restart"
        assert r.etag == etags[path], f"{path}: ETag {etags[path]} became {r.etag} across the restart"
        assert r.content_type == MIME[auid]
    expect(srv.client(ALICE).get(gone), 404)

    # Conditional requests work with the pre-restart ETags, and new ETags are new.
    a = srv.client(ALICE)
    p = doc_path(RL, ALICE)
    expect(a.get(p, headers={"If-None-Match": etags[p]}), 304)
    r = expect(a.put(p, rl_doc("after restart"), MIME[RL], headers={"If-Match": etags[p]}), 200)
    new = expect_etag(r)
    assert new not in etags.values(), f"ETag {new} after the restart reuses an earlier one"
    r = expect(a.put(doc_path(RL, ALICE, "brand-new"), rl_doc("x"), MIME[RL]), 201)
    assert expect_etag(r) not in etags.values(), "a new document after the restart reuses an ETag"


def test_restart_without_sync_after_clean_shutdown(start_server):
    """store.sync=false still persists everything on a clean SIGTERM."""
    srv = start_server(sync=False)
    a = srv.client(ALICE)
    bodies = {doc_path(RL, ALICE, f"d{i}"): rl_doc(f"doc {i}") for i in range(20)}
    etags = {p: expect_etag(expect(a.put(p, b, MIME[RL]), 201)) for p, b in bodies.items()}
    srv.restart()
    a = srv.client(ALICE)
    for p, b in bodies.items():
        r = expect(a.get(p), 200)
        assert r.body == b and r.etag == etags[p], f"{p} lost or changed across a clean restart"


def test_kill9_after_201_keeps_document(start_server):
    srv = start_server(sync=True)
    history = {}
    for round_ in range(3):
        a = srv.client(ALICE)
        path = doc_path(RL, ALICE, f"crash{round_}")
        body = rl_doc(f"written just before kill -9, round {round_} ✓")
        r = expect(a.put(path, body, MIME[RL]), 201)
        history[path] = (body, expect_etag(r))
        srv.kill9()
        srv.start()
        a = srv.client(ALICE)
        for p, (b, e) in history.items():
            g = expect(a.get(p), 200)
            assert g.body == b, f"{p}: body after kill -9 differs: {g.body!r}"
            assert g.etag == e, f"{p}: ETag after kill -9: expected {e}, got {g.etag}"


def test_kill9_after_replace_and_delete(start_server):
    srv = start_server(sync=True)
    a = srv.client(ALICE)
    p1 = doc_path(RL, ALICE, "replaced")
    p2 = doc_path(RL, ALICE, "deleted")
    expect(a.put(p1, rl_doc("v1"), MIME[RL]), 201)
    expect(a.put(p2, rl_doc("x"), MIME[RL]), 201)
    e2 = expect_etag(expect(a.put(p1, rl_doc("v2"), MIME[RL]), 200))
    expect(a.delete(p2), 200)
    srv.kill9()
    srv.start()
    a = srv.client(ALICE)
    g = expect(a.get(p1), 200)
    assert g.body == rl_doc("v2") and g.etag == e2
    expect(a.get(p2), 404)


def _request_bytes(srv, client, path, body):
    return (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Type: {MIME[RL]}\r\n"
            f"Content-Length: {len(body)}\r\nAuthorization: {client.authorization('PUT', path)}\r\n\r\n"
            ).encode() + body


@pytest.mark.skipif(STRACE is None, reason="strace (Debian package strace) is not installed")
def test_queued_write_is_applied_after_its_client_went_away(start_server, tmp_path):
    """docs/architecture.md, Guarantees: a write that was queued is applied
    even if the client goes away; only the answer is lost. Every flush is
    held up 1.5 s (strace fault injection), so the client has sent its
    whole request and closed its socket long before the server answers."""
    srv = start_server(sync=True)
    c = srv.client(ALICE)
    expect(c.get(doc_path(RL, ALICE, "absent")), 404)  # learn the nonce
    tr = Tracer(srv, tmp_path / "strace.txt", extra=["-e", "inject=fdatasync:delay_enter=1500000"])
    try:
        path = doc_path(RL, ALICE, "orphan")
        body = rl_doc("written by a client that left")
        s = socket.create_connection(("127.0.0.1", srv.port))
        t0 = time.monotonic()
        s.sendall(_request_bytes(srv, c, path, body))
        s.shutdown(socket.SHUT_WR)
        s.close()
        gone = time.monotonic() - t0
        assert gone < 1.0, f"the client took {gone:.2f}s to leave; the test needs it gone before the flush"
        # Applied, though nobody was there to hear the answer.
        deadline = time.monotonic() + 30
        while True:
            r = c.get(path)
            if r.status == 200:
                break
            assert r.status == 404 and time.monotonic() < deadline, r.describe()
            time.sleep(0.05)
        assert r.body == body
        # A commit is visible before its flush (with the write-ahead log, the
        # flush is the log's): a second write is answered only after a flush
        # that covers both, so the trace holds one before it stops.
        expect(c.put_doc(RL, ALICE, rl_doc("after"), doc="after"), 201)
    finally:
        events = tr.stop()
    # Every flush was held up 1.5 s and the client was gone within 1 s, so no
    # answer can have left before it had gone.
    flushes = [e[0] for e in events if e[1] == "end" and e[2] == "fdatasync"]
    answers = [e[0] for e in events if e[1] == "start" and "HTTP/1.1 201" in e[4]]
    assert flushes, "no flush was traced"
    assert not answers or answers[0] > flushes[0], (flushes, answers)


def test_write_whose_client_left_mid_body_changes_nothing(server):
    """A request whose body never arrived whole was never queued: nothing
    is written, and the server goes on serving."""
    c = server.client(ALICE)
    expect(c.get(doc_path(RL, ALICE, "absent")), 404)
    path = doc_path(RL, ALICE, "half")
    raw = _request_bytes(server, c, path, rl_doc("half a body"))
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(raw[:-40])
    s.close()
    # Had the partial request been written, this creation would get 412.
    body = rl_doc("whole")
    expect(c.put(path, body, MIME[RL], headers={"If-None-Match": "*"}), 201)
    assert expect(c.get(path), 200).body == body
