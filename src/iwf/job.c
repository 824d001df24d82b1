/* SPDX-License-Identifier: MIT */
/*
 * Carrying out one job (SPEC §5.3): read the request, call the 3rd party
 * through its adapter, transform, merge and store, then write <response>.
 *
 * Exactly once. The job ends in the transaction that stores its final
 * <response> (the Feature Handler's commit hook), and the response is written
 * with If-Match on the Feature Handler document the worker just checked: the
 * request is still there and its current job is this one. A worker that dies
 * before that leaves the job leased; after the lease it runs again from the
 * start, and the import's merge finds its own earlier additions already in
 * the PCC, so a repeated import adds nothing twice. A job parses its request
 * once: its own later writes to the document (the credentials' removal, the
 * <response>) check the claim and the document's ETag (struct fh_seen), and
 * read the request again only when somebody else changed the document.
 *
 * Every write goes through xcap_write_* as the trusted IWF identity, so the
 * PCC and the Feature Handler get validation, ETags, the change feed and
 * notifications like any client's write. A PCC write that loses a race (412)
 * is computed again on the new PCC, up to three times (then 409).
 *
 * Credentials from the request are sealed into the store and deleted from
 * the document before the 3rd party is called (cred.c); in clear they go to
 * libcurl and nowhere else: no log line or <reason> contains them.
 *
 * Threads: runs on a worker; holds no store snapshot while it writes.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "http/http.h"
#include "iwf/iwf_int.h"
#include "xml/xml.h"

#define STORE_RETRIES 3    /* PCC writes that lost a race (SPEC §5.3 step 6) */
#define RESPONSE_RETRIES 8 /* <response> writes that lost a race with the client */
#define RETRY_DELAY_MAX_MS 300000u
#define SLOT_WAIT_MS 200    /* a worker waits this long for a busy adapter's slot */
#define SLOT_REQUEUE_MS 500 /* then its job waits this long in the queue */
#define FH_NS_DECL " xmlns=\"" IWF_FH_NS "\"" /* as response_body() writes it */
#define POISON_EXTRA 3     /* runs beyond max_attempts that never reached an outcome */

/* One request, as read from the Feature Handler document. */
struct request {
	char *third_party;
	char *remote_user;
	char *username;
	char *password;
	char *token;
	char *credential_ref;
	char *fields;
	char *merge_policy;
	char *source_sel;
	char *expires;
	char *target;           /* what a request moves: "pcc" (default) or another part */
	bool has_fh_default_ns; /* the Feature Handler namespace is the default one at the request */
};

/*
 * What a job knows of its request's Feature Handler document: its ETag when
 * the job last read or wrote it, and what the writes need from the request
 * there. While the document keeps that ETag, a write of a child of the
 * request needs the job's claim checked, not the document parsed again.
 */
struct fh_seen {
	char etag[STORE_ETAG_MAX]; /* "" = unknown: read and parse the document */
	bool has_fh_default_ns;
};

static void request_cleanup(struct request *q)
{
	free(q->third_party);
	free(q->remote_user);
	free(q->username);
	if (q->password) /* not left behind in freed memory */
		memset(q->password, 0, strlen(q->password));
	free(q->password);
	if (q->token)
		memset(q->token, 0, strlen(q->token));
	free(q->token);
	free(q->credential_ref);
	free(q->fields);
	free(q->merge_policy);
	free(q->source_sel);
	free(q->expires);
	free(q->target);
	memset(q, 0, sizeof(*q));
}

static struct xml_node *fh_child(const struct xml_node *parent, const char *name)
{
	return xml_node_child(parent, IWF_FH_NS, name);
}

static char *fh_text(const struct xml_node *parent, const char *name)
{
	return xml_node_text(fh_child(parent, name));
}

static const char *kind_element(enum store_job_kind k)
{
	if (k == STORE_JOB_SUBSCRIBE)
		return "subscribe-profile";
	return k == STORE_JOB_EXPORT ? "export-profile" : "import-profile";
}

static char *fh_selector(const char *xui)
{
	return xasprintf("%s/users/%s/index", IWF_FH_AUID, xui);
}

/*
 * NOTFOUND unless @job is still its request's current job and still this
 * worker's claim: a deleted or changed request cancelled it, and a worker
 * whose lease ran out must not act for the worker that claimed it after.
 */
static enum xdms_err claim_check(struct store_read *rd, const struct store_job *job)
{
	struct store_job now;
	uint64_t current = 0;
	enum xdms_err err = store_job_current(rd, job->xui, job->request_id, &current);

	if (!err && current != job->id)
		err = XDMS_ERR_NOTFOUND;
	if (!err)
		err = store_job_get(rd, job->id, &now);
	if (!err && (now.state != STORE_JOB_RUNNING || now.attempts != job->attempts))
		err = XDMS_ERR_NOTFOUND;
	return err;
}

/* For a watch's writes, after its job ended: NOTFOUND unless the request's
 * current job is still @job_id (the version the watch was set up for). */
static enum xdms_err watch_check(struct store_read *rd, const struct store_job *job, uint64_t job_id)
{
	uint64_t current = 0;
	enum xdms_err err = store_job_current(rd, job->xui, job->request_id, &current);

	return !err && current != job_id ? XDMS_ERR_NOTFOUND : err;
}

/* True when @job is still its request's current job (ended or not). */
static bool job_is_current(const struct iwf_env *env, const struct store_job *job)
{
	struct store_read *rd = NULL;
	enum xdms_err err = store_read_begin(env->st, &rd);

	if (!err)
		err = watch_check(rd, job, job->id);
	store_read_end(rd);
	return err == XDMS_ERR_OK;
}

/* claim_check in a snapshot of its own: true when the job is still ours. */
static bool job_is_ours(const struct iwf_env *env, const struct store_job *job)
{
	struct store_read *rd = NULL;
	enum xdms_err err = store_read_begin(env->st, &rd);

	if (!err)
		err = claim_check(rd, job);
	store_read_end(rd);
	return err == XDMS_ERR_OK;
}

/*
 * Reads the request of @job from the user's Feature Handler document, if it
 * is still this job's and this worker's claim: NOTFOUND when the request is
 * gone, belongs to a newer job, or the job was claimed again or ended.
 * *etag gets the document's ETag.
 */
/*
 * In one snapshot: checks that @job is still this worker's claim (or, with
 * @watch_job_id, its request's current job), and reads the job's Feature
 * Handler document: its ETag into @etag and, when @data is not NULL, a copy
 * of its bytes (heap) into *data and *len.
 */
static enum xdms_err fh_read(const struct iwf_env *env, const struct store_job *job, uint64_t watch_job_id,
			     char etag[STORE_ETAG_MAX], char **data, size_t *len)
{
	char *sel = fh_selector(job->xui);
	struct store_read *rd = NULL;
	struct store_doc d;
	enum xdms_err err = store_read_begin(env->st, &rd);

	if (!err)
		err = watch_job_id ? watch_check(rd, job, watch_job_id) : claim_check(rd, job);
	if (!err)
		err = store_doc_get(rd, sel, &d);
	if (!err) {
		snprintf(etag, STORE_ETAG_MAX, "%s", d.etag);
		if (data) {
			*data = xstrndup(d.data, d.data_len);
			*len = d.data_len;
		}
	}
	store_read_end(rd);
	free(sel);
	return err;
}

