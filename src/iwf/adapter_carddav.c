/* SPDX-License-Identifier: MIT */
/*
 * The `carddav` adapter kind: address books at a CardDAV server (RFC 6352).
 *
 * Finding the book. The adapter's URL (with {remote-user} expanded) may be
 * the address book itself, the user's address-book home, a principal, or
 * only the server. A server root is first asked at its RFC 6764 well-known
 * URI (/.well-known/carddav, whose redirect is read, not followed blindly);
 * then one PROPFIND tells what the URL is: an address book is used as it
 * is; otherwise current-user-principal leads to addressbook-home-set, and a
 * Depth 1 PROPFIND of the home lists the books. The book whose last path
 * segment or displayname equals the request's <remote-user> is chosen, else
 * the only one; several books and no name is a 400 that lists them.
 *
 * Listing. sync-collection (RFC 6578) with the stored token, or an empty one
 * for everything; a 507 for the collection inside the answer means it was
 * truncated, so the next page is asked with the token it came with; a 403
 * with DAV:valid-sync-token means the token is no longer known: one full
 * listing follows. A book that does not do the REPORT (405, 501, or a 403
 * without that precondition) is listed with PROPFIND Depth 1 of getetag.
 * Tokens are opaque: stored and sent back, never looked into.
 *
 * Reading cards is addressbook-multiget in batches of BATCH hrefs, so no
 * single answer grows with the book; writing is PUT with If-Match (update)
 * or If-None-Match: * (create), and DELETE with If-Match.
 *
 * Every call goes through the worker's libcurl handle (http.c). Hrefs that
 * name another host than the adapter's URL are refused, so credentials go
 * to the configured server only; Basic credentials go over TLS only, unless
 * the adapter allows plain HTTP to a loopback host (<plain-http-loopback>).
 *
 * The kind's own fetch/send carry the PCC (the user's own card) through
 * xCard and the default transforms; the address-book target is book.c's.
 *
 * Threads: any worker; no state outside the call.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "iwf/iwf_int.h"

#define BATCH 50              /* hrefs per addressbook-multiget */
#define SYNC_PAGES_MAX 1000   /* 507-truncated pages of one listing */
#define BOOKS_MAX 256         /* collections in one home */
#define LIST_BODY_MAX (64u << 20) /* one listing answer: hrefs and ETags of IWF_BOOK_MAX_CARDS members */
#define VCARD_TYPE "text/vcard; charset=utf-8"
#define DAV_XML_TYPE "application/xml; charset=utf-8"

void iwf_book_list_cleanup(struct iwf_book_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->count; i++) {
		free(l->entries[i].href);
		free(l->entries[i].etag);
	}
	free(l->entries);
	free(l->token);
	memset(l, 0, sizeof(*l));
}

/* ---- URLs ---------------------------------------------------------------------------------- */

/* Length of "scheme://authority" of @url (0 when it is not http(s)). */
static size_t origin_len(const char *url)
{
	const char *p;

	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return 0;
	p = strstr(url, "://") + 3;
	return (size_t)(p - url) + strcspn(p, "/?#");
}

/* The path of @url ("/" when it has none). Borrowed from @url. */
static const char *url_path(const char *url)
{
	const char *p = url + origin_len(url);

	return *p ? p : "/";
}

char *iwf_dav_url(const char *book_url, const char *href)
{
	size_t o = origin_len(book_url);

	if (!o || !href || !href[0])
		return NULL;
	if (!strncmp(href, "http://", 7) || !strncmp(href, "https://", 8)) {
		if (origin_len(href) != o || strncasecmp(href, book_url, o))
			return NULL;
		return xstrdup(href);
	}
	if (href[0] == '/')
		return xasprintf("%.*s%s", (int)o, book_url, href);
	/* relative to the book (RFC 3986 §5.2, the simple case) */
	{
		const char *path = url_path(book_url), *slash = strrchr(path, '/');

		return xasprintf("%.*s%.*s/%s", (int)o, book_url, (int)(slash - path), path, href);
	}
}

/* Two paths name the same collection: equal up to a trailing slash. */
static bool same_path(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && !strncmp(a, b, la);
}

