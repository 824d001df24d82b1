/* SPDX-License-Identifier: MIT */
/*
 * ctl/shard.c: global documents on every shard (DESIGN.md §6).
 *
 * Every shard's xdmsd keeps its own copy of the global documents (adapters,
 * XSLTs, other global/ trees) so that the IWF of any shard finds them. There
 * is no replication between shards: the admin tool writes the document to
 * each shard with an ordinary XCAP PUT (or DELETE), one shard after the
 * other, and says which shard took it and which did not. A write is
 * idempotent, so running the command again after a failed shard is back
 * brings it level; nothing is rolled back on the shards that took it.
 *
 * The requests are plain libcurl easy handles on the calling thread, one
 * connection per shard, with a fixed timeout. Only the first bytes of an
 * error answer are kept, for the report.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/mem.h"
#include "ctl/ctl.h"
#include "store/store.h"
#include "xcap/xcap.h"
#include "xml/xml.h"

#define SHARDS_MAX 64
#define SHARD_URL_MAX 2048
#define ANSWER_MAX 2048     /* bytes of an answer kept for the report */
#define REQUEST_TIMEOUT_S 20L

struct global_opts {
	const char *shards[SHARDS_MAX];
	unsigned shard_count;
	const char *identity; /* X-3GPP-Asserted-Identity, or NULL */
	const char *userpwd;  /* NAME:PASSWORD for Digest, or NULL */
};

/* One document to write everywhere; data NULL means DELETE. */
struct global_doc {
	const char *selector;
	const char *content_type;
	const char *data;
	size_t data_len;
};

struct answer {
	struct buf body;
	char etag[STORE_ETAG_MAX + 2];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n, room = ANSWER_MAX - a->body.len;

	/* Keep the start of the answer; the rest is read and dropped. */
	if (room && buf_append(&a->body, p, len < room ? len : room))
		return 0;
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = size * n;

	if (len > 5 && !strncasecmp(p, "ETag:", 5)) {
		const char *v = p + 5;
		size_t vlen = len - 5;

		while (vlen && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
			vlen--;
		if (vlen < sizeof(a->etag)) {
			memcpy(a->etag, v, vlen);
			a->etag[vlen] = '\0';
		}
	}
	return len;
}

/* Appends @s percent-encoded, keeping "/" and the characters a XUI or path
 * segment may carry unencoded (RFC 3986 pchar). */
static enum xdms_err append_path(struct buf *b, const char *s)
{
	static const char keep[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				   "-._~!$&'()*+,;=:@/";
	enum xdms_err err = XDMS_ERR_OK;

	for (; *s && !err; s++)
		err = strchr(keep, *s) ? buf_append(b, s, 1) : buf_printf(b, "%%%02X", (unsigned char)*s);
	return err;
}

/*
 * Writes @d to the shard at @root; prints one report line. Returns true when
 * the shard took the write (2xx, or 404 for a DELETE of a document it does
 * not have).
 */
static bool write_one(const struct global_opts *o, const char *root, const struct global_doc *d)
{
	struct curl_slist *hdrs = NULL;
	struct answer a;
	struct buf url;
	char hdr[STORE_XUI_MAX + 64], errbuf[CURL_ERROR_SIZE] = "";
	CURL *h = curl_easy_init();
	long status = 0;
	bool is_ok = false;
	CURLcode cc;

	memset(&a, 0, sizeof(a));
	buf_init(&a.body, ANSWER_MAX + 1);
	buf_init(&url, SHARD_URL_MAX + STORE_SELECTOR_MAX * 3 + 2);
	if (!h || buf_append_str(&url, root) ||
	    (url.len && url.data[url.len - 1] != '/' && buf_append_str(&url, "/")) ||
	    append_path(&url, d->selector) || buf_append(&url, "", 1)) {
		printf("%s\t%s\tFAILED\tcannot build the request\n", root, d->selector);
		goto out;
	}
	if (d->data) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", d->content_type);
		hdrs = curl_slist_append(hdrs, hdr);
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, d->data);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->data_len);
	} else {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	if (o->identity) {
		snprintf(hdr, sizeof(hdr), "X-3GPP-Asserted-Identity: \"%s\"", o->identity);
		hdrs = curl_slist_append(hdrs, hdr);
	}
	/* No "Expect: 100-continue" round trip for a small body. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (o->userpwd) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
		curl_easy_setopt(h, CURLOPT_USERPWD, o->userpwd);
	}
	curl_easy_setopt(h, CURLOPT_URL, url.data);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &a);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(h);
	if (cc) {
		printf("%s\t%s\tFAILED\t%s\n", root, d->selector, errbuf[0] ? errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	is_ok = (status >= 200 && status < 300) || (!d->data && status == 404);
	if (is_ok) {
		printf("%s\t%s\t%ld\t%s\n", root, d->selector, status, a.etag[0] ? a.etag : "-");
	} else {
		/* The answer's first line says why (an <xcap-error>, a proxy's 503). */
		for (size_t i = 0; i < a.body.len; i++)
			if (a.body.data[i] == '\n' || a.body.data[i] == '\r' || a.body.data[i] == '\t')
				a.body.data[i] = ' ';
		printf("%s\t%s\tFAILED\t%ld %.*s\n", root, d->selector, status, (int)(a.body.len > 300 ? 300 : a.body.len),
		       a.body.data ? a.body.data : "");
	}
