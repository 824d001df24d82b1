# SPDX-License-Identifier: MIT
"""Authentication and authorization (SPEC §3.2, §3.5): Digest (RFC 7616),
Basic, asserted identities from trusted peers, owners, admins, servers."""

import base64
import http.client
import subprocess
import time

import pytest

from xdmslib import (ADMIN, ALICE, BOB, CAROL, IWF, MIME, PASSWORDS, PCC, RL, TRUSTED_PEER, Client, Response,
                     data, digest_challenges, doc_path, expect, expect_etag, global_path, rl_doc)

ALICE_DOC = doc_path(RL, ALICE)


def anon(server, **kw):
    return Client(server, **kw)


def assert_digest_challenge(resp, realm):
    assert resp.status == 401, f"expected 401, got {resp.describe()}"
    values = resp.all("WWW-Authenticate")
    assert len(values) == 2, f"expected two WWW-Authenticate headers (MD5, SHA-256), got {values}"
    chs = digest_challenges(resp)
    assert len(chs) == 2, f"expected two Digest challenges, got {values}"
    md5, sha = chs
    # MD5 first by default: clients that read only the first challenge (urllib) need it.
    assert md5.get("algorithm") == "MD5", f"first challenge must be algorithm=MD5: {values[0]}"
    assert sha.get("algorithm") == "SHA-256", f"second challenge must be algorithm=SHA-256: {values[1]}"
    for ch, raw in zip(chs, values):
        assert ch.get("realm") == realm, f"expected realm {realm!r}, got {ch.get('realm')!r} in {raw}"
        assert "auth" in [q.strip() for q in ch.get("qop", "").split(",")], f"qop=auth missing in {raw}"
        assert ch.get("nonce"), f"no nonce in {raw}"
        assert ch.get("opaque") is not None, f"no opaque in {raw}"


# ---- challenges


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_unauthenticated_gets_digest_challenge_with_user_domain_realm(server, method):
    body = rl_doc() if method == "PUT" else None
    ct = MIME[RL] if method == "PUT" else None
    r = anon(server).request(method, ALICE_DOC, body=body, content_type=ct)
    assert_digest_challenge(r, "example.com")
    if method != "HEAD":
        assert b"resource-lists" not in r.body


@pytest.mark.parametrize("path", [
    global_path(RL),
    doc_path(RL, CAROL),
    "/xcap-root/xcap-caps/global/index",
], ids=["global", "tel-user", "xcap-caps"])
def test_default_realm_challenge(server, path):
    # auth.realm is not set: the default realm is the domain of the first
    # user provisioned (sip:alice@example.com), recorded in the store.
    assert_digest_challenge(anon(server).get(path), "example.com")


def test_configured_default_realm(start_server):
    srv = start_server(settings={"auth.realm": "cab.test"}, realm="cab.test")
    assert_digest_challenge(anon(srv).get(global_path(RL)), "cab.test")
    # A tel: user only has credentials for the default realm.
    carol = srv.client(CAROL)
    body = data("pcc-alice.xml")
    expect(carol.put(doc_path(PCC, CAROL), body, MIME[PCC]), 201)
    assert carol.challenge["realm"] == "cab.test"
    # alice authenticates in her own domain's realm as well.
    alice = srv.client(ALICE)
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    assert alice.challenge["realm"] == "example.com"


@pytest.mark.parametrize("path", [
    "/xcap-root/no-such-auid/users/sip:alice@example.com/index",
    "/xcap-root/no-such-auid/global/index",
    doc_path(RL, ALICE, "does/not/exist"),
    doc_path(RL, "sip:nobody@example.com"),
    "/xcap-root/resource-lists/users/",
    "/xcap-root/",
], ids=["unknown-auid-user", "unknown-auid-global", "missing-doc", "unknown-user", "no-xui", "root"])
def test_unauthenticated_reveals_nothing(server, alice, path):
    # Give alice a real document so that "exists" and "does not exist" could differ.
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    r = anon(server).get(path)
    assert r.status == 401, f"expected 401 for an unauthenticated GET, got {r.describe()}"
    assert digest_challenges(r), f"no Digest challenge: {r.describe()}"


