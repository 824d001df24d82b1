/* SPDX-License-Identifier: MIT */
/*
 * XCAP element, attribute and namespace-binding resources (RFC 4825 §7,
 * §8.2-§8.4, §10): GET, PUT and DELETE of one node inside a document's bytes.
 *
 * Design: the document is scanned once (xml/xml.h byte-offset scan), the
 * selector is evaluated over the scan (selector.c), and a write builds the new
 * document with one copy: the bytes before the node, the new bytes, the bytes
 * after it. Everything outside the touched node stays byte-for-byte the same,
 * so comments, white space, prefixes and entity references elsewhere survive.
 *
 * Every write is then checked the way RFC 4825 §8.2.4/§8.4 state it: the new
 * document is scanned again and the same selector evaluated on it. A PUT must
 * make the URI select exactly the bytes of the body (else 409 <cannot-insert>),
 * a DELETE must make it select nothing (else 409 <cannot-delete>). This one
 * check covers a body whose name differs from the last step, a body that
 * contradicts an [@a="v"] predicate, a replacement the URI no longer selects,
 * and deleting entry[2] while entry[3] exists.
 *
 * An element body is checked on its own with libxml2 (xml_parse): prefixes it
 * does not declare are not an error there, because they resolve in the
 * document (RFC 4825 §8.2.1); the rescan of the new document then checks that
 * every prefix inside the new element is bound. A well-formed element placed
 * between two nodes of element content keeps the document well-formed, so the
 * whole new document is not parsed again here (the caller parses it once for
 * schema validation). Cost: two O(document) scans and one copy per write.
 *
 * The detail line (for the change feed and RFC 5261 patches) is one of
 *   "put-element insert SEL", "put-element replace SEL",
 *   "put-attribute insert SEL", "put-attribute replace SEL",
 *   "delete-element SEL", "delete-attribute SEL"
 * where SEL is the node selector percent-encoded as in a URI, followed by
 * "?xmlns(p=uri)..." for the prefixes it uses. After a successful PUT, SEL
 * selects exactly the new or replaced node in new_doc.
 *
 * Every function fills a struct xcap_node_result from scratch (any previous
 * content is overwritten, not freed). INTERNAL means the stored document
 * cannot be scanned (outside the scanner's subset or limits).
 *
 * Threads: pure functions; any thread.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"


struct piece {
	const char *data;
	size_t len;
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void xcap_node_result_cleanup(struct xcap_node_result *r)
{
	if (!r)
		return;
	free(r->context);
	free(r->body);
	xml_scan_free(r->new_scan);
	free(r->new_doc);
	free(r->ancestor);
	free(r->detail);
	xcap_error_cleanup(&r->error);
	memset(r, 0, sizeof(*r));
}

static void result_init(struct xcap_node_result *out)
{
	memset(out, 0, sizeof(*out));
	out->edited = XML_SCAN_NONE;
}

static void conflict(struct xcap_node_result *out, enum xcap_error_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void conflict(struct xcap_node_result *out, enum xcap_error_kind kind, const char *fmt, ...)
{
	va_list ap;

	out->outcome = XCAP_OUTCOME_CONFLICT;
	out->error.kind = kind;
	va_start(ap, fmt);
	vsnprintf(out->error.phrase, sizeof(out->error.phrase), fmt, ap);
	va_end(ap);
	/* A phrase is one line; libxml2 messages carry newlines. */
	for (char *c = out->error.phrase; *c; c++)
		if (*c == '\n' || *c == '\r' || *c == '\t')
			*c = ' ';
}

/* Scans the stored document (checked when it was written, so without the
 * checks of a client's bytes); on failure the outcome is INTERNAL (see the
 * file comment). */
static struct xml_scan *scan_stored(const char *doc, size_t doc_len, struct xcap_node_result *out)
{
	struct xml_scan *scan = NULL;

	if (xml_scan_build_stored(doc, doc_len, &scan)) {
		out->outcome = XCAP_OUTCOME_INTERNAL;
		return NULL;
	}
	return scan;
}

/* doc[0, from) + pieces + doc[to, doc_len), in one allocation. NULL on size overflow. */
static char *splice(const char *doc, size_t doc_len, size_t from, size_t to, const struct piece *pieces,
		    size_t n, size_t *new_len)
{
	size_t total = from + (doc_len - to), at;
	char *s;

	for (size_t i = 0; i < n; i++) {
		if (pieces[i].len > SIZE_MAX / 2 - total)
			return NULL;
		total += pieces[i].len;
	}
	s = xmalloc(total + 1);
	memcpy(s, doc, from);
	at = from;
	for (size_t i = 0; i < n; i++) {
		memcpy(s + at, pieces[i].data, pieces[i].len);
		at += pieces[i].len;
	}
	memcpy(s + at, doc + to, doc_len - to);
	s[total] = '\0';
	*new_len = total;
	return s;
}

