# SPDX-License-Identifier: MIT
"""Hostile input: XXE, entity expansion, deep nesting, broken URIs and
request lines. The server must refuse, stay up, and store nothing."""

import secrets
import socket
import threading
import time

import pytest

from xdmslib import (ALICE, BOB, MIME, RL, RL_NS, doc_path, expect, expect_xcap_error, raw_exchange_ex,
                     rl_doc)

PATH = doc_path(RL, ALICE)


def assert_alive_and_empty(server, alice, path=PATH):
    assert server.alive(), f"xdmsd is not alive any more:\n{server.log_tail(30)}"
    alice.close()
    r = alice.get(path)
    assert r.status == 404, f"a refused document was stored: {r.describe()}"


class Listener:
    """A loopback TCP listener that records whether anyone connected: the
    target of external entities, to see whether the server fetches them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            try:
                c.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nNETWORK-SECRET")
            finally:
                c.close()

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


@pytest.fixture
def listener():
    lst = Listener()
    yield lst
    lst.close()


def xxe_bodies(secret_uri, http_uri):
    rl = RL_NS
    return {
        "general-entity-file": (
            '<?xml version="1.0"?>\n'
            f'<!DOCTYPE resource-lists [<!ENTITY e SYSTEM "{secret_uri}">]>\n'
            f'<resource-lists xmlns="{rl}"><list name="x"><entry uri="sip:x@example.com">'
            '<display-name>&e;</display-name></entry></list></resource-lists>\n'),
        "etc-passwd": (
            '<?xml version="1.0"?>\n'
            '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
            f'<resource-lists xmlns="{rl}"><list name="&e;"/></resource-lists>\n'),
        "general-entity-http": (
            '<?xml version="1.0"?>\n'
            f'<!DOCTYPE resource-lists [<!ENTITY e SYSTEM "{http_uri}">]>\n'
            f'<resource-lists xmlns="{rl}"><list name="&e;"/></resource-lists>\n'),
        "parameter-entity": (
            '<?xml version="1.0"?>\n'
            f'<!DOCTYPE resource-lists [<!ENTITY % p SYSTEM "{http_uri}"> %p;]>\n'
            f'<resource-lists xmlns="{rl}"/>\n'),
        "external-dtd": (
            '<?xml version="1.0"?>\n'
            f'<!DOCTYPE resource-lists SYSTEM "{http_uri}">\n'
            f'<resource-lists xmlns="{rl}"/>\n'),
        "xinclude": (
            '<?xml version="1.0"?>\n'
            f'<resource-lists xmlns="{rl}" xmlns:xi="http://www.w3.org/2001/XInclude">'
            f'<list name="x"><xi:include href="{secret_uri}" parse="text"/></list></resource-lists>\n'),
    }


@pytest.mark.parametrize("case", ["general-entity-file", "etc-passwd", "general-entity-http",
                                  "parameter-entity", "external-dtd"])
def test_xxe_is_refused(server, alice, tmp_path, listener, case):
    marker = "XXE-SECRET-" + secrets.token_hex(8)
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    body = xxe_bodies(secret.as_uri(), f"http://127.0.0.1:{listener.port}/x.dtd")[case].encode()
    r = alice.put(PATH, body, MIME[RL])
    expect_xcap_error(r, None)
    assert marker.encode() not in r.body, f"the error leaked the file's content: {r.describe()}"
    assert b"root:" not in r.body and b"NETWORK-SECRET" not in r.body, f"leak: {r.describe()}"
    time.sleep(0.3)
    assert listener.connections == 0, "the server fetched an external entity over the network"
    assert_alive_and_empty(server, alice)


def test_xinclude_is_not_processed(server, alice, tmp_path):
    """An xi:include in an extension point: whether it is accepted (the
    schema's ##other wildcard is lax) or refused, it must not be expanded."""
    marker = "XI-SECRET-" + secrets.token_hex(8)
    secret = tmp_path / "secret.txt"
    secret.write_text(marker)
    body = xxe_bodies(secret.as_uri(), "http://127.0.0.1:9/")["xinclude"].encode()
    r = alice.put(PATH, body, MIME[RL])
    assert r.status in (201, 409), f"expected 201 or 409, got {r.describe()}"
    assert marker.encode() not in r.body
    if r.status == 201:
        g = expect(alice.get(PATH), 200)
        assert g.body == body, f"stored document differs from the PUT (XInclude expanded?): {g.describe()}"


def billion_laughs():
    lines = ['<?xml version="1.0"?>', "<!DOCTYPE lolz [", ' <!ENTITY lol "lol">']
    prev = "lol"
    for i in range(1, 10):
        cur = f"lol{i}"
        lines.append(f' <!ENTITY {cur} "' + f"&{prev};" * 10 + '">')
        prev = cur
    lines.append("]>")
    lines.append(f'<resource-lists xmlns="{RL_NS}"><list name="&{prev};"/></resource-lists>')
    return "\n".join(lines).encode()


def quadratic_blowup():
    big = "A" * 100_000
    refs = "&a;" * 2_000
    return (f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "{big}">]>\n'
            f'<resource-lists xmlns="{RL_NS}"><list name="{refs}"/></resource-lists>\n').encode()


