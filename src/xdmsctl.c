/* SPDX-License-Identifier: MIT */
/*
 * xdmsctl: the admin tool. It opens the same LMDB environment as xdmsd
 * (LMDB lets both processes use it at once and serializes their writes) and
 * goes through the same modules: users get the same Digest credentials the
 * server checks, and `doc put` runs the same validation and write path as an
 * XCAP PUT by an administrator.
 *
 * Exit codes: 0 success, 1 the operation failed (the message says why),
 * 2 bad usage.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "conf/conf.h"
#include "ctl/ctl.h"
#include "http/http.h"
#include "auth/digest.h"
#include "iwf/iwf.h"
#include "store/store.h"
#include "xcap/xcap.h"
#include "xml/xml.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

static void usage(FILE *f)
{
	fprintf(f, "usage: xdmsctl [-c FILE] [--data-dir DIR] [--set SECTION.KEY=VALUE]... COMMAND\n"
		   "\n"
		   "commands:\n"
		   "  user add XUI PASSWORD     provision a user (Digest credentials for its realms);\n"
		   "                            PASSWORD - reads it from the first line of stdin\n"
		   "  user passwd XUI PASSWORD  change a user's password\n"
		   "  user del XUI              remove a user\n"
		   "  user list                 list users, one XUI per line\n"
		   "  user export XUI [FILE]    moving a user to another shard: make it read-only\n"
		   "                            here and write its documents (with their ETags),\n"
		   "                            credentials, secrets and open IWF jobs to FILE\n"
		   "  user import FILE          store an exported user in this data directory\n"
		   "  user purge XUI            remove an exported user from here (after the move)\n"
		   "  user thaw XUI             make an exported user writable again (move called off)\n"
		   "  doc get SELECTOR          print a document (AUID/users/XUI/path or AUID/global/path)\n"
		   "  doc put SELECTOR FILE     store a document after XCAP validation, as admin\n"
		   "  doc del SELECTOR          delete a document\n"
		   "  doc list [PREFIX]         list document selectors with ETag and size\n"
		   "  jobs [--user XUI] [--state S]  list IWF jobs: id, state, kind, XUI, request,\n"
		   "                            attempts, result code, created, last change, reason\n"
		   "  subscriptions [--user XUI]  list subscribe-profile watches: XUI, request, adapter,\n"
		   "                            state, poll|webhook, seq, failed polls in a row, last\n"
		   "                            code, next poll, expiry, last update, last failure\n"
		   "  adapter add ID --kind xcap|http|carddav --url URL [--import-xslt FILE] [--export-xslt FILE]\n"
		   "              [--auth none|basic|bearer|digest|oauth2] [--timeout SECONDS]\n"
		   "              [--plain-http-loopback true|false]\n"
		   "              [--format xml|json] [--token-url URL --client-id ID [--scope S]]\n"
		   "              [--next-page-token PTR --page-token-param P] [--next-link PTR]\n"
		   "              [--sync-token PTR --sync-token-param P] [--delta-link PTR]\n"
		   "              [--max-pages N] [--import-method M] [--export-method M]\n"
		   "              [--poll-interval SECONDS] [--watch poll|webhook|both]\n"
		   "              [--webhook-base URL --webhook-register URL] [--webhook-style xdmsd|graph]\n"
		   "              [--sip-uri sip:IP:PORT]\n"
		   "              [--book-create-url URL] [--book-item-url URL] [--book-delete-url URL]\n"
		   "              [--book-update-method M] [--book-id PTR] [--book-etag PTR]\n"
		   "              [--book-if-match true|false]\n"
		   "                            add or replace a 3rd-party adapter (FILE may name a\n"
		   "                            built-in transform, e.g. vendor-example-import.xsl;\n"
		   "                            PTR is a JSON Pointer into each page, e.g. /nextPageToken)\n"
		   "  adapter list              adapters: id, kind, URL\n"
		   "  adapter show ID           print an adapter's document\n"
		   "  adapter del ID            remove an adapter and its stored transforms\n"
		   "  adapter test ID --user XUI [--remote-user R] [--username U --password P]\n"
		   "                            dry import: fetch and transform, print the PCC, store nothing\n"
		   "  credential set XUI NAME (--username U --password P | --token T)\n"
		   "                            provision the credential a request's <credential-ref>NAME\n"
		   "                            names (sealed with iwf.key_file; never printed)\n"
		   "  credential del XUI NAME   remove it\n"
		   "  credential set|del --adapter ID ...  the adapter's own credential, used by requests\n"
		   "                            that bring none\n"
		   "  credential set|del --adapter ID --client-secret S   the OAuth client secret of an\n"
		   "                            oauth2 adapter (del: --adapter ID --client-secret)\n"
		   "  global put SELECTOR FILE --shard URL... [--identity ID | --user NAME:PASSWORD]\n"
		   "                            write a global document to every shard (XCAP PUT to\n"
		   "                            each URL, an XCAP root) and report each shard's answer\n"
		   "  global del SELECTOR --shard URL...   delete it on every shard\n"
		   "  global push [PREFIX] --shard URL...  write every global document of this data\n"
		   "                            directory (under PREFIX) to every shard\n"
		   "  stats                     store figures\n"
		   "  backup DIR                consistent copy of the running server's store (and the\n"
		   "                            IWF key) into the new or empty DIR\n"
		   "  restore DIR               put the backup in DIR into the empty data directory,\n"
		   "                            with a new ETag instance id (server stopped)\n"
		   "  --version                 the version\n");
}


/*
 * The realm of global documents and tel: users for a new user, and whether
 * the put records it as the store's default realm (@record): auth.realm when
 * set; else the store's recorded one; else, for the first user of a store,
 * its own domain ("xdms" for a tel: user), recorded; a store that has users
 * but no record was provisioned before the record existed and keeps "xdms".
 */
