/* SPDX-License-Identifier: MIT */
/*
 * rls-services (RFC 4826 §4). Each <service uri> is unique within the
 * document and, RFC 4826 §4.4, across all users: the commit hook keeps a
 * store-wide index from service URI to the document that defines it, in the
 * same transaction as the document, so a URI taken elsewhere is refused and
 * a URI is free again as soon as its document drops it. The lists embedded
 * in services follow the resource-lists uniqueness rules.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

#define RLS_NS "urn:ietf:params:xml:ns:rls-services"
#define RL_NS "urn:ietf:params:xml:ns:resource-lists"

enum xdms_err xcap_check_rls_services(const struct xcap_check *c, struct xcap_error *e)
{
	const struct xml_scan *s = c->new_scan;
	enum xdms_err err = XDMS_ERR_OK;

	if (!s || !s->elem_count)
		return XDMS_ERR_OK;
	for (uint32_t a = xcap_scan_next(s, s->elems[0].first_child, RLS_NS, "service"); !err && a != XML_SCAN_NONE;
	     a = xcap_scan_next(s, s->elems[a].next_sibling, RLS_NS, "service")) {
		char *ua = xcap_scan_attr(s, a, "uri");
		uint32_t list;

		for (uint32_t b = xcap_scan_next(s, s->elems[a].next_sibling, RLS_NS, "service");
		     ua && !err && b != XML_SCAN_NONE; b = xcap_scan_next(s, s->elems[b].next_sibling, RLS_NS, "service")) {
			char *ub = xcap_scan_attr(s, b, "uri");
			struct buf field;

			if (ub && !strcmp(ua, ub)) {
				xcap_error_set(e, XCAP_ERROR_UNIQUENESS_FAILURE,
					       "two services have uri=\"%s\" (RFC 4826 section 4.4 makes it unique)", ua);
				buf_init(&field, 8192);
				if (!xcap_scan_path(s, b, &field) && !buf_append_str(&field, "/@uri"))
					e->field = buf_take(&field, NULL);
				buf_cleanup(&field);
				err = XDMS_ERR_CONFLICT;
			}
			free(ub);
		}
		free(ua);
		/* RFC 4826 §4.2 declares the embedded <list> in this namespace with
		 * the resource-lists list type; accept it in either. */
		list = xcap_scan_next(s, s->elems[a].first_child, RLS_NS, "list");
		if (list == XML_SCAN_NONE)
			list = xcap_scan_next(s, s->elems[a].first_child, RL_NS, "list");
		if (!err && list != XML_SCAN_NONE)
			err = xcap_lists_check(s, list, e);
	}
	return err;
}

#define RLS_INDEX "rls-service-uri"

/* The service URIs of @s, as new strings, with their elements. */
static size_t service_uris(const struct xml_scan *s, char ***uris, uint32_t **elems)
{
	size_t n = 0;

	*uris = NULL;
	*elems = NULL;
	if (!s || !s->elem_count)
		return 0;
	for (uint32_t a = xcap_scan_next(s, s->elems[0].first_child, RLS_NS, "service"); a != XML_SCAN_NONE;
	     a = xcap_scan_next(s, s->elems[a].next_sibling, RLS_NS, "service")) {
		char *u = xcap_scan_attr(s, a, "uri");

		if (!u)
			continue;
		*uris = xrealloc(*uris, (n + 1) * sizeof(char *));
		*elems = xrealloc(*elems, (n + 1) * sizeof(uint32_t));
		(*uris)[n] = u;
		(*elems)[n] = a;
		n++;
	}
	return n;
}

static bool contains(char *const *list, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i], s))
			return true;
	return false;
}

/* A URI like @uri ("sip:news@x" -> "sip:news-2@x") that nobody owns. */
static char *free_uri(struct store_txn *txn, const char *uri, char *const *taken, size_t n)
{
	const char *at = strchr(uri, '@');
	int user_len = at ? (int)(at - uri) : (int)strlen(uri);
	char owner[STORE_SELECTOR_MAX + 1];

	for (unsigned i = 2; i < 100; i++) {
		char *cand = xasprintf("%.*s-%u%s", user_len, uri, i, at ? at : "");

		if (!contains(taken, n, cand) &&
		    store_index_get(txn, RLS_INDEX, cand, owner, sizeof(owner)) == XDMS_ERR_NOTFOUND)
			return cand;
		free(cand);
	}
	return NULL;
}

enum xdms_err xcap_commit_rls_services(const struct xcap_check *c, struct store_txn *txn, struct xcap_error *e)
{
	char **old_uris, **new_uris;
	uint32_t *old_elems, *new_elems;
	size_t n_old = service_uris(c->old_scan, &old_uris, &old_elems);
	size_t n_new = service_uris(c->new_scan, &new_uris, &new_elems);
	char owner[STORE_SELECTOR_MAX + 1];
	enum xdms_err err = XDMS_ERR_OK;

	for (size_t i = 0; !err && i < n_new; i++) {
		err = store_index_get(txn, RLS_INDEX, new_uris[i], owner, sizeof(owner));
		if (!err && strcmp(owner, c->selector) != 0) {
			struct buf field;

			xcap_error_set(e, XCAP_ERROR_UNIQUENESS_FAILURE,
				       "service uri \"%s\" is already defined in another document; "
				       "RFC 4826 section 4.4 makes it unique on this server",
				       new_uris[i]);
			buf_init(&field, 8192);
			if (!xcap_scan_path(c->new_scan, new_elems[i], &field) && !buf_append_str(&field, "/@uri"))
				e->field = buf_take(&field, NULL);
			buf_cleanup(&field);
			e->alt_value = free_uri(txn, new_uris[i], new_uris, n_new);
			err = XDMS_ERR_CONFLICT;
		} else if (!err || err == XDMS_ERR_NOTFOUND) {
			err = store_index_put(txn, RLS_INDEX, new_uris[i], c->selector);
		}
	}
	for (size_t i = 0; !err && i < n_old; i++) {
		if (contains(new_uris, n_new, old_uris[i]))
			continue;
		/* Released only by its owner. */
		err = store_index_get(txn, RLS_INDEX, old_uris[i], owner, sizeof(owner));
		if (!err && !strcmp(owner, c->selector))
			err = store_index_del(txn, RLS_INDEX, old_uris[i]);
		else if (err == XDMS_ERR_NOTFOUND || !err)
			err = XDMS_ERR_OK;
	}
	for (size_t i = 0; i < n_old; i++)
		free(old_uris[i]);
	for (size_t i = 0; i < n_new; i++)
		free(new_uris[i]);
	free(old_uris);
	free(old_elems);
	free(new_uris);
	free(new_elems);
	return err;
}
