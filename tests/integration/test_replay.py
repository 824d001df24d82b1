# SPDX-License-Identifier: MIT
"""Replays and user enumeration (RFC 7616 §5.10, §5.11; RFC 3261 §22.4).

- A whole HTTP request, sent again byte for byte on a new connection, is
  refused and changes nothing.
- A SIP Authorization header that opened a subscription, replayed in a new
  SUBSCRIBE (a new transaction and dialog, so not a retransmission), is
  refused.
- An unknown user is answered exactly like a known user with a wrong
  password, over HTTP and over SIP: the same status, headers and body, but
  for the fresh nonce and opaque value, the date and the SIP tags.
"""

import hashlib
import re
import uuid

import pytest

from sipua import Subscriber, rl_body
from xdmslib import (ALICE, MIME, PASSWORDS, RL, Client, digest_challenges, doc_path, expect,
                     parse_raw_response, raw_exchange, rl_doc, sip_port)

DOC = doc_path(RL, ALICE, "replayed")


def raw_put(server, client, path, body):
    """The exact bytes of an authenticated PUT (the client's next nc)."""
    head = (f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: {MIME[RL]}\r\nContent-Length: {len(body)}\r\n"
            f"Authorization: {client.authorization('PUT', path)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def test_a_whole_http_request_replayed_byte_for_byte_is_refused(server):
    c = server.client(ALICE)
    expect(c.get(doc_path(RL, ALICE, "absent")), 404)  # learn the nonce
    v1 = rl_doc("version one")
    request = raw_put(server, c, DOC, v1)
    status, _, _ = parse_raw_response(raw_exchange(server.port, request))
    assert status == 201, "the original request"
    v2 = rl_doc("version two")
    etag2 = expect(c.put(DOC, v2, MIME[RL]), 200).etag
    # The captured bytes again, on a new connection: refused, nothing changed.
    status, headers, body = parse_raw_response(raw_exchange(server.port, request))
    assert status == 401, f"a replayed request was answered {status}: {body!r}"
    assert any(ch.get("stale", "").lower() == "true" for ch in
               [dict(re.findall(r'(\w+)="?([^",]*)"?', v)) for k, v in headers if k.lower() == "www-authenticate"]), \
        headers
    g = expect(c.get(DOC), 200)
    assert g.body == v2 and g.etag == etag2, "the replayed PUT changed the document"
    # A replayed DELETE deletes nothing either.
    delete = (f"DELETE {DOC} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
              f"Authorization: {c.authorization('DELETE', DOC)}\r\nConnection: close\r\n\r\n").encode()
    etag3 = expect(c.put(DOC, v1, MIME[RL]), 200).etag
    status, _, _ = parse_raw_response(raw_exchange(server.port, delete))
    assert status == 200
    etag4 = expect(c.put(DOC, v2, MIME[RL]), 201).etag
    status, _, _ = parse_raw_response(raw_exchange(server.port, delete))
    assert status == 401, "a replayed DELETE was accepted"
    g = expect(c.get(DOC), 200)
    assert g.etag == etag4 and etag4 != etag3


def normalized_401(resp_status, headers, body):
    """What a client can tell about a 401, less what varies with every
    challenge whoever asks: the nonce, the opaque value and the date."""
    out = []
    for k, v in headers:
        if k.lower() == "date":
            continue
        if k.lower() == "www-authenticate":
            v = re.sub(r'(nonce|opaque)="[^"]*"', r'\1="X"', v)
        out.append((k.lower(), v))
    return resp_status, out, body


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_unknown_user_is_answered_like_a_wrong_password_over_http(server, algorithm):
    answers = []
    for user, password in (("sip:mallory@example.com", "whatever"), (ALICE, "wrong-password")):
        c = Client(server, username=user, password=password, algorithm=algorithm)
        r = c.get(doc_path(RL, ALICE))
        assert r.status == 401 and c.unauthorized == 2, r.describe()
        answers.append(normalized_401(r.status, r.headers, r.body))
    assert answers[0] == answers[1], f"unknown user: {answers[0]}\nwrong password: {answers[1]}"
    # Same for a digest username that is not even a SIP URI.
    c = Client(server, username="nobody", password="x", algorithm=algorithm)
    r = c.get(doc_path(RL, ALICE))
    assert normalized_401(r.status, r.headers, r.body) == answers[1]


# ---- SIP


def digest_authorization(challenge, username, password, method, uri, nc="00000001", cnonce="0a4f113b"):
    algo = challenge.get("algorithm", "MD5")
    h = hashlib.sha256 if algo.upper() == "SHA-256" else hashlib.md5

    def hx(x):
        return h(x.encode()).hexdigest()

    ha1 = hx(f"{username}:{challenge['realm']}:{password}")
    ha2 = hx(f"{method}:{uri}")
    response = hx(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{username}", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", '
            f'uri="{uri}", response="{response}", algorithm={algo}, qop=auth, nc={nc}, '
            f'cnonce="{cnonce}", opaque="{challenge.get("opaque", "")}"')


def sip_challenge(resp):
    class R:
        def all(self, name):
            return resp.all(name)
    return digest_challenges(R())[0]


@pytest.fixture
def sipsrv(start_server):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trusted_peers": "127.0.0.2"})
    srv.sip = sip_port(srv)
    return srv


def test_sip_digest_replayed_in_a_new_subscribe_is_refused(sipsrv):
    sel = f"{RL}/users/{ALICE}/index"
    first = Subscriber(sipsrv.sip)
    try:
        resp = first.subscribe(rl_body(sel))
        assert resp.status == 401, resp
        auth = digest_authorization(sip_challenge(resp), "alice", PASSWORDS[ALICE], "SUBSCRIBE", ALICE)
        resp = first.subscribe(rl_body(sel), extra=[f"Authorization: {auth}"])
        assert resp.status == 200, resp
        first.notify()
    finally:
        first.close()
    # The same Authorization (nonce, nc, cnonce, response) in another SUBSCRIBE:
    # another dialog from another socket, not a retransmission.
    thief = Subscriber(sipsrv.sip)
    try:
        resp = thief.subscribe(rl_body(sel), extra=[f"Authorization: {auth}"])
        assert resp.status == 401, f"a replayed SIP Digest answer was accepted: {resp!r}"
        thief.no_notify(0.5)
    finally:
        thief.close()


def test_unknown_user_is_answered_like_a_wrong_password_over_sip(sipsrv):
    sel = f"{RL}/users/{ALICE}/index"
    answers = []
    for aor, user, password in ((ALICE, "alice", "wrong-password"),
                                ("sip:mallory@example.com", "mallory", "whatever")):
        s = Subscriber(sipsrv.sip, aor=aor)
        try:
            resp = s.subscribe(rl_body(sel))
            assert resp.status == 401, resp
            auth = digest_authorization(sip_challenge(resp), user, password, "SUBSCRIBE", aor)
            s.call_id = uuid.uuid4().hex + "@127.0.0.1"
            resp = s.subscribe(rl_body(sel), extra=[f"Authorization: {auth}"])
        finally:
            s.close()
        assert resp.status in (401, 403), resp
        hdrs = []
        for k, v in resp.headers:
            if k.lower() in ("via", "from", "to", "call-id", "cseq"):
                continue  # the request's own, echoed
            hdrs.append((k.lower(), re.sub(r'(nonce|opaque)="[^"]*"', r'\1="X"', v)))
        answers.append((resp.status, resp.start, hdrs, resp.body))
    assert answers[0] == answers[1], f"wrong password: {answers[0]}\nunknown user: {answers[1]}"
