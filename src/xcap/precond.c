/* SPDX-License-Identifier: MIT */
/*
 * Conditional requests (RFC 7232 §3.1–3.2, §6), as XCAP uses them with one
 * strong ETag per document (RFC 4825 §8.5). Header values are lists of
 * entity tags, quoted or (as some XCAP clients send them) unquoted, or "*".
 */
#include "config.h"

#include <string.h>

#include "xcap/xcap.h"

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * Walks the list in @header and reports whether an element matches @etag.
 * *is_star is set when the value is "*". Strong comparison ignores weak tags.
 */
static bool list_matches(const char *header, const char *etag, bool is_weak_ok, bool *is_star)
{
	const char *p = skip_ows(header);
	size_t etag_len = etag ? strlen(etag) : 0;

	*is_star = false;
	if (p[0] == '*' && *skip_ows(p + 1) == '\0') {
		*is_star = true;
		return etag != NULL;
	}
	while (*p) {
		bool is_weak = false;
		const char *s, *e;

		p = skip_ows(p);
		if (p[0] == 'W' && p[1] == '/') {
			is_weak = true;
			p += 2;
		}
		if (*p == '"') {
			s = ++p;
			e = strchr(s, '"');
			if (!e)
				e = s + strlen(s);
			p = *e ? e + 1 : e;
		} else {
			s = p;
			e = s + strcspn(s, ", \t");
			p = e;
		}
		if (etag && (!is_weak || is_weak_ok) && (size_t)(e - s) == etag_len &&
		    memcmp(s, etag, etag_len) == 0)
			return true;
		p = skip_ows(p);
		if (*p == ',')
			p++;
		else if (*p)
			p++; /* tolerate junk between elements rather than loop forever */
	}
	return false;
}

enum xcap_precond xcap_precond_eval(const char *if_match, const char *if_none_match, const char *cur_etag,
				    bool is_read)
{
	bool is_star;

	/* RFC 7232 §6: If-Match first; If-None-Match only when it passed. */
	if (if_match) {
		if (!cur_etag || !list_matches(if_match, cur_etag, false, &is_star))
			return XCAP_PRECOND_FAILED;
	}
	if (if_none_match) {
		if (list_matches(if_none_match, cur_etag, true, &is_star))
			return is_read ? XCAP_PRECOND_NOT_MODIFIED : XCAP_PRECOND_FAILED;
	}
	return XCAP_PRECOND_OK;
}
