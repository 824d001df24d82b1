/* SPDX-License-Identifier: MIT */
/*
 * The vCard reader: one card of text (RFC 6350, or RFC 2426 for 3.0) in,
 * its xCard (RFC 6351) out.
 *
 * Design: three passes over bounded memory. (1) Unfold: physical lines are
 * joined into logical content lines (RFC 6350 §3.2; RFC 2425 §5.8.1 for
 * 3.0; quoted-printable soft line breaks too) in one buffer capped at
 * max_card, at most max_lines of them. (2) Find VERSION, because 3.0 and
 * 4.0 read some values differently. (3) Each line is split into group,
 * name, parameters and value, decoded (QUOTED-PRINTABLE, CHARSET, base64),
 * checked (UTF-8, no character XML cannot carry), and written as one xCard
 * property into a scratch buffer; properties of one group are then
 * gathered under one <group> element. @out is touched only at the end, so
 * a refused card leaves it as it was.
 *
 * Invariant: every byte read is inside [text, text + len) or inside a
 * buffer this file filled; every allocation is bounded by the limits or
 * by the output buffer's maximum. Pure; any thread.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/mem.h"
#include "vcard/vcard.h"
#include "vcard/vcard_int.h"
#include "xml/xml.h"

#define NAME_MAX_LEN 64u /* bytes of a property, parameter or group name */

void vcard_limits_default(struct vcard_limits *l)
{
	l->max_card = VCARD_DEFAULT_MAX_CARD;
	l->max_photo = VCARD_DEFAULT_MAX_PHOTO;
	l->max_lines = VCARD_DEFAULT_MAX_LINES;
}

/* One logical (unfolded) content line, in reader.text. */
struct lline {
	size_t off;
	size_t len;
	unsigned lineno; /* physical line number (1-based) where it starts */
};

struct vparam {
	char name[NAME_MAX_LEN + 1]; /* upper case */
	char *vals[VCARD_MAX_PARAM_VALUES];
	size_t val_count;
	bool is_dropped;             /* consumed by the reader (ENCODING, CHARSET, VALUE) */
};

/* One property written as xCard, waiting for its group to be gathered. */
struct pout {
	size_t off, len;   /* in reader.props */
	const char *group; /* in reader.text; NULL when ungrouped */
	size_t group_len;
	bool is_done;
};

struct reader {
	const struct vcard_limits *lim;
	unsigned version;
	struct buf text;         /* unfolded lines, back to back */
	struct lline *lines;
	size_t line_count, line_cap;
	struct vparam params[VCARD_MAX_PARAMS];
	size_t param_count;
	struct buf props;        /* the xCard of each property */
	struct pout *outs;
	size_t out_count;
	char *why;
	unsigned lineno;         /* of the line being read, for messages */
};

static enum xdms_err fail(struct reader *r, enum xdms_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records the first refusal's sentence, prefixed with the line. */
static enum xdms_err fail(struct reader *r, enum xdms_err err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (r->why)
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->why = r->lineno ? xasprintf("line %u: %s", r->lineno, msg) : xstrdup(msg);
	return err;
}

static bool is_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool eq_nocase(const char *a, size_t a_len, const char *b)
{
	return strlen(b) == a_len && !strncasecmp(a, b, a_len);
}

/* A printable rendering of a name from the input, for messages. */
static int shown(size_t len)
{
	return (int)(len > 40 ? 40 : len);
}

/* ---- pass 1: unfolding ------------------------------------------------------- */

/* The logical line has reached its value and one of its parameters is
 * ENCODING=QUOTED-PRINTABLE, so a trailing '=' is a soft line break (a
 * vCard 2.1 habit that 3.0 writers still have). Quoted parameter values
 * are skipped: a ';' or ':' inside quotes separates nothing. Only the first
 * QP_HEAD_MAX bytes are looked at, so that a long line of soft breaks costs
 * linear time. */
#define QP_HEAD_MAX 1024u
static bool line_is_qp(const char *s, size_t len)
{
	static const char qp[] = "ENCODING=QUOTED-PRINTABLE";
	bool is_quoted = false, is_qp = false;
	size_t start = 0;

	if (len > QP_HEAD_MAX)
		len = QP_HEAD_MAX;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"') {
			is_quoted = !is_quoted;
		} else if (!is_quoted && (s[i] == ';' || s[i] == ':')) {
			if (i - start == sizeof(qp) - 1 && !strncasecmp(s + start, qp, sizeof(qp) - 1))
				is_qp = true;
			if (s[i] == ':')
				return is_qp;
			start = i + 1;
		}
	}
	return false;
}

static enum xdms_err add_line(struct reader *r, unsigned lineno)
{
	if (r->line_count >= r->lim->max_lines) {
		r->lineno = lineno;
		return fail(r, XDMS_ERR_TOOBIG, "the card has more than %zu content lines", r->lim->max_lines);
	}
	if (r->line_count == r->line_cap) {
		r->line_cap = r->line_cap ? r->line_cap * 2 : 64;
		if (r->line_cap > r->lim->max_lines)
			r->line_cap = r->lim->max_lines;
		r->lines = xrealloc(r->lines, r->line_cap * sizeof(*r->lines));
	}
	r->lines[r->line_count].off = r->text.len;
	r->lines[r->line_count].len = 0;
	r->lines[r->line_count].lineno = lineno;
	r->line_count++;
	return XDMS_ERR_OK;
}