static enum xdms_err default_realm_pick(const struct conf *c, struct store *st, const char *domain, char *out,
					size_t out_len, bool *record)
{
	struct store_read *rd;
	struct store_stats stats;
	enum xdms_err err;

	*record = false;
	if (c->auth_realm[0]) {
		snprintf(out, out_len, "%s", c->auth_realm);
		return XDMS_ERR_OK;
	}
	err = store_read_begin(st, &rd);
	if (err)
		return err;
	err = store_default_realm_get(rd, out, out_len);
	store_read_end(rd);
	if (err != XDMS_ERR_NOTFOUND)
		return err;
	err = store_stats_get(st, &stats);
	if (err)
		return err;
	snprintf(out, out_len, "%s", stats.user_count || !domain[0] ? DIGEST_REALM_FALLBACK : domain);
	*record = true;
	return XDMS_ERR_OK;
}

/* Says which user holds a name of @u that made its put a CONFLICT. */
static void report_conflict(struct store *st, const struct store_user *u)
{
	struct store_read *rd;
	struct store_user holder;

	if (store_read_begin(st, &rd))
		return;
	for (unsigned i = 0; i < u->realm_count; i++) {
		const char *names[2] = { u->username, u->xui };

		for (size_t j = u->realms[i].is_xui_only ? 1 : 0; j < 2; j++) {
			if (store_user_find(rd, u->realms[i].realm, names[j], &holder) ||
			    !strcmp(holder.xui, u->xui))
				continue;
			fprintf(stderr, "xdmsctl: cannot store user %s: the Digest username '%s' in realm %s "
					"belongs to %s\n",
				u->xui, names[j], u->realms[i].realm, holder.xui);
			explicit_bzero(&holder, sizeof(holder));
			store_read_end(rd);
			return;
		}
	}
	store_read_end(rd);
	fprintf(stderr, "xdmsctl: cannot store user %s: the store's default realm was set meanwhile; "
			"run the command again\n",
		u->xui);
}

/* Tells the operator that @u logs in to the default realm with its full XUI only. */
static void note_xui_only(struct store *st, const struct store_user *u)
{
	struct store_read *rd;
	struct store_user holder;
	bool is_found = false;

	if (!store_read_begin(st, &rd)) {
		is_found = !store_user_find(rd, u->realms[1].realm, u->username, &holder);
		store_read_end(rd);
	}
	fprintf(stderr,
		"xdmsctl: note: '%s' in realm %s belongs to %s; %s logs in there (global documents) with its "
		"full XUI\n",
		u->username, u->realms[1].realm, is_found ? holder.xui : "another user", u->xui);
	explicit_bzero(&holder, sizeof(holder));
}

static int cmd_user_put(const struct conf *c, const char *xui, const char *password, bool is_create)
{
	struct store *st = NULL;
	struct store_user u;
	char domain[STORE_REALM_MAX], default_realm[STORE_REALM_MAX];
	struct timeval tv;
	char line[1024];
	char yielded[STORE_XUI_MAX] = "";
	bool is_recorded;
	enum xdms_err err;
	int rc = EXIT_FAIL;

	memset(&u, 0, sizeof(u));
	if (strlen(xui) >= sizeof(u.xui) ||
	    !xcap_xui_split(xui, u.username, sizeof(u.username), domain, sizeof(domain))) {
		fprintf(stderr, "xdmsctl: '%s' is not a sip:, sips: or tel: XUI\n", xui);
		return EXIT_USAGE;
	}
	if (!strcmp(password, "-")) {
		if (!fgets(line, sizeof(line), stdin)) {
			fprintf(stderr, "xdmsctl: no password on standard input\n");
			return EXIT_USAGE;
		}
		line[strcspn(line, "\r\n")] = '\0';
		password = line;
	}
	if (!password[0]) {
		fprintf(stderr, "xdmsctl: the password must not be empty\n");
		return EXIT_USAGE;
	}
	snprintf(u.xui, sizeof(u.xui), "%s", xui);
	gettimeofday(&tv, NULL);
	u.created_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	if (!is_create) {
		struct store_read *rd;
		struct store_user old;

		err = store_read_begin(st, &rd);
		if (!err) {
			err = store_user_get(rd, xui, &old);
			store_read_end(rd);
		}
		if (err) {
			fprintf(stderr, "xdmsctl: no user %s\n", xui);
			goto out;
		}
		u.created_ms = old.created_ms;
		explicit_bzero(&old, sizeof(old));
	}
	err = default_realm_pick(c, st, domain, default_realm, sizeof(default_realm), &is_recorded);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot read the store's default realm: %s\n", xdms_err_str(err));
		goto out;
	}
	/* The XUI's own domain is the realm of its documents; the default realm
	 * serves global documents and tel: users. */
	if (domain[0])
		digest_credentials_fill(&u.realms[u.realm_count++], domain, u.username, xui, password);
	if (!domain[0] || strcmp(domain, default_realm) != 0)
		digest_credentials_fill(&u.realms[u.realm_count++], default_realm, u.username, xui, password);
	err = store_user_put_realm(st, &u, is_create, is_recorded ? default_realm : NULL, yielded);
	if (err == XDMS_ERR_CONFLICT && u.realm_count == 2 && !u.realms[1].is_xui_only) {
		/* Another domain's user has this user part in the default realm
		 * (sip:alice@a and sip:alice@b): there, only the full XUI works. */
		u.realms[1].is_xui_only = true;
		err = store_user_put_realm(st, &u, is_create, is_recorded ? default_realm : NULL, yielded);
		if (!err)
			note_xui_only(st, &u);
	}
	if (!err && yielded[0])
		fprintf(stderr,
			"xdmsctl: note: '%s' in realm %s is now %s's own; %s logs in there with its full XUI\n",
			u.username, u.realms[0].realm, xui, yielded);
	if (err == XDMS_ERR_EXISTS)
		fprintf(stderr, "xdmsctl: user %s exists already\n", xui);
	else if (err == XDMS_ERR_CONFLICT)
		report_conflict(st, &u);
	else if (err)
		fprintf(stderr, "xdmsctl: cannot store user %s: %s\n", xui, xdms_err_str(err));
	else
		rc = 0;
