/* SPDX-License-Identifier: MIT */
/*
 * XCAP writes (RFC 4825 §8.2, §8.4): PUT and DELETE of a document or of an
 * element or attribute, from the request to the committed change.
 *
 * Design: a write is split in two. xcap_write_prepare() runs on the HTTP
 * thread and does everything that does not depend on the committed state:
 * access, method, media type, size, UTF-8, well-formedness, schema. It also
 * checks the preconditions once against the committed document, so that a
 * 412 is answered before any body error (RFC 4825 §8.2.6 evaluates
 * preconditions first). The apply step then runs on the store's writer
 * thread inside the write transaction and evaluates the preconditions again
 * against the document as it is at that instant: that is the check that
 * decides, and it is what makes "16 clients create the same document" give
 * exactly one 201. xcap_write_finish() turns the outcome into the response.
 *
 * Threads: prepare and finish run on the caller's thread; write_apply,
 * write_commit and write_done on the store's writer thread. A prepared
 * write belongs to one of them at a time (the store hands it over).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

/* A prepared PUT or DELETE: made by xcap_write_prepare(), applied through
 * sw on the store's writer thread, freed by xcap_write_finish(). */
struct xcap_write {
	struct store_write sw;
	struct xcap *x;
	const struct xcap_auid *auid;
	bool is_delete;
	char *selector;      /* document selector (store key) */
	char *doc_uri;       /* absolute HTTP URI of the document, for <ancestor> */
	char *query;         /* the request's raw query (namespace bindings), or NULL */
	char *if_match;
	char *if_none_match;
	const char *body;    /* borrowed from the request */
	size_t body_len;
	void (*done)(void *arg);
	void *done_arg;
	/* element and attribute writes */
	struct xcap_selector *sel;      /* NULL for a whole-document write */
	char base_etag[STORE_ETAG_MAX]; /* the document checked at prepare time ("" = none) */
	bool is_checked;                /* new_doc / the hook were checked against base_etag */
	char *new_doc;                  /* the resulting document */
	size_t new_len;
	struct xml_scan *new_scan;      /* its scan (borrows new_doc), for the scan cache */
	char *detail;                   /* change description for the feed */
	bool is_local;                  /* new_doc was checked by local_check, not in full */
	enum xcap_outcome node_outcome; /* what the node operation decided: OK replaced,
					 * CREATED, or why it refused */
	struct xcap_error error;        /* the CONFLICT (or FORBIDDEN phrase) when refused */
	char *who_id;                   /* the writer's identity, for the usage's hook */
	char *keep_etag;                /* a moved-in document's ETag (xcap_request), or NULL */
	enum xcap_role who_role;
};

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

/*
 * True when a whole-document PUT of @a sent without the usage's MIME type may
 * still be taken (xcap.lenient_content_type): the type is absent or one that
 * HTTP libraries put on any body, and the body parses as the usage's document
 * (its root element in the usage's namespace). Anything else keeps RFC 4825
 * §8.2.1's 415, so a client that names another real type is still told.
 */
static bool generic_type_allowed(const struct xcap *x, const struct xcap_auid *a, const char *content_type,
				 const char *body, size_t body_len)
{
	static const char *const generic[] = { "application/xml", "text/xml",
					       "application/x-www-form-urlencoded" };
	bool is_generic = !content_type;
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	const char *ns, *name;
	bool is_usage_doc;

	if (!x->is_type_lenient)
		return false;
	for (size_t i = 0; !is_generic && i < sizeof(generic) / sizeof(generic[0]); i++)
		is_generic = media_type_is(content_type, generic[i]);
	if (!is_generic || body_len > a->max_document || xml_parse(body, body_len, x->max_depth, &doc, &issue))
		return false;
	xml_doc_root(doc, &ns, &name);
	is_usage_doc = strcmp(ns, a->ns) == 0 && strcmp(name, a->root) == 0;
	xml_doc_free(doc);
	return is_usage_doc;
}

