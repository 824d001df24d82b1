/* SPDX-License-Identifier: MIT */
/*
 * xcap-diff documents (RFC 5874) and RFC 5261 patches between two versions of
 * a stored document (see diff.h for the contracts and the patch conventions).
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
#include "notify/diff.h"
/* The node-selector grammar and evaluation live in src/xcap; this is the one
 * module outside it that needs them (to read change-feed details). */
#include "xcap/xcap.h"
#include "xml/xml.h"

#define NONE SIZE_MAX

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_ncname_ascii(const char *s)
{
	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || *p == '.'))
			return false;
	return true;
}

static bool has_bytes(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* ==== child nodes ============================================================== */

enum child_kind { CHILD_ELEM, CHILD_TEXT, CHILD_COMMENT, CHILD_PI };

/* One XPath child node: a text node is a maximal run of character data and
 * CDATA sections (XPath 1.0 §5.7). */
struct child {
	enum child_kind kind;
	bool is_ws;    /* text made of plain white space only */
	uint32_t elem; /* CHILD_ELEM: its scan index */
	size_t start, end;
};

struct children {
	struct child *v;
	size_t n, cap;
};

static void children_cleanup(struct children *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static void children_push(struct children *c, enum child_kind kind, uint32_t elem, size_t start, size_t end,
			  bool is_ws)
{
	if (kind == CHILD_TEXT && c->n && c->v[c->n - 1].kind == CHILD_TEXT && c->v[c->n - 1].end == start) {
		c->v[c->n - 1].end = end;
		c->v[c->n - 1].is_ws = c->v[c->n - 1].is_ws && is_ws;
		return;
	}
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = (struct child){ kind, is_ws, elem, start, end };
}

/* The child nodes of element @e, in document order. PARSE for content the
 * scanner should not have accepted. */
static enum xdms_err children_collect(const struct xml_scan *s, uint32_t e, struct children *out)
{
	const struct xml_scan_elem *el = &s->elems[e];
	const char *d = s->data;
	size_t pos = el->start_end, to = el->end_start;
	uint32_t c = el->first_child;

	out->n = 0;
	while (pos < to) {
		const char *hit;

		if (c != XML_SCAN_NONE && s->elems[c].start == pos) {
			children_push(out, CHILD_ELEM, c, pos, s->elems[c].end, false);
			pos = s->elems[c].end;
			c = s->elems[c].next_sibling;
			continue;
		}
		if (d[pos] != '<') {
			const char *lt = memchr(d + pos, '<', to - pos);
			size_t stop = lt ? (size_t)(lt - d) : to;
			bool is_ws = true;

			for (size_t i = pos; i < stop && is_ws; i++)
				is_ws = is_space(d[i]);
			children_push(out, CHILD_TEXT, XML_SCAN_NONE, pos, stop, is_ws);
			pos = stop;
		} else if (to - pos >= 4 && memcmp(d + pos, "<!--", 4) == 0) {
			hit = memmem(d + pos + 4, to - pos - 4, "-->", 3);
			if (!hit)
				return XDMS_ERR_PARSE;
			children_push(out, CHILD_COMMENT, XML_SCAN_NONE, pos, (size_t)(hit - d) + 3, false);
			pos = (size_t)(hit - d) + 3;
		} else if (to - pos >= 9 && memcmp(d + pos, "<![CDATA[", 9) == 0) {
			hit = memmem(d + pos + 9, to - pos - 9, "]]>", 3);
			if (!hit)
				return XDMS_ERR_PARSE;
			children_push(out, CHILD_TEXT, XML_SCAN_NONE, pos, (size_t)(hit - d) + 3, false);
			pos = (size_t)(hit - d) + 3;
		} else if (to - pos >= 2 && d[pos + 1] == '?') {
			hit = memmem(d + pos + 2, to - pos - 2, "?>", 2);
			if (!hit)
				return XDMS_ERR_PARSE;
			children_push(out, CHILD_PI, XML_SCAN_NONE, pos, (size_t)(hit - d) + 2, false);
			pos = (size_t)(hit - d) + 2;
		} else {
			return XDMS_ERR_PARSE;
		}
	}
	return XDMS_ERR_OK;
}

/*
 * The comments and PIs outside the root element (the document node's other
 * children), without the XML declaration: the next one at or after *pos
 * before @end, or false.
 */
static bool misc_next(const struct xml_scan *s, size_t *pos, size_t end, size_t *tok, size_t *tok_end)
{
	const char *d = s->data;

	for (;;) {
		const char *hit;
		size_t p = *pos;

		while (p < end && d[p] != '<')
			p++;
		if (end - p < 4)
			return false; /* none left (the shortest, "<?a?>", has 5 bytes) */
		if (memcmp(d + p, "<!--", 4) == 0)
			hit = memmem(d + p + 4, end - p - 4, "-->", 3);
		else
			hit = memmem(d + p + 2, end - p - 2, "?>", 2);
		if (!hit)
			return false;
		*tok = p;
		*tok_end = (size_t)(hit - d) + (d[p + 1] == '!' ? 3 : 2);
		*pos = *tok_end;
		/* The declaration may only open the document (XML 1.0 §2.8). */
		if (end - p >= 6 && memcmp(d + p, "<?xml", 5) == 0 && (is_space(d[p + 5]) || d[p + 5] == '?'))
			continue;
		return true;
	}
}

/* The document node's comments and PIs are the same in @a and @b. */
static bool misc_equal(const struct xml_scan *a, const struct xml_scan *b)
{
	for (int part = 0; part < 2; part++) {
		size_t pa = part ? a->elems[0].end : 0, ea = part ? a->len : a->elems[0].start;
		size_t pb = part ? b->elems[0].end : 0, eb = part ? b->len : b->elems[0].start;

		for (;;) {
			size_t ta, ta_end, tb, tb_end;
			bool has_a = misc_next(a, &pa, ea, &ta, &ta_end), has_b = misc_next(b, &pb, eb, &tb, &tb_end);

			if (has_a != has_b)
				return false;
			if (!has_a)
				break;
			if (ta_end - ta != tb_end - tb || memcmp(a->data + ta, b->data + tb, ta_end - ta) != 0)
				return false;
		}
	}
	return true;
}

/* ==== namespaces: what an element needs to stand alone ========================== */

struct use {
	const char *prefix;
	size_t len;
	const char *uri;
};

/* Element @k declares @prefix among its first @limit attributes. */
static bool declares(const struct xml_scan *s, uint32_t k, uint32_t limit, const char *prefix, size_t len)
{
	const struct xml_scan_elem *el = &s->elems[k];

	for (uint32_t i = 0; i < el->attr_count && i < limit; i++) {
		const struct xml_scan_attr *a = &s->attrs[el->attr_first + i];

		if (!a->is_xmlns)
			continue;
		if (len == 0 ? a->prefix_len == 0
			     : (a->prefix_len == 5 && a->name_len == 6 + len &&
				memcmp(s->data + a->name_off + 6, prefix, len) == 0))
			return true;
	}
	return false;
}

/*
 * "f": appends to @out the declarations element @e of @s needs to stand
 * alone, ' xmlns="uri"' / ' xmlns:p="uri"' in the order of first use, with
 * the bindings in scope at @ctx_elem of @ctx (XML_SCAN_NONE: the document
 * level). Only the first @skip_from attributes of @e itself count as its
 * declarations. UNSUPPORTED when a needed prefix is bound nowhere.
 */
static enum xdms_err ns_needed(const struct xml_scan *s, uint32_t e, uint32_t skip_from, const struct xml_scan *ctx,
			       uint32_t ctx_elem, struct buf *out)
{
	const struct xml_scan_elem *top = &s->elems[e];
	uint32_t stack[XML_SCAN_MAX_DEPTH + 1];
	struct use *need = NULL;
	size_t need_n = 0, need_cap = 0;
	enum xdms_err err = XDMS_ERR_OK;

	for (uint32_t j = e; j < s->elem_count && (j == e || s->elems[j].start < top->end); j++) {
		const struct xml_scan_elem *el = &s->elems[j];
		uint32_t level = el->depth - top->depth;

		if (level > XML_SCAN_MAX_DEPTH) {
			err = XDMS_ERR_UNSUPPORTED;
			goto out;
		}
		stack[level] = j;
		for (int64_t k = -1; k < (int64_t)el->attr_count; k++) {
			const char *prefix;
			size_t len;
			bool is_declared = false, is_known = false;

			if (k < 0) {
				prefix = s->data + el->name_off;
				len = el->prefix_len;
			} else {
				const struct xml_scan_attr *a = &s->attrs[el->attr_first + k];

				if (a->is_xmlns || !a->prefix_len)
					continue;
				prefix = s->data + a->name_off;
				len = a->prefix_len;
			}
			if (len == 3 && memcmp(prefix, "xml", 3) == 0)
				continue;
			for (int64_t l = level; l >= 0 && !is_declared; l--)
				is_declared = declares(s, stack[l], stack[l] == e ? skip_from : UINT32_MAX, prefix,
						       len);
			for (size_t i = 0; i < need_n && !is_declared && !is_known; i++)
				is_known = need[i].len == len && memcmp(need[i].prefix, prefix, len) == 0;
			if (is_declared || is_known)
				continue;
			if (need_n == need_cap) {
				need_cap = need_cap ? need_cap * 2 : 4;
				need = xrealloc(need, need_cap * sizeof(*need));
			}
			need[need_n].prefix = prefix;
			need[need_n].len = len;
			need[need_n].uri = ctx_elem == XML_SCAN_NONE ? (len ? NULL : "")
								    : xml_scan_prefix_ns(ctx, ctx_elem, prefix, len);
			if (!need[need_n].uri) {
				err = XDMS_ERR_UNSUPPORTED;
				goto out;
			}
			need_n++;
		}
	}
	for (size_t i = 0; i < need_n && !err; i++) {
		err = buf_append_str(out, need[i].len ? " xmlns:" : " xmlns");
		if (!err)
			err = buf_append(out, need[i].prefix, need[i].len);
		if (!err)
			err = buf_append_str(out, "=\"");
		if (!err)
			err = buf_append_xml_escaped(out, need[i].uri, strlen(need[i].uri));
		if (!err)
			err = buf_append_str(out, "\"");
	}
out:
	free(need);
	return err;
}

/*
 * Element @e of @s as it can stand alone: its bytes with "f" after its own
 * attributes, in the context of its parent. With @is_marked the added
 * declarations are preceded by one extra space, which tells "g" that they
 * were added (white space inside a tag carries no information in XML, and
 * authors rarely put two spaces before a declaration).
 */
static enum xdms_err append_standalone(struct buf *out, const struct xml_scan *s, uint32_t e, bool is_marked)
{
	const struct xml_scan_elem *el = &s->elems[e];
	struct buf need;
	enum xdms_err err;

	buf_init(&need, SIZE_MAX / 2);
	err = ns_needed(s, e, el->attr_count, s, el->parent, &need);
	if (!err)
		err = buf_append(out, s->data + el->start, el->attrs_end - el->start);
	if (!err && need.len && is_marked)
		err = buf_append_str(out, " ");
	if (!err && need.len)
		err = buf_append(out, need.data, need.len);
	if (!err)
		err = buf_append(out, s->data + el->attrs_end, el->end - el->attrs_end);
	buf_cleanup(&need);
	return err;
}

/*
 * "g": the bytes of element @e of @s (an element inside an operation) to put
 * into the document @ctx under @ctx_elem: without the trailing, marked
 * declarations that "f" would add to the element without them, when there
 * are such.
 */
static enum xdms_err append_unpatched(struct buf *out, const struct xml_scan *s, uint32_t e, const struct xml_scan *ctx,
				      uint32_t ctx_elem)
{
	const struct xml_scan_elem *el = &s->elems[e];
	uint32_t n = el->attr_count, first = n;
	enum xdms_err err;

	while (first > 0 && s->attrs[el->attr_first + first - 1].is_xmlns)
		first--;
	for (uint32_t cut = first; cut < n; cut++) {
		size_t from = cut ? s->attrs[el->attr_first + cut - 1].end : el->name_off + el->name_len;
		size_t to = s->attrs[el->attr_first + n - 1].end;
		struct buf want;
		bool is_match;

		buf_init(&want, to - from);
		is_match = s->data[from] == ' ' && buf_append_str(&want, " ") == XDMS_ERR_OK &&
			   ns_needed(s, e, cut, ctx, ctx_elem, &want) == XDMS_ERR_OK && want.len == to - from &&
			   memcmp(want.data, s->data + from, to - from) == 0;
		buf_cleanup(&want);
		if (is_match) {
			err = buf_append(out, s->data + el->start, from - el->start);
			if (!err)
				err = buf_append(out, s->data + to, el->end - to);
			return err;
		}
	}
	return buf_append(out, s->data + el->start, el->end - el->start);
}

/* ==== attribute values <-> character data ======================================= */

/*
 * An attribute value as written between its quotes (@raw), as character data
 * for an operation's content. Verbatim when that reads as the same value;
 * otherwise (literal tab, CR, LF, which the attribute normalizes to spaces,
 * or "]]>") the normalized value, escaped.
 */
static enum xdms_err append_value_text(struct buf *out, const char *raw, size_t len)
{
	struct buf v;
	enum xdms_err err;

	if (!memchr(raw, '\t', len) && !memchr(raw, '\n', len) && !memchr(raw, '\r', len) &&
	    !has_bytes(raw, len, "]]>"))
		return buf_append(out, raw, len);
	buf_init(&v, len + 1);
	err = xml_attvalue_decode(raw, len, &v);
	if (!err)
		err = buf_append_xml_escaped(out, v.data ? v.data : "", v.len);
	buf_cleanup(&v);
	return err;
}

/* Decodes character data (references, CDATA sections) to its characters. */
static enum xdms_err chardata_decode(const char *raw, size_t len, struct buf *out)
{
	size_t i = 0;
	enum xdms_err err = XDMS_ERR_OK;

	while (i < len && !err) {
		if (len - i >= 9 && memcmp(raw + i, "<![CDATA[", 9) == 0) {
			const char *e = memmem(raw + i + 9, len - i - 9, "]]>", 3);

			if (!e)
				return XDMS_ERR_PARSE;
			err = buf_append(out, raw + i + 9, (size_t)(e - raw) - i - 9);
			i = (size_t)(e - raw) + 3;
		} else if (raw[i] == '&') {
			const char *semi = memchr(raw + i, ';', len - i);

			if (!semi)
				return XDMS_ERR_PARSE;
			/* A reference has no white space, so the attribute-value
			 * decoder reads it the same way. */
			err = xml_attvalue_decode(raw + i, (size_t)(semi - raw) - i + 1, out);
			i = (size_t)(semi - raw) + 1;
		} else if (raw[i] == '<') {
			return XDMS_ERR_INVAL;
		} else {
			err = buf_append(out, raw + i, 1);
			i++;
		}
	}
	return err;
}

/* The inverse of append_value_text() for the applier: character data @text
 * as an attribute value to write between quotes. */
static enum xdms_err value_from_text(const char *text, size_t len, struct buf *out)
{
	struct buf v;
	enum xdms_err err;
	bool has_dq = memchr(text, '"', len) != NULL, has_sq = memchr(text, '\'', len) != NULL;

	if (!memchr(text, '<', len) && !memchr(text, '\t', len) && !memchr(text, '\n', len) &&
	    !memchr(text, '\r', len) && !(has_dq && has_sq))
		return buf_append(out, text, len);
	buf_init(&v, len + 1);
	err = chardata_decode(text, len, &v);
	for (size_t i = 0; i < v.len && !err; i++) {
		char c = v.data[i];

		if (c == '\t')
			err = buf_append_str(out, "&#9;");
		else if (c == '\n')
			err = buf_append_str(out, "&#10;");
		else if (c == '\r')
			err = buf_append_str(out, "&#13;");
		else
			err = buf_append_xml_escaped(out, &c, 1);
	}
	buf_cleanup(&v);
	return err;
}

/* ==== selectors ================================================================== */

/* A namespace declaration an operation element carries for its selector. */
struct decl {
	const char *prefix;
	size_t prefix_len;
	const char *uri;
};

/* A selector being built, and the declarations it needs. */
struct path {
	struct buf text;
	struct decl *decls;
	size_t decl_n, decl_cap;
};

static void path_init(struct path *p)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->text, SIZE_MAX / 2);
}