out:
	explicit_bzero(&u, sizeof(u));
	explicit_bzero(line, sizeof(line));
	store_close(st);
	return rc;
}

static int cmd_user_del(const struct conf *c, const char *xui)
{
	struct store *st = NULL;
	enum xdms_err err;

	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	err = store_user_del(st, xui);
	store_close(st);
	if (err == XDMS_ERR_NOTFOUND) {
		fprintf(stderr, "xdmsctl: no user %s\n", xui);
		return EXIT_FAIL;
	}
	if (err) {
		fprintf(stderr, "xdmsctl: cannot delete user %s: %s\n", xui, xdms_err_str(err));
		return EXIT_FAIL;
	}
	return 0;
}

static int print_user(void *arg, const struct store_user *u)
{
	printf("%s\n", u->xui);
	return 0;
}

static int print_doc(void *arg, const char *selector, const struct store_doc *doc)
{
	printf("%s\t\"%s\"\t%zu\n", selector, doc->etag, doc->data_len);
	return 0;
}

static int cmd_read(const struct conf *c, const char *what, const char *arg)
{
	struct store *st = NULL;
	struct store_read *rd = NULL;
	struct store_doc doc;
	enum xdms_err err;
	int rc = EXIT_FAIL;

	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	err = store_read_begin(st, &rd);
	if (err)
		goto out;
	if (!strcmp(what, "users")) {
		err = store_user_list(rd, print_user, NULL);
	} else if (!strcmp(what, "docs")) {
		err = store_doc_list(rd, arg ? arg : "", print_doc, NULL);
	} else {
		err = store_doc_get(rd, arg, &doc);
		if (err == XDMS_ERR_NOTFOUND) {
			fprintf(stderr, "xdmsctl: no document %s\n", arg);
			err = XDMS_ERR_OK; /* reported */
			goto out;
		}
		if (!err && fwrite(doc.data, 1, doc.data_len, stdout) != doc.data_len)
			err = XDMS_ERR_IO;
	}
	if (!err)
		rc = 0;
out:
	if (err && rc)
		fprintf(stderr, "xdmsctl: %s\n", xdms_err_str(err));
	store_read_end(rd);
	store_close(st);
	return rc;
}

static char *read_file(const char *path, size_t max, size_t *len)
{
	char *data = NULL, *why = NULL;
	enum xdms_err err = strcmp(path, "-") ? file_read(path, max, &data, len, &why)
					      : file_read_stream(stdin, path, max, &data, len, &why);

	if (err) {
		fprintf(stderr, "xdmsctl: %s\n", why);
		free(why);
	}
	return data;
}

/*
 * The XCAP write path as an administrator: PUT @body (@body_len bytes) to
 * the document @selector, or DELETE it when @body is NULL. Prints the
 * outcome unless @is_quiet; returns an exit code.
 */
static int doc_write(const struct conf *c, const char *selector, const char *body, size_t body_len, bool is_quiet)
{
	struct ctl_writer wr = { 0 };
	struct store *st = NULL;
	struct xcap_uri uri;
	struct xcap_response resp;
	char *path = xasprintf("/%s", selector);
	int rc = EXIT_FAIL;

	memset(&uri, 0, sizeof(uri));
	xcap_response_init(&resp);
	if (xcap_uri_parse("", path, NULL, &uri) || uri.node_selector) {
		fprintf(stderr, "xdmsctl: '%s' is not a document selector (AUID/users/XUI/path or AUID/global/path)\n",
			selector);
		rc = EXIT_USAGE;
		goto out;
	}
	if (ctl_store_open(c, &st) || ctl_writer_open(c, st, &wr))
		goto out;
	ctl_admin_write(&wr, &uri, body, body_len, NULL, false, &resp);
	if (xcap_outcome_is_success(resp.outcome)) {
		if (is_quiet)
			;
		else if (resp.etag[0])
			printf("%s \"%s\"\n", resp.outcome == XCAP_OUTCOME_CREATED ? "created" : "replaced",
			       resp.etag);
		else
			printf("deleted\n");
		rc = 0;
	} else if (!is_quiet || resp.outcome != XCAP_OUTCOME_NOT_FOUND) {
		fprintf(stderr, "xdmsctl: %s refused with %u: %.*s\n", selector, http_status_of(resp.outcome),
			(int)resp.body.len, resp.body.data ? resp.body.data : "");
	}
out:
	xcap_response_cleanup(&resp);
	ctl_writer_close(&wr);
	store_close(st);
	xcap_uri_cleanup(&uri);
	free(path);
	return rc;
}

/* doc put / doc del. */
static int cmd_doc_write(const struct conf *c, const char *selector, const char *file)
{
	char *body = NULL;
	size_t body_len = 0;
	int rc;

	if (file) {
		body = read_file(file, c->http_max_body, &body_len);
		if (!body)
			return EXIT_FAIL;
	}
	rc = doc_write(c, selector, body, body_len, false);
	free(body);
	return rc;
}

static int count_job_state(void *arg, const struct store_job *j)
{
	uint64_t *n = arg;

	if ((unsigned)j->state < STORE_JOB__STATES)
		n[j->state]++;
	return 0;
}

