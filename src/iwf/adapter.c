/* SPDX-License-Identifier: MIT */
/*
 * Adapters and their transforms, read from the store.
 *
 * An adapter is a global document of org.xdmsd.iwf-adapter named by its id
 * (schemas/iwf-adapter.xsd), so administrators manage adapters over XCAP or
 * with xdmsctl and every change has an ETag. It was validated when it was
 * stored; it is looked up again before every job, so a change applies to the
 * next job without a restart. A worker keeps the adapter it parsed last with
 * its ETag (struct iwf_adapter_memo) and parses it again only when the ETag
 * moved. The kind table gives each kind (adapter_xcap.c,
 * adapter_http.c, adapter_carddav.c) its defaults and its calls to the 3rd
 * party.
 *
 * Stylesheets are global documents of org.xdmsd.iwf-xslt, or the files under
 * xslt/ compiled into the binary. The cache compiles each (name, ETag) once
 * and keeps it until the IWF stops, so a worker may use a stylesheet without
 * holding any lock; an administrator's edit adds one entry.
 *
 * Threads: the loaders run on any worker; the cache is under its mutex.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "iwf/iwf_int.h"
#include "xml/xml.h"

#define ADAPTER_ID_MAX 128

/* The adapter kinds: one file each (adapter_<kind>.c), one row here. */
static const struct iwf_kind *const kinds[] = { &iwf_kind_xcap, &iwf_kind_http, &iwf_kind_carddav };

void iwf_result_set(struct iwf_result *r, unsigned code, bool is_transient, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	r->is_transient = is_transient;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

const struct iwf_kind *iwf_kind_find(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}

void iwf_adapter_cleanup(struct iwf_adapter *a)
{
	if (!a)
		return;
	free(a->id);
	free(a->url);
	free(a->import_method);
	free(a->export_method);
	free(a->content_type);
	free(a->import_xslt);
	free(a->export_xslt);
	free(a->token_url);
	free(a->client_id);
	free(a->scope);
	free(a->next_page_token);
	free(a->page_token_param);
	free(a->next_link);
	free(a->sync_token);
	free(a->sync_token_param);
	free(a->delta_link);
	free(a->webhook_base);
	free(a->webhook_register);
	free(a->sip_uri);
	free(a->book_create_url);
	free(a->book_item_url);
	free(a->book_delete_url);
	free(a->book_update_method);
	free(a->book_id);
	free(a->book_etag);
	memset(a, 0, sizeof(*a));
}

/* The text of @node's child @name in the adapter namespace, or NULL (heap). */
static char *child_text(const struct xml_node *node, const char *name)
{
	struct xml_node *c = xml_node_child(node, IWF_ADAPTER_NS, name);
	char *t;

	if (!c)
		return NULL;
	t = xml_node_text(c);
	return t ? t : xstrdup("");
}

static bool child_text_given(const struct xml_node *node, const char *name)
{
	return xml_node_child(node, IWF_ADAPTER_NS, name) != NULL;
}

static unsigned child_uint(const struct xml_node *node, const char *name, unsigned def)
{
	char *t = child_text(node, name);
	unsigned v = t ? (unsigned)strtoul(t, NULL, 10) : def;

	free(t);
	return v;
}

static char *or_default(char *v, const char *def)
{
	return v ? v : def ? xstrdup(def) : NULL;
}

/* An adapter id is a document name: plain characters only. */
static bool id_valid(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n < ADAPTER_ID_MAX && strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
						    "0123456789._-") == n;
}

