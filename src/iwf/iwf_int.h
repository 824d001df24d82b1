/* SPDX-License-Identifier: MIT */
/* Private to src/iwf. */
#ifndef XDMS_IWF_INT_H
#define XDMS_IWF_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "iwf/iwf.h"

#define IWF_PCC_AUID "org.openmobilealliance.cab-pcc"
#define IWF_PCC_NS "urn:oma:xml:cab:pcc"
#define IWF_FH_AUID "org.openmobilealliance.cab-feature-handler"
#define IWF_FH_NS "urn:oma:xml:cab:feature-handler"
#define IWF_ADAPTER_AUID "org.xdmsd.iwf-adapter"
#define IWF_ADAPTER_NS "urn:xdmsd:xml:iwf-adapter"
#define IWF_XSLT_AUID "org.xdmsd.iwf-xslt"
#define IWF_MAX_DEPTH 64
#define IWF_REASON_MAX 480
#define IWF_VALIDATOR_MAX 512 /* = STORE_WATCH_VALIDATOR_MAX */

/* ---- outcomes ---------------------------------------------------------------- */

/* What a step of a job came to: a SPEC §4.3 code, whether trying again later
 * may help, and a reason a person can act on (never a credential). */
struct iwf_result {
	unsigned code;
	bool is_transient;
	char reason[IWF_REASON_MAX];
};

