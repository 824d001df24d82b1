/* SPDX-License-Identifier: MIT */
/*
 * The table of application-usage hooks, and the small helpers they share for
 * walking a scanned document. A descriptor names a hook (`hook = NAME`); the
 * registry resolves the name here when it loads the descriptor, so a typo
 * stops the server at start-up instead of silently skipping a rule.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

static const struct xcap_hook hooks[] = {
	{ "resource_lists", xcap_check_resource_lists, xcap_check_resource_lists_edit, NULL, false, NULL },
	{ "rls_services", xcap_check_rls_services, NULL, xcap_commit_rls_services, false, NULL },
	/* A request's <credentials> stay in the document only until the IWF seals
	 * them away; a NOTIFY must not carry them to subscribers meanwhile. */
	{ "cab_feature_handler", xcap_check_feature_handler, NULL, xcap_commit_feature_handler, true, "credentials" },
	{ "cab_pcc", xcap_check_pcc, NULL, NULL, false, NULL },
	{ "oma_pres_content", xcap_check_pres_content, NULL, NULL, false, NULL },
	/* Generated documents need no check; the name marks the usage for the operations (ops.c, read.c). */
	{ "xcap_directory", NULL, NULL, NULL, false, NULL },
};

const struct xcap_hook *xcap_hook_find(const char *name)
{
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
		if (strcmp(hooks[i].name, name) == 0)
			return &hooks[i];
	return NULL;
}

bool xcap_scan_is(const struct xml_scan *scan, uint32_t e, const char *ns, const char *local)
{
	size_t len;
	const char *name;

	if (e == XML_SCAN_NONE || !scan->elems[e].ns || strcmp(scan->elems[e].ns, ns) != 0)
		return false;
	name = xml_scan_elem_local(scan, e, &len);
	return len == strlen(local) && memcmp(name, local, len) == 0;
}

uint32_t xcap_scan_next(const struct xml_scan *scan, uint32_t from, const char *ns, const char *local)
{
	for (uint32_t e = from; e != XML_SCAN_NONE; e = scan->elems[e].next_sibling)
		if (xcap_scan_is(scan, e, ns, local))
			return e;
	return XML_SCAN_NONE;
}

char *xcap_scan_attr(const struct xml_scan *scan, uint32_t e, const char *local)
{
	uint32_t a = xml_scan_attr_find(scan, e, "", local, strlen(local));
	const struct xml_scan_attr *at;
	struct buf b;

	if (a == XML_SCAN_NONE)
		return NULL;
	at = &scan->attrs[a];
	buf_init(&b, at->value_len + 1);
	if (xml_attvalue_decode(scan->data + at->value_off, at->value_len, &b)) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}

enum xdms_err xcap_scan_path(const struct xml_scan *scan, uint32_t e, struct buf *out)
{
	uint32_t chain[XML_SCAN_MAX_DEPTH + 1];
	size_t n = 0;
	enum xdms_err err = XDMS_ERR_OK;

	for (uint32_t x = e; x != XML_SCAN_NONE && n < XML_SCAN_MAX_DEPTH + 1; x = scan->elems[x].parent)
		chain[n++] = x;
	while (n-- > 0 && !err) {
		uint32_t x = chain[n], parent = scan->elems[x].parent;
		size_t len, pos = 1;
		const char *name = xml_scan_elem_local(scan, x, &len);

		/* RFC 4825 §6.3: [n] counts siblings with the same expanded name. */
		if (parent != XML_SCAN_NONE) {
			for (uint32_t s = scan->elems[parent].first_child; s != x && s != XML_SCAN_NONE;
			     s = scan->elems[s].next_sibling) {
				size_t slen;
				const char *sname = xml_scan_elem_local(scan, s, &slen);

				if (slen == len && !memcmp(sname, name, len) && scan->elems[s].ns &&
				    scan->elems[x].ns && !strcmp(scan->elems[s].ns, scan->elems[x].ns))
					pos++;
			}
			err = buf_append_str(out, "/");
		}
		if (!err)
			err = buf_append(out, name, len);
		if (!err && parent != XML_SCAN_NONE)
			err = buf_printf(out, "[%zu]", pos);
	}
	return err;
}

const char *xcap_auid_secret(const struct xcap_auid *a)
{
	return a && a->hook ? a->hook->secret : NULL;
}
