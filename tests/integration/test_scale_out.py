# SPDX-License-Identifier: MIT
"""Users sharded over three xdmsd behind HAProxy and Kamailio (DESIGN §6,
docs/scale-out.md), end to end on loopback with the configurations in
deploy/ and one shard map for both routers.

One deployment is started for the module (three shards, HAProxy, Kamailio,
a 4th-party xdmsd as the CAB 3rd party) and 300 users are provisioned with
xdmsctl on the shard the map gives them; each test leaves every shard
running as it found it. The test of adding a 4th shard runs last: it changes
the map.
"""

import http.client
import socket
import threading
import time
import urllib.parse

import pytest

from iwflib import LOCAL_PCC, fh_doc, pcc_url, request_xml, wait_response
from scaleout import (TRUSTED_HOP, HAProxy, Kamailio, Shard, available, load_map, shardmap)
from sipua import DIFF_NS, Subscriber, rl_body
from xdmslib import (ADMIN, ALICE, FH, IWF, MIME, PASSWORDS, PCC, RL, Client, Server, data, doc_path,
                     expect, global_path, rl_doc, unquote)

pytestmark = pytest.mark.skipif(not available(), reason="haproxy and kamailio (Debian packages) are needed")

USERS = [f"sip:user{i}@example.com" for i in range(290)] + [f"tel:+1555000{i:04d}" for i in range(10)]
ADAPTER_SEL = "org.xdmsd.iwf-adapter/global/remote-cab"
D = f"{{{DIFF_NS}}}"
SHARD_SETTINGS = {
    "auth.trusted_peers": "127.0.0.2",
    "auth.server_identities": IWF,
    "auth.admin_identities": ADMIN,
    "iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5",
    "iwf.ack_in_progress": "true",
    "sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
}


class Cluster:
    def __init__(self, base):
        self.base = base
        self.shards = []
        self.map_path = base / "buckets.map"
        self.map_path.write_text(shardmap("init", "3"))
        self.haproxy = HAProxy(base / "haproxy")
        self.kamailio = Kamailio(base / "kamailio")
        self.remote = None
        self.etags = {}  # XUI -> ETag of its resource-lists document

    def add_shard(self):
        # One iwf.key_file for every shard: a moved user's sealed credentials open on its new shard.
        settings = dict(SHARD_SETTINGS, **{"iwf.key_file": str(self.base / "iwf.key")})
        s = Shard(self.base / f"shard{len(self.shards) + 1}", len(self.shards) + 1, settings)
        self.shards.append(s)
        s.start()
        return s

    def configure_routers(self):
        self.haproxy.write_shards(self.shards, self.map_path.read_text())
        self.kamailio.write_shards(self.shards, self.map_path)

    def bucket_shard(self, xui):
        return self.map[self.buckets[xui]]

    def load(self):
        self.map = load_map(self.map_path)

    def client(self, identity=None):
        """An XCAP client of HAProxy from the trusted hop, asserting @identity."""
        headers = {"X-3GPP-Asserted-Identity": f'"{identity}"'} if identity else None
        return Client(self.haproxy, source_address=TRUSTED_HOP, headers=headers)

    def stop(self):
        self.kamailio.stop()
        self.haproxy.stop()
        for s in self.shards + ([self.remote] if self.remote else []):
            if s.proc is not None:
                s.stop(check=False)


