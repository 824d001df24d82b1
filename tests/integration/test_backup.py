# SPDX-License-Identifier: MIT
"""xdmsctl backup and restore: a consistent copy taken under write load, and a
restored store that never repeats an ETag."""

import os
import pwd
import threading
import time

import pytest

from xdmslib import ALICE, MIME, PASSWORDS, RL, Server, doc_path, expect, expect_etag, rl_doc


def test_backup_under_write_load_restores_every_acknowledged_write(start_server, tmp_path):
    srv = start_server(sync=True, settings={"iwf.enabled": "true"})  # the IWF makes its key
    acked = {}   # path -> (body, etag, time the 201 arrived)
    stop = threading.Event()
    errors = []

    def writer(tag):
        a = srv.client(ALICE)
        i = 0
        while not stop.is_set():
            path = doc_path(RL, ALICE, f"load-{tag}-{i}")
            body = rl_doc(f"write {tag}/{i}")
            try:
                r = a.put(path, body, MIME[RL])
            except OSError as e:  # the server must not drop connections under load
                errors.append(f"{path}: {e}")
                return
            if r.status != 201:
                errors.append(f"{path}: {r.status}")
                return
            acked[path] = (body, expect_etag(r), time.monotonic())
            i += 1

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(acked) >= 200, f"only {len(acked)} writes acknowledged in 20 s"
    began = time.monotonic()
    res = srv.ctl("backup", str(tmp_path / "bk"), check=0)
    ended = time.monotonic()
    # Writes go on after the backup, then stop.
    n_at_end = len(acked)
    while len(acked) < n_at_end + 20 and time.monotonic() < deadline + 10:
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, f"writes failed during the backup: {errors[:5]}"
    assert b"backup complete" in res.stdout, res.stdout
    # The IWF key (it seals the 3rd-party credentials) travels with the data.
    key = (srv.data_dir / "iwf.key").read_bytes()
    assert (tmp_path / "bk" / "iwf.key").read_bytes() == key, "the backup's iwf.key differs"
    during = sum(1 for _, _, t in acked.values() if began <= t <= ended)

    before = {p: v for p, v in acked.items() if v[2] < began}
    after = {p: v for p, v in acked.items() if v[2] > ended}
    assert after, "no write was acknowledged after the backup: the copy did not run under load"

    restored = Server(tmp_path / "restored", name="restored")
    # Restore needs an empty or missing data directory.
    restored.data_dir.rmdir()
    r = restored.ctl("restore", str(tmp_path / "bk"), check=0)
    assert b"restore complete" in r.stdout, r.stdout
    assert (restored.data_dir / "iwf.key").read_bytes() == key, "the restore did not bring the IWF key back"
    restored.start()
    try:
        c = restored.client(ALICE)
        missing = []
        for path, (body, etag, _) in before.items():
            g = c.get(path)
            if g.status != 200 or g.body != body or g.etag != etag:
                missing.append((path, g.status, g.etag, etag))
        assert not missing, (f"{len(missing)} of {len(before)} writes acknowledged before the backup "
                             f"began are not in the restore as written: {missing[:3]}")
        # Everything in the copy is a write that was acknowledged (before or while it ran).
        listed = restored.ctl("doc", "list", check=0).stdout.decode().splitlines()
        in_copy = {line.split("\t")[0] for line in listed if "/load-" in line}
        assert len(in_copy) >= len(before), f"the copy holds {len(in_copy)} writes, fewer than {len(before)}"
        unknown = {p for p in in_copy if "/xcap-root/" + p not in acked}
        assert not unknown, f"the copy holds writes nobody acknowledged: {sorted(unknown)[:3]}"
        print(f"acked before {len(before)}, during {during}, after {len(after)}, in copy {len(in_copy)}")
    finally:
        restored.stop()