static enum xdms_err request_load_as(const struct iwf_env *env, const struct store_job *job, uint64_t watch_job_id,
				     struct request *q, char etag[STORE_ETAG_MAX])
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	char *data = NULL;
	size_t len = 0;
	enum xdms_err err;
	struct xml_node *r;

	memset(q, 0, sizeof(*q));
	err = fh_read(env, job, watch_job_id, etag, &data, &len);
	if (err)
		goto out;
	if (xml_parse(data, len, IWF_MAX_DEPTH, &doc, &issue)) {
		err = XDMS_ERR_CORRUPT;
		goto out;
	}
	err = XDMS_ERR_NOTFOUND;
	for (r = fh_child(xml_doc_root_elem(doc), kind_element(job->kind)); r;
	     r = xml_node_next(r, IWF_FH_NS, kind_element(job->kind))) {
		char *id = xml_node_attr(r, "id");
		bool is_match = id && !strcmp(id, job->request_id);

		free(id);
		if (is_match)
			break;
	}
	if (r) {
		struct xml_node *tp = fh_child(r, "third-party"), *cred = fh_child(r, "credentials");
		char *tid = xml_node_attr(tp, "id");
		const char *dflt = xml_node_ns_in_scope(r, NULL);

		q->has_fh_default_ns = dflt && !strcmp(dflt, IWF_FH_NS);
		q->third_party = xstrdup(tid ? tid : "");
		free(tid);
		q->remote_user = xml_trim(fh_text(r, "remote-user"));
		q->fields = fh_text(r, "fields");
		q->merge_policy = xml_trim(fh_text(r, "merge-policy"));
		q->source_sel = xml_trim(fh_text(r, "source-sel"));
		q->expires = xml_trim(fh_text(r, "expires"));
		q->target = xml_trim(fh_text(r, "target"));
		if (cred) {
			q->username = fh_text(cred, "username");
			q->password = fh_text(cred, "password");
			q->token = xml_trim(fh_text(cred, "token"));
			q->credential_ref = xml_trim(fh_text(cred, "credential-ref"));
		}
		err = XDMS_ERR_OK;
	}
out:
	if (data && q->password) /* the document held a password too */
		memset(data, 0, len);
	free(data);
	xml_doc_free(doc);
	return err;
}

static enum xdms_err request_load(const struct iwf_env *env, const struct store_job *job, struct request *q,
				  char etag[STORE_ETAG_MAX])
{
	return request_load_as(env, job, 0, q, etag);
}

/*
 * True when @job is still this worker's claim (or, with @watch_job_id, its
 * request's current job) and its Feature Handler document still has ETag
 * @etag: what request_load_as() would check, without copying and parsing
 * the document. False when anything differs (the caller reads it again).
 */
static bool request_unchanged(const struct iwf_env *env, const struct store_job *job, uint64_t watch_job_id,
			      const char *etag)
{
	char now[STORE_ETAG_MAX];

	return fh_read(env, job, watch_job_id, now, NULL, NULL) == XDMS_ERR_OK && strcmp(now, etag) == 0;
}

/* ---- writes through the XCAP path --------------------------------------------------- */

static bool is_path_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("-._~", c);
}

static void append_pct(struct buf *b, const char *s, bool keep_slash)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc = is_path_char(*p) || (keep_slash && *p == '/') ? buf_append(b, p, 1) :
									  buf_printf(b, "%%%02X", *p);

		if (rc)
			abort();
	}
}

/* The request path of a user's document, with an optional node selector. */
static char *doc_path(const struct iwf_env *env, const char *auid, const char *xui, const char *node_sel)
{
	struct buf b;

	buf_init(&b, 16384);
	if (buf_printf(&b, "%s/%s/users/", env->opt->root_path, auid))
		abort();
	append_pct(&b, xui, false);
	if (buf_append_str(&b, "/index"))
		abort();
	if (node_sel) {
		if (buf_append_str(&b, "/~~/"))
			abort();
		append_pct(&b, node_sel, true);
	}
	return buf_take(&b, NULL);
}

/* Runs one XCAP write as the IWF. Returns the HTTP status a client would
 * have got (http_status_of()), which the job reports; the new ETag
 * goes to @etag and the start of an error body to @why. */
static unsigned xcap_write_as(const struct iwf_env *env, enum xcap_method m, const char *path, const char *ctype,
			      const char *body, size_t len, const char *if_match, const char *if_none_match,
			      bool is_commit_ack, char etag[STORE_ETAG_MAX], char *why, size_t why_len)
{
	struct xcap_identity who = { env->opt->identity, XCAP_ROLE_SERVER };
	struct xcap_request req = { 0 };
	struct xcap_response resp;
	struct xcap_write *w;
	struct xcap_uri uri;
	unsigned status;

	if (xcap_uri_parse(env->opt->root_path, path, NULL, &uri)) {
		snprintf(why, why_len, "the IWF built an unusable XCAP path");
		return 500;
	}
	req.method = m;
	req.uri = &uri;
	req.content_type = ctype;
	req.if_match = if_match;
	req.if_none_match = if_none_match;
	req.body = body;
	req.body_len = len;
	req.who = &who;
	req.base_url = "";
	req.is_commit_ack = is_commit_ack;
	xcap_response_init(&resp);
	w = xcap_write_prepare(env->x, &req, &resp);
	if (w) {
		xcap_write_run(env->x, w);
		xcap_write_finish(w, &resp);
	}
	status = http_status_of(resp.outcome);
	if (etag)
		snprintf(etag, STORE_ETAG_MAX, "%s", resp.etag);
	if (why)
		snprintf(why, why_len, "%.*s", (int)(resp.body.len > 200 ? 200 : resp.body.len),
			 resp.body.data ? resp.body.data : "");
	xcap_response_cleanup(&resp);
	xcap_uri_cleanup(&uri);
	return status;
}

static unsigned xcap_write(const struct iwf_env *env, enum xcap_method m, const char *path, const char *ctype,
			   const char *body, size_t len, const char *if_match, const char *if_none_match,
			   char etag[STORE_ETAG_MAX], char *why, size_t why_len)
{
	return xcap_write_as(env, m, path, ctype, body, len, if_match, if_none_match, false, etag, why, why_len);
}

/* ---- the 3rd-party half of an import -------------------------------------------------- */

static enum xdms_err transform(const struct iwf_env *env, const char *name, const char *data, size_t len,
			       const char *xui, const char *remote_user, size_t max_out, char **out,
			       size_t *out_len, struct iwf_result *r)
{
	const char *params[] = { "xui", xui, "remote-user", remote_user ? remote_user : "" };
	const struct xml_xslt *x;
	char *why = NULL;
	enum xdms_err err;

	err = iwf_xslt_get(env->xslt, env->st, name, &x, &why);
	if (err) {
		iwf_result_set(r, 502, false, "XSLT failure: %s", why ? why : xdms_err_str(err));
		free(why);
		return err;
	}
	err = xml_xslt_apply(x, data, len, params, 2, max_out, out, out_len, &why);
	if (err == XDMS_ERR_TOOBIG)
		iwf_result_set(r, 413, false, "%s", why);
	else if (err)
		iwf_result_set(r, 502, false, "the 3rd party's data could not be transformed by %s: %s", name,
			       why ? why : xdms_err_str(err));
	free(why);
	return err;
}

/* The time since @t0 (CLOCK_MONOTONIC), in seconds: a 3rd-party call's for
 * the adapter's latency histogram. */
static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The adapter's import call alone: the 3rd party's answer into @body. */
static enum xdms_err profile_call(const struct iwf_env *env, void *curl, const struct iwf_adapter *a, const char *xui,
				  const char *remote_user, const char *username, const char *password,
				  const char *token, struct buf *body, struct iwf_result *r, const struct iwf_seal *seal,
				  struct iwf_sync *sync)
{
	struct iwf_call call = { .env = env, .curl = curl, .a = a, .username = username, .password = password,
				 .token = token, .remote_user = remote_user };
	struct timespec t0;
	char *url = NULL;
	enum xdms_err err;

	err = iwf_adapter_url(a, remote_user, xui, &url, r);
	if (err)
		return err;
	call.url = url;
	call.xui = xui;
	if (seal)
		call.seal = *seal;
	call.sync = sync;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = a->kind->fetch(&call, body, r);
	iwf_metrics_call(env->metrics, a->id, seconds_since(&t0), err != XDMS_ERR_OK);
	free(url);
	return err;
}

enum xdms_err iwf_fetch_profile(const struct iwf_env *env, void *curl, const struct iwf_adapter *a,
				const char *xui, const char *remote_user, const char *username,
				const char *password, const char *token, char **pcc, size_t *pcc_len,
				struct iwf_result *r, const struct iwf_seal *seal, struct iwf_sync *sync)
{
	struct buf body;
	enum xdms_err err;

	*pcc = NULL;
	*pcc_len = 0;
	buf_init(&body, a->max_response);
	err = profile_call(env, curl, a, xui, remote_user, username, password, token, &body, r, seal, sync);
	if (!err)
		err = iwf_profile_from(env, a, xui, remote_user, body.data ? body.data : "", body.len, sync, pcc,
				       pcc_len, r);
	buf_cleanup(&body);
	return err;
}

