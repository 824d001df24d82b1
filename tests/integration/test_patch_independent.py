# SPDX-License-Identifier: MIT
"""xcap-diff patches from real writes, checked by an applier of our own.

The server's unit tests and fuzzer check its patches with its own RFC 5261
applier; a mistake both share would pass them. Here every patch a NOTIFY
carries is applied by patchlib (lxml, written for the tests) to the bytes of
the version it starts from, and the result must be, in canonical XML, the
version a GET returned right after the write that made new-etag. The writes
cover element, attribute and namespace changes through node selectors,
whole-document PUTs, DELETEs, changes queued behind an unanswered NOTIFY, and
aggregated changes (RFC 5875 "aggregate").
"""

import time

import pytest
from lxml import etree

import patchlib
from sipua import Subscriber, rl_body
from xdmslib import ALICE, MIME, RL, doc_path, expect, sip_port, unquote

DIFF = patchlib.DIFF_NS
D = f"{{{DIFF}}}"
SEL = f"{RL}/users/{ALICE}/index"
PATH = doc_path(RL, ALICE)
EL = "application/xcap-el+xml"
ATT = "application/xcap-att+xml"
X = "urn:example:ext"

# Unchanged content, so that a rewrite's patch stays smaller than the
# document (a larger patch is sent as ETags only, by design).
BALLAST = "  <list name=\"others\">\n" + "".join(
    f'    <entry uri="sip:user{i}@example.com"><display-name>User {i}</display-name></entry>\n'
    for i in range(30)) + "  </list>\n"

BASE = f"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="{X}">
  <!-- friends and family -->
  <list name="friends">
    <display-name>Friends</display-name>
    <entry uri="sip:bob@example.com"><display-name>Bob</display-name></entry>
    <entry uri="sip:carol@example.com" x:tag="blue">
      <display-name xml:lang="en">Carol</display-name>
      <x:note>met at work</x:note>
    </entry>
    <x:group id="g1"><x:member>one</x:member></x:group>
  </list>
  <list name="family">
    <entry uri="tel:+15555550100"/>
  </list>
{BALLAST}</resource-lists>
""".encode()

# A whole-document rewrite: text, attributes, order, comments, a processing
# instruction, elements added and removed, an inner element that declares
# the extension namespace under another prefix and a default of its own.
REWRITE = f"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:x="{X}">
  <list name="friends">
    <display-name>Good friends</display-name>
    <entry uri="sip:carol@example.com" x:tag="green">
      <display-name xml:lang="fr">Carole</display-name>
    </entry>
    <?sort by-name?>
    <entry uri="sip:bob@example.com"><display-name>Robert</display-name></entry>
    <y:group xmlns:y="{X}" id="g1"><y:member>one</y:member><member xmlns="{X}">two</member></y:group>
    <!-- new comment -->
    <entry uri="sip:dave@example.com"/>
  </list>
  <list name="family">
    <entry uri="tel:+15555550100"/>
    <entry uri="tel:+15555550102"><display-name>Gran</display-name></entry>
  </list>
{BALLAST}</resource-lists>
""".encode()


@pytest.fixture
def nserver(start_server):
    srv = start_server(settings={"sip.listen": "127.0.0.1:0", "sip.trust_from": "true",
                                 "notify.aggregate_window": "3000"})
    srv.sip = sip_port(srv)
    return srv


class Versions:
    """Every version of the document by ETag, read back with a GET right
    after the write that made it (one writer, so the GET sees that version).

    With a witness (a subscriber of its own), each write waits until the
    witness was notified of it: the notifier has then read that version,
    and computed its patch, before the next write replaces it (a version
    overwritten before the notifier reads it gets no patch, by design)."""

    def __init__(self, srv):
        self.client = srv.client(ALICE)
        self.by_etag = {}
        self.witness = None

    def watch(self, srv):
        self.witness = Subscriber(srv.sip)
        assert self.witness.subscribe(rl_body(SEL), mode="xcap-patching").status == 200
        self.witness.notify()
        return self.witness

    def write(self, method, target, body=None, ctype=None, status=(200, 201)):
        etag = self._write(method, target, body, ctype, status)  # None: the document was deleted
        if self.witness is not None:
            self.witness.wait(lambda m: m.method == "NOTIFY" and any(
                d.get("new-etag") == etag for d in m.documents()), timeout=10,
                what=f"the witness's NOTIFY of {etag}")
        return etag

    def _write(self, method, target, body=None, ctype=None, status=(200, 201)):
        r = self.client.request(method, target, body=body, content_type=ctype)
        assert r.status in status, r.describe()
        g = self.client.get(PATH)
        if g.status == 404:
            return None
        expect(g, 200)
        etag = unquote(g.etag)
        if method != "DELETE" or target != PATH:
            assert etag == unquote(r.etag), f"the GET after {method} {target} saw another version"
        self.by_etag[etag] = g.body
        return etag