def enc(xui, how):
    if how == "raw":
        return xui
    if how == "full":
        return urllib.parse.quote(xui, safe="")
    return xui.replace(":", "%3A")  # partly encoded


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("scale-out"))
    try:
        c.remote = Server(c.base / "remote", name="remote", settings={"auth.trusted_peers": "127.0.0.2"})
        c.remote.add_user(ALICE, PASSWORDS[ALICE])
        c.remote.start()
        expect(c.remote.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
        for _ in range(3):
            c.add_shard()
        c.load()
        buckets = shardmap("bucket", *USERS).split()
        c.buckets = dict(zip(USERS, buckets))
        # Provisioning through the admin path: each user on the shard the map gives it.
        for xui in USERS:
            c.shards[c.bucket_shard(xui) - 1].ctl_fast("user", "add", xui, "pw-" + xui[-4:])
        c.configure_routers()
        c.haproxy.start()
        c.kamailio.start()
        # Every user writes a document through HAProxy (asserted by the trusted hop).
        for xui in USERS:
            r = expect(c.client(xui).put_doc(RL, xui, rl_doc(display=xui)), 201)
            c.etags[xui] = unquote(r.header("ETag"))
        yield c
    finally:
        c.stop()


@pytest.fixture(autouse=True)
def _logs(request, cluster):
    request.node._xdms_servers = cluster.shards + [cluster.remote]
    yield
    # Each test leaves every shard up.
    for s in cluster.shards:
        if s.proc is None:
            s.start()


def shard_docs(shard, prefix):
    out = shard.ctl("doc", "list", prefix, check=0).stdout.decode().split("\n")
    return {line.split("\t")[0] for line in out if line}


def test_each_user_on_one_shard_reachable_by_any_encoding(cluster):
    counts = {s.number: 0 for s in cluster.shards}
    stored = {s.number: shard_docs(s, f"{RL}/users/") for s in cluster.shards}
    for xui in USERS:
        home = cluster.bucket_shard(xui)
        sel = f"{RL}/users/{xui}/index"
        where = [n for n, sels in stored.items() if sel in sels]
        assert where == [home], f"{xui}: expected on shard {home} only, found on {where}"
        counts[home] += 1
    # The map spreads the users: no shard is empty or holds nearly all.
    assert all(60 <= n <= 140 for n in counts.values()), counts

    c = cluster.client()
    for i, xui in enumerate(USERS):
        how = ("raw", "full", "partial")[i % 3]
        r = expect(cluster.client(xui).get(doc_path(RL, enc(xui, how))), 200)
        assert unquote(r.header("ETag")) == cluster.etags[xui], (xui, how)
        assert r.header("X-XDMS-Shard") == str(cluster.bucket_shard(xui)), (xui, how, r.headers)
    # Both encodings of one user reach the same document (and the same shard).
    xui = USERS[7]
    a = expect(cluster.client(xui).get(doc_path(RL, enc(xui, "raw"))), 200)
    b = expect(cluster.client(xui).get(doc_path(RL, enc(xui, "full"))), 200)
    assert a.body == b.body and a.header("ETag") == b.header("ETag")
    c.close()


def test_asserted_identity_only_from_a_trusted_hop(cluster):
    xui = USERS[3]
    untrusted = Client(cluster.haproxy, headers={"X-3GPP-Asserted-Identity": f'"{xui}"'})
    r = untrusted.get(doc_path(RL, xui))
    # HAProxy dropped the header: xdmsd asks for Digest credentials.
    assert r.status == 401, r.describe()
    # With Digest it works through HAProxy too (the user's own shard checks it).
    d = Client(cluster.haproxy, username=xui, password="pw-" + xui[-4:])
    expect(d.get(doc_path(RL, xui)), 200)


def test_global_documents_written_on_every_shard(cluster, tmp_path):
    staging = Server(tmp_path / "staging", name="staging")
    staging.ctl("adapter", "add", "remote-cab", "--kind", "xcap", "--url", pcc_url(cluster.remote), check=0)
    urls = [a for s in cluster.shards for a in ("--shard", cluster.haproxy.shard_url(s.number))]
    res = staging.ctl("global", "push", "org.xdmsd.iwf-", *urls, "--identity", ADMIN, check=0)
    out = res.stdout.decode()
    assert "1 document(s) to 3 shard(s): 0 write(s) failed" in out, out
    for s in cluster.shards:
        listed = s.ctl("adapter", "list", check=0).stdout.decode()
        assert listed.startswith("remote-cab\txcap\t"), (s.name, listed)
    # Readable through HAProxy's public side, from whichever shard answers.
    for _ in range(3):
        expect(cluster.client(ALICE).get(global_path("org.xdmsd.iwf-adapter", "remote-cab")), 200)
    # Not writable there: a write through one shard would reach one shard only.
    r = cluster.client(ADMIN).put(global_path("org.xdmsd.iwf-adapter", "other"), b"<x/>",
                                  MIME.get("org.xdmsd.iwf-adapter", "application/xml"))
    assert r.status == 403 and b"xdmsctl global put" in r.body, r.describe()

    # A shard that is down is reported, the others take the write.
    down = cluster.shards[1]
    down.kill9()
    doc = staging.ctl("adapter", "show", "remote-cab", check=0).stdout
    f = tmp_path / "adapter.xml"
    f.write_bytes(doc.replace(b"</adapter>", b"  <timeout>7</timeout>\n</adapter>"))
    res = staging.ctl("global", "put", ADAPTER_SEL, str(f), *urls, "--identity", ADMIN, check=1)
    lines = res.stdout.decode().splitlines()
    failed = [x for x in lines if "\tFAILED\t" in x]
    assert len(failed) == 1 and "/shard/2/" in failed[0] and "503" in failed[0], lines
    assert "2 of 3 shard(s) took the write" in lines[-1], lines
    down.start()
    wait_up(cluster, down)
    # Run again once the shard is back: every shard has the new version.
    staging.ctl("global", "put", ADAPTER_SEL, str(f), *urls, "--identity", ADMIN, check=0)
    for s in cluster.shards:
        assert b"<timeout>7</timeout>" in s.ctl("adapter", "show", "remote-cab", check=0).stdout, s.name


def wait_up(cluster, shard, timeout=15):
    """Until HAProxy routes to @shard again (its health check passed)."""
    xui = next(x for x in USERS if cluster.bucket_shard(x) == shard.number)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.client(xui).get(doc_path(RL, xui)).status == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"{shard.name}'s users still fail through HAProxy after {timeout}s")


