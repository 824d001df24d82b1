/* SPDX-License-Identifier: MIT */
/*
 * ctl/move.c: moving a user from one shard to another (DESIGN.md §6).
 *
 * When a shard is added, the consistent-hash map gives some users a new
 * shard; each of them moves with four steps, run by the operator:
 *
 *   old shard:  xdmsctl user export XUI FILE   freeze the user, write the bundle
 *   new shard:  xdmsctl user import FILE       store it there
 *   routers:    switch to the new shard map
 *   old shard:  xdmsctl user purge XUI         remove it there (or `user thaw`
 *                                              to call the move off)
 *
 * The freeze (store_user_freeze) makes every write of the user's documents
 * on the old shard fail with 503 from the moment the export starts, so the
 * bundle holds every write that was acknowledged and none can be
 * acknowledged and then lost. The bundle carries the user record (its
 * Digest credentials, as store.h describes them, never a password), every
 * document with its ETag, the user's sealed secrets (the IWF's credentials;
 * both shards must use the same iwf.key_file) and its unfinished IWF jobs.
 * Import writes the documents through the same XCAP write path as `doc
 * put` (validation, AUID commit hooks, change feed) with their old ETags;
 * it is idempotent, so a failed import is run again.
 *
 * Bundle format, version 1: text lines, each byte string preceded by a line
 * giving its length and followed by a newline:
 *   xdmsd-user-export 1
 *   user XUI / username U / created MS
 *   realm IS_XUI_ONLY HEX HEX HEX HEX REALM
 *   doc LEN ETAG SELECTOR      then LEN bytes
 *   secret LEN NAME            then LEN bytes
 *   job KIND HASH REQUEST-ID   (an unfinished job: queued again on import;
 *                              KIND import, export or subscribe)
 *   watch SEQ CREATED EXPIRES ADAPTER CRED REQUEST-ID
 *                              (a subscribe-profile being watched; CRED is
 *                              where its credential is sealed, "-" for none)
 *   end
 * A watch moves with its request: the bundle carries its sequence number,
 * creation and expiry, and a subscribe job for the request, so that the new
 * shard runs the subscription again (a first import, seq + 1, its webhook
 * registered from there) and keeps it from then on. The purge deletes the
 * request on the old shard, which drops its watch record in the same
 * transaction; the old server's watch stops at its next poll.
 * No string may contain a newline; every length is capped.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/digest.h"
#include "base/buf.h"
#include "base/mem.h"
#include "ctl/ctl.h"
#include "http/http.h"
#include "store/store.h"
#include "xcap/xcap.h"
#include "xml/xml.h"

#define BUNDLE_MAGIC "xdmsd-user-export 1"
#define BUNDLE_MAX ((size_t)512 * 1024 * 1024) /* the largest bundle import reads */
#define BUNDLE_ITEMS_MAX 100000                /* documents + secrets + jobs */

enum xdms_err ctl_store_open(const struct conf *c, struct store **st)
{
	struct store_options so = {
		.path = c->store_path,
		.map_size = c->store_map_size,
		.map_size_max = c->store_map_size_max,
		.is_sync = c->store_sync,
		.batch_max = c->store_batch_max,
	};
	char *why = NULL;
	enum xdms_err err;

	/* Run as root: from here on as the service user (ctl_become_store_owner). */
	if (!ctl_become_store_owner(c->store_path))
		return XDMS_ERR_DENIED;
	/* A data directory that is a regular file says so, not "I/O error". */
	err = store_dir_prepare(c->store_path, &why);
	if (err) {
		fprintf(stderr, "xdmsctl: %s\n", why);
		free(why);
		return err;
	}
	err = store_open(&so, st);
	if (err)
		fprintf(stderr, "xdmsctl: cannot open the store at %s: %s\n", c->store_path, xdms_err_str(err));
	return err;
}

static bool is_line_safe(const char *s)
{
	return s && !strchr(s, '\n') && !strchr(s, '\r');
}

