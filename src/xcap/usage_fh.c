/* SPDX-License-Identifier: MIT */
/*
 * org.openmobilealliance.cab-feature-handler (SPEC §4.3). Two rules beyond
 * the schema:
 *
 * Uniqueness (rule 3): every request (<import-profile>, <export-profile>,
 * <subscribe-profile>) has an @id unique across the whole document; a
 * duplicate is a <uniqueness-failure> whose field selects the second one
 * and whose <alt-value> proposes a free id.
 *
 * Ownership (rule 2), by comparing the document before and after the write:
 *  - the principal (a user) writes requests, never a <response>: for every
 *    request present before and after, its <response> must be byte-for-byte
 *    unchanged, and a new request carries none (409 <constraint-failure>
 *    naming the request). A client runs a finished request again by changing
 *    any of its bytes other than the <response>; the documented way is a new
 *    value of its `created` attribute (an attribute PUT);
 *  - the trusted IWF / CAB server writes <response> elements and may delete
 *    <credentials> (it consumes them), nothing else (403): the document with
 *    every <response> and <credentials> cut out must be the same before and
 *    after, and no request may gain or change credentials;
 *  - an administrator is not restricted.
 *
 * Jobs (SPEC §4.3 rule 5, §5.3 step 1), in the commit hook, inside the
 * transaction of the write: a principal's or administrator's write queues a
 * job for every <import-profile> and <export-profile> that is new or whose
 * bytes other than its <response> hash differently from the request's current
 * job, and drops (cancelling its job and ending its watch, if it is a
 * subscribe-profile being watched) every request that disappeared. A
 * trusted server's write queues nothing: it ends a request's job when it
 * stores a final <response> (so a response and its job's end commit
 * together), and after it consumed <credentials> it records the request's new
 * hash, so that the client writing the document back unchanged queues nothing.
 * Only the default document ("index") carries requests the IWF carries out.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <nettle/sha2.h>

#include "base/mem.h"
#include "store/store.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

#define FH_NS "urn:oma:xml:cab:feature-handler"

static const char *const request_kinds[] = { "import-profile", "export-profile", "subscribe-profile" };

static bool is_request(const struct xml_scan *scan, uint32_t e)
{
	for (size_t i = 0; i < sizeof(request_kinds) / sizeof(request_kinds[0]); i++)
		if (xcap_scan_is(scan, e, FH_NS, request_kinds[i]))
			return true;
	return false;
}

/* The request with @id in @scan, or XML_SCAN_NONE. */
static uint32_t request_by_id(const struct xml_scan *scan, const char *id)
{
	if (!scan || !scan->elem_count)
		return XML_SCAN_NONE;
	for (uint32_t r = scan->elems[0].first_child; r != XML_SCAN_NONE; r = scan->elems[r].next_sibling) {
		char *v;
		bool is_match;

		if (!is_request(scan, r))
			continue;
		v = xcap_scan_attr(scan, r, "id");
		is_match = v && strcmp(v, id) == 0;
		free(v);
		if (is_match)
			return r;
	}
	return XML_SCAN_NONE;
}

/* The bytes of the @local child of request @r ("" with length 0 when absent). */
static const char *child_bytes(const struct xml_scan *scan, uint32_t r, const char *local, size_t *len)
{
	uint32_t c = r == XML_SCAN_NONE ? XML_SCAN_NONE :
					  xcap_scan_next(scan, scan->elems[r].first_child, FH_NS, local);

	if (c == XML_SCAN_NONE) {
		*len = 0;
		return "";
	}
	*len = scan->elems[c].end - scan->elems[c].start;
	return scan->data + scan->elems[c].start;
}

static bool same_child(const struct xml_scan *a, uint32_t ra, const struct xml_scan *b, uint32_t rb,
		       const char *local)
{
	size_t la, lb;
	const char *pa = child_bytes(a, ra, local, &la), *pb = child_bytes(b, rb, local, &lb);

	return la == lb && memcmp(pa, pb, la) == 0;
}

