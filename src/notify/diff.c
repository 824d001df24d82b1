/* SPDX-License-Identifier: MIT */
/*
 * xcap-diff documents (RFC 5874) and RFC 5261 patches between two versions of
 * a stored document (see diff.h for the contracts and the patch conventions).
 *
 * This file computes a patch (diff_patch): from the change feed's detail
 * when it describes the change, else top-down. The other parts live in
 * their own files, each calling only the ones listed after it:
 *   diff_apply.c    the applier (tests, fuzzer)
 *   diff_render.c   the <xcap-diff> document and node reports
 *   diff_topdown.c  the top-down diff
 *   diff_path.c     selectors and operation elements being written
 *   diff_scan.c     child nodes, namespaces "f"/"g", attribute values
 *
 * Design. Everything works on bytes with the byte-offset scanner
 * (xml/xml.h), like the node operations that made the change: no DOM, no
 * libxml2 XPath. Four parts:
 *
 *   - Detail-based patches. The change feed says which node one XCAP
 *     element/attribute write touched (src/xcap/node.c). The selector is
 *     evaluated again (it selects exactly the node in the document where it
 *     exists), the two documents are checked to differ by exactly that splice,
 *     and one operation is written at the node's positional path. Because
 *     node.c changes only the node's bytes, applying the operation the same
 *     way gives the new document byte for byte (diff.h lists the two cases a
 *     patch cannot carry).
 *   - The top-down diff. Children of an element are "units": a non-text node
 *     with the text node before it, plus the trailing text. Comparing units,
 *     never bare nodes, means an operation never makes two text nodes
 *     adjacent, so text() positions stay those of the XPath data model while
 *     operations run. Operations are emitted right to left: every node left
 *     of the current one is still as in the old document, so its position is
 *     counted in the old document, and everything right of it is already as
 *     in the new one. A position is therefore a count over "old children
 *     [0, x) followed by new children [y, end)", answered from per-group
 *     sorted index lists in O(log n), without simulating the document.
 *   - The applier (tests, fuzzer): evaluates our XPath subset on the scan,
 *     splices bytes the way node.c does, and rescans after every operation.
 *   - Rendering of the <xcap-diff> document.
 *
 * Namespaces: an element copied into an operation must stand alone in the
 * xcap-diff document, whose default namespace is xcap-diff's. It gets, after
 * its own attributes, one declaration for every prefix (or the default
 * namespace) that its subtree uses but does not declare, with the binding in
 * scope at its place, the first one preceded by an extra space ("f" below).
 * The applier removes trailing declarations when they are exactly, marker
 * space included, what "f" would add to the element without them ("g"). An
 * element written as <x xmlns=".."> by a client therefore comes back as
 * written, and so does <x> relying on its parent's declaration.
 *
 * The top-down middle: after the common head and tail, the children are
 * anchored on a weighted longest common subsequence of units with the same
 * key (kind and expanded name; identical units weigh most, then the same
 * start tag), an O(a * b) table capped at LCS_MAX_CELLS cells and freed
 * before recursing. A larger middle is first anchored on the units that are
 * unique and identical on both sides (patience diff, O(n log n)). Between
 * anchors units are paired in order.
 *
 * Limits: the operations are built in a buffer capped at the new document's
 * size, so a patch never costs more than the document. Recursion follows
 * element depth, which the scanner caps at XML_SCAN_MAX_DEPTH.
 *
 * Threads: pure functions; any thread.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "notify/notify_int.h"
/* The node-selector grammar and evaluation live in src/xcap; the notifier
 * is the one module outside it that needs them (to read change-feed details). */
#include "xcap/xcap.h"

/* ==== detail-based patches (one XCAP node write) ========================================= */

enum verb { PUT_ELEM_INSERT, PUT_ELEM_REPLACE, PUT_ATTR_INSERT, PUT_ATTR_REPLACE, DEL_ELEM, DEL_ATTR };

/* Reads node.c's detail line. False for anything else. */
static bool detail_parse(const char *detail, enum verb *verb, char **node_selector, char **query)
{
	static const struct {
		const char *head;
		enum verb verb;
	} verbs[] = {
		{ "put-element insert ", PUT_ELEM_INSERT },   { "put-element replace ", PUT_ELEM_REPLACE },
		{ "put-attribute insert ", PUT_ATTR_INSERT }, { "put-attribute replace ", PUT_ATTR_REPLACE },
		{ "delete-element ", DEL_ELEM },             { "delete-attribute ", DEL_ATTR },
	};
	const char *sel = NULL, *q;

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		size_t n = strlen(verbs[i].head);

		if (strncmp(detail, verbs[i].head, n) == 0) {
			sel = detail + n;
			*verb = verbs[i].verb;
			break;
		}
	}
	if (!sel)
		return false;
	q = strchr(sel, '?');
	if (xcap_percent_decode(sel, q ? (size_t)(q - sel) : strlen(sel), node_selector))
		return false;
	*query = q ? xstrdup(q + 1) : NULL;
	return true;
}

