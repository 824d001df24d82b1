# SPDX-License-Identifier: MIT
"""The IWF as an operator sees it: /metrics (jobs by state, ended by kind and
code, retries, 3rd-party latency per adapter, build and start time) and
ended jobs pruned after iwf.job_retention."""

import time

import pytest

from iwflib import add_adapter, expect_response, fh_doc, free_port, jobs, pcc_url, request_xml, wait_response
from xdmslib import ALICE, BOB, FH, PASSWORDS, PCC, data, doc_path, expect, metric_sum, parse_metrics

FAST = {"iwf.enabled": "true", "iwf.retry_delay": "50", "iwf.max_attempts": "2", "iwf.timeout": "5"}


def scrape(srv):
    r = expect(srv.client(ALICE).get("/metrics"), 200)
    return parse_metrics(r.body.decode())


@pytest.fixture
def remote(start_server):
    srv = start_server(name="remote")
    expect(srv.client(ALICE).put_doc(PCC, ALICE, data("pcc-alice.xml")), 201)
    return srv


def imp(rid, adapter, user=ALICE):
    return request_xml("import-profile", rid, adapter, remote_user=user, username=user, password=PASSWORDS[user])


def test_metrics_count_jobs_calls_and_retries(start_server, remote):
    srv = start_server(name="local", settings=FAST)
    add_adapter(srv, "remote-cab", "xcap", pcc_url(remote))
    add_adapter(srv, "down", "xcap", f"http://127.0.0.1:{free_port()}/xcap-root/x/users/{{remote-user}}/index")
    before = scrape(srv)
    assert metric_sum(before, "xdms_build_info") == 1
    assert abs(metric_sum(before, "xdms_start_time_seconds") - time.time()) < 600
    assert metric_sum(before, "xdms_iwf_jobs", state="queued") == 0

    alice = srv.client(ALICE)
    expect(alice.put_doc(FH, ALICE, fh_doc(imp("ok-1", "remote-cab"), imp("down-1", "down"))), 201)
    expect_response(wait_response(alice, ALICE, "ok-1")[0], "success", 200)
    expect_response(wait_response(alice, ALICE, "down-1")[0], "failure", 503)

    m = scrape(srv)
    assert metric_sum(m, "xdms_iwf_jobs_ended_total", kind="import", code="200") == 1, m
    assert metric_sum(m, "xdms_iwf_jobs_ended_total", kind="import", code="503") == 1, m
    assert metric_sum(m, "xdms_iwf_jobs", state="queued") == 0
    assert metric_sum(m, "xdms_iwf_jobs", state="running") == 0
    # max_attempts=2: one retry of the job whose 3rd party is down.
    assert metric_sum(m, "xdms_iwf_retries_total") == 1, m
    assert metric_sum(m, "xdms_iwf_call_duration_seconds_count", adapter="remote-cab") == 1
    assert metric_sum(m, "xdms_iwf_call_duration_seconds_count", adapter="down") == 2
    assert metric_sum(m, "xdms_iwf_call_failures_total", adapter="down") == 2
    assert metric_sum(m, "xdms_iwf_call_failures_total", adapter="remote-cab") == 0
    inf = metric_sum(m, "xdms_iwf_call_duration_seconds_bucket", adapter="remote-cab", le="+Inf")
    assert inf == 1, m
    assert metric_sum(m, "xdms_iwf_jobs_running") == 0
    stats = dict(line.split() for line in srv.ctl("stats", check=0).stdout.decode().splitlines())
    assert (stats["jobs_done"], stats["jobs_failed"], stats["jobs_queued"]) == ("1", "1", "0"), stats


def test_ended_jobs_are_pruned_after_the_retention(start_server, remote):
    srv = start_server(name="local", settings=dict(FAST, **{"iwf.job_retention": "1"}))
    add_adapter(srv, "remote-cab", "xcap", pcc_url(remote))
    alice = srv.client(ALICE)
    body = fh_doc(imp("ok-1", "remote-cab"))
    expect(alice.put_doc(FH, ALICE, body), 201)
    wait_response(alice, ALICE, "ok-1")
    deadline = time.monotonic() + 15
    while jobs(srv) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jobs(srv) == [], "the ended job was not pruned within 15 s of a 1 s retention"
    # The log line follows the prune's commit, which xdmsctl may see first.
    while "pruned 1 job(s)" not in srv.log_tail() and time.monotonic() < deadline + 5:
        time.sleep(0.05)
    assert "pruned 1 job(s)" in srv.log_tail(), srv.log_tail()
    # The request can still be run again after its job record went.
    sel = doc_path(FH, ALICE) + "/~~/cab-feature-handler/import-profile%5B@id=%22ok-1%22%5D/@created"
    expect(alice.put(sel, b"2026-01-02T00:00:00Z", "application/xcap-att+xml"), 201)
    deadline = time.monotonic() + 15
    while not any(j["state"] == "done" for j in jobs(srv)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [j["state"] for j in jobs(srv)] in (["done"], []), jobs(srv)
    assert "pruned" in srv.log_tail() and srv.log_tail().count("iwf job") >= 2, srv.log_tail()
