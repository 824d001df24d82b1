/* SPDX-License-Identifier: MIT */
/*
 * org.openmobilealliance.cab-pcc (SPEC §4.2). The schema leaves the order of
 * a <person-details> free, because real clients write its children in any
 * order; the rules it cannot express are checked here and refused with
 * <constraint-failure>:
 *  - at most one each of name, address, comm-addr, birth, career and
 *    media-list per <person-details>;
 *  - @pref unique among entries of the same kind (name-entry, address-entry,
 *    tel, uri-entry, media-entry) under one parent;
 *  - a <tel-string> is a tel: URI or E.164 digits.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

#define PCC_NS "urn:oma:xml:cab:pcc"

static const char *const single_groups[] = { "name", "address", "comm-addr", "birth", "career", "media-list" };

/* The entries whose @pref ranks them among siblings, and their parents. */
static const char *const pref_kinds[][2] = {
	{ "name", "name-entry" }, { "address", "address-entry" }, { "comm-addr", "tel" },
	{ "comm-addr", "uri-entry" }, { "media-list", "media-entry" },
};

static enum xdms_err check_prefs(const struct xml_scan *s, uint32_t parent, const char *kind,
				 struct xcap_error *e)
{
	for (uint32_t a = xcap_scan_next(s, s->elems[parent].first_child, PCC_NS, kind); a != XML_SCAN_NONE;
	     a = xcap_scan_next(s, s->elems[a].next_sibling, PCC_NS, kind)) {
		char *pa = xcap_scan_attr(s, a, "pref");

		if (!pa)
			continue;
		for (uint32_t b = xcap_scan_next(s, s->elems[a].next_sibling, PCC_NS, kind); b != XML_SCAN_NONE;
		     b = xcap_scan_next(s, s->elems[b].next_sibling, PCC_NS, kind)) {
			char *pb = xcap_scan_attr(s, b, "pref");
			bool is_dup = pb && strcmp(pa, pb) == 0;

			free(pb);
			if (is_dup) {
				xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
					       "two <%s> entries have pref=\"%s\"; pref ranks entries and must be unique",
					       kind, pa);
				free(pa);
				return XDMS_ERR_CONFLICT;
			}
		}
		free(pa);
	}
	return XDMS_ERR_OK;
}

/* "tel:" followed by something, or "+"? and 1 to 15 digits (E.164). */
static bool tel_string_ok(const char *raw, size_t len)
{
	size_t i = 0, digits = 0;

	while (len && isspace((unsigned char)raw[len - 1]))
		len--;
	while (i < len && isspace((unsigned char)raw[i]))
		i++;
	if (len - i > 4 && !strncmp(raw + i, "tel:", 4))
		return true;
	if (i < len && raw[i] == '+')
		i++;
	for (; i < len; i++, digits++)
		if (!isdigit((unsigned char)raw[i]))
			return false;
	return digits >= 1 && digits <= 15;
}

static enum xdms_err check_tel_strings(const struct xml_scan *s, struct xcap_error *e)
{
	for (uint32_t x = 0; x < s->elem_count; x++) {
		const struct xml_scan_elem *el = &s->elems[x];

		if (!xcap_scan_is(s, x, PCC_NS, "tel-string"))
			continue;
		if (el->first_child != XML_SCAN_NONE ||
		    !tel_string_ok(s->data + el->start_end, el->end_start - el->start_end)) {
			xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
				       "<tel-string> \"%.*s\" is neither a tel: URI nor E.164 digits",
				       (int)(el->end_start - el->start_end > 64 ? 64 : el->end_start - el->start_end),
				       s->data + el->start_end);
			return XDMS_ERR_CONFLICT;
		}
	}
	return XDMS_ERR_OK;
}

enum xdms_err xcap_check_pcc(const struct xcap_check *c, struct xcap_error *e)
{
	const struct xml_scan *s = c->new_scan;
	enum xdms_err err = XDMS_ERR_OK;

	if (!s || !s->elem_count)
		return XDMS_ERR_OK;
	for (uint32_t pd = xcap_scan_next(s, s->elems[0].first_child, PCC_NS, "person-details");
	     !err && pd != XML_SCAN_NONE; pd = xcap_scan_next(s, s->elems[pd].next_sibling, PCC_NS, "person-details")) {
		for (size_t g = 0; !err && g < sizeof(single_groups) / sizeof(single_groups[0]); g++) {
			uint32_t first = xcap_scan_next(s, s->elems[pd].first_child, PCC_NS, single_groups[g]);

			if (first != XML_SCAN_NONE &&
			    xcap_scan_next(s, s->elems[first].next_sibling, PCC_NS, single_groups[g]) != XML_SCAN_NONE) {
				xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
					       "a <person-details> has more than one <%s>; put all entries in one",
					       single_groups[g]);
				err = XDMS_ERR_CONFLICT;
			}
		}
		for (size_t k = 0; !err && k < sizeof(pref_kinds) / sizeof(pref_kinds[0]); k++) {
			for (uint32_t p = xcap_scan_next(s, s->elems[pd].first_child, PCC_NS, pref_kinds[k][0]);
			     !err && p != XML_SCAN_NONE;
			     p = xcap_scan_next(s, s->elems[p].next_sibling, PCC_NS, pref_kinds[k][0]))
				err = check_prefs(s, p, pref_kinds[k][1], e);
		}
	}
	if (!err)
		err = check_tel_strings(s, e);
	return err;
}
