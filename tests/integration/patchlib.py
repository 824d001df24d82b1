# SPDX-License-Identifier: MIT
"""An RFC 5261 XML patch applier written for the tests.

It shares nothing with the server's own applier (src/notify/diff.c), so a
mistake in the server's patches cannot be hidden by the same mistake in the
code that checks them. apply() runs the <add>, <replace> and <remove>
operations of xcap-diff <document>s (RFC 5874) on the bytes of the version
they start from; canonical() gives C14N 1.0 (comments kept) to compare the
result with another version: it ignores what XML ignores (attribute order,
quoting, redundant namespace declarations) and nothing else, prefixes
included.

Each operation's selector is evaluated by libxml2's XPath (lxml) with the
document node as the context (RFC 5261 §4.2), the prefixes in scope on the
operation element, and unprefixed element names in the patch's default
namespace (§4.2.1). The change itself is made on a DOM (xml.dom.minidom),
which keeps every node, prefix and namespace declaration exactly as given
(lxml would merge a copied element's declarations into its new context's);
the node is found there by its position among the document's nodes.
"""

import re
from xml.dom import Node, minidom

from lxml import etree

DIFF_NS = "urn:ietf:params:xml:ns:xcap-diff"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XMLNS_NS = "http://www.w3.org/2000/xmlns/"
OPS = {f"{{{DIFF_NS}}}add": "add", f"{{{DIFF_NS}}}replace": "replace", f"{{{DIFF_NS}}}remove": "remove"}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, strip_cdata=True)


class PatchError(AssertionError):
    pass


def canonical(doc):
    """C14N 1.0 (with comments) of a document given as bytes or a tree."""
    if isinstance(doc, (bytes, bytearray)):
        doc = etree.ElementTree(etree.fromstring(bytes(doc), PARSER))
    return etree.tostring(doc, method="c14n", with_comments=True)


# ---- selection (lxml) ----------------------------------------------------------

_NAME_RE = re.compile(r"(?<![@:\w.\-])([A-Za-z_][\w.\-]*)(?![\w.\-]*\s*[(:])")
_NODE_TESTS = {"text", "comment", "node", "processing-instruction", "namespace"}


def _qualify(sel, ns, default):
    """Binds unprefixed element name tests (outside predicates) to the patch's
    default namespace (RFC 5261 §4.2.1)."""
    if not default:
        return sel, ns
    ns = dict(ns, _d=default)
    out = []
    for part in re.split(r"(\[[^\]]*\])", sel):
        if part.startswith("["):
            out.append(part)
        else:
            out.append(_NAME_RE.sub(lambda m: m.group(1) if m.group(1) in _NODE_TESTS
                                    else "_d:" + m.group(1), part))
    return "".join(out), ns


def _select(tree, op, sel):
    ns = {k: v for k, v in op.nsmap.items() if k is not None}
    path, ns = _qualify(sel, ns, op.nsmap.get(None))
    if not path.startswith("/"):
        path = "/" + path
    try:
        found = tree.xpath(path, namespaces=ns)
    except etree.XPathError as e:
        raise PatchError(f"selector {sel!r} does not evaluate: {e}")
    if not isinstance(found, list) or len(found) != 1:
        raise PatchError(f"selector {sel!r} selects {len(found) if isinstance(found, list) else found!r} "
                         "nodes; RFC 5261 needs exactly one")
    return found[0]


def _items(el):
    """An lxml element's child nodes as the DOM has them (text as strings)."""
    out = [el.text] if el.text else []
    for c in el:
        out.append(c)
        if c.tail:
            out.append(c.tail)
    return out


def _index(items, node):
    for i, it in enumerate(items):
        if it is node:
            return i
    raise PatchError("node not found among its parent's children")


def _path(node):
    """Child indexes from the document node down to an lxml node (element,
    comment, PI, or an XPath text result)."""
    if isinstance(node, str):  # a text node
        owner = node.getparent()
        if node.is_tail:
            parent = owner.getparent()
            return _path(parent) + [_index(_items(parent), owner) + 1]
        return _path(owner) + [0]
    parent = node.getparent()
    if parent is None:
        return [len(list(node.itersiblings(preceding=True)))]
    return _path(parent) + [_index(_items(parent), node)]


