# SPDX-License-Identifier: MIT
"""Jobs survive a crash: xdmsd is killed with SIGKILL while jobs are queued
and running, or between an import's PCC write and its <response>, restarted
on the same data directory, and every job then finishes exactly once: one
<response> write per request in the change feed (read from the store with
mdb_dump, not from log lines), and the jobs that were running when it died
ran again."""

import time

import pytest

from iwflib import Nginx, add_adapter, expect_response, fh_doc, jobs, nginx_available, request_xml, wait_response
from xdmslib import ALICE, FH, PCC, data, doc_path, expect

# A test-only pause in src/iwf/job.c between a job's last write and its <response>.
PAUSE_ENV = "XDMSD_TEST_PAUSE_BEFORE_RESPONSE_MS"
FH_SEL = f"{FH}/users/{ALICE}/index"
PCC_SEL = f"{PCC}/users/{ALICE}/index"


def response_writes(srv, rid):
    """The change-feed records of writes of request @rid's <response>."""
    return [c for c in srv.changes() if c["sel"] == FH_SEL and c["detail"]
            and c["detail"].startswith("put-element") and "response" in c["detail"]
            and f"%22{rid}%22" in c["detail"]]

pytestmark = pytest.mark.skipif(not nginx_available(), reason="nginx is not installed")

REQUESTS = 4


@pytest.fixture
def nginx(tmp_path):
    n = Nginx(tmp_path / "nginx")
    # About two seconds per profile: jobs are still running when xdmsd dies.
    n.extra = (f"location /slowish/ {{ alias {n.root}/profiles/; limit_rate 300; }}\n"
               # About twenty seconds: a call that a shutdown must not wait for.
               f"location /slowest/ {{ alias {n.root}/profiles/; limit_rate 40; }}")
    (n.root / "profiles" / "alice.example.xml").write_bytes(data("vendor-alice.xml"))
    n.start()
    yield n
    n.stop()


