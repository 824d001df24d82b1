# SPDX-License-Identifier: MIT
"""The write-ahead log (store.wal_size; docs/architecture.md, Durability).

After a kill -9 the next start writes the log's checkpoint (LMDB's two meta
pages as they were at the last checkpoint) back into data.mdb and replays
every logged commit after it: the path a power loss takes. So each test
here both loses nothing acknowledged and checks, from the server's log
line, that the checkpoint was restored and the commits were replayed, not
merely found in the page cache.
"""

import fcntl
import re
import time

from xdmslib import ALICE, MIME, PASSWORDS, RL, doc_path, expect, expect_etag, rl_doc

DAVE = "sip:dave@example.com"

REPLAYED = re.compile(r"write-ahead log: restored txn (\d+) and replayed (\d+) commits")


def replays(srv):
    """[(checkpoint txnid, commits replayed)] the server's log reports."""
    return [(int(a), int(b)) for a, b in REPLAYED.findall(srv.log_path.read_bytes().decode("utf-8", "replace"))]


def check_all(srv, expected, gone=()):
    a = srv.client(ALICE)
    for p, (body, etag) in expected.items():
        g = expect(a.get(p), 200)
        assert g.body == body, f"{p}: body after recovery differs"
        assert g.etag == etag, f"{p}: ETag after recovery: expected {etag}, got {g.etag}"
    for p in gone:
        expect(a.get(p), 404)


def churn(srv, expected, gone, n, tag, size=1):
    """@n writes by ALICE: creations, replacements of earlier documents and
    deletions, recorded in @expected and @gone."""
    a = srv.client(ALICE)
    for i in range(n):
        path = doc_path(RL, ALICE, f"{tag}/d{i % 40}")
        if i % 7 == 6 and path in expected:
            expect(a.delete(path), 200)
            del expected[path]
            gone.add(path)
            continue
        body = rl_doc(f"{tag} write {i} " + "x" * size)
        r = a.put(path, body, MIME[RL])
        assert r.status in (200, 201), r.describe()
        expected[path] = (body, expect_etag(r))
        gone.discard(path)


def test_kill9_restores_the_checkpoint_and_replays_every_commit(start_server):
    """Replacements churn LMDB's pages after the checkpoint (up to 128
    commits follow one); the pin keeps the checkpoint's own pages intact,
    so the restored snapshot is sound and the replay ends at exactly the
    acknowledged state."""
    srv = start_server(sync=True)
    expected, gone = {}, set()
    # Documents above half a page live in overflow pages, which every
    # replacement frees and LMDB reuses as soon as no reader can see them.
    churn(srv, expected, gone, 600, "a", size=3000)
    srv.kill9()
    srv.start()
    got = replays(srv)
    assert got and got[-1][1] >= 1, f"expected the commits to be replayed, log says {got}"
    check_all(srv, expected, gone)
    # The server goes on writing after its recovery, and survives a second one.
    churn(srv, expected, gone, 200, "b")
    srv.kill9()
    srv.start()
    assert len(replays(srv)) == 2
    check_all(srv, expected, gone)


def test_checkpoints_keep_the_replay_short(start_server):
    """A checkpoint every 20 ms with writes (or 128 commits): after one, the
    next recovery replays only what followed it."""
    srv = start_server(sync=True)
    expected, gone = {}, set()
    churn(srv, expected, gone, 300, "a")
    time.sleep(0.5)
    churn(srv, expected, gone, 30, "b")  # the first of these starts a checkpoint
    srv.kill9()
    srv.start()
    got = replays(srv)
    assert got and 1 <= got[-1][1] <= 30, f"expected at most the 30 later commits replayed, log says {got}"
    check_all(srv, expected, gone)


def test_clean_stop_leaves_nothing_to_replay(start_server):
    srv = start_server(sync=True)
    expected, gone = {}, set()
    churn(srv, expected, gone, 50, "a")
    srv.restart()
    assert replays(srv) == []
    check_all(srv, expected, gone)


def test_a_small_log_fills_and_starts_again(start_server):
    """store.wal_size of 64 KiB: the log is full every few dozen writes and a
    checkpoint starts it again; a document larger than the whole log is
    written without it (LMDB's own flush) and is as durable."""
    srv = start_server(sync=True, settings={"store.wal_size": "65536"})
    expected, gone = {}, set()
    churn(srv, expected, gone, 300, "a", size=1500)
    big = doc_path(RL, ALICE, "big")
    body = rl_doc("big " + "y" * 200000)
    expected[big] = (body, expect_etag(expect(srv.client(ALICE).put(big, body, MIME[RL]), 201)))
    churn(srv, expected, gone, 20, "b")
    srv.kill9()
    srv.start()
    assert replays(srv), "the small log was not replayed"
    check_all(srv, expected, gone)