/* Adapter @id from its stored document @data (@len bytes). */
static enum xdms_err adapter_parse(const struct iwf_options *opt, const char *id, const char *data, size_t len,
				   struct iwf_adapter *out, char **why)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	struct xml_node *root;
	char *kind = NULL, *auth = NULL, *format = NULL, *watch = NULL, *hook_style = NULL;
	enum xdms_err err = XDMS_ERR_OK;

	memset(out, 0, sizeof(*out));
	if (xml_parse(data, len, IWF_MAX_DEPTH, &doc, &issue)) {
		*why = xasprintf("adapter %s is not usable XML: %s", id, issue.phrase);
		return XDMS_ERR_PARSE;
	}
	root = xml_doc_root_elem(doc);
	kind = xml_node_attr(root, "kind");
	out->kind = kind ? iwf_kind_find(kind) : NULL;
	free(kind);
	if (!out->kind) {
		*why = xasprintf("adapter %s has no known kind", id);
		err = XDMS_ERR_PARSE;
		goto out;
	}
	out->id = xstrdup(id);
	out->url = child_text(root, "url");
	out->import_method = or_default(child_text(root, "import-method"), out->kind->import_method);
	out->export_method = or_default(child_text(root, "export-method"), out->kind->export_method);
	out->content_type = or_default(child_text(root, "content-type"), out->kind->content_type);
	out->import_xslt = or_default(child_text(root, "import-xslt"), out->kind->import_xslt);
	out->export_xslt = or_default(child_text(root, "export-xslt"), out->kind->export_xslt);
	out->timeout_s = child_uint(root, "timeout", opt->timeout_s);
	out->connect_timeout_s = child_uint(root, "connect-timeout", out->timeout_s);
	out->max_attempts = child_uint(root, "max-attempts", opt->max_attempts);
	out->max_response = child_uint(root, "max-response", (unsigned)opt->max_response);
	out->concurrency = child_uint(root, "concurrency", opt->concurrency);
	out->auth = out->kind->auth;
	{
		char *pl = child_text(root, "plain-http-loopback");

		out->is_plain_loopback = pl && (!strcmp(pl, "true") || !strcmp(pl, "1"));
		free(pl);
	}
	auth = child_text(root, "auth");
	if (auth) {
		static const char *const names[] = { "none", "basic", "bearer", "digest", "oauth2" };

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(auth, names[i]))
				out->auth = (enum iwf_auth)i;
	}
	format = child_text(root, "format");
	out->format = format && !strcmp(format, "json") ? IWF_FORMAT_JSON : IWF_FORMAT_XML;
	if (format && !child_text_given(root, "content-type")) {
		free(out->content_type);
		out->content_type = xstrdup(out->format == IWF_FORMAT_JSON ? "application/json" : "application/xml");
	}
	out->token_url = child_text(root, "token-url");
	out->client_id = child_text(root, "client-id");
	out->scope = child_text(root, "scope");
	out->next_page_token = child_text(root, "next-page-token");
	out->page_token_param = child_text(root, "page-token-param");
	out->next_link = child_text(root, "next-link");
	out->sync_token = child_text(root, "sync-token");
	out->sync_token_param = child_text(root, "sync-token-param");
	out->delta_link = child_text(root, "delta-link");
	out->max_pages = child_uint(root, "max-pages", IWF_MAX_PAGES_DEFAULT);
	out->poll_interval_s = child_uint(root, "poll-interval", IWF_POLL_DEFAULT_S);
	if (out->poll_interval_s < IWF_POLL_FLOOR_S)
		out->poll_interval_s = IWF_POLL_FLOOR_S;
	out->webhook_base = child_text(root, "webhook-base");
	out->webhook_register = child_text(root, "webhook-register");
	out->sip_uri = child_text(root, "sip-uri");
	hook_style = child_text(root, "webhook-style");
	out->hook_style = hook_style && !strcmp(hook_style, "graph") ? IWF_HOOK_GRAPH : IWF_HOOK_XDMSD;
	watch = child_text(root, "watch");
	out->watch = !watch || !strcmp(watch, "poll") ? IWF_WATCH_POLL :
		     !strcmp(watch, "webhook")	  ? IWF_WATCH_WEBHOOK :
						    IWF_WATCH_BOTH;
	out->book_create_url = child_text(root, "book-create-url");
	out->book_item_url = child_text(root, "book-item-url");
	out->book_delete_url = child_text(root, "book-delete-url");
	out->book_update_method = child_text(root, "book-update-method");
	out->book_id = child_text(root, "book-id");
	out->book_etag = child_text(root, "book-etag");
	{
		char *im = child_text(root, "book-if-match");

		out->is_book_if_match = im && (!strcmp(im, "true") || !strcmp(im, "1"));
		free(im);
	}
	if (!out->url) {
		*why = xasprintf("adapter %s has no url", id);
		err = XDMS_ERR_PARSE;
	} else if (out->auth == IWF_AUTH_OAUTH2 && (!out->token_url || !out->client_id)) {
		*why = xasprintf("adapter %s uses oauth2 but has no token-url or client-id", id);
		err = XDMS_ERR_PARSE;
	} else if ((out->next_page_token && !out->page_token_param) ||
		   (out->sync_token && !out->sync_token_param)) {
		*why = xasprintf("adapter %s names a token to send back but not the parameter to send it in", id);
		err = XDMS_ERR_PARSE;
	} else if (out->watch != IWF_WATCH_POLL && (!out->webhook_base || !out->webhook_register)) {
		*why = xasprintf("adapter %s watches by webhook but lacks webhook-base or webhook-register", id);
		err = XDMS_ERR_PARSE;
	}
