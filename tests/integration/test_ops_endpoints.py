# SPDX-License-Identifier: MIT
"""/healthz, /metrics, xcap-caps (RFC 4825 §12) and the access log."""

import re
import subprocess
import time

import pytest
from lxml import etree

from xdmslib import (ALICE, BOB, CAROL, MIME, RL, XCAP_CAPS_NS, Client, doc_path, expect,
                     metric_sum, parse_metrics, rl_doc, schema)

CAPS_PATH = "/xcap-root/xcap-caps/global/index"

EXPECTED_AUIDS = {
    "xcap-caps": "urn:ietf:params:xml:ns:xcap-caps",
    "resource-lists": "urn:ietf:params:xml:ns:resource-lists",
    "org.openmobilealliance.cab-pcc": "urn:oma:xml:cab:pcc",
    "org.openmobilealliance.cab-feature-handler": "urn:oma:xml:cab:feature-handler",
}


def curl(*args, timeout=30):
    return subprocess.run(["curl", "-sS", "--noproxy", "*", *args], capture_output=True, timeout=timeout)


# ---- healthz


def test_healthz_without_auth(server):
    r = Client(server).get("/healthz")
    assert r.status == 200, f"/healthz: expected 200 without credentials, got {r.describe()}"
    res = curl("-o", "/dev/null", "-w", "%{http_code}", server.url("/healthz"))
    assert res.stdout == b"200", f"curl /healthz: {res.stdout!r} {res.stderr!r}"


# ---- metrics


def get_metrics(server):
    r = Client(server).get("/metrics")
    assert r.status == 200, f"/metrics: expected 200 without credentials, got {r.describe()}"
    ct = r.content_type or ""
    assert ct.split(";")[0].strip() == "text/plain", f"/metrics Content-Type: expected text/plain, got {ct!r}"
    return parse_metrics(r.body.decode("utf-8"))


def wait_metric(server, name, expected, timeout=3.0, **labels):
    deadline = time.monotonic() + timeout
    while True:
        got = metric_sum(get_metrics(server), name, **labels) or 0
        if got == expected or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def settled_metrics(server, ready, timeout=3.0):
    """The metrics once ready(samples) holds: the server counts a request
    when it completes, which may be just after the client saw the answer."""
    deadline = time.monotonic() + timeout
    while True:
        samples = get_metrics(server)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_metrics_format_and_names(server, alice):
    expect(alice.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)
    expect(alice.get(doc_path(RL, ALICE)), 200)
    samples = settled_metrics(server, lambda s: (
        (metric_sum(s, "xdms_http_requests_total", method="GET", status="200") or 0) >= 1
        and (metric_sum(s, "xdms_http_requests_total", method="PUT", status="201") or 0) >= 1))
    names = {n for n, _, _ in samples}
    assert names, "no samples in /metrics"
    assert any(n.startswith("xdms_") for n in names), f"no xdms_ metrics: {sorted(names)}"
    v = metric_sum(samples, "xdms_http_requests_total", method="GET", status="200")
    assert v is not None and v >= 1, \
        f'expected xdms_http_requests_total{{method="GET",status="200"}} >= 1, got {v}; names: {sorted(names)}'
    v = metric_sum(samples, "xdms_http_requests_total", method="PUT", status="201")
    assert v is not None and v >= 1, f'expected xdms_http_requests_total{{method="PUT",status="201"}} >= 1, got {v}'
    v = metric_sum(samples, "xdms_http_requests_total", status="401")
    assert v is not None and v >= 1, f"the Digest 401 must be counted too, got {v}"
    for hist in ("xdms_http_request_duration_seconds", "xdms_store_write_batch_size"):
        buckets = [(ls, val) for n, ls, val in samples if n == hist + "_bucket"]
        assert buckets, f"no {hist}_bucket samples; names: {sorted(names)}"
        assert all("le" in ls for ls, _ in buckets), f"{hist}_bucket without le label"
        inf = [val for ls, val in buckets if ls["le"] == "+Inf"]
        assert inf and sum(inf) >= 1, f"{hist}_bucket{{le=\"+Inf\"}} must count at least one observation"
        count = metric_sum(samples, hist + "_count")
        assert count is not None and count == sum(inf), \
            f"{hist}_count ({count}) must equal the +Inf bucket ({sum(inf)})"
        assert metric_sum(samples, hist + "_sum") is not None, f"no {hist}_sum"
    assert "xdms_documents" in names, f"no xdms_documents; names: {sorted(names)}"


def test_metrics_text_has_type_lines(server):
    text = Client(server).get("/metrics").body.decode()
    for names, kind in ((("xdms_http_requests_total", "xdms_http_requests"), "counter"),
                        (("xdms_http_request_duration_seconds",), "histogram"),
                        (("xdms_store_write_batch_size",), "histogram")):
        assert any(re.search(rf"^# TYPE {re.escape(n)} {kind}[ \t]*$", text, re.M) for n in names), \
            f"missing '# TYPE {names[0]} {kind}' in /metrics"


def test_metrics_counter_increments(server, alice):
    expect(alice.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)
    name = "xdms_http_requests_total"
    before = metric_sum(get_metrics(server), name, method="GET", status="200") or 0
    scrapes = 1  # GET /metrics answers 200 and may count itself, once it completes
    for _ in range(5):
        expect(alice.get(doc_path(RL, ALICE)), 200)
    deadline = time.monotonic() + 3.0
    while True:
        after = metric_sum(get_metrics(server), name, method="GET", status="200") or 0
        if after >= before + 5 or time.monotonic() > deadline:
            break
        scrapes += 1
        time.sleep(0.05)
    assert before + 5 <= after <= before + 5 + scrapes, \
        f"after 5 GETs (200) and {scrapes} scrapes the counter went from {before} to {after}"


