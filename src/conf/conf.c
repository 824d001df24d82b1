/* SPDX-License-Identifier: MIT */
/*
 * Configuration. CONF_KEYS lists every key once with its type, the field it
 * fills, its embedded default and a one-line description; defaults, the INI
 * reader (inih), --set and conf_describe() all walk that one table, so a key
 * cannot exist in one place and be missing in another. Values are validated
 * as they are set and the error says which key and why.
 */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/mem.h"
#include "conf/conf.h"

enum conf_type { CONF_STR, CONF_BOOL, CONF_UINT, CONF_SIZE, CONF_LIST };

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *def;
	const char *help;
};

#define KEY(name, type, field, def, help) { name, type, offsetof(struct conf, field), def, help }

static const struct conf_key conf_keys[] = {
	KEY("http.listen", CONF_STR, http_listen, "127.0.0.1:8080",
	    "address and port of the XCAP listener (port 0 = ephemeral)"),
	KEY("http.xcap_root", CONF_STR, http_xcap_root, "/xcap-root",
	    "XCAP root: a path, or an absolute http(s) URI whose path is used"),
	KEY("http.threads", CONF_UINT, http_threads, "0", "HTTP worker threads (0 = one per core)"),
	KEY("http.max_body", CONF_SIZE, http_max_body, "4194304",
	    "largest request body in bytes; larger bodies get 413"),
	KEY("http.max_header", CONF_SIZE, http_max_header, "16384",
	    "memory per connection for the request line and headers"),
	KEY("http.max_connections", CONF_UINT, http_max_connections, "10000",
	    "most simultaneous HTTP connections"),
	KEY("http.timeout", CONF_UINT, http_timeout, "60", "idle connection timeout in seconds"),
	KEY("http.head_timeout", CONF_UINT, http_head_timeout, "10",
	    "seconds a new connection has to send a complete request head; later: 408 and close (plain HTTP)"),
	KEY("http.max_per_address", CONF_UINT, http_max_per_address, "64",
	    "simultaneous HTTP connections from one client address; more get 503 (0 = no cap; "
	    "auth.trusted_peers are exempt)"),
	KEY("http.min_body_rate", CONF_SIZE, http_min_body_rate, "1024",
	    "bytes per second a request body must average once it has taken longer than http.head_timeout; "
	    "slower: 408 and close (0 = no minimum)"),
	KEY("http.tls_cert", CONF_STR, http_tls_cert, "", "PEM certificate file; enables HTTPS with tls_key"),
	KEY("http.tls_key", CONF_STR, http_tls_key, "", "PEM private key file"),
	KEY("http.tls_session_tickets", CONF_BOOL, http_tls_session_tickets, "true",
	    "issue TLS session tickets, so that reconnecting clients resume without a full handshake "
	    "(see http.tls_ticket_key_file)"),
	KEY("http.tls_ticket_key_file", CONF_STR, http_tls_ticket_key_file, "",
	    "64-byte master key of the session tickets, created (mode 0600) if missing, so that tickets "
	    "outlive restarts and instances sharing the file accept each other's (empty = a new key in "
	    "memory at every start: a restart voids every ticket)"),
	KEY("auth.realm", CONF_STR, auth_realm, "",
	    "Digest realm of global documents and tel: users (empty = the domain of the first user "
	    "provisioned, recorded in the store; \"xdms\" for stores provisioned before it was recorded)"),
	KEY("auth.trusted_peers", CONF_LIST, auth_trusted_peers, "",
	    "IP addresses whose X-3GPP-Asserted-Identity (or X-XCAP-Asserted-Identity) is trusted"),
	KEY("auth.server_identities", CONF_LIST, auth_server_identities, "",
	    "identities with trusted-server rights over every user's documents"),
	KEY("auth.admin_identities", CONF_LIST, auth_admin_identities, "",
	    "administrators: may write global documents and every user's documents"),
	KEY("auth.digest_algorithms", CONF_LIST, auth_digest_algorithms, "MD5,SHA-256",
	    "Digest algorithms offered, one challenge each, in this order (clients that read only the "
	    "first challenge, such as Python's urllib and many phones, need MD5 first)"),
	KEY("auth.allow_basic", CONF_BOOL, auth_allow_basic, "false",
	    "accept Basic authentication over plain HTTP (always accepted over TLS)"),
	KEY("auth.nonce_timeout", CONF_UINT, auth_nonce_timeout, "300",
	    "seconds a Digest nonce may be reused (0 means 300)"),
	KEY("auth.secret", CONF_STR, auth_secret, "",
	    "key for Digest nonces; random per process when empty"),
	KEY("store.path", CONF_STR, store_path, "./var/xdmsd", "data directory (LMDB environment)"),
	KEY("store.map_size", CONF_SIZE, store_map_size, "1073741824", "LMDB map size in bytes at open (a larger size the store already has wins)"),
	KEY("store.map_size_max", CONF_SIZE, store_map_size_max, "68719476736",
	    "the map grows up to this size in bytes"),
	KEY("store.sync", CONF_BOOL, store_sync, "true",
	    "fsync every commit (turn off only for throwaway test data)"),
	KEY("store.wal_size", CONF_SIZE, store_wal_size, "67108864",
	    "bytes of the write-ahead log that answers a durable write after one flush (0 = no log: "
	    "LMDB's own two flushes; else at least 65536)"),
	KEY("store.batch_max", CONF_UINT, store_batch_max, "256", "most writes in one group commit"),
	KEY("store.feed_retention", CONF_UINT, store_feed_retention, "604800",
	    "seconds change records are kept before pruning, if no subscriber still needs them (0 = forever)"),
	KEY("xcap.max_document", CONF_SIZE, xcap_max_document, "2097152",
	    "default largest document in bytes (an AUID may set a smaller one)"),
	KEY("xcap.max_depth", CONF_UINT, xcap_max_depth, "64", "deepest element nesting accepted"),
	KEY("xcap.max_icon", CONF_SIZE, xcap_max_icon, "307200",
	    "largest image accepted in org.openmobilealliance.pres-content, in decoded bytes"),
	KEY("xcap.lenient_content_type", CONF_BOOL, xcap_lenient_content_type, "false",
	    "accept a whole-document PUT without Content-Type, or with application/xml, text/xml or "
	    "application/x-www-form-urlencoded, when its body is the usage's document (RFC 4825: 415)"),
	KEY("xcap.incremental_checks", CONF_BOOL, xcap_incremental_checks, "true",
	    "check an element PUT that replaces an element by one of the same name where it happens "
	    "(false = check the whole new document every time)"),
	KEY("xcap.scan_cache", CONF_SIZE, xcap_scan_cache, "33554432",
	    "bytes of stored documents kept with their scans for element and attribute requests (0 = none)"),
	KEY("xcap.descriptor_dir", CONF_STR, xcap_descriptor_dir, "",
	    "directory of extra AUID descriptors (*.auid) and their schemas"),
	KEY("sip.listen", CONF_STR, sip_listen, "",
	    "address and port of the SIP listeners, UDP and TCP (port 0 = ephemeral; empty = no SIP)"),
	KEY("sip.trusted_peers", CONF_LIST, sip_trusted_peers, "",
	    "IP addresses (the SIP/IP core) whose P-Asserted-Identity is trusted"),
	KEY("sip.trust_from", CONF_BOOL, sip_trust_from, "false",
	    "lab setting: take the subscriber's identity from From when nothing better is known"),
	KEY("sip.max_message", CONF_SIZE, sip_max_message, "65536", "largest SIP message accepted, in bytes"),
	KEY("sip.udp_buffer", CONF_SIZE, sip_udp_buffer, "4194304",
	    "receive and send buffer of the SIP UDP socket, in bytes (0 = the kernel's default)"),
	KEY("sip.max_transactions", CONF_UINT, sip_max_transactions, "4096",
	    "SIP requests in progress at once (server transactions); more get 503 with Retry-After (0 = no cap)"),
	KEY("sip.max_per_source", CONF_UINT, sip_max_per_source, "1024",
	    "SIP requests in progress at once from one source address; more get 503 with Retry-After "
	    "(0 = no cap; sip.trusted_peers are exempt)"),
	KEY("notify.default_expires", CONF_UINT, notify_default_expires, "3600",
	    "subscription lifetime in seconds when SUBSCRIBE carries no Expires"),
	KEY("notify.min_expires", CONF_UINT, notify_min_expires, "60",
	    "shortest lifetime accepted; a shorter non-zero request gets 423 with Min-Expires"),
	KEY("notify.max_expires", CONF_UINT, notify_max_expires, "86400", "longest lifetime granted, in seconds"),
	KEY("notify.max_subscriptions", CONF_UINT, notify_max_subscriptions, "100000",
	    "subscriptions in total; beyond it SUBSCRIBE gets 503 with Retry-After"),
	KEY("notify.max_per_user", CONF_UINT, notify_max_per_user, "16",
	    "subscriptions per subscriber identity (trusted servers are exempt)"),
	KEY("notify.max_entries", CONF_UINT, notify_max_entries, "64",
	    "resource selectors in one SUBSCRIBE body"),
	KEY("notify.aggregate_window", CONF_UINT, notify_aggregate_window, "1000",
	    "milliseconds changes are coalesced for diff-processing=aggregate"),
	KEY("notify.max_body", CONF_SIZE, notify_max_body, "60000",
	    "largest NOTIFY body in bytes; larger state is sent in several NOTIFYs"),
	KEY("notify.patch_cache", CONF_SIZE, notify_patch_cache, "67108864",
	    "bytes of document versions kept in memory to compute xcap-patching patches"),
	KEY("notify.retry_after", CONF_UINT, notify_retry_after, "30",
	    "seconds a refused SUBSCRIBE (503, over a cap) is asked to wait"),
	KEY("notify.max_pending", CONF_UINT, notify_max_pending, "10000",
	    "changes waiting for one subscriber; beyond it the subscription ends (reason=deactivated)"),
	KEY("iwf.enabled", CONF_BOOL, iwf_enabled, "true",
	    "run the Interworking Function: carry out Feature Handler import/export requests"),
	KEY("iwf.workers", CONF_UINT, iwf_workers, "0", "IWF worker threads (0 = 8 per core, at most 64: they mostly wait)"),
	KEY("iwf.lease", CONF_UINT, iwf_lease, "60",
	    "seconds a claimed job belongs to its worker; after that another worker may run it"),
	KEY("iwf.max_attempts", CONF_UINT, iwf_max_attempts, "4",
	    "tries of a job whose 3rd party fails transiently (5xx, timeout, refused); an adapter may set its own"),
	KEY("iwf.retry_delay", CONF_UINT, iwf_retry_delay, "1000",
	    "milliseconds before the first retry; the delay doubles with every attempt (at most 300000)"),
	KEY("iwf.timeout", CONF_UINT, iwf_timeout, "30",
	    "seconds a 3rd-party call may take; an adapter may set its own"),
	KEY("iwf.max_response", CONF_SIZE, iwf_max_response, "1048576",
	    "largest 3rd-party response body and transform output in bytes; an adapter may set its own"),
	KEY("iwf.concurrency", CONF_UINT, iwf_concurrency, "4",
	    "calls in flight at once per adapter; an adapter may set its own"),
	KEY("iwf.job_retention", CONF_UINT, iwf_job_retention, "604800",
	    "seconds an ended IWF job stays listed by xdmsctl jobs before it is pruned (0 = forever)"),
	KEY("iwf.ack_in_progress", CONF_BOOL, iwf_ack_in_progress, "false",
	    "write <response status=\"in-progress\" code=\"202\"> when a job starts"),
	KEY("iwf.identity", CONF_STR, iwf_identity, "xdmsd-iwf",
	    "identity of the IWF's own XCAP writes (a trusted server: responses, PCC updates)"),
	KEY("iwf.ca_file", CONF_STR, iwf_ca_file, "",
	    "PEM CA bundle for TLS to 3rd parties (empty = the system's)"),
	KEY("iwf.key_file", CONF_STR, iwf_key_file, "",
	    "32-byte key sealing the 3rd-party credentials taken from requests; created (mode 0600) "
	    "if missing (empty = iwf.key in store.path)"),
	KEY("log.level", CONF_STR, log_level, "info", "error log level: error, warn, info, debug"),
	KEY("log.access", CONF_BOOL, log_access, "true", "write one access-log line per request"),
	KEY("log.access_file", CONF_STR, log_access_file, "", "access log file (empty = stdout)"),
};

