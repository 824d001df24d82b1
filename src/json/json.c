/* SPDX-License-Identifier: MIT */
/*
 * JSON and its XPath 3.1 XML representation (see json.h for the contract).
 *
 * Design. jansson parses and validates; this file adds what jansson does
 * not do: caps on depth, members and string length checked before anything
 * is converted, and the exact text of every number. A first pass over the
 * raw text (scan_text) measures the nesting and records each number token
 * in order; jansson keeps object members in document order and duplicate
 * keys are refused, so a depth-first walk of its tree meets the numbers in
 * the same order as the scan, and each number is written with its token.
 * jansson's own value for a number is never used for output (it is a double
 * with JSON_DECODE_INT_AS_REAL, rounded past 2^53).
 *
 * XML to JSON walks the parsed tree through src/xml's node API (the XML is
 * parsed there with the safe options) and writes the JSON text itself:
 * numbers again go out as written, after a check against the JSON grammar.
 *
 * Invariants: every append goes through a bounded struct buf; every size
 * taken from input is compared with struct json_limits first.
 * Threads: any; nothing shared.
 */
#include "config.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "json/json.h"
#include "xml/xml.h"

#define DEFAULT_DEPTH 64
#define DEFAULT_SIZE (16u * 1024u * 1024u)
#define DEFAULT_MEMBERS 100000u
#define DEFAULT_STRING (1024u * 1024u)

void json_limits_init(struct json_limits *lim)
{
	lim->max_depth = DEFAULT_DEPTH;
	lim->max_size = DEFAULT_SIZE;
	lim->max_members = DEFAULT_MEMBERS;
	lim->max_string = DEFAULT_STRING;
}

struct number_token {
	size_t at;
	size_t len;
};

struct json_doc {
	json_t *root;
	char *text; /* a copy of the input: number tokens point into it */
	struct number_token *numbers;
	size_t number_count;
};

void json_doc_free(struct json_doc *d)
{
	if (!d)
		return;
	json_decref(d->root);
	free(d->text);
	free(d->numbers);
	free(d);
}

static bool is_number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/*
 * The first pass: nesting depth and number tokens, outside strings. Safe on
 * any bytes (jansson judges the syntax afterwards); a string is skipped to
 * its closing quote, honouring backslashes.
 */
static enum xdms_err scan_text(struct json_doc *d, size_t len, const struct json_limits *lim, char **why)
{
	const char *t = d->text;
	size_t cap = 0, depth = 0;

	for (size_t i = 0; i < len; i++) {
		char c = t[i];

		if (c == '"') {
			for (i++; i < len && t[i] != '"'; i++)
				if (t[i] == '\\')
					i++;
		} else if (c == '[' || c == '{') {
			if (++depth > lim->max_depth) {
				*why = xasprintf("the JSON is nested deeper than %u levels", lim->max_depth);
				return XDMS_ERR_TOOBIG;
			}
		} else if (c == ']' || c == '}') {
			if (depth)
				depth--;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			size_t start = i;

			while (i + 1 < len && is_number_char(t[i + 1]))
				i++;
			if (i + 1 - start > lim->max_string) {
				*why = xasprintf("a JSON number is longer than %zu characters", lim->max_string);
				return XDMS_ERR_TOOBIG;
			}
			if (d->number_count == cap) {
				cap = cap ? cap * 2 : 16;
				d->numbers = xrealloc(d->numbers, cap * sizeof(*d->numbers));
			}
			d->numbers[d->number_count].at = start;
			d->numbers[d->number_count].len = i + 1 - start;
			d->number_count++;
		}
	}
	return XDMS_ERR_OK;
}