def node(sel):
    return f"{PATH}/~~/{sel}"


def check_documents(versions, body, counts):
    """Checks every <document> of one NOTIFY body; counts what was checked."""
    root = etree.fromstring(body, patchlib.PARSER)
    assert root.tag == f"{D}xcap-diff", body
    for d in root.findall(f"{D}document"):
        assert d.get("sel") == SEL, body
        prev, new = d.get("previous-etag"), d.get("new-etag")
        ops = patchlib.operations(d)
        if d.find(f"{D}body-not-changed") is not None:
            assert patchlib.canonical(versions.by_etag[prev]) == patchlib.canonical(versions.by_etag[new])
            counts["unchanged"] += 1
        elif prev and new and ops:
            try:
                got = patchlib.canonical(patchlib.apply(versions.by_etag[prev], ops))
            except patchlib.PatchError as e:
                raise AssertionError(f"patch {prev} -> {new} does not apply: {e}\n{body.decode()}")
            want = patchlib.canonical(versions.by_etag[new])
            assert got == want, (f"patch {prev} -> {new} gives\n{got.decode()}\nbut GET at {new} is\n"
                                 f"{want.decode()}\nNOTIFY:\n{body.decode()}")
            counts["patched"] += 1
        elif prev and not new:
            counts["deleted"] += 1
        elif new and not prev:
            counts["created"] += 1
        else:
            counts["etags-only"] += 1
            counts.setdefault("etags-only-pairs", []).append((prev, new))


def new_counts():
    return {"patched": 0, "unchanged": 0, "deleted": 0, "created": 0, "etags-only": 0}


def test_every_patch_applies_to_the_previous_version(nserver):
    v = Versions(nserver)
    e0 = v.write("PUT", PATH, BASE, MIME[RL])
    sub = Subscriber(nserver.sip)
    try:
        assert sub.subscribe(rl_body(SEL), mode="xcap-patching").status == 200
        assert sub.notify().documents() == [{"sel": SEL, "new-etag": e0}]

        counts = new_counts()
        steps = [
            # element insert (append after the last entry), replace, insert before
            ("PUT", node('resource-lists/list[@name="friends"]/entry[3]'),
             b'<entry uri="sip:erin@example.com"><display-name>Erin</display-name></entry>', EL),
            ("PUT", node('resource-lists/list[@name="friends"]/entry[@uri="sip:bob@example.com"]'),
             b'<entry uri="sip:bob@example.com"><display-name>Bobby</display-name></entry>', EL),
            ("PUT", node('resource-lists/list[@name="family"]/entry[@uri="tel:+15555550101"]'),
             b'<entry uri="tel:+15555550101"/>', EL),
            # attribute insert and replace (xml:lang needs no namespace binding)
            ("PUT", node('resource-lists/list[@name="friends"]/entry[1]/display-name/@xml:lang'),
             b"de", ATT),
            ("PUT", node('resource-lists/list[@name="friends"]/entry[2]/display-name/@xml:lang'),
             b"en-GB", ATT),
            # an element in the extension namespace (a generated prefix in the patch)
            ("PUT", node('resource-lists/list[@name="family"]/x:tagline?xmlns(x=urn:example:ext)'),
             f'<x:tagline xmlns:x="{X}">close &amp; far</x:tagline>'.encode(), EL),
            ("PUT", node('resource-lists/list[@name="friends"]/x:group/x:member?xmlns(x=urn:example:ext)'),
             f'<member xmlns="{X}">uno</member>'.encode(), EL),
            # deletes of an element, an attribute, a foreign element
            ("DELETE", node('resource-lists/list[@name="family"]/entry[@uri="tel:+15555550100"]'), None, None),
            ("DELETE", node('resource-lists/list[@name="friends"]/entry[2]/display-name/@xml:lang'),
             None, None),
            ("DELETE", node('resource-lists/list[@name="friends"]/entry[2]/x:note?xmlns(x=urn:example:ext)'),
             None, None),
            # whole-document rewrites, there and back
            ("PUT", PATH, REWRITE, MIME[RL]),
            ("PUT", PATH, BASE, MIME[RL]),
            # the same bytes again: <body-not-changed/>
            ("PUT", PATH, BASE, MIME[RL]),
        ]
        for method, target, body, ctype in steps:
            v.write(method, target, body, ctype)
            n = sub.notify(timeout=10)
            check_documents(v, n.body, counts)
        assert counts["patched"] == len(steps) - 1, counts
        assert counts["unchanged"] == 1, counts

        # Changes queued behind an unanswered NOTIFY arrive as a chain of patches.
        v.watch(nserver)
        sub.auto_answer = None
        v.write("PUT", node('resource-lists/list[@name="friends"]/display-name'),
                b"<display-name>Pals</display-name>", EL)
        held = sub.notify(timeout=10)
        check_documents(v, held.body, counts)
        v.write("PUT", PATH, REWRITE, MIME[RL])
        v.write("DELETE", node('resource-lists/list[@name="family"]'), None, None)
        sub.auto_answer = 200
        sub._answer(held, 200)
        n = sub.notify(timeout=10)
        assert len(n.documents()) == 2, n.body
        check_documents(v, n.body, counts)
        assert counts["patched"] == len(steps) + 2, counts

        # A DELETE of the document reports its previous ETag alone.
        last = unquote(v.client.get(PATH).etag)
        v.witness.close()
        v.witness = None
        v.write("DELETE", PATH)
        n = sub.notify(timeout=10)
        assert n.documents() == [{"sel": SEL, "previous-etag": last}], n.body
    finally:
        sub.close()
        if v.witness:
            v.witness.close()