static void path_cleanup(struct path *p)
{
	buf_cleanup(&p->text);
	free(p->decls);
	memset(p, 0, sizeof(*p));
}

static void path_copy(struct path *dst, const struct path *src)
{
	path_init(dst);
	if (src->text.len && buf_append(&dst->text, src->text.data, src->text.len))
		abort(); /* unbounded buffer */
	if (src->decl_n) {
		dst->decls = xmalloc(src->decl_n * sizeof(*dst->decls));
		memcpy(dst->decls, src->decls, src->decl_n * sizeof(*dst->decls));
		dst->decl_n = dst->decl_cap = src->decl_n;
	}
}

/* Declares @prefix as @uri for this selector; false when it already means
 * something else. */
static bool path_declare(struct path *p, const char *prefix, size_t len, const char *uri)
{
	for (size_t i = 0; i < p->decl_n; i++)
		if (p->decls[i].prefix_len == len && memcmp(p->decls[i].prefix, prefix, len) == 0)
			return strcmp(p->decls[i].uri, uri) == 0;
	if (p->decl_n == p->decl_cap) {
		p->decl_cap = p->decl_cap ? p->decl_cap * 2 : 4;
		p->decls = xrealloc(p->decls, p->decl_cap * sizeof(*p->decls));
	}
	p->decls[p->decl_n++] = (struct decl){ prefix, len, uri };
	return true;
}

static void path_add(struct path *p, const char *s)
{
	if (buf_append_str(&p->text, s))
		abort();
}

static void path_addf(struct path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path_addf(struct path *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(&p->text, fmt, ap))
		abort();
	va_end(ap);
}

struct gen_ns {
	const char *uri;
	char *prefix;
};

struct differ {
	const char *ns;       /* the usage's default namespace */
	const char *prefix;   /* written for it */
	struct buf *out;      /* the operations, capped at the new document's size */
	struct gen_ns *gen;   /* generated prefixes for other namespaces */
	size_t gen_n, gen_cap;
};

/* The prefix the patch uses for namespace @uri (not ""). */
static const char *prefix_for(struct differ *d, const char *uri)
{
	if (strcmp(uri, d->ns) == 0)
		return d->prefix;
	for (size_t i = 0; i < d->gen_n; i++)
		if (strcmp(d->gen[i].uri, uri) == 0)
			return d->gen[i].prefix;
	if (d->gen_n == d->gen_cap) {
		d->gen_cap = d->gen_cap ? d->gen_cap * 2 : 4;
		d->gen = xrealloc(d->gen, d->gen_cap * sizeof(*d->gen));
	}
	d->gen[d->gen_n].uri = uri;
	d->gen[d->gen_n].prefix = xasprintf("%s%zu", d->prefix, d->gen_n + 1);
	return d->gen[d->gen_n++].prefix;
}

static void differ_reset(struct differ *d)
{
	for (size_t i = 0; i < d->gen_n; i++)
		free(d->gen[i].prefix);
	d->gen_n = 0;
}

/* A name in namespace @uri for a selector: "P:" appended (nothing for ""). */
static void path_add_prefix(struct differ *d, struct path *p, const char *uri)
{
	const char *pf;

	if (!uri[0])
		return;
	if (strcmp(uri, XML_NS_XML) == 0) {
		path_add(p, "xml:");
		return;
	}
	pf = prefix_for(d, uri);
	if (pf != d->prefix && !path_declare(p, pf, strlen(pf), uri))
		abort(); /* generated prefixes are unique per namespace */
	path_addf(p, "%s:", pf);
}

/* Appends the step for element @e at @pos of @total siblings of its group.
 * UNSUPPORTED for an element whose prefix is bound nowhere. */
static enum xdms_err path_add_step(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t e, size_t pos,
				   size_t total)
{
	const struct xml_scan_elem *el = &s->elems[e];
	size_t local_len;
	const char *local = xml_scan_elem_local(s, e, &local_len);

	if (!el->ns)
		return XDMS_ERR_UNSUPPORTED;
	if (p->text.len)
		path_add(p, "/");
	if (!el->ns[0]) {
		/* No namespace: an unprefixed name would mean xcap-diff's own
		 * (RFC 5261 §4.2.1), so "*" counted among all elements. */
		path_add(p, "*");
	} else {
		path_add_prefix(d, p, el->ns);
		path_addf(p, "%.*s", (int)local_len, local);
	}
	if (total > 1)
		path_addf(p, "[%zu]", pos);
	return XDMS_ERR_OK;
}

/* Element @c is in the counting group of element @e: same expanded name, or
 * any element when @e is addressed as "*". */
static bool same_group(const struct xml_scan *s, uint32_t c, uint32_t e)
{
	const struct xml_scan_elem *ce = &s->elems[c], *ee = &s->elems[e];
	size_t cl, el;
	const char *cn = xml_scan_elem_local(s, c, &cl), *en = xml_scan_elem_local(s, e, &el);

	if (!ee->ns[0])
		return true;
	return ce->ns && strcmp(ce->ns, ee->ns) == 0 && cl == el && memcmp(cn, en, cl) == 0;
}

/* The whole path of element @e in @s as it is (one operation on @s). */
static enum xdms_err path_of(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t e)
{
	uint32_t chain[XML_SCAN_MAX_DEPTH + 1];
	size_t n = 0;
	enum xdms_err err = XDMS_ERR_OK;

	for (uint32_t k = e; k != XML_SCAN_NONE && n <= XML_SCAN_MAX_DEPTH; k = s->elems[k].parent)
		chain[n++] = k;
	for (size_t i = n; i-- > 0 && !err;) {
		uint32_t k = chain[i], parent = s->elems[k].parent;
		size_t pos = 1, total = 1;

		if (!s->elems[k].ns)
			return XDMS_ERR_UNSUPPORTED;
		if (parent != XML_SCAN_NONE) {
			total = 0;
			uint32_t c = s->elems[parent].first_child;

			for (; c != XML_SCAN_NONE; c = s->elems[c].next_sibling) {
				if (!same_group(s, c, k))
					continue;
				total++;
				if (c == k)
					pos = total;
			}
		}
		err = path_add_step(d, p, s, k, pos, total);
	}
	return err;
}

