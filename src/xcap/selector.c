/* SPDX-License-Identifier: MIT */
/*
 * XCAP node selectors (RFC 4825 §6.3) and the namespace bindings of the query
 * (RFC 4825 §6.4, XPointer xmlns() scheme): our own parser for exactly the
 * RFC grammar, and its evaluation over a byte-offset scan of a document
 * (xml/xml.h). Client text never reaches libxml2's XPath engine.
 *
 *   node-selector = element-selector ["/" terminal-selector]
 *   step          = ( QName / "*" ) [ "[" position "]" ] [ "[" "@" QName "=" AttValue "]" ]
 *   terminal      = "@" QName / "namespace::*"
 *
 * No white space anywhere, no leading or trailing "/", no "//", no other
 * XPath. Unprefixed element names are in the application usage's default
 * namespace, unprefixed attribute names in no namespace (RFC 4825 §6.3).
 *
 * Evaluation keeps the set of elements each step selects: a step looks only at
 * the children of the previous set, and each element has one parent, so a
 * whole selector costs O(document) however many steps it has. A selector
 * "points to" a node only when it selects exactly one (RFC 4825 §6.3).
 *
 * A parsed selector is immutable and may be used from any thread.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"


#define SELECTOR_MAX_LEN 16384 /* bytes of a decoded node selector */
#define SELECTOR_MAX_STEPS XML_SCAN_MAX_DEPTH
#define BINDINGS_MAX 64

struct step {
	char *local;            /* NULL for "*" */
	size_t local_len;
	const char *ns;         /* the name's namespace URI ("" for none); borrowed from the selector */
	bool has_position;
	uint32_t position;      /* may be 0: it parses (1*DIGIT) and selects nothing */
	bool has_attr;
	const char *attr_ns;    /* "" for an unprefixed attribute */
	char *attr_local;
	char *attr_value;       /* decoded (XML 1.0 §3.3.3) */
	size_t attr_value_len;
	size_t text_end;        /* offset in text just past this step */
};

struct binding {
	char *prefix;
	char *uri;
	bool is_used;
};

struct xcap_selector {
	char *text;             /* the selector as given */
	char *default_ns;
	struct step *steps;
	size_t step_count;
	enum xcap_node_kind kind;
	const char *attr_ns;    /* terminal attribute */
	char *attr_local;
	char *attr_prefix;      /* its prefix as written, NULL when unprefixed */
	struct binding bindings[BINDINGS_MAX];
	size_t binding_count;
};

static const char xml_ns_xml[] = XML_NS_XML;

/* XML 1.0 (fifth edition) §2.3 NameStartChar and NameChar, without ':' (an NCName). */
static bool is_name_start_cp(unsigned long c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= 0xc0 && c <= 0xd6) ||
	       (c >= 0xd8 && c <= 0xf6) || (c >= 0xf8 && c <= 0x2ff) || (c >= 0x370 && c <= 0x37d) ||
	       (c >= 0x37f && c <= 0x1fff) || (c >= 0x200c && c <= 0x200d) || (c >= 0x2070 && c <= 0x218f) ||
	       (c >= 0x2c00 && c <= 0x2fef) || (c >= 0x3001 && c <= 0xd7ff) || (c >= 0xf900 && c <= 0xfdcf) ||
	       (c >= 0xfdf0 && c <= 0xfffd) || (c >= 0x10000 && c <= 0xeffff);
}

static bool is_name_cp(unsigned long c)
{
	return is_name_start_cp(c) || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == 0xb7 ||
	       (c >= 0x300 && c <= 0x36f) || (c >= 0x203f && c <= 0x2040);
}

/* Decodes the character at @p of a string already checked as UTF-8 (so every
 * lead byte is followed by its continuation bytes, never by the NUL). */