static void set_detail(struct xcap_node_result *out, const struct xcap_selector *sel, const char *what)
{
	char *d = xcap_selector_describe(sel);

	out->detail = xasprintf("%s %s", what, d);
	free(d);
}

/* The element of @scan whose start tag begins at @offset, or XML_SCAN_NONE. */
static uint32_t elem_at(const struct xml_scan *scan, size_t offset)
{
	uint32_t lo = 0, hi = scan->elem_count;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (scan->elems[mid].start < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < scan->elem_count && scan->elems[lo].start == offset ? lo : XML_SCAN_NONE;
}

/* ---- GET (RFC 4825 §8.3) ---------------------------------------------------------------- */

struct ns_entry {
	const char *prefix; /* not NUL-terminated */
	size_t prefix_len;
	const char *uri;
	uint32_t order; /* attribute index: document order */
};

static int ns_by_prefix_innermost(const void *a, const void *b)
{
	const struct ns_entry *x = a, *y = b;
	size_t n = x->prefix_len < y->prefix_len ? x->prefix_len : y->prefix_len;
	int c = memcmp(x->prefix, y->prefix, n);

	if (c)
		return c;
	if (x->prefix_len != y->prefix_len)
		return x->prefix_len < y->prefix_len ? -1 : 1;
	return x->order > y->order ? -1 : x->order < y->order; /* innermost first */
}

static int ns_by_order(const void *a, const void *b)
{
	const struct ns_entry *x = a, *y = b;

	return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * RFC 4825 §10: the namespace bindings in scope at element @e, as an empty
 * element with the selected element's qualified name (prefix included) that
 * carries one xmlns / xmlns:p attribute per binding in scope. The implicit
 * xml prefix and undeclared defaults are left out. Bindings appear in the order
 * of their declarations in the document.
 */
static char *namespace_body(const struct xml_scan *scan, uint32_t e, size_t *len)
{
	struct ns_entry *v = NULL;
	size_t n = 0, cap = 0, kept = 0, max;
	struct buf b;
	const struct xml_scan_elem *el = &scan->elems[e];

	for (uint32_t cur = e; cur != XML_SCAN_NONE; cur = scan->elems[cur].parent) {
		const struct xml_scan_elem *ce = &scan->elems[cur];

		for (uint32_t k = 0; k < ce->attr_count; k++) {
			const struct xml_scan_attr *a = &scan->attrs[ce->attr_first + k];

			if (!a->is_xmlns)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 8;
				v = xrealloc(v, cap * sizeof(*v));
			}
			v[n].prefix = scan->data + a->name_off + (a->prefix_len ? 6 : 5);
			v[n].prefix_len = a->prefix_len ? a->name_len - 6 : 0;
			v[n].uri = a->ns;
			v[n].order = ce->attr_first + k;
			n++;
		}
	}
	if (n) {
		qsort(v, n, sizeof(*v), ns_by_prefix_innermost);
		for (size_t i = 0; i < n; i++) {
			bool is_hidden = kept && v[kept - 1].prefix_len == v[i].prefix_len &&
					 !memcmp(v[kept - 1].prefix, v[i].prefix, v[i].prefix_len);

			if (is_hidden)
				continue;
			v[kept++] = v[i];
		}
		qsort(v, kept, sizeof(*v), ns_by_order);
	}
	max = el->name_len + 4;
	for (size_t i = 0; i < kept; i++)
		max += v[i].prefix_len + 6 * strlen(v[i].uri) + 10; /* ' xmlns:p="uri"', escaped */
	buf_init(&b, max);
	if (buf_append_str(&b, "<") || buf_append(&b, scan->data + el->name_off, el->name_len))
		abort();
	for (size_t i = 0; i < kept; i++) {
		bool is_xml = v[i].prefix_len == 3 && !memcmp(v[i].prefix, "xml", 3);

		if (!v[i].uri[0] || is_xml)
			continue;
		if (buf_append_str(&b, v[i].prefix_len ? " xmlns:" : " xmlns") ||
		    buf_append(&b, v[i].prefix, v[i].prefix_len) || buf_append_str(&b, "=\"") ||
		    buf_append_xml_escaped(&b, v[i].uri, strlen(v[i].uri)) || buf_append_str(&b, "\""))
			abort();
	}
	if (buf_append_str(&b, "/>"))
		abort();
	free(v);
	return buf_take(&b, len);
}

void xcap_node_get(const char *doc, size_t doc_len, const struct xcap_selector *sel,
		   struct xcap_node_result *out)
{
	struct xml_scan *scan;

	result_init(out);
	scan = scan_stored(doc, doc_len, out);
	if (!scan)
		return;
	xcap_node_get_scanned(doc, doc_len, scan, sel, out);
	xml_scan_free(scan);
}

void xcap_node_get_scanned(const char *doc, size_t doc_len, const struct xml_scan *scan,
			   const struct xcap_selector *sel, struct xcap_node_result *out)
{
	uint32_t e, a;
	const char *ans, *alocal, *aprefix;

	(void)doc_len;
	result_init(out);
	/* RFC 4825 §6.3: a selector points to a node only when it selects exactly one. */
	if (xcap_selector_select(sel, scan, xcap_selector_steps(sel), &e, NULL) != 1) {
		out->outcome = XCAP_OUTCOME_NOT_FOUND;
		goto out;
	}
	switch (xcap_selector_kind(sel)) {
	case XCAP_NODE_ELEMENT:
		/* RFC 4825 §8.3: the element exactly as it is in the document, from
		 * the '<' of its start tag to the '>' of its end tag. */
		out->body_len = scan->elems[e].end - scan->elems[e].start;
		out->body = xstrndup(doc + scan->elems[e].start, out->body_len);
		break;
	case XCAP_NODE_ATTRIBUTE:
		xcap_selector_attr(sel, &ans, &alocal, &aprefix);
		a = xml_scan_attr_find(scan, e, ans, alocal, strlen(alocal));
		if (a == XML_SCAN_NONE) {
			out->outcome = XCAP_OUTCOME_NOT_FOUND;
			goto out;
		}
		/* RFC 4825 §8.3 with §7.4: an attribute resource is its value as an
		 * XML AttValue without the quotes, i.e. exactly the bytes between the
		 * quotes, references left as written (not unescaped). This is also
		 * the form a PUT carries, so GET(PUT(x)) == x holds byte for byte. */
		out->body_len = scan->attrs[a].value_len;
		out->body = xstrndup(doc + scan->attrs[a].value_off, out->body_len);
		break;
	case XCAP_NODE_NAMESPACES:
		out->body = namespace_body(scan, e, &out->body_len);
		break;
	}
	out->outcome = XCAP_OUTCOME_OK;
out:
	return;
}

/* ---- PUT (RFC 4825 §8.2) ---------------------------------------------------------------- */

/* The no-parent answer (RFC 4825 §8.2.1, §11): the closest ancestor the
 * selector does point to, as the first @unique steps of the selector. */
static void no_parent(struct xcap_node_result *out, const struct xcap_selector *sel, size_t unique)
{
	conflict(out, XCAP_ERROR_NO_PARENT, "the parent of the node selected by the request URI does not exist");
	out->ancestor = xcap_selector_uri(sel, unique);
}

/* The namespace the body's root element has where it will sit: its own
 * declarations first, then those in scope at @parent in the document. */
static const char *body_namespace(const struct xml_scan *bscan, const struct xml_scan *scan, uint32_t parent)
{
	const struct xml_scan_elem *be = &bscan->elems[0];
	const char *prefix = bscan->data + be->name_off;
	size_t plen = be->prefix_len;
	const char *found = NULL;

	if (plen == 3 && !memcmp(prefix, "xml", 3))
		return XML_NS_XML;
	for (uint32_t k = 0; k < be->attr_count; k++) {
		const struct xml_scan_attr *a = &bscan->attrs[be->attr_first + k];
		bool is_match = a->is_xmlns && (plen ? (a->prefix_len == 5 && a->name_len == 6 + plen &&
							 !memcmp(bscan->data + a->name_off + 6, prefix, plen))
						      : a->prefix_len == 0);

		if (is_match)
			found = a->ns;
	}
	if (found)
		return plen && !found[0] ? NULL : found;
	return xml_scan_prefix_ns(scan, parent, prefix, plen);
}

/* Every prefix inside the element at @off (@len bytes) of @scan is bound. */
static bool subtree_bound(const struct xml_scan *scan, size_t off, size_t len, const char **what, size_t *what_len)
{
	uint32_t k = elem_at(scan, off);

	for (uint32_t j = k; j != XML_SCAN_NONE && j < scan->elem_count && scan->elems[j].start < off + len; j++) {
		const struct xml_scan_elem *el = &scan->elems[j];

		if (!el->ns) {
			*what = scan->data + el->name_off;
			*what_len = el->name_len;
			return false;
		}
		for (uint32_t a = 0; a < el->attr_count; a++) {
			const struct xml_scan_attr *at = &scan->attrs[el->attr_first + a];

			if (!at->ns) {
				*what = scan->data + at->name_off;
				*what_len = at->name_len;
				return false;
			}
		}
	}
	return true;
}

/*
 * A successful write: the result takes the new document and its scan (which
 * borrows it) and records the change's detail. *new_doc and *nscan are NULL after.
 */
static void result_take(struct xcap_node_result *out, enum xcap_outcome outcome, char **new_doc,
			size_t new_len, struct xml_scan **nscan, const struct xcap_selector *sel,
			const char *what)
{
	out->outcome = outcome;
	out->new_doc = *new_doc;
	out->new_len = new_len;
	out->new_scan = *nscan;
	*new_doc = NULL;
	*nscan = NULL;
	set_detail(out, sel, what);
}

static void put_element(const char *doc, size_t doc_len, const struct xcap_selector *sel, const char *body,
			size_t body_len, struct xcap_node_result *out)
{
	struct xml_scan *scan = NULL, *bscan = NULL, *nscan = NULL;
	struct xml_doc *bdoc = NULL;
	struct xml_issue issue;
	struct piece pieces[5];
	size_t npieces = 0, nsteps = xcap_selector_steps(sel), from, to, new_off, new_len = 0, n, what_len;
	uint32_t target, parent, e2;
	bool is_insert = false;
	char *new_doc = NULL;
	const char *what;
	char why[XCAP_PHRASE_MAX];

	/* White space around the element is not part of it: a GET could never
	 * return it, so it is dropped rather than refused. */
	while (body_len && is_space(body[0])) {
		body++;
		body_len--;
	}
	while (body_len && is_space(body[body_len - 1]))
		body_len--;
	if (!xml_utf8_valid(body, body_len, NULL)) {
		conflict(out, XCAP_ERROR_NOT_UTF8, "the body is not valid UTF-8");
		goto out;
	}
	/* RFC 4825 §8.2.1: the body must be an XML fragment of exactly one
	 * element: no declaration, comment, PI or text around it. */
	if (body_len < 2 || body[0] != '<' || body[1] == '?' || body[1] == '!' || body[1] == '/') {
		conflict(out, XCAP_ERROR_NOT_XML_FRAG, "the body must be exactly one XML element");
		goto out;
	}
	if (xml_parse_fragment(body, body_len, XML_SCAN_MAX_DEPTH, &bdoc, &issue)) {
		conflict(out, issue.fault == XML_FAULT_NOT_UTF8 ? XCAP_ERROR_NOT_UTF8 : XCAP_ERROR_NOT_XML_FRAG,
			 "%s", issue.phrase[0] ? issue.phrase : "the body is not a well-formed XML element");
		goto out;
	}
	if (xml_scan_build(body, body_len, &bscan) || bscan->elems[0].start != 0 ||
	    bscan->elems[0].end != body_len) {
		conflict(out, XCAP_ERROR_NOT_XML_FRAG, "the body must be exactly one XML element");
		goto out;
	}
	scan = scan_stored(doc, doc_len, out);
	if (!scan)
		goto out;
	n = xcap_selector_select(sel, scan, nsteps, &target, NULL);
	if (n > 1) {
		/* Neither replacing nor inserting can make the URI point to one node. */
		conflict(out, XCAP_ERROR_CANNOT_INSERT, "the node selector selects %zu elements, not one", n);
		goto out;
	}
	if (n == 1) {
		/* RFC 4825 §8.2.4 (replace): the element's bytes, and only those. */
		from = scan->elems[target].start;
		to = scan->elems[target].end;
		new_off = from;
		pieces[npieces++] = (struct piece){ body, body_len };
	} else {
		size_t unique;
		const char *bns, *blocal;
		size_t blocal_len, offset;

		if (nsteps == 1) {
			conflict(out, XCAP_ERROR_CANNOT_INSERT,
				 "the document already has a root element, and it is not the one selected");
			goto out;
		}
		if (xcap_selector_select(sel, scan, nsteps - 1, &parent, &unique) != 1) {
			no_parent(out, sel, unique);
			goto out;
		}
		bns = body_namespace(bscan, scan, parent);
		blocal = xml_scan_elem_local(bscan, 0, &blocal_len);
		if (!xcap_selector_insert_point(sel, scan, parent, bns, blocal, blocal_len, &offset, why,
						sizeof(why))) {
			conflict(out, XCAP_ERROR_CANNOT_INSERT, "%s", why);
			goto out;
		}
		is_insert = true;
		if (scan->elems[parent].is_empty) {
			/* "<p .../>" opens up into "<p ...>" body "</p>", with the
			 * parent's own qualified name. */
			const struct xml_scan_elem *pe = &scan->elems[parent];

			from = pe->start_end - 2; /* the "/>" */
			to = pe->start_end;
			new_off = from + 1;
			pieces[npieces++] = (struct piece){ ">", 1 };
			pieces[npieces++] = (struct piece){ body, body_len };
			pieces[npieces++] = (struct piece){ "</", 2 };
			pieces[npieces++] = (struct piece){ doc + pe->name_off, pe->name_len };
			pieces[npieces++] = (struct piece){ ">", 1 };
		} else {
			from = to = new_off = offset;
			pieces[npieces++] = (struct piece){ body, body_len };
		}
	}
	new_doc = splice(doc, doc_len, from, to, pieces, npieces, &new_len);
	if (!new_doc) {
		conflict(out, XCAP_ERROR_CONSTRAINT_FAILURE, "the resulting document would be too large");
		goto out;
	}
	switch (xml_scan_build(new_doc, new_len, &nscan)) {
	case XDMS_ERR_OK:
		break;
	case XDMS_ERR_TOOBIG:
		conflict(out, XCAP_ERROR_CONSTRAINT_FAILURE,
			 "the resulting document would have too many elements or attributes, or nest too deeply");
		goto out;
	default:
		conflict(out, XCAP_ERROR_NOT_XML_FRAG, "the body is not well-formed inside the document");
		goto out;
	}
	/* RFC 4825 §8.2.1: the fragment's prefixes resolve in the document. */
	if (!subtree_bound(nscan, new_off, body_len, &what, &what_len)) {
		conflict(out, XCAP_ERROR_NOT_XML_FRAG, "the prefix of '%.*s' is not bound to a namespace",
			 (int)(what_len > 200 ? 200 : what_len), what);
		goto out;
	}
	/* RFC 4825 §8.2.4: a GET of the same URI must now return the body. */
	n = xcap_selector_select(sel, nscan, nsteps, &e2, NULL);
	if (n != 1 || nscan->elems[e2].start != new_off || nscan->elems[e2].end != new_off + body_len) {
		if (n == 0)
			conflict(out, XCAP_ERROR_CANNOT_INSERT,
				 "the node selector would not select the new element: its name, position or "
				 "attributes do not match the last step");
		else if (n > 1)
			conflict(out, XCAP_ERROR_CANNOT_INSERT,
				 "the node selector would select %zu elements after the PUT", n);
		else
			conflict(out, XCAP_ERROR_CANNOT_INSERT,
				 "the node selector would select another element after the PUT");
		goto out;
	}
	result_take(out, is_insert ? XCAP_OUTCOME_CREATED : XCAP_OUTCOME_OK, &new_doc, new_len, &nscan, sel,
		    is_insert ? "put-element insert" : "put-element replace");
out:
	free(new_doc);
	xml_doc_free(bdoc);
	xml_scan_free(bscan);
	xml_scan_free(scan);
	xml_scan_free(nscan);
}

static void put_attribute(const char *doc, size_t doc_len, const struct xcap_selector *sel, const char *body,
			  size_t body_len, struct xcap_node_result *out)
{
	struct xml_scan *scan = NULL, *nscan = NULL;
	struct piece pieces[8];
	size_t npieces = 0, nsteps = xcap_selector_steps(sel), from, to, unique, new_len = 0, plen = 0;
	uint32_t e, a, e2, a2;
	const char *ans, *alocal, *aprefix, *prefix = NULL;
	bool has_dquote = memchr(body, '"', body_len) != NULL, has_squote = memchr(body, '\'', body_len) != NULL;
	bool is_insert = false;
	char *new_doc = NULL, quote;
	struct buf check;

	if (!xml_utf8_valid(body, body_len, NULL)) {
		conflict(out, XCAP_ERROR_NOT_UTF8, "the body is not valid UTF-8");
		goto out;
	}
	/* RFC 4825 §7.4, §8.2.1: the body is an XML AttValue without its quotes:
	 * no '<', every '&' starts a valid reference, and it must fit between
	 * one kind of quote. */
	buf_init(&check, body_len + 1);
	if (xml_attvalue_decode(body, body_len, &check) || (has_dquote && has_squote)) {
		buf_cleanup(&check);
		conflict(out, XCAP_ERROR_NOT_XML_ATT_VALUE,
			 "the body is not an XML attribute value: '<', a bare '&', a bad reference, a control "
			 "character, or both kinds of quote");
		goto out;
	}
	buf_cleanup(&check);
	scan = scan_stored(doc, doc_len, out);
	if (!scan)
		goto out;
	/* RFC 4825 §8.2.1: the element that holds the attribute must exist. */
	if (xcap_selector_select(sel, scan, nsteps, &e, &unique) != 1) {
		no_parent(out, sel, unique);
		goto out;
	}
	xcap_selector_attr(sel, &ans, &alocal, &aprefix);
	a = xml_scan_attr_find(scan, e, ans, alocal, strlen(alocal));
	if (a != XML_SCAN_NONE) {
		/* Replace the value between the quotes; keep the quote unless the
		 * new value needs the other one. */
		const struct xml_scan_attr *at = &scan->attrs[a];

		quote = at->quote;
		if ((quote == '"' && has_dquote) || (quote == '\'' && has_squote))
			quote = quote == '"' ? '\'' : '"';
		from = at->value_off - 1;
		to = at->value_off + at->value_len + 1;
		pieces[npieces++] = (struct piece){ &quote, 1 };
		pieces[npieces++] = (struct piece){ body, body_len };
		pieces[npieces++] = (struct piece){ &quote, 1 };
	} else {
		/* Append ' name="value"' after the last attribute of the start tag. */
		if (ans[0] && !xml_scan_ns_prefix(scan, e, ans, aprefix, &prefix, &plen)) {
			conflict(out, XCAP_ERROR_CANNOT_INSERT,
				 "no prefix is bound to the attribute's namespace %s at the element", ans);
			goto out;
		}
		is_insert = true;
		quote = has_dquote ? '\'' : '"';
		from = to = scan->elems[e].attrs_end;
		pieces[npieces++] = (struct piece){ " ", 1 };
		if (prefix) {
			pieces[npieces++] = (struct piece){ prefix, plen };
			pieces[npieces++] = (struct piece){ ":", 1 };
		}
		pieces[npieces++] = (struct piece){ alocal, strlen(alocal) };
		pieces[npieces++] = (struct piece){ "=", 1 };
		pieces[npieces++] = (struct piece){ &quote, 1 };
		pieces[npieces++] = (struct piece){ body, body_len };
		pieces[npieces++] = (struct piece){ &quote, 1 };
	}
	new_doc = splice(doc, doc_len, from, to, pieces, npieces, &new_len);
	if (!new_doc) {
		conflict(out, XCAP_ERROR_CONSTRAINT_FAILURE, "the resulting document would be too large");
		goto out;
	}
	if (xml_scan_build(new_doc, new_len, &nscan)) {
		conflict(out, XCAP_ERROR_CONSTRAINT_FAILURE, "the resulting document would have too many attributes");
		goto out;
	}
	/* RFC 4825 §8.2.4: a GET of the same URI must now return the body. */
	if (xcap_selector_select(sel, nscan, nsteps, &e2, NULL) != 1) {
		conflict(out, XCAP_ERROR_CANNOT_INSERT,
			 "after the PUT the node selector would no longer select the element");
		goto out;
	}
	a2 = xml_scan_attr_find(nscan, e2, ans, alocal, strlen(alocal));
	if (a2 == XML_SCAN_NONE || nscan->attrs[a2].value_len != body_len ||
	    memcmp(new_doc + nscan->attrs[a2].value_off, body, body_len) != 0) {
		conflict(out, XCAP_ERROR_CANNOT_INSERT, "after the PUT the attribute would not have the body as value");
		goto out;
	}
	result_take(out, is_insert ? XCAP_OUTCOME_CREATED : XCAP_OUTCOME_OK, &new_doc, new_len, &nscan, sel,
		    is_insert ? "put-attribute insert" : "put-attribute replace");
out:
	free(new_doc);
	xml_scan_free(scan);
	xml_scan_free(nscan);
}

void xcap_node_put(const char *doc, size_t doc_len, const struct xcap_selector *sel, const char *body,
		   size_t body_len, struct xcap_node_result *out)
{
	result_init(out);
	if (!body) {
		body = "";
		body_len = 0;
	}
	switch (xcap_selector_kind(sel)) {
	case XCAP_NODE_ELEMENT:
		put_element(doc, doc_len, sel, body, body_len, out);
		break;
	case XCAP_NODE_ATTRIBUTE:
		put_attribute(doc, doc_len, sel, body, body_len, out);
		break;
	case XCAP_NODE_NAMESPACES:
		/* RFC 4825 §8.2: namespace bindings are read-only; the caller
		 * answers NOT_ALLOWED before calling; this is the safety net. */
		out->outcome = XCAP_OUTCOME_NOT_ALLOWED;
		break;
	}
}

/* ---- PUT replacing an element, checked locally -------------------------------------------- */

/* The element @e of @scan where it sits: its ancestors' start tags as written,
 * then @body, then their end tags. *body_off: where @body starts in it. */
static char *context_doc(const struct xml_scan *scan, uint32_t e, const char *body, size_t body_len,
			 size_t *len, size_t *body_off)
{
	uint32_t chain[XML_SCAN_MAX_DEPTH];
	size_t n = 0, max = body_len + 1;
	struct buf b;

	for (uint32_t a = scan->elems[e].parent; a != XML_SCAN_NONE && n < XML_SCAN_MAX_DEPTH;
	     a = scan->elems[a].parent) {
		chain[n++] = a;
		max += scan->elems[a].start_end - scan->elems[a].start + scan->elems[a].name_len + 3;
	}
	buf_init(&b, max);
	for (size_t i = n; i-- > 0;) {
		const struct xml_scan_elem *a = &scan->elems[chain[i]];

		if (buf_append(&b, scan->data + a->start, a->start_end - a->start))
			abort();
	}
	*body_off = b.len;
	if (buf_append(&b, body, body_len))
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct xml_scan_elem *a = &scan->elems[chain[i]];

		if (buf_append_str(&b, "</") || buf_append(&b, scan->data + a->name_off, a->name_len) ||
		    buf_append_str(&b, ">"))
			abort();
	}
	return buf_take(&b, len);
}

