# SPDX-License-Identifier: MIT
"""Element, attribute and namespace-binding resources (RFC 4825 §6.3, §7,
§8.2-§8.4, §10, §11; SPEC §1.2-§1.8), black-box over HTTP.

- the placement table of SPEC §1.5, literally (a descriptor-only usage whose
  root is <root>) and mapped onto resource-lists, byte for byte;
- element GET byte-exact (non-ASCII, comments, PIs, CDATA, references) and
  attribute-predicate values with references and both kinds of quotes;
- attribute GET/PUT/DELETE, namespace::* GET, and the 405 on writing it;
- every error (400, 404, 405, 409 with each <xcap-error> child, 412/304,
  415), each followed by a check that the document is unchanged;
- byte exactness over a sequence of mixed operations on an odd document;
- two clients changing different nodes of one document concurrently;
- the CAB documents: a PCC <tel>, a Feature Handler request and its
  <response> written by the IWF.

Conventions checked (the server's, consistent with RFC 4825): a node write
touches only the bytes of its node. An inserted element goes exactly where
SPEC §1.5 says; an empty parent "<p/>" opens into "<p>...</p>". A new
attribute is appended as ' name="value"' after the last attribute of the
start tag. A deleted attribute takes the white space before it with it; a
deleted element leaves the white space around it.
"""

import re
import threading
import urllib.parse

import pytest
from lxml import etree

from xdmslib import (ALICE, DATA, FH, IWF, MIME, PCC, RL, RL_NS, TRUSTED_PEER, XCAP_ERROR_NS, Client,
                     data, doc_path, expect, expect_etag, expect_xcap_error)

EL = "application/xcap-el+xml"
ATT = "application/xcap-att+xml"
NSB = "application/xcap-ns+xml"
FH_NS = "urn:oma:xml:cab:feature-handler"
PCC_NS = "urn:oma:xml:cab:pcc"
FH_RESPONSE_PHRASE = "response elements are written by the CAB server only"


def assert_fh_phrase(child):
    """SPEC's phrase, then the request it is about (its id in quotes)."""
    phrase = child.get("phrase") or ""
    assert phrase.startswith(FH_RESPONSE_PHRASE) and re.search(r'request "[^"]+"', phrase), phrase

RL_PATH = doc_path(RL, ALICE)


# ---------------------------------------------------------------------------
# Helpers


def enc(selector):
    """A node selector percent-encoded for the request path (RFC 4825 §6.3):
    '[' ']' '"' space '#' '%' '<' '>' and every non-ASCII byte (as UTF-8)
    become %XX; the other characters of a path segment stay as they are."""
    return urllib.parse.quote(selector, safe="/@:=*'!$&+,;~()")


def node(path, selector, query=None):
    """The URI of a node: document URI, "/~~/", the encoded selector, and the
    namespace bindings (e.g. "xmlns(p=urn:x)") as the query."""
    uri = f"{path}/~~/{enc(selector)}"
    return f"{uri}?{query}" if query else uri


def iwf_client(server):
    """The CAB IWF: a trusted server identity asserted from a trusted peer."""
    return Client(server, source_address=TRUSTED_PEER,
                  headers={"X-3GPP-Asserted-Identity": f'"{IWF}"'})


def no_net_parser():
    return etree.XMLParser(resolve_entities=False, no_network=True)


def put_doc(client, path, body, mime=MIME[RL], status=201):
    """PUTs a whole document; returns its ETag."""
    r = client.put(path, body, mime)
    assert r.status == status, f"document PUT: expected {status}, got {r.describe()}"
    return expect_etag(r)


def assert_doc(client, path, body, etag=None, what="the document"):
    """GETs the document and compares its bytes (and ETag when given)."""
    r = expect(client.get(path), 200)
    assert r.body == body, (f"{what}: bytes differ.\n expected: {body!r}\n got:      {r.body!r}")
    if etag is not None:
        assert r.etag == etag, f"{what}: expected ETag {etag}, got {r.etag!r}"
    return r.etag


def assert_unchanged(client, path, body, etag, after):
    r = expect(client.get(path), 200)
    assert r.body == body, (f"after a refused {after}: the document changed.\n expected: {body!r}\n"
                            f" got:      {r.body!r}")
    assert r.etag == etag, f"after a refused {after}: the ETag changed from {etag} to {r.etag}"


def expect_get(client, uri, body, ctype, etag):
    """GET of a node: 200, exactly @body, @ctype and the document's ETag."""
    r = client.get(uri)
    assert r.status == 200, f"GET {uri}: expected 200, got {r.describe()}"
    assert r.body == body, f"GET {uri}:\n expected body {body!r}\n got           {r.body!r}"
    assert r.content_type == ctype, f"GET {uri}: expected Content-Type {ctype}, got {r.content_type!r}"
    assert r.etag == etag, f"GET {uri}: expected the document's ETag {etag}, got {r.etag!r}"
    return r


def write(client, method, uri, body=None, ctype=None, status=200, old_etag=None):
    """A node PUT/DELETE that must succeed with @status and a new ETag."""
    r = client.request(method, uri, body=body, content_type=ctype)
    assert r.status == status, f"{method} {uri}: expected {status}, got {r.describe()}"
    etag = expect_etag(r)
    if old_etag is not None:
        assert etag != old_etag, f"{method} {uri}: the ETag did not change ({etag}); every write needs a new one"
    return etag


def splice1(doc, old, new):
    """doc with the one occurrence of @old replaced by @new."""
    n = doc.count(old)
    assert n == 1, f"test bug: {old!r} occurs {n} times in {doc!r}"
    return doc.replace(old, new)


# ---------------------------------------------------------------------------
# 1. SPEC §1.5: where a new element goes

GENERIC = "com.example.generic"
GENERIC_NS = "urn:example:xml:generic"
GENERIC_MIME = "application/vnd.example.generic+xml"
GENERIC_XSD = f"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema targetNamespace="{GENERIC_NS}" xmlns:xs="http://www.w3.org/2001/XMLSchema"
    elementFormDefault="qualified">
  <xs:element name="root">
    <xs:complexType>
      <xs:sequence>
        <xs:any namespace="##any" processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:anyAttribute namespace="##any" processContents="skip"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""
GENERIC_AUID = (f"; SPEC 1.5's <root> document, any children\n[auid]\nname = {GENERIC}\n"
                f"namespace = {GENERIC_NS}\nmime = {GENERIC_MIME}\nschema = example-generic.xsd\n"
                "root = root\netag_prefix = generic\n")

# The SPEC §1.5 starting document, in the usage's namespace.
G_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<root xmlns="{GENERIC_NS}">'
G_TAIL = "</root>\n"
G_DOC = '<el1 att="first"/><el1 att="second"/><!--c--><el2 att="first"/>'

# The same rows on resource-lists: <root> is list[@name="l"] (a list's
# children may come in any order), el1 is entry/@uri, el2 is entry-ref/@ref.
R_HEAD = f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}"><list name="l">'
R_TAIL = "</list></resource-lists>\n"
R_DOC = '<entry uri="first"/><entry uri="second"/><!--c--><entry-ref ref="first"/>'
R_ROOT = 'resource-lists/list[@name="l"]'

THIRD = '<el1 att="third"/>'
AFTER_EL1 = '<el1 att="first"/><el1 att="second"/><el1 att="third"/><!--c--><el2 att="first"/>'
R_THIRD = '<entry uri="third"/>'
R_AFTER_ENTRY = '<entry uri="first"/><entry uri="second"/><entry uri="third"/><!--c--><entry-ref ref="first"/>'