out:
	free(format);
	free(auth);
	free(watch);
	free(hook_style);
	xml_doc_free(doc);
	if (err)
		iwf_adapter_cleanup(out);
	return err;
}

enum xdms_err iwf_adapter_load(struct store *st, const struct iwf_options *opt, const char *id,
			       struct iwf_adapter *out, char **why)
{
	struct iwf_adapter_memo fresh;
	const struct iwf_adapter *a;
	enum xdms_err err;

	/* An empty memo: parsed now, and the parse handed over whole. */
	memset(&fresh, 0, sizeof(fresh));
	memset(out, 0, sizeof(*out));
	err = iwf_adapter_get(st, opt, id, &fresh, &a, why);
	if (!err)
		*out = fresh.a;
	return err;
}

enum xdms_err iwf_adapter_get(struct store *st, const struct iwf_options *opt, const char *id,
			      struct iwf_adapter_memo *memo, const struct iwf_adapter **out, char **why)
{
	char selector[STORE_SELECTOR_MAX + 1];
	struct store_read *rd = NULL;
	struct store_doc d;
	struct iwf_adapter fresh;
	enum xdms_err err;

	*out = NULL;
	*why = NULL;
	if (!id_valid(id))
		return XDMS_ERR_NOTFOUND;
	snprintf(selector, sizeof(selector), "%s/global/%s", IWF_ADAPTER_AUID, id);
	err = store_read_begin(st, &rd);
	if (err)
		return err;
	err = store_doc_get(rd, selector, &d);
	if (!err && !(memo->a.id && !strcmp(memo->a.id, id) && !strcmp(memo->etag, d.etag))) {
		err = adapter_parse(opt, id, d.data, d.data_len, &fresh, why);
		if (!err) {
			iwf_adapter_cleanup(&memo->a);
			memo->a = fresh;
			snprintf(memo->etag, sizeof(memo->etag), "%s", d.etag);
		}
	}
	store_read_end(rd);
	if (!err)
		*out = &memo->a;
	return err;
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

static enum xdms_err append_encoded(struct buf *b, const char *v)
{
	enum xdms_err err = XDMS_ERR_OK;

	for (const unsigned char *p = (const unsigned char *)v; *p && !err; p++)
		err = is_unreserved(*p) ? buf_append(b, p, 1) : buf_printf(b, "%%%02X", *p);
	return err;
}

enum xdms_err iwf_url_expand(const char *tmpl, const char *remote_user, const char *xui, char **out, char **why)
{
	struct buf b;
	const char *p = tmpl;
	enum xdms_err err = XDMS_ERR_OK;

	*out = NULL;
	*why = NULL;
	if (strncmp(tmpl, "http://", 7) != 0 && strncmp(tmpl, "https://", 8) != 0) {
		*why = xstrdup("the adapter's url is not an http:// or https:// URL");
		return XDMS_ERR_INVAL;
	}
	buf_init(&b, 8192);
	while (*p && !err) {
		const char *open = strchr(p, '{'), *close;

		if (!open) {
			err = buf_append_str(&b, p);
			break;
		}
		err = buf_append(&b, p, (size_t)(open - p));
		close = strchr(open, '}');
		if (err)
			break;
		if (close && (size_t)(close - open) == 12 && !strncmp(open, "{remote-user}", 13)) {
			if (!remote_user || !remote_user[0]) {
				*why = xstrdup("the adapter's url needs {remote-user} but the request has no <remote-user>");
				err = XDMS_ERR_INVAL;
				break;
			}
			err = append_encoded(&b, remote_user);
		} else if (close && (size_t)(close - open) == 4 && !strncmp(open, "{xui}", 5)) {
			err = append_encoded(&b, xui);
		} else {
			*why = xasprintf("the adapter's url has an unknown placeholder at '%.20s'", open);
			err = XDMS_ERR_INVAL;
			break;
		}
		p = close + 1;
	}
	if (err) {
		if (!*why)
			*why = xstrdup("the adapter's url is too long once expanded");
		buf_cleanup(&b);
		return XDMS_ERR_INVAL;
	}
	*out = buf_take(&b, NULL);
	return XDMS_ERR_OK;
}

enum xdms_err iwf_adapter_url(const struct iwf_adapter *a, const char *remote_user, const char *xui, char **url,
			      struct iwf_result *r)
{
	char *why = NULL;
	enum xdms_err err = iwf_url_expand(a->url, remote_user, xui, url, &why);