/* Appends to @out the name of attribute @a of @s as selector @p writes it,
 * declaring on @p what it needs. The document's own prefix is kept when it
 * does not clash, so that an applier adding the attribute writes that prefix
 * again. */
static void attr_name(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t a, struct buf *out)
{
	const struct xml_scan_attr *at = &s->attrs[a];
	const char *name = s->data + at->name_off, *pf = NULL;
	size_t skip = at->prefix_len ? at->prefix_len + 1 : 0;

	if (at->ns[0] && strcmp(at->ns, XML_NS_XML) != 0) {
		bool is_main = at->prefix_len == strlen(d->prefix) && memcmp(name, d->prefix, at->prefix_len) == 0;

		if (is_main ? strcmp(at->ns, d->ns) == 0 : path_declare(p, name, at->prefix_len, at->ns)) {
			if (buf_append(out, name, at->name_len))
				abort(); /* unbounded */
			return;
		}
		pf = prefix_for(d, at->ns);
		if (pf != d->prefix && !path_declare(p, pf, strlen(pf), at->ns))
			abort(); /* generated prefixes are unique per namespace */
	} else if (at->ns[0]) {
		pf = "xml";
	}
	if ((pf && (buf_append_str(out, pf) || buf_append_str(out, ":"))) ||
	    buf_append(out, name + skip, at->name_len - skip))
		abort();
}

/* Appends "/@name" for attribute @a of @s. */
static void path_add_attr(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t a)
{
	path_add(p, "/@");
	attr_name(d, p, s, a, &p->text);
}

/* The ' type="@name"' of an <add> of attribute @a of @s to the element @p
 * selects (RFC 5261 §4.3). Heap string. */
static char *type_attr(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t a)
{
	struct buf t;

	buf_init(&t, SIZE_MAX / 2);
	if (buf_append_str(&t, " type=\"@"))
		abort();
	attr_name(d, p, s, a, &t);
	if (buf_append_str(&t, "\""))
		abort();
	return buf_take(&t, NULL);
}

/* ==== writing operations ============================================================ */

/* Opens "    <NAME sel=..." with @extra attributes (" pos=\"after\"") and
 * the selector's declarations; @has_content closes with '>' or "/>\n". */
static enum xdms_err op_open(struct differ *d, const char *name, const struct path *sel, const char *extra,
			     bool has_content)
{
	struct buf *o = d->out;
	enum xdms_err err;

	err = buf_printf(o, "    <%s sel=\"", name);
	if (!err)
		err = buf_append_xml_escaped(o, sel->text.data ? sel->text.data : "", sel->text.len);
	if (!err)
		err = buf_printf(o, "\"%s", extra ? extra : "");
	for (size_t i = 0; i < sel->decl_n && !err; i++) {
		err = buf_printf(o, " xmlns:%.*s=\"", (int)sel->decls[i].prefix_len, sel->decls[i].prefix);
		if (!err)
			err = buf_append_xml_escaped(o, sel->decls[i].uri, strlen(sel->decls[i].uri));
		if (!err)
			err = buf_append_str(o, "\"");
	}
	if (!err)
		err = buf_append_str(o, has_content ? ">" : "/>\n");
	return err;
}

static enum xdms_err op_close(struct differ *d, const char *name)
{
	return buf_printf(d->out, "</%s>\n", name);
}

/* One operation whose content is the bytes [from, to) of @s, elements made
 * to stand alone (their context: their parent in @s). */
static enum xdms_err op_nodes(struct differ *d, const char *name, const struct path *sel, const char *extra,
			      const struct xml_scan *s, const struct children *ch, size_t from, size_t to)
{
	enum xdms_err err = op_open(d, name, sel, extra, true);

	for (size_t i = from; i < to && !err; i++) {
		const struct child *c = &ch->v[i];

		if (c->kind == CHILD_ELEM)
			err = append_standalone(d->out, s, c->elem, true);
		else
			err = buf_append(d->out, s->data + c->start, c->end - c->start);
	}
	if (!err)
		err = op_close(d, name);
	return err;
}

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

/*
 * Writes the one operation of a detail. NOTFOUND when the detail does not
 * describe @o -> @n (the caller then diffs top-down), UNSUPPORTED when the
 * change cannot be a patch.
 */
static enum xdms_err detail_patch(struct differ *d, const struct xml_scan *o, const struct xml_scan *n,
				  const char *detail)
{
	struct xcap_selector *sel = NULL;
	struct path p;
	enum verb verb;
	char *node_selector = NULL, *query = NULL;
	const char *why, *ans, *alocal, *aprefix;
	uint32_t oe = XML_SCAN_NONE, ne = XML_SCAN_NONE, oa, na = XML_SCAN_NONE;
	size_t nsteps;
	bool is_attr_verb;
	enum xdms_err err = XDMS_ERR_NOTFOUND;

	path_init(&p);
	if (!detail_parse(detail, &verb, &node_selector, &query))
		goto out;
	if (xcap_selector_parse(node_selector, query, d->ns, &sel, &why))
		goto out;
	is_attr_verb = verb == PUT_ATTR_INSERT || verb == PUT_ATTR_REPLACE || verb == DEL_ATTR;
	if (xcap_selector_kind(sel) != (is_attr_verb ? XCAP_NODE_ATTRIBUTE : XCAP_NODE_ELEMENT))
		goto out;
	nsteps = xcap_selector_steps(sel);

	switch (verb) {
	case PUT_ELEM_INSERT: {
		uint32_t po, sib;
		size_t off;
		const struct xml_scan_elem *pe;

		if (nsteps < 2 || xcap_selector_select(sel, n, nsteps, &ne, NULL) != 1 ||
		    xcap_selector_select(sel, o, nsteps - 1, &po, NULL) != 1)
			goto out;
		pe = &o->elems[po];
		off = n->elems[ne].start;
		if (pe->is_empty) {
			/* node.c opened "<p .../>" into "<p ...>" body "</p>". */
			size_t at = pe->start_end - 2, tail = n->elems[ne].end;

			if (off != at + 1 || n->data[at] != '>' ||
			    n->len - tail < 3 + pe->name_len || memcmp(n->data + tail, "</", 2) != 0 ||
			    memcmp(n->data + tail + 2, o->data + pe->name_off, pe->name_len) != 0 ||
			    n->data[tail + 2 + pe->name_len] != '>' ||
			    !is_splice(o, n, at, pe->start_end, tail + 3 + pe->name_len))
				goto out;
			err = path_of(d, &p, o, po);
			if (!err)
				err = op_open(d, "add", &p, NULL, true);
		} else {
			if (off < pe->start_end || off > pe->end_start || !is_splice(o, n, off, off, n->elems[ne].end))
				goto out;
			/* RFC 5261 §4.3: without pos the content becomes the last
			 * child; "before"/"after" put it next to a sibling. */
			if (off == pe->end_start) {
				err = path_of(d, &p, o, po);
				if (!err)
					err = op_open(d, "add", &p, NULL, true);
			} else if ((sib = child_at(o, po, off, true)) != XML_SCAN_NONE) {
				err = path_of(d, &p, o, sib);
				if (!err)
					err = op_open(d, "add", &p, " pos=\"after\"", true);
			} else if ((sib = child_at(o, po, off, false)) != XML_SCAN_NONE) {
				err = path_of(d, &p, o, sib);
				if (!err)
					err = op_open(d, "add", &p, " pos=\"before\"", true);
			} else {
				goto out; /* not a place node.c inserts at */
			}
		}
		if (!err)
			err = append_standalone(d->out, n, ne, true);
		if (!err)
			err = op_close(d, "add");
		break;
	}
	case PUT_ELEM_REPLACE:
		if (xcap_selector_select(sel, o, nsteps, &oe, NULL) != 1 ||
		    xcap_selector_select(sel, n, nsteps, &ne, NULL) != 1 || o->elems[oe].start != n->elems[ne].start ||
		    !is_splice(o, n, o->elems[oe].start, o->elems[oe].end, n->elems[ne].end))
			goto out;
		if (o->elems[oe].parent == XML_SCAN_NONE) {
			/* The whole root: as large as the document anyway. */
			err = XDMS_ERR_UNSUPPORTED;
			goto out;
		}
		err = path_of(d, &p, o, oe);
		if (!err)
			err = op_open(d, "replace", &p, NULL, true);
		if (!err)
			err = append_standalone(d->out, n, ne, true);
		if (!err)
			err = op_close(d, "replace");
		break;
	case DEL_ELEM:
		if (xcap_selector_select(sel, o, nsteps, &oe, NULL) != 1 ||
		    !is_splice(o, n, o->elems[oe].start, o->elems[oe].end, o->elems[oe].start))
			goto out;
		if (o->elems[oe].parent == XML_SCAN_NONE) {
			err = XDMS_ERR_UNSUPPORTED;
			goto out;
		}
		err = path_of(d, &p, o, oe);
		if (!err)
			err = op_open(d, "remove", &p, NULL, false);
		break;
	case PUT_ATTR_INSERT:
	case PUT_ATTR_REPLACE:
	case DEL_ATTR:
		xcap_selector_attr(sel, &ans, &alocal, &aprefix);
		if (xcap_selector_select(sel, o, nsteps, &oe, NULL) != 1)
			goto out;
		oa = xml_scan_attr_find(o, oe, ans, alocal, strlen(alocal));
		if (verb != DEL_ATTR) {
			if (xcap_selector_select(sel, n, nsteps, &ne, NULL) != 1)
				goto out;
			na = xml_scan_attr_find(n, ne, ans, alocal, strlen(alocal));
			if (na == XML_SCAN_NONE)
				goto out;
		}
		if (verb == PUT_ATTR_INSERT) {
			size_t at = o->elems[oe].attrs_end;

			/* node.c appended ' name="value"' after the last attribute. */
			if (oa != XML_SCAN_NONE || n->attrs[na].name_off != at + 1 || n->data[at] != ' ' ||
			    !is_splice(o, n, at, at, n->attrs[na].end))
				goto out;
			err = path_of(d, &p, o, oe);
			if (err)
				goto out;
			{
				char *type = type_attr(d, &p, n, na);

				err = op_open(d, "add", &p, type, true);
				free(type);
			}
			if (!err)
				err = append_value_text(d->out, n->data + n->attrs[na].value_off,
							n->attrs[na].value_len);
			if (!err)
				err = op_close(d, "add");
			break;
		}
		if (oa == XML_SCAN_NONE)
			goto out;
		if (verb == PUT_ATTR_REPLACE) {
			const struct xml_scan_attr *a = &o->attrs[oa], *b = &n->attrs[na];

			if (a->value_off != b->value_off || !is_splice(o, n, a->value_off - 1, a->end, b->end))
				goto out;
		} else {
			const struct xml_scan_elem *el = &o->elems[oe];
			size_t from = oa == el->attr_first ? el->name_off + el->name_len : o->attrs[oa - 1].end;

			if (!is_splice(o, n, from, o->attrs[oa].end, from))
				goto out;
		}
		err = path_of(d, &p, o, oe);
		if (err)
			goto out;
		path_add_attr(d, &p, o, oa);
		if (verb == DEL_ATTR) {
			err = op_open(d, "remove", &p, NULL, false);
			break;
		}
		err = op_open(d, "replace", &p, NULL, true);
		if (!err)
			err = append_value_text(d->out, n->data + n->attrs[na].value_off, n->attrs[na].value_len);
		if (!err)
			err = op_close(d, "replace");
		break;
	}
out:
	path_cleanup(&p);
	xcap_selector_free(sel);
	free(node_selector);
	free(query);
	return err;
}