static enum xdms_err unfold(struct reader *r, const char *text, size_t len)
{
	size_t i = 0;
	unsigned phys = 0;
	bool is_open = false; /* a logical line is being built */
	bool is_soft = false; /* it ended with a quoted-printable soft break */
	enum xdms_err err = XDMS_ERR_OK;

	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t eol = nl ? (size_t)(nl - text) : len;
		size_t end = eol > i && text[eol - 1] == '\r' ? eol - 1 : eol;
		size_t from = i;

		phys++;
		i = nl ? eol + 1 : len;
		if (is_open && is_soft) {
			/* The next physical line continues the value as it is. */
		} else if (is_open && end > from && (text[from] == ' ' || text[from] == '\t')) {
			from++; /* RFC 6350 §3.2: CRLF and one white space removed */
		} else if (end == from) {
			is_open = false; /* blank lines carry nothing */
			continue;
		} else {
			err = add_line(r, phys);
			if (err)
				return err;
			is_open = true;
		}
		if (buf_append(&r->text, text + from, end - from)) {
			r->lineno = r->lines[r->line_count - 1].lineno;
			return fail(r, XDMS_ERR_TOOBIG, "the card is larger than %zu bytes", r->lim->max_card);
		}
		r->lines[r->line_count - 1].len = r->text.len - r->lines[r->line_count - 1].off;
		{
			struct lline *l = &r->lines[r->line_count - 1];

			is_soft = l->len && r->text.data[l->off + l->len - 1] == '=' &&
				  line_is_qp(r->text.data + l->off, l->len);
			if (is_soft) {
				/* Drop the '=': the decoder sees the value joined. */
				r->text.len--;
				r->text.data[r->text.len] = '\0';
				l->len--;
			}
		}
	}
	return err;
}

/* ---- pass 3: one content line -------------------------------------------------- */

static void params_clear(struct reader *r)
{
	for (size_t i = 0; i < r->param_count; i++) {
		for (size_t k = 0; k < r->params[i].val_count; k++)
			free(r->params[i].vals[k]);
		r->params[i].val_count = 0;
	}
	r->param_count = 0;
}

static struct vparam *param_get(struct reader *r, const char *name)
{
	for (size_t i = 0; i < r->param_count; i++)
		if (!strcmp(r->params[i].name, name) && !r->params[i].is_dropped)
			return &r->params[i];
	return NULL;
}

/* The first value of parameter @name, or NULL; marks it consumed when @is_take. */
static const char *param_value(struct reader *r, const char *name, bool is_take)
{
	struct vparam *p = param_get(r, name);

	if (!p)
		return NULL;
	if (is_take)
		p->is_dropped = true;
	return p->val_count ? p->vals[0] : "";
}

