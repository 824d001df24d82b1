# SPDX-License-Identifier: MIT
"""Durability observed in the order of the real server's system calls.

A kill -9 cannot tell a flushed write from one left in the page cache (the
killed process's pages survive it), so these tests watch the server itself:
strace attaches to every thread of a running xdmsd and records, in the order
the kernel saw them, the writes to data.mdb, the flushes (fdatasync, fsync,
msync, sync_file_range) and the bytes sent on each client connection.

For every acknowledged write the check (flush_violations) finds, in that
record, with the write-ahead log (store.wal_size, the default):
  L  the first write to data.wal of a record that holds the document's
     unique marker (written before the commit),
  F  a flush of data.wal that starts after L and returns before
  S  the first byte of the "HTTP/1.1 200/201" on the client's connection;
and without it (store.wal_size=0):
  P  the first write to data.mdb of a data page that holds the marker
     (the write's own commit),
  M  the first meta-page write after P (that commit's meta page: LMDB runs
     with MDB_NOMETASYNC, so the meta page is written unflushed),
  F  a flush of data.mdb that starts after M and returns before S.
With store.sync=true every write must have L < F < S or P < M < F < S,
alone and in a group commit of concurrent writers; with store.sync=false
the server must not flush at all. The check is also run on the
store.sync=false record and must find a violation there, so it cannot pass
vacuously.
"""

import re
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from xdmslib import ALICE, MIME, RL, doc_path, expect, metric_sum, parse_metrics, rl_doc

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(STRACE is None, reason="strace (Debian package strace) is not installed")

SYSCALLS = "fdatasync,fsync,msync,sync_file_range,pwrite64,pwritev,pwritev2,write,writev,sendto,sendmsg"
FLUSHES = {"fdatasync", "fsync", "msync", "sync_file_range"}
DATA_WRITES = {"pwrite64", "pwritev", "pwritev2", "write", "writev"}
SENDS = {"sendto", "sendmsg", "write", "writev"}

_LINE_RE = re.compile(r"^(\d+) +(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")
_FD_RE = re.compile(r"^\d+<(.*?)>(?:\(deleted\))?(?:[,)]| <unfinished)")


