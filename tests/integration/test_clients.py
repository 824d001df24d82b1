# SPDX-License-Identifier: MIT
"""Real XCAP clients against the default configuration: the bytes they send,
sent as they send them (a raw socket, http.client, urllib, curl), never
through the normalising test client.

- Python's urllib HTTPDigestAuthHandler reads only the first WWW-Authenticate
  and knows only MD5 (and SHA-1): the first challenge must be MD5, with
  SHA-256 still offered after it (RFC 7616 §3.7).
- Clients that do not percent-encode node selectors put raw '"' into the
  request-target and into the Digest uri="..." parameter.
- "[0]" is a valid position (RFC 4825 §6.3, 1*DIGIT) that selects nothing.
- xcap-caps carries <extensions/>.
"""

import hashlib
import http.client
import secrets
import shutil
import socket
import subprocess
import urllib.error
import urllib.request

import pytest
from lxml import etree

from xdmslib import (ALICE, CAPS, MIME, PASSWORDS, RL, RL_NS, XCAP_ERROR_NS, doc_path, expect, global_path,
                     parse_challenge, rl_doc)

ALICE_DOC = doc_path(RL, ALICE)
FRIENDS_RAW = ALICE_DOC + '/~~/resource-lists/list[@name="friends"]'
ELEMENT_CT = "application/xcap-el+xml"
ATTRIBUTE_CT = "application/xcap-att+xml"


# ---- a raw HTTP/1.1 exchange on one socket