enum xdms_err iwf_profile_from(const struct iwf_env *env, const struct iwf_adapter *a, const char *xui,
			       const char *remote_user, const char *data, size_t len, const struct iwf_sync *sync,
			       char **pcc, size_t *pcc_len, struct iwf_result *r)
{
	struct xml_doc *doc = NULL;
	struct xml_issue issue;
	char *out = NULL;
	size_t out_len = 0;
	enum xdms_err err;

	*pcc = NULL;
	*pcc_len = 0;
	err = transform(env, a->import_xslt, data, len, xui, remote_user, env->opt->max_response, &out, &out_len, r);
	if (err)
		goto out;
	/* The transform's output must be a PCC document (SPEC §5.3 step 4). */
	if (xml_parse(out, out_len, IWF_MAX_DEPTH, &doc, &issue)) {
		iwf_result_set(r, 502, false, "the transformed profile is not a valid PCC: %s", issue.phrase);
		err = XDMS_ERR_PARSE;
		goto out;
	}
	/* A <pcc> with no person: a delta that holds nothing for this user
	 * (nothing changed), or a 3rd party that has no such user. */
	if (xml_node_is(xml_doc_root_elem(doc), IWF_PCC_NS, "pcc") &&
	    !xml_node_child(xml_doc_root_elem(doc), IWF_PCC_NS, "person-details")) {
		if (sync && sync->is_delta)
			goto out; /* OK with *pcc NULL */
		iwf_result_set(r, 404, false, "the 3rd party's data holds no profile for this user (%s found none)",
			       a->import_xslt);
		err = XDMS_ERR_NOTFOUND;
		goto out;
	}
	if (env->pcc_schema && xml_schema_validate(env->pcc_schema, doc, &issue)) {
		iwf_result_set(r, 502, false, "the transformed profile is not a valid PCC: %s", issue.phrase);
		err = XDMS_ERR_PARSE;
		goto out;
	}
	*pcc = out;
	*pcc_len = out_len;
	out = NULL;
out:
	xml_doc_free(doc);
	free(out);
	return err;
}

/* The adapter's own credential, for a request that brought none. False
 * with @r set when it exists but cannot be opened. */
static bool adapter_credentials(const struct iwf_env *env, const struct iwf_adapter *a, struct iwf_cred *c,
				struct iwf_result *r)
{
	char *owner = xasprintf(IWF_ADAPTER_OWNER "%s", a->id);
	enum xdms_err err = iwf_cred_load(env->st, env->key, owner, IWF_ADAPTER_SECRET, c);

	free(owner);
	if (err && err != XDMS_ERR_NOTFOUND) {
		iwf_result_set(r, 500, false, "the adapter's stored credentials cannot be opened (%s)",
			       xdms_err_str(err));
		return false;
	}
	return true;
}

/* ---- import and export ------------------------------------------------------------------------ */

enum xdms_err iwf_doc_read(const struct iwf_env *env, const char *auid, const char *xui, char **data, size_t *len,
			   char etag[STORE_ETAG_MAX])
{
	char *sel = xasprintf("%s/users/%s/index", auid, xui);
	struct store_read *rd = NULL;
	struct store_doc d;
	enum xdms_err err = store_read_begin(env->st, &rd);

	*data = NULL;
	*len = 0;
	etag[0] = '\0';
	if (!err)
		err = store_doc_get(rd, sel, &d);
	if (!err) {
		*data = xstrndup(d.data, d.data_len);
		*len = d.data_len;
		snprintf(etag, STORE_ETAG_MAX, "%s", d.etag);
	}
	store_read_end(rd);
	free(sel);
	return err;
}

/* The user's PCC (heap) and its ETag; NOTFOUND when there is none. */
static enum xdms_err pcc_read(const struct iwf_env *env, const char *xui, char **data, size_t *len,
			      char etag[STORE_ETAG_MAX])
{
	return iwf_doc_read(env, IWF_PCC_AUID, xui, data, len, etag);
}

struct outcome {
	struct iwf_result r;
	bool is_cancelled; /* the request went away during the call: no store, no response */
	unsigned count;
	bool is_partial;
	unsigned dropped;       /* IWF_FIELD_* left out; said in the 206's reason */
	unsigned requested;     /* the request's <fields> */
	unsigned allowed;       /* what the user's preferences allow */
	unsigned extra_persons; /* <person-details> after the first, not imported */
	char pcc_etag[STORE_ETAG_MAX];
	/* subscribe-profile: the watch set up (or refreshed) by the job */
	bool has_watch;
	struct store_watch watch;
};

/* A 206 says what was left out and why, so that nobody has to guess. */
static void explain_partial(struct outcome *o)
{
	char what[IWF_REASON_MAX] = "";
	size_t n = strlen(o->r.reason);

	iwf_fields_describe(o->dropped, o->requested, o->allowed, what, sizeof(what));
	if (what[0] && n + 1 < sizeof(o->r.reason))
		snprintf(o->r.reason + n, sizeof(o->r.reason) - n, "; left out: %s", what);
	n = strlen(o->r.reason);
	if (o->extra_persons && n + 1 < sizeof(o->r.reason))
		snprintf(o->r.reason + n, sizeof(o->r.reason) - n,
			 "; %u more <person-details> not imported (the PCC is the user's own card; contact "
			 "lists go to the address book with <target>address-book</target>)",
			 o->extra_persons);
}

static enum iwf_merge_policy policy_of(const char *s)
{
	if (s && !strcmp(s, "replace"))
		return IWF_REPLACE;
	if (s && !strcmp(s, "add-only"))
		return IWF_ADD_ONLY;
	return IWF_MERGE;
}

/* Keeps the 3rd party's new sync state once what it gave is stored. */
static void sync_keep(const struct iwf_env *env, const struct store_job *job, const struct iwf_adapter *a,
		      const struct iwf_sync *sync)
{
	enum xdms_err err = iwf_sync_save(env->st, job->xui, a->id, sync);

	/* Not fatal: the next import is a full sync. */
	if (err)
		log_warn("iwf job %llu (%s %s): the sync state of adapter %s cannot be stored: %s",
			 (unsigned long long)job->id, job->xui, job->request_id, a->id, xdms_err_str(err));
}

/* A running import job still wants its result stored (SPEC §4.3 rule 5). */
static bool job_wants(void *arg)
{
	const void *const *pair = arg;

	return job_is_ours(pair[0], pair[1]);
}

void iwf_import_store(const struct iwf_env *env, const struct iwf_import *in, const char *imported,
		      size_t imported_len, struct iwf_import_out *o)
{
	char *local = NULL, *path = NULL, *why = NULL;
	size_t local_len = 0;
	char etag[STORE_ETAG_MAX], quoted[STORE_ETAG_MAX + 2], msg[256];
	const struct iwf_prefs *prefs = in->prefs;

	if (!prefs->is_auto_store) {
		/* SPEC §5.3 step 5: fetched and checked, but the user keeps the
		 * PCC; the sync state stays where it was, for a later import. */
		iwf_result_set(&o->r, 200, false, "not stored per preferences (auto-store is off)");
		return;
	}
	path = doc_path(env, IWF_PCC_AUID, in->xui, NULL);
	for (unsigned i = 0; i <= STORE_RETRIES; i++) {
		/* SPEC §4.3 rule 5: a request deleted (or changed) while its
		 * job ran is not carried out any further. */
		if (in->is_wanted && !in->is_wanted(in->arg)) {
			o->is_cancelled = true;
			break;
		}
		struct iwf_merge_out m;
		enum xdms_err err;
		unsigned status;

		free(local);
		local = NULL;
		err = pcc_read(env, in->xui, &local, &local_len, etag);
		if (err && err != XDMS_ERR_NOTFOUND) {
			iwf_result_set(&o->r, 500, true, "the PCC could not be read (%s)", xdms_err_str(err));
			break;
		}
		err = iwf_merge(local, local_len, imported, imported_len,
				in->merge_policy || !prefs->has_conflict_policy ? policy_of(in->merge_policy) :
										  prefs->conflict_policy,
				in->fields, &m, &why);
		if (err) {
			iwf_result_set(&o->r, 502, false, "%s", why);
			break;
		}
		o->count = m.count;
		o->dropped = m.dropped;
		o->extra_persons = m.person_count > 1 ? m.person_count - 1 : 0;
		o->is_partial = m.is_partial || o->extra_persons;
		if (!m.is_changed) {
			snprintf(o->pcc_etag, sizeof(o->pcc_etag), "%s", etag);
			free(m.doc);
			o->has_import = true;
			iwf_result_set(&o->r, o->is_partial ? 206 : 200, false,
				       "profile imported from %s; the PCC had it all already", in->third_party);
			break;
		}
		snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
		status = xcap_write_as(env, XCAP_METHOD_PUT, path, "application/vnd.oma.cab-pcc+xml", m.doc,
				       m.doc_len, local ? quoted : NULL, local ? NULL : "*", in->is_commit_ack,
				       o->pcc_etag, msg, sizeof(msg));
		free(m.doc);
		if (status == 200 || status == 201) {
			o->is_changed = o->has_import = true;
			iwf_result_set(&o->r, o->is_partial ? 206 : 200, false, "profile imported from %s",
				       in->third_party);
			break;
		}
		if (status == 412 && i < STORE_RETRIES)
			continue;
		if (status == 412)
			iwf_result_set(&o->r, 409, false, "the PCC kept changing while the import was stored");
		else if (status == 409)
			iwf_result_set(&o->r, 502, false, "the imported data does not fit the PCC: %s", msg);
		else
			iwf_result_set(&o->r, status >= 500 ? 500 : status, status >= 500,
				       "the PCC could not be stored (HTTP %u)", status);
		break;
	}
	free(why);
	free(path);
	free(local);
}

