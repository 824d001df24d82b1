# SPDX-License-Identifier: MIT
"""Document PUT/GET/HEAD/DELETE (RFC 4825 §8, SPEC §1.4, §1.6) and byte exactness."""

import pytest

from xdmslib import (ALICE, BOB, CAROL, FH, MIME, PCC, RL, data, doc_path, expect, expect_etag,
                     parse_raw_response, raw_exchange, rl_doc)

AUID_DOCS = [
    pytest.param(RL, "subscribe-body.xml", id="resource-lists"),
    pytest.param(PCC, "pcc-alice.xml", id="cab-pcc"),
    pytest.param(FH, "fh-requests.xml", id="cab-feature-handler"),
]


@pytest.mark.parametrize("auid,fixture", AUID_DOCS)
def test_document_lifecycle(alice, auid, fixture):
    body = data(fixture)
    path = doc_path(auid, ALICE)

    r = expect(alice.put(path, body, MIME[auid]), 201)
    etag1 = expect_etag(r)

    r = expect(alice.get(path), 200)
    assert r.body == body, f"GET body differs from the PUT body: {r.describe()}"
    assert r.content_type == MIME[auid], f"expected Content-Type {MIME[auid]}, got {r.content_type!r}"
    assert r.etag == etag1, f"expected ETag {etag1} from the PUT, got {r.etag!r}"

    # Identical bytes again: a replacement, with a new ETag.
    r = expect(alice.put(path, body, MIME[auid]), 200)
    etag2 = expect_etag(r)
    assert etag2 != etag1, f"second PUT returned the same ETag {etag1}; every modification needs a new one"

    r = expect(alice.get(path), 200)
    assert r.body == body
    assert r.etag == etag2, f"expected ETag {etag2} from the last PUT, got {r.etag!r}"

    r = expect(alice.head(path), 200)
    assert r.body == b"", f"HEAD returned a body: {r.describe()}"
    assert r.content_type == MIME[auid], f"HEAD Content-Type: expected {MIME[auid]}, got {r.content_type!r}"
    assert r.etag == etag2, f"HEAD ETag: expected {etag2}, got {r.etag!r}"
    if r.header("Content-Length") is not None:
        assert r.header("Content-Length") == str(len(body)), \
            f"HEAD Content-Length: expected {len(body)}, got {r.header('Content-Length')}"

    expect(alice.delete(path), 200)
    r = expect(alice.get(path), 404)
    assert r.etag is None, f"404 carried an ETag: {r.describe()}"
    expect(alice.head(path), 404)
    expect(alice.delete(path), 404)


def test_replace_with_different_content(alice):
    path = doc_path(RL, ALICE)
    first = rl_doc("First")
    second = rl_doc("Second")
    etag1 = expect_etag(expect(alice.put(path, first, MIME[RL]), 201))
    etag2 = expect_etag(expect(alice.put(path, second, MIME[RL]), 200))
    assert etag1 != etag2
    r = expect(alice.get(path), 200)
    assert r.body == second, f"expected the second body, got {r.body!r}"
    assert r.etag == etag2


def test_recreate_after_delete_is_201_with_fresh_etag(alice):
    path = doc_path(RL, ALICE)
    etag1 = expect_etag(expect(alice.put(path, rl_doc("A"), MIME[RL]), 201))
    expect(alice.delete(path), 200)
    etag2 = expect_etag(expect(alice.put(path, rl_doc("A"), MIME[RL]), 201))
    assert etag2 != etag1, f"re-created document reused the ETag {etag1}"


def test_head_sends_no_body_on_the_wire(server, alice):
    """HEAD checked on a raw socket, so that a body sent anyway is seen."""
    path = doc_path(RL, ALICE)
    body = rl_doc("Head")
    etag = expect_etag(expect(alice.put(path, body, MIME[RL]), 201))
    auth = alice.authorization("HEAD", path)
    raw = raw_exchange(server.port,
                       f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
                       "Connection: close\r\n\r\n".encode())
    status, headers, rest = parse_raw_response(raw)
    assert status == 200, f"expected 200, got {raw!r}"
    hd = {k.lower(): v for k, v in headers}
    assert hd.get("etag") == etag, f"expected ETag {etag}, got {hd.get('etag')!r}"
    assert hd.get("content-type") == MIME[RL]
    assert rest == b"", f"HEAD response carried {len(rest)} body bytes: {rest[:200]!r}"