out:
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	buf_cleanup(&url);
	buf_cleanup(&a.body);
	return is_ok;
}

/* Writes @d to every shard; returns how many did not take it. */
static unsigned write_all(const struct global_opts *o, const struct global_doc *d)
{
	unsigned failed = 0;

	for (unsigned i = 0; i < o->shard_count; i++)
		if (!write_one(o, o->shards[i], d))
			failed++;
	return failed;
}

static bool is_global_selector(const char *sel)
{
	const char *slash = strchr(sel, '/');

	return slash && slash != sel && !strncmp(slash + 1, "global/", 7) && slash[8] != '\0';
}

static char *slurp(const char *path, size_t max, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	struct buf b;
	char chunk[16384];
	size_t n;
	bool is_big = false;

	if (!f) {
		fprintf(stderr, "xdmsctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, max);
	while (!is_big && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		is_big = buf_append(&b, chunk, n) != XDMS_ERR_OK;
	if (f != stdin)
		fclose(f);
	if (is_big) {
		fprintf(stderr, "xdmsctl: %s is larger than %zu bytes\n", path, max);
		buf_cleanup(&b);
		return NULL;
	}
	return buf_take(&b, len);
}

/* Parses the options after the command's own words; returns 0 or an exit code. */
static int parse_opts(char **av, int n, struct global_opts *o)
{
	for (int i = 0; i < n; i += 2) {
		if (i + 1 >= n) {
			fprintf(stderr, "xdmsctl: %s needs a value\n", av[i]);
			return CTL_EXIT_USAGE;
		}
		if (!strcmp(av[i], "--shard")) {
			if (o->shard_count == SHARDS_MAX) {
				fprintf(stderr, "xdmsctl: at most %d --shard\n", SHARDS_MAX);
				return CTL_EXIT_USAGE;
			}
			if (strncmp(av[i + 1], "http://", 7) && strncmp(av[i + 1], "https://", 8)) {
				fprintf(stderr, "xdmsctl: --shard '%s' is not an http:// or https:// URL\n", av[i + 1]);
				return CTL_EXIT_USAGE;
			}
			if (strlen(av[i + 1]) > SHARD_URL_MAX || strpbrk(av[i + 1], " \t\r\n")) {
				fprintf(stderr, "xdmsctl: --shard '%.60s...' is not a usable URL\n", av[i + 1]);
				return CTL_EXIT_USAGE;
			}
			o->shards[o->shard_count++] = av[i + 1];
		} else if (!strcmp(av[i], "--identity")) {
			if (strlen(av[i + 1]) >= STORE_XUI_MAX || strpbrk(av[i + 1], "\"\r\n")) {
				fprintf(stderr, "xdmsctl: --identity: not a usable identity\n");
				return CTL_EXIT_USAGE;
			}
			o->identity = av[i + 1];
		} else if (!strcmp(av[i], "--user")) {
			if (!strchr(av[i + 1], ':')) {
				fprintf(stderr, "xdmsctl: --user takes NAME:PASSWORD\n");
				return CTL_EXIT_USAGE;
			}
			o->userpwd = av[i + 1];
		} else {
			fprintf(stderr, "xdmsctl: unknown option '%s' for global\n", av[i]);
			return CTL_EXIT_USAGE;
		}
	}
	if (!o->shard_count) {
		fprintf(stderr, "xdmsctl: global needs at least one --shard URL\n");
		return CTL_EXIT_USAGE;
	}
	return 0;
}

struct push_list {
	const char *prefix;
	char **selectors;
	size_t count, cap;
};

static int collect_global(void *arg, const char *selector, const struct store_doc *doc)
{
	struct push_list *l = arg;

	(void)doc;
	if (!is_global_selector(selector) || strncmp(selector, l->prefix, strlen(l->prefix)))
		return 0;
	if (l->count == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->selectors = xrealloc(l->selectors, l->cap * sizeof(char *));
	}
	l->selectors[l->count++] = xstrdup(selector);
	return 0;
}

/* Pushes every global document under @prefix of the local store. */
static int push(const struct conf *c, const struct xcap_registry *reg, const struct global_opts *o,
		const char *prefix)
{
	struct push_list l = { .prefix = prefix };
	struct store *st = NULL;
	struct store_read *rd = NULL;
	unsigned failed = 0;
	enum xdms_err err;
	int rc = CTL_EXIT_FAIL;

	if (ctl_store_open(c, &st))
		goto out;
	err = store_read_begin(st, &rd);
	/* Only the global trees are walked, never the users' documents. */
	for (size_t i = 0; !err && i < xcap_registry_count(reg); i++) {
		const struct xcap_auid *a = xcap_registry_at(reg, i);
		char *tree;

		if (!(a->scope & XCAP_SCOPE_GLOBAL) || a->is_generated)
			continue;
		tree = xasprintf("%s/global/", a->name);
		err = store_doc_list(rd, tree, collect_global, &l);
		free(tree);
	}
	if (err) {
		fprintf(stderr, "xdmsctl: cannot read the store at %s: %s\n", c->store_path, xdms_err_str(err));
		goto out;
	}
	for (size_t i = 0; i < l.count; i++) {
		struct store_doc doc;
		struct global_doc d = { .selector = l.selectors[i] };
		char *auid = xstrndup(d.selector, strcspn(d.selector, "/"));
		const struct xcap_auid *a = xcap_registry_find(reg, auid);

		free(auid);
		if (!a || store_doc_get(rd, d.selector, &doc)) {
			printf("-\t%s\tFAILED\tnot readable here (unknown AUID?)\n", d.selector);
			failed++;
			continue;
		}
		d.content_type = a->mime;
		d.data = doc.data;
		d.data_len = doc.data_len;
		failed += write_all(o, &d);
	}
	printf("%zu document(s) to %u shard(s): %u write(s) failed\n", l.count, o->shard_count, failed);
	rc = failed ? CTL_EXIT_FAIL : 0;
out:
	store_read_end(rd);
	store_close(st);
	for (size_t i = 0; i < l.count; i++)
		free(l.selectors[i]);
	free(l.selectors);
	return rc;
}

int ctl_global(const struct conf *c, char **av, int n)
{
	struct xcap_registry_options ro = { .descriptor_dir = c->xcap_descriptor_dir,
					    .max_document = c->xcap_max_document };
	struct global_opts o;
	struct xcap_registry *reg = NULL;
	struct global_doc d;
	char *why = NULL, *data = NULL, *auid = NULL;
	const char *prefix = "";
	int words, rc;
	unsigned failed;

	memset(&o, 0, sizeof(o));
	memset(&d, 0, sizeof(d));
	if (n >= 3 && !strcmp(av[0], "put"))
		words = 3;
	else if (n >= 2 && !strcmp(av[0], "del"))
		words = 2;
	else if (n >= 1 && !strcmp(av[0], "push"))
		words = n >= 2 && strncmp(av[1], "--", 2) ? 2 : 1;
	else {
		fprintf(stderr, "xdmsctl: global put SELECTOR FILE | del SELECTOR | push [PREFIX], with --shard URL...\n");
		return CTL_EXIT_USAGE;
	}
	rc = parse_opts(av + words, n - words, &o);
	if (rc)
		return rc;
	if (words == 2 && !strcmp(av[0], "push"))
		prefix = av[1];
	if (strcmp(av[0], "push") && !is_global_selector(av[1])) {
		fprintf(stderr, "xdmsctl: '%s' is not a global document selector (AUID/global/path)\n", av[1]);
		return CTL_EXIT_USAGE;
	}
	xml_init();
	if (xcap_registry_create(&ro, &reg, &why)) {
		fprintf(stderr, "xdmsctl: application usages: %s\n", why);
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "xdmsctl: cannot initialise libcurl\n");
		rc = CTL_EXIT_FAIL;
		goto out;
	}
	if (!strcmp(av[0], "push")) {
		rc = push(c, reg, &o, prefix);
		goto out;
	}
	auid = xstrndup(av[1], strcspn(av[1], "/"));
	if (!xcap_registry_find(reg, auid)) {
		fprintf(stderr, "xdmsctl: no application usage '%s'\n", auid);
		rc = CTL_EXIT_USAGE;
		goto out;
	}
	d.selector = av[1];
	d.content_type = xcap_registry_find(reg, auid)->mime;
	if (!strcmp(av[0], "put")) {
		data = slurp(av[2], c->xcap_max_document, &d.data_len);
		if (!data) {
			rc = CTL_EXIT_FAIL;
			goto out;
		}
		d.data = data;
	}
	failed = write_all(&o, &d);
	printf("%u of %u shard(s) took the write\n", o.shard_count - failed, o.shard_count);
	rc = failed ? CTL_EXIT_FAIL : 0;
out:
	free(auid);
	free(data);
	free(why);
	xcap_registry_destroy(reg);
	return rc;
}