/* Decodes a parameter value: RFC 6868 ^-escapes (^n newline, ^^ caret, ^' quote). */
static char *param_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '^' && i + 1 < len && (s[i + 1] == 'n' || s[i + 1] == 'N')) {
			out[o++] = '\n';
			i++;
		} else if (s[i] == '^' && i + 1 < len && s[i + 1] == '^') {
			out[o++] = '^';
			i++;
		} else if (s[i] == '^' && i + 1 < len && s[i + 1] == '\'') {
			out[o++] = '"';
			i++;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* Adds a value to @p: decoded from the line when @is_raw is false, as it is
 * (already decoded) when true. */
static enum xdms_err param_add(struct reader *r, struct vparam *p, const char *s, size_t len, bool is_raw)
{
	if (p->val_count >= VCARD_MAX_PARAM_VALUES)
		return fail(r, XDMS_ERR_TOOBIG, "parameter %s has more than %u values", p->name,
			    VCARD_MAX_PARAM_VALUES);
	p->vals[p->val_count++] = is_raw ? xstrndup(s, len) : param_decode(s, len);
	return XDMS_ERR_OK;
}

static enum xdms_err param_add_value(struct reader *r, struct vparam *p, const char *s, size_t len)
{
	return param_add(r, p, s, len, false);
}

/* The parameter named @name (upper case), added when new; same-named
 * parameters are one (TYPE=work;TYPE=voice is TYPE=work,voice). */
static enum xdms_err param_open(struct reader *r, const char *name, size_t len, struct vparam **out)
{
	char up[NAME_MAX_LEN + 1];

	for (size_t i = 0; i < len; i++)
		up[i] = upper(name[i]);
	up[len] = '\0';
	for (size_t i = 0; i < r->param_count; i++) {
		if (!strcmp(r->params[i].name, up)) {
			*out = &r->params[i];
			return XDMS_ERR_OK;
		}
	}
	if (r->param_count >= VCARD_MAX_PARAMS)
		return fail(r, XDMS_ERR_TOOBIG, "more than %u parameters", VCARD_MAX_PARAMS);
	*out = &r->params[r->param_count++];
	memcpy((*out)->name, up, len + 1);
	(*out)->val_count = 0;
	(*out)->is_dropped = false;
	return XDMS_ERR_OK;
}

/* A parsed content line: slices of reader.text. */
struct cline {
	const char *group, *name, *value;
	size_t group_len, name_len, value_len;
};

/*
 * contentline = [group "."] name *(";" param) ":" value (RFC 6350 §3.3).
 * A parameter without "=" is a bare TYPE value (3.0 and 2.1 writers: TEL;CELL:).
 */
static enum xdms_err line_split(struct reader *r, const char *s, size_t len, struct cline *c)
{
	size_t i = 0, start;
	enum xdms_err err;

	memset(c, 0, sizeof(*c));
	while (i < len && is_name_char(s[i]))
		i++;
	if (i < len && s[i] == '.') {
		c->group = s;
		c->group_len = i;
		start = ++i;
		while (i < len && is_name_char(s[i]))
			i++;
		c->name = s + start;
		c->name_len = i - start;
	} else {
		c->name = s;
		c->name_len = i;
	}
	if (!c->name_len || (c->group && !c->group_len))
		return fail(r, XDMS_ERR_PARSE, "a content line must start with a property name, found '%.*s'",
			    shown(len), s);
	if (c->name_len > NAME_MAX_LEN || c->group_len > NAME_MAX_LEN)
		return fail(r, XDMS_ERR_PARSE, "the name '%.*s' is longer than %u bytes", shown(c->name_len),
			    c->name, NAME_MAX_LEN);
	while (i < len && s[i] == ';') {
		struct vparam *p;
		size_t n0 = ++i;

		while (i < len && is_name_char(s[i]))
			i++;
		if (i == n0)
			return fail(r, XDMS_ERR_PARSE, "an empty parameter name in %.*s", shown(c->name_len),
				    c->name);
		if (i - n0 > NAME_MAX_LEN)
			return fail(r, XDMS_ERR_PARSE, "a parameter name is longer than %u bytes", NAME_MAX_LEN);
		if (i >= len || s[i] != '=') {
			err = param_open(r, "TYPE", 4, &p);
			if (!err)
				err = param_add_value(r, p, s + n0, i - n0);
			if (err)
				return err;
			continue;
		}
		err = param_open(r, s + n0, i - n0, &p);
		if (err)
			return err;
		do {
			size_t v0;

			i++; /* past '=' or ',' */
			if (i < len && s[i] == '"') {
				v0 = ++i;
				while (i < len && s[i] != '"')
					i++;
				if (i >= len)
					return fail(r, XDMS_ERR_PARSE, "parameter %s has a quoted value with no closing quote",
						    p->name);
				err = param_add_value(r, p, s + v0, i - v0);
				i++;
			} else {
				v0 = i;
				while (i < len && s[i] != ',' && s[i] != ';' && s[i] != ':' && s[i] != '"')
					i++;
				err = param_add_value(r, p, s + v0, i - v0);
			}
			if (err)
				return err;
		} while (i < len && s[i] == ',');
	}
	if (i >= len || s[i] != ':')
		return fail(r, XDMS_ERR_PARSE, "property %.*s has no ':' before its value", shown(c->name_len), c->name);
	c->value = s + i + 1;
	c->value_len = len - i - 1;
	return XDMS_ERR_OK;
}

/*
 * Text XML can carry: valid UTF-8 without C0 controls other than tab and
 * newline, and without U+FFFE/U+FFFF (XML 1.0 §2.2). @what names the part.
 */
static enum xdms_err check_text(struct reader *r, const char *s, size_t len, const char *what)
{
	size_t bad;

	if (!xml_utf8_valid(s, len, &bad))
		return fail(r, XDMS_ERR_PARSE,
			    "%s is not valid UTF-8 (byte 0x%02X at offset %zu); declare CHARSET=ISO-8859-1 or send UTF-8",
			    what, (unsigned)(unsigned char)s[bad], bad);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
			return fail(r, XDMS_ERR_PARSE, "%s holds the control character 0x%02X at offset %zu", what, c, i);
		if (c == 0xef && i + 2 < len && (unsigned char)s[i + 1] == 0xbf &&
		    ((unsigned char)s[i + 2] == 0xbe || (unsigned char)s[i + 2] == 0xbf))
			return fail(r, XDMS_ERR_PARSE, "%s holds the non-character U+FFF%c", what,
				    (unsigned char)s[i + 2] == 0xbe ? 'E' : 'F');
	}
	return XDMS_ERR_OK;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Quoted-printable (RFC 2045 §6.7); soft breaks were removed while unfolding. */
static enum xdms_err qp_decode(struct reader *r, const char *s, size_t len, char **out, size_t *out_len)
{
	char *d = xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] != '=') {
			d[o++] = s[i];
			continue;
		}
		if (i + 2 >= len || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0) {
			free(d);
			return fail(r, XDMS_ERR_PARSE, "a quoted-printable value has a bad '=' escape at offset %zu", i);
		}
		d[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
		i += 2;
		/* An encoded CRLF is a line break: keep the LF only. */
		if (o >= 2 && d[o - 1] == '\n' && d[o - 2] == '\r') {
			d[o - 2] = '\n';
			o--;
		}
	}
	d[o] = '\0';
	*out = d;
	*out_len = o;
	return XDMS_ERR_OK;
}

