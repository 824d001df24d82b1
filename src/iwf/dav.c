/* SPDX-License-Identifier: MIT */
/*
 * WebDAV and CardDAV bodies: the requests the `carddav` kind sends (PROPFIND,
 * the RFC 6578 sync-collection REPORT, the RFC 6352 addressbook-multiget
 * REPORT) and the multistatus answers it reads (RFC 4918 §13).
 *
 * A multistatus comes from a 3rd party, so it is untrusted input: it is
 * parsed with the project's safe parser (no network, no entities, no DTD),
 * under a depth limit, and every count and size it drives is capped before
 * anything is kept: responses per answer, the bytes of one address-data.
 * Only what the kind needs is kept per <response>: its href, its status
 * (the response's own, or the propstat that holds the properties), the
 * getetag, the address-data text, whether it is an address book or a
 * collection, and the hrefs of current-user-principal and
 * addressbook-home-set. A top-level sync-token is kept as opaque text; so is
 * every href (as sent, without its scheme and host).
 *
 * Pure: no I/O and no logging. Threads: any; nothing shared.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "xml/xml.h"

#define DAV_DEPTH 32

void iwf_dav_multistatus_cleanup(struct iwf_dav_multistatus *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->count; i++) {
		struct iwf_dav_item *it = &m->items[i];

		free(it->href);
		free(it->etag);
		free(it->data);
		free(it->principal);
		free(it->home);
		free(it->displayname);
	}
	free(m->items);
	free(m->sync_token);
	memset(m, 0, sizeof(*m));
}

/* The path of an href: an absolute URL loses its scheme and authority. */
static char *href_path(char *href)
{
	const char *p;

	if (!href)
		return NULL;
	if (strncmp(href, "http://", 7) && strncmp(href, "https://", 8))
		return href;
	p = strstr(href, "://") + 3;
	p += strcspn(p, "/");
	memmove(href, p, strlen(p) + 1);
	if (!href[0]) {
		href[0] = '/';
		href[1] = '\0';
	}
	return href;
}

/* The "NNN" of "HTTP/1.1 NNN Reason", or 0. */
static unsigned status_code(const struct xml_node *n)
{
	char *t = xml_node_text(n), *sp;
	unsigned code = 0;

	if (t && (sp = strchr(t, ' ')) != NULL)
		code = (unsigned)strtoul(sp + 1, NULL, 10);
	free(t);
	return code;
}

/* The text of @parent's DAV:href child, trimmed, as a path (heap), or NULL. */
static char *href_of(const struct xml_node *parent)
{
	return href_path(xml_trim(xml_node_text(xml_node_child(parent, IWF_DAV_NS, "href"))));
}

/* Reads the properties of one 200 propstat's <prop> into @it. */
static enum xdms_err read_props(const struct xml_node *prop, struct iwf_dav_item *it, size_t max_data,
				char **why)
{
	struct xml_node *n;

	if ((n = xml_node_child(prop, IWF_DAV_NS, "getetag")) != NULL) {
		free(it->etag);
		it->etag = xml_trim(xml_node_text(n));
	}
	if ((n = xml_node_child(prop, IWF_CARDDAV_NS, "address-data")) != NULL) {
		char *t = xml_node_text(n);

		if (t && strlen(t) > max_data) {
			/* One card over the cap costs that card, not the answer. */
			free(it->data);
			it->data = NULL;
			it->data_len = strlen(t);
			it->status = 413;
			free(t);
			return XDMS_ERR_OK;
		}
		free(it->data);
		it->data = t;
		it->data_len = t ? strlen(t) : 0;
	}
	if ((n = xml_node_child(prop, IWF_DAV_NS, "resourcetype")) != NULL) {
		it->is_collection = xml_node_child(n, IWF_DAV_NS, "collection") != NULL;
		it->is_addressbook = xml_node_child(n, IWF_CARDDAV_NS, "addressbook") != NULL;
	}
	if ((n = xml_node_child(prop, IWF_DAV_NS, "current-user-principal")) != NULL) {
		free(it->principal);
		it->principal = href_of(n);
	}
	if ((n = xml_node_child(prop, IWF_CARDDAV_NS, "addressbook-home-set")) != NULL) {
		free(it->home);
		it->home = href_of(n);
	}
	if ((n = xml_node_child(prop, IWF_DAV_NS, "displayname")) != NULL) {
		free(it->displayname);
		it->displayname = xml_trim(xml_node_text(n));
	}
	if ((n = xml_node_child(prop, IWF_DAV_NS, "supported-report-set")) != NULL) {
		for (struct xml_node *sr = xml_node_child(n, IWF_DAV_NS, "supported-report"); sr;
		     sr = xml_node_next(sr, IWF_DAV_NS, "supported-report")) {
			struct xml_node *rep = xml_node_child(sr, IWF_DAV_NS, "report");

			if (xml_node_child(rep, IWF_DAV_NS, "sync-collection"))
				it->has_sync = true;
		}
	}
	return XDMS_ERR_OK;
}

