/* SPDX-License-Identifier: MIT */
/*
 * Applying RFC 5261 operations to a document (tests and the fuzzer): our
 * XPath subset evaluated on the scan, bytes spliced the way node.c does,
 * and the document scanned again after every operation.
 *
 * Design: each operation is read (sel, pos, type, ws), its target found,
 * and turned into one splice (replace bytes [from, to) by new bytes); the
 * three verbs each have their own function.
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

/* ==== applying operations (tests, fuzzer) ================================================= */

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
			size_t seen = 0, hits = 0, at = DIFF_NONE;

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
			if (!err && (hits != 1 || at == DIFF_NONE))
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

/* One operation being applied: its attributes, its target, and the splice
 * it comes to (bytes [from, to) of the document replaced by mid). */
struct apply {
	const struct xml_scan *doc, *ops;
	uint32_t op;
	char *sel, *pos, *type, *ws;
	struct target t;
	size_t from, to;
	struct buf mid, content;
};

/* <remove> (RFC 5261 §4.5), with the white space "ws" names. */
static enum xdms_err apply_remove(struct apply *ap)
{
	const struct xml_scan *doc = ap->doc;
	const struct target *t = &ap->t;
	struct children ch = { 0 };
	bool is_before, is_after;
	uint32_t parent;
	enum xdms_err err;

	if (t->kind == TARGET_ELEM && doc->elems[t->elem].parent == XML_SCAN_NONE)
		return XDMS_ERR_INVAL; /* the root */
	if (t->kind == TARGET_ATTR) {
		const struct xml_scan_elem *el = &doc->elems[t->elem];

		ap->from = t->attr == el->attr_first ? el->name_off + el->name_len : doc->attrs[t->attr - 1].end;
		ap->to = doc->attrs[t->attr].end;
	} else {
		ap->from = t->kind == TARGET_ELEM ? doc->elems[t->elem].start : t->ch.start;
		ap->to = t->kind == TARGET_ELEM ? doc->elems[t->elem].end : t->ch.end;
	}
	if (!ap->ws)
		return XDMS_ERR_OK;
	/* RFC 5261 §4.5: ws also removes the white-space text node next to
	 * the removed node. */
	if (t->kind == TARGET_ATTR || (t->kind == TARGET_CHILD && t->ch.kind == CHILD_TEXT))
		return XDMS_ERR_UNSUPPORTED;
	is_before = !strcmp(ap->ws, "before") || !strcmp(ap->ws, "both");
	is_after = !strcmp(ap->ws, "after") || !strcmp(ap->ws, "both");
	parent = t->kind == TARGET_ELEM ? doc->elems[t->elem].parent : t->elem;
	if (!is_before && !is_after)
		return XDMS_ERR_UNSUPPORTED;
	err = children_collect(doc, parent, &ch);
	for (size_t i = 0; i < ch.n && !err; i++) {
		if (ch.v[i].start != ap->from)
			continue;
		if (is_before && i > 0 && ch.v[i - 1].kind == CHILD_TEXT && ch.v[i - 1].is_ws)
			ap->from = ch.v[i - 1].start;
		if (is_after && i + 1 < ch.n && ch.v[i + 1].kind == CHILD_TEXT && ch.v[i + 1].is_ws)
			ap->to = ch.v[i + 1].end;
		break;
	}
	children_cleanup(&ch);
	return err;
}

/* <replace> (RFC 5261 §4.4) of an element, an attribute's value or a text,
 * comment or PI node. */
static enum xdms_err apply_replace(struct apply *ap)
{
	const struct xml_scan *doc = ap->doc, *ops = ap->ops;
	const struct xml_scan_elem *oe = &ops->elems[ap->op];
	const struct target *t = &ap->t;
	enum xdms_err err;

