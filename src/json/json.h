/* SPDX-License-Identifier: MIT */
/*
 * json: JSON from and to its XML representation, the one XPath 3.1 defines
 * for fn:json-to-xml and fn:xml-to-json (namespace
 * http://www.w3.org/2005/xpath-functions: map, array, string, number,
 * boolean and null elements, members of a map named by their key
 * attribute). The IWF turns a 3rd party's JSON into this form so that an
 * administrator's XSLT 1.0 maps it, and turns a transform's output in this
 * form back into JSON.
 *
 * Parsing is jansson's (strict RFC 8259: no comments, no trailing commas,
 * no NaN, invalid UTF-8 and \u0000 refused), with duplicate keys refused and
 * every input-driven size capped by struct json_limits before anything is
 * kept. Numbers are never converted: the XML carries each number's text as
 * the input spelled it, so a 30-digit identifier is not rounded; only a
 * number no double can hold (1e400) is refused, as jansson does.
 *
 * Strings: characters XML 1.0 cannot carry (C0 controls but tab, LF and CR;
 * U+FFFE, U+FFFF) make the string (or key) written in the escaped form the
 * specification defines (escaped="true" / escaped-key="true", JSON escapes
 * with backslashes doubled); every other string is written as plain text.
 * Carriage returns are written as character references so that XML line-end
 * normalisation does not eat them. In the other direction escaped="true"
 * and escaped-key="true" are honoured.
 *
 * Pure: no logging, no globals; any thread. Results are heap buffers the
 * caller frees; error sentences (*why, heap) never contain input beyond a
 * short excerpt of a key.
 */
#ifndef XDMS_JSON_H
#define XDMS_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define JSON_XML_NS "http://www.w3.org/2005/xpath-functions"

/* The caps on one document. */
struct json_limits {
	unsigned max_depth;   /* nested arrays and objects */
	size_t max_size;      /* bytes of JSON text (in or out) */
	size_t max_members;   /* members of one object or array */
	size_t max_string;    /* bytes of one string, key or number */
};

/* Defaults: depth 64, 16 MiB, 100000 members, 1 MiB strings. */
void json_limits_init(struct json_limits *lim);

/* A parsed JSON document (opaque). */
struct json_doc;

/*
 * Parses @len bytes of JSON text under @lim. On OK *out is released with
 * json_doc_free(). PARSE for text that is not JSON (invalid UTF-8, a
 * duplicate key, a number out of range), TOOBIG for text over a cap, each
 * with *why (heap).
 */
enum xdms_err json_doc_parse(const char *data, size_t len, const struct json_limits *lim, struct json_doc **out,
			     char **why) XDMS_WUR;
void json_doc_free(struct json_doc *d);

/*
 * Appends the XML representation of @d to @out (its root element declares
 * the namespace; no XML declaration). With @key, the root gets that key
 * attribute (a member of an enclosing map the caller writes). TOOBIG when
 * @out is full. On any failure here and below, @out may hold a partial
 * result, which the caller discards.
 */
enum xdms_err json_doc_to_xml(const struct json_doc *d, const char *key, struct buf *out) XDMS_WUR;

/*
 * The string at RFC 6901 JSON Pointer @pointer ("/nextPageToken",
 * "/@odata.nextLink", "" for the root) in @d, or NULL when there is none or
 * it is not a string. Borrowed until json_doc_free().
 */
const char *json_doc_string(const struct json_doc *d, const char *pointer);

/* The integer at @pointer: false when there is none or it is not an
 * integer in the range of long long. */
bool json_doc_integer(const struct json_doc *d, const char *pointer, long long *out);

/* Parses and converts in one call (json_doc_parse, json_doc_to_xml). */
enum xdms_err json_to_xml(const char *data, size_t len, const struct json_limits *lim, struct buf *out,
			  char **why) XDMS_WUR;

/*
 * Converts @len bytes of XML in the representation above to JSON text,
 * appended to @out, under @lim (depth, members and string lengths; the
 * output is also capped by @out's own maximum). PARSE with *why (heap) for
 * XML that does not parse, an element outside the representation, a map
 * member without a key or with a key given twice, a number that is not a
 * JSON number, a boolean that is not one, bad escapes; TOOBIG over a cap.
 */
enum xdms_err json_from_xml(const char *xml, size_t len, const struct json_limits *lim, struct buf *out,
			    char **why) XDMS_WUR;

/* Appends @s (@len bytes, UTF-8) as a JSON string literal, quotes included. */
enum xdms_err json_append_string(struct buf *out, const char *s, size_t len) XDMS_WUR;

#endif