/* Caps jansson does not know: members per container and string lengths. */
static enum xdms_err check_caps(const json_t *j, const struct json_limits *lim, char **why)
{
	const char *key;
	json_t *v;
	size_t i;
	enum xdms_err err = XDMS_ERR_OK;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (json_object_size(j) > lim->max_members) {
			*why = xasprintf("a JSON object has more than %zu members", lim->max_members);
			return XDMS_ERR_TOOBIG;
		}
		json_object_foreach ((json_t *)j, key, v) {
			if (strlen(key) > lim->max_string) {
				*why = xasprintf("a JSON key is longer than %zu bytes", lim->max_string);
				return XDMS_ERR_TOOBIG;
			}
			if ((err = check_caps(v, lim, why)) != XDMS_ERR_OK)
				return err;
		}
		break;
	case JSON_ARRAY:
		if (json_array_size(j) > lim->max_members) {
			*why = xasprintf("a JSON array has more than %zu members", lim->max_members);
			return XDMS_ERR_TOOBIG;
		}
		json_array_foreach (j, i, v)
			if ((err = check_caps(v, lim, why)) != XDMS_ERR_OK)
				return err;
		break;
	case JSON_STRING:
		if (json_string_length(j) > lim->max_string) {
			*why = xasprintf("a JSON string is longer than %zu bytes", lim->max_string);
			return XDMS_ERR_TOOBIG;
		}
		break;
	default:
		break;
	}
	return err;
}

enum xdms_err json_doc_parse(const char *data, size_t len, const struct json_limits *lim, struct json_doc **out,
			     char **why)
{
	struct json_doc *d;
	json_error_t jerr;
	enum xdms_err err;

	*out = NULL;
	*why = NULL;
	if (len > lim->max_size) {
		*why = xasprintf("the JSON text is larger than %zu bytes", lim->max_size);
		return XDMS_ERR_TOOBIG;
	}
	d = xcalloc(1, sizeof(*d));
	d->text = xmalloc(len + 1);
	memcpy(d->text, data, len);
	d->text[len] = '\0';
	err = scan_text(d, len, lim, why);
	if (err)
		goto fail;
	/* Integers past long long become doubles instead of an error: their
	 * value is never used, their text is (see the opening comment). */
	d->root = json_loadb(d->text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &jerr);
	if (!d->root) {
		*why = xasprintf("the JSON is not valid at line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
		err = XDMS_ERR_PARSE;
		goto fail;
	}
	err = check_caps(d->root, lim, why);
	if (err)
		goto fail;
	*out = d;
	return XDMS_ERR_OK;
fail:
	json_doc_free(d);
	return err;
}

/* ---- JSON to XML ------------------------------------------------------------------- */

/* True when the character at @p (@n bytes left) may not appear in XML 1.0. */
static bool xml_forbidden(const unsigned char *p, size_t n)
{
	if (*p < 0x20)
		return *p != '\t' && *p != '\n' && *p != '\r';
	/* U+FFFE and U+FFFF: EF BF BE, EF BF BF. */
	return n >= 3 && p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF);
}

static bool needs_escaping(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (xml_forbidden((const unsigned char *)s + i, len - i))
			return true;
	return false;
}

/* Appends @s as XML text (or an attribute value with @is_attr), with
 * character references for what XML would normalise away. */
static enum xdms_err put_xml_text(struct buf *out, const char *s, size_t len, bool is_attr)
{
	enum xdms_err err = XDMS_ERR_OK;
	size_t run = 0;

	for (size_t i = 0; i < len && !err; i++) {
		const char *rep = NULL;

		switch (s[i]) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = is_attr ? "&quot;" : NULL;
			break;
		case '\r':
			rep = "&#13;";
			break;
		case '\n':
			rep = is_attr ? "&#10;" : NULL;
			break;
		case '\t':
			rep = is_attr ? "&#9;" : NULL;
			break;
		default:
			break;
		}
		if (!rep)
			continue;
		err = buf_append(out, s + run, i - run);
		if (!err)
			err = buf_append_str(out, rep);
		run = i + 1;
	}
	if (!err)
		err = buf_append(out, s + run, len - run);
	return err;
}