enum xdms_err iwf_dav_parse(const char *data, size_t len, size_t max_items, size_t max_data,
			    struct iwf_dav_multistatus *out, char **why)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct xml_node *root, *resp;
	size_t cap = 0;
	enum xdms_err err = XDMS_ERR_OK;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (xml_parse(data, len, DAV_DEPTH, &doc, &issue)) {
		*why = xasprintf("the answer is not usable XML: %s", issue.phrase);
		return XDMS_ERR_PARSE;
	}
	root = xml_doc_root_elem(doc);
	if (!xml_node_is(root, IWF_DAV_NS, "multistatus")) {
		*why = xstrdup("the answer is not a DAV:multistatus");
		err = XDMS_ERR_PARSE;
		goto out;
	}
	for (resp = xml_node_child(root, IWF_DAV_NS, "response"); resp && !err;
	     resp = xml_node_next(resp, IWF_DAV_NS, "response")) {
		struct iwf_dav_item *it;
		struct xml_node *st;

		if (out->count == max_items) {
			*why = xasprintf("the answer lists more than %zu resources", max_items);
			err = XDMS_ERR_TOOBIG;
			break;
		}
		if (out->count == cap) {
			cap = cap ? cap * 2 : 16;
			out->items = xrealloc(out->items, cap * sizeof(*out->items));
		}
		it = &out->items[out->count++];
		memset(it, 0, sizeof(*it));
		it->href = href_of(resp);
		if (!it->href || !it->href[0]) {
			*why = xstrdup("a DAV:response has no DAV:href");
			err = XDMS_ERR_PARSE;
			break;
		}
		/* RFC 4918 §14.24: a response carries either its own status
		 * (e.g. 404 for a member a sync reports removed) or propstats. */
		st = xml_node_child(resp, IWF_DAV_NS, "status");
		if (st)
			it->status = status_code(st);
		for (struct xml_node *ps = xml_node_child(resp, IWF_DAV_NS, "propstat"); ps && !err;
		     ps = xml_node_next(ps, IWF_DAV_NS, "propstat")) {
			unsigned code = status_code(xml_node_child(ps, IWF_DAV_NS, "status"));

			if (code >= 200 && code < 300) {
				if (it->status != 413)
					it->status = code;
				err = read_props(xml_node_child(ps, IWF_DAV_NS, "prop"), it, max_data, why);
			} else if (!it->status) {
				it->status = code;
			}
		}
	}
	if (!err) {
		struct xml_node *tok = xml_node_child(root, IWF_DAV_NS, "sync-token");

		out->sync_token = tok ? xml_trim(xml_node_text(tok)) : NULL;
	}
out:
	xml_doc_free(doc);
	if (err)
		iwf_dav_multistatus_cleanup(out);
	return err;
}

bool iwf_dav_error_has(const char *data, size_t len, const char *ns, const char *name)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	bool has;

	if (!data || !len || xml_parse(data, len, DAV_DEPTH, &doc, &issue))
		return false;
	has = xml_node_is(xml_doc_root_elem(doc), IWF_DAV_NS, "error") &&
	      xml_node_child(xml_doc_root_elem(doc), ns, name) != NULL;
	xml_doc_free(doc);
	return has;
}

/* ---- request bodies ---------------------------------------------------------------------- */

#define DAV_XML_HEAD "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"

char *iwf_dav_propfind_body(enum iwf_dav_propfind what)
{
	switch (what) {
	case IWF_DAV_FIND_ENTRY:
		/* Where the adapter's URL points: a book, a home, a principal,
		 * or a server root (RFC 6352 §7.1, RFC 5397). */
		return xstrdup(DAV_XML_HEAD "<D:propfind xmlns:D=\"DAV:\" xmlns:C=\"" IWF_CARDDAV_NS "\"><D:prop>"
					    "<D:resourcetype/><D:current-user-principal/><C:addressbook-home-set/>"
					    "<D:supported-report-set/></D:prop></D:propfind>");
	case IWF_DAV_FIND_BOOKS:
		return xstrdup(DAV_XML_HEAD "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/><D:displayname/>"
					    "<D:supported-report-set/></D:prop></D:propfind>");
	case IWF_DAV_FIND_ETAGS:
	default:
		return xstrdup(DAV_XML_HEAD "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/><D:getetag/>"
					    "</D:prop></D:propfind>");
	}
}

char *iwf_dav_sync_body(const char *token)
{
	struct buf b;

	buf_init(&b, 16384);
	/* RFC 6578 §3.2: an empty sync-token element asks for everything. */
	if (buf_append_str(&b, DAV_XML_HEAD "<D:sync-collection xmlns:D=\"DAV:\"><D:sync-token>") ||
	    (token && buf_append_xml_escaped(&b, token, strlen(token))) ||
	    buf_append_str(&b, "</D:sync-token><D:sync-level>1</D:sync-level>"
			       "<D:prop><D:getetag/></D:prop></D:sync-collection>")) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}

char *iwf_dav_multiget_body(const char *const *hrefs, size_t count, size_t max_len)
{
	struct buf b;
	enum xdms_err err;

	buf_init(&b, max_len);
	err = buf_append_str(&b, DAV_XML_HEAD "<C:addressbook-multiget xmlns:D=\"DAV:\" xmlns:C=\"" IWF_CARDDAV_NS
					      "\"><D:prop><D:getetag/><C:address-data/></D:prop>");
	for (size_t i = 0; i < count && !err; i++) {
		err = buf_append_str(&b, "<D:href>");
		if (!err)
			err = buf_append_xml_escaped(&b, hrefs[i], strlen(hrefs[i]));
		if (!err)
			err = buf_append_str(&b, "</D:href>");
	}
	if (!err)
		err = buf_append_str(&b, "</C:addressbook-multiget>");
	if (err) {
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b, NULL);
}
