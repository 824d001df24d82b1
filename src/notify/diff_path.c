/* SPDX-License-Identifier: MIT */
/*
 * Writing RFC 5261 operations: the selectors (positional paths with the
 * namespace declarations they need, prefixes generated per namespace) and
 * the operation elements (<add>, <replace>, <remove>) with their content.
 *
 * Design: a struct differ carries the patch being written (a buffer capped
 * at the new document's size) and the prefixes generated so far; a struct
 * path is one selector being built. Selector buffers are bounded by the
 * document they describe.
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

/* ==== selectors ================================================================== */

void path_init(struct path *p, size_t max)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->text, max);
}

void path_cleanup(struct path *p)
{
	buf_cleanup(&p->text);
	free(p->decls);
	memset(p, 0, sizeof(*p));
}

void path_copy(struct path *dst, const struct path *src)
{
	path_init(dst, src->text.max_len);
	if (src->text.len && buf_append(&dst->text, src->text.data, src->text.len))
		abort(); /* the same bound as its source */
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

void path_addf(struct path *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vprintf(&p->text, fmt, ap))
		abort();
	va_end(ap);
}

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

void differ_reset(struct differ *d)
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
enum xdms_err path_add_step(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t e, size_t pos,
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
enum xdms_err path_of(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t e)
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
void path_add_attr(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t a)
{
	path_add(p, "/@");
	attr_name(d, p, s, a, &p->text);
}

/* The ' type="@name"' of an <add> of attribute @a of @s to the element @p
 * selects (RFC 5261 §4.3). Heap string. */
char *type_attr(struct differ *d, struct path *p, const struct xml_scan *s, uint32_t a)
{
	struct buf t;

	buf_init(&t, p->text.max_len); /* a name as a selector step writes it */
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
enum xdms_err op_open(struct differ *d, const char *name, const struct path *sel, const char *extra,
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

enum xdms_err op_close(struct differ *d, const char *name)
{
	return buf_printf(d->out, "</%s>\n", name);
}

/* One operation whose content is the bytes [from, to) of @s, elements made
 * to stand alone (their context: their parent in @s). */
enum xdms_err op_nodes(struct differ *d, const char *name, const struct path *sel, const char *extra,
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