static int cmd_stats(const struct conf *c)
{
	struct store *st = NULL;
	struct store_stats s;
	char realm[STORE_REALM_MAX];
	struct store_read *rd = NULL;
	uint64_t jobs[STORE_JOB__STATES] = { 0 };

	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	if (store_stats_get(st, &s)) {
		fprintf(stderr, "xdmsctl: cannot read the store's statistics\n");
		store_close(st);
		return EXIT_FAIL;
	}
	if (store_read_begin(st, &rd) || store_job_list(rd, count_job_state, jobs)) {
		fprintf(stderr, "xdmsctl: cannot read the IWF jobs\n");
		store_read_end(rd);
		store_close(st);
		return EXIT_FAIL;
	}
	store_read_end(rd);
	printf("documents %llu\nusers %llu\nchange_seq %llu\nmap_size_bytes %llu\nused_bytes %llu\n",
	       (unsigned long long)s.doc_count, (unsigned long long)s.user_count, (unsigned long long)s.last_seq,
	       (unsigned long long)s.map_size, (unsigned long long)s.used_bytes);
	/* The realm of global documents and tel: users, as the server sees it. */
	digest_default_realm(st, c, realm, sizeof(realm));
	printf("default_realm %s\n", realm);
	for (unsigned i = 0; i < STORE_JOB__STATES; i++)
		printf("jobs_%s %llu\n", store_job_state_name((enum store_job_state)i), (unsigned long long)jobs[i]);
	store_close(st);
	return 0;
}

/* ---- IWF: jobs and adapters ------------------------------------------------------------ */

/* Unix milliseconds as "2024-05-01T10:00:07.123Z". */
static void format_ms(uint64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%03uZ", base, (unsigned)(ms % 1000));
}

struct job_filter {
	const char *xui;
	bool has_state;
	enum store_job_state state;
};

/* @s with tabs and line ends as spaces, so that one job stays one TSV line. */
static const char *tsv_field(const char *s, char *buf, size_t size)
{
	size_t i = 0;

	for (; s[i] && i + 1 < size; i++)
		buf[i] = strchr("\t\r\n", s[i]) ? ' ' : s[i];
	buf[i] = '\0';
	return buf;
}

static const char *job_kind_name(enum store_job_kind k)
{
	if (k == STORE_JOB_SUBSCRIBE)
		return "subscribe";
	return k == STORE_JOB_EXPORT ? "export" : "import";
}

static int print_job(void *arg, const struct store_job *j)
{
	const struct job_filter *f = arg;
	char created[32], updated[32], rid[STORE_JOB_ID_MAX], reason[STORE_JOB_REASON_MAX];

	if ((f->xui && strcmp(f->xui, j->xui) != 0) || (f->has_state && f->state != j->state))
		return 0;
	format_ms(j->created_ms, created, sizeof(created));
	format_ms(j->updated_ms, updated, sizeof(updated));
	printf("%llu\t%s\t%s\t%s\t%s\t%u\t%u\t%s\t%s\t%s\n", (unsigned long long)j->id,
	       store_job_state_name(j->state), job_kind_name(j->kind), j->xui,
	       tsv_field(j->request_id, rid, sizeof(rid)), j->attempts, j->code, created, updated,
	       tsv_field(j->reason, reason, sizeof(reason)));
	return 0;
}

/* jobs [--user XUI] [--state S] */
static int cmd_jobs(const struct conf *c, char **av, int n)
{
	struct job_filter f = { 0 };
	struct store *st = NULL;
	struct store_read *rd = NULL;
	enum xdms_err err;

	for (int i = 0; i < n; i += 2) {
		if (i + 1 >= n) {
			usage(stderr);
			return EXIT_USAGE;
		}
		if (!strcmp(av[i], "--user")) {
			f.xui = av[i + 1];
		} else if (!strcmp(av[i], "--state")) {
			if (!store_job_state_parse(av[i + 1], &f.state)) {
				fprintf(stderr, "xdmsctl: unknown job state '%s' (queued, running, done, failed, "
						"cancelled)\n", av[i + 1]);
				return EXIT_USAGE;
			}
			f.has_state = true;
		} else {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	err = store_read_begin(st, &rd);
	if (!err)
		err = store_job_list(rd, print_job, &f);
	store_read_end(rd);
	store_close(st);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot list the jobs: %s\n", xdms_err_str(err));
		return EXIT_FAIL;
	}
	return 0;
}

/* ---- IWF: subscribe-profile watches --------------------------------------------------------- */

static int print_watch(void *arg, const struct store_watch *w)
{
	const char *xui = arg;
	char next[32] = "-", expires[32], updated[32] = "-", rid[STORE_JOB_ID_MAX], reason[STORE_JOB_REASON_MAX];

	if (xui && strcmp(xui, w->xui) != 0)
		return 0;
	if (w->state != STORE_WATCH_TERMINATED)
		format_ms(w->next_poll_ms, next, sizeof(next));
	format_ms(w->expires_ms, expires, sizeof(expires));
	if (w->last_update_ms)
		format_ms(w->last_update_ms, updated, sizeof(updated));
	/* Never the webhook secret or the validator: one is a credential,
	 * the other means nothing to a person. */
	printf("%s\t%s\t%s\t%s\t%s\t%u\t%u\t%u\t%s\t%s\t%s\t%s\n", w->xui,
	       tsv_field(w->request_id, rid, sizeof(rid)), w->adapter, store_watch_state_name(w->state),
	       w->hook_id[0] ? "webhook" : w->dialog_len ? "sip" : "poll", w->seq, w->failures, w->code, next, expires, updated,
	       w->reason[0] ? tsv_field(w->reason, reason, sizeof(reason)) : "-");
	return 0;
}

/* subscriptions [--user XUI] */
static int cmd_subscriptions(const struct conf *c, char **av, int n)
{
	const char *xui = NULL;
	struct store *st = NULL;
	struct store_read *rd = NULL;
	enum xdms_err err;

	if (n == 2 && !strcmp(av[0], "--user")) {
		xui = av[1];
	} else if (n) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	err = store_read_begin(st, &rd);
	if (!err)
		err = store_watch_list(rd, print_watch, (void *)xui);
	store_read_end(rd);
	store_close(st);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot list the subscriptions: %s\n", xdms_err_str(err));
		return EXIT_FAIL;
	}
	return 0;
}

#define ADAPTER_PREFIX "org.xdmsd.iwf-adapter/global/"
#define XSLT_PREFIX "org.xdmsd.iwf-xslt/global/"