#define CONF_KEY_COUNT (sizeof(conf_keys) / sizeof(conf_keys[0]))

static void *field_of(struct conf *c, const struct conf_key *k)
{
	return (char *)c + k->offset;
}

static void list_free(struct conf_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

static void list_parse(struct conf_list *l, const char *value)
{
	const char *p = value;

	list_free(l);
	while (*p) {
		const char *end = strchr(p, ',');
		const char *s = p, *e = end ? end : p + strlen(p);

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			l->items = xrealloc(l->items, (l->count + 1) * sizeof(char *));
			l->items[l->count++] = xstrndup(s, (size_t)(e - s));
		}
		if (!end)
			break;
		p = end + 1;
	}
}

/* Parses a size with an optional K, M or G suffix (powers of 1024). */
static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned long long mult = 1;

	if (*s == '-' || *s == '\0')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end) {
		switch (*end) {
		case 'k': case 'K': mult = 1024ULL; break;
		case 'm': case 'M': mult = 1024ULL * 1024; break;
		case 'g': case 'G': mult = 1024ULL * 1024 * 1024; break;
		default: return -1;
		}
		if (end[1] != '\0' && !((end[1] == 'i' || end[1] == 'B') && end[2] == '\0'))
			return -1;
	}
	if (v > SIZE_MAX / mult)
		return -1;
	*out = (size_t)(v * mult);
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return -1;
}

