/* SPDX-License-Identifier: MIT */
/*
 * XCAP operations on documents (RFC 4825 §7–8).
 *
 * A read runs in one store snapshot on the caller's thread and copies the
 * document bytes into the response, so no LMDB page outlives the snapshot.
 *
 * A write is split in two. xcap_write_prepare() runs on the HTTP thread and
 * does everything that does not depend on the committed state: access,
 * method, media type, size, UTF-8, well-formedness, schema. It also checks
 * the preconditions once against the committed document, so that a 412 is
 * answered before any body error (RFC 4825 §8.2.6 evaluates preconditions
 * first). The apply step then runs on the store's writer thread inside the
 * write transaction and evaluates the preconditions again against the
 * document as it is at that instant: that is the check that decides, and it
 * is what makes "16 clients create the same document" give exactly one 201.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"
#define XCAP_ERROR_TYPE "application/xcap-error+xml"
#define ALLOW_DOCUMENT "GET, HEAD, PUT, DELETE"
#define ALLOW_READ_ONLY "GET, HEAD"

struct xcap {
	struct store *st;
	const struct xcap_registry *reg;
	char *root_path;
	char *root_uri;
	unsigned max_depth;
	char *caps;      /* the xcap-caps document */
	size_t caps_len;
	char caps_etag[STORE_ETAG_MAX];
};

struct xcap_write {
	struct store_write sw;
	struct xcap *x;
	const struct xcap_auid *auid;
	bool is_delete;
	char *selector;
	char *if_match;
	char *if_none_match;
	const char *body; /* borrowed from the request */
	size_t body_len;
	void (*done)(void *arg);
	void *done_arg;
};

void xcap_response_init(struct xcap_response *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, SIZE_MAX / 2);
}

void xcap_response_cleanup(struct xcap_response *r)
{
	if (r)
		buf_cleanup(&r->body);
}