def test_documents_gauge(server, alice):
    assert wait_metric(server, "xdms_documents", 0) == 0, "a fresh server must report 0 documents"
    expect(alice.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)
    expect(alice.put(doc_path(RL, ALICE, "two"), rl_doc(), MIME[RL]), 201)
    expect(alice.put(doc_path(RL, ALICE, "two"), rl_doc("again"), MIME[RL]), 200)
    got = wait_metric(server, "xdms_documents", 2)
    assert got == 2, f"xdms_documents after two creates and one replace: expected 2, got {got}"
    expect(alice.delete(doc_path(RL, ALICE)), 200)
    got = wait_metric(server, "xdms_documents", 1)
    assert got == 1, f"xdms_documents after a delete: expected 1, got {got}"


def test_metrics_via_curl(server):
    res = curl("-o", "-", "-w", "\n%{http_code}", server.url("/metrics"))
    body, _, code = res.stdout.rpartition(b"\n")
    assert code == b"200", f"curl /metrics: {code!r} {res.stderr!r}"
    assert b"xdms_" in body


# ---- xcap-caps


def test_xcap_caps(server):
    c = server.client(ALICE)
    r = expect(c.get(CAPS_PATH), 200)
    assert r.content_type == MIME["xcap-caps"], \
        f"expected Content-Type application/xcap-caps+xml, got {r.content_type!r}"
    assert r.etag is not None, "xcap-caps GET without ETag"
    root = etree.fromstring(r.body)
    s = schema("xcap-caps.xsd")
    assert s.validate(etree.ElementTree(root)), f"xcap-caps does not validate: {s.error_log}\n{r.body!r}"
    ns = {"c": XCAP_CAPS_NS}
    auids = [e.text.strip() for e in root.findall("c:auids/c:auid", ns)]
    namespaces = [e.text.strip() for e in root.findall("c:namespaces/c:namespace", ns)]
    missing = set(EXPECTED_AUIDS) - set(auids)
    assert not missing, f"xcap-caps lacks AUIDs {sorted(missing)}; lists {auids}"
    missing = set(EXPECTED_AUIDS.values()) - set(namespaces)
    assert not missing, f"xcap-caps lacks namespaces {sorted(missing)}; lists {namespaces}"
    assert len(auids) == len(set(auids)), f"duplicate AUIDs: {auids}"


@pytest.mark.parametrize("who", [ALICE, BOB, CAROL])
def test_xcap_caps_readable_by_every_user(server, who):
    r = expect(server.client(who).get(CAPS_PATH), 200)
    assert r.content_type == MIME["xcap-caps"]


def test_xcap_caps_needs_auth(server):
    r = Client(server).get(CAPS_PATH)
    assert r.status == 401, f"xcap-caps without credentials: expected 401, got {r.describe()}"


def test_xcap_caps_conditional_get(server):
    c = server.client(ALICE)
    r = expect(c.get(CAPS_PATH), 200)
    r2 = expect(c.get(CAPS_PATH, headers={"If-None-Match": r.etag}), 304)
    assert r2.body == b""


def test_xcap_caps_other_documents_404(server):
    c = server.client(ALICE)
    expect(c.get("/xcap-root/xcap-caps/global/other"), 404)
    expect(c.get(f"/xcap-root/xcap-caps/users/{ALICE}/index"), 404)


# ---- access log


def access_lines(server):
    return [ln for ln in server.stdout_text().splitlines() if "/xcap-root/" in ln]


def test_access_log_one_line_per_request(start_server):
    srv = start_server(settings={"log.access": "true"})
    a = srv.client(ALICE)
    expect(a.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)  # 401 + 201
    expect(a.get(doc_path(RL, ALICE)), 200)
    expect(a.get(doc_path(RL, ALICE, "missing")), 404)
    expect(a.delete(doc_path(RL, ALICE)), 200)
    b = srv.client(BOB)
    expect(b.get(doc_path(RL, ALICE)), 403)  # 401 + 403
    expected = [(m, p, st, ALICE) for m, p, st in a.sent] + [(m, p, st, BOB) for m, p, st in b.sent]
    srv.stop()  # flushes whatever is buffered
    lines = access_lines(srv)
    assert len(lines) == len(expected), (
        f"expected {len(expected)} access-log lines for {expected}, got {len(lines)}:\n" + "\n".join(lines))
    # Lines are written when requests complete, so the order across
    # connections is free: match each request to a line of its own.
    unmatched = list(lines)
    for method, path, status, who in expected:
        def fits(line):
            words = line.split()
            return (method in words and path in words and str(status) in words
                    and (status == 401 or who in words))
        hit = next((ln for ln in unmatched if fits(ln)), None)
        assert hit is not None, (
            f"no access-log line with {method}, {path}, {status}"
            + ("" if status == 401 else f" and identity {who}") + ":\n" + "\n".join(unmatched))
        unmatched.remove(hit)


def test_access_log_off(start_server):
    srv = start_server(settings={"log.access": "false"})
    a = srv.client(ALICE)
    expect(a.put(doc_path(RL, ALICE), rl_doc(), MIME[RL]), 201)
    srv.stop()
    assert access_lines(srv) == [], f"log.access=false still logged: {srv.stdout_text()!r}"