static void hex_put(FILE *f, const uint8_t *b, size_t n)
{
	fputc(' ', f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
}

/* ---- the XCAP write path, as an administrator -------------------------------------- */

/*
 * PUTs @data (or DELETEs when NULL) at @selector keeping @etag, as part of a
 * move when @is_move. Returns true on success; prints why not.
 */
static bool doc_write(struct ctl_writer *wr, const char *selector, const char *data, size_t len, const char *etag,
		      bool is_move)
{
	struct xcap_response resp;
	struct xcap_uri uri;
	struct buf path;
	bool is_ok = false;

	memset(&uri, 0, sizeof(uri));
	xcap_response_init(&resp);
	/* The selector holds decoded segments; the URI parser decodes once more,
	 * so a literal '%' goes in as %25. */
	buf_init(&path, 3 * STORE_SELECTOR_MAX + 2);
	if (buf_append_str(&path, "/")) {
		buf_cleanup(&path);
		return false;
	}
	for (const char *p = selector; *p; p++)
		if (*p == '%' ? buf_append_str(&path, "%25") : buf_append(&path, p, 1))
			break;
	if (buf_append(&path, "", 1) || xcap_uri_parse("", path.data, NULL, &uri) || uri.node_selector ||
	    uri.is_global) {
		fprintf(stderr, "xdmsctl: '%s' is not a user's document selector\n", selector);
		goto out;
	}
	ctl_admin_write(wr, &uri, data, len, etag, is_move, &resp);
	is_ok = xcap_outcome_is_success(resp.outcome) || (!data && resp.outcome == XCAP_OUTCOME_NOT_FOUND);
	if (!is_ok)
		fprintf(stderr, "xdmsctl: %s refused with %u: %.*s\n", selector, http_status_of(resp.outcome),
			(int)resp.body.len, resp.body.data ? resp.body.data : "");
out:
	buf_cleanup(&path);
	xcap_response_cleanup(&resp);
	xcap_uri_cleanup(&uri);
	return is_ok;
}

/* ---- export ---------------------------------------------------------------------------- */

struct export_ctx {
	FILE *f;
	const char *xui;
	unsigned docs, secrets, jobs, watches;
	bool is_bad; /* a string that cannot go in the bundle */
	struct store_read *rd;
	/* purge collects the selectors and secret names instead of writing */
	char **names;
	size_t name_count;
};

static void collect(struct export_ctx *e, const char *s)
{
	e->names = xrealloc(e->names, (e->name_count + 1) * sizeof(char *));
	e->names[e->name_count++] = xstrdup(s);
}

static int export_doc(void *arg, const char *selector, const struct store_doc *doc)
{
	struct export_ctx *e = arg;

	if (!e->f) {
		collect(e, selector);
		return 0;
	}
	if (!is_line_safe(selector) || !is_line_safe(doc->etag)) {
		e->is_bad = true;
		return 1;
	}
	fprintf(e->f, "doc %zu %s %s\n", doc->data_len, doc->etag, selector);
	fwrite(doc->data, 1, doc->data_len, e->f);
	fputc('\n', e->f);
	e->docs++;
	return 0;
}

static int export_secret(void *arg, const char *name, const void *data, size_t len)
{
	struct export_ctx *e = arg;

	if (!e->f) {
		collect(e, name);
		return 0;
	}
	if (!is_line_safe(name)) {
		e->is_bad = true;
		return 1;
	}
	fprintf(e->f, "secret %zu %s\n", len, name);
	fwrite(data, 1, len, e->f);
	fputc('\n', e->f);
	e->secrets++;
	return 0;
}

static const char *job_kind_name(enum store_job_kind k)
{
	return k == STORE_JOB_EXPORT ? "export" : k == STORE_JOB_SUBSCRIBE ? "subscribe" : "import";
}

static int export_job(void *arg, const struct store_job *j)
{
	struct export_ctx *e = arg;

	if (strcmp(j->xui, e->xui) != 0 || (j->state != STORE_JOB_QUEUED && j->state != STORE_JOB_RUNNING))
		return 0;
	if (!is_line_safe(j->request_id) || strchr(j->hash, ' ')) {
		e->is_bad = true;
		return 1;
	}
	/* A running job's worker is on the old shard; here it is queued again. */
	fprintf(e->f, "job %s %s %s\n", job_kind_name(j->kind), j->hash, j->request_id);
	e->jobs++;
	return 0;
}

static int export_watch(void *arg, const struct store_watch *w)
{
	struct export_ctx *e = arg;
	struct store_job j;
	uint64_t id = 0;

	if (strcmp(w->xui, e->xui) != 0 || w->state == STORE_WATCH_TERMINATED)
		return 0;
	if (!is_line_safe(w->request_id) || strchr(w->adapter, ' ') || strchr(w->cred, ' ') ||
	    !is_line_safe(w->adapter) || !is_line_safe(w->cred)) {
		e->is_bad = true;
		return 1;
	}
	/* Its request's job: unfinished ones are in the bundle already; a
	 * finished one is run again on the new shard, where the watch goes on. */
	if (store_job_current(e->rd, w->xui, w->request_id, &id) || store_job_get(e->rd, id, &j))
		return 0; /* no request any more: nothing to watch */
	if (j.state != STORE_JOB_QUEUED && j.state != STORE_JOB_RUNNING) {
		if (strchr(j.hash, ' ')) {
			e->is_bad = true;
			return 1;
		}
		fprintf(e->f, "job subscribe %s %s\n", j.hash, w->request_id);
		e->jobs++;
	}
	fprintf(e->f, "watch %" PRIu32 " %" PRIu64 " %" PRIu64 " %s %s %s\n", w->seq, w->created_ms, w->expires_ms,
		w->adapter, w->cred[0] ? w->cred : "-", w->request_id);
	e->watches++;
	return 0;
}

/* Walks the user's documents of every AUID. */
static enum xdms_err user_docs(struct store_read *rd, const struct xcap_registry *reg, const char *xui,
			       struct export_ctx *e)
{
	enum xdms_err err = XDMS_ERR_OK;

	for (size_t i = 0; i < xcap_registry_count(reg) && !err && !e->is_bad; i++) {
		const struct xcap_auid *a = xcap_registry_at(reg, i);
		char *prefix;

		if (!(a->scope & XCAP_SCOPE_USERS) || a->is_generated)
			continue;
		prefix = xasprintf("%s/users/%s/", a->name, xui);
		err = store_doc_list(rd, prefix, export_doc, e);
		free(prefix);
	}
	return err;
}

int ctl_user_export(const struct conf *c, const char *xui, const char *path)
{
	struct export_ctx e;
	struct ctl_writer wr;
	struct store *st = NULL;
	struct store_read *rd = NULL;
	struct store_user u;
	bool is_frozen = false, is_done = false;
	char default_realm[STORE_REALM_MAX];
	enum xdms_err err;
	int rc = CTL_EXIT_FAIL;

	memset(&e, 0, sizeof(e));
	e.xui = xui;
	if (!is_line_safe(xui) || strlen(xui) >= STORE_XUI_MAX || strchr(xui, '/')) {
		fprintf(stderr, "xdmsctl: '%s' is not a XUI\n", xui);
		return CTL_EXIT_USAGE;
	}
	if (ctl_writer_open(c, NULL, &wr))
		goto out;
	/* Created before the store is opened: opening it may switch root to the
	 * service user (ctl_store_open), who may not write where root does. */
	e.f = strcmp(path, "-") ? fopen(path, "wbx") : stdout;
	if (!e.f) {
		fprintf(stderr, "xdmsctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (ctl_store_open(c, &st))
		goto out;
	/* Freeze first: the snapshot below is taken after the freeze committed,
	 * so it holds every write the shard will ever acknowledge for the user. */
	err = store_user_freeze(st, xui, true);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot freeze %s: %s\n", xui, xdms_err_str(err));
		goto out;
	}
	is_frozen = true;
	err = store_read_begin(st, &rd);
	if (!err)
		err = store_user_get(rd, xui, &u);
	if (err) {
		fprintf(stderr, "xdmsctl: %s: %s\n", xui, err == XDMS_ERR_NOTFOUND ? "no such user" : xdms_err_str(err));
		goto out;
	}
	/* The default realm travels too: a tel: user's only realm is it, and a
	 * new shard has recorded none yet (its first user is this one). */
	digest_default_realm(st, c, default_realm, sizeof(default_realm));
	fprintf(e.f, BUNDLE_MAGIC "\nuser %s\nusername %s\ncreated %" PRIu64 "\n", u.xui, u.username, u.created_ms);
	if (is_line_safe(default_realm))
		fprintf(e.f, "default-realm %s\n", default_realm);
	for (unsigned i = 0; i < u.realm_count && i < STORE_USER_REALMS_MAX; i++) {
		const struct store_user_realm *r = &u.realms[i];

		if (!is_line_safe(r->realm)) {
			e.is_bad = true;
			break;
		}
		fprintf(e.f, "realm %d", r->is_xui_only ? 1 : 0);
		hex_put(e.f, r->ha1_md5_user, sizeof(r->ha1_md5_user));
		hex_put(e.f, r->ha1_sha256_user, sizeof(r->ha1_sha256_user));
		hex_put(e.f, r->ha1_md5_xui, sizeof(r->ha1_md5_xui));
		hex_put(e.f, r->ha1_sha256_xui, sizeof(r->ha1_sha256_xui));
		fprintf(e.f, " %s\n", r->realm);
	}
	err = user_docs(rd, wr.reg, xui, &e);
	if (!err && !e.is_bad)
		err = store_secret_list(rd, xui, export_secret, &e);
	if (!err && !e.is_bad)
		err = store_job_list(rd, export_job, &e);
	e.rd = rd;
	if (!err && !e.is_bad)
		err = store_watch_list(rd, export_watch, &e);
	explicit_bzero(&u, sizeof(u));
	if (err || e.is_bad) {
		fprintf(stderr, "xdmsctl: cannot export %s: %s\n", xui,
			e.is_bad ? "a name or ETag holds a newline" : xdms_err_str(err));
		goto out;
	}
	fputs("end\n", e.f);
	if (fflush(e.f) || (e.f != stdout && fsync(fileno(e.f)))) {
		fprintf(stderr, "xdmsctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	is_done = true;
	fprintf(stderr,
		"xdmsctl: exported %s: %u document(s), %u secret(s), %u open job(s), %u watch(es); it is read-only "
		"here until `user purge` (moved) or `user thaw` (move called off)\n",
		xui, e.docs, e.secrets, e.jobs, e.watches);
	rc = 0;
out:
	store_read_end(rd);
	if (e.f && e.f != stdout) {
		fclose(e.f);
		/* After a switch to the service user root's directory may be out of
		 * reach: then say so rather than leave an unfinished bundle unnoticed. */
		if (!is_done && unlink(path) != 0 && errno != ENOENT)
			fprintf(stderr, "xdmsctl: remove the unfinished %s yourself: %s\n", path, strerror(errno));
	}
	/* A failed export leaves the user as it was: writable. */
	if (is_frozen && !is_done && store_user_freeze(st, xui, false))
		fprintf(stderr, "xdmsctl: %s stays read-only: run `xdmsctl user thaw %s`\n", xui, xui);
	store_close(st);
	ctl_writer_close(&wr);
	return rc;
}

/* ---- import ------------------------------------------------------------------------------ */

struct bundle {
	char *data; /* the whole file, NUL-terminated */
	size_t len;
	size_t pos;
};

/* The next line (without its newline), NUL-terminated in place; NULL at the end. */
static char *next_line(struct bundle *b)
{
	char *s = b->data + b->pos, *nl;

	if (b->pos >= b->len)
		return NULL;
	nl = memchr(s, '\n', b->len - b->pos);
	if (!nl)
		return NULL;
	*nl = '\0';
	b->pos = (size_t)(nl - b->data) + 1;
	return s;
}

/* The next @len bytes and their newline; NULL when the bundle is short. */
static const char *next_bytes(struct bundle *b, size_t len)
{
	const char *s = b->data + b->pos;

	if (len > b->len - b->pos || b->len - b->pos - len < 1 || s[len] != '\n')
		return NULL;
	b->pos += len + 1;
	return s;
}

static bool hex_get(const char **p, uint8_t *out, size_t n)
{
	const char *s = *p;

	if (*s++ != ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1 || !strchr("0123456789abcdef", s[2 * i]) ||
		    !strchr("0123456789abcdef", s[2 * i + 1]))
			return false;
		out[i] = (uint8_t)v;
	}
	*p = s + 2 * n;
	return true;
}

/* Splits "N REST" into a length (capped by @max) and the rest. */
static bool len_and_rest(char *s, size_t max, size_t *len, char **rest)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end != ' ' || v > max)
		return false;
	*len = (size_t)v;
	*rest = end + 1;
	return true;
}

struct item {
	char kind; /* 'd' document, 's' secret, 'j' job, 'w' watch */
	const char *name; /* selector, secret name or request id */
	const char *etag; /* document: its ETag; job: its hash; watch: its adapter */
	const char *data; /* watch: where its credential is sealed ("-": none) */
	size_t len;
	enum store_job_kind job_kind;
	uint32_t seq;                 /* watch */
	uint64_t created_ms, expires_ms;
};

struct job_op {
	const char *xui;
	const struct item *items;
	size_t count;
	unsigned added;
};

static enum xdms_err jobs_hook(struct store_write *w, struct store_txn *txn, const struct store_doc *o,
			       const struct store_doc *n)
{
	struct job_op *op = w->arg;

	(void)o;
	(void)n;
	op->added = 0;
	for (size_t i = 0; i < op->count; i++) {
		const struct item *it = &op->items[i];
		char hash[STORE_JOB_HASH_MAX];
		uint64_t id;
		enum xdms_err err;

		if (it->kind != 'j')
			continue;
		/* The document's commit hook queued the request already, unless it
		 * carried an interim <response>: then the job comes from here. */
		err = store_job_current_txn(txn, op->xui, it->name, &id, hash);
		if (err == XDMS_ERR_NOTFOUND || (!err && strcmp(hash, it->etag) != 0)) {
			err = store_job_add_txn(txn, op->xui, it->name, it->etag, it->job_kind, NULL);
			op->added++;
		}
		if (err)
			return err;
	}
	return XDMS_ERR_OK;
}

/* The moved watch's record, unless the new shard has one (an import run
 * again after its job took the watch over): its subscribe job, queued by
 * the jobs hook, runs the subscription again from it (seq + 1). */
static bool watch_put(struct store *st, const char *xui, const struct item *it)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	struct store_read *rd = NULL;
	enum xdms_err err = store_read_begin(st, &rd);

	if (!err)
		err = store_watch_get(rd, xui, it->name, w);
	store_read_end(rd);
	if (err == XDMS_ERR_NOTFOUND) {
		memset(w, 0, sizeof(*w));
		snprintf(w->xui, sizeof(w->xui), "%s", xui);
		snprintf(w->request_id, sizeof(w->request_id), "%s", it->name);
		snprintf(w->adapter, sizeof(w->adapter), "%s", it->etag);
		snprintf(w->target, sizeof(w->target), "pcc");
		if (strcmp(it->data, "-") != 0)
			snprintf(w->cred, sizeof(w->cred), "%s", it->data);
		w->state = STORE_WATCH_ACTIVE;
		w->seq = it->seq;
		w->created_ms = it->created_ms;
		w->expires_ms = w->next_poll_ms = it->expires_ms;
		err = store_watch_put(st, w);
	}
	free(w);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot store the watch of request %s: %s\n", it->name, xdms_err_str(err));
		return false;
	}
	return true;
}