/* The last segment of a path, without a trailing slash, into @out. */
static void last_segment(const char *path, char *out, size_t cap)
{
	size_t n = strlen(path), start;

	while (n > 1 && path[n - 1] == '/')
		n--;
	start = n;
	while (start && path[start - 1] != '/')
		start--;
	snprintf(out, cap, "%.*s", (int)(n - start), path + start);
}

static bool is_loopback_host(const char *url)
{
	const char *h = url + (strncmp(url, "https://", 8) ? 7 : 8);

	if (strchr(h, '@') && strchr(h, '@') < h + strcspn(h, "/?#"))
		h = strchr(h, '@') + 1;
	return !strncmp(h, "127.", 4) || !strncmp(h, "[::1]", 5) ||
	       (!strncmp(h, "localhost", 9) && strchr(":/", h[9] ? h[9] : '/'));
}

/* ---- one WebDAV call ------------------------------------------------------------------------ */

struct dav_req {
	const char *method;
	const char *url;
	const char *depth;
	const char *body;
	size_t body_len;
	const char *content_type;
	const char *if_match;
	const char *if_none_match;
	size_t max_response;
	char *etag;     /* IWF_CARD_ETAG_MAX bytes, or NULL */
	char *location; /* LOCATION_MAX bytes, or NULL */
};

#define LOCATION_MAX 2048

/* Runs @q; the answer's body goes to @resp (created here). OK for a 2xx;
 * otherwise IO with *status and @r set as http.c classifies it. */
static enum xdms_err dav_do(const struct iwf_call *c, const struct dav_req *q, struct buf *resp, long *status,
			    struct iwf_result *r)
{
	const struct iwf_adapter *a = c->a;
	struct iwf_http_call call;

	*status = 0;
	buf_init(resp, q->max_response ? q->max_response : a->max_response);
	if (a->auth == IWF_AUTH_BASIC && !strncmp(q->url, "http://", 7) &&
	    !(a->is_plain_loopback && is_loopback_host(q->url))) {
		iwf_result_set(r, 500, false,
			       "the adapter %s would send Basic credentials over plain HTTP; use https://, or "
			       "<plain-http-loopback> for a server on this machine",
			       a->id);
		return XDMS_ERR_DENIED;
	}
	memset(&call, 0, sizeof(call));
	call.method = q->method;
	call.url = q->url;
	call.timeout_s = a->timeout_s;
	call.connect_timeout_s = a->connect_timeout_s;
	call.max_response = resp->max_len;
	call.ca_file = c->env->opt->ca_file;
	call.cancel = c->env->stopping;
	call.auth = a->auth;
	call.username = c->username;
	call.password = c->password;
	call.token = c->token;
	call.depth = q->depth;
	call.body = q->body;
	call.body_len = q->body_len;
	call.content_type = q->body ? q->content_type : NULL;
	call.if_match = q->if_match;
	call.if_none_match = q->if_none_match;
	call.etag_out = q->etag;
	call.etag_out_len = q->etag ? IWF_CARD_ETAG_MAX : 0;
	call.location_out = q->location;
	call.location_out_len = q->location ? LOCATION_MAX : 0;
	return iwf_http_do(c->curl, &call, resp, status, r);
}

/* A PROPFIND of @what at @url with @depth, parsed. */
static enum xdms_err propfind(const struct iwf_call *c, const char *url, const char *depth,
			      enum iwf_dav_propfind what, struct iwf_dav_multistatus *ms, long *status,
			      unsigned *calls, struct iwf_result *r)
{
	char *body = iwf_dav_propfind_body(what), *why = NULL;
	struct dav_req q = { "PROPFIND", url, depth, body, strlen(body), DAV_XML_TYPE, NULL, NULL,
			     what == IWF_DAV_FIND_ETAGS ? LIST_BODY_MAX : 0, NULL, NULL };
	struct buf resp;
	enum xdms_err err;

	memset(ms, 0, sizeof(*ms));
	err = dav_do(c, &q, &resp, status, r);
	(*calls)++;
	if (!err && *status != 207) {
		iwf_result_set(r, 502, false, "the CardDAV server answered PROPFIND %s with HTTP %ld, not 207",
			       url_path(url), *status);
		err = XDMS_ERR_PARSE;
	}
	if (!err && (err = iwf_dav_parse(resp.data ? resp.data : "", resp.len,
					 what == IWF_DAV_FIND_ETAGS ? IWF_BOOK_MAX_CARDS + 1 : BOOKS_MAX + 1, 0, ms,
					 &why)) != XDMS_ERR_OK)
		iwf_result_set(r, err == XDMS_ERR_TOOBIG ? 413 : 502, false, "PROPFIND %s: %s", url_path(url), why);
	free(why);
	free(body);
	buf_cleanup(&resp);
	return err;
}