def test_documents_in_subdirectories(alice):
    body1 = rl_doc("Deep")
    body2 = rl_doc("Deeper")
    p1 = doc_path(RL, ALICE, "dir1/doc.xml")
    p2 = doc_path(RL, ALICE, "dir1/dir2/doc.xml")
    e1 = expect_etag(expect(alice.put(p1, body1, MIME[RL]), 201))
    e2 = expect_etag(expect(alice.put(p2, body2, MIME[RL]), 201))
    assert e1 != e2
    r = expect(alice.get(p1), 200)
    assert r.body == body1 and r.etag == e1
    r = expect(alice.get(p2), 200)
    assert r.body == body2 and r.etag == e2
    # A directory is not a document.
    expect(alice.get(doc_path(RL, ALICE, "dir1")), 404)
    expect(alice.get(doc_path(RL, ALICE, "dir1/dir2")), 404)
    # Deleting one leaves the other.
    expect(alice.delete(p1), 200)
    expect(alice.get(p1), 404)
    r = expect(alice.get(p2), 200)
    assert r.body == body2


def test_documents_are_separate_per_user_auid_and_name(server, alice, bob):
    a_index = rl_doc("alice index")
    a_other = rl_doc("alice other")
    b_index = rl_doc("bob index")
    expect(alice.put(doc_path(RL, ALICE), a_index, MIME[RL]), 201)
    expect(alice.put(doc_path(RL, ALICE, "other"), a_other, MIME[RL]), 201)
    expect(bob.put(doc_path(RL, BOB), b_index, MIME[RL]), 201)
    assert alice.get(doc_path(RL, ALICE)).body == a_index
    assert alice.get(doc_path(RL, ALICE, "other")).body == a_other
    assert bob.get(doc_path(RL, BOB)).body == b_index
    # Same user, other AUID: nothing there.
    expect(alice.get(doc_path(PCC, ALICE)), 404)


def test_tel_user_documents(server):
    carol = server.client(CAROL)
    path = doc_path(PCC, CAROL)
    body = data("pcc-mediatek-style.xml")
    etag = expect_etag(expect(carol.put(path, body, MIME[PCC]), 201))
    r = expect(carol.get(path), 200)
    assert r.body == body and r.etag == etag


def test_percent_encoded_xui_names_the_same_document(alice):
    """SPEC §1.1: XUIs are percent-decoded before comparison."""
    encoded = doc_path(RL, "sip%3Aalice%40example.com")
    plain = doc_path(RL, ALICE)
    body = rl_doc("Encoded")
    etag = expect_etag(expect(alice.put(encoded, body, MIME[RL]), 201))
    r = expect(alice.get(plain), 200)
    assert r.body == body and r.etag == etag
    r = expect(alice.put(plain, body, MIME[RL]), 200)
    r = expect(alice.get(encoded), 200)
    assert r.body == body


# ---------------------------------------------------------------------------
# Byte exactness: the server stores the bytes it was given.

RLNS = "urn:ietf:params:xml:ns:resource-lists"

