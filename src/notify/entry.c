/* SPDX-License-Identifier: MIT */
/*
 * Resource-list entries: the resource selectors of a subscription, read from
 * a SUBSCRIBE's resource-lists body (RFC 4826) or from a stored record, and
 * their matching against store keys.
 *
 * Design: an entry is a document (store key), a collection (a key prefix
 * ending in "/": every document below, including later ones) or a node
 * (document key plus a decoded node selector, "/~~/"). Parsing checks the
 * selector against our grammar (xcap_uri_parse, xcap_selector_parse) and who
 * may watch it: a user only below users/<own XUI>/ (SPEC §2.3).
 *
 * Invariants: an entry's key is a valid store key (or prefix) of a known
 * AUID; entry_cleanup() leaves it zeroed.
 *
 * Threads: pure functions of the notifier's configuration; any thread.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "notify/notify_int.h"

/* ---- selectors ----------------------------------------------------------------------------- */

/* A store key as a URI path relative to the XCAP root: each byte that is not
 * a pchar (RFC 3986) is percent-encoded; "/" separates segments. */
char *key_to_sel(const char *key)
{
	struct buf b;

	buf_init(&b, 3 * strlen(key) + 1);
	if (xcap_percent_encode(&b, key, strlen(key)))
		abort(); /* the buffer holds three bytes per byte */
	return buf_take(&b, NULL);
}

const char *auid_prefix(const struct notifier *n, const struct xcap_auid *a)
{
	for (size_t i = 0; i < n->prefix_count; i++)
		if (n->prefixes[i].auid == a)
			return n->prefixes[i].prefix;
	return "d";
}

const struct xcap_auid *auid_of_key(const struct notifier *n, const char *key)
{
	const char *slash = strchr(key, '/');
	char name[256];

	if (!slash || (size_t)(slash - key) >= sizeof(name))
		return NULL;
	memcpy(name, key, (size_t)(slash - key));
	name[slash - key] = '\0';
	return xcap_registry_find(n->reg, name);
}

void entry_cleanup(struct entry *e)
{
	free(e->text);
	free(e->key);
	free(e->sel);
	free(e->node_sel);
	free(e->query);
	memset(e, 0, sizeof(*e));
}

/*
 * Reads one resource selector (relative to the XCAP root, or an absolute
 * http(s) URI below it) into @e and checks that @identity may watch it.
 * Returns 0, or the SIP status to refuse with (*why says why).
 */
int entry_parse(const struct notifier *n, const char *text, const char *identity, bool is_privileged,
		struct entry *e, const char **why)
{
	const char *rel = text, *q;
	char *path = NULL, *query = NULL;
	size_t rp = strlen(n->root_path);
	struct xcap_uri uri = { 0 };
	enum xdms_err err;
	int status = 400;