/* ==== the top-down diff ==================================================================== */

enum { GROUP_ELEM, GROUP_TEXT, GROUP_COMMENT, GROUP_PI, GROUP_NAMED };

/* A non-text child with the text node before it (text = NONE when absent). */
struct unit {
	size_t text, node;
	uint64_t hash;     /* of both nodes' bytes: a cheap "probably identical" */
	uint64_t tag_hash; /* of an element's start tag: "probably the same entry" */
};

/* The children of one element on one side, with their counting groups. */
struct side {
	const struct xml_scan *s;
	uint32_t elem;
	struct children ch;
	uint32_t *grp;       /* the group a child's position is counted in */
	uint32_t *off, *idx; /* per group, its children in ascending order */
	struct unit *u;
	size_t un;
	size_t tail;         /* trailing text child, NONE when absent */
};

static void side_cleanup(struct side *sd)
{
	children_cleanup(&sd->ch);
	free(sd->grp);
	free(sd->off);
	free(sd->idx);
	free(sd->u);
}

struct named {
	const char *ns, *local;
	size_t local_len;
	int side;
	size_t child;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);
	size_t n = x->local_len < y->local_len ? x->local_len : y->local_len;

	if (c)
		return c;
	c = memcmp(x->local, y->local, n);
	if (c)
		return c;
	return x->local_len < y->local_len ? -1 : x->local_len > y->local_len;
}

static size_t lower_bound(const uint32_t *v, size_t n, size_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Children of group @g among @sd's children [lo, hi). */
static size_t count_in(const struct side *sd, uint32_t g, size_t lo, size_t hi)
{
	const uint32_t *v = sd->idx + sd->off[g];
	size_t n = sd->off[g + 1] - sd->off[g];

	return lower_bound(v, n, hi) - lower_bound(v, n, lo);
}

/* FNV-1a over bytes [from, to) of @s, continuing @h. */
static uint64_t fnv(uint64_t h, const char *s, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return (h ^ 0x100u) * 1099511628211u;
}

#define FNV_BASIS 14695981039346656037u

/* A unit with its hashes. */
static struct unit unit_make(const struct side *sd, size_t text, size_t node)
{
	const struct child *c = &sd->ch.v[node];
	struct unit u = { text, node, FNV_BASIS, 0 };

	if (text != NONE)
		u.hash = fnv(u.hash, sd->s->data, sd->ch.v[text].start, sd->ch.v[text].end);
	u.hash = fnv(u.hash, sd->s->data, c->start, c->end);
	if (c->kind == CHILD_ELEM)
		u.tag_hash = fnv(FNV_BASIS, sd->s->data, c->start, sd->s->elems[c->elem].start_end);
	return u;
}

/* Builds both sides' children, units and shared groups. */
static enum xdms_err sides_build(struct side *sd /* [2] */)
{
	struct named *nm = NULL;
	size_t nm_n = 0, nm_cap = 0;
	uint32_t groups = GROUP_NAMED;
	enum xdms_err err;

	for (int k = 0; k < 2; k++) {
		err = children_collect(sd[k].s, sd[k].elem, &sd[k].ch);
		if (err)
			goto out;
		sd[k].grp = xcalloc(sd[k].ch.n + 1, sizeof(*sd[k].grp));
		sd[k].u = xcalloc(sd[k].ch.n + 1, sizeof(*sd[k].u));
		sd[k].tail = NONE;
		for (size_t i = 0, text = NONE; i < sd[k].ch.n; i++) {
			const struct child *c = &sd[k].ch.v[i];

			if (c->kind == CHILD_TEXT) {
				text = i;
				sd[k].grp[i] = GROUP_TEXT;
				if (i + 1 == sd[k].ch.n)
					sd[k].tail = i;
				continue;
			}
			sd[k].u[sd[k].un++] = unit_make(&sd[k], text, i);
			text = NONE;
			if (c->kind == CHILD_COMMENT) {
				sd[k].grp[i] = GROUP_COMMENT;
			} else if (c->kind == CHILD_PI) {
				sd[k].grp[i] = GROUP_PI;
			} else {
				const struct xml_scan_elem *el = &sd[k].s->elems[c->elem];

				if (!el->ns) {
					err = XDMS_ERR_UNSUPPORTED;
					goto out;
				}
				sd[k].grp[i] = GROUP_ELEM;
				if (!el->ns[0])
					continue;
				if (nm_n == nm_cap) {
					nm_cap = nm_cap ? nm_cap * 2 : 16;
					nm = xrealloc(nm, nm_cap * sizeof(*nm));
				}
				nm[nm_n].ns = el->ns;
				nm[nm_n].local = xml_scan_elem_local(sd[k].s, c->elem, &nm[nm_n].local_len);
				nm[nm_n].side = k;
				nm[nm_n].child = i;
				nm_n++;
			}
		}
	}
	if (nm_n)
		qsort(nm, nm_n, sizeof(*nm), named_cmp);
	for (size_t i = 0; i < nm_n; i++) {
		if (i && named_cmp(&nm[i - 1], &nm[i]) != 0)
			groups++;
		sd[nm[i].side].grp[nm[i].child] = groups;
	}
	if (nm_n)
		groups++;
	/* Every element also counts in GROUP_ELEM (for "*" steps). */
	for (int k = 0; k < 2; k++) {
		uint32_t *fill;

		sd[k].off = xcalloc(groups + 1, sizeof(*sd[k].off));
		for (size_t i = 0; i < sd[k].ch.n; i++) {
			sd[k].off[sd[k].grp[i] + 1]++;
			if (sd[k].grp[i] >= GROUP_NAMED)
				sd[k].off[GROUP_ELEM + 1]++;
		}
		for (uint32_t g = 0; g < groups; g++)
			sd[k].off[g + 1] += sd[k].off[g];
		sd[k].idx = xcalloc(sd[k].off[groups] + 1, sizeof(*sd[k].idx));
		fill = xcalloc(groups + 1, sizeof(*fill));
		for (size_t i = 0; i < sd[k].ch.n; i++) {
			uint32_t g = sd[k].grp[i];

			sd[k].idx[sd[k].off[g] + fill[g]++] = (uint32_t)i;
			if (g >= GROUP_NAMED)
				sd[k].idx[sd[k].off[GROUP_ELEM] + fill[GROUP_ELEM]++] = (uint32_t)i;
		}
		free(fill);
	}
	err = XDMS_ERR_OK;
out:
	free(nm);
	return err;
}

/* The current children are old [0, x) followed by new [y, end). */
struct state {
	size_t x, y;
};

/* Appends the step of old child @q (is_new false) or new child @q to @p. */
static enum xdms_err path_add_child(struct differ *d, struct path *p, const struct side *sd /* [2] */, struct state st,
				    bool is_new, size_t q)
{
	const struct side *own = &sd[is_new ? 1 : 0];
	uint32_t g = own->grp[q];
	size_t left = count_in(&sd[0], g, 0, st.x), total = left + count_in(&sd[1], g, st.y, sd[1].ch.n);
	size_t pos = is_new ? left + count_in(&sd[1], g, st.y, q) + 1 : count_in(&sd[0], g, 0, q) + 1;
	const struct child *c = &own->ch.v[q];
	static const char *const tests[] = { NULL, "text()", "comment()", "processing-instruction()" };

	if (c->kind == CHILD_ELEM)
		return path_add_step(d, p, own->s, c->elem, pos, total);
	path_addf(p, "/%s", tests[c->kind]);
	if (total > 1)
		path_addf(p, "[%zu]", pos);
	return XDMS_ERR_OK;
}

/* One operation on a child: @name with @extra at old child @q (or new child
 * @q when @is_new), with content new children [from, to) or none. */
static enum xdms_err child_op(struct differ *d, const struct path *parent, const struct side *sd, struct state st,
			      bool is_new, size_t q, const char *name, const char *extra, size_t from, size_t to,
			      bool has_content)
{
	struct path p;
	enum xdms_err err;

	path_copy(&p, parent);
	err = path_add_child(d, &p, sd, st, is_new, q);
	if (!err)
		err = has_content ? op_nodes(d, name, &p, extra, sd[1].s, &sd[1].ch, from, to)
				  : op_open(d, name, &p, extra, false);
	path_cleanup(&p);
	return err;
}

static bool child_equal(const struct side *sd, size_t a, size_t b)
{
	const struct child *x, *y;

	if (a == NONE || b == NONE)
		return a == NONE && b == NONE;
	x = &sd[0].ch.v[a];
	y = &sd[1].ch.v[b];
	return x->kind == y->kind && x->end - x->start == y->end - y->start &&
	       memcmp(sd[0].s->data + x->start, sd[1].s->data + y->start, x->end - x->start) == 0;
}

static bool unit_equal(const struct side *sd, const struct unit *a, const struct unit *b)
{
	return child_equal(sd, a->text, b->text) && child_equal(sd, a->node, b->node);
}

static size_t unit_start(const struct unit *u)
{
	return u->text != NONE ? u->text : u->node;
}

/* Same expanded name and the same namespace declarations: then the children
 * are in the same namespace context and can be compared byte for byte. */
static bool elem_compatible(const struct xml_scan *o, uint32_t oe, const struct xml_scan *n, uint32_t ne)
{
	const struct xml_scan_elem *a = &o->elems[oe], *b = &n->elems[ne];
	size_t al, bl, ad = 0, bd = 0;
	const char *an = xml_scan_elem_local(o, oe, &al), *bn = xml_scan_elem_local(n, ne, &bl);

	if (!a->ns || !b->ns || strcmp(a->ns, b->ns) != 0 || al != bl || memcmp(an, bn, al) != 0)
		return false;
	for (uint32_t i = 0; i < b->attr_count; i++)
		bd += n->attrs[b->attr_first + i].is_xmlns;
	for (uint32_t i = 0; i < a->attr_count; i++) {
		const struct xml_scan_attr *x = &o->attrs[a->attr_first + i];
		bool is_found = false;

		if (!x->is_xmlns)
			continue;
		ad++;
		for (uint32_t j = 0; j < b->attr_count && !is_found; j++) {
			const struct xml_scan_attr *y = &n->attrs[b->attr_first + j];

			is_found = y->is_xmlns && x->name_len == y->name_len &&
				   memcmp(o->data + x->name_off, n->data + y->name_off, x->name_len) == 0 &&
				   strcmp(x->ns, y->ns) == 0;
		}
		if (!is_found)
			return false;
	}
	return ad == bd;
}

/* The attribute values are equal once decoded. */
static bool value_equal(const struct xml_scan *o, uint32_t a, const struct xml_scan *n, uint32_t b)
{
	const struct xml_scan_attr *x = &o->attrs[a], *y = &n->attrs[b];
	struct buf v;
	bool is_equal;

	if (x->value_len == y->value_len && memcmp(o->data + x->value_off, n->data + y->value_off, x->value_len) == 0)
		return true;
	buf_init(&v, y->value_len + 1);
	is_equal = xml_attvalue_decode(n->data + y->value_off, y->value_len, &v) == XDMS_ERR_OK &&
		   xml_attvalue_equal(o->data + x->value_off, x->value_len, v.data ? v.data : "", v.len);
	buf_cleanup(&v);
	return is_equal;
}

static enum xdms_err diff_children(struct differ *d, const struct path *path, const struct xml_scan *o, uint32_t oe,
				   const struct xml_scan *n, uint32_t ne);

/* Attributes of @oe -> @ne (compatible elements at @path), then children. */
static enum xdms_err diff_elem(struct differ *d, const struct path *path, const struct xml_scan *o, uint32_t oe,
			       const struct xml_scan *n, uint32_t ne)
{
	const struct xml_scan_elem *a = &o->elems[oe], *b = &n->elems[ne];
	enum xdms_err err = XDMS_ERR_OK;

	for (uint32_t i = 0; i < a->attr_count && !err; i++) {
		uint32_t k = a->attr_first + i, m;
		const struct xml_scan_attr *at = &o->attrs[k];
		size_t skip = at->prefix_len ? at->prefix_len + 1 : 0;
		struct path p;

		if (at->is_xmlns)
			continue;
		if (!at->ns)
			return XDMS_ERR_UNSUPPORTED;
		m = xml_scan_attr_find(n, ne, at->ns, o->data + at->name_off + skip, at->name_len - skip);
		if (m != XML_SCAN_NONE && value_equal(o, k, n, m))
			continue;
		path_copy(&p, path);
		path_add_attr(d, &p, o, k);
		if (m == XML_SCAN_NONE) {
			err = op_open(d, "remove", &p, NULL, false);
		} else {
			err = op_open(d, "replace", &p, NULL, true);
			if (!err)
				err = append_value_text(d->out, n->data + n->attrs[m].value_off, n->attrs[m].value_len);
			if (!err)
				err = op_close(d, "replace");
		}
		path_cleanup(&p);
	}
	for (uint32_t i = 0; i < b->attr_count && !err; i++) {
		uint32_t k = b->attr_first + i;
		const struct xml_scan_attr *at = &n->attrs[k];
		size_t skip = at->prefix_len ? at->prefix_len + 1 : 0;
		struct path p;
		char *type;

		if (at->is_xmlns)
			continue;
		if (!at->ns)
			return XDMS_ERR_UNSUPPORTED;
		if (xml_scan_attr_find(o, oe, at->ns, n->data + at->name_off + skip, at->name_len - skip) !=
		    XML_SCAN_NONE)
			continue;
		path_copy(&p, path);
		type = type_attr(d, &p, n, k);
		err = op_open(d, "add", &p, type, true);
		free(type);
		if (!err)
			err = append_value_text(d->out, n->data + at->value_off, at->value_len);
		if (!err)
			err = op_close(d, "add");
		path_cleanup(&p);
	}
	if (!err)
		err = diff_children(d, path, o, oe, n, ne);
	return err;
}

/* One pair of units, old unit @uo becoming new unit @un, at state *st
 * (old [0, uo's node] and new [un's node + 1, end) are current). */
static enum xdms_err unit_pair(struct differ *d, const struct path *path, const struct side *sd, struct state *st,
			       const struct unit *uo, const struct unit *un)
{
	const struct xml_scan *o = sd[0].s, *n = sd[1].s;
	const struct child *co = &sd[0].ch.v[uo->node], *cn = &sd[1].ch.v[un->node];
	enum xdms_err err = XDMS_ERR_OK;

	if (!child_equal(sd, uo->node, un->node)) {
		if (co->kind == CHILD_ELEM && cn->kind == CHILD_ELEM && elem_compatible(o, co->elem, n, cn->elem)) {
			struct path p;

			path_copy(&p, path);
			err = path_add_child(d, &p, sd, *st, false, uo->node);
			if (!err)
				err = diff_elem(d, &p, o, co->elem, n, cn->elem);
			path_cleanup(&p);
		} else if (co->kind == cn->kind) {
			err = child_op(d, path, sd, *st, false, uo->node, "replace", NULL, un->node, un->node + 1,
				       true);
		} else {
			/* RFC 5261 §4.4 replaces a node only by one of its kind: add
			 * the new one before, remove the old one. Kinds differ, so
			 * the old one keeps its position. */
			err = child_op(d, path, sd, *st, false, uo->node, "add", " pos=\"before\"", un->node,
				       un->node + 1, true);
			if (!err)
				err = child_op(d, path, sd, *st, false, uo->node, "remove", NULL, 0, 0, false);
		}
		if (err)
			return err;
	}
	st->x = uo->node;
	st->y = un->node;
	if (!child_equal(sd, uo->text, un->text)) {
		if (uo->text != NONE && un->text != NONE)
			err = child_op(d, path, sd, *st, false, uo->text, "replace", NULL, un->text, un->text + 1,
				       true);
		else if (uo->text != NONE)
			err = child_op(d, path, sd, *st, false, uo->text, "remove", NULL, 0, 0, false);
		else
			err = child_op(d, path, sd, *st, true, un->node, "add", " pos=\"before\"", un->text,
				       un->text + 1, true);
	}
	st->x = unit_start(uo);
	st->y = unit_start(un);
	return err;
}

/* Old units [oa, ob) becoming new units [na, nb), in order and pairwise;
 * the surplus on either side is removed or added. */
static enum xdms_err unit_gap(struct differ *d, const struct path *path, const struct side *sd, struct state *st,
			      size_t oa, size_t ob, size_t na, size_t nb)
{
	size_t a = ob - oa, b = nb - na, pairs = a < b ? a : b;
	enum xdms_err err = XDMS_ERR_OK;

	if (b > a) {
		size_t from = unit_start(&sd[1].u[na + a]), to = st->y;

		if (st->x > 0)
			err = child_op(d, path, sd, *st, false, st->x - 1, "add", " pos=\"after\"", from, to, true);
		else if (st->y == sd[1].ch.n)
			err = op_nodes(d, "add", path, NULL, sd[1].s, &sd[1].ch, from, to);
		else
			err = op_nodes(d, "add", path, " pos=\"prepend\"", sd[1].s, &sd[1].ch, from, to);
		if (err)
			return err;
		st->y = from;
	}
	for (size_t u = oa + a; u-- > oa + b;) {
		const struct unit *uo = &sd[0].u[u];

		if (uo->text != NONE && sd[0].ch.v[uo->text].is_ws && sd[0].ch.v[uo->node].kind == CHILD_ELEM) {
			/* RFC 5261 §4.5: ws="before" takes the white space with it. */
			err = child_op(d, path, sd, *st, false, uo->node, "remove", " ws=\"before\"", 0, 0, false);
		} else {
			if (uo->text != NONE)
				err = child_op(d, path, sd, *st, false, uo->text, "remove", NULL, 0, 0, false);
			if (!err)
				err = child_op(d, path, sd, *st, false, uo->node, "remove", NULL, 0, 0, false);
		}
		if (err)
			return err;
		st->x = unit_start(uo);
	}
	for (size_t t = pairs; t-- > 0 && !err;)
		err = unit_pair(d, path, sd, st, &sd[0].u[oa + t], &sd[1].u[na + t]);
	return err;
}

/* Units whose nodes are of one kind and, for elements, one expanded name:
 * the candidates for being the same child in both versions. */
static bool unit_same_key(const struct side *sd, const struct unit *uo, const struct unit *un)
{
	const struct child *co = &sd[0].ch.v[uo->node], *cn = &sd[1].ch.v[un->node];
	const struct xml_scan_elem *a, *b;
	size_t al, bl;
	const char *an, *bn;

	if (co->kind != cn->kind)
		return false;
	if (co->kind != CHILD_ELEM)
		return true;
	a = &sd[0].s->elems[co->elem];
	b = &sd[1].s->elems[cn->elem];
	an = xml_scan_elem_local(sd[0].s, co->elem, &al);
	bn = xml_scan_elem_local(sd[1].s, cn->elem, &bl);
	return a->ns && b->ns && strcmp(a->ns, b->ns) == 0 && al == bl && memcmp(an, bn, al) == 0;
}

/* How good a match two units of the same key are: identical, the same start
 * tag (the same entry, changed inside), or only the same name. */
static uint32_t unit_weight(const struct unit *uo, const struct unit *un)
{
	if (uo->hash == un->hash)
		return 4;
	return uo->tag_hash && uo->tag_hash == un->tag_hash ? 2 : 1;
}

/* Above this many cells the LCS table is not built. */
#define LCS_MAX_CELLS (1u << 20)

struct anchor_key {
	uint64_t hash;
	int side;
	size_t unit;
};

static int anchor_key_cmp(const void *a, const void *b)
{
	const struct anchor_key *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->side != y->side)
		return x->side - y->side;
	return x->unit < y->unit ? -1 : x->unit > y->unit;
}