@pytest.mark.parametrize("make", [billion_laughs, quadratic_blowup], ids=["billion-laughs", "quadratic"])
def test_entity_expansion_is_refused_quickly(server, alice, make):
    body = make()
    expect(alice.get(PATH), 404)  # authenticate first so that the timing is the PUT's
    t0 = time.monotonic()
    r = alice.put(PATH, body, MIME[RL])
    elapsed = time.monotonic() - t0
    expect_xcap_error(r, None)
    assert elapsed < 2.0, f"entity expansion took {elapsed:.2f}s, expected < 2s"
    assert b"lollollol" not in r.body and b"AAAAAAAA" not in r.body
    assert_alive_and_empty(server, alice)


def test_deep_nesting_is_refused(server, alice):
    depth = 100_000
    body = (f'<resource-lists xmlns="{RL_NS}">' + "<a>" * depth + "</a>" * depth
            + "</resource-lists>").encode()
    t0 = time.monotonic()
    r = alice.put(PATH, body, MIME[RL])
    elapsed = time.monotonic() - t0
    expect_xcap_error(r, None)
    assert elapsed < 5.0, f"deep nesting took {elapsed:.2f}s"
    assert_alive_and_empty(server, alice)


def test_deep_nesting_unclosed_is_refused(server, alice):
    body = (f'<resource-lists xmlns="{RL_NS}">' + "<list>" * 100_000).encode()
    expect_xcap_error(alice.put(PATH, body, MIME[RL]), None)
    assert_alive_and_empty(server, alice)


def test_nul_byte_is_not_well_formed(server, alice):
    body = f'<resource-lists xmlns="{RL_NS}"><list name="a\x00b"/></resource-lists>'.encode()
    expect_xcap_error(alice.put(PATH, body, MIME[RL]), "not-well-formed")
    assert_alive_and_empty(server, alice)


# ---- URIs