/* The item of @ms that describes @url itself (the first when none matches). */
static const struct iwf_dav_item *self_item(const struct iwf_dav_multistatus *ms, const char *url)
{
	for (size_t i = 0; i < ms->count; i++)
		if (same_path(ms->items[i].href, url_path(url)))
			return &ms->items[i];
	return ms->count ? &ms->items[0] : NULL;
}

/* ---- finding the book ----------------------------------------------------------------------- */

/* The well-known URI of a server root (RFC 6764 §5): where it redirects to
 * (heap), the well-known URL itself when it answers, NULL when it does not. */
static char *well_known(const struct iwf_call *c, const char *url, unsigned *calls)
{
	char *wk = xasprintf("%.*s/.well-known/carddav", (int)origin_len(url), url), *out = NULL;
	char location[LOCATION_MAX] = "";
	char *body = iwf_dav_propfind_body(IWF_DAV_FIND_ENTRY);
	struct dav_req q = { "PROPFIND", wk, "0", body, strlen(body), DAV_XML_TYPE, NULL, NULL, 0, NULL, location };
	struct iwf_result ignored;
	struct buf resp;
	long status;

	(void)dav_do(c, &q, &resp, &status, &ignored);
	(*calls)++;
	if (status >= 300 && status < 400 && location[0])
		out = location[0] == '/' ? xasprintf("%.*s%s", (int)origin_len(url), url, location) :
					   iwf_dav_url(url, location);
	else if (status == 207)
		out = xstrdup(wk);
	buf_cleanup(&resp);
	free(body);
	free(wk);
	return out;
}

/* Chooses among the books of home @home_url. */
static enum xdms_err choose_book(const struct iwf_call *c, const char *home_url, const char *remote_user,
				 char **book_url, unsigned *calls, struct iwf_result *r)
{
	struct iwf_dav_multistatus ms;
	const struct iwf_dav_item *pick = NULL;
	char names[IWF_REASON_MAX / 2] = "", seg[256];
	size_t books = 0;
	long status;
	enum xdms_err err = propfind(c, home_url, "1", IWF_DAV_FIND_BOOKS, &ms, &status, calls, r);

	if (err)
		return err;
	for (size_t i = 0; i < ms.count; i++) {
		const struct iwf_dav_item *it = &ms.items[i];

		if (!it->is_addressbook)
			continue;
		books++;
		last_segment(it->href, seg, sizeof(seg));
		if (strlen(names) + strlen(seg) + 3 < sizeof(names))
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", names[0] ? ", " : "",
				 seg);
		if (remote_user && remote_user[0] &&
		    (!strcmp(seg, remote_user) || (it->displayname && !strcmp(it->displayname, remote_user))))
			pick = it;
		else if (books == 1 && !pick)
			pick = it;
	}
	if (books > 1 && pick && remote_user && remote_user[0]) {
		last_segment(pick->href, seg, sizeof(seg));
		if (strcmp(seg, remote_user) && (!pick->displayname || strcmp(pick->displayname, remote_user)))
			pick = NULL;
	} else if (books > 1) {
		pick = NULL;
	}
	if (!books) {
		iwf_result_set(r, 404, false, "there is no address book at %s", url_path(home_url));
		err = XDMS_ERR_NOTFOUND;
	} else if (!pick) {
		iwf_result_set(r, 400, false, "%zu address books at %s (%s): name one in <remote-user>", books,
			       url_path(home_url), names);
		err = XDMS_ERR_INVAL;
	} else if (!(*book_url = iwf_dav_url(home_url, pick->href))) {
		iwf_result_set(r, 502, false, "the address book's href names another server");
		err = XDMS_ERR_PARSE;
	}
	iwf_dav_multistatus_cleanup(&ms);
	return err;
}

