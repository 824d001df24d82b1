/* SPDX-License-Identifier: MIT */
/*
 * XCAP reads (RFC 4825 §8.3, §7.10): GET and HEAD of a document, of an
 * element, attribute or the namespace bindings selected by a node selector,
 * of a usage's directory of documents and of the generated xcap-caps.
 *
 * Design: a read runs in one store snapshot on the caller's thread and
 * copies the document bytes into the response, so no LMDB page outlives the
 * snapshot. Preconditions are evaluated against the snapshot's ETag (304 on
 * a matching If-None-Match).
 *
 * Threads: any thread; nothing is shared but the read-only service.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/hash.h"
#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

struct dir_walk {
	const struct xcap *x;
	const char *base_url;
	struct buf *out;
	enum xdms_err err;
};

static int dir_entry(void *arg, const char *selector, const struct store_doc *doc)
{
	struct dir_walk *dw = arg;
	char *uri = xcap_resource_uri(dw->x, dw->base_url, selector);
	char when[32];
	time_t t = (time_t)(doc->mtime_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	dw->err = buf_append_str(dw->out, "    <entry uri=\"");
	if (!dw->err)
		dw->err = buf_append_xml_escaped(dw->out, uri, strlen(uri));
	if (!dw->err)
		dw->err = buf_append_str(dw->out, "\" etag=\"");
	if (!dw->err)
		dw->err = buf_append_xml_escaped(dw->out, doc->etag, strlen(doc->etag));
	if (!dw->err)
		dw->err = buf_printf(dw->out, "\" last-modified=\"%s\" size=\"%zu\"/>\n", when, doc->data_len);
	free(uri);
	return dw->err != XDMS_ERR_OK;
}

/*
 * The OMA xcap-directory document (OMA XDM Core, SPEC §3.4): one <folder> per
 * usage with a users tree, listing the user's documents with their current
 * ETags, sizes and modification times. Built from one store snapshot, so the
 * listing is consistent; each folder is one ordered key-range walk.
 */
static void read_directory(struct xcap *x, const struct xcap_auid *a, const struct xcap_request *req,
			   struct xcap_response *resp)
{
	struct store_read *rd = NULL;
	struct buf body;
	struct dir_walk dw = { x, req->base_url, &body, XDMS_ERR_OK };
	enum xcap_precond pc;
	enum xdms_err err;
	char *prefix = NULL;

	if (req->uri->is_global || strcmp(req->uri->doc_path, a->default_document) != 0) {
		xcap_answer(resp, XCAP_OUTCOME_NOT_FOUND, "the directory of %s is %s/users/<XUI>/%s",
			    a->name, a->name, a->default_document);
		return;
	}
	buf_init(&body, 64 * 1024 * 1024);
	err = store_read_begin(x->st, &rd);
	if (!err)
		err = buf_append_str(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
					     "<xcap-directory xmlns=\"urn:oma:xml:xdm:xcap-directory\">\n");
	for (size_t i = 0; !err && i < xcap_registry_count(x->reg); i++) {
		const struct xcap_auid *u = xcap_registry_at(x->reg, i);

		if (u->is_generated || !(u->scope & XCAP_SCOPE_USERS))
			continue;
		err = buf_append_str(&body, "  <folder auid=\"");
		if (!err)
			err = buf_append_xml_escaped(&body, u->name, strlen(u->name));
		if (!err)
			err = buf_append_str(&body, "\">\n");
		free(prefix);
		prefix = xasprintf("%s/users/%s/", u->name, req->uri->xui);
		if (!err)
			err = store_doc_list(rd, prefix, dir_entry, &dw);
		if (!err)
			err = dw.err;
		if (!err)
			err = buf_append_str(&body, "  </folder>\n");
	}
	if (!err)
		err = buf_append_str(&body, "</xcap-directory>\n");
	store_read_end(rd);
	free(prefix);
	if (err) {
		buf_cleanup(&body);
		xcap_answer(resp, err == XDMS_ERR_TOOBIG ? XCAP_OUTCOME_TOO_LARGE : XCAP_OUTCOME_INTERNAL,
			    "cannot list the documents: %s", xdms_err_str(err));
		return;
	}
	snprintf(resp->etag, sizeof(resp->etag), "dir-%016llx", (unsigned long long)fnv1a(body.data, body.len));
	pc = xcap_precond_eval(req->if_match, req->if_none_match, resp->etag, true);
	if (pc != XCAP_PRECOND_OK) {
		buf_cleanup(&body);
		if (pc == XCAP_PRECOND_NOT_MODIFIED)
			resp->outcome = XCAP_OUTCOME_NOT_MODIFIED;
		else
			xcap_answer(resp, XCAP_OUTCOME_PRECONDITION_FAILED, "precondition failed");
		return;
	}
	resp->outcome = XCAP_OUTCOME_OK;
	resp->content_type = a->mime;
	buf_cleanup(&resp->body);
	resp->body = body;
}

static void read_generated(struct xcap *x, const struct xcap_auid *a, const struct xcap_request *req,
			   struct xcap_response *resp)
{
	enum xcap_precond pc;