/* True when a namespace declaration in @s (start tags as written) has a
 * reference (&...;) in its value, or cannot be read to its end. The scan
 * keeps attribute values as written while the parser expands them, so such
 * an element takes the whole-document path. */
static bool has_ns_reference(const char *s, size_t len)
{
	const char *p = s, *end = s + len;

	while ((p = memmem(p, (size_t)(end - p), "xmlns", 5)) != NULL) {
		const char *q = p + 5, *close;

		while (q < end && *q != '=' && *q != '<' && *q != '>')
			q++;
		if (q == end || *q != '=') {
			p = q;
			continue;
		}
		q++;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n'))
			q++;
		if (q == end || (*q != '"' && *q != '\''))
			return true;
		close = memchr(q + 1, *q, (size_t)(end - q - 1));
		if (!close || memchr(q + 1, '&', (size_t)(close - q - 1)))
			return true;
		p = close + 1;
	}
	return false;
}

bool xcap_node_replace_local(const char *doc, size_t doc_len, const struct xml_scan *scan,
			     const struct xcap_selector *sel, const char *body, size_t body_len,
			     struct xcap_node_result *out)
{
	struct xml_scan *own = NULL, *cscan = NULL, *nscan = NULL;
	struct xml_doc *bdoc = NULL;
	struct xml_issue issue;
	struct piece piece;
	uint32_t target, depth;
	size_t body_off = 0, ctx_len = 0, new_len = 0, what_len, l1, l2;
	const char *what, *n1, *n2;
	const struct xml_scan_elem *oe, *ce;
	char *ctx = NULL, *new_doc = NULL;
	bool is_done = false;

