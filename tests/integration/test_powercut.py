# SPDX-License-Identifier: MIT
"""Simulated power cuts: what the disk may hold when the power goes.

A kill -9 keeps the page cache: every write xdmsd made reaches the disk
later, flushed or not. A power cut keeps only what was flushed, plus any
part of what was not, in any order. To test that, xdmsd runs with
powercut_shim.c preloaded, which records every write to data.mdb and
data.wal and every flush of them, in order. After a kill -9 under load, the
test builds from that record several disks a power cut could have left:
everything flushed, plus none, all, or a random share of the 512-byte
sectors written since each file's last flush began. Every one must open
(recovery included) and hold every acknowledged write: for each document,
the version last acknowledged or one sent after it.

The same test with store.sync=false, whose writes are answered before any
flush, must lose acknowledged writes on the disk that kept nothing
unflushed: the check can fail.
"""

import os
import random
import re
import shutil
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from xdmslib import ALICE, MIME, RL, Server, doc_path, rl_doc, xdmsctl_path

HERE = Path(__file__).resolve().parent
FILES = {1: "data.mdb", 2: "data.wal"}
SECTOR = 512
WRITERS = 4
DOCS_PER_WRITER = 6


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to build powercut_shim.c"
    out = tmp_path_factory.mktemp("shim") / "powercut_shim.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(out), str(HERE / "powercut_shim.c"), "-ldl",
                    "-lpthread"], check=True, capture_output=True, timeout=120)
    return out


def read_journal(path):
    """The shim's records: (type, file, offset, bytes or the flush's start)."""
    data = path.read_bytes()
    out, p = [], 0
    while p + 32 <= len(data):
        magic, typ, f, _, off, ln = struct.unpack_from("<4sIIIQQ", data, p)
        assert magic == b"XPCJ", f"journal damaged at {p}"
        p += 32
        if typ in (1, 2):
            if p + ln > len(data):
                break  # cut short by the kill
            out.append((typ, f, off, data[p:p + ln]))
            p += ln
        else:
            out.append((typ, f, off, ln))
    return out


def trim_journal(path):
    """Cuts a record the kill left unfinished off the end of the journal, so
    that the next process's records follow a whole one."""
    data = path.read_bytes()
    p = 0
    while p + 32 <= len(data):
        typ, ln = struct.unpack_from("<I", data, p + 4)[0], struct.unpack_from("<Q", data, p + 24)[0]
        end = p + 32 + (ln if typ in (1, 2) else 0)
        if end > len(data):
            break
        p = end
    with open(path, "r+b") as f:
        f.truncate(p)