def _dom_node(dom, path):
    n = dom
    for i in path:
        n = n.childNodes[i]
    return n


def _split_namespace(sel):
    m = re.fullmatch(r"(.*)/namespace::([A-Za-z_][\w.\-]*)", sel)
    return (m.group(1), m.group(2)) if m else (None, None)


# ---- content copied out of an operation -----------------------------------------

def _used_prefixes(el, out):
    out.add(el.prefix)
    for i in range(el.attributes.length):
        a = el.attributes.item(i)
        if a.prefix not in (None, "xmlns", "xml") and a.name != "xmlns":
            out.add(a.prefix)
    for c in el.childNodes:
        if c.nodeType == Node.ELEMENT_NODE:
            _used_prefixes(c, out)


def _declared(el, out):
    for i in range(el.attributes.length):
        a = el.attributes.item(i)
        if a.name == "xmlns":
            out.add(None)
        elif a.name.startswith("xmlns:"):
            out.add(a.name[6:])
    for c in el.childNodes:
        if c.nodeType == Node.ELEMENT_NODE:
            _declared(c, out)


def _content(op, dom):
    """The operation's child nodes, imported into @dom. An element gets the
    declarations it uses from the operation's scope, so it means in the
    document what it meant in the patch."""
    wrapper = minidom.parseString(etree.tostring(op)).documentElement
    nodes = []
    for c in wrapper.childNodes:
        if c.nodeType == Node.CDATA_SECTION_NODE:
            c = wrapper.ownerDocument.createTextNode(c.data)
        if c.nodeType == Node.ELEMENT_NODE:
            used, declared = set(), set()
            _used_prefixes(c, used)
            _declared(c, declared)
            for p in used - declared:
                uri = op.nsmap.get(p)
                if p is None:
                    c.setAttribute("xmlns", uri or "")
                elif uri is None:
                    raise PatchError(f"prefix {p!r} in a patch's content is not declared")
                else:
                    c.setAttribute(f"xmlns:{p}", uri)
        nodes.append(dom.importNode(c, True))
    return nodes


def _qname(op, name):
    """(namespace, qualified name) of an attribute named in a patch."""
    if ":" in name:
        pfx = name.split(":", 1)[0]
        uri = XML_NS if pfx == "xml" else op.nsmap.get(pfx)
        if uri is None:
            raise PatchError(f"prefix {pfx!r} of {name!r} is not declared")
        return uri, name
    return None, name


def _find_attr(dom_el, lx_attr):
    uri = etree.QName(lx_attr.attrname).namespace if lx_attr.attrname.startswith("{") else None
    local = etree.QName(lx_attr.attrname).localname
    for i in range(dom_el.attributes.length):
        a = dom_el.attributes.item(i)
        if a.name == "xmlns" or a.prefix == "xmlns":
            continue
        if (a.namespaceURI or None) == uri and (a.localName or a.name) == local:
            return a
    raise PatchError(f"attribute {lx_attr.attrname} not found")


def _is_ws(n):
    return n is not None and n.nodeType == Node.TEXT_NODE and n.data.strip() == ""


# ---- the three operations ----------------------------------------------------

def _add(tree, dom, op):
    sel, typ, pos = op.get("sel"), op.get("type"), op.get("pos")
    target = _select(tree, op, sel)
    if not isinstance(target, etree._Element) or isinstance(target, (etree._Comment,
                                                                      etree._ProcessingInstruction)):
        if typ is not None or pos not in ("before", "after"):
            raise PatchError(f"add at {sel!r}, which is not an element")
    node = _dom_node(dom, _path(target))
    if typ is not None:
        if typ.startswith("@"):
            uri, qname = _qname(op, typ[1:])
            if ":" in qname and not qname.startswith("xml:"):
                pfx = qname.split(":", 1)[0]
                if target.nsmap.get(pfx) != uri:
                    node.setAttribute(f"xmlns:{pfx}", uri)
            if node.hasAttributeNS(uri, qname.split(":")[-1]):
                raise PatchError(f"add of attribute {typ}, which exists")
            node.setAttributeNS(uri, qname, op.text or "")
        elif typ.startswith("namespace::"):
            node.setAttribute(f"xmlns:{typ[len('namespace::'):]}", op.text or "")
        else:
            raise PatchError(f"unknown add type {typ!r}")
        return
    nodes = _content(op, dom)
    if pos is None:
        for n in nodes:
            node.appendChild(n)
    elif pos == "prepend":
        first = node.firstChild
        for n in nodes:
            node.insertBefore(n, first)
    elif pos in ("before", "after"):
        parent = node.parentNode
        ref = node if pos == "before" else node.nextSibling
        for n in nodes:
            parent.insertBefore(n, ref)
    else:
        raise PatchError(f"unknown pos {pos!r}")


