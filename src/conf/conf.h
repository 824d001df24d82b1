/* SPDX-License-Identifier: MIT */
/*
 * conf: the configuration as one struct, filled from embedded defaults, an
 * optional INI file ([section] key = value) and --set SECTION.KEY=VALUE
 * overrides, in that order. Every key is listed once in CONF_KEYS (conf.c),
 * which drives the defaults, the parsers, the error messages and the
 * reference in docs/configuration.md. No side effects: nothing here opens a
 * socket, a file other than the config file, or a thread.
 */
#ifndef XDMS_CONF_H
#define XDMS_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* A comma-separated list, split. Owned by the struct conf it sits in. */
struct conf_list {
	char **items;
	size_t count;
};

struct conf {
	/* [http] */
	char *http_listen;          /* "127.0.0.1:8080"; port 0 = ephemeral */
	char *http_xcap_root;       /* "/xcap-root" or an absolute http(s) URI */
	unsigned http_threads;      /* 0 = one per core */
	size_t http_max_body;       /* request bodies above this get 413 */
	size_t http_max_header;     /* per-connection memory for the request line and headers */
	unsigned http_max_connections;
	unsigned http_timeout;      /* idle connection timeout, seconds */
	unsigned http_head_timeout; /* seconds for a new connection's request head */
	unsigned http_max_per_address; /* connections from one address (0 = no cap) */
	size_t http_min_body_rate;  /* bytes per second a body must keep up (0 = none) */
	char *http_tls_cert;        /* PEM file; TLS is on when both are set */
	char *http_tls_key;
	bool http_tls_session_tickets;
	char *http_tls_ticket_key_file; /* "" = a key made in memory */
	/* [auth] */
	char *auth_realm;           /* default realm (tel: XUIs, global documents); "" = the store's */
	struct conf_list auth_trusted_peers;     /* IPs whose asserted identity is trusted */
	struct conf_list auth_server_identities; /* trusted-server identities (IWF, CAB server) */
	struct conf_list auth_admin_identities;  /* may write global documents */
	struct conf_list auth_digest_algorithms; /* offered in this order: "MD5", "SHA-256" */
	bool auth_allow_basic;      /* Basic over plain HTTP (it is always allowed over TLS) */
	unsigned auth_nonce_timeout; /* seconds a Digest nonce stays valid */
	char *auth_secret;          /* nonce HMAC key; random per process when empty */
	/* [store] */
	char *store_path;           /* data directory */
	size_t store_map_size;
	size_t store_map_size_max;
	bool store_sync;
	size_t store_wal_size;
	unsigned store_batch_max;
	unsigned store_feed_retention; /* seconds change records are kept at least (0 = forever) */
	/* [xcap] */
	size_t xcap_max_document;   /* default per-AUID document size limit */
	unsigned xcap_max_depth;    /* XML nesting limit */
	char *xcap_descriptor_dir;  /* extra AUID descriptors and schemas; "" = none */
	size_t xcap_max_icon;       /* largest presence-content image, decoded bytes */
	bool xcap_lenient_content_type; /* document PUTs with a missing or generic type */
	bool xcap_incremental_checks;   /* element replaces checked where they happen */
	size_t xcap_scan_cache;         /* bytes of the node operations' scan cache */
	/* [sip] */
	char *sip_listen;           /* "ADDR:PORT" for UDP and TCP; "" = no SIP */
	struct conf_list sip_trusted_peers; /* IPs whose P-Asserted-Identity is trusted */
	bool sip_trust_from;        /* lab setting: take the subscriber from From */
	size_t sip_max_message;     /* larger SIP messages are dropped (UDP) or refused (TCP) */
	size_t sip_udp_buffer;      /* receive and send buffer of the UDP socket */
	unsigned sip_max_transactions; /* server transactions in flight; more: 503 (0 = no cap) */
	unsigned sip_max_per_source;   /* per source address outside sip.trusted_peers (0 = no cap) */
	/* [notify] */
	unsigned notify_default_expires; /* seconds granted when SUBSCRIBE has no Expires */
	unsigned notify_min_expires;     /* shorter (non-zero) requests: 423 */
	unsigned notify_max_expires;     /* longer requests are cut to this */
	unsigned notify_max_subscriptions; /* in total; more: 503 */
	unsigned notify_max_per_user;    /* per subscriber identity (trusted servers exempt); more: 503 */
	unsigned notify_max_entries;     /* resource selectors in one SUBSCRIBE body */
	unsigned notify_aggregate_window; /* milliseconds changes are coalesced in aggregate mode */
	size_t notify_max_body;          /* largest NOTIFY body; larger state is split */
	size_t notify_patch_cache;       /* bytes of document versions kept to compute patches */
	unsigned notify_retry_after;     /* seconds in Retry-After of a 503 */
	unsigned notify_max_pending;     /* changes queued for one subscriber; more ends it */
	/* [iwf] */
	bool iwf_enabled;           /* run the Interworking Function's workers */
	unsigned iwf_workers;       /* 0 = one per core */
	unsigned iwf_lease;         /* seconds a claimed job stays with its worker */
	unsigned iwf_max_attempts;  /* tries for transient failures (adapters may override) */
	unsigned iwf_retry_delay;   /* first retry delay in ms; doubles per attempt */
	unsigned iwf_timeout;       /* 3rd-party call timeout in seconds (adapters may override) */
	size_t iwf_max_response;    /* largest 3rd-party response body (adapters may override) */
	unsigned iwf_concurrency;   /* calls at once per adapter (adapters may override) */
	bool iwf_ack_in_progress;   /* write <response status="in-progress" code="202"> first */
	char *iwf_identity;         /* the identity the IWF's XCAP writes are made as */
	char *iwf_ca_file;          /* extra CA bundle for 3rd parties; "" = the system's */
	unsigned iwf_job_retention; /* seconds ended jobs are kept; 0 = forever */
	char *iwf_key_file;         /* credential key; "" = iwf.key in store.path */
	/* [log] */
	char *log_level;            /* error, warn, info, debug */
	bool log_access;            /* one access-log line per request */
	char *log_access_file;      /* "" = stdout */
};

