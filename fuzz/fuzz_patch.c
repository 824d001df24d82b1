/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for xcap-diff patches (src/notify/diff.h). Input layout,
 * as fuzz_node's (so its corpus seeds this one), split at the first three
 * NUL bytes:
 *
 *   node-selector NUL query NUL body NUL document
 *
 * The document is used only when xml_parse accepts it and the scanner reads
 * it (stored documents always passed both). Invariants checked:
 *   - for every XCAP node write that succeeds on it (PUT of the body, DELETE),
 *     diff_patch with the write's detail gives operations (or "too big"),
 *     and diff_patch_apply of them on the old document gives the new one
 *     byte for byte, except for the two cases diff.h documents (then the
 *     same canonical XML, and the difference is what the case says);
 *   - the top-down diff of the same two documents, and of the document and
 *     the body when the body is a document too (both ways), applies and
 *     gives the new document's canonical XML;
 *   - every patch is at most as long as the new document; an xcap-diff
 *     document carrying it, and an element report, are well-formed.
 * Canonical XML comes from libxml2 (an independent reader); documents it
 * cannot canonicalize (relative namespace URIs) are not compared.
 */
#include "config.h"

#include <libxml/c14n.h>
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "http/http.h"
#include "notify/diff.h"
#include "input.h"
#include "xcap/xcap.h"
#include "xml/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define DEPTH 256
#define NS "urn:test"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xml_init();
	return 0;
}

static bool well_formed(const char *d, size_t len)
{
	struct xml_doc *x = NULL;
	struct xml_issue issue;
	struct xml_scan *scan = NULL;

	if (memchr(d, '\0', len) || xml_parse(d, len, DEPTH, &x, &issue))
		return false;
	xml_doc_free(x);
	if (xml_scan_build(d, len, &scan))
		return false;
	xml_scan_free(scan);
	return true;
}

static char *c14n(const char *d, size_t len)
{
	xmlDocPtr x = xmlReadMemory(d, (int)len, NULL, NULL, XML_PARSE_NONET);
	xmlChar *out = NULL;
	char *s = NULL;

	if (!x)
		return NULL;
	if (xmlC14NDocDumpMemory(x, NULL, XML_C14N_1_0, NULL, 1, &out) >= 0 && out)
		s = xstrdup((const char *)out);
	xmlFree(out);
	xmlFreeDoc(x);
	return s;
}

/* Same canonical XML as the expected document, or that one cannot be
 * canonicalized (then nothing can be said). */
static bool same_infoset(const char *got, size_t got_len, const char *want, size_t want_len)
{
	char *cg = c14n(got, got_len), *cw = c14n(want, want_len);
	bool is_same = !cw || (cg && strcmp(cg, cw) == 0);

	free(cg);
	free(cw);
	return is_same;
}

/* The operations in a <document> of a rendered xcap-diff are well-formed. */
static void check_render(const char *ops, size_t ops_len)
{
	const char *const prefixes[] = { "p", NS, NULL };
	struct diff_document doc = { .sel = "a/users/sip:x@y/index", .prev_etag = "1", .new_etag = "2",
				     .ops = ops, .ops_len = ops_len };
	struct buf out;

	buf_init(&out, SIZE_MAX / 2);
	if (diff_render("http://x/", &doc, 1, NULL, 0, prefixes, &out) || !well_formed(out.data, out.len))
		abort();
	buf_cleanup(&out);
}

/*
 * Patch @old -> @new (with @detail or top-down), apply, check. @body is the
 * PUT body behind a detail (NULL otherwise); @is_attr says the detail is an
 * attribute write.
 */