/*
 * Reads the committed document for a write: its ETag (for the preconditions
 * and the optimistic path) and, when @copy is set, its bytes: with @view and
 * a scan cache, as a view of the cache (*copy stays NULL), else as a copy.
 */
static enum xdms_err snapshot(struct xcap *x, const char *selector, bool *exists, char *etag, char **copy,
			      size_t *copy_len, const struct xcap_view **view)
{
	struct store_read *rd = NULL;
	struct store_doc doc;
	enum xdms_err err;

	*exists = false;
	etag[0] = '\0';
	err = store_read_begin(x->st, &rd);
	if (err)
		return err;
	err = store_doc_get(rd, selector, &doc);
	if (!err) {
		*exists = true;
		snprintf(etag, STORE_ETAG_MAX, "%s", doc.etag);
		if (view)
			*view = xcap_view_of(x, selector, doc.etag, doc.data, doc.data_len);
		if (copy && !(view && *view)) {
			*copy = xstrndup(doc.data, doc.data_len);
			*copy_len = doc.data_len;
		}
	} else if (err == XDMS_ERR_NOTFOUND) {
		err = XDMS_ERR_OK;
	}
	store_read_end(rd);
	return err;
}

static void issue_to_error(const struct xml_issue *issue, struct xcap_error *e)
{
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
	xcap_error_set(e, kind, "%s", issue->phrase);
}

/*
 * Calls the usage's hook on the document before the write (@old, NULL when
 * there is none) and after it (@new_data, NULL for a delete): its check, or
 * with @txn its commit function. Fills w->error and returns CONFLICT (409)
 * or DENIED (403) when the rules refuse the write.
 */
static enum xdms_err hook_call(struct xcap_write *w, const char *old, size_t old_len, const char *new_data,
			       size_t new_len, const struct xml_scan *new_given, struct store_txn *txn)
{
	struct xml_scan *old_scan = NULL, *new_scan = NULL;
	struct xcap_identity who = { w->who_id, w->who_role };
	struct xcap_check c = { 0 };
	enum xdms_err err;

	xcap_error_cleanup(&w->error);
	memset(&w->error, 0, sizeof(w->error));
	/* A stored document always scans; if one ever does not, the hook sees
	 * it as absent, which the strict rules refuse rather than allow. Only
	 * the hooks that compare old and new pay for scanning the old one. */
	if (old && (txn || w->auid->hook->needs_old) && xml_scan_build_stored(old, old_len, &old_scan))
		old_scan = NULL;
	if (new_data && !new_given && xml_scan_build(new_data, new_len, &new_scan)) {
		xcap_error_set(&w->error, XCAP_ERROR_CONSTRAINT_FAILURE,
			       "the document is too large or too deep for the %s rules to check", w->auid->name);
		err = XDMS_ERR_CONFLICT;
		goto out;
	}
	c.auid = w->auid;
	c.who = &who;
	c.selector = w->selector;
	c.old_scan = old_scan;
	c.new_scan = new_given ? new_given : new_scan;
	c.max_binary = w->x->max_binary;
	err = txn ? w->auid->hook->commit(&c, txn, &w->error) : w->auid->hook->check(&c, &w->error);
out:
	xml_scan_free(old_scan);
	xml_scan_free(new_scan);
	return err;
}

/* Runs the usage's check (see hook_call). */
static enum xdms_err run_hook(struct xcap_write *w, const char *old, size_t old_len, const char *new_data,
			      size_t new_len)
{
	if (!w->auid->hook || !w->auid->hook->check)
		return XDMS_ERR_OK;
	return hook_call(w, old, old_len, new_data, new_len, NULL, NULL);
}

/* Starts a document check: clears the last error and refuses a document
 * over the usage's size limit (a <constraint-failure>). */
static bool check_begin(struct xcap_write *w, size_t len)
{
	const struct xcap_auid *a = w->auid;

	xcap_error_cleanup(&w->error);
	memset(&w->error, 0, sizeof(w->error));
	if (len <= a->max_document)
		return true;
	xcap_error_set(&w->error, XCAP_ERROR_CONSTRAINT_FAILURE,
		       "document too large: %zu bytes; the limit for %s is %zu bytes", len, a->name, a->max_document);
	return false;
}