static enum xdms_err carddav_locate(const struct iwf_call *c, const char *remote_user, char **book_url,
				    unsigned *calls, struct iwf_result *r)
{
	struct iwf_dav_multistatus ms = { 0 };
	const struct iwf_dav_item *self;
	char *entry = NULL, *home = NULL;
	long status;
	enum xdms_err err;

	*book_url = NULL;
	if (!strcmp(url_path(c->url), "/"))
		entry = well_known(c, c->url, calls);
	if (!entry)
		entry = xstrdup(c->url);
	err = propfind(c, entry, "0", IWF_DAV_FIND_ENTRY, &ms, &status, calls, r);
	if (err)
		goto out;
	self = self_item(&ms, entry);
	if (self && self->is_addressbook) {
		*book_url = entry;
		entry = NULL;
		goto out;
	}
	if (self && self->home) {
		home = iwf_dav_url(entry, self->home);
	} else if (self && self->principal) {
		char *principal = iwf_dav_url(entry, self->principal);
		struct iwf_dav_multistatus pm;

		if (principal && !(err = propfind(c, principal, "0", IWF_DAV_FIND_ENTRY, &pm, &status, calls, r))) {
			const struct iwf_dav_item *p = self_item(&pm, principal);

			if (p && p->home)
				home = iwf_dav_url(principal, p->home);
			iwf_dav_multistatus_cleanup(&pm);
		}
		free(principal);
		if (err)
			goto out;
	} else if (self && self->is_collection) {
		home = xstrdup(entry); /* a collection of books, as far as we can tell */
	}
	if (!home) {
		iwf_result_set(r, 404, false, "%s is not a CardDAV address book, home or principal", url_path(entry));
		err = XDMS_ERR_NOTFOUND;
		goto out;
	}
	err = choose_book(c, home, remote_user, book_url, calls, r);
out:
	iwf_dav_multistatus_cleanup(&ms);
	free(entry);
	free(home);
	return err;
}

/* ---- listing ---------------------------------------------------------------------------------- */

static void list_add(struct iwf_book_list *l, size_t *cap, const char *href, const char *etag)
{
	if (l->count == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		l->entries = xrealloc(l->entries, *cap * sizeof(*l->entries));
	}
	l->entries[l->count].href = xstrdup(href);
	l->entries[l->count].etag = etag ? xstrdup(etag) : NULL;
	l->count++;
}

/* A member of the book (not the book itself, not a sub-collection). */
static bool is_member(const struct iwf_dav_item *it, const char *book_url)
{
	size_t n = strlen(it->href);

	return !same_path(it->href, url_path(book_url)) && n && it->href[n - 1] != '/' && !it->is_collection;
}

/* PROPFIND Depth 1 of getetag: the whole book, for servers without sync. */
static enum xdms_err list_propfind(const struct iwf_call *c, const char *book_url, struct iwf_book_list *out,
				   size_t *cap, struct iwf_result *r)
{
	struct iwf_dav_multistatus ms;
	long status;
	enum xdms_err err = propfind(c, book_url, "1", IWF_DAV_FIND_ETAGS, &ms, &status, &out->calls, r);

	if (err)
		return err;
	for (size_t i = 0; i < ms.count; i++)
		if (is_member(&ms.items[i], book_url) && ms.items[i].status == 200 && ms.items[i].etag)
			list_add(out, cap, ms.items[i].href, ms.items[i].etag);
	out->is_full = true;
	iwf_dav_multistatus_cleanup(&ms);
	return XDMS_ERR_OK;
}

static enum xdms_err carddav_list(const struct iwf_call *c, const char *book_url, const char *token,
				  struct iwf_book_list *out, struct iwf_result *r)
{
	char *from = token && token[0] ? xstrdup(token) : NULL, *why = NULL;
	size_t cap = 0;
	enum xdms_err err = XDMS_ERR_OK;