	if (a->hook && !strcmp(a->hook->name, "xcap_directory")) {
		read_directory(x, a, req, resp);
		return;
	}
	if (strcmp(a->name, "xcap-caps") != 0 || !req->uri->is_global || strcmp(req->uri->doc_path, "index")) {
		xcap_answer(resp, XCAP_OUTCOME_NOT_FOUND, "no such document");
		return;
	}
	pc = xcap_precond_eval(req->if_match, req->if_none_match, x->caps_etag, true);
	snprintf(resp->etag, sizeof(resp->etag), "%s", x->caps_etag);
	if (pc == XCAP_PRECOND_FAILED) {
		xcap_answer(resp, XCAP_OUTCOME_PRECONDITION_FAILED, "precondition failed");
		return;
	}
	if (pc == XCAP_PRECOND_NOT_MODIFIED) {
		resp->outcome = XCAP_OUTCOME_NOT_MODIFIED;
		return;
	}
	resp->outcome = XCAP_OUTCOME_OK;
	resp->content_type = a->mime;
	if (buf_append(&resp->body, x->caps, x->caps_len))
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "response too large");
}

/* GET of an element, an attribute or namespace bindings (RFC 4825 §8.3, §10). */
static void read_node(struct xcap *x, const struct xcap_auid *a, const struct xcap_request *req,
		      const struct store_doc *doc, struct xcap_response *resp)
{
	struct xcap_selector *sel = NULL;
	struct xcap_node_result nr = { 0 };
	const struct xcap_view *view;
	const char *why = NULL;

	if (xcap_selector_parse(req->uri->node_selector, req->uri->query, a->ns, &sel, &why)) {
		xcap_answer(resp, XCAP_OUTCOME_BAD_REQUEST, "malformed node selector: %s",
			    why ? why : "not RFC 4825 syntax");
		resp->etag[0] = '\0';
		return;
	}
	view = xcap_view_of(x, req->uri->doc_selector, doc->etag, doc->data, doc->data_len);
	if (view) {
		size_t len;
		const char *data = xcap_view_data(view, &len);

		xcap_node_get_scanned(data, len, xcap_view_scan(view), sel, &nr);
		xcap_cache_release(x->cache, view);
	} else {
		xcap_node_get(doc->data, doc->data_len, sel, &nr);
	}
	if (nr.outcome != XCAP_OUTCOME_OK) {
		/* No ETag on a 404: the resource does not exist. */
		xcap_answer(resp, nr.outcome == XCAP_OUTCOME_CONFLICT ? XCAP_OUTCOME_NOT_FOUND : nr.outcome,
			    "the node selector selects no single node of the document");
		resp->etag[0] = '\0';
		goto out;
	}
	resp->outcome = XCAP_OUTCOME_OK;
	switch (xcap_selector_kind(sel)) {
	case XCAP_NODE_ATTRIBUTE:
		resp->content_type = XCAP_ATT_TYPE;
		break;
	case XCAP_NODE_NAMESPACES:
		resp->content_type = XCAP_NS_TYPE;
		break;
	default:
		resp->content_type = XCAP_EL_TYPE;
		break;
	}
	if (buf_append(&resp->body, nr.body, nr.body_len))
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "response too large");
out:
	xcap_node_result_cleanup(&nr);
	xcap_selector_free(sel);
}

void xcap_read(struct xcap *x, const struct xcap_request *req, struct xcap_response *resp)
{
	const struct xcap_auid *a;
	struct store_read *rd = NULL;
	struct store_doc doc;
	enum xcap_precond pc;
	enum xdms_err err;

	if (req->method != XCAP_METHOD_GET && req->method != XCAP_METHOD_HEAD) {
		xcap_answer(resp, XCAP_OUTCOME_NOT_ALLOWED, "method not allowed");
		resp->allow = ALLOW_DOCUMENT;
		return;
	}
	a = xcap_resolve(x, req, false, resp);
	if (!a)
		return;
	if (a->is_generated) {
		if (req->uri->node_selector) {
			xcap_answer(resp, XCAP_OUTCOME_NOT_FOUND,
				    "%s documents are generated whole; they have no element resources",
				    a->name);
			return;
		}
		read_generated(x, a, req, resp);
		return;
	}
	err = store_read_begin(x->st, &rd);
	if (err) {
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "storage failure: %s", xdms_err_str(err));
		return;
	}
	err = store_doc_get(rd, req->uri->doc_selector, &doc);
	if (err && err != XDMS_ERR_NOTFOUND) {
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "storage failure: %s", xdms_err_str(err));
		goto out;
	}
	pc = xcap_precond_eval(req->if_match, req->if_none_match, err ? NULL : doc.etag, true);
	if (pc == XCAP_PRECOND_FAILED) {
		xcap_answer(resp, XCAP_OUTCOME_PRECONDITION_FAILED, "precondition failed");
		goto out;
	}
	if (err) {
		xcap_answer(resp, XCAP_OUTCOME_NOT_FOUND, "no document %s", req->uri->doc_selector);
		goto out;
	}
	snprintf(resp->etag, sizeof(resp->etag), "%s", doc.etag);
	if (pc == XCAP_PRECOND_NOT_MODIFIED) {
		resp->outcome = XCAP_OUTCOME_NOT_MODIFIED;
		goto out;
	}
	if (req->uri->node_selector) {
		read_node(x, a, req, &doc, resp);
		goto out;
	}
	resp->outcome = XCAP_OUTCOME_OK;
	resp->content_type = a->mime;
	if (buf_append(&resp->body, doc.data, doc.data_len))
		xcap_answer(resp, XCAP_OUTCOME_INTERNAL, "response too large");
out:
	store_read_end(rd);
}