/*
 * Checks the document a write would leave, in the order RFC 4825 §8.2.5 and
 * SPEC §1.4 give: size, UTF-8, well-formedness, root element, then the
 * usage's own rules (uniqueness before the schema, so that a duplicate gets
 * <uniqueness-failure> rather than the XSD's xs:unique message), then the
 * schema. @old is the document the write replaces (NULL when none). Fills
 * w->error; returns OK, CONFLICT or DENIED. Safe on any thread.
 */
static enum xdms_err document_check(struct xcap_write *w, const char *data, size_t len, const char *old,
				    size_t old_len)
{
	const struct xcap_auid *a = w->auid;
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	const char *ns, *name;
	enum xdms_err err = XDMS_ERR_CONFLICT;

	if (!check_begin(w, len))
		return XDMS_ERR_CONFLICT;
	if (xml_parse(data, len, w->x->max_depth, &doc, &issue)) {
		issue_to_error(&issue, &w->error);
		return XDMS_ERR_CONFLICT;
	}
	xml_doc_root(doc, &ns, &name);
	if (strcmp(ns, a->ns) != 0 || strcmp(name, a->root) != 0) {
		xcap_error_set(&w->error, XCAP_ERROR_SCHEMA_VALIDATION_ERROR,
			       "the root element must be <%s> in namespace %s, not <%s>%s%s", a->root, a->ns, name,
			       ns[0] ? " in namespace " : " in no namespace", ns);
		goto out;
	}
	err = run_hook(w, old, old_len, data, len);
	if (err)
		goto out;
	if (a->schema && xml_schema_validate(a->schema, doc, &issue)) {
		issue_to_error(&issue, &w->error);
		err = XDMS_ERR_CONFLICT;
		goto out;
	}
	err = XDMS_ERR_OK;
out:
	xml_doc_free(doc);
	return err;
}

/*
 * Checks the document an element or attribute write produces. It is
 * well-formed and namespace-correct by construction (a stored document with
 * one node spliced in, the node parsed safely on its own and the result
 * rescanned by node.c), so instead of document_check's tree parse it needs:
 * the size, the nesting depth (from @scan), the usage's rules (on @scan) and
 * the schema, validated while streaming the bytes.
 */
static enum xdms_err node_document_check(struct xcap_write *w, const char *data, size_t len, const char *old,
					 size_t old_len, const struct xml_scan *scan)
{
	const struct xcap_auid *a = w->auid;
	struct xml_issue issue;
	uint32_t depth = 0;
	enum xdms_err err;

	if (!check_begin(w, len))
		return XDMS_ERR_CONFLICT;
	for (uint32_t i = 0; i < scan->elem_count; i++)
		if (scan->elems[i].depth + 1 > depth)
			depth = scan->elems[i].depth + 1;
	if (depth > w->x->max_depth) {
		xcap_error_set(&w->error, XCAP_ERROR_CONSTRAINT_FAILURE, "elements are nested too deeply");
		return XDMS_ERR_CONFLICT;
	}
	if (a->hook && a->hook->check) {
		err = hook_call(w, old, old_len, data, len, scan, NULL);
		if (err)
			return err;
	}
	if (a->schema && xml_schema_validate_bytes(a->schema, data, len, &issue)) {
		issue_to_error(&issue, &w->error);
		return XDMS_ERR_CONFLICT;
	}
	return XDMS_ERR_OK;
}

/* The schema part of local_check. */
static enum xdms_err local_schema(struct xcap_write *w, const struct xcap_node_result *nr)
{
	const struct xcap_auid *a = w->auid;
	struct xml_issue issue;

