/* SPDX-License-Identifier: MIT */
/*
 * xdmsd: wires the modules together and waits for a signal. Start-up order is
 * configuration, XML and the registry of application usages (a broken
 * descriptor or schema stops the server before it listens), the store, the
 * XCAP service, the IWF's workers, then the HTTP listener. Shutdown reverses it: stop accepting,
 * let in-flight requests finish, drain the store's writer, close LMDB.
 *
 * SIGTERM, SIGINT and SIGHUP are blocked in every thread and taken by the main
 * thread with sigwait(), so no handler runs at an awkward moment. SIGHUP
 * reopens the access log (logrotate); SIGPIPE is ignored.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "base/service.h"
#include "conf/conf.h"
#include "http/http.h"
#include "notify/notifier.h"
#include "iwf/iwf.h"
#include "sip/sip.h"
#include "store/store.h"
#include "xcap/xcap.h"
#include "xml/xml.h"

#define SHUTDOWN_GRACE_MS 30000

/* /metrics gets the notifier's figures and the SIP layer's. The SIP server
 * stops before HTTP does, so it is withdrawn under `lock` first. */
struct sip_metrics_arg {
	pthread_mutex_t lock;
	struct notifier *notifier;
	struct sip_server *sip; /* NULL once stopping */
};

static enum xdms_err sip_metrics(void *arg, struct buf *out)
{
	struct sip_metrics_arg *m = arg;
	enum xdms_err err = notifier_metrics(m->notifier, out);

	pthread_mutex_lock(&m->lock);
	if (!err && m->sip)
		err = sip_server_metrics(m->sip, out);
	pthread_mutex_unlock(&m->lock);
	return err;
}
#define NOTIFY_GRACE_MS 2000 /* NOTIFYs in flight get this long to be answered at shutdown */

/* The IWF's webhook endpoint, as the HTTP server routes it. */
static unsigned iwf_hook_route(void *arg, const struct http_route_call *call, char **answer)
{
	bool is_post = !strcmp(call->method, "POST");

	if (!is_post && strcmp(call->method, "GET") != 0) {
		*answer = xstrdup("use POST (a notification) or GET (the validation handshake)\n");
		return 405;
	}
	return iwf_webhook(arg, is_post, call->rest, call->query, call->header, call->body, call->body_len, answer);
}

static void print_key(void *arg, const char *key, const char *value, const char *help)
{
	printf("  %-26s %s (default: %s)\n", key, help, value[0] ? value : "empty");
}

/*
 * --print-config: every key as an INI file, grouped by section, each with its
 * description. A key still at its embedded default is commented out, so the
 * file documents the defaults without pinning them; a key set on the command
 * line (or in the file read with -c) is written as a setting. Packaging builds
 * /etc/xdmsd/xdmsd.conf this way, so the file cannot miss a key.
 */
struct print_config {
	char **defaults; /* embedded default of each key, in table order */
	size_t count;
	size_t next;
	char section[32];
	bool is_failed;
};

static void collect_default(void *arg, const char *key, const char *value, const char *help)
{
	struct print_config *pc = arg;

	pc->defaults = xrealloc(pc->defaults, (pc->count + 1) * sizeof(char *));
	pc->defaults[pc->count++] = xstrdup(value);
}

/* True when inih reads "key = @value" back as @value: it strips white space
 * at both ends and cuts at ';' or '#' after white space. */
static bool ini_round_trips(const char *value)
{
	size_t n = strlen(value);

	if (n && (isspace((unsigned char)value[0]) || isspace((unsigned char)value[n - 1])))
		return false;
	for (size_t i = 1; i < n; i++)
		if ((value[i] == ';' || value[i] == '#') && isspace((unsigned char)value[i - 1]))
			return false;
	return !strpbrk(value, "\r\n");
}

/* "# " lines of at most 78 columns, cut at spaces: a line longer than
 * inih's limit would be read back as two (conf.c refuses it). */