	result_init(out);
	if (!body || xcap_selector_kind(sel) != XCAP_NODE_ELEMENT)
		return false;
	while (body_len && is_space(body[0])) {
		body++;
		body_len--;
	}
	while (body_len && is_space(body[body_len - 1]))
		body_len--;
	if (body_len < 2 || body[0] != '<' || body[1] == '?' || body[1] == '!' || body[1] == '/' ||
	    !xml_utf8_valid(body, body_len, NULL))
		return false;
	if (!scan) {
		if (xml_scan_build_stored(doc, doc_len, &own))
			return false;
		scan = own;
	}
	if (xcap_selector_select(sel, scan, xcap_selector_steps(sel), &target, NULL) != 1 || target == 0)
		goto out;
	if (xml_parse_fragment(body, body_len, XML_SCAN_MAX_DEPTH, &bdoc, &issue))
		goto out;
	/* The body where it will sit: the scan of that small document gives its
	 * namespaces and depths in the real one. */
	oe = &scan->elems[target];
	depth = oe->depth;
	ctx = context_doc(scan, target, body, body_len, &ctx_len, &body_off);
	/* Namespace declarations inside the new element, and references in
	 * those above it, are left to the whole-document path (the fuzz target
	 * fuzz_node_local found the two paths disagreeing on both). */
	if (memmem(body, body_len, "xmlns", 5) || has_ns_reference(ctx, ctx_len) ||
	    xml_scan_build(ctx, ctx_len, &cscan) || cscan->elem_count <= depth)
		goto out;
	ce = &cscan->elems[depth];
	if (ce->start != body_off || ce->end != body_off + body_len || ce->depth != depth)
		goto out;
	/* The same expanded name: the parent's content keeps its sequence of
	 * names, positions among siblings stay, and the type is the same. */
	n1 = xml_scan_elem_local(scan, target, &l1);
	n2 = xml_scan_elem_local(cscan, depth, &l2);
	if (!oe->ns || !ce->ns || strcmp(oe->ns, ce->ns) != 0 || l1 != l2 || memcmp(n1, n2, l1) != 0)
		goto out;
	if (!subtree_bound(cscan, body_off, body_len, &what, &what_len))
		goto out;
	piece = (struct piece){ body, body_len };
	new_doc = splice(doc, doc_len, oe->start, oe->end, &piece, 1, &new_len);
	if (!new_doc || xml_scan_splice(scan, target, cscan, depth, new_doc, new_len, &nscan))
		goto out;
	/* RFC 4825 §8.2.4: the URI must select the new element. The steps above
	 * the last select what they did (nothing above the element changed) and
	 * its position among same-named siblings is the old one's: only the last
	 * step's tests remain to be passed. */
	if (!xcap_selector_last_matches(sel, nscan, target))
		goto out;
	result_take(out, XCAP_OUTCOME_OK, &new_doc, new_len, &nscan, sel, "put-element replace");
	out->edited = target;
	out->context = ctx;
	out->context_len = ctx_len;
	ctx = NULL;
	is_done = true;
out:
	free(ctx);
	free(new_doc);
	xml_doc_free(bdoc);
	xml_scan_free(cscan);
	xml_scan_free(nscan);
	xml_scan_free(own);
	return is_done;
}

