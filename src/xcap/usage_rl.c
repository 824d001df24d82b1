/* SPDX-License-Identifier: MIT */
/*
 * resource-lists (RFC 4826 §3). Beyond the schema, RFC 4826 §3.4 makes
 * four values unique among the children of one parent element: the name of
 * a <list>, the uri of an <entry>, the ref of an <entry-ref> and the anchor
 * of an <external>. The same rules apply to the lists embedded in other
 * usages (rls-services), which call xcap_lists_check() on them.
 *
 * A conflict names the second occurrence, in document order, with a node
 * selector of 1-based positions into the submitted document, as RFC 4825
 * §11 asks of <exists field>. Values are compared exactly as decoded.
 * Duplicates are found by sorting, so a list of 10,000 entries costs
 * O(n log n), not O(n^2).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

#define RL_NS "urn:ietf:params:xml:ns:resource-lists"

struct keyed {
	char *value;
	uint32_t elem;
};

static int keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->value, y->value);

	if (c)
		return c;
	return x->elem < y->elem ? -1 : x->elem > y->elem;
}

/* The first name "<base>-N" that no child @el of @parent carries in @attr. */
static char *free_name(const struct xml_scan *scan, const struct keyed *k, size_t n, const char *base)
{
	for (unsigned i = 2; i < 1000; i++) {
		char *cand = xasprintf("%s-%u", base, i);
		bool is_taken = false;

		for (size_t j = 0; j < n && !is_taken; j++)
			is_taken = strcmp(k[j].value, cand) == 0;
		if (!is_taken)
			return cand;
		free(cand);
	}
	return NULL;
}

/*
 * Checks that the @attr values of the @el children of @parent are unique.
 * @suggest: offer an <alt-value> (for names, not for URIs).
 */
static enum xdms_err unique_children(const struct xml_scan *scan, uint32_t parent, const char *el,
				     const char *attr, bool suggest, struct xcap_error *e)
{
	struct keyed *k = NULL;
	size_t n = 0, cap = 0;
	uint32_t dup = XML_SCAN_NONE;
	const char *dup_value = NULL;
	enum xdms_err err = XDMS_ERR_OK;

	for (uint32_t c = xcap_scan_next(scan, scan->elems[parent].first_child, RL_NS, el); c != XML_SCAN_NONE;
	     c = xcap_scan_next(scan, scan->elems[c].next_sibling, RL_NS, el)) {
		char *v = xcap_scan_attr(scan, c, attr);

		if (!v)
			continue; /* optional (list@name) or left to the schema */
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			k = xrealloc(k, cap * sizeof(*k));
		}
		k[n].value = v;
		k[n].elem = c;
		n++;
	}
	if (n > 1)
		qsort(k, n, sizeof(*k), keyed_cmp);
	for (size_t i = 1; i < n; i++) {
		/* Within equal values the sort keeps document order: k[i] is a later copy. */
		if (!strcmp(k[i].value, k[i - 1].value) && (dup == XML_SCAN_NONE || k[i].elem < dup)) {
			dup = k[i].elem;
			dup_value = k[i].value;
		}
	}
	if (dup != XML_SCAN_NONE) {
		struct buf field;

		buf_init(&field, 8192);
		if (xcap_scan_path(scan, dup, &field) == XDMS_ERR_OK && buf_printf(&field, "/@%s", attr) == XDMS_ERR_OK)
			e->field = buf_take(&field, NULL);
		buf_cleanup(&field);
		xcap_error_set(e, XCAP_ERROR_UNIQUENESS_FAILURE,
			       "two <%s> elements in the same list have %s=\"%s\" (RFC 4826 section 3.4 makes it unique)",
			       el, attr, dup_value);
		if (suggest)
			e->alt_value = free_name(scan, k, n, dup_value);
		err = XDMS_ERR_CONFLICT;
	}
	for (size_t i = 0; i < n; i++)
		free(k[i].value);
	free(k);
	return err;
}

enum xdms_err xcap_lists_check(const struct xml_scan *scan, uint32_t parent, struct xcap_error *e)
{
	enum xdms_err err;