/* An import-store result into the job's outcome. */
static void outcome_from_import(struct outcome *o, const struct iwf_import_out *io)
{
	o->r = io->r;
	o->is_cancelled = io->is_cancelled;
	o->count = io->count;
	o->is_partial = io->is_partial;
	o->dropped = io->dropped;
	o->extra_persons = io->extra_persons;
	snprintf(o->pcc_etag, sizeof(o->pcc_etag), "%s", io->pcc_etag);
}

static void reason_append(struct iwf_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reason_append(struct iwf_result *r, const char *fmt, ...)
{
	size_t len = strlen(r->reason);
	va_list ap;

	if (len + 1 >= sizeof(r->reason))
		return;
	va_start(ap, fmt);
	vsnprintf(r->reason + len, sizeof(r->reason) - len, fmt, ap);
	va_end(ap);
}

static void run_import(const struct iwf_env *env, struct iwf_worker *w, const struct store_job *job,
		       const struct iwf_adapter *a, const struct request *q, const struct iwf_cred *c,
		       const struct iwf_seal *seal, const struct iwf_prefs *prefs, unsigned fields,
		       struct outcome *o)
{
	const void *pair[2] = { env, job };
	struct iwf_import in = { job->xui, q->third_party, q->merge_policy, prefs, fields, job_wants, pair };
	struct iwf_import_out io = { 0 };
	struct iwf_sync sync = { 0 };
	struct buf body = { 0 };
	char *imported = NULL;
	size_t imported_len = 0;
	enum xdms_err serr;

	/* The job ends with a durable write whatever happens next (its
	 * <response>, or its end): that flush makes the PCC durable too. */
	in.is_commit_ack = true;

	/* Paging state only for what the 3rd party can give changes of. */
	if (a->format == IWF_FORMAT_JSON && (a->sync_token || a->delta_link) &&
	    (serr = iwf_sync_load(env->st, job->xui, a->id, &sync)) != XDMS_ERR_OK) {
		iwf_result_set(&o->r, 500, true, "the sync state could not be read (%s)", xdms_err_str(serr));
		return;
	}
	buf_init(&body, a->max_response);
	serr = profile_call(env, w->curl, a, job->xui, q->remote_user, c->username, c->password, c->token, &body,
			    &o->r, seal, &sync);
	/* The 3rd party has answered: its slot is free for the next call
	 * while this job transforms and stores. */
	iwf_slot_give(w);
	if (serr || iwf_profile_from(env, a, job->xui, q->remote_user, body.data ? body.data : "", body.len, &sync,
				     &imported, &imported_len, &o->r))
		goto out;
	if (!imported) {
		/* A delta that holds nothing for this user. */
		if (job_is_ours(env, job)) {
			sync_keep(env, job, a, &sync);
			iwf_result_set(&o->r, 200, false, "nothing changed at %s since the last import", q->third_party);
		} else {
			o->is_cancelled = true;
		}
		goto out;
	}
	iwf_import_store(env, &in, imported, imported_len, &io);
	outcome_from_import(o, &io);
	/* The sync state moves on only once the PCC holds what it gave (an
	 * import with auto-store off, failed or cancelled keeps the old one). */
	if (io.has_import) {
		sync_keep(env, job, a, &sync);
		if (sync.is_reset)
			reason_append(&o->r, " (its sync token had expired: a full sync was made)");
	}
out:
	buf_cleanup(&body);
	iwf_sync_cleanup(&sync);
	free(imported);
}

/* ---- subscribe-profile: the first import and the watch ------------------------------------- */

#define WATCH_DEFAULT_EXPIRES_S 86400ul        /* a request without <expires> */
#define WATCH_MAX_EXPIRES_S (366ul * 86400ul) /* the longest subscription taken */


/* A graph-style webhook for new watch @wr (@old: the record it replaces):
 * registered, or renewed when @old had one; when that fails the watch polls
 * for changes (with its sync state) and says so. */
static void subscribe_graph_hook(const struct iwf_env *env, const struct iwf_call *call, const struct iwf_adapter *a,
				 const struct store_watch *old, struct store_watch *wr, struct outcome *o)
{
	struct iwf_result rr = { 0 };

	if (old && old->hook_id[0] == IWF_HOOK_GRAPH_PREFIX) {
		memcpy(wr->hook_id, old->hook_id, sizeof(wr->hook_id));
		memcpy(wr->hook_secret, old->hook_secret, sizeof(wr->hook_secret));
		memcpy(wr->hook_remote, old->hook_remote, sizeof(wr->hook_remote));
	}
	if (iwf_watch_hook_graph(env, call, wr, &rr)) {
		wr->hook_remote[0] = '\0';
		wr->hook_renew_ms = 0;
		wr->next_poll_ms = iwf_watch_next_slot(wr->xui, wr->request_id, (uint64_t)a->poll_interval_s * 1000u,
						       wall_ms());
		reason_append(&o->r, "; the webhook subscription could not be made (%.120s), so changes are found by "
				     "polling every %u s", rr.reason, a->poll_interval_s);
		return;
	}
	if (wr->hook_renew_ms < wr->next_poll_ms)
		wr->next_poll_ms = wr->hook_renew_ms;
	reason_append(&o->r, "; watched by webhook%s", a->watch == IWF_WATCH_BOTH ? " and polling" : "");
}

/*
 * SPEC §5.3 step 8: the first import of a subscribe-profile, then the watch
 * that repeats it on every change, stored before the <response> so that a
 * crash in between runs the job again and finds the watch (a refresh).
 * A request that changed (a new expires) refreshes its watch: same seq line,
 * same webhook, a new expiry.
 */
static void run_subscribe(const struct iwf_env *env, struct iwf_worker *w, const struct store_job *job,
			  const struct iwf_adapter *a, const struct request *q, const struct iwf_cred *c,
			  const struct iwf_seal *seal, const struct iwf_prefs *prefs, unsigned fields,
			  struct outcome *o)
{
	const void *pair[2] = { env, job };
	struct iwf_import in = { job->xui, q->third_party, q->merge_policy, prefs, fields, job_wants, pair };
	struct iwf_import_out io = { 0 };
	struct iwf_call call = { .env = env, .curl = w->curl, .a = a, .xui = job->xui, .username = c->username,
				 .password = c->password, .token = c->token, .remote_user = q->remote_user };
	struct store_watch *wr = &o->watch, *old = xcalloc(1, sizeof(*old));
	struct iwf_sync sync = { 0 };
	struct store_read *rd = NULL;
	char validator[IWF_VALIDATOR_MAX] = "";
	char *url = NULL, *why = NULL, *imported = NULL, *callback = NULL;
	size_t imported_len = 0;
	unsigned long expires_s = WATCH_DEFAULT_EXPIRES_S;
	bool is_changed = false, has_old = false, is_book = q->target && !strcmp(q->target, "address-book");
	uint64_t now = wall_ms();
	struct buf body;
	struct timespec t0;
	enum xdms_err err;

	buf_init(&body, a->max_response);
	if (!a->kind->poll) {
		iwf_result_set(&o->r, 501, false, "the adapter %.80s is of kind %s, which cannot be watched", a->id,
			       a->kind->name);
		goto out;
	}
	/* OAuth 2.0 needs the user's refresh token, sealed under the user. */
	if (a->auth == IWF_AUTH_OAUTH2 && (!seal || !seal->owner || strcmp(seal->owner, job->xui) != 0)) {
		iwf_result_set(&o->r, 400, false, "the adapter %.80s uses OAuth 2.0: the subscribe-profile must carry "
			       "the user's refresh token (<credentials><token>) or a <credential-ref> to one", a->id);
		goto out;
	}
	/* SPEC §4.3a: a watch keeps the user's own card, or the address book
	 * of an address-book kind (carddav). */
	if (q->target && q->target[0] && strcmp(q->target, "pcc") != 0 && !is_book) {
		iwf_result_set(&o->r, 501, false, "subscribe-profile keeps the PCC or the address book up to date; "
			       "<target>%.40s</target> cannot be watched", q->target);
		goto out;
	}
	if (is_book && !a->kind->book) {
		iwf_result_set(&o->r, 501, false, "the adapter %.80s (kind %s) holds no address books", a->id,
			       a->kind->name);
		goto out;
	}
	if ((q->remote_user && strlen(q->remote_user) >= sizeof(wr->remote_user)) ||
	    (q->fields && strlen(q->fields) >= sizeof(wr->fields))) {
		iwf_result_set(&o->r, 400, false, "<remote-user> or <fields> is too long to be watched");
		goto out;
	}
	if (q->expires) {
		char *end;

		errno = 0;
		expires_s = strtoul(q->expires, &end, 10);
		if (errno || *end || !expires_s) {
			iwf_result_set(&o->r, 400, false, "<expires> must be a positive number of seconds");
			goto out;
		}
	}
	if (prefs->has_max_expires && !prefs->max_expires) {
		iwf_result_set(&o->r, 403, false,
			       "the user's preferences allow no subscriptions (subscription-prefs/max-expires is 0)");
		goto out;
	}
	if (prefs->has_max_expires && expires_s > prefs->max_expires)
		expires_s = prefs->max_expires;
	if (expires_s > WATCH_MAX_EXPIRES_S)
		expires_s = WATCH_MAX_EXPIRES_S;
	if (!store_read_begin(env->st, &rd))
		has_old = store_watch_get(rd, job->xui, job->request_id, old) == XDMS_ERR_OK;
	store_read_end(rd);
	if (is_book) {
		/* The first address-book import; each poll imports again from
		 * the sync-token it leaves (watch.c). */
		struct iwf_book_job bq = { job->xui, q->remote_user, fields, prefs->is_auto_store, NULL, NULL };
		struct iwf_book_outcome bo = { 0 };

		iwf_book_import(env, w->curl, job, a, c, &bq, &bo);
		o->r = bo.r;
		o->is_cancelled = bo.is_cancelled;
		o->count = bo.count;
		if (o->is_cancelled || o->r.code >= 300)
			goto out;
		/* The watch keeps the book's URL: its polls need no discovery. */
		snprintf(validator, sizeof(validator), "%s", bo.book_url);
		goto record;
	}
	err = iwf_adapter_url(a, q->remote_user, job->xui, &url, &o->r);
	if (err)
		goto out;
	call.url = url;
	if (seal)
		call.seal = *seal;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (a->format == IWF_FORMAT_JSON) {
		/* A full sync: the watch's polls start from the state it gives. */
		call.sync = &sync;
		err = a->kind->fetch(&call, &body, &o->r);
	} else {
		err = a->kind->poll(&call, "", validator, &is_changed, &body, &o->r);
	}
	iwf_metrics_call(env->metrics, a->id, seconds_since(&t0), err != XDMS_ERR_OK);
	if (err)
		goto out;
	if (iwf_profile_from(env, a, job->xui, q->remote_user, body.data ? body.data : "", body.len, NULL,
			     &imported, &imported_len, &o->r))
		goto out;
	iwf_import_store(env, &in, imported, imported_len, &io);
	outcome_from_import(o, &io);
	if (o->is_cancelled || o->r.code >= 300)
		goto out;
	if (io.has_import && a->format == IWF_FORMAT_JSON)
		sync_keep(env, job, a, &sync);
record:
	memset(wr, 0, sizeof(*wr));
	snprintf(wr->xui, sizeof(wr->xui), "%s", job->xui);
	snprintf(wr->request_id, sizeof(wr->request_id), "%s", job->request_id);
	snprintf(wr->adapter, sizeof(wr->adapter), "%s", a->id);
	snprintf(wr->target, sizeof(wr->target), "%s", is_book ? "address-book" : "pcc");
	snprintf(wr->validator, sizeof(wr->validator), "%s", validator);
	snprintf(wr->pcc_etag, sizeof(wr->pcc_etag), "%s", o->pcc_etag);
	snprintf(wr->remote_user, sizeof(wr->remote_user), "%s", q->remote_user ? q->remote_user : "");
	snprintf(wr->merge_policy, sizeof(wr->merge_policy), "%s", q->merge_policy ? q->merge_policy : "");
	snprintf(wr->fields, sizeof(wr->fields), "%s", q->fields ? q->fields : "");
	/* The request's own credential stays where it was sealed; the watch
	 * calls with it (and a rotated refresh token lands there too). */
	if (seal && seal->owner && seal->name && !strcmp(seal->owner, job->xui))
		snprintf(wr->cred, sizeof(wr->cred), "%s", seal->name);
	wr->job_id = job->id;
	wr->state = prefs->is_auto_update ? STORE_WATCH_ACTIVE : STORE_WATCH_HELD;
	wr->created_ms = has_old ? old->created_ms : now;
	wr->expires_ms = now + (uint64_t)expires_s * 1000u;
	wr->seq = has_old ? old->seq + 1 : 1;
	wr->code = o->r.code;
	wr->imported_count = o->count;
	wr->last_poll_ms = wr->last_update_ms = now;
	if (has_old) {
		/* A refresh keeps the SIP dialog to resume. */
		memcpy(wr->dialog, old->dialog, old->dialog_len);
		wr->dialog_len = old->dialog_len;
	}
	/* A SIP watch subscribes at once (its watch thread starts the
	 * subscription); a webhook waits for calls; polling keeps its phase. */
	wr->next_poll_ms = a->kind == &iwf_kind_xcap && a->sip_uri ? now :
			   a->watch == IWF_WATCH_WEBHOOK ?
							   wr->expires_ms :
							   iwf_watch_next_slot(wr->xui, wr->request_id,
									       (uint64_t)a->poll_interval_s * 1000u, now);
	if (a->watch != IWF_WATCH_POLL && a->hook_style == IWF_HOOK_GRAPH) {
		subscribe_graph_hook(env, &call, a, has_old ? old : NULL, wr, o);
	} else if (a->watch != IWF_WATCH_POLL) {
		struct iwf_result rr = { 0 };

		if (has_old && old->hook_id[0]) {
			memcpy(wr->hook_id, old->hook_id, sizeof(wr->hook_id));
			memcpy(wr->hook_secret, old->hook_secret, sizeof(wr->hook_secret));
		} else {
			iwf_watch_hook_new(wr->hook_id, wr->hook_secret);
		}
		callback = xasprintf("%s/iwf/hook/%s", a->webhook_base, wr->hook_id);
		err = iwf_http_hook_register(&call, a->webhook_register, true, callback, wr->hook_id, wr->hook_secret,
					     q->remote_user, wr->expires_ms, &rr);
		if (err && a->watch == IWF_WATCH_WEBHOOK) {
			iwf_result_set(&o->r, rr.code, rr.is_transient, "the webhook could not be registered: %s",
				       rr.reason);
			goto out;
		}
		if (err)
			reason_append(&o->r, "; the webhook could not be registered (%.120s), so changes are found by "
					     "polling every %u s",
				      rr.reason, a->poll_interval_s);
		else
			reason_append(&o->r, "; watched by webhook%s", a->watch == IWF_WATCH_BOTH ? " and polling" : "");
	} else if (a->kind == &iwf_kind_xcap && a->sip_uri) {
		reason_append(&o->r, "; watched by a SIP xcap-diff subscription to %.80s (by polling every %u s if it "
				     "fails)", a->sip_uri, a->poll_interval_s);
	} else {
		reason_append(&o->r, "; watched by polling every %u s", a->poll_interval_s);
	}
	if (!prefs->is_auto_update)
		reason_append(&o->r, "; later changes are held: auto-update is off in subscription-prefs");
	err = store_watch_put(env->st, wr);
	if (err) {
		iwf_result_set(&o->r, 500, true, "the subscription could not be stored (%s)", xdms_err_str(err));
		goto out;
	}
	o->has_watch = true;
out:
	iwf_sync_cleanup(&sync);
	buf_cleanup(&body);
	free(imported);
	free(callback);
	free(url);
	free(why);
	free(old);
}

static void run_export(const struct iwf_env *env, struct iwf_worker *w, const struct store_job *job,
		       const struct iwf_adapter *a, const struct request *q, const struct iwf_cred *c,
		       const struct iwf_seal *seal, unsigned fields, struct outcome *o)
{
	char *pcc = NULL, *sel = NULL, *out = NULL, *url = NULL, *why = NULL;
	size_t pcc_len = 0, sel_len = 0, out_len = 0;
	struct iwf_call call = { .env = env, .curl = w->curl, .a = a, .username = c->username,
				 .password = c->password, .token = c->token, .remote_user = q->remote_user };
	struct buf body;
	char etag[STORE_ETAG_MAX];
	struct timespec t0;
	long status;
	enum xdms_err err;

	buf_init(&body, a->max_response);
	err = pcc_read(env, job->xui, &pcc, &pcc_len, etag);
	if (err) {
		iwf_result_set(&o->r, err == XDMS_ERR_NOTFOUND ? 404 : 500, err != XDMS_ERR_NOTFOUND,
			       err == XDMS_ERR_NOTFOUND ? "there is no PCC to export" : "the PCC could not be read");
		goto out;
	}
	err = iwf_export_select(pcc, pcc_len, q->source_sel, fields, &sel, &sel_len, &o->count, &o->dropped,
				&why);
	if (err) {
		iwf_result_set(&o->r, err == XDMS_ERR_NOTFOUND ? 404 : 400, false, "%s", why);
		goto out;
	}
	if (transform(env, a->export_xslt, sel, sel_len, job->xui, q->remote_user, a->max_response, &out,
		      &out_len, &o->r))
		goto out;
	err = iwf_adapter_url(a, q->remote_user, job->xui, &url, &o->r);
	if (err)
		goto out;
	if (!job_is_ours(env, job)) {
		o->is_cancelled = true;
		goto out;
	}
	call.url = url;
	call.xui = job->xui;
	call.seal = *seal;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	err = a->kind->send(&call, out, out_len, &body, &status, &o->r);
	iwf_metrics_call(env->metrics, a->id, seconds_since(&t0), err != XDMS_ERR_OK);
	iwf_slot_give(w);
	if (err)
		goto out;
	snprintf(o->pcc_etag, sizeof(o->pcc_etag), "%s", etag);
	o->is_partial = o->dropped != 0;
	iwf_result_set(&o->r, o->is_partial ? 206 : 200, false, "profile exported to %s (HTTP %ld)",
		       q->third_party, status);
out:
	buf_cleanup(&body);
	free(pcc);
	free(sel);
	free(out);
	free(url);
	free(why);
}

/* ---- the response --------------------------------------------------------------------------- */

static const char *status_word(unsigned code)
{
	if (code == 202)
		return "in-progress";
	if (code == 206)
		return "partial-success";
	return code >= 200 && code < 300 ? "success" : "failure";
}

static void iso_time(uint64_t ms, char out[32])
{
	time_t t = (time_t)(ms / 1000u);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *iwf_response_body(enum store_job_kind kind, unsigned code, const char *status, const char *reason,
			unsigned count, const char *pcc_etag, unsigned seq, uint64_t expires_ms)
{
	struct buf b;
	char when[32];

	iso_time(wall_ms(), when);
	buf_init(&b, 4096);
	if (buf_printf(&b, "<response xmlns=\"%s\" status=\"%s\" code=\"%u\" updated=\"%s\"", IWF_FH_NS,
		       status ? status : status_word(code), code, when) ||
	    (seq && buf_printf(&b, " seq=\"%u\"", seq)) || buf_append_str(&b, "><reason>") ||
	    buf_append_xml_escaped(&b, reason, strlen(reason)) || buf_append_str(&b, "</reason>"))
		abort();
	if (code >= 200 && code < 300 && code != 202) {
		if (buf_printf(&b, "<%s>%u</%s>", kind == STORE_JOB_EXPORT ? "exported-count" : "imported-count",
			       count, kind == STORE_JOB_EXPORT ? "exported-count" : "imported-count"))
			abort();
	}
	/* SPEC §4.3 rule 7: a subscription says until when it runs. */
	if (kind == STORE_JOB_SUBSCRIBE && expires_ms) {
		iso_time(expires_ms, when);
		if (buf_printf(&b, "<subscription-expires>%s</subscription-expires>", when))
			abort();
	}
	if (code >= 200 && code < 300 && code != 202) {
		if (pcc_etag && pcc_etag[0] && (buf_append_str(&b, "<pcc-etag>") ||
				       buf_append_xml_escaped(&b, pcc_etag, strlen(pcc_etag)) ||
				       buf_append_str(&b, "</pcc-etag>")))
			abort();
	}
	if (buf_append_str(&b, "</response>"))
		abort();
	return buf_take(&b, NULL);
}

static char *response_body(const struct store_job *job, const struct outcome *o)
{
	return iwf_response_body(job->kind, o->r.code, NULL, o->r.reason, o->count, o->pcc_etag,
				 o->has_watch ? o->watch.seq : 0, o->has_watch ? o->watch.expires_ms : 0);
}

/*
 * Writes (PUT @body, or DELETE when @body is NULL) the child @child of the
 * job's request with If-Match on the Feature Handler document as the worker
 * just checked it, again on 412. True when it was stored; false with
 * *is_gone when the request is gone or no longer this job's. @seen (NULL =
 * nothing known) spares reading the document again while it is unchanged,
 * and gets its new ETag.
 */
static bool fh_child_write_as(const struct iwf_env *env, const struct store_job *job, uint64_t watch_job_id,
			      const char *child, const char *body, bool is_commit_ack, struct fh_seen *seen,
			      bool *is_gone)
{
	char etag[STORE_ETAG_MAX], quoted[STORE_ETAG_MAX + 2], msg[256], new_etag[STORE_ETAG_MAX];
	char *sel, *path, *id_lit;
	bool ok = false;

	*is_gone = false;
	/* An id holding both quote characters cannot be written in a selector. */
	if (strchr(job->request_id, '"') && strchr(job->request_id, '\''))
		return false;
	id_lit = strchr(job->request_id, '"') ? xasprintf("'%s'", job->request_id) :
						xasprintf("\"%s\"", job->request_id);
	sel = xasprintf("cab-feature-handler/%s[@id=%s]/%s", kind_element(job->kind), id_lit, child);
	path = doc_path(env, IWF_FH_AUID, job->xui, sel);
	for (unsigned i = 0; i < RESPONSE_RETRIES && !ok; i++) {
		struct request q;
		unsigned status;
		bool has_fh_default_ns;

		const char *send = body;
		char *plain = NULL;

		if (i == 0 && seen && seen->etag[0] && request_unchanged(env, job, watch_job_id, seen->etag)) {
			snprintf(etag, sizeof(etag), "%s", seen->etag);
			has_fh_default_ns = seen->has_fh_default_ns;
		} else if (request_load_as(env, job, watch_job_id, &q, etag)) {
			*is_gone = true;
			break;
		} else {
			has_fh_default_ns = q.has_fh_default_ns;
			request_cleanup(&q);
		}
		/* An element PUT is read in the namespace context of its parent
		 * (RFC 4825 §8.2.3 keeps the document's declarations): where the
		 * Feature Handler namespace is already the default, our own
		 * declaration on the child would only repeat it. */
		if (body && has_fh_default_ns) {
			const char *decl = strstr(body, FH_NS_DECL), *tag_end = strchr(body, '>');

			if (decl && tag_end && decl < tag_end)
				send = plain = xasprintf("%.*s%s", (int)(decl - body), body, decl + strlen(FH_NS_DECL));
		}
		snprintf(quoted, sizeof(quoted), "\"%s\"", etag);
		status = xcap_write_as(env, send ? XCAP_METHOD_PUT : XCAP_METHOD_DELETE, path,
				       send ? "application/xcap-el+xml" : NULL, send ? send : "",
				       send ? strlen(send) : 0, quoted, NULL, is_commit_ack, new_etag, msg, sizeof(msg));
		free(plain);
		if (status == 200 || status == 201) {
			ok = true;
			/* Our own write: the request's namespace context is as it was. */
			if (seen) {
				snprintf(seen->etag, sizeof(seen->etag), "%s", new_etag);
				seen->has_fh_default_ns = has_fh_default_ns;
			}
		} else if (status != 412) {
			log_warn("iwf job %llu (%s %s): <%s> could not be %s: HTTP %u %s", (unsigned long long)job->id,
				 job->xui, job->request_id, child, body ? "written" : "deleted", status, msg);
			break;
		}
	}
	free(id_lit);
	free(sel);
	free(path);
	return ok;
}

static bool fh_child_write(const struct iwf_env *env, const struct store_job *job, const char *child,
			   const char *body, struct fh_seen *seen, bool *is_gone)
{
	return fh_child_write_as(env, job, 0, child, body, false, seen, is_gone);
}

bool iwf_watch_response_write(const struct iwf_env *env, const struct store_watch *w, const char *body,
			      bool *is_gone)
{
	struct store_job job = { 0 };

	job.id = w->job_id;
	job.kind = STORE_JOB_SUBSCRIBE;
	snprintf(job.xui, sizeof(job.xui), "%s", w->xui);
	snprintf(job.request_id, sizeof(job.request_id), "%s", w->request_id);
	return fh_child_write_as(env, &job, w->job_id, "response", body, false, NULL, is_gone);
}

/* Writes @o as the request's <response> (for a final code, the job ends
 * with it in the same transaction). */
static bool response_write(const struct iwf_env *env, const struct store_job *job, const struct outcome *o,
			   struct fh_seen *seen, bool *is_gone)
{
	char *body = response_body(job, o);
	bool ok = fh_child_write(env, job, "response", body, seen, is_gone);

	free(body);
	return ok;
}

/* ---- credentials ---------------------------------------------------------------------------- */

static bool copy_fits(char *dst, size_t cap, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n >= cap)
		return false;
	memcpy(dst, s ? s : "", n + 1);
	return true;
}

/*
 * The credentials to call the 3rd party with (SPEC §4.3 rule 4): inline ones
 * are sealed into the store and deleted from the document first; a
 * credential-ref reads a provisioned secret; otherwise the ones sealed when
 * the request was first run, if any. Fills @r and returns false when the
 * request cannot be carried out.
 */
static bool credentials_take(const struct iwf_env *env, const struct store_job *job, const struct request *q,
			     struct fh_seen *seen, struct iwf_cred *c, char name[STORE_JOB_ID_MAX + 16],
			     struct iwf_result *r)
{
	enum xdms_err err;
	bool is_gone;

	memset(c, 0, sizeof(*c));
	if (q->username || q->password || q->token) {
		if (!copy_fits(c->username, sizeof(c->username), q->username) ||
		    !copy_fits(c->password, sizeof(c->password), q->password) ||
		    !copy_fits(c->token, sizeof(c->token), q->token)) {
			iwf_result_set(r, 400, false, "the request's credentials are too long");
			return false;
		}
		snprintf(name, STORE_JOB_ID_MAX + 16, "request:%s", job->request_id);
		/* In the writer's group commit, shared with other workers. */
		err = iwf_cred_save(env->st, env->key, job->xui, name, c, false);
		if (err) {
			iwf_result_set(r, 500, true, "the credentials could not be stored (%s)", xdms_err_str(err));
			return false;
		}
		/* Stored first: a crash between the two leaves them in the
		 * document, and the next run stores them again. The deletion is
		 * told at its commit: the job's end (a durable write) follows in
		 * every case and makes it durable, and until then a crash only
		 * leaves the credentials where the next run takes them again. */
		(void)fh_child_write_as(env, job, 0, "credentials", NULL, true, seen, &is_gone);
		return true;
	}
	if (q->credential_ref)
		snprintf(name, STORE_JOB_ID_MAX + 16, "ref:%.100s", q->credential_ref);
	else
		snprintf(name, STORE_JOB_ID_MAX + 16, "request:%s", job->request_id);
	err = iwf_cred_load(env->st, env->key, job->xui, name, c);
	if (err == XDMS_ERR_NOTFOUND && !q->credential_ref) {
		name[0] = '\0';
		return true; /* a request without credentials */
	}
	if (err == XDMS_ERR_NOTFOUND) {
		iwf_result_set(r, 400, false, "credential-ref '%.60s' names no stored credential", q->credential_ref);
		return false;
	}
	if (err) {
		iwf_result_set(r, 500, false, "the stored credentials cannot be opened (%s)", xdms_err_str(err));
		return false;
	}
	return true;
}

/* ---- one job ---------------------------------------------------------------------------------- */

/*
 * A test-only pause between a job's last store write (an import's PCC) and
 * its final <response>, so that a test can kill the server exactly there
 * and check that the response is still written once. Inert unless the
 * environment variable XDMSD_TEST_PAUSE_BEFORE_RESPONSE_MS is set (a number
 * of milliseconds, capped at 60000); no setting turns it on.
 */
#define TEST_PAUSE_ENV "XDMSD_TEST_PAUSE_BEFORE_RESPONSE_MS"
#define TEST_PAUSE_MAX_MS 60000ul

static void test_pause_before_response(const struct store_job *job)
{
	const char *v = getenv(TEST_PAUSE_ENV);
	unsigned long ms;
	char *end;
	struct timespec ts;

	if (!v || !*v)
		return;
	ms = strtoul(v, &end, 10);
	if (*end || !ms)
		return;
	if (ms > TEST_PAUSE_MAX_MS)
		ms = TEST_PAUSE_MAX_MS;
	log_warn("iwf job %llu: pausing %lu ms before its <response> (%s is set)", (unsigned long long)job->id, ms,
		 TEST_PAUSE_ENV);
	ts.tv_sec = (time_t)(ms / 1000u);
	ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool finish(const struct iwf_env *env, const struct store_job *job, const char *adapter,
		   const struct outcome *o, struct fh_seen *seen)
{
	bool is_gone;
	enum xdms_err err;

	test_pause_before_response(job);
	if (response_write(env, job, o, seen, &is_gone)) {
		iwf_metrics_job_ended(env->metrics, job->kind, o->r.code);
		/* A failure is the operator's business (a 3rd party down, a
		 * transform broken): warning level, with everything to find it. */
		if (o->r.code >= 300)
			log_warn("iwf job %llu (%s %s, adapter %s): failed %u %s", (unsigned long long)job->id,
				 job->xui, job->request_id, adapter && adapter[0] ? adapter : "-", o->r.code,
				 o->r.reason);
		else
			log_info("iwf job %llu (%s %s, adapter %s): %u %s", (unsigned long long)job->id, job->xui,
				 job->request_id, adapter && adapter[0] ? adapter : "-", o->r.code, o->r.reason);
		return true;
	}
	/* The response could not be stored: end the job here so that it does
	 * not run forever (a cancelled request, or a store failure). */
	err = store_job_end(env->st, job->id, is_gone ? STORE_JOB_CANCELLED : STORE_JOB_FAILED, o->r.code,
			    is_gone ? "the request was deleted or changed" : "the response could not be stored");
	if (err && err != XDMS_ERR_CONFLICT)
		log_error("iwf job %llu: cannot end: %s", (unsigned long long)job->id, xdms_err_str(err));
	return false;
}

void iwf_job_run(const struct iwf_env *env, struct iwf_worker *w, const struct store_job *job)
{
	struct outcome o = { 0 };
	const struct iwf_adapter *a = NULL;
	struct iwf_cred cred = { 0 };
	struct iwf_prefs prefs = { 0 };
	struct request q;
	struct fh_seen fh = { "", false };
	char *why = NULL, seal_name[STORE_JOB_ID_MAX + 16] = "", *adapter_owner = NULL;
	struct iwf_seal seal = { NULL, NULL };
	unsigned fields = IWF_FIELD_ALL, max_attempts = env->opt->max_attempts;
	enum xdms_err err;

	err = request_load(env, job, &q, fh.etag);
	if (err) {
		/* Deleted or changed since (the commit hook cancelled the job),
		 * or claimed again by another worker: nothing to do here. */
		if (err != XDMS_ERR_NOTFOUND &&
		    store_job_end(env->st, job->id, STORE_JOB_FAILED, 500, "the request cannot be read") == XDMS_ERR_OK)
			log_error("iwf job %llu (%s %s): the request cannot be read: %s", (unsigned long long)job->id,
				  job->xui, job->request_id, xdms_err_str(err));
		return;
	}
	fh.has_fh_default_ns = q.has_fh_default_ns;
	if (job->attempts > max_attempts + POISON_EXTRA) {
		/* Claimed again and again without an answer: each run ended with
		 * the server (a crash, a kill); stop before it takes the server
		 * down once more. */
		iwf_result_set(&o.r, 500, false, "the request was given up after %u runs that did not finish",
			       job->attempts - 1);
		goto done;
	}
	if (env->opt->is_ack_in_progress && job->attempts == 1) {
		struct outcome ack = { 0 };
		bool is_gone;

		iwf_result_set(&ack.r, 202, false, "the request is being carried out");
		(void)response_write(env, job, &ack, &fh, &is_gone);
	}
	if (iwf_fields_parse(q.fields, &fields, &why)) {
		iwf_result_set(&o.r, 400, false, "%s", why);
		goto done;
	}
	if (!fields) {
		/* "note" alone: a name the schema knows but the PCC has no place for. */
		iwf_result_set(&o.r, 400, false, "<fields> names nothing the PCC holds (%.80s)", q.fields);
		goto done;
	}
	err = iwf_prefs_load(env->st, job->xui, &prefs);
	if (err) {
		iwf_result_set(&o.r, 500, false, "the user's preferences cannot be read (%s)", xdms_err_str(err));
		goto done;
	}
	/* What the preferences take away is filtered out like what the
	 * request did not ask for: the result is partial (206). */
	o.requested = fields;
	o.allowed = job->kind == STORE_JOB_EXPORT ? prefs.export_fields : prefs.import_fields;
	fields &= o.allowed;
	if (!fields) {
		iwf_result_set(&o.r, 403, false, "the user's preferences allow none of the requested fields");
		goto done;
	}
	if (job->kind == STORE_JOB_EXPORT && !iwf_prefs_third_party_ok(&prefs, q.third_party)) {
		iwf_result_set(&o.r, 403, false, "the user's preferences do not allow exports to %.80s",
			       q.third_party);
		goto done;
	}
	if (!credentials_take(env, job, &q, &fh, &cred, seal_name, &o.r))
		goto done;
	if (seal_name[0]) {
		seal.owner = job->xui;
		seal.name = seal_name;
	}
	err = iwf_adapter_get(env->st, env->opt, q.third_party, &w->adapter, &a, &why);
	if (err == XDMS_ERR_NOTFOUND) {
		iwf_result_set(&o.r, 404, false, "no 3rd-party system '%.80s' is configured", q.third_party);
		goto done;
	}
	if (err) {
		iwf_result_set(&o.r, 500, err != XDMS_ERR_PARSE, "the adapter %.80s is unusable: %s", q.third_party,
			       why ? why : xdms_err_str(err));
		goto done;
	}
	max_attempts = a->max_attempts;
	if (!cred.username[0] && !cred.token[0]) {
		if (!adapter_credentials(env, a, &cred, &o.r))
			goto done;
		adapter_owner = xasprintf(IWF_ADAPTER_OWNER "%s", a->id);
		seal.owner = adapter_owner;
		seal.name = IWF_ADAPTER_SECRET;
	}
	if (!iwf_slot_take(w, a->id, a->concurrency, SLOT_WAIT_MS)) {
		/* Every connection to this 3rd party stayed busy: wait in the
		 * queue, not in a worker, without counting an attempt. */
		if (store_job_retry(env->st, job->id, wall_ms() + SLOT_REQUEUE_MS, false, "waiting for a free slot"))
			log_warn("iwf job %llu: cannot requeue", (unsigned long long)job->id);
		goto out;
	}
	if (q.target && !strcmp(q.target, "address-book") && job->kind != STORE_JOB_SUBSCRIBE) {
		struct iwf_book_job bq = { job->xui, q.remote_user, fields, prefs.is_auto_store };
		struct iwf_book_outcome bo = { 0 };

		if (job->kind == STORE_JOB_EXPORT)
			iwf_book_export(env, w->curl, job, a, &cred, &bq, &bo);
		else
			iwf_book_import(env, w->curl, job, a, &cred, &bq, &bo);
		o.r = bo.r;
		o.is_cancelled = bo.is_cancelled;
		o.count = bo.count;
	} else if (job->kind == STORE_JOB_EXPORT)
		run_export(env, w, job, a, &q, &cred, &seal, fields, &o);
	else if (job->kind == STORE_JOB_SUBSCRIBE)
		run_subscribe(env, w, job, a, &q, &cred, &seal, &prefs, fields, &o);
	else
		run_import(env, w, job, a, &q, &cred, &seal, &prefs, fields, &o);
	if (o.r.code == 206)
		explain_partial(&o);
done:
	if (o.is_cancelled) {
		log_info("iwf job %llu (%s %s): cancelled while it ran; nothing stored", (unsigned long long)job->id,
			 job->xui, job->request_id);
	} else if (o.r.is_transient && env->stopping && atomic_load(env->stopping)) {
		/* Cut short by the shutdown: not the 3rd party's failure. */
		if (store_job_retry(env->st, job->id, wall_ms(), false, "interrupted by a shutdown"))
			log_warn("iwf job %llu: cannot requeue", (unsigned long long)job->id);
	} else if (o.r.is_transient && job->attempts < max_attempts) {
		unsigned shift = job->attempts - 1 < 16 ? job->attempts - 1 : 16;
		uint64_t delay = (uint64_t)env->opt->retry_delay_ms << shift;

		if (delay > RETRY_DELAY_MAX_MS)
			delay = RETRY_DELAY_MAX_MS;
		log_info("iwf job %llu (%s %s): attempt %u failed, retrying in %llu ms: %s",
			 (unsigned long long)job->id, job->xui, job->request_id, job->attempts,
			 (unsigned long long)delay, o.r.reason);
		if (store_job_retry(env->st, job->id, wall_ms() + delay, true, o.r.reason))
			log_warn("iwf job %llu: cannot requeue", (unsigned long long)job->id);
		else
			iwf_metrics_retry(env->metrics);
	} else if (finish(env, job, q.third_party, &o, &fh) && o.has_watch) {
		/* The answer is stored: from now on the watch keeps it current. */
		iwf_watches_add(env->watches, &o.watch);
	} else if (o.has_watch) {
		/* Deleted or changed while the job ran: its watch is not kept (a
		 * newer version's job stores its own). */
		if (!job_is_current(env, job) && store_watch_del(env->st, job->xui, job->request_id) == XDMS_ERR_OK)
			log_info("iwf job %llu (%s %s): the request went while it ran; its watch is not kept",
				 (unsigned long long)job->id, job->xui, job->request_id);
	}
out:
	iwf_slot_give(w);
	request_cleanup(&q);
	memset(&cred, 0, sizeof(cred));
	iwf_prefs_cleanup(&prefs);
	free(adapter_owner);
	free(why);
}

/* ---- for the address-book flows (book.c) ------------------------------------------------ */

bool iwf_job_is_ours(const struct iwf_env *env, const struct store_job *job)
{
	return job_is_ours(env, job);
}

unsigned iwf_job_write(const struct iwf_env *env, enum xcap_method m, const char *auid, const char *xui,
		       const char *ctype, const char *body, size_t len, const char *if_match,
		       const char *if_none_match, char etag[STORE_ETAG_MAX], char *why, size_t why_len)
{
	char *path = doc_path(env, auid, xui, NULL);
	unsigned status = xcap_write(env, m, path, ctype, body, len, if_match, if_none_match, etag, why, why_len);

	free(path);
	return status;
}

enum xdms_err iwf_job_transform(const struct iwf_env *env, const char *name, const char *data, size_t len,
				const char *xui, const char *remote_user, size_t max_out, char **out, size_t *out_len,
				struct iwf_result *r)
{
	return transform(env, name, data, len, xui, remote_user, max_out, out, out_len, r);
}