def test_restored_store_never_repeats_an_etag(start_server, tmp_path):
    """An old backup must not rewind the ETag counter under the same instance id:
    a client holding an ETag from after the backup would be told 304 about
    different bytes."""
    srv = start_server(sync=True)
    a = srv.client(ALICE)
    path = doc_path(RL, ALICE)
    expect(a.put(path, rl_doc("v1"), MIME[RL]), 201)
    srv.ctl("backup", str(tmp_path / "bk"), check=0)
    # After the backup: a write the restore will not have, whose ETag a client keeps.
    later = expect_etag(expect(a.put(doc_path(RL, ALICE, "other"), rl_doc("x"), MIME[RL]), 201))
    kept = expect_etag(expect(a.put(path, rl_doc("v2"), MIME[RL]), 200))
    srv.stop()

    restored = Server(tmp_path / "restored", name="restored")
    restored.data_dir.rmdir()
    restored.ctl("restore", str(tmp_path / "bk"), check=0)
    restored.start()
    try:
        c = restored.client(ALICE)
        # Two writes after the restore reach the counter values that `later` and
        # `kept` had; they must still differ from them.
        e1 = expect_etag(expect(c.put(doc_path(RL, ALICE, "other"), rl_doc("y"), MIME[RL]), 201))
        e2 = expect_etag(expect(c.put(path, rl_doc("v3"), MIME[RL]), 200))
        assert {e1, e2}.isdisjoint({later, kept}), (
            f"the restored store repeated an ETag handed out before: {e1}, {e2} vs {later}, {kept}")
        expect(c.get(path, headers={"If-None-Match": kept}), 200)
    finally:
        restored.stop()


def test_restore_refuses_a_non_empty_data_directory_and_a_non_backup(start_server, tmp_path):
    srv = start_server()
    expect(srv.client(ALICE).put(doc_path(RL, ALICE), rl_doc("v1"), MIME[RL]), 201)
    srv.ctl("backup", str(tmp_path / "bk"), check=0)
    r = srv.ctl("backup", str(tmp_path / "bk"), check=1)
    assert b"not empty" in r.stderr, r.stderr
    # The live data directory is not empty: a restore over it is refused and changes nothing.
    r = srv.ctl("restore", str(tmp_path / "bk"), check=1)
    assert b"not empty" in r.stderr, r.stderr
    expect(srv.client(ALICE).get(doc_path(RL, ALICE)), 200)
    (tmp_path / "nothing").mkdir()
    other = Server(tmp_path / "o", name="o")
    other.data_dir.rmdir()
    r = other.ctl("restore", str(tmp_path / "nothing"), check=1)
    assert b"is not a backup" in r.stderr, r.stderr
    assert not other.data_dir.exists() or not any(other.data_dir.iterdir())


def test_backup_refuses_a_directory_without_a_store(start_server, tmp_path):
    """A mistyped --data-dir must not be backed up as a new, empty store."""
    empty = tmp_path / "not-a-store"
    empty.mkdir()
    other = Server(tmp_path / "o", name="o", data_dir=empty)
    r = other.ctl("backup", str(tmp_path / "bk"), check=1)
    assert b"holds no store" in r.stderr, r.stderr
    assert list(empty.iterdir()) == [], "the refused backup created files in the data directory"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as another user")
def test_root_does_not_hand_the_store_to_another_directory_owner(start_server, tmp_path):
    """Run as root, xdmsctl works as the service user only; on a directory
    another account owns it refuses, so that account never receives the
    users' Digest hashes or the IWF key."""
    srv = start_server()
    expect(srv.client(ALICE).put(doc_path(RL, ALICE), rl_doc("v1"), MIME[RL]), 201)
    srv.ctl("backup", str(tmp_path / "bk"), check=0)
    nobody = pwd.getpwnam("nobody")
    trap = tmp_path / "trap"
    trap.mkdir()
    os.chown(trap, nobody.pw_uid, nobody.pw_gid)
    os.chmod(tmp_path, 0o755)
    other = Server(tmp_path / "o", name="o", data_dir=trap)
    r = other.ctl("restore", str(tmp_path / "bk"), check=1)
    assert b"not the service user" in r.stderr, r.stderr
    assert list(trap.iterdir()) == [], f"files landed in a directory nobody owns: {list(trap.iterdir())}"
    r = other.ctl("user", "list", check=1)
    assert b"not the service user" in r.stderr, r.stderr
    assert list(trap.iterdir()) == []


def test_restore_refuses_a_symbolic_link_in_the_backup(start_server, tmp_path):
    srv = start_server()
    secret = tmp_path / "secret"
    secret.write_bytes(b"not a store")
    bk = tmp_path / "bk"
    bk.mkdir()
    (bk / "data.mdb").symlink_to(secret)
    other = Server(tmp_path / "o", name="o")
    other.data_dir.rmdir()
    r = other.ctl("restore", str(bk), check=1)
    assert b"not a regular file" in r.stderr, r.stderr
    assert not other.data_dir.exists() or list(other.data_dir.iterdir()) == []
