/* SPDX-License-Identifier: MIT */
/*
 * Address books at JSON REST 3rd parties: the book calls (struct
 * iwf_book_ops) of the `http` kind with format json, so that book.c's
 * import and export serve them as they serve CardDAV.
 *
 * The book is the adapter's URL. A listing reads every page from it (or
 * from the stored sync token or delta link) as adapter_http.c does, and
 * hands the pages to the adapter's import transform, which writes one
 * entry per contact:
 *
 *   <book xmlns="urn:xdmsd:xml:iwf-book">
 *     <entry id="people/c1" etag="%EgcBAgkLLjc9GgQBAgUH">
 *       <vcard xmlns="urn:ietf:params:xml:ns:vcard-4.0">...</vcard>
 *     </entry>
 *     <entry id="people/c2" removed="true"/>
 *   </book>
 *
 * The id is the card's href; an entry without an etag gets one made of a
 * hash of its xCard, so that an unchanged contact is not written again.
 * The cards are xCard (is_xcard): book.c turns them into contacts with
 * xcard2pcc.xsl and writes contacts back through pcc2xcard.xsl.
 *
 * A write hands the adapter's export transform the same <entry> (with id
 * and etag when the item exists) holding the card's <vcard>; it writes the
 * XML representation of the item's JSON, which goes to book-create-url
 * (POST) or book-item-url (book-update-method, default PATCH). DELETE goes
 * to book-delete-url (default book-item-url). The id and ETag of the
 * written item are read from the answer (book-id, default /id; book-etag,
 * else the ETag header).
 *
 * Threads: any worker.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "json/json.h"
#include "xml/xml.h"

#define BOOK_NS "urn:xdmsd:xml:iwf-book"
#define PAGES_MAX_BYTES (64u * 1024u * 1024u)
#define ID_MAX 1024

static const char VCARDS_OPEN[] = "<vcards xmlns=\"" IWF_XCARD_NS "\"/>";

static bool is_json(const struct iwf_call *c, struct iwf_result *r)
{
	if (c->a->format == IWF_FORMAT_JSON)
		return true;
	iwf_result_set(r, 501, false, "the adapter %s (kind http, format xml) holds no address books", c->a->id);
	return false;
}

static enum xdms_err json_locate(const struct iwf_call *c, const char *remote_user, char **book_url, unsigned *calls,
				 struct iwf_result *r)
{
	(void)remote_user;
	(void)calls;
	if (!is_json(c, r))
		return XDMS_ERR_INVAL;
	*book_url = xstrdup(c->url);
	return XDMS_ERR_OK;
}

/* One <vcard> as a document of its own (<vcards> holding it; heap). */
static char *card_doc(const struct xml_node *vcard, size_t *len)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	char *out;

	if (xml_parse(VCARDS_OPEN, sizeof(VCARDS_OPEN) - 1, IWF_MAX_DEPTH, &doc, &issue))
		abort();
	xml_node_append_copy(xml_doc_root_elem(doc), vcard);
	out = xml_doc_serialize(doc, len);
	xml_doc_free(doc);
	return out;
}

static void entry_add(struct iwf_book_list *out, size_t *cap, const char *id, const char *etag)
{
	if (out->count == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		out->entries = xrealloc(out->entries, *cap * sizeof(*out->entries));
	}
	out->entries[out->count].href = xstrdup(id);
	out->entries[out->count++].etag = etag ? xstrdup(etag) : NULL;
}

