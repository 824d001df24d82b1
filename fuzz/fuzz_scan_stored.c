/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the scan of stored documents (xml_scan_build_stored)
 * against the checking scan (xml_scan_build), which is the reference. The
 * input is the document. These must hold:
 *   - when the checking scan accepts, the stored scan accepts too and gives
 *     the same records, compared field by field (offsets, names, namespaces,
 *     attributes, depths, links, flags);
 *   - when the checking scan says TOOBIG, so does the stored scan (it makes
 *     the same structural steps, so it reaches the same limit);
 *   - otherwise the stored scan may accept or refuse, but whatever it
 *     accepts is a consistent tree inside the input (offsets within the
 *     length, links within the arrays), and it never reads past the input,
 *     which is copied to a buffer of exactly its size for ASan to watch.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xml/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void compare(const struct xml_scan *a, const struct xml_scan *b)
{
	if (a->len != b->len || a->elem_count != b->elem_count || a->attr_count != b->attr_count ||
	    a->string_count != b->string_count)
		abort();
	for (uint32_t i = 0; i < a->elem_count; i++) {
		const struct xml_scan_elem *x = &a->elems[i], *y = &b->elems[i];

		if (x->start != y->start || x->start_end != y->start_end || x->end_start != y->end_start ||
		    x->end != y->end || x->attrs_end != y->attrs_end || x->name_off != y->name_off ||
		    x->name_len != y->name_len || x->prefix_len != y->prefix_len || !same_str(x->ns, y->ns) ||
		    x->parent != y->parent || x->first_child != y->first_child ||
		    x->next_sibling != y->next_sibling || x->depth != y->depth || x->attr_first != y->attr_first ||
		    x->attr_count != y->attr_count || x->is_empty != y->is_empty)
			abort();
	}
	for (uint32_t i = 0; i < a->attr_count; i++) {
		const struct xml_scan_attr *x = &a->attrs[i], *y = &b->attrs[i];

		if (x->name_off != y->name_off || x->name_len != y->name_len || x->prefix_len != y->prefix_len ||
		    x->value_off != y->value_off || x->value_len != y->value_len || x->end != y->end ||
		    x->quote != y->quote || x->is_xmlns != y->is_xmlns || !same_str(x->ns, y->ns))
			abort();
	}
	if (!xml_scan_same(a, b))
		abort();
}

/* What any accepted scan must be, whatever the input. */
static void check_consistent(const struct xml_scan *s)
{
	if (!s->elem_count || s->elems[0].parent != XML_SCAN_NONE || s->elems[0].depth != 0)
		abort();
	for (uint32_t i = 0; i < s->elem_count; i++) {
		const struct xml_scan_elem *e = &s->elems[i];

		if (e->start > e->start_end || e->start_end > e->end_start || e->end_start > e->end || e->end > s->len ||
		    e->name_off + e->name_len > e->start_end || e->attrs_end > e->start_end)
			abort();
		if ((e->parent != XML_SCAN_NONE && e->parent >= i) ||
		    (e->first_child != XML_SCAN_NONE && (e->first_child <= i || e->first_child >= s->elem_count)) ||
		    (e->next_sibling != XML_SCAN_NONE && (e->next_sibling <= i || e->next_sibling >= s->elem_count)))
			abort();
		if (e->attr_first + (uint64_t)e->attr_count > s->attr_count || e->depth >= XML_SCAN_MAX_DEPTH)
			abort();
	}
	for (uint32_t i = 0; i < s->attr_count; i++) {
		const struct xml_scan_attr *a = &s->attrs[i];

		if (a->name_off + a->name_len > a->value_off || a->value_off + a->value_len >= a->end || a->end > s->len)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *doc = malloc(size ? size : 1);
	struct xml_scan *checked = NULL, *stored = NULL;
	enum xdms_err e1, e2;

	memcpy(doc, data, size);
	e1 = xml_scan_build(doc, size, &checked);
	e2 = xml_scan_build_stored(doc, size, &stored);
	if (!e2 != !!stored || !e1 != !!checked)
		abort();
	if (e1 == XDMS_ERR_OK) {
		if (e2 != XDMS_ERR_OK)
			abort();
		compare(checked, stored);
	} else if (e1 == XDMS_ERR_TOOBIG && e2 != XDMS_ERR_TOOBIG) {
		abort();
	}
	if (stored)
		check_consistent(stored);
	xml_scan_free(checked);
	xml_scan_free(stored);
	free(doc);
	return 0;
}