void iwf_result_set(struct iwf_result *r, unsigned code, bool is_transient, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- adapters (adapter.c) ---------------------------------------------------------- */

enum iwf_auth { IWF_AUTH_NONE = 0, IWF_AUTH_BASIC, IWF_AUTH_BEARER, IWF_AUTH_DIGEST };

struct iwf_adapter;
struct iwf_env;

/* One call of an adapter to its 3rd party: who calls, through which
 * adapter, where (the adapter's URL, expanded) and with which credentials
 * (the request's, or the adapter's own). All borrowed. */
struct iwf_call {
	const struct iwf_env *env;
	void *curl;                  /* the worker's handle */
	const struct iwf_adapter *a;
	const char *url;
	const char *username, *password, *token;
};

/*
 * One adapter kind, as curl's backends: the defaults its documents start
 * from, and the functions that reach the 3rd party. A new kind is a file
 * adapter_<kind>.c that defines its struct iwf_kind, and a row in
 * adapter.c's table. The functions run on a worker; they fill @r (SPEC
 * §4.3 codes) when they fail.
 */
struct iwf_kind {
	const char *name;
	const char *content_type;  /* of what is sent on export */
	const char *import_method;
	const char *export_method;
	const char *import_xslt;   /* default transforms (embedded xslt/ files); NULL = required */
	const char *export_xslt;
	enum iwf_auth auth;
	/* Import: the user's external profile as the 3rd party gives it, in
	 * @body (created with the adapter's cap). */
	enum xdms_err (*fetch)(const struct iwf_call *c, struct buf *body, struct iwf_result *r);
	/* Export: sends @data (the transformed PCC part); *status is the 3rd
	 * party's HTTP status, its answer goes to @body. */
	enum xdms_err (*send)(const struct iwf_call *c, const char *data, size_t len, struct buf *body, long *status,
			      struct iwf_result *r);
	/* Subscribe profile (room for a later kind; NULL: not supported):
	 * subscribe to changes of the external profile. */
	enum xdms_err (*subscribe)(const struct iwf_call *c, struct iwf_result *r);
	/* Subscribe profile, watched by polling (NULL: the kind cannot be
	 * watched): the external profile, only if it changed since @validator
	 * (what the kind gave last time: an ETag, a Last-Modified date, a sync
	 * token; "" = fetch whatever there is). On a change, *is_changed is
	 * true, @body holds the profile as fetch() gives it and @new_validator
	 * what to send next time ("" when the 3rd party gives none). */
	enum xdms_err (*poll)(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
			      bool *is_changed, struct buf *body, struct iwf_result *r);
};

/* The kinds (adapter_xcap.c, adapter_http.c). */
extern const struct iwf_kind iwf_kind_xcap;
extern const struct iwf_kind iwf_kind_http;

/* The plain HTTP calls of adapter_http.c, which other kinds that talk HTTP
 * use as they are: the adapter's import (export) method on its URL, with
 * its content type, timeouts, cap and authentication. */
enum xdms_err iwf_http_fetch(const struct iwf_call *c, struct buf *body, struct iwf_result *r) XDMS_WUR;
enum xdms_err iwf_http_send(const struct iwf_call *c, const char *data, size_t len, struct buf *body, long *status,
			    struct iwf_result *r) XDMS_WUR;
/* The conditional GET of a watch (adapter_http.c): If-None-Match or
 * If-Modified-Since from @validator ("E:" + ETag, "M:" + HTTP date), a 304
 * is no change; the new validator is the answer's ETag, else its
 * Last-Modified. */
enum xdms_err iwf_http_poll(const struct iwf_call *c, const char *validator, char new_validator[IWF_VALIDATOR_MAX],
			    bool *is_changed, struct buf *body, struct iwf_result *r) XDMS_WUR;
/* One call of the webhook registration contract (docs/operations.md):
 * POST (@is_register) or DELETE of the adapter's webhook-register URL. */
enum xdms_err iwf_http_hook_register(const struct iwf_call *c, const char *register_url, bool is_register,
				     const char *callback_url, const char *hook_id, const char *secret,
				     const char *remote_user, uint64_t expires_ms, struct iwf_result *r) XDMS_WUR;

#define IWF_POLL_DEFAULT_S 300 /* an adapter's poll-interval when it has none */
#define IWF_POLL_FLOOR_S 1      /* the shortest poll-interval taken */

enum iwf_watch_via { IWF_WATCH_POLL = 0, IWF_WATCH_WEBHOOK, IWF_WATCH_BOTH };

struct iwf_adapter {
	char *id;
	const struct iwf_kind *kind;
	char *url;            /* template */
	char *import_method;
	char *export_method;
	char *content_type;
	enum iwf_auth auth;
	unsigned timeout_s;
	unsigned connect_timeout_s;
	unsigned max_attempts;
	size_t max_response;
	unsigned concurrency;
	char *import_xslt;    /* document names */
	char *export_xslt;
	unsigned poll_interval_s;  /* watches: seconds between polls (floor IWF_POLL_FLOOR_S) */
	enum iwf_watch_via watch;  /* watches: polling, a webhook, or both */
	char *webhook_base;        /* the URL prefix under which the 3rd party reaches xdmsd */
	char *webhook_register;    /* where callbacks are registered; NULL = no webhook */
	char *sip_uri;             /* kind xcap: where a watch SUBSCRIBEs (sip:IP:PORT[;transport=tcp]); NULL = poll */
};

/* Reads adapter @id from the store. NOTFOUND when there is none; PARSE with
 * *why (heap) when its document is unusable. Defaults come from @opt. */
enum xdms_err iwf_adapter_load(struct store *st, const struct iwf_options *opt, const char *id,
			       struct iwf_adapter *out, char **why) XDMS_WUR;
void iwf_adapter_cleanup(struct iwf_adapter *a);
/* The kind called @name, or NULL. */
const struct iwf_kind *iwf_kind_find(const char *name);
/* ---- XSLT cache (adapter.c) ----------------------------------------------------------- */

struct iwf_xslt_cache;
struct xml_xslt;

struct iwf_xslt_cache *iwf_xslt_cache_create(void);
void iwf_xslt_cache_destroy(struct iwf_xslt_cache *c);
/* The compiled stylesheet @name: the org.xdmsd.iwf-xslt global document of
 * that name, else the embedded xslt/ file. Compiled once per ETag; borrowed
 * until the cache is destroyed. NOTFOUND or PARSE with *why (heap). */
enum xdms_err iwf_xslt_get(struct iwf_xslt_cache *c, struct store *st, const char *name,
			   const struct xml_xslt **out, char **why) XDMS_WUR;

/* ---- HTTP to 3rd parties (http.c) ----------------------------------------------------- */

struct iwf_http_call {
	const char *method;
	const char *url;
	enum iwf_auth auth;
	const char *username; /* basic, digest */
	const char *password;
	const char *token;    /* bearer */
	const char *content_type; /* of @body; NULL when none */
	const char *accept;
	const char *body;
	size_t body_len;
	unsigned timeout_s;
	unsigned connect_timeout_s;
	size_t max_response;
	const char *ca_file;  /* "" or NULL = system store */
	const atomic_bool *cancel; /* the call stops when this becomes true; NULL = never */
	/* A conditional GET (watches): with either set, a 304 answer is OK
	 * with *status 304 and no body. */
	const char *if_none_match;
	const char *if_modified_since;
	char *got_etag;            /* IWF_VALIDATOR_MAX bytes for the answer's ETag, or NULL */
	char *got_last_modified;   /* the same for its Last-Modified */
};

/*
 * Makes one call with @curl (a worker's handle; connections are reused
 * between calls). On a 2xx puts the body in @body (created with the cap) and
 * returns OK; otherwise fills @r with the code (401, 403, 404, 413, 502, 503,
 * 504) and whether a retry may help.
 */
enum xdms_err iwf_http_do(void *curl, const struct iwf_http_call *call, struct buf *body, long *status,
			  struct iwf_result *r) XDMS_WUR;

/* ---- the PCC merge (merge.c) ------------------------------------------------------------ */

enum iwf_merge_policy { IWF_MERGE = 0, IWF_REPLACE, IWF_ADD_ONLY };

/* Field groups a request's <fields> may name (SPEC §5.2). */
#define IWF_FIELD_NAME 0x001    /* fn n nickname */
#define IWF_FIELD_TEL 0x002     /* tel */
#define IWF_FIELD_EMAIL 0x004   /* email */
#define IWF_FIELD_URI 0x008     /* impp url */
#define IWF_FIELD_ADDRESS 0x010 /* adr */
#define IWF_FIELD_CAREER 0x020  /* org title */
#define IWF_FIELD_BIRTH 0x040   /* bday */
#define IWF_FIELD_MEDIA 0x080   /* photo */
#define IWF_FIELD_ALL 0x0ff
#define IWF_FIELD_OTHER 0x100   /* a part the PCC mapping does not know (in "dropped" masks only) */

/* Parses a <fields> token list ("fn tel email"); NULL or "" = all.
 * INVAL with the unknown token in *why (heap). */
enum xdms_err iwf_fields_parse(const char *text, unsigned *mask, char **why) XDMS_WUR;

/* The same, for lists from a user's preferences: unknown names are ignored. */
unsigned iwf_fields_mask_lenient(const char *text);

/* ---- user preferences (prefs.c) ------------------------------------------------------- */

struct iwf_prefs {
	bool is_auto_store;               /* import-prefs/auto-store */
	bool has_conflict_policy;
	enum iwf_merge_policy conflict_policy; /* from import-prefs/conflict-policy */
	unsigned import_fields;           /* import-prefs/allowed-fields (all when absent) */
	unsigned export_fields;           /* export-prefs/allowed-fields */
	char **third_parties;             /* export-prefs/allowed-third-party; none = any */
	size_t third_party_count;
	bool is_auto_update;              /* subscription-prefs/auto-update (default true) */
	bool has_max_expires;
	unsigned max_expires;             /* subscription-prefs/max-expires, seconds */
};

/* Reads the user's preferences; defaults when the user has none. CORRUPT
 * when the stored document does not parse. */
enum xdms_err iwf_prefs_load(struct store *st, const char *xui, struct iwf_prefs *p) XDMS_WUR;
void iwf_prefs_cleanup(struct iwf_prefs *p);
/* True when the preferences allow exporting to 3rd party @id. */
bool iwf_prefs_third_party_ok(const struct iwf_prefs *p, const char *id);

struct iwf_merge_out {
	char *doc;       /* the new PCC document (heap) */
	size_t doc_len;
	unsigned count;  /* values added or replaced (see group_values() in merge.c) */
	bool is_partial; /* something was left out because of the field list */
	unsigned dropped; /* IWF_FIELD_* of what was left out (0 = nothing) */
	unsigned person_count; /* <person-details> in the imported profile; only the first is merged */
	bool is_changed; /* doc differs in content from the local PCC */
};

/*
 * Merges the first <person-details> of @imported (a valid PCC document) into
 * the first <person-details> of @local (NULL = no PCC yet) under @policy,
 * keeping only the groups in @fields. PARSE with *why when @imported has no
 * person-details or a document does not parse.
 */
enum xdms_err iwf_merge(const char *local, size_t local_len, const char *imported, size_t imported_len,
			enum iwf_merge_policy policy, unsigned fields, struct iwf_merge_out *out,
			char **why) XDMS_WUR;

/*
 * The PCC document to export: @pcc with only the element @sel selects (a
 * <person-details>, default the first) and only the groups in @fields.
 * *count = the values of the groups kept, *dropped = IWF_FIELD_* of what was
 * left out (0 = nothing). NOTFOUND when the selector selects nothing.
 */
enum xdms_err iwf_export_select(const char *pcc, size_t pcc_len, const char *sel, unsigned fields, char **out,
				size_t *out_len, unsigned *count, unsigned *dropped, char **why) XDMS_WUR;

/* Appends to @out (@size bytes, NUL-terminated) which parts of @dropped were
 * left out and why: not in the request's @requested fields, or not in the
 * preferences' @allowed ones; e.g. "tel (not in <fields>)". */
void iwf_fields_describe(unsigned dropped, unsigned requested, unsigned allowed, char *out, size_t size);

/* ---- carrying a job out (job.c) ---------------------------------------------------------------- */

struct iwf_worker {
	struct iwf *iwf;
	void *curl;
	pthread_t thread;
	unsigned index;
};

/* The shared state of the pool that job.c needs. */
struct iwf_env {
	const struct iwf_options *opt;
	struct store *st;
	struct xcap *x;
	struct iwf_xslt_cache *xslt;
	const struct xml_schema *pcc_schema; /* the PCC's XSD, for transform output */
	const uint8_t *key;                  /* IWF_KEY_LEN bytes: the credential key */
	const atomic_bool *stopping;         /* set when the IWF stops; NULL = never */
	struct iwf_metrics *metrics;         /* NULL = not counted (dry runs) */
	struct iwf_watches *watches;         /* NULL until started (and in dry runs) */
};

/*
 * The adapter-side half of an import: fetch, transform, validate. On OK
 * *pcc (heap) is a valid PCC document. Used by jobs and by the dry run.
 */
enum xdms_err iwf_fetch_profile(const struct iwf_env *env, void *curl, const struct iwf_adapter *a,
				const char *xui, const char *remote_user, const char *username,
				const char *password, const char *token, char **pcc, size_t *pcc_len,
				struct iwf_result *r) XDMS_WUR;

/* The transform-and-check half of iwf_fetch_profile: @data as the adapter's
 * fetch (or poll) gave it, transformed into a PCC document (heap) and
 * validated. */
enum xdms_err iwf_profile_from(const struct iwf_env *env, const struct iwf_adapter *a, const char *xui,
			       const char *remote_user, const char *data, size_t len, char **pcc, size_t *pcc_len,
			       struct iwf_result *r) XDMS_WUR;

/* Storing an imported profile into the user's PCC (SPEC §5.3 steps 5-6),
 * shared by import-profile jobs and watches. */
struct iwf_import {
	const char *xui;
	const char *third_party;      /* for reasons */
	const char *merge_policy;     /* the request's, or NULL */
	const struct iwf_prefs *prefs;
	unsigned fields;              /* IWF_FIELD_* to keep */
	bool (*is_wanted)(void *arg); /* false once the request went away: nothing more is stored */
	void *arg;
};

struct iwf_import_out {
	struct iwf_result r;
	bool is_cancelled;   /* is_wanted() said no: nothing stored */
	bool is_changed;     /* the PCC was written */
	unsigned count;
	bool is_partial;
	unsigned dropped;
	unsigned extra_persons;
	char pcc_etag[STORE_ETAG_MAX];
};

/* Merges @imported into the PCC under the request's policy and the user's
 * preferences and stores it, again on a lost race (SPEC §5.3 step 6). */
void iwf_import_store(const struct iwf_env *env, const struct iwf_import *in, const char *imported,
		      size_t imported_len, struct iwf_import_out *o);

/* A <response> element (heap): @status NULL = the word for @code; @seq 0
 * = none; @expires_ms 0 = no <subscription-expires>. */
char *iwf_response_body(enum store_job_kind kind, unsigned code, const char *status, const char *reason,
			unsigned count, const char *pcc_etag, unsigned seq, uint64_t expires_ms);

/* Writes @body as the <response> of watched request @w, with If-Match on
 * the Feature Handler document, if the request is still there and still the
 * version @w was set up for (its current job is w->job_id). False with
 * *is_gone when it is not. */
bool iwf_watch_response_write(const struct iwf_env *env, const struct store_watch *w, const char *body,
			      bool *is_gone);

/* -- metrics.c: the IWF's figures for /metrics. Every recorder is
 * NULL-tolerant (dry runs count nothing) and may run on any thread. -- */
struct iwf_metrics;
struct iwf_metrics *iwf_metrics_create(void);
void iwf_metrics_destroy(struct iwf_metrics *m);
/* A job answered with a final <response> of @code. */
void iwf_metrics_job_ended(struct iwf_metrics *m, enum store_job_kind kind, unsigned code);
/* An attempt that failed transiently and went back to the queue. */
void iwf_metrics_retry(struct iwf_metrics *m);
/* A worker starts (+1) or stops (-1) carrying out a job. */
void iwf_metrics_running(struct iwf_metrics *m, int delta);
/* One call to adapter @adapter's 3rd party, and whether it failed. */
void iwf_metrics_call(struct iwf_metrics *m, const char *adapter, double seconds, bool is_failure);
/* Appends every figure in the Prometheus text format; jobs by state are read
 * from @st. STORE when the jobs cannot be read, TOOBIG when @out is full. */
enum xdms_err iwf_metrics_render(struct iwf_metrics *m, struct store *st, struct buf *out) XDMS_WUR;

/* ---- watches (watch.c): subscribe-profile kept up to date ---------------------------- */

struct iwf_watches;
/* Starts @threads watch threads over @env (borrowed; outlives them) and
 * loads every watch from the store into the schedule: watches whose poll
 * fell due while the server was down are polled at once. */
enum xdms_err iwf_watches_start(const struct iwf_env *env, unsigned threads, struct iwf_watches **out) XDMS_WUR;
/* Stops and joins the threads; a poll in flight finishes its step. NULL-tolerant. */
void iwf_watches_stop(struct iwf_watches *ws);
/* (Re)schedules watch @w after a job stored it (a new or refreshed
 * subscription). Any thread. */
void iwf_watches_add(struct iwf_watches *ws, const struct store_watch *w);
/* The store's commit listener calls this: a commit hook dropped watches
 * (store_watch_generation moved); the threads forget them. Never blocks long. */
void iwf_watches_kick(struct iwf_watches *ws);
/* A call of webhook @hook_id (iwf_webhook in iwf.h): the status to answer
 * and a text body in *answer (heap). Any thread; never blocks on a poll. */
unsigned iwf_watches_hook(struct iwf_watches *ws, bool is_post, const char *hook_id, const char *query,
			  const char *signature, const char *body, size_t len, char **answer);
/* Appends the watches' figures to @out (Prometheus text). */
enum xdms_err iwf_watches_metrics(struct iwf_watches *ws, struct buf *out) XDMS_WUR;
/* The next poll time (Unix ms) after @now_ms of a watch keyed @key polled
 * every @interval_ms: the watch's own phase in the interval (a hash of its
 * key), so that many watches poll evenly spread, each at a steady rhythm. */
uint64_t iwf_watch_next_slot(const char *xui, const char *request_id, uint64_t interval_ms, uint64_t now_ms);
/* The SIP subscriber watches of xcap adapters with a sip-uri use (NULL =
 * none: they poll). Attach after iwf_watches_start; detach before the SIP
 * server stops: it destroys @m, waiting for every use and callback to end. */
struct sip_subscriber;
void iwf_watches_sip_attach(struct iwf_watches *ws, struct sip_subscriber *m);
void iwf_watches_sip_detach(struct iwf_watches *ws);
/* A new webhook id and secret (random, hex). */
void iwf_watch_hook_new(char id[STORE_WATCH_HOOK_MAX], char secret[STORE_WATCH_SECRET_MAX]);

/* Runs claimed job @job to its end, a retry, or a cancellation. */
void iwf_job_run(const struct iwf_env *env, struct iwf_worker *w, const struct store_job *job);

/* Takes one of the adapter's @limit slots, waiting up to @wait_ms for one to
 * be given back; false when none was (or the IWF stops) (pool.c). */
bool iwf_slot_take(struct iwf *iwf, const char *adapter_id, unsigned limit, unsigned wait_ms);
void iwf_slot_give(struct iwf *iwf, const char *adapter_id);

#endif