struct anchor {
	size_t o, n;
};

static int anchor_cmp(const void *a, const void *b)
{
	const struct anchor *x = a, *y = b;

	return x->o < y->o ? -1 : x->o > y->o;
}

/*
 * For a middle too large for the LCS table: anchors are the units that
 * occur exactly once on each side, identical, and in the same order
 * (patience diff: the longest increasing run of their new positions, by
 * patience sorting). O(n log n). Fills match_o/match_n (capacity min(a, b))
 * in ascending order; returns how many.
 */
static size_t patience_anchors(const struct side *sd, size_t io, size_t a, size_t in, size_t b, size_t *match_o,
			       size_t *match_n)
{
	struct anchor_key *k = xcalloc(a + b, sizeof(*k));
	struct anchor *p = xcalloc(a < b ? a : b, sizeof(*p));
	size_t *tails, *prev, np = 0, len = 0;

	for (size_t i = 0; i < a; i++)
		k[i] = (struct anchor_key){ sd[0].u[io + i].hash, 0, io + i };
	for (size_t i = 0; i < b; i++)
		k[a + i] = (struct anchor_key){ sd[1].u[in + i].hash, 1, in + i };
	qsort(k, a + b, sizeof(*k), anchor_key_cmp);
	/* Runs of one hash made of exactly one old and one new unit. */
	for (size_t i = 0, j; i < a + b; i = j) {
		for (j = i; j < a + b && k[j].hash == k[i].hash;)
			j++;
		if (j - i == 2 && k[i].side == 0 && k[i + 1].side == 1 &&
		    unit_equal(sd, &sd[0].u[k[i].unit], &sd[1].u[k[i + 1].unit]))
			p[np++] = (struct anchor){ k[i].unit, k[i + 1].unit };
	}
	free(k);
	qsort(p, np, sizeof(*p), anchor_cmp);
	/* The longest increasing subsequence of the new positions. */
	tails = xcalloc(np + 1, sizeof(*tails));
	prev = xcalloc(np + 1, sizeof(*prev));
	for (size_t i = 0; i < np; i++) {
		size_t lo = 0, hi = len;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (p[tails[mid]].n < p[i].n)
				lo = mid + 1;
			else
				hi = mid;
		}
		prev[i] = lo ? tails[lo - 1] : NONE;
		tails[lo] = i;
		if (lo == len)
			len++;
	}
	for (size_t i = len ? tails[len - 1] : NONE, at = len; i != NONE; i = prev[i]) {
		at--;
		match_o[at] = p[i].o;
		match_n[at] = p[i].n;
	}
	free(tails);
	free(prev);
	free(p);
	return len;
}