def test_one_shard_down_fails_only_its_users(cluster):
    down = cluster.shards[2]
    down.kill9()
    deadline = time.monotonic() + 15
    statuses = {}
    while time.monotonic() < deadline:
        statuses = {x: cluster.client(x).get(doc_path(RL, x)).status for x in USERS}
        if all(st == 503 for x, st in statuses.items() if cluster.bucket_shard(x) == 3):
            break
        time.sleep(0.1)
    for x, st in statuses.items():
        want = 503 if cluster.bucket_shard(x) == 3 else 200
        assert st == want, f"{x} (shard {cluster.bucket_shard(x)}) got {st}, expected {want}"
    down.start()
    wait_up(cluster, down)
    for x in USERS:
        r = expect(cluster.client(x).get(doc_path(RL, x)), 200)
        assert unquote(r.header("ETag")) == cluster.etags[x], x


def test_kamailio_routes_every_user_to_the_shard_haproxy_picks(cluster):
    """A fetch SUBSCRIBE (Expires: 0) for each of the 300 users' documents,
    through Kamailio: the NOTIFY carries the document's ETag only when the
    SUBSCRIBE reached the shard that holds it, the shard HAProxy wrote it to."""
    wrong = []
    for xui in USERS:
        sel = f"{RL}/users/{xui}/index"
        s = Subscriber(cluster.kamailio.port, aor=xui)
        try:
            resp = s.subscribe(rl_body(sel), expires=0)
            assert resp.status == 200, (xui, resp)
            docs = {d["sel"]: d.get("new-etag") for d in s.notify().documents()}
            if docs.get(sel) != cluster.etags[xui]:
                wrong.append((xui, cluster.bucket_shard(xui), docs))
        finally:
            s.close()
    assert not wrong, f"{len(wrong)} users' SUBSCRIBEs missed their shard, e.g. {wrong[:3]}"


def push_adapter(cluster, tmp_path):
    """The CAB 3rd party's adapter, added once and written to every shard."""
    staging = Server(tmp_path / "staging", name="staging")
    staging.ctl("adapter", "add", "remote-cab", "--kind", "xcap", "--url", pcc_url(cluster.remote), check=0)
    urls = [a for s in cluster.shards for a in ("--shard", cluster.haproxy.shard_url(s.number))]
    staging.ctl("global", "push", "org.xdmsd.iwf-", *urls, "--identity", ADMIN, check=0)