static void check_patch(const char *old_doc, size_t old_len, const char *new_doc, size_t new_len, const char *detail,
			const char *body, size_t body_len, bool is_attr)
{
	struct buf ops;
	bool is_too_big = false;
	char *out = NULL;
	size_t out_len = 0;
	enum xdms_err err;

	buf_init(&ops, SIZE_MAX / 2);
	err = diff_patch(old_doc, old_len, new_doc, new_len, detail, NS, "p", &ops, &is_too_big);
	if (err != XDMS_ERR_OK)
		abort(); /* both documents scan */
	if (is_too_big) {
		if (ops.len)
			abort();
		goto out;
	}
	if (ops.len > new_len)
		abort();
	if (ops.len)
		check_render(ops.data, ops.len);
	err = diff_patch_apply(old_doc, old_len, ops.data ? ops.data : "", ops.len, "p", NS, &out, &out_len);
	if (err != XDMS_ERR_OK)
		abort();
	if (out_len == new_len && memcmp(out, new_doc, new_len) == 0)
		goto out;
	if (!same_infoset(out, out_len, new_doc, new_len))
		abort();
	if (detail) {
		/* The documented exceptions (diff.h), and only those. */
		bool is_value_case = is_attr && body &&
				     (memchr(body, '\t', body_len) || memchr(body, '\n', body_len) ||
				      memchr(body, '\r', body_len) || memmem(body, body_len, "]]>", 3));
		bool is_decl_case = !is_attr && out_len < new_len && memmem(new_doc, new_len, "  xmlns", 7);

		if (!is_value_case && !is_decl_case)
			abort();
	}
out:
	free(out);
	buf_cleanup(&ops);
}

/* The element report of @sel on @doc stands alone. */
static void check_node_content(const char *doc, size_t doc_len, const char *sel, const char *query)
{
	struct buf c;
	bool is_attr, exists;

	buf_init(&c, SIZE_MAX / 2);
	if (diff_node_content(doc, doc_len, sel, query, NS, &c, &is_attr, &exists) == XDMS_ERR_OK && exists &&
	    !is_attr && !well_formed(c.data, c.len))
		abort();
	buf_cleanup(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct fuzz_node_input in;
	const char *s_sel, *s_query, *body, *doc;
	size_t body_len, doc_len;
	struct xcap_selector *sel = NULL;
	struct xcap_node_result r;
	const char *why;
	bool is_attr;

	if (!fuzz_node_input_split(p, size, &in))
		return 0;
	s_sel = in.sel;
	s_query = in.query;
	body = in.body;
	body_len = in.body_len;
	doc = in.doc;
	doc_len = in.doc_len;
	if (!well_formed(doc, doc_len))
		return 0;

	/* Two arbitrary documents: the top-down diff both ways. */
	if (well_formed(body, body_len)) {
		check_patch(doc, doc_len, body, body_len, NULL, NULL, 0, false);
		check_patch(body, body_len, doc, doc_len, NULL, NULL, 0, false);
	}
	if (xcap_selector_parse(s_sel, s_query[0] ? s_query : NULL, NS, &sel, &why))
		return 0;
	is_attr = xcap_selector_kind(sel) == XCAP_NODE_ATTRIBUTE;
	check_node_content(doc, doc_len, s_sel, s_query[0] ? s_query : NULL);

	xcap_node_put(doc, doc_len, sel, body, body_len, &r);
	if ((http_status_of(r.outcome) == 200 || http_status_of(r.outcome) == 201) && well_formed(r.new_doc, r.new_len)) {
		check_patch(doc, doc_len, r.new_doc, r.new_len, r.detail, body, body_len, is_attr);
		check_patch(doc, doc_len, r.new_doc, r.new_len, NULL, NULL, 0, false);
	}
	xcap_node_result_cleanup(&r);

	xcap_node_delete(doc, doc_len, sel, &r);
	if (http_status_of(r.outcome) == 200 && well_formed(r.new_doc, r.new_len)) {
		check_patch(doc, doc_len, r.new_doc, r.new_len, r.detail, NULL, 0, is_attr);
		check_patch(doc, doc_len, r.new_doc, r.new_len, NULL, NULL, 0, false);
	}
	xcap_node_result_cleanup(&r);
	xcap_selector_free(sel);
	return 0;
}