static const struct conf_key *key_find(const char *name)
{
	for (size_t i = 0; i < CONF_KEY_COUNT; i++)
		if (strcmp(conf_keys[i].name, name) == 0)
			return &conf_keys[i];
	return NULL;
}

static enum xdms_err key_set(struct conf *c, const struct conf_key *k, const char *value, char **why)
{
	void *f = field_of(c, k);

	switch (k->type) {
	case CONF_STR: {
		char **s = f;

		free(*s);
		*s = xstrdup(value);
		return XDMS_ERR_OK;
	}
	case CONF_BOOL:
		if (parse_bool(value, f) == 0)
			return XDMS_ERR_OK;
		if (why)
			*why = xasprintf("%s: '%s' is not a boolean (use true or false)", k->name, value);
		return XDMS_ERR_INVAL;
	case CONF_UINT: {
		size_t v;

		if (parse_size(value, &v) == 0 && v <= UINT_MAX) {
			*(unsigned *)f = (unsigned)v;
			return XDMS_ERR_OK;
		}
		if (why)
			*why = xasprintf("%s: '%s' is not a non-negative integer", k->name, value);
		return XDMS_ERR_INVAL;
	}
	case CONF_SIZE:
		if (parse_size(value, f) == 0)
			return XDMS_ERR_OK;
		if (why)
			*why = xasprintf("%s: '%s' is not a size (a number of bytes, optionally with K, M or G)",
					 k->name, value);
		return XDMS_ERR_INVAL;
	case CONF_LIST:
		list_parse(f, value);
		return XDMS_ERR_OK;
	}
	return XDMS_ERR_INVAL;
}