int ctl_user_import(const struct conf *c, const char *path)
{
	struct bundle b = { 0 };
	struct store_user u;
	struct item *items = NULL;
	struct ctl_writer wr;
	struct store *st = NULL;
	struct buf in;
	FILE *f = NULL;
	char chunk[65536], *line, default_realm[STORE_REALM_MAX] = "";
	size_t count = 0, n;
	unsigned docs = 0, secrets = 0;
	bool has_end = false, is_big = false;
	enum xdms_err err;
	int rc = CTL_EXIT_FAIL;

	memset(&u, 0, sizeof(u));
	memset(&wr, 0, sizeof(wr));
	buf_init(&in, BUNDLE_MAX);
	f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	if (!f) {
		fprintf(stderr, "xdmsctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	while (!is_big && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		is_big = buf_append(&in, chunk, n) != XDMS_ERR_OK;
	if (is_big || buf_append(&in, "", 1)) {
		fprintf(stderr, "xdmsctl: %s is larger than %zu bytes\n", path, BUNDLE_MAX);
		goto out;
	}
	b.len = in.len - 1;
	b.data = buf_take(&in, NULL);

	/* Parse and check everything before writing anything. */
	line = next_line(&b);
	if (!line || strcmp(line, BUNDLE_MAGIC) != 0) {
		fprintf(stderr, "xdmsctl: %s is not a user export (no '%s' line)\n", path, BUNDLE_MAGIC);
		goto out;
	}
	while ((line = next_line(&b))) {
		struct item it = { 0 };
		char *rest;

		if (!strncmp(line, "user ", 5) && strlen(line + 5) < sizeof(u.xui) && !strchr(line + 5, '/')) {
			snprintf(u.xui, sizeof(u.xui), "%s", line + 5);
		} else if (!strncmp(line, "username ", 9) && strlen(line + 9) < sizeof(u.username)) {
			snprintf(u.username, sizeof(u.username), "%s", line + 9);
		} else if (!strncmp(line, "default-realm ", 14) && line[14] && strlen(line + 14) < sizeof(default_realm)) {
			snprintf(default_realm, sizeof(default_realm), "%s", line + 14);
		} else if (!strncmp(line, "created ", 8)) {
			u.created_ms = strtoull(line + 8, NULL, 10);
		} else if (!strncmp(line, "realm ", 6) && u.realm_count < STORE_USER_REALMS_MAX) {
			struct store_user_realm *r = &u.realms[u.realm_count];
			const char *p = line + 7;

			if ((line[6] != '0' && line[6] != '1') || !hex_get(&p, r->ha1_md5_user, 16) ||
			    !hex_get(&p, r->ha1_sha256_user, 32) || !hex_get(&p, r->ha1_md5_xui, 16) ||
			    !hex_get(&p, r->ha1_sha256_xui, 32) || *p != ' ' || !p[1] || strlen(p + 1) >= sizeof(r->realm))
				goto bad_line;
			r->is_xui_only = line[6] == '1';
			snprintf(r->realm, sizeof(r->realm), "%s", p + 1);
			u.realm_count++;
		} else if (!strncmp(line, "doc ", 4) && len_and_rest(line + 4, c->xcap_max_document, &it.len, &rest)) {
			char *sp = strchr(rest, ' ');

			if (!sp || sp == rest || (size_t)(sp - rest) >= STORE_ETAG_MAX || !sp[1])
				goto bad_line;
			*sp = '\0';
			it.kind = 'd';
			it.etag = rest;
			it.name = sp + 1;
			if (!(it.data = next_bytes(&b, it.len)))
				goto short_bundle;
		} else if (!strncmp(line, "secret ", 7) && len_and_rest(line + 7, STORE_SECRET_MAX, &it.len, &rest)) {
			it.kind = 's';
			it.name = rest;
			if (!rest[0] || !(it.data = next_bytes(&b, it.len)))
				goto short_bundle;
		} else if (!strncmp(line, "job ", 4)) {
			char *kind = line + 4, *hash = strchr(kind, ' '), *rid = hash ? strchr(hash + 1, ' ') : NULL;

			if (!rid || !rid[1] || strlen(rid + 1) >= STORE_JOB_ID_MAX || rid - hash - 1 >= STORE_JOB_HASH_MAX)
				goto bad_line;
			*hash++ = '\0';
			*rid++ = '\0';
			if (strcmp(kind, "import") && strcmp(kind, "export") && strcmp(kind, "subscribe"))
				goto bad_line;
			it.kind = 'j';
			it.job_kind = !strcmp(kind, "export")	 ? STORE_JOB_EXPORT :
				      !strcmp(kind, "subscribe") ? STORE_JOB_SUBSCRIBE :
								   STORE_JOB_IMPORT;
			it.etag = hash;
			it.name = rid;
		} else if (!strncmp(line, "watch ", 6)) {
			char *wf[6], *p = line + 6, *end;

			/* Five fields without spaces, then the request id. */
			for (int i = 0; i < 5; i++) {
				wf[i] = p;
				if (!(p = strchr(p, ' ')) || p == wf[i])
					goto bad_line;
				*p++ = '\0';
			}
			wf[5] = p;
			if (!wf[5][0] || strlen(wf[5]) >= STORE_JOB_ID_MAX || strlen(wf[3]) >= STORE_WATCH_ADAPTER_MAX ||
			    strlen(wf[4]) >= STORE_WATCH_PARAM_MAX)
				goto bad_line;
			errno = 0;
			it.seq = (uint32_t)strtoul(wf[0], &end, 10);
			if (*end || errno)
				goto bad_line;
			it.created_ms = strtoull(wf[1], &end, 10);
			if (*end || errno)
				goto bad_line;
			it.expires_ms = strtoull(wf[2], &end, 10);
			if (*end || errno)
				goto bad_line;
			it.kind = 'w';
			it.etag = wf[3];
			it.data = wf[4];
			it.name = wf[5];
		} else if (!strcmp(line, "end")) {
			has_end = true;
			break;
		} else {
			goto bad_line;
		}
		if (it.kind) {
			if (count == BUNDLE_ITEMS_MAX) {
				fprintf(stderr, "xdmsctl: %s holds more than %d items\n", path, BUNDLE_ITEMS_MAX);
				goto out;
			}
			items = xrealloc(items, (count + 1) * sizeof(*items));
			items[count++] = it;
		}
	}
	if (!has_end)
		goto short_bundle;
	if (!u.xui[0] || !u.username[0] || !u.realm_count) {
		fprintf(stderr, "xdmsctl: %s names no complete user\n", path);
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		const char *s = items[i].name;

		/* Every document must be the user's own. */
		if (items[i].kind == 'd' &&
		    (!(s = strstr(s, "/users/")) || strncmp(s + 7, u.xui, strlen(u.xui)) || s[7 + strlen(u.xui)] != '/')) {
			fprintf(stderr, "xdmsctl: %s: '%s' is not a document of %s\n", path, items[i].name, u.xui);
			goto out;
		}
	}

	if (ctl_store_open(c, &st) || ctl_writer_open(c, st, &wr))
		goto out;
	if (default_realm[0] && !c->auth_realm[0]) {
		char here[STORE_REALM_MAX];

		/* Users and their realms only make sense where the default realm
		 * is the same; a shard that has recorded none takes the bundle's. */
		digest_default_realm(st, c, here, sizeof(here));
		if (strcmp(here, default_realm) != 0 && strcmp(here, DIGEST_REALM_FALLBACK) != 0) {
			fprintf(stderr, "xdmsctl: this shard's default realm is %s, the bundle's is %s; set auth.realm "
					"alike on every shard\n",
				here, default_realm);
			goto out;
		}
	}
	err = store_user_put_realm(st, &u, false, default_realm[0] && !c->auth_realm[0] ? default_realm : NULL, NULL);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot store user %s: %s\n", u.xui, xdms_err_str(err));
		goto out;
	}
	for (size_t i = 0; i < count; i++) {
		if (items[i].kind == 'd') {
			if (!doc_write(&wr, items[i].name, items[i].data, items[i].len, items[i].etag, false))
				goto out;
			docs++;
		} else if (items[i].kind == 's') {
			err = store_secret_put(st, u.xui, items[i].name, items[i].data, items[i].len, true);
			if (err) {
				fprintf(stderr, "xdmsctl: cannot store secret %s: %s\n", items[i].name, xdms_err_str(err));
				goto out;
			}
			secrets++;
		} else if (items[i].kind == 'w' && !watch_put(st, u.xui, &items[i])) {
			goto out;
		}
	}
	{
		struct job_op op = { u.xui, items, count, 0 };
		struct store_write w;

		memset(&w, 0, sizeof(w));
		w.hook = jobs_hook;
		w.arg = &op;
		err = store_write_run(st, &w);
		if (err) {
			fprintf(stderr, "xdmsctl: cannot queue the open jobs: %s\n", xdms_err_str(err));
			goto out;
		}
		printf("imported %s: %u document(s), %u secret(s), %u job(s) queued\n", u.xui, docs, secrets, op.added);
	}
	rc = 0;
	goto out;
bad_line:
	fprintf(stderr, "xdmsctl: %s: malformed line '%.80s'\n", path, line);
	goto out;
short_bundle:
	fprintf(stderr, "xdmsctl: %s is cut short (no 'end' line, or a length past the end)\n", path);
out:
	if (f && f != stdin)
		fclose(f);
	explicit_bzero(&u, sizeof(u));
	buf_cleanup(&in);
	free(b.data);
	free(items);
	ctl_writer_close(&wr);
	store_close(st);
	return rc;
}

/* ---- purge and thaw -------------------------------------------------------------------- */

int ctl_user_purge(const struct conf *c, const char *xui)
{
	struct export_ctx e;
	struct ctl_writer wr;
	struct store *st = NULL;
	struct store_read *rd = NULL;
	enum xdms_err err;
	size_t doc_count = 0;
	int rc = CTL_EXIT_FAIL;

	memset(&e, 0, sizeof(e));
	memset(&wr, 0, sizeof(wr));
	e.xui = xui;
	if (ctl_store_open(c, &st) || ctl_writer_open(c, st, &wr))
		goto out;
	err = store_read_begin(st, &rd);
	if (!err)
		err = store_user_frozen(rd, xui);
	if (err == XDMS_ERR_NOTFOUND) {
		fprintf(stderr, "xdmsctl: %s is not being moved: export it first (`user del` removes a user)\n", xui);
		goto out;
	}
	if (!err)
		err = user_docs(rd, wr.reg, xui, &e);
	doc_count = e.name_count;
	if (!err)
		err = store_secret_list(rd, xui, export_secret, &e);
	store_read_end(rd);
	rd = NULL;
	if (err) {
		fprintf(stderr, "xdmsctl: %s: %s\n", xui, xdms_err_str(err));
		goto out;
	}
	for (size_t i = 0; i < doc_count; i++)
		if (!doc_write(&wr, e.names[i], NULL, 0, NULL, true))
			goto out;
	for (size_t i = doc_count; i < e.name_count; i++) {
		err = store_secret_del(st, xui, e.names[i]);
		if (err && err != XDMS_ERR_NOTFOUND) {
			fprintf(stderr, "xdmsctl: cannot remove secret %s: %s\n", e.names[i], xdms_err_str(err));
			goto out;
		}
	}
	err = store_user_del(st, xui);
	if (err && err != XDMS_ERR_NOTFOUND) {
		fprintf(stderr, "xdmsctl: cannot remove user %s: %s\n", xui, xdms_err_str(err));
		goto out;
	}
	err = store_user_freeze(st, xui, false);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot end the move of %s: %s\n", xui, xdms_err_str(err));
		goto out;
	}
	printf("purged %s: %zu document(s)\n", xui, doc_count);
	rc = 0;
out:
	store_read_end(rd);
	for (size_t i = 0; i < e.name_count; i++)
		free(e.names[i]);
	free(e.names);
	ctl_writer_close(&wr);
	store_close(st);
	return rc;
}

int ctl_user_thaw(const struct conf *c, const char *xui)
{
	struct store *st = NULL;
	enum xdms_err err;

	if (ctl_store_open(c, &st))
		return CTL_EXIT_FAIL;
	err = store_user_freeze(st, xui, false);
	store_close(st);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot thaw %s: %s\n", xui, xdms_err_str(err));
		return CTL_EXIT_FAIL;
	}
	return 0;
}