def test_unauthenticated_existing_and_missing_look_alike(server, alice):
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    r1 = anon(server).get(ALICE_DOC)
    r2 = anon(server).get(doc_path(RL, ALICE, "missing"))
    assert r1.status == 401 and r2.status == 401 and r1.body == r2.body, \
        f"existing and missing documents must look alike:\nexisting: {r1.describe()}\nmissing: {r2.describe()}"


# ---- Digest


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
@pytest.mark.parametrize("username", ["alice", ALICE], ids=["user-part", "full-xui"])
def test_digest_login(server, algorithm, username):
    c = server.client(ALICE, username=username, algorithm=algorithm)
    body = rl_doc(f"{algorithm} {username}")
    expect(c.put(ALICE_DOC, body, MIME[RL]), 201)
    r = expect(c.get(ALICE_DOC), 200)
    assert r.body == body
    assert c.challenge["realm"] == "example.com"


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_wrong_password_is_401(server, algorithm):
    c = server.client(ALICE, password="wrong-password", algorithm=algorithm)
    r = c.put(ALICE_DOC, rl_doc(), MIME[RL])
    assert r.status == 401, f"expected 401 with a wrong password, got {r.describe()}"
    assert c.unauthorized == 2, f"expected 2 challenges (none sent, then wrong), got {c.unauthorized}"
    expect(server.client(ALICE).get(ALICE_DOC), 404)


def test_unknown_user_is_401(server):
    c = server.client("sip:mallory@example.com", password="whatever")
    expect(c.get(doc_path(RL, "sip:mallory@example.com")), 401)


def test_other_users_password_is_401(server):
    """bob's password with alice's name."""
    c = server.client(ALICE, password=PASSWORDS[BOB])
    expect(c.get(ALICE_DOC), 401)