def notified_sels(sub, timeout):
    """Every document selector NOTIFYs name within @timeout seconds."""
    sels = set()
    for m in sub.pump(timeout):
        if m.method == "NOTIFY" and m.body:
            sels |= {d["sel"] for d in m.documents()}
    return sels


def test_cab_flow_through_both_routers_on_every_shard(cluster, tmp_path):
    push_adapter(cluster, tmp_path)
    # One CAB client per shard, and a CAB server watching every user's
    # Feature Handler: one collection subscription per shard.
    users = {n: next(x for x in USERS if x.startswith("sip:") and cluster.bucket_shard(x) == n)
             for n in (1, 2, 3)}
    watchers, clients = {}, {}
    try:
        for n in users:
            w = Subscriber(cluster.kamailio.port, aor=IWF)
            watchers[n] = w
            r = w.subscribe(rl_body(f"{FH}/users/"), request_uri=f"sip:shard-{n}@example.com")
            assert r.status == 200, (n, r)
            w.notify()
        for n, xui in users.items():
            c = cluster.client(xui)
            expect(c.put_doc(PCC, xui, LOCAL_PCC), 201)
            fh0 = unquote(expect(c.put_doc(FH, xui, fh_doc()), 201).header("ETag"))
            s = Subscriber(cluster.kamailio.port, aor=xui)
            clients[n] = s
            fh_sel, pcc_sel = f"{FH}/users/{xui}/index", f"{PCC}/users/{xui}/index"
            r = s.subscribe(rl_body(fh_sel, pcc_sel), mode="xcap-patching")
            assert r.status == 200, (xui, r)
            full = {d["sel"]: d["new-etag"] for d in s.notify().documents()}
            assert full.get(fh_sel) == fh0, (xui, full)
            # A refresh is an in-dialog request: it follows the Record-Route
            # Kamailio put in, to the same shard.
            rr, contact = r.header("Record-Route"), r.header("Contact")
            assert rr and contact, r
            target = contact.strip().lstrip("<").split(">")[0]
            again = s.subscribe(rl_body(fh_sel, pcc_sel), mode="xcap-patching", request_uri=target,
                                extra=(f"Route: {rr}",))
            assert again.status == 200, (xui, again)
        for n, xui in users.items():
            req = request_xml("import-profile", f"imp-{n}", "remote-cab", remote_user=ALICE, username=ALICE,
                              password=PASSWORDS[ALICE])
            expect(cluster.client(xui).put_doc(FH, xui, fh_doc(req)), 200)
        for n, xui in users.items():
            resp, _ = wait_response(cluster.client(xui), xui, f"imp-{n}")
            assert resp.get("status") == "success" and resp.get("code") == "200", (xui, resp.attrib)
            pcc = expect(cluster.client(xui).get(doc_path(PCC, xui)), 200)
            assert b"tel:+15555550101" in pcc.body, f"{xui}: the import did not reach its PCC"
            # The client heard of the <response> by NOTIFY, through Kamailio.
            deadline = time.monotonic() + 20
            seen = False
            while not seen and time.monotonic() < deadline:
                m = clients[n].notify(timeout=max(0.1, deadline - time.monotonic()))
                seen = b"<response" in m.body or b":response" in m.body
            assert seen, f"{xui}: no NOTIFY carried the <response>"
        # Each shard's watcher saw its own user's Feature Handler change, and
        # only users of its shard.
        for n, w in watchers.items():
            sels = notified_sels(w, 0.5)
            assert f"{FH}/users/{users[n]}/index" in sels, (n, sels)
            others = {s for s in sels if cluster.bucket_shard(s.split("/")[2]) != n}
            assert not others, (n, others)
    finally:
        for s in list(watchers.values()) + list(clients.values()):
            s.close()


DIRECTORY = "org.openmobilealliance.xcap-directory"


