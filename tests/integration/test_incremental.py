# SPDX-License-Identifier: MIT
"""Element PUTs checked where they happen against the whole-document checks.

An element PUT that replaces an element by one of the same name is checked
locally by default (xcap.incremental_checks): the new element against its
schema type in context, the RFC 4826 §3.4 uniqueness rules for the keys it
touches, and a scan spliced instead of rebuilt (xcap/node.c, xcap/write.c,
xml/scan.c). The whole-document checks stay the reference: one server runs
with the local checks and the scan cache, another with
xcap.incremental_checks=false and xcap.scan_cache=0, and both get the same
random documents and the same random edits (valid ones, duplicates,
schema violations, bad nesting, unbound prefixes, other names). Every edit
must get the same status and the same <xcap-error> child from both, and
both documents must stay byte-identical.
"""

import random
import urllib.parse

import pytest
from lxml import etree

from xdmslib import ALICE, MIME, RL, RL_NS, XCAP_ERROR_NS, doc_path

EL = "application/xcap-el+xml"
EXT_NS = "urn:example:ext"
PATH = doc_path(RL, ALICE)
SETTINGS = {"xcap.max_depth": "12"}
REFERENCE = {**SETTINGS, "xcap.incremental_checks": "false", "xcap.scan_cache": "0"}


def enc(selector):
    return urllib.parse.quote(selector, safe="/@:=*'!$&+,;~()")


def random_entry(rng, uris, k):
    uri = rng.choice(uris) if uris and rng.random() < 0.05 else f"sip:c{k}-{rng.randrange(10**6)}@example.com"
    uris.append(uri)
    parts = []
    if rng.random() < 0.8:
        lang = ' xml:lang="en"' if rng.random() < 0.2 else ""
        parts.append(f"<display-name{lang}>Contact {k} &amp; co</display-name>")
    if rng.random() < 0.1:
        parts.append(f'<x:note xmlns:x="{EXT_NS}">n{k}</x:note>')
    return f'<entry uri="{uri}">{"".join(parts)}</entry>'


def random_list(rng, depth, counter):
    items = []
    uris = []
    for _ in range(rng.randrange(1, 8)):
        counter[0] += 1
        r = rng.random()
        if r < 0.15 and depth < 3:
            items.append(random_list(rng, depth + 1, counter))
        elif r < 0.22:
            items.append(f'<entry-ref ref="resource-lists/users/{ALICE}/index/~~/resource-lists/list%5b{counter[0]}%5d"/>')
        elif r < 0.28:
            items.append(f'<external anchor="http://example.com/l{counter[0]}"/>')
        else:
            items.append(random_entry(rng, uris, counter[0]))
    name = f' name="l{counter[0]}"' if rng.random() < 0.9 else ""
    dn = "<display-name>list</display-name>" if rng.random() < 0.5 else ""
    return f"<list{name}>{dn}{''.join(items)}</list>"


def random_document(rng):
    counter = [0]
    lists = "".join(random_list(rng, 0, counter) for _ in range(rng.randrange(1, 4)))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL_NS}">{lists}'
            f"</resource-lists>").encode()


def local(el):
    return etree.QName(el).localname


def position_selector(el):
    """resource-lists/list[2]/entry[3]: positions among same-named siblings."""
    steps = []
    while el is not None:
        parent = el.getparent()
        if parent is None:
            steps.append(local(el))
        else:
            same = [c for c in parent if isinstance(c.tag, str) and c.tag == el.tag]
            name = local(el) if etree.QName(el).namespace == RL_NS else "*"
            if name == "*":
                same = [c for c in parent if isinstance(c.tag, str)]
            steps.append(f"{name}[{same.index(el) + 1}]")
        el = parent
    return "/".join(reversed(steps))


def attribute_selector(el):
    key = {"entry": "uri", "list": "name", "entry-ref": "ref", "external": "anchor"}.get(local(el))
    if key is None or el.get(key) is None or '"' in el.get(key):
        return None
    base = position_selector(el).rsplit("/", 1)[0]
    return f'{base}/{local(el)}[@{key}="{el.get(key)}"]'


def sibling_key(el, key):
    others = [c.get(key) for c in el.getparent() if c is not el and c.tag == el.tag and c.get(key)]
    return others[0] if others else None


def nested(depth):
    inner = "<entry uri=\"sip:deep@example.com\"/>"
    for _ in range(depth):
        inner = f"<list>{inner}</list>"
    return inner