static bool adapter_id_ok(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n < 100 &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* True when @arg names a transform built into xdmsd rather than a file. */
static bool is_builtin_xslt(const char *arg)
{
	const char *edata;
	size_t elen;

	xml_init();
	return !strchr(arg, '/') && access(arg, F_OK) != 0 && strstr(arg, ".xsl") && xml_file_find(arg, &edata, &elen);
}

/*
 * The stylesheet an adapter will use for @which ("import"/"export"): the
 * file's bytes @data (read by the caller before the store is opened, which
 * may switch user; checked by compiling it, then stored as ID-which.xsl), or,
 * with @data NULL, the name @arg of a transform built into xdmsd. Sets *name
 * (heap); returns an exit code.
 */
static int adapter_xslt(const struct conf *c, const char *id, const char *which, const char *arg, const char *data,
			size_t len, char **name)
{
	struct xml_xslt *x = NULL;
	char *why = NULL, *sel;
	int rc;

	*name = NULL;
	if (!data) {
		*name = xstrdup(arg);
		return 0;
	}
	if (xml_xslt_compile(data, len, &x, &why)) {
		fprintf(stderr, "xdmsctl: %s: %s\n", arg, why);
		free(why);
		return EXIT_FAIL;
	}
	xml_xslt_free(x);
	*name = xasprintf("%s-%s.xsl", id, which);
	sel = xasprintf(XSLT_PREFIX "%s", *name);
	rc = doc_write(c, sel, data, len, true);
	free(sel);
	if (rc) {
		free(*name);
		*name = NULL;
	}
	return rc;
}

/* NULL, or an http(s) URL that fits an adapter document as it is. */
static bool hook_url_ok(const char *u)
{
	if (!u || ((!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) && strlen(u) <= 2048 &&
		   !strpbrk(u, " \t\r\n\"<>&")))
		return true;
	fprintf(stderr, "xdmsctl: '%s' is not a usable http(s) URL\n", u);
	return false;
}

/* adapter add ID --kind KIND --url URL [--import-xslt F] [--export-xslt F] [--auth M] [--timeout S]
 *             [--plain-http-loopback B] */
static int cmd_adapter_add(const struct conf *c, const char *id, char **av, int n)
{
	const char *kind = NULL, *url = NULL, *ixslt = NULL, *exslt = NULL, *auth = NULL, *timeout = NULL;
	/* Optional elements written as given, in this order (iwf-adapter.xsd checks them). */
	static const char *const plain[] = { "format",		 "token-url",	    "client-id",  "scope",
					     "next-page-token",	 "page-token-param", "next-link",  "sync-token",
					     "sync-token-param", "delta-link",	     "max-pages",  "import-method",
					     "export-method", "book-create-url", "book-item-url", "book-delete-url",
					     "book-update-method", "book-id", "book-etag", "book-if-match" };
	const char *plain_value[sizeof(plain) / sizeof(plain[0])] = { NULL };
	const char *loopback = NULL;
	const char *poll = NULL, *watch = NULL, *hook_base = NULL, *hook_register = NULL, *sip_uri = NULL;
	const char *hook_style = NULL;
	char *iname = NULL, *ename = NULL, *expanded = NULL, *why = NULL, *sel = NULL, *idata = NULL, *edata = NULL;
	size_t ilen = 0, elen = 0;
	struct buf doc;
	int rc = EXIT_USAGE;

	if (n % 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = 0; i + 1 < n; i += 2) {
		const char **slot = !strcmp(av[i], "--kind")	    ? &kind :
				    !strcmp(av[i], "--url")	    ? &url :
				    !strcmp(av[i], "--import-xslt") ? &ixslt :
				    !strcmp(av[i], "--export-xslt") ? &exslt :
				    !strcmp(av[i], "--auth")	    ? &auth :
				    !strcmp(av[i], "--timeout")	    ? &timeout :
				    !strcmp(av[i], "--plain-http-loopback") ? &loopback :
				    !strcmp(av[i], "--poll-interval") ? &poll :
				    !strcmp(av[i], "--watch")	    ? &watch :
				    !strcmp(av[i], "--webhook-base") ? &hook_base :
				    !strcmp(av[i], "--webhook-register") ? &hook_register :
				    !strcmp(av[i], "--webhook-style") ? &hook_style :
				    !strcmp(av[i], "--sip-uri")	    ? &sip_uri :
								      NULL;

		for (size_t k = 0; !slot && k < sizeof(plain) / sizeof(plain[0]); k++)
			if (!strncmp(av[i], "--", 2) && !strcmp(av[i] + 2, plain[k]))
				slot = &plain_value[k];
		if (!slot) {
			fprintf(stderr, "xdmsctl: unknown option '%s' for adapter add\n", av[i]);
			return EXIT_USAGE;
		}
		*slot = av[i + 1];
	}
	if (!adapter_id_ok(id)) {
		fprintf(stderr, "xdmsctl: adapter id '%s' must be 1-99 characters of A-Z a-z 0-9 . _ -\n", id);
		return EXIT_USAGE;
	}
	if (!kind || (strcmp(kind, "xcap") != 0 && strcmp(kind, "http") != 0 && strcmp(kind, "carddav") != 0)) {
		fprintf(stderr, "xdmsctl: --kind must be xcap, http or carddav\n");
		return EXIT_USAGE;
	}
	if (loopback && strcmp(loopback, "true") && strcmp(loopback, "false")) {
		fprintf(stderr, "xdmsctl: --plain-http-loopback must be true or false\n");
		return EXIT_USAGE;
	}
	if (!url || iwf_url_expand(url, "remote-user", "sip:user@example.com", &expanded, &why)) {
		fprintf(stderr, "xdmsctl: --url: %s\n", why ? why : "an http:// or https:// URL is required");
		free(why);
		return EXIT_USAGE;
	}
	free(expanded);
	if (strlen(url) > 2048 || strpbrk(url, " \t\r\n\"<>")) {
		fprintf(stderr, "xdmsctl: --url: '%s' is not a usable URL (spaces, quotes, < or >)\n", url);
		return EXIT_USAGE;
	}
	if (auth && strcmp(auth, "none") && strcmp(auth, "basic") && strcmp(auth, "bearer") && strcmp(auth, "digest") &&
	    strcmp(auth, "oauth2")) {
		fprintf(stderr, "xdmsctl: --auth must be none, basic, bearer, digest or oauth2\n");
		return EXIT_USAGE;
	}
	if (auth && !strcmp(auth, "oauth2") && (!plain_value[1] || !plain_value[2])) {
		fprintf(stderr, "xdmsctl: --auth oauth2 needs --token-url and --client-id\n");
		return EXIT_USAGE;
	}
	if (timeout && (strspn(timeout, "0123456789") != strlen(timeout) || atoi(timeout) < 1 || atoi(timeout) > 600)) {
		fprintf(stderr, "xdmsctl: --timeout must be 1 to 600 seconds\n");
		return EXIT_USAGE;
	}
	if (poll && (strspn(poll, "0123456789") != strlen(poll) || atoi(poll) < 1 || atoi(poll) > 86400)) {
		fprintf(stderr, "xdmsctl: --poll-interval must be 1 to 86400 seconds\n");
		return EXIT_USAGE;
	}
	if (watch && strcmp(watch, "poll") && strcmp(watch, "webhook") && strcmp(watch, "both")) {
		fprintf(stderr, "xdmsctl: --watch must be poll, webhook or both\n");
		return EXIT_USAGE;
	}
	if (hook_style && strcmp(hook_style, "xdmsd") && strcmp(hook_style, "graph")) {
		fprintf(stderr, "xdmsctl: --webhook-style must be xdmsd or graph\n");
		return EXIT_USAGE;
	}
	if (watch && strcmp(watch, "poll") && (!hook_base || !hook_register)) {
		fprintf(stderr, "xdmsctl: --watch %s needs --webhook-base and --webhook-register\n", watch);
		return EXIT_USAGE;
	}
	if (!hook_url_ok(hook_base) || !hook_url_ok(hook_register))
		return EXIT_USAGE;
	if (sip_uri && (strcmp(kind, "xcap") != 0 || strncmp(sip_uri, "sip:", 4) != 0 || strlen(sip_uri) > 128 ||
			strpbrk(sip_uri, " \t\r\n\"<>&"))) {
		fprintf(stderr, "xdmsctl: --sip-uri is sip:IP:PORT[;transport=tcp], for an xcap adapter\n");
		return EXIT_USAGE;
	}
	if (!strcmp(kind, "http") && (!ixslt || !exslt)) {
		fprintf(stderr, "xdmsctl: an http adapter needs --import-xslt and --export-xslt\n");
		return EXIT_USAGE;
	}
	rc = EXIT_FAIL;
	/* Both files are read before the store is opened (see ctl_store_open). */
	if ((ixslt && !is_builtin_xslt(ixslt) && !(idata = read_file(ixslt, c->xcap_max_document, &ilen))) ||
	    (exslt && !is_builtin_xslt(exslt) && !(edata = read_file(exslt, c->xcap_max_document, &elen))))
		goto out;
	if ((ixslt && adapter_xslt(c, id, "import", ixslt, idata, ilen, &iname)) ||
	    (exslt && adapter_xslt(c, id, "export", exslt, edata, elen, &ename)))
		goto out;
	buf_init(&doc, 16384);
	if (buf_printf(&doc, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			     "<adapter xmlns=\"urn:xdmsd:xml:iwf-adapter\" kind=\"%s\">\n  <url>",
		       kind) ||
	    buf_append_xml_escaped(&doc, url, strlen(url)) || buf_append_str(&doc, "</url>\n") ||
	    (auth && buf_printf(&doc, "  <auth>%s</auth>\n", auth)) ||
	    (timeout && buf_printf(&doc, "  <timeout>%s</timeout>\n", timeout)) ||
	    (loopback && buf_printf(&doc, "  <plain-http-loopback>%s</plain-http-loopback>\n", loopback)) ||
	    (watch && buf_printf(&doc, "  <watch>%s</watch>\n", watch)) ||
	    (poll && buf_printf(&doc, "  <poll-interval>%s</poll-interval>\n", poll)) ||
	    (hook_base && buf_printf(&doc, "  <webhook-base>%s</webhook-base>\n", hook_base)) ||
	    (hook_register && buf_printf(&doc, "  <webhook-register>%s</webhook-register>\n", hook_register)) ||
	    (hook_style && buf_printf(&doc, "  <webhook-style>%s</webhook-style>\n", hook_style)) ||
	    (sip_uri && buf_printf(&doc, "  <sip-uri>%s</sip-uri>\n", sip_uri)) ||
	    (iname && buf_printf(&doc, "  <import-xslt>%s</import-xslt>\n", iname)) ||
	    (ename && buf_printf(&doc, "  <export-xslt>%s</export-xslt>\n", ename))) {
		buf_cleanup(&doc);
		goto out;
	}
	for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++)
		if (plain_value[k] &&
		    (buf_printf(&doc, "  <%s>", plain[k]) ||
		     buf_append_xml_escaped(&doc, plain_value[k], strlen(plain_value[k])) ||
		     buf_printf(&doc, "</%s>\n", plain[k]))) {
			buf_cleanup(&doc);
			goto out;
		}
	if (buf_append_str(&doc, "</adapter>\n")) {
		buf_cleanup(&doc);
		goto out;
	}
	sel = xasprintf(ADAPTER_PREFIX "%s", id);
	rc = doc_write(c, sel, doc.data, doc.len, false);
	buf_cleanup(&doc);
out:
	free(idata);
	free(edata);
	free(sel);
	free(iname);
	free(ename);
	return rc;
}