/*
 * Old units [io, io + a) and new units [in, in + b) (the part between the
 * common head and tail). Anchors: the longest common subsequence of units
 * with the same key, weighted by unit_weight(), so that a child
 * removed here and another added there do not turn every child in between
 * into a replacement; for a middle too large for that table, the units that
 * are unique and identical on both sides (patience diff), and the gaps
 * between them are middles again (without a second patience pass). Between
 * anchors, unit_gap(). Right to left, like all else.
 */
static enum xdms_err diff_middle(struct differ *d, const struct path *path, const struct side *sd, struct state *st,
				 size_t io, size_t a, size_t in, size_t b, bool is_patience_allowed)
{
	uint32_t *lcs = NULL;
	size_t *match_o = NULL, *match_n = NULL, m = 0, oi, ni;
	enum xdms_err err = XDMS_ERR_OK;

	if (!a || !b)
		return unit_gap(d, path, sd, st, io, io + a, in, in + b);
	if ((a + 1) > LCS_MAX_CELLS / (b + 1)) {
		if (!is_patience_allowed)
			return unit_gap(d, path, sd, st, io, io + a, in, in + b);
		match_o = xcalloc(a < b ? a : b, sizeof(*match_o));
		match_n = xcalloc(a < b ? a : b, sizeof(*match_n));
		m = patience_anchors(sd, io, a, in, b, match_o, match_n);
		oi = io + a;
		ni = in + b;
		for (size_t k = m; k-- > 0 && !err;) {
			err = diff_middle(d, path, sd, st, match_o[k] + 1, oi - match_o[k] - 1, match_n[k] + 1,
					  ni - match_n[k] - 1, false);
			if (!err)
				err = unit_pair(d, path, sd, st, &sd[0].u[match_o[k]], &sd[1].u[match_n[k]]);
			oi = match_o[k];
			ni = match_n[k];
		}
		if (!err)
			err = diff_middle(d, path, sd, st, io, oi - io, in, ni - in, false);
		free(match_o);
		free(match_n);
		return err;
	}
	/* lcs[r * (b + 1) + c]: best weight of old [r, a) against new [c, b). */
	lcs = xcalloc((a + 1) * (b + 1), sizeof(*lcs));
	for (size_t r = a; r-- > 0;)
		for (size_t c = b; c-- > 0;) {
			uint32_t best = lcs[(r + 1) * (b + 1) + c], right = lcs[r * (b + 1) + c + 1];
			const struct unit *uo = &sd[0].u[io + r], *un = &sd[1].u[in + c];

			if (right > best)
				best = right;
			if (unit_same_key(sd, uo, un)) {
				uint32_t diag = lcs[(r + 1) * (b + 1) + c + 1] + unit_weight(uo, un);

				if (diag > best)
					best = diag;
			}
			lcs[r * (b + 1) + c] = best;
		}
	match_o = xcalloc(a < b ? a : b, sizeof(*match_o));
	match_n = xcalloc(a < b ? a : b, sizeof(*match_n));
	for (size_t r = 0, c = 0; r < a && c < b;) {
		const struct unit *uo = &sd[0].u[io + r], *un = &sd[1].u[in + c];
		uint32_t here = lcs[r * (b + 1) + c], w = unit_weight(uo, un);

		if (unit_same_key(sd, uo, un) && here == lcs[(r + 1) * (b + 1) + c + 1] + w) {
			match_o[m] = io + r++;
			match_n[m++] = in + c++;
		} else if (here == lcs[(r + 1) * (b + 1) + c]) {
			r++;
		} else {
			c++;
		}
	}
	/* Free the table before recursing: it must not pile up level by level. */
	free(lcs);
	lcs = NULL;
	oi = io + a;
	ni = in + b;
	for (size_t k = m; k-- > 0 && !err;) {
		err = unit_gap(d, path, sd, st, match_o[k] + 1, oi, match_n[k] + 1, ni);
		if (!err)
			err = unit_pair(d, path, sd, st, &sd[0].u[match_o[k]], &sd[1].u[match_n[k]]);
		oi = match_o[k];
		ni = match_n[k];
	}
	if (!err)
		err = unit_gap(d, path, sd, st, io, oi, in, ni);
	free(lcs);
	free(match_o);
	free(match_n);
	return err;
}

static enum xdms_err diff_children(struct differ *d, const struct path *path, const struct xml_scan *o, uint32_t oe,
				   const struct xml_scan *n, uint32_t ne)
{
	struct side sd[2];
	struct state st;
	size_t i = 0, j = 0;
	enum xdms_err err;

	memset(sd, 0, sizeof(sd));
	sd[0].s = o;
	sd[0].elem = oe;
	sd[1].s = n;
	sd[1].elem = ne;
	err = sides_build(sd);
	if (err)
		goto out;
	st.x = sd[0].ch.n;
	st.y = sd[1].ch.n;

	/* The trailing text first: it is the rightmost child. */
	if (!child_equal(sd, sd[0].tail, sd[1].tail)) {
		if (sd[0].tail != NONE && sd[1].tail != NONE) {
			err = child_op(d, path, sd, st, false, sd[0].tail, "replace", NULL, sd[1].tail, sd[1].tail + 1,
				       true);
			st.x--;
			st.y--;
		} else if (sd[0].tail != NONE) {
			err = child_op(d, path, sd, st, false, sd[0].tail, "remove", NULL, 0, 0, false);
			st.x--;
		} else {
			/* Appended as the last child (RFC 5261 §4.3, no pos). */
			err = op_nodes(d, "add", path, NULL, n, &sd[1].ch, sd[1].tail, sd[1].tail + 1);
			st.y--;
		}
		if (err)
			goto out;
	} else if (sd[0].tail != NONE) {
		st.x--;
		st.y--;
	}
	while (j < sd[0].un && j < sd[1].un && unit_equal(sd, &sd[0].u[sd[0].un - 1 - j], &sd[1].u[sd[1].un - 1 - j]))
		j++;
	if (j) {
		st.x = unit_start(&sd[0].u[sd[0].un - j]);
		st.y = unit_start(&sd[1].u[sd[1].un - j]);
	}
	while (i < sd[0].un - j && i < sd[1].un - j && unit_equal(sd, &sd[0].u[i], &sd[1].u[i]))
		i++;
	err = diff_middle(d, path, sd, &st, i, sd[0].un - j - i, i, sd[1].un - j - i, true);
out:
	side_cleanup(&sd[0]);
	side_cleanup(&sd[1]);
	return err;
}

static enum xdms_err topdown_patch(struct differ *d, const struct xml_scan *o, const struct xml_scan *n)
{
	struct path p;
	enum xdms_err err;

	/* Comments and PIs outside the root, a renamed root or changed
	 * declarations on it: no operation sequence short of replacing the
	 * document expresses these. */
	if (!misc_equal(o, n) || !elem_compatible(o, 0, n, 0))
		return XDMS_ERR_UNSUPPORTED;
	path_init(&p);
	err = path_add_step(d, &p, o, 0, 1, 1);
	if (!err)
		err = diff_elem(d, &p, o, 0, n, 0);
	path_cleanup(&p);
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
	if (!old_doc || !new_doc || !ns || !ops || !is_too_big || !is_ncname_ascii(prefix) ||
	    strncmp(prefix, "xml", 3) == 0) {
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

/* ==== applying operations (tests, fuzzer) ================================================= */

enum target_kind { TARGET_ELEM, TARGET_ATTR, TARGET_CHILD };

struct target {
	enum target_kind kind;
	uint32_t elem;   /* the element, or the parent of an attribute or child node */
	uint32_t attr;   /* TARGET_ATTR */
	struct child ch; /* TARGET_CHILD: a text, comment or PI node */
};

/* The attribute @name of operation element @op, decoded into @out (NULL
 * when absent). */
static enum xdms_err op_attr(const struct xml_scan *ops, uint32_t op, const char *name, char **out)
{
	uint32_t a = xml_scan_attr_find(ops, op, "", name, strlen(name));
	struct buf v;
	enum xdms_err err;

	*out = NULL;
	if (a == XML_SCAN_NONE)
		return XDMS_ERR_OK;
	buf_init(&v, ops->attrs[a].value_len + 1);
	err = xml_attvalue_decode(ops->data + ops->attrs[a].value_off, ops->attrs[a].value_len, &v);
	if (err) {
		buf_cleanup(&v);
		return XDMS_ERR_PARSE;
	}
	*out = buf_take(&v, NULL);
	return XDMS_ERR_OK;
}

/* Reads "[n]" at *p (1-based); 0 when there is none. */
static enum xdms_err step_position(const char **p, const char *end, size_t *pos)
{
	const char *s = *p;
	size_t v = 0;

	*pos = 0;
	if (s == end)
		return XDMS_ERR_OK;
	if (*s != '[')
		return XDMS_ERR_UNSUPPORTED;
	for (s++; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > SIZE_MAX / 20)
			return XDMS_ERR_NOTFOUND;
		v = v * 10 + (size_t)(*s - '0');
	}
	if (s >= end || *s != ']' || s + 1 != end || s == *p + 1)
		return XDMS_ERR_UNSUPPORTED;
	if (!v)
		return XDMS_ERR_NOTFOUND;
	*pos = v;
	*p = s + 1;
	return XDMS_ERR_OK;
}

/* Resolves QName [s, end) in the scope of operation @op: *ns (default
 * namespace of the patch for an unprefixed element name when @is_elem, ""
 * for an unprefixed attribute) and the local name. */
static enum xdms_err qname_resolve(const struct xml_scan *ops, uint32_t op, const char *s, const char *end,
				   bool is_elem, const char **ns, const char **local, size_t *local_len)
{
	const char *colon = memchr(s, ':', (size_t)(end - s));

	if (s == end || (colon && (colon == s || colon + 1 == end)))
		return XDMS_ERR_UNSUPPORTED;
	if (colon) {
		*ns = xml_scan_prefix_ns(ops, op, s, (size_t)(colon - s));
		*local = colon + 1;
	} else {
		*ns = is_elem ? xml_scan_prefix_ns(ops, op, "", 0) : "";
		*local = s;
	}
	*local_len = (size_t)(end - *local);
	if (!*ns)
		return XDMS_ERR_PARSE;
	for (const char *c = *local; c < end; c++)
		if (*c == ':' || *c == '[' || *c == '(' || *c == '@')
			return XDMS_ERR_UNSUPPORTED;
	return XDMS_ERR_OK;
}

/* Evaluates @sel (our RFC 5261 subset) on @doc. */
static enum xdms_err sel_eval(const struct xml_scan *doc, const struct xml_scan *ops, uint32_t op, const char *sel,
			      struct target *t)
{
	const char *p = sel, *end = sel + strlen(sel);
	uint32_t cur = XML_SCAN_NONE;
	enum xdms_err err;

