# SPDX-License-Identifier: MIT
"""Durability: documents and ETags survive a restart and a kill -9."""

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