/* The escaped form (XPath 3.1 §17.5.1): JSON escapes for what XML cannot
 * carry, backslashes doubled, then XML escaping. */
static enum xdms_err put_escaped(struct buf *out, const char *s, size_t len, bool is_attr)
{
	struct buf tmp;
	enum xdms_err err = XDMS_ERR_OK;

	buf_init(&tmp, len * 6 + 1);
	for (size_t i = 0; i < len && !err; i++) {
		const unsigned char *p = (const unsigned char *)s + i;

		if (*p == '\\') {
			err = buf_append_str(&tmp, "\\\\");
		} else if (xml_forbidden(p, len - i)) {
			if (*p < 0x20) {
				err = buf_printf(&tmp, "\\u%04X", *p);
			} else {
				err = buf_printf(&tmp, "\\u%s", p[2] == 0xBE ? "FFFE" : "FFFF");
				i += 2;
			}
		} else {
			err = buf_append(&tmp, p, 1);
		}
	}
	if (!err)
		err = put_xml_text(out, tmp.data ? tmp.data : "", tmp.len, is_attr);
	buf_cleanup(&tmp);
	return err;
}

struct walk {
	const struct json_doc *d;
	size_t next_number;
	struct buf *out;
};

static enum xdms_err open_tag(struct walk *w, const char *name, const char *key, bool is_root, bool is_escaped_value)
{
	enum xdms_err err = buf_printf(w->out, "<%s", name);

	if (!err && is_root)
		err = buf_append_str(w->out, " xmlns=\"" JSON_XML_NS "\"");
	if (!err && key) {
		size_t kl = strlen(key);
		bool esc = needs_escaping(key, kl);

		err = buf_append_str(w->out, esc ? " escaped-key=\"true\" key=\"" : " key=\"");
		if (!err)
			err = esc ? put_escaped(w->out, key, kl, true) : put_xml_text(w->out, key, kl, true);
		if (!err)
			err = buf_append_str(w->out, "\"");
	}
	if (!err && is_escaped_value)
		err = buf_append_str(w->out, " escaped=\"true\"");
	return err;
}

static enum xdms_err put_value(struct walk *w, const json_t *j, const char *key, bool is_root)
{
	enum xdms_err err;
	const char *k;
	json_t *v;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
	case JSON_ARRAY: {
		const char *name = json_is_object(j) ? "map" : "array";
		bool is_empty = json_is_object(j) ? json_object_size(j) == 0 : json_array_size(j) == 0;

		err = open_tag(w, name, key, is_root, false);
		if (!err)
			err = buf_append_str(w->out, is_empty ? "/>" : ">");
		if (err || is_empty)
			return err;
		if (json_is_object(j)) {
			json_object_foreach ((json_t *)j, k, v)
				if ((err = put_value(w, v, k, false)) != XDMS_ERR_OK)
					return err;
		} else {
			json_array_foreach (j, i, v)
				if ((err = put_value(w, v, NULL, false)) != XDMS_ERR_OK)
					return err;
		}
		return buf_printf(w->out, "</%s>", name);
	}
	case JSON_STRING: {
		const char *s = json_string_value(j);
		size_t n = json_string_length(j);
		bool esc = needs_escaping(s, n);

		err = open_tag(w, "string", key, is_root, esc);
		if (!err)
			err = buf_append_str(w->out, ">");
		if (!err)
			err = esc ? put_escaped(w->out, s, n, false) : put_xml_text(w->out, s, n, false);
		if (!err)
			err = buf_append_str(w->out, "</string>");
		return err;
	}
	case JSON_INTEGER:
	case JSON_REAL: {
		const struct number_token *t;

		/* The scan and jansson disagree only on a bug here. */
		if (w->next_number >= w->d->number_count)
			return XDMS_ERR_INVAL;
		t = &w->d->numbers[w->next_number++];
		err = open_tag(w, "number", key, is_root, false);
		if (!err)
			err = buf_printf(w->out, ">%.*s</number>", (int)t->len, w->d->text + t->at);
		return err;
	}
	case JSON_TRUE:
	case JSON_FALSE:
		err = open_tag(w, "boolean", key, is_root, false);
		if (!err)
			err = buf_append_str(w->out, json_is_true(j) ? ">true</boolean>" : ">false</boolean>");
		return err;
	case JSON_NULL:
	default:
		err = open_tag(w, "null", key, is_root, false);
		if (!err)
			err = buf_append_str(w->out, "/>");
		return err;
	}
}