/* @new is @old with old[from, to) replaced by new[from, new_to). */
static bool is_splice(const struct xml_scan *o, const struct xml_scan *n, size_t from, size_t to, size_t new_to)
{
	return to <= o->len && new_to <= n->len && from <= to && from <= new_to &&
	       o->len - to == n->len - new_to && memcmp(o->data, n->data, from) == 0 &&
	       memcmp(o->data + to, n->data + new_to, o->len - to) == 0;
}

/* The child element of @parent in @s that ends (or starts) at @off. */
static uint32_t child_at(const struct xml_scan *s, uint32_t parent, size_t off, bool is_end)
{
	for (uint32_t c = s->elems[parent].first_child; c != XML_SCAN_NONE; c = s->elems[c].next_sibling)
		if ((is_end ? s->elems[c].end : s->elems[c].start) == off)
			return c;
	return XML_SCAN_NONE;
}

/* The selected element in @o (@ne: in @n) and the patch's selector for it. */
struct detail {
	struct differ *d;
	const struct xml_scan *o, *n;
	struct xcap_selector *sel;
	size_t nsteps;
	struct path p;
};

/* put-element insert: an <add> at the parent's end, or next to a sibling. */
static enum xdms_err detail_elem_insert(struct detail *dt)
{
	struct differ *d = dt->d;
	const struct xml_scan *o = dt->o, *n = dt->n;
	const struct xml_scan_elem *pe;
	uint32_t po, sib, ne;
	size_t off;
	enum xdms_err err;

	if (dt->nsteps < 2 || xcap_selector_select(dt->sel, n, dt->nsteps, &ne, NULL) != 1 ||
	    xcap_selector_select(dt->sel, o, dt->nsteps - 1, &po, NULL) != 1)
		return XDMS_ERR_NOTFOUND;
	pe = &o->elems[po];
	off = n->elems[ne].start;
	if (pe->is_empty) {
		/* node.c opened "<p .../>" into "<p ...>" body "</p>". */
		size_t at = pe->start_end - 2, tail = n->elems[ne].end;

		if (off != at + 1 || n->data[at] != '>' || n->len - tail < 3 + pe->name_len ||
		    memcmp(n->data + tail, "</", 2) != 0 ||
		    memcmp(n->data + tail + 2, o->data + pe->name_off, pe->name_len) != 0 ||
		    n->data[tail + 2 + pe->name_len] != '>' ||
		    !is_splice(o, n, at, pe->start_end, tail + 3 + pe->name_len))
			return XDMS_ERR_NOTFOUND;
		err = path_of(d, &dt->p, o, po);
		if (!err)
			err = op_open(d, "add", &dt->p, NULL, true);
	} else {
		if (off < pe->start_end || off > pe->end_start || !is_splice(o, n, off, off, n->elems[ne].end))
			return XDMS_ERR_NOTFOUND;
		/* RFC 5261 §4.3: without pos the content becomes the last
		 * child; "before"/"after" put it next to a sibling. */
		if (off == pe->end_start) {
			err = path_of(d, &dt->p, o, po);
			if (!err)
				err = op_open(d, "add", &dt->p, NULL, true);
		} else if ((sib = child_at(o, po, off, true)) != XML_SCAN_NONE) {
			err = path_of(d, &dt->p, o, sib);
			if (!err)
				err = op_open(d, "add", &dt->p, " pos=\"after\"", true);
		} else if ((sib = child_at(o, po, off, false)) != XML_SCAN_NONE) {
			err = path_of(d, &dt->p, o, sib);
			if (!err)
				err = op_open(d, "add", &dt->p, " pos=\"before\"", true);
		} else {
			return XDMS_ERR_NOTFOUND; /* not a place node.c inserts at */
		}
	}
	if (!err)
		err = append_standalone(d->out, n, ne, true);
	if (!err)
		err = op_close(d, "add");
	return err;
}

/* put-element replace (@is_delete false) or delete-element: a <replace> or
 * a <remove> of the element. */