enum xdms_err iwf_json_book_read(const char *adapter_id, const char *xml, size_t len, struct iwf_book_list *out,
				 iwf_card_fn fn, void *arg, struct iwf_result *r)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct xml_node *root;
	size_t cap = 0;
	enum xdms_err err = XDMS_ERR_OK;

	if (xml_parse(xml, len, IWF_MAX_DEPTH, &doc, &issue)) {
		iwf_result_set(r, 502, false, "the import transform's output is not XML: %s", issue.phrase);
		return XDMS_ERR_PARSE;
	}
	root = xml_doc_root_elem(doc);
	if (!xml_node_is(root, BOOK_NS, "book")) {
		iwf_result_set(r, 502, false, "the import transform of %s did not write a <book> of entries (" BOOK_NS
			       ")", adapter_id);
		xml_doc_free(doc);
		return XDMS_ERR_PARSE;
	}
	for (struct xml_node *e = xml_node_child(root, BOOK_NS, "entry"); e && !err;
	     e = xml_node_next(e, BOOK_NS, "entry")) {
		char *id = xml_node_attr(e, "id"), *etag = xml_node_attr(e, "etag"), *rm = xml_node_attr(e, "removed");
		struct xml_node *v = xml_node_child(e, IWF_XCARD_NS, "vcard");
		char *data = NULL, made[24];
		size_t data_len = 0;

		if (!id || !id[0] || strlen(id) > ID_MAX) {
			/* Without an id a card cannot be found again: refused
			 * here, named by its position. */
			iwf_result_set(r, 502, false, "the import transform of %s wrote an entry without a usable id",
				       adapter_id);
			err = XDMS_ERR_PARSE;
		} else if (out->count >= IWF_BOOK_MAX_CARDS) {
			iwf_result_set(r, 413, false, "the address book at %s has more than %u entries", adapter_id,
				       IWF_BOOK_MAX_CARDS);
			err = XDMS_ERR_TOOBIG;
		} else if (rm && (!strcmp(rm, "true") || !strcmp(rm, "1"))) {
			entry_add(out, &cap, id, NULL);
		} else {
			if (v)
				data = card_doc(v, &data_len);
			if (!etag || !etag[0]) {
				snprintf(made, sizeof(made), "h:%016llx",
					 (unsigned long long)(data ? fnv1a(data, data_len) : 0));
				free(etag);
				etag = xstrdup(made);
			}
			entry_add(out, &cap, id, etag);
			/* An entry without a card reaches the card's conversion,
			 * which refuses it by name. */
			if (fn)
				err = fn(arg, id, etag, data ? data : "", data_len);
		}
		free(data);
		free(id);
		free(etag);
		free(rm);
	}
	xml_doc_free(doc);
	return err;
}

static enum xdms_err json_list_cards(const struct iwf_call *c, const char *book_url, const char *token,
				     struct iwf_book_list *out, iwf_card_fn fn, void *arg, struct iwf_result *r)
{
	struct iwf_call cc = *c;
	struct iwf_sync s = { 0 };
	struct buf pages;
	char *xml = NULL;
	size_t xml_len = 0, cap;
	enum xdms_err err;

	memset(out, 0, sizeof(*out));
	if (!is_json(c, r))
		return XDMS_ERR_INVAL;
	s.used = token && token[0] ? xstrdup(token) : NULL;
	cc.url = book_url;
	cc.sync = &s;
	cap = c->a->max_response * (size_t)(c->a->max_pages ? c->a->max_pages : 1) * 2;
	buf_init(&pages, cap > PAGES_MAX_BYTES ? PAGES_MAX_BYTES : cap);
	err = iwf_http_fetch_pages(&cc, &pages, r);
	out->calls = s.pages;
	if (!err)
		err = iwf_job_transform(c->env, c->a->import_xslt, pages.data ? pages.data : "", pages.len, c->xui,
					c->remote_user, PAGES_MAX_BYTES, &xml, &xml_len, r);
	if (!err)
		err = iwf_json_book_read(c->a->id, xml, xml_len, out, fn, arg, r);
	if (!err) {
		out->is_full = !s.is_delta;
		out->is_sync = true;
		out->was_reset = s.is_reset;
		out->token = s.next;
		s.next = NULL;
	}
	free(xml);
	buf_cleanup(&pages);
	iwf_sync_cleanup(&s);
	return err;
}

static enum xdms_err json_list(const struct iwf_call *c, const char *book_url, const char *token,
			       struct iwf_book_list *out, struct iwf_result *r)
{
	return json_list_cards(c, book_url, token, out, NULL, NULL, r);
}

/* fetch: one full listing, the cards asked for handed on. */
struct wanted {
	const char *const *hrefs;
	size_t count;
	iwf_card_fn fn;
	void *arg;
};

static enum xdms_err on_wanted(void *arg, const char *href, const char *etag, const char *data, size_t len)
{
	struct wanted *w = arg;

	for (size_t i = 0; i < w->count; i++)
		if (!strcmp(w->hrefs[i], href))
			return w->fn(w->arg, href, etag, data, len);
	return XDMS_ERR_OK;
}

static enum xdms_err json_fetch(const struct iwf_call *c, const char *book_url, const char *const *hrefs,
				size_t count, iwf_card_fn fn, void *arg, unsigned *calls, struct iwf_result *r)
{
	struct wanted w = { hrefs, count, fn, arg };
	struct iwf_book_list l = { 0 };
	enum xdms_err err;

	if (!count)
		return XDMS_ERR_OK;
	err = json_list_cards(c, book_url, NULL, &l, on_wanted, &w, r);
	*calls += l.calls;
	iwf_book_list_cleanup(&l);
	return err;
}

/* ---- writes ----------------------------------------------------------------------------------- */