def edit_for(rng, el, counter):
    """A body for element @el: mostly the same name, valid or not."""
    name = local(el)
    k = counter
    if etree.QName(el).namespace != RL_NS:
        return f'<x:note xmlns:x="{EXT_NS}">edited {k}</x:note>'
    choices = []
    if name == "entry":
        uri = el.get("uri")
        dup = sibling_key(el, "uri")
        choices += [
            f'<entry uri="{uri}"><display-name>Edited {k}</display-name></entry>',
            f'<entry uri="{uri}"><display-name xml:lang="fr">É {k}</display-name>'
            f'<x:note xmlns:x="{EXT_NS}">x</x:note></entry>',
            f'<entry uri="sip:new{k}@example.com"/>',
            f'<entry uri="{dup}"/>' if dup else f'<entry uri="{uri}"/>',
            f'<entry uri="{dup}"><display-name>dup</display-name></entry>' if dup else '<entry/>',
            "<entry><display-name>no uri</display-name></entry>",
            f'<entry uri="{uri}"><display-name>a</display-name><display-name>b</display-name></entry>',
            f'<entry uri="{uri}"><bogus/></entry>',
            f'<entry uri="{uri}"><display-name><b>bold</b></display-name></entry>',
            f'<entry uri="{uri}" x:flag="1" xmlns:x="{EXT_NS}"/>',
            f'<entry uri="{uri}" flag="1"/>',
            f'<entry uri="{uri}"><y:z/></entry>',
            f'<list name="as-list-{k}"/>',
            f'<entry uri="{uri}"><x:n xmlns:x="{EXT_NS}">{nested(3)}</x:n></entry>',
        ]
    elif name == "list":
        nm = el.get("name") or f"n{k}"
        dup = sibling_key(el, "name")
        choices += [
            f'<list name="{nm}"><entry uri="sip:a{k}@example.com"/><entry uri="sip:b{k}@example.com"/></list>',
            f'<list name="{nm}"><entry uri="sip:a{k}@example.com"/><entry uri="sip:a{k}@example.com"/></list>',
            f'<list name="{dup}"/>' if dup else f'<list name="{nm}"/>',
            f'<list name="{nm}"><entry uri="sip:a{k}@example.com"/><display-name>late</display-name></list>',
            f'<list name="{nm}"><list name="i"/><list name="i"/></list>',
            f'<list name="{nm}">{nested(rng.randrange(6, 14))}</list>',
            f'<list name="{nm}"><external anchor="http://e/{k}"/><external anchor="http://e/{k}"/></list>',
            f'<list name="{nm}" other="1"/>',
            f'<entry uri="sip:renamed{k}@example.com"/>',
        ]
    elif name == "display-name":
        choices += [f"<display-name>DN {k}</display-name>", "<display-name><i/></display-name>",
                    '<display-name xml:lang="de">x</display-name>', "<display-name lang=\"x\">y</display-name>"]
    elif name == "entry-ref":
        dup = sibling_key(el, "ref")
        choices += [f'<entry-ref ref="{el.get("ref")}x{k}"/>', '<entry-ref/>',
                    f'<entry-ref ref="{dup}"/>' if dup else '<entry-ref ref="r"><display-name/></entry-ref>']
    elif name == "external":
        dup = sibling_key(el, "anchor")
        choices += [f'<external anchor="http://example.com/e{k}"/>',
                    f'<external anchor="{dup}"/>' if dup else "<external/>"]
    else:
        choices += [f"<{name}/>"]
    return rng.choice(choices)


def outcome(resp):
    """(status, <xcap-error> child) of an answer."""
    child = None
    if resp.status == 409:
        root = etree.fromstring(resp.body, etree.XMLParser(resolve_entities=False, no_network=True))
        assert root.tag == f"{{{XCAP_ERROR_NS}}}xcap-error", resp.describe()
        child = etree.QName(next(c for c in root if isinstance(c.tag, str))).localname
    return resp.status, child


@pytest.mark.parametrize("seed", range(6))
def test_local_checks_agree_with_whole_document_checks(start_server, seed):
    rng = random.Random(seed)
    fast = start_server(name="local", settings=SETTINGS)
    ref = start_server(name="reference", settings=REFERENCE)
    cf, cr = fast.client(ALICE), ref.client(ALICE)
    seen = {}
    edits = 0
    for _round in range(5):
        doc = random_document(rng)
        rf, rr = cf.put(PATH, doc, MIME[RL]), cr.put(PATH, doc, MIME[RL])
        assert outcome(rf) == outcome(rr), f"seed {seed}: document PUT: {rf.describe()} vs {rr.describe()}"
        if rf.status not in (200, 201):
            continue
        for _ in range(80):
            current = cr.get(PATH)
            assert current.status == 200
            tree = etree.fromstring(current.body, etree.XMLParser(resolve_entities=False, no_network=True))
            elements = [e for e in tree.iter() if isinstance(e.tag, str) and e is not tree]
            el = rng.choice(elements)
            sel = attribute_selector(el) if rng.random() < 0.4 else None
            sel = sel or position_selector(el)
            edits += 1
            body = edit_for(rng, el, edits)
            uri = f"{PATH}/~~/{enc(sel)}"
            rf, rr = cf.put(uri, body.encode(), EL), cr.put(uri, body.encode(), EL)
            got, want = outcome(rf), outcome(rr)
            assert got == want, (f"seed {seed}, edit {edits}: PUT {sel} with {body!r}:\n"
                                 f" local checks: {rf.describe()}\n whole-document checks: {rr.describe()}")
            seen[want] = seen.get(want, 0) + 1
            df, dr = cf.get(PATH), cr.get(PATH)
            assert df.body == dr.body, (f"seed {seed}, edit {edits}: the documents differ after PUT {sel} "
                                        f"with {body!r}")
            # The element as the local server now serves it (from its scan cache).
            if want[0] in (200, 201):
                g = cf.get(uri)
                assert g.status == 200 and g.body == body.encode(), \
                    f"seed {seed}, edit {edits}: GET {sel} after the PUT: {g.describe()}"
    # The edits must have exercised both answers, not only one of them.
    assert any(s == 200 for s, _ in seen), f"seed {seed}: no edit succeeded: {seen}"
    assert any(s == 409 for s, _ in seen), f"seed {seed}: no edit was refused: {seen}"
