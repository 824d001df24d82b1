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

#include "base/buf.h"
#include "base/mem.h"
#include "conf/conf.h"
#include "auth/digest.h"
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
		   "  doc get SELECTOR          print a document (AUID/users/XUI/path or AUID/global/path)\n"
		   "  doc put SELECTOR FILE     store a document after XCAP validation, as admin\n"
		   "  doc del SELECTOR          delete a document\n"
		   "  doc list [PREFIX]         list document selectors with ETag and size\n"
		   "  stats                     store figures\n"
		   "  --version                 the version\n");
}

static enum xdms_err open_store(const struct conf *c, struct store **st)
{
	struct store_options so = {
		.path = c->store_path,
		.map_size = c->store_map_size,
		.map_size_max = c->store_map_size_max,
		.is_sync = c->store_sync,
		.batch_max = c->store_batch_max,
	};
	enum xdms_err err = store_open(&so, st);

	if (err)
		fprintf(stderr, "xdmsctl: cannot open the store at %s: %s\n", c->store_path, xdms_err_str(err));
	return err;
}

static int cmd_user_put(const struct conf *c, const char *xui, const char *password, bool is_create)
{
	struct store *st = NULL;
	struct store_user u;
	char domain[STORE_REALM_MAX];
	struct timeval tv;
	char line[1024];
	enum xdms_err err;

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
	/* The XUI's own domain is the realm for its documents; the default realm
	 * serves global documents and tel: users. */
	if (domain[0])
		digest_credentials_fill(&u.realms[u.realm_count++], domain, u.username, xui, password);
	if (!domain[0] || strcmp(domain, c->auth_realm) != 0)
		digest_credentials_fill(&u.realms[u.realm_count++], c->auth_realm, u.username, xui, password);
	if (open_store(c, &st))
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
			store_close(st);
			return EXIT_FAIL;
		}
		u.created_ms = old.created_ms;
	}
	err = store_user_put(st, &u, is_create);
	if (err == XDMS_ERR_CONFLICT && u.realm_count == 2 && !u.realms[1].is_xui_only) {
		/* Another domain's user has this user part in the default realm
		 * (sip:alice@a and sip:alice@b): there, only the full XUI works. */
		u.realms[1].is_xui_only = true;
		err = store_user_put(st, &u, is_create);
		if (!err)
			fprintf(stderr,
				"xdmsctl: note: '%s' is taken in realm %s by another user; %s logs in there "
				"(global documents) with its full XUI\n",
				u.username, u.realms[1].realm, xui);
	}
	explicit_bzero(&u, sizeof(u));
	store_close(st);
	if (err == XDMS_ERR_EXISTS) {
		fprintf(stderr, "xdmsctl: user %s exists already\n", xui);
		return EXIT_FAIL;
	}
	if (err) {
		fprintf(stderr, "xdmsctl: cannot store user %s: %s\n", xui, xdms_err_str(err));
		return EXIT_FAIL;
	}
	return 0;
}

static int cmd_user_del(const struct conf *c, const char *xui)
{
	struct store *st = NULL;
	enum xdms_err err;

	if (open_store(c, &st))
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

	if (open_store(c, &st))
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
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	struct buf b;
	char chunk[65536];
	size_t n;

	if (!f) {
		fprintf(stderr, "xdmsctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf_init(&b, max);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, n)) {
			fprintf(stderr, "xdmsctl: %s is larger than %zu bytes\n", path, max);
			buf_cleanup(&b);
			if (f != stdin)
				fclose(f);
			return NULL;
		}
	}
	if (f != stdin)
		fclose(f);
	return buf_take(&b, len);
}