	if (t->kind == TARGET_ELEM) {
		if (!op_single(ops, ap->op, CHILD_ELEM))
			return XDMS_ERR_INVAL;
		ap->from = doc->elems[t->elem].start;
		ap->to = doc->elems[t->elem].end;
		return op_content(ops, ap->op, doc, doc->elems[t->elem].parent, &ap->mid);
	}
	if (t->kind == TARGET_ATTR) {
		const struct xml_scan_attr *a = &doc->attrs[t->attr];
		char quote = a->quote;

		err = value_from_text(ops->data + oe->start_end, oe->end_start - oe->start_end, &ap->content);
		if (err)
			return err;
		/* As node.c: keep the quote unless the value needs the other. */
		if (ap->content.len && memchr(ap->content.data, quote, ap->content.len))
			quote = quote == '"' ? '\'' : '"';
		if (buf_append(&ap->mid, &quote, 1) ||
		    buf_append(&ap->mid, ap->content.data ? ap->content.data : "", ap->content.len) ||
		    buf_append(&ap->mid, &quote, 1))
			return XDMS_ERR_TOOBIG;
		ap->from = a->value_off - 1;
		ap->to = a->end;
		return XDMS_ERR_OK;
	}
	if (t->ch.kind != CHILD_TEXT && !op_single(ops, ap->op, t->ch.kind))
		return XDMS_ERR_INVAL;
	ap->from = t->ch.start;
	ap->to = t->ch.end;
	return op_content(ops, ap->op, doc, t->elem, &ap->mid);
}

/* <add type="@name"> (RFC 5261 §4.3): a new attribute, written with the
 * prefix the document binds to its namespace (the one "type" names if it
 * can). */
static enum xdms_err apply_add_attr(struct apply *ap)
{
	const struct xml_scan *doc = ap->doc, *ops = ap->ops;
	const struct xml_scan_elem *oe = &ops->elems[ap->op];
	const char *ans, *alocal, *type = ap->type;
	size_t alen;
	char quote;
	enum xdms_err err;

	if (ap->t.kind != TARGET_ELEM || type[0] != '@')
		return XDMS_ERR_UNSUPPORTED;
	err = qname_resolve(ops, ap->op, type + 1, type + strlen(type), false, &ans, &alocal, &alen);
	if (err)
		return err;
	if (xml_scan_attr_find(doc, ap->t.elem, ans, alocal, alen) != XML_SCAN_NONE)
		return XDMS_ERR_INVAL;
	err = value_from_text(ops->data + oe->start_end, oe->end_start - oe->start_end, &ap->content);
	if (err)
		return err;
	quote = ap->content.len && memchr(ap->content.data, '"', ap->content.len) ? '\'' : '"';
	if (buf_append_str(&ap->mid, " "))
		return XDMS_ERR_TOOBIG;
	if (ans[0]) {
		const char *want = memchr(type, ':', strlen(type)), *pf;
		size_t pf_len;
		char *preferred = want ? xstrndup(type + 1, (size_t)(want - type - 1)) : NULL;
		bool is_bound = xml_scan_ns_prefix(doc, ap->t.elem, ans, preferred, &pf, &pf_len);

		/* pf may point into preferred: append before freeing it. */
		if (is_bound && (buf_append(&ap->mid, pf, pf_len) || buf_append_str(&ap->mid, ":")))
			err = XDMS_ERR_TOOBIG;
		free(preferred);
		if (!is_bound)
			return XDMS_ERR_UNSUPPORTED;
		if (err)
			return err;
	}
	if (buf_append(&ap->mid, alocal, alen) || buf_append_str(&ap->mid, "=") || buf_append(&ap->mid, &quote, 1) ||
	    buf_append(&ap->mid, ap->content.data ? ap->content.data : "", ap->content.len) ||
	    buf_append(&ap->mid, &quote, 1))
		return XDMS_ERR_TOOBIG;
	ap->from = ap->to = doc->elems[ap->t.elem].attrs_end;
	return XDMS_ERR_OK;
}

/* <add> (RFC 5261 §4.3) of nodes: into an element (at its end, or its
 * start with pos="prepend"), or before or after a node. */