static void print_comment(const char *text)
{
	const int width = 76;

	putchar('\n');
	while (*text) {
		int n = (int)strlen(text), cut = n;

		if (n > width) {
			for (cut = width; cut > 0 && text[cut] != ' '; cut--)
				;
			if (cut == 0) /* one word longer than the width */
				cut = (int)strcspn(text, " ");
		}
		printf("# %.*s\n", cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

static void print_config_key(void *arg, const char *key, const char *value, const char *help)
{
	struct print_config *pc = arg;

	if (!ini_round_trips(value) || strlen(key) + 3 + strlen(value) > INI_MAX_LINE - 2) {
		/* Printed, it would read back as another value (a secret cut
		 * short) or not at all (a line longer than inih reads): leave
		 * the key at its default and say why. */
		fprintf(stderr, "xdmsd: --print-config: the value of %s cannot be written in an INI file "
				"(white space at an end, ';' or '#' after white space, or a line over %d "
				"characters); set it with --set\n",
			key, INI_MAX_LINE - 2);
		pc->is_failed = true;
		pc->next++;
		return;
	}
	const char *dot = strchr(key, '.');
	size_t section_len = dot ? (size_t)(dot - key) : 0;
	bool is_default = pc->next < pc->count && !strcmp(pc->defaults[pc->next], value);

	pc->next++;
	if (section_len && (section_len >= sizeof(pc->section) || strncmp(pc->section, key, section_len) ||
			    pc->section[section_len])) {
		snprintf(pc->section, sizeof(pc->section), "%.*s", (int)section_len, key);
		printf("\n[%s]\n", pc->section);
	}
	print_comment(help);
	printf("%s%s =%s%s\n", is_default ? ";" : "", dot ? dot + 1 : key, value[0] ? " " : "", value);
}

static bool print_config(const struct conf *c)
{
	struct print_config pc = { 0 };
	struct conf d;

	conf_init(&d);
	conf_describe(&d, collect_default, &pc);
	conf_cleanup(&d);
	printf("# xdmsd %s configuration (INI). Every key is listed with its description;\n"
	       "# a line starting with ';' shows the embedded default. Remove the ';' and\n"
	       "# change the value to set a key. See xdmsd(8) and docs/configuration.md.\n",
	       PACKAGE_VERSION);
	conf_describe(c, print_config_key, &pc);
	for (size_t i = 0; i < pc.count; i++)
		free(pc.defaults[i]);
	free(pc.defaults);
	return !pc.is_failed;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: xdmsd [-c FILE] [--data-dir DIR] [--http ADDR:PORT] [--sip ADDR:PORT]\n"
		   "             [--set SECTION.KEY=VALUE]...\n"
		   "             [--print-config] [--help] [--version]\n"
		   "\n"
		   "XML Document Management Server (XCAP, RFC 4825) for OMA CAB deployments.\n"
		   "\n"
		   "  -c, --config FILE   read an INI configuration file ([section] key = value)\n"
		   "  --data-dir DIR      data directory (same as --set store.path=DIR)\n"
		   "  --http ADDR:PORT    XCAP listener (same as --set http.listen=ADDR:PORT; port 0 = any)\n"
		   "  --sip ADDR:PORT     SIP over UDP and TCP (same as --set sip.listen=ADDR:PORT; port 0 = any)\n"
		   "  --set KEY=VALUE     set any configuration key; applied after the file\n"
		   "  --print-config      print the configuration as an INI file (every key, with its\n"
		   "                      description; keys at their default commented out) and exit\n"
		   "  -h, --help          this help and the configuration keys\n"
		   "  -V, --version       the version\n");
}

static void usage_keys(void)
{
	struct conf c;

	conf_init(&c);
	printf("\nconfiguration keys:\n");
	conf_describe(&c, print_key, NULL);
	conf_cleanup(&c);
}

/* Reads the command line into @c. Returns 0 to go on, 1 to exit 0, 2 on error. */
static int parse_args(int argc, char **argv, struct conf *c)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "data-dir", required_argument, NULL, 'd' },
		{ "http", required_argument, NULL, 'H' },   { "set", required_argument, NULL, 's' },
		{ "sip", required_argument, NULL, 'S' },     { "print-config", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	bool is_print_config = false;
	char *why = NULL;
	int opt;

	/* First pass: the file, so that flags override it whatever their order. */
	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'h':
			usage(stdout);
			usage_keys();
			return 1;
		case 'V':
			printf("xdmsd %s\n", PACKAGE_VERSION);
			return 1;
		case 'P':
			is_print_config = true;
			break;
		case 'd':
		case 'H':
		case 'S':
		case 's':
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xdmsd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!config)
		config = conf_default_file();
	if (config && conf_load_file(c, config, &why)) {
		fprintf(stderr, "xdmsd: %s\n", why);
		free(why);
		return 2;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		enum xdms_err err = XDMS_ERR_OK;

		if (opt == 'd')
			err = conf_set(c, "store.path", optarg, &why);
		else if (opt == 'H')
			err = conf_set(c, "http.listen", optarg, &why);
		else if (opt == 'S')
			err = conf_set(c, "sip.listen", optarg, &why);
		else if (opt == 's')
			err = conf_set_arg(c, optarg, &why);
		if (err) {
			fprintf(stderr, "xdmsd: %s\n", why);
			free(why);
			return 2;
		}
	}
	if (is_print_config)
		return print_config(c) ? 1 : 2;
	return 0;
}