static enum xdms_err detail_elem_change(struct detail *dt, bool is_delete)
{
	struct differ *d = dt->d;
	const struct xml_scan *o = dt->o, *n = dt->n;
	uint32_t oe, ne = XML_SCAN_NONE;
	enum xdms_err err;

	if (xcap_selector_select(dt->sel, o, dt->nsteps, &oe, NULL) != 1)
		return XDMS_ERR_NOTFOUND;
	if (is_delete) {
		if (!is_splice(o, n, o->elems[oe].start, o->elems[oe].end, o->elems[oe].start))
			return XDMS_ERR_NOTFOUND;
	} else if (xcap_selector_select(dt->sel, n, dt->nsteps, &ne, NULL) != 1 ||
		   o->elems[oe].start != n->elems[ne].start ||
		   !is_splice(o, n, o->elems[oe].start, o->elems[oe].end, n->elems[ne].end)) {
		return XDMS_ERR_NOTFOUND;
	}
	/* The whole root: as large as the document anyway. */
	if (o->elems[oe].parent == XML_SCAN_NONE)
		return XDMS_ERR_UNSUPPORTED;
	err = path_of(d, &dt->p, o, oe);
	if (is_delete)
		return err ? err : op_open(d, "remove", &dt->p, NULL, false);
	if (!err)
		err = op_open(d, "replace", &dt->p, NULL, true);
	if (!err)
		err = append_standalone(d->out, n, ne, true);
	if (!err)
		err = op_close(d, "replace");
	return err;
}

/* put-attribute insert / replace, delete-attribute: an <add type="@a">, a
 * <replace> or a <remove> of the attribute. */
static enum xdms_err detail_attr(struct detail *dt, enum verb verb)
{
	struct differ *d = dt->d;
	const struct xml_scan *o = dt->o, *n = dt->n;
	const char *ans, *alocal, *aprefix;
	uint32_t oe, ne, oa, na = XML_SCAN_NONE;
	enum xdms_err err;

	xcap_selector_attr(dt->sel, &ans, &alocal, &aprefix);
	if (xcap_selector_select(dt->sel, o, dt->nsteps, &oe, NULL) != 1)
		return XDMS_ERR_NOTFOUND;
	oa = xml_scan_attr_find(o, oe, ans, alocal, strlen(alocal));
	if (verb != DEL_ATTR) {
		if (xcap_selector_select(dt->sel, n, dt->nsteps, &ne, NULL) != 1)
			return XDMS_ERR_NOTFOUND;
		na = xml_scan_attr_find(n, ne, ans, alocal, strlen(alocal));
		if (na == XML_SCAN_NONE)
			return XDMS_ERR_NOTFOUND;
	}
	if (verb == PUT_ATTR_INSERT) {
		size_t at = o->elems[oe].attrs_end;
		char *type;

		/* node.c appended ' name="value"' after the last attribute. */
		if (oa != XML_SCAN_NONE || n->attrs[na].name_off != at + 1 || n->data[at] != ' ' ||
		    !is_splice(o, n, at, at, n->attrs[na].end))
			return XDMS_ERR_NOTFOUND;
		err = path_of(d, &dt->p, o, oe);
		if (err)
			return err;
		type = type_attr(d, &dt->p, n, na);
		err = op_open(d, "add", &dt->p, type, true);
		free(type);
		if (!err)
			err = append_value_text(d->out, n->data + n->attrs[na].value_off, n->attrs[na].value_len);
		if (!err)
			err = op_close(d, "add");
		return err;
	}
	if (oa == XML_SCAN_NONE)
		return XDMS_ERR_NOTFOUND;
	if (verb == PUT_ATTR_REPLACE) {
		const struct xml_scan_attr *a = &o->attrs[oa], *b = &n->attrs[na];

		if (a->value_off != b->value_off || !is_splice(o, n, a->value_off - 1, a->end, b->end))
			return XDMS_ERR_NOTFOUND;
	} else {
		const struct xml_scan_elem *el = &o->elems[oe];
		size_t from = oa == el->attr_first ? el->name_off + el->name_len : o->attrs[oa - 1].end;

		if (!is_splice(o, n, from, o->attrs[oa].end, from))
			return XDMS_ERR_NOTFOUND;
	}
	err = path_of(d, &dt->p, o, oe);
	if (err)
		return err;
	path_add_attr(d, &dt->p, o, oa);
	if (verb == DEL_ATTR)
		return op_open(d, "remove", &dt->p, NULL, false);
	err = op_open(d, "replace", &dt->p, NULL, true);
	if (!err)
		err = append_value_text(d->out, n->data + n->attrs[na].value_off, n->attrs[na].value_len);
	if (!err)
		err = op_close(d, "replace");
	return err;
}