/* doc put / doc del: the XCAP write path, as an administrator. */
static int cmd_doc_write(const struct conf *c, const char *selector, const char *file)
{
	struct xcap_registry_options ro = { .descriptor_dir = c->xcap_descriptor_dir,
					    .max_document = c->xcap_max_document };
	struct xcap_options xo = { .root_path = "", .root_uri = "", .max_depth = c->xcap_max_depth,
				   .max_binary = c->xcap_max_icon };
	struct xcap_identity who = { .id = "xdmsctl", .role = XCAP_ROLE_ADMIN };
	struct xcap_registry *reg = NULL;
	struct store *st = NULL;
	struct xcap *x = NULL;
	struct xcap_uri uri;
	struct xcap_request req;
	struct xcap_response resp;
	struct xcap_write *w;
	char *path = xasprintf("/%s", selector), *body = NULL, *why = NULL;
	size_t body_len = 0;
	int rc = EXIT_FAIL;

	memset(&uri, 0, sizeof(uri));
	xcap_response_init(&resp);
	if (xcap_uri_parse("", path, NULL, &uri) || uri.node_selector) {
		fprintf(stderr, "xdmsctl: '%s' is not a document selector (AUID/users/XUI/path or AUID/global/path)\n",
			selector);
		rc = EXIT_USAGE;
		goto out;
	}
	if (file) {
		body = read_file(file, c->http_max_body, &body_len);
		if (!body)
			goto out;
	}
	xml_init();
	if (xcap_registry_create(&ro, &reg, &why)) {
		fprintf(stderr, "xdmsctl: application usages: %s\n", why);
		goto out;
	}
	if (open_store(c, &st) || xcap_create(st, reg, &xo, &x))
		goto out;
	memset(&req, 0, sizeof(req));
	req.method = file ? XCAP_METHOD_PUT : XCAP_METHOD_DELETE;
	req.uri = &uri;
	req.body = body;
	req.body_len = body_len;
	req.who = &who;
	req.base_url = "";
	if (file) {
		const struct xcap_auid *a = xcap_registry_find(reg, uri.auid);

		req.content_type = a ? a->mime : NULL;
	}
	w = xcap_write_prepare(x, &req, &resp);
	if (w) {
		xcap_write_run(x, w);
		xcap_write_finish(w, &resp);
	}
	if (resp.status == 200 || resp.status == 201) {
		if (resp.etag[0])
			printf("%s \"%s\"\n", resp.status == 201 ? "created" : "replaced", resp.etag);
		else
			printf("deleted\n");
		rc = 0;
	} else {
		fprintf(stderr, "xdmsctl: refused with %u: %.*s\n", resp.status, (int)resp.body.len,
			resp.body.data ? resp.body.data : "");
	}
out:
	xcap_response_cleanup(&resp);
	xcap_destroy(x);
	store_close(st);
	xcap_registry_destroy(reg);
	xcap_uri_cleanup(&uri);
	free(path);
	free(body);
	free(why);
	return rc;
}

static int cmd_stats(const struct conf *c)
{
	struct store *st = NULL;
	struct store_stats s;

	if (open_store(c, &st))
		return EXIT_FAIL;
	if (store_stats_get(st, &s)) {
		fprintf(stderr, "xdmsctl: cannot read the store's statistics\n");
		store_close(st);
		return EXIT_FAIL;
	}
	printf("documents %llu\nusers %llu\nchange_seq %llu\nmap_size_bytes %llu\nused_bytes %llu\n",
	       (unsigned long long)s.doc_count, (unsigned long long)s.user_count, (unsigned long long)s.last_seq,
	       (unsigned long long)s.map_size, (unsigned long long)s.used_bytes);
	store_close(st);
	return 0;
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
	if (config && conf_load_file(&c, config, &why))
		goto bad_conf;
	if (data_dir && conf_set(&c, "store.path", data_dir, &why))
		goto bad_conf;
	for (size_t i = 0; i < set_count; i++)
		if (conf_set_arg(&c, sets[i], &why))
			goto bad_conf;
	av = argv + optind;
	n = argc - optind;
	if (n >= 2 && !strcmp(av[0], "user")) {
		if (!strcmp(av[1], "add") && n == 4)
			rc = cmd_user_put(&c, av[2], av[3], true);
		else if (!strcmp(av[1], "passwd") && n == 4)
			rc = cmd_user_put(&c, av[2], av[3], false);
		else if (!strcmp(av[1], "del") && n == 3)
			rc = cmd_user_del(&c, av[2]);
		else if (!strcmp(av[1], "list") && n == 2)
			rc = cmd_read(&c, "users", NULL);
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