static int print_adapter(void *arg, const char *selector, const struct store_doc *doc)
{
	const char *kind = memmem(doc->data, doc->data_len, "kind=\"", 6);
	const char *url = memmem(doc->data, doc->data_len, "<url>", 5);
	const char *end = url ? memmem(url, doc->data_len - (size_t)(url - doc->data), "</url>", 6) : NULL;

	(void)arg;
	printf("%s\t%.*s\t%.*s\n", selector + strlen(ADAPTER_PREFIX), kind ? (int)strcspn(kind + 6, "\"") : 0,
	       kind ? kind + 6 : "", end ? (int)(end - url - 5) : 0, url ? url + 5 : "");
	return 0;
}

static int cmd_adapter_list(const struct conf *c)
{
	struct store *st = NULL;
	struct store_read *rd = NULL;
	enum xdms_err err;

	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	err = store_read_begin(st, &rd);
	if (!err)
		err = store_doc_list(rd, ADAPTER_PREFIX, print_adapter, NULL);
	store_read_end(rd);
	store_close(st);
	return err ? EXIT_FAIL : 0;
}

/* adapter test ID --user XUI --remote-user R [--username U] [--password P] */
static int cmd_adapter_test(const struct conf *c, const char *id, char **av, int n)
{
	const char *xui = NULL, *remote = NULL, *username = NULL, *password = NULL;
	struct iwf_options io;
	struct store *st = NULL;
	char *pcc = NULL, *why = NULL;
	unsigned code = 0;
	int rc = EXIT_FAIL;

	for (int i = 0; i < n; i += 2) {
		const char **slot = i + 1 >= n		       ? NULL :
				    !strcmp(av[i], "--user")	       ? &xui :
				    !strcmp(av[i], "--remote-user") ? &remote :
				    !strcmp(av[i], "--username")    ? &username :
				    !strcmp(av[i], "--password")    ? &password :
								      NULL;

		if (!slot) {
			usage(stderr);
			return EXIT_USAGE;
		}
		*slot = av[i + 1];
	}
	if (!xui) {
		fprintf(stderr, "xdmsctl: adapter test needs --user XUI\n");
		return EXIT_USAGE;
	}
	iwf_options_init(&io);
	io.timeout_s = c->iwf_timeout;
	io.max_attempts = c->iwf_max_attempts;
	io.max_response = c->iwf_max_response;
	io.concurrency = c->iwf_concurrency;
	io.ca_file = c->iwf_ca_file;
	xml_init();
	if (ctl_store_open(c, &st))
		return EXIT_FAIL;
	if (iwf_dry_import(&io, st, id, xui, remote, username, password, &pcc, &code, &why)) {
		fprintf(stderr, "xdmsctl: the import would fail with %u: %s\n", code, why);
	} else {
		fputs(pcc, stdout);
		if (pcc[0] && pcc[strlen(pcc) - 1] != '\n')
			fputc('\n', stdout);
		rc = 0;
	}
	free(pcc);
	free(why);
	store_close(st);
	return rc;
}