enum xdms_err json_doc_to_xml(const struct json_doc *d, const char *key, struct buf *out)
{
	struct walk w = { d, 0, out };

	return put_value(&w, d->root, key, true);
}

enum xdms_err json_to_xml(const char *data, size_t len, const struct json_limits *lim, struct buf *out,
			  char **why)
{
	struct json_doc *d = NULL;
	enum xdms_err err = json_doc_parse(data, len, lim, &d, why);

	if (err)
		return err;
	err = json_doc_to_xml(d, NULL, out);
	if (err == XDMS_ERR_TOOBIG)
		*why = xasprintf("the XML form of the JSON is larger than %zu bytes", out->max_len);
	else if (err)
		*why = xstrdup("the JSON could not be converted");
	json_doc_free(d);
	return err;
}

/* ---- lookups ------------------------------------------------------------------------ */

/* The value at RFC 6901 pointer @p, or NULL. */
static json_t *pointer_get(json_t *j, const char *p)
{
	char token[1024];

	if (!p)
		return NULL;
	while (j && *p) {
		size_t n = 0;

		if (*p != '/')
			return NULL;
		p++;
		while (*p && *p != '/') {
			char c = *p++;

			/* RFC 6901 §4: ~1 is '/', ~0 is '~'. */
			if (c == '~' && (*p == '0' || *p == '1'))
				c = *p++ == '0' ? '~' : '/';
			if (n + 1 >= sizeof(token))
				return NULL;
			token[n++] = c;
		}
		token[n] = '\0';
		if (json_is_object(j)) {
			j = json_object_get(j, token);
		} else if (json_is_array(j)) {
			char *end;
			unsigned long idx = strtoul(token, &end, 10);

			j = n && !*end && (n == 1 || token[0] != '0') ? json_array_get(j, idx) : NULL;
		} else {
			j = NULL;
		}
	}
	return j;
}

const char *json_doc_string(const struct json_doc *d, const char *pointer)
{
	json_t *j = d ? pointer_get(d->root, pointer) : NULL;

	return json_is_string(j) ? json_string_value(j) : NULL;
}

bool json_doc_integer(const struct json_doc *d, const char *pointer, long long *out)
{
	json_t *j = d ? pointer_get(d->root, pointer) : NULL;
	double v;

	if (json_is_integer(j)) {
		*out = json_integer_value(j);
		return true;
	}
	if (!json_is_real(j))
		return false;
	v = json_real_value(j);
	if (v != floor(v) || fabs(v) > 9007199254740992.0)
		return false;
	*out = (long long)v;
	return true;
}

/* ---- XML to JSON ----------------------------------------------------------------------- */

enum xdms_err json_append_string(struct buf *out, const char *s, size_t len)
{
	enum xdms_err err = buf_append_str(out, "\"");
	size_t run = 0;