/* Fills @c with the embedded defaults. Release with conf_cleanup(). */
void conf_init(struct conf *c);
/* Frees everything @c owns. NULL-tolerant. */
void conf_cleanup(struct conf *c);

/*
 * Sets one key. @key is "section.key". On failure returns INVAL (unknown key
 * or bad value) or NOTFOUND and, when @why is not NULL, a heap sentence
 * explaining it that the caller frees.
 */
enum xdms_err conf_set(struct conf *c, const char *key, const char *value, char **why) XDMS_WUR;

/* Like conf_set for a "section.key=value" argument. */
enum xdms_err conf_set_arg(struct conf *c, const char *arg, char **why) XDMS_WUR;

/*
 * Reads an INI file into @c. Errors name the file and line in *why.
 * IO when the file cannot be read, INVAL for a bad line, key or value.
 */
enum xdms_err conf_load_file(struct conf *c, const char *path, char **why) XDMS_WUR;

/*
 * The configuration file that xdmsd and xdmsctl read when no -c is given: the
 * path the build was configured with (`configure --with-config-file=PATH`; the
 * Debian package uses /etc/xdmsd/xdmsd.conf), when that file exists. NULL when
 * the build names none or the file is absent: the embedded defaults apply.
 */
const char *conf_default_file(void);

/* True when @s is one of the items of @list (exact comparison). */
bool conf_list_has(const struct conf_list *list, const char *s);

/* Calls @fn for every key with its section.key name, its current value as
 * text and its one-line description (for --help and documentation). */
void conf_describe(const struct conf *c,
		   void (*fn)(void *arg, const char *key, const char *value, const char *help),
		   void *arg);

#endif