def test_kill9_with_jobs_queued_and_running(start_server, nginx):
    srv = start_server(name="local", sync=True, settings={"iwf.enabled": "true", "iwf.workers": "2",
                                                              "iwf.timeout": "30"})
    add_adapter(srv, "vcdir", "http", nginx.url("/slowish/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    alice = srv.client(ALICE)
    reqs = [request_xml("import-profile", f"imp-{i}", "vcdir", remote_user="alice.example")
            for i in range(1, REQUESTS + 1)]
    expect(alice.put_doc(FH, ALICE, fh_doc(*reqs)), 201)
    deadline = time.monotonic() + 10
    while True:
        states = [j["state"] for j in jobs(srv)]
        if states.count("running") == 2:
            break
        assert time.monotonic() < deadline, f"two jobs never ran at once: {states}"
        time.sleep(0.02)
    srv.kill9()
    before = jobs(srv)
    running = {j["request"] for j in before if j["state"] == "running"}
    assert len(running) == 2 and sum(j["state"] == "queued" for j in before) == 2, before

    srv.start()
    alice = srv.client(ALICE)
    for i in range(1, REQUESTS + 1):
        resp, _ = wait_response(alice, ALICE, f"imp-{i}", timeout=60)
        expect_response(resp, "success", 200)
    after = jobs(srv)
    assert sorted(j["request"] for j in after) == [f"imp-{i}" for i in range(1, REQUESTS + 1)], after
    assert all(j["state"] == "done" and j["code"] == 200 for j in after), after
    for j in after:
        want = 2 if j["request"] in running else 1
        assert j["attempts"] == want, f"job {j} ran {j['attempts']} times, expected {want}"
    for i in range(1, REQUESTS + 1):
        writes = response_writes(srv, f"imp-{i}")
        assert len(writes) == 1, f"imp-{i}: {len(writes)} <response> writes in the change feed: {srv.changes()}"


def test_kill9_between_the_pcc_write_and_the_response(start_server, nginx):
    """The server dies after the import stored the PCC and before the
    <response>: after the restart the job runs again, adds nothing to the
    PCC, and the response is written once."""
    srv = start_server(name="local", sync=True, env={PAUSE_ENV: "30000"},
                       settings={"iwf.enabled": "true", "iwf.workers": "1", "iwf.timeout": "30"})
    add_adapter(srv, "vcdir", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(request_xml("import-profile", "imp-1", "vcdir",
                                                       remote_user="alice.example"))), 201)
    deadline = time.monotonic() + 20
    while "pausing 30000 ms before its <response>" not in srv.log_tail(50):
        assert time.monotonic() < deadline, f"the job never reached its <response>:\n{srv.log_tail()}"
        time.sleep(0.02)
    pcc_writes = [c for c in srv.changes() if c["sel"] == PCC_SEL]
    assert len(pcc_writes) == 1, srv.changes()
    pcc = expect(alice.get(doc_path(PCC, ALICE)), 200)
    srv.kill9()
    assert response_writes(srv, "imp-1") == [], "the <response> was written before the kill"
    assert [(j["state"], j["attempts"]) for j in jobs(srv)] == [("running", 1)], jobs(srv)

    del srv.env[PAUSE_ENV]
    srv.start()
    alice = srv.client(ALICE)
    resp, _ = wait_response(alice, ALICE, "imp-1", timeout=60)
    expect_response(resp, "success", 200)
    writes = response_writes(srv, "imp-1")
    assert len(writes) == 1, f"{len(writes)} <response> writes in the change feed: {srv.changes()}"
    assert [(j["state"], j["attempts"], j["code"]) for j in jobs(srv)] == [("done", 2, 200)], jobs(srv)
    # The second run merged the same profile into the PCC: nothing new.
    again = expect(alice.get(doc_path(PCC, ALICE)), 200)
    assert again.body == pcc.body, (pcc.body, again.body)


def test_sigterm_cuts_a_slow_call_short_and_the_job_runs_after_restart(start_server, nginx):
    srv = start_server(name="local", sync=True, settings={"iwf.enabled": "true", "iwf.workers": "1",
                                                            "iwf.timeout": "60", "iwf.max_attempts": "1"})
    add_adapter(srv, "vcdir", "http", nginx.url("/slowest/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(request_xml("import-profile", "imp-1", "vcdir",
                                                       remote_user="alice.example"))), 201)
    deadline = time.monotonic() + 10
    while [j["state"] for j in jobs(srv)] != ["running"]:
        assert time.monotonic() < deadline, jobs(srv)
        time.sleep(0.02)
    t0 = time.monotonic()
    srv.stop()  # asserts exit status 0
    took = time.monotonic() - t0
    # The call would last about 20 s; a shutdown that cut it short takes well
    # under half of that even on a loaded machine.
    assert took < 8, f"the shutdown took {took:.1f}s: it waited for the 3rd party"
    # Back in the queue, and the interrupted run does not count against
    # iwf.max_attempts = 1.
    assert [(j["state"], j["attempts"]) for j in jobs(srv)] == [("queued", 0)], jobs(srv)
    # The 3rd party is quick now (adapters are read before every job).
    add_adapter(srv, "vcdir", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    srv.start()
    resp, _ = wait_response(srv.client(ALICE), ALICE, "imp-1", timeout=60)
    expect_response(resp, "success", 200)


def test_deleting_a_running_request_aborts_it(start_server, nginx):
    srv = start_server(name="local", settings={"iwf.enabled": "true", "iwf.workers": "1", "iwf.timeout": "30"})
    add_adapter(srv, "vcdir", "http", nginx.url("/slowish/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(request_xml("import-profile", "imp-1", "vcdir",
                                                       remote_user="alice.example"))), 201)
    deadline = time.monotonic() + 10
    while [j["state"] for j in jobs(srv)] != ["running"]:
        assert time.monotonic() < deadline, jobs(srv)
        time.sleep(0.02)
    expect(alice.put_doc(FH, ALICE, fh_doc()), 200)
    assert [j["state"] for j in jobs(srv)] == ["cancelled"]
    deadline = time.monotonic() + 20
    while "cancelled while it ran" not in srv.log_tail(200):
        assert time.monotonic() < deadline, srv.log_tail(200)
        time.sleep(0.05)
    # The profile arrived, but nothing was stored and no response written.
    expect(alice.get(doc_path(PCC, ALICE)), 404)
    assert b"<response" not in expect(alice.get(doc_path(FH, ALICE)), 200).body
    assert [j["state"] for j in jobs(srv)] == ["cancelled"]