/* ISO-8859-1 to UTF-8: every byte is its code point. */
static char *latin1_to_utf8(const char *s, size_t len, size_t *out_len)
{
	char *d = xmalloc(len * 2 + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80) {
			d[o++] = (char)c;
		} else {
			d[o++] = (char)(0xc0 | (c >> 6));
			d[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	d[o] = '\0';
	*out_len = o;
	return d;
}

static bool is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/*
 * Checks base64 text (white space allowed, padding optional) and appends its
 * canonical form (padded, no white space) to @b. *decoded gets the byte
 * count it stands for.
 */
static enum xdms_err b64_clean(struct reader *r, const char *s, size_t len, struct buf *b, size_t *decoded)
{
	size_t n = 0, pad = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (!is_b64_char(c) || pad)
			return fail(r, XDMS_ERR_PARSE, "the base64 value has a bad character at offset %zu", i);
		if (buf_append(b, &c, 1))
			return fail(r, XDMS_ERR_TOOBIG, "the xCard of this card is too large");
		n++;
	}
	if (n % 4 == 1 || pad > 2)
		return fail(r, XDMS_ERR_PARSE, "the base64 value is truncated (%zu characters)", n);
	*decoded = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	for (; n % 4; n++)
		if (buf_append(b, "=", 1))
			return fail(r, XDMS_ERR_TOOBIG, "the xCard of this card is too large");
	return XDMS_ERR_OK;
}

/* The bytes a data: URI stands for, at most (RFC 2397). */
static size_t data_uri_size(const char *s, size_t len)
{
	const char *comma = memchr(s, ',', len);
	size_t head, body;

	if (!comma)
		return 0;
	head = (size_t)(comma - s);
	body = len - head - 1;
	if (head >= 7 && !strncasecmp(comma - 7, ";base64", 7)) {
		size_t pad = 0;

		while (pad < 2 && pad < body && s[len - 1 - pad] == '=')
			pad++;
		return body / 4 * 3 + (body % 4 ? body % 4 - 1 : 0) - (body % 4 ? 0 : pad);
	}
	return body;
}

/* ---- writing xCard ------------------------------------------------------------- */

static enum xdms_err put(struct reader *r, const char *s)
{
	if (buf_append_str(&r->props, s))
		return fail(r, XDMS_ERR_TOOBIG, "the xCard of this card is larger than %zu bytes", r->props.max_len);
	return XDMS_ERR_OK;
}

static enum xdms_err put_escaped(struct reader *r, const char *s, size_t len)
{
	if (buf_append_xml_escaped(&r->props, s, len))
		return fail(r, XDMS_ERR_TOOBIG, "the xCard of this card is larger than %zu bytes", r->props.max_len);
	return XDMS_ERR_OK;
}

static enum xdms_err put_lower(struct reader *r, const char *s, size_t len)
{
	char name[NAME_MAX_LEN + 1];

	for (size_t i = 0; i < len; i++)
		name[i] = lower(s[i]);
	name[len] = '\0';
	return put(r, name);
}

/* <type>value</type>, escaped. */
static enum xdms_err put_value(struct reader *r, const char *type, const char *s, size_t len)
{
	enum xdms_err err;

	if (!len) {
		err = put(r, "<");
		if (!err)
			err = put(r, type);
		return err ? err : put(r, "/>");
	}
	err = put(r, "<");
	if (!err)
		err = put(r, type);
	if (!err)
		err = put(r, ">");
	if (!err)
		err = put_escaped(r, s, len);
	if (!err)
		err = put(r, "</");
	if (!err)
		err = put(r, type);
	return err ? err : put(r, ">");
}

/* The end of the component starting at @s: the first unescaped @sep (or @end). */
static const char *component_end(const char *s, const char *end, char sep)
{
	while (s < end && *s != sep) {
		if (*s == '\\' && s + 1 < end)
			s++;
		s++;
	}
	return s;
}

/*
 * RFC 6350 §3.4: \n (or \N) is a newline, "\,", "\;" and "\\" the
 * character. 3.0 writers also escape ':'. Any other backslash is kept as it
 * is, so a value that was not meant to be escaped survives.
 */
static enum xdms_err put_unescaped(struct reader *r, const char *type, const char *s, size_t len)
{
	char *d = xmalloc(len + 1);
	size_t o = 0;
	enum xdms_err err;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 1 < len) {
			char n = s[i + 1];

			if (n == 'n' || n == 'N') {
				d[o++] = '\n';
				i++;
				continue;
			}
			if (n == ',' || n == ';' || n == '\\' || n == ':') {
				d[o++] = n;
				i++;
				continue;
			}
		}
		d[o++] = s[i];
	}
	err = put_value(r, type, d, o);
	free(d);
	return err;
}

/* A ','-separated list of escaped text values, each as <@type>. */
static enum xdms_err put_text_list(struct reader *r, const char *type, const char *s, size_t len)
{
	const char *end = s + len;
	enum xdms_err err;

	for (;;) {
		const char *e = component_end(s, end, ',');

		err = put_unescaped(r, type, s, (size_t)(e - s));
		if (err || e >= end)
			return err;
		s = e + 1;
	}
}

/*
 * A structured value (N, ADR, GENDER, CLIENTPIDMAP): component k becomes
 * element parts[k], one per ','-separated value; missing components are
 * empty elements. Components past the last named one stay in the last, so
 * nothing is lost.
 */
static enum xdms_err put_struct(struct reader *r, const char *const *parts, const char *s, size_t len)
{
	const char *end = s + len;
	bool has_more = true;
	enum xdms_err err = XDMS_ERR_OK;

	for (size_t k = 0; !err && parts[k]; k++) {
		const char *e = end;

		if (has_more && parts[k + 1])
			e = component_end(s, end, ';');
		err = put_text_list(r, parts[k], has_more ? s : end, has_more ? (size_t)(e - s) : 0);
		if (e < end)
			s = e + 1;
		else
			has_more = false;
	}
	return err;
}

