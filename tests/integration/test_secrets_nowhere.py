# SPDX-License-Identifier: MIT
"""A request's credentials appear nowhere the server writes or sends.

Three import requests bring inline credentials: one the 3rd party (a second
xdmsd) accepts, one it refuses (an IWF failure), and a token (the element
OAuth refresh tokens come in), refused too. The local server logs at
debug level and starts with the IWF off, so the credentials stay in the
stored document while a subscriber that subscribed before the write gets
its patches and one that subscribes after it gets the full state, element
reports included. Then the IWF runs (a restart with it on) and answers both
requests. No password or token may appear in: either server's stderr or access
log, `xdmsctl jobs` (before and after), any SIP message either subscriber
received, the live content of the LMDB environment (a compacting copy:
records, change feed, jobs, secrets), or the documents. Free pages of
data.mdb may still hold the bytes of the client's PUT until LMDB reuses them
(docs/operations.md, Credentials); that is why the copy is compacted.
"""

import secrets
import shutil
import subprocess
import time

import pytest

from iwflib import add_adapter, expect_response, fh_doc, pcc_url, request_xml, wait_response
from sipua import Subscriber, rl_body
from xdmslib import ALICE, FH, PCC, data, doc_path, expect, sip_port, unquote

MDB_COPY = shutil.which("mdb_copy")
FH_SEL = f"{FH}/users/{ALICE}/index"


def test_credentials_appear_nowhere(start_server, tmp_path):
    if MDB_COPY is None:
        pytest.skip("mdb_copy (Debian package lmdb-utils) is not installed")
    good = "pw-good-" + secrets.token_hex(8)   # alice's password at the 3rd party
    bad = "pw-bad-" + secrets.token_hex(8)     # a wrong one: the 3rd party answers 401
    tok = "tok-" + secrets.token_hex(8)        # a token (as OAuth refresh tokens come), refused too
    remote = start_server(name="remote", users={ALICE: good}, settings={"log.level": "debug"})
    expect(remote.client(ALICE, password=good).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    local = start_server(name="local", sync=True, users={ALICE: "local-password"}, settings={
        "log.level": "debug", "iwf.enabled": "false", "iwf.retry_delay": "50", "iwf.max_attempts": "2",
        "sip.listen": "127.0.0.1:0", "sip.trust_from": "true"})
    add_adapter(local, "remote-cab", "xcap", pcc_url(remote))
    alice = local.client(ALICE, password="local-password")
    subscribers = []

    def subscriber(*uris, mode="xcap-patching"):
        s = Subscriber(sip_port(local))
        subscribers.append(s)
        assert s.subscribe(rl_body(*uris), mode=mode).status == 200
        return s

    element = f"{FH_SEL}/~~/cab-feature-handler/import-profile[1]"
    creds = f"{FH_SEL}/~~/cab-feature-handler/import-profile[2]/credentials"
    try:
        early = subscriber(FH_SEL, element)
        early.notify()
        reqs = [request_xml("import-profile", "imp-ok", "remote-cab", remote_user=ALICE,
                            username=ALICE, password=good),
                request_xml("import-profile", "imp-bad", "remote-cab", remote_user=ALICE,
                            username=ALICE, password=bad),
                request_xml("import-profile", "imp-tok", "remote-cab", remote_user=ALICE, token=tok)]
        expect(alice.put_doc(FH, ALICE, fh_doc(*reqs)), 201)
        stored = expect(alice.get(doc_path(FH, ALICE)), 200).body
        assert good.encode() in stored and bad.encode() in stored and tok.encode() in stored, \
            "the IWF is off: the credentials are stored"
        early.notify(timeout=10)  # the write's transition

        # Subscribed while the credentials are stored: the full state.
        late = subscriber(FH_SEL, element, creds)
        full = late.notify(timeout=10)
        assert full.body and b"import-profile" in full.body, (
            "the full state reports the request element (without its credentials)", full.body)
        jobs_queued = local.ctl("jobs", check=0)
        assert b"queued" in jobs_queued.stdout, jobs_queued.stdout

        # The IWF on: both requests are answered, one with a failure.
        local.settings["iwf.enabled"] = "true"
        local.settings["sip.listen"] = f"127.0.0.1:{sip_port(local)}"  # the subscribers answer there
        local.restart()
        resp, _ = wait_response(alice, ALICE, "imp-ok")
        expect_response(resp, "success", 200)
        resp, body = wait_response(alice, ALICE, "imp-bad")
        assert resp.get("status") == "failure", body
        resp, body = wait_response(alice, ALICE, "imp-tok")
        assert resp.get("status") == "failure", body
        final_etag = unquote(expect(alice.get(doc_path(FH, ALICE)), 200).etag)
        after = subscriber(FH_SEL, element, creds)
        after.notify(timeout=10)
        # The early subscriber hears of every transition up to the last version.
        deadline = time.monotonic() + 20
        while not any(f'new-etag="{final_etag}"'.encode() in m for m in early.received):
            assert time.monotonic() < deadline, f"the early subscriber never heard of {final_etag}"
            early.pump(0.2)
        jobs_done = local.ctl("jobs", check=0)
        assert b"done" in jobs_done.stdout and b"failed" in jobs_done.stdout, jobs_done.stdout
        copy = tmp_path / "compacted"
        copy.mkdir()
        subprocess.run([MDB_COPY, "-c", str(local.data_dir), str(copy)], check=True, timeout=60)

        places = {
            "local stderr (debug)": local.log_path.read_bytes(),
            "local access log": local.stdout_path.read_bytes(),
            "remote stderr (debug)": remote.log_path.read_bytes(),
            "remote access log": remote.stdout_path.read_bytes(),
            "xdmsctl jobs while queued": jobs_queued.stdout + jobs_queued.stderr,
            "xdmsctl jobs when done": jobs_done.stdout + jobs_done.stderr,
            "SIP to the early subscriber": b"".join(early.received),
            "SIP to the subscriber after the write": b"".join(late.received),
            "SIP to the subscriber after the IWF ran": b"".join(after.received),
            "LMDB, live content (mdb_copy -c)": (copy / "data.mdb").read_bytes(),
            "the Feature Handler document": expect(alice.get(doc_path(FH, ALICE)), 200).body,
        }
        # The places are not empty: debug lines, access lines, NOTIFYs, records.
        assert b" debug " in places["local stderr (debug)"], "log.level=debug wrote no debug line"
        assert b"PUT /xcap-root/" in places["local access log"]
        assert b"GET /xcap-root/" in places["remote access log"], "the IWF never called the 3rd party"
        assert places["SIP to the early subscriber"].count(b"NOTIFY sip:") >= 3
        assert b"imp-ok" in places["LMDB, live content (mdb_copy -c)"]
        leaks = [f"{name}: {'good password' if s == good else 'bad password' if s == bad else 'token'}"
                 for name, blob in places.items() for s in (good, bad, tok) if s.encode() in blob]
        assert not leaks, "credentials found in " + "; ".join(leaks)
    finally:
        for s in subscribers:
            s.close()
