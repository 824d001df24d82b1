/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the XCAP node operations (RFC 4825 §8) and the
 * byte-offset scanner. Input layout, split at the first three NUL bytes:
 *
 *   node-selector NUL query NUL body NUL document
 *
 * The document is used only when xml_parse accepts it (stored documents always
 * passed it). The scanner runs on every document, accepted or not. When the
 * selector parses, GET, PUT and DELETE run and these invariants are checked:
 *   - statuses are among those documented; new_doc is set exactly on success;
 *   - a 200/201 PUT gives a well-formed document (xml_parse), and a GET of the
 *     same selector on it returns exactly the body (an element body without
 *     the white space around it);
 *   - a 200 DELETE gives a well-formed document on which the same GET is 404;
 *   - a GET of an element returns bytes that scan as one element.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "http/http.h"
#include "input.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define DEPTH 256

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xml_init();
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool well_formed(const char *d, size_t len)
{
	struct xml_doc *x = NULL;
	struct xml_issue issue;

	if (xml_parse(d, len, DEPTH, &x, &issue))
		return false;
	xml_doc_free(x);
	return true;
}

static void check_get_after_put(const struct xcap_selector *sel, const struct xcap_node_result *put,
				const char *body, size_t body_len)
{
	struct xcap_node_result g;

	if (xcap_selector_kind(sel) == XCAP_NODE_ELEMENT) {
		while (body_len && is_space(body[0])) {
			body++;
			body_len--;
		}
		while (body_len && is_space(body[body_len - 1]))
			body_len--;
	}
	xcap_node_get(put->new_doc, put->new_len, sel, &g);
	if (http_status_of(g.outcome) != 200 || g.body_len != body_len || memcmp(g.body, body, body_len) != 0)
		abort();
	xcap_node_result_cleanup(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct fuzz_node_input in;
	const char *s_sel, *s_query, *body, *doc;
	size_t body_len, doc_len;
	struct xcap_selector *sel = NULL;
	struct xcap_node_result r;
	struct xml_scan *scan = NULL;
	const char *why;

	if (!fuzz_node_input_split(p, size, &in))
		return 0;
	s_sel = in.sel;
	s_query = in.query;
	body = in.body;
	body_len = in.body_len;
	doc = in.doc;
	doc_len = in.doc_len;

	/* The scanner must survive anything. */
	if (xml_scan_build(doc, doc_len, &scan) == XDMS_ERR_OK)
		xml_scan_free(scan);
	/* libxml2 stops reading at a NUL byte, so it would accept "<a/>\0junk";
	 * such documents say nothing about node operations. */
	if (memchr(doc, '\0', doc_len) || !well_formed(doc, doc_len))
		return 0;
	if (xcap_selector_parse(s_sel, s_query[0] ? s_query : NULL, "urn:test", &sel, &why))
		return 0;

	xcap_node_get(doc, doc_len, sel, &r);
	if (http_status_of(r.outcome) != 200 && http_status_of(r.outcome) != 404 && http_status_of(r.outcome) != 500)
		abort();
	if (r.new_doc || (http_status_of(r.outcome) == 200) != (r.body != NULL))
		abort();
	if (http_status_of(r.outcome) == 200 && xcap_selector_kind(sel) == XCAP_NODE_ELEMENT) {
		if (xml_scan_build(r.body, r.body_len, &scan))
			abort();
		if (scan->elems[0].start != 0 || scan->elems[0].end != r.body_len)
			abort();
		xml_scan_free(scan);
	}
	xcap_node_result_cleanup(&r);

	xcap_node_put(doc, doc_len, sel, body, body_len, &r);
	switch (http_status_of(r.outcome)) {
	case 200:
	case 201:
		if (!r.new_doc || !r.detail || !well_formed(r.new_doc, r.new_len))
			abort();
		check_get_after_put(sel, &r, body, body_len);
		break;
	case 405:
		if (xcap_selector_kind(sel) != XCAP_NODE_NAMESPACES || r.new_doc)
			abort();
		break;
	case 409:
		if (r.new_doc || !r.error.phrase[0])
			abort();
		if ((r.error.kind == XCAP_ERROR_NO_PARENT) != (r.ancestor != NULL))
			abort();
		break;
	case 500:
		if (r.new_doc)
			abort();
		break;
	default:
		abort();
	}
	xcap_node_result_cleanup(&r);

	xcap_node_delete(doc, doc_len, sel, &r);
	switch (http_status_of(r.outcome)) {
	case 200: {
		struct xcap_node_result g;

		if (!r.new_doc || !r.detail || !well_formed(r.new_doc, r.new_len))
			abort();
		xcap_node_get(r.new_doc, r.new_len, sel, &g);
		if (http_status_of(g.outcome) == 200)
			abort();
		xcap_node_result_cleanup(&g);
		break;
	}
	case 404:
	case 405:
	case 409:
	case 500:
		if (r.new_doc)
			abort();
		break;
	default:
		abort();
	}
	xcap_node_result_cleanup(&r);
	xcap_selector_free(sel);
	return 0;
}
