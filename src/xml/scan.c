/* SPDX-License-Identifier: MIT */
/*
 * Byte-offset scanning of stored documents (see xml.h for the contract).
 *
 * XCAP node operations (RFC 4825 §8) must change one element or attribute and
 * leave every other byte of the document as it was, so they need to know
 * where things are in the bytes, which a DOM does not tell. This module reads
 * a document once, front to back, and records for every element the offsets
 * of its start tag, end tag and attributes, its parent/child/sibling links and
 * its resolved namespace (XML Namespaces 1.0 §6: declarations on an element
 * are in scope for it, its attributes and its descendants).
 *
 * Design: a single pass with an explicit stack (no recursion, so no stack
 * depth driven by input), bounded by XML_SCAN_MAX_DEPTH, XML_SCAN_MAX_ELEMENTS
 * and XML_SCAN_MAX_ATTRS. Namespace bindings live in a stack of declarations
 * plus a hash table from prefix to the innermost declaration, so that a
 * lookup costs O(1) however many declarations are in scope; leaving an
 * element pops its declarations. Every read is checked against the length:
 * the input may be anything (fuzzed), and malformed input ends in PARSE.
 *
 * Two modes share this code: the checking scan (xml_scan_build) for bytes
 * from anywhere, and the scan of stored bytes (xml_scan_build_stored), which
 * were parsed and validated when they were written. The latter skips the
 * checks that only malformed input can fail (character data, attribute
 * values, text outside the root) and keeps every structural step, so both
 * build the same records from any input the checking scan accepts.
 *
 * The scanner accepts a subset of what libxml2 accepts (no DTD, QNames with
 * at most one colon); a stored document outside that subset simply cannot be
 * addressed by node selectors.
 *
 * Threads: no shared state; a built scan is immutable.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/hash.h"
#include "base/mem.h"
#include "xml/xml.h"

static const char xml_ns_xml[] = XML_NS_XML;

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* XML 1.0 §2.3 name characters, approximated on bytes: every non-ASCII byte is
 * accepted (the document was checked as UTF-8 when it was stored). The colon
 * is handled by the QName split. A table, so that a name costs one load and
 * one test per byte. */
enum { NAME_START = 1, NAME_CHAR = 2 };

static const unsigned char name_class[256] = {
	['a' ... 'z'] = NAME_START | NAME_CHAR,
	['A' ... 'Z'] = NAME_START | NAME_CHAR,
	['_'] = NAME_START | NAME_CHAR,
	[0x80 ... 0xff] = NAME_START | NAME_CHAR,
	['0' ... '9'] = NAME_CHAR,
	['-'] = NAME_CHAR,
	['.'] = NAME_CHAR,
};

static bool is_name_start(unsigned char c)
{
	return name_class[c] & NAME_START;
}

static bool is_name_char(unsigned char c)
{
	return name_class[c] & NAME_CHAR;
}