	if (err)
		iwf_result_set(r, why && strstr(why, "<remote-user>") ? 400 : 500, false, "%s",
			       why ? why : xdms_err_str(err));
	free(why);
	return err;
}

char *iwf_url_with_param(const char *url, const char *name, const char *value)
{
	struct buf b;

	buf_init(&b, strlen(url) + 3 * (strlen(name) + strlen(value)) + 2);
	if (buf_append_str(&b, url) || buf_append_str(&b, strchr(url, '?') ? "&" : "?") ||
	    append_encoded(&b, name) || buf_append_str(&b, "=") || append_encoded(&b, value))
		abort(); /* sized above */
	return buf_take(&b, NULL);
}

/* ---- the XSLT cache ----------------------------------------------------------------- */

struct xslt_entry {
	char *name;
	char etag[STORE_ETAG_MAX]; /* "" for an embedded file */
	struct xml_xslt *xslt;
	struct xslt_entry *next;
};

struct iwf_xslt_cache {
	pthread_mutex_t lock;
	struct xslt_entry *head;
};

struct iwf_xslt_cache *iwf_xslt_cache_create(void)
{
	struct iwf_xslt_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void iwf_xslt_cache_destroy(struct iwf_xslt_cache *c)
{
	if (!c)
		return;
	while (c->head) {
		struct xslt_entry *e = c->head;

		c->head = e->next;
		xml_xslt_free(e->xslt);
		free(e->name);
		free(e);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The compiled stylesheet @name with ETag @etag ("" for an embedded file), or NULL. */
static const struct xml_xslt *cache_find(struct iwf_xslt_cache *c, const char *name, const char *etag)
{
	const struct xml_xslt *x = NULL;

	pthread_mutex_lock(&c->lock);
	for (struct xslt_entry *e = c->head; e && !x; e = e->next)
		if (!strcmp(e->name, name) && !strcmp(e->etag, etag))
			x = e->xslt;
	pthread_mutex_unlock(&c->lock);
	return x;
}

enum xdms_err iwf_xslt_get(struct iwf_xslt_cache *c, struct store *st, const char *name,
			   const struct xml_xslt **out, char **why)
{
	char selector[STORE_SELECTOR_MAX + 1], etag[STORE_ETAG_MAX] = "";
	struct store_read *rd = NULL;
	struct store_doc d;
	char *data = NULL, *cwhy = NULL;
	const char *edata;
	size_t len = 0;
	struct xslt_entry *e;
	struct xml_xslt *x;
	enum xdms_err err;

	*out = NULL;
	*why = NULL;
	if (!id_valid(name)) {
		*why = xasprintf("'%s' is not a valid stylesheet name", name);
		return XDMS_ERR_NOTFOUND;
	}
	snprintf(selector, sizeof(selector), "%s/global/%s", IWF_XSLT_AUID, name);
	err = store_read_begin(st, &rd);
	if (err)
		return err;
	err = store_doc_get(rd, selector, &d);
	if (!err) {
		snprintf(etag, sizeof(etag), "%s", d.etag);
		/* Copied only to be compiled: a hit needs the ETag alone. */
		if (!(*out = cache_find(c, name, etag))) {
			data = xstrndup(d.data, d.data_len);
			len = d.data_len;
		}
	}
	store_read_end(rd);
	if (*out)
		return XDMS_ERR_OK;
	if (err == XDMS_ERR_NOTFOUND && xml_file_find(name, &edata, &len)) {
		if ((*out = cache_find(c, name, etag)))
			return XDMS_ERR_OK;
		data = xstrndup(edata, len);
		err = XDMS_ERR_OK;
	}
	if (err) {
		if (err == XDMS_ERR_NOTFOUND)
			*why = xasprintf("the stylesheet %s does not exist", name);
		return err;
	}
	pthread_mutex_lock(&c->lock);
	for (e = c->head; e; e = e->next)
		if (!strcmp(e->name, name) && !strcmp(e->etag, etag))
			break;
	if (e) {
		*out = e->xslt;
	} else if ((err = xml_xslt_compile(data, len, &x, &cwhy)) == XDMS_ERR_OK) {
		e = xcalloc(1, sizeof(*e));
		e->name = xstrdup(name);
		snprintf(e->etag, sizeof(e->etag), "%s", etag);
		e->xslt = x;
		e->next = c->head;
		c->head = e;
		*out = x;
	} else {
		*why = xasprintf("the stylesheet %s: %s", name, cwhy);
	}
	pthread_mutex_unlock(&c->lock);
	free(cwhy);
	free(data);
	return err;
}