class Tracer:
    """strace -f attached to every thread of a running xdmsd."""

    def __init__(self, srv, path, extra=()):
        """@extra: more strace options, e.g. a fault injection."""
        self.path = Path(path)
        self.err = self.path.with_suffix(".stderr")
        tasks = len(list(Path(f"/proc/{srv.proc.pid}/task").iterdir()))
        self.proc = subprocess.Popen(
            [STRACE, "-f", "-yy", "-s", "65536", "-e", f"trace={SYSCALLS}", *extra, "-o", str(self.path),
             "-p", str(srv.proc.pid)],
            stdout=subprocess.DEVNULL, stderr=open(self.err, "wb"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = re.search(r"attached with (\d+) threads", self.err.read_text(errors="replace"))
            if m and int(m.group(1)) >= tasks:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"strace did not attach to xdmsd: {self.err.read_text(errors='replace')}")

    def stop(self):
        """Detaches (SIGINT) and returns the parsed events."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return parse_trace(self.path.read_text(errors="replace"))


def parse_trace(text):
    """[(index, kind, syscall, fd path, argument text)] where kind is "start"
    for a call's entry (its arguments are known there) and "end" for its
    return; a call strace saw in one piece gives both, in that order."""
    events = []
    pending = {}
    for line in text.splitlines():
        m = _LINE_RE.match(line)
        if not m:
            continue  # signals, exits
        pid, resumed, name, rest = m.groups()
        if resumed:
            name, args = pending.pop((pid, resumed), (resumed, ""))
            events.append((len(events), "end", name, _fd(args), args))
            continue
        fd = _fd(rest)
        if rest.endswith("<unfinished ...>"):
            pending[(pid, name)] = (name, rest)
            events.append((len(events), "start", name, fd, rest))
        else:
            events.append((len(events), "start", name, fd, rest))
            events.append((len(events), "end", name, fd, rest))
    return events


def _fd(args):
    m = _FD_RE.match(args)
    return m.group(1) if m else ""


def _is_data_file(fd):
    return fd.endswith("/data.mdb")


def _is_log_file(fd):
    return fd.endswith("/data.wal")


def _offset(args):
    """The file offset of a pwrite64/pwritev call (its last argument)."""
    m = re.search(r", (\d+)\)( = .*)?$", args) or re.search(r", (\d+)\s*<unfinished", args)
    return int(m.group(1)) if m else None


def _is_meta_write(name, args):
    # The two meta pages are pages 0 and 1; LMDB rewrites part of one with
    # pwrite64 at an offset below 2 pages (at most 64 KiB pages).
    if name != "pwrite64":
        return False
    off = _offset(args)
    return off is not None and off < 2 * 4096


def flushes_of_data_file(events):
    return [e for e in events if e[1] == "start" and e[2] in FLUSHES
            and (e[2] == "msync" or _is_data_file(e[3]) or _is_log_file(e[3]))]


def _flush_between(events, first, last, is_file):
    """True when a flush of a file @is_file accepts starts after event
    @first and returns before event @last."""
    started = {}
    for e in events[first + 1:last]:
        _, kind, name, fd, _ = e
        if name not in FLUSHES or not (name == "msync" or is_file(fd)):
            continue
        if kind == "start":
            started[name] = started.get(name, 0) + 1
        elif started.get(name):
            return True
    return False


def flush_violations(events, writes):
    """For each (marker, client port) in @writes, checks P < M < F < S (see the
    module's docstring). Returns a list of what is wrong, empty when every
    acknowledged write was flushed before its answer."""
    problems = []
    for marker, port in writes:
        conn = f"->127.0.0.1:{port}]"
        sends = [e for e in events if e[1] == "start" and e[2] in SENDS and conn in e[3]
                 and re.search(r'"HTTP/1\.1 20[01] ', e[4])]
        if len(sends) != 1:
            problems.append(f"{marker}: {len(sends)} 200/201 answers seen on port {port}")
            continue
        s = sends[0][0]
        logged = [e for e in events if e[1] == "start" and e[2] in DATA_WRITES and _is_log_file(e[3])
                  and marker in e[4]]
        if logged:
            # L < F < S: the log's record, then a flush of the log.
            lw = logged[0][0]
            if lw > s:
                problems.append(f"{marker}: answered (event {s}) before its log record was written (event {lw})")
            elif not _flush_between(events, lw, s, _is_log_file):
                problems.append(f"{marker}: no flush of data.wal between its record (event {lw}) "
                                f"and its answer (event {s})")
            continue
        pages = [e for e in events if e[1] == "start" and e[2] in DATA_WRITES and _is_data_file(e[3])
                 and marker in e[4] and not _is_meta_write(e[2], e[4])]
        if not pages:
            problems.append(f"{marker}: no data.mdb page holding the document was written")
            continue
        p = pages[0][0]
        if p > s:
            problems.append(f"{marker}: answered (event {s}) before its page was written (event {p})")
            continue
        metas = [e for e in events if e[0] > p and e[1] == "start" and _is_data_file(e[3])
                 and _is_meta_write(e[2], e[4])]
        if not metas or metas[0][0] > s:
            problems.append(f"{marker}: answered (event {s}) before its commit's meta page was written")
            continue
        m = metas[0][0]
        if not _flush_between(events, m, s, _is_data_file):
            problems.append(f"{marker}: no flush of data.mdb between its meta page (event {m}) "
                            f"and its answer (event {s})")
    return problems


def put_marked(srv, n_docs, concurrent):
    """PUTs @n_docs documents, each holding a unique marker, each over its own
    connection (all released together when @concurrent). Returns
    [(marker, client port)]."""
    out = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_docs) if concurrent else None
    errors = []

    def one(i):
        try:
            marker = f"durable-{uuid.uuid4().hex}"
            c = srv.client(ALICE)
            # Authenticate first (a GET), so the PUT goes out alone.
            c.get(doc_path(RL, ALICE, "absent"))
            port = c._conn.sock.getsockname()[1]
            if barrier:
                barrier.wait(30)
            r = c.put(doc_path(RL, ALICE, f"flush/{marker}"), rl_doc(marker), MIME[RL])
            expect(r, 201)
            assert c._conn is not None and c._conn.sock.getsockname()[1] == port, \
                "the client reconnected; its answer cannot be matched to a connection"
            with lock:
                out.append((marker, port))
            c.close()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    if concurrent:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(n_docs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    else:
        for i in range(n_docs):
            one(i)
    if errors:
        raise errors[0]
    assert len(out) == n_docs
    return out


def batch_stats(srv):
    c = srv.client(ALICE)
    r = expect(c.get("/metrics"), 200)
    s = parse_metrics(r.body.decode())
    return (metric_sum(s, "xdms_store_write_batch_size_sum") or 0,
            metric_sum(s, "xdms_store_write_batch_size_count") or 0)


WAL_SIZES = [pytest.param(None, id="log"), pytest.param("0", id="no-log")]


def _settings(wal_size, **more):
    return {**({"store.wal_size": wal_size} if wal_size is not None else {}), **more}


def _assert_mode(events, writes, wal_size):
    """The records show the mode the server was asked for: every write went
    through the log, or none did."""
    logged = [m for m, _ in writes
              if any(e[2] in DATA_WRITES and _is_log_file(e[3]) and m in e[4] for e in events)]
    assert len(logged) == (0 if wal_size == "0" else len(writes)), (wal_size, logged)


@pytest.mark.parametrize("wal_size", WAL_SIZES)
def test_single_writes_are_flushed_before_the_answer(start_server, tmp_path, wal_size):
    srv = start_server(sync=True, settings=_settings(wal_size))
    tr = Tracer(srv, tmp_path / "strace.txt")
    writes = put_marked(srv, 3, concurrent=False)
    events = tr.stop()
    assert flushes_of_data_file(events), "store.sync=true: the server never flushed"
    _assert_mode(events, writes, wal_size)
    problems = flush_violations(events, writes)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("wal_size", WAL_SIZES)
def test_group_commit_is_flushed_before_every_answer(start_server, tmp_path, wal_size):
    """Concurrent writers share a commit; each answer still waits for a flush
    that covers it. Rounds repeat until a commit held more than one write."""
    srv = start_server(sync=True, settings=_settings(wal_size, **{"http.threads": "8"}))
    for round_ in range(5):
        before = batch_stats(srv)
        tr = Tracer(srv, tmp_path / f"strace-{round_}.txt")
        writes = put_marked(srv, 8, concurrent=True)
        events = tr.stop()
        _assert_mode(events, writes, wal_size)
        problems = flush_violations(events, writes)
        assert not problems, "\n".join(problems + [f"writes: {writes}"])
        after = batch_stats(srv)
        writes_n, commits_n = after[0] - before[0], after[1] - before[1]
        if commits_n < writes_n:
            return  # a group commit of several writers was observed and checked
    pytest.fail(f"8 concurrent writers never shared a commit in 5 rounds ({writes_n} writes, "
                f"{commits_n} commits in the last)")


def test_without_sync_nothing_is_flushed_and_the_check_notices(start_server, tmp_path):
    srv = start_server(sync=False)
    tr = Tracer(srv, tmp_path / "strace.txt")
    writes = put_marked(srv, 3, concurrent=False)
    events = tr.stop()
    assert not flushes_of_data_file(events), "store.sync=false, yet data.mdb or data.wal was flushed"
    # The same check that passes above must fail here: it does not pass vacuously.
    problems = flush_violations(events, writes)
    assert len(problems) == len(writes), problems
    assert all("no flush" in p for p in problems), problems


def test_the_trace_parser_joins_interrupted_calls():
    """A flush that another thread's call interrupts in strace's record still
    counts, from its entry to its return."""
    d = "/x/data/data.mdb"
    trace = "\n".join([
        f'7 writev(4<{d}>, [{{iov_base="..durable-m1..", iov_len=4096}}], 1) = 4096',
        f'7 pwrite64(4<{d}>, "\\0\\0", 120, 32) = 120',
        f"7 fdatasync(4<{d}> <unfinished ...>",
        '8 sendto(9<TCP:[127.0.0.1:80->127.0.0.1:5000]>, "HTTP/1.1 404 Not Found\\r\\n", 24, 0, NULL, 0) = 24',
        "7 <... fdatasync resumed>) = 0",
        '8 sendto(9<TCP:[127.0.0.1:80->127.0.0.1:5001]>, "HTTP/1.1 201 Created\\r\\n", 22, 0, NULL, 0) = 22',
    ])
    events = parse_trace(trace)
    assert flush_violations(events, [("durable-m1", 5001)]) == []
    # The same answer sent while the flush is still running is a violation.
    early = trace.replace("7 <... fdatasync resumed>) = 0\n", "") + "\n7 <... fdatasync resumed>) = 0"
    assert flush_violations(parse_trace(early), [("durable-m1", 5001)]) != []


def test_the_check_follows_the_log_when_the_record_is_there():
    """With the write-ahead log an answer needs its record written to
    data.wal and a flush of data.wal after it; a flush of another file, or
    one still running, does not count."""
    w = "/x/data/data.wal"
    answer = '8 sendto(9<TCP:[127.0.0.1:80->127.0.0.1:5001]>, "HTTP/1.1 201 Created\\r\\n", 22, 0, NULL, 0) = 22'
    record = f'7 pwrite64(5<{w}>, "XWLR..durable-m2..", 2200, 12288) = 2200'
    good = "\n".join([record, f"7 fdatasync(5<{w}>) = 0", answer])
    assert flush_violations(parse_trace(good), [("durable-m2", 5001)]) == []
    other = "\n".join([record, "7 fdatasync(4</x/data/data.mdb>) = 0", answer])
    assert "no flush of data.wal" in flush_violations(parse_trace(other), [("durable-m2", 5001)])[0]
    running = "\n".join([record, f"7 fdatasync(5<{w}> <unfinished ...>", answer,
                         "7 <... fdatasync resumed>) = 0"])
    assert flush_violations(parse_trace(running), [("durable-m2", 5001)]) != []