	if (p < end && *p == '/')
		p++;
	if (p == end)
		return XDMS_ERR_UNSUPPORTED;
	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p)), *step_end = slash ? slash : end;
		const char *bracket = memchr(p, '[', (size_t)(step_end - p)), *name_end = bracket ? bracket : step_end;
		const char *q = name_end;
		bool is_last = step_end == end;
		size_t pos;
		static const struct {
			const char *test;
			enum child_kind kind;
		} tests[] = { { "text()", CHILD_TEXT }, { "comment()", CHILD_COMMENT },
			      { "processing-instruction()", CHILD_PI } };

		if (*p == '@') {
			const char *ans, *local;
			size_t local_len;

			if (!is_last || cur == XML_SCAN_NONE)
				return XDMS_ERR_UNSUPPORTED;
			err = qname_resolve(ops, op, p + 1, step_end, false, &ans, &local, &local_len);
			if (err)
				return err;
			t->kind = TARGET_ATTR;
			t->elem = cur;
			t->attr = xml_scan_attr_find(doc, cur, ans, local, local_len);
			return t->attr == XML_SCAN_NONE ? XDMS_ERR_NOTFOUND : XDMS_ERR_OK;
		}
		err = step_position(&q, step_end, &pos);
		if (err)
			return err;
		for (size_t k = 0; k < sizeof(tests) / sizeof(tests[0]); k++) {
			struct children ch = { 0 };
			size_t seen = 0, hits = 0, at = NONE;

			size_t test_len = strlen(tests[k].test);

			if ((size_t)(name_end - p) != test_len || memcmp(p, tests[k].test, test_len) != 0)
				continue;
			if (!is_last || cur == XML_SCAN_NONE)
				return XDMS_ERR_UNSUPPORTED;
			err = children_collect(doc, cur, &ch);
			for (size_t c = 0; c < ch.n && !err; c++) {
				if (ch.v[c].kind != tests[k].kind)
					continue;
				seen++;
				if (!pos || seen == pos) {
					hits++;
					at = c;
				}
			}
			if (!err && (hits != 1 || at == NONE))
				err = XDMS_ERR_NOTFOUND;
			if (!err) {
				t->kind = TARGET_CHILD;
				t->elem = cur;
				t->ch = ch.v[at];
			}
			children_cleanup(&ch);
			return err;
		}
		{
			const char *ens = NULL, *local = NULL;
			size_t local_len = 0, seen = 0, hits = 0;
			bool is_any = name_end - p == 1 && *p == '*';
			uint32_t found = XML_SCAN_NONE;

			if (!is_any) {
				err = qname_resolve(ops, op, p, name_end, true, &ens, &local, &local_len);
				if (err)
					return err;
			}
			for (uint32_t c = cur == XML_SCAN_NONE ? 0 : doc->elems[cur].first_child; c != XML_SCAN_NONE;
			     c = cur == XML_SCAN_NONE ? XML_SCAN_NONE : doc->elems[c].next_sibling) {
				size_t l;
				const char *nm = xml_scan_elem_local(doc, c, &l);

				bool is_match = is_any || (doc->elems[c].ns && strcmp(doc->elems[c].ns, ens) == 0 &&
							    l == local_len && memcmp(nm, local, l) == 0);

				if (!is_match)
					continue;
				seen++;
				if (!pos || seen == pos) {
					hits++;
					found = c;
				}
			}
			/* RFC 5261 §4.1: the selector must locate exactly one node. */
			if (hits != 1)
				return XDMS_ERR_NOTFOUND;
			cur = found;
		}
		p = slash ? slash + 1 : end;
		if (slash && p == end)
			return XDMS_ERR_UNSUPPORTED;
	}
	t->kind = TARGET_ELEM;
	t->elem = cur;
	return XDMS_ERR_OK;
}

/* The content of operation @op, its elements through "g" for context
 * @ctx_elem of @doc. */
static enum xdms_err op_content(const struct xml_scan *ops, uint32_t op, const struct xml_scan *doc, uint32_t ctx_elem,
				struct buf *out)
{
	struct children ch = { 0 };
	enum xdms_err err = children_collect(ops, op, &ch);

	for (size_t i = 0; i < ch.n && !err; i++) {
		if (ch.v[i].kind == CHILD_ELEM)
			err = append_unpatched(out, ops, ch.v[i].elem, doc, ctx_elem);
		else
			err = buf_append(out, ops->data + ch.v[i].start, ch.v[i].end - ch.v[i].start);
	}
	children_cleanup(&ch);
	return err;
}

/* The one child of @op, which must be of @kind. */
static bool op_single(const struct xml_scan *ops, uint32_t op, enum child_kind kind)
{
	struct children ch = { 0 };
	bool is_ok = children_collect(ops, op, &ch) == XDMS_ERR_OK && ch.n == 1 && ch.v[0].kind == kind;

	children_cleanup(&ch);
	return is_ok;
}

/* @doc with [from, to) replaced by @mid. */
static char *splice3(const char *doc, size_t len, size_t from, size_t to, const char *mid, size_t mid_len,
		     size_t *out_len)
{
	char *s = xmalloc(len - (to - from) + mid_len + 1);

	memcpy(s, doc, from);
	memcpy(s + from, mid, mid_len);
	memcpy(s + from + mid_len, doc + to, len - to);
	*out_len = len - (to - from) + mid_len;
	s[*out_len] = '\0';
	return s;
}

/* Where to splice: bytes [from, to) of the document are replaced. */
struct span {
	size_t from, to;
};

/* Inserts @content into element @e, opening "<e .../>" the way node.c does;
 * at its end, or at its start when @is_prepend. */
static struct span insert_into(const struct xml_scan *doc, uint32_t e, bool is_prepend, const struct buf *content,
			       struct buf *mid)
{
	const struct xml_scan_elem *el = &doc->elems[e];
	size_t at = is_prepend ? el->start_end : el->end_start;

	if (el->is_empty) {
		if (buf_append_str(mid, ">") || buf_append(mid, content->data ? content->data : "", content->len) ||
		    buf_append_str(mid, "</") || buf_append(mid, doc->data + el->name_off, el->name_len) ||
		    buf_append_str(mid, ">"))
			abort(); /* unbounded */
		return (struct span){ el->start_end - 2, el->start_end };
	}
	if (content->len && buf_append(mid, content->data, content->len))
		abort();
	return (struct span){ at, at };
}

/* Applies operation @op to @doc: the new document in *out. */
static enum xdms_err apply_one(const struct xml_scan *doc, const struct xml_scan *ops, uint32_t op, char **out,
			       size_t *out_len)
{
	const struct xml_scan_elem *oe = &ops->elems[op];
	size_t local_len, from = 0, to = 0;
	const char *local = xml_scan_elem_local(ops, op, &local_len);
	char *sel = NULL, *pos = NULL, *type = NULL, *ws = NULL;
	struct target t;
	struct buf mid, content;
	enum xdms_err err;

	memset(&t, 0, sizeof(t));
	buf_init(&mid, SIZE_MAX / 2);
	buf_init(&content, SIZE_MAX / 2);
	if (!oe->ns || strcmp(oe->ns, DIFF_NS) != 0) {
		err = XDMS_ERR_UNSUPPORTED;
		goto out;
	}
	err = op_attr(ops, op, "sel", &sel);
	if (!err)
		err = op_attr(ops, op, "pos", &pos);
	if (!err)
		err = op_attr(ops, op, "type", &type);
	if (!err)
		err = op_attr(ops, op, "ws", &ws);
	if (err)
		goto out;
	if (!sel) {
		err = XDMS_ERR_PARSE;
		goto out;
	}
	err = sel_eval(doc, ops, op, sel, &t);
	if (err)
		goto out;

	if (local_len == 6 && memcmp(local, "remove", 6) == 0) {
		if (t.kind == TARGET_ELEM && doc->elems[t.elem].parent == XML_SCAN_NONE) {
			err = XDMS_ERR_INVAL; /* the root */
			goto out;
		}
		if (t.kind == TARGET_ATTR) {
			const struct xml_scan_elem *el = &doc->elems[t.elem];

			from = t.attr == el->attr_first ? el->name_off + el->name_len : doc->attrs[t.attr - 1].end;
			to = doc->attrs[t.attr].end;
		} else {
			from = t.kind == TARGET_ELEM ? doc->elems[t.elem].start : t.ch.start;
			to = t.kind == TARGET_ELEM ? doc->elems[t.elem].end : t.ch.end;
		}
		/* RFC 5261 §4.5: ws also removes the white-space text node next to
		 * the removed node. */
		if (ws && t.kind != TARGET_ATTR && !(t.kind == TARGET_CHILD && t.ch.kind == CHILD_TEXT)) {
			struct children ch = { 0 };
			bool is_before = !strcmp(ws, "before") || !strcmp(ws, "both");
			bool is_after = !strcmp(ws, "after") || !strcmp(ws, "both");
			uint32_t parent = t.kind == TARGET_ELEM ? doc->elems[t.elem].parent : t.elem;

			if (!is_before && !is_after) {
				err = XDMS_ERR_UNSUPPORTED;
				goto out;
			}
			err = children_collect(doc, parent, &ch);
			for (size_t i = 0; i < ch.n && !err; i++) {
				if (ch.v[i].start != from)
					continue;
				if (is_before && i > 0 && ch.v[i - 1].kind == CHILD_TEXT && ch.v[i - 1].is_ws)
					from = ch.v[i - 1].start;
				if (is_after && i + 1 < ch.n && ch.v[i + 1].kind == CHILD_TEXT && ch.v[i + 1].is_ws)
					to = ch.v[i + 1].end;
				break;
			}
			children_cleanup(&ch);
			if (err)
				goto out;
		} else if (ws) {
			err = XDMS_ERR_UNSUPPORTED;
			goto out;
		}
	} else if (local_len == 7 && memcmp(local, "replace", 7) == 0) {
		if (t.kind == TARGET_ELEM) {
			if (!op_single(ops, op, CHILD_ELEM)) {
				err = XDMS_ERR_INVAL;
				goto out;
			}
			err = op_content(ops, op, doc, doc->elems[t.elem].parent, &mid);
			from = doc->elems[t.elem].start;
			to = doc->elems[t.elem].end;
		} else if (t.kind == TARGET_ATTR) {
			const struct xml_scan_attr *a = &doc->attrs[t.attr];
			char quote = a->quote;

			err = value_from_text(ops->data + oe->start_end, oe->end_start - oe->start_end, &content);
			if (err)
				goto out;
			/* As node.c: keep the quote unless the value needs the other. */
			if (content.len && memchr(content.data, quote, content.len))
				quote = quote == '"' ? '\'' : '"';
			if (buf_append(&mid, &quote, 1) ||
			    buf_append(&mid, content.data ? content.data : "", content.len) ||
			    buf_append(&mid, &quote, 1))
				abort();
			from = a->value_off - 1;
			to = a->end;
		} else {
			if (t.ch.kind != CHILD_TEXT && !op_single(ops, op, t.ch.kind)) {
				err = XDMS_ERR_INVAL;
				goto out;
			}
			err = op_content(ops, op, doc, t.elem, &mid);
			from = t.ch.start;
			to = t.ch.end;
		}
	} else if (local_len == 3 && memcmp(local, "add", 3) == 0) {
		if (type) {
			const char *ans, *alocal;
			size_t alen;
			char quote;

			if (t.kind != TARGET_ELEM || type[0] != '@') {
				err = XDMS_ERR_UNSUPPORTED;
				goto out;
			}
			err = qname_resolve(ops, op, type + 1, type + strlen(type), false, &ans, &alocal, &alen);
			if (err)
				goto out;
			if (xml_scan_attr_find(doc, t.elem, ans, alocal, alen) != XML_SCAN_NONE) {
				err = XDMS_ERR_INVAL;
				goto out;
			}
			err = value_from_text(ops->data + oe->start_end, oe->end_start - oe->start_end, &content);
			if (err)
				goto out;
			quote = content.len && memchr(content.data, '"', content.len) ? '\'' : '"';
			if (buf_append_str(&mid, " "))
				abort();
			if (ans[0]) {
				const char *want = memchr(type, ':', strlen(type)), *pf;
				size_t pf_len;
				char *preferred = want ? xstrndup(type + 1, (size_t)(want - type - 1)) : NULL;
				bool is_bound = xml_scan_ns_prefix(doc, t.elem, ans, preferred, &pf, &pf_len);

				if (is_bound && (buf_append(&mid, pf, pf_len) || buf_append_str(&mid, ":")))
					abort();
				free(preferred);
				if (!is_bound) {
					err = XDMS_ERR_UNSUPPORTED;
					goto out;
				}
			}
			if (buf_append(&mid, alocal, alen) || buf_append_str(&mid, "=") ||
			    buf_append(&mid, &quote, 1) ||
			    buf_append(&mid, content.data ? content.data : "", content.len) ||
			    buf_append(&mid, &quote, 1))
				abort();
			from = to = doc->elems[t.elem].attrs_end;
		} else if (!pos || !strcmp(pos, "prepend")) {
			if (t.kind != TARGET_ELEM) {
				err = XDMS_ERR_INVAL;
				goto out;
			}
			err = op_content(ops, op, doc, t.elem, &content);
			if (!err) {
				struct span sp = insert_into(doc, t.elem, pos != NULL, &content, &mid);

				from = sp.from;
				to = sp.to;
			}
		} else if (!strcmp(pos, "before") || !strcmp(pos, "after")) {
			bool is_before = pos[0] == 'b';
			uint32_t parent = t.kind == TARGET_ELEM ? doc->elems[t.elem].parent : t.elem;

			if (t.kind == TARGET_ATTR || parent == XML_SCAN_NONE) {
				err = XDMS_ERR_INVAL;
				goto out;
			}
			err = op_content(ops, op, doc, parent, &mid);
			if (t.kind == TARGET_ELEM)
				from = is_before ? doc->elems[t.elem].start : doc->elems[t.elem].end;
			else
				from = is_before ? t.ch.start : t.ch.end;
			to = from;
		} else {
			err = XDMS_ERR_UNSUPPORTED;
		}
	} else {
		err = XDMS_ERR_UNSUPPORTED;
	}
	if (err)
		goto out;
	*out = splice3(doc->data, doc->len, from, to, mid.data ? mid.data : "", mid.len, out_len);
out:
	buf_cleanup(&mid);
	buf_cleanup(&content);
	free(sel);
	free(pos);
	free(type);
	free(ws);
	return err;
}