/* A short plain-text answer for statuses that have no XCAP body. */
static void respond_text(struct xcap_response *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void respond_text(struct xcap_response *r, unsigned status, const char *fmt, ...)
{
	va_list ap;

	r->status = status;
	r->content_type = TEXT_PLAIN;
	buf_reset(&r->body);
	va_start(ap, fmt);
	if (buf_vprintf(&r->body, fmt, ap) == XDMS_ERR_OK && buf_append_str(&r->body, "\n")) {
		/* A response that cannot hold a sentence has no body rather than half of one. */
		buf_reset(&r->body);
	}
	va_end(ap);
}

static void respond_conflict(struct xcap_response *r, const struct xcap_error *e)
{
	r->status = 409;
	r->content_type = XCAP_ERROR_TYPE;
	buf_reset(&r->body);
	if (xcap_error_render(e, &r->body))
		buf_reset(&r->body);
}

static void respond_issue(struct xcap_response *r, const struct xml_issue *issue)
{
	struct xcap_error e = { 0 };
	enum xcap_error_kind kind;

	switch (issue->fault) {
	case XML_FAULT_NOT_UTF8:
		kind = XCAP_ERROR_NOT_UTF8;
		break;
	case XML_FAULT_SCHEMA:
		kind = XCAP_ERROR_SCHEMA_VALIDATION_ERROR;
		break;
	case XML_FAULT_FORBIDDEN:
		kind = XCAP_ERROR_CONSTRAINT_FAILURE;
		break;
	case XML_FAULT_NOT_WELL_FORMED:
	default:
		kind = XCAP_ERROR_NOT_WELL_FORMED;
		break;
	}
	xcap_error_set(&e, kind, "%s", issue->phrase);
	respond_conflict(r, &e);
	xcap_error_cleanup(&e);
}

/* FNV-1a, for the ETag of the generated xcap-caps document. */
static uint64_t fnv1a(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

enum xdms_err xcap_create(struct store *st, const struct xcap_registry *reg, const struct xcap_options *opt,
			  struct xcap **out)
{
	struct xcap *x = xcalloc(1, sizeof(*x));
	struct buf caps;
	enum xdms_err err;

	x->st = st;
	x->reg = reg;
	x->root_path = xstrdup(opt->root_path);
	x->root_uri = xstrdup(opt->root_uri ? opt->root_uri : "");
	x->max_depth = opt->max_depth;
	buf_init(&caps, 1024 * 1024);
	err = xcap_caps_build(reg, &caps);
	if (err) {
		buf_cleanup(&caps);
		xcap_destroy(x);
		return err;
	}
	x->caps = buf_take(&caps, &x->caps_len);
	snprintf(x->caps_etag, sizeof(x->caps_etag), "caps-%016llx",
		 (unsigned long long)fnv1a(x->caps, x->caps_len));
	*out = x;
	return XDMS_ERR_OK;
}

void xcap_destroy(struct xcap *x)
{
	if (!x)
		return;
	free(x->root_path);
	free(x->root_uri);
	free(x->caps);
	free(x);
}

const struct xcap_registry *xcap_registry_get(const struct xcap *x)
{
	return x->reg;
}

bool xcap_access_allowed(const struct xcap_uri *uri, const struct xcap_identity *who, bool is_write)
{
	if (who->role == XCAP_ROLE_ADMIN)
		return true;
	/* RFC 4825 §5.7: global documents are readable by all, written by the server's admin. */
	if (uri->is_global)
		return !is_write;
	if (who->role == XCAP_ROLE_SERVER)
		return true;
	return uri->xui && who->id && strcmp(uri->xui, who->id) == 0;
}

/*
 * The checks every method shares: the AUID exists and serves this tree, the
 * identity may touch it, and the resource kind is one this server supports.
 * Returns the usage, or NULL with @resp filled.
 */
static const struct xcap_auid *resolve(struct xcap *x, const struct xcap_request *req, bool is_write,
				       struct xcap_response *resp)
{
	const struct xcap_uri *uri = req->uri;
	const struct xcap_auid *a = xcap_registry_find(x->reg, uri->auid);

	if (!a) {
		respond_text(resp, 404, "no application usage '%s' on this server", uri->auid);
		return NULL;
	}
	if ((uri->is_global && !(a->scope & XCAP_SCOPE_GLOBAL)) ||
	    (!uri->is_global && !(a->scope & XCAP_SCOPE_USERS))) {
		respond_text(resp, 404, "application usage '%s' has no %s tree", a->name,
			     uri->is_global ? "global" : "users");
		return NULL;
	}
	if (is_write && a->is_generated) {
		respond_text(resp, 405, "documents of '%s' are generated by the server and read-only", a->name);
		resp->allow = ALLOW_READ_ONLY;
		return NULL;
	}
	if (!xcap_access_allowed(uri, req->who, is_write)) {
		if (uri->is_global)
			respond_text(resp, 403, "only an administrator may change global documents");
		else
			respond_text(resp, 403, "%s may not access the documents of %s", req->who->id, uri->xui);
		return NULL;
	}
	if (uri->node_selector) {
		respond_text(resp, 400, "node selectors (/~~/) are not supported by this version of xdmsd");
		return NULL;
	}
	return a;
}

static void read_generated(struct xcap *x, const struct xcap_auid *a, const struct xcap_request *req,
			   struct xcap_response *resp)
{
	enum xcap_precond pc;

	if (strcmp(a->name, "xcap-caps") != 0 || !req->uri->is_global || strcmp(req->uri->doc_path, "index")) {
		respond_text(resp, 404, "no such document");
		return;
	}
	pc = xcap_precond_eval(req->if_match, req->if_none_match, x->caps_etag, true);
	snprintf(resp->etag, sizeof(resp->etag), "%s", x->caps_etag);
	if (pc == XCAP_PRECOND_FAILED) {
		respond_text(resp, 412, "precondition failed");
		return;
	}
	if (pc == XCAP_PRECOND_NOT_MODIFIED) {
		resp->status = 304;
		return;
	}
	resp->status = 200;
	resp->content_type = a->mime;
	if (buf_append(&resp->body, x->caps, x->caps_len))
		respond_text(resp, 500, "response too large");
}

void xcap_read(struct xcap *x, const struct xcap_request *req, struct xcap_response *resp)
{
	const struct xcap_auid *a;
	struct store_read *rd = NULL;
	struct store_doc doc;
	enum xcap_precond pc;
	enum xdms_err err;

	if (req->method != XCAP_METHOD_GET && req->method != XCAP_METHOD_HEAD) {
		respond_text(resp, 405, "method not allowed");
		resp->allow = ALLOW_DOCUMENT;
		return;
	}
	a = resolve(x, req, false, resp);
	if (!a)
		return;
	if (a->is_generated) {
		read_generated(x, a, req, resp);
		return;
	}
	err = store_read_begin(x->st, &rd);
	if (err) {
		respond_text(resp, 500, "storage failure: %s", xdms_err_str(err));
		return;
	}
	err = store_doc_get(rd, req->uri->doc_selector, &doc);
	if (err && err != XDMS_ERR_NOTFOUND) {
		respond_text(resp, 500, "storage failure: %s", xdms_err_str(err));
		goto out;
	}
	pc = xcap_precond_eval(req->if_match, req->if_none_match, err ? NULL : doc.etag, true);
	if (pc == XCAP_PRECOND_FAILED) {
		respond_text(resp, 412, "precondition failed");
		goto out;
	}
	if (err) {
		respond_text(resp, 404, "no document %s", req->uri->doc_selector);
		goto out;
	}
	snprintf(resp->etag, sizeof(resp->etag), "%s", doc.etag);
	if (pc == XCAP_PRECOND_NOT_MODIFIED) {
		resp->status = 304;
		goto out;
	}
	resp->status = 200;
	resp->content_type = a->mime;
	if (buf_append(&resp->body, doc.data, doc.data_len))
		respond_text(resp, 500, "response too large");
out:
	store_read_end(rd);
}

/* Compares the media type of a Content-Type value (parameters ignored). */
static bool media_type_is(const char *content_type, const char *mime)
{
	size_t n, m = strlen(mime);
	const char *p;

	if (!content_type)
		return false;
	while (*content_type == ' ' || *content_type == '\t')
		content_type++;
	p = content_type + strcspn(content_type, ";");
	n = (size_t)(p - content_type);
	while (n && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
		n--;
	return n == m && strncasecmp(content_type, mime, m) == 0;
}

/* Evaluates the preconditions against the committed document, on the caller's thread. */
static enum xcap_precond precheck(struct xcap *x, const struct xcap_request *req, bool *exists,
				  enum xdms_err *err_out)
{
	struct store_read *rd = NULL;
	struct store_doc doc;
	enum xcap_precond pc = XCAP_PRECOND_OK;
	enum xdms_err err;

	*exists = false;
	err = store_read_begin(x->st, &rd);
	if (!err) {
		err = store_doc_get(rd, req->uri->doc_selector, &doc);
		if (!err)
			*exists = true;
		if (!err || err == XDMS_ERR_NOTFOUND) {
			pc = xcap_precond_eval(req->if_match, req->if_none_match, *exists ? doc.etag : NULL, false);
			err = XDMS_ERR_OK;
		}
	}
	store_read_end(rd);
	*err_out = err;
	return pc;
}

/* Checks a document body as RFC 4825 §8.2.5 and the AUID require. */
static bool document_valid(struct xcap *x, const struct xcap_auid *a, const struct xcap_request *req,
			   struct xcap_response *resp)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	const char *ns, *name;
	bool is_ok = false;

	if (req->body_len > a->max_document) {
		struct xcap_error e = { 0 };

		xcap_error_set(&e, XCAP_ERROR_CONSTRAINT_FAILURE,
			       "document too large: %zu bytes; the limit for %s is %zu bytes", req->body_len, a->name,
			       a->max_document);
		respond_conflict(resp, &e);
		return false;
	}
	if (xml_parse(req->body, req->body_len, x->max_depth, &doc, &issue)) {
		respond_issue(resp, &issue);
		return false;
	}
	xml_doc_root(doc, &ns, &name);
	if (strcmp(ns, a->ns) != 0 || strcmp(name, a->root) != 0) {
		struct xcap_error e = { 0 };

		xcap_error_set(&e, XCAP_ERROR_SCHEMA_VALIDATION_ERROR,
			       "the root element must be <%s> in namespace %s, not <%s>%s%s", a->root, a->ns, name,
			       ns[0] ? " in namespace " : " in no namespace", ns);
		respond_conflict(resp, &e);
		goto out;
	}
	if (a->schema && xml_schema_validate(a->schema, doc, &issue)) {
		respond_issue(resp, &issue);
		goto out;
	}
	is_ok = true;
out:
	xml_doc_free(doc);
	return is_ok;
}

static enum xdms_err write_apply(struct store_write *sw, const struct store_doc *cur)
{
	struct xcap_write *w = sw->arg;

	if (xcap_precond_eval(w->if_match, w->if_none_match, cur ? cur->etag : NULL, false) != XCAP_PRECOND_OK)
		return XDMS_ERR_PRECOND;
	if (w->is_delete) {
		if (!cur)
			return XDMS_ERR_NOTFOUND;
		sw->is_delete = true;
		return XDMS_ERR_OK;
	}
	sw->new_data = w->body;
	sw->new_len = w->body_len;
	return XDMS_ERR_OK;
}

static void write_done(struct store_write *sw)
{
	struct xcap_write *w = sw->arg;

	if (w->done)
		w->done(w->done_arg);
}

struct xcap_write *xcap_write_prepare(struct xcap *x, const struct xcap_request *req,
				      struct xcap_response *resp)
{
	const struct xcap_auid *a;
	struct xcap_write *w;
	enum xcap_precond pc;
	enum xdms_err err;
	bool exists;

	if (req->method != XCAP_METHOD_PUT && req->method != XCAP_METHOD_DELETE) {
		respond_text(resp, 405, "method not allowed");
		resp->allow = ALLOW_DOCUMENT;
		return NULL;
	}
	a = resolve(x, req, true, resp);
	if (!a)
		return NULL;
	if (req->method == XCAP_METHOD_PUT && !media_type_is(req->content_type, a->mime)) {
		respond_text(resp, 415, "a document of %s must be sent as %s, not %s", a->name, a->mime,
			     req->content_type ? req->content_type : "a body without Content-Type");
		return NULL;
	}
	pc = precheck(x, req, &exists, &err);
	if (err) {
		respond_text(resp, 500, "storage failure: %s", xdms_err_str(err));
		return NULL;
	}
	if (pc != XCAP_PRECOND_OK) {
		respond_text(resp, 412, "precondition failed");
		return NULL;
	}
	if (req->method == XCAP_METHOD_DELETE && !exists) {
		respond_text(resp, 404, "no document %s", req->uri->doc_selector);
		return NULL;
	}
	if (req->method == XCAP_METHOD_PUT && !document_valid(x, a, req, resp))
		return NULL;

	w = xcalloc(1, sizeof(*w));
	w->x = x;
	w->auid = a;
	w->is_delete = req->method == XCAP_METHOD_DELETE;
	w->selector = xstrdup(req->uri->doc_selector);
	w->if_match = req->if_match ? xstrdup(req->if_match) : NULL;
	w->if_none_match = req->if_none_match ? xstrdup(req->if_none_match) : NULL;
	w->body = req->body;
	w->body_len = req->body_len;
	w->sw.selector = w->selector;
	w->sw.etag_prefix = a->etag_prefix;
	w->sw.apply = write_apply;
	w->sw.arg = w;
	w->sw.done = write_done;
	return w;
}

enum xdms_err xcap_write_submit(struct xcap *x, struct xcap_write *w, void (*done)(void *arg), void *arg)
{
	enum xdms_err err;

	w->done = done;
	w->done_arg = arg;
	err = store_write_submit(x->st, &w->sw);
	if (err)
		w->sw.result = err; /* so that xcap_write_finish() answers for it */
	return err;
}

void xcap_write_run(struct xcap *x, struct xcap_write *w)
{
	w->done = NULL;
	/* The outcome is in w->sw.result, which xcap_write_finish() reads. */
	if (store_write_run(x->st, &w->sw) == XDMS_ERR_BUSY)
		w->sw.result = XDMS_ERR_BUSY;
}

void xcap_write_finish(struct xcap_write *w, struct xcap_response *resp)
{
	switch (w->sw.result) {
	case XDMS_ERR_OK:
		if (w->is_delete) {
			resp->status = 200;
		} else {
			resp->status = w->sw.is_created ? 201 : 200;
			snprintf(resp->etag, sizeof(resp->etag), "%s", w->sw.etag);
		}
		break;
	case XDMS_ERR_PRECOND:
		respond_text(resp, 412, "precondition failed");
		break;
	case XDMS_ERR_NOTFOUND:
		respond_text(resp, 404, "no document %s", w->selector);
		break;
	case XDMS_ERR_TOOBIG:
		respond_text(resp, 414, "the document selector is too long to store");
		break;
	case XDMS_ERR_FULL:
		respond_text(resp, 507, "the store is full; nothing was written");
		break;
	case XDMS_ERR_BUSY:
		respond_text(resp, 503, "the server is shutting down; nothing was written");
		break;
	default:
		respond_text(resp, 500, "storage failure (%s); nothing was written", xdms_err_str(w->sw.result));
		break;
	}
	free(w->selector);
	free(w->if_match);
	free(w->if_none_match);
	free(w);
}
