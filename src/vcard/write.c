/* SPDX-License-Identifier: MIT */
/*
 * The vCard writer: one xCard (RFC 6351) <vcard> in, vCard 3.0 (RFC 2426)
 * or 4.0 (RFC 6350) text out.
 *
 * Design: the xCard is parsed with the project's safe XML parser and walked
 * once through xml/'s tree API. Each property becomes one logical line,
 * built in a scratch buffer (group, name, parameters, value, each escaped
 * for its place) and then folded into the output: 75 octets per physical
 * line, never splitting a UTF-8 sequence (RFC 6350 §3.2). The property table
 * in props.c says which value type is a property's default, so VALUE= is
 * written only where it is needed. The xCard the reader makes comes back as
 * the vCard it was read from, up to spelling (case, escaping, folding).
 *
 * Pure; any thread once xml_init() has run.
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

#define FOLD_AT 75u /* octets of a physical line, CRLF excluded (RFC 6350 §3.2) */

struct writer {
	unsigned version;
	struct buf line; /* the logical line being built */
	struct buf body; /* the folded card */
	char *why;
};

static enum xdms_err wfail(struct writer *w, enum xdms_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum xdms_err wfail(struct writer *w, enum xdms_err err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	if (w->why)
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->why = xstrdup(msg);
	return err;
}

static enum xdms_err add(struct writer *w, const char *s, size_t len)
{
	if (buf_append(&w->line, s, len))
		return wfail(w, XDMS_ERR_TOOBIG, "the vCard is larger than %zu bytes", w->line.max_len);
	return XDMS_ERR_OK;
}

static enum xdms_err add_str(struct writer *w, const char *s)
{
	return add(w, s, strlen(s));
}

/* Folds the logical line into the body and empties it. */
static enum xdms_err line_end(struct writer *w)
{
	const char *s = w->line.data ? w->line.data : "";
	size_t n = w->line.len, i = 0;
	bool is_first = true;
	enum xdms_err err = XDMS_ERR_OK;

	do {
		size_t room = is_first ? FOLD_AT : FOLD_AT - 1;
		size_t take = n - i <= room ? n - i : room;

		/* Back up to the start of a UTF-8 sequence. */
		while (i + take < n && take > 1 && ((unsigned char)s[i + take] & 0xc0) == 0x80)
			take--;
		if (!is_first)
			err = buf_append(&w->body, " ", 1);
		if (!err)
			err = buf_append(&w->body, s + i, take);
		if (!err)
			err = buf_append(&w->body, "\r\n", 2);
		i += take;
		is_first = false;
	} while (!err && i < n);
	buf_reset(&w->line);
	if (err)
		return wfail(w, XDMS_ERR_TOOBIG, "the vCard is larger than %zu bytes", w->body.max_len);
	return XDMS_ERR_OK;
}

/* RFC 6350 §3.4: backslash, newline, comma and semicolon in text values. */
static enum xdms_err add_text(struct writer *w, const char *s)
{
	enum xdms_err err = XDMS_ERR_OK;

	for (; !err && *s; s++) {
		switch (*s) {
		case '\\': err = add_str(w, "\\\\"); break;
		case ',': err = add_str(w, "\\,"); break;
		case ';': err = add_str(w, "\\;"); break;
		case '\n': err = add_str(w, "\\n"); break;
		case '\r':
			if (s[1] != '\n')
				err = add_str(w, "\\n");
			break;
		default: err = add(w, s, 1);
		}
	}
	return err;
}

/* A value written as it is (uri, unknown, dates ...). A line break, which
 * only a decoded quoted-printable value can hold, is written as \n: the
 * one escape every vCard value type shares (RFC 6350 §3.4). */
static enum xdms_err add_raw(struct writer *w, const char *s)
{
	enum xdms_err err = XDMS_ERR_OK;

	while (!err && *s) {
		size_t run = strcspn(s, "\r\n");

		err = add(w, s, run);
		s += run;
		if (!err && *s) {
			err = add_str(w, "\\n");
			s += s[0] == '\r' && s[1] == '\n' ? 2 : 1;
		}
	}
	return err;
}

/* A parameter value: RFC 6868 ^-escapes, quoted when it holds , ; or :. */
static enum xdms_err add_param_value(struct writer *w, const char *s)
{
	bool is_quoted = strpbrk(s, ",;:") != NULL;
	enum xdms_err err = is_quoted ? add_str(w, "\"") : XDMS_ERR_OK;

	for (; !err && *s; s++) {
		switch (*s) {
		case '^': err = add_str(w, "^^"); break;
		case '"': err = add_str(w, "^'"); break;
		case '\n': err = add_str(w, "^n"); break;
		case '\r': break;
		default: err = add(w, s, 1);
		}
	}
	if (!err && is_quoted)
		err = add_str(w, "\"");
	return err;
}

static bool is_xcard(const struct xml_node *n, const char *name)
{
	return xml_node_is(n, VCARD_NS, name);
}

/* Upper-cases an xCard element name into a vCard name; false when it is not one. */
static bool vcard_name(const char *xml_name, char *out, size_t size)
{
	size_t n = strlen(xml_name);

	if (!n || n >= size)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = xml_name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		out[i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
	}
	out[n] = '\0';
	return true;
}

/* Appends 3.0's "pref" and the inline binary's subtype to a TYPE list. */
static enum xdms_err add_type_extras(struct writer *w, bool is_first, bool has_pref3, const char *extra_type)
{
	const char *extras[2] = { has_pref3 ? "pref" : NULL, extra_type };
	enum xdms_err err = XDMS_ERR_OK;

	for (size_t i = 0; !err && i < 2; i++) {
		if (!extras[i])
			continue;
		if (!is_first)
			err = add_str(w, ",");
		if (!err)
			err = add_param_value(w, extras[i]);
		is_first = false;
	}
	return err;
}

/* The parameters of a property, with 3.0's conversions. @extra_type is a
 * TYPE value to add (an inline binary's subtype), and @is_skip_mediatype
 * leaves MEDIATYPE out (that subtype says it). VALUE and ENCODING are the
 * caller's, who derives them from the value. */
static enum xdms_err add_params(struct writer *w, const struct xml_node *prop, const char *pname,
				const char *extra_type, bool is_skip_mediatype)
{
	const struct xml_node *params = xml_node_child(prop, VCARD_NS, "parameters");
	bool has_type_written = false, has_pref3 = false;
	enum xdms_err err = XDMS_ERR_OK;

	/* 3.0 has no PREF: it says TYPE=pref (RFC 2426 §3.3.1) for the most
	 * preferred. Other ranks stay PREF=n, which 3.0 readers ignore. */
	if (w->version == 3) {
		char *rank = xml_node_text(xml_node_child(params, VCARD_NS, "pref"));

		has_pref3 = rank && !strcmp(rank, "1");
		free(rank);
	}
	for (const struct xml_node *p = xml_node_child(params, NULL, NULL); !err && p; p = xml_node_next(p, NULL, NULL)) {
		char name[80];
		bool is_first = true;

		if (!is_xcard(p, NULL))
			continue;
		if (!vcard_name(xml_node_name(p), name, sizeof(name)))
			return wfail(w, XDMS_ERR_INVAL, "property %s has a parameter named '%s', which vCard cannot carry",
				     pname, xml_node_name(p));
		if (has_pref3 && !strcmp(name, "PREF"))
			continue;
		if (is_skip_mediatype && !strcmp(name, "MEDIATYPE"))
			continue;
		if (!strcmp(name, "VALUE") || !strcmp(name, "ENCODING"))
			continue; /* written by the caller from the value itself */
		err = add_str(w, ";");
		if (!err)
			err = add_str(w, name);
		if (!err)
			err = add_str(w, "=");
		for (const struct xml_node *v = xml_node_child(p, NULL, NULL); !err && v; v = xml_node_next(v, NULL, NULL)) {
			char *text = xml_node_text(v);

			if (!is_first)
				err = add_str(w, ",");
			if (!err)
				err = add_param_value(w, text);
			free(text);
			is_first = false;
		}
		if (!strcmp(name, "TYPE")) {
			has_type_written = true;
			err = err ? err : add_type_extras(w, is_first, has_pref3, extra_type);
		}
	}
	if (!err && !has_type_written && (has_pref3 || extra_type)) {
		err = add_str(w, ";TYPE=");
		if (!err)
			err = add_type_extras(w, true, has_pref3, extra_type);
	}
	return err;
}

/* The value elements of a property (everything but <parameters>). */
static const struct xml_node *first_value(const struct xml_node *prop)
{
	for (const struct xml_node *v = xml_node_child(prop, NULL, NULL); v; v = xml_node_next(v, NULL, NULL))
		if (!is_xcard(v, "parameters"))
			return v;
	return NULL;
}

static const struct xml_node *next_value(const struct xml_node *v)
{
	for (v = xml_node_next(v, NULL, NULL); v; v = xml_node_next(v, NULL, NULL))
		if (!is_xcard(v, "parameters"))
			return v;
	return NULL;
}

/* Values of one kind: text escaped, others as they are, joined by @sep. */
static enum xdms_err add_values(struct writer *w, const struct xml_node *prop, const char *only,
				char sep)
{
	bool is_first = true;
	enum xdms_err err = XDMS_ERR_OK;

	for (const struct xml_node *v = first_value(prop); !err && v; v = next_value(v)) {
		char *text;

		if (only && !xml_node_is(v, NULL, only))
			continue;
		text = xml_node_text(v);
		if (!is_first)
			err = add(w, &sep, 1);
		/* Struct parts and <text> are text; uri, unknown, dates go as they are. */
		if (!err)
			err = only || !strcmp(xml_node_name(v), "text") ? add_text(w, text) : add_raw(w, text);
		free(text);
		is_first = false;
	}
	return err;
}

/* The subtype a vCard 3.0 TYPE names for inline binary (image/jpeg -> JPEG). */
static char *type3_of_media(const char *mime)
{
	const char *slash = strchr(mime, '/');
	char *t;

	if (!strcasecmp(mime, "application/pgp-keys"))
		return xstrdup("PGP");
	if (!strcasecmp(mime, "application/pkix-cert"))
		return xstrdup("X509");
	if (!strcasecmp(mime, "audio/wav"))
		return xstrdup("WAVE");
	t = xstrdup(slash ? slash + 1 : mime);
	for (char *p = t; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	return t;
}

/* Canonical base64 (what ENCODING=b may carry): alphabet, then at most two '='. */
static bool is_base64(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
	size_t pad = strspn(s + n, "=");

	return n && !s[n + pad] && pad <= 2 && (n + pad) % 4 == 0;
}

/*
 * A data: URI with base64 content (RFC 2397): *mime (heap) and *data
 * (borrowed from @uri). False when @uri is not one.
 */
static bool data_uri_split(const char *uri, char **mime, const char **data)
{
	const char *comma, *semi;

	if (strncasecmp(uri, "data:", 5))
		return false;
	comma = strchr(uri, ',');
	if (!comma || comma - uri < 12 || strncasecmp(comma - 7, ";base64", 7) || !is_base64(comma + 1))
		return false;
	semi = strchr(uri + 5, ';');
	*mime = semi - (uri + 5) ? xstrndup(uri + 5, (size_t)(semi - (uri + 5))) : xstrdup("application/octet-stream");
	*data = comma + 1;
	return true;
}

/* @name is one of the components of structured property @def. */
static bool is_part(const struct vcard_prop *def, const char *name)
{
	for (size_t k = 0; def->parts && def->parts[k]; k++)
		if (!strcmp(def->parts[k], name))
			return true;
	return false;
}

static enum xdms_err write_property(struct writer *w, const char *group, const struct xml_node *prop)
{
	char pname[80];
	const struct vcard_prop *def;
	const struct xml_node *v0 = first_value(prop);
	const char *vtype = v0 ? xml_node_name(v0) : "text";
	char *value0 = v0 ? xml_node_text(v0) : xstrdup("");
	char *mime = NULL, *type3 = NULL;
	const char *data = NULL, *value_param = NULL;
	enum xdms_err err = XDMS_ERR_OK;

	if (!vcard_name(xml_node_name(prop), pname, sizeof(pname))) {
		err = wfail(w, XDMS_ERR_INVAL, "the element '%s' cannot be a vCard property name", xml_node_name(prop));
		goto out;
	}
	if (!strcmp(pname, "VERSION") || !strcmp(pname, "BEGIN") || !strcmp(pname, "END"))
		goto out; /* the writer frames the card itself */
	def = vcard_prop_find(pname, strlen(pname));

	/* Which VALUE= the line needs, and 3.0's own forms. */
	if (def && def->is_binary && !strcmp(vtype, "uri") && w->version == 3) {
		if (data_uri_split(value0, &mime, &data))
			type3 = type3_of_media(mime);
		else
			value_param = "uri"; /* 3.0's default for PHOTO is inline binary */
	} else if (!def) {
		value_param = strcmp(vtype, "unknown") ? vtype : NULL;
	} else if (!strcmp(def->type, "date-and-or-time") &&
		   (!strcmp(vtype, "date") || !strcmp(vtype, "date-time") || !strcmp(vtype, "time") ||
		    !strcmp(vtype, "date-and-or-time"))) {
		if (w->version == 3 && strcmp(vtype, "date"))
			value_param = vtype;
	} else if (def->shape == VCARD_SHAPE_STRUCT && is_part(def, vtype)) {
		value_param = NULL;
	} else if (w->version == 3 && !strcmp(pname, "TEL")) {
		value_param = NULL; /* 3.0 TEL is a phone number, text */
	} else if (w->version == 3 && !strcmp(pname, "UID")) {
		value_param = NULL; /* 3.0 UID is text */
	} else if (w->version == 3 && !strcmp(pname, "GEO") && !strncasecmp(value0, "geo:", 4)) {
		value_param = NULL;
	} else if (w->version == 3 && !strcmp(pname, "TZ")) {
		value_param = strcmp(vtype, "utc-offset") ? vtype : NULL;
	} else if (strcmp(vtype, def->type) && strcmp(vtype, "unknown")) {
		value_param = vtype;
	}

	if (group) {
		err = add_str(w, group);
		if (!err)
			err = add_str(w, ".");
	}
	if (!err)
		err = add_str(w, pname);
	if (!err && value_param) {
		err = add_str(w, ";VALUE=");
		if (!err)
			err = add_str(w, value_param);
	}
	if (!err && type3)
		err = add_str(w, ";ENCODING=b");
	if (!err)
		err = add_params(w, prop, pname, type3, type3 != NULL);
	if (!err)
		err = add_str(w, ":");
	if (err)
		goto out;

	if (type3) {
		err = add_raw(w, data);
	} else if (w->version == 3 && !strcmp(vtype, "utc-offset") && strlen(value0) == 5 && !strchr(value0, ':')) {
		/* 3.0's utc-offset has a colon (RFC 2426 §4): -0500 -> -05:00 */
		err = add(w, value0, 3);
		if (!err)
			err = add_str(w, ":");
		if (!err)
			err = add_str(w, value0 + 3);
	} else if (w->version == 3 && !strcmp(pname, "TEL") && !strcmp(vtype, "uri") &&
		   !strncasecmp(value0, "tel:", 4)) {
		err = add_text(w, value0 + 4);
	} else if (w->version == 3 && !strcmp(pname, "GEO") && !strncasecmp(value0, "geo:", 4)) {
		/* geo:lat,lon[;params] -> lat;lon (RFC 2426 §3.4.2) */
		size_t lat = strcspn(value0 + 4, ",");
		size_t lon = value0[4 + lat] ? strcspn(value0 + 5 + lat, ";") : 0;

		err = add(w, value0 + 4, lat);
		if (!err && value0[4 + lat]) {
			err = add_str(w, ";");
			if (!err)
				err = add(w, value0 + 5 + lat, lon);
		}
	} else if (def && def->shape == VCARD_SHAPE_STRUCT && is_part(def, vtype)) {
		/* Components in the table's order, whatever order the xCard has. */
		for (size_t k = 0; !err && def->parts[k]; k++) {
			if (k)
				err = add_str(w, ";");
			if (!err)
				err = add_values(w, prop, def->parts[k], ',');
		}
	} else if (def && def->shape == VCARD_SHAPE_ORG) {
		err = add_values(w, prop, NULL, ';');
	} else {
		err = add_values(w, prop, NULL, ',');
	}
	if (!err)
		err = line_end(w);
out:
	free(value0);
	free(mime);
	free(type3);
	return err;
}

/* The <vcard> to write: @root itself, or the one card of a <vcards>. */
static enum xdms_err find_card(struct writer *w, struct xml_node *root, struct xml_node **card)
{
	struct xml_node *c;

	if (is_xcard(root, "vcard")) {
		*card = root;
		return XDMS_ERR_OK;
	}
	if (!is_xcard(root, "vcards"))
		return wfail(w, XDMS_ERR_INVAL, "not an xCard: the root element is <%s>, not <vcard> or <vcards> in %s",
			     xml_node_name(root), VCARD_NS);
	c = xml_node_child(root, VCARD_NS, "vcard");
	if (!c)
		return wfail(w, XDMS_ERR_INVAL, "the <vcards> holds no <vcard>");
	if (xml_node_next(c, VCARD_NS, "vcard"))
		return wfail(w, XDMS_ERR_INVAL, "the <vcards> holds more than one <vcard>; write them one at a time");
	*card = c;
	return XDMS_ERR_OK;
}

static bool is_group_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-'))
			return false;
	return true;
}

static enum xdms_err write_card(struct writer *w, struct xml_node *card)
{
	enum xdms_err err;

	err = add_str(w, "BEGIN:VCARD");
	if (!err)
		err = line_end(w);
	if (!err)
		err = add_str(w, w->version == 3 ? "VERSION:3.0" : "VERSION:4.0");
	if (!err)
		err = line_end(w);
	for (struct xml_node *p = xml_node_child(card, VCARD_NS, NULL); !err && p; p = xml_node_next(p, VCARD_NS, NULL)) {
		if (is_xcard(p, "group")) {
			/* RFC 6351 §4: every property in a group gets the group's name as prefix. */
			char *g = xml_node_attr(p, "name");

			if (!is_group_name(g))
				err = wfail(w, XDMS_ERR_INVAL, "a <group> has the name '%s', which vCard cannot carry",
					    g ? g : "");
			for (struct xml_node *q = xml_node_child(p, VCARD_NS, NULL); !err && q;
			     q = xml_node_next(q, VCARD_NS, NULL))
				err = write_property(w, g, q);
			free(g);
		} else {
			err = write_property(w, NULL, p);
		}
	}
	if (!err)
		err = add_str(w, "END:VCARD");
	if (!err)
		err = line_end(w);
	return err;
}

enum xdms_err vcard_write(const char *xcard, size_t len, unsigned version, struct buf *out, char **why)
{
	struct writer w = { .version = version };
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct xml_node *card = NULL;
	size_t room;
	enum xdms_err err;

	if (why)
		*why = NULL;
	if (!xcard || !out || (version != 3 && version != 4)) {
		if (why)
			*why = xasprintf("vcard_write: version %u (3 or 4 are written) or no input", version);
		return XDMS_ERR_INVAL;
	}
	room = out->max_len > out->len ? out->max_len - out->len : 0;
	buf_init(&w.line, room);
	buf_init(&w.body, room);
	err = xml_parse(xcard, len, VCARD_MAX_XML_DEPTH, &doc, &issue);
	if (err) {
		err = wfail(&w, XDMS_ERR_PARSE, "the xCard is not usable XML: %s", issue.phrase);
		goto out;
	}
	err = find_card(&w, xml_doc_root_elem(doc), &card);
	if (!err)
		err = write_card(&w, card);
	if (!err && buf_append(&out[0], w.body.data, w.body.len))
		err = wfail(&w, XDMS_ERR_TOOBIG, "the vCard is larger than %zu bytes", out->max_len);
out:
	xml_doc_free(doc);
	buf_cleanup(&w.line);
	buf_cleanup(&w.body);
	if (why && err)
		*why = w.why;
	else
		free(w.why);
	return err;
}
