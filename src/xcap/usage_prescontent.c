/* SPDX-License-Identifier: MIT */
/*
 * org.openmobilealliance.pres-content (OMA Presence Content XDM): a user's
 * presence icon, a base64 image in <data> with its type in <mime-type>. The
 * XDMS refuses content a watcher could not display or that is too large:
 * the type must be an image type (image/jpeg, image/png, image/gif), the
 * encoding base64, and the decoded image at most c->max_binary bytes
 * (xcap.max_icon).
 */
#include "config.h"

#include <ctype.h>
#include <strings.h>
#include <string.h>

#include "xcap/xcap_int.h"
#include "xml/xml.h"

#define PRS_NS "urn:oma:xml:prs:pres-content"

static const char *const image_types[] = { "image/jpeg", "image/png", "image/gif" };

/* The text of element @x without surrounding white space. */
static const char *text_of(const struct xml_scan *s, uint32_t x, size_t *len)
{
	const char *p = s->data + s->elems[x].start_end;
	size_t n = s->elems[x].end_start - s->elems[x].start_end;

	while (n && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n && isspace((unsigned char)p[n - 1]))
		n--;
	*len = n;
	return p;
}

enum xdms_err xcap_check_pres_content(const struct xcap_check *c, struct xcap_error *e)
{
	const struct xml_scan *s = c->new_scan;
	uint32_t mt, enc, data;
	const char *text;
	size_t len, b64 = 0;
	bool is_image = false;

	if (!s || !s->elem_count)
		return XDMS_ERR_OK;
	mt = xcap_scan_next(s, s->elems[0].first_child, PRS_NS, "mime-type");
	if (mt != XML_SCAN_NONE) {
		text = text_of(s, mt, &len);
		for (size_t i = 0; i < sizeof(image_types) / sizeof(image_types[0]); i++)
			if (len == strlen(image_types[i]) && !strncasecmp(text, image_types[i], len))
				is_image = true;
		if (!is_image) {
			xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
				       "presence content must be image/jpeg, image/png or image/gif, not %.*s",
				       (int)(len > 64 ? 64 : len), text);
			return XDMS_ERR_CONFLICT;
		}
	}
	enc = xcap_scan_next(s, s->elems[0].first_child, PRS_NS, "encoding");
	if (enc != XML_SCAN_NONE) {
		text = text_of(s, enc, &len);
		if (len != 6 || strncasecmp(text, "base64", 6) != 0) {
			xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
				       "presence content must be sent base64-encoded, not as %.*s",
				       (int)(len > 32 ? 32 : len), text);
			return XDMS_ERR_CONFLICT;
		}
	}
	data = xcap_scan_next(s, s->elems[0].first_child, PRS_NS, "data");
	if (data == XML_SCAN_NONE || !c->max_binary)
		return XDMS_ERR_OK;
	text = text_of(s, data, &len);
	for (size_t i = 0; i < len; i++)
		if (isalnum((unsigned char)text[i]) || text[i] == '+' || text[i] == '/')
			b64++;
	/* Four base64 characters carry three bytes. */
	if (b64 / 4 * 3 > c->max_binary) {
		xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
			       "the image is about %zu bytes; this server accepts at most %zu", b64 / 4 * 3,
			       c->max_binary);
		return XDMS_ERR_CONFLICT;
	}
	return XDMS_ERR_OK;
}