def _replace(tree, dom, op):
    sel = op.get("sel")
    ns_el, prefix = _split_namespace(sel)
    if ns_el is not None:
        el = _select(tree, op, ns_el)
        if prefix not in el.nsmap:
            raise PatchError(f"replace of namespace {prefix!r}, which is not in scope")
        _dom_node(dom, _path(el)).setAttribute(f"xmlns:{prefix}", op.text or "")
        return
    target = _select(tree, op, sel)
    if getattr(target, "is_attribute", False):
        _find_attr(_dom_node(dom, _path(target.getparent())), target).value = op.text or ""
        return
    node = _dom_node(dom, _path(target))
    if isinstance(target, str):
        if len(op):
            raise PatchError("replace of a text node with more than text")
        if op.text:
            node.data = op.text
        else:
            node.parentNode.removeChild(node)
        return
    kids = [n for n in _content(op, dom) if not _is_ws(n)]
    if len(kids) != 1 or kids[0].nodeType != node.nodeType:
        raise PatchError(f"replace of {sel!r} needs one node of its kind, got {kids!r}")
    node.parentNode.replaceChild(kids[0], node)


def _remove(tree, dom, op):
    sel, ws = op.get("sel"), op.get("ws")
    ns_el, prefix = _split_namespace(sel)
    if ns_el is not None:
        el = _dom_node(dom, _path(_select(tree, op, ns_el)))
        if not el.hasAttribute(f"xmlns:{prefix}"):
            raise PatchError(f"remove of namespace {prefix!r} not declared there")
        el.removeAttribute(f"xmlns:{prefix}")
        return
    target = _select(tree, op, sel)
    if getattr(target, "is_attribute", False):
        el = _dom_node(dom, _path(target.getparent()))
        el.removeAttributeNode(_find_attr(el, target))
        return
    node = _dom_node(dom, _path(target))
    parent = node.parentNode
    if ws in ("before", "both"):
        if not _is_ws(node.previousSibling):
            raise PatchError(f"remove ws=before, but no white space before {sel!r}")
        parent.removeChild(node.previousSibling)
    if ws in ("after", "both"):
        if not _is_ws(node.nextSibling):
            raise PatchError(f"remove ws=after, but no white space after {sel!r}")
        parent.removeChild(node.nextSibling)
    parent.removeChild(node)


def apply(old_bytes, ops):
    """Applies @ops (operation elements, lxml, in order) to the document
    @old_bytes; returns the bytes of the result."""
    doc = bytes(old_bytes)
    for op in ops:
        kind = OPS.get(op.tag)
        if kind is None:
            raise PatchError(f"not an RFC 5261 operation: {op.tag}")
        tree = etree.ElementTree(etree.fromstring(doc, PARSER))
        dom = minidom.parseString(doc)
        if dom.getElementsByTagName("*") and re.search(rb"<!\[CDATA\[", doc):
            raise PatchError("CDATA sections are not supported by this applier")
        {"add": _add, "replace": _replace, "remove": _remove}[kind](tree, dom, op)
        dom.normalize()
        doc = dom.toxml(encoding="utf-8")
    return doc


def operations(document_el):
    """The patch operations of an xcap-diff <document> element."""
    return [c for c in document_el if isinstance(c.tag, str) and c.tag in OPS]