def test_one_slot_per_adapter_serializes_its_calls(start_server, nginx):
    srv = start_server(name="local", settings={"iwf.enabled": "true", "iwf.workers": "2",
                                               "iwf.concurrency": "1", "iwf.timeout": "30"})
    add_adapter(srv, "vcdir", "http", nginx.url("/slowish/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    alice = srv.client(ALICE)
    reqs = [request_xml("import-profile", f"imp-{i}", "vcdir", remote_user="alice.example") for i in (1, 2)]
    expect(alice.put_doc(FH, ALICE, fh_doc(*reqs)), 201)
    for i in (1, 2):
        expect_response(wait_response(alice, ALICE, f"imp-{i}", timeout=60)[0], "success", 200)
    calls = sorted(c for c in nginx.calls() if c[3].startswith("/slowish/"))
    assert len(calls) == 2, calls
    assert calls[0][1] <= calls[1][0] + 0.01, f"two calls to one adapter overlapped with concurrency 1: {calls}"


def test_a_client_write_during_the_job_is_kept_and_the_response_written_once(start_server, nginx):
    """A job writes its <response> on the Feature Handler document as it
    last saw it: when the user changed the document meanwhile (another
    request added, this one unchanged), the job reads it again, keeps the
    user's change, and writes its response once."""
    srv = start_server(name="local", env={PAUSE_ENV: "1500"},
                       settings={"iwf.enabled": "true", "iwf.workers": "1", "iwf.timeout": "30"})
    add_adapter(srv, "vcdir", "http", nginx.url("/profiles/{remote-user}.xml"),
                "--import-xslt", "vendor-example-import.xsl", "--export-xslt", "vendor-example-export.xsl")
    alice = srv.client(ALICE)
    first = request_xml("import-profile", "imp-1", "vcdir", remote_user="alice.example",
                        username="alice.example", password="secret-1")
    expect(alice.put_doc(FH, ALICE, fh_doc(first)), 201)
    deadline = time.monotonic() + 20
    while "pausing 1500 ms before its <response>" not in srv.log_tail(50):
        assert time.monotonic() < deadline, f"the job never reached its <response>:\n{srv.log_tail()}"
        time.sleep(0.02)
    # The job removed the credentials; the user adds a request to the
    # document as it is now, leaving the running one as it was.
    now = expect(alice.get(doc_path(FH, ALICE)), 200).body
    assert b"secret-1" not in now and b"<response" not in now, now
    second = request_xml("import-profile", "imp-2", "vcdir", remote_user="alice.example")
    expect(alice.put_doc(FH, ALICE, now.replace(b"</cab-feature-handler>", second.encode()
                                                + b"</cab-feature-handler>")), 200)
    for rid in ("imp-1", "imp-2"):
        expect_response(wait_response(alice, ALICE, rid, timeout=30)[0], "success", 200)
        writes = response_writes(srv, rid)
        assert len(writes) == 1, f"{rid}: {len(writes)} <response> writes in the change feed: {srv.changes()}"
    body = expect(alice.get(doc_path(FH, ALICE)), 200).body
    assert body.count(b"<response") == 2 and b'id="imp-2"' in body, body
    assert sorted((j["request"], j["state"], j["code"]) for j in jobs(srv)) == [
        ("imp-1", "done", 200), ("imp-2", "done", 200)], jobs(srv)