static enum xdms_err check_unique_ids(const struct xml_scan *scan, struct xcap_error *e)
{
	for (uint32_t r = scan->elems[0].first_child; r != XML_SCAN_NONE; r = scan->elems[r].next_sibling) {
		char *id;
		uint32_t first;

		if (!is_request(scan, r))
			continue;
		id = xcap_scan_attr(scan, r, "id");
		if (!id)
			continue; /* required by the schema */
		first = request_by_id(scan, id);
		if (first != r) {
			size_t len;
			const char *kind = xml_scan_elem_local(scan, r, &len);

			xcap_error_set(e, XCAP_ERROR_UNIQUENESS_FAILURE,
				       "request id \"%s\" is used twice; every request needs its own id", id);
			e->field = xasprintf("cab-feature-handler/%.*s[@id=\"%s\"]/@id", (int)len, kind, id);
			for (unsigned i = 2; i < 1000 && !e->alt_value; i++) {
				char *cand = xasprintf("%s-%u", id, i);

				if (request_by_id(scan, cand) == XML_SCAN_NONE)
					e->alt_value = cand;
				else
					free(cand);
			}
			free(id);
			return XDMS_ERR_CONFLICT;
		}
		free(id);
	}
	return XDMS_ERR_OK;
}

/* The principal may not add, change or remove a <response>. */
static enum xdms_err check_principal(const struct xml_scan *old, const struct xml_scan *new_scan,
				     struct xcap_error *e)
{
	for (uint32_t r = new_scan->elems[0].first_child; r != XML_SCAN_NONE; r = new_scan->elems[r].next_sibling) {
		char *id;
		uint32_t before;
		bool is_ok;
		size_t kind_len;
		const char *kind;

		if (!is_request(new_scan, r))
			continue;
		id = xcap_scan_attr(new_scan, r, "id");
		before = id ? request_by_id(old, id) : XML_SCAN_NONE;
		is_ok = before == XML_SCAN_NONE ? xcap_scan_next(new_scan, new_scan->elems[r].first_child, FH_NS,
								 "response") == XML_SCAN_NONE :
						  same_child(old, before, new_scan, r, "response");
		if (!is_ok) {
			/* Name the request and say what to do: the usual cause is a
			 * client that PUT its own copy of the document, without the
			 * <response> the server wrote since. */
			kind = xml_scan_elem_local(new_scan, r, &kind_len);
			xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
				       before == XML_SCAN_NONE ?
					       "response elements are written by the CAB server only: the new "
					       "request \"%s\" (%.*s) may not carry one" :
					       "response elements are written by the CAB server only: the <response> "
					       "of request \"%s\" (%.*s) was added, changed or removed. Send it as "
					       "last read (GET the document first); to run the request again, change "
					       "its created attribute",
				       id ? id : "", (int)kind_len, kind);
			free(id);
			return XDMS_ERR_CONFLICT;
		}
		free(id);
	}
	return XDMS_ERR_OK;
}

/* @scan's bytes with every <response> and <credentials> of a request cut out. */
static char *skeleton(const struct xml_scan *scan, size_t *len)
{
	struct buf b;
	size_t at = 0;

	buf_init(&b, scan->len + 1);
	for (uint32_t r = scan->elems[0].first_child; r != XML_SCAN_NONE; r = scan->elems[r].next_sibling) {
		if (!is_request(scan, r))
			continue;
		for (uint32_t c = scan->elems[r].first_child; c != XML_SCAN_NONE; c = scan->elems[c].next_sibling) {
			if (!xcap_scan_is(scan, c, FH_NS, "response") && !xcap_scan_is(scan, c, FH_NS, "credentials"))
				continue;
			/* Cannot exceed the capacity: the skeleton is a subset of the bytes. */
			if (buf_append(&b, scan->data + at, scan->elems[c].start - at))
				abort();
			at = scan->elems[c].end;
		}
	}
	if (buf_append(&b, scan->data + at, scan->len - at))
		abort();
	return buf_take(&b, len);
}