def user_docs(shards):
    """{XUI: {selector: ETag}} of every user document on @shards, and where
    each user's documents are ({XUI: set of shard numbers}). The generated
    xcap-directory is left out: each shard builds its own."""
    docs, where = {}, {}
    for s in shards:
        for line in s.ctl("doc", "list", check=0).stdout.decode().splitlines():
            sel, etag, _ = line.split("\t")
            parts = sel.split("/")
            if parts[1] != "users" or parts[0] == DIRECTORY:
                continue
            docs.setdefault(parts[2], {})[sel] = etag.strip('"')
            where.setdefault(parts[2], set()).add(s.number)
    return docs, where


class Writer:
    """Writes one user's document through HAProxy in a loop, remembering the
    last write that was acknowledged (and its ETag)."""

    def __init__(self, cluster, xuis):
        self.cluster, self.xuis = cluster, xuis
        self.acked = {}
        self.refused = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        n = 0
        clients = {x: self.cluster.client(x) for x in self.xuis}
        while not self.stop_flag.is_set():
            xui = self.xuis[n % len(self.xuis)]
            n += 1
            try:
                r = clients[xui].put_doc(RL, xui, rl_doc(display=f"write {n}"))
            except (OSError, http.client.HTTPException):
                # HAProxy restarting for the switch: not acknowledged.
                clients[xui].close()
                continue
            if r.status in (200, 201):
                self.acked[xui] = unquote(r.header("ETag"))
            elif r.status == 503:
                self.refused += 1
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(30)