/* ORG: text components separated by ';' (RFC 6351 Appendix A, value-org). */
static enum xdms_err put_org(struct reader *r, const char *s, size_t len)
{
	const char *end = s + len;
	enum xdms_err err;

	for (;;) {
		const char *e = component_end(s, end, ';');

		err = put_unescaped(r, "text", s, (size_t)(e - s));
		if (err || e >= end)
			return err;
		s = e + 1;
	}
}

/*
 * Dates and times in xCard are vCard 4.0's basic ISO 8601 forms (RFC 6351
 * Appendix A): 3.0's extended forms (1985-04-12, 10:00:00-05:00) lose
 * their separators; leading dashes of truncated forms (--0412) stay.
 */
static char *date_basic(const char *s, size_t len, bool *has_date, bool *has_time)
{
	char *d = xmalloc(len + 1);
	size_t o = 0, i = 0;
	const char *t = memchr(s, 'T', len);
	size_t tpos = t ? (size_t)(t - s) : len;

	while (i < tpos && i < 3 && s[i] == '-')
		d[o++] = s[i++];
	for (; i < tpos; i++)
		if (s[i] != '-')
			d[o++] = s[i];
	for (; i < len; i++)
		if (s[i] != ':')
			d[o++] = s[i];
	d[o] = '\0';
	*has_date = tpos > 0;
	*has_time = t != NULL;
	return d;
}