/* The IWF writes responses and consumes credentials, nothing else. */
static enum xdms_err check_server(const struct xml_scan *old, const struct xml_scan *new_scan,
				  struct xcap_error *e)
{
	size_t old_len, new_len;
	char *a, *b;
	bool is_same;

	if (!old || !new_scan) {
		xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
			       "a trusted server may not create or delete a Feature Handler document");
		return XDMS_ERR_DENIED;
	}
	a = skeleton(old, &old_len);
	b = skeleton(new_scan, &new_len);
	is_same = old_len == new_len && memcmp(a, b, old_len) == 0;
	free(a);
	free(b);
	if (!is_same) {
		xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
			       "a trusted server may only write <response> elements and delete <credentials>");
		return XDMS_ERR_DENIED;
	}
	for (uint32_t r = new_scan->elems[0].first_child; r != XML_SCAN_NONE; r = new_scan->elems[r].next_sibling) {
		char *id;
		uint32_t before;
		size_t len;

		if (!is_request(new_scan, r))
			continue;
		child_bytes(new_scan, r, "credentials", &len);
		if (!len)
			continue;
		id = xcap_scan_attr(new_scan, r, "id");
		before = id ? request_by_id(old, id) : XML_SCAN_NONE;
		free(id);
		if (!same_child(old, before, new_scan, r, "credentials")) {
			xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE,
				       "a trusted server may delete <credentials> but not write them");
			return XDMS_ERR_DENIED;
		}
	}
	return XDMS_ERR_OK;
}

enum xdms_err xcap_check_feature_handler(const struct xcap_check *c, struct xcap_error *e)
{
	enum xdms_err err;

	if (c->new_scan && c->new_scan->elem_count) {
		err = check_unique_ids(c->new_scan, e);
		if (err)
			return err;
	}
	switch (c->who->role) {
	case XCAP_ROLE_ADMIN:
		return XDMS_ERR_OK;
	case XCAP_ROLE_SERVER:
		return check_server(c->old_scan, c->new_scan, e);
	case XCAP_ROLE_USER:
	default:
		if (!c->new_scan)
			return XDMS_ERR_OK; /* the principal may delete the whole document */
		return check_principal(c->old_scan, c->new_scan, e);
	}
}

/* ---- jobs (commit hook) ------------------------------------------------------- */

/* The XUI of a users-tree "index" document selector, or NULL (heap). */
static char *selector_xui(const char *selector)
{
	const char *u = strstr(selector, "/users/"), *end;
	size_t len = strlen(selector);

	if (!u || len < 6 || strcmp(selector + len - 6, "/index") != 0)
		return NULL;
	u += 7;
	end = selector + len - 6;
	return end > u ? xstrndup(u, (size_t)(end - u)) : NULL;
}