enum xdms_err diff_patch_apply(const char *doc, size_t len, const char *ops, size_t ops_len, const char *prefix,
			       const char *ns, char **out, size_t *out_len)
{
	struct buf wrap;
	struct xml_scan *oscan = NULL, *dscan = NULL;
	char *cur = NULL, *next = NULL;
	size_t cur_len = len, next_len = 0;
	enum xdms_err err;

	if (!doc || (!ops && ops_len) || !out || !out_len || !is_ncname_ascii(prefix) || !ns)
		return XDMS_ERR_INVAL;
	*out = NULL;
	*out_len = 0;
	buf_init(&wrap, SIZE_MAX / 2);
	err = buf_printf(&wrap, "<xcap-diff xmlns=\"%s\"", DIFF_NS);
	if (!err && ns[0]) {
		err = buf_printf(&wrap, " xmlns:%s=\"", prefix);
		if (!err)
			err = buf_append_xml_escaped(&wrap, ns, strlen(ns));
		if (!err)
			err = buf_append_str(&wrap, "\"");
	}
	if (!err)
		err = buf_append_str(&wrap, ">");
	if (!err && ops_len)
		err = buf_append(&wrap, ops, ops_len);
	if (!err)
		err = buf_append_str(&wrap, "</xcap-diff>");
	if (err)
		goto out;
	if (xml_scan_build(wrap.data, wrap.len, &oscan) || xml_scan_build(doc, len, &dscan)) {
		err = XDMS_ERR_PARSE;
		goto out;
	}
	cur = xstrndup(doc, len);
	for (uint32_t op = oscan->elems[0].first_child; op != XML_SCAN_NONE; op = oscan->elems[op].next_sibling) {
		err = apply_one(dscan, oscan, op, &next, &next_len);
		if (err)
			goto out;
		xml_scan_free(dscan);
		dscan = NULL;
		free(cur);
		cur = next;
		cur_len = next_len;
		next = NULL;
		if (xml_scan_build(cur, cur_len, &dscan)) {
			err = XDMS_ERR_PARSE;
			goto out;
		}
	}
	{
		/* Anything but white space between operations is not ours. */
		struct children ch = { 0 };

		err = children_collect(oscan, 0, &ch);
		for (size_t i = 0; i < ch.n && !err; i++)
			if (ch.v[i].kind != CHILD_ELEM && !(ch.v[i].kind == CHILD_TEXT && ch.v[i].is_ws))
				err = XDMS_ERR_UNSUPPORTED;
		children_cleanup(&ch);
		if (err)
			goto out;
	}
	*out = cur;
	*out_len = cur_len;
	cur = NULL;
out:
	free(cur);
	free(next);
	buf_cleanup(&wrap);
	xml_scan_free(oscan);
	xml_scan_free(dscan);
	return err;
}

/* ==== rendering ============================================================================ */

static enum xdms_err attr_out(struct buf *out, const char *name, const char *value)
{
	enum xdms_err err = buf_printf(out, " %s=\"", name);

	if (!err)
		err = buf_append_xml_escaped(out, value, strlen(value));
	if (!err)
		err = buf_append_str(out, "\"");
	return err;
}

enum xdms_err diff_render(const char *xcap_root, const struct diff_document *docs, size_t doc_count,
			  const struct diff_node *nodes, size_t node_count, const char *const *prefixes,
			  struct buf *out)
{
	enum xdms_err err;

	if (!xcap_root || !out || (doc_count && !docs) || (node_count && !nodes))
		return XDMS_ERR_INVAL;
	for (size_t i = 0; prefixes && prefixes[i]; i += 2)
		if (!is_ncname_ascii(prefixes[i]) || strncmp(prefixes[i], "xml", 3) == 0 || !prefixes[i + 1] ||
		    !prefixes[i + 1][0])
			return XDMS_ERR_INVAL;
	for (size_t i = 0; i < doc_count; i++)
		if (!docs[i].sel || (docs[i].ops && docs[i].ops_len && docs[i].is_body_not_changed))
			return XDMS_ERR_INVAL;
	for (size_t i = 0; i < node_count; i++)
		if (!nodes[i].sel)
			return XDMS_ERR_INVAL;

	err = buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-diff xmlns=\"%s\"", DIFF_NS);
	for (size_t i = 0; prefixes && prefixes[i] && !err; i += 2) {
		char name[128];

		snprintf(name, sizeof(name), "xmlns:%.100s", prefixes[i]);
		err = attr_out(out, name, prefixes[i + 1]);
	}
	if (!err)
		err = attr_out(out, "xcap-root", xcap_root);
	if (!err)
		err = buf_append_str(out, ">\n");
	for (size_t i = 0; i < doc_count && !err; i++) {
		const struct diff_document *dd = &docs[i];
		bool has_ops = dd->ops && dd->ops_len;

		/* Attribute order as in the SPEC §2.5 fixtures. */
		err = buf_append_str(out, "  <document");
		if (!err && dd->prev_etag)
			err = attr_out(out, "previous-etag", dd->prev_etag);
		if (!err && dd->new_etag)
			err = attr_out(out, "new-etag", dd->new_etag);
		if (!err)
			err = attr_out(out, "sel", dd->sel);
		if (err)
			break;
		if (dd->is_body_not_changed)
			err = buf_append_str(out, ">\n    <body-not-changed/>\n  </document>\n");
		else if (has_ops)
			err = buf_append_str(out, ">\n");
		else
			err = buf_append_str(out, "/>\n");
		if (!err && has_ops) {
			err = buf_append(out, dd->ops, dd->ops_len);
			if (!err && dd->ops[dd->ops_len - 1] != '\n')
				err = buf_append_str(out, "\n");
			if (!err)
				err = buf_append_str(out, "  </document>\n");
		}
	}
	for (size_t i = 0; i < node_count && !err; i++) {
		const struct diff_node *dn = &nodes[i];
		const char *name = dn->is_attribute ? "attribute" : "element";

		err = buf_printf(out, "  <%s", name);
		if (!err)
			err = attr_out(out, "sel", dn->sel);
		if (!err && !dn->exists)
			err = buf_append_str(out, " exists=\"0\"/>\n");
		else if (!err && !dn->content_len)
			err = buf_append_str(out, "/>\n");
		else if (!err) {
			err = buf_append_str(out, ">");
			if (!err)
				err = dn->is_attribute ? append_value_text(out, dn->content, dn->content_len)
						       : buf_append(out, dn->content, dn->content_len);
			if (!err)
				err = buf_printf(out, "</%s>\n", name);
		}
	}
	if (!err)
		err = buf_append_str(out, "</xcap-diff>\n");
	if (err == XDMS_ERR_PARSE)
		err = XDMS_ERR_INVAL; /* an attribute value that does not decode */
	return err;
}

/* ==== element and attribute reports ========================================================= */

enum xdms_err diff_node_content(const char *doc, size_t doc_len, const char *node_selector, const char *query,
				const char *ns, struct buf *content, bool *is_attribute, bool *exists)
{
	struct xcap_selector *sel = NULL;
	struct xml_scan *scan = NULL;
	const char *why, *ans, *alocal, *aprefix;
	uint32_t e, a;
	enum xdms_err err;

	if (!doc || !node_selector || !ns || !content || !is_attribute || !exists)
		return XDMS_ERR_INVAL;
	*exists = false;
	*is_attribute = false;
	if (xcap_selector_parse(node_selector, query, ns, &sel, &why))
		return XDMS_ERR_PARSE;
	*is_attribute = xcap_selector_kind(sel) == XCAP_NODE_ATTRIBUTE;
	if (xcap_selector_kind(sel) == XCAP_NODE_NAMESPACES) {
		err = XDMS_ERR_UNSUPPORTED;
		goto out;
	}
	if (xml_scan_build(doc, doc_len, &scan)) {
		err = XDMS_ERR_PARSE;
		goto out;
	}
	err = XDMS_ERR_OK;
	/* RFC 4825 §6.3: a selector names a node only when it selects one. */
	if (xcap_selector_select(sel, scan, xcap_selector_steps(sel), &e, NULL) != 1)
		goto out;
	if (*is_attribute) {
		xcap_selector_attr(sel, &ans, &alocal, &aprefix);
		a = xml_scan_attr_find(scan, e, ans, alocal, strlen(alocal));
		if (a == XML_SCAN_NONE)
			goto out;
		err = buf_append(content, doc + scan->attrs[a].value_off, scan->attrs[a].value_len);
	} else {
		err = append_standalone(content, scan, e, false);
		if (err == XDMS_ERR_UNSUPPORTED)
			err = XDMS_ERR_PARSE; /* a prefix bound nowhere: not a stored document */
	}
	*exists = err == XDMS_ERR_OK;
out:
	xml_scan_free(scan);
	xcap_selector_free(sel);
	return err;
}