/* ---- DELETE (RFC 4825 §8.4) ------------------------------------------------------------- */

void xcap_node_delete(const char *doc, size_t doc_len, const struct xcap_selector *sel,
		      struct xcap_node_result *out)
{
	struct xml_scan *scan = NULL, *nscan = NULL;
	size_t nsteps = xcap_selector_steps(sel), from, to, new_len = 0;
	enum xcap_node_kind kind = xcap_selector_kind(sel);
	const char *ans = NULL, *alocal = NULL, *aprefix;
	uint32_t e, a = XML_SCAN_NONE;
	char *new_doc = NULL;
	bool is_still_there;

	result_init(out);
	if (kind == XCAP_NODE_NAMESPACES) {
		out->outcome = XCAP_OUTCOME_NOT_ALLOWED;
		return;
	}
	scan = scan_stored(doc, doc_len, out);
	if (!scan)
		return;
	if (xcap_selector_select(sel, scan, nsteps, &e, NULL) != 1) {
		out->outcome = XCAP_OUTCOME_NOT_FOUND;
		goto out;
	}
	if (kind == XCAP_NODE_ELEMENT) {
		if (e == 0) {
			conflict(out, XCAP_ERROR_CANNOT_DELETE,
				 "the root element cannot be deleted; delete the document instead");
			goto out;
		}
		/* Exactly the element's bytes; the white space around it stays. */
		from = scan->elems[e].start;
		to = scan->elems[e].end;
	} else {
		const struct xml_scan_elem *el = &scan->elems[e];

		xcap_selector_attr(sel, &ans, &alocal, &aprefix);
		a = xml_scan_attr_find(scan, e, ans, alocal, strlen(alocal));
		if (a == XML_SCAN_NONE) {
			out->outcome = XCAP_OUTCOME_NOT_FOUND;
			goto out;
		}
		/* The attribute and the white space before it. */
		from = a == el->attr_first ? el->name_off + el->name_len : scan->attrs[a - 1].end;
		to = scan->attrs[a].end;
	}
	new_doc = splice(doc, doc_len, from, to, NULL, 0, &new_len);
	if (!new_doc || xml_scan_build(new_doc, new_len, &nscan)) {
		out->outcome = XCAP_OUTCOME_INTERNAL;
		goto out;
	}
	/* RFC 4825 §8.4: afterwards a GET of the same URI must give 404. */
	is_still_there = xcap_selector_select(sel, nscan, nsteps, &e, NULL) == 1;
	if (is_still_there && kind == XCAP_NODE_ATTRIBUTE)
		is_still_there = xml_scan_attr_find(nscan, e, ans, alocal, strlen(alocal)) != XML_SCAN_NONE;
	if (is_still_there) {
		conflict(out, XCAP_ERROR_CANNOT_DELETE,
			 "after the DELETE the node selector would select another node (delete the last one of "
			 "positional siblings first)");
		goto out;
	}
	result_take(out, XCAP_OUTCOME_OK, &new_doc, new_len, &nscan, sel,
		    kind == XCAP_NODE_ELEMENT ? "delete-element" : "delete-attribute");
out:
	free(new_doc);
	xml_scan_free(scan);
	xml_scan_free(nscan);
}