void conf_init(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
		enum xdms_err err = key_set(c, &conf_keys[i], conf_keys[i].def, NULL);

		/* The defaults are compiled in; a bad one is a programming error. */
		if (err)
			abort();
	}
}

void conf_cleanup(struct conf *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
		void *f = field_of(c, &conf_keys[i]);

		if (conf_keys[i].type == CONF_STR) {
			free(*(char **)f);
			*(char **)f = NULL;
		} else if (conf_keys[i].type == CONF_LIST) {
			list_free(f);
		}
	}
}

enum xdms_err conf_set(struct conf *c, const char *key, const char *value, char **why)
{
	const struct conf_key *k = key_find(key);

	if (!k) {
		if (why)
			*why = xasprintf("unknown configuration key '%s'", key);
		return XDMS_ERR_NOTFOUND;
	}
	return key_set(c, k, value, why);
}

enum xdms_err conf_set_arg(struct conf *c, const char *arg, char **why)
{
	const char *eq = strchr(arg, '=');
	char *key;
	enum xdms_err err;

	if (!eq || eq == arg) {
		if (why)
			*why = xasprintf("'%s' is not of the form section.key=value", arg);
		return XDMS_ERR_INVAL;
	}
	key = xstrndup(arg, (size_t)(eq - arg));
	err = conf_set(c, key, eq + 1, why);
	free(key);
	return err;
}