	for (size_t i = 0; i < len && !err; i++) {
		unsigned char c = (unsigned char)s[i];
		char rep[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		switch (c) {
		case '"':
			strcpy(rep, "\\\"");
			break;
		case '\\':
			strcpy(rep, "\\\\");
			break;
		case '\n':
			strcpy(rep, "\\n");
			break;
		case '\r':
			strcpy(rep, "\\r");
			break;
		case '\t':
			strcpy(rep, "\\t");
			break;
		default:
			snprintf(rep, sizeof(rep), "\\u%04x", c);
			break;
		}
		err = buf_append(out, s + run, i - run);
		if (!err)
			err = buf_append_str(out, rep);
		run = i + 1;
	}
	if (!err)
		err = buf_append(out, s + run, len - run);
	if (!err)
		err = buf_append_str(out, "\"");
	return err;
}

static int hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

static enum xdms_err put_utf8(struct buf *b, unsigned cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return buf_append(b, u, n);
}

/* Undoes the escaped form into @out: PARSE for a bad escape. */
static enum xdms_err unescape(const char *s, size_t len, struct buf *out)
{
	enum xdms_err err = XDMS_ERR_OK;

	for (size_t i = 0; i < len && !err; i++) {
		int cp, lo;

		if (s[i] != '\\') {
			err = buf_append(out, s + i, 1);
			continue;
		}
		if (++i >= len)
			return XDMS_ERR_PARSE;
		switch (s[i]) {
		case '"':
		case '\\':
		case '/':
			err = buf_append(out, s + i, 1);
			break;
		case 'b':
			err = buf_append(out, "\b", 1);
			break;
		case 'f':
			err = buf_append(out, "\f", 1);
			break;
		case 'n':
			err = buf_append(out, "\n", 1);
			break;
		case 'r':
			err = buf_append(out, "\r", 1);
			break;
		case 't':
			err = buf_append(out, "\t", 1);
			break;
		case 'u':
			if (i + 4 >= len || (cp = hex4(s + i + 1)) < 0)
				return XDMS_ERR_PARSE;
			i += 4;
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return XDMS_ERR_PARSE;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (i + 6 >= len || s[i + 1] != '\\' || s[i + 2] != 'u' ||
				    (lo = hex4(s + i + 3)) < 0xDC00 || lo > 0xDFFF)
					return XDMS_ERR_PARSE;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			}
			if (cp == 0) /* a NUL cannot travel in our strings */
				return XDMS_ERR_PARSE;
			err = put_utf8(out, (unsigned)cp);
			break;
		default:
			return XDMS_ERR_PARSE;
		}
	}
	return err;
}