def test_xdmsctl_writes_beside_the_server_survive_its_recovery(start_server):
    """xdmsctl writes LMDB directly (no log of its own) while the server owns
    the log: it makes its commit durable and moves the log's checkpoint to
    it, so a recovery that restores the checkpoint keeps its write."""
    srv = start_server(sync=True)
    expected, gone = {}, set()
    churn(srv, expected, gone, 100, "a")
    srv.add_user(DAVE, "dave-pw")
    churn(srv, expected, gone, 100, "b")
    srv.kill9()
    srv.start()
    assert replays(srv)
    check_all(srv, expected, gone)
    # The user xdmsctl added authenticates: a 404 for a missing document, not a 401.
    expect(srv.client(DAVE, "dave-pw").get(doc_path(RL, DAVE, "absent")), 404)


def test_without_the_log_a_kill9_replays_nothing(start_server):
    srv = start_server(sync=True, settings={"store.wal_size": "0"})
    expected, gone = {}, set()
    churn(srv, expected, gone, 60, "a")
    srv.kill9()
    srv.start()
    assert replays(srv) == []
    assert not (srv.data_dir / "data.wal").exists()
    check_all(srv, expected, gone)


def test_recovery_leaves_an_environment_another_process_has_open(start_server):
    """If another process has the environment open when the server comes
    back (LMDB holds a shared lock on byte 0 of lock.mdb in each process
    that has it open; the test takes that same lock), the machine has not
    restarted since the server died: LMDB's newest state is the page
    cache's and is kept, and the checkpoint is not written back under that
    process's feet."""
    srv = start_server(sync=True)
    expected, gone = {}, set()
    churn(srv, expected, gone, 100, "a")
    srv.kill9()
    with open(srv.data_dir / "lock.mdb", "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_SH, 1, 0)
        srv.start()
        fcntl.lockf(f, fcntl.LOCK_UN, 1, 0)
    assert replays(srv) == []
    assert "environment open elsewhere" in srv.log_path.read_bytes().decode("utf-8", "replace")
    check_all(srv, expected, gone)


def test_the_map_grows_under_the_pin_and_recovers(start_server):
    """A 256 KiB map doubles several times while the log's pin (a read
    transaction) is held; then a kill -9 and a replay find everything."""
    # The server makes the environment (the map size of the first opener
    # stays), then xdmsctl adds the user asking for no more.
    srv = start_server(sync=True, users={}, settings={"store.map_size": "262144"})
    srv.ctl("--set", "store.map_size=262144", "user", "add", ALICE, PASSWORDS[ALICE], check=0)
    expected, gone = {}, set()
    churn(srv, expected, gone, 200, "a", size=40000)  # 40 documents of 40 KB, replaced
    body = expect(srv.client(ALICE).get("/metrics"), 200).body.decode()
    grows = [line for line in body.splitlines() if line.startswith("xdms_store_map_grows_total")]
    assert grows and float(grows[0].split()[-1]) >= 2, grows
    srv.kill9()
    srv.start()
    assert replays(srv)
    check_all(srv, expected, gone)


def test_xdmsctl_recovers_a_log_the_server_left(start_server):
    """The first opener after the server died recovers its log, whichever it
    is: here `xdmsctl doc list`, before the server comes back; the server
    then has nothing left to replay and serves every acknowledged write."""
    srv = start_server(sync=True)
    expected, gone = {}, set()
    churn(srv, expected, gone, 120, "a")
    srv.kill9()
    res = srv.ctl("doc", "list", check=0)
    lines = {line.split("\t")[0]: line for line in res.stdout.decode().splitlines()}
    for p, (_, etag) in expected.items():
        sel = p[len("/xcap-root/"):]
        assert sel in lines and etag.strip('"') in lines[sel], f"{sel} ({etag}) not listed: {lines.get(sel)}"
    for p in gone:
        assert p[len("/xcap-root/"):] not in lines
    assert b"replayed" in res.stderr, res.stderr
    srv.start()
    assert replays(srv) == []
    check_all(srv, expected, gone)


def test_a_server_without_sync_still_replays_the_log(start_server):
    """A server restarted with store.sync=false (no log of its own) still
    replays the log the durable one left, and keeps running without sync."""
    srv = start_server(sync=True)
    expected, gone = {}, set()
    churn(srv, expected, gone, 80, "a")
    srv.kill9()
    srv.sync = False
    srv.start()
    assert replays(srv)
    check_all(srv, expected, gone)
    churn(srv, expected, gone, 20, "b")
    srv.restart()
    check_all(srv, expected, gone)