# (id, last steps, body, expected status, children after the PUT or the
# <xcap-error> child). Statuses 201 are insertions; the DELETE of the same URI
# must then give the starting document back.
GENERIC_ROWS = [
    ("after-last-el1", 'el1[@att="third"]', THIRD, 201, AFTER_EL1),
    ("el1-position-3", 'el1[3][@att="third"]', THIRD, 201, AFTER_EL1),
    ("star-position-3", '*[3][@att="third"]', THIRD, 201, AFTER_EL1),
    ("new-name-appended", "el3", '<el3 att="first"/>', 201,
     '<el1 att="first"/><el1 att="second"/><!--c--><el2 att="first"/><el3 att="first"/>'),
    ("el2-position-1-before-existing", 'el2[1][@att="2"]', '<el2 att="2"/>', 201,
     '<el1 att="first"/><el1 att="second"/><!--c--><el2 att="2"/><el2 att="first"/>'),
    ("star-position-2", '*[2][@att="2"]', '<el2 att="2"/>', 201,
     '<el1 att="first"/><el2 att="2"/><el1 att="second"/><!--c--><el2 att="first"/>'),
    ("star-name-from-body-new", '*[@att="2"]', '<el3 att="2"/>', 201,
     '<el1 att="first"/><el1 att="second"/><!--c--><el2 att="first"/><el3 att="2"/>'),
    ("star-name-from-body-el1", '*[@att="2"]', '<el1 att="2"/>', 201,
     '<el1 att="first"/><el1 att="second"/><el1 att="2"/><!--c--><el2 att="first"/>'),
    ("star-position-1", '*[1][@att="0"]', '<el0 att="0"/>', 201,
     '<el0 att="0"/><el1 att="first"/><el1 att="second"/><!--c--><el2 att="first"/>'),
    ("replace-keeps-place", 'el1[@att="second"]', '<el1 att="second">x</el1>', 200,
     '<el1 att="first"/><el1 att="second">x</el1><!--c--><el2 att="first"/>'),
    ("el1-position-4-impossible", 'el1[4][@att="third"]', THIRD, 409, "cannot-insert"),
    ("star-position-5-impossible", "*[5]", "<el1/>", 409, "cannot-insert"),
    ("star-position-0", '*[0][@att="third"]', THIRD, 409, "cannot-insert"),
    ("el1-position-0", "el1[0]", "<el1/>", 409, "cannot-insert"),
    ("body-contradicts-predicate", 'el1[@att="third"]', '<el1 att="fourth"/>', 409, "cannot-insert"),
    ("replacement-not-selected", 'el1[@att="first"]', THIRD, 409, "cannot-insert"),
    ("body-name-differs", "el3", "<el4/>", 409, "cannot-insert"),
]

RL_ROWS = [
    ("after-last-entry", 'entry[@uri="third"]', R_THIRD, 201, R_AFTER_ENTRY),
    ("entry-position-3", 'entry[3][@uri="third"]', R_THIRD, 201, R_AFTER_ENTRY),
    ("star-position-3", '*[3][@uri="third"]', R_THIRD, 201, R_AFTER_ENTRY),
    ("new-name-appended", "external", '<external anchor="http://a.example/first"/>', 201,
     R_DOC + '<external anchor="http://a.example/first"/>'),
    ("entry-ref-position-1-before-existing", 'entry-ref[1][@ref="2"]', '<entry-ref ref="2"/>', 201,
     '<entry uri="first"/><entry uri="second"/><!--c--><entry-ref ref="2"/><entry-ref ref="first"/>'),
    ("star-position-2", '*[2][@ref="2"]', '<entry-ref ref="2"/>', 201,
     '<entry uri="first"/><entry-ref ref="2"/><entry uri="second"/><!--c--><entry-ref ref="first"/>'),
    ("star-name-from-body-entry", '*[@uri="x"]', '<entry uri="x"/>', 201,
     '<entry uri="first"/><entry uri="second"/><entry uri="x"/><!--c--><entry-ref ref="first"/>'),
    ("star-name-from-body-new", '*[@name="n"]', '<list name="n"/>', 201, R_DOC + '<list name="n"/>'),
    ("entry-position-4-impossible", 'entry[4][@uri="third"]', R_THIRD, 409, "cannot-insert"),
    ("star-position-0", '*[0][@uri="third"]', R_THIRD, 409, "cannot-insert"),
    ("entry-position-0", 'entry[0][@uri="third"]', R_THIRD, 409, "cannot-insert"),
    ("body-contradicts-predicate", 'entry[@uri="third"]', '<entry uri="fourth"/>', 409, "cannot-insert"),
    ("replacement-not-selected", 'entry[@uri="first"]', '<entry uri="third"/>', 409, "cannot-insert"),
]


@pytest.fixture
def generic_server(start_server, tmp_path):
    d = tmp_path / "auids"
    d.mkdir()
    (d / "example-generic.xsd").write_text(GENERIC_XSD, encoding="utf-8")
    (d / "example-generic.auid").write_text(GENERIC_AUID, encoding="utf-8")
    return start_server(settings={"xcap.descriptor_dir": str(d)})


def run_placement_row(client, path, head, tail, start, root_sel, mime, row):
    _, last, body, status, want = row
    original = (head + start + tail).encode()
    etag0 = put_doc(client, path, original, mime)
    uri = node(path, f"{root_sel}/{last}")
    r = client.put(uri, body.encode(), EL)
    if status == 400:
        assert r.status == 400, f"PUT {root_sel}/{last}: expected 400 (malformed selector), got {r.describe()}"
        assert_unchanged(client, path, original, etag0, "PUT")
        return
    if status == 409:
        expect_xcap_error(r, want, need_phrase=True)
        assert_unchanged(client, path, original, etag0, "PUT")
        return
    assert r.status == status, f"PUT {root_sel}/{last} {body}: expected {status}, got {r.describe()}"
    etag1 = expect_etag(r)
    assert etag1 != etag0, f"PUT {last}: the document ETag did not change"
    assert_doc(client, path, (head + want + tail).encode(), etag1, f"after PUT {root_sel}/{last} {body}")
    expect_get(client, uri, body.encode(), EL, etag1)
    if status == 201:
        # DELETE of the same URI takes the new element out again, exactly.
        etag2 = write(client, "DELETE", uri, old_etag=etag1)
        assert_doc(client, path, original, etag2, f"after DELETE {root_sel}/{last}")
        r = client.get(uri)
        assert r.status == 404, f"GET after DELETE {last}: expected 404, got {r.describe()}"


@pytest.mark.parametrize("row", GENERIC_ROWS, ids=[r[0] for r in GENERIC_ROWS])
def test_placement_table_literal(generic_server, row):
    """SPEC §1.5 with its own <root> document (a descriptor-only usage)."""
    alice = generic_server.client(ALICE)
    run_placement_row(alice, doc_path(GENERIC, ALICE), G_HEAD, G_TAIL, G_DOC, "root", GENERIC_MIME, row)


@pytest.mark.parametrize("row", RL_ROWS, ids=[r[0] for r in RL_ROWS])
def test_placement_table_resource_lists(alice, row):
    """SPEC §1.5 mapped onto a resource-lists <list>."""
    run_placement_row(alice, RL_PATH, R_HEAD, R_TAIL, R_DOC, R_ROOT, MIME[RL], row)


def test_insert_into_empty_parent_and_first_position(alice):
    """An empty "<list .../>" opens up; n = 1 goes before the first match;
    *[1][@xml:lang="en"] puts a <display-name> first, where the schema wants it."""
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}">'
    start = head + '<list name="a"><entry uri="sip:x@example.com"/></list><list name="b" /></resource-lists>'
    etag = put_doc(alice, RL_PATH, start.encode())
    cur = start

    etag = write(alice, "PUT", node(RL_PATH, 'resource-lists/list[@name="b"]/entry[@uri="sip:y@example.com"]'),
                 b'<entry uri="sip:y@example.com"/>', EL, 201, etag)
    cur = splice1(cur, '<list name="b" />', '<list name="b" ><entry uri="sip:y@example.com"/></list>')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after an insertion into an empty <list/>")

    etag = write(alice, "PUT", node(RL_PATH, 'resource-lists/list[@name="a"]/entry[1][@uri="sip:w@example.com"]'),
                 b'<entry uri="sip:w@example.com"/>', EL, 201, etag)
    cur = splice1(cur, '<list name="a"><entry uri="sip:x', '<list name="a"><entry uri="sip:w@example.com"/>'
                  '<entry uri="sip:x')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after entry[1] inserted before the first entry")

    dn_first = node(RL_PATH, 'resource-lists/list[@name="a"]/*[1][@xml:lang="en"]')
    etag = write(alice, "PUT", dn_first, b'<display-name xml:lang="en">A</display-name>', EL, 201, etag)
    cur = splice1(cur, '<list name="a">', '<list name="a"><display-name xml:lang="en">A</display-name>')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after *[1] inserted a <display-name> first")

    # Without a position a new <display-name> would be the last child, which
    # the resource-lists schema does not allow.
    r = alice.put(node(RL_PATH, 'resource-lists/list[@name="b"]/display-name'), b"<display-name>B</display-name>", EL)
    expect_xcap_error(r, "schema-validation-error", need_phrase=True)
    assert_unchanged(alice, RL_PATH, cur.encode(), etag, "PUT of a misplaced <display-name>")

    # White space around the body is not part of the element.
    etag = write(alice, "PUT", node(RL_PATH, 'resource-lists/list[@name="a"]/entry[@uri="sip:z@example.com"]'),
                 b'\r\n  <entry uri="sip:z@example.com"/>\n', EL, 201, etag)
    cur = splice1(cur, '<entry uri="sip:x@example.com"/>',
                  '<entry uri="sip:x@example.com"/><entry uri="sip:z@example.com"/>')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after a PUT with white space around the body")


# ---------------------------------------------------------------------------
# 2. Element GET, byte-exact; predicate values