/*
 * Writes the one operation of a detail. NOTFOUND when the detail does not
 * describe @o -> @n (the caller then diffs top-down), UNSUPPORTED when the
 * change cannot be a patch.
 */
static enum xdms_err detail_patch(struct differ *d, const struct xml_scan *o, const struct xml_scan *n,
				  const char *detail)
{
	struct detail dt = { .d = d, .o = o, .n = n };
	enum verb verb;
	char *node_selector = NULL, *query = NULL;
	const char *why;
	bool is_attr_verb;
	enum xdms_err err = XDMS_ERR_NOTFOUND;

	path_init(&dt.p, d->path_max);
	if (!detail_parse(detail, &verb, &node_selector, &query))
		goto out;
	if (xcap_selector_parse(node_selector, query, d->ns, &dt.sel, &why))
		goto out;
	is_attr_verb = verb == PUT_ATTR_INSERT || verb == PUT_ATTR_REPLACE || verb == DEL_ATTR;
	if (xcap_selector_kind(dt.sel) != (is_attr_verb ? XCAP_NODE_ATTRIBUTE : XCAP_NODE_ELEMENT))
		goto out;
	dt.nsteps = xcap_selector_steps(dt.sel);
	switch (verb) {
	case PUT_ELEM_INSERT:
		err = detail_elem_insert(&dt);
		break;
	case PUT_ELEM_REPLACE:
	case DEL_ELEM:
		err = detail_elem_change(&dt, verb == DEL_ELEM);
		break;
	case PUT_ATTR_INSERT:
	case PUT_ATTR_REPLACE:
	case DEL_ATTR:
		err = detail_attr(&dt, verb);
		break;
	}
out:
	path_cleanup(&dt.p);
	xcap_selector_free(dt.sel);
	free(node_selector);
	free(query);
	return err;
}

enum xdms_err diff_patch(const char *old_doc, size_t old_len, const char *new_doc, size_t new_len,
			 const char *detail, const char *ns, const char *prefix, struct buf *ops, bool *is_too_big)
{
	struct xml_scan *o = NULL, *n = NULL;
	struct differ d;
	struct buf local;
	enum xdms_err err;

	memset(&d, 0, sizeof(d));
	buf_init(&local, new_len);
	if (is_too_big)
		*is_too_big = false;
	if (!old_doc || !new_doc || !ns || !ops || !is_too_big || !xml_is_free_prefix(prefix)) {
		err = XDMS_ERR_INVAL;
		goto out;
	}
	err = xml_scan_build(old_doc, old_len, &o);
	if (!err)
		err = xml_scan_build(new_doc, new_len, &n);
	if (err) {
		err = XDMS_ERR_PARSE;
		goto out;
	}
	/* Nothing changed (a PUT of the same bytes): no operation at all. */
	if (old_len == new_len && memcmp(old_doc, new_doc, old_len) == 0)
		goto out;
	d.ns = ns;
	d.prefix = prefix;
	/* A selector names each element of one chain of ancestors once (their
	 * names are distinct bytes of a document; the last step may be the
	 * other document's), and adds per step at most a generated prefix
	 * (@prefix and a counter), "/", ":", a position and a node test. */
	d.path_max = old_len + new_len + (XML_SCAN_MAX_DEPTH + 3) * (strlen(prefix) + 72);
	d.out = &local;
	err = detail ? detail_patch(&d, o, n, detail) : XDMS_ERR_NOTFOUND;
	if (err == XDMS_ERR_NOTFOUND) {
		buf_reset(&local);
		differ_reset(&d);
		err = topdown_patch(&d, o, n);
	}
	/* The only bounded buffer here is the patch's own (capped at the new
	 * document's size), so TOOBIG means "larger than the document". */
	if (err == XDMS_ERR_TOOBIG || err == XDMS_ERR_UNSUPPORTED) {
		*is_too_big = true;
		err = XDMS_ERR_OK;
		goto out;
	}
	if (!err && local.len)
		err = buf_append(ops, local.data, local.len);
out:
	differ_reset(&d);
	free(d.gen);
	buf_cleanup(&local);
	xml_scan_free(o);
	xml_scan_free(n);
	return err;
}
