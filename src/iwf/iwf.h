/* SPDX-License-Identifier: MIT */
/*
 * iwf: the Interworking Function. It carries out the users' Feature Handler
 * requests (SPEC §4.3, §5.3): import a profile from a 3rd-party system into
 * the user's PCC, or export the PCC to one, and write the outcome into the
 * request's <response>.
 *
 * Requests become jobs in the store (store.h, "IWF jobs") inside the client's
 * own write; this module runs them: a pool of worker threads claims jobs with
 * a lease, calls the 3rd party through an adapter (an administrator's global
 * document of org.xdmsd.iwf-adapter), transforms with XSLT, merges into the
 * PCC and writes both the PCC and the <response> through the same XCAP write
 * path as any client, as the trusted IWF identity.
 *
 * Threads: iwf_start() and iwf_stop() run on the main thread. The workers
 * never run on HTTP or SIP threads; they are woken by the store's commit
 * listener when a write queued jobs, and by their own timers for retries and
 * leases.
 */
#ifndef XDMS_IWF_H
#define XDMS_IWF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"
#include "xcap/xcap.h"

struct iwf;

struct iwf_options {
	unsigned workers;        /* worker threads; 0 = one per core */
	unsigned lease_s;        /* a claimed job is another worker's after this */
	unsigned max_attempts;   /* default tries for a transient failure */
	unsigned retry_delay_ms; /* first retry delay; doubles with every attempt */
	unsigned timeout_s;      /* default 3rd-party timeout (whole call) */
	size_t max_response;     /* default cap on a 3rd-party response body */
	unsigned concurrency;    /* default calls at once per adapter */
	bool is_ack_in_progress; /* write <response status="in-progress" code="202"> first */
	const char *identity;    /* who the IWF's writes are made as (trusted server) */
	const char *root_path;   /* the XCAP root path, "/xcap-root" */
	const char *ca_file;     /* extra CA bundle for TLS to 3rd parties; "" = system */
	const char *key_file;    /* the credential key (created if missing); required */
	unsigned job_retention_s; /* ended jobs older than this are pruned; 0 = never */
};

/*
 * Starts the workers over @st and @x (borrowed; both outlive the IWF). Jobs
 * a previous run left running are made claimable at once: one xdmsd runs
 * jobs per data directory. Returns INVAL for bad options, STORE when the
 * jobs cannot be read. On success *out is released with iwf_stop().
 */
enum xdms_err iwf_start(const struct iwf_options *opt, struct store *st, struct xcap *x, struct iwf **out) XDMS_WUR;

/* Appends the IWF's figures (jobs by state, ended by kind and code, running,
 * retries, 3rd-party call latency per adapter) to @out in the Prometheus text
 * format; @iwf is a struct iwf * (the signature of http_server_add_metrics).
 * Any thread while the IWF runs. */
struct buf;
enum xdms_err iwf_metrics(void *iwf, struct buf *out) XDMS_WUR;

/*
 * The webhook endpoint's handler (the HTTP server routes POST and GET of
 * IWF_HOOK_PREFIX + id here; docs/operations.md has the contract). A POST
 * must carry IWF_HOOK_HEADER: "sha256=" + the hex HMAC-SHA256 of the body
 * under the subscription's secret; a good one makes the watch poll at once
 * (202). 404 for an unknown id, 401 without a signature, 403 with a wrong
 * one; nothing changes then. GET with ?challenge=TOKEN echoes TOKEN (the
 * validation handshake). Returns the status; *answer (heap) is a text body.
 * Any thread while the IWF runs; @iwf is a struct iwf *.
 */
#define IWF_HOOK_PREFIX "/iwf/hook/"
#define IWF_HOOK_HEADER "X-Xdms-Signature"
#define IWF_HOOK_MAX_BODY 65536 /* a webhook call's body is signed, not read */
unsigned iwf_webhook(void *iwf, bool is_post, const char *hook_id, const char *query, const char *signature,
		     const char *body, size_t len, char **answer);

/*
 * Hands the IWF the SIP subscriber (sip/) its watches use for xcap
 * adapters with a sip-uri: they SUBSCRIBE (xcap-diff) to the remote PCC
 * instead of polling. Main thread, after iwf_start. iwf_sip_detach must
 * run before the SIP server stops: it destroys @m (the subscriptions are
 * abandoned here, their dialogs kept in the store to be resumed at the next
 * start) and the watches poll from then on. Both NULL-tolerant.
 */
struct sip_subscriber;
void iwf_sip_attach(struct iwf *iwf, struct sip_subscriber *m);
void iwf_sip_detach(struct iwf *iwf);

/* Stops claiming, lets every running job finish its current step (3rd-party
 * calls are bounded by their timeouts), joins the workers. NULL-tolerant. */
void iwf_stop(struct iwf *iwf);

/*
 * A dry import for administrators (xdmsctl adapter test): calls adapter
 * @adapter_id for @xui / @remote_user with the given credentials (NULL =
 * none), transforms and validates the result, and returns the PCC document
 * the import would merge (heap, *pcc). Stores nothing. On failure returns
 * non-OK with the SPEC §4.3 code in *code and a sentence in *why (heap).
 */
enum xdms_err iwf_dry_import(const struct iwf_options *opt, struct store *st, const char *adapter_id,
			     const char *xui, const char *remote_user, const char *username,
			     const char *password, char **pcc, unsigned *code, char **why) XDMS_WUR;

/*
 * Expands the adapter's URL template: {remote-user} and {xui} become the
 * percent-encoded values (every byte but unreserved ones encoded, so a value
 * cannot add a path segment, a query or a host). INVAL with *why for a
 * template with an unknown placeholder or a result that is not http(s).
 */
enum xdms_err iwf_url_expand(const char *tmpl, const char *remote_user, const char *xui, char **out,
			     char **why) XDMS_WUR;

/* ---- credentials (cred.c) ---- */

#define IWF_KEY_LEN 32

/* 3rd-party credentials: username and password, or a bearer token. */
struct iwf_cred {
	char username[256];
	char password[256];
	char token[2048];
};

/* The secret an adapter's own credential is kept as: owner "adapter:" + its
 * id, name "adapter". Requests that bring no credentials use it. */
#define IWF_ADAPTER_OWNER "adapter:"
#define IWF_ADAPTER_SECRET "adapter"
/* The secret of an oauth2 adapter's OAuth client secret (its password),
 * under the same owner. */
#define IWF_OAUTH_CLIENT_SECRET "oauth-client"

/* Reads the 32-byte key at @path, creating it (random, mode 0600) when it
 * does not exist. IO or CORRUPT with *why (heap). */
enum xdms_err iwf_key_load(const char *path, uint8_t key[IWF_KEY_LEN], char **why) XDMS_WUR;
/* Seals @c under @key and stores it as the secret (@owner, @name), in a
 * transaction of its own with @is_durable, else in the store's group commit
 * (see store_secret_put). */
enum xdms_err iwf_cred_save(struct store *st, const uint8_t key[IWF_KEY_LEN], const char *owner, const char *name,
			    const struct iwf_cred *c, bool is_durable) XDMS_WUR;
/* Opens the secret (@owner, @name) into *c. NOTFOUND when absent; CORRUPT
 * when it does not open under @key (another key, or tampered with). */
enum xdms_err iwf_cred_load(struct store *st, const uint8_t key[IWF_KEY_LEN], const char *owner, const char *name,
			    struct iwf_cred *c) XDMS_WUR;

/* Fills @opt with the defaults documented in docs/configuration.md. */
void iwf_options_init(struct iwf_options *opt);

#endif