EXACT_DOC = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<!-- Alice's lists -->\n"
    f'<resource-lists xmlns="{RL_NS}">\n'
    '  <list name="say &quot;hi&quot;">\n'
    '    <display-name xml:lang="de">Grüße &amp; Küsse ☺</display-name>\n'
    '    <entry uri="sip:jörg@example.com"><display-name>Jörg <![CDATA[<Jö> & "co" ]]>'
    '<!-- nick --><?app hint="x"?>&#x263A;&lt;&gt;</display-name></entry>\n'
    "    <entry uri='sip:o&apos;brien@example.com'/>\n"
    '    <entry uri="sip:a&amp;b@example.com" />\n'
    "  </list>\n"
    "  <list name='Tom &amp; Jerry&apos;s'>\n"
    '    <entry uri="sip:tom@example.com"/>\n'
    "  </list>\n"
    "</resource-lists>\n"
)
JOERG = ('<entry uri="sip:jörg@example.com"><display-name>Jörg <![CDATA[<Jö> & "co" ]]>'
         '<!-- nick --><?app hint="x"?>&#x263A;&lt;&gt;</display-name></entry>')
JOERG_DN = ('<display-name>Jörg <![CDATA[<Jö> & "co" ]]><!-- nick --><?app hint="x"?>'
            "&#x263A;&lt;&gt;</display-name>")
OBRIEN = "<entry uri='sip:o&apos;brien@example.com'/>"
AMP = '<entry uri="sip:a&amp;b@example.com" />'
TOM_LIST = "<list name='Tom &amp; Jerry&apos;s'>\n    <entry uri=\"sip:tom@example.com\"/>\n  </list>"
TOM = '<entry uri="sip:tom@example.com"/>'
L1 = 'resource-lists/list[@name="say &quot;hi&quot;"]'

EXACT_GETS = [
    ('resource-lists/list[1]/entry[@uri="sip:jörg@example.com"]', JOERG),
    (L1 + "/entry[1]/display-name", JOERG_DN),
    ("resource-lists/list[@name='say \"hi\"']/entry[1]", JOERG),
    (L1 + "/display-name", '<display-name xml:lang="de">Grüße &amp; Küsse ☺</display-name>'),
    (L1 + "/entry[@uri=\"sip:o'brien@example.com\"]", OBRIEN),
    (L1 + "/entry[@uri='sip:o&apos;brien@example.com']", OBRIEN),
    (L1 + '/entry[@uri="sip:o&#39;brien@example.com"]', OBRIEN),
    (L1 + '/entry[@uri="sip:a&amp;b@example.com"]', AMP),
    (L1 + "/entry[@uri='sip:a&#x26;b@example.com']", AMP),
    (L1 + "/entry[3]", AMP),
    ('resource-lists/list[@name="Tom &amp; Jerry\'s"]', TOM_LIST),
    ("resource-lists/list[@name='Tom &amp; Jerry&apos;s']/entry", TOM),
    ("resource-lists/*[2]/*[1]", TOM),
    ("resource-lists/list[2][@name=\"Tom &amp; Jerry's\"]/entry[1][@uri=\"sip:tom@example.com\"]", TOM),
    ("resource-lists", EXACT_DOC[EXACT_DOC.index("<resource-lists"):EXACT_DOC.rindex(">") + 1]),
]

EXACT_MISSES = [
    'resource-lists/list[1]/entry[@uri="sip:jorg@example.com"]',     # no umlaut
    'resource-lists/list[1]/entry[@uri="sip:a&amp;amp;b@example.com"]',
    "resource-lists/list[@name='say hi']",
    'resource-lists/list[1]/entry[1][@uri="sip:a&amp;b@example.com"]',  # position first, then the test
    "resource-lists/list",                                          # two lists
    "resource-lists/list[1]/entry",                                 # three entries
    "resource-lists/*",
    "resource-lists/list[3]",
    "resource-lists[2]",
    "other-root",
    "resource-lists/list[1]/entry[4]",
]


def test_element_get_exact_bytes(alice):
    body = EXACT_DOC.encode()
    etag = put_doc(alice, RL_PATH, body)
    for selector, want in EXACT_GETS:
        expect_get(alice, node(RL_PATH, selector), want.encode(), EL, etag)
    for selector in EXACT_MISSES:
        r = alice.get(node(RL_PATH, selector))
        assert r.status == 404, f"GET {selector}: expected 404 (selects no single element), got {r.describe()}"
    assert_doc(alice, RL_PATH, body, etag)


def test_attribute_get_returns_the_value_as_written(alice):
    etag = put_doc(alice, RL_PATH, EXACT_DOC.encode())
    for selector, want in [
        ("resource-lists/list[1]/@name", "say &quot;hi&quot;"),
        ("resource-lists/list[2]/@name", "Tom &amp; Jerry&apos;s"),
        (L1 + "/display-name/@xml:lang", "de"),
        (L1 + "/entry[1]/@uri", "sip:jörg@example.com"),
        (L1 + "/entry[3]/@uri", "sip:a&amp;b@example.com"),
        (L1 + "/entry[2]/@uri", "sip:o&apos;brien@example.com"),
    ]:
        expect_get(alice, node(RL_PATH, selector), want.encode(), ATT, etag)
    for selector in [L1 + "/@uri", L1 + "/entry[1]/@name", "resource-lists/list/@name",
                     L1 + "/entry[1]/@xml:lang"]:
        r = alice.get(node(RL_PATH, selector))
        assert r.status == 404, f"GET {selector}: expected 404, got {r.describe()}"


# ---------------------------------------------------------------------------
# 3. Attributes and namespace bindings

def test_attribute_put_and_delete(alice):
    start = (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}">\n'
             '  <list name="work">\n'
             '    <entry uri="sip:a@example.com"><display-name>A</display-name></entry>\n'
             "    <entry uri='sip:b@example.com'/>\n"
             "  </list>\n  <list/>\n</resource-lists>\n")
    etag = put_doc(alice, RL_PATH, start.encode())
    cur = start
    dn = node(RL_PATH, 'resource-lists/list[@name="work"]/entry[@uri="sip:a@example.com"]/display-name/@xml:lang')

    # Add (201), then read it back.
    etag = write(alice, "PUT", dn, b"en", ATT, 201, etag)
    cur = splice1(cur, "<display-name>A", '<display-name xml:lang="en">A')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after adding xml:lang")
    expect_get(alice, dn, b"en", ATT, etag)
    # Replace (200).
    etag = write(alice, "PUT", dn, b"en-GB", ATT, 200, etag)
    cur = splice1(cur, 'xml:lang="en"', 'xml:lang="en-GB"')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after replacing xml:lang")
    # Replace in single quotes: the quote is kept.
    b_uri = node(RL_PATH, "resource-lists/list[1]/entry[2]/@uri")
    etag = write(alice, "PUT", b_uri, b"sip:b2@example.com", ATT, 200, etag)
    cur = splice1(cur, "uri='sip:b@example.com'", "uri='sip:b2@example.com'")
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after replacing a single-quoted value")
    # Add to an element without attributes (201), with references kept as sent.
    name = node(RL_PATH, "resource-lists/list[2]/@name")
    etag = write(alice, "PUT", name, b"Tom &amp; Jerry&apos;s &lt;3", ATT, 201, etag)
    cur = splice1(cur, "<list/>", '<list name="Tom &amp; Jerry&apos;s &lt;3"/>')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after adding a name with references")
    expect_get(alice, name, b"Tom &amp; Jerry&apos;s &lt;3", ATT, etag)
    expect_get(alice, node(RL_PATH, "resource-lists/list[@name=\"Tom &amp; Jerry's &lt;3\"]"),
               b'<list name="Tom &amp; Jerry&apos;s &lt;3"/>', EL, etag)
    # A value with a literal '"': GET returns it exactly, the stored value is right.
    etag = write(alice, "PUT", name, b'say "hi"', ATT, 200, etag)
    expect_get(alice, name, b'say "hi"', ATT, etag)
    r = expect(alice.get(RL_PATH), 200)
    lists = etree.fromstring(r.body, no_net_parser()).findall(f"{{{RL_NS}}}list")
    assert lists[1].get("name") == 'say "hi"', f"stored name is {lists[1].get('name')!r}: {r.body!r}"
    cur = r.body.decode()
    # DELETE (200): the attribute and the white space before it go.
    etag = write(alice, "DELETE", dn, old_etag=etag)
    cur = splice1(cur, ' xml:lang="en-GB"', "")
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after deleting xml:lang")
    r = alice.get(dn)
    assert r.status == 404, f"GET of a deleted attribute: expected 404, got {r.describe()}"
    r = alice.delete(dn)
    assert r.status == 404, f"DELETE of a missing attribute: expected 404, got {r.describe()}"
    assert_unchanged(alice, RL_PATH, cur.encode(), etag, "DELETE of a missing attribute")
    # The attribute that selects the element: deleting it is fine (GET gives 404 afterwards).
    etag = write(alice, "DELETE", node(RL_PATH, 'resource-lists/list[@name="work"]/@name'), old_etag=etag)
    cur = splice1(cur, '<list name="work">', "<list>")
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after deleting list/@name")