char *iwf_json_book_item_path(const char *tmpl, const char *id)
{
	const char *at = strstr(tmpl, "{id}");
	struct buf b;

	if (!at || !id)
		return xstrdup(tmpl);
	for (const char *p = id; *p || p == id; p += strcspn(p, "/"), p += *p == '/') {
		size_t n = strcspn(p, "/");

		if (!id[0] || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return NULL;
	}
	buf_init(&b, strlen(tmpl) + 3 * strlen(id) + 1);
	if (buf_append(&b, tmpl, (size_t)(at - tmpl)))
		abort(); /* sized above */
	for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
		bool is_plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
				strchr("-._~/", *p);

		if (is_plain ? buf_append(&b, p, 1) : buf_printf(&b, "%%%02X", *p))
			abort();
	}
	/* Braces of the id's own are encoded: the rest is the template's. */
	if (buf_append_str(&b, at + 4))
		abort();
	return buf_take(&b, NULL);
}

/* @tmpl expanded as the adapter's URL is, with {id} for @id; NULL with @r
 * set when it cannot be. */
static char *item_url(const struct iwf_call *c, const char *tmpl, const char *id, struct iwf_result *r)
{
	char *head = iwf_json_book_item_path(tmpl, id), *url = NULL, *why = NULL;

	if (!head) {
		iwf_result_set(r, 502, false, "the item id '%.80s' is not usable in a URL", id);
		return NULL;
	}
	if (iwf_url_expand(head, c->remote_user, c->xui, &url, &why)) {
		iwf_result_set(r, 500, false, "the adapter's book URL: %s", why);
		url = NULL;
	}
	free(why);
	free(head);
	return url;
}

/* The export transform's JSON for the card @data (xCard) as item @id
 * (NULL: a new one) last seen as @etag. */
static enum xdms_err item_body(const struct iwf_call *c, const char *id, const char *etag, const char *data,
			       size_t len, struct buf *json, struct iwf_result *r)
{
	struct xml_doc *doc = NULL, *in = NULL;
	struct xml_issue issue;
	struct xml_node *v;
	struct buf b;
	struct json_limits lim;
	char *xml = NULL, *why = NULL, *text = NULL;
	size_t xml_len = 0, text_len = 0;
	enum xdms_err err = XDMS_ERR_PARSE;
	static const char shell[] = "<entry xmlns=\"" BOOK_NS "\"/>";

	if (xml_parse(data, len, IWF_MAX_DEPTH, &doc, &issue)) {
		iwf_result_set(r, 502, false, "the card is not xCard: %s", issue.phrase);
		return XDMS_ERR_PARSE;
	}
	v = xml_doc_root_elem(doc);
	if (xml_node_is(v, IWF_XCARD_NS, "vcards"))
		v = xml_node_child(v, IWF_XCARD_NS, "vcard");
	if (!xml_node_is(v, IWF_XCARD_NS, "vcard") || xml_parse(shell, sizeof(shell) - 1, IWF_MAX_DEPTH, &in, &issue)) {
		iwf_result_set(r, 502, false, "the card has no xCard <vcard>");
		goto out;
	}
	if (id)
		xml_node_set_attr(xml_doc_root_elem(in), "id", id);
	if (etag && etag[0] && strncmp(etag, "h:", 2))
		xml_node_set_attr(xml_doc_root_elem(in), "etag", etag);
	xml_node_append_copy(xml_doc_root_elem(in), v);
	text = xml_doc_serialize(in, &text_len);
	err = iwf_job_transform(c->env, c->a->export_xslt, text, text_len, c->xui, c->remote_user, c->a->max_response,
				&xml, &xml_len, r);
	if (err)
		goto out;
	json_limits_init(&lim);
	buf_init(&b, c->a->max_response);
	err = json_from_xml(xml, xml_len, &lim, &b, &why);
	if (err) {
		iwf_result_set(r, err == XDMS_ERR_TOOBIG ? 413 : 502, false,
			       "the export transform's output is not JSON in its XML form: %s", why);
		buf_cleanup(&b);
	} else {
		*json = b;
	}
out:
	free(why);
	free(xml);
	free(text);
	xml_doc_free(in);
	xml_doc_free(doc);
	return err;
}

/* The If-Match a write carries: the item's ETag when the adapter says
 * the 3rd party takes it, and the ETag is the 3rd party's (not made here). */
static const char *if_match_of(const struct iwf_call *c, const char *etag)
{
	return c->a->is_book_if_match && etag && etag[0] && strncmp(etag, "h:", 2) ? etag : NULL;
}