BYTE_EXACT = {
    "single-quoted-decl-standalone-no-newline": (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes'?>"
        f"<resource-lists xmlns='{RLNS}'><list name='a'><entry uri='sip:bob@example.com'/>"
        "</list></resource-lists>"
    ).encode(),
    "no-declaration": (
        f'<resource-lists xmlns="{RLNS}"><list name="x"/></resource-lists>\n'
    ).encode(),
    "decl-lowercase-encoding-spaces": (
        '<?xml version = "1.0"   encoding = "utf-8" ?>\n'
        f'<resource-lists xmlns="{RLNS}">\n<list name="l"></list>\n</resource-lists>\n'
    ).encode(),
    "comments-and-processing-instructions": (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- leading comment -->\n"
        '<?app-hint keep="me"?>\n'
        f'<resource-lists xmlns="{RLNS}">\n'
        "  <!-- inside the root -->\n"
        '  <list name="friends"><?inner pi with data?>\n'
        '    <entry uri="sip:bob@example.com"><!-- in entry --><display-name>Bob</display-name></entry>\n'
        "  </list>\n"
        "</resource-lists>\n"
        "<!-- trailing comment -->\n"
        "<?trailing-pi?>"
    ).encode(),
    "cdata-and-entity-references": (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<resource-lists xmlns="{RLNS}">\n'
        '  <list name="Tom &amp; Jerry &#x263A;">\n'
        '    <entry uri="sip:bob@example.com;a=1&amp;b=2"><display-name><![CDATA[<Bob & "Co"> ]]]]><![CDATA[>]]></display-name></entry>\n'
        '    <entry uri="sip:carol@example.com"><display-name>Tom &amp; Jerry &lt;&gt; &quot;&apos; &#x263A; &#9731; &#x1F600;</display-name></entry>\n'
        "  </list>\n"
        "</resource-lists>\n"
    ).encode(),
    "non-ascii-utf8": (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<resource-lists xmlns="{RLNS}">\n'
        '  <list name="友達">\n'
        '    <entry uri="sip:yamada@example.jp"><display-name xml:lang="ja">山田太郎</display-name></entry>\n'
        '    <entry uri="sip:emoji@example.com"><display-name>Smile 😀 café ß Ωμέγα Привет 🇯🇵</display-name></entry>\n'
        "  </list>\n"
        "</resource-lists>\n"
    ).encode("utf-8"),
    "odd-whitespace-crlf-tabs": (
        b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
        b'\t<resource-lists   xmlns="' + RLNS.encode() + b'"\r\n\t\t>\r\n'
        b'\t\t<list\tname = "w"  >  \r\n'
        b'\r\n'
        b'      <entry uri  =  "sip:bob@example.com"\n         />\t\t\r\n'
        b'\t</list   >\r\n'
        b'</resource-lists >\r\n\r\n\t  \n'
    ),
    "namespace-prefixes-and-extensions": (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rl:resource-lists xmlns:rl="{RLNS}" xmlns:ex="urn:example:ext">\n'
        '  <rl:list name="p">\n'
        '    <rl:entry uri="sip:c@example.com" ex:note="x"><rl:display-name>C</rl:display-name><ex:extra a="1">text</ex:extra></rl:entry>\n'
        f'    <entry xmlns="{RLNS}" uri="sip:d@example.com"/>\n'
        "  </rl:list>\n"
        "</rl:resource-lists>"
    ).encode(),
    "minimal-self-closing": f'<resource-lists xmlns="{RLNS}"><list/></resource-lists>'.encode(),
}


@pytest.mark.parametrize("name", sorted(BYTE_EXACT))
def test_byte_exact_round_trip(alice, name):
    body = BYTE_EXACT[name]
    path = doc_path(RL, ALICE, f"exact-{name}")
    etag = expect_etag(expect(alice.put(path, body, MIME[RL]), 201))
    r = expect(alice.get(path), 200)
    assert r.body == body, (
        f"GET did not return the PUT bytes.\nput: {body!r}\ngot: {r.body!r}")
    assert r.etag == etag


def test_byte_exact_large_document(alice):
    """About 120 KB with 1500 entries, non-ASCII on every line."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<resource-lists xmlns="{RLNS}">', '  <list name="big">']
    for i in range(1500):
        lines.append(f'    <entry uri="sip:user{i:05d}@example.com">'
                     f'<display-name>Benutzer Nr. {i} — ü ✓</display-name></entry>')
    lines += ["  </list>", "</resource-lists>", ""]
    body = "\n".join(lines).encode("utf-8")
    assert len(body) > 100_000
    path = doc_path(RL, ALICE, "big")
    etag = expect_etag(expect(alice.put(path, body, MIME[RL]), 201))
    r = expect(alice.get(path), 200)
    assert len(r.body) == len(body), f"expected {len(body)} bytes, got {len(r.body)}"
    assert r.body == body
    assert r.etag == etag


@pytest.mark.parametrize("fixture,auid", [
    ("pcc-alice.xml", PCC), ("pcc-mediatek-style.xml", PCC),
    ("fh-requests.xml", FH), ("subscribe-body.xml", RL),
])
def test_fixtures_round_trip(alice, fixture, auid):
    body = data(fixture)
    path = doc_path(auid, ALICE)
    etag = expect_etag(expect(alice.put(path, body, MIME[auid]), 201))
    r = expect(alice.get(path), 200)
    assert r.body == body and r.etag == etag