/* The start-up and shutdown sequence, in order, in one place: which module is
 * opened, started, stopped and closed before which is the point, so it is
 * kept as one function rather than split into steps that hide the order. */
int main(int argc, char **argv)
{
	struct conf c;
	struct xcap_registry *reg = NULL;
	struct store *st = NULL;
	struct store_lock *lock = NULL;
	struct xcap *x = NULL;
	struct http_server *srv = NULL;
	struct sip_server *sip = NULL;
	struct notifier *notifier = NULL;
	struct sip_metrics_arg metrics_arg = { PTHREAD_MUTEX_INITIALIZER, NULL, NULL };
	struct iwf *iwf = NULL;
	struct iwf_options io;
	char *key_file = NULL;
	struct store_options so;
	struct xcap_registry_options ro;
	struct xcap_options xo;
	enum log_level level;
	sigset_t signals;
	char *why = NULL;
	int rc = 1, sig = 0;
	enum xdms_err err;

	conf_init(&c);
	rc = parse_args(argc, argv, &c);
	if (rc) {
		conf_cleanup(&c);
		return rc == 1 ? 0 : 2;
	}
	rc = 1;
	if (log_level_parse(c.log_level, &level) != 0) {
		fprintf(stderr, "xdmsd: log.level: '%s' is not error, warn, info or debug\n", c.log_level);
		conf_cleanup(&c);
		return 2;
	}
	log_current_level = level;

	/* Before any thread exists, so every thread inherits the mask. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);

	xml_init();
	ro.descriptor_dir = c.xcap_descriptor_dir;
	ro.max_document = c.xcap_max_document;
	err = xcap_registry_create(&ro, &reg, &why);
	if (err) {
		log_error("application usages: %s", why);
		goto out;
	}
	/* One server per data directory: before anything else touches it. */
	err = store_lock_take(c.store_path, &lock, &why);
	if (err) {
		log_error("%s", why);
		goto out;
	}
	/* store_open() would only say "invalid argument" for these. */
	if (c.store_wal_size && c.store_wal_size < STORE_WAL_SIZE_MIN) {
		log_error("store.wal_size: %zu bytes is below %d (0 turns the write-ahead log off)",
			  c.store_wal_size, STORE_WAL_SIZE_MIN);
		goto out;
	}
	if (c.store_batch_max > STORE_BATCH_MAX_LIMIT) {
		log_error("store.batch_max: %u is above %u", c.store_batch_max, STORE_BATCH_MAX_LIMIT);
		goto out;
	}
	so.path = c.store_path;
	so.map_size = c.store_map_size;
	so.map_size_max = c.store_map_size_max;
	so.is_sync = c.store_sync;
	so.wal_size = c.store_wal_size;
	so.batch_max = c.store_batch_max;
	so.feed_retention_ms = (uint64_t)c.store_feed_retention * 1000;
	err = store_open(&so, &st);
	if (err) {
		log_error("store %s: %s", c.store_path, xdms_err_str(err));
		goto out;
	}
	xo.root_path = c.http_xcap_root;
	xo.root_uri = "";
	xo.max_depth = c.xcap_max_depth;
	xo.max_binary = c.xcap_max_icon;
	xo.is_type_lenient = c.xcap_lenient_content_type;
	xo.is_incremental = c.xcap_incremental_checks;
	xo.scan_cache = c.xcap_scan_cache;
	if (strncmp(c.http_xcap_root, "http://", 7) == 0 || strncmp(c.http_xcap_root, "https://", 8) == 0) {
		const char *p = strchr(strstr(c.http_xcap_root, "//") + 2, '/');

		xo.root_uri = c.http_xcap_root;
		xo.root_path = p ? p : "";
	}
	if (!strcmp(xo.root_path, "/"))
		xo.root_path = "";
	err = xcap_create(st, reg, &xo, &x);
	if (err) {
		log_error("xcap: %s", xdms_err_str(err));
		goto out;
	}
	/* --- IWF (iwf/): workers start before the listeners so that jobs left
	 * by a previous run are released before new requests arrive. --- */
	if (c.iwf_enabled) {
		iwf_options_init(&io);
		io.workers = c.iwf_workers;
		io.lease_s = c.iwf_lease;
		io.max_attempts = c.iwf_max_attempts;
		io.retry_delay_ms = c.iwf_retry_delay;
		io.timeout_s = c.iwf_timeout;
		io.max_response = c.iwf_max_response;
		io.concurrency = c.iwf_concurrency;
		io.is_ack_in_progress = c.iwf_ack_in_progress;
		io.job_retention_s = c.iwf_job_retention;
		io.identity = c.iwf_identity;
		io.root_path = xo.root_path;
		io.ca_file = c.iwf_ca_file;
		key_file = c.iwf_key_file[0] ? xstrdup(c.iwf_key_file) : xasprintf("%s/iwf.key", c.store_path);
		io.key_file = key_file;
		err = iwf_start(&io, st, x, &iwf);
		if (err) {
			log_error("iwf: %s (iwf.lease, iwf.max_attempts, iwf.timeout and iwf.concurrency must not be 0)",
				  xdms_err_str(err));
			goto out;
		}
	}
	/* --- end IWF --- */
	err = http_server_start(&c, st, x, &srv, &why);
	if (err) {
		log_error("http: %s", why);
		goto out;
	}
	if (iwf) {
		http_server_add_metrics(srv, iwf_metrics, iwf);
		http_server_add_route(srv, IWF_HOOK_PREFIX, IWF_HOOK_HEADER, IWF_HOOK_MAX_BODY, iwf_hook_route, iwf);
	}
	/* Tests and scripts read this exact line to learn the bound port. */
	fprintf(stderr, "listening http %s\n", http_server_address(srv));
	fflush(stderr);
	/* --- SIP (sip/) and the notifier (notify/): started after HTTP, stopped
	 * first. The notifier loads the stored subscriptions before SIP listens. --- */
	if (!c.sip_listen[0])
		store_set_feed_floor(st, UINT64_MAX); /* nobody reads the feed: age alone prunes it */
	if (c.sip_listen[0]) {
		char *root_uri;

		if (xo.root_uri[0])
			root_uri = xasprintf("%s%s", xo.root_uri,
					     xo.root_uri[strlen(xo.root_uri) - 1] == '/' ? "" : "/");
		else
			root_uri = xasprintf("http://%s%s/", http_server_address(srv), xo.root_path);
		err = notifier_create(&c, st, reg, root_uri, xo.root_path, &notifier, &why);
		free(root_uri);
		if (err) {
			log_error("notify: %s", why);
			goto out;
		}
		err = sip_server_start(&c, notifier_on_subscribe, notifier, &sip, &why);
		if (err) {
			log_error("sip: %s", why);
			goto out;
		}
		err = notifier_start(notifier, sip);
		if (err) {
			log_error("notify: cannot start: %s", xdms_err_str(err));
			goto out;
		}
		/* The IWF's watches of other XDMSs subscribe over this SIP stack. */
		if (iwf) {
			struct sip_subscriber *subscriber = NULL;

			err = sip_subscriber_create(sip, NULL, &subscriber);
			if (err) {
				log_error("sip: the subscriber cannot start: %s", xdms_err_str(err));
				goto out;
			}
			iwf_sip_attach(iwf, subscriber);
		}
		metrics_arg.notifier = notifier;
		metrics_arg.sip = sip;
		http_server_add_metrics(srv, sip_metrics, &metrics_arg);
		/* Tests and scripts read these exact lines to learn the port. */
		fprintf(stderr, "listening sip udp %s\n", sip_server_udp_address(sip));
		fprintf(stderr, "listening sip tcp %s\n", sip_server_tcp_address(sip));
		fflush(stderr);
	}
	/* --- end SIP --- */
	log_info("xdmsd %s serving %u application usages from %s, XCAP root %s", PACKAGE_VERSION,
		 (unsigned)xcap_registry_count(reg), c.store_path, c.http_xcap_root);
	/* Every listener is bound and the IWF runs: tell a Type=notify service manager. */
	(void)service_notify("READY=1");

	for (;;) {
		if (sigwait(&signals, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: reopening the access log");
			(void)service_notify("RELOADING=1");
			http_server_reopen_logs(srv);
			(void)service_notify("READY=1");
			continue;
		}
		break;
	}
	log_info("signal %d: shutting down", sig);
	(void)service_notify("STOPPING=1");
	rc = 0;
out:
	/* SIP first, before the modules it uses: answers in flight, then the loop,
	 * then the subscriptions' progress. */
	notifier_quiesce(notifier, NOTIFY_GRACE_MS);
	pthread_mutex_lock(&metrics_arg.lock);
	metrics_arg.sip = NULL;
	pthread_mutex_unlock(&metrics_arg.lock);
	if (sip)
		iwf_sip_detach(iwf); /* before the SIP server it subscribes through */
	sip_server_stop(sip);
	http_server_stop(srv, SHUTDOWN_GRACE_MS);
	iwf_stop(iwf); /* IWF (iwf/): after the listeners, before the modules it writes through */
	notifier_destroy(notifier); /* after HTTP: /metrics reads its counters */
	xcap_destroy(x);
	store_close(st);
	store_lock_release(lock);
	xcap_registry_destroy(reg);
	xml_shutdown();
	free(key_file);
	free(why);
	conf_cleanup(&c);
	return rc;
}