static unsigned long next_cp(const char *p, size_t *n)
{
	const unsigned char *s = (const unsigned char *)p;

	if (s[0] < 0x80) {
		*n = 1;
		return s[0];
	}
	if (s[0] < 0xe0) {
		*n = 2;
		return ((unsigned long)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
	}
	if (s[0] < 0xf0) {
		*n = 3;
		return ((unsigned long)(s[0] & 0x0f) << 12) | ((unsigned long)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
	}
	*n = 4;
	return ((unsigned long)(s[0] & 0x07) << 18) | ((unsigned long)(s[1] & 0x3f) << 12) |
	       ((unsigned long)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Length in bytes of the NCName at @p (0 when there is none). @p is UTF-8. */
static size_t ncname_len(const char *p)
{
	size_t len = 0, n;

	if (!*p || !is_name_start_cp(next_cp(p, &n)))
		return 0;
	while (p[len] && is_name_cp(next_cp(p + len, &n)))
		len += n;
	return len;
}

void xcap_selector_free(struct xcap_selector *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->step_count; i++) {
		free(sel->steps[i].local);
		free(sel->steps[i].attr_local);
		free(sel->steps[i].attr_value);
	}
	for (size_t i = 0; i < sel->binding_count; i++) {
		free(sel->bindings[i].prefix);
		free(sel->bindings[i].uri);
	}
	free(sel->steps);
	free(sel->text);
	free(sel->default_ns);
	free(sel->attr_local);
	free(sel->attr_prefix);
	free(sel);
}

enum xcap_node_kind xcap_selector_kind(const struct xcap_selector *sel)
{
	return sel->kind;
}

/* ---- namespace bindings: xmlns(p=uri)xmlns(q="uri") (RFC 4825 §6.4) ---------------- */

static bool add_binding(struct xcap_selector *sel, const char *prefix, size_t prefix_len, char *uri,
			const char **why)
{
	struct binding *b;

	if (!uri[0]) {
		*why = "a namespace binding has an empty URI";
		goto bad;
	}
	if (prefix_len == 5 && !memcmp(prefix, "xmlns", 5)) {
		*why = "the prefix xmlns cannot be bound";
		goto bad;
	}
	if (prefix_len == 3 && !memcmp(prefix, "xml", 3) && strcmp(uri, xml_ns_xml) != 0) {
		*why = "the prefix xml cannot be bound to another namespace";
		goto bad;
	}
	/* XPointer xmlns(): a later binding of the same prefix wins. */
	for (size_t i = 0; i < sel->binding_count; i++) {
		b = &sel->bindings[i];
		if (strlen(b->prefix) == prefix_len && !memcmp(b->prefix, prefix, prefix_len)) {
			free(b->uri);
			b->uri = uri;
			return true;
		}
	}
	if (sel->binding_count == BINDINGS_MAX) {
		*why = "too many namespace bindings";
		goto bad;
	}
	b = &sel->bindings[sel->binding_count++];
	b->prefix = xstrndup(prefix, prefix_len);
	b->uri = uri;
	b->is_used = false;
	return true;
bad:
	free(uri);
	return false;
}

static bool parse_bindings(struct xcap_selector *sel, const char *raw, const char **why)
{
	char *q = NULL;
	const char *p;
	bool ok = false;

	/* The query arrives as it was in the request line, still percent-encoded. */
	if (xcap_percent_decode(raw, strlen(raw), &q)) {
		*why = "the query has a malformed percent-encoding";
		return false;
	}
	if (!xml_utf8_valid(q, strlen(q), NULL)) {
		*why = "the query is not valid UTF-8";
		goto out;
	}
	p = q;
	while (is_space(*p))
		p++;
	while (*p) {
		const char *prefix;
		size_t plen;
		struct buf uri;

		if (strncmp(p, "xmlns(", 6) != 0) {
			*why = "the query is not a list of xmlns() namespace bindings";
			goto out;
		}
		p += 6;
		while (is_space(*p))
			p++;
		prefix = p;
		plen = ncname_len(p);
		if (!plen) {
			*why = "a namespace binding lacks a prefix";
			goto out;
		}
		p += plen;
		while (is_space(*p))
			p++;
		if (*p++ != '=') {
			*why = "a namespace binding lacks '='";
			goto out;
		}
		while (is_space(*p))
			p++;
		buf_init(&uri, SELECTOR_MAX_LEN);
		if (*p == '"' || *p == '\'') {
			/* Quoted, as some clients send it: up to the same quote. */
			const char *e = strchr(p + 1, *p);

			if (!e || buf_append(&uri, p + 1, (size_t)(e - p - 1))) {
				buf_cleanup(&uri);
				*why = "a quoted namespace URI is not closed";
				goto out;
			}
			p = e + 1;
			while (is_space(*p))
				p++;
		} else {
			/* XPointer escaping: ^( ^) ^^ stand for ( ) ^. */
			while (*p && *p != ')') {
				char c = *p;

				if (c == '^') {
					if (p[1] != '(' && p[1] != ')' && p[1] != '^') {
						buf_cleanup(&uri);
						*why = "a namespace URI has a bad ^ escape";
						goto out;
					}
					c = *++p;
				} else if (c == '(') {
					buf_cleanup(&uri);
					*why = "a namespace URI has an unescaped '('";
					goto out;
				}
				if (buf_append(&uri, &c, 1)) {
					buf_cleanup(&uri);
					*why = "a namespace URI is too long";
					goto out;
				}
				p++;
			}
			while (uri.len && is_space(uri.data[uri.len - 1]))
				uri.data[--uri.len] = '\0';
		}
		if (*p++ != ')') {
			buf_cleanup(&uri);
			*why = "a namespace binding is not closed with ')'";
			goto out;
		}
		if (!add_binding(sel, prefix, plen, buf_take(&uri, NULL), why))
			goto out;
		while (is_space(*p))
			p++;
	}
	ok = true;
out:
	free(q);
	return ok;
}

/* The namespace bound to @prefix, or NULL; marks the binding used. */
static const char *resolve_prefix(struct xcap_selector *sel, const char *prefix, size_t len)
{
	for (size_t i = 0; i < sel->binding_count; i++) {
		struct binding *b = &sel->bindings[i];

		if (strlen(b->prefix) == len && !memcmp(b->prefix, prefix, len)) {
			b->is_used = true;
			return b->uri;
		}
	}
	if (len == 3 && !memcmp(prefix, "xml", 3))
		return xml_ns_xml;
	return NULL;
}

/* ---- the node selector ------------------------------------------------------------------ */

/*
 * Reads a QName at *p into *local and *ns. Element names without a prefix get
 * the default namespace, attribute names none (RFC 4825 §6.3).
 */
static bool parse_qname(struct xcap_selector *sel, const char **p, bool is_attr, char **local,
			const char **ns, char **prefix_out, const char **why)
{
	const char *s = *p;
	size_t n1 = ncname_len(s), n2;

	if (!n1) {
		*why = is_attr ? "an attribute name is missing or malformed"
			       : "an element name is missing or malformed";
		return false;
	}
	if (is_attr && n1 == 5 && !memcmp(s, "xmlns", 5)) {
		*why = "namespace declarations are not attributes";
		return false;
	}
	if (s[n1] == ':') {
		n2 = ncname_len(s + n1 + 1);
		if (!n2) {
			*why = "a qualified name is malformed";
			return false;
		}
		*ns = resolve_prefix(sel, s, n1);
		if (!*ns) {
			*why = "a prefix in the node selector has no xmlns() binding in the query";
			return false;
		}
		if (prefix_out)
			*prefix_out = xstrndup(s, n1);
		*local = xstrndup(s + n1 + 1, n2);
		*p = s + n1 + 1 + n2;
		return true;
	}
	*ns = is_attr ? "" : (sel->default_ns ? sel->default_ns : "");
	*local = xstrndup(s, n1);
	*p = s + n1;
	return true;
}

/* Parses an XML AttValue ("..." or '...') at *p and decodes it. */
static bool parse_attvalue(const char **p, char **value, size_t *value_len, const char **why)
{
	const char *s = *p, *e;
	struct buf b;
	char q = *s;

	if (q != '"' && q != '\'') {
		*why = "an attribute value must be quoted";
		return false;
	}
	e = strchr(s + 1, q);
	if (!e) {
		*why = "an attribute value is not closed";
		return false;
	}
	buf_init(&b, SELECTOR_MAX_LEN);
	if (xml_attvalue_decode(s + 1, (size_t)(e - s - 1), &b)) {
		buf_cleanup(&b);
		*why = "an attribute value has a '<', a bad reference or a control character";
		return false;
	}
	*value = buf_take(&b, value_len);
	*p = e + 1;
	return true;
}

static bool parse_step(struct xcap_selector *sel, const char **p, struct step *st, const char **why)
{
	const char *s = *p;

	if (*s == '*') {
		st->local = NULL;
		st->ns = "";
		s++;
	} else if (!parse_qname(sel, &s, false, &st->local, &st->ns, NULL, why)) {
		return false;
	} else {
		st->local_len = strlen(st->local);
	}
	if (*s == '[' && s[1] >= '0' && s[1] <= '9') {
		unsigned long long pos = 0;

		s++;
		while (*s >= '0' && *s <= '9') {
			pos = pos * 10 + (unsigned)(*s - '0');
			if (pos > UINT32_MAX - 1) {
				*why = "a position is too large";
				return false;
			}
			s++;
		}
		if (*s++ != ']') {
			*why = "a position predicate is not a plain number";
			return false;
		}
		/* RFC 4825 §6.3 makes a position 1*DIGIT, so "[0]" is a valid
		 * selector; positions count from 1, so it selects nothing (a GET
		 * gets 404, a PUT 409 <cannot-insert>). */
		st->has_position = true;
		st->position = (uint32_t)pos;
	}
	if (*s == '[') {
		s++;
		if (*s++ != '@') {
			*why = "a predicate is neither a position nor an attribute test";
			return false;
		}
		if (!parse_qname(sel, &s, true, &st->attr_local, &st->attr_ns, NULL, why))
			return false;
		if (*s++ != '=') {
			*why = "an attribute test lacks '='";
			return false;
		}
		if (!parse_attvalue(&s, &st->attr_value, &st->attr_value_len, why))
			return false;
		if (*s++ != ']') {
			*why = "an attribute test is not closed with ']'";
			return false;
		}
		st->has_attr = true;
	}
	if (*s == '[') {
		*why = "a step has more predicates than [position][@attribute=value]";
		return false;
	}
	*p = s;
	return true;
}

enum xdms_err xcap_selector_parse(const char *node_selector, const char *query, const char *default_ns,
				  struct xcap_selector **out, const char **why)
{
	struct xcap_selector *sel = xcalloc(1, sizeof(*sel));
	size_t len = strlen(node_selector), cap = 0;
	const char *p;

	*out = NULL;
	*why = "malformed node selector";
	sel->text = xstrdup(node_selector);
	sel->default_ns = default_ns ? xstrdup(default_ns) : NULL;
	sel->kind = XCAP_NODE_ELEMENT;
	if (len == 0) {
		*why = "the node selector is empty";
		goto bad;
	}
	if (len > SELECTOR_MAX_LEN) {
		*why = "the node selector is too long";
		goto bad;
	}
	if (!xml_utf8_valid(node_selector, len, NULL)) {
		*why = "the node selector is not valid UTF-8";
		goto bad;
	}
	if (query && *query && !parse_bindings(sel, query, why))
		goto bad;
	p = sel->text;
	for (;;) {
		struct step *st;

		if (sel->step_count && *p == '@') {
			p++;
			if (!parse_qname(sel, &p, true, &sel->attr_local, &sel->attr_ns, &sel->attr_prefix, why))
				goto bad;
			if (*p) {
				*why = "an attribute selector must be the last step";
				goto bad;
			}
			sel->kind = XCAP_NODE_ATTRIBUTE;
			break;
		}
		if (sel->step_count && strcmp(p, "namespace::*") == 0) {
			sel->kind = XCAP_NODE_NAMESPACES;
			break;
		}
		if (sel->step_count == SELECTOR_MAX_STEPS) {
			*why = "the node selector has too many steps";
			goto bad;
		}
		if (sel->step_count == cap) {
			cap = cap ? cap * 2 : 8;
			sel->steps = xrealloc(sel->steps, cap * sizeof(*sel->steps));
		}
		st = &sel->steps[sel->step_count++];
		memset(st, 0, sizeof(*st));
		if (!parse_step(sel, &p, st, why))
			goto bad;
		st->text_end = (size_t)(p - sel->text);
		if (*p == '\0')
			break;
		if (*p != '/') {
			*why = "the node selector has text outside the RFC 4825 grammar";
			goto bad;
		}
		p++;
		if (*p == '\0') {
			*why = "the node selector ends with '/'";
			goto bad;
		}
	}
	*out = sel;
	return XDMS_ERR_OK;
bad:
	xcap_selector_free(sel);
	return XDMS_ERR_PARSE;
}

/* ---- evaluation ------------------------------------------------------------------------- */

/*
 * The namespace URIs of a scan are its own strings, one per declaration, so
 * the siblings of a large list share one pointer: a pointer once found equal
 * to the step's URI needs no string compare again (@ns_seen, per select).
 */
static bool name_matches(const struct step *st, const struct xml_scan *scan, uint32_t e, const char **ns_seen)
{
	const struct xml_scan_elem *el = &scan->elems[e];
	const char *local;
	size_t n;

	if (!st->local)
		return true;
	local = xml_scan_elem_local(scan, e, &n);
	if (n != st->local_len || memcmp(local, st->local, n) != 0 || !el->ns)
		return false;
	if (el->ns == *ns_seen)
		return true;
	if (strcmp(el->ns, st->ns) != 0)
		return false;
	*ns_seen = el->ns;
	return true;
}

/* The attribute test of @st: the attribute's decoded value equals the
 * selector's decoded value (both sides decoded, XML 1.0 §3.3.3). */
static bool attr_matches(const struct step *st, const struct xml_scan *scan, uint32_t e)
{
	uint32_t a;

	if (!st->has_attr)
		return true;
	a = xml_scan_attr_find(scan, e, st->attr_ns, st->attr_local, strlen(st->attr_local));
	if (a == XML_SCAN_NONE)
		return false;
	return xml_attvalue_equal(scan->data + scan->attrs[a].value_off, scan->attrs[a].value_len,
				  st->attr_value, st->attr_value_len);
}

bool xcap_selector_last_matches(const struct xcap_selector *sel, const struct xml_scan *scan, uint32_t e)
{
	const struct step *st;

	if (!sel->step_count)
		return false;
	st = &sel->steps[sel->step_count - 1];
	const char *ns_seen = NULL;

	return name_matches(st, scan, e, &ns_seen) && attr_matches(st, scan, e);
}

size_t xcap_selector_steps(const struct xcap_selector *sel)
{
	return sel->step_count;
}

size_t xcap_selector_select(const struct xcap_selector *sel, const struct xml_scan *scan, size_t nsteps,
			    uint32_t *match, size_t *unique_steps)
{
	uint32_t *cur = NULL, *next = NULL;
	size_t cur_n = 0, next_n = 0, cap_cur = 0, cap_next = 0;

	*match = XML_SCAN_NONE;
	if (unique_steps)
		*unique_steps = 0;
	if (nsteps > sel->step_count)
		nsteps = sel->step_count;
	if (!nsteps || !scan->elem_count)
		return 0;
	/* Step 1 is matched against the root element, the only element child of
	 * the document, so its position can only be 1. */
	{
		const struct step *st = &sel->steps[0];

		const char *ns_seen = NULL;

		if (name_matches(st, scan, 0, &ns_seen) && (!st->has_position || st->position == 1) &&
		    attr_matches(st, scan, 0)) {
			cap_cur = 8;
			cur = xmalloc(cap_cur * sizeof(*cur));
			cur[cur_n++] = 0;
			if (unique_steps)
				*unique_steps = 1;
		}
	}
	for (size_t i = 1; i < nsteps && cur_n; i++) {
		const struct step *st = &sel->steps[i];
		const char *ns_seen = NULL;

		next_n = 0;
		for (size_t k = 0; k < cur_n; k++) {
			uint32_t count = 0;

			for (uint32_t c = scan->elems[cur[k]].first_child; c != XML_SCAN_NONE;
			     c = scan->elems[c].next_sibling) {
				if (!name_matches(st, scan, c, &ns_seen))
					continue;
				/* RFC 4825 §6.3: the position counts siblings that pass the
				 * name test; the attribute test applies after it. */
				count++;
				if (st->has_position && count != st->position)
					continue;
				if (attr_matches(st, scan, c)) {
					if (next_n == cap_next) {
						cap_next = cap_next ? cap_next * 2 : 8;
						next = xrealloc(next, cap_next * sizeof(*next));
					}
					next[next_n++] = c;
				}
				if (st->has_position)
					break;
			}
		}
		{
			uint32_t *t = cur;
			size_t tc = cap_cur;

			cur = next;
			cap_cur = cap_next;
			cur_n = next_n;
			next = t;
			cap_next = tc;
		}
		if (cur_n == 1 && unique_steps)
			*unique_steps = i + 1;
	}
	if (cur_n == 1)
		*match = cur[0];
	free(cur);
	free(next);
	return cur_n;
}

bool xcap_selector_insert_point(const struct xcap_selector *sel, const struct xml_scan *scan, uint32_t parent,
				const char *body_ns, const char *body_local, size_t body_local_len,
				size_t *offset, char *why, size_t why_len)
{
	const struct step *st = &sel->steps[sel->step_count - 1];
	struct step by_body = *st;
	char *local = NULL;
	const char *ns_seen = NULL;
	uint32_t count = 0, first = XML_SCAN_NONE, last = XML_SCAN_NONE, before_n = XML_SCAN_NONE;

	/* RFC 4825 §8.2.3: with "*" and no position, the new element's place
	 * follows from its own name, which only the body tells. */
	if (!st->local && !st->has_position && body_ns) {
		local = xstrndup(body_local, body_local_len);
		by_body.local = local;
		by_body.local_len = body_local_len;
		by_body.ns = body_ns;
		st = &by_body;
	}
	for (uint32_t c = scan->elems[parent].first_child; c != XML_SCAN_NONE; c = scan->elems[c].next_sibling) {
		if (!name_matches(st, scan, c, &ns_seen))
			continue;
		count++;
		if (first == XML_SCAN_NONE)
			first = c;
		last = c;
		if (st->has_position && st->position && count == st->position - 1)
			before_n = c;
	}
	free(local);
	if (st->has_position) {
		if (st->position == 0) {
			snprintf(why, why_len, "position 0 selects no element (positions start at 1)");
			return false;
		}
		if (st->position - 1 > count) {
			snprintf(why, why_len, "position %u cannot be created: only %u matching sibling %s",
				 st->position, count, count == 1 ? "element exists" : "elements exist");
			return false;
		}
		if (st->position == 1)
			/* The new first match goes before the current first one. */
			*offset = first != XML_SCAN_NONE ? scan->elems[first].start : scan->elems[parent].end_start;
		else
			/* Right after the (n-1)th match, so that it becomes the nth. */
			*offset = scan->elems[before_n].end;
		return true;
	}
	/* No position: after the last sibling of the same name, else as the last child. */
	*offset = last != XML_SCAN_NONE ? scan->elems[last].end : scan->elems[parent].end_start;
	return true;
}

void xcap_selector_attr(const struct xcap_selector *sel, const char **ns, const char **local,
			const char **prefix)
{
	*ns = sel->attr_ns;
	*local = sel->attr_local;
	*prefix = sel->attr_prefix;
}

/* ---- text forms ----------------------------------------------------------------------- */

/* Appends @len bytes of @s percent-encoded for a URI path
 * (xcap_percent_encode). The buffers are sized for three bytes per byte,
 * so appends cannot fail. */
static void append_encoded(struct buf *b, const char *s, size_t len)
{
	if (xcap_percent_encode(b, s, len))
		abort();
}

char *xcap_selector_uri(const struct xcap_selector *sel, size_t nsteps)
{
	struct buf b;
	size_t n = strlen(sel->text);

	if (nsteps == 0)
		return xstrdup("");
	if (nsteps <= sel->step_count)
		n = sel->steps[nsteps - 1].text_end;
	buf_init(&b, 3 * n + 1);
	append_encoded(&b, sel->text, n);
	return buf_take(&b, NULL);
}

char *xcap_selector_describe(const struct xcap_selector *sel)
{
	struct buf b;
	bool is_first = true;
	size_t max = 3 * strlen(sel->text) + 1;

	for (size_t i = 0; i < sel->binding_count; i++)
		max += 3 * (strlen(sel->bindings[i].prefix) + strlen(sel->bindings[i].uri)) + 9; /* "?xmlns(p=u)" */
	buf_init(&b, max);
	append_encoded(&b, sel->text, strlen(sel->text));
	for (size_t i = 0; i < sel->binding_count; i++) {
		const struct binding *bd = &sel->bindings[i];

		if (!bd->is_used)
			continue;
		if (buf_append_str(&b, is_first ? "?xmlns(" : "xmlns("))
			abort();
		is_first = false;
		append_encoded(&b, bd->prefix, strlen(bd->prefix));
		if (buf_append_str(&b, "="))
			abort();
		append_encoded(&b, bd->uri, strlen(bd->uri));
		if (buf_append_str(&b, ")"))
			abort();
	}
	return buf_take(&b, NULL);
}