	memset(out, 0, sizeof(*out));
	out->is_full = !from;
	for (unsigned page = 0;; page++) {
		char *body = iwf_dav_sync_body(from);
		struct dav_req q = { "REPORT", book_url, "0", body, strlen(body), DAV_XML_TYPE, NULL, NULL,
				     LIST_BODY_MAX, NULL, NULL };
		struct iwf_dav_multistatus ms;
		struct buf resp;
		long status;
		bool is_truncated = false;

		err = dav_do(c, &q, &resp, &status, r);
		out->calls++;
		free(body);
		if (err && status == 403 && from &&
		    iwf_dav_error_has(resp.data, resp.len, IWF_DAV_NS, "valid-sync-token") && !out->was_reset) {
			/* RFC 6578 §3.2: the token is no longer valid; one full resync. */
			buf_cleanup(&resp);
			free(from);
			from = NULL;
			out->was_reset = true;
			out->is_full = true;
			for (size_t i = 0; i < out->count; i++) {
				free(out->entries[i].href);
				free(out->entries[i].etag);
			}
			out->count = 0;
			continue;
		}
		if (err && page == 0 && !out->was_reset &&
		    (status == 405 || status == 501 || status == 400 ||
		     (status == 403 && !iwf_dav_error_has(resp.data, resp.len, IWF_DAV_NS, "valid-sync-token")))) {
			/* The book does not do sync-collection: list it all. */
			buf_cleanup(&resp);
			err = list_propfind(c, book_url, out, &cap, r);
			break;
		}
		if (!err && status != 207) {
			iwf_result_set(r, 502, false, "the CardDAV server answered sync-collection with HTTP %ld", status);
			err = XDMS_ERR_PARSE;
		}
		if (!err && (err = iwf_dav_parse(resp.data ? resp.data : "", resp.len, IWF_BOOK_MAX_CARDS + 1, 0, &ms,
						 &why)) != XDMS_ERR_OK)
			iwf_result_set(r, err == XDMS_ERR_TOOBIG ? 413 : 502, false, "sync-collection: %s", why);
		buf_cleanup(&resp);
		if (err)
			break;
		out->is_sync = true;
		for (size_t i = 0; i < ms.count; i++) {
			const struct iwf_dav_item *it = &ms.items[i];

			if (same_path(it->href, url_path(book_url))) {
				/* RFC 6578 §3.6: 507 on the collection = more to come. */
				if (it->status == 507)
					is_truncated = true;
				continue;
			}
			if (!is_member(it, book_url))
				continue;
			if (it->status == 404)
				list_add(out, &cap, it->href, NULL);
			else if (it->etag)
				list_add(out, &cap, it->href, it->etag);
		}
		free(from);
		from = ms.sync_token ? xstrdup(ms.sync_token) : NULL;
		iwf_dav_multistatus_cleanup(&ms);
		if (out->count > IWF_BOOK_MAX_CARDS) {
			iwf_result_set(r, 413, false, "the address book has more than %u cards", IWF_BOOK_MAX_CARDS);
			err = XDMS_ERR_TOOBIG;
			break;
		}
		if (!is_truncated || !from)
			break;
		if (page + 1 >= SYNC_PAGES_MAX) {
			iwf_result_set(r, 502, false, "sync-collection was still cut short after %u pages", SYNC_PAGES_MAX);
			err = XDMS_ERR_TOOBIG;
			break;
		}
	}
	if (!err && out->is_sync) {
		out->token = from;
		from = NULL;
	}
	free(from);
	free(why);
	if (err)
		iwf_book_list_cleanup(out);
	return err;
}

/* ---- cards -------------------------------------------------------------------------------------- */