	if (!a->schema)
		return XDMS_ERR_OK;
	if (xml_schema_is_local(a->schema))
		return xml_schema_validate_bytes(a->schema, nr->context, nr->context_len, &issue) ? XDMS_ERR_CONFLICT
												 : XDMS_ERR_OK;
	return xml_schema_validate_bytes(a->schema, nr->new_doc, nr->new_len, &issue) ? XDMS_ERR_CONFLICT
											: XDMS_ERR_OK;
}

/*
 * The checks of a replaced element (xcap_node_replace_local) that cost the
 * element, not the document: the size and depth the new document has, the
 * usage's rules for what the element touches (its check_edit; without one,
 * its check over the spliced scan, which parses nothing), and the schema on
 * the element in context when the schema is local (xml_schema_is_local): the
 * document before was valid, and the element keeps its name, so the document
 * after is valid exactly when the element is valid where it sits. Returns OK,
 * or CONFLICT whenever it cannot say yes: node_compute then runs the full
 * checks, which decide and word the answer.
 */
static enum xdms_err local_check(struct xcap_write *w, const struct xcap_node_result *nr, const char *old,
				 size_t old_len)
{
	const struct xcap_auid *a = w->auid;
	const struct xml_scan *ns = nr->new_scan;
	uint32_t last;

	if (!check_begin(w, nr->new_len))
		return XDMS_ERR_CONFLICT;
	/* The new element's subtree is contiguous in document order. */
	last = nr->edited;
	while (last + 1 < ns->elem_count && ns->elems[last + 1].start < ns->elems[nr->edited].end)
		last++;
	for (uint32_t i = nr->edited; i <= last; i++)
		if (ns->elems[i].depth + 1 > w->x->max_depth)
			return XDMS_ERR_CONFLICT;
	if (a->hook && a->hook->check) {
		struct xcap_identity who = { w->who_id, w->who_role };
		struct xcap_check c = { 0 };
		enum xdms_err err;

		if (!a->hook->check_edit)
			return hook_call(w, old, old_len, nr->new_doc, nr->new_len, ns, NULL) ? XDMS_ERR_CONFLICT
											     : local_schema(w, nr);
		c.auid = a;
		c.who = &who;
		c.selector = w->selector;
		c.new_scan = ns;
		c.max_binary = w->x->max_binary;
		err = a->hook->check_edit(&c, nr->edited, &w->error);
		xcap_error_cleanup(&w->error);
		memset(&w->error, 0, sizeof(w->error));
		if (err)
			return XDMS_ERR_CONFLICT;
	}
	return local_schema(w, nr);
}

/* Moves the new document, its scan and the detail from @nr to @w. The scan
 * borrows new_doc: they change hands together. */
static void take_result(struct xcap_write *w, struct xcap_node_result *nr)
{
	w->new_scan = nr->new_scan;
	nr->new_scan = NULL;
	w->new_doc = nr->new_doc;
	w->new_len = nr->new_len;
	w->detail = nr->detail;
	nr->new_doc = NULL;
	nr->detail = NULL;
}

/*
 * Runs a node operation on @doc and checks the document it produces. Used on
 * the HTTP thread against a snapshot and, when the document changed in the
 * meantime, again on the writer thread. Returns OK with w->new_doc set, or
 * CONFLICT / DENIED / NOTFOUND with w->error or w->node_outcome saying why.
 */