	err = unique_children(scan, parent, "list", "name", true, e);
	if (!err)
		err = unique_children(scan, parent, "entry", "uri", false, e);
	if (!err)
		err = unique_children(scan, parent, "entry-ref", "ref", false, e);
	if (!err)
		err = unique_children(scan, parent, "external", "anchor", false, e);
	for (uint32_t c = xcap_scan_next(scan, scan->elems[parent].first_child, RL_NS, "list");
	     !err && c != XML_SCAN_NONE; c = xcap_scan_next(scan, scan->elems[c].next_sibling, RL_NS, "list"))
		err = xcap_lists_check(scan, c, e);
	return err;
}

enum xdms_err xcap_check_resource_lists(const struct xcap_check *c, struct xcap_error *e)
{
	if (!c->new_scan || !c->new_scan->elem_count)
		return XDMS_ERR_OK;
	return xcap_lists_check(c->new_scan, 0, e);
}

/* The attribute whose value RFC 4826 §3.4 makes unique among siblings named
 * @local, or NULL for other elements. */
static const char *key_of(const char *local, size_t len)
{
	static const char *const keys[][2] = {
		{ "list", "name" }, { "entry", "uri" }, { "entry-ref", "ref" }, { "external", "anchor" }
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i][0]) == len && memcmp(keys[i][0], local, len) == 0)
			return keys[i][1];
	return NULL;
}

/* True when xcap_lists_check from the root reaches the children of @e: @e is
 * the root, or a <list> whose ancestors are all lists up to the root. */
static bool is_checked_parent(const struct xml_scan *scan, uint32_t e)
{
	for (; e != 0; e = scan->elems[e].parent)
		if (e == XML_SCAN_NONE || !xcap_scan_is(scan, e, RL_NS, "list"))
			return false;
	return true;
}

/*
 * An edit changes the children of one parent (the new element among its
 * siblings) and whatever is inside the new element; every other sibling set
 * is the one that was accepted before. So the edit is checked where it is:
 * the new element's key against its siblings', in one pass without sorting,
 * then the lists inside the new element as the full check would.
 */
enum xdms_err xcap_check_resource_lists_edit(const struct xcap_check *c, uint32_t edited, struct xcap_error *e)
{
	const struct xml_scan *scan = c->new_scan;
	uint32_t parent;
	const char *local, *key;
	size_t local_len;
	char *value;
	enum xdms_err err = XDMS_ERR_OK;

	if (!scan || edited == XML_SCAN_NONE || edited >= scan->elem_count || edited == 0)
		return XDMS_ERR_CONFLICT;
	parent = scan->elems[edited].parent;
	if (!is_checked_parent(scan, parent) || !scan->elems[edited].ns || strcmp(scan->elems[edited].ns, RL_NS) != 0)
		return XDMS_ERR_OK;
	local = xml_scan_elem_local(scan, edited, &local_len);
	key = key_of(local, local_len);
	if (!key)
		return XDMS_ERR_OK;
	value = xcap_scan_attr(scan, edited, key);
	if (value) {
		size_t value_len = strlen(value);
		char name[16];

		snprintf(name, sizeof(name), "%.*s", (int)local_len, local);
		for (uint32_t s = xcap_scan_next(scan, scan->elems[parent].first_child, RL_NS, name);
		     s != XML_SCAN_NONE && !err; s = xcap_scan_next(scan, scan->elems[s].next_sibling, RL_NS, name)) {
			uint32_t a = xml_scan_attr_find(scan, s, "", key, strlen(key));

			if (s != edited && a != XML_SCAN_NONE &&
			    xml_attvalue_equal(scan->data + scan->attrs[a].value_off, scan->attrs[a].value_len, value,
					       value_len))
				err = XDMS_ERR_CONFLICT;
		}
		free(value);
	}
	if (!err && local_len == 4 && memcmp(local, "list", 4) == 0)
		err = xcap_lists_check(scan, edited, e);
	return err;
}