/* True for "true" or "1" (xs:boolean), surrounding whitespace allowed. */
static bool attr_true(const struct xml_node *n, const char *name, bool *is_bad)
{
	char *v = xml_node_attr(n, name);
	size_t a, b;
	bool is_true = false;

	if (!v)
		return false;
	a = strspn(v, " \t\r\n");
	b = strlen(v);
	while (b > a && strchr(" \t\r\n", v[b - 1]))
		b--;
	if ((b - a == 4 && !strncmp(v + a, "true", 4)) || (b - a == 1 && v[a] == '1'))
		is_true = true;
	else if (!((b - a == 5 && !strncmp(v + a, "false", 5)) || (b - a == 1 && v[a] == '0')))
		*is_bad = true;
	free(v);
	return is_true;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (RFC 8259 §6). */
static bool json_number_ok(const char *s, size_t n)
{
	size_t i = 0, d;

	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else if (i < n && s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (i < n && s[i] == '.') {
		for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	return i == n;
}

struct to_json {
	const struct json_limits *lim;
	struct buf *out;
	char **why;
};

static const char *const value_names[] = { "map", "array", "string", "number", "boolean", "null" };

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static enum xdms_err fail(struct to_json *t, enum xdms_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Keeps the first reason: the innermost failure says the most. */
static enum xdms_err fail(struct to_json *t, enum xdms_err err, const char *fmt, ...)
{
	va_list ap;
	char line[512];

	if (*t->why)
		return err;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	*t->why = xstrdup(line);
	return err;
}

/* The key of map member @n, decoded, in *out (heap). */
static enum xdms_err member_key(struct to_json *t, const struct xml_node *n, char **out)
{
	bool is_bad = false, esc = attr_true(n, "escaped-key", &is_bad);
	char *k = xml_node_attr(n, "key");
	enum xdms_err err = XDMS_ERR_OK;
	struct buf b;

	*out = NULL;
	if (!k)
		return fail(t, XDMS_ERR_PARSE, "a member of a <map> has no key attribute (<%s>)", xml_node_name(n));
	if (is_bad)
		err = fail(t, XDMS_ERR_PARSE, "%s", "escaped-key is not a boolean");
	else if (strlen(k) > t->lim->max_string)
		err = fail(t, XDMS_ERR_TOOBIG, "%s", "a key is too long");
	if (err || !esc) {
		*out = err ? NULL : k;
		if (err)
			free(k);
		return err;
	}
	buf_init(&b, strlen(k) + 1);
	if (unescape(k, strlen(k), &b)) {
		buf_cleanup(&b);
		err = fail(t, XDMS_ERR_PARSE, "the escaped key '%.40s' has a bad escape", k);
	} else {
		*out = buf_take(&b, NULL);
	}
	free(k);
	return err;
}

static enum xdms_err put_json(struct to_json *t, const struct xml_node *n, unsigned depth);

static enum xdms_err put_children(struct to_json *t, const struct xml_node *n, bool is_map, unsigned depth)
{
	char **keys = NULL;
	size_t count = 0, cap = 0;
	enum xdms_err err = XDMS_ERR_OK;

	for (const struct xml_node *c = xml_node_child(n, NULL, NULL); c && !err; c = xml_node_next(c, NULL, NULL)) {
		if (count >= t->lim->max_members) {
			err = fail(t, XDMS_ERR_TOOBIG, "a <%s> has too many members", is_map ? "map" : "array");
			break;
		}
		if (count && (err = buf_append_str(t->out, ",")) != XDMS_ERR_OK)
			break;
		if (is_map) {
			char *k;

			if ((err = member_key(t, c, &k)) != XDMS_ERR_OK)
				break;
			if (count == cap) {
				cap = cap ? cap * 2 : 16;
				keys = xrealloc(keys, cap * sizeof(*keys));
			}
			keys[count] = k;
			err = json_append_string(t->out, k, strlen(k));
			if (!err)
				err = buf_append_str(t->out, ":");
		}
		count++;
		if (!err)
			err = put_json(t, c, depth + 1);
	}
	if (is_map && !err && count > 1) {
		qsort(keys, count, sizeof(*keys), cmp_keys);
		for (size_t i = 1; i < count && !err; i++)
			if (!strcmp(keys[i - 1], keys[i]))
				err = fail(t, XDMS_ERR_PARSE, "the key '%.40s' appears twice in one <map>", keys[i]);
	}
	if (is_map)
		for (size_t i = 0; i < count && keys; i++)
			free(keys[i]);
	free(keys);
	return err;
}

/* The text of a leaf element: no element children allowed. */
static char *leaf_text(struct to_json *t, const struct xml_node *n, enum xdms_err *err)
{
	char *s;

	if (xml_node_child(n, NULL, NULL)) {
		*err = fail(t, XDMS_ERR_PARSE, "a <%s> has an element inside", xml_node_name(n));
		return NULL;
	}
	s = xml_node_text(n);
	if (!s)
		s = xstrdup("");
	if (strlen(s) > t->lim->max_string) {
		free(s);
		*err = fail(t, XDMS_ERR_TOOBIG, "a <%s> is too long", xml_node_name(n));
		return NULL;
	}
	*err = XDMS_ERR_OK;
	return s;
}

static void trim_span(const char *s, size_t *a, size_t *b)
{
	*a = strspn(s, " \t\r\n");
	*b = strlen(s);
	while (*b > *a && strchr(" \t\r\n", s[*b - 1]))
		(*b)--;
}

static enum xdms_err put_json(struct to_json *t, const struct xml_node *n, unsigned depth)
{
	enum xdms_err err = XDMS_ERR_OK;
	size_t which, a, b;
	char *s;

	for (which = 0; which < sizeof(value_names) / sizeof(value_names[0]); which++)
		if (xml_node_is(n, JSON_XML_NS, value_names[which]))
			break;
	if (which == sizeof(value_names) / sizeof(value_names[0]))
		return fail(t, XDMS_ERR_PARSE, "<%s> is not an element of the JSON representation "
					       "(map, array, string, number, boolean, null in " JSON_XML_NS ")",
			    xml_node_name(n));
	if (depth > t->lim->max_depth)
		return fail(t, XDMS_ERR_TOOBIG, "%s", "the JSON would be nested too deeply");
	switch (which) {
	case 0:
	case 1:
		err = buf_append_str(t->out, which == 0 ? "{" : "[");
		if (!err)
			err = put_children(t, n, which == 0, depth);
		if (!err)
			err = buf_append_str(t->out, which == 0 ? "}" : "]");
		return err;
	case 2: {
		bool is_bad = false, esc = attr_true(n, "escaped", &is_bad);

		if (is_bad)
			return fail(t, XDMS_ERR_PARSE, "%s", "escaped is not a boolean");
		if (!(s = leaf_text(t, n, &err)))
			return err;
		if (esc) {
			struct buf u;

			buf_init(&u, strlen(s) + 1);
			if (unescape(s, strlen(s), &u))
				err = fail(t, XDMS_ERR_PARSE, "the escaped string '%.40s' has a bad escape", s);
			else
				err = json_append_string(t->out, u.data ? u.data : "", u.len);
			buf_cleanup(&u);
		} else {
			err = json_append_string(t->out, s, strlen(s));
		}
		free(s);
		return err;
	}
	case 3:
		if (!(s = leaf_text(t, n, &err)))
			return err;
		trim_span(s, &a, &b);
		if (!json_number_ok(s + a, b - a))
			err = fail(t, XDMS_ERR_PARSE, "'%.40s' in a <number> is not a JSON number", s);
		else
			err = buf_append(t->out, s + a, b - a);
		free(s);
		return err;
	case 4:
		if (!(s = leaf_text(t, n, &err)))
			return err;
		trim_span(s, &a, &b);
		if ((b - a == 4 && !strncmp(s + a, "true", 4)) || (b - a == 1 && s[a] == '1'))
			err = buf_append_str(t->out, "true");
		else if ((b - a == 5 && !strncmp(s + a, "false", 5)) || (b - a == 1 && s[a] == '0'))
			err = buf_append_str(t->out, "false");
		else
			err = fail(t, XDMS_ERR_PARSE, "'%.40s' in a <boolean> is not a boolean", s);
		free(s);
		return err;
	default:
		if (!(s = leaf_text(t, n, &err)))
			return err;
		trim_span(s, &a, &b);
		err = b > a ? fail(t, XDMS_ERR_PARSE, "%s", "a <null> is not empty") : buf_append_str(t->out, "null");
		free(s);
		return err;
	}
}

enum xdms_err json_from_xml(const char *xml, size_t len, const struct json_limits *lim, struct buf *out,
			    char **why)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct to_json t = { lim, out, why };
	enum xdms_err err;

	*why = NULL;
	if (len > lim->max_size) {
		*why = xasprintf("the XML is larger than %zu bytes", lim->max_size);
		return XDMS_ERR_TOOBIG;
	}
	if (xml_parse(xml, len, lim->max_depth + 1, &doc, &issue)) {
		*why = xasprintf("the XML does not parse: %s", issue.phrase);
		return XDMS_ERR_PARSE;
	}
	err = put_json(&t, xml_doc_root_elem(doc), 0);
	if (err == XDMS_ERR_TOOBIG && !*why)
		*why = xasprintf("the JSON is larger than %zu bytes", out->max_len);
	else if (err && !*why)
		*why = xstrdup("the XML could not be converted to JSON");
	xml_doc_free(doc);
	return err;
}