struct ini_state {
	struct conf *c;
	const char *path;
	char *why;
	enum xdms_err err;
	FILE *f;
	int line_max; /* inih's line buffer, as it asks */
	int long_line; /* number of the first line longer than that, or 0 */
	int lines;
};

/* inih's reader: fgets, except that a line longer than inih's buffer ends
 * the file, to be refused, where inih would read its rest as a line of its
 * own (a comment's tail as a key, a long value cut short). */
static char *read_line(char *str, int num, void *stream)
{
	struct ini_state *st = stream;
	size_t n;
	int next;

	if (!fgets(str, num, st->f))
		return NULL;
	st->lines++;
	n = strlen(str);
	if (n && str[n - 1] == '\n')
		return str;
	next = fgetc(st->f);
	if (next == EOF || next == '\n')
		return str;
	st->line_max = num;
	st->long_line = st->lines;
	return NULL;
}

static int ini_line(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;
	char key[256];
	char *why = NULL;
	enum xdms_err err;

	if (snprintf(key, sizeof(key), "%s.%s", section, name) >= (int)sizeof(key)) {
		st->err = XDMS_ERR_INVAL;
		st->why = xasprintf("key too long");
		return 0;
	}
	err = conf_set(st->c, key, value ? value : "", &why);
	if (err) {
		st->err = XDMS_ERR_INVAL;
		st->why = why;
		return 0;
	}
	return 1;
}

enum xdms_err conf_load_file(struct conf *c, const char *path, char **why)
{
	struct ini_state st = { c, path, NULL, XDMS_ERR_OK, NULL, 0, 0, 0 };
	FILE *f = fopen(path, "r");
	int rc;

	if (!f) {
		if (why)
			*why = xasprintf("%s: %s", path, strerror(errno));
		return XDMS_ERR_IO;
	}
	st.f = f;
	rc = ini_parse_stream(read_line, &st, ini_line, &st);
	fclose(f);
	if (st.long_line && !st.err) {
		if (why)
			*why = xasprintf("%s:%d: longer than %d characters (make it shorter, or split a comment)", path,
					 st.long_line, st.line_max - 2);
		return XDMS_ERR_INVAL;
	}
	if (st.err) {
		/* inih returns the number of the line whose handler refused it. */
		if (why)
			*why = xasprintf("%s:%d: %s", path, rc, st.why);
		free(st.why);
		return st.err;
	}
	if (rc != 0) {
		if (why)
			*why = xasprintf("%s:%d: not a valid INI line", path, rc);
		return XDMS_ERR_INVAL;
	}
	return XDMS_ERR_OK;
}

bool conf_list_has(const struct conf_list *list, const char *s)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->items[i], s) == 0)
			return true;
	return false;
}

void conf_describe(const struct conf *c,
		   void (*fn)(void *arg, const char *key, const char *value, const char *help), void *arg)
{
	char num[32];

	for (size_t i = 0; i < CONF_KEY_COUNT; i++) {
		const struct conf_key *k = &conf_keys[i];
		const void *f = (const char *)c + k->offset;

		switch (k->type) {
		case CONF_STR:
			fn(arg, k->name, *(char *const *)f, k->help);
			break;
		case CONF_BOOL:
			fn(arg, k->name, *(const bool *)f ? "true" : "false", k->help);
			break;
		case CONF_UINT:
			snprintf(num, sizeof(num), "%u", *(const unsigned *)f);
			fn(arg, k->name, num, k->help);
			break;
		case CONF_SIZE:
			snprintf(num, sizeof(num), "%zu", *(const size_t *)f);
			fn(arg, k->name, num, k->help);
			break;
		case CONF_LIST: {
			const struct conf_list *l = f;
			size_t len = 1;
			char *s;

			for (size_t j = 0; j < l->count; j++)
				len += strlen(l->items[j]) + 1;
			s = xcalloc(1, len);
			for (size_t j = 0; j < l->count; j++) {
				if (j)
					strcat(s, ",");
				strcat(s, l->items[j]);
			}
			fn(arg, k->name, s, k->help);
			free(s);
			break;
		}
		}
	}
}

const char *conf_default_file(void)
{
#ifdef XDMS_CONFIG_FILE
	if (access(XDMS_CONFIG_FILE, F_OK) == 0)
		return XDMS_CONFIG_FILE;
#endif
	return NULL;
}