static enum xdms_err node_compute(struct xcap_write *w, const char *doc, size_t doc_len,
				  const struct xml_scan *scan)
{
	struct xcap_node_result nr = { 0 };
	enum xdms_err err;

	xml_scan_free(w->new_scan);
	free(w->new_doc);
	free(w->detail);
	w->new_scan = NULL;
	w->new_doc = NULL;
	w->detail = NULL;
	xcap_error_cleanup(&w->error);
	memset(&w->error, 0, sizeof(w->error));
	/* The common case first, at the cost of the element; anything it cannot
	 * accept goes the whole way below, which decides. */
	if (!w->is_delete && w->x->is_incremental &&
	    xcap_node_replace_local(doc, doc_len, scan, w->sel, w->body, w->body_len, &nr)) {
		if (local_check(w, &nr, doc, doc_len) == XDMS_ERR_OK) {
			w->node_outcome = nr.outcome;
			take_result(w, &nr);
			w->is_local = true;
			err = XDMS_ERR_OK;
			goto out;
		}
		xcap_node_result_cleanup(&nr);
		xcap_error_cleanup(&w->error);
		memset(&w->error, 0, sizeof(w->error));
	}
	w->is_local = false;
	if (w->is_delete)
		xcap_node_delete(doc, doc_len, w->sel, &nr);
	else
		xcap_node_put(doc, doc_len, w->sel, w->body, w->body_len, &nr);
	w->node_outcome = nr.outcome;
	if (xcap_outcome_is_success(nr.outcome)) {
		err = node_document_check(w, nr.new_doc, nr.new_len, doc, doc_len, nr.new_scan);
		if (err)
			goto out;
		take_result(w, &nr);
		goto out;
	}
	if (nr.outcome == XCAP_OUTCOME_CONFLICT) {
		w->error = nr.error;
		memset(&nr.error, 0, sizeof(nr.error));
		/* The ancestor's URI must work as a URI: a selector with prefixes
		 * needs the request's namespace bindings (RFC 4825 §6.4). */
		if (w->error.kind == XCAP_ERROR_NO_PARENT && nr.ancestor)
			w->error.ancestor = xasprintf("%s%s%s%s%s", w->doc_uri, nr.ancestor[0] ? "/~~/" : "",
						      nr.ancestor, nr.ancestor[0] && w->query ? "?" : "",
						      nr.ancestor[0] && w->query ? w->query : "");
		err = XDMS_ERR_CONFLICT;
		goto out;
	}
	err = XDMS_ERR_NOTFOUND;
out:
	xcap_node_result_cleanup(&nr);
	return err;
}

/* True when @cur is the document the write was checked against when prepared. */
static bool is_base(const struct xcap_write *w, const struct store_doc *cur)
{
	return w->is_checked && strcmp(cur ? cur->etag : "", w->base_etag) == 0;
}

/* The store's commit hook: the usage's store-wide effects, in the transaction. */
static enum xdms_err write_commit(struct store_write *sw, struct store_txn *txn, const struct store_doc *old_doc,
				  const struct store_doc *new_doc)
{
	struct xcap_write *w = sw->arg;

	return hook_call(w, old_doc ? old_doc->data : NULL, old_doc ? old_doc->data_len : 0,
			 new_doc ? new_doc->data : NULL, new_doc ? new_doc->data_len : 0, NULL, txn);
}

static enum xdms_err write_apply(struct store_write *sw, const struct store_doc *cur)
{
	struct xcap_write *w = sw->arg;
	enum xdms_err err;