static enum xdms_err carddav_fetch(const struct iwf_call *c, const char *book_url, const char *const *hrefs,
				   size_t count, iwf_card_fn fn, void *arg, unsigned *calls, struct iwf_result *r)
{
	enum xdms_err err = XDMS_ERR_OK;

	for (size_t at = 0; at < count && !err; at += BATCH) {
		size_t n = count - at < BATCH ? count - at : BATCH;
		char *body = iwf_dav_multiget_body(hrefs + at, n, 1u << 20), *why = NULL;
		struct iwf_dav_multistatus ms = { 0 };
		struct buf resp;
		long status;

		if (!body) {
			iwf_result_set(r, 502, false, "the cards' hrefs are too long to ask for");
			return XDMS_ERR_TOOBIG;
		}
		{
			struct dav_req q = { "REPORT", book_url, "1", body, strlen(body), DAV_XML_TYPE, NULL, NULL,
					     (size_t)BATCH * IWF_CARD_MAX, NULL, NULL };

			err = dav_do(c, &q, &resp, &status, r);
		}
		(*calls)++;
		free(body);
		if (!err && status != 207) {
			iwf_result_set(r, 502, false, "the CardDAV server answered addressbook-multiget with HTTP %ld",
				       status);
			err = XDMS_ERR_PARSE;
		}
		if (!err && (err = iwf_dav_parse(resp.data ? resp.data : "", resp.len, n + 1, IWF_CARD_MAX, &ms,
						 &why)) != XDMS_ERR_OK)
			iwf_result_set(r, err == XDMS_ERR_TOOBIG ? 413 : 502, false, "addressbook-multiget: %s", why);
		buf_cleanup(&resp);
		free(why);
		for (size_t i = 0; !err && i < ms.count; i++) {
			const struct iwf_dav_item *it = &ms.items[i];

			/* A card deleted since the listing is not there any more;
			 * one over the cap is passed on without its data, to be
			 * named among the refused. */
			if (it->status == 200 && it->data)
				err = fn(arg, it->href, it->etag ? it->etag : "", it->data, it->data_len);
			else if (it->status == 413)
				err = fn(arg, it->href, it->etag ? it->etag : "", NULL, it->data_len);
		}
		iwf_dav_multistatus_cleanup(&ms);
	}
	return err;
}

static enum xdms_err carddav_put(const struct iwf_call *c, const char *book_url, const char *href,
				 const char *if_match, const char *data, size_t len, char etag[IWF_CARD_ETAG_MAX],
				 long *status, struct iwf_result *r)
{
	char *url = iwf_dav_url(book_url, href);
	struct dav_req q = { "PUT", url, NULL, data, len, VCARD_TYPE, if_match, if_match ? NULL : "*", 0, etag, NULL };
	struct buf resp;
	enum xdms_err err;

	etag[0] = '\0';
	if (!url) {
		iwf_result_set(r, 502, false, "a card's href names another server");
		return XDMS_ERR_INVAL;
	}
	err = dav_do(c, &q, &resp, status, r);
	buf_cleanup(&resp);
	free(url);
	return err;
}

static enum xdms_err carddav_del(const struct iwf_call *c, const char *book_url, const char *href,
				 const char *if_match, long *status, struct iwf_result *r)
{
	char *url = iwf_dav_url(book_url, href);
	struct dav_req q = { "DELETE", url, NULL, NULL, 0, NULL, if_match, NULL, 0, NULL, NULL };
	struct buf resp;
	enum xdms_err err;

	if (!url) {
		iwf_result_set(r, 502, false, "a card's href names another server");
		return XDMS_ERR_INVAL;
	}
	err = dav_do(c, &q, &resp, status, r);
	buf_cleanup(&resp);
	free(url);
	return err;
}

static const struct iwf_book_ops carddav_book = {
	.locate = carddav_locate,
	.list = carddav_list,
	.fetch = carddav_fetch,
	.put = carddav_put,
	.del = carddav_del,
};

const struct iwf_kind iwf_kind_carddav = {
	.name = "carddav",
	.content_type = "text/vcard",
	.import_method = "REPORT",
	.export_method = "PUT",
	.import_xslt = "xcard2pcc.xsl",
	.export_xslt = "pcc2xcard.xsl",
	.auth = IWF_AUTH_BASIC,
	.fetch = iwf_book_pcc_fetch,
	.send = iwf_book_pcc_send,
	.poll = iwf_book_pcc_poll,
	.book = &carddav_book,
};