def read_response(sock):
    """Reads one response; returns (status, [(name, value)], body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before the response head was complete: {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
    length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the body"
        rest += chunk
    return status, headers, rest[:length]


def digest_md5(username, password, method, uri, ch, nc=1):
    """The Authorization value urllib writes (same parameters, same order)."""
    def h(s):
        return hashlib.md5(s.encode("utf-8")).hexdigest()

    cnonce = secrets.token_hex(8)
    ncv = f"{nc:08x}"
    realm, nonce = ch["realm"], ch["nonce"]
    ha1 = h(f"{username}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    resp = h(f"{ha1}:{nonce}:{ncv}:{cnonce}:auth:{ha2}")
    return (f'Digest username="{username}", realm="{ch["realm"]}", nonce="{ch["nonce"]}", uri="{uri}", '
            f'response="{resp}", opaque="{ch["opaque"]}", algorithm="MD5", qop=auth, nc={ncv}, '
            f'cnonce="{cnonce}"')


def first_challenge(headers):
    values = [v for k, v in headers if k.lower() == "www-authenticate"]
    assert values, f"no WWW-Authenticate in {headers}"
    return parse_challenge(values[0])


def raw_round_trip(server, method, target, body=b"", content_type=None, username="alice",
                   password=PASSWORDS[ALICE]):
    """Sends @method @target unauthenticated, answers the FIRST challenge with
    MD5 as urllib does, raw '"' and all, on a new connection. Returns
    (status, headers, body) of the second answer."""
    def send(auth):
        # A new connection per request, as urllib makes them.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            if content_type:
                head += f"Content-Type: {content_type}\r\n"
            if body or method == "PUT":
                head += f"Content-Length: {len(body)}\r\n"
            if auth:
                head += f"Authorization: {auth}\r\n"
            s.sendall(head.encode("utf-8") + b"\r\n" + body)
            return read_response(s)

    status, headers, _ = send(None)
    assert status == 401, f"expected a 401 challenge first, got {status} {headers}"
    scheme, ch = first_challenge(headers)
    assert scheme == "Digest" and ch.get("algorithm") == "MD5", \
        f"the first challenge must be Digest MD5 (urllib reads only that one): {headers}"
    return send(digest_md5(username, password, method, target, ch))


# ---- challenges


def test_first_challenge_is_md5_and_sha256_is_offered(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", ALICE_DOC)
    r = conn.getresponse()
    r.read()
    values = r.headers.get_all("WWW-Authenticate")
    conn.close()
    assert r.status == 401, f"expected 401, got {r.status}"
    algos = [parse_challenge(v)[1].get("algorithm") for v in values]
    assert algos == ["MD5", "SHA-256"], \
        f"expected the challenges MD5 then SHA-256 (RFC 7616 §3.7 order; urllib reads the first), got {values}"


def test_configured_order_puts_sha256_first(start_server):
    srv = start_server(settings={"auth.digest_algorithms": "SHA-256,MD5"})
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.request("GET", ALICE_DOC)
    r = conn.getresponse()
    r.read()
    algos = [parse_challenge(v)[1].get("algorithm") for v in r.headers.get_all("WWW-Authenticate")]
    conn.close()
    assert algos == ["SHA-256", "MD5"], f"auth.digest_algorithms=SHA-256,MD5 should be honoured, got {algos}"


# ---- Python's urllib, default configuration


def urllib_opener(server, username="alice", password=PASSWORDS[ALICE]):
    mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    mgr.add_password(None, server.url("/"), username, password)
    return urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(mgr))


def urlopen(opener, server, method, path, body=None, content_type=None):
    req = urllib.request.Request(server.url(path), data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with opener.open(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.mark.parametrize("username", ["alice", ALICE], ids=["user-part", "full-xui"])
def test_urllib_document_element_attribute(server, username):
    op = urllib_opener(server, username)

    def call(method, path, body=None, ct=None):
        return urlopen(op, server, method, path, body, ct)

    status, body = call("PUT", ALICE_DOC, rl_doc(), MIME[RL])
    assert status == 201, f"urllib PUT of a document: expected 201, got {status} {body!r}"
    status, body = call("GET", ALICE_DOC)
    assert (status, body) == (200, rl_doc()), f"urllib GET of the document: {status} {body!r}"

    # An element, its selector written raw (as urllib sends it) ...
    new_entry = b'<entry uri="sip:carol@example.com"/>'
    entry_raw = FRIENDS_RAW + '/entry[@uri="sip:carol@example.com"]'
    status, body = call("PUT", entry_raw, new_entry, ELEMENT_CT)
    assert status == 201, f"urllib PUT of an element with a raw selector: expected 201, got {status} {body!r}"
    status, body = call("GET", entry_raw)
    assert (status, body) == (200, new_entry), f"urllib GET of the element: {status} {body!r}"
    # ... and percent-encoded.
    entry_enc = ALICE_DOC + "/~~/resource-lists/list%5B@name=%22friends%22%5D/entry%5B2%5D"
    status, body = call("GET", entry_enc)
    assert (status, body) == (200, new_entry), f"urllib GET of the encoded selector: {status} {body!r}"

    # An attribute.
    attr = FRIENDS_RAW + "/entry[1]/@uri"
    status, body = call("PUT", attr, b"sip:bobby@example.com", ATTRIBUTE_CT)
    assert status == 200, f"urllib PUT of an attribute: expected 200, got {status} {body!r}"
    status, body = call("GET", attr)
    assert (status, body) == (200, b"sip:bobby@example.com"), f"urllib GET of the attribute: {status} {body!r}"
    status, body = call("DELETE", FRIENDS_RAW + "/entry[1]/display-name")
    assert status == 200, f"urllib DELETE of an element: expected 200, got {status} {body!r}"
    status, body = call("DELETE", entry_raw)
    assert status == 200, f"urllib DELETE of the element: expected 200, got {status} {body!r}"
    status, body = call("GET", entry_raw)
    assert status == 404, f"GET after the DELETE: expected 404, got {status} {body!r}"
    work = ALICE_DOC + '/~~/resource-lists/list[@name="work"]'
    status, body = call("PUT", work, b'<list name="work"/>', ELEMENT_CT)
    assert status == 201, f"urllib PUT of a second list: expected 201, got {status} {body!r}"
    status, body = call("DELETE", work + "/@name")
    assert status == 200, f"urllib DELETE of an attribute: expected 200, got {status} {body!r}"
    status, body = call("PUT", ALICE_DOC + "/~~/resource-lists/list[2]/@name", b"office", ATTRIBUTE_CT)
    assert status == 201, f"urllib PUT of a new attribute: expected 201, got {status} {body!r}"
    status, body = call("GET", ALICE_DOC)
    assert status == 200 and b"sip:bobby@example.com" in body and b"display-name" not in body \
        and b"carol" not in body and b'<list name="office"/>' in body, f"the document after the edits: {status} {body!r}"
    status, body = call("DELETE", ALICE_DOC)
    assert status == 200, f"urllib DELETE of the document: expected 200, got {status} {body!r}"
    status, body = call("GET", ALICE_DOC)
    assert status == 404, f"GET after deleting the document: expected 404, got {status} {body!r}"


def test_urllib_reads_xcap_caps(server):
    status, body = urlopen(urllib_opener(server), server, "GET", global_path(CAPS))
    assert status == 200, f"urllib GET of xcap-caps: expected 200, got {status} {body!r}"


def test_urllib_wrong_password_is_refused(server):
    status, body = urlopen(urllib_opener(server, password="not-her-password"), server, "GET", ALICE_DOC)
    assert status == 401, f"a wrong password must get 401, got {status} {body!r}"


# ---- raw '"' in the request-target and in the Digest uri


def test_raw_quotes_in_digest_uri_over_raw_socket(server, alice):
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    status, headers, body = raw_round_trip(server, "GET", FRIENDS_RAW)
    assert status == 200, f"GET {FRIENDS_RAW} with uri=\"{FRIENDS_RAW}\": expected 200, got {status} {body!r}"
    assert body.startswith(b'<list name="friends">'), body
    entry = b'<entry uri="sip:dave@example.com"/>'
    target = FRIENDS_RAW + '/entry[@uri="sip:dave@example.com"]'
    status, _, body = raw_round_trip(server, "PUT", target, entry, ELEMENT_CT)
    assert status == 201, f"PUT {target}: expected 201, got {status} {body!r}"
    status, _, body = raw_round_trip(server, "DELETE", target)
    assert status == 200, f"DELETE {target}: expected 200, got {status} {body!r}"


def test_raw_quotes_with_a_wrong_password_is_401(server, alice):
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    status, headers, _ = raw_round_trip(server, "GET", FRIENDS_RAW, password="wrong")
    assert status == 401, f"a wrong password with a raw-quoted uri must get 401, got {status}"
    assert "wrong password" in server.log_tail(40) or "wrong password" in server.stdout_text(), \
        "the refusal should be logged as a wrong password"


def test_raw_quotes_uri_for_another_target_is_401(server, alice):
    """The raw form is only taken when it is exactly the request-target: a
    header whose uri (parsed whole: it has no inner quotes) names another
    target is refused as a uri mismatch, not as a wrong password."""
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    other = ALICE_DOC + "/~~/resource-lists/list[1]"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET {FRIENDS_RAW} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        _, headers, _ = read_response(s)
    _, ch = first_challenge(headers)
    auth = digest_md5("alice", PASSWORDS[ALICE], "GET", other, ch)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET {FRIENDS_RAW} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n".encode())
        status, _, body = read_response(s)
    assert status == 401, f"credentials for {other} must not open {FRIENDS_RAW}: got {status} {body!r}"
    logs = server.log_tail(40) + server.stdout_text()
    assert "Digest uri does not match the request" in logs, logs[-2000:]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_globoff_quoted_selector(server, alice):
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    out = subprocess.run(
        ["curl", "-sS", "-g", "--digest", "-u", f"alice:{PASSWORDS[ALICE]}", "-o", "-", "-w", "\n%{http_code}",
         server.url(FRIENDS_RAW)], capture_output=True, timeout=30)
    body, _, code = out.stdout.rpartition(b"\n")
    assert code == b"200", f"curl -g --digest {FRIENDS_RAW}: expected 200, got {code!r} {body!r} {out.stderr!r}"
    assert body.startswith(b'<list name="friends">'), body


# ---- [0] selects nothing (RFC 4825 §6.3; SPEC §1.5)


@pytest.mark.parametrize("step", ["*[0]", "list[0]", 'list[0][@name="friends"]'])
def test_position_zero(server, alice, step):
    expect(alice.put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    before = expect(alice.get(ALICE_DOC), 200)
    target = ALICE_DOC + "/~~/resource-lists/" + step
    status, _, body = raw_round_trip(server, "GET", target)
    assert status == 404, f"GET {target}: expected 404 (selects nothing), got {status} {body!r}"
    new = b'<list name="friends"/>'
    status, headers, body = raw_round_trip(server, "PUT", target, new, ELEMENT_CT)
    assert status == 409, f"PUT {target}: expected 409 <cannot-insert>, got {status} {body!r}"
    ct = next((v for k, v in headers if k.lower() == "content-type"), None)
    assert ct == "application/xcap-error+xml", f"409 Content-Type: {ct!r}"
    root = etree.fromstring(body)
    assert root.tag == f"{{{XCAP_ERROR_NS}}}xcap-error" and root[0].tag == f"{{{XCAP_ERROR_NS}}}cannot-insert", \
        f"expected <cannot-insert>, got {body!r}"
    status, _, body = raw_round_trip(server, "DELETE", target)
    assert status == 404, f"DELETE {target}: expected 404, got {status} {body!r}"
    after = expect(alice.get(ALICE_DOC), 200)
    assert after.body == before.body and after.etag == before.etag, "the document must not change"


# ---- xcap-caps


def test_xcap_caps_has_extensions(server):
    status, headers, body = raw_round_trip(server, "GET", global_path(CAPS))
    assert status == 200, f"GET xcap-caps: {status} {body!r}"
    root = etree.fromstring(body)
    names = [etree.QName(c).localname for c in root]
    assert names == ["auids", "extensions", "namespaces"], \
        f"xcap-caps children must be auids, extensions, namespaces (RFC 4825 §12.5 order), got {names}"


# ---- whole-document PUT with a missing or generic Content-Type


def raw_put(server, target, body, content_type):
    """PUT with exactly these headers (no Content-Type when None), answering
    the MD5 challenge; returns (status, headers, body)."""
    return raw_round_trip(server, "PUT", target, body, content_type)


@pytest.mark.parametrize("ctype", [None, "application/xml", "application/x-www-form-urlencoded"],
                         ids=["none", "application-xml", "form-urlencoded"])
def test_generic_content_type_is_415_by_default(server, ctype):
    status, _, body = raw_put(server, ALICE_DOC, rl_doc(), ctype)
    assert status == 415, f"PUT with Content-Type {ctype!r}: RFC 4825 §8.2.1 says 415, got {status} {body!r}"
    assert MIME[RL].encode() in body, f"the 415 body must name the type to send: {body!r}"


def test_urllib_put_without_content_type_is_415_by_default(server):
    status, body = urlopen(urllib_opener(server), server, "PUT", ALICE_DOC, rl_doc())
    assert status == 415 and MIME[RL].encode() in body, f"expected 415 naming {MIME[RL]}, got {status} {body!r}"


@pytest.fixture
def lenient(start_server):
    return start_server(settings={"xcap.lenient_content_type": "true"})


@pytest.mark.parametrize("ctype", [None, "application/xml", "text/xml; charset=utf-8",
                                   "application/x-www-form-urlencoded"],
                         ids=["none", "application-xml", "text-xml", "form-urlencoded"])
def test_lenient_content_type_accepts_the_usage_document(lenient, ctype):
    status, _, body = raw_put(lenient, ALICE_DOC, rl_doc(), ctype)
    assert status == 201, f"PUT with Content-Type {ctype!r} and xcap.lenient_content_type: expected 201, " \
        f"got {status} {body!r}"
    r = expect(lenient.client(ALICE).get(ALICE_DOC), 200)
    assert r.body == rl_doc() and r.content_type == MIME[RL], r.describe()


def test_lenient_content_type_urllib_without_content_type(lenient):
    # urllib adds "Content-Type: application/x-www-form-urlencoded" by itself.
    op = urllib_opener(lenient)
    status, body = urlopen(op, lenient, "PUT", ALICE_DOC, rl_doc())
    assert status == 201, f"urllib PUT without a Content-Type: expected 201, got {status} {body!r}"
    status, body = urlopen(op, lenient, "GET", ALICE_DOC)
    assert (status, body) == (200, rl_doc()), f"{status} {body!r}"


@pytest.mark.parametrize("ctype,body", [
    ("application/xml", b'<?xml version="1.0"?><pcc xmlns="urn:oma:xml:cab:pcc"/>'),   # another usage's document
    ("application/xml", b"<resource-lists"),                                           # not XML
    (None, b"name=value"),                                                             # a form
    ("text/plain", None),                                                              # a real other type
    ("application/vnd.oma.cab-pcc+xml", None),
], ids=["other-root", "not-xml", "form", "text-plain", "other-usage-type"])
def test_lenient_content_type_still_415_otherwise(lenient, ctype, body):
    body = rl_doc() if body is None else body
    status, _, got = raw_put(lenient, ALICE_DOC, body, ctype)
    assert status == 415, f"PUT {body[:40]!r} as {ctype!r}: expected 415, got {status} {got!r}"
    assert MIME[RL].encode() in got, f"the 415 body must name the type to send: {got!r}"
    expect(lenient.client(ALICE).get(ALICE_DOC), 404)


def test_lenient_content_type_is_for_documents_only(lenient):
    expect(lenient.client(ALICE).put(ALICE_DOC, rl_doc(), MIME[RL]), 201)
    status, _, got = raw_put(lenient, FRIENDS_RAW + '/entry[@uri="sip:x@example.com"]',
                             b'<entry uri="sip:x@example.com"/>', "application/xml")
    assert status == 415, f"an element PUT keeps its own type (application/xcap-el+xml): got {status} {got!r}"


def test_lenient_content_type_still_validates(lenient):
    bad = (f'<?xml version="1.0"?><resource-lists xmlns="{RL_NS}"><list><bogus/></list></resource-lists>').encode()
    status, _, got = raw_put(lenient, ALICE_DOC, bad, "application/xml")
    assert status == 409 and b"schema-validation-error" in got, f"expected 409 <schema-validation-error>, got {status} {got!r}"