	if (xcap_precond_eval(w->if_match, w->if_none_match, cur ? cur->etag : NULL, false) != XCAP_PRECOND_OK)
		return XDMS_ERR_PRECOND;
	if (w->sel) {
		if (!cur) {
			/* The document went away since the request was prepared. */
			if (w->is_delete)
				return XDMS_ERR_NOTFOUND;
			xcap_error_cleanup(&w->error);
			memset(&w->error, 0, sizeof(w->error));
			xcap_error_set(&w->error, XCAP_ERROR_NO_PARENT, "the document %s does not exist", w->selector);
			return XDMS_ERR_CONFLICT;
		}
		/* Optimistic path: the snapshot the request was computed on is
		 * still current, so its result stands. Otherwise compute and
		 * check again on the document as it is now, in the transaction. */
		if (!is_base(w, cur)) {
			err = node_compute(w, cur->data, cur->data_len, NULL);
			if (err)
				return err;
		}
		sw->new_data = w->new_doc;
		sw->new_len = w->new_len;
		sw->detail = w->detail;
		sw->detail_len = w->detail ? strlen(w->detail) : 0;
		return XDMS_ERR_OK;
	}
	if (w->is_delete) {
		if (!cur)
			return XDMS_ERR_NOTFOUND;
		if (!is_base(w, cur)) {
			err = run_hook(w, cur->data, cur->data_len, NULL, 0);
			if (err)
				return err;
		}
		sw->is_delete = true;
		return XDMS_ERR_OK;
	}
	/* The usage's rules compare with the document being replaced: check
	 * again if it is not the one the request was checked against. */
	if (!is_base(w, cur)) {
		err = run_hook(w, cur ? cur->data : NULL, cur ? cur->data_len : 0, w->body, w->body_len);
		if (err)
			return err;
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

static void write_free(struct xcap_write *w)
{
	if (!w)
		return;
	xcap_selector_free(w->sel);
	xcap_error_cleanup(&w->error);
	free(w->selector);
	free(w->doc_uri);
	free(w->query);
	free(w->if_match);
	free(w->if_none_match);
	xml_scan_free(w->new_scan);
	free(w->new_doc);
	free(w->detail);
	free(w->who_id);
	free(w->keep_etag);
	free(w);
}

static struct xcap_write *write_new(struct xcap *x, const struct xcap_auid *a, const struct xcap_request *req)
{
	struct xcap_write *w = xcalloc(1, sizeof(*w));

	w->x = x;
	w->auid = a;
	w->is_delete = req->method == XCAP_METHOD_DELETE;
	w->selector = xstrdup(req->uri->doc_selector);
	w->doc_uri = xcap_document_uri(x, req);
	w->query = req->uri->query ? xstrdup(req->uri->query) : NULL;
	w->if_match = req->if_match ? xstrdup(req->if_match) : NULL;
	w->if_none_match = req->if_none_match ? xstrdup(req->if_none_match) : NULL;
	w->body = req->body;
	w->body_len = req->body_len;
	w->who_id = xstrdup(req->who->id ? req->who->id : "");
	w->who_role = req->who->role;
	w->sw.selector = w->selector;
	w->sw.etag_prefix = a->etag_prefix;
	w->sw.keep_etag = req->keep_etag ? (w->keep_etag = xstrdup(req->keep_etag)) : NULL;
	w->sw.is_move = req->is_move;
	w->sw.is_commit_ack = req->is_commit_ack;
	w->sw.apply = write_apply;
	if (a->hook && a->hook->commit)
		w->sw.hook = write_commit;
	w->sw.arg = w;
	w->sw.done = write_done;
	return w;
}

/* Prepares an element or attribute PUT/DELETE (RFC 4825 §8.2–8.4). */
static struct xcap_write *prepare_node(struct xcap *x, const struct xcap_auid *a, const struct xcap_request *req,
				       struct xcap_response *resp)
{
	struct xcap_selector *sel = NULL;
	struct xcap_write *w = NULL;
	const struct xcap_view *view = NULL;
	const char *why = NULL, *want;
	char etag[STORE_ETAG_MAX];
	char *doc = NULL;
	size_t doc_len = 0;
	bool exists;
	enum xdms_err err;

	if (xcap_selector_parse(req->uri->node_selector, req->uri->query, a->ns, &sel, &why)) {
		xcap_answer(resp, XCAP_OUTCOME_BAD_REQUEST, "malformed node selector: %s",
			    why ? why : "not RFC 4825 syntax");
		return NULL;
	}
	if (xcap_selector_kind(sel) == XCAP_NODE_NAMESPACES) {
		/* RFC 4825 §8.2: namespace bindings can only be read. */
		xcap_answer(resp, XCAP_OUTCOME_NOT_ALLOWED, "namespace bindings are read-only");
		resp->allow = ALLOW_READ_ONLY;
		goto out;
	}
	want = xcap_selector_kind(sel) == XCAP_NODE_ATTRIBUTE ? XCAP_ATT_TYPE : XCAP_EL_TYPE;
	if (req->method == XCAP_METHOD_PUT && !media_type_is(req->content_type, want)) {
		xcap_answer(resp, XCAP_OUTCOME_UNSUPPORTED_TYPE, "this URI selects %s; send it as %s, not %s",
			    xcap_selector_kind(sel) == XCAP_NODE_ELEMENT ? "an element" : "an attribute", want,
			    req->content_type ? req->content_type : "a body without Content-Type");
		goto out;
	}
	err = snapshot(x, req->uri->doc_selector, &exists, etag, &doc, &doc_len, &view);
	if (err) {
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "storage failure: %s", xdms_err_str(err));
		goto out;
	}
	if (xcap_precond_eval(req->if_match, req->if_none_match, exists ? etag : NULL, false) != XCAP_PRECOND_OK) {
		xcap_answer(resp, XCAP_OUTCOME_PRECONDITION_FAILED, "precondition failed");
		goto out;
	}
	if (!exists) {
		struct xcap_error e = { 0 };

		if (req->method == XCAP_METHOD_DELETE) {
			xcap_answer(resp, XCAP_OUTCOME_NOT_FOUND, "no document %s", req->uri->doc_selector);
			goto out;
		}
		/* RFC 4825 §8.2.1: no document to put the node in. */
		xcap_error_set(&e, XCAP_ERROR_NO_PARENT, "the document %s does not exist; PUT the whole document first",
			       req->uri->doc_selector);
		xcap_answer_conflict(resp, &e);
		goto out;
	}
	if (req->method == XCAP_METHOD_PUT && !xml_utf8_valid(req->body, req->body_len, NULL)) {
		struct xcap_error e = { 0 };

		xcap_error_set(&e, XCAP_ERROR_NOT_UTF8, "the body is not valid UTF-8");
		xcap_answer_conflict(resp, &e);
		goto out;
	}
	w = write_new(x, a, req);
	w->sel = sel;
	sel = NULL;
	snprintf(w->base_etag, sizeof(w->base_etag), "%s", etag);
	if (view) {
		const char *data = xcap_view_data(view, &doc_len);

		err = node_compute(w, data, doc_len, xcap_view_scan(view));
	} else {
		err = node_compute(w, doc, doc_len, NULL);
	}
	w->is_checked = err == XDMS_ERR_OK;
	if (err == XDMS_ERR_CONFLICT) {
		xcap_answer_conflict(resp, &w->error);
		write_free(w);
		w = NULL;
	} else if (err == XDMS_ERR_DENIED) {
		xcap_answer(resp, XCAP_OUTCOME_FORBIDDEN, "%s", w->error.phrase);
		write_free(w);
		w = NULL;
	} else if (err) {
		xcap_answer(resp, w->node_outcome, "%s",
			    w->is_delete ? "the node selector selects no single node" : "cannot apply the node selector");
		write_free(w);
		w = NULL;
	}
out:
	xcap_cache_release(x->cache, view);
	xcap_selector_free(sel);
	free(doc);
	return w;
}

struct xcap_write *xcap_write_prepare(struct xcap *x, const struct xcap_request *req,
				      struct xcap_response *resp)
{
	const struct xcap_auid *a;
	struct xcap_write *w;
	char etag[STORE_ETAG_MAX];
	char *old = NULL;
	size_t old_len = 0;
	enum xdms_err err;
	bool exists;

