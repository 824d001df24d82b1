/* SPDX-License-Identifier: MIT */
/*
 * Cards out of a text/vcard body that holds several (an exported address
 * book, a CardDAV multiget's data), and the UID of an xCard, which the
 * address-book sync uses as the card's identity.
 *
 * vcard_split looks only at line starts: BEGIN:VCARD and END:VCARD lines
 * (RFC 6350 §6.1.1) delimit cards; each card is handed over as it is, so the
 * reader sees exactly the bytes the 3rd party sent. The cards are counted
 * first, so that a body over the cap is refused before any is used.
 * Pure; any thread.
 */
#include "config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "vcard/vcard.h"
#include "vcard/vcard_int.h"
#include "xml/xml.h"

/* The line [s, e) without its CR and trailing blanks is @what (any case). */
static bool line_is(const char *s, const char *e, const char *what)
{
	size_t n = strlen(what);

	while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	return (size_t)(e - s) == n && !strncasecmp(s, what, n);
}

static bool line_is_blank(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r')
			return false;
	return true;
}

/*
 * One walk over the lines. With @fn NULL it only counts (and checks the
 * framing); with @fn it hands over each card. *count gets the cards seen.
 */
static enum xdms_err walk(const char *text, size_t len, int (*fn)(void *, const char *, size_t), void *arg,
			  size_t *count, char **why)
{
	const char *p = text, *end = text + len, *card = NULL;
	unsigned line = 0, card_line = 0;

	*count = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;

		line++;
		if (!card) {
			if (line_is(p, e, "BEGIN:VCARD")) {
				card = p;
				card_line = line;
			} else if (!line_is_blank(p, e)) {
				if (why)
					*why = xasprintf("line %u: text outside BEGIN:VCARD ... END:VCARD", line);
				return XDMS_ERR_PARSE;
			}
		} else if (line_is(p, e, "END:VCARD")) {
			(*count)++;
			if (fn) {
				int rc = fn(arg, card, (size_t)(next - card));

				if (rc)
					return (enum xdms_err)rc;
			}
			card = NULL;
		} else if (line_is(p, e, "BEGIN:VCARD")) {
			if (why)
				*why = xasprintf("line %u: the card that starts at line %u has no END:VCARD", line, card_line);
			return XDMS_ERR_PARSE;
		}
		p = next;
	}
	if (card) {
		if (why)
			*why = xasprintf("line %u: the card that starts there has no END:VCARD", card_line);
		return XDMS_ERR_PARSE;
	}
	return XDMS_ERR_OK;
}

enum xdms_err vcard_split(const char *text, size_t len, size_t max_cards,
			  int (*fn)(void *arg, const char *card, size_t card_len), void *arg, char **why)
{
	size_t count;
	enum xdms_err err;

	if (why)
		*why = NULL;
	if ((!text && len) || !fn) {
		if (why)
			*why = xstrdup("vcard_split: no text or no callback");
		return XDMS_ERR_INVAL;
	}
	if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
		text += 3; /* a UTF-8 byte order mark */
		len -= 3;
	}
	err = walk(text ? text : "", len, NULL, NULL, &count, why);
	if (err)
		return err;
	if (count > max_cards) {
		if (why)
			*why = xasprintf("the body holds %zu cards, over the limit of %zu", count, max_cards);
		return XDMS_ERR_TOOBIG;
	}
	return walk(text ? text : "", len, fn, arg, &count, NULL);
}

char *vcard_uid_of_xcard(const char *xcard, size_t len)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct xml_node *root, *card, *uid;
	char *out = NULL;

	if (!xcard || xml_parse(xcard, len, VCARD_MAX_XML_DEPTH, &doc, &issue))
		return NULL;
	root = xml_doc_root_elem(doc);
	card = xml_node_is(root, VCARD_NS, "vcard") ? root : xml_node_child(root, VCARD_NS, "vcard");
	if (!xml_node_is(root, VCARD_NS, "vcard") && !xml_node_is(root, VCARD_NS, "vcards"))
		card = NULL;
	uid = xml_node_child(card, VCARD_NS, "uid");
	if (!uid) {
		/* A UID inside a group still names the card. */
		for (struct xml_node *g = xml_node_child(card, VCARD_NS, "group"); g && !uid;
		     g = xml_node_next(g, VCARD_NS, "group"))
			uid = xml_node_child(g, VCARD_NS, "uid");
	}
	if (uid) {
		struct xml_node *v = xml_node_child(uid, VCARD_NS, "uri");

		if (!v)
			v = xml_node_child(uid, VCARD_NS, "text");
		if (v)
			out = xml_node_text(v);
	}
	xml_doc_free(doc);
	return out;
}