/* XML 1.0 §2.2 Char, for character references. */
static bool is_xml_char(unsigned long cp)
{
	return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
	       (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

static size_t utf8_put(unsigned long cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Parses the reference starting at s[*i] == '&' (XML 1.0 §4.1): one of the
 * five predefined entities or a character reference. Writes its UTF-8 bytes
 * to @out and advances *i past the ';'. Returns the byte count, 0 when it is
 * not a valid reference.
 */
static size_t parse_reference(const char *s, size_t len, size_t *i, char out[4])
{
	static const struct {
		const char *name;
		size_t len;
		char ch;
	} predefined[] = {
		{ "lt", 2, '<' }, { "gt", 2, '>' }, { "amp", 3, '&' }, { "quot", 4, '"' }, { "apos", 4, '\'' },
	};
	size_t p = *i + 1;

	if (p < len && s[p] == '#') {
		unsigned long cp = 0;
		bool is_hex = false;
		size_t digits = 0;

		p++;
		if (p < len && s[p] == 'x') {
			is_hex = true;
			p++;
		}
		for (; p < len && s[p] != ';'; p++) {
			unsigned char c = (unsigned char)s[p];
			unsigned v;

			if (c >= '0' && c <= '9')
				v = c - '0';
			else if (is_hex && c >= 'a' && c <= 'f')
				v = c - 'a' + 10;
			else if (is_hex && c >= 'A' && c <= 'F')
				v = c - 'A' + 10;
			else
				return 0;
			cp = cp * (is_hex ? 16 : 10) + v;
			if (cp > 0x10ffff)
				return 0;
			digits++;
		}
		if (p >= len || !digits || !is_xml_char(cp))
			return 0;
		*i = p + 1;
		return utf8_put(cp, out);
	}
	for (size_t k = 0; k < sizeof(predefined) / sizeof(predefined[0]); k++) {
		size_t n = predefined[k].len;

		if (len - p > n && memcmp(s + p, predefined[k].name, n) == 0 && s[p + n] == ';') {
			*i = p + n + 1;
			out[0] = predefined[k].ch;
			return 1;
		}
	}
	return 0;
}

/*
 * Decodes the next unit of an attribute value (XML 1.0 §3.3.3 normalization
 * for CDATA attributes). Returns the number of bytes written to @out, 0 for
 * malformed input.
 */
static size_t attvalue_next(const char *raw, size_t len, size_t *i, char out[4])
{
	unsigned char c = (unsigned char)raw[*i];

	if (c == '&')
		return parse_reference(raw, len, i, out);
	if (c == '<')
		return 0;
	if (c == '\r') {
		/* §2.11: CR LF is one line end, and §3.3.3 turns it into one space. */
		*i += (*i + 1 < len && raw[*i + 1] == '\n') ? 2 : 1;
		out[0] = ' ';
		return 1;
	}
	if (c == '\n' || c == '\t') {
		(*i)++;
		out[0] = ' ';
		return 1;
	}
	if (c < 0x20)
		return 0;
	/* U+FFFE and U+FFFF are not XML characters (XML 1.0 §2.2). */
	if (c == 0xef && len - *i >= 3 && (unsigned char)raw[*i + 1] == 0xbf &&
	    ((unsigned char)raw[*i + 2] == 0xbe || (unsigned char)raw[*i + 2] == 0xbf))
		return 0;
	(*i)++;
	out[0] = (char)c;
	return 1;
}

enum xdms_err xml_attvalue_decode(const char *raw, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		char u[4];
		size_t n = attvalue_next(raw, len, &i, u);

		if (!n)
			return XDMS_ERR_PARSE;
		if (buf_append(out, u, n))
			return XDMS_ERR_TOOBIG;
	}
	return XDMS_ERR_OK;
}

bool xml_attvalue_equal(const char *raw, size_t raw_len, const char *dec, size_t dec_len)
{
	size_t i = 0, k = 0;

	/* Decoding never lengthens a value. Bytes with nothing to decode stand
	 * for themselves, so the first difference among them decides: values
	 * that differ early (most keys of a long list) cost a few bytes. */
	if (dec_len > raw_len)
		return false;
	for (; i < raw_len; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c < 0x20 || c == '&' || c == '<' || c == 0xef)
			break;
		if (i >= dec_len || raw[i] != dec[i])
			return false;
	}
	k = i;
	if (i == raw_len)
		return k == dec_len;
	while (i < raw_len) {
		char u[4];
		size_t n = attvalue_next(raw, raw_len, &i, u);

		if (!n || dec_len - k < n || memcmp(dec + k, u, n) != 0)
			return false;
		k += n;
	}
	return k == dec_len;
}

/* ---- namespace scope ------------------------------------------------------------- */

/* One declaration in scope; @prev is the declaration of the same prefix it hides. */
struct binding {
	size_t prefix_off;
	uint32_t prefix_len;
	uint32_t prev;
	const char *uri;
};

/* Hash slot: a prefix ever seen, and its innermost declaration (XML_SCAN_NONE
 * when none is in scope). Slots are never removed. */
struct slot {
	size_t prefix_off;
	uint32_t prefix_len; /* UINT32_MAX marks an empty slot */
	uint32_t top;
};

/* One open element. */
struct frame {
	uint32_t elem;
	uint32_t binding_base; /* bindings[] size before this element's declarations */
	uint32_t last_child;
};

struct scanner {
	const char *s;
	size_t len;
	struct xml_scan *scan;
	size_t elem_cap, attr_cap;
	struct binding *bindings;
	uint32_t binding_count, binding_cap;
	struct slot *slots;
	uint32_t slot_cap, slot_used;
	uint32_t default_top; /* innermost default namespace declaration, XML_SCAN_NONE: none */
	struct frame stack[XML_SCAN_MAX_DEPTH];
	uint32_t depth;
	/* The bytes come from the store, where they were parsed and validated
	 * when written: the checks that only malformed input can fail are
	 * skipped (character data, attribute values, the white space around
	 * the root). Everything that keeps reads in bounds stays. */
	bool is_trusted;
};

static uint32_t slot_find(struct scanner *sc, const char *prefix, size_t len, bool is_insert)
{
	uint32_t mask, i;

	if (is_insert && (sc->slot_used + 1) * 2 > sc->slot_cap) {
		uint32_t old_cap = sc->slot_cap;
		struct slot *old = sc->slots;

		sc->slot_cap = old_cap ? old_cap * 2 : 16;
		sc->slots = xmalloc(sizeof(*sc->slots) * sc->slot_cap);
		for (uint32_t k = 0; k < sc->slot_cap; k++)
			sc->slots[k].prefix_len = UINT32_MAX;
		for (uint32_t k = 0; k < old_cap; k++) {
			if (old[k].prefix_len == UINT32_MAX)
				continue;
			i = (uint32_t)fnv1a(sc->s + old[k].prefix_off, old[k].prefix_len) & (sc->slot_cap - 1);
			while (sc->slots[i].prefix_len != UINT32_MAX)
				i = (i + 1) & (sc->slot_cap - 1);
			sc->slots[i] = old[k];
		}
		free(old);
	}
	if (!sc->slot_cap)
		return XML_SCAN_NONE;
	mask = sc->slot_cap - 1;
	i = (uint32_t)fnv1a(prefix, len) & mask;
	for (;;) {
		struct slot *sl = &sc->slots[i];

		if (sl->prefix_len == UINT32_MAX) {
			if (!is_insert)
				return XML_SCAN_NONE;
			sl->prefix_off = (size_t)(prefix - sc->s);
			sl->prefix_len = (uint32_t)len;
			sl->top = XML_SCAN_NONE;
			sc->slot_used++;
			return i;
		}
		if (sl->prefix_len == len && memcmp(sc->s + sl->prefix_off, prefix, len) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

/* The URI bound to @prefix now: "" for an undeclared default namespace, NULL
 * for an unbound prefix. */
static const char *scope_lookup(struct scanner *sc, const char *prefix, size_t len)
{
	uint32_t i;

	if (!len)
		return sc->default_top == XML_SCAN_NONE ? "" : sc->bindings[sc->default_top].uri;
	if (len == 3 && memcmp(prefix, "xml", 3) == 0)
		return xml_ns_xml;
	i = slot_find(sc, prefix, len, false);
	if (i == XML_SCAN_NONE || sc->slots[i].top == XML_SCAN_NONE)
		return len ? NULL : "";
	return sc->bindings[sc->slots[i].top].uri;
}

static void scope_push(struct scanner *sc, size_t prefix_off, size_t len, const char *uri)
{
	/* The default namespace, looked up for most elements, has no slot. */
	uint32_t i = len ? slot_find(sc, sc->s + prefix_off, len, true) : XML_SCAN_NONE;
	struct binding *b;

	if (sc->binding_count == sc->binding_cap) {
		sc->binding_cap = sc->binding_cap ? sc->binding_cap * 2 : 16;
		sc->bindings = xrealloc(sc->bindings, sizeof(*sc->bindings) * sc->binding_cap);
	}
	b = &sc->bindings[sc->binding_count];
	b->prefix_off = prefix_off;
	b->prefix_len = (uint32_t)len;
	b->prev = len ? sc->slots[i].top : sc->default_top;
	b->uri = uri;
	if (len)
		sc->slots[i].top = sc->binding_count++;
	else
		sc->default_top = sc->binding_count++;
}

static void scope_pop(struct scanner *sc, uint32_t base)
{
	while (sc->binding_count > base) {
		struct binding *b = &sc->bindings[--sc->binding_count];
		uint32_t i;

		if (!b->prefix_len) {
			sc->default_top = b->prev;
			continue;
		}
		i = slot_find(sc, sc->s + b->prefix_off, b->prefix_len, false);
		if (i != XML_SCAN_NONE)
			sc->slots[i].top = b->prev;
	}
}

/* ---- the scanner ------------------------------------------------------------------ */

static char *keep_string(struct xml_scan *scan, char *s)
{
	if (scan->string_count == scan->string_cap) {
		scan->string_cap = scan->string_cap ? scan->string_cap * 2 : 8;
		scan->strings = xrealloc(scan->strings, sizeof(*scan->strings) * scan->string_cap);
	}
	scan->strings[scan->string_count++] = s;
	return s;
}

/* Reads a QName at *p. On success sets its length and prefix length (0 when
 * unprefixed) and advances *p. Names with more than one colon, or a colon at
 * either end, are refused (XML Namespaces 1.0 §7). */
static bool read_qname(const struct scanner *sc, size_t *p, uint32_t *name_len, uint32_t *prefix_len)
{
	const unsigned char *s = (const unsigned char *)sc->s;
	size_t start = *p, i = *p, colon = 0, len = sc->len;
	bool has_colon = false;

	if (i >= len || !is_name_start(s[i]))
		return false;
	for (;;) {
		while (++i < len && is_name_char(s[i]))
			;
		if (i >= len || s[i] != ':')
			break;
		if (has_colon || i + 1 >= len || !is_name_start(s[i + 1]))
			return false;
		has_colon = true;
		colon = i++;
	}
	if (i - start > UINT32_MAX / 2)
		return false;
	*name_len = (uint32_t)(i - start);
	*prefix_len = has_colon ? (uint32_t)(colon - start) : 0;
	*p = i;
	return true;
}

static size_t skip_space(const struct scanner *sc, size_t p)
{
	while (p < sc->len && is_space((unsigned char)sc->s[p]))
		p++;
	return p;
}

/* Checks character data (content between markup): valid references, no
 * control characters. */
static bool check_text(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c == '&') {
			char u[4];

			if (!parse_reference(s, len, &i, u))
				return false;
			continue;
		}
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return false;
		i++;
	}
	return true;
}

static const char *find_bytes(const char *s, size_t from, size_t len, const char *needle, size_t n)
{
	if (from > len)
		return NULL;
	return memmem(s + from, len - from, needle, n);
}

/* Parses the start tag at sc->s[pos] == '<'. Returns the offset after it, or 0
 * with *err set. Longer than most functions on purpose: it is the scanner's
 * hot loop over a tag's bytes (name, attributes, namespace declarations),
 * written as one pass with its state in locals. */
static size_t scan_start_tag(struct scanner *sc, size_t pos, enum xdms_err *err)
{
	struct xml_scan *scan = sc->scan;
	struct xml_scan_elem *e;
	uint32_t idx, name_len, prefix_len, binding_base = sc->binding_count;
	size_t p = pos + 1, name_off = p;

	*err = XDMS_ERR_PARSE;
	if (!read_qname(sc, &p, &name_len, &prefix_len))
		return 0;
	if (scan->elem_count >= XML_SCAN_MAX_ELEMENTS || sc->depth >= XML_SCAN_MAX_DEPTH) {
		*err = XDMS_ERR_TOOBIG;
		return 0;
	}
	if (scan->elem_count == sc->elem_cap) {
		sc->elem_cap = sc->elem_cap ? sc->elem_cap * 2 : 64;
		scan->elems = xrealloc(scan->elems, sizeof(*scan->elems) * sc->elem_cap);
	}
	idx = scan->elem_count++;
	e = &scan->elems[idx];
	memset(e, 0, sizeof(*e));
	e->start = pos;
	e->name_off = name_off;
	e->name_len = name_len;
	e->prefix_len = prefix_len;
	e->attrs_end = p;
	e->first_child = e->next_sibling = XML_SCAN_NONE;
	e->attr_first = scan->attr_count;
	e->depth = sc->depth;
	e->parent = sc->depth ? sc->stack[sc->depth - 1].elem : XML_SCAN_NONE;

	for (;;) {
		size_t q = skip_space(sc, p), value_off, value_end;
		uint32_t an_len, ap_len;
		struct xml_scan_attr *a;
		const char *close;
		char quote;

		if (q >= sc->len)
			return 0;
		if (sc->s[q] == '>') {
			p = q + 1;
			break;
		}
		if (sc->s[q] == '/') {
			if (q + 1 >= sc->len || sc->s[q + 1] != '>')
				return 0;
			p = q + 2;
			e->is_empty = true;
			break;
		}
		if (q == p) /* attributes are separated by white space (XML 1.0 §3.1) */
			return 0;
		p = q;
		if (!read_qname(sc, &p, &an_len, &ap_len))
			return 0;
		q = skip_space(sc, p);
		if (q >= sc->len || sc->s[q] != '=')
			return 0;
		q = skip_space(sc, q + 1);
		if (q >= sc->len || (sc->s[q] != '"' && sc->s[q] != '\''))
			return 0;
		quote = sc->s[q];
		value_off = q + 1;
		close = memchr(sc->s + value_off, quote, sc->len - value_off);
		if (!close)
			return 0;
		value_end = (size_t)(close - sc->s);
		if (!sc->is_trusted) {
			/* Validate the value: no '<', only valid references. */
			size_t i = value_off;

			while (i < value_end) {
				char u[4];
				size_t k = i - value_off;

				if (!attvalue_next(sc->s + value_off, value_end - value_off, &k, u))
					return 0;
				i = value_off + k;
			}
		}
		if (scan->attr_count >= XML_SCAN_MAX_ATTRS) {
			*err = XDMS_ERR_TOOBIG;
			return 0;
		}
		if (scan->attr_count == sc->attr_cap) {
			sc->attr_cap = sc->attr_cap ? sc->attr_cap * 2 : 64;
			scan->attrs = xrealloc(scan->attrs, sizeof(*scan->attrs) * sc->attr_cap);
			e = &scan->elems[idx];
		}
		a = &scan->attrs[scan->attr_count++];
		memset(a, 0, sizeof(*a));
		a->name_off = p - an_len;
		a->name_len = an_len;
		a->prefix_len = ap_len;
		a->value_off = value_off;
		a->value_len = value_end - value_off;
		a->end = value_end + 1;
		a->quote = quote;
		e->attr_count++;
		p = value_end + 1;
		e->attrs_end = p;
		{
			const char *an = sc->s + a->name_off;
			bool is_default = !ap_len && an_len == 5 && memcmp(an, "xmlns", 5) == 0;
			bool is_prefixed = ap_len == 5 && memcmp(an, "xmlns", 5) == 0;

			if (is_default || is_prefixed) {
				struct buf v;
				enum xdms_err derr;

				buf_init(&v, a->value_len * 4 + 1);
				derr = xml_attvalue_decode(sc->s + a->value_off, a->value_len, &v);
				if (derr) {
					buf_cleanup(&v);
					return 0;
				}
				a->is_xmlns = true;
				a->ns = keep_string(scan, buf_take(&v, NULL));
				if (is_default)
					scope_push(sc, a->name_off, 0, a->ns);
				else if (!(an_len - ap_len - 1 == 3 && memcmp(an + ap_len + 1, "xml", 3) == 0))
					/* The xml prefix is bound by definition (Namespaces §3);
					 * a declaration of it changes nothing. An empty URI for
					 * a prefix undeclares it (Namespaces 1.1 §6.1). */
					scope_push(sc, a->name_off + ap_len + 1, an_len - ap_len - 1,
						   a->ns[0] ? a->ns : NULL);
			}
		}
	}
	e->start_end = p;
	if (e->is_empty) {
		e->end_start = p;
		e->end = p;
	}
	/* Declarations are in scope for the element's own name and attributes. */
	e->ns = scope_lookup(sc, sc->s + name_off, prefix_len);
	if (prefix_len == 5 && memcmp(sc->s + name_off, "xmlns", 5) == 0)
		e->ns = NULL;
	for (uint32_t k = 0; k < e->attr_count; k++) {
		struct xml_scan_attr *a = &scan->attrs[e->attr_first + k];

		if (a->is_xmlns)
			continue;
		a->ns = a->prefix_len ? scope_lookup(sc, sc->s + a->name_off, a->prefix_len) : "";
	}
	/* Link it into the tree. */
	if (sc->depth) {
		struct frame *f = &sc->stack[sc->depth - 1];

		if (f->last_child == XML_SCAN_NONE)
			scan->elems[f->elem].first_child = idx;
		else
			scan->elems[f->last_child].next_sibling = idx;
		f->last_child = idx;
	}
	if (e->is_empty) {
		scope_pop(sc, binding_base);
	} else {
		sc->stack[sc->depth].elem = idx;
		sc->stack[sc->depth].binding_base = binding_base;
		sc->stack[sc->depth].last_child = XML_SCAN_NONE;
		sc->depth++;
	}
	*err = XDMS_ERR_OK;
	return p;
}

/* Parses the end tag at sc->s[pos] == '<', '/'. Returns the offset after it, or 0. */
static size_t scan_end_tag(struct scanner *sc, size_t pos)
{
	struct frame *f;
	struct xml_scan_elem *e;
	uint32_t name_len, prefix_len;
	size_t p = pos + 2;

	if (!sc->depth)
		return 0;
	f = &sc->stack[sc->depth - 1];
	e = &sc->scan->elems[f->elem];
	if (sc->is_trusted) {
		/* The name must be the open element's: compare, then make sure it
		 * ends there (what read_qname would find in a well-formed end tag). */
		if (sc->len - p <= e->name_len || memcmp(sc->s + p, sc->s + e->name_off, e->name_len) != 0)
			return 0;
		p += e->name_len;
		if (is_name_char((unsigned char)sc->s[p]) || sc->s[p] == ':')
			return 0;
	} else {
		if (!read_qname(sc, &p, &name_len, &prefix_len))
			return 0;
		if (name_len != e->name_len || memcmp(sc->s + pos + 2, sc->s + e->name_off, name_len) != 0)
			return 0;
	}
	p = skip_space(sc, p);
	if (p >= sc->len || sc->s[p] != '>')
		return 0;
	e->end_start = pos;
	e->end = p + 1;
	scope_pop(sc, f->binding_base);
	sc->depth--;
	return p + 1;
}

/* Skips a comment, PI or CDATA section at sc->s[pos] == '<'. Returns the
 * offset after it, 0 when malformed, 1 when it is none of those. */
static size_t scan_other(struct scanner *sc, size_t pos, bool is_prolog_start)
{
	const char *s = sc->s, *e;
	size_t len = sc->len, rest = len - pos;

	if (rest >= 4 && memcmp(s + pos, "<!--", 4) == 0) {
		/* XML 1.0 §2.5: "--" must not occur inside a comment. */
		e = find_bytes(s, pos + 4, len, "--", 2);
		if (!e || (size_t)(e - s) + 2 >= len || e[2] != '>')
			return 0;
		return (size_t)(e - s) + 3;
	}
	if (rest >= 9 && memcmp(s + pos, "<![CDATA[", 9) == 0) {
		if (!sc->depth)
			return 0;
		e = find_bytes(s, pos + 9, len, "]]>", 3);
		if (!e)
			return 0;
		return (size_t)(e - s) + 3;
	}
	if (rest >= 2 && s[pos + 1] == '?') {
		size_t p = pos + 2;
		uint32_t nl, pl;

		if (!read_qname(sc, &p, &nl, &pl))
			return 0;
		/* The target "xml" (any case) is reserved for the declaration at the
		 * very start (XML 1.0 §2.6, §2.8). */
		if (nl == 3 && (s[pos + 2] | 0x20) == 'x' && (s[pos + 3] | 0x20) == 'm' &&
		    (s[pos + 4] | 0x20) == 'l' && !is_prolog_start)
			return 0;
		if (p < len && !is_space((unsigned char)s[p]) && s[p] != '?')
			return 0;
		e = find_bytes(s, p, len, "?>", 2);
		if (!e)
			return 0;
		return (size_t)(e - s) + 2;
	}
	if (rest >= 2 && s[pos + 1] == '!')
		return 0; /* DOCTYPE and anything else: not accepted */
	return 1;
}

static enum xdms_err scan_build(const char *data, size_t len, bool is_trusted, struct xml_scan **out)
{
	struct scanner *sc = xcalloc(1, sizeof(*sc));
	struct xml_scan *scan = xcalloc(1, sizeof(*scan));
	enum xdms_err err = XDMS_ERR_PARSE;
	bool has_root = false;
	size_t pos = 0, first = 0;

	*out = NULL;
	scan->data = data;
	scan->len = len;
	sc->s = data;
	sc->len = len;
	sc->scan = scan;
	sc->is_trusted = is_trusted;
	sc->default_top = XML_SCAN_NONE;
	if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0)
		pos = first = 3;
	/* Documents have about one element per 32 bytes and fewer attributes:
	 * sized so, the arrays rarely grow (each growth copies them), and what
	 * stays unused is given back at the end. */
	sc->elem_cap = len / 32 < XML_SCAN_MAX_ELEMENTS ? len / 32 + 16 : XML_SCAN_MAX_ELEMENTS;
	sc->attr_cap = len / 64 < XML_SCAN_MAX_ATTRS ? len / 64 + 16 : XML_SCAN_MAX_ATTRS;
	scan->elems = xmalloc(sizeof(*scan->elems) * sc->elem_cap);
	scan->attrs = xmalloc(sizeof(*scan->attrs) * sc->attr_cap);
	while (pos < len) {
		unsigned char c = (unsigned char)data[pos];

		if (c == '<') {
			size_t next;

			if (pos + 1 >= len)
				goto out;
			if (data[pos + 1] == '/') {
				next = scan_end_tag(sc, pos);
				if (!next)
					goto out;
			} else {
				/* A start tag, the common case, is none of what
				 * scan_other skips. */
				next = is_name_start((unsigned char)data[pos + 1]) ? 1 : scan_other(sc, pos, pos == first);
				if (!next)
					goto out;
				if (next == 1) {
					/* A start tag: only one element at the top level. */
					if (!sc->depth && has_root)
						goto out;
					next = scan_start_tag(sc, pos, &err);
					if (!next)
						goto out;
					err = XDMS_ERR_PARSE;
					has_root = true;
				}
			}
			pos = next;
			continue;
		}
		{
			const char *lt = memchr(data + pos, '<', len - pos);
			size_t stop = lt ? (size_t)(lt - data) : len;

			if (sc->is_trusted) {
				/* Checked when it was stored. */
			} else if (!sc->depth) {
				/* Only white space outside the root element (XML 1.0 §2.8). */
				for (size_t i = pos; i < stop; i++)
					if (!is_space((unsigned char)data[i]))
						goto out;
			} else if (!check_text(data + pos, stop - pos)) {
				goto out;
			}
			pos = stop;
		}
	}
	if (!has_root || sc->depth)
		goto out;
	if (scan->elem_count < sc->elem_cap)
		scan->elems = xrealloc(scan->elems, sizeof(*scan->elems) * (scan->elem_count ? scan->elem_count : 1));
	if (scan->attr_count < sc->attr_cap)
		scan->attrs = xrealloc(scan->attrs, sizeof(*scan->attrs) * (scan->attr_count ? scan->attr_count : 1));
	err = XDMS_ERR_OK;
	*out = scan;
	scan = NULL;
out:
	free(sc->bindings);
	free(sc->slots);
	free(sc);
	xml_scan_free(scan);
	return err;
}

enum xdms_err xml_scan_build(const char *data, size_t len, struct xml_scan **out)
{
	return scan_build(data, len, false, out);
}

enum xdms_err xml_scan_build_stored(const char *data, size_t len, struct xml_scan **out)
{
	return scan_build(data, len, true, out);
}

void xml_scan_free(struct xml_scan *scan)
{
	if (!scan)
		return;
	for (size_t i = 0; i < scan->string_count; i++)
		free(scan->strings[i]);
	free(scan->strings);
	free(scan->elems);
	free(scan->attrs);
	free(scan);
}

const char *xml_scan_elem_local(const struct xml_scan *scan, uint32_t e, size_t *len)
{
	const struct xml_scan_elem *el = &scan->elems[e];
	size_t skip = el->prefix_len ? el->prefix_len + 1 : 0;

	*len = el->name_len - skip;
	return scan->data + el->name_off + skip;
}

uint32_t xml_scan_attr_find(const struct xml_scan *scan, uint32_t e, const char *ns, const char *local,
			    size_t local_len)
{
	const struct xml_scan_elem *el = &scan->elems[e];

	for (uint32_t k = 0; k < el->attr_count; k++) {
		const struct xml_scan_attr *a = &scan->attrs[el->attr_first + k];
		size_t skip = a->prefix_len ? a->prefix_len + 1 : 0;

		if (a->is_xmlns || !a->ns || a->name_len - skip != local_len)
			continue;
		if (memcmp(scan->data + a->name_off + skip, local, local_len) == 0 && strcmp(a->ns, ns) == 0)
			return el->attr_first + k;
	}
	return XML_SCAN_NONE;
}

/* The declaration of @prefix on element @e itself, or NULL when it declares none. */
static const struct xml_scan_attr *own_declaration(const struct xml_scan *scan, uint32_t e,
						   const char *prefix, size_t prefix_len)
{
	const struct xml_scan_elem *el = &scan->elems[e];
	const struct xml_scan_attr *found = NULL;

	for (uint32_t k = 0; k < el->attr_count; k++) {
		const struct xml_scan_attr *a = &scan->attrs[el->attr_first + k];

		if (!a->is_xmlns)
			continue;
		if (prefix_len == 0 ? a->prefix_len == 0
				    : (a->prefix_len == 5 && a->name_len == 6 + prefix_len &&
				       memcmp(scan->data + a->name_off + 6, prefix, prefix_len) == 0))
			found = a; /* the last one wins, as in the scan */
	}
	return found;
}

const char *xml_scan_prefix_ns(const struct xml_scan *scan, uint32_t e, const char *prefix,
			       size_t prefix_len)
{
	if (prefix_len == 3 && memcmp(prefix, "xml", 3) == 0)
		return xml_ns_xml;
	for (; e != XML_SCAN_NONE; e = scan->elems[e].parent) {
		const struct xml_scan_attr *a = own_declaration(scan, e, prefix, prefix_len);

		if (a)
			return a->ns[0] || !prefix_len ? a->ns : NULL;
	}
	return prefix_len ? NULL : "";
}

bool xml_scan_ns_prefix(const struct xml_scan *scan, uint32_t e, const char *ns, const char *preferred,
			const char **prefix, size_t *prefix_len)
{
	if (strcmp(ns, xml_ns_xml) == 0) {
		*prefix = "xml";
		*prefix_len = 3;
		return true;
	}
	if (!ns[0])
		return false;
	if (preferred && preferred[0]) {
		const char *bound = xml_scan_prefix_ns(scan, e, preferred, strlen(preferred));

		if (bound && strcmp(bound, ns) == 0) {
			*prefix = preferred;
			*prefix_len = strlen(preferred);
			return true;
		}
	}
	/* Any other declaration of @ns in scope whose prefix is not hidden by an
	 * inner declaration of the same prefix. */
	for (uint32_t cur = e; cur != XML_SCAN_NONE; cur = scan->elems[cur].parent) {
		const struct xml_scan_elem *el = &scan->elems[cur];

		for (uint32_t k = 0; k < el->attr_count; k++) {
			const struct xml_scan_attr *a = &scan->attrs[el->attr_first + k];
			const char *p = scan->data + a->name_off + 6;
			size_t plen = a->name_len > 6 ? a->name_len - 6 : 0;
			const char *bound;

			if (!a->is_xmlns || a->prefix_len != 5 || strcmp(a->ns, ns) != 0)
				continue;
			bound = xml_scan_prefix_ns(scan, e, p, plen);
			if (bound && strcmp(bound, ns) == 0) {
				*prefix = p;
				*prefix_len = plen;
				return true;
			}
		}
	}
	return false;
}

/* ---- splicing a scan --------------------------------------------------------------- */

/* A string of one scan and its copy in another, sorted by the original pointer. */
struct string_map {
	const char *from;
	char *to;
};

static int string_map_cmp(const void *a, const void *b)
{
	const struct string_map *x = a, *y = b;

	return x->from < y->from ? -1 : x->from > y->from;
}

/* Copies every owned string of @src into @dst and records the pairs in @map
 * (string_count entries, sorted). */
static void strings_copy(struct xml_scan *dst, const struct xml_scan *src, struct string_map *map)
{
	for (size_t i = 0; i < src->string_count; i++) {
		map[i].from = src->strings[i];
		map[i].to = keep_string(dst, xstrdup(src->strings[i]));
	}
	qsort(map, src->string_count, sizeof(*map), string_map_cmp);
}

/* The copy of @s in @map, or @s itself when it is not an owned string (NULL,
 * a literal "", the static xml namespace). @last remembers the previous
 * lookup: neighbouring elements mostly share their namespace string. */
static const char *string_remap(const struct string_map *map, size_t n, const char *s, struct string_map *last)
{
	struct string_map key = { s, NULL }, *hit;

	if (!s || !n)
		return s;
	if (last->from == s)
		return last->to;
	hit = bsearch(&key, map, n, sizeof(*map), string_map_cmp);
	last->from = s;
	last->to = hit ? hit->to : (char *)s;
	return last->to;
}

/* The number of elements in the subtree of @e (itself included): in document
 * order a subtree is contiguous and ends where an element starts past its end. */
static uint32_t subtree_count(const struct xml_scan *scan, uint32_t e)
{
	uint32_t k = e + 1;

	while (k < scan->elem_count && scan->elems[k].start < scan->elems[e].end)
		k++;
	return k - e;
}

static size_t shift_off(size_t off, size_t to, size_t from_shift, bool is_grow)
{
	if (off < to)
		return off;
	return is_grow ? off + from_shift : off - from_shift;
}

enum xdms_err xml_scan_splice(const struct xml_scan *old, uint32_t old_elem, const struct xml_scan *part,
			      uint32_t part_elem, const char *data, size_t len, struct xml_scan **out)
{
	const struct xml_scan_elem *oe = &old->elems[old_elem], *pe = &part->elems[part_elem];
	size_t from = oe->start, to = oe->end, part_len = pe->end - pe->start;
	uint32_t old_n = subtree_count(old, old_elem), part_n = subtree_count(part, part_elem);
	uint32_t old_attr_first = oe->attr_first, old_attr_end, part_attr_first = pe->attr_first, part_attr_end;
	uint32_t elem_count, attr_count, old_after = old_elem + old_n;
	struct string_map *old_map = NULL, *part_map = NULL, old_last = { NULL, NULL }, part_last = { NULL, NULL };
	struct xml_scan *scan = NULL;
	bool is_grow = part_len >= to - from;
	size_t byte_shift = is_grow ? part_len - (to - from) : (to - from) - part_len;
	int64_t elem_shift = (int64_t)part_n - (int64_t)old_n, attr_shift;

	*out = NULL;
	if (len != old->len - (to - from) + part_len)
		return XDMS_ERR_INVAL;
	old_attr_end = old_after < old->elem_count ? old->elems[old_after].attr_first : old->attr_count;
	{
		const struct xml_scan_elem *last = &part->elems[part_elem + part_n - 1];

		part_attr_end = last->attr_first + last->attr_count;
	}
	attr_shift = (int64_t)(part_attr_end - part_attr_first) - (int64_t)(old_attr_end - old_attr_first);
	if ((int64_t)old->elem_count + elem_shift > XML_SCAN_MAX_ELEMENTS ||
	    (int64_t)old->attr_count + attr_shift > XML_SCAN_MAX_ATTRS)
		return XDMS_ERR_TOOBIG;
	for (uint32_t k = part_elem; k < part_elem + part_n; k++)
		if (part->elems[k].depth - pe->depth + oe->depth >= XML_SCAN_MAX_DEPTH)
			return XDMS_ERR_TOOBIG;
	elem_count = (uint32_t)((int64_t)old->elem_count + elem_shift);
	attr_count = (uint32_t)((int64_t)old->attr_count + attr_shift);

	scan = xcalloc(1, sizeof(*scan));
	scan->data = data;
	scan->len = len;
	scan->elem_count = elem_count;
	scan->attr_count = attr_count;
	scan->elems = xmalloc(sizeof(*scan->elems) * (elem_count ? elem_count : 1));
	scan->attrs = xmalloc(sizeof(*scan->attrs) * (attr_count ? attr_count : 1));
	old_map = xmalloc(sizeof(*old_map) * (old->string_count + 1));
	part_map = xmalloc(sizeof(*part_map) * (part->string_count + 1));
	strings_copy(scan, old, old_map);
	strings_copy(scan, part, part_map);

	/* Elements: those before the replaced subtree, the new subtree, those after. */
	for (uint32_t i = 0; i < elem_count; i++) {
		struct xml_scan_elem *e = &scan->elems[i];
		bool is_part = i >= old_elem && i < old_elem + part_n;
		uint32_t *links[3] = { &e->parent, &e->first_child, &e->next_sibling };

		if (is_part) {
			uint32_t src = part_elem + (i - old_elem);
			size_t base = pe->start;

			*e = part->elems[src];
			e->start = e->start - base + from;
			e->start_end = e->start_end - base + from;
			e->end_start = e->end_start - base + from;
			e->end = e->end - base + from;
			e->attrs_end = e->attrs_end - base + from;
			e->name_off = e->name_off - base + from;
			e->depth = e->depth - pe->depth + oe->depth;
			e->attr_first = e->attr_first - part_attr_first + old_attr_first;
			e->ns = string_remap(part_map, part->string_count, e->ns, &part_last);
			for (int l = 0; l < 3; l++)
				if (*links[l] != XML_SCAN_NONE)
					*links[l] = *links[l] - part_elem + old_elem;
			if (i == old_elem) {
				/* The subtree's root takes the place of the old one. */
				e->parent = oe->parent;
				e->next_sibling = oe->next_sibling;
				if (e->next_sibling != XML_SCAN_NONE)
					e->next_sibling = (uint32_t)((int64_t)e->next_sibling + elem_shift);
			}
			continue;
		}
		*e = old->elems[i < old_elem ? i : (uint32_t)((int64_t)i - elem_shift)];
		e->start = shift_off(e->start, to, byte_shift, is_grow);
		e->start_end = shift_off(e->start_end, to, byte_shift, is_grow);
		e->end_start = shift_off(e->end_start, to, byte_shift, is_grow);
		e->end = shift_off(e->end, to, byte_shift, is_grow);
		e->attrs_end = shift_off(e->attrs_end, to, byte_shift, is_grow);
		e->name_off = shift_off(e->name_off, to, byte_shift, is_grow);
		if (i >= old_elem)
			e->attr_first = (uint32_t)((int64_t)e->attr_first + attr_shift);
		e->ns = string_remap(old_map, old->string_count, e->ns, &old_last);
		/* Links to the replaced subtree's root stay (the new root has its
		 * index); links past the subtree move with it. Nothing outside the
		 * subtree links into it below its root. */
		for (int l = 0; l < 3; l++)
			if (*links[l] != XML_SCAN_NONE && *links[l] >= old_after)
				*links[l] = (uint32_t)((int64_t)*links[l] + elem_shift);
	}

	/* Attributes, in the same three parts. */
	for (uint32_t i = 0; i < attr_count; i++) {
		struct xml_scan_attr *a = &scan->attrs[i];
		uint32_t part_attrs = part_attr_end - part_attr_first;

		if (i >= old_attr_first && i < old_attr_first + part_attrs) {
			size_t base = pe->start;

			*a = part->attrs[part_attr_first + (i - old_attr_first)];
			a->name_off = a->name_off - base + from;
			a->value_off = a->value_off - base + from;
			a->end = a->end - base + from;
			a->ns = string_remap(part_map, part->string_count, a->ns, &part_last);
			continue;
		}
		*a = old->attrs[i < old_attr_first ? i : (uint32_t)((int64_t)i - attr_shift)];
		a->name_off = shift_off(a->name_off, to, byte_shift, is_grow);
		a->value_off = shift_off(a->value_off, to, byte_shift, is_grow);
		a->end = shift_off(a->end, to, byte_shift, is_grow);
		a->ns = string_remap(old_map, old->string_count, a->ns, &old_last);
	}
	free(old_map);
	free(part_map);
	*out = scan;
	return XDMS_ERR_OK;
}

bool xml_scan_same(const struct xml_scan *a, const struct xml_scan *b)
{
	if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0 || a->elem_count != b->elem_count ||
	    a->attr_count != b->attr_count)
		return false;
	for (uint32_t i = 0; i < a->elem_count; i++) {
		const struct xml_scan_elem *x = &a->elems[i], *y = &b->elems[i];

		if (x->start != y->start || x->start_end != y->start_end || x->end_start != y->end_start ||
		    x->end != y->end || x->attrs_end != y->attrs_end || x->name_off != y->name_off ||
		    x->name_len != y->name_len || x->prefix_len != y->prefix_len || x->parent != y->parent ||
		    x->first_child != y->first_child || x->next_sibling != y->next_sibling ||
		    x->depth != y->depth || x->attr_first != y->attr_first || x->attr_count != y->attr_count ||
		    x->is_empty != y->is_empty || !x->ns != !y->ns || (x->ns && strcmp(x->ns, y->ns) != 0))
			return false;
	}
	for (uint32_t i = 0; i < a->attr_count; i++) {
		const struct xml_scan_attr *x = &a->attrs[i], *y = &b->attrs[i];

		if (x->name_off != y->name_off || x->name_len != y->name_len || x->prefix_len != y->prefix_len ||
		    x->value_off != y->value_off || x->value_len != y->value_len || x->end != y->end ||
		    x->quote != y->quote || x->is_xmlns != y->is_xmlns || !x->ns != !y->ns ||
		    (x->ns && strcmp(x->ns, y->ns) != 0))
			return false;
	}
	return true;
}