def test_fourth_shard_moves_a_quarter_and_loses_nothing(cluster, tmp_path):
    before, where = user_docs(cluster.shards)
    assert len(before) == len(USERS)
    old_map = cluster.map_path
    new_map = tmp_path / "buckets4.map"
    new_map.write_text(shardmap("add", str(old_map)))
    moves = [line.split() for line in shardmap("moves", str(old_map), str(new_map), *USERS).splitlines()]
    assert all(int(new) == 4 for _, _, new in moves), "a bucket moved between two old shards"
    # About a quarter: the buckets the 4th shard took (64 of 256).
    assert 0.15 * len(USERS) <= len(moves) <= 0.35 * len(USERS), len(moves)

    # The new shard joins the routers with no buckets yet, and gets the global documents.
    s4 = cluster.add_shard()
    cluster.haproxy.stop()
    cluster.haproxy.write_shards(cluster.shards, old_map.read_text())
    cluster.haproxy.start()
    res = cluster.shards[0].ctl("global", "push", "--shard", cluster.haproxy.shard_url(4), "--identity", ADMIN,
                                check=0)
    assert "0 write(s) failed" in res.stdout.decode(), res.stdout

    moving = [x for x, _, _ in moves]
    busy = moving[:4]
    # An IWF job that is still open when its user moves: its 3rd party
    # accepts the connection and never answers; the adapter waits 120 s, so
    # that the job is still open on the new shard however long the move takes
    # on a busy machine.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    adapter = tmp_path / "hung.xml"
    adapter.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<adapter xmlns="urn:xdmsd:xml:iwf-adapter" '
                       f'kind="xcap">\n  <url>http://127.0.0.1:{hung.getsockname()[1]}/xcap-root/'
                       'org.openmobilealliance.cab-pcc/users/{remote-user}/index</url>\n'
                       '  <timeout>120</timeout>\n</adapter>\n')
    urls = [a for s in cluster.shards for a in ("--shard", cluster.haproxy.shard_url(s.number))]
    cluster.shards[0].ctl("global", "put", "org.xdmsd.iwf-adapter/global/hung", str(adapter), *urls,
                          "--identity", ADMIN, check=0)
    job_user = moving[5]
    req = request_xml("import-profile", "imp-hung", "hung", remote_user=ALICE, username=ALICE,
                      password=PASSWORDS[ALICE])
    expect(cluster.client(job_user).put_doc(FH, job_user, fh_doc(req)), 201)
    # Running: the old shard's IWF has answered "in-progress" and waits for the 3rd party.
    resp, _ = wait_response(cluster.client(job_user), job_user, "imp-hung", final=False)
    assert resp.get("status") == "in-progress", resp.attrib
    before.setdefault(job_user, {})
    with Writer(cluster, busy) as writer:
        for i, (xui, old, _) in enumerate(moves):
            bundle = tmp_path / f"user{i}.export"
            cluster.shards[int(old) - 1].ctl("user", "export", xui, str(bundle), check=0)
            if i == 0:
                # Read-only on the old shard for the moment of the move.
                r = cluster.client(xui).put_doc(RL, xui, rl_doc(display="too late"))
                assert r.status == 503, r.describe()
                expect(cluster.client(xui).get(doc_path(RL, xui)), 200)
            res = s4.ctl("user", "import", str(bundle), check=0)
            if xui == job_user:
                # The request's sealed credentials and its open job came along.
                assert b"1 secret(s), 1 job(s) queued" in res.stdout, res.stdout
                fh_sel = f"{FH}/users/{xui}/index"
                before[xui][fh_sel] = cluster.shards[int(old) - 1].ctl(
                    "doc", "list", fh_sel, check=0).stdout.decode().split("\t")[1].strip('"')
        # The switch: both routers take the new map.
        cluster.map_path.write_text(new_map.read_text())
        cluster.load()
        cluster.haproxy.stop()
        cluster.configure_routers()
        cluster.haproxy.start()
        cluster.kamailio.stop()
        cluster.kamailio.start()
        # Let the writer be acknowledged on the new shard too.
        deadline = time.monotonic() + 10
        start_acks = dict(writer.acked)
        while time.monotonic() < deadline and all(writer.acked.get(x) == start_acks.get(x) for x in busy):
            time.sleep(0.05)
    jobs = [j.split("\t") for j in s4.ctl("jobs", "--user", job_user, check=0).stdout.decode().splitlines()]
    assert [j[1] for j in jobs if j[4] == "imp-hung"] in (["queued"], ["running"]), \
        f"the moved request has no open job on the new shard: {jobs!r}"
    hung.close()
    for i, (xui, old, _) in enumerate(moves):
        cluster.shards[int(old) - 1].ctl("user", "purge", xui, check=0)

    after, where = user_docs(cluster.shards)
    for xui in busy:
        assert xui in writer.acked, f"no write of {xui} was acknowledged"
        before[xui][f"{RL}/users/{xui}/index"] = writer.acked[xui]
    assert set(after) == set(before), set(before) ^ set(after)
    # The moved job went on running on the new shard, which may have written
    # its <response> since: then the document has an ETag of the new shard.
    fh_sel = f"{FH}/users/{job_user}/index"
    exported, now = before[job_user].pop(fh_sel), after[job_user].pop(fh_sel)
    assert now == exported or now.split("-")[1] != exported.split("-")[1], (exported, now)
    assert b'id="imp-hung"' in expect(cluster.client(job_user).get(doc_path(FH, job_user)), 200).body
    for xui in USERS:
        assert where[xui] == {cluster.bucket_shard(xui)}, (xui, where[xui], cluster.bucket_shard(xui))
        assert after[xui] == before[xui], f"{xui}: documents or ETags changed: {before[xui]} -> {after[xui]}"
    # Through the routers: every user is served by its (new) shard.
    for xui in USERS:
        r = expect(cluster.client(xui).get(doc_path(RL, xui)), 200)
        assert unquote(r.header("ETag")) == before[xui][f"{RL}/users/{xui}/index"], xui
    for xui in moving[:20]:
        sel = f"{RL}/users/{xui}/index"
        s = Subscriber(cluster.kamailio.port, aor=xui)
        try:
            assert s.subscribe(rl_body(sel), expires=0).status == 200
            docs = {d["sel"]: d.get("new-etag") for d in s.notify().documents()}
            assert docs.get(sel) == before[xui][sel], (xui, docs)
        finally:
            s.close()
    # The credentials moved too: Digest through HAProxy on the new shard.
    xui = moving[-1]
    expect(Client(cluster.haproxy, username=xui, password="pw-" + xui[-4:]).get(doc_path(RL, xui)), 200)