static enum xdms_err apply_add(struct apply *ap)
{
	const struct xml_scan *doc = ap->doc, *ops = ap->ops;
	const struct target *t = &ap->t;
	const char *pos = ap->pos;
	enum xdms_err err;

	if (ap->type)
		return apply_add_attr(ap);
	if (!pos || !strcmp(pos, "prepend")) {
		struct span sp;

		if (t->kind != TARGET_ELEM)
			return XDMS_ERR_INVAL;
		err = op_content(ops, ap->op, doc, t->elem, &ap->content);
		if (err)
			return err;
		sp = insert_into(doc, t->elem, pos != NULL, &ap->content, &ap->mid);
		ap->from = sp.from;
		ap->to = sp.to;
		return XDMS_ERR_OK;
	}
	if (!strcmp(pos, "before") || !strcmp(pos, "after")) {
		bool is_before = pos[0] == 'b';
		uint32_t parent = t->kind == TARGET_ELEM ? doc->elems[t->elem].parent : t->elem;

		if (t->kind == TARGET_ATTR || parent == XML_SCAN_NONE)
			return XDMS_ERR_INVAL;
		err = op_content(ops, ap->op, doc, parent, &ap->mid);
		if (t->kind == TARGET_ELEM)
			ap->from = is_before ? doc->elems[t->elem].start : doc->elems[t->elem].end;
		else
			ap->from = is_before ? t->ch.start : t->ch.end;
		ap->to = ap->from;
		return err;
	}
	return XDMS_ERR_UNSUPPORTED;
}

/* Applies operation @op to @doc: the new document in *out. */
static enum xdms_err apply_one(const struct xml_scan *doc, const struct xml_scan *ops, uint32_t op, char **out,
			       size_t *out_len)
{
	const struct xml_scan_elem *oe = &ops->elems[op];
	size_t local_len;
	const char *local = xml_scan_elem_local(ops, op, &local_len);
	struct apply ap = { .doc = doc, .ops = ops, .op = op };
	enum xdms_err err;

	/* What an operation brings is its content, each character escaped at
	 * most six-fold ("&quot;"), plus names and quotes from the document. */
	buf_init(&ap.mid, 6 * ops->len + doc->len + 64);
	buf_init(&ap.content, 6 * ops->len + 64);
	if (!oe->ns || strcmp(oe->ns, DIFF_NS) != 0) {
		err = XDMS_ERR_UNSUPPORTED;
		goto out;
	}
	err = op_attr(ops, op, "sel", &ap.sel);
	if (!err)
		err = op_attr(ops, op, "pos", &ap.pos);
	if (!err)
		err = op_attr(ops, op, "type", &ap.type);
	if (!err)
		err = op_attr(ops, op, "ws", &ap.ws);
	if (err)
		goto out;
	if (!ap.sel) {
		err = XDMS_ERR_PARSE;
		goto out;
	}
	err = sel_eval(doc, ops, op, ap.sel, &ap.t);
	if (err)
		goto out;
	if (local_len == 6 && memcmp(local, "remove", 6) == 0)
		err = apply_remove(&ap);
	else if (local_len == 7 && memcmp(local, "replace", 7) == 0)
		err = apply_replace(&ap);
	else if (local_len == 3 && memcmp(local, "add", 3) == 0)
		err = apply_add(&ap);
	else
		err = XDMS_ERR_UNSUPPORTED;
	if (err)
		goto out;
	*out = splice3(doc->data, doc->len, ap.from, ap.to, ap.mid.data ? ap.mid.data : "", ap.mid.len, out_len);
out:
	buf_cleanup(&ap.mid);
	buf_cleanup(&ap.content);
	free(ap.sel);
	free(ap.pos);
	free(ap.type);
	free(ap.ws);
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

	if (!doc || (!ops && ops_len) || !out || !out_len || !xml_is_ncname(prefix) || !ns)
		return XDMS_ERR_INVAL;
	*out = NULL;
	*out_len = 0;
	buf_init(&wrap, ops_len + 6 * strlen(ns) + strlen(prefix) + 128);
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