def test_attribute_put_must_keep_selecting_the_element(alice):
    start = rl_abc()
    etag = put_doc(alice, RL_PATH, start)
    # GET(PUT(x)) would be 404: the predicate no longer matches.
    r = alice.put(node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="a"]/@uri'), b"z", ATT)
    expect_xcap_error(r, "cannot-insert", need_phrase=True)
    assert_unchanged(alice, RL_PATH, start, etag, "attribute PUT that changes the selecting predicate")
    # The same value again is fine (200) and changes nothing but the ETag.
    etag = write(alice, "PUT", node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="a"]/@uri'), b"a",
                 ATT, 200, etag)
    assert_doc(alice, RL_PATH, start, etag)


NS_DOC = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<rl:resource-lists xmlns:rl="{RL_NS}" xmlns:x="urn:example:x">\n'
    '  <rl:list name="a" xmlns:x="urn:example:x2" xmlns:y="urn:example:y?a=1&amp;b=2">\n'
    '    <rl:entry uri="sip:a@example.com" x:tag="t"/>\n'
    "  </rl:list>\n"
    "</rl:resource-lists>\n"
)


def check_bindings(body, qname, bindings):
    # (lxml with resolve_entities=False reports "&amp;" in an xmlns value as "&#38;".)
    root = etree.fromstring(body, etree.XMLParser(no_network=True))
    prefix, local = qname.split(":") if ":" in qname else (None, qname)
    assert root.prefix == prefix and etree.QName(root).localname == local, \
        f"namespace bindings: expected an element <{qname}>, got {body!r}"
    assert dict(root.nsmap) == bindings, f"namespace bindings: expected {bindings}, got {dict(root.nsmap)}: {body!r}"
    assert not root.attrib and len(root) == 0 and not root.text, f"expected an empty element, got {body!r}"


def test_namespace_bindings_get(alice):
    etag = put_doc(alice, RL_PATH, NS_DOC.encode())
    inner = {"rl": RL_NS, "x": "urn:example:x2", "y": "urn:example:y?a=1&b=2"}
    for selector, qname, bindings in [
        ("resource-lists/namespace::*", "rl:resource-lists", {"rl": RL_NS, "x": "urn:example:x"}),
        ('resource-lists/list[@name="a"]/namespace::*', "rl:list", inner),
        ("resource-lists/list/entry/namespace::*", "rl:entry", inner),
    ]:
        r = alice.get(node(RL_PATH, selector))
        assert r.status == 200, f"GET {selector}: expected 200, got {r.describe()}"
        assert r.content_type == NSB, f"GET {selector}: expected {NSB}, got {r.content_type!r}"
        assert r.etag == etag, f"GET {selector}: expected the document's ETag {etag}, got {r.etag!r}"
        check_bindings(r.body, qname, bindings)
    # The same element through a prefix of the client's choosing.
    r = expect(alice.get(node(RL_PATH, "p:resource-lists/p:list/namespace::*", f"xmlns(p={RL_NS})")), 200)
    check_bindings(r.body, "rl:list", inner)
    r = alice.get(node(RL_PATH, 'resource-lists/list[@name="zz"]/namespace::*'))
    assert r.status == 404, f"namespace::* of no element: expected 404, got {r.describe()}"
    # An attribute in a namespace, through the binding in the query.
    expect_get(alice, node(RL_PATH, "resource-lists/list/entry/@p:tag", "xmlns(p=urn:example:x2)"), b"t", ATT, etag)
    r = alice.get(node(RL_PATH, "resource-lists/list/entry/@p:tag", "xmlns(p=urn:example:x)"))
    assert r.status == 404, f"@p:tag in urn:example:x (the outer x): expected 404, got {r.describe()}"


