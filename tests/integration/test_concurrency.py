# SPDX-License-Identifier: MIT
"""Concurrent writers on one document: exactly one creates it."""

import threading


from xdmslib import ALICE, MIME, RL, doc_path, expect, expect_etag, rl_doc

THREADS = 16


def race(server, path, headers):
    """THREADS clients, each authenticated beforehand, PUT their own body to
    @path at the same moment. Returns [(index, body, response)]."""
    clients = [server.client(ALICE) for _ in range(THREADS)]
    for c in clients:
        expect(c.get(doc_path(RL, ALICE, "warm-up")), 404)  # nonce + open connection
    barrier = threading.Barrier(THREADS)
    results = [None] * THREADS
    errors = []

    def work(i):
        body = rl_doc(f"writer {i}")
        try:
            barrier.wait(10)
            results[i] = (i, body, clients[i].put(path, body, MIME[RL], headers=headers))
        except Exception as e:  # reported below with the thread number
            errors.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert all(r is not None for r in results), "a writer thread did not finish"
    return results


def statuses(results):
    return sorted(r.status for _, _, r in results)


def test_concurrent_create_without_preconditions(server, alice):
    path = doc_path(RL, ALICE, "contended")
    results = race(server, path, None)
    st = statuses(results)
    assert all(s < 500 for s in st), f"5xx under concurrency: {st}"
    assert st == [200] * (THREADS - 1) + [201], \
        f"expected exactly one 201 and {THREADS - 1} 200, got {st}"
    etags = [expect_etag(r) for _, _, r in results]
    assert len(set(etags)) == THREADS, f"two writes got the same ETag: {etags}"
    # The document is the body of the writer whose ETag it carries.
    g = expect(alice.get(path), 200)
    by_etag = {r.etag: body for _, body, r in results}
    assert g.etag in by_etag, f"final ETag {g.etag} was not returned to any writer: {etags}"
    assert g.body == by_etag[g.etag], "final body does not belong to the writer with the final ETag"


def test_concurrent_create_with_if_none_match_star(server, alice):
    path = doc_path(RL, ALICE, "create-once")
    results = race(server, path, {"If-None-Match": "*"})
    st = statuses(results)
    assert all(s < 500 for s in st), f"5xx under concurrency: {st}"
    assert st == [201] + [412] * (THREADS - 1), \
        f"expected exactly one 201 and {THREADS - 1} 412, got {st}"
    (winner,) = [(body, r) for _, body, r in results if r.status == 201]
    g = expect(alice.get(path), 200)
    assert g.body == winner[0], "the stored body is not the creator's"
    assert g.etag == expect_etag(winner[1])


def test_concurrent_if_match_updates_one_wins(server, alice):
    """Everybody holds the same ETag; only one conditional update succeeds."""
    path = doc_path(RL, ALICE, "cas")
    etag = expect_etag(expect(alice.put(path, rl_doc("base"), MIME[RL]), 201))
    results = race(server, path, {"If-Match": etag})
    st = statuses(results)
    assert st == [200] + [412] * (THREADS - 1), \
        f"expected exactly one 200 and {THREADS - 1} 412, got {st}"
    (winner,) = [(body, r) for _, body, r in results if r.status == 200]
    g = expect(alice.get(path), 200)
    assert g.body == winner[0] and g.etag == winner[1].etag


def test_concurrent_writes_to_different_documents(server):
    clients = [server.client(ALICE) for _ in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    out = [None] * THREADS

    def work(i):
        barrier.wait(10)
        path = doc_path(RL, ALICE, f"doc{i}")
        body = rl_doc(f"doc {i}")
        out[i] = (path, body, clients[i].put(path, body, MIME[RL]))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(o is not None for o in out), "a writer thread failed"
    st = sorted(r.status for _, _, r in out)
    assert st == [201] * THREADS, f"expected {THREADS} x 201, got {st}"
    reader = server.client(ALICE)
    for path, body, r in out:
        g = expect(reader.get(path), 200)
        assert g.body == body and g.etag == r.etag