@pytest.mark.parametrize("target", [
    "/xcap-root/resource-lists/users/sip:alice@example.com/in%zzdex",
    "/xcap-root/resource-lists/users/sip:alice@example.com/index%",
    "/xcap-root/resource-lists/users/sip:alice@example.com/index%4",
    "/xcap-root/resource-lists/users/sip%zzalice@example.com/index",
    "/xcap-root/resource-lists/users/sip:alice@example.com/%",
    "/xcap-root/resource%/users/sip:alice@example.com/index",
    "/xcap-root/resource-lists/users/sip:alice@example.com/in%00dex",
], ids=["zz", "trailing-percent", "one-hex", "zz-in-xui", "lone-percent", "percent-in-auid", "nul"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_malformed_percent_encoding(server, alice, target, method):
    body = rl_doc() if method == "PUT" else None
    ct = MIME[RL] if method == "PUT" else None
    r = alice.request(method, target, body=body, content_type=ct)
    # docs/architecture.md, the write path: 400 for a bad percent-encoding
    # (a NUL is refused too: no XCAP name may hold one).
    assert r.status == 400, f"{method} {target}: expected 400, got {r.describe()}"
    assert r.body == b"malformed percent-encoding in the request URI\n", r.describe()
    assert_alive_and_empty(server, alice)


@pytest.mark.parametrize("target", [
    "/xcap-root/resource-lists/users/sip:alice@example.com/../sip:bob@example.com/index",
    "/xcap-root/resource-lists/users/sip:alice@example.com/%2e%2e/sip:bob@example.com/index",
    "/xcap-root/resource-lists/users/sip:alice@example.com/..%2fsip:bob@example.com%2findex",
    "/xcap-root/resource-lists/users/sip:alice@example.com/./../../users/sip:bob@example.com/index",
    "/xcap-root/resource-lists/users/sip:alice@example.com%2f..%2fsip:bob@example.com/index",
], ids=["dotdot", "encoded-dotdot", "encoded-slash", "dot-dotdot", "slash-in-xui"])
def test_path_traversal_does_not_reach_other_users(server, alice, bob, target):
    secret = rl_doc("bob-private-" + secrets.token_hex(4))
    expect(bob.put(doc_path(RL, BOB), secret, MIME[RL]), 201)
    r = alice.get(target)
    assert r.status in (400, 403, 404), f"GET {target}: expected 400, 403 or 404, got {r.describe()}"
    assert secret not in r.body
    # A server that keeps the segments literally stores a document inside
    # alice's own tree (201); that is harmless. Reaching bob's is not.
    r = alice.put(target, rl_doc("overwritten by alice"), MIME[RL])
    assert r.status in (201, 400, 403, 404), f"PUT {target}: expected 201, 400, 403 or 404, got {r.describe()}"
    r = expect(bob.get(doc_path(RL, BOB)), 200)
    assert r.body == secret, "bob's document was changed through a traversal path"


# ---- request lines


def check_garbage_answer(server, alice, raw, allowed):
    """The server answers with a status in @allowed, promptly (a silent close
    is no answer), and keeps serving."""
    got, how = raw_exchange_ex(server.port, raw, timeout=5.0)
    assert got, f"{raw[:60]!r}: no answer ({how}); expected one of {sorted(allowed)}"
    assert got.startswith(b"HTTP/1."), f"answer to {raw[:60]!r} is not HTTP: {got[:200]!r}"
    status = int(got.split(b" ", 2)[1])
    assert status in allowed, f"{raw[:60]!r}: expected one of {sorted(allowed)}, got {got[:300]!r}"
    assert server.alive(), f"xdmsd died after {raw[:60]!r}:\n{server.log_tail(30)}"
    alice.close()
    body = rl_doc("after garbage")
    expect(alice.put(PATH, body, MIME[RL]), 201)
    assert expect(alice.get(PATH), 200).body == body


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"\x01\x02 /xcap-root/ HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G(E)T /xcap-root/ HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["garbage", "no-target", "ctl-method", "non-token-method"])
def test_garbage_request_line_is_400(server, alice, raw):
    check_garbage_answer(server, alice, raw, {400})


@pytest.mark.parametrize("raw", [
    b"\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n",
    b"\x00 / HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["binary", "nul-method"])
def test_nul_request_line_gets_400_at_once(start_server, raw):
    """A request line that starts with NUL (or is otherwise garbage) is
    answered 400 and closed at once by the head gate (RFC 9112 §3), not left
    to the idle timeout, and everyone else keeps being served."""
    srv = start_server(settings={"http.timeout": "2"})
    alice = srv.client(ALICE)
    t0 = time.monotonic()
    got, how = raw_exchange_ex(srv.port, raw, timeout=8.0)
    waited = time.monotonic() - t0
    assert got and got.startswith(b"HTTP/1.1 400"), (
        f"{raw!r}: expected 400 at once, got {got[:200]!r} ({how}) after {waited:.1f} s")
    assert waited < 1.5, f"{raw!r}: the 400 took {waited:.1f} s; it must not wait for http.timeout"
    assert srv.alive(), f"xdmsd died after {raw!r}:\n{srv.log_tail(30)}"
    body = rl_doc("after nul")
    expect(alice.put(PATH, body, MIME[RL]), 201)
    assert expect(alice.get(PATH), 200).body == body


@pytest.mark.parametrize("raw,status", [
    (b"GET /xcap-root/ HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400),
    (b"GET /xcap-root/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /xcap-root/ HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n", 400),
    (b"GET /xcap-root/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
    (b"PUT /xcap-root/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    (b"PUT /xcap-root/ HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413),
    # The head is fine: authentication answers before the bad chunk is read.
    (b"PUT /xcap-root/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 401),
    (b"GET /xcap-root/ HTTP/9.9\r\nHost: x\r\n\r\n", 505),
], ids=["extra-token", "non-ascii-target", "broken-header", "huge-header", "negative-length",
        "huge-length", "bad-chunk", "http-9.9"])
def test_malformed_request_then_normal_request_works(server, alice, raw, status):
    check_garbage_answer(server, alice, raw, {status})


def test_half_sent_request_does_not_block_others(server, alice):
    """A client that sends half a request and waits must not stall others."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        s.sendall(b"PUT " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<res")
        t0 = time.monotonic()
        expect(alice.put(PATH, rl_doc(), MIME[RL]), 201)
        assert time.monotonic() - t0 < 5.0
    finally:
        s.close()
    assert server.alive()