def test_namespace_bindings_exact_and_read_only(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    uri = node(RL_PATH, 'resource-lists/list[@name="l"]/namespace::*')
    expect_get(alice, uri, f'<list xmlns="{RL_NS}"/>'.encode(), NSB, etag)
    expect_get(alice, node(RL_PATH, 'resource-lists/list[@name="l"]/entry[1]/namespace::*'),
               f'<entry xmlns="{RL_NS}"/>'.encode(), NSB, etag)
    for method, payload, ctype in [("PUT", f'<list xmlns="{RL_NS}"/>'.encode(), NSB),
                                   ("PUT", f'<list xmlns="{RL_NS}"/>'.encode(), EL),
                                   ("DELETE", None, None)]:
        r = alice.request(method, uri, body=payload, content_type=ctype)
        assert r.status == 405, f"{method} namespace::* ({ctype}): expected 405, got {r.describe()}"
        assert r.header("Allow") == "GET, HEAD", \
            f"{method} namespace::*: expected 'Allow: GET, HEAD', got {r.header('Allow')!r}"
        assert_unchanged(alice, RL_PATH, body, etag, f"{method} of namespace::*")


# ---------------------------------------------------------------------------
# 4. Errors

def rl_abc(extra_lists=""):
    """list "l" with entries a, b, c (and more lists after it)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}">'
            '<list name="l"><entry uri="a"/><entry uri="b"/><entry uri="c"/></list>'
            f"{extra_lists}</resource-lists>\n").encode()


MALFORMED = [
    ('resource-lists/list[]', None),
    ('resource-lists/list[-1]', None),
    ('resource-lists/list[1.5]', None),
    ('resource-lists/list[last()]', None),
    ('resource-lists/list[@name=l]', None),                     # unquoted value
    ('resource-lists/list[@name="l]', None),                    # unclosed quote
    ('resource-lists/list[@name="l"', None),                    # unclosed bracket
    ('resource-lists/list[@name="a&b"]', None),                 # bare '&' in an AttValue
    ('resource-lists/list[@name="l"][1]', None),                # predicates in the wrong order
    ('resource-lists/list[1][@name="l"][@x="y"]', None),
    ('resource-lists//list', None),
    ('resource-lists/list/', None),
    ('/resource-lists/list', None),
    ('resource-lists/list/text()', None),
    ('resource-lists/list/@', None),
    ('resource-lists/list/@name/x', None),
    ('resource-lists/list/namespace::x', None),
    ('resource-lists/ list', None),
    ('p:resource-lists/p:list', None),                          # unbound prefix
    ('p:resource-lists/p:list', f"xmlns(q={RL_NS})"),           # bound another prefix only
    ('resource-lists/list/@p:name', None),
    ('resource-lists/list', "xmlns(p="),                        # malformed bindings
    ('resource-lists/list', "foo=bar"),
]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_malformed_selector_is_400(alice, method):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    for selector, query in MALFORMED:
        uri = node(RL_PATH, selector, query)
        ctype = ATT if "@" in selector.split("/")[-1] else EL
        payload = b"v" if ctype == ATT else b'<list name="x"/>'
        r = alice.request(method, uri, body=payload if method == "PUT" else None,
                          content_type=ctype if method == "PUT" else None)
        assert r.status == 400, f"{method} {selector} ?{query}: expected 400, got {r.describe()}"
        if method != "GET":
            assert_unchanged(alice, RL_PATH, body, etag, f"{method} {selector} ?{query}")


def test_no_match_is_404(alice):
    body = rl_abc('<list name="m"><entry uri="a"/></list>')
    etag = put_doc(alice, RL_PATH, body)
    misses = [
        'resource-lists/list[@name="nope"]',
        "resource-lists/list",                          # two lists
        "resource-lists/*",
        "resource-lists/list/entry",                    # four entries
        'resource-lists/list/entry[@uri="a"]',          # one in each list
        "resource-lists/list[3]",
        "resource-lists[2]",
        "other-root",
        'resource-lists/list[@name="l"]/entry[4]',
        'resource-lists/list[1][@name="m"]',
        'resource-lists/list[@name="l"]/@nope',
        'resource-lists/list[@name="l"]/entry[1]/@name',
        "resource-lists/list/@name",                    # two elements
        "p:resource-lists",                             # another namespace
    ]
    for selector in misses:
        query = "xmlns(p=urn:example:other)" if selector.startswith("p:") else None
        uri = node(RL_PATH, selector, query)
        r = alice.get(uri)
        assert r.status == 404, f"GET {selector}: expected 404, got {r.describe()}"
        r = alice.delete(uri)
        assert r.status == 404, f"DELETE {selector}: expected 404, got {r.describe()}"
        assert_unchanged(alice, RL_PATH, body, etag, f"DELETE {selector}")
    # No document at all.
    other = doc_path(RL, ALICE, "nothing-here")
    for selector in ["resource-lists", 'resource-lists/list[@name="l"]', "resource-lists/list/@name",
                     "resource-lists/namespace::*"]:
        r = alice.get(node(other, selector))
        assert r.status == 404, f"GET {selector} in a missing document: expected 404, got {r.describe()}"
        r = alice.delete(node(other, selector))
        expected = 405 if selector.endswith("namespace::*") else 404
        assert r.status == expected, \
            f"DELETE {selector} in a missing document: expected {expected}, got {r.describe()}"
    r = alice.get(other)
    assert r.status == 404, f"a refused write created the document: {r.describe()}"


def test_node_put_into_missing_document_is_no_parent(alice):
    other = doc_path(RL, ALICE, "nothing-here")
    for selector, payload, ctype in [
        ("resource-lists", f'<resource-lists xmlns="{RL_NS}"><list/></resource-lists>'.encode(), EL),
        ('resource-lists/list[@name="l"]', b'<list name="l"/>', EL),
        ('resource-lists/list[@name="l"]/@name', b"l", ATT),
    ]:
        r = alice.put(node(other, selector), payload, ctype)
        expect_xcap_error(r, "no-parent", need_phrase=True)
    r = alice.get(other)
    assert r.status == 404, f"a refused node PUT created the document: {r.describe()}"


def test_no_parent_names_the_closest_existing_ancestor(server, alice):
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}">'
            '<list name="l"><entry uri="a"/></list>'
            '<list name="my fründe"><entry uri="b"/></list></resource-lists>\n').encode()
    etag = put_doc(alice, RL_PATH, body)
    doc_url = server.url(RL_PATH)
    assert doc_url == f"http://127.0.0.1:{server.port}/xcap-root/resource-lists/users/sip:alice@example.com/index"
    cases = [
        ('resource-lists/list[@name="nope"]/entry[@uri="x"]', b'<entry uri="x"/>', EL,
         f"{doc_url}/~~/resource-lists"),
        ('resource-lists/list[@name="l"]/entry[@uri="nope"]/display-name', b"<display-name>x</display-name>", EL,
         f"{doc_url}/~~/resource-lists/list%5B@name=%22l%22%5D"),
        ('resource-lists/list[@name="l"]/list[@name="x"]/list[@name="y"]/entry[@uri="z"]', b'<entry uri="z"/>', EL,
         f"{doc_url}/~~/resource-lists/list%5B@name=%22l%22%5D"),
        ('resource-lists/list[@name="my fründe"]/entry[3]/display-name', b"<display-name>x</display-name>", EL,
         f"{doc_url}/~~/resource-lists/list%5B@name=%22my%20fr%C3%BCnde%22%5D"),
        ('resource-lists/*[2]/entry[1]/x/y', b"<y/>", EL,
         f"{doc_url}/~~/resource-lists/*%5B2%5D/entry%5B1%5D"),
        ('resource-lists/list/entry[@uri="c"]', b'<entry uri="c"/>', EL,  # two possible parents
         f"{doc_url}/~~/resource-lists"),
        ("other-root/list", b"<list/>", EL, doc_url),
        ('resource-lists/list[@name="nope"]/@name', b"x", ATT, f"{doc_url}/~~/resource-lists"),
        ('resource-lists/list[@name="l"]/entry[2]/@uri', b"x", ATT,
         f"{doc_url}/~~/resource-lists/list%5B@name=%22l%22%5D"),
    ]
    for selector, payload, ctype, ancestor in cases:
        r = alice.put(node(RL_PATH, selector), payload, ctype)
        child = expect_xcap_error(r, "no-parent", need_phrase=True)
        anc = child.findall(f"{{{XCAP_ERROR_NS}}}ancestor")
        assert len(anc) == 1, f"PUT {selector}: expected one <ancestor>, got {len(anc)}: {r.describe()}"
        assert anc[0].text == ancestor, \
            f"PUT {selector}: expected <ancestor>{ancestor}</ancestor>, got {anc[0].text!r}"
        # It is a URI of an existing resource: GET it.
        prefix = f"http://127.0.0.1:{server.port}"
        g = alice.get(ancestor[len(prefix):])
        assert g.status == 200, f"GET of the <ancestor> {ancestor}: expected 200, got {g.describe()}"
    assert_unchanged(alice, RL_PATH, body, etag, "PUTs without a parent")


def test_no_parent_ancestor_with_prefixes_is_resolvable(server, alice):
    """RFC 4825 §11: <ancestor> is an HTTP URI of the closest existing
    ancestor. When the request's selector uses prefixes, that URI only points
    to the element if it carries the xmlns() bindings too."""
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    selector = 'r:resource-lists/r:list[@name="l"]/r:entry[@uri="nope"]/r:display-name'
    r = alice.put(node(RL_PATH, selector, f"xmlns(r={RL_NS})"), b"<display-name>x</display-name>", EL)
    child = expect_xcap_error(r, "no-parent", need_phrase=True)
    anc = child.find(f"{{{XCAP_ERROR_NS}}}ancestor")
    assert anc is not None, f"expected an <ancestor>: {r.describe()}"
    prefix = f"http://127.0.0.1:{server.port}{RL_PATH}/~~/"
    assert anc.text.startswith(prefix), f"expected the <ancestor> to start with {prefix}, got {anc.text!r}"
    g = alice.get(anc.text[len(f"http://127.0.0.1:{server.port}"):])
    assert g.status == 200 and g.body == b'<list name="l"><entry uri="a"/><entry uri="b"/><entry uri="c"/></list>', \
        f"GET of the <ancestor> {anc.text}: expected 200 with list l, got {g.describe()}"
    assert_unchanged(alice, RL_PATH, body, etag, "PUT without a parent")


def test_cannot_insert(alice):
    body = rl_abc('<list name="m"/>')
    etag = put_doc(alice, RL_PATH, body)
    for selector, payload in [
        ('resource-lists/list[@name="l"]/entry[@uri="new"]', b'<entry uri="other"/>'),
        ('resource-lists/list[@name="l"]/entry[@uri="new"]', b'<entry/>'),
        ('resource-lists/list[@name="l"]/entry[@uri="new"]', b'<external anchor="new"/>'),
        ('resource-lists/list[@name="l"]/entry[@uri="a"]', b'<entry uri="z"/>'),   # replacement not selected
        ('resource-lists/list[@name="l"]/entry[1]', b'<entry-ref ref="a"/>'),
        ('resource-lists/list[@name="l"]/entry[5]', b'<entry uri="e"/>'),           # position > count + 1
        ('resource-lists/list[@name="l"]/*[5]', b'<entry uri="e"/>'),
        ('resource-lists/list[@name="m"]/entry[2]', b'<entry uri="e"/>'),
        ('resource-lists/list[@name="l"]/entry[@uri="new"]', b'<entry xmlns="urn:example:other" uri="new"/>'),
        # (the last one: same name, other namespace)
    ]:
        r = alice.put(node(RL_PATH, selector), payload, EL)
        expect_xcap_error(r, "cannot-insert", need_phrase=True)
        assert_unchanged(alice, RL_PATH, body, etag, f"PUT {selector} {payload!r}")


def test_cannot_delete(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    for selector in ['resource-lists/list[@name="l"]/entry[2]', 'resource-lists/list[@name="l"]/entry[1]',
                     'resource-lists/list[@name="l"]/*[1]', "resource-lists", "resource-lists[1]"]:
        r = alice.delete(node(RL_PATH, selector))
        expect_xcap_error(r, "cannot-delete", need_phrase=True)
        assert_unchanged(alice, RL_PATH, body, etag, f"DELETE {selector}")
    # The last positional one may go, then the one before it.
    etag = write(alice, "DELETE", node(RL_PATH, 'resource-lists/list[@name="l"]/entry[3]'), old_etag=etag)
    cur = splice1(body.decode(), '<entry uri="c"/>', "")
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after DELETE entry[3]")
    etag = write(alice, "DELETE", node(RL_PATH, 'resource-lists/list[@name="l"]/entry[2]'), old_etag=etag)
    cur = splice1(cur, '<entry uri="b"/>', "")
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after DELETE entry[2]")
    # The result must validate: resource-lists needs one <list>.
    r = alice.delete(node(RL_PATH, 'resource-lists/list[@name="l"]'))
    expect_xcap_error(r, "schema-validation-error", need_phrase=True)
    assert_unchanged(alice, RL_PATH, cur.encode(), etag, "DELETE of the only <list>")


NOT_FRAGS = [
    b'<entry uri="x"/><entry uri="y"/>',
    b"just text",
    b'<entry uri="x">',
    b'<entry uri="x"></list>',
    b'<entry uri="x"/>trailing',
    b'<!--c--><entry uri="x"/>',
    b'<?xml version="1.0" encoding="UTF-8"?><entry uri="x"/>',
    b'<!DOCTYPE entry><entry uri="x"/>',
    b"",
    b'<entry uri="x" uri="y"/>',
    b'<entry uri="x">&nosuch;</entry>',
    b'<zz:entry uri="x"/>',
]


def test_not_xml_frag(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    uri = node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="x"]')
    for payload in NOT_FRAGS:
        r = alice.put(uri, payload, EL)
        expect_xcap_error(r, "not-xml-frag", need_phrase=True)
        assert_unchanged(alice, RL_PATH, body, etag, f"element PUT of {payload!r}")
    r = alice.put(uri, b'<entry uri="x"><display-name>\xff</display-name></entry>', EL)
    expect_xcap_error(r, "not-utf-8", need_phrase=True)
    assert_unchanged(alice, RL_PATH, body, etag, "element PUT of non-UTF-8")


def test_not_xml_att_value(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    uri = node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="b"]/@uri')
    for payload in [b"a<b", b"a&b", b"a&nosuch;b", b"a&#0;b", b"say \"it's\"", b"a\x01b"]:
        r = alice.put(uri, payload, ATT)
        expect_xcap_error(r, "not-xml-att-value", need_phrase=True)
        assert_unchanged(alice, RL_PATH, body, etag, f"attribute PUT of {payload!r}")


def test_schema_validation_error(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    for selector, payload, ctype in [
        ('resource-lists/list[@name="l"]/entry[4]', b"<entry/>", EL),                     # no uri
        ('resource-lists/list[@name="l"]/bogus', b"<bogus/>", EL),
        ('resource-lists/list[@name="l"]/entry[1]/display-name', b"<display-name><b/></display-name>", EL),
        ('resource-lists/list[@name="l"]/entry[1]/@foo', b"x", ATT),                        # no such attribute
        ('resource-lists/list[@name="l"]/entry[@uri="b"]', b'<entry uri="b"><list/></entry>', EL),
    ]:
        r = alice.put(node(RL_PATH, selector), payload, ctype)
        expect_xcap_error(r, "schema-validation-error", need_phrase=True)
        assert_unchanged(alice, RL_PATH, body, etag, f"PUT {selector} {payload!r}")


def test_uniqueness_failure(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    for selector, payload, ctype, field in [
        ('resource-lists/list[@name="l"]/entry[4]', b'<entry uri="a"/>', EL, "resource-lists/list[1]/entry[4]/@uri"),
        # Inserted first: the old <entry uri="c"> is now the second one.
        ('resource-lists/list[@name="l"]/*[1][@uri="c"]', b'<entry uri="c"/>', EL,
         "resource-lists/list[1]/entry[4]/@uri"),
        ('resource-lists/list[@name="l"]/*[2]', b'<entry uri="c"/>', EL, "resource-lists/list[1]/entry[3]/@uri"),
        ('resource-lists/list[@name="l"]/entry[2]', b'<entry uri="a"/>', EL, "resource-lists/list[1]/entry[2]/@uri"),
        ('resource-lists/list[@name="l"]/entry[3]/@uri', b"b", ATT, "resource-lists/list[1]/entry[3]/@uri"),
    ]:
        r = alice.put(node(RL_PATH, selector), payload, ctype)
        child = expect_xcap_error(r, "uniqueness-failure", need_phrase=True)
        exists = child.findall(f"{{{XCAP_ERROR_NS}}}exists")
        assert len(exists) == 1 and exists[0].get("field") == field, \
            f"PUT {selector} {payload!r}: expected <exists field={field!r}>, got {r.describe()}"
        assert_unchanged(alice, RL_PATH, body, etag, f"PUT {selector} {payload!r}")
    # The same value in another list is fine.
    etag = write(alice, "PUT", node(RL_PATH, 'resource-lists/list[@name="l"]/list[@name="sub"]'),
                 b'<list name="sub"><entry uri="a"/></list>', EL, 201, etag)
    cur = splice1(body.decode(), '<entry uri="c"/></list>',
                  '<entry uri="c"/><list name="sub"><entry uri="a"/></list></list>')
    assert_doc(alice, RL_PATH, cur.encode(), etag, "after a nested list reusing uri a")


def test_preconditions_use_the_document_etag(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    stale = etag
    el = node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="b"]')
    att = node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="b"]/@uri')
    ns = node(RL_PATH, 'resource-lists/list[@name="l"]/namespace::*')
    # If-None-Match with the document's ETag: 304 on every kind of node.
    for uri in (el, att, ns):
        r = alice.get(uri, headers={"If-None-Match": etag})
        assert r.status == 304, f"GET {uri} If-None-Match: {etag}: expected 304, got {r.describe()}"
        assert r.body == b"", f"304 with a body: {r.describe()}"
        assert r.etag == etag, f"304: expected ETag {etag}, got {r.etag!r}"
        r = alice.get(uri, headers={"If-Match": etag})
        assert r.status == 200, f"GET {uri} If-Match: {etag}: expected 200, got {r.describe()}"
        r = alice.get(uri, headers={"If-None-Match": '"not-the-etag"'})
        assert r.status == 200, f"GET {uri} If-None-Match other: expected 200, got {r.describe()}"
    # A write with the current ETag succeeds and makes it stale.
    r = alice.put(el, b'<entry uri="b"><display-name>B</display-name></entry>', EL, headers={"If-Match": stale})
    assert r.status == 200, f"element PUT with the current If-Match: expected 200, got {r.describe()}"
    etag = expect_etag(r)
    cur = splice1(body.decode(), '<entry uri="b"/>', '<entry uri="b"><display-name>B</display-name></entry>').encode()
    assert_doc(alice, RL_PATH, cur, etag)
    # Stale If-Match: 412 for GET, PUT and DELETE of elements and attributes.
    for method, uri, payload, ctype in [
        ("GET", el, None, None), ("GET", att, None, None),
        ("PUT", el, b'<entry uri="b"/>', EL), ("PUT", att, b"b", ATT),
        ("PUT", node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="d"]'), b'<entry uri="d"/>', EL),
        ("DELETE", el, None, None), ("DELETE", att, None, None),
    ]:
        r = alice.request(method, uri, body=payload, content_type=ctype, headers={"If-Match": stale})
        assert r.status == 412, f"{method} {uri} with a stale If-Match: expected 412, got {r.describe()}"
        assert_unchanged(alice, RL_PATH, cur, etag, f"{method} with a stale If-Match")
    # If-None-Match with the current ETag on a write: 412.
    r = alice.put(el, b'<entry uri="b"/>', EL, headers={"If-None-Match": etag})
    assert r.status == 412, f"element PUT If-None-Match: <current ETag>: expected 412, got {r.describe()}"
    r = alice.delete(att, headers={"If-None-Match": etag})
    assert r.status == 412, f"attribute DELETE If-None-Match: <current ETag>: expected 412, got {r.describe()}"
    assert_unchanged(alice, RL_PATH, cur, etag, "writes with a matching If-None-Match")
    # A node write into a missing document with If-Match: 412.
    r = alice.put(node(doc_path(RL, ALICE, "nothing-here"), 'resource-lists/list[@name="l"]'), b'<list name="l"/>',
                  EL, headers={"If-Match": etag})
    assert r.status == 412, f"node PUT into a missing document with If-Match: expected 412, got {r.describe()}"
    # If-Match: * matches the existing document.
    r = alice.delete(el, headers={"If-Match": "*"})
    assert r.status == 200, f"DELETE with If-Match: *: expected 200, got {r.describe()}"
    expect(alice.get(el), 404)
    after = expect(alice.get(RL_PATH), 200)
    assert after.etag == r.etag and after.etag != etag, (after.etag, r.etag, etag)
    assert b'uri="b"' in cur and b'uri="b"' not in after.body, after.body


def test_content_type_must_match_the_resource_kind(alice):
    body = rl_abc()
    etag = put_doc(alice, RL_PATH, body)
    el = node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="d"]')
    att = node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="a"]/@uri')
    for uri, payload, ctype in [
        (el, b'<entry uri="d"/>', MIME[RL]),
        (el, b'<entry uri="d"/>', ATT),
        (el, b'<entry uri="d"/>', "application/xml"),
        (el, b'<entry uri="d"/>', NSB),
        (el, b'<entry uri="d"/>', None),
        (att, b"a", EL),
        (att, b"a", MIME[RL]),
        (att, b"a", "text/plain"),
        (att, b"a", None),
    ]:
        r = alice.request("PUT", uri, body=payload, content_type=ctype)
        assert r.status == 415, f"PUT {uri} as {ctype}: expected 415, got {r.describe()}"
        assert_unchanged(alice, RL_PATH, body, etag, f"PUT as {ctype}")
    # The document's own type is for the document only; parameters do not matter.
    r = alice.put(el, b'<entry uri="d"/>', EL + "; charset=UTF-8")
    assert r.status == 201, f"PUT as {EL}; charset=UTF-8: expected 201, got {r.describe()}"


# ---------------------------------------------------------------------------
# 5. Byte exactness over a sequence of mixed operations

ODD_DOC = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    "<!-- leading comment -->\n"
    f'<rl:resource-lists xmlns:rl="{RL_NS}"\n'
    '      xmlns:x="urn:example:ext" >\n'
    "\t<rl:list   name = 'work'  >\n"
    "  <!-- c1 -->\n"
    "      <rl:display-name>Work</rl:display-name>\n"
    '      <rl:entry uri="sip:a@example.com"\n'
    "          ><rl:display-name  xml:lang='en'>A</rl:display-name></rl:entry>\n"
    "\n"
    "      <rl:entry\turi='sip:b@example.com' x:tag=\"1\" />\n"
    "  <?pi data?>\n"
    '      <rl:entry uri="sip:c@example.com"></rl:entry>\n'
    "\t</rl:list>\n"
    '<rl:list name="empty"/>\n'
    "</rl:resource-lists>\n"
    "<!-- trailing -->\n"
)
X = "xmlns(x=urn:example:ext)"
W = 'resource-lists/list[@name="work"]'


def test_mixed_operations_keep_every_other_byte(alice):
    etag = put_doc(alice, RL_PATH, ODD_DOC.encode())
    cur = ODD_DOC
    # (method, selector, query, body, content type, status, (old, new) splice)
    ops = [
        ("PUT", W + '/entry[@uri="sip:b@example.com"]', None,
         '<rl:entry uri="sip:b@example.com"><rl:display-name>B</rl:display-name></rl:entry>', EL, 200,
         ("<rl:entry\turi='sip:b@example.com' x:tag=\"1\" />",
          '<rl:entry uri="sip:b@example.com"><rl:display-name>B</rl:display-name></rl:entry>')),
        ("PUT", W + '/entry[@uri="sip:d@example.com"]', None, '<rl:entry uri="sip:d@example.com"/>', EL, 201,
         ('<rl:entry uri="sip:c@example.com"></rl:entry>',
          '<rl:entry uri="sip:c@example.com"></rl:entry><rl:entry uri="sip:d@example.com"/>')),
        ("PUT", W + '/entry[@uri="sip:c@example.com"]/@x:note', X, "hello", ATT, 201,
         ('<rl:entry uri="sip:c@example.com">', '<rl:entry uri="sip:c@example.com" x:note="hello">')),
        ("PUT", W + "/entry[1]/display-name/@xml:lang", None, "fr", ATT, 200,
         ("xml:lang='en'", "xml:lang='fr'")),
        ("DELETE", W + '/entry[@uri="sip:a@example.com"]/display-name/@xml:lang', None, None, None, 200,
         ("<rl:display-name  xml:lang='fr'>", "<rl:display-name>")),
        ("DELETE", W + '/entry[@uri="sip:a@example.com"]', None, None, None, 200,
         ('<rl:entry uri="sip:a@example.com"\n          ><rl:display-name>A</rl:display-name></rl:entry>', "")),
        ("PUT", W + '/entry[1][@uri="sip:first@example.com"]', None, '<rl:entry uri="sip:first@example.com"/>',
         EL, 201,
         ('<rl:entry uri="sip:b@example.com">',
          '<rl:entry uri="sip:first@example.com"/><rl:entry uri="sip:b@example.com">')),
        ("PUT", 'resource-lists/list[@name="empty"]/entry[@uri="sip:e@example.com"]', None,
         f'<entry xmlns="{RL_NS}" uri="sip:e@example.com"/>', EL, 201,
         ('<rl:list name="empty"/>',
          f'<rl:list name="empty"><entry xmlns="{RL_NS}" uri="sip:e@example.com"/></rl:list>')),
        ("PUT", W + '/entry[@uri="sip:d@example.com"]/@x:note', X, "a &amp; b", ATT, 201,
         ('<rl:entry uri="sip:d@example.com"/>', '<rl:entry uri="sip:d@example.com" x:note="a &amp; b"/>')),
        ("PUT", W + "/display-name", None, '<rl:display-name xml:lang="de">Arbeit ☺</rl:display-name>', EL, 200,
         ("<rl:display-name>Work</rl:display-name>", '<rl:display-name xml:lang="de">Arbeit ☺</rl:display-name>')),
        ("PUT", "resource-lists/list[2]/@name", None, "filled", ATT, 200,
         ('<rl:list name="empty">', '<rl:list name="filled">')),
        ("DELETE", 'resource-lists/list[@name="filled"]/entry', None, None, None, 200,
         (f'<entry xmlns="{RL_NS}" uri="sip:e@example.com"/>', "")),
        ("PUT", W + '/entry[@uri="sip:c@example.com"]', None,
         '<rl:entry uri="sip:c@example.com"><!-- keep --><rl:display-name>C &#x263A;</rl:display-name>'
         "<?note x?></rl:entry>", EL, 200,
         ('<rl:entry uri="sip:c@example.com" x:note="hello"></rl:entry>',
          '<rl:entry uri="sip:c@example.com"><!-- keep --><rl:display-name>C &#x263A;</rl:display-name>'
          "<?note x?></rl:entry>")),
        ("DELETE", W + '/entry[@uri="sip:first@example.com"]', None, None, None, 200,
         ('<rl:entry uri="sip:first@example.com"/>', "")),
        ("PUT", "resource-lists/list[1]/@name", None, "job", ATT, 200, ("name = 'work'", "name = 'job'")),
    ]
    assert len(ops) >= 10
    for i, (method, selector, query, body, ctype, status, (old, new)) in enumerate(ops, 1):
        uri = node(RL_PATH, selector, query)
        what = f"step {i}: {method} {selector}"
        etag = write(alice, method, uri, body.encode() if body is not None else None, ctype, status, etag)
        cur = splice1(cur, old, new)
        assert_doc(alice, RL_PATH, cur.encode(), etag, what)
        if method == "PUT" and not selector.endswith("/@name"):
            expect_get(alice, uri, body.encode(), ctype, etag)
        elif method == "DELETE":
            r = alice.get(uri)
            assert r.status == 404, f"{what}: GET afterwards: expected 404, got {r.describe()}"
    # Still the prefixes, comments, PIs and white space of the original.
    etree.fromstring(cur.encode(), no_net_parser())
    for piece in ("\r\n<!-- leading comment -->", "\t<rl:list   name = 'job'  >", "  <?pi data?>",
                  "<!-- trailing -->\n", '<rl:list name="filled"></rl:list>'):
        assert piece in cur


# ---------------------------------------------------------------------------
# 6. Two clients, one document

def test_concurrent_writers_on_different_nodes(server, alice):
    start = (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}">\n'
             '  <list name="l">\n'
             '    <entry uri="a"><display-name>A-start</display-name></entry>\n'
             '    <entry uri="b"><display-name>B-start</display-name></entry>\n'
             "  </list>\n</resource-lists>\n")
    put_doc(alice, RL_PATH, start.encode())
    n = 50
    results = {"a": [], "b": []}
    errors = []

    def run(key, client):
        try:
            for i in range(n):
                if key == "a":
                    r = client.put(node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="a"]/display-name'),
                                   f"<display-name>A-{i}</display-name>".encode(), EL)
                else:
                    r = client.put(node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="b"]/display-name'
                                              "/@xml:lang"), f"x-b{i}".encode(), ATT)
                results[key].append((r.status, r.etag, r.describe(200)))
        except Exception as e:  # reported below, with the thread
            errors.append(f"{key}: {e!r}")
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(k, server.client(ALICE))) for k in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert [s for s, _, _ in results["a"]] == [200] * n, \
        f"element PUTs: expected {n} x 200, got {[d for s, _, d in results['a'] if s != 200][:3]}"
    assert [s for s, _, _ in results["b"]] == [201] + [200] * (n - 1), \
        f"attribute PUTs: expected 201 then {n - 1} x 200, got {[s for s, _, _ in results['b']]}"
    etags = [e for _, e, _ in results["a"] + results["b"]]
    assert len(set(etags)) == 2 * n, f"expected {2 * n} distinct ETags, got {len(set(etags))}"
    want = start.replace("A-start", f"A-{n - 1}").replace(
        "<display-name>B-start", f'<display-name xml:lang="x-b{n - 1}">B-start').encode()
    r = expect(alice.get(RL_PATH), 200)
    assert r.body == want, f"lost update: expected {want!r}, got {r.body!r}"
    assert r.etag in etags, f"the document's ETag {r.etag} is none of those the writes returned"
    # A write based on an ETag from before the last write: 412.
    stale = results["a"][0][1]
    r = alice.put(node(RL_PATH, 'resource-lists/list[@name="l"]/entry[@uri="a"]/display-name'),
                  b"<display-name>late</display-name>", EL, headers={"If-Match": stale})
    assert r.status == 412, f"PUT with the stale If-Match {stale}: expected 412, got {r.describe()}"
    assert_doc(alice, RL_PATH, want)


# ---------------------------------------------------------------------------
# 7. CAB documents

PCC_PATH = doc_path(PCC, ALICE)
COMM = "pcc/person-details/comm-addr"
TEL2 = ('<tel pref="2" tel-type="Work"><tel-nb><tel-string>tel:+15555550199</tel-string></tel-nb>'
        "<label>office Phone</label></tel>")


def test_pcc_change_one_tel(alice):
    pcc = data("pcc-alice.xml")
    etag = put_doc(alice, PCC_PATH, pcc, MIME[PCC])
    expect_get(alice, node(PCC_PATH, COMM + "/tel[2]"), TEL2.encode(), EL, etag)
    expect_get(alice, node(PCC_PATH, COMM + "/@xml:lang"), b"en", ATT, etag)
    expect_get(alice, node(PCC_PATH, COMM + '/tel[@pref="1"]/tel-nb/tel-string'),
               b"<tel-string>tel:+15555550101</tel-string>", EL, etag)
    expect_get(alice, node(PCC_PATH, "p:pcc/p:person-details/p:comm-addr/p:tel[2]/@tel-type", f"xmlns(p={PCC_NS})"),
               b"Work", ATT, etag)

    new = ('<tel pref="2" tel-type="Home"><tel-nb><tel-string>tel:+15555550142</tel-string></tel-nb>'
           "<label>home</label></tel>")
    etag = write(alice, "PUT", node(PCC_PATH, COMM + "/tel[2]"), new.encode(), EL, 200, etag)
    cur = pcc.replace(TEL2.encode(), new.encode())
    assert cur != pcc and cur.count(new.encode()) == 1
    assert_doc(alice, PCC_PATH, cur, etag, "PCC after replacing tel[2]")
    expect_get(alice, node(PCC_PATH, COMM + "/tel[2]"), new.encode(), EL, etag)

    # The PCC rules apply to node writes too (SPEC §4.2).
    for selector, payload, ctype in [
        (COMM + "/tel[2]/@pref", b"1", ATT),
        (COMM + "/tel[2]/tel-nb/tel-string", b"<tel-string>call me maybe</tel-string>", EL),
        ("pcc/person-details/name[2]", b'<name><name-entry><display-name>A</display-name></name-entry></name>', EL),
    ]:
        r = alice.put(node(PCC_PATH, selector), payload, ctype)
        expect_xcap_error(r, "constraint-failure", need_phrase=True)
        assert_unchanged(alice, PCC_PATH, cur, etag, f"PUT {selector} {payload!r}")
    r = alice.put(node(PCC_PATH, COMM + "/tel[2]/@tel-type"), b"Cellular", ATT)
    expect_xcap_error(r, "schema-validation-error", need_phrase=True)
    assert_unchanged(alice, PCC_PATH, cur, etag, "PUT tel-type=Cellular")

    # A third <tel> goes right after the second, before the <uri-entry>s.
    tel3 = ('<tel pref="3" tel-type="Fax"><tel-nb><tel-string>+15555550177</tel-string></tel-nb></tel>')
    etag = write(alice, "PUT", node(PCC_PATH, COMM + "/tel[3]"), tel3.encode(), EL, 201, etag)
    cur = cur.replace(new.encode(), (new + tel3).encode())
    assert_doc(alice, PCC_PATH, cur, etag, "PCC after inserting tel[3]")


FH_PATH = doc_path(FH, ALICE)
IMP2_SEL = 'cab-feature-handler/import-profile[@id="imp-0002"]'
IMP2 = ('<import-profile id="imp-0002" created="2024-06-01T09:00:00Z">'
        '<third-party id="acme-social" method="proprietary"/>'
        "<credentials><credential-ref>acme-social/alice</credential-ref></credentials>"
        "<fields>fn tel</fields></import-profile>")
RESP = (f'<response xmlns="{FH_NS}" status="in-progress" code="202" updated="2024-06-01T09:00:02Z" seq="1">'
        "<reason>import started</reason></response>")
RESP2 = (f'<response xmlns="{FH_NS}" status="success" code="200" updated="2024-06-01T09:00:09Z" seq="2">'
         "<reason>profile imported</reason><imported-count>3</imported-count></response>")


def test_fh_request_added_by_element_put_and_answered_by_the_iwf(start_server):
    srv = start_server(settings={"http.xcap_root": "http://xdms.example.com/xcap-root"})
    alice = srv.client(ALICE)
    iwf = iwf_client(srv)
    fh = data("fh-requests.xml")
    etag = put_doc(alice, FH_PATH, fh, MIME[FH])

    # The user adds a request: it goes after the last <import-profile>.
    imp2 = node(FH_PATH, IMP2_SEL)
    etag = write(alice, "PUT", imp2, IMP2.encode(), EL, 201, etag)
    cur = splice1(fh.decode(), "</import-profile>", "</import-profile>" + IMP2).encode()
    assert_doc(alice, FH_PATH, cur, etag, "after adding import-profile imp-0002")
    expect_get(alice, imp2, IMP2.encode(), EL, etag)
    expect_get(iwf, imp2, IMP2.encode(), EL, etag)

    # A request with an id already in use, by element PUT.
    r = alice.put(node(FH_PATH, 'cab-feature-handler/subscribe-profile[@id="exp-0001"]'),
                  b'<subscribe-profile id="exp-0001"><third-party id="x"/></subscribe-profile>', EL)
    expect_xcap_error(r, "uniqueness-failure", need_phrase=True)
    assert_unchanged(alice, FH_PATH, cur, etag, "PUT of a request with a duplicate id")

    # No such request: <no-parent>, with the configured XCAP root in <ancestor>
    # (SPEC fixtures/xcap-error-no-parent.xml).
    r = alice.put(node(FH_PATH, 'cab-feature-handler/import-profile[@id="nope"]/response'), RESP.encode(), EL)
    child = expect_xcap_error(r, "no-parent", need_phrase=True)
    fixture = etree.fromstring((DATA / "nodes" / "xcap-error-no-parent.xml").read_bytes(), no_net_parser())
    want_anc = fixture.find(f".//{{{XCAP_ERROR_NS}}}ancestor").text
    got_anc = child.find(f"{{{XCAP_ERROR_NS}}}ancestor")
    assert got_anc is not None and got_anc.text == want_anc, \
        f"expected <ancestor>{want_anc}</ancestor>, got {r.describe()}"

    # The user may not answer the request, neither by element nor by attribute.
    resp_uri = node(FH_PATH, IMP2_SEL + "/response")
    r = alice.put(resp_uri, RESP.encode(), EL)
    child = expect_xcap_error(r, "constraint-failure", need_phrase=True)
    assert_fh_phrase(child)
    assert_unchanged(alice, FH_PATH, cur, etag, "the user's PUT of a <response>")

    # The IWF answers: 201, the <response> is the request's last child.
    etag = write(iwf, "PUT", resp_uri, RESP.encode(), EL, 201, etag)
    cur = splice1(cur.decode(), "<fields>fn tel</fields></import-profile>",
                  "<fields>fn tel</fields>" + RESP + "</import-profile>").encode()
    assert_doc(alice, FH_PATH, cur, etag, "after the IWF's first <response>")
    expect_get(alice, resp_uri, RESP.encode(), EL, etag)
    expect_get(alice, node(FH_PATH, IMP2_SEL + "/response/@status"), b"in-progress", ATT, etag)

    for selector, payload, ctype in [(IMP2_SEL + "/response/@status", b"failure", ATT),
                                     (IMP2_SEL + "/response/reason", b"<reason>forged</reason>", EL)]:
        r = alice.put(node(FH_PATH, selector), payload, ctype)
        child = expect_xcap_error(r, "constraint-failure", need_phrase=True)
        assert_fh_phrase(child)
        assert_unchanged(alice, FH_PATH, cur, etag, f"the user's PUT of {selector}")
    r = alice.delete(resp_uri)
    expect_xcap_error(r, "constraint-failure", need_phrase=True)
    assert_unchanged(alice, FH_PATH, cur, etag, "the user's DELETE of a <response>")

    # The IWF updates it: 200, in place.
    etag = write(iwf, "PUT", resp_uri, RESP2.encode(), EL, 200, etag)
    cur = splice1(cur.decode(), RESP, RESP2).encode()
    assert_doc(alice, FH_PATH, cur, etag, "after the IWF's second <response>")
    expect_get(iwf, resp_uri, RESP2.encode(), EL, etag)
    # The user may still change the request itself.
    etag = write(alice, "PUT", node(FH_PATH, IMP2_SEL + "/fields"), b"<fields>fn tel email</fields>", EL, 200, etag)
    cur = splice1(cur.decode(), "<fields>fn tel</fields>", "<fields>fn tel email</fields>").encode()
    assert_doc(alice, FH_PATH, cur, etag, "after the user changed <fields>")
