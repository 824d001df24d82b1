# SPDX-License-Identifier: MIT
"""Error statuses (SPEC §1.1, §1.7, §1.8): 404, 405, 409 bodies, 413, 415.
Every refused write must leave the store unchanged."""

import pytest

from xdmslib import (ALICE, FH, MIME, PCC, RL, RL_NS, data, doc_path, expect, expect_etag,
                     expect_xcap_error, global_path, parse_raw_response, raw_exchange, rl_doc)

PATH = doc_path(RL, ALICE)


def assert_missing(client, path=PATH):
    r = client.get(path)
    assert r.status == 404, f"a refused write stored something: {r.describe()}"


def assert_unchanged(client, body, etag, path=PATH):
    r = expect(client.get(path), 200)
    assert r.body == body, f"a refused write changed the document: {r.describe()}"
    assert r.etag == etag, f"a refused write changed the ETag: expected {etag}, got {r.etag}"


@pytest.fixture
def existing(alice):
    body = rl_doc("Existing")
    return body, expect_etag(expect(alice.put(PATH, body, MIME[RL]), 201))


# ---- 404


@pytest.mark.parametrize("path", [
    "/xcap-root/no-such-auid/users/sip:alice@example.com/index",
    "/xcap-root/org.openmobilealliance.no-such/users/sip:alice@example.com/index",
    "/xcap-root/no-such-auid/global/index",
], ids=["unknown", "unknown-oma", "unknown-global"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_auid_is_404(alice, path, method):
    body = rl_doc() if method == "PUT" else None
    ct = MIME[RL] if method == "PUT" else None
    r = alice.request(method, path, body=body, content_type=ct)
    assert r.status == 404, f"unknown AUID: expected 404, got {r.describe()}"


@pytest.mark.parametrize("path", [
    "/xcap-root/resource-lists/sip:alice@example.com/index",      # no users/global
    "/xcap-root/resource-lists/people/sip:alice@example.com/index",
    "/xcap-root/resource-lists/users/sip:alice@example.com",      # no document
    "/xcap-root/resource-lists/users/sip:alice@example.com/",
    "/xcap-root/resource-lists/users/",                           # no XUI
    "/xcap-root/resource-lists/users",
    "/xcap-root/resource-lists/global",
    "/xcap-root/resource-lists/global/",
    "/xcap-root/resource-lists",
    "/xcap-root/resource-lists/",
    "/xcap-root",
    "/xcap-root/",
    "/not-the-xcap-root/resource-lists/users/sip:alice@example.com/index",
], ids=lambda p: p.replace("/", "|"))
def test_bad_paths_are_404(alice, path):
    r = alice.get(path)
    assert r.status == 404, f"GET {path}: expected 404, got {r.describe()}"


@pytest.mark.parametrize("path", [
    "/xcap-root/resource-lists/sip:alice@example.com/index",
    "/xcap-root/resource-lists/users/sip:alice@example.com/",
    "/xcap-root/resource-lists/global/",
], ids=["no-users", "no-doc", "global-no-doc"])
def test_put_to_bad_path_is_404_and_stores_nothing(server, alice, path):
    r = alice.put(path, rl_doc(), MIME[RL])
    assert r.status == 404, f"PUT {path}: expected 404, got {r.describe()}"
    assert_missing(alice, PATH)


def test_pcc_has_no_global_tree(server):
    admin = server.client("sip:admin@example.com")
    r = admin.put(global_path(PCC), data("pcc-alice.xml"), MIME[PCC])
    assert r.status == 404, f"cab-pcc is a users-only usage: expected 404, got {r.describe()}"


# ---- 405


@pytest.mark.parametrize("method", ["POST", "PATCH", "PROPFIND"])
def test_other_methods_are_405_with_allow(alice, existing, method):
    body, etag = existing
    r = alice.request(method, PATH, body=rl_doc("posted"), content_type=MIME[RL])
    assert r.status == 405, f"{method}: expected 405, got {r.describe()}"
    allow = r.header("Allow")
    assert allow is not None, f"405 without an Allow header: {r.describe()}"
    methods = {m.strip().upper() for m in allow.split(",")}
    assert {"GET", "PUT", "DELETE"} <= methods, f"Allow must list GET, PUT, DELETE, got {allow!r}"
    assert method not in methods, f"Allow lists the refused method {method}: {allow!r}"
    assert_unchanged(alice, body, etag)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_xcap_caps_is_read_only(alice, method):
    path = "/xcap-root/xcap-caps/global/index"
    before = expect(alice.get(path), 200)
    r = alice.request(method, path, body=data("xcap-caps.xml") if method == "PUT" else None,
                      content_type=MIME["xcap-caps"] if method == "PUT" else None)
    assert r.status == 405, f"{method} on xcap-caps: expected 405, got {r.describe()}"
    allow = r.header("Allow")
    assert allow is not None and "GET" in allow and method not in allow, \
        f"405 on xcap-caps must carry Allow with GET and without {method}: {r.describe()}"
    after = expect(alice.get(path), 200)
    assert after.body == before.body


# ---- 415


@pytest.mark.parametrize("ctype", [
    "text/plain",
    "application/xml",
    "application/xcap-el+xml",
    "application/xcap-att+xml",
    "application/vnd.oma.cab-pcc+xml",
], ids=["text-plain", "app-xml", "xcap-el", "xcap-att", "other-auid"])
def test_wrong_content_type_is_415(alice, existing, ctype):
    body, etag = existing
    r = alice.put(PATH, rl_doc("replaced"), ctype)
    assert r.status == 415, f"PUT with Content-Type {ctype}: expected 415, got {r.describe()}"
    assert_unchanged(alice, body, etag)
    r = alice.put(doc_path(RL, ALICE, "new"), rl_doc("new"), ctype)
    assert r.status == 415, f"PUT (new) with Content-Type {ctype}: expected 415, got {r.describe()}"
    assert_missing(alice, doc_path(RL, ALICE, "new"))


def test_missing_content_type_is_415(alice):
    r = alice.request("PUT", PATH, body=rl_doc())
    assert r.status == 415, f"PUT without Content-Type: expected 415, got {r.describe()}"
    assert_missing(alice)


# ---- 409 not-well-formed

NOT_WELL_FORMED = {
    "unclosed": f'<resource-lists xmlns="{RL_NS}"><list>'.encode(),
    "mismatched": f'<resource-lists xmlns="{RL_NS}"><list></entry></resource-lists>'.encode(),
    "two-roots": f'<resource-lists xmlns="{RL_NS}"/><resource-lists xmlns="{RL_NS}"/>'.encode(),
    "text-only": b"hello world",
    "empty": b"",
    "undefined-entity": f'<resource-lists xmlns="{RL_NS}"><list name="&nbsp;"/></resource-lists>'.encode(),
    "lt-in-attribute": f'<resource-lists xmlns="{RL_NS}"><list name="a<b"/></resource-lists>'.encode(),
    "bad-decl": b'<?xml version="1.0" encodin="UTF-8"?><resource-lists/>',
    "garbage-after-root": f'<resource-lists xmlns="{RL_NS}"/>trailing text'.encode(),
}


@pytest.mark.parametrize("name", sorted(NOT_WELL_FORMED))
def test_not_well_formed_new_document(alice, name):
    r = alice.put(PATH, NOT_WELL_FORMED[name], MIME[RL])
    expect_xcap_error(r, "not-well-formed")
    assert_missing(alice)


def test_not_well_formed_replacement_leaves_document(alice, existing):
    body, etag = existing
    expect_xcap_error(alice.put(PATH, NOT_WELL_FORMED["unclosed"], MIME[RL]), "not-well-formed")
    assert_unchanged(alice, body, etag)


# ---- 409 not-utf-8

def rl_with_display(raw, decl=b'<?xml version="1.0" encoding="UTF-8"?>\n'):
    return (decl + b'<resource-lists xmlns="' + RL_NS.encode() + b'"><list name="l">'
            b'<entry uri="sip:x@example.com"><display-name>' + raw +
            b"</display-name></entry></list></resource-lists>\n")


NOT_UTF8 = {
    "byte-ff": rl_with_display(b"caf\xff"),
    "lone-continuation": rl_with_display(b"a\x80b"),
    "overlong-slash": rl_with_display(b"a\xc0\xafb"),
    "truncated-sequence": rl_with_display(b"\xe3\x81"),
    "utf16-surrogate-in-utf8": rl_with_display(b"\xed\xa0\x80"),
    "latin1-declared": rl_with_display(b"caf\xe9", decl=b'<?xml version="1.0" encoding="ISO-8859-1"?>\n'),
    "latin1-undeclared": rl_with_display(b"caf\xe9", decl=b""),
    "utf16-document": ('<?xml version="1.0" encoding="UTF-16"?>'
                       f'<resource-lists xmlns="{RL_NS}"/>').encode("utf-16"),
}


@pytest.mark.parametrize("name", sorted(NOT_UTF8))
def test_not_utf8(alice, name):
    r = alice.put(PATH, NOT_UTF8[name], MIME[RL])
    expect_xcap_error(r, "not-utf-8")
    assert_missing(alice)


def test_not_utf8_replacement_leaves_document(alice, existing):
    body, etag = existing
    expect_xcap_error(alice.put(PATH, NOT_UTF8["byte-ff"], MIME[RL]), "not-utf-8")
    assert_unchanged(alice, body, etag)


# ---- 409 schema-validation-error


def test_schema_invalid_pcc(alice):
    path = doc_path(PCC, ALICE)
    r = alice.put(path, data("pcc-invalid-tel-type.xml"), MIME[PCC])
    expect_xcap_error(r, "schema-validation-error", need_phrase=True)
    assert_missing(alice, path)


def test_schema_invalid_pcc_replacement_leaves_document(alice):
    path = doc_path(PCC, ALICE)
    body = data("pcc-alice.xml")
    etag = expect_etag(expect(alice.put(path, body, MIME[PCC]), 201))
    r = alice.put(path, data("pcc-invalid-tel-type.xml"), MIME[PCC])
    expect_xcap_error(r, "schema-validation-error", need_phrase=True)
    assert_unchanged(alice, body, etag, path)


@pytest.mark.parametrize("auid,body", [
    (RL, data("pcc-alice.xml")),
    (PCC, data("subscribe-body.xml")),
    (FH, data("pcc-alice.xml")),
    (RL, f'<list xmlns="{RL_NS}" name="x"/>'.encode()),
    (RL, b'<resource-lists><list name="no-namespace"/></resource-lists>'),
    (PCC, b'<pcc xmlns="urn:example:not-pcc"><person-details/></pcc>'),
], ids=["pcc-in-rl", "rl-in-pcc", "pcc-in-fh", "rl-child-as-root", "rl-no-namespace",
        "pcc-wrong-namespace"])
def test_wrong_root_element_is_schema_error(alice, auid, body):
    path = doc_path(auid, ALICE)
    r = alice.put(path, body, MIME[auid])
    expect_xcap_error(r, "schema-validation-error")
    assert_missing(alice, path)


def test_schema_invalid_resource_lists(alice):
    # <entry> without its required uri attribute; an unknown child in the RL namespace.
    for body in (f'<resource-lists xmlns="{RL_NS}"><list><entry/></list></resource-lists>'.encode(),
                 f'<resource-lists xmlns="{RL_NS}"><bogus/></resource-lists>'.encode()):
        r = alice.put(PATH, body, MIME[RL])
        expect_xcap_error(r, "schema-validation-error")
        assert_missing(alice)


# ---- 413


def test_body_over_max_body_is_413(start_server):
    srv = start_server(settings={"http.max_body": "4096"})
    alice = srv.client(ALICE)
    path = doc_path(RL, ALICE)
    # Just under the cap: accepted.
    small = rl_doc("x" * (4000 - len(rl_doc(""))))
    assert len(small) == 4000
    etag = expect_etag(expect(alice.put(path, small, MIME[RL]), 201))
    # Over the cap, new and replacement.
    big = rl_doc("y" * 6000)
    assert len(big) > 4096
    r = alice.put(doc_path(RL, ALICE, "big"), big, MIME[RL])
    assert r.status == 413, f"PUT of {len(big)} bytes with http.max_body=4096: expected 413, got {r.describe()}"
    alice.close()
    assert srv.alive(), "server died after a 413"
    r = alice.put(path, big, MIME[RL])
    assert r.status == 413, f"replacement of {len(big)} bytes: expected 413, got {r.describe()}"
    alice.close()
    assert_missing(alice, doc_path(RL, ALICE, "big"))
    assert_unchanged(alice, small, etag, path)


def test_chunked_body_over_max_body_is_413(start_server):
    srv = start_server(settings={"http.max_body": "4096"})
    alice = srv.client(ALICE)
    path = doc_path(RL, ALICE)
    expect(alice.get(path), 404)  # get a nonce
    big = rl_doc("z" * 8000)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 1000]), big[i:i + 1000])
                      for i in range(0, len(big), 1000)) + b"0\r\n\r\n"
    auth = alice.authorization("PUT", path)
    raw = raw_exchange(srv.port, (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
        f"Content-Type: {MIME[RL]}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode() + chunks)
    status, _, _ = parse_raw_response(raw)
    assert status == 413, f"chunked PUT of {len(big)} bytes with http.max_body=4096: expected 413, got {raw[:300]!r}"
    assert srv.alive()
    alice.close()
    assert_missing(alice, path)


def test_pcc_over_document_limit_is_constraint_failure(alice):
    """SPEC §4.1: CAB documents are limited to 256 KiB (409 <constraint-failure>),
    below http.max_body (4 MiB by default)."""
    tels = "".join(f'<tel pref="{i}"><tel-nb><tel-string>tel:+1555{i:07d}</tel-string></tel-nb></tel>'
                   for i in range(1, 4000))
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<pcc xmlns="urn:oma:xml:cab:pcc"><person-details>'
            f"<comm-addr>{tels}</comm-addr></person-details></pcc>\n").encode()
    assert 262144 < len(body) < 4194304
    path = doc_path(PCC, ALICE)
    expect_xcap_error(alice.put(path, body, MIME[PCC]), "constraint-failure")
    assert_missing(alice, path)