	if (req->method != XCAP_METHOD_PUT && req->method != XCAP_METHOD_DELETE) {
		xcap_answer(resp, XCAP_OUTCOME_NOT_ALLOWED, "method not allowed");
		resp->allow = ALLOW_DOCUMENT;
		return NULL;
	}
	a = xcap_resolve(x, req, true, resp);
	if (!a)
		return NULL;
	if (req->uri->node_selector)
		return prepare_node(x, a, req, resp);
	if (req->method == XCAP_METHOD_PUT && !media_type_is(req->content_type, a->mime) &&
	    !generic_type_allowed(x, a, req->content_type, req->body, req->body_len)) {
		xcap_answer(resp, XCAP_OUTCOME_UNSUPPORTED_TYPE,
			    "a document of %s must be sent as %s, not %s", a->name, a->mime,
			    req->content_type ? req->content_type : "a body without Content-Type");
		return NULL;
	}
	/* Preconditions first (RFC 4825 §8.2.6), against the committed document;
	 * the writer checks them again at commit time. */
	/* The usage's rules compare with the old document: copy it only then. */
	err = snapshot(x, req->uri->doc_selector, &exists, etag, a->hook && a->hook->check ? &old : NULL,
		       &old_len, NULL);
	if (err) {
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "storage failure: %s", xdms_err_str(err));
		return NULL;
	}
	w = NULL;
	if (xcap_precond_eval(req->if_match, req->if_none_match, exists ? etag : NULL, false) != XCAP_PRECOND_OK) {
		xcap_answer(resp, XCAP_OUTCOME_PRECONDITION_FAILED, "precondition failed");
		goto out;
	}
	if (req->method == XCAP_METHOD_DELETE && !exists) {
		xcap_answer(resp, XCAP_OUTCOME_NOT_FOUND, "no document %s", req->uri->doc_selector);
		goto out;
	}
	w = write_new(x, a, req);
	snprintf(w->base_etag, sizeof(w->base_etag), "%s", etag);
	if (req->method == XCAP_METHOD_PUT)
		err = document_check(w, req->body, req->body_len, old, old_len);
	else
		err = run_hook(w, old, old_len, NULL, 0);
	if (err == XDMS_ERR_CONFLICT) {
		xcap_answer_conflict(resp, &w->error);
	} else if (err == XDMS_ERR_DENIED) {
		xcap_answer(resp, XCAP_OUTCOME_FORBIDDEN, "%s", w->error.phrase);
	} else if (err) {
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "cannot check the document: %s", xdms_err_str(err));
	} else {
		w->is_checked = true;
		goto out;
	}
	write_free(w);
	w = NULL;