static int cmd_adapter(const struct conf *c, char **av, int n)
{
	char *sel;
	int rc;

	if (n == 1 && !strcmp(av[0], "list"))
		return cmd_adapter_list(c);
	if (n >= 2 && !strcmp(av[0], "add"))
		return cmd_adapter_add(c, av[1], av + 2, n - 2);
	if (n >= 2 && !strcmp(av[0], "test"))
		return cmd_adapter_test(c, av[1], av + 2, n - 2);
	if (n != 2 || (strcmp(av[0], "show") && strcmp(av[0], "del"))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!adapter_id_ok(av[1])) {
		fprintf(stderr, "xdmsctl: no adapter '%s'\n", av[1]);
		return EXIT_FAIL;
	}
	sel = xasprintf(ADAPTER_PREFIX "%s", av[1]);
	if (!strcmp(av[0], "show")) {
		rc = cmd_read(c, "doc", sel);
	} else {
		char *x;

		rc = doc_write(c, sel, NULL, 0, false);
		/* Its stored transforms go with it; a missing one is fine. */
		for (int i = 0; !rc && i < 2; i++) {
			x = xasprintf(XSLT_PREFIX "%s-%s.xsl", av[1], i ? "export" : "import");
			(void)doc_write(c, x, NULL, 0, true);
			free(x);
		}
	}
	free(sel);
	return rc;
}

/*
 * credential set XUI NAME (--username U --password P | --token T) | credential del XUI NAME;
 * with "--adapter ID" in place of "XUI NAME": the adapter's own credential.
 */
