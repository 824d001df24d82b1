/* SPDX-License-Identifier: MIT */
/*
 * The XPath view of a scanned document that patches need: an element's
 * child nodes (a text node is a maximal run of character data and CDATA
 * sections, XPath 1.0 §5.7), the document node's comments and PIs, the
 * namespace declarations an element needs to stand alone ("f" and its
 * inverse "g", see diff.c's opening), and attribute values as character data
 * and back.
 *
 * Design: everything works on the byte-offset scanner's result (xml/xml.h),
 * no DOM. Nothing here allocates beyond its output buffers.
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

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool has_bytes(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* ==== child nodes ============================================================== */

void children_cleanup(struct children *c)
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
enum xdms_err children_collect(const struct xml_scan *s, uint32_t e, struct children *out)
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
bool misc_equal(const struct xml_scan *a, const struct xml_scan *b)
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
enum xdms_err append_standalone(struct buf *out, const struct xml_scan *s, uint32_t e, bool is_marked)
{
	const struct xml_scan_elem *el = &s->elems[e];
	struct buf need;
	enum xdms_err err;

	buf_init(&need, out->max_len); /* what does not fit in @out is of no use */
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
enum xdms_err append_unpatched(struct buf *out, const struct xml_scan *s, uint32_t e, const struct xml_scan *ctx,
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
enum xdms_err append_value_text(struct buf *out, const char *raw, size_t len)
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
enum xdms_err value_from_text(const char *text, size_t len, struct buf *out)
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