out:
	free(old);
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
		if (w->sel) {
			resp->outcome = w->node_outcome;
			snprintf(resp->etag, sizeof(resp->etag), "%s", w->sw.etag);
			/* The next element request on this document finds the version
			 * this one made, scanned. */
			if (w->x->cache && w->new_doc && w->new_scan) {
				xcap_cache_release(w->x->cache, xcap_cache_put(w->x->cache, w->selector, w->sw.etag,
									     w->new_doc, w->new_len, w->new_scan));
				w->new_doc = NULL;
				w->new_scan = NULL;
			}
		} else if (w->is_delete) {
			resp->outcome = XCAP_OUTCOME_OK;
		} else {
			resp->outcome = w->sw.is_created ? XCAP_OUTCOME_CREATED : XCAP_OUTCOME_OK;
			snprintf(resp->etag, sizeof(resp->etag), "%s", w->sw.etag);
		}
		break;
	case XDMS_ERR_CONFLICT:
		xcap_answer_conflict(resp, &w->error);
		break;
	case XDMS_ERR_DENIED:
		xcap_answer(resp, XCAP_OUTCOME_FORBIDDEN, "%s",
			    w->error.phrase[0] ? w->error.phrase : "not allowed to make this change");
		break;
	case XDMS_ERR_PRECOND:
		xcap_answer(resp, XCAP_OUTCOME_PRECONDITION_FAILED, "precondition failed");
		break;
	case XDMS_ERR_NOTFOUND:
		xcap_answer(resp, XCAP_OUTCOME_NOT_FOUND, "no such node in %s", w->selector);
		break;
	case XDMS_ERR_TOOBIG:
		xcap_answer(resp, XCAP_OUTCOME_URI_TOO_LONG, "the document selector is too long to store");
		break;
	case XDMS_ERR_FULL:
		xcap_answer(resp, XCAP_OUTCOME_STORE_FULL, "the store is full; nothing was written");
		break;
	case XDMS_ERR_BUSY:
		xcap_answer(resp, XCAP_OUTCOME_UNAVAILABLE,
			    "the server is shutting down or the user is moving to another shard; "
			    "nothing was written");
		break;
	default:
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "storage failure (%s); nothing was written",
			    xdms_err_str(w->sw.result));
		break;
	}
	write_free(w);
}