def crash_images(journal, base_dir, share, rng):
    """{file name: bytes}: the base files, every write covered by a flush
    that returned, and of the others each sector with probability @share."""
    recs = read_journal(journal)
    durable_before = {f: 0 for f in FILES}  # writes with a lower index are flushed
    began = {}
    for i, (typ, f, _, ref) in enumerate(recs):
        if typ == 3:
            began[ref] = i
        elif typ == 4:
            durable_before[f] = max(durable_before[f], began[ref])
    files = {}
    for f, name in FILES.items():
        p = base_dir / name
        files[f] = bytearray(p.read_bytes() if p.exists() else b"")
    for i, (typ, f, off, payload) in enumerate(recs):
        img = files.get(f)
        if img is None:
            continue
        if typ == 5:  # size set
            if off < len(img):
                del img[off:]
            else:
                img.extend(bytes(off - len(img)))
            continue
        if typ not in (1, 2):
            continue
        is_durable = typ == 2 or i < durable_before[f]
        end = off + len(payload)
        if len(img) < end:
            img.extend(bytes(end - len(img)))
        if is_durable:
            img[off:end] = payload
            continue
        at = off
        while at < end:
            nxt = min(end, (at // SECTOR + 1) * SECTOR)
            if rng.random() < share:
                img[at:nxt] = payload[at - off:nxt - off]
            at = nxt
    return {FILES[f]: bytes(b) for f, b in files.items()}


def write_load(srv, stop, big):
    """WRITERS threads each replace their documents in turn, version after
    version; with @big the first writes documents of 150 KB, which the log
    leaves to LMDB's own flush and a checkpoint. Returns (threads, sent,
    acked, errors): per path the highest version sent and the highest
    acknowledged."""
    sent, acked, errors = {}, {}, []
    lock = threading.Lock()

    def size_of(w):
        return 150000 if big and w == 0 else 300

    def writer(w):
        c = srv.client(ALICE)
        v = 0
        while not stop.is_set():
            v += 1
            path = doc_path(RL, ALICE, f"pc/w{w}d{v % DOCS_PER_WRITER}")
            with lock:
                sent[path] = v
            try:
                r = c.put(path, rl_doc(f"w{w} version {v}; " + "x" * size_of(w)), MIME[RL])
            except OSError:
                return
            if r.status not in (200, 201):
                errors.append(f"PUT {path}: {r.status}")
                return
            with lock:
                acked[path] = v

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads:
        t.start()
    return threads, sent, acked, errors


def version_of(body):
    return int(re.search(rb"version (\d+);", body).group(1))


def check_image(tmp_path, name, files, data, acked, sent):
    """Puts the image's bytes into the killed server's own data.mdb and
    data.wal (the log names data.mdb's inode, which a copy would not have),
    starts xdmsd on it and returns the acknowledged writes it lost."""
    for fname, content in files.items():
        p = data / fname
        if not content and not p.exists():
            continue
        with open(p, "r+b") as f:
            f.write(content)
            f.truncate(len(content))
    srv = Server(tmp_path / name, name=name, sync=True, data_dir=data)
    srv.start()
    lost = []
    try:
        c = srv.client(ALICE)
        for path, v in acked.items():
            r = c.get(path)
            if r.status != 200:
                lost.append(f"{path}: acknowledged v{v}, now {r.status}")
                continue
            got = version_of(r.body)
            if got < v or got > sent[path]:
                lost.append(f"{path}: acknowledged v{v} (sent up to v{sent[path]}), now v{got}")
    finally:
        srv.stop()
    return lost, srv.log_path.read_text(errors="replace")


def recovered(log):
    """Whether the server recovered from the log, or found its header cut
    short by the power cut in a checkpoint (written after LMDB's flush, so
    LMDB's own state is the one to keep)."""
    return "write-ahead log: restored txn" in log or bool(re.search(r"header of the write-ahead log in \S+ is damaged", log))


def shim_env(shim, data_dir, journal):
    return {"LD_PRELOAD": str(shim), "XDMS_PC_DIR": str(data_dir), "XDMS_PC_JOURNAL": str(journal),
            # A sanitizer build's runtime wants to come first; the shim only
            # passes calls on.
            "ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))}


def run_cut(start_server, shim, tmp_path, settings, sync, seconds, big=False):
    srv = start_server(settings=settings, sync=sync, start=False)
    base = tmp_path / "base"
    shutil.copytree(srv.data_dir, base)
    journal = tmp_path / "journal"
    srv.env.update(shim_env(shim, srv.data_dir, journal))
    srv.start()
    stop = threading.Event()
    threads, sent, acked, errors = write_load(srv, stop, big)
    time.sleep(seconds)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(10)
    trim_journal(journal)
    assert not errors, errors
    assert journal.exists() and journal.stat().st_size > 0, "the shim recorded nothing"
    return base, journal, srv.data_dir, dict(sent), dict(acked)


@pytest.mark.parametrize("wal,seconds,big", [("log", 0.7, False), ("log", 1.6, True), ("no-log", 1.2, True)])
def test_power_cut_keeps_every_acknowledged_write(start_server, shim, tmp_path, wal, seconds, big):
    """The cut falls wherever the kill lands: between checkpoints, in one,
    in a group commit or its flush; two loads of different lengths with the
    log give two such points, one of them with large documents written
    without the log."""
    settings = {} if wal == "log" else {"store.wal_size": "0"}
    base, journal, rest, sent, acked = run_cut(start_server, shim, tmp_path, settings, True, seconds, big)
    if big:
        assert sum(v for p, v in acked.items() if "/pc/w0d" in p) >= 2, "no large document was acknowledged"
    assert sum(acked.values()) >= 40, f"too few writes were acknowledged to test anything: {acked}"
    rng = random.Random(17)
    shares = [0.0, 1.0, 0.5, 0.1, 0.9] + [rng.random() for _ in range(3)]
    problems = []
    for i, share in enumerate(shares):
        files = crash_images(journal, base, share, random.Random(1000 + i))
        lost, log = check_image(tmp_path, f"img{i}", files, rest, acked, sent)
        problems += [f"image {i} (share {share:.2f}): {x}" for x in lost]
        if wal == "log":
            # Each image is recovered from the log, not from LMDB's state,
            # unless the cut fell in a checkpoint's header write.
            assert recovered(log), f"image {i}: not recovered from the log:\n{log[-2000:]}"
    assert not problems, "\n".join(problems[:20])


def test_the_check_catches_writes_answered_before_their_flush(start_server, shim, tmp_path):
    base, journal, rest, sent, acked = run_cut(start_server, shim, tmp_path, {}, False, 1.0)
    assert acked
    files = crash_images(journal, base, 0.0, random.Random(1))
    lost, _ = check_image(tmp_path, "img-nosync", files, rest, acked, sent)
    assert lost, "store.sync=false lost nothing acknowledged on a disk that kept nothing unflushed"


def test_an_xdmsctl_write_outlives_the_server_dying_during_it(start_server, shim, tmp_path):
    """xdmsctl writes beside a running server, which is killed after
    xdmsctl's commit and before its flush (the shim holds xdmsctl there).
    xdmsctl still reports success, so its write must survive what follows:
    here, disks a power cut after xdmsctl ended could leave. Once, the next
    start wrote the dead server's older checkpoint back over it."""
    srv = start_server(sync=True, start=False)
    base = tmp_path / "base"
    shutil.copytree(srv.data_dir, base)
    journal = tmp_path / "journal"
    env = shim_env(shim, srv.data_dir, journal)
    srv.env.update(env)
    srv.start()
    c = srv.client(ALICE)
    sent, acked = {}, {}
    for i in range(1, 21):
        path = doc_path(RL, ALICE, f"pc/h{i % 4}")
        sent[path] = i
        r = c.put(path, rl_doc(f"http version {i}; "), MIME[RL])
        assert r.status in (200, 201), r.describe()
        acked[path] = i
    marker = tmp_path / "paused"
    proc = subprocess.Popen([str(xdmsctl_path()), "--data-dir", str(srv.data_dir), "doc", "put",
                             f"resource-lists/users/{ALICE}/pc/ctl", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **env, "XDMS_PC_PAUSE": str(marker)})
    try:
        proc.stdin.write(rl_doc("xdmsctl version 1; "))
        proc.stdin.close()
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, f"xdmsctl ended before its commit's flush: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "xdmsctl did not reach its commit's flush"
            time.sleep(0.01)
        srv.kill9()
        marker.unlink()
        proc.wait(60)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    path = doc_path(RL, ALICE, "pc/ctl")
    sent[path] = acked[path] = 1
    problems = []
    for i, share in enumerate((0.0, 1.0, 0.5)):
        files = crash_images(journal, base, share, random.Random(2000 + i))
        lost, log = check_image(tmp_path, f"img{i}", files, srv.data_dir, acked, sent)
        problems += [f"image {i} (share {share:.2f}): {x}" for x in lost]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("at", ["meta", "header"])
def test_a_power_cut_during_recovery_loses_nothing(start_server, shim, tmp_path, at):
    """The server dies under writes; the next start's recovery is cut too,
    held by the shim before the flush of the checkpoint's meta pages it has
    just written back into data.mdb ("meta"), or, after the replay, before
    the flush of the new checkpoint's header ("header"). Every disk that
    second cut could leave must recover every acknowledged write."""
    base, journal, data, sent, acked = run_cut(start_server, shim, tmp_path, {}, True, 0.8)
    marker = tmp_path / "paused"
    rec = Server(tmp_path / "recovering", name="recovering", sync=True, data_dir=data)
    env = {**os.environ, **shim_env(shim, data, journal), "XDMS_PC_PAUSE": str(marker),
           "XDMS_PC_PAUSE_ON": at}
    proc = subprocess.Popen(rec.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, b"")), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert proc.poll() is None, f"the recovering xdmsd exited: {b''.join(lines)!r}"
            assert not any(b"listening" in x for x in lines), \
                f"recovery never reached the {at} flush: {b''.join(lines)!r}"
            assert time.monotonic() < deadline, "the recovering xdmsd did not reach the pause"
            time.sleep(0.01)
    finally:
        proc.kill()
        proc.wait(30)
        reader.join(5)
    if at == "header":
        assert any(b"write-ahead log: restored txn" in x for x in lines), b"".join(lines)
    problems = []
    for i, share in enumerate((0.0, 1.0, 0.5, 0.2)):
        files = crash_images(journal, base, share, random.Random(3000 + i))
        lost, log = check_image(tmp_path, f"img{i}", files, data, acked, sent)
        problems += [f"image {i} (share {share:.2f}): {x}" for x in lost]
        assert recovered(log), f"image {i}: not recovered from the log:\n{log[-2000:]}"
    assert not problems, "\n".join(problems[:20])