static bool looks_like_uri(const char *s, size_t len)
{
	size_t i = 0;

	if (!len || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	while (i < len && (is_name_char(s[i]) || s[i] == '+' || s[i] == '.'))
		i++;
	return i < len && s[i] == ':';
}

static bool looks_like_utc_offset(const char *s, size_t len)
{
	size_t digits = 0;

	if (!len || (s[0] != '+' && s[0] != '-'))
		return false;
	for (size_t i = 1; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			digits++;
		else if (s[i] != ':')
			return false;
	}
	return digits == 2 || digits == 4;
}

/* The media type a vCard 3.0 TYPE names for an inline binary value. */
static char *media_type_of(const char *prop, const char *type)
{
	char sub[NAME_MAX_LEN + 1];
	size_t n = 0;

	if (!type || !*type)
		return xstrdup("application/octet-stream");
	if (strchr(type, '/'))
		return xstrdup(type);
	for (; type[n] && n < NAME_MAX_LEN; n++)
		sub[n] = lower(type[n]);
	sub[n] = '\0';
	if (!strcmp(prop, "KEY")) {
		if (!strcmp(sub, "pgp"))
			return xstrdup("application/pgp-keys");
		if (!strcmp(sub, "x509"))
			return xstrdup("application/pkix-cert");
		return xasprintf("application/%s", sub);
	}
	if (!strcmp(prop, "SOUND"))
		return xasprintf("audio/%s", !strcmp(sub, "wave") ? "wav" : sub);
	return xasprintf("image/%s", sub);
}

static enum xdms_err put_params(struct reader *r)
{
	enum xdms_err err = XDMS_ERR_OK;
	bool is_open = false;

	for (size_t i = 0; !err && i < r->param_count; i++) {
		struct vparam *p = &r->params[i];
		const char *type = vcard_param_type(p->name);

		if (p->is_dropped)
			continue;
		if (!is_open) {
			err = put(r, "<parameters>");
			is_open = true;
		}
		if (!err)
			err = put(r, "<");
		if (!err)
			err = put_lower(r, p->name, strlen(p->name));
		if (!err)
			err = put(r, ">");
		for (size_t k = 0; !err && k < p->val_count; k++)
			err = put_value(r, type, p->vals[k], strlen(p->vals[k]));
		if (!err)
			err = put(r, "</");
		if (!err)
			err = put_lower(r, p->name, strlen(p->name));
		if (!err)
			err = put(r, ">");
	}
	if (!err && is_open)
		err = put(r, "</parameters>");
	return err;
}

/* vCard 3.0 TYPE=PREF (RFC 2426 §3.3.1) is 4.0's PREF=1 (RFC 6350 §5.3). */
static enum xdms_err pref_from_type(struct reader *r)
{
	struct vparam *t = param_get(r, "TYPE"), *p;
	bool has_pref = false;
	size_t o = 0;
	enum xdms_err err;

	if (!t)
		return XDMS_ERR_OK;
	for (size_t k = 0; k < t->val_count; k++) {
		if (!strcasecmp(t->vals[k], "pref")) {
			free(t->vals[k]);
			has_pref = true;
		} else {
			t->vals[o++] = t->vals[k];
		}
	}
	t->val_count = o;
	if (!o)
		t->is_dropped = true;
	if (!has_pref || param_get(r, "PREF"))
		return XDMS_ERR_OK;
	err = param_open(r, "PREF", 4, &p);
	return err ? err : param_add_value(r, p, "1", 1);
}

/* Splits TYPE values written quoted with commas inside ("work,voice"),
 * which RFC 6350's own examples do, and lower-cases them: TYPE values are
 * case-insensitive tokens and xCard writes them in lower case. */
static enum xdms_err type_normalize(struct reader *r)
{
	struct vparam *t = param_get(r, "TYPE");
	char *vals[VCARD_MAX_PARAM_VALUES];
	size_t count;
	enum xdms_err err = XDMS_ERR_OK;

	if (!t)
		return XDMS_ERR_OK;
	count = t->val_count;
	memcpy(vals, t->vals, count * sizeof(vals[0]));
	t->val_count = 0;
	for (size_t k = 0; k < count; k++) {
		const char *s = vals[k];

		for (char *c = vals[k]; *c; c++)
			*c = lower(*c);
		do {
			size_t len = strcspn(s, ",");

			if (!err && (len || !strchr(vals[k], ',')))
				err = param_add(r, t, s, len, true);
			s += len + (s[len] == ',');
		} while (*s);
		free(vals[k]);
	}
	return err;
}

/*
 * Reads one content line (not BEGIN, END or VERSION) and writes its xCard
 * property into reader.props.
 */
static enum xdms_err read_property(struct reader *r, const struct cline *c)
{
	const struct vcard_prop *prop = vcard_prop_find(c->name, c->name_len);
	char pname[NAME_MAX_LEN + 1];
	const char *value = c->value, *type, *enc, *charset, *vtype;
	size_t value_len = c->value_len;
	char *owned = NULL, *owned2 = NULL, *vtype_owned = NULL;
	enum xdms_err err;

	for (size_t i = 0; i < c->name_len; i++)
		pname[i] = upper(c->name[i]);
	pname[c->name_len] = '\0';
	if (!((pname[0] >= 'A' && pname[0] <= 'Z')))
		return fail(r, XDMS_ERR_PARSE, "the property name %s does not start with a letter", pname);
	for (size_t i = 0; i < r->param_count; i++) {
		char what[NAME_MAX_LEN + 32];

		if (!((r->params[i].name[0] >= 'A' && r->params[i].name[0] <= 'Z')))
			return fail(r, XDMS_ERR_PARSE, "the parameter name %s does not start with a letter",
				    r->params[i].name);
		snprintf(what, sizeof(what), "parameter %s", r->params[i].name);
		for (size_t k = 0; k < r->params[i].val_count; k++) {
			err = check_text(r, r->params[i].vals[k], strlen(r->params[i].vals[k]), what);
			if (err)
				return err;
		}
	}

	enc = param_value(r, "ENCODING", true);
	charset = param_value(r, "CHARSET", true);
	vtype = param_value(r, "VALUE", true);
	if (enc && (!strcasecmp(enc, "quoted-printable"))) {
		err = qp_decode(r, value, value_len, &owned, &value_len);
		if (err)
			goto out;
		value = owned;
	} else if (enc && (!strcasecmp(enc, "b") || !strcasecmp(enc, "base64"))) {
		/* Inline binary (RFC 2426 §5.1): handled below as a data: URI. */
	} else if (enc && strcasecmp(enc, "8bit") && strcasecmp(enc, "7bit")) {
		err = fail(r, XDMS_ERR_PARSE, "%s has ENCODING=%s, which is not supported", pname, enc);
		goto out;
	}
	if (charset && (!strcasecmp(charset, "iso-8859-1") || !strcasecmp(charset, "latin1"))) {
		owned2 = latin1_to_utf8(value, value_len, &value_len);
		value = owned2;
	} else if (charset && strcasecmp(charset, "utf-8") && strcasecmp(charset, "us-ascii")) {
		err = fail(r, XDMS_ERR_PARSE, "%s has CHARSET=%s; only UTF-8, US-ASCII and ISO-8859-1 are read", pname,
			   charset);
		goto out;
	}
	err = check_text(r, value, value_len, "the value");
	if (err)
		goto out;

	err = type_normalize(r);
	if (!err && r->version == 3)
		err = pref_from_type(r);
	if (err)
		goto out;

	/* The value type: VALUE=, else the property's default (with 3.0's own). */
	if (vtype) {
		vtype_owned = xstrdup(vtype);
		for (char *p = vtype_owned; *p; p++)
			*p = lower(*p);
		/* 3.0's phone-number is text, its binary travels as a data: URI. */
		if (!strcmp(vtype_owned, "phone-number"))
			strcpy(vtype_owned, "text");
		else if (!strcmp(vtype_owned, "binary"))
			strcpy(vtype_owned, "uri");
		vtype = vtype_owned;
	}
	type = vtype ? vtype : prop ? prop->type : "unknown";
	if (!vtype && prop && !strcmp(prop->name, "UID") && !looks_like_uri(value, value_len))
		type = "text";
	if (!vtype && r->version == 3 && prop && !strcmp(prop->name, "TZ"))
		type = looks_like_utc_offset(value, value_len) ? "utc-offset" : "text";

	if (!err)
		err = put(r, "<");
	if (!err)
		err = put_lower(r, pname, c->name_len);
	if (!err)
		err = put(r, ">");
	if (err)
		goto out;

	if (enc && (!strcasecmp(enc, "b") || !strcasecmp(enc, "base64"))) {
		/* An inline photo (or logo, sound, key) becomes a data: URI (RFC 6350 §6.2.4). */
		const char *t = param_value(r, "TYPE", true);
		char *mime = media_type_of(pname, t);
		size_t decoded = 0;

		if (!prop || !prop->is_binary) {
			free(mime);
			err = fail(r, XDMS_ERR_PARSE, "%s has ENCODING=%s, which only PHOTO, LOGO, SOUND and KEY may use",
				   pname, enc);
			goto out;
		}
		err = put_params(r);
		if (!err)
			err = put(r, "<uri>data:");
		if (!err)
			err = put_escaped(r, mime, strlen(mime));
		if (!err)
			err = put(r, ";base64,");
		free(mime);
		if (!err)
			err = b64_clean(r, value, value_len, &r->props, &decoded);
		if (!err && decoded > r->lim->max_photo)
			err = fail(r, XDMS_ERR_TOOBIG, "the %s is %zu bytes, over the limit of %zu", pname, decoded,
				   r->lim->max_photo);
		if (!err)
			err = put(r, "</uri>");
	} else if (prop && !strcmp(prop->name, "GEO") && r->version == 3 && !vtype &&
		   !looks_like_uri(value, value_len)) {
		/* 3.0 GEO is "lat;lon" (RFC 2426 §3.4.2); 4.0 a geo: URI (RFC 5870). */
		const char *semi = memchr(value, ';', value_len);
		size_t lat = semi ? (size_t)(semi - value) : value_len;

		err = put_params(r);
		if (!err)
			err = put(r, "<uri>geo:");
		if (!err)
			err = put_escaped(r, value, lat);
		if (!err && semi)
			err = put(r, ",");
		if (!err && semi)
			err = put_escaped(r, semi + 1, value_len - lat - 1);
		if (!err)
			err = put(r, "</uri>");
	} else {
		err = put_params(r);
		if (err)
			goto out;
		if (prop && prop->is_binary && value_len >= 5 && !strncasecmp(value, "data:", 5) &&
		    data_uri_size(value, value_len) > r->lim->max_photo) {
			err = fail(r, XDMS_ERR_TOOBIG, "the %s is about %zu bytes, over the limit of %zu", pname,
				   data_uri_size(value, value_len), r->lim->max_photo);
			goto out;
		}
		if (!strcmp(type, "text") && prop && prop->shape == VCARD_SHAPE_STRUCT)
			err = put_struct(r, prop->parts, value, value_len);
		else if (!strcmp(type, "text") && prop && prop->shape == VCARD_SHAPE_ORG)
			err = put_org(r, value, value_len);
		else if (!strcmp(type, "text") && prop && prop->shape == VCARD_SHAPE_LIST)
			err = put_text_list(r, "text", value, value_len);
		else if (!strcmp(type, "text"))
			err = put_unescaped(r, "text", value, value_len);
		else if (!strcmp(type, "date-and-or-time") || !strcmp(type, "date") || !strcmp(type, "date-time") ||
			 !strcmp(type, "time") || !strcmp(type, "timestamp")) {
			bool has_date, has_time;
			char *d = date_basic(value, value_len, &has_date, &has_time);
			const char *el = !strcmp(type, "timestamp") ? "timestamp" :
					 has_date && has_time ? "date-time" :
					 has_time ? "time" : "date";

			err = put_value(r, el, d, strlen(d));
			free(d);
		} else if (!strcmp(type, "utc-offset")) {
			char *d = xstrndup(value, value_len);
			size_t o = 0;

			for (size_t i = 0; d[i]; i++)
				if (d[i] != ':')
					d[o++] = d[i];
			err = put_value(r, "utc-offset", d, o);
			free(d);
		} else {
			/* uri, unknown and the other types carry the raw value (RFC 6351 §5). */
			if (strspn(type, "abcdefghijklmnopqrstuvwxyz-0123456789") != strlen(type) || !*type ||
			    !(type[0] >= 'a' && type[0] <= 'z')) {
				err = fail(r, XDMS_ERR_PARSE, "%s has VALUE=%s, which is no value type", pname, type);
				goto out;
			}
			err = put_value(r, type, value, value_len);
		}
	}
	if (!err)
		err = put(r, "</");
	if (!err)
		err = put_lower(r, pname, c->name_len);
	if (!err)
		err = put(r, ">");
out:
	free(vtype_owned);
	free(owned);
	free(owned2);
	return err;
}

/* ---- the card ------------------------------------------------------------------- */

/* The line is @what, trailing blanks aside (BEGIN and END lines). */
static bool line_is(const char *s, size_t len, const char *what)
{
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	return eq_nocase(s, len, what);
}

static enum xdms_err read_version(struct reader *r)
{
	for (size_t i = 1; i < r->line_count; i++) {
		const char *s = r->text.data + r->lines[i].off;
		size_t len = r->lines[i].len;
		const char *v;
		size_t vlen;

		if (len < 8 || strncasecmp(s, "VERSION", 7) || (s[7] != ':' && s[7] != ';'))
			continue;
		v = memchr(s, ':', len);
		if (!v)
			continue; /* refused as a bad line below */
		vlen = len - (size_t)(v - s) - 1;
		v++;
		r->lineno = r->lines[i].lineno;
		if (eq_nocase(v, vlen, "4.0"))
			r->version = 4;
		else if (eq_nocase(v, vlen, "3.0"))
			r->version = 3;
		else
			return fail(r, XDMS_ERR_PARSE, "VERSION %.*s is not supported (3.0 and 4.0 are)", shown(vlen), v);
		return XDMS_ERR_OK;
	}
	r->lineno = 0;
	return fail(r, XDMS_ERR_PARSE, "the card has no VERSION property");
}

static enum xdms_err gather(struct reader *r, struct buf *xml)
{
	enum xdms_err err = XDMS_ERR_OK;

	if (buf_append_str(xml, "<vcard xmlns=\"" VCARD_NS "\">"))
		return XDMS_ERR_TOOBIG;
	for (size_t i = 0; !err && i < r->out_count; i++) {
		struct pout *o = &r->outs[i];

		if (o->is_done)
			continue;
		if (!o->group) {
			err = buf_append(xml, r->props.data + o->off, o->len);
			continue;
		}
		/* RFC 6351 §4: the properties of one group inside one <group>. */
		err = buf_append_str(xml, "<group name=\"");
		if (!err)
			err = buf_append_xml_escaped(xml, o->group, o->group_len);
		if (!err)
			err = buf_append_str(xml, "\">");
		for (size_t k = i; !err && k < r->out_count; k++) {
			struct pout *m = &r->outs[k];

			if (m->is_done || !m->group || m->group_len != o->group_len ||
			    strncasecmp(m->group, o->group, o->group_len))
				continue;
			err = buf_append(xml, r->props.data + m->off, m->len);
			m->is_done = true;
		}
		if (!err)
			err = buf_append_str(xml, "</group>");
	}
	if (!err)
		err = buf_append_str(xml, "</vcard>");
	return err;
}

static enum xdms_err read_card(struct reader *r, const char *text, size_t len, struct buf *out)
{
	struct buf xml;
	enum xdms_err err;
	size_t last;

	/* A UTF-8 byte order mark is no part of the card. */
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
		text += 3;
		len -= 3;
	}
	err = unfold(r, text, len);
	if (err)
		return err;
	if (!r->line_count)
		return fail(r, XDMS_ERR_PARSE, "the text holds no vCard (no BEGIN:VCARD)");
	r->lineno = r->lines[0].lineno;
	if (!line_is(r->text.data + r->lines[0].off, r->lines[0].len, "BEGIN:VCARD"))
		return fail(r, XDMS_ERR_PARSE, "the card must start with BEGIN:VCARD");
	for (last = 1; last < r->line_count; last++) {
		struct lline *l = &r->lines[last];

		if (line_is(r->text.data + l->off, l->len, "END:VCARD"))
			break;
		if (line_is(r->text.data + l->off, l->len, "BEGIN:VCARD")) {
			r->lineno = l->lineno;
			return fail(r, XDMS_ERR_PARSE, "a BEGIN:VCARD inside a card (the card before has no END:VCARD)");
		}
	}
	if (last == r->line_count) {
		r->lineno = 0;
		return fail(r, XDMS_ERR_PARSE, "the card has no END:VCARD (it ends at line %u)",
			    r->lines[r->line_count - 1].lineno);
	}
	if (last + 1 < r->line_count) {
		r->lineno = r->lines[last + 1].lineno;
		return fail(r, XDMS_ERR_PARSE, "text after END:VCARD");
	}
	r->line_count = last; /* END is not a property */
	err = read_version(r);
	if (err)
		return err;

	r->outs = xcalloc(r->line_count, sizeof(*r->outs));
	for (size_t i = 1; i < r->line_count; i++) {
		struct lline *l = &r->lines[i];
		struct cline c;
		size_t start = r->props.len;

		r->lineno = l->lineno;
		params_clear(r);
		err = line_split(r, r->text.data + l->off, l->len, &c);
		if (err)
			return err;
		if (eq_nocase(c.name, c.name_len, "VERSION"))
			continue;
		if (eq_nocase(c.name, c.name_len, "BEGIN") || eq_nocase(c.name, c.name_len, "END"))
			return fail(r, XDMS_ERR_PARSE, "%.*s:%.*s inside a card", shown(c.name_len), c.name,
				    shown(c.value_len), c.value);
		err = read_property(r, &c);
		if (err)
			return err;
		r->outs[r->out_count].off = start;
		r->outs[r->out_count].len = r->props.len - start;
		r->outs[r->out_count].group = c.group;
		r->outs[r->out_count].group_len = c.group_len;
		r->out_count++;
	}
	params_clear(r);
	r->lineno = 0;

	buf_init(&xml, out->max_len > out->len ? out->max_len - out->len : 0);
	err = gather(r, &xml);
	if (!err)
		err = buf_append(out, xml.data, xml.len);
	buf_cleanup(&xml);
	if (err)
		return fail(r, XDMS_ERR_TOOBIG, "the xCard of this card is larger than %zu bytes", out->max_len);
	return XDMS_ERR_OK;
}

enum xdms_err vcard_read(const char *text, size_t len, const struct vcard_limits *lim, struct buf *out,
			 unsigned *version, char **why)
{
	struct vcard_limits defaults;
	struct reader *r;
	enum xdms_err err;

	if (why)
		*why = NULL;
	if ((!text && len) || !out || !version) {
		if (why)
			*why = xstrdup("vcard_read: no text, output or version");
		return XDMS_ERR_INVAL;
	}
	if (!lim) {
		vcard_limits_default(&defaults);
		lim = &defaults;
	}
	r = xcalloc(1, sizeof(*r));
	r->lim = lim;
	buf_init(&r->text, lim->max_card);
	buf_init(&r->props, out->max_len);
	err = read_card(r, text ? text : "", len, out);
	if (!err)
		*version = r->version;
	params_clear(r);
	buf_cleanup(&r->text);
	buf_cleanup(&r->props);
	free(r->lines);
	free(r->outs);
	if (why && err)
		*why = r->why;
	else
		free(r->why);
	free(r);
	return err;
}
