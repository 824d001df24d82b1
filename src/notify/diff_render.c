/* SPDX-License-Identifier: MIT */
/*
 * Rendering an xcap-diff document (RFC 5874) from its <document>,
 * <element> and <attribute> entries, and the content of an element or
 * attribute report (diff_node_content).
 *
 * Design: the entries are checked first (a document entry carries either
 * operations or <body-not-changed/>), then written in one pass into the
 * caller's bounded buffer, attribute order as in the SPEC §2.5 fixtures.
 *
 * Threads: pure functions; any thread.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "notify/notify_int.h"
/* The node-selector grammar and evaluation live in src/xcap; the notifier
 * is the one module outside it that needs them (to read change-feed details). */
#include "xcap/xcap.h"

/* ==== rendering ============================================================================ */

static enum xdms_err attr_out(struct buf *out, const char *name, const char *value)
{
	enum xdms_err err = buf_printf(out, " %s=\"", name);

	if (!err)
		err = buf_append_xml_escaped(out, value, strlen(value));
	if (!err)
		err = buf_append_str(out, "\"");
	return err;
}

enum xdms_err diff_render(const char *xcap_root, const struct diff_document *docs, size_t doc_count,
			  const struct diff_node *nodes, size_t node_count, const char *const *prefixes,
			  struct buf *out)
{
	enum xdms_err err;

	if (!xcap_root || !out || (doc_count && !docs) || (node_count && !nodes))
		return XDMS_ERR_INVAL;
	for (size_t i = 0; prefixes && prefixes[i]; i += 2)
		if (!xml_is_free_prefix(prefixes[i]) || !prefixes[i + 1] ||
		    !prefixes[i + 1][0])
			return XDMS_ERR_INVAL;
	for (size_t i = 0; i < doc_count; i++)
		if (!docs[i].sel || (docs[i].ops && docs[i].ops_len && docs[i].is_body_not_changed))
			return XDMS_ERR_INVAL;
	for (size_t i = 0; i < node_count; i++)
		if (!nodes[i].sel)
			return XDMS_ERR_INVAL;

	err = buf_printf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-diff xmlns=\"%s\"", DIFF_NS);
	for (size_t i = 0; prefixes && prefixes[i] && !err; i += 2) {
		char name[128];

		snprintf(name, sizeof(name), "xmlns:%.100s", prefixes[i]);
		err = attr_out(out, name, prefixes[i + 1]);
	}
	if (!err)
		err = attr_out(out, "xcap-root", xcap_root);
	if (!err)
		err = buf_append_str(out, ">\n");
	for (size_t i = 0; i < doc_count && !err; i++) {
		const struct diff_document *dd = &docs[i];
		bool has_ops = dd->ops && dd->ops_len;

		/* Attribute order as in the SPEC §2.5 fixtures. */
		err = buf_append_str(out, "  <document");
		if (!err && dd->prev_etag)
			err = attr_out(out, "previous-etag", dd->prev_etag);
		if (!err && dd->new_etag)
			err = attr_out(out, "new-etag", dd->new_etag);
		if (!err)
			err = attr_out(out, "sel", dd->sel);
		if (err)
			break;
		if (dd->is_body_not_changed)
			err = buf_append_str(out, ">\n    <body-not-changed/>\n  </document>\n");
		else if (has_ops)
			err = buf_append_str(out, ">\n");
		else
			err = buf_append_str(out, "/>\n");
		if (!err && has_ops) {
			err = buf_append(out, dd->ops, dd->ops_len);
			if (!err && dd->ops[dd->ops_len - 1] != '\n')
				err = buf_append_str(out, "\n");
			if (!err)
				err = buf_append_str(out, "  </document>\n");
		}
	}
	for (size_t i = 0; i < node_count && !err; i++) {
		const struct diff_node *dn = &nodes[i];
		const char *name = dn->is_attribute ? "attribute" : "element";

		err = buf_printf(out, "  <%s", name);
		if (!err)
			err = attr_out(out, "sel", dn->sel);
		if (!err && !dn->exists)
			err = buf_append_str(out, " exists=\"0\"/>\n");
		else if (!err && !dn->content_len)
			err = buf_append_str(out, "/>\n");
		else if (!err) {
			err = buf_append_str(out, ">");
			if (!err)
				err = dn->is_attribute ? append_value_text(out, dn->content, dn->content_len)
						       : buf_append(out, dn->content, dn->content_len);
			if (!err)
				err = buf_printf(out, "</%s>\n", name);
		}
	}
	if (!err)
		err = buf_append_str(out, "</xcap-diff>\n");
	if (err == XDMS_ERR_PARSE)
		err = XDMS_ERR_INVAL; /* an attribute value that does not decode */
	return err;
}

/* ==== element and attribute reports ========================================================= */

enum xdms_err diff_node_content(const char *doc, size_t doc_len, const char *node_selector, const char *query,
				const char *ns, struct buf *content, bool *is_attribute, bool *exists)
{
	struct xcap_selector *sel = NULL;
	struct xml_scan *scan = NULL;
	const char *why, *ans, *alocal, *aprefix;
	uint32_t e, a;
	enum xdms_err err;

	if (!doc || !node_selector || !ns || !content || !is_attribute || !exists)
		return XDMS_ERR_INVAL;
	*exists = false;
	*is_attribute = false;
	if (xcap_selector_parse(node_selector, query, ns, &sel, &why))
		return XDMS_ERR_PARSE;
	*is_attribute = xcap_selector_kind(sel) == XCAP_NODE_ATTRIBUTE;
	if (xcap_selector_kind(sel) == XCAP_NODE_NAMESPACES) {
		err = XDMS_ERR_UNSUPPORTED;
		goto out;
	}
	if (xml_scan_build(doc, doc_len, &scan)) {
		err = XDMS_ERR_PARSE;
		goto out;
	}
	err = XDMS_ERR_OK;
	/* RFC 4825 §6.3: a selector names a node only when it selects one. */
	if (xcap_selector_select(sel, scan, xcap_selector_steps(sel), &e, NULL) != 1)
		goto out;
	if (*is_attribute) {
		xcap_selector_attr(sel, &ans, &alocal, &aprefix);
		a = xml_scan_attr_find(scan, e, ans, alocal, strlen(alocal));
		if (a == XML_SCAN_NONE)
			goto out;
		err = buf_append(content, doc + scan->attrs[a].value_off, scan->attrs[a].value_len);
	} else {
		err = append_standalone(content, scan, e, false);
		if (err == XDMS_ERR_UNSUPPORTED)
			err = XDMS_ERR_PARSE; /* a prefix bound nowhere: not a stored document */
	}
	*exists = err == XDMS_ERR_OK;
out:
	xml_scan_free(scan);
	xcap_selector_free(sel);
	return err;
}
