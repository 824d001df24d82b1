/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the element replace checked where it happens
 * (xcap_node_replace_local, xml_scan_splice, the resource-lists check_edit,
 * the schema on the element in context) against the whole-document path,
 * which is the reference. Input layout as fuzz_node (fuzz/input.h):
 *
 *   node-selector NUL query NUL body NUL document
 *
 * Unprefixed selector steps are in the resource-lists namespace, so the seed
 * corpus holds resource-lists documents. When the document is well-formed and
 * the local path accepts the body, these must hold:
 *   - xcap_node_put gives 200 with the same new document and detail;
 *   - the spliced scan equals a scan built from the new document's bytes;
 *   - if the old document satisfies the RFC 4826 uniqueness rules and
 *     check_edit accepts the edit, the new document satisfies them;
 *   - if the old document is valid against resource-lists.xsd (a local
 *     schema) and the element in context is valid, the new document is valid.
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
#define RL_NS "urn:ietf:params:xml:ns:resource-lists"

static struct xml_schema *rl_schema;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xml_init();
	if (xml_schema_load("resource-lists.xsd", &rl_schema, NULL) || !xml_schema_is_local(rl_schema))
		abort();
	return 0;
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

static bool is_valid(const char *d, size_t len)
{
	struct xml_issue issue;

	return xml_schema_validate_bytes(rl_schema, d, len, &issue) == XDMS_ERR_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_node_input in;
	struct xcap_selector *sel = NULL;
	struct xcap_node_result local, full;
	struct xml_scan *old_scan = NULL, *rebuilt = NULL;
	struct xcap_error e = { 0 };
	const char *why;

	if (!fuzz_node_input_split((const char *)data, size, &in))
		return 0;
	if (memchr(in.doc, '\0', in.doc_len) || !well_formed(in.doc, in.doc_len))
		return 0;
	if (xcap_selector_parse(in.sel, in.query[0] ? in.query : NULL, RL_NS, &sel, &why))
		return 0;
	if (xml_scan_build(in.doc, in.doc_len, &old_scan)) {
		xcap_selector_free(sel);
		return 0;
	}
	if (!xcap_node_replace_local(in.doc, in.doc_len, old_scan, sel, in.body, in.body_len, &local)) {
		/* Refused or not applicable: nothing may be left behind. */
		if (local.new_doc || local.new_scan || local.context)
			abort();
		goto out;
	}
	xcap_node_put(in.doc, in.doc_len, sel, in.body, in.body_len, &full);
	if (http_status_of(full.outcome) != 200 || full.new_len != local.new_len ||
	    memcmp(full.new_doc, local.new_doc, full.new_len) != 0 || strcmp(full.detail, local.detail) != 0)
		abort();
	xcap_node_result_cleanup(&full);
	if (xml_scan_build(local.new_doc, local.new_len, &rebuilt) || !xml_scan_same(local.new_scan, rebuilt))
		abort();
	if (!well_formed(local.context, local.context_len))
		abort();
	{
		struct xcap_check c = { .new_scan = local.new_scan };
		bool was_unique = xcap_lists_check(old_scan, 0, &e) == XDMS_ERR_OK;

		xcap_error_cleanup(&e);
		memset(&e, 0, sizeof(e));
		if (was_unique && xcap_check_resource_lists_edit(&c, local.edited, &e) == XDMS_ERR_OK) {
			xcap_error_cleanup(&e);
			memset(&e, 0, sizeof(e));
			if (xcap_lists_check(local.new_scan, 0, &e) != XDMS_ERR_OK)
				abort();
		}
		xcap_error_cleanup(&e);
	}
	if (is_valid(in.doc, in.doc_len) && is_valid(local.context, local.context_len) &&
	    !is_valid(local.new_doc, local.new_len))
		abort();
	xcap_node_result_cleanup(&local);
out:
	xml_scan_free(rebuilt);
	xml_scan_free(old_scan);
	xcap_selector_free(sel);
	return 0;
}