	memset(e, 0, sizeof(*e));
	if (strlen(text) > ENTRY_MAX || strpbrk(text, "\r\n\t ")) {
		*why = "malformed resource selector";
		return 400;
	}
	if (strncmp(rel, "http://", 7) == 0 || strncmp(rel, "https://", 8) == 0) {
		rel = strchr(strstr(rel, "//") + 2, '/');
		if (!rel) {
			*why = "resource selector outside the XCAP root";
			return 403;
		}
	}
	if (*rel == '/') {
		if (rp && strncmp(rel, n->root_path, rp) == 0 && rel[rp] == '/')
			rel += rp;
		else if (rp) {
			*why = "resource selector outside the XCAP root";
			return 403;
		}
		rel++;
	}
	q = strchr(rel, '?');
	path = xasprintf("%s/%.*s", n->root_path, (int)(q ? (size_t)(q - rel) : strlen(rel)), rel);
	query = q ? xstrdup(q + 1) : NULL;
	e->text = xstrdup(rel);
	if (!q && rel[0] && rel[strlen(rel) - 1] == '/') {
		/* A collection: AUID/, AUID/users/, AUID/users/XUI/..., AUID/global/... */
		struct buf b;
		const char *p = rel;

		e->kind = ENTRY_COLL;
		buf_init(&b, STORE_SELECTOR_MAX);
		while (*p) {
			const char *slash = strchr(p, '/');
			char *seg = NULL;

			if (slash == p || xcap_percent_decode(p, (size_t)(slash - p), &seg) || strchr(seg, '/') ||
			    buf_append_str(&b, seg) || buf_append(&b, "/", 1)) {
				free(seg);
				buf_cleanup(&b);
				*why = "malformed collection selector";
				goto out;
			}
			free(seg);
			p = slash + 1;
		}
		e->key = buf_take(&b, NULL);
		e->auid = auid_of_key(n, e->key);
		if (!e->auid) {
			*why = "unknown application usage";
			goto out;
		}
	} else {
		err = xcap_uri_parse(n->root_path, path, query, &uri);
		if (err) {
			*why = err == XDMS_ERR_TOOBIG ? "resource selector too long" : "malformed resource selector";
			goto out;
		}
		e->auid = xcap_registry_find(n->reg, uri.auid);
		if (!e->auid) {
			*why = "unknown application usage";
			goto out;
		}
		e->key = xstrdup(uri.doc_selector);
		if (uri.node_selector) {
			struct xcap_selector *sel = NULL;
			const char *swhy = NULL;
			const char *tilde = strstr(rel, "/~~/");

			if (xcap_selector_parse(uri.node_selector, uri.query, e->auid->ns, &sel, &swhy)) {
				*why = "malformed node selector";
				goto out;
			}
			xcap_selector_free(sel);
			e->kind = ENTRY_NODE;
			e->node_sel = xstrdup(uri.node_selector);
			e->query = uri.query ? xstrdup(uri.query) : NULL;
			e->sel = tilde ? xstrndup(rel, (size_t)((q ? q : rel + strlen(rel)) - rel)) : xstrdup(rel);
		} else {
			e->kind = ENTRY_DOC;
			e->sel = key_to_sel(e->key);
		}
	}
	/* Who may watch what: a user only below users/<own XUI>/ (SPEC §2.3). */
	if (!is_privileged) {
		const char *after_auid = strchr(e->key, '/');
		size_t il = strlen(identity);

		if (!after_auid || strncmp(after_auid + 1, "users/", 6) != 0 ||
		    strncmp(after_auid + 7, identity, il) != 0 || after_auid[7 + il] != '/') {
			*why = "a user may only watch its own documents";
			status = 403;
			goto out;
		}
	}
	status = 0;
out:
	xcap_uri_cleanup(&uri);
	free(path);
	free(query);
	if (status)
		entry_cleanup(e);
	return status;
}

/* Reads the <entry uri> values of a resource-lists document. 0 or a status. */
int entries_from_body(const struct notifier *n, const char *body, size_t len, const char *identity,
		      bool is_privileged, struct entry **out, size_t *count, const char **why)
{
	struct xml_doc *doc = NULL;
	struct xml_scan *scan = NULL;
	struct xml_issue issue;
	struct entry *es = NULL;
	size_t ne = 0;
	int status = 400;

	*why = "malformed resource list";
	if (xml_parse(body, len, 32, &doc, &issue) || xml_scan_build(body, len, &scan))
		goto out;
	if (!scan->elems[0].ns || strcmp(scan->elems[0].ns, RL_NS) != 0) {
		*why = "body is not a resource-lists document";
		goto out;
	}
	for (uint32_t i = 0; i < scan->elem_count; i++) {
		const struct xml_scan_elem *el = &scan->elems[i];
		size_t ll;
		const char *local = xml_scan_elem_local(scan, i, &ll);
		uint32_t a;
		struct buf v;

		if (!el->ns || strcmp(el->ns, RL_NS) != 0 || ll != 5 || memcmp(local, "entry", 5) != 0)
			continue;
		a = xml_scan_attr_find(scan, i, "", "uri", 3);
		if (a == XML_SCAN_NONE) {
			*why = "entry without uri";
			goto out;
		}
		if (ne >= n->c->notify_max_entries) {
			*why = "too many resource selectors";
			status = 413;
			goto out;
		}
		buf_init(&v, ENTRY_MAX + 1);
		if (xml_attvalue_decode(body + scan->attrs[a].value_off, scan->attrs[a].value_len, &v) ||
		    buf_append(&v, "", 1)) {
			buf_cleanup(&v);
			*why = "malformed entry uri";
			goto out;
		}
		es = xrealloc(es, (ne + 1) * sizeof(*es));
		status = entry_parse(n, v.data, identity, is_privileged, &es[ne], why);
		buf_cleanup(&v);
		if (status)
			goto out;
		ne++;
		status = 400;
	}
	if (!ne) {
		*why = "empty resource list";
		goto out;
	}
	status = 0;
out:
	if (status) {
		for (size_t i = 0; i < ne; i++)
			entry_cleanup(&es[i]);
		free(es);
		es = NULL;
		ne = 0;
	}
	xml_scan_free(scan);
	xml_doc_free(doc);
	*out = es;
	*count = ne;
	return status;
}

bool entry_matches(const struct entry *e, const char *key)
{
	if (e->kind == ENTRY_COLL)
		return strncmp(key, e->key, strlen(e->key)) == 0;
	return strcmp(key, e->key) == 0;
}