def test_aggregated_changes_apply_as_one_patch(nserver):
    """RFC 5875 aggregate: writes inside the window come as one <document>
    from the first ETag to the last, with the patches concatenated."""
    v = Versions(nserver)
    e0 = v.write("PUT", PATH, BASE, MIME[RL])
    agg = Subscriber(nserver.sip)
    try:
        assert agg.subscribe(rl_body(SEL), mode="aggregate").status == 200
        assert agg.notify().documents() == [{"sel": SEL, "new-etag": e0}]
        v.watch(nserver)
        v.write("PUT", node('resource-lists/list[@name="friends"]/entry[3]'),
                b'<entry uri="sip:erin@example.com"/>', EL)
        v.write("PUT", node('resource-lists/list[@name="friends"]/entry[1]/display-name/@xml:lang'),
                b"de", ATT)
        v.write("DELETE", node('resource-lists/list[@name="friends"]/entry[2]/x:note?xmlns(x=urn:example:ext)'))
        final = v.write("PUT", node('resource-lists/list[@name="family"]/entry'),
                        b'<entry uri="tel:+15555550199"/>', EL)
        counts = new_counts()
        first = None
        deadline = time.monotonic() + 20
        while True:
            n = agg.notify(timeout=max(0.1, deadline - time.monotonic()))
            check_documents(v, n.body, counts)
            docs = n.documents()
            first = first or docs[0]
            if docs[-1].get("new-etag") == final:
                break
        assert counts["etags-only"] == 0 and counts["patched"] >= 1, counts
        # The window joined several writes into one transition at least once.
        assert first.get("previous-etag") == e0 and first.get("new-etag") != list(v.by_etag)[1], (
            "the first aggregated NOTIFY held one write only", first)
    finally:
        agg.close()
        if v.witness:
            v.witness.close()


def test_root_namespace_change_sends_etags_only(nserver):
    """A change of the root's namespace declarations cannot be a patch
    (diff.h): the document carries both ETags and no operation, and the
    client must GET."""
    v = Versions(nserver)
    e0 = v.write("PUT", PATH, BASE, MIME[RL])
    sub = Subscriber(nserver.sip)
    try:
        assert sub.subscribe(rl_body(SEL), mode="xcap-patching").status == 200
        sub.notify()
        e1 = v.write("PUT", PATH, BASE.replace(b'xmlns:x="urn:example:ext"',
                                               b'xmlns:x="urn:example:ext" xmlns:z="urn:example:z"'), MIME[RL])
        counts = new_counts()
        check_documents(v, sub.notify(timeout=10).body, counts)
        assert counts["etags-only-pairs"] == [(e0, e1)], counts
    finally:
        sub.close()


def test_the_applier_rejects_a_wrong_patch():
    """The checker is not vacuous: a patch off by one position, or a wrong
    text, gives a document that differs from the target."""
    ops_xml = (f'<xcap-diff xmlns="{DIFF}" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">'
               '<document sel="s" previous-etag="a" new-etag="b">'
               '<replace sel="rl:resource-lists/rl:list[1]/rl:display-name/text()">Fiends</replace>'
               '</document></xcap-diff>').encode()
    d = etree.fromstring(ops_xml).find(f"{D}document")
    got = patchlib.canonical(patchlib.apply(BASE, patchlib.operations(d)))
    assert got != patchlib.canonical(BASE)
    assert got == patchlib.canonical(BASE.replace(b">Friends<", b">Fiends<"))
    assert got != patchlib.canonical(BASE.replace(b">Friends<", b">Friends!<"))
    bad = etree.fromstring(ops_xml.replace(b"list[1]", b"list[3]")).find(f"{D}document")
    with pytest.raises(patchlib.PatchError):
        patchlib.apply(BASE, patchlib.operations(bad))