static int cmd_credential(const struct conf *c, char **av, int n)
{
	struct iwf_cred cred;
	struct store *st = NULL;
	uint8_t key[IWF_KEY_LEN];
	char *key_file, *why = NULL, *name, *owner;
	bool is_adapter, is_client;
	enum xdms_err err;
	int rc = EXIT_FAIL;

	memset(&cred, 0, sizeof(cred));
	if (n < 3 || (strcmp(av[0], "set") && strcmp(av[0], "del")) ||
	    (!strcmp(av[0], "del") && n != 3 && !(n == 4 && !strcmp(av[3], "--client-secret")))) {
		usage(stderr);
		return EXIT_USAGE;
	}
	/* "--adapter ID --client-secret [S]": the adapter's OAuth client secret. */
	is_client = n >= 4 && !strcmp(av[1], "--adapter") && !strcmp(av[3], "--client-secret");
	if (is_client && n != (strcmp(av[0], "set") ? 4 : 5)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (is_client && !strcmp(av[0], "set")) {
		if (strlen(av[4]) >= sizeof(cred.password)) {
			fprintf(stderr, "xdmsctl: the client secret is too long\n");
			return EXIT_USAGE;
		}
		strcpy(cred.password, av[4]);
	}
	for (int i = 3; !is_client && !strcmp(av[0], "set") && i < n; i += 2) {
		char *dst = i + 1 >= n			 ? NULL :
			    !strcmp(av[i], "--username") ? cred.username :
			    !strcmp(av[i], "--password") ? cred.password :
			    !strcmp(av[i], "--token")	 ? cred.token :
							   NULL;
		size_t cap = dst == cred.token ? sizeof(cred.token) : sizeof(cred.username);

		if (!dst || strlen(av[i + 1]) >= cap) {
			fprintf(stderr, "xdmsctl: credential set needs --username U --password P or --token T\n");
			return EXIT_USAGE;
		}
		strcpy(dst, av[i + 1]);
	}
	if (!is_client && !strcmp(av[0], "set") && !cred.token[0] && !cred.username[0]) {
		fprintf(stderr, "xdmsctl: credential set needs --username U --password P or --token T\n");
		return EXIT_USAGE;
	}
	key_file = c->iwf_key_file[0] ? xstrdup(c->iwf_key_file) : xasprintf("%s/iwf.key", c->store_path);
	is_adapter = !strcmp(av[1], "--adapter");
	owner = is_adapter ? xasprintf(IWF_ADAPTER_OWNER "%s", av[2]) : xstrdup(av[1]);
	name = is_client    ? xstrdup(IWF_OAUTH_CLIENT_SECRET) :
	       is_adapter ? xstrdup(IWF_ADAPTER_SECRET) :
			    xasprintf("ref:%s", av[2]);
	if (ctl_store_open(c, &st))
		goto out;
	if (!strcmp(av[0], "del")) {
		err = store_secret_del(st, owner, name);
	} else if ((err = iwf_key_load(key_file, key, &why)) == XDMS_ERR_OK) {
		err = iwf_cred_save(st, key, owner, name, &cred, true);
		memset(key, 0, sizeof(key));
	}
	if (err)
		fprintf(stderr, "xdmsctl: %s\n", why ? why : xdms_err_str(err));
	else
		rc = 0;
out:
	memset(&cred, 0, sizeof(cred));
	store_close(st);
	free(key_file);
	free(owner);
	free(name);
	free(why);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "data-dir", required_argument, NULL, 'd' },
		{ "set", required_argument, NULL, 's' },    { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },      { NULL, 0, NULL, 0 },
	};
	struct conf c;
	const char *config = NULL;
	char *why = NULL;
	char **sets = xcalloc((size_t)argc + 1, sizeof(char *));
	const char *data_dir = NULL;
	size_t set_count = 0;
	int opt, rc = EXIT_USAGE, n;
	char **av;

	conf_init(&c);
	/* "+" stops at the first command word, so its arguments are never options. */
	while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'd':
			data_dir = optarg;
			break;
		case 's':
			sets[set_count++] = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto out;
		case 'V':
			printf("xdmsctl %s\n", PACKAGE_VERSION);
			rc = 0;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (!config)
		config = conf_default_file();
	if (config && conf_load_file(&c, config, &why))
		goto bad_conf;
	if (data_dir && conf_set(&c, "store.path", data_dir, &why))
		goto bad_conf;
	for (size_t i = 0; i < set_count; i++)
		if (conf_set_arg(&c, sets[i], &why))
			goto bad_conf;
	av = argv + optind;
	n = argc - optind;
	/* backup and restore open their files on the other side first, then switch. */
	if (n == 2 && !strcmp(av[0], "backup")) {
		rc = ctl_backup(&c, av[1]);
		goto out;
	}
	if (n == 2 && !strcmp(av[0], "restore")) {
		rc = ctl_restore(&c, av[1]);
		goto out;
	}
	if (n >= 2 && !strcmp(av[0], "user")) {
		if (!strcmp(av[1], "add") && n == 4)
			rc = cmd_user_put(&c, av[2], av[3], true);
		else if (!strcmp(av[1], "passwd") && n == 4)
			rc = cmd_user_put(&c, av[2], av[3], false);
		else if (!strcmp(av[1], "del") && n == 3)
			rc = cmd_user_del(&c, av[2]);
		else if (!strcmp(av[1], "list") && n == 2)
			rc = cmd_read(&c, "users", NULL);
		else if (!strcmp(av[1], "export") && (n == 3 || n == 4))
			rc = ctl_user_export(&c, av[2], n == 4 ? av[3] : "-");
		else if (!strcmp(av[1], "import") && n == 3)
			rc = ctl_user_import(&c, av[2]);
		else if (!strcmp(av[1], "purge") && n == 3)
			rc = ctl_user_purge(&c, av[2]);
		else if (!strcmp(av[1], "thaw") && n == 3)
			rc = ctl_user_thaw(&c, av[2]);
		else
			usage(stderr);
	} else if (n >= 2 && !strcmp(av[0], "doc")) {
		if (!strcmp(av[1], "get") && n == 3)
			rc = cmd_read(&c, "doc", av[2]);
		else if (!strcmp(av[1], "put") && n == 4)
			rc = cmd_doc_write(&c, av[2], av[3]);
		else if (!strcmp(av[1], "del") && n == 3)
			rc = cmd_doc_write(&c, av[2], NULL);
		else if (!strcmp(av[1], "list") && (n == 2 || n == 3))
			rc = cmd_read(&c, "docs", n == 3 ? av[2] : NULL);
		else
			usage(stderr);
	} else if (n >= 1 && !strcmp(av[0], "jobs")) {
		rc = cmd_jobs(&c, av + 1, n - 1);
	} else if (n >= 1 && !strcmp(av[0], "subscriptions")) {
		rc = cmd_subscriptions(&c, av + 1, n - 1);
	} else if (n >= 2 && !strcmp(av[0], "credential")) {
		rc = cmd_credential(&c, av + 1, n - 1);
	} else if (n >= 2 && !strcmp(av[0], "adapter")) {
		rc = cmd_adapter(&c, av + 1, n - 1);
	} else if (n >= 1 && !strcmp(av[0], "global")) {
		rc = ctl_global(&c, av + 1, n - 1);
	} else if (n == 1 && !strcmp(av[0], "stats")) {
		rc = cmd_stats(&c);
	} else {
		usage(stderr);
	}
	goto out;
bad_conf:
	fprintf(stderr, "xdmsctl: %s\n", why);
	rc = EXIT_USAGE;
out:
	free(why);
	free(sets);
	conf_cleanup(&c);
	return rc;
}