def test_nonce_reuse_one_401_for_twenty_requests(server):
    c = server.client(ALICE)
    expect(c.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    for i in range(19):
        r = c.get(ALICE_DOC)
        assert r.status == 200, f"request {i + 2}: {r.describe()}"
    assert len(c.sent) == 21, c.sent
    assert c.unauthorized == 1, (
        f"expected exactly one 401 for 20 requests reusing the nonce (nc 1..20), got {c.unauthorized}: {c.sent}")
    assert c.nc == 20


def _on_one_connection(conn, method, target, headers=None, body=None):
    conn.request(method, target, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r, Response(method, target, r.status, r.reason, r.getheaders(), data)


def test_digest_exchange_and_bodyless_answers_keep_the_connection(server):
    """A Digest client retries on the connection its 401 came on (RFC 9110
    section 11.6.1 lets it); closing it costs every exchange a new TCP (and
    TLS) handshake. Answers to requests without a body, given before any
    XCAP work (401, /healthz, 404 outside the XCAP root, 405), keep it too."""
    expect(server.client(ALICE).put(ALICE_DOC, rl_doc("kept"), MIME[RL]), 201)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        r, resp = _on_one_connection(conn, "GET", ALICE_DOC)
        assert resp.status == 401 and not r.will_close, resp.describe()
        sock = conn.sock
        c = server.client(ALICE)
        c.challenge = c._pick(resp)
        for method, target, headers, want in (
                ("GET", ALICE_DOC, {"Authorization": c.authorization("GET", ALICE_DOC)}, 200),
                ("GET", "/healthz", None, 200),
                ("GET", "/no-such-place", None, 404),
                ("DELETE", ALICE_DOC, None, 401),
                ("OPTIONS", ALICE_DOC, {"Authorization": c.authorization("OPTIONS", ALICE_DOC)}, 405)):
            r, resp = _on_one_connection(conn, method, target, headers)
            assert resp.status == want, resp.describe()
            assert not r.will_close and conn.sock is sock, f"{method} {target} closed the connection"
    finally:
        conn.close()


def test_early_401_to_a_body_sent_after_100_continue_closes(server):
    """A PUT that waits for 100-continue gets its 401 first, and the body it
    did not send can never be read: that connection closes."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("PUT", ALICE_DOC)
        conn.putheader("Content-Type", MIME[RL])
        conn.putheader("Content-Length", "1000")
        conn.putheader("Expect", "100-continue")
        conn.endheaders()
        r = conn.getresponse()
        r.read()
        assert r.status == 401 and r.will_close, (r.status, r.getheaders())
    finally:
        conn.close()


def test_nonce_reuse_across_connections(server):
    c = server.client(ALICE)
    expect(c.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    for i in range(5):
        c.close()  # a new TCP connection each time
        expect(c.get(ALICE_DOC), 200)
    assert c.unauthorized == 1, f"expected one 401, got {c.unauthorized}: {c.sent}"


def test_replayed_nonce_count_is_refused(server):
    """The same (nonce, nc) twice is a replay (RFC 7616 §3.3/§5.10)."""
    c = server.client(ALICE)
    expect(c.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    c.nc -= 1  # next request reuses the nc of the PUT
    r = c._send("GET", ALICE_DOC, None, {"Authorization": c.authorization("GET", ALICE_DOC)})
    assert r.status == 401, f"expected 401 for a replayed nc, got {r.describe()}"


def test_digest_uri_must_match_request(server):
    c = server.client(ALICE)
    expect(c.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    auth = c.authorization("GET", doc_path(RL, ALICE, "other"))
    r = c._send("GET", ALICE_DOC, None, {"Authorization": auth})
    # RFC 7616 §3.4.6; answered with a fresh challenge (docs/operations.md,
    # access log notes), which reveals nothing about the document.
    assert r.status == 401, f"expected 401 for a digest uri that is not the request's, got {r.describe()}"
    assert len(digest_challenges(r)) == 2 and b"resource-lists" not in r.body, r.describe()
    deadline = time.monotonic() + 10
    while "Digest uri does not match the request" not in server.stdout_text():
        assert time.monotonic() < deadline, f"no access-log note for the refusal:\n{server.stdout_text()}"
        time.sleep(0.05)


def test_stale_nonce_is_rechallenged(start_server):
    srv = start_server(settings={"auth.nonce_timeout": "1"})
    c = srv.client(ALICE)
    expect(c.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    time.sleep(2.5)
    expect(c.get(ALICE_DOC), 200)
    assert c.unauthorized == 2, f"expected a second 401 once the nonce expired, got {c.unauthorized}: {c.sent}"
    assert c.stale_seen == 1, "the 401 for the expired nonce must carry stale=true"


def test_curl_digest(server, alice):
    body = rl_doc("curl")
    expect(alice.put(ALICE_DOC, body, MIME[RL]), 201)
    res = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--digest", "-u", f"alice:{PASSWORDS[ALICE]}",
         "-o", "-", "-w", "\n%{http_code}", server.url(ALICE_DOC)],
        capture_output=True, timeout=30)
    out, _, code = res.stdout.rpartition(b"\n")
    assert res.returncode == 0, res.stderr
    assert code == b"200", f"curl --digest: expected 200, got {code!r}; stderr={res.stderr!r}"
    assert out == body


# ---- Basic


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_refused_by_default(server, alice):
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    r = anon(server).get(ALICE_DOC, headers={"Authorization": basic("alice", PASSWORDS[ALICE])})
    assert r.status == 401, f"Basic over plain HTTP must be refused by default, got {r.describe()}"
    assert digest_challenges(r), f"the 401 must still offer Digest: {r.describe()}"


def test_basic_allowed_when_configured(start_server):
    srv = start_server(settings={"auth.allow_basic": "true"})
    body = rl_doc("basic")
    c = anon(srv, headers={"Authorization": basic("alice", PASSWORDS[ALICE])})
    expect(c.put(ALICE_DOC, body, MIME[RL]), 201)
    r = expect(c.get(ALICE_DOC), 200)
    assert r.body == body
    # Wrong password with Basic: 401.
    bad = anon(srv, headers={"Authorization": basic("alice", "nope")})
    expect(bad.get(ALICE_DOC), 401)
    # bob's valid Basic credentials on alice's tree: 403.
    b = anon(srv, headers={"Authorization": basic("bob", PASSWORDS[BOB])})
    expect(b.get(ALICE_DOC), 403)
    # curl --basic works the same way.
    res = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "--basic", "-u", f"alice:{PASSWORDS[ALICE]}",
         "-o", "-", "-w", "\n%{http_code}", srv.url(ALICE_DOC)],
        capture_output=True, timeout=30)
    out, _, code = res.stdout.rpartition(b"\n")
    assert code == b"200" and out == body, f"curl --basic: got {code!r} {out!r} {res.stderr!r}"


# ---- owners


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
def test_other_users_tree_is_403(server, alice, bob, method):
    body = rl_doc("bob's")
    etag = expect_etag(expect(bob.put(doc_path(RL, BOB), body, MIME[RL]), 201))
    put_body = rl_doc("alice was here") if method == "PUT" else None
    ct = MIME[RL] if method == "PUT" else None
    r = alice.request(method, doc_path(RL, BOB), body=put_body, content_type=ct)
    assert r.status == 403, f"alice on bob's document: expected 403, got {r.describe()}"
    r = expect(bob.get(doc_path(RL, BOB)), 200)
    assert r.body == body and r.etag == etag


def test_other_users_missing_document_is_403_not_404(server, alice):
    r = alice.get(doc_path(RL, BOB, "missing"))
    assert r.status == 403, f"expected 403 (existence not revealed), got {r.describe()}"
    r = alice.put(doc_path(PCC, BOB), data("pcc-alice.xml"), MIME[PCC])
    assert r.status == 403, f"expected 403 for creating in bob's tree, got {r.describe()}"
    expect(server.client(BOB).get(doc_path(PCC, BOB)), 404)


# ---- global documents


def test_global_documents_admin_writes_users_read(server):
    admin = server.client(ADMIN)
    alice = server.client(ALICE)
    carol = server.client(CAROL)
    path = global_path(RL)
    body = rl_doc("shared")
    etag = expect_etag(expect(admin.put(path, body, MIME[RL]), 201))
    for who, c in (("alice", alice), ("tel user", carol), ("admin", admin)):
        r = c.get(path)
        assert r.status == 200, f"{who} reading a global document: {r.describe()}"
        assert r.body == body and r.etag == etag
    # Normal users cannot write or delete it.
    r = alice.put(path, rl_doc("hijack"), MIME[RL])
    assert r.status == 403, f"alice PUT on a global document: expected 403, got {r.describe()}"
    r = alice.delete(path)
    assert r.status == 403, f"alice DELETE on a global document: expected 403, got {r.describe()}"
    r = expect(alice.get(path), 200)
    assert r.body == body and r.etag == etag
    # Nor create new ones.
    r = carol.put(global_path(RL, "other"), rl_doc(), MIME[RL])
    assert r.status == 403, f"tel user creating a global document: expected 403, got {r.describe()}"
    # The admin can replace and delete.
    expect(admin.put(path, rl_doc("v2"), MIME[RL]), 200)
    expect(admin.delete(path), 200)
    expect(alice.get(path), 404)


def test_unauthenticated_global_read_is_401(server):
    admin = server.client(ADMIN)
    expect(admin.put(global_path(RL), rl_doc(), MIME[RL]), 201)
    r = anon(server).get(global_path(RL))
    assert r.status == 401, f"expected 401, got {r.describe()}"


# ---- asserted identities


def asserted(server, identity, header="X-3GPP-Asserted-Identity", source=TRUSTED_PEER):
    return Client(server, source_address=source, headers={header: identity})


@pytest.mark.parametrize("value", [f'"{IWF}"', IWF], ids=["quoted", "unquoted"])
def test_trusted_server_identity_reads_and_writes_any_user(server, value):
    iwf = asserted(server, value)
    body = data("pcc-alice.xml")
    etag = expect_etag(expect(iwf.put(doc_path(PCC, ALICE), body, MIME[PCC]), 201))
    r = expect(server.client(ALICE).get(doc_path(PCC, ALICE)), 200)
    assert r.body == body and r.etag == etag
    bob_body = data("pcc-mediatek-style.xml")
    expect(server.client(BOB).put(doc_path(PCC, BOB), bob_body, MIME[PCC]), 201)
    r = expect(iwf.get(doc_path(PCC, BOB)), 200)
    assert r.body == bob_body
    assert iwf.unauthorized == 0, f"asserted identity from a trusted peer got challenged: {iwf.sent}"


@pytest.mark.parametrize("header", ["X-3GPP-Asserted-Identity", "X-XCAP-Asserted-Identity"])
@pytest.mark.parametrize("value", [f'"{ALICE}"', ALICE], ids=["quoted", "unquoted"])
def test_asserted_user_identity_is_the_owner(server, header, value):
    a = asserted(server, value, header=header)
    body = rl_doc("asserted")
    expect(a.put(ALICE_DOC, body, MIME[RL]), 201)
    r = expect(server.client(ALICE).get(ALICE_DOC), 200)
    assert r.body == body
    r = a.get(doc_path(RL, BOB))
    assert r.status == 403, f"asserted alice on bob's tree: expected 403, got {r.describe()}"


def test_asserted_identity_from_untrusted_peer_is_ignored(server):
    body = rl_doc()
    expect(server.client(ALICE).put(ALICE_DOC, body, MIME[RL]), 201)
    for header in ("X-3GPP-Asserted-Identity", "X-XCAP-Asserted-Identity"):
        for value in (f'"{IWF}"', ALICE):
            c = asserted(server, value, header=header, source="127.0.0.1")
            r = c.get(ALICE_DOC)
            assert r.status == 401, (
                f"{header}: {value} from 127.0.0.1 (not in auth.trusted_peers) must be ignored "
                f"and answered 401, got {r.describe()}")
            r = c.put(ALICE_DOC, rl_doc("evil"), MIME[RL])
            assert r.status == 401, f"untrusted asserted PUT: expected 401, got {r.describe()}"
    r = expect(server.client(ALICE).get(ALICE_DOC), 200)
    assert r.body == body


def test_asserted_identity_ignored_when_no_peer_is_trusted(start_server):
    srv = start_server(default_settings=False, settings={"auth.server_identities": IWF})
    for source in ("127.0.0.1", TRUSTED_PEER):
        r = asserted(srv, f'"{IWF}"', source=source).get(ALICE_DOC)
        assert r.status == 401, f"no trusted peers configured, from {source}: expected 401, got {r.describe()}"


def test_asserted_unknown_identity_from_trusted_peer_is_403(server):
    c = asserted(server, '"sip:mallory@example.com"')
    r = c.get(ALICE_DOC)
    assert r.status == 403, f"an asserted identity that is neither owner nor server: expected 403, got {r.describe()}"


def test_asserted_admin_writes_global(server):
    c = asserted(server, f'"{ADMIN}"')
    body = rl_doc("admin via proxy")
    expect(c.put(global_path(RL), body, MIME[RL]), 201)
    r = expect(server.client(BOB).get(global_path(RL)), 200)
    assert r.body == body
    r = asserted(server, f'"{ALICE}"').put(global_path(RL), rl_doc("x"), MIME[RL])
    assert r.status == 403, f"asserted alice writing a global document: expected 403, got {r.describe()}"