/* SHA-256 of request @r's bytes without its <response>, as 32 hex digits. */
static void request_hash(const struct xml_scan *scan, uint32_t r, char out[STORE_JOB_HASH_MAX])
{
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	size_t at = scan->elems[r].start;
	uint32_t resp = xcap_scan_next(scan, scan->elems[r].first_child, FH_NS, "response");

	sha256_init(&ctx);
	if (resp != XML_SCAN_NONE) {
		sha256_update(&ctx, scan->elems[resp].start - at, (const uint8_t *)scan->data + at);
		at = scan->elems[resp].end;
	}
	sha256_update(&ctx, scan->elems[r].end - at, (const uint8_t *)scan->data + at);
	sha256_digest(&ctx, sizeof(digest), digest);
	for (size_t i = 0; i < (STORE_JOB_HASH_MAX - 1) / 2; i++) {
		static const char hex[] = "0123456789abcdef";

		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[STORE_JOB_HASH_MAX - 1] = '\0';
}

static bool is_job_request(const struct xml_scan *scan, uint32_t r, enum store_job_kind *kind)
{
	if (xcap_scan_is(scan, r, FH_NS, "import-profile"))
		*kind = STORE_JOB_IMPORT;
	else if (xcap_scan_is(scan, r, FH_NS, "export-profile"))
		*kind = STORE_JOB_EXPORT;
	else if (xcap_scan_is(scan, r, FH_NS, "subscribe-profile"))
		*kind = STORE_JOB_SUBSCRIBE;
	else
		return false;
	return true;
}

/* A principal's (or administrator's) write: queue, supersede and drop jobs. */
static enum xdms_err jobs_for_client(const struct xml_scan *old, const struct xml_scan *new_scan,
				     struct store_txn *txn, const char *xui)
{
	enum xdms_err err = XDMS_ERR_OK;

	if (old && old->elem_count) {
		for (uint32_t r = old->elems[0].first_child; r != XML_SCAN_NONE && !err; r = old->elems[r].next_sibling) {
			char *id;

			if (!is_request(old, r) || !(id = xcap_scan_attr(old, r, "id")))
				continue;
			if (request_by_id(new_scan, id) == XML_SCAN_NONE) {
				err = store_job_drop_txn(txn, xui, id);
				if (err == XDMS_ERR_NOTFOUND)
					err = XDMS_ERR_OK;
				/* A deleted subscribe-profile stops being watched in
				 * the same transaction (SPEC §4.3 rule 5). */
				if (!err)
					err = store_watch_drop_txn(txn, xui, id);
			}
			free(id);
		}
	}
	if (!new_scan || !new_scan->elem_count)
		return err;
	for (uint32_t r = new_scan->elems[0].first_child; r != XML_SCAN_NONE && !err;
	     r = new_scan->elems[r].next_sibling) {
		char hash[STORE_JOB_HASH_MAX], cur_hash[STORE_JOB_HASH_MAX];
		enum store_job_kind kind;
		uint64_t job_id;
		char *id;

		if (!is_job_request(new_scan, r, &kind) || !(id = xcap_scan_attr(new_scan, r, "id")))
			continue;
		request_hash(new_scan, r, hash);
		err = store_job_current_txn(txn, xui, id, &job_id, cur_hash);
		if (err == XDMS_ERR_NOTFOUND) {
			/* A request that already has an answer (written before jobs
			 * were kept) is not carried out again. */
			err = xcap_scan_next(new_scan, new_scan->elems[r].first_child, FH_NS, "response") ==
					      XML_SCAN_NONE ?
				      store_job_add_txn(txn, xui, id, hash, kind, NULL) :
				      XDMS_ERR_OK;
		} else if (!err && strcmp(hash, cur_hash) != 0) {
			err = store_job_add_txn(txn, xui, id, hash, kind, NULL);
		}
		/* An id too long to be a job key cannot be carried out; the IWF
		 * never sees it rather than the client's write failing. */
		if (err == XDMS_ERR_INVAL)
			err = XDMS_ERR_OK;
		free(id);
	}
	return err;
}

/*
 * The text of @resp's <reason> child into @out (@size bytes), with the five
 * predefined entities decoded and anything else (a character reference, a
 * child element) kept as written: it is for people reading `xdmsctl jobs`.
 */
static void response_reason(const struct xml_scan *scan, uint32_t resp, char *out, size_t size)
{
	static const struct {
		const char *ref;
		char c;
	} refs[] = { { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&quot;", '"' }, { "&apos;", '\'' } };
	uint32_t r = xcap_scan_next(scan, scan->elems[resp].first_child, FH_NS, "reason");
	size_t n = 0, at, end;

	out[0] = '\0';
	if (r == XML_SCAN_NONE)
		return;
	at = scan->elems[r].start_end;
	end = scan->elems[r].end_start;
	while (at < end && n + 1 < size) {
		size_t i = 0;

		for (; i < sizeof(refs) / sizeof(refs[0]); i++)
			if (at + strlen(refs[i].ref) <= end &&
			    !strncmp(scan->data + at, refs[i].ref, strlen(refs[i].ref)))
				break;
		if (i < sizeof(refs) / sizeof(refs[0])) {
			out[n++] = refs[i].c;
			at += strlen(refs[i].ref);
		} else {
			out[n++] = scan->data[at++];
		}
	}
	/* Cut short: never in the middle of a UTF-8 sequence. */
	if (at < end)
		while (n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0x80)
			n--;
	if (at < end && n > 0 && ((unsigned char)out[n - 1] & 0xc0) == 0xc0)
		n--;
	out[n] = '\0';
}

/* The final state a <response> status means, or false for an interim one. */
static bool response_final(const struct xml_scan *scan, uint32_t resp, enum store_job_state *state,
			   unsigned *code)
{
	char *status = xcap_scan_attr(scan, resp, "status"), *c = xcap_scan_attr(scan, resp, "code");
	bool is_final = status && strcmp(status, "pending") != 0 && strcmp(status, "in-progress") != 0;

	*code = c ? (unsigned)strtoul(c, NULL, 10) : 0;
	*state = *code >= 200 && *code < 300 ? STORE_JOB_DONE : STORE_JOB_FAILED;
	free(status);
	free(c);
	return is_final;
}

/* A trusted server's write: end jobs whose final <response> it stored, and
 * follow the hash of requests whose <credentials> it consumed. */
static enum xdms_err jobs_for_server(const struct xml_scan *old, const struct xml_scan *new_scan,
				     struct store_txn *txn, const char *xui)
{
	enum xdms_err err = XDMS_ERR_OK;

	for (uint32_t r = new_scan->elems[0].first_child; r != XML_SCAN_NONE && !err;
	     r = new_scan->elems[r].next_sibling) {
		char hash[STORE_JOB_HASH_MAX], cur_hash[STORE_JOB_HASH_MAX];
		enum store_job_kind kind;
		enum store_job_state state;
		uint32_t before, resp;
		uint64_t job_id;
		unsigned code;
		char *id;

		if (!is_job_request(new_scan, r, &kind) || !(id = xcap_scan_attr(new_scan, r, "id")))
			continue;
		err = store_job_current_txn(txn, xui, id, &job_id, cur_hash);
		before = request_by_id(old, id);
		if (err == XDMS_ERR_NOTFOUND || err == XDMS_ERR_INVAL) {
			err = XDMS_ERR_OK;
			free(id);
			continue;
		}
		request_hash(new_scan, r, hash);
		if (!err && strcmp(hash, cur_hash) != 0)
			err = store_job_rehash_txn(txn, xui, id, hash);
		free(id);
		resp = xcap_scan_next(new_scan, new_scan->elems[r].first_child, FH_NS, "response");
		if (!err && resp != XML_SCAN_NONE && !same_child(old, before, new_scan, r, "response") &&
		    response_final(new_scan, resp, &state, &code)) {
			char reason[STORE_JOB_REASON_MAX];

			response_reason(new_scan, resp, reason, sizeof(reason));
			err = store_job_end_txn(txn, job_id, state, code, reason);
			if (err == XDMS_ERR_NOTFOUND)
				err = XDMS_ERR_OK;
		}
	}
	return err;
}

enum xdms_err xcap_commit_feature_handler(const struct xcap_check *c, struct store_txn *txn,
					  struct xcap_error *e)
{
	char *xui = selector_xui(c->selector);
	enum xdms_err err = XDMS_ERR_OK;

	if (!xui)
		return XDMS_ERR_OK;
	if (c->who->role == XCAP_ROLE_SERVER) {
		if (c->old_scan && c->new_scan && c->new_scan->elem_count)
			err = jobs_for_server(c->old_scan, c->new_scan, txn, xui);
	} else {
		err = jobs_for_client(c->old_scan, c->new_scan, txn, xui);
	}
	free(xui);
	if (err) {
		xcap_error_set(e, XCAP_ERROR_CONSTRAINT_FAILURE, "the requests could not be queued: %s",
			       xdms_err_str(err));
		/* A storage failure is not the client's conflict. */
		return err == XDMS_ERR_FULL ? err : XDMS_ERR_STORE;
	}
	return XDMS_ERR_OK;
}