/* The id and ETag of a written item from its answer @answer. */
static void answer_ids(const struct iwf_call *c, const struct buf *answer, char **id, char etag[IWF_CARD_ETAG_MAX])
{
	struct json_limits lim;
	struct json_doc *d = NULL;
	char *why = NULL;
	const char *v;

	*id = NULL;
	json_limits_init(&lim);
	if (!answer->len || json_doc_parse(answer->data, answer->len, &lim, &d, &why)) {
		free(why);
		return;
	}
	v = json_doc_string(d, c->a->book_id ? c->a->book_id : "/id");
	if (v && v[0] && strlen(v) <= ID_MAX)
		*id = xstrdup(v);
	if (c->a->book_etag && (v = json_doc_string(d, c->a->book_etag)) != NULL && strlen(v) < IWF_CARD_ETAG_MAX)
		snprintf(etag, IWF_CARD_ETAG_MAX, "%s", v);
	json_doc_free(d);
}

static enum xdms_err json_create(const struct iwf_call *c, const char *book_url, const char *data, size_t len,
				 char **href, char etag[IWF_CARD_ETAG_MAX], long *status, struct iwf_result *r)
{
	struct buf json = { 0 }, answer;
	char *url;
	enum xdms_err err;

	*href = NULL;
	*status = 0;
	etag[0] = '\0';
	err = item_body(c, NULL, NULL, data, len, &json, r);
	if (err)
		return err;
	url = item_url(c, c->a->book_create_url ? c->a->book_create_url : book_url, NULL, r);
	buf_init(&answer, c->a->max_response);
	err = url ? iwf_http_write(c, "POST", url, NULL, json.data, json.len, &answer, etag, status, r) : XDMS_ERR_INVAL;
	if (!err) {
		answer_ids(c, &answer, href, etag);
		if (!*href) {
			iwf_result_set(r, 502, false, "the 3rd party's answer to a new item names no id at %s",
				       c->a->book_id ? c->a->book_id : "/id");
			err = XDMS_ERR_PARSE;
		}
	}
	buf_cleanup(&answer);
	buf_cleanup(&json);
	free(url);
	return err;
}

static enum xdms_err json_put(const struct iwf_call *c, const char *book_url, const char *href, const char *if_match,
			      const char *data, size_t len, char etag[IWF_CARD_ETAG_MAX], long *status,
			      struct iwf_result *r)
{
	struct buf json = { 0 }, answer;
	char *url, *id = NULL;
	enum xdms_err err;

	*status = 0;
	etag[0] = '\0';
	if (!if_match) {
		/* A new item: the 3rd party names it. */
		err = json_create(c, book_url, data, len, &id, etag, status, r);
		free(id);
		return err;
	}
	if (!c->a->book_item_url) {
		iwf_result_set(r, 500, false, "the adapter %s names no book-item-url to update items at", c->a->id);
		return XDMS_ERR_INVAL;
	}
	err = item_body(c, href, if_match, data, len, &json, r);
	if (err)
		return err;
	url = item_url(c, c->a->book_item_url, href, r);
	buf_init(&answer, c->a->max_response);
	err = url ? iwf_http_write(c, c->a->book_update_method ? c->a->book_update_method : "PATCH", url,
			       if_match_of(c, if_match), json.data, json.len, &answer, etag, status, r) :
		    XDMS_ERR_INVAL;
	if (!err) {
		answer_ids(c, &answer, &id, etag);
		free(id);
	}
	buf_cleanup(&answer);
	buf_cleanup(&json);
	free(url);
	return err;
}

static enum xdms_err json_del(const struct iwf_call *c, const char *book_url, const char *href, const char *if_match,
			      long *status, struct iwf_result *r)
{
	const char *tmpl = c->a->book_delete_url ? c->a->book_delete_url : c->a->book_item_url;
	struct buf answer;
	char etag[IWF_CARD_ETAG_MAX], *url;
	enum xdms_err err;

	(void)book_url;
	*status = 0;
	if (!tmpl) {
		iwf_result_set(r, 500, false, "the adapter %s names no book-item-url to delete items at", c->a->id);
		return XDMS_ERR_INVAL;
	}
	url = item_url(c, tmpl, href, r);
	if (!url)
		return XDMS_ERR_INVAL;
	buf_init(&answer, c->a->max_response);
	err = iwf_http_write(c, "DELETE", url, if_match_of(c, if_match), NULL, 0, &answer, etag, status, r);
	buf_cleanup(&answer);
	free(url);
	return err;
}

const struct iwf_book_ops iwf_json_book = {
	.locate = json_locate,
	.list = json_list,
	.fetch = json_fetch,
	.put = json_put,
	.del = json_del,
	.is_xcard = true,
	.list_cards = json_list_cards,
	.create = json_create,
};
