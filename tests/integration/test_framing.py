# SPDX-License-Identifier: MIT
"""Request framing (RFC 9112 §6): heads that a proxy in front of xdmsd and
xdmsd itself could frame differently are refused with 400 (or 501 for an
unknown transfer coding) and a closed connection, before authentication or
any handler runs, so nothing hidden in a body is ever run as a request.

Every case is sent as raw bytes from the trusted peer with an asserted
identity (the deployment behind an Aggregation Proxy), followed by a second
request for another user's tree: that second request must never run.
"""

import time

import pytest

from xdmslib import (ALICE, BOB, MIME, RL, TRUSTED_PEER, raw_exchange_ex, doc_path, expect, metric_sum, parse_metrics,
                     rl_doc)

ALICE_DOC = doc_path(RL, ALICE)
BOB_DOC = doc_path(RL, BOB)
NUL_DOC = doc_path(RL, ALICE, "n")


def smuggled():
    """A complete PUT into bob's tree, asserting bob's identity."""
    body = rl_doc("smuggled")
    return (f"PUT {BOB_DOC} HTTP/1.1\r\nHost: x\r\nX-3GPP-Asserted-Identity: <{BOB}>\r\n"
            f"Content-Type: {MIME[RL]}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def head(extra, target=ALICE_DOC, version="HTTP/1.1"):
    return (f"PUT {target} {version}\r\nHost: x\r\nX-3GPP-Asserted-Identity: <{ALICE}>\r\n"
            f"Content-Type: {MIME[RL]}\r\n").encode() + extra


def exchange(port, data, timeout=5.0):
    """Sends @data from the trusted peer; reads until close or @timeout.
    Returns (bytes, how, seconds)."""
    t0 = time.monotonic()
    out, how = raw_exchange_ex(port, data, timeout=timeout, source=TRUSTED_PEER)
    return out, how, time.monotonic() - t0


def responses(raw):
    """The status codes of the HTTP responses in @raw, in order."""
    return [int(line.split(b" ", 2)[1]) for line in raw.split(b"\r\n") if line.startswith(b"HTTP/1.")]


def assert_refused(server, raw, statuses=(400,)):
    got, how, took = exchange(server.port, raw)
    codes = responses(got)
    assert codes and codes[0] in statuses, \
        f"{raw[:160]!r}: expected {statuses} first, got {got[:400]!r} ({how})"
    assert len(codes) == 1, f"{raw[:160]!r}: expected one answer, got {codes}: {got[:800]!r}"
    assert b"\r\nConnection: close\r\n" in got, f"{raw[:160]!r}: the refusal does not close: {got[:400]!r}"
    assert how in ("closed", "reset"), \
        f"{raw[:160]!r}: the connection was still open {took:.1f} s after the refusal ({got[:200]!r})"
    return codes[0]


def assert_nothing_stored(server):
    trusted = server.client(source_address=TRUSTED_PEER, headers={"X-3GPP-Asserted-Identity": f"<{BOB}>"})
    r = trusted.get(BOB_DOC)
    assert r.status == 404, f"a request hidden in a body ran as bob: {r.describe()}"
    trusted = server.client(source_address=TRUSTED_PEER, headers={"X-3GPP-Asserted-Identity": f"<{ALICE}>"})
    r = trusted.get(ALICE_DOC)
    assert r.status == 404, f"a refused request stored a document: {r.describe()}"


S = smuggled()
CASES = {
    # RFC 9112 §6.1: chunked wins over Content-Length; a proxy that used the
    # Content-Length would pass the rest as the body of alice's PUT.
    "cl-and-te": head(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") + S,
    "te-and-cl": head(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n") + S,
    # RFC 9112 §6.3: differing Content-Length values.
    "two-content-lengths": head(b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(S)) + S,
    # RFC 9112 §5.1: whitespace between the field name and the colon.
    "te-space-colon": head(b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n") + S,
    "cl-space-colon": head(b"Content-Length : %d\r\n\r\n" % len(S)) + S,
    # RFC 9112 §5.2: obs-fold of a framing field.
    "te-obs-fold": head(b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n") + S,
    "cl-obs-fold": head(b"Content-Length:\r\n %d\r\n\r\n" % len(S)) + S,
    "other-obs-fold": head(b"X-Note: a\r\n\tb\r\nContent-Length: 0\r\n\r\n") + S,
    # RFC 9110 §5.5: NUL in field values, early and as the last field.
    "nul-in-value": head(b"X-Note: a\x00b\r\nContent-Length: 0\r\n\r\n") + S,
    "nul-in-last-value": head(b"Content-Length: 0\r\nX-Note: a\x00b\r\n\r\n") + S,
    "cr-in-value": head(b"X-Note: a\rb\r\nContent-Length: 0\r\n\r\n") + S,
    "transfer-encoding-in-http10": head(b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", version="HTTP/1.0") + S,
    "chunked-twice": head(b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n0\r\n\r\n") + S,
    "chunked-not-last": head(b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n") + S,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_ambiguous_framing_is_400_and_closes(server, name):
    assert_refused(server, CASES[name])
    assert_nothing_stored(server)
    assert server.alive()


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"identity", b"x-unknown", b"deflate"])
def test_unsupported_transfer_coding_is_answered_at_once(server, coding):
    """Not silence until the idle timeout: 501 (RFC 9112 §6.1) and close."""
    raw = head(b"Transfer-Encoding: " + coding + b"\r\n\r\n0\r\n\r\n") + S
    status = assert_refused(server, raw, statuses=(501, 400))
    assert status == 501, f"{coding!r}: expected 501 Not Implemented, got {status}"
    assert_nothing_stored(server)


def test_nul_in_target_does_not_cut_the_path(server):
    """PUT …/n\\0zz once stored the document "n"; GET …/index\\0/../x once
    served "index". Both are 400 now."""
    body = rl_doc("nul")
    raw = head(b"Content-Length: %d\r\n\r\n" % len(body), target=NUL_DOC + "\x00zz") + body
    assert_refused(server, raw)
    trusted = server.client(source_address=TRUSTED_PEER, headers={"X-3GPP-Asserted-Identity": f"<{ALICE}>"})
    expect(trusted.put(ALICE_DOC, rl_doc("alice"), MIME[RL]), 201)
    r = trusted.get(NUL_DOC)
    assert r.status == 404, f"PUT {NUL_DOC}\\0zz stored {NUL_DOC}: {r.describe()}"
    raw = (f"GET {ALICE_DOC}\x00/../x HTTP/1.1\r\nHost: x\r\n"
           f"X-3GPP-Asserted-Identity: <{ALICE}>\r\n\r\n").encode()
    assert_refused(server, raw)


def test_a_refusal_runs_before_authentication(server):
    """Without any credentials the answer is still 400, not 401: framing is
    judged before anyone is asked who they are."""
    raw = (f"PUT {ALICE_DOC} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode()
    got, how, _ = exchange(server.port, raw)
    assert responses(got) == [400], f"expected a lone 400 before authentication, got {got[:300]!r}"


def test_refusals_are_counted_and_logged(server):
    assert_refused(server, CASES["cl-and-te"])
    text = server.client().get("/metrics").body.decode()
    n = metric_sum(parse_metrics(text), "xdms_http_requests_total", status="400")
    assert n and n >= 1, f"the 400 was not counted in /metrics:\n{text[:2000]}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "both Content-Length and Transfer-Encoding" in server.stdout_text():
            break
        time.sleep(0.05)
    assert "both Content-Length and Transfer-Encoding" in server.stdout_text(), \
        f"no access-log line names the refusal:\n{server.stdout_text()[-2000:]}"


def test_clean_requests_keep_their_connection(server):
    """The checks refuse nothing legitimate: a chunked PUT, a PUT with a
    Content-Length, and a GET on one keep-alive connection all succeed."""
    body = rl_doc("chunked")
    chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    raw = (head(b"Transfer-Encoding: chunked\r\n\r\n") + chunked
           + head(b"Content-Length: %d\r\n\r\n" % len(body)) + body
           + (f"GET {ALICE_DOC} HTTP/1.1\r\nHost: x\r\nX-3GPP-Asserted-Identity: <{ALICE}>\r\n"
              "Connection: close\r\n\r\n").encode())
    got, how, _ = exchange(server.port, raw)
    assert responses(got) == [201, 200, 200], f"expected 201, 200, 200, got {got[:1500]!r}"
    assert got.endswith(body), f"the GET did not return the PUT's bytes: {got[-400:]!r}"


# ---- garbage request lines (RFC 9112 §3): 400 and close, not silence

GARBAGE = {
    "no-spaces": b"GARBAGE\r\n\r\n",
    "nul-first": b"\x00 / HTTP/1.1\r\nHost: x\r\n\r\n",
    "binary": b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
    "bare-cr-first": b"\rGARBAGE\r\n\r\n",
    "cr-then-target": b"\r / HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul-in-target": b"GET /x\x00y HTTP/1.1\r\nHost: x\r\n\r\n",
    "not-http": b"GET / SIP/2.0\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_garbage_request_line_gets_400_and_is_counted(server, name):
    def refused():
        text = server.client().get("/metrics").body.decode()
        return metric_sum(parse_metrics(text), "xdms_http_requests_total", status="400") or 0

    before = refused()
    got, how, took = exchange(server.port, GARBAGE[name])
    assert got.startswith(b"HTTP/1.1 400 "), f"{GARBAGE[name]!r}: expected 400, got {got[:200]!r} ({how})"
    assert b"\r\nConnection: close\r\n" in got, got
    assert how in ("closed", "reset") and took < 4, f"{GARBAGE[name]!r}: open {took:.1f} s after the 400"
    assert refused() == before + 1, "the refusal was not counted in xdms_http_requests_total{status=\"400\"}"
    deadline = time.monotonic() + 10
    while " 400 " not in server.stdout_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "malformed request line" in server.stdout_text(), \
        f"no access-log line for the refusal:\n{server.stdout_text()[-1000:]}"


def test_other_http_major_version_is_505(server):
    got, how, _ = exchange(server.port, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 505 "), f"expected 505, got {got[:200]!r} ({how})"
